//! The master's side of the zygote (see `corral_worker::zygote`): exec it
//! once with the extensions to preload, ask it for prototypes, and fall
//! back to exec'ing them whenever it is not there or does not answer.
//! Nothing depends on it but the speed of a dormant pool's first request.

use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::time::Duration;

use corral_ipc::{Channel, FromZygote, LaunchSpec, Received, ToZygote, ZygoteArgs};

use crate::os::PrototypeExec;

/// Bytes of argument space a launched prototype's title may use.
const TITLE_ROOM: usize = 256;

/// How long the master waits for the zygote's answer before it execs the
/// prototype itself (a fork takes well under a millisecond).
const ANSWER_WITHIN: Duration = Duration::from_secs(2);

/// Why a launch through the zygote did not happen.
#[derive(Debug, thiserror::Error)]
pub enum ZygoteError {
    #[error("cannot start the zygote: {0}")]
    Spawn(#[source] corral_sys::SysError),
    #[error("the zygote's channel failed: {0}")]
    Channel(#[from] corral_ipc::ChannelError),
    #[error("cannot hand the zygote its launch spec: {0}")]
    Spec(#[source] corral_sys::SysError),
    #[error("the zygote did not answer within {0:?}")]
    Silent(Duration),
    #[error("the zygote has gone")]
    Gone,
    /// Still preloading: this one prototype is exec'd, nothing is wrong.
    #[error("the zygote is still preloading")]
    NotReady,
    /// It answered, and started nothing: this one prototype is exec'd.
    #[error("the zygote could not fork: {0}")]
    Refused(String),
}

impl ZygoteError {
    /// Whether the zygote itself is still sound (only this launch failed).
    pub fn zygote_is_sound(&self) -> bool {
        matches!(
            self,
            ZygoteError::Refused(_) | ZygoteError::Spec(_) | ZygoteError::NotReady
        )
    }
}

/// A running zygote, the master's child.
#[derive(Debug)]
pub struct Zygote {
    pub pid: i32,
    ch: Channel,
    /// It said it finished preloading.
    ready: bool,
}

impl Zygote {
    /// Exec corral as the zygote with `preload`.
    pub fn spawn(preload: &[PathBuf]) -> Result<Zygote, ZygoteError> {
        let (ours, theirs) = Channel::pair()?;
        let args = ZygoteArgs {
            preload: preload.to_vec(),
        };
        let env = [(corral_ipc::ZYGOTE_ENV.to_string(), args.encode())];
        // The padding is argument space its forks overwrite with their
        // own titles (`php-fpm: pool NAME`); the zygote hides it again.
        let argv = [
            corral_ipc::zygote::TITLE.to_string(),
            " ".repeat(TITLE_ROOM),
        ];
        let pid = corral_sys::process::spawn_self(
            &argv,
            &env,
            &[(corral_ipc::zygote::ZYGOTE_CHANNEL_FD, theirs.as_raw_fd())],
            &[],
        )
        .map_err(ZygoteError::Spawn)?;
        ours.set_nonblocking(true)?;
        Ok(Zygote {
            pid: pid.as_raw(),
            ch: ours,
            ready: false,
        })
    }

    /// Fork the prototype `exec` describes; its pid (the master's child).
    /// Waits only for the fork itself: a zygote still preloading is not
    /// asked (the master must not sit in its start-up).
    pub fn launch(&mut self, exec: &PrototypeExec) -> Result<i32, ZygoteError> {
        if !self.ready {
            match self.ch.recv::<FromZygote>()? {
                Received::Message(FromZygote::Ready, _) => self.ready = true,
                Received::Empty => return Err(ZygoteError::NotReady),
                _ => return Err(ZygoteError::Gone),
            }
        }
        let spec = LaunchSpec {
            title: exec.title.clone(),
            args: exec.args.clone(),
            cgroup: exec.cgroup.clone(),
        };
        let memfd = corral_sys::shm::memfd_with("corral-launch", &spec.encode())
            .map_err(ZygoteError::Spec)?;
        let (go_r, go_w) = std::io::pipe()
            .map_err(|e| ZygoteError::Spec(corral_sys::SysError::new("pipe for the launch", e)))?;
        let placements = exec.handoff.placements();
        let targets = placements.iter().map(|&(t, _)| t).collect();
        let mut fds = vec![memfd.as_raw_fd(), go_r.as_raw_fd()];
        fds.extend(placements.iter().map(|&(_, fd)| fd));
        // Adopt the prototype when its middle parent exits, which happens
        // before the zygote answers.
        corral_sys::zygote::set_child_subreaper(true).map_err(ZygoteError::Spec)?;
        let answered = self
            .ch
            .send(&ToZygote::Launch { targets }, &fds)
            .map_err(ZygoteError::from)
            .and_then(|()| self.answer());
        let _ = corral_sys::zygote::set_child_subreaper(false);
        drop(go_r);
        let pid = answered?;
        // Go: from here it is the pool's prototype. On every error path
        // above, go_w closes unwritten and a late fork exits unseen.
        let _ = std::io::Write::write_all(&mut &go_w, b"g");
        Ok(pid)
    }

    fn answer(&self) -> Result<i32, ZygoteError> {
        // Through signals: the master's own (a worker's exit, a reload)
        // interrupt the wait and are handled after it.
        if !corral_sys::socket::wait_readable_for(self.ch.as_raw_fd(), ANSWER_WITHIN) {
            return Err(ZygoteError::Silent(ANSWER_WITHIN));
        }
        match self.ch.recv::<FromZygote>()? {
            Received::Message(FromZygote::Launched { pid }, _) => Ok(pid),
            Received::Message(FromZygote::Failed { text }, _) => Err(ZygoteError::Refused(text)),
            Received::Message(FromZygote::Ready, _) => Err(ZygoteError::Gone),
            Received::Closed => Err(ZygoteError::Gone),
            Received::Empty => Err(ZygoteError::Silent(Duration::ZERO)),
        }
    }
}

/// The zygote's state in the master's [`crate::os::RealOs`]: what to
/// preload, the running one, and when to try again after it failed.
#[derive(Debug, Default)]
pub struct ZygoteSlot {
    /// `None`: not used (not root, turned off, or never asked for).
    pub preload: Option<Vec<PathBuf>>,
    pub running: Option<Zygote>,
    pub retry_at: Option<std::time::Instant>,
    pub notes: Vec<String>,
}

/// After a failure, how long prototypes are exec'd before the zygote is
/// started again.
const RETRY_AFTER: Duration = Duration::from_secs(10);

impl ZygoteSlot {
    /// The zygote to use now. It starts lazily, at the first launch, and
    /// that launch is exec'd (the zygote is still preloading): a host
    /// whose pools are all dormant pays nothing for it, and from the
    /// second cold start on every prototype is forked.
    pub fn get(&mut self, now: std::time::Instant) -> Option<&mut Zygote> {
        self.preload.as_ref()?;
        if self.running.is_none() {
            self.start_if_due(now);
            return None;
        }
        self.running.as_mut()
    }

    fn start_if_due(&mut self, now: std::time::Instant) {
        let Some(preload) = self.preload.as_ref() else {
            return;
        };
        if self.running.is_some() || self.retry_at.is_some_and(|t| now < t) {
            return;
        }
        self.retry_at = None;
        match Zygote::spawn(preload) {
            Ok(z) => self.running = Some(z),
            Err(e) => self.failed(&e, now),
        }
    }

    /// Something went wrong: drop the zygote unless only one launch
    /// failed, and exec prototypes until it is started again (soon when
    /// it merely died, later when it hung or could not start).
    pub fn failed(&mut self, e: &ZygoteError, now: std::time::Instant) {
        if matches!(e, ZygoteError::NotReady) {
            return;
        }
        self.notes
            .push(format!("{e}; prototypes are exec'd directly for now"));
        if e.zygote_is_sound() {
            return;
        }
        self.stop();
        let wait = match e {
            ZygoteError::Gone | ZygoteError::Channel(_) => Duration::from_secs(1),
            _ => RETRY_AFTER,
        };
        self.retry_at = Some(now + wait);
    }

    /// Once a turn: start a zygote that died or failed again when it is
    /// due, so the next dormant pool finds it ready.
    pub fn tick(&mut self, now: std::time::Instant) {
        if self.retry_at.is_some() {
            self.start_if_due(now);
        }
    }

    /// The zygote exited (reaped by the master).
    pub fn exited(&mut self, pid: i32, how: &str, now: std::time::Instant) -> bool {
        if self.running.as_ref().is_none_or(|z| z.pid != pid) {
            return false;
        }
        self.running = None;
        if self.preload.is_some() {
            self.notes.push(format!(
                "the zygote ({pid}) exited ({how}); starting another"
            ));
            self.retry_at = Some(now + Duration::from_secs(1));
        }
        true
    }

    /// Stop the running zygote (its channel closes; SIGKILL makes sure).
    pub fn stop(&mut self) {
        if let Some(z) = self.running.take() {
            corral_sys::signal::kill(z.pid, corral_sys::nix::sys::signal::Signal::SIGKILL);
        }
    }
}
