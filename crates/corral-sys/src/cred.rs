//! Users, groups and dropping privileges.

use std::ffi::CString;

use nix::unistd::{Gid, Group, Uid, User};

use crate::{Result, SysError};

/// A resolved system user.
#[derive(Debug, Clone)]
pub struct Account {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub home: String,
}

/// Look a user up by name or numeric uid.
pub fn lookup_user(spec: &str) -> Option<Account> {
    let user = if let Ok(n) = spec.parse::<u32>() {
        User::from_uid(Uid::from_raw(n)).ok().flatten()
    } else {
        User::from_name(spec).ok().flatten()
    }?;
    Some(Account {
        name: user.name,
        uid: user.uid.as_raw(),
        gid: user.gid.as_raw(),
        home: user.dir.to_string_lossy().into_owned(),
    })
}

/// php-fpm's reading of a pool's `user`: all digits is a uid, taken as it
/// is (with the passwd entry's name, group and home when there is one;
/// without one the group is 0, as php-fpm leaves it, and there is no
/// home); anything else is a name that must exist.
pub fn pool_user(spec: &str) -> Option<Account> {
    if !is_id(spec) {
        return lookup_user(spec);
    }
    let uid: u32 = spec.parse().ok()?;
    Some(lookup_user(spec).unwrap_or(Account {
        name: spec.to_string(),
        uid,
        gid: 0,
        home: String::new(),
    }))
}

/// php-fpm's test for a numeric user or group (`fpm_unix_is_id`).
pub fn is_id(spec: &str) -> bool {
    !spec.is_empty() && spec.bytes().all(|b| b.is_ascii_digit())
}

/// Look a group up by name or numeric gid.
pub fn lookup_group(spec: &str) -> Option<u32> {
    if let Ok(n) = spec.parse::<u32>() {
        return Some(n);
    }
    Group::from_name(spec)
        .ok()
        .flatten()
        .map(|g| g.gid.as_raw())
}

/// The account of the current process.
pub fn current_account() -> Account {
    let uid = nix::unistd::getuid();
    User::from_uid(uid)
        .ok()
        .flatten()
        .map(|u| Account {
            name: u.name,
            uid: u.uid.as_raw(),
            gid: u.gid.as_raw(),
            home: u.dir.to_string_lossy().into_owned(),
        })
        .unwrap_or(Account {
            name: uid.to_string(),
            uid: uid.as_raw(),
            gid: nix::unistd::getgid().as_raw(),
            home: "/".into(),
        })
}

pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// initgroups + setgid + setuid, in that order, and verify we cannot get
/// root back.
pub fn drop_to(user: &str, uid: u32, gid: u32) -> Result<()> {
    let cname = CString::new(user)
        .map_err(|_| SysError::new("user name", std::io::ErrorKind::InvalidInput))?;
    nix::unistd::initgroups(&cname, Gid::from_raw(gid))
        .map_err(|e| SysError::errno(format!("initgroups({user}, {gid})"), e))?;
    nix::unistd::setgid(Gid::from_raw(gid))
        .map_err(|e| SysError::errno(format!("setgid({gid})"), e))?;
    nix::unistd::setuid(Uid::from_raw(uid))
        .map_err(|e| SysError::errno(format!("setuid({uid})"), e))?;
    if uid != 0 && nix::unistd::setuid(Uid::from_raw(0)).is_ok() {
        return Err(SysError::new(
            "privilege drop",
            std::io::Error::other("setuid(0) still works"),
        ));
    }
    Ok(())
}

/// chroot into `dir` and chdir to `/`.
pub fn chroot(dir: &std::path::Path) -> Result<()> {
    nix::unistd::chroot(dir)
        .map_err(|e| SysError::errno(format!("chroot({})", dir.display()), e))?;
    nix::unistd::chdir("/").map_err(|e| SysError::errno("chdir(/)", e))
}
