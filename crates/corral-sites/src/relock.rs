//! Re-locking a directory that `corral.writable` no longer lists (or the
//! whole code tree when an unlock window closes, see
//! [`Target::open`] for the opening walk): the dir
//! and everything in it go back to what code gets (owner `USER`, group
//! read-only, dirs `2750`, files `0640`, the web server's entry as the web
//! root's rules give it), so PHP can no longer write there. Turning the
//! dir's mode back is not enough: the files and subdirectories PHP wrote
//! belong to `USER-php`, and an owner may write its own files whatever the
//! dir's mode says.
//!
//! The tree belongs to the tenant, and root walks it, so it is walked by
//! file descriptor: each entry is opened relative to its parent's open
//! descriptor (through `/proc/self/fd/N/NAME`, which resolves the name in
//! that directory and nowhere else) with `O_NOFOLLOW`, and changed through
//! that descriptor (fchown, fchmod, ACL xattrs). A symlink is never
//! followed and never changed, a dir swapped for a link in the meantime is
//! not entered, and an entry that belongs to anyone but the site's two
//! accounts is left as it is and reported: re-locking must never hand the
//! owner a file it did not have (a hard link to another user's file).

use std::ffi::OsString;
use std::fs::File;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

use corral_sys::nix::fcntl::OFlag;
use xattr::FileExt;

use crate::acl_xattr::{self, Encoded};
use crate::error::{Result, SitesError};

/// Deeper than any real upload tree; stops a pathological one.
const MAX_DEPTH: usize = 64;

/// Whose tree it is and what the web server may do in it.
#[derive(Debug, Clone)]
pub struct Target {
    /// The owner's name, for messages.
    pub owner: String,
    pub owner_uid: u32,
    pub php_uid: u32,
    pub gid: u32,
    pub web_uid: u32,
    /// The web root: entries in it keep the web server's read entry.
    pub docroot: PathBuf,
    /// Subtrees still listed as writable: not entered.
    pub keep: Vec<PathBuf>,
    /// `site unlock`: open the tree instead (dirs `2770`, files `0660`,
    /// group `rw`, owners kept), by the same no-follow walk.
    pub open: bool,
    /// Why, for the message ("no longer in corral.writable").
    pub reason: &'static str,
}

/// An inode as it was before the re-lock, to put it back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InodeState {
    /// Below the re-locked dir ("" is the dir itself).
    pub rel: PathBuf,
    pub uid: u32,
    pub gid: u32,
    pub mode: u32,
    pub access: Option<Vec<u8>>,
    pub default: Option<Vec<u8>>,
}

/// What a re-lock did (or, in a dry run, would do).
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// Previous state of every inode changed.
    pub changed: Vec<InodeState>,
    /// Entries left alone because someone else owns them.
    pub foreign: Vec<PathBuf>,
    /// Symlinks, sockets, FIFOs: never changed.
    pub other: usize,
}

/// Re-locks `root` and its tree (see the module doc). `out` holds what
/// was changed even when an error stops the walk, so it can be undone.
pub fn relock(root: &Path, t: &Target, dry_run: bool, out: &mut Outcome) -> Result<()> {
    let dir = match open_dir_nofollow(root) {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(SitesError::io(root, e)),
    };
    visit(&dir, root, Path::new(""), t, dry_run, 0, out)
}

fn visit(
    f: &File,
    full: &Path,
    rel: &Path,
    t: &Target,
    dry_run: bool,
    depth: usize,
    out: &mut Outcome,
) -> Result<()> {
    let m = f.metadata().map_err(|e| SitesError::io(full, e))?;
    let is_dir = m.file_type().is_dir();
    if !is_dir && !m.file_type().is_file() {
        out.other += 1;
        return Ok(());
    }
    if m.uid() != t.owner_uid && m.uid() != t.php_uid {
        out.foreign.push(full.to_path_buf());
        return Ok(());
    }
    let served = full.starts_with(&t.docroot);
    let (dir_mode, file_mode) = crate::fs_layout::code_modes(t.open);
    let (mode, acl) = match (is_dir, t.open) {
        (true, false) => (dir_mode, crate::fs_layout::code_dir_acl(served)),
        (false, false) => (file_mode, crate::fs_layout::code_file_acl(served)),
        (true, true) => (dir_mode, crate::fs_layout::open_dir_acl(served)),
        (false, true) => (file_mode, crate::fs_layout::open_file_acl(served)),
    };
    // Opening keeps each owner; locking hands everything to the owner.
    let uid = if t.open { m.uid() } else { t.owner_uid };
    let want = acl_xattr::encode(&acl.replace("WEB", &t.web_uid.to_string())).map_err(|why| {
        SitesError::Site {
            domain: String::new(),
            why,
        }
    })?;
    let now = state_of(f, full, rel, &m, is_dir)?;
    let want_default = if is_dir { want.default.clone() } else { None };
    if now.uid != uid
        || now.gid != t.gid
        || now.mode != mode
        || now.access != want.access
        || now.default != want_default
    {
        out.changed.push(now);
        if !dry_run {
            apply(f, full, uid, t.gid, mode, &want, is_dir)?;
        }
    }
    if !is_dir {
        return Ok(());
    }
    if depth >= MAX_DEPTH {
        return Err(SitesError::Site {
            domain: String::new(),
            why: format!(
                "{} is nested deeper than {MAX_DEPTH} levels",
                full.display()
            ),
        });
    }
    let mut names: Vec<OsString> = std::fs::read_dir(fd_path(f))
        .map_err(|e| SitesError::io(full, e))?
        .filter_map(|e| e.ok().map(|e| e.file_name()))
        .collect();
    names.sort();
    for name in names {
        let child_full = full.join(&name);
        if t.keep.contains(&child_full) {
            continue;
        }
        let child = match open_nofollow(&fd_path(f).join(&name)) {
            Ok(c) => c,
            // A symlink (ELOOP), a socket (ENXIO) or an entry gone since
            // the listing: nothing to re-lock.
            Err(_) => {
                out.other += 1;
                continue;
            }
        };
        visit(
            &child,
            &child_full,
            &rel.join(&name),
            t,
            dry_run,
            depth + 1,
            out,
        )?;
    }
    Ok(())
}

/// Puts inodes back as [`relock`] found them (the undo).
pub fn restore(root: &Path, states: &[InodeState]) -> Result<()> {
    for s in states.iter().rev() {
        let full = root.join(&s.rel);
        let f = open_beneath(root, &s.rel).map_err(|e| SitesError::io(&full, e))?;
        let m = f.metadata().map_err(|e| SitesError::io(&full, e))?;
        let enc = Encoded {
            access: s.access.clone(),
            default: s.default.clone(),
        };
        apply(&f, &full, s.uid, s.gid, s.mode, &enc, m.is_dir())?;
    }
    Ok(())
}

fn state_of(
    f: &File,
    full: &Path,
    rel: &Path,
    m: &std::fs::Metadata,
    is_dir: bool,
) -> Result<InodeState> {
    let get = |name: &str| f.get_xattr(name).map_err(|e| SitesError::io(full, e));
    Ok(InodeState {
        rel: rel.to_path_buf(),
        uid: m.uid(),
        gid: m.gid(),
        mode: m.mode() & 0o7777,
        access: get(acl_xattr::ACCESS)?,
        default: if is_dir {
            get(acl_xattr::DEFAULT)?
        } else {
            None
        },
    })
}

/// Owner, ACL and then mode (the mode last: it sets the mask from its
/// group bits, which the ACLs here agree with, and the setgid bit).
fn apply(
    f: &File,
    full: &Path,
    uid: u32,
    gid: u32,
    mode: u32,
    acl: &Encoded,
    is_dir: bool,
) -> Result<()> {
    let io = |e| SitesError::io(full, e);
    std::os::unix::fs::fchown(f, Some(uid), Some(gid)).map_err(io)?;
    set_or_remove(f, acl_xattr::ACCESS, acl.access.as_deref()).map_err(io)?;
    if is_dir {
        set_or_remove(f, acl_xattr::DEFAULT, acl.default.as_deref()).map_err(io)?;
    }
    f.set_permissions(std::fs::Permissions::from_mode(mode))
        .map_err(io)
}

fn set_or_remove(f: &File, name: &str, v: Option<&[u8]>) -> std::io::Result<()> {
    match v {
        Some(v) => f.set_xattr(name, v),
        None => match f.remove_xattr(name) {
            Err(e) if e.raw_os_error() == Some(corral_sys::nix::errno::Errno::ENODATA as i32) => {
                Ok(())
            }
            r => r,
        },
    }
}

/// `/proc/self/fd/N`: the open directory itself, whatever its path is now.
pub(crate) fn fd_path(f: &File) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", f.as_raw_fd()))
}

fn nofollow() -> i32 {
    (OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_NOCTTY | OFlag::O_CLOEXEC).bits()
}

fn open_nofollow(p: &Path) -> std::io::Result<File> {
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nofollow())
        .open(p)
}

pub(crate) fn open_dir_nofollow(p: &Path) -> std::io::Result<File> {
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nofollow() | OFlag::O_DIRECTORY.bits())
        .open(p)
}

/// Opens `root/rel` one component at a time, none of them a symlink.
pub(crate) fn open_beneath(root: &Path, rel: &Path) -> std::io::Result<File> {
    let mut f = open_dir_nofollow(root)?;
    for c in rel.components() {
        f = open_nofollow(&fd_path(&f).join(c.as_os_str()))?;
    }
    Ok(f)
}
