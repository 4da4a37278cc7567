//! The transaction: every change is made through a [`Txn`], which records
//! how to undo it before the next step runs. When a step fails, the undo
//! list runs in reverse and the host is as it was before the command (the
//! e2e tests compare snapshots of every touched path, user and ACL).
//!
//! Reloads are undone last: after every file is restored, the pool and
//! the web server reload once more so they run the restored configuration.
//! Irreversible work (deleting a removed site's files) is deferred to
//! [`Txn::commit`], after every step succeeded.
//!
//! `CORRAL_SITES_FAIL_AT=<step>` makes that step fail before it changes
//! anything: the test hook that proves each step's rollback.

use std::io::Write as _;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::acl;
use crate::error::{Result, SitesError};
use crate::users;

/// The environment variable of the failure-injection hook.
pub const FAIL_AT_ENV: &str = "CORRAL_SITES_FAIL_AT";

/// A file's full state, to put it back.
#[derive(Debug, Clone)]
struct FileState {
    content: Vec<u8>,
    mode: u32,
    uid: u32,
    gid: u32,
}

/// Something that must be reloaded again after a rollback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reload {
    /// `corral reload POOL` on this control socket.
    Pool { socket: PathBuf, pool: String },
    /// A web server reload command (run with `sh -c`).
    WebServer(String),
    /// sshd's reload command (run with `sh -c`), after an SFTP change.
    Sshd(String),
}

#[derive(Debug)]
enum Undo {
    /// We created this directory: remove it and what it holds.
    RemoveTree(PathBuf),
    /// We changed owner/mode/ACL: `setfacl --restore` this dump.
    RestoreAcl(String),
    /// We wrote or removed a file: put the old one back (or none).
    RestoreFile(PathBuf, Option<FileState>),
    /// We replaced or created a symlink.
    RestoreLink(PathBuf, Option<PathBuf>),
    /// We created a temporary file.
    RemoveFile(PathBuf),
    DelUser(String),
    DelGroup(String),
    AddGroup(users::Group),
    AddUser(users::User, String),
    Rename {
        from: PathBuf,
        to: PathBuf,
    },
    Reload(Reload),
    /// We changed a group's disk quota: set the old limit again.
    RestoreQuota(crate::quota::Limit),
    /// We re-locked a tree: put each inode's owner, mode and ACL back.
    RestoreInodes(PathBuf, Vec<crate::relock::InodeState>),
}

/// Work deferred until every step succeeded.
#[derive(Debug)]
enum Commit {
    RemoveTree(PathBuf),
}

/// Who should own a directory: ids to apply, and names to print (in a dry
/// run the accounts may not exist yet, and their ids are not known).
#[derive(Debug, Clone)]
pub struct Owner {
    pub uid: u32,
    pub gid: u32,
    /// `user:group`.
    pub label: String,
}

impl Owner {
    pub fn root() -> Owner {
        Owner {
            uid: 0,
            gid: 0,
            label: "root:root".into(),
        }
    }
}

/// A running transaction.
pub struct Txn {
    pub dry_run: bool,
    fail_at: Option<String>,
    undo: Vec<Undo>,
    commit: Vec<Commit>,
    step: String,
    /// Every step entered, in order (dry-run prints them; tests inject a
    /// failure at each).
    pub steps: Vec<String>,
    /// Lines describing each change made (or, in a dry run, that would be).
    pub changes: Vec<String>,
    /// Print changes as they happen.
    pub echo: bool,
}

impl Txn {
    pub fn new(dry_run: bool) -> Txn {
        Txn {
            dry_run,
            fail_at: std::env::var(FAIL_AT_ENV).ok().filter(|s| !s.is_empty()),
            undo: Vec::new(),
            commit: Vec::new(),
            step: String::new(),
            steps: Vec::new(),
            changes: Vec::new(),
            echo: true,
        }
    }

    /// Runs one named step.
    pub fn step<T>(&mut self, name: &str, f: impl FnOnce(&mut Txn) -> Result<T>) -> Result<T> {
        self.step = name.to_string();
        self.steps.push(name.to_string());
        if self.fail_at.as_deref() == Some(name) {
            return Err(SitesError::Injected(name.to_string()));
        }
        f(self)
    }

    /// Says what changed (or would).
    pub fn note(&mut self, what: impl AsRef<str>) {
        let line = format!(
            "[{}] {}{}",
            self.step,
            if self.dry_run { "would " } else { "" },
            what.as_ref()
        );
        if self.echo {
            println!("{line}");
        }
        self.changes.push(line);
    }

    pub fn changed(&self) -> bool {
        !self.changes.is_empty()
    }

    /// Runs `body`; on error undoes everything and reports the step.
    pub fn run<T>(&mut self, body: impl FnOnce(&mut Txn) -> Result<T>) -> Result<T> {
        match body(self) {
            Ok(v) => {
                self.commit()?;
                Ok(v)
            }
            Err(cause) => {
                let step = self.step.clone();
                let rollback_errors = self.rollback();
                Err(SitesError::StepFailed {
                    step,
                    cause: Box::new(cause),
                    rollback_errors,
                })
            }
        }
    }

    fn commit(&mut self) -> Result<()> {
        self.undo.clear();
        for c in std::mem::take(&mut self.commit) {
            match c {
                Commit::RemoveTree(p) => {
                    std::fs::remove_dir_all(&p).map_err(|e| SitesError::io(&p, e))?;
                }
            }
        }
        Ok(())
    }

    /// Undoes in reverse order; returns what could not be undone.
    pub fn rollback(&mut self) -> Vec<String> {
        let mut errors = Vec::new();
        let mut reloads: Vec<Reload> = Vec::new();
        self.commit.clear();
        while let Some(u) = self.undo.pop() {
            // Accounts come first in every command, so their undo comes
            // last: the restored configuration must be live (the pool's
            // workers gone) before userdel, which refuses while the user
            // has processes.
            if matches!(u, Undo::DelUser(_) | Undo::DelGroup(_)) {
                run_reloads(&mut reloads, &mut errors);
            }
            let what = format!("{u:?}");
            let r: Result<()> = match u {
                Undo::RemoveTree(p) => match std::fs::remove_dir_all(&p) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                        Err(SitesError::io(&p, e))
                    }
                    _ => Ok(()),
                },
                Undo::RestoreAcl(dump) => acl::restore(&dump),
                Undo::RestoreFile(p, None) | Undo::RemoveFile(p) => {
                    match std::fs::remove_file(&p) {
                        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                            Err(SitesError::io(&p, e))
                        }
                        _ => Ok(()),
                    }
                }
                Undo::RestoreFile(p, Some(st)) => put_file(&p, &st),
                Undo::RestoreLink(p, prev) => {
                    let _ = std::fs::remove_file(&p);
                    match prev {
                        Some(t) => {
                            std::os::unix::fs::symlink(&t, &p).map_err(|e| SitesError::io(&p, e))
                        }
                        None => Ok(()),
                    }
                }
                Undo::DelUser(n) => users::del_user(&n),
                Undo::DelGroup(n) => users::del_group(&n),
                Undo::AddGroup(g) => users::add_group(&g.name, Some(g.gid)).map(|_| ()),
                Undo::AddUser(u, comment) => {
                    let group = users::group_name_of(u.gid).unwrap_or_else(|| u.gid.to_string());
                    users::add_user(&u.name, &group, &u.home, &u.shell, &comment, Some(u.uid))
                        .map(|_| ())
                }
                Undo::Rename { from, to } => {
                    std::fs::rename(&to, &from).map_err(|e| SitesError::io(&to, e))
                }
                Undo::RestoreQuota(l) => crate::quota::set(&l),
                Undo::RestoreInodes(root, states) => crate::relock::restore(&root, &states),
                Undo::Reload(r) => {
                    if !reloads.contains(&r) {
                        reloads.push(r);
                    }
                    Ok(())
                }
            };
            if let Err(e) = r {
                errors.push(format!("undo {what}: {e}"));
            }
        }
        run_reloads(&mut reloads, &mut errors);
        errors
    }

    // ------------------------------------------------------------ users

    /// The group, created when missing.
    pub fn ensure_group(&mut self, name: &str) -> Result<Option<users::Group>> {
        if let Some(g) = users::group(name)? {
            return Ok(Some(g));
        }
        self.note(format!("create group {name}"));
        if self.dry_run {
            return Ok(None);
        }
        let g = users::add_group(name, None);
        // Even a failed groupadd may have written the entry.
        self.undo.push(Undo::DelGroup(name.to_string()));
        let g = g?;
        Ok(Some(g))
    }

    /// The user, created when missing (never modified when present: the
    /// caller decides whether an existing one is acceptable).
    pub fn ensure_user(
        &mut self,
        name: &str,
        group: &str,
        home: &str,
        shell: &str,
        comment: &str,
    ) -> Result<Option<users::User>> {
        if let Some(u) = users::user(name)? {
            return Ok(Some(u));
        }
        self.note(format!("create user {name} (group {group}, shell {shell})"));
        if self.dry_run {
            return Ok(None);
        }
        let u = users::add_user(name, group, home, shell, comment, None);
        self.undo.push(Undo::DelUser(name.to_string()));
        Ok(Some(u?))
    }

    pub fn delete_user(&mut self, name: &str) -> Result<()> {
        let Some(u) = users::user(name)? else {
            return Ok(());
        };
        let comment = users::comment_of(name)?.unwrap_or_default();
        self.note(format!("delete user {name} (uid {})", u.uid));
        if self.dry_run {
            return Ok(());
        }
        // userdel also drops the user's same-named primary group
        // (USERGROUPS_ENAB); the undo must bring that back first.
        let group_before = users::group_name_of(u.gid)
            .map(|g| users::group(&g))
            .transpose()?
            .flatten();
        users::del_user(name)?;
        self.undo.push(Undo::AddUser(u, comment));
        if let Some(g) = group_before {
            if users::group(&g.name)?.is_none() {
                self.undo.push(Undo::AddGroup(g));
            }
        }
        Ok(())
    }

    pub fn delete_group(&mut self, name: &str) -> Result<()> {
        let Some(g) = users::group(name)? else {
            return Ok(());
        };
        self.note(format!("delete group {name} (gid {})", g.gid));
        if self.dry_run {
            return Ok(());
        }
        users::del_group(name)?;
        self.undo.push(Undo::AddGroup(g));
        Ok(())
    }

    // ------------------------------------------------------------ directories

    /// A directory with this owner and mode (setgid included). An existing
    /// symlink or non-directory is refused: a tenant could otherwise point
    /// its own `logs` at /etc and have root chown it.
    /// Returns true when this transaction created it.
    pub fn ensure_dir(&mut self, path: &Path, mode: u32, owner: &Owner) -> Result<bool> {
        let (uid, gid) = (owner.uid, owner.gid);
        match std::fs::symlink_metadata(path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                self.note(format!(
                    "create {} ({mode:04o}, {})",
                    path.display(),
                    owner.label
                ));
                if self.dry_run {
                    return Ok(true);
                }
                std::fs::create_dir(path).map_err(|e| SitesError::io(path, e))?;
                self.undo.push(Undo::RemoveTree(path.to_path_buf()));
                std::os::unix::fs::lchown(path, Some(uid), Some(gid))
                    .map_err(|e| SitesError::io(path, e))?;
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
                    .map_err(|e| SitesError::io(path, e))?;
                Ok(true)
            }
            Err(e) => Err(SitesError::io(path, e)),
            Ok(m) if !m.file_type().is_dir() => Err(SitesError::Site {
                domain: String::new(),
                why: format!(
                    "refusing to use {}: it exists and is not a directory (symlink or file)",
                    path.display()
                ),
            }),
            Ok(m) => {
                if m.mode() & 0o7777 != mode || m.uid() != uid || m.gid() != gid {
                    self.note(format!(
                        "fix {}: {:04o} {} -> {mode:04o} {}",
                        path.display(),
                        m.mode() & 0o7777,
                        ids_label(m.uid(), m.gid()),
                        owner.label
                    ));
                    if self.dry_run {
                        return Ok(false);
                    }
                    let dump = acl::dump(path)?;
                    self.undo.push(Undo::RestoreAcl(dump));
                    std::os::unix::fs::lchown(path, Some(uid), Some(gid))
                        .map_err(|e| SitesError::io(path, e))?;
                    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
                        .map_err(|e| SitesError::io(path, e))?;
                }
                Ok(false)
            }
        }
    }

    /// The ACL of `path` equals `spec` (`setfacl --set` syntax).
    pub fn ensure_acl(&mut self, path: &Path, spec: &str, created: bool) -> Result<()> {
        if self.dry_run && created {
            self.note(format!("set ACL {spec} on {}", path.display()));
            return Ok(());
        }
        if acl::current_lines(path)? == acl::desired_lines(spec) {
            return Ok(());
        }
        self.note(format!("set ACL {spec} on {}", path.display()));
        if self.dry_run {
            return Ok(());
        }
        if !created {
            let dump = acl::dump(path)?;
            self.undo.push(Undo::RestoreAcl(dump));
        }
        acl::set(path, spec)
    }

    /// Re-locks a dir `corral.writable` no longer lists, and says what
    /// changed (see [`relock`](crate::relock)).
    pub fn relock_tree(&mut self, root: &Path, target: &crate::relock::Target) -> Result<()> {
        let mut out = crate::relock::Outcome::default();
        let walked = crate::relock::relock(root, target, self.dry_run, &mut out);
        if !self.dry_run && !out.changed.is_empty() {
            self.undo
                .push(Undo::RestoreInodes(root.to_path_buf(), out.changed.clone()));
        }
        walked?;
        if out.changed.is_empty() && out.foreign.is_empty() {
            return Ok(());
        }
        let n = out.changed.len();
        let entries = format!("{n} entr{}", if n == 1 { "y" } else { "ies" });
        let mut what = if target.open {
            format!(
                "unlock {} ({}): {entries} opened to PHP (group write, dirs 2770, files 0660)",
                root.display(),
                target.reason
            )
        } else {
            format!(
                "re-lock {} ({}): {entries} back to read-only for PHP \
                 (owner {}, dirs 2750, files 0640, no group write)",
                root.display(),
                target.reason,
                target.owner
            )
        };
        if !out.foreign.is_empty() {
            what.push_str(&format!(
                "; left {} entr{} owned by other users as they are: {}",
                out.foreign.len(),
                if out.foreign.len() == 1 { "y" } else { "ies" },
                out.foreign
                    .iter()
                    .take(5)
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        self.note(what);
        Ok(())
    }

    /// Writes a `tar.gz` of `src` (owners, modes, ACLs and xattrs kept,
    /// symlinks stored as links) to `dest`, mode 0600 root; removed again
    /// on rollback.
    pub fn archive_tree(&mut self, src: &Path, dest: &Path) -> Result<()> {
        self.note(format!("archive {} to {}", src.display(), dest.display()));
        if self.dry_run {
            return Ok(());
        }
        let (Some(parent), Some(name)) = (src.parent(), src.file_name()) else {
            return Err(SitesError::Site {
                domain: String::new(),
                why: format!("cannot archive {}", src.display()),
            });
        };
        // Created 0600 before tar writes a byte: the archive holds every
        // secret of the site.
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(dest)
            .map_err(|e| SitesError::io(dest, e))?;
        self.undo.push(Undo::RemoveFile(dest.to_path_buf()));
        let out = std::process::Command::new("tar")
            .args([
                "--create",
                "--gzip",
                "--acls",
                "--xattrs",
                "--numeric-owner",
                "--file",
            ])
            .arg(dest)
            .arg("--directory")
            .arg(parent)
            .arg("--")
            .arg(name)
            .output()
            .map_err(|e| SitesError::Command {
                command: "tar --create".into(),
                output: e.to_string(),
            })?;
        if !out.status.success() {
            return Err(SitesError::Command {
                command: format!("tar --create --file {}", dest.display()),
                output: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            });
        }
        Ok(())
    }

    /// Moves a tree away now (undone by moving it back) and deletes it at
    /// commit: removal of a site's files is the one thing no undo can
    /// restore, so it happens only once everything else worked.
    pub fn remove_tree_at_commit(&mut self, path: &Path) -> Result<()> {
        match std::fs::symlink_metadata(path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(SitesError::io(path, e)),
            Ok(_) => {}
        }
        self.note(format!("remove {} and everything in it", path.display()));
        if self.dry_run {
            return Ok(());
        }
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let parked = path.with_file_name(format!(".{name}.corral-removed-{}", std::process::id()));
        std::fs::rename(path, &parked).map_err(|e| SitesError::io(path, e))?;
        self.undo.push(Undo::Rename {
            from: path.to_path_buf(),
            to: parked.clone(),
        });
        self.commit.push(Commit::RemoveTree(parked));
        Ok(())
    }

    // ------------------------------------------------------------ files

    /// Writes `content` (atomically: temp file + rename) unless the file
    /// already has exactly this content, mode and owner. Returns whether
    /// it changed.
    pub fn write_file(
        &mut self,
        path: &Path,
        content: &[u8],
        mode: u32,
        uid: u32,
        gid: u32,
    ) -> Result<bool> {
        let prev = read_state(path)?;
        if let Some(p) = &prev {
            if p.content == content && p.mode == mode && p.uid == uid && p.gid == gid {
                return Ok(false);
            }
        }
        self.note(format!(
            "{} {} ({mode:04o} {})",
            if prev.is_some() { "update" } else { "write" },
            path.display(),
            ids_label(uid, gid)
        ));
        if self.dry_run {
            if self.echo {
                let before = prev.as_ref().map(|p| p.content.as_slice()).unwrap_or(b"");
                print!("{}", text_diff(path, before, content));
            }
            return Ok(true);
        }
        if let Some(dir) = path.parent() {
            if !dir.is_dir() {
                return Err(SitesError::io(
                    dir,
                    std::io::Error::new(std::io::ErrorKind::NotFound, "directory does not exist"),
                ));
            }
        }
        self.undo.push(Undo::RestoreFile(path.to_path_buf(), prev));
        put_file(
            path,
            &FileState {
                content: content.to_vec(),
                mode,
                uid,
                gid,
            },
        )?;
        Ok(true)
    }

    /// Removes a file (or symlink) if present. Returns whether it existed.
    pub fn remove_file(&mut self, path: &Path) -> Result<bool> {
        let meta = match std::fs::symlink_metadata(path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(SitesError::io(path, e)),
            Ok(m) => m,
        };
        self.note(format!("remove {}", path.display()));
        if self.dry_run {
            return Ok(true);
        }
        if meta.file_type().is_symlink() {
            let target = std::fs::read_link(path).map_err(|e| SitesError::io(path, e))?;
            std::fs::remove_file(path).map_err(|e| SitesError::io(path, e))?;
            self.undo
                .push(Undo::RestoreLink(path.to_path_buf(), Some(target)));
        } else {
            let prev = read_state(path)?;
            std::fs::remove_file(path).map_err(|e| SitesError::io(path, e))?;
            self.undo.push(Undo::RestoreFile(path.to_path_buf(), prev));
        }
        Ok(true)
    }

    /// A symlink `link -> target` (what a2ensite makes). Returns whether
    /// it changed.
    pub fn ensure_symlink(&mut self, link: &Path, target: &Path) -> Result<bool> {
        let prev = match std::fs::symlink_metadata(link) {
            Ok(m) if m.file_type().is_symlink() => {
                let t = std::fs::read_link(link).map_err(|e| SitesError::io(link, e))?;
                if t == target {
                    return Ok(false);
                }
                Some(t)
            }
            Ok(_) => {
                return Err(SitesError::Site {
                    domain: String::new(),
                    why: format!("{} exists and is not a symlink", link.display()),
                })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(SitesError::io(link, e)),
        };
        self.note(format!("link {} -> {}", link.display(), target.display()));
        if self.dry_run {
            return Ok(true);
        }
        if prev.is_some() {
            std::fs::remove_file(link).map_err(|e| SitesError::io(link, e))?;
        }
        self.undo.push(Undo::RestoreLink(link.to_path_buf(), prev));
        std::os::unix::fs::symlink(target, link).map_err(|e| SitesError::io(link, e))?;
        Ok(true)
    }

    /// A new file that must not exist yet (`O_EXCL`: never follows a
    /// symlink a tenant planted), removed on rollback.
    pub fn create_temp_file(
        &mut self,
        path: &Path,
        content: &[u8],
        uid: u32,
        gid: u32,
    ) -> Result<()> {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)
            .map_err(|e| SitesError::io(path, e))?;
        self.undo.push(Undo::RemoveFile(path.to_path_buf()));
        f.write_all(content).map_err(|e| SitesError::io(path, e))?;
        std::os::unix::fs::fchown(&f, Some(uid), Some(gid)).map_err(|e| SitesError::io(path, e))?;
        f.set_permissions(std::fs::Permissions::from_mode(0o640))
            .map_err(|e| SitesError::io(path, e))?;
        Ok(())
    }

    /// The group's block limit on `device` is `bytes` (0 = none). Returns
    /// whether it changed.
    pub fn ensure_group_quota(&mut self, device: &Path, gid: u32, bytes: u64) -> Result<bool> {
        let now = crate::quota::get(device, gid)?;
        if now.bytes == bytes {
            return Ok(false);
        }
        self.note(format!(
            "set the disk quota of group {gid} on {} to {}",
            device.display(),
            if bytes == 0 {
                "none".to_string()
            } else {
                crate::sizing::mib(bytes)
            }
        ));
        if self.dry_run {
            return Ok(true);
        }
        let want = crate::quota::Limit {
            device: device.to_path_buf(),
            gid,
            bytes,
        };
        self.undo.push(Undo::RestoreQuota(now));
        crate::quota::set(&want)?;
        Ok(true)
    }

    /// Records that `r` happened, so a rollback does it again at the end.
    pub fn reloaded(&mut self, r: Reload) {
        self.undo.push(Undo::Reload(r));
    }
}

/// `name:group` of ids that exist, the numbers otherwise.
fn ids_label(uid: u32, gid: u32) -> String {
    let u = users::user_name_of(uid).unwrap_or_else(|| uid.to_string());
    let g = users::group_name_of(gid).unwrap_or_else(|| gid.to_string());
    format!("{u}:{g}")
}

/// A unified diff of a file's content, for dry runs (empty when equal;
/// a note for content that is not text).
pub fn text_diff(path: &Path, before: &[u8], after: &[u8]) -> String {
    let (Ok(a), Ok(b)) = (std::str::from_utf8(before), std::str::from_utf8(after)) else {
        return format!("    (binary content of {} changes)\n", path.display());
    };
    if a == b {
        return String::new();
    }
    let shown = path.display().to_string();
    similar::TextDiff::from_lines(a, b)
        .unified_diff()
        .context_radius(2)
        .header(&shown, &shown)
        .to_string()
}

/// Runs (once) the reloads a rollback owes.
fn run_reloads(reloads: &mut Vec<Reload>, errors: &mut Vec<String>) {
    for r in reloads.drain(..) {
        let res = match &r {
            Reload::Pool { socket, pool } => crate::fpm::reload_pool(socket, pool).map(|_| ()),
            Reload::WebServer(cmd) | Reload::Sshd(cmd) => {
                crate::webserver::run_shell(cmd).map(|_| ())
            }
        };
        if let Err(e) = res {
            errors.push(format!("reload after rollback ({r:?}): {e}"));
        }
    }
}

fn read_state(path: &Path) -> Result<Option<FileState>> {
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(SitesError::io(path, e)),
        Ok(m) if !m.file_type().is_file() => Err(SitesError::Site {
            domain: String::new(),
            why: format!("{} exists and is not a regular file", path.display()),
        }),
        Ok(m) => Ok(Some(FileState {
            content: std::fs::read(path).map_err(|e| SitesError::io(path, e))?,
            mode: m.mode() & 0o7777,
            uid: m.uid(),
            gid: m.gid(),
        })),
    }
}

/// Temp file in the same directory (a dot name: nginx's and php-fpm's
/// include globs skip it), then rename over the target.
fn put_file(path: &Path, st: &FileState) -> Result<()> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.corral-tmp"));
    let _ = std::fs::remove_file(&tmp);
    let write = || -> std::io::Result<()> {
        // Created with the final permission bits (umask can only narrow
        // them), so a 0600 pool file is never readable by others, not even
        // between the write and the chmod below.
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(st.mode & 0o777)
            .open(&tmp)?;
        f.write_all(&st.content)?;
        f.sync_all()?;
        std::os::unix::fs::fchown(&f, Some(st.uid), Some(st.gid))?;
        f.set_permissions(std::fs::Permissions::from_mode(st.mode))?;
        std::fs::rename(&tmp, path)
    };
    write().map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        SitesError::io(path, e)
    })
}
