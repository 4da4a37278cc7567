//! The one error type of this crate.
//!
//! Every variant means "the peer spoke something that is not FastCGI as we
//! accept it": the only safe reaction for a worker is to close the connection,
//! which is also what php-fpm does (`fcgi_read_request` returns 0 and the
//! connection is dropped). The variants exist so logs and tests can say *why*.

use thiserror::Error;

/// Malformed or unacceptable FastCGI input.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ProtocolError {
    /// The record header's version byte is not `FCGI_VERSION_1`. Nothing after
    /// such a header can be framed reliably.
    #[error("unsupported FastCGI version {0} (only version 1 exists)")]
    UnsupportedVersion(u8),

    /// `FCGI_BEGIN_REQUEST` bodies are exactly 8 bytes; anything else is a
    /// framing bug or an attack (php-fpm requires the same).
    #[error("FCGI_BEGIN_REQUEST for request {id} has {len} content bytes, expected 8")]
    BadBeginRequest { id: u16, len: u16 },

    /// `FCGI_END_REQUEST` bodies are exactly 8 bytes (seen by the client side).
    #[error("FCGI_END_REQUEST for request {id} has {len} content bytes, expected 8")]
    BadEndRequest { id: u16, len: u16 },

    /// A name-value pair announces a name or value longer than the bytes that
    /// are left in the stream: truncated or lying lengths.
    #[error("name-value pair truncated: needs {needed} more bytes, {available} available")]
    TruncatedPair { needed: u64, available: usize },

    /// The accumulated FCGI_PARAMS stream of one request exceeds the cap, so
    /// a peer cannot make a worker buffer unbounded memory.
    #[error("FCGI_PARAMS stream exceeds {limit} bytes")]
    ParamsTooLarge { limit: usize },

    /// More name-value pairs than the cap: bounds the per-pair bookkeeping,
    /// which costs more than the bytes themselves.
    #[error("more than {limit} FCGI_PARAMS pairs")]
    TooManyParams { limit: usize },

    /// The peer sent more than the cap past the request in progress before
    /// it was answered (pipelined requests are decoded only after it).
    #[error("more than {limit} bytes sent ahead of the answer to the request in progress")]
    TooMuchAhead { limit: usize },

    /// A record that is valid FastCGI but cannot occur at this point of the
    /// conversation (for example FCGI_STDIN before the params ended, or a
    /// record type only an application sends).
    #[error("unexpected record type {record_type} for request {id} ({context})")]
    UnexpectedRecord {
        record_type: u8,
        id: u16,
        context: &'static str,
    },
}
