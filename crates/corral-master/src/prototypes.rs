//! Prototypes as the master sees them: exec one per pool generation, hear
//! what it says (strictly decoded: it runs as the tenant), reap it, and
//! restart it when it dies.

use std::os::fd::{AsRawFd, OwnedFd};

use corral_ipc::{Channel, FromPrototype, Handoff, PrototypeArgs, Received, WaitStatus};
use corral_sys::shm::SharedWords;

use crate::error::SpawnError;
use crate::ids::{GenId, PoolId};
use crate::master::{Master, State, MAX_MESSAGES_PER_TURN};
use crate::os::PrototypeExec;
use crate::pool::Prototype;

/// What a prototype is exec'd with, owned until the exec is done.
struct Prepared {
    exec: PrototypeExec,
    ours: Channel,
    /// Kept open until the exec: the handoff names their numbers.
    _keep: Vec<OwnedFd>,
}

impl Master {
    /// Exec the current generation's prototype of a pool. A failure is
    /// logged and retried after a back-off.
    pub(crate) fn start_prototype(&mut self, id: PoolId) {
        let mut prepared = match self.prepare_prototype(id) {
            Ok(Some(p)) => p,
            Ok(None) => return,
            Err(e) => {
                self.log.error(&e.to_string());
                self.retry_later(id);
                return;
            }
        };
        prepared.exec.cgroup = self.leaf_for_prototype(id);
        let spawned = self.os.exec_prototype(&prepared.exec);
        let now = self.os.now();
        let Some(sup) = self.pools.get_mut(&id) else {
            return;
        };
        let name = sup.name.clone();
        let Some(gen) = sup.current.as_mut() else {
            return;
        };
        match spawned {
            Ok(pid) => {
                let _ = prepared.ours.set_nonblocking(true);
                self.log
                    .debug(&format!("[pool {name}] prototype {pid} started"));
                gen.proto = Some(Prototype {
                    pid,
                    ctl: prepared.ours,
                    ready: false,
                    layout: None,
                    started: now,
                });
                gen.restart_at = None;
                gen.isolation = Default::default();
            }
            Err(source) => {
                let e = SpawnError::Exec { pool: name, source };
                self.log.error(&e.to_string());
                self.retry_later(id);
            }
        }
    }

    fn retry_later(&mut self, id: PoolId) {
        let now = self.os.now();
        if let Some(gen) = self.pools.get_mut(&id).and_then(|p| p.current.as_mut()) {
            gen.restart_at = Some(now + gen.restarts.after_failed_start());
        }
    }

    /// The arguments and descriptors for a pool's prototype. The prototype
    /// gets its own pool and nothing else: it runs as the tenant, and other
    /// tenants' settings (env[] secrets included) must not be in its memory.
    fn prepare_prototype(&self, id: PoolId) -> Result<Option<Prepared>, SpawnError> {
        let Some(sup) = self.pools.get(&id) else {
            return Ok(None);
        };
        let Some(gen) = sup.current.as_ref() else {
            return Ok(None);
        };
        let pool = gen.cfg.name.clone();
        let (ours, theirs) = Channel::pair().map_err(|source| SpawnError::Channel {
            pool: pool.clone(),
            source,
        })?;
        let text = corral_config::render_pool_only(&self.config, &gen.cfg)
            .ok_or_else(|| SpawnError::Render(pool.clone()))?;
        let conf_fd =
            corral_sys::shm::memfd_with("corral-pool", text.as_bytes()).map_err(|source| {
                SpawnError::ConfigMemfd {
                    pool: pool.clone(),
                    source,
                }
            })?;
        // A status pool reads its parent's scoreboard (current generation),
        // through a read-only open: it reports the parent, it does not
        // write for it.
        let parent = sup.status_of.as_ref().and_then(|parent| {
            let g = self
                .pools
                .values()
                .find(|p| &p.name == parent)?
                .current
                .as_ref()?;
            Some((parent.clone(), g))
        });
        let status_board =
            match &parent {
                Some((_, g)) => Some(SharedWords::reopen_read_only(&g.board_fd).map_err(
                    |source| SpawnError::StatusBoard {
                        pool: pool.clone(),
                        source,
                    },
                )?),
                None => None,
            };
        let args = PrototypeArgs {
            pool: pool.clone(),
            board_words: corral_status::region_words(gen.nslots),
            status_of: parent
                .as_ref()
                .map(|(name, g)| (name.clone(), corral_status::region_words(g.nslots))),
            access_log: gen.access_log.is_some(),
            php: corral_ipc::PhpArgs::from_words(&self.opts.php_args),
            deny_connect: if gen.cfg.isolation.landlock {
                tcp_ports(&self.config.pools)
            } else {
                Vec::new()
            },
        };
        let handoff = Handoff {
            listen: sup.listen.as_raw_fd(),
            control: theirs.as_raw_fd(),
            board: gen.board_fd.as_raw_fd(),
            config: conf_fd.as_raw_fd(),
            access_log: gen.access_log.as_ref().map(|f| f.as_raw_fd()),
            status_board: status_board.as_ref().map(|f| f.as_raw_fd()),
        };
        let mut keep = vec![theirs.into_fd(), conf_fd];
        keep.extend(status_board);
        Ok(Some(Prepared {
            exec: PrototypeExec {
                title: format!("php-fpm: pool {pool}"),
                args,
                handoff,
                cgroup: Vec::new(),
            },
            ours,
            _keep: keep,
        }))
    }

    /// ondemand pools start dormant: their socket is watched and the
    /// prototype is started by the first connection. Others start now.
    pub(crate) fn start_or_sleep(&mut self, id: PoolId) {
        self.cgroup_for_generation(id);
        let Some(g) = self.pools.get_mut(&id).and_then(|p| p.current.as_mut()) else {
            return;
        };
        if g.cfg.pm == corral_config::PmKind::Ondemand {
            g.dormant = true;
            self.log.debug(&format!(
                "[pool {}] dormant until the first connection",
                g.cfg.name
            ));
        } else {
            self.start_prototype(id);
        }
    }

    /// Which pool and generation a prototype pid belongs to.
    pub(crate) fn find_prototype(&self, pid: i32) -> Option<(PoolId, GenId)> {
        self.pools.iter().find_map(|(&id, p)| {
            p.gens()
                .find(|g| g.proto.as_ref().is_some_and(|x| x.pid == pid))
                .map(|g| (id, g.id))
        })
    }

    /// Prototypes are our only direct children.
    pub(crate) fn reap(&mut self) {
        while let Some((pid, status)) = self.os.reap() {
            if let Some((p, g)) = self.find_prototype(pid) {
                self.prototype_gone(p, g, &crate::pool::describe_status(status));
            }
        }
    }

    /// A prototype exited (or its channel closed): its workers are gone
    /// with it; restart it, put it to sleep, or drop the generation.
    pub(crate) fn prototype_gone(&mut self, p: PoolId, g: GenId, how: &str) {
        let Some(gen) = self.pools.get(&p).and_then(|s| s.gen(g)) else {
            return;
        };
        if gen.proto.is_none() {
            return;
        }
        // Take what it said before it went (worker exits, in order).
        for _ in 0..MAX_MESSAGES_PER_TURN {
            match self.recv_from(p, g) {
                Some(Ok(Received::Message(msg, fds))) => self.ctl_message(p, g, msg, fds),
                Some(Err(_)) => continue,
                _ => break,
            }
        }
        let normal = self.state == State::Normal && self.pools[&p].is_current(g);
        let now = self.os.now();
        let Some(gen) = self.pools.get_mut(&p).and_then(|s| s.gen_mut(g)) else {
            return;
        };
        let Some(proto) = gen.proto.take() else {
            return;
        };
        gen.reserved.clear();
        // Its workers die with it (PDEATHSIG). Their pids are not
        // signalled from here: they may already belong to someone else.
        let pids: Vec<i32> = gen.workers.keys().copied().collect();
        for pid in pids {
            gen.exited(
                pid,
                WaitStatus::signaled(libc::SIGKILL, false),
                false,
                &mut self.log,
            );
        }
        // What its workers started, however detached, goes too; a
        // restarted prototype finds its leaf empty.
        self.kill_leaf(p, g);
        let Some(gen) = self.pools.get_mut(&p).and_then(|s| s.gen_mut(g)) else {
            return;
        };
        if normal && gen.sleeping {
            // Stopped for idleness: back to watching the socket.
            gen.sleeping = false;
            gen.dormant = true;
            gen.initial_done = false;
        } else if normal {
            let wait = gen.restarts.after_death(proto.started, now);
            gen.initial_done = false;
            gen.restart_at = Some(now + wait);
            let name = gen.cfg.name.clone();
            if wait.is_zero() {
                self.log.warning(&format!(
                    "[pool {name}] prototype exited ({how}); restarting it"
                ));
                self.start_prototype(p);
            } else {
                self.log.warning(&format!(
                    "[pool {name}] prototype exited ({how}) again soon after it started; restarting it in {:.1}s",
                    wait.as_secs_f64()
                ));
            }
        } else if !self.pools[&p].is_current(g) {
            self.drop_generation(p, g);
        }
    }

    /// A retiring generation is gone; a pool with nothing left goes too.
    fn drop_generation(&mut self, p: PoolId, g: GenId) {
        let Some(sup) = self.pools.get_mut(&p) else {
            return;
        };
        let leaf = sup.gen(g).filter(|x| x.cgroup).map(|x| x.cfg.name.clone());
        let (gone, kept): (Vec<_>, Vec<_>) = std::mem::take(&mut sup.retiring)
            .into_iter()
            .partition(|x| x.id == g);
        sup.retiring = kept;
        let empty = sup.is_empty();
        for old in &gone {
            self.carry_counters(old);
        }
        if let Some(name) = leaf {
            self.remove_leaf(&name, g);
        }
        if !empty {
            return;
        }
        let Some(sup) = self.pools.remove(&p) else {
            return;
        };
        let still_used = self
            .pools
            .values()
            .any(|x| x.unix_path.is_some() && x.unix_path == sup.unix_path);
        if let Some(path) = sup.unix_path.as_ref().filter(|_| !still_used) {
            let _ = std::fs::remove_file(path);
        }
        self.log.debug(&format!("[pool {}] stopped", sup.name));
    }

    fn recv_from(
        &self,
        p: PoolId,
        g: GenId,
    ) -> Option<Result<Received<FromPrototype>, corral_ipc::ChannelError>> {
        let proto = self.pools.get(&p)?.gen(g)?.proto.as_ref()?;
        Some(proto.ctl.recv::<FromPrototype>())
    }

    /// Read what is waiting on a prototype's control channel. A prototype
    /// runs as its tenant: it may not keep the master busy, so what is left
    /// after a bounded number of messages waits for the next turn.
    pub(crate) fn handle_ctl(&mut self, p: PoolId, g: GenId) {
        for _ in 0..MAX_MESSAGES_PER_TURN {
            match self.recv_from(p, g) {
                None | Some(Ok(Received::Empty)) => return,
                Some(Ok(Received::Message(msg, fds))) => self.ctl_message(p, g, msg, fds),
                Some(Ok(Received::Closed)) => {
                    // The prototype exited; reap it now if it is a zombie,
                    // else SIGCHLD will.
                    self.reap();
                    self.prototype_gone(p, g, "control channel closed");
                    return;
                }
                Some(Err(corral_ipc::ChannelError::Decode(e))) => {
                    let name = self.pools[&p].name.clone();
                    self.log.warning(&format!(
                        "[pool {name}] ignoring a malformed message from the prototype: {e}"
                    ));
                }
                Some(Err(_)) => {
                    self.prototype_gone(p, g, "control channel failed");
                    return;
                }
            }
        }
    }

    pub(crate) fn ctl_message(
        &mut self,
        p: PoolId,
        g: GenId,
        msg: FromPrototype,
        fds: Vec<OwnedFd>,
    ) {
        let Some(sup) = self.pools.get(&p) else {
            return;
        };
        let normal = self.state == State::Normal && sup.is_current(g);
        let parent = match &msg {
            FromPrototype::Started { pid, .. } => self.os.parent_of(*pid),
            _ => None,
        };
        let mut room = self.room();
        let Some(gen) = self.pools.get_mut(&p).and_then(|s| s.gen_mut(g)) else {
            return;
        };
        match msg {
            FromPrototype::Ready { layout } => {
                if let Some(pr) = gen.proto.as_mut() {
                    pr.ready = true;
                    pr.layout = crate::slowlog::Layout::from_words(&layout);
                }
                if normal {
                    gen.start_initial(&mut room, &mut self.log);
                }
            }
            FromPrototype::Started { pid, slot, .. } => gen.started(
                pid,
                slot as usize,
                parent,
                fds,
                self.os.now(),
                &mut self.log,
            ),
            FromPrototype::Exited { pid, status } => {
                let crashed = is_crash(status);
                let replace = gen.exited(pid, status, normal, &mut self.log);
                if replace && normal {
                    gen.replace(&mut room, &mut self.log);
                }
                if crashed && normal {
                    self.note_crash();
                }
            }
            // Prefixed by the master: a prototype cannot speak for another pool.
            FromPrototype::Error { text } => {
                self.log.error(&format!("[pool {}] {text}", gen.cfg.name))
            }
            FromPrototype::Isolation { applied, what } => {
                let line = format!("[pool {}] isolation: {what}", gen.cfg.name);
                if gen.isolation.note(applied, what) {
                    if applied {
                        self.log.notice(&line);
                    } else {
                        self.log.warning(&line);
                    }
                }
            }
        }
    }
}

/// Every pool's FastCGI and status TCP ports, for a Landlock pool to be
/// denied: a pool never needs FastCGI to any pool (its own included).
fn tcp_ports(pools: &[corral_config::Pool]) -> Vec<u16> {
    let mut ports: Vec<u16> = pools
        .iter()
        .flat_map(|p| std::iter::once(&p.listen).chain(p.pm_status_listen.as_ref()))
        .filter_map(|l| match l {
            corral_config::Listen::Tcp { port, .. } if *port != 0 => Some(*port),
            _ => None,
        })
        .collect();
    ports.sort_unstable();
    ports.dedup();
    ports
}

/// A worker killed by SIGSEGV or SIGBUS (php-fpm's emergency restart only
/// counts those).
fn is_crash(status: WaitStatus) -> bool {
    matches!(status.signal(), Some(libc::SIGSEGV | libc::SIGBUS))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_tcp_listener_and_status_port_is_denied_once() {
        let pool = |listen: &str, status: Option<&str>| {
            let text = format!(
                "[p]\nlisten = {listen}\nuser = nobody\npm = static\npm.max_children = 1\n{}",
                status
                    .map(|s| format!("pm.status_listen = {s}\n"))
                    .unwrap_or_default()
            );
            let c = corral_config::parse_str(
                &text,
                std::path::Path::new("t.conf"),
                &Default::default(),
            )
            .unwrap();
            c.pools.into_iter().next().unwrap()
        };
        let pools = vec![
            pool("127.0.0.1:9001", Some("127.0.0.1:9101")),
            pool("/run/b.sock", Some("9102")),
            pool("[::1]:9001", None),
            pool("/run/c.sock", Some("/run/c-status.sock")),
        ];
        assert_eq!(tcp_ports(&pools), vec![9001, 9101, 9102]);
    }
}
