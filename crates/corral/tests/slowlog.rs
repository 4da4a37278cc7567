//! request_slowlog_timeout (the slow log with the PHP backtrace of the busy
//! worker) and request_terminate_timeout (the stuck request is ended, the
//! worker replaced).

mod common;

use common::*;
use std::fs;
use std::thread;
use std::time::{Duration, Instant};

/// Line number (1-based) of the line of `file` holding `MARK:<mark>`.
fn mark_line(file: &str, mark: &str) -> usize {
    let text = fs::read_to_string(file).unwrap_or_else(|e| panic!("{file}: {e}"));
    let tag = format!("MARK:{mark}");
    text.lines()
        .position(|l| l.contains(&tag))
        .unwrap_or_else(|| panic!("{tag} not in {file}"))
        + 1
}

/// The frames of a slow-log entry without the varying `[0x...]` addresses:
/// `sleep() /path/slow.php:9`.
fn frames(entry: &str) -> Vec<String> {
    entry
        .lines()
        .filter(|l| l.starts_with("[0x"))
        .map(|l| {
            l.split_once("] ")
                .map(|(_, f)| f.to_string())
                .unwrap_or_default()
        })
        .collect()
}

fn slow_conf() -> String {
    pool_conf("slowlog = {dir}/slow.log\nrequest_slowlog_timeout = 1s")
}

/// Sends slow.php?s=3 and returns (reply status, slow log text).
fn run_slow(s: &Server) -> (u16, String) {
    let req = Request::php(&s.script("slow.php"))
        .document_root(&s.www().display().to_string())
        .query("s=3");
    let listen = s.listen().clone();
    let t = thread::spawn(move || request_on(&listen, &req).map(|r| (r.status, r.body)));
    let slow = s.dir().join("slow.log");
    let text = wait_file(&slow, "outer()", Duration::from_secs(6)).unwrap_or_else(|| {
        panic!(
            "no slow-log entry naming outer() in {}: {:?}\nlog:\n{}",
            slow.display(),
            fs::read_to_string(&slow),
            s.log.text()
        )
    });
    let (status, body) = t.join().unwrap().expect("slow request");
    assert_eq!(body, "slept=3\n", "a slow request still completes");
    (status, text)
}

#[test]
fn slow_request_logs_backtrace_with_functions_and_lines() {
    if !require_root() {
        return;
    }
    let s = Corral::start(&slow_conf());
    let (status, text) = run_slow(&s);
    assert_eq!(status, 200);
    let script = s.script("slow.php");
    let workers = s.worker_pids();

    // "\n[date]  [pool www] pid N\nscript_filename = ...\n[0x...] frames"
    let head = text
        .lines()
        .find(|l| l.contains("[pool www] pid "))
        .unwrap_or_else(|| panic!("no '[pool www] pid N' line:\n{text}"));
    let pid: i32 = head
        .rsplit("pid ")
        .next()
        .and_then(|p| p.trim().parse().ok())
        .unwrap_or_else(|| panic!("pid in {head:?}"));
    assert!(
        workers.contains(&pid),
        "slow-log pid {pid} must be a worker {workers:?}"
    );
    assert!(head.starts_with('['), "date first: {head:?}");
    assert!(
        text.contains(&format!("\nscript_filename = {script}\n")),
        "script_filename line:\n{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with("[0x") && l.contains("] sleep() ")),
        "frames are [0x<address>] function() file:line:\n{text}"
    );
    let want = vec![
        format!("sleep() {script}:{}", mark_line(&script, "sleep")),
        format!("inner() {script}:{}", mark_line(&script, "inner")),
        format!("outer() {script}:{}", mark_line(&script, "outer")),
    ];

    let line = s.expect_log("executing too slow", Duration::from_secs(2));
    assert!(
        line.contains("WARNING: [pool www] child ")
            && line.contains(&format!("script '{script}'"))
            && line.contains("(request: \"GET /slow.php?s=3\")"),
        "php-fpm's wording: {line}"
    );
    assert!(
        s.log_contains("logging"),
        "'executing too slow (1.0xx sec), logging':\n{}",
        s.log.text()
    );
    // Checked last: the frames name the functions and the calling lines.
    assert_eq!(frames(&text), want, "slow-log frames:\n{text}");
}

#[test]
fn slowlog_trace_depth_limits_frames() {
    if !require_root() {
        return;
    }
    let s = Corral::start(&pool_conf(
        "slowlog = {dir}/slow.log\nrequest_slowlog_timeout = 1s\nrequest_slowlog_trace_depth = 2",
    ));
    let req = Request::php(&s.script("slow.php"))
        .document_root(&s.www().display().to_string())
        .query("s=2");
    let listen = s.listen().clone();
    let t = thread::spawn(move || request_on(&listen, &req).map(|r| r.status));
    let slow = s.dir().join("slow.log");
    let text = wait_file(&slow, "inner()", Duration::from_secs(5))
        .unwrap_or_else(|| panic!("no slow-log entry: {}", s.log.text()));
    thread::sleep(Duration::from_millis(300));
    let text = fs::read_to_string(&slow).unwrap_or(text);
    let f = frames(&text);
    assert_eq!(f.len(), 2, "request_slowlog_trace_depth = 2:\n{text}");
    assert!(
        f[0].starts_with("sleep() ") && f[1].starts_with("inner() "),
        "{f:?}"
    );
    assert_eq!(t.join().unwrap().expect("request").to_string(), "200");
}

/// The same script, the same slow log: corral and php-fpm8.2 write the same
/// frames (function, file, line).
#[test]
fn slow_log_frames_match_php_fpm() {
    if !require_root() || require_php_fpm().is_none() {
        return;
    }
    let site = Site::new();
    let conf = slow_conf();
    let c = Corral::start_site(&conf, &site);
    let f = PhpFpm::start_site(&conf, &site);
    let (tc, tf) = thread::scope(|sc| {
        let a = sc.spawn(|| run_slow(&c).1);
        let b = sc.spawn(|| run_slow(&f).1);
        (a.join().unwrap(), b.join().unwrap())
    });
    assert_same(
        "slow-log frames",
        &frames(&tc).join("\n"),
        &frames(&tf).join("\n"),
    );
    let shape = |t: &str| -> Vec<String> {
        t.lines()
            .map(|l| {
                if l.starts_with("[0x") {
                    "[0x…] frame".to_string()
                } else if let Some(i) = l.find("]  [pool") {
                    // "[date]  [pool www] pid N"
                    let rest = &l[i + 3..];
                    rest.rsplit_once("pid ")
                        .map(|(a, _)| format!("[date]  {a}pid N"))
                        .unwrap_or_default()
                } else {
                    l.to_string()
                }
            })
            .collect()
    };
    assert_same(
        "slow-log entry layout",
        &shape(&tc).join("\n"),
        &shape(&tf).join("\n"),
    );
}

#[test]
fn terminate_timeout_ends_request_and_replaces_worker() {
    if !require_root() {
        return;
    }
    let s = Corral::start(&pool_conf(
        "pm.max_children = 1\nrequest_terminate_timeout = 2s",
    ));
    let before = s.worker_pids();
    assert_eq!(before.len(), 1, "{before:?}");
    let t0 = Instant::now();
    let r = s.try_get_to(0, "pid.php", "sleep_ms=10000");
    let took = t0.elapsed();
    // A connection closed without a response (Err) is what php-fpm does.
    if let Ok(reply) = &r {
        assert_ne!(
            reply.status, 200,
            "a request past request_terminate_timeout must not succeed: {reply:?}"
        );
    }
    assert!(
        took >= Duration::from_millis(1900) && took < Duration::from_secs(6),
        "the request must be ended about 2 s in, took {took:?}"
    );
    let line = s.expect_log("execution timed out", Duration::from_secs(3));
    assert!(
        line.contains("WARNING: [pool www] child ")
            && line.contains(&format!("script '{}'", s.script("pid.php")))
            && line.contains("terminating"),
        "php-fpm's wording: {line}"
    );
    let line = s.expect_log("exited on signal 15 (SIGTERM)", Duration::from_secs(3));
    assert!(
        line.contains(&format!("child {}", before[0])),
        "the stuck worker {} is the one killed: {line}",
        before[0]
    );
    // The next request is served by a new worker.
    let r = s.get("pid.php", "");
    assert_eq!(r.status, 200, "{r:?}");
    assert_ne!(r.body, before[0].to_string(), "a new worker answers");
    assert!(!pid_alive(before[0]), "the stuck worker is gone");
}

/// request_terminate_timeout_track_finished = yes: a request that already
/// sent its response (fastcgi_finish_request) and keeps running is ended
/// too.
#[test]
fn terminate_timeout_track_finished() {
    if !require_root() {
        return;
    }
    let s = Corral::start(&pool_conf(
        "pm.max_children = 1\nrequest_terminate_timeout = 1s\nrequest_terminate_timeout_track_finished = yes",
    ));
    let r = s.get("finish.php", "sleep_ms=4000");
    assert_eq!(r.status, 200, "{r:?}");
    s.expect_log("execution timed out", Duration::from_secs(5));
    assert_eq!(s.get("pid.php", "").status, 200);
}
