//! Behaviour tests of the whole load path, with php-fpm's exact messages.

use super::*;

const HEAD: &str = "[www]\nuser = nobody\nlisten = /tmp/corral-test.sock\n";

fn opts() -> LoadOptions {
    LoadOptions::default()
}

fn parse(text: &str) -> Result<Config, ConfigErrors> {
    parse_str(text, Path::new("t.conf"), &opts())
}

fn ok(text: &str) -> Config {
    parse(text).unwrap_or_else(|e| panic!("{e}"))
}

/// The first ERROR/ALERT line's message.
fn err(text: &str) -> String {
    let e = parse(text).expect_err("should fail");
    e.first_error().unwrap().message.clone()
}

fn pool(extra: &str) -> String {
    format!("{HEAD}{extra}\n")
}

#[test]
fn minimal_pool_and_defaults() {
    let c = ok(&pool("pm = static\npm.max_children = 5"));
    let g = &c.global;
    assert_eq!(g.error_log, ErrorLog::File("/var/log/php-fpm.log".into()));
    assert_eq!(g.syslog_ident, "php-fpm");
    assert_eq!(g.syslog_facility, libc::LOG_DAEMON);
    assert!(g.log_buffering && g.daemonize);
    assert_eq!(g.log_limit, 1024);
    assert_eq!(g.systemd_interval.as_secs(), 10);
    assert_eq!(g.process_priority, None);
    let p = &c.pools[0];
    assert_eq!(p.name, "www");
    assert_eq!(p.listen_backlog, -1);
    assert_eq!(p.listen_mode, 0o660);
    assert_eq!(p.pm_max_spawn_rate, 32);
    assert_eq!(p.pm_process_idle_timeout.as_secs(), 10);
    assert_eq!(p.request_slowlog_trace_depth, 20);
    assert_eq!(p.access_format, "%R - %u %t \"%m %r\" %s");
    assert_eq!(p.security_limit_extensions, vec![".php", ".phar"]);
    assert_eq!(p.ping_response, "pong");
    assert!(p.clear_env && p.decorate_workers_output && !p.catch_workers_output);
    assert_eq!(p.source.line, 1);
    assert_eq!(p.source.to_string(), "t.conf:1");
}

#[test]
fn entry_errors() {
    let base = pool("pm = static");
    let cases = [
        ("pm.max_children = 5k", "[t.conf:5] unable to parse value for entry 'pm.max_children': is not a valid number (greater or equal than zero)"),
        ("foo = 1", "[t.conf:5] unknown entry 'foo'"),
        ("foo", "[t.conf:5] value is NULL for a ZEND_INI_PARSER_ENTRY"),
        ("foo[x] = 1", "[t.conf:5] unknown directive 'foo'"),
        ("request_terminate_timeout = 5M", "[t.conf:5] unable to parse value for entry 'request_terminate_timeout': unknown suffix used in time value"),
        ("request_terminate_timeout =", "[t.conf:5] unable to parse value for entry 'request_terminate_timeout': invalid time value"),
        ("catch_workers_output = maybe", "[t.conf:5] unable to parse value for entry 'catch_workers_output': invalid boolean value"),
        ("php_flag[x] = maybe", "[t.conf:5] error while parsing 'php_flag[x]' : invalid boolean value"),
        ("php_value[] = 1", "[t.conf:5] You must provide a key for field 'php_value'"),
        ("env[x] =", "[t.conf:5] empty value"),
        ("access.suppress_path[x] = /a", "[t.conf:5] Keys provided to field 'access.suppress_path' are ignored"),
        ("access.suppress_path[] = a", "[t.conf:5] Values provided to field 'access.suppress_path' must begin with '/'"),
        ("pm = x", "[t.conf:5] unable to parse value for entry 'pm': invalid process manager (static, dynamic or ondemand)"),
        ("rlimit_core = -1", "[t.conf:5] unable to parse value for entry 'rlimit_core': must be greater than zero or 'unlimited'"),
    ];
    for (line, msg) in cases {
        assert_eq!(err(&format!("{base}{line}\n")), msg, "{line}");
    }
    let e = parse(&format!("{base}pm.max_children = x\n")).unwrap_err();
    assert_eq!(
        e.0.last().unwrap().message,
        "failed to load configuration file 't.conf'"
    );
    // Both suppress_path problems are reported.
    let e = parse(&format!("{base}access.suppress_path[x] = a\n")).unwrap_err();
    assert_eq!(e.0.len(), 3);
}

#[test]
fn global_errors() {
    let cases = [
        ("error_log = $pool.log", "[t.conf:2] unable to parse value for entry 'error_log': Can't use '$pool' when the pool is not defined"),
        ("env[x] = 1", "[t.conf:2] Array are not allowed in the global section"),
        ("syslog.facility = foo", "[t.conf:2] unable to parse value for entry 'syslog.facility': invalid value"),
        ("log_level = foo", "[t.conf:2] unable to parse value for entry 'log_level': invalid value for 'log_level'"),
        ("log_limit = 100", "log_limit must be greater than 512"),
        ("process.max = -1", "process_max can't be negative"),
        ("process.priority = 30", "process.priority must be included into [-19,20]"),
        ("events.mechanism = kqueue", "event mechanism 'kqueue' is not available on this system"),
        ("pm.max_children = 1", "[t.conf:2] unknown entry 'pm.max_children'"),
    ];
    for (line, msg) in cases {
        let text = format!(
            "[global]\n{line}\n{}pm = static\npm.max_children = 1\n",
            HEAD
        );
        assert_eq!(err(&text), msg, "{line}");
    }
    assert_eq!(
        err("[global]\n"),
        "No pool defined. at least one pool section must be specified in config file"
    );
    let e = parse("[global]\n").unwrap_err();
    assert_eq!(
        e.0.last().unwrap().message,
        "failed to post process the configuration"
    );
}

#[test]
fn pool_checks_in_order_with_levels() {
    let cases: &[(&str, &str, Level)] = &[
        ("pm.max_children = 5", "[pool www] the process manager is missing (static, dynamic or ondemand)", Level::Alert),
        ("pm = static", "[pool www] pm.max_children must be a positive value", Level::Alert),
        ("pm = static\npm.max_children = 1\nprocess.priority = 30", "[pool www] process.priority must be included into [-19,20]", Level::Error),
        ("pm = dynamic\npm.max_children = 5", "[pool www] pm.min_spare_servers(0) must be a positive value", Level::Alert),
        ("pm = dynamic\npm.max_children = 5\npm.min_spare_servers = 1", "[pool www] pm.max_spare_servers(0) must be a positive value", Level::Alert),
        ("pm = dynamic\npm.max_children = 2\npm.min_spare_servers = 1\npm.max_spare_servers = 3", "[pool www] pm.min_spare_servers(1) and pm.max_spare_servers(3) cannot be greater than pm.max_children(2)", Level::Alert),
        ("pm = dynamic\npm.max_children = 5\npm.min_spare_servers = 3\npm.max_spare_servers = 2", "[pool www] pm.max_spare_servers(2) must not be less than pm.min_spare_servers(3)", Level::Alert),
        ("pm = dynamic\npm.max_children = 5\npm.min_spare_servers = 1\npm.max_spare_servers = 3\npm.start_servers = 4", "[pool www] pm.start_servers(4) must not be less than pm.min_spare_servers(1) and not greater than pm.max_spare_servers(3)", Level::Alert),
        ("pm = dynamic\npm.max_children = 5\npm.min_spare_servers = 1\npm.max_spare_servers = 3\npm.max_spawn_rate = 0", "[pool www] pm.max_spawn_rate must be a positive value", Level::Alert),
        ("pm = ondemand\npm.max_children = 5\npm.process_idle_timeout = 0", "[pool www] pm.process_idle_timeout(0s) must be greater than 0s", Level::Alert),
        ("pm = static\npm.max_children = 1\npm.status_path = status", "[pool www] the status path 'status' must start with a '/'", Level::Error),
        ("pm = static\npm.max_children = 1\npm.status_path = /", "[pool www] the status path '/' is not long enough", Level::Error),
        ("pm = static\npm.max_children = 1\npm.status_path = /st@", "[pool www] the status path '/st@' must contain only the following characters '[alphanum]/_-.~'", Level::Error),
        ("pm = static\npm.max_children = 1\nping.path = p", "[pool www] the ping path 'p' must start with a '/'", Level::Error),
        ("pm = static\npm.max_children = 1\nping.path = /", "[pool www] the ping path '/' is not long enough", Level::Error),
        ("pm = static\npm.max_children = 1\nping.path = /p\nping.response = \"\"", "[pool www] the ping response page '' is not long enough", Level::Error),
        ("pm = static\npm.max_children = 1\nrequest_slowlog_timeout = 5", "[pool www] 'slowlog' must be specified for use with 'request_slowlog_timeout'", Level::Error),
        ("pm = static\npm.max_children = 1\nrequest_slowlog_trace_depth = -1", "[pool www] 'slowlog' must be specified for use with 'request_slowlog_trace_depth'", Level::Error),
        ("pm = static\npm.max_children = 1\nslowlog = /tmp/s.log\nrequest_slowlog_trace_depth = -1", "[pool www] 'request_slowlog_trace_depth' (-1) must be a positive value", Level::Error),
        ("pm = static\npm.max_children = 1\nslowlog = /tmp/s.log\nrequest_slowlog_timeout = 10\nrequest_terminate_timeout = 5", "[pool www] 'request_slowlog_timeout' (10) can't be greater than 'request_terminate_timeout' (5)", Level::Error),
        ("pm = static\npm.max_children = 1\nchroot = $prefix/nope", "[pool www] the chroot path '/usr//nope' does not exist or is not a directory", Level::Error),
        ("pm = static\npm.max_children = 1\nchroot = /tmp/$prefix", "[pool www] the chroot path '/tmp/$prefix' does not exist or is not a directory", Level::Error),
        ("pm = static\npm.max_children = 1\nchdir = nope", "[pool www] the chdir path '/usr/nope' does not exist or is not a directory", Level::Error),
        ("pm = static\npm.max_children = 1\nchroot = /tmp\nchdir = /nope", "[pool www] the chdir path '/nope' within the chroot path '/tmp' ('/tmp//nope') does not exist or is not a directory", Level::Error),
        ("pm = static\npm.max_children = 1\nprefix = /nope", "[pool www] the prefix '/nope' does not exist or is not a directory", Level::Error),
        ("pm = static\npm.max_children = 1\naccess.log = /tmp/a.log\naccess.format = %Z", "[pool www] wrong format for access.format '%Z'", Level::Error),
    ];
    for (extra, msg, level) in cases {
        let e = parse(&pool(extra)).expect_err(extra);
        let d = e.first_error().unwrap();
        assert_eq!((d.message.as_str(), d.level), (*msg, *level), "{extra}");
    }
    // access.format: the WARNING detail comes first.
    let e = parse(&pool(
        "pm = static\npm.max_children = 1\naccess.log = /tmp/a.log\naccess.format = %Z",
    ))
    .unwrap_err();
    assert_eq!(
        e.0[0],
        Diagnostic::new(Level::Warning, "Invalid token in the access.format (%Z)")
    );
    // '$prefix' in the middle logs its own error before the chroot one.
    let e = parse(&pool("pm = static\npm.max_children = 1\nchroot = x$prefix")).unwrap_err();
    assert_eq!(
        e.0[0].message,
        "'$prefix' must be use at the beginning of the value"
    );
    assert_eq!(
        e.0[1].message,
        "[pool www] the chroot path 'x$prefix' must start with a '/'"
    );
}

/// php-fpm checks access.format only for pools that have an access.log,
/// and the worker renders what was parsed here.
#[test]
fn access_format_is_parsed_for_logging_pools_only() {
    use crate::access_format::Token;
    let c = ok(&pool(
        "pm = static\npm.max_children = 1\naccess.log = /tmp/a.log\naccess.format = \"abc %\"",
    ));
    let p = &c.pools[0];
    assert_eq!(p.access_format, "abc %");
    assert_eq!(p.access_tokens, Some(vec![Token::Literal("abc ".into())]));

    let c = ok(&pool(
        "pm = static\npm.max_children = 1\naccess.format = %Z",
    ));
    assert_eq!(c.pools[0].access_format, "%Z");
    assert_eq!(c.pools[0].access_tokens, None);

    let c = ok(&pool(
        "pm = static\npm.max_children = 1\naccess.log = /tmp/a.log",
    ));
    assert_eq!(
        c.pools[0].access_tokens,
        Some(crate::access_format::parse(crate::access_format::DEFAULT).unwrap())
    );
}

#[test]
fn missing_listen_and_user() {
    let e = err("[www]\nuser = x\npm = static\npm.max_children = 1\n");
    assert_eq!(e, "[pool www] no listen address have been defined!");
    if running_as_root() {
        let e = err("[www]\nlisten = /tmp/x.sock\npm = static\n");
        assert_eq!(e, "[pool www] user has not been defined");
    }
    let o = LoadOptions {
        allow_run_as_root: true,
        ..Default::default()
    };
    assert!(parse_str(
        "[www]\nlisten = /tmp/x\npm = static\npm.max_children = 1\n",
        Path::new("t"),
        &o
    )
    .is_ok());
}

#[test]
fn start_servers_notice_and_ondemand() {
    let c = ok(&pool(
        "pm = dynamic\npm.max_children = 5\npm.min_spare_servers = 1\npm.max_spare_servers = 3",
    ));
    assert_eq!(c.pools[0].pm_start_servers, 2);
    assert_eq!(
        c.warnings,
        vec![Diagnostic::new(
            Level::Notice,
            "[pool www] pm.start_servers is not set. It's been set to 2."
        )]
    );
    let c = ok(&pool(
        "pm = ondemand\npm.max_children = 5\npm.min_spare_servers = 4",
    ));
    assert_eq!(c.pools[0].pm, PmKind::Ondemand);
    assert_eq!(c.pools[0].pm_min_spare_servers, 0);
    let e = err(&format!(
        "[global]\nevents.mechanism = poll\n{}",
        pool("pm = ondemand\npm.max_children = 5")
    ));
    assert_eq!(e, "[pool www] ondemand process manager can ONLY be used when events.mechanism is either epoll (Linux) or kqueue (*BSD).");
}

#[test]
fn sections_reopen_and_scalars_last_win() {
    let c = ok(&format!(
        "{}pm = static\npm.max_children = 1\nPM.MAX_CHILDREN = 7\n[global]\nlog_limit = 2048\n[WWW]\npm.max_requests = 3\n[Global]\ndaemonize = no\n",
        HEAD
    ));
    assert_eq!(c.pools.len(), 1);
    let p = &c.pools[0];
    assert_eq!((p.pm_max_children, p.pm_max_requests), (7, 3));
    assert_eq!(c.global.log_limit, 2048);
    assert!(!c.global.daemonize);
}

#[test]
fn duplicate_listen() {
    let text = format!("{}pm = static\npm.max_children = 1\n[b]\nuser = x\nlisten = /tmp/corral-test.sock\npm = static\npm.max_children = 1\n", HEAD);
    assert_eq!(
        err(&text),
        "[pool b] unable to set listen address as it's already used in another pool 'www'"
    );
    let text = format!(
        "{}pm = static\npm.max_children = 1\npm.status_listen = /tmp/corral-test.sock\n",
        HEAD
    );
    assert_eq!(
        err(&text),
        "[pool www_status] unable to set listen address as it's already used in another pool 'www'"
    );
}

#[test]
fn status_listen_keeps_one_pool() {
    let c = ok(&pool(
        "pm = static\npm.max_children = 1\npm.status_listen = 127.0.0.1:9001",
    ));
    assert_eq!(c.pools.len(), 1);
    let p = &c.pools[0];
    assert_eq!(p.pm_status_path.as_deref(), Some("/"));
    assert_eq!(
        p.pm_status_listen,
        Some(Listen::Tcp {
            host: Some("127.0.0.1".into()),
            port: 9001
        })
    );
}

#[test]
fn arrays_first_wins_and_order() {
    let c = ok(&pool(
        "pm = static\npm.max_children = 1\nphp_value[precision] = 10\nphp_admin_value[memory_limit] = 1G\nphp_value[precision] = 12\nphp_flag[display_errors] = on\nphp_admin_flag[log_errors] = off\nphp_value[error_reporting] = E_ALL & ~E_NOTICE\nenv[HOMEX] = $HOME\nenv[A] = $pool-x\nenv[NOPE] = $CORRAL_SURELY_UNSET\nphp_value[session.save_path] = /tmp/$pool",
    ));
    let p = &c.pools[0];
    let vals: Vec<(&str, &str, bool)> = p
        .php_values
        .iter()
        .map(|v| (v.name.as_str(), v.value.as_str(), v.admin))
        .collect();
    assert_eq!(
        vals,
        vec![
            ("session.save_path", "/tmp/www", false),
            ("error_reporting", "32759", false),
            ("display_errors", "1", false),
            ("precision", "10", false),
            ("log_errors", "0", true),
            ("memory_limit", "1G", true),
        ]
    );
    let home = std::env::var("HOME").unwrap_or_default();
    assert_eq!(
        p.env,
        vec![
            ("NOPE".to_string(), String::new()),
            ("A".to_string(), "www-x".to_string()),
            ("HOMEX".to_string(), home),
        ]
    );
    assert_eq!(p.raw_env[2], ("HOMEX".to_string(), "$HOME".to_string()));
    assert_eq!(p.raw_php_values.len(), 5);
}

#[test]
fn pool_name_and_path_expansion() {
    let c = ok(
        "[site]\nuser = x\nlisten = run/$pool.sock\npm = static\npm.max_children = 1\naccess.log = log/$pool.access\nslowlog = /var/log/$pool.slow\nphp_admin_value[error_log] = log/e.log\nphp_value[error_log] = syslog\nphp_admin_value[ERROR_LOG] = syslog\nphp_value[sendmail_path] = sbin/sendmail\nphp_value[include_path] = rel\n",
    );
    let p = &c.pools[0];
    assert_eq!(p.listen, Listen::Unix("/usr/run/site.sock".into()));
    assert_eq!(p.listen_address, "/usr/run/site.sock");
    assert_eq!(
        p.access_log.as_deref(),
        Some(Path::new("/usr/log/site.access"))
    );
    assert_eq!(p.slowlog.as_deref(), Some(Path::new("/var/log/site.slow")));
    let get = |n: &str, admin: bool| {
        p.php_values
            .iter()
            .find(|v| v.name == n && v.admin == admin)
            .map(|v| v.value.clone())
    };
    assert_eq!(get("error_log", true).as_deref(), Some("/usr/log/e.log"));
    assert_eq!(get("ERROR_LOG", true).as_deref(), Some("syslog"));
    assert_eq!(get("error_log", false).as_deref(), Some("/usr/syslog"));
    assert_eq!(
        get("sendmail_path", false).as_deref(),
        Some("/usr/sbin/sendmail")
    );
    assert_eq!(get("include_path", false).as_deref(), Some("rel"));
}

#[test]
fn prefixes_pid_and_error_log() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("pp")).unwrap();
    let o = LoadOptions {
        prefix: Some(dir.path().to_path_buf()),
        pid_override: Some("/run/g.pid".into()),
        ..Default::default()
    };
    let text = "[global]\nerror_log = log/x.log\n[a]\nuser = x\nprefix = pp\nlisten = a.sock\npm = static\npm.max_children = 1\nchdir = .\n";
    let c = parse_str(text, Path::new("t"), &o).unwrap();
    let d = dir.path().display();
    assert_eq!(c.global.pid.as_deref(), Some(Path::new("/run/g.pid")));
    assert_eq!(
        c.global.error_log,
        ErrorLog::File(format!("{d}/log/x.log").into())
    );
    let p = &c.pools[0];
    assert_eq!(p.listen, Listen::Unix(format!("{d}/pp/a.sock").into()));
    assert_eq!(p.chdir.as_deref(), Some(Path::new(&format!("{d}/pp/."))));
    // config pid wins over -g; relative pid goes under the prefix.
    let c = parse_str(
        &format!("[global]\npid = p.pid\n{}", &text[9..]),
        Path::new("t"),
        &o,
    )
    .unwrap();
    assert_eq!(c.global.pid, Some(format!("{d}/p.pid").into()));
    // Without -p: /var for pid and error_log.
    let c = ok(&format!(
        "[global]\npid = run/x.pid\nerror_log = syslog\n{}",
        pool("pm = static\npm.max_children = 1")
    ));
    assert_eq!(c.global.pid.as_deref(), Some(Path::new("/var/run/x.pid")));
    assert_eq!(c.global.error_log, ErrorLog::Syslog);
    let bad = LoadOptions {
        prefix: Some("/nonexistent-prefix".into()),
        ..Default::default()
    };
    assert_eq!(
        parse_str(text, Path::new("t"), &bad).unwrap_err().0[0].message,
        "the global prefix '/nonexistent-prefix' does not exist or is not a directory"
    );
}

#[test]
fn ini_lookup_then_env() {
    std::env::set_var("CORRAL_TEST_VAR", "fromenv");
    let o = LoadOptions {
        ini_lookup: Some(Box::new(|n| {
            (n == "memory_limit").then(|| "128M".to_string())
        })),
        ..Default::default()
    };
    let c = parse_str(
        &pool("pm = static\npm.max_children = 1\nphp_value[a] = ${memory_limit}\nphp_value[b] = ${CORRAL_TEST_VAR}\nphp_value[c] = ${VAR:-default}x"),
        Path::new("t"),
        &o,
    )
    .unwrap();
    let v: Vec<&str> = c.pools[0]
        .php_values
        .iter()
        .map(|v| v.value.as_str())
        .collect();
    assert_eq!(v, vec!["x", "fromenv", "128M"]);
}

#[test]
fn times_and_misc_values() {
    let c = ok(&pool("pm = static\npm.max_children = 1\nrequest_terminate_timeout = 1.5m\nrequest_slowlog_timeout = 2s\nslowlog = /tmp/x\nprocess.priority = -5\nrlimit_core = unlimited\nrlimit_files = 1024\nlisten.mode = 0600\nlisten.allowed_clients = 127.0.0.1, ::1\nsecurity.limit_extensions = .php\t.php7  .html\nlisten.acl_users = a,b"));
    let p = &c.pools[0];
    assert_eq!(p.request_terminate_timeout.as_secs(), 60);
    assert_eq!(p.request_slowlog_timeout.as_secs(), 2);
    assert_eq!(p.process_priority, Some(-5));
    assert_eq!(p.rlimit_core, Some(Rlimit::Unlimited));
    assert_eq!(p.rlimit_files, Some(1024));
    assert_eq!(p.listen_mode, 0o600);
    assert_eq!(
        p.listen_allowed_clients,
        Some(vec!["127.0.0.1".to_string(), " ::1".to_string()])
    );
    assert_eq!(p.security_limit_extensions, vec![".php", ".php7", ".html"]);
    assert_eq!(p.listen_acl_users, vec!["a", "b"]);
}

#[test]
fn includes() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir(d.join("pool.d")).unwrap();
    std::fs::create_dir(d.join("pool.d/sub.conf")).unwrap(); // a directory: skipped
    std::fs::write(
        d.join("pool.d/b.conf"),
        "[b]\nuser = x\nlisten = /tmp/b.sock\npm = static\npm.max_children = 1\n",
    )
    .unwrap();
    std::fs::write(
        d.join("pool.d/a.conf"),
        "[a]\nuser = x\nlisten = /tmp/a.sock\npm = static\npm.max_children = 1\n",
    )
    .unwrap();
    let main = d.join("main.conf");
    std::fs::write(
        &main,
        "[global]\ninclude = pool.d/*.conf\ninclude = nomatch*.conf\n",
    )
    .unwrap();
    let o = LoadOptions {
        prefix: Some(d.to_path_buf()),
        ..Default::default()
    };
    let c = load(&main, &o).unwrap();
    let names: Vec<&str> = c.pools.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, vec!["a", "b"]);
    assert_eq!(c.pools[0].source.file, d.join("pool.d/a.conf"));
    // php-fpm's shared line counter: the line after an include continues
    // from the included file's count.
    let w = &c.warnings[0];
    assert_eq!(w.level, Level::Warning);
    assert_eq!(
        w.message,
        format!(
            "Nothing matches the include pattern '{}/nomatch*.conf' from {} at line 7.",
            d.display(),
            main.display()
        )
    );

    // A pattern that matches nothing is not fatal, and stays a WARNING
    // among the messages of a load that fails for another reason, as
    // php-fpm logs it (fpm_conf_ini_parser_include).
    std::fs::write(&main, "[global]\ninclude = nomatch*.conf\n").unwrap();
    let e = load(&main, &o).unwrap_err();
    assert_eq!(
        (e.0[0].level, crate::LogLevel::from(e.0[0].level)),
        (Level::Warning, crate::LogLevel::Warning)
    );
    assert!(e.0[0]
        .message
        .starts_with("Nothing matches the include pattern"));
    let first = e.first_error().unwrap();
    assert_eq!(
        (first.level, first.message.as_str()),
        (
            Level::Error,
            "No pool defined. at least one pool section must be specified in config file"
        )
    );

    // Missing directory: fatal.
    std::fs::write(&main, "[global]\ninclude = /nonexistent-dir/*.conf\n").unwrap();
    let e = load(&main, &o).unwrap_err();
    assert_eq!(
        e.0[0].message,
        format!(
            "Unable to globalize '/nonexistent-dir/*.conf' (ret=2) from {} at line 2.",
            main.display()
        )
    );

    // Recursion limit.
    let r = d.join("r.conf");
    std::fs::write(&r, format!("[x]\ninclude = {}\n", r.display())).unwrap();
    std::fs::write(&main, format!("[global]\ninclude = {}\n", r.display())).unwrap();
    let e = load(&main, &o).unwrap_err();
    assert_eq!(
        e.0[0].message,
        "failed to include more than 5 files recursively"
    );
    assert_eq!(e.0.len(), 1 + 5 + 1);
    assert_eq!(
        e.0[5].message,
        format!(
            "Unable to include {} from {} at line 2",
            r.display(),
            main.display()
        )
    );

    // Missing main file.
    let e = load(&d.join("missing.conf"), &o).unwrap_err();
    assert_eq!(
        e.0[0].message,
        format!(
            "failed to open configuration file '{}': No such file or directory (2)",
            d.join("missing.conf").display()
        )
    );
}

#[test]
fn dump_shape() {
    let c = ok(&pool("pm = static\npm.max_children = 1\nphp_value[a] = 1\nphp_value[a] = 2\naccess.suppress_path[] = /ping"));
    let lines = dump_lines(&c);
    assert_eq!(lines[0], "[global]");
    assert!(lines.contains(&"\tlog_level = unknown value".to_string()));
    assert!(lines.contains(&"\tsyslog.facility = 24".to_string()));
    assert!(lines.contains(&"\tpm.process_idle_timeout = 10".to_string()));
    assert!(lines.contains(&"\trequest_slowlog_timeout = 0s".to_string()));
    assert!(lines.contains(&"\taccess.suppress_path[] = /ping".to_string()));
    let a: Vec<&String> = lines
        .iter()
        .filter(|l| l.starts_with("\tphp_value[a]"))
        .collect();
    assert_eq!(a, vec!["\tphp_value[a] = 2", "\tphp_value[a] = 1"]);
    assert_eq!(lines.last().unwrap(), " ");
}

#[test]
fn metrics_listen_is_off_by_default_and_loopback_when_on() {
    let base = pool("pm = static\npm.max_children = 1");
    assert_eq!(ok(&base).global.metrics_listen, None);
    let on = ok(&format!("[global]\ncorral.metrics_listen = 9253\n{base}"));
    assert_eq!(
        on.global.metrics_listen,
        Some("127.0.0.1:9253".parse().unwrap())
    );
    assert!(on.warnings.is_empty(), "{:?}", on.warnings);
    let remote = format!("[global]\ncorral.metrics_listen = 0.0.0.0:9253\n{base}");
    assert!(
        err(&remote).contains("reachable from other hosts"),
        "{}",
        err(&remote)
    );
    let allowed = ok(&format!(
        "[global]\ncorral.metrics_listen = 0.0.0.0:9253\ncorral.metrics_allow_remote = yes\n{base}"
    ));
    assert_eq!(
        allowed.global.metrics_listen,
        Some("0.0.0.0:9253".parse().unwrap())
    );
    assert!(
        allowed
            .warnings
            .iter()
            .any(|w| w.level == crate::error::Level::Warning
                && w.message.contains("without authentication")),
        "{:?}",
        allowed.warnings
    );
    let bad = format!("[global]\ncorral.metrics_listen = example.com:80\n{base}");
    assert!(err(&bad).contains("is not an address"), "{}", err(&bad));
}
