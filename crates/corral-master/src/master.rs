//! The master: root, single-threaded, never loads PHP. It owns the sockets
//! and the policy; prototypes and workers do the PHP.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use corral_config::{Config, Pool};
use corral_sys::nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use corral_sys::nix::sys::signal::Signal;

use crate::control;
use crate::log::Logger;
use crate::pool::Generation;

/// php-fpm's exit codes (sysexits).
pub const EXIT_OK: i32 = 0;
pub const EXIT_SOFTWARE: i32 = 70;
pub const EXIT_CONFIG: i32 = 78;

/// The environment variable that makes `corral` run as a prototype; its
/// value is the prototype's arguments separated by U+001F.
pub const PROTOTYPE_ENV: &str = "CORRAL_PROTOTYPE";

/// How long retiring workers may take over in-flight requests when
/// process_control_timeout is 0 (php-fpm would kill them at once).
pub const DEFAULT_DRAIN: Duration = Duration::from_secs(60);

/// Control messages read from one prototype per turn of the event loop.
pub(crate) const MAX_MESSAGES_PER_TURN: usize = 64;

/// How the master was started.
#[derive(Debug, Clone)]
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

/// Which generation of a pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Gen {
    Current,
    Retiring(usize),
}

/// A pool: its socket (kept across reloads) and its generations.
pub struct PoolSup {
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
    pub(crate) fn gen(&self, g: Gen) -> Option<&Generation> {
        match g {
            Gen::Current => self.current.as_ref(),
            Gen::Retiring(j) => self.retiring.get(j),
        }
    }
    pub(crate) fn gen_mut(&mut self, g: Gen) -> Option<&mut Generation> {
        match g {
            Gen::Current => self.current.as_mut(),
            Gen::Retiring(j) => self.retiring.get_mut(j),
        }
    }
    pub(crate) fn gens(&self) -> impl Iterator<Item = (Gen, &Generation)> {
        self.current.iter().map(|g| (Gen::Current, g)).chain(
            self.retiring
                .iter()
                .enumerate()
                .map(|(j, g)| (Gen::Retiring(j), g)),
        )
    }
    pub(crate) fn is_empty(&self) -> bool {
        self.current.is_none() && self.retiring.is_empty()
    }
}

pub(crate) struct Master {
    pub(crate) opts: MasterOptions,
    pub(crate) config: Config,
    pub(crate) log: Logger,
    pub(crate) pools: Vec<PoolSup>,
    pub(crate) state: State,
    pub(crate) stop_deadline: Option<Instant>,
    pub(crate) sig_fd: OwnedFd,
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

pub(crate) fn open_pool(p: &Pool, log: &mut Logger) -> Result<PoolSup, String> {
    let mut warnings = Vec::new();
    let fd = crate::listen::open(p, &mut |w| warnings.push(w));
    for w in warnings {
        log.warning(&w);
    }
    let fd = fd.map_err(|e| e.to_string())?;
    let gen = Generation::new(p.clone()).map_err(|e| format!("[pool {}] {e}", p.name))?;
    let unix_path = match &p.listen {
        corral_config::Listen::Unix(path) => Some(path.clone()),
        _ => None,
    };
    Ok(PoolSup {
        name: p.name.clone(),
        listen: fd,
        unix_path,
        listen_address: p.listen_address.clone(),
        status_of: None,
        current: Some(gen),
        retiring: Vec::new(),
    })
}

fn start(opts: &mut MasterOptions, config: Config, mut log: Logger) -> i32 {
    let sig_fd = match corral_sys::signal::master_signals(&[
        Signal::SIGTERM,
        Signal::SIGINT,
        Signal::SIGQUIT,
        Signal::SIGUSR1,
        Signal::SIGUSR2,
        Signal::SIGHUP,
        Signal::SIGCHLD,
    ]) {
        Ok(fd) => fd,
        Err(e) => {
            log.error(&e.to_string());
            return EXIT_SOFTWARE;
        }
    };

    let mut pools = Vec::new();
    for (p, parent) in expand(&config.pools) {
        match open_pool(&p, &mut log) {
            Ok(mut sup) => {
                sup.status_of = parent;
                pools.push(sup)
            }
            Err(e) => {
                log.error(&e);
                log.error("FPM initialization failed");
                return EXIT_CONFIG;
            }
        }
    }

    // Without a control socket corral still serves and reloads on SIGUSR2;
    // a second master on the host must not fail because the default path
    // is taken.
    let control = match &opts.control_socket {
        Some(path) => match corral_ipc::control::bind(path) {
            Ok(l) => Some(l),
            Err(e) => {
                log.warning(&format!(
                    "{e}; 'corral reload' and 'corral status' will not reach this master (signals still work)"
                ));
                None
            }
        },
        None => None,
    };

    let pid_file = config.global.pid.clone().or(opts.pid_file.clone());
    if let Some(pid_path) = &pid_file {
        if let Err(e) = std::fs::write(pid_path, format!("{}\n", std::process::id())) {
            log.error(&format!(
                "Unable to create the PID file ({}): {e}",
                pid_path.display()
            ));
            return EXIT_SOFTWARE;
        }
    }

    let mut m = Master {
        opts: opts.clone(),
        config,
        log,
        pools,
        state: State::Normal,
        stop_deadline: None,
        sig_fd,
        control,
        ready_logged: false,
        notify: crate::systemd::Notifier::from_env(),
        ini_fingerprint: crate::php_ini::fingerprint(&opts.php_args),
        crashes: std::collections::VecDeque::new(),
        last_requests: (0, Instant::now()),
    };
    m.log
        .notice(&format!("fpm is running, pid {}", std::process::id()));
    for i in 0..m.pools.len() {
        m.start_or_sleep(i);
    }
    let code = m.event_loop();
    for p in &m.pools {
        if let Some(path) = &p.unix_path {
            let _ = std::fs::remove_file(path);
        }
    }
    if let (Some(path), Some(_)) = (&m.opts.control_socket, &m.control) {
        let _ = std::fs::remove_file(path);
    }
    if let Some(pid_path) = &pid_file {
        let _ = std::fs::remove_file(pid_path);
    }
    m.log.notice("exiting, bye-bye!");
    code
}

impl Master {
    pub(crate) fn room(&self) -> u32 {
        let max = self.config.global.process_max;
        if max == 0 {
            return u32::MAX;
        }
        let used: usize = self
            .pools
            .iter()
            .flat_map(|p| p.gens())
            .map(|(_, g)| g.workers.len() + g.reserved.len())
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
            .iter()
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
                    .iter()
                    .all(|p| p.gens().all(|(_, g)| g.proto.is_none()))
            {
                return EXIT_OK;
            }
            enum Src {
                Sig,
                Control,
                Ctl(usize, Gen),
                Accept(usize),
                Out(usize, Gen, i32, usize),
            }
            let mut srcs = vec![Src::Sig];
            let mut raw = vec![self.sig_fd.as_raw_fd()];
            if let Some(c) = &self.control {
                srcs.push(Src::Control);
                raw.push(c.as_raw_fd());
            }
            for (i, p) in self.pools.iter().enumerate() {
                for (g, gen) in p.gens() {
                    if let Some(pr) = &gen.proto {
                        srcs.push(Src::Ctl(i, g));
                        raw.push(pr.ctl.as_raw_fd());
                    }
                    for (pid, idx, fd) in gen.capture_fds() {
                        srcs.push(Src::Out(i, g, pid, idx));
                        raw.push(fd);
                    }
                }
                if self.state == State::Normal
                    && p.current.as_ref().is_some_and(|g| g.wants_accept_watch())
                {
                    srcs.push(Src::Accept(i));
                    raw.push(p.listen.as_raw_fd());
                }
            }
            let borrowed: Vec<_> = raw
                .iter()
                .map(|&fd| corral_sys::process::fixed_fd(fd))
                .collect();
            let mut pfds: Vec<PollFd> = borrowed
                .iter()
                .map(|b| PollFd::new(b.as_fd(), PollFlags::POLLIN))
                .collect();
            let beat = crate::timeouts::heartbeat(
                self.pools
                    .iter()
                    .flat_map(|p| p.gens())
                    .map(|(_, g)| &g.cfg),
            );
            let wait = Duration::from_millis(1000)
                .saturating_sub(last_tick.elapsed())
                .min(beat.saturating_sub(last_beat.elapsed()));
            let timeout = PollTimeout::try_from(wait.as_millis().min(1000) as i32)
                .unwrap_or(PollTimeout::ZERO);
            let _ = poll(&mut pfds, timeout);
            let ready: Vec<bool> = pfds
                .iter()
                .map(|p| p.revents().is_some_and(|r| !r.is_empty()))
                .collect();
            drop(pfds);

            // Handle sources from the last to the first: a handler may
            // remove a retiring generation, which shifts later indexes only.
            for (src, ok) in srcs.iter().zip(ready).rev() {
                if !ok {
                    continue;
                }
                match *src {
                    Src::Sig => self.handle_signals(),
                    Src::Control => self.handle_control(),
                    Src::Ctl(i, g) => self.handle_ctl(i, g),
                    Src::Accept(i) => {
                        let wake = self.pools[i].current.as_ref().is_some_and(|g| g.dormant);
                        if wake {
                            if let Some(g) = self.pools[i].current.as_mut() {
                                g.dormant = false;
                                g.sleeping = false;
                            }
                            self.start_prototype(i);
                        } else {
                            let mut room = self.room();
                            if let Some(g) = self.pools[i].current.as_mut() {
                                g.on_accept(&mut room, &mut self.log);
                            }
                        }
                    }
                    Src::Out(i, g, pid, idx) => {
                        if let Some(gen) = self.pools.get_mut(i).and_then(|p| p.gen_mut(g)) {
                            gen.read_capture(pid, idx, &mut self.log);
                        }
                    }
                }
            }

            if !self.ready_logged && self.all_ready() {
                self.ready_logged = true;
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
            self.retire_replaced();

            if last_beat.elapsed() >= beat {
                last_beat = Instant::now();
                let now_us = corral_status::now_us();
                for p in &mut self.pools {
                    for g in p.current.iter_mut().chain(p.retiring.iter_mut()) {
                        crate::timeouts::check(g, now_us, &mut self.log);
                    }
                }
            }
            self.systemd_report();
            if last_tick.elapsed() >= Duration::from_millis(1000) {
                last_tick = Instant::now();
                self.maintenance();
            }
        }
    }

    /// A retiring generation is told to quit only once its successor is up,
    /// so that someone is always accepting on the socket.
    pub(crate) fn retire_replaced(&mut self) {
        let grace = self.drain_grace();
        for p in &mut self.pools {
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

    pub(crate) fn maintenance(&mut self) {
        let now = Instant::now();
        // Retiring generations past their grace: TERM, then KILL.
        for p in &mut self.pools {
            for g in &mut p.retiring {
                if g.drain_deadline.is_some_and(|d| now >= d) {
                    if g.send("term") {
                        g.drain_deadline = Some(now + Duration::from_secs(1));
                    } else if let Some(pr) = &g.proto {
                        corral_sys::signal::kill(pr.pid.as_raw(), Signal::SIGKILL);
                    }
                }
            }
        }
        if self.state == State::Normal {
            let now_us = corral_status::now_us();
            for i in 0..self.pools.len() {
                let restart = self.pools[i]
                    .current
                    .as_ref()
                    .is_some_and(|g| g.proto.is_none() && g.restart_at.is_some_and(|t| t <= now));
                if restart {
                    self.start_prototype(i);
                }
                let mut room = self.room();
                let queue = corral_sys::socket::tcp_listen_queue(self.pools[i].listen.as_raw_fd());
                if let Some(g) = self.pools[i].current.as_mut() {
                    g.publish(queue);
                    g.tick(now_us, &mut room, &mut self.log);
                    if g.should_sleep(now) {
                        g.sleeping = true;
                        g.send("quit");
                        self.log.debug(&format!(
                            "[pool {}] idle: prototype stopped until the next connection",
                            g.cfg.name
                        ));
                    }
                }
            }
        } else if let Some(deadline) = self.stop_deadline {
            if now >= deadline {
                // Escalate: QUIT → TERM → KILL, as php-fpm does.
                match self.state {
                    State::Finishing => {
                        self.state = State::Terminating;
                        self.broadcast("term");
                        self.stop_deadline = Some(now + Duration::from_secs(1));
                    }
                    _ => {
                        for (_, g) in self.pools.iter().flat_map(|p| p.gens()) {
                            if let Some(pr) = &g.proto {
                                corral_sys::signal::kill(pr.pid.as_raw(), Signal::SIGKILL);
                            }
                        }
                        self.stop_deadline = Some(now + Duration::from_secs(1));
                    }
                }
            }
        }
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
        for (_, g) in self.pools.iter().flat_map(|p| p.gens()) {
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

    pub(crate) fn broadcast(&self, msg: &str) {
        for (_, g) in self.pools.iter().flat_map(|p| p.gens()) {
            g.send(msg);
        }
    }

    pub(crate) fn handle_signals(&mut self) {
        let mut buf = [0u8; 64];
        while corral_sys::nix::unistd::read(self.sig_fd.as_raw_fd(), &mut buf).is_ok_and(|n| n > 0)
        {
        }
        for sig in corral_sys::signal::take_pending() {
            match sig {
                Signal::SIGCHLD => self.reap(),
                Signal::SIGTERM | Signal::SIGINT => {
                    self.log.debug(&format!("received {}", sig.as_str()));
                    if self.state != State::Terminating {
                        self.log.notice("Terminating ...");
                        self.notify.send("STOPPING=1");
                        self.state = State::Terminating;
                        self.broadcast("term");
                        self.stop_deadline =
                            Some(Instant::now() + self.config.global.process_control_timeout);
                    }
                }
                Signal::SIGQUIT => {
                    self.log.debug("received SIGQUIT");
                    if self.state == State::Normal {
                        self.log.notice("Finishing ...");
                        self.notify.send("STOPPING=1");
                        self.state = State::Finishing;
                        self.broadcast("quit");
                        self.stop_deadline = Some(Instant::now() + self.drain_grace());
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
    }

    /// emergency_restart_threshold crashes within emergency_restart_interval
    /// restart every pool, as php-fpm's emergency reload does.
    pub(crate) fn note_crash(&mut self) {
        let threshold = self.config.global.emergency_restart_threshold as usize;
        let interval = self.config.global.emergency_restart_interval;
        if threshold == 0 || interval.is_zero() {
            return;
        }
        let now = Instant::now();
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
        for g in self.pools.iter_mut().filter_map(|p| p.current.as_mut()) {
            let Some(path) = g.cfg.access_log.clone() else {
                continue;
            };
            any = true;
            match crate::pool::open_log(&path) {
                Ok(fd) => {
                    if let Some(pr) = g.proto.as_ref().filter(|p| p.ready) {
                        let _ = corral_sys::socket::send_with_fds(
                            pr.ctl.as_raw_fd(),
                            b"accesslog",
                            &[fd.as_raw_fd()],
                        );
                    }
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
        control::serve(self, stream);
    }
}
