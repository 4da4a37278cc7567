//! What a worker waits on between requests: the pool's socket and the
//! connections the web server keeps open to it.
//!
//! A php-fpm worker serving a kept connection (nginx `fastcgi_keep_conn on`
//! with an upstream `keepalive` pool) reads only that connection until the
//! web server closes it: a pool whose workers all hold an idle kept
//! connection takes no new one, and nginx's requests on those new
//! connections wait in the backlog until they time out. A corral worker
//! parks a kept connection and waits on it and on the pool's socket at
//! once, taking whichever has something first.
//!
//! The pool's socket is non-blocking for this, so a worker woken for a
//! connection another worker took returns to its wait instead of sleeping
//! in accept() while its kept connections have requests.
//!
//! Who takes a new connection: a worker that holds no kept connection
//! waits on the pool's socket with EPOLLEXCLUSIVE (a connection wakes one
//! such worker, not all of them). A worker that holds some is woken too,
//! but leaves the connection to them for [`GRACE`] and takes it only if it
//! is still waiting then, which means every worker of the pool is busy or
//! holding kept connections. Without the grace, one worker would collect
//! several of the web server's connections and serve their requests one
//! after another while other workers idle (c=4 keep-alive against 4
//! workers: p99 doubled).

use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};
use std::time::{Duration, Instant};

use corral_sys::poller::Poller;
use corral_sys::SysError;

use crate::connection::Kept;
use crate::pacing::Pacer;

/// The most kept connections one worker holds. nginx keeps at most its
/// `keepalive` number per nginx worker process; a connection that would
/// be one too many is closed after its response (nginx opens another when
/// it needs one). A worker holding many serves their requests one after
/// another while they could have gone to other workers, so the bound is
/// small.
pub const MAX_KEPT: usize = 8;

/// The poller token of the pool's socket; kept connections use their slot.
const LISTEN: u64 = u64::MAX;

/// How long a worker holding kept connections leaves a new connection to
/// the pool's free workers before it takes it itself.
pub const GRACE: Duration = Duration::from_millis(1);

/// How long one wait lasts before the worker looks at its quit flag again
/// (a SIGQUIT between the look and the wait would otherwise be missed).
const WAKE_MS: u16 = 1000;

/// What the worker does next.
// A kept connection moves by value between the wait and the request: a
// few hundred bytes copied, where a Box would allocate per request.
#[allow(clippy::large_enum_variant)]
pub enum Next {
    /// A connection it has just accepted.
    Fresh(OwnedFd),
    /// A kept connection with a request to read (or a close to notice).
    Kept(Kept),
    /// Nothing yet: a signal, a connection another worker took, a timeout.
    Nothing,
    /// accept() failed for a reason worth logging.
    Failed(std::io::Error),
}

/// One place for a kept connection. A connection keeps its place (and its
/// registration with the poller) from the first time it is kept until it
/// closes, also while one of its requests is served, so that a connection
/// used request after request costs no poller calls.
#[allow(clippy::large_enum_variant)] // at most MAX_KEPT of them
enum Place {
    Free,
    Parked(Kept),
    Serving,
}

/// How the worker waits on the pool's socket.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Listen {
    /// Holding no kept connection: one of the pool's free workers.
    Free,
    /// Holding kept connections: woken once per arming, and `seen` is when
    /// that was, while the grace runs.
    Holding { seen: Option<Instant> },
}

/// The pool's socket and this worker's kept connections.
pub struct Waiter<'a> {
    listen: BorrowedFd<'a>,
    poller: Poller,
    mode: Listen,
    places: Vec<Place>,
}

impl<'a> Waiter<'a> {
    /// `listen` is the pool's socket.
    pub fn new(listen: BorrowedFd<'a>) -> Result<Waiter<'a>, SysError> {
        corral_sys::socket::set_nonblocking(listen.as_raw_fd(), true)?;
        let poller = Poller::new()?;
        poller.add_shared(listen, LISTEN)?;
        Ok(Waiter {
            listen,
            poller,
            mode: Listen::Free,
            places: Vec::new(),
        })
    }

    /// How many kept connections the worker holds, parked or being served.
    pub fn kept(&self) -> usize {
        self.places
            .iter()
            .filter(|p| !matches!(p, Place::Free))
            .count()
    }

    /// Park a kept connection until it has something to read. False (and
    /// the connection is dropped, which closes it) when it is new and the
    /// worker already holds [`MAX_KEPT`].
    pub fn park(&mut self, mut kept: Kept) -> bool {
        if let Some(place) = kept.place.and_then(|i| self.places.get_mut(i)) {
            *place = Place::Parked(kept);
            return true;
        }
        if self.kept() >= MAX_KEPT {
            return false;
        }
        let i = match self.places.iter().position(|p| matches!(p, Place::Free)) {
            Some(i) => i,
            None => {
                self.places.push(Place::Free);
                self.places.len() - 1
            }
        };
        if self.poller.add(kept.fd(), i as u64).is_err() {
            return false;
        }
        kept.place = Some(i);
        self.places[i] = Place::Parked(kept);
        true
    }

    /// A kept connection is closing: its place is free again. Called while
    /// its socket is still open (a forked child of PHP may hold the same
    /// socket, which would keep it in the poller after our close).
    pub fn forget(&mut self, kept: &Kept) {
        if let Some(place) = kept.place.and_then(|i| self.places.get_mut(i)) {
            *place = Place::Free;
            self.poller.remove(kept.fd());
        }
    }

    fn unpark(&mut self, i: usize) -> Next {
        let Some(place) = self.places.get_mut(i) else {
            return Next::Nothing;
        };
        match std::mem::replace(place, Place::Serving) {
            Place::Parked(kept) => Next::Kept(kept),
            other => {
                *place = other;
                Next::Nothing
            }
        }
    }

    /// Wait for the next thing to do. A kept connection whose next request
    /// is already read comes first; then, for a worker holding no kept
    /// connection, a connection already waiting; then whatever the wait
    /// reports, kept connections before new ones (their requests were sent
    /// before the new connection's).
    pub fn next(&mut self, pacer: &mut Pacer) -> Next {
        let queued = self
            .places
            .iter()
            .position(|p| matches!(p, Place::Parked(k) if k.has_request()));
        if let Some(i) = queued {
            return self.unpark(i);
        }
        if self.kept() == 0 {
            self.switch(Listen::Free);
            // Busy pool: the next connection is usually waiting already.
            if let Some(next) = self.try_accept() {
                return next;
            }
        } else {
            self.switch(Listen::Holding { seen: None });
        }
        let timeout = match self.mode {
            Listen::Holding { seen: Some(seen) } => {
                let left = GRACE.saturating_sub(seen.elapsed());
                if left.is_zero() {
                    return self.take_left_over();
                }
                left.as_micros().div_ceil(1000) as u16
            }
            _ => WAKE_MS,
        };
        let mut tokens = [0u64; MAX_KEPT + 1];
        let began = Instant::now();
        let n = self.poller.wait(&mut tokens, timeout);
        pacer.waited(began);
        let ready = &tokens[..n];
        if let Some(&i) = ready.iter().find(|&&t| t != LISTEN) {
            return self.unpark(i as usize);
        }
        if !ready.contains(&LISTEN) {
            return Next::Nothing;
        }
        match self.mode {
            Listen::Free => self.try_accept().unwrap_or(Next::Nothing),
            Listen::Holding { .. } => {
                // Reported once: not again before the grace is over.
                self.mode = Listen::Holding {
                    seen: Some(Instant::now()),
                };
                Next::Nothing
            }
        }
    }

    /// The grace is over: a connection still waiting is this worker's.
    fn take_left_over(&mut self) -> Next {
        self.mode = Listen::Holding { seen: None };
        let next = self.try_accept();
        let _ = self.poller.rearm(self.listen, LISTEN);
        next.unwrap_or(Next::Nothing)
    }

    /// Register the pool's socket for the way this worker waits now.
    fn switch(&mut self, to: Listen) {
        let holding = |m: Listen| matches!(m, Listen::Holding { .. });
        if holding(self.mode) == holding(to) {
            return;
        }
        self.poller.remove(self.listen);
        let added = match to {
            Listen::Free => self.poller.add_shared(self.listen, LISTEN),
            Listen::Holding { .. } => self.poller.add_once(self.listen, LISTEN),
        };
        if added.is_ok() {
            self.mode = to;
        }
    }

    /// accept() without waiting: `None` when no connection is waiting.
    fn try_accept(&self) -> Option<Next> {
        match corral_sys::socket::accept(self.listen.as_raw_fd()) {
            Ok(sock) => Some(Next::Fresh(sock)),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => None,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => Some(Next::Nothing),
            Err(e) if e.raw_os_error() == Some(libc::ECONNABORTED) => Some(Next::Nothing),
            Err(e) => Some(Next::Failed(e)),
        }
    }
}
