//! The little of HTTP/1.x the metrics server needs: the request line and
//! two headers, from a head already cut at its blank line. Anything else
//! is a clear "400", never a panic: the client may be anyone.

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    /// The path, without the query.
    pub path: String,
    pub query: String,
    pub accept: Option<String>,
    pub host: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("the request head is not text")]
    NotText,
    #[error("malformed request line")]
    RequestLine,
    #[error("not HTTP/1.0 or HTTP/1.1")]
    Version,
    #[error("malformed header line")]
    Header,
}

/// Where the head ends (just past its blank line), if it has.
pub fn head_end(buf: &[u8]) -> Option<usize> {
    let crlf = buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4);
    let lf = buf.windows(2).position(|w| w == b"\n\n").map(|i| i + 2);
    match (crlf, lf) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

pub fn parse(head: &[u8]) -> Result<Request, ParseError> {
    let text = std::str::from_utf8(head).map_err(|_| ParseError::NotText)?;
    let mut lines = text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    let line = lines.next().ok_or(ParseError::RequestLine)?;
    let mut words = line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (words.next(), words.next(), words.next(), words.next())
    else {
        return Err(ParseError::RequestLine);
    };
    if !matches!(version, "HTTP/1.0" | "HTTP/1.1") {
        return Err(ParseError::Version);
    }
    if method.is_empty() || !method.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(ParseError::RequestLine);
    }
    if !target.starts_with('/') || !target.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ParseError::RequestLine);
    }
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let mut req = Request {
        method: method.to_string(),
        path: path.to_string(),
        query: query.to_string(),
        accept: None,
        host: None,
    };
    for l in lines.filter(|l| !l.is_empty()) {
        let (name, value) = l.split_once(':').ok_or(ParseError::Header)?;
        let value = value.trim().to_string();
        if name.eq_ignore_ascii_case("accept") {
            req.accept = Some(value);
        } else if name.eq_ignore_ascii_case("host") {
            req.host = Some(value);
        }
    }
    Ok(req)
}

/// A `Host` a browser sends for an address typed as an IP or `localhost`:
/// anything else on a loopback server is a page elsewhere that resolved
/// its own name to 127.0.0.1 (DNS rebinding) to read the dashboard.
pub fn host_is_literal(host: &str) -> bool {
    let name = if let Some(rest) = host.strip_prefix('[') {
        match rest.split_once(']') {
            Some((v6, port)) => {
                return v6.parse::<std::net::Ipv6Addr>().is_ok()
                    && (port.is_empty() || port.strip_prefix(':').is_some_and(is_port));
            }
            None => return false,
        }
    } else {
        match host.rsplit_once(':') {
            Some((name, port)) if is_port(port) => name,
            Some(_) => return false,
            None => host,
        }
    };
    name.eq_ignore_ascii_case("localhost") || name.parse::<std::net::Ipv4Addr>().is_ok()
}

fn is_port(p: &str) -> bool {
    !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scrape_is_understood() {
        let head = b"GET /metrics?x=1 HTTP/1.1\r\nHost: 127.0.0.1:9253\r\nAccept: application/openmetrics-text;version=1.0.0\r\n\r\n";
        assert_eq!(head_end(head), Some(head.len()));
        let r = parse(head).unwrap();
        assert_eq!(
            (r.method.as_str(), r.path.as_str(), r.query.as_str()),
            ("GET", "/metrics", "x=1")
        );
        assert_eq!(r.host.as_deref(), Some("127.0.0.1:9253"));
        assert!(r
            .accept
            .unwrap()
            .starts_with("application/openmetrics-text"));
    }

    #[test]
    fn garbage_is_refused_not_panicked_on() {
        for bad in [
            &b"\xff\xfe\r\n\r\n"[..],
            b"GET\r\n\r\n",
            b"GET / HTTP/2\r\n\r\n",
            b"GET http://x/ HTTP/1.1\r\n\r\n",
            b"get / HTTP/1.1\r\n\r\n",
            b"GET / HTTP/1.1 extra\r\n\r\n",
            b"GET / HTTP/1.1\r\nno colon\r\n\r\n",
            b"",
        ] {
            assert!(parse(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
        assert_eq!(head_end(b"GET / HTTP/1.1\r\n"), None);
        assert_eq!(head_end(b"GET / HTTP/1.0\n\n"), Some(16));
    }

    #[test]
    fn only_literal_hosts_pass() {
        for ok in [
            "127.0.0.1",
            "127.0.0.1:9253",
            "localhost:80",
            "[::1]:9253",
            "[::1]",
        ] {
            assert!(host_is_literal(ok), "{ok}");
        }
        for bad in [
            "evil.example:9253",
            "evil.example",
            "[::1",
            "127.0.0.1:port",
            "[zz]:1",
        ] {
            assert!(!host_is_literal(bad), "{bad}");
        }
    }
}
