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
    ] {
        let r = apache.get(&d, path);
        assert!(
            !r.body.contains("EXECUTED"),
            "{path} ran PHP: {} {}",
            r.status,
            r.body
        );
    }
    assert_eq!(apache.get(&d, "/wp-content/uploads/evil.php").status, 403);
    write_as_owner(&root.join(".env"), "secret", &u);
    assert_eq!(apache.get(&d, "/.env").status, 403);

    // Disable removes the link only; enable brings it back.
    ok(&sb.site(&env, &[], &["disable", &d]));
    assert!(
        !link.exists()
            && sb
                .path("apache/sites-available")
                .join(format!("{d}.conf"))
                .exists()
    );
    ok(&sb.site(&env, &[], &["enable", &d]));
    assert!(link.exists());

    let before_remove = sb.path("apache/sites-available").join(format!("{d}.conf"));
    ok(&sb.site(&env, &[], &["remove", &d]));
    assert!(!before_remove.exists() && std::fs::symlink_metadata(&link).is_err());
    assert!(common::uid_of(&u).is_none());
}
