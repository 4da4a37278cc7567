//! The php-fpm mode: no command, php-fpm's flags. `-t`, `-v`, `-m`, `-i`
//! answer and exit; otherwise the master starts, in the foreground or
//! (`-D`) behind a launcher that waits until it is up. The exit codes are
//! php-fpm's (0, 70, 78), from corral's one table.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use corral_config::{ConfigErrors, LoadOptions, LogLevel};
use corral_master::{Logger, MasterOptions, EXIT_CONFIG, EXIT_OK, EXIT_SOFTWARE};

use crate::cli::FpmArgs;

/// corral's own line, after php-fpm's in `-v` and before them in `--version`.
fn corral_line() -> String {
    format!(
        "corral {} (php-fpm 8.2 drop-in), embedding libphp:",
        env!("CARGO_PKG_VERSION")
    )
}

fn report(log: &mut Logger, errors: &ConfigErrors) {
    for d in &errors.0 {
        log.log(d.level.into(), &d.message);
    }
    log.error("FPM initialization failed");
}

/// `-y` > `<prefix>/etc/php-fpm.conf` > Debian's php-fpm.conf.
fn config_path(flags: &FpmArgs) -> PathBuf {
    if let Some(p) = &flags.fpm_config {
        return p.clone();
    }
    if let Some(prefix) = &flags.prefix {
        return prefix.join("etc/php-fpm.conf");
    }
    PathBuf::from(corral_config::paths::DEBIAN_FPM_CONFIG)
}

fn php_engine(flags: &FpmArgs, prog: &str) -> Option<corral_php::Engine> {
    let opts = corral_php::StartOptions {
        ini_path: flags.php_ini.clone(),
        no_ini: flags.no_ini,
        defines: flags.defines.clone(),
        executable: prog.to_string(),
    }
    .with_ini_defaults(corral_config::paths::FPM_PHP_INI_DIR);
    let mut to_stderr = corral_php::LogOnly(|_, msg: &[u8]| {
        let _ = std::io::stderr().write_all(msg);
    });
    corral_php::Engine::start(&opts, &mut to_stderr).ok()
}

/// Runs php-fpm's mode with `flags`; `prog` is argv[0] (PHP reports it).
pub fn run(flags: FpmArgs, prog: &str) -> i32 {
    if flags.version || flags.corral_version || flags.modules || flags.info {
        return php_answers(&flags, prog);
    }
    if let Some(prefix) = &flags.prefix {
        if !prefix.is_dir() {
            let mut log = Logger::stderr();
            log.error(&format!(
                "the global prefix '{}' does not exist or is not a directory",
                prefix.display()
            ));
            return EXIT_CONFIG;
        }
    }

    let path = config_path(&flags);
    let load = LoadOptions {
        prefix: flags.prefix.clone(),
        pid_override: flags.pid.clone(),
        allow_run_as_root: flags.allow_root,
        ..Default::default()
    };
    let mut log = Logger::stderr();
    let config = match corral_config::load(&path, &load) {
        Ok(c) => c,
        Err(e) => {
            report(&mut log, &e);
            return EXIT_CONFIG;
        }
    };
    // php-fpm applies log_level before it post-processes the pools, so
    // their notices ("pm.start_servers is not set") obey it.
    log.level = config.global.log_level;
    log.limit = config.global.log_limit;
    for w in &config.warnings {
        log.log(w.level.into(), &w.message);
    }
    // corral's own advice about reachable TCP listeners: a WARNING for
    // `-t`, a NOTICE in a running master's log (see Config::exposures).
    for w in &config.exposures {
        let level = if flags.test > 0 {
            w.level.into()
        } else {
            LogLevel::Notice
        };
        log.log(level, &w.message);
    }

    if flags.test > 0 {
        // Like php-fpm's -t: every account it names must exist, and the
        // log files must be openable too.
        if let Err(e) = corral_master::users::test(&config) {
            log.log(e.level(), &e.to_string());
            log.error("FPM initialization failed");
            return EXIT_CONFIG;
        }
        if let Err(msg) = open_logs(&config) {
            log.error(&msg);
            log.error("FPM initialization failed");
            return EXIT_CONFIG;
        }
        if flags.test > 1 {
            for line in corral_config::dump_lines(&config) {
                log.notice(&line);
            }
        }
        log.notice(&format!(
            "configuration file {} test is successful\n",
            path.display()
        ));
        return EXIT_OK;
    }

    if let Err(e) = corral_master::users::check(&config, flags.allow_root) {
        log.log(e.level(), &e.to_string());
        log.error("FPM initialization failed");
        return EXIT_CONFIG;
    }

    if let Err(msg) = master_limits(&config.global) {
        log.error(&msg);
        log.error("FPM initialization failed");
        return EXIT_CONFIG;
    }
    let daemonize = flags.daemonize().unwrap_or(config.global.daemonize);
    let to_stderr = !daemonize && (std::io::stderr().is_terminal() || flags.force_stderr);
    if let Err(msg) = open_error_log(&mut log, &config.global, to_stderr) {
        log.error(&msg);
        return EXIT_CONFIG;
    }
    let mut ready_pipe = None;
    if daemonize {
        // Like php-fpm, the launcher waits until the master reports that
        // start-up worked, so `corral -D` fails visibly (exit 70).
        let Ok((rd, wr)) = corral_sys::nix::unistd::pipe() else {
            log.error("pipe() failed");
            return EXIT_SOFTWARE;
        };
        match corral_sys::process::fork() {
            Ok(corral_sys::process::Forked::Parent(_)) => {
                drop(wr);
                let mut b = [0u8; 1];
                let ok = matches!(
                    corral_sys::nix::unistd::read(std::os::fd::AsRawFd::as_raw_fd(&rd), &mut b),
                    Ok(1)
                ) && b[0] == b'1';
                return if ok { EXIT_OK } else { EXIT_SOFTWARE };
            }
            Ok(corral_sys::process::Forked::Child) => {
                drop(rd);
                let _ = corral_sys::nix::unistd::setsid();
                corral_sys::process::detach_stdio();
                log.echo_stderr = false;
                ready_pipe = Some(std::sync::Arc::new(wr));
            }
            Err(e) => {
                log.error(&e.to_string());
                return EXIT_SOFTWARE;
            }
        }
    }

    let control_socket = flags
        .control_socket
        .clone()
        .unwrap_or_else(|| corral_cli::target::master_socket(&path, flags.prefix.as_deref()));
    let opts = MasterOptions {
        config_path: std::fs::canonicalize(&path).unwrap_or(path),
        prefix: flags.prefix.clone(),
        pid_file: flags.pid.clone(),
        force_daemon: flags.daemonize(),
        force_stderr: flags.force_stderr,
        php_args: flags.php_args(),
        allow_root: flags.allow_root,
        control_socket: Some(control_socket),
        cgroup_subtree: flags.cgroup_subtree.clone(),
        ready_pipe,
    };
    corral_master::run(opts, config, log)
}

/// `-v`, `--version`, `-m`, `-i`: PHP starts (with -c/-n/-d) and answers.
/// `-v` prints php-fpm's lines first, so what reads its first line reads
/// the same; `--version` leads with corral's.
fn php_answers(flags: &FpmArgs, prog: &str) -> i32 {
    if flags.corral_version {
        println!("{}", corral_line());
    }
    let _ = std::io::stdout().flush();
    let Some(engine) = php_engine(flags, prog) else {
        eprintln!("PHP start-up failed");
        return EXIT_SOFTWARE;
    };
    let ok = if flags.modules {
        engine.print_modules()
    } else if flags.info {
        engine.print_info()
    } else {
        engine.print_version()
    };
    if flags.version && !flags.corral_version {
        println!("corral {}", env!("CARGO_PKG_VERSION"));
    }
    if ok {
        EXIT_OK
    } else {
        EXIT_SOFTWARE
    }
}

/// The master's error_log. php-fpm opens (and so creates) the file even
/// when it logs to stderr (-O, a terminal): the file exists for whatever
/// watches it, and a path that cannot be written fails the start either way.
fn open_error_log(
    log: &mut Logger,
    global: &corral_config::Global,
    to_stderr: bool,
) -> Result<(), String> {
    match &global.error_log {
        corral_config::ErrorLog::Syslog if !to_stderr => {
            log.use_syslog(&global.syslog_ident, global.syslog_facility);
        }
        corral_config::ErrorLog::File(p) => {
            let failed =
                |e: std::io::Error| format!("failed to open error_log ({}): {e}", p.display());
            if to_stderr {
                create_log(p).map_err(failed)?;
            } else {
                log.open(p.clone()).map_err(failed)?;
                log.echo_stderr = true;
            }
        }
        _ => {}
    }
    Ok(())
}

/// Creates (0600) or opens a log file without keeping it open.
fn create_log(p: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(p)
        .map(drop)
}

/// `[global]` rlimit_files, rlimit_core and process.priority apply to the
/// master, as in php-fpm (a failure is fatal there too).
fn master_limits(g: &corral_config::Global) -> Result<(), String> {
    use corral_sys::nix::sys::resource::Resource;
    if let Some(n) = g.rlimit_files {
        corral_sys::process::set_rlimit(Resource::RLIMIT_NOFILE, n)
            .map_err(|e| format!("failed to set rlimit_files for the master: {e}"))?;
    }
    if let Some(r) = g.rlimit_core {
        let v = match r {
            corral_config::Rlimit::Value(v) => v,
            corral_config::Rlimit::Unlimited => u64::MAX,
        };
        corral_sys::process::set_rlimit(Resource::RLIMIT_CORE, v)
            .map_err(|e| format!("failed to set rlimit_core for the master: {e}"))?;
    }
    if let Some(prio) = g.process_priority {
        if corral_sys::cred::is_root() {
            corral_sys::process::set_priority(prio)
                .map_err(|e| format!("unable to set priority for the master process: {e}"))?;
        }
    }
    Ok(())
}

/// Open (creating, 0600) every log the configuration names, as php-fpm's
/// test mode does, so a bad path fails `-t` rather than the start.
fn open_logs(config: &corral_config::Config) -> Result<(), String> {
    let open = create_log;
    if let corral_config::ErrorLog::File(p) = &config.global.error_log {
        open(p).map_err(|e| format!("failed to open error_log ({}): {e}", p.display()))?;
    }
    for pool in &config.pools {
        if let Some(p) = &pool.access_log {
            open(p).map_err(|e| {
                format!(
                    "[pool {}] failed to open access log ({}): {e}",
                    pool.name,
                    p.display()
                )
            })?;
        }
        if let Some(p) = &pool.slowlog {
            open(p)
                .map_err(|e| format!("Unable to create or open slowlog({}): {e}", p.display()))?;
        }
    }
    Ok(())
}
