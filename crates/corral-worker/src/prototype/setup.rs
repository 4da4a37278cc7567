//! Everything a prototype does once, before it forks any worker: read its
//! pool's configuration, set limits, enter its namespaces, start PHP, then
//! chroot, drop to the pool's user and apply no_new_privs and Landlock.
//! No tenant code runs until the last step is done.

use std::os::fd::OwnedFd;

use corral_config::{Config, Pool};
use corral_ipc::FromPrototype;
use corral_php::{Engine, LogLevel, LogOnly, StartOptions};
use corral_sys::cred::Account;

use super::confine;
use crate::log::WorkerLog;
use crate::PoolRuntime;

/// A step of the prototype's start-up failed; the text goes to the
/// master's log, prefixed with the pool by the master.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("{0}")]
    Handoff(#[from] corral_ipc::handoff::HandoffError),
    #[error("cannot read the configuration handed over by the master: {0}")]
    ReadConfig(#[source] std::io::Error),
    #[error("the configuration handed over by the master does not parse: {0}")]
    ParseConfig(String),
    #[error("pool {0} is not in the configuration handed over")]
    NoPool(String),
    #[error("cannot get uid for user '{0}'")]
    NoUser(String),
    #[error("cannot get gid for group '{0}'")]
    NoGroup(String),
    #[error("unable to set priority: {0}")]
    Priority(#[source] corral_sys::SysError),
    #[error("PHP start-up failed")]
    Php,
    #[error("{0}")]
    Chroot(#[source] corral_sys::SysError),
    #[error("chdir({path}) failed: {source}")]
    Chdir {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    DropPrivileges(#[source] corral_sys::SysError),
    #[error("{0}")]
    Dumpable(#[source] corral_sys::SysError),
    #[error("cannot map the scoreboard: {0}")]
    Board(#[source] corral_sys::SysError),
    #[error("signalfd failed: {0}")]
    Signals(String),
    #[error("{0}")]
    AppArmor(#[from] corral_isolation::apparmor::AppArmorError),
}

/// What set-up produces for the supervision loop.
pub struct Ready {
    pub engine: Engine,
    pub runtime: PoolRuntime,
    pub pool: Pool,
}

/// Warnings during set-up go to the master as `error` reports, as php-fpm
/// logs them from its master; start-up goes on.
pub type Report<'a> = &'a mut dyn FnMut(FromPrototype);

fn report_error(report: Report<'_>, text: String) {
    report(FromPrototype::Error { text });
}

/// Only this pool's settings, already resolved by the master.
pub fn read_pool(config_fd: OwnedFd, name: &str) -> Result<(Config, Pool), SetupError> {
    let mut text = String::new();
    // From the start, whatever the shared file offset says: the memfd's
    // description is the master's too (and a zygote's, in passing).
    let mut file = std::fs::File::from(config_fd);
    std::io::Seek::seek(&mut file, std::io::SeekFrom::Start(0)).map_err(SetupError::ReadConfig)?;
    std::io::Read::read_to_string(&mut file, &mut text).map_err(SetupError::ReadConfig)?;
    let load = corral_config::LoadOptions {
        resolved: true,
        ..Default::default()
    };
    let mut config = corral_config::parse_str(&text, std::path::Path::new("(master)"), &load)
        .map_err(|e| SetupError::ParseConfig(e.to_string()))?;
    let at = config
        .pools
        .iter()
        .position(|p| p.name == name)
        .ok_or_else(|| SetupError::NoPool(name.to_string()))?;
    let pool = config.pools.swap_remove(at);
    Ok((config, pool))
}

/// Whom to become: as root the pool's user and group (the master checked
/// them too); otherwise we stay who we are.
fn identity(pool: &Pool, root: bool) -> Result<(Account, u32), SetupError> {
    let account = match (&pool.user, root) {
        (Some(u), true) => {
            corral_sys::cred::pool_user(u).ok_or_else(|| SetupError::NoUser(u.clone()))?
        }
        _ => corral_sys::cred::current_account(),
    };
    let gid = match (&pool.group, root) {
        (Some(g), true) => {
            corral_sys::cred::lookup_group(g).ok_or_else(|| SetupError::NoGroup(g.clone()))?
        }
        _ => account.gid,
    };
    Ok((account, gid))
}

/// rlimit_files, rlimit_core, process.priority. php-fpm logs a failed
/// rlimit and goes on; a failed priority is fatal there too.
fn limits(pool: &Pool, root: bool, report: Report<'_>) -> Result<(), SetupError> {
    use corral_sys::nix::sys::resource::Resource;
    if let Some(prio) = pool.process_priority.filter(|_| root) {
        corral_sys::process::set_priority(prio).map_err(SetupError::Priority)?;
    }
    if let Some(n) = pool.rlimit_files {
        if let Err(e) = corral_sys::process::set_rlimit(Resource::RLIMIT_NOFILE, n) {
            report_error(report, format!("failed to set rlimit_files for this pool. Please check your system limits or decrease rlimit_files. {e}"));
        }
    }
    if let Some(r) = pool.rlimit_core {
        let v = match r {
            corral_config::Rlimit::Value(v) => v,
            corral_config::Rlimit::Unlimited => libc::RLIM_INFINITY,
        };
        if let Err(e) = corral_sys::process::set_rlimit(Resource::RLIMIT_CORE, v) {
            report_error(
                report,
                format!("failed to set rlimit_core for this pool. {e}"),
            );
        }
    }
    Ok(())
}

/// PHP starts before the chroot (its extensions live outside it) and
/// before the privilege drop, as in php-fpm's master. Its own start-up
/// messages reach the master through our stderr.
fn start_php(php: StartOptions, pool: &Pool, report: Report<'_>) -> Result<Engine, SetupError> {
    let php = php.with_ini_defaults(corral_config::paths::FPM_PHP_INI_DIR);
    let startup_log = WorkerLog {
        min_level: LogLevel::Notice,
    };
    let engine = Engine::start(
        &php,
        &mut LogOnly(|level, msg: &[u8]| startup_log.line(level, msg)),
    )
    .map_err(|_| SetupError::Php)?;
    for v in &pool.php_values {
        if engine.apply_pool_ini(&v.name, &v.value, v.admin).is_err() {
            let kind = if v.admin {
                "php_admin_value"
            } else {
                "php_value"
            };
            report_error(report, format!("Unable to set {kind} '{}'", v.name));
        }
    }
    Ok(engine)
}

/// chroot, chdir, then the pool's user: after this we are the tenant.
fn become_tenant(pool: &Pool, account: &Account, gid: u32, root: bool) -> Result<(), SetupError> {
    if let Some(dir) = pool.chroot.as_ref().filter(|_| root) {
        corral_sys::cred::chroot(dir).map_err(SetupError::Chroot)?;
    }
    if let Some(dir) = &pool.chdir {
        std::env::set_current_dir(dir).map_err(|source| SetupError::Chdir {
            path: dir.display().to_string(),
            source,
        })?;
    }
    if root {
        corral_sys::cred::drop_to(&account.name, account.uid, gid)
            .map_err(SetupError::DropPrivileges)?;
    }
    if pool.process_dumpable {
        corral_sys::process::set_dumpable(true).map_err(SetupError::Dumpable)?;
    }
    Ok(())
}

/// The pool's environment: php-fpm sets USER and HOME from the pool user,
/// clears the rest when clear_env = yes, then applies env[].
fn apply_env(pool: &Pool, account: &Account) {
    if pool.clear_env {
        corral_sys::process::clear_env();
    }
    let has = |k: &str| pool.env.iter().any(|(n, _)| n == k);
    if !has("USER") {
        corral_sys::process::set_env("USER", &account.name);
    }
    // A numeric user without a passwd entry has no home (php-fpm sets
    // none either).
    if !has("HOME") && !account.home.is_empty() {
        corral_sys::process::set_env("HOME", &account.home);
    }
    for (k, v) in &pool.env {
        corral_sys::process::set_env(k, v);
    }
}

/// The whole start-up, in order.
pub fn set_up(
    config_fd: OwnedFd,
    args: &corral_ipc::PrototypeArgs,
    report: Report<'_>,
) -> Result<Ready, SetupError> {
    let (config, pool) = read_pool(config_fd, &args.pool)?;
    let root = corral_sys::cred::is_root();
    let (account, gid) = identity(&pool, root)?;
    limits(&pool, root, report)?;
    let pens = confine::confinement(&pool, &args.deny_connect);
    confine::enter_namespaces(&pens, &pool, root, report);
    let php = StartOptions {
        executable: std::env::args().next().unwrap_or_default(),
        ini_path: args.php.ini_path.clone(),
        no_ini: args.php.no_ini,
        defines: args.php.defines.clone(),
    };
    let engine = start_php(php, &pool, report)?;
    if args.php.extended_info {
        engine.enable_extended_info();
    }
    become_tenant(&pool, &account, gid, root)?;
    // php-fpm changes hat last in its child's set-up, after setuid.
    if let Some(hat) = pool.apparmor_hat.as_deref().filter(|h| !h.is_empty()) {
        corral_isolation::apparmor::change_hat(hat)?;
    }
    apply_env(&pool, &account);
    confine::lock_down(&pens, &engine, &pool, report);
    let mut runtime = PoolRuntime::from_pool(&pool, config.global.log_level);
    runtime.master_pid = corral_sys::nix::unistd::getppid().as_raw() as u32;
    runtime.status_only = args.status_of.is_some();
    runtime.powered_by = engine.powered_by();
    Ok(Ready {
        engine,
        runtime,
        pool,
    })
}
