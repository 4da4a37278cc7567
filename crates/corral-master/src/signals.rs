//! What the master does on each signal: reap, stop (QUIT finishes, TERM
//! terminates), reopen logs, reload; and php-fpm's emergency restart.

use std::os::fd::AsRawFd;

use corral_ipc::ToPrototype;
use corral_sys::nix::sys::signal::Signal;

use crate::master::{Master, State};

impl Master {
    pub(crate) fn handle_signals(&mut self) {
        if let Some(fd) = &self.sig_fd {
            let mut buf = [0u8; 64];
            while corral_sys::nix::unistd::read(fd.as_raw_fd(), &mut buf).is_ok_and(|n| n > 0) {}
        }
        for sig in corral_sys::signal::take_pending() {
            self.on_signal(sig);
        }
    }

    pub(crate) fn on_signal(&mut self, sig: Signal) {
        match sig {
            Signal::SIGCHLD => self.reap(),
            Signal::SIGTERM | Signal::SIGINT => {
                self.log.debug(&format!("received {}", sig.as_str()));
                if self.state != State::Terminating {
                    self.log.notice("Terminating ...");
                    self.notify.send("STOPPING=1");
                    self.state = State::Terminating;
                    self.broadcast(&ToPrototype::Terminate);
                    self.stop_deadline =
                        Some(self.os.now() + self.config.global.process_control_timeout);
                }
            }
            Signal::SIGQUIT => {
                self.log.debug("received SIGQUIT");
                if self.state == State::Normal {
                    self.log.notice("Finishing ...");
                    self.notify.send("STOPPING=1");
                    self.state = State::Finishing;
                    self.broadcast(&ToPrototype::Quit);
                    self.stop_deadline = Some(self.os.now() + self.drain_grace());
                }
            }
            Signal::SIGUSR1 => {
                match self.log.reopen() {
                    Ok(()) => self.log.notice("error log file re-opened"),
                    Err(e) => self
                        .log
                        .error(&format!("unable to re-opened error log file: {e}")),
                }
                self.reopen_access_logs();
            }
            Signal::SIGUSR2 | Signal::SIGHUP => {
                self.log.debug(&format!("received {}", sig.as_str()));
                if self.state == State::Normal {
                    let _ = self.reload(None);
                }
            }
            _ => {}
        }
    }

    /// emergency_restart_threshold crashes within emergency_restart_interval
    /// restart every pool, as php-fpm's emergency reload does.
    pub(crate) fn note_crash(&mut self) {
        let threshold = self.config.global.emergency_restart_threshold as usize;
        let interval = self.config.global.emergency_restart_interval;
        if threshold == 0 || interval.is_zero() {
            return;
        }
        let now = self.os.now();
        self.crashes.push_back(now);
        while self
            .crashes
            .front()
            .is_some_and(|t| now.duration_since(*t) > interval)
        {
            self.crashes.pop_front();
        }
        if self.crashes.len() >= threshold {
            self.log.warning(&format!(
                "failed processes threshold ({threshold} in {} sec) is reached, initiating reload",
                interval.as_secs()
            ));
            self.crashes.clear();
            let _ = self.reload_with(None, true);
        }
    }

    /// SIGUSR1 for access logs: reopen each (log rotation moved the old
    /// file away) and hand the new descriptor to the prototype, which
    /// recycles its workers onto it.
    pub(crate) fn reopen_access_logs(&mut self) {
        let mut any = false;
        let mut failed = false;
        for g in self.pools.values_mut().filter_map(|p| p.current.as_mut()) {
            let Some(path) = g.cfg.access_log.clone() else {
                continue;
            };
            any = true;
            match crate::pool::open_log(&path) {
                Ok(fd) => {
                    g.send_with(&ToPrototype::ReopenAccessLog, &[fd.as_raw_fd()]);
                    g.access_log = Some(fd);
                }
                Err(_) => failed = true,
            }
        }
        if failed {
            self.log.error("unable to re-opened access log file");
        } else if any {
            self.log.notice("access log file re-opened");
        }
    }
}
