//! Where the load goes: a Unix socket path or a TCP address, parsed from the
//! same spellings php-fpm's `listen` accepts so a pool's config line can be
//! pasted as is.

use std::fmt;
use std::io;
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::Duration;

use thiserror::Error;

/// Why a `--target` value is unusable.
#[derive(Debug, Error)]
pub enum TargetError {
    /// Empty string, `unix:` or `tcp:` without anything after it.
    #[error("empty target")]
    Empty,
    /// A `tcp:` (or bare `host:port`) that does not resolve. Resolved once,
    /// up front, so DNS is neither measured nor a source of per-request errors.
    #[error("cannot resolve {addr:?}: {source}")]
    Resolve {
        addr: String,
        #[source]
        source: io::Error,
    },
    /// Resolution succeeded but produced no address.
    #[error("{0:?} resolves to no address")]
    NoAddress(String),
}

/// A FastCGI endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// `unix:/path.sock`, or any bare value containing a `/`.
    Unix(PathBuf),
    /// `tcp:host:port`, or a bare `host:port` / `port`; resolved to its first
    /// address.
    Tcp(SocketAddr),
}

impl Target {
    /// Parses `unix:PATH`, `tcp:HOST:PORT`, a bare path (anything with a `/`),
    /// a bare `HOST:PORT` or a bare port (php-fpm's `listen = 9000`, which
    /// means localhost for a client).
    pub fn parse(spec: &str) -> Result<Self, TargetError> {
        if let Some(path) = spec.strip_prefix("unix:") {
            return if path.is_empty() {
                Err(TargetError::Empty)
            } else {
                Ok(Target::Unix(PathBuf::from(path)))
            };
        }
        let addr = spec.strip_prefix("tcp:").unwrap_or(spec);
        if addr.is_empty() {
            return Err(TargetError::Empty);
        }
        if spec.starts_with("tcp:") || !addr.contains('/') {
            return resolve(addr).map(Target::Tcp);
        }
        Ok(Target::Unix(PathBuf::from(addr)))
    }

    /// Opens one connection. TCP gets `TCP_NODELAY` because a request is
    /// written in one go and Nagle would only add delay to the next one.
    pub fn connect(&self, timeout: Duration) -> io::Result<Stream> {
        match self {
            Target::Unix(path) => UnixStream::connect(path).map(Stream::Unix),
            Target::Tcp(addr) => {
                let s = TcpStream::connect_timeout(addr, timeout)?;
                s.set_nodelay(true)?;
                Ok(Stream::Tcp(s))
            }
        }
    }
}

fn resolve(addr: &str) -> Result<SocketAddr, TargetError> {
    let with_host;
    let addr = if addr.bytes().all(|b| b.is_ascii_digit()) {
        with_host = format!("127.0.0.1:{addr}");
        with_host.as_str()
    } else {
        addr
    };
    addr.to_socket_addrs()
        .map_err(|source| TargetError::Resolve {
            addr: addr.to_string(),
            source,
        })?
        .next()
        .ok_or_else(|| TargetError::NoAddress(addr.to_string()))
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Unix(p) => write!(f, "unix:{}", p.display()),
            Target::Tcp(a) => write!(f, "tcp:{a}"),
        }
    }
}

/// A connected socket of either kind; one type so the hot loop is not generic.
#[derive(Debug)]
pub enum Stream {
    Unix(UnixStream),
    Tcp(TcpStream),
}

impl Stream {
    /// Applies the same timeout to reads and writes, so a stuck server shows
    /// up as timeouts instead of hanging the run.
    pub fn set_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        match self {
            Stream::Unix(s) => {
                s.set_read_timeout(timeout)?;
                s.set_write_timeout(timeout)
            }
            Stream::Tcp(s) => {
                s.set_read_timeout(timeout)?;
                s.set_write_timeout(timeout)
            }
        }
    }
}

impl io::Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Unix(s) => s.read(buf),
            Stream::Tcp(s) => s.read(buf),
        }
    }
}

impl io::Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Unix(s) => s.write(buf),
            Stream::Tcp(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings() {
        assert_eq!(
            Target::parse("unix:/run/a.sock").unwrap(),
            Target::Unix("/run/a.sock".into())
        );
        assert_eq!(
            Target::parse("/run/a.sock").unwrap(),
            Target::Unix("/run/a.sock".into())
        );
        assert_eq!(
            Target::parse("./a.sock").unwrap(),
            Target::Unix("./a.sock".into())
        );
        let tcp = Target::Tcp("127.0.0.1:9000".parse().unwrap());
        assert_eq!(Target::parse("tcp:127.0.0.1:9000").unwrap(), tcp);
        assert_eq!(Target::parse("127.0.0.1:9000").unwrap(), tcp);
        assert_eq!(Target::parse("9000").unwrap(), tcp);
        assert_eq!(tcp.to_string(), "tcp:127.0.0.1:9000");
    }

    #[test]
    fn bad_targets() {
        assert!(matches!(Target::parse(""), Err(TargetError::Empty)));
        assert!(matches!(Target::parse("unix:"), Err(TargetError::Empty)));
        assert!(matches!(Target::parse("tcp:"), Err(TargetError::Empty)));
        assert!(matches!(
            Target::parse("no-port-here"),
            Err(TargetError::Resolve { .. })
        ));
    }
}
