//! The generator against its own built-in responder: counts only, never
//! timing (the machine running the tests may be arbitrarily slow).

use std::net::TcpListener;
use std::os::unix::net::UnixListener;
use std::path::PathBuf;
use std::time::Duration;

use corral_bench::responder::{self, Config};
use corral_bench::{Options, Pace, Plan, Report, RunLength, Target};

/// A responder on a fresh Unix socket; the tempdir must outlive the test.
fn unix_responder(config: Config) -> (tempfile::TempDir, Target) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fcgi.sock");
    responder::spawn(UnixListener::bind(&path).unwrap(), config);
    (dir, Target::Unix(path))
}

fn tcp_responder() -> Target {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    responder::spawn(listener, Config::default());
    Target::Tcp(addr)
}

fn plan(target: Target, n: u64, concurrency: usize, keep_conn: bool) -> Plan {
    let mut p = Plan::new(target, "/srv/www/index.php", n).keep_conn(keep_conn);
    p.concurrency = concurrency;
    p.timeout = Duration::from_secs(30);
    p
}

fn assert_all_ok(r: &Report, n: u64) {
    assert_eq!(r.requests, n, "{r:#?}");
    assert_eq!(r.sent, n, "{r:#?}");
    assert_eq!(r.completed, n, "{r:#?}");
    assert_eq!(r.errors_total, 0, "{r:#?}");
    assert_eq!(r.status_codes.get("200"), Some(&n), "{r:#?}");
    assert!(r.bytes_received > 0);
}

#[test]
fn exact_counts_unix_all_combinations() {
    let (_dir, target) = unix_responder(Config::default());
    for concurrency in [1, 8] {
        for keep_conn in [false, true] {
            let r = corral_bench::run(&plan(target.clone(), 1000, concurrency, keep_conn));
            assert_all_ok(&r, 1000);
            assert_eq!((r.concurrency, r.keep_conn), (concurrency, keep_conn));
        }
    }
}

#[test]
fn exact_counts_tcp() {
    let target = tcp_responder();
    for keep_conn in [false, true] {
        let r = corral_bench::run(&plan(target.clone(), 300, 8, keep_conn));
        assert_all_ok(&r, 300);
    }
}

#[test]
fn bytes_received_is_the_wire_size() {
    // Hello answer: one STDOUT record (8 + 33 + 7 padding), the empty STDOUT
    // (8) and END_REQUEST (16) = 72 bytes.
    let (_dir, target) = unix_responder(Config::default());
    let r = corral_bench::run(&plan(target, 10, 1, true));
    assert_eq!(r.bytes_received, 720);
}

#[test]
fn non_200_statuses_are_counted() {
    let (_dir, target) = unix_responder(Config {
        fail_every: Some(4),
    });
    let r = corral_bench::run(&plan(target, 200, 3, true));
    assert_eq!(r.completed, 200);
    assert_eq!(r.errors.status, 50);
    assert_eq!(r.errors_total, 50);
    assert_eq!(r.status_codes.get("503"), Some(&50));
    assert_eq!(r.status_codes.get("200"), Some(&150));
    // Non-200 answers are still answers: their latency is recorded.
    assert!(r.latency_us.max > 0.0);
}

#[test]
fn connect_errors_when_nothing_listens() {
    let dir = tempfile::tempdir().unwrap();
    let missing = Target::Unix(dir.path().join("nobody-home.sock"));
    for (concurrency, keep_conn) in [(1, false), (4, true)] {
        let r = corral_bench::run(&plan(missing.clone(), 25, concurrency, keep_conn));
        assert_eq!(r.requests, 25);
        assert_eq!(r.errors.connect, 25);
        assert_eq!(r.errors_total, 25);
        assert_eq!((r.sent, r.completed), (0, 0));
        assert!(r.first_error.as_deref().unwrap().starts_with("connect:"));
        assert_eq!(r.latency_us.p50, 0.0);
    }

    // TCP: a port that was just closed refuses connections.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let r = corral_bench::run(&plan(Target::Tcp(port), 5, 1, false));
    assert_eq!(r.errors.connect, 5);
}

#[test]
fn duration_mode_counts_are_consistent() {
    let (_dir, target) = unix_responder(Config::default());
    let mut p = plan(target, 0, 4, true);
    p.length = RunLength::Duration(Duration::from_millis(200));
    let r = corral_bench::run(&p);
    assert!(r.completed > 0);
    assert_eq!(r.requests, r.completed);
    assert_eq!(r.errors_total, 0);
}

#[test]
fn warmup_requests_are_not_counted() {
    let (_dir, target) = unix_responder(Config::default());
    let mut p = plan(target, 50, 2, true);
    p.warmup = Duration::from_millis(100);
    let r = corral_bench::run(&p);
    assert_all_ok(&r, 50);
}

#[test]
fn open_loop_sends_exactly_n_on_schedule() {
    let (_dir, target) = unix_responder(Config::default());
    let mut p = plan(target, 50, 2, false);
    p.pace = Pace::Rate(500.0);
    let r = corral_bench::run(&p);
    assert_all_ok(&r, 50);
    assert_eq!(r.mode, "open");
    // Not a speed assertion: the last slot is due 49/500 s after the start,
    // so the run cannot possibly end sooner.
    assert!(r.elapsed_s >= 0.098, "{}", r.elapsed_s);
}

#[test]
fn json_has_the_documented_keys() {
    let (_dir, target) = unix_responder(Config {
        fail_every: Some(2),
    });
    let r = corral_bench::run(&plan(target, 10, 2, true));
    let v: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
    for key in [
        "target",
        "concurrency",
        "keep_conn",
        "mode",
        "target_rate",
        "warmup_s",
        "elapsed_s",
        "requests",
        "sent",
        "completed",
        "rps",
        "latency_us",
        "errors",
        "errors_total",
        "status_codes",
        "bytes_received",
        "first_error",
    ] {
        assert!(v.get(key).is_some(), "missing {key} in {v}");
    }
    for key in ["min", "mean", "stdev", "p50", "p90", "p99", "p99_9", "max"] {
        assert!(v["latency_us"][key].is_number(), "latency_us.{key} in {v}");
    }
    for key in ["connect", "io", "timeout", "protocol", "status"] {
        assert!(v["errors"][key].is_u64(), "errors.{key} in {v}");
    }
    assert_eq!(v["completed"], 10);
    assert_eq!(v["errors"]["status"], 5);
    assert_eq!(v["status_codes"]["503"], 5);
    assert_eq!(v["mode"], "closed");
}

#[test]
fn self_test_mode_runs_against_the_builtin_responder() {
    let options = Options {
        self_test: true,
        length: RunLength::Requests(100),
        concurrency: 2,
        keep_conn: true,
        ..Options::default()
    };
    let r = corral_bench::run_options(&options).unwrap();
    assert_all_ok(&r, 100);
    let socket = PathBuf::from(r.target.strip_prefix("unix:").unwrap());
    assert!(!socket.exists(), "self-test socket is removed afterwards");
}

/// `corral bench ARGS` as the binary parses it.
fn bench_args(list: &[&str]) -> Result<corral_bench::BenchArgs, clap::Error> {
    use clap::Parser;
    #[derive(Parser)]
    struct T {
        #[command(flatten)]
        bench: corral_bench::BenchArgs,
    }
    let mut all = vec!["bench"];
    all.extend_from_slice(list);
    T::try_parse_from(all).map(|t| t.bench)
}

#[test]
fn exit_codes() {
    use corral_bench::ExitCode;
    let (_dir, target) = unix_responder(Config::default());
    let target = target.to_string();
    let run = |list: &[&str]| bench_args(list).unwrap().run();
    assert_eq!(
        run(&[&target, "-s", "/x.php", "-n", "5", "--json"]),
        ExitCode::Ok
    );
    assert_eq!(
        run(&[&target, "-s", "/x.php", "--body-file", "/nonexistent/body"]),
        ExitCode::Failure
    );
    assert_eq!(run(&["-s", "/x.php"]), ExitCode::Usage, "no target");
    assert!(bench_args(&["--bogus"]).is_err());
}

/// Every connect refused: a report that says so, and a failure, not 0.
#[test]
fn a_run_with_no_answer_at_all_fails() {
    let dir = tempfile::tempdir().unwrap();
    let dead = dir.path().join("nobody.sock");
    drop(UnixListener::bind(&dead).unwrap());
    let target = format!("unix:{}", dead.display());
    let args = bench_args(&[&target, "-s", "/x.php", "-n", "20", "-c", "2", "--json"]).unwrap();
    let report = corral_bench::run_options(&args.options().unwrap()).unwrap();
    assert_eq!(report.completed, 0, "{report:#?}");
    assert!(report.errors.connect > 0, "{report:#?}");
    let reply = corral_bench::reply(&report, false);
    assert_eq!(reply.code, corral_bench::ExitCode::Failure);
    assert_eq!(reply.json["code"], 1, "{}", reply.json);
    assert!(
        reply.json["error"].as_str().unwrap().contains("none of 20"),
        "{}",
        reply.json
    );
    assert_eq!(reply.json["errors"]["connect"], report.errors.connect);
    assert!(reply.text.contains("none of 20 requests was answered"));
    assert_eq!(args.run(), corral_bench::ExitCode::Failure);
}
