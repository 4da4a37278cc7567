//! The safe face of the shim: start PHP once per process, apply pool INI
//! values, run one request at a time against a caller-supplied [`RequestIo`].

use std::cell::Cell;
use std::ffi::{CStr, CString};
use std::io;
use std::marker::PhantomData;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr;

use libc::{c_char, c_int, c_void, size_t, ssize_t};

use corral_fastcgi::Params;

use crate::ffi;

/// Severity of a log line coming out of PHP or the shim, in zlog's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    Debug = 1,
    Notice = 2,
    Warning = 3,
    Error = 4,
}

impl LogLevel {
    fn from_c(v: c_int) -> LogLevel {
        match v {
            1 => LogLevel::Debug,
            2 => LogLevel::Notice,
            3 => LogLevel::Warning,
            _ => LogLevel::Error,
        }
    }
}

/// The I/O of one request, implemented by the worker over its FastCGI
/// connection. Methods are leaf operations: they must not call back into PHP.
pub trait RequestIo {
    /// Read request body bytes; `Ok(0)` at the end of the body.
    fn read_body(&mut self, buf: &mut [u8]) -> io::Result<usize>;
    /// Queue response bytes (headers and body, CGI format).
    fn write_out(&mut self, data: &[u8]) -> io::Result<()>;
    /// Send queued bytes to the web server now.
    fn flush(&mut self) -> io::Result<()>;
    /// `fastcgi_finish_request()`: flush and end the FastCGI request now.
    fn finish(&mut self) -> io::Result<()>;
    /// A log message; `to_fcgi` asks for a copy on FCGI_STDERR.
    fn log(&mut self, level: LogLevel, msg: &[u8], to_fcgi: bool);
    /// The pool's status as JSON for `fpm_get_status()`, if known.
    fn status_json(&mut self) -> Option<Vec<u8>> {
        None
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("PHP module startup failed")]
    Startup,
    #[error("PHP is already running in this process")]
    AlreadyStarted,
    #[error("Unable to set php_value '{0}'")]
    PoolIni(String),
    #[error("value for '{0}' contains a NUL byte")]
    Nul(String),
}

/// How to start PHP: php-fpm's `-c`, `-n`, `-d`.
#[derive(Debug, Default, Clone)]
pub struct StartOptions {
    pub ini_path: Option<String>,
    pub no_ini: bool,
    pub defines: Vec<String>,
    pub executable: String,
}

impl StartOptions {
    /// php-fpm's php.ini locations unless told otherwise: `ini_dir` (for
    /// Debian, /etc/php/8.2/fpm) and its `conf.d` as PHP_INI_SCAN_DIR.
    /// Sets the environment: call while the process is single-threaded.
    pub fn with_ini_defaults(mut self, ini_dir: &str) -> StartOptions {
        // -n means no php.ini; PHP would still read an override path.
        if self.no_ini {
            return self;
        }
        if self.ini_path.is_none() && std::path::Path::new(ini_dir).is_dir() {
            self.ini_path = Some(ini_dir.to_string());
        }
        if std::env::var_os("PHP_INI_SCAN_DIR").is_none() {
            let scan = format!("{ini_dir}/conf.d");
            if std::path::Path::new(&scan).is_dir() {
                std::env::set_var("PHP_INI_SCAN_DIR", scan);
            }
        }
        self
    }
}

/// A [`RequestIo`] for PHP outside requests (start-up, `-v`): no body, no
/// output, log lines to a function.
pub struct LogOnly<F: FnMut(LogLevel, &[u8])>(pub F);

impl<F: FnMut(LogLevel, &[u8])> RequestIo for LogOnly<F> {
    fn read_body(&mut self, _: &mut [u8]) -> io::Result<usize> {
        Ok(0)
    }
    fn write_out(&mut self, _: &[u8]) -> io::Result<()> {
        Ok(())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
    fn finish(&mut self) -> io::Result<()> {
        Ok(())
    }
    fn log(&mut self, level: LogLevel, msg: &[u8], _: bool) {
        (self.0)(level, msg)
    }
}

/// A request as the worker resolved it from the FastCGI params.
#[derive(Debug)]
pub struct RequestSpec<'a> {
    /// Every FastCGI param after cgi.fix_pathinfo rewriting, in order.
    pub params: &'a Params,
    pub request_method: Option<&'a [u8]>,
    pub query_string: Option<&'a [u8]>,
    /// SCRIPT_NAME after rewriting: PHP_SELF, status/ping matching.
    pub request_uri: Option<Vec<u8>>,
    /// The script to run; `None` answers 404 "File not found.".
    pub path_translated: Option<Vec<u8>>,
    pub content_type: &'a [u8],
    pub content_length: i64,
    /// security.limit_extensions refused the script: 403 "Access denied.".
    pub deny_extension: bool,
    /// Read the OPcache's numbers after the script (see [`Outcome::opcache`]).
    pub want_opcache: bool,
}

/// What `opcache_get_status(false)` reported: shared by every worker of
/// one prototype, so the pool's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OpcacheNumbers {
    pub used_memory: u64,
    pub free_memory: u64,
    pub wasted_memory: u64,
    pub hits: u64,
    pub misses: u64,
    pub cached_scripts: u64,
}

/// What running a request left behind.
#[derive(Debug, Clone, Copy)]
pub struct Outcome {
    pub status: u16,
    /// PHP's state is doubtful (a bailout outside the script): exit the worker.
    pub recycle: bool,
    pub peak_memory: usize,
    /// With `want_opcache`, when a script ran and OPcache answered.
    pub opcache: Option<OpcacheNumbers>,
}

thread_local! {
    static STARTED: Cell<bool> = const { Cell::new(false) };
}

/// PHP, started in this process. Not `Send`: PHP is single-threaded here and
/// must stay on the thread that started it.
pub struct Engine {
    _not_send: PhantomData<*mut ()>,
}

/// Where one string sits in an [`Arena`].
#[derive(Clone, Copy)]
struct Span {
    start: usize,
    len: usize,
}

/// C strings for one call into the shim, in a single buffer.
struct Arena(Vec<u8>);

impl Arena {
    /// Append `bytes` NUL-terminated. Params carry lengths, C strings do
    /// not: interior NULs are dropped rather than let PHP see a silently
    /// truncated value.
    fn push(&mut self, bytes: &[u8]) -> Span {
        let start = self.0.len();
        if bytes.contains(&0) {
            self.0.extend(bytes.iter().copied().filter(|&b| b != 0));
        } else {
            self.0.extend_from_slice(bytes);
        }
        let len = self.0.len() - start;
        self.0.push(0);
        Span { start, len }
    }

    /// Only valid once every string has been pushed (no more reallocation).
    fn ptr(&self, s: Span) -> *const c_char {
        self.0[s.start..].as_ptr() as *const c_char
    }
}

/// A part from [`Params::iter_nul`] (NUL-terminated) with a NUL before its
/// end: not a C string as it is.
fn inner_nul(with_nul: &[u8]) -> bool {
    with_nul[..with_nul.len().saturating_sub(1)].contains(&0)
}

/// Owns C strings for the duration of a call into the shim.
struct CStrings(Vec<CString>);

impl CStrings {
    fn add(&mut self, bytes: &[u8]) -> *const c_char {
        // Params carry lengths, C strings do not: drop interior NULs rather
        // than let PHP see a silently truncated value.
        let clean: Vec<u8> = bytes.iter().copied().filter(|&b| b != 0).collect();
        let c = CString::new(clean).unwrap_or_default();
        let p = c.as_ptr();
        self.0.push(c);
        p
    }
    fn opt(&mut self, bytes: &Option<Vec<u8>>) -> *const c_char {
        bytes.as_deref().map_or(ptr::null(), |b| self.add(b))
    }
}

impl Engine {
    /// Start PHP (module startup, php.ini, extensions, OPcache). Once per
    /// process; workers forked afterwards inherit it.
    pub fn start(opts: &StartOptions, log: &mut dyn RequestIo) -> Result<Engine, EngineError> {
        if STARTED.with(|s| s.replace(true)) {
            return Err(EngineError::AlreadyStarted);
        }
        let mut strings = CStrings(Vec::new());
        let ini_path = opts.ini_path.as_ref().map(|s| s.as_bytes().to_vec());
        let ini_path = strings.opt(&ini_path);
        let executable = strings.add(opts.executable.as_bytes());
        let mut defines: Vec<*const c_char> = opts
            .defines
            .iter()
            .map(|d| strings.add(d.as_bytes()))
            .collect();
        defines.push(ptr::null());
        let mut log_ref: &mut dyn RequestIo = log;
        let startup = ffi::corral_startup {
            ini_path_override: ini_path,
            ini_ignore: opts.no_ini as c_int,
            defines: defines.as_ptr(),
            executable,
            io: io_table(&mut log_ref),
        };
        // SAFETY: every pointer in `startup` points into `strings`/`defines`,
        // which outlive the call; the shim copies what it keeps.
        let rc = unsafe { ffi::corral_php_startup(&startup) };
        // The shim forgets `log_ref` (startup_io.ctx) before returning.
        if rc != 0 {
            return Err(EngineError::Startup);
        }
        // Executable path and ini strings are copied or static in PHP now,
        // except `executable_location`, which PHP keeps: leak it on purpose.
        std::mem::forget(strings);
        Ok(Engine {
            _not_send: PhantomData,
        })
    }

    /// A pool's php_value/php_admin_value, applied the php-fpm way.
    pub fn apply_pool_ini(&self, name: &str, value: &str, admin: bool) -> Result<(), EngineError> {
        let n = CString::new(name).map_err(|_| EngineError::Nul(name.to_string()))?;
        let v = CString::new(value).map_err(|_| EngineError::Nul(name.to_string()))?;
        // SAFETY: both strings live across the call; the shim copies them.
        let rc = unsafe { ffi::corral_php_apply_pool_ini(n.as_ptr(), v.as_ptr(), admin as c_int) };
        if rc == 0 {
            Ok(())
        } else {
            Err(EngineError::PoolIni(name.to_string()))
        }
    }

    /// Must run in each forked worker before its first request.
    pub fn child_init(&self) {
        // SAFETY: no arguments; re-snapshots Zend's signal state.
        unsafe { ffi::corral_php_child_init() }
    }

    /// Current value of an INI directive.
    pub fn ini_string(&self, name: &str) -> Option<String> {
        let n = CString::new(name).ok()?;
        // SAFETY: returns a pointer into PHP's INI table or NULL; we copy it
        // at once, before anything could change the entry.
        unsafe {
            let p = ffi::corral_php_ini_string(n.as_ptr());
            if p.is_null() {
                None
            } else {
                Some(CStr::from_ptr(p).to_string_lossy().into_owned())
            }
        }
    }

    /// php-fpm's `-e`: compile with extended information (statement and
    /// call hooks that debuggers and profilers such as Xdebug read), as
    /// php-fpm sets it after start-up, before any child is forked.
    pub fn enable_extended_info(&self) {
        // SAFETY: sets a bit in the compiler globals; no arguments.
        unsafe { ffi::corral_php_extended_info() }
    }

    /// The `X-Powered-By: PHP/<version>` header line (without CRLF) that PHP
    /// puts on every response while `expose_php` is on, or None when it is
    /// off. php-fpm's own pages (status, ping) carry it too, because they
    /// are answered after `php_request_startup` has added it.
    pub fn powered_by(&self) -> Option<String> {
        // SAFETY: returns a pointer to a static string literal or NULL.
        unsafe {
            let p = ffi::corral_php_powered_by();
            (!p.is_null()).then(|| CStr::from_ptr(p).to_string_lossy().into_owned())
        }
    }

    /// `ini_string` read as a PHP boolean.
    pub fn ini_bool(&self, name: &str) -> Option<bool> {
        self.ini_string(name).map(|v| {
            let v = v.trim().to_ascii_lowercase();
            matches!(v.as_str(), "1" | "on" | "yes" | "true")
                || v.parse::<i64>().is_ok_and(|n| n != 0)
        })
    }

    /// Run one request to completion (script, shutdown functions, output).
    pub fn run(&self, spec: &RequestSpec<'_>, io: &mut dyn RequestIo) -> Outcome {
        // PHP borrows the params where they are: each is stored with its
        // NUL. Only the fields the worker worked out, and any part with a
        // NUL inside, are copied, into one arena.
        let fields = [
            spec.request_method,
            spec.query_string,
            spec.request_uri.as_deref(),
            spec.path_translated.as_deref(),
            Some(spec.content_type),
        ];
        let mut arena = Arena(Vec::with_capacity(
            fields.iter().flatten().map(|f| f.len() + 1).sum(),
        ));
        let field_spans: [Option<Span>; 5] = fields.map(|f| f.map(|b| arena.push(b)));
        let has_nul = spec.params.has_nul();
        let mut spilled = Vec::new();
        if has_nul {
            for (n, v) in spec.params.iter_nul() {
                for part in [n, v] {
                    if inner_nul(part) {
                        spilled.push(arena.push(part));
                    }
                }
            }
        }
        // The arena is complete: pointers into it stay valid from here on.
        let mut spilled = spilled.into_iter();
        let mut c_part = |part: &[u8]| {
            if has_nul && inner_nul(part) {
                if let Some(s) = spilled.next() {
                    return (arena.ptr(s), s.len);
                }
            }
            (part.as_ptr() as *const c_char, part.len() - 1)
        };
        let params: Vec<ffi::corral_param> = spec
            .params
            .iter_nul()
            .map(|(n, v)| {
                let (name, name_len) = c_part(n);
                let (value, value_len) = c_part(v);
                ffi::corral_param {
                    name,
                    name_len,
                    value,
                    value_len,
                }
            })
            .collect();
        let field = |i: usize| field_spans[i].map_or(ptr::null(), |s| arena.ptr(s));
        let mut io_ref: &mut dyn RequestIo = io;
        let mut req = ffi::corral_request {
            params: params.as_ptr(),
            n_params: params.len(),
            request_method: field(0),
            query_string: field(1),
            request_uri: field(2),
            path_translated: field(3),
            content_type: field(4),
            content_length: spec.content_length.max(0) as libc::c_long,
            deny_extension: spec.deny_extension as c_int,
            want_opcache: spec.want_opcache as c_int,
            io: io_table(&mut io_ref),
            status: 200,
            recycle: 0,
            peak_memory: 0,
            script_ran: 0,
            opcache_ok: 0,
            opcache: [0; ffi::OPCACHE_FIELDS],
        };
        // SAFETY: `req` and everything it points to (`params`, `arena`,
        // `io_ref`) outlive the call, which is synchronous: PHP drops
        // SG(server_context) before returning.
        let rc = unsafe { ffi::corral_php_run(&mut req) };
        Outcome {
            status: u16::try_from(req.status).unwrap_or(500),
            recycle: rc != 0 || req.recycle != 0,
            peak_memory: req.peak_memory,
            opcache: (req.opcache_ok != 0).then(|| {
                let [used_memory, free_memory, wasted_memory, hits, misses, cached_scripts] =
                    req.opcache;
                OpcacheNumbers {
                    used_memory,
                    free_memory,
                    wasted_memory,
                    hits,
                    misses,
                    cached_scripts,
                }
            }),
        }
    }

    /// realpath() through PHP's realpath cache, as php-fpm resolves the
    /// script before each request: no syscall while the cache is warm.
    pub fn path_resolves(&self, path: &[u8]) -> bool {
        if path.contains(&0) {
            return false;
        }
        let Ok(c) = CString::new(path) else {
            return false;
        };
        // SAFETY: a valid C string for the duration of the call; the shim
        // frees what tsrm_realpath allocated.
        unsafe { ffi::corral_php_path_resolves(c.as_ptr()) != 0 }
    }

    /// Addresses and struct offsets a slow-log reader needs (see
    /// `corral_php_trace_layout` in the shim), in the shim's fixed order.
    pub fn trace_layout(&self) -> Vec<u64> {
        let mut out = vec![0u64; ffi::TRACE_FIELDS];
        // SAFETY: the shim writes exactly TRACE_FIELDS u64 values.
        unsafe { ffi::corral_php_trace_layout(out.as_mut_ptr()) };
        out
    }

    /// `-v`: php-fpm's version banner on stdout.
    pub fn print_version(&self) -> bool {
        // SAFETY: no arguments; prints outside any FastCGI request.
        unsafe { ffi::corral_php_print_version() == 0 }
    }

    /// `-m`: compiled-in and loaded modules.
    pub fn print_modules(&self) -> bool {
        // SAFETY: as above.
        unsafe { ffi::corral_php_print_modules() == 0 }
    }

    /// `-i`: phpinfo() as text.
    pub fn print_info(&self) -> bool {
        // SAFETY: as above.
        unsafe { ffi::corral_php_print_info() == 0 }
    }
}

// The trampolines below receive `ctx` = `*mut &mut dyn RequestIo` set up by
// `io_table`, valid for the duration of the shim call that uses them. A
// panic must not unwind into C: it is caught and reported as an I/O error.

fn with_io<R>(ctx: *mut c_void, fail: R, f: impl FnOnce(&mut dyn RequestIo) -> R) -> R {
    if ctx.is_null() {
        return fail;
    }
    // SAFETY: see the comment above; ctx was made from `&mut &mut dyn RequestIo`.
    let io: &mut &mut dyn RequestIo = unsafe { &mut *(ctx as *mut &mut dyn RequestIo) };
    catch_unwind(AssertUnwindSafe(|| f(*io))).unwrap_or(fail)
}

extern "C" fn cb_read_body(ctx: *mut c_void, buf: *mut c_char, len: size_t) -> ssize_t {
    with_io(ctx, -1, |io| {
        if buf.is_null() {
            return -1;
        }
        // SAFETY: PHP hands us a writable buffer of `len` bytes.
        let slice = unsafe { std::slice::from_raw_parts_mut(buf as *mut u8, len) };
        loop {
            match io.read_body(slice) {
                Ok(n) => return n as ssize_t,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return -1,
            }
        }
    })
}

extern "C" fn cb_write_out(ctx: *mut c_void, buf: *const c_char, len: size_t) -> c_int {
    with_io(ctx, -1, |io| {
        if len == 0 {
            return 0;
        }
        if buf.is_null() {
            return -1;
        }
        // SAFETY: PHP hands us `len` readable bytes.
        let slice = unsafe { std::slice::from_raw_parts(buf as *const u8, len) };
        match io.write_out(slice) {
            Ok(()) => 0,
            Err(_) => -1,
        }
    })
}

extern "C" fn cb_flush(ctx: *mut c_void) -> c_int {
    with_io(ctx, -1, |io| if io.flush().is_ok() { 0 } else { -1 })
}

extern "C" fn cb_finish(ctx: *mut c_void) -> c_int {
    with_io(ctx, -1, |io| if io.finish().is_ok() { 0 } else { -1 })
}

extern "C" fn cb_log(
    ctx: *mut c_void,
    level: c_int,
    msg: *const c_char,
    len: size_t,
    to_fcgi: c_int,
) {
    with_io(ctx, (), |io| {
        if msg.is_null() {
            return;
        }
        // SAFETY: the shim passes `len` readable bytes.
        let slice = unsafe { std::slice::from_raw_parts(msg as *const u8, len) };
        io.log(LogLevel::from_c(level), slice, to_fcgi != 0);
    })
}

extern "C" fn cb_status(ctx: *mut c_void, buf: *mut c_char, len: size_t) -> size_t {
    with_io(ctx, 0, |io| {
        let Some(json) = io.status_json() else {
            return 0;
        };
        if !buf.is_null() && len > json.len() {
            // SAFETY: the shim passes a writable buffer of `len` bytes.
            let out = unsafe { std::slice::from_raw_parts_mut(buf as *mut u8, len) };
            out[..json.len()].copy_from_slice(&json);
        }
        json.len()
    })
}

fn io_table(io: &mut &mut dyn RequestIo) -> ffi::corral_io {
    ffi::corral_io {
        ctx: io as *mut &mut dyn RequestIo as *mut c_void,
        read_body: cb_read_body,
        write_out: cb_write_out,
        flush: cb_flush,
        finish: cb_finish,
        log: cb_log,
        status: cb_status,
    }
}
