//! The metrics server's HTTP, inside the master's event loop: non-blocking
//! sockets the loop polls, so no client can make the master wait.
//!
//! The master must survive whatever a client does, so every resource a
//! client can claim is bounded: connections ([`Limits::max_connections`];
//! when full, the oldest one still sending its request is dropped for the
//! newcomer, so a slow-loris cannot lock Prometheus out), request size
//! ([`Limits::max_request`], then 431), time ([`Limits::timeout`] for the
//! whole exchange, then the connection is dropped), and accepts per turn
//! ([`Limits::accepts_per_turn`]). One request per connection: the answer
//! is written (as far as the socket takes it, the rest when it is
//! writable), then the server stops writing and reads whatever the client
//! still sends until it closes (at most [`LINGER`]), so that closing with
//! unread input cannot reset the connection under the answer.

mod request;
mod response;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, RawFd};
use std::time::{Duration, Instant};

pub use request::{host_is_literal, parse, ParseError, Request};
pub use response::Response;

/// How long an answered connection is read (and what it sends thrown
/// away) while its client closes.
pub const LINGER: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_connections: usize,
    pub max_request: usize,
    pub timeout: Duration,
    pub accepts_per_turn: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_connections: 64,
            max_request: 8 * 1024,
            timeout: Duration::from_secs(10),
            accepts_per_turn: 32,
        }
    }
}

/// What the event loop should wait for on a descriptor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interest {
    Read,
    Write,
}

/// Whoever answers requests (the master's routes).
pub trait Handler {
    fn handle(&mut self, req: &Request) -> Response;
}

impl<F: FnMut(&Request) -> Response> Handler for F {
    fn handle(&mut self, req: &Request) -> Response {
        self(req)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("unable to listen on {addr} for metrics: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

enum Phase {
    Reading(Vec<u8>),
    Writing { out: Vec<u8>, at: usize },
    Lingering,
}

struct Conn {
    stream: TcpStream,
    accepted: Instant,
    deadline: Instant,
    phase: Phase,
}

pub struct Server {
    listener: TcpListener,
    addr: SocketAddr,
    limits: Limits,
    conns: Vec<Conn>,
}

impl Server {
    pub fn bind(addr: SocketAddr, limits: Limits) -> Result<Server, ServerError> {
        let fail = |source| ServerError::Bind { addr, source };
        let listener = TcpListener::bind(addr).map_err(fail)?;
        listener.set_nonblocking(true).map_err(fail)?;
        let addr = listener.local_addr().map_err(fail)?;
        Ok(Server {
            listener,
            addr,
            limits,
            conns: Vec::new(),
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn connections(&self) -> usize {
        self.conns.len()
    }

    /// The descriptors to poll: the listener, then each connection.
    pub fn watch(&self) -> Vec<(RawFd, Interest)> {
        let mut out = vec![(self.listener.as_raw_fd(), Interest::Read)];
        for c in &self.conns {
            let i = match c.phase {
                Phase::Reading(_) | Phase::Lingering => Interest::Read,
                Phase::Writing { .. } => Interest::Write,
            };
            out.push((c.stream.as_raw_fd(), i));
        }
        out
    }

    /// The earliest moment a connection times out.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.conns.iter().map(|c| c.deadline).min()
    }

    /// A polled descriptor is ready: accept, read, or write.
    pub fn ready(&mut self, fd: RawFd, handler: &mut dyn Handler) {
        if fd == self.listener.as_raw_fd() {
            self.accept();
            return;
        }
        let Some(i) = self.conns.iter().position(|c| c.stream.as_raw_fd() == fd) else {
            return;
        };
        let keep = match self.conns[i].phase {
            Phase::Reading(_) => self.read(i, handler),
            Phase::Writing { .. } => write_some(&mut self.conns[i]),
            Phase::Lingering => drain(&mut self.conns[i]),
        };
        if !keep {
            self.conns.swap_remove(i);
        }
    }

    /// Drop the connections past their deadline.
    pub fn expire(&mut self, now: Instant) {
        self.conns.retain(|c| c.deadline > now);
    }

    fn accept(&mut self) {
        for _ in 0..self.limits.accepts_per_turn {
            let stream = match self.listener.accept() {
                Ok((s, _)) => s,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                // ECONNABORTED, EMFILE...: nothing to keep; try next turn.
                Err(_) => return,
            };
            if stream.set_nonblocking(true).is_err() {
                continue;
            }
            if self.conns.len() >= self.limits.max_connections && !self.evict_oldest_reader() {
                // Every slot is busy writing an answer: this one waits for
                // nothing, it is closed.
                continue;
            }
            let now = Instant::now();
            self.conns.push(Conn {
                stream,
                accepted: now,
                deadline: now + self.limits.timeout,
                phase: Phase::Reading(Vec::new()),
            });
        }
    }

    fn evict_oldest_reader(&mut self) -> bool {
        let oldest = self
            .conns
            .iter()
            .enumerate()
            .filter(|(_, c)| matches!(c.phase, Phase::Reading(_) | Phase::Lingering))
            .min_by_key(|(_, c)| c.accepted)
            .map(|(i, _)| i);
        match oldest {
            Some(i) => {
                self.conns.swap_remove(i);
                true
            }
            None => false,
        }
    }

    /// Read what is there; answer once the head is complete. False: drop
    /// the connection.
    fn read(&mut self, i: usize, handler: &mut dyn Handler) -> bool {
        let max = self.limits.max_request;
        let c = &mut self.conns[i];
        let Phase::Reading(buf) = &mut c.phase else {
            return true;
        };
        let mut chunk = [0u8; 4096];
        loop {
            match c.stream.read(&mut chunk) {
                Ok(0) => return false,
                Ok(n) => {
                    buf.extend_from_slice(&chunk[..n]);
                    if request::head_end(buf).is_some() || buf.len() > max {
                        break;
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return true,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(_) => return false,
            }
        }
        let response = match request::head_end(buf) {
            Some(end) if end <= max => answer(&buf[..end], handler),
            _ => (Response::text(431, "request too large"), false),
        };
        let (response, head_only) = response;
        c.phase = Phase::Writing {
            out: response.encode(head_only),
            at: 0,
        };
        write_some(c)
    }
}

/// The response to a complete head, and whether it is for HEAD.
fn answer(head: &[u8], handler: &mut dyn Handler) -> (Response, bool) {
    match request::parse(head) {
        Ok(req) => {
            let head_only = req.method == "HEAD";
            if req.method != "GET" && !head_only {
                return (Response::text(405, "only GET and HEAD"), false);
            }
            (handler.handle(&req), head_only)
        }
        Err(e) => (Response::text(400, &e.to_string()), false),
    }
}

/// Write what the socket takes. False: done (or failed), drop it.
fn write_some(c: &mut Conn) -> bool {
    let Phase::Writing { out, at } = &mut c.phase else {
        return true;
    };
    while *at < out.len() {
        match c.stream.write(&out[*at..]) {
            Ok(0) => return false,
            Ok(n) => *at += n,
            Err(e) if e.kind() == ErrorKind::WouldBlock => return true,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(_) => return false,
        }
    }
    let _ = c.stream.shutdown(std::net::Shutdown::Write);
    c.phase = Phase::Lingering;
    c.deadline = c.deadline.min(Instant::now() + LINGER);
    drain(c)
}

/// Throw away what an answered client still sends. False: it closed.
fn drain(c: &mut Conn) -> bool {
    let mut sink = [0u8; 4096];
    loop {
        match c.stream.read(&mut sink) {
            Ok(0) => return false,
            Ok(_) => continue,
            Err(e) if e.kind() == ErrorKind::WouldBlock => return true,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(_) => return false,
        }
    }
}
