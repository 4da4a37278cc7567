//! The templates proven by the applications themselves: headless Chromium
//! (Playwright walks in `tests/browser/`) drives WordPress from Debian's
//! package on MariaDB, and a small Laravel app on Debian's
//! php-laravel-framework, each through `corral site add --template …` and
//! through nginx and Apache. Every step prints `STEP <name>: <result>`;
//! the test fails with the reason of any FAILED step.
//!
//! The site's name resolves to loopback for Chromium through
//! `--host-resolver-rules` and for PHP (WordPress's loopback and cron
//! requests) through a line in `/etc/hosts` that the test removes again.
//! The four walks take turns: they share `/etc/hosts` and two cores.

mod browser_support;
mod common;
mod sites_support;

use std::fs;
use std::path::Path;
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use browser_support::mariadb::MariaDb;
use browser_support::steps::{run_node, Outcome, Steps};
use browser_support::*;
use common::{require_bin, require_root};
use sites_support::*;

/// The walks take turns (shared /etc/hosts, CPU for Chromium).
static TURN: Mutex<()> = Mutex::new(());

/// A whole walk in the browser; each of its waits has its own bound too.
const WALK_LIMIT: Duration = Duration::from_secs(480);

#[derive(Clone, Copy)]
enum Web {
    Nginx,
    Apache,
}

impl Web {
    fn name(self) -> &'static str {
        match self {
            Web::Nginx => "nginx",
            Web::Apache => "apache",
        }
    }

    /// The web server; the site's vhost will listen on `addr`:80.
    fn start(self, sb: &Sandbox, addr: &str) -> Box<dyn WebServer> {
        match self {
            Web::Nginx => Box::new(SitesNginx::start(&sb.path("nginx")).expect("nginx")),
            Web::Apache => Box::new(
                SitesApache::start_with(&sb.path("apache/sites-enabled"), &[&format!("{addr}:80")])
                    .expect("apache2"),
            ),
        }
    }
}

/// The site's own loopback address, port 80. Debian's nginx passes
/// `HTTP_HOST` as `$host` (its fastcgi_params drop the port since a
/// security update), so an application on any other port builds URLs
/// without it and redirects the browser to a port nothing listens on; on
/// port 80 the URLs Chromium, PHP and the application use are the same,
/// as on a real host. One address per walk (127.0.0.0/8 is all loopback).
fn site_addr(walk: u8) -> String {
    format!(
        "127.{}.{}.{walk}",
        80 + (std::process::id() >> 16) % 100,
        std::process::id() % 250 + 2
    )
}

/// The sandbox's `CORRAL_SITES_*` env with the vhost on `addr`:80.
fn site_env(
    sb: &Sandbox,
    corral: &common::Server,
    web: &dyn WebServer,
    addr: &str,
) -> Vec<(String, String)> {
    let mut env = sb.env(Some(corral), Some(web));
    for (k, v) in env.iter_mut() {
        if k == "CORRAL_SITES_LISTEN" {
            *v = format!("{addr}:80");
        }
    }
    env
}

#[test]
fn wordpress_through_nginx_in_the_browser() {
    wordpress_walk(Web::Nginx, "wp1.test", "bwn", 1);
}

#[test]
fn wordpress_through_apache_in_the_browser() {
    wordpress_walk(Web::Apache, "wp2.test", "bwa", 2);
}

#[test]
fn laravel_through_nginx_in_the_browser() {
    laravel_walk(Web::Nginx, "lv1.test", "bln", 3);
}

#[test]
fn laravel_through_apache_in_the_browser() {
    laravel_walk(Web::Apache, "lv2.test", "bla", 4);
}

/// Root, the web server, Chromium and node; the rest (npm install,
/// MariaDB, the applications) is setup.sh's job and fails as a step.
fn prerequisites(web: Web) -> bool {
    require_root()
        && require_bin("setfacl").is_some()
        && require_bin(match web {
            Web::Nginx => "nginx",
            Web::Apache => "apache2",
        })
        .is_some()
        && require_bin("chromium").is_some()
        && require_bin("node").is_some()
}

fn playwright_installed() -> Result<(), String> {
    let p = walks_dir().join("node_modules/playwright-core/package.json");
    if p.exists() {
        Ok(())
    } else {
        Err(format!(
            "{} missing: run scripts/setup.sh (npm ci in {})",
            p.display(),
            walks_dir().display()
        ))
    }
}

/// Whether this build has `corral site unlock` (another change adds it;
/// the walk's plugin step is gated on it and says so).
fn has_unlock() -> bool {
    let o = Command::new(common::corral_bin())
        .args(["site", "--help"])
        .output()
        .expect("corral site --help");
    let help = String::from_utf8_lossy(&o.stdout);
    help.lines().any(|l| l.trim_start().starts_with("unlock "))
}

/// The walk's environment: where the site is and how to run corral.
fn walk_env(
    domain: &str,
    addr: &str,
    scratch: &Path,
    site_env: &[(String, String)],
) -> Vec<(String, String)> {
    let profile = scratch.join("chromium-profile");
    fs::create_dir_all(&profile).unwrap();
    let mut v: Vec<(String, String)> = vec![
        ("WALK_HOST".into(), domain.into()),
        ("WALK_ADDR".into(), addr.into()),
        ("WALK_PROFILE".into(), profile.display().to_string()),
        (
            "WALK_CORRAL".into(),
            common::corral_bin().display().to_string(),
        ),
    ];
    v.extend(site_env.iter().cloned());
    v
}

/// Runs one JS walk and takes its step lines; never leaves Chromium behind.
fn browse(steps: &mut Steps, script: &str, env: &[(String, String)], scratch: &Path) {
    let started = Instant::now();
    let out = run_node(&walks_dir(), script, env, WALK_LIMIT);
    kill_mentioning(&scratch.join("chromium-profile").display().to_string());
    steps.take_lines(&out.text);
    let has_steps = out.text.lines().any(|l| l.starts_with("STEP "));
    if out.timed_out {
        steps.record(
            "browser-walk",
            Outcome::Failed(format!("killed after {WALK_LIMIT:?}")),
        );
    } else if !has_steps {
        steps.record(
            "browser-walk",
            Outcome::Failed(format!("no steps reported:\n{}", out.text)),
        );
    } else {
        steps.record(
            "browser-walk",
            Outcome::Ok(format!("{:.0?}", started.elapsed())),
        );
    }
    if steps.failed() {
        eprintln!("--- {script} output ---\n{}", out.text);
    }
}

fn site_add(
    sb: &Sandbox,
    env: &[(String, String)],
    domain: &str,
    user: &str,
    template: &str,
    web: Web,
) -> Result<(), String> {
    let o = sb.site(
        env,
        &[],
        &[
            "add",
            domain,
            "--user",
            user,
            "--template",
            template,
            "--webserver",
            web.name(),
        ],
    );
    if o.code == Some(0) && o.stdout.contains("verified") {
        Ok(())
    } else {
        Err(o.all())
    }
}

/// The site's PHP logs (and Laravel's), for a failed walk's message.
fn site_logs(home: &Path) -> String {
    let mut out = String::new();
    for dir in [home.join("logs")] {
        for e in fs::read_dir(&dir).into_iter().flatten().flatten() {
            let text = fs::read_to_string(e.path()).unwrap_or_default();
            let tail: String = text
                .chars()
                .rev()
                .take(4000)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            out.push_str(&format!("== {}\n{tail}\n", e.path().display()));
        }
    }
    out
}

fn random_token() -> String {
    let mut buf = [0u8; 12];
    fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut buf))
        .expect("urandom");
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

// ---------------------------------------------------------------- WordPress

fn wordpress_walk(web: Web, domain: &str, tag: &str, n: u8) {
    if !prerequisites(web) {
        return;
    }
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let started = Instant::now();
    let mut steps = Steps::new(&format!("wordpress-{}", web.name()));
    let u = user_name(tag);
    let _users = UserGuard(vec![u.clone()]);
    let sb = Sandbox::outside_tmp(tag);
    let addr = site_addr(n);
    let server = web.start(&sb, &addr);
    let corral = sb.start_corral();
    let env = site_env(&sb, &corral, server.as_ref(), &addr);

    let ready = steps
        .run("playwright-installed", playwright_installed)
        .is_some()
        && steps
            .run("wordpress-package", || {
                Path::new("/usr/share/wordpress/wp-settings.php")
                    .exists()
                    .then_some(())
                    .ok_or("Debian's wordpress is not installed (scripts/setup.sh)".to_string())
            })
            .is_some();
    let db = if ready {
        steps.run("mariadb-start", MariaDb::start)
    } else {
        None
    };
    let db_password = random_token();
    let provisioned = db.as_ref().is_some_and(|db| {
        steps
            .run("mariadb-database", || {
                db.create_db("wp", "wp", &db_password)
            })
            .is_some()
            && steps
                .run("site-add", || {
                    site_add(&sb, &env, domain, &u, "wordpress", web)
                })
                .is_some()
            && steps
                .run("wordpress-copied-by-owner", || {
                    install_wordpress(&sb.docroot(&u, domain), &u, db.port, &db_password)
                })
                .is_some()
    });
    let mut php_log = String::new();
    if provisioned {
        let _hosts = HostsEntry::add(domain, &addr);
        let scratch = sb.path("walk");
        let media = scratch.join("media");
        fs::create_dir_all(&media).unwrap();
        fs::write(media.join("photo-full.png"), files::png(1600, 1200, 7)).unwrap();
        fs::write(media.join("icon-tiny.png"), files::png(16, 16, 3)).unwrap();
        fs::write(media.join("invoice.pdf"), files::pdf("corral browser walk")).unwrap();
        let zip = scratch.join("corral-walk-plugin.zip");
        fs::write(&zip, plugin_zip()).unwrap();
        let mut wenv = walk_env(domain, &addr, &scratch, &env);
        wenv.push((
            "WALK_ADMIN_PASSWORD".into(),
            format!("Cw-{}", random_token()),
        ));
        wenv.push(("WALK_FILES".into(), media.display().to_string()));
        wenv.push(("WALK_PLUGIN_ZIP".into(), zip.display().to_string()));
        wenv.push((
            "WALK_UNLOCK".into(),
            if has_unlock() { "1" } else { "0" }.into(),
        ));
        browse(&mut steps, "wordpress.js", &wenv, &scratch);
        php_log = site_logs(&sb.home(&u));
        steps.run("site-remove", || {
            let o = sb.site(&env, &[], &["remove", domain, "--yes"]);
            (o.code == Some(0)).then_some(()).ok_or(o.all())
        });
    }
    drop(db);
    steps.record(
        "total-time",
        Outcome::Ok(format!("{:.0?}", started.elapsed())),
    );
    steps.assert_all_ok(&format!(
        "site logs:\n{php_log}\nweb server log:\n{}\ncorral log:\n{}",
        server.error_log(),
        fs::read_to_string(corral.dir().join("error.log")).unwrap_or_default()
    ));
}

/// What the owner does: copy Debian's WordPress (symlinks resolved, so the
/// site is self-contained) and write a `wp-config.php` of their own for
/// the database; Debian's one reads `/etc/wordpress/config-HOST.php` and
/// points `WP_CONTENT_DIR` at `/var/lib/wordpress`, outside the site.
fn install_wordpress(root: &Path, user: &str, db_port: u16, password: &str) -> Result<(), String> {
    copy_as_owner(Path::new("/usr/share/wordpress"), root, user);
    let salts: String = [
        "AUTH_KEY",
        "SECURE_AUTH_KEY",
        "LOGGED_IN_KEY",
        "NONCE_KEY",
        "AUTH_SALT",
        "SECURE_AUTH_SALT",
        "LOGGED_IN_SALT",
        "NONCE_SALT",
    ]
    .iter()
    .map(|k| format!("define('{k}', '{}');\n", random_token()))
    .collect();
    let config = format!(
        "<?php\n// Written by the site owner (corral's browser test).\n\
         define('DB_NAME', 'wp');\ndefine('DB_USER', 'wp');\ndefine('DB_PASSWORD', '{password}');\n\
         define('DB_HOST', '127.0.0.1:{db_port}');\ndefine('DB_CHARSET', 'utf8mb4');\ndefine('DB_COLLATE', '');\n\
         {salts}$table_prefix = 'wp_';\n\
         if (!defined('ABSPATH')) {{ define('ABSPATH', __DIR__ . '/'); }}\n\
         require_once ABSPATH . 'wp-settings.php';\n"
    );
    let cfg = root.join("wp-config.php");
    fs::remove_file(&cfg).map_err(|e| format!("{}: {e}", cfg.display()))?;
    write_as_owner(&cfg, &config, user);
    files_0640(root);
    Ok(())
}

/// A plugin that marks every front-end page, so the walk sees it run.
fn plugin_zip() -> Vec<u8> {
    let php = b"<?php\n/*\nPlugin Name: corral walk plugin\nDescription: Installed by corral's browser test.\nVersion: 1.0\n*/\nadd_action('wp_footer', function () { echo \"<!-- corral-walk-plugin active -->\"; });\n";
    zip::stored(&[
        ("corral-walk-plugin/", b""),
        ("corral-walk-plugin/corral-walk-plugin.php", php),
    ])
}

// ---------------------------------------------------------------- Laravel

fn laravel_walk(web: Web, domain: &str, tag: &str, n: u8) {
    if !prerequisites(web) {
        return;
    }
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let started = Instant::now();
    let mut steps = Steps::new(&format!("laravel-{}", web.name()));
    let u = user_name(tag);
    let _users = UserGuard(vec![u.clone()]);
    let sb = Sandbox::outside_tmp(tag);
    let addr = site_addr(n);
    let server = web.start(&sb, &addr);
    let corral = sb.start_corral();
    let env = site_env(&sb, &corral, server.as_ref(), &addr);
    let root = sb.docroot(&u, domain);

    let provisioned = steps
        .run("playwright-installed", playwright_installed)
        .is_some()
        && steps
            .run("laravel-package", || {
                Path::new("/usr/share/php/Illuminate/autoload.php")
                    .exists()
                    .then_some(())
                    .ok_or("php-laravel-framework is not installed (scripts/setup.sh)".to_string())
            })
            .is_some()
        && steps
            .run("site-add", || {
                site_add(&sb, &env, domain, &u, "laravel", web)
            })
            .is_some()
        && steps
            .run("laravel-app-copied-by-owner", || {
                let app = walks_dir().join("laravel-app");
                copy_as_owner(&app, &root, &u);
                files_0640(&root);
                Ok(())
            })
            .is_some();
    let mut php_log = String::new();
    if provisioned {
        let _hosts = HostsEntry::add(domain, &addr);
        let scratch = sb.path("walk");
        let note = random_token();
        let mut wenv = walk_env(domain, &addr, &scratch, &env);
        wenv.push(("WALK_NOTE".into(), note.clone()));
        browse(&mut steps, "laravel.js", &wenv, &scratch);
        php_log = site_logs(&sb.home(&u));
        steps.run("laravel-storage-file-on-disk", || {
            let f = root.join("storage/app/notes/latest.txt");
            let text = fs::read_to_string(&f).map_err(|e| format!("{}: {e}", f.display()))?;
            if text != format!("note {note}") {
                return Err(format!("{} holds {text:?}", f.display()));
            }
            if !readable_by(&u, &f) {
                return Err(format!("the owner cannot read {}", f.display()));
            }
            if readable_by("www-data", &f) {
                return Err(format!("the web server reads {}", f.display()));
            }
            Ok(())
        });
        steps.run("site-remove", || {
            let o = sb.site(&env, &[], &["remove", domain, "--yes"]);
            (o.code == Some(0)).then_some(()).ok_or(o.all())
        });
    }
    steps.record(
        "total-time",
        Outcome::Ok(format!("{:.0?}", started.elapsed())),
    );
    steps.assert_all_ok(&format!(
        "site logs:\n{php_log}\nweb server log:\n{}\ncorral log:\n{}",
        server.error_log(),
        fs::read_to_string(corral.dir().join("error.log")).unwrap_or_default()
    ));
}
