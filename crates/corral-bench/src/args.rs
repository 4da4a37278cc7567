//! Command-line parsing for `corral bench`. Hand-written (no clap) to keep the
//! corral binary's dependency tree small; the grammar is flat enough.

use std::path::PathBuf;
use std::time::Duration;

use thiserror::Error;

use crate::target::{Target, TargetError};

/// The help text.
pub const USAGE: &str = "\
usage: corral bench [OPTIONS] [TARGET]
       corral bench --self-test [OPTIONS]

FastCGI load generator: sends the same request over and over and reports
throughput, latency percentiles (HDR histogram) and errors.

Target:
  -t, --target ADDR       unix:/path.sock | tcp:HOST:PORT | /path.sock | HOST:PORT | PORT
      --self-test         start a built-in trivial responder (200 \"Hello\") on a
                          temporary Unix socket and run against it, to show what
                          the generator itself can drive
Request:
  -s, --script PATH       SCRIPT_FILENAME (absolute); the other CGI params are
                          derived from it the way nginx's fastcgi_params does
  -p, --param NAME=VALUE  set a FastCGI param (repeatable; overrides derived ones)
  -m, --method METHOD     REQUEST_METHOD (default GET)
  -q, --query STRING      QUERY_STRING
      --body STRING       request body (sets CONTENT_LENGTH)
      --body-file PATH    request body read from a file
      --content-type TYPE CONTENT_TYPE of the body
                          (default application/x-www-form-urlencoded)
Load:
  -c, --concurrency N     connections, one thread each (default 8)
  -d, --duration DUR      measure for DUR, e.g. 500ms, 10s, 2m (default 10s)
  -n, --requests N        measure exactly N requests instead of a duration
  -w, --warmup DUR        run this long first without recording (default 0)
  -k, --keep-conn[=on|off]
                          set FCGI_KEEP_CONN and reuse connections (default off,
                          like nginx without fastcgi_keep_conn); --no-keep-conn
  -r, --rate N            open loop: N requests/s in total on a fixed schedule;
                          latency counts from the scheduled send time, so server
                          stalls are not hidden (coordinated omission)
      --timeout DUR       per-read/write and connect timeout (default 10s)
Output:
      --json              print one JSON object instead of the text report
  -h, --help              this text

Exit status: 0 when the run completed (even with errors; see the report),
64 on a usage error, 1 when the run could not start.
";

/// A malformed command line.
#[derive(Debug, Error)]
pub enum ArgsError {
    #[error("unknown option {0:?}")]
    UnknownOption(String),
    #[error("option {0} needs a value")]
    MissingValue(String),
    #[error("option {0} takes no value")]
    UnexpectedValue(String),
    #[error("invalid value {value:?} for {option}: {why}")]
    BadValue {
        option: String,
        value: String,
        why: String,
    },
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

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    Help,
    Run(Box<Options>),
}

/// Parses the arguments after `bench` (no program name).
pub fn parse(args: &[String]) -> Result<Command, ArgsError> {
    let mut o = Options::default();
    let mut duration = None;
    let mut requests = None;
    let mut inline_body = None;
    let mut body_file = None;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        if arg == "--" {
            for rest in it.by_ref() {
                set_target(&mut o, rest)?;
            }
            break;
        }
        if !arg.starts_with('-') || arg == "-" {
            set_target(&mut o, arg)?;
            continue;
        }
        let (name, attached) = split_option(arg);
        let mut value = |what: &str| -> Result<String, ArgsError> {
            match &attached {
                Some(v) => Ok(v.clone()),
                None => it
                    .next()
                    .cloned()
                    .ok_or_else(|| ArgsError::MissingValue(what.to_string())),
            }
        };
        let flag = |attached: &Option<String>| match attached {
            Some(_) => Err(ArgsError::UnexpectedValue(name.to_string())),
            None => Ok(()),
        };
        match name {
            "-h" | "--help" => return Ok(Command::Help),
            "-t" | "--target" => {
                let v = value(name)?;
                set_target(&mut o, &v)?
            }
            "--self-test" => {
                flag(&attached)?;
                o.self_test = true
            }
            "-s" | "--script" => o.script = Some(value(name)?),
            "-p" | "--param" => {
                let v = value(name)?;
                let (n, val) = v
                    .split_once('=')
                    .ok_or_else(|| bad(name, &v, "expected NAME=VALUE"))?;
                if n.is_empty() {
                    return Err(bad(name, &v, "empty NAME"));
                }
                o.params.push((n.to_string(), val.to_string()));
            }
            "-m" | "--method" => o.method = Some(value(name)?),
            "-q" | "--query" => o.query = Some(value(name)?),
            "--body" => inline_body = Some(value(name)?),
            "--body-file" => body_file = Some(PathBuf::from(value(name)?)),
            "--content-type" => o.content_type = Some(value(name)?),
            "-c" | "--concurrency" => {
                let v = value(name)?;
                o.concurrency = parse_count(name, &v)?
                    .try_into()
                    .map_err(|_| bad(name, &v, "too large"))?;
            }
            "-d" | "--duration" => {
                let v = value(name)?;
                duration = Some(parse_duration(&v).map_err(|why| bad(name, &v, why))?);
            }
            "-n" | "--requests" => {
                let v = value(name)?;
                requests = Some(parse_count(name, &v)?);
            }
            "-w" | "--warmup" => {
                let v = value(name)?;
                o.warmup = parse_duration(&v).map_err(|why| bad(name, &v, why))?;
            }
            "-k" | "--keep-conn" => {
                o.keep_conn = match attached.as_deref() {
                    None | Some("on" | "yes" | "true" | "1") => true,
                    Some("off" | "no" | "false" | "0") => false,
                    Some(v) => return Err(bad(name, v, "expected on or off")),
                }
            }
            "--no-keep-conn" => {
                flag(&attached)?;
                o.keep_conn = false
            }
            "-r" | "--rate" => {
                let v = value(name)?;
                let rate: f64 = v.parse().map_err(|_| bad(name, &v, "not a number"))?;
                if !(rate.is_finite() && rate > 0.0) {
                    return Err(bad(name, &v, "must be > 0"));
                }
                o.rate = Some(rate);
            }
            "--timeout" => {
                let v = value(name)?;
                o.timeout = parse_duration(&v).map_err(|why| bad(name, &v, why))?;
                if o.timeout.is_zero() {
                    return Err(bad(name, &v, "must be > 0"));
                }
            }
            "--json" => {
                flag(&attached)?;
                o.json = true
            }
            _ => return Err(ArgsError::UnknownOption(arg.clone())),
        }
    }
    o.length = match (duration, requests) {
        (Some(_), Some(_)) => return Err(ArgsError::DurationAndCount),
        (Some(d), None) => RunLength::Duration(d),
        (None, Some(n)) => RunLength::Requests(n),
        (None, None) => o.length,
    };
    o.body = match (inline_body, body_file) {
        (Some(_), Some(_)) => return Err(ArgsError::TwoBodies),
        (Some(b), None) => Some(Body::Inline(b)),
        (None, Some(f)) => Some(Body::File(f)),
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
    Ok(Command::Run(Box::new(o)))
}

fn set_target(o: &mut Options, spec: &str) -> Result<(), ArgsError> {
    if o.target.is_some() {
        return Err(ArgsError::ExtraTarget(spec.to_string()));
    }
    o.target = Some(Target::parse(spec)?);
    Ok(())
}

/// Splits `--name=value` and `-cVALUE`; long options without `=` and bare
/// short options get `None`.
fn split_option(arg: &str) -> (&str, Option<String>) {
    if arg.starts_with("--") {
        match arg.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (arg, None),
        }
    } else if arg.len() > 2 && arg.is_char_boundary(2) {
        let v = arg[2..].strip_prefix('=').unwrap_or(&arg[2..]);
        (&arg[..2], Some(v.to_string()))
    } else {
        (arg, None)
    }
}

fn bad(option: &str, value: &str, why: impl Into<String>) -> ArgsError {
    ArgsError::BadValue {
        option: option.to_string(),
        value: value.to_string(),
        why: why.into(),
    }
}

fn parse_count(option: &str, v: &str) -> Result<u64, ArgsError> {
    match v.parse::<u64>() {
        Ok(0) => Err(bad(option, v, "must be at least 1")),
        Ok(n) => Ok(n),
        Err(_) => Err(bad(option, v, "not a positive integer")),
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

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    fn run(list: &[&str]) -> Options {
        match parse(&args(list)).unwrap() {
            Command::Run(o) => *o,
            Command::Help => panic!("help"),
        }
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
    }

    #[test]
    fn self_test_needs_no_target_or_script() {
        let o = run(&["--self-test", "-c", "2"]);
        assert!(o.self_test && o.target.is_none() && o.script.is_none());
    }

    #[test]
    fn errors() {
        let e = |list: &[&str]| parse(&args(list)).unwrap_err();
        assert!(matches!(e(&["-s", "/i.php"]), ArgsError::NoTarget));
        assert!(matches!(e(&["/a.sock"]), ArgsError::NoScript));
        assert!(matches!(
            e(&["/a.sock", "--frob"]),
            ArgsError::UnknownOption(_)
        ));
        assert!(matches!(e(&["/a.sock", "-c"]), ArgsError::MissingValue(_)));
        assert!(matches!(
            e(&["/a.sock", "-c", "0"]),
            ArgsError::BadValue { .. }
        ));
        assert!(matches!(
            e(&["/a.sock", "-p", "novalue"]),
            ArgsError::BadValue { .. }
        ));
        assert!(matches!(
            e(&["/a.sock", "-r", "-5"]),
            ArgsError::BadValue { .. }
        ));
        assert!(matches!(
            e(&["/a.sock", "--json=1"]),
            ArgsError::UnexpectedValue(_)
        ));
        assert!(matches!(
            e(&["/a.sock", "/b.sock"]),
            ArgsError::ExtraTarget(_)
        ));
        assert!(matches!(
            e(&["/a.sock", "-s", "/i", "-n", "5", "-d", "1s"]),
            ArgsError::DurationAndCount
        ));
        assert!(matches!(
            e(&["/a.sock", "-s", "/i", "--body", "x", "--body-file", "/f"]),
            ArgsError::TwoBodies
        ));
        assert!(matches!(
            e(&["--self-test", "/a.sock"]),
            ArgsError::SelfTestTarget
        ));
        assert!(matches!(parse(&args(&["-h"])), Ok(Command::Help)));
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
