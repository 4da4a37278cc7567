//! The seam between the master's decisions and the kernel: everything the
//! supervisor does to processes and sockets goes through [`Os`], so pool
//! supervision, reloads and restarts can be unit-tested with a recording
//! fake (see `testing.rs`) and no process is ever forked in those tests.

use std::os::fd::{OwnedFd, RawFd};
use std::path::PathBuf;
use std::time::Instant;

use corral_config::{LogLevel, Pool};
use corral_ipc::{Handoff, PrototypeArgs, WaitStatus};
use corral_isolation::cgroup::{Applied, CgroupError, Killed, Usage};
use corral_isolation::Limits;
use corral_sys::nix::sys::signal::Signal;
use corral_sys::nix::sys::wait::{waitpid, WaitPidFlag};

use crate::listen::ListenError;

/// What the master asks for when it starts a prototype.
#[derive(Debug)]
pub struct PrototypeExec {
    /// The process title: exactly php-fpm's `php-fpm: pool NAME`.
    pub title: String,
    pub args: PrototypeArgs,
    pub handoff: Handoff,
    /// The generation's cgroup leaf (its `cgroup.procs` files), which the
    /// child enters between fork and exec; empty for a pool without one.
    pub cgroup: Vec<PathBuf>,
}

pub trait Os {
    /// Start a prototype with its descriptors in place (forked by the
    /// zygote when there is one, else fork + exec); its pid, our child.
    fn exec_prototype(&mut self, exec: &PrototypeExec) -> Result<i32, corral_sys::SysError>;
    /// Fork prototypes from a zygote that preloaded `preload` (`None`:
    /// exec them, and stop any zygote). A new list replaces the zygote.
    fn use_zygote(&mut self, preload: Option<Vec<PathBuf>>);
    /// Restart the zygote if it is due; what happened to it since the
    /// last call, for the log.
    fn zygote_tick(&mut self) -> Vec<String>;
    /// kill(2); false when the process is gone.
    fn signal(&mut self, pid: i32, sig: Signal) -> bool;
    /// One exited child, without blocking.
    fn reap(&mut self) -> Option<(i32, WaitStatus)>;
    /// The parent of `pid`, to check what a prototype claims.
    fn parent_of(&self, pid: i32) -> Option<i32>;
    /// Create a pool's listening socket (as root, before any drop).
    fn open_listener(
        &mut self,
        pool: &Pool,
        note: &mut dyn FnMut(LogLevel, String),
    ) -> Result<OwnedFd, ListenError>;
    /// A TCP socket's (queue, backlog), for the status page.
    fn listen_queue(&self, fd: RawFd) -> Option<(u64, u64)>;
    /// Whether a listening socket still takes connections (a tenant
    /// process holding it may have shut it down).
    fn listener_alive(&self, fd: RawFd) -> bool;
    fn now(&self) -> Instant;

    /// Create or update pool `pool`'s cgroup with `limits`; what only
    /// `previous` set goes back to the kernel's default.
    fn cgroup_pool(
        &mut self,
        pool: &str,
        limits: &Limits,
        previous: &Limits,
    ) -> Result<Applied, CgroupError>;
    /// What setting up corral's subtree did, once (the master moved into a
    /// leaf of its own, a previous master's processes killed).
    fn cgroup_notes(&mut self) -> Vec<String>;
    /// Create generation `gen`'s leaf in its pool's cgroup; the files its
    /// prototype writes itself into before exec.
    fn cgroup_leaf(&mut self, pool: &str, gen: u64) -> Result<Vec<PathBuf>, CgroupError>;
    /// SIGKILL everything left in a generation's leaf.
    fn cgroup_kill(&mut self, pool: &str, gen: u64) -> Result<Killed, CgroupError>;
    /// Kill a generation's leaf and remove it (now, or once empty).
    fn cgroup_remove_leaf(&mut self, pool: &str, gen: u64) -> Result<Killed, CgroupError>;
    /// Remove a pool's cgroup once its leaves are gone.
    fn cgroup_remove_pool(&mut self, pool: &str);
    fn cgroup_usage(&self, pool: &str) -> Option<Usage>;
    /// Once a second: retry the removals that had to wait.
    fn cgroup_sweep(&mut self);
    /// The master is stopping: finish the removals, then remove the
    /// subtree itself.
    fn cgroup_close(&mut self);
}

/// The kernel itself.
#[derive(Default)]
pub struct RealOs {
    cgroups: crate::cgroups::Cgroups,
    zygote: crate::zygote::ZygoteSlot,
}

impl RealOs {
    /// Pools' cgroups go under `<the master's cgroup>/<subtree>`.
    pub fn new(subtree: &str) -> RealOs {
        RealOs {
            cgroups: crate::cgroups::Cgroups::new(subtree),
            zygote: Default::default(),
        }
    }
}

impl Os for RealOs {
    fn exec_prototype(&mut self, exec: &PrototypeExec) -> Result<i32, corral_sys::SysError> {
        let now = Instant::now();
        if let Some(z) = self.zygote.get(now) {
            match z.launch(exec) {
                Ok(pid) => return Ok(pid),
                Err(e) => self.zygote.failed(&e, now),
            }
        }
        let env = [(corral_ipc::PROTOTYPE_ENV.to_string(), exec.args.encode())];
        corral_sys::process::spawn_self(
            std::slice::from_ref(&exec.title),
            &env,
            &exec.handoff.placements(),
            &exec.cgroup,
        )
        .map(|pid| pid.as_raw())
    }

    fn use_zygote(&mut self, preload: Option<Vec<PathBuf>>) {
        if preload == self.zygote.preload {
            return;
        }
        self.zygote.stop();
        self.zygote.retry_at = None;
        self.zygote.preload = preload;
    }

    fn zygote_tick(&mut self) -> Vec<String> {
        self.zygote.tick(Instant::now());
        std::mem::take(&mut self.zygote.notes)
    }

    fn signal(&mut self, pid: i32, sig: Signal) -> bool {
        corral_sys::signal::kill(pid, sig)
    }

    fn reap(&mut self) -> Option<(i32, WaitStatus)> {
        use corral_sys::nix::sys::wait::WaitStatus as W;
        loop {
            let (pid, status) = match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                Ok(W::Exited(pid, code)) => (pid.as_raw(), WaitStatus::exited(code as u8)),
                Ok(W::Signaled(pid, sig, core)) => {
                    (pid.as_raw(), WaitStatus::signaled(sig as i32, core))
                }
                Ok(W::StillAlive) | Err(_) => return None,
                Ok(_) => continue,
            };
            let how = crate::pool::describe_status(status);
            if !self.zygote.exited(pid, &how, Instant::now()) {
                return Some((pid, status));
            }
        }
    }

    fn parent_of(&self, pid: i32) -> Option<i32> {
        corral_sys::process::parent_of(pid)
    }

    fn open_listener(
        &mut self,
        pool: &Pool,
        note: &mut dyn FnMut(LogLevel, String),
    ) -> Result<OwnedFd, ListenError> {
        crate::listen::open(pool, note)
    }

    fn listen_queue(&self, fd: RawFd) -> Option<(u64, u64)> {
        corral_sys::socket::tcp_listen_queue(fd)
    }

    fn listener_alive(&self, fd: RawFd) -> bool {
        corral_sys::socket::listener_alive(fd)
    }

    fn now(&self) -> Instant {
        Instant::now()
    }

    fn cgroup_pool(
        &mut self,
        pool: &str,
        limits: &Limits,
        previous: &Limits,
    ) -> Result<Applied, CgroupError> {
        self.cgroups.tree()?.pool(pool, limits, previous)
    }

    fn cgroup_notes(&mut self) -> Vec<String> {
        self.cgroups.take_notes()
    }

    fn cgroup_leaf(&mut self, pool: &str, gen: u64) -> Result<Vec<PathBuf>, CgroupError> {
        self.cgroups.tree()?.leaf(pool, gen)
    }

    fn cgroup_kill(&mut self, pool: &str, gen: u64) -> Result<Killed, CgroupError> {
        self.cgroups.tree()?.kill(pool, gen)
    }

    fn cgroup_remove_leaf(&mut self, pool: &str, gen: u64) -> Result<Killed, CgroupError> {
        self.cgroups.tree()?.remove_leaf(pool, gen)
    }

    fn cgroup_remove_pool(&mut self, pool: &str) {
        if let Some(t) = self.cgroups.opened() {
            let _ = t.remove_pool(pool);
        }
    }

    fn cgroup_usage(&self, pool: &str) -> Option<Usage> {
        self.cgroups.usage(pool)
    }

    fn cgroup_sweep(&mut self) {
        if let Some(t) = self.cgroups.opened() {
            t.sweep();
        }
    }

    fn cgroup_close(&mut self) {
        if let Some(t) = self.cgroups.opened() {
            t.close(std::time::Duration::from_secs(1));
        }
    }
}
