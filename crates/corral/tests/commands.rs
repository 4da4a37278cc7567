//! corral's own commands from the outside, as an operator or a script
//! meets them: `--help` everywhere (and never a master contacted for it),
//! unknown flags refused with 64, `--json` errors, the exit code table,
//! "must be run as root" instead of EACCES or another master's socket,
//! `--version`, completions and man pages.

mod common;

use common::*;
use serde_json::Value;
use std::os::unix::net::UnixListener;
use std::process::Command;
use std::time::Duration;

fn corral(args: &[&str]) -> Output {
    run_cmd(&corral_bin(), args)
}

/// The commands `corral --help` lists, with their one-line help.
fn listed_commands() -> Vec<(String, String)> {
    let out = corral(&["--help"]);
    assert_eq!(out.code, Some(0), "{}", out.all());
    out.stdout
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .filter_map(|l| {
            let (name, help) = l.trim().split_once(' ')?;
            Some((name.to_string(), help.trim().to_string()))
        })
        .filter(|(name, _)| name != "help")
        .collect()
}

#[test]
fn help_lists_every_command_with_a_line_of_help() {
    let listed = listed_commands();
    let names: Vec<&str> = listed.iter().map(|(n, _)| n.as_str()).collect();
    for want in [
        "reload",
        "restart",
        "status",
        "metrics",
        "top",
        "site",
        "tune",
        "doctor",
        "bench",
        "completions",
        "man",
    ] {
        assert!(names.contains(&want), "{want} missing from {names:?}");
    }
    for (name, help) in &listed {
        assert!(help.len() > 10, "{name}: {help:?}");
    }
    // php-fpm's flags are still described, as php-fpm -h does.
    let out = corral(&["--help"]);
    for flag in [
        "-y, --fpm-config",
        "-t, --test",
        "-d, --define",
        "-F, --nodaemonize",
    ] {
        assert!(out.stdout.contains(flag), "{flag}:\n{}", out.stdout);
    }
}

/// Every command's --help answers at once, without a word to the master:
/// the control socket it would use stays unconnected.
#[test]
fn every_help_answers_without_contacting_the_master() {
    let dir = temp_dir("help");
    let sock = dir.path().join("control.sock");
    let listener = UnixListener::bind(&sock).unwrap();
    listener.set_nonblocking(true).unwrap();
    let s = sock.display().to_string();
    let mut commands: Vec<Vec<String>> = listed_commands()
        .into_iter()
        .map(|(n, _)| vec![n])
        .collect();
    for sub in [
        "add",
        "remove",
        "list",
        "show",
        "set",
        "enable",
        "disable",
        "templates",
    ] {
        commands.push(vec!["site".into(), sub.into()]);
    }
    for cmd in &commands {
        let mut args: Vec<&str> = cmd.iter().map(String::as_str).collect();
        args.extend(["--help", "--control-socket", &s]);
        let out = corral(&args);
        assert_eq!(out.code, Some(0), "{args:?}: {}", out.all());
        let usage = format!("Usage: corral {}", cmd.join(" "));
        assert!(out.stdout.contains(&usage), "{args:?}:\n{}", out.stdout);
        assert!(
            matches!(listener.accept(), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
            "{args:?} connected to the control socket"
        );
    }
}

/// An unknown flag is an error everywhere (64, the usage code), in JSON
/// when --json is there too.
#[test]
fn unknown_flags_are_usage_errors_in_text_and_json() {
    for cmd in [
        &["status"][..],
        &["reload"],
        &["restart", "www"],
        &["metrics"],
        &["top"],
        &["site", "list"],
        &["site", "add", "example.com"],
        &["tune"],
        &["doctor"],
        &["bench", "/x.sock", "-s", "/x.php"],
        &["completions", "bash"],
        &["man"],
    ] {
        let mut args = cmd.to_vec();
        args.push("--jsn");
        let out = corral(&args);
        assert_eq!(out.code, Some(64), "{args:?}: {}", out.all());
        assert!(out.stderr.contains("'--jsn'"), "{args:?}: {}", out.all());
        args.push("--json");
        let out = corral(&args);
        assert_eq!(out.code, Some(64), "{args:?}: {}", out.all());
        let v: Value = serde_json::from_str(&out.stdout)
            .unwrap_or_else(|e| panic!("{args:?}: not JSON ({e}): {}", out.all()));
        assert_eq!(v["code"], 64, "{v}");
        assert!(v["error"].as_str().unwrap().contains("--jsn"), "{v}");
    }
    // php-fpm's mode keeps php-fpm's own answer to a bad flag.
    assert_eq!(corral(&["--jsn"]).code, Some(64));
    assert_eq!(
        corral(&["-t", "status"]).code,
        Some(64),
        "flags or a command"
    );
}

/// No master: 69 (unavailable), the socket named, the same in JSON.
#[test]
fn no_master_is_unavailable() {
    let dir = temp_dir("nomaster");
    let sock = dir.path().join("none.sock").display().to_string();
    for cmd in [
        &["status"][..],
        &["reload"],
        &["restart", "www"],
        &["metrics"],
    ] {
        let mut args = cmd.to_vec();
        args.extend(["--control-socket", &sock]);
        let out = corral(&args);
        assert_eq!(out.code, Some(69), "{args:?}: {}", out.all());
        assert!(out.stderr.contains(&sock), "{}", out.all());
        args.push("--json");
        let out = corral(&args);
        let v: Value = serde_json::from_str(&out.stdout).unwrap();
        assert_eq!(v["code"], 69, "{v}");
    }
    // `top` needs a terminal unless it prints one view as JSON.
    let out = corral(&["top", "--control-socket", &sock]);
    assert_eq!(out.code, Some(64), "{}", out.all());
    let out = corral(&["top", "--json", "--control-socket", &sock]);
    let v: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["code"], 69, "{v}");
}

#[test]
fn version_names_corral_and_the_php_it_embeds() {
    let out = corral(&["--version"]);
    assert_eq!(out.code, Some(0), "{}", out.all());
    let mut lines = out.stdout.lines();
    let first = lines.next().unwrap_or_default();
    assert!(
        first.starts_with(&format!("corral {}", env!("CARGO_PKG_VERSION"))),
        "{first:?}"
    );
    let php = lines.next().unwrap_or_default();
    assert!(
        php.starts_with("PHP 8.2.") && php.contains("(fpm-fcgi)"),
        "{}",
        out.stdout
    );
    // -v: php-fpm's lines first, corral's last.
    let out = corral(&["-v"]);
    assert!(out.stdout.starts_with("PHP 8.2."), "{}", out.stdout);
    assert_eq!(
        out.stdout.lines().last(),
        Some(format!("corral {}", env!("CARGO_PKG_VERSION")).as_str())
    );
}

#[test]
fn completions_for_each_shell_know_the_commands() {
    for shell in ["bash", "zsh", "fish"] {
        let out = corral(&["completions", shell]);
        assert_eq!(out.code, Some(0), "{shell}: {}", out.all());
        for word in ["restart", "site", "fpm-config", "json"] {
            assert!(out.stdout.contains(word), "{shell} lacks {word}");
        }
    }
    let out = corral(&["completions", "bash"]);
    let dir = temp_dir("completions");
    let file = dir.path().join("corral.bash");
    std::fs::write(&file, &out.stdout).unwrap();
    let check = run_cmd(
        std::path::Path::new("/bin/bash"),
        &["-n", &file.display().to_string()],
    );
    assert_eq!(check.code, Some(0), "bash -n: {}", check.all());
    assert_eq!(corral(&["completions", "tcsh"]).code, Some(64));
}

#[test]
fn man_pages_render() {
    let dir = temp_dir("man");
    let out = corral(&["man", "--dir", &dir.path().display().to_string(), "--json"]);
    assert_eq!(out.code, Some(0), "{}", out.all());
    let v: Value = serde_json::from_str(&out.stdout).unwrap();
    let pages: Vec<String> = v["pages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap().to_string())
        .collect();
    for want in [
        "corral.8",
        "corral-restart.8",
        "corral-site-add.8",
        "corral-bench.8",
    ] {
        assert!(
            pages.iter().any(|p| p.ends_with(&format!("/{want}"))),
            "{want} not in {pages:?}"
        );
    }
    let top = corral(&["man"]);
    assert!(
        top.stdout.starts_with(".ie") || top.stdout.contains(".TH corral 8"),
        "{}",
        top.stdout
    );
    let Some(man) = require_bin("man") else {
        return;
    };
    let page = dir.path().join("corral-site-add.8").display().to_string();
    let shown = Command::new(man)
        .args(["-l", &page])
        .env("MANWIDTH", "80")
        .env("MAN_KEEP_FORMATTING", "0")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&shown.stdout);
    assert!(
        shown.status.success(),
        "{}",
        String::from_utf8_lossy(&shown.stderr)
    );
    assert!(
        text.contains("corral-site-add") && text.contains("disk"),
        "{text}"
    );
}

/// `corral bench` against a socket nobody listens on: every connect
/// fails, and so does the command.
#[test]
fn bench_fails_when_nothing_answers() {
    let dir = temp_dir("bench");
    let dead = dir.path().join("dead.sock");
    drop(UnixListener::bind(&dead).unwrap());
    let target = format!("unix:{}", dead.display());
    let out = corral(&["bench", &target, "-s", "/x.php", "-n", "10", "-c", "1"]);
    assert_eq!(out.code, Some(1), "{}", out.all());
    assert!(
        out.stdout.contains("none of 10 requests was answered"),
        "{}",
        out.all()
    );
    let out = corral(&["bench", &target, "-s", "/x.php", "-n", "10", "--json"]);
    assert_eq!(out.code, Some(1), "{}", out.all());
    let v: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(
        (v["code"].clone(), v["completed"].clone()),
        (1.into(), 0.into())
    );
    assert_eq!(v["errors"]["connect"], 10, "{v}");
}

/// `corral ARGS` as the unprivileged user `nobody`.
fn as_nobody(args: &[&str]) -> Output {
    let mut all = vec![
        "--reuid=nobody",
        "--regid=nogroup",
        "--clear-groups",
        "--",
        "env",
        "-u",
        "XDG_RUNTIME_DIR",
    ];
    let bin = nobody_bin().display().to_string();
    all.push(&bin);
    all.extend_from_slice(args);
    run_cmd(std::path::Path::new("/usr/bin/setpriv"), &all)
}

/// The binary where `nobody` can run it: the build tree may sit under a
/// directory only root enters (a clone in /root), so a copy goes to a
/// world-readable temporary directory, once per test process (a few bytes
/// left in /tmp per run).
fn nobody_bin() -> &'static std::path::Path {
    static BIN: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    BIN.get_or_init(|| {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("corral-nobody-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir for nobody's corral");
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let bin = dir.join("corral");
        // A hard link costs no space; another file system needs a copy.
        let _ = std::fs::remove_file(&bin);
        if std::fs::hard_link(corral_bin(), &bin).is_err() {
            std::fs::copy(corral_bin(), &bin).expect("copy corral for nobody");
        }
        std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
        bin
    })
}

/// A master started on `conf` with no --control-socket, so it listens
/// where root's masters do: `/run/corral/<named after conf>.sock`.
fn root_master(conf: &std::path::Path) -> ForegroundMaster {
    ForegroundMaster::start(
        Command::new(corral_bin())
            .args(["-F", "-O", "-y"])
            .arg(conf),
        &format!("corral on {}", conf.display()),
        Duration::from_secs(20),
    )
}

/// Without root: "must be run as root" (77) for what needs it, never a
/// raw EACCES, and `status` does not go looking at another socket.
#[test]
fn without_root_commands_say_so() {
    if !require_root() {
        return;
    }
    let out = as_nobody(&["site", "add", "example.test"]);
    assert_eq!(out.code, Some(77), "{}", out.all());
    assert!(out.stderr.contains("must be run as root"), "{}", out.all());
    assert!(!out.all().contains("os error 13"), "{}", out.all());
    let out = as_nobody(&["site", "remove", "example.test", "--json"]);
    assert_eq!(out.code, Some(77), "{}", out.all());
    let v: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["code"], 77, "{v}");

    let dir = temp_dir("rootmaster");
    let _ = Command::new("chmod").arg("755").arg(dir.path()).status();
    let conf = dir.path().join("php-fpm.conf");
    std::fs::write(
        &conf,
        format!(
            "[global]\nerror_log = {d}/error.log\npid = {d}/fpm.pid\n[www]\nlisten = {d}/www.sock\nuser = nobody\npm = static\npm.max_children = 1\n",
            d = dir.path().display()
        ),
    )
    .unwrap();
    let _master = root_master(&conf);
    let c = conf.display().to_string();
    let out = corral(&["status", "-y", &c, "--json"]);
    assert_eq!(out.code, Some(0), "root reaches it: {}", out.all());
    for cmd in [
        &["status", "-y", &c][..],
        &["reload", "-y", &c],
        &["restart", "www", "-y", &c],
    ] {
        let out = as_nobody(cmd);
        assert_eq!(out.code, Some(77), "{cmd:?}: {}", out.all());
        assert!(
            out.stderr.contains("must be run as root") && out.stderr.contains("/run/corral/"),
            "{cmd:?}: {}",
            out.all()
        );
    }
    // Named explicitly, root's socket refuses nobody: the same words.
    let sock = corral_ipc::control::root_socket(&conf, None)
        .display()
        .to_string();
    let out = as_nobody(&["status", "--control-socket", &sock]);
    assert_eq!(out.code, Some(77), "{}", out.all());
    assert!(out.stderr.contains("must be run as root"), "{}", out.all());
}
