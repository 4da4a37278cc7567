//! The scoreboard: one shared region per pool where each worker publishes
//! its state, read by the master for process management and status.
//!
//! Workers belong to a tenant and may be hostile, so the region is a flat
//! array of 64-bit words: the reader copies words out, clamps every number
//! and checks every pid against the pids it spawned itself.

mod layout;
mod reader;
mod writer;

pub use layout::{region_words, ProcState, HEADER_WORDS, SLOT_WORDS};
pub use reader::{Reader, SlotView};
pub use writer::SlotWriter;

/// Microseconds since the Unix epoch.
pub fn now_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}
