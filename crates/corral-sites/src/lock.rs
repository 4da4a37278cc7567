//! One `corral site` command at a time per host: an exclusive flock on
//! `<state-dir>/lock`, held until the command ends (the kernel drops it if
//! the process dies, so a crash never leaves the host locked).

use std::fs::OpenOptions;
use std::path::Path;

use corral_sys::nix::fcntl::{Flock, FlockArg};

use crate::error::{Result, SitesError};

/// Held while alive.
pub struct SiteLock {
    _flock: Flock<std::fs::File>,
}

impl SiteLock {
    /// Blocks until the lock is ours.
    pub fn acquire(path: &Path) -> Result<SiteLock> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| SitesError::io(dir, e))?;
        }
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .map_err(|e| SitesError::io(path, e))?;
        let flock = Flock::lock(file, FlockArg::LockExclusive)
            .map_err(|(_, e)| SitesError::io(path, std::io::Error::from(e)))?;
        Ok(SiteLock { _flock: flock })
    }
}
