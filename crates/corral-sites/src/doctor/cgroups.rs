//! Which cgroup version this host runs and which controllers a pool's
//! cgroup can use, read from /proc/self/mountinfo, the cgroup2 tree and
//! /proc/self/cgroup.

use std::path::{Path, PathBuf};

use super::Finding;
use crate::quota::{parse_mountinfo, Mount};

/// The controllers a pool's limits need: memory (memory_max, swap_max),
/// cpu (cpu_weight, cpu_max) and pids (pids_max). io/blkio (io_weight) is
/// optional: many hosts lack it for their disks.
const NEEDED: &[&str] = &["memory", "cpu", "pids"];

/// What the cgroup hierarchies offer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Hierarchies {
    /// cgroup2 mount point and its root's controllers.
    pub v2: Option<(PathBuf, Vec<String>)>,
    /// corral's own cgroup2 path and the controllers it may hand down.
    pub v2_own: Option<(String, Vec<String>)>,
    /// v1 controllers that have a hierarchy mounted.
    pub v1: Vec<String>,
}

/// v1 controllers worth naming.
const V1_CONTROLLERS: &[&str] = &[
    "cpu", "cpuacct", "memory", "pids", "blkio", "cpuset", "freezer",
];

/// Reads the hierarchies from mountinfo text and a cgroup2 tree reader.
pub fn hierarchies(
    mounts: &[Mount],
    proc_cgroup: &str,
    read: impl Fn(&Path) -> Option<String>,
) -> Hierarchies {
    let mut h = Hierarchies::default();
    for m in mounts {
        match m.fstype.as_str() {
            "cgroup2" if h.v2.is_none() => {
                let ctl = read(&m.point.join("cgroup.controllers")).unwrap_or_default();
                h.v2 = Some((m.point.clone(), words(&ctl)));
                let own = proc_cgroup.lines().find_map(|l| l.strip_prefix("0::"));
                if let Some(own) = own {
                    let dir = m.point.join(own.trim_start_matches('/'));
                    let ctl = read(&dir.join("cgroup.controllers")).unwrap_or_default();
                    h.v2_own = Some((own.to_string(), words(&ctl)));
                }
            }
            "cgroup" => {
                for o in &m.options {
                    if V1_CONTROLLERS.contains(&o.as_str()) && !h.v1.contains(o) {
                        h.v1.push(o.clone());
                    }
                }
            }
            _ => {}
        }
    }
    h
}

fn words(s: &str) -> Vec<String> {
    s.split_whitespace().map(str::to_string).collect()
}

fn missing(have: &[String]) -> Vec<&'static str> {
    NEEDED
        .iter()
        .copied()
        .filter(|n| !have.iter().any(|h| h == n))
        .collect()
}

/// The finding for this host.
pub fn check() -> Vec<Finding> {
    let mounts = std::fs::read_to_string("/proc/self/mountinfo")
        .map(|t| parse_mountinfo(&t))
        .unwrap_or_default();
    let own = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    let h = hierarchies(&mounts, &own, |p| std::fs::read_to_string(p).ok());
    vec![judge(&h)]
}

/// v2 when its root has controllers (the production target: a delegated
/// subtree), else v1 when its hierarchies are mounted.
pub fn judge(h: &Hierarchies) -> Finding {
    // A hybrid host mounts cgroup2 with what v1 left over (hugetlb, say):
    // it is the pools' hierarchy only when it has what they need.
    let v2_with_controllers =
        h.v2.as_ref()
            .filter(|(_, c)| missing(c).is_empty() || (h.v1.is_empty() && !c.is_empty()));
    if let Some((point, root)) = v2_with_controllers {
        let (own_path, own) = h.v2_own.clone().unwrap_or(("/".into(), root.clone()));
        let value = format!(
            "v2 at {}: {}; corral's cgroup {own_path} may use: {}",
            point.display(),
            root.join(" "),
            if own.is_empty() {
                "none".into()
            } else {
                own.join(" ")
            }
        );
        let lack = missing(&own);
        return if lack.is_empty() {
            Finding::ok("cgroup", value, "pools get memory, CPU and process limits")
        } else {
            Finding::weak(
                "cgroup",
                value,
                format!(
                    "{} not available to corral's cgroup: run corral under systemd with Delegate=yes (packaging/corral.service)",
                    lack.join(", ")
                ),
            )
        };
    }
    let hybrid =
        h.v2.as_ref()
            .map(|(p, c)| {
                let has = if c.is_empty() {
                    "none".into()
                } else {
                    c.join(" ")
                };
                format!(" (cgroup2 at {} has controllers: {has})", p.display())
            })
            .unwrap_or_default();
    if h.v1.is_empty() {
        return Finding::weak(
            "cgroup",
            format!("none{hybrid}"),
            "no cgroup controllers are mounted: pools cannot be limited; mount cgroup2 on /sys/fs/cgroup",
        );
    }
    let value = format!("v1: {}{hybrid}", h.v1.join(" "));
    let lack = missing(&h.v1);
    if lack.is_empty() {
        Finding::ok(
            "cgroup",
            value,
            "pools get memory, CPU and process limits (v1 hierarchies)",
        )
    } else {
        Finding::weak(
            "cgroup",
            value,
            format!(
                "mount the {} v1 controller(s) or move to cgroup v2",
                lack.join(", ")
            ),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "\
30 22 0:26 / /sys/fs/cgroup rw - tmpfs tmpfs rw,mode=755
31 30 0:27 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu
32 30 0:28 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory
33 30 0:29 / /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids
34 30 0:30 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw
";

    #[test]
    fn v1_with_an_empty_unified_hierarchy() {
        let h = hierarchies(&parse_mountinfo(HYBRID), "0::/\n", |_| {
            Some("hugetlb\n".into())
        });
        assert_eq!(h.v1, ["cpu", "memory", "pids"]);
        let f = judge(&h);
        assert_eq!(f.level, super::super::Level::Ok, "{f:?}");
        assert_eq!(
            f.value,
            "v1: cpu memory pids (cgroup2 at /sys/fs/cgroup/unified has controllers: hugetlb)"
        );
    }

    #[test]
    fn v2_needs_the_controllers_delegated() {
        let info = "30 22 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n";
        let tree = |p: &Path| match p.to_str()? {
            "/sys/fs/cgroup/cgroup.controllers" => Some("cpuset cpu io memory pids\n".into()),
            "/sys/fs/cgroup/system.slice/corral.service/cgroup.controllers" => Some("cpu\n".into()),
            _ => None,
        };
        let h = hierarchies(
            &parse_mountinfo(info),
            "0::/system.slice/corral.service\n",
            tree,
        );
        let f = judge(&h);
        assert_eq!(f.level, super::super::Level::Weak);
        assert!(
            f.advice.contains("memory, pids") && f.advice.contains("Delegate=yes"),
            "{f:?}"
        );
    }
}
