//! Reload: re-read the configuration, validate it whole, and change only
//! what changed, pool by pool, generation beside generation.
//!
//! A reload is planned first ([`plan`], a pure function of what runs and
//! what the new configuration says) and then applied step by step.

use std::os::fd::AsRawFd;

use corral_config::{Config, Pool};

use crate::error::ReloadError;
use crate::ids::PoolId;
use crate::master::{expand, Master};
use crate::pool::Generation;

/// What runs now, as the planner needs to see it.
#[derive(Debug, Clone)]
pub(crate) struct Running<'a> {
    pub id: PoolId,
    pub name: &'a str,
    pub listen_address: &'a str,
    pub status_of: Option<&'a str>,
    /// The current generation's configuration; none for a pool that is
    /// only draining.
    pub cfg: Option<&'a Pool>,
}

/// One change a reload makes.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Step {
    /// Not in the new configuration: drain.
    Remove(PoolId),
    Keep(PoolId),
    /// Same socket, new generation.
    Regenerate(PoolId, Pool),
    /// A new address: a new socket; the old one drains.
    Move(PoolId, Pool),
    /// New: its socket and first generation; the parent of a status pool.
    Add(Pool, Option<String>),
}

/// Why every pool restarts regardless of its own configuration.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Forces {
    /// Emergency restart.
    pub all: bool,
    /// php.ini or libphp changed.
    pub ini: bool,
}

/// The steps, in the order to apply them: parents before status pools (a
/// status pool restarts onto its parent's new scoreboard), additions last.
/// `wanted` limits the reload to some pools (a status pool goes with its
/// parent).
pub(crate) fn plan(
    running: &[Running<'_>],
    new: &[(Pool, Option<String>)],
    wanted: &dyn Fn(&str) -> bool,
    forces: Forces,
) -> Vec<Step> {
    let forced = forces.all || forces.ini;
    let unchanged = |r: &Running<'_>, p: &Pool| r.cfg.is_some_and(|c| same_pool(c, p));
    // Parents that get a new generation take their status pools along.
    let changed_parents: Vec<&str> = new
        .iter()
        .filter(|(p, parent)| parent.is_none() && wanted(&p.name))
        .filter(|(p, _)| forced || !running.iter().any(|r| r.name == p.name && unchanged(r, p)))
        .map(|(p, _)| p.name.as_str())
        .collect();
    let mut steps = Vec::new();
    let parents_first = running
        .iter()
        .filter(|r| r.status_of.is_none())
        .chain(running.iter().filter(|r| r.status_of.is_some()));
    for r in parents_first.filter(|r| wanted(r.name)) {
        let Some((p, _)) = new.iter().find(|(p, _)| p.name == r.name) else {
            steps.push(Step::Remove(r.id));
            continue;
        };
        let parent_changed = r.status_of.is_some_and(|x| changed_parents.contains(&x));
        if !forced && !parent_changed && unchanged(r, p) {
            steps.push(Step::Keep(r.id));
        } else if r.listen_address != p.listen_address {
            // Compared with the socket the pool holds, not with its current
            // generation: a pool removed by an earlier reload and still
            // draining comes back on the same socket.
            steps.push(Step::Move(r.id, p.clone()));
        } else {
            steps.push(Step::Regenerate(r.id, p.clone()));
        }
    }
    for (p, parent) in new {
        if wanted(&p.name) && !running.iter().any(|r| r.name == p.name) {
            steps.push(Step::Add(p.clone(), parent.clone()));
        }
    }
    steps
}

impl Master {
    /// Re-read the configuration and change only what changed. `only`
    /// limits the reload to the named pools. Returns a summary for the
    /// operator, or the reason nothing changed.
    pub(crate) fn reload(&mut self, only: Option<&[String]>) -> Result<String, ReloadError> {
        self.reload_with(only, false)
    }

    /// `force` restarts every pool even if unchanged (emergency restart).
    pub(crate) fn reload_with(
        &mut self,
        only: Option<&[String]>,
        force: bool,
    ) -> Result<String, ReloadError> {
        self.log.notice("Reloading in progress ...");
        self.notify.send("RELOADING=1");
        self.history.reload_started();
        let result = self.reload_inner(only, force);
        match &result {
            Err(e) => {
                self.log.error(&e.to_string());
                // Nothing changed: what runs is as ready as before.
                self.notify.send("READY=1");
            }
            // php-fpm's start notices follow a reload it re-executed for;
            // "ready to handle connections" (and READY=1) once the new
            // generations are up, as at start (`after_events`).
            Ok(_) => {
                self.log
                    .notice(&format!("fpm is running, pid {}", std::process::id()));
                self.ready_logged = false;
            }
        }
        match &result {
            Ok(summary) => self.history.reload_done(true, summary),
            Err(e) => self.history.reload_done(false, &e.to_string()),
        }
        self.sync_metrics_server();
        result
    }

    /// php-fpm's lines between "Reloading in progress ..." and its start
    /// notices, which operators and tools (PHP's own FPM tests) wait for:
    /// `reloading: <how>` and, for each listening socket carried into the
    /// new configuration, `using inherited socket fd=N, "<address>"`.
    /// php-fpm re-executes itself and inherits its sockets through the
    /// environment; corral reloads in place, so the first line says that
    /// (same pid, the command line it was started with) instead of an
    /// execvp, and the sockets are the ones this master holds, each under
    /// its own descriptor.
    fn log_reloading(&mut self, wanted: &dyn Fn(&str) -> bool) {
        let words: Vec<String> = std::env::args_os()
            .map(|a| format!("{:?}", a.to_string_lossy()))
            .collect();
        self.log.notice(&format!(
            "reloading: in place, pid {} ({})",
            std::process::id(),
            words.join(", ")
        ));
        let inherited: Vec<String> = self
            .pools
            .values()
            .filter(|s| s.current.is_some() && wanted(&s.name))
            .map(|s| {
                format!(
                    "using inherited socket fd={}, \"{}\"",
                    s.listen.as_raw_fd(),
                    s.listen_address
                )
            })
            .collect();
        for line in &inherited {
            self.log.notice(line);
        }
    }

    fn reload_inner(
        &mut self,
        only: Option<&[String]>,
        force: bool,
    ) -> Result<String, ReloadError> {
        let new = self.load_new_config()?;
        self.check_names(only, &new)?;
        let wanted = |name: &str| wanted(only, name);
        self.log_reloading(&wanted);
        let fingerprint = crate::php_ini::fingerprint(&self.opts.php_args);
        let forces = Forces {
            all: force,
            ini: fingerprint != self.ini_fingerprint,
        };
        if forces.ini {
            self.log
                .notice("php.ini changed: every reloaded pool restarts");
        }
        let expanded = expand(&new.pools);
        let steps = plan(&self.running(), &expanded, &wanted, forces);
        let verb = if force { "restarted" } else { "reloaded" };
        let summary: Vec<String> = steps.into_iter().map(|s| self.apply(s, verb)).collect();
        self.adopt(new, only.is_some(), fingerprint);
        // A changed php.ini or libphp: the zygote preloaded the old ones.
        if forces.ini {
            self.os.use_zygote(None);
        }
        self.configure_zygote();
        for line in &summary {
            self.log.notice(line);
        }
        Ok(summary.join("\n"))
    }

    /// `corral restart POOL...`: a new generation of each named pool (and
    /// its status pool) on the configuration it runs now, changed or not:
    /// to start over with an empty OPcache after a deploy, say. No file is
    /// read. The hand-over is a reload's: the new workers come up beside
    /// the old ones, which finish their requests; the socket stays open.
    pub(crate) fn restart(&mut self, pools: &[String]) -> Result<String, ReloadError> {
        for n in pools {
            if !self
                .pools
                .values()
                .any(|s| &s.name == n && s.current.is_some())
            {
                return Err(ReloadError::NotRunning(n.clone()));
            }
        }
        self.log.notice(&format!(
            "Restarting [pool {}] ...",
            pools.join("], [pool ")
        ));
        self.notify.send("RELOADING=1");
        let current: Vec<(Pool, Option<String>)> = self
            .pools
            .values()
            .filter_map(|s| Some((s.current.as_ref()?.cfg.clone(), s.status_of.clone())))
            .collect();
        let running: Vec<Running<'_>> = self
            .running()
            .into_iter()
            .filter(|r| r.cfg.is_some())
            .collect();
        let forces = Forces {
            all: true,
            ini: false,
        };
        let steps = plan(&running, &current, &|n| wanted(Some(pools), n), forces);
        let summary: Vec<String> = steps
            .into_iter()
            .map(|s| self.apply(s, "restarted"))
            .collect();
        for line in &summary {
            self.log.notice(line);
        }
        self.notify.send("READY=1");
        Ok(summary.join("\n"))
    }

    /// What runs now, as [`plan`] sees it.
    fn running(&self) -> Vec<Running<'_>> {
        self.pools
            .values()
            .map(|s| Running {
                id: s.id,
                name: &s.name,
                listen_address: &s.listen_address,
                status_of: s.status_of.as_deref(),
                cfg: s.current.as_ref().map(|g| &g.cfg),
            })
            .collect()
    }

    /// The new configuration, loaded and validated in full.
    fn load_new_config(&mut self) -> Result<Config, ReloadError> {
        let load = corral_config::LoadOptions {
            prefix: self.opts.prefix.clone(),
            pid_override: self.opts.pid_file.clone(),
            allow_run_as_root: self.opts.allow_root,
            ..Default::default()
        };
        let new = corral_config::load(&self.opts.config_path, &load).map_err(|errors| {
            // Each at its own level: an include that matches nothing is a
            // WARNING in php-fpm, even when something else fails.
            for d in &errors.0 {
                self.log.log(d.level.into(), &d.message);
            }
            ReloadError::Invalid {
                path: self.opts.config_path.clone(),
                details: errors.0.iter().map(|d| d.message.clone()).collect(),
            }
        })?;
        crate::users::check(&new, self.opts.allow_root).map_err(ReloadError::Users)?;
        for d in &new.warnings {
            self.log.log(d.level.into(), &d.message);
        }
        for d in &new.exposures {
            self.log.notice(&d.message);
        }
        Ok(new)
    }

    /// Every pool named on `corral reload NAME...` exists, old or new.
    fn check_names(&self, only: Option<&[String]>, new: &Config) -> Result<(), ReloadError> {
        for n in only.unwrap_or_default() {
            let known =
                new.pools.iter().any(|p| &p.name == n) || self.pools.values().any(|p| &p.name == n);
            if !known {
                return Err(ReloadError::UnknownPool(n.clone()));
            }
        }
        Ok(())
    }

    /// Apply one step; its line of the summary (`verb` says what a new
    /// generation on the same socket is called: reloaded, restarted).
    fn apply(&mut self, step: Step, verb: &str) -> String {
        match step {
            Step::Keep(id) => format!("[pool {}] unchanged", self.pools[&id].name),
            Step::Remove(id) => self.remove_pool(id),
            Step::Regenerate(id, p) => self.regenerate(id, p, verb),
            Step::Move(id, p) => self.move_pool(id, p),
            Step::Add(p, parent) => self.add_pool(p, parent),
        }
    }

    fn remove_pool(&mut self, id: PoolId) -> String {
        let grace = self.drain_grace();
        let sup = self
            .pools
            .get_mut(&id)
            .expect("planned from the running pools");
        if let Some(mut g) = sup.current.take() {
            g.retire(grace);
            sup.retiring.push(g);
        }
        format!("[pool {}] removed", sup.name)
    }

    /// A new generation on the same socket; the old one is told to quit
    /// once the new one is up (`retire_replaced`).
    fn regenerate(&mut self, id: PoolId, p: Pool, verb: &str) -> String {
        let name = p.name.clone();
        match Generation::new(self.ids.generation(), p) {
            Ok(g) => {
                let sup = self
                    .pools
                    .get_mut(&id)
                    .expect("planned from the running pools");
                if let Some(old) = sup.current.replace(g) {
                    sup.retiring.push(old);
                }
                self.start_or_sleep(id);
                self.history.pool_reloaded(&name);
                format!("[pool {name}] {verb}")
            }
            Err(e) => {
                self.log.error(&e.to_string());
                format!("[pool {name}] kept: {e}")
            }
        }
    }

    /// A new address is a new socket: the pool moves to it, and the old
    /// socket stays until its workers drain.
    fn move_pool(&mut self, id: PoolId, p: Pool) -> String {
        let name = p.name.clone();
        let grace = self.drain_grace();
        match self.open_pool(&p) {
            Ok(mut sup) => {
                let Some(mut old) = self.pools.remove(&id) else {
                    return format!("[pool {name}] kept");
                };
                sup.status_of = old.status_of.clone();
                if let Some(mut g) = old.current.take() {
                    g.retire(grace);
                    old.retiring.push(g);
                }
                old.name = format!("{name} (previous address)");
                if !old.is_empty() {
                    self.pools.insert(old.id, old);
                }
                let new_id = sup.id;
                self.pools.insert(new_id, sup);
                self.start_or_sleep(new_id);
                self.history.pool_reloaded(&name);
                format!("[pool {name}] moved to {}", p.listen_address)
            }
            Err(e) => {
                self.log
                    .error(&format!("failed to reload [pool {name}]: {e}"));
                format!("[pool {name}] kept: {e}")
            }
        }
    }

    /// A pool's socket was shut down by a process that holds it (any of its
    /// workers can): open it again and move the pool onto it. The workers
    /// on the dead socket can serve nobody; as with any move, they are told
    /// to quit at once.
    pub(crate) fn renew_dead_listeners(&mut self) {
        let dead: Vec<PoolId> = self
            .pools
            .iter()
            .filter(|(_, s)| s.current.is_some() && !self.os.listener_alive(s.listen.as_raw_fd()))
            .map(|(&id, _)| id)
            .collect();
        for id in dead {
            let Some(cfg) = self.pools[&id].current.as_ref().map(|g| g.cfg.clone()) else {
                continue;
            };
            self.log.warning(&format!(
                "[pool {}] the listening socket {} was shut down by a process holding it; opening it again",
                cfg.name, cfg.listen_address
            ));
            let line = self.move_pool(id, cfg);
            self.log.notice(&line);
        }
    }

    fn add_pool(&mut self, p: Pool, parent: Option<String>) -> String {
        match self.open_pool(&p) {
            Ok(mut sup) => {
                sup.status_of = parent;
                let id = sup.id;
                self.pools.insert(id, sup);
                self.start_or_sleep(id);
                self.history.pool_reloaded(&p.name);
                format!("[pool {}] added", p.name)
            }
            Err(e) => {
                self.log
                    .error(&format!("failed to reload [pool {}]: {e}", p.name));
                format!("[pool {}] not added: {e}", p.name)
            }
        }
    }

    /// The master's view of the configuration: new for what was reloaded,
    /// old for pools left alone by a partial reload.
    fn adopt(&mut self, new: Config, partial: bool, fingerprint: u64) {
        let mut merged = new;
        if partial {
            merged.pools = self
                .pools
                .values()
                .filter_map(|s| s.current.as_ref().map(|g| g.cfg.clone()))
                .collect();
        } else {
            self.ini_fingerprint = fingerprint;
        }
        self.log.level = merged.global.log_level;
        self.log.limit = merged.global.log_limit;
        self.config = merged;
    }
}

/// Whether a reload or restart limited to `only` takes the pool `name` (a
/// status pool goes with its parent).
fn wanted(only: Option<&[String]>, name: &str) -> bool {
    only.is_none_or(|list| {
        list.iter()
            .any(|n| n == name || name.strip_suffix("_status").is_some_and(|p| p == n))
    })
}

/// Same configuration, ignoring where in the file it was written.
fn same_pool(a: &Pool, b: &Pool) -> bool {
    let mut b = b.clone();
    b.source = a.source.clone();
    *a == b
}
