//! One FastCGI connection in a worker: wait for its first byte, then for
//! each request read its head, work out what it is, answer it (the pool's
//! own page or PHP), log it and count it; repeat while the web server keeps
//! the connection (FCGI_KEEP_CONN).

use std::fs::File;
use std::io;
use std::net::IpAddr;
use std::os::fd::{AsFd, OwnedFd};
use std::time::{Duration, Instant};

use corral_fastcgi::{Params, ServerConn, ServerEvent};
use corral_php::{Engine, LogLevel, Outcome, RequestIo, RequestSpec};
use corral_status::{ProcState, SlotWriter};

use crate::access_log;
use crate::builtin;
use crate::cgi_env::CgiOptions;
use crate::exchange::{Buffers, Exchange, Wire};
use crate::log::WorkerLog;
use crate::pacing::Pacer;
use crate::request::{self, EngineFs};
use crate::waiter::Waiter;
use crate::PoolRuntime;

pub use crate::request::extension_allowed;

/// How long a new connection may stay silent before its first byte. php-fpm's
/// `fcgi_accept_request` (main/fastcgi.c) polls an accepted socket for
/// 5000 ms and closes it when nothing came, so connections that send nothing
/// cannot hold every worker of a pool.
pub const FIRST_BYTE_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a worker that pauses after a connection (see `pacing`) waits
/// for the web server to close its end. php-fpm waits without limit; a
/// bound keeps a client that half-closes and then sits from holding a
/// worker.
const LINGER_LIMIT: Duration = Duration::from_secs(1);

/// Socket reads go through a buffer of at least this size.
const READ_BUF: usize = 16 * 1024;

/// What became of a connection after its request.
// A kept connection moves by value between the wait and the request: a
// few hundred bytes copied, where a Box would allocate per request.
#[allow(clippy::large_enum_variant)]
pub enum ConnEnd {
    /// The web server closed or did not ask to keep the connection.
    Closed,
    /// The web server keeps the connection for a later request
    /// (FCGI_KEEP_CONN): the worker waits on it and on the pool's socket
    /// alike, so a kept connection never ties a worker up.
    Kept(Kept),
    /// The worker must exit after this (max_requests reached, quit asked,
    /// PHP in doubtful state).
    ExitWorker,
}

/// A kept-alive connection between two of its requests.
pub struct Kept {
    stream: File,
    conn: ServerConn,
    peer: Option<IpAddr>,
    /// Its place among the worker's kept connections, once it has one.
    pub(crate) place: Option<usize>,
}

impl Kept {
    pub fn fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.stream.as_fd()
    }

    /// Whether its next request is already read, so that waiting on the
    /// socket would wait for nothing.
    pub fn has_request(&self) -> bool {
        self.conn.has_queued_events()
    }
}

/// The cgi.* settings of php.ini that steer the CGI variables. They are
/// PHP_INI_SYSTEM, so one read per worker is enough.
pub fn cgi_options(engine: &Engine) -> CgiOptions {
    CgiOptions {
        fix_pathinfo: engine.ini_bool("cgi.fix_pathinfo").unwrap_or(true),
        discard_path: engine.ini_bool("cgi.discard_path").unwrap_or(false),
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
    /// The FastCGI state and request buffers, reused across connections.
    pub reuse: Reused,
    /// What the status page and fpm_get_status() report: the pool's own
    /// name and scoreboard, or a pm.status_listen pool's parent's.
    pub status: Option<(&'a str, &'a [std::sync::atomic::AtomicU64])>,
    /// When this worker last slept, for pausing at a request boundary.
    pub pacer: Pacer,
    /// The pool's socket and the kept connections, between requests.
    pub waiter: Waiter<'a>,
}

/// What one connection leaves for the next: with the web server opening a
/// connection per request (nginx's default), this is what keeps a request
/// from allocating its FastCGI state and buffers afresh.
#[derive(Default)]
pub struct Reused {
    conn: ServerConn,
    bufs: Buffers,
}

/// Serve a newly accepted connection's first request.
pub fn serve(w: &mut WorkerCtx<'_>, sock: OwnedFd, peer: Option<IpAddr>) -> ConnEnd {
    let stream = File::from(sock);
    // A connection that stays silent is closed unseen: it is no request,
    // and the worker stays Idle (php-fpm counts a connection only once
    // there is something to read).
    let began = Instant::now();
    let readable = readable_within(&stream, FIRST_BYTE_TIMEOUT);
    w.pacer.waited(began);
    if !readable {
        return ConnEnd::Closed;
    }
    let mut conn = std::mem::take(&mut w.reuse.conn);
    conn.reset();
    let tally = Tally::fresh(w.slot);
    serve_one(
        w,
        Kept {
            stream,
            conn,
            peer,
            place: None,
        },
        tally,
    )
}

/// Serve the next request of a kept connection that has something to read.
pub fn resume(w: &mut WorkerCtx<'_>, kept: Kept) -> ConnEnd {
    let tally = Tally::waiting(w.slot);
    serve_one(w, kept, tally)
}

/// One request of a connection; the connection is kept or closed after it.
fn serve_one(w: &mut WorkerCtx<'_>, mut c: Kept, mut tally: Tally<'_>) -> ConnEnd {
    let mut bufs = std::mem::take(&mut w.reuse.bufs);
    let mut buf = std::mem::take(&mut w.buf);
    if buf.len() < READ_BUF {
        buf.resize(READ_BUF, 0);
    }
    let mut wire = Wire {
        stream: &mut c.stream,
        conn: &mut c.conn,
        buf: &mut buf,
    };
    let step = serve_request(w, &mut wire, &mut bufs, c.peer, &mut tally);
    w.buf = buf;
    w.reuse.bufs = bufs;
    if let Step::Keep = step {
        return ConnEnd::Kept(c);
    }
    w.waiter.forget(&c);
    let Kept { stream, conn, .. } = c;
    // Its FastCGI state serves the next fresh connection.
    w.reuse.conn = conn;
    let pause = w.pacer.wants_pause().then_some(LINGER_LIMIT);
    let began = Instant::now();
    if corral_sys::socket::close_served(stream.into(), pause) {
        w.pacer.waited(began);
    }
    match step {
        Step::Exit => ConnEnd::ExitWorker,
        _ => ConnEnd::Closed,
    }
}

/// After one request: what the connection and the worker do next.
enum Step {
    Keep,
    Close,
    Exit,
}

/// Reads the connection's next request and answers it.
fn serve_request(
    w: &mut WorkerCtx<'_>,
    wire: &mut Wire<'_>,
    bufs: &mut Buffers,
    peer: Option<IpAddr>,
    tally: &mut Tally<'_>,
) -> Step {
    let Some(head) = read_head(wire, w.log, tally) else {
        if let Some(s) = w.slot {
            s.set_state(ProcState::Idle);
        }
        return Step::Close;
    };
    if let Some(s) = w.slot {
        s.set_state(ProcState::GettingInfo);
    }
    let clock = Clock::start(w.pool);
    let resolved = request::resolve(head.params, &w.cgi, &EngineFs(w.engine));
    let mut spec = request::spec(
        &resolved.params,
        resolved.request_uri,
        resolved.path_translated,
        w.pool,
    );
    spec.want_opcache = opcache_due(w.slot);
    announce(w.slot, &spec, &mut bufs.uri);

    let mut ex = Exchange::new(wire, bufs, w);
    let outcome = answer(w.engine, w.pool, w.status, &spec, &mut ex);
    // The response is complete before the client can look at the status
    // page: no longer "Running" by then (php-fpm: Finishing, then Idle).
    if let Some(s) = w.slot {
        s.set_state(ProcState::Finishing);
    }
    // php-fpm writes the access-log line (fpm_log_write) before
    // php_request_shutdown sends FCGI_END_REQUEST: a client that has the
    // whole response finds its request in the log.
    if w.pool.access_format.is_some() {
        log_access(w, peer, &spec, &outcome, &ex.headers(), &clock);
    }
    let keep = ex.end(0).unwrap_or(false) && head.keep_conn;
    if let Some(e) = ex.protocol_error() {
        // What followed the request was not FastCGI we accept.
        w.log.line(
            LogLevel::Error,
            format!("FastCGI: {e}; closing the connection").as_bytes(),
        );
    }
    let broken = ex.broken;
    drop(ex);

    wire.conn.recycle_params(resolved.params);
    if finish_request(w, &outcome) {
        return Step::Exit;
    }
    if !keep || broken {
        return Step::Close;
    }
    Step::Keep
}

/// What BEGIN_REQUEST and the PARAMS stream said.
struct Head {
    keep_conn: bool,
    params: Params,
}

/// Reads until the web server has begun a request and sent all its params.
/// `None` when the connection ends first: closed, failed, or not FastCGI
/// (that is logged).
fn read_head(wire: &mut Wire<'_>, log: &WorkerLog, tally: &mut Tally<'_>) -> Option<Head> {
    let mut keep_conn = false;
    loop {
        match next_event(wire, log)? {
            ServerEvent::BeginRequest { keep_conn: k, .. } => {
                keep_conn = k;
                tally.begin();
            }
            ServerEvent::Params(params) => return Some(Head { keep_conn, params }),
            _ => {}
        }
    }
}

/// The connection's next event, reading the socket while none is queued.
fn next_event(wire: &mut Wire<'_>, log: &WorkerLog) -> Option<ServerEvent> {
    loop {
        if let Some(ev) = wire.conn.poll_event() {
            return Some(ev);
        }
        match wire.read_more() {
            Ok(true) => {}
            Ok(false) => return None,
            Err(e) => {
                if e.kind() == io::ErrorKind::InvalidData {
                    log.line(
                        LogLevel::Error,
                        format!("FastCGI: {e}; closing the connection").as_bytes(),
                    );
                }
                return None;
            }
        }
        wire.send_pending().ok()?;
    }
}

/// When a request counts on the scoreboard (accepted conn, the worker's
/// requests, "Reading headers"): on a fresh connection from its first byte,
/// as php-fpm's on_read after the poll, so a client that stalls after it is
/// under request_terminate_timeout; on a kept-alive connection from the
/// next BEGIN_REQUEST, not while the connection is merely waited on.
struct Tally<'a> {
    slot: Option<&'a SlotWriter<'a>>,
    counted: bool,
}

impl<'a> Tally<'a> {
    fn fresh(slot: Option<&'a SlotWriter<'a>>) -> Self {
        let mut tally = Tally {
            slot,
            counted: false,
        };
        tally.begin();
        tally
    }

    /// On a kept connection: counted at its BEGIN_REQUEST.
    fn waiting(slot: Option<&'a SlotWriter<'a>>) -> Self {
        Tally {
            slot,
            counted: false,
        }
    }

    fn begin(&mut self) {
        if !self.counted {
            if let Some(s) = self.slot {
                s.accepting();
            }
            self.counted = true;
        }
    }
}

/// What the request is, for the status page and the slow log: php-fpm shows
/// SCRIPT_NAME after rewriting with the query string, not REQUEST_URI.
fn announce(slot: Option<&SlotWriter<'_>>, spec: &RequestSpec<'_>, uri: &mut Vec<u8>) {
    let Some(s) = slot else {
        return;
    };
    uri.clear();
    uri.extend_from_slice(spec.request_uri.as_deref().unwrap_or_default());
    if let Some(q) = spec.query_string.filter(|q| !q.is_empty()) {
        uri.push(b'?');
        uri.extend_from_slice(q);
    }
    s.request_info(
        spec.request_method.unwrap_or(b"-"),
        uri,
        spec.path_translated.as_deref().unwrap_or(b"-"),
        b"-",
        spec.content_length.max(0) as u64,
    );
}

/// The pool's own page, PHP, or (for a pm.status_listen pool, which never
/// runs PHP) "File not found.".
fn answer(
    engine: &Engine,
    pool: &PoolRuntime,
    status: Option<(&str, &[std::sync::atomic::AtomicU64])>,
    spec: &RequestSpec<'_>,
    ex: &mut Exchange<'_, '_>,
) -> Outcome {
    let page = builtin::page_for(spec, pool);
    let status = match page {
        Some(page) => builtin::respond(page, ex, spec, pool, status),
        None if pool.status_only => builtin::not_found(ex, spec),
        None => return run_php(engine, spec, ex),
    };
    Outcome {
        status,
        recycle: false,
        peak_memory: 0,
        opcache: None,
    }
}

/// Runs the script. A script security.limit_extensions refuses is still
/// handed to PHP, which answers 403 as php-fpm does, after the error is
/// logged and copied to FCGI_STDERR.
fn run_php(engine: &Engine, spec: &RequestSpec<'_>, ex: &mut Exchange<'_, '_>) -> Outcome {
    if let (true, Some(path)) = (spec.deny_extension, spec.path_translated.as_deref()) {
        ex.log(
            LogLevel::Error,
            request::denied_message(path).as_bytes(),
            true,
        );
    }
    engine.run(spec, ex)
}

/// When the request started, for the access log's times; the CPU clock is
/// read only when an access log may want `%C`.
struct Clock {
    started_us: u64,
    cpu: (u64, u64),
}

impl Clock {
    fn start(pool: &PoolRuntime) -> Clock {
        Clock {
            started_us: corral_status::now_us(),
            cpu: if pool.access_format.is_some() {
                cpu_times()
            } else {
                (0, 0)
            },
        }
    }
}

/// The request's access.log line, written once the response is out but
/// before FCGI_END_REQUEST, as php-fpm does, unless access.suppress_path
/// names the request.
fn log_access(
    w: &WorkerCtx<'_>,
    peer: Option<IpAddr>,
    spec: &RequestSpec<'_>,
    outcome: &Outcome,
    headers: &[(String, String)],
    clock: &Clock,
) {
    let (Some(fmt), Some(file)) = (w.pool.access_format.as_deref(), w.access.as_ref()) else {
        return;
    };
    let cpu = cpu_times();
    let rec = access_log::Record {
        pool: &w.pool.name,
        pid: std::process::id(),
        master_pid: w.pool.master_pid,
        peer,
        params: spec.params,
        method: spec.request_method,
        request_uri: spec.request_uri.as_deref(),
        query: spec.query_string,
        script: spec.path_translated.as_deref(),
        content_length: spec.content_length,
        status: outcome.status,
        auth_user: access_log::basic_auth_user(spec.params.first("HTTP_AUTHORIZATION")),
        headers,
        started_us: clock.started_us,
        finished_us: corral_status::now_us(),
        cpu_user_us: cpu.0.saturating_sub(clock.cpu.0),
        cpu_system_us: cpu.1.saturating_sub(clock.cpu.1),
        peak_memory: outcome.peak_memory as u64,
    };
    if access_log::suppressed(&rec, &w.pool.access_suppress) {
        return;
    }
    access_log::write_line(file, access_log::render(fmt, &rec), w.log);
}

/// Whether this request should bring the pool's OPcache numbers to the
/// scoreboard: when no worker of the pool has in the last second, so that
/// a busy pool pays for opcache_get_status() about once a second.
fn opcache_due(slot: Option<&SlotWriter<'_>>) -> bool {
    slot.is_some_and(|s| s.opcache_written_at() < corral_status::now_us() / 1_000_000)
}

/// Counts the request as served; true when the worker must go now:
/// PHP in doubt, pm.max_requests reached, or a graceful stop asked.
fn finish_request(w: &mut WorkerCtx<'_>, outcome: &Outcome) -> bool {
    w.served += 1;
    if let Some(s) = w.slot {
        s.finished(0, outcome.peak_memory as u64);
        if let Some(o) = outcome.opcache {
            s.opcache(&corral_status::OpcacheStats {
                used_memory: o.used_memory,
                free_memory: o.free_memory,
                wasted_memory: o.wasted_memory,
                hits: o.hits,
                misses: o.misses,
                cached_scripts: o.cached_scripts,
                at_s: corral_status::now_us() / 1_000_000,
            });
        }
    }
    if outcome.recycle {
        w.log.line(
            LogLevel::Warning,
            b"PHP state is unsure after a bailout outside the script: recycling this worker",
        );
        return true;
    }
    if w.pool.max_requests > 0 && w.served >= w.pool.max_requests {
        return true;
    }
    if corral_sys::signal::quit_requested() {
        return true;
    }
    false
}

/// Waits until `stream` has something to read (or its peer closed it), for
/// at most `timeout`. EINTR (SIGQUIT) does not cut the wait short: a web
/// server that connected is about to send a request, and a graceful stop
/// lets it be served.
fn readable_within(stream: &File, timeout: Duration) -> bool {
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
