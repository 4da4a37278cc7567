//! Operating a running master: signals (USR1 reopens logs, QUIT waits for
//! in-flight requests, TERM stops at once), the access log's format
//! specifiers and suppress_path, and systemd's notify protocol.

mod common;

use common::*;
use std::fs;
use std::os::unix::net::UnixDatagram;
use std::thread;
use std::time::{Duration, Instant};

fn against_php_fpm() -> bool {
    std::env::var("CORRAL_TEST_AGAINST").as_deref() == Ok("php-fpm")
}

/// Starts sleep.php?ms=`ms` (a sleep signals do not cut short) in a
/// thread (returns its status), once the request is running.
fn in_flight(s: &Server, ms: u64) -> thread::JoinHandle<Result<u16, String>> {
    let listen = s.listen().clone();
    let req = Request::php(&s.script("sleep.php"))
        .document_root(&s.www().display().to_string())
        .query(&format!("ms={ms}"));
    let h = thread::spawn(move || {
        request_on(&listen, &req)
            .map(|r| r.status)
            .map_err(|e| e.to_string())
    });
    thread::sleep(Duration::from_millis(400));
    h
}

// ------------------------------------------------------------------ signals

#[test]
fn usr1_reopens_rotated_error_and_access_logs() {
    if !require_root() {
        return;
    }
    let s = Corral::start_log_to_file(&pool_conf(
        "access.log = {dir}/access.log\naccess.format = \"%m %r%Q%q %s\"",
    ));
    let log_file = |pat: &str| wait_file(&s.dir().join("error.log"), pat, Duration::from_secs(3));
    let dir = s.dir().to_path_buf();
    let (err, acc) = (dir.join("error.log"), dir.join("access.log"));
    assert_eq!(s.get("pid.php", "n=1").status, 200);
    wait_file(&acc, "n=1", Duration::from_secs(3)).unwrap_or_else(|| {
        panic!(
            "access.log has the first request: {:?}",
            fs::read_to_string(&acc)
        )
    });
    wait_file(&err, "ready to handle connections", Duration::from_secs(3))
        .unwrap_or_else(|| panic!("error.log is written: {:?}", fs::read_to_string(&err)));

    // Rotate the way logrotate does (rename), then USR1.
    fs::rename(&err, dir.join("error.log.1")).unwrap();
    fs::rename(&acc, dir.join("access.log.1")).unwrap();
    s.signal(libc::SIGUSR1);
    let text = log_file("access log file re-opened").unwrap_or_else(|| {
        panic!(
            "after USR1 the new error.log has the reopen notices: {:?}\nold: {:?}",
            fs::read_to_string(&err),
            fs::read_to_string(dir.join("error.log.1"))
        )
    });
    assert!(text.contains("error log file re-opened"), "{text}");
    // Workers (which write the access log) may take their turn.
    thread::sleep(Duration::from_millis(300));

    for i in 2..6 {
        assert_eq!(s.get("pid.php", &format!("n={i}")).status, 200);
    }
    let new_acc = wait_file(&acc, "n=5", Duration::from_secs(3)).unwrap_or_else(|| {
        panic!(
            "after USR1 new requests go to the new access.log: new={:?} old={:?}",
            fs::read_to_string(&acc),
            fs::read_to_string(dir.join("access.log.1"))
        )
    });
    for i in 2..6 {
        assert!(
            new_acc.contains(&format!("GET /pid.php?n={i} 200")),
            "{new_acc}"
        );
    }
    let old_acc = fs::read_to_string(dir.join("access.log.1")).unwrap();
    assert!(
        old_acc.contains("n=1") && !old_acc.contains("n=2"),
        "the rotated access log keeps only what came before: {old_acc:?}"
    );
    let new_err = wait_file(&err, "re-opened", Duration::from_secs(3)).unwrap_or_else(|| {
        panic!(
            "new error.log gets the reopen notice: {:?}",
            fs::read_to_string(&err)
        )
    });
    assert!(
        !new_err.contains("ready to handle connections"),
        "the new error.log starts empty: {new_err}"
    );
    // And it still receives new messages.
    s.signal(libc::SIGUSR1);
    thread::sleep(Duration::from_millis(500));
    let new_err = fs::read_to_string(&err).unwrap();
    assert!(
        new_err.matches("error log file re-opened").count() >= 2,
        "{new_err}"
    );
}

#[test]
fn quit_waits_for_in_flight_request() {
    if !require_root() {
        return;
    }
    // corral waits by default. php-fpm's default process_control_timeout
    // (0) escalates QUIT to TERM at once and cuts the request: give it time
    // when the test runs against php-fpm, to check the test itself.
    let mut conf = pool_conf("");
    if against_php_fpm() {
        conf = conf.replace("[global]\n", "[global]\nprocess_control_timeout = 10s\n");
    }
    let mut s = Corral::start(&conf);
    let req = in_flight(&s, 2000);
    let t0 = Instant::now();
    let status = s.stop_with(libc::SIGQUIT, Duration::from_secs(10));
    let took = t0.elapsed();
    assert_eq!(
        req.join().unwrap(),
        Ok(200),
        "the request in flight at SIGQUIT completes\nlog:\n{}",
        s.log.text()
    );
    assert!(status.success(), "exit status {status}");
    assert!(
        took >= Duration::from_millis(1200),
        "QUIT must wait for the 2 s request, exited after {took:?}"
    );
    assert!(took < Duration::from_secs(6), "{took:?}");
    assert!(s.log_contains("Finishing ..."), "{}", s.log.text());
    assert!(s.log_contains("exiting, bye-bye!"), "{}", s.log.text());
}

/// process_control_timeout bounds how long QUIT waits.
#[test]
fn quit_is_bounded_by_process_control_timeout() {
    if !require_root() {
        return;
    }
    let conf = pool_conf("").replace("[global]\n", "[global]\nprocess_control_timeout = 1s\n");
    let mut s = Corral::start(&conf);
    let req = in_flight(&s, 8000);
    let workers = s.worker_pids();
    let t0 = Instant::now();
    s.stop_with(libc::SIGQUIT, Duration::from_secs(10));
    let took = t0.elapsed();
    assert!(
        took >= Duration::from_millis(800) && took < Duration::from_secs(4),
        "QUIT with process_control_timeout = 1s took {took:?}\n{}",
        s.log.text()
    );
    assert!(s.log_contains("exiting, bye-bye!"), "{}", s.log.text());
    assert_ne!(
        req.join().unwrap(),
        Ok(200),
        "the 8 s request is cut at 1 s"
    );
    for w in workers {
        assert!(!pid_alive(w), "worker {w} left behind");
    }
}

#[test]
fn term_stops_promptly_even_with_requests_in_flight() {
    if !require_root() {
        return;
    }
    let mut s = Corral::start(&pool_conf(""));
    let req = in_flight(&s, 10_000);
    let workers = s.worker_pids();
    let t0 = Instant::now();
    let status = s.stop_with(libc::SIGTERM, Duration::from_secs(10));
    let took = t0.elapsed();
    // "Promptly" means without waiting for the 10 s request in flight.
    assert!(took < Duration::from_secs(8), "SIGTERM took {took:?}");
    assert!(status.success(), "exit status {status}");
    assert!(s.log_contains("Terminating ..."), "{}", s.log.text());
    assert!(s.log_contains("exiting, bye-bye!"), "{}", s.log.text());
    assert_ne!(
        req.join().unwrap(),
        Ok(200),
        "the 10 s request is cut short"
    );
    for w in workers {
        assert!(!pid_alive(w), "worker {w} left behind");
    }
}

#[test]
fn int_stops_like_term() {
    if !require_root() {
        return;
    }
    let mut s = Corral::start(&pool_conf(""));
    let t0 = Instant::now();
    let status = s.stop_with(libc::SIGINT, Duration::from_secs(10));
    assert!(t0.elapsed() < Duration::from_secs(8), "{:?}", t0.elapsed());
    assert!(status.success(), "exit status {status}");
    assert!(s.log_contains("Terminating ..."), "{}", s.log.text());
    assert!(s.log_contains("exiting, bye-bye!"), "{}", s.log.text());
}

// ------------------------------------------------------------------ access log

/// One access-log line with every kind of specifier, for a known request.
const FORMAT: &str = "%R|%u|%m|%r|%Q|%q|%s|%f|%{milli}d|%{kilo}M|%C|%{X-Corral-Log}o|%n|%p|%t|%{%Y-%m-%d}t|%{REMOTE_PORT}e|%l|%{Content-Type}o|%%";

fn access_conf() -> String {
    pool_conf(&format!(
        "listen = 127.0.0.1:{{port}}\npm.max_children = 1\naccess.log = {{dir}}/access.log\naccess.format = \"{FORMAT}\""
    ))
}

fn access_request(s: &Server) -> Request {
    Request::php(&s.script("log.php"))
        .document_root(&s.www().display().to_string())
        .query("code=201&msg=hi")
        .method("POST")
        .param("REMOTE_PORT", "41234")
        // alice:secret
        .header("Authorization", "Basic YWxpY2U6c2VjcmV0")
        .body("application/x-www-form-urlencoded", "a=1")
}

fn access_line(s: &Server) -> String {
    let r = s.request(&access_request(s));
    assert_eq!(r.status, 201, "{r:?}");
    let path = s.dir().join("access.log");
    let text = wait_file(&path, "|alice|", Duration::from_secs(3)).unwrap_or_else(|| {
        panic!(
            "no access-log line: {:?}\n{}",
            fs::read_to_string(&path),
            s.log.text()
        )
    });
    text.lines()
        .find(|l| l.contains("|alice|"))
        .unwrap()
        .to_string()
}

#[test]
fn access_log_format_specifiers() {
    if !require_root() {
        return;
    }
    let s = Corral::start(&access_conf());
    let pid = s.worker_pids()[0];
    let line = access_line(&s);
    let f: Vec<&str> = line.split('|').collect();
    assert_eq!(f.len(), 20, "{line}");
    assert_eq!(
        f[0], "127.0.0.1",
        "%R (the peer of the TCP connection): {line}"
    );
    assert_eq!(f[1], "alice", "%u: {line}");
    assert_eq!(f[2], "POST", "%m: {line}");
    assert_eq!(f[3], "/log.php", "%r: {line}");
    assert_eq!(f[4], "?", "%Q: {line}");
    assert_eq!(f[5], "code=201&msg=hi", "%q: {line}");
    assert_eq!(f[6], "201", "%s: {line}");
    assert_eq!(f[7], s.script("log.php"), "%f: {line}");
    let ms: f64 = f[8]
        .parse()
        .unwrap_or_else(|_| panic!("%{{milli}}d: {line}"));
    assert!(
        (0.0..5000.0).contains(&ms) && f[8].contains('.'),
        "%{{milli}}d: {line}"
    );
    let kb: u64 = f[9]
        .parse()
        .unwrap_or_else(|_| panic!("%{{kilo}}M: {line}"));
    assert!(
        kb > 100 && kb < 1_000_000,
        "%{{kilo}}M (peak memory in KiB): {line}"
    );
    let cpu: f64 = f[10].parse().unwrap_or_else(|_| panic!("%C: {line}"));
    assert!(cpu >= 0.0 && f[10].contains('.'), "%C: {line}");
    assert_eq!(f[11], "logged", "%{{X-Corral-Log}}o: {line}");
    assert_eq!(f[12], "www", "%n: {line}");
    assert_eq!(f[13], pid.to_string(), "%p is the worker: {line}");
    // %t: dd/Mon/yyyy:HH:MM:SS +zzzz
    assert!(
        f[14].len() == 26 && f[14].as_bytes()[2] == b'/' && f[14].contains(" +"),
        "%t: {line}"
    );
    assert!(
        f[15].len() == 10 && f[15].as_bytes()[4] == b'-' && f[15].as_bytes()[7] == b'-',
        "%{{%Y-%m-%d}}t: {line}"
    );
    assert_eq!(f[16], "41234", "%{{REMOTE_PORT}}e: {line}");
    assert_eq!(f[17], "3", "%l (request content length): {line}");
    // php-fpm looks only at headers the script set itself.
    assert_eq!(f[18], "-", "%{{Content-Type}}o: {line}");
    assert_eq!(f[19], "%", "%%: {line}");
}

/// The same request, the same format: corral's line equals php-fpm's except
/// for the fields that vary (time, duration, memory, cpu, pid).
#[test]
fn access_log_line_matches_php_fpm() {
    if !require_root() || require_php_fpm().is_none() {
        return;
    }
    let site = Site::new();
    let c = Corral::start_site(&access_conf(), &site);
    let p = PhpFpm::start_site(&access_conf(), &site);
    let mask = |l: String| -> String {
        l.split('|')
            .enumerate()
            .map(|(i, v)| match i {
                8 | 9 | 10 | 13 | 14 | 15 => "*".to_string(),
                _ => v.to_string(),
            })
            .collect::<Vec<_>>()
            .join("|")
    };
    assert_same(
        "access-log line",
        &mask(access_line(&c)),
        &mask(access_line(&p)),
    );
}

/// Formats at the edges of what php-fpm accepts, logged by corral and by
/// php-fpm for the same request: the files must be the same, byte for byte.
#[test]
fn access_log_edge_formats_match_php_fpm() {
    if !require_root() || require_php_fpm().is_none() {
        return;
    }
    let site = Site::new();
    for format in [
        // php-fpm drops a `%` that ends the format, and logs the rest.
        "abc %",
        // A parameter set but empty, one not set, no user, a header the
        // script did not set, empty braces, repeated braces, `%%`, then a
        // trailing `%` again.
        "[%{HTTP_X_EMPTY}e][%{NOPE}e][%u][%Q%q][%{X-Corral-Log}o][%{X-Corral}o][%{}m][%{a}{%Y}t]%%%",
        // Values as long as php-fpm's scoreboard fields, and longer: the
        // query string (600 bytes) keeps 511, the line stops at 1024 bytes.
        "%r|%m|%f|%n|%q|%{QUERY_STRING}e|%{QUERY_STRING}e",
    ] {
        let conf = pool_conf(&format!(
            "listen = 127.0.0.1:{{port}}\npm.max_children = 1\naccess.log = {{dir}}/access.log\naccess.format = \"{format}\""
        ));
        let c = Corral::start_site(&conf, &site);
        let p = PhpFpm::start_site(&conf, &site);
        let logged = |s: &Server| {
            let req = Request::php(&s.script("log.php"))
                .document_root(&s.www().display().to_string())
                .query(&"q".repeat(600))
                .param("HTTP_X_EMPTY", "");
            assert_eq!(s.request(&req).status, 200, "{format}");
            let path = s.dir().join("access.log");
            wait_file(&path, "\n", Duration::from_secs(3)).unwrap_or_else(|| {
                panic!("{format}: no access-log line\n{}", s.log.text())
            })
        };
        assert_same(
            &format!("access.format = \"{format}\""),
            &logged(&c),
            &logged(&p),
        );
    }
}

#[test]
fn access_log_default_format_and_suppress_path() {
    if !require_root() {
        return;
    }
    let s = Corral::start(&pool_conf(
        "access.log = {dir}/access.log\naccess.suppress_path[] = /pid.php\naccess.suppress_path[] = /ping\nping.path = /ping",
    ));
    assert_eq!(s.get("pid.php", "").status, 200);
    assert_eq!(s.get("info.php", "x=1").status, 200);
    let path = s.dir().join("access.log");
    let text = wait_file(&path, "/info.php", Duration::from_secs(3))
        .unwrap_or_else(|| panic!("{:?}", fs::read_to_string(&path)));
    thread::sleep(Duration::from_millis(200));
    let text = fs::read_to_string(&path).unwrap_or(text);
    assert!(
        !text.contains("/pid.php"),
        "access.suppress_path[] = /pid.php: {text}"
    );
    // php-fpm's default format: "%R - %u %t \"%m %r\" %s"
    let line = text.lines().find(|l| l.contains("/info.php")).unwrap();
    assert!(
        line.starts_with("- -  ") && line.ends_with(" +0000 \"GET /info.php\" 200"),
        "default access.format: {line:?}"
    );
    assert_eq!(text.lines().count(), 1, "{text}");
}

// ------------------------------------------------------------------ systemd

/// Collects datagrams from the notify socket for `dur` (or until `stop`
/// matches one).
fn collect(sock: &UnixDatagram, dur: Duration, stop: impl Fn(&str) -> bool) -> Vec<String> {
    let deadline = Instant::now() + dur;
    let mut out = Vec::new();
    let mut buf = vec![0u8; 4096];
    while Instant::now() < deadline {
        let left = deadline.saturating_duration_since(Instant::now());
        sock.set_read_timeout(Some(left.max(Duration::from_millis(10))))
            .unwrap();
        match sock.recv(&mut buf) {
            Ok(n) => {
                let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
                let done = stop(&msg);
                out.push(msg);
                if done {
                    break;
                }
            }
            Err(_) => break,
        }
    }
    out
}

#[test]
fn systemd_notify_ready_status_reloading() {
    if !require_root() {
        return;
    }
    let nd = temp_dir("notify");
    let path = nd.path().join("notify.sock");
    let sock = UnixDatagram::bind(&path).expect("bind notify socket");
    let conf = pool_conf("").replace("[global]\n", "[global]\nsystemd_interval = 1s\n");
    let s = Corral::start_env(&conf, &[("NOTIFY_SOCKET", path.to_str().unwrap())]);
    for _ in 0..3 {
        assert_eq!(s.get("pid.php", "").status, 200);
    }
    let msgs = collect(&sock, Duration::from_secs(4), |m| {
        m.contains("STATUS=") && m.contains("Requests: 3")
    });
    let ready = msgs
        .iter()
        .position(|m| m.lines().any(|l| l == "READY=1"))
        .unwrap_or_else(|| panic!("no READY=1: {msgs:?}"));
    let status: Vec<&String> = msgs
        .iter()
        .filter(|m| m.contains("STATUS=Processes active:"))
        .collect();
    assert!(
        !status.is_empty(),
        "STATUS= every systemd_interval: {msgs:?}"
    );
    assert!(
        msgs.iter()
            .position(|m| m.contains("STATUS=Processes active:"))
            .unwrap()
            >= ready,
        "READY=1 comes first: {msgs:?}"
    );
    let last = status.last().unwrap();
    let line = last.lines().find(|l| l.starts_with("STATUS=")).unwrap();
    let traffic = line
        .strip_prefix("STATUS=Processes active: 0, idle: 2, Requests: 3, slow: 0, Traffic: ")
        .unwrap_or_else(|| panic!("php-fpm's STATUS text: {line:?} (all: {msgs:?})"));
    // php-fpm8.2 prints the rate with two decimals ("3.00req/sec").
    let rate = traffic.strip_suffix("req/sec").unwrap_or("");
    let traffic_ok = rate
        .split_once('.')
        .is_some_and(|(a, b)| !a.is_empty() && b.len() == 2)
        && rate.parse::<f64>().is_ok();
    let status_line = line.to_string();
    // Checked last, so that the reload and stop parts run regardless.
    let check_traffic = move || {
        assert!(
            traffic_ok,
            "Traffic as php-fpm writes it (N.NNreq/sec): {status_line:?}"
        )
    };
    assert!(
        s.log_contains("systemd monitor interval set to 1000ms"),
        "{}",
        s.log.text()
    );
    // Children must not see NOTIFY_SOCKET.
    let r = s.get("env.php", "names=NOTIFY_SOCKET");
    assert!(!r.body.contains(path.to_str().unwrap()), "{}", r.body);

    if against_php_fpm() {
        check_traffic();
        return;
    }
    // A reload: RELOADING=1, then READY=1 again.
    let out = s.control(&["reload"]);
    assert_eq!(out.code, Some(0), "{}", out.all());
    let msgs = collect(&sock, Duration::from_secs(5), |m| {
        m.lines().any(|l| l == "READY=1")
    });
    let reloading = msgs
        .iter()
        .position(|m| m.lines().any(|l| l == "RELOADING=1"))
        .unwrap_or_else(|| panic!("no RELOADING=1 on reload: {msgs:?}"));
    let ready = msgs
        .iter()
        .rposition(|m| m.lines().any(|l| l == "READY=1"))
        .unwrap_or_else(|| panic!("no READY=1 after the reload: {msgs:?}"));
    assert!(ready > reloading, "{msgs:?}");
    // Stop: STOPPING=1.
    drop(s);
    let msgs = collect(&sock, Duration::from_secs(3), |m| {
        m.lines().any(|l| l == "STOPPING=1")
    });
    assert!(
        msgs.iter().any(|m| m.lines().any(|l| l == "STOPPING=1")),
        "STOPPING=1 on SIGTERM: {msgs:?}"
    );
    check_traffic();
}

/// The files a master creates as it starts: mode of `name` in `dir`, if
/// it exists.
fn created(dir: &std::path::Path, name: &str) -> Option<u32> {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(dir.join(name))
        .ok()
        .map(|m| m.permissions().mode() & 0o777)
}

/// `-O` logs to stderr, yet php-fpm still creates the error_log file; a
/// pool with request_slowlog_timeout gets its slow log at start, before
/// any request is slow. Both 0600, corral as php-fpm8.2.
#[test]
fn error_log_and_slowlog_exist_from_the_start() {
    let conf = pool_conf("slowlog = {dir}/slow.log\nrequest_slowlog_timeout = 5s");
    let mut kinds = vec![Kind::Corral];
    if require_php_fpm().is_some() {
        kinds.push(Kind::PhpFpm);
    }
    for kind in kinds {
        let s = Server::start(kind, &conf, None, &[]);
        assert!(
            !s.log.lines().is_empty()
                && !fs::read_to_string(s.dir().join("error.log")).is_ok_and(|t| !t.is_empty()),
            "{kind:?}: with -O the log goes to stderr, the file stays empty"
        );
        assert_eq!(
            created(s.dir(), "error.log"),
            Some(0o600),
            "{kind:?}: error_log"
        );
        assert_eq!(
            created(s.dir(), "slow.log"),
            Some(0o600),
            "{kind:?}: slowlog"
        );
    }
    // Without request_slowlog_timeout there is no slow log to create.
    let s = Corral::start(&pool_conf("slowlog = {dir}/slow.log"));
    assert_eq!(created(s.dir(), "slow.log"), None);
}

/// `%s` for each headers.php mode, in order, as `mode status` lines.
fn logged_statuses(kind: Kind, modes: &[&str]) -> Vec<String> {
    // One worker: the lines come in request order.
    let conf =
        pool_conf("pm.max_children = 1\naccess.log = {dir}/access.log\naccess.format = \"%q %s\"");
    let s = Server::start(kind, &conf, None, &[]);
    for mode in modes {
        s.get("headers.php", &format!("mode={mode}"));
    }
    let path = s.dir().join("access.log");
    let last = format!("mode={}", modes[modes.len() - 1]);
    wait_file(&path, &last, Duration::from_secs(3))
        .unwrap_or_default()
        .lines()
        .map(|l| l.trim_start_matches("mode=").to_string())
        .collect()
}

/// `%s` is the response code PHP holds when the request ends, as
/// php-fpm's fpm_log_write() reads it: a code set after the output had
/// sent the headers is logged, a `Status:` header line is not (PHP never
/// parses it into the code).
#[test]
fn access_log_status_is_the_code_php_holds_at_the_end() {
    let modes = ["late", "code", "status", "redirect"];
    let ours = logged_statuses(Kind::Corral, &modes);
    assert_eq!(ours, ["late 500", "code 404", "status 200", "redirect 302"]);
    if require_php_fpm().is_some() {
        assert_eq!(
            ours,
            logged_statuses(Kind::PhpFpm, &modes),
            "corral (left), php-fpm (right)"
        );
    }
}

/// Whether a request's FCGI_END_REQUEST waits for its access-log line,
/// with `access.log` on a FIFO the test has filled so that the worker's
/// write blocks: Some(true) when the response had not ended after a second
/// of a full log (it ends once the test drains the FIFO, and the line is
/// there), Some(false) when it ended first.
fn response_waits_for_access_line(kind: Kind) -> Option<bool> {
    use std::io::{Read, Write};
    use std::os::unix::fs::OpenOptionsExt;
    let fifo_dir = temp_dir("fifo");
    let fifo = fifo_dir.path().join("access.fifo");
    let made = std::process::Command::new("mkfifo")
        .arg("-m")
        .arg("0666")
        .arg(&fifo)
        .status()
        .ok()?;
    assert!(made.success(), "mkfifo {}", fifo.display());
    // Read and write: opening the FIFO never blocks, and the server's open
    // for writing finds a reader.
    let mut pipe = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(&fifo)
        .expect("open the FIFO");
    let conf = pool_conf(&format!(
        "pm.max_children = 1\naccess.log = {}\naccess.format = \"line %m %r %s\"",
        fifo.display()
    ));
    let s = Server::start(kind, &conf, None, &[]);
    // Fill the FIFO: the worker's next write blocks until it is read.
    let filler = [0u8; 4096];
    while pipe.write(&filler).is_ok() {}
    while pipe.write(&filler[..1]).is_ok() {}
    let listen = s.listen().clone();
    let req = Request::php(&s.script("post.php"))
        .document_root(&s.www().display().to_string())
        .method("POST")
        .body("application/x-www-form-urlencoded", b"a=1&b=2".to_vec());
    let client = thread::spawn(move || request_on(&listen, &req).map(|r| r.status).ok());
    thread::sleep(Duration::from_secs(1));
    let waited = !client.is_finished();
    // Drain until the line shows up; the worker then sends the end.
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut buf = [0u8; 65536];
    while !String::from_utf8_lossy(&seen).contains("line POST /post.php 200")
        && Instant::now() < deadline
    {
        match pipe.read(&mut buf) {
            Ok(n) => seen.extend(buf[..n].iter().filter(|&&b| b != 0)),
            Err(_) => thread::sleep(Duration::from_millis(10)),
        }
    }
    assert!(
        String::from_utf8_lossy(&seen).contains("line POST /post.php 200"),
        "{kind:?}: no access-log line: {:?}\n{}",
        String::from_utf8_lossy(&seen),
        s.log.text()
    );
    assert_eq!(client.join().unwrap(), Some(200), "{kind:?}");
    Some(waited)
}

/// php-fpm writes the access-log line (fpm_log_write) before
/// php_request_shutdown sends FCGI_END_REQUEST, so a client that has read
/// the whole response finds its request in the log (PHP's own
/// log-suppress-output-request-body test reads the log right then). Shown
/// causally: while the log cannot take the line, the response does not end.
#[test]
fn access_line_is_written_before_the_request_ends() {
    if !require_root() {
        return;
    }
    assert_eq!(
        response_waits_for_access_line(Kind::Corral),
        Some(true),
        "corral ended the request before writing its access-log line"
    );
    if require_php_fpm().is_some() {
        assert_eq!(
            response_waits_for_access_line(Kind::PhpFpm),
            Some(true),
            "php-fpm8.2"
        );
    }
}

/// What a master started with `log_level = warning` on a healthy config
/// writes to stderr from start to SIGTERM, once it has answered a ping:
/// a dynamic pool without pm.start_servers (php-fpm's NOTICE "pm.start_servers
/// is not set") on TCP without allowed_clients (corral's own NOTICE about
/// it at start-up).
fn quiet_start_output(kind: Kind) -> String {
    use std::process::{Command, Stdio};
    let dir = temp_dir("quiet");
    let port = free_port();
    let conf = dir.path().join("php-fpm.conf");
    fs::write(
        &conf,
        format!(
            "[global]\nerror_log = {d}/error.log\npid = {d}/fpm.pid\nlog_level = warning\n\
             [www]\nlisten = 127.0.0.1:{port}\nuser = nobody\nping.path = /ping\n\
             pm = dynamic\npm.max_children = 5\npm.min_spare_servers = 1\npm.max_spare_servers = 3\n",
            d = dir.path().display()
        ),
    )
    .unwrap();
    let err_path = dir.path().join("stderr");
    let err = fs::File::create(&err_path).unwrap();
    let mut cmd = match kind {
        Kind::Corral => {
            let mut c = Command::new(corral_bin());
            c.arg("--control-socket")
                .arg(dir.path().join("control.sock"));
            c
        }
        Kind::PhpFpm => Command::new(PHP_FPM),
    };
    let mut child = cmd
        .args(["-F", "-O", "-y"])
        .arg(&conf)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(err)
        .spawn()
        .expect("start the master");
    let listen = Listen::parse(&format!("127.0.0.1:{port}"));
    let ping = Request::php("/ping")
        .param("SCRIPT_NAME", "/ping")
        .param("REQUEST_URI", "/ping");
    let deadline = Instant::now() + Duration::from_secs(20);
    let pong = loop {
        match request_on(&listen, &ping) {
            Ok(r) => break r.body,
            Err(_) if Instant::now() < deadline => thread::sleep(Duration::from_millis(50)),
            Err(e) => {
                let _ = child.kill();
                panic!(
                    "{kind:?} never answered: {e}\n{}",
                    fs::read_to_string(&err_path).unwrap_or_default()
                );
            }
        }
    };
    assert_eq!(pong, "pong", "{kind:?}");
    kill(child.id() as i32, libc::SIGTERM);
    let _ = child.wait();
    fs::read_to_string(&err_path).unwrap_or_default()
}

/// `log_level = warning` is obeyed from the first line on: php-fpm applies
/// it before it post-processes the pools, so a healthy start-up and stop
/// log nothing at all, not even the notices of that post-processing.
#[test]
fn log_level_warning_keeps_a_healthy_master_silent() {
    if !require_root() {
        return;
    }
    let ours = quiet_start_output(Kind::Corral);
    assert_eq!(ours, "", "corral logged below log_level = warning");
    if require_php_fpm().is_some() {
        assert_eq!(
            ours,
            quiet_start_output(Kind::PhpFpm),
            "corral (left), php-fpm (right)"
        );
    }
}
