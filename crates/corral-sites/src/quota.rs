//! Disk quotas for a site (`--disk-quota SIZE`): a group quota on the
//! site's group, set with quotactl(2) on the filesystem that holds the
//! home.
//!
//! Why the group: every directory of a site is setgid `USER`, and both of
//! its accounts (`USER` and `USER-php`) have `USER` as their only group, so
//! every file either of them can create in the home counts against the one
//! limit; neither can `chgrp` a file out of it. Per-user quotas would give
//! the site twice the space and let the PHP user fill the disk apart from
//! the owner.
//!
//! Support is detected, not assumed: the mount must enforce group quotas
//! (`grpquota`, `gquota`, `grpjquota=`) and the kernel must have them on
//! (quotactl answers). Where it does not, the error says what to change.

use std::path::{Path, PathBuf};

use corral_sys::nix::errno::Errno;
use corral_sys::nix::sys::quota::{self, Dqblk, QuotaType, QuotaValidFlags};
use corral_sys::nix::sys::stat;

use crate::error::{Result, SitesError};

/// Quota limits are counted in blocks of this many bytes (QUOTABLOCK_SIZE).
const QUOTA_BLOCK: u64 = 1024;

/// One line of /proc/self/mountinfo, as far as quotas care.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// `major:minor` of the filesystem.
    pub dev: String,
    pub point: PathBuf,
    pub fstype: String,
    /// What was mounted (`/dev/vda`, `/dev/loop3`).
    pub source: String,
    /// Per-mount and superblock options together.
    pub options: Vec<String>,
}

/// The lines of a mountinfo file (proc(5)); malformed lines are skipped.
pub fn parse_mountinfo(text: &str) -> Vec<Mount> {
    text.lines().filter_map(parse_mountinfo_line).collect()
}

fn parse_mountinfo_line(line: &str) -> Option<Mount> {
    let (head, tail) = line.split_once(" - ")?;
    let head: Vec<&str> = head.split(' ').collect();
    let tail: Vec<&str> = tail.split(' ').collect();
    let mut options: Vec<String> = head.get(5)?.split(',').map(str::to_string).collect();
    for o in tail.get(2).unwrap_or(&"").split(',') {
        if !o.is_empty() && !options.iter().any(|x| x == o) {
            options.push(o.to_string());
        }
    }
    Some(Mount {
        dev: head.get(2)?.to_string(),
        point: PathBuf::from(unescape(head.get(4)?)),
        fstype: tail.first()?.to_string(),
        source: unescape(tail.get(1)?),
        options,
    })
}

/// mountinfo writes space, tab, newline and backslash as `\ooo`.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let oct = b
            .get(i + 1..i + 4)
            .filter(|o| o.iter().all(|c| (b'0'..=b'7').contains(c)));
        match (b[i], oct) {
            (b'\\', Some(o)) => {
                out.push((o[0] - b'0') * 64 + (o[1] - b'0') * 8 + (o[2] - b'0'));
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

/// The mount that holds `path`: the longest mount point above it on the
/// same device (a path can sit under several stacked mounts).
pub fn mount_of(path: &Path) -> Result<Mount> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(path).map_err(|e| SitesError::io(path, e))?;
    let dev = format!("{}:{}", stat::major(meta.dev()), stat::minor(meta.dev()));
    let info = "/proc/self/mountinfo";
    let text = std::fs::read_to_string(info).map_err(|e| SitesError::io(info, e))?;
    let canon = std::fs::canonicalize(path).map_err(|e| SitesError::io(path, e))?;
    parse_mountinfo(&text)
        .into_iter()
        .filter(|m| m.dev == dev && canon.starts_with(&m.point))
        .max_by_key(|m| m.point.as_os_str().len())
        .ok_or_else(|| SitesError::Quota {
            path: path.to_path_buf(),
            fstype: "?".into(),
            device: dev,
            why: format!("no mount in {info} holds it"),
        })
}

/// Mount options under which the kernel enforces group limits.
pub fn enforces_group_quota(options: &[String]) -> bool {
    options
        .iter()
        .any(|o| o == "grpquota" || o == "gquota" || o.starts_with("grpjquota="))
}

/// The block device quotactl(2) wants: the mount source when it is one,
/// else the kernel's name for `major:minor` (the root is often mounted
/// from `/dev/root`, which does not exist as a file).
fn block_device(m: &Mount) -> Option<PathBuf> {
    let src = Path::new(&m.source);
    if src.starts_with("/dev/") && src.exists() {
        return Some(src.to_path_buf());
    }
    let uevent = std::fs::read_to_string(format!("/sys/dev/block/{}/uevent", m.dev)).ok()?;
    let name = uevent.lines().find_map(|l| l.strip_prefix("DEVNAME="))?;
    Some(Path::new("/dev").join(name)).filter(|p| p.exists())
}

/// A filesystem that can limit a group's blocks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuotaFs {
    pub mount: Mount,
    pub device: PathBuf,
}

/// What the filesystem holding `path` can do, or the typed error that
/// says what to change.
pub fn group_quota_fs(path: &Path) -> Result<QuotaFs> {
    let mount = mount_of(path)?;
    let refuse = |why: String| SitesError::Quota {
        path: mount.point.clone(),
        fstype: mount.fstype.clone(),
        device: mount.source.clone(),
        why,
    };
    if !enforces_group_quota(&mount.options) {
        return Err(refuse(format!(
            "it is not mounted with grpquota (options: {}); {}",
            mount.options.join(","),
            enable_hint(&mount)
        )));
    }
    let device =
        block_device(&mount).ok_or_else(|| refuse(format!("no block device for {}", mount.dev)))?;
    match quota::quotactl_get(QuotaType::GRPQUOTA, &device, 0) {
        Ok(_) => Ok(QuotaFs { mount, device }),
        Err(Errno::ESRCH) => Err(refuse(format!(
            "it is mounted with grpquota but quotas are not turned on (quotactl: ESRCH); \
             run `quotacheck -cug {p}` and `quotaon -g {p}`, or use the ext4 quota feature",
            p = mount.point.display()
        ))),
        Err(e) => Err(refuse(format!(
            "quotactl refuses it ({}); {}",
            e.desc(),
            enable_hint(&mount)
        ))),
    }
}

fn enable_hint(m: &Mount) -> String {
    match m.fstype.as_str() {
        "ext4" | "ext3" | "ext2" => format!(
            "add usrquota,grpquota to its options in /etc/fstab and remount (with `tune2fs -O quota {}` \
             while unmounted, or `quotacheck -cug {}` and `quotaon {}`); the kernel needs CONFIG_QFMT_V2",
            m.source,
            m.point.display(),
            m.point.display()
        ),
        "xfs" => "mount it with grpquota (xfs turns quotas on only at mount time)".into(),
        other => format!("{other} has no group quotas corral can set; put the homes on ext4 or xfs"),
    }
}

/// A group's block limit on one filesystem, in bytes (0 = none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limit {
    pub device: PathBuf,
    pub gid: u32,
    pub bytes: u64,
}

/// The group's current hard block limit.
pub fn get(device: &Path, gid: u32) -> Result<Limit> {
    let q = quota::quotactl_get(QuotaType::GRPQUOTA, device, gid as i32)
        .map_err(|e| quota_io(device, gid, "read", e))?;
    Ok(Limit {
        device: device.to_path_buf(),
        gid,
        bytes: q.blocks_hard_limit().unwrap_or(0) * QUOTA_BLOCK,
    })
}

/// Sets soft = hard = `l.bytes` (rounded up to whole blocks): a site is
/// stopped at its quota, with no grace period to overrun it.
pub fn set(l: &Limit) -> Result<()> {
    let blocks = l.bytes.div_ceil(QUOTA_BLOCK);
    let mut q = Dqblk::default();
    q.set_blocks_hard_limit(blocks);
    q.set_blocks_soft_limit(blocks);
    quota::quotactl_set(
        QuotaType::GRPQUOTA,
        &l.device,
        l.gid as i32,
        &q,
        QuotaValidFlags::QIF_BLIMITS,
    )
    .map_err(|e| quota_io(&l.device, l.gid, "set", e))
}

fn quota_io(device: &Path, gid: u32, what: &str, e: Errno) -> SitesError {
    SitesError::io(
        device,
        std::io::Error::other(format!("{what} the quota of group {gid}: {}", e.desc())),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const INFO: &str = "\
22 1 254:0 / / rw,relatime - ext4 /dev/root rw,errors=remount-ro
40 22 7:3 / /srv/my\\040homes rw,nosuid,relatime shared:5 - ext4 /dev/loop3 rw,usrquota,grpquota
41 22 0:5 / /home/x rw - xfs /dev/sdb1 rw,attr2,gqnoenforce
";

    #[test]
    fn mountinfo_lines() {
        let m = parse_mountinfo(INFO);
        assert_eq!(m.len(), 3);
        assert_eq!(m[1].point, Path::new("/srv/my homes"));
        assert_eq!(
            (m[1].dev.as_str(), m[1].source.as_str()),
            ("7:3", "/dev/loop3")
        );
        assert_eq!(m[1].fstype, "ext4");
        assert!(enforces_group_quota(&m[1].options));
        assert!(!enforces_group_quota(&m[0].options));
        // Accounting without enforcement is no quota.
        assert!(!enforces_group_quota(&m[2].options));
    }

    #[test]
    fn the_root_filesystem_is_found() {
        use std::os::unix::fs::MetadataExt;
        let m = mount_of(Path::new("/")).unwrap();
        assert_eq!(m.point, Path::new("/"));
        // The device numbers agree with what stat says of a file on it.
        let dev = std::fs::metadata("/etc/passwd").unwrap().dev();
        let want = format!("{}:{}", stat::major(dev), stat::minor(dev));
        assert_eq!(mount_of(Path::new("/etc/passwd")).unwrap().dev, want);
    }
}
