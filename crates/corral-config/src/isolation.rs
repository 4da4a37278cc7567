//! corral's own pool directives for confining a pool (`corral.*`): cgroup
//! limits, namespaces and Landlock. php-fpm has none of them; a php-fpm
//! configuration without them runs unchanged, with none of this applied.
//! `corral-isolation` turns these settings into kernel calls.

use std::path::PathBuf;

use crate::directives::{Settings, Value};
use crate::error::ConfigError;

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

    /// The settings of a pool section after validation (see [`check`]).
    pub(crate) fn from_settings(s: &Settings) -> Isolation {
        let int = |name: &str| match s.get(name) {
            Some(Value::Int(n)) => u64::try_from(n).ok(),
            _ => None,
        };
        let small = |name: &str| int(name).and_then(|n| u32::try_from(n).ok());
        let paths = |name: &str| {
            s.str(name)
                .map(|v| {
                    v.split(' ')
                        .filter(|p| !p.is_empty())
                        .map(PathBuf::from)
                        .collect()
                })
                .unwrap_or_default()
        };
        Isolation {
            memory_max: int("corral.memory_max"),
            swap_max: int("corral.swap_max"),
            cpu_weight: small("corral.cpu_weight"),
            cpu_max_percent: small("corral.cpu_max"),
            pids_max: int("corral.pids_max"),
            io_weight: small("corral.io_weight"),
            namespaces: s.bool("corral.namespaces"),
            tmp_size: int("corral.tmp_size"),
            landlock: s.bool("corral.landlock"),
            landlock_read: paths("corral.landlock_read"),
            landlock_write: paths("corral.landlock_write"),
        }
    }
}

/// Directives that mean nothing without another: refused, so that nobody
/// believes a pool confined when it is not.
const NEEDS: &[(&str, &str, &str)] = &[
    ("corral.swap_max", "corral.memory_max", "corral.memory_max"),
    (
        "corral.tmp_size",
        "corral.namespaces",
        "corral.namespaces = yes",
    ),
    (
        "corral.landlock_read",
        "corral.landlock",
        "corral.landlock = yes",
    ),
    (
        "corral.landlock_write",
        "corral.landlock",
        "corral.landlock = yes",
    ),
];

/// The checks between corral.* directives of one pool, run with php-fpm's
/// post-processing.
pub(crate) fn check(s: &Settings, pool: &str) -> Result<(), ConfigError> {
    for &(name, needed, needs) in NEEDS {
        let present = match s.get(needed) {
            Some(Value::Bool(b)) => b,
            Some(_) => true,
            None => false,
        };
        if s.is_set(name) && !present {
            return Err(ConfigError::CorralNeeds {
                pool: pool.to_string(),
                directive: name,
                needs,
            });
        }
    }
    Ok(())
}

const SIZE_HINT: &str = "bytes, or a number with K, M or G (e.g. 256M)";

/// A size as php's ini sizes are written: digits with an optional k, m or
/// g (either case), in bytes; at least `min`.
pub(crate) fn parse_size(v: &str, min: i64) -> Result<i64, String> {
    let (digits, shift) = match v.as_bytes().last() {
        Some(b'k' | b'K') => (&v[..v.len() - 1], 10),
        Some(b'm' | b'M') => (&v[..v.len() - 1], 20),
        Some(b'g' | b'G') => (&v[..v.len() - 1], 30),
        _ => (v, 0),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("'{v}' is not a size ({SIZE_HINT})"));
    }
    let n = digits
        .parse::<i64>()
        .ok()
        .and_then(|n| n.checked_mul(1 << shift))
        .ok_or_else(|| format!("'{v}' is too large"))?;
    if n < min {
        return Err(format!("'{v}' must be at least {min} ({SIZE_HINT})"));
    }
    Ok(n)
}

/// Plain decimal digits within `range`, or `None`.
fn integer_in(v: &str, range: std::ops::RangeInclusive<i64>) -> Option<i64> {
    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    v.parse::<i64>().ok().filter(|n| range.contains(n))
}

/// A cgroup weight, 1..=10000 (cgroup v2's `cpu.weight`/`io.weight` range).
pub(crate) fn parse_weight(v: &str) -> Result<i64, String> {
    integer_in(v, 1..=10_000).ok_or_else(|| format!("'{v}' must be an integer from 1 to 10000"))
}

/// A CPU cap in percent of one CPU, `%` optional, 1..=100000 (1000 CPUs).
pub(crate) fn parse_cpu_percent(v: &str) -> Result<i64, String> {
    let digits = v.strip_suffix('%').unwrap_or(v);
    integer_in(digits, 1..=100_000).ok_or_else(|| {
        format!("'{v}' must be a whole percent of one CPU from 1% to 100000% (e.g. 50% or 200%)")
    })
}

/// A count of at least 1.
pub(crate) fn parse_count(v: &str) -> Result<i64, String> {
    integer_in(v, 1..=i64::MAX).ok_or_else(|| format!("'{v}' must be an integer of at least 1"))
}

/// Absolute paths separated by blanks, kept joined by single spaces (so a
/// path cannot contain a blank).
pub(crate) fn parse_paths(v: &str) -> Result<String, String> {
    let paths: Vec<&str> = v.split([' ', '\t']).filter(|p| !p.is_empty()).collect();
    if let Some(p) = paths.iter().find(|p| !p.starts_with('/')) {
        return Err(format!("'{p}' is not an absolute path"));
    }
    Ok(paths.join(" "))
}

#[cfg(test)]
mod tests;
