//! One FastCGI connection in a worker: read a request, run it through PHP,
//! stream the response back, repeat while the web server keeps the
//! connection (FCGI_KEEP_CONN).

use std::io::{self, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::time::{Duration, Instant};

use corral_fastcgi::{ServerConn, ServerEvent};
use corral_php::{Engine, LogLevel, RequestIo, RequestSpec};
use corral_status::{ProcState, SlotWriter};

use crate::access_log;
use crate::cgi_env::{self, CgiOptions, FileSystem};
use crate::log::WorkerLog;
use crate::PoolRuntime;

/// Response bytes are batched into records of up to this size.
const OUT_BATCH: usize = 32 * 1024;

/// How long a new connection may stay silent before its first byte. php-fpm's
/// `fcgi_accept_request` (main/fastcgi.c) polls an accepted socket for
/// 5000 ms and closes it when nothing came, so connections that send nothing
/// cannot hold every worker of a pool.
pub const FIRST_BYTE_TIMEOUT: Duration = Duration::from_secs(5);

/// Why the connection loop stopped.
pub enum ConnEnd {
    /// The web server closed or did not ask to keep the connection.
    Closed,
    /// The worker must exit after this (max_requests reached, quit asked,
    /// PHP in doubtful state).
    ExitWorker,
}

/// The request's I/O as PHP sees it, over the FastCGI connection.
struct Exchange<'a> {
    stream: &'a mut std::fs::File,
    conn: &'a mut ServerConn,
    /// Body bytes received but not yet given to PHP.
    body: Vec<u8>,
    body_done: bool,
    /// Response bytes waiting to be framed.
    out: Vec<u8>,
    /// Messages for FCGI_STDERR, joined by "; " as php-fpm does.
    err: Vec<u8>,
    finished: bool,
    broken: bool,
    log: &'a WorkerLog,
    slot: Option<&'a SlotWriter<'a>>,
    status: Option<(&'a str, &'a [std::sync::atomic::AtomicU64])>,
    pool: &'a PoolRuntime,
    /// fpm_get_status(): the snapshot between the shim's two calls.
    status_cache: Option<Vec<u8>>,
    /// The start of the response, up to the end of its headers, for the
    /// access log's `%{Header}o` and `%s`.
    head: Vec<u8>,
    head_done: bool,
}

const HEAD_MAX: usize = 16 * 1024;

impl Exchange<'_> {
    fn capture_head(&mut self, data: &[u8]) {
        if self.head_done {
            return;
        }
        let room = HEAD_MAX.saturating_sub(self.head.len());
        self.head.extend_from_slice(&data[..data.len().min(room)]);
        if self.head.windows(4).any(|w| w == b"\r\n\r\n") || self.head.len() >= HEAD_MAX {
            self.head_done = true;
        }
    }

    /// The response headers PHP sent (CGI form), without Status.
    fn headers(&self) -> Vec<(String, String)> {
        let end = self
            .head
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .unwrap_or(self.head.len());
        String::from_utf8_lossy(&self.head[..end])
            .split("\r\n")
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.to_string(), v.trim_start().to_string()))
            .collect()
    }
}

impl Exchange<'_> {
    /// Pull bytes from the socket until there is some body or its end.
    fn fill_body(&mut self) -> io::Result<()> {
        let mut buf = [0u8; 16 * 1024];
        while self.body.is_empty() && !self.body_done {
            while let Some(ev) = self.conn.poll_event() {
                match ev {
                    ServerEvent::Stdin(data) => self.body.extend_from_slice(&data),
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
            if !self.body.is_empty() || self.body_done {
                break;
            }
            let n = read_retry(self.stream, &mut buf)?;
            if n == 0 {
                self.broken = true;
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            self.conn
                .feed(&buf[..n])
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
            self.send_pending()?;
        }
        Ok(())
    }

    fn frame(&mut self) {
        if !self.out.is_empty() {
            let out = std::mem::take(&mut self.out);
            self.conn.send_stdout(&out);
        }
        if !self.err.is_empty() {
            let err = std::mem::take(&mut self.err);
            self.conn.send_stderr(&err);
        }
    }

    fn send_pending(&mut self) -> io::Result<()> {
        let bytes = self.conn.take_output();
        if bytes.is_empty() {
            return Ok(());
        }
        if let Err(e) = write_all_retry(self.stream, &bytes) {
            self.broken = true;
            return Err(e);
        }
        Ok(())
    }

    fn push(&mut self) -> io::Result<()> {
        if self.broken {
            return Err(io::ErrorKind::BrokenPipe.into());
        }
        self.frame();
        self.send_pending()
    }

    /// End the request: the rest of the body is drained so the connection
    /// can carry the next request, then FCGI_END_REQUEST. Returns keep_conn.
    fn end(&mut self, app_status: u32) -> io::Result<bool> {
        if self.finished {
            return Ok(self.conn_keep());
        }
        self.finished = true;
        while !self.body_done && !self.broken {
            self.body.clear();
            self.fill_body()?;
        }
        self.frame();
        let keep = self.conn.end_request(app_status).unwrap_or(false);
        self.send_pending()?;
        Ok(keep)
    }

    fn conn_keep(&self) -> bool {
        !self.conn.should_close()
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

impl RequestIo for Exchange<'_> {
    fn read_body(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.finished {
            return Ok(0);
        }
        self.fill_body()?;
        let n = buf.len().min(self.body.len());
        buf[..n].copy_from_slice(&self.body[..n]);
        self.body.drain(..n);
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
        self.out.extend_from_slice(data);
        if self.out.len() >= OUT_BATCH {
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
        if let Some(s) = self.slot {
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
        let (name, board) = self.status?;
        let (pool, procs) = corral_status::snapshot(board, name, self.pool.pm_name);
        let json = corral_status::render::fpm_get_status_json(&pool, &procs).into_bytes();
        self.status_cache = Some(json.clone());
        Some(json)
    }

    fn log(&mut self, level: LogLevel, msg: &[u8], to_fcgi: bool) {
        self.log.line(level, msg);
        if to_fcgi && !self.finished && !self.broken {
            if !self.err.is_empty() {
                self.err.extend_from_slice(b"; ");
            }
            self.err.extend_from_slice(msg);
        }
    }
}

fn get<'p>(params: &'p [(Vec<u8>, Vec<u8>)], name: &str) -> Option<&'p [u8]> {
    params
        .iter()
        .find(|(n, _)| n == name.as_bytes())
        .map(|(_, v)| v.as_slice())
}

/// php-fpm's security.limit_extensions: the resolved script must end with
/// one of the listed suffixes (an empty list allows everything).
pub fn extension_allowed(path: &[u8], allowed: &[String]) -> bool {
    allowed.is_empty() || allowed.iter().any(|ext| path.ends_with(ext.as_bytes()))
}

/// The file system as php-fpm sees it before a request: realpath through
/// PHP's realpath cache (no syscall while warm), stat for the path-info walk.
struct EngineFs<'a>(&'a Engine);

impl FileSystem for EngineFs<'_> {
    fn resolves(&self, path: &[u8]) -> bool {
        self.0.path_resolves(path)
    }
    fn is_file(&self, path: &[u8]) -> bool {
        cgi_env::RealFs.is_file(path)
    }
}

/// The cgi.* settings of php.ini that steer the CGI variables. They are
/// PHP_INI_SYSTEM, so one read per worker is enough.
pub fn cgi_options(engine: &Engine) -> CgiOptions {
    CgiOptions {
        fix_pathinfo: engine.ini_bool("cgi.fix_pathinfo").unwrap_or(true),
        discard_path: engine.ini_bool("cgi.discard_path").unwrap_or(false),
        script_path_encoded: engine
            .ini_bool("fastcgi.script_path_encoded")
            .unwrap_or(true),
        doc_root: engine
            .ini_string("doc_root")
            .filter(|s| !s.is_empty())
            .map(String::into_bytes),
    }
}

/// What a worker carries from one connection to the next.
pub struct WorkerCtx<'a> {
    pub engine: &'a Engine,
    pub pool: &'a PoolRuntime,
    pub slot: Option<&'a SlotWriter<'a>>,
    /// The pool's access log, when configured.
    pub access: Option<std::fs::File>,
    /// Requests served, for pm.max_requests.
    pub served: u64,
    pub log: &'a WorkerLog,
    /// The pool's scoreboard.
    pub board: Option<&'a [std::sync::atomic::AtomicU64]>,
    /// php.ini's cgi.* settings: PHP_INI_SYSTEM, read once per worker.
    pub cgi: CgiOptions,
    /// Socket reads, reused across connections.
    pub buf: Vec<u8>,
    /// What the status page and fpm_get_status() report: the pool's own
    /// name and scoreboard, or a pm.status_listen pool's parent's.
    pub status: Option<(&'a str, &'a [std::sync::atomic::AtomicU64])>,
}

/// Serve one accepted connection until it closes.
pub fn serve(w: &mut WorkerCtx<'_>, sock: OwnedFd, peer: Option<std::net::IpAddr>) -> ConnEnd {
    let mut stream = std::fs::File::from(sock);
    // A connection that stays silent is closed unseen: it is no request,
    // and the worker stays Idle (php-fpm counts a connection only once
    // there is something to read).
    if !readable_within(&stream, FIRST_BYTE_TIMEOUT) {
        return ConnEnd::Closed;
    }
    let mut conn = ServerConn::default();
    let mut buf = std::mem::take(&mut w.buf);
    if buf.len() < 16 * 1024 {
        buf.resize(16 * 1024, 0);
    }
    let end = serve_loop(w, &mut stream, &mut conn, &mut buf, peer);
    w.buf = buf;
    end
}

fn serve_loop(
    w: &mut WorkerCtx<'_>,
    stream: &mut std::fs::File,
    conn: &mut ServerConn,
    buf: &mut [u8],
    peer: Option<std::net::IpAddr>,
) -> ConnEnd {
    let (engine, pool, slot, log) = (w.engine, w.pool, w.slot, w.log);
    let served = &mut w.served;
    let mut access = w.access.as_mut();
    // A fresh connection is "Reading headers" from its first byte on (php-fpm:
    // on_read after the poll), so a client that stalls after it is under
    // request_terminate_timeout; on a kept-alive connection the next request
    // counts when it begins, not while the connection is merely waited on.
    let mut counted = false;
    if let Some(s) = slot {
        s.accepting();
        counted = true;
    }
    loop {
        // Read until the params are complete.
        let mut keep_conn = false;
        let params = loop {
            match conn.poll_event() {
                Some(ServerEvent::BeginRequest { keep_conn: k, .. }) => {
                    keep_conn = k;
                    if let (Some(s), false) = (slot, counted) {
                        s.accepting();
                    }
                    counted = true;
                }
                Some(ServerEvent::Params(p)) => break Some(p),
                Some(_) => {}
                None => {
                    let n = match read_retry(stream, buf) {
                        Ok(0) | Err(_) => break None,
                        Ok(n) => n,
                    };
                    if let Err(e) = conn.feed(&buf[..n]) {
                        log.line(
                            LogLevel::Error,
                            format!("FastCGI: {e}; closing the connection").as_bytes(),
                        );
                        break None;
                    }
                    let out = conn.take_output();
                    if !out.is_empty() && write_all_retry(stream, &out).is_err() {
                        break None;
                    }
                }
            }
        };
        let Some(params) = params else {
            if let Some(s) = slot {
                s.set_state(ProcState::Idle);
            }
            return ConnEnd::Closed;
        };
        if let Some(s) = slot {
            s.set_state(ProcState::GettingInfo);
        }
        let started_us = corral_status::now_us();
        // getrusage only when an access log wants %C.
        let cpu_before = if pool.access_format.is_some() {
            cpu_times()
        } else {
            (0, 0)
        };

        // php-fpm's FastCGI layer adds FCGI_ROLE first; scripts see it in
        // $_SERVER and getenv().
        let mut pairs = params.into_pairs();
        pairs.retain(|(n, _)| n != b"FCGI_ROLE");
        pairs.insert(0, (b"FCGI_ROLE".to_vec(), b"RESPONDER".to_vec()));
        let resolved = cgi_env::resolve(pairs, &w.cgi, &EngineFs(engine));
        let p = &resolved.params;
        let method = get(p, "REQUEST_METHOD").map(<[u8]>::to_vec);
        let content_length = get(p, "CONTENT_LENGTH")
            .and_then(|v| std::str::from_utf8(v).ok())
            .and_then(|v| v.trim().parse::<i64>().ok())
            .unwrap_or(0);
        let deny = match &resolved.path_translated {
            Some(path) if !extension_allowed(path, &pool.limit_extensions) => {
                let msg = format!(
                    "Access to the script '{}' has been denied (see security.limit_extensions)",
                    String::from_utf8_lossy(path)
                );
                Some(msg)
            }
            _ => None,
        };
        if let Some(s) = slot {
            let mut uri = resolved.request_uri.clone().unwrap_or_default();
            if let Some(q) = get(p, "QUERY_STRING").filter(|q| !q.is_empty()) {
                uri.push(b'?');
                uri.extend_from_slice(q);
            }
            s.request_info(
                method.as_deref().unwrap_or(b"-"),
                &uri,
                resolved.path_translated.as_deref().unwrap_or(b"-"),
                b"-",
                content_length.max(0) as u64,
            );
        }

        let mut ex = Exchange {
            stream: &mut *stream,
            conn: &mut *conn,
            body: Vec::new(),
            body_done: false,
            out: Vec::new(),
            err: Vec::new(),
            finished: false,
            broken: false,
            log,
            slot,
            status: w.status,
            pool,
            status_cache: None,
            head: Vec::new(),
            // Only an access log reads response headers (%{Name}o).
            head_done: pool.access_format.is_none(),
        };

        let is_status = method.is_some()
            && pool.status_path.is_some()
            && resolved.request_uri.as_deref() == pool.status_path.as_deref().map(str::as_bytes);
        let is_ping = method.is_some()
            && pool.ping_path.is_some()
            && resolved.request_uri.as_deref() == pool.ping_path.as_deref().map(str::as_bytes);
        let mut recycle = false;
        let mut peak = 0usize;
        let mut status = 200u16;
        if is_status && !is_ping {
            status = serve_status(
                &mut ex,
                w.status,
                pool,
                get(p, "QUERY_STRING"),
                method.as_deref(),
            );
        } else if is_ping {
            let head = "Content-type: text/plain;charset=UTF-8\r\n\
                        Expires: Thu, 01 Jan 1970 00:00:00 GMT\r\n\
                        Cache-Control: no-cache, no-store, must-revalidate, max-age=0\r\n\r\n";
            let _ = ex.write_out(head.as_bytes());
            if method.as_deref() != Some(b"HEAD") {
                let _ = ex.write_out(pool.ping_response.as_bytes());
            }
        } else {
            if let Some(msg) = &deny {
                ex.log(LogLevel::Error, msg.as_bytes(), true);
            }
            let spec = RequestSpec {
                request_method: method.clone(),
                query_string: get(p, "QUERY_STRING").map(<[u8]>::to_vec),
                request_uri: resolved.request_uri.clone(),
                path_translated: resolved.path_translated.clone(),
                content_type: get(p, "CONTENT_TYPE")
                    .map(<[u8]>::to_vec)
                    .unwrap_or_default(),
                content_length,
                deny_extension: deny.is_some(),
                params: p,
            };
            let outcome = engine.run(&spec, &mut ex);
            recycle = outcome.recycle;
            peak = outcome.peak_memory;
            status = outcome.status;
        }
        // The response is complete before the client can look at the status
        // page: no longer "Running" by then (php-fpm: Finishing, then Idle).
        if let Some(s) = slot {
            s.set_state(ProcState::Finishing);
        }
        let keep = ex.end(0).unwrap_or(false) && keep_conn;
        if let Some(e) = ex.conn.error() {
            // What followed the request was not FastCGI we accept.
            log.line(
                LogLevel::Error,
                format!("FastCGI: {e}; closing the connection").as_bytes(),
            );
        }
        let broken = ex.broken;
        let headers = if pool.access_format.is_some() {
            ex.headers()
        } else {
            Vec::new()
        };
        if let (Some(fmt), Some(file)) = (pool.access_format.as_deref(), access.as_deref_mut()) {
            let cpu_after = cpu_times();
            let rec = access_log::Record {
                pool: &pool.name,
                pid: std::process::id(),
                master_pid: pool.master_pid,
                peer,
                params: p,
                method: method.as_deref(),
                request_uri: resolved.request_uri.as_deref(),
                query: get(p, "QUERY_STRING"),
                script: resolved.path_translated.as_deref(),
                content_length,
                status,
                auth_user: access_log::basic_auth_user(get(p, "HTTP_AUTHORIZATION")),
                headers: &headers,
                started_us,
                finished_us: corral_status::now_us(),
                cpu_user_us: cpu_after.0.saturating_sub(cpu_before.0),
                cpu_system_us: cpu_after.1.saturating_sub(cpu_before.1),
                peak_memory: peak as u64,
            };
            if !access_log::suppressed(&rec, &pool.access_suppress) {
                if let Ok(line) = access_log::render(fmt, &rec) {
                    access_log::write_line(file, line, log);
                }
            }
        }
        *served += 1;
        if let Some(s) = slot {
            s.finished(0, peak as u64);
        }
        if recycle {
            log.line(
                LogLevel::Warning,
                b"PHP state is unsure after a bailout outside the script: recycling this worker",
            );
            return ConnEnd::ExitWorker;
        }
        if pool.max_requests > 0 && *served >= pool.max_requests {
            return ConnEnd::ExitWorker;
        }
        if corral_sys::signal::quit_requested() {
            return ConnEnd::ExitWorker;
        }
        if !keep || broken {
            return ConnEnd::Closed;
        }
        counted = false;
    }
}

/// Waits until `stream` has something to read (or its peer closed it), for
/// at most `timeout`. EINTR (SIGQUIT) does not cut the wait short: a web
/// server that connected is about to send a request, and a graceful stop
/// lets it be served.
fn readable_within(stream: &std::fs::File, timeout: Duration) -> bool {
    use corral_sys::nix::errno::Errno;
    use corral_sys::nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let ms = u16::try_from(left.as_millis()).unwrap_or(u16::MAX);
        let mut fds = [PollFd::new(stream.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::from(ms)) {
            Ok(0) => return false,
            Ok(_) => {
                return fds[0]
                    .revents()
                    .is_some_and(|r| r.contains(PollFlags::POLLIN))
            }
            Err(Errno::EINTR) => continue,
            Err(_) => return false,
        }
    }
}

/// (user, system) CPU time of this process in microseconds.
fn cpu_times() -> (u64, u64) {
    use corral_sys::nix::sys::resource::{getrusage, UsageWho};
    match getrusage(UsageWho::RUSAGE_SELF) {
        Ok(u) => {
            let us = |t: corral_sys::nix::sys::time::TimeVal| {
                t.tv_sec() as u64 * 1_000_000 + t.tv_usec() as u64
            };
            (us(u.user_time()), us(u.system_time()))
        }
        Err(_) => (0, 0),
    }
}

/// pm.status_path: the pool's status in the format the query asks for.
fn serve_status(
    ex: &mut Exchange<'_>,
    status: Option<(&str, &[std::sync::atomic::AtomicU64])>,
    pool: &PoolRuntime,
    query: Option<&[u8]>,
    method: Option<&[u8]>,
) -> u16 {
    let Some((name, board)) = status else {
        let _ = ex.write_out(
            b"Status: 500 Internal Server Error\r\nContent-type: text/plain;charset=UTF-8\r\n\r\nInternal error. Please review log file for errors.",
        );
        return 500;
    };
    let query = String::from_utf8_lossy(query.unwrap_or_default());
    let (format, full) = corral_status::render::parse_query(&query);
    let (pool_status, procs) = corral_status::snapshot(board, name, pool.pm_name);
    let page = corral_status::render::render(&pool_status, &procs, format, full);
    let mut head = String::new();
    for (n, v) in &page.headers {
        head.push_str(&format!("{n}: {v}\r\n"));
    }
    head.push_str("\r\n");
    let _ = ex.write_out(head.as_bytes());
    if method != Some(b"HEAD") {
        let _ = ex.write_out(page.body.as_bytes());
    }
    200
}
