//! The master's event loop: one poll() over signals, the control socket,
//! every prototype's channel, captured worker output, the sockets of
//! pools with nobody to accept and the metrics server's; then the
//! once-a-turn and once-a-second work.

use std::os::fd::{AsFd, AsRawFd};
use std::time::{Duration, Instant};

use corral_ipc::ToPrototype;
use corral_sys::nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use corral_sys::nix::sys::signal::Signal;

use crate::ids::{GenId, PoolId};
use crate::master::{notify_launcher, Master, State, EXIT_OK};

/// The ready sources, signals last: what workers wrote before a signal came
/// is logged before the master acts on it, so "Terminating ..." follows a
/// worker's last words (a worker logs before it closes the connection its
/// client then reacts to).
fn signals_last(srcs: Vec<Source>, ready: &[bool]) -> Vec<Source> {
    let (mut signals, mut rest): (Vec<Source>, Vec<Source>) = srcs
        .into_iter()
        .zip(ready)
        .filter(|(_, &ok)| ok)
        .map(|(src, _)| src)
        .partition(|src| matches!(src, Source::Signals));
    rest.append(&mut signals);
    rest
}

impl Master {
    pub(crate) fn event_loop(&mut self) -> i32 {
        let mut last_tick = Instant::now();
        let mut last_beat = Instant::now();
        loop {
            if self.state != State::Normal
                && self
                    .pools
                    .values()
                    .all(|p| p.gens().all(|g| g.proto.is_none()))
            {
                return EXIT_OK;
            }
            let (srcs, raw) = self.sources();
            let borrowed: Vec<_> = raw
                .iter()
                .map(|&fd| corral_sys::process::fixed_fd(fd))
                .collect();
            let mut pfds: Vec<PollFd> = borrowed
                .iter()
                .zip(&srcs)
                .map(|(b, src)| PollFd::new(b.as_fd(), src.interest()))
                .collect();
            let beat = crate::timeouts::heartbeat(
                self.pools.values().flat_map(|p| p.gens()).map(|g| &g.cfg),
            );
            let mut wait = Duration::from_millis(1000)
                .saturating_sub(last_tick.elapsed())
                .min(beat.saturating_sub(last_beat.elapsed()));
            // A request's timeout is checked when it falls due, not at the
            // next heartbeat after it. Requests that start during this wait
            // fall due later, and the heartbeat finds them in time.
            let timeout_due = self.next_timeout_due();
            if let Some(due) = timeout_due {
                wait = wait.min(due.saturating_duration_since(Instant::now()));
            }
            // A crash-loop back-off ends when it ends, not at the next tick.
            if let Some(due) = self.next_restart_due() {
                wait = wait.min(due.saturating_duration_since(self.os.now()));
            }
            // A metrics client's time runs out when it does.
            if let Some(due) = self.metrics.as_ref().and_then(|s| s.next_deadline()) {
                wait = wait.min(due.saturating_duration_since(Instant::now()));
            }
            let timeout = PollTimeout::try_from(wait.as_millis().min(1000) as i32)
                .unwrap_or(PollTimeout::ZERO);
            let _ = poll(&mut pfds, timeout);
            let ready: Vec<bool> = pfds
                .iter()
                .map(|p| p.revents().is_some_and(|r| !r.is_empty()))
                .collect();
            drop(pfds);

            for src in signals_last(srcs, &ready) {
                self.dispatch(src);
            }
            if let Some(s) = self.metrics.as_mut() {
                s.expire(Instant::now());
            }
            self.after_events();

            let due = timeout_due.is_some_and(|d| d <= Instant::now());
            if last_beat.elapsed() >= beat || due {
                last_beat = Instant::now();
                self.check_timeouts();
            }
            self.systemd_report();
            if last_tick.elapsed() >= Duration::from_millis(1000) {
                last_tick = Instant::now();
                self.maintenance();
            }
        }
    }

    /// What the loop watches, with the descriptor for each.
    fn sources(&self) -> (Vec<Source>, Vec<i32>) {
        let mut srcs = Vec::new();
        let mut raw = Vec::new();
        if let Some(fd) = &self.sig_fd {
            srcs.push(Source::Signals);
            raw.push(fd.as_raw_fd());
        }
        if let Some(c) = &self.control {
            srcs.push(Source::Control);
            raw.push(c.as_raw_fd());
        }
        if let Some(server) = &self.metrics {
            for (fd, interest) in server.watch() {
                let write = interest == corral_metrics::http::Interest::Write;
                srcs.push(Source::Metrics(fd, write));
                raw.push(fd);
            }
        }
        for (&id, p) in &self.pools {
            for gen in p.gens() {
                if let Some(pr) = &gen.proto {
                    srcs.push(Source::Prototype(id, gen.id));
                    raw.push(pr.ctl.as_raw_fd());
                }
                for (pid, idx, fd) in gen.capture_fds() {
                    srcs.push(Source::Output(id, gen.id, pid, idx));
                    raw.push(fd);
                }
            }
            if self.state == State::Normal
                && p.current.as_ref().is_some_and(|g| g.wants_accept_watch())
            {
                srcs.push(Source::Accept(id));
                raw.push(p.listen.as_raw_fd());
            }
        }
        (srcs, raw)
    }

    /// Handle one ready source. Ids stay valid whatever an earlier handler
    /// removed; a handler for something gone does nothing.
    pub(crate) fn dispatch(&mut self, src: Source) {
        match src {
            Source::Signals => self.handle_signals(),
            Source::Control => self.handle_control(),
            Source::Prototype(p, g) => self.handle_ctl(p, g),
            Source::Accept(p) => self.on_connection(p),
            Source::Metrics(fd, _) => self.handle_metrics(fd),
            Source::Output(p, g, pid, idx) => {
                if let Some(gen) = self.pools.get_mut(&p).and_then(|s| s.gen_mut(g)) {
                    gen.read_capture(pid, idx, &mut self.log);
                }
            }
        }
    }

    /// A connection waits on a pool with nobody to accept it: wake a
    /// dormant pool, or let ondemand spawn.
    fn on_connection(&mut self, id: PoolId) {
        let Some(g) = self.pools.get_mut(&id).and_then(|p| p.current.as_mut()) else {
            return;
        };
        if g.dormant {
            g.dormant = false;
            g.sleeping = false;
            self.start_prototype(id);
        } else {
            let mut room = self.room();
            if let Some(g) = self.pools.get_mut(&id).and_then(|p| p.current.as_mut()) {
                g.on_accept(&mut room, &mut self.log);
            }
        }
    }

    /// Once per turn, whatever happened: say "ready" once, and retire
    /// generations whose successors are up.
    pub(crate) fn after_events(&mut self) {
        if !self.ready_logged && self.all_ready() && self.replaced_stopped_accepting() {
            self.ready_logged = true;
            self.announce_ready();
        }
        self.retire_replaced();
        self.restart_due();
        self.log_zygote_notes();
    }

    fn announce_ready(&mut self) {
        notify_launcher(&mut self.opts, true);
        self.log.notice("ready to handle connections");
        if self.notify.enabled() {
            self.notify.send("READY=1");
            self.log.notice(&match self.notify.watchdog {
                Some(w) => format!(
                    "systemd watchdog configured to {:.3}sec",
                    w.as_secs_f64() * 2.0
                ),
                None => format!(
                    "systemd monitor interval set to {}ms",
                    self.config.global.systemd_interval.as_millis()
                ),
            });
        }
        self.log.echo_stderr = false;
    }

    /// The earliest moment a busy worker's slow-log or terminate timeout
    /// falls due.
    fn next_timeout_due(&self) -> Option<Instant> {
        let now_us = corral_status::now_us();
        let now = Instant::now();
        self.pools
            .values()
            .flat_map(|p| p.gens())
            .filter_map(crate::timeouts::next_due_us)
            .min()
            .map(|due_us| now + Duration::from_micros(due_us.saturating_sub(now_us)))
    }

    fn check_timeouts(&mut self) {
        let now_us = corral_status::now_us();
        for p in self.pools.values_mut() {
            for g in p.gens_mut() {
                crate::timeouts::check(g, now_us, self.os.as_mut(), &mut self.log);
            }
        }
    }

    /// A retiring generation is told to quit only once its successor is up,
    /// so that someone is always accepting on the socket.
    pub(crate) fn retire_replaced(&mut self) {
        let grace = self.drain_grace();
        for p in self.pools.values_mut() {
            let successor_up = p
                .current
                .as_ref()
                .is_none_or(|g| g.is_up() || g.dormant || g.restart_at.is_some());
            if successor_up {
                for g in p.retiring.iter_mut().filter(|g| !g.quit_sent) {
                    g.retire(grace);
                }
            }
        }
    }

    fn next_restart_due(&self) -> Option<Instant> {
        self.pools
            .values()
            .filter_map(|p| p.current.as_ref())
            .filter(|g| g.proto.is_none())
            .filter_map(|g| g.restart_at)
            .min()
    }

    /// Start the prototypes whose restart time has come.
    pub(crate) fn restart_due(&mut self) {
        if self.state != State::Normal {
            return;
        }
        let now = self.os.now();
        let due: Vec<PoolId> = self
            .pools
            .iter()
            .filter(|(_, p)| {
                p.current
                    .as_ref()
                    .is_some_and(|g| g.proto.is_none() && g.restart_at.is_some_and(|t| t <= now))
            })
            .map(|(&id, _)| id)
            .collect();
        for id in due {
            self.start_prototype(id);
        }
    }

    /// The one-second tick: drains, restarts, and the pm policy.
    pub(crate) fn maintenance(&mut self) {
        let now = self.os.now();
        self.os.cgroup_sweep();
        self.sample_history();
        self.escalate_drains(now);
        if self.state == State::Normal {
            self.renew_dead_listeners();
            self.restart_due();
            let now_us = corral_status::now_us();
            let ids: Vec<PoolId> = self.pools.keys().copied().collect();
            for id in ids {
                self.pm_tick(id, now, now_us);
            }
        } else {
            self.escalate_stop(now);
        }
    }

    /// Retiring generations past their grace: Terminate, then SIGKILL.
    fn escalate_drains(&mut self, now: Instant) {
        for p in self.pools.values_mut() {
            for g in &mut p.retiring {
                if g.drain_deadline.is_some_and(|d| now >= d) {
                    if g.send(&ToPrototype::Terminate) {
                        g.drain_deadline = Some(now + Duration::from_secs(1));
                    } else if let Some(pr) = &g.proto {
                        self.os.signal(pr.pid, Signal::SIGKILL);
                    }
                }
            }
        }
    }

    /// One pool's second: publish what only the master knows, run the pm
    /// policy, and put an idle ondemand pool to sleep.
    fn pm_tick(&mut self, id: PoolId, now: Instant, now_us: u64) {
        let mut room = self.room();
        let Some(p) = self.pools.get_mut(&id) else {
            return;
        };
        let queue = self.os.listen_queue(p.listen.as_raw_fd());
        let Some(g) = p.current.as_mut() else {
            return;
        };
        g.publish(queue);
        g.expire_unverified(now, &mut self.log);
        g.tick(now_us, &mut room, &mut self.log);
        if g.should_sleep(now) {
            g.sleeping = true;
            g.send(&ToPrototype::Quit);
            self.log.debug(&format!(
                "[pool {}] idle: prototype stopped until the next connection",
                g.cfg.name
            ));
        }
    }

    /// Stopping: QUIT → TERM → KILL, as php-fpm does.
    fn escalate_stop(&mut self, now: Instant) {
        let Some(deadline) = self.stop_deadline else {
            return;
        };
        if now < deadline {
            return;
        }
        match self.state {
            State::Finishing => {
                self.state = State::Terminating;
                self.broadcast(&ToPrototype::Terminate);
            }
            _ => {
                let pids: Vec<i32> = self
                    .pools
                    .values()
                    .flat_map(|p| p.gens())
                    .filter_map(|g| g.proto.as_ref().map(|p| p.pid))
                    .collect();
                for pid in pids {
                    self.os.signal(pid, Signal::SIGKILL);
                }
            }
        }
        self.stop_deadline = Some(now + Duration::from_secs(1));
    }

    /// STATUS (and WATCHDOG) every systemd_interval, or at half the
    /// watchdog period when systemd set one.
    pub(crate) fn systemd_report(&mut self) {
        if !self.notify.enabled() || !self.ready_logged {
            return;
        }
        let every = self
            .notify
            .watchdog
            .unwrap_or(self.config.global.systemd_interval);
        if every.is_zero() || self.last_requests.1.elapsed() < every {
            return;
        }
        let (mut active, mut idle, mut requests, mut slow) = (0u64, 0u64, 0u64, 0u64);
        for g in self.pools.values().flat_map(|p| p.gens()) {
            let views = g.views();
            idle += views.iter().filter(|w| w.idle).count() as u64;
            active += views.iter().filter(|w| !w.idle).count() as u64;
            requests += corral_status::Reader::new(g.board.words()).accepted_conn();
            slow += g.slow_requests;
        }
        let secs = self.last_requests.1.elapsed().as_secs_f64().max(0.001);
        let rate = requests.saturating_sub(self.last_requests.0) as f64 / secs;
        let mut msg = crate::systemd::status_line(active, idle, requests, slow, rate);
        if self.notify.watchdog.is_some() {
            msg.push_str("\nWATCHDOG=1");
        }
        self.notify.send(&msg);
        self.last_requests = (requests, Instant::now());
    }

    pub(crate) fn handle_control(&mut self) {
        let Some(listener) = &self.control else {
            return;
        };
        let Ok((stream, _)) = listener.accept() else {
            return;
        };
        crate::control::serve(self, stream);
    }
}

/// Something the event loop watches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Source {
    Signals,
    Control,
    /// A prototype's control channel.
    Prototype(PoolId, GenId),
    /// A listening socket with nobody to accept (dormant or ondemand).
    Accept(PoolId),
    /// A worker's captured stdout or stderr.
    Output(PoolId, GenId, i32, usize),
    /// The metrics server's listener or one of its connections, and
    /// whether it waits to write.
    Metrics(i32, bool),
}

impl Source {
    fn interest(&self) -> PollFlags {
        match self {
            Source::Metrics(_, true) => PollFlags::POLLOUT,
            _ => PollFlags::POLLIN,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signal_is_handled_after_what_else_was_ready_in_its_turn() {
        let srcs = vec![Source::Signals, Source::Control, Source::Signals];
        assert_eq!(
            signals_last(srcs.clone(), &[true, true, false]),
            [Source::Control, Source::Signals]
        );
        assert_eq!(signals_last(srcs, &[false, false, true]), [Source::Signals]);
    }
}
