//! The worker's side: publish state changes into its own slot.

use std::sync::atomic::{AtomicU64, Ordering::*};

use crate::layout::*;
use crate::now_us;

pub struct SlotWriter<'a> {
    header: &'a [AtomicU64],
    slot: &'a [AtomicU64],
}

fn put_str(dst: &[AtomicU64], s: &[u8]) {
    let mut bytes = [0u8; 8];
    for (i, w) in dst.iter().enumerate() {
        bytes.fill(0);
        let start = i * 8;
        if start < s.len() {
            let end = (start + 8).min(s.len());
            bytes[..end - start].copy_from_slice(&s[start..end]);
        }
        w.store(u64::from_le_bytes(bytes), Relaxed);
    }
}

impl<'a> SlotWriter<'a> {
    /// The slot `index` of a region, or None when out of range.
    pub fn new(words: &'a [AtomicU64], index: usize) -> Option<SlotWriter<'a>> {
        let start = HEADER_WORDS + index * SLOT_WORDS;
        let slot = words.get(start..start + SLOT_WORDS)?;
        Some(SlotWriter {
            header: &words[..HEADER_WORDS],
            slot,
        })
    }

    pub fn init(&self, pid: u32) {
        for w in self.slot {
            w.store(0, Relaxed);
        }
        self.slot[S_STARTED_US].store(now_us(), Relaxed);
        self.slot[S_PID].store(pid as u64, Release);
        self.set_state(ProcState::Idle);
    }

    pub fn set_state(&self, state: ProcState) {
        self.slot[S_CHANGED_US].store(now_us(), Relaxed);
        self.slot[S_STATE].store(state as u64, Release);
    }

    /// A connection has been accepted and its headers are being read.
    pub fn accepting(&self) {
        self.header[H_ACCEPTED].fetch_add(1, Relaxed);
        self.slot[S_ACCEPTED_US].store(now_us(), Relaxed);
        self.slot[S_REQUESTS].fetch_add(1, Relaxed);
        self.set_state(ProcState::ReadingHeaders);
    }

    /// What the request is, for status and the slow log.
    pub fn request_info(
        &self,
        method: &[u8],
        uri: &[u8],
        script: &[u8],
        user: &[u8],
        content_length: u64,
    ) {
        let seq = self.slot[S_SEQ].fetch_add(1, AcqRel); // odd: writing
        put_str(&self.slot[S_METHOD..S_METHOD + STR_WORDS_METHOD], method);
        put_str(&self.slot[S_URI..S_URI + STR_WORDS_URI], uri);
        put_str(&self.slot[S_SCRIPT..S_SCRIPT + STR_WORDS_SCRIPT], script);
        put_str(&self.slot[S_USER..S_USER + STR_WORDS_USER], user);
        self.slot[S_CONTENT_LENGTH].store(content_length, Relaxed);
        self.slot[S_SEQ].store(seq.wrapping_add(2) & !1, Release);
        self.set_state(ProcState::Running);
    }

    pub fn finished(&self, cpu_x100: u64, memory: u64) {
        let started = self.slot[S_ACCEPTED_US].load(Relaxed);
        let duration = now_us().saturating_sub(started);
        self.slot[S_LAST_DURATION_US].store(duration, Relaxed);
        crate::durations::observe(self.header, duration);
        self.slot[S_LAST_CPU_X100].store(cpu_x100, Relaxed);
        self.slot[S_LAST_MEMORY].store(memory, Relaxed);
        self.set_state(ProcState::Idle);
    }

    /// Publish the pool's OPcache numbers (every worker of a pool shares
    /// one OPcache, so any worker's view is the pool's).
    pub fn opcache(&self, stats: &crate::OpcacheStats) {
        crate::opcache::write(self.header, stats);
    }

    /// When some worker of the pool last published OPcache numbers
    /// (Unix seconds, 0 never): workers publish at most once a second.
    pub fn opcache_written_at(&self) -> u64 {
        crate::opcache::written_at(self.header)
    }
}
