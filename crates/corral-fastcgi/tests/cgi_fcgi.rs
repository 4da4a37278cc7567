//! Real-world input: a request exactly as `cgi-fcgi` (the FastCGI dev kit's
//! client, Debian package libfcgi-bin) put it on the wire. Its records are not
//! 8-byte aligned (no padding), unlike php-fpm's and nginx's.

mod common;

use corral_fastcgi::{Role, ServerConn, ServerEvent};

/// Captured with:
/// `printf 'name=corral&x=1' | env -i REQUEST_METHOD=POST SCRIPT_FILENAME=/srv/www/index.php
///  CONTENT_TYPE=application/x-www-form-urlencoded CONTENT_LENGTH=15 QUERY_STRING=a=b
///  HTTP_HOST=example.test cgi-fcgi -bind -connect 127.0.0.1:PORT`
const CAPTURED: &[u8] = include_bytes!("fixtures/cgi-fcgi-post.bin");

fn check(conn: &mut ServerConn) {
    let events: Vec<_> = std::iter::from_fn(|| conn.poll_event()).collect();
    assert_eq!(
        events[0],
        ServerEvent::BeginRequest {
            id: 1,
            role: Role::Responder,
            keep_conn: false
        }
    );
    let ServerEvent::Params(params) = &events[1] else {
        panic!("{events:?}")
    };
    assert_eq!(params.len(), 6);
    assert_eq!(params.get_str("REQUEST_METHOD"), Some("POST"));
    assert_eq!(
        params.get_str("SCRIPT_FILENAME"),
        Some("/srv/www/index.php")
    );
    assert_eq!(params.get_str("QUERY_STRING"), Some("a=b"));
    assert_eq!(params.get_str("HTTP_HOST"), Some("example.test"));
    let body: Vec<u8> = events[2..events.len() - 1]
        .iter()
        .flat_map(|e| match e {
            ServerEvent::Stdin(d) => d.clone(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(body, b"name=corral&x=1");
    assert_eq!(events.last(), Some(&ServerEvent::StdinEnd));
}

#[test]
fn captured_cgi_fcgi_request_whole_and_bytewise() {
    let mut conn = ServerConn::default();
    conn.feed(CAPTURED).unwrap();
    check(&mut conn);

    let mut conn = ServerConn::default();
    for b in CAPTURED {
        conn.feed(std::slice::from_ref(b)).unwrap();
    }
    check(&mut conn);
    assert!(conn.take_output().is_empty());
    conn.send_stdout(b"Status: 201 Created\r\n\r\n");
    assert_eq!(conn.end_request(0), Some(false));
    assert!(conn.should_close());
}

/// Runs the real `cgi-fcgi` against `common::serve` when it is installed
/// (`apt-get install libfcgi-bin`); otherwise says so and passes.
#[test]
fn live_cgi_fcgi_when_installed() {
    use std::io::Write;
    use std::process::{Command, Stdio};

    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let mut child = match Command::new("cgi-fcgi")
        .args(["-bind", "-connect", &addr.to_string()])
        .env_clear()
        .env("REQUEST_METHOD", "POST")
        .env("SCRIPT_FILENAME", "/srv/www/index.php")
        .env("CONTENT_LENGTH", "5")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
    {
        Ok(child) => child,
        Err(_) => {
            eprintln!("cgi-fcgi not installed; live test skipped");
            return;
        }
    };
    let server = std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        common::serve(stream);
    });
    child.stdin.take().unwrap().write_all(b"hello").unwrap();
    let out = child.wait_with_output().unwrap();
    server.join().unwrap();
    let response = corral_fastcgi::parse_response(&out.stdout).unwrap();
    assert_eq!(response.status, 200);
    let body = String::from_utf8(response.body).unwrap();
    assert!(body.contains("REQUEST_METHOD=POST\n"), "{body}");
    assert!(body.ends_with("--\nhello"), "{body}");
}
