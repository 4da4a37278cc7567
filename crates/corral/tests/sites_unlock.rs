//! The update model with a real corral and a real nginx: code is
//! read-only to PHP (a real request, running as `USER-php` under Landlock)
//! until `site unlock` opens a window; `site lock`, or the cron job once
//! the window has ended, gives everything PHP wrote back to the owner,
//! read-only for PHP, without following a tenant's symlinks.

mod common;
mod sites_support;

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;

use common::{require_bin, require_root};
use sites_support::*;

fn ready() -> bool {
    require_root()
        && require_bin("nginx").is_some()
        && require_bin("setfacl").is_some()
        && require_bin("setpriv").is_some()
}

/// What WordPress's direct file system does: write or mkdir, then chmod
/// to FS_CHMOD_FILE / FS_CHMOD_DIR; and the constants the pool prepends.
const PHP: &str = r#"<?php
header('Content-Type: text/plain');
$f = __DIR__ . '/' . ($_GET['f'] ?? '');
switch ($_GET['op'] ?? '') {
case 'write':
    $ok = @file_put_contents($f, $_GET['c'] ?? 'php') !== false;
    if ($ok && defined('FS_CHMOD_FILE')) { @chmod($f, FS_CHMOD_FILE); }
    echo $ok ? 'ok' : 'denied';
    break;
case 'mkdir':
    $ok = @mkdir($f);
    if ($ok && defined('FS_CHMOD_DIR')) { @chmod($f, FS_CHMOD_DIR); }
    echo $ok ? 'ok' : 'denied';
    break;
case 'consts':
    echo json_encode([
        'FS_METHOD' => defined('FS_METHOD') ? FS_METHOD : null,
        'FS_CHMOD_DIR' => defined('FS_CHMOD_DIR') ? FS_CHMOD_DIR : null,
        'FS_CHMOD_FILE' => defined('FS_CHMOD_FILE') ? FS_CHMOD_FILE : null,
        'CORRAL_CODE_LOCKED' => defined('CORRAL_CODE_LOCKED') ? CORRAL_CODE_LOCKED : null,
        'DISALLOW_FILE_MODS' => defined('DISALLOW_FILE_MODS') ? DISALLOW_FILE_MODS : null,
        'site_health_hook' => isset($GLOBALS['wp_filter']['site_status_tests']),
        'prepend' => ini_get('auto_prepend_file'),
    ]);
    break;
}
"#;

fn php(nginx: &SitesNginx, d: &str, op: &str, f: &str) -> String {
    let r = nginx.get(d, &format!("/w.php?op={op}&f={f}"));
    assert_eq!(r.status, 200, "{op} {f}: {}", r.body);
    r.body.trim().to_string()
}

fn consts(nginx: &SitesNginx, d: &str) -> serde_json::Value {
    let body = php(nginx, d, "consts", "");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

/// (mode, uid) of a path, not following a link.
fn stat(p: &Path) -> (u32, u32) {
    let m = fs::symlink_metadata(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    (m.mode() & 0o7777, m.uid())
}

fn acl(p: &Path) -> String {
    let o = Command::new("getfacl")
        .args(["--omit-header", "--numeric", "--no-effective"])
        .arg(p)
        .output()
        .unwrap();
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Runs `sh -c script` as `user` (its own uid, group and groups; no root).
fn as_user(user: &str, script: &str) -> bool {
    let o = Command::new("setpriv")
        .args([
            &format!("--reuid={user}"),
            &format!("--regid={user}"),
            "--init-groups",
            "--",
            "sh",
            "-c",
            script,
        ])
        .output()
        .unwrap();
    if !o.status.success() {
        eprintln!(
            "as {user}: {script}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    o.status.success()
}

/// The JSON reply: the last line of stdout (the steps are printed before).
fn json_of(o: &common::Output) -> serde_json::Value {
    let last = o.stdout.trim().lines().last().unwrap_or("");
    serde_json::from_str(last).unwrap_or_else(|e| panic!("{e}: {}", o.all()))
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[test]
fn unlock_opens_the_code_and_lock_gives_it_back_to_the_owner() {
    if !ready() {
        return;
    }
    let u = user_name("un");
    let _users = UserGuard(vec![u.clone()]);
    // Outside /tmp: the pool's Landlock then writes only what the layout
    // says (a tree below /tmp would be writable through /tmp's rule).
    let sb = Sandbox::outside_tmp("unlock");
    let corral = sb.start_corral();
    let Some(nginx) = SitesNginx::start(&sb.path("nginx")) else {
        return;
    };
    let env = sb.env(Some(&corral), Some(&nginx));
    let pid = std::process::id();
    let (d, other) = (format!("un{pid}.test"), format!("uo{pid}.test"));
    ok(&sb.site(
        &env,
        &[],
        &["add", &d, "--user", &u, "--template", "wordpress"],
    ));
    // A second domain of the same owner: not this site's code.
    ok(&sb.site(&env, &[], &["add", &other, "--user", &u]));
    let root = sb.docroot(&u, &d);
    let other_root = sb.docroot(&u, &other);
    write_as_owner(&root.join("w.php"), PHP, &u);
    write_as_owner(&root.join("index.php"), "<?php echo 'owner';\n", &u);
    mkdir_as_owner(&root.join("wp-content/plugins"), &u);
    let uid = common::uid_of(&u).unwrap();
    let php_uid = common::uid_of(&format!("{u}-php")).unwrap();

    // The prepended file: root's, read-only, outside the docroot.
    let prepend = sb.path("php-include/wordpress.php");
    assert_eq!(stat(&prepend), (0o644, 0));
    let c = consts(&nginx, &d);
    assert_eq!(c["FS_METHOD"], "direct", "{c}");
    assert_eq!(c["FS_CHMOD_DIR"], 0o2770, "{c}");
    assert_eq!(c["FS_CHMOD_FILE"], 0o660, "{c}");
    assert_eq!(c["prepend"], prepend.display().to_string(), "{c}");
    // Locked: WordPress is told so (no file mods, Site Health's own test).
    assert_eq!(c["CORRAL_CODE_LOCKED"], true, "{c}");
    assert_eq!(c["DISALLOW_FILE_MODS"], true, "{c}");
    assert_eq!(c["site_health_hook"], true, "{c}");
    // ... and the kernel and the modes agree: PHP writes no code.
    assert_eq!(php(&nginx, &d, "write", "index.php"), "denied");
    assert_eq!(php(&nginx, &d, "write", "new.php"), "denied");
    assert_eq!(
        php(&nginx, &d, "mkdir", "wp-content/plugins/hello"),
        "denied"
    );
    assert_eq!(php(&nginx, &d, "write", "wp-content/uploads/u.txt"), "ok");
    let l = ok(&sb.site(&env, &[], &["list"])).stdout.clone();
    assert!(
        l.lines()
            .any(|x| x.starts_with(&d) && x.ends_with("locked")),
        "{l}"
    );

    let home = sb.home(&u);
    let untouched = |p: &Path| (stat(p), acl(p));
    let before: Vec<_> = ["logs", "sessions", "tmp"]
        .iter()
        .map(|n| untouched(&home.join(n)))
        .collect();
    let other_before = untouched(&other_root);

    // A failure after the tree was opened puts every inode, the pool file
    // and the registry back.
    let users = [u.clone()];
    let snap = sb.snapshot(&users);
    let o = sb.site(
        &env,
        &[("CORRAL_SITES_FAIL_AT", "registry")],
        &["unlock", &d, "--for", "15m"],
    );
    assert_ne!(o.code, Some(0), "{}", o.all());
    assert!(o.all().contains("opened to PHP"), "{}", o.all());
    let after = sb.snapshot(&users);
    assert!(
        snap == after,
        "rollback left changes:\n{}",
        snapshot_diff(&snap, &after)
    );
    assert_eq!(php(&nginx, &d, "write", "index.php"), "denied");

    // ---- unlock
    let o = sb.site(&env, &[], &["unlock", &d, "--for", "15m", "--json"]);
    ok(&o);
    let j = json_of(&o);
    assert_eq!(j["result"], "unlocked", "{j}");
    let until = j["unlocked_until"].as_u64().unwrap();
    assert!(until >= now() + 890 && until <= now() + 900, "{j}");
    let show = json_of(&sb.site(&env, &[], &["show", &d, "--json"]));
    assert_eq!(show["unlocked_until"], until, "{show}");
    assert!(
        show["code"].as_str().unwrap().starts_with("unlocked until"),
        "{show}"
    );
    assert_eq!(stat(&root), (0o2770, uid));
    assert!(acl(&root).contains("default:group::rwx"), "{}", acl(&root));
    assert_eq!(stat(&root.join("index.php")), (0o660, uid));
    // Only this site's code: not logs, sessions, tmp, nor the other domain.
    let after: Vec<_> = ["logs", "sessions", "tmp"]
        .iter()
        .map(|n| untouched(&home.join(n)))
        .collect();
    assert_eq!(before, after, "logs, sessions and tmp are not code");
    assert_eq!(other_before, untouched(&other_root), "another domain");

    let c = consts(&nginx, &d);
    assert_eq!(c["CORRAL_CODE_LOCKED"], false, "{c}");
    assert_eq!(c["DISALLOW_FILE_MODS"], serde_json::Value::Null, "{c}");
    assert_eq!(c["site_health_hook"], false, "{c}");
    assert_eq!(php(&nginx, &d, "mkdir", "wp-content/plugins/hello"), "ok");
    assert_eq!(
        php(&nginx, &d, "write", "wp-content/plugins/hello/hello.php"),
        "ok"
    );
    assert_eq!(php(&nginx, &d, "write", "index.php"), "ok");
    assert_eq!(php(&nginx, &d, "write", "new.php"), "ok");
    let hello = root.join("wp-content/plugins/hello");
    assert_eq!(stat(&hello), (0o2770, php_uid));
    assert_eq!(stat(&hello.join("hello.php")), (0o660, php_uid));
    // PHP cannot touch the prepended file, locked or not.
    let r = nginx.get(&d, "/w.php?op=consts");
    assert_eq!(r.status, 200);
    assert!(fs::read_to_string(&prepend).unwrap().contains("FS_METHOD"));

    // ---- lock
    let o = ok(&sb.site(&env, &[], &["lock", &d])).all();
    assert!(o.contains("locked"), "{o}");
    for (p, mode) in [
        (root.clone(), 0o2750),
        (hello.clone(), 0o2750),
        (hello.join("hello.php"), 0o640),
        (root.join("new.php"), 0o640),
        (root.join("index.php"), 0o640),
    ] {
        assert_eq!(
            stat(&p),
            (mode, uid),
            "{}: owner's, no group write",
            p.display()
        );
        let a = acl(&p);
        assert!(
            a.contains("group::r") && !a.contains("group::rw"),
            "{}: {a}",
            p.display()
        );
    }
    assert!(
        acl(&hello).contains("default:group::r-x"),
        "{}",
        acl(&hello)
    );
    assert_eq!(
        php(&nginx, &d, "write", "wp-content/plugins/hello/hello.php"),
        "denied"
    );
    assert_eq!(
        php(&nginx, &d, "mkdir", "wp-content/plugins/hello/sub"),
        "denied"
    );
    assert_eq!(php(&nginx, &d, "write", "index.php"), "denied");
    assert_eq!(php(&nginx, &d, "write", "wp-content/uploads/u2.txt"), "ok");
    let c = consts(&nginx, &d);
    assert_eq!(c["CORRAL_CODE_LOCKED"], true, "{c}");
    // The owner edits and deletes what PHP wrote.
    let h = hello.display();
    assert!(as_user(
        &u,
        &format!(
            "echo owner >> {h}/hello.php && rm {h}/hello.php && rmdir {h} && echo x > {}",
            root.join("new.php").display()
        )
    ));
    assert!(!hello.exists());
    assert_eq!(
        nginx.get(&d, "/index.php").body,
        "php",
        "what PHP wrote is served"
    );
    let show = json_of(&sb.site(&env, &[], &["show", &d, "--json"]));
    assert_eq!(show["code"], "locked", "{show}");
    assert_eq!(show["unlocked_until"], serde_json::Value::Null, "{show}");
    // Locking a locked site changes nothing.
    let o = ok(&sb.site(&env, &[], &["lock", &d])).all();
    assert!(o.contains("unchanged"), "{o}");

    // Refusals: a window over 24 h, a bad duration, an unknown site.
    let o = sb.site(&env, &[], &["unlock", &d, "--for", "25h"]);
    assert_eq!(o.code, Some(64), "{}", o.all());
    let o = sb.site(&env, &[], &["unlock", &d, "--for", "soon"]);
    assert_eq!(o.code, Some(64), "{}", o.all());
    let o = sb.site(&env, &[], &["unlock", "nope.test"]);
    assert_ne!(o.code, Some(0), "{}", o.all());
    ok(&sb.site(&env, &[], &["remove", &other, "--yes", "--keep-files"]));
    ok(&sb.site(&env, &[], &["remove", &d, "--yes", "--purge"]));
}

#[test]
fn cron_locks_expired_windows_and_no_walk_follows_a_symlink() {
    if !ready() {
        return;
    }
    let (ua, ub) = (user_name("ea"), user_name("eb"));
    let _users = UserGuard(vec![ua.clone(), ub.clone()]);
    let sb = Sandbox::outside_tmp("expire");
    let corral = sb.start_corral();
    let Some(nginx) = SitesNginx::start(&sb.path("nginx")) else {
        return;
    };
    let env = sb.env(Some(&corral), Some(&nginx));
    let pid = std::process::id();
    let (da, db) = (format!("ea{pid}.test"), format!("eb{pid}.test"));
    for (d, u) in [(&da, &ua), (&db, &ub)] {
        ok(&sb.site(
            &env,
            &[],
            &["add", d, "--user", u, "--template", "wordpress"],
        ));
        write_as_owner(&sb.docroot(u, d).join("w.php"), PHP, u);
    }
    let root = sb.docroot(&ua, &da);
    // The tenant plants links to things outside its home.
    let outside = sb.path("outside.txt");
    fs::write(&outside, "root's").unwrap();
    fs::set_permissions(&outside, fs::Permissions::from_mode(0o600)).unwrap();
    let outside_dir = sb.path("outside-dir");
    fs::create_dir(&outside_dir).unwrap();
    fs::set_permissions(&outside_dir, fs::Permissions::from_mode(0o700)).unwrap();
    let ua_uid = common::uid_of(&ua).unwrap();
    for (name, target) in [("leak.txt", &outside), ("leak-dir", &outside_dir)] {
        let link = root.join(name);
        std::os::unix::fs::symlink(target, &link).unwrap();
        std::os::unix::fs::lchown(&link, Some(ua_uid), None).unwrap();
    }
    let outside_state = |p: &Path| (stat(p), acl(p));
    let before = (outside_state(&outside), outside_state(&outside_dir));

    ok(&sb.site(&env, &[], &["unlock", &da, "--for", "15m"]));
    ok(&sb.site(&env, &[], &["unlock", &db, "--for", "2h"]));
    assert_eq!(
        before,
        (outside_state(&outside), outside_state(&outside_dir)),
        "unlock followed a link"
    );
    assert_eq!(
        stat(&root.join("leak.txt")).1,
        ua_uid,
        "the link itself stays"
    );
    assert_eq!(php(&nginx, &da, "write", "from-php.php"), "ok");

    // A's window ended a minute ago (as if 15 minutes had passed).
    let reg = sb.path(&format!("state/{da}.json"));
    let mut rec: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(&reg).unwrap()).unwrap();
    rec["unlocked_until"] = serde_json::json!(now() - 60);
    fs::write(&reg, serde_json::to_string_pretty(&rec).unwrap()).unwrap();
    let l = ok(&sb.site(&env, &[], &["list"])).stdout.clone();
    assert!(
        l.lines()
            .any(|x| x.starts_with(&da) && x.contains("unlocked, expired")),
        "{l}"
    );

    // What cron runs each minute, minus --quiet so the test can read it.
    let cron = fs::read_to_string(sb.path("cron/corral-sites")).unwrap();
    let line = cron
        .lines()
        .find(|l| l.starts_with("* * * * * root ") && l.contains("site lock --expired"))
        .unwrap_or_else(|| panic!("no lock job in:\n{cron}"));
    let command = line.split_once(" root ").unwrap().1.replace(" --quiet", "");
    let run = || {
        let o = Command::new("sh")
            .arg("-c")
            .arg(&command)
            .env_clear()
            .env(
                "PATH",
                "/usr/local/sbin:/usr/local/bin:/sbin:/bin:/usr/sbin:/usr/bin",
            )
            .output()
            .unwrap();
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(o.status.success(), "{command}\n{said}");
        said
    };
    let said = run();
    assert!(said.contains(&format!("site {da}: locked")), "{said}");
    assert!(!said.contains(&db), "B's window is still open: {said}");
    assert_eq!(stat(&root.join("from-php.php")), (0o640, ua_uid));
    assert_eq!(stat(&root), (0o2750, ua_uid));
    assert_eq!(php(&nginx, &da, "write", "from-php.php"), "denied");
    assert_eq!(php(&nginx, &db, "write", "from-php.php"), "ok");
    assert_eq!(
        before,
        (outside_state(&outside), outside_state(&outside_dir)),
        "lock followed a link"
    );
    let link = fs::symlink_metadata(root.join("leak-dir")).unwrap();
    assert!(link.file_type().is_symlink() && link.uid() == ua_uid);
    // Idempotent: nothing left to lock.
    let said = run();
    assert!(!said.contains("locked"), "{said}");
    let show = json_of(&sb.site(&env, &[], &["show", &da, "--json"]));
    assert_eq!(show["code"], "locked", "{show}");

    ok(&sb.site(&env, &[], &["remove", &da, "--yes", "--purge"]));
    ok(&sb.site(&env, &[], &["remove", &db, "--yes", "--purge"]));
}
