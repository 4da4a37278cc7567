//! Reading the php-fpm 8.2.36 fixtures back into `PoolStatus` /
//! `ProcStatus`, so a test can render the same values and compare bytes.
//!
//! The fixtures are raw `cgi-fcgi` responses captured from a real
//! php-fpm 8.2.36 pool (see `fixtures/README.md`).

#![allow(dead_code)]

use std::collections::HashMap;
use std::path::PathBuf;

use corral_status::render::{render, Format, PoolStatus, ProcStatus, Rendered};

/// Makes the process's local time zone `tz` before anything is rendered.
pub fn set_tz(tz: &str) {
    std::env::set_var("TZ", tz);
}

pub fn fixture(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A CGI response split into its headers (in order) and its body.
pub struct Response {
    pub headers: Vec<(String, String)>,
    pub body: String,
}

pub fn response(name: &str) -> Response {
    let raw = fixture(name);
    let text = String::from_utf8(raw).expect("fixture is UTF-8");
    let (head, body) = text.split_once("\r\n\r\n").expect("header/body separator");
    let headers = head
        .split("\r\n")
        .map(|l| {
            let (n, v) = l.split_once(": ").expect("header line");
            (n.to_owned(), v.to_owned())
        })
        .collect();
    Response {
        headers,
        body: body.to_owned(),
    }
}

fn parse_local_time(s: &str) -> i64 {
    chrono::DateTime::parse_from_str(s, "%d/%b/%Y:%H:%M:%S %z")
        .unwrap_or_else(|e| panic!("time {s:?}: {e}"))
        .timestamp()
}

/// `-` is how php-fpm shows an empty method, user or script.
fn undash(s: &str) -> String {
    if s == "-" {
        String::new()
    } else {
        s.to_owned()
    }
}

pub fn unescape_html(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&amp;", "&")
}

/// Pool fields keyed by their label with spaces (`accepted conn`).
fn pool_from_map(m: &HashMap<String, String>, time: impl Fn(&str) -> i64) -> PoolStatus {
    let n = |k: &str| -> u64 {
        m.get(k)
            .unwrap_or_else(|| panic!("missing {k}"))
            .parse()
            .unwrap_or_else(|e| panic!("{k}: {e}"))
    };
    PoolStatus {
        pool: m["pool"].clone(),
        process_manager: m["process manager"].clone(),
        start_time: time(&m["start time"]),
        start_since: n("start since"),
        accepted_conn: n("accepted conn"),
        listen_queue: n("listen queue"),
        max_listen_queue: n("max listen queue"),
        listen_queue_len: n("listen queue len"),
        idle_processes: n("idle processes"),
        active_processes: n("active processes"),
        total_processes: n("total processes"),
        max_active_processes: n("max active processes"),
        max_children_reached: n("max children reached"),
        slow_requests: n("slow requests"),
    }
}

/// Process fields keyed by their label with spaces, lower case.
fn proc_from_map(m: &HashMap<String, String>, time: impl Fn(&str) -> i64) -> ProcStatus {
    let n = |k: &str| -> u64 {
        m.get(k)
            .unwrap_or_else(|| panic!("missing {k}"))
            .parse()
            .unwrap_or_else(|e| panic!("{k}: {e}"))
    };
    ProcStatus {
        pid: n("pid") as u32,
        state: m["state"].clone(),
        start_time: time(&m["start time"]),
        start_since: n("start since"),
        requests: n("requests"),
        request_duration: n("request duration"),
        request_method: undash(&m["request method"]),
        request_uri: m["request uri"].clone(),
        content_length: n("content length"),
        user: undash(&m["user"]),
        script: undash(&m["script"]),
        last_request_cpu: m["last request cpu"].parse().unwrap(),
        last_request_memory: n("last request memory"),
    }
}

pub fn parse_text(body: &str) -> (PoolStatus, Vec<ProcStatus>) {
    let mut blocks = body.split("\n************************\n");
    let fields = |block: &str| -> HashMap<String, String> {
        block
            .lines()
            .filter(|l| !l.is_empty())
            .map(|l| {
                // Labels are padded so that every value starts at column 22.
                let (label, value) = l.split_at(22);
                let label = label.trim_end().trim_end_matches(':').to_lowercase();
                (label, value.to_owned())
            })
            .collect()
    };
    let pool = pool_from_map(&fields(blocks.next().unwrap()), parse_local_time);
    let procs = blocks
        .map(|b| proc_from_map(&fields(b), parse_local_time))
        .collect();
    (pool, procs)
}

/// The text between each `<tag>` and `</tag>`, in order.
fn tags(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = s;
    while let Some(open) = rest.find('<') {
        let after = &rest[open + 1..];
        let end = after.find('>').unwrap();
        let tag = &after[..end];
        let inner = &after[end + 1..];
        let close = format!("</{tag}>");
        match inner.find(&close) {
            Some(c)
                if !tag.starts_with('/') && !tag.starts_with('?') && !inner[..c].contains('<') =>
            {
                out.push((tag.to_owned(), unescape_html(&inner[..c])));
                rest = &inner[c + close.len()..];
            }
            _ => rest = inner,
        }
    }
    out
}

fn dashes_to_spaces(v: Vec<(String, String)>) -> HashMap<String, String> {
    v.into_iter()
        .map(|(k, v)| (k.replace('-', " "), v))
        .collect()
}

fn epoch(s: &str) -> i64 {
    s.parse().unwrap()
}

pub fn parse_xml(body: &str) -> (PoolStatus, Vec<ProcStatus>) {
    let (head, procs) = body.split_once("<processes>\n").unwrap_or((body, ""));
    let pool = pool_from_map(&dashes_to_spaces(tags(head)), epoch);
    let procs = procs
        .lines()
        .filter(|l| l.starts_with("<process>"))
        .map(|l| proc_from_map(&dashes_to_spaces(tags(l)), epoch))
        .collect();
    (pool, procs)
}

pub fn parse_html(body: &str) -> (PoolStatus, Vec<ProcStatus>) {
    let mut pool = HashMap::new();
    let mut header: Vec<String> = Vec::new();
    let mut procs = Vec::new();
    for line in body.lines() {
        if let Some(row) = line.strip_prefix("<tr><th>") {
            if let Some((label, rest)) = row.split_once("</th><td>") {
                let value = rest.strip_suffix("</td></tr>").unwrap();
                pool.insert(label.to_owned(), unescape_html(value));
            } else {
                header = row
                    .strip_suffix("</th></tr>")
                    .unwrap()
                    .split("</th><th>")
                    .map(str::to_owned)
                    .collect();
            }
        } else if let Some(row) = line.strip_prefix("<tr><td>") {
            let cells = row.strip_suffix("</td></tr>").unwrap().split("</td><td>");
            let m = header
                .iter()
                .cloned()
                .zip(cells.map(unescape_html))
                .collect();
            procs.push(proc_from_map(&m, parse_local_time));
        }
    }
    (pool_from_map(&pool, parse_local_time), procs)
}

pub fn parse_json(body: &str) -> (PoolStatus, Vec<ProcStatus>) {
    let v: serde_json::Value = serde_json::from_str(body).expect("fixture JSON");
    let to_map = |o: &serde_json::Map<String, serde_json::Value>| -> HashMap<String, String> {
        o.iter()
            .map(|(k, v)| {
                let s = match v {
                    serde_json::Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                (k.clone(), s)
            })
            .collect()
    };
    let obj = v.as_object().unwrap();
    let pool = pool_from_map(&to_map(obj), epoch);
    let procs = obj
        .get("processes")
        .and_then(|p| p.as_array())
        .map(|a| {
            a.iter()
                .map(|p| proc_from_map(&to_map(p.as_object().unwrap()), epoch))
                .collect()
        })
        .unwrap_or_default();
    (pool, procs)
}

pub fn parse_openmetrics(body: &str) -> PoolStatus {
    let mut m = HashMap::new();
    for line in body.lines() {
        if let Some(rest) = line.strip_prefix("# HELP phpfpm_up Could pool ") {
            let (pool, rest) = rest.split_once(" using a ").unwrap();
            let pm = rest.strip_suffix(" PM on PHP-FPM be reached?").unwrap();
            m.insert("pool".to_owned(), pool.to_owned());
            m.insert("process manager".to_owned(), pm.to_owned());
        } else if let Some(rest) = line.strip_prefix("phpfpm_") {
            let (name, value) = rest.split_once(' ').unwrap();
            let key = match name {
                "accepted_connections" => "accepted conn".to_owned(),
                "listen_queue_length" => "listen queue len".to_owned(),
                other => other.replace('_', " "),
            };
            m.insert(key, value.to_owned());
        }
    }
    m.insert("start time".to_owned(), "0".to_owned());
    pool_from_map(&m, epoch)
}

pub fn parse(format: Format, body: &str) -> (PoolStatus, Vec<ProcStatus>) {
    match format {
        Format::Text => parse_text(body),
        Format::Json => parse_json(body),
        Format::Xml => parse_xml(body),
        Format::Html => parse_html(body),
        Format::OpenMetrics => (parse_openmetrics(body), Vec::new()),
    }
}

/// Renders the values read from fixture `name` and checks headers and
/// body byte for byte. Returns what was parsed, for further checks.
pub fn check_fixture(name: &str, format: Format, full: bool) -> (PoolStatus, Vec<ProcStatus>) {
    let want = response(name);
    let (pool, procs) = parse(format, &want.body);
    let Rendered { headers, body } = render(&pool, &procs, format, full);
    assert_eq!(headers, want.headers, "{name}: headers");
    if body != want.body {
        for (i, (a, b)) in body.lines().zip(want.body.lines()).enumerate() {
            assert_eq!(a, b, "{name}: first difference at line {}", i + 1);
        }
        assert_eq!(body, want.body, "{name}: body");
    }
    (pool, procs)
}
