//! Warnings about TCP listeners that tenants can reach.
//!
//! Any process on the host may connect to a TCP socket, and FastCGI has no
//! authentication: a tenant's PHP that reaches another pool's `listen` can
//! run code as that pool's user (`PHP_ADMIN_VALUE` is honoured there, as
//! in php-fpm), and one that reaches its `pm.status_listen` reads its
//! status. `listen.allowed_clients` is the only filter, and it cannot tell
//! tenants apart on loopback, where all of them connect from. php-fpm says
//! nothing about this; corral warns and carries on (the exit code of `-t`
//! stays 0), since a single-tenant host may mean it.

use std::net::IpAddr;

use crate::error::{ConfigError, Diagnostic};
use crate::pool::{Listen, Pool};

/// What a listener hands to whoever reaches it.
const RUNS_PHP: &str = "can send it FastCGI requests and run any PHP code as this pool's user";
const SHOWS_STATUS: &str = "can read this pool's status page, with the URIs of its requests";

/// One TCP listener another tenant can reach.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exposure {
    pub pool: String,
    /// `listen` or `pm.status_listen`.
    pub directive: &'static str,
    pub address: String,
    /// What whoever reaches it can do, as the end of a sentence.
    pub consequence: &'static str,
    /// `None`: no `listen.allowed_clients` at all; `Some(list)`: the list
    /// admits loopback, where every pool's PHP connects from.
    pub loopback_allowed: Option<String>,
    /// How many pools the host runs (the loopback case needs more than one).
    pub pools: usize,
}

/// Every TCP `listen` / `pm.status_listen` a tenant can reach. The one
/// rule both the config warnings and `corral doctor` report from.
pub fn exposures(pools: &[Pool]) -> Vec<Exposure> {
    let mut out = Vec::new();
    for p in pools {
        let status = p.settings.non_empty("pm.status_listen");
        let listeners = [
            ("listen", Some(p.listen_address.clone()), RUNS_PHP),
            ("pm.status_listen", status, SHOWS_STATUS),
        ];
        for (directive, address, consequence) in listeners {
            let Some(address) = address else { continue };
            out.extend(exposure(p, pools.len(), directive, address, consequence));
        }
    }
    out
}

/// One warning per exposure.
pub(crate) fn warnings(pools: &[Pool]) -> Vec<Diagnostic> {
    exposures(pools)
        .into_iter()
        .map(|e| ConfigError::from(e).into())
        .collect()
}

impl From<Exposure> for ConfigError {
    fn from(e: Exposure) -> ConfigError {
        match e.loopback_allowed {
            None => ConfigError::TcpListenerOpen {
                pool: e.pool,
                directive: e.directive,
                address: e.address,
                consequence: e.consequence,
            },
            Some(allowed) => ConfigError::TcpListenerLoopback {
                pool: e.pool,
                directive: e.directive,
                address: e.address,
                allowed,
                pools: e.pools,
                consequence: e.consequence,
            },
        }
    }
}

fn exposure(
    p: &Pool,
    pools: usize,
    directive: &'static str,
    address: String,
    consequence: &'static str,
) -> Option<Exposure> {
    let Listen::Tcp { host, .. } = Listen::parse(&address) else {
        return None;
    };
    let found = |loopback_allowed| Exposure {
        pool: p.name.clone(),
        directive,
        address: address.clone(),
        consequence,
        loopback_allowed,
        pools,
    };
    let Some(allowed) = &p.listen_allowed_clients else {
        return Some(found(None));
    };
    // No host binds every address, loopback included.
    let on_loopback = match host.as_deref() {
        None => true,
        Some(h) => reaches_loopback(h),
    };
    let admits_loopback = allowed.iter().any(|c| is_loopback(c));
    (pools > 1 && on_loopback && admits_loopback).then(|| found(Some(allowed.join(","))))
}

/// Whether a socket bound to `host` accepts connections to a loopback
/// address: a loopback address itself, or a wildcard.
fn reaches_loopback(host: &str) -> bool {
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    match host.parse::<IpAddr>() {
        Ok(ip) => ip.is_unspecified() || is_loopback_ip(ip),
        Err(_) => false,
    }
}

/// An allowed_clients entry for loopback (taken as php-fpm takes it: an
/// entry that is not an address admits nobody).
fn is_loopback(client: &str) -> bool {
    client.parse::<IpAddr>().is_ok_and(is_loopback_ip)
}

fn is_loopback_ip(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => {
            v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::{parse_str, Config, Level, LoadOptions};

    fn load(text: &str) -> Config {
        let opts = LoadOptions {
            allow_run_as_root: true,
            ..Default::default()
        };
        parse_str(text, Path::new("t.conf"), &opts).unwrap_or_else(|e| panic!("{e}"))
    }

    fn pool(name: &str, extra: &str) -> String {
        format!("[{name}]\nuser = nobody\npm = static\npm.max_children = 1\n{extra}\n")
    }

    /// The exposure warnings only (other warnings left out).
    fn warned(text: &str) -> Vec<String> {
        let c = load(text);
        assert!(
            c.warnings.iter().all(|d| !d.message.contains("TCP socket")),
            "exposures are kept apart from php-fpm's warnings: {:?}",
            c.warnings
        );
        c.exposures
            .iter()
            .inspect(|d| assert_eq!(d.level, Level::Warning))
            .map(|d| d.message.clone())
            .collect()
    }

    const OPEN_TAIL: &str = "Listen on a unix socket that only the web server may connect to, or set listen.allowed_clients to the web server's address.";

    #[test]
    fn unix_sockets_and_filtered_remote_tcp_are_quiet() {
        assert!(warned(&pool("a", "listen = /run/a.sock")).is_empty());
        assert!(warned(&pool(
            "a",
            "listen = /run/a.sock\npm.status_listen = /run/s.sock"
        ))
        .is_empty());
        // One pool on loopback with a filter: the web server is its only
        // other client.
        assert!(warned(&pool(
            "a",
            "listen = 127.0.0.1:9000\nlisten.allowed_clients = 127.0.0.1"
        ))
        .is_empty());
        // Several pools, each filtered to a remote web server.
        let two = pool(
            "a",
            "listen = 0.0.0.0:9000\nlisten.allowed_clients = 10.0.0.9",
        ) + &pool("b", "listen = /run/b.sock");
        assert!(warned(&two).is_empty());
    }

    #[test]
    fn tcp_without_allowed_clients() {
        let w = warned(&pool(
            "victim",
            "listen = 127.0.0.1:9000\npm.status_listen = 9001",
        ));
        assert_eq!(
            w,
            vec![
                format!("[pool victim] listen = 127.0.0.1:9000 is a TCP socket without listen.allowed_clients: every process on this host, other tenants' PHP included, can send it FastCGI requests and run any PHP code as this pool's user. {OPEN_TAIL}"),
                format!("[pool victim] pm.status_listen = 9001 is a TCP socket without listen.allowed_clients: every process on this host, other tenants' PHP included, can read this pool's status page, with the URIs of its requests. {OPEN_TAIL}"),
            ]
        );
        let w = warned(&pool(
            "v",
            "listen = /run/v.sock\npm.status_listen = [::1]:9001",
        ));
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].starts_with("[pool v] pm.status_listen = [::1]:9001 is a TCP socket"));
    }

    #[test]
    fn loopback_with_several_pools() {
        let victim = pool(
            "victim",
            "listen = /run/v.sock\npm.status_listen = 127.0.0.1:9001\nlisten.allowed_clients = 10.0.0.9,127.0.0.1",
        );
        // Alone on the host, the filter is enough.
        assert!(warned(&victim).is_empty());
        let two = victim + &pool("attacker", "listen = /run/a.sock");
        assert_eq!(
            warned(&two),
            vec!["[pool victim] pm.status_listen = 127.0.0.1:9001 admits clients on loopback (listen.allowed_clients = 10.0.0.9,127.0.0.1), where the PHP of all 2 pools on this host connects from too, so another tenant can read this pool's status page, with the URIs of its requests. Listen on a unix socket that only the web server may connect to.".to_string()]
        );
        // Wildcards and `localhost` accept loopback connections too;
        // an IPv4-mapped loopback client is loopback.
        for (listen, allowed) in [
            ("9000", "127.0.0.1"),
            ("0.0.0.0:9000", "::1"),
            ("[::]:9000", "127.0.0.2"),
            ("localhost:9000", "::ffff:127.0.0.1"),
        ] {
            let text = pool(
                "a",
                &format!("listen = {listen}\nlisten.allowed_clients = {allowed}"),
            ) + &pool("b", "listen = /run/b.sock");
            let w = warned(&text);
            assert_eq!(w.len(), 1, "{listen} {allowed}: {w:?}");
            assert!(w[0].contains("can send it FastCGI requests"), "{}", w[0]);
        }
        // A listener on a non-loopback address, filtered to loopback
        // clients only, cannot be reached from loopback.
        let text = pool(
            "a",
            "listen = 10.0.0.5:9000\nlisten.allowed_clients = 127.0.0.1",
        ) + &pool("b", "listen = /run/b.sock");
        assert!(warned(&text).is_empty());
    }

    #[test]
    fn rendered_pools_do_not_warn_again() {
        let c = load(&pool("a", "listen = 127.0.0.1:9000"));
        assert_eq!(c.exposures.len(), 1);
        let text = crate::render_pool(&c, "a").unwrap();
        let opts = LoadOptions {
            resolved: true,
            ..Default::default()
        };
        let r = parse_str(&text, Path::new("r"), &opts).unwrap();
        assert!(r.exposures.is_empty(), "{:?}", r.exposures);
        assert!(r.warnings.is_empty(), "{:?}", r.warnings);
    }
}
