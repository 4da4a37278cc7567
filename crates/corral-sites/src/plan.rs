//! What `site add/set/enable/disable/remove` do, as ordered steps inside
//! one [`Txn`]. [`apply`] converges the host to a spec (the same code for
//! add, set, enable and disable: each is "this is the spec now"), so a
//! second identical `add` finds nothing to change.
//!
//! Step order (each name is a `CORRAL_SITES_FAIL_AT` target):
//! `sizing`, `group`, `user`, `php-user`, `dir:NAME`/`acl:NAME` per
//! directory, `disk-quota`, `pool-dir`, `pool-file`, `pool-validate`, `vhost-file`, `vhost-enable`
//! (Apache), `webserver-test`, `pool-reload`, `webserver-reload`,
//! `verify`, (certbot and TLS steps), `logrotate`, `cron`, (SFTP)
//! `sftp-keys`, `sshd-config`, `sshd-test`, `sshd-reload`, `registry`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::{Result, SitesError};
use crate::fpm::{self, Reloaded};
use crate::fs_layout::{self, Layout};
use crate::journal::{Reload, Txn};
use crate::paths::Paths;
use crate::registry::{self, Record};
use crate::render_pool;
use crate::sizing;
use crate::spec::{SiteSpec, WebServer};
use crate::template::{Library, Resolved};
use crate::users;
use crate::verify;
use crate::webserver;

/// Pool files hold `env[]` secrets, paths and every tenant's limits; only
/// root (corral, php-fpm) reads them. The web servers need the socket,
/// never the pool file.
pub const POOL_FILE_MODE: u32 = 0o600;
/// The pool dir is closed too: a listing would name every tenant's domain.
pub const POOL_DIR_MODE: u32 = 0o700;

/// Flags that change how a command runs, not what the site is.
#[derive(Debug, Clone, Copy, Default)]
pub struct RunOptions {
    pub dry_run: bool,
    /// Proceed (with a warning) when the memory plan does not fit.
    pub force: bool,
    /// Write the files even though no corral master runs (its next start
    /// loads them); without it, a change to an enabled site needs one.
    pub offline: bool,
}

/// Everything rendered for a spec.
#[derive(Debug, Clone)]
pub struct Desired {
    pub resolved: Resolved,
    pub layout: Layout,
    pub pool_text: String,
    pub vhost_text: String,
}

/// The files a spec puts outside the home (pool, vhost, Apache link).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiteFiles {
    /// `DOMAIN.conf` (live) and `DOMAIN.conf.disabled`.
    pub pool_live: PathBuf,
    pub pool_disabled: PathBuf,
    /// nginx: sites-enabled file; Apache: sites-available file.
    pub vhost: PathBuf,
    /// Apache: the sites-enabled link.
    pub link: Option<PathBuf>,
}

impl SiteFiles {
    pub fn of(spec: &SiteSpec, paths: &Paths) -> SiteFiles {
        let pool_dir = paths.pool_dir_for(&spec.php_version);
        let file = format!("{}.conf", spec.domain);
        let (vhost, link) = match spec.webserver {
            WebServer::Nginx => (paths.nginx_dir.join(&file), None),
            WebServer::Apache => (
                paths.apache_dir.join(&file),
                Some(paths.apache_enabled_dir.join(&file)),
            ),
        };
        SiteFiles {
            pool_live: pool_dir.join(&file),
            pool_disabled: pool_dir.join(format!("{file}.disabled")),
            vhost,
            link,
        }
    }

    /// The pool file this spec wants.
    pub fn pool(&self, enabled: bool) -> &Path {
        if enabled {
            &self.pool_live
        } else {
            &self.pool_disabled
        }
    }
}

/// Renders a spec (no side effects).
pub fn desired(spec: &SiteSpec, paths: &Paths) -> Result<Desired> {
    spec.validate()?;
    let lib = Library::new(&paths.template_dir);
    let mut r = lib.resolve(&spec.template)?;
    render_pool::apply_sets(&mut r, &spec.sets);
    crate::pens::finish(&mut r).map_err(|(key, why)| SitesError::Setting { key, why })?;
    let public = r.get("corral.public_dir").unwrap_or("").trim().to_string();
    let writable = r.get("corral.writable").unwrap_or("").trim().to_string();
    let bad = |why: String| SitesError::Setting {
        key: "corral.*".into(),
        why,
    };
    if !public.is_empty() {
        fs_layout::check_relative("corral.public_dir", &public).map_err(bad)?;
    }
    for w in writable.split([' ', ',']).filter(|w| !w.is_empty()) {
        fs_layout::check_relative("corral.writable", w).map_err(bad)?;
    }
    let layout = Layout::new(spec, paths, &public, &writable);
    let values = render_pool::values(spec, paths, &layout, &r);
    let pool_text = render_pool::render(spec, &r, &values);
    let vhost_text = crate::vhost::render(spec, paths, &lib, &r, &values)?;
    Ok(Desired {
        resolved: r,
        layout,
        pool_text,
        vhost_text,
    })
}

/// How a command ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Unchanged,
    Changed,
}

/// Converges the host to `spec`; `old` is the registered record, if any.
pub fn apply(
    paths: &Paths,
    old: Option<&Record>,
    spec: &SiteSpec,
    opts: RunOptions,
) -> Result<(Outcome, Txn)> {
    let d = desired(spec, paths)?;
    crate::preflight::check(spec, paths)?;
    if spec.enabled && !opts.offline && !fpm::reachable(&paths.control_socket) {
        let why = format!(
            "no corral master answers on {}: the site's pool could not start and its vhost \
             would point at a dead socket; start corral (corral -y {}), or pass --offline to \
             write the files only",
            paths.control_socket.display(),
            paths.fpm_config_for(&spec.php_version).display()
        );
        if !opts.dry_run {
            return Err(SitesError::NoMaster {
                socket: paths.control_socket.clone(),
                why: format!("site {}: {why}", spec.domain),
            });
        }
        println!("warning: {why}");
    }
    let mut txn = Txn::new(opts.dry_run);
    let files = SiteFiles::of(spec, paths);
    let old_files = old.map(|o| SiteFiles::of(&o.spec, paths));
    txn.run(|t| converge(t, paths, old, spec, &d, &files, old_files.as_ref(), opts))?;
    Ok((
        if txn.changed() {
            Outcome::Changed
        } else {
            Outcome::Unchanged
        },
        txn,
    ))
}

#[allow(clippy::too_many_arguments)]
fn converge(
    t: &mut Txn,
    paths: &Paths,
    old: Option<&Record>,
    spec: &SiteSpec,
    d: &Desired,
    files: &SiteFiles,
    old_files: Option<&SiteFiles>,
    opts: RunOptions,
) -> Result<()> {
    let domain = spec.domain.as_str();
    let php_user = spec.php_user();
    let home = d.layout.home.display().to_string();

    t.step("sizing", |t| {
        sizing_step(t, paths, old, spec, &d.resolved, opts)
    })?;

    // ---- accounts
    let group = t.step("group", |t| {
        if let Some(g) = users::group(&spec.user)? {
            accept_existing(paths, old, spec, "group", g.gid, old.and_then(|o| o.gid))?;
        }
        t.ensure_group(&spec.user)
    })?;
    let gid = group.as_ref().map(|g| g.gid).unwrap_or(u32::MAX);
    let comment = format!("corral site {domain}");
    let owner = t.step("user", |t| {
        if let Some(u) = users::user(&spec.user)? {
            accept_existing(paths, old, spec, "user", u.uid, old.and_then(|o| o.uid))?;
            if group.is_some() && u.gid != gid {
                return Err(SitesError::UserConflict {
                    name: spec.user.clone(),
                    why: format!(
                        "exists with primary gid {} instead of group {} ({gid})",
                        u.gid, spec.user
                    ),
                });
            }
        }
        t.ensure_user(&spec.user, &spec.user, &home, &spec.shell, &comment)
    })?;
    let uid = owner.as_ref().map(|u| u.uid).unwrap_or(u32::MAX);
    let php = t.step("php-user", |t| {
        if let Some(u) = users::user(&php_user)? {
            accept_existing(
                paths,
                old,
                spec,
                "PHP user",
                u.uid,
                old.and_then(|o| o.php_uid),
            )?;
            if group.is_some() && u.gid != gid {
                return Err(SitesError::UserConflict {
                    name: php_user.clone(),
                    why: format!(
                        "exists with primary gid {} instead of group {} ({gid})",
                        u.gid, spec.user
                    ),
                });
            }
        }
        t.ensure_user(
            &php_user,
            &spec.user,
            "/nonexistent",
            "/usr/sbin/nologin",
            &format!("corral PHP runtime for {domain}"),
        )
    })?;

    // ---- directories
    let web_uid = users::uid_of(&paths.web_user)?;
    let site_owner = crate::journal::Owner {
        uid,
        gid,
        label: format!("{}:{}", spec.user, spec.user),
    };
    // sshd chroots only into a root-owned dir; the group stays the site's.
    let chroot_owner = crate::journal::Owner {
        uid: 0,
        gid,
        label: format!("root:{}", spec.user),
    };
    for dir in d.layout.dirs() {
        let owner = if dir.root_owned {
            &chroot_owner
        } else {
            &site_owner
        };
        let created = t.step(&format!("dir:{}", dir.name), |t| {
            t.ensure_dir(&dir.path, dir.mode, owner)
        })?;
        let acl = dir.acl.replace("WEB", &web_uid.to_string());
        t.step(&format!("acl:{}", dir.name), |t| {
            t.ensure_acl(&dir.path, &acl, created)
        })?;
    }

    // ---- dirs corral.writable no longer lists
    if let Some(o) = old {
        relock_dropped(t, paths, &o.spec, &d.layout, uid, gid, web_uid, &php_user)?;
    }

    // ---- the code tree: opened for an unlock window, closed after one
    let was_open = old.is_some_and(|o| o.spec.unlocked_until.is_some());
    if d.layout.unlocked || was_open {
        code_tree_step(t, spec, &d.layout, uid, gid, web_uid, &php_user)?;
    }

    t.step("disk-quota", |t| {
        let had = old.and_then(|o| o.spec.disk_quota);
        let gid = group.as_ref().map(|g| g.gid);
        crate::quota_step::converge(t, &d.layout.home, gid, spec.disk_quota, had)
    })?;

    // ---- pool file
    t.step("pool-dir", |t| {
        let dir = paths.pool_dir_for(&spec.php_version);
        t.ensure_dir(&dir, POOL_DIR_MODE, &crate::journal::Owner::root())
            .map(|_| ())
    })?;
    if let Some((name, text)) = &d.resolved.php {
        t.step("php-include", |t| {
            php_include(t, paths, name, text).map(|_| ())
        })?;
    }
    let mut pool_live_changed = false;
    t.step("pool-file", |t| {
        let want = files.pool(spec.enabled).to_path_buf();
        let mut others = vec![files.pool_live.clone(), files.pool_disabled.clone()];
        if let Some(of) = old_files {
            others.push(of.pool_live.clone());
            others.push(of.pool_disabled.clone());
        }
        others.sort();
        others.dedup();
        for p in others.into_iter().filter(|p| *p != want) {
            let live = p.extension().is_some_and(|x| x == "conf");
            if t.remove_file(&p)? && live {
                pool_live_changed = true;
            }
        }
        if t.write_file(&want, d.pool_text.as_bytes(), POOL_FILE_MODE, 0, 0)? && spec.enabled {
            pool_live_changed = true;
        }
        Ok(())
    })?;
    t.step("pool-validate", |_| {
        let fpm_config = paths.fpm_config_for(&spec.php_version);
        // A dry run wrote nothing, so only the text itself is checked.
        let whole = (!opts.dry_run && spec.enabled).then_some(fpm_config.as_path());
        render_pool::validate(&d.pool_text, files.pool(spec.enabled), whole)
    })?;

    // ---- vhost
    if matches!(spec.tls, Some(crate::spec::Tls::Certbot)) {
        t.step("acme-dir", |t| {
            t.ensure_dir(&paths.acme_dir, 0o755, &crate::journal::Owner::root())
                .map(|_| ())
        })?;
    }
    let mut vhost_changed = false;
    t.step("vhost-file", |t| {
        if let Some(of) = old_files {
            if of.vhost != files.vhost && t.remove_file(&of.vhost)? {
                vhost_changed = true;
            }
        }
        // A disabled site keeps a vhost: its 503 "suspended" page.
        vhost_changed |= t.write_file(&files.vhost, d.vhost_text.as_bytes(), 0o644, 0, 0)?;
        Ok(())
    })?;
    if spec.webserver == WebServer::Apache || old_files.is_some_and(|o| o.link.is_some()) {
        t.step("vhost-enable", |t| {
            if let Some(of) = old_files.and_then(|o| o.link.as_ref()) {
                if Some(of) != files.link.as_ref() {
                    vhost_changed |= t.remove_file(of)?;
                }
            }
            if let Some(link) = &files.link {
                // What a2ensite makes: a relative link into sites-available.
                let target = relative_target(link, &files.vhost);
                vhost_changed |= t.ensure_symlink(link, &target)?;
            }
            Ok(())
        })?;
    }
    let ws = spec.webserver;
    if vhost_changed {
        webserver_test_step(t, paths, ws, "webserver-test")?;
    }

    // ---- reloads
    let mut pool_running = false;
    if pool_live_changed {
        t.step("pool-reload", |t| {
            t.note(format!("reload pool {domain} (other pools untouched)"));
            if t.dry_run {
                pool_running = fpm::reachable(&paths.control_socket);
                return Ok(());
            }
            t.reloaded(Reload::Pool {
                socket: paths.control_socket.clone(),
                pool: domain.to_string(),
            });
            match fpm::reload_pool(&paths.control_socket, domain)? {
                Reloaded::Done(_) => pool_running = spec.enabled,
                Reloaded::NotRunning => println!(
                    "corral is not running at {}: pool {domain} starts with the next start",
                    paths.control_socket.display()
                ),
            }
            Ok(())
        })?;
    } else {
        pool_running = spec.enabled && fpm::reachable(&paths.control_socket);
    }
    if vhost_changed {
        webserver_reload_step(t, paths, ws, "webserver-reload")?;
    }

    // ---- verify
    if spec.enabled && t.changed() && !paths.no_verify {
        t.step("verify", |t| {
            verify_step(t, paths, spec, &d.layout, pool_running, uid, gid)
        })?;
    }

    // ---- certbot: the HTTP vhost above serves its challenge
    if spec.enabled && crate::vhost::certbot_pending(spec, paths) {
        t.step("certbot", |t| run_certbot(t, paths, spec))?;
        if !t.dry_run {
            let d2 = desired(spec, paths)?;
            t.step("tls-vhost-file", |t| {
                t.write_file(&files.vhost, d2.vhost_text.as_bytes(), 0o644, 0, 0)
                    .map(|_| ())
            })?;
            webserver_test_step(t, paths, ws, "tls-webserver-test")?;
            webserver_reload_step(t, paths, ws, "tls-webserver-reload")?;
            if !paths.no_verify {
                t.step("tls-verify", |t| {
                    verify_step(t, paths, spec, &d2.layout, pool_running, uid, gid)
                })?;
            }
        }
    }

    // ---- upkeep: log rotation, session cleanup
    t.step("logrotate", |t| {
        let text = crate::host_files::logrotate_text(spec, &d.layout);
        host_file(
            t,
            &paths.logrotate_dir,
            &crate::host_files::logrotate_file(paths, domain),
            &text,
            "logrotate is not installed: per-site logs are not rotated",
        )
    })?;
    t.step("cron", |t| {
        let exe = std::env::current_exe().map_err(|e| SitesError::io("/proc/self/exe", e))?;
        let text = crate::host_files::cron_text(paths, &exe);
        host_file(t, &paths.cron_dir, &crate::host_files::cron_file(paths), &text, "cron is not installed: run `corral site gc-sessions` from your scheduler to clean session files")
    })?;

    // ---- owner access
    sftp_steps(t, paths, spec, &d.layout.home)?;

    // ---- registry
    t.step("registry", |t| {
        let rec = Record {
            spec: spec.clone(),
            uid: owner.as_ref().map(|u| u.uid),
            php_uid: php.as_ref().map(|u| u.uid),
            gid: group.as_ref().map(|g| g.gid),
        };
        std::fs::create_dir_all(&paths.state_dir)
            .map_err(|e| SitesError::io(&paths.state_dir, e))?;
        t.write_file(
            &paths.registry_file(domain),
            rec.to_text().as_bytes(),
            0o600,
            0,
            0,
        )?;
        Ok(())
    })?;
    Ok(())
}

/// Steps `relock:REL`: every dir the old spec let PHP write and this one
/// does not goes back to read-only, with what it holds.
#[allow(clippy::too_many_arguments)]
fn relock_dropped(
    t: &mut Txn,
    paths: &Paths,
    old: &SiteSpec,
    now: &Layout,
    uid: u32,
    gid: u32,
    web_uid: u32,
    php_user: &str,
) -> Result<()> {
    let Ok(before) = desired(old, paths) else {
        return Ok(());
    };
    let keep: Vec<PathBuf> = now.writable.iter().map(|w| now.site_dir.join(w)).collect();
    let php_uid = users::user(php_user)?.map(|u| u.uid);
    for w in &before.layout.writable {
        let root = before.layout.site_dir.join(w);
        if keep.contains(&root) || !root.starts_with(&now.site_dir) {
            continue;
        }
        let Some(php_uid) = php_uid else {
            continue;
        };
        let target = crate::relock::Target {
            owner: old.user.clone(),
            owner_uid: uid,
            php_uid,
            gid,
            web_uid,
            docroot: now.docroot.clone(),
            keep: keep.clone(),
            open: false,
            reason: "no longer in corral.writable",
        };
        t.step(&format!("relock:{w}"), |t| t.relock_tree(&root, &target))?;
    }
    Ok(())
}

/// `<php-include-dir>/NAME.php`, the template's file the pool prepends:
/// root's, `0644` in a root `0755` dir (its parent made if missing), so PHP
/// reads it and no tenant can change it. Shared by every site of the
/// template, so `site remove` leaves it.
fn php_include(t: &mut Txn, paths: &Paths, name: &str, text: &str) -> Result<bool> {
    let dir = &paths.php_include_dir;
    if let Some(parent) = dir.parent() {
        if !parent.exists() && !t.dry_run {
            std::fs::create_dir_all(parent).map_err(|e| SitesError::io(parent, e))?;
        }
    }
    t.ensure_dir(dir, 0o755, &crate::journal::Owner::root())?;
    t.write_file(
        &dir.join(format!("{name}.php")),
        text.as_bytes(),
        0o644,
        0,
        0,
    )
}

/// Step `code:unlock` or `code:lock`: the whole site dir (the writable
/// dirs excepted, they stay as they are) opened to PHP or handed back to
/// the owner read-only, by the no-follow walk of [`relock`](crate::relock).
#[allow(clippy::too_many_arguments)]
fn code_tree_step(
    t: &mut Txn,
    spec: &SiteSpec,
    layout: &Layout,
    uid: u32,
    gid: u32,
    web_uid: u32,
    php_user: &str,
) -> Result<()> {
    let open = layout.unlocked;
    let name = if open { "code:unlock" } else { "code:lock" };
    t.step(name, |t| {
        // A dry run of a new site has no accounts yet: nothing to walk.
        let Some(php_uid) = users::user(php_user)?.map(|u| u.uid) else {
            return Ok(());
        };
        let target = crate::relock::Target {
            owner: spec.user.clone(),
            owner_uid: uid,
            php_uid,
            gid,
            web_uid,
            docroot: layout.docroot.clone(),
            keep: layout
                .writable
                .iter()
                .map(|w| layout.site_dir.join(w))
                .collect(),
            open,
            reason: if open {
                "unlock window"
            } else {
                "unlock window closed"
            },
        };
        t.relock_tree(&layout.site_dir, &target)
    })
}

/// Steps `sftp-keys`, `sshd-config`, then (when either changed)
/// `sshd-test` and (when the drop-in changed) `sshd-reload`: owner access
/// as the spec says (any key = on). sshd checks its whole config before a
/// running sshd is told to re-read it, so a drop-in it refuses is rolled
/// back and never reaches the running daemon. A site that never had SFTP
/// gets none of these steps.
fn sftp_steps(t: &mut Txn, paths: &Paths, spec: &SiteSpec, home: &Path) -> Result<()> {
    use crate::sftp;
    let on = !spec.sftp_keys.is_empty();
    let keys = sftp::keys_file(paths, &spec.user);
    let dropin = sftp::dropin_file(paths, &spec.user);
    let present = |p: &Path| std::fs::symlink_metadata(p).is_ok();
    if !on && !present(&keys) && !present(&dropin) {
        return Ok(());
    }
    let mut keys_changed = false;
    t.step("sftp-keys", |t| {
        if !on {
            keys_changed = t.remove_file(&keys)?;
            return Ok(());
        }
        t.ensure_dir(&paths.sftp_keys_dir, 0o755, &crate::journal::Owner::root())?;
        // Root's and outside the home: the tenant cannot add keys (or
        // options such as command=) to its own login.
        keys_changed = t.write_file(&keys, sftp::keys_text(spec).as_bytes(), 0o644, 0, 0)?;
        Ok(())
    })?;
    let mut config_changed = false;
    t.step("sshd-config", |t| {
        config_changed = if on {
            let text = sftp::dropin_text(paths, spec, home);
            t.write_file(&dropin, text.as_bytes(), 0o644, 0, 0)?
        } else {
            t.remove_file(&dropin)?
        };
        Ok(())
    })?;
    if keys_changed || config_changed {
        t.step("sshd-test", |t| {
            let cmd = sftp::test_command(paths);
            t.note(format!("run `{cmd}`"));
            if !t.dry_run {
                webserver::run_shell(&cmd)?;
            }
            Ok(())
        })?;
    }
    // sshd reads the keys file at each login; only the drop-in needs it
    // to re-read its config.
    if config_changed {
        t.step("sshd-reload", |t| {
            let cmd = sftp::reload_command(paths);
            t.note(format!("run `{cmd}`"));
            if !t.dry_run {
                t.reloaded(Reload::Sshd(cmd.clone()));
                webserver::run_shell(&cmd)?;
            }
            Ok(())
        })?;
    }
    Ok(())
}

/// Writes a root-owned `0644` file into a host dir, or says why not when
/// the dir (its package) is missing.
fn host_file(t: &mut Txn, dir: &Path, file: &Path, text: &str, missing: &str) -> Result<()> {
    if !dir.is_dir() {
        println!("no {}: {missing}", dir.display());
        return Ok(());
    }
    t.write_file(file, text.as_bytes(), 0o644, 0, 0).map(|_| ())
}

/// `../sites-available/X.conf` when both dirs share a parent, as a2ensite
/// writes it; otherwise the absolute path.
fn relative_target(link: &Path, target: &Path) -> PathBuf {
    match (link.parent().and_then(Path::parent), target.parent()) {
        (Some(lp), Some(tdir)) if tdir.parent() == Some(lp) => Path::new("..")
            .join(tdir.file_name().unwrap_or_default())
            .join(target.file_name().unwrap_or_default()),
        _ => target.to_path_buf(),
    }
}

/// Whether an account that already exists may be used for this site:
/// * registered site: it must still have the id the registry recorded
///   (same name, other uid = someone else's account);
/// * new site: only a pair corral made and kept (`site remove
///   --keep-files`): home under the home base, PHP user in the owner's
///   group. Anything else is another account and is refused.
fn accept_existing(
    paths: &Paths,
    old: Option<&Record>,
    spec: &SiteSpec,
    what: &str,
    id: u32,
    recorded: Option<u32>,
) -> Result<()> {
    let name = match what {
        "PHP user" => spec.php_user(),
        _ => spec.user.clone(),
    };
    if old.is_some() {
        if let Some(r) = recorded {
            if r != id {
                return Err(SitesError::UserConflict {
                    name,
                    why: format!("exists with id {id}, but the site was created with id {r}"),
                });
            }
        }
        return Ok(());
    }
    let owner = users::user(&spec.user)?;
    let group = users::group(&spec.user)?;
    let php = users::user(&spec.php_user())?;
    let kept_pair = match (&owner, &group, &php) {
        (Some(o), Some(g), Some(p)) => {
            o.gid == g.gid && p.gid == g.gid && Path::new(&o.home) == paths.home(&spec.user)
        }
        _ => false,
    };
    if kept_pair {
        return Ok(());
    }
    Err(SitesError::UserConflict {
        name,
        why: format!(
            "already exists ({what} id {id}) and is not a corral site's account; choose another --user"
        ),
    })
}

/// Refuses (or warns, with --force) when the memory plan does not fit.
fn sizing_step(
    t: &mut Txn,
    paths: &Paths,
    old: Option<&Record>,
    spec: &SiteSpec,
    r: &Resolved,
    opts: RunOptions,
) -> Result<()> {
    let new_children = render_pool::max_children(r);
    if !spec.enabled {
        return Ok(());
    }
    if let Some(o) = old {
        let was = desired(&o.spec, paths)
            .map(|d| render_pool::max_children(&d.resolved))
            .unwrap_or(0);
        if o.spec.enabled && was >= new_children {
            return Ok(());
        }
    }
    let plan = memory_plan(paths, Some((spec.domain.as_str(), new_children)))?;
    let mem = match paths.mem_total {
        Some(m) => m,
        None => sizing::mem_total()?,
    };
    match sizing::check(&plan, mem) {
        Ok(_) => Ok(()),
        Err(msg) if opts.force => {
            eprintln!("warning: the memory plan does not fit (--force): {msg}");
            Ok(())
        }
        Err(msg) => {
            let _ = t;
            Err(SitesError::Sizing(format!(
                "{msg}; lower pm.max_children (--set pm.max_children=N), or pass --force"
            )))
        }
    }
}

/// Every enabled registered site's (pool, max_children, average PSS),
/// with `extra` replacing or adding one.
pub fn memory_plan(paths: &Paths, extra: Option<(&str, u64)>) -> Result<Vec<sizing::Planned>> {
    let running = fpm::pool_workers(&paths.control_socket).unwrap_or_default();
    let measured: Vec<sizing::PoolMemory> = running
        .iter()
        .map(|(p, pids)| sizing::measure(p, pids))
        .filter(|m| m.measured > 0)
        .collect();
    let fallback = if measured.is_empty() {
        sizing::DEFAULT_WORKER_BYTES
    } else {
        measured.iter().map(|m| m.avg).sum::<u64>() / measured.len() as u64
    };
    let avg_of = |pool: &str| {
        measured
            .iter()
            .find(|m| m.pool == pool)
            .map(|m| m.avg)
            .unwrap_or(fallback)
    };
    let mut plan = Vec::new();
    for rec in registry::all(paths)? {
        if !rec.spec.enabled || extra.is_some_and(|(d, _)| d == rec.spec.domain) {
            continue;
        }
        let children = desired(&rec.spec, paths)
            .map(|d| render_pool::max_children(&d.resolved))
            .unwrap_or(5);
        plan.push(sizing::Planned {
            pool: rec.spec.domain.clone(),
            max_children: children,
            avg: avg_of(&rec.spec.domain),
        });
    }
    if let Some((d, c)) = extra {
        plan.push(sizing::Planned {
            pool: d.to_string(),
            max_children: c,
            avg: avg_of(d),
        });
    }
    Ok(plan)
}

/// `site remove`: pool, vhost, registry; then (unless `keep_files`) the
/// home and the accounts. With `keep_files` the accounts stay too: files
/// owned by a deleted uid would belong to whoever gets that uid next.
pub fn remove(paths: &Paths, rec: &Record, how: Removal, opts: RunOptions) -> Result<Txn> {
    let keep_files = how == Removal::KeepFiles;
    let spec = &rec.spec;
    let files = SiteFiles::of(spec, paths);
    let mut txn = Txn::new(opts.dry_run);
    let domain = spec.domain.as_str();
    txn.run(|t| {
        let mut pool_changed = false;
        t.step("pool-file", |t| {
            pool_changed |= t.remove_file(&files.pool_live)?;
            t.remove_file(&files.pool_disabled)?;
            Ok(())
        })?;
        let mut vhost_changed = false;
        t.step("vhost-file", |t| {
            vhost_changed |= t.remove_file(&files.vhost)?;
            Ok(())
        })?;
        if let Some(link) = &files.link {
            t.step("vhost-enable", |t| {
                vhost_changed |= t.remove_file(link)?;
                Ok(())
            })?;
        }
        if vhost_changed {
            webserver_test_step(t, paths, spec.webserver, "webserver-test")?;
        }
        if pool_changed {
            t.step("pool-reload", |t| {
                t.note(format!(
                    "reload pool {domain} (it stops; other pools untouched)"
                ));
                if !t.dry_run {
                    t.reloaded(Reload::Pool {
                        socket: paths.control_socket.clone(),
                        pool: domain.to_string(),
                    });
                    fpm::reload_pool(&paths.control_socket, domain)?;
                }
                Ok(())
            })?;
        }
        if vhost_changed {
            webserver_reload_step(t, paths, spec.webserver, "webserver-reload")?;
        }
        t.step("socket", |t| {
            let sock = paths.socket(domain);
            if t.dry_run || !sock.exists() {
                return Ok(());
            }
            // The master keeps a retired pool's socket until its workers
            // drain; wait for that, then clear a leftover file.
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            while std::os::unix::net::UnixStream::connect(&sock).is_ok()
                && std::time::Instant::now() < deadline
            {
                std::thread::sleep(Duration::from_millis(100));
            }
            if sock.exists() && std::os::unix::net::UnixStream::connect(&sock).is_err() {
                t.note(format!("remove stale socket {}", sock.display()));
                let _ = std::fs::remove_file(&sock);
            }
            Ok(())
        })?;
        t.step("registry", |t| {
            t.remove_file(&paths.registry_file(domain))?;
            Ok(())
        })?;
        t.step("logrotate", |t| {
            t.remove_file(&crate::host_files::logrotate_file(paths, domain))
                .map(|_| ())
        })?;
        t.step("cron", |t| {
            let others = registry::all(paths)?
                .iter()
                .any(|r| r.spec.domain != domain);
            if !others {
                t.remove_file(&crate::host_files::cron_file(paths))?;
            }
            Ok(())
        })?;
        // Before the accounts go: sshd must stop knowing the owner first.
        let no_sftp = SiteSpec {
            sftp_keys: Vec::new(),
            ..spec.clone()
        };
        sftp_steps(t, paths, &no_sftp, &paths.home(&spec.user))?;
        if matches!(spec.tls, Some(crate::spec::Tls::Certbot)) && !t.dry_run {
            println!(
                "certbot's certificate for {domain} stays in {}; `certbot delete --cert-name {domain}` removes it",
                paths.letsencrypt_dir.display()
            );
        }
        if keep_files {
            println!(
                "kept {} and the accounts {} and {} (--keep-files)",
                paths.home(&spec.user).display(),
                spec.user,
                spec.php_user()
            );
            return Ok(());
        }
        // The gid goes back to the pool with the group: its limit must not
        // follow it to whichever group gets it next.
        t.step("disk-quota", |t| {
            let home = paths.home(&spec.user);
            let gid = crate::users::group(&spec.user)?.map(|g| g.gid);
            crate::quota_step::converge(t, &home, gid, None, spec.disk_quota)
        })?;
        t.step("files", |t| {
            let home = paths.home(&spec.user);
            if how == Removal::Archive && home.exists() {
                t.ensure_dir(&paths.archive_dir, 0o700, &crate::journal::Owner::root())?;
                let dest = paths.archive_dir.join(format!(
                    "{domain}-{}.tar.gz",
                    utc_stamp(std::time::SystemTime::now())
                ));
                t.archive_tree(&home, &dest)?;
                println!(
                    "kept an archive of {} in {}",
                    home.display(),
                    dest.display()
                );
            }
            t.remove_tree_at_commit(&home)
        })?;
        t.step("php-user", |t| t.delete_user(&spec.php_user()))?;
        t.step("user", |t| t.delete_user(&spec.user))?;
        t.step("group", |t| t.delete_group(&spec.user))?;
        Ok(())
    })?;
    Ok(txn)
}

/// What `site remove` does with the home.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Removal {
    /// Archive it to `<archive-dir>`, then delete it (the default).
    Archive,
    /// Delete it without an archive (`--purge`).
    Purge,
    /// Keep the home and the accounts (`--keep-files`).
    KeepFiles,
}

/// `20261201T130500Z`, from the epoch seconds (no time zone database).
pub fn utc_stamp(t: std::time::SystemTime) -> String {
    let secs = t
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}{month:02}{day:02}T{:02}{:02}{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Step `name` ("webserver-test"): the web server's own configuration check.
fn webserver_test_step(t: &mut Txn, paths: &Paths, ws: WebServer, name: &str) -> Result<()> {
    t.step(name, |t| {
        let cmd = webserver::test_command(paths, ws);
        t.note(format!("run `{cmd}`"));
        if !t.dry_run {
            webserver::run_shell(&cmd)?;
        }
        Ok(())
    })
}

/// Step `name` ("webserver-reload"), recorded so a rollback reloads again.
fn webserver_reload_step(t: &mut Txn, paths: &Paths, ws: WebServer, name: &str) -> Result<()> {
    t.step(name, |t| {
        let cmd = webserver::reload_command(paths, ws);
        t.note(format!("run `{cmd}`"));
        if !t.dry_run {
            t.reloaded(Reload::WebServer(cmd.clone()));
            webserver::run_shell(&cmd)?;
        }
        Ok(())
    })
}

/// The probe through the web server: over plain HTTP, or for a TLS site a
/// 301 on plain HTTP and the token over HTTPS.
fn verify_step(
    t: &mut Txn,
    paths: &Paths,
    spec: &SiteSpec,
    layout: &Layout,
    pool_running: bool,
    uid: u32,
    gid: u32,
) -> Result<()> {
    let domain = spec.domain.as_str();
    if !pool_running {
        println!("verify skipped: corral is not running, so the pool cannot answer yet");
        return Ok(());
    }
    let token = verify::random_hex(16);
    let name = format!("corral-probe-{}.php", verify::random_hex(8));
    let probe = layout.docroot.join(&name);
    let base = paths.verify_base();
    let tls = spec.tls.is_some() && !crate::vhost::certbot_pending(spec, paths);
    let tls_port = paths
        .tls_listen
        .rsplit(':')
        .next()
        .and_then(|p| p.parse::<u16>().ok())
        .unwrap_or(443);
    if t.dry_run {
        let how = if tls {
            format!(
                "a 301 from {base}/{name} and the token from https://{domain}:{tls_port}/{name}"
            )
        } else {
            format!("the token from {base}/{name}")
        };
        t.note(format!("expect {how} (Host: {domain})"));
        return Ok(());
    }
    t.create_temp_file(&probe, verify::probe_script(&token).as_bytes(), uid, gid)?;
    let path = format!("/{name}");
    let r = if tls {
        let ip = base
            .trim_start_matches("http://")
            .rsplit_once(':')
            .map_or(base.trim_start_matches("http://"), |(h, _)| h)
            .trim_end_matches('/')
            .to_string();
        verify::fetch_tls_until(
            &ip,
            tls_port,
            domain,
            &path,
            &token,
            Duration::from_secs(15),
        )
        .and_then(|()| match verify::status_of(&base, domain, &path)? {
            301 => Ok(()),
            other => Err(SitesError::Verify(format!(
                "plain HTTP answered {other}, not a 301 to https"
            ))),
        })
    } else {
        verify::fetch_until(&base, domain, &path, &token, Duration::from_secs(15))
    };
    let _ = std::fs::remove_file(&probe);
    r?;
    if tls {
        println!(
            "verified: https://{domain}:{tls_port}/ runs PHP in pool {domain}; plain HTTP redirects"
        );
    } else {
        println!("verified: {base}/ with Host {domain} runs PHP in pool {domain}");
    }
    Ok(())
}

/// certbot's webroot mode into the root-owned ACME dir; the deploy hook
/// reloads the web server after each renewal (certbot remembers both).
fn run_certbot(t: &mut Txn, paths: &Paths, spec: &SiteSpec) -> Result<()> {
    let mut names = vec![spec.domain.clone()];
    names.extend(spec.aliases.iter().cloned());
    let reload = webserver::reload_command(paths, spec.webserver).replace('\'', "");
    let mut cmd = format!(
        "{} certonly --webroot -w {} --cert-name {} --non-interactive --agree-tos \
         --keep-until-expiring --config-dir {} --deploy-hook '{reload}'",
        paths.certbot,
        paths.acme_dir.display(),
        spec.domain,
        paths.letsencrypt_dir.display()
    );
    for n in &names {
        cmd.push_str(&format!(" -d {n}"));
    }
    if !paths.certbot.contains("--email") && !paths.certbot.contains(" -m ") {
        cmd.push_str(" --register-unsafely-without-email");
    }
    t.note(format!("run `{cmd}`"));
    if t.dry_run {
        return Ok(());
    }
    webserver::run_shell(&cmd).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_stamps() {
        let t = |s: u64| utc_stamp(std::time::UNIX_EPOCH + Duration::from_secs(s));
        assert_eq!(t(0), "19700101T000000Z");
        assert_eq!(t(951_782_400), "20000229T000000Z");
        assert_eq!(t(1_796_131_505), "20261201T132505Z");
    }
}
