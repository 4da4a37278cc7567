//! `corral bench`'s command line: the clap definition ([`BenchArgs`], which
//! the corral binary embeds as a subcommand) and the checks across flags
//! that turn it into [`Options`].

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use thiserror::Error;

use crate::target::{Target, TargetError};

/// `corral bench`: FastCGI load generator.
///
/// Sends the same request over and over, straight to a FastCGI socket (no
/// web server in between), and reports throughput, HDR latency percentiles
/// and errors. Exit status: 0 when requests were answered (errors, if any,
/// are in the report), 1 when none was, 64 on a bad command line.
#[derive(Args, Debug, Clone, Default, PartialEq)]
pub struct BenchArgs {
    /// unix:/path.sock | tcp:HOST:PORT | /path.sock | HOST:PORT | PORT
    #[arg(value_name = "TARGET")]
    pub target_word: Option<String>,
    /// The same as TARGET
    #[arg(
        short = 't',
        long = "target",
        value_name = "ADDR",
        help_heading = "Target"
    )]
    pub target: Option<String>,
    /// Run against a built-in trivial responder (200 "Hello") on a temporary Unix socket, to show what the generator itself can drive
    #[arg(long, help_heading = "Target")]
    pub self_test: bool,
    /// SCRIPT_FILENAME (absolute); the other CGI params are derived from it the way nginx's fastcgi_params does
    #[arg(short = 's', long, value_name = "PATH", help_heading = "Request")]
    pub script: Option<String>,
    /// Set a FastCGI param (repeatable; overrides derived ones)
    #[arg(short = 'p', long = "param", value_name = "NAME=VALUE", value_parser = param, help_heading = "Request")]
    pub params: Vec<(String, String)>,
    /// REQUEST_METHOD [default: GET]
    #[arg(short = 'm', long, value_name = "METHOD", help_heading = "Request")]
    pub method: Option<String>,
    /// QUERY_STRING
    #[arg(short = 'q', long, value_name = "STRING", help_heading = "Request")]
    pub query: Option<String>,
    /// Request body (sets CONTENT_LENGTH)
    #[arg(long, value_name = "STRING", help_heading = "Request")]
    pub body: Option<String>,
    /// Request body read from a file
    #[arg(long, value_name = "PATH", help_heading = "Request")]
    pub body_file: Option<PathBuf>,
    /// CONTENT_TYPE of the body [default: application/x-www-form-urlencoded]
    #[arg(long, value_name = "TYPE", help_heading = "Request")]
    pub content_type: Option<String>,
    /// Connections, one thread each
    #[arg(short = 'c', long, value_name = "N", default_value_t = 8, value_parser = count_usize, help_heading = "Load")]
    pub concurrency: usize,
    /// Measure for DUR, e.g. 500ms, 10s, 2m [default: 10s]
    #[arg(short = 'd', long, value_name = "DUR", value_parser = duration, help_heading = "Load")]
    pub duration: Option<Duration>,
    /// Measure exactly N requests instead of a duration
    #[arg(short = 'n', long, value_name = "N", value_parser = count, help_heading = "Load")]
    pub requests: Option<u64>,
    /// Run this long first without recording
    #[arg(short = 'w', long, value_name = "DUR", value_parser = duration, default_value = "0s", help_heading = "Load")]
    pub warmup: Duration,
    /// Set FCGI_KEEP_CONN and reuse connections [default: off, like nginx without fastcgi_keep_conn]
    #[arg(short = 'k', long = "keep-conn", value_name = "on|off", num_args = 0..=1, require_equals = true,
          default_missing_value = "on", value_parser = on_off, overrides_with = "no_keep_conn", help_heading = "Load")]
    pub keep_conn: Option<bool>,
    /// The same as --keep-conn=off
    #[arg(long, overrides_with = "keep_conn", help_heading = "Load")]
    pub no_keep_conn: bool,
    /// Open loop: N requests/s in total on a fixed schedule; latency counts from the scheduled send time, so server stalls are not hidden
    #[arg(short = 'r', long, value_name = "N", value_parser = rate, help_heading = "Load")]
    pub rate: Option<f64>,
    /// Per-read/write and connect timeout
    #[arg(long, value_name = "DUR", value_parser = timeout, default_value = "10s", help_heading = "Load")]
    pub timeout: Duration,
    #[command(flatten)]
    pub out: corral_cli::JsonArg,
}

/// A malformed command line.
#[derive(Debug, Error)]
pub enum ArgsError {
    #[error("bad target: {0}")]
    Target(#[from] TargetError),
    #[error("more than one target given ({0:?})")]
    ExtraTarget(String),
    #[error("no target given (use --target, or --self-test)")]
    NoTarget,
    #[error("no script given (use --script /abs/path.php)")]
    NoScript,
    #[error("--duration and --requests are mutually exclusive")]
    DurationAndCount,
    #[error("--body and --body-file are mutually exclusive")]
    TwoBodies,
    #[error("--self-test brings its own target; do not pass one")]
    SelfTestTarget,
}

/// Where the request body comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    Inline(String),
    File(PathBuf),
}

/// When the measured phase ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunLength {
    Duration(Duration),
    Requests(u64),
}

/// Everything the command line can set.
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    /// `None` only with `--self-test`.
    pub target: Option<Target>,
    pub self_test: bool,
    /// `None` only with `--self-test` (the responder ignores it).
    pub script: Option<String>,
    pub params: Vec<(String, String)>,
    pub method: Option<String>,
    pub query: Option<String>,
    pub body: Option<Body>,
    pub content_type: Option<String>,
    pub concurrency: usize,
    pub length: RunLength,
    pub warmup: Duration,
    pub keep_conn: bool,
    pub rate: Option<f64>,
    pub timeout: Duration,
    pub json: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            target: None,
            self_test: false,
            script: None,
            params: Vec::new(),
            method: None,
            query: None,
            body: None,
            content_type: None,
            concurrency: 8,
            length: RunLength::Duration(Duration::from_secs(10)),
            warmup: Duration::ZERO,
            keep_conn: false,
            rate: None,
            timeout: Duration::from_secs(10),
            json: false,
        }
    }
}

impl BenchArgs {
    /// The run these flags describe, after the checks clap cannot make.
    pub fn options(&self) -> Result<Options, ArgsError> {
        let mut o = Options {
            self_test: self.self_test,
            script: self.script.clone(),
            params: self.params.clone(),
            method: self.method.clone(),
            query: self.query.clone(),
            content_type: self.content_type.clone(),
            concurrency: self.concurrency,
            warmup: self.warmup,
            keep_conn: self.keep_conn.unwrap_or(false) && !self.no_keep_conn,
            rate: self.rate,
            timeout: self.timeout,
            json: self.out.json,
            ..Options::default()
        };
        o.target = match (&self.target, &self.target_word) {
            (Some(_), Some(extra)) => return Err(ArgsError::ExtraTarget(extra.clone())),
            (Some(t), None) | (None, Some(t)) => Some(Target::parse(t)?),
            (None, None) => None,
        };
        o.length = match (self.duration, self.requests) {
            (Some(_), Some(_)) => return Err(ArgsError::DurationAndCount),
            (Some(d), None) => RunLength::Duration(d),
            (None, Some(n)) => RunLength::Requests(n),
            (None, None) => o.length,
        };
        o.body = match (&self.body, &self.body_file) {
            (Some(_), Some(_)) => return Err(ArgsError::TwoBodies),
            (Some(b), None) => Some(Body::Inline(b.clone())),
            (None, Some(f)) => Some(Body::File(f.clone())),
            (None, None) => None,
        };
        if o.self_test {
            if o.target.is_some() {
                return Err(ArgsError::SelfTestTarget);
            }
        } else {
            if o.target.is_none() {
                return Err(ArgsError::NoTarget);
            }
            if o.script.is_none() {
                return Err(ArgsError::NoScript);
            }
        }
        Ok(o)
    }
}

fn param(v: &str) -> Result<(String, String), String> {
    let (n, val) = v.split_once('=').ok_or("expected NAME=VALUE")?;
    if n.is_empty() {
        return Err("empty NAME".into());
    }
    Ok((n.to_string(), val.to_string()))
}

fn count(v: &str) -> Result<u64, String> {
    match v.parse::<u64>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(n) => Ok(n),
        Err(_) => Err("not a positive integer".into()),
    }
}

fn count_usize(v: &str) -> Result<usize, String> {
    count(v)?.try_into().map_err(|_| "too large".into())
}

fn duration(v: &str) -> Result<Duration, String> {
    parse_duration(v).map_err(str::to_string)
}

fn timeout(v: &str) -> Result<Duration, String> {
    match duration(v)? {
        d if d.is_zero() => Err("must be > 0".into()),
        d => Ok(d),
    }
}

fn rate(v: &str) -> Result<f64, String> {
    let rate: f64 = v.parse().map_err(|_| "not a number")?;
    if !(rate.is_finite() && rate > 0.0) {
        return Err("must be > 0".into());
    }
    Ok(rate)
}

fn on_off(v: &str) -> Result<bool, String> {
    match v {
        "on" | "yes" | "true" | "1" => Ok(true),
        "off" | "no" | "false" | "0" => Ok(false),
        _ => Err("expected on or off".into()),
    }
}

/// `500ms`, `10s`, `1.5s`, `2m`, `1h`, or a bare number of seconds.
pub fn parse_duration(v: &str) -> Result<Duration, &'static str> {
    let split = v
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(v.len());
    let (num, unit) = v.split_at(split);
    let num: f64 = num
        .parse()
        .map_err(|_| "expected a number with ms, s, m or h")?;
    let scale = match unit {
        "ms" => 0.001,
        "" | "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        _ => return Err("unknown unit (use ms, s, m or h)"),
    };
    Duration::try_from_secs_f64(num * scale).map_err(|_| "out of range")
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser, Debug)]
    struct T {
        #[command(flatten)]
        bench: BenchArgs,
    }

    fn parse(list: &[&str]) -> Result<Options, String> {
        let mut all = vec!["bench"];
        all.extend_from_slice(list);
        let t = T::try_parse_from(all).map_err(|e| format!("clap: {:?}", e.kind()))?;
        t.bench.options().map_err(|e| e.to_string())
    }

    fn run(list: &[&str]) -> Options {
        parse(list).unwrap()
    }

    fn clap_kind(list: &[&str]) -> clap::error::ErrorKind {
        let mut all = vec!["bench"];
        all.extend_from_slice(list);
        T::try_parse_from(all).unwrap_err().kind()
    }

    #[test]
    fn full_command_line() {
        let o = run(&[
            "--target=unix:/run/a.sock",
            "-s",
            "/srv/i.php",
            "-p",
            "A=1",
            "--param=B=x=y",
            "-mPOST",
            "--body",
            "k=v",
            "--content-type",
            "text/plain",
            "-c",
            "4",
            "-n",
            "1000",
            "-w",
            "500ms",
            "-k",
            "-r",
            "2500.5",
            "--timeout",
            "2s",
            "--json",
        ]);
        assert_eq!(o.target, Some(Target::Unix("/run/a.sock".into())));
        assert_eq!(o.script.as_deref(), Some("/srv/i.php"));
        assert_eq!(
            o.params,
            [("A".into(), "1".into()), ("B".into(), "x=y".into())]
        );
        assert_eq!(o.method.as_deref(), Some("POST"));
        assert_eq!(o.body, Some(Body::Inline("k=v".into())));
        assert_eq!(o.concurrency, 4);
        assert_eq!(o.length, RunLength::Requests(1000));
        assert_eq!(o.warmup, Duration::from_millis(500));
        assert!(o.keep_conn && o.json);
        assert_eq!(o.rate, Some(2500.5));
        assert_eq!(o.timeout, Duration::from_secs(2));
    }

    #[test]
    fn defaults_and_bare_target() {
        let o = run(&["/run/a.sock", "-s", "/i.php"]);
        assert_eq!(o.target, Some(Target::Unix("/run/a.sock".into())));
        assert_eq!(o.length, RunLength::Duration(Duration::from_secs(10)));
        assert_eq!(o.concurrency, 8);
        assert!(!o.keep_conn && !o.json && o.rate.is_none());
        let o = run(&[
            "127.0.0.1:9000",
            "-s",
            "/i.php",
            "--keep-conn=off",
            "-d",
            "3",
        ]);
        assert!(!o.keep_conn);
        assert_eq!(o.length, RunLength::Duration(Duration::from_secs(3)));
        assert!(!run(&["/a.sock", "-s", "/i", "-k", "--no-keep-conn"]).keep_conn);
        assert!(run(&["/a.sock", "-s", "/i", "--no-keep-conn", "-k"]).keep_conn);
    }

    #[test]
    fn self_test_needs_no_target_or_script() {
        let o = run(&["--self-test", "-c", "2"]);
        assert!(o.self_test && o.target.is_none() && o.script.is_none());
    }

    #[test]
    fn errors() {
        use clap::error::ErrorKind;
        let e = |list: &[&str]| parse(list).unwrap_err();
        assert_eq!(e(&["-s", "/i.php"]), ArgsError::NoTarget.to_string());
        assert_eq!(e(&["/a.sock"]), ArgsError::NoScript.to_string());
        assert_eq!(
            clap_kind(&["/a.sock", "--frob"]),
            ErrorKind::UnknownArgument
        );
        assert_eq!(clap_kind(&["/a.sock", "-c"]), ErrorKind::InvalidValue);
        assert_eq!(
            clap_kind(&["/a.sock", "-c", "0"]),
            ErrorKind::ValueValidation
        );
        assert_eq!(
            clap_kind(&["/a.sock", "-p", "novalue"]),
            ErrorKind::ValueValidation
        );
        assert_eq!(
            clap_kind(&["/a.sock", "-r", "-5"]),
            ErrorKind::UnknownArgument
        );
        assert_eq!(
            clap_kind(&["/a.sock", "-r", "0"]),
            ErrorKind::ValueValidation
        );
        assert_eq!(
            clap_kind(&["/a.sock", "--json=1"]),
            ErrorKind::TooManyValues
        );
        assert_eq!(
            clap_kind(&["/a.sock", "/b.sock"]),
            ErrorKind::UnknownArgument
        );
        assert!(e(&["/a.sock", "-t", "/b.sock", "-s", "/i"]).contains("more than one target"));
        assert_eq!(
            e(&["/a.sock", "-s", "/i", "-n", "5", "-d", "1s"]),
            ArgsError::DurationAndCount.to_string()
        );
        assert_eq!(
            e(&["/a.sock", "-s", "/i", "--body", "x", "--body-file", "/f"]),
            ArgsError::TwoBodies.to_string()
        );
        assert_eq!(
            e(&["--self-test", "/a.sock"]),
            ArgsError::SelfTestTarget.to_string()
        );
        assert_eq!(clap_kind(&["-h"]), ErrorKind::DisplayHelp);
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("7"), Ok(Duration::from_secs(7)));
        assert!(parse_duration("10x").is_err());
        assert!(parse_duration("s").is_err());
    }
}
