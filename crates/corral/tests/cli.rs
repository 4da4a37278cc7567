//! php-fpm's command line: -v, -m, -i, -h, bad options, -t.

mod common;

use common::*;
use std::fs;

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
