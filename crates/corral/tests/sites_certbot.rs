//! `--certbot` end to end, on loopback only: Debian's certbot in webroot
//! mode against Debian's pebble (a small ACME server made for tests),
//! with pebble-challtestsrv answering DNS for the test domain with
//! 127.0.0.1. pebble fetches the HTTP-01 challenge through the real
//! nginx or Apache from corral's root-owned ACME dir; the site then
//! serves HTTPS with the issued certificate and redirects plain HTTP.
//! Skipped without certbot or pebble.

mod common;
mod sites_support;

use std::fs;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{free_port, require_bin, require_root};
use sites_support::*;

/// pebble and its DNS, stopped on drop.
struct Acme {
    children: Vec<Child>,
    pub directory: String,
}

impl Drop for Acme {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn start_acme(dir: &std::path::Path, http_port: u16) -> Acme {
    let (api, mgmt, dns, chall) = (free_port(), free_port(), free_port(), free_port());
    // pebble's own HTTPS listener needs a certificate; certbot is told
    // not to verify it (--no-verify-ssl): this is the test ACME server.
    let o = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        ])
        .arg("-keyout")
        .arg(dir.join("pebble.key"))
        .arg("-out")
        .arg(dir.join("pebble.crt"))
        .args([
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=IP:127.0.0.1,DNS:localhost",
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let config = serde_json::json!({"pebble": {
        "listenAddress": format!("127.0.0.1:{api}"),
        "managementListenAddress": format!("127.0.0.1:{mgmt}"),
        "certificate": dir.join("pebble.crt"),
        "privateKey": dir.join("pebble.key"),
        "httpPort": http_port,
        "tlsPort": free_port(),
        "ocspResponderURL": "",
        "externalAccountBindingRequired": false
    }});
    fs::write(dir.join("pebble.json"), config.to_string()).unwrap();
    let log = |name: &str| fs::File::create(dir.join(name)).unwrap();
    let dns_srv = Command::new("pebble-challtestsrv")
        .args(["-defaultIPv4", "127.0.0.1", "-defaultIPv6", ""])
        .args(["-dns01", &format!("127.0.0.1:{dns}")])
        .args(["-http01", "", "-https01", "", "-tlsalpn01", ""])
        .args(["-management", &format!("127.0.0.1:{chall}")])
        .stdout(log("challtestsrv.log"))
        .stderr(log("challtestsrv.err"))
        .spawn()
        .expect("pebble-challtestsrv");
    let pebble = Command::new("pebble")
        .arg("-config")
        .arg(dir.join("pebble.json"))
        .args(["-dnsserver", &format!("127.0.0.1:{dns}")])
        .env("PEBBLE_VA_NOSLEEP", "1")
        .env("PEBBLE_WFE_NONCEREJECT", "0")
        .stdin(Stdio::null())
        .stdout(log("pebble.log"))
        .stderr(log("pebble.err"))
        .spawn()
        .expect("pebble");
    let acme = Acme {
        children: vec![dns_srv, pebble],
        directory: format!("https://127.0.0.1:{api}/dir"),
    };
    let deadline = Instant::now() + Duration::from_secs(15);
    while std::net::TcpStream::connect(("127.0.0.1", api)).is_err() {
        assert!(
            Instant::now() < deadline,
            "pebble did not listen: {}",
            fs::read_to_string(dir.join("pebble.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    acme
}

fn ready() -> bool {
    require_root()
        && require_bin("setfacl").is_some()
        && require_bin("certbot").is_some()
        && require_bin("pebble").is_some()
        && require_bin("pebble-challtestsrv").is_some()
        && require_bin("openssl").is_some()
        && require_bin("curl").is_some()
}

#[test]
fn certbot_through_nginx() {
    if !ready() {
        return;
    }
    let sb = Sandbox::new("cbn");
    let Some(nginx) = SitesNginx::start(&sb.path("nginx")) else {
        return;
    };
    walk_certbot(&sb, &nginx, "nginx", "cn");
}

#[test]
fn certbot_through_apache() {
    if !ready() {
        return;
    }
    let sb = Sandbox::new("cba");
    let Some(apache) = SitesApache::start(&sb.path("apache/sites-enabled")) else {
        return;
    };
    walk_certbot(&sb, &apache, "apache", "ca");
}

fn walk_certbot(sb: &Sandbox, web: &dyn WebServer, server: &str, tag: &str) {
    let u = user_name(tag);
    let _users = UserGuard(vec![u.clone()]);
    let corral = sb.start_corral();
    let acme_dir = sb.path("pebble");
    fs::create_dir(&acme_dir).unwrap();
    let acme = start_acme(&acme_dir, web.port());
    let certbot = format!(
        "certbot --server {} --no-verify-ssl --work-dir {} --logs-dir {}",
        acme.directory,
        sb.path("certbot-work").display(),
        sb.path("certbot-logs").display()
    );
    let env = sb.env(Some(&corral), Some(web));
    let d = format!("{tag}{}.test", std::process::id());
    let o = sb.site(
        &env,
        &[("CORRAL_SITES_CERTBOT_COMMAND", &certbot)],
        &["add", &d, "--user", &u, "--webserver", server, "--certbot"],
    );
    let log = || {
        format!(
            "{}\n{}\n{}",
            fs::read_to_string(acme_dir.join("pebble.log")).unwrap_or_default(),
            fs::read_to_string(sb.path("certbot-logs/letsencrypt.log"))
                .unwrap_or_default()
                .lines()
                .rev()
                .take(40)
                .collect::<Vec<_>>()
                .join("\n"),
            web.error_log()
        )
    };
    assert_eq!(o.code, Some(0), "{}\n{}", o.all(), log());
    assert!(o.stdout.contains("[certbot]"), "{}", o.all());
    assert!(o.stdout.contains("verified: https://"), "{}", o.all());
    let live = sb.path(&format!("letsencrypt/live/{d}/fullchain.pem"));
    assert!(live.exists(), "certbot's certificate");
    // The challenge came from the root-owned ACME dir, never the docroot.
    assert!(!sb.docroot(&u, &d).join(".well-known").exists());

    write_as_owner(
        &sb.docroot(&u, &d).join("index.php"),
        "<?php echo 'acme-site ', $_SERVER['HTTPS'] ?? 'no';",
        &u,
    );
    let r = curl(&[
        "-k",
        "--resolve",
        &format!("{d}:{}:127.0.0.1", web.tls_port()),
        &format!("https://{d}:{}/index.php", web.tls_port()),
    ]);
    assert_eq!(
        (r.status, String::from_utf8_lossy(&r.body).into_owned()),
        (200, "acme-site on".to_string())
    );
    let r = curl(&[
        "-H",
        &format!("Host: {d}"),
        &format!("http://127.0.0.1:{}/", web.port()),
    ]);
    assert_eq!(r.status, 301);
    // The certificate served is certbot's (pebble's issuer), not another.
    let served = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "echo | openssl s_client -connect 127.0.0.1:{} -servername {d} 2>/dev/null | openssl x509 -noout -issuer",
            web.tls_port()
        ))
        .output()
        .unwrap();
    let issuer = String::from_utf8_lossy(&served.stdout);
    assert!(issuer.to_lowercase().contains("pebble"), "issuer: {issuer}");
    ok(&sb.site(&env, &[], &["remove", &d, "--yes", "--purge"]));
}
