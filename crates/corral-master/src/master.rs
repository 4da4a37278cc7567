//! The master: root, single-threaded, never loads PHP. It owns the sockets
//! and the policy; prototypes and workers do the PHP.

use std::collections::BTreeMap;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use corral_config::{Config, Pool};
use corral_ipc::ToPrototype;
use corral_sys::nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use corral_sys::nix::sys::signal::Signal;

use crate::error::{MasterError, PoolError};
use crate::ids::{GenId, Ids, PoolId};
use crate::log::Logger;
use crate::os::Os;
use crate::pool::Generation;

/// php-fpm's exit codes (sysexits).
pub const EXIT_OK: i32 = 0;
pub const EXIT_SOFTWARE: i32 = 70;
pub const EXIT_CONFIG: i32 = 78;

/// How long retiring workers may take over in-flight requests when
/// process_control_timeout is 0 (php-fpm would kill them at once).
pub const DEFAULT_DRAIN: Duration = Duration::from_secs(60);

/// Control messages read from one prototype per turn of the event loop.
pub(crate) const MAX_MESSAGES_PER_TURN: usize = 64;

/// How the master was started.
#[derive(Debug, Clone, Default)]
pub struct MasterOptions {
    pub config_path: PathBuf,
    pub prefix: Option<PathBuf>,
    pub pid_file: Option<PathBuf>,
    pub force_daemon: Option<bool>,
    pub force_stderr: bool,
    pub allow_root: bool,
    /// Arguments for the prototype's PHP (-c, -n, -d ...).
    pub php_args: Vec<String>,
    /// Where `corral reload` / `corral status` reach the master.
    pub control_socket: Option<PathBuf>,
    /// Daemonized: the launcher waits on this pipe for "1" (up) or "0".
    pub ready_pipe: Option<std::sync::Arc<OwnedFd>>,
}

/// Tell a waiting launcher how start-up went (php-fpm's send_config_pipe).
fn notify_launcher(opts: &mut MasterOptions, ok: bool) {
    if let Some(fd) = opts.ready_pipe.take() {
        let _ = corral_sys::nix::unistd::write(&*fd, if ok { b"1" } else { b"0" });
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum State {
    Normal,
    Finishing,
    Terminating,
}

/// A pool: its socket (kept across reloads) and its generations.
pub struct PoolSup {
    pub id: PoolId,
    pub name: String,
    pub listen: OwnedFd,
    /// The socket's path, unlinked when the pool is gone.
    pub unix_path: Option<PathBuf>,
    /// The address `listen` was opened for (php-fpm's socket key).
    pub listen_address: String,
    /// pm.status_listen: this is `<parent>_status`, reporting the parent.
    pub status_of: Option<String>,
    pub current: Option<Generation>,
    pub retiring: Vec<Generation>,
}

impl PoolSup {
    pub(crate) fn gen(&self, id: GenId) -> Option<&Generation> {
        self.gens().find(|g| g.id == id)
    }
    pub(crate) fn gen_mut(&mut self, id: GenId) -> Option<&mut Generation> {
        self.current
            .iter_mut()
            .chain(self.retiring.iter_mut())
            .find(|g| g.id == id)
    }
    pub(crate) fn gens(&self) -> impl Iterator<Item = &Generation> {
        self.current.iter().chain(self.retiring.iter())
    }
    pub(crate) fn gens_mut(&mut self) -> impl Iterator<Item = &mut Generation> {
        self.current.iter_mut().chain(self.retiring.iter_mut())
    }
    pub(crate) fn is_current(&self, id: GenId) -> bool {
        self.current.as_ref().is_some_and(|g| g.id == id)
    }
    pub(crate) fn is_empty(&self) -> bool {
        self.current.is_none() && self.retiring.is_empty()
    }
}

pub(crate) struct Master {
    pub(crate) opts: MasterOptions,
    pub(crate) config: Config,
    pub(crate) log: Logger,
    pub(crate) os: Box<dyn Os>,
    pub(crate) ids: Ids,
    /// In creation order, which is configuration order (a status pool
    /// right after its parent).
    pub(crate) pools: BTreeMap<PoolId, PoolSup>,
    pub(crate) state: State,
    pub(crate) stop_deadline: Option<Instant>,
    pub(crate) sig_fd: Option<OwnedFd>,
    pub(crate) control: Option<UnixListener>,
    pub(crate) ready_logged: bool,
    pub(crate) notify: crate::systemd::Notifier,
    /// What PHP read at start-up; a reload restarts every pool if it moved.
    pub(crate) ini_fingerprint: u64,
    /// When workers recently died of SIGSEGV/SIGBUS (emergency_restart_*).
    pub(crate) crashes: std::collections::VecDeque<Instant>,
    /// For the systemd STATUS line: requests seen at the last report.
    pub(crate) last_requests: (u64, Instant),
}

/// Run the master until it is told to stop. Returns the exit code.
pub fn run(mut opts: MasterOptions, config: Config, log: Logger) -> i32 {
    let code = start(&mut opts, config, log);
    notify_launcher(&mut opts, false);
    code
}

/// Every pool to run: each configured pool, followed by its hidden
/// `<pool>_status` pool when it has pm.status_listen. The second element
/// names the parent of a status pool.
pub(crate) fn expand(pools: &[Pool]) -> Vec<(Pool, Option<String>)> {
    let mut out = Vec::new();
    for p in pools {
        out.push((p.clone(), None));
        if let Some(st) = corral_config::status_pool(p) {
            out.push((st, Some(p.name.clone())));
        }
    }
    out
}

fn start(opts: &mut MasterOptions, config: Config, log: Logger) -> i32 {
    let mut m = Master::new(opts.clone(), config, log, Box::new(crate::os::RealOs));
    if let Err(e) = m.open_everything() {
        m.log.error(&e.to_string());
        if matches!(e, MasterError::Pool(_)) {
            m.log.error("FPM initialization failed");
            return EXIT_CONFIG;
        }
        return EXIT_SOFTWARE;
    }
    m.log
        .notice(&format!("fpm is running, pid {}", std::process::id()));
    let ids: Vec<PoolId> = m.pools.keys().copied().collect();
    for id in ids {
        m.start_or_sleep(id);
    }
    let code = m.event_loop();
    m.clean_up();
    m.log.notice("exiting, bye-bye!");
    code
}

impl Master {
    pub(crate) fn new(opts: MasterOptions, config: Config, log: Logger, os: Box<dyn Os>) -> Master {
        let ini_fingerprint = crate::php_ini::fingerprint(&opts.php_args);
        Master {
            opts,
            config,
            log,
            os,
            ids: Ids::default(),
            pools: BTreeMap::new(),
            state: State::Normal,
            stop_deadline: None,
            sig_fd: None,
            control: None,
            ready_logged: false,
            notify: crate::systemd::Notifier::from_env(),
            ini_fingerprint,
            crashes: std::collections::VecDeque::new(),
            last_requests: (0, Instant::now()),
        }
    }

    /// Signals, every pool's socket, the control socket and the pid file,
    /// in php-fpm's order.
    fn open_everything(&mut self) -> Result<(), MasterError> {
        let sig_fd = corral_sys::signal::master_signals(&[
            Signal::SIGTERM,
            Signal::SIGINT,
            Signal::SIGQUIT,
            Signal::SIGUSR1,
            Signal::SIGUSR2,
            Signal::SIGHUP,
            Signal::SIGCHLD,
        ])
        .map_err(MasterError::Signals)?;
        self.sig_fd = Some(sig_fd);
        self.open_pools()?;
        // Without a control socket corral still serves and reloads on
        // SIGUSR2; a second master on the host must not fail because the
        // default path is taken.
        if let Some(path) = &self.opts.control_socket {
            match corral_ipc::control::bind(path) {
                Ok(l) => self.control = Some(l),
                Err(e) => self.log.warning(&format!(
                    "{e}; 'corral reload' and 'corral status' will not reach this master (signals still work)"
                )),
            }
        }
        if let Some(path) = self.pid_file() {
            std::fs::write(&path, format!("{}\n", std::process::id()))
                .map_err(|source| MasterError::PidFile { path, source })?;
        }
        Ok(())
    }

    /// Every configured pool's socket and first generation.
    pub(crate) fn open_pools(&mut self) -> Result<(), PoolError> {
        for (p, parent) in expand(&self.config.pools) {
            let mut sup = self.open_pool(&p)?;
            sup.status_of = parent;
            self.pools.insert(sup.id, sup);
        }
        Ok(())
    }

    fn pid_file(&self) -> Option<PathBuf> {
        self.config
            .global
            .pid
            .clone()
            .or(self.opts.pid_file.clone())
    }

    /// What a stopped master leaves behind: nothing.
    fn clean_up(&mut self) {
        for p in self.pools.values() {
            if let Some(path) = &p.unix_path {
                let _ = std::fs::remove_file(path);
            }
        }
        if let (Some(path), Some(_)) = (&self.opts.control_socket, &self.control) {
            let _ = std::fs::remove_file(path);
        }
        if let Some(path) = self.pid_file() {
            let _ = std::fs::remove_file(path);
        }
    }

    /// A pool's socket and its first generation (not started yet).
    pub(crate) fn open_pool(&mut self, p: &Pool) -> Result<PoolSup, PoolError> {
        let mut warnings = Vec::new();
        let fd = self.os.open_listener(p, &mut |w| warnings.push(w));
        for w in warnings {
            self.log.warning(&w);
        }
        let fd = fd?;
        let gen = Generation::new(self.ids.generation(), p.clone())?;
        let unix_path = match &p.listen {
            corral_config::Listen::Unix(path) => Some(path.clone()),
            _ => None,
        };
        Ok(PoolSup {
            id: self.ids.pool(),
            name: p.name.clone(),
            listen: fd,
            unix_path,
            listen_address: p.listen_address.clone(),
            status_of: None,
            current: Some(gen),
            retiring: Vec::new(),
        })
    }

    pub(crate) fn room(&self) -> u32 {
        let max = self.config.global.process_max;
        if max == 0 {
            return u32::MAX;
        }
        let used: usize = self
            .pools
            .values()
            .flat_map(|p| p.gens())
            .map(|g| g.workers.len() + g.reserved.len())
            .sum();
        max.saturating_sub(used as u32)
    }

    /// How long a retiring generation may drain.
    pub(crate) fn drain_grace(&self) -> Duration {
        let t = self.config.global.process_control_timeout;
        if t.is_zero() {
            DEFAULT_DRAIN
        } else {
            t
        }
    }

    /// Every pool up (its first workers confirmed, as php-fpm has forked
    /// them before it says "ready"), dormant, or failed and retrying.
    pub(crate) fn all_ready(&self) -> bool {
        self.pools
            .values()
            .filter_map(|p| p.current.as_ref())
            .all(|g| g.dormant || g.is_up() || g.restart_at.is_some())
    }

    pub(crate) fn event_loop(&mut self) -> i32 {
        let mut last_tick = Instant::now();
        let mut last_beat = Instant::now();
        loop {
            if self.state != State::Normal
                && self
                    .pools
                    .values()
                    .all(|p| p.gens().all(|g| g.proto.is_none()))
            {
                return EXIT_OK;
            }
            let (srcs, raw) = self.sources();
            let borrowed: Vec<_> = raw
                .iter()
                .map(|&fd| corral_sys::process::fixed_fd(fd))
                .collect();
            let mut pfds: Vec<PollFd> = borrowed
                .iter()
                .map(|b| PollFd::new(b.as_fd(), PollFlags::POLLIN))
                .collect();
            let beat = crate::timeouts::heartbeat(
                self.pools.values().flat_map(|p| p.gens()).map(|g| &g.cfg),
            );
            let mut wait = Duration::from_millis(1000)
                .saturating_sub(last_tick.elapsed())
                .min(beat.saturating_sub(last_beat.elapsed()));
            // A request's timeout is checked when it falls due, not at the
            // next heartbeat after it.
            if let Some(due) = self.next_timeout_due() {
                wait = wait.min(due.saturating_duration_since(Instant::now()));
            }
            // A crash-loop back-off ends when it ends, not at the next tick.
            if let Some(due) = self.next_restart_due() {
                wait = wait.min(due.saturating_duration_since(self.os.now()));
            }
            let timeout = PollTimeout::try_from(wait.as_millis().min(1000) as i32)
                .unwrap_or(PollTimeout::ZERO);
            let _ = poll(&mut pfds, timeout);
            let ready: Vec<bool> = pfds
                .iter()
                .map(|p| p.revents().is_some_and(|r| !r.is_empty()))
                .collect();
            drop(pfds);

            for (src, ok) in srcs.into_iter().zip(ready) {
                if ok {
                    self.dispatch(src);
                }
            }
            self.after_events();

            let due = self.next_timeout_due().is_some_and(|d| d <= Instant::now());
            if last_beat.elapsed() >= beat || due {
                last_beat = Instant::now();
                self.check_timeouts();
            }
            self.systemd_report();
            if last_tick.elapsed() >= Duration::from_millis(1000) {
                last_tick = Instant::now();
                self.maintenance();
            }
        }
    }

    /// What the loop watches, with the descriptor for each.
    fn sources(&self) -> (Vec<Source>, Vec<i32>) {
        let mut srcs = Vec::new();
        let mut raw = Vec::new();
        if let Some(fd) = &self.sig_fd {
            srcs.push(Source::Signals);
            raw.push(fd.as_raw_fd());
        }
        if let Some(c) = &self.control {
            srcs.push(Source::Control);
            raw.push(c.as_raw_fd());
        }
        for (&id, p) in &self.pools {
            for gen in p.gens() {
                if let Some(pr) = &gen.proto {
                    srcs.push(Source::Prototype(id, gen.id));
                    raw.push(pr.ctl.as_raw_fd());
                }
                for (pid, idx, fd) in gen.capture_fds() {
                    srcs.push(Source::Output(id, gen.id, pid, idx));
                    raw.push(fd);
                }
            }
            if self.state == State::Normal
                && p.current.as_ref().is_some_and(|g| g.wants_accept_watch())
            {
                srcs.push(Source::Accept(id));
                raw.push(p.listen.as_raw_fd());
            }
        }
        (srcs, raw)
    }

    /// Handle one ready source. Ids stay valid whatever an earlier handler
    /// removed; a handler for something gone does nothing.
    pub(crate) fn dispatch(&mut self, src: Source) {
        match src {
            Source::Signals => self.handle_signals(),
            Source::Control => self.handle_control(),
            Source::Prototype(p, g) => self.handle_ctl(p, g),
            Source::Accept(p) => self.on_connection(p),
            Source::Output(p, g, pid, idx) => {
                if let Some(gen) = self.pools.get_mut(&p).and_then(|s| s.gen_mut(g)) {
                    gen.read_capture(pid, idx, &mut self.log);
                }
            }
        }
    }

    /// A connection waits on a pool with nobody to accept it: wake a
    /// dormant pool, or let ondemand spawn.
    fn on_connection(&mut self, id: PoolId) {
        let Some(g) = self.pools.get_mut(&id).and_then(|p| p.current.as_mut()) else {
            return;
        };
        if g.dormant {
            g.dormant = false;
            g.sleeping = false;
            self.start_prototype(id);
        } else {
            let mut room = self.room();
            if let Some(g) = self.pools.get_mut(&id).and_then(|p| p.current.as_mut()) {
                g.on_accept(&mut room, &mut self.log);
            }
        }
    }

    /// Once per turn, whatever happened: say "ready" once, and retire
    /// generations whose successors are up.
    pub(crate) fn after_events(&mut self) {
        if !self.ready_logged && self.all_ready() {
            self.ready_logged = true;
            self.announce_ready();
        }
        self.retire_replaced();
        self.restart_due();
    }

    fn announce_ready(&mut self) {
        notify_launcher(&mut self.opts, true);
        self.log.notice("ready to handle connections");
        if self.notify.enabled() {
            self.notify.send("READY=1");
            self.log.notice(&match self.notify.watchdog {
                Some(w) => format!(
                    "systemd watchdog configured to {:.3}sec",
                    w.as_secs_f64() * 2.0
                ),
                None => format!(
                    "systemd monitor interval set to {}ms",
                    self.config.global.systemd_interval.as_millis()
                ),
            });
        }
        self.log.echo_stderr = false;
    }

    /// The earliest moment a busy worker's slow-log or terminate timeout
    /// falls due.
    fn next_timeout_due(&self) -> Option<Instant> {
        let now_us = corral_status::now_us();
        let now = Instant::now();
        self.pools
            .values()
            .flat_map(|p| p.gens())
            .filter_map(crate::timeouts::next_due_us)
            .min()
            .map(|due_us| now + Duration::from_micros(due_us.saturating_sub(now_us)))
    }

    fn check_timeouts(&mut self) {
        let now_us = corral_status::now_us();
        for p in self.pools.values_mut() {
            for g in p.gens_mut() {
                crate::timeouts::check(g, now_us, self.os.as_mut(), &mut self.log);
            }
        }
    }

    /// A retiring generation is told to quit only once its successor is up,
    /// so that someone is always accepting on the socket.
    pub(crate) fn retire_replaced(&mut self) {
        let grace = self.drain_grace();
        for p in self.pools.values_mut() {
            let successor_up = p
                .current
                .as_ref()
                .is_none_or(|g| g.is_up() || g.dormant || g.restart_at.is_some());
            if successor_up {
                for g in p.retiring.iter_mut().filter(|g| !g.quit_sent) {
                    g.retire(grace);
                }
            }
        }
    }

    fn next_restart_due(&self) -> Option<Instant> {
        self.pools
            .values()
            .filter_map(|p| p.current.as_ref())
            .filter(|g| g.proto.is_none())
            .filter_map(|g| g.restart_at)
            .min()
    }

    /// Start the prototypes whose restart time has come.
    pub(crate) fn restart_due(&mut self) {
        if self.state != State::Normal {
            return;
        }
        let now = self.os.now();
        let due: Vec<PoolId> = self
            .pools
            .iter()
            .filter(|(_, p)| {
                p.current
                    .as_ref()
                    .is_some_and(|g| g.proto.is_none() && g.restart_at.is_some_and(|t| t <= now))
            })
            .map(|(&id, _)| id)
            .collect();
        for id in due {
            self.start_prototype(id);
        }
    }

    /// The one-second tick: drains, restarts, and the pm policy.
    pub(crate) fn maintenance(&mut self) {
        let now = self.os.now();
        self.escalate_drains(now);
        if self.state == State::Normal {
            self.restart_due();
            let now_us = corral_status::now_us();
            let ids: Vec<PoolId> = self.pools.keys().copied().collect();
            for id in ids {
                self.pm_tick(id, now, now_us);
            }
        } else {
            self.escalate_stop(now);
        }
    }

    /// Retiring generations past their grace: Terminate, then SIGKILL.
    fn escalate_drains(&mut self, now: Instant) {
        for p in self.pools.values_mut() {
            for g in &mut p.retiring {
                if g.drain_deadline.is_some_and(|d| now >= d) {
                    if g.send(&ToPrototype::Terminate) {
                        g.drain_deadline = Some(now + Duration::from_secs(1));
                    } else if let Some(pr) = &g.proto {
                        self.os.signal(pr.pid, Signal::SIGKILL);
                    }
                }
            }
        }
    }

    /// One pool's second: publish what only the master knows, run the pm
    /// policy, and put an idle ondemand pool to sleep.
    fn pm_tick(&mut self, id: PoolId, now: Instant, now_us: u64) {
        let mut room = self.room();
        let Some(p) = self.pools.get_mut(&id) else {
            return;
        };
        let queue = self.os.listen_queue(p.listen.as_raw_fd());
        let Some(g) = p.current.as_mut() else {
            return;
        };
        g.publish(queue);
        g.tick(now_us, &mut room, &mut self.log);
        if g.should_sleep(now) {
            g.sleeping = true;
            g.send(&ToPrototype::Quit);
            self.log.debug(&format!(
                "[pool {}] idle: prototype stopped until the next connection",
                g.cfg.name
            ));
        }
    }

    /// Stopping: QUIT → TERM → KILL, as php-fpm does.
    fn escalate_stop(&mut self, now: Instant) {
        let Some(deadline) = self.stop_deadline else {
            return;
        };
        if now < deadline {
            return;
        }
        match self.state {
            State::Finishing => {
                self.state = State::Terminating;
                self.broadcast(&ToPrototype::Terminate);
            }
            _ => {
                let pids: Vec<i32> = self
                    .pools
                    .values()
                    .flat_map(|p| p.gens())
                    .filter_map(|g| g.proto.as_ref().map(|p| p.pid))
                    .collect();
                for pid in pids {
                    self.os.signal(pid, Signal::SIGKILL);
                }
            }
        }
        self.stop_deadline = Some(now + Duration::from_secs(1));
    }

    /// STATUS (and WATCHDOG) every systemd_interval, or at half the
    /// watchdog period when systemd set one.
    pub(crate) fn systemd_report(&mut self) {
        if !self.notify.enabled() || !self.ready_logged {
            return;
        }
        let every = self
            .notify
            .watchdog
            .unwrap_or(self.config.global.systemd_interval);
        if every.is_zero() || self.last_requests.1.elapsed() < every {
            return;
        }
        let (mut active, mut idle, mut requests, mut slow) = (0u64, 0u64, 0u64, 0u64);
        for g in self.pools.values().flat_map(|p| p.gens()) {
            let views = g.views();
            idle += views.iter().filter(|w| w.idle).count() as u64;
            active += views.iter().filter(|w| !w.idle).count() as u64;
            requests += corral_status::Reader::new(g.board.words()).accepted_conn();
            slow += g.slow_requests;
        }
        let secs = self.last_requests.1.elapsed().as_secs_f64().max(0.001);
        let rate = requests.saturating_sub(self.last_requests.0) as f64 / secs;
        let mut msg = crate::systemd::status_line(active, idle, requests, slow, rate);
        if self.notify.watchdog.is_some() {
            msg.push_str("\nWATCHDOG=1");
        }
        self.notify.send(&msg);
        self.last_requests = (requests, Instant::now());
    }

    pub(crate) fn broadcast(&self, msg: &ToPrototype) {
        for g in self.pools.values().flat_map(|p| p.gens()) {
            g.send(msg);
        }
    }

    pub(crate) fn handle_signals(&mut self) {
        if let Some(fd) = &self.sig_fd {
            let mut buf = [0u8; 64];
            while corral_sys::nix::unistd::read(fd.as_raw_fd(), &mut buf).is_ok_and(|n| n > 0) {}
        }
        for sig in corral_sys::signal::take_pending() {
            self.on_signal(sig);
        }
    }

    pub(crate) fn on_signal(&mut self, sig: Signal) {
        match sig {
            Signal::SIGCHLD => self.reap(),
            Signal::SIGTERM | Signal::SIGINT => {
                self.log.debug(&format!("received {}", sig.as_str()));
                if self.state != State::Terminating {
                    self.log.notice("Terminating ...");
                    self.notify.send("STOPPING=1");
                    self.state = State::Terminating;
                    self.broadcast(&ToPrototype::Terminate);
                    self.stop_deadline =
                        Some(self.os.now() + self.config.global.process_control_timeout);
                }
            }
            Signal::SIGQUIT => {
                self.log.debug("received SIGQUIT");
                if self.state == State::Normal {
                    self.log.notice("Finishing ...");
                    self.notify.send("STOPPING=1");
                    self.state = State::Finishing;
                    self.broadcast(&ToPrototype::Quit);
                    self.stop_deadline = Some(self.os.now() + self.drain_grace());
                }
            }
            Signal::SIGUSR1 => {
                match self.log.reopen() {
                    Ok(()) => self.log.notice("error log file re-opened"),
                    Err(e) => self
                        .log
                        .error(&format!("unable to re-opened error log file: {e}")),
                }
                self.reopen_access_logs();
            }
            Signal::SIGUSR2 | Signal::SIGHUP => {
                self.log.debug(&format!("received {}", sig.as_str()));
                if self.state == State::Normal {
                    let _ = self.reload(None);
                }
            }
            _ => {}
        }
    }

    /// emergency_restart_threshold crashes within emergency_restart_interval
    /// restart every pool, as php-fpm's emergency reload does.
    pub(crate) fn note_crash(&mut self) {
        let threshold = self.config.global.emergency_restart_threshold as usize;
        let interval = self.config.global.emergency_restart_interval;
        if threshold == 0 || interval.is_zero() {
            return;
        }
        let now = self.os.now();
        self.crashes.push_back(now);
        while self
            .crashes
            .front()
            .is_some_and(|t| now.duration_since(*t) > interval)
        {
            self.crashes.pop_front();
        }
        if self.crashes.len() >= threshold {
            self.log.warning(&format!(
                "failed processes threshold ({threshold} in {} sec) is reached, initiating reload",
                interval.as_secs()
            ));
            self.crashes.clear();
            let _ = self.reload_with(None, true);
        }
    }

    /// SIGUSR1 for access logs: reopen each (log rotation moved the old
    /// file away) and hand the new descriptor to the prototype, which
    /// recycles its workers onto it.
    pub(crate) fn reopen_access_logs(&mut self) {
        let mut any = false;
        let mut failed = false;
        for g in self.pools.values_mut().filter_map(|p| p.current.as_mut()) {
            let Some(path) = g.cfg.access_log.clone() else {
                continue;
            };
            any = true;
            match crate::pool::open_log(&path) {
                Ok(fd) => {
                    g.send_with(&ToPrototype::ReopenAccessLog, &[fd.as_raw_fd()]);
                    g.access_log = Some(fd);
                }
                Err(_) => failed = true,
            }
        }
        if failed {
            self.log.error("unable to re-opened access log file");
        } else if any {
            self.log.notice("access log file re-opened");
        }
    }

    pub(crate) fn handle_control(&mut self) {
        let Some(listener) = &self.control else {
            return;
        };
        let Ok((stream, _)) = listener.accept() else {
            return;
        };
        crate::control::serve(self, stream);
    }
}

/// Something the event loop watches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Source {
    Signals,
    Control,
    /// A prototype's control channel.
    Prototype(PoolId, GenId),
    /// A listening socket with nobody to accept (dormant or ondemand).
    Accept(PoolId),
    /// A worker's captured stdout or stderr.
    Output(PoolId, GenId, i32, usize),
}
