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

use std::io;
use std::os::unix::net::UnixListener;
use std::path::PathBuf;

pub use corral_cli::ExitCode;
use corral_cli::{CliError, Reply};
use thiserror::Error;

pub use args::{BenchArgs, Options, RunLength};
pub use plan::{Plan, PlanError};
pub use report::Report;
pub use schedule::Pace;
pub use target::Target;

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

impl BenchArgs {
    /// Runs `corral bench` and prints the report (or the error); the exit
    /// code from corral's table: [`ExitCode::Failure`] when not one request
    /// was answered (every connect refused, say), so a script notices.
    pub fn run(self) -> ExitCode {
        corral_cli::finish("corral bench", self.out.json, self.reply())
    }

    fn reply(&self) -> Result<Reply, CliError> {
        let options = self
            .options()
            .map_err(|e| CliError::usage(format!("{e}; try 'corral bench --help'")))?;
        let report = run_options(&options).map_err(|e| CliError::failure(e.to_string()))?;
        Ok(reply(&report, options.self_test))
    }
}

/// The report as text and JSON; a run in which nothing was answered
/// fails, and says so in both.
pub fn reply(report: &Report, self_test: bool) -> Reply {
    let mut text = report.to_string();
    if self_test {
        text.push_str(&format!(
            "\nself-test: the generator drove {:.0} req/s against the built-in responder",
            report.rps
        ));
    }
    let mut json = serde_json::to_value(report).unwrap_or_default();
    if report.completed > 0 || report.requests == 0 {
        return Reply::new(text, json);
    }
    let why = format!(
        "none of {} requests was answered ({})",
        report.requests,
        report.first_error.as_deref().unwrap_or("no error recorded")
    );
    text.push_str(&format!("\ncorral bench: {why}"));
    json["error"] = why.into();
    json["code"] = ExitCode::Failure.code().into();
    Reply::new(text, json).with_code(ExitCode::Failure)
}
