//! The pool files corral would load: a TCP listener any local process can
//! reach (every tenant's PHP is a local process), and pool files others
//! can read.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use corral_config::exposure::Exposure;
use corral_config::Pool;

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
    let exposed = corral_config::exposure::exposures(&config.pools);
    let mut out: Vec<Finding> = config
        .pools
        .iter()
        .flat_map(|p| pool_findings(p, &exposed))
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

fn pool_findings(p: &Pool, exposed: &[Exposure]) -> Vec<Finding> {
    let check = format!("pool {}", p.name);
    let mut out: Vec<Finding> = exposed
        .iter()
        .filter(|e| e.pool == p.name)
        .map(|e| exposure_finding(&check, e))
        .collect();
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

/// A listener corral's config rule (the `-t` warning) finds reachable.
fn exposure_finding(check: &str, e: &Exposure) -> Finding {
    let why = match &e.loopback_allowed {
        None => "no listen.allowed_clients".to_string(),
        Some(a) => format!(
            "listen.allowed_clients = {a} admits loopback, where every pool's PHP connects from"
        ),
    };
    Finding::weak(
        check,
        format!("{} on TCP, {why}", e.directive),
        format!(
            "another tenant's PHP {}: listen on a unix socket only the web server may connect to (listen.mode 0660)",
            e.consequence
        ),
    )
}
