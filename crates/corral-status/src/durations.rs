//! The pool's request-duration histogram: workers count each finished
//! request in one bucket of the header, the master reads the buckets.
//!
//! Buckets are kept one count per bucket (not cumulative) so that a worker
//! does one atomic add per request; the reader makes them cumulative with
//! saturating sums, so whatever a tenant writes there, the histogram the
//! master reports is well formed (non-decreasing, `+Inf` = count).

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use crate::layout::{DURATION_BUCKETS_US, H_DURATION_BUCKETS, H_DURATION_SUM_US};

/// Buckets including the last, unbounded one.
pub const BUCKETS: usize = DURATION_BUCKETS_US.len() + 1;

/// Counting more than this in one bucket means the words were forged;
/// a sum this large could not be exact in an f64 either.
const MAX_WORD: u64 = 1 << 53;

/// The histogram as the master reads it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Durations {
    /// Cumulative counts: `cumulative[i]` requests took at most
    /// `DURATION_BUCKETS_US[i]`; the last is every request.
    pub cumulative: [u64; BUCKETS],
    /// Sum of every duration, in microseconds.
    pub sum_us: u64,
}

impl Durations {
    pub fn count(&self) -> u64 {
        self.cumulative[BUCKETS - 1]
    }

    /// Two generations of one pool (or one that has gone) added up.
    pub fn add(&mut self, other: &Durations) {
        for (a, b) in self.cumulative.iter_mut().zip(other.cumulative) {
            *a = a.saturating_add(b);
        }
        self.sum_us = self.sum_us.saturating_add(other.sum_us);
    }
}

/// The bucket a duration falls in.
pub fn bucket_of(duration_us: u64) -> usize {
    DURATION_BUCKETS_US
        .iter()
        .position(|&le| duration_us <= le)
        .unwrap_or(BUCKETS - 1)
}

/// The worker's side: count one finished request.
pub(crate) fn observe(header: &[AtomicU64], duration_us: u64) {
    header[H_DURATION_BUCKETS + bucket_of(duration_us)].fetch_add(1, Relaxed);
    header[H_DURATION_SUM_US].fetch_add(duration_us, Relaxed);
}

/// The master's side: copy, clamp, accumulate.
pub(crate) fn read(header: &[AtomicU64]) -> Durations {
    let mut out = Durations {
        sum_us: header[H_DURATION_SUM_US].load(Relaxed).min(MAX_WORD),
        ..Durations::default()
    };
    let mut total = 0u64;
    for (i, c) in out.cumulative.iter_mut().enumerate() {
        total = total.saturating_add(header[H_DURATION_BUCKETS + i].load(Relaxed).min(MAX_WORD));
        *c = total;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::HEADER_WORDS;

    fn header() -> Vec<AtomicU64> {
        (0..HEADER_WORDS).map(|_| AtomicU64::new(0)).collect()
    }

    #[test]
    fn durations_fall_in_their_buckets() {
        assert_eq!(bucket_of(0), 0);
        assert_eq!(bucket_of(5_000), 0);
        assert_eq!(bucket_of(5_001), 1);
        assert_eq!(bucket_of(30_000_000), BUCKETS - 2);
        assert_eq!(bucket_of(u64::MAX), BUCKETS - 1);
    }

    #[test]
    fn the_reader_makes_the_buckets_cumulative() {
        let h = header();
        for us in [1_000, 7_000, 7_000, 2_000_000, 60_000_000] {
            observe(&h, us);
        }
        let d = read(&h);
        assert_eq!(d.cumulative[0], 1);
        assert_eq!(d.cumulative[1], 3);
        assert_eq!(d.cumulative[8], 4, "2 s is under 2.5 s");
        assert_eq!(d.count(), 5);
        assert_eq!(d.sum_us, 62_015_000);
    }

    #[test]
    fn forged_words_still_make_a_well_formed_histogram() {
        let h = header();
        for i in 0..BUCKETS {
            h[H_DURATION_BUCKETS + i].store(u64::MAX - i as u64, Relaxed);
        }
        h[H_DURATION_SUM_US].store(u64::MAX, Relaxed);
        let d = read(&h);
        assert!(d.cumulative.windows(2).all(|w| w[0] <= w[1]));
        assert!(d.cumulative.iter().all(|&c| c <= MAX_WORD * BUCKETS as u64));
        assert!(d.sum_us <= MAX_WORD);
    }
}
