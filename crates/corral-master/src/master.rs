//! The master: root, single-threaded, never loads PHP. It owns the sockets
//! and the policy; prototypes and workers do the PHP.

use std::collections::BTreeMap;
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixListener;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use corral_config::{Config, LogLevel, Pool};
use corral_ipc::ToPrototype;
use corral_sys::nix::sys::signal::Signal;

use crate::error::{MasterError, PoolError};
use crate::ids::{GenId, Ids, PoolId};
use crate::log::Logger;
use crate::os::Os;
use crate::pool::Generation;

/// php-fpm's exit codes (sysexits), from corral's one table.
pub const EXIT_OK: i32 = corral_ipc::ExitCode::Ok.code();
pub const EXIT_SOFTWARE: i32 = corral_ipc::ExitCode::Software.code();
pub const EXIT_CONFIG: i32 = corral_ipc::ExitCode::Config.code();

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
    /// The cgroup under the master's own that holds the pools' cgroups
    /// (`corral` when unset); tests give each master its own.
    pub cgroup_subtree: Option<String>,
    /// Daemonized: the launcher waits on this pipe for "1" (up) or "0".
    pub ready_pipe: Option<std::sync::Arc<OwnedFd>>,
}

/// Tell a waiting launcher how start-up went (php-fpm's send_config_pipe).
pub(crate) fn notify_launcher(opts: &mut MasterOptions, ok: bool) {
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
    /// The pools' cgroups this master made, by pool name, with the limits
    /// last written into each (a reload resets what it drops).
    pub(crate) cgroups: BTreeMap<String, corral_isolation::Limits>,
    /// `corral.metrics_listen`: the metrics and dashboard server.
    pub(crate) metrics: Option<corral_metrics::http::Server>,
    /// Reloads and the counters of departed generations.
    pub(crate) history: crate::history::History,
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
    let subtree = opts
        .cgroup_subtree
        .clone()
        .unwrap_or_else(|| crate::cgroups::DEFAULT_SUBTREE.to_string());
    let os = crate::os::RealOs::new(&subtree);
    let mut m = Master::new(opts.clone(), config, log, Box::new(os));
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
    m.configure_zygote();
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
            cgroups: BTreeMap::new(),
            metrics: None,
            history: crate::history::History::new(),
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
        self.sync_metrics_server();
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
    /// Fork prototypes from the zygote (preloading what php.ini loads)
    /// when corral.zygote allows it and we are root: only root can give a
    /// fork the cgroup, descriptors and command line an exec would have.
    pub(crate) fn configure_zygote(&mut self) {
        let on = self.config.global.zygote && corral_sys::nix::unistd::geteuid().is_root();
        let preload = on.then(|| crate::php_ini::preload(&self.opts.php_args));
        self.os.use_zygote(preload);
        self.log_zygote_notes();
    }

    pub(crate) fn log_zygote_notes(&mut self) {
        for note in self.os.zygote_tick() {
            self.log.warning(&note);
        }
    }

    fn clean_up(&mut self) {
        self.os.use_zygote(None);
        self.remove_cgroups();
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
        let mut warnings: Vec<(LogLevel, String)> = Vec::new();
        let fd = self
            .os
            .open_listener(p, &mut |level, msg| warnings.push((level, msg)));
        for (level, msg) in warnings {
            self.log.log(level, &msg);
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

    /// No generation a reload replaced can take a new connection any more:
    /// the moment a reload is complete, as php-fpm's (whose old children
    /// are gone before it re-executes) is when it says "ready" again.
    /// In-flight requests of old workers may still be finishing. A
    /// generation past its drain deadline (its prototype does not pass the
    /// quit on) is being killed and no longer holds "ready" back.
    pub(crate) fn replaced_stopped_accepting(&self) -> bool {
        let now = self.os.now();
        self.pools
            .values()
            .flat_map(|p| p.retiring.iter())
            .filter(|g| g.drain_deadline.is_none_or(|d| now < d))
            .all(|g| !g.may_accept())
    }

    pub(crate) fn broadcast(&self, msg: &ToPrototype) {
        for g in self.pools.values().flat_map(|p| p.gens()) {
            g.send(msg);
        }
    }
}
