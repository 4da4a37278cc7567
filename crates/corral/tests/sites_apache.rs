//! `corral site add --webserver apache`: a real Apache (mpm_event, workers
//! as www-data, mod_proxy_fcgi) with a test-local config that includes
//! the sandbox's sites-enabled dir. Skipped when apache2 is missing.

mod common;
mod sites_support;

use common::{require_bin, require_root};
use sites_support::*;

#[test]
fn apache_serves_an_isolated_site() {
    if !require_root() || require_bin("setfacl").is_none() {
        return;
    }
    let u = user_name("p");
    let _users = UserGuard(vec![u.clone()]);
    let sb = Sandbox::new("apache");
    let corral = sb.start_corral();
    let Some(apache) = SitesApache::start(&sb.path("apache/sites-enabled")) else {
        return;
    };
    let env = sb.env(Some(&corral), Some(&apache));
    let d = format!("p{}.test", std::process::id());
    let o = sb.site(
        &env,
        &[],
        &[
            "add",
            &d,
            "--user",
            &u,
            "--webserver",
            "apache",
            "--template",
            "wordpress",
        ],
    );
    ok(&o);
    assert!(o.stdout.contains("verified"), "{}", o.all());
    let link = sb.path("apache/sites-enabled").join(format!("{d}.conf"));
    assert_eq!(
        std::fs::read_link(&link).unwrap(),
        std::path::Path::new("../sites-available").join(format!("{d}.conf")),
        "a2ensite-style relative link"
    );

    let root = sb.docroot(&u, &d);
    write_as_owner(
        &root.join("index.php"),
        "<?php echo 'apache-site ', ini_get('memory_limit');",
        &u,
    );
    write_as_owner(&root.join("hello.txt"), "static-apache", &u);
    let r = apache.get(&d, "/index.php");
    assert_eq!(
        (r.status, r.body.as_str()),
        (200, "apache-site 256M"),
        "{}",
        apache.error_log()
    );
    let r = apache.get(&d, "/hello.txt");
    assert_eq!((r.status, r.body.as_str()), (200, "static-apache"));
    // WordPress permalinks go to index.php.
    assert_eq!(
        apache.get(&d, "/2024/01/hello-world/").body,
        "apache-site 256M"
    );

    let up = root.join("wp-content/uploads");
    let evil = "<?php echo 'EXE' . 'CUTED';";
    write_as_owner(&up.join("x.jpg"), evil, &u);
    write_as_owner(&up.join("evil.php"), evil, &u);
    for path in [
        "/wp-content/uploads/x.jpg/evil.php",
        "/wp-content/uploads/evil.php",
        "/missing.php",
        // PATH_INFO forms: Apache maps both to evil.php.
        "/wp-content/uploads/evil.php/",
        "/wp-content/uploads/evil.php/x.jpg",
        "/wp-content/uploads/EVIL.PHP/x.jpg",
    ] {
        let r = apache.get(&d, path);
        assert!(
            !r.body.contains("EXECUTED"),
            "{path} ran PHP: {} {}",
            r.status,
            r.body
        );
    }
    for path in [
        "/wp-content/uploads/evil.php",
        "/wp-content/uploads/evil.php/",
        "/wp-content/uploads/evil.php/x.jpg",
    ] {
        assert_eq!(apache.get(&d, path).status, 403, "{path}");
    }

    // A symlink to a file of another owner (www-data may read it) is not
    // followed; one to the site's own file is.
    let victim = sb.path("victim");
    std::fs::create_dir(&victim).unwrap();
    std::fs::write(victim.join("wp-config.php"), "VICTIM-DB-PASSWORD").unwrap();
    let uid = common::uid_of(&u).unwrap();
    let leak = root.join("leak.txt");
    std::os::unix::fs::symlink(victim.join("wp-config.php"), &leak).unwrap();
    std::os::unix::fs::lchown(&leak, Some(uid), None).unwrap();
    let r = apache.get(&d, "/leak.txt");
    assert!(!r.body.contains("VICTIM"), "symlink served: {}", r.body);
    assert_eq!(r.status, 403);
    let mine = root.join("mine.txt");
    std::os::unix::fs::symlink(root.join("hello.txt"), &mine).unwrap();
    std::os::unix::fs::lchown(&mine, Some(uid), None).unwrap();
    assert_eq!(apache.get(&d, "/mine.txt").body, "static-apache");
    write_as_owner(&root.join(".env"), "secret", &u);
    assert_eq!(apache.get(&d, "/.env").status, 403);

    // Disabled: Apache itself answers 503 "suspended" for every path;
    // enabled again, the site is back.
    ok(&sb.site(&env, &[], &["disable", &d]));
    assert!(link.exists());
    // (A graceful restart's old children may answer once more.)
    let eventually = |what: &str, cond: &dyn Fn() -> bool| {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !cond() {
            assert!(
                std::time::Instant::now() < deadline,
                "{what}: {}",
                apache.error_log()
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    };
    for path in ["/", "/index.php", "/hello.txt"] {
        eventually(path, &|| {
            let r = apache.get(&d, path);
            r.status == 503 && r.body.contains("suspended")
        });
    }
    ok(&sb.site(&env, &[], &["enable", &d]));
    eventually("enabled again", &|| {
        apache.get(&d, "/hello.txt").body == "static-apache"
    });

    let before_remove = sb.path("apache/sites-available").join(format!("{d}.conf"));
    ok(&sb.site(&env, &[], &["remove", &d, "--yes"]));
    assert!(!before_remove.exists() && std::fs::symlink_metadata(&link).is_err());
    assert!(common::uid_of(&u).is_none());
}
