//! Reading and writing cgroup control files. Files are opened without
//! O_CREAT: in cgroupfs a file that does not exist is a controller or a
//! feature the kernel lacks, and must be reported as such, never created
//! (a fake tree in the tests is built with the files the kernel would show).

use std::io::Write;
use std::path::Path;

use super::CgroupError;

/// Write `value` into the control file `dir/name`, in one write(2) as the
/// kernel expects.
pub(crate) fn write(dir: &Path, name: &str, value: &str) -> Result<(), CgroupError> {
    let path = dir.join(name);
    let fail = |source| CgroupError::Write {
        path: path.clone(),
        value: value.to_string(),
        source,
    };
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(&path)
        .map_err(fail)?;
    f.write_all(value.as_bytes()).map_err(fail)
}

pub(crate) fn read(dir: &Path, name: &str) -> Result<String, CgroupError> {
    let path = dir.join(name);
    std::fs::read_to_string(&path).map_err(|source| CgroupError::Read { path, source })
}

pub(crate) fn exists(dir: &Path, name: &str) -> bool {
    dir.join(name).exists()
}

/// A file holding one number (`memory.current`, `cpuacct.usage`).
pub(crate) fn read_u64(dir: &Path, name: &str) -> Option<u64> {
    read(dir, name).ok()?.trim().parse().ok()
}

/// One `key value` line of a flat-keyed file (`cpu.stat`, `memory.events`,
/// `memory.oom_control`).
pub(crate) fn keyed(dir: &Path, name: &str, key: &str) -> Option<u64> {
    read(dir, name).ok()?.lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok())?
    })
}

/// The pids in `dir/cgroup.procs`.
pub(crate) fn procs(dir: &Path) -> Vec<i32> {
    read(dir, "cgroup.procs")
        .map(|t| t.lines().filter_map(|l| l.trim().parse().ok()).collect())
        .unwrap_or_default()
}

/// mkdir, where an existing cgroup is fine and anything else in the way
/// (a control file with the pool's name) is not.
pub(crate) fn make_dir(path: &Path) -> Result<(), CgroupError> {
    match std::fs::create_dir(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            if path.is_dir() {
                Ok(())
            } else {
                Err(CgroupError::NotACgroup {
                    path: path.to_path_buf(),
                })
            }
        }
        Err(source) => Err(CgroupError::Create {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// rmdir of a cgroup: true when it is gone (or was never there). A cgroup
/// that still lists a process cannot go (the kernel says EBUSY). cgroupfs
/// removes a cgroup's control files with it; a fake tree's files are
/// removed first so the same call works there.
pub(crate) fn remove_dir(path: &Path) -> bool {
    if !path.exists() {
        return true;
    }
    if !procs(path).is_empty() {
        return false;
    }
    if std::fs::remove_dir(path).is_ok() {
        return true;
    }
    if !is_cgroupfs(path) {
        let files = std::fs::read_dir(path).into_iter().flatten().flatten();
        for f in files.filter(|f| f.path().is_file()) {
            let _ = std::fs::remove_file(f.path());
        }
        return std::fs::remove_dir(path).is_ok();
    }
    false
}

/// Subdirectories (child cgroups) of `dir`, by name.
pub(crate) fn children(dir: &Path) -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.path().is_dir())
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    out.sort();
    out
}

/// Whether `path` is on a cgroup filesystem, so that removing files in it
/// is never attempted (the kernel refuses anyway; a fake tree allows it).
fn is_cgroupfs(path: &Path) -> bool {
    use corral_sys::nix::sys::statfs::{statfs, CGROUP2_SUPER_MAGIC, CGROUP_SUPER_MAGIC};
    statfs(path).is_ok_and(|s| {
        let t = s.filesystem_type();
        t == CGROUP_SUPER_MAGIC || t == CGROUP2_SUPER_MAGIC
    })
}
