//! The writers against fake cgroupfs trees: temp directories holding the
//! control files the kernel would show, so what is written is checked to
//! the byte, without root. The real hierarchies are tested in
//! `tests/cgroup_real.rs` (root only).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::Duration;

use super::*;
use crate::Limits;

/// A fake cgroup: `dir` with these control files, each with its content.
fn cg(dir: &Path, files: &[(&str, &str)]) {
    fs::create_dir_all(dir).unwrap();
    for (name, content) in files {
        fs::write(dir.join(name), content).unwrap();
    }
}

fn read(path: impl AsRef<Path>) -> String {
    fs::read_to_string(path.as_ref()).unwrap_or_else(|e| panic!("{}: {e}", path.as_ref().display()))
}

fn all_limits() -> Limits {
    Limits {
        memory_max: Some(256 << 20),
        swap_max: Some(64 << 20),
        cpu_weight: Some(50),
        cpu_max_percent: Some(50),
        pids_max: Some(64),
        io_weight: Some(200),
    }
}

/// A process to be killed, listed in a fake cgroup.procs.
fn sleeper() -> Child {
    Command::new("sleep").arg("30").spawn().expect("sleep")
}

/// The signal `child` died of, waiting up to 2 s.
fn death_signal(child: &mut Child) -> Option<i32> {
    use std::os::unix::process::ExitStatusExt;
    for _ in 0..200 {
        if let Some(st) = child.try_wait().unwrap() {
            return st.signal();
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = child.kill();
    None
}

/// A unified hierarchy whose our-cgroup is `own`, with `controllers`.
fn v2_tree(own: &Path, controllers: &str) {
    cg(
        own,
        &[
            ("cgroup.controllers", controllers),
            ("cgroup.subtree_control", ""),
            ("cgroup.procs", ""),
        ],
    );
    cg(&own.join("corral"), &[("cgroup.subtree_control", "")]);
}

const V2_POOL_FILES: &[(&str, &str)] = &[
    ("memory.max", "max\n"),
    ("memory.swap.max", "max\n"),
    ("cpu.weight", "100\n"),
    ("cpu.max", "max 100000\n"),
    ("pids.max", "max\n"),
    ("io.weight", "default 100\n"),
];

#[test]
fn v2_writes_every_limit_and_enables_controllers_down_the_path() {
    let t = tempfile::tempdir().unwrap();
    let own = t.path().join("corral.service");
    v2_tree(&own, "cpuset cpu io memory hugetlb pids rdma misc\n");
    let (mut tree, _) = Tree::open(Hierarchy::v2_at(&own, false), "corral").unwrap();
    cg(&own.join("corral/www"), V2_POOL_FILES);
    let applied = tree.pool("www", &all_limits(), &Limits::default()).unwrap();
    assert_eq!(
        applied.to_string(),
        "cgroup v2: memory.max=268435456, memory.swap.max=67108864, cpu.weight=50, \
         cpu.max=50000 100000, pids.max=64, io.weight=default 200"
    );
    let pool = own.join("corral/www");
    assert_eq!(read(pool.join("memory.max")), "268435456");
    assert_eq!(read(pool.join("memory.swap.max")), "67108864");
    assert_eq!(read(pool.join("cpu.weight")), "50");
    assert_eq!(read(pool.join("cpu.max")), "50000 100000");
    assert_eq!(read(pool.join("pids.max")), "64");
    assert_eq!(read(pool.join("io.weight")), "default 200");
    for dir in [own.clone(), own.join("corral")] {
        assert_eq!(
            read(dir.join("cgroup.subtree_control")),
            "+memory +pids +cpu +io",
            "{}",
            dir.display()
        );
    }
}

#[test]
fn v2_reports_what_the_kernel_lacks_and_writes_the_rest() {
    let t = tempfile::tempdir().unwrap();
    let own = t.path().join("svc");
    v2_tree(&own, "memory pids\n");
    let (mut tree, _) = Tree::open(Hierarchy::v2_at(&own, false), "corral").unwrap();
    // No swap accounting: no memory.swap.max.
    cg(
        &own.join("corral/www"),
        &[("memory.max", "max\n"), ("pids.max", "max\n")],
    );
    let applied = tree.pool("www", &all_limits(), &Limits::default()).unwrap();
    assert_eq!(
        applied.to_string(),
        "cgroup v2: memory.max=268435456, pids.max=64; lacking: cpu weight (no cpu controller), \
         cpu cap (no cpu controller), io weight (no io controller), \
         swap limit (no memory.swap.max: swap accounting is off)"
    );
    assert_eq!(read(own.join("cgroup.subtree_control")), "+memory +pids");
}

#[test]
fn v2_a_reload_changes_limits_and_resets_the_ones_dropped() {
    let t = tempfile::tempdir().unwrap();
    let own = t.path().join("svc");
    v2_tree(&own, "cpu io memory pids\n");
    let (mut tree, _) = Tree::open(Hierarchy::v2_at(&own, false), "corral").unwrap();
    cg(&own.join("corral/www"), V2_POOL_FILES);
    let first = all_limits();
    tree.pool("www", &first, &Limits::default()).unwrap();
    // The file now says "memory pids cpu io" as the kernel would show it.
    fs::write(own.join("cgroup.subtree_control"), "cpu io memory pids\n").unwrap();
    let second = Limits {
        memory_max: Some(128 << 20),
        pids_max: Some(32),
        ..Default::default()
    };
    let applied = tree.pool("www", &second, &first).unwrap();
    assert_eq!(
        applied.to_string(),
        "cgroup v2: memory.max=134217728, pids.max=32"
    );
    let pool = own.join("corral/www");
    assert_eq!(read(pool.join("memory.swap.max")), "max");
    assert_eq!(read(pool.join("cpu.weight")), "100");
    assert_eq!(read(pool.join("cpu.max")), "max 100000");
    assert_eq!(read(pool.join("io.weight")), "default 100");
    assert_eq!(
        read(own.join("cgroup.subtree_control")),
        "cpu io memory pids\n",
        "nothing enabled twice"
    );
}

#[test]
fn v2_the_master_leaves_a_delegated_cgroup_before_enabling_controllers() {
    let t = tempfile::tempdir().unwrap();
    let own = t.path().join("corral.service");
    v2_tree(&own, "memory pids\n");
    let me = std::process::id().to_string();
    fs::write(own.join("cgroup.procs"), format!("{me}\n")).unwrap();
    cg(&own.join("master"), &[("cgroup.procs", "")]);
    let (_, report) = Tree::open(Hierarchy::v2_at(&own, false), "corral").unwrap();
    assert_eq!(read(own.join("master/cgroup.procs")), me);
    assert_eq!(
        report.applied,
        vec![format!(
            "master moved into {}",
            own.join("master").display()
        )]
    );
}

#[test]
fn v2_the_master_stays_where_others_are_and_says_why() {
    let t = tempfile::tempdir().unwrap();
    let own = t.path().join("session");
    v2_tree(&own, "memory pids\n");
    fs::write(
        own.join("cgroup.procs"),
        format!("1\n{}\n", std::process::id()),
    )
    .unwrap();
    let (_, report) = Tree::open(Hierarchy::v2_at(&own, false), "corral").unwrap();
    assert!(!own.join("master").exists());
    assert!(
        report.lacking[0].contains("holds other processes besides the master"),
        "{report:?}"
    );
    // At the hierarchy's root nothing needs to move.
    let root = t.path().join("root");
    v2_tree(&root, "memory\n");
    fs::write(
        root.join("cgroup.procs"),
        format!("{}\n", std::process::id()),
    )
    .unwrap();
    let (_, report) = Tree::open(Hierarchy::v2_at(&root, true), "corral").unwrap();
    assert_eq!(report, Report::default());
}

#[test]
fn v2_leaves_per_generation_and_cgroup_kill() {
    let t = tempfile::tempdir().unwrap();
    let own = t.path().join("svc");
    v2_tree(&own, "memory pids\n");
    let (mut tree, _) = Tree::open(Hierarchy::v2_at(&own, false), "corral").unwrap();
    tree.pool("www", &Limits::default(), &Limits::default())
        .unwrap();
    let g7 = tree.leaf("www", 7).unwrap();
    let g9 = tree.leaf("www", 9).unwrap();
    assert_eq!(g7, vec![own.join("corral/www/g7/cgroup.procs")]);
    assert_eq!(g9, vec![own.join("corral/www/g9/cgroup.procs")]);
    cg(
        &own.join("corral/www/g7"),
        &[("cgroup.procs", "4242\n4243\n"), ("cgroup.kill", "")],
    );
    cg(
        &own.join("corral/www/g9"),
        &[("cgroup.procs", "5000\n"), ("cgroup.kill", "")],
    );
    let killed = tree.kill("www", 7).unwrap();
    assert_eq!(read(own.join("corral/www/g7/cgroup.kill")), "1");
    assert_eq!(killed.processes, 2);
    assert_eq!(
        read(own.join("corral/www/g9/cgroup.kill")),
        "",
        "g9 untouched"
    );
}

#[test]
fn v2_without_cgroup_kill_freezes_and_signals() {
    let t = tempfile::tempdir().unwrap();
    let own = t.path().join("svc");
    v2_tree(&own, "memory pids\n");
    let (mut tree, _) = Tree::open(Hierarchy::v2_at(&own, false), "corral").unwrap();
    tree.leaf("www", 3).unwrap();
    let mut victim = sleeper();
    cg(
        &own.join("corral/www/g3"),
        &[
            ("cgroup.procs", &format!("{}\n", victim.id())),
            ("cgroup.freeze", "0\n"),
            ("cgroup.events", "populated 1\nfrozen 1\n"),
        ],
    );
    let killed = tree.kill("www", 3).unwrap();
    assert_eq!(death_signal(&mut victim), Some(libc::SIGKILL));
    assert_eq!(killed.processes, 1);
    assert_eq!(read(own.join("corral/www/g3/cgroup.freeze")), "0", "thawed");
}

#[test]
fn v2_usage_of_a_pool() {
    let t = tempfile::tempdir().unwrap();
    let own = t.path().join("svc");
    v2_tree(&own, "memory pids\n");
    let (mut tree, _) = Tree::open(Hierarchy::v2_at(&own, false), "corral").unwrap();
    tree.pool("www", &Limits::default(), &Limits::default())
        .unwrap();
    cg(
        &own.join("corral/www"),
        &[
            (
                "cpu.stat",
                "usage_usec 1500000\nuser_usec 1000000\nsystem_usec 500000\n",
            ),
            ("memory.current", "52428800\n"),
            (
                "memory.events",
                "low 0\nhigh 0\nmax 4\noom 1\noom_kill 1\noom_group_kill 0\n",
            ),
            ("pids.current", "3\n"),
        ],
    );
    assert_eq!(
        tree.usage("www"),
        Some(Usage {
            cpu_usec: Some(1_500_000),
            memory_bytes: Some(52_428_800),
            oom_kills: Some(1),
            pids: Some(3),
        })
    );
}

/// Six separate v1 hierarchies, as on the build machines.
fn v1_roots(base: &Path) -> Vec<(&'static [&'static str], PathBuf)> {
    let names: [&'static [&'static str]; 6] = [
        &["memory"],
        &["cpu"],
        &["cpuacct"],
        &["pids"],
        &["blkio"],
        &["freezer"],
    ];
    names.iter().map(|c| (*c, base.join(c[0]))).collect()
}

fn v1_hierarchy(base: &Path) -> Hierarchy {
    let roots = v1_roots(base);
    for (_, dir) in &roots {
        fs::create_dir_all(dir).unwrap();
    }
    Hierarchy::v1_at(&roots)
}

#[test]
fn v1_writes_every_limit_in_its_own_hierarchy() {
    let t = tempfile::tempdir().unwrap();
    let b = t.path();
    let (mut tree, _) = Tree::open(v1_hierarchy(b), "corral").unwrap();
    cg(
        &b.join("memory/corral/www"),
        &[
            ("memory.limit_in_bytes", "9223372036854771712\n"),
            ("memory.memsw.limit_in_bytes", "9223372036854771712\n"),
            ("memory.use_hierarchy", "1\n"),
        ],
    );
    cg(
        &b.join("cpu/corral/www"),
        &[
            ("cpu.shares", "1024\n"),
            ("cpu.cfs_period_us", "100000\n"),
            ("cpu.cfs_quota_us", "-1\n"),
        ],
    );
    cg(&b.join("pids/corral/www"), &[("pids.max", "max\n")]);
    cg(
        &b.join("blkio/corral/www"),
        &[("blkio.bfq.weight", "100\n")],
    );
    let applied = tree.pool("www", &all_limits(), &Limits::default()).unwrap();
    assert_eq!(
        applied.to_string(),
        "cgroup v1: memory.limit_in_bytes=268435456, memory.memsw.limit_in_bytes=335544320, \
         cpu.shares=512, cpu.cfs_quota_us=50000, pids.max=64, blkio.bfq.weight=200"
    );
    assert_eq!(
        read(b.join("memory/corral/www/memory.limit_in_bytes")),
        "268435456"
    );
    assert_eq!(
        read(b.join("memory/corral/www/memory.memsw.limit_in_bytes")),
        "335544320"
    );
    assert_eq!(read(b.join("cpu/corral/www/cpu.shares")), "512");
    assert_eq!(read(b.join("cpu/corral/www/cpu.cfs_period_us")), "100000");
    assert_eq!(read(b.join("cpu/corral/www/cpu.cfs_quota_us")), "50000");
    assert_eq!(read(b.join("pids/corral/www/pids.max")), "64");
    assert_eq!(read(b.join("blkio/corral/www/blkio.bfq.weight")), "200");
    for root in ["cpuacct", "freezer"] {
        assert!(b.join(root).join("corral/www").is_dir(), "{root}");
    }
}

#[test]
fn v1_cfq_weight_and_lacking_controllers() {
    let t = tempfile::tempdir().unwrap();
    let b = t.path();
    // memory without swap accounting, blkio with CFQ, no pids hierarchy.
    let roots: Vec<(&[&str], PathBuf)> = vec![
        (&["memory"], b.join("memory")),
        (&["cpu", "cpuacct"], b.join("cpu,cpuacct")),
        (&["blkio"], b.join("blkio")),
    ];
    for (_, dir) in &roots {
        fs::create_dir_all(dir).unwrap();
    }
    let (mut tree, _) = Tree::open(Hierarchy::v1_at(&roots), "corral").unwrap();
    cg(
        &b.join("memory/corral/www"),
        &[("memory.limit_in_bytes", "-1\n")],
    );
    cg(
        &b.join("cpu,cpuacct/corral/www"),
        &[("cpu.shares", "1024\n")],
    );
    cg(&b.join("blkio/corral/www"), &[("blkio.weight", "500\n")]);
    let limits = Limits {
        memory_max: Some(1 << 30),
        swap_max: Some(0),
        cpu_weight: Some(10000),
        pids_max: Some(16),
        io_weight: Some(300),
        ..Default::default()
    };
    let applied = tree.pool("www", &limits, &Limits::default()).unwrap();
    assert_eq!(
        applied.to_string(),
        "cgroup v1: memory.limit_in_bytes=1073741824, cpu.shares=102400, blkio.weight=1000; \
         lacking: swap limit (no memory.memsw.limit_in_bytes: swap accounting is off), \
         pids limit (no pids controller)"
    );
    assert_eq!(read(b.join("blkio/corral/www/blkio.weight")), "1000");
    // A hierarchy without the controllers corral writes still gets the leaf.
    let leaf = tree.leaf("www", 2).unwrap();
    assert_eq!(
        leaf,
        vec![
            b.join("memory/corral/www/g2/cgroup.procs"),
            b.join("cpu,cpuacct/corral/www/g2/cgroup.procs"),
            b.join("blkio/corral/www/g2/cgroup.procs"),
        ]
    );
}

#[test]
fn v1_a_reload_resets_what_it_dropped() {
    let t = tempfile::tempdir().unwrap();
    let b = t.path();
    let (mut tree, _) = Tree::open(v1_hierarchy(b), "corral").unwrap();
    cg(
        &b.join("memory/corral/www"),
        &[
            ("memory.limit_in_bytes", "-1\n"),
            ("memory.memsw.limit_in_bytes", "-1\n"),
        ],
    );
    cg(
        &b.join("cpu/corral/www"),
        &[
            ("cpu.shares", "1024\n"),
            ("cpu.cfs_period_us", "100000\n"),
            ("cpu.cfs_quota_us", "-1\n"),
        ],
    );
    cg(&b.join("pids/corral/www"), &[("pids.max", "max\n")]);
    let first = all_limits();
    tree.pool("www", &first, &Limits::default()).unwrap();
    let second = Limits {
        pids_max: Some(10),
        ..Default::default()
    };
    assert_eq!(
        tree.pool("www", &second, &first).unwrap().to_string(),
        "cgroup v1: pids.max=10"
    );
    assert_eq!(
        read(b.join("memory/corral/www/memory.limit_in_bytes")),
        "-1"
    );
    assert_eq!(
        read(b.join("memory/corral/www/memory.memsw.limit_in_bytes")),
        "-1"
    );
    assert_eq!(read(b.join("cpu/corral/www/cpu.shares")), "1024");
    assert_eq!(read(b.join("cpu/corral/www/cpu.cfs_quota_us")), "-1");
}

#[test]
fn v1_kill_freezes_signals_every_hierarchy_and_thaws() {
    let t = tempfile::tempdir().unwrap();
    let b = t.path();
    let (mut tree, _) = Tree::open(v1_hierarchy(b), "corral").unwrap();
    tree.leaf("www", 4).unwrap();
    tree.leaf("www", 5).unwrap();
    let (mut a, mut c, mut other) = (sleeper(), sleeper(), sleeper());
    cg(
        &b.join("freezer/corral/www/g4"),
        &[
            ("freezer.state", "THAWED\n"),
            ("cgroup.procs", &format!("{}\n", a.id())),
        ],
    );
    // A process seen in one hierarchy only is killed too.
    cg(
        &b.join("pids/corral/www/g4"),
        &[("cgroup.procs", &format!("{}\n{}\n", a.id(), c.id()))],
    );
    cg(
        &b.join("pids/corral/www/g5"),
        &[("cgroup.procs", &format!("{}\n", other.id()))],
    );
    let killed = tree.kill("www", 4).unwrap();
    assert_eq!(killed.processes, 2);
    assert_eq!(death_signal(&mut a), Some(libc::SIGKILL));
    assert_eq!(death_signal(&mut c), Some(libc::SIGKILL));
    assert_eq!(
        read(b.join("freezer/corral/www/g4/freezer.state")),
        "THAWED"
    );
    assert!(other.try_wait().unwrap().is_none(), "g5 was not touched");
    other.kill().unwrap();
    other.wait().unwrap();
}

#[test]
fn v1_usage_counts_oom_kills_of_leaves_gone_too() {
    let t = tempfile::tempdir().unwrap();
    let b = t.path();
    let (mut tree, _) = Tree::open(v1_hierarchy(b), "corral").unwrap();
    tree.pool("www", &Limits::default(), &Limits::default())
        .unwrap();
    tree.leaf("www", 1).unwrap();
    tree.leaf("www", 2).unwrap();
    let oom = |n: u32| format!("oom_kill_disable 0\nunder_oom 0\noom_kill {n}\n");
    cg(
        &b.join("memory/corral/www"),
        &[
            ("memory.usage_in_bytes", "1048576\n"),
            ("memory.oom_control", &oom(0)),
        ],
    );
    cg(
        &b.join("memory/corral/www/g1"),
        &[("memory.oom_control", &oom(2))],
    );
    cg(
        &b.join("memory/corral/www/g2"),
        &[("memory.oom_control", &oom(1))],
    );
    cg(
        &b.join("cpuacct/corral/www"),
        &[("cpuacct.usage", "2500000000\n")],
    );
    cg(&b.join("pids/corral/www"), &[("pids.current", "4\n")]);
    let want = Usage {
        cpu_usec: Some(2_500_000),
        memory_bytes: Some(1_048_576),
        oom_kills: Some(3),
        pids: Some(4),
    };
    assert_eq!(tree.usage("www"), Some(want));
    tree.remove_leaf("www", 1).unwrap();
    assert!(!b.join("memory/corral/www/g1").exists());
    assert_eq!(
        tree.usage("www").unwrap().oom_kills,
        Some(3),
        "g1's two still count"
    );
}

#[test]
fn removing_leaves_then_the_pool_leaves_nothing() {
    let t = tempfile::tempdir().unwrap();
    let b = t.path();
    let (mut tree, _) = Tree::open(v1_hierarchy(b), "corral").unwrap();
    tree.pool("www", &Limits::default(), &Limits::default())
        .unwrap();
    tree.leaf("www", 1).unwrap();
    tree.leaf("www", 2).unwrap();
    // The pool cannot go while a leaf is there: it waits for the sweep.
    tree.remove_pool("www").unwrap();
    assert!(b.join("pids/corral/www").is_dir());
    tree.remove_leaf("www", 1).unwrap();
    tree.remove_leaf("www", 2).unwrap();
    tree.sweep();
    assert!(tree.pending().is_empty(), "{:?}", tree.pending());
    for (_, root) in v1_roots(b) {
        assert!(!root.join("corral/www").exists(), "{}", root.display());
    }
    assert!(tree.close(Duration::from_millis(100)));
    assert!(!b.join("memory/corral").exists());
}

#[test]
fn opening_kills_and_removes_what_a_previous_master_left() {
    let t = tempfile::tempdir().unwrap();
    let b = t.path();
    let mut escapee = sleeper();
    cg(
        &b.join("memory/corral/old/g5"),
        &[("cgroup.procs", &format!("{}\n", escapee.id()))],
    );
    cg(
        &b.join("freezer/corral/old/g5"),
        &[("freezer.state", "THAWED\n")],
    );
    let (tree, report) = Tree::open(v1_hierarchy(b), "corral").unwrap();
    assert_eq!(death_signal(&mut escapee), Some(libc::SIGKILL));
    assert_eq!(
        report.applied,
        vec!["1 processes left by a previous master killed".to_string()]
    );
    // The fake list never empties; the kernel's would once it died.
    fs::write(b.join("memory/corral/old/g5/cgroup.procs"), "").unwrap();
    let mut tree = tree;
    tree.sweep();
    assert!(!b.join("memory/corral/old").exists());
    assert!(tree.pending().is_empty());
}

#[test]
fn names_are_one_path_component() {
    let t = tempfile::tempdir().unwrap();
    let (mut tree, _) = Tree::open(v1_hierarchy(t.path()), "corral").unwrap();
    for bad in ["", ".", "..", "a/b", "../../etc", "x\ny"] {
        assert!(
            matches!(
                tree.pool(bad, &Limits::default(), &Limits::default()),
                Err(CgroupError::BadName(_))
            ),
            "{bad:?}"
        );
    }
    assert!(Tree::open(v1_hierarchy(t.path()), "../up").is_err());
    // A control file in the way is not a cgroup.
    fs::write(t.path().join("memory/corral/tasks"), "").unwrap();
    assert!(matches!(
        tree.pool("tasks", &Limits::default(), &Limits::default()),
        Err(CgroupError::NotACgroup { .. })
    ));
}

#[test]
fn choosing_between_v2_and_v1() {
    let v2 = V2Root {
        own: PathBuf::from("/sys/fs/cgroup/system.slice/corral.service"),
        is_root: false,
    };
    let v1 = vec![V1Root {
        controllers: vec!["memory".into()],
        own: PathBuf::from("/sys/fs/cgroup/memory"),
    }];
    let both = Found {
        v2: Some(v2.clone()),
        v1: v1.clone(),
    };
    assert_eq!(
        Hierarchy::choose(both.clone(), "cpu io memory pids\n").unwrap(),
        Hierarchy::V2(v2.clone())
    );
    // Hybrid: systemd's cgroup2 tracks, the controllers are on v1.
    assert_eq!(
        Hierarchy::choose(both.clone(), "").unwrap(),
        Hierarchy::V1(v1.clone())
    );
    // This machine: a cgroup2 with only hugetlb bound to it.
    assert_eq!(
        Hierarchy::choose(both, "hugetlb\n").unwrap(),
        Hierarchy::V1(v1)
    );
    // cgroup2 alone without controllers still contains and kills.
    let bare = Found {
        v2: Some(v2.clone()),
        v1: vec![],
    };
    assert_eq!(Hierarchy::choose(bare, "").unwrap(), Hierarchy::V2(v2));
    assert!(matches!(
        Hierarchy::choose(Found::default(), ""),
        Err(CgroupError::NotMounted)
    ));
}

#[test]
fn conversions() {
    assert_eq!(cpu_shares(100), 1024);
    assert_eq!(cpu_shares(1), 10);
    assert_eq!(cpu_shares(10000), 102_400);
    assert_eq!(cpu_quota(50), 50_000);
    assert_eq!(cpu_quota(200), 200_000);
    assert_eq!(cpu_quota(0), 1000, "the kernel's minimum quota");
}
