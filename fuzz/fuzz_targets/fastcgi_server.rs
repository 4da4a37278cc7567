//! Arbitrary bytes, cut into arbitrary chunks, into the server state machine.
//!
//! The first byte seeds the chunk sizes so the fuzzer explores chunking too.
//! Checked: no panic; output bounded (≤ 8 × input, one ≤ 64-byte answer per
//! ≥ 8-byte record) and well framed; events bounded by the record count.
#![cfg_attr(not(feature = "replay"), no_main)]

use corral_fastcgi::{RecordDecoder, ServerConn};

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
        while conn.poll_event().is_some() {
            events += 1;
        }
        output.extend(conn.take_output());
        if failed {
            break;
        }
        pos += n;
        // Vary the chunk size deterministically.
        step = (step * 7 + 3) % 300 + 1;
        if seed & 1 == 1 && events % 3 == 0 {
            conn.send_stdout(b"x");
            conn.end_request(0);
            output.extend(conn.take_output());
        }
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
