//! FastCGI for corral: a sans-I/O codec and the application-side connection
//! state machine the PHP worker drives, plus a blocking client for tests and
//! the load generator.
//!
//! Sans-I/O so it can be fuzzed and unit-tested byte by byte, and so the
//! worker alone decides how the socket is read and written (EINTR from PHP's
//! SIGPROF timer, timeouts, partial writes).
//!
//! * [`record`]: header, record types, encoders.
//! * [`decode`]: streaming record decoder.
//! * [`params`]: name-value pair codec and [`Params`].
//! * [`server`]: [`ServerConn`], php-fpm's side of a connection.
//! * [`client`], [`request`]: [`Client`], [`Request`], [`Response`].
//! * [`cgi`]: CGI response parsing.
#![forbid(unsafe_code)]

pub mod cgi;
pub mod client;
pub mod decode;
pub mod error;
pub mod params;
pub mod record;
pub mod request;
pub mod server;

pub use cgi::{parse_response, CgiError, CgiResponse};
pub use client::{Client, Response};
pub use decode::RecordDecoder;
pub use error::ProtocolError;
pub use params::Params;
pub use record::{
    encode_end_request, encode_stderr, encode_stderr_end, encode_stdout, encode_stdout_end,
    protocol_status, Record, RecordType, Role,
};
pub use request::Request;
pub use server::{ServerConfig, ServerConn, ServerEvent};
