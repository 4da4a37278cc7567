//! Prototypes as the master sees them: exec one per pool generation, hear
//! what it says (strictly parsed: it runs as the tenant), reap it.

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::PathBuf;
use std::time::Instant;

use corral_sys::nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};

use crate::master::{Gen, Master, State, MAX_MESSAGES_PER_TURN, PROTOTYPE_ENV};
use crate::pool::{ProtoMsg, Prototype, PROTO_RESTART_DELAY};

impl Master {
    /// Exec the current generation's prototype of pool `i`.
    pub(crate) fn start_prototype(&mut self, i: usize) {
        let (ours, theirs) = match corral_sys::socket::seqpacket_pair() {
            Ok(p) => p,
            Err(e) => {
                self.log.error(&e.to_string());
                return;
            }
        };
        let sup = &self.pools[i];
        let Some(gen) = sup.current.as_ref() else {
            return;
        };
        // The arguments travel in the environment so that the process title
        // is exactly php-fpm's "php-fpm: pool NAME", for workers too.
        let mut args = vec![
            "--pool".to_string(),
            gen.cfg.name.clone(),
            "--board-words".into(),
            corral_status::region_words(gen.nslots).to_string(),
        ];
        // A status pool reads its parent's scoreboard (current generation).
        let parent_board = sup.status_of.as_ref().and_then(|parent| {
            let g = self
                .pools
                .iter()
                .find(|p| &p.name == parent)?
                .current
                .as_ref()?;
            Some((
                g.board_fd.as_raw_fd(),
                corral_status::region_words(g.nslots),
                parent.clone(),
            ))
        });
        if let Some((_, words, parent)) = &parent_board {
            args.extend([
                "--status-of".to_string(),
                parent.clone(),
                "--status-words".into(),
                words.to_string(),
            ]);
        }
        args.extend(self.opts.php_args.iter().cloned());
        let argv = vec![format!("php-fpm: pool {}", gen.cfg.name)];
        let env = [(PROTOTYPE_ENV.to_string(), args.join("\u{1f}"))];
        // The prototype gets its own pool and nothing else: it runs as the
        // tenant, and other tenants' settings (env[] secrets included) must
        // not be in its memory.
        let Some(text) = corral_config::render_pool_only(&self.config, &gen.cfg) else {
            self.log.error(&format!(
                "[pool {}] cannot render the pool configuration",
                gen.cfg.name
            ));
            return;
        };
        let conf_fd = match corral_sys::shm::memfd_with("corral-pool", text.as_bytes()) {
            Ok(fd) => fd,
            Err(e) => {
                self.log.error(&format!("[pool {}] {e}", gen.cfg.name));
                return;
            }
        };
        let mut fds = vec![
            sup.listen.as_raw_fd(),
            theirs.as_raw_fd(),
            gen.board_fd.as_raw_fd(),
            conf_fd.as_raw_fd(),
        ];
        let devnull = std::fs::File::open("/dev/null").ok();
        match (&gen.access_log, &devnull) {
            (Some(a), _) => fds.push(a.as_raw_fd()),
            // Keep the numbering: the status board goes to fd 8.
            (None, Some(n)) if parent_board.is_some() => fds.push(n.as_raw_fd()),
            _ => {}
        }
        if let Some((fd, _, _)) = &parent_board {
            fds.push(*fd);
        }
        let spawned = corral_sys::process::spawn_self(&argv, &env, &fds);
        let name = sup.name.clone();
        let Some(gen) = self.pools[i].current.as_mut() else {
            return;
        };
        match spawned {
            Ok(pid) => {
                let _ = corral_sys::socket::set_nonblocking(ours.as_raw_fd(), true);
                self.log
                    .debug(&format!("[pool {name}] prototype {pid} started"));
                gen.proto = Some(Prototype {
                    pid,
                    ctl: ours,
                    ready: false,
                    layout: None,
                });
                gen.restart_at = None;
            }
            Err(e) => {
                self.log.error(&format!("[pool {name}] {e}"));
                gen.restart_at = Some(Instant::now() + PROTO_RESTART_DELAY);
            }
        }
    }

    /// ondemand pools start dormant: their socket is watched and the
    /// prototype is started by the first connection. Others start now.
    pub(crate) fn start_or_sleep(&mut self, i: usize) {
        let Some(g) = self.pools[i].current.as_mut() else {
            return;
        };
        if g.cfg.pm == corral_config::PmKind::Ondemand {
            g.dormant = true;
            self.log.debug(&format!(
                "[pool {}] dormant until the first connection",
                g.cfg.name
            ));
        } else {
            self.start_prototype(i);
        }
    }

    /// Prototypes are our only direct children.
    pub(crate) fn reap(&mut self) {
        loop {
            match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) | Err(_) => return,
                Ok(st) => {
                    let Some(pid) = st.pid() else { return };
                    let found = self.pools.iter().enumerate().find_map(|(i, p)| {
                        p.gens()
                            .find(|(_, g)| g.proto.as_ref().is_some_and(|x| x.pid == pid))
                            .map(|(g, _)| (i, g))
                    });
                    if let Some((i, g)) = found {
                        self.prototype_gone(i, g, &format!("{st:?}"));
                    }
                }
            }
        }
    }

    pub(crate) fn prototype_gone(&mut self, i: usize, g: Gen, how: &str) {
        if self.pools[i].gen(g).is_none_or(|x| x.proto.is_none()) {
            return;
        }
        // Take what it said before it went (worker exits, in order).
        if let Some(ctl) = self.pools[i]
            .gen(g)
            .and_then(|x| x.proto.as_ref())
            .map(|p| p.ctl.as_raw_fd())
        {
            let mut buf = [0u8; 1024];
            while let Ok((n, fds)) = corral_sys::socket::recv_with_fds(ctl, &mut buf) {
                if n == 0 {
                    break;
                }
                let msg = buf[..n].to_vec();
                self.ctl_message(i, g, &msg, fds);
            }
        }
        let normal = self.state == State::Normal && g == Gen::Current;
        let Some(gen) = self.pools[i].gen_mut(g) else {
            return;
        };
        gen.proto = None;
        gen.reserved.clear();
        // Its workers die with it (PDEATHSIG). Their pids are not
        // signalled from here: they may already belong to someone else.
        let pids: Vec<i32> = gen.workers.keys().copied().collect();
        for pid in pids {
            gen.exited(pid, libc::SIGKILL, false, &mut self.log);
        }
        if normal && gen.sleeping {
            // Stopped for idleness: back to watching the socket.
            gen.sleeping = false;
            gen.dormant = true;
            gen.initial_done = false;
        } else if normal {
            self.log.warning(&format!(
                "[pool {}] prototype exited ({how}); restarting it",
                gen.cfg.name
            ));
            gen.restart_at = Some(Instant::now() + PROTO_RESTART_DELAY);
            gen.initial_done = false;
        }
        if let Gen::Retiring(j) = g {
            self.pools[i].retiring.remove(j);
            if self.pools[i].is_empty() {
                let sup = self.pools.remove(i);
                let still_used = |path: &PathBuf| {
                    self.pools
                        .iter()
                        .any(|p| p.unix_path.as_ref() == Some(path))
                };
                if let Some(path) = sup.unix_path.as_ref().filter(|p| !still_used(p)) {
                    let _ = std::fs::remove_file(path);
                }
                self.log.debug(&format!("[pool {}] stopped", sup.name));
            }
        }
    }

    /// Read every message waiting on a prototype's control channel.
    pub(crate) fn handle_ctl(&mut self, i: usize, g: Gen) {
        // A prototype runs as its tenant: it may not keep the master busy.
        // What is left waits for the next turn of the loop.
        for _ in 0..MAX_MESSAGES_PER_TURN {
            let Some(fd) = self
                .pools
                .get(i)
                .and_then(|p| p.gen(g))
                .and_then(|x| x.proto.as_ref())
                .map(|p| p.ctl.as_raw_fd())
            else {
                return;
            };
            let mut buf = [0u8; 1024];
            match corral_sys::socket::recv_with_fds(fd, &mut buf) {
                Ok((0, _)) => {
                    // Closed: the prototype exited; SIGCHLD reaps it.
                    let pid = self.pools[i]
                        .gen(g)
                        .and_then(|x| x.proto.as_ref())
                        .map(|p| p.pid);
                    if let Some(pid) = pid {
                        let _ = waitpid(pid, Some(WaitPidFlag::WNOHANG));
                    }
                    self.prototype_gone(i, g, "control channel closed");
                    return;
                }
                Ok((n, fds)) => self.ctl_message(i, g, &buf[..n], fds),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
                Err(_) => {
                    self.prototype_gone(i, g, "control channel failed");
                    return;
                }
            }
        }
    }

    pub(crate) fn ctl_message(&mut self, i: usize, g: Gen, msg: &[u8], fds: Vec<OwnedFd>) {
        let normal = self.state == State::Normal && g == Gen::Current;
        let mut room = self.room();
        let Some(gen) = self.pools.get_mut(i).and_then(|p| p.gen_mut(g)) else {
            return;
        };
        match ProtoMsg::parse(msg) {
            Some(ProtoMsg::Ready(layout)) => {
                if let Some(p) = gen.proto.as_mut() {
                    p.ready = true;
                    p.layout = layout;
                }
                if normal {
                    gen.start_initial(&mut room, &mut self.log);
                }
            }
            Some(ProtoMsg::Started { pid, slot }) => gen.started(pid, slot, fds, &mut self.log),
            Some(ProtoMsg::Exited { pid, status }) if is_crash(status) && normal => {
                let replace = gen.exited(pid, status, normal, &mut self.log);
                if replace {
                    gen.replace(&mut room, &mut self.log);
                }
                self.note_crash();
            }
            Some(ProtoMsg::Exited { pid, status }) => {
                let replace = gen.exited(pid, status, normal, &mut self.log);
                if replace && normal {
                    gen.replace(&mut room, &mut self.log);
                }
            }
            // Prefixed by the master: a prototype cannot speak for another pool.
            Some(ProtoMsg::Error(msg)) => self.log.error(&format!("[pool {}] {msg}", gen.cfg.name)),
            None => self.log.warning(&format!(
                "[pool {}] ignoring a malformed message from the prototype",
                gen.cfg.name
            )),
        }
    }
}

/// A worker killed by SIGSEGV or SIGBUS (php-fpm's emergency restart only
/// counts those).
fn is_crash(status: i32) -> bool {
    let sig = status & 0x7f;
    sig == libc::SIGSEGV || sig == libc::SIGBUS
}
