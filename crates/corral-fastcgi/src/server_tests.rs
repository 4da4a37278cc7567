//! Unit tests of the server state machine: every record type, every refusal
//! and every error path.

use super::*;
use crate::params::encode_pairs;
use crate::record::{encode_begin_request, encode_stream, encode_stream_end, Header, HEADER_LEN};

fn begin(id: u16, role: Role, keep: bool) -> Vec<u8> {
    let mut out = Vec::new();
    encode_begin_request(id, role, keep, &mut out);
    out
}

fn record(t: RecordType, id: u16, content: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    encode_record(t, id, content, &mut out);
    out
}

fn params_stream(id: u16, pairs: &[(&str, &str)]) -> Vec<u8> {
    let mut body = Vec::new();
    encode_pairs(pairs.iter().copied(), &mut body);
    let mut out = Vec::new();
    encode_stream(RecordType::Params, id, &body, &mut out);
    encode_stream_end(RecordType::Params, id, &mut out);
    out
}

fn events(conn: &mut ServerConn) -> Vec<ServerEvent> {
    std::iter::from_fn(|| conn.poll_event()).collect()
}

/// Splits an output buffer into (type, id, content) triples.
fn records(mut bytes: &[u8]) -> Vec<(RecordType, u16, Vec<u8>)> {
    let mut dec = RecordDecoder::new();
    let mut out = Vec::new();
    while let Some(r) = dec.decode(&mut bytes).unwrap() {
        out.push((r.record_type, r.request_id, r.content));
    }
    assert!(dec.is_idle(), "output ends mid-record");
    out
}

fn started(id: u16, keep: bool) -> ServerConn {
    let mut conn = ServerConn::default();
    conn.feed(&begin(id, Role::Responder, keep)).unwrap();
    conn.feed(&params_stream(id, &[("A", "1")])).unwrap();
    events(&mut conn);
    conn
}

#[test]
fn full_request() {
    let mut conn = ServerConn::default();
    let mut input = begin(1, Role::Responder, true);
    input.extend(params_stream(
        1,
        &[("SCRIPT_FILENAME", "/x.php"), ("REQUEST_METHOD", "POST")],
    ));
    input.extend(record(RecordType::Stdin, 1, b"abc"));
    input.extend(record(RecordType::Stdin, 1, b"def"));
    input.extend(record(RecordType::Stdin, 1, b""));
    conn.feed(&input).unwrap();
    assert!(conn.take_output().is_empty());
    let ev = events(&mut conn);
    assert_eq!(ev.len(), 5);
    assert_eq!(
        ev[0],
        ServerEvent::BeginRequest {
            id: 1,
            role: Role::Responder,
            keep_conn: true
        }
    );
    let ServerEvent::Params(p) = &ev[1] else {
        panic!("{ev:?}")
    };
    assert_eq!(p.get_str("SCRIPT_FILENAME"), Some("/x.php"));
    assert_eq!(p.get("REQUEST_METHOD"), Some(&b"POST"[..]));
    assert_eq!(ev[2], ServerEvent::Stdin(b"abc".to_vec()));
    assert_eq!(ev[3], ServerEvent::Stdin(b"def".to_vec()));
    assert_eq!(ev[4], ServerEvent::StdinEnd);
    assert_eq!(conn.active_request(), Some(1));

    assert!(conn.send_stdout(b"Content-type: text/plain\r\n\r\nhi"));
    assert_eq!(conn.end_request(0), Some(true));
    assert!(!conn.should_close());
    assert_eq!(conn.active_request(), None);
    let out = records(&conn.take_output());
    assert_eq!(
        out,
        vec![
            (
                RecordType::Stdout,
                1,
                b"Content-type: text/plain\r\n\r\nhi".to_vec()
            ),
            (RecordType::Stdout, 1, vec![]),
            (RecordType::EndRequest, 1, vec![0, 0, 0, 0, 0, 0, 0, 0]),
        ]
    );

    // The connection is reusable for the next request.
    conn.feed(&begin(2, Role::Responder, false)).unwrap();
    assert!(matches!(
        conn.poll_event(),
        Some(ServerEvent::BeginRequest {
            id: 2,
            keep_conn: false,
            ..
        })
    ));
}

#[test]
fn no_keep_conn_asks_for_close_and_stderr_is_terminated() {
    let mut conn = started(3, false);
    assert!(conn.send_stderr(b"PHP Warning"));
    assert_eq!(conn.end_request(255), Some(false));
    assert!(conn.should_close());
    let out = records(&conn.take_output());
    let types: Vec<_> = out.iter().map(|r| r.0).collect();
    assert_eq!(
        types,
        [
            RecordType::Stderr,
            RecordType::Stdout,
            RecordType::Stderr,
            RecordType::EndRequest
        ]
    );
    assert_eq!(out[3].2, vec![0, 0, 0, 255, 0, 0, 0, 0]);
}

#[test]
fn nothing_to_end_without_request() {
    let mut conn = ServerConn::default();
    assert_eq!(conn.end_request(0), None);
    assert!(!conn.send_stdout(b"x"));
    assert!(!conn.send_stderr(b"x"));
    assert!(conn.pending_output().is_empty());
}

#[test]
fn get_values_is_answered() {
    let mut conn = ServerConn::new(ServerConfig {
        max_conns: 5,
        max_reqs: 7,
        ..ServerConfig::default()
    });
    let mut q = Vec::new();
    encode_pairs(
        [
            ("FCGI_MAX_CONNS", ""),
            ("FCGI_MAX_REQS", ""),
            ("FCGI_MPXS_CONNS", ""),
            ("FCGI_MAX_CONNS", ""),
            ("UNKNOWN", ""),
        ],
        &mut q,
    );
    conn.feed(&record(RecordType::GetValues, 0, &q)).unwrap();
    let out = records(&conn.take_output());
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].0, RecordType::GetValuesResult);
    assert_eq!(out[0].1, 0);
    let p = decode_pairs(&out[0].2, 10).unwrap();
    assert_eq!(p.len(), 3, "duplicates and unknown names are not echoed");
    assert_eq!(p.get_str("FCGI_MAX_CONNS"), Some("5"));
    assert_eq!(p.get_str("FCGI_MAX_REQS"), Some("7"));
    assert_eq!(p.get_str("FCGI_MPXS_CONNS"), Some("0"));
    assert!(events(&mut conn).is_empty());
}

#[test]
fn get_values_during_request_and_malformed() {
    let mut conn = started(1, true);
    conn.feed(&record(RecordType::GetValues, 0, &[])).unwrap();
    assert_eq!(
        records(&conn.take_output()),
        vec![(RecordType::GetValuesResult, 0, vec![])]
    );
    assert_eq!(conn.active_request(), Some(1));
    let err = conn
        .feed(&record(RecordType::GetValues, 0, &[9, 0, b'x']))
        .unwrap_err();
    assert!(matches!(err, ProtocolError::TruncatedPair { .. }));
}

#[test]
fn unknown_management_types() {
    let mut conn = ServerConn::default();
    let mut input = record(RecordType::Other(200), 0, b"whatever");
    input.extend(begin(0, Role::Responder, true)); // begin with id 0
    input.extend(record(RecordType::GetValuesResult, 0, &[]));
    conn.feed(&input).unwrap();
    let out = records(&conn.take_output());
    let answered: Vec<_> = out
        .iter()
        .map(|(t, id, c)| {
            assert_eq!((*t, *id, c.len()), (RecordType::UnknownType, 0, 8));
            c[0]
        })
        .collect();
    assert_eq!(answered, [200, 1, 10]);
    assert!(events(&mut conn).is_empty());
}

#[test]
fn second_begin_during_params_gets_cant_mpx_and_is_ignored() {
    let mut conn = ServerConn::default();
    conn.feed(&begin(1, Role::Responder, true)).unwrap();
    conn.feed(&record(RecordType::Params, 1, &[1, 1, b'A', b'1']))
        .unwrap();
    let mut input = begin(2, Role::Responder, true);
    input.extend(params_stream(2, &[("B", "2")]));
    input.extend(record(RecordType::Params, 1, b""));
    input.extend(record(RecordType::Stdin, 2, b"zzz"));
    input.extend(record(RecordType::Stdin, 1, b"mine"));
    conn.feed(&input).unwrap();
    assert_eq!(
        records(&conn.take_output()),
        vec![(
            RecordType::EndRequest,
            2,
            vec![0, 0, 0, 0, protocol_status::CANT_MPX_CONN, 0, 0, 0]
        )]
    );
    let ev = events(&mut conn);
    assert_eq!(ev.len(), 3, "{ev:?}");
    let ServerEvent::Params(p) = &ev[1] else {
        panic!("{ev:?}")
    };
    assert_eq!(p.get_str("A"), Some("1"));
    assert_eq!(p.get("B"), None);
    assert_eq!(ev[2], ServerEvent::Stdin(b"mine".to_vec()));
}

/// A complete GET (BEGIN, PARAMS, empty STDIN) for `id`.
fn get_request(id: u16, keep: bool) -> Vec<u8> {
    let mut out = begin(id, Role::Responder, keep);
    out.extend(params_stream(id, &[("REQUEST_METHOD", "GET")]));
    out.extend(record(RecordType::Stdin, id, b""));
    out
}

/// A POST's BEGIN and PARAMS announcing `len` body bytes, no STDIN.
fn post_head(id: u16, keep: bool, len: usize) -> Vec<u8> {
    let mut out = begin(id, Role::Responder, keep);
    out.extend(params_stream(
        id,
        &[
            ("REQUEST_METHOD", "POST"),
            ("CONTENT_LENGTH", &len.to_string()),
        ],
    ));
    out
}

/// The ids of the BeginRequest events among `ev`, and whether the request's
/// input ended (StdinEnd) after each.
fn begun(ev: &[ServerEvent]) -> Vec<(u16, bool)> {
    let mut out = Vec::new();
    for e in ev {
        match e {
            ServerEvent::BeginRequest { id, .. } => out.push((*id, false)),
            ServerEvent::StdinEnd => out.last_mut().expect("StdinEnd after a begin").1 = true,
            _ => {}
        }
    }
    out
}

#[test]
fn pipelined_requests_wait_for_the_answer() {
    let mut input = get_request(1, true);
    input.extend(get_request(2, true));
    input.extend(get_request(1, false));
    // Whole, and byte by byte: the held bytes span many feeds.
    for step in [input.len(), 1, 7] {
        let mut conn = ServerConn::default();
        for chunk in input.chunks(step) {
            conn.feed(chunk).unwrap();
        }
        assert!(conn.pending_output().is_empty());
        let mut served = Vec::new();
        let mut output = Vec::new();
        loop {
            let ev = events(&mut conn);
            let b = begun(&ev);
            if b.is_empty() {
                break;
            }
            assert_eq!(b.len(), 1, "one request at a time: {ev:?}");
            assert!(b[0].1, "its input is complete: {ev:?}");
            assert!(conn.send_stdout(b"x"));
            let keep = conn.end_request(0).unwrap();
            served.push((b[0].0, keep));
            output.extend(conn.take_output());
        }
        assert_eq!(served, [(1, true), (2, true), (1, false)], "step {step}");
        assert!(conn.should_close());
        let ends: Vec<_> = records(&output)
            .into_iter()
            .filter(|r| r.0 == RecordType::EndRequest)
            .map(|r| r.1)
            .collect();
        assert_eq!(ends, [1, 2, 1]);
    }
}

#[test]
fn trailing_empty_stdin_is_skipped() {
    let mut input = get_request(1, true);
    input.extend(record(RecordType::Stdin, 1, b""));
    input.extend(record(RecordType::Stdin, 1, b""));
    input.extend(get_request(1, false));
    let mut conn = ServerConn::default();
    conn.feed(&input).unwrap();
    assert_eq!(begun(&events(&mut conn)), [(1, true)]);
    assert_eq!(conn.end_request(0), Some(true));
    assert_eq!(begun(&events(&mut conn)), [(1, true)]);
    assert_eq!(conn.end_request(0), Some(false));
    assert_eq!(conn.error(), None);
}

#[test]
fn trailing_stdin_data_closes_after_the_answer() {
    let mut input = get_request(1, true);
    input.extend(record(RecordType::Stdin, 1, b"junk"));
    input.extend(get_request(1, true));
    let mut conn = ServerConn::default();
    conn.feed(&input).unwrap();
    assert_eq!(begun(&events(&mut conn)), [(1, true)]);
    assert_eq!(conn.end_request(0), Some(false));
    assert!(conn.should_close());
    assert!(
        matches!(
            conn.error(),
            Some(ProtocolError::UnexpectedRecord { id: 1, .. })
        ),
        "{:?}",
        conn.error()
    );
    assert!(
        events(&mut conn).is_empty(),
        "the next request is not begun"
    );
    let out = records(&conn.take_output());
    assert_eq!(
        out.last().map(|r| (r.0, r.1)),
        Some((RecordType::EndRequest, 1))
    );
    assert!(conn.feed(&get_request(2, true)).is_err());
}

#[test]
fn begin_request_after_a_complete_body_is_the_next_request() {
    // A GET sends no body: php-fpm needs no STDIN record at all.
    let mut input = post_head(1, true, 0);
    input.extend(get_request(2, true));
    let mut conn = ServerConn::default();
    conn.feed(&input).unwrap();
    assert_eq!(begun(&events(&mut conn)), [(1, true)]);
    assert_eq!(conn.end_request(0), Some(true));
    assert_eq!(begun(&events(&mut conn)), [(2, true)]);

    // CONTENT_LENGTH bytes, no terminator, then the same id again.
    let mut input = post_head(1, true, 3);
    input.extend(record(RecordType::Stdin, 1, b"a"));
    input.extend(record(RecordType::Stdin, 1, b"bc"));
    input.extend(get_request(1, false));
    let mut conn = ServerConn::default();
    conn.feed(&input).unwrap();
    let ev = events(&mut conn);
    assert_eq!(
        ev[2..],
        [
            ServerEvent::Stdin(b"a".to_vec()),
            ServerEvent::Stdin(b"bc".to_vec()),
            ServerEvent::StdinEnd
        ]
    );
    assert_eq!(conn.end_request(0), Some(true));
    assert_eq!(begun(&events(&mut conn)), [(1, true)]);
    assert_eq!(conn.end_request(0), Some(false));
}

#[test]
fn begin_request_that_cuts_the_body_closes_after_the_answer() {
    let mut input = post_head(1, true, 10);
    input.extend(record(RecordType::Stdin, 1, b"01234"));
    input.extend(get_request(2, true));
    let mut conn = ServerConn::default();
    conn.feed(&input).unwrap();
    let ev = events(&mut conn);
    assert_eq!(
        ev[2..],
        [ServerEvent::Stdin(b"01234".to_vec()), ServerEvent::StdinEnd]
    );
    assert_eq!(conn.end_request(0), Some(false));
    assert!(conn.should_close());
    assert_eq!(conn.error(), None, "a short body is not a protocol error");
    assert!(events(&mut conn).is_empty());
}

#[test]
fn malformed_begin_after_the_body_closes_after_the_answer() {
    let mut input = post_head(1, true, 0);
    input.extend(record(RecordType::BeginRequest, 2, &[0, 1, 1]));
    let mut conn = ServerConn::default();
    conn.feed(&input).unwrap();
    assert_eq!(begun(&events(&mut conn)), [(1, true)]);
    assert_eq!(conn.end_request(0), Some(false));
    assert_eq!(
        conn.error(),
        Some(&ProtocolError::BadBeginRequest { id: 2, len: 3 })
    );
}

#[test]
fn bytes_ahead_of_the_answer_are_capped_unless_the_connection_closes() {
    let mut conn = started(1, true);
    conn.feed(&record(RecordType::Stdin, 1, b"")).unwrap();
    let chunk = record(RecordType::Data, 1, &[0; 0xfff8]);
    let mut result = Ok(());
    for _ in 0..(MAX_HELD_BYTES / chunk.len() + 1) {
        result = conn.feed(&chunk);
        if result.is_err() {
            break;
        }
    }
    assert_eq!(
        result,
        Err(ProtocolError::TooMuchAhead {
            limit: MAX_HELD_BYTES
        })
    );

    // Without keep-conn nothing after the request is ever read: nothing is
    // kept either.
    let mut conn = started(1, false);
    conn.feed(&record(RecordType::Stdin, 1, b"")).unwrap();
    for _ in 0..(MAX_HELD_BYTES / chunk.len() + 1) {
        conn.feed(&chunk).unwrap();
    }
    assert_eq!(conn.end_request(0), Some(false));
    assert!(events(&mut conn).is_empty());
}

#[test]
fn content_length_is_read_as_atol() {
    assert_eq!(parse_content_length(b"123"), 123);
    assert_eq!(parse_content_length(b"  42abc"), 42);
    assert_eq!(parse_content_length(b"-5"), 0);
    assert_eq!(parse_content_length(b""), 0);
    assert_eq!(parse_content_length(b"99999999999999999999999"), u64::MAX);
}

#[test]
fn other_roles_get_unknown_role() {
    for role in [Role::Authorizer, Role::Filter, Role::Other(99)] {
        let mut conn = ServerConn::default();
        let mut input = begin(4, role, false);
        input.extend(params_stream(4, &[("A", "1")]));
        conn.feed(&input).unwrap();
        assert_eq!(
            records(&conn.take_output()),
            vec![(
                RecordType::EndRequest,
                4,
                vec![0, 0, 0, 0, protocol_status::UNKNOWN_ROLE, 0, 0, 0]
            )]
        );
        assert!(events(&mut conn).is_empty());
        assert!(conn.should_close());
        assert_eq!(conn.active_request(), None);
    }
}

#[test]
fn records_for_unknown_ids_are_ignored() {
    let mut conn = ServerConn::default();
    let mut input = params_stream(9, &[("A", "1")]);
    input.extend(record(RecordType::Stdin, 9, b"x"));
    input.extend(record(RecordType::AbortRequest, 9, b""));
    input.extend(record(RecordType::Stdout, 9, b"x"));
    conn.feed(&input).unwrap();
    assert!(events(&mut conn).is_empty());
    assert!(conn.take_output().is_empty());
}

#[test]
fn leftovers_of_an_ended_request_are_ignored() {
    let mut conn = started(1, true);
    conn.feed(&record(RecordType::Stdin, 1, b"unread body"))
        .unwrap();
    conn.end_request(0);
    assert!(events(&mut conn).is_empty(), "queued stdin was discarded");
    conn.feed(&record(RecordType::Stdin, 1, b"more")).unwrap();
    conn.feed(&record(RecordType::Stdin, 1, b"")).unwrap();
    assert!(events(&mut conn).is_empty());
    // Past its terminator, the ended request's body cannot go on.
    assert!(conn.feed(&record(RecordType::Stdin, 1, b"x")).is_err());
}

#[test]
fn abort_is_reported_once() {
    let mut conn = started(1, true);
    conn.feed(&record(RecordType::AbortRequest, 1, b""))
        .unwrap();
    conn.feed(&record(RecordType::AbortRequest, 1, b""))
        .unwrap();
    assert_eq!(events(&mut conn), vec![ServerEvent::AbortRequest { id: 1 }]);
    assert_eq!(conn.end_request(0), Some(true));
}

#[test]
fn params_may_span_records_and_data_is_ignored() {
    let mut body = Vec::new();
    encode_pairs([("NAME", "value-that-spans")], &mut body);
    let mut conn = ServerConn::default();
    conn.feed(&begin(1, Role::Responder, true)).unwrap();
    for piece in body.chunks(3) {
        conn.feed(&record(RecordType::Params, 1, piece)).unwrap();
    }
    conn.feed(&record(RecordType::Data, 1, b"ignored")).unwrap();
    conn.feed(&record(RecordType::Other(99), 1, b"ignored"))
        .unwrap();
    conn.feed(&record(RecordType::Params, 1, b"")).unwrap();
    let ev = events(&mut conn);
    assert_eq!(ev.len(), 2);
    let ServerEvent::Params(p) = &ev[1] else {
        panic!()
    };
    assert_eq!(p.get_str("NAME"), Some("value-that-spans"));
}

#[test]
fn empty_stdin_after_end_is_tolerated() {
    let mut conn = started(1, true);
    conn.feed(&record(RecordType::Stdin, 1, b"")).unwrap();
    conn.feed(&record(RecordType::Stdin, 1, b"")).unwrap();
    assert_eq!(events(&mut conn), vec![ServerEvent::StdinEnd]);
    // Data after the end is refused only once the request is answered.
    conn.feed(&record(RecordType::Stdin, 1, b"x")).unwrap();
    assert_eq!(conn.end_request(0), Some(false));
    assert!(matches!(
        conn.error(),
        Some(ProtocolError::UnexpectedRecord { .. })
    ));
}

fn assert_error(input: &[u8], check: impl Fn(&ProtocolError) -> bool) {
    let mut conn = ServerConn::default();
    let err = conn.feed(input).unwrap_err();
    assert!(check(&err), "{err:?}");
    // Poisoned: the same error again, even for valid input.
    assert_eq!(conn.feed(&begin(1, Role::Responder, true)), Err(err));
}

#[test]
fn error_bad_version() {
    let mut input = begin(1, Role::Responder, true);
    input[0] = 0;
    assert_error(&input, |e| *e == ProtocolError::UnsupportedVersion(0));
}

#[test]
fn error_begin_request_length() {
    for len in [0usize, 7, 9, 16] {
        let input = record(RecordType::BeginRequest, 1, &vec![0; len]);
        assert_error(
            &input,
            |e| matches!(e, ProtocolError::BadBeginRequest { id: 1, len: l } if usize::from(*l) == len),
        );
    }
}

#[test]
fn error_truncated_params() {
    let mut input = begin(1, Role::Responder, true);
    input.extend(record(RecordType::Params, 1, &[5, 5, b'a']));
    input.extend(record(RecordType::Params, 1, b""));
    assert_error(&input, |e| matches!(e, ProtocolError::TruncatedPair { .. }));
    // A 4-byte length announcing 2 GiB is rejected without allocating it.
    let mut input = begin(1, Role::Responder, true);
    input.extend(record(
        RecordType::Params,
        1,
        &[0xff, 0xff, 0xff, 0xff, 0x7f, 0xff, 0xff, 0xff, 0xff],
    ));
    input.extend(record(RecordType::Params, 1, b""));
    assert_error(&input, |e| matches!(e, ProtocolError::TruncatedPair { .. }));
}

#[test]
fn error_params_too_large() {
    let mut conn = ServerConn::new(ServerConfig {
        max_params_bytes: 100,
        ..ServerConfig::default()
    });
    conn.feed(&begin(1, Role::Responder, true)).unwrap();
    conn.feed(&record(RecordType::Params, 1, &[1; 60])).unwrap();
    assert_eq!(
        conn.feed(&record(RecordType::Params, 1, &[1; 60])),
        Err(ProtocolError::ParamsTooLarge { limit: 100 })
    );
    // The default cap: 1 MiB.
    let mut conn = ServerConn::default();
    conn.feed(&begin(1, Role::Responder, true)).unwrap();
    let chunk = vec![0u8; 0xfff8];
    let mut result = Ok(());
    for _ in 0..17 {
        result = conn.feed(&record(RecordType::Params, 1, &chunk));
        if result.is_err() {
            break;
        }
    }
    assert_eq!(
        result,
        Err(ProtocolError::ParamsTooLarge {
            limit: DEFAULT_MAX_PARAMS_BYTES
        })
    );
}

#[test]
fn error_too_many_params() {
    let mut conn = ServerConn::new(ServerConfig {
        max_params_count: 2,
        ..ServerConfig::default()
    });
    conn.feed(&begin(1, Role::Responder, true)).unwrap();
    assert_eq!(
        conn.feed(&params_stream(1, &[("a", ""), ("b", ""), ("c", "")])),
        Err(ProtocolError::TooManyParams { limit: 2 })
    );
}

#[test]
fn error_out_of_order_streams() {
    let unexpected = |e: &ProtocolError| matches!(e, ProtocolError::UnexpectedRecord { id: 1, .. });
    // stdin before params end
    let mut input = begin(1, Role::Responder, true);
    input.extend(record(RecordType::Stdin, 1, b"x"));
    assert_error(&input, unexpected);
    // params after params end
    let mut input = begin(1, Role::Responder, true);
    input.extend(params_stream(1, &[]));
    input.extend(record(RecordType::Params, 1, b""));
    assert_error(&input, unexpected);
    // duplicate begin for the active id
    let mut input = begin(1, Role::Responder, true);
    input.extend(begin(1, Role::Responder, true));
    assert_error(&input, unexpected);
    // application-only record types for the active request
    for t in [
        RecordType::Stdout,
        RecordType::Stderr,
        RecordType::EndRequest,
        RecordType::GetValues,
        RecordType::GetValuesResult,
        RecordType::UnknownType,
    ] {
        let mut input = begin(1, Role::Responder, true);
        input.extend(record(t, 1, b""));
        assert_error(&input, unexpected);
    }
}

#[test]
fn header_len_constant_matches() {
    let bytes = begin(1, Role::Responder, true);
    let header: [u8; HEADER_LEN] = bytes[..HEADER_LEN].try_into().unwrap();
    assert_eq!(Header::parse(&header).content_length, 8);
}

#[test]
fn output_is_written_in_place_and_cleared() {
    let mut conn = started(1, true);
    assert!(conn.send_stdout(b"x"));
    assert_eq!(
        records(conn.pending_output()),
        vec![(RecordType::Stdout, 1, b"x".to_vec())]
    );
    conn.clear_output();
    assert!(conn.pending_output().is_empty());
    conn.end_request(0);
    let types: Vec<_> = records(conn.pending_output()).iter().map(|r| r.0).collect();
    assert_eq!(types, [RecordType::Stdout, RecordType::EndRequest]);
}
