//! The pool files corral would load: a TCP listener any local process can
//! reach (every tenant's PHP is a local process), and pool files others
//! can read.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use corral_config::{Listen, Pool};

use super::Finding;

/// One finding per pool that is weak, or one saying all are fine.
pub fn check(fpm_config: &Path) -> Vec<Finding> {
    let check = format!("pools ({})", fpm_config.display());
    if !fpm_config.exists() {
        return vec![Finding::ok(check, "no config", "nothing to check")];
    }
    let opts = corral_config::LoadOptions {
        allow_run_as_root: true,
        ..Default::default()
    };
    let config = match corral_config::load(fpm_config, &opts) {
        Ok(c) => c,
        Err(e) => {
            return vec![Finding::weak(
                check,
                "invalid",
                format!("it does not load: {e}"),
            )]
        }
    };
    let n = config.pools.len();
    let mut out: Vec<Finding> = config
        .pools
        .iter()
        .flat_map(|p| pool_findings(p, n))
        .collect();
    if out.is_empty() {
        out.push(Finding::ok(
            check,
            format!("{} pool(s)", config.pools.len()),
            "no TCP listener without listen.allowed_clients, no pool file readable by others",
        ));
    }
    out
}

fn pool_findings(p: &Pool, pools: usize) -> Vec<Finding> {
    let mut out = Vec::new();
    let check = format!("pool {}", p.name);
    let tcp = |l: &Listen| matches!(l, Listen::Tcp { .. });
    let listeners = [
        (
            "listen",
            tcp(&p.listen),
            "send it FastCGI and run any PHP (PHP_ADMIN_VALUE) as this pool's user",
        ),
        (
            "pm.status_listen",
            p.pm_status_listen.as_ref().is_some_and(tcp),
            "read its status page with the URIs of its requests",
        ),
    ];
    for (directive, on_tcp, then) in listeners {
        if !on_tcp {
            continue;
        }
        let why = match &p.listen_allowed_clients {
            None => "no listen.allowed_clients".to_string(),
            Some(a) if pools > 1 && a.iter().any(|c| is_loopback(c)) => format!(
                "listen.allowed_clients = {} admits loopback, where every pool's PHP connects from",
                a.join(",")
            ),
            Some(_) => continue,
        };
        out.push(Finding::weak(
            &check,
            format!("{directive} on TCP, {why}"),
            format!(
                "another tenant's PHP can {then}: listen on a unix socket only the web server may connect to (listen.mode 0660)"
            ),
        ));
    }
    if let Ok(m) = std::fs::metadata(&p.source.file) {
        if m.mode() & 0o077 != 0 {
            out.push(Finding::weak(
                &check,
                format!("{} mode {:04o}", p.source.file.display(), m.mode() & 0o7777),
                "tenants can read its env[] secrets and paths: chmod 600 (corral site writes 0600)",
            ));
        }
    }
    out
}

fn is_loopback(client: &str) -> bool {
    let c = client.trim();
    c == "localhost"
        || c.parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}
