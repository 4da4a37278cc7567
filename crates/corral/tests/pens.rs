//! Pens: the hostile-tenant suite (issue 9), as root, through a real nginx
//! and a real Apache.
//!
//! Two sites are provisioned by `corral site add` with the WordPress
//! template's defaults: a victim (which also has a TCP `pm.status_listen`,
//! a common admin setting, and an `env[]` secret) and an attacker. The
//! attacker's pool differs from the defaults in two ways only, both of
//! which a hostile tenant's site could have: its exec functions are
//! enabled (so it starts native code: `tests/native/pens_native.c`, built
//! here with gcc) and `open_basedir` is off (native code ignores it
//! anyway). What must stop it is the kernel, the web server and corral.
//!
//! Each probe in [`PROBES`] is an escape from the list, or one a
//! hostile tenant would try next; it says what "blocked" means, runs from
//! the attacker's PHP (`tests/php/pens_attacker.php`, fetched through the
//! web server) or from a native process that PHP starts, and is judged by
//! the test from the attacker's report and from root's view of the victim
//! (`nsenter` into a victim worker's namespaces, its cgroup files).
//!
//! The whole list runs against corral, then against stock php-fpm 8.2
//! serving the same pool files with the `corral.*` lines removed. The test
//! prints `probe | corral | php-fpm` and asserts 0 escapes (and 0 probes
//! that could not tell) for corral only.
//!
//! Everything the suite creates is removed even when it fails: the users
//! (and their processes), SysV objects of their uids, the files planted in
//! /tmp, /var/tmp and /dev/shm, the sandbox (under /var/lib, not /tmp,
//! so that a pool's private /tmp does not hide its own home).

mod common;
mod sites_support;

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::net::{SocketAddr as UnixAddr, UnixListener};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use common::{
    free_port, process_table, require_bin, require_root, run_cmd, uid_of_pid, Kind, Server,
};
use sites_support::{
    http_get, mkdir_as_owner, ok, write_as_owner, SitesApache, SitesNginx, UserGuard, WebServer,
};

/// The resource probes would disturb each other: one suite at a time.
static SERIAL: Mutex<()> = Mutex::new(());

/// The exec family the attacker's pool gets back (and nothing else).
const EXEC_FUNCTIONS: &[&str] = &[
    "exec",
    "passthru",
    "shell_exec",
    "system",
    "proc_open",
    "popen",
    "pcntl_exec",
];

/// Fork bomb cap: well above any sane pids limit, well below the host's.
const FORK_CAP: u64 = 1000;
/// Disk fill cap without a quota (MiB).
const FILL_CAP_MB: u64 = 64;
/// Quota asked for with `--disk-quota`.
const DISK_QUOTA: &str = "64M";

#[test]
fn pens_behind_nginx() {
    suite(Web::Nginx);
}

#[test]
fn pens_behind_apache() {
    suite(Web::Apache);
}

// ---------------------------------------------------------------- model

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Web {
    Nginx,
    Apache,
}

impl Web {
    fn name(self) -> &'static str {
        match self {
            Web::Nginx => "nginx",
            Web::Apache => "apache",
        }
    }
}

/// How one probe ended.
#[derive(Clone, Debug)]
enum Verdict {
    Blocked(String),
    Escaped(String),
    /// Not a question on this server or host (e.g. no control socket).
    NotApplicable(String),
    /// The probe could not tell: its own set-up or the reply failed.
    Broken(String),
}

impl Verdict {
    fn word(&self) -> &'static str {
        match self {
            Verdict::Blocked(_) => "blocked",
            Verdict::Escaped(_) => "ESCAPED",
            Verdict::NotApplicable(_) => "n/a",
            Verdict::Broken(_) => "BROKEN",
        }
    }
    /// On one line.
    fn detail(&self) -> String {
        match self {
            Verdict::Blocked(d)
            | Verdict::Escaped(d)
            | Verdict::NotApplicable(d)
            | Verdict::Broken(d) => d.trim().replace('\n', " / "),
        }
    }
}

struct Probe {
    name: &'static str,
    /// What "blocked" means, in one sentence.
    blocked: &'static str,
    run: fn(&Ctx) -> Verdict,
}

/// One site as provisioned.
#[derive(Clone, Debug)]
struct Tenant {
    domain: String,
    php_user: String,
    uid: u32,
    gid: u32,
    php_uid: u32,
    home: PathBuf,
    docroot: PathBuf,
    socket: PathBuf,
    pool_file: PathBuf,
}

/// What the probes of one server run need.
struct Ctx<'a> {
    web: &'a dyn WebServer,
    kind: Kind,
    a: &'a Tenant,
    v: &'a Tenant,
    /// The victim's TCP status listener.
    status_port: u16,
    /// The victim's `env[DB_PASSWORD]` (in its pool file).
    env_secret: String,
    /// What the victim's wp-config.php holds.
    wp_secret: String,
    /// pens-native where the attacker's owner put it, and where its PHP did.
    native: PathBuf,
    native2: PathBuf,
    preload: PathBuf,
    setuid_helper: PathBuf,
    /// The test's copy of pens-native (root's, for oracles).
    native_root: PathBuf,
    master_log: PathBuf,
    master_conf: PathBuf,
    control_socket: Option<PathBuf>,
    /// The pool files this server runs (php-fpm: the stripped copies).
    pool_files: Vec<PathBuf>,
    registry: PathBuf,
    /// `--disk-quota` as the provisioning took it.
    quota: Quota,
    cleanup: &'a Cleanup,
}

// ---------------------------------------------------------------- the suite

fn suite(web: Web) {
    if !require_root() {
        return;
    }
    for bin in [
        "setfacl",
        "gcc",
        "nsenter",
        "ipcs",
        "python3",
        common::PHP_FPM,
    ] {
        if require_bin(bin).is_none() {
            return;
        }
    }
    if web == Web::Apache && require_bin("apache2").is_none() {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let started = Instant::now();
    let pid = std::process::id();
    let tag = match web {
        Web::Nginx => "n",
        Web::Apache => "p",
    };
    let (ua, uv) = (format!("ct5{tag}a-{pid}"), format!("ct5{tag}v-{pid}"));
    // Dropped last: kills what the users still run, then deletes them.
    let _users = UserGuard(vec![ua.clone(), uv.clone()]);
    let cleanup = Cleanup::new(&[ua.clone(), uv.clone()]);
    let sb = sandbox(web);
    let sbp = sb.path().to_path_buf();
    let p = |r: &str| sbp.join(r);

    // Native probes, built as root, installed as the attacker's own files.
    let build = p("build");
    fs::create_dir_all(&build).unwrap();
    fs::set_permissions(&build, fs::Permissions::from_mode(0o700)).unwrap();
    let src = common::workspace_root().join("tests/native");
    gcc(&[
        &src.join("pens_native.c"),
        Path::new("-o"),
        &build.join("pens-native"),
    ]);
    gcc(&[
        Path::new("-shared"),
        Path::new("-fPIC"),
        &src.join("pens_preload.c"),
        Path::new("-o"),
        &build.join("pens_preload.so"),
    ]);
    let bin_dir = p("bin");
    fs::create_dir_all(&bin_dir).unwrap();
    fs::set_permissions(&bin_dir, fs::Permissions::from_mode(0o755)).unwrap();
    // Root's copy for the oracles that run as the victim (nsenter -S).
    fs::copy(build.join("pens-native"), bin_dir.join("pens-native")).unwrap();
    fs::set_permissions(
        bin_dir.join("pens-native"),
        fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    let setuid_helper = bin_dir.join("pens-euid");
    gcc(&[&src.join("pens_euid.c"), Path::new("-o"), &setuid_helper]);
    // Setuid only while its probe runs (see setuid_nnp).
    fs::set_permissions(&setuid_helper, fs::Permissions::from_mode(0o755)).unwrap();

    // corral with the sandbox's pool dir, and the web server.
    let corral_conf = format!(
        "[global]\nerror_log = {{dir}}/error.log\nprocess_control_timeout = 2s\ninclude = {}/*.conf\n\n\
         [keeper]\nlisten = {{dir}}/keeper.sock\nuser = nobody\npm = static\npm.max_children = 1\n",
        p("pool.d").display()
    );
    let mut corral = Some(
        Server::try_start_with(Kind::Corral, &corral_conf, None, &[], &[], false)
            .unwrap_or_else(|e| panic!("{e}")),
    );
    let web_server: Box<dyn WebServer> = match web {
        Web::Nginx => Box::new(SitesNginx::start(&p("nginx")).expect("nginx")),
        Web::Apache => Box::new(SitesApache::start(&p("apache/sites-enabled")).expect("apache2")),
    };
    let sandbox = sites_support::Sandbox { dir: sb };
    let env = sandbox.env(corral.as_ref(), Some(web_server.as_ref()));
    let web_args: Vec<&str> = match web {
        Web::Nginx => vec![],
        Web::Apache => vec!["--webserver", "apache"],
    };

    // The victim: template defaults, a TCP status listener, a secret in env[].
    let tok = token();
    let status_port = free_port();
    let env_secret = format!("env-secret-{tok}");
    let (da, dv) = (format!("{tag}a{pid}.test"), format!("{tag}v{pid}.test"));
    let mut args = vec![
        "add",
        dv.as_str(),
        "--user",
        uv.as_str(),
        "--template",
        "wordpress",
    ];
    args.extend(&web_args);
    let sl = format!("pm.status_listen=127.0.0.1:{status_port}");
    let es = format!("env[DB_PASSWORD]={env_secret}");
    args.extend(["--set", sl.as_str(), "--set", es.as_str()]);
    ok(&sandbox.site(&env, &[], &args));
    let victim = tenant(&sandbox, &dv, &uv);

    // The attacker: the same template, its exec functions back (the
    // template's own knob for it), open_basedir off.
    let allow = format!("corral.allow_functions={}", EXEC_FUNCTIONS.join(" "));
    let mut args = vec![
        "add",
        da.as_str(),
        "--user",
        ua.as_str(),
        "--template",
        "wordpress",
    ];
    args.extend(&web_args);
    args.extend(["--set", allow.as_str(), "--set", "open_basedir=/"]);
    let quota = provision_attacker(&sandbox, &env, &args);
    let attacker = tenant(&sandbox, &da, &ua);
    cleanup.uids(&[attacker.php_uid, victim.php_uid, attacker.uid, victim.uid]);

    // The sites' files.
    let wp_secret = format!("wp-secret-{tok}");
    write_as_owner(
        &victim.docroot.join("index.php"),
        "<?php echo 'victim index';",
        &uv,
    );
    write_as_owner(
        &victim.docroot.join("wp-config.php"),
        &format!("<?php\ndefine('DB_PASSWORD', '{wp_secret}');\n"),
        &uv,
    );
    let fixtures = common::fixtures_dir();
    let victim_page = fs::read_to_string(fixtures.join("pens_victim.php")).unwrap();
    write_as_owner(&victim.docroot.join("pens_victim.php"), &victim_page, &uv);
    let attacker_page = fs::read_to_string(fixtures.join("pens_attacker.php")).unwrap();
    write_as_owner(
        &attacker.docroot.join("pens_attacker.php"),
        &attacker_page,
        &ua,
    );
    write_as_owner(
        &attacker.docroot.join("index.php"),
        "<?php echo 'attacker index';",
        &ua,
    );
    let abin = attacker.home.join("bin");
    mkdir_as_owner(&abin, &ua);
    install_as(
        &build.join("pens-native"),
        &abin.join("pens-native"),
        &attacker,
        0o750,
    );
    install_as(
        &build.join("pens_preload.so"),
        &abin.join("pens_preload.so"),
        &attacker,
        0o640,
    );
    // The same binary as the attacker's PHP would have written it from an
    // upload: a second way in when the owner's copy is out of its reach.
    let uploaded = attacker.docroot.join("wp-content/uploads/pens-native");
    fs::copy(build.join("pens-native"), &uploaded).unwrap();
    std::os::unix::fs::chown(&uploaded, Some(attacker.php_uid), Some(attacker.gid)).unwrap();
    fs::set_permissions(&uploaded, fs::Permissions::from_mode(0o640)).unwrap();

    let mut results: BTreeMap<&'static str, (Verdict, Option<Verdict>)> = BTreeMap::new();
    let corral_pool_files = vec![victim.pool_file.clone(), attacker.pool_file.clone()];
    {
        let server = corral.as_ref().unwrap();
        let ctx = Ctx {
            web: web_server.as_ref(),
            kind: Kind::Corral,
            a: &attacker,
            v: &victim,
            status_port,
            env_secret: env_secret.clone(),
            wp_secret: wp_secret.clone(),
            native: abin.join("pens-native"),
            native2: uploaded.clone(),
            preload: abin.join("pens_preload.so"),
            setuid_helper: setuid_helper.clone(),
            native_root: bin_dir.join("pens-native"),
            master_log: server.dir().join("error.log"),
            master_conf: server.conf_path.clone(),
            control_socket: Some(server.control_socket()),
            pool_files: corral_pool_files,
            registry: p("state").join(format!("{dv}.json")),
            quota: quota.clone(),
            cleanup: &cleanup,
        };
        whoami(&ctx);
        for probe in PROBES {
            let t = Instant::now();
            let v = (probe.run)(&ctx);
            eprintln!(
                "[pens {} corral] {} -> {} ({} ms): {}",
                web.name(),
                probe.name,
                v.word(),
                t.elapsed().as_millis(),
                v.detail()
            );
            results.insert(probe.name, (v, None));
        }
    }

    // The same sites on php-fpm 8.2: the pool files without corral.* lines.
    drop(corral.take());
    let fpm_pool_dir = p("fpm-pool.d");
    fs::create_dir_all(&fpm_pool_dir).unwrap();
    let mut fpm_pool_files = Vec::new();
    for t in [&victim, &attacker] {
        let text = fs::read_to_string(&t.pool_file).unwrap();
        let stripped: String = text
            .lines()
            .filter(|l| !l.trim_start().starts_with("corral."))
            .map(|l| format!("{l}\n"))
            .collect();
        let dst = fpm_pool_dir.join(t.pool_file.file_name().unwrap());
        fs::write(&dst, stripped).unwrap();
        fs::set_permissions(&dst, fs::metadata(&t.pool_file).unwrap().permissions()).unwrap();
        fpm_pool_files.push(dst);
    }
    let fpm_conf = format!(
        "[global]\nerror_log = {{dir}}/error.log\ninclude = {}/*.conf\n",
        fpm_pool_dir.display()
    );
    match Server::try_start_with(Kind::PhpFpm, &fpm_conf, None, &[], &[], false) {
        Ok(fpm) => {
            wait_http(web_server.as_ref(), &victim.domain, "/pens_victim.php");
            let ctx = Ctx {
                web: web_server.as_ref(),
                kind: Kind::PhpFpm,
                a: &attacker,
                v: &victim,
                status_port,
                env_secret: env_secret.clone(),
                wp_secret: wp_secret.clone(),
                native: abin.join("pens-native"),
                native2: uploaded.clone(),
                preload: abin.join("pens_preload.so"),
                setuid_helper: setuid_helper.clone(),
                native_root: bin_dir.join("pens-native"),
                master_log: fpm.dir().join("error.log"),
                master_conf: fpm.conf_path.clone(),
                control_socket: None,
                pool_files: fpm_pool_files,
                registry: p("state").join(format!("{dv}.json")),
                quota: quota.clone(),
                cleanup: &cleanup,
            };
            whoami(&ctx);
            for probe in PROBES {
                let t = Instant::now();
                let v = (probe.run)(&ctx);
                eprintln!(
                    "[pens {} php-fpm] {} -> {} ({} ms): {}",
                    web.name(),
                    probe.name,
                    v.word(),
                    t.elapsed().as_millis(),
                    v.detail()
                );
                results.get_mut(probe.name).unwrap().1 = Some(v);
            }
            drop(fpm);
        }
        Err(e) => eprintln!("php-fpm did not start; its column stays empty:\n{e}"),
    }
    drop(web_server);

    // The table, then the details.
    let mut table = format!(
        "\n=== pens behind {} ({} s): probe | corral | php-fpm\n",
        web.name(),
        started.elapsed().as_secs()
    );
    for probe in PROBES {
        let (c, f) = &results[probe.name];
        table.push_str(&format!(
            "{:<22} | {:<8} | {}\n",
            probe.name,
            c.word(),
            f.as_ref().map(Verdict::word).unwrap_or("-")
        ));
    }
    let count = |w: &str, fpm: bool| {
        results
            .values()
            .filter(|(c, f)| {
                if fpm {
                    f.as_ref().is_some_and(|f| f.word() == w)
                } else {
                    c.word() == w
                }
            })
            .count()
    };
    table.push_str(&format!(
        "escapes: corral {} of {}, php-fpm {} of {}\n\n",
        count("ESCAPED", false),
        PROBES.len() - count("n/a", false),
        count("ESCAPED", true),
        PROBES.len() - count("n/a", true),
    ));
    for probe in PROBES {
        let (c, f) = &results[probe.name];
        table.push_str(&format!(
            "{} (blocked = {})\n  corral:  {} {}\n  php-fpm: {}\n",
            probe.name,
            probe.blocked,
            c.word(),
            c.detail(),
            f.as_ref()
                .map(|f| format!("{} {}", f.word(), f.detail()))
                .unwrap_or_else(|| "-".into())
        ));
    }
    // Past the harness's capture, so the table shows in CI logs.
    let _ = writeln!(std::io::stderr(), "{table}");

    let failures: Vec<String> = PROBES
        .iter()
        .filter_map(|probe| match &results[probe.name].0 {
            v @ Verdict::Escaped(_) => Some(format!(
                "{} ESCAPED: {}\n    (blocked would be: {})",
                probe.name,
                v.detail(),
                probe.blocked
            )),
            v @ Verdict::Broken(_) => {
                Some(format!("{} could not tell: {}", probe.name, v.detail()))
            }
            _ => None,
        })
        .collect();
    assert!(
        failures.is_empty(),
        "behind {}: {} of {} probes not blocked by corral:\n{}\n{table}",
        web.name(),
        failures.len(),
        PROBES.len(),
        failures.join("\n")
    );
}

/// A sandboxed host under /var/lib (a pool's private /tmp must not hide
/// its own home).
fn sandbox(web: Web) -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix(&format!("corral-pens-{}-", web.name()))
        .tempdir_in("/var/lib")
        .expect("sandbox under /var/lib");
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    sites_support::Sandbox::in_dir(dir).dir
}

/// What `--disk-quota` did for the attacker.
#[derive(Clone, Debug)]
enum Quota {
    /// Applied, in MiB.
    Applied(u64),
    /// corral offers it, and said why this filesystem cannot have one.
    Unsupported(String),
    /// `corral site add` has no such option.
    Missing(String),
}

/// Adds the attacker, with `--disk-quota` when corral offers it.
fn provision_attacker(
    sb: &sites_support::Sandbox,
    env: &[(String, String)],
    args: &[&str],
) -> Quota {
    let mut with_quota = args.to_vec();
    with_quota.extend(["--disk-quota", DISK_QUOTA]);
    let o = sb.site(env, &[], &with_quota);
    if o.code == Some(0) {
        return Quota::Applied(size_mb(DISK_QUOTA).unwrap());
    }
    let first = o.stderr.lines().next().unwrap_or("").trim().to_string();
    let quota = if o.code == Some(64) {
        Quota::Missing(format!("`corral site add` has no --disk-quota ({first})"))
    } else {
        Quota::Unsupported(format!(
            "`corral site add --disk-quota {DISK_QUOTA}` refused: {first}"
        ))
    };
    ok(&sb.site(env, &[], args));
    quota
}

fn tenant(sb: &sites_support::Sandbox, domain: &str, user: &str) -> Tenant {
    let php_user = format!("{user}-php");
    Tenant {
        domain: domain.to_string(),
        uid: common::uid_of(user).expect("site owner"),
        gid: common::gid_of_group(user).expect("site group"),
        php_uid: common::uid_of(&php_user).expect("PHP user"),
        php_user,
        home: sb.home(user),
        docroot: sb.docroot(user, domain),
        socket: sb.path("run").join(format!("corral-{domain}.sock")),
        pool_file: sb.path("pool.d").join(format!("{domain}.conf")),
    }
}

fn gcc(args: &[&Path]) {
    let out = Command::new("gcc")
        .arg("-O1")
        .args(args)
        .output()
        .expect("run gcc");
    assert!(
        out.status.success(),
        "gcc {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn install_as(from: &Path, to: &Path, t: &Tenant, mode: u32) {
    fs::copy(from, to).unwrap();
    std::os::unix::fs::chown(to, Some(t.uid), Some(t.gid)).unwrap();
    fs::set_permissions(to, fs::Permissions::from_mode(mode)).unwrap();
}

/// `key = value` of a pool file.
fn pool_value(file: &Path, key: &str) -> Option<String> {
    fs::read_to_string(file).ok()?.lines().find_map(|l| {
        let (k, v) = l.split_once('=')?;
        (k.trim() == key).then(|| v.trim().trim_matches('"').to_string())
    })
}

/// "256M" -> MiB.
fn size_mb(v: &str) -> Option<u64> {
    let v = v.trim();
    let (num, mult) = match v.chars().last()? {
        'k' | 'K' => (&v[..v.len() - 1], 1.0 / 1024.0),
        'm' | 'M' => (&v[..v.len() - 1], 1.0),
        'g' | 'G' => (&v[..v.len() - 1], 1024.0),
        _ => (v, 1.0 / 1048576.0),
    };
    Some((num.trim().parse::<f64>().ok()? * mult) as u64)
}

fn token() -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let n = N.fetch_add(1, Ordering::Relaxed);
    format!(
        "{:06x}",
        (t ^ (std::process::id() << 8) ^ (n * 0x9e37)) & 0xffffff
    )
}

fn wait_http(web: &dyn WebServer, host: &str, path: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if http_get(web.port(), host, path).is_ok_and(|r| r.status == 200) {
            return;
        }
        thread::sleep(Duration::from_millis(100));
    }
}

// ---------------------------------------------------------------- cleanup

/// Undoes what probes leave on the host: SysV objects of the test's uids,
/// files planted in /tmp, /var/tmp and /dev/shm, stray processes, the
/// abstract-socket listener. Runs on drop, so also after a panic.
struct Cleanup {
    users: Vec<String>,
    uids: Mutex<Vec<u32>>,
    tokens: Mutex<Vec<String>>,
    stop: Arc<AtomicBool>,
}

impl Cleanup {
    fn new(users: &[String]) -> Cleanup {
        Cleanup {
            users: users.to_vec(),
            uids: Mutex::new(Vec::new()),
            tokens: Mutex::new(Vec::new()),
            stop: Arc::new(AtomicBool::new(false)),
        }
    }
    fn uids(&self, uids: &[u32]) {
        self.uids.lock().unwrap().extend(uids);
    }
    /// A fresh token whose planted files are removed at the end.
    fn token(&self) -> String {
        let t = token();
        self.tokens.lock().unwrap().push(t.clone());
        t
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for u in &self.users {
            for name in [format!("{u}-php"), u.clone()] {
                if common::uid_of(&name).is_some() {
                    let _ = Command::new("pkill").args(["-KILL", "-u", &name]).status();
                }
            }
        }
        let uids = self.uids.lock().unwrap_or_else(|e| e.into_inner()).clone();
        for (file, flag) in [("shm", "-m"), ("sem", "-s"), ("msg", "-q")] {
            for (id, uid) in sysv_objects(file) {
                if uids.contains(&uid) {
                    let _ = Command::new("ipcrm").args([flag, &id.to_string()]).output();
                }
            }
        }
        let tokens = self
            .tokens
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        for dir in ["/tmp", "/var/tmp", "/dev/shm"] {
            for e in fs::read_dir(dir).into_iter().flatten().flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if tokens.iter().any(|t| name.contains(&format!("pens-{t}"))) {
                    let _ = fs::remove_file(e.path());
                }
            }
        }
    }
}

/// (id, owner uid) of every SysV object of a kind, from /proc/sysvipc.
fn sysv_objects(kind: &str) -> Vec<(i64, u32)> {
    let text = fs::read_to_string(format!("/proc/sysvipc/{kind}")).unwrap_or_default();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap_or("").split_whitespace().collect();
    let col = |n: &str| header.iter().position(|h| *h == n);
    let (Some(ic), Some(uc)) = (
        col(if kind == "msg" {
            "msqid"
        } else if kind == "sem" {
            "semid"
        } else {
            "shmid"
        }),
        col("uid"),
    ) else {
        return Vec::new();
    };
    lines
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            Some((f.get(ic)?.parse().ok()?, f.get(uc)?.parse().ok()?))
        })
        .collect()
}

// ---------------------------------------------------------------- talking to the attacker

/// The attacker's `key=value` report.
#[derive(Debug, Default, Clone)]
struct Report {
    lines: Vec<(String, String)>,
    body: String,
}

impl Report {
    fn get(&self, k: &str) -> Option<&str> {
        self.lines
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
    }
    fn last(&self, k: &str) -> Option<&str> {
        self.lines
            .iter()
            .rev()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
    }
    fn all(&self, k: &str) -> Vec<&str> {
        self.lines
            .iter()
            .filter(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
            .collect()
    }
    fn is(&self, k: &str, v: &str) -> bool {
        self.get(k) == Some(v)
    }
    fn native_ran(&self) -> bool {
        self.get("native_launch").is_some_and(|l| l != "refused")
    }
    /// One line for a verdict: the report without its boilerplate.
    fn brief(&self, skip: &[&str]) -> String {
        let mut s: Vec<String> = self
            .lines
            .iter()
            .filter(|(k, _)| {
                !["probe", "end", "uid"].contains(&k.as_str()) && !skip.contains(&k.as_str())
            })
            .map(|(k, v)| format!("{k}={}", clip(v, 160)))
            .collect();
        s.dedup();
        s.join(" ")
    }
}

fn base64(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn clip(s: &str, n: usize) -> String {
    if s.len() <= n {
        return s.to_string();
    }
    let mut end = n;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn unescape(v: &str) -> String {
    let mut out = String::new();
    let mut it = v.chars();
    while let Some(c) = it.next() {
        if c == '\\' {
            match it.next() {
                Some('n') => out.push('\n'),
                Some('r') => out.push('\r'),
                Some(o) => out.push(o),
                None => {}
            }
        } else {
            out.push(c);
        }
    }
    out
}

impl Ctx<'_> {
    /// Where the attacker's PHP finds its native code.
    fn native_args(&self) -> String {
        format!(
            "native={}&native2={}&home={}",
            urlencode(&self.native.display().to_string()),
            urlencode(&self.native2.display().to_string()),
            urlencode(&self.a.home.display().to_string())
        )
    }

    fn fpm(&self) -> &'static str {
        match self.kind {
            Kind::Corral => "corral",
            Kind::PhpFpm => "php-fpm",
        }
    }

    /// Runs `probe` in the attacker's PHP, through the web server.
    fn attack(&self, probe: &str, args: &[(&str, String)]) -> Result<Report, String> {
        let mut q = format!("/pens_attacker.php?probe={probe}&{}", self.native_args());
        for (k, v) in args {
            q.push_str(&format!("&{k}={}", urlencode(v)));
        }
        let r = http_get(self.web.port(), &self.a.domain, &q)
            .map_err(|e| format!("GET {probe}: {e}"))?;
        let lines = r
            .body
            .lines()
            .filter_map(|l| l.split_once('=').map(|(k, v)| (k.to_string(), unescape(v))))
            .collect();
        let rep = Report {
            lines,
            body: r.body.clone(),
        };
        if r.status != 200 || !rep.is("end", "yes") {
            return Err(format!(
                "the attacker's page answered {} without finishing: {}",
                r.status,
                clip(&r.body.replace('\n', " "), 300)
            ));
        }
        Ok(rep)
    }

    /// A native probe: `pens-native ARGS...`.
    fn native(&self, args: &[&str], timeout: u64) -> Result<Report, String> {
        let mut a: Vec<(&str, String)> = vec![("timeout", timeout.to_string())];
        let keys: Vec<String> = (0..args.len()).map(|i| format!("a{i}")).collect();
        for (k, v) in keys.iter().zip(args) {
            a.push((k.as_str(), v.to_string()));
        }
        self.attack("native", &a)
    }

    /// A live process of the victim's PHP user (a worker when there is one).
    fn victim_pid(&self) -> Option<i32> {
        uid_pids(self.v.php_uid).into_iter().max()
    }

    fn attacker_pid(&self) -> Option<i32> {
        uid_pids(self.a.php_uid).into_iter().min()
    }

    fn get(&self, host: &Tenant, path: &str) -> Result<common::HttpResponse, String> {
        http_get(self.web.port(), &host.domain, path).map_err(|e| format!("GET {path}: {e}"))
    }

    /// The victim still serves, as itself.
    fn victim_serves(&self) -> Result<(), String> {
        match self.get(self.v, "/pens_victim.php") {
            Ok(r) if r.status == 200 && r.body.contains(&format!("uid={}", self.v.php_uid)) => {
                Ok(())
            }
            Ok(r) => Err(format!(
                "the victim answered {}: {}",
                r.status,
                clip(&r.body, 200)
            )),
            Err(e) => Err(format!("the victim did not answer: {e}")),
        }
    }
}

fn uid_pids(uid: u32) -> Vec<i32> {
    process_table()
        .into_iter()
        .filter(|&(p, _, st)| st != 'Z' && st != 'X' && uid_of_pid(p) == Some(uid))
        .map(|(p, _, _)| p)
        .collect()
}

/// Runs `cmd` as root in `pid`'s namespaces (`-m`, `-i`, ...), optionally
/// as `uid:gid`.
fn nsenter(pid: i32, ns: &[&str], as_user: Option<(u32, u32)>, cmd: &[&str]) -> common::Output {
    let t = pid.to_string();
    let mut args: Vec<String> = vec!["-t".into(), t];
    args.extend(ns.iter().map(|s| s.to_string()));
    if let Some((u, g)) = as_user {
        args.extend(["-S".into(), u.to_string(), "-G".into(), g.to_string()]);
    }
    args.push("--".into());
    args.extend(cmd.iter().map(|s| s.to_string()));
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    run_cmd(Path::new("/usr/bin/nsenter"), &a)
}

/// The cgroup of `pid` for one v1 controller ("memory", "pids") or v2
/// (""), as the directory under /sys/fs/cgroup.
fn cgroup_dir(pid: i32, controller: &str) -> Option<PathBuf> {
    let text = fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    cgroup_dir_from(&text.replace('\n', ";"), controller)
}

fn cgroup_dir_from(cgroups: &str, controller: &str) -> Option<PathBuf> {
    for entry in cgroups.split(';') {
        let mut f = entry.splitn(3, ':');
        let (_, ctrls, path) = (f.next()?, f.next()?, f.next()?);
        if controller.is_empty() && ctrls.is_empty() {
            let base = if Path::new("/sys/fs/cgroup/unified").is_dir() {
                "/sys/fs/cgroup/unified"
            } else {
                "/sys/fs/cgroup"
            };
            return Some(PathBuf::from(format!("{base}{path}")));
        }
        if !controller.is_empty() && ctrls.split(',').any(|c| c == controller) {
            return Some(PathBuf::from(format!("/sys/fs/cgroup/{ctrls}{path}")));
        }
    }
    None
}

/// A pool cgroup dir and its ancestors, leaf first, up to (not including)
/// the test's own cgroup or the hierarchy's root: where a pool's limits
/// may be written (corral puts them on the pool, its prototypes in a leaf
/// per generation).
fn cgroup_chain(leaf: &Path, controller: &str) -> Vec<PathBuf> {
    let own = cgroup_dir(std::process::id() as i32, controller);
    let mut out = Vec::new();
    let mut d = leaf.to_path_buf();
    loop {
        if Some(&d) == own.as_ref() || !d.join("cgroup.procs").exists() {
            break;
        }
        let Some(parent) = d.parent().map(Path::to_path_buf) else {
            break;
        };
        // The hierarchy's root has no parent with cgroup.procs.
        if !parent.join("cgroup.procs").exists() {
            break;
        }
        out.push(d);
        d = parent;
    }
    out
}

/// The tightest limit along a pool's cgroup chain, as `file=value`.
fn chain_limit(leaf: &Path, controller: &str, files: &[&str]) -> Option<String> {
    cgroup_chain(leaf, controller)
        .iter()
        .filter_map(|d| cgroup_limit(d, files))
        .min_by_key(|fv| {
            fv.split_once('=')
                .and_then(|(_, v)| v.parse::<u64>().ok())
                .unwrap_or(u64::MAX)
        })
}

/// OOM kills along a pool's cgroup chain, per member.
fn chain_ooms(leaf: &Path, controller: &str) -> Vec<(PathBuf, u64)> {
    cgroup_chain(leaf, controller)
        .into_iter()
        .filter_map(|d| oom_kills(&d).map(|n| (d, n)))
        .collect()
}

/// The most OOM kills any member of the chain gained.
fn oom_delta(before: &[(PathBuf, u64)], after: &[(PathBuf, u64)]) -> u64 {
    after
        .iter()
        .map(|(d, n)| {
            n - before
                .iter()
                .find(|(b, _)| b == d)
                .map(|(_, m)| *m)
                .unwrap_or(0)
                .min(*n)
        })
        .max()
        .unwrap_or(0)
}

/// OOM kills counted in a memory cgroup (v1 `memory.oom_control`, v2
/// `memory.events`).
fn oom_kills(dir: &Path) -> Option<u64> {
    for (file, key) in [
        ("memory.oom_control", "oom_kill"),
        ("memory.events", "oom_kill"),
    ] {
        if let Ok(text) = fs::read_to_string(dir.join(file)) {
            if let Some(n) = text
                .lines()
                .find_map(|l| l.strip_prefix(&format!("{key} ")))
            {
                return n.trim().parse().ok();
            }
        }
    }
    None
}

/// The limit file of a cgroup, if any limit is set.
fn cgroup_limit(dir: &Path, files: &[&str]) -> Option<String> {
    files.iter().find_map(|f| {
        let v = fs::read_to_string(dir.join(f)).ok()?.trim().to_string();
        (v != "max" && v != "9223372036854771712" && v != "-1").then(|| format!("{f}={v}"))
    })
}

/// EPERM, EACCES, ESRCH, or ENOENT for a /proc entry that is not shown.
fn is_errno_refusal(v: &str) -> bool {
    [
        "Operation not permitted",
        "No such process",
        "Permission denied",
        "No such file or directory",
    ]
    .iter()
    .any(|e| v.contains(e))
}

fn whoami(ctx: &Ctx) {
    match ctx.attack("whoami", &[]) {
        Ok(r) => {
            eprintln!("[pens {}] the attacker's PHP: {}", ctx.fpm(), r.brief(&[]));
            assert_eq!(
                r.get("uid"),
                Some(ctx.a.php_uid.to_string().as_str()),
                "the attacker's PHP must run as {}: {}",
                ctx.a.php_user,
                r.body
            );
        }
        Err(e) => panic!("the attacker's page does not work under {}: {e}", ctx.fpm()),
    }
}

// ---------------------------------------------------------------- the probes

const PROBES: &[Probe] = &[
    Probe {
        name: "fcgi_status_exec",
        blocked: "a FastCGI request from the attacker to the victim's TCP pm.status_listen, with PHP_ADMIN_VALUE auto_prepend_file=data:… and open_basedir=/, runs no code",
        run: fcgi_status_exec,
    },
    Probe {
        name: "fcgi_status_uris",
        blocked: "the victim's status listener does not show the attacker the victim's in-flight request URI",
        run: fcgi_status_uris,
    },
    Probe {
        name: "victim_socket",
        blocked: "connecting to the victim's unix socket is refused",
        run: victim_socket,
    },
    Probe {
        name: "proc_list",
        blocked: "listing /proc shows no process of the victim's PHP user (nor its command line)",
        run: proc_list,
    },
    Probe {
        name: "proc_private",
        blocked: "/proc/VICTIM_PID environ, maps, fd, cwd, root, exe are unreadable or the pid is invisible",
        run: proc_private,
    },
    Probe {
        name: "ptrace_kill",
        blocked: "ptrace attach/seize, process_vm_readv, /proc/PID/mem and kill(0)/SIGCONT of a victim worker all fail (EPERM/ESRCH)",
        run: ptrace_kill,
    },
    Probe {
        name: "tmp_plant",
        blocked: "nothing the attacker writes to /tmp, /var/tmp, /dev/shm (files, a symlink, POSIX shm and a semaphore) appears in the victim's mount namespace",
        run: tmp_plant,
    },
    Probe {
        name: "tmp_read",
        blocked: "the victim's files in its /tmp, /var/tmp, /dev/shm (0644) cannot be read by the attacker",
        run: tmp_read,
    },
    Probe {
        name: "pool_config",
        blocked: "the victim's pool file (env[] secret) and registry are neither readable by the attacker nor world-readable",
        run: pool_config,
    },
    Probe {
        name: "docroot_read",
        blocked: "the victim's wp-config.php and directories cannot be read or listed by the attacker's PHP nor by cat",
        run: docroot_read,
    },
    Probe {
        name: "symlink_serve",
        blocked: "the web server does not serve the victim's wp-config.php through a symlink in the attacker's docroot (made by its PHP in uploads, or by its owner)",
        run: symlink_serve,
    },
    Probe {
        name: "uploads_exec",
        blocked: "PHP written into wp-content/uploads is never executed, whatever follows .php in the URL",
        run: uploads_exec,
    },
    Probe {
        name: "ld_preload",
        blocked: "putenv(LD_PRELOAD) + mail()/mb_send_mail()/error_log(…,1) never load the attacker's shared object",
        run: ld_preload,
    },
    Probe {
        name: "sysv_php",
        blocked: "SysV memory, semaphores and queues made by the attacker's PHP (shmop, shm_attach, sem_get, msg_get_queue) are not visible in the victim's IPC namespace",
        run: sysv_php,
    },
    Probe {
        name: "sysv_native",
        blocked: "native shmget/semget/msgget objects (0666) of the attacker are not visible to the victim, and the victim's 0666 segment cannot be attached",
        run: sysv_native,
    },
    Probe {
        name: "opcache_peek",
        blocked: "opcache_get_status() in the attacker's pool lists none of the victim's scripts",
        run: opcache_peek,
    },
    Probe {
        name: "sessions",
        blocked: "the attacker can neither read the victim's session file nor write into its sessions dir",
        run: sessions,
    },
    Probe {
        name: "control_socket",
        blocked: "the master's control socket refuses the attacker (and is not accessible to others by its mode)",
        run: control_socket,
    },
    Probe {
        name: "master_log",
        blocked: "the master's error log is neither readable by the attacker nor world-readable",
        run: master_log,
    },
    Probe {
        name: "memory_hog",
        blocked: "a native process allocating 1 GiB past memory_limit (or past the pool's memory limit) is OOM-killed inside the attacker's own memory cgroup; the victim's workers live on and serve",
        run: memory_hog,
    },
    Probe {
        name: "fork_bomb",
        blocked: "forking stops with EAGAIN at the attacker's pids limit (below 1000), in its own pids cgroup; the victim serves and the host can fork meanwhile",
        run: fork_bomb,
    },
    Probe {
        name: "cgroup_escape",
        blocked: "the attacker cannot move itself out of its cgroups nor lift their limits",
        run: cgroup_escape,
    },
    Probe {
        name: "disk_fill",
        blocked: "writing into its own tmp stops at the attacker's disk quota (EDQUOT)",
        run: disk_fill,
    },
    Probe {
        name: "abstract_socket",
        blocked: "connecting to an abstract unix socket bound outside the attacker's pool fails",
        run: abstract_socket,
    },
    Probe {
        name: "setuid_nnp",
        blocked: "a setuid-root program run by the attacker gets no root (no_new_privs)",
        run: setuid_nnp,
    },
    Probe {
        name: "userns_unmask",
        blocked: "a new user+mount namespace cannot peel off what hides the host's /tmp and /proc (a root file in the host's /tmp and the victim's /proc entry stay invisible)",
        run: userns_unmask,
    },
    Probe {
        name: "core_dump",
        blocked: "a core dump of the attacker's process lands nowhere outside its own home",
        run: core_dump,
    },
];

macro_rules! attack {
    ($e:expr) => {
        match $e {
            Ok(r) => r,
            Err(e) => return Verdict::Broken(e),
        }
    };
}

fn fcgi_status_exec(ctx: &Ctx) -> Verdict {
    let r = attack!(ctx.attack(
        "fcgi_status_exec",
        &[
            ("addr", format!("127.0.0.1:{}", ctx.status_port)),
            (
                "script",
                ctx.v.docroot.join("index.php").display().to_string()
            ),
            (
                "secret_file",
                ctx.v.docroot.join("wp-config.php").display().to_string()
            ),
        ],
    ));
    // The same request from outside any pen (root, the test): the status
    // listener itself must refuse to run code, whoever reaches it (a host
    // account, a pool without Landlock), not only because Landlock keeps
    // this attacker from connecting.
    let code = "<?php echo \"PENSRCE uid=\", getmyuid(), \"\\n\"; exit;";
    let ini = format!(
        "allow_url_include=On\nauto_prepend_file=\"data://text/plain;base64,{}\"\nopen_basedir=/\n",
        base64(code.as_bytes())
    );
    let script = ctx.v.docroot.join("index.php").display().to_string();
    let req = common::Request::php(&script)
        .param("PHP_ADMIN_VALUE", &ini)
        .param("PHP_VALUE", &ini);
    let addr: std::net::SocketAddr = format!("127.0.0.1:{}", ctx.status_port).parse().unwrap();
    let from_root =
        match common::request_timeout(&common::Listen::Tcp(addr), &req, Duration::from_secs(10)) {
            Ok(reply) if reply.body.contains("PENSRCE") => Some(format!(
                "ran code for root's request too: {}",
                clip(reply.body.trim(), 60)
            )),
            Ok(reply) => {
                let _ = reply;
                None
            }
            Err(_) => None,
        };
    match (r.get("ran_as"), from_root) {
        (Some(uid), root) => Verdict::Escaped(format!(
            "the attacker's code ran as uid {uid} (victim's PHP user is {}); wp-config.php {}; from root: {}",
            ctx.v.php_uid,
            if r.get("secret_read").is_some_and(|s| s.contains(&ctx.wp_secret)) { "read" } else { "not read" },
            if root.is_some() { "code ran too" } else { "no code" }
        )),
        (None, Some(root)) => Verdict::Escaped(format!(
            "the attacker could not connect ({}), but the status listener {root}",
            r.get("error").unwrap_or("")
        )),
        (None, None) => Verdict::Blocked(format!(
            "connected={} {}; from root: status only, no code",
            r.get("connected").unwrap_or("?"),
            clip(&format!("error={} stdout={}", r.get("error").unwrap_or(""), r.get("stdout").unwrap_or("").replace('\n', " ")), 200)
        )),
    }
}

fn fcgi_status_uris(ctx: &Ctx) -> Verdict {
    let secret = format!("inflight-{}", ctx.cleanup.token());
    let (port, host) = (ctx.web.port(), ctx.v.domain.clone());
    let path = format!("/pens_victim.php?do=sleep&s=3&tok={secret}");
    let sleeper = thread::spawn(move || http_get(port, &host, &path));
    thread::sleep(Duration::from_millis(800));
    let r = ctx.attack(
        "fcgi_status_uris",
        &[
            ("addr", format!("127.0.0.1:{}", ctx.status_port)),
            ("path", "/fpm-status".into()),
        ],
    );
    let slept = sleeper.join();
    let r = attack!(r);
    if !matches!(&slept, Ok(Ok(s)) if s.status == 200) {
        return Verdict::Broken(format!("the victim's in-flight request failed: {slept:?}"));
    }
    let page = r.get("stdout").unwrap_or("");
    if page.contains(&secret) {
        Verdict::Escaped(format!(
            "the status page on 127.0.0.1:{} showed the victim's in-flight URI ({} bytes of status)",
            ctx.status_port,
            page.len()
        ))
    } else {
        Verdict::Blocked(format!(
            "connected={} error={} page: {}",
            r.get("connected").unwrap_or("?"),
            r.get("error").unwrap_or(""),
            clip(&page.replace('\n', " "), 120)
        ))
    }
}

fn victim_socket(ctx: &Ctx) -> Verdict {
    let r = attack!(ctx.attack(
        "victim_socket",
        &[
            ("sock", ctx.v.socket.display().to_string()),
            (
                "script",
                ctx.v.docroot.join("index.php").display().to_string()
            ),
        ],
    ));
    if r.is("connected", "yes") {
        Verdict::Escaped(format!(
            "connected to {}: {}",
            ctx.v.socket.display(),
            clip(r.get("stdout").unwrap_or(""), 100)
        ))
    } else {
        Verdict::Blocked(r.get("error").unwrap_or("").to_string())
    }
}

fn proc_list(ctx: &Ctx) -> Verdict {
    let r = attack!(ctx.attack("proc_list", &[("victim_uid", ctx.v.php_uid.to_string())]));
    let n: usize = r
        .get("victim_pids")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    if n > 0 {
        Verdict::Escaped(format!(
            "{n} of the victim's processes visible among {} pids: {}",
            r.get("visible_pids").unwrap_or("?"),
            clip(r.get("victim_cmdlines").unwrap_or(""), 200)
        ))
    } else {
        Verdict::Blocked(format!(
            "{} pids visible, none of the victim's",
            r.get("visible_pids").unwrap_or("?")
        ))
    }
}

fn proc_private(ctx: &Ctx) -> Verdict {
    let Some(pid) = ctx.victim_pid() else {
        return Verdict::Broken("no process of the victim's PHP user runs".into());
    };
    let r = attack!(ctx.attack("proc_private", &[("pid", pid.to_string())]));
    let mut got = Vec::new();
    for k in ["environ", "maps", "io", "stack"] {
        if r.get(k).is_some_and(|v| v.starts_with("read")) {
            got.push(format!("{k} {}", r.get(k).unwrap()));
        }
    }
    for k in ["cwd", "root", "exe", "fd"] {
        if r.get(k).is_some_and(|v| v != "denied") {
            got.push(format!("{k}={}", r.get(k).unwrap()));
        }
    }
    if got.is_empty() {
        Verdict::Blocked(format!(
            "pid {pid}: exists={} {}",
            r.get("exists").unwrap_or("?"),
            clip(&r.brief(&["exists"]), 200)
        ))
    } else {
        Verdict::Escaped(format!("pid {pid}: {}", got.join(", ")))
    }
}

fn ptrace_kill(ctx: &Ctx) -> Verdict {
    let Some(pid) = ctx.victim_pid() else {
        return Verdict::Broken("no process of the victim's PHP user runs".into());
    };
    let r = attack!(ctx.native(&["trace", &pid.to_string()], 20));
    if !r.native_ran() {
        return Verdict::Blocked(format!(
            "no native code: {}",
            r.get("native_refused").unwrap_or("")
        ));
    }
    let keys = [
        "n_ptrace_attach",
        "n_ptrace_seize",
        "n_vm_readv",
        "n_proc_mem",
        "n_kill0",
        "n_sigcont",
    ];
    let mut allowed = Vec::new();
    for k in keys {
        match r.get(k) {
            Some(v) if is_errno_refusal(v) => {}
            Some(v) => allowed.push(format!("{}: {v}", &k[2..])),
            None => return Verdict::Broken(format!("no {k} in the report: {}", r.brief(&[]))),
        }
    }
    if allowed.is_empty() {
        Verdict::Blocked(format!(
            "pid {pid}: {}",
            r.brief(&["native_launch", "native_exit", "native_signal"])
        ))
    } else {
        // kill(2) lets any process send SIGCONT within its own session:
        // pools that share the master's session can wake each other's
        // stopped workers (the slow log stops them to read their stack).
        let sid = |p: i32| {
            fs::read_to_string(format!("/proc/{p}/stat"))
                .ok()
                .and_then(|s| {
                    s[s.rfind(')')? + 1..]
                        .split_whitespace()
                        .nth(4)
                        .map(str::to_string)
                })
        };
        let same_session = ctx
            .attacker_pid()
            .and_then(sid)
            .is_some_and(|a| Some(a) == sid(pid));
        Verdict::Escaped(format!(
            "pid {pid}: {}{}",
            allowed.join(", "),
            if same_session {
                " (the attacker's worker shares the victim's session)"
            } else {
                ""
            }
        ))
    }
}

fn tmp_plant(ctx: &Ctx) -> Verdict {
    let tok = ctx.cleanup.token();
    let r = attack!(ctx.attack("tmp_plant", &[("tok", tok.clone())]));
    let Some(vpid) = ctx.victim_pid() else {
        return Verdict::Broken("no process of the victim's PHP user runs".into());
    };
    let candidates = [
        format!("/tmp/pens-{tok}-plant"),
        format!("/var/tmp/pens-{tok}-plant"),
        format!("/dev/shm/pens-{tok}-plant"),
        format!("/tmp/pens-{tok}-link"),
        format!("/dev/shm/pens-{tok}-shm"),
        format!("/dev/shm/sem.pens-{tok}-sem"),
    ];
    let mut seen = Vec::new();
    for c in &candidates {
        let o = nsenter(
            vpid,
            &["-m"],
            None,
            &["/bin/sh", "-c", &format!("test -e '{c}' || test -L '{c}'")],
        );
        if o.code == Some(0) {
            seen.push(c.clone());
        } else if o.code != Some(1) {
            return Verdict::Broken(format!("nsenter into the victim's pid {vpid}: {}", o.all()));
        }
    }
    let planted = r.brief(&["native_launch", "native_exit", "native_signal"]);
    if seen.is_empty() {
        Verdict::Blocked(format!(
            "the victim sees none; the attacker reported {}",
            clip(&planted, 240)
        ))
    } else {
        Verdict::Escaped(format!(
            "the victim's mount namespace shows {}",
            seen.join(" ")
        ))
    }
}

fn tmp_read(ctx: &Ctx) -> Verdict {
    let tok = ctx.cleanup.token();
    let Some(vpid) = ctx.victim_pid() else {
        return Verdict::Broken("no process of the victim's PHP user runs".into());
    };
    let secret = format!("victim-tmp-secret-{tok}");
    let files: Vec<String> = ["/tmp", "/var/tmp", "/dev/shm"]
        .iter()
        .map(|d| format!("{d}/pens-{tok}-victim"))
        .collect();
    let script = files
        .iter()
        .map(|f| format!("printf '{secret}' > '{f}'"))
        .collect::<Vec<_>>()
        .join(" && ");
    let o = nsenter(
        vpid,
        &["-m"],
        Some((ctx.v.php_uid, ctx.v.gid)),
        &["/bin/sh", "-c", &format!("umask 022 && {script}")],
    );
    if o.code != Some(0) {
        return Verdict::Broken(format!(
            "the victim's temp files could not be made in its namespace: {}",
            o.all()
        ));
    }
    let r = attack!(ctx.attack(
        "tmp_read",
        &[
            ("files", files.join(",")),
            ("victim_uid", ctx.v.php_uid.to_string())
        ]
    ));
    let read: Vec<&String> = files
        .iter()
        .filter(|f| {
            r.get(&format!("read_{f}"))
                .is_some_and(|v| v.contains(&secret))
        })
        .collect();
    let names = r.get("victim_names").unwrap_or("");
    if read.is_empty() {
        Verdict::Blocked(format!(
            "none read; victim's names visible: {}",
            if names.is_empty() { "none" } else { names }
        ))
    } else {
        Verdict::Escaped(format!(
            "read {}",
            read.iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(" ")
        ))
    }
}

fn world_readable(p: &Path) -> Option<u32> {
    let m = fs::metadata(p).ok()?.mode() & 0o777;
    (m & 0o004 != 0).then_some(m)
}

fn pool_config(ctx: &Ctx) -> Verdict {
    let vpool = ctx
        .pool_files
        .iter()
        .find(|f| f.file_name() == ctx.v.pool_file.file_name())
        .unwrap()
        .clone();
    let files = [vpool.clone(), ctx.registry.clone(), ctx.master_conf.clone()];
    let dirs = [vpool.parent().unwrap().to_path_buf()];
    let r = attack!(ctx.attack(
        "read_files",
        &[
            (
                "files",
                files
                    .iter()
                    .map(|f| f.display().to_string())
                    .collect::<Vec<_>>()
                    .join(",")
            ),
            (
                "dirs",
                dirs.iter()
                    .map(|f| f.display().to_string())
                    .collect::<Vec<_>>()
                    .join(",")
            ),
        ],
    ));
    let leaked = r.body.contains(&ctx.env_secret);
    let mut loose = Vec::new();
    for f in [&vpool, &ctx.registry] {
        if let Some(m) = world_readable(f) {
            loose.push(format!("{} is {m:o}", f.display()));
        }
    }
    let readable: Vec<String> = files
        .iter()
        .filter(|f| {
            r.get(&format!("file_{}", f.display()))
                .is_some_and(|v| v.starts_with("read"))
        })
        .map(|f| f.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    if leaked {
        Verdict::Escaped(format!(
            "the attacker read the victim's env[] secret; readable: {}",
            readable.join(" ")
        ))
    } else if !loose.is_empty() {
        Verdict::Escaped(format!(
            "not read here, but world-readable: {}",
            loose.join(", ")
        ))
    } else {
        Verdict::Blocked(format!(
            "readable: {}",
            if readable.is_empty() {
                "none".to_string()
            } else {
                readable.join(" ")
            }
        ))
    }
}

fn docroot_read(ctx: &Ctx) -> Verdict {
    let cfg = ctx.v.docroot.join("wp-config.php").display().to_string();
    let r = attack!(ctx.attack(
        "read_files",
        &[
            ("files", cfg.clone()),
            (
                "dirs",
                format!("{},{}", ctx.v.home.display(), ctx.v.docroot.display())
            ),
            ("cat", cfg),
        ],
    ));
    let listed: Vec<&str> = [
        ctx.v.home.display().to_string(),
        ctx.v.docroot.display().to_string(),
    ]
    .iter()
    .filter(|d| {
        r.get(&format!("dir_{d}"))
            .is_some_and(|v| v.starts_with("listed"))
    })
    .map(|_| "listed")
    .collect();
    if r.body.contains(&ctx.wp_secret) {
        Verdict::Escaped("the attacker read the victim's wp-config.php".into())
    } else if !listed.is_empty() {
        Verdict::Escaped("the attacker listed the victim's directories".into())
    } else {
        Verdict::Blocked(clip(&r.brief(&[]), 240))
    }
}

fn symlink_serve(ctx: &Ctx) -> Verdict {
    let tok = ctx.cleanup.token();
    let target = ctx.v.docroot.join("wp-config.php").display().to_string();
    let up = ctx.a.docroot.join("wp-content/uploads");
    let by_php = up.join(format!("pens-{tok}-leak.txt"));
    let r = attack!(ctx.attack(
        "symlink",
        &[
            ("link", by_php.display().to_string()),
            ("target", target.clone())
        ]
    ));
    // If PHP may not make symlinks, the web server's own rule still has to
    // hold: the test makes one owned by the PHP user (as native code that
    // got past Landlock would), and one the owner made (e.g. over SFTP).
    let by_php_native = up.join(format!("pens-{tok}-leak3.txt"));
    let by_owner = ctx.a.docroot.join(format!("pens-{tok}-leak2.txt"));
    for (link, uid) in [(&by_php_native, ctx.a.php_uid), (&by_owner, ctx.a.uid)] {
        let _ = fs::remove_file(link);
        std::os::unix::fs::symlink(&target, link).unwrap();
        let _ = Command::new("chown")
            .args(["-h", &format!("{uid}:{}", ctx.a.gid)])
            .arg(link)
            .status();
    }
    let mut leaks = Vec::new();
    let mut seen = Vec::new();
    for (who, path) in [
        ("PHP's", format!("/wp-content/uploads/pens-{tok}-leak.txt")),
        (
            "the PHP user's",
            format!("/wp-content/uploads/pens-{tok}-leak3.txt"),
        ),
        ("owner's", format!("/pens-{tok}-leak2.txt")),
    ] {
        match ctx.get(ctx.a, &path) {
            Ok(resp) if resp.body.contains(&ctx.wp_secret) => {
                leaks.push(format!("{who} symlink {path} → {}", resp.status))
            }
            Ok(resp) => seen.push(format!("{path} {}", resp.status)),
            Err(e) => return Verdict::Broken(e),
        }
    }
    if leaks.is_empty() {
        Verdict::Blocked(format!(
            "symlink by PHP: {}; served: {}",
            r.get("symlink").unwrap_or("?"),
            seen.join(", ")
        ))
    } else {
        Verdict::Escaped(format!(
            "served the victim's wp-config.php: {}",
            leaks.join(", ")
        ))
    }
}

fn uploads_exec(ctx: &Ctx) -> Verdict {
    let up = ctx.a.docroot.join("wp-content/uploads/pens-evil.php");
    let r = attack!(ctx.attack("upload_php", &[("path", up.display().to_string())]));
    if !r.is("upload", "written") {
        return Verdict::Broken(format!(
            "the attacker could not write into its uploads: {}",
            r.brief(&[])
        ));
    }
    let paths = [
        "/wp-content/uploads/pens-evil.php",
        "/wp-content/uploads/pens-evil.php/",
        "/wp-content/uploads/pens-evil.php/x.jpg",
        "/wp-content/uploads/pens-evil.php/x.php",
        "/wp-content//uploads/pens-evil.php/",
        "/wp-content/uploads/./pens-evil.php/x.jpg",
        "/wp-content/%75ploads/pens-evil.php/x.jpg",
        "/wp-content/uploads/pens-evil.php%2fx.jpg",
        "/wp-content/UPLOADS/../uploads/pens-evil.php/",
    ];
    let mut ran = Vec::new();
    let mut statuses = Vec::new();
    for p in paths {
        match ctx.get(ctx.a, p) {
            Ok(resp) if resp.body.contains("PENSEXEC") => {
                ran.push(format!("{p} ({})", resp.status))
            }
            Ok(resp) => statuses.push(format!(
                "{} {}",
                p.trim_start_matches("/wp-content"),
                resp.status
            )),
            Err(e) => return Verdict::Broken(e),
        }
    }
    if ran.is_empty() {
        Verdict::Blocked(statuses.join(", "))
    } else {
        Verdict::Escaped(format!("executed: {}", ran.join(", ")))
    }
}

fn ld_preload(ctx: &Ctx) -> Verdict {
    let tok = ctx.cleanup.token();
    let mark = ctx.a.home.join(format!("tmp/pens-{tok}-preload"));
    let r = attack!(ctx.attack(
        "ld_preload",
        &[
            ("so", ctx.preload.display().to_string()),
            ("mark", mark.display().to_string())
        ],
    ));
    let marker = r.get("marker").unwrap_or("absent");
    let usable = format!(
        "putenv {}, mail {}, mb_send_mail {}, error_log {}",
        r.get("putenv_usable").unwrap_or("?"),
        r.get("mail_usable").unwrap_or("?"),
        r.get("mb_send_mail_usable").unwrap_or("?"),
        r.get("error_log_usable").unwrap_or("?")
    );
    if marker != "absent" {
        Verdict::Escaped(format!("the attacker's .so ran: {marker} ({usable})"))
    } else {
        Verdict::Blocked(usable)
    }
}

/// Keys (as `ipcs` prints them, 0x%08x) visible in `pid`'s IPC namespace.
fn ipc_keys(pid: i32) -> Result<String, String> {
    let o = nsenter(pid, &["-i"], None, &["ipcs", "-a"]);
    if o.code != Some(0) {
        return Err(format!("ipcs in pid {pid}'s IPC namespace: {}", o.all()));
    }
    Ok(o.stdout)
}

fn sysv_php(ctx: &Ctx) -> Verdict {
    let tok = ctx.cleanup.token();
    let key = 0x5100_0000u32 | (u32::from_str_radix(&tok, 16).unwrap() & 0xfffff) << 2;
    let r = attack!(ctx.attack(
        "sysv_php",
        &[
            ("key", key.to_string()),
            ("tok", tok.clone()),
            ("mb", "64".into())
        ]
    ));
    let made: Vec<String> = ["shmop_open", "shm_attach", "sem_get", "msg_get_queue"]
        .iter()
        .filter(|k| r.get(k).is_some_and(|v| v.starts_with("created")))
        .map(|k| k.to_string())
        .collect();
    let Some(vpid) = ctx.victim_pid() else {
        return Verdict::Broken("no process of the victim's PHP user runs".into());
    };
    let keys: Vec<String> = (0..4).map(|i| format!("0x{:08x}", key + i)).collect();
    let victim_view = match ipc_keys(vpid) {
        Ok(v) => v,
        Err(e) => return Verdict::Broken(e),
    };
    let visible: Vec<&String> = keys
        .iter()
        .filter(|k| victim_view.contains(k.as_str()))
        .collect();
    // Outliving the request: still there in the attacker's own namespace.
    let outlived = ctx
        .attacker_pid()
        .and_then(|p| ipc_keys(p).ok())
        .map(|a| keys.iter().filter(|k| a.contains(k.as_str())).count())
        .unwrap_or(0);
    if made.is_empty() {
        return Verdict::Blocked(format!("nothing created: {}", clip(&r.brief(&[]), 240)));
    }
    if visible.is_empty() {
        Verdict::Blocked(format!(
            "created {} ({} outlived the request in the attacker's own IPC namespace), none visible to the victim",
            made.join(" "),
            outlived
        ))
    } else {
        Verdict::Escaped(format!(
            "created {}; outlived the request and visible to the victim: {}",
            made.join(" "),
            visible
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(" ")
        ))
    }
}

/// The key pens-native derives from a token.
fn native_key(tok: &str) -> i64 {
    (0x5000_0000u32 | (u32::from_str_radix(tok, 16).unwrap() & 0xffffff)) as i32 as i64
}

fn sysv_native(ctx: &Ctx) -> Verdict {
    let Some(vpid) = ctx.victim_pid() else {
        return Verdict::Broken("no process of the victim's PHP user runs".into());
    };
    // The victim's own 0666 segment, made as the victim in its IPC namespace.
    let vtok = ctx.cleanup.token();
    let o = nsenter(
        vpid,
        &["-i"],
        Some((ctx.v.php_uid, ctx.v.gid)),
        &[&ctx.native_root.display().to_string(), "sysv", &vtok, "0"],
    );
    if !o.stdout.contains("shmget=ok") {
        return Verdict::Broken(format!(
            "the victim's segment could not be made: {}",
            o.all()
        ));
    }
    let tok = ctx.cleanup.token();
    let r = attack!(ctx.native(&["sysv", &tok, &native_key(&vtok).to_string()], 20));
    if !r.native_ran() {
        return Verdict::Blocked(format!(
            "no native code: {}",
            r.get("native_refused").unwrap_or("")
        ));
    }
    let mut escapes = Vec::new();
    if r.is("n_host_shmat", "ok") {
        escapes.push(format!(
            "attached the victim's segment (read {:?})",
            r.get("n_host_content").unwrap_or("")
        ));
    }
    let key = format!("0x{:08x}", native_key(&tok) as u32);
    match ipc_keys(vpid) {
        Ok(view) if view.contains(&key) => {
            escapes.push(format!("its objects ({key}) are visible to the victim"))
        }
        Ok(_) => {}
        Err(e) => return Verdict::Broken(e),
    }
    if escapes.is_empty() {
        Verdict::Blocked(clip(
            &r.brief(&["native_launch", "native_exit", "native_signal", "n_shm_key"]),
            240,
        ))
    } else {
        Verdict::Escaped(escapes.join("; "))
    }
}

fn opcache_peek(ctx: &Ctx) -> Verdict {
    // The victim's scripts get compiled first.
    for p in ["/", "/pens_victim.php"] {
        if let Err(e) = ctx.get(ctx.v, p) {
            return Verdict::Broken(e);
        }
    }
    let r = attack!(ctx.attack(
        "opcache",
        &[("victim_prefix", ctx.v.home.display().to_string())]
    ));
    match r.get("victim_scripts") {
        Some(s) if !s.is_empty() => {
            Verdict::Escaped(format!("the attacker's OPcache lists the victim's {s}"))
        }
        _ => Verdict::Blocked(format!(
            "{} scripts cached, none of the victim's{}",
            r.get("cached_scripts").unwrap_or("0"),
            r.get("status")
                .map(|s| format!(" ({s})"))
                .unwrap_or_default()
        )),
    }
}

fn sessions(ctx: &Ctx) -> Verdict {
    let tok = ctx.cleanup.token();
    let secret = format!("session-secret-{tok}");
    let resp = match ctx.get(
        ctx.v,
        &format!("/pens_victim.php?do=session&secret={secret}"),
    ) {
        Ok(r) => r,
        Err(e) => return Verdict::Broken(e),
    };
    let Some(id) = resp
        .body
        .lines()
        .find_map(|l| l.strip_prefix("session="))
        .map(str::to_string)
    else {
        return Verdict::Broken(format!(
            "the victim made no session: {} {}",
            resp.status, resp.body
        ));
    };
    let dir = ctx.v.home.join("sessions");
    let file = dir.join(format!("sess_{id}"));
    let planted = dir.join(format!("sess_pens{tok}"));
    let r = attack!(ctx.attack(
        "read_files",
        &[
            ("files", file.display().to_string()),
            ("dirs", dir.display().to_string())
        ]
    ));
    let w = attack!(ctx.attack(
        "write_files",
        &[("files", planted.display().to_string()), ("tok", tok)]
    ));
    let mut escapes = Vec::new();
    if r.body.contains(&secret) {
        escapes.push("read the victim's session".to_string());
    }
    if r.get(&format!("dir_{}", dir.display()))
        .is_some_and(|v| v.starts_with("listed"))
    {
        escapes.push("listed the victim's sessions".to_string());
    }
    if planted.exists() || w.get(&format!("write_{}", planted.display())) == Some("written") {
        escapes.push(format!("wrote {}", planted.display()));
    }
    if escapes.is_empty() {
        Verdict::Blocked(clip(&format!("{} {}", r.brief(&[]), w.brief(&[])), 240))
    } else {
        Verdict::Escaped(escapes.join("; "))
    }
}

fn control_socket(ctx: &Ctx) -> Verdict {
    let Some(sock) = &ctx.control_socket else {
        return Verdict::NotApplicable("php-fpm has no control socket".into());
    };
    let r = attack!(ctx.attack("control_socket", &[("sock", sock.display().to_string())]));
    let reply = r.get("reply").unwrap_or("");
    let mode = fs::metadata(sock).map(|m| m.mode() & 0o777).unwrap_or(0);
    if reply.contains(&ctx.v.domain) {
        Verdict::Escaped(format!(
            "the master answered the attacker with the victim's status: {}",
            clip(reply, 120)
        ))
    } else if mode & 0o006 != 0 {
        Verdict::Escaped(format!(
            "{} is {mode:o}: any local user may connect",
            sock.display()
        ))
    } else {
        Verdict::Blocked(format!(
            "mode {mode:o}; connect: {}",
            r.get("connect").unwrap_or("?")
        ))
    }
}

fn master_log(ctx: &Ctx) -> Verdict {
    let r = attack!(ctx.attack(
        "read_files",
        &[("files", ctx.master_log.display().to_string())]
    ));
    let v = r
        .get(&format!("file_{}", ctx.master_log.display()))
        .unwrap_or("");
    let mode = world_readable(&ctx.master_log);
    if v.starts_with("read") {
        Verdict::Escaped(format!(
            "the attacker read the master's log{}",
            if v.contains(&ctx.v.domain) {
                ", which names the victim's pool"
            } else {
                ""
            }
        ))
    } else if let Some(m) = mode {
        Verdict::Escaped(format!(
            "{} is {m:o} (world-readable wherever it lives)",
            ctx.master_log.display()
        ))
    } else {
        Verdict::Blocked(format!(
            "mode {:o}; {}",
            fs::metadata(&ctx.master_log)
                .map(|m| m.mode() & 0o777)
                .unwrap_or(0),
            clip(v, 100)
        ))
    }
}

fn memory_hog(ctx: &Ctx) -> Verdict {
    let Some(apid) = ctx.attacker_pid() else {
        return Verdict::Broken("no process of the attacker's PHP user runs".into());
    };
    let victims_before = uid_pids(ctx.v.php_uid);
    let (mctl, mcg) = match cgroup_dir(apid, "memory") {
        Some(d) => ("memory", Some(d)),
        None => ("", cgroup_dir(apid, "")),
    };
    // The victim's own memory cgroups (not their parents, which the
    // attacker shares): a victim process the kernel OOM-killed shows there.
    let victim_leaves: Vec<(PathBuf, u64)> = {
        let mut dirs: Vec<PathBuf> = victims_before
            .iter()
            .filter_map(|&p| cgroup_dir(p, mctl))
            .collect();
        dirs.sort();
        dirs.dedup();
        dirs.into_iter()
            .map(|d| {
                let n = oom_kills(&d).unwrap_or(0);
                (d, n)
            })
            .collect()
    };
    let files = ["memory.limit_in_bytes", "memory.max"];
    let limit_desc = mcg
        .as_deref()
        .and_then(|d| chain_limit(d, mctl, &files))
        .unwrap_or_else(|| "no memory limit".into());
    // 1 GiB past memory_limit, or 256 MiB past the pool's cgroup limit.
    let limit = pool_value(&ctx.a.pool_file, "php_admin_value[memory_limit]")
        .and_then(|v| size_mb(&v))
        .unwrap_or(128);
    let cg_max = limit_desc
        .split_once('=')
        .and_then(|(_, n)| n.parse::<u64>().ok())
        .map(|b| b >> 20);
    let target = (limit + 1024)
        .max(cg_max.map(|m| m + 256).unwrap_or(0))
        .min(3072);
    let own = cgroup_dir(std::process::id() as i32, mctl);
    let before = mcg
        .as_deref()
        .map(|d| chain_ooms(d, mctl))
        .unwrap_or_default();
    let r = ctx.native(&["memhog", &target.to_string()], 60);
    let after = mcg
        .as_deref()
        .map(|d| chain_ooms(d, mctl))
        .unwrap_or_default();
    let ooms = oom_delta(&before, &after);
    let victim = ctx.victim_serves();
    // A victim worker may also end on its own meanwhile (ondemand's idle
    // timeout, on a slow machine): only a kill in its own cgroup counts.
    let victim_ooms = oom_delta(
        &victim_leaves,
        &victim_leaves
            .iter()
            .map(|(d, n)| (d.clone(), oom_kills(d).unwrap_or(*n)))
            .collect::<Vec<_>>(),
    );
    let lost: Vec<i32> = victims_before
        .iter()
        .copied()
        .filter(|p| !common::pid_alive(*p))
        .collect();
    let cg = mcg
        .as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "?".into());
    let r = match r {
        Ok(r) => r,
        Err(e) => {
            return Verdict::Escaped(format!(
                "the attacker's worker itself died ({e}); OOM kills in {cg} and its parents: {ooms}"
            ))
        }
    };
    if !r.native_ran() {
        return Verdict::Blocked(format!(
            "no native code: {}",
            r.get("native_refused").unwrap_or("")
        ));
    }
    let touched = r.last("n_touched_mb").unwrap_or("0");
    let sig = r.get("native_signal").unwrap_or("?");
    let in_pool_cgroup =
        mcg.is_some() && mcg != own && !cg.ends_with("/memory") && !cg.ends_with("/unified");
    let mut problems = Vec::new();
    if let Some(done) = r.get("n_done_mb") {
        problems.push(format!("allocated and touched all {done} MiB"));
    }
    if sig != "9" {
        problems.push(format!(
            "not SIGKILLed (signal {sig}, exit {})",
            r.get("native_exit").unwrap_or("?")
        ));
    }
    if !in_pool_cgroup {
        problems.push(format!(
            "ran in memory cgroup {cg}, not a cgroup of its own pool ({limit_desc})"
        ));
    } else if ooms == 0 {
        problems.push(format!(
            "no OOM kill counted in {cg} or its parents ({limit_desc})"
        ));
    }
    if let Err(e) = victim {
        problems.push(e);
    }
    if victim_ooms > 0 {
        problems.push(format!(
            "{victim_ooms} OOM kill(s) in the victim's own cgroup (processes gone: {lost:?})"
        ));
    }
    if problems.is_empty() {
        Verdict::Blocked(format!(
            "killed by SIGKILL after {touched} of {target} MiB; {ooms} OOM kill(s) in the pool's cgroup ({limit_desc}, leaf {cg}); the victim serves"
        ))
    } else {
        Verdict::Escaped(format!("target {target} MiB: {}", problems.join("; ")))
    }
}

fn fork_bomb(ctx: &Ctx) -> Verdict {
    let Some(apid) = ctx.attacker_pid() else {
        return Verdict::Broken("no process of the attacker's PHP user runs".into());
    };
    let (pctl, pcg) = match cgroup_dir(apid, "pids") {
        Some(d) => ("pids", Some(d)),
        None => ("", cgroup_dir(apid, "")),
    };
    let pids_max = pcg
        .as_deref()
        .and_then(|d| chain_limit(d, pctl, &["pids.max"]));
    let (port, host) = (ctx.web.port(), ctx.a.domain.clone());
    let path = format!(
        "/pens_attacker.php?probe=native&timeout=40&{}&a0=forkbomb&a1={FORK_CAP}&a2=4000",
        ctx.native_args()
    );
    let bomb = thread::spawn(move || http_get(port, &host, &path));
    thread::sleep(Duration::from_millis(2000));
    // Meanwhile: the victim and the host.
    let t = Instant::now();
    let victim = ctx.victim_serves();
    let victim_ms = t.elapsed().as_millis();
    let host_fork = Command::new("/bin/true")
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    let during = uid_pids(ctx.a.php_uid).len();
    let resp = match bomb.join() {
        Ok(Ok(r)) => r,
        other => return Verdict::Broken(format!("the fork bomb request failed: {other:?}")),
    };
    let get = |k: &str| {
        resp.body
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{k}=")))
            .unwrap_or("")
            .to_string()
    };
    if get("native_launch") == "refused" {
        return Verdict::Blocked(format!("no native code: {}", get("native_refused")));
    }
    let forked: u64 = get("n_forked").parse().unwrap_or(0);
    let err = get("n_fork_error");
    let cg = pcg
        .as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "?".into());
    let mut problems = Vec::new();
    if forked >= FORK_CAP {
        problems.push(format!("all {forked} forks succeeded"));
    } else if !err.contains("Resource temporarily unavailable") {
        problems.push(format!("stopped at {forked} with {err:?}, not EAGAIN"));
    }
    if pids_max.is_none() {
        problems.push(format!("no pids limit on {cg}"));
    }
    if let Err(e) = victim {
        problems.push(format!("during the bomb: {e}"));
    }
    if !host_fork {
        problems.push("the host could not fork during the bomb".into());
    }
    let summary = format!(
        "{forked} forks ({err}), {during} attacker processes at the peak, {}, victim answered in {victim_ms} ms",
        pids_max.clone().unwrap_or_else(|| "no pids limit".into())
    );
    if problems.is_empty() {
        Verdict::Blocked(summary)
    } else {
        Verdict::Escaped(format!("{}; {summary}", problems.join("; ")))
    }
}

fn cgroup_escape(ctx: &Ctx) -> Verdict {
    let r = attack!(ctx.native(&["cgroup"], 20));
    if !r.native_ran() {
        return Verdict::Blocked(format!(
            "no native code: {}",
            r.get("native_refused").unwrap_or("")
        ));
    }
    let tried = r.all("n_move_to_root").len()
        + r.all("n_move_to_parent").len()
        + r.all("n_lift_limit").len();
    let ok: Vec<String> = r
        .lines
        .iter()
        .filter(|(k, _)| k.starts_with("n_move") || k == "n_lift_limit")
        .filter(|(_, v)| v.ends_with(" ok"))
        .map(|(k, v)| format!("{} {v}", &k[2..]))
        .collect();
    if r.is("n_escaped", "yes") || !ok.is_empty() {
        Verdict::Escaped(format!(
            "{}; cgroups after: {}",
            ok.join(", "),
            r.get("n_cgroup_after").unwrap_or("")
        ))
    } else {
        Verdict::Blocked(format!(
            "{tried} attempts refused; cgroups: {}",
            clip(r.get("n_cgroup").unwrap_or(""), 160)
        ))
    }
}

fn disk_fill(ctx: &Ctx) -> Verdict {
    let cap = match &ctx.quota {
        Quota::Applied(q) => q + FILL_CAP_MB,
        _ => FILL_CAP_MB,
    };
    let r = attack!(ctx.attack("disk_fill", &[("cap_mb", cap.to_string())]));
    let written = r.get("written_mb").unwrap_or("?");
    let stopped = r.get("stopped").unwrap_or("?");
    match &ctx.quota {
        // The host cannot have one, and corral says so: not a question here.
        Quota::Unsupported(why) => Verdict::NotApplicable(format!(
            "{why}; without it the attacker wrote {written} MiB ({stopped})"
        )),
        Quota::Missing(why) => Verdict::Escaped(format!(
            "no quota: {why}; the attacker wrote {written} MiB ({stopped})"
        )),
        Quota::Applied(q) => {
            let w: f64 = written.parse().unwrap_or(f64::MAX);
            if stopped.contains("quota") && w <= (*q as f64) + 1.0 {
                Verdict::Blocked(format!(
                    "stopped at {written} MiB of a {q} MiB quota: {stopped}"
                ))
            } else {
                Verdict::Escaped(format!("quota {q} MiB, wrote {written} MiB: {stopped}"))
            }
        }
    }
}

fn abstract_socket(ctx: &Ctx) -> Verdict {
    let tok = ctx.cleanup.token();
    let name = format!("pens-{tok}-abstract");
    let addr = match UnixAddr::from_abstract_name(name.as_bytes()) {
        Ok(a) => a,
        Err(e) => return Verdict::Broken(format!("abstract address: {e}")),
    };
    let listener = match UnixListener::bind_addr(&addr) {
        Ok(l) => l,
        Err(e) => return Verdict::Broken(format!("bind @{name}: {e}")),
    };
    listener.set_nonblocking(true).unwrap();
    let stop = ctx.cleanup.stop.clone();
    let done = Arc::new(AtomicBool::new(false));
    let d2 = done.clone();
    let server = thread::spawn(move || {
        let until = Instant::now() + Duration::from_secs(30);
        while !stop.load(Ordering::Relaxed) && !d2.load(Ordering::Relaxed) && Instant::now() < until
        {
            match listener.accept() {
                Ok((mut s, _)) => {
                    let _ = s.write_all(b"hello-from-outside\n");
                }
                Err(_) => thread::sleep(Duration::from_millis(20)),
            }
        }
    });
    let r = ctx.native(&["abstract", &name], 20);
    done.store(true, Ordering::Relaxed);
    let _ = server.join();
    let r = attack!(r);
    if !r.native_ran() {
        return Verdict::Blocked(format!(
            "no native code: {}",
            r.get("native_refused").unwrap_or("")
        ));
    }
    if r.is("n_connect", "ok") {
        Verdict::Escaped(format!(
            "connected to @{name} (root's, outside the pool; it said {:?}): Landlock's abstract-socket scope (ABI 6) is not applied{}",
            r.get("n_said").unwrap_or(""),
            if ctx.kind == Kind::Corral { ", by choice in docs/isolation.md (monitoring agents listen there)" } else { "" }
        ))
    } else {
        Verdict::Blocked(format!("connect: {}", r.get("n_connect").unwrap_or("?")))
    }
}

fn setuid_nnp(ctx: &Ctx) -> Verdict {
    // A setuid-root file on the host only for this one request, even if
    // the test dies.
    let mode = |m| fs::set_permissions(&ctx.setuid_helper, fs::Permissions::from_mode(m));
    if let Err(e) = mode(0o4755) {
        return Verdict::Broken(format!("chmod 4755 {}: {e}", ctx.setuid_helper.display()));
    }
    let r = ctx.native(&["nnp", &ctx.setuid_helper.display().to_string()], 20);
    let _ = mode(0o755);
    let r = attack!(r);
    if !r.native_ran() {
        return Verdict::Blocked(format!(
            "no native code: {}",
            r.get("native_refused").unwrap_or("")
        ));
    }
    let nnp = r.get("n_nonewprivs").unwrap_or("?");
    match r.get("n_setuid_euid") {
        Some("0") => Verdict::Escaped(format!("the setuid program ran with euid 0 (NoNewPrivs: {nnp})")),
        Some(e) => Verdict::Blocked(format!("euid {e} (NoNewPrivs: {nnp})")),
        // The test's helper lives outside the system dirs the pool may run
        // from; /usr/bin/su and the like would not: no_new_privs decides.
        None if nnp == "1" => Verdict::Blocked(format!(
            "the helper did not run ({}), and NoNewPrivs: 1 stops any setuid program",
            r.get("n_exec_error").unwrap_or("?")
        )),
        None => Verdict::Escaped(format!(
            "the test's helper did not run ({}), but NoNewPrivs: {nnp}: a setuid-root program in a system dir would run as root",
            r.get("n_exec_error").unwrap_or("?")
        )),
    }
}

fn userns_unmask(ctx: &Ctx) -> Verdict {
    let tok = ctx.cleanup.token();
    let host_file = format!("/tmp/pens-{tok}-host");
    fs::write(&host_file, "host").unwrap();
    fs::set_permissions(&host_file, fs::Permissions::from_mode(0o644)).unwrap();
    let Some(vpid) = ctx.victim_pid() else {
        return Verdict::Broken("no process of the victim's PHP user runs".into());
    };
    let proc_entry = format!("/proc/{vpid}");
    // Before peeling: what the attacker sees plainly.
    let plain = attack!(ctx.attack("read_files", &[("files", host_file.clone())]));
    let plain_sees = plain
        .get(&format!("file_{host_file}"))
        .is_some_and(|v| v.starts_with("read"));
    let r = attack!(ctx.native(&["userns", &host_file, &proc_entry], 20));
    if !r.native_ran() {
        return Verdict::Blocked(format!(
            "no native code: {}",
            r.get("native_refused").unwrap_or("")
        ));
    }
    let sees: Vec<&str> = r
        .all("n_sees")
        .into_iter()
        .filter(|s| s.ends_with(" yes"))
        .collect();
    let how = format!(
        "unshare {}; {}",
        r.get("n_unshare").unwrap_or("?"),
        r.all("n_umount").join(", ")
    );
    if sees.is_empty() {
        Verdict::Blocked(how)
    } else if plain_sees {
        Verdict::Escaped(format!(
            "nothing hides them in the first place: sees {} ({how})",
            sees.join(", ")
        ))
    } else {
        Verdict::Escaped(format!("after unsharing, sees {} ({how})", sees.join(", ")))
    }
}

fn core_dump(ctx: &Ctx) -> Verdict {
    let pattern = fs::read_to_string("/proc/sys/kernel/core_pattern")
        .unwrap_or_default()
        .trim()
        .to_string();
    let dir = ctx.a.home.join("tmp");
    let r = attack!(ctx.native(&["core", &dir.display().to_string()], 30));
    if !r.native_ran() {
        return Verdict::Blocked(format!(
            "no native code: {}",
            r.get("native_refused").unwrap_or("")
        ));
    }
    let dumped = r.get("n_core_dumped").unwrap_or("?");
    let child = r.get("n_child").unwrap_or("0");
    if pattern.starts_with('|') {
        return Verdict::Blocked(format!(
            "core_pattern pipes to a root helper ({pattern}); dumped: {dumped}"
        ));
    }
    let target_dir = if pattern.starts_with('/') {
        Path::new(&pattern)
            .parent()
            .unwrap_or(Path::new("/"))
            .to_path_buf()
    } else {
        dir.clone()
    };
    // Whatever file the dump made, by the attacker's uid, in that dir.
    let found: Vec<PathBuf> = fs::read_dir(&target_dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| {
            e.metadata()
                .is_ok_and(|m| m.uid() == ctx.a.php_uid && m.is_file())
        })
        .filter(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            n.starts_with("core") || n.contains(child)
        })
        .map(|e| e.path())
        .collect();
    for f in &found {
        let _ = fs::remove_file(f);
    }
    if !found.is_empty() && !target_dir.starts_with(&ctx.a.home) {
        Verdict::Escaped(format!(
            "core written outside the attacker's home: {:?} (core_pattern {pattern})",
            found
        ))
    } else {
        Verdict::Blocked(format!(
            "core_pattern {pattern:?}; dumped: {dumped}; {}",
            if found.is_empty() {
                "no core file".to_string()
            } else {
                format!("core stayed in its own {}", target_dir.display())
            }
        ))
    }
}
