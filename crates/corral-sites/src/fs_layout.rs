//! The directories of a site, with owner, mode and POSIX ACL, derived from
//! the spec. Three parties (see docs/sites.md):
//! * the owner `USER` owns everything (`rwx`);
//! * PHP runs as `USER-php` with primary group `USER`: it reads through
//!   the group and writes only where the group may write;
//! * the web server user gets exactly what it needs by a named ACL entry:
//!   `--x` to traverse the home and `htdocs`, `r-x` in the document root.
//!
//! Everyone else gets nothing (`o::---`): one site's PHP cannot enter
//! another site's home.

use std::path::{Path, PathBuf};

use crate::paths::Paths;
use crate::spec::SiteSpec;

/// One directory to converge; owned by `USER:USER`, except a chroot home
/// (`root:USER`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirSpec {
    /// Step name suffix (`home`, `docroot`, `writable:wp-content/uploads`).
    pub name: String,
    pub path: PathBuf,
    /// Mode including the setgid bit.
    pub mode: u32,
    /// Full ACL in `setfacl --set` syntax, `WEB` standing for the web
    /// server's uid (filled in by the caller).
    pub acl: String,
    /// Owned by root (group still `USER`): the home of an SFTP site,
    /// because sshd chroots only into a root-owned directory.
    pub root_owned: bool,
}

/// The site's paths.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    pub home: PathBuf,
    pub htdocs: PathBuf,
    /// `/home/USER/htdocs/DOMAIN`: the application.
    pub site_dir: PathBuf,
    /// What the web server serves: the site dir or a subdir (`public`).
    pub docroot: PathBuf,
    pub logs: PathBuf,
    pub tmp: PathBuf,
    pub sessions: PathBuf,
    /// Relative dirs PHP may write, below the site dir.
    pub writable: Vec<String>,
    /// `site unlock`: the code dirs are open to PHP for a window.
    pub unlocked: bool,
    /// The owner has SFTP, chrooted to the home: the home is `root:USER`
    /// (same mode and ACL), everything below it stays the owner's.
    pub chroot: bool,
}

/// Read-only code dir: owner rwx, PHP (group) r-x, web server r-x, and
/// the same by default for everything created inside (setgid keeps the
/// group `USER`).
const CODE_ACL: &str = "u::rwx,g::r-x,o::---,u:WEB:r-x,m::r-x,\
d:u::rwx,d:g::r-x,d:o::---,d:u:WEB:r-x,d:m::r-x";
/// Code dir the web server must not read (app code outside the web root).
const CODE_ACL_NO_WEB: &str = "u::rwx,g::r-x,o::---,u:WEB:--x,m::r-x,\
d:u::rwx,d:g::r-x,d:o::---,d:m::r-x";
/// Writable by PHP through the group; served by the web server when it
/// lies inside the web root.
const WRITABLE_WEB_ACL: &str = "u::rwx,g::rwx,o::---,u:WEB:r-x,m::rwx,\
d:u::rwx,d:g::rwx,d:o::---,d:u:WEB:r-x,d:m::rwx";
const WRITABLE_ACL: &str = "u::rwx,g::rwx,o::---,d:u::rwx,d:g::rwx,d:o::---";
/// PHP's upload (and sys_temp) dir: writable like the others, and files
/// created in it carry a read-only web server entry (`d:u:WEB:r--`, never
/// `x`). `move_uploaded_file()` renames the temp file into the uploads dir,
/// and a rename keeps the ACL the file was created with: without this entry
/// every original upload stayed unreadable to the web server (403) while
/// the resized copies, created in place, were served. The dir itself has
/// no web server entry, so the web server cannot enter it: uploads in
/// progress and temp files stay out of its reach, and a moved file is
/// readable exactly where the directories above it let the web server
/// through (the web root's writable dirs), nowhere else. Sessions live in
/// their own dir, which keeps no such entry.
const TMP_ACL: &str = "u::rwx,g::rwx,o::---,d:u::rwx,d:g::rwx,d:u:WEB:r--,d:m::rwx,d:o::---";
/// A code file inside the web root (what a re-lock gives a file PHP wrote),
/// and outside it.
const CODE_FILE_ACL: &str = "u::rw-,g::r--,o::---,u:WEB:r--,m::r--";
const CODE_FILE_ACL_NO_WEB: &str = "u::rw-,g::r--,o::---";

/// A code dir during an unlock window (`site unlock`): the group (PHP)
/// gets `rwx`, by default too, so what PHP creates there stays writable
/// by the group and so by the owner; the web server's entry is unchanged.
const OPEN_CODE_ACL: &str = WRITABLE_WEB_ACL;
const OPEN_CODE_ACL_NO_WEB: &str = "u::rwx,g::rwx,o::---,u:WEB:--x,m::rwx,\
d:u::rwx,d:g::rwx,d:o::---,d:m::rwx";
const OPEN_FILE_ACL: &str = "u::rw-,g::rw-,o::---,u:WEB:r--,m::rw-";
const OPEN_FILE_ACL_NO_WEB: &str = "u::rw-,g::rw-,o::---";

/// Mode of a code dir and a code file, locked or open.
pub fn code_modes(open: bool) -> (u32, u32) {
    if open {
        (0o2770, 0o660)
    } else {
        (0o2750, 0o640)
    }
}

/// The ACL of a code dir during an unlock window.
pub fn open_dir_acl(served: bool) -> &'static str {
    if served {
        OPEN_CODE_ACL
    } else {
        OPEN_CODE_ACL_NO_WEB
    }
}

/// The ACL of a code file during an unlock window.
pub fn open_file_acl(served: bool) -> &'static str {
    if served {
        OPEN_FILE_ACL
    } else {
        OPEN_FILE_ACL_NO_WEB
    }
}

/// The ACL of a read-only code dir, in the web root (`served`) or not.
pub fn code_dir_acl(served: bool) -> &'static str {
    if served {
        CODE_ACL
    } else {
        CODE_ACL_NO_WEB
    }
}

/// The ACL of a read-only code file, in the web root (`served`) or not.
pub fn code_file_acl(served: bool) -> &'static str {
    if served {
        CODE_FILE_ACL
    } else {
        CODE_FILE_ACL_NO_WEB
    }
}

/// Traverse only, for the web server.
const TRAVERSE_ACL: &str = "u::rwx,g::r-x,o::---,u:WEB:--x,m::r-x";

impl Layout {
    pub fn new(spec: &SiteSpec, paths: &Paths, public_dir: &str, writable: &str) -> Layout {
        let unlocked = spec.unlocked_until.is_some();
        let home = paths.home(&spec.user);
        let htdocs = home.join("htdocs");
        let site_dir = htdocs.join(&spec.domain);
        let public_dir = public_dir.trim().trim_matches('/');
        let docroot = if public_dir.is_empty() {
            site_dir.clone()
        } else {
            site_dir.join(public_dir)
        };
        Layout {
            chroot: !spec.sftp_keys.is_empty(),
            logs: home.join("logs"),
            tmp: home.join("tmp"),
            sessions: home.join("sessions"),
            home,
            htdocs,
            site_dir,
            docroot,
            writable: writable
                .split([' ', ','])
                .map(|w| w.trim().trim_matches('/').to_string())
                .filter(|w| !w.is_empty())
                .collect(),
            unlocked,
        }
    }

    /// Every directory, parents first.
    pub fn dirs(&self) -> Vec<DirSpec> {
        let d = |name: &str, path: &Path, mode: u32, acl: &str| DirSpec {
            name: name.to_string(),
            path: path.to_path_buf(),
            mode,
            acl: acl.to_string(),
            root_owned: false,
        };
        let web_serves = |p: &Path| p.starts_with(&self.docroot);
        // Dirs on the way to the docroot need traverse only; dirs in it
        // need read.
        // During an unlock window they are open to the group (PHP).
        let open = self.unlocked;
        let code_acl = |p: &Path| {
            if open {
                open_dir_acl(web_serves(p))
            } else {
                code_dir_acl(web_serves(p))
            }
        };
        let code_mode = code_modes(open).0;
        let home = DirSpec {
            root_owned: self.chroot,
            ..d("home", &self.home, 0o750, TRAVERSE_ACL)
        };
        let mut out = vec![
            home,
            d("htdocs", &self.htdocs, 0o750, TRAVERSE_ACL),
            d("site", &self.site_dir, code_mode, code_acl(&self.site_dir)),
        ];
        if self.docroot != self.site_dir {
            out.push(d(
                "docroot",
                &self.docroot,
                code_mode,
                code_acl(&self.docroot),
            ));
        }
        out.push(d("logs", &self.logs, 0o2770, WRITABLE_ACL));
        out.push(d("tmp", &self.tmp, 0o2770, TMP_ACL));
        out.push(d("sessions", &self.sessions, 0o2770, WRITABLE_ACL));
        for w in &self.writable {
            let full = self.site_dir.join(w);
            // Parents below the site dir are code dirs.
            let mut parents: Vec<PathBuf> = full
                .ancestors()
                .skip(1)
                .take_while(|a| *a != self.site_dir && a.starts_with(&self.site_dir))
                .map(Path::to_path_buf)
                .collect();
            parents.reverse();
            for p in parents {
                if out.iter().any(|x| x.path == p) {
                    continue;
                }
                let rel = p
                    .strip_prefix(&self.site_dir)
                    .unwrap_or(&p)
                    .display()
                    .to_string();
                out.push(d(&format!("parent:{rel}"), &p, code_mode, code_acl(&p)));
            }
            if out.iter().any(|x| x.path == full) {
                continue;
            }
            let acl = if web_serves(&full) {
                WRITABLE_WEB_ACL
            } else {
                WRITABLE_ACL
            };
            out.push(d(&format!("writable:{w}"), &full, 0o2770, acl));
        }
        out
    }
}

/// Rejects writable/public entries that would leave the site dir.
pub fn check_relative(what: &str, rel: &str) -> Result<(), String> {
    if rel.split('/').any(|c| c == ".." || c == ".") || rel.starts_with('/') {
        return Err(format!("{what} '{rel}' must stay below the site dir"));
    }
    if !rel
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b'/'))
    {
        return Err(format!(
            "{what} '{rel}' has characters other than [A-Za-z0-9_./-]"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::{SiteSpec, WebServer};

    fn spec() -> SiteSpec {
        SiteSpec {
            domain: "a.test".into(),
            user: "a-test".into(),
            php_version: "8.2".into(),
            webserver: WebServer::Nginx,
            template: "default".into(),
            sets: Default::default(),
            aliases: vec![],
            shell: "/usr/sbin/nologin".into(),
            enabled: true,
            disk_quota: None,
            tls: None,
            unlocked_until: None,
            sftp_keys: vec![],
        }
    }

    #[test]
    fn laravel_layout() {
        let mut a = vec!["x".to_string()];
        let p = Paths::from_args(&mut a).unwrap();
        let l = Layout::new(&spec(), &p, "public", "storage bootstrap/cache");
        assert_eq!(l.docroot, Path::new("/home/a-test/htdocs/a.test/public"));
        let dirs = l.dirs();
        let names: Vec<_> = dirs.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "home",
                "htdocs",
                "site",
                "docroot",
                "logs",
                "tmp",
                "sessions",
                "writable:storage",
                "parent:bootstrap",
                "writable:bootstrap/cache"
            ]
        );
        // The app dir is not readable by the web server, only traversable.
        assert!(dirs[2].acl.contains("u:WEB:--x"));
        assert!(dirs[3].acl.contains("u:WEB:r-x"));
        assert!(!dirs[7].acl.contains("WEB"));
        // tmp: files made there (uploads) carry a read-only web server
        // entry, the dir itself none; sessions and logs carry none.
        let tmp = dirs.iter().find(|d| d.name == "tmp").unwrap();
        assert!(tmp.acl.contains("d:u:WEB:r--") && !tmp.acl.contains(",u:WEB"));
        for n in ["logs", "sessions"] {
            assert!(!dirs
                .iter()
                .find(|d| d.name == n)
                .unwrap()
                .acl
                .contains("WEB"));
        }
    }

    #[test]
    fn relative_paths() {
        assert!(check_relative("w", "wp-content/uploads").is_ok());
        assert!(check_relative("w", "../x").is_err());
        assert!(check_relative("w", "/etc").is_err());
        assert!(check_relative("w", "a b").is_err());
    }
}
