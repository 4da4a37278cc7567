//! The walk's record: every step with its result, printed as
//! `STEP <name>: ok|FAILED <why>|SKIPPED <why>`, and the Playwright walks
//! run as child processes with a time limit.

use std::fmt;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// What one step came to.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    Ok(String),
    Failed(String),
    /// Gated on something this build does not have; says what.
    Skipped(String),
}

/// The steps of one walk, in order.
pub struct Steps {
    walk: String,
    steps: Vec<(String, Outcome)>,
}

impl Steps {
    pub fn new(walk: &str) -> Steps {
        Steps {
            walk: walk.to_string(),
            steps: Vec::new(),
        }
    }

    /// Records a step and prints it past the test's output capture.
    pub fn record(&mut self, name: &str, o: Outcome) {
        let line = format!("[{}] {}", self.walk, StepLine(name, &o));
        let _ = writeln!(std::io::stderr(), "{line}");
        self.steps.push((name.to_string(), o));
    }

    /// Runs `f` as step `name`; Err becomes FAILED with its text.
    pub fn run<T>(&mut self, name: &str, f: impl FnOnce() -> Result<T, String>) -> Option<T> {
        match f() {
            Ok(v) => {
                self.record(name, Outcome::Ok(String::new()));
                Some(v)
            }
            Err(e) => {
                self.record(name, Outcome::Failed(e));
                None
            }
        }
    }

    /// Takes the `STEP …` lines of a walk's output.
    pub fn take_lines(&mut self, output: &str) {
        for l in output.lines() {
            let Some(rest) = l.strip_prefix("STEP ") else {
                continue;
            };
            let Some((name, result)) = rest.split_once(": ") else {
                continue;
            };
            let o = if let Some(detail) = result.strip_prefix("ok") {
                Outcome::Ok(detail.trim().to_string())
            } else if let Some(why) = result.strip_prefix("SKIPPED") {
                Outcome::Skipped(why.trim().to_string())
            } else {
                Outcome::Failed(result.trim_start_matches("FAILED").trim().to_string())
            };
            self.record(name, o);
        }
    }

    pub fn failed(&self) -> bool {
        self.steps
            .iter()
            .any(|(_, o)| matches!(o, Outcome::Failed(_)))
    }

    /// The whole list, then a panic naming every failed step and why.
    pub fn assert_all_ok(&self, context: &str) {
        let list: String = self
            .steps
            .iter()
            .map(|(n, o)| format!("  {}\n", StepLine(n, o)))
            .collect();
        let _ = writeln!(std::io::stderr(), "walk {}:\n{list}", self.walk);
        let failed: Vec<String> = self
            .steps
            .iter()
            .filter_map(|(n, o)| match o {
                Outcome::Failed(why) => Some(format!("{n}: {why}")),
                _ => None,
            })
            .collect();
        assert!(
            failed.is_empty(),
            "walk {}: failed steps:\n{}\n\nall steps:\n{list}\n{context}",
            self.walk,
            failed.join("\n")
        );
        assert!(!self.steps.is_empty(), "walk {} ran no steps", self.walk);
    }
}

struct StepLine<'a>(&'a str, &'a Outcome);

impl fmt::Display for StepLine<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.1 {
            Outcome::Ok(d) if d.is_empty() => write!(f, "STEP {}: ok", self.0),
            Outcome::Ok(d) => write!(f, "STEP {}: ok {d}", self.0),
            Outcome::Failed(w) => write!(f, "STEP {}: FAILED {w}", self.0),
            Outcome::Skipped(w) => write!(f, "STEP {}: SKIPPED {w}", self.0),
        }
    }
}

/// Output of a finished walk.
pub struct WalkOutput {
    pub text: String,
    pub timed_out: bool,
}

/// Runs `node SCRIPT` in `dir` with `env`, killed (with its process
/// group) after `limit`; stdout and stderr are collected into one text.
pub fn run_node(dir: &Path, script: &str, env: &[(String, String)], limit: Duration) -> WalkOutput {
    use std::os::unix::process::CommandExt;
    let log = dir.join(format!(".{script}.{}.log", std::process::id()));
    let file = std::fs::File::create(&log).expect("walk log");
    let mut child = Command::new("node")
        .arg(script)
        .current_dir(dir)
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(Stdio::null())
        .stdout(file.try_clone().unwrap())
        .stderr(file)
        .process_group(0)
        .spawn()
        .expect("run node");
    let deadline = Instant::now() + limit;
    let mut timed_out = false;
    while matches!(child.try_wait(), Ok(None)) {
        if Instant::now() > deadline {
            timed_out = true;
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{}", child.id())])
                .status();
            let _ = child.kill();
            break;
        }
        thread::sleep(Duration::from_millis(200));
    }
    let _ = child.wait();
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    let _ = std::fs::remove_file(&log);
    WalkOutput { text, timed_out }
}
