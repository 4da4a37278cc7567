//! Shared by the integration tests: a tiny application built on `ServerConn`
//! that answers every request with its params and body, over any stream.
#![allow(dead_code)]

use std::io::{Read, Write};

use corral_fastcgi::{ServerConn, ServerEvent};

/// Serves one connection until the peer closes it or asks to close.
/// The response body is `NAME=VALUE\n` for every param, then `--\n`, then stdin.
pub fn serve<S: Read + Write>(mut stream: S) {
    let mut conn = ServerConn::default();
    let mut body = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = match stream.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if conn.feed(&buf[..n]).is_err() {
            return;
        }
        while let Some(event) = conn.poll_event() {
            match event {
                ServerEvent::BeginRequest { .. } => body.clear(),
                ServerEvent::Params(params) => {
                    for (name, value) in params.iter() {
                        body.extend_from_slice(name);
                        body.push(b'=');
                        body.extend_from_slice(value);
                        body.push(b'\n');
                    }
                    body.extend_from_slice(b"--\n");
                }
                ServerEvent::Stdin(data) => body.extend_from_slice(&data),
                ServerEvent::StdinEnd => {
                    conn.send_stdout(b"Content-type: text/plain\r\n\r\n");
                    conn.send_stdout(&body);
                    conn.send_stderr(b"a warning");
                    conn.end_request(0);
                }
                ServerEvent::AbortRequest { .. } => {
                    conn.end_request(1);
                }
            }
        }
        if stream.write_all(&conn.take_output()).is_err() {
            return;
        }
        if conn.should_close() {
            return;
        }
    }
}
