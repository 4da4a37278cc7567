//! Word offsets. Header, then `nslots` slots of [`SLOT_WORDS`] words.

pub const MAGIC: u64 = 0x636f_7272_616c_5342; // "corralSB"
pub const HEADER_WORDS: usize = 48;
pub const SLOT_WORDS: usize = 64;

// Header words.
pub const H_MAGIC: usize = 0;
pub const H_NSLOTS: usize = 1;
pub const H_ACCEPTED: usize = 2;
// Written by the master each tick, read by workers for the status page.
pub const H_START_S: usize = 3;
pub const H_MAX_ACTIVE: usize = 4;
pub const H_MAX_CHILDREN_REACHED: usize = 5;
pub const H_SLOW: usize = 6;
pub const H_LISTEN_QUEUE: usize = 7;
pub const H_MAX_LISTEN_QUEUE: usize = 8;
pub const H_LISTEN_QUEUE_LEN: usize = 9;
/// 1 static, 2 dynamic, 3 ondemand (0: not published yet).
pub const H_PM: usize = 10;

// Written by workers: the request-duration histogram, one word per bucket
// (not cumulative) and the sum of durations in microseconds.
pub const H_DURATION_SUM_US: usize = 16;
pub const H_DURATION_BUCKETS: usize = 17; // DURATION_BUCKETS_US.len() + 1 words (+Inf last)

// Written by workers: the pool's OPcache as PHP reports it, under a
// sequence counter (odd while writing).
pub const H_OPCACHE_SEQ: usize = 32;
pub const H_OPCACHE_USED: usize = 33;
pub const H_OPCACHE_FREE: usize = 34;
pub const H_OPCACHE_WASTED: usize = 35;
pub const H_OPCACHE_HITS: usize = 36;
pub const H_OPCACHE_MISSES: usize = 37;
pub const H_OPCACHE_SCRIPTS: usize = 38;
/// When the numbers were written (Unix seconds); 0: never.
pub const H_OPCACHE_AT_S: usize = 39;

/// Upper bounds of the request-duration histogram's buckets, in
/// microseconds (Prometheus' usual seconds scale, up to 30 s); a last,
/// unbounded bucket follows.
pub const DURATION_BUCKETS_US: [u64; 12] = [
    5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000, 2_500_000, 5_000_000,
    10_000_000, 30_000_000,
];

// Slot words.
pub const S_PID: usize = 0;
pub const S_STATE: usize = 1;
pub const S_SEQ: usize = 2;
pub const S_REQUESTS: usize = 3;
pub const S_ACCEPTED_US: usize = 4;
pub const S_CHANGED_US: usize = 5;
pub const S_CONTENT_LENGTH: usize = 6;
pub const S_LAST_DURATION_US: usize = 7;
pub const S_LAST_CPU_X100: usize = 8;
pub const S_LAST_MEMORY: usize = 9;
pub const S_STARTED_US: usize = 10;
pub const S_METHOD: usize = 12; // 2 words
pub const S_URI: usize = 16; // 16 words
pub const S_SCRIPT: usize = 32; // 16 words
pub const S_USER: usize = 48; // 4 words
pub const STR_WORDS_METHOD: usize = 2;
pub const STR_WORDS_URI: usize = 16;
pub const STR_WORDS_SCRIPT: usize = 16;
pub const STR_WORDS_USER: usize = 4;

/// php-fpm's request stages, as they appear on the status page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcState {
    Free = 0,
    Idle = 1,
    ReadingHeaders = 2,
    GettingInfo = 3,
    Running = 4,
    Ending = 5,
    Finishing = 6,
}

impl ProcState {
    pub fn from_word(w: u64) -> ProcState {
        match w {
            1 => ProcState::Idle,
            2 => ProcState::ReadingHeaders,
            3 => ProcState::GettingInfo,
            4 => ProcState::Running,
            5 => ProcState::Ending,
            6 => ProcState::Finishing,
            _ => ProcState::Free,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            ProcState::Free | ProcState::Idle => "Idle",
            ProcState::ReadingHeaders => "Reading headers",
            ProcState::GettingInfo => "Getting request information",
            ProcState::Running => "Running",
            ProcState::Ending => "Ending",
            ProcState::Finishing => "Finishing",
        }
    }
}

/// Words needed for `nslots` slots.
pub fn region_words(nslots: usize) -> usize {
    HEADER_WORDS + nslots * SLOT_WORDS
}

// The histogram's words end before the OPcache's, which end inside the header.
const _: () = assert!(H_DURATION_BUCKETS + DURATION_BUCKETS_US.len() < H_OPCACHE_SEQ);
const _: () = assert!(H_OPCACHE_AT_S < HEADER_WORDS);
