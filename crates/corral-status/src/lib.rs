//! The scoreboard: one shared region per pool where each worker publishes
//! its state, read by the master for process management and status.
//!
//! Workers belong to a tenant and may be hostile, so the region is a flat
//! array of 64-bit words: the reader copies words out, clamps every number
//! and checks every pid against the pids it spawned itself.

#![forbid(unsafe_code)]

mod durations;
mod layout;
mod opcache;
mod reader;
pub mod render;
mod writer;

pub use durations::{bucket_of, Durations, BUCKETS as DURATION_BUCKETS};
pub use layout::{region_words, ProcState, DURATION_BUCKETS_US, HEADER_WORDS, SLOT_WORDS};
pub use opcache::OpcacheStats;
pub use reader::{Published, Reader, SlotView};
pub use render::{
    fpm_get_status_json, parse_query, render, Format, PoolStatus, ProcStatus, Rendered,
};
pub use writer::SlotWriter;

/// Microseconds since the Unix epoch.
pub fn now_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// The status page's data for a pool, from its scoreboard as the pool's own
/// workers see it.
pub fn snapshot(
    words: &[std::sync::atomic::AtomicU64],
    pool: &str,
    pm: &str,
) -> (render::PoolStatus, Vec<render::ProcStatus>) {
    let reader = Reader::new(words);
    let now = now_us();
    let p = reader.published();
    // The pool's own process manager as the master published it (a
    // pm.status_listen pool reports its parent's).
    let pm = match p.pm {
        1 => "static",
        2 => "dynamic",
        3 => "ondemand",
        _ => pm,
    };
    let slots = reader.occupied();
    let idle = slots.iter().filter(|s| s.state == ProcState::Idle).count() as u64;
    let total = slots.len() as u64;
    let active = total - idle;
    let status = render::PoolStatus {
        pool: pool.to_string(),
        process_manager: pm.to_string(),
        start_time: p.start_s as i64,
        start_since: (now / 1_000_000).saturating_sub(p.start_s),
        accepted_conn: reader.accepted_conn(),
        listen_queue: p.listen_queue,
        max_listen_queue: p.max_listen_queue,
        listen_queue_len: p.listen_queue_len,
        idle_processes: idle,
        active_processes: active,
        total_processes: total,
        max_active_processes: p.max_active.max(active),
        max_children_reached: p.max_children_reached,
        slow_requests: p.slow_requests,
    };
    let procs = slots
        .iter()
        .map(|s| {
            let idle = s.state == ProcState::Idle;
            render::ProcStatus {
                pid: s.pid,
                state: s.state.label().to_string(),
                start_time: (s.started_us / 1_000_000) as i64,
                start_since: now.saturating_sub(s.started_us) / 1_000_000,
                requests: s.requests,
                request_duration: if idle {
                    s.last_duration_us
                } else {
                    now.saturating_sub(s.accepted_us)
                },
                request_method: s.method.clone(),
                request_uri: s.uri.clone(),
                content_length: s.content_length,
                user: s.user.clone(),
                script: s.script.clone(),
                last_request_cpu: s.last_cpu_x100 as f64 / 100.0,
                last_request_memory: s.last_memory,
            }
        })
        .collect();
    (status, procs)
}
