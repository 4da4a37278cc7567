//! When a worker gives its CPU away at a request boundary.
//!
//! A worker of a saturated pool always finds the next connection waiting,
//! so it never sleeps: it runs until the scheduler's time slice ends, which
//! is in the middle of some request, and that request then waits for every
//! other runnable task's slice. That is what a saturated pool's p99 was
//! made of (2x php-fpm's at c=16 with 4 workers on 2 CPUs). php-fpm does
//! not suffer it because `fcgi_close` waits for the web server to close
//! after every response: a sleep per request, which costs it a wake-up
//! per request too.
//!
//! corral waits only when the worker has been on the CPU for a while
//! without sleeping: then the wait for the web server's close is a sleep at
//! a boundary, before the scheduler would take the CPU in mid-request, and
//! a lightly loaded worker (which sleeps in accept anyway) pays nothing.

use std::time::{Duration, Instant};

/// A blocking call that took longer than this put the worker to sleep (or
/// off the CPU some other way); either way its run starts again after it.
const SLEPT: Duration = Duration::from_micros(50);

/// How long a worker runs without sleeping before it pauses at the next
/// request boundary: well below the scheduler's base slice (0.75 ms times
/// 1 + log2 of the CPUs, at most 8), so a busy worker pauses before its
/// slice runs out. Measured on 2 CPUs, 4 workers, hello world: at c=16
/// over FastCGI, p99 went from 4.5-5.3 ms (never pausing) to 1.7-1.9 ms
/// (php-fpm 1.6 ms); through nginx, req/s stayed where it was without
/// pausing, where pausing after every connection (0 here) lost 10%.
pub const DEFAULT_BURST: Duration = Duration::from_micros(300);

/// One worker's run since its last sleep.
pub struct Pacer {
    awake_since: Instant,
    burst: Duration,
}

impl Pacer {
    pub fn new(burst: Duration) -> Pacer {
        Pacer {
            awake_since: Instant::now(),
            burst,
        }
    }

    /// After a blocking call that began at `began`.
    pub fn waited(&mut self, began: Instant) {
        let now = Instant::now();
        if now.duration_since(began) > SLEPT {
            self.awake_since = now;
        }
    }

    /// Whether the worker should wait for the web server's close now.
    pub fn wants_pause(&self) -> bool {
        self.awake_since.elapsed() >= self.burst
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_wait_starts_the_run_again() {
        let mut p = Pacer::new(Duration::from_millis(5));
        p.awake_since = Instant::now() - Duration::from_millis(10);
        assert!(p.wants_pause());
        p.waited(Instant::now() - Duration::from_millis(1));
        assert!(!p.wants_pause(), "a 1 ms wait was a sleep");
    }

    #[test]
    fn a_short_call_does_not() {
        let mut p = Pacer::new(Duration::from_millis(5));
        p.awake_since = Instant::now() - Duration::from_millis(10);
        p.waited(Instant::now());
        assert!(p.wants_pause(), "a call that returned at once was no sleep");
    }
}
