//! The rule builder's output against the real kernel. Landlock needs no
//! root, but it cannot be undone: each case re-runs this test binary as a
//! child (`CORRAL_RESTRICT_CASE`), which restricts itself and probes.

use std::io::Write as _;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use corral_isolation::landlock::{restrict, rules, PhpNeeds};
use corral_isolation::Confinement;

const CASE: &str = "CORRAL_RESTRICT_CASE";
const DIR: &str = "CORRAL_RESTRICT_DIR";

/// Skips (true) when the kernel has no Landlock.
fn no_landlock() -> bool {
    // Probe in a child: restricting the test runner would spoil the rest.
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "probe_child", "--nocapture"])
        .env(CASE, "probe")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    if text.contains("LANDLOCK=unsupported") {
        println!("SKIPPED: this kernel has no Landlock");
        return true;
    }
    false
}

/// Runs `case` in a child with `dir` and returns its stdout.
fn run_case(case: &str, dir: &Path) -> String {
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "probe_child", "--nocapture"])
        .env(CASE, case)
        .env(DIR, dir)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{case}: {}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

fn tree() -> (tempfile::TempDir, PathBuf, PathBuf, PathBuf) {
    let base = tempfile::Builder::new()
        .prefix("corral-restrict-")
        .tempdir_in(std::env::var_os("CARGO_TARGET_TMPDIR").unwrap_or_else(|| "/var/tmp".into()))
        .unwrap();
    let (read, write, other) = (
        base.path().join("read"),
        base.path().join("write"),
        base.path().join("other"),
    );
    for d in [&read, &write, &other] {
        std::fs::create_dir(d).unwrap();
    }
    std::fs::write(read.join("r.txt"), "readable").unwrap();
    std::fs::write(other.join("secret.txt"), "secret").unwrap();
    let tool = write.join("tool.sh");
    std::fs::File::create(&tool)
        .unwrap()
        .write_all(b"#!/bin/sh\necho ran\n")
        .unwrap();
    std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o755)).unwrap();
    (base, read, write, other)
}

/// The parent side: what the child saw.
#[test]
fn files_are_confined_to_their_trees() {
    if no_landlock() {
        return;
    }
    let (base, ..) = tree();
    let out = run_case("files", base.path());
    for want in [
        "read r.txt: ok",
        "read secret.txt: denied",
        "write in write/: ok",
        "write in read/: denied",
        "exec write/tool.sh: denied",
        "exec /bin/true: ok",
    ] {
        assert!(out.contains(want), "missing '{want}' in:\n{out}");
    }
}

#[test]
fn nothing_executes_without_exec_functions() {
    if no_landlock() {
        return;
    }
    let (base, ..) = tree();
    let out = run_case("noexec", base.path());
    assert!(out.contains("exec /bin/true: denied"), "{out}");
}

#[test]
fn denied_ports_refuse_connect_and_others_do_not() {
    if no_landlock() {
        return;
    }
    let (base, ..) = tree();
    let out = run_case("ports", base.path());
    if out.contains("NO-TCP-RULES") {
        println!("SKIPPED: Landlock ABI < 4 has no TCP rules");
        return;
    }
    assert!(out.contains("connect denied port: denied"), "{out}");
    assert!(out.contains("connect other port: ok"), "{out}");
    assert!(out.contains("rules took"), "{out}");
}

/// The child side; does nothing in a normal run.
#[test]
fn probe_child() {
    let Ok(case) = std::env::var(CASE) else {
        return;
    };
    if case == "probe" {
        let r = restrict(&rules(
            &Confinement {
                landlock: true,
                ..Default::default()
            },
            &PhpNeeds::default(),
        ))
        .unwrap();
        if r.applied.is_empty() {
            println!("LANDLOCK=unsupported");
        }
        return;
    }
    let dir = PathBuf::from(std::env::var(DIR).unwrap());
    let (read, write, other) = (dir.join("read"), dir.join("write"), dir.join("other"));
    let c = Confinement {
        landlock: true,
        namespaces: false,
        read: vec![read.clone()],
        write: vec![write.clone()],
        ..Default::default()
    };
    match case.as_str() {
        "files" => {
            let r = restrict(&rules(
                &c,
                &PhpNeeds {
                    exec: true,
                    ..Default::default()
                },
            ))
            .unwrap();
            println!("{r:?}");
            say("read r.txt", std::fs::read(read.join("r.txt")).map(drop));
            say(
                "read secret.txt",
                std::fs::read(other.join("secret.txt")).map(drop),
            );
            say("write in write/", std::fs::write(write.join("w"), "x"));
            say("write in read/", std::fs::write(read.join("w"), "x"));
            say("exec write/tool.sh", run(&write.join("tool.sh")));
            say("exec /bin/true", run(Path::new("/bin/true")));
        }
        "noexec" => {
            restrict(&rules(&c, &PhpNeeds::default())).unwrap();
            say("exec /bin/true", run(Path::new("/bin/true")));
        }
        "ports" => {
            let deny = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let open = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let port = |l: &std::net::TcpListener| l.local_addr().unwrap().port();
            let c = Confinement {
                deny_connect_ports: vec![port(&deny)],
                ..c
            };
            let t = Instant::now();
            let r = restrict(&rules(&c, &PhpNeeds::default())).unwrap();
            println!("rules took {:?}", t.elapsed());
            if r.lacking.iter().any(|l| l.contains("no TCP rules")) {
                println!("NO-TCP-RULES");
                return;
            }
            let connect = |l: &std::net::TcpListener| {
                std::net::TcpStream::connect(l.local_addr().unwrap()).map(drop)
            };
            say("connect denied port", connect(&deny));
            say("connect other port", connect(&open));
        }
        other => panic!("unknown case {other}"),
    }
}

fn run(p: &Path) -> std::io::Result<()> {
    Command::new(p).output().and_then(|o| {
        if o.status.success() {
            Ok(())
        } else {
            Err(std::io::Error::other(format!("{}", o.status)))
        }
    })
}

fn say(what: &str, r: std::io::Result<()>) {
    match r {
        Ok(()) => println!("{what}: ok"),
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            println!("{what}: denied")
        }
        Err(e) => println!("{what}: error {e}"),
    }
}
