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

/// The zygote's own title (the worker crate is not a dependency of the
/// master; the zygote sets the same words itself).
fn corral_worker_title() -> &'static str {
    "corral: zygote"
}

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
    /// It answered, and started nothing: this one prototype is exec'd.
    #[error("the zygote could not fork: {0}")]
    Refused(String),
}

impl ZygoteError {
    /// Whether the zygote itself is still sound (only this launch failed).
    pub fn zygote_is_sound(&self) -> bool {
        matches!(self, ZygoteError::Refused(_) | ZygoteError::Spec(_))
    }
}

/// A running zygote, the master's child.
#[derive(Debug)]
pub struct Zygote {
    pub pid: i32,
    ch: Channel,
}

impl Zygote {
    /// Exec corral as the zygote with `preload`. The master must already
    /// be a child subreaper, or its prototypes would be orphaned to init.
    pub fn spawn(preload: &[PathBuf]) -> Result<Zygote, ZygoteError> {
        let (ours, theirs) = Channel::pair()?;
        let args = ZygoteArgs {
            preload: preload.to_vec(),
        };
        let env = [(corral_ipc::ZYGOTE_ENV.to_string(), args.encode())];
        // The padding is argument space its forks overwrite with their
        // own titles (`php-fpm: pool NAME`); the zygote hides it again.
        let argv = [corral_worker_title().to_string(), " ".repeat(TITLE_ROOM)];
        let pid = corral_sys::process::spawn_self(
            &argv,
            &env,
            &[(corral_ipc::zygote::ZYGOTE_CHANNEL_FD, theirs.as_raw_fd())],
            &[],
        )
        .map_err(ZygoteError::Spawn)?;
        Ok(Zygote {
            pid: pid.as_raw(),
            ch: ours,
        })
    }

    /// Fork the prototype `exec` describes; its pid (the master's child).
    pub fn launch(&self, exec: &PrototypeExec) -> Result<i32, ZygoteError> {
        let spec = LaunchSpec {
            title: exec.title.clone(),
            args: exec.args.clone(),
            cgroup: exec.cgroup.clone(),
        };
        let memfd = corral_sys::shm::memfd_with("corral-launch", &spec.encode())
            .map_err(ZygoteError::Spec)?;
        let placements = exec.handoff.placements();
        let targets = placements.iter().map(|&(t, _)| t).collect();
        let mut fds = vec![memfd.as_raw_fd()];
        fds.extend(placements.iter().map(|&(_, fd)| fd));
        self.ch.send(&ToZygote::Launch { targets }, &fds)?;
        if !corral_sys::socket::wait_readable(self.ch.as_raw_fd(), ANSWER_WITHIN.as_millis() as i32)
        {
            return Err(ZygoteError::Silent(ANSWER_WITHIN));
        }
        match self.ch.recv::<FromZygote>()? {
            Received::Message(FromZygote::Launched { pid }, _) => Ok(pid),
            Received::Message(FromZygote::Failed { text }, _) => Err(ZygoteError::Refused(text)),
            Received::Closed | Received::Empty => Err(ZygoteError::Gone),
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
    /// The zygote to use now, starting it when it is due.
    pub fn get(&mut self, now: std::time::Instant) -> Option<&Zygote> {
        let preload = self.preload.as_ref()?;
        if self.running.is_none() && self.retry_at.is_none_or(|t| now >= t) {
            match Zygote::spawn(preload) {
                Ok(z) => self.running = Some(z),
                Err(e) => self.failed(&e, now),
            }
        }
        self.running.as_ref()
    }

    /// Something went wrong: drop the zygote unless only one launch
    /// failed, and exec prototypes until it is started again (soon when
    /// it merely died, later when it hung or could not start).
    pub fn failed(&mut self, e: &ZygoteError, now: std::time::Instant) {
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

    /// Once a turn: start the zygote again when it is due, so the next
    /// dormant pool finds it ready.
    pub fn tick(&mut self, now: std::time::Instant) {
        if self.running.is_none() && self.retry_at.is_some_and(|t| now >= t) {
            let _ = self.get(now);
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
