//! Shared by the operator's-view tests (`metrics.rs`, `dashboard.rs`,
//! `top.rs`): a corral with two pools and `corral.metrics_listen` on a
//! loopback port, traffic for each pool, and HTTP to the metrics address.
#![allow(dead_code)]

use std::time::{Duration, Instant};

use crate::common::{http_request, pool_conf, Corral, HttpResponse, Server};

/// Two pools, `alpha` (static, in a cgroup of its own) and `beta`
/// (dynamic, no cgroup), on unix sockets, with the metrics and dashboard
/// on 127.0.0.1:{port}.
pub fn two_pools_conf() -> String {
    let alpha = pool_conf(
        "pm = static\npm.max_children = 2\nlisten = {dir}/alpha.sock\ncorral.memory_max = 256M",
    )
    .replace("[www]", "[alpha]");
    let alpha = alpha.replace(
        "[global]\n",
        "[global]\ncorral.metrics_listen = 127.0.0.1:{port}\n",
    );
    format!(
        "{alpha}\n[beta]\nuser = {{user}}\nlisten = {{dir}}/beta.sock\npm = dynamic\npm.max_children = 3\n\
         pm.start_servers = 1\npm.min_spare_servers = 1\npm.max_spare_servers = 2\n"
    )
}

pub struct Metered {
    pub server: Server,
}

impl Metered {
    pub fn start() -> Metered {
        let server = Corral::start(&two_pools_conf());
        Metered { server }
    }

    /// 127.0.0.1:PORT of the metrics address.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.server.placeholders.port)
    }

    /// `n` requests to pool `pool` (0 alpha, 1 beta), each `ms` long.
    pub fn traffic(&self, pool: usize, n: usize, ms: u64) {
        for _ in 0..n {
            let r = self
                .server
                .try_get_to(pool, "pid.php", &format!("sleep_ms={ms}"))
                .unwrap_or_else(|e| {
                    panic!("request to pool {pool}: {e}\n{}", self.server.log.text())
                });
            assert_eq!(r.status, 200, "{r:?}");
        }
    }

    pub fn get(&self, path: &str, headers: &[(&str, &str)]) -> HttpResponse {
        http_request(self.addr(), "GET", path, headers, b"")
            .unwrap_or_else(|e| panic!("GET {path}: {e}\n{}", self.server.log.text()))
    }
}

/// The host has a cgroup hierarchy corral can put pools in.
pub fn have_cgroups() -> bool {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .any(|l| l.contains(" - cgroup"))
}

/// `%XX` for everything but unreserved characters (for PromQL in a URL).
pub fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Retry `f` until it gives Some, or panic with `what` after `limit`.
pub fn eventually<T>(limit: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return v;
        }
        if Instant::now() > deadline {
            panic!("not within {limit:?}: {what}");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}
