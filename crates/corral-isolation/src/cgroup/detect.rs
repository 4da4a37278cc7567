//! Where the cgroup hierarchies are mounted and where this process sits in
//! each, read from the text of `/proc/self/mountinfo` and
//! `/proc/self/cgroup`. Pure functions of that text, so that every layout
//! corral meets (v1 with separate controllers, v2 delegated by systemd,
//! systemd's hybrid mode) is tested on samples without a kernel.

use std::path::{Path, PathBuf};

/// The controllers corral uses on v1, each in whatever hierarchy has it.
/// cpuset is left out on purpose: a cpuset cgroup takes no process until
/// its cpus and mems are copied from the parent, which corral does not
/// need; a hierarchy that mounts cpuset with another controller is skipped.
pub const V1_CONTROLLERS: &[&str] = &["memory", "cpu", "cpuacct", "pids", "blkio", "freezer"];

/// Every v1 controller name the kernel knows, to tell controllers from
/// mount options in a cgroup mount's super options.
const KNOWN_V1: &[&str] = &[
    "cpu",
    "cpuacct",
    "cpuset",
    "memory",
    "devices",
    "freezer",
    "net_cls",
    "net_prio",
    "blkio",
    "perf_event",
    "hugetlb",
    "pids",
    "rdma",
    "misc",
];

/// One cgroup or cgroup2 mount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// The directory of the hierarchy this mount shows as its top (`/`
    /// unless a subtree is bind-mounted, as in some containers).
    pub root: String,
    pub point: PathBuf,
    /// `cgroup2` for the unified hierarchy.
    pub v2: bool,
    /// v1: the controllers of the hierarchy (and `name=...` for a named one).
    pub controllers: Vec<String>,
}

/// One line of /proc/self/cgroup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Membership {
    /// Empty for the unified hierarchy (`0::/path`).
    pub controllers: Vec<String>,
    pub path: String,
}

/// A v1 hierarchy corral can use: its controllers and this process's
/// cgroup in it, as a directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct V1Root {
    pub controllers: Vec<String>,
    pub own: PathBuf,
}

/// This process's cgroup in the unified hierarchy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct V2Root {
    pub own: PathBuf,
    /// The hierarchy's root cgroup, which may hold processes and have
    /// controllers enabled at once (every other cgroup may not).
    pub is_root: bool,
}

/// What the two files say, before anything is chosen.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Found {
    pub v2: Option<V2Root>,
    pub v1: Vec<V1Root>,
}

/// The cgroup mounts in mountinfo.
pub fn mounts(mountinfo: &str) -> Vec<Mount> {
    mountinfo.lines().filter_map(mount_line).collect()
}

/// `36 25 0:31 / /sys/fs/cgroup/memory rw,relatime shared:14 - cgroup cgroup rw,memory`
fn mount_line(line: &str) -> Option<Mount> {
    let (left, right) = line.split_once(" - ")?;
    let fields: Vec<&str> = left.split(' ').collect();
    let (root, point) = (fields.get(3)?, fields.get(4)?);
    let mut right = right.split(' ');
    let fstype = right.next()?;
    let _source = right.next()?;
    let options = right.next().unwrap_or("");
    let v2 = match fstype {
        "cgroup2" => true,
        "cgroup" => false,
        _ => return None,
    };
    let controllers = if v2 {
        Vec::new()
    } else {
        options
            .split(',')
            .filter(|o| KNOWN_V1.contains(o) || o.starts_with("name="))
            .map(str::to_string)
            .collect()
    };
    Some(Mount {
        root: unescape(root),
        point: PathBuf::from(unescape(point)),
        v2,
        controllers,
    })
}

/// mountinfo writes space, tab, newline and backslash as `\ooo`.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let octal = b
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match (b[i], octal) {
            (b'\\', Some(d)) => {
                out.push((d[0] - b'0') * 64 + (d[1] - b'0') * 8 + (d[2] - b'0'));
                i += 4;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The lines of /proc/self/cgroup: `4:memory:/a/b`, `1:cpu,cpuacct:/`,
/// `0::/system.slice/corral.service`.
pub fn memberships(text: &str) -> Vec<Membership> {
    text.lines()
        .filter_map(|l| {
            let mut it = l.splitn(3, ':');
            let _id = it.next()?;
            let controllers = it.next()?;
            let path = it.next()?;
            Some(Membership {
                controllers: controllers
                    .split(',')
                    .filter(|c| !c.is_empty())
                    .map(str::to_string)
                    .collect(),
                path: path.to_string(),
            })
        })
        .collect()
}

/// Match each membership with a mount of its hierarchy: the unified one,
/// and the v1 hierarchies that carry a controller corral uses.
pub fn locate(mounts: &[Mount], memberships: &[Membership]) -> Found {
    let mut found = Found::default();
    for m in memberships {
        if m.controllers.is_empty() {
            found.v2 = mounts
                .iter()
                .filter(|x| x.v2)
                .find_map(|x| own_dir(x, &m.path))
                .map(|own| V2Root {
                    own,
                    is_root: m.path == "/",
                });
            continue;
        }
        let usable = m
            .controllers
            .iter()
            .any(|c| V1_CONTROLLERS.contains(&c.as_str()))
            && !m.controllers.iter().any(|c| c == "cpuset");
        if !usable {
            continue;
        }
        let own = mounts
            .iter()
            .filter(|x| !x.v2 && same_set(&x.controllers, &m.controllers))
            .find_map(|x| own_dir(x, &m.path));
        if let Some(own) = own {
            found.v1.push(V1Root {
                controllers: m.controllers.clone(),
                own,
            });
        }
    }
    found
}

fn same_set(a: &[String], b: &[String]) -> bool {
    a.len() == b.len() && a.iter().all(|x| b.contains(x))
}

/// The directory of cgroup `path` under a mount whose top is `mount.root`;
/// none when the cgroup is outside what the mount shows.
fn own_dir(mount: &Mount, path: &str) -> Option<PathBuf> {
    let rel = if mount.root == "/" {
        path
    } else {
        let rest = path.strip_prefix(mount.root.as_str())?;
        if !rest.is_empty() && !rest.starts_with('/') {
            return None;
        }
        rest
    };
    let rel = rel.trim_start_matches('/');
    if Path::new(rel)
        .components()
        .any(|c| !matches!(c, std::path::Component::Normal(_)))
    {
        return None;
    }
    Some(if rel.is_empty() {
        mount.point.clone()
    } else {
        mount.point.join(rel)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// This build machine: v1 controllers mounted one per hierarchy, a
    /// controller-less cgroup2 at /sys/fs/cgroup/unified, no systemd.
    const V1_MOUNTINFO: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
36 31 0:33 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices
37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
38 31 0:35 / /sys/fs/cgroup/blkio rw,relatime - cgroup cgroup rw,blkio
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";
    const V1_CGROUP: &str = "\
9:name=systemd:/
8:pids:/
7:blkio:/
6:freezer:/
5:devices:/
4:memory:/process_api/72db
3:cpuset:/
2:cpuacct:/
1:cpu:/
0::/
";

    /// Debian 12 under systemd: pure cgroup v2, corral.service delegated.
    const V2_MOUNTINFO: &str = "\
22 27 0:21 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
26 22 0:23 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
";
    const V2_CGROUP: &str = "0::/system.slice/corral.service\n";

    /// systemd's hybrid mode (Debian 10/11 default): controllers on v1,
    /// systemd's own tracking on cgroup2, cpu and cpuacct co-mounted.
    const HYBRID_MOUNTINFO: &str = "\
25 22 0:22 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:4 - tmpfs tmpfs ro,mode=755
26 25 0:23 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:5 - cgroup2 cgroup2 rw,nsdelegate
27 25 0:24 / /sys/fs/cgroup/systemd rw,nosuid,nodev,noexec,relatime shared:6 - cgroup cgroup rw,xattr,name=systemd
30 25 0:27 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:10 - cgroup cgroup rw,cpu,cpuacct
31 25 0:28 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:11 - cgroup cgroup rw,memory
32 25 0:29 / /sys/fs/cgroup/pids rw,nosuid,nodev,noexec,relatime shared:12 - cgroup cgroup rw,pids
33 25 0:30 / /sys/fs/cgroup/cpuset rw,nosuid,nodev,noexec,relatime shared:13 - cgroup cgroup rw,cpuset,clone_children
";
    const HYBRID_CGROUP: &str = "\
7:cpuset:/
6:pids:/system.slice/corral.service
5:memory:/system.slice/corral.service
4:cpu,cpuacct:/system.slice/corral.service
1:name=systemd:/system.slice/corral.service
0::/system.slice/corral.service
";

    fn v1(controllers: &[&str], own: &str) -> V1Root {
        V1Root {
            controllers: controllers.iter().map(|s| s.to_string()).collect(),
            own: PathBuf::from(own),
        }
    }

    #[test]
    fn v1_with_one_controller_per_hierarchy() {
        let found = locate(&mounts(V1_MOUNTINFO), &memberships(V1_CGROUP));
        assert_eq!(
            found.v1,
            vec![
                v1(&["pids"], "/sys/fs/cgroup/pids"),
                v1(&["blkio"], "/sys/fs/cgroup/blkio"),
                v1(&["freezer"], "/sys/fs/cgroup/freezer"),
                v1(&["memory"], "/sys/fs/cgroup/memory/process_api/72db"),
                v1(&["cpuacct"], "/sys/fs/cgroup/cpuacct"),
                v1(&["cpu"], "/sys/fs/cgroup/cpu"),
            ]
        );
        assert_eq!(
            found.v2,
            Some(V2Root {
                own: PathBuf::from("/sys/fs/cgroup/unified"),
                is_root: true
            })
        );
    }

    #[test]
    fn v2_delegated_by_systemd() {
        let found = locate(&mounts(V2_MOUNTINFO), &memberships(V2_CGROUP));
        assert!(found.v1.is_empty());
        assert_eq!(
            found.v2,
            Some(V2Root {
                own: PathBuf::from("/sys/fs/cgroup/system.slice/corral.service"),
                is_root: false
            })
        );
    }

    #[test]
    fn hybrid_comounted_cpu_and_cpuacct_and_no_cpuset() {
        let found = locate(&mounts(HYBRID_MOUNTINFO), &memberships(HYBRID_CGROUP));
        assert_eq!(
            found.v1,
            vec![
                v1(&["pids"], "/sys/fs/cgroup/pids/system.slice/corral.service"),
                v1(
                    &["memory"],
                    "/sys/fs/cgroup/memory/system.slice/corral.service"
                ),
                v1(
                    &["cpu", "cpuacct"],
                    "/sys/fs/cgroup/cpu,cpuacct/system.slice/corral.service"
                ),
            ]
        );
        assert_eq!(
            found.v2.map(|r| r.own),
            Some(PathBuf::from(
                "/sys/fs/cgroup/unified/system.slice/corral.service"
            ))
        );
    }

    #[test]
    fn a_bind_mounted_subtree_and_escaped_mount_points() {
        let info = "50 40 0:40 /lxc/box /sys/fs/cgroup/my\\040mem rw - cgroup cgroup rw,memory\n";
        let ms = mounts(info);
        assert_eq!(ms[0].point, PathBuf::from("/sys/fs/cgroup/my mem"));
        let inside = memberships("4:memory:/lxc/box/app\n");
        assert_eq!(
            locate(&ms, &inside).v1[0].own,
            PathBuf::from("/sys/fs/cgroup/my mem/app")
        );
        // A cgroup the mount does not show (a sibling with a common prefix).
        let outside = memberships("4:memory:/lxc/boxer\n");
        assert!(locate(&ms, &outside).v1.is_empty());
    }

    #[test]
    fn nothing_mounted() {
        let found = locate(
            &mounts("1 0 8:1 / / rw - ext4 /dev/sda1 rw\n"),
            &memberships("0::/\n"),
        );
        assert_eq!(found, Found::default());
    }
}
