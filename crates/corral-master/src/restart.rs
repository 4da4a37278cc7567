//! When to restart a prototype that died. A crash is restarted at once:
//! requests are queuing on the socket. Only a crash loop (a prototype that
//! keeps dying soon after it started, e.g. a broken extension or a missing
//! user) backs off, doubling the wait up to a ceiling, so the master does
//! not spend itself re-execing PHP.

use std::time::{Duration, Instant};

/// A prototype that lived this long was healthy: its death starts a new
/// count.
pub const STABLE_AFTER: Duration = Duration::from_secs(10);
/// The first wait of a crash loop.
pub const FIRST_BACKOFF: Duration = Duration::from_millis(100);
/// The longest wait between two attempts.
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);

#[derive(Debug, Default, Clone)]
pub struct RestartPolicy {
    /// Deaths in a row of prototypes that were not yet stable.
    quick_deaths: u32,
}

impl RestartPolicy {
    /// A prototype started at `started` died at `now`: how long to wait
    /// before the next start.
    pub fn after_death(&mut self, started: Instant, now: Instant) -> Duration {
        if now.saturating_duration_since(started) >= STABLE_AFTER {
            self.quick_deaths = 0;
        }
        self.quick_deaths = self.quick_deaths.saturating_add(1);
        match self.quick_deaths {
            1 => Duration::ZERO,
            n => FIRST_BACKOFF
                .saturating_mul(1 << (n - 2).min(16))
                .min(MAX_BACKOFF),
        }
    }

    /// A start that failed before a process existed (exec failed).
    pub fn after_failed_start(&mut self) -> Duration {
        self.quick_deaths = self.quick_deaths.saturating_add(1).max(2);
        FIRST_BACKOFF
            .saturating_mul(1 << (self.quick_deaths - 2).min(16))
            .min(MAX_BACKOFF)
    }

    pub fn in_loop(&self) -> bool {
        self.quick_deaths > 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_single_crash_restarts_at_once() {
        let mut p = RestartPolicy::default();
        let t = Instant::now();
        assert_eq!(
            p.after_death(t, t + Duration::from_secs(60)),
            Duration::ZERO
        );
        assert!(!p.in_loop());
    }

    #[test]
    fn a_crash_loop_backs_off_and_is_capped() {
        let mut p = RestartPolicy::default();
        let t = Instant::now();
        let waits: Vec<Duration> = (0..12).map(|_| p.after_death(t, t)).collect();
        assert_eq!(waits[0], Duration::ZERO);
        assert_eq!(waits[1], FIRST_BACKOFF);
        assert_eq!(waits[2], FIRST_BACKOFF * 2);
        assert_eq!(waits[3], FIRST_BACKOFF * 4);
        assert!(waits.windows(2).all(|w| w[0] <= w[1]));
        assert_eq!(*waits.last().unwrap(), MAX_BACKOFF);
        assert!(p.in_loop());
    }

    #[test]
    fn a_stable_run_forgives_the_past() {
        let mut p = RestartPolicy::default();
        let t = Instant::now();
        for _ in 0..5 {
            p.after_death(t, t);
        }
        let later = t + STABLE_AFTER;
        assert_eq!(p.after_death(t, later), Duration::ZERO);
    }
}
