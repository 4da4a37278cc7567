//! corral: php-fpm's command line and corral's own subcommands.

#![forbid(unsafe_code)]

mod cli;

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use corral_config::{ConfigErrors, LoadOptions, LogLevel};
use corral_ipc::control::{ControlReply, ControlRequest};
use corral_master::{Logger, MasterOptions, EXIT_CONFIG, EXIT_OK, EXIT_SOFTWARE};

const EXIT_USAGE: i32 = 64;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let code = match std::env::var(corral_ipc::PROTOTYPE_ENV) {
        Ok(encoded) => {
            std::env::remove_var(corral_ipc::PROTOTYPE_ENV);
            prototype(&encoded)
        }
        Err(_) => match args.get(1).map(String::as_str) {
            Some("reload") => reload(&args[2..]),
            Some("bench") => corral_bench::main(&args[2..]),
            Some("status") => status(&args[2..]),
            Some("site") => corral_sites::cli::main(&args[2..]),
            Some("tune") => corral_sites::cli::tune(&args[2..]),
            Some("doctor") => corral_sites::doctor::main(&args[2..]),
            _ => fpm(&args),
        },
    };
    std::process::exit(code);
}

fn report(log: &mut Logger, errors: &ConfigErrors) {
    for d in &errors.0 {
        log.log(d.level.into(), &d.message);
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
    PathBuf::from(corral_config::paths::DEBIAN_FPM_CONFIG)
}

fn php_engine(flags: &cli::Flags, prog: &str) -> Option<corral_php::Engine> {
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
    let daemonize = flags.daemonize.unwrap_or(config.global.daemonize);
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
        .unwrap_or_else(|| default_control_socket(&path, flags.prefix.as_deref()));
    let opts = MasterOptions {
        config_path: std::fs::canonicalize(&path).unwrap_or(path),
        prefix: flags.prefix.clone(),
        pid_file: flags.pid.clone(),
        force_daemon: flags.daemonize,
        force_stderr: flags.force_stderr,
        php_args: flags.php_args(),
        allow_root: flags.allow_root,
        control_socket: Some(control_socket),
        cgroup_subtree: flags.cgroup_subtree.clone(),
        ready_pipe,
    };
    corral_master::run(opts, config, log)
}

/// A prototype: the master exec'd us with our arguments in
/// `corral_ipc::PROTOTYPE_ENV`.
fn prototype(encoded: &str) -> i32 {
    match corral_ipc::PrototypeArgs::decode(encoded) {
        Ok(args) => corral_worker::prototype::run(args),
        Err(e) => {
            eprintln!("corral prototype: {e}");
            EXIT_USAGE
        }
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

/// Where a master started on `config` (and `-p prefix`) listens for
/// `corral reload` / `corral status` unless `--control-socket` says
/// otherwise: its own socket, named after its configuration, in
/// /run/corral for root, else in the user's runtime directory.
fn default_control_socket(config: &Path, prefix: Option<&Path>) -> PathBuf {
    if corral_sys::cred::is_root() {
        return corral_ipc::control::root_socket(config, prefix);
    }
    let dir = std::env::var_os("XDG_RUNTIME_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    dir.join(format!(
        "corral-{}-{}",
        corral_sys::cred::current_account().uid,
        corral_ipc::control::socket_name(config, prefix)
    ))
}

/// Which master a subcommand talks to: `--control-socket PATH`, or the
/// one started on `-y/--fpm-config FILE` (default: Debian's
/// php-fpm.conf, as for the master) and `-p/--prefix DIR`.
#[derive(Debug, Default, PartialEq, Eq)]
struct Target {
    socket: Option<PathBuf>,
    config: Option<PathBuf>,
    prefix: Option<PathBuf>,
}

impl Target {
    fn socket(&self) -> PathBuf {
        if let Some(s) = &self.socket {
            return s.clone();
        }
        let config = self
            .config
            .clone()
            .unwrap_or_else(|| PathBuf::from(corral_config::paths::DEBIAN_FPM_CONFIG));
        default_control_socket(&config, self.prefix.as_deref())
    }
}

/// Split the [`Target`] options (`--opt VALUE`, `--opt=VALUE`, `-y VALUE`)
/// out of a subcommand's arguments.
fn control_arg(args: &[String]) -> (Target, Vec<String>) {
    let mut target = Target::default();
    let mut rest = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let (name, inline) = match a.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n, Some(v.to_string())),
            _ => (a.as_str(), None),
        };
        let slot = match name {
            "--control-socket" => &mut target.socket,
            "-y" | "--fpm-config" => &mut target.config,
            "-p" | "--prefix" => &mut target.prefix,
            _ => {
                rest.push(a.clone());
                continue;
            }
        };
        *slot = inline.or_else(|| it.next().cloned()).map(PathBuf::from);
    }
    (target, rest)
}

/// `corral reload [POOL...]`: re-read the configuration; only changed pools
/// restart, and only the named ones when names are given.
fn reload(args: &[String]) -> i32 {
    let (target, pools) = control_arg(args);
    if pools.iter().any(|p| p.starts_with('-')) {
        eprintln!("usage: corral reload [POOL...] [-y CONFIG] [-p PREFIX] [--control-socket PATH]");
        return EXIT_USAGE;
    }
    let sock = target.socket();
    match corral_ipc::control::request(&sock, &ControlRequest::Reload { pools }) {
        Ok(ControlReply { ok: true, text }) => {
            println!("{text}");
            EXIT_OK
        }
        Ok(ControlReply { ok: false, text }) => {
            eprintln!("{text}");
            EXIT_CONFIG
        }
        Err(e) => {
            eprintln!("cannot reach corral at {}: {e}", sock.display());
            EXIT_SOFTWARE
        }
    }
}

/// `corral status [POOL] [--json]`.
fn status(args: &[String]) -> i32 {
    let (target, rest) = control_arg(args);
    let sock = target.socket();
    let json = rest.iter().any(|a| a == "--json");
    let pool = rest.iter().find(|a| !a.starts_with('-')).cloned();
    match corral_ipc::control::request(&sock, &ControlRequest::Status { pool }) {
        Ok(ControlReply { ok: true, text }) if json => {
            println!("{text}");
            EXIT_OK
        }
        Ok(ControlReply { ok: true, text }) => {
            print!("{}", status_text(&text));
            EXIT_OK
        }
        Ok(ControlReply { ok: false, text }) => {
            eprintln!("{text}");
            EXIT_SOFTWARE
        }
        Err(e) => {
            eprintln!("cannot reach corral at {}: {e}", sock.display());
            EXIT_SOFTWARE
        }
    }
}

/// A pool's cgroup counters, in the same layout (nothing for a pool
/// without a cgroup).
fn cgroup_text(cg: &serde_json::Value) -> String {
    let mut out = String::new();
    let Some(cg) = cg.as_object() else {
        return out;
    };
    if let Some(s) = cg.get("cpu seconds").and_then(|v| v.as_f64()) {
        out.push_str(&format!("{:<22}{s:.2}\n", "cpu seconds:"));
    }
    for key in ["memory bytes", "oom kills", "pids current"] {
        if let Some(v) = cg.get(key) {
            out.push_str(&format!("{:<22}{v}\n", format!("{key}:")));
        }
    }
    out
}

/// The JSON status as php-fpm's plain-text layout, one block per pool.
fn status_text(json: &str) -> String {
    let Ok(serde_json::Value::Array(pools)) = serde_json::from_str::<serde_json::Value>(json)
    else {
        return format!("{json}\n");
    };
    let mut out = String::new();
    for p in pools {
        for key in [
            "pool",
            "process manager",
            "accepted conn",
            "idle processes",
            "active processes",
            "total processes",
            "max children reached",
        ] {
            let v = &p[key];
            let v = v
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| v.to_string());
            out.push_str(&format!("{:<22}{}\n", format!("{key}:"), v));
        }
        out.push_str(&cgroup_text(&p["cgroup"]));
        for proc_ in p["processes"].as_array().into_iter().flatten() {
            out.push_str(&format!(
                "  pid {:<8} {:<28} requests {:<6} {} {}\n",
                proc_["pid"],
                proc_["state"].as_str().unwrap_or(""),
                proc_["requests"],
                proc_["request method"].as_str().unwrap_or(""),
                proc_["request uri"].as_str().unwrap_or("")
            ));
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn subcommands_name_their_master_like_the_master_was_started() {
        let (t, rest) = control_arg(&args(&["www", "-y", "/etc/a.conf", "--prefix=/srv", "x"]));
        assert_eq!(rest, args(&["www", "x"]));
        assert_eq!(t.config, Some(PathBuf::from("/etc/a.conf")));
        assert_eq!(t.prefix, Some(PathBuf::from("/srv")));
        assert_eq!(
            t.socket(),
            default_control_socket(Path::new("/etc/a.conf"), Some(Path::new("/srv")))
        );
        let (t, _) = control_arg(&args(&[
            "--fpm-config=/etc/b.conf",
            "--control-socket",
            "/c.sock",
        ]));
        assert_eq!(
            t.socket(),
            PathBuf::from("/c.sock"),
            "an explicit socket wins"
        );
        let (t, _) = control_arg(&args(&[]));
        assert_eq!(
            t.socket(),
            default_control_socket(Path::new(corral_config::paths::DEBIAN_FPM_CONFIG), None),
            "the master's own default"
        );
    }

    #[test]
    fn status_text_shows_a_pool_cgroup() {
        let json = r#"[{"pool":"www","process manager":"static","accepted conn":3,
            "idle processes":2,"active processes":0,"total processes":2,
            "max children reached":0,"processes":[],
            "cgroup":{"cpu seconds":1.234,"memory bytes":1048576,"oom kills":1,"pids current":3}},
            {"pool":"b","process manager":"static","accepted conn":0,"idle processes":0,
            "active processes":0,"total processes":0,"max children reached":0,"processes":[]}]"#;
        let text = super::status_text(json);
        assert!(
            text.contains(
                "max children reached: 0\ncpu seconds:          1.23\nmemory bytes:         1048576\noom kills:            1\npids current:         3\n"
            ),
            "{text}"
        );
        let b = text.split("pool:                 b").nth(1).unwrap();
        assert!(!b.contains("cpu seconds"), "{text}");
    }
}
