//! Executes a [`Plan`]: one OS thread per connection, blocking I/O.
//!
//! Threads rather than an event loop because a FastCGI exchange is strictly
//! request/response on each connection, so a blocked thread is exactly a
//! connection waiting for its server; at the concurrencies php-fpm pools
//! run with (tens of connections) the kernel schedules that as well as epoll
//! would, and the per-request cost is one write and usually one read.

use std::thread;
use std::time::{Duration, Instant};

use crate::args::RunLength;
use crate::conn::{encode_request, Conn, Outcome, RequestError};
use crate::plan::Plan;
use crate::schedule::{Limit, Pace, Schedule, Ticket};
use crate::stats::Stats;

/// Merged results of a run.
#[derive(Debug, Clone)]
pub struct RunResult {
    pub stats: Stats,
    /// Wall time of the measured phase: from its scheduled start until the
    /// last worker finished its last request.
    pub elapsed: Duration,
}

/// Runs `plan` to completion and returns what the measured phase observed.
pub fn run(plan: &Plan) -> RunResult {
    let request = encode_request(&plan.request);
    let t0 = Instant::now();
    let measure_start = t0 + plan.warmup;
    let warmup =
        (!plan.warmup.is_zero()).then(|| Schedule::new(t0, plan.pace, Limit::Until(measure_start)));
    let limit = match plan.length {
        RunLength::Requests(n) => Limit::Count(n),
        RunLength::Duration(d) => Limit::Until(measure_start + d),
    };
    let measure = Schedule::new(measure_start, plan.pace, limit);
    let worker = Worker {
        plan,
        request: &request,
    };
    let per_worker: Vec<Stats> = thread::scope(|scope| {
        let handles: Vec<_> = (0..plan.concurrency.max(1))
            .map(|_| scope.spawn(|| worker.run(warmup.as_ref(), &measure)))
            .collect();
        handles
            .into_iter()
            // A worker only panics on a bug; losing its counts beats
            // losing the whole run.
            .filter_map(|h| h.join().ok())
            .collect()
    });
    let elapsed = Instant::now().saturating_duration_since(measure_start);
    let mut stats = Stats::new();
    for s in &per_worker {
        stats.merge(s);
    }
    RunResult { stats, elapsed }
}

#[derive(Clone, Copy)]
struct Worker<'a> {
    plan: &'a Plan,
    request: &'a [u8],
}

impl Worker<'_> {
    fn run(self, warmup: Option<&Schedule>, measure: &Schedule) -> Stats {
        let mut conn = None;
        if let Some(warmup) = warmup {
            while let Some(ticket) = warmup.next(Instant::now()) {
                let _ = self.one(&mut conn, ticket);
            }
        }
        let mut stats = Stats::new();
        while let Some(ticket) = measure.next(Instant::now()) {
            match self.one(&mut conn, ticket) {
                Ok((latency, outcome)) => stats.record_ok(latency, outcome),
                Err(e) => stats.record_error(&e),
            }
        }
        stats
    }

    /// Makes the request of `ticket`: waits for its slot (open loop),
    /// (re)connects if needed, exchanges, and drops the connection unless it
    /// is kept. Latency counts from the slot, connect time included.
    fn one(
        self,
        conn: &mut Option<Conn>,
        ticket: Ticket,
    ) -> Result<(Duration, Outcome), RequestError> {
        if matches!(self.plan.pace, Pace::Rate(_)) {
            let now = Instant::now();
            if ticket.due > now {
                thread::sleep(ticket.due - now);
            }
        }
        let result = self.exchange(conn);
        let latency = ticket.due.elapsed();
        if result.is_err() || !self.plan.keeps_conn() {
            *conn = None;
        }
        Ok((latency, result?))
    }

    fn exchange(self, conn: &mut Option<Conn>) -> Result<Outcome, RequestError> {
        let c = match conn {
            Some(c) => c,
            None => conn.insert(Conn::open(&self.plan.target, self.plan.timeout)?),
        };
        c.exchange(self.request)
    }
}
