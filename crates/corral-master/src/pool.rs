//! One generation of a pool as the master supervises it: its scoreboard,
//! its prototype process and the workers the prototype reported.

use std::collections::HashMap;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

use corral_config::{LogLevel, Pool};
use corral_status::{ProcState, Reader};
use corral_sys::nix::unistd::Pid;
use corral_sys::shm::SharedWords;

use crate::log::Logger;
use crate::pm::{self, Action, PmState, PoolView, WorkerView};

/// What the prototype said, parsed strictly: it runs as the tenant and is
/// not trusted.
#[derive(Debug, PartialEq, Eq)]
pub enum ProtoMsg {
    /// Up, with the slow-log layout (addresses and offsets) when sent.
    Ready(Option<crate::slowlog::Layout>),
    Started {
        pid: i32,
        slot: usize,
    },
    Exited {
        pid: i32,
        status: i32,
    },
    Error(String),
}

impl ProtoMsg {
    pub fn parse(bytes: &[u8]) -> Option<ProtoMsg> {
        let text = std::str::from_utf8(bytes).ok()?;
        let mut it = text.splitn(2, ' ');
        let verb = it.next()?;
        let rest = it.next().unwrap_or("");
        let nums = |s: &str| -> Option<(i64, i64)> {
            let mut w = s.split(' ');
            let a = w.next()?.parse().ok()?;
            let b = w.next()?.parse().ok()?;
            w.next().is_none().then_some((a, b))
        };
        match verb {
            "ready" if rest.is_empty() => Some(ProtoMsg::Ready(None)),
            "ready" => {
                let nums: Option<Vec<u64>> = rest.split(' ').map(|w| w.parse().ok()).collect();
                Some(ProtoMsg::Ready(crate::slowlog::Layout::from_words(&nums?)))
            }
            "started" => {
                let (pid, slot) = nums(rest)?;
                (pid > 1 && pid <= i32::MAX as i64 && slot >= 0).then_some(ProtoMsg::Started {
                    pid: pid as i32,
                    slot: slot as usize,
                })
            }
            "exited" => {
                let (pid, status) = nums(rest)?;
                (pid > 1 && pid <= i32::MAX as i64 && (0..=0xffff).contains(&status)).then_some(
                    ProtoMsg::Exited {
                        pid: pid as i32,
                        status: status as i32,
                    },
                )
            }
            "error" => Some(ProtoMsg::Error(
                rest.chars().take(512).filter(|c| !c.is_control()).collect(),
            )),
            _ => None,
        }
    }
}

pub struct Worker {
    pub slot: usize,
    pub started: Instant,
    pub started_us: u64,
    /// Stopped by the process manager: not replaced.
    pub stopped_by_pm: bool,
    pub output: Vec<Capture>,
    /// The request (by its accept time) last written to the slow log.
    pub traced_request: u64,
    /// The request (by its accept time) this worker was terminated for.
    pub terminated_request: u64,
}

/// A worker's captured stdout or stderr (catch_workers_output).
pub struct Capture {
    pub fd: OwnedFd,
    pub stream: &'static str,
    pub partial: Vec<u8>,
}

pub struct Prototype {
    pub pid: Pid,
    pub ctl: OwnedFd,
    pub ready: bool,
    pub layout: Option<crate::slowlog::Layout>,
}

/// One prototype and its workers, running one version of a pool's
/// configuration. A reload starts a new generation beside the old one, which
/// then drains.
pub struct Generation {
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
    pub pm: PmState,
    pub restart_at: Option<Instant>,
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
}

impl Generation {
    pub fn new(cfg: Pool) -> Result<Generation, corral_sys::SysError> {
        let access_log = match &cfg.access_log {
            Some(path) => Some(open_log(path)?),
            None => None,
        };
        // Room for max_children plus workers still finishing after a stop.
        let nslots = (cfg.pm_max_children as usize * 2).max(4);
        let (board, board_fd) = SharedWords::create(
            &format!("corral-{}", cfg.name),
            corral_status::region_words(nslots),
        )?;
        Reader::new(board.words()).format(nslots);
        let mut gen = Generation {
            cfg,
            board,
            board_fd,
            nslots,
            proto: None,
            workers: HashMap::new(),
            reserved: Vec::new(),
            pm: PmState::default(),
            restart_at: None,
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
        };
        // Workers may ask for the status page before the first tick.
        gen.publish(None);
        Ok(gen)
    }

    pub fn name(&self) -> &str {
        &self.cfg.name
    }

    /// How long an ondemand pool without workers keeps its prototype (and
    /// OPcache) before going dormant: ten times pm.process_idle_timeout.
    pub fn dormancy_after(&self) -> std::time::Duration {
        self.cfg.pm_process_idle_timeout * 10
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
            self.send("quit");
            self.drain_deadline = Some(Instant::now() + grace);
        }
    }

    fn free_slot(&self) -> Option<usize> {
        (0..self.nslots).find(|s| {
            !self.reserved.iter().any(|r| r.0 == *s) && !self.workers.values().any(|w| w.slot == *s)
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

    pub fn send(&self, msg: &str) -> bool {
        match &self.proto {
            Some(p) if p.ready => {
                corral_sys::socket::send_with_fds(p.ctl.as_raw_fd(), msg.as_bytes(), &[]).is_ok()
            }
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
            if self.workers.len() + self.reserved.len() >= self.cfg.pm_max_children as usize {
                return;
            }
            if *room == 0 {
                log.warning("The maximum number of processes has been reached. Please review your configuration and consider raising 'process.max'");
                return;
            }
            let Some(slot) = self.free_slot() else { return };
            if self.send(&format!("spawn {slot}")) {
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
                        self.send(&format!("stop {pid}"));
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

    /// Record a worker the prototype started; the pid must really be the
    /// prototype's child and the slot one we reserved.
    pub fn started(&mut self, pid: i32, slot: usize, fds: Vec<OwnedFd>, log: &mut Logger) {
        let Some(pos) = self.reserved.iter().position(|r| r.0 == slot) else {
            log.warning(&format!(
                "[pool {}] prototype reported an unexpected slot {slot}",
                self.cfg.name
            ));
            return;
        };
        let (_, replacement) = self.reserved.remove(pos);
        let proto = self.proto.as_ref().map(|p| p.pid.as_raw());
        if corral_sys::process::parent_of(pid) != proto {
            log.warning(&format!(
                "[pool {}] prototype reported pid {pid} which is not its child",
                self.cfg.name
            ));
            return;
        }
        let mut output = Vec::new();
        let mut it = fds.into_iter();
        if let (Some(out), Some(err)) = (it.next(), it.next()) {
            for (fd, stream) in [(out, "stdout"), (err, "stderr")] {
                let _ = corral_sys::socket::set_nonblocking(fd.as_raw_fd(), true);
                output.push(Capture {
                    fd,
                    stream,
                    partial: Vec::new(),
                });
            }
        }
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
    pub fn exited(&mut self, pid: i32, status: i32, normal_state: bool, log: &mut Logger) -> bool {
        let Some(mut w) = self.workers.remove(&pid) else {
            return false;
        };
        if self.workers.is_empty() {
            self.idle_since = Some(Instant::now());
        }
        Reader::new(self.board.words()).clear_slot(w.slot);
        for c in &mut w.output {
            drain_capture(&self.cfg, pid, c, log, true);
        }
        let elapsed = w.started.elapsed();
        let how = describe_status(status);
        let clean = status >> 8 == 0 && status & 0x7f == 0 || status & 0x7f == libc::SIGQUIT;
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
            for (i, c) in w.output.iter().enumerate() {
                out.push((pid, i, c.fd.as_raw_fd()));
            }
        }
        out
    }

    pub fn read_capture(&mut self, pid: i32, idx: usize, log: &mut Logger) {
        let cfg = &self.cfg;
        if let Some(w) = self.workers.get_mut(&pid) {
            let closed = w
                .output
                .get_mut(idx)
                .is_some_and(|c| drain_capture(cfg, pid, c, log, false));
            if closed {
                w.output.remove(idx);
            }
        }
    }
}

/// Read what a worker wrote and log it line by line, php-fpm style.
/// Returns true when the pipe is closed.
fn drain_capture(cfg: &Pool, pid: i32, c: &mut Capture, log: &mut Logger, at_exit: bool) -> bool {
    let mut buf = [0u8; 4096];
    let mut closed = false;
    loop {
        match corral_sys::nix::unistd::read(c.fd.as_raw_fd(), &mut buf) {
            Ok(0) => {
                closed = true;
                break;
            }
            Ok(n) => c.partial.extend_from_slice(&buf[..n]),
            Err(corral_sys::nix::errno::Errno::EINTR) => continue,
            Err(_) => break,
        }
        // A tenant cannot make the master buffer without bound.
        if c.partial.len() > 64 * 1024 {
            break;
        }
    }
    let limit = 1024usize.saturating_sub(100);
    while let Some(nl) = c.partial.iter().position(|&b| b == b'\n') {
        let line: Vec<u8> = c.partial.drain(..=nl).collect();
        emit(cfg, pid, c.stream, &line[..line.len() - 1], false, log);
    }
    while c.partial.len() > limit {
        let line: Vec<u8> = c.partial.drain(..limit).collect();
        emit(cfg, pid, c.stream, &line, false, log);
    }
    if (closed || at_exit) && !c.partial.is_empty() {
        let line = std::mem::take(&mut c.partial);
        emit(cfg, pid, c.stream, &line, true, log);
    }
    closed
}

fn emit(cfg: &Pool, pid: i32, stream: &str, line: &[u8], cut: bool, log: &mut Logger) {
    let text = String::from_utf8_lossy(line);
    if cfg.decorate_workers_output {
        let suffix = if cut { ", pipe is closed" } else { "" };
        log.log(
            LogLevel::Warning,
            &format!(
                "[pool {}] child {} said into {}: \"{}\"{}",
                cfg.name, pid, stream, text, suffix
            ),
        );
    } else {
        let mut raw = text.into_owned().into_bytes();
        raw.push(b'\n');
        log.raw(LogLevel::Warning, &raw);
    }
}

/// php-fpm's wording for a wait status.
pub fn describe_status(status: i32) -> String {
    let sig = status & 0x7f;
    if sig == 0 {
        return format!("with code {}", (status >> 8) & 0xff);
    }
    let name = corral_sys::nix::sys::signal::Signal::try_from(sig)
        .map(|s| s.as_str().to_string())
        .unwrap_or_else(|_| "?".into());
    let core = if status & 0x80 != 0 {
        " - core dumped"
    } else {
        ""
    };
    format!("on signal {sig} ({name}{core})")
}

/// Open a log for appending, created 0600 as php-fpm creates its logs.
pub fn open_log(path: &std::path::Path) -> Result<OwnedFd, corral_sys::SysError> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
        .map(OwnedFd::from)
        .map_err(|e| {
            corral_sys::SysError::new(format!("failed to open access log ({})", path.display()), e)
        })
}

/// How long the master waits between prototype restarts.
pub const PROTO_RESTART_DELAY: Duration = Duration::from_secs(1);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_only_well_formed_messages() {
        assert_eq!(ProtoMsg::parse(b"ready"), Some(ProtoMsg::Ready(None)));
        assert_eq!(
            ProtoMsg::parse(b"started 123 4"),
            Some(ProtoMsg::Started { pid: 123, slot: 4 })
        );
        assert_eq!(
            ProtoMsg::parse(b"exited 123 256"),
            Some(ProtoMsg::Exited {
                pid: 123,
                status: 256
            })
        );
        assert_eq!(
            ProtoMsg::parse(b"started 1 0"),
            None,
            "pid 1 is never a worker"
        );
        assert_eq!(ProtoMsg::parse(b"started -5 0"), None);
        assert_eq!(ProtoMsg::parse(b"started 5 0 extra"), None);
        assert_eq!(ProtoMsg::parse(b"exited 9 99999999"), None);
        assert_eq!(ProtoMsg::parse(b"\xff\xfe"), None);
        assert_eq!(ProtoMsg::parse(b"ready now"), None);
        assert_eq!(
            ProtoMsg::parse(b"error a\nb"),
            Some(ProtoMsg::Error("ab".into()))
        );
    }

    #[test]
    fn describes_statuses_like_php_fpm() {
        assert_eq!(describe_status(0), "with code 0");
        assert_eq!(describe_status(255 << 8), "with code 255");
        assert_eq!(describe_status(15), "on signal 15 (SIGTERM)");
        assert_eq!(
            describe_status(11 | 0x80),
            "on signal 11 (SIGSEGV - core dumped)"
        );
    }
}
