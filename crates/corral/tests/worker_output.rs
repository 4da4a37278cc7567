//! Worker output (catch_workers_output) in the master's log, line for line
//! as php-fpm 8.2 writes it: long output continued on further lines at
//! log_limit, decorated or not; the end-of-request flush marker; one line
//! per request; the other pipe ending the line. Each scenario runs on
//! corral and, when installed, on php-fpm8.2, and the lines must match
//! (time stamps and pids aside).

mod common;

use common::*;
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(5);

/// A pool that logs its workers' output, with `global` lines for
/// `[global]` and `pool` lines for the pool.
fn conf(global: &str, pool: &str) -> String {
    pool_conf(&format!("catch_workers_output = yes\n{pool}")).replacen(
        "[global]\n",
        &format!("[global]\n{global}\n"),
        1,
    )
}

/// The query writing each of `writes` (PIPE:COUNT:TEXT[:TAIL], see
/// output.php).
fn query(writes: &[&str]) -> String {
    writes
        .iter()
        .map(|w| format!("w[]={}", w.replace(' ', "%20")))
        .collect::<Vec<_>>()
        .join("&")
}

/// The log lines a worker's output became: decorated ones are the
/// `said into` lines, undecorated ones the lines the master did not stamp.
fn output_lines(s: &Server, decorated: bool) -> Vec<String> {
    s.log
        .lines()
        .into_iter()
        .filter(|l| {
            if decorated {
                l.contains(" said into ")
            } else {
                !l.is_empty() && !l.starts_with('[')
            }
        })
        .collect()
}

/// Waits for `n` output lines (and a moment for any extra one).
fn wait_lines(s: &Server, decorated: bool, n: usize) -> Vec<String> {
    let deadline = Instant::now() + WAIT;
    while output_lines(s, decorated).len() < n && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(300));
    output_lines(s, decorated)
}

/// A line without what differs between runs: the time and the pid.
fn normalized(line: &str) -> String {
    let line = match line.strip_prefix('[') {
        Some(rest) if line.contains("] WARNING: ") => {
            rest.split_once("] ").map_or(rest, |(_, r)| r).to_string()
        }
        _ => line.to_string(),
    };
    match line.split_once(" child ") {
        Some((head, tail)) => {
            let rest = tail.trim_start_matches(|c: char| c.is_ascii_digit());
            format!("{head} child N{rest}")
        }
        None => line,
    }
}

/// What a decorated line said, between its quotes.
fn said(line: &str) -> &str {
    let open = line.find(": \"").expect("a decorated line") + 3;
    let close = line.rfind('"').expect("a closing quote");
    &line[open..close]
}

/// Runs `requests` (each a list of writes) on one server and returns the
/// normalized output lines once `n` of them are logged, server still up.
fn scenario(
    kind: Kind,
    conf: &str,
    decorated: bool,
    requests: &[&[&str]],
    n: usize,
) -> (Vec<String>, Vec<String>) {
    let s = Server::start(kind, conf, None, &[]);
    for writes in requests {
        assert_eq!(s.get("output.php", &query(writes)).body, "written\n");
    }
    let raw = wait_lines(&s, decorated, n);
    let norm = raw.iter().map(|l| normalized(l)).collect();
    (raw, norm)
}

/// Runs the scenario on corral, checks it with `check`, and on php-fpm8.2
/// when it is installed, whose lines must be the same.
fn side_by_side(
    conf: &str,
    decorated: bool,
    requests: &[&[&str]],
    n: usize,
    check: impl Fn(&[String]),
) {
    let (raw, ours) = scenario(Kind::Corral, conf, decorated, requests, n);
    check(&raw);
    if require_php_fpm().is_some() {
        let (_, theirs) = scenario(Kind::PhpFpm, conf, decorated, requests, n);
        assert_eq!(
            ours, theirs,
            "corral's lines (left) must be php-fpm's (right)"
        );
    }
}

#[test]
fn decorated_output_longer_than_log_limit_continues_on_further_lines() {
    let conf = conf("log_limit = 1050", "");
    side_by_side(&conf, true, &[&["stderr:2900:a:%0A"]], 3, |lines| {
        assert_eq!(lines.len(), 3, "{lines:#?}");
        for l in &lines[..2] {
            // 1050 with its newline, the harness strips that.
            assert_eq!(l.len(), 1049, "a continued line is log_limit long: {l}");
        }
        let all: String = lines.iter().map(|l| said(l)).collect();
        assert_eq!(all, "a".repeat(2900), "nothing is cut");
    });
}

#[test]
fn undecorated_output_honours_log_limit() {
    let conf = conf("log_limit = 1500", "decorate_workers_output = no");
    side_by_side(&conf, false, &[&["stderr:3300:a:%0A"]], 3, |lines| {
        let lens: Vec<usize> = lines.iter().map(String::len).collect();
        assert_eq!(lens, [1499, 1499, 302], "{lines:#?}");
    });
}

#[test]
fn undecorated_output_splits_at_php_fpms_default_size() {
    let conf = conf("", "decorate_workers_output = no");
    let request: &[&str] = &["stderr:300:x", "stderr:1800:y:%0A"];
    side_by_side(&conf, false, &[request], 3, |lines| {
        let expected = [
            format!("{}{}", "x".repeat(300), "y".repeat(723)),
            "y".repeat(1023),
            "y".repeat(54),
        ];
        assert_eq!(lines, expected);
    });
}

#[test]
fn the_flush_marker_ends_a_line_and_is_not_logged() {
    let conf = conf("", "decorate_workers_output = no");
    let request: &[&str] = &["stderr:1000:z:%00fscf%00", "stderr:1:after"];
    side_by_side(&conf, false, &[request], 2, |lines| {
        assert_eq!(lines, ["z".repeat(1000), "after".to_string()]);
    });
}

#[test]
fn output_without_a_newline_is_logged_at_the_end_of_its_request() {
    let conf = conf("", "");
    let request: &[&str] = &["stderr:1:msg 1 - ", "stderr:1:msg 2"];
    side_by_side(&conf, true, &[request, request], 2, |lines| {
        assert_eq!(
            lines.len(),
            2,
            "one line per request, while running: {lines:#?}"
        );
        for l in lines {
            assert_eq!(said(l), "msg 1 - msg 2", "{l}");
        }
    });
}

#[test]
fn output_on_the_other_pipe_ends_the_line() {
    let conf = conf("", "");
    let request: &[&str] = &["stdout:1:one - ", "stderr:1:two"];
    side_by_side(&conf, true, &[request], 2, |lines| {
        assert_eq!(lines.len(), 2, "{lines:#?}");
        assert!(
            lines[0].ends_with("said into stdout: \"one - \""),
            "{}",
            lines[0]
        );
        assert!(
            lines[1].ends_with("said into stderr: \"two\""),
            "{}",
            lines[1]
        );
    });
}
