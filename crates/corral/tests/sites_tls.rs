//! `--tls CERT,KEY` through a real nginx and a real Apache on loopback,
//! with a self-signed certificate made by openssl: HTTPS serves the
//! site's PHP (checked against the certificate itself, `--cacert`), plain
//! HTTP answers 301 to HTTPS, a disabled TLS site is 503 on both, and
//! `tls=` turns it back into an HTTP site. Refusals: a certificate for
//! another name, and `--certbot` without certbot.

mod common;
mod sites_support;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use common::{require_bin, require_root};
use sites_support::*;

fn ready() -> bool {
    require_root()
        && require_bin("setfacl").is_some()
        && require_bin("openssl").is_some()
        && require_bin("curl").is_some()
}

/// A self-signed certificate for `name` (and its key, 0600).
pub fn self_signed(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let (cert, key) = (
        dir.join(format!("{name}.crt")),
        dir.join(format!("{name}.key")),
    );
    let o = std::process::Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .args(["-subj", &format!("/CN={name}")])
        .args(["-addext", &format!("subjectAltName=DNS:{name}")])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    fs::set_permissions(&key, fs::Permissions::from_mode(0o600)).unwrap();
    (cert, key)
}

#[test]
fn tls_through_nginx() {
    if !ready() {
        return;
    }
    let sb = Sandbox::new("tlsn");
    let Some(nginx) = SitesNginx::start(&sb.path("nginx")) else {
        return;
    };
    walk_tls(&sb, &nginx, "nginx", "tn");
}

#[test]
fn tls_through_apache() {
    if !ready() {
        return;
    }
    let sb = Sandbox::new("tlsa");
    let Some(apache) = SitesApache::start(&sb.path("apache/sites-enabled")) else {
        return;
    };
    walk_tls(&sb, &apache, "apache", "ta");
}

fn walk_tls(sb: &Sandbox, web: &dyn WebServer, server: &str, tag: &str) {
    let u = user_name(tag);
    let _users = UserGuard(vec![u.clone()]);
    let corral = sb.start_corral();
    let env = sb.env(Some(&corral), Some(web));
    let d = format!("{tag}{}.test", std::process::id());
    let certs = sb.path("certs");
    fs::create_dir(&certs).unwrap();
    let (cert, key) = self_signed(&certs, &d);
    let users = [u.clone()];

    // Refused before anything changes: a certificate for another name,
    // and certbot where there is none.
    let (other, other_key) = self_signed(&certs, "other.test");
    let before = sb.snapshot(&users);
    let o = sb.site(
        &env,
        &[],
        &[
            "add",
            &d,
            "--user",
            &u,
            "--webserver",
            server,
            "--tls",
            &format!("{},{}", other.display(), other_key.display()),
        ],
    );
    assert_ne!(o.code, Some(0));
    assert!(o.stderr.contains("does not name"), "{}", o.all());
    let o = sb.site(
        &env,
        &[("CORRAL_SITES_CERTBOT_COMMAND", "/nonexistent/certbot")],
        &["add", &d, "--user", &u, "--webserver", server, "--certbot"],
    );
    assert_ne!(o.code, Some(0));
    assert!(o.stderr.contains("certbot is not installed"), "{}", o.all());
    let after = sb.snapshot(&users);
    assert!(
        before == after,
        "refusals changed:\n{}",
        snapshot_diff(&before, &after)
    );

    let o = ok(&sb.site(
        &env,
        &[],
        &[
            "add",
            &d,
            "--user",
            &u,
            "--webserver",
            server,
            "--tls",
            &format!("{},{}", cert.display(), key.display()),
        ],
    ))
    .stdout
    .clone();
    assert!(o.contains("verified: https://"), "{o}");
    write_as_owner(
        &sb.docroot(&u, &d).join("index.php"),
        "<?php echo 'tls-site ', $_SERVER['HTTPS'] ?? 'no', ' ', php_sapi_name();",
        &u,
    );
    let https = format!("https://{d}:{}", web.tls_port());
    let resolve = format!("{d}:{}:127.0.0.1", web.tls_port());
    let get_https = |path: &str| {
        curl(&[
            "--cacert",
            &cert.display().to_string(),
            "--resolve",
            &resolve,
            &format!("{https}{path}"),
        ])
    };
    let r = get_https("/index.php");
    assert_eq!(
        (r.status, String::from_utf8_lossy(&r.body).into_owned()),
        (200, "tls-site on fpm-fcgi".to_string()),
        "{}",
        web.error_log()
    );
    let plain = format!("http://127.0.0.1:{}", web.port());
    let r = curl(&[
        "-H",
        &format!("Host: {d}"),
        &format!("{plain}/index.php?x=1"),
    ]);
    assert_eq!(r.status, 301, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.redirect, format!("{https}/index.php?x=1"));

    // Disabled: 503 "suspended" over HTTPS and HTTP alike.
    ok(&sb.site(&env, &[], &["disable", &d]));
    // nginx's old workers may answer for a moment after a reload.
    eventually(
        || {
            let r = get_https("/index.php");
            r.status == 503 && String::from_utf8_lossy(&r.body).contains("suspended")
        },
        "suspended over https",
    );
    eventually(
        || curl(&["-H", &format!("Host: {d}"), &format!("{plain}/")]).status == 503,
        "suspended over http",
    );
    ok(&sb.site(&env, &[], &["enable", &d]));
    eventually(
        || get_https("/index.php").status == 200,
        "back after enable",
    );

    // tls= drops it: plain HTTP serves the site again.
    ok(&sb.site(&env, &[], &["set", &d, "tls="]));
    eventually(
        || {
            let r = curl(&["-H", &format!("Host: {d}"), &format!("{plain}/index.php")]);
            r.status == 200 && r.body == b"tls-site no fpm-fcgi"
        },
        "plain HTTP serves the site after tls=",
    );
    ok(&sb.site(&env, &[], &["remove", &d, "--yes", "--purge"]));
}

fn eventually(cond: impl Fn() -> bool, what: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !cond() {
        assert!(std::time::Instant::now() < deadline, "{what}");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}
