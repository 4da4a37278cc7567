//! `corral doctor`: every finding names what this machine really has, read
//! here independently (from /proc/sys, mountinfo, an unshare of our own)
//! and compared, and a pool config with a tenant-reachable TCP listener
//! and a world-readable pool file is reported weak.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};

use common::{corral_bin, require_root, run_cmd};

/// Runs `corral doctor --json` against a temp config, returns (exit, findings).
fn doctor(conf: &Path, home_base: &Path) -> (Option<i32>, Vec<serde_json::Value>, String) {
    let args = [
        "doctor",
        "--json",
        "--fpm-config",
        &conf.display().to_string(),
        "--home-base",
        &home_base.display().to_string(),
    ];
    let o = run_cmd(
        &corral_bin(),
        &args.iter().map(|s| &**s).collect::<Vec<_>>(),
    );
    let v: serde_json::Value =
        serde_json::from_str(o.stdout.trim()).unwrap_or_else(|e| panic!("{e}: {}", o.all()));
    let f = v["findings"].as_array().unwrap().clone();
    let weak = f.iter().filter(|f| f["level"] == "weak").count() as u64;
    assert_eq!(v["weak"].as_u64(), Some(weak), "{v}");
    (o.code, f, o.stdout)
}

fn finding<'a>(all: &'a [serde_json::Value], check: &str) -> &'a serde_json::Value {
    all.iter()
        .find(|f| f["check"] == check)
        .unwrap_or_else(|| panic!("no {check} in {all:?}"))
}

/// A config with a TCP pool open to every local process (0644 file) and
/// a unix-socket pool in a 0600 file.
fn config(dir: &Path) -> std::path::PathBuf {
    let d = dir.display();
    let port = common::free_port();
    fs::create_dir(dir.join("pool.d")).unwrap();
    fs::write(
        dir.join("pool.d/open.conf"),
        format!(
            "[open]\nlisten = 127.0.0.1:{port}\nuser = nobody\npm = static\npm.max_children = 1\n"
        ),
    )
    .unwrap();
    fs::set_permissions(
        dir.join("pool.d/open.conf"),
        fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    fs::write(
        dir.join("pool.d/closed.conf"),
        format!(
            "[closed]\nlisten = {d}/closed.sock\nuser = nobody\npm = static\npm.max_children = 1\n"
        ),
    )
    .unwrap();
    fs::set_permissions(
        dir.join("pool.d/closed.conf"),
        fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    let main = dir.join("php-fpm.conf");
    fs::write(
        &main,
        format!("[global]\nerror_log = {d}/error.log\ninclude = {d}/pool.d/*.conf\n"),
    )
    .unwrap();
    main
}

#[test]
fn doctor_reports_this_hosts_real_values() {
    if !require_root() {
        return;
    }
    let dir = common::temp_dir("doctor");
    let conf = config(dir.path());
    let (code, all, _) = doctor(&conf, dir.path());

    for (name, want) in [
        ("fs.protected_symlinks", 1),
        ("fs.protected_hardlinks", 1),
        ("fs.protected_regular", 2),
        ("fs.protected_fifos", 2),
    ] {
        let real = fs::read_to_string(format!("/proc/sys/{}", name.replace('.', "/"))).unwrap();
        let real = real.trim();
        let f = finding(&all, name);
        assert_eq!(f["value"], real, "{f}");
        let weak = real.parse::<u32>().unwrap() < want;
        assert_eq!(f["level"] == "weak", weak, "{f}");
        if weak {
            assert!(
                f["advice"]
                    .as_str()
                    .unwrap()
                    .contains(&format!("{name}={want}")),
                "says what to set: {f}"
            );
        }
    }

    // Namespaces: what an unshare of our own gets.
    let can = Command::new("unshare")
        .args(["--mount", "--ipc", "true"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    let f = finding(&all, "namespaces");
    assert_eq!(f["level"] == "ok", can, "{f}");

    // cgroup: the version and controllers mountinfo shows.
    let info = fs::read_to_string("/proc/self/mountinfo").unwrap();
    let v1: Vec<&str> = ["cpu", "memory", "pids"]
        .into_iter()
        .filter(|c| {
            info.lines().any(|l| {
                l.contains(" - cgroup ")
                    && l.rsplit(' ').next().unwrap().split(',').any(|o| o == *c)
            })
        })
        .collect();
    let f = finding(&all, "cgroup");
    let value = f["value"].as_str().unwrap();
    if v1.len() == 3 {
        assert!(value.starts_with("v1: "), "{f}");
        for c in v1 {
            assert!(value.split([' ', ':']).any(|w| w == c), "{c} missing: {f}");
        }
    } else {
        assert!(value.starts_with("v2 ") || value.starts_with("none"), "{f}");
    }

    // Landlock: a number where securityfs says the LSM is active.
    let f = finding(&all, "landlock");
    if let Ok(lsm) = fs::read_to_string("/sys/kernel/security/lsm") {
        let active = lsm.trim().split(',').any(|l| l == "landlock");
        assert_eq!(
            f["value"].as_str().unwrap().starts_with("ABI "),
            active,
            "{f}"
        );
    }
    assert!(f["value"].as_str().unwrap().starts_with("ABI ") || f["level"] == "weak");

    // Quota on the home base: what the mount's options say.
    let f = finding(&all, &format!("disk quota ({})", dir.path().display()));
    let mount_line = mount_line_of(&info, dir.path());
    let grpquota = mount_line.contains("grpquota") || mount_line.contains("gquota");
    if !grpquota {
        assert_eq!(f["level"], "weak", "{f}");
        let fstype = mount_line
            .split(" - ")
            .nth(1)
            .unwrap()
            .split(' ')
            .next()
            .unwrap();
        assert!(
            f["advice"]
                .as_str()
                .unwrap()
                .contains(&format!("({fstype} on ")),
            "names the filesystem: {f}"
        );
    }

    // Pools: the open TCP one and its readable file are weak; the closed
    // one is not mentioned.
    let f = finding(&all, "pool open");
    assert_eq!(f["level"], "weak");
    let open: Vec<&serde_json::Value> = all.iter().filter(|f| f["check"] == "pool open").collect();
    assert!(
        open.iter().any(|f| f["value"]
            .as_str()
            .unwrap()
            .contains("listen on TCP, no listen.allowed_clients")),
        "{open:?}"
    );
    assert!(
        open.iter()
            .any(|f| f["value"].as_str().unwrap().contains("mode 0644")),
        "{open:?}"
    );
    assert!(!all.iter().any(|f| f["check"] == "pool closed"), "{all:?}");

    // Anything weak: exit 1, and the text form has one line per finding.
    assert_eq!(code, Some(1));
    let text = run_cmd(
        &corral_bin(),
        &[
            "doctor",
            "--fpm-config",
            &conf.display().to_string(),
            "--home-base",
            &dir.path().display().to_string(),
        ],
    );
    assert_eq!(text.code, Some(1));
    let lines: Vec<&str> = text.stdout.lines().collect();
    assert_eq!(lines.len(), all.len() + 1, "{}", text.stdout);
    assert!(lines
        .iter()
        .take(all.len())
        .all(|l| l.starts_with("ok   ") || l.starts_with("WEAK ")));
}

#[test]
fn fixing_the_pools_removes_their_findings() {
    if !require_root() {
        return;
    }
    let dir = common::temp_dir("doctor-fixed");
    let conf = config(dir.path());
    let open = dir.path().join("pool.d/open.conf");
    let text = fs::read_to_string(&open).unwrap();
    fs::write(
        &open,
        text.replace(
            "listen = 127.0.0.1",
            "listen.allowed_clients = 192.0.2.1\nlisten = 127.0.0.1",
        ),
    )
    .unwrap();
    fs::set_permissions(&open, fs::Permissions::from_mode(0o600)).unwrap();
    let (_, all, out) = doctor(&conf, dir.path());
    assert!(!all.iter().any(|f| f["check"] == "pool open"), "{out}");
    let f = finding(&all, &format!("pools ({})", conf.display()));
    assert_eq!(
        (f["level"].as_str(), f["value"].as_str()),
        (Some("ok"), Some("2 pool(s)"))
    );
}

/// The mountinfo line of the mount holding `p` (longest mount point).
fn mount_line_of(info: &str, p: &Path) -> String {
    let p = fs::canonicalize(p).unwrap();
    info.lines()
        .filter(|l| {
            let point = l.split(' ').nth(4).unwrap();
            p.starts_with(point)
        })
        .max_by_key(|l| l.split(' ').nth(4).unwrap().len())
        .unwrap()
        .to_string()
}
