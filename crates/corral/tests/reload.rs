//! Reloads: SIGUSR2 / SIGHUP and `corral reload [POOL...]` change only what
//! changed. An untouched pool keeps its workers and its OPcache; a changed
//! pool gets new workers while the old ones finish their requests; the
//! listening sockets stay open; a broken config is reported and the running
//! pools keep serving. Then the same under load through real nginx.

mod common;

use common::*;
use serde_json::Value;
use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

fn against_php_fpm() -> bool {
    std::env::var("CORRAL_TEST_AGAINST").as_deref() == Ok("php-fpm")
}

/// Reload tests drive `corral reload` / `corral status`: corral only.
fn corral_only() -> bool {
    if !require_root() {
        return false;
    }
    if against_php_fpm() {
        skip("php-fpm restarts every pool on reload; these tests are corral's");
        return false;
    }
    true
}

/// OPcache does not cache files modified in the last 2 s
/// (opcache.file_update_protection), and the docroot is copied just before
/// the server starts: without this the first requests never hit.
const NO_FUP: &str = "php_admin_value[opcache.file_update_protection] = 0";

/// Two pools, `a` and `b`, each with its own precision (a php_value the
/// tests change to make a pool "changed").
fn two_pools(prec_a: u32, prec_b: u32, extra_global: &str) -> String {
    format!(
        "[global]\nerror_log = {{dir}}/error.log\n{extra_global}\n\
         [a]\nlisten = {{dir}}/a.sock\nuser = {{user}}\npm = static\npm.max_children = 2\n\
         php_value[precision] = {prec_a}\n{NO_FUP}\n\n\
         [b]\nlisten = {{dir}}/b.sock\nuser = {{user}}\npm = static\npm.max_children = 2\n\
         php_value[precision] = {prec_b}\n{NO_FUP}\n"
    )
}

/// key=value lines of opcache.php's answer from pool `n` (0 = a, 1 = b).
#[derive(Debug, Clone)]
struct Op {
    pid: i32,
    hits: i64,
    precision: String,
    enabled: bool,
}

fn op(s: &Server, n: usize) -> Op {
    let r = s
        .try_get_to(n, "opcache.php", "")
        .unwrap_or_else(|e| panic!("request to pool #{n}: {e}\n{}", s.log.text()));
    assert_eq!(r.status, 200, "{r:?}");
    Op {
        pid: r.kv("pid").unwrap().parse().unwrap(),
        hits: r.kv("hits").unwrap().parse().unwrap(),
        precision: r.kv("precision").unwrap(),
        enabled: r.kv("enabled").as_deref() == Some("1"),
    }
}

/// Worker pids of `pool` according to `corral status POOL --json`.
fn pool_pids(s: &Server, pool: &str) -> BTreeSet<i32> {
    let out = s.control(&["status", pool, "--json"]);
    assert_eq!(out.code, Some(0), "corral status {pool}: {}", out.all());
    let v: Value = serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("status JSON ({e}): {}", out.stdout));
    v.as_array()
        .and_then(|a| a.first())
        .and_then(|p| p["processes"].as_array())
        .unwrap_or_else(|| panic!("processes of {pool}: {v}"))
        .iter()
        .map(|p| p["pid"].as_i64().unwrap() as i32)
        .collect()
}

/// Waits until `pool`'s pids are `n` and disjoint from `old`.
fn wait_new_pids(s: &Server, pool: &str, old: &BTreeSet<i32>, n: usize) -> BTreeSet<i32> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let now = pool_pids(s, pool);
        if now.len() == n && now.is_disjoint(old) {
            return now;
        }
        if Instant::now() > deadline {
            panic!(
                "pool {pool} still has {now:?} (old {old:?}) 10 s after the reload\n{}",
                s.log.text()
            );
        }
        thread::sleep(Duration::from_millis(50));
    }
}

fn inode(path: &std::path::Path) -> u64 {
    fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .ino()
}

fn reload(s: &Server, pools: &[&str]) -> Output {
    let mut args = vec!["reload"];
    args.extend_from_slice(pools);
    s.control(&args)
}

#[test]
fn reload_keeps_unchanged_pool_workers_and_opcache() {
    if !corral_only() {
        return;
    }
    let mut s = Corral::start(&two_pools(14, 14, ""));
    let (a_sock, b_sock) = (s.dir().join("a.sock"), s.dir().join("b.sock"));
    let (a_ino, b_ino) = (inode(&a_sock), inode(&b_sock));
    // Warm both OPcaches.
    for _ in 0..6 {
        op(&s, 0);
        op(&s, 1);
    }
    let a_before = op(&s, 0);
    let b_before = op(&s, 1);
    assert!(a_before.enabled && b_before.enabled, "OPcache must be on");
    assert!(b_before.hits >= 5, "{b_before:?}");
    let a_pids = pool_pids(&s, "a");
    let b_pids = pool_pids(&s, "b");
    assert_eq!(a_pids.len(), 2);
    assert_eq!(b_pids.len(), 2);

    s.rewrite_config(&two_pools(10, 14, ""));
    let out = reload(&s, &[]);
    assert_eq!(out.code, Some(0), "{}", out.all());
    assert!(
        out.stdout.contains("[pool a] reloaded"),
        "summary: {}",
        out.all()
    );
    assert!(
        out.stdout.contains("[pool b] unchanged"),
        "summary: {}",
        out.all()
    );
    s.expect_log("Reloading in progress ...", Duration::from_secs(2));

    // a: new workers, new ini, fresh OPcache.
    let a_new = wait_new_pids(&s, "a", &a_pids, 2);
    let a_after = op(&s, 0);
    assert_eq!(a_after.precision, "10", "{a_after:?}");
    assert!(a_new.contains(&a_after.pid), "{a_after:?} vs {a_new:?}");
    assert!(
        a_after.hits < a_before.hits,
        "a changed pool gets a new prototype and so a new OPcache: before {a_before:?}, after {a_after:?}"
    );
    // b: the same workers, and an OPcache that keeps counting.
    assert_eq!(
        pool_pids(&s, "b"),
        b_pids,
        "pool b is unchanged: same workers"
    );
    let b_after = op(&s, 1);
    assert_eq!(b_after.precision, "14");
    assert!(b_pids.contains(&b_after.pid));
    assert!(
        b_after.hits > b_before.hits,
        "pool b's OPcache must survive the reload: before {b_before:?}, after {b_after:?}"
    );
    // Old a workers are gone; the sockets are the same sockets.
    thread::sleep(Duration::from_millis(300));
    for p in &a_pids {
        assert!(!pid_alive(*p), "old worker {p} of pool a still running");
    }
    assert_eq!(
        inode(&a_sock),
        a_ino,
        "a.sock was recreated: listening socket closed"
    );
    assert_eq!(inode(&b_sock), b_ino, "b.sock was recreated");

    // A reload with nothing changed changes nothing.
    let out = reload(&s, &[]);
    assert_eq!(out.code, Some(0), "{}", out.all());
    assert!(
        out.stdout.contains("[pool a] unchanged") && out.stdout.contains("[pool b] unchanged"),
        "{}",
        out.all()
    );
    thread::sleep(Duration::from_millis(300));
    assert_eq!(pool_pids(&s, "a"), a_new);
    assert_eq!(pool_pids(&s, "b"), b_pids);
}

#[test]
fn reload_named_pool_only() {
    if !corral_only() {
        return;
    }
    let mut s = Corral::start(&two_pools(14, 14, ""));
    let a_pids = pool_pids(&s, "a");
    let b_pids = pool_pids(&s, "b");
    // Both pools changed in the file, but only a is named.
    s.rewrite_config(&two_pools(11, 12, ""));
    let out = reload(&s, &["a"]);
    assert_eq!(out.code, Some(0), "{}", out.all());
    assert!(out.stdout.contains("[pool a] reloaded"), "{}", out.all());
    assert!(
        !out.stdout.contains("[pool b] reloaded"),
        "only the named pool: {}",
        out.all()
    );
    wait_new_pids(&s, "a", &a_pids, 2);
    assert_eq!(op(&s, 0).precision, "11");
    assert_eq!(op(&s, 1).precision, "14", "pool b keeps its old settings");
    assert_eq!(pool_pids(&s, "b"), b_pids);

    // Now all: b's pending change is applied, a is unchanged.
    let a_now = pool_pids(&s, "a");
    let out = reload(&s, &[]);
    assert_eq!(out.code, Some(0), "{}", out.all());
    assert!(
        out.stdout.contains("[pool b] reloaded") && out.stdout.contains("[pool a] unchanged"),
        "{}",
        out.all()
    );
    wait_new_pids(&s, "b", &b_pids, 2);
    assert_eq!(op(&s, 1).precision, "12");
    assert_eq!(pool_pids(&s, "a"), a_now);

    // An unknown pool name is an error.
    let out = reload(&s, &["nosuchpool"]);
    assert_ne!(
        out.code,
        Some(0),
        "reload of an unknown pool: {}",
        out.all()
    );
}

#[test]
fn changed_pool_old_workers_finish_in_flight_requests() {
    if !corral_only() {
        return;
    }
    let mut s = Corral::start(&two_pools(14, 14, ""));
    let a_pids = pool_pids(&s, "a");
    // Two requests in flight on pool a (both its workers busy).
    let inflight: Vec<_> = (0..2)
        .map(|_| {
            let listen = s.listens[0].clone();
            let req = Request::php(&s.script("sleep.php"))
                .document_root(&s.www().display().to_string())
                .query("ms=5000");
            thread::spawn(move || request_on(&listen, &req).map_err(|e| e.to_string()))
        })
        .collect();
    thread::sleep(Duration::from_millis(400));
    s.rewrite_config(&two_pools(9, 14, ""));
    let t0 = Instant::now();
    let out = reload(&s, &["a"]);
    assert_eq!(out.code, Some(0), "{}", out.all());
    // New requests are served by the new workers while the old ones are
    // still busy: no waiting for the in-flight requests.
    let mut fresh = Vec::new();
    for _ in 0..4 {
        let o = op(&s, 0);
        fresh.push(o.clone());
        assert_eq!(o.precision, "9", "{o:?}");
        assert!(!a_pids.contains(&o.pid), "{o:?} served by an old worker");
    }
    // Ordering, not timing: the new workers answered while the old ones
    // were still busy with their (5 s) requests.
    assert!(
        inflight.iter().any(|t| !t.is_finished()),
        "new workers must answer while old ones drain (took {:?})",
        t0.elapsed()
    );
    for t in inflight {
        let r = t.join().unwrap().unwrap_or_else(|e| {
            panic!(
                "in-flight request failed during reload: {e}\n{}",
                s.log.text()
            )
        });
        assert_eq!(r.status, 200, "{r:?}");
        let pid: i32 = r.kv("pid").unwrap().parse().unwrap();
        assert!(a_pids.contains(&pid), "answered by an old worker: {pid}");
    }
    // Then the old workers go.
    let deadline = Instant::now() + Duration::from_secs(5);
    while a_pids.iter().any(|p| pid_alive(*p)) && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(50));
    }
    for p in &a_pids {
        assert!(
            !pid_alive(*p),
            "old worker {p} did not exit after its request"
        );
    }
}

#[test]
fn broken_config_is_reported_and_pools_keep_serving() {
    if !corral_only() {
        return;
    }
    let mut s = Corral::start(&two_pools(14, 14, ""));
    let a_pids = pool_pids(&s, "a");
    let b_pids = pool_pids(&s, "b");
    // A changed pool *and* a garbage line: nothing may be applied.
    let broken = format!("{}\nthis is not a directive\n", two_pools(9, 14, ""));
    let bad_line = broken
        .lines()
        .position(|l| l == "this is not a directive")
        .unwrap()
        + 1;
    s.rewrite_config(&broken);
    let out = reload(&s, &[]);
    assert_eq!(out.code, Some(78), "broken config: {}", out.all());
    let conf = s.conf_path.display().to_string();
    assert!(
        out.stderr.contains(&format!("{conf}:{bad_line}")),
        "the error names {conf}:{bad_line}: {}",
        out.all()
    );
    let line = s.expect_log("failed to reload", Duration::from_secs(2));
    assert!(line.contains("ERROR"), "{line}");
    assert!(
        s.log_contains(&format!("{conf}:{bad_line}")),
        "{}",
        s.log.text()
    );
    // Nothing changed.
    for _ in 0..4 {
        assert_eq!(op(&s, 0).precision, "14");
        assert_eq!(op(&s, 1).precision, "14");
    }
    assert_eq!(pool_pids(&s, "a"), a_pids);
    assert_eq!(pool_pids(&s, "b"), b_pids);
    // SIGUSR2 with the broken file: same, and the master lives on.
    s.signal(libc::SIGUSR2);
    thread::sleep(Duration::from_millis(500));
    assert!(
        s.is_running(),
        "master died on a broken reload:\n{}",
        s.log.text()
    );
    assert_eq!(op(&s, 0).precision, "14");
    assert_eq!(pool_pids(&s, "a"), a_pids);
    // Fixed: the reload goes through.
    s.rewrite_config(&two_pools(9, 14, ""));
    let out = reload(&s, &[]);
    assert_eq!(out.code, Some(0), "{}", out.all());
    wait_new_pids(&s, "a", &a_pids, 2);
    assert_eq!(op(&s, 0).precision, "9");
}

#[test]
fn sigusr2_and_sighup_reload_changed_pools() {
    if !corral_only() {
        return;
    }
    let mut s = Corral::start(&two_pools(14, 14, ""));
    let b_pids = pool_pids(&s, "b");
    for (i, sig) in [libc::SIGUSR2, libc::SIGHUP].into_iter().enumerate() {
        let a_pids = pool_pids(&s, "a");
        let prec = 8 + i as u32;
        s.rewrite_config(&two_pools(prec, 14, ""));
        let mark = s.log.lines().len();
        s.signal(sig);
        wait_new_pids(&s, "a", &a_pids, 2);
        assert_eq!(op(&s, 0).precision, prec.to_string());
        let since = s.log_since(mark).join("\n");
        assert!(
            since.contains("Reloading in progress ..."),
            "signal {sig}: {since}"
        );
        assert_eq!(pool_pids(&s, "b"), b_pids, "signal {sig}: b untouched");
    }
}

#[test]
fn reload_adds_and_removes_pools() {
    if !corral_only() {
        return;
    }
    let mut s = Corral::start(&two_pools(14, 14, ""));
    let a_pids = pool_pids(&s, "a");
    let b_pids = pool_pids(&s, "b");
    let with_c = format!(
        "{}\n[c]\nlisten = {{dir}}/c.sock\nuser = {{user}}\npm = static\npm.max_children = 1\n",
        two_pools(14, 14, "")
    );
    s.rewrite_config(&with_c);
    let out = reload(&s, &[]);
    assert_eq!(out.code, Some(0), "{}", out.all());
    assert!(
        out.stdout.contains("[pool c]"),
        "summary names the new pool: {}",
        out.all()
    );
    let c = Listen::Unix(s.dir().join("c.sock"));
    let deadline = Instant::now() + Duration::from_secs(5);
    let r = loop {
        let req = Request::php(&s.script("opcache.php"));
        match request_on(&c, &req) {
            Ok(r) => break r,
            Err(e) if Instant::now() > deadline => {
                panic!("added pool c does not answer: {e}\n{}", s.log.text())
            }
            Err(_) => thread::sleep(Duration::from_millis(50)),
        }
    };
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(pool_pids(&s, "a"), a_pids);
    assert_eq!(pool_pids(&s, "b"), b_pids);

    // Remove b (keep a, c).
    let without_b = format!(
        "[global]\nerror_log = {{dir}}/error.log\n\n\
         [a]\nlisten = {{dir}}/a.sock\nuser = {{user}}\npm = static\npm.max_children = 2\n\
         php_value[precision] = 14\n{NO_FUP}\n\n\
         [c]\nlisten = {{dir}}/c.sock\nuser = {{user}}\npm = static\npm.max_children = 1\n"
    );
    s.rewrite_config(&without_b);
    let out = reload(&s, &[]);
    assert_eq!(out.code, Some(0), "{}", out.all());
    assert!(
        out.stdout.contains("[pool b]"),
        "summary names the removed pool: {}",
        out.all()
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    while b_pids.iter().any(|p| pid_alive(*p)) && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(50));
    }
    for p in &b_pids {
        assert!(!pid_alive(*p), "worker {p} of removed pool b still running");
    }
    let out = s.control(&["status", "--json"]);
    let v: Value = serde_json::from_str(&out.stdout).unwrap();
    let names: BTreeSet<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["pool"].as_str())
        .collect();
    assert_eq!(names, BTreeSet::from(["a", "c"]), "{v}");
    assert!(
        s.try_get_to(1, "opcache.php", "").is_err(),
        "removed pool b must not answer any more"
    );
    assert_eq!(pool_pids(&s, "a"), a_pids);
    assert_eq!(op(&s, 0).precision, "14");
}

#[test]
fn php_ini_change_restarts_every_pool() {
    if !corral_only() {
        return;
    }
    let ini_dir = temp_dir("ini");
    let ini = ini_dir.path().join("php.ini");
    let base = fs::read_to_string("/etc/php/8.2/fpm/php.ini").unwrap_or_default();
    fs::write(&ini, format!("{base}\nprecision = 13\n")).unwrap();
    // No per-pool precision: the ini decides.
    let conf = two_pools(14, 14, "")
        .lines()
        .filter(|l| !l.starts_with("php_value[precision]"))
        .collect::<Vec<_>>()
        .join("\n");
    let s = Corral::start_args(&conf, &["-c", ini.to_str().unwrap()]);
    assert_eq!(op(&s, 0).precision, "13", "-c php.ini is used");
    let a_pids = pool_pids(&s, "a");
    let b_pids = pool_pids(&s, "b");
    fs::write(&ini, format!("{base}\nprecision = 7\n")).unwrap();
    let out = reload(&s, &[]);
    assert_eq!(out.code, Some(0), "{}", out.all());
    wait_new_pids(&s, "a", &a_pids, 2);
    wait_new_pids(&s, "b", &b_pids, 2);
    assert_eq!(op(&s, 0).precision, "7");
    assert_eq!(op(&s, 1).precision, "7");
}

// ------------------------------------------------------------------ under load

fn nginx_two_pools(www: &str, a: &str, b: &str) -> String {
    format!(
        "    root {www};\n\
         \x20   location ~ ^/a(/.+\\.php)$ {{\n\
         \x20     include /etc/nginx/fastcgi_params;\n\
         \x20     fastcgi_param SCRIPT_FILENAME $document_root$1;\n\
         \x20     fastcgi_param SCRIPT_NAME $1;\n\
         \x20     fastcgi_pass unix:{a};\n\
         \x20   }}\n\
         \x20   location ~ ^/b(/.+\\.php)$ {{\n\
         \x20     include /etc/nginx/fastcgi_params;\n\
         \x20     fastcgi_param SCRIPT_FILENAME $document_root$1;\n\
         \x20     fastcgi_param SCRIPT_NAME $1;\n\
         \x20     fastcgi_pass unix:{b};\n\
         \x20   }}\n"
    )
}

#[derive(Default)]
struct Tally {
    ok: u64,
    bad: Vec<String>,
    /// Latencies of the quick requests (not sleep.php).
    latencies_us: Vec<u64>,
    /// Every request, sleep.php included.
    all: u64,
    /// (pid, hits) seen from pool b, in order per thread.
    b_seen: Vec<(i32, i64)>,
}

fn kv(body: &str, key: &str) -> Option<String> {
    let p = format!("{key}=");
    body.lines()
        .find_map(|l| l.strip_prefix(&p).map(str::to_string))
}

/// Several clients hammer both pools through nginx (no upstream keepalive)
/// while the master goes through 30 reloads: full reloads with a changed
/// php_value of pool a, `corral reload a`, and one broken config. Not one
/// request may fail; pool b keeps its workers and its OPcache all along.
#[test]
fn reloads_under_load_through_nginx_lose_no_request() {
    if !corral_only() || require_bin("nginx").is_none() {
        return;
    }
    let conf = |prec: u32| -> String {
        format!(
            "[global]\nerror_log = {{dir}}/error.log\n\n\
             [a]\nlisten = {{dir}}/a.sock\nuser = {{user}}\npm = dynamic\npm.max_children = 8\n\
             pm.start_servers = 3\npm.min_spare_servers = 2\npm.max_spare_servers = 4\n\
             php_value[precision] = {prec}\n{NO_FUP}\n\n\
             [b]\nlisten = {{dir}}/b.sock\nuser = {{user}}\npm = static\npm.max_children = 4\n{NO_FUP}\n"
        )
    };
    let mut s = Corral::start(&conf(14));
    let dir = s.dir().display().to_string();
    let Some(nginx) = Nginx::start(&nginx_two_pools(
        &s.www().display().to_string(),
        &format!("{dir}/a.sock"),
        &format!("{dir}/b.sock"),
    )) else {
        return;
    };
    // Warm up and check the routing.
    for _ in 0..5 {
        let r = nginx.get("/a/opcache.php");
        assert_eq!(r.status, 200, "{r:?}\n{}", nginx.error_log());
        assert_eq!(
            kv(&r.body, "precision").as_deref(),
            Some("14"),
            "{}",
            r.body
        );
        let r = nginx.get("/b/opcache.php");
        assert_eq!(r.status, 200, "{r:?}\n{}", nginx.error_log());
    }
    let b_pids = pool_pids(&s, "b");
    let b_hits0: i64 = kv(&nginx.get("/b/opcache.php").body, "hits")
        .unwrap()
        .parse()
        .unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    let tally = Arc::new(Mutex::new(Tally::default()));
    let port = nginx.port;
    let clients: Vec<_> = (0..6)
        .map(|t| {
            let stop = stop.clone();
            let tally = tally.clone();
            thread::spawn(move || {
                let mut i = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    i += 1;
                    // Mostly quick requests, some that span a reload.
                    let path = match (t + i) % 4 {
                        0 => "/b/opcache.php".to_string(),
                        1 => "/a/sleep.php?ms=150".to_string(),
                        _ => "/a/opcache.php".to_string(),
                    };
                    let t0 = Instant::now();
                    let r = http_request(("127.0.0.1", port), "GET", &path, &[], b"");
                    let us = t0.elapsed().as_micros() as u64;
                    let mut tl = tally.lock().unwrap();
                    tl.all += 1;
                    if !path.contains("sleep.php") {
                        tl.latencies_us.push(us);
                    }
                    match r {
                        Ok(r) if r.status == 200 => {
                            tl.ok += 1;
                            if path.starts_with("/b/") {
                                let pid = kv(&r.body, "pid").and_then(|p| p.parse().ok());
                                let hits = kv(&r.body, "hits").and_then(|p| p.parse().ok());
                                if let (Some(p), Some(h)) = (pid, hits) {
                                    tl.b_seen.push((p, h));
                                }
                            }
                        }
                        Ok(r) => tl.bad.push(format!("{path}: HTTP {} {}", r.status, r.body)),
                        Err(e) => tl.bad.push(format!("{path}: {e}")),
                    }
                }
            })
        })
        .collect();

    thread::sleep(Duration::from_millis(300));
    let t_reloads = Instant::now();
    let mut prec = 14;
    let mut a_pids = pool_pids(&s, "a");
    const RELOADS: usize = 30;
    for n in 0..RELOADS {
        prec = if prec == 14 { 10 } else { 14 };
        s.rewrite_config(&conf(prec));
        let out = if n % 2 == 0 {
            reload(&s, &[])
        } else {
            reload(&s, &["a"])
        };
        assert_eq!(out.code, Some(0), "reload {n}: {}", out.all());
        assert!(
            out.stdout.contains("[pool a] reloaded"),
            "reload {n}: {}",
            out.all()
        );
        assert!(
            !out.stdout.contains("[pool b] reloaded"),
            "reload {n}: b must not be reloaded: {}",
            out.all()
        );
        // Each reload must take effect before the next one.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let now = pool_pids(&s, "a");
            if !now.is_empty() && now.is_disjoint(&a_pids) {
                a_pids = now;
                break;
            }
            assert!(
                Instant::now() < deadline,
                "reload {n}: pool a still has old workers {now:?}\n{}",
                s.log.text()
            );
            thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(
            pool_pids(&s, "b"),
            b_pids,
            "reload {n}: pool b's workers changed"
        );
        if n == RELOADS / 2 {
            // A broken config in the middle: reported, nothing stops.
            let good = s.conf_text.clone();
            fs::write(&s.conf_path, format!("{good}\n[[[ garbage\n")).unwrap();
            let out = reload(&s, &[]);
            assert_eq!(out.code, Some(78), "broken reload: {}", out.all());
            assert!(
                out.stderr.contains(&s.conf_path.display().to_string()),
                "{}",
                out.all()
            );
            fs::write(&s.conf_path, &good).unwrap();
            s.expect_log("failed to reload", Duration::from_secs(2));
        }
        thread::sleep(Duration::from_millis(100));
    }
    let reload_time = t_reloads.elapsed();
    thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.join().unwrap();
    }
    let mut tl = tally.lock().unwrap();
    tl.latencies_us.sort_unstable();
    let n = tl.latencies_us.len();
    let p = |q: f64| tl.latencies_us[((n as f64 * q) as usize).min(n - 1)] as f64 / 1000.0;
    let _ = writeln_stderr(&format!(
        "reload under load: {RELOADS} reloads in {reload_time:?}; {} requests, {} failed; quick-request latency p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        tl.all,
        tl.bad.len(),
        p(0.5),
        p(0.99),
        p(1.0)
    ));
    assert!(
        tl.bad.is_empty(),
        "{} of {} requests failed during {RELOADS} reloads:\n{}\nnginx:\n{}",
        tl.bad.len(),
        tl.all,
        tl.bad
            .iter()
            .take(20)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n"),
        nginx.error_log()
    );
    assert!(tl.ok > 100, "too little load to prove anything: {}", tl.ok);
    // Pool b: the same workers all along and an OPcache that kept counting.
    let seen_b: BTreeSet<i32> = tl.b_seen.iter().map(|(p, _)| *p).collect();
    assert!(
        seen_b.is_subset(&b_pids),
        "pool b answered from {seen_b:?}, its workers were {b_pids:?}"
    );
    let b_hits_end: i64 = kv(&nginx.get("/b/opcache.php").body, "hits")
        .unwrap()
        .parse()
        .unwrap();
    let b_requests = tl.b_seen.len() as i64;
    assert!(
        b_hits_end >= b_hits0 + b_requests,
        "pool b's OPcache hits went from {b_hits0} to {b_hits_end} over {b_requests} requests: reset?"
    );
    assert_eq!(pool_pids(&s, "b"), b_pids);
    assert_eq!(
        kv(&nginx.get("/a/opcache.php").body, "precision").as_deref(),
        Some(prec.to_string().as_str())
    );
}

fn writeln_stderr(msg: &str) -> std::io::Result<()> {
    use std::io::Write;
    writeln!(std::io::stderr(), "{msg}")
}

/// The lines of a USR2 reload that php-fpm logs and tools wait for, in
/// order: timestamps, pids and descriptor numbers left out; corral's own
/// lines (the per-pool summary, warnings) are not among them.
fn reload_lines(log: &[String]) -> Vec<String> {
    log.iter()
        .filter_map(|l| {
            let m = l.split_once("NOTICE: ")?.1;
            if m == "Reloading in progress ..." || m == "ready to handle connections" {
                Some(m.to_string())
            } else if m.starts_with("reloading: ") {
                Some("reloading: ...".into())
            } else if m.starts_with("fpm is running, pid ") {
                Some("fpm is running, pid N".into())
            } else {
                let rest = m.strip_prefix("using inherited socket fd=")?;
                let (fd, addr) = rest.split_once(", ")?;
                fd.parse::<u32>().ok()?;
                Some(format!("using inherited socket fd=N, {addr}"))
            }
        })
        .collect()
}

/// Reloads `s` with SIGUSR2 onto `ping.response = pong`; returns the log
/// lines from the signal on, once "ready to handle connections" came again,
/// and what each of `n` pings at once to the TCP pool answers right then.
fn usr2_reload(
    s: &mut Server,
    conf: &dyn Fn(&str) -> String,
    pong: &str,
    n: usize,
) -> (Vec<String>, Vec<String>) {
    s.rewrite_config(&conf(pong));
    let mark = s.log.lines().len();
    s.signal(libc::SIGUSR2);
    let deadline = Instant::now() + Duration::from_secs(20);
    while !s
        .log_since(mark)
        .iter()
        .any(|l| l.contains("ready to handle connections"))
    {
        assert!(
            Instant::now() < deadline,
            "not ready again:\n{}",
            s.log.text()
        );
        thread::sleep(Duration::from_millis(10));
    }
    // As many pings at once as the pool has workers: an old idle worker
    // still in accept() would answer one of them.
    let pings: Vec<_> = (0..n)
        .map(|_| {
            let listen = s.listen().clone();
            let req = Request::php(&s.script("ping"))
                .document_root(&s.www().display().to_string())
                .param("SCRIPT_NAME", "/ping")
                .param("REQUEST_URI", "/ping");
            thread::spawn(move || {
                request_on(&listen, &req)
                    .map(|r| r.body)
                    .unwrap_or_default()
            })
        })
        .collect();
    let answers = pings.into_iter().map(|h| h.join().unwrap()).collect();
    (s.log_since(mark), answers)
}

/// A USR2 reload logs what php-fpm8.2 logs, in its order: "Reloading in
/// progress ...", "reloading: ...", one "using inherited socket fd=N,
/// \"ADDRESS\"" per listening socket, then "fpm is running" and "ready to
/// handle connections" (PHP's own reload tests and operators' scripts wait
/// for them), side by side with php-fpm. And "ready" means what it says:
/// from then on only the new configuration answers (corral's old workers
/// have stopped accepting; php-fpm's are gone), checked over several
/// reloads, each with as many pings at once as there are workers.
#[test]
fn usr2_logs_php_fpm_s_reload_lines_and_ready_means_the_new_config() {
    if !require_root() {
        return;
    }
    const WORKERS: usize = 5;
    let conf = |pong: &str| {
        format!(
            "[global]\nerror_log = {{dir}}/error.log\npid = {{dir}}/fpm.pid\n\
             [a]\nlisten = 127.0.0.1:{{port}}\nuser = {{user}}\npm = static\npm.max_children = {WORKERS}\n\
             ping.path = /ping\nping.response = {pong}\n\n\
             [b]\nlisten = {{dir}}/b.sock\nuser = {{user}}\npm = ondemand\npm.max_children = 2\n"
        )
    };
    let mut kinds = vec![Kind::Corral];
    if require_php_fpm().is_some() {
        kinds.push(Kind::PhpFpm);
    }
    for kind in kinds {
        let mut s = Server::start(kind, &conf("pong-0"), None, &[]);
        let (log, answers) = usr2_reload(&mut s, &conf, "pong-1", WORKERS);
        assert!(
            answers.iter().all(|a| a == "pong-1"),
            "{kind:?}: {answers:?}"
        );
        let b = s.dir().join("b.sock").display().to_string();
        let port = s.placeholders.port;
        assert_eq!(
            reload_lines(&log),
            [
                "Reloading in progress ...".to_string(),
                "reloading: ...".into(),
                format!("using inherited socket fd=N, \"127.0.0.1:{port}\""),
                format!("using inherited socket fd=N, \"{b}\""),
                "fpm is running, pid N".into(),
                "ready to handle connections".into(),
            ],
            "{kind:?}:\n{}",
            log.join("\n")
        );
        for round in 2..8 {
            let pong = format!("pong-{round}");
            let (log, answers) = usr2_reload(&mut s, &conf, &pong, WORKERS);
            assert!(
                answers.iter().all(|a| *a == pong),
                "{kind:?}: after \"ready\" only the new configuration answers {pong}: {answers:?}\n{}",
                log.join("\n")
            );
        }
    }
}
