//! corral's own pool directives for confining a pool (`corral.*`): cgroup
//! limits, namespaces and Landlock. php-fpm has none of them; a php-fpm
//! configuration without them runs unchanged, with none of this applied.
//! `corral-isolation` turns these settings into kernel calls.

use std::path::PathBuf;

/// A pool's confinement as configured. Every field's default is "not
/// asked for": nothing is applied that the pool file does not say.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Isolation {
    /// `corral.memory_max`: bytes (cgroup memory.max / limit_in_bytes).
    pub memory_max: Option<u64>,
    /// `corral.swap_max`: bytes of swap on top of memory_max.
    pub swap_max: Option<u64>,
    /// `corral.cpu_weight`: 1..=10000, relative share under contention.
    pub cpu_weight: Option<u32>,
    /// `corral.cpu_max`: a hard cap, in percent of one CPU (200 = 2 CPUs).
    pub cpu_max_percent: Option<u32>,
    /// `corral.pids_max`: processes and threads of the whole pool.
    pub pids_max: Option<u64>,
    /// `corral.io_weight`: 1..=10000, where the kernel offers it.
    pub io_weight: Option<u32>,
    /// `corral.namespaces`: private /tmp, /var/tmp and /dev/shm, /proc
    /// showing only the pool's own processes, a private SysV IPC.
    pub namespaces: bool,
    /// `corral.tmp_size`: the size of each private tmpfs, bytes.
    pub tmp_size: Option<u64>,
    /// `corral.landlock`: confine file access (and, where the ABI allows,
    /// TCP connects) to what the pool needs.
    pub landlock: bool,
    /// `corral.landlock_read`: extra trees the pool may read.
    pub landlock_read: Vec<PathBuf>,
    /// `corral.landlock_write`: trees the pool may write (and read); never
    /// executable.
    pub landlock_write: Vec<PathBuf>,
}

impl Isolation {
    /// Whether the pool asked for any cgroup limit.
    pub fn wants_cgroup(&self) -> bool {
        self.memory_max.is_some()
            || self.swap_max.is_some()
            || self.cpu_weight.is_some()
            || self.cpu_max_percent.is_some()
            || self.pids_max.is_some()
            || self.io_weight.is_some()
    }
}
