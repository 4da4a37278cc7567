//! The writers on this machine's real hierarchies (root only): cgroup v1
//! with its controllers, and the controller-less cgroup2 at
//! /sys/fs/cgroup/unified for what v2 can do without controllers
//! (mkdir, cgroup.procs, cgroup.kill). Each test uses a subtree of its own
//! and removes it.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use corral_isolation::cgroup::{Hierarchy, Tree, Version};
use corral_isolation::Limits;

fn skip(why: &str) {
    eprintln!("SKIPPED: {why}");
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(2) == Some("0"))
        })
        .unwrap_or(false)
}

/// A shell that waits for a line on stdin, then runs `script`: it is
/// moved into a leaf first, so what it forks starts inside.
fn shell(script: &str) -> Child {
    Command::new("sh")
        .arg("-c")
        .arg(format!("read _; {script}"))
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("sh")
}

fn enter(child: &Child, procs: &[PathBuf]) {
    for f in procs {
        std::fs::write(f, child.id().to_string())
            .unwrap_or_else(|e| panic!("{}: {e}", f.display()));
    }
}

fn go(child: &mut Child) {
    child.stdin.take().unwrap().write_all(b"\n").unwrap();
}

fn wait_for(what: &str, timeout: Duration, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Alive and not a zombie.
fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')
                .map(|(_, r)| r.trim_start().chars().next())
        })
        .is_some_and(|state| state != Some('Z'))
}

fn read(dir: &Path, file: &str) -> String {
    std::fs::read_to_string(dir.join(file))
        .unwrap_or_else(|e| panic!("{}/{file}: {e}", dir.display()))
        .trim()
        .to_string()
}

/// Removes a test's subtree even when an assertion failed half-way: kill
/// what is listed, then rmdir bottom-up.
struct Cleanup(Vec<PathBuf>);

impl Cleanup {
    fn new(h: &Hierarchy, name: &str) -> Cleanup {
        Cleanup(match h {
            Hierarchy::V2(r) => vec![r.own.join(name)],
            Hierarchy::V1(roots) => roots.iter().map(|r| r.own.join(name)).collect(),
        })
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        fn dirs(d: &Path, out: &mut Vec<PathBuf>) {
            for e in std::fs::read_dir(d).into_iter().flatten().flatten() {
                if e.path().is_dir() {
                    dirs(&e.path(), out);
                }
            }
            out.push(d.to_path_buf());
        }
        let mut all = Vec::new();
        for d in self.0.iter().filter(|d| d.exists()) {
            dirs(d, &mut all);
        }
        for d in &all {
            let procs = std::fs::read_to_string(d.join("cgroup.procs")).unwrap_or_default();
            for pid in procs.lines().filter_map(|l| l.parse::<i32>().ok()) {
                let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
            }
        }
        std::thread::sleep(Duration::from_millis(100));
        for d in &all {
            let _ = std::fs::remove_dir(d);
        }
    }
}

fn subtree(tag: &str) -> String {
    format!("corral-itest-{}-{tag}", std::process::id())
}

/// The pool's directory in the hierarchy that holds `file`.
fn pool_dir(tree: &Tree, file: &str) -> PathBuf {
    tree.leaf_dirs("www", 1)
        .unwrap()
        .into_iter()
        .map(|leaf| leaf.parent().unwrap().to_path_buf())
        .find(|d| d.join(file).exists())
        .unwrap_or_else(|| panic!("no {file}"))
}

#[test]
fn v1_limits_containment_and_kill_on_this_machine() {
    if !is_root() {
        return skip("needs root to create cgroups");
    }
    let h = match Hierarchy::detect() {
        Ok(h) if h.version() == Version::V1 => h,
        other => return skip(&format!("this host's cgroups are not v1: {other:?}")),
    };
    let _cleanup = Cleanup::new(&h, &subtree("v1"));
    let (mut tree, _) = Tree::open(h, &subtree("v1")).unwrap();
    let limits = Limits {
        memory_max: Some(64 << 20),
        cpu_weight: Some(50),
        cpu_max_percent: Some(50),
        pids_max: Some(8),
        io_weight: Some(200),
        ..Default::default()
    };
    let applied = tree.pool("www", &limits, &Limits::default()).unwrap();
    eprintln!("{applied}");
    let text = applied.to_string();
    for want in [
        "memory.limit_in_bytes=67108864",
        "cpu.shares=512",
        "cpu.cfs_quota_us=50000",
        "pids.max=8",
    ] {
        assert!(text.contains(want), "{text}");
    }
    let started = Instant::now();
    let procs = tree.leaf("www", 1).unwrap();
    eprintln!("leaf created in {:?}", started.elapsed());
    assert_eq!(
        read(
            &pool_dir(&tree, "memory.limit_in_bytes"),
            "memory.limit_in_bytes"
        ),
        "67108864"
    );
    assert_eq!(read(&pool_dir(&tree, "cpu.shares"), "cpu.shares"), "512");
    assert_eq!(read(&pool_dir(&tree, "pids.max"), "pids.max"), "8");

    // Raising the limit past memsw, then lowering it, needs the writes in
    // the right order each way.
    if pool_dir(&tree, "memory.limit_in_bytes")
        .join("memory.memsw.limit_in_bytes")
        .exists()
    {
        let with_swap = Limits {
            memory_max: Some(128 << 20),
            swap_max: Some(32 << 20),
            ..limits.clone()
        };
        let a = tree.pool("www", &with_swap, &limits).unwrap();
        assert!(a.report.lacking.is_empty(), "{a}");
        let lower = Limits {
            memory_max: Some(48 << 20),
            swap_max: Some(0),
            ..limits.clone()
        };
        let a = tree.pool("www", &lower, &with_swap).unwrap();
        assert!(a.report.lacking.is_empty(), "{a}");
        let mem = pool_dir(&tree, "memory.memsw.limit_in_bytes");
        assert_eq!(read(&mem, "memory.limit_in_bytes"), "50331648");
        assert_eq!(read(&mem, "memory.memsw.limit_in_bytes"), "50331648");
        tree.pool("www", &limits, &lower).unwrap();
    }

    // A shell in the leaf forks a detached process and a fork bomb; the
    // bomb stops at pids.max and everything goes with one kill.
    let mut sh = shell("setsid sleep 300 & for i in $(seq 30); do sleep 300 & done; wait");
    enter(&sh, &procs);
    go(&mut sh);
    // The shell gives up at the first fork refused ("Cannot fork"), when
    // it and its seven children fill pids.max = 8.
    wait_for("the shell to give up", Duration::from_secs(5), || {
        sh.try_wait().unwrap().is_some()
    });
    let inside = tree.pids("www", 1);
    assert_eq!(inside.len(), 7, "pids.max = 8 held: {inside:?}");
    let in_leaf =
        std::fs::read_to_string(format!("/proc/{}/cgroup", inside[inside.len() - 1])).unwrap();
    assert!(
        in_leaf.contains(&format!("{}/www/g1", subtree("v1"))),
        "{in_leaf}"
    );
    let usage = tree.usage("www").unwrap();
    assert_eq!(usage.pids, Some(7));
    assert!(usage.memory_bytes.unwrap() > 0);

    let killed = tree.remove_leaf("www", 1).unwrap();
    eprintln!(
        "v1 kill: {} processes in {:?}, empty {}",
        killed.processes, killed.took, killed.empty
    );
    assert_eq!(killed.processes, 7);
    assert!(killed.empty);
    wait_for("every process gone", Duration::from_secs(2), || {
        inside.iter().all(|&p| !alive(p))
    });
    tree.remove_pool("www").unwrap();
    assert!(
        tree.close(Duration::from_secs(2)),
        "left: {:?}",
        tree.pending()
    );
    for d in tree.leaf_dirs("www", 1).unwrap() {
        assert!(
            !d.parent().unwrap().parent().unwrap().exists(),
            "{}",
            d.display()
        );
    }
}

#[test]
fn v2_without_controllers_contains_and_kills() {
    if !is_root() {
        return skip("needs root to create cgroups");
    }
    let unified = Path::new("/sys/fs/cgroup/unified");
    if !unified.join("cgroup.procs").exists() {
        return skip("no cgroup2 mounted at /sys/fs/cgroup/unified");
    }
    let self_v2 = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    if !self_v2.lines().any(|l| l == "0::/") {
        return skip("this process is not in the unified root here");
    }
    let h = Hierarchy::v2_at(unified, true);
    let _cleanup = Cleanup::new(&h, &subtree("v2"));
    let (mut tree, _) = Tree::open(h, &subtree("v2")).unwrap();
    let applied = tree
        .pool(
            "www",
            &Limits {
                pids_max: Some(8),
                ..Default::default()
            },
            &Limits::default(),
        )
        .unwrap();
    eprintln!("{applied}");
    if !applied.report.applied.is_empty() {
        return skip("this cgroup2 has controllers; the fake-tree tests cover those");
    }
    assert_eq!(
        applied.to_string(),
        "cgroup v2: no limit applied; lacking: pids limit (no pids controller)"
    );
    let procs = tree.leaf("www", 4).unwrap();
    let leaf = procs[0].parent().unwrap().to_path_buf();
    let mut sh = shell("setsid sleep 300 & sleep 300 & wait");
    enter(&sh, &procs);
    go(&mut sh);
    wait_for("the forks", Duration::from_secs(5), || {
        tree.pids("www", 4).len() == 3
    });
    let inside = tree.pids("www", 4);
    let cg = std::fs::read_to_string(format!("/proc/{}/cgroup", inside[2])).unwrap();
    assert!(
        cg.contains(&format!("0::/{}/www/g4", subtree("v2"))),
        "{cg}"
    );
    assert!(
        leaf.join("cgroup.kill").exists(),
        "Linux >= 5.14 has cgroup.kill"
    );
    let killed = tree.remove_leaf("www", 4).unwrap();
    eprintln!(
        "v2 cgroup.kill: {} processes in {:?}, empty {}",
        killed.processes, killed.took, killed.empty
    );
    assert_eq!(killed.processes, 3);
    assert!(killed.empty);
    let _ = sh.wait();
    assert!(inside.iter().all(|&p| !alive(p)));
    tree.remove_pool("www").unwrap();
    assert!(
        tree.close(Duration::from_secs(2)),
        "left: {:?}",
        tree.pending()
    );
    assert!(!unified.join(subtree("v2")).exists());
}
