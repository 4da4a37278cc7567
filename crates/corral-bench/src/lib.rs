//! `corral bench`: a FastCGI load generator.
//!
//! It talks FastCGI directly to a php-fpm/corral pool, with no web server in
//! between, so a benchmark measures the pool and not nginx. Closed loop by
//! default (each connection sends its next request when the previous one is
//! answered); with `--rate` an open loop whose latencies count from each
//! request's scheduled time, so stalls are not hidden.
//!
//! * [`args`]: command line → [`args::Options`].
//! * [`plan`]: options → [`Plan`] (the request bytes and load shape).
//! * [`target`]: Unix/TCP addresses.
//! * [`schedule`]: request tickets, count limits and open-loop slots.
//! * [`conn`]: one connection's request/response exchange.
//! * [`runner`]: worker threads.
//! * [`stats`], [`report`]: counting, percentiles, output.
//! * [`responder`]: a trivial FastCGI server for self-tests.
#![forbid(unsafe_code)]

pub mod args;
pub mod conn;
pub mod plan;
pub mod report;
pub mod responder;
pub mod runner;
pub mod schedule;
pub mod stats;
pub mod target;

use std::io::{self, Write};
use std::os::unix::net::UnixListener;
use std::path::PathBuf;

use thiserror::Error;

pub use args::{Options, RunLength};
pub use plan::{Plan, PlanError};
pub use report::Report;
pub use schedule::Pace;
pub use target::Target;

/// Exit status of a completed run (errors, if any, are in the report).
pub const EXIT_OK: i32 = 0;
/// Exit status when the run could not start.
pub const EXIT_FAILURE: i32 = 1;
/// Exit status for a bad command line (corral's EX_USAGE).
pub const EXIT_USAGE: i32 = 64;

/// Why a run could not start.
#[derive(Debug, Error)]
pub enum BenchError {
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error("self-test: cannot listen on {path}: {source}")]
    SelfTestListen {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// Runs `plan` and summarises it.
pub fn run(plan: &Plan) -> Report {
    Report::new(plan, &runner::run(plan))
}

/// Runs the plan `options` describe; with `--self-test`, against a built-in
/// responder on a temporary Unix socket that is removed afterwards.
pub fn run_options(options: &Options) -> Result<Report, BenchError> {
    if !options.self_test {
        return Ok(run(&Plan::from_options(options, None)?));
    }
    let path = std::env::temp_dir().join(format!("corral-bench-{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let listener = UnixListener::bind(&path).map_err(|source| BenchError::SelfTestListen {
        path: path.clone(),
        source,
    })?;
    // The responder thread is left running (it ends with the process);
    // only the socket file needs cleaning up.
    responder::spawn(listener, responder::Config::default());
    let plan = Plan::from_options(options, Some(Target::Unix(path.clone())));
    let report = plan.map(|p| run(&p));
    let _ = std::fs::remove_file(&path);
    Ok(report?)
}

/// Entry point of `corral bench`: `args` are the arguments after `bench`
/// (no program name). Prints the report (or help, or an error) and returns
/// the process exit status.
pub fn main(args: &[String]) -> i32 {
    let options = match args::parse(args) {
        Ok(args::Command::Help) => {
            out(args::USAGE.trim_end());
            return EXIT_OK;
        }
        Ok(args::Command::Run(options)) => options,
        Err(e) => {
            eprintln!("corral bench: {e}\nTry 'corral bench --help'.");
            return EXIT_USAGE;
        }
    };
    match run_options(&options) {
        Ok(report) if options.json => out(&report.to_json()),
        Ok(report) if options.self_test => out(&format!(
            "{report}\nself-test: the generator drove {:.0} req/s against the built-in responder",
            report.rps
        )),
        Ok(report) => out(&report.to_string()),
        Err(e) => {
            eprintln!("corral bench: {e}");
            return EXIT_FAILURE;
        }
    }
    EXIT_OK
}

/// Prints one block to stdout. A closed pipe (`corral bench ... | head`) is
/// not worth a panic: the run itself succeeded.
fn out(text: &str) {
    let _ = writeln!(io::stdout().lock(), "{text}");
}
