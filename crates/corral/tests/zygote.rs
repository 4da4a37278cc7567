//! The zygote: prototypes forked from a pre-linked root process must be
//! indistinguishable from exec'd ones (parent, title, descriptors, user),
//! the zygote must hold nothing of a tenant's, and losing it must cost
//! nothing but speed. Needs root.

mod common;

use common::*;
use std::fs;
use std::time::{Duration, Instant};

const TITLE: &str = "corral: zygote";

fn cmdline(pid: i32) -> String {
    fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}

/// The variable names in a process's initial environment: an exec'd
/// prototype was started with CORRAL_PROTOTYPE, a fork of the zygote
/// carries the zygote's CORRAL_ZYGOTE.
fn environ_names(pid: i32) -> Vec<String> {
    fs::read(format!("/proc/{pid}/environ"))
        .unwrap_or_default()
        .split(|&b| b == 0)
        .filter_map(|kv| kv.split(|&b| b == b'=').next())
        .map(|k| String::from_utf8_lossy(k).into_owned())
        .collect()
}

fn fds(pid: i32) -> Vec<i32> {
    let mut out: Vec<i32> = fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|rd| {
            rd.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

fn zygote_of(s: &Server) -> Option<i32> {
    process_table()
        .into_iter()
        .find(|&(p, ppid, _)| ppid == s.pid() && cmdline(p) == format!("{TITLE}\0"))
        .map(|(p, _, _)| p)
}

/// The zygote has preloaded and waits for launches: it sits in recvmsg(2)
/// (47 on x86_64) on its channel, which it does only once it said "ready".
fn ready_zygote(s: &Server) -> Option<i32> {
    let z = zygote_of(s)?;
    let call = fs::read_to_string(format!("/proc/{z}/syscall")).ok()?;
    (call.split_whitespace().next() == Some("47")).then_some(z)
}

fn prototype_of(s: &Server, pool: &str) -> Option<i32> {
    let title = format!("php-fpm: pool {pool}\0");
    children_of(s.pid())
        .into_iter()
        .find(|&p| cmdline(p) == title)
}

fn wait_for<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn two_ondemand_pools(extra_global: &str) -> String {
    format!(
        "[global]\nerror_log = {{dir}}/error.log\n{extra_global}\n\
         [a]\nlisten = {{dir}}/a.sock\nuser = {{user}}\npm = ondemand\npm.max_children = 2\n\
         [b]\nlisten = {{dir}}/b.sock\nuser = {{user}}\npm = ondemand\npm.max_children = 2\n"
    )
}

#[test]
fn a_dormant_pool_s_prototype_is_forked_by_the_zygote_like_an_exec() {
    if !require_root() {
        return;
    }
    let s = Corral::start(&two_ondemand_pools(""));
    assert!(
        zygote_of(&s).is_none(),
        "every pool is dormant: no zygote yet, the idle host pays nothing"
    );
    // The first cold start is exec'd and starts the zygote for the next.
    let r = s.try_get_to(0, "pid.php", "").expect("request to pool a");
    assert_eq!(r.status, 200, "{}", r.body);
    let first = wait_for("pool a's prototype", || prototype_of(&s, "a"));
    assert!(environ_names(first).iter().any(|n| n == "CORRAL_PROTOTYPE"));
    let zygote = wait_for("the zygote, preloaded", || ready_zygote(&s));
    assert_eq!(uid_of_pid(zygote), Some(0), "the zygote runs as root");
    assert_eq!(
        fds(zygote),
        vec![0, 1, 2, 3],
        "the zygote keeps only stdio and its channel to the master"
    );
    assert!(prototype_of(&s, "b").is_none(), "ondemand starts dormant");

    let r = s.try_get_to(1, "pid.php", "").expect("request to pool b");
    assert_eq!(r.status, 200, "{}", r.body);
    let proto = wait_for("pool b's prototype", || prototype_of(&s, "b"));
    let names = environ_names(proto);
    assert!(
        names.iter().any(|n| n == "CORRAL_ZYGOTE")
            && !names.iter().any(|n| n == "CORRAL_PROTOTYPE"),
        "forked by the zygote, not exec'd: {names:?}"
    );
    assert_eq!(
        process_table()
            .into_iter()
            .find(|&(p, _, _)| p == proto)
            .map(|(_, ppid, _)| ppid),
        Some(s.pid()),
        "adopted by the master, which reaps it"
    );
    let user = uid_of("nobody").expect("nobody exists");
    assert_eq!(uid_of_pid(proto), Some(user));
    // Stdio and the hand-off only: listen, control, and what PHP opened
    // itself (OPcache's lock file, the signalfd); nothing from the zygote.
    for fd in fds(proto) {
        let target = fs::read_link(format!("/proc/{proto}/fd/{fd}"))
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        assert!(
            fd <= 8 || target.contains("ZendSem") || target.contains("signalfd"),
            "prototype fd {fd} -> {target} was not handed over"
        );
    }
    let worker = wait_for("a worker of b", || children_of(proto).first().copied());
    assert_eq!(
        cmdline(worker),
        "php-fpm: pool b\0",
        "workers inherit the title"
    );
    assert!(
        zygote_of(&s) == Some(zygote),
        "one zygote serves every pool"
    );
}

#[test]
fn a_dead_zygote_costs_nothing_but_speed() {
    if !require_root() {
        return;
    }
    let s = Corral::start(&two_ondemand_pools(""));
    let r = s.try_get_to(0, "pid.php", "").expect("request to pool a");
    assert_eq!(r.status, 200, "{}", r.body);
    let zygote = wait_for("the zygote", || zygote_of(&s));
    kill(zygote, libc::SIGKILL);
    s.expect_log("the zygote", Duration::from_secs(5));
    let again = wait_for("a new zygote", || ready_zygote(&s).filter(|&z| z != zygote));
    assert_ne!(again, zygote);
    let r = s.try_get_to(1, "pid.php", "").expect("request to pool b");
    assert_eq!(
        r.status, 200,
        "pool b serves from the new zygote: {}",
        r.body
    );
    let proto = wait_for("pool b's prototype", || prototype_of(&s, "b"));
    assert!(environ_names(proto).iter().any(|n| n == "CORRAL_ZYGOTE"));
}

#[test]
fn corral_zygote_no_execs_prototypes() {
    if !require_root() {
        return;
    }
    let s = Corral::start(&two_ondemand_pools("corral.zygote = no"));
    let r = s.try_get_to(0, "pid.php", "").expect("request to pool a");
    assert_eq!(r.status, 200, "{}", r.body);
    let proto = wait_for("pool a's prototype", || prototype_of(&s, "a"));
    assert!(
        environ_names(proto).iter().any(|n| n == "CORRAL_PROTOTYPE"),
        "exec'd"
    );
    assert!(zygote_of(&s).is_none(), "no zygote when turned off");
}

#[test]
fn a_changed_php_ini_replaces_the_zygote() {
    if !require_root() {
        return;
    }
    let ini_dir = temp_dir("zygote-ini");
    let ini = ini_dir.path().join("php.ini");
    let base = fs::read_to_string("/etc/php/8.2/fpm/php.ini").unwrap_or_default();
    fs::write(&ini, format!("{base}\nprecision = 13\n")).unwrap();
    let s = Corral::start_args(&two_ondemand_pools(""), &["-c", ini.to_str().unwrap()]);
    let r = s.try_get_to(0, "pid.php", "").expect("request to pool a");
    assert_eq!(r.status, 200, "{}", r.body);
    let first = wait_for("the zygote", || zygote_of(&s));
    let out = s.control(&["reload"]);
    assert!(out.status.success(), "{}", out.all());
    assert_eq!(zygote_of(&s), Some(first), "same php.ini: the zygote stays");
    fs::write(&ini, format!("{base}\nprecision = 7\n")).unwrap();
    let out = s.control(&["reload"]);
    assert!(out.status.success(), "{}", out.all());
    wait_for("the old zygote to go", || {
        zygote_of(&s).is_none().then_some(())
    });
    // Pool b's cold start brings up a zygote with the new php.ini's list.
    let r = s
        .try_get_to(1, "ini.php", "get=precision")
        .expect("request");
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains('7'), "the new php.ini is used: {}", r.body);
    let second = wait_for("a new zygote", || zygote_of(&s));
    assert_ne!(second, first, "it preloaded the old php.ini's extensions");
}
