//! php-fpm's flags that shape PHP and the process: -d, -c, -n, -g, -p, -D.
//! Each is checked for its effect, not just accepted.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::*;

fn ini(s: &Server, keys: &str) -> String {
    s.get("ini.php", &format!("get={keys}")).body
}

#[test]
fn define_sets_an_ini_value() {
    let s = Corral::start_args(
        &pool_conf(""),
        &["-d", "precision=7", "-d", "memory_limit=77M"],
    );
    let body = ini(&s, "precision,memory_limit");
    assert!(body.contains("precision=7"), "{body}");
    assert!(body.contains("memory_limit=77M"), "{body}");
}

#[test]
fn php_ini_dir_and_no_ini() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("php.ini"), "precision = 5\n").unwrap();
    // Readable by the pool user.
    let _ = Command::new("chmod")
        .args(["-R", "a+rX"])
        .arg(dir.path())
        .status();
    let s = Corral::start_args(&pool_conf(""), &["-c", &dir.path().display().to_string()]);
    assert!(
        ini(&s, "precision").contains("precision=5"),
        "-c DIR is used"
    );
    drop(s);
    // -n: no php.ini at all, so PHP's built-in default (14). (With -c as
    // well PHP reads the -c file regardless, php-src's rule.)
    let s = Corral::start_args(&pool_conf(""), &["-n"]);
    let body = ini(&s, "precision,memory_limit");
    assert!(body.contains("precision=14"), "-n ignores php.ini: {body}");
}

#[test]
fn pid_flag_writes_the_master_pid_unless_the_config_says() {
    let dir = tempfile::tempdir().unwrap();
    let pid = dir.path().join("flag.pid");
    let s = Corral::start_args(&pool_conf(""), &["-g", &pid.display().to_string()]);
    let written: i32 = std::fs::read_to_string(&pid)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_eq!(written, s.pid() as i32);
    drop(s);
    // `pid =` in [global] wins over -g, as in php-fpm.
    let conf = pool_conf("").replace("[global]\n", "[global]\npid = {dir}/conf.pid\n");
    let s = Corral::start_args(&conf, &["-g", &pid.display().to_string()]);
    assert!(s.dir().join("conf.pid").exists(), "config pid file written");
}

#[test]
fn prefix_resolves_relative_paths() {
    if !require_root() {
        return;
    }
    let prefix = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(prefix.path().join("log")).unwrap();
    let conf = pool_conf("access.log = log/access.log\n");
    let s = Corral::start_args(&conf, &["-p", &prefix.path().display().to_string()]);
    let _ = s.get("index.php", "");
    let log = prefix.path().join("log/access.log");
    let deadline = Instant::now() + Duration::from_secs(5);
    while std::fs::metadata(&log).map(|m| m.len()).unwrap_or(0) == 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        std::fs::metadata(&log)
            .map(|m| m.len() > 0)
            .unwrap_or(false),
        "access.log resolved under -p"
    );
}

/// Runs `corral -D` on a one-pool config listening on `listen` (relative
/// to a fresh temp dir); returns the dir and the launcher's output.
fn daemonize(listen: &str) -> (tempfile::TempDir, std::process::Output) {
    let dir = tempfile::tempdir().unwrap();
    let _ = Command::new("chmod")
        .args(["a+rx"])
        .arg(dir.path())
        .status();
    let d = dir.path().display().to_string();
    let conf = format!(
        "[global]\nerror_log = {d}/error.log\npid = {d}/fpm.pid\n[www]\nlisten = {d}/{listen}\nuser = nobody\npm = static\npm.max_children = 1\n"
    );
    std::fs::write(dir.path().join("php-fpm.conf"), conf).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_corral"))
        .args([
            "-D",
            "-y",
            &format!("{d}/php-fpm.conf"),
            "--control-socket",
            &format!("{d}/ctl.sock"),
        ])
        .output()
        .unwrap();
    (dir, out)
}

#[test]
fn daemonize_returns_once_the_pools_are_up() {
    if !require_root() {
        return;
    }
    let (dir, out) = daemonize("www.sock");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The launcher has returned: the master runs in the background and the
    // socket answers.
    let pid: i32 = std::fs::read_to_string(dir.path().join("fpm.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(std::os::unix::net::UnixStream::connect(dir.path().join("www.sock")).is_ok());
    unsafe { libc::kill(pid, libc::SIGTERM) };
    let deadline = Instant::now() + Duration::from_secs(10);
    while unsafe { libc::kill(pid, 0) } == 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(std::fs::read_to_string(dir.path().join("error.log"))
        .unwrap()
        .contains("exiting, bye-bye!"));
}

#[test]
fn daemonize_failure_is_reported_with_70() {
    if !require_root() {
        return;
    }
    // A listen address that cannot be bound (a directory that does not exist).
    let (_dir, out) = daemonize("missing/www.sock");
    assert_ne!(out.status.code(), Some(0));
}
