//! Emptying a leaf by signals, for where the kernel has no `cgroup.kill`
//! (every v1 host, and v2 before Linux 5.14).
//!
//! A process can fork between the moment the leaf's pids are read and the
//! moment they are signalled; a frozen leaf cannot, so with a freezer one
//! round suffices: freeze, SIGKILL every pid (a frozen process cannot exit
//! either, so no pid is reused under us), thaw, and they die. Without one,
//! reading and killing repeats until the leaf is empty or the time is up;
//! the pids limit bounds how fast a fork bomb can refill it.

use std::path::Path;
use std::time::{Duration, Instant};

use corral_sys::nix::sys::signal::Signal;

use super::{files, Killed};

/// How long a freeze may take to settle before the kill goes ahead anyway
/// (a task in uninterruptible sleep holds it in FREEZING; its SIGKILL
/// waits for it).
const FREEZE_WAIT: Duration = Duration::from_millis(100);

/// A freezer for a leaf: v1's `freezer.state` or v2's `cgroup.freeze`.
pub(crate) struct Freezer<'a> {
    pub dir: &'a Path,
    pub file: &'a str,
    pub freeze: &'a str,
    pub thaw: &'a str,
    /// What the file reads once frozen (v1 `FROZEN`); none where the state
    /// is reported elsewhere (v2's `cgroup.events` "frozen 1").
    pub frozen: Option<&'a str>,
}

impl Freezer<'_> {
    fn freeze(&self) -> bool {
        if files::write(self.dir, self.file, self.freeze).is_err() {
            return false;
        }
        let deadline = Instant::now() + FREEZE_WAIT;
        while Instant::now() < deadline {
            let settled = match self.frozen {
                Some(want) => files::read(self.dir, self.file).is_ok_and(|s| s.trim() == want),
                None => files::keyed(self.dir, "cgroup.events", "frozen") == Some(1),
            };
            if settled {
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        true
    }

    fn thaw(&self) {
        let _ = files::write(self.dir, self.file, self.thaw);
    }
}

/// SIGKILL everything `pids` lists, frozen first when `freezer` can, and
/// wait up to `within` for `pids` to list nothing.
pub(crate) fn by_signals(
    pids: &dyn Fn() -> Vec<i32>,
    freezer: Option<Freezer<'_>>,
    within: Duration,
) -> Killed {
    let start = Instant::now();
    let deadline = start + within;
    let mut killed = std::collections::BTreeSet::new();
    let frozen = freezer.as_ref().is_some_and(Freezer::freeze);
    signal_all(&pids(), &mut killed);
    if let Some(f) = &freezer {
        f.thaw();
    }
    loop {
        let left = pids();
        if left.is_empty() || Instant::now() >= deadline {
            return Killed {
                processes: killed.len(),
                empty: left.is_empty(),
                took: start.elapsed(),
            };
        }
        // Killed while frozen: they are dying, not forking. Otherwise a
        // child may have been forked after the last read.
        if !frozen {
            signal_all(&left, &mut killed);
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Never 0 or a negative pid (a process group, or everyone), never init,
/// never ourselves: a fake or corrupted list must not turn into those.
fn signal_all(pids: &[i32], killed: &mut std::collections::BTreeSet<i32>) {
    let me = std::process::id() as i32;
    for &pid in pids.iter().filter(|&&p| p > 1 && p != me) {
        if corral_sys::signal::kill(pid, Signal::SIGKILL) {
            killed.insert(pid);
        }
    }
}

/// Wait up to `within` for `pids` to list nothing (after v2's cgroup.kill).
pub(crate) fn wait_empty(pids: &dyn Fn() -> Vec<i32>, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if pids().is_empty() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}
