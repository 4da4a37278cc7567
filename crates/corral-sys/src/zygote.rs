//! What the zygote needs from the kernel and the dynamic
//! loader: become a child subreaper (the master), preload shared objects,
//! and turn a fresh fork into what an exec would have produced (descriptors
//! at fixed numbers, a cgroup, a command line).

use std::os::fd::RawFd;
use std::path::Path;

use crate::{Result, SysError};

/// While on, orphans of our descendants are re-parented to us instead of
/// init. The master turns it on for the moment of a launch only: the
/// prototype the zygote forks (whose middle parent exits at once) becomes
/// the master's own child, and no other orphan (a dying prototype's
/// workers) is adopted at other times.
pub fn set_child_subreaper(on: bool) -> Result<()> {
    // SAFETY: prctl with PR_SET_CHILD_SUBREAPER takes an int flag.
    let rc = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, on as libc::c_ulong, 0, 0, 0) };
    if rc != 0 {
        return Err(SysError::new(
            "prctl(PR_SET_CHILD_SUBREAPER)",
            std::io::Error::last_os_error(),
        ));
    }
    Ok(())
}

/// dlopen(3) `path` the way PHP loads an extension (lazy binding, global
/// symbols), and keep it loaded for the life of the process: when PHP later
/// opens the same file, the loader finds it mapped, relocated and
/// initialised, and only counts a reference.
pub fn preload(path: &Path) -> Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|_| SysError::new("preload path", std::io::ErrorKind::InvalidInput))?;
    // SAFETY: `c` is a valid C string; the handle is deliberately never
    // closed (the library must stay mapped for every later fork).
    let handle = unsafe { libc::dlopen(c.as_ptr(), libc::RTLD_LAZY | libc::RTLD_GLOBAL) };
    if handle.is_null() {
        return Err(SysError::new(
            format!("dlopen({})", path.display()),
            std::io::Error::other(dl_error()),
        ));
    }
    Ok(())
}

fn dl_error() -> String {
    // SAFETY: dlerror returns NULL or a C string valid until the next dl*
    // call on this thread; it is copied at once.
    unsafe {
        let e = libc::dlerror();
        if e.is_null() {
            "unknown error".into()
        } else {
            std::ffi::CStr::from_ptr(e).to_string_lossy().into_owned()
        }
    }
}

/// Wait (briefly) until our parent is `expected`: after a double fork the
/// grandchild is re-parented to the subreaper only once the middle process
/// has exited. False if that did not happen within `tries` short sleeps.
pub fn await_parent(expected: nix::unistd::Pid, tries: u32) -> bool {
    for _ in 0..tries {
        if nix::unistd::getppid() == expected {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_micros(50));
    }
    nix::unistd::getppid() == expected
}

/// Place each `(target, source)` at `target`, close-on-exec cleared, as an
/// exec'd child would find them. Sources are first moved above every
/// target, so placing one never clobbers another still to be placed.
pub fn place_fds(placements: &[(RawFd, RawFd)]) -> Result<()> {
    let mut staged = Vec::with_capacity(placements.len());
    for &(target, fd) in placements {
        let d = nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_DUPFD_CLOEXEC(100))
            .map_err(|e| SysError::errno("dup", e))?;
        staged.push((target, d));
    }
    for &(target, d) in &staged {
        crate::process::dup_to(d, target)?;
    }
    for (_, d) in staged {
        let _ = nix::unistd::close(d);
    }
    Ok(())
}

/// stdin on /dev/null, as for an exec'd prototype.
pub fn stdin_null() {
    if let Ok(null) = std::fs::File::open("/dev/null") {
        use std::os::fd::AsRawFd;
        let _ = nix::unistd::dup2(null.as_raw_fd(), 0);
    }
}

/// Write ourselves into each cgroup.procs file of `paths`.
pub fn join_cgroups(paths: &[std::path::PathBuf]) -> Result<()> {
    for p in paths {
        std::fs::write(p, b"0")
            .map_err(|e| SysError::new(format!("cannot enter cgroup {}", p.display()), e))?;
    }
    Ok(())
}

/// Make /proc/self/cmdline read `title` (what `ps` shows), as if we had
/// been exec'd with it as argv[0], by overwriting our argument strings in
/// place (setproctitle's way; PR_SET_MM would need CAP_SYS_RESOURCE, which
/// containers often drop). The zygote is exec'd with a padded argument
/// area for this; a longer title is cut to fit.
pub fn set_cmdline(title: &str) -> Result<()> {
    let (start, end) = arg_area()?;
    let len = end.saturating_sub(start);
    if len < 2 {
        return Err(SysError::new("argv area", std::io::ErrorKind::InvalidInput));
    }
    let mut bytes: Vec<u8> = title.bytes().filter(|&b| b != 0).take(len - 1).collect();
    bytes.push(0);
    // After the NUL, anything but NUL up to the area's last byte: the
    // kernel then reads the command line up to the first NUL, so
    // /proc/self/cmdline is exactly "title\0".
    bytes.resize(len, b' ');
    // SAFETY: [start, end) is this process's own argument area, as the
    // kernel reports it in /proc/self/stat; it is writable stack memory
    // that nothing else in this single-threaded process is reading.
    unsafe {
        std::ptr::copy_nonoverlapping(bytes.as_ptr(), start as *mut u8, len);
    }
    Ok(())
}

/// `arg_start` and `arg_end` from /proc/self/stat (fields 48 and 49).
fn arg_area() -> Result<(usize, usize)> {
    let field = |n| {
        crate::process::stat_field("self", n)
            .and_then(|f| f.parse().ok())
            .ok_or_else(|| SysError::new("read /proc/self/stat", std::io::ErrorKind::InvalidData))
    };
    Ok((field(48)?, field(49)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_argument_area_is_found() {
        let (start, end) = arg_area().unwrap();
        assert!(start > 0 && end > start, "{start:x}..{end:x}");
    }

    #[test]
    fn preloading_a_missing_object_says_which() {
        let e = preload(Path::new("/nonexistent/corral-test.so")).unwrap_err();
        assert!(e.to_string().contains("/nonexistent/corral-test.so"), "{e}");
    }

    #[test]
    fn preloading_a_real_object_works_twice() {
        // libm is mapped into every Rust test binary's neighbourhood.
        let libm = [
            "/lib/x86_64-linux-gnu/libm.so.6",
            "/usr/lib/x86_64-linux-gnu/libm.so.6",
        ]
        .into_iter()
        .map(Path::new)
        .find(|p| p.exists());
        let Some(libm) = libm else {
            eprintln!("SKIPPED: no libm.so.6 at the Debian paths");
            return;
        };
        preload(libm).unwrap();
        preload(libm).unwrap();
    }
}
