//! Hands out request "tickets" to the worker threads: how many requests, and
//! when each is due.
//!
//! One shared counter for all workers makes `-n N` exact (ticket N and later
//! are refused, whatever thread asks) and, with `-r`, gives each request a
//! fixed slot on one global timeline. Latency is then measured from that slot
//! rather than from when a worker got round to sending, so a stalled server
//! shows up as the queueing delay real clients would see instead of being
//! hidden by the generator politely waiting (coordinated omission).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// When a phase ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// After exactly this many tickets.
    Count(u64),
    /// No ticket is due at or after this instant.
    Until(Instant),
}

/// How tickets are paced.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Pace {
    /// Closed loop: each worker sends its next request as soon as the last
    /// one finished; a ticket is due when it is taken.
    Closed,
    /// Open loop at this many requests per second, summed over all workers.
    Rate(f64),
}

/// One request to make.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ticket {
    /// Position on the phase's timeline, from 0.
    pub index: u64,
    /// When the request should be sent; latency is measured from here.
    pub due: Instant,
}

/// Shared ticket dispenser of one phase.
#[derive(Debug)]
pub struct Schedule {
    start: Instant,
    pace: Pace,
    limit: Limit,
    next: AtomicU64,
}

impl Schedule {
    /// A phase whose timeline starts at `start`.
    pub fn new(start: Instant, pace: Pace, limit: Limit) -> Self {
        Schedule {
            start,
            pace,
            limit,
            next: AtomicU64::new(0),
        }
    }

    /// When this phase's timeline starts.
    pub fn start(&self) -> Instant {
        self.start
    }

    /// The next ticket, or `None` once the phase is over. `now` is passed in
    /// so tests need no clock.
    pub fn next(&self, now: Instant) -> Option<Ticket> {
        if let Limit::Until(deadline) = self.limit {
            // Open loop too: slots still untaken at the deadline are dropped.
            // A server that fell behind then shows as an achieved rate below
            // the target (plus the latency of the slots it served late)
            // instead of stretching the run until the backlog drains.
            if now >= deadline {
                return None;
            }
        }
        let index = self.next.fetch_add(1, Ordering::Relaxed);
        let due = match self.pace {
            Pace::Closed => now,
            Pace::Rate(rate) => self.start + slot_offset(index, rate),
        };
        let over = match self.limit {
            Limit::Count(n) => index >= n,
            Limit::Until(deadline) => due >= deadline,
        };
        (!over).then_some(Ticket { index, due })
    }

    /// Tickets taken so far, counting refused ones; for tests.
    pub fn taken(&self) -> u64 {
        self.next.load(Ordering::Relaxed)
    }
}

/// Offset of slot `index` at `rate` per second. Computed from the index, not
/// by adding intervals, so rounding never accumulates into drift.
fn slot_offset(index: u64, rate: f64) -> Duration {
    Duration::from_secs_f64(index as f64 / rate)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn count_limit_is_exact() {
        let t0 = Instant::now();
        let s = Schedule::new(t0, Pace::Closed, Limit::Count(3));
        let got: Vec<_> = (0..10).filter_map(|_| s.next(t0)).collect();
        assert_eq!(got.iter().map(|t| t.index).collect::<Vec<_>>(), [0, 1, 2]);
        assert!(got.iter().all(|t| t.due == t0));
    }

    #[test]
    fn rate_slots_are_evenly_spaced_and_end_at_deadline() {
        let t0 = Instant::now();
        let deadline = t0 + Duration::from_millis(10);
        let s = Schedule::new(t0, Pace::Rate(1000.0), Limit::Until(deadline));
        let got: Vec<_> = std::iter::from_fn(|| s.next(t0)).collect();
        assert_eq!(got.len(), 10);
        for (i, t) in got.iter().enumerate() {
            assert_eq!(t.due - t0, Duration::from_millis(i as u64));
        }
    }

    #[test]
    fn closed_loop_with_deadline() {
        let t0 = Instant::now();
        let deadline = t0 + Duration::from_secs(1);
        let s = Schedule::new(t0, Pace::Closed, Limit::Until(deadline));
        assert!(s.next(t0).is_some());
        assert!(s.next(deadline).is_none());
        assert_eq!(s.taken(), 1, "no ticket is burnt after the deadline");
    }

    #[test]
    fn open_loop_backlog_is_dropped_at_the_deadline() {
        let t0 = Instant::now();
        let deadline = t0 + Duration::from_secs(1);
        let s = Schedule::new(t0, Pace::Rate(1000.0), Limit::Until(deadline));
        assert!(s.next(t0).is_some());
        assert!(s.next(deadline).is_none());
    }

    #[test]
    fn fractional_rate_does_not_drift() {
        let t0 = Instant::now();
        let s = Schedule::new(t0, Pace::Rate(3.0), Limit::Count(u64::MAX));
        let last = (0..=3000).map(|_| s.next(t0).unwrap()).last().unwrap();
        assert_eq!(last.due - t0, Duration::from_secs(1000));
    }
}
