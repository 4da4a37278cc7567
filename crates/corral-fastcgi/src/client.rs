//! A small blocking FastCGI client over any `Read + Write`, for tests and the
//! load generator. It plays nginx's part: one request at a time, records for
//! other request ids are skipped.

use std::io::{self, Read, Write};

use crate::cgi::{parse_response, CgiError, CgiResponse};
use crate::decode::RecordDecoder;
use crate::error::ProtocolError;
use crate::params::{decode_pairs, encode_pairs, Params};
use crate::record::{encode_abort_request, encode_record, Record, RecordType};
use crate::request::Request;
use crate::server::DEFAULT_MAX_PARAMS_COUNT;

/// What the application answered to one request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Response {
    /// FCGI_STDOUT, concatenated: a CGI response (see [`Response::cgi`]).
    pub stdout: Vec<u8>,
    /// FCGI_STDERR, concatenated.
    pub stderr: Vec<u8>,
    /// `appStatus` of FCGI_END_REQUEST.
    pub app_status: u32,
    /// `protocolStatus` of FCGI_END_REQUEST (see [`crate::protocol_status`]).
    pub protocol_status: u8,
}

impl Response {
    /// Parses `stdout` as a CGI response.
    pub fn cgi(&self) -> Result<CgiResponse, CgiError> {
        parse_response(&self.stdout)
    }
}

fn invalid(err: ProtocolError) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, err)
}

/// Blocking FastCGI client.
#[derive(Debug)]
pub struct Client<S> {
    stream: S,
    decoder: RecordDecoder,
    /// Bytes read but not yet decoded (left over after the record a call
    /// was waiting for).
    unread: Vec<u8>,
}

impl<S: Read + Write> Client<S> {
    /// Wraps a connected stream.
    pub fn new(stream: S) -> Self {
        Client {
            stream,
            decoder: RecordDecoder::new(),
            unread: Vec::new(),
        }
    }

    /// The stream, e.g. to set timeouts.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.stream
    }

    /// Gives the stream back.
    pub fn into_inner(self) -> S {
        self.stream
    }

    /// Sends `req` and reads until its FCGI_END_REQUEST.
    pub fn request(&mut self, req: &Request) -> io::Result<Response> {
        self.send_request(req)?;
        self.read_response(req.id)
    }

    /// Writes the whole request (begin, params, stdin, terminators) without
    /// reading, so a test can interleave e.g. [`Client::abort`].
    pub fn send_request(&mut self, req: &Request) -> io::Result<()> {
        self.stream.write_all(&req.encode())?;
        self.stream.flush()
    }

    /// Sends FCGI_ABORT_REQUEST for `id`.
    pub fn abort(&mut self, id: u16) -> io::Result<()> {
        let mut out = Vec::new();
        encode_abort_request(id, &mut out);
        self.stream.write_all(&out)?;
        self.stream.flush()
    }

    /// Reads records until FCGI_END_REQUEST for `id`, collecting its output.
    pub fn read_response(&mut self, id: u16) -> io::Result<Response> {
        let mut response = Response::default();
        loop {
            let record = self.next_record()?;
            if record.request_id != id {
                continue;
            }
            match record.record_type {
                RecordType::Stdout => response.stdout.extend_from_slice(&record.content),
                RecordType::Stderr => response.stderr.extend_from_slice(&record.content),
                RecordType::EndRequest => {
                    let body: [u8; 8] = record.content.as_slice().try_into().map_err(|_| {
                        invalid(ProtocolError::BadEndRequest {
                            id,
                            len: u16::try_from(record.content.len()).unwrap_or(u16::MAX),
                        })
                    })?;
                    response.app_status = u32::from_be_bytes([body[0], body[1], body[2], body[3]]);
                    response.protocol_status = body[4];
                    return Ok(response);
                }
                _ => {}
            }
        }
    }

    /// Asks FCGI_GET_VALUES for `names` and returns the answered pairs.
    pub fn get_values(&mut self, names: &[&str]) -> io::Result<Params> {
        let mut body = Vec::new();
        encode_pairs(names.iter().map(|n| (n.as_bytes(), &b""[..])), &mut body);
        let mut out = Vec::new();
        encode_record(RecordType::GetValues, 0, &body, &mut out);
        self.stream.write_all(&out)?;
        self.stream.flush()?;
        loop {
            let record = self.next_record()?;
            match (record.request_id, record.record_type) {
                (0, RecordType::GetValuesResult) => {
                    return decode_pairs(&record.content, DEFAULT_MAX_PARAMS_COUNT).map_err(invalid)
                }
                (0, RecordType::UnknownType) => {
                    return Err(io::Error::new(
                        io::ErrorKind::Unsupported,
                        "application answered FCGI_GET_VALUES with FCGI_UNKNOWN_TYPE",
                    ))
                }
                _ => {}
            }
        }
    }

    /// Next complete record, reading from the stream as needed.
    pub fn next_record(&mut self) -> io::Result<Record> {
        let mut buf = [0u8; 16 * 1024];
        loop {
            if !self.unread.is_empty() {
                let mut input = self.unread.as_slice();
                let record = self.decoder.decode(&mut input).map_err(invalid)?;
                let consumed = self.unread.len() - input.len();
                self.unread.drain(..consumed);
                if let Some(record) = record {
                    return Ok(record);
                }
            }
            let n = match self.stream.read(&mut buf) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    if self.decoder.is_idle() {
                        "connection closed before FCGI_END_REQUEST"
                    } else {
                        "connection closed in the middle of a record"
                    },
                ));
            }
            self.unread.extend_from_slice(&buf[..n]);
        }
    }
}
