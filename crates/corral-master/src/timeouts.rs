//! request_slowlog_timeout and request_terminate_timeout, enforced by the
//! master from the scoreboard (wall clock: PHP's max_execution_time counts
//! CPU only and misses sleeps and I/O waits).

use std::time::Duration;

use corral_config::LogLevel;
use corral_status::{ProcState, Reader};
use corral_sys::nix::sys::signal::Signal;

use crate::log::Logger;
use crate::os::Os;
use crate::pool::Generation;
use crate::slowlog;

/// How often to look, php-fpm's rule: a third of the smallest timeout,
/// at least 130 ms, at most the 1 s maintenance tick.
pub fn heartbeat<'a>(pools: impl Iterator<Item = &'a corral_config::Pool>) -> Duration {
    let mut best = Duration::from_millis(1000);
    for p in pools {
        for t in [p.request_slowlog_timeout, p.request_terminate_timeout] {
            if !t.is_zero() {
                best = best.min(t / 3);
            }
        }
    }
    best.max(Duration::from_millis(130))
}

fn secs(us: u64) -> String {
    format!("{}.{:06}", us / 1_000_000, us % 1_000_000)
}

/// When the next timeout of this generation falls due (µs since the
/// epoch, the scoreboard's clock), so the master can wake for it instead
/// of finding it up to a heartbeat late. Requests that start later are
/// found by the heartbeat, a third of the timeout before they are due.
pub fn next_due_us(gen: &Generation) -> Option<u64> {
    let slow = gen.cfg.request_slowlog_timeout.as_micros() as u64;
    let term = gen.cfg.request_terminate_timeout.as_micros() as u64;
    if (slow == 0 && term == 0) || gen.proto.is_none() {
        return None;
    }
    let reader = Reader::new(gen.board.words());
    let track_finished = gen.cfg.request_terminate_timeout_track_finished;
    gen.workers
        .iter()
        .filter_map(|(&pid, w)| {
            let s = reader.slot(w.slot, pid as u32)?;
            if s.accepted_us == 0 {
                return None;
            }
            let slow_due =
                (slow > 0 && s.state == ProcState::Running && w.traced_request != s.accepted_us)
                    .then(|| s.accepted_us.saturating_add(slow));
            let term_due = (term > 0
                && counts_for_terminate(s.state, track_finished)
                && w.terminated_request != s.accepted_us)
                .then(|| s.accepted_us.saturating_add(term));
            slow_due.into_iter().chain(term_due).min()
        })
        .min()
}

/// Which states request_terminate_timeout applies to.
fn counts_for_terminate(state: ProcState, track_finished: bool) -> bool {
    match state {
        ProcState::ReadingHeaders | ProcState::GettingInfo | ProcState::Running => true,
        ProcState::Ending | ProcState::Finishing => track_finished,
        ProcState::Idle | ProcState::Free => false,
    }
}

/// Look at every busy worker of a generation once.
pub fn check(gen: &mut Generation, now_us: u64, os: &mut dyn Os, log: &mut Logger) {
    let slow = gen.cfg.request_slowlog_timeout.as_micros() as u64;
    let term = gen.cfg.request_terminate_timeout.as_micros() as u64;
    if slow == 0 && term == 0 {
        return;
    }
    let Some(proto) = gen.proto.as_ref() else {
        return;
    };
    let proto_pid = proto.pid;
    let layout = proto.layout;
    let track_finished = gen.cfg.request_terminate_timeout_track_finished;
    let name = gen.cfg.name.clone();
    let depth = gen.cfg.request_slowlog_trace_depth;
    let slowlog_path = gen.cfg.slowlog.clone();
    let reader = Reader::new(gen.board.words());
    let mut slow_taken = 0;
    for (&pid, w) in gen.workers.iter_mut() {
        let Some(s) = reader.slot(w.slot, pid as u32) else {
            continue;
        };
        if s.accepted_us == 0 || s.accepted_us > now_us {
            continue;
        }
        let elapsed = now_us - s.accepted_us;
        let request = format!("{} {}", s.method, s.uri);
        if slow > 0
            && s.state == ProcState::Running
            && elapsed >= slow
            && w.traced_request != s.accepted_us
        {
            w.traced_request = s.accepted_us;
            slow_taken += 1;
            log.warning(&format!(
                "[pool {name}] child {pid}, script '{}' (request: \"{request}\") executing too slow ({} sec), logging",
                s.script,
                secs(elapsed)
            ));
            // A stopped process holds still while its stack is read.
            let entry = layout.and_then(|l| {
                if os.parent_of(pid) != Some(proto_pid) {
                    return None;
                }
                log.notice(&format!("about to trace {pid}"));
                os.signal(pid, Signal::SIGSTOP);
                let t = slowlog::trace(pid, &l, depth);
                os.signal(pid, Signal::SIGCONT);
                log.notice(&format!("finished trace of {pid}"));
                t
            });
            if let Some(path) = &slowlog_path {
                if let Err(e) = slowlog::write_entry(path, &name, pid, entry) {
                    log.error(&format!("unable to open slowlog ({}): {e}", path.display()));
                }
            }
            continue;
        }
        let counts = counts_for_terminate(s.state, track_finished);
        if term > 0 && counts && elapsed >= term && w.terminated_request != s.accepted_us {
            // Only a pid the prototype really parented: a tenant cannot make
            // root signal someone else's process.
            if os.parent_of(pid) != Some(proto_pid) {
                continue;
            }
            w.terminated_request = s.accepted_us;
            log.log(
                LogLevel::Warning,
                &format!(
                    "[pool {name}] child {pid}, script '{}' (request: \"{request}\") execution timed out ({} sec), terminating",
                    s.script,
                    secs(elapsed)
                ),
            );
            // Continued too: a stopped worker would never act on it.
            os.signal(pid, Signal::SIGTERM);
            os.signal(pid, Signal::SIGCONT);
        }
    }
    gen.slow_requests += slow_taken;
}
