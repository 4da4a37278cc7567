//! Memory planning for PHP workers.
//!
//! RAM for PHP = MemTotal × 0.8: 20 % stays for the kernel, page cache,
//! the web server and databases (the seed's rule of thumb). A pool can
//! grow to `pm.max_children` workers, each costing its PSS (proportional
//! set size: private pages plus a fair share of shared ones, so OPcache
//! and libphp's text are not counted once per worker). So the plan fits
//! when Σ over pools of `pm.max_children × average worker PSS` ≤ RAM for
//! PHP. PSS is measured from `/proc/PID/smaps_rollup` of the workers
//! `corral status` lists that have served at least one request ("warmed
//! up"): a fresh fork shares nearly every page with its prototype and
//! measures 2–3 MiB, which once made `tune` recommend thousands of
//! children. A pool with no warmed-up worker is estimated at 40 MiB.
//!
//! `corral tune` recommends, per pool,
//! `floor(RAM for PHP / number of pools / largest warmed-up worker PSS)`:
//! an equal share of the PHP RAM for every pool, priced at the pool's
//! biggest worker so that the share holds when every worker grows to it.
//! It may be 0: then not even one such worker fits the share.

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
    /// Warmed-up workers whose PSS could be read.
    pub measured: usize,
    /// Workers left out: they have served no request yet.
    pub fresh: usize,
    /// Average PSS of the measured workers (or the default estimate).
    pub avg: u64,
    /// The largest measured PSS (or the default estimate).
    pub max: u64,
}

pub fn measure(pool: &str, workers: &[crate::fpm::Worker]) -> PoolMemory {
    let warmed: Vec<u64> = workers
        .iter()
        .filter(|w| w.requests > 0)
        .filter_map(|w| pss(w.pid))
        .collect();
    let fresh = workers.iter().filter(|w| w.requests == 0).count();
    let (avg, max) = if warmed.is_empty() {
        (DEFAULT_WORKER_BYTES, DEFAULT_WORKER_BYTES)
    } else {
        (
            warmed.iter().sum::<u64>() / warmed.len() as u64,
            warmed.iter().copied().max().unwrap_or(0),
        )
    };
    PoolMemory {
        pool: pool.to_string(),
        measured: warmed.len(),
        fresh,
        avg,
        max,
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

/// The recommended `pm.max_children` for a pool whose workers cost `per
/// worker` bytes when `pools` pools share the PHP RAM: never more than
/// the share holds (0 when not even one worker fits).
pub fn recommend(mem_total: u64, per_worker: u64, pools: usize) -> u64 {
    let share = php_ram(mem_total) / pools.max(1) as u64;
    share / per_worker.max(1)
}

/// One pool's line of `corral tune`.
#[derive(Debug, Clone, PartialEq)]
pub struct Advice {
    pub memory: PoolMemory,
    /// The per-worker price used: the largest warmed-up worker's PSS.
    pub per_worker: u64,
    pub recommended: u64,
}

/// What `corral tune` says, with every input it used.
#[derive(Debug, Clone, PartialEq)]
pub struct Tune {
    pub mem_total: u64,
    pub php_ram: u64,
    pub pools: usize,
    pub advice: Vec<Advice>,
}

/// Measures `running` (every pool counts for the share; `only` limits
/// what is reported).
pub fn tune(
    mem_total: u64,
    running: &[(String, Vec<crate::fpm::Worker>)],
    only: Option<&str>,
) -> Tune {
    let pools = running.len();
    let advice = running
        .iter()
        .filter(|(p, _)| only.is_none_or(|o| o == p))
        .map(|(p, w)| {
            let memory = measure(p, w);
            let per_worker = memory.max;
            Advice {
                recommended: recommend(mem_total, per_worker, pools),
                per_worker,
                memory,
            }
        })
        .collect();
    Tune {
        mem_total,
        php_ram: php_ram(mem_total),
        pools,
        advice,
    }
}

impl Tune {
    pub fn json(&self) -> serde_json::Value {
        let v: Vec<serde_json::Value> = self
            .advice
            .iter()
            .map(|a| {
                serde_json::json!({
                    "pool": a.memory.pool,
                    "workers_measured": a.memory.measured,
                    "workers_fresh_skipped": a.memory.fresh,
                    "avg_pss_bytes": a.memory.avg,
                    "max_pss_bytes": a.memory.max,
                    "per_worker_bytes": a.per_worker,
                    "estimated": a.memory.measured == 0,
                    "share_bytes": self.php_ram / self.pools.max(1) as u64,
                    "recommended_max_children": a.recommended,
                })
            })
            .collect();
        serde_json::json!({
            "mem_total_bytes": self.mem_total,
            "php_share": PHP_SHARE,
            "php_ram_bytes": self.php_ram,
            "pools": self.pools,
            "recommendations": v,
        })
    }

    pub fn text(&self) -> String {
        let share = self.php_ram / self.pools.max(1) as u64;
        let mut s = format!(
            "inputs: MemTotal {}, RAM for PHP {} (80%), {} running pool(s), share {} each\n\
             measured: PSS of workers that have served a request (fresh forks share their \
             prototype's pages and are skipped)\n\
             recommended pm.max_children = floor(share / largest measured worker PSS)\n",
            mib(self.mem_total),
            mib(self.php_ram),
            self.pools,
            mib(share)
        );
        s.push_str(&format!(
            "{:<32} {:>8} {:>6} {:>12} {:>12} {:>12}\n",
            "POOL", "MEASURED", "FRESH", "AVG PSS", "MAX PSS", "MAX_CHILDREN"
        ));
        for a in &self.advice {
            let m = &a.memory;
            let (avg, max) = if m.measured == 0 {
                (format!("~{}", mib(m.avg)), format!("~{}", mib(m.max)))
            } else {
                (mib(m.avg), mib(m.max))
            };
            s.push_str(&format!(
                "{:<32} {:>8} {:>6} {:>12} {:>12} {:>12}\n",
                m.pool, m.measured, m.fresh, avg, max, a.recommended
            ));
        }
        for a in &self.advice {
            if a.memory.measured == 0 {
                s.push_str(&format!(
                    "{}: no worker has served a request yet; estimated at {} per worker                      (send it traffic and run tune again)\n",
                    a.memory.pool,
                    mib(DEFAULT_WORKER_BYTES)
                ));
            }
            if a.recommended == 0 {
                s.push_str(&format!(
                    "{}: not even one worker of {} fits its share of {}\n",
                    a.memory.pool,
                    mib(a.per_worker),
                    mib(share)
                ));
            }
        }
        s
    }
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
        // A worker larger than the share: none fits, and tune says 0.
        assert_eq!(recommend(1 << 30, 4 << 30, 1), 0);
        // Never more than memory allows, whatever the inputs.
        for (mem, per, pools) in [
            (24u64 << 30, 3 << 20, 7usize),
            (1 << 30, 1, 1),
            (512 << 20, 60 << 20, 3),
        ] {
            let r = recommend(mem, per, pools);
            assert!(
                r * per * pools as u64 <= php_ram(mem),
                "{mem} {per} {pools}: {r}"
            );
        }
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
    fn only_warmed_up_workers_are_measured() {
        use crate::fpm::Worker;
        let me = std::process::id() as i32;
        let m = measure(
            "self",
            &[Worker {
                pid: me,
                requests: 3,
            }],
        );
        assert_eq!((m.measured, m.fresh), (1, 0));
        assert!(m.avg > 0 && m.max == m.avg);
        let m = measure(
            "self",
            &[Worker {
                pid: me,
                requests: 0,
            }],
        );
        assert_eq!((m.measured, m.fresh), (0, 1));
        assert_eq!(m.avg, DEFAULT_WORKER_BYTES);
    }
}
