//! Stable names for pools and generations. A reload adds and removes both
//! while events for them are in flight; an id, unlike a position in a
//! list, still means the same thing after that.

use std::fmt;

/// One pool as the master supervises it (its socket and generations).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PoolId(u64);

/// One generation of a pool: a prototype, its scoreboard and its workers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GenId(u64);

impl fmt::Display for PoolId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "pool#{}", self.0)
    }
}

impl GenId {
    /// The number that names the generation's cgroup leaf (`g<N>`): never
    /// reused for the life of the master.
    pub fn number(self) -> u64 {
        self.0
    }
}

impl fmt::Display for GenId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "gen#{}", self.0)
    }
}

/// Hands out ids that are never reused for the life of the master.
#[derive(Debug, Default)]
pub struct Ids {
    next: u64,
}

impl Ids {
    pub fn pool(&mut self) -> PoolId {
        self.next += 1;
        PoolId(self.next)
    }
    pub fn generation(&mut self) -> GenId {
        self.next += 1;
        GenId(self.next)
    }
}
