//! FastCGI faults end to end, on a real corral and, when php-fpm8.2 is
//! installed, on php-fpm side by side: connections that never send a byte,
//! requests pipelined on one connection, and records that trail a request.
//!
//! Each case writes raw bytes, then records what the server answered and
//! whether it closed the connection afterwards. The expected outcome is
//! written down (it is what php-fpm's `main/fastcgi.c` does) and both
//! servers must produce it; the one place where corral deliberately differs
//! (a body cut short by BEGIN_REQUEST: php-fpm drops what it had read) has
//! its own expectation for each.

mod common;

use common::*;
use corral_fastcgi::record::{
    encode_begin_request, encode_record, encode_stream, encode_stream_end, RecordType,
};
use corral_fastcgi::{parse_response, RecordDecoder, Role};
use std::io::{Read, Write};
use std::thread;
use std::time::{Duration, Instant};

// ---------------------------------------------------------------- bytes

/// BEGIN_REQUEST and the whole PARAMS stream of `req`, no STDIN at all.
fn head(req: &Request) -> Vec<u8> {
    let mut out = Vec::new();
    encode_begin_request(req.id, Role::Responder, req.keep_conn, &mut out);
    let mut params = Vec::new();
    corral_fastcgi::params::encode_pairs(req.params.iter().map(|(n, v)| (n, v)), &mut params);
    encode_stream(RecordType::Params, req.id, &params, &mut out);
    encode_stream_end(RecordType::Params, req.id, &mut out);
    out
}

fn stdin(id: u16, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    encode_record(RecordType::Stdin, id, data, &mut out);
    out
}

/// input.php: echoes the method, the body length and the body.
fn echo(site: &Site, id: u16, keep: bool, body: &str) -> Request {
    let www = site.www().display().to_string();
    let req = Request::php(&site.script("input.php"))
        .document_root(&www)
        .id(id)
        .keep_conn(keep);
    if body.is_empty() {
        req
    } else {
        req.method("POST").body("text/plain", body)
    }
}

// ---------------------------------------------------------------- outcome

/// One FCGI_END_REQUEST and what came before it for that id.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Answer {
    id: u16,
    protocol_status: u8,
    /// HTTP status of the CGI response (0: not a CGI response).
    status: u16,
    /// input.php's `length=` and `body=` lines.
    length: Option<String>,
    body: Option<String>,
}

/// Everything the server did with one connection.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Outcome {
    answers: Vec<Answer>,
    /// The server closed the connection (EOF or reset) after its answers.
    closed: bool,
}

fn answer(id: u16, length: usize, body: &str) -> Answer {
    Answer {
        id,
        protocol_status: 0,
        status: 200,
        length: Some(length.to_string()),
        body: Some(body.to_string()),
    }
}

/// Writes `bytes` on a fresh connection and reads until `expect` requests
/// are answered (or the server closes, or 10 s pass), then up to 1.5 s
/// more to see whether the server closes the connection or keeps it.
fn exchange(listen: &Listen, bytes: &[u8], expect: usize) -> Outcome {
    let mut conn = listen.connect().expect("connect");
    conn.write_all(bytes).expect("write");
    let mut decoder = RecordDecoder::new();
    let mut stdout: Vec<(u16, Vec<u8>)> = Vec::new();
    let mut answers = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    let deadline = Instant::now() + Duration::from_secs(10);
    let closed = loop {
        let wait = if answers.len() < expect {
            deadline.saturating_duration_since(Instant::now())
        } else {
            Duration::from_millis(1500)
        };
        if wait.is_zero() {
            break false;
        }
        conn.set_timeout(Some(wait)).unwrap();
        let n = match conn.read(&mut buf) {
            Ok(0) => break true,
            Ok(n) => n,
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut =>
            {
                break false
            }
            Err(_) => break true,
        };
        let mut input = &buf[..n];
        while let Some(r) = decoder.decode(&mut input).expect("well-framed answer") {
            match r.record_type {
                RecordType::Stdout => match stdout.iter_mut().find(|(id, _)| *id == r.request_id) {
                    Some((_, out)) => out.extend_from_slice(&r.content),
                    None => stdout.push((r.request_id, r.content)),
                },
                RecordType::EndRequest => {
                    let pos = stdout.iter().position(|(id, _)| *id == r.request_id);
                    let out = pos.map(|p| stdout.remove(p).1).unwrap_or_default();
                    let cgi = parse_response(&out).ok();
                    let kv = |key: &str| {
                        let body = String::from_utf8_lossy(&cgi.as_ref()?.body).into_owned();
                        let prefix = format!("{key}=");
                        body.lines()
                            .find_map(|l| l.strip_prefix(&prefix).map(str::to_string))
                    };
                    answers.push(Answer {
                        id: r.request_id,
                        protocol_status: r.content.get(4).copied().unwrap_or(255),
                        status: cgi.as_ref().map_or(0, |c| c.status),
                        length: kv("length"),
                        body: kv("body"),
                    });
                }
                _ => {}
            }
        }
    };
    Outcome { answers, closed }
}

// ---------------------------------------------------------------- servers

/// corral, and php-fpm when installed, serving the same docroot.
fn servers(site: &Site, conf: &str) -> Vec<Server> {
    let mut out = vec![Corral::start_site(conf, site)];
    if require_php_fpm().is_some() {
        out.push(PhpFpm::start_site(conf, site));
    }
    out
}

fn name(s: &Server) -> &'static str {
    match s.kind {
        Kind::Corral => "corral",
        Kind::PhpFpm => "php-fpm",
    }
}

/// Sends `bytes` to every server and asserts each produces `expected`.
fn check(servers: &[Server], case: &str, bytes: &[u8], expected: &Outcome) {
    check_each(servers, case, bytes, expected, expected);
}

/// Like [`check`] where php-fpm is known to do otherwise (`fpm_expected`).
fn check_each(
    servers: &[Server],
    case: &str,
    bytes: &[u8],
    expected: &Outcome,
    fpm_expected: &Outcome,
) {
    for s in servers {
        let expected = match s.kind {
            Kind::Corral => expected,
            Kind::PhpFpm => fpm_expected,
        };
        let got = exchange(s.listen(), bytes, expected.answers.len());
        eprintln!(
            "{case}: {}: answered {} of {}, {}",
            name(s),
            got.answers.len(),
            expected.answers.len(),
            if got.closed {
                "then closed"
            } else {
                "kept open"
            }
        );
        assert_eq!(
            &got,
            expected,
            "{case}: {} (left) differs from the expected outcome\nlog:\n{}",
            name(s),
            s.log.text()
        );
    }
}

// ---------------------------------------------------------------- cases

/// Two complete requests in one write on a kept-alive connection: both are
/// answered in order (php-fpm reads the second BEGIN_REQUEST only once the
/// first response is out).
#[test]
fn pipelined_requests_are_answered_in_order() {
    if !require_root() {
        return;
    }
    let site = Site::new();
    let servers = servers(&site, &pool_conf("pm.max_children = 1"));

    let mut bytes = echo(&site, 1, true, "first").encode();
    bytes.extend(echo(&site, 1, false, "").encode());
    let expected = Outcome {
        answers: vec![answer(1, 5, "first"), answer(1, 0, "")],
        closed: true,
    };
    check(
        &servers,
        "same id, second without keep-conn",
        &bytes,
        &expected,
    );

    // Three, with distinct ids, the last one keeping the connection.
    let mut bytes = Vec::new();
    for (id, body) in [(1, "a"), (2, ""), (3, "ccc")] {
        bytes.extend(echo(&site, id, true, body).encode());
    }
    let expected = Outcome {
        answers: vec![answer(1, 1, "a"), answer(2, 0, ""), answer(3, 3, "ccc")],
        closed: false,
    };
    check(&servers, "three ids, all keep-conn", &bytes, &expected);
}

/// Empty FCGI_STDIN records after the request's stdin terminator are
/// skipped: the request and the next one are answered.
#[test]
fn trailing_empty_stdin_is_skipped() {
    if !require_root() {
        return;
    }
    let site = Site::new();
    let servers = servers(&site, &pool_conf("pm.max_children = 1"));

    let mut bytes = echo(&site, 1, true, "xyz").encode();
    bytes.extend(stdin(1, b""));
    bytes.extend(stdin(1, b""));
    let expected = Outcome {
        answers: vec![answer(1, 3, "xyz")],
        closed: false,
    };
    check(&servers, "two empty STDIN after the end", &bytes, &expected);

    bytes.extend(echo(&site, 1, false, "next").encode());
    let expected = Outcome {
        answers: vec![answer(1, 3, "xyz"), answer(1, 4, "next")],
        closed: true,
    };
    check(&servers, "empty STDIN, then a request", &bytes, &expected);
}

/// FCGI_STDIN with data after the stdin terminator cannot start a request:
/// the request before it is answered, then the connection is closed.
#[test]
fn trailing_stdin_data_closes_after_the_answer() {
    if !require_root() {
        return;
    }
    let site = Site::new();
    let servers = servers(&site, &pool_conf("pm.max_children = 1"));

    let mut bytes = echo(&site, 1, true, "body").encode();
    bytes.extend(stdin(1, b"junk"));
    bytes.extend(echo(&site, 1, true, "never").encode());
    let expected = Outcome {
        answers: vec![answer(1, 4, "body")],
        closed: true,
    };
    check(&servers, "STDIN data after the end", &bytes, &expected);
}

/// A BEGIN_REQUEST before the stdin terminator ends the request's body. When
/// the body is complete (CONTENT_LENGTH) the new request is served next;
/// when it is not, the request runs with what arrived and the connection is
/// closed after its answer.
#[test]
fn begin_request_during_stdin_ends_the_body() {
    if !require_root() {
        return;
    }
    let site = Site::new();
    let servers = servers(&site, &pool_conf("pm.max_children = 1"));

    // A GET without any STDIN record, then the next request.
    let mut bytes = head(&echo(&site, 1, true, ""));
    bytes.extend(echo(&site, 1, false, "second").encode());
    let expected = Outcome {
        answers: vec![answer(1, 0, ""), answer(1, 6, "second")],
        closed: true,
    };
    check(&servers, "GET without stdin terminator", &bytes, &expected);

    // A complete body without its terminator, then a request with another id.
    let first = echo(&site, 1, true, "abc");
    let mut bytes = head(&first);
    bytes.extend(stdin(1, b"abc"));
    bytes.extend(echo(&site, 2, true, "").encode());
    let expected = Outcome {
        answers: vec![answer(1, 3, "abc"), answer(2, 0, "")],
        closed: false,
    };
    check(
        &servers,
        "full body, no terminator, id 2",
        &bytes,
        &expected,
    );

    // Half the announced body, then a BEGIN_REQUEST. The script sees the
    // half that came; php-fpm's fcgi_read returns 0 for the read that meets
    // the BEGIN_REQUEST, so there the script sees no body at all.
    let first = echo(&site, 1, true, "0123456789");
    let mut bytes = head(&first);
    bytes.extend(stdin(1, b"01234"));
    bytes.extend(echo(&site, 1, true, "lost").encode());
    let expected = Outcome {
        answers: vec![answer(1, 5, "01234")],
        closed: true,
    };
    let fpm_expected = Outcome {
        answers: vec![answer(1, 0, "")],
        closed: true,
    };
    let case = "half a body, then BEGIN_REQUEST";
    check_each(&servers, case, &bytes, &expected, &fpm_expected);
}

// ---------------------------------------------------------------- silence

/// Real requests sent while every worker holds a connection that sends
/// nothing: php-fpm closes such a connection after 5 s (the poll before its
/// first read), so the requests are served soon after. The silent
/// connections are not requests: they are not counted as accepted.
#[test]
fn silent_connections_do_not_starve_the_pool() {
    if !require_root() {
        return;
    }
    const N: usize = 3;
    let bound = Duration::from_secs(6);
    let site = Site::new();
    let conf = pool_conf(&format!("pm.max_children = {N}\npm.status_path = /status"));
    for s in servers(&site, &conf) {
        let who = name(&s);
        assert_eq!(s.wait_workers(READY_TIMEOUT, |n| n == N), N, "{who}");
        let warm = s.request(&echo(&site, 1, false, ""));
        assert_eq!(warm.status, 200, "{who}: {warm:?}");

        let opened = Instant::now();
        let silent: Vec<Conn> = (0..N)
            .map(|_| s.listen().connect().expect("connect"))
            .collect();
        // Let the workers accept them before the real requests queue up.
        thread::sleep(Duration::from_millis(300));

        let sent = Instant::now();
        let real: Vec<_> = (0..N)
            .map(|_| {
                let listen = s.listen().clone();
                let req = echo(&site, 1, false, "");
                thread::spawn(move || {
                    let conn = listen.connect().ok()?;
                    conn.set_timeout(Some(Duration::from_secs(8))).ok()?;
                    let mut client = Client::new(conn);
                    let r = client.request(&req).ok()?;
                    (Reply::from_response(r).status == 200).then(|| sent.elapsed())
                })
            })
            .collect();
        let times: Vec<Option<Duration>> = real.into_iter().map(|t| t.join().unwrap()).collect();
        let served = times
            .iter()
            .filter(|t| t.is_some_and(|t| t < bound))
            .count();
        let slowest = match times.iter().flatten().max() {
            Some(t) => format!("{t:.2?}"),
            None => "none".into(),
        };

        // The server closes each silent connection: EOF, not our timeout.
        let mut closed_after = Vec::new();
        for mut c in silent {
            let left = Duration::from_secs(8).saturating_sub(opened.elapsed());
            c.set_timeout(Some(left.max(Duration::from_millis(1))))
                .unwrap();
            let mut b = [0u8; 64];
            if matches!(c.read(&mut b), Ok(0) | Err(_)) && opened.elapsed() < Duration::from_secs(8)
            {
                closed_after.push(opened.elapsed());
            }
        }
        eprintln!(
            "{who}: {N} silent connections on {N} workers: served {served} of {N} real requests \
             within {bound:?} (slowest {slowest}); server closed {} of {N} silent ones \
             (last after {:.2?})",
            closed_after.len(),
            closed_after.iter().max().copied().unwrap_or_default(),
        );
        assert_eq!(served, N, "{who}: {times:?}\nlog:\n{}", s.log.text());
        assert_eq!(closed_after.len(), N, "{who}: silent connections left open");

        let status = s.request(
            &Request::php(&site.script("status"))
                .document_root(&site.www().display().to_string())
                .query("json"),
        );
        let v: serde_json::Value = serde_json::from_str(&status.body)
            .unwrap_or_else(|e| panic!("{who}: status is not JSON ({e}): {}", status.body));
        assert_eq!(
            v["accepted conn"].as_u64(),
            Some(1 + N as u64 + 1),
            "{who}: the warm-up, the {N} real requests and this one; not the silent ones: {v}"
        );
    }
}
