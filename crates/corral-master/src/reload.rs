//! Reload: re-read the configuration, validate it whole, and change only
//! what changed, pool by pool, generation beside generation.

use corral_config::Pool;

use crate::master::{expand, open_pool, Master};
use crate::pool::Generation;

impl Master {
    /// Re-read the configuration and change only what changed. `only`
    /// limits the reload to the named pools. Returns a summary for the
    /// operator, or the reason nothing changed.
    pub(crate) fn reload(&mut self, only: Option<&[String]>) -> Result<String, String> {
        self.reload_with(only, false)
    }

    /// `force` restarts every pool even if unchanged (emergency restart).
    pub(crate) fn reload_with(
        &mut self,
        only: Option<&[String]>,
        force: bool,
    ) -> Result<String, String> {
        self.log.notice("Reloading in progress ...");
        self.notify.send("RELOADING=1");
        let result = self.reload_inner(only, force);
        self.notify.send("READY=1");
        result
    }

    pub(crate) fn reload_inner(
        &mut self,
        only: Option<&[String]>,
        force: bool,
    ) -> Result<String, String> {
        let load = corral_config::LoadOptions {
            prefix: self.opts.prefix.clone(),
            pid_override: self.opts.pid_file.clone(),
            allow_run_as_root: self.opts.allow_root,
            ..Default::default()
        };
        let new = match corral_config::load(&self.opts.config_path, &load) {
            Ok(c) => c,
            Err(errors) => {
                for d in &errors.0 {
                    self.log.error(&d.message);
                }
                let msg = format!(
                    "failed to reload: the configuration in '{}' is not valid; still running the previous one",
                    self.opts.config_path.display()
                );
                self.log.error(&msg);
                let detail: Vec<String> = errors.0.iter().map(|d| d.message.clone()).collect();
                return Err(format!("{msg}\n{}", detail.join("\n")));
            }
        };
        if let Err(e) = crate::users::check(&new, self.opts.allow_root) {
            let msg = format!("failed to reload: {e}; still running the previous configuration");
            self.log.error(&msg);
            return Err(msg);
        }
        if let Some(names) = only {
            for n in names {
                let known = new.pools.iter().any(|p| &p.name == n)
                    || self.pools.iter().any(|p| &p.name == n);
                if !known {
                    return Err(format!("no pool named '{n}'"));
                }
            }
        }
        // A status pool goes with its parent: `corral reload www` covers
        // www_status too.
        let wanted = |name: &str| {
            only.is_none_or(|list| {
                list.iter()
                    .any(|n| n == name || name.strip_suffix("_status").is_some_and(|p| p == n))
            })
        };
        let fingerprint = crate::php_ini::fingerprint(&self.opts.php_args);
        let ini_changed = fingerprint != self.ini_fingerprint;
        if ini_changed {
            self.log
                .notice("php.ini changed: every reloaded pool restarts");
        }
        let mut summary = Vec::new();

        // Changed and removed pools. Status pools follow their parent: a
        // parent with a new generation (new scoreboard) restarts its
        // status pool too.
        let expanded = expand(&new.pools);
        let changed_parents: Vec<String> = expanded
            .iter()
            .filter(|(p, parent)| {
                parent.is_none()
                    && wanted(&p.name)
                    && (force
                        || ini_changed
                        || !self.pools.iter().any(|s| {
                            s.name == p.name
                                && s.current.as_ref().is_some_and(|g| same_pool(&g.cfg, p))
                        }))
            })
            .map(|(p, _)| p.name.clone())
            .collect();
        let grace = self.drain_grace();
        // Parents first, so a status pool restarts onto its parent's new
        // scoreboard.
        let order: Vec<usize> = (0..self.pools.len())
            .rev()
            .filter(|&i| self.pools[i].status_of.is_none())
            .chain(
                (0..self.pools.len())
                    .rev()
                    .filter(|&i| self.pools[i].status_of.is_some()),
            )
            .collect();
        for i in order {
            let name = self.pools[i].name.clone();
            if !wanted(&name) {
                continue;
            }
            match expanded
                .iter()
                .find(|(p, _)| p.name == name)
                .map(|(p, _)| p)
            {
                None => {
                    if let Some(mut g) = self.pools[i].current.take() {
                        g.retire(grace);
                        self.pools[i].retiring.push(g);
                    }
                    summary.push(format!("[pool {name}] removed"));
                }
                Some(p) => {
                    let parent_changed = self.pools[i]
                        .status_of
                        .as_ref()
                        .is_some_and(|parent| changed_parents.contains(parent));
                    let same = !force
                        && !ini_changed
                        && !parent_changed
                        && self.pools[i]
                            .current
                            .as_ref()
                            .is_some_and(|g| same_pool(&g.cfg, p));
                    if same {
                        summary.push(format!("[pool {name}] unchanged"));
                        continue;
                    }
                    // Compared with the socket the pool holds, not with its
                    // current generation: a pool removed by an earlier reload
                    // and still draining comes back on the same socket.
                    let listen_changed = self.pools[i].listen_address != p.listen_address;
                    if listen_changed {
                        // A new address is a new socket: the pool moves to
                        // it and the old socket stays until its workers drain.
                        match open_pool(p, &mut self.log) {
                            Ok(sup) => {
                                let mut old = std::mem::replace(&mut self.pools[i], sup);
                                if let Some(mut g) = old.current.take() {
                                    g.retire(grace);
                                    old.retiring.push(g);
                                }
                                old.name = format!("{name} (previous address)");
                                if !old.is_empty() {
                                    self.pools.push(old);
                                }
                                self.start_or_sleep(i);
                                summary
                                    .push(format!("[pool {name}] moved to {}", p.listen_address));
                            }
                            Err(e) => {
                                self.log
                                    .error(&format!("failed to reload [pool {name}]: {e}"));
                                summary.push(format!("[pool {name}] kept: {e}"));
                            }
                        }
                        continue;
                    }
                    match Generation::new(p.clone()) {
                        Ok(g) => {
                            if let Some(old) = self.pools[i].current.replace(g) {
                                // Quit is sent once the new generation is up.
                                self.pools[i].retiring.push(old);
                            }
                            self.start_or_sleep(i);
                            summary.push(format!("[pool {name}] reloaded"));
                        }
                        Err(e) => {
                            self.log.error(&format!("[pool {name}] {e}"));
                            summary.push(format!("[pool {name}] kept: {e}"));
                        }
                    }
                }
            }
        }
        // Added pools.
        for (p, parent) in &expanded {
            if !wanted(&p.name) || self.pools.iter().any(|s| s.name == p.name) {
                continue;
            }
            match open_pool(p, &mut self.log) {
                Ok(mut sup) => {
                    sup.status_of = parent.clone();
                    self.pools.push(sup);
                    let i = self.pools.len() - 1;
                    self.start_or_sleep(i);
                    summary.push(format!("[pool {}] added", p.name));
                }
                Err(e) => {
                    self.log
                        .error(&format!("failed to reload [pool {}]: {e}", p.name));
                    summary.push(format!("[pool {}] not added: {e}", p.name));
                }
            }
        }
        // The master's view of the configuration: new for what was
        // reloaded, old for pools left alone by a partial reload.
        let mut merged = new.clone();
        if only.is_some() {
            merged.pools = self
                .pools
                .iter()
                .filter_map(|s| s.current.as_ref().map(|g| g.cfg.clone()))
                .collect();
        }
        if only.is_none() {
            self.ini_fingerprint = fingerprint;
        }
        self.log.level = merged.global.log_level;
        self.log.limit = merged.global.log_limit;
        self.config = merged;
        let text = summary.join("\n");
        for line in &summary {
            self.log.notice(line);
        }
        Ok(text)
    }
}

/// Same configuration, ignoring where in the file it was written.
fn same_pool(a: &Pool, b: &Pool) -> bool {
    let mut b = b.clone();
    b.source = a.source.clone();
    *a == b
}
