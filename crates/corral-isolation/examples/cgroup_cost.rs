//! What a pool's cgroup costs on this host (root): creating a
//! generation's leaf, a process entering it (what a prototype does between
//! fork and exec), and killing a leaf of N processes, N = 10, 100, 500.
//!
//! `cargo run -p corral-isolation --example cgroup_cost [CGROUP2_DIR]`
//! (with a directory: that cgroup2, e.g. /sys/fs/cgroup/unified, as the
//! hierarchy's root, instead of what the host would choose)

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use corral_isolation::cgroup::{Hierarchy, Tree};
use corral_isolation::Limits;

fn main() {
    let h = match std::env::args().nth(1) {
        Some(dir) => Hierarchy::v2_at(dir, true),
        None => Hierarchy::detect().expect("a cgroup hierarchy"),
    };
    let version = h.version();
    let name = format!("corral-cost-{}", std::process::id());
    let (mut tree, _) = Tree::open(h, &name).expect("open (as root)");
    let limits = Limits {
        pids_max: Some(2000),
        ..Default::default()
    };
    tree.pool("bench", &limits, &Limits::default())
        .expect("pool");

    let t = Instant::now();
    let rounds = 50;
    for g in 0..rounds {
        tree.leaf("bench", 1000 + g).expect("leaf");
    }
    let create = t.elapsed() / rounds as u32;
    for g in 0..rounds {
        let _ = tree.remove_leaf("bench", 1000 + g);
    }

    let procs = tree.leaf("bench", 1).expect("leaf");
    let join = mean_join(&procs, 50);
    println!("cgroup {version}: leaf created in {create:?}, a process enters it in {join:?}");

    for n in [10, 100, 500] {
        let mut sh = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "read _; for i in $(seq {n}); do sleep 300 & done; wait"
            ))
            .stdin(Stdio::piped())
            .spawn()
            .expect("sh");
        for f in &procs {
            std::fs::write(f, sh.id().to_string()).expect("enter");
        }
        use std::io::Write;
        sh.stdin.take().unwrap().write_all(b"\n").unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while tree.pids("bench", 1).len() < n + 1 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        let k = tree.kill("bench", 1).expect("kill");
        let _ = sh.wait();
        println!(
            "cgroup {version}: killed {} processes in {:?} (empty: {})",
            k.processes, k.took, k.empty
        );
    }
    let _ = tree.remove_leaf("bench", 1);
    let _ = tree.remove_pool("bench");
    tree.close(Duration::from_secs(2));
}

/// Mean time for a fresh child to write itself into every `procs` file,
/// measured in the child: the prototype's cost between fork and exec.
fn mean_join(procs: &[PathBuf], n: u32) -> Duration {
    use corral_sys::process::{exit_now, fork, Forked};
    use std::io::{Read, Write};
    let mut total = Duration::ZERO;
    for _ in 0..n {
        let (mut ours, mut theirs) = std::os::unix::net::UnixStream::pair().expect("pair");
        match fork().expect("fork") {
            Forked::Child => {
                let t = Instant::now();
                for f in procs {
                    let _ = std::fs::write(f, "0");
                }
                let ns = t.elapsed().as_nanos() as u64;
                let _ = theirs.write_all(&ns.to_le_bytes());
                exit_now(0);
            }
            Forked::Parent(pid) => {
                drop(theirs);
                let mut b = [0u8; 8];
                ours.read_exact(&mut b).expect("child's time");
                total += Duration::from_nanos(u64::from_le_bytes(b));
                let _ = corral_sys::nix::sys::wait::waitpid(pid, None);
            }
        }
    }
    total / n
}
