//! `corral top` in a real terminal: tmux runs it at 160x40, `send-keys`
//! types, `capture-pane` reads the screen. Both pools show, a sort key
//! changes the order, and `q` quits.

mod common;
mod operator_support;

use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use common::*;
use operator_support::*;

/// A tmux server of our own (`-L`), killed on drop.
struct Tmux {
    bin: std::path::PathBuf,
    socket: String,
}

impl Tmux {
    fn run(&self, args: &[&str]) -> std::process::Output {
        Command::new(&self.bin)
            .arg("-L")
            .arg(&self.socket)
            .args(args)
            .output()
            .expect("run tmux")
    }

    fn screen(&self) -> String {
        String::from_utf8_lossy(&self.run(&["capture-pane", "-p", "-t", "top"]).stdout).into_owned()
    }

    fn alive(&self) -> bool {
        self.run(&["has-session", "-t", "top"]).status.success()
    }

    /// Wait for a screen `ok` accepts.
    fn until(&self, what: &str, ok: impl Fn(&str) -> bool) -> String {
        eventually(Duration::from_secs(30), what, || {
            let s = self.screen();
            ok(&s).then_some(s)
        })
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.run(&["kill-server"]);
    }
}

/// Where each pool's line is on the screen.
fn line_of(screen: &str, pool: &str) -> Option<usize> {
    screen
        .lines()
        .position(|l| l.trim_start_matches('│').split_whitespace().next() == Some(pool))
}

fn order(screen: &str) -> Option<(usize, usize)> {
    Some((line_of(screen, "alpha")?, line_of(screen, "beta")?))
}

#[test]
fn top_shows_both_pools_sorts_by_key_and_quits() {
    if !require_root() {
        return;
    }
    let Some(bin) = require_bin("tmux") else {
        return;
    };
    let m = Metered::start();
    m.traffic(0, 1, 0);
    // Only beta is busy: sorted by req/s it comes first.
    let stop = Arc::new(AtomicBool::new(false));
    let listens = m.server.listens.clone();
    let www = m.server.www().to_path_buf();
    let flag = stop.clone();
    let load = thread::spawn(move || {
        let until = Instant::now() + Duration::from_secs(90);
        while !flag.load(Ordering::SeqCst) && Instant::now() < until {
            let req = Request::php(&www.join("pid.php").display().to_string())
                .document_root(&www.display().to_string())
                .query("sleep_ms=5");
            let _ = request_on(&listens[1], &req);
        }
    });

    let tmux = Tmux {
        bin,
        socket: format!("corral-top-test-{}", std::process::id()),
    };
    let command = format!(
        "{} top --control-socket {}",
        corral_bin().display(),
        m.server.control_socket().display()
    );
    let out = tmux.run(&[
        "new-session",
        "-d",
        "-s",
        "top",
        "-x",
        "160",
        "-y",
        "40",
        &command,
    ]);
    assert!(out.status.success(), "{out:?}");

    let first = tmux.until("both pools, by name", |s| {
        s.contains("sorted by name") && order(s).is_some_and(|(a, b)| a < b)
    });
    assert!(
        first.contains("corral top") && first.contains("q quit"),
        "{first}"
    );

    tmux.run(&["send-keys", "-t", "top", "r"]);
    let by_rate = tmux.until("beta above alpha, by req/s", |s| {
        s.contains("sorted by req/s") && order(s).is_some_and(|(a, b)| b < a)
    });
    println!("sorted by req/s:\n{by_rate}");

    tmux.run(&["send-keys", "-t", "top", "n"]);
    tmux.until("alpha above beta again, by name", |s| {
        s.contains("sorted by name") && order(s).is_some_and(|(a, b)| a < b)
    });

    tmux.run(&["send-keys", "-t", "top", "q"]);
    eventually(Duration::from_secs(10), "corral top to quit on q", || {
        (!tmux.alive()).then_some(())
    });
    stop.store(true, Ordering::SeqCst);
    let _ = load.join();
}

#[test]
fn top_without_a_terminal_says_what_to_use_instead() {
    if !require_root() {
        return;
    }
    let m = Metered::start();
    let out = m.server.control(&["top"]);
    assert_eq!(out.code, Some(64), "{}", out.all());
    assert!(
        out.stderr.contains("corral metrics --json"),
        "{}",
        out.all()
    );
}
