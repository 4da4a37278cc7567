//! The Debian package, the way an operator gets it: `scripts/deb.sh`
//! builds `corral_*.deb` with dpkg-deb, `dpkg -i` installs it on this
//! machine, and the installed files work: `corral -v`, `corral -t`, a real
//! FastCGI request to a master started from /usr/sbin, the unit, the
//! completions, the man page, and a logrotate run whose postrotate makes
//! the master reopen its logs. `dpkg -P` removes it all afterwards.
//!
//! Nothing the rest of the suite uses is touched: the tests run the
//! workspace's own binary, never /usr/sbin/corral, and a host where corral
//! is already installed (by package or by hand) is left alone.

mod common;

use common::*;
use std::fs;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const SBIN: &str = "/usr/sbin/corral";

/// Runs a command to completion within `limit`, any output length.
fn run_long(cmd: &mut Command, limit: Duration) -> (bool, String) {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    let out_pipe = child.stdout.take().unwrap();
    let err_pipe = child.stderr.take().unwrap();
    let read = |p: Box<dyn std::io::Read + Send>| {
        std::thread::spawn(move || {
            let mut s = String::new();
            let _ = std::io::BufReader::new(p).read_to_string(&mut s);
            s
        })
    };
    use std::io::Read;
    let (o, e) = (read(Box::new(out_pipe)), read(Box::new(err_pipe)));
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            // SAFETY: the process group this function started.
            unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
            let _ = child.wait();
            panic!("{cmd:?} did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    (status.success(), o.join().unwrap() + &e.join().unwrap())
}

fn installed(pkg: &str) -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", pkg])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).contains("install ok installed"))
        .unwrap_or(false)
}

/// Why this host cannot take the package for a test, if it cannot.
fn not_here() -> Option<String> {
    if !is_root() {
        return Some("needs root (dpkg -i)".into());
    }
    if std::env::var("CORRAL_TEST_AGAINST").as_deref() == Ok("php-fpm") {
        return Some("the package is corral's".into());
    }
    if !Path::new("/usr/bin/dpkg").exists() {
        return Some("no dpkg: not a Debian host".into());
    }
    if !Path::new("/usr/bin/dpkg-shlibdeps").exists() {
        return Some("dpkg-dev is not installed (run scripts/setup.sh)".into());
    }
    if installed("corral") || Path::new(SBIN).exists() {
        return Some(format!(
            "corral is installed on this host already ({SBIN}); not replacing it"
        ));
    }
    None
}

/// `dpkg -P corral` when the test ends, however it ends.
struct Installed;

impl Drop for Installed {
    fn drop(&mut self) {
        let _ = Command::new("dpkg").args(["-P", "corral"]).output();
    }
}

/// The newest `corral_*.deb` in `dir`.
fn built_deb(dir: &Path) -> PathBuf {
    let mut debs: Vec<(std::time::SystemTime, PathBuf)> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            let n = p.file_name().unwrap().to_string_lossy().into_owned();
            n.starts_with("corral_") && n.ends_with(".deb")
        })
        .map(|p| (fs::metadata(&p).unwrap().modified().unwrap(), p))
        .collect();
    debs.sort();
    debs.pop()
        .unwrap_or_else(|| panic!("no corral_*.deb in {}", dir.display()))
        .1
}

/// A master started from the installed binary on `conf`, in the
/// foreground; killed (with its group) on drop.
fn installed_master(conf: &Path, ctl: &Path) -> ForegroundMaster {
    ForegroundMaster::start(
        Command::new(SBIN)
            .args(["-F", "-O", "-y"])
            .arg(conf)
            .arg("--control-socket")
            .arg(ctl),
        SBIN,
        READY_TIMEOUT,
    )
}

fn read(path: &str) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn the_deb_installs_and_runs_from_its_paths() {
    if let Some(why) = not_here() {
        skip(&why);
        return;
    }
    let root = workspace_root();
    let out_dir = temp_dir("deb");
    let t0 = Instant::now();
    let (ok, log) = run_long(
        Command::new(root.join("scripts/deb.sh"))
            .arg("--output")
            .arg(out_dir.path())
            .current_dir(&root),
        Duration::from_secs(30 * 60),
    );
    assert!(ok, "scripts/deb.sh failed:\n{log}");
    let _ = writeln_stderr(&format!("scripts/deb.sh took {:?}", t0.elapsed()));
    let deb = built_deb(out_dir.path());

    let control = run_cmd(
        Path::new("/usr/bin/dpkg-deb"),
        &["-f", &deb.display().to_string()],
    );
    assert!(
        control.stdout.contains("Package: corral"),
        "{}",
        control.all()
    );
    assert!(
        control.stdout.contains("libphp8.2-embed"),
        "{}",
        control.all()
    );

    let _guard = Installed;
    let out = run_cmd(
        Path::new("/usr/bin/dpkg"),
        &["-i", &deb.display().to_string()],
    );
    assert_eq!(out.code, Some(0), "dpkg -i: {}", out.all());
    assert!(installed("corral"));

    // The files, where Debian looks for them.
    let unit = read("/lib/systemd/system/corral.service");
    for line in [
        "Delegate=yes",
        "Type=notify",
        "ExecStart=/usr/sbin/corral --nodaemonize",
        "ExecReload=/usr/sbin/corral reload",
        "KillSignal=SIGQUIT",
    ] {
        assert!(unit.contains(line), "{line} missing from the unit:\n{unit}");
    }
    assert!(read("/usr/share/bash-completion/completions/corral").contains("restart"));
    assert!(read("/usr/share/zsh/vendor-completions/_corral").contains("#compdef corral"));
    assert!(read("/usr/share/fish/vendor_completions.d/corral.fish").contains("complete -c corral"));
    let rotate = read("/etc/logrotate.d/corral");
    assert!(rotate.contains("/usr/lib/corral/reopen-logs"), "{rotate}");
    assert!(read("/usr/lib/corral/reopen-logs").contains("kill -USR1"));
    assert!(
        Path::new("/var/log/corral").is_dir(),
        "postinst makes the log dir"
    );
    if Path::new("/usr/bin/man").exists() {
        let page = Command::new("/usr/bin/man")
            .args(["8", "corral-restart"])
            .env("MANWIDTH", "80")
            .env("MANPAGER", "cat")
            .env("PAGER", "cat")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&page.stdout);
        assert!(
            page.status.success() && text.contains("generation"),
            "man 8 corral-restart: {text}{}",
            String::from_utf8_lossy(&page.stderr)
        );
    }

    // -v and -t from /usr/sbin.
    let v = run_cmd(Path::new(SBIN), &["-v"]);
    assert_eq!(v.code, Some(0), "{}", v.all());
    assert!(
        v.stdout.starts_with("PHP 8.2.") && v.stdout.contains("(fpm-fcgi)"),
        "{}",
        v.stdout
    );
    assert!(v
        .stdout
        .contains(&format!("corral {}", env!("CARGO_PKG_VERSION"))));
    if Path::new(corral_config::paths::DEBIAN_FPM_CONFIG).exists() {
        let t = run_cmd(Path::new(SBIN), &["-t"]);
        assert_eq!(
            t.code,
            Some(0),
            "corral -t on Debian's php-fpm.conf: {}",
            t.all()
        );
    }
    let site = Site::new();
    let dir = temp_dir("deb-run");
    let d = dir.path().display().to_string();
    fs::create_dir(dir.path().join("logs")).unwrap();
    let conf = dir.path().join("php-fpm.conf");
    fs::write(
        &conf,
        format!(
            "[global]\nerror_log = {d}/logs/error.log\npid = {d}/fpm.pid\n\
             [www]\nlisten = {d}/www.sock\nuser = nobody\npm = static\npm.max_children = 1\n\
             access.log = {d}/logs/access.log\naccess.format = \"%m %r%Q%q %s\"\n"
        ),
    )
    .unwrap();
    let t = run_cmd(Path::new(SBIN), &["-t", "-y", &conf.display().to_string()]);
    assert_eq!(t.code, Some(0), "{}", t.all());
    assert!(t.stderr.contains("test is successful"), "{}", t.all());

    // A real request through the installed binary.
    let ctl = dir.path().join("ctl.sock");
    let _master = installed_master(&conf, &ctl);
    let listen = Listen::parse(&format!("{d}/www.sock"));
    let get = |q: &str| {
        let req = Request::php(&site.script("index.php"))
            .document_root(&site.www().display().to_string())
            .query(q);
        request_on(&listen, &req).unwrap_or_else(|e| panic!("request: {e}"))
    };
    let r = get("n=1");
    assert_eq!(r.status, 200, "{r:?}");
    assert!(r.body.contains("Hello from fpm-fcgi"), "{}", r.body);
    let st = run_cmd(
        Path::new(SBIN),
        &[
            "status",
            "--json",
            "--control-socket",
            &ctl.display().to_string(),
        ],
    );
    assert_eq!(st.code, Some(0), "{}", st.all());
    assert!(st.stdout.contains("\"pool\":\"www\""), "{}", st.stdout);

    // logrotate with the installed file (only the log glob pointed at this
    // test's directory): the postrotate signals the master, which reopens
    // access.log, so the next request lands in a new file.
    let Some(logrotate) = require_bin("logrotate") else {
        return;
    };
    let access = dir.path().join("logs/access.log");
    wait_for(
        || fs::metadata(&access).is_ok_and(|m| m.len() > 0),
        "access.log written",
    );
    let rotate_conf = dir.path().join("logrotate.conf");
    fs::write(
        &rotate_conf,
        rotate.replace("/var/log/corral/*.log", &format!("{d}/logs/*.log")),
    )
    .unwrap();
    let state = dir.path().join("logrotate.state");
    let out = Command::new(logrotate)
        .arg("-f")
        .arg("-s")
        .arg(&state)
        .arg(&rotate_conf)
        .env("CORRAL_FPM_CONFIG", &conf)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "logrotate: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(dir.path().join("logs/access.log.1").exists(), "rotated");
    get("after=rotation");
    wait_for(
        || fs::read_to_string(&access).is_ok_and(|t| t.contains("after=rotation")),
        "the master reopened access.log after USR1",
    );
    let old = read(&format!("{d}/logs/access.log.1"));
    assert!(!old.contains("after=rotation"), "{old}");
}

fn wait_for(mut ok: impl FnMut() -> bool, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting: {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn writeln_stderr(msg: &str) -> std::io::Result<()> {
    use std::io::Write;
    writeln!(std::io::stderr(), "{msg}")
}
