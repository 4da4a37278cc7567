//! The master's side. Everything read here was written by tenant code:
//! copy, clamp, and only believe slots whose pid the master spawned.

use std::sync::atomic::{AtomicU64, Ordering::*};

use crate::layout::*;

#[derive(Debug, Clone)]
pub struct SlotView {
    pub index: usize,
    pub pid: u32,
    pub state: ProcState,
    pub requests: u64,
    pub accepted_us: u64,
    pub changed_us: u64,
    pub started_us: u64,
    pub content_length: u64,
    pub last_duration_us: u64,
    pub last_cpu_x100: u64,
    pub last_memory: u64,
    pub method: String,
    pub uri: String,
    pub script: String,
    pub user: String,
}

/// Pool-wide numbers only the master knows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Published {
    pub start_s: u64,
    pub max_active: u64,
    pub max_children_reached: u64,
    pub slow_requests: u64,
    pub listen_queue: u64,
    pub max_listen_queue: u64,
    pub listen_queue_len: u64,
    /// The process manager: 1 static, 2 dynamic, 3 ondemand.
    pub pm: u64,
}

pub struct Reader<'a> {
    words: &'a [AtomicU64],
}

fn get_str(src: &[AtomicU64]) -> String {
    let mut out = Vec::with_capacity(src.len() * 8);
    for w in src {
        out.extend_from_slice(&w.load(Relaxed).to_le_bytes());
    }
    let end = out.iter().position(|&b| b == 0).unwrap_or(out.len());
    out.truncate(end);
    // Printable only: a slot is shown on status pages and in logs.
    String::from_utf8_lossy(&out)
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

impl<'a> Reader<'a> {
    pub fn new(words: &'a [AtomicU64]) -> Reader<'a> {
        Reader { words }
    }

    /// Initialise the header of a fresh region.
    pub fn format(&self, nslots: usize) {
        self.words[H_MAGIC].store(MAGIC, Relaxed);
        self.words[H_NSLOTS].store(nslots as u64, Relaxed);
    }

    pub fn nslots(&self) -> usize {
        (self.words.len().saturating_sub(HEADER_WORDS)) / SLOT_WORDS
    }

    /// The master's pool-wide numbers, for the workers' status page.
    pub fn publish(&self, p: &Published) {
        self.words[H_START_S].store(p.start_s, Relaxed);
        self.words[H_MAX_ACTIVE].store(p.max_active, Relaxed);
        self.words[H_MAX_CHILDREN_REACHED].store(p.max_children_reached, Relaxed);
        self.words[H_SLOW].store(p.slow_requests, Relaxed);
        self.words[H_LISTEN_QUEUE].store(p.listen_queue, Relaxed);
        self.words[H_MAX_LISTEN_QUEUE].store(p.max_listen_queue, Relaxed);
        self.words[H_LISTEN_QUEUE_LEN].store(p.listen_queue_len, Relaxed);
        self.words[H_PM].store(p.pm, Relaxed);
    }

    /// A worker is gone: its slot no longer describes anyone.
    pub fn clear_slot(&self, index: usize) {
        if index < self.nslots() {
            let s = &self.words
                [HEADER_WORDS + index * SLOT_WORDS..HEADER_WORDS + (index + 1) * SLOT_WORDS];
            s[S_PID].store(0, Release);
            s[S_STATE].store(0, Release);
        }
    }

    /// Every occupied slot, as the pool's own workers see their board (the
    /// status page): here the reader is a worker of the same tenant, so
    /// the pids are taken as written.
    pub fn occupied(&self) -> Vec<SlotView> {
        (0..self.nslots())
            .filter_map(|i| {
                let s =
                    &self.words[HEADER_WORDS + i * SLOT_WORDS..HEADER_WORDS + (i + 1) * SLOT_WORDS];
                let pid = s[S_PID].load(Acquire);
                if pid == 0 || pid > u32::MAX as u64 {
                    return None;
                }
                self.slot(i, pid as u32)
            })
            .collect()
    }

    pub fn published(&self) -> Published {
        Published {
            start_s: self.words[H_START_S].load(Relaxed),
            max_active: self.words[H_MAX_ACTIVE].load(Relaxed),
            max_children_reached: self.words[H_MAX_CHILDREN_REACHED].load(Relaxed),
            slow_requests: self.words[H_SLOW].load(Relaxed),
            listen_queue: self.words[H_LISTEN_QUEUE].load(Relaxed),
            max_listen_queue: self.words[H_MAX_LISTEN_QUEUE].load(Relaxed),
            listen_queue_len: self.words[H_LISTEN_QUEUE_LEN].load(Relaxed),
            pm: self.words[H_PM].load(Relaxed),
        }
    }

    /// The request-duration histogram the pool's workers count.
    pub fn durations(&self) -> crate::Durations {
        crate::durations::read(&self.words[..HEADER_WORDS])
    }

    /// The pool's OPcache as a worker last reported it, if consistent and
    /// plausible.
    pub fn opcache(&self) -> Option<crate::OpcacheStats> {
        crate::opcache::read(&self.words[..HEADER_WORDS])
    }

    pub fn accepted_conn(&self) -> u64 {
        self.words[H_ACCEPTED].load(Relaxed)
    }

    /// The slot at `index`, if its pid is `expected_pid`.
    pub fn slot(&self, index: usize, expected_pid: u32) -> Option<SlotView> {
        if index >= self.nslots() {
            return None;
        }
        let s =
            &self.words[HEADER_WORDS + index * SLOT_WORDS..HEADER_WORDS + (index + 1) * SLOT_WORDS];
        let pid = s[S_PID].load(Acquire);
        if pid != expected_pid as u64 {
            return None;
        }
        // Strings under a sequence counter; give up after a few tries rather
        // than spin on a tenant that keeps it odd.
        let mut strings = (String::new(), String::new(), String::new(), String::new());
        for _ in 0..4 {
            let before = s[S_SEQ].load(Acquire);
            strings = (
                get_str(&s[S_METHOD..S_METHOD + STR_WORDS_METHOD]),
                get_str(&s[S_URI..S_URI + STR_WORDS_URI]),
                get_str(&s[S_SCRIPT..S_SCRIPT + STR_WORDS_SCRIPT]),
                get_str(&s[S_USER..S_USER + STR_WORDS_USER]),
            );
            if before & 1 == 0 && s[S_SEQ].load(Acquire) == before {
                break;
            }
        }
        Some(SlotView {
            index,
            pid: expected_pid,
            state: ProcState::from_word(s[S_STATE].load(Acquire)),
            requests: s[S_REQUESTS].load(Relaxed),
            accepted_us: s[S_ACCEPTED_US].load(Relaxed),
            changed_us: s[S_CHANGED_US].load(Relaxed),
            started_us: s[S_STARTED_US].load(Relaxed),
            content_length: s[S_CONTENT_LENGTH].load(Relaxed),
            last_duration_us: s[S_LAST_DURATION_US].load(Relaxed),
            last_cpu_x100: s[S_LAST_CPU_X100].load(Relaxed),
            last_memory: s[S_LAST_MEMORY].load(Relaxed),
            method: strings.0,
            uri: strings.1,
            script: strings.2,
            user: strings.3,
        })
    }
}
