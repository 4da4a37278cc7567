//! Record framing: the 8-byte header, the record and role/status numbers, and
//! encoders for everything either side writes.
//!
//! Encoders append to a caller's `Vec<u8>` so the caller decides about
//! buffering and I/O; nothing here can fail except on lengths the caller
//! controls, which are split instead of rejected.

/// The only protocol version ever defined.
pub const FCGI_VERSION_1: u8 = 1;
/// Size of every record header.
pub const HEADER_LEN: usize = 8;
/// Largest content a single record can carry (16-bit length field).
pub const MAX_CONTENT_LEN: usize = 0xffff;
/// Chunk size used when a stream write is split across records. php-fpm uses
/// 0xfff8: the largest multiple of 8 below 64 KiB, so big chunks need no padding.
pub const STREAM_CHUNK_LEN: usize = 0xfff8;
/// `flags` bit of FCGI_BEGIN_REQUEST: keep the connection open after the request.
pub const FCGI_KEEP_CONN: u8 = 1;

/// FastCGI record types. Unknown numbers are kept so they can be answered with
/// FCGI_UNKNOWN_TYPE rather than rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RecordType {
    BeginRequest,
    AbortRequest,
    EndRequest,
    Params,
    Stdin,
    Stdout,
    Stderr,
    Data,
    GetValues,
    GetValuesResult,
    UnknownType,
    Other(u8),
}

impl RecordType {
    /// Maps the wire byte to a type; never fails.
    pub fn from_u8(value: u8) -> Self {
        match value {
            1 => Self::BeginRequest,
            2 => Self::AbortRequest,
            3 => Self::EndRequest,
            4 => Self::Params,
            5 => Self::Stdin,
            6 => Self::Stdout,
            7 => Self::Stderr,
            8 => Self::Data,
            9 => Self::GetValues,
            10 => Self::GetValuesResult,
            11 => Self::UnknownType,
            other => Self::Other(other),
        }
    }

    /// The wire byte.
    pub fn as_u8(self) -> u8 {
        match self {
            Self::BeginRequest => 1,
            Self::AbortRequest => 2,
            Self::EndRequest => 3,
            Self::Params => 4,
            Self::Stdin => 5,
            Self::Stdout => 6,
            Self::Stderr => 7,
            Self::Data => 8,
            Self::GetValues => 9,
            Self::GetValuesResult => 10,
            Self::UnknownType => 11,
            Self::Other(other) => other,
        }
    }
}

/// Roles of FCGI_BEGIN_REQUEST. corral (like nginx in practice) only serves
/// `Responder`; the others are answered with FCGI_UNKNOWN_ROLE.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    Responder,
    Authorizer,
    Filter,
    Other(u16),
}

impl Role {
    /// Maps the wire value to a role; never fails.
    pub fn from_u16(value: u16) -> Self {
        match value {
            1 => Self::Responder,
            2 => Self::Authorizer,
            3 => Self::Filter,
            other => Self::Other(other),
        }
    }

    /// The wire value.
    pub fn as_u16(self) -> u16 {
        match self {
            Self::Responder => 1,
            Self::Authorizer => 2,
            Self::Filter => 3,
            Self::Other(other) => other,
        }
    }
}

/// `protocolStatus` values of FCGI_END_REQUEST.
pub mod protocol_status {
    /// Normal end of request.
    pub const REQUEST_COMPLETE: u8 = 0;
    /// Rejected: the application does one request per connection at a time.
    pub const CANT_MPX_CONN: u8 = 1;
    /// Rejected: the application is out of some resource.
    pub const OVERLOADED: u8 = 2;
    /// Rejected: the application does not implement the requested role.
    pub const UNKNOWN_ROLE: u8 = 3;
}

/// A decoded record header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub version: u8,
    pub record_type: RecordType,
    pub request_id: u16,
    pub content_length: u16,
    pub padding_length: u8,
}

impl Header {
    /// Parses the fixed 8 header bytes. Version is not checked here so the
    /// decoder can report it with context.
    pub fn parse(bytes: &[u8; HEADER_LEN]) -> Self {
        Header {
            version: bytes[0],
            record_type: RecordType::from_u8(bytes[1]),
            request_id: u16::from_be_bytes([bytes[2], bytes[3]]),
            content_length: u16::from_be_bytes([bytes[4], bytes[5]]),
            padding_length: bytes[6],
        }
    }

    /// Serializes the header (the reserved byte is written as zero).
    pub fn to_bytes(&self) -> [u8; HEADER_LEN] {
        let id = self.request_id.to_be_bytes();
        let len = self.content_length.to_be_bytes();
        [
            self.version,
            self.record_type.as_u8(),
            id[0],
            id[1],
            len[0],
            len[1],
            self.padding_length,
            0,
        ]
    }
}

/// One complete record as the decoder hands it out (padding already dropped).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub record_type: RecordType,
    pub request_id: u16,
    pub content: Vec<u8>,
}

/// Padding that rounds `len` up to a multiple of 8, as php-fpm's
/// `fcgi_make_header` does; aligned records are what FastCGI peers expect.
pub fn padding_for(len: usize) -> u8 {
    // (8 - len % 8) % 8 is at most 7, so the cast cannot truncate.
    ((8 - len % 8) % 8) as u8
}

/// Appends one record with `content` (at most [`MAX_CONTENT_LEN`] bytes; longer
/// content is split by [`encode_stream`] instead — here it is truncated to the
/// first record-sized piece rather than panicking, the rest is the caller's bug).
pub fn encode_record(record_type: RecordType, request_id: u16, content: &[u8], out: &mut Vec<u8>) {
    let content = &content[..content.len().min(MAX_CONTENT_LEN)];
    let padding = padding_for(content.len());
    let header = Header {
        version: FCGI_VERSION_1,
        record_type,
        request_id,
        content_length: u16::try_from(content.len()).unwrap_or(u16::MAX),
        padding_length: padding,
    };
    out.reserve(HEADER_LEN + content.len() + usize::from(padding));
    out.extend_from_slice(&header.to_bytes());
    out.extend_from_slice(content);
    out.resize(out.len() + usize::from(padding), 0);
}

/// Appends `data` as a sequence of non-empty records of one stream type,
/// split into [`STREAM_CHUNK_LEN`] pieces. Empty `data` appends nothing:
/// an empty record is the end-of-stream marker and must only be written on
/// purpose (see [`encode_stream_end`]).
pub fn encode_stream(record_type: RecordType, request_id: u16, data: &[u8], out: &mut Vec<u8>) {
    for chunk in data.chunks(STREAM_CHUNK_LEN) {
        encode_record(record_type, request_id, chunk, out);
    }
}

/// Appends the empty record that closes a stream (FCGI_PARAMS, FCGI_STDIN,
/// FCGI_STDOUT, FCGI_STDERR).
pub fn encode_stream_end(record_type: RecordType, request_id: u16, out: &mut Vec<u8>) {
    encode_record(record_type, request_id, &[], out);
}

/// Appends FCGI_STDOUT records carrying `data` (nothing if `data` is empty).
pub fn encode_stdout(request_id: u16, data: &[u8], out: &mut Vec<u8>) {
    encode_stream(RecordType::Stdout, request_id, data, out);
}

/// Appends the empty FCGI_STDOUT record that ends the response body.
pub fn encode_stdout_end(request_id: u16, out: &mut Vec<u8>) {
    encode_stream_end(RecordType::Stdout, request_id, out);
}

/// Appends FCGI_STDERR records carrying `data` (nothing if `data` is empty).
pub fn encode_stderr(request_id: u16, data: &[u8], out: &mut Vec<u8>) {
    encode_stream(RecordType::Stderr, request_id, data, out);
}

/// Appends the empty FCGI_STDERR record that ends the error stream.
pub fn encode_stderr_end(request_id: u16, out: &mut Vec<u8>) {
    encode_stream_end(RecordType::Stderr, request_id, out);
}

/// Appends FCGI_END_REQUEST.
pub fn encode_end_request(
    request_id: u16,
    app_status: u32,
    protocol_status: u8,
    out: &mut Vec<u8>,
) {
    let s = app_status.to_be_bytes();
    let body = [s[0], s[1], s[2], s[3], protocol_status, 0, 0, 0];
    encode_record(RecordType::EndRequest, request_id, &body, out);
}

/// Appends FCGI_BEGIN_REQUEST (client side).
pub fn encode_begin_request(request_id: u16, role: Role, keep_conn: bool, out: &mut Vec<u8>) {
    let r = role.as_u16().to_be_bytes();
    let flags = if keep_conn { FCGI_KEEP_CONN } else { 0 };
    let body = [r[0], r[1], flags, 0, 0, 0, 0, 0];
    encode_record(RecordType::BeginRequest, request_id, &body, out);
}

/// Appends FCGI_ABORT_REQUEST (client side).
pub fn encode_abort_request(request_id: u16, out: &mut Vec<u8>) {
    encode_record(RecordType::AbortRequest, request_id, &[], out);
}

/// Appends FCGI_UNKNOWN_TYPE answering a management record of type `unknown`.
pub fn encode_unknown_type(unknown: u8, out: &mut Vec<u8>) {
    let body = [unknown, 0, 0, 0, 0, 0, 0, 0];
    encode_record(RecordType::UnknownType, 0, &body, out);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_type_round_trips_every_byte() {
        for b in 0..=u8::MAX {
            assert_eq!(RecordType::from_u8(b).as_u8(), b);
        }
        assert_eq!(RecordType::from_u8(9), RecordType::GetValues);
        assert_eq!(RecordType::from_u8(0), RecordType::Other(0));
    }

    #[test]
    fn role_round_trips() {
        for v in [0u16, 1, 2, 3, 4, 0xffff] {
            assert_eq!(Role::from_u16(v).as_u16(), v);
        }
        assert_eq!(Role::from_u16(1), Role::Responder);
    }

    #[test]
    fn header_round_trips() {
        let h = Header {
            version: 1,
            record_type: RecordType::Stdin,
            request_id: 0x1234,
            content_length: 0xfedc,
            padding_length: 4,
        };
        let bytes = h.to_bytes();
        assert_eq!(bytes, [1, 5, 0x12, 0x34, 0xfe, 0xdc, 4, 0]);
        assert_eq!(Header::parse(&bytes), h);
    }

    #[test]
    fn records_are_padded_to_eight() {
        for len in 0..40usize {
            let mut out = Vec::new();
            encode_record(RecordType::Stdout, 1, &vec![b'x'; len], &mut out);
            assert_eq!(out.len() % 8, 0, "len {len}");
            assert_eq!(out.len(), HEADER_LEN + len + usize::from(padding_for(len)));
        }
    }

    #[test]
    fn stdout_is_split_like_php_fpm() {
        let data = vec![7u8; STREAM_CHUNK_LEN * 2 + 5];
        let mut out = Vec::new();
        encode_stdout(3, &data, &mut out);
        // two full 0xfff8 chunks (no padding) + 5 bytes (+3 padding)
        assert_eq!(out.len(), 2 * (8 + STREAM_CHUNK_LEN) + 8 + 8);
        assert_eq!(&out[..8], &[1, 6, 0, 3, 0xff, 0xf8, 0, 0]);
        let mut empty = Vec::new();
        encode_stdout(3, &[], &mut empty);
        assert!(empty.is_empty(), "empty data must not write a terminator");
    }

    #[test]
    fn fixed_bodies() {
        let mut out = Vec::new();
        encode_end_request(1, 0x01020304, protocol_status::UNKNOWN_ROLE, &mut out);
        assert_eq!(out, [1, 3, 0, 1, 0, 8, 0, 0, 1, 2, 3, 4, 3, 0, 0, 0]);
        out.clear();
        encode_begin_request(2, Role::Responder, true, &mut out);
        assert_eq!(out, [1, 1, 0, 2, 0, 8, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0]);
        out.clear();
        encode_unknown_type(42, &mut out);
        assert_eq!(out, [1, 11, 0, 0, 0, 8, 0, 0, 42, 0, 0, 0, 0, 0, 0, 0]);
        out.clear();
        encode_stdout_end(5, &mut out);
        encode_stderr_end(5, &mut out);
        encode_abort_request(5, &mut out);
        assert_eq!(
            out,
            [1, 6, 0, 5, 0, 0, 0, 0, 1, 7, 0, 5, 0, 0, 0, 0, 1, 2, 0, 5, 0, 0, 0, 0]
        );
    }

    #[test]
    fn oversized_single_record_is_truncated_not_panicking() {
        let mut out = Vec::new();
        encode_record(
            RecordType::Stdout,
            1,
            &vec![0; MAX_CONTENT_LEN + 10],
            &mut out,
        );
        assert_eq!(out.len(), HEADER_LEN + MAX_CONTENT_LEN + 1);
    }
}
