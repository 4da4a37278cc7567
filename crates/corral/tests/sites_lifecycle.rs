//! What a site's life does to its files, with a real corral and a real
//! nginx: narrowing `corral.writable` re-locks what is no longer listed
//! (and a failure after it puts everything back).

mod common;
mod sites_support;

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::time::Duration;

use common::{require_bin, require_root};
use sites_support::*;

fn ready() -> bool {
    require_root() && require_bin("nginx").is_some() && require_bin("setfacl").is_some()
}

/// PHP tries to write `rel` (a new file, an overwrite, a new dir).
const WRITE_PHP: &str = r#"<?php
$d = __DIR__ . '/' . $_GET['d'];
echo 'new=', @file_put_contents("$d/new-" . getmypid() . '.txt', 'x') === false ? 'denied' : 'ok', "\n";
echo 'over=', @file_put_contents("$d/php-file.txt", 'y') === false ? 'denied' : 'ok', "\n";
echo 'mkdir=', @mkdir("$d/sub-" . getmypid()) ? 'ok' : 'denied', "\n";
"#;

const SEED_PHP: &str = r#"<?php
$d = __DIR__ . '/wp-content/cache';
file_put_contents("$d/php-file.txt", 'cached');
@mkdir("$d/nested");
file_put_contents("$d/nested/deep.txt", 'deep');
file_put_contents("$d/fresh-" . uniqid() . '.txt', 'fresh');
echo 'seeded';
"#;

#[test]
fn narrowing_writable_relocks_what_php_wrote() {
    if !ready() {
        return;
    }
    let u = user_name("w");
    let _users = UserGuard(vec![u.clone()]);
    let sb = Sandbox::new("relock");
    let corral = sb.start_corral();
    let Some(nginx) = SitesNginx::start(&sb.path("nginx")) else {
        return;
    };
    let env = sb.env(Some(&corral), Some(&nginx));
    let d = format!("w{}.test", std::process::id());
    let both = "corral.writable=wp-content/uploads wp-content/cache";
    ok(&sb.site(
        &env,
        &[],
        &[
            "add",
            &d,
            "--user",
            &u,
            "--template",
            "wordpress",
            "--set",
            both,
        ],
    ));
    let root = sb.docroot(&u, &d);
    write_as_owner(&root.join("w.php"), WRITE_PHP, &u);
    write_as_owner(&root.join("seed.php"), SEED_PHP, &u);
    assert_eq!(nginx.get(&d, "/seed.php").body, "seeded");
    let cache = root.join("wp-content/cache");
    let r = nginx.get(&d, "/w.php?d=wp-content/cache");
    assert_eq!(
        r.body.matches("=ok").count(),
        3,
        "cache writable: {}",
        r.body
    );

    // Something that is not the site's: a root-owned file the tenant
    // linked in, and a symlink out of the tree.
    let foreign = cache.join("root-owned.txt");
    fs::write(&foreign, "root's").unwrap();
    fs::set_permissions(&foreign, fs::Permissions::from_mode(0o664)).unwrap();
    let outside = sb.path("outside.txt");
    fs::write(&outside, "outside").unwrap();
    fs::set_permissions(&outside, fs::Permissions::from_mode(0o666)).unwrap();
    std::os::unix::fs::symlink(&outside, cache.join("link")).unwrap();

    let o = ok(&sb.site(
        &env,
        &[],
        &["set", &d, "corral.writable=wp-content/uploads"],
    ))
    .all();
    assert!(
        o.contains("re-lock")
            && o.contains("wp-content/cache")
            && o.contains("owned by other users"),
        "says what it re-locked:\n{o}"
    );
    let uid = common::uid_of(&u).unwrap();
    for (rel, mode) in [
        ("", 0o2750),
        ("php-file.txt", 0o640),
        ("nested", 0o2750),
        ("nested/deep.txt", 0o640),
    ] {
        let m = fs::symlink_metadata(cache.join(rel)).unwrap();
        assert_eq!(
            (m.mode() & 0o7777, m.uid()),
            (mode, uid),
            "{rel}: owner and mode"
        );
    }
    // Left alone: the foreign file and the link's target.
    let m = fs::metadata(&foreign).unwrap();
    assert_eq!((m.uid(), m.mode() & 0o777), (0, 0o664));
    let m = fs::metadata(&outside).unwrap();
    assert_eq!((m.uid(), m.mode() & 0o777), (0, 0o666));
    // PHP can write no more, in the dir or below it; uploads still works;
    // the web server still serves what is there.
    let r = nginx.get(&d, "/w.php?d=wp-content/cache");
    assert_eq!(
        r.body.matches("=denied").count(),
        3,
        "cache locked: {}",
        r.body
    );
    let r = nginx.get(&d, "/w.php?d=wp-content/cache/nested");
    assert_eq!(
        r.body.matches("=denied").count(),
        3,
        "nested locked: {}",
        r.body
    );
    let r = nginx.get(&d, "/w.php?d=wp-content/uploads");
    assert!(r.body.starts_with("new=ok"), "uploads writable: {}", r.body);
    assert_eq!(
        nginx.get(&d, "/wp-content/cache/nested/deep.txt").body,
        "deep"
    );
    // A second identical set changes nothing.
    let o = ok(&sb.site(
        &env,
        &[],
        &["set", &d, "corral.writable=wp-content/uploads"],
    ))
    .all();
    assert!(o.contains("unchanged"), "{o}");

    // Widen again, let PHP write, then narrow with a failure after the
    // re-lock: everything is put back.
    ok(&sb.site(&env, &[], &["set", &d, both]));
    assert_eq!(nginx.get(&d, "/seed.php").body, "seeded");
    let users = [u.clone()];
    let before = sb.snapshot(&users);
    let o = sb.site(
        &env,
        &[("CORRAL_SITES_FAIL_AT", "registry")],
        &["set", &d, "corral.writable=wp-content/uploads"],
    );
    assert_ne!(o.code, Some(0));
    assert!(o.all().contains("re-lock"), "{}", o.all());
    let after = sb.snapshot(&users);
    assert!(
        before == after,
        "rollback left changes:\n{}",
        snapshot_diff(&before, &after)
    );
    ok(&sb.site(&env, &[], &["remove", &d, "--yes"]));
}

const SESSION_PHP: &str = r#"<?php
session_start();
$_SESSION['n'] = ($_SESSION['n'] ?? 0) + 1;
echo session_save_path(), '/sess_', session_id();
"#;

/// Session files made by real PHP, aged by hand, cleaned by the command
/// the cron file holds: each site by its own pool's gc_maxlifetime.
#[test]
fn session_cleanup_honours_each_pools_lifetime() {
    if !ready() {
        return;
    }
    let (ua, ub) = (user_name("sa"), user_name("sb"));
    let _users = UserGuard(vec![ua.clone(), ub.clone()]);
    let sb = Sandbox::new("gc");
    let corral = sb.start_corral();
    let Some(nginx) = SitesNginx::start(&sb.path("nginx")) else {
        return;
    };
    // The php.ini the pools without their own lifetime fall back to.
    let ini = sb.path("php-ini");
    fs::create_dir_all(ini.join("conf.d")).unwrap();
    fs::write(
        ini.join("php.ini"),
        "[Session]\nsession.gc_maxlifetime = 7200\n",
    )
    .unwrap();
    let mut env = sb.env(Some(&corral), Some(&nginx));
    env.push(("CORRAL_SITES_PHP_INI_DIR".into(), ini.display().to_string()));
    let pid = std::process::id();
    let (da, db) = (format!("sa{pid}.test"), format!("sb{pid}.test"));
    ok(&sb.site(
        &env,
        &[],
        &[
            "add",
            &da,
            "--user",
            &ua,
            "--set",
            "session.gc_maxlifetime=60",
        ],
    ));
    ok(&sb.site(&env, &[], &["add", &db, "--user", &ub]));

    let cron = sb.path("cron/corral-sites");
    let m = fs::metadata(&cron).expect("site add installed the cron file");
    assert_eq!((m.uid(), m.mode() & 0o777), (0, 0o644));
    let text = fs::read_to_string(&cron).unwrap();
    let line = text
        .lines()
        .find(|l| l.contains(" root ") && l.contains("gc-sessions"))
        .unwrap_or_else(|| panic!("no job in:\n{text}"));
    let command = line.split_once(" root ").unwrap().1.to_string();

    let mut sessions = Vec::new();
    for (d, u) in [(&da, &ua), (&db, &ub)] {
        write_as_owner(&sb.docroot(u, d).join("s.php"), SESSION_PHP, u);
        let r = nginx.get(d, "/s.php");
        assert_eq!(r.status, 200, "{}", r.body);
        let fresh = std::path::PathBuf::from(r.body.trim());
        assert!(fresh.exists(), "PHP wrote {}", fresh.display());
        // The same file, ten minutes old.
        let old = fresh.with_file_name("sess_oldoldoldoldoldoldoldold");
        fs::copy(&fresh, &old).unwrap();
        let ten_minutes_ago = std::time::SystemTime::now() - Duration::from_secs(600);
        fs::File::options()
            .write(true)
            .open(&old)
            .unwrap()
            .set_modified(ten_minutes_ago)
            .unwrap();
        sessions.push((fresh, old));
    }

    // What cron would run, minus --quiet so the test can read it.
    let o = std::process::Command::new("sh")
        .arg("-c")
        .arg(command.replace(" --quiet", ""))
        .envs(
            env.iter()
                .filter(|(k, _)| k == "CORRAL_SITES_PHP_INI_DIR")
                .map(|(k, v)| (k, v)),
        )
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        o.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let (a, b) = (&sessions[0], &sessions[1]);
    assert!(
        !a.1.exists(),
        "A's 10-minute-old session outlived A's 60 s:\n{said}"
    );
    assert!(a.0.exists(), "A's fresh session was removed:\n{said}");
    assert!(
        b.1.exists() && b.0.exists(),
        "B (7200 s) was touched:\n{said}"
    );
    assert!(
        said.contains(&format!(
            "{da}: removed 1 session file(s) older than 60 s (the pool)"
        )) && said.contains(&format!(
            "{db}: removed 0 session file(s) older than 7200 s"
        )),
        "{said}"
    );
    // The session still works for its visitor.
    ok(&sb.site(&env, &[], &["remove", &da, "--yes"]));
    assert!(cron.exists(), "the cron file stays while a site is left");
    ok(&sb.site(&env, &[], &["remove", &db, "--yes"]));
    assert!(!cron.exists(), "removed with the last site");
}

/// The logrotate file logrotate accepts, and a forced rotation that PHP
/// then logs past.
#[test]
fn per_site_logs_rotate() {
    if !ready() {
        return;
    }
    let Some(logrotate) = require_bin("logrotate") else {
        return;
    };
    let u = user_name("l");
    let _users = UserGuard(vec![u.clone()]);
    let sb = Sandbox::new("rot");
    let corral = sb.start_corral();
    let Some(nginx) = SitesNginx::start(&sb.path("nginx")) else {
        return;
    };
    let env = sb.env(Some(&corral), Some(&nginx));
    let d = format!("l{}.test", std::process::id());
    ok(&sb.site(&env, &[], &["add", &d, "--user", &u]));
    let conf = sb.path(&format!("logrotate/corral-site-{d}"));
    let m = fs::metadata(&conf).expect("logrotate file");
    assert_eq!((m.uid(), m.mode() & 0o777), (0, 0o644));
    write_as_owner(
        &sb.docroot(&u, &d).join("log.php"),
        "<?php error_log('corral-rotation-' . $_GET['n']); echo 'logged';",
        &u,
    );
    assert_eq!(nginx.get(&d, "/log.php?n=1").body, "logged");
    let log = sb.home(&u).join("logs/php-error.log");
    assert!(fs::read_to_string(&log)
        .unwrap()
        .contains("corral-rotation-1"));

    let state = sb.path("logrotate.state");
    let run = |args: &[&str]| {
        let o = std::process::Command::new(&logrotate)
            .args(args)
            .arg("-s")
            .arg(&state)
            .arg(&conf)
            .output()
            .unwrap();
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        (o.status.success(), all)
    };
    let (good, said) = run(&["-d"]);
    assert!(good && !said.contains("error:"), "logrotate -d:\n{said}");
    assert!(said.contains("php-error.log"), "{said}");
    let (good, said) = run(&["-f"]);
    assert!(good && !said.contains("error:"), "logrotate -f:\n{said}");
    let rotated = sb.home(&u).join("logs/php-error.log.1");
    assert!(
        fs::read_to_string(&rotated)
            .unwrap()
            .contains("corral-rotation-1"),
        "rotated:\n{said}"
    );
    assert!(!log.exists(), "the live log was moved");
    // PHP opens its log per message: the next one starts a new file.
    assert_eq!(nginx.get(&d, "/log.php?n=2").body, "logged");
    let fresh = fs::read_to_string(&log).unwrap();
    assert!(fresh.contains("corral-rotation-2") && !fresh.contains("corral-rotation-1"));
    let owner = fs::metadata(&log).unwrap().uid();
    assert_eq!(Some(owner), common::uid_of(&format!("{u}-php")));
    ok(&sb.site(&env, &[], &["remove", &d, "--yes"]));
    assert!(!conf.exists(), "removed with the site");
}
