//! A trivial FastCGI responder: every request gets `200 Hello`.
//!
//! It exists so the generator can be tested and measured against something
//! that costs next to nothing per request: if the generator drives more
//! requests per second against this than php-fpm serves, it is not the
//! bottleneck of a php-fpm/corral benchmark. One thread per connection, like
//! the generator, so keep-conn connections never wait for each other.

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;

use corral_fastcgi::record::FCGI_KEEP_CONN;
use corral_fastcgi::{
    encode_end_request, encode_stdout, encode_stdout_end, protocol_status, RecordDecoder,
    RecordType,
};

/// The body of every successful answer.
pub const BODY: &[u8] = b"Hello";

/// A listening socket of either kind.
#[derive(Debug)]
pub enum Listener {
    Unix(UnixListener),
    Tcp(TcpListener),
}

impl From<UnixListener> for Listener {
    fn from(l: UnixListener) -> Self {
        Listener::Unix(l)
    }
}

impl From<TcpListener> for Listener {
    fn from(l: TcpListener) -> Self {
        Listener::Tcp(l)
    }
}

/// How the responder answers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Config {
    /// Answer every `n`th request (counted over all connections, from 1)
    /// with `Status: 503`, so tests can check non-200 counting exactly.
    pub fail_every: Option<u64>,
}

/// Serves forever with the default [`Config`] (always 200).
pub fn serve(listener: impl Into<Listener>) -> io::Result<()> {
    serve_with(listener, Config::default())
}

/// Serves forever. Returns only if `accept` fails on the calling thread for
/// a reason other than a transient one.
///
/// Threads are pooled the way php-fpm pools workers, so a new connection
/// does not pay for a thread spawn (that alone would cap keep-conn-off runs
/// well below what the generator can drive). Unlike php-fpm the pool never
/// runs dry: whenever the last idle thread takes a connection it starts
/// another, so a kept connection can never starve a new one.
pub fn serve_with(listener: impl Into<Listener>, config: Config) -> io::Result<()> {
    let shared = Arc::new(Shared {
        listener: listener.into(),
        config,
        answered: AtomicU64::new(0),
        idle: AtomicUsize::new(0),
    });
    pool_thread(&shared)
}

struct Shared {
    listener: Listener,
    config: Config,
    /// Requests answered so far, over all connections (for `fail_every`).
    answered: AtomicU64,
    /// Threads currently waiting in `accept`.
    idle: AtomicUsize,
}

impl Listener {
    fn accept(&self) -> io::Result<Conn> {
        match self {
            Listener::Unix(l) => l.accept().map(|(s, _)| Conn::Unix(s)),
            Listener::Tcp(l) => l.accept().and_then(|(s, _)| {
                s.set_nodelay(true)?;
                Ok(Conn::Tcp(s))
            }),
        }
    }
}

fn pool_thread(shared: &Arc<Shared>) -> io::Result<()> {
    loop {
        shared.idle.fetch_add(1, Ordering::SeqCst);
        let accepted = shared.listener.accept();
        if shared.idle.fetch_sub(1, Ordering::SeqCst) == 1 {
            let next = Arc::clone(shared);
            thread::spawn(move || pool_thread(&next));
        }
        match accepted {
            // A broken client connection only ends its own exchange.
            Ok(conn) => {
                let _ = handle(conn, shared);
            }
            Err(e) if transient(&e) => {
                // Out of descriptors: give running connections a moment to
                // close instead of spinning on accept.
                thread::sleep(std::time::Duration::from_millis(1));
            }
            Err(e) => return Err(e),
        }
    }
}

/// Spawns [`serve_with`] on a background thread; for tests and `--self-test`.
pub fn spawn(listener: impl Into<Listener>, config: Config) -> thread::JoinHandle<io::Result<()>> {
    let listener = listener.into();
    thread::spawn(move || serve_with(listener, config))
}

/// Accept errors that say nothing about the listener itself (a client gave
/// up, or descriptors are briefly exhausted).
fn transient(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::Interrupted | io::ErrorKind::ConnectionAborted
    ) || matches!(e.raw_os_error(), Some(23 | 24))
}

enum Conn {
    Unix(UnixStream),
    Tcp(TcpStream),
}

impl Conn {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Conn::Unix(s) => s.read(buf),
            Conn::Tcp(s) => s.read(buf),
        }
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        match self {
            Conn::Unix(s) => s.write_all(buf),
            Conn::Tcp(s) => s.write_all(buf),
        }
    }
}

/// Encodes the whole answer to request `id`.
fn response(id: u16, status: u16, out: &mut Vec<u8>) {
    out.clear();
    let head = if status == 200 {
        "Content-type: text/plain\r\n\r\n".to_string()
    } else {
        format!("Status: {status}\r\nContent-type: text/plain\r\n\r\n")
    };
    let mut stdout = head.into_bytes();
    stdout.extend_from_slice(BODY);
    encode_stdout(id, &stdout, out);
    encode_stdout_end(id, out);
    encode_end_request(id, 0, protocol_status::REQUEST_COMPLETE, out);
}

/// Answers requests on one connection until the client closes it or a
/// request without FCGI_KEEP_CONN has been answered.
fn handle(mut conn: Conn, shared: &Shared) -> io::Result<()> {
    let mut decoder = RecordDecoder::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut out = Vec::with_capacity(256);
    let mut keep_conn = false;
    loop {
        let n = match conn.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        let mut input = &buf[..n];
        while let Some(record) = decoder
            .decode(&mut input)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?
        {
            match record.record_type {
                RecordType::BeginRequest => {
                    keep_conn = record
                        .content
                        .get(2)
                        .is_some_and(|f| f & FCGI_KEEP_CONN != 0);
                }
                // The empty STDIN record ends the request: answer it.
                RecordType::Stdin if record.content.is_empty() => {
                    let nth = shared.answered.fetch_add(1, Ordering::Relaxed) + 1;
                    let status = match shared.config.fail_every {
                        Some(every) if every > 0 && nth.is_multiple_of(every) => 503,
                        _ => 200,
                    };
                    response(record.request_id, status, &mut out);
                    conn.write_all(&out)?;
                    if !keep_conn {
                        return Ok(());
                    }
                }
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use corral_fastcgi::{Client, Request};

    #[test]
    fn answers_hello_and_503() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.sock");
        spawn(
            UnixListener::bind(&path).unwrap(),
            Config {
                fail_every: Some(2),
            },
        );
        let mut client = Client::new(UnixStream::connect(&path).unwrap());
        let req = Request::php("/x.php").keep_conn(true);
        let first = client.request(&req).unwrap().cgi().unwrap();
        assert_eq!((first.status, first.body.as_slice()), (200, BODY));
        let second = client.request(&req).unwrap().cgi().unwrap();
        assert_eq!(second.status, 503);
    }
}
