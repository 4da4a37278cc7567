//! The prototype: one process per pool, exec'd by the master with the
//! pool's listening socket, a control channel and the scoreboard. It starts
//! PHP once (so OPcache and start-up state belong to this pool alone), drops
//! to the pool's user and forks workers when the master asks.
//!
//! Control messages are single text lines over a SOCK_SEQPACKET pair:
//! master → prototype: `spawn <slot>`, `stop <pid>`, `quit`, `term`;
//! prototype → master: `ready <slow-log layout>`, `started <pid> <slot>` (with the read ends
//! of the worker's stdout/stderr pipes attached when catch_workers_output
//! is on), `exited <pid> <wait status>`, `error <message>`.

use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};

use corral_config::{Config, Pool};
use corral_php::{Engine, LogLevel, LogOnly, StartOptions};
use corral_sys::nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use corral_sys::nix::sys::signal::Signal;
use corral_sys::nix::sys::signalfd::{SfdFlags, SigSet, SignalFd};
use corral_sys::nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use corral_sys::process::Forked;
use corral_sys::shm::SharedWords;

use crate::log::WorkerLog;
use crate::{worker, PoolRuntime};

/// Fixed descriptor numbers the master hands the prototype across exec.
pub const FD_LISTEN: RawFd = 3;
pub const FD_CONTROL: RawFd = 4;
pub const FD_BOARD: RawFd = 5;
/// The pool's configuration, rendered by the master (memfd).
pub const FD_CONFIG: RawFd = 6;
/// The pool's access.log, opened by the master (O_APPEND), when set.
pub const FD_ACCESS_LOG: RawFd = 7;
/// pm.status_listen pools: the parent pool's scoreboard, which they report.
pub const FD_STATUS_BOARD: RawFd = 8;

/// Everything the prototype is told on its command line.
#[derive(Debug, Clone)]
pub struct PrototypeArgs {
    pub pool: String,
    pub php: StartOptions,
    pub board_words: usize,
    /// A `<pool>_status` pool: the parent's name and scoreboard size.
    pub status_of: Option<(String, usize)>,
}

/// Fails start-up with a message for the master's log.
#[derive(Debug, thiserror::Error)]
pub enum PrototypeError {
    #[error("cannot read the configuration handed over by the master ({0}): {1}")]
    Config(String, String),
    #[error("pool {0} is not in the configuration handed over")]
    NoPool(String),
    #[error("cannot get uid for user '{user}' (pool {pool})")]
    NoUser { pool: String, user: String },
    #[error("cannot get gid for group '{group}' (pool {pool})")]
    NoGroup { pool: String, group: String },
    #[error("{source} (pool {pool})")]
    Sys {
        pool: String,
        #[source]
        source: corral_sys::SysError,
    },
    #[error("PHP start-up failed (pool {0})")]
    Php(String),
}

fn send(ctl: RawFd, msg: &str) -> bool {
    corral_sys::socket::send_with_fds(ctl, msg.as_bytes(), &[]).is_ok()
}

fn sys(pool: &str) -> impl Fn(corral_sys::SysError) -> PrototypeError + '_ {
    move |source| PrototypeError::Sys {
        pool: pool.to_string(),
        source,
    }
}

/// The pool's environment: php-fpm sets USER and HOME from the pool user,
/// clears the rest when clear_env = yes, then applies env[].
fn apply_env(pool: &Pool, account: &corral_sys::cred::Account) {
    if pool.clear_env {
        corral_sys::process::clear_env();
    }
    let has = |k: &str| pool.env.iter().any(|(n, _)| n == k);
    if !has("USER") {
        corral_sys::process::set_env("USER", &account.name);
    }
    if !has("HOME") {
        corral_sys::process::set_env("HOME", &account.home);
    }
    for (k, v) in &pool.env {
        corral_sys::process::set_env(k, v);
    }
}

fn set_up(args: &PrototypeArgs) -> Result<(Engine, PoolRuntime, Pool), PrototypeError> {
    // Only this pool's settings, already resolved by the master.
    let mut text = String::new();
    let fd = corral_sys::process::take_fixed_fd(FD_CONFIG).ok_or_else(|| {
        PrototypeError::Config(args.pool.clone(), "descriptor 6 is not open".into())
    })?;
    std::io::Read::read_to_string(&mut std::fs::File::from(fd), &mut text)
        .map_err(|e| PrototypeError::Config(args.pool.clone(), e.to_string()))?;
    let load = corral_config::LoadOptions {
        resolved: true,
        ..Default::default()
    };
    let config: Config = corral_config::parse_str(&text, std::path::Path::new("(master)"), &load)
        .map_err(|e| PrototypeError::Config(args.pool.clone(), e.to_string()))?;
    let pool = config
        .pools
        .into_iter()
        .find(|p| p.name == args.pool)
        .ok_or_else(|| PrototypeError::NoPool(args.pool.clone()))?;
    let name = pool.name.as_str();

    // Whom to become. As root the pool's user (checked by the master too);
    // otherwise we stay who we are.
    let root = corral_sys::cred::is_root();
    let account = match (&pool.user, root) {
        (Some(u), true) => {
            corral_sys::cred::lookup_user(u).ok_or_else(|| PrototypeError::NoUser {
                pool: name.to_string(),
                user: u.clone(),
            })?
        }
        _ => corral_sys::cred::current_account(),
    };
    let gid = match (&pool.group, root) {
        (Some(g), true) => {
            corral_sys::cred::lookup_group(g).ok_or_else(|| PrototypeError::NoGroup {
                pool: name.to_string(),
                group: g.clone(),
            })?
        }
        _ => account.gid,
    };

    if let Some(prio) = pool.process_priority.filter(|_| root) {
        corral_sys::process::set_priority(prio).map_err(sys(name))?;
    }
    use corral_sys::nix::sys::resource::Resource;
    if let Some(n) = pool.rlimit_files {
        if let Err(e) = corral_sys::process::set_rlimit(Resource::RLIMIT_NOFILE, n) {
            send(FD_CONTROL, &format!("error failed to set rlimit_files for this pool. Please check your system limits or decrease rlimit_files. {e}"));
        }
    }
    if let Some(r) = pool.rlimit_core {
        let v = match r {
            corral_config::Rlimit::Value(v) => v,
            corral_config::Rlimit::Unlimited => libc::RLIM_INFINITY,
        };
        if let Err(e) = corral_sys::process::set_rlimit(Resource::RLIMIT_CORE, v) {
            send(
                FD_CONTROL,
                &format!("error failed to set rlimit_core for this pool. {e}"),
            );
        }
    }

    // PHP starts before the chroot (its extensions live outside it) and
    // before the privilege drop, as in php-fpm's master; no request and no
    // tenant code runs until we are the pool's user.
    // PHP's own start-up messages reach the master through our stderr.
    let php = args
        .php
        .clone()
        .with_ini_defaults(corral_config::paths::FPM_PHP_INI_DIR);
    let startup_log = WorkerLog {
        min_level: LogLevel::Notice,
    };
    let engine = Engine::start(
        &php,
        &mut LogOnly(|level, msg: &[u8]| startup_log.line(level, msg)),
    )
    .map_err(|_| PrototypeError::Php(name.to_string()))?;
    for v in &pool.php_values {
        if engine.apply_pool_ini(&v.name, &v.value, v.admin).is_err() {
            let kind = if v.admin {
                "php_admin_value"
            } else {
                "php_value"
            };
            send(
                FD_CONTROL,
                &format!("error Unable to set {kind} '{}'", v.name),
            );
        }
    }

    if let Some(dir) = pool.chroot.as_ref().filter(|_| root) {
        corral_sys::cred::chroot(dir).map_err(sys(name))?;
    }
    if let Some(dir) = &pool.chdir {
        std::env::set_current_dir(dir).map_err(|e| PrototypeError::Sys {
            pool: name.to_string(),
            source: corral_sys::SysError::new(format!("chdir({})", dir.display()), e),
        })?;
    }
    if root {
        corral_sys::cred::drop_to(&account.name, account.uid, gid).map_err(sys(name))?;
    }
    if pool.process_dumpable {
        corral_sys::process::set_dumpable(true).map_err(sys(name))?;
    }
    apply_env(&pool, &account);

    let mut runtime = PoolRuntime::from_pool(&pool, config.global.log_level);
    runtime.master_pid = corral_sys::nix::unistd::getppid().as_raw() as u32;
    Ok((engine, runtime, pool))
}

/// The prototype's whole life. Returns the process exit code.
pub fn run(args: PrototypeArgs) -> i32 {
    corral_sys::process::close_fds_above(FD_STATUS_BOARD);
    corral_sys::process::set_comm("corral");
    let master = corral_sys::nix::unistd::getppid();
    let _ = corral_sys::process::die_with_parent(libc::SIGTERM, master);
    let (engine, runtime, pool) = match set_up(&args) {
        Ok(v) => v,
        Err(e) => {
            send(FD_CONTROL, &format!("error {e}"));
            return 78;
        }
    };
    let board = SharedWords::map(&corral_sys::process::fixed_fd(FD_BOARD), args.board_words).ok();
    let status_board = args.status_of.as_ref().and_then(|(name, words)| {
        let fd = corral_sys::process::take_fixed_fd(FD_STATUS_BOARD)?;
        Some((name.clone(), SharedWords::map(&fd, *words).ok()?))
    });
    let boards = worker::Boards {
        own: board.as_ref(),
        status: status_board.as_ref().map(|(n, b)| (n.as_str(), b)),
    };

    // Signals through a signalfd, so the loop below sees worker exits in
    // order with control messages and no handler code runs. TERM/INT/QUIT
    // may come straight from a service manager killing the whole group:
    // they mean what the master's "term"/"quit" mean.
    let mut mask = SigSet::empty();
    for sig in [
        Signal::SIGCHLD,
        Signal::SIGTERM,
        Signal::SIGINT,
        Signal::SIGQUIT,
    ] {
        mask.add(sig);
    }
    let _ = mask.thread_block();
    let Ok(sfd) = SignalFd::with_flags(&mask, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)
    else {
        send(FD_CONTROL, "error signalfd failed");
        return 70;
    };

    // The slow-log layout rides on "ready": the master reads our workers'
    // PHP stacks at these addresses (all forks share them).
    let layout: Vec<String> = engine.trace_layout().iter().map(u64::to_string).collect();
    send(FD_CONTROL, &format!("ready {}", layout.join(" ")));
    let mut children: Vec<i32> = Vec::new();
    let mut quitting = false;
    loop {
        let ctl = corral_sys::process::fixed_fd(FD_CONTROL);
        let mut fds = [
            PollFd::new(ctl, PollFlags::POLLIN),
            PollFd::new(sfd_borrow(&sfd), PollFlags::POLLIN),
        ];
        if let Err(e) = poll(&mut fds, PollTimeout::from(1000u16)) {
            if e != corral_sys::nix::errno::Errno::EINTR {
                return 70;
            }
            continue;
        }
        let ctl_ready = fds[0].revents().is_some_and(|r| !r.is_empty());
        let sig_ready = fds[1].revents().is_some_and(|r| !r.is_empty());
        if sig_ready {
            while let Ok(Some(info)) = sfd.read_signal() {
                let sig = Signal::try_from(info.ssi_signo as i32).ok();
                let forward = match sig {
                    Some(Signal::SIGQUIT) => Some(Signal::SIGQUIT),
                    Some(Signal::SIGTERM | Signal::SIGINT) => Some(Signal::SIGTERM),
                    _ => None,
                };
                if let Some(fwd) = forward {
                    quitting = true;
                    for &c in &children {
                        corral_sys::signal::kill(c, fwd);
                    }
                }
            }
            reap(&mut children);
        }
        if ctl_ready {
            let mut buf = [0u8; 256];
            let msg = match corral_sys::socket::recv_with_fds(FD_CONTROL, &mut buf) {
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Ok((0, _)) | Err(_) => {
                    // The master is gone: take the workers with us.
                    for &c in &children {
                        corral_sys::signal::kill(c, Signal::SIGTERM);
                    }
                    return 0;
                }
                Ok((n, fds)) => (String::from_utf8_lossy(&buf[..n]).into_owned(), fds),
            };
            let (msg, fds) = msg;
            let mut words = msg.split_whitespace();
            match (words.next(), words.next()) {
                (Some("spawn"), Some(slot)) if !quitting => {
                    let slot: usize = slot.parse().unwrap_or(usize::MAX);
                    if let Some(pid) = spawn(&engine, &runtime, &pool, &boards, slot, &mask) {
                        children.push(pid);
                    }
                }
                (Some("stop"), Some(pid)) => {
                    // Only our own children: the master asks by pid.
                    if let Some(&c) = pid
                        .parse::<i32>()
                        .ok()
                        .and_then(|p| children.iter().find(|&&c| c == p))
                    {
                        corral_sys::signal::kill(c, Signal::SIGQUIT);
                    }
                }
                (Some("accesslog"), _) => {
                    // SIGUSR1: the master reopened the file; take the new
                    // descriptor and let the workers restart onto it (they
                    // are forks of us, so OPcache stays warm).
                    if let Some(fd) = fds.into_iter().next() {
                        let _ = corral_sys::process::dup_to(
                            std::os::fd::AsRawFd::as_raw_fd(&fd),
                            FD_ACCESS_LOG,
                        );
                        for &c in &children {
                            corral_sys::signal::kill(c, Signal::SIGQUIT);
                        }
                    }
                }
                (Some("quit"), _) => {
                    quitting = true;
                    for &c in &children {
                        corral_sys::signal::kill(c, Signal::SIGQUIT);
                    }
                }
                (Some("term"), _) => {
                    quitting = true;
                    for &c in &children {
                        corral_sys::signal::kill(c, Signal::SIGTERM);
                    }
                }
                _ => {}
            }
        }
        if quitting && children.is_empty() {
            return 0;
        }
    }
}

fn reap(children: &mut Vec<i32>) {
    loop {
        match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) | Err(_) => break,
            Ok(status) => {
                let Some(pid) = status.pid() else { break };
                let raw = match status {
                    WaitStatus::Exited(_, code) => (code & 0xff) << 8,
                    WaitStatus::Signaled(_, sig, core) => {
                        (sig as i32) | if core { 0x80 } else { 0 }
                    }
                    _ => continue,
                };
                children.retain(|&c| c != pid.as_raw());
                send(FD_CONTROL, &format!("exited {} {}", pid.as_raw(), raw));
            }
        }
    }
}

fn spawn(
    engine: &Engine,
    runtime: &PoolRuntime,
    pool: &Pool,
    boards: &worker::Boards,
    slot: usize,
    mask: &SigSet,
) -> Option<i32> {
    let me = corral_sys::nix::unistd::getpid();
    let pipes = if pool.catch_workers_output {
        match (
            corral_sys::nix::unistd::pipe(),
            corral_sys::nix::unistd::pipe(),
        ) {
            (Ok(out), Ok(err)) => Some((out, err)),
            _ => None,
        }
    } else {
        None
    };
    match corral_sys::process::fork() {
        Err(e) => {
            send(FD_CONTROL, &format!("error {e}"));
            None
        }
        Ok(Forked::Child) => {
            let _ = mask.thread_unblock();
            let _ = corral_sys::process::die_with_parent(libc::SIGTERM, me);
            let _ = corral_sys::signal::worker_signals();
            // The worker never talks to the master.
            let _ = corral_sys::nix::unistd::close(FD_CONTROL);
            redirect_stdio(
                pipes
                    .as_ref()
                    .map(|(o, e)| (o.1.as_raw_fd(), e.1.as_raw_fd())),
            );
            drop(pipes);
            engine.child_init();
            worker::run(engine, runtime, FD_LISTEN, boards, slot)
        }
        Ok(Forked::Parent(pid)) => {
            let msg = format!("started {} {}", pid.as_raw(), slot);
            match pipes {
                Some((out, err)) => {
                    let _ = corral_sys::socket::send_with_fds(
                        FD_CONTROL,
                        msg.as_bytes(),
                        &[out.0.as_raw_fd(), err.0.as_raw_fd()],
                    );
                }
                None => {
                    send(FD_CONTROL, &msg);
                }
            }
            Some(pid.as_raw())
        }
    }
}

/// Worker stdout/stderr: the capture pipes, or /dev/null as in php-fpm.
fn redirect_stdio(pipes: Option<(RawFd, RawFd)>) {
    let (out, err) = match pipes {
        Some(p) => p,
        None => {
            let null = std::fs::OpenOptions::new().write(true).open("/dev/null");
            match null {
                Ok(f) => {
                    let fd: OwnedFd = f.into();
                    let raw = fd.as_raw_fd();
                    let _ = corral_sys::nix::unistd::dup2(raw, 1);
                    let _ = corral_sys::nix::unistd::dup2(raw, 2);
                    return;
                }
                Err(_) => return,
            }
        }
    };
    let _ = corral_sys::nix::unistd::dup2(out, 1);
    let _ = corral_sys::nix::unistd::dup2(err, 2);
}

fn sfd_borrow(sfd: &SignalFd) -> BorrowedFd<'_> {
    use std::os::fd::AsFd;
    sfd.as_fd()
}
