//! One generation of a pool as the master supervises it: its scoreboard,
//! its prototype process and the workers the prototype reported.

use std::collections::HashMap;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::time::Instant;

use corral_config::{LogLevel, Pool};
use corral_ipc::{Channel, ToPrototype, WaitStatus};
use corral_status::{ProcState, Reader};
use corral_sys::shm::SharedWords;

use crate::ids::GenId;
use crate::restart::RestartPolicy;

use crate::log::Logger;
use crate::pm::{self, Action, PmState, PoolView, WorkerView};
use crate::worker_output::{Format, LineSink, OutputStream, Pipe, READ_CHUNK};

/// A reported worker whose pid /proc showed with another parent.
///
/// Under fast recycling that is innocent: the worker exited, the prototype
/// reaped it and the pid went to another process before the master read
/// the report. The prototype sends the exit right after reaping, so its
/// report arrives soon; a pid that no report explains within
/// [`UNVERIFIED_GRACE`] was a lie and is logged.
#[derive(Debug)]
pub struct Unverified {
    pub pid: i32,
    pub slot: usize,
    pub since: Instant,
}

/// How long a worker may stay unverified before it is called a lie.
pub const UNVERIFIED_GRACE: std::time::Duration = std::time::Duration::from_secs(2);

pub struct Worker {
    pub slot: usize,
    pub started: Instant,
    pub started_us: u64,
    /// Stopped by the process manager: not replaced.
    pub stopped_by_pm: bool,
    pub output: Captured,
    /// The request (by its accept time) last written to the slow log.
    pub traced_request: u64,
    /// The request (by its accept time) this worker was terminated for.
    pub terminated_request: u64,
}

/// A worker's captured stdout and stderr (catch_workers_output): the read
/// ends of its pipes, each kept in its place until it closes, and the one
/// line both are writing, as php-fpm keeps one stream per child.
pub struct Captured {
    pub pipes: [Option<OwnedFd>; 2],
    pub stream: OutputStream,
}

impl Captured {
    const PIPES: [Pipe; 2] = [Pipe::Stdout, Pipe::Stderr];
}

pub struct Prototype {
    pub pid: i32,
    pub ctl: Channel,
    pub ready: bool,
    pub layout: Option<crate::slowlog::Layout>,
    /// For the restart policy: how long it lived.
    pub started: Instant,
}

/// What a prototype reported about its confinement (namespaces, Landlock,
/// no_new_privs), for `corral status`. The prototype runs as the tenant,
/// so the list is bounded: a flood of reports keeps only the first ones.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IsolationReport {
    pub applied: Vec<String>,
    pub lacking: Vec<String>,
}

impl IsolationReport {
    pub const MAX_ITEMS: usize = 32;

    /// Keeps the item; false when the list is full and it was dropped.
    pub fn note(&mut self, applied: bool, what: String) -> bool {
        let list = if applied {
            &mut self.applied
        } else {
            &mut self.lacking
        };
        if list.len() >= Self::MAX_ITEMS {
            return false;
        }
        list.push(what);
        true
    }
}

/// One prototype and its workers, running one version of a pool's
/// configuration. A reload starts a new generation beside the old one, which
/// then drains.
pub struct Generation {
    pub id: GenId,
    pub cfg: Pool,
    pub board: SharedWords,
    pub board_fd: OwnedFd,
    pub nslots: usize,
    pub proto: Option<Prototype>,
    pub workers: HashMap<i32, Worker>,
    /// Slots promised to a spawn the prototype has not confirmed yet, and
    /// whether that spawn replaces a dead worker (logged at NOTICE, as
    /// php-fpm does; start-up and pm spawns are DEBUG).
    pub reserved: Vec<(usize, bool)>,
    /// Workers the prototype reported whose parent /proc did not confirm,
    /// held back until their exit report explains it (see `started`).
    pub unverified: Vec<Unverified>,
    pub pm: PmState,
    /// When to start the prototype again after it died or failed to start.
    pub restart_at: Option<Instant>,
    pub restarts: RestartPolicy,
    pub initial_done: bool,
    /// Retiring: "quit" has been sent; no more spawns or restarts.
    pub quit_sent: bool,
    /// Retiring: escalate to "term" after this.
    pub drain_deadline: Option<Instant>,
    /// Slow-log traces taken (the status page's "slow requests").
    pub slow_requests: u64,
    /// access.log, opened by the master so workers need no right to it.
    pub access_log: Option<OwnedFd>,
    /// ondemand: no prototype runs until a connection arrives (an idle
    /// site costs a socket, not a process).
    pub dormant: bool,
    /// ondemand: since when the pool has had no worker.
    pub idle_since: Option<Instant>,
    /// The prototype is being stopped for idleness, not lost.
    pub sleeping: bool,
    /// For the status page: when this generation started, its peaks.
    pub started_s: u64,
    pub max_active: u64,
    pub max_listen_queue: u64,
    /// What its current prototype said about its confinement.
    pub isolation: IsolationReport,
    /// Its pool's cgroup holds this generation's limits, and each of its
    /// prototypes starts in the leaf `g<N>`.
    pub cgroup: bool,
}

impl Generation {
    pub fn new(id: GenId, cfg: Pool) -> Result<Generation, crate::error::PoolError> {
        use crate::error::PoolError;
        let access_log = match &cfg.access_log {
            Some(path) => Some(open_log(path).map_err(|source| PoolError::AccessLog {
                pool: cfg.name.clone(),
                source,
            })?),
            None => None,
        };
        create_slowlog(&cfg)?;
        // Room for max_children plus workers still finishing after a stop.
        let nslots = (cfg.pm_max_children as usize * 2).max(4);
        let (board, board_fd) = SharedWords::create(
            &format!("corral-{}", cfg.name),
            corral_status::region_words(nslots),
        )
        .map_err(|source| PoolError::Scoreboard {
            pool: cfg.name.clone(),
            source,
        })?;
        Reader::new(board.words()).format(nslots);
        let mut gen = Generation {
            id,
            cfg,
            board,
            board_fd,
            nslots,
            proto: None,
            workers: HashMap::new(),
            reserved: Vec::new(),
            unverified: Vec::new(),
            pm: PmState::default(),
            restart_at: None,
            restarts: RestartPolicy::default(),
            initial_done: false,
            quit_sent: false,
            drain_deadline: None,
            slow_requests: 0,
            access_log,
            dormant: false,
            idle_since: None,
            sleeping: false,
            started_s: corral_status::now_us() / 1_000_000,
            max_active: 0,
            max_listen_queue: 0,
            isolation: IsolationReport::default(),
            cgroup: false,
        };
        // Workers may ask for the status page before the first tick.
        gen.publish(None);
        Ok(gen)
    }

    pub fn name(&self) -> &str {
        &self.cfg.name
    }

    /// How long an ondemand pool without workers keeps its prototype (and
    /// OPcache) before going dormant: corral.prototype_idle_timeout, by
    /// default ten times pm.process_idle_timeout. A warm prototype answers
    /// the next first request with a fork; a dormant one costs no memory
    /// but needs PHP started again (from the zygote).
    pub fn dormancy_after(&self) -> std::time::Duration {
        self.cfg
            .prototype_idle_timeout
            .unwrap_or(self.cfg.pm_process_idle_timeout * 10)
    }

    /// ondemand and idle long enough: stop the prototype.
    pub fn should_sleep(&self, now: Instant) -> bool {
        self.cfg.pm == corral_config::PmKind::Ondemand
            && !self.sleeping
            && !self.quit_sent
            && self.proto.as_ref().is_some_and(|p| p.ready)
            && self.workers.is_empty()
            && self.reserved.is_empty()
            && self
                .idle_since
                .is_some_and(|t| now.duration_since(t) >= self.dormancy_after())
    }

    /// Up: the prototype is ready and its first workers are confirmed.
    pub fn is_up(&self) -> bool {
        self.proto.as_ref().is_some_and(|p| p.ready)
            && self.initial_done
            && self.reserved.is_empty()
    }

    /// Tell the prototype to finish in-flight requests and stop.
    pub fn retire(&mut self, grace: std::time::Duration) {
        if !self.quit_sent {
            self.quit_sent = true;
            self.send(&ToPrototype::Quit);
            self.drain_deadline = Some(Instant::now() + grace);
        }
    }

    fn free_slot(&self) -> Option<usize> {
        (0..self.nslots).find(|s| {
            !self.reserved.iter().any(|r| r.0 == *s)
                && !self.unverified.iter().any(|u| u.slot == *s)
                && !self.workers.values().any(|w| w.slot == *s)
        })
    }

    /// The scoreboard seen through the pids we know: slots whose pid does not
    /// match what the prototype reported are ignored.
    pub fn views(&self) -> Vec<WorkerView> {
        let reader = Reader::new(self.board.words());
        self.workers
            .iter()
            .filter(|(_, w)| !w.stopped_by_pm)
            .map(|(&pid, w)| {
                let slot = reader.slot(w.slot, pid as u32);
                WorkerView {
                    pid,
                    // A worker that has not written its slot yet is about to
                    // accept: count it idle, or ondemand would spawn twice.
                    idle: slot.as_ref().is_none_or(|s| s.state == ProcState::Idle),
                    started_us: w.started_us,
                    changed_us: slot.map_or(w.started_us, |s| s.changed_us),
                }
            })
            .collect()
    }

    /// Whether a worker of this generation may still take a new
    /// connection: one idle on the scoreboard, or not written there yet
    /// (about to accept). A retired generation's idle workers leave on
    /// their quit signal; until they have, a client can still reach the
    /// old configuration.
    pub fn may_accept(&self) -> bool {
        let reader = Reader::new(self.board.words());
        self.workers.iter().any(|(&pid, w)| {
            reader
                .slot(w.slot, pid as u32)
                .is_none_or(|s| s.state == ProcState::Idle)
        })
    }

    /// Tell a ready prototype something; false when there is none to tell
    /// (not started, not ready yet, or gone).
    pub fn send(&self, msg: &ToPrototype) -> bool {
        self.send_with(msg, &[])
    }

    pub fn send_with(&self, msg: &ToPrototype, fds: &[RawFd]) -> bool {
        match &self.proto {
            Some(p) if p.ready => p.ctl.send(msg, fds).is_ok(),
            _ => false,
        }
    }

    /// Ask the prototype for `n` more workers, within max_children and the
    /// global process.max.
    pub fn spawn(&mut self, n: u32, room: &mut u32, log: &mut Logger) {
        self.spawn_as(n, false, room, log)
    }

    /// Replace a worker that died.
    pub fn replace(&mut self, room: &mut u32, log: &mut Logger) {
        self.spawn_as(1, true, room, log)
    }

    fn spawn_as(&mut self, n: u32, replacement: bool, room: &mut u32, log: &mut Logger) {
        for _ in 0..n {
            if self.workers.len() + self.reserved.len() + self.unverified.len()
                >= self.cfg.pm_max_children as usize
            {
                return;
            }
            if *room == 0 {
                log.warning("The maximum number of processes has been reached. Please review your configuration and consider raising 'process.max'");
                return;
            }
            let Some(slot) = self.free_slot() else { return };
            if self.send(&ToPrototype::Spawn { slot: slot as u32 }) {
                self.reserved.push((slot, replacement));
                *room -= 1;
            }
        }
    }

    fn view<'a>(&'a self, workers: &'a [WorkerView]) -> PoolView<'a> {
        PoolView {
            name: &self.cfg.name,
            pm: self.cfg.pm,
            max_children: self.cfg.pm_max_children,
            start_servers: self.cfg.pm_start_servers,
            min_spare: self.cfg.pm_min_spare_servers,
            max_spare: self.cfg.pm_max_spare_servers,
            max_spawn_rate: self.cfg.pm_max_spawn_rate,
            idle_timeout: self.cfg.pm_process_idle_timeout,
            workers,
        }
    }

    pub fn apply(&mut self, actions: Vec<Action>, room: &mut u32, log: &mut Logger) {
        for a in actions {
            match a {
                Action::Spawn(n) => self.spawn(n, room, log),
                Action::StopIdle(pid) => {
                    if let Some(w) = self.workers.get_mut(&pid) {
                        w.stopped_by_pm = true;
                        self.send(&ToPrototype::Stop { pid });
                    }
                }
                Action::Log(level, msg) => log.log(level, &msg),
            }
        }
    }

    /// Start the pool's first workers once its prototype is ready.
    pub fn start_initial(&mut self, room: &mut u32, log: &mut Logger) {
        let views = self.views();
        let n = pm::initial(&self.view(&views));
        self.initial_done = true;
        self.spawn(n, room, log);
    }

    /// Write the numbers only the master knows where the pool's workers
    /// read them for the status page.
    pub fn publish(&mut self, listen_queue: Option<(u64, u64)>) {
        let active = self.views().iter().filter(|w| !w.idle).count() as u64;
        self.max_active = self.max_active.max(active);
        let (queue, queue_len) = listen_queue.unwrap_or((0, 0));
        self.max_listen_queue = self.max_listen_queue.max(queue);
        Reader::new(self.board.words()).publish(&corral_status::Published {
            start_s: self.started_s,
            max_active: self.max_active,
            max_children_reached: self.pm.max_children_reached,
            slow_requests: self.slow_requests,
            listen_queue: queue,
            max_listen_queue: self.max_listen_queue,
            listen_queue_len: queue_len,
            pm: match self.cfg.pm {
                corral_config::PmKind::Static => 1,
                corral_config::PmKind::Dynamic => 2,
                corral_config::PmKind::Ondemand => 3,
            },
        });
    }

    /// Reported workers no exit report explained in time: the prototype
    /// named a pid that is not its child. Their slots are freed.
    pub fn expire_unverified(&mut self, now: Instant, log: &mut Logger) {
        let name = &self.cfg.name;
        self.unverified.retain(|u| {
            let keep = now.duration_since(u.since) < UNVERIFIED_GRACE;
            if !keep {
                log.warning(&format!(
                    "[pool {name}] prototype reported pid {} which is not its child",
                    u.pid
                ));
            }
            keep
        });
    }

    pub fn tick(&mut self, now_us: u64, room: &mut u32, log: &mut Logger) {
        if !self.proto.as_ref().is_some_and(|p| p.ready) || !self.reserved.is_empty() {
            return;
        }
        let views = self.views();
        let mut st = std::mem::take(&mut self.pm);
        let actions = pm::tick(&self.view(&views), &mut st, now_us);
        self.pm = st;
        self.apply(actions, room, log);
    }

    /// ondemand: the socket is readable and nobody may be there to accept.
    pub fn on_accept(&mut self, room: &mut u32, log: &mut Logger) {
        if !self.reserved.is_empty() {
            return;
        }
        let views = self.views();
        let mut st = std::mem::take(&mut self.pm);
        let actions = pm::on_accept(&self.view(&views), &mut st);
        self.pm = st;
        self.apply(actions, room, log);
    }

    /// Should the master watch the listening socket for this pool?
    pub fn wants_accept_watch(&self) -> bool {
        if self.dormant {
            return true;
        }
        self.cfg.pm == corral_config::PmKind::Ondemand
            && self.proto.as_ref().is_some_and(|p| p.ready)
            && self.reserved.is_empty()
            && !self.views().iter().any(|w| w.idle)
            && self.workers.len() < self.cfg.pm_max_children as usize
    }

    /// Record a worker the prototype started. The slot must be one we
    /// reserved, and the pid the prototype's child: `parent` is what the
    /// kernel says its parent is. A worker that already exited (fast
    /// recycling: `pm.max_requests = 2`) has no parent to show any more;
    /// its exit report follows on the same channel, so it is recorded and
    /// then removed, without a false alarm. If its pid was reused in
    /// between, /proc names a stranger as the parent: that worker is held
    /// as [`Unverified`] until its exit report arrives. Signals are never
    /// sent on the strength of this record alone: every kill checks the
    /// parent again.
    pub fn started(
        &mut self,
        pid: i32,
        slot: usize,
        parent: Option<i32>,
        fds: Vec<OwnedFd>,
        now: Instant,
        log: &mut Logger,
    ) {
        let Some(pos) = self.reserved.iter().position(|r| r.0 == slot) else {
            log.warning(&format!(
                "[pool {}] prototype reported an unexpected slot {slot}",
                self.cfg.name
            ));
            return;
        };
        let (_, replacement) = self.reserved.remove(pos);
        let proto = self.proto.as_ref().map(|p| p.pid);
        if parent.is_some() && parent != proto {
            self.unverified.push(Unverified {
                pid,
                slot,
                since: now,
            });
            return;
        }
        let mut pipes = [None, None];
        if let Ok([out, err]) = <[OwnedFd; 2]>::try_from(fds) {
            for fd in [&out, &err] {
                let _ = corral_sys::socket::set_nonblocking(fd.as_raw_fd(), true);
            }
            pipes = [Some(out), Some(err)];
        }
        let output = Captured {
            pipes,
            stream: OutputStream::new(&self.cfg.name, pid),
        };
        let level = if replacement {
            LogLevel::Notice
        } else {
            LogLevel::Debug
        };
        log.log(
            level,
            &format!("[pool {}] child {} started", self.cfg.name, pid),
        );
        self.workers.insert(
            pid,
            Worker {
                slot,
                started: Instant::now(),
                started_us: corral_status::now_us(),
                stopped_by_pm: false,
                traced_request: 0,
                terminated_request: 0,
                output,
            },
        );
    }

    /// A worker is gone. Returns whether it should be replaced.
    pub fn exited(
        &mut self,
        pid: i32,
        status: WaitStatus,
        normal_state: bool,
        log: &mut Logger,
    ) -> bool {
        if let Some(pos) = self.unverified.iter().position(|u| u.pid == pid) {
            self.unverified.remove(pos);
            log.debug(&format!(
                "[pool {}] child {pid} exited before the master saw it run",
                self.cfg.name
            ));
            return true;
        }
        let Some(mut w) = self.workers.remove(&pid) else {
            return false;
        };
        if self.workers.is_empty() {
            self.idle_since = Some(Instant::now());
        }
        Reader::new(self.board.words()).clear_slot(w.slot);
        drain_all(&self.cfg, &mut w.output, log);
        let elapsed = w.started.elapsed();
        let how = describe_status(status);
        let clean = status.code() == Some(0) || status.signal() == Some(libc::SIGQUIT);
        let level = if !normal_state {
            LogLevel::Debug
        } else if clean {
            LogLevel::Notice
        } else {
            LogLevel::Warning
        };
        if w.stopped_by_pm {
            log.debug(&format!(
                "[pool {}] child {} has been killed by the process management after {}.{:06} seconds from start",
                self.cfg.name,
                pid,
                elapsed.as_secs(),
                elapsed.subsec_micros()
            ));
        }
        log.log(
            level,
            &format!(
                "[pool {}] child {} exited {} after {}.{:06} seconds from start",
                self.cfg.name,
                pid,
                how,
                elapsed.as_secs(),
                elapsed.subsec_micros()
            ),
        );
        !w.stopped_by_pm
    }

    /// Every fd the event loop should watch for worker output.
    pub fn capture_fds(&self) -> Vec<(i32, usize, RawFd)> {
        let mut out = Vec::new();
        for (&pid, w) in &self.workers {
            for (i, fd) in w.output.pipes.iter().enumerate() {
                if let Some(fd) = fd {
                    out.push((pid, i, fd.as_raw_fd()));
                }
            }
        }
        out
    }

    pub fn read_capture(&mut self, pid: i32, idx: usize, log: &mut Logger) {
        if let Some(w) = self.workers.get_mut(&pid) {
            drain_pipe(&self.cfg, &mut w.output, idx, log);
        }
    }
}

/// The log as the place finished worker lines go. A decorated line is a
/// WARNING and obeys log_level; undecorated output is written as it is.
struct LogSink<'a> {
    log: &'a mut Logger,
    decorate: bool,
}

impl LineSink for LogSink<'_> {
    fn prefix(&mut self) -> Vec<u8> {
        self.log.prefix(LogLevel::Warning).into_bytes()
    }

    fn line(&mut self, line: &[u8]) {
        if !self.decorate || LogLevel::Warning >= self.log.level {
            self.log.raw(LogLevel::Warning, line);
        }
    }
}

fn output_format(cfg: &Pool, log: &Logger) -> Format {
    Format {
        limit: log.limit,
        decorate: cfg.decorate_workers_output,
    }
}

/// Read what a worker wrote on one pipe and log it, php-fpm style, in
/// php-fpm's read size; the pipe is closed once the worker's end is.
fn drain_pipe(cfg: &Pool, c: &mut Captured, idx: usize, log: &mut Logger) {
    let Some(fd) = c.pipes.get(idx).and_then(Option::as_ref) else {
        return;
    };
    let pipe = Captured::PIPES[idx];
    let fmt = output_format(cfg, log);
    let first = c.stream.first_read();
    let mut sink = LogSink {
        log,
        decorate: fmt.decorate,
    };
    let mut buf = [0u8; READ_CHUNK];
    // A tenant cannot hold the master here: the rest waits for the next turn.
    let mut budget: usize = 64 * 1024;
    let mut closed = false;
    while budget > 0 {
        match corral_sys::nix::unistd::read(fd.as_raw_fd(), &mut buf) {
            Ok(0) => {
                closed = true;
                break;
            }
            Ok(n) => {
                c.stream.feed(pipe, &buf[..n], fmt, &mut sink);
                budget = budget.saturating_sub(n);
            }
            Err(corral_sys::nix::errno::Errno::EINTR) => continue,
            Err(corral_sys::nix::errno::Errno::EAGAIN) => break,
            Err(_) => {
                closed = true;
                break;
            }
        }
    }
    if closed {
        c.stream.closed(first, fmt, &mut sink);
        c.pipes[idx] = None;
    }
}

/// A worker exited: what is left in its pipes is logged, stdout first as
/// php-fpm fires the events, and then its open line.
fn drain_all(cfg: &Pool, c: &mut Captured, log: &mut Logger) {
    for idx in 0..c.pipes.len() {
        drain_pipe(cfg, c, idx, log);
    }
    let fmt = output_format(cfg, log);
    let mut sink = LogSink {
        log,
        decorate: fmt.decorate,
    };
    c.stream.close(fmt, &mut sink);
}

/// php-fpm's wording for a wait status.
pub fn describe_status(status: WaitStatus) -> String {
    let Some(sig) = status.signal() else {
        return format!("with code {}", status.code().unwrap_or(0));
    };
    let name = corral_sys::nix::sys::signal::Signal::try_from(sig)
        .map(|s| s.as_str().to_string())
        .unwrap_or_else(|_| "?".into());
    let core = if status.core_dumped() {
        " - core dumped"
    } else {
        ""
    };
    format!("on signal {sig} ({name}{core})")
}

/// Open a log for appending, created 0600 as php-fpm creates its logs.
fn open_append(path: &std::path::Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
}

/// An access log, opened by the master for the pool's workers.
pub fn open_log(path: &std::path::Path) -> Result<OwnedFd, corral_sys::SysError> {
    open_append(path).map(OwnedFd::from).map_err(|e| {
        corral_sys::SysError::new(format!("failed to open access log ({})", path.display()), e)
    })
}

/// php-fpm creates a pool's slow log as it reads the configuration, when
/// request_slowlog_timeout is set: the file is there from the start (for
/// log shippers and logrotate), and a path that cannot be written fails
/// the start rather than the first slow request.
fn create_slowlog(cfg: &Pool) -> Result<(), crate::error::PoolError> {
    match &cfg.slowlog {
        Some(path) if !cfg.request_slowlog_timeout.is_zero() => open_append(path)
            .map(drop)
            .map_err(|source| crate::error::PoolError::Slowlog {
                path: path.clone(),
                source,
            }),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describes_statuses_like_php_fpm() {
        assert_eq!(describe_status(WaitStatus::exited(0)), "with code 0");
        assert_eq!(describe_status(WaitStatus::exited(255)), "with code 255");
        assert_eq!(
            describe_status(WaitStatus::signaled(15, false)),
            "on signal 15 (SIGTERM)"
        );
        assert_eq!(
            describe_status(WaitStatus::signaled(11, true)),
            "on signal 11 (SIGSEGV - core dumped)"
        );
    }
}
