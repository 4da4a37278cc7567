//! Property tests: what the client encodes the server decodes to the same
//! events under any chunking, and no input makes the server panic or produce
//! more than a bounded amount of output.

use std::io::{self, Read, Write};

use corral_fastcgi::params::{decode_pairs, encode_pairs};
use corral_fastcgi::record::{encode_record, RecordType, HEADER_LEN};
use corral_fastcgi::{Client, RecordDecoder, Request, Role, ServerConn, ServerEvent};
use proptest::prelude::*;

/// A write-only stream so the client's own encoder produces the test input.
struct Sink(Vec<u8>);
impl Read for Sink {
    fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
        Ok(0)
    }
}
impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Feeds `bytes` cut into pieces whose sizes cycle through `cuts`.
fn feed_chunked(conn: &mut ServerConn, bytes: &[u8], cuts: &[usize]) -> Vec<ServerEvent> {
    let mut events = Vec::new();
    let mut pos = 0;
    let mut i = 0;
    while pos < bytes.len() {
        let n = cuts[i % cuts.len()].max(1).min(bytes.len() - pos);
        conn.feed(&bytes[pos..pos + n]).unwrap();
        events.extend(std::iter::from_fn(|| conn.poll_event()));
        pos += n;
        i += 1;
    }
    events
}

fn pairs_strategy() -> impl Strategy<Value = Vec<(Vec<u8>, Vec<u8>)>> {
    // Sizes straddle 127/128, where the length encoding changes.
    prop::collection::vec(
        (
            prop::collection::vec(any::<u8>(), 0..200),
            prop::collection::vec(any::<u8>(), 0..300),
        ),
        0..12,
    )
}

fn cuts_strategy() -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(1usize..300, 1..8)
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 200,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn pairs_round_trip(pairs in pairs_strategy()) {
        let mut bytes = Vec::new();
        encode_pairs(pairs.iter().map(|(n, v)| (n, v)), &mut bytes);
        let decoded = decode_pairs(&bytes, usize::MAX).unwrap();
        prop_assert_eq!(decoded.into_pairs(), pairs);
    }

    #[test]
    fn request_round_trips_under_any_chunking(
        id in 1u16..,
        keep_conn in any::<bool>(),
        pairs in pairs_strategy(),
        stdin_parts in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..3000), 0..4),
        big_stdin in prop::option::weighted(0.1, 65_000usize..140_000),
        cuts in cuts_strategy(),
    ) {
        let mut stdin: Vec<u8> = stdin_parts.concat();
        if let Some(len) = big_stdin {
            stdin.extend((0..len).map(|i| (i % 253) as u8));
        }
        let request = Request {
            id,
            role: Role::Responder,
            keep_conn,
            params: pairs.clone(),
            stdin: stdin.clone(),
        };
        let mut client = Client::new(Sink(Vec::new()));
        client.send_request(&request).unwrap();
        let bytes = client.into_inner().0;

        let mut conn = ServerConn::default();
        let events = feed_chunked(&mut conn, &bytes, &cuts);
        prop_assert!(conn.take_output().is_empty());
        prop_assert_eq!(
            &events[0],
            &ServerEvent::BeginRequest { id, role: Role::Responder, keep_conn }
        );
        let ServerEvent::Params(params) = &events[1] else {
            return Err(TestCaseError::fail(format!("{:?}", events[1])));
        };
        prop_assert_eq!(params.clone().into_pairs(), pairs);
        let mut body = Vec::new();
        for ev in &events[2..events.len() - 1] {
            match ev {
                ServerEvent::Stdin(d) => {
                    prop_assert!(!d.is_empty());
                    body.extend_from_slice(d);
                }
                other => return Err(TestCaseError::fail(format!("{other:?}"))),
            }
        }
        prop_assert_eq!(body, stdin);
        prop_assert_eq!(events.last(), Some(&ServerEvent::StdinEnd));
    }

    #[test]
    fn decoder_accepts_any_padding_and_chunking(
        records in prop::collection::vec(
            (any::<u8>(), any::<u16>(), prop::collection::vec(any::<u8>(), 0..600), any::<u8>()),
            0..10,
        ),
        cuts in cuts_strategy(),
    ) {
        let mut bytes = Vec::new();
        for (t, id, content, padding) in &records {
            let len = content.len() as u16;
            bytes.extend_from_slice(&[1, *t, (id >> 8) as u8, *id as u8, (len >> 8) as u8, len as u8, *padding, 0]);
            bytes.extend_from_slice(content);
            bytes.resize(bytes.len() + usize::from(*padding), 0xaa);
        }
        let mut dec = RecordDecoder::new();
        let mut got = Vec::new();
        let (mut pos, mut i) = (0, 0);
        while pos < bytes.len() {
            let n = cuts[i % cuts.len()].min(bytes.len() - pos);
            let mut input = &bytes[pos..pos + n];
            while let Some(r) = dec.decode(&mut input).unwrap() {
                got.push((r.record_type.as_u8(), r.request_id, r.content));
            }
            prop_assert!(input.is_empty());
            pos += n;
            i += 1;
        }
        prop_assert!(dec.is_idle());
        let want: Vec<_> = records.into_iter().map(|(t, id, c, _)| (t, id, c)).collect();
        prop_assert_eq!(got, want);
    }

    /// Pure garbage: mostly rejected at the first header, must never panic.
    #[test]
    fn garbage_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..4096), cuts in cuts_strategy()) {
        check_bounded(&bytes, &cuts);
    }

    /// Well-framed records of random types, ids and contents reach the deep
    /// states (params, stdin, management answers, refusals).
    #[test]
    fn random_records_never_panic(
        records in prop::collection::vec(
            (0u8..13, 0u16..4, prop::collection::vec(any::<u8>(), 0..40), 0u8..9, any::<bool>()),
            0..40,
        ),
        cuts in cuts_strategy(),
    ) {
        let mut bytes = Vec::new();
        for (t, id, content, padding, begin) in records {
            if begin {
                // Valid begin bodies with any role and flags.
                let body = [0, content.first().copied().unwrap_or(1) % 4, content.len() as u8 & 1, 0, 0, 0, 0, 0];
                encode_record(RecordType::BeginRequest, id, &body, &mut bytes);
                continue;
            }
            let len = content.len() as u16;
            bytes.extend_from_slice(&[1, t, 0, id as u8, (len >> 8) as u8, len as u8, padding, 0]);
            bytes.extend_from_slice(&content);
            bytes.resize(bytes.len() + usize::from(padding), 0);
        }
        check_bounded(&bytes, &cuts);
    }
}

/// Every input record (≥ 8 bytes) causes at most one answer record of at most
/// 64 bytes (the largest is FCGI_GET_VALUES_RESULT with all three variables
/// at their default values), so output ≤ 8 × input.
fn check_bounded(bytes: &[u8], cuts: &[usize]) {
    let mut conn = ServerConn::default();
    let mut output = Vec::new();
    let mut events = 0usize;
    let (mut pos, mut i) = (0, 0);
    while pos < bytes.len() {
        let n = cuts[i % cuts.len()].min(bytes.len() - pos);
        let failed = conn.feed(&bytes[pos..pos + n]).is_err();
        events += std::iter::from_fn(|| conn.poll_event()).count();
        output.extend(conn.take_output());
        if failed {
            break;
        }
        pos += n;
        i += 1;
    }
    assert!(
        output.len() <= 8 * bytes.len(),
        "{} > 8 × {}",
        output.len(),
        bytes.len()
    );
    assert!(events <= bytes.len() / HEADER_LEN);
    // Output is always well-framed FastCGI.
    let mut dec = RecordDecoder::new();
    let mut out = output.as_slice();
    while dec.decode(&mut out).unwrap().is_some() {}
    assert!(dec.is_idle());
    // Ending whatever is active must work too.
    conn.end_request(0);
}
