//! Faults around the master and the prototypes (issue 8): a killed master
//! with a stopped worker, a killed prototype under load and while idle, a
//! crash loop, pm.max_requests churn, request_terminate_timeout precision,
//! and the level of the "Nothing matches the include pattern" message.
//!
//! Where php-fpm8.2 has the same scenario, it runs too (when installed),
//! and the numbers are printed side by side ("corral: X, php-fpm: Y").
//! Only corral's behaviour is asserted, plus php-fpm's where the reference
//! is certain.

mod common;

use common::*;
use std::fs;
use std::path::Path;
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

fn ms(d: Duration) -> String {
    format!("{} ms", d.as_millis())
}

fn pid_req(s: &Server, query: &str) -> Request {
    script_request(s.www(), "pid.php", query)
}

/// The master's direct children, read cheaply enough to poll every few
/// milliseconds (for corral: the prototypes; its zygote left out).
fn direct_children(pid: i32) -> Vec<i32> {
    match fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")) {
        Ok(text) => {
            let mut v: Vec<i32> = text
                .split_whitespace()
                .filter_map(|p| p.parse().ok())
                .filter(|&p| pid_alive(p) && !is_zygote(p) && !exiting(p))
                .collect();
            v.sort();
            v
        }
        Err(_) => children_of(pid),
    }
}

/// A process whose memory is already gone (empty command line) is on its
/// way out: a killed prototype's worker, briefly re-parented while it dies.
fn exiting(pid: i32) -> bool {
    fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| c.is_empty())
}

/// The one prototype of a one-pool corral.
fn prototype(s: &Server) -> i32 {
    let kids = direct_children(s.pid());
    assert_eq!(
        kids.len(),
        1,
        "one pool, one prototype: the master's children are {kids:?}\nlog:\n{}",
        s.log.text()
    );
    kids[0]
}

/// Waits until `pid` has a child other than `old`; returns it and when it
/// was seen.
/// The first child of `pid` that is none of `seen`. Every earlier
/// prototype counts as seen: a SIGKILLed PHP process can take a while to
/// tear down under load, and is still listed (not yet a zombie) while its
/// successor starts.
fn wait_new_child(pid: i32, seen: &[i32], until: Instant) -> Option<(i32, Instant)> {
    loop {
        if let Some(&p) = direct_children(pid).iter().find(|p| !seen.contains(p)) {
            return Some((p, Instant::now()));
        }
        if Instant::now() > until {
            return None;
        }
        thread::sleep(Duration::from_millis(2));
    }
}

/// Sends `req` (to pid.php) again and again, each try with `per_try`
/// timeout, until one gets a 200 from a worker not in `old`; returns it and
/// when it ended, or the last error.
fn first_success(
    listen: &Listen,
    req: &Request,
    old: &[i32],
    per_try: Duration,
    until: Instant,
) -> Result<(Reply, Instant), String> {
    let mut last = String::from("no try");
    while Instant::now() < until {
        match request_timeout(listen, req, per_try) {
            Ok(r) if r.status == 200 && old.contains(&r.body.trim().parse().unwrap_or(0)) => {
                last = format!("answered by {}, a worker from before the kill", r.body)
            }
            Ok(r) if r.status == 200 => return Ok((r, Instant::now())),
            Ok(r) => last = format!("status {}: {:?}", r.status, r.body),
            Err(e) => last = e,
        }
        thread::sleep(Duration::from_millis(5));
    }
    Err(last)
}

fn fpm_or_note(what: &str) -> bool {
    if require_php_fpm().is_some() {
        return true;
    }
    eprintln!("{what}: php-fpm8.2 is not installed: corral's numbers only");
    false
}

// ------------------------------------------------------------ 1. port reuse

/// What happened after SIGKILL of a master one of whose workers was
/// stopped.
struct PortReuse {
    /// When a fresh master on the same port got ready, after the kill.
    ready_after: Option<Duration>,
    attempts: usize,
    /// Why the last failed attempt failed (its relevant log lines).
    last_failure: String,
    /// Requests the fresh master served out of 10.
    served: usize,
    /// What was stopped ("worker 123", "prototype 122").
    stopped: String,
    /// The stopped process 5 s after the kill: (state, parent) if still there.
    stopped_left: Option<(char, i32)>,
    /// Every process of the old tree still there 5 s after the kill.
    old_tree_left: Vec<(i32, char, i32)>,
}

impl PortReuse {
    fn summary(&self) -> String {
        let start = match self.ready_after {
            Some(d) => format!(
                "fresh master ready {} after the kill (attempt {}), served {}/10",
                ms(d),
                self.attempts,
                self.served
            ),
            None => format!(
                "no fresh master within 5 s ({} attempts; last: {})",
                self.attempts, self.last_failure
            ),
        };
        let worker = match self.stopped_left {
            Some((st, ppid)) => {
                format!("stopped {} LEFT (state {st}, parent {ppid})", self.stopped)
            }
            None => format!("stopped {} gone", self.stopped),
        };
        format!(
            "{start}; {worker}; old processes left: {:?}",
            self.old_tree_left
        )
    }
}

/// Which process gets SIGSTOP before the master's SIGKILL.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Stop {
    Worker,
    /// corral only: the pool's prototype (its workers keep running).
    Prototype,
}

/// `subreaper`: the test process is a child subreaper meanwhile (see
/// [`ChildSubreaper`]), so the kernel does not SIGHUP stopped orphans and
/// only the implementation's own mechanisms can clean up.
fn port_after_master_kill(kind: Kind, stop: Stop, subreaper: bool) -> PortReuse {
    // One scenario at a time: the subreaper is process-wide, and under it
    // a parallel scenario without one would lose the kernel's SIGHUP.
    static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let _subreaper = subreaper.then(ChildSubreaper::new);
    let port = free_port();
    let conf = pool_conf(&format!("listen = 127.0.0.1:{port}\npm.max_children = 2"));
    let mut old = Server::start(kind, &conf, None, &[]);
    let mut cleanup = KillOnDrop::new();
    assert_eq!(old.get("pid.php", "").status, 200);
    let workers = old.worker_pids();
    assert_eq!(workers.len(), 2, "{kind:?}: {workers:?}");
    cleanup.add(&old.descendants());
    let (victim, stopped) = match stop {
        Stop::Worker => (workers[0], format!("worker {}", workers[0])),
        Stop::Prototype => {
            let p = prototype(&old);
            (p, format!("prototype {p}"))
        }
    };
    kill(victim, libc::SIGSTOP);
    let deadline = Instant::now() + Duration::from_secs(2);
    while proc_stat(victim).map(|s| s.0) != Some('T') && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(
        proc_stat(victim).map(|s| s.0),
        Some('T'),
        "{kind:?}: {stopped} must be stopped by SIGSTOP"
    );

    kill(old.pid(), libc::SIGKILL);
    let t_kill = Instant::now();
    while old.is_running() && t_kill.elapsed() < Duration::from_secs(2) {
        thread::sleep(Duration::from_millis(5));
    }
    assert!(!old.is_running(), "{kind:?}: SIGKILL must end the master");

    let mut attempts = 0;
    let mut last_failure = String::new();
    let mut fresh = None;
    while t_kill.elapsed() < Duration::from_secs(5) {
        attempts += 1;
        match Server::try_start(kind, &conf, None, &[]) {
            Ok(s) => {
                fresh = Some((s, t_kill.elapsed()));
                break;
            }
            Err(log) => {
                let lines: Vec<&str> = log
                    .lines()
                    .filter(|l| l.contains("ERROR") || l.contains("in use"))
                    .collect();
                last_failure = if lines.is_empty() {
                    log.lines().rev().take(5).collect::<Vec<_>>().join(" / ")
                } else {
                    lines.join(" / ")
                };
                thread::sleep(Duration::from_millis(100));
            }
        }
    }
    let mut served = 0;
    if let Some((s, _)) = &fresh {
        for _ in 0..10 {
            let r = request_timeout(s.listen(), &pid_req(s, ""), Duration::from_secs(2));
            if matches!(r, Ok(r) if r.status == 200) {
                served += 1;
            }
        }
    }
    while pid_alive(victim) && t_kill.elapsed() < Duration::from_secs(5) {
        thread::sleep(Duration::from_millis(20));
    }
    let left = cleanup.alive();
    let stopped_left = left
        .iter()
        .find(|(p, _, _)| *p == victim)
        .map(|&(_, st, ppid)| (st, ppid));
    let ready_after = fresh.as_ref().map(|(_, d)| *d);
    drop(fresh);
    drop(old);
    // `cleanup` kills what is left when it goes, failure or not.
    PortReuse {
        ready_after,
        attempts,
        last_failure,
        served,
        stopped,
        stopped_left,
        old_tree_left: left,
    }
}

#[test]
fn killed_master_with_a_stopped_worker_frees_its_port() {
    let corral = port_after_master_kill(Kind::Corral, Stop::Worker, false);
    let fpm = fpm_or_note("port reuse")
        .then(|| port_after_master_kill(Kind::PhpFpm, Stop::Worker, false));
    eprintln!(
        "SIGSTOP a worker, SIGKILL the master, start a fresh one on the same port:\n  corral: {}\n  php-fpm: {}",
        corral.summary(),
        fpm.as_ref()
            .map(PortReuse::summary)
            .unwrap_or_else(|| "not run".into())
    );
    assert!(
        corral.ready_after.is_some() && corral.served == 10,
        "a fresh corral must take over the TCP port within 5 s of SIGKILL of the old master \
         (one of whose workers was stopped with SIGSTOP) and serve: {}",
        corral.summary()
    );
    assert!(
        corral.stopped_left.is_none() && corral.old_tree_left.is_empty(),
        "the stopped worker must not outlive its master (left in state T with parent 1): {}",
        corral.summary()
    );
}

/// The same with the prototype stopped instead (php-fpm has none): its
/// workers hold the listening socket and must not outlive the master.
#[test]
fn killed_master_with_a_stopped_prototype_frees_its_port() {
    let corral = port_after_master_kill(Kind::Corral, Stop::Prototype, false);
    eprintln!(
        "SIGSTOP the prototype, SIGKILL the master, start a fresh one on the same port:\n  corral: {}",
        corral.summary()
    );
    assert!(
        corral.ready_after.is_some() && corral.served == 10,
        "a fresh corral must take over the TCP port within 5 s of SIGKILL of the old master \
         (whose prototype was stopped with SIGSTOP) and serve: {}",
        corral.summary()
    );
    assert!(
        corral.stopped_left.is_none() && corral.old_tree_left.is_empty(),
        "no process of the old master may outlive it (a stopped prototype, its workers): {}",
        corral.summary()
    );
}

// ------------------------------------------------------------ 2. prototype killed under load

/// What a load saw around a kill.
struct Gap {
    what: String,
    /// From the kill to the end of the first request started after it that
    /// a new worker answered.
    gap: Option<Duration>,
    failed_after: usize,
    total_after: usize,
}

impl Gap {
    fn summary(&self) -> String {
        format!(
            "{}: first success {} after the kill; {} of {} requests after it failed",
            self.what,
            self.gap.map(ms).unwrap_or_else(|| "NEVER (10 s)".into()),
            self.failed_after,
            self.total_after
        )
    }
}

/// Runs a load of two clients (2 s timeout per request) on `s`, calls
/// `strike` in the middle and measures how long the pool was out.
fn gap_after(s: &Server, strike: impl FnOnce(&Server) -> String) -> Gap {
    let load = Load::start(
        s.listen(),
        &pid_req(s, "sleep_ms=10"),
        2,
        Duration::from_secs(2),
        Duration::ZERO,
        Duration::from_secs(30),
    );
    thread::sleep(Duration::from_millis(700));
    assert!(
        load.outcomes().iter().any(|o| o.result.is_ok()),
        "no request succeeded before the kill: {:?}\nlog:\n{}",
        load.outcomes().first(),
        s.log.text()
    );
    let old = s.worker_pids();
    let what = strike(s);
    let t_kill = Instant::now();
    // A worker from before the kill may still answer for a moment: only a
    // new worker's answer ends the gap.
    let new_success = |load: &Load| {
        load.outcomes()
            .into_iter()
            .filter(|o| o.start >= t_kill)
            .filter(|o| {
                o.result
                    .as_ref()
                    .is_ok_and(|b| !old.contains(&b.trim().parse().unwrap_or(0)))
            })
            .min_by_key(|o| o.end)
    };
    let deadline = t_kill + Duration::from_secs(10);
    while new_success(&load).is_none() && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(10));
    }
    thread::sleep(Duration::from_millis(300));
    let first = new_success(&load);
    let outcomes = load.stop();
    let after: Vec<&Outcome> = outcomes.iter().filter(|o| o.end >= t_kill).collect();
    Gap {
        what,
        gap: first.map(|o| o.end - t_kill),
        failed_after: after.iter().filter(|o| o.result.is_err()).count(),
        total_after: after.len(),
    }
}

#[test]
fn killed_prototype_under_load_serves_again_within_3s() {
    let conf = pool_conf("pm.max_children = 3");
    let mut s = Corral::start(&conf);
    let corral = gap_after(&s, |s| {
        let p = prototype(s);
        kill(p, libc::SIGKILL);
        format!("SIGKILL of the prototype {p}")
    });
    let fpm = fpm_or_note("prototype kill").then(|| {
        // php-fpm has no prototype: the nearest fault is every worker of
        // the pool dying at once, which is what a prototype's death does.
        let f = PhpFpm::start(&conf);
        gap_after(&f, |f| {
            let w = f.worker_pids();
            for &p in &w {
                kill(p, libc::SIGKILL);
            }
            format!("SIGKILL of all {} workers", w.len())
        })
    });
    eprintln!(
        "pool out after a kill under load:\n  corral: {}\n  php-fpm: {}",
        corral.summary(),
        fpm.as_ref()
            .map(Gap::summary)
            .unwrap_or_else(|| "not run".into())
    );
    assert!(s.is_running(), "the master died:\n{}", s.log.text());
    let gap = corral.gap.unwrap_or(Duration::MAX);
    assert!(
        gap <= Duration::from_secs(3),
        "the pool must serve again within 3 s of its prototype's SIGKILL: {}\nlog:\n{}",
        corral.summary(),
        s.log.text()
    );
}

// ------------------------------------------------------------ 3. pm.max_requests churn

struct Churn {
    ok: usize,
    failed: usize,
    first_failure: Option<String>,
    warnings: Vec<String>,
}

fn churn(kind: Kind) -> Churn {
    let s = Server::start(
        kind,
        &pool_conf("pm.max_children = 2\npm.max_requests = 2"),
        None,
        &[],
    );
    let load = Load::start(
        s.listen(),
        &pid_req(&s, ""),
        3,
        Duration::from_secs(5),
        Duration::ZERO,
        Duration::from_secs(5),
    );
    thread::sleep(Duration::from_secs(5));
    let outcomes = load.stop();
    thread::sleep(Duration::from_millis(300));
    Churn {
        ok: outcomes.iter().filter(|o| o.result.is_ok()).count(),
        failed: outcomes.iter().filter(|o| o.result.is_err()).count(),
        first_failure: outcomes
            .iter()
            .find_map(|o| o.result.as_ref().err().cloned()),
        warnings: s
            .log
            .lines()
            .into_iter()
            .filter(|l| l.contains("WARNING"))
            .collect(),
    }
}

#[test]
fn max_requests_2_under_load_logs_no_warning() {
    let corral = churn(Kind::Corral);
    let fpm = fpm_or_note("max_requests churn").then(|| churn(Kind::PhpFpm));
    let line = |c: &Churn| {
        format!(
            "{} ok, {} failed (first: {:?}), {} WARNING lines{}",
            c.ok,
            c.failed,
            c.first_failure,
            c.warnings.len(),
            c.warnings
                .first()
                .map(|w| format!(", e.g. {w}"))
                .unwrap_or_default()
        )
    };
    eprintln!(
        "pm.max_requests = 2, 3 clients for 5 s:\n  corral: {}\n  php-fpm: {}",
        line(&corral),
        fpm.as_ref().map(line).unwrap_or_else(|| "not run".into())
    );
    assert!(
        corral.ok > 50,
        "too little load got through: {}",
        line(&corral)
    );
    assert!(
        corral.warnings.is_empty(),
        "workers retiring after pm.max_requests are routine: no WARNING may be logged, got {}:\n{}",
        corral.warnings.len(),
        corral.warnings.join("\n")
    );
    assert_eq!(
        corral.failed,
        0,
        "no request may fail while workers retire: {}",
        line(&corral)
    );
}

// ------------------------------------------------------------ 4. request_terminate_timeout precision

/// Three requests to a script sleeping 5 s under request_terminate_timeout
/// = 1s: how long each took and what it got, and the server's log lines
/// about it.
fn terminate_runs(kind: Kind) -> (Vec<(Duration, String)>, Vec<String>) {
    let s = Server::start(
        kind,
        &pool_conf("pm.max_children = 2\nrequest_terminate_timeout = 1s"),
        None,
        &[],
    );
    let mut out = Vec::new();
    for _ in 0..3 {
        let n = s.wait_workers(Duration::from_secs(10), |n| n == 2);
        assert_eq!(n, 2, "{kind:?}: the pool must be back at 2 workers");
        // Both workers idle in accept().
        thread::sleep(Duration::from_millis(300));
        let req = script_request(s.www(), "fault_sleep.php", "s=5");
        let t0 = Instant::now();
        let r = request_timeout(s.listen(), &req, Duration::from_secs(10));
        let took = t0.elapsed();
        let what = match r {
            Ok(r) => format!("status {} {:?}", r.status, r.body),
            Err(e) => e,
        };
        out.push((took, what));
    }
    thread::sleep(Duration::from_millis(200));
    let lines = s
        .log
        .lines()
        .into_iter()
        .filter(|l| l.contains("timed out") || l.contains("SIGTERM"))
        .collect();
    (out, lines)
}

#[test]
fn terminate_timeout_fires_within_100ms() {
    let (corral, corral_log) = terminate_runs(Kind::Corral);
    let fpm = fpm_or_note("request_terminate_timeout").then(|| terminate_runs(Kind::PhpFpm).0);
    let line = |runs: &[(Duration, String)]| {
        runs.iter()
            .map(|(d, _)| format!("{:.3} s", d.as_secs_f64()))
            .collect::<Vec<_>>()
            .join(", ")
    };
    eprintln!(
        "request_terminate_timeout = 1s, sleep(5), time to the end of the request:\n  corral: {}\n  php-fpm: {}",
        line(&corral),
        fpm.as_deref().map(line).unwrap_or_else(|| "not run".into())
    );
    for (i, (took, what)) in corral.iter().enumerate() {
        assert!(
            !what.contains("slept=5"),
            "run {}: the request outlived request_terminate_timeout: {what}",
            i + 1
        );
        assert!(
            *took >= Duration::from_secs(1) && *took <= Duration::from_millis(1100),
            "run {}: a 1 s request_terminate_timeout must end the request between 1.0 and 1.1 s, \
             it took {:.3} s ({what}); all runs: {}\nlog:\n{}",
            i + 1,
            took.as_secs_f64(),
            line(&corral),
            corral_log.join("\n")
        );
    }
}

// ------------------------------------------------------------ 5. prototype crashes

#[test]
fn crashed_prototype_is_restarted_at_once() {
    let mut s = Corral::start(&pool_conf("pm.max_children = 2"));
    assert_eq!(s.get("pid.php", "").status, 200);
    // An established, idle pool: not a prototype that just started.
    thread::sleep(Duration::from_secs(2));
    let old_workers = s.worker_pids();
    let proto = prototype(&s);
    kill(proto, libc::SIGKILL);
    let t_kill = Instant::now();
    // A worker of the dead prototype may still answer for a moment: only
    // a new worker counts.
    let got = first_success(
        s.listen(),
        &pid_req(&s, ""),
        &old_workers,
        Duration::from_secs(2),
        t_kill + Duration::from_secs(5),
    );
    let took = got
        .as_ref()
        .map(|(_, at)| *at - t_kill)
        .map_err(String::clone);
    eprintln!(
        "SIGKILL of the idle prototype: next request served after {}",
        took.clone()
            .map(ms)
            .unwrap_or_else(|e| format!("NEVER (5 s): {e}"))
    );
    let (reply, _) = got.unwrap_or_else(|e| {
        panic!(
            "no request served within 5 s of the prototype's SIGKILL: {e}\nlog:\n{}",
            s.log.text()
        )
    });
    assert!(s.is_running(), "the master died:\n{}", s.log.text());
    let took = took.unwrap();
    assert!(
        took <= Duration::from_millis(500),
        "a crashed prototype must be restarted at once: the next request must succeed \
         within 0.5 s of the kill, it took {}\nlog:\n{}",
        ms(took),
        s.log.text()
    );
    assert!(
        s.worker_pids()
            .contains(&reply.body.trim().parse().unwrap_or(0)),
        "the answer comes from a worker of the new prototype {:?}: {:?}",
        s.worker_pids(),
        reply.body
    );
}

#[test]
fn prototype_crash_loop_backs_off_and_master_stays_up() {
    let mut s = Corral::start(&pool_conf("pm.max_children = 1"));
    assert_eq!(s.get("pid.php", "").status, 200);
    let master = s.pid();
    let mut current = prototype(&s);
    let mut seen: Vec<i32> = Vec::new();
    // Crash k: the time from the kill to the next prototype.
    let mut delays: Vec<Duration> = Vec::new();
    let give_up = Instant::now() + Duration::from_secs(60);
    for k in 1..=5 {
        // Its workers die with it, and one may be re-parented to the
        // master on its way out (the master adopts while a zygote launch
        // is under way): none of them is a new prototype.
        seen.extend(children_of(current));
        kill(current, libc::SIGKILL);
        let t = Instant::now();
        seen.push(current);
        let next = wait_new_child(master, &seen, (t + Duration::from_secs(20)).min(give_up));
        assert!(
            s.is_running(),
            "the master died in the crash loop (crash {k}):\n{}",
            s.log.text()
        );
        let Some((pid, at)) = next else {
            panic!(
                "no new prototype within 20 s of crash {k} (delays so far: {delays:?})\nlog:\n{}",
                s.log.text()
            );
        };
        delays.push(at - t);
        current = pid;
    }
    let shown: Vec<String> = delays.iter().map(|d| ms(*d)).collect();
    eprintln!(
        "prototype crash loop, delay before each restart: {}",
        shown.join(", ")
    );
    let proto_lines: Vec<String> = s
        .log
        .lines()
        .into_iter()
        .filter(|l| l.contains("prototype") || l.contains("restart"))
        .collect();
    eprintln!("what the master said:\n{}", proto_lines.join("\n"));
    let (first, last) = (delays[0], delays[4]);
    assert!(
        last >= Duration::from_millis(500) && last >= first * 4,
        "five crashes in a row must back off: the 5th restart must wait at least 0.5 s and \
         4 times the 1st; delays: {}\nlog:\n{}",
        shown.join(", "),
        proto_lines.join("\n")
    );
    // Then the pool serves again, once the back-off allows.
    let got = first_success(
        s.listen(),
        &pid_req(&s, ""),
        &[],
        Duration::from_secs(2),
        Instant::now() + Duration::from_secs(30),
    );
    assert!(
        got.is_ok(),
        "after the crash loop the pool must serve again within 30 s: {:?}\nlog:\n{}",
        got.err(),
        s.log.text()
    );
    assert!(s.is_running(), "the master died:\n{}", s.log.text());
}

// ------------------------------------------------------------ 6. include matching nothing

/// The "Nothing matches the include pattern" lines of a log, without the
/// timestamp, with `dir` written as `{dir}`.
fn nothing_matches(lines: &[String], dir: &Path) -> Vec<String> {
    let d = dir.display().to_string();
    lines
        .iter()
        .filter(|l| l.contains("Nothing matches the include pattern"))
        .map(|l| {
            l.split_once("] ")
                .map(|(_, rest)| rest)
                .unwrap_or(l)
                .replace(&d, "{dir}")
        })
        .collect()
}

/// A config whose include glob (in the empty directory `inc`) matches
/// nothing.
fn include_conf(inc: &Path) -> String {
    format!(
        "[global]\nerror_log = {{dir}}/error.log\ninclude = {}/*.conf\n\n[www]\n\
         listen = {{dir}}/www.sock\nuser = {{user}}\npm = static\npm.max_children = 1\n",
        inc.display()
    )
}

/// (-t, start, reload) "Nothing matches" lines of `kind`; `-t` reads
/// `test_conf` (the same file for both implementations).
fn include_lines(kind: Kind, inc: &Path, test_conf: &Path) -> [Vec<String>; 3] {
    let conf = include_conf(inc);
    let path = test_conf;
    let program = match kind {
        Kind::Corral => corral_bin(),
        Kind::PhpFpm => PHP_FPM.into(),
    };
    let p = path.display().to_string();
    let t = run_cmd(&program, &["-t", "-y", &p]);
    assert_eq!(t.code, Some(0), "{kind:?} -t: {}", t.all());
    let all: Vec<String> = t.all().lines().map(str::to_string).collect();
    let test = nothing_matches(&all, inc);

    let s = Server::start(kind, &conf, None, &[]);
    let start = nothing_matches(&s.log.lines(), inc);
    let mark = s.log.lines().len();
    s.signal(libc::SIGUSR2);
    s.wait_log("Reloading in progress", Duration::from_secs(5));
    // php-fpm re-execs and is ready again; corral says what changed.
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline
        && !s.log_since(mark).iter().any(|l| {
            l.contains("Nothing matches")
                || l.contains("ready to handle")
                || l.contains("unchanged")
        })
    {
        thread::sleep(Duration::from_millis(20));
    }
    thread::sleep(Duration::from_millis(300));
    let since = s.log_since(mark);
    let mut reload = nothing_matches(&since, inc);
    if reload.is_empty() {
        // Say what was logged instead (the assertion shows it).
        reload.extend(since.iter().map(|l| format!("(other line) {l}")));
    }
    [test, start, reload]
}

#[test]
fn include_matching_nothing_is_a_warning_like_php_fpm() {
    let inc = temp_dir("inc-empty");
    // -t on a file of our own, so both implementations name the same path.
    let dir = temp_dir("inc-t");
    let test_conf = dir.path().join("php-fpm.conf");
    fs::write(
        &test_conf,
        include_conf(inc.path())
            .replace("{dir}", &dir.path().display().to_string())
            .replace("{user}", "nobody"),
    )
    .unwrap();
    let corral = include_lines(Kind::Corral, inc.path(), &test_conf);
    let fpm =
        fpm_or_note("include warning").then(|| include_lines(Kind::PhpFpm, inc.path(), &test_conf));
    for (i, when) in ["corral -t", "start", "reload (SIGUSR2)"]
        .iter()
        .enumerate()
    {
        eprintln!(
            "include matching nothing, {when}:\n  corral: {:?}\n  php-fpm: {:?}",
            corral[i],
            fpm.as_ref().map(|f| &f[i])
        );
    }
    if let Some(f) = &fpm {
        for (i, when) in ["-t", "start", "reload"].iter().enumerate() {
            assert!(
                f[i].len() == 1 && f[i][0].starts_with("WARNING: "),
                "php-fpm's reference ({when}): one WARNING line, got {:?}",
                f[i]
            );
        }
    }
    for (i, when) in ["-t", "start", "reload (SIGUSR2)"].iter().enumerate() {
        assert!(
            corral[i].len() == 1 && corral[i][0].starts_with("WARNING: "),
            "{when}: an include that matches nothing is logged once as WARNING (php-fpm's level), got {:?}",
            corral[i]
        );
        if let Some(f) = &fpm {
            if i == 0 {
                assert_same("the -t line", &corral[i][0], &f[i][0]);
            }
        }
    }
}

/// As above, under a child subreaper (tini, dumb-init, a supervisor): the
/// orphaned workers are not in an orphaned process group, so the kernel's
/// SIGHUP + SIGCONT to stopped orphans does not come, and the old tree must
/// go by corral's own means (PDEATHSIG, ...).
#[test]
fn killed_master_with_a_stopped_worker_frees_its_port_under_a_subreaper() {
    let corral = port_after_master_kill(Kind::Corral, Stop::Worker, true);
    let corral_proto = port_after_master_kill(Kind::Corral, Stop::Prototype, true);
    let fpm = fpm_or_note("port reuse under a subreaper")
        .then(|| port_after_master_kill(Kind::PhpFpm, Stop::Worker, true));
    eprintln!(
        "under a child subreaper, SIGSTOP, SIGKILL the master, start a fresh one on the same port:\n  \
         corral (worker stopped): {}\n  corral (prototype stopped): {}\n  php-fpm (worker stopped): {}",
        corral.summary(),
        corral_proto.summary(),
        fpm.as_ref()
            .map(PortReuse::summary)
            .unwrap_or_else(|| "not run".into())
    );
    for (what, r) in [("worker", &corral), ("prototype", &corral_proto)] {
        assert!(
            r.ready_after.is_some() && r.served == 10,
            "{what} stopped: a fresh corral must take over the TCP port within 5 s of SIGKILL of \
             the old master and serve: {}",
            r.summary()
        );
        assert!(
            r.stopped_left.is_none() && r.old_tree_left.is_empty(),
            "{what} stopped: no process of the old master may outlive it: {}",
            r.summary()
        );
    }
}
