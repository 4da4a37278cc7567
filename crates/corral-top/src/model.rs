//! What `corral top` shows: one row per pool, from the last two snapshots,
//! in the order the operator chose.

use corral_metrics::live::{all_rates, Rates};
use corral_metrics::{PoolSnapshot, Snapshot};

/// The columns a row can be sorted by, each with its key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
    Name,
    Busy,
    Rate,
    P99,
    Memory,
    Queue,
}

impl SortKey {
    pub const ALL: [SortKey; 6] = [
        SortKey::Name,
        SortKey::Busy,
        SortKey::Rate,
        SortKey::P99,
        SortKey::Memory,
        SortKey::Queue,
    ];

    pub fn key(self) -> char {
        match self {
            SortKey::Name => 'n',
            SortKey::Busy => 'b',
            SortKey::Rate => 'r',
            SortKey::P99 => 'p',
            SortKey::Memory => 'm',
            SortKey::Queue => 'l',
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            SortKey::Name => "name",
            SortKey::Busy => "busy",
            SortKey::Rate => "req/s",
            SortKey::P99 => "p99",
            SortKey::Memory => "memory",
            SortKey::Queue => "queue",
        }
    }

    pub fn from_key(c: char) -> Option<SortKey> {
        SortKey::ALL.into_iter().find(|k| k.key() == c)
    }

    /// Names read A to Z; numbers read largest first (what is on fire).
    fn descending(self) -> bool {
        self != SortKey::Name
    }
}

/// One pool's line.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub pool: PoolSnapshot,
    pub rates: Rates,
}

impl Row {
    fn memory(&self) -> u64 {
        self.pool
            .cgroup
            .as_ref()
            .and_then(|c| c.memory_bytes)
            .unwrap_or(0)
    }
}

#[derive(Debug, Default)]
pub struct Model {
    pub previous: Option<Snapshot>,
    pub current: Option<Snapshot>,
    pub sort: Option<SortKey>,
    pub reversed: bool,
    /// Why the last update failed, shown until one succeeds.
    pub error: Option<String>,
}

impl Model {
    /// A new snapshot: the last one becomes the base of the rates.
    pub fn update(&mut self, s: Snapshot) {
        self.previous = self.current.take();
        self.current = Some(s);
        self.error = None;
    }

    pub fn failed(&mut self, why: String) {
        self.error = Some(why);
    }

    /// A key pressed: sort by its column, or reverse when it is the
    /// column already sorted by. False when the key means nothing.
    pub fn key(&mut self, c: char) -> bool {
        if c == 'R' {
            self.reversed = !self.reversed;
            return true;
        }
        let Some(k) = SortKey::from_key(c) else {
            return false;
        };
        if self.sort == Some(k) {
            self.reversed = !self.reversed;
        } else {
            self.sort = Some(k);
            self.reversed = false;
        }
        true
    }

    pub fn sort_key(&self) -> SortKey {
        self.sort.unwrap_or(SortKey::Name)
    }

    /// The pools to show (a pm.status_listen pool is its parent's page,
    /// not a pool of its own), sorted.
    pub fn rows(&self) -> Vec<Row> {
        let Some(now) = &self.current else {
            return Vec::new();
        };
        let mut rows: Vec<Row> = all_rates(self.previous.as_ref(), now)
            .into_iter()
            .filter(|(p, _)| p.status_of.is_none())
            .map(|(p, rates)| Row {
                pool: p.clone(),
                rates,
            })
            .collect();
        let key = self.sort_key();
        rows.sort_by(|a, b| {
            let by_value =
                |f: fn(&Row) -> f64| f(a).partial_cmp(&f(b)).unwrap_or(std::cmp::Ordering::Equal);
            let ord = match key {
                SortKey::Name => a.pool.name.cmp(&b.pool.name),
                SortKey::Busy => a.pool.active_processes.cmp(&b.pool.active_processes),
                SortKey::Rate => by_value(|r| r.rates.requests_per_second),
                SortKey::P99 => by_value(|r| r.rates.p99.unwrap_or(-1.0)),
                SortKey::Memory => a.memory().cmp(&b.memory()),
                SortKey::Queue => a.pool.listen_queue.cmp(&b.pool.listen_queue),
            };
            let ord = if key.descending() { ord.reverse() } else { ord };
            // Ties keep a stable order: by name.
            let ord = ord.then_with(|| a.pool.name.cmp(&b.pool.name));
            if self.reversed {
                ord.reverse()
            } else {
                ord
            }
        });
        rows
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(t: f64, pools: &[(&str, u64, u64)]) -> Snapshot {
        Snapshot {
            time: t,
            duration_buckets: vec![0.1],
            pools: pools
                .iter()
                .map(|&(name, accepted, busy)| PoolSnapshot {
                    name: name.into(),
                    accepted_conn: accepted,
                    active_processes: busy,
                    durations: corral_metrics::Durations {
                        cumulative: vec![accepted, accepted],
                        sum_seconds: 0.0,
                    },
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }
    }

    fn names(m: &Model) -> Vec<String> {
        m.rows().into_iter().map(|r| r.pool.name).collect()
    }

    #[test]
    fn keys_choose_and_reverse_the_order() {
        let mut m = Model::default();
        m.update(snap(0.0, &[("a", 0, 0), ("b", 0, 3), ("c", 0, 1)]));
        m.update(snap(2.0, &[("a", 100, 0), ("b", 2, 3), ("c", 40, 1)]));
        assert_eq!(names(&m), ["a", "b", "c"], "by name at first");
        assert!(m.key('r'));
        assert_eq!(names(&m), ["a", "c", "b"], "busiest first");
        assert_eq!(m.rows()[0].rates.requests_per_second, 50.0);
        assert!(m.key('b'));
        assert_eq!(names(&m), ["b", "c", "a"]);
        assert!(m.key('b'), "the same key again reverses");
        assert_eq!(names(&m), ["a", "c", "b"]);
        assert!(!m.key('x'));
    }

    #[test]
    fn status_pools_are_not_rows() {
        let mut s = snap(0.0, &[("a", 0, 0), ("a_status", 0, 0)]);
        s.pools[1].status_of = Some("a".into());
        let mut m = Model::default();
        m.update(s);
        assert_eq!(names(&m), ["a"]);
    }
}
