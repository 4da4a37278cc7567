//! Arbitrary bytes, cut into arbitrary chunks, into the server state machine.
//!
//! The first byte seeds the chunk sizes so the fuzzer explores chunking too.
//! Like a worker, the target answers a request once its input is complete,
//! which decodes what was held after it (pipelined requests); an odd seed
//! also ends requests early. Checked: no panic; output well framed; events
//! bounded by the record count; a request ended without keep-conn closes.
#![cfg_attr(not(feature = "replay"), no_main)]

use corral_fastcgi::{RecordDecoder, ServerConn, ServerEvent};

fn run(data: &[u8]) {
    let Some((&seed, bytes)) = data.split_first() else {
        return;
    };
    let mut conn = ServerConn::default();
    let mut output = Vec::new();
    let mut events = 0usize;
    let mut pos = 0;
    let mut step = usize::from(seed) + 1;
    while pos < bytes.len() {
        let n = step.min(bytes.len() - pos);
        let failed = conn.feed(&bytes[pos..pos + n]).is_err();
        // Answering may decode a held request whose input is complete too.
        loop {
            let mut complete = false;
            while let Some(event) = conn.poll_event() {
                events += 1;
                complete |= event == ServerEvent::StdinEnd;
            }
            let early = seed & 1 == 1 && events % 3 == 0;
            if !(complete || early) || conn.active_request().is_none() {
                break;
            }
            conn.send_stdout(b"x");
            if conn.end_request(0) == Some(false) {
                assert!(conn.should_close());
            }
        }
        output.extend(conn.take_output());
        if failed || conn.error().is_some() {
            break;
        }
        pos += n;
        // Vary the chunk size deterministically.
        step = (step * 7 + 3) % 300 + 1;
    }
    assert!(events <= bytes.len() / 8);
    let mut dec = RecordDecoder::new();
    let mut out = output.as_slice();
    while let Ok(Some(_)) = dec.decode(&mut out) {}
    assert!(out.is_empty() && dec.is_idle(), "output not well framed");
}

#[cfg(not(feature = "replay"))]
libfuzzer_sys::fuzz_target!(|data: &[u8]| run(data));

#[cfg(feature = "replay")]
fn main() {
    for path in std::env::args().skip(1) {
        match std::fs::read(&path) {
            Ok(data) => {
                run(&data);
                println!("{path}: ok");
            }
            Err(err) => eprintln!("{path}: {err}"),
        }
    }
}
