//! Application-side connection state machine (what php-fpm's `fcgi_read_request`
//! and friends do), without any I/O.
//!
//! The worker feeds bytes it read from the socket, pulls [`ServerEvent`]s,
//! writes the response through [`ServerConn::send_stdout`] /
//! [`ServerConn::end_request`], and drains [`ServerConn::take_output`] to the
//! socket. Management replies (FCGI_GET_VALUES_RESULT, FCGI_UNKNOWN_TYPE) and
//! rejections (FCGI_CANT_MPX_CONN, FCGI_UNKNOWN_ROLE) are queued into the same
//! output buffer, so ordering on the wire is always the order of events.
//!
//! One request at a time: like php-fpm, corral does not multiplex. And like
//! php-fpm, which reads the next request only after it has answered the
//! current one, whatever follows a request's input is decoded only after
//! [`ServerConn::end_request`]: until then it is held, so a pipelined request
//! or a trailing record can neither be lost nor refuse the request before it.
//! In php-fpm's terms (`fcgi_read_request`, `fcgi_read`):
//! * a request's input is complete at its empty FCGI_STDIN, or at an
//!   FCGI_BEGIN_REQUEST once CONTENT_LENGTH bytes of body are in (php-fpm
//!   reads no further than CONTENT_LENGTH, so it never needs the terminator);
//!   an FCGI_BEGIN_REQUEST that cuts the body short ends it too, and the
//!   connection is closed after the answer;
//! * between requests, empty FCGI_STDIN records are skipped; FCGI_STDIN with
//!   data for the request just answered closes the connection.
//!
//! Deliberate differences from php-fpm (more lenient, never less safe):
//! * a name-value pair may span FCGI_PARAMS records (the spec allows it;
//!   php-fpm parses each record on its own);
//! * a second FCGI_BEGIN_REQUEST before the params stream ended is answered
//!   with FCGI_CANT_MPX_CONN (php-fpm would run the request with the params
//!   it had so far);
//! * other records for request ids that are not active are ignored, so
//!   leftovers of a request the worker ended early (unread FCGI_STDIN) do no
//!   harm;
//! * padding up to 255 bytes is accepted (php-fpm rejects content+padding
//!   above 65535);
//! * a body cut short by FCGI_BEGIN_REQUEST reaches PHP as far as it came
//!   (php-fpm's `fcgi_read` returns 0 for the read that meets the record, so
//!   the script sees none of that read's bytes).

use std::collections::VecDeque;

use crate::decode::RecordDecoder;
use crate::error::ProtocolError;
use crate::params::{decode_pairs, decode_pairs_into, encode_pair, Params};
use crate::record::{
    encode_end_request, encode_record, encode_stderr, encode_stderr_end, encode_stdout,
    encode_stdout_end, encode_unknown_type, protocol_status, Record, RecordType, Role,
    FCGI_KEEP_CONN,
};

/// Default cap on one request's FCGI_PARAMS stream: 1 MiB. nginx's default
/// header buffers (4 × 8 KiB) produce far less; the cap only stops a peer from
/// making the worker buffer without end.
pub const DEFAULT_MAX_PARAMS_BYTES: usize = 1 << 20;
/// Default cap on name-value pairs per request (and per FCGI_GET_VALUES).
/// Each pair costs two allocations, so this bounds bookkeeping separately from
/// bytes: 1 MiB of two-byte empty pairs would otherwise be 512 Ki pairs.
pub const DEFAULT_MAX_PARAMS_COUNT: usize = 8192;
/// Cap on the bytes a peer may send past the request in progress (pipelined
/// requests) before it is answered. A worker does not read the socket in that
/// state, so only a caller that keeps feeding gets near it; the cap bounds
/// what it buffers, like the params cap.
pub const MAX_HELD_BYTES: usize = 1 << 20;

/// Limits and management values of one connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    /// Reported as FCGI_MAX_CONNS. php-fpm reports the pool's `pm.max_children`.
    pub max_conns: u32,
    /// Reported as FCGI_MAX_REQS. php-fpm reports the pool's `pm.max_children`.
    pub max_reqs: u32,
    /// Cap on the bytes of one request's FCGI_PARAMS stream.
    pub max_params_bytes: usize,
    /// Cap on the number of pairs in one FCGI_PARAMS stream or FCGI_GET_VALUES.
    pub max_params_count: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            max_conns: 1,
            max_reqs: 1,
            max_params_bytes: DEFAULT_MAX_PARAMS_BYTES,
            max_params_count: DEFAULT_MAX_PARAMS_COUNT,
        }
    }
}

/// What the web server asked for, in arrival order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerEvent {
    /// A request started. Only `Role::Responder` requests are reported; other
    /// roles were already answered with FCGI_UNKNOWN_ROLE.
    BeginRequest {
        id: u16,
        role: Role,
        keep_conn: bool,
    },
    /// The complete CGI environment (after the empty FCGI_PARAMS record).
    Params(Params),
    /// A non-empty piece of the request body.
    Stdin(Vec<u8>),
    /// The request body is complete.
    StdinEnd,
    /// The web server gave up on the request (client went away); the worker
    /// should stop and still call [`ServerConn::end_request`].
    AbortRequest { id: u16 },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Params,
    Stdin,
    StdinDone,
}

#[derive(Debug)]
struct Active {
    id: u16,
    keep_conn: bool,
    phase: Phase,
    aborted: bool,
    stderr_used: bool,
    /// CONTENT_LENGTH once the params are in (0 when absent or not a number).
    content_length: u64,
    /// FCGI_STDIN bytes received so far.
    stdin_received: u64,
}

/// The request answered last, whose trailing records may still arrive.
#[derive(Debug, Clone, Copy)]
struct Previous {
    id: u16,
    /// Its empty FCGI_STDIN has been seen.
    stdin_done: bool,
}

/// One FastCGI connection, application side.
#[derive(Debug)]
pub struct ServerConn {
    config: ServerConfig,
    decoder: RecordDecoder,
    active: Option<Active>,
    /// The FCGI_PARAMS stream of the active request, reused across requests.
    params_buf: Vec<u8>,
    /// Where the next request's params are decoded: the set the caller gave
    /// back with [`ServerConn::recycle_params`], so that its memory serves
    /// request after request.
    spare_params: Params,
    /// Input after the active request's input was complete, decoded once the
    /// request has ended. Starts at a record boundary.
    held: Vec<u8>,
    /// The record that completed the active request's input by starting
    /// something else (an FCGI_BEGIN_REQUEST during FCGI_STDIN); it comes
    /// before `held`.
    held_record: Option<Record>,
    previous: Option<Previous>,
    events: VecDeque<ServerEvent>,
    output: Vec<u8>,
    close_requested: bool,
    failed: Option<ProtocolError>,
}

impl Default for ServerConn {
    fn default() -> Self {
        Self::new(ServerConfig::default())
    }
}

impl ServerConn {
    /// A fresh connection with no request active.
    pub fn new(config: ServerConfig) -> Self {
        ServerConn {
            config,
            decoder: RecordDecoder::new(),
            active: None,
            params_buf: Vec::new(),
            spare_params: Params::new(),
            held: Vec::new(),
            held_record: None,
            previous: None,
            events: VecDeque::new(),
            output: Vec::new(),
            close_requested: false,
            failed: None,
        }
    }

    /// Makes this a fresh connection again (as [`ServerConn::new`] with the
    /// same config), keeping every buffer's memory: a worker serves
    /// connection after connection through one `ServerConn`.
    pub fn reset(&mut self) {
        self.decoder.reset();
        self.active = None;
        self.params_buf.clear();
        self.held.clear();
        self.held_record = None;
        self.previous = None;
        self.events.clear();
        self.output.clear();
        self.close_requested = false;
        self.failed = None;
    }

    /// Whether events are decoded and waiting for [`ServerConn::poll_event`]:
    /// a web server that sent its next request on a kept connection before
    /// the last response ended has it here, not in the socket.
    pub fn has_queued_events(&self) -> bool {
        !self.events.is_empty()
    }

    /// Hands back the params of a [`ServerEvent::Params`] once the caller is
    /// done with them; the next request is decoded into their memory.
    pub fn recycle_params(&mut self, params: Params) {
        self.spare_params = params;
    }

    /// Processes bytes read from the socket. Any chunking is fine. On error
    /// the connection is unusable (every later call returns the same error):
    /// close it, as php-fpm does.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<(), ProtocolError> {
        if let Some(err) = &self.failed {
            return Err(err.clone());
        }
        let mut bytes = bytes;
        let result = self.feed_records(&mut bytes);
        if let Err(err) = &result {
            self.failed = Some(err.clone());
        }
        result
    }

    fn feed_records(&mut self, bytes: &mut &[u8]) -> Result<(), ProtocolError> {
        loop {
            if self.input_complete() {
                return self.hold(bytes);
            }
            match self.decoder.decode(bytes)? {
                Some(mut record) => {
                    let handled = self.handle(&mut record);
                    // What the record's handler did not keep goes back to
                    // the decoder: no allocation per record.
                    self.decoder.recycle(record.content);
                    handled?
                }
                None => return Ok(()),
            }
        }
    }

    /// The active request has all its input: what follows belongs to the
    /// next one.
    fn input_complete(&self) -> bool {
        self.active
            .as_ref()
            .is_some_and(|a| a.phase == Phase::StdinDone)
    }

    /// Keeps `bytes` for after the active request. When the connection closes
    /// after it anyway, they are dropped, as php-fpm never reads them.
    fn hold(&mut self, bytes: &mut &[u8]) -> Result<(), ProtocolError> {
        let rest = std::mem::take(bytes);
        if !self.active.as_ref().is_some_and(|a| a.keep_conn) {
            return Ok(());
        }
        if self.held.len() + rest.len() > MAX_HELD_BYTES {
            return Err(ProtocolError::TooMuchAhead {
                limit: MAX_HELD_BYTES,
            });
        }
        self.held.extend_from_slice(rest);
        Ok(())
    }

    /// Decodes what arrived after the request that just ended, as the start
    /// of the next one.
    fn replay_held(&mut self) -> Result<(), ProtocolError> {
        if let Some(mut record) = self.held_record.take() {
            self.handle(&mut record)?;
        }
        if self.held.is_empty() {
            return Ok(());
        }
        let mut held = std::mem::take(&mut self.held);
        let result = self.feed_records(&mut held.as_slice());
        if self.held.is_empty() {
            // Nothing held again: keep the allocation.
            held.clear();
            self.held = held;
        }
        result
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<ServerEvent> {
        self.events.pop_front()
    }

    /// Bytes to write to the socket, leaving the buffer empty.
    pub fn take_output(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.output)
    }

    /// Bytes waiting to be written (without taking them).
    pub fn pending_output(&self) -> &[u8] {
        &self.output
    }

    /// Forgets the pending output once the caller has written it from
    /// [`ServerConn::pending_output`], keeping the buffer for the next.
    pub fn clear_output(&mut self) {
        self.output.clear();
    }

    /// Why the connection is unusable, once it is.
    pub fn error(&self) -> Option<&ProtocolError> {
        self.failed.as_ref()
    }

    /// The id of the request in progress.
    pub fn active_request(&self) -> Option<u16> {
        self.active.as_ref().map(|a| a.id)
    }

    /// True once the peer asked (via a cleared FCGI_KEEP_CONN flag) that the
    /// connection be closed after the output written so far.
    pub fn should_close(&self) -> bool {
        self.close_requested
    }

    /// Queues response body bytes (headers included: that is CGI's format) for
    /// the active request. Returns false and writes nothing when no request is
    /// active.
    pub fn send_stdout(&mut self, data: &[u8]) -> bool {
        match &self.active {
            Some(a) => {
                encode_stdout(a.id, data, &mut self.output);
                true
            }
            None => false,
        }
    }

    /// Queues FCGI_STDERR bytes (what php-fpm sends for errors when
    /// `fastcgi.logging` is on). Returns false when no request is active.
    pub fn send_stderr(&mut self, data: &[u8]) -> bool {
        match &mut self.active {
            Some(a) => {
                if !data.is_empty() {
                    a.stderr_used = true;
                }
                encode_stderr(a.id, data, &mut self.output);
                true
            }
            None => false,
        }
    }

    /// Ends the active request: closes the output streams, queues
    /// FCGI_END_REQUEST (FCGI_REQUEST_COMPLETE, `app_status`; php-fpm always
    /// sends 0) and makes the connection ready for the next request. Queued
    /// events of the ended request that were not polled yet are discarded;
    /// input that arrived after the request is decoded now, so the next
    /// request's events may be queued on return.
    ///
    /// Returns `Some(keep_conn)`, or `None` when no request was active.
    /// `keep_conn` is false when the peer did not ask to keep the connection,
    /// when its input was cut short, or when what it sent after the request
    /// is not FastCGI we accept ([`ServerConn::error`] says why); then
    /// [`ServerConn::should_close`] becomes true.
    pub fn end_request(&mut self, app_status: u32) -> Option<bool> {
        let active = self.active.take()?;
        encode_stdout_end(active.id, &mut self.output);
        if active.stderr_used {
            encode_stderr_end(active.id, &mut self.output);
        }
        encode_end_request(
            active.id,
            app_status,
            protocol_status::REQUEST_COMPLETE,
            &mut self.output,
        );
        // Every queued event is this request's: the next BEGIN_REQUEST is
        // not decoded before now.
        self.events.clear();
        self.previous = Some(Previous {
            id: active.id,
            stdin_done: active.phase == Phase::StdinDone,
        });
        if !active.keep_conn {
            self.close_requested = true;
            self.held.clear();
            self.held_record = None;
            return Some(false);
        }
        if let Err(err) = self.replay_held() {
            self.failed = Some(err);
            self.close_requested = true;
            return Some(false);
        }
        Some(true)
    }

    fn handle(&mut self, record: &mut Record) -> Result<(), ProtocolError> {
        let id = record.request_id;
        if id == 0 {
            return self.handle_management(record);
        }
        if record.record_type == RecordType::BeginRequest {
            return self.handle_begin(record);
        }
        let Some(active) = self.active.as_mut().filter(|a| a.id == id) else {
            return self.handle_stray(record);
        };
        let unexpected = |context| ProtocolError::UnexpectedRecord {
            record_type: record.record_type.as_u8(),
            id,
            context,
        };
        match record.record_type {
            RecordType::Params => {
                if active.phase != Phase::Params {
                    return Err(unexpected("FCGI_PARAMS after the params stream ended"));
                }
                if record.content.is_empty() {
                    let mut params = std::mem::take(&mut self.spare_params);
                    decode_pairs_into(&self.params_buf, self.config.max_params_count, &mut params)?;
                    self.params_buf.clear();
                    active.phase = Phase::Stdin;
                    active.content_length =
                        params.get("CONTENT_LENGTH").map_or(0, parse_content_length);
                    self.events.push_back(ServerEvent::Params(params));
                } else {
                    let total = self.params_buf.len() + record.content.len();
                    if total > self.config.max_params_bytes {
                        return Err(ProtocolError::ParamsTooLarge {
                            limit: self.config.max_params_bytes,
                        });
                    }
                    self.params_buf.extend_from_slice(&record.content);
                }
            }
            RecordType::Stdin => match active.phase {
                Phase::Params => {
                    return Err(unexpected("FCGI_STDIN before the params stream ended"))
                }
                Phase::Stdin if record.content.is_empty() => {
                    active.phase = Phase::StdinDone;
                    self.events.push_back(ServerEvent::StdinEnd);
                }
                Phase::Stdin => {
                    active.stdin_received += record.content.len() as u64;
                    self.events
                        .push_back(ServerEvent::Stdin(std::mem::take(&mut record.content)));
                }
                // Not reached through `feed`, which holds everything after
                // the input is complete; kept for the rule's sake.
                Phase::StdinDone if record.content.is_empty() => {}
                Phase::StdinDone => {
                    return Err(unexpected("FCGI_STDIN after the stdin stream ended"))
                }
            },
            RecordType::AbortRequest => {
                if !active.aborted {
                    active.aborted = true;
                    self.events.push_back(ServerEvent::AbortRequest { id });
                }
            }
            // A responder has no use for FCGI_DATA (filter role only).
            RecordType::Data => {}
            RecordType::EndRequest
            | RecordType::Stdout
            | RecordType::Stderr
            | RecordType::GetValues
            | RecordType::GetValuesResult
            | RecordType::UnknownType => {
                return Err(unexpected(
                    "record type a web server never sends for a request",
                ))
            }
            RecordType::BeginRequest | RecordType::Other(_) => {}
        }
        Ok(())
    }

    /// A record for no request in progress. php-fpm skips empty FCGI_STDIN
    /// between requests and drops the connection on FCGI_STDIN with data
    /// after a request's body: so does this for the request answered last
    /// (unless it was ended before its body was complete: the rest of that
    /// body is skipped). Anything else is ignored.
    fn handle_stray(&mut self, record: &Record) -> Result<(), ProtocolError> {
        let Some(previous) = self
            .previous
            .as_mut()
            .filter(|p| p.id == record.request_id && record.record_type == RecordType::Stdin)
        else {
            return Ok(());
        };
        if record.content.is_empty() {
            previous.stdin_done = true;
        } else if previous.stdin_done {
            return Err(ProtocolError::UnexpectedRecord {
                record_type: RecordType::Stdin.as_u8(),
                id: record.request_id,
                context: "FCGI_STDIN after the stdin stream ended",
            });
        }
        Ok(())
    }

    fn handle_begin(&mut self, record: &mut Record) -> Result<(), ProtocolError> {
        // During the body, FCGI_BEGIN_REQUEST ends it (php-fpm's `fcgi_read`
        // stops at any record that is not FCGI_STDIN). With CONTENT_LENGTH
        // bytes in, the record is the next request, checked and handled once
        // this one has ended; short of that, the body was cut and the
        // connection is closed after the answer.
        if let Some(active) = self.active.as_mut().filter(|a| a.phase == Phase::Stdin) {
            active.phase = Phase::StdinDone;
            self.events.push_back(ServerEvent::StdinEnd);
            if active.stdin_received < active.content_length {
                active.keep_conn = false;
            } else {
                self.held_record = Some(Record {
                    record_type: record.record_type,
                    request_id: record.request_id,
                    content: std::mem::take(&mut record.content),
                });
            }
            return Ok(());
        }
        let id = record.request_id;
        let body: [u8; 8] =
            record
                .content
                .as_slice()
                .try_into()
                .map_err(|_| ProtocolError::BadBeginRequest {
                    id,
                    len: u16::try_from(record.content.len()).unwrap_or(u16::MAX),
                })?;
        let role = Role::from_u16(u16::from_be_bytes([body[0], body[1]]));
        let keep_conn = body[2] & FCGI_KEEP_CONN != 0;
        match &self.active {
            Some(active) if active.id == id => Err(ProtocolError::UnexpectedRecord {
                record_type: RecordType::BeginRequest.as_u8(),
                id,
                context: "FCGI_BEGIN_REQUEST for the request already in progress",
            }),
            Some(_) => {
                encode_end_request(id, 0, protocol_status::CANT_MPX_CONN, &mut self.output);
                Ok(())
            }
            None if role != Role::Responder => {
                encode_end_request(id, 0, protocol_status::UNKNOWN_ROLE, &mut self.output);
                if !keep_conn {
                    self.close_requested = true;
                }
                Ok(())
            }
            None => {
                self.close_requested = false;
                self.previous = None;
                self.params_buf.clear();
                self.active = Some(Active {
                    id,
                    keep_conn,
                    phase: Phase::Params,
                    aborted: false,
                    stderr_used: false,
                    content_length: 0,
                    stdin_received: 0,
                });
                self.events.push_back(ServerEvent::BeginRequest {
                    id,
                    role,
                    keep_conn,
                });
                Ok(())
            }
        }
    }

    /// Management records (request id 0): FCGI_GET_VALUES is answered, every
    /// other type (including request types sent with id 0) gets
    /// FCGI_UNKNOWN_TYPE, as the spec asks.
    fn handle_management(&mut self, record: &Record) -> Result<(), ProtocolError> {
        if record.record_type != RecordType::GetValues {
            encode_unknown_type(record.record_type.as_u8(), &mut self.output);
            return Ok(());
        }
        // The answer has at most one pair per known variable, so it is small
        // whatever the query looks like.
        let names = decode_pairs(&record.content, self.config.max_params_count)?;
        let mut answered: [bool; 3] = [false; 3];
        let mut body = Vec::new();
        for (name, _) in names.iter() {
            let (slot, value) = match name {
                b"FCGI_MAX_CONNS" => (0, self.config.max_conns.to_string()),
                b"FCGI_MAX_REQS" => (1, self.config.max_reqs.to_string()),
                b"FCGI_MPXS_CONNS" => (2, "0".to_string()),
                _ => continue,
            };
            if !answered[slot] {
                answered[slot] = true;
                encode_pair(name, value.as_bytes(), &mut body);
            }
        }
        encode_record(RecordType::GetValuesResult, 0, &body, &mut self.output);
        Ok(())
    }
}

/// CONTENT_LENGTH as php-fpm reads it (`atol`): leading digits after
/// optional blanks; anything else, or a negative number, is 0.
fn parse_content_length(value: &[u8]) -> u64 {
    value
        .iter()
        .skip_while(|b| b.is_ascii_whitespace())
        .take_while(|b| b.is_ascii_digit())
        .fold(0u64, |n, &d| {
            n.saturating_mul(10).saturating_add(u64::from(d - b'0'))
        })
}

#[cfg(test)]
#[path = "server_tests.rs"]
mod tests;
