//! The one crate that talks to the kernel with raw calls. Everything here is
//! a small, documented wrapper: the rest of corral stays free of `unsafe`
//! (but for the PHP shim in `corral-php`).

pub mod cred;
pub mod landlock_abi;
pub mod poller;
pub mod process;
pub mod shm;
pub mod signal;
pub mod socket;
pub mod zygote;

pub use nix;

/// A failed system call, with what we were doing when it failed.
#[derive(Debug, thiserror::Error)]
#[error("{what}: {source}")]
pub struct SysError {
    pub what: String,
    #[source]
    pub source: std::io::Error,
}

impl SysError {
    pub fn new(what: impl Into<String>, source: impl Into<std::io::Error>) -> Self {
        SysError {
            what: what.into(),
            source: source.into(),
        }
    }
    pub fn errno(what: impl Into<String>, e: nix::errno::Errno) -> Self {
        SysError::new(what, std::io::Error::from_raw_os_error(e as i32))
    }
}

pub type Result<T> = std::result::Result<T, SysError>;
