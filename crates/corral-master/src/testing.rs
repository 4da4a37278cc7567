//! A recording stand-in for the kernel, so that supervision, reloads and
//! restarts are tested without forking (youki's approach). It remembers
//! every prototype "exec'd" and keeps the far end of its control channel,
//! so a test can play the prototype: read the master's orders and answer.

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::PathBuf;
use std::rc::Rc;
use std::time::Instant;

use corral_config::Pool;
use corral_ipc::{Channel, PrototypeArgs, WaitStatus};
use corral_isolation::cgroup::{Applied, CgroupError, Killed, Usage, Version};
use corral_isolation::{Limits, Report};
use corral_sys::nix::sys::signal::Signal;
use corral_sys::shm::SharedWords;

use crate::listen::ListenError;
use crate::os::{Os, PrototypeExec};

/// One prototype the master started.
pub struct Exec {
    pub pid: i32,
    pub title: String,
    pub args: PrototypeArgs,
    /// The prototype's end of the control channel.
    pub chan: Channel,
    /// What the hand-off looked like at exec time.
    pub board_sealed: bool,
    pub status_board_read_only: Option<bool>,
    /// The cgroup.procs files it entered before exec.
    pub cgroup: Vec<PathBuf>,
}

/// One thing the master asked of the cgroups.
#[derive(Debug, Clone, PartialEq)]
pub enum CgroupOp {
    Pool {
        pool: String,
        limits: Limits,
        previous: Limits,
    },
    Leaf(String, u64),
    Kill(String, u64),
    RemoveLeaf(String, u64),
    RemovePool(String),
    Close,
}

#[derive(Default)]
pub struct FakeState {
    pub next_pid: i32,
    pub execs: Vec<Exec>,
    pub signals: Vec<(i32, Signal)>,
    /// Children waiting to be reaped.
    pub exits: VecDeque<(i32, WaitStatus)>,
    /// What /proc would say each pid's parent is.
    pub parents: HashMap<i32, i32>,
    /// The clock; tests move it.
    pub now: Option<Instant>,
    /// Fail this many upcoming execs.
    pub failing_execs: u32,
    /// Listening sockets a tenant has shut down.
    pub dead_listeners: Vec<RawFd>,
    /// Every cgroup operation, with how many prototypes had been exec'd
    /// by then.
    pub cgroup_ops: Vec<(usize, CgroupOp)>,
    /// A host without usable cgroups.
    pub no_cgroups: bool,
    /// What each pool's cgroup counts.
    pub usage: HashMap<String, Usage>,
    /// Every use_zygote call, in order.
    pub zygote: Vec<Option<Vec<PathBuf>>>,
}

impl FakeState {
    /// The cgroup operations alone, in order.
    pub fn ops(&self) -> Vec<CgroupOp> {
        self.cgroup_ops.iter().map(|(_, op)| op.clone()).collect()
    }

    fn record(&mut self, op: CgroupOp) {
        let n = self.execs.len();
        self.cgroup_ops.push((n, op));
    }

    fn cgroups(&self) -> Result<(), CgroupError> {
        if self.no_cgroups {
            Err(CgroupError::NotMounted)
        } else {
            Ok(())
        }
    }
}

/// Where the fake says a leaf's cgroup.procs is.
pub fn leaf_procs(pool: &str, gen: u64) -> PathBuf {
    PathBuf::from(format!("/fake/cgroup/corral/{pool}/g{gen}/cgroup.procs"))
}

impl FakeState {
    pub fn new_pid(&mut self) -> i32 {
        self.next_pid = self.next_pid.max(1000) + 1;
        self.next_pid
    }
    pub fn now(&self) -> Instant {
        self.now.expect("set by FakeOs::new")
    }
}

#[derive(Clone)]
pub struct FakeOs(pub Rc<RefCell<FakeState>>);

impl FakeOs {
    pub fn new() -> FakeOs {
        FakeOs(Rc::new(RefCell::new(FakeState {
            now: Some(Instant::now()),
            ..Default::default()
        })))
    }
}

fn dup(fd: RawFd) -> OwnedFd {
    let new =
        corral_sys::nix::fcntl::fcntl(fd, corral_sys::nix::fcntl::FcntlArg::F_DUPFD_CLOEXEC(10))
            .expect("dup in the fake");
    corral_sys::process::take_fixed_fd(new).expect("just duplicated")
}

fn is_read_only(fd: RawFd) -> bool {
    let fl = corral_sys::nix::fcntl::fcntl(fd, corral_sys::nix::fcntl::FcntlArg::F_GETFL)
        .expect("F_GETFL");
    fl & libc::O_ACCMODE == libc::O_RDONLY
}

impl Os for FakeOs {
    fn exec_prototype(&mut self, exec: &PrototypeExec) -> Result<i32, corral_sys::SysError> {
        let mut st = self.0.borrow_mut();
        if st.failing_execs > 0 {
            st.failing_execs -= 1;
            return Err(corral_sys::SysError::new(
                "fork() failed",
                std::io::Error::from_raw_os_error(libc::EAGAIN),
            ));
        }
        let pid = st.new_pid();
        st.parents.insert(pid, std::process::id() as i32);
        let board = dup(exec.handoff.board);
        st.execs.push(Exec {
            pid,
            title: exec.title.clone(),
            args: exec.args.clone(),
            chan: Channel::from_fd(dup(exec.handoff.control)),
            board_sealed: SharedWords::is_sealed(&board),
            status_board_read_only: exec.handoff.status_board.map(is_read_only),
            cgroup: exec.cgroup.clone(),
        });
        Ok(pid)
    }

    fn signal(&mut self, pid: i32, sig: Signal) -> bool {
        self.0.borrow_mut().signals.push((pid, sig));
        true
    }

    fn reap(&mut self) -> Option<(i32, WaitStatus)> {
        self.0.borrow_mut().exits.pop_front()
    }

    fn parent_of(&self, pid: i32) -> Option<i32> {
        self.0.borrow().parents.get(&pid).copied()
    }

    fn open_listener(
        &mut self,
        _pool: &Pool,
        _note: &mut dyn FnMut(corral_config::LogLevel, String),
    ) -> Result<OwnedFd, ListenError> {
        // Any descriptor will do: the loop that would poll it is not run.
        let s = std::os::unix::net::UnixDatagram::unbound().expect("socket in the fake");
        Ok(OwnedFd::from(s))
    }

    fn listen_queue(&self, _fd: RawFd) -> Option<(u64, u64)> {
        None
    }

    fn listener_alive(&self, fd: RawFd) -> bool {
        !self.0.borrow().dead_listeners.contains(&fd)
    }

    fn now(&self) -> Instant {
        self.0.borrow().now()
    }

    fn cgroup_pool(
        &mut self,
        pool: &str,
        limits: &Limits,
        previous: &Limits,
    ) -> Result<Applied, CgroupError> {
        let mut st = self.0.borrow_mut();
        st.cgroups()?;
        st.record(CgroupOp::Pool {
            pool: pool.to_string(),
            limits: limits.clone(),
            previous: previous.clone(),
        });
        let mut report = Report::default();
        if let Some(n) = limits.pids_max {
            report.applied(format!("pids.max={n}"));
        }
        if limits.io_weight.is_some() {
            report.lacking("io weight (no blkio)");
        }
        Ok(Applied {
            version: Version::V1,
            report,
        })
    }

    fn cgroup_notes(&mut self) -> Vec<String> {
        Vec::new()
    }

    fn use_zygote(&mut self, preload: Option<Vec<PathBuf>>) {
        self.0.borrow_mut().zygote.push(preload);
    }

    fn zygote_tick(&mut self) -> Vec<String> {
        Vec::new()
    }

    fn cgroup_leaf(&mut self, pool: &str, gen: u64) -> Result<Vec<PathBuf>, CgroupError> {
        let mut st = self.0.borrow_mut();
        st.cgroups()?;
        st.record(CgroupOp::Leaf(pool.to_string(), gen));
        Ok(vec![leaf_procs(pool, gen)])
    }

    fn cgroup_kill(&mut self, pool: &str, gen: u64) -> Result<Killed, CgroupError> {
        self.0
            .borrow_mut()
            .record(CgroupOp::Kill(pool.to_string(), gen));
        Ok(Killed::default())
    }

    fn cgroup_remove_leaf(&mut self, pool: &str, gen: u64) -> Result<Killed, CgroupError> {
        self.0
            .borrow_mut()
            .record(CgroupOp::RemoveLeaf(pool.to_string(), gen));
        Ok(Killed::default())
    }

    fn cgroup_remove_pool(&mut self, pool: &str) {
        self.0
            .borrow_mut()
            .record(CgroupOp::RemovePool(pool.to_string()));
    }

    fn cgroup_usage(&self, pool: &str) -> Option<Usage> {
        self.0.borrow().usage.get(pool).copied()
    }

    fn cgroup_sweep(&mut self) {}

    fn cgroup_close(&mut self) {
        self.0.borrow_mut().record(CgroupOp::Close);
    }
}

impl AsRawFd for Exec {
    fn as_raw_fd(&self) -> RawFd {
        self.chan.as_raw_fd()
    }
}
