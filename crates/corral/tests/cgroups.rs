//! Pools in cgroups, end to end (root): the prototype, its workers and
//! everything tenant PHP starts live in the pool's cgroup with the limits
//! of its `corral.*` lines; a detached process dies with its pool; a fork
//! bomb stops at pids_max and a memory hog is OOM-killed inside its pool
//! while another pool keeps answering; a reload rewrites the limits.
//!
//! Each corral gets a cgroup subtree of its own from the harness
//! (`--cgroup-subtree`), so tests run side by side.

mod common;

use common::*;
use std::fs;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

/// Root, and a cgroup hierarchy corral can write (v1 here, v2 elsewhere).
fn ready() -> bool {
    if !require_root() {
        return false;
    }
    let mounts = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    if !mounts.lines().any(|l| l.contains(" - cgroup")) {
        skip("no cgroup hierarchy mounted");
        return false;
    }
    true
}

/// The directory of `pid`'s cgroup for `controller`: its v1 hierarchy's,
/// or the unified one's when no v1 hierarchy has it.
fn cgroup_dir(pid: i32, controller: &str) -> Option<PathBuf> {
    let member = fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    let mounts = fs::read_to_string("/proc/self/mountinfo").ok()?;
    let mount_of = |v2: bool| {
        mounts.lines().find_map(|l| {
            let (left, right) = l.split_once(" - ")?;
            let mut r = right.split(' ');
            let fstype = r.next()?;
            let opts = r.nth(1).unwrap_or("");
            let ok = if v2 {
                fstype == "cgroup2"
            } else {
                fstype == "cgroup" && opts.split(',').any(|o| o == controller)
            };
            ok.then(|| PathBuf::from(left.split(' ').nth(4).unwrap_or("/")))
        })
    };
    for line in member.lines() {
        let mut it = line.splitn(3, ':');
        let (_, ctls, path) = (it.next()?, it.next()?, it.next()?);
        if ctls.split(',').any(|c| c == controller) {
            return Some(mount_of(false)?.join(path.trim_start_matches('/')));
        }
    }
    let path = member.lines().find_map(|l| l.strip_prefix("0::"))?;
    Some(mount_of(true)?.join(path.trim_start_matches('/')))
}

fn is_v1(pid: i32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/cgroup")).is_ok_and(|s| s.contains(":memory:"))
}

fn read(dir: &Path, file: &str) -> String {
    fs::read_to_string(dir.join(file))
        .unwrap_or_else(|e| panic!("{}/{file}: {e}", dir.display()))
        .trim()
        .to_string()
}

/// The master's children: the prototypes.
fn prototypes(s: &Server) -> Vec<i32> {
    children_of(s.pid())
        .into_iter()
        .filter(|&p| pid_alive(p) && !is_zygote(p))
        .collect()
}

fn wait_until(what: &str, timeout: Duration, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        thread::sleep(Duration::from_millis(20));
    }
}

/// A PHP script in the server's docroot.
fn script(s: &Server, name: &str, php: &str) {
    fs::write(s.www().join(name), php).expect("write script");
}

/// A PHP script that starts a detached process (setsid, its shell parent
/// gone at once) and says its pid.
const DETACH: &str = r#"<?php
echo trim(shell_exec('/usr/bin/setsid /bin/sleep 300 > /dev/null 2>&1 & echo $!'));
"#;

fn detach_in(s: &Server, pool: usize) -> i32 {
    let r = s
        .try_get_to(pool, "detach.php", "")
        .expect("detach request");
    r.body
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("no pid from detach.php: {:?} {:?}", r.body, r.stderr))
}

/// The value of `key` in pool `pool`'s `corral status --json`.
fn status_cgroup(s: &Server, pool: &str) -> serde_json::Value {
    let out = s.control(&["status", "--json"]);
    let all: serde_json::Value = serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("status --json: {e}: {}", out.all()));
    all.as_array()
        .and_then(|a| a.iter().find(|p| p["pool"] == pool))
        .map(|p| p["cgroup"].clone())
        .unwrap_or(serde_json::Value::Null)
}

/// `[pool]` with its own socket and `extra` lines, run by nobody.
fn pool(name: &str, extra: &str) -> String {
    format!(
        "[{name}]\nlisten = {{dir}}/{name}.sock\nuser = {{user}}\npm = static\npm.max_children = 2\n{extra}\n"
    )
}

fn conf(pools: &[String]) -> String {
    format!(
        "[global]\nerror_log = {{dir}}/error.log\n\n{}",
        pools.join("\n")
    )
}

#[test]
fn a_pool_runs_inside_its_cgroup_with_its_limits() {
    if !ready() {
        return;
    }
    let mut s = Corral::start(&conf(&[pool(
        "www",
        "corral.memory_max = 256M\ncorral.pids_max = 64\ncorral.cpu_weight = 50",
    )]));
    s.wait_workers(Duration::from_secs(5), |n| n == 2);
    let protos = prototypes(&s);
    assert_eq!(protos.len(), 1);
    let proto = protos[0];
    let v1 = is_v1(proto);
    let line = s.expect_log("[pool www] cgroup v", Duration::from_secs(1));
    let want = if v1 {
        "memory.limit_in_bytes=268435456, cpu.shares=512, pids.max=64"
    } else {
        "memory.max=268435456, cpu.weight=50, pids.max=64"
    };
    assert!(line.contains(want), "{line}");

    let leaf = cgroup_dir(proto, "memory").unwrap();
    assert!(
        leaf.ends_with(format!("{}/www", s.cgroup_subtree()))
            || leaf
                .parent()
                .is_some_and(|p| p.ends_with(format!("{}/www", s.cgroup_subtree()))),
        "the prototype is in its pool's leaf: {}",
        leaf.display()
    );
    let leaf_name = leaf.file_name().unwrap().to_string_lossy().into_owned();
    assert!(leaf_name.starts_with('g'), "{}", leaf.display());
    for w in s.worker_pids() {
        for ctl in ["memory", "pids", "cpu"] {
            assert_eq!(
                cgroup_dir(w, ctl),
                cgroup_dir(proto, ctl),
                "worker {w} is where its prototype is ({ctl})"
            );
        }
    }
    // What PHP forks is inside too.
    script(
        &s,
        "cg.php",
        "<?php echo shell_exec('cat /proc/self/cgroup');",
    );
    let r = s.get("cg.php", "");
    assert!(
        r.body
            .contains(&format!("{}/www/{leaf_name}", s.cgroup_subtree())),
        "{}",
        r.body
    );

    let pool_dir = |ctl| {
        cgroup_dir(proto, ctl)
            .unwrap()
            .parent()
            .unwrap()
            .to_path_buf()
    };
    if v1 {
        assert_eq!(
            read(&pool_dir("memory"), "memory.limit_in_bytes"),
            "268435456"
        );
        assert_eq!(read(&pool_dir("cpu"), "cpu.shares"), "512");
    } else {
        assert_eq!(read(&pool_dir("memory"), "memory.max"), "268435456");
        assert_eq!(read(&pool_dir("cpu"), "cpu.weight"), "50");
    }
    assert_eq!(read(&pool_dir("pids"), "pids.max"), "64");

    let cg = status_cgroup(&s, "www");
    assert!(cg["pids current"].as_u64().unwrap() >= 3, "{cg}");
    assert!(cg["memory bytes"].as_u64().unwrap() > 0, "{cg}");
    assert!(cg["cpu seconds"].as_f64().unwrap() > 0.0, "{cg}");
    let text = s.control(&["status"]).stdout;
    assert!(text.contains("memory bytes:"), "{text}");

    let dirs: Vec<PathBuf> = ["memory", "pids", "cpu"]
        .iter()
        .map(|c| pool_dir(c).parent().unwrap().to_path_buf())
        .collect();
    s.stop();
    for d in dirs {
        assert!(
            !d.exists(),
            "{} removed when the master stopped",
            d.display()
        );
    }
}

#[test]
fn a_detached_process_dies_with_its_pool() {
    if !ready() {
        return;
    }
    let limited = "corral.pids_max = 64";
    let mut s = Corral::start(&conf(&[pool("www", limited), pool("other", limited)]));
    script(&s, "detach.php", DETACH);
    let escapee = detach_in(&s, 0);
    let stays = detach_in(&s, 1);
    wait_until("the shells to exit", Duration::from_secs(2), || {
        !s.worker_pids().contains(&parent_of(escapee))
            && !s.worker_pids().contains(&parent_of(stays))
    });
    assert!(pid_alive(escapee) && pid_alive(stays));
    let proto_www = prototypes(&s)
        .into_iter()
        .find(|&p| cgroup_dir(p, "pids") == cgroup_dir(escapee, "pids"));
    assert!(
        proto_www.is_some(),
        "the setsid'd process is in a prototype's leaf: {:?}",
        cgroup_dir(escapee, "pids")
    );

    // Removed by a reload: its leaf is killed once its prototype is gone.
    s.rewrite_config(&conf(&[pool("other", limited)]));
    let out = s.control(&["reload"]);
    assert!(out.stdout.contains("[pool www] removed"), "{}", out.all());
    let t = Instant::now();
    wait_until(
        "the removed pool's escapee to die",
        Duration::from_secs(10),
        || !pid_alive(escapee),
    );
    eprintln!("escapee gone {:?} after the reload", t.elapsed());
    assert!(pid_alive(stays), "the other pool's process is untouched");

    // Stopped master: every leaf goes.
    let t = Instant::now();
    s.stop();
    assert!(!pid_alive(stays), "an escapee outlived a stopped master");
    eprintln!("master stopped with an escapee in {:?}", t.elapsed());
}

fn parent_of(pid: i32) -> i32 {
    proc_stat(pid).map(|(_, ppid, _)| ppid).unwrap_or(0)
}

#[test]
fn a_fork_bomb_stops_at_pids_max_and_the_rest_is_fine() {
    if !ready() {
        return;
    }
    let mut s = Corral::start(&conf(&[
        pool("bomb", "corral.pids_max = 20"),
        pool("calm", ""),
    ]));
    script(
        &s,
        "bomb.php",
        "<?php echo shell_exec('(for i in $(seq 200); do /bin/sleep 60 </dev/null >/dev/null 2>&1 & done) 2>&1; echo spawned');",
    );
    script(&s, "hi.php", "<?php echo 'hi';");
    let r = s.try_get_to(0, "bomb.php", "").expect("bomb request");
    assert!(
        r.body.contains("fork") || r.body.contains("Resource temporarily unavailable"),
        "forks were refused: {:?}",
        r.body
    );
    let cg = status_cgroup(&s, "bomb");
    eprintln!("bomb: {:?}; cgroup {cg}", r.body.lines().next());
    let pids = cg["pids current"].as_u64().unwrap();
    assert!(pids <= 20, "pids.max holds: {cg}");
    assert!(pids >= 15, "the bomb did fill its pool: {cg}");
    assert!(s.is_running(), "the master is fine");
    let t = Instant::now();
    assert_eq!(
        s.try_get_to(1, "hi.php", "").expect("calm answers").body,
        "hi"
    );
    assert!(t.elapsed() < Duration::from_secs(2));
    let sleepers: Vec<i32> = process_table()
        .into_iter()
        .filter(|&(p, _, _)| cgroup_dir(p, "pids") == cgroup_dir(prototypes(&s)[0], "pids"))
        .map(|(p, _, _)| p)
        .collect();
    s.stop();
    assert!(
        sleepers.iter().all(|&p| !pid_alive(p)),
        "the bomb's processes went with the master"
    );
}

#[test]
fn a_memory_hog_is_oom_killed_inside_its_pool() {
    if !ready() {
        return;
    }
    let Some(python) = require_bin("/usr/bin/python3") else {
        return;
    };
    let s = Corral::start(&conf(&[
        pool("hog", "corral.memory_max = 96M\ncorral.swap_max = 0"),
        pool("calm", ""),
    ]));
    script(
        &s,
        "hog.php",
        &format!(
            "<?php exec('{} -c \"b = bytearray(1 << 30); print(len(b))\" 2>&1', $out, $rc); echo $rc;",
            python.display()
        ),
    );
    script(&s, "hi.php", "<?php echo 'hi';");
    // Pool calm keeps answering while the hog runs.
    let calm = {
        let listen = s.listens[1].clone();
        let www = s.www().to_path_buf();
        thread::spawn(move || {
            let mut worst = Duration::ZERO;
            let end = Instant::now() + Duration::from_secs(3);
            while Instant::now() < end {
                let t = Instant::now();
                let r = request_on(&listen, &script_request(&www, "hi.php", "")).expect("calm");
                assert_eq!(r.body, "hi");
                worst = worst.max(t.elapsed());
                thread::sleep(Duration::from_millis(50));
            }
            worst
        })
    };
    let r = s.try_get_to(0, "hog.php", "").expect("hog request");
    assert_eq!(
        r.body.trim(),
        "137",
        "the hog died of SIGKILL: {:?}",
        r.body
    );
    let worst = calm.join().expect("calm pool kept answering");
    eprintln!("calm pool's slowest answer during the hog: {worst:?}");
    let cg = status_cgroup(&s, "hog");
    assert!(cg["oom kills"].as_u64().unwrap() >= 1, "{cg}");
    assert!(cg["memory bytes"].as_u64().unwrap() <= 96 << 20, "{cg}");
    assert_eq!(
        s.try_get_to(0, "hi.php", "").expect("hog pool serves").body,
        "hi"
    );
}

#[test]
fn a_reload_rewrites_the_limit_files() {
    if !ready() {
        return;
    }
    let mut s = Corral::start(&conf(&[pool(
        "www",
        "corral.pids_max = 64\ncorral.memory_max = 256M",
    )]));
    s.wait_workers(Duration::from_secs(5), |n| n == 2);
    let proto = prototypes(&s)[0];
    let old_leaf = cgroup_dir(proto, "pids").unwrap();
    let pool_dir = old_leaf.parent().unwrap().to_path_buf();
    let mem_pool = cgroup_dir(proto, "memory")
        .unwrap()
        .parent()
        .unwrap()
        .to_path_buf();
    let mem_file = if is_v1(proto) {
        "memory.limit_in_bytes"
    } else {
        "memory.max"
    };
    assert_eq!(read(&pool_dir, "pids.max"), "64");
    s.rewrite_config(&conf(&[pool(
        "www",
        "corral.pids_max = 32\ncorral.memory_max = 128M",
    )]));
    s.signal(libc::SIGUSR2);
    s.expect_log("pids.max=32", Duration::from_secs(5));
    assert_eq!(read(&pool_dir, "pids.max"), "32");
    assert_eq!(read(&mem_pool, mem_file), "134217728");
    // The new generation has a leaf of its own; the old one goes once
    // its prototype has quit.
    wait_until(
        "the old generation's leaf to go",
        Duration::from_secs(10),
        || !old_leaf.exists(),
    );
    let now = prototypes(&s);
    assert_eq!(now.len(), 1);
    assert_ne!(cgroup_dir(now[0], "pids").unwrap(), old_leaf);
    assert_eq!(
        cgroup_dir(now[0], "pids").unwrap().parent().unwrap(),
        pool_dir
    );
}

#[test]
fn a_pool_without_limits_has_no_cgroup() {
    if !ready() {
        return;
    }
    let s = Corral::start(&conf(&[pool("www", "")]));
    s.wait_workers(Duration::from_secs(5), |n| n == 2);
    let proto = prototypes(&s)[0];
    assert_eq!(cgroup_dir(proto, "pids"), cgroup_dir(s.pid(), "pids"));
    assert!(!s.log_contains("cgroup"), "{}", s.log.text());
    assert!(status_cgroup(&s, "www").is_null());
    for ctl in ["pids", "memory"] {
        let subtree = cgroup_dir(s.pid(), ctl).unwrap().join(s.cgroup_subtree());
        assert!(!subtree.exists(), "{}", subtree.display());
    }
}
