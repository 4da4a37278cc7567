//! The master: root, single-threaded, never loads PHP. It owns the sockets
//! and the policy; prototypes and workers do the PHP.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use corral_config::{Config, Pool};
use corral_sys::nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use corral_sys::nix::sys::signal::Signal;
use corral_sys::nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};

use crate::control;
use crate::log::Logger;
use crate::pool::{Generation, ProtoMsg, Prototype, PROTO_RESTART_DELAY};

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
const MAX_MESSAGES_PER_TURN: usize = 64;

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
enum State {
    Normal,
    Finishing,
    Terminating,
}

/// Which generation of a pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Gen {
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
    fn gen(&self, g: Gen) -> Option<&Generation> {
        match g {
            Gen::Current => self.current.as_ref(),
            Gen::Retiring(j) => self.retiring.get(j),
        }
    }
    fn gen_mut(&mut self, g: Gen) -> Option<&mut Generation> {
        match g {
            Gen::Current => self.current.as_mut(),
            Gen::Retiring(j) => self.retiring.get_mut(j),
        }
    }
    fn gens(&self) -> impl Iterator<Item = (Gen, &Generation)> {
        self.current.iter().map(|g| (Gen::Current, g)).chain(
            self.retiring
                .iter()
                .enumerate()
                .map(|(j, g)| (Gen::Retiring(j), g)),
        )
    }
    fn is_empty(&self) -> bool {
        self.current.is_none() && self.retiring.is_empty()
    }
}

pub(crate) struct Master {
    pub(crate) opts: MasterOptions,
    pub(crate) config: Config,
    pub(crate) log: Logger,
    pub(crate) pools: Vec<PoolSup>,
    state: State,
    stop_deadline: Option<Instant>,
    sig_fd: OwnedFd,
    control: Option<UnixListener>,
    ready_logged: bool,
    notify: crate::systemd::Notifier,
    /// What PHP read at start-up; a reload restarts every pool if it moved.
    ini_fingerprint: u64,
    /// When workers recently died of SIGSEGV/SIGBUS (emergency_restart_*).
    crashes: std::collections::VecDeque<Instant>,
    /// For the systemd STATUS line: requests seen at the last report.
    last_requests: (u64, Instant),
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
fn expand(pools: &[Pool]) -> Vec<(Pool, Option<String>)> {
    let mut out = Vec::new();
    for p in pools {
        out.push((p.clone(), None));
        if let Some(st) = corral_config::status_pool(p) {
            out.push((st, Some(p.name.clone())));
        }
    }
    out
}

fn open_pool(p: &Pool, log: &mut Logger) -> Result<PoolSup, String> {
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
        Some(path) => match control::listen(path) {
            Ok(l) => Some(l),
            Err(e) => {
                log.warning(&format!(
                    "unable to open the control socket '{}': {e}; 'corral reload' and 'corral status' will not reach this master (signals still work)",
                    path.display()
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
    fn room(&self) -> u32 {
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
    fn drain_grace(&self) -> Duration {
        let t = self.config.global.process_control_timeout;
        if t.is_zero() {
            DEFAULT_DRAIN
        } else {
            t
        }
    }

    /// Exec the current generation's prototype of pool `i`.
    fn start_prototype(&mut self, i: usize) {
        let (ours, theirs) = match corral_sys::socket::seqpacket_pair() {
            Ok(p) => p,
            Err(e) => {
                self.log.error(&e.to_string());
                return;
            }
        };
        let sup = &self.pools[i];
        let Some(gen) = sup.current.as_ref() else {
            return;
        };
        // The arguments travel in the environment so that the process title
        // is exactly php-fpm's "php-fpm: pool NAME", for workers too.
        let mut args = vec![
            "--pool".to_string(),
            gen.cfg.name.clone(),
            "--board-words".into(),
            corral_status::region_words(gen.nslots).to_string(),
        ];
        // A status pool reads its parent's scoreboard (current generation).
        let parent_board = sup.status_of.as_ref().and_then(|parent| {
            let g = self
                .pools
                .iter()
                .find(|p| &p.name == parent)?
                .current
                .as_ref()?;
            Some((
                g.board_fd.as_raw_fd(),
                corral_status::region_words(g.nslots),
                parent.clone(),
            ))
        });
        if let Some((_, words, parent)) = &parent_board {
            args.extend([
                "--status-of".to_string(),
                parent.clone(),
                "--status-words".into(),
                words.to_string(),
            ]);
        }
        args.extend(self.opts.php_args.iter().cloned());
        let argv = vec![format!("php-fpm: pool {}", gen.cfg.name)];
        let env = [(PROTOTYPE_ENV.to_string(), args.join("\u{1f}"))];
        // The prototype gets its own pool and nothing else: it runs as the
        // tenant, and other tenants' settings (env[] secrets included) must
        // not be in its memory.
        let Some(text) = corral_config::render_pool_only(&self.config, &gen.cfg) else {
            self.log.error(&format!(
                "[pool {}] cannot render the pool configuration",
                gen.cfg.name
            ));
            return;
        };
        let conf_fd = match corral_sys::shm::memfd_with("corral-pool", text.as_bytes()) {
            Ok(fd) => fd,
            Err(e) => {
                self.log.error(&format!("[pool {}] {e}", gen.cfg.name));
                return;
            }
        };
        let mut fds = vec![
            sup.listen.as_raw_fd(),
            theirs.as_raw_fd(),
            gen.board_fd.as_raw_fd(),
            conf_fd.as_raw_fd(),
        ];
        let devnull = std::fs::File::open("/dev/null").ok();
        match (&gen.access_log, &devnull) {
            (Some(a), _) => fds.push(a.as_raw_fd()),
            // Keep the numbering: the status board goes to fd 8.
            (None, Some(n)) if parent_board.is_some() => fds.push(n.as_raw_fd()),
            _ => {}
        }
        if let Some((fd, _, _)) = &parent_board {
            fds.push(*fd);
        }
        let spawned = corral_sys::process::spawn_self(&argv, &env, &fds);
        let name = sup.name.clone();
        let Some(gen) = self.pools[i].current.as_mut() else {
            return;
        };
        match spawned {
            Ok(pid) => {
                let _ = corral_sys::socket::set_nonblocking(ours.as_raw_fd(), true);
                self.log
                    .debug(&format!("[pool {name}] prototype {pid} started"));
                gen.proto = Some(Prototype {
                    pid,
                    ctl: ours,
                    ready: false,
                    layout: None,
                });
                gen.restart_at = None;
            }
            Err(e) => {
                self.log.error(&format!("[pool {name}] {e}"));
                gen.restart_at = Some(Instant::now() + PROTO_RESTART_DELAY);
            }
        }
    }

    /// Every pool up (its first workers confirmed, as php-fpm has forked
    /// them before it says "ready"), dormant, or failed and retrying.
    fn all_ready(&self) -> bool {
        self.pools
            .iter()
            .filter_map(|p| p.current.as_ref())
            .all(|g| g.dormant || g.is_up() || g.restart_at.is_some())
    }

    /// ondemand pools start dormant: their socket is watched and the
    /// prototype is started by the first connection. Others start now.
    fn start_or_sleep(&mut self, i: usize) {
        let Some(g) = self.pools[i].current.as_mut() else {
            return;
        };
        if g.cfg.pm == corral_config::PmKind::Ondemand {
            g.dormant = true;
            self.log.debug(&format!(
                "[pool {}] dormant until the first connection",
                g.cfg.name
            ));
        } else {
            self.start_prototype(i);
        }
    }

    fn event_loop(&mut self) -> i32 {
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
    fn retire_replaced(&mut self) {
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

    fn maintenance(&mut self) {
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
    fn systemd_report(&mut self) {
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

    fn broadcast(&self, msg: &str) {
        for (_, g) in self.pools.iter().flat_map(|p| p.gens()) {
            g.send(msg);
        }
    }

    fn handle_signals(&mut self) {
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
    fn note_crash(&mut self) {
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
    fn reopen_access_logs(&mut self) {
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

    fn handle_control(&mut self) {
        let Some(listener) = &self.control else {
            return;
        };
        let Ok((stream, _)) = listener.accept() else {
            return;
        };
        control::serve(self, stream);
    }

    /// Re-read the configuration and change only what changed. `only`
    /// limits the reload to the named pools. Returns a summary for the
    /// operator, or the reason nothing changed.
    pub(crate) fn reload(&mut self, only: Option<&[String]>) -> Result<String, String> {
        self.reload_with(only, false)
    }

    /// `force` restarts every pool even if unchanged (emergency restart).
    fn reload_with(&mut self, only: Option<&[String]>, force: bool) -> Result<String, String> {
        self.log.notice("Reloading in progress ...");
        self.notify.send("RELOADING=1");
        let result = self.reload_inner(only, force);
        self.notify.send("READY=1");
        result
    }

    fn reload_inner(&mut self, only: Option<&[String]>, force: bool) -> Result<String, String> {
        let load = corral_config::LoadOptions {
            prefix: self.opts.prefix.clone(),
            pid_override: self.opts.pid_file.clone(),
            allow_run_as_root: self.opts.allow_root,
            ..Default::default()
        };
        let new = match corral_config::load(&self.opts.config_path, &load) {
            Ok(c) => c,
            Err(errors) => {
                for d in &errors.0 {
                    self.log.error(&d.message);
                }
                let msg = format!(
                    "failed to reload: the configuration in '{}' is not valid; still running the previous one",
                    self.opts.config_path.display()
                );
                self.log.error(&msg);
                let detail: Vec<String> = errors.0.iter().map(|d| d.message.clone()).collect();
                return Err(format!("{msg}\n{}", detail.join("\n")));
            }
        };
        if let Err(e) = crate::users::check(&new, self.opts.allow_root) {
            let msg = format!("failed to reload: {e}; still running the previous configuration");
            self.log.error(&msg);
            return Err(msg);
        }
        if let Some(names) = only {
            for n in names {
                let known = new.pools.iter().any(|p| &p.name == n)
                    || self.pools.iter().any(|p| &p.name == n);
                if !known {
                    return Err(format!("no pool named '{n}'"));
                }
            }
        }
        // A status pool goes with its parent: `corral reload www` covers
        // www_status too.
        let wanted = |name: &str| {
            only.is_none_or(|list| {
                list.iter()
                    .any(|n| n == name || name.strip_suffix("_status").is_some_and(|p| p == n))
            })
        };
        let fingerprint = crate::php_ini::fingerprint(&self.opts.php_args);
        let ini_changed = fingerprint != self.ini_fingerprint;
        if ini_changed {
            self.log
                .notice("php.ini changed: every reloaded pool restarts");
        }
        let mut summary = Vec::new();

        // Changed and removed pools. Status pools follow their parent: a
        // parent with a new generation (new scoreboard) restarts its
        // status pool too.
        let expanded = expand(&new.pools);
        let changed_parents: Vec<String> = expanded
            .iter()
            .filter(|(p, parent)| {
                parent.is_none()
                    && wanted(&p.name)
                    && (force
                        || ini_changed
                        || !self.pools.iter().any(|s| {
                            s.name == p.name
                                && s.current.as_ref().is_some_and(|g| same_pool(&g.cfg, p))
                        }))
            })
            .map(|(p, _)| p.name.clone())
            .collect();
        let grace = self.drain_grace();
        // Parents first, so a status pool restarts onto its parent's new
        // scoreboard.
        let order: Vec<usize> = (0..self.pools.len())
            .rev()
            .filter(|&i| self.pools[i].status_of.is_none())
            .chain(
                (0..self.pools.len())
                    .rev()
                    .filter(|&i| self.pools[i].status_of.is_some()),
            )
            .collect();
        for i in order {
            let name = self.pools[i].name.clone();
            if !wanted(&name) {
                continue;
            }
            match expanded
                .iter()
                .find(|(p, _)| p.name == name)
                .map(|(p, _)| p)
            {
                None => {
                    if let Some(mut g) = self.pools[i].current.take() {
                        g.retire(grace);
                        self.pools[i].retiring.push(g);
                    }
                    summary.push(format!("[pool {name}] removed"));
                }
                Some(p) => {
                    let parent_changed = self.pools[i]
                        .status_of
                        .as_ref()
                        .is_some_and(|parent| changed_parents.contains(parent));
                    let same = !force
                        && !ini_changed
                        && !parent_changed
                        && self.pools[i]
                            .current
                            .as_ref()
                            .is_some_and(|g| same_pool(&g.cfg, p));
                    if same {
                        summary.push(format!("[pool {name}] unchanged"));
                        continue;
                    }
                    // Compared with the socket the pool holds, not with its
                    // current generation: a pool removed by an earlier reload
                    // and still draining comes back on the same socket.
                    let listen_changed = self.pools[i].listen_address != p.listen_address;
                    if listen_changed {
                        // A new address is a new socket: the pool moves to
                        // it and the old socket stays until its workers drain.
                        match open_pool(p, &mut self.log) {
                            Ok(sup) => {
                                let mut old = std::mem::replace(&mut self.pools[i], sup);
                                if let Some(mut g) = old.current.take() {
                                    g.retire(grace);
                                    old.retiring.push(g);
                                }
                                old.name = format!("{name} (previous address)");
                                if !old.is_empty() {
                                    self.pools.push(old);
                                }
                                self.start_or_sleep(i);
                                summary
                                    .push(format!("[pool {name}] moved to {}", p.listen_address));
                            }
                            Err(e) => {
                                self.log
                                    .error(&format!("failed to reload [pool {name}]: {e}"));
                                summary.push(format!("[pool {name}] kept: {e}"));
                            }
                        }
                        continue;
                    }
                    match Generation::new(p.clone()) {
                        Ok(g) => {
                            if let Some(old) = self.pools[i].current.replace(g) {
                                // Quit is sent once the new generation is up.
                                self.pools[i].retiring.push(old);
                            }
                            self.start_or_sleep(i);
                            summary.push(format!("[pool {name}] reloaded"));
                        }
                        Err(e) => {
                            self.log.error(&format!("[pool {name}] {e}"));
                            summary.push(format!("[pool {name}] kept: {e}"));
                        }
                    }
                }
            }
        }
        // Added pools.
        for (p, parent) in &expanded {
            if !wanted(&p.name) || self.pools.iter().any(|s| s.name == p.name) {
                continue;
            }
            match open_pool(p, &mut self.log) {
                Ok(mut sup) => {
                    sup.status_of = parent.clone();
                    self.pools.push(sup);
                    let i = self.pools.len() - 1;
                    self.start_or_sleep(i);
                    summary.push(format!("[pool {}] added", p.name));
                }
                Err(e) => {
                    self.log
                        .error(&format!("failed to reload [pool {}]: {e}", p.name));
                    summary.push(format!("[pool {}] not added: {e}", p.name));
                }
            }
        }
        // The master's view of the configuration: new for what was
        // reloaded, old for pools left alone by a partial reload.
        let mut merged = new.clone();
        if only.is_some() {
            merged.pools = self
                .pools
                .iter()
                .filter_map(|s| s.current.as_ref().map(|g| g.cfg.clone()))
                .collect();
        }
        if only.is_none() {
            self.ini_fingerprint = fingerprint;
        }
        self.log.level = merged.global.log_level;
        self.log.limit = merged.global.log_limit;
        self.config = merged;
        let text = summary.join("\n");
        for line in &summary {
            self.log.notice(line);
        }
        Ok(text)
    }

    /// Prototypes are our only direct children.
    fn reap(&mut self) {
        loop {
            match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) | Err(_) => return,
                Ok(st) => {
                    let Some(pid) = st.pid() else { return };
                    let found = self.pools.iter().enumerate().find_map(|(i, p)| {
                        p.gens()
                            .find(|(_, g)| g.proto.as_ref().is_some_and(|x| x.pid == pid))
                            .map(|(g, _)| (i, g))
                    });
                    if let Some((i, g)) = found {
                        self.prototype_gone(i, g, &format!("{st:?}"));
                    }
                }
            }
        }
    }

    fn prototype_gone(&mut self, i: usize, g: Gen, how: &str) {
        if self.pools[i].gen(g).is_none_or(|x| x.proto.is_none()) {
            return;
        }
        // Take what it said before it went (worker exits, in order).
        if let Some(ctl) = self.pools[i]
            .gen(g)
            .and_then(|x| x.proto.as_ref())
            .map(|p| p.ctl.as_raw_fd())
        {
            let mut buf = [0u8; 1024];
            while let Ok((n, fds)) = corral_sys::socket::recv_with_fds(ctl, &mut buf) {
                if n == 0 {
                    break;
                }
                let msg = buf[..n].to_vec();
                self.ctl_message(i, g, &msg, fds);
            }
        }
        let normal = self.state == State::Normal && g == Gen::Current;
        let Some(gen) = self.pools[i].gen_mut(g) else {
            return;
        };
        gen.proto = None;
        gen.reserved.clear();
        // Its workers die with it (PDEATHSIG). Their pids are not
        // signalled from here: they may already belong to someone else.
        let pids: Vec<i32> = gen.workers.keys().copied().collect();
        for pid in pids {
            gen.exited(pid, libc::SIGKILL, false, &mut self.log);
        }
        if normal && gen.sleeping {
            // Stopped for idleness: back to watching the socket.
            gen.sleeping = false;
            gen.dormant = true;
            gen.initial_done = false;
        } else if normal {
            self.log.warning(&format!(
                "[pool {}] prototype exited ({how}); restarting it",
                gen.cfg.name
            ));
            gen.restart_at = Some(Instant::now() + PROTO_RESTART_DELAY);
            gen.initial_done = false;
        }
        if let Gen::Retiring(j) = g {
            self.pools[i].retiring.remove(j);
            if self.pools[i].is_empty() {
                let sup = self.pools.remove(i);
                let still_used = |path: &PathBuf| {
                    self.pools
                        .iter()
                        .any(|p| p.unix_path.as_ref() == Some(path))
                };
                if let Some(path) = sup.unix_path.as_ref().filter(|p| !still_used(p)) {
                    let _ = std::fs::remove_file(path);
                }
                self.log.debug(&format!("[pool {}] stopped", sup.name));
            }
        }
    }

    /// Read every message waiting on a prototype's control channel.
    fn handle_ctl(&mut self, i: usize, g: Gen) {
        // A prototype runs as its tenant: it may not keep the master busy.
        // What is left waits for the next turn of the loop.
        for _ in 0..MAX_MESSAGES_PER_TURN {
            let Some(fd) = self
                .pools
                .get(i)
                .and_then(|p| p.gen(g))
                .and_then(|x| x.proto.as_ref())
                .map(|p| p.ctl.as_raw_fd())
            else {
                return;
            };
            let mut buf = [0u8; 1024];
            match corral_sys::socket::recv_with_fds(fd, &mut buf) {
                Ok((0, _)) => {
                    // Closed: the prototype exited; SIGCHLD reaps it.
                    let pid = self.pools[i]
                        .gen(g)
                        .and_then(|x| x.proto.as_ref())
                        .map(|p| p.pid);
                    if let Some(pid) = pid {
                        let _ = waitpid(pid, Some(WaitPidFlag::WNOHANG));
                    }
                    self.prototype_gone(i, g, "control channel closed");
                    return;
                }
                Ok((n, fds)) => self.ctl_message(i, g, &buf[..n], fds),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
                Err(_) => {
                    self.prototype_gone(i, g, "control channel failed");
                    return;
                }
            }
        }
    }

    fn ctl_message(&mut self, i: usize, g: Gen, msg: &[u8], fds: Vec<OwnedFd>) {
        let normal = self.state == State::Normal && g == Gen::Current;
        let mut room = self.room();
        let Some(gen) = self.pools.get_mut(i).and_then(|p| p.gen_mut(g)) else {
            return;
        };
        match ProtoMsg::parse(msg) {
            Some(ProtoMsg::Ready(layout)) => {
                if let Some(p) = gen.proto.as_mut() {
                    p.ready = true;
                    p.layout = layout;
                }
                if normal {
                    gen.start_initial(&mut room, &mut self.log);
                }
            }
            Some(ProtoMsg::Started { pid, slot }) => gen.started(pid, slot, fds, &mut self.log),
            Some(ProtoMsg::Exited { pid, status }) if is_crash(status) && normal => {
                let replace = gen.exited(pid, status, normal, &mut self.log);
                if replace {
                    gen.replace(&mut room, &mut self.log);
                }
                self.note_crash();
            }
            Some(ProtoMsg::Exited { pid, status }) => {
                let replace = gen.exited(pid, status, normal, &mut self.log);
                if replace && normal {
                    gen.replace(&mut room, &mut self.log);
                }
            }
            // Prefixed by the master: a prototype cannot speak for another pool.
            Some(ProtoMsg::Error(msg)) => self.log.error(&format!("[pool {}] {msg}", gen.cfg.name)),
            None => self.log.warning(&format!(
                "[pool {}] ignoring a malformed message from the prototype",
                gen.cfg.name
            )),
        }
    }
}

/// A worker killed by SIGSEGV or SIGBUS (php-fpm's emergency restart only
/// counts those).
fn is_crash(status: i32) -> bool {
    let sig = status & 0x7f;
    sig == libc::SIGSEGV || sig == libc::SIGBUS
}

/// Same configuration, ignoring where in the file it was written.
fn same_pool(a: &Pool, b: &Pool) -> bool {
    let mut b = b.clone();
    b.source = a.source.clone();
    *a == b
}
