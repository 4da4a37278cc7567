//! When a pool's cgroup and its generations' leaves are made, killed and
//! removed (the kernel side is behind `Os`, so this is unit-tested with
//! the recording fake):
//!
//! - a generation that starts (master start, reload, added pool) writes
//!   its pool's limits into `<subtree>/<pool>`, logged once at NOTICE;
//! - each prototype start creates the generation's leaf `g<N>` first, and
//!   the prototype enters it between fork and exec;
//! - a prototype gone (crashed, retired, idle, master stopping) means its
//!   leaf is killed: whatever tenant code started, however detached, goes
//!   with it;
//! - a generation dropped removes its leaf, and the last one of a pool
//!   the pool's cgroup.
//!
//! A pool without `corral.*` limits has no cgroup, and a pool whose cgroup
//! cannot be made runs without one (with a WARNING): limits never stop a
//! pool from serving.

use std::path::PathBuf;

use corral_config::Pool;
use corral_isolation::Limits;

use crate::ids::{GenId, PoolId};
use crate::master::Master;

/// A pool's `corral.*` limits in the isolation crate's terms.
pub(crate) fn limits_of(pool: &Pool) -> Limits {
    let i = &pool.isolation;
    Limits {
        memory_max: i.memory_max,
        swap_max: i.swap_max,
        cpu_weight: i.cpu_weight,
        cpu_max_percent: i.cpu_max_percent,
        pids_max: i.pids_max,
        io_weight: i.io_weight,
    }
}

impl Master {
    /// A new generation of pool `id` starts: write its limits into the
    /// pool's cgroup (updating them on a reload).
    pub(crate) fn cgroup_for_generation(&mut self, id: PoolId) {
        let Some(gen) = self.pools.get(&id).and_then(|p| p.current.as_ref()) else {
            return;
        };
        if gen.cgroup || !gen.cfg.isolation.wants_cgroup() {
            return;
        }
        let name = gen.cfg.name.clone();
        let limits = limits_of(&gen.cfg);
        let previous = self.cgroups.get(&name).cloned().unwrap_or_default();
        let result = self.os.cgroup_pool(&name, &limits, &previous);
        for note in self.os.cgroup_notes() {
            self.log.notice(&note);
        }
        match result {
            Ok(applied) => {
                self.log.notice(&format!("[pool {name}] {applied}"));
                self.cgroups.insert(name, limits);
                if let Some(g) = self.pools.get_mut(&id).and_then(|p| p.current.as_mut()) {
                    g.cgroup = true;
                }
            }
            Err(e) => self.log.warning(&format!(
                "[pool {name}] runs without a cgroup, its corral.* limits are not applied: {e}"
            )),
        }
    }

    /// The leaf a prototype of the current generation is about to enter.
    /// Empty when the pool has no cgroup, or the leaf cannot be made (the
    /// pool then runs without, as it would on a host with no cgroups).
    pub(crate) fn leaf_for_prototype(&mut self, id: PoolId) -> Vec<PathBuf> {
        let Some(gen) = self.pools.get(&id).and_then(|p| p.current.as_ref()) else {
            return Vec::new();
        };
        if !gen.cgroup {
            return Vec::new();
        }
        let (name, number) = (gen.cfg.name.clone(), gen.id.number());
        match self.os.cgroup_leaf(&name, number) {
            Ok(files) => files,
            Err(e) => {
                self.log.warning(&format!(
                    "[pool {name}] prototype starts outside its cgroup: {e}"
                ));
                Vec::new()
            }
        }
    }

    /// A generation's prototype is gone: so is everything in its leaf.
    pub(crate) fn kill_leaf(&mut self, p: PoolId, g: GenId) {
        let Some(gen) = self.pools.get(&p).and_then(|s| s.gen(g)) else {
            return;
        };
        if !gen.cgroup {
            return;
        }
        let name = gen.cfg.name.clone();
        match self.os.cgroup_kill(&name, g.number()) {
            Ok(k) if k.processes > 0 => self.log.debug(&format!(
                "[pool {name}] cgroup g{}: {} processes killed in {:.1} ms",
                g.number(),
                k.processes,
                k.took.as_secs_f64() * 1000.0
            )),
            Ok(_) => {}
            Err(e) => self.log.warning(&format!("[pool {name}] {e}")),
        }
    }

    /// A generation was dropped: its leaf goes, and with the pool's last
    /// leaf the pool's cgroup.
    pub(crate) fn remove_leaf(&mut self, name: &str, g: GenId) {
        if let Err(e) = self.os.cgroup_remove_leaf(name, g.number()) {
            self.log.warning(&format!("[pool {name}] {e}"));
        }
        let still_used = self
            .pools
            .values()
            .flat_map(|p| p.gens())
            .any(|x| x.cgroup && x.cfg.name == name);
        if !still_used && self.cgroups.remove(name).is_some() {
            self.os.cgroup_remove_pool(name);
        }
    }

    /// The master is stopping: every leaf is killed and removed, then every
    /// pool's cgroup and the subtree.
    pub(crate) fn remove_cgroups(&mut self) {
        let leaves: Vec<(String, GenId)> = self
            .pools
            .values()
            .flat_map(|p| p.gens())
            .filter(|g| g.cgroup)
            .map(|g| (g.cfg.name.clone(), g.id))
            .collect();
        for (name, g) in leaves {
            if let Err(e) = self.os.cgroup_remove_leaf(&name, g.number()) {
                self.log.warning(&format!("[pool {name}] {e}"));
            }
        }
        for name in std::mem::take(&mut self.cgroups).into_keys() {
            self.os.cgroup_remove_pool(&name);
        }
        self.os.cgroup_close();
    }
}
