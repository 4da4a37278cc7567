//! Bad clients and dying workers must not take the pool down.

mod common;

use common::*;
use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// Sends `bytes` (then optionally half-closes) and expects the server to
/// close the connection: EOF or reset, not a timeout and not a response
/// that looks like success.
fn expect_closed(s: &Server, what: &str, bytes: &[u8], half_close: bool) {
    let mut conn = s.listen().connect().expect("connect");
    conn.set_timeout(Some(Duration::from_secs(10))).unwrap();
    // The server may close while we are still writing: that is fine.
    let _ = conn.write_all(bytes);
    if half_close {
        let _ = conn.shutdown_write();
    }
    let start = Instant::now();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match conn.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut =>
            {
                panic!(
                    "{what}: connection still open after {:?} (got {} bytes)\nlog:\n{}",
                    start.elapsed(),
                    got.len(),
                    s.log.text()
                )
            }
            Err(_) => break, // reset
        }
    }
    let text = String::from_utf8_lossy(&got);
    assert!(
        !text.contains("fpm-fcgi"),
        "{what}: garbage must not run a script: {text:?}"
    );
}

fn good_request_works(s: &Server, what: &str) {
    let r = s
        .try_request(&Request::php(&s.script("info.php")))
        .unwrap_or_else(|e| {
            panic!(
                "after {what}: good request failed: {e}\nlog:\n{}",
                s.log.text()
            )
        });
    assert_eq!(r.status, 200, "after {what}: {r:?}");
    assert_eq!(r.kv("sapi").as_deref(), Some("fpm-fcgi"));
}

fn header(t: u8, id: u16, len: u16, pad: u8) -> [u8; 8] {
    let i = id.to_be_bytes();
    let l = len.to_be_bytes();
    [1, t, i[0], i[1], l[0], l[1], pad, 0]
}

fn begin(id: u16) -> Vec<u8> {
    let mut v = header(1, id, 8, 0).to_vec();
    v.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 0]);
    v
}

#[test]
fn malformed_input_closes_connection_and_pool_survives() {
    // One worker: every bad connection hits the worker that must then
    // serve the good request.
    let s = Corral::start(&pool_conf("pm.max_children = 1"));

    let mut http = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec();
    http.resize(64, b' ');
    expect_closed(&s, "HTTP instead of FastCGI", &http, false);
    good_request_works(&s, "HTTP garbage");

    let garbage: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    expect_closed(&s, "random bytes", &garbage, false);
    good_request_works(&s, "random bytes");

    expect_closed(&s, "truncated header", &[1, 1, 0], true);
    good_request_works(&s, "truncated header");

    let mut trunc = begin(1);
    trunc.extend_from_slice(&header(4, 1, 1000, 0));
    trunc.extend_from_slice(&[0u8; 10]);
    expect_closed(&s, "truncated PARAMS record", &trunc, true);
    good_request_works(&s, "truncated PARAMS record");

    // A name-value pair claiming a 2 GiB name inside a small record.
    let mut huge = begin(1);
    let pair = [0x80u8, 0xff, 0xff, 0xff, 0x01, b'A', b'B'];
    huge.extend_from_slice(&header(4, 1, pair.len() as u16, 0));
    huge.extend_from_slice(&pair);
    huge.extend_from_slice(&header(4, 1, 0, 0));
    huge.extend_from_slice(&header(5, 1, 0, 0));
    expect_closed(&s, "huge name length", &huge, false);
    good_request_works(&s, "huge name length");

    // Maximum-length records of junk params, never terminated.
    let mut big = begin(1);
    for _ in 0..4 {
        big.extend_from_slice(&header(4, 1, 65535, 0));
        big.extend_from_slice(&[0x7fu8; 65535]);
    }
    expect_closed(&s, "65535-byte junk PARAMS", &big, true);
    good_request_works(&s, "65535-byte junk PARAMS");

    // Request id 0 for a BEGIN_REQUEST, and a wrong version byte.
    let mut v2 = begin(1);
    v2[0] = 2;
    expect_closed(&s, "version 2", &v2, true);
    good_request_works(&s, "version 2");

    // Client goes away in the middle of the request body.
    let mut c = s.listen().connect().unwrap();
    let req = Request::php(&s.script("input.php"))
        .method("POST")
        .body("text/plain", vec![b'x'; 100_000]);
    let mut full = Vec::new();
    corral_fastcgi::record::encode_begin_request(
        1,
        corral_fastcgi::Role::Responder,
        false,
        &mut full,
    );
    let mut params = Vec::new();
    corral_fastcgi::params::encode_pairs(req.params.iter().map(|(n, v)| (n, v)), &mut params);
    corral_fastcgi::record::encode_stream(
        corral_fastcgi::RecordType::Params,
        1,
        &params,
        &mut full,
    );
    corral_fastcgi::record::encode_stream_end(corral_fastcgi::RecordType::Params, 1, &mut full);
    full.extend_from_slice(&header(5, 1, 1000, 0));
    full.extend_from_slice(&[b'x'; 100]);
    c.write_all(&full).unwrap();
    drop(c);
    good_request_works(&s, "client vanishing mid-body");

    assert!(s.log.text().len() < 1_000_000, "log flooded");
}

/// PHP is handed the params as C strings where they lie in the worker's
/// buffer; a param with a NUL of its own takes the other road (a copy
/// without it), and both must reach the script in order, request after
/// request on one worker.
#[test]
fn params_with_nul_bytes_reach_php_without_them() {
    let s = Corral::start(&pool_conf("pm.max_children = 1"));
    for round in 0..3 {
        let req = Request::php(&s.script("env.php"))
            .query("names=HTTP_X_A,HTTP_X_B,HTTP_X_C")
            .param("HTTP_X_A", format!("left{round}"))
            .param("HTTP_X_B", b"in\0side")
            .param("HTTP_X_C", "plain")
            // Becomes a second HTTP_X_C; getenv() finds the first.
            .param(b"HTTP_X_\0C", "named");
        let r = s.request(&req);
        assert_eq!(r.status, 200, "{r:?}");
        assert_eq!(
            r.body,
            format!("HTTP_X_A=left{round}\nHTTP_X_B=inside\nHTTP_X_C=plain\n"),
            "round {round}"
        );
    }
    good_request_works(&s, "params with NUL bytes");
}

#[test]
fn abort_request_is_handled() {
    let s = Corral::start(&pool_conf("pm.max_children = 1"));
    let mut client = Client::new(s.listen().connect().unwrap());
    let req = Request::php(&s.script("pid.php")).query("sleep_ms=300");
    client.send_request(&req).unwrap();
    client.abort(1).unwrap();
    // Either an END_REQUEST or a closed connection; never a hang.
    let _ = client.read_response(1);
    // php-fpm drains the connection until the client closes it.
    drop(client);
    good_request_works(&s, "FCGI_ABORT_REQUEST");
}

#[test]
fn killed_worker_is_replaced_under_load() {
    let s = Corral::start(&pool_conf("pm.max_children = 3"));
    let master = s.pid();
    let stop = Arc::new(AtomicBool::new(false));
    let killed_at: Arc<Mutex<Option<Instant>>> = Arc::new(Mutex::new(None));
    // (start, result) of every request.
    type Outcome = (Instant, Result<String, String>);
    let results: Arc<Mutex<Vec<Outcome>>> = Arc::new(Mutex::new(Vec::new()));
    let listen = s.listen().clone();
    let script = s.script("pid.php");
    let mut threads = Vec::new();
    for _ in 0..3 {
        let (stop, results, listen, script) = (
            stop.clone(),
            results.clone(),
            listen.clone(),
            script.clone(),
        );
        threads.push(thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let start = Instant::now();
                let req = Request::php(&script).query("sleep_ms=20");
                let r = match request_on(&listen, &req) {
                    Ok(r) if r.status == 200 => Ok(r.body),
                    Ok(r) => Err(format!("status {}: {}", r.status, r.body)),
                    Err(e) => Err(e.to_string()),
                };
                results.lock().unwrap().push((start, r));
            }
        }));
    }
    // Let load build up, then kill -9 a worker that has served requests.
    thread::sleep(Duration::from_millis(500));
    let victim: i32 = results
        .lock()
        .unwrap()
        .iter()
        .find_map(|(_, r)| r.as_ref().ok().and_then(|b| b.parse().ok()))
        .expect("no request succeeded before the kill");
    assert!(
        s.worker_pids().contains(&victim),
        "pid {victim} from getmypid() is not among the workers {:?} (descendants {:?})",
        s.worker_pids(),
        s.descendants()
    );
    kill(victim, libc::SIGKILL);
    *killed_at.lock().unwrap() = Some(Instant::now());
    thread::sleep(Duration::from_millis(2000));
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().unwrap();
    }
    let killed_at = killed_at.lock().unwrap().unwrap();
    let results = results.lock().unwrap();
    let after: Vec<_> = results.iter().filter(|(t, _)| *t > killed_at).collect();
    assert!(
        after.len() >= 10,
        "too few requests after the kill: {}",
        after.len()
    );
    let failed: Vec<_> = after.iter().filter(|(_, r)| r.is_err()).collect();
    assert!(
        failed.is_empty(),
        "{} of {} requests issued after the kill failed, e.g. {:?}\nlog:\n{}",
        failed.len(),
        after.len(),
        failed.first(),
        s.log.text()
    );
    assert!(
        !after
            .iter()
            .any(|(_, r)| r.as_deref() == Ok(&victim.to_string())),
        "the killed worker cannot have answered"
    );
    assert!(pid_alive(master), "master died");
    assert_eq!(
        s.wait_workers(Duration::from_secs(5), |n| n == 3),
        3,
        "pm = static must restore 3 workers: {:?}",
        s.worker_pids()
    );
    s.expect_log(
        &format!("child {victim} exited on signal 9 (SIGKILL)"),
        Duration::from_secs(5),
    );
}

#[test]
fn master_stops_cleanly_on_sigterm_and_sigquit() {
    for (sig, word) in [(libc::SIGTERM, "Terminating"), (libc::SIGQUIT, "Finishing")] {
        let mut s = Corral::start(&pool_conf("pm.max_children = 2"));
        assert_eq!(s.get("info.php", "").status, 200);
        let workers = s.worker_pids();
        assert!(!workers.is_empty());
        let sock = match s.listen() {
            Listen::Unix(p) => p.clone(),
            _ => unreachable!(),
        };
        assert!(sock.exists());
        let status = s.stop_with(sig, Duration::from_secs(15));
        assert_eq!(status.code(), Some(0), "exit status after signal {sig}");
        assert!(
            s.log_contains(word),
            "log lacks {word:?}:\n{}",
            s.log.text()
        );
        assert!(s.log_contains("exiting, bye-bye!"), "{}", s.log.text());
        assert!(!sock.exists(), "the unix socket must be removed on exit");
        for w in workers {
            assert!(!pid_alive(w), "worker {w} outlived the master");
        }
    }
}

#[test]
fn startup_log_lines() {
    let s = Corral::start(&pool_conf(""));
    let lines = s.log.lines();
    let running = lines
        .iter()
        .position(|l| l.contains("NOTICE: fpm is running, pid "))
        .unwrap_or_else(|| panic!("no `fpm is running` line:\n{}", s.log.text()));
    let ready = lines
        .iter()
        .position(|l| l.contains("NOTICE: ready to handle connections"))
        .unwrap();
    assert!(running < ready);
    assert!(
        lines[running].ends_with(&format!("fpm is running, pid {}", s.pid())),
        "{}",
        lines[running]
    );
    // [23-Nov-2026 10:00:00] NOTICE: ...
    let l = &lines[ready];
    let b = l.as_bytes();
    assert!(
        b.len() > 23
            && b[0] == b'['
            && b[3] == b'-'
            && b[7] == b'-'
            && b[12] == b' '
            && b[21] == b']',
        "php-fpm log line format `[DD-Mon-YYYY HH:MM:SS] NOTICE: …`, got {l:?}"
    );
}
