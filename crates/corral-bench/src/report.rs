//! The result of a run as data ([`Report`], serialised for `--json`) and as
//! the compact text a human reads.

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;

use crate::plan::Plan;
use crate::runner::RunResult;
use crate::schedule::Pace;
use crate::stats::{ErrorCounts, Latency};

/// Everything a run reports. Field names are the `--json` keys.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub target: String,
    pub concurrency: usize,
    pub keep_conn: bool,
    /// `"closed"` (send as fast as answers come) or `"open"` (`--rate`).
    pub mode: &'static str,
    /// Requested rate for open-loop runs.
    pub target_rate: Option<f64>,
    pub warmup_s: f64,
    /// Measured phase wall time.
    pub elapsed_s: f64,
    /// Requests attempted (failed connects included).
    pub requests: u64,
    /// Requests written to a connection.
    pub sent: u64,
    /// Requests answered with FCGI_END_REQUEST.
    pub completed: u64,
    /// Completed requests per second of `elapsed_s`.
    pub rps: f64,
    /// Latency of completed requests in microseconds.
    pub latency_us: Latency,
    pub errors: ErrorCounts,
    pub errors_total: u64,
    /// Completed requests by CGI status (keys are the codes as strings,
    /// since JSON keys must be).
    pub status_codes: BTreeMap<String, u64>,
    /// Socket bytes read for completed requests.
    pub bytes_received: u64,
    pub first_error: Option<String>,
}

impl Report {
    /// Summarises `result` of running `plan`.
    pub fn new(plan: &Plan, result: &RunResult) -> Self {
        let s = &result.stats;
        let secs = result.elapsed.as_secs_f64();
        Report {
            target: plan.target.to_string(),
            concurrency: plan.concurrency,
            keep_conn: plan.keeps_conn(),
            mode: match plan.pace {
                Pace::Closed => "closed",
                Pace::Rate(_) => "open",
            },
            target_rate: match plan.pace {
                Pace::Closed => None,
                Pace::Rate(r) => Some(r),
            },
            warmup_s: plan.warmup.as_secs_f64(),
            elapsed_s: secs,
            requests: s.requests,
            sent: s.sent,
            completed: s.completed,
            rps: if secs > 0.0 {
                s.completed as f64 / secs
            } else {
                0.0
            },
            latency_us: s.latency_summary(),
            errors: s.errors,
            errors_total: s.errors.total(),
            status_codes: s
                .status_codes
                .iter()
                .map(|(code, n)| (code.to_string(), *n))
                .collect(),
            bytes_received: s.bytes_received,
            first_error: s.first_error.clone(),
        }
    }

    /// The `--json` text (one line).
    pub fn to_json(&self) -> String {
        // Serialising plain numbers, strings and maps with string keys
        // cannot fail; fall back to an empty object rather than panic.
        serde_json::to_string(self).unwrap_or_else(|_| "{}".to_string())
    }
}

/// Microseconds as the shortest readable unit.
fn duration(us: f64) -> String {
    if us < 1_000.0 {
        format!("{us:.0}us")
    } else if us < 1_000_000.0 {
        format!("{:.2}ms", us / 1_000.0)
    } else {
        format!("{:.2}s", us / 1_000_000.0)
    }
}

fn bytes(n: u64) -> String {
    let n = n as f64;
    if n < 1024.0 * 1024.0 {
        format!("{:.1} KiB", n / 1024.0)
    } else {
        format!("{:.1} MiB", n / (1024.0 * 1024.0))
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mode = match self.target_rate {
            Some(r) => format!("open loop {r} req/s"),
            None => "closed loop".to_string(),
        };
        writeln!(
            f,
            "{}  c={}  keep-conn={}  {}  {:.2}s",
            self.target,
            self.concurrency,
            if self.keep_conn { "on" } else { "off" },
            mode,
            self.elapsed_s
        )?;
        writeln!(
            f,
            "requests  {} completed  {:.1} req/s  ({} attempted, {} received)",
            self.completed,
            self.rps,
            self.requests,
            bytes(self.bytes_received)
        )?;
        let l = &self.latency_us;
        writeln!(
            f,
            "latency   p50 {}  p90 {}  p99 {}  p99.9 {}  max {}  (mean {})",
            duration(l.p50),
            duration(l.p90),
            duration(l.p99),
            duration(l.p99_9),
            duration(l.max),
            duration(l.mean)
        )?;
        let e = &self.errors;
        write!(
            f,
            "errors    {}  (connect {}  io {}  timeout {}  protocol {}  status {})",
            self.errors_total, e.connect, e.io, e.timeout, e.protocol, e.status
        )?;
        if self.status_codes.keys().any(|k| k != "200") {
            let codes: Vec<String> = self
                .status_codes
                .iter()
                .map(|(k, v)| format!("{k}:{v}"))
                .collect();
            write!(f, "\nstatus    {}", codes.join("  "))?;
        }
        if let Some(first) = &self.first_error {
            write!(f, "\nfirst error: {first}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units() {
        assert_eq!(duration(87.4), "87us");
        assert_eq!(duration(1_234.0), "1.23ms");
        assert_eq!(duration(2_500_000.0), "2.50s");
        assert_eq!(bytes(2048), "2.0 KiB");
        assert_eq!(bytes(3 * 1024 * 1024), "3.0 MiB");
    }
}
