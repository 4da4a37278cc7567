//! One request's I/O as PHP sees it ([`RequestIo`]), over the FastCGI
//! connection: the body comes from FCGI_STDIN as PHP asks for it, output is
//! batched into FCGI_STDOUT records, and the end of the request drains what
//! is left of the body so the connection can carry the next one.

use std::io::{self, Read, Write};

use corral_fastcgi::{ServerConn, ServerEvent};
use corral_php::{LogLevel, RequestIo};
use corral_status::ProcState;

use crate::connection::WorkerCtx;

/// Response bytes are batched into records of up to this size.
const OUT_BATCH: usize = 32 * 1024;

/// How much of the response head is kept for the access log.
const HEAD_MAX: usize = 16 * 1024;

/// The connection: its socket, its FastCGI state, and the buffer every read
/// goes through (the worker's, reused across connections).
pub struct Wire<'a> {
    pub stream: &'a mut std::fs::File,
    pub conn: &'a mut ServerConn,
    pub buf: &'a mut [u8],
}

impl Wire<'_> {
    /// Reads from the socket once and feeds the state machine. `Ok(false)`
    /// when the peer closed; a protocol error is `InvalidData` carrying the
    /// [`corral_fastcgi::ProtocolError`]. What the state machine answered
    /// (management records) is for [`Wire::send_pending`].
    pub fn read_more(&mut self) -> io::Result<bool> {
        let n = read_retry(self.stream, self.buf)?;
        if n == 0 {
            return Ok(false);
        }
        self.conn
            .feed(&self.buf[..n])
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        Ok(true)
    }

    /// Writes the records the state machine queued.
    pub fn send_pending(&mut self) -> io::Result<()> {
        let bytes = self.conn.pending_output();
        if bytes.is_empty() {
            return Ok(());
        }
        let result = write_all_retry(self.stream, bytes);
        self.conn.clear_output();
        result
    }
}

/// The buffers a request's I/O goes through, cleared and reused for the
/// next request on the connection.
#[derive(Default)]
pub struct Buffers {
    /// Body bytes received but not yet given to PHP.
    body: Vec<u8>,
    /// Response bytes waiting to be framed.
    out: Vec<u8>,
    /// Messages for FCGI_STDERR, joined by "; " as php-fpm does.
    err: Vec<u8>,
    /// The start of the response, up to the end of its headers, for the
    /// access log's `%{Header}o` and `%s`.
    head: Vec<u8>,
    /// Scratch for the request line the scoreboard shows.
    pub uri: Vec<u8>,
}

/// The request's I/O as PHP sees it, over the FastCGI connection.
pub struct Exchange<'w, 'a> {
    wire: &'w mut Wire<'a>,
    bufs: &'w mut Buffers,
    w: &'w WorkerCtx<'w>,
    body_done: bool,
    finished: bool,
    /// The web server went away (or aborted the request): nothing more can
    /// be written, and the connection is not reused.
    pub broken: bool,
    head_done: bool,
    /// fpm_get_status(): the snapshot between the shim's two calls.
    status_cache: Option<Vec<u8>>,
}

impl<'w, 'a> Exchange<'w, 'a> {
    /// The I/O of the request that just began on `wire`.
    pub fn new(wire: &'w mut Wire<'a>, bufs: &'w mut Buffers, w: &'w WorkerCtx<'w>) -> Self {
        bufs.body.clear();
        bufs.out.clear();
        bufs.err.clear();
        bufs.head.clear();
        Exchange {
            wire,
            bufs,
            w,
            body_done: false,
            finished: false,
            broken: false,
            // Only an access log reads response headers (%{Name}o).
            head_done: w.pool.access_format.is_none(),
            status_cache: None,
        }
    }

    fn capture_head(&mut self, data: &[u8]) {
        if self.head_done {
            return;
        }
        let head = &mut self.bufs.head;
        let room = HEAD_MAX.saturating_sub(head.len());
        head.extend_from_slice(&data[..data.len().min(room)]);
        if head.windows(4).any(|w| w == b"\r\n\r\n") || head.len() >= HEAD_MAX {
            self.head_done = true;
        }
    }

    /// The response headers PHP sent (CGI form), without Status.
    pub fn headers(&self) -> Vec<(String, String)> {
        let head = &self.bufs.head;
        let end = head
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .unwrap_or(head.len());
        String::from_utf8_lossy(&head[..end])
            .split("\r\n")
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.to_string(), v.trim_start().to_string()))
            .collect()
    }

    /// Why the connection cannot carry another request, if it is not
    /// FastCGI that can.
    pub fn protocol_error(&self) -> Option<&corral_fastcgi::ProtocolError> {
        self.wire.conn.error()
    }

    /// Pull bytes from the socket until there is some body or its end.
    fn fill_body(&mut self) -> io::Result<()> {
        while self.bufs.body.is_empty() && !self.body_done {
            while let Some(ev) = self.wire.conn.poll_event() {
                match ev {
                    ServerEvent::Stdin(data) => self.bufs.body.extend_from_slice(&data),
                    ServerEvent::StdinEnd => self.body_done = true,
                    ServerEvent::AbortRequest { .. } => {
                        self.broken = true;
                        return Err(io::Error::new(
                            io::ErrorKind::ConnectionAborted,
                            "request aborted",
                        ));
                    }
                    _ => {}
                }
            }
            if !self.bufs.body.is_empty() || self.body_done {
                break;
            }
            if !self.wire.read_more()? {
                self.broken = true;
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            self.send_pending()?;
        }
        Ok(())
    }

    fn frame(&mut self) {
        let bufs = &mut *self.bufs;
        if !bufs.out.is_empty() {
            self.wire.conn.send_stdout(&bufs.out);
            bufs.out.clear();
        }
        if !bufs.err.is_empty() {
            self.wire.conn.send_stderr(&bufs.err);
            bufs.err.clear();
        }
    }

    fn send_pending(&mut self) -> io::Result<()> {
        let result = self.wire.send_pending();
        if result.is_err() {
            self.broken = true;
        }
        result
    }

    fn push(&mut self) -> io::Result<()> {
        if self.broken {
            return Err(io::ErrorKind::BrokenPipe.into());
        }
        self.frame();
        self.send_pending()
    }

    /// End the request: the rest of the body is drained so the connection
    /// can carry the next request, then FCGI_END_REQUEST. Returns whether the
    /// connection may carry another request.
    pub fn end(&mut self, app_status: u32) -> io::Result<bool> {
        if self.finished {
            return Ok(!self.wire.conn.should_close());
        }
        self.finished = true;
        while !self.body_done && !self.broken {
            self.bufs.body.clear();
            self.fill_body()?;
        }
        self.frame();
        let keep = self.wire.conn.end_request(app_status).unwrap_or(false);
        self.send_pending()?;
        Ok(keep)
    }
}

fn read_retry(f: &mut std::fs::File, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        match f.read(buf) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            r => return r,
        }
    }
}

fn write_all_retry(f: &mut std::fs::File, mut buf: &[u8]) -> io::Result<()> {
    while !buf.is_empty() {
        match f.write(buf) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => buf = &buf[n..],
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

impl RequestIo for Exchange<'_, '_> {
    fn read_body(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.finished {
            return Ok(0);
        }
        self.fill_body()?;
        let body = &mut self.bufs.body;
        let n = buf.len().min(body.len());
        buf[..n].copy_from_slice(&body[..n]);
        body.drain(..n);
        Ok(n)
    }

    fn write_out(&mut self, data: &[u8]) -> io::Result<()> {
        if self.finished {
            // After fastcgi_finish_request() php-fpm drops output and the
            // script goes on (background work after the response is the
            // point of the function).
            return Ok(());
        }
        if self.broken {
            // The client is gone: PHP's aborted-connection handling.
            return Err(io::ErrorKind::BrokenPipe.into());
        }
        self.capture_head(data);
        self.bufs.out.extend_from_slice(data);
        if self.bufs.out.len() >= OUT_BATCH {
            self.push()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.finished {
            return Ok(());
        }
        self.push()
    }

    fn finish(&mut self) -> io::Result<()> {
        // The response is complete; what runs now (the rest of the script,
        // shutdown functions) is "Finishing" on the status page and is not
        // timed by request_terminate_timeout unless _track_finished.
        if let Some(s) = self.w.slot {
            s.set_state(ProcState::Finishing);
        }
        self.end(0).map(|_| ())
    }

    fn status_json(&mut self) -> Option<Vec<u8>> {
        // The shim asks twice (size, then copy): both answers must be the
        // same snapshot, while durations change between two renderings.
        if let Some(cached) = self.status_cache.take() {
            return Some(cached);
        }
        let (name, board) = self.w.status?;
        let (pool, procs) = corral_status::snapshot(board, name, self.w.pool.pm_name);
        let json = corral_status::render::fpm_get_status_json(&pool, &procs).into_bytes();
        self.status_cache = Some(json.clone());
        Some(json)
    }

    fn log(&mut self, level: LogLevel, msg: &[u8], to_fcgi: bool) {
        self.w.log.line(level, msg);
        if to_fcgi && !self.finished && !self.broken {
            let err = &mut self.bufs.err;
            if !err.is_empty() {
                err.extend_from_slice(b"; ");
            }
            err.extend_from_slice(msg);
        }
    }
}
