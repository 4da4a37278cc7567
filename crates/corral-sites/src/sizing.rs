//! Memory planning for PHP workers.
//!
//! RAM for PHP = MemTotal × 0.8: 20 % stays for the kernel, page cache,
//! the web server and databases (the seed's rule of thumb). A pool can
//! grow to `pm.max_children` workers, each costing its PSS (proportional
//! set size: private pages plus a fair share of shared ones, so OPcache
//! and libphp's text are not counted once per worker). So the plan fits
//! when Σ over pools of `pm.max_children × average worker PSS` ≤ RAM for
//! PHP. Averages are measured from running workers (via `corral status`
//! pids and `/proc/PID/smaps_rollup`); a pool with no running worker is
//! estimated at 40 MiB.
//!
//! `corral tune` recommends, per pool,
//! `floor(RAM for PHP / average PSS / number of pools)`: an equal share of
//! the PHP RAM for every pool.

use crate::error::{Result, SitesError};

/// The fraction of MemTotal planned for PHP.
pub const PHP_SHARE: f64 = 0.8;
/// Worker PSS assumed when nothing can be measured.
pub const DEFAULT_WORKER_BYTES: u64 = 40 * 1024 * 1024;

/// `512M`, `2G`, `1048576`, `64k` → bytes.
pub fn parse_bytes(s: &str) -> Option<u64> {
    let s = s.trim();
    let (num, mult) = match s.chars().last()?.to_ascii_lowercase() {
        'k' => (&s[..s.len() - 1], 1024),
        'm' => (&s[..s.len() - 1], 1024 * 1024),
        'g' => (&s[..s.len() - 1], 1024 * 1024 * 1024),
        _ => (s, 1),
    };
    num.trim().parse::<u64>().ok().map(|n| n * mult)
}

pub fn mib(b: u64) -> String {
    format!("{:.1} MiB", b as f64 / 1048576.0)
}

/// MemTotal from /proc/meminfo, in bytes.
pub fn mem_total() -> Result<u64> {
    let t =
        std::fs::read_to_string("/proc/meminfo").map_err(|e| SitesError::io("/proc/meminfo", e))?;
    t.lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kb| kb * 1024)
        .ok_or_else(|| SitesError::Sizing("no MemTotal in /proc/meminfo".into()))
}

pub fn php_ram(mem_total: u64) -> u64 {
    (mem_total as f64 * PHP_SHARE) as u64
}

/// A process's PSS in bytes.
pub fn pss(pid: i32) -> Option<u64> {
    let t = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).ok()?;
    t.lines()
        .find_map(|l| l.strip_prefix("Pss:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kb| kb * 1024)
}

/// One pool's measurement.
#[derive(Debug, Clone, PartialEq)]
pub struct PoolMemory {
    pub pool: String,
    /// Workers whose PSS could be read.
    pub measured: usize,
    /// Average PSS (measured, or the default estimate).
    pub avg: u64,
}

pub fn measure(pool: &str, pids: &[i32]) -> PoolMemory {
    let v: Vec<u64> = pids.iter().filter_map(|p| pss(*p)).collect();
    PoolMemory {
        pool: pool.to_string(),
        measured: v.len(),
        avg: if v.is_empty() {
            DEFAULT_WORKER_BYTES
        } else {
            v.iter().sum::<u64>() / v.len() as u64
        },
    }
}

/// One pool in a plan.
#[derive(Debug, Clone, PartialEq)]
pub struct Planned {
    pub pool: String,
    pub max_children: u64,
    pub avg: u64,
}

/// Total worst-case bytes of a plan.
pub fn planned_total(pools: &[Planned]) -> u64 {
    pools.iter().map(|p| p.max_children * p.avg).sum()
}

/// `Err` (with the numbers) when the plan does not fit.
pub fn check(pools: &[Planned], mem_total: u64) -> std::result::Result<String, String> {
    let budget = php_ram(mem_total);
    let total = planned_total(pools);
    let detail: Vec<String> = pools
        .iter()
        .map(|p| format!("{}: {} × {}", p.pool, p.max_children, mib(p.avg)))
        .collect();
    let msg = format!(
        "worst case {} ({}) vs RAM for PHP {} (80% of {})",
        mib(total),
        detail.join(", "),
        mib(budget),
        mib(mem_total)
    );
    if total > budget {
        Err(msg)
    } else {
        Ok(msg)
    }
}

/// The recommended `pm.max_children` for a pool with this average worker
/// PSS when `pools` pools share the PHP RAM (at least 1).
pub fn recommend(mem_total: u64, avg: u64, pools: usize) -> u64 {
    let share = php_ram(mem_total) / pools.max(1) as u64;
    (share / avg.max(1)).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes() {
        assert_eq!(parse_bytes("512M"), Some(512 << 20));
        assert_eq!(parse_bytes("2g"), Some(2 << 30));
        assert_eq!(parse_bytes("100"), Some(100));
        assert_eq!(parse_bytes("x"), None);
    }

    #[test]
    fn formula() {
        // 1 GiB host: 819 MiB for PHP; 2 pools of 40 MiB workers:
        // floor(819.2 / 40 / 2) = 10.
        assert_eq!(recommend(1 << 30, 40 << 20, 2), 10);
        assert_eq!(recommend(1 << 30, 4 << 30, 1), 1);
        let pools = vec![
            Planned {
                pool: "a".into(),
                max_children: 10,
                avg: 40 << 20,
            },
            Planned {
                pool: "b".into(),
                max_children: 10,
                avg: 40 << 20,
            },
        ];
        assert!(check(&pools, 1 << 30).is_ok());
        assert!(check(&pools, 512 << 20).is_err());
    }

    #[test]
    fn own_pss_is_readable() {
        let m = measure("self", &[std::process::id() as i32]);
        assert_eq!(m.measured, 1);
        assert!(m.avg > 0);
    }
}
