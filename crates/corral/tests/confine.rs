//! Pens (issue 9, items 2 and 3): namespaces, Landlock and no_new_privs,
//! proven from a tenant's PHP. Two pools with their own system users:
//! pool A (the attacker) probes, pool B (the victim) listens on TCP and
//! looks for what A left behind.
//!
//! Every probe is run twice, on a master whose pools carry the corral.*
//! directives and on one whose pools do not: without the pens each probe
//! must escape (which proves the probe can see an escape), with them it
//! must be blocked, while the pool's ordinary work (sessions, uploads,
//! running a system program, connecting to an unrelated port) goes on.
//! The confined run also checks that the master still traces (slow log),
//! times out and reports on a confined pool.

mod common;

use common::*;
use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

const USER_A: &str = "corral-t-ca";
const USER_B: &str = "corral-t-cb";

/// Where the pools' trees live: not under /tmp, which a pool with
/// corral.namespaces no longer shares with the host.
struct Trees {
    base: tempfile::TempDir,
}

impl Trees {
    fn new(a: &TempUser) -> Trees {
        let base = tempfile::Builder::new()
            .prefix("corral-t-confine-")
            .tempdir_in("/var/lib")
            .expect("tree under /var/lib");
        let t = Trees { base };
        let mode =
            |p: &Path, m: u32| fs::set_permissions(p, fs::Permissions::from_mode(m)).unwrap();
        mode(t.base.path(), 0o755);
        for (dir, m) in [
            ("a", 0o755),
            ("b", 0o755),
            ("a-data", 0o755),
            ("drop", 0o1777),
        ] {
            fs::create_dir(t.path(dir)).unwrap();
            mode(&t.path(dir), m);
        }
        let chown = std::process::Command::new("chown")
            .arg(format!("{}:{}", a.name, a.name))
            .arg(t.path("a-data"))
            .status()
            .unwrap();
        assert!(chown.success());
        let probe = workspace_root().join("crates/corral/tests/confine_support/probe.php");
        for www in ["a", "b"] {
            fs::copy(&probe, t.path(www).join("probe.php")).unwrap();
        }
        for f in ["slow.php", "sleep.php"] {
            fs::copy(fixtures_dir().join(f), t.path("a").join(f)).unwrap();
        }
        fs::write(t.path("b").join("secret.txt"), "b's secret").unwrap();
        fs::write(t.path("outside.txt"), "nobody's tree").unwrap();
        for f in ["b/secret.txt", "outside.txt"] {
            mode(&t.path(f), 0o644);
        }
        t
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.base.path().join(rel)
    }
}

fn conf(t: &Trees, pens: bool) -> String {
    let base = t.base.path().display();
    let (a_pens, b_pens) = if pens {
        (
            format!(
                "corral.namespaces = yes\ncorral.tmp_size = 16M\ncorral.landlock = yes\n\
                 corral.landlock_read = {base}/a\ncorral.landlock_write = {base}/a-data\n"
            ),
            "corral.namespaces = yes\n".to_string(),
        )
    } else {
        (String::new(), String::new())
    };
    format!(
        "[global]\nerror_log = {{dir}}/error.log\n\n\
         [a]\nlisten = {{dir}}/a.sock\nuser = {USER_A}\ngroup = {USER_A}\n\
         pm = static\npm.max_children = 2\npm.status_path = /status\n\
         slowlog = {{dir}}/a-slow.log\nrequest_slowlog_timeout = 1s\n\
         request_terminate_timeout = 3s\n{a_pens}\n\
         [b]\nlisten = 127.0.0.1:{{port}}\nuser = {USER_B}\ngroup = {USER_B}\n\
         pm = static\npm.max_children = 1\n{b_pens}"
    )
}

struct Rig {
    server: Server,
    trees: Trees,
    b_port: u16,
    _users: (TempUser, TempUser),
}

const A: usize = 0;
const B: usize = 1;

impl Rig {
    fn start(pens: bool) -> Rig {
        let a = TempUser::new(USER_A);
        let b = TempUser::new(USER_B);
        let trees = Trees::new(&a);
        let server = Corral::start(&conf(&trees, pens));
        let b_port = server.placeholders.port;
        Rig {
            server,
            trees,
            b_port,
            _users: (a, b),
        }
    }

    fn www(&self, pool: usize) -> PathBuf {
        self.trees.path(["a", "b"][pool])
    }

    fn req(&self, pool: usize, script: &str, query: &str) -> Request {
        script_request(&self.www(pool), script, query)
    }

    fn send(&self, pool: usize, req: &Request) -> Reply {
        match request_timeout(&self.server.listens[pool], req, Duration::from_secs(10)) {
            Ok(r) => r,
            Err(e) => panic!("pool {pool}: {e}\nlog:\n{}", self.server.log.text()),
        }
    }

    /// `probe.php?p=...` on `pool`: its `result=` (or another key).
    fn probe(&self, pool: usize, query: &str, key: &str) -> String {
        let r = self.send(pool, &self.req(pool, "probe.php", query));
        r.kv(key).unwrap_or_else(|| {
            panic!(
                "{query}: no {key}= in {r:?}\nlog:\n{}",
                self.server.log.text()
            )
        })
    }

    /// Pids of the processes run by `uid`.
    fn pids_of(&self, uid: u32) -> Vec<i32> {
        self.server
            .descendants()
            .into_iter()
            .filter(|&p| uid_of_pid(p) == Some(uid))
            .collect()
    }
}

/// Each probe of tenant A: true when it escaped.
fn escapes(rig: &Rig) -> BTreeMap<&'static str, (bool, String)> {
    let mut out = BTreeMap::new();
    let tag = format!("corral-confine-{}", std::process::id());
    let data = rig.trees.path("a-data").display().to_string();

    // /tmp: A plants a file; B and the host look for it.
    let put = rig.probe(A, &format!("p=tmp_put&name={tag}"), "result");
    let seen_by_b = rig.probe(B, &format!("p=tmp_get&name={tag}"), "result");
    let host_tmp = Path::new("/tmp").join(&tag);
    out.insert(
        "tmp: B sees A's /tmp file",
        (seen_by_b == "visible", format!("A {put}, B: {seen_by_b}")),
    );
    out.insert(
        "tmp: the host sees A's /tmp file",
        (host_tmp.exists(), format!("A {put}")),
    );
    let _ = fs::remove_file(&host_tmp);

    // /proc: anything not run by A's user.
    let pids = rig.probe(A, "p=procs", "pids");
    let uid_a = uid_of(USER_A).unwrap();
    let foreign: Vec<i32> = pids
        .split(',')
        .filter_map(|p| p.parse().ok())
        .filter(|&p| uid_of_pid(p).is_some_and(|u| u != uid_a))
        .collect();
    let master_seen = foreign.contains(&rig.server.pid());
    let b_seen = rig
        .pids_of(uid_of(USER_B).unwrap())
        .iter()
        .any(|p| foreign.contains(p));
    out.insert(
        "proc: A lists processes of other users",
        (
            !foreign.is_empty(),
            format!(
                "{} foreign of {pids}; master {master_seen}, B {b_seen}",
                foreign.len()
            ),
        ),
    );

    // SysV shared memory (shmop): created by A, looked for by B and host.
    let key = 0x5eed_0000 + (std::process::id() & 0xffff) as i64;
    let made = rig.probe(A, &format!("p=shm_put&key={key}"), "result");
    let b_shm = rig.probe(B, &format!("p=shm_get&key={key}"), "result");
    let host_shm = fs::read_to_string("/proc/sysvipc/shm")
        .unwrap_or_default()
        .lines()
        .skip(1)
        .any(|l| l.split_whitespace().next() == Some(&key.to_string()));
    out.insert(
        "shm: B attaches A's SysV segment",
        (b_shm.starts_with("visible"), format!("A {made}, B {b_shm}")),
    );
    out.insert(
        "shm: the host sees A's SysV segment",
        (host_shm, made.clone()),
    );
    if host_shm {
        let _ = std::process::Command::new("ipcrm")
            .args(["-M", &key.to_string()])
            .status();
    }

    // Landlock: files.
    for (name, q) in [
        (
            "read: A reads a world-readable file in B's docroot",
            format!("p=read&path={}", rig.trees.path("b/secret.txt").display()),
        ),
        (
            "read: A reads a world-readable file outside its trees",
            format!("p=read&path={}", rig.trees.path("outside.txt").display()),
        ),
    ] {
        let r = rig.probe(A, &q, "result");
        out.insert(name, (r == "read", r));
    }
    let w = rig.probe(
        A,
        &format!("p=write&path={}/x", rig.trees.path("drop").display()),
        "result",
    );
    out.insert(
        "write: A writes a world-writable dir outside landlock_write",
        (w == "wrote", w),
    );

    // Landlock and noexec: running what A wrote.
    for (name, q) in [
        (
            "exec: A runs a script it wrote (landlock_write)",
            format!("p=exec_script&dir={data}"),
        ),
        (
            "exec: A runs a binary it copied (landlock_write)",
            format!("p=exec_copy&dir={data}"),
        ),
        (
            "exec: A maps a copied binary through ld.so (landlock_write)",
            format!("p=exec_copy&dir={data}&ldso=1"),
        ),
        (
            "exec: A runs a script it wrote (/tmp)",
            "p=exec_script&dir=/tmp".to_string(),
        ),
        (
            "exec: A maps a copied binary through ld.so (/tmp)",
            "p=exec_copy&dir=/tmp&ldso=1".to_string(),
        ),
    ] {
        let r = rig.probe(A, &q, "result");
        out.insert(name, (r == "ran", r));
    }
    let _ = fs::remove_file("/tmp/run.sh");
    let _ = fs::remove_file("/tmp/myid");

    // Landlock: TCP to another pool's FastCGI port.
    let c = rig.probe(A, &format!("p=connect&port={}", rig.b_port), "result");
    out.insert("tcp: A connects to B's FastCGI port", (c == "connected", c));
    out
}

/// What a confined pool must still do.
fn ordinary_work(rig: &Rig) {
    // Its own files.
    let own = rig.www(A).join("probe.php").display().to_string();
    assert_eq!(
        rig.probe(A, &format!("p=read&path={own}"), "result"),
        "read"
    );
    let data = rig.trees.path("a-data");
    assert_eq!(
        rig.probe(A, &format!("p=write&path={}/w", data.display()), "result"),
        "wrote"
    );
    // A session survives from one request to the next.
    let r = rig.send(A, &rig.req(A, "probe.php", "p=session"));
    assert_eq!(r.kv("n").as_deref(), Some("1"), "{r:?}");
    let sid = r.kv("sid").unwrap();
    let again = rig
        .req(A, "probe.php", "p=session")
        .header("Cookie", &format!("PHPSESSID={sid}"));
    let r = rig.send(A, &again);
    assert_eq!(
        r.kv("n").as_deref(),
        Some("2"),
        "the session was not kept: {r:?}"
    );
    // An upload lands in upload_tmp_dir and moves into the pool's tree.
    let body = "--XyZ\r\nContent-Disposition: form-data; name=\"f\"; filename=\"u.txt\"\r\n\
                Content-Type: text/plain\r\n\r\nhello-upload\r\n--XyZ--\r\n";
    let up = rig
        .req(A, "probe.php", &format!("p=upload&dir={}", data.display()))
        .method("POST")
        .body("multipart/form-data; boundary=XyZ", body);
    let r = rig.send(A, &up);
    assert_eq!(
        r.kv("result").as_deref(),
        Some("stored:hello-upload"),
        "{r:?}"
    );
    // System programs still run; only pools' ports are refused.
    assert_eq!(rig.probe(A, "p=exec_system", "result"), "ran");
    let other = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = other.local_addr().unwrap().port();
    assert_eq!(
        rig.probe(A, &format!("p=connect&port={port}"), "result"),
        "connected"
    );
}

fn table(found: &BTreeMap<&str, (bool, String)>) -> String {
    found
        .iter()
        .map(|(k, (e, why))| format!("  {} {k}: {why}", if *e { "ESCAPED" } else { "blocked" }))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn without_pens_every_probe_escapes() {
    if !require_root() {
        return;
    }
    let rig = Rig::start(false);
    assert!(
        !rig.server.log_contains("isolation:"),
        "a pool without corral.* must not report isolation:\n{}",
        rig.server.log.text()
    );
    let found = escapes(&rig);
    println!("without pens:\n{}", table(&found));
    // A host whose own /tmp is noexec blocks the /tmp probes by itself.
    let host_noexec_tmp = host_tmp_is_noexec();
    let blocked: Vec<_> = found
        .iter()
        .filter(|(k, (escaped, _))| {
            let tmp_probe = host_noexec_tmp && k.ends_with("(/tmp)");
            !(*escaped || tmp_probe)
        })
        .collect();
    assert!(
        blocked.is_empty(),
        "these probes found nothing to escape from, so they prove nothing:\n{}",
        table(&found)
    );
    ordinary_work(&rig);
}

#[test]
fn with_pens_every_probe_is_blocked_and_the_pool_still_works() {
    if !require_root() {
        return;
    }
    let host_mounts = mount_points();
    let rig = Rig::start(true);
    assert_eq!(
        mount_points(),
        host_mounts,
        "the pools' mounts must stay in their own namespaces"
    );
    for want in [
        "NOTICE: [pool a] isolation: private mount namespace",
        "NOTICE: [pool a] isolation: /proc: own processes only",
        "NOTICE: [pool a] isolation: no_new_privs",
        "NOTICE: [pool a] isolation: landlock ABI",
        "NOTICE: [pool b] isolation: /tmp: private tmpfs (64M)",
    ] {
        assert!(
            rig.server.log_contains(want),
            "missing '{want}':\n{}",
            rig.server.log.text()
        );
    }
    let found = escapes(&rig);
    println!("with pens:\n{}", table(&found));
    let escaped: Vec<_> = found.iter().filter(|(_, (e, _))| *e).collect();
    assert!(escaped.is_empty(), "tenant A escaped:\n{}", table(&found));
    ordinary_work(&rig);
    status_reports_isolation(&rig);
    master_still_supervises(&rig);
}

fn host_tmp_is_noexec() -> bool {
    fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .rfind(|l| l.split(' ').nth(4) == Some("/tmp"))
        .is_some_and(|l| {
            l.split(' ')
                .nth(5)
                .unwrap_or("")
                .split(',')
                .any(|o| o == "noexec")
        })
}

/// The host's mounts on the paths a pool mounts over (mountinfo's fifth
/// field); other tests on this host may mount elsewhere meanwhile.
fn mount_points() -> Vec<String> {
    let ours = ["/tmp", "/var/tmp", "/dev/shm", "/proc"];
    let mut v: Vec<String> = fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter_map(|l| l.split(' ').nth(4).map(str::to_string))
        .filter(|m| ours.contains(&m.as_str()) || m.starts_with("/var/lib/corral-t-confine-"))
        .collect();
    v.sort();
    v
}

fn status_reports_isolation(rig: &Rig) {
    let out = rig.server.control(&["status", "--json"]);
    let json: serde_json::Value = serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("corral status --json: {e}\n{}", out.all()));
    let a = json
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["pool"] == "a")
        .expect("pool a in status");
    let applied = a["isolation"]["applied"].as_array().unwrap();
    assert!(
        applied
            .iter()
            .any(|x| x.as_str().unwrap().starts_with("landlock ABI")),
        "{a}"
    );
    assert!(
        applied
            .iter()
            .any(|x| x.as_str().unwrap().contains("TCP connect denied")),
        "{a}"
    );
    let b = json
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["pool"] == "b")
        .unwrap();
    assert!(
        !b["isolation"]["applied"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x.as_str().unwrap().contains("landlock")),
        "pool b has no corral.landlock: {b}"
    );
}

/// The master reads a confined worker's memory for the slow log, kills it
/// for request_terminate_timeout, and its status page still answers.
fn master_still_supervises(rig: &Rig) {
    let status = rig.send(A, &rig.req(A, "status", "json"));
    assert_eq!(status.status, 200, "{status:?}");
    assert!(status.body.contains("\"pool\":\"a\""), "{}", status.body);

    let listen = rig.server.listens[A].clone();
    let slow = rig.req(A, "slow.php", "s=2");
    let t = thread::spawn(move || request_timeout(&listen, &slow, Duration::from_secs(10)));
    let log = rig.server.dir().join("a-slow.log");
    let text = wait_file(&log, "outer()", Duration::from_secs(6));
    let r = t.join().unwrap();
    assert!(
        text.is_some(),
        "no slow-log backtrace for a confined worker: {:?}\nlog:\n{}",
        fs::read_to_string(&log),
        rig.server.log.text()
    );
    assert_eq!(r.map(|r| r.body).as_deref(), Ok("slept=2\n"));

    let t0 = Instant::now();
    let r = request_timeout(
        &rig.server.listens[A],
        &rig.req(A, "sleep.php", "ms=8000"),
        Duration::from_secs(10),
    );
    assert!(
        !matches!(&r, Ok(reply) if reply.status == 200),
        "request_terminate_timeout did not end the request: {r:?}"
    );
    assert!(t0.elapsed() < Duration::from_secs(7), "{:?}", t0.elapsed());
    rig.server
        .expect_log("execution timed out", Duration::from_secs(3));
}
