//! A cgroup per pool, holding its limits, with one leaf per generation:
//!
//! ```text
//! <the master's own cgroup>/<subtree>/<pool>/g<N>
//!                           corral    www     g7   (a reload: g7 and g9 side by side)
//! ```
//!
//! The limits sit on `<pool>`, so the generations a reload runs side by
//! side share them, and killing one generation's leaf (when it ends) never
//! touches the other's. Processes live only in leaves: cgroup v2 forbids
//! them in a cgroup that hands controllers to its children.
//!
//! [`Hierarchy`] says where the cgroups are: found from /proc
//! ([`Hierarchy::detect`]), or given as directories, which is how the
//! writers are tested on a fake tree without root. [`Tree`] is corral's
//! subtree in it. v2 (`v2.rs`) is the production target (Debian 12 under
//! systemd with `Delegate=yes`); v1 (`v1.rs`) is what older hosts and
//! the build machines have. A controller the kernel lacks is reported in
//! the [`Report`]'s `lacking`, never an error that stops the pool.

mod detect;
mod files;
mod kill;
mod tree;
mod v1;
mod v2;

use std::path::{Path, PathBuf};

pub use detect::{Found, Membership, Mount, V1Root, V2Root};
pub use tree::Tree;

use crate::{Limits, Report};

/// What can go wrong; each with the path it went wrong at.
#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("no cgroup hierarchy with a usable controller is mounted (see /proc/self/mountinfo)")]
    NotMounted,
    /// Setting up corral's subtree failed earlier, for this reason.
    #[error("{0}")]
    Unavailable(String),
    #[error("cannot create cgroup {}: {source}", path.display())]
    Create {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} is in the way and is not a cgroup", path.display())]
    NotACgroup { path: PathBuf },
    #[error("{0:?} cannot name a cgroup (empty, '.', '..', or with '/' or a control character)")]
    BadName(String),
    #[error("cannot write {value:?} to {}: {source}", path.display())]
    Write {
        path: PathBuf,
        value: String,
        #[source]
        source: std::io::Error,
    },
}

/// cgroup v1 or v2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    V1,
    V2,
}

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Version::V1 => "v1",
            Version::V2 => "v2",
        })
    }
}

/// Where corral's cgroups go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hierarchy {
    V2(V2Root),
    /// One root per mounted v1 hierarchy that has a controller corral uses.
    V1(Vec<V1Root>),
}

impl Hierarchy {
    /// From /proc/self/mountinfo and /proc/self/cgroup: the unified
    /// hierarchy when it has controllers (pure v2); else the v1
    /// controllers (v1, or systemd's hybrid mode, whose cgroup2 only
    /// tracks); else a controller-less cgroup2, which still keeps a pool's
    /// processes together and kills them all.
    pub fn detect() -> Result<Hierarchy, CgroupError> {
        let read = |p: &str| {
            std::fs::read_to_string(p).map_err(|source| CgroupError::Read {
                path: PathBuf::from(p),
                source,
            })
        };
        let found = detect::locate(
            &detect::mounts(&read("/proc/self/mountinfo")?),
            &detect::memberships(&read("/proc/self/cgroup")?),
        );
        let v2_controllers = found
            .v2
            .as_ref()
            .and_then(|r| files::read(&r.own, "cgroup.controllers").ok())
            .unwrap_or_default();
        Hierarchy::choose(found, &v2_controllers)
    }

    /// The choice [`Hierarchy::detect`] makes, given what it found and the
    /// unified hierarchy's `cgroup.controllers` at our cgroup.
    /// A cgroup2 counts as having controllers only with one corral uses:
    /// a hybrid host may bind a leftover (hugetlb, misc) there.
    pub fn choose(found: Found, v2_controllers: &str) -> Result<Hierarchy, CgroupError> {
        let useful = v2_controllers
            .split_whitespace()
            .any(|c| ["memory", "cpu", "pids", "io"].contains(&c));
        match found {
            Found { v2: Some(r), .. } if useful => Ok(Hierarchy::V2(r)),
            Found { v1, .. } if !v1.is_empty() => Ok(Hierarchy::V1(v1)),
            Found { v2: Some(r), .. } => Ok(Hierarchy::V2(r)),
            _ => Err(CgroupError::NotMounted),
        }
    }

    /// A unified hierarchy whose cgroup for us is `own` (a fake tree in
    /// tests, or a chosen directory of a real one).
    pub fn v2_at(own: impl Into<PathBuf>, is_root: bool) -> Hierarchy {
        Hierarchy::V2(V2Root {
            own: own.into(),
            is_root,
        })
    }

    /// v1 hierarchies given as (controllers, our cgroup's directory).
    pub fn v1_at(roots: &[(&[&str], PathBuf)]) -> Hierarchy {
        Hierarchy::V1(
            roots
                .iter()
                .map(|(c, own)| V1Root {
                    controllers: c.iter().map(|s| s.to_string()).collect(),
                    own: own.clone(),
                })
                .collect(),
        )
    }

    pub fn version(&self) -> Version {
        match self {
            Hierarchy::V2(_) => Version::V2,
            Hierarchy::V1(_) => Version::V1,
        }
    }
}

/// A pool's use of resources, from its cgroup; `None` where the kernel
/// does not count it (a missing controller).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// CPU time of every process the pool ran, microseconds.
    pub cpu_usec: Option<u64>,
    pub memory_bytes: Option<u64>,
    /// Processes the kernel's OOM killer ended inside the pool.
    pub oom_kills: Option<u64>,
    /// Processes and threads now.
    pub pids: Option<u64>,
}

/// What creating or updating a pool's cgroup did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    pub version: Version,
    pub report: Report,
}

/// `cgroup v1: memory.limit_in_bytes=268435456, pids.max=64; lacking: io weight (no blkio)`
impl std::fmt::Display for Applied {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "cgroup {}: ", self.version)?;
        if self.report.applied.is_empty() {
            f.write_str("no limit applied")?;
        } else {
            f.write_str(&self.report.applied.join(", "))?;
        }
        if !self.report.lacking.is_empty() {
            write!(f, "; lacking: {}", self.report.lacking.join(", "))?;
        }
        Ok(())
    }
}

/// What a kill did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Killed {
    /// Processes sent SIGKILL (v1) or found in the leaf (v2 cgroup.kill).
    pub processes: usize,
    /// The leaf was empty when the kill returned.
    pub empty: bool,
    pub took: std::time::Duration,
}

/// The two writers, behind one face.
pub(crate) trait Backend {
    fn version(&self) -> Version;
    /// Once, before the first pool: make `subtree` (v2: first move the
    /// master out of the cgroup whose controllers it hands down).
    fn prepare(&self, subtree: &Path, report: &mut Report) -> Result<(), CgroupError>;
    /// mkdir `rel` wherever it goes.
    fn create(&self, rel: &Path) -> Result<(), CgroupError>;
    /// Write `limits` into `rel`; knobs set in `previous` and unset now go
    /// back to the kernel's default.
    fn apply(&self, rel: &Path, limits: &Limits, previous: &Limits, report: &mut Report);
    /// The `cgroup.procs` files a process writes "0" into to enter `rel`.
    fn procs_files(&self, rel: &Path) -> Vec<PathBuf>;
    /// The processes in `rel`.
    fn pids(&self, rel: &Path) -> Vec<i32>;
    /// SIGKILL everything in the leaf `rel`, waiting up to `within` for it
    /// to empty.
    fn kill(&self, rel: &Path, within: std::time::Duration) -> Killed;
    /// `rel`'s usage (a pool: its leaves included).
    fn usage(&self, rel: &Path) -> Usage;
    /// OOM kills counted in leaf `rel` only, which its pool does not see
    /// once the leaf is removed (v1 counts where the victim was).
    fn leaf_oom_kills(&self, rel: &Path) -> u64;
    /// rmdir `rel` everywhere; true when it is gone.
    fn remove(&self, rel: &Path) -> bool;
    /// `rel`'s child cgroups.
    fn children(&self, rel: &Path) -> Vec<String>;
}

/// A pool or subtree name becomes one path component, nothing else.
pub(crate) fn check_name(name: &str) -> Result<&str, CgroupError> {
    let bad = name.is_empty()
        || name == "."
        || name == ".."
        || name.contains('/')
        || name.chars().any(|c| c.is_control());
    if bad {
        Err(CgroupError::BadName(name.to_string()))
    } else {
        Ok(name)
    }
}

/// cgroup v2's cpu.weight to v1's cpu.shares (systemd's conversion:
/// 100 ↔ 1024).
pub(crate) fn cpu_shares(weight: u32) -> u64 {
    (u64::from(weight) * 1024 / 100).clamp(2, 262_144)
}

/// The CFS period corral uses for a CPU cap, microseconds.
pub(crate) const CPU_PERIOD_US: u64 = 100_000;

/// Quota per period for a cap in percent of one CPU.
pub(crate) fn cpu_quota(percent: u32) -> u64 {
    (u64::from(percent) * CPU_PERIOD_US / 100).max(1000)
}

#[cfg(test)]
mod tests;
