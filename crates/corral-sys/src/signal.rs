//! Signal plumbing: dispositions for forked children and a flag handler.

use std::sync::atomic::{AtomicBool, Ordering};

use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};

use crate::{Result, SysError};

/// Set when SIGQUIT arrives in a worker: finish the current request, exit.
pub static QUIT_REQUESTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_quit(_: libc::c_int) {
    QUIT_REQUESTED.store(true, Ordering::SeqCst);
}

/// Worker dispositions, as php-fpm's children: TERM/INT/USR1/USR2/CHLD
/// default (die at once), QUIT = graceful. No SA_RESTART on QUIT, so a
/// worker blocked in accept() wakes up and sees the flag.
pub fn worker_signals() -> Result<()> {
    // SEGV/BUS too: Rust's runtime catches them to report stack overflows,
    // which would turn a PHP crash into an abort (and swallow a signal sent
    // with kill). A worker dies of them as a php-fpm child does.
    for sig in [
        Signal::SIGTERM,
        Signal::SIGINT,
        Signal::SIGUSR1,
        Signal::SIGUSR2,
        Signal::SIGCHLD,
        Signal::SIGHUP,
        Signal::SIGSEGV,
        Signal::SIGBUS,
    ] {
        set_default(sig)?;
    }
    let act = SigAction::new(
        SigHandler::Handler(on_quit),
        SaFlags::empty(),
        SigSet::empty(),
    );
    // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
    unsafe { sigaction(Signal::SIGQUIT, &act) }
        .map_err(|e| SysError::errno("sigaction(SIGQUIT)", e))?;
    let ign = SigAction::new(SigHandler::SigIgn, SaFlags::empty(), SigSet::empty());
    // SAFETY: ignoring SIGPIPE has no handler code to run.
    unsafe { sigaction(Signal::SIGPIPE, &ign) }
        .map_err(|e| SysError::errno("sigaction(SIGPIPE)", e))?;
    Ok(())
}

pub fn set_default(sig: Signal) -> Result<()> {
    let dfl = SigAction::new(SigHandler::SigDfl, SaFlags::empty(), SigSet::empty());
    // SAFETY: SIG_DFL runs no code of ours.
    unsafe { sigaction(sig, &dfl) }.map_err(|e| SysError::errno(format!("sigaction({sig})"), e))?;
    Ok(())
}

pub fn quit_requested() -> bool {
    QUIT_REQUESTED.load(Ordering::SeqCst)
}

/// Block or unblock signals on this (single) thread.
pub fn set_blocked(sigs: &[Signal], block: bool) -> Result<()> {
    let mut set = SigSet::empty();
    for s in sigs {
        set.add(*s);
    }
    let how = if block {
        nix::sys::signal::SigmaskHow::SIG_BLOCK
    } else {
        nix::sys::signal::SigmaskHow::SIG_UNBLOCK
    };
    nix::sys::signal::pthread_sigmask(how, Some(&set), None)
        .map_err(|e| SysError::errno("sigprocmask", e))
}

/// Unblock everything (after exec the mask is inherited).
pub fn unblock_all() -> Result<()> {
    nix::sys::signal::pthread_sigmask(
        nix::sys::signal::SigmaskHow::SIG_SETMASK,
        Some(&SigSet::empty()),
        None,
    )
    .map_err(|e| SysError::errno("sigprocmask", e))
}

/// Send a signal; ESRCH (already gone) is not an error worth reporting.
pub fn kill(pid: i32, sig: Signal) -> bool {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), sig).is_ok()
}

use std::sync::atomic::{AtomicI32, AtomicU64};

static PENDING: AtomicU64 = AtomicU64::new(0);
static WAKE_FD: AtomicI32 = AtomicI32::new(-1);

extern "C" fn on_master_signal(sig: libc::c_int) {
    if (0..64).contains(&sig) {
        PENDING.fetch_or(1u64 << sig, Ordering::SeqCst);
    }
    let fd = WAKE_FD.load(Ordering::SeqCst);
    if fd >= 0 {
        // SAFETY: write(2) is async-signal-safe; a full pipe just means a
        // wake-up is already pending.
        unsafe {
            libc::write(fd, b"!".as_ptr() as *const libc::c_void, 1);
        }
    }
}

/// The master's signals: each handler records the signal and writes a byte
/// to a self-pipe whose read end the event loop polls. Returns the read end.
pub fn master_signals(sigs: &[Signal]) -> Result<std::os::fd::OwnedFd> {
    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_NONBLOCK | nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(|e| SysError::errno("pipe", e))?;
    WAKE_FD.store(std::os::fd::IntoRawFd::into_raw_fd(w), Ordering::SeqCst);
    let act = SigAction::new(
        SigHandler::Handler(on_master_signal),
        SaFlags::SA_RESTART,
        SigSet::empty(),
    );
    for &s in sigs {
        // SAFETY: the handler only touches atomics and calls write(2).
        unsafe { sigaction(s, &act) }.map_err(|e| SysError::errno(format!("sigaction({s})"), e))?;
    }
    let ign = SigAction::new(SigHandler::SigIgn, SaFlags::empty(), SigSet::empty());
    // SAFETY: ignoring SIGPIPE runs no code.
    unsafe { sigaction(Signal::SIGPIPE, &ign) }
        .map_err(|e| SysError::errno("sigaction(SIGPIPE)", e))?;
    Ok(r)
}

/// Take the set of signals received since the last call.
pub fn take_pending() -> Vec<Signal> {
    let bits = PENDING.swap(0, Ordering::SeqCst);
    (1..64)
        .filter(|i| bits & (1u64 << i) != 0)
        .filter_map(|i| Signal::try_from(i).ok())
        .collect()
}
