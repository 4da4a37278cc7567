//! What changed between two snapshots: requests per second and duration
//! percentiles over the interval, as `corral top` shows them (the
//! dashboard's script computes the same in the browser).

use crate::snapshot::{PoolSnapshot, Snapshot};

/// One pool over an interval.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Rates {
    pub requests_per_second: f64,
    /// Percentiles of the requests finished in the interval, in seconds;
    /// None when none finished.
    pub p50: Option<f64>,
    pub p99: Option<f64>,
}

/// The quantile `q` (0..1) of a cumulative histogram with finite `bounds`
/// (`cumulative` has one more entry, `+Inf`), interpolated within its
/// bucket as Prometheus' histogram_quantile does; a quantile in the
/// unbounded bucket is reported as the largest bound.
pub fn quantile(q: f64, bounds: &[f64], cumulative: &[u64]) -> Option<f64> {
    let total = *cumulative.last()?;
    if total == 0 || cumulative.len() != bounds.len() + 1 {
        return None;
    }
    let rank = q.clamp(0.0, 1.0) * total as f64;
    let mut below = 0u64;
    for (i, &c) in cumulative.iter().enumerate() {
        if c as f64 >= rank && c > below {
            let Some(&upper) = bounds.get(i) else {
                return bounds.last().copied();
            };
            let lower = if i == 0 { 0.0 } else { bounds[i - 1] };
            let within = (rank - below as f64) / (c - below) as f64;
            return Some(lower + (upper - lower) * within.clamp(0.0, 1.0));
        }
        below = below.max(c);
    }
    bounds.last().copied()
}

/// Per-bucket differences of two cumulative histograms (a reset, a
/// smaller later count, gives the later one whole).
fn delta(now: &[u64], before: &[u64]) -> Vec<u64> {
    if now.len() != before.len() || now.iter().zip(before).any(|(n, b)| n < b) {
        return now.to_vec();
    }
    now.iter().zip(before).map(|(n, b)| n - b).collect()
}

/// A pool's rates between `before` and `now` (the same pool, by name).
pub fn rates(bounds: &[f64], before: &PoolSnapshot, now: &PoolSnapshot, seconds: f64) -> Rates {
    let d = delta(&now.durations.cumulative, &before.durations.cumulative);
    let accepted = now.accepted_conn.saturating_sub(before.accepted_conn);
    Rates {
        requests_per_second: if seconds > 0.0 {
            accepted as f64 / seconds
        } else {
            0.0
        },
        p50: quantile(0.5, bounds, &d),
        p99: quantile(0.99, bounds, &d),
    }
}

/// Every pool of `now`, with its rates since `before` when it was there.
pub fn all_rates<'a>(
    before: Option<&Snapshot>,
    now: &'a Snapshot,
) -> Vec<(&'a PoolSnapshot, Rates)> {
    now.pools
        .iter()
        .map(|p| {
            let r = before
                .and_then(|b| {
                    let old = b.pools.iter().find(|o| o.name == p.name)?;
                    Some(rates(&now.duration_buckets, old, p, now.time - b.time))
                })
                .unwrap_or_default();
            (p, r)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const B: [f64; 3] = [0.01, 0.1, 1.0];

    #[test]
    fn quantiles_interpolate_within_buckets() {
        // 10 requests under 10 ms, 10 between 10 and 100 ms.
        let c = [10, 20, 20, 20];
        assert_eq!(quantile(0.5, &B, &c), Some(0.01));
        let p75 = quantile(0.75, &B, &c).unwrap();
        assert!((p75 - 0.055).abs() < 1e-9, "{p75}");
        assert_eq!(quantile(0.5, &B, &[0, 0, 0, 0]), None);
        assert_eq!(
            quantile(0.99, &B, &[0, 0, 0, 5]),
            Some(1.0),
            "+Inf reports the top bound"
        );
        assert_eq!(quantile(0.5, &B, &[1, 2]), None, "wrong shape");
    }

    #[test]
    fn rates_come_from_differences() {
        let mut a = PoolSnapshot {
            name: "a".into(),
            accepted_conn: 100,
            ..Default::default()
        };
        a.durations.cumulative = vec![5, 5, 5, 5];
        let mut b = a.clone();
        b.accepted_conn = 120;
        b.durations.cumulative = vec![5, 25, 25, 25];
        let r = rates(&B, &a, &b, 2.0);
        assert_eq!(r.requests_per_second, 10.0);
        let p50 = r.p50.unwrap();
        assert!(p50 > 0.01 && p50 < 0.1, "{p50}");
        let reset = rates(&B, &b, &a, 1.0);
        assert_eq!(
            reset.p50,
            Some(0.005),
            "a reset counts the new histogram whole"
        );
    }
}
