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
    pub fn create(name: &str, words: usize) -> Result<(SharedWords, OwnedFd)> {
        let cname = std::ffi::CString::new(name).unwrap_or_default();
        let fd =
            nix::sys::memfd::memfd_create(&cname, nix::sys::memfd::MemFdCreateFlag::MFD_CLOEXEC)
                .map_err(|e| SysError::errno("memfd_create", e))?;
        nix::unistd::ftruncate(&fd, (words * 8) as i64)
            .map_err(|e| SysError::errno("ftruncate", e))?;
        let map = SharedWords::map(&fd, words)?;
        Ok((map, fd))
    }

    /// Map an inherited region.
    pub fn map(fd: &impl AsFd, words: usize) -> Result<SharedWords> {
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
        // SAFETY: a fresh shared mapping of a file we checked is large enough;
        // it is only ever accessed as AtomicU64, which tolerates concurrent
        // writers in other processes.
        let ptr = unsafe {
            mmap(
                None,
                len,
                ProtFlags::PROT_READ | ProtFlags::PROT_WRITE,
                MapFlags::MAP_SHARED,
                fd,
                0,
            )
        }
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
