//! Shared by `browser_sites.rs`: a private MariaDB, temporary `/etc/hosts`
//! names, copying an application into a docroot as its owner, and running
//! one of the Playwright walks in `tests/browser/` with a time limit.
//!
//! Every walk step, here and in the JS walks, prints one line
//! `STEP <name>: ok|FAILED <why>|SKIPPED <why>`; the test collects them,
//! prints the list and fails on the first FAILED with its reason.
#![allow(dead_code)]

pub mod mariadb;
pub mod steps;
pub mod zip;

use std::fs;
use std::os::unix::fs::{chown, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common;

/// The walks' directory: JS scripts, package.json, and the npm install.
pub fn walks_dir() -> PathBuf {
    common::workspace_root().join("crates/corral/tests/browser")
}

/// Names in `/etc/hosts` for as long as this lives, so PHP's own
/// loopback requests (WordPress's Site Health, wp-cron) reach the site.
/// `/etc/hosts` may be a bind mount (containers), so it is rewritten in
/// place, and only our own lines are removed again.
pub struct HostsEntry {
    line: String,
}

const HOSTS: &str = "/etc/hosts";

impl HostsEntry {
    pub fn add(name: &str, addr: &str) -> HostsEntry {
        let line = format!("{addr} {name} # corral browser test {}", std::process::id());
        let mut text = fs::read_to_string(HOSTS).unwrap_or_default();
        if !text.is_empty() && !text.ends_with('\n') {
            text.push('\n');
        }
        text.push_str(&line);
        text.push('\n');
        fs::write(HOSTS, text).expect("append to /etc/hosts");
        HostsEntry { line }
    }
}

impl Drop for HostsEntry {
    fn drop(&mut self) {
        if let Ok(text) = fs::read_to_string(HOSTS) {
            let kept: String = text
                .lines()
                .filter(|l| *l != self.line)
                .map(|l| format!("{l}\n"))
                .collect();
            let _ = fs::write(HOSTS, kept);
        }
    }
}

/// Copies `from` into `to` (which exists) the way an owner unpacking an
/// application would: symlinks resolved (`cp -rL`), everything owned by
/// `user:user`; new files and dirs take the docroot's default ACL (the
/// web server's read entry). Dirs `corral site` made keep their modes.
pub fn copy_as_owner(from: &Path, to: &Path, user: &str) {
    let st = Command::new("cp")
        // Not `--no-preserve=mode`: coreutils then replaces the ACL the
        // docroot's default ACL gave each new file with the bare mode.
        .arg("-rL")
        .arg(format!("{}/.", from.display()))
        .arg(to)
        .status()
        .expect("cp");
    assert!(st.success(), "cp -rL {} {}", from.display(), to.display());
    let uid = common::uid_of(user).expect("owner uid");
    let gid = common::gid_of_group(user).expect("owner gid");
    own_tree(to, uid, gid);
}

fn own_tree(p: &Path, uid: u32, gid: u32) {
    let m = fs::symlink_metadata(p).unwrap();
    chown(p, Some(uid), Some(gid)).unwrap();
    if m.is_dir() {
        for e in fs::read_dir(p).unwrap().flatten() {
            own_tree(&e.path(), uid, gid);
        }
    }
}

/// Sets mode 0640 on every file under `p` (copied files are 0644 from
/// cp; the site's files are for the group, not for everyone).
pub fn files_0640(p: &Path) {
    for e in fs::read_dir(p).unwrap().flatten() {
        let m = e.metadata().unwrap();
        if m.is_dir() {
            files_0640(&e.path());
        } else if m.is_file() {
            fs::set_permissions(e.path(), fs::Permissions::from_mode(0o640)).unwrap();
        }
    }
}

/// Kills every process whose command line mentions `marker` (a unique
/// temp path this test made, e.g. Chromium's user-data-dir), by pid: the
/// browser is its own process group, so a killed walk can leave it behind.
pub fn kill_mentioning(marker: &str) {
    let Ok(dir) = fs::read_dir("/proc") else {
        return;
    };
    for e in dir.flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let cmd = fs::read(e.path().join("cmdline")).unwrap_or_default();
        if String::from_utf8_lossy(&cmd).contains(marker) {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
        }
    }
}
