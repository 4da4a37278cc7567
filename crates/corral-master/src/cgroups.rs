//! The real kernel's cgroups for [`crate::os::RealOs`]: corral's subtree,
//! found and set up on first use only, so that a configuration without
//! `corral.*` limits never touches cgroupfs (php-fpm's behaviour).

use corral_isolation::cgroup::{CgroupError, Hierarchy, Tree, Usage};

/// The default subtree under the master's own cgroup.
pub const DEFAULT_SUBTREE: &str = "corral";

#[derive(Default)]
pub(crate) struct Cgroups {
    subtree: String,
    state: State,
    /// What opening the subtree did, for the log.
    notes: Vec<String>,
}

#[derive(Default)]
enum State {
    #[default]
    Unopened,
    Open(Tree),
    /// Detection or set-up failed; why, said again for each pool (the
    /// host will not grow a cgroup hierarchy while corral runs).
    Failed(String),
}

impl Cgroups {
    pub(crate) fn new(subtree: &str) -> Cgroups {
        Cgroups {
            subtree: subtree.to_string(),
            ..Default::default()
        }
    }

    /// The tree, opened now if this is the first pool that needs it.
    pub(crate) fn tree(&mut self) -> Result<&mut Tree, CgroupError> {
        if let State::Unopened = self.state {
            self.state = match self.open() {
                Ok(t) => State::Open(t),
                Err(e) => State::Failed(e.to_string()),
            };
        }
        match &mut self.state {
            State::Open(t) => Ok(t),
            State::Failed(why) => Err(CgroupError::Unavailable(why.clone())),
            // Not reached: opened above. Said as an error, not a panic.
            State::Unopened => Err(CgroupError::Unavailable("cgroups not set up".into())),
        }
    }

    fn open(&mut self) -> Result<Tree, CgroupError> {
        let subtree = if self.subtree.is_empty() {
            DEFAULT_SUBTREE
        } else {
            &self.subtree
        };
        let (tree, report) = Tree::open(Hierarchy::detect()?, subtree)?;
        let v = tree.version();
        self.notes.extend(
            report
                .applied
                .into_iter()
                .map(|a| format!("cgroup {v}: {a}")),
        );
        self.notes.extend(
            report
                .lacking
                .into_iter()
                .map(|l| format!("cgroup {v}: lacking {l}")),
        );
        Ok(tree)
    }

    /// The tree if some pool already opened it.
    pub(crate) fn opened(&mut self) -> Option<&mut Tree> {
        match &mut self.state {
            State::Open(t) => Some(t),
            _ => None,
        }
    }

    pub(crate) fn usage(&self, pool: &str) -> Option<Usage> {
        match &self.state {
            State::Open(t) => t.usage(pool),
            _ => None,
        }
    }

    pub(crate) fn take_notes(&mut self) -> Vec<String> {
        std::mem::take(&mut self.notes)
    }
}
