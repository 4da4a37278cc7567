//! Shared by the `sites*.rs` end-to-end tests: a sandboxed host (homes,
//! pool dir, vhost dirs, registry under one temp dir), a corral master
//! that includes the sandbox's pool dir, a real nginx (master + workers
//! as www-data, so the web server really is a separate user) including the
//! sandbox's vhost dir, a snapshot of everything a site command can touch,
//! and a guard that deletes the test's users even when a test panics.
#![allow(dead_code)]

pub mod files;
pub mod sshd;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::common::{self, corral_bin, free_port, Corral, HttpResponse, Output, Server};

/// Test users are `ct5<tag>-<pid>`: unique per test run, and easy to spot.
pub fn user_name(tag: &str) -> String {
    format!("ct5{tag}-{}", std::process::id())
}

/// Deletes users and groups on drop (also after a panic).
pub struct UserGuard(pub Vec<String>);

impl Drop for UserGuard {
    fn drop(&mut self) {
        for u in &self.0 {
            for name in [format!("{u}-php"), u.clone()] {
                if common::uid_of(&name).is_some() {
                    let _ = Command::new("pkill").args(["-KILL", "-u", &name]).status();
                    thread::sleep(Duration::from_millis(100));
                    let _ = Command::new("userdel").arg(&name).output();
                }
            }
            if common::gid_of_group(u).is_some() {
                let _ = Command::new("groupdel").arg(u).output();
            }
        }
    }
}

/// A host in a temp dir.
pub struct Sandbox {
    pub dir: tempfile::TempDir,
}

impl Sandbox {
    pub fn new(tag: &str) -> Sandbox {
        Sandbox::in_dir(common::temp_dir(&format!("sites-{tag}")))
    }

    /// A sandbox under /var/lib: a pool whose private /tmp is not told
    /// about the site's tree (Landlock off) must still see its home.
    pub fn outside_tmp(tag: &str) -> Sandbox {
        let dir = tempfile::Builder::new()
            .prefix(&format!("corral-sites-{tag}-"))
            .tempdir_in("/var/lib")
            .expect("sandbox under /var/lib");
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
        Sandbox::in_dir(dir)
    }

    /// The host's layout in `dir` (a test that needs its sandbox outside
    /// /tmp makes the directory itself).
    pub fn in_dir(dir: tempfile::TempDir) -> Sandbox {
        for d in [
            "home",
            "pool.d",
            "nginx",
            "apache/sites-available",
            "apache/sites-enabled",
            "state",
            "run",
            "templates",
            "cron",
            "logrotate",
            "archive",
            "acme",
            "ssh/sshd_config.d",
            "ssh/corral-keys",
        ] {
            fs::create_dir_all(dir.path().join(d)).unwrap();
            fs::set_permissions(dir.path().join(d), fs::Permissions::from_mode(0o755)).unwrap();
        }
        Sandbox { dir }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn home(&self, user: &str) -> PathBuf {
        self.path("home").join(user)
    }

    pub fn docroot(&self, user: &str, domain: &str) -> PathBuf {
        self.home(user).join("htdocs").join(domain)
    }

    /// corral with one pool that is not a site (a master needs one) and
    /// the sandbox's pool dir included.
    pub fn start_corral(&self) -> Server {
        let conf = format!(
            "[global]\nerror_log = {{dir}}/error.log\nprocess_control_timeout = 2s\ninclude = {}/*.conf\n\n\
             [keeper]\nlisten = {{dir}}/keeper.sock\nuser = nobody\npm = static\npm.max_children = 1\n",
            self.path("pool.d").display()
        );
        Corral::start(&conf)
    }

    /// The `CORRAL_SITES_*` environment that points every knob here.
    pub fn env(
        &self,
        corral: Option<&Server>,
        web: Option<&dyn WebServer>,
    ) -> Vec<(String, String)> {
        let p = |r: &str| self.path(r).display().to_string();
        let mut v = vec![
            ("HOME_BASE", p("home")),
            ("POOL_DIR", p("pool.d")),
            ("SOCKET_DIR", p("run")),
            ("NGINX_DIR", p("nginx")),
            ("APACHE_DIR", p("apache/sites-available")),
            ("APACHE_ENABLED_DIR", p("apache/sites-enabled")),
            ("STATE_DIR", p("state")),
            ("TEMPLATE_DIR", p("templates")),
            ("CRON_DIR", p("cron")),
            ("LOGROTATE_DIR", p("logrotate")),
            ("ARCHIVE_DIR", p("archive")),
            ("ACME_DIR", p("acme")),
            ("LETSENCRYPT_DIR", p("letsencrypt")),
            ("PHP_INCLUDE_DIR", p("php-include")),
            ("SSHD_CONFIG_DIR", p("ssh/sshd_config.d")),
            ("SFTP_KEYS_DIR", p("ssh/corral-keys")),
            // No sshd by default; the SFTP test runs its own.
            ("SSHD_TEST", "true".into()),
            ("SSHD_RELOAD", "true".into()),
        ];
        match corral {
            Some(c) => {
                v.push(("CONTROL_SOCKET", c.control_socket().display().to_string()));
                v.push(("FPM_CONFIG", c.conf_path.display().to_string()));
            }
            None => {
                v.push(("CONTROL_SOCKET", p("run/no-corral.sock")));
                v.push(("FPM_CONFIG", p("no-php-fpm.conf")));
            }
        }
        match web {
            Some(w) => {
                v.push(("WEBSERVER_TEST", w.test_cmd()));
                v.push(("WEBSERVER_RELOAD", w.reload_cmd()));
                v.push(("LISTEN", format!("127.0.0.1:{}", w.port())));
                v.push(("TLS_LISTEN", format!("127.0.0.1:{}", w.tls_port())));
            }
            None => {
                v.push(("WEBSERVER_TEST", "true".into()));
                v.push(("WEBSERVER_RELOAD", "true".into()));
                v.push(("LISTEN", "127.0.0.1:1".into()));
                v.push(("NO_VERIFY", "1".into()));
            }
        }
        v.into_iter()
            .map(|(k, val)| (format!("CORRAL_SITES_{k}"), val))
            .collect()
    }

    /// Runs `corral site ARGS` with `env` (plus `extra`).
    pub fn site(&self, env: &[(String, String)], extra: &[(&str, &str)], args: &[&str]) -> Output {
        run_with_env(&corral_bin(), "site", args, env, extra)
    }

    /// Everything under the sandbox's site-related dirs plus the
    /// passwd/group lines of `users`: path, type, mode, owner, content or
    /// link target, and ACL.
    pub fn snapshot(&self, users: &[String]) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        for d in [
            "home",
            "pool.d",
            "nginx",
            "apache/sites-available",
            "apache/sites-enabled",
            "state",
            "cron",
            "logrotate",
            "archive",
            "ssh",
        ] {
            walk(&self.path(d), &mut out);
        }
        out.remove(&self.path("state/lock").display().to_string());
        for f in ["/etc/passwd", "/etc/group"] {
            let text = fs::read_to_string(f).unwrap();
            for l in text.lines() {
                let name = l.split(':').next().unwrap_or("");
                if users
                    .iter()
                    .any(|u| name == u || *name == format!("{u}-php"))
                {
                    out.insert(format!("{f}:{name}"), l.to_string());
                }
            }
        }
        out
    }
}

fn walk(p: &Path, out: &mut BTreeMap<String, String>) {
    let Ok(m) = fs::symlink_metadata(p) else {
        return;
    };
    let ft = m.file_type();
    let mut desc = format!("{:o} {}:{}", m.mode(), m.uid(), m.gid());
    if ft.is_symlink() {
        desc.push_str(&format!(" -> {}", fs::read_link(p).unwrap().display()));
    } else {
        let acl = Command::new("getfacl")
            .args(["--absolute-names", "--numeric", "--physical"])
            .arg(p)
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        desc.push_str(&format!("\n{acl}"));
    }
    if ft.is_file() {
        desc.push_str(&String::from_utf8_lossy(&fs::read(p).unwrap_or_default()));
    }
    out.insert(p.display().to_string(), desc);
    if ft.is_dir() {
        let mut entries: Vec<_> = fs::read_dir(p)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .collect();
        entries.sort();
        for e in entries {
            walk(&e, out);
        }
    }
}

/// Line diff of two snapshots for assertion messages.
pub fn snapshot_diff(a: &BTreeMap<String, String>, b: &BTreeMap<String, String>) -> String {
    let mut s = String::new();
    for (k, v) in a {
        match b.get(k) {
            None => s.push_str(&format!("- only before: {k}\n")),
            Some(w) if w != v => {
                s.push_str(&format!("~ changed: {k}\n  before: {v}\n  after:  {w}\n"))
            }
            _ => {}
        }
    }
    for k in b.keys() {
        if !a.contains_key(k) {
            s.push_str(&format!("+ only after: {k}\n"));
        }
    }
    s
}

/// Runs `program SUB ARGS` with an environment, like `common::run_cmd`.
pub fn run_with_env(
    program: &Path,
    sub: &str,
    args: &[&str],
    env: &[(String, String)],
    extra: &[(&str, &str)],
) -> Output {
    let out = Command::new(program)
        .arg(sub)
        .args(args)
        .env_remove("CORRAL_SITES_FAIL_AT")
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .envs(extra.iter().copied())
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", program.display()));
    let o = Output {
        status: out.status,
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    eprintln!("$ corral {sub} {}\n{}", args.join(" "), o.all());
    o
}

/// Asserts success, showing output.
#[track_caller]
pub fn ok(o: &Output) -> &Output {
    assert_eq!(o.code, Some(0), "command failed:\n{}", o.all());
    o
}

/// Writes a file as the site owner (mode 0640: the group, i.e. PHP, reads it).
pub fn write_as_owner(path: &Path, content: &str, user: &str) {
    fs::write(path, content).unwrap();
    let uid = common::uid_of(user).unwrap();
    let gid = common::gid_of_group(user).unwrap();
    std::os::unix::fs::chown(path, Some(uid), Some(gid)).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(0o640)).unwrap();
}

pub fn mkdir_as_owner(path: &Path, user: &str) {
    fs::create_dir(path).unwrap();
    let uid = common::uid_of(user).unwrap();
    let gid = common::gid_of_group(user).unwrap();
    std::os::unix::fs::chown(path, Some(uid), Some(gid)).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(0o2750)).unwrap();
}

// ---------------------------------------------------------------- web servers

/// What the site commands need to drive a web server.
pub trait WebServer {
    fn port(&self) -> u16;
    /// Where TLS vhosts listen (`--tls-listen`).
    fn tls_port(&self) -> u16;
    fn test_cmd(&self) -> String;
    fn reload_cmd(&self) -> String;
    fn error_log(&self) -> String;
    /// GET `path` with `Host: host`.
    fn get(&self, host: &str, path: &str) -> HttpResponse {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            match http_get(self.port(), host, path) {
                Ok(r) => return r,
                Err(e) if Instant::now() > deadline => {
                    panic!("GET {path} (Host {host}): {e}\n{}", self.error_log())
                }
                Err(_) => thread::sleep(Duration::from_millis(100)),
            }
        }
    }
}

/// A real nginx with a master and www-data workers, including the
/// sandbox's vhost dir; a default server answers 404 for unknown hosts.
pub struct SitesNginx {
    child: Option<Child>,
    pub dir: tempfile::TempDir,
    pub port: u16,
    pub tls_port: u16,
}

impl SitesNginx {
    pub fn start(vhost_dir: &Path) -> Option<SitesNginx> {
        let nginx = common::require_bin("nginx")?;
        let dir = common::temp_dir("sites-nginx");
        let port = free_port();
        let d = dir.path().display();
        let conf = format!(
            "user www-data www-data;\ndaemon off;\nmaster_process on;\nworker_processes 1;\n\
             pid {d}/nginx.pid;\nerror_log {d}/error.log info;\n\
             events {{ worker_connections 64; }}\n\
             http {{\n  access_log {d}/access.log;\n  client_body_temp_path {d}/client_body;\n\
             fastcgi_temp_path {d}/fastcgi;\n  proxy_temp_path {d}/proxy;\n  uwsgi_temp_path {d}/uwsgi;\n\
             scgi_temp_path {d}/scgi;\n  include /etc/nginx/mime.types;\n  default_type application/octet-stream;\n\
             server {{ listen 127.0.0.1:{port} default_server; server_name _; return 404; }}\n\
             include {}/*.conf;\n}}\n",
            vhost_dir.display()
        );
        fs::write(dir.path().join("nginx.conf"), conf).unwrap();
        let child = Command::new(&nginx)
            .args([
                "-p",
                &d.to_string(),
                "-e",
                &format!("{d}/error.log"),
                "-c",
                &format!("{d}/nginx.conf"),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("start nginx");
        let n = SitesNginx {
            child: Some(child),
            dir,
            port,
            tls_port: free_port(),
        };
        wait_listen(port, || n.error_log());
        Some(n)
    }

    fn args(&self) -> String {
        let d = self.dir.path().display();
        format!("-p {d} -e {d}/error.log -c {d}/nginx.conf")
    }
}

impl WebServer for SitesNginx {
    fn port(&self) -> u16 {
        self.port
    }
    fn tls_port(&self) -> u16 {
        self.tls_port
    }
    fn test_cmd(&self) -> String {
        format!("nginx -t -q {}", self.args())
    }
    fn reload_cmd(&self) -> String {
        format!("nginx -s reload {}", self.args())
    }
    fn error_log(&self) -> String {
        fs::read_to_string(self.dir.path().join("error.log")).unwrap_or_default()
    }
}

impl Drop for SitesNginx {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            kill_group(c.id() as i32);
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A real Apache (mpm_event, workers as www-data) with its own config,
/// including the sandbox's sites-enabled dir.
pub struct SitesApache {
    child: Option<Child>,
    pub dir: tempfile::TempDir,
    pub port: u16,
    pub tls_port: u16,
}

impl SitesApache {
    pub fn start(enabled_dir: &Path) -> Option<SitesApache> {
        SitesApache::start_with(enabled_dir, &[])
    }

    /// Also listening on `extra` addresses (`ADDR:PORT`): unlike nginx,
    /// Apache binds only what a `Listen` line names, not what vhosts use.
    pub fn start_with(enabled_dir: &Path, extra: &[&str]) -> Option<SitesApache> {
        let apache = common::require_bin("apache2")?;
        let dir = common::temp_dir("sites-apache");
        let port = free_port();
        let tls_port = free_port();
        let d = dir.path().display();
        let m = "/usr/lib/apache2/modules";
        fs::create_dir_all(dir.path().join("empty")).unwrap();
        let extra: String = extra.iter().map(|a| format!("Listen {a}\n")).collect();
        let conf = format!(
            "ServerRoot {d}\nDefaultRuntimeDir {d}\nPidFile {d}/apache.pid\nErrorLog {d}/error.log\n\
             LogLevel warn\nMutex file:{d} default\nListen 127.0.0.1:{port}\nListen 127.0.0.1:{tls_port}\n{extra}ServerName localhost\n\
             User www-data\nGroup www-data\n\
             LoadModule mpm_event_module {m}/mod_mpm_event.so\n\
             LoadModule authz_core_module {m}/mod_authz_core.so\n\
             LoadModule dir_module {m}/mod_dir.so\n\
             LoadModule mime_module {m}/mod_mime.so\n\
             LoadModule alias_module {m}/mod_alias.so\n\
             LoadModule socache_shmcb_module {m}/mod_socache_shmcb.so\n\
             LoadModule ssl_module {m}/mod_ssl.so\n\
             LoadModule proxy_module {m}/mod_proxy.so\n\
             LoadModule proxy_fcgi_module {m}/mod_proxy_fcgi.so\n\
             TypesConfig /etc/mime.types\n\
             StartServers 1\nServerLimit 1\nThreadsPerChild 8\nMaxRequestWorkers 8\n\
             <VirtualHost 127.0.0.1:{port}>\n  ServerName default.invalid\n  DocumentRoot {d}/empty\n</VirtualHost>\n\
             IncludeOptional {}/*.conf\n",
            enabled_dir.display()
        );
        fs::write(dir.path().join("apache.conf"), conf).unwrap();
        let child = Command::new(&apache)
            .args(["-f", &format!("{d}/apache.conf"), "-D", "FOREGROUND"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("start apache2");
        let a = SitesApache {
            child: Some(child),
            dir,
            port,
            tls_port,
        };
        wait_listen(port, || a.error_log());
        Some(a)
    }
}

impl WebServer for SitesApache {
    fn port(&self) -> u16 {
        self.port
    }
    fn tls_port(&self) -> u16 {
        self.tls_port
    }
    fn test_cmd(&self) -> String {
        format!("apache2 -t -f {}/apache.conf", self.dir.path().display())
    }
    fn reload_cmd(&self) -> String {
        format!(
            "apache2 -k graceful -f {}/apache.conf",
            self.dir.path().display()
        )
    }
    fn error_log(&self) -> String {
        fs::read_to_string(self.dir.path().join("error.log")).unwrap_or_default()
    }
}

impl Drop for SitesApache {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            kill_group(c.id() as i32);
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn wait_listen(port: u16, log: impl Fn() -> String) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            panic!("web server did not listen on {port}:\n{}", log());
        }
        thread::sleep(Duration::from_millis(50));
    }
}

fn kill_group(pgid: i32) {
    let _ = Command::new("kill")
        .args(["-KILL", "--", &format!("-{pgid}")])
        .status();
}

/// Worker pids of one pool, from `corral status --json`.
pub fn pool_pids(corral: &Server, pool: &str) -> Vec<i64> {
    let o = corral.control(&["status", pool, "--json"]);
    let v: serde_json::Value =
        serde_json::from_str(o.stdout.trim()).unwrap_or_else(|e| panic!("{e}: {}", o.all()));
    let mut pids: Vec<i64> = v[0]["processes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p["pid"].as_i64())
        .collect();
    pids.sort();
    pids
}

/// One HTTP/1.0 GET with our own Host header (the common client always
/// sends `Host: localhost`).
pub fn http_get(port: u16, host: &str, path: &str) -> std::io::Result<HttpResponse> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(common::IO_TIMEOUT))?;
    write!(
        s,
        "GET {path} HTTP/1.0\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("no header end: {text:?}"),
        )
    })?;
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
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

/// What curl got: status, body bytes, and where a redirect points.
pub struct Fetched {
    pub status: u16,
    pub body: Vec<u8>,
    pub redirect: String,
}

/// Runs curl (bounded to 60 s) with `args`; the body goes to a temp file so
/// binary bodies arrive byte-exact.
pub fn curl(args: &[&str]) -> Fetched {
    let dir = common::temp_dir("curl");
    let body = dir.path().join("body");
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "60", "-o"])
        .arg(&body)
        .args(["-w", "%{http_code}\n%{redirect_url}"])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut lines = text.lines();
    let status = lines
        .next()
        .and_then(|l| l.trim().parse().ok())
        .unwrap_or(0);
    let redirect = lines.next().unwrap_or("").to_string();
    assert!(
        status != 0,
        "curl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Fetched {
        status,
        body: fs::read(&body).unwrap_or_default(),
        redirect,
    }
}

/// Whether `user` can read `path` (a real open as that user, no root).
pub fn readable_by(user: &str, path: &Path) -> bool {
    let gid = Command::new("id")
        .args(["-g", user])
        .output()
        .expect("id -g");
    let gid = String::from_utf8_lossy(&gid.stdout).trim().to_string();
    Command::new("setpriv")
        .args([
            &format!("--reuid={user}"),
            &format!("--regid={gid}"),
            "--init-groups",
            "--",
            "head",
            "-c1",
        ])
        .arg(path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}
