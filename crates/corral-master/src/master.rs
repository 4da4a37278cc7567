//! The master: root, single-threaded, never loads PHP. It owns the sockets
//! and the policy; prototypes and workers do the PHP.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use corral_config::Config;
use corral_sys::nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use corral_sys::nix::sys::signal::Signal;
use corral_sys::nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};

use crate::log::Logger;
use crate::pool::{PoolSup, ProtoMsg, Prototype, PROTO_RESTART_DELAY};

/// php-fpm's exit codes (sysexits).
pub const EXIT_OK: i32 = 0;
pub const EXIT_SOFTWARE: i32 = 70;
pub const EXIT_CONFIG: i32 = 78;

/// The environment variable that makes `corral` run as a prototype; its
/// value is the prototype's arguments separated by U+001F.
pub const PROTOTYPE_ENV: &str = "CORRAL_PROTOTYPE";

/// How the master was started.
#[derive(Debug, Clone)]
pub struct MasterOptions {
    pub config_path: PathBuf,
    pub prefix: Option<PathBuf>,
    pub pid_file: Option<PathBuf>,
    pub force_daemon: Option<bool>,
    pub force_stderr: bool,
    /// Arguments for the prototype's PHP (-c, -n, -d ...).
    pub php_args: Vec<String>,
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

struct Master {
    opts: MasterOptions,
    config: Config,
    log: Logger,
    pools: Vec<PoolSup>,
    state: State,
    stop_deadline: Option<Instant>,
    sig_fd: OwnedFd,
    ready_logged: bool,
}

/// Run the master until it is told to stop. Returns the exit code.
pub fn run(mut opts: MasterOptions, config: Config, log: Logger) -> i32 {
    let code = start(&mut opts, config, log);
    notify_launcher(&mut opts, false);
    code
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
    for p in &config.pools {
        let mut warnings = Vec::new();
        let fd = match crate::listen::open(p, &mut |w| warnings.push(w)) {
            Ok(fd) => fd,
            Err(e) => {
                for w in warnings {
                    log.warning(&w);
                }
                log.error(&e.to_string());
                log.error("FPM initialization failed");
                return EXIT_CONFIG;
            }
        };
        for w in warnings {
            log.warning(&w);
        }
        match PoolSup::new(p.clone(), fd) {
            Ok(sup) => pools.push(sup),
            Err(e) => {
                log.error(&format!("[pool {}] {e}", p.name));
                return EXIT_SOFTWARE;
            }
        }
    }

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
        ready_logged: false,
    };
    m.log
        .notice(&format!("fpm is running, pid {}", std::process::id()));
    for i in 0..m.pools.len() {
        m.start_prototype(i);
    }
    let code = m.event_loop();
    for p in &m.pools {
        if let corral_config::Listen::Unix(path) = &p.cfg.listen {
            let _ = std::fs::remove_file(path);
        }
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
            .map(|p| p.workers.len() + p.reserved.len())
            .sum();
        max.saturating_sub(used as u32)
    }

    fn start_prototype(&mut self, i: usize) {
        let (ours, theirs) = match corral_sys::socket::seqpacket_pair() {
            Ok(p) => p,
            Err(e) => {
                self.log.error(&e.to_string());
                return;
            }
        };
        let pool = &self.pools[i];
        // The arguments travel in the environment so that the process title
        // is exactly php-fpm's "php-fpm: pool NAME", for workers too.
        let mut args = vec![
            "--config".to_string(),
            self.opts.config_path.display().to_string(),
            "--pool".into(),
            pool.cfg.name.clone(),
            "--board-words".into(),
            corral_status::region_words(pool.nslots).to_string(),
        ];
        if let Some(p) = &self.opts.prefix {
            args.push("--prefix".into());
            args.push(p.display().to_string());
        }
        args.extend(self.opts.php_args.iter().cloned());
        let argv = vec![format!("php-fpm: pool {}", pool.cfg.name)];
        let env = [(PROTOTYPE_ENV.to_string(), args.join("\u{1f}"))];
        let fds = [
            pool.listen.as_raw_fd(),
            theirs.as_raw_fd(),
            pool.board_fd.as_raw_fd(),
        ];
        match corral_sys::process::spawn_self(&argv, &env, &fds) {
            Ok(pid) => {
                let _ = corral_sys::socket::set_nonblocking(ours.as_raw_fd(), true);
                self.log.debug(&format!(
                    "[pool {}] prototype {} started",
                    pool.cfg.name, pid
                ));
                self.pools[i].proto = Some(Prototype {
                    pid,
                    ctl: ours,
                    ready: false,
                });
                self.pools[i].restart_at = None;
            }
            Err(e) => {
                self.log
                    .error(&format!("[pool {}] {e}", self.pools[i].cfg.name));
                self.pools[i].restart_at = Some(Instant::now() + PROTO_RESTART_DELAY);
            }
        }
    }

    fn all_ready(&self) -> bool {
        self.pools
            .iter()
            .all(|p| p.proto.as_ref().is_some_and(|x| x.ready) || p.restart_at.is_some())
    }

    fn event_loop(&mut self) -> i32 {
        let mut last_tick = Instant::now();
        loop {
            if self.state != State::Normal && self.pools.iter().all(|p| p.proto.is_none()) {
                return EXIT_OK;
            }
            // What to watch: signals, each prototype, ondemand sockets with
            // no idle worker, worker output pipes.
            enum Src {
                Sig,
                Ctl(usize),
                Accept(usize),
                Out(usize, i32, usize),
            }
            let mut srcs = vec![Src::Sig];
            let mut raw = vec![self.sig_fd.as_raw_fd()];
            for (i, p) in self.pools.iter().enumerate() {
                if let Some(pr) = &p.proto {
                    srcs.push(Src::Ctl(i));
                    raw.push(pr.ctl.as_raw_fd());
                }
                if self.state == State::Normal && p.wants_accept_watch() {
                    srcs.push(Src::Accept(i));
                    raw.push(p.listen.as_raw_fd());
                }
                for (pid, idx, fd) in p.capture_fds() {
                    srcs.push(Src::Out(i, pid, idx));
                    raw.push(fd);
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
            let wait = Duration::from_millis(1000).saturating_sub(last_tick.elapsed());
            let timeout = PollTimeout::try_from(wait.as_millis().min(1000) as i32)
                .unwrap_or(PollTimeout::ZERO);
            let _ = poll(&mut pfds, timeout);
            let ready: Vec<bool> = pfds
                .iter()
                .map(|p| p.revents().is_some_and(|r| !r.is_empty()))
                .collect();
            drop(pfds);

            for (src, ok) in srcs.iter().zip(ready) {
                if !ok {
                    continue;
                }
                match *src {
                    Src::Sig => self.handle_signals(),
                    Src::Ctl(i) => self.handle_ctl(i),
                    Src::Accept(i) => {
                        let mut room = self.room();
                        self.pools[i].on_accept(&mut room, &mut self.log);
                    }
                    Src::Out(i, pid, idx) => self.pools[i].read_capture(pid, idx, &mut self.log),
                }
            }

            if !self.ready_logged && self.all_ready() {
                self.ready_logged = true;
                notify_launcher(&mut self.opts, true);
                self.log.notice("ready to handle connections");
                self.log.echo_stderr = false;
            }

            if last_tick.elapsed() >= Duration::from_millis(1000) {
                last_tick = Instant::now();
                self.maintenance();
            }
        }
    }

    fn maintenance(&mut self) {
        let now = Instant::now();
        if self.state == State::Normal {
            let now_us = corral_status::now_us();
            for i in 0..self.pools.len() {
                if self.pools[i].proto.is_none()
                    && self.pools[i].restart_at.is_some_and(|t| t <= now)
                {
                    self.start_prototype(i);
                }
                let mut room = self.room();
                self.pools[i].tick(now_us, &mut room, &mut self.log);
            }
        } else if let Some(deadline) = self.stop_deadline {
            if now >= deadline {
                // Escalate: QUIT → TERM → KILL, as php-fpm does.
                match self.state {
                    State::Finishing => {
                        self.state = State::Terminating;
                        for p in &self.pools {
                            p.send("term");
                        }
                        self.stop_deadline = Some(now + Duration::from_secs(1));
                    }
                    _ => {
                        for p in &self.pools {
                            if let Some(pr) = &p.proto {
                                corral_sys::signal::kill(pr.pid.as_raw(), Signal::SIGKILL);
                            }
                        }
                        self.stop_deadline = Some(now + Duration::from_secs(1));
                    }
                }
            }
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
                        self.state = State::Terminating;
                        for p in &self.pools {
                            p.send("term");
                        }
                        self.stop_deadline =
                            Some(Instant::now() + self.config.global.process_control_timeout);
                    }
                }
                Signal::SIGQUIT => {
                    self.log.debug("received SIGQUIT");
                    if self.state == State::Normal {
                        self.log.notice("Finishing ...");
                        self.state = State::Finishing;
                        for p in &self.pools {
                            p.send("quit");
                        }
                        // Unlike php-fpm's default of 0, in-flight requests
                        // get at least a few seconds to finish.
                        let t = self
                            .config
                            .global
                            .process_control_timeout
                            .max(Duration::from_secs(10));
                        self.stop_deadline = Some(Instant::now() + t);
                    }
                }
                Signal::SIGUSR1 => match self.log.reopen() {
                    Ok(()) => self.log.notice("error log file re-opened"),
                    Err(e) => self
                        .log
                        .error(&format!("unable to re-opened error log file: {e}")),
                },
                Signal::SIGUSR2 | Signal::SIGHUP => {
                    self.log.debug(&format!("received {}", sig.as_str()));
                    self.log.warning("reload is not supported yet; restart corral to apply configuration changes");
                }
                _ => {}
            }
        }
    }

    /// Prototypes are our only direct children.
    fn reap(&mut self) {
        loop {
            match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) | Err(_) => return,
                Ok(st) => {
                    let Some(pid) = st.pid() else { return };
                    for i in 0..self.pools.len() {
                        if self.pools[i].proto.as_ref().is_some_and(|p| p.pid == pid) {
                            self.prototype_gone(i, &format!("{st:?}"));
                        }
                    }
                }
            }
        }
    }

    fn prototype_gone(&mut self, i: usize, how: &str) {
        if self.pools[i].proto.is_none() {
            return;
        }
        // Take what it said before it went (worker exits, in order).
        if let Some(ctl) = self.pools[i].proto.as_ref().map(|p| p.ctl.as_raw_fd()) {
            let mut buf = [0u8; 1024];
            while let Ok((n, fds)) = corral_sys::socket::recv_with_fds(ctl, &mut buf) {
                if n == 0 {
                    break;
                }
                let msg = buf[..n].to_vec();
                self.ctl_message(i, &msg, fds);
            }
        }
        let normal = self.state == State::Normal;
        let pool = &mut self.pools[i];
        pool.proto = None;
        pool.reserved.clear();
        // Its workers die with it (PDEATHSIG). Their pids are not
        // signalled from here: they may already belong to someone else.
        let pids: Vec<i32> = pool.workers.keys().copied().collect();
        for pid in pids {
            pool.exited(pid, libc::SIGKILL, false, &mut self.log);
        }
        if normal {
            self.log.warning(&format!(
                "[pool {}] prototype exited ({how}); restarting it",
                pool.cfg.name
            ));
            pool.restart_at = Some(Instant::now() + PROTO_RESTART_DELAY);
            pool.initial_done = false;
        }
    }

    /// Read every message waiting on pool `i`'s control channel.
    fn handle_ctl(&mut self, i: usize) {
        loop {
            let Some(fd) = self.pools[i].proto.as_ref().map(|p| p.ctl.as_raw_fd()) else {
                return;
            };
            let mut buf = [0u8; 1024];
            match corral_sys::socket::recv_with_fds(fd, &mut buf) {
                Ok((0, _)) => {
                    // Closed: the prototype exited; SIGCHLD reaps it.
                    let pid = self.pools[i].proto.as_ref().map(|p| p.pid);
                    if let Some(pid) = pid {
                        let _ = waitpid(pid, Some(WaitPidFlag::WNOHANG));
                    }
                    self.prototype_gone(i, "control channel closed");
                    return;
                }
                Ok((n, fds)) => self.ctl_message(i, &buf[..n], fds),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
                Err(_) => {
                    self.prototype_gone(i, "control channel failed");
                    return;
                }
            }
        }
    }

    fn ctl_message(&mut self, i: usize, msg: &[u8], fds: Vec<OwnedFd>) {
        let normal = self.state == State::Normal;
        match ProtoMsg::parse(msg) {
            Some(ProtoMsg::Ready) => {
                if let Some(p) = self.pools[i].proto.as_mut() {
                    p.ready = true;
                }
                if normal {
                    let mut room = self.room();
                    self.pools[i].start_initial(&mut room, &mut self.log);
                }
            }
            Some(ProtoMsg::Started { pid, slot }) => {
                self.pools[i].started(pid, slot, fds, &mut self.log)
            }
            Some(ProtoMsg::Exited { pid, status }) => {
                let replace = self.pools[i].exited(pid, status, normal, &mut self.log);
                if replace && normal {
                    let mut room = self.room();
                    self.pools[i].replace(&mut room, &mut self.log);
                }
            }
            Some(ProtoMsg::Error(msg)) => self.log.error(&msg),
            None => self.log.warning(&format!(
                "[pool {}] ignoring a malformed message from the prototype",
                self.pools[i].cfg.name
            )),
        }
    }
}
