//! What the master remembers for the operator's view beyond the running
//! generations: reloads (the master's and each pool's), and the counters of
//! generations that are gone, so that a pool's counters keep counting
//! across reloads instead of dropping (which Prometheus would read as a
//! reset, and rate() as a spike).

use std::collections::{BTreeMap, VecDeque};

use corral_metrics::{ReloadEvent, Sample};
use corral_status::Durations;

/// Reload events kept for the dashboard.
pub const RECENT_RELOADS: usize = 16;
/// Pools whose departed generations are remembered; past this the
/// oldest entry is forgotten (a host that adds and removes pools forever
/// must not grow the master without bound).
pub const MAX_CARRIED_POOLS: usize = 10_000;

/// The counters of a pool's generations that are gone.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Carried {
    pub accepted: u64,
    pub slow_requests: u64,
    pub max_children_reached: u64,
    pub durations: Durations,
}

impl Carried {
    pub fn add(&mut self, other: &Carried) {
        self.accepted = self.accepted.saturating_add(other.accepted);
        self.slow_requests = self.slow_requests.saturating_add(other.slow_requests);
        self.max_children_reached = self
            .max_children_reached
            .saturating_add(other.max_children_reached);
        self.durations.add(&other.durations);
    }
}

/// A pool's reloads.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PoolReloads {
    pub count: u64,
    pub last: Option<f64>,
}

#[derive(Debug, Default)]
pub struct History {
    /// When the master started (Unix seconds).
    pub started: f64,
    pub reloads: u64,
    pub recent: VecDeque<ReloadEvent>,
    pools: BTreeMap<String, PoolReloads>,
    carried: BTreeMap<String, Carried>,
    /// Pools given a new generation by the reload under way.
    pending: Vec<String>,
    /// Each pool's last [`SAMPLES`] seconds, for the dashboard's charts.
    series: BTreeMap<String, VecDeque<Sample>>,
}

/// Seconds of history kept per pool (two minutes, as the dashboard's
/// charts show).
pub const SAMPLES: usize = 120;

pub fn now_s() -> f64 {
    corral_status::now_us() as f64 / 1e6
}

impl History {
    pub fn new() -> History {
        History {
            started: now_s(),
            ..History::default()
        }
    }

    /// A reload begins: what it changes is its own.
    pub fn reload_started(&mut self) {
        self.pending.clear();
    }

    /// A reload gave `pool` a new generation (changed, added or moved).
    pub fn pool_reloaded(&mut self, pool: &str) {
        let r = self.pools.entry(pool.to_string()).or_default();
        r.count += 1;
        r.last = Some(now_s());
        self.pending.push(pool.to_string());
    }

    /// A reload is over: taken (`ok`) or refused.
    pub fn reload_done(&mut self, ok: bool, summary: &str) {
        if ok {
            self.reloads += 1;
        }
        let pools = std::mem::take(&mut self.pending);
        self.recent.push_back(ReloadEvent {
            time: now_s(),
            ok,
            pools,
            summary: summary.chars().take(1024).collect(),
        });
        while self.recent.len() > RECENT_RELOADS {
            self.recent.pop_front();
        }
    }

    pub fn pool(&self, pool: &str) -> PoolReloads {
        self.pools.get(pool).cloned().unwrap_or_default()
    }

    /// A generation of `pool` is gone: keep its counters.
    pub fn carry(&mut self, pool: &str, c: &Carried) {
        if !self.carried.contains_key(pool) && self.carried.len() >= MAX_CARRIED_POOLS {
            if let Some(first) = self.carried.keys().next().cloned() {
                self.carried.remove(&first);
            }
        }
        self.carried.entry(pool.to_string()).or_default().add(c);
    }

    /// This second's sample of each pool in `now`; pools no longer
    /// there are forgotten.
    pub fn sample(&mut self, now: Vec<(String, Sample)>) {
        let names: std::collections::BTreeSet<&String> = now.iter().map(|(n, _)| n).collect();
        self.series.retain(|n, _| names.contains(n));
        for (name, s) in now {
            let q = self.series.entry(name).or_default();
            q.push_back(s);
            while q.len() > SAMPLES {
                q.pop_front();
            }
        }
    }

    pub fn series(&self, pool: &str) -> Vec<Sample> {
        self.series
            .get(pool)
            .map(|q| q.iter().copied().collect())
            .unwrap_or_default()
    }

    pub fn carried(&self, pool: &str) -> Carried {
        self.carried.get(pool).cloned().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reloads_are_counted_per_pool_and_kept_bounded() {
        let mut h = History::new();
        h.pool_reloaded("a");
        h.reload_done(true, "[pool a] reloaded");
        h.reload_done(false, "broken");
        assert_eq!(h.reloads, 1);
        assert_eq!(h.pool("a").count, 1);
        assert_eq!(h.pool("b").count, 0);
        assert_eq!(h.recent[0].pools, ["a"]);
        assert!(!h.recent[1].ok && h.recent[1].pools.is_empty());
        for _ in 0..100 {
            h.reload_done(true, "");
        }
        assert_eq!(h.recent.len(), RECENT_RELOADS);
    }

    #[test]
    fn history_is_bounded_and_forgets_removed_pools() {
        let mut h = History::new();
        for i in 0..(SAMPLES as u64 + 10) {
            let s = Sample {
                time: i as f64,
                accepted_conn: i,
                active_processes: 1,
            };
            h.sample(vec![("a".into(), s), ("b".into(), s)]);
        }
        assert_eq!(h.series("a").len(), SAMPLES);
        assert_eq!(h.series("a")[0].accepted_conn, 10, "oldest first");
        h.sample(vec![("a".into(), Sample::default())]);
        assert!(h.series("b").is_empty());
    }

    #[test]
    fn departed_generations_keep_counting() {
        let mut h = History::new();
        let c = Carried {
            accepted: 5,
            slow_requests: 1,
            ..Carried::default()
        };
        h.carry("a", &c);
        h.carry("a", &c);
        assert_eq!(h.carried("a").accepted, 10);
        assert_eq!(h.carried("a").slow_requests, 2);
        assert_eq!(h.carried("z"), Carried::default());
    }
}
