//! The one harness every end-to-end test goes through: start the real
//! `corral` binary (or, for side-by-side comparisons, the real
//! `php-fpm8.2`) on a temporary config, wait for "ready to handle
//! connections", send FastCGI requests, read its log, stop it.
//!
//! Everything a test creates lives in its own temporary directory (config,
//! sockets, docroot copied from `tests/php/`), and TCP ports are picked free,
//! so tests run in parallel.
//!
//! Config text given to [`Corral::start`] may use placeholders:
//! * `{dir}`: the server's temporary directory (sockets go here);
//! * `{www}`: the docroot, a copy of `tests/php/` readable by every user;
//! * `{user}`: the unprivileged pool user (`nobody`);
//! * `{port}`, `{port2}`: free TCP ports on 127.0.0.1 (`{port6}`: on ::1).
//!
//! Setting `CORRAL_TEST_AGAINST=php-fpm` makes [`Corral::start`] run
//! php-fpm8.2 instead: that is how the tests themselves are checked against
//! the reference implementation.
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::ffi::CString;
use std::fs;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

pub use corral_fastcgi::{Client, Request, Response};

/// The reference implementation we are compatible with.
pub const PHP_FPM: &str = "/usr/sbin/php-fpm8.2";

/// How long a server may take to report "ready to handle connections".
pub const READY_TIMEOUT: Duration = Duration::from_secs(20);

/// Per-request socket timeout, so a hung server fails the test instead of
/// hanging it.
pub const IO_TIMEOUT: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------- skipping

/// True when running as root.
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Prints a skip notice past the test harness's output capture (the print
/// macros are captured; a direct write to stderr is not), so skipped tests
/// show in CI logs.
pub fn skip(why: &str) {
    let name = thread::current().name().unwrap_or("?").to_string();
    let _ = writeln!(io::stderr(), "SKIPPED {name}: {why}");
}

/// Returns false (and says why) when not root; tests `return` on false.
pub fn require_root() -> bool {
    if !is_root() {
        skip("needs root (run `sudo scripts/test.sh`)");
        return false;
    }
    true
}

/// Finds an executable in PATH (or an absolute path); prints a skip
/// message and returns None when absent.
pub fn require_bin(name: &str) -> Option<PathBuf> {
    let found = find_bin(name);
    if found.is_none() {
        skip(&format!("`{name}` is not installed (run scripts/setup.sh)"));
    }
    found
}

fn find_bin(name: &str) -> Option<PathBuf> {
    let is_exec = |p: &Path| {
        fs::metadata(p)
            .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
            .unwrap_or(false)
    };
    if name.contains('/') {
        let p = PathBuf::from(name);
        return is_exec(&p).then_some(p);
    }
    let path = std::env::var("PATH").unwrap_or_default();
    let found = path
        .split(':')
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"])
        .map(|d| Path::new(d).join(name))
        .find(|p| is_exec(p));
    found
}

/// php-fpm8.2, or None with a skip message.
pub fn require_php_fpm() -> Option<PathBuf> {
    require_bin(PHP_FPM)
}

/// True if the loopback has IPv6.
pub fn have_ipv6() -> bool {
    TcpListener::bind("[::1]:0").is_ok()
}

// ---------------------------------------------------------------- paths

/// The workspace root (two levels above this crate).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("workspace root")
}

/// `tests/php/`: the PHP fixtures.
pub fn fixtures_dir() -> PathBuf {
    workspace_root().join("tests/php")
}

pub fn corral_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_corral"))
}

fn copy_tree(from: &Path, to: &Path) -> io::Result<()> {
    fs::create_dir_all(to)?;
    fs::set_permissions(to, fs::Permissions::from_mode(0o755))?;
    for entry in fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_tree(&entry.path(), &target)?;
        } else {
            fs::copy(entry.path(), &target)?;
            fs::set_permissions(&target, fs::Permissions::from_mode(0o644))?;
        }
    }
    Ok(())
}

/// A fresh temporary directory everyone may enter (pool users are not the
/// test's user).
pub fn temp_dir(tag: &str) -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix(&format!("corral-test-{tag}-"))
        .tempdir()
        .expect("create temp dir");
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).expect("chmod temp dir");
    dir
}

/// A docroot: a private copy of `tests/php/`, world-readable. Share one
/// between a corral and a php-fpm to compare paths byte for byte.
pub struct Site {
    dir: tempfile::TempDir,
}

impl Site {
    pub fn new() -> Site {
        let dir = temp_dir("site");
        copy_tree(&fixtures_dir(), &dir.path().join("www")).expect("copy tests/php");
        Site { dir }
    }

    /// The docroot (`{www}`).
    pub fn www(&self) -> PathBuf {
        self.dir.path().join("www")
    }

    /// Absolute path of a script in the docroot.
    pub fn script(&self, name: &str) -> String {
        self.www().join(name).display().to_string()
    }
}

impl Default for Site {
    fn default() -> Self {
        Site::new()
    }
}

/// A TCP port that was free a moment ago on `host`.
pub fn free_port_on(host: &str) -> u16 {
    TcpListener::bind(format!("{host}:0"))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("pick a free port")
}

pub fn free_port() -> u16 {
    free_port_on("127.0.0.1")
}

// ---------------------------------------------------------------- connecting

/// Where a pool listens, as parsed from a `listen =` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Listen {
    Unix(PathBuf),
    Tcp(SocketAddr),
}

impl Listen {
    pub fn parse(value: &str) -> Listen {
        let value = value.trim();
        if value.starts_with('/') {
            return Listen::Unix(PathBuf::from(value));
        }
        if value.bytes().all(|b| b.is_ascii_digit()) {
            return Listen::Tcp(format!("127.0.0.1:{value}").parse().expect("port"));
        }
        let addr = value
            .to_socket_addrs()
            .ok()
            .and_then(|mut a| a.next())
            .unwrap_or_else(|| panic!("cannot resolve listen address {value:?}"));
        Listen::Tcp(addr)
    }

    pub fn connect(&self) -> io::Result<Conn> {
        let conn = match self {
            Listen::Unix(p) => Conn::Unix(UnixStream::connect(p)?),
            Listen::Tcp(a) => Conn::Tcp(TcpStream::connect_timeout(a, Duration::from_secs(10))?),
        };
        conn.set_timeout(Some(IO_TIMEOUT))?;
        Ok(conn)
    }
}

/// A connected FastCGI stream of either kind.
#[derive(Debug)]
pub enum Conn {
    Unix(UnixStream),
    Tcp(TcpStream),
}

impl Conn {
    pub fn set_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        match self {
            Conn::Unix(s) => {
                s.set_read_timeout(t)?;
                s.set_write_timeout(t)
            }
            Conn::Tcp(s) => {
                s.set_read_timeout(t)?;
                s.set_write_timeout(t)
            }
        }
    }

    pub fn shutdown_write(&self) -> io::Result<()> {
        match self {
            Conn::Unix(s) => s.shutdown(std::net::Shutdown::Write),
            Conn::Tcp(s) => s.shutdown(std::net::Shutdown::Write),
        }
    }
}

impl Read for Conn {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Conn::Unix(s) => s.read(buf),
            Conn::Tcp(s) => s.read(buf),
        }
    }
}

impl Write for Conn {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Conn::Unix(s) => s.write(buf),
            Conn::Tcp(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Conn::Unix(s) => s.flush(),
            Conn::Tcp(s) => s.flush(),
        }
    }
}

/// What a test usually wants from one FastCGI request.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
    /// FCGI_STDERR of the request.
    pub stderr: String,
    pub app_status: u32,
    pub protocol_status: u8,
    pub raw: Response,
}

impl Reply {
    pub fn from_response(raw: Response) -> Reply {
        let cgi = raw.cgi().unwrap_or_else(|e| {
            panic!(
                "not a CGI response ({e}): stdout={:?} stderr={:?}",
                String::from_utf8_lossy(&raw.stdout),
                String::from_utf8_lossy(&raw.stderr)
            )
        });
        Reply {
            status: cgi.status,
            headers: cgi.headers.clone(),
            body: String::from_utf8_lossy(&cgi.body).into_owned(),
            stderr: String::from_utf8_lossy(&raw.stderr).into_owned(),
            app_status: raw.app_status,
            protocol_status: raw.protocol_status,
            raw,
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn header_all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// `key=value` lines of the body (the fixtures' output format).
    pub fn kv(&self, key: &str) -> Option<String> {
        let prefix = format!("{key}=");
        self.body
            .lines()
            .find_map(|l| l.strip_prefix(&prefix).map(str::to_string))
    }
}

/// One request on a fresh connection.
pub fn request_on(listen: &Listen, req: &Request) -> io::Result<Reply> {
    let conn = listen.connect()?;
    let mut client = Client::new(conn);
    client.request(req).map(Reply::from_response)
}

// ---------------------------------------------------------------- servers

/// Which implementation a [`Server`] runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Corral,
    PhpFpm,
}

/// Log lines collected from the server's stderr.
#[derive(Clone, Default)]
pub struct LogBuffer(Arc<Mutex<Vec<String>>>);

impl LogBuffer {
    pub fn lines(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }
    pub fn text(&self) -> String {
        self.lines().join("\n")
    }
    pub fn contains(&self, pat: &str) -> bool {
        self.0.lock().unwrap().iter().any(|l| l.contains(pat))
    }
    fn push(&self, line: String) {
        self.0.lock().unwrap().push(line);
    }
}

fn capture(stream: impl Read + Send + 'static, buf: LogBuffer, tag: &'static str) {
    thread::spawn(move || {
        let mut reader = BufReader::new(stream);
        let mut line = Vec::new();
        loop {
            line.clear();
            match reader.read_until(b'\n', &mut line) {
                Ok(0) | Err(_) => return,
                Ok(_) => {
                    let text = String::from_utf8_lossy(&line).trim_end().to_string();
                    eprintln!("[{tag}] {text}");
                    buf.push(text);
                }
            }
        }
    });
}

/// Substitutes `{dir}`, `{www}`, `{user}`, `{port}`, `{port2}`, `{port6}`.
pub struct Placeholders {
    pub dir: PathBuf,
    pub www: PathBuf,
    pub port: u16,
    pub port2: u16,
    pub port6: u16,
}

impl Placeholders {
    pub fn apply(&self, text: &str) -> String {
        let mut out = text
            .replace("{dir}", &self.dir.display().to_string())
            .replace("{www}", &self.www.display().to_string())
            .replace("{user}", "nobody");
        if out.contains("{port}") {
            out = out.replace("{port}", &self.port.to_string());
        }
        if out.contains("{port2}") {
            out = out.replace("{port2}", &self.port2.to_string());
        }
        if out.contains("{port6}") {
            out = out.replace("{port6}", &self.port6.to_string());
        }
        out
    }
}

/// A running corral or php-fpm.
pub struct Server {
    pub kind: Kind,
    child: Option<Child>,
    pid: i32,
    /// Temporary directory with the config and sockets (`{dir}`).
    dir: tempfile::TempDir,
    /// Docroot: our own, or shared with another server.
    own_site: Option<Site>,
    www: PathBuf,
    pub conf_path: PathBuf,
    pub conf_text: String,
    pub log: LogBuffer,
    /// Every `listen =` of the config, in order.
    pub listens: Vec<Listen>,
    pub placeholders: Placeholders,
}

/// The common case: one pool `www` listening on `{dir}/www.sock`, run by
/// `{user}`, `pm = static` with 2 children; `extra` lines are added to the
/// pool section and replace these defaults when they set the same key.
pub fn pool_conf(extra: &str) -> String {
    let defaults = [
        ("listen", "{dir}/www.sock"),
        ("user", "{user}"),
        ("pm", "static"),
        ("pm.max_children", "2"),
    ];
    let keys: Vec<String> = extra
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, _)| k.trim().to_ascii_lowercase())
        .collect();
    let mut out = String::from("[global]\nerror_log = {dir}/error.log\n\n[www]\n");
    for (k, v) in defaults {
        if !keys.iter().any(|x| x == k) {
            out.push_str(&format!("{k} = {v}\n"));
        }
    }
    out.push_str(extra);
    out.push('\n');
    out
}

/// One cgroup subtree per test server, named after its temp directory.
fn cgroup_subtree(dir: &Path) -> String {
    dir.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| format!("corral-test-{}", std::process::id()))
}

/// Starts corral (`env!("CARGO_BIN_EXE_corral")`).
pub struct Corral;

impl Corral {
    /// Starts corral on `conf` (placeholders substituted) with its own docroot.
    pub fn start(conf: &str) -> Server {
        Server::start(Self::kind(), conf, None, &[])
    }

    /// Like [`Corral::start`] but serving `site` (e.g. shared with php-fpm).
    pub fn start_site(conf: &str, site: &Site) -> Server {
        Server::start(Self::kind(), conf, Some(site.www()), &[])
    }

    /// With extra command-line arguments.
    pub fn start_args(conf: &str, args: &[&str]) -> Server {
        Server::start(Self::kind(), conf, None, args)
    }

    /// Starts and returns Err(log) instead of panicking when the server
    /// does not become ready.
    pub fn try_start(conf: &str) -> Result<Server, String> {
        Server::try_start(Self::kind(), conf, None, &[])
    }

    /// Without `-O`: logs go to the config's error_log only (which must be
    /// `{dir}/error.log` for the harness to see "ready").
    pub fn start_log_to_file(conf: &str) -> Server {
        match Server::try_start_with(Self::kind(), conf, None, &[], &[], false) {
            Ok(s) => s,
            Err(msg) => panic!("{msg}"),
        }
    }

    /// With extra environment variables for the master.
    pub fn start_env(conf: &str, envs: &[(&str, &str)]) -> Server {
        match Server::try_start_env(Self::kind(), conf, None, &[], envs) {
            Ok(s) => s,
            Err(msg) => panic!("{msg}"),
        }
    }

    fn kind() -> Kind {
        match std::env::var("CORRAL_TEST_AGAINST").as_deref() {
            Ok("php-fpm") => Kind::PhpFpm,
            _ => Kind::Corral,
        }
    }
}

/// Starts the real php-fpm8.2 (callers check [`require_php_fpm`] first).
pub struct PhpFpm;

impl PhpFpm {
    pub fn start(conf: &str) -> Server {
        Server::start(Kind::PhpFpm, conf, None, &[])
    }
    pub fn start_site(conf: &str, site: &Site) -> Server {
        Server::start(Kind::PhpFpm, conf, Some(site.www()), &[])
    }
}

impl Server {
    pub fn start(kind: Kind, conf: &str, www: Option<PathBuf>, args: &[&str]) -> Server {
        match Self::try_start(kind, conf, www, args) {
            Ok(s) => s,
            Err(msg) => panic!("{msg}"),
        }
    }

    pub fn try_start(
        kind: Kind,
        conf: &str,
        www: Option<PathBuf>,
        args: &[&str],
    ) -> Result<Server, String> {
        Self::try_start_env(kind, conf, www, args, &[])
    }

    /// Like [`Server::try_start`] with extra environment variables for the
    /// master (e.g. `NOTIFY_SOCKET`).
    pub fn try_start_env(
        kind: Kind,
        conf: &str,
        www: Option<PathBuf>,
        args: &[&str],
        envs: &[(&str, &str)],
    ) -> Result<Server, String> {
        Self::try_start_with(kind, conf, www, args, envs, true)
    }

    /// The general form. `force_stderr = false` leaves out `-O`: the master
    /// then logs to the config's error_log (for log-file tests), and
    /// readiness is also looked for in `{dir}/error.log`.
    pub fn try_start_with(
        kind: Kind,
        conf: &str,
        www: Option<PathBuf>,
        args: &[&str],
        envs: &[(&str, &str)],
        force_stderr: bool,
    ) -> Result<Server, String> {
        let dir = temp_dir(match kind {
            Kind::Corral => "corral",
            Kind::PhpFpm => "fpm",
        });
        let (own_site, www) = match www {
            Some(w) => (None, w),
            None => {
                let site = Site::new();
                let w = site.www();
                (Some(site), w)
            }
        };
        let placeholders = Placeholders {
            dir: dir.path().to_path_buf(),
            www: www.clone(),
            port: free_port(),
            port2: free_port(),
            port6: if have_ipv6() {
                free_port_on("[::1]")
            } else {
                0
            },
        };
        let conf_text = placeholders.apply(conf);
        let conf_path = dir.path().join("php-fpm.conf");
        fs::write(&conf_path, &conf_text).expect("write config");
        let listens = conf_text
            .lines()
            .filter_map(|l| {
                let l = l.trim();
                let (k, v) = l.split_once('=')?;
                (k.trim().eq_ignore_ascii_case("listen")).then(|| Listen::parse(v))
            })
            .collect();

        let program = match kind {
            Kind::Corral => corral_bin(),
            Kind::PhpFpm => PathBuf::from(PHP_FPM),
        };
        let mut cmd = Command::new(&program);
        cmd.arg("-F");
        if force_stderr {
            cmd.arg("-O");
        }
        cmd.arg("-y").arg(&conf_path);
        if kind == Kind::Corral {
            // corral's own control socket defaults to one path per host
            // (/run/corral/control.sock as root); tests run many masters.
            cmd.arg("--control-socket")
                .arg(dir.path().join("control.sock"));
            // The same for the pools' cgroups (`corral` under the master's
            // own cgroup by default): a master empties its subtree at start.
            cmd.arg("--cgroup-subtree").arg(cgroup_subtree(dir.path()));
        }
        cmd.args(args);
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .current_dir(dir.path())
            // For env[X] = $CORRAL_TEST_MARKER and clear_env tests.
            .env("CORRAL_TEST_MARKER", "from-master")
            .envs(envs.iter().copied())
            // Own process group: Drop can then kill stragglers (workers)
            // of exactly this server and nothing else.
            .process_group(0);
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", program.display()))?;
        let pid = child.id() as i32;
        let log = LogBuffer::default();
        let tag = match kind {
            Kind::Corral => "corral",
            Kind::PhpFpm => "php-fpm",
        };
        capture(child.stderr.take().unwrap(), log.clone(), tag);
        capture(child.stdout.take().unwrap(), log.clone(), tag);
        let mut server = Server {
            kind,
            child: Some(child),
            pid,
            dir,
            own_site,
            www,
            conf_path,
            conf_text,
            log,
            listens,
            placeholders,
        };
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if server.log.contains("ready to handle connections") {
                return Ok(server);
            }
            if !force_stderr
                && fs::read_to_string(server.dir.path().join("error.log"))
                    .is_ok_and(|t| t.contains("ready to handle connections"))
            {
                return Ok(server);
            }
            if let Some(status) = server.try_wait() {
                thread::sleep(Duration::from_millis(100));
                return Err(format!(
                    "{tag} exited ({status}) before it was ready; config:\n{}\nlog:\n{}",
                    server.conf_text,
                    server.log.text()
                ));
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "{tag} not ready after {READY_TIMEOUT:?}; config:\n{}\nlog:\n{}",
                    server.conf_text,
                    server.log.text()
                ));
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// The cgroup under the master's own that holds this corral's pools.
    pub fn cgroup_subtree(&self) -> String {
        cgroup_subtree(self.dir.path())
    }

    /// `{dir}/control.sock`: where the harness tells corral to listen for
    /// `corral reload` / `corral status`.
    pub fn control_socket(&self) -> PathBuf {
        self.dir.path().join("control.sock")
    }

    /// Runs `corral ARGS... --control-socket {dir}/control.sock` (e.g.
    /// `["reload", "a"]`, `["status", "--json"]`) against this master.
    pub fn control(&self, args: &[&str]) -> Output {
        let sock = self.control_socket().display().to_string();
        let mut all: Vec<&str> = args.to_vec();
        all.push("--control-socket");
        all.push(&sock);
        run_cmd(&corral_bin(), &all)
    }

    /// Rewrites the config file (placeholders substituted) without
    /// reloading; `conf_text` follows.
    pub fn rewrite_config(&mut self, conf: &str) {
        let text = self.placeholders.apply(conf);
        fs::write(&self.conf_path, &text).expect("rewrite config");
        self.conf_text = text;
    }

    /// A request for a script (a file name in the docroot) with `query`,
    /// sent to the `n`th listen; I/O errors are returned.
    pub fn try_get_to(&self, n: usize, script: &str, query: &str) -> io::Result<Reply> {
        let req = Request::php(&self.script(script))
            .document_root(&self.www.display().to_string())
            .query(query);
        request_on(&self.listens[n], &req)
    }

    /// Log lines after the first `skip` ones (to look only at what a step
    /// logged).
    pub fn log_since(&self, skip: usize) -> Vec<String> {
        self.log.lines().into_iter().skip(skip).collect()
    }

    /// The master's pid.
    pub fn pid(&self) -> i32 {
        self.pid
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The docroot (`{www}`).
    pub fn www(&self) -> &Path {
        &self.www
    }

    /// Absolute path of a script in the docroot.
    pub fn script(&self, name: &str) -> String {
        self.www.join(name).display().to_string()
    }

    /// The first pool's address.
    pub fn listen(&self) -> &Listen {
        self.listens.first().expect("config has a listen line")
    }

    /// One request on a fresh connection to the first pool; panics on I/O
    /// errors (with the server log).
    pub fn request(&self, req: &Request) -> Reply {
        self.request_to(0, req)
    }

    /// One request to the `n`th `listen` of the config.
    pub fn request_to(&self, n: usize, req: &Request) -> Reply {
        match request_on(&self.listens[n], req) {
            Ok(r) => r,
            Err(e) => panic!(
                "request to {:?} failed: {e}\nserver log:\n{}",
                self.listens[n],
                self.log.text()
            ),
        }
    }

    /// Like [`Server::request`] but returns the I/O error.
    pub fn try_request(&self, req: &Request) -> io::Result<Reply> {
        request_on(self.listen(), req)
    }

    /// GET `script` (a file name in the docroot) with `query`.
    pub fn get(&self, script: &str, query: &str) -> Reply {
        let req = Request::php(&self.script(script))
            .document_root(&self.www.display().to_string())
            .query(query);
        self.request(&req)
    }

    pub fn log_contains(&self, pat: &str) -> bool {
        self.log.contains(pat)
    }

    /// Waits until a log line contains `pat`; returns that line.
    pub fn wait_log(&self, pat: &str, timeout: Duration) -> Option<String> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(l) = self.log.lines().into_iter().find(|l| l.contains(pat)) {
                return Some(l);
            }
            if Instant::now() > deadline {
                return None;
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Like [`Server::wait_log`] but panics with the log on timeout.
    pub fn expect_log(&self, pat: &str, timeout: Duration) -> String {
        self.wait_log(pat, timeout).unwrap_or_else(|| {
            panic!(
                "no log line containing {pat:?} within {timeout:?}; log:\n{}",
                self.log.text()
            )
        })
    }

    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        self.child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
    }

    /// True while the master process exists and is not a zombie.
    pub fn is_running(&mut self) -> bool {
        self.try_wait().is_none()
    }

    /// Sends `sig` to the master.
    pub fn signal(&self, sig: i32) {
        // SAFETY: kill with a pid we spawned ourselves.
        unsafe {
            libc::kill(self.pid, sig);
        }
    }

    /// SIGTERM, then waits (≤ 15 s, then SIGKILL). Returns the exit status.
    pub fn stop(&mut self) -> ExitStatus {
        self.stop_with(libc::SIGTERM, Duration::from_secs(15))
    }

    pub fn stop_with(&mut self, sig: i32, timeout: Duration) -> ExitStatus {
        let Some(mut child) = self.child.take() else {
            panic!("server already stopped");
        };
        if child.try_wait().ok().flatten().is_none() {
            self.signal(sig);
        }
        let deadline = Instant::now() + timeout;
        let status = loop {
            if let Ok(Some(status)) = child.try_wait() {
                break status;
            }
            if Instant::now() > deadline {
                eprintln!("server did not stop within {timeout:?}, killing");
                let _ = child.kill();
                break child.wait().expect("wait");
            }
            thread::sleep(Duration::from_millis(20));
        };
        self.kill_group();
        // Let the capture threads drain what was written last.
        thread::sleep(Duration::from_millis(100));
        status
    }

    fn kill_group(&self) {
        // SAFETY: signals only the process group we created (pgid = pid
        // of the server we spawned); workers left behind die with it.
        unsafe {
            libc::kill(-self.pid, libc::SIGKILL);
        }
    }

    // ------------------------------------------------------ process tree

    /// All live descendants of the master (its zygote left out: it is
    /// not a pool's process).
    pub fn descendants(&self) -> Vec<i32> {
        let table = process_table();
        let mut out = Vec::new();
        let mut frontier = vec![self.pid];
        while let Some(p) = frontier.pop() {
            for &(pid, ppid, _) in &table {
                if ppid == p && !is_zygote(pid) {
                    out.push(pid);
                    frontier.push(pid);
                }
            }
        }
        out
    }

    /// The PHP worker processes: php-fpm forks them from the master; corral
    /// from a per-pool prototype (a child of the master), so they are the
    /// master's grandchildren.
    pub fn worker_pids(&self) -> Vec<i32> {
        let table = process_table();
        let children: Vec<i32> = table
            .iter()
            .filter(|(_, ppid, st)| *ppid == self.pid && *st != 'Z')
            .map(|(p, _, _)| *p)
            .filter(|&p| !is_zygote(p))
            .collect();
        let mut out: Vec<i32> = match self.kind {
            Kind::PhpFpm => children,
            Kind::Corral => table
                .iter()
                .filter(|(_, ppid, st)| children.contains(ppid) && *st != 'Z')
                .map(|(p, _, _)| *p)
                .collect(),
        };
        out.sort();
        out
    }

    /// Waits until `pred(worker count)` holds; returns the last count.
    pub fn wait_workers(&self, timeout: Duration, pred: impl Fn(usize) -> bool) -> usize {
        let deadline = Instant::now() + timeout;
        loop {
            let n = self.worker_pids().len();
            if pred(n) || Instant::now() > deadline {
                return n;
            }
            thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            if child.try_wait().ok().flatten().is_none() {
                self.signal(libc::SIGTERM);
                let deadline = Instant::now() + Duration::from_secs(5);
                while Instant::now() < deadline {
                    if let Ok(Some(_)) = child.try_wait() {
                        break;
                    }
                    thread::sleep(Duration::from_millis(20));
                }
                let _ = child.kill();
                let _ = child.wait();
            }
            self.kill_group();
        }
    }
}

/// (pid, ppid, state) of every process, from /proc.
pub fn process_table() -> Vec<(i32, i32, char)> {
    let mut out = Vec::new();
    let Ok(entries) = fs::read_dir("/proc") else {
        return out;
    };
    for e in entries.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // "pid (comm) S ppid ...": comm may contain spaces and parens.
        let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
            continue;
        };
        let mut fields = rest.split_whitespace();
        let state = fields.next().and_then(|s| s.chars().next()).unwrap_or('?');
        let ppid = fields.next().and_then(|s| s.parse().ok()).unwrap_or(0);
        out.push((pid, ppid, state));
    }
    out
}

/// True if `pid` exists and is not a zombie.
pub fn pid_alive(pid: i32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rfind(')')
            .and_then(|i| stat[i + 1..].split_whitespace().next())
            .map(|s| s != "Z" && s != "X")
            .unwrap_or(false),
        Err(_) => false,
    }
}

/// Sends a signal to a pid the test found in the server's process tree.
pub fn kill(pid: i32, sig: i32) {
    // SAFETY: plain kill(2) on a pid belonging to a server this test started.
    let rc = unsafe { libc::kill(pid, sig) };
    assert_eq!(
        rc,
        0,
        "kill({pid}, {sig}) failed: {}",
        io::Error::last_os_error()
    );
}

// ---------------------------------------------------------------- running the binary

/// Output of a short command run (e.g. `corral -v`).
pub struct Output {
    pub status: ExitStatus,
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    pub fn all(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
}

/// Runs `program args` to completion (≤ 60 s).
pub fn run_cmd(program: &Path, args: &[&str]) -> Output {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", program.display()));
    let mut out_pipe = child.stdout.take().unwrap();
    let mut err_pipe = child.stderr.take().unwrap();
    let out_t = thread::spawn(move || {
        let mut s = Vec::new();
        let _ = out_pipe.read_to_end(&mut s);
        s
    });
    let err_t = thread::spawn(move || {
        let mut s = Vec::new();
        let _ = err_pipe.read_to_end(&mut s);
        s
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Ok(Some(s)) = child.try_wait() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("{} {args:?} did not exit within 60 s", program.display());
        }
        thread::sleep(Duration::from_millis(20));
    };
    let stdout = String::from_utf8_lossy(&out_t.join().unwrap()).into_owned();
    let stderr = String::from_utf8_lossy(&err_t.join().unwrap()).into_owned();
    Output {
        status,
        code: status.code(),
        stdout,
        stderr,
    }
}

/// Runs corral (or php-fpm8.2 under `CORRAL_TEST_AGAINST=php-fpm`).
pub fn run_corral(args: &[&str]) -> Output {
    match Corral::kind() {
        Kind::Corral => run_cmd(&corral_bin(), args),
        Kind::PhpFpm => run_cmd(Path::new(PHP_FPM), args),
    }
}

// ---------------------------------------------------------------- users

static USER_LOCK: Mutex<()> = Mutex::new(());

/// uid of `name`, if the user exists.
pub fn uid_of(name: &str) -> Option<u32> {
    let c = CString::new(name).ok()?;
    // SAFETY: getpwnam with a valid C string; the result is read at once
    // (the user lock serialises our own calls).
    unsafe {
        let pw = libc::getpwnam(c.as_ptr());
        if pw.is_null() {
            None
        } else {
            Some((*pw).pw_uid)
        }
    }
}

pub fn gid_of_group(name: &str) -> Option<u32> {
    let c = CString::new(name).ok()?;
    // SAFETY: getgrnam with a valid C string; the result is read at once.
    unsafe {
        let gr = libc::getgrnam(c.as_ptr());
        if gr.is_null() {
            None
        } else {
            Some((*gr).gr_gid)
        }
    }
}

/// Creates a system user (no home, no shell) if missing; root only.
/// Returns its uid.
pub fn ensure_system_user(name: &str) -> u32 {
    let _guard = USER_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(uid) = uid_of(name) {
        return uid;
    }
    let status = Command::new("useradd")
        .args([
            "--system",
            "--no-create-home",
            "--home-dir",
            "/nonexistent",
            "--shell",
            "/usr/sbin/nologin",
            "--user-group",
            name,
        ])
        .status()
        .expect("run useradd");
    match uid_of(name) {
        Some(uid) => uid,
        None => panic!("useradd {name} failed: {status}"),
    }
}

// ---------------------------------------------------------------- nginx

/// A real nginx (no daemon, no master process) with its own config, pid
/// file and logs in a temp dir, listening on 127.0.0.1:{port}.
pub struct Nginx {
    child: Option<Child>,
    dir: tempfile::TempDir,
    pub port: u16,
    pub log: LogBuffer,
}

impl Nginx {
    /// `server_body` is the inside of a `server { }` block; it may use
    /// `{dir}` (nginx's temp dir) and the `listen` line is added here.
    /// Returns None (with a skip message) when nginx is not installed.
    pub fn start(server_body: &str) -> Option<Nginx> {
        let nginx = require_bin("nginx")?;
        let dir = temp_dir("nginx");
        let port = free_port();
        let d = dir.path().display().to_string();
        let body = server_body.replace("{dir}", &d);
        let conf = format!(
            "daemon off;\n\
             master_process off;\n\
             worker_processes 1;\n\
             pid {d}/nginx.pid;\n\
             error_log {d}/error.log info;\n\
             events {{ worker_connections 128; }}\n\
             http {{\n\
             \x20 access_log {d}/access.log;\n\
             \x20 client_body_temp_path {d}/client_body;\n\
             \x20 fastcgi_temp_path {d}/fastcgi;\n\
             \x20 proxy_temp_path {d}/proxy;\n\
             \x20 uwsgi_temp_path {d}/uwsgi;\n\
             \x20 scgi_temp_path {d}/scgi;\n\
             \x20 default_type application/octet-stream;\n\
             \x20 server {{\n\
             \x20   listen 127.0.0.1:{port};\n\
             \x20   server_name localhost;\n\
             {body}\n\
             \x20 }}\n\
             }}\n"
        );
        let conf_path = dir.path().join("nginx.conf");
        fs::write(&conf_path, conf).expect("write nginx.conf");
        let mut child = Command::new(&nginx)
            .arg("-p")
            .arg(dir.path())
            .arg("-e")
            .arg(dir.path().join("error.log"))
            .arg("-c")
            .arg(&conf_path)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()
            .expect("start nginx");
        let log = LogBuffer::default();
        capture(child.stderr.take().unwrap(), log.clone(), "nginx");
        capture(child.stdout.take().unwrap(), log.clone(), "nginx");
        let mut n = Nginx {
            child: Some(child),
            dir,
            port,
            log,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Some(n);
            }
            if let Some(Ok(Some(status))) = n.child.as_mut().map(|c| c.try_wait()) {
                panic!(
                    "nginx exited ({status}): {}\n{}",
                    n.log.text(),
                    n.error_log()
                );
            }
            if Instant::now() > deadline {
                panic!("nginx did not listen on {port}: {}", n.error_log());
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn error_log(&self) -> String {
        fs::read_to_string(self.dir.path().join("error.log")).unwrap_or_default()
    }

    pub fn get(&self, path: &str) -> HttpResponse {
        self.http("GET", path, &[], b"")
    }

    pub fn post_form(&self, path: &str, body: &str) -> HttpResponse {
        self.http(
            "POST",
            path,
            &[("Content-Type", "application/x-www-form-urlencoded")],
            body.as_bytes(),
        )
    }

    pub fn http(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> HttpResponse {
        http_request(("127.0.0.1", self.port), method, path, headers, body)
            .unwrap_or_else(|e| panic!("HTTP {method} {path}: {e}\n{}", self.error_log()))
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

#[derive(Debug, Clone)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl HttpResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A minimal HTTP/1.0 client: one request, read to EOF.
pub fn http_request(
    addr: impl ToSocketAddrs,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> io::Result<HttpResponse> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(IO_TIMEOUT))?;
    let mut req = format!("{method} {path} HTTP/1.0\r\nHost: localhost\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    if !body.is_empty() || method == "POST" || method == "PUT" {
        req.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes())?;
    s.write_all(body)?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("no header end: {text:?}"),
        )
    })?;
    let mut lines = head.lines();
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("bad status line {status_line:?}"),
            )
        })?;
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    Ok(HttpResponse {
        status,
        headers,
        body: body.to_string(),
    })
}

// ---------------------------------------------------------------- comparing

/// Line diff for assertion messages: lines only in `a` and only in `b`.
pub fn line_diff(a: &str, b: &str) -> String {
    let la: BTreeSet<&str> = a.lines().collect();
    let lb: BTreeSet<&str> = b.lines().collect();
    let mut out = String::new();
    for l in la.difference(&lb) {
        out.push_str(&format!("- {l}\n"));
    }
    for l in lb.difference(&la) {
        out.push_str(&format!("+ {l}\n"));
    }
    out
}

/// Asserts two texts are equal, showing a line diff (`-` corral, `+` php-fpm).
#[track_caller]
pub fn assert_same(what: &str, corral: &str, fpm: &str) {
    if corral != fpm {
        panic!(
            "{what}: corral and php-fpm differ\n(- corral, + php-fpm)\n{}\n--- corral:\n{corral}\n--- php-fpm:\n{fpm}",
            line_diff(corral, fpm)
        );
    }
}

/// Waits until `path` contains `pat`; returns the file's text.
#[allow(dead_code)]
pub fn wait_file(path: &Path, pat: &str, timeout: Duration) -> Option<String> {
    let deadline = Instant::now() + timeout;
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        if text.contains(pat) {
            return Some(text);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

// ---------------------------------------------------------------- faults

/// One request on a fresh connection with its own I/O timeout. Never
/// panics: an I/O error or a reply that is not CGI is an `Err` with the
/// reason (for background load and fault tests).
pub fn request_timeout(listen: &Listen, req: &Request, timeout: Duration) -> Result<Reply, String> {
    let conn = listen.connect().map_err(|e| format!("connect: {e}"))?;
    conn.set_timeout(Some(timeout))
        .map_err(|e| format!("set timeout: {e}"))?;
    let mut client = Client::new(conn);
    let raw = client.request(req).map_err(|e| format!("request: {e}"))?;
    if let Err(e) = raw.cgi() {
        return Err(format!(
            "not a CGI response ({e}): stdout={:?}",
            String::from_utf8_lossy(&raw.stdout)
        ));
    }
    Ok(Reply::from_response(raw))
}

/// A GET for `script` (a path under `www`) with `query`, as nginx sends it.
pub fn script_request(www: &Path, script: &str, query: &str) -> Request {
    Request::php(&www.join(script).display().to_string())
        .document_root(&www.display().to_string())
        .query(query)
}

/// What one request of a [`Load`] got.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub start: Instant,
    pub end: Instant,
    /// The body of a 200 reply, or why it was not one.
    pub result: Result<String, String>,
}

/// Background clients sending one request after another to one address,
/// each with its own timeout, for at most `max` (loads stay bounded even
/// when a test panics before stopping them).
pub struct Load {
    stop: Arc<std::sync::atomic::AtomicBool>,
    threads: Vec<thread::JoinHandle<()>>,
    outcomes: Arc<Mutex<Vec<Outcome>>>,
}

impl Load {
    pub fn start(
        listen: &Listen,
        req: &Request,
        clients: usize,
        timeout: Duration,
        pause: Duration,
        max: Duration,
    ) -> Load {
        use std::sync::atomic::{AtomicBool, Ordering};
        let stop = Arc::new(AtomicBool::new(false));
        let outcomes = Arc::new(Mutex::new(Vec::new()));
        let until = Instant::now() + max;
        let threads = (0..clients)
            .map(|_| {
                let (stop, outcomes, listen, req) =
                    (stop.clone(), outcomes.clone(), listen.clone(), req.clone());
                thread::spawn(move || {
                    while !stop.load(Ordering::Relaxed) && Instant::now() < until {
                        let start = Instant::now();
                        let result = match request_timeout(&listen, &req, timeout) {
                            Ok(r) if r.status == 200 => Ok(r.body),
                            Ok(r) => Err(format!("status {}: {:?}", r.status, r.body)),
                            Err(e) => Err(e),
                        };
                        let end = Instant::now();
                        outcomes
                            .lock()
                            .unwrap()
                            .push(Outcome { start, end, result });
                        thread::sleep(pause);
                    }
                })
            })
            .collect();
        Load {
            stop,
            threads,
            outcomes,
        }
    }

    /// Everything so far, in completion order.
    pub fn outcomes(&self) -> Vec<Outcome> {
        self.outcomes.lock().unwrap().clone()
    }

    /// Failed requests that ended after `t`.
    pub fn failures_since(&self, t: Instant) -> Vec<Outcome> {
        self.outcomes()
            .into_iter()
            .filter(|o| o.end >= t && o.result.is_err())
            .collect()
    }

    /// Stops the clients and returns every outcome.
    pub fn stop(mut self) -> Vec<Outcome> {
        self.halt();
        self.outcomes()
    }

    fn halt(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        self.halt();
    }
}

/// (state, ppid, start time in clock ticks) of `pid`, from /proc/PID/stat.
pub fn proc_stat(pid: i32) -> Option<(char, i32, u64)> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // After "(comm)": state ppid pgrp session tty tpgid flags minflt
    // cminflt majflt cmajflt utime stime cutime cstime priority nice
    // num_threads itrealvalue starttime.
    Some((
        f.first()?.chars().next()?,
        f.get(1)?.parse().ok()?,
        f.get(19)?.parse().ok()?,
    ))
}

/// Real uid of `pid`.
pub fn uid_of_pid(pid: i32) -> Option<u32> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

/// Whether `pid` is a master's zygote (`corral: zygote`), the root
/// process that forks prototypes: not a pool's process.
pub fn is_zygote(pid: i32) -> bool {
    // Prefix: before it rewrites its title, a fresh zygote still shows
    // the padding it was exec'd with.
    fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| c.starts_with(b"corral: zygote\0"))
}

/// Live (not zombie) children of `pid`, a master's zygote left out (tests
/// that look for it use [`is_zygote`]).
pub fn children_of(pid: i32) -> Vec<i32> {
    let mut out: Vec<i32> = process_table()
        .into_iter()
        .filter(|&(_, ppid, st)| ppid == pid && st != 'Z' && st != 'X')
        .map(|(p, _, _)| p)
        .filter(|&p| !is_zygote(p))
        .collect();
    out.sort();
    out
}

/// Processes a fault test may leave behind (a stopped worker, a worker
/// whose master was killed): SIGKILLed on drop, if each pid is still the
/// process that was recorded (same start time), so a failing test cleans up
/// and a recycled pid is never hit.
#[derive(Default)]
pub struct KillOnDrop(Vec<(i32, u64)>);

impl KillOnDrop {
    pub fn new() -> KillOnDrop {
        KillOnDrop::default()
    }

    pub fn add(&mut self, pids: &[i32]) {
        for &pid in pids {
            if let Some((_, _, start)) = proc_stat(pid) {
                self.0.push((pid, start));
            }
        }
    }

    /// Recorded pids that are still the same live process: (pid, state, ppid).
    pub fn alive(&self) -> Vec<(i32, char, i32)> {
        self.0
            .iter()
            .filter_map(|&(pid, start)| match proc_stat(pid) {
                Some((st, ppid, s)) if s == start && st != 'Z' && st != 'X' => {
                    Some((pid, st, ppid))
                }
                _ => None,
            })
            .collect()
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        for (pid, _, _) in self.alive() {
            // SAFETY: kill(2) on a pid this test recorded, checked just now
            // to still be the same process (start time).
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
        }
        // Under a child subreaper (see [`ChildSubreaper`]) the recorded
        // processes become the test's children: reap them, and only them.
        let deadline = Instant::now() + Duration::from_secs(2);
        for &(pid, start) in &self.0 {
            loop {
                match proc_stat(pid) {
                    Some(('Z', ppid, s)) if s == start && ppid == std::process::id() as i32 => {
                        let mut status = 0;
                        // SAFETY: waitpid on our own zombie child, checked
                        // to be the recorded process (start time).
                        unsafe {
                            libc::waitpid(pid, &mut status, libc::WNOHANG);
                        }
                        break;
                    }
                    Some((st, ppid, s))
                        if s == start
                            && st != 'Z'
                            && ppid == std::process::id() as i32
                            && Instant::now() < deadline =>
                    {
                        thread::sleep(Duration::from_millis(10));
                    }
                    _ => break,
                }
            }
        }
    }
}

/// While alive, this test process is a child subreaper
/// (PR_SET_CHILD_SUBREAPER): orphans of the servers it starts are
/// reparented to it, not to init. Orphaned children then stay in a session
/// with a live parent, so the kernel's rescue of stopped processes in an
/// orphaned process group (SIGHUP + SIGCONT) does not happen: that is the
/// situation under tini, dumb-init or any supervising subreaper. Pair with
/// [`KillOnDrop`], which reaps what it recorded.
pub struct ChildSubreaper;

impl ChildSubreaper {
    pub fn new() -> ChildSubreaper {
        // SAFETY: prctl(PR_SET_CHILD_SUBREAPER) takes an integer flag.
        let rc = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
        assert_eq!(
            rc,
            0,
            "PR_SET_CHILD_SUBREAPER: {}",
            io::Error::last_os_error()
        );
        ChildSubreaper
    }
}

impl Drop for ChildSubreaper {
    fn drop(&mut self) {
        // SAFETY: as above.
        unsafe {
            libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0);
        }
    }
}

/// (name, live guards) of every [`TempUser`].
static TEMP_USERS: Mutex<Vec<(String, usize)>> = Mutex::new(Vec::new());

/// A system user for one test binary's tenants (root only), created on
/// first use and deleted (`userdel`) when the last guard goes. Only for
/// names reserved to the tests (`corral-t-*`): a user of that name left by
/// a killed run is adopted and deleted too. Drop every server running as
/// the user before the guard.
pub struct TempUser {
    pub name: String,
    pub uid: u32,
}

impl TempUser {
    pub fn new(name: &str) -> TempUser {
        assert!(
            name.starts_with("corral-t-"),
            "TempUser deletes its user: use a test-only name (corral-t-*), not {name:?}"
        );
        let mut users = TEMP_USERS.lock().unwrap_or_else(|e| e.into_inner());
        let uid = ensure_system_user(name);
        match users.iter_mut().find(|(n, _)| n == name) {
            Some((_, refs)) => *refs += 1,
            None => users.push((name.to_string(), 1)),
        }
        TempUser {
            name: name.to_string(),
            uid,
        }
    }
}

impl Drop for TempUser {
    fn drop(&mut self) {
        let mut users = TEMP_USERS.lock().unwrap_or_else(|e| e.into_inner());
        let Some(pos) = users.iter().position(|(n, _)| *n == self.name) else {
            return;
        };
        users[pos].1 -= 1;
        if users[pos].1 > 0 {
            return;
        }
        users.remove(pos);
        // userdel refuses while the user still runs processes.
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline
            && process_table()
                .iter()
                .any(|&(p, _, st)| st != 'Z' && uid_of_pid(p) == Some(self.uid))
        {
            thread::sleep(Duration::from_millis(50));
        }
        let _guard = USER_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        match Command::new("userdel").arg(&self.name).status() {
            Ok(s) if s.success() => {}
            other => eprintln!("userdel {} failed: {other:?}", self.name),
        }
    }
}

/// A master run in the foreground by `cmd` (`-F` and its config already
/// among the arguments), its stderr read until "ready to handle
/// connections"; SIGTERM, then SIGKILL of its process group, on drop.
/// `what` names it when it never gets ready.
pub struct ForegroundMaster(Child);

impl ForegroundMaster {
    pub fn start(cmd: &mut Command, what: &str, timeout: Duration) -> ForegroundMaster {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        let err = child.stderr.take().unwrap();
        // Owned at once: a master that never gets ready is stopped too.
        let master = ForegroundMaster(child);
        let (tx, rx) = std::sync::mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let mut seen = Vec::new();
        while let Ok(line) = rx.recv_timeout(timeout) {
            let ready = line.contains("ready to handle connections");
            seen.push(line);
            if ready {
                return master;
            }
        }
        panic!("{what} not ready:\n{}", seen.join("\n"));
    }
}

impl Drop for ForegroundMaster {
    fn drop(&mut self) {
        let pid = self.0.id() as i32;
        // SAFETY: signals the master this test started, then its group.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        for _ in 0..250 {
            if self.0.try_wait().ok().flatten().is_some() {
                break;
            }
            thread::sleep(Duration::from_millis(20));
        }
        unsafe { libc::kill(-pid, libc::SIGKILL) };
        let _ = self.0.wait();
    }
}
