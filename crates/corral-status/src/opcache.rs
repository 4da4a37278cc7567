//! The pool's OPcache, as one of its workers last saw it.
//!
//! The master never loads PHP, so it cannot ask OPcache itself; every
//! worker of a pool shares one OPcache (its prototype's), and a worker
//! copies its numbers into the scoreboard header at most once a second.
//! Workers run tenant code, so the reader believes nothing it cannot
//! check: a torn or endlessly rewritten record is dropped, and numbers
//! that no real OPcache could have are refused. A tenant can still report
//! plausible wrong numbers for its own pool, and only for its own pool.

use std::sync::atomic::{AtomicU64, Ordering::*};

use crate::layout::*;

/// OPcache's `memory_consumption` cannot exceed this (PHP caps it far
/// lower in practice); anything larger was forged.
pub const MAX_MEMORY: u64 = 1 << 40;
/// Hits and misses beyond this were forged (and would lose precision).
pub const MAX_COUNT: u64 = 1 << 53;
/// More cached scripts than `opcache.max_accelerated_files` allows
/// (1 000 000).
pub const MAX_SCRIPTS: u64 = 1 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OpcacheStats {
    pub used_memory: u64,
    pub free_memory: u64,
    pub wasted_memory: u64,
    pub hits: u64,
    pub misses: u64,
    pub cached_scripts: u64,
    /// When a worker wrote them (Unix seconds).
    pub at_s: u64,
}

impl OpcacheStats {
    /// hits / (hits + misses), or None before the first lookup.
    pub fn hit_ratio(&self) -> Option<f64> {
        let total = self.hits.checked_add(self.misses)?;
        (total > 0).then(|| self.hits as f64 / total as f64)
    }

    /// Numbers a real OPcache could report.
    pub fn plausible(&self) -> bool {
        let memory = self
            .used_memory
            .checked_add(self.free_memory)
            .and_then(|m| m.checked_add(self.wasted_memory));
        memory.is_some_and(|m| m > 0 && m <= MAX_MEMORY)
            && self.hits <= MAX_COUNT
            && self.misses <= MAX_COUNT
            && self.cached_scripts <= MAX_SCRIPTS
            && self.at_s > 0
    }
}

/// The worker's side: one record under the sequence counter.
pub(crate) fn write(header: &[AtomicU64], s: &OpcacheStats) {
    let seq = header[H_OPCACHE_SEQ].fetch_add(1, AcqRel) | 1; // odd: writing
    header[H_OPCACHE_USED].store(s.used_memory, Relaxed);
    header[H_OPCACHE_FREE].store(s.free_memory, Relaxed);
    header[H_OPCACHE_WASTED].store(s.wasted_memory, Relaxed);
    header[H_OPCACHE_HITS].store(s.hits, Relaxed);
    header[H_OPCACHE_MISSES].store(s.misses, Relaxed);
    header[H_OPCACHE_SCRIPTS].store(s.cached_scripts, Relaxed);
    header[H_OPCACHE_AT_S].store(s.at_s, Relaxed);
    header[H_OPCACHE_SEQ].store(seq.wrapping_add(1), Release);
}

/// When the record was last written, for a worker deciding whether to
/// write it again (no sequence check: a wrong answer only costs a write).
pub(crate) fn written_at(header: &[AtomicU64]) -> u64 {
    header[H_OPCACHE_AT_S].load(Relaxed)
}

/// The master's side: a consistent, plausible record, or nothing. A few
/// tries only: a tenant that keeps the counter odd gets no numbers, it
/// does not get the master to spin.
pub(crate) fn read(header: &[AtomicU64]) -> Option<OpcacheStats> {
    for _ in 0..4 {
        let before = header[H_OPCACHE_SEQ].load(Acquire);
        let s = OpcacheStats {
            used_memory: header[H_OPCACHE_USED].load(Relaxed),
            free_memory: header[H_OPCACHE_FREE].load(Relaxed),
            wasted_memory: header[H_OPCACHE_WASTED].load(Relaxed),
            hits: header[H_OPCACHE_HITS].load(Relaxed),
            misses: header[H_OPCACHE_MISSES].load(Relaxed),
            cached_scripts: header[H_OPCACHE_SCRIPTS].load(Relaxed),
            at_s: header[H_OPCACHE_AT_S].load(Relaxed),
        };
        if before & 1 == 0 && header[H_OPCACHE_SEQ].load(Acquire) == before {
            return s.plausible().then_some(s);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> Vec<AtomicU64> {
        (0..HEADER_WORDS).map(|_| AtomicU64::new(0)).collect()
    }

    fn sample() -> OpcacheStats {
        OpcacheStats {
            used_memory: 9 << 20,
            free_memory: 119 << 20,
            wasted_memory: 0,
            hits: 75,
            misses: 25,
            cached_scripts: 12,
            at_s: 1_700_000_000,
        }
    }

    #[test]
    fn a_record_round_trips() {
        let h = header();
        assert_eq!(read(&h), None, "nothing written yet");
        write(&h, &sample());
        assert_eq!(read(&h), Some(sample()));
        assert_eq!(read(&h).unwrap().hit_ratio(), Some(0.75));
        write(&h, &sample());
        assert_eq!(
            read(&h),
            Some(sample()),
            "the counter stays even between writes"
        );
    }

    #[test]
    fn a_record_being_written_is_not_read() {
        let h = header();
        write(&h, &sample());
        h[H_OPCACHE_SEQ].store(7, Relaxed);
        assert_eq!(read(&h), None);
    }

    #[test]
    fn implausible_numbers_are_refused() {
        let h = header();
        for forged in [
            OpcacheStats {
                used_memory: u64::MAX,
                free_memory: 2,
                ..sample()
            },
            OpcacheStats {
                used_memory: MAX_MEMORY,
                free_memory: 1,
                ..sample()
            },
            OpcacheStats {
                used_memory: 0,
                free_memory: 0,
                wasted_memory: 0,
                ..sample()
            },
            OpcacheStats {
                hits: u64::MAX,
                ..sample()
            },
            OpcacheStats {
                cached_scripts: MAX_SCRIPTS + 1,
                ..sample()
            },
        ] {
            write(&h, &forged);
            assert_eq!(read(&h), None, "{forged:?}");
        }
        assert_eq!(
            OpcacheStats {
                hits: 0,
                misses: 0,
                ..sample()
            }
            .hit_ratio(),
            None
        );
    }
}
