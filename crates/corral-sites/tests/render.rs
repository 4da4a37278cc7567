//! The shipped templates rendered for a site: the pens land in the pool
//! file, derived from this site's layout and size, and corral's own loader
//! reads them back as the isolation the pool asked for.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use corral_sites::paths::Paths;
use corral_sites::plan;
use corral_sites::spec::{SiteSpec, WebServer};

fn spec(template: &str, sets: &[(&str, &str)]) -> SiteSpec {
    SiteSpec {
        domain: "a.test".into(),
        user: "a-test".into(),
        php_version: "8.2".into(),
        webserver: WebServer::Nginx,
        template: template.into(),
        sets: sets
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<BTreeMap<_, _>>(),
        aliases: vec![],
        shell: "/usr/sbin/nologin".into(),
        enabled: true,
        disk_quota: None,
        tls: None,
        unlocked_until: None,
        sftp_keys: vec![],
    }
}

fn paths() -> Paths {
    let mut a = vec![
        "--template-dir".to_string(),
        "/nonexistent/corral-templates".to_string(),
    ];
    Paths::from_args(&mut a).unwrap()
}

/// The rendered pool, parsed as corral will.
fn pool(template: &str, sets: &[(&str, &str)]) -> (String, corral_config::Pool) {
    let d = plan::desired(&spec(template, sets), &paths()).unwrap();
    let opts = corral_config::LoadOptions {
        allow_run_as_root: true,
        ..Default::default()
    };
    let c = corral_config::parse_str(&d.pool_text, Path::new("a.test.conf"), &opts)
        .unwrap_or_else(|e| panic!("{e}\n{}", d.pool_text));
    (d.pool_text.clone(), c.pool("a.test").unwrap().clone())
}

#[test]
fn wordpress_gets_pens_from_its_layout_and_size() {
    let (text, p) = pool("wordpress", &[]);
    let iso = &p.isolation;
    assert!(iso.namespaces && iso.landlock, "{text}");
    let home = Path::new("/home/a-test");
    assert_eq!(
        iso.landlock_write,
        [
            home.join("logs"),
            home.join("tmp"),
            home.join("sessions"),
            home.join("htdocs/a.test/wp-content/uploads"),
        ]
    );
    assert_eq!(
        iso.landlock_read,
        [home.join("htdocs/a.test"), PathBuf::from("/usr/share/php")]
    );
    // 5 children × 256M × 1.25 + 128M.
    assert_eq!(iso.memory_max, Some(1728 << 20));
    assert_eq!(iso.swap_max, Some(0));
    assert_eq!(iso.pids_max, Some(36));
    assert_eq!(iso.cpu_weight, Some(100));
    assert_eq!(iso.tmp_size, Some(64 << 20));
    // Provisioning keys stay out of the pool file.
    assert!(!text.contains("corral.writable") && !text.contains("corral.allow_functions"));
}

#[test]
fn the_risky_functions_are_disabled_unless_allowed() {
    let disabled = |p: &corral_config::Pool| {
        p.php_values
            .iter()
            .find(|v| v.name == "disable_functions")
            .map(|v| v.value.clone())
            .unwrap()
    };
    let (_, p) = pool("default", &[]);
    let d = disabled(&p);
    for f in [
        "exec",
        "putenv",
        "mail",
        "shm_attach",
        "sem_get",
        "msg_send",
        "shmop_open",
    ] {
        assert!(d.split(',').any(|x| x == f), "{f} not in {d}");
    }
    let (_, p) = pool("default", &[("corral.allow_functions", "mail putenv")]);
    let d = disabled(&p);
    assert!(!d
        .split(',')
        .any(|x| x == "mail" || x == "putenv" || x == "mb_send_mail"));
    assert!(d.split(',').any(|x| x == "exec"), "{d}");
    let e = plan::desired(
        &spec("default", &[("corral.allow_functions", "mial")]),
        &paths(),
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("corral.allow_functions") && e.contains("mial"),
        "{e}"
    );
}

#[test]
fn site_set_moves_and_switches_the_pens() {
    // The auto limits follow the pool's size.
    let (_, p) = pool(
        "default",
        &[("pm.max_children", "10"), ("memory_limit", "64M")],
    );
    assert_eq!(p.isolation.memory_max, Some((10 * 80 + 128) << 20));
    assert_eq!(p.isolation.pids_max, Some(56));
    // Explicit values win; none drops a limit (and swap with memory).
    let (_, p) = pool(
        "default",
        &[("corral.memory_max", "none"), ("corral.cpu_max", "50%")],
    );
    assert_eq!((p.isolation.memory_max, p.isolation.swap_max), (None, None));
    assert_eq!(p.isolation.cpu_max_percent, Some(50));
    // Switching Landlock off takes its lists with it, and the file stays valid.
    let (text, p) = pool("laravel", &[("corral.landlock", "no")]);
    assert!(
        !p.isolation.landlock && p.isolation.landlock_write.is_empty(),
        "{text}"
    );
    // A bad value is corral-config's error, with the directive named.
    let d = plan::desired(&spec("default", &[("corral.cpu_weight", "0")]), &paths()).unwrap();
    let e = corral_config::parse_str(
        &d.pool_text,
        Path::new("a.test.conf"),
        &corral_config::LoadOptions::default(),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("corral.cpu_weight"), "{e}");
}

#[test]
fn nginx_accepts_the_bodies_the_pool_accepts() {
    let vhost = |t: &str, sets: &[(&str, &str)]| {
        plan::desired(&spec(t, sets), &paths()).unwrap().vhost_text
    };
    assert!(vhost("wordpress", &[]).contains("client_max_body_size 64M;"));
    assert!(vhost("default", &[]).contains("client_max_body_size 8M;"));
    assert!(vhost("default", &[("post_max_size", "20M")]).contains("client_max_body_size 20M;"));
}
