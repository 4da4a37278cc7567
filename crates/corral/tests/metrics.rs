//! Prometheus metrics for every pool (`corral.metrics_listen`), scraped by
//! a real Prometheus (Debian's `prometheus`, on loopback with a temporary
//! config and a one-second scrape interval) and read back through its
//! HTTP query API; `corral metrics` prints the same; and the master keeps
//! serving while hostile clients hammer the metrics address.

mod common;
mod operator_support;

use std::io::Write;
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::*;
use operator_support::*;
use serde_json::Value;

/// A Prometheus of our own, stopped on drop.
struct Prometheus {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Prometheus {
    fn start(bin: &std::path::Path, target: &str) -> Prometheus {
        let dir = temp_dir("prometheus");
        let config = dir.path().join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
                 scrape_configs:\n  - job_name: corral\n    static_configs:\n      - targets: ['{target}']\n"
            ),
        )
        .unwrap();
        let port = free_port();
        let log = std::fs::File::create(dir.path().join("prometheus.log")).unwrap();
        let child = Command::new(bin)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--log.level=warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start prometheus");
        Prometheus {
            child,
            port,
            _dir: dir,
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self._dir.path().join("prometheus.log")).unwrap_or_default()
    }

    /// The `result` of an instant query, when Prometheus answers.
    fn query(&self, promql: &str) -> Option<Vec<Value>> {
        let path = format!("/api/v1/query?query={}", url_encode(promql));
        let r = http_request(("127.0.0.1", self.port), "GET", &path, &[], b"").ok()?;
        let v: Value = serde_json::from_str(&r.body).ok()?;
        (v["status"] == "success").then(|| v["data"]["result"].as_array().cloned())?
    }

    /// pool label → value, for a query whose series carry `pool`.
    fn by_pool(&self, promql: &str) -> Option<Vec<(String, f64)>> {
        let mut out: Vec<(String, f64)> = self
            .query(promql)?
            .iter()
            .filter_map(|s| {
                let pool = s["metric"]["pool"].as_str()?.to_string();
                let v = s["value"][1].as_str()?.parse().ok()?;
                Some((pool, v))
            })
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Some(out)
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const LIMIT: Duration = Duration::from_secs(60);

/// Wait until `promql` gives a value for both pools that `ok` accepts.
fn both_pools(p: &Prometheus, promql: &str, ok: impl Fn(&str, f64) -> bool) -> Vec<(String, f64)> {
    eventually(
        LIMIT,
        &format!("{promql} for alpha and beta\n{}", p.log()),
        || {
            let rows = p.by_pool(promql)?;
            let names: Vec<&str> = rows.iter().map(|(n, _)| n.as_str()).collect();
            (names == ["alpha", "beta"] && rows.iter().all(|(n, v)| ok(n, *v))).then_some(rows)
        },
    )
}

#[test]
fn a_real_prometheus_scrapes_both_pools() {
    if !require_root() {
        return;
    }
    let Some(bin) = require_bin("prometheus") else {
        return;
    };
    let m = Metered::start();
    m.traffic(0, 3, 0);
    m.traffic(1, 5, 30);
    let prom = Prometheus::start(&bin, &m.addr());

    let up = eventually(LIMIT, &format!("the target is up\n{}", prom.log()), || {
        let r = prom.query("up{job=\"corral\"}")?;
        (r.first()?["value"][1] == "1").then_some(r)
    });
    println!("up: {}", Value::Array(up));

    let accepted = both_pools(&prom, "phpfpm_accepted_connections_total", |pool, v| {
        v >= if pool == "alpha" { 3.0 } else { 5.0 }
    });
    println!("phpfpm_accepted_connections_total: {accepted:?}");
    let idle = both_pools(&prom, "phpfpm_total_processes", |_, v| v >= 1.0);
    println!("phpfpm_total_processes: {idle:?}");
    let max = both_pools(&prom, "corral_pool_max_children", |_, _| true);
    assert_eq!(max, [("alpha".into(), 2.0), ("beta".into(), 3.0)]);
    let running = both_pools(
        &prom,
        "corral_pool_prototype_state{state=\"running\"}",
        |_, v| v == 1.0,
    );
    println!("corral_pool_prototype_state{{state=\"running\"}}: {running:?}");
    let count = both_pools(
        &prom,
        "corral_pool_request_duration_seconds_count",
        |pool, v| v >= if pool == "alpha" { 3.0 } else { 5.0 },
    );
    println!("corral_pool_request_duration_seconds_count: {count:?}");
    // beta's requests sleep 30 ms: none of them is under 25 ms.
    let fast = both_pools(
        &prom,
        "corral_pool_request_duration_seconds_bucket{le=\"0.025\"}",
        |_, _| true,
    );
    let beta_fast = fast.iter().find(|(n, _)| n == "beta").unwrap().1;
    assert_eq!(beta_fast, 0.0, "{fast:?}");
    let p99 = both_pools(
        &prom,
        "histogram_quantile(0.99, sum by (pool, le) (corral_pool_request_duration_seconds_bucket))",
        |_, v| v.is_finite(),
    );
    println!("histogram_quantile(0.99, ...): {p99:?}");
    let beta_p99 = p99.iter().find(|(n, _)| n == "beta").unwrap().1;
    assert!((0.025..=0.1).contains(&beta_p99), "{p99:?}");
    let opcache = both_pools(&prom, "corral_pool_opcache_used_memory_bytes", |_, v| {
        v > 0.0
    });
    println!("corral_pool_opcache_used_memory_bytes: {opcache:?}");
    if have_cgroups() {
        // alpha has a cgroup, beta none: only alpha has cgroup series.
        for q in ["corral_pool_memory_bytes", "corral_pool_cpu_seconds_total"] {
            let rows = eventually(LIMIT, q, || {
                let rows = prom.by_pool(q)?;
                (rows.len() == 1 && rows[0].0 == "alpha" && rows[0].1 > 0.0).then_some(rows)
            });
            println!("{q}: {rows:?}");
        }
    } else {
        skip("no cgroup hierarchy: the cgroup series are not checked");
    }
    let reloads = both_pools(&prom, "corral_pool_reloads_total", |_, v| v == 0.0);
    println!("corral_pool_reloads_total: {reloads:?}");

    // A reload of beta alone shows in its series and nowhere else.
    let mut m = m;
    let conf = two_pools_conf().replace("pm.max_children = 3", "pm.max_children = 4");
    m.server.rewrite_config(&conf);
    let out = m.server.control(&["reload", "beta"]);
    assert!(out.status.success(), "{}", out.all());
    let reloads = both_pools(&prom, "corral_pool_reloads_total", |pool, v| {
        v == if pool == "beta" { 1.0 } else { 0.0 }
    });
    println!("after reloading beta, corral_pool_reloads_total: {reloads:?}");
    // Its connections keep counting across the new generation.
    m.traffic(1, 1, 0);
    both_pools(&prom, "phpfpm_accepted_connections_total", |pool, v| {
        v >= if pool == "alpha" { 3.0 } else { 6.0 }
    });
    both_pools(&prom, "corral_pool_max_children", |pool, v| {
        v == if pool == "alpha" { 2.0 } else { 4.0 }
    });
}

#[test]
fn corral_metrics_prints_the_same_page() {
    if !require_root() {
        return;
    }
    let m = Metered::start();
    m.traffic(0, 2, 0);
    let out = m.server.control(&["metrics"]);
    assert!(out.status.success(), "{}", out.all());
    let text = out.stdout.clone();
    assert!(
        text.contains("phpfpm_accepted_connections_total{pool=\"alpha\"} 2"),
        "{text}"
    );
    assert!(
        text.contains("phpfpm_idle_processes{pool=\"beta\"}"),
        "{text}"
    );
    assert!(!text.contains("# EOF"));
    let om = m.server.control(&["metrics", "--openmetrics"]);
    assert!(om.stdout.trim_end().ends_with("# EOF"), "{}", om.all());
    let json = m.server.control(&["metrics", "--json"]);
    assert_eq!(json.code, Some(0), "{}", json.all());
    let v: Value = serde_json::from_str(&json.stdout).expect("JSON");
    assert_eq!(v["pools"][0]["name"], "alpha");
    assert_eq!(v["pools"][1]["name"], "beta");
    let served = m.get("/metrics", &[]);
    assert_eq!(served.status, 200);
    assert!(served
        .body
        .contains("phpfpm_accepted_connections_total{pool=\"alpha\"} 2"));
    let bad = m.server.control(&["metrics", "--xml"]);
    assert_eq!(bad.code, Some(64), "{}", bad.all());
    let both = m.server.control(&["metrics", "--json", "--openmetrics"]);
    assert_eq!(both.code, Some(64), "{}", both.all());
}

#[test]
fn hostile_clients_cannot_hurt_the_master() {
    if !require_root() {
        return;
    }
    let m = Metered::start();
    let addr = m.addr();
    // Silent connections, far more than the server keeps.
    let silent: Vec<TcpStream> = (0..300)
        .filter_map(|_| TcpStream::connect(&addr).ok())
        .collect();
    // Half-sent requests, a huge header, garbage, and clients that ask for
    // the page and never read it.
    let mut slow: Vec<TcpStream> = (0..20)
        .filter_map(|_| TcpStream::connect(&addr).ok())
        .collect();
    for s in &mut slow {
        let _ = s.write_all(b"GET /metrics HTTP/1.1\r\nX-Slow: ");
    }
    for raw in [
        vec![b'A'; 1 << 20],
        b"\x00\x01\x02\r\n\r\n".to_vec(),
        b"GET /metrics HTTP/1.1\r\nHost: evil.example\r\n\r\n".to_vec(),
    ] {
        if let Ok(mut s) = TcpStream::connect(&addr) {
            let _ = s.write_all(&raw);
        }
    }
    let readers: Vec<TcpStream> = (0..20)
        .filter_map(|_| {
            let mut s = TcpStream::connect(&addr).ok()?;
            s.write_all(b"GET /api/snapshot HTTP/1.1\r\n\r\n").ok()?;
            Some(s)
        })
        .collect();
    // The master still serves PHP, its metrics and its control socket.
    m.traffic(0, 3, 0);
    m.traffic(1, 3, 0);
    let r = eventually(
        Duration::from_secs(30),
        "a scrape among hostile clients",
        || {
            let r = m.get("/metrics", &[]);
            (r.status == 200).then_some(r)
        },
    );
    assert!(
        r.body
            .contains("phpfpm_accepted_connections_total{pool=\"beta\"} 3"),
        "{}",
        r.body
    );
    let out = m.server.control(&["metrics"]);
    assert!(out.status.success());
    drop((silent, slow, readers));
    assert!(m.server.log.lines().iter().all(|l| !l.contains("panicked")));
    // And it still stops cleanly.
    let mut m = m;
    assert!(m.server.is_running());
    assert_eq!(m.server.stop().code(), Some(0));
}
