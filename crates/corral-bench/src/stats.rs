//! Per-worker counters and latency histogram, merged once at the end.
//!
//! Each worker owns its [`Stats`] so the hot path touches no shared memory;
//! HDR histograms merge losslessly, so percentiles over the merged histogram
//! are exactly what one global histogram would have given.

use std::collections::BTreeMap;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::conn::{Outcome, RequestError};

/// Highest latency the histogram tracks; anything slower is clamped to it
/// (an hour is far beyond any sane `--timeout`).
const MAX_TRACKABLE_NS: u64 = 3_600 * 1_000_000_000;
/// 3 significant digits: ±0.1 % per value, the usual wrk2/HdrHistogram choice.
const SIGFIG: u8 = 3;

/// Error classes the report counts separately.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ErrorCounts {
    /// Connection could not be opened (nothing listening, backlog full, ...).
    pub connect: u64,
    /// Socket errors and early closes after connecting.
    pub io: u64,
    /// Read/write timeouts.
    pub timeout: u64,
    /// Malformed FastCGI/CGI or a rejected request (FCGI_OVERLOADED, ...).
    pub protocol: u64,
    /// Completed responses whose status was not 200.
    pub status: u64,
}

impl ErrorCounts {
    /// All errors together.
    pub fn total(&self) -> u64 {
        self.connect + self.io + self.timeout + self.protocol + self.status
    }

    fn add(&mut self, other: &ErrorCounts) {
        self.connect += other.connect;
        self.io += other.io;
        self.timeout += other.timeout;
        self.protocol += other.protocol;
        self.status += other.status;
    }
}

/// What one worker (or, merged, the whole run) observed.
#[derive(Debug, Clone)]
pub struct Stats {
    /// Tickets used: every request attempted, failed connects included.
    pub requests: u64,
    /// Requests whose bytes were all written.
    pub sent: u64,
    /// Requests answered with FCGI_END_REQUEST (any status).
    pub completed: u64,
    /// Errors by class.
    pub errors: ErrorCounts,
    /// Completed responses by CGI status.
    pub status_codes: BTreeMap<u16, u64>,
    /// Bytes read from sockets for completed requests.
    pub bytes_received: u64,
    /// Latency of completed requests, in nanoseconds.
    pub latency: Histogram<u64>,
    /// Text of the first request error, so a run that fails wholesale says
    /// why (e.g. "connect: No such file or directory").
    pub first_error: Option<String>,
}

impl Default for Stats {
    fn default() -> Self {
        Self::new()
    }
}

impl Stats {
    /// Empty counters.
    pub fn new() -> Self {
        Stats {
            requests: 0,
            sent: 0,
            completed: 0,
            errors: ErrorCounts::default(),
            status_codes: BTreeMap::new(),
            bytes_received: 0,
            // The bounds are constants that satisfy the constructor's checks
            // (low >= 1, high >= 2 * low, sigfig <= 5).
            latency: Histogram::new_with_bounds(1, MAX_TRACKABLE_NS, SIGFIG)
                .expect("constant histogram bounds are valid"),
            first_error: None,
        }
    }

    /// Records a completed request that took `latency`.
    pub fn record_ok(&mut self, latency: Duration, outcome: Outcome) {
        self.requests += 1;
        self.sent += 1;
        self.completed += 1;
        self.bytes_received += outcome.bytes;
        *self.status_codes.entry(outcome.status).or_default() += 1;
        if outcome.status != 200 {
            self.errors.status += 1;
        }
        let ns = u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX);
        self.latency.saturating_record(ns.max(1));
    }

    /// Records a failed request.
    pub fn record_error(&mut self, err: &RequestError) {
        self.requests += 1;
        let class = match err {
            RequestError::Connect(_) => &mut self.errors.connect,
            RequestError::Timeout(_) => &mut self.errors.timeout,
            RequestError::Io(_) => &mut self.errors.io,
            RequestError::Protocol(_) | RequestError::Cgi(_) | RequestError::Rejected(_) => {
                &mut self.errors.protocol
            }
        };
        *class += 1;
        if self.first_error.is_none() {
            self.first_error = Some(err.to_string());
        }
        if !matches!(err, RequestError::Connect(_)) {
            // Failures after connecting: the write may or may not have gone
            // out in full; counting it as sent is what a server log would see.
            self.sent += 1;
        }
    }

    /// Adds `other` into `self`.
    pub fn merge(&mut self, other: &Stats) {
        self.requests += other.requests;
        self.sent += other.sent;
        self.completed += other.completed;
        self.errors.add(&other.errors);
        for (code, n) in &other.status_codes {
            *self.status_codes.entry(*code).or_default() += n;
        }
        self.bytes_received += other.bytes_received;
        if self.first_error.is_none() {
            self.first_error.clone_from(&other.first_error);
        }
        // Same bounds on both sides, so adding cannot fail; saturate instead
        // of panicking if that ever changes.
        if self.latency.add(&other.latency).is_err() {
            for v in other.latency.iter_recorded() {
                self.latency
                    .saturating_record_n(v.value_iterated_to(), v.count_at_value());
            }
        }
    }

    /// Latency summary in microseconds.
    pub fn latency_summary(&self) -> Latency {
        let h = &self.latency;
        let us = |ns: u64| ns as f64 / 1_000.0;
        if h.is_empty() {
            return Latency::default();
        }
        Latency {
            min: us(h.min()),
            mean: h.mean() / 1_000.0,
            stdev: h.stdev() / 1_000.0,
            p50: us(h.value_at_quantile(0.50)),
            p90: us(h.value_at_quantile(0.90)),
            p99: us(h.value_at_quantile(0.99)),
            p99_9: us(h.value_at_quantile(0.999)),
            max: us(h.max()),
        }
    }
}

/// Latency percentiles in microseconds (HDR values: each within 0.1 %).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Latency {
    pub min: f64,
    pub mean: f64,
    pub stdev: f64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p99_9: f64,
    pub max: f64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io;

    fn ok(status: u16) -> Outcome {
        Outcome { status, bytes: 10 }
    }

    #[test]
    fn percentiles_of_one_to_ten_thousand_microseconds() {
        // Split over two "workers" to check merging too.
        let (mut a, mut b) = (Stats::new(), Stats::new());
        for v in 1..=10_000u64 {
            let s = if v % 2 == 0 { &mut a } else { &mut b };
            s.record_ok(Duration::from_micros(v), ok(200));
        }
        a.merge(&b);
        let l = a.latency_summary();
        let close = |got: f64, want: f64| (got - want).abs() <= want * 0.001;
        assert!(close(l.p50, 5_000.0), "{l:?}");
        assert!(close(l.p90, 9_000.0), "{l:?}");
        assert!(close(l.p99, 9_900.0), "{l:?}");
        assert!(close(l.p99_9, 9_990.0), "{l:?}");
        assert!(close(l.max, 10_000.0), "{l:?}");
        assert!(close(l.min, 1.0), "{l:?}");
        assert!(close(l.mean, 5_000.5), "{l:?}");
        assert_eq!(a.completed, 10_000);
        assert_eq!(a.bytes_received, 100_000);
    }

    #[test]
    fn exact_small_values() {
        // Below 2048 ns a 3-digit HDR histogram is exact.
        let mut s = Stats::new();
        for v in 1..=1000u64 {
            s.record_ok(Duration::from_nanos(v), ok(200));
        }
        let h = &s.latency;
        assert_eq!(h.value_at_quantile(0.5), 500);
        assert_eq!(h.value_at_quantile(0.9), 900);
        assert_eq!(h.value_at_quantile(0.99), 990);
        assert_eq!(h.max(), 1000);
        assert_eq!(h.min(), 1);
    }

    #[test]
    fn outlier_shows_in_tail_only() {
        let mut s = Stats::new();
        for _ in 0..999 {
            s.record_ok(Duration::from_micros(100), ok(200));
        }
        s.record_ok(Duration::from_secs(2), ok(200));
        let l = s.latency_summary();
        assert!((l.p99 - 100.0).abs() < 0.1, "{l:?}");
        assert!((l.max - 2_000_000.0).abs() < 2_000.0, "{l:?}");
    }

    #[test]
    fn error_classes_and_status() {
        let mut s = Stats::new();
        s.record_ok(Duration::from_micros(1), ok(200));
        s.record_ok(Duration::from_micros(1), ok(503));
        s.record_ok(Duration::from_micros(1), ok(503));
        s.record_error(&RequestError::Connect(io::ErrorKind::NotFound.into()));
        s.record_error(&RequestError::Io(io::ErrorKind::UnexpectedEof.into()));
        s.record_error(&RequestError::Timeout(io::ErrorKind::WouldBlock.into()));
        s.record_error(&RequestError::Rejected(2));
        assert_eq!(s.requests, 7);
        assert_eq!(s.sent, 6);
        assert_eq!(s.completed, 3);
        assert_eq!(
            s.errors,
            ErrorCounts {
                connect: 1,
                io: 1,
                timeout: 1,
                protocol: 1,
                status: 2
            }
        );
        assert_eq!(s.errors.total(), 6);
        assert_eq!(s.status_codes, BTreeMap::from([(200, 1), (503, 2)]));
        assert_eq!(s.latency.len(), 3);
    }

    #[test]
    fn empty_summary_is_zero() {
        assert_eq!(Stats::new().latency_summary(), Latency::default());
    }
}
