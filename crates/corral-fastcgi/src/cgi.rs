//! CGI response parsing (what nginx does with FCGI_STDOUT): a header block,
//! an empty line, then the body. Used by tests and the load generator to check
//! what PHP produced.

use thiserror::Error;

/// Why an FCGI_STDOUT stream is not a CGI response.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CgiError {
    /// No empty line ends the header block.
    #[error("CGI response has no end of headers")]
    NoHeaderEnd,
    /// A header line without a colon.
    #[error("malformed CGI header line {0:?}")]
    BadHeaderLine(String),
    /// `Status:` did not start with a 3-digit code.
    #[error("malformed CGI Status header {0:?}")]
    BadStatus(String),
}

/// A parsed CGI response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CgiResponse {
    /// From the `Status:` header; 200 when absent (PHP omits it for 200).
    pub status: u16,
    /// Headers in order, `Status` excluded (it is CGI-to-server only and nginx
    /// does not forward it). Names keep their case; values are trimmed.
    pub headers: Vec<(String, String)>,
    /// Everything after the empty line.
    pub body: Vec<u8>,
}

impl CgiResponse {
    /// First value of a header, name compared case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every value of a header (e.g. several `Set-Cookie`).
    pub fn header_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Finds the end of the header block: the first empty line, accepting both
/// CRLF and bare LF line ends as nginx does. Returns (header block, body start).
fn split_headers(stdout: &[u8]) -> Option<(&[u8], usize)> {
    let mut line_start = 0;
    while line_start <= stdout.len() {
        let rest = &stdout[line_start..];
        let nl = rest.iter().position(|&b| b == b'\n')?;
        let line = &rest[..nl];
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            return Some((&stdout[..line_start], line_start + nl + 1));
        }
        line_start += nl + 1;
    }
    None
}

/// Parses FCGI_STDOUT as a CGI response.
pub fn parse_response(stdout: &[u8]) -> Result<CgiResponse, CgiError> {
    let (head, body_start) = split_headers(stdout).ok_or(CgiError::NoHeaderEnd)?;
    let mut status = 200;
    let mut headers = Vec::new();
    for line in head.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            continue;
        }
        let text = String::from_utf8_lossy(line);
        let (name, value) = text
            .split_once(':')
            .ok_or_else(|| CgiError::BadHeaderLine(text.to_string()))?;
        let value = value.trim();
        if name.eq_ignore_ascii_case("Status") {
            status = value
                .get(..3)
                .filter(|code| code.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|code| code.parse().ok())
                .ok_or_else(|| CgiError::BadStatus(value.to_string()))?;
        } else {
            headers.push((name.to_string(), value.to_string()));
        }
    }
    Ok(CgiResponse {
        status,
        headers,
        body: stdout.get(body_start..).unwrap_or(&[]).to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn php_style_response() {
        let r = parse_response(
            b"Status: 404 Not Found\r\nX-Powered-By: PHP/8.2\r\nSet-Cookie: a=1\r\nset-cookie: b=2\r\nContent-type: text/html; charset=UTF-8\r\n\r\nnope\r\n\r\n",
        )
        .unwrap();
        assert_eq!(r.status, 404);
        assert_eq!(r.header("content-type"), Some("text/html; charset=UTF-8"));
        assert_eq!(
            r.header_all("Set-Cookie").collect::<Vec<_>>(),
            ["a=1", "b=2"]
        );
        assert_eq!(r.headers.len(), 4);
        assert_eq!(r.body, b"nope\r\n\r\n");
    }

    #[test]
    fn default_status_and_lf_only() {
        let r = parse_response(b"Content-type: text/plain\n\nhi").unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(r.body, b"hi");
        let r = parse_response(b"\r\n").unwrap();
        assert!(r.headers.is_empty() && r.body.is_empty());
    }

    #[test]
    fn errors() {
        assert_eq!(parse_response(b"A: b\r\n"), Err(CgiError::NoHeaderEnd));
        assert_eq!(parse_response(b""), Err(CgiError::NoHeaderEnd));
        assert!(matches!(
            parse_response(b"nocolon\r\n\r\n"),
            Err(CgiError::BadHeaderLine(_))
        ));
        assert!(matches!(
            parse_response(b"Status: OK\r\n\r\n"),
            Err(CgiError::BadStatus(_))
        ));
        assert!(matches!(
            parse_response(b"Status: 2\r\n\r\n"),
            Err(CgiError::BadStatus(_))
        ));
    }
}
