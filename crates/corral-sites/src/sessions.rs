//! Session cleanup per site: `corral site gc-sessions`, run from the cron
//! file that `site add` installs (see [`host_files`](crate::host_files)).
//!
//! Debian turns PHP's own session GC off (`session.gc_probability = 0`)
//! and cleans from cron instead, but its job (`/usr/lib/php/sessionclean`)
//! only knows the `save_path` of each SAPI's php.ini. Every site here has
//! its own `sessions` dir, so nothing cleaned them. This does what PHP's
//! files handler would do in each site's dir: remove `sess_*` regular files
//! whose mtime is older than that site's `session.gc_maxlifetime` (the
//! pool's `php_*value`, else php.ini's, else PHP's 1440 s). mtime is what
//! PHP's own GC compares, and PHP refreshes it on every request that uses
//! the session, lazy writes included.
//!
//! It runs as root, but never by path inside the tenant's tree: the
//! sessions dir is opened component by component below the home with
//! `O_NOFOLLOW`, and entries are examined and unlinked relative to that
//! open dir, so a tenant that swaps its dir for a link to another site's
//! cannot make it clean there. Unlinking removes a name, never follows it.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::error::{Result, SitesError};
use crate::paths::Paths;
use crate::registry::Record;

/// PHP's built-in `session.gc_maxlifetime`.
pub const PHP_DEFAULT_MAXLIFETIME: u64 = 1440;

/// One site's sessions, as its pool sees them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiteSessions {
    pub domain: String,
    pub dir: PathBuf,
    /// Subdir levels of `save_path = "N;/path"`.
    pub depth: usize,
    pub maxlifetime: Duration,
    /// Where the lifetime came from (pool, php.ini, PHP's default).
    pub source: String,
}

/// What one cleanup did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cleaned {
    pub removed: usize,
    pub kept: usize,
}

/// The sessions dir and lifetime of a registered site.
pub fn of_site(paths: &Paths, rec: &Record) -> Result<SiteSessions> {
    let spec = &rec.spec;
    let d = crate::plan::desired(spec, paths)?;
    let values = crate::render_pool::values(spec, paths, &d.layout, &d.resolved);
    let php = |key: &str| {
        ["php_admin_value", "php_value"].iter().find_map(|k| {
            d.resolved.get(&format!("{k}[{key}]")).map(|v| {
                crate::template::substitute_line(v, &values)
                    .trim()
                    .to_string()
            })
        })
    };
    let (depth, dir) = match php("session.save_path") {
        Some(p) => parse_save_path(&p),
        None => (0, d.layout.sessions.clone()),
    };
    let (maxlifetime, source) = match php("session.gc_maxlifetime") {
        Some(v) => (parse_secs(&v, "the pool")?, "the pool".to_string()),
        None => {
            let ini = paths.php_ini_dir_for(&spec.php_version);
            match ini_value(&ini, "session.gc_maxlifetime") {
                Some((v, file)) => (parse_secs(&v, &file)?, file),
                None => (PHP_DEFAULT_MAXLIFETIME, "PHP's default".to_string()),
            }
        }
    };
    Ok(SiteSessions {
        domain: spec.domain.clone(),
        dir,
        depth,
        maxlifetime: Duration::from_secs(maxlifetime),
        source,
    })
}

/// `"N;/path"`, `"N;MODE;/path"` or `"/path"` (PHP's files handler).
pub fn parse_save_path(v: &str) -> (usize, PathBuf) {
    let v = v.trim().trim_matches('"');
    let parts: Vec<&str> = v.split(';').collect();
    let path = PathBuf::from(parts.last().copied().unwrap_or(""));
    let depth = if parts.len() > 1 {
        parts[0].trim().parse().unwrap_or(0)
    } else {
        0
    };
    (depth, path)
}

fn parse_secs(v: &str, from: &str) -> Result<u64> {
    v.trim()
        .trim_matches('"')
        .parse::<u64>()
        .ok()
        .filter(|s| *s > 0)
        .ok_or_else(|| SitesError::Setting {
            key: "session.gc_maxlifetime".into(),
            why: format!("'{v}' (from {from}) is not a number of seconds"),
        })
}

/// The last `key = value` in `dir/php.ini` and then `dir/conf.d/*.ini` (the
/// order PHP reads them), with the file it came from.
pub fn ini_value(dir: &Path, key: &str) -> Option<(String, String)> {
    let mut files = vec![dir.join("php.ini")];
    if let Ok(rd) = std::fs::read_dir(dir.join("conf.d")) {
        let mut more: Vec<PathBuf> = rd
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "ini"))
            .collect();
        more.sort();
        files.extend(more);
    }
    let mut found = None;
    for f in files {
        let Ok(text) = std::fs::read_to_string(&f) else {
            continue;
        };
        for line in text.lines() {
            let line = line.split(';').next().unwrap_or("").trim();
            if let Some((k, v)) = line.split_once('=') {
                if k.trim() == key {
                    found = Some((v.trim().to_string(), f.display().to_string()));
                }
            }
        }
    }
    found
}

/// One site's cleanup, for the command's output.
#[derive(Debug, Clone)]
pub struct GcReport {
    pub domain: String,
    pub sessions: Option<SiteSessions>,
    pub cleaned: Cleaned,
    pub error: Option<String>,
}

impl GcReport {
    pub fn line(&self) -> String {
        match (&self.error, &self.sessions) {
            (Some(e), _) => format!("{}: {e}", self.domain),
            (None, Some(s)) => format!(
                "{}: removed {} session file(s) older than {} s ({}), kept {}, in {}",
                self.domain,
                self.cleaned.removed,
                s.maxlifetime.as_secs(),
                s.source,
                self.cleaned.kept,
                s.dir.display()
            ),
            (None, None) => format!("{}: nothing to clean", self.domain),
        }
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "site": self.domain,
            "dir": self.sessions.as_ref().map(|s| s.dir.clone()),
            "gc_maxlifetime": self.sessions.as_ref().map(|s| s.maxlifetime.as_secs()),
            "lifetime_from": self.sessions.as_ref().map(|s| s.source.clone()),
            "removed": self.cleaned.removed,
            "kept": self.cleaned.kept,
            "error": self.error,
        })
    }
}

/// Cleans every registered site (or those in `only`); one report each,
/// a site's failure does not stop the others.
pub fn gc_all(paths: &Paths, only: &[String], now: SystemTime) -> Result<Vec<GcReport>> {
    let all = crate::registry::all(paths)?;
    for d in only {
        if !all.iter().any(|r| &r.spec.domain == d) {
            return Err(SitesError::Site {
                domain: d.clone(),
                why: "is not a corral site".into(),
            });
        }
    }
    let mut out = Vec::new();
    for rec in all
        .iter()
        .filter(|r| only.is_empty() || only.contains(&r.spec.domain))
    {
        let home = paths.home(&rec.spec.user);
        let mut report = GcReport {
            domain: rec.spec.domain.clone(),
            sessions: None,
            cleaned: Cleaned::default(),
            error: None,
        };
        match of_site(paths, rec) {
            Ok(s) => {
                match clean(&home, &s, now) {
                    Ok(c) => report.cleaned = c,
                    Err(e) => report.error = Some(e.to_string()),
                }
                report.sessions = Some(s);
            }
            Err(e) => report.error = Some(e.to_string()),
        }
        out.push(report);
    }
    Ok(out)
}

/// Removes the site's session files older than its lifetime, as of `now`.
pub fn clean(home: &Path, s: &SiteSessions, now: SystemTime) -> Result<Cleaned> {
    let rel = s.dir.strip_prefix(home).map_err(|_| SitesError::Site {
        domain: s.domain.clone(),
        why: format!(
            "session.save_path {} is not in the home {}; not cleaned",
            s.dir.display(),
            home.display()
        ),
    })?;
    let dir = crate::relock::open_beneath(home, rel).map_err(|e| SitesError::io(&s.dir, e))?;
    if !dir
        .metadata()
        .map_err(|e| SitesError::io(&s.dir, e))?
        .is_dir()
    {
        return Err(SitesError::Site {
            domain: s.domain.clone(),
            why: format!("{} is not a directory", s.dir.display()),
        });
    }
    let cutoff = now
        .checked_sub(s.maxlifetime)
        .unwrap_or(SystemTime::UNIX_EPOCH);
    let mut out = Cleaned::default();
    clean_dir(&dir, &s.dir, s.depth, cutoff, &mut out)?;
    Ok(out)
}

fn clean_dir(
    dir: &std::fs::File,
    shown: &Path,
    depth: usize,
    cutoff: SystemTime,
    out: &mut Cleaned,
) -> Result<()> {
    let here = crate::relock::fd_path(dir);
    let entries = std::fs::read_dir(&here).map_err(|e| SitesError::io(shown, e))?;
    for e in entries.flatten() {
        let name = e.file_name();
        let at = here.join(&name);
        // lstat: a link is never followed.
        let Ok(m) = std::fs::symlink_metadata(&at) else {
            continue;
        };
        if depth > 0 && m.is_dir() {
            if let Ok(sub) = crate::relock::open_dir_nofollow(&at) {
                clean_dir(&sub, &shown.join(&name), depth - 1, cutoff, out)?;
            }
            continue;
        }
        let is_session = name.to_str().is_some_and(|n| n.starts_with("sess_"));
        if !is_session || !m.file_type().is_file() {
            continue;
        }
        let old = m.modified().map(|t| t < cutoff).unwrap_or(false);
        if !old {
            out.kept += 1;
            continue;
        }
        match std::fs::remove_file(&at) {
            Ok(()) => out.removed += 1,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(SitesError::io(shown.join(&name), e)),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn save_paths() {
        assert_eq!(parse_save_path("/h/s"), (0, PathBuf::from("/h/s")));
        assert_eq!(parse_save_path("2;/h/s"), (2, PathBuf::from("/h/s")));
        assert_eq!(
            parse_save_path("\"1;0600;/h/s\""),
            (1, PathBuf::from("/h/s"))
        );
    }

    #[test]
    fn ini_values_last_one_wins() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(
            d.path().join("php.ini"),
            "[Session]\n;session.gc_maxlifetime = 1\nsession.gc_maxlifetime = 1440\n",
        )
        .unwrap();
        std::fs::create_dir(d.path().join("conf.d")).unwrap();
        std::fs::write(
            d.path().join("conf.d/20-x.ini"),
            "session.gc_maxlifetime=600 ; x\n",
        )
        .unwrap();
        let (v, f) = ini_value(d.path(), "session.gc_maxlifetime").unwrap();
        assert_eq!(v, "600");
        assert!(f.ends_with("20-x.ini"));
        assert_eq!(ini_value(d.path(), "nothing"), None);
    }

    #[test]
    fn old_sessions_go_fresh_ones_stay_links_are_not_followed() {
        let home = tempfile::tempdir().unwrap();
        let dir = home.path().join("sessions");
        std::fs::create_dir(&dir).unwrap();
        for n in ["sess_old", "sess_new", "not_a_session"] {
            std::fs::write(dir.join(n), "x").unwrap();
        }
        let elsewhere = tempfile::tempdir().unwrap();
        std::fs::write(elsewhere.path().join("sess_victim"), "v").unwrap();
        std::os::unix::fs::symlink(elsewhere.path().join("sess_victim"), dir.join("sess_link"))
            .unwrap();
        let s = SiteSessions {
            domain: "a.test".into(),
            dir: dir.clone(),
            depth: 0,
            maxlifetime: Duration::from_secs(100),
            source: "test".into(),
        };
        // Age sess_old by pretending it is 200 s later for everything, then
        // touch sess_new to "now + 200".
        let later = SystemTime::now() + Duration::from_secs(200);
        let f = std::fs::File::options()
            .write(true)
            .open(dir.join("sess_new"))
            .unwrap();
        f.set_modified(later).unwrap();
        let c = clean(home.path(), &s, later).unwrap();
        assert_eq!(
            c,
            Cleaned {
                removed: 1,
                kept: 1
            }
        );
        assert!(!dir.join("sess_old").exists() && dir.join("sess_new").exists());
        assert!(dir.join("not_a_session").exists());
        assert!(elsewhere.path().join("sess_victim").exists());
        // A sessions dir swapped for a link is refused.
        std::fs::remove_dir_all(&dir).unwrap();
        std::os::unix::fs::symlink(elsewhere.path(), &dir).unwrap();
        assert!(clean(home.path(), &s, later).is_err());
        assert!(elsewhere.path().join("sess_victim").exists());
    }
}
