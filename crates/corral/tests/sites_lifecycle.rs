//! What a site's life does to its files, with a real corral and a real
//! nginx: narrowing `corral.writable` re-locks what is no longer listed
//! (and a failure after it puts everything back).

mod common;
mod sites_support;

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};

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
    ok(&sb.site(&env, &[], &["remove", &d]));
}
