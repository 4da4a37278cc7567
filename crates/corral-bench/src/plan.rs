//! Turns parsed [`Options`] into a [`Plan`]: the fixed request and the load
//! shape the runner executes. Separate from parsing because it does I/O
//! (`--body-file`) and because library users build plans directly.

use std::io;
use std::path::PathBuf;
use std::time::Duration;

use corral_fastcgi::Request;
use thiserror::Error;

use crate::args::{Body, Options, RunLength};
use crate::conn::REQUEST_ID;
use crate::schedule::Pace;
use crate::target::Target;

/// Default CONTENT_TYPE for a body, what an HTML form posts.
const DEFAULT_CONTENT_TYPE: &str = "application/x-www-form-urlencoded";

/// Why options cannot become a plan.
#[derive(Debug, Error)]
pub enum PlanError {
    #[error("cannot read body file {path}: {source}")]
    BodyFile {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("no target")]
    NoTarget,
}

/// A complete description of one run.
#[derive(Debug, Clone)]
pub struct Plan {
    pub target: Target,
    /// Sent on every connection; its `keep_conn` decides connection reuse.
    pub request: Request,
    /// Connections, one worker thread each.
    pub concurrency: usize,
    /// How long the measured phase lasts.
    pub length: RunLength,
    /// Unrecorded run before the measured phase (same connections).
    pub warmup: Duration,
    pub pace: Pace,
    /// Connect and per-read/write timeout.
    pub timeout: Duration,
}

impl Plan {
    /// A closed-loop plan of `n` requests for `script` on one connection;
    /// adjust the public fields from there.
    pub fn new(target: Target, script: &str, n: u64) -> Self {
        Plan {
            target,
            request: Request::php(script).id(REQUEST_ID),
            concurrency: 1,
            length: RunLength::Requests(n),
            warmup: Duration::ZERO,
            pace: Pace::Closed,
            timeout: Duration::from_secs(10),
        }
    }

    /// Sets FCGI_KEEP_CONN (and so connection reuse).
    pub fn keep_conn(mut self, on: bool) -> Self {
        self.request.keep_conn = on;
        self
    }

    /// Whether connections are reused.
    pub fn keeps_conn(&self) -> bool {
        self.request.keep_conn
    }

    /// Builds the plan the command line describes. `target` replaces
    /// `options.target` (used by `--self-test`).
    pub fn from_options(options: &Options, target: Option<Target>) -> Result<Self, PlanError> {
        let target = target
            .or_else(|| options.target.clone())
            .ok_or(PlanError::NoTarget)?;
        let script = options.script.as_deref().unwrap_or("/index.php");
        let mut request = Request::php(script)
            .id(REQUEST_ID)
            .keep_conn(options.keep_conn);
        if let Some(m) = &options.method {
            request = request.method(m);
        }
        if let Some(q) = &options.query {
            request = request.query(q);
        }
        let body = match &options.body {
            None => None,
            Some(Body::Inline(s)) => Some(s.clone().into_bytes()),
            Some(Body::File(path)) => {
                Some(std::fs::read(path).map_err(|source| PlanError::BodyFile {
                    path: path.clone(),
                    source,
                })?)
            }
        };
        if let Some(body) = body {
            let ct = options
                .content_type
                .as_deref()
                .unwrap_or(DEFAULT_CONTENT_TYPE);
            request = request.body(ct, body);
        } else if let Some(ct) = &options.content_type {
            request = request.param("CONTENT_TYPE", ct);
        }
        // Last, so -p can override anything derived above.
        for (name, value) in &options.params {
            request = request.param(name, value);
        }
        Ok(Plan {
            target,
            request,
            concurrency: options.concurrency,
            length: options.length,
            warmup: options.warmup,
            pace: options.rate.map_or(Pace::Closed, Pace::Rate),
            timeout: options.timeout,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn param<'a>(r: &'a Request, name: &str) -> Option<&'a [u8]> {
        r.params
            .iter()
            .rev()
            .find(|(n, _)| n == name.as_bytes())
            .map(|(_, v)| v.as_slice())
    }

    #[test]
    fn options_shape_the_request() {
        let o = Options {
            target: Some(Target::Unix("/a.sock".into())),
            script: Some("/srv/app/index.php".into()),
            method: Some("POST".into()),
            body: Some(Body::Inline("a=1".into())),
            params: vec![("HTTP_HOST".into(), "example.org".into())],
            keep_conn: true,
            rate: Some(100.0),
            ..Options::default()
        };
        let p = Plan::from_options(&o, None).unwrap();
        let r = &p.request;
        assert_eq!(
            param(r, "SCRIPT_FILENAME"),
            Some(&b"/srv/app/index.php"[..])
        );
        assert_eq!(param(r, "REQUEST_METHOD"), Some(&b"POST"[..]));
        assert_eq!(param(r, "CONTENT_LENGTH"), Some(&b"3"[..]));
        assert_eq!(
            param(r, "CONTENT_TYPE"),
            Some(DEFAULT_CONTENT_TYPE.as_bytes())
        );
        assert_eq!(param(r, "HTTP_HOST"), Some(&b"example.org"[..]));
        assert_eq!(r.stdin, b"a=1");
        assert!(p.keeps_conn());
        assert_eq!(p.pace, Pace::Rate(100.0));
    }

    #[test]
    fn missing_body_file() {
        let o = Options {
            target: Some(Target::Unix("/a.sock".into())),
            body: Some(Body::File("/nonexistent/body".into())),
            ..Options::default()
        };
        assert!(matches!(
            Plan::from_options(&o, None),
            Err(PlanError::BodyFile { .. })
        ));
    }
}
