//! corral: php-fpm's command line and corral's own subcommands.

mod cli;

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use corral_config::{Config, ConfigErrors, Level, LoadOptions, LogLevel};
use corral_master::{Logger, MasterOptions, EXIT_CONFIG, EXIT_OK, EXIT_SOFTWARE};

const EXIT_USAGE: i32 = 64;
const DEBIAN_FPM_CONFIG: &str = "/etc/php/8.2/fpm/php-fpm.conf";

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let code = match std::env::var(corral_master::PROTOTYPE_ENV) {
        Ok(proto_args) => {
            std::env::remove_var(corral_master::PROTOTYPE_ENV);
            let list: Vec<String> = proto_args.split('\u{1f}').map(str::to_string).collect();
            prototype(&list)
        }
        Err(_) => fpm(&args),
    };
    std::process::exit(code);
}

fn log_level(l: Level) -> LogLevel {
    match l {
        Level::Notice => LogLevel::Notice,
        Level::Warning => LogLevel::Warning,
        Level::Error => LogLevel::Error,
        Level::Alert => LogLevel::Alert,
    }
}

fn report(log: &mut Logger, errors: &ConfigErrors) {
    for d in &errors.0 {
        log.log(log_level(d.level), &d.message);
    }
    log.error("FPM initialization failed");
}

/// `-y` > `<prefix>/etc/php-fpm.conf` > Debian's php-fpm.conf.
fn config_path(flags: &cli::Flags) -> PathBuf {
    if let Some(p) = &flags.fpm_config {
        return p.clone();
    }
    if let Some(prefix) = &flags.prefix {
        return prefix.join("etc/php-fpm.conf");
    }
    PathBuf::from(DEBIAN_FPM_CONFIG)
}

fn php_engine(flags: &cli::Flags, prog: &str) -> Option<corral_php::Engine> {
    struct Quiet;
    impl corral_php::RequestIo for Quiet {
        fn read_body(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
            Ok(0)
        }
        fn write_out(&mut self, _: &[u8]) -> std::io::Result<()> {
            Ok(())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
        fn finish(&mut self) -> std::io::Result<()> {
            Ok(())
        }
        fn log(&mut self, _: corral_php::LogLevel, msg: &[u8], _: bool) {
            let _ = std::io::stderr().write_all(msg);
        }
    }
    let mut opts = corral_php::StartOptions {
        ini_path: flags.php_ini.clone(),
        no_ini: flags.no_ini,
        defines: flags.defines.clone(),
        executable: prog.to_string(),
    };
    if opts.ini_path.is_none() && Path::new("/etc/php/8.2/fpm").is_dir() {
        opts.ini_path = Some("/etc/php/8.2/fpm".into());
        if std::env::var_os("PHP_INI_SCAN_DIR").is_none() {
            std::env::set_var("PHP_INI_SCAN_DIR", "/etc/php/8.2/fpm/conf.d");
        }
    }
    corral_php::Engine::start(&opts, &mut Quiet).ok()
}

fn fpm(args: &[String]) -> i32 {
    let prog = args.first().map(String::as_str).unwrap_or("corral");
    let prog_name = Path::new(prog)
        .file_name()
        .and_then(|s| s.to_str())
        .unwrap_or("corral")
        .to_string();
    let flags = match cli::parse(&args[1..]) {
        Ok(f) => f,
        Err(_) => {
            print!("{}", cli::usage(&prog_name));
            return EXIT_USAGE;
        }
    };
    if flags.help {
        print!("{}", cli::usage(&prog_name));
        return EXIT_OK;
    }
    if flags.version || flags.modules || flags.info {
        let Some(engine) = php_engine(&flags, prog) else {
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
        return if ok { EXIT_OK } else { EXIT_SOFTWARE };
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
    for w in &config.warnings {
        log.log(log_level(w.level), &w.message);
    }
    log.level = config.global.log_level;
    log.limit = config.global.log_limit;

    if flags.test > 0 {
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

    if let Err(msg) = check_users(&config, flags.allow_root) {
        log.log(LogLevel::Alert, &msg);
        log.error("FPM initialization failed");
        return EXIT_CONFIG;
    }

    let daemonize = flags.daemonize.unwrap_or(config.global.daemonize);
    let to_stderr = !daemonize && (std::io::stderr().is_terminal() || flags.force_stderr);
    if !to_stderr {
        if let corral_config::ErrorLog::File(p) = &config.global.error_log {
            if let Err(e) = log.open(p.clone()) {
                log.error(&format!("failed to open error_log ({}): {e}", p.display()));
                return EXIT_CONFIG;
            }
            log.echo_stderr = true;
        }
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

    let opts = MasterOptions {
        config_path: std::fs::canonicalize(&path).unwrap_or(path),
        prefix: flags.prefix.clone(),
        pid_file: flags.pid.clone(),
        force_daemon: flags.daemonize,
        force_stderr: flags.force_stderr,
        php_args: flags.php_args(),
        ready_pipe,
    };
    corral_master::run(opts, config, log)
}

/// As root, every pool must run as a real, non-root user (unless -R).
fn check_users(config: &Config, allow_root: bool) -> Result<(), String> {
    if !corral_sys::cred::is_root() {
        return Ok(());
    }
    for p in &config.pools {
        let Some(user) = &p.user else {
            if allow_root {
                continue;
            }
            return Err(format!("[pool {}] user has not been defined", p.name));
        };
        let account = corral_sys::cred::lookup_user(user)
            .ok_or_else(|| format!("[pool {}] cannot get uid for user '{}'", p.name, user))?;
        let gid = match &p.group {
            Some(g) => corral_sys::cred::lookup_group(g)
                .ok_or_else(|| format!("[pool {}] cannot get gid for group '{}'", p.name, g))?,
            None => account.gid,
        };
        if (account.uid == 0 || gid == 0) && !allow_root {
            return Err(format!(
                "[pool {}] please specify user and group other than root",
                p.name
            ));
        }
    }
    Ok(())
}

/// A prototype (see `corral_master::PROTOTYPE_ENV`): `--config C --pool P --board-words N [--prefix X] [-c ..] [-n] [-d ..]`
fn prototype(args: &[String]) -> i32 {
    let mut config = None;
    let mut pool = None;
    let mut prefix = None;
    let mut words = 0usize;
    let mut php = corral_php::StartOptions {
        executable: std::env::args().next().unwrap_or_default(),
        ..Default::default()
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--config" => config = it.next().map(PathBuf::from),
            "--pool" => pool = it.next().cloned(),
            "--prefix" => prefix = it.next().map(PathBuf::from),
            "--board-words" => words = it.next().and_then(|s| s.parse().ok()).unwrap_or(0),
            "-c" => php.ini_path = it.next().cloned(),
            "-n" => php.no_ini = true,
            "-d" => php.defines.extend(it.next().cloned()),
            _ => return EXIT_USAGE,
        }
    }
    let (Some(config), Some(pool)) = (config, pool) else {
        return EXIT_USAGE;
    };
    corral_worker::prototype::run(corral_worker::prototype::PrototypeArgs {
        config,
        prefix,
        pool,
        php,
        board_words: words,
    })
}
