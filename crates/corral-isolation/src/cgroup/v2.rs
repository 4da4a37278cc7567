//! cgroup v2: one tree. Controllers reach a cgroup only when every
//! ancestor lists them in `cgroup.subtree_control`, and a cgroup that does
//! that may hold no process itself (the "no internal processes" rule; the
//! hierarchy's root is exempt). Under systemd with `Delegate=yes` the
//! master starts in its service's cgroup, so before anything is enabled
//! there it moves itself into a leaf of its own, `<service>/master`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::detect::V2Root;
use super::{cpu_quota, files, kill, Backend, CgroupError, Killed, Usage, Version, CPU_PERIOD_US};
use crate::{Limits, Report};

/// The master's own leaf beside the pools, under a delegated cgroup.
pub const MASTER_LEAF: &str = "master";

pub(crate) struct V2 {
    root: V2Root,
}

impl V2 {
    pub(crate) fn new(root: V2Root) -> V2 {
        V2 { root }
    }

    fn dir(&self, rel: &Path) -> PathBuf {
        self.root.own.join(rel)
    }

    /// The controllers our cgroup can hand down.
    fn available(&self) -> Vec<String> {
        files::read(&self.root.own, "cgroup.controllers")
            .map(|t| t.split_whitespace().map(str::to_string).collect())
            .unwrap_or_default()
    }

    /// Enable `wanted` in every cgroup from ours down to `rel`'s parent.
    /// Returns the controllers refused, with why.
    fn enable(&self, rel: &Path, wanted: &mut Vec<&'static str>) -> Vec<(&'static str, String)> {
        let mut refused = Vec::new();
        let mut dir = self.root.own.clone();
        for part in rel.parent().into_iter().flat_map(|p| p.components()) {
            enable_in(&dir, wanted, &mut refused);
            dir.push(part);
        }
        enable_in(&dir, wanted, &mut refused);
        refused
    }

    /// Leave a cgroup the master shares with nobody, so controllers can be
    /// enabled in it.
    fn move_master_out(&self, r: &mut Report) -> Result<(), CgroupError> {
        let me = std::process::id() as i32;
        let procs = files::procs(&self.root.own);
        if self.root.is_root || !procs.contains(&me) {
            return Ok(());
        }
        if procs.iter().any(|&p| p != me) {
            r.lacking(format!(
                "controllers for the pools ({} holds other processes besides the master; run corral with Delegate=yes)",
                self.root.own.display()
            ));
            return Ok(());
        }
        let leaf = self.dir(Path::new(MASTER_LEAF));
        files::make_dir(&leaf)?;
        files::write(&leaf, "cgroup.procs", &me.to_string())?;
        r.applied(format!("master moved into {}", leaf.display()));
        Ok(())
    }

    fn apply_memory(&self, dir: &Path, limits: &Limits, previous: &Limits, r: &mut Report) {
        match (limits.memory_max, previous.memory_max) {
            (Some(m), _) => write_knob(dir, "memory.max", m.to_string(), "memory limit", r),
            (None, Some(_)) => reset(dir, "memory.max", "max"),
            _ => {}
        }
        let has_swap = files::exists(dir, "memory.swap.max");
        match (limits.swap_max, previous.swap_max) {
            (Some(_), _) if !has_swap => {
                r.lacking("swap limit (no memory.swap.max: swap accounting is off)")
            }
            (Some(s), _) => write_knob(dir, "memory.swap.max", s.to_string(), "swap limit", r),
            (None, Some(_)) if has_swap => reset(dir, "memory.swap.max", "max"),
            _ => {}
        }
    }

    fn apply_cpu(&self, dir: &Path, limits: &Limits, previous: &Limits, r: &mut Report) {
        match (limits.cpu_weight, previous.cpu_weight) {
            (Some(w), _) => write_knob(dir, "cpu.weight", w.to_string(), "cpu weight", r),
            (None, Some(_)) => reset(dir, "cpu.weight", "100"),
            _ => {}
        }
        match (limits.cpu_max_percent, previous.cpu_max_percent) {
            (Some(p), _) => write_knob(
                dir,
                "cpu.max",
                format!("{} {CPU_PERIOD_US}", cpu_quota(p)),
                "cpu cap",
                r,
            ),
            (None, Some(_)) => reset(dir, "cpu.max", &format!("max {CPU_PERIOD_US}")),
            _ => {}
        }
    }

    fn apply_io(&self, dir: &Path, limits: &Limits, previous: &Limits, r: &mut Report) {
        // io.weight comes with blk-iocost, io.bfq.weight (1..1000) with BFQ.
        let (file, value, default): (&str, fn(u32) -> String, &str) =
            if files::exists(dir, "io.weight") {
                ("io.weight", |w| format!("default {w}"), "default 100")
            } else if files::exists(dir, "io.bfq.weight") {
                ("io.bfq.weight", |w| w.clamp(1, 1000).to_string(), "100")
            } else {
                if limits.io_weight.is_some() {
                    r.lacking("io weight (no io.weight or io.bfq.weight)");
                }
                return;
            };
        match (limits.io_weight, previous.io_weight) {
            (Some(w), _) => write_knob(dir, file, value(w), "io weight", r),
            (None, Some(_)) => reset(dir, file, default),
            _ => {}
        }
    }
}

/// Enable what `ok` still lists in `dir`'s subtree_control: all at once,
/// else one by one, moving what the kernel refuses to `refused`.
fn enable_in(dir: &Path, ok: &mut Vec<&'static str>, refused: &mut Vec<(&'static str, String)>) {
    let on = files::read(dir, "cgroup.subtree_control").unwrap_or_default();
    let on: Vec<&str> = on
        .split_whitespace()
        .map(|c| c.trim_start_matches('+'))
        .collect();
    let missing: Vec<&'static str> = ok.iter().copied().filter(|c| !on.contains(c)).collect();
    if missing.is_empty() {
        return;
    }
    let all: Vec<String> = missing.iter().map(|c| format!("+{c}")).collect();
    if files::write(dir, "cgroup.subtree_control", &all.join(" ")).is_ok() {
        return;
    }
    for c in missing {
        if let Err(e) = files::write(dir, "cgroup.subtree_control", &format!("+{c}")) {
            refused.push((c, e.to_string()));
            ok.retain(|x| *x != c);
        }
    }
}

fn write_knob(dir: &Path, file: &str, value: String, what: &str, r: &mut Report) {
    match files::write(dir, file, &value) {
        Ok(()) => r.applied(format!("{file}={value}")),
        Err(e) => r.lacking(format!("{what} ({e})")),
    }
}

/// A knob no longer configured goes back to the kernel's default.
fn reset(dir: &Path, file: &str, default: &str) {
    let _ = files::write(dir, file, default);
}

/// The controllers a pool needs: memory and pids always (`corral status`
/// shows them), cpu and io when a limit asks for them.
fn wanted(limits: &Limits, previous: &Limits) -> Vec<&'static str> {
    let any = |f: fn(&Limits) -> bool| f(limits) || f(previous);
    let mut out = vec!["memory", "pids"];
    if any(|l| l.cpu_weight.is_some() || l.cpu_max_percent.is_some()) {
        out.push("cpu");
    }
    if any(|l| l.io_weight.is_some()) {
        out.push("io");
    }
    out
}

/// The limits the pool asked for that controller `c` would enforce.
fn needing(c: &str, limits: &Limits) -> Vec<&'static str> {
    let asked = [
        ("memory", "memory limit", limits.memory_max.is_some()),
        ("memory", "swap limit", limits.swap_max.is_some()),
        ("cpu", "cpu weight", limits.cpu_weight.is_some()),
        ("cpu", "cpu cap", limits.cpu_max_percent.is_some()),
        ("pids", "pids limit", limits.pids_max.is_some()),
        ("io", "io weight", limits.io_weight.is_some()),
    ];
    asked
        .iter()
        .filter(|(ctl, _, set)| *ctl == c && *set)
        .map(|(_, what, _)| *what)
        .collect()
}

impl Backend for V2 {
    fn version(&self) -> Version {
        Version::V2
    }

    fn prepare(&self, subtree: &Path, r: &mut Report) -> Result<(), CgroupError> {
        self.move_master_out(r)?;
        self.create(subtree)
    }

    fn create(&self, rel: &Path) -> Result<(), CgroupError> {
        files::make_dir(&self.dir(rel))
    }

    fn apply(&self, rel: &Path, limits: &Limits, previous: &Limits, r: &mut Report) {
        let available = self.available();
        let (mut usable, absent): (Vec<_>, Vec<_>) = wanted(limits, previous)
            .into_iter()
            .partition(|c| available.iter().any(|a| a == c));
        for c in absent {
            for what in needing(c, limits) {
                r.lacking(format!("{what} (no {c} controller)"));
            }
        }
        for (c, why) in self.enable(rel, &mut usable) {
            for what in needing(c, limits) {
                r.lacking(format!("{what} (cannot enable {c}: {why})"));
            }
        }
        let on = |c: &str| usable.contains(&c);
        let dir = self.dir(rel);
        if on("memory") {
            self.apply_memory(&dir, limits, previous, r);
        }
        if on("cpu") {
            self.apply_cpu(&dir, limits, previous, r);
        }
        if on("pids") {
            match (limits.pids_max, previous.pids_max) {
                (Some(n), _) => write_knob(&dir, "pids.max", n.to_string(), "pids limit", r),
                (None, Some(_)) => reset(&dir, "pids.max", "max"),
                _ => {}
            }
        }
        if on("io") {
            self.apply_io(&dir, limits, previous, r);
        }
    }

    fn procs_files(&self, rel: &Path) -> Vec<PathBuf> {
        vec![self.dir(rel).join("cgroup.procs")]
    }

    fn pids(&self, rel: &Path) -> Vec<i32> {
        files::procs(&self.dir(rel))
    }

    fn kill(&self, rel: &Path, within: Duration) -> Killed {
        let dir = self.dir(rel);
        let pids = || files::procs(&dir);
        if files::exists(&dir, "cgroup.kill") {
            let start = std::time::Instant::now();
            let processes = pids().len();
            if files::write(&dir, "cgroup.kill", "1").is_ok() {
                return Killed {
                    processes,
                    empty: kill::wait_empty(&pids, within),
                    took: start.elapsed(),
                };
            }
        }
        // Before Linux 5.14: signals, frozen first where cgroup.freeze is.
        let freezer = files::exists(&dir, "cgroup.freeze").then_some(kill::Freezer {
            dir: &dir,
            file: "cgroup.freeze",
            freeze: "1",
            thaw: "0",
            frozen: None,
        });
        kill::by_signals(&pids, freezer, within)
    }

    fn usage(&self, rel: &Path) -> Usage {
        let dir = self.dir(rel);
        Usage {
            cpu_usec: files::keyed(&dir, "cpu.stat", "usage_usec"),
            memory_bytes: files::read_u64(&dir, "memory.current"),
            oom_kills: files::keyed(&dir, "memory.events", "oom_kill"),
            pids: files::read_u64(&dir, "pids.current"),
        }
    }

    fn leaf_oom_kills(&self, _rel: &Path) -> u64 {
        // memory.events counts a leaf's events in its pool too.
        0
    }

    fn remove(&self, rel: &Path) -> bool {
        files::remove_dir(&self.dir(rel))
    }

    fn children(&self, rel: &Path) -> Vec<String> {
        files::children(&self.dir(rel))
    }
}
