//! The prototype: one process per pool generation, exec'd by the master
//! with the descriptors of [`corral_ipc::Handoff`]. It starts PHP once (so
//! OPcache and start-up state belong to this pool alone), drops to the
//! pool's user, and then only forks workers when the master asks, reaps
//! them, and reports both on its control channel.

mod confine;
mod setup;

use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use corral_ipc::handoff::Inherited;
use corral_ipc::{Channel, FromPrototype, PrototypeArgs, Received, ToPrototype, WaitStatus};
use corral_sys::nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use corral_sys::nix::sys::signal::Signal;
use corral_sys::nix::sys::signalfd::{SfdFlags, SigSet, SignalFd};
use corral_sys::nix::sys::wait::{waitpid, WaitPidFlag};
use corral_sys::process::Forked;
use corral_sys::shm::SharedWords;

use setup::Ready;
pub use setup::SetupError;

use crate::worker;

/// How long the prototype waits for a new worker to reach its accept loop
/// before it forks the next one anyway (see [`Prototype::spawn`]).
const AT_ACCEPT_WAIT_MS: i32 = 1000;

/// sysexits: what the master sees when start-up fails (corral's one table).
const EXIT_CONFIG: i32 = corral_ipc::ExitCode::Config.code();
const EXIT_SOFTWARE: i32 = corral_ipc::ExitCode::Software.code();

/// The prototype's whole life. Returns the process exit code.
pub fn run(args: PrototypeArgs) -> i32 {
    corral_sys::process::set_comm("corral");
    // If the master dies we go too, whatever state we are in: SIGKILL,
    // because a stopped prototype would sit on a pending SIGTERM forever
    // and keep the pool's socket open for the next master to trip over.
    let master = corral_sys::nix::unistd::getppid();
    let _ = corral_sys::process::die_with_parent(libc::SIGKILL, master);
    let Ok(fds) = Inherited::take(&args) else {
        // Without the control channel there is nobody to tell.
        return EXIT_CONFIG;
    };
    let Inherited {
        listen,
        control,
        board,
        config,
        access_log,
        status_board,
    } = fds;
    let ctl = Channel::from_fd(control);
    let mut report = |m: FromPrototype| {
        let _ = ctl.send(&m, &[]);
    };
    let ready = match setup::set_up(config, &args, &mut report) {
        Ok(r) => r,
        Err(e) => {
            report(FromPrototype::Error {
                text: e.to_string(),
            });
            return EXIT_CONFIG;
        }
    };
    // The kernel forgets the parent-death signal when credentials change,
    // and set-up has just dropped to the pool's user: arm it again.
    let _ = corral_sys::process::die_with_parent(libc::SIGKILL, master);
    let boards = match map_boards(&args, board, status_board) {
        Ok(b) => b,
        Err(e) => {
            report(FromPrototype::Error {
                text: e.to_string(),
            });
            return EXIT_SOFTWARE;
        }
    };
    let signals = match Signals::block() {
        Ok(s) => s,
        Err(e) => {
            report(FromPrototype::Error {
                text: e.to_string(),
            });
            return EXIT_SOFTWARE;
        }
    };
    // The slow-log layout rides on "ready": the master reads our workers'
    // PHP stacks at these addresses (all forks share them).
    report(FromPrototype::Ready {
        layout: ready.engine.trace_layout(),
    });
    let mut proto = Prototype {
        ready,
        ctl,
        listen,
        access_log,
        boards,
        signals,
        children: Vec::new(),
        quitting: false,
    };
    proto.serve()
}

/// The scoreboards, mapped. Their descriptors are closed right after: the
/// mappings are inherited by every worker, the descriptors need not be, and
/// a descriptor tenant code cannot find is one it cannot misuse.
struct Boards {
    own: SharedWords,
    /// pm.status_listen pools: the parent's name and its board, read-only.
    status: Option<(String, SharedWords)>,
}

fn map_boards(
    args: &PrototypeArgs,
    board: OwnedFd,
    status_board: Option<OwnedFd>,
) -> Result<Boards, SetupError> {
    let own = SharedWords::map(&board, args.board_words).map_err(SetupError::Board)?;
    drop(board);
    let status = match (&args.status_of, status_board) {
        (Some((parent, words)), Some(fd)) => Some((
            parent.clone(),
            SharedWords::map_read_only(&fd, *words).map_err(SetupError::Board)?,
        )),
        _ => None,
    };
    Ok(Boards { own, status })
}

/// Signals through a signalfd, so the loop sees worker exits in order with
/// control messages and no handler code runs. TERM/INT/QUIT may come
/// straight from a service manager killing the whole group: they mean what
/// the master's Terminate/Quit mean.
struct Signals {
    mask: SigSet,
    fd: SignalFd,
}

impl Signals {
    fn block() -> Result<Signals, SetupError> {
        let mut mask = SigSet::empty();
        for sig in [
            Signal::SIGCHLD,
            Signal::SIGTERM,
            Signal::SIGINT,
            Signal::SIGQUIT,
        ] {
            mask.add(sig);
        }
        mask.thread_block()
            .map_err(|e| SetupError::Signals(e.to_string()))?;
        let fd = SignalFd::with_flags(&mask, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)
            .map_err(|e| SetupError::Signals(e.to_string()))?;
        Ok(Signals { mask, fd })
    }
}

/// A running prototype: what it needs to fork workers, and who they are.
struct Prototype {
    ready: Ready,
    ctl: Channel,
    listen: OwnedFd,
    access_log: Option<OwnedFd>,
    boards: Boards,
    signals: Signals,
    children: Vec<i32>,
    quitting: bool,
}

/// Whether the loop goes on.
enum Next {
    Continue,
    Exit(i32),
}

impl Prototype {
    fn serve(&mut self) -> i32 {
        loop {
            let (ctl_ready, sig_ready) = match self.wait() {
                Ok(r) => r,
                Err(()) => return EXIT_SOFTWARE,
            };
            if sig_ready {
                self.on_signals();
                self.reap();
            }
            if ctl_ready {
                if let Next::Exit(code) = self.on_order() {
                    return code;
                }
            }
            if self.quitting && self.children.is_empty() {
                return 0;
            }
        }
    }

    /// Wait (at most a second) for an order or a signal.
    fn wait(&self) -> Result<(bool, bool), ()> {
        let mut fds = [
            PollFd::new(self.ctl.as_fd(), PollFlags::POLLIN),
            PollFd::new(self.signals.fd.as_fd(), PollFlags::POLLIN),
        ];
        match poll(&mut fds, PollTimeout::from(1000u16)) {
            Ok(_) => {}
            Err(corral_sys::nix::errno::Errno::EINTR) => return Ok((false, false)),
            Err(_) => return Err(()),
        }
        let ready = |p: &PollFd| p.revents().is_some_and(|r| !r.is_empty());
        Ok((ready(&fds[0]), ready(&fds[1])))
    }

    fn on_signals(&mut self) {
        while let Ok(Some(info)) = self.signals.fd.read_signal() {
            let forward = match Signal::try_from(info.ssi_signo as i32) {
                Ok(Signal::SIGQUIT) => Signal::SIGQUIT,
                Ok(Signal::SIGTERM | Signal::SIGINT) => Signal::SIGTERM,
                _ => continue,
            };
            self.quitting = true;
            self.signal_all(forward);
        }
    }

    /// Signal every worker, and continue it: a worker someone stopped
    /// would otherwise hold a pending signal (and the socket) forever.
    fn signal_all(&self, sig: Signal) {
        for &c in &self.children {
            corral_sys::signal::kill(c, sig);
            corral_sys::signal::kill(c, Signal::SIGCONT);
        }
    }

    fn on_order(&mut self) -> Next {
        let (order, fds) = match self.ctl.recv::<ToPrototype>() {
            Ok(Received::Message(m, fds)) => (m, fds),
            Ok(Received::Empty) => return Next::Continue,
            // The master decodes what we say; we decode what it says. A
            // message we cannot read is a bug on its side: ignore it.
            Err(corral_ipc::ChannelError::Decode(_)) => return Next::Continue,
            Ok(Received::Closed) | Err(_) => {
                // The master is gone: take the workers with us.
                self.signal_all(Signal::SIGTERM);
                return Next::Exit(0);
            }
        };
        match order {
            ToPrototype::Spawn { slot } if !self.quitting => self.spawn(slot as usize),
            ToPrototype::Spawn { .. } => {}
            ToPrototype::Stop { pid } => {
                // Only our own children: the master asks by pid.
                if self.children.contains(&pid) {
                    corral_sys::signal::kill(pid, Signal::SIGQUIT);
                    corral_sys::signal::kill(pid, Signal::SIGCONT);
                }
            }
            ToPrototype::ReopenAccessLog => {
                // SIGUSR1: the master reopened the file. Take the new
                // descriptor and let the workers restart onto it (they are
                // forks of us, so OPcache stays warm).
                if let Some(fd) = fds.into_iter().next() {
                    self.access_log = Some(fd);
                    self.signal_all(Signal::SIGQUIT);
                }
            }
            ToPrototype::Quit => {
                self.quitting = true;
                self.signal_all(Signal::SIGQUIT);
            }
            ToPrototype::Terminate => {
                self.quitting = true;
                self.signal_all(Signal::SIGTERM);
            }
        }
        Next::Continue
    }

    fn reap(&mut self) {
        loop {
            let status = match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                Ok(corral_sys::nix::sys::wait::WaitStatus::Exited(pid, code)) => {
                    (pid, WaitStatus::exited(code as u8))
                }
                Ok(corral_sys::nix::sys::wait::WaitStatus::Signaled(pid, sig, core)) => {
                    (pid, WaitStatus::signaled(sig as i32, core))
                }
                Ok(corral_sys::nix::sys::wait::WaitStatus::StillAlive) | Err(_) => return,
                Ok(_) => continue,
            };
            let (pid, status) = (status.0.as_raw(), status.1);
            self.children.retain(|&c| c != pid);
            let _ = self.ctl.send(&FromPrototype::Exited { pid, status }, &[]);
        }
    }

    /// Fork a worker for `slot` and tell the master, with its output pipes
    /// when catch_workers_output is on; then wait until the worker is at
    /// its accept loop before forking another.
    ///
    /// The wait makes workers queue in accept() in the order they were
    /// asked for. Linux hands each connection to the longest-waiting
    /// accept(), so right after start the first connection goes to slot 0,
    /// the next to slot 1, and so on: the order php-fpm's children come up
    /// in, and the order the full status page lists them. Without it, under
    /// load, whichever fork the scheduler ran first took the first request
    /// (PHP's own bug64539 test reads `processes[0]` as the first request's
    /// worker). The worker writes a byte just before accept(); a byte is not
    /// yet a place in accept()'s queue (on a busy machine the worker can be
    /// preempted between the two), so the wait lasts until the worker is
    /// also asleep, which after that byte is accept() or serving what it
    /// accepted. It ends early when the worker dies, and after
    /// [`AT_ACCEPT_WAIT_MS`] in any case; on an idle machine it costs a
    /// fork's start-up (well under a millisecond) per worker.
    fn spawn(&mut self, slot: usize) {
        let pipes = if self.ready.pool.catch_workers_output {
            match (std::io::pipe(), std::io::pipe()) {
                (Ok(out), Ok(err)) => Some((out, err)),
                _ => None,
            }
        } else {
            None
        };
        let at_accept = std::io::pipe().ok();
        match corral_sys::process::fork() {
            Err(e) => {
                let _ = self.ctl.send(
                    &FromPrototype::Error {
                        text: e.to_string(),
                    },
                    &[],
                );
            }
            Ok(Forked::Child) => {
                let write_ends = pipes.map(|(o, e)| (OwnedFd::from(o.1), OwnedFd::from(e.1)));
                let at_accept = at_accept.map(|(_, w)| OwnedFd::from(w));
                self.become_worker(slot, write_ends, at_accept)
            }
            Ok(Forked::Parent(pid)) => {
                let pid = pid.as_raw();
                self.children.push(pid);
                let (captured, fds) = match &pipes {
                    Some((out, err)) => (true, vec![out.0.as_raw_fd(), err.0.as_raw_fd()]),
                    None => (false, Vec::new()),
                };
                let msg = FromPrototype::Started {
                    pid,
                    slot: slot as u32,
                    captured,
                };
                let _ = self.ctl.send(&msg, &fds);
                if let Some((reader, writer)) = at_accept {
                    // Ours closed, the worker's write end is the only one:
                    // its byte or its exit ends the wait.
                    drop(writer);
                    wait_at_accept(pid, &reader);
                }
            }
        }
    }

    /// In the forked child: shed what only the prototype needs, then serve.
    fn become_worker(
        &mut self,
        slot: usize,
        pipes: Option<(OwnedFd, OwnedFd)>,
        at_accept: Option<OwnedFd>,
    ) -> ! {
        let _ = self.signals.mask.thread_unblock();
        // Our parent is the prototype; if it goes, we go at once, stopped
        // or not (see `run`).
        let parent = corral_sys::nix::unistd::getppid();
        let _ = corral_sys::process::die_with_parent(libc::SIGKILL, parent);
        let _ = corral_sys::signal::worker_signals();
        // The worker never talks to the master, and the prototype's signals
        // are not its business.
        let _ = corral_sys::nix::unistd::close(self.ctl.as_raw_fd());
        let _ = corral_sys::nix::unistd::close(self.signals.fd.as_raw_fd());
        redirect_stdio(pipes);
        self.ready.engine.child_init();
        let boards = worker::Boards {
            own: Some(&self.boards.own),
            status: self.boards.status.as_ref().map(|(n, b)| (n.as_str(), b)),
        };
        let access = self.access_log.take().map(std::fs::File::from);
        worker::run(
            &self.ready.engine,
            &self.ready.runtime,
            self.listen.as_fd(),
            &boards,
            slot,
            access,
            at_accept,
        )
    }
}

/// Waits until worker `pid` has written its byte on `reader` (or died) and
/// is then asleep (or gone), for at most [`AT_ACCEPT_WAIT_MS`] in all.
fn wait_at_accept(pid: i32, reader: &std::io::PipeReader) {
    let start = std::time::Instant::now();
    let limit = std::time::Duration::from_millis(AT_ACCEPT_WAIT_MS as u64);
    corral_sys::socket::wait_readable(reader.as_raw_fd(), AT_ACCEPT_WAIT_MS);
    while start.elapsed() < limit {
        match corral_sys::process::run_state(pid) {
            Some('S') | Some('Z') | Some('X') | None => return,
            _ => std::thread::sleep(std::time::Duration::from_micros(50)),
        }
    }
}

/// Worker stdout/stderr: the capture pipes, or /dev/null as in php-fpm.
fn redirect_stdio(pipes: Option<(OwnedFd, OwnedFd)>) {
    let to = |fd: &OwnedFd, target: i32| {
        let _ = corral_sys::nix::unistd::dup2(fd.as_raw_fd(), target);
    };
    match pipes {
        Some((out, err)) => {
            to(&out, 1);
            to(&err, 2);
        }
        None => {
            if let Ok(null) = std::fs::OpenOptions::new().write(true).open("/dev/null") {
                let null = OwnedFd::from(null);
                to(&null, 1);
                to(&null, 2);
            }
        }
    }
}
