//! php-fpm's command line: -v, -m, -i, -h, bad options, -t.

mod common;

use common::*;
use std::fs;
use std::time::Duration;

#[test]
fn version_says_fpm_fcgi() {
    let out = run_corral(&["-v"]);
    assert_eq!(out.code, Some(0), "corral -v: {}", out.all());
    let first = out.stdout.lines().next().unwrap_or_default();
    assert!(
        first.starts_with("PHP 8.2.") && first.contains("(fpm-fcgi)"),
        "first line of -v should be like php-fpm's `PHP 8.2.x (fpm-fcgi) (built: …)`, got {first:?}"
    );
    assert!(out.stdout.contains("Zend Engine v4.2"), "{}", out.stdout);
    assert!(
        out.stdout.contains("with Zend OPcache"),
        "-v should list OPcache like php-fpm8.2 -v: {}",
        out.stdout
    );
}

#[test]
fn modules_list_cgi_fcgi_and_opcache() {
    let out = run_corral(&["-m"]);
    assert_eq!(out.code, Some(0), "corral -m: {}", out.all());
    let lines: Vec<&str> = out.stdout.lines().map(str::trim).collect();
    for want in [
        "[PHP Modules]",
        "cgi-fcgi",
        "Core",
        "[Zend Modules]",
        "Zend OPcache",
    ] {
        assert!(lines.contains(&want), "-m lacks {want:?}:\n{}", out.stdout);
    }
    let zend = lines.iter().position(|l| *l == "[Zend Modules]").unwrap();
    let opcache = lines.iter().rposition(|l| *l == "Zend OPcache").unwrap();
    assert!(
        opcache > zend,
        "Zend OPcache must be listed under [Zend Modules]"
    );
}

#[test]
fn modules_match_php_fpm() {
    let Some(fpm) = require_php_fpm() else { return };
    let ours = run_corral(&["-m"]);
    let theirs = run_cmd(&fpm, &["-m"]);
    assert_eq!(theirs.code, Some(0));
    // Debian's embed build has pcntl compiled in; php-fpm does not.
    let strip = |s: &str| {
        s.lines()
            .filter(|l| l.trim() != "pcntl")
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_same("-m output", &strip(&ours.stdout), &strip(&theirs.stdout));
}

#[test]
fn info_prints_phpinfo() {
    let out = run_corral(&["-i"]);
    assert_eq!(out.code, Some(0), "corral -i: {}", out.all());
    assert!(
        out.stdout.contains("phpinfo()"),
        "-i should print phpinfo() as text"
    );
    assert!(
        out.stdout.contains("Server API => FPM/FastCGI"),
        "phpinfo must report php-fpm's Server API line:\n{}",
        out.stdout
            .lines()
            .filter(|l| l.contains("Server API"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn help_exits_zero() {
    let out = run_corral(&["-h"]);
    assert_eq!(out.code, Some(0), "corral -h: {}", out.all());
    let all = out.all();
    for opt in ["-y", "--fpm-config", "-t", "-F", "-O", "-R"] {
        assert!(all.contains(opt), "-h should describe {opt}:\n{all}");
    }
}

#[test]
fn bad_option_exits_64() {
    let out = run_corral(&["--no-such-option"]);
    assert_eq!(out.code, Some(64), "unknown option: {}", out.all());
    let out = run_corral(&["-Z"]);
    assert_eq!(out.code, Some(64), "unknown option -Z: {}", out.all());
}

/// php-fpm answers a flag it does not know with its usage, first line
/// "Usage: ...", on stdout, and 64 (PHP's bug78323 test reads that line);
/// corral too, and says on stderr what was wrong.
#[test]
fn bad_option_prints_usage_first_like_php_fpm() {
    let first_word = |s: &str| {
        s.lines()
            .next()
            .and_then(|l| l.split_whitespace().next())
            .unwrap_or_default()
            .to_string()
    };
    for bad in [&["--memory-limit=1G"][..], &["-Z"], &["-t", "--bogus"]] {
        let ours = run_corral(bad);
        assert_eq!(ours.code, Some(64), "{bad:?}: {}", ours.all());
        assert_eq!(
            first_word(&ours.stdout),
            "Usage:",
            "{bad:?}: {}",
            ours.all()
        );
        assert!(
            ours.stderr
                .contains(bad[bad.len() - 1].split('=').next().unwrap()),
            "{}",
            ours.all()
        );
        if let Some(fpm) = require_php_fpm() {
            let theirs = run_cmd(&fpm, bad);
            assert_eq!(
                (theirs.code, first_word(&theirs.stdout)),
                (ours.code, first_word(&ours.stdout)),
                "{bad:?}"
            );
        }
    }
}

fn write_conf(dir: &std::path::Path, text: &str) -> String {
    let path = dir.join("php-fpm.conf");
    fs::write(&path, text.replace("{dir}", &dir.display().to_string())).unwrap();
    path.display().to_string()
}

#[test]
fn test_config_success() {
    let dir = temp_dir("cli");
    let conf = write_conf(
        dir.path(),
        "[global]\nerror_log = {dir}/error.log\n\n[www]\nlisten = {dir}/www.sock\nuser = nobody\npm = static\npm.max_children = 2\n",
    );
    let out = run_corral(&["-t", "-y", &conf]);
    assert_eq!(out.code, Some(0), "corral -t: {}", out.all());
    assert!(
        out.all()
            .contains(&format!("configuration file {conf} test is successful")),
        "-t success message missing:\n{}",
        out.all()
    );
    assert!(
        out.stderr.contains("NOTICE: configuration file"),
        "-t message goes to stderr at NOTICE, like php-fpm:\n{}",
        out.all()
    );
    // -t must not start anything or bind sockets.
    assert!(
        !dir.path().join("www.sock").exists(),
        "-t must not bind the socket"
    );
}

#[test]
fn test_config_broken_names_file_and_line() {
    let dir = temp_dir("cli");
    let conf = write_conf(
        dir.path(),
        "[global]\nerror_log = {dir}/error.log\n\n[www]\nlisten = {dir}/www.sock\npm = static\npm.max_children = lots\n",
    );
    let out = run_corral(&["-t", "-y", &conf]);
    assert_eq!(
        out.code,
        Some(78),
        "broken config must exit 78 (EX_CONFIG): {}",
        out.all()
    );
    let all = out.all();
    assert!(
        all.contains(&format!("[{conf}:7]")),
        "error must name [file:line] = [{conf}:7]:\n{all}"
    );
    assert!(all.contains("pm.max_children"), "{all}");
    assert!(all.contains("FPM initialization failed"), "{all}");
    assert!(!all.contains("test is successful"), "{all}");
}

#[test]
fn test_config_unknown_entry() {
    let dir = temp_dir("cli");
    let conf = write_conf(
        dir.path(),
        "[global]\nerror_log = {dir}/error.log\n[www]\nlisten = {dir}/www.sock\npm = static\npm.max_children = 1\nno_such_thing = 1\n",
    );
    let out = run_corral(&["-t", "-y", &conf]);
    assert_eq!(out.code, Some(78), "{}", out.all());
    assert!(
        out.all()
            .contains(&format!("[{conf}:7] unknown entry 'no_such_thing'")),
        "{}",
        out.all()
    );
}

#[test]
fn test_config_missing_file_fails() {
    let dir = temp_dir("cli");
    let conf = dir.path().join("absent.conf").display().to_string();
    let out = run_corral(&["-t", "-y", &conf]);
    assert_ne!(
        out.code,
        Some(0),
        "a missing config file must fail -t: {}",
        out.all()
    );
    assert!(
        out.all().contains(&conf),
        "the error names the file: {}",
        out.all()
    );
}

#[test]
fn test_config_exit_codes_match_php_fpm() {
    let Some(fpm) = require_php_fpm() else { return };
    let dir = temp_dir("cli");
    for (i, text) in [
        "[global]\nerror_log = {dir}/e.log\n[www]\nlisten = {dir}/a.sock\npm = static\npm.max_children = 1\n",
        "[global]\nerror_log = {dir}/e.log\n[www]\nlisten = {dir}/a.sock\npm = sometimes\npm.max_children = 1\n",
        "[global]\nerror_log = {dir}/e.log\n[www]\nlisten = {dir}/a.sock\npm = dynamic\npm.max_children = 2\npm.min_spare_servers = 3\npm.max_spare_servers = 4\n",
        "[global]\nerror_log = {dir}/e.log\n[www]\npm = static\npm.max_children = 1\n",
        "[global]\nerror_log = {dir}/e.log\n",
        "[global]\nerror_log = {dir}/e.log\nenv[X] = 1\n[www]\nlisten = {dir}/a.sock\npm = static\npm.max_children = 1\n",
    ]
    .iter()
    .enumerate()
    {
        let sub = dir.path().join(format!("c{i}"));
        fs::create_dir(&sub).unwrap();
        let conf = write_conf(&sub, text);
        let ours = run_corral(&["-t", "-y", &conf]);
        let theirs = run_cmd(&fpm, &["-t", "-y", &conf]);
        assert_eq!(
            ours.code,
            theirs.code,
            "config #{i}:\n{text}\ncorral said:\n{}\nphp-fpm said:\n{}",
            ours.all(),
            theirs.all()
        );
    }
}

/// `-t` on access.format edges, after an include that matches nothing (a
/// WARNING, not fatal): the same lines at the same levels as php-fpm.
#[test]
fn test_config_messages_match_php_fpm() {
    let Some(fpm) = require_php_fpm() else { return };
    let dir = temp_dir("cli");
    let untimed = |s: &str| {
        s.lines()
            .map(|l| l.split_once("] ").map_or(l, |(_, rest)| rest))
            .collect::<Vec<_>>()
            .join("\n")
    };
    for (i, format) in [
        "abc %",
        "%{TOTAL}C %{MILLI}d %{kilo}M %{a}{%Y}t %{}m %%",
        "%{x}%",
        "%{x}",
        "%{x}{y}m",
        "%{}e",
        "%o",
        "%{bad}d",
        "%Z",
    ]
    .iter()
    .enumerate()
    {
        let sub = dir.path().join(format!("f{i}"));
        fs::create_dir(&sub).unwrap();
        let conf = write_conf(
            &sub,
            &format!(
                "[global]\nerror_log = {{dir}}/e.log\ninclude = {{dir}}/nomatch*.conf\n\
                 [www]\nuser = nobody\nlisten = {{dir}}/a.sock\npm = static\npm.max_children = 1\n\
                 access.log = {{dir}}/access.log\naccess.format = \"{format}\"\n"
            ),
        );
        let ours = run_corral(&["-t", "-y", &conf]);
        let theirs = run_cmd(&fpm, &["-t", "-y", &conf]);
        assert!(
            theirs
                .stderr
                .contains("WARNING: Nothing matches the include pattern"),
            "{}",
            theirs.stderr
        );
        assert_eq!(
            (ours.code, untimed(&ours.stderr)),
            (theirs.code, untimed(&theirs.stderr)),
            "access.format = \"{format}\""
        );
    }
}

/// `-t` warns about a TCP listener other tenants can reach, naming the
/// pool, the address and the fix, and still succeeds like php-fpm (which
/// says nothing); unix sockets draw no warning.
#[test]
fn test_config_warns_about_tcp_listeners_tenants_reach() {
    let dir = temp_dir("cli");
    let conf = write_conf(
        dir.path(),
        "[global]\nerror_log = {dir}/error.log\n\
         [victim]\nuser = nobody\nlisten = {dir}/victim.sock\npm = static\npm.max_children = 1\n\
         pm.status_listen = 127.0.0.1:9001\n\
         [attacker]\nuser = nobody\nlisten = {dir}/attacker.sock\npm = static\npm.max_children = 1\n",
    );
    let ours = run_corral(&["-t", "-y", &conf]);
    let warnings: Vec<&str> = ours
        .stderr
        .lines()
        .filter(|l| l.contains("WARNING:"))
        .collect();
    eprintln!("corral -t:\n{}", ours.all());
    assert_eq!(ours.code, Some(0), "a warning is not fatal: {}", ours.all());
    assert_eq!(warnings.len(), 1, "one listener, one warning: {warnings:?}");
    for part in [
        "WARNING: [pool victim] pm.status_listen = 127.0.0.1:9001 is a TCP socket",
        "other tenants' PHP",
        "unix socket",
        "listen.allowed_clients",
    ] {
        assert!(
            warnings[0].contains(part),
            "{part:?} missing: {}",
            warnings[0]
        );
    }
    if let Some(fpm) = require_php_fpm() {
        let theirs = run_cmd(&fpm, &["-t", "-y", &conf]);
        eprintln!("php-fpm -t:\n{}", theirs.all());
        assert_eq!(ours.code, theirs.code, "php-fpm: {}", theirs.all());
    }
    let quiet = write_conf(
        dir.path(),
        "[global]\nerror_log = {dir}/error.log\n\
         [www]\nuser = nobody\nlisten = {dir}/www.sock\npm = static\npm.max_children = 1\n\
         pm.status_listen = {dir}/status.sock\n",
    );
    let out = run_corral(&["-t", "-y", &quiet]);
    assert!(!out.stderr.contains("WARNING"), "{}", out.all());
}

/// `-t` and `-tt` look up every account the configuration names, as
/// php-fpm8.2 does: a missing user or group fails (exit 78, "[pool www]
/// cannot get uid for user '...'" / gid, at ERROR), so does a missing
/// listen.owner or listen.group (php-fpm's system-call form, with
/// errno); a number is an id and needs no passwd entry; whether a pool
/// runs as root is start-up's concern. Same code and lines as php-fpm.
#[test]
fn test_config_checks_accounts_as_php_fpm_does() {
    let Some(fpm) = require_php_fpm() else { return };
    let dir = temp_dir("cli");
    let untimed = |s: &str| {
        s.lines()
            .map(|l| l.split_once("] ").map_or(l, |(_, rest)| rest))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let no = "corral-no-such-account";
    let cases = [
        (format!("user = {no}"), 78),
        (format!("user = nobody\ngroup = {no}"), 78),
        (format!("user = root\ngroup = {no}"), 78),
        (format!("user = nobody\nlisten.owner = {no}"), 78),
        (format!("user = nobody\nlisten.group = {no}"), 78),
        (
            "user = 4711\ngroup = 4712\nlisten.owner = 4713\nlisten.group = 4714".into(),
            0,
        ),
        ("user = 4711".into(), 0),
        ("user = root".into(), 0),
    ];
    for (i, (lines, code)) in cases.iter().enumerate() {
        let sub = dir.path().join(format!("u{i}"));
        fs::create_dir(&sub).unwrap();
        let conf = write_conf(
            &sub,
            &format!(
                "[global]\nerror_log = {{dir}}/e.log\n[www]\nlisten = {{dir}}/a.sock\n{lines}\npm = static\npm.max_children = 1\n"
            ),
        );
        let flags: &[&str] = if *code == 0 { &["-t"] } else { &["-t", "-tt"] };
        for flag in flags {
            let ours = run_corral(&[flag, "-y", &conf]);
            let theirs = run_cmd(&fpm, &[flag, "-y", &conf]);
            assert_eq!(
                ours.code,
                Some(*code),
                "{flag} with\n{lines}\n{}",
                ours.all()
            );
            assert_eq!(
                (ours.code, untimed(&ours.stderr)),
                (theirs.code, untimed(&theirs.stderr)),
                "{flag} with\n{lines}"
            );
        }
    }
}

/// How many EXT_STMT opcodes OPcache's opcode dump (opt_debug_level
/// 0x10000, written to the worker's stderr and caught into the log)
/// shows for one request to index.php, with `args` on the command line.
fn ext_stmt_count(kind: Kind, args: &[&str]) -> usize {
    let mut all = vec![
        "-d",
        "opcache.opt_debug_level=0x10000",
        "-d",
        "opcache.file_update_protection=0",
    ];
    all.extend_from_slice(args);
    let s = Server::start(
        kind,
        &pool_conf("pm.max_children = 1\ncatch_workers_output = yes"),
        None,
        &all,
    );
    assert_eq!(s.get("index.php", "").status, 200, "{kind:?}");
    // The dump is written before the script runs; give its lines time to
    // reach the master's log.
    s.wait_log("EXT_STMT", Duration::from_secs(2));
    s.log
        .lines()
        .iter()
        .filter(|l| l.contains("said into stderr") && l.contains("EXT_STMT"))
        .count()
}

/// `-e` compiles scripts with extended information for debuggers and
/// profilers (EXT_STMT opcodes around each statement), as php-fpm's -e
/// does; without it there are none. Side by side with php-fpm8.2.
#[test]
fn dash_e_compiles_with_extended_information() {
    if !require_root() {
        return;
    }
    let with = ext_stmt_count(Kind::Corral, &["-e"]);
    assert!(with > 0, "-e: no EXT_STMT in the opcode dump");
    assert_eq!(ext_stmt_count(Kind::Corral, &[]), 0, "without -e");
    if require_php_fpm().is_some() {
        // The dump's lines are cut where each server's worker output
        // capture cuts them, so only whether EXT_STMT is there compares.
        assert!(ext_stmt_count(Kind::PhpFpm, &["-e"]) > 0, "php-fpm -e");
        assert_eq!(ext_stmt_count(Kind::PhpFpm, &[]), 0, "php-fpm without -e");
    }
}

/// `events.mechanism`, `listen.setfib` and `apparmor_hat` in `-t`, as
/// php-fpm8.2 on Linux has them: epoll, poll and select are accepted (any
/// case), the BSD and Solaris ones and nonsense are not available, an
/// ondemand pool needs epoll; listen.setfib (FreeBSD's SO_SETFIB) is an
/// unknown entry; apparmor_hat is accepted. Same code and lines.
#[test]
fn test_config_events_setfib_and_apparmor_as_php_fpm_on_linux() {
    let Some(fpm) = require_php_fpm() else { return };
    let dir = temp_dir("cli");
    let untimed = |s: &str| {
        s.lines()
            .map(|l| l.split_once("] ").map_or(l, |(_, rest)| rest))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let mut cases = Vec::new();
    for m in [
        "epoll",
        "EPOLL",
        "poll",
        "select",
        "kqueue",
        "/dev/poll",
        "port",
        "nonsense",
    ] {
        for pm in ["static", "ondemand"] {
            cases.push((format!("events.mechanism = {m}"), format!("pm = {pm}")));
        }
    }
    cases.push((String::new(), "pm = static\nlisten.setfib = 1".into()));
    cases.push((String::new(), "pm = static\napparmor_hat = www".into()));
    for (i, (global, pool)) in cases.iter().enumerate() {
        let sub = dir.path().join(format!("m{i}"));
        fs::create_dir(&sub).unwrap();
        let conf = write_conf(
            &sub,
            &format!(
                "[global]\nerror_log = {{dir}}/e.log\n{global}\n[www]\nlisten = {{dir}}/a.sock\nuser = nobody\n{pool}\npm.max_children = 1\n"
            ),
        );
        let ours = run_corral(&["-t", "-y", &conf]);
        let theirs = run_cmd(&fpm, &["-t", "-y", &conf]);
        assert_eq!(
            (ours.code, untimed(&ours.stderr)),
            (theirs.code, untimed(&theirs.stderr)),
            "{global} / {pool}"
        );
    }
}
