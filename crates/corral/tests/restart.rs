//! `corral restart POOL`: a new generation of a pool whose configuration
//! did not change (to start over with an empty OPcache after a deploy),
//! handed over as a reload hands over. Under continuous FastCGI load no
//! request fails, every worker of the pool is new and its OPcache starts
//! empty, and the other pool keeps its workers and its OPcache.

mod common;

use common::*;
use serde_json::Value;
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

fn corral_only() -> bool {
    if !require_root() {
        return false;
    }
    if std::env::var("CORRAL_TEST_AGAINST").as_deref() == Ok("php-fpm") {
        skip("php-fpm has no per-pool restart");
        return false;
    }
    true
}

/// Two identical static pools; OPcache caches at once (no
/// file_update_protection), so hits count from the second request.
const CONF: &str = "[global]\nerror_log = {dir}/error.log\n\
    [a]\nlisten = {dir}/a.sock\nuser = {user}\npm = static\npm.max_children = 2\n\
    php_admin_value[opcache.file_update_protection] = 0\n\
    [b]\nlisten = {dir}/b.sock\nuser = {user}\npm = static\npm.max_children = 2\n\
    php_admin_value[opcache.file_update_protection] = 0\n";

/// Worker pids of `pool` according to `corral status POOL --json`.
fn pool_pids(s: &Server, pool: &str) -> BTreeSet<i32> {
    let out = s.control(&["status", pool, "--json"]);
    assert_eq!(out.code, Some(0), "corral status {pool}: {}", out.all());
    let v: Value = serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("status JSON ({e}): {}", out.stdout));
    v[0]["processes"]
        .as_array()
        .unwrap_or_else(|| panic!("processes of {pool}: {v}"))
        .iter()
        .map(|p| p["pid"].as_i64().unwrap() as i32)
        .collect()
}

/// Waits until `pool` has `n` workers, none of them in `old`.
fn wait_new_pids(s: &Server, pool: &str, old: &BTreeSet<i32>, n: usize) -> BTreeSet<i32> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let now = pool_pids(s, pool);
        if now.len() == n && now.is_disjoint(old) {
            return now;
        }
        assert!(
            Instant::now() < deadline,
            "pool {pool} still has {now:?} (old {old:?}) 10 s after the restart\n{}",
            s.log.text()
        );
        thread::sleep(Duration::from_millis(20));
    }
}

/// (pid, OPcache hits) from opcache.php on pool `n` (0 = a, 1 = b).
fn opcache(s: &Server, n: usize) -> (i32, i64) {
    let r = s
        .try_get_to(n, "opcache.php", "")
        .unwrap_or_else(|e| panic!("pool #{n}: {e}\n{}", s.log.text()));
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.kv("enabled").as_deref(), Some("1"), "OPcache must be on");
    (
        r.kv("pid").unwrap().parse().unwrap(),
        r.kv("hits").unwrap().parse().unwrap(),
    )
}

#[derive(Default)]
struct Tally {
    ok: u64,
    failed: Vec<String>,
    /// (pid, hits) of every answer from pool b.
    b_seen: Vec<(i32, i64)>,
}

/// Clients that send FastCGI requests back to back until `stop`: quick
/// ones to both pools, and some to pool a that sleep across a restart.
fn load(
    s: &Server,
    stop: &Arc<AtomicBool>,
    tally: &Arc<Mutex<Tally>>,
) -> Vec<thread::JoinHandle<()>> {
    (0..4)
        .map(|t| {
            let (stop, tally) = (stop.clone(), tally.clone());
            let (a, b) = (s.listens[0].clone(), s.listens[1].clone());
            let www = s.www().display().to_string();
            let (opcache, sleep) = (s.script("opcache.php"), s.script("sleep.php"));
            thread::spawn(move || {
                let mut i = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    i += 1;
                    let (listen, req, to_b) = match (t + i) % 4 {
                        0 => (&b, Request::php(&opcache), true),
                        1 => (&a, Request::php(&sleep).query("ms=120"), false),
                        _ => (&a, Request::php(&opcache), false),
                    };
                    let r = request_on(listen, &req.document_root(&www));
                    let mut tl = tally.lock().unwrap();
                    match r {
                        Ok(r) if r.status == 200 => {
                            tl.ok += 1;
                            if to_b {
                                let pid = r.kv("pid").and_then(|p| p.parse().ok());
                                let hits = r.kv("hits").and_then(|h| h.parse().ok());
                                if let (Some(p), Some(h)) = (pid, hits) {
                                    tl.b_seen.push((p, h));
                                }
                            }
                        }
                        Ok(r) => tl.failed.push(format!("status {}: {}", r.status, r.body)),
                        Err(e) => tl.failed.push(e.to_string()),
                    }
                }
            })
        })
        .collect()
}

#[test]
fn restart_under_load_loses_no_request_and_renews_only_that_pool() {
    if !corral_only() {
        return;
    }
    let s = Corral::start(CONF);
    for _ in 0..6 {
        opcache(&s, 0);
        opcache(&s, 1);
    }
    let (_, a_hits_before) = opcache(&s, 0);
    let (_, b_hits0) = opcache(&s, 1);
    assert!(a_hits_before >= 5, "a warm OPcache: {a_hits_before}");
    let mut a_pids = pool_pids(&s, "a");
    let b_pids = pool_pids(&s, "b");
    assert_eq!((a_pids.len(), b_pids.len()), (2, 2));

    let stop = Arc::new(AtomicBool::new(false));
    let tally = Arc::new(Mutex::new(Tally::default()));
    let clients = load(&s, &stop, &tally);
    thread::sleep(Duration::from_millis(200));
    const RESTARTS: usize = 6;
    for n in 0..RESTARTS {
        let out = if n % 2 == 0 {
            s.control(&["restart", "a"])
        } else {
            s.control(&["restart", "a", "--json"])
        };
        assert_eq!(out.code, Some(0), "restart {n}: {}", out.all());
        if n % 2 == 0 {
            assert_eq!(out.stdout.trim(), "[pool a] restarted", "{}", out.all());
        } else {
            let v: Value = serde_json::from_str(&out.stdout)
                .unwrap_or_else(|e| panic!("restart --json ({e}): {}", out.all()));
            assert_eq!(
                v,
                serde_json::json!({"pools": [{"pool": "a", "result": "restarted"}]})
            );
        }
        a_pids = wait_new_pids(&s, "a", &a_pids, 2);
        assert_eq!(
            pool_pids(&s, "b"),
            b_pids,
            "restart {n}: pool b's workers changed"
        );
        thread::sleep(Duration::from_millis(100));
    }
    thread::sleep(Duration::from_millis(200));
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.join().unwrap();
    }
    let tl = tally.lock().unwrap();
    let _ = writeln_stderr(&format!(
        "restart under load: {RESTARTS} restarts of pool a; {} requests answered, {} failed",
        tl.ok,
        tl.failed.len()
    ));
    assert!(
        tl.failed.is_empty(),
        "{} requests failed during {RESTARTS} restarts:\n{}\n{}",
        tl.failed.len(),
        tl.failed
            .iter()
            .take(20)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n"),
        s.log.text()
    );
    assert!(tl.ok > 50, "too little load to prove anything: {}", tl.ok);

    // Pool b: the same workers throughout, and an OPcache that kept counting.
    let seen_b: BTreeSet<i32> = tl.b_seen.iter().map(|(p, _)| *p).collect();
    assert!(
        seen_b.is_subset(&b_pids),
        "b answered from {seen_b:?}, its workers were {b_pids:?}"
    );
    let (_, b_hits_end) = opcache(&s, 1);
    assert!(
        b_hits_end >= b_hits0 + tl.b_seen.len() as i64,
        "pool b's OPcache went from {b_hits0} to {b_hits_end} hits over {} requests: reset?",
        tl.b_seen.len()
    );

    // Pool a, restarted once more with nothing in flight: new workers, and
    // an OPcache that starts empty (the first request compiles).
    let out = s.control(&["restart", "a"]);
    assert_eq!(out.code, Some(0), "{}", out.all());
    let fresh = wait_new_pids(&s, "a", &a_pids, 2);
    let (pid, a_hits_after) = opcache(&s, 0);
    assert!(
        fresh.contains(&pid),
        "answered by {pid}, not one of {fresh:?}"
    );
    assert!(
        a_hits_after < a_hits_before,
        "pool a's OPcache was not emptied: {a_hits_after} hits after, {a_hits_before} before"
    );
    assert!(s.log_contains("[pool a] restarted"), "{}", s.log.text());
}

#[test]
fn restart_refuses_unknown_pools_and_needs_one() {
    if !corral_only() {
        return;
    }
    let s = Corral::start(CONF);
    let a_pids = pool_pids(&s, "a");
    let out = s.control(&["restart", "nosuchpool"]);
    assert_eq!(out.code, Some(1), "{}", out.all());
    assert!(
        out.stderr.contains("no running pool named 'nosuchpool'"),
        "{}",
        out.all()
    );
    let out = s.control(&["restart", "nosuchpool", "--json"]);
    assert_eq!(out.code, Some(1), "{}", out.all());
    let v: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["code"], 1, "{v}");
    assert!(v["error"].as_str().unwrap().contains("nosuchpool"), "{v}");
    let out = s.control(&["restart"]);
    assert_eq!(out.code, Some(64), "a pool is required: {}", out.all());
    assert_eq!(pool_pids(&s, "a"), a_pids, "nothing was restarted");
}

fn writeln_stderr(msg: &str) -> std::io::Result<()> {
    use std::io::Write;
    writeln!(std::io::stderr(), "{msg}")
}
