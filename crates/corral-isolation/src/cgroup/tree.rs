//! corral's subtree: `<subtree>/<pool>/g<N>`, and what happens to it over
//! a master's life. Directories that cannot go yet (a killed process not
//! yet exited) are kept in a list and retried by [`Tree::sweep`].

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::v1::V1;
use super::v2::V2;
use super::{check_name, Applied, Backend, CgroupError, Hierarchy, Killed, Usage, Version};
use crate::{Limits, Report};

/// How long a kill waits for its leaf to empty before leaving the rest to
/// [`Tree::sweep`]: SIGKILLed processes are normally gone within a few
/// milliseconds, and the single-threaded master waits meanwhile.
const KILL_WAIT: Duration = Duration::from_millis(200);

pub struct Tree {
    backend: Box<dyn Backend>,
    subtree: PathBuf,
    /// Leaves and pools to remove once empty, in the order to remove them
    /// (a pool after its leaves).
    pending: Vec<PathBuf>,
    /// v1: OOM kills counted in leaves already removed, per pool.
    carried_oom: HashMap<String, u64>,
}

impl Tree {
    /// Set up `subtree` (e.g. `corral`) in `hierarchy`, and empty what a
    /// previous master left in it: its generation numbers start again, and
    /// a process that escaped its pool (double-forked, setsid) while that
    /// master died must not share a leaf with a new pool.
    pub fn open(hierarchy: Hierarchy, subtree: &str) -> Result<(Tree, Report), CgroupError> {
        let subtree = PathBuf::from(check_name(subtree)?);
        let backend: Box<dyn Backend> = match hierarchy {
            Hierarchy::V2(root) => Box::new(V2::new(root)),
            Hierarchy::V1(roots) => Box::new(V1::new(roots)),
        };
        let mut report = Report::default();
        backend.prepare(&subtree, &mut report)?;
        let mut tree = Tree {
            backend,
            subtree,
            pending: Vec::new(),
            carried_oom: HashMap::new(),
        };
        let stale = tree.empty_stale();
        if stale > 0 {
            report.applied(format!(
                "{stale} processes left by a previous master killed"
            ));
        }
        Ok((tree, report))
    }

    pub fn version(&self) -> Version {
        self.backend.version()
    }

    /// Kill and remove every leaf and pool under the subtree.
    fn empty_stale(&mut self) -> usize {
        let mut killed = 0;
        for pool in self.backend.children(&self.subtree) {
            let pool_rel = self.subtree.join(&pool);
            for leaf in self.backend.children(&pool_rel) {
                let rel = pool_rel.join(&leaf);
                killed += self.backend.kill(&rel, KILL_WAIT).processes;
                self.pending.push(rel);
            }
            self.pending.push(pool_rel);
        }
        self.sweep();
        killed
    }

    fn pool_rel(&self, pool: &str) -> Result<PathBuf, CgroupError> {
        Ok(self.subtree.join(check_name(pool)?))
    }

    fn leaf_rel(&self, pool: &str, gen: u64) -> Result<PathBuf, CgroupError> {
        Ok(self.pool_rel(pool)?.join(format!("g{gen}")))
    }

    /// Create or update a pool's cgroup with `limits`; what `previous`
    /// set and `limits` does not goes back to the kernel's default.
    pub fn pool(
        &mut self,
        pool: &str,
        limits: &Limits,
        previous: &Limits,
    ) -> Result<Applied, CgroupError> {
        let rel = self.pool_rel(pool)?;
        // A pool removed and added back before its cgroup went.
        self.pending.retain(|p| p != &rel);
        self.backend.create(&rel)?;
        let mut report = Report::default();
        self.backend.apply(&rel, limits, previous, &mut report);
        Ok(Applied {
            version: self.version(),
            report,
        })
    }

    /// A generation's leaf, created now. Its prototype writes "0" into
    /// each returned `cgroup.procs` between fork and exec.
    pub fn leaf(&mut self, pool: &str, gen: u64) -> Result<Vec<PathBuf>, CgroupError> {
        let rel = self.leaf_rel(pool, gen)?;
        self.pending.retain(|p| p != &rel);
        self.backend.create(&self.pool_rel(pool)?)?;
        self.backend.create(&rel)?;
        Ok(self.backend.procs_files(&rel))
    }

    /// The directories of a generation's leaf (what /proc/PID/cgroup names).
    pub fn leaf_dirs(&self, pool: &str, gen: u64) -> Result<Vec<PathBuf>, CgroupError> {
        let rel = self.leaf_rel(pool, gen)?;
        Ok(self
            .backend
            .procs_files(&rel)
            .into_iter()
            .filter_map(|f| f.parent().map(Path::to_path_buf))
            .collect())
    }

    /// SIGKILL everything in a generation's leaf: its prototype's workers
    /// and whatever they started, however detached.
    pub fn kill(&mut self, pool: &str, gen: u64) -> Result<Killed, CgroupError> {
        let rel = self.leaf_rel(pool, gen)?;
        Ok(self.backend.kill(&rel, KILL_WAIT))
    }

    /// Kill a generation's leaf and remove it (now, or once it is empty).
    pub fn remove_leaf(&mut self, pool: &str, gen: u64) -> Result<Killed, CgroupError> {
        let killed = self.kill(pool, gen)?;
        let rel = self.leaf_rel(pool, gen)?;
        *self.carried_oom.entry(pool.to_string()).or_default() += self.backend.leaf_oom_kills(&rel);
        if !self.backend.remove(&rel) && !self.pending.contains(&rel) {
            self.pending.push(rel);
        }
        Ok(killed)
    }

    /// Remove a pool's cgroup once its leaves are gone.
    pub fn remove_pool(&mut self, pool: &str) -> Result<(), CgroupError> {
        let rel = self.pool_rel(pool)?;
        self.carried_oom.remove(pool);
        if !self.backend.remove(&rel) && !self.pending.contains(&rel) {
            self.pending.push(rel);
        }
        Ok(())
    }

    /// A pool's usage, both generations of a reload together.
    pub fn usage(&self, pool: &str) -> Option<Usage> {
        let rel = self.pool_rel(pool).ok()?;
        let mut u = self.backend.usage(&rel);
        if let (Some(n), Some(carried)) = (u.oom_kills.as_mut(), self.carried_oom.get(pool)) {
            *n += carried;
        }
        Some(u)
    }

    /// The processes in a generation's leaf.
    pub fn pids(&self, pool: &str, gen: u64) -> Vec<i32> {
        self.leaf_rel(pool, gen)
            .map(|rel| self.backend.pids(&rel))
            .unwrap_or_default()
    }

    /// Retry what could not be removed: a leaf that still lists a process
    /// is killed again first.
    pub fn sweep(&mut self) {
        let pending = std::mem::take(&mut self.pending);
        for rel in pending {
            let is_leaf = rel.components().count() == self.subtree.components().count() + 2;
            if is_leaf && !self.backend.pids(&rel).is_empty() {
                self.backend.kill(&rel, Duration::ZERO);
            }
            if !self.backend.remove(&rel) {
                self.pending.push(rel);
            }
        }
    }

    /// Directories still waiting to be removed.
    pub fn pending(&self) -> &[PathBuf] {
        &self.pending
    }

    /// The master is stopping: sweep until everything is gone or `within`
    /// has passed, then remove the subtree itself.
    pub fn close(&mut self, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        loop {
            self.sweep();
            if self.pending.is_empty() || Instant::now() >= deadline {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        self.backend.remove(&self.subtree) && self.pending.is_empty()
    }
}
