//! Pens: what confines a pool's processes, applied in this order.
//!
//! 1. **cgroup** (`cgroup`): the master creates the pool's cgroup, with its
//!    limits, and the freshly forked prototype enters it before exec, so
//!    everything the pool ever forks is inside; stopping the pool kills
//!    the whole cgroup. cgroup v2 (a delegated subtree) and v1 (separate
//!    controller hierarchies) are both written, behind one interface.
//! 2. **namespaces** (`namespaces`): the prototype, still root, enters new
//!    mount and IPC namespaces: private /tmp, /var/tmp and /dev/shm, and
//!    /proc showing only the pool's own processes.
//! 3. **Landlock and no_new_privs** (`landlock`): after PHP has started and
//!    privileges are dropped, file access (and, where the ABI allows, TCP
//!    connects) is confined to what the pool needs.
//!
//! 4. **AppArmor** (`apparmor`): `apparmor_hat` changes to a hat of the
//!    master's profile after the privilege drop, as php-fpm's children do.
//!
//! Every step reports what it applied and what the kernel lacked, in a
//! [`Report`], which reaches the master's log and `corral status`.
//!
//! This crate knows nothing of php-fpm's configuration: callers hand it
//! plain values ([`Limits`], [`Confinement`]).

#![forbid(unsafe_code)]

pub mod apparmor;
pub mod cgroup;
pub mod landlock;
pub mod namespaces;
pub mod privs;

use std::path::PathBuf;

/// cgroup limits for one pool; `None` leaves the kernel's default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Limits {
    pub memory_max: Option<u64>,
    pub swap_max: Option<u64>,
    /// 1..=10000 (cgroup v2 `cpu.weight`; v1 `cpu.shares` = weight * 1024 / 100).
    pub cpu_weight: Option<u32>,
    /// Percent of one CPU.
    pub cpu_max_percent: Option<u32>,
    pub pids_max: Option<u64>,
    /// 1..=10000.
    pub io_weight: Option<u32>,
}

/// What the prototype confines itself with.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Confinement {
    /// Private /tmp, /var/tmp, /dev/shm, hidden /proc, private IPC.
    pub namespaces: bool,
    /// Size of each private tmpfs, bytes.
    pub tmp_size: u64,
    pub landlock: bool,
    /// Trees the pool may read (besides the system's and PHP's).
    pub read: Vec<PathBuf>,
    /// Trees the pool may write; never executable.
    pub write: Vec<PathBuf>,
    /// TCP ports the pool may not connect to (other pools' FastCGI and
    /// status listeners), where the Landlock ABI can say so.
    pub deny_connect_ports: Vec<u16>,
}

/// What was applied and what was not, for the log and `corral status`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// e.g. "cgroup v1 memory.limit_in_bytes=268435456", "landlock ABI 7".
    pub applied: Vec<String>,
    /// e.g. "io weight: no blkio controller", "landlock: not supported".
    pub lacking: Vec<String>,
}

impl Report {
    pub fn applied(&mut self, what: impl Into<String>) {
        self.applied.push(what.into());
    }
    pub fn lacking(&mut self, what: impl Into<String>) {
        self.lacking.push(what.into());
    }
    pub fn merge(&mut self, other: Report) {
        self.applied.extend(other.applied);
        self.lacking.extend(other.lacking);
    }
}
