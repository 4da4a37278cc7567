//! One FastCGI connection of the generator: writes a pre-encoded request and
//! reads records until its FCGI_END_REQUEST.
//!
//! Not [`corral_fastcgi::Client`]: that one re-encodes every request and keeps
//! the whole response, which is right for tests but would make the generator
//! pay per request for work the server under test is supposed to be the
//! bottleneck of. Here the request bytes are encoded once ([`encode_request`]),
//! only the CGI header block is kept (for the status), and the read buffer is
//! reused.

use std::io::{self, Read, Write};
use std::time::Duration;

use corral_fastcgi::{
    parse_response, protocol_status, CgiError, ProtocolError, RecordDecoder, RecordType, Request,
};
use thiserror::Error;

use crate::target::{Stream, Target};

/// Request id used on every connection: the generator never multiplexes, like
/// nginx, so 1 is what php-fpm sees in production too.
pub const REQUEST_ID: u16 = 1;
/// Header bytes kept to find the CGI `Status:`; a header block longer than
/// this is reported as a protocol error instead of buffered without bound.
const MAX_HEAD: usize = 16 * 1024;
const READ_BUF: usize = 64 * 1024;

/// Why one request did not produce a response. Each variant is one error
/// class of the report.
#[derive(Debug, Error)]
pub enum RequestError {
    /// The connection could not be opened.
    #[error("connect: {0}")]
    Connect(#[source] io::Error),
    /// A read or write hit the `--timeout`.
    #[error("timeout: {0}")]
    Timeout(#[source] io::Error),
    /// Any other socket error, including the peer closing before
    /// FCGI_END_REQUEST.
    #[error("i/o: {0}")]
    Io(#[source] io::Error),
    /// The bytes were not a valid FastCGI response.
    #[error("protocol: {0}")]
    Protocol(#[from] ProtocolError),
    /// FCGI_STDOUT was not a CGI response.
    #[error("bad CGI response: {0}")]
    Cgi(#[from] CgiError),
    /// FCGI_END_REQUEST with a protocolStatus other than REQUEST_COMPLETE
    /// (e.g. FCGI_OVERLOADED).
    #[error("request rejected with protocolStatus {0}")]
    Rejected(u8),
}

impl RequestError {
    fn from_io(e: io::Error) -> Self {
        match e.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => RequestError::Timeout(e),
            _ => RequestError::Io(e),
        }
    }
}

/// What a completed request produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    /// CGI status (200 when the script sent no `Status:`).
    pub status: u16,
    /// Bytes read from the socket for this request, record framing included.
    pub bytes: u64,
}

/// Encodes `req` into the exact bytes a client writes: BEGIN_REQUEST, the
/// PARAMS stream and its terminator, the STDIN stream and its terminator.
pub fn encode_request(req: &Request) -> Vec<u8> {
    req.encode()
}

/// An open connection plus its decoding state.
pub struct Conn {
    stream: Stream,
    decoder: RecordDecoder,
    buf: Box<[u8]>,
    /// Undecoded bytes are `buf[start..end]` (left over if a peer ever sends
    /// more after FCGI_END_REQUEST).
    start: usize,
    end: usize,
    head: Vec<u8>,
}

impl Conn {
    /// Connects to `target`; `timeout` bounds the TCP connect and every later
    /// read and write.
    pub fn open(target: &Target, timeout: Duration) -> Result<Self, RequestError> {
        let stream = target.connect(timeout).map_err(RequestError::Connect)?;
        stream
            .set_timeout(Some(timeout))
            .map_err(RequestError::Connect)?;
        Ok(Conn {
            stream,
            decoder: RecordDecoder::new(),
            buf: vec![0; READ_BUF].into_boxed_slice(),
            start: 0,
            end: 0,
            head: Vec::with_capacity(256),
        })
    }

    /// Sends `request` (from [`encode_request`], id [`REQUEST_ID`]) and reads
    /// until its FCGI_END_REQUEST. After an error the connection must be
    /// dropped: its framing state is unknown.
    pub fn exchange(&mut self, request: &[u8]) -> Result<Outcome, RequestError> {
        self.stream
            .write_all(request)
            .map_err(RequestError::from_io)?;
        self.head.clear();
        let mut head_done = false;
        let mut bytes = 0u64;
        loop {
            if self.start == self.end {
                let n = loop {
                    match self.stream.read(&mut self.buf) {
                        Ok(n) => break n,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        Err(e) => return Err(RequestError::from_io(e)),
                    }
                };
                if n == 0 {
                    return Err(RequestError::Io(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "connection closed before FCGI_END_REQUEST",
                    )));
                }
                bytes += n as u64;
                self.start = 0;
                self.end = n;
            }
            let mut input = &self.buf[self.start..self.end];
            let record = self.decoder.decode(&mut input)?;
            self.start = self.end - input.len();
            let Some(record) = record else { continue };
            if record.request_id != REQUEST_ID {
                continue;
            }
            match record.record_type {
                RecordType::Stdout if !head_done => {
                    self.head.extend_from_slice(&record.content);
                    head_done = has_header_end(&self.head) || self.head.len() >= MAX_HEAD;
                }
                RecordType::EndRequest => {
                    let status =
                        record
                            .content
                            .get(4)
                            .copied()
                            .ok_or(ProtocolError::BadEndRequest {
                                id: REQUEST_ID,
                                len: u16::try_from(record.content.len()).unwrap_or(u16::MAX),
                            })?;
                    if status != protocol_status::REQUEST_COMPLETE {
                        return Err(RequestError::Rejected(status));
                    }
                    let status = parse_response(&self.head)?.status;
                    return Ok(Outcome { status, bytes });
                }
                _ => {}
            }
        }
    }
}

/// True once the CGI header block's terminating empty line has arrived
/// (CRLF or bare LF, as [`parse_response`] accepts).
fn has_header_end(head: &[u8]) -> bool {
    head.windows(2).any(|w| w == b"\n\n") || head.windows(3).any(|w| w == b"\n\r\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_end_detection() {
        assert!(has_header_end(b"A: b\r\n\r\nbody"));
        assert!(has_header_end(b"A: b\n\nbody"));
        assert!(!has_header_end(b"A: b\r\nB: c\r\n"));
    }

    #[test]
    fn request_encoding_ends_both_streams() {
        let bytes = encode_request(&Request::php("/x.php").keep_conn(true));
        // BEGIN_REQUEST with FCGI_KEEP_CONN first, empty STDIN record last.
        assert_eq!(&bytes[..2], &[1, 1]);
        assert_eq!(bytes[10], 1);
        assert_eq!(&bytes[bytes.len() - 8..], &[1, 5, 0, 1, 0, 0, 0, 0]);
        assert_eq!(bytes.len() % 8, 0);
    }
}
