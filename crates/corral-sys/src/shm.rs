//! Shared memory the master creates (memfd) and hands to a pool's
//! processes. It is exposed only as a slice of `AtomicU64`: whatever a
//! worker writes there, the master reads words, never pointers or structs,
//! so a hostile tenant can at worst produce wrong numbers, which the reader
//! bounds-checks.

use std::num::NonZeroUsize;
use std::os::fd::{AsFd, OwnedFd};
use std::ptr::NonNull;
use std::sync::atomic::AtomicU64;

use nix::sys::mman::{mmap, munmap, MapFlags, ProtFlags};

use crate::{Result, SysError};

pub struct SharedWords {
    ptr: NonNull<AtomicU64>,
    len: usize,
}

impl SharedWords {
    /// A new zeroed region of `words` 64-bit words, with the fd to pass on.
    ///
    /// The file is sealed before anyone else sees it: its size can never
    /// change (no shrink, no grow) and the seals themselves are sealed. A
    /// tenant holding the descriptor can scribble on the words, which the
    /// master reads without trusting, but cannot truncate the file under
    /// the master's mapping, which would make the master's next read fault
    /// (SIGBUS). The inode is made 0600 (owner root) so that a tenant
    /// cannot reopen it through /proc with more rights than it was given.
    pub fn create(name: &str, words: usize) -> Result<(SharedWords, OwnedFd)> {
        use nix::fcntl::{fcntl, FcntlArg, SealFlag};
        use nix::sys::memfd::MemFdCreateFlag;
        let cname = std::ffi::CString::new(name).unwrap_or_default();
        let fd = nix::sys::memfd::memfd_create(
            &cname,
            MemFdCreateFlag::MFD_CLOEXEC | MemFdCreateFlag::MFD_ALLOW_SEALING,
        )
        .map_err(|e| SysError::errno("memfd_create", e))?;
        nix::unistd::ftruncate(&fd, (words * 8) as i64)
            .map_err(|e| SysError::errno("ftruncate", e))?;
        let raw = std::os::fd::AsRawFd::as_raw_fd(&fd);
        nix::sys::stat::fchmod(
            raw,
            nix::sys::stat::Mode::S_IRUSR | nix::sys::stat::Mode::S_IWUSR,
        )
        .map_err(|e| SysError::errno("fchmod(scoreboard)", e))?;
        let seals = SealFlag::F_SEAL_SHRINK | SealFlag::F_SEAL_GROW | SealFlag::F_SEAL_SEAL;
        fcntl(raw, FcntlArg::F_ADD_SEALS(seals))
            .map_err(|e| SysError::errno("fcntl(F_ADD_SEALS)", e))?;
        let got = fcntl(raw, FcntlArg::F_GET_SEALS)
            .map_err(|e| SysError::errno("fcntl(F_GET_SEALS)", e))?;
        if SealFlag::from_bits_truncate(got) & seals != seals {
            return Err(SysError::new(
                "scoreboard seals did not hold",
                std::io::ErrorKind::Unsupported,
            ));
        }
        let map = SharedWords::map(&fd, words)?;
        Ok((map, fd))
    }

    /// Whether `fd` is a scoreboard whose size nobody can change.
    pub fn is_sealed(fd: &impl AsFd) -> bool {
        use nix::fcntl::{fcntl, FcntlArg, SealFlag};
        let raw = std::os::fd::AsRawFd::as_raw_fd(&fd.as_fd());
        fcntl(raw, FcntlArg::F_GET_SEALS).is_ok_and(|s| {
            let s = SealFlag::from_bits_truncate(s);
            s.contains(SealFlag::F_SEAL_SHRINK | SealFlag::F_SEAL_GROW | SealFlag::F_SEAL_SEAL)
        })
    }

    /// A second, read-only open of the same region, for a process that may
    /// look but not write (a pm.status_listen pool reading its parent's).
    pub fn reopen_read_only(fd: &impl AsFd) -> Result<OwnedFd> {
        let raw = std::os::fd::AsRawFd::as_raw_fd(&fd.as_fd());
        std::fs::File::open(format!("/proc/self/fd/{raw}"))
            .map(OwnedFd::from)
            .map_err(|e| SysError::new("reopen scoreboard read-only", e))
    }

    /// Map an inherited region for reading and writing.
    pub fn map(fd: &impl AsFd, words: usize) -> Result<SharedWords> {
        SharedWords::map_with(fd, words, ProtFlags::PROT_READ | ProtFlags::PROT_WRITE)
    }

    /// Map an inherited region for reading only (any write faults).
    pub fn map_read_only(fd: &impl AsFd, words: usize) -> Result<SharedWords> {
        SharedWords::map_with(fd, words, ProtFlags::PROT_READ)
    }

    fn map_with(fd: &impl AsFd, words: usize, prot: ProtFlags) -> Result<SharedWords> {
        let len = NonZeroUsize::new(words * 8)
            .ok_or_else(|| SysError::new("mmap", std::io::ErrorKind::InvalidInput))?;
        let st = nix::sys::stat::fstat(std::os::fd::AsRawFd::as_raw_fd(&fd.as_fd()))
            .map_err(|e| SysError::errno("fstat", e))?;
        if (st.st_size as usize) < words * 8 {
            return Err(SysError::new(
                "scoreboard too small",
                std::io::ErrorKind::InvalidData,
            ));
        }
        // SAFETY: a fresh shared mapping of a file we checked is large enough
        // (and, for a scoreboard, sealed against shrinking); it is only ever
        // accessed as AtomicU64, which tolerates concurrent writers in other
        // processes.
        let ptr = unsafe { mmap(None, len, prot, MapFlags::MAP_SHARED, fd, 0) }
            .map_err(|e| SysError::errno("mmap", e))?;
        Ok(SharedWords {
            ptr: ptr.cast(),
            len: words,
        })
    }

    pub fn words(&self) -> &[AtomicU64] {
        // SAFETY: ptr/len describe a live mapping owned by self; AtomicU64
        // has the same layout as u64 and allows shared mutation.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl Drop for SharedWords {
    fn drop(&mut self) {
        // SAFETY: unmapping the region we mapped; no references outlive self.
        unsafe {
            let _ = munmap(self.ptr.cast(), self.len * 8);
        }
    }
}

/// A sealed-size anonymous file holding `bytes`, positioned at the start:
/// how the master hands a prototype its configuration without a file a
/// tenant could read or a pipe that could fill up before exec.
pub fn memfd_with(name: &str, bytes: &[u8]) -> Result<OwnedFd> {
    use std::io::{Seek, SeekFrom, Write};
    let cname = std::ffi::CString::new(name).unwrap_or_default();
    let fd = nix::sys::memfd::memfd_create(&cname, nix::sys::memfd::MemFdCreateFlag::MFD_CLOEXEC)
        .map_err(|e| SysError::errno("memfd_create", e))?;
    let mut f = std::fs::File::from(fd);
    f.write_all(bytes)
        .map_err(|e| SysError::new("memfd write", e))?;
    f.seek(SeekFrom::Start(0))
        .map_err(|e| SysError::new("memfd seek", e))?;
    Ok(OwnedFd::from(f))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::Ordering;

    #[test]
    fn a_scoreboard_cannot_be_truncated_or_grown() {
        let (words, fd) = SharedWords::create("corral-test", 16).unwrap();
        assert!(SharedWords::is_sealed(&fd));
        assert!(nix::unistd::ftruncate(&fd, 0).is_err(), "shrink must fail");
        assert!(
            nix::unistd::ftruncate(&fd, 1 << 20).is_err(),
            "grow must fail"
        );
        // Still readable in full: no SIGBUS.
        words.words()[15].store(7, Ordering::Relaxed);
        assert_eq!(words.words()[15].load(Ordering::Relaxed), 7);
    }

    #[test]
    fn a_read_only_reopen_sees_writes_and_cannot_write() {
        let (words, fd) = SharedWords::create("corral-test", 4).unwrap();
        let ro = SharedWords::reopen_read_only(&fd).unwrap();
        let view = SharedWords::map_read_only(&ro, 4).unwrap();
        words.words()[2].store(42, Ordering::Relaxed);
        assert_eq!(view.words()[2].load(Ordering::Relaxed), 42);
        assert!(
            SharedWords::map(&ro, 4).is_err(),
            "a writable map of a read-only open"
        );
    }
}
