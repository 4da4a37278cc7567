//! The zygote: a root process, exec'd once by the master, that
//! forks prototypes so a dormant pool does not pay for exec and dynamic
//! linking on its first request.
//!
//! An exec'd prototype spends most of its start-up before PHP runs a line:
//! the loader maps and relocates libphp and its libraries, then PHP
//! dlopens every extension php.ini names (relocations and library
//! constructors: ImageMagick's codecs alone initialise tables for
//! milliseconds). The zygote does all of that once and starts no PHP, so
//! it holds no OPcache, no pool's settings and no tenant state: a fork of
//! it is what an exec would have produced, minus that work. The prototype
//! then starts PHP (its own OPcache) exactly as after an exec.
//!
//! The fork is double: the zygote forks a middle process which forks the
//! prototype and exits, and the master, a child subreaper, adopts the
//! prototype. So the prototype is the master's child as an exec'd one is
//! (the master reaps it; its parent-death signal follows the master), and
//! the zygote never has tenant processes of its own to wait for.

use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use corral_ipc::zygote::{LaunchSpec, TITLE, ZYGOTE_CHANNEL_FD};
use corral_ipc::{Channel, FromZygote, Received, ToZygote, ZygoteArgs};
use corral_sys::nix::unistd::Pid;
use corral_sys::process::Forked;

/// How long a fresh prototype waits to be adopted by the master (in 50 µs
/// steps): the middle process exits right after its fork.
const ADOPTION_TRIES: u32 = 20_000;

/// Exit codes of a launched prototype that never reached PHP.
const EXIT_NOT_ADOPTED: i32 = corral_ipc::ExitCode::Software.code();
const EXIT_NO_CGROUP: i32 = 126;
const EXIT_NO_FDS: i32 = 127;

/// The zygote's whole life. Returns the process exit code.
pub fn run(args: ZygoteArgs) -> i32 {
    corral_sys::process::set_comm("corral");
    // Exec'd with padding after its title, kept for its forks' titles.
    let _ = corral_sys::zygote::set_cmdline(TITLE);
    let master = corral_sys::nix::unistd::getppid();
    let _ = corral_sys::process::die_with_parent(libc::SIGKILL, master);
    let Some(fd) = corral_sys::process::take_fixed_fd(ZYGOTE_CHANNEL_FD) else {
        return corral_ipc::ExitCode::Usage.code();
    };
    corral_sys::process::close_fds_above(ZYGOTE_CHANNEL_FD);
    let ch = Channel::from_fd(fd);
    for lib in &args.preload {
        // PHP reports a missing or broken extension itself, in the
        // prototype, with its own words; here it is only not preloaded.
        let _ = corral_sys::zygote::preload(lib);
    }
    if ch.send(&FromZygote::Ready, &[]).is_err() {
        return 0;
    }
    loop {
        let reply = match ch.recv::<ToZygote>() {
            Ok(Received::Message(ToZygote::Launch { targets }, fds)) => {
                launch(&targets, fds, master)
            }
            Ok(Received::Closed) => return 0,
            Ok(Received::Empty) => continue,
            Err(e) => FromZygote::Failed {
                text: e.to_string(),
            },
        };
        if ch.send(&reply, &[]).is_err() {
            return 0;
        }
    }
}

/// Fork one prototype from `fds` (the spec's memfd, then one descriptor
/// per target) and say which pid the master adopted.
fn launch(targets: &[i32], mut fds: Vec<OwnedFd>, master: Pid) -> FromZygote {
    let failed = |text: String| FromZygote::Failed { text };
    if fds.len() != targets.len() + corral_ipc::zygote::LAUNCH_FIXED_FDS {
        return failed("descriptors do not match the targets".into());
    }
    let spec_fd = fds.remove(0);
    let go = fds.remove(0);
    let spec = match read_spec(spec_fd) {
        Ok(s) => s,
        Err(e) => return failed(e),
    };
    let placements: Vec<(RawFd, RawFd)> = targets
        .iter()
        .zip(&fds)
        .map(|(&t, fd)| (t, fd.as_raw_fd()))
        .collect();
    let (mut pid_r, pid_w) = match std::io::pipe() {
        Ok(p) => p,
        Err(e) => return failed(format!("pipe: {e}")),
    };
    match corral_sys::process::fork() {
        Err(e) => failed(e.to_string()),
        Ok(Forked::Child) => {
            drop(pid_r);
            middle(pid_w, go, &spec, &placements, master)
        }
        Ok(Forked::Parent(middle)) => {
            drop(pid_w);
            drop(go);
            let mut buf = [0u8; 4];
            let read = pid_r.read_exact(&mut buf);
            let _ = corral_sys::nix::sys::wait::waitpid(middle, None);
            match read {
                Ok(()) => FromZygote::Launched {
                    pid: i32::from_le_bytes(buf),
                },
                Err(_) => failed("the prototype could not be forked".into()),
            }
        }
    }
}

fn read_spec(fd: OwnedFd) -> Result<LaunchSpec, String> {
    let mut bytes = Vec::new();
    std::fs::File::from(fd)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read the launch spec: {e}"))?;
    LaunchSpec::decode(&bytes).map_err(|e| e.to_string())
}

/// The middle process: fork the prototype, tell the zygote its pid,
/// exit so the master adopts it.
fn middle(
    mut pid_w: std::io::PipeWriter,
    go: OwnedFd,
    spec: &LaunchSpec,
    placements: &[(RawFd, RawFd)],
    master: Pid,
) -> ! {
    match corral_sys::process::fork() {
        Ok(Forked::Child) => {
            drop(pid_w);
            become_prototype(go, spec, placements, master)
        }
        Ok(Forked::Parent(pid)) => {
            let _ = pid_w.write_all(&pid.as_raw().to_le_bytes());
            corral_sys::process::exit_now(0)
        }
        Err(_) => corral_sys::process::exit_now(EXIT_NOT_ADOPTED),
    }
}

/// Turn this fork into what an exec would have made of it, then run the
/// prototype: adopted by the master, in the pool's cgroup, descriptors at
/// their numbers, stdin on /dev/null, argv reading the pool's title.
fn become_prototype(
    go: OwnedFd,
    spec: &LaunchSpec,
    placements: &[(RawFd, RawFd)],
    master: Pid,
) -> ! {
    if !corral_sys::zygote::await_parent(master, ADOPTION_TRIES) {
        corral_sys::process::exit_now(EXIT_NOT_ADOPTED);
    }
    // The master's word that it counts us as the pool's prototype.
    let mut word = [0u8; 1];
    let told = std::fs::File::from(go).read_exact(&mut word);
    if told.is_err() || word != *b"g" {
        corral_sys::process::exit_now(EXIT_NOT_ADOPTED);
    }
    if let Err(e) = corral_sys::zygote::join_cgroups(&spec.cgroup) {
        let _ = writeln!(std::io::stderr(), "corral: {e}");
        corral_sys::process::exit_now(EXIT_NO_CGROUP);
    }
    if corral_sys::zygote::place_fds(placements).is_err() {
        corral_sys::process::exit_now(EXIT_NO_FDS);
    }
    corral_sys::zygote::stdin_null();
    // In the zygote's padded argument area (see corral_master::zygote).
    let _ = corral_sys::zygote::set_cmdline(&spec.title);
    let code = crate::prototype::run(spec.args.clone());
    std::process::exit(code)
}
