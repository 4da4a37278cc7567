//! fork, exit and the process-control knobs a worker needs.

use nix::unistd::{ForkResult, Pid};

use crate::{Result, SysError};

/// Which side of a fork we are on.
pub enum Forked {
    Parent(Pid),
    Child,
}

/// fork(2). The caller must be single-threaded: only the calling thread
/// survives in the child, and locks held by other threads would stay held.
pub fn fork() -> Result<Forked> {
    // SAFETY: corral's master and prototypes are single-threaded by design
    // (no runtime, no helper threads), so the child inherits no held locks.
    match unsafe { nix::unistd::fork() } {
        Ok(ForkResult::Parent { child }) => Ok(Forked::Parent(child)),
        Ok(ForkResult::Child) => Ok(Forked::Child),
        Err(e) => Err(SysError::errno("fork() failed", e)),
    }
}

/// Leave the process at once: no destructors, no atexit handlers, no stdio
/// flush. A forked child must never run the parent's destructors.
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit is always safe to call; it does not return.
    unsafe { libc::_exit(code) }
}

/// Ask the kernel to send `sig` to us when our parent dies, then close the
/// race where the parent died before the call.
pub fn die_with_parent(sig: i32, expected_parent: Pid) -> Result<()> {
    // SAFETY: prctl with PR_SET_PDEATHSIG takes an int signal number.
    let rc = unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, sig as libc::c_ulong, 0, 0, 0) };
    if rc != 0 {
        return Err(SysError::new(
            "prctl(PR_SET_PDEATHSIG)",
            std::io::Error::last_os_error(),
        ));
    }
    if nix::unistd::getppid() != expected_parent {
        exit_now(0);
    }
    Ok(())
}

/// php-fpm's process.dumpable: allow the same user to trace us (slow log).
pub fn set_dumpable(on: bool) -> Result<()> {
    // SAFETY: prctl with PR_SET_DUMPABLE takes 0 or 1.
    let rc = unsafe { libc::prctl(libc::PR_SET_DUMPABLE, on as libc::c_ulong, 0, 0, 0) };
    if rc != 0 {
        return Err(SysError::new(
            "prctl(PR_SET_DUMPABLE)",
            std::io::Error::last_os_error(),
        ));
    }
    Ok(())
}

/// setrlimit with soft = hard, as php-fpm does.
pub fn set_rlimit(resource: nix::sys::resource::Resource, value: u64) -> Result<()> {
    nix::sys::resource::setrlimit(resource, value, value)
        .map_err(|e| SysError::errno(format!("setrlimit({resource:?}, {value})"), e))
}

/// setpriority for this process.
pub fn set_priority(prio: i32) -> Result<()> {
    // SAFETY: plain syscall on our own pid.
    let rc = unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, prio) };
    if rc != 0 {
        return Err(SysError::new(
            "setpriority()",
            std::io::Error::last_os_error(),
        ));
    }
    Ok(())
}

/// Clear the environment (clear_env = yes).
pub fn clear_env() {
    // SAFETY: called only in single-threaded children before PHP starts; no
    // other thread can be reading the environment.
    unsafe {
        libc::clearenv();
    }
}

/// Set an environment variable in a single-threaded child.
pub fn set_env(key: &str, value: &str) {
    if key.is_empty() || key.contains('=') || key.contains('\0') || value.contains('\0') {
        return;
    }
    std::env::set_var(key, value);
}

/// Move `fd` to `target` (dup2) and clear close-on-exec on it, so it survives
/// exec under a number the child is told on its command line.
pub fn dup_to(fd: i32, target: i32) -> Result<()> {
    if fd != target {
        nix::unistd::dup2(fd, target)
            .map_err(|e| SysError::errno(format!("dup2({fd}, {target})"), e))?;
    }
    let flags = nix::fcntl::fcntl(target, nix::fcntl::FcntlArg::F_GETFD)
        .map_err(|e| SysError::errno("fcntl(F_GETFD)", e))?;
    let mut flags = nix::fcntl::FdFlag::from_bits_truncate(flags);
    flags.remove(nix::fcntl::FdFlag::FD_CLOEXEC);
    nix::fcntl::fcntl(target, nix::fcntl::FcntlArg::F_SETFD(flags))
        .map_err(|e| SysError::errno("fcntl(F_SETFD)", e))?;
    Ok(())
}

/// Mark an fd close-on-exec.
pub fn set_cloexec(fd: i32) -> Result<()> {
    nix::fcntl::fcntl(
        fd,
        nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
    )
    .map_err(|e| SysError::errno("fcntl(F_SETFD)", e))?;
    Ok(())
}

/// Close every fd above `keep_max` (inherited leftovers after exec).
pub fn close_fds_above(keep_max: i32) {
    // SAFETY: close_range only closes descriptors; we own everything above
    // keep_max by construction (fresh exec).
    unsafe {
        libc::syscall(
            libc::SYS_close_range,
            (keep_max + 1) as libc::c_uint,
            libc::c_uint::MAX,
            0 as libc::c_uint,
        );
    }
}

/// Borrow a descriptor that was placed at a fixed number before exec and
/// stays open for the life of the process (the prototype's 3, 4, 5).
pub fn fixed_fd(fd: i32) -> std::os::fd::BorrowedFd<'static> {
    // SAFETY: callers only pass the descriptor numbers the master dup2'd
    // into place before exec; they are never closed while the process runs.
    unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) }
}

/// The binary a prototype is exec'd from: `/proc/self/exe`, the master's
/// own inode even after a package upgrade replaced the file, unless
/// `CORRAL_SELF_EXE` names another path. That exists for tools that wrap a
/// process and follow its execs (valgrind: under it, /proc/self/exe is the
/// tool, not corral; `bench/callgrind.sh` uses it). Only whoever starts the
/// master sets its environment.
fn self_exe() -> std::ffi::CString {
    let path = std::env::var_os("CORRAL_SELF_EXE")
        .map(std::os::unix::ffi::OsStringExt::into_vec)
        .unwrap_or_else(|| b"/proc/self/exe".to_vec());
    std::ffi::CString::new(path).unwrap_or_else(|_| c"/proc/self/exe".to_owned())
}

/// fork + exec ourselves (`/proc/self/exe`) with `argv`, the current
/// environment plus `extra_env`, and each `(target, source)` descriptor of
/// `placements` placed at `target`; stdin on /dev/null, stdout/stderr
/// inherited. Only async-signal-safe calls run between fork and exec (every
/// vector is prepared before).
///
/// The child first writes "0" (itself) into each of `join`, a cgroup's
/// `cgroup.procs` files, so that it execs inside the cgroup and everything
/// it ever forks starts there: no moment exists when a process of the pool
/// runs outside. If it cannot join, it says so on stderr and exits 126
/// without exec: a pool never runs unconfined by accident.
pub fn spawn_self(
    argv: &[String],
    extra_env: &[(String, String)],
    placements: &[(std::os::fd::RawFd, std::os::fd::RawFd)],
    join: &[std::path::PathBuf],
) -> Result<nix::unistd::Pid> {
    use std::ffi::CString;
    let cargs: Vec<CString> = argv
        .iter()
        .map(|a| {
            CString::new(a.as_bytes())
                .map_err(|_| SysError::new("exec argument", std::io::ErrorKind::InvalidInput))
        })
        .collect::<Result<_>>()?;
    let mut envp: Vec<CString> = std::env::vars_os()
        .filter(|(k, _)| {
            !extra_env
                .iter()
                .any(|(e, _)| k.as_encoded_bytes() == e.as_bytes())
        })
        .filter_map(|(k, v)| {
            let mut kv = k.into_encoded_bytes();
            kv.push(b'=');
            kv.extend_from_slice(v.as_encoded_bytes());
            CString::new(kv).ok()
        })
        .collect();
    for (k, v) in extra_env {
        envp.push(
            CString::new(format!("{k}={v}"))
                .map_err(|_| SysError::new("exec environment", std::io::ErrorKind::InvalidInput))?,
        );
    }
    let joins = prepare_joins(join)?;
    let exe = self_exe();
    let null = CString::new("/dev/null").unwrap_or_default();
    // Move the sources out of the way first so that placing one never
    // clobbers a source still to be placed.
    let mut staged = Vec::with_capacity(placements.len());
    for &(target, fd) in placements {
        let d = nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_DUPFD_CLOEXEC(100))
            .map_err(|e| SysError::errno("dup", e))?;
        staged.push((target, d));
    }
    let res = match fork()? {
        Forked::Child => {
            for (path, complaint) in &joins {
                if !join_cgroup(path, complaint) {
                    exit_now(126);
                }
            }
            for &(target, fd) in &staged {
                if dup_to(fd, target).is_err() {
                    exit_now(127);
                }
            }
            // SAFETY: open/dup2/execv are async-signal-safe; all strings
            // were built before fork.
            unsafe {
                let n = libc::open(null.as_ptr(), libc::O_RDONLY);
                if n >= 0 {
                    libc::dup2(n, 0);
                }
            }
            let _ = nix::unistd::execve(&exe, &cargs, &envp);
            exit_now(127);
        }
        Forked::Parent(pid) => Ok(pid),
    };
    for (_, d) in staged {
        let _ = nix::unistd::close(d);
    }
    res
}

/// Each cgroup.procs path as a C string, with the line the child writes
/// to stderr when it cannot join (formatted now: the child may not).
fn prepare_joins(join: &[std::path::PathBuf]) -> Result<Vec<(std::ffi::CString, Vec<u8>)>> {
    use std::os::unix::ffi::OsStrExt;
    join.iter()
        .map(|p| {
            let c = std::ffi::CString::new(p.as_os_str().as_bytes())
                .map_err(|_| SysError::new("cgroup path", std::io::ErrorKind::InvalidInput))?;
            let msg = format!("corral: cannot enter cgroup {}\n", p.display()).into_bytes();
            Ok((c, msg))
        })
        .collect()
}

/// In a freshly forked child: move ourselves into the cgroup whose
/// cgroup.procs is `path`. Async-signal-safe: open, write, close.
fn join_cgroup(path: &std::ffi::CStr, complaint: &[u8]) -> bool {
    // SAFETY: open/write/close are async-signal-safe; `path` and
    // `complaint` were built before fork and outlive these calls.
    unsafe {
        let fd = libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
        let ok = fd >= 0 && libc::write(fd, b"0".as_ptr() as *const libc::c_void, 1) == 1;
        if fd >= 0 {
            libc::close(fd);
        }
        if !ok {
            libc::write(
                2,
                complaint.as_ptr() as *const libc::c_void,
                complaint.len(),
            );
        }
        ok
    }
}

/// Is `pid` a child of `parent`? Read from /proc, so the master can check a
/// pid a prototype reported before believing it.
pub fn parent_of(pid: i32) -> Option<i32> {
    stat_field(&pid.to_string(), 4)?.parse().ok()
}

/// The scheduler state of `pid` from /proc (`R` running, `S` asleep, `Z`
/// zombie, ...), or None when there is no such process.
pub fn run_state(pid: i32) -> Option<char> {
    stat_field(&pid.to_string(), 3)?.chars().next()
}

/// Field `n` (1-based, as proc(5) numbers them; 3 or above) of
/// `/proc/WHO/stat`, where WHO is a pid or `self`. The command name (field
/// 2) is in parentheses and may contain spaces, so fields are counted
/// from its closing one.
pub(crate) fn stat_field(who: &str, n: usize) -> Option<String> {
    let stat = std::fs::read_to_string(format!("/proc/{who}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace()
        .nth(n.checked_sub(3)?)
        .map(str::to_string)
}

/// A daemon's stdin/stdout/stderr go to /dev/null (its log is a file).
pub fn detach_stdio() {
    if let Ok(null) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
    {
        use std::os::fd::AsRawFd;
        for fd in 0..3 {
            let _ = nix::unistd::dup2(null.as_raw_fd(), fd);
        }
    }
}

/// Read `buf.len()` bytes at `addr` in process `pid` (process_vm_readv).
/// Needs ptrace rights over the process (root has them).
pub fn read_remote(pid: i32, addr: u64, buf: &mut [u8]) -> std::io::Result<usize> {
    let local = [std::io::IoSliceMut::new(buf)];
    let len = local[0].len();
    let remote = [nix::sys::uio::RemoteIoVec {
        base: addr as usize,
        len,
    }];
    let mut local = local;
    nix::sys::uio::process_vm_readv(nix::unistd::Pid::from_raw(pid), &mut local, &remote)
        .map_err(std::io::Error::from)
}

/// Take ownership of a descriptor placed at a fixed number before exec and
/// used once (the prototype's configuration).
pub fn take_fixed_fd(fd: i32) -> Option<std::os::fd::OwnedFd> {
    nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_GETFD).ok()?;
    // SAFETY: the descriptor is open (checked above) and was dup2'd into
    // place by the master for us alone; nothing else here refers to it.
    Some(unsafe { std::os::fd::FromRawFd::from_raw_fd(fd) })
}

/// openlog(3) for `error_log = syslog`. The ident must outlive every later
/// syslog call, so it is leaked on purpose (once per process).
pub fn open_syslog(ident: &str, facility: i32) {
    let ident = std::ffi::CString::new(ident).unwrap_or_default();
    let ident: &'static std::ffi::CStr = Box::leak(ident.into_boxed_c_str());
    // SAFETY: `ident` is a valid C string that lives for the rest of the
    // process, as openlog requires.
    unsafe { libc::openlog(ident.as_ptr(), libc::LOG_PID | libc::LOG_CONS, facility) }
}

/// One syslog(3) line at `priority`.
pub fn syslog(priority: i32, msg: &str) {
    let Ok(c) = std::ffi::CString::new(msg.replace('\0', "")) else {
        return;
    };
    // SAFETY: constant "%s" format with one valid C string argument.
    unsafe { libc::syslog(priority, c"%s".as_ptr(), c.as_ptr()) }
}

/// The kernel's short name for this process (`comm`, 15 bytes), what `top`,
/// `ps -C` and `perf` show. Exec'd through /proc/self/exe it would be "exe".
pub fn set_comm(name: &str) {
    let mut bytes: Vec<u8> = name.bytes().filter(|&b| b != 0).take(15).collect();
    bytes.push(0);
    // SAFETY: PR_SET_NAME reads a NUL-terminated string of at most 16 bytes.
    unsafe {
        libc::prctl(libc::PR_SET_NAME, bytes.as_ptr() as libc::c_ulong, 0, 0, 0);
    }
}
