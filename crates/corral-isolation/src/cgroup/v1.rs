//! cgroup v1: one directory per controller hierarchy, the same relative
//! path in each. A process enters the pool's leaf by writing itself into
//! the leaf's `cgroup.procs` of every hierarchy.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::detect::V1Root;
use super::{
    cpu_quota, cpu_shares, files, kill, Backend, CgroupError, Killed, Usage, Version, CPU_PERIOD_US,
};
use crate::{Limits, Report};

pub(crate) struct V1 {
    roots: Vec<V1Root>,
}

impl V1 {
    pub(crate) fn new(roots: Vec<V1Root>) -> V1 {
        V1 { roots }
    }

    /// `rel` in the hierarchy that has `controller`.
    fn dir(&self, controller: &str, rel: &Path) -> Option<PathBuf> {
        self.roots
            .iter()
            .find(|r| r.controllers.iter().any(|c| c == controller))
            .map(|r| r.own.join(rel))
    }

    fn dirs(&self, rel: &Path) -> Vec<PathBuf> {
        self.roots.iter().map(|r| r.own.join(rel)).collect()
    }

    fn apply_memory(&self, dir: &Path, limits: &Limits, previous: &Limits, r: &mut Report) {
        let memsw = limits
            .memory_max
            .zip(limits.swap_max)
            .map(|(m, s)| m.saturating_add(s));
        let has_memsw = files::exists(dir, "memory.memsw.limit_in_bytes");
        if limits.swap_max.is_some() && limits.memory_max.is_none() {
            r.lacking("swap limit (v1 limits swap only with corral.memory_max)");
        } else if limits.swap_max.is_some() && !has_memsw {
            r.lacking("swap limit (no memory.memsw.limit_in_bytes: swap accounting is off)");
        }
        let Some(mem) = limits.memory_max else {
            if previous.memory_max.is_some() {
                // Unlimited again: memsw first, it may not be below the limit.
                if has_memsw {
                    let _ = files::write(dir, "memory.memsw.limit_in_bytes", "-1");
                }
                let _ = files::write(dir, "memory.limit_in_bytes", "-1");
            }
            return;
        };
        ensure_hierarchical(dir, r);
        let limit = mem.to_string();
        let swap = match (memsw, previous.swap_max) {
            (Some(v), _) => Some(v.to_string()),
            (None, Some(_)) => Some("-1".to_string()),
            _ => None,
        }
        .filter(|_| has_memsw);
        // memsw may never be below the memory limit: when the limit goes
        // up the first write fails, and succeeds once memsw is raised.
        let first = files::write(dir, "memory.limit_in_bytes", &limit);
        let swapped = swap
            .as_ref()
            .map(|v| files::write(dir, "memory.memsw.limit_in_bytes", v));
        let written = match (first, &swapped) {
            (Err(_), Some(Ok(()))) => files::write(dir, "memory.limit_in_bytes", &limit),
            (first, _) => first,
        };
        match written {
            Ok(()) => r.applied(format!("memory.limit_in_bytes={limit}")),
            Err(e) => r.lacking(format!("memory limit ({e})")),
        }
        match (swapped, memsw) {
            (Some(Ok(())), Some(v)) => r.applied(format!("memory.memsw.limit_in_bytes={v}")),
            (Some(Err(e)), Some(_)) => r.lacking(format!("swap limit ({e})")),
            _ => {}
        }
    }

    fn apply_cpu(&self, dir: &Path, limits: &Limits, previous: &Limits, r: &mut Report) {
        match (limits.cpu_weight, previous.cpu_weight) {
            (Some(w), _) => write_knob(
                dir,
                "cpu.shares",
                cpu_shares(w).to_string(),
                "cpu weight",
                r,
            ),
            (None, Some(_)) => {
                let _ = files::write(dir, "cpu.shares", "1024");
            }
            _ => {}
        }
        match (limits.cpu_max_percent, previous.cpu_max_percent) {
            (Some(p), _) => {
                if let Err(e) = files::write(dir, "cpu.cfs_period_us", &CPU_PERIOD_US.to_string()) {
                    r.lacking(format!("cpu cap ({e})"));
                    return;
                }
                write_knob(
                    dir,
                    "cpu.cfs_quota_us",
                    cpu_quota(p).to_string(),
                    "cpu cap",
                    r,
                );
            }
            (None, Some(_)) => {
                let _ = files::write(dir, "cpu.cfs_quota_us", "-1");
            }
            _ => {}
        }
    }

    fn apply_io(&self, dir: &Path, limits: &Limits, previous: &Limits, r: &mut Report) {
        // CFQ's blkio.weight is 10..1000 around 500; BFQ's 1..1000 around
        // 100, as io.weight is.
        type Scale = fn(u32) -> u64;
        let (file, value, default): (&str, Scale, &str) = if files::exists(dir, "blkio.weight") {
            (
                "blkio.weight",
                |w: u32| (u64::from(w) * 5).clamp(10, 1000),
                "500",
            )
        } else if files::exists(dir, "blkio.bfq.weight") {
            (
                "blkio.bfq.weight",
                |w: u32| u64::from(w).clamp(1, 1000),
                "100",
            )
        } else {
            if limits.io_weight.is_some() {
                r.lacking("io weight (no blkio.weight or blkio.bfq.weight)");
            }
            return;
        };
        match (limits.io_weight, previous.io_weight) {
            (Some(w), _) => write_knob(dir, file, value(w).to_string(), "io weight", r),
            (None, Some(_)) => {
                let _ = files::write(dir, file, default);
            }
            _ => {}
        }
    }
}

/// Write one knob and say so, or say why not.
fn write_knob(dir: &Path, file: &str, value: String, what: &str, r: &mut Report) {
    match files::write(dir, file, &value) {
        Ok(()) => r.applied(format!("{file}={value}")),
        Err(e) => r.lacking(format!("{what} ({e})")),
    }
}

/// A v1 memory limit binds the pool's leaves only with use_hierarchy (the
/// default, and the only mode of recent kernels).
fn ensure_hierarchical(dir: &Path, r: &mut Report) {
    if files::read(dir, "memory.use_hierarchy").is_ok_and(|v| v.trim() == "0")
        && files::write(dir, "memory.use_hierarchy", "1").is_err()
    {
        r.lacking("memory limit on the pool's leaves (memory.use_hierarchy is 0)");
    }
}

impl Backend for V1 {
    fn version(&self) -> Version {
        Version::V1
    }

    fn prepare(&self, subtree: &Path, _report: &mut Report) -> Result<(), CgroupError> {
        self.create(subtree)
    }

    fn create(&self, rel: &Path) -> Result<(), CgroupError> {
        self.dirs(rel).iter().try_for_each(|d| files::make_dir(d))
    }

    fn apply(&self, rel: &Path, limits: &Limits, previous: &Limits, r: &mut Report) {
        match self.dir("memory", rel) {
            Some(d) => self.apply_memory(&d, limits, previous, r),
            None if limits.memory_max.is_some() || limits.swap_max.is_some() => {
                r.lacking("memory limit (no memory controller)")
            }
            None => {}
        }
        match self.dir("cpu", rel) {
            Some(d) => self.apply_cpu(&d, limits, previous, r),
            None => {
                if limits.cpu_weight.is_some() {
                    r.lacking("cpu weight (no cpu controller)");
                }
                if limits.cpu_max_percent.is_some() {
                    r.lacking("cpu cap (no cpu controller)");
                }
            }
        }
        match (self.dir("pids", rel), limits.pids_max) {
            (Some(d), Some(n)) => write_knob(&d, "pids.max", n.to_string(), "pids limit", r),
            (Some(d), None) if previous.pids_max.is_some() => {
                let _ = files::write(&d, "pids.max", "max");
            }
            (None, Some(_)) => r.lacking("pids limit (no pids controller)"),
            _ => {}
        }
        match self.dir("blkio", rel) {
            Some(d) => self.apply_io(&d, limits, previous, r),
            None if limits.io_weight.is_some() => r.lacking("io weight (no blkio)"),
            None => {}
        }
    }

    fn procs_files(&self, rel: &Path) -> Vec<PathBuf> {
        self.dirs(rel)
            .into_iter()
            .map(|d| d.join("cgroup.procs"))
            .collect()
    }

    fn pids(&self, rel: &Path) -> Vec<i32> {
        let mut all: Vec<i32> = self
            .dirs(rel)
            .iter()
            .flat_map(|d| files::procs(d))
            .collect();
        all.sort_unstable();
        all.dedup();
        all
    }

    fn kill(&self, rel: &Path, within: Duration) -> Killed {
        let freezer_dir = self.dir("freezer", rel);
        let freezer = freezer_dir.as_deref().map(|dir| kill::Freezer {
            dir,
            file: "freezer.state",
            freeze: "FROZEN",
            thaw: "THAWED",
            frozen: Some("FROZEN"),
        });
        kill::by_signals(&|| self.pids(rel), freezer, within)
    }

    fn usage(&self, rel: &Path) -> Usage {
        let memory = self.dir("memory", rel);
        let oom_kills = memory.as_ref().and_then(|d| {
            let own = files::keyed(d, "memory.oom_control", "oom_kill")?;
            let leaves: u64 = files::children(d)
                .iter()
                .filter_map(|c| files::keyed(&d.join(c), "memory.oom_control", "oom_kill"))
                .sum();
            Some(own + leaves)
        });
        Usage {
            cpu_usec: self
                .dir("cpuacct", rel)
                .and_then(|d| files::read_u64(&d, "cpuacct.usage"))
                .map(|ns| ns / 1000),
            memory_bytes: memory
                .as_ref()
                .and_then(|d| files::read_u64(d, "memory.usage_in_bytes")),
            oom_kills,
            pids: self
                .dir("pids", rel)
                .and_then(|d| files::read_u64(&d, "pids.current")),
        }
    }

    fn leaf_oom_kills(&self, rel: &Path) -> u64 {
        self.dir("memory", rel)
            .and_then(|d| files::keyed(&d, "memory.oom_control", "oom_kill"))
            .unwrap_or(0)
    }

    fn remove(&self, rel: &Path) -> bool {
        // Every hierarchy tried, even after one refused.
        let gone: Vec<bool> = self
            .dirs(rel)
            .iter()
            .map(|d| files::remove_dir(d))
            .collect();
        gone.into_iter().all(|g| g)
    }

    fn children(&self, rel: &Path) -> Vec<String> {
        let mut all: Vec<String> = self
            .dirs(rel)
            .iter()
            .flat_map(|d| files::children(d))
            .collect();
        all.sort();
        all.dedup();
        all
    }
}
