//! The status page (`pm.status_path`) in php-fpm 8.2's five formats, and
//! the data behind PHP's `fpm_get_status()`.
//!
//! Everything here was checked byte for byte against a real php-fpm 8.2.36
//! (fixtures in `tests/fixtures/`). Points worth knowing:
//!
//! * Format keys are matched the way php-fpm's `fpm_php_is_key_in_table()`
//!   does it: a `$_GET` key matches when it is a *prefix* of the name, so
//!   `?x` selects XML, `?j` JSON and `?f` means `full` (observed).
//! * Per-process strings (method, URI, query, user, script) are escaped
//!   for JSON, XML and HTML; the pool name never is (observed: a pool named
//!   `p&<o>o/l\é` is printed raw in every format, even inside JSON).
//! * Text and HTML print times with the local time zone
//!   (`%d/%b/%Y:%H:%M:%S %z`); JSON and XML print Unix seconds.

use std::fmt::Write as _;

/// The output format of the status page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    Text,
    Json,
    Xml,
    Html,
    OpenMetrics,
}

/// PHP's default `max_input_vars`: variables after the 1000th are dropped.
const MAX_INPUT_VARS: usize = 1000;
/// PHP's default `max_input_nesting_level`: deeper variables are dropped.
const MAX_INPUT_NESTING_LEVEL: usize = 64;

/// Chooses the format and `full` from a raw query string.
///
/// php-fpm looks at the keys of `$_GET`, in the order `html`, `xml`,
/// `json`, `openmetrics` (text otherwise); `full` adds the per-process
/// part (openmetrics ignores it). A key matches a name when it is a
/// non-empty prefix of it (`?h`, `?js`, `?fu` all count), case-sensitive.
/// Keys are decoded as PHP does: `+` and `%XX` decoding, cut at NUL,
/// leading spaces dropped, `a[b]` counts as `a`, `.` and ` ` become `_`.
pub fn parse_query(query: &str) -> (Format, bool) {
    let keys = get_keys(query.as_bytes());
    let has = |name: &[u8]| keys.iter().any(|k| name.starts_with(k));
    let format = if has(b"html") {
        Format::Html
    } else if has(b"xml") {
        Format::Xml
    } else if has(b"json") {
        Format::Json
    } else if has(b"openmetrics") {
        Format::OpenMetrics
    } else {
        Format::Text
    };
    (format, has(b"full"))
}

/// The top-level string keys PHP would put in `$_GET` for `query`
/// (duplicates kept; never empty).
fn get_keys(query: &[u8]) -> Vec<Vec<u8>> {
    let mut keys = Vec::new();
    // strtok(): empty tokens are skipped and do not count as variables.
    for (count, token) in query
        .split(|&b| b == b'&')
        .filter(|t| !t.is_empty())
        .enumerate()
    {
        if count >= MAX_INPUT_VARS {
            break;
        }
        let name = match token.iter().position(|&b| b == b'=') {
            Some(i) => &token[..i],
            None => token,
        };
        if let Some(key) = php_var_key(&url_decode(name)) {
            keys.push(key);
        }
    }
    keys
}

/// PHP's `php_url_decode()`.
fn url_decode(s: &[u8]) -> Vec<u8> {
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        match s[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < s.len() => match (hex(s[i + 1]), hex(s[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    out
}

/// The `$_GET` key `php_register_variable_ex()` would create for a decoded
/// variable name, or `None` when it registers nothing.
fn php_var_key(name: &[u8]) -> Option<Vec<u8>> {
    // C string: cut at the first NUL; leading spaces are ignored.
    let name = name.split(|&b| b == 0).next().unwrap_or_default();
    let start = name.iter().position(|&b| b != b' ').unwrap_or(name.len());
    let name = &name[start..];

    let mut base = Vec::with_capacity(name.len());
    let mut bracket = None;
    for (i, &b) in name.iter().enumerate() {
        match b {
            b' ' | b'.' => base.push(b'_'),
            b'[' => {
                bracket = Some(i);
                break;
            }
            _ => base.push(b),
        }
    }
    if base.is_empty() {
        return None;
    }
    let Some(mut open) = bracket else {
        return Some(base);
    };
    let mut level = 0;
    loop {
        level += 1;
        if level > MAX_INPUT_NESTING_LEVEL {
            return None;
        }
        let Some(close) = name[open + 1..].iter().position(|&b| b == b']') else {
            if level == 1 {
                // Not an index: the '[' and what follows become part of
                // the name, with ' ', '.' and '[' turned into '_'.
                base.push(b'_');
                base.extend(name[open + 1..].iter().map(|&b| match b {
                    b' ' | b'.' | b'[' => b'_',
                    b => b,
                }));
            }
            return Some(base);
        };
        let after = open + 1 + close + 1;
        if name.get(after) == Some(&b'[') {
            open = after;
        } else {
            return Some(base);
        }
    }
}

/// One pool's counters, as the status page shows them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PoolStatus {
    pub pool: String,
    pub process_manager: String,
    /// Unix seconds.
    pub start_time: i64,
    pub start_since: u64,
    pub accepted_conn: u64,
    pub listen_queue: u64,
    pub max_listen_queue: u64,
    pub listen_queue_len: u64,
    pub idle_processes: u64,
    pub active_processes: u64,
    pub total_processes: u64,
    pub max_active_processes: u64,
    pub max_children_reached: u64,
    pub slow_requests: u64,
}

/// One worker, as the full status page shows it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProcStatus {
    pub pid: u32,
    /// `Idle`, `Reading headers`, `Getting request information`, `Running`,
    /// `Ending` or `Finishing`.
    pub state: String,
    /// Unix seconds.
    pub start_time: i64,
    pub start_since: u64,
    pub requests: u64,
    /// Microseconds.
    pub request_duration: u64,
    /// Empty is shown as `-`.
    pub request_method: String,
    /// The request URI with `?query` already appended when there is a query
    /// string. Split again at the first `?`; an empty URI part is shown `-`.
    pub request_uri: String,
    pub content_length: u64,
    /// Empty is shown as `-`.
    pub user: String,
    /// Empty is shown as `-`.
    pub script: String,
    /// Shown only for `Idle` processes (0 otherwise), as php-fpm does.
    pub last_request_cpu: f64,
    /// Shown only for `Idle` processes (0 otherwise), as php-fpm does.
    pub last_request_memory: u64,
}

/// A rendered status page: headers in php-fpm's order, then the body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub headers: Vec<(String, String)>,
    pub body: String,
}

const EXPIRES: &str = "Thu, 01 Jan 1970 00:00:00 GMT";
const CACHE_CONTROL: &str = "no-cache, no-store, must-revalidate, max-age=0";

/// The headers php-fpm sends with the status page in `format`: `Expires`,
/// `Cache-Control`, then the content type with php-fpm's exact casing.
pub fn status_headers(format: Format) -> Vec<(String, String)> {
    let (name, value) = match format {
        Format::Text => ("Content-type", "text/plain;charset=UTF-8"),
        Format::Html => ("Content-type", "text/html;charset=UTF-8"),
        Format::Xml => ("Content-type", "text/xml;charset=UTF-8"),
        Format::Json => ("Content-Type", "application/json"),
        Format::OpenMetrics => (
            "Content-Type",
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        ),
    };
    vec![
        ("Expires".to_owned(), EXPIRES.to_owned()),
        ("Cache-Control".to_owned(), CACHE_CONTROL.to_owned()),
        (name.to_owned(), value.to_owned()),
    ]
}

/// Renders the status page. `full` adds one entry per process in `procs`
/// (in the given order); openmetrics ignores it.
pub fn render(pool: &PoolStatus, procs: &[ProcStatus], format: Format, full: bool) -> Rendered {
    let procs = if full { Some(procs) } else { None };
    let body = match format {
        Format::Text => render_text(pool, procs),
        Format::Json => render_json(pool, procs),
        Format::Xml => render_xml(pool, procs),
        Format::Html => render_html(pool, procs),
        Format::OpenMetrics => render_openmetrics(pool),
    };
    Rendered {
        headers: status_headers(format),
        body,
    }
}

// ---------------------------------------------------------------- fields

/// What a field holds; each format decides how it looks.
#[derive(Clone, Copy)]
enum Value<'a> {
    /// A count, a size or a pid.
    Num(u64),
    /// Unix seconds: local time in text and HTML, a number elsewhere.
    Time(i64),
    /// The pool name and process manager, which php-fpm never escapes on
    /// the status page (observed).
    Raw(&'a str),
    /// A per-process string, escaped for the format.
    Text(&'a str),
    /// The request URI and its query string, escaped apart: the page
    /// shows `uri?query` with `-` for an empty URI, `fpm_get_status()`
    /// two keys.
    Uri(&'a str, &'a str),
    /// Percent of a CPU.
    Cpu(f64),
}

/// An openmetrics sample.
struct Metric {
    /// After `phpfpm_`.
    name: &'static str,
    kind: &'static str,
    help: &'static str,
    /// php-fpm writes `# TYPE` before `# HELP` for one metric.
    type_first: bool,
}

/// One line of the page, in every format.
struct Field<T> {
    /// JSON key and HTML heading; XML and `fpm_get_status()` write it
    /// with `-` for each space.
    name: &'static str,
    /// The text label, when it is not `name`.
    text: Option<&'static str>,
    /// The `fpm_get_status()` key, when it is not the XML one.
    php: Option<&'static str>,
    metric: Option<Metric>,
    value: fn(&T) -> Value<'_>,
}

impl<T> Field<T> {
    const fn new(name: &'static str, value: fn(&T) -> Value<'_>) -> Self {
        Field {
            name,
            text: None,
            php: None,
            metric: None,
            value,
        }
    }

    const fn text(mut self, label: &'static str) -> Self {
        self.text = Some(label);
        self
    }

    const fn php(mut self, key: &'static str) -> Self {
        self.php = Some(key);
        self
    }

    const fn metric(mut self, name: &'static str, kind: &'static str, help: &'static str) -> Self {
        self.metric = Some(Metric {
            name,
            kind,
            help,
            type_first: false,
        });
        self
    }

    /// For the metric php-fpm introduces with `# TYPE`.
    const fn type_first(mut self) -> Self {
        if let Some(m) = &mut self.metric {
            m.type_first = true;
        }
        self
    }
}

type PoolField = Field<PoolStatus>;
type ProcField = Field<ProcStatus>;

const GAUGE: &str = "gauge";
const COUNTER: &str = "counter";

/// The pool part, in php-fpm's order.
const POOL: &[PoolField] = &[
    PoolField::new("pool", |p| Value::Raw(&p.pool)),
    PoolField::new("process manager", |p| Value::Raw(&p.process_manager)),
    PoolField::new("start time", |p| Value::Time(p.start_time)),
    PoolField::new("start since", |p| Value::Num(p.start_since)).metric(
        "start_since",
        COUNTER,
        "The number of seconds since FPM has started.",
    ),
    PoolField::new("accepted conn", |p| Value::Num(p.accepted_conn)).metric(
        "accepted_connections",
        COUNTER,
        "The number of requests accepted by the pool.",
    ),
    PoolField::new("listen queue", |p| Value::Num(p.listen_queue)).metric(
        "listen_queue",
        GAUGE,
        "The number of requests in the queue of pending connections.",
    ),
    PoolField::new("max listen queue", |p| Value::Num(p.max_listen_queue)).metric(
        "max_listen_queue",
        COUNTER,
        "The maximum number of requests in the queue of pending connections since FPM has started.",
    ),
    PoolField::new("listen queue len", |p| Value::Num(p.listen_queue_len))
        .metric(
            "listen_queue_length",
            GAUGE,
            "The size of the socket queue of pending connections.",
        )
        .type_first(),
    PoolField::new("idle processes", |p| Value::Num(p.idle_processes)).metric(
        "idle_processes",
        GAUGE,
        "The number of idle processes.",
    ),
    PoolField::new("active processes", |p| Value::Num(p.active_processes)).metric(
        "active_processes",
        GAUGE,
        "The number of active processes.",
    ),
    PoolField::new("total processes", |p| Value::Num(p.total_processes)).metric(
        "total_processes",
        GAUGE,
        "The number of idle + active processes.",
    ),
    PoolField::new("max active processes", |p| Value::Num(p.max_active_processes)).metric(
        "max_active_processes",
        COUNTER,
        "The maximum number of active processes since FPM has started.",
    ),
    PoolField::new("max children reached", |p| Value::Num(p.max_children_reached)).metric(
        "max_children_reached",
        COUNTER,
        "The number of times, the process limit has been reached, when pm tries to start more children (works only for pm 'dynamic' and 'ondemand').",
    ),
    PoolField::new("slow requests", |p| Value::Num(p.slow_requests)).metric(
        "slow_requests",
        COUNTER,
        "The number of requests that exceeded your 'request_slowlog_timeout' value.",
    ),
];

/// The per-process part of `full`, in php-fpm's order. As in php-fpm, an
/// empty method, user or script shows `-`, and cpu and memory are 0 unless
/// the process is `Idle`.
const PROC: &[ProcField] = &[
    ProcField::new("pid", |p| Value::Num(p.pid.into())),
    ProcField::new("state", |p| Value::Text(&p.state)),
    ProcField::new("start time", |p| Value::Time(p.start_time)),
    ProcField::new("start since", |p| Value::Num(p.start_since)),
    ProcField::new("requests", |p| Value::Num(p.requests)),
    ProcField::new("request duration", |p| Value::Num(p.request_duration)),
    ProcField::new("request method", |p| {
        Value::Text(or_dash(&p.request_method))
    }),
    ProcField::new("request uri", |p| {
        let (uri, query) = split_uri(&p.request_uri);
        Value::Uri(uri, query)
    })
    .text("request URI"),
    ProcField::new("content length", |p| Value::Num(p.content_length)).php("request-length"),
    ProcField::new("user", |p| Value::Text(or_dash(&p.user))),
    ProcField::new("script", |p| Value::Text(or_dash(&p.script))),
    ProcField::new("last request cpu", |p| Value::Cpu(cpu_value(p))),
    ProcField::new("last request memory", |p| {
        Value::Num(if is_idle(p) { p.last_request_memory } else { 0 })
    }),
];

fn or_dash(s: &str) -> &str {
    if s.is_empty() {
        "-"
    } else {
        s
    }
}

fn split_uri(s: &str) -> (&str, &str) {
    s.split_once('?').unwrap_or((s, ""))
}

fn is_idle(p: &ProcStatus) -> bool {
    p.state == "Idle"
}

fn cpu_value(p: &ProcStatus) -> f64 {
    if is_idle(p) && p.last_request_cpu.is_finite() {
        p.last_request_cpu
    } else {
        0.0
    }
}

/// `name` with `-` for each space, as XML and `fpm_get_status()` spell it.
fn push_dashed(b: &mut String, name: &str) {
    b.extend(name.chars().map(|c| if c == ' ' { '-' } else { c }));
}

/// A value on the status page in `format`.
fn push_value(b: &mut String, v: Value<'_>, format: Format) {
    let esc: fn(&str) -> String = match format {
        Format::Json => escape_json,
        Format::Xml | Format::Html => escape_html,
        Format::Text | Format::OpenMetrics => str::to_owned,
    };
    let quote = if format == Format::Json { "\"" } else { "" };
    let _ = match v {
        Value::Num(n) => write!(b, "{n}"),
        Value::Time(t) if matches!(format, Format::Text | Format::Html) => {
            write!(b, "{}", local_time(t))
        }
        Value::Time(t) => write!(b, "{t}"),
        Value::Raw(s) => write!(b, "{quote}{s}{quote}"),
        Value::Text(s) => write!(b, "{quote}{}{quote}", esc(s)),
        Value::Uri(uri, "") => write!(b, "{quote}{}{quote}", esc(or_dash(uri))),
        Value::Uri(uri, query) => {
            write!(b, "{quote}{}?{}{quote}", esc(or_dash(uri)), esc(query))
        }
        Value::Cpu(c) => write!(b, "{c:.2}"),
    };
}

// --------------------------------------------------------------- formats

/// `label:` padded to php-fpm's 22 columns, then the value.
fn text_lines<T>(b: &mut String, fields: &[Field<T>], of: &T) {
    for f in fields {
        let _ = write!(b, "{:<22}", format!("{}:", f.text.unwrap_or(f.name)));
        push_value(b, (f.value)(of), Format::Text);
        b.push('\n');
    }
}

fn render_text(pool: &PoolStatus, procs: Option<&[ProcStatus]>) -> String {
    let mut b = String::with_capacity(512 + procs.map_or(0, |p| p.len() * 512));
    text_lines(&mut b, POOL, pool);
    for p in procs.unwrap_or_default() {
        b.push_str("\n************************\n");
        text_lines(&mut b, PROC, p);
    }
    b
}

/// `"name":value` pairs, comma-separated.
fn json_pairs<T>(b: &mut String, fields: &[Field<T>], of: &T) {
    for (i, f) in fields.iter().enumerate() {
        if i > 0 {
            b.push(',');
        }
        let _ = write!(b, "\"{}\":", f.name);
        push_value(b, (f.value)(of), Format::Json);
    }
}

fn render_json(pool: &PoolStatus, procs: Option<&[ProcStatus]>) -> String {
    let mut b = String::with_capacity(512 + procs.map_or(0, |p| p.len() * 512));
    b.push('{');
    json_pairs(&mut b, POOL, pool);
    if let Some(procs) = procs {
        b.push_str(", \"processes\":[");
        for (i, p) in procs.iter().enumerate() {
            if i > 0 {
                b.push(',');
            }
            b.push('{');
            json_pairs(&mut b, PROC, p);
            b.push('}');
        }
        b.push(']');
    }
    b.push('}');
    b
}

/// `<name>value</name>` elements, each followed by `sep`.
fn xml_elements<T>(b: &mut String, fields: &[Field<T>], of: &T, sep: &str) {
    for f in fields {
        b.push('<');
        push_dashed(b, f.name);
        b.push('>');
        push_value(b, (f.value)(of), Format::Xml);
        b.push_str("</");
        push_dashed(b, f.name);
        b.push('>');
        b.push_str(sep);
    }
}

fn render_xml(pool: &PoolStatus, procs: Option<&[ProcStatus]>) -> String {
    let mut b = String::with_capacity(768 + procs.map_or(0, |p| p.len() * 640));
    b.push_str("<?xml version=\"1.0\" ?>\n<status>\n");
    xml_elements(&mut b, POOL, pool, "\n");
    if let Some(procs) = procs {
        b.push_str("<processes>\n");
        for p in procs {
            b.push_str("<process>");
            xml_elements(&mut b, PROC, p, "");
            b.push_str("</process>\n");
        }
        b.push_str("</processes>\n");
    }
    b.push_str("</status>");
    b
}

fn render_html(pool: &PoolStatus, procs: Option<&[ProcStatus]>) -> String {
    let mut b = String::with_capacity(1024 + procs.map_or(0, |p| p.len() * 512));
    b.push_str(
        "<!DOCTYPE html PUBLIC \"-//W3C//DTD XHTML 1.0 Strict//EN\" \
         \"http://www.w3.org/TR/xhtml1/DTD/xhtml1-strict.dtd\">\n\
         <html xmlns=\"http://www.w3.org/1999/xhtml\" xml:lang=\"en\" lang=\"en\">\n\
         <head><title>PHP-FPM Status Page</title></head>\n\
         <body>\n\
         <table>\n",
    );
    for f in POOL {
        let _ = write!(b, "<tr><th>{}</th><td>", f.name);
        push_value(&mut b, (f.value)(pool), Format::Html);
        b.push_str("</td></tr>\n");
    }
    b.push_str("</table>\n");
    if let Some(procs) = procs {
        b.push_str("<table border=\"1\">\n<tr>");
        for f in PROC {
            let _ = write!(b, "<th>{}</th>", f.name);
        }
        b.push_str("</tr>\n");
        for p in procs {
            b.push_str("<tr>");
            for f in PROC {
                b.push_str("<td>");
                push_value(&mut b, (f.value)(p), Format::Html);
                b.push_str("</td>");
            }
            b.push_str("</tr>\n");
        }
        b.push_str("</table>");
    }
    b.push_str("</body></html>");
    b
}

fn render_openmetrics(pool: &PoolStatus) -> String {
    let mut b = String::with_capacity(2048);
    let _ = write!(
        b,
        "# HELP phpfpm_up Could pool {} using a {} PM on PHP-FPM be reached?\n\
         # TYPE phpfpm_up gauge\n\
         phpfpm_up 1\n",
        pool.pool, pool.process_manager,
    );
    for f in POOL {
        let Some(m) = &f.metric else { continue };
        let help = format!("# HELP phpfpm_{} {}\n", m.name, m.help);
        let kind = format!("# TYPE phpfpm_{} {}\n", m.name, m.kind);
        if m.type_first {
            b.push_str(&kind);
            b.push_str(&help);
        } else {
            b.push_str(&help);
            b.push_str(&kind);
        }
        let _ = write!(b, "phpfpm_{} ", m.name);
        push_value(&mut b, (f.value)(pool), Format::OpenMetrics);
        b.push('\n');
    }
    b.push_str("# EOF\n");
    b
}

// --------------------------------------------------------- fpm_get_status

/// An integer PHP's `json_decode()` keeps as an int.
fn php_int(v: u64) -> u64 {
    v.min(i64::MAX as u64)
}

/// A float PHP's `json_decode()` keeps as a float (always has a `.` or an
/// exponent; NaN and infinities, which JSON cannot carry, become 0.0).
fn php_float(v: f64) -> String {
    if v.is_finite() {
        format!("{v:?}")
    } else {
        "0.0".to_owned()
    }
}

/// `"key":value` pairs for PHP to `json_decode()`: every string escaped,
/// the URI without its query, which gets its own key.
fn php_pairs<T>(b: &mut String, fields: &[Field<T>], of: &T) {
    for (i, f) in fields.iter().enumerate() {
        if i > 0 {
            b.push(',');
        }
        b.push('"');
        match f.php {
            Some(key) => b.push_str(key),
            None => push_dashed(b, f.name),
        }
        b.push_str("\":");
        let _ = match (f.value)(of) {
            Value::Num(n) => write!(b, "{}", php_int(n)),
            Value::Time(t) => write!(b, "{t}"),
            Value::Raw(s) | Value::Text(s) => write!(b, "\"{}\"", escape_json(s)),
            Value::Uri(uri, query) => write!(
                b,
                "\"{}\",\"query-string\":\"{}\"",
                escape_json(uri),
                escape_json(query)
            ),
            Value::Cpu(c) => write!(b, "{}", php_float(c)),
        };
    }
}

/// What PHP's `fpm_get_status()` returns, as JSON for the worker's shim to
/// `json_decode($json, true)`: the status page's fields under their XML
/// names (`process-manager`, ...), then `procs`, a list of the processes
/// with `request-uri` split from `query-string` and `request-length` for
/// the content length; `last-request-cpu` is always a float.
pub fn fpm_get_status_json(pool: &PoolStatus, procs: &[ProcStatus]) -> String {
    let mut b = String::with_capacity(512 + procs.len() * 512);
    b.push('{');
    php_pairs(&mut b, POOL, pool);
    b.push_str(",\"procs\":[");
    for (i, p) in procs.iter().enumerate() {
        if i > 0 {
            b.push(',');
        }
        b.push('{');
        php_pairs(&mut b, PROC, p);
        b.push('}');
    }
    b.push_str("]}");
    b
}

// ---------------------------------------------------------------- escaping

/// `%d/%b/%Y:%H:%M:%S %z` in the local time zone, as strftime(localtime()).
fn local_time(t: i64) -> String {
    use chrono::TimeZone as _;
    const FMT: &str = "%d/%b/%Y:%H:%M:%S %z";
    match chrono::Local.timestamp_opt(t, 0).earliest() {
        Some(dt) => dt.format(FMT).to_string(),
        None => chrono::Utc
            .timestamp_opt(t, 0)
            .earliest()
            .map(|dt| dt.format(FMT).to_string())
            .unwrap_or_default(),
    }
}

/// `htmlspecialchars()` as php-fpm 8.2 calls it on status strings:
/// `& < > "` become entities (always, even inside an existing entity),
/// `'` stays, and code points XML 1.0 forbids (controls other than tab,
/// LF and CR; U+FFFE and U+FFFF) become U+FFFD.
pub fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\t' | '\n' | '\r' => out.push(c),
            '\u{0}'..='\u{1f}' | '\u{fffe}' | '\u{ffff}' => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

/// The inside of PHP's `json_encode()` of a string with default flags:
/// `/` is escaped, every non-ASCII code point becomes `\uXXXX` (lowercase
/// hex, surrogate pairs above U+FFFF), DEL is left alone.
pub fn escape_json(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '/' => out.push_str("\\/"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || (c as u32) > 0x7f => {
                let mut units = [0u16; 2];
                for u in c.encode_utf16(&mut units) {
                    let _ = write!(out, "\\u{:04x}", u);
                }
            }
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_decode_like_php() {
        assert_eq!(url_decode(b"a+b%20c%2"), b"a b c%2");
        assert_eq!(url_decode(b"%78%4D%zz%"), b"xM%zz%");
        assert_eq!(url_decode(b"%"), b"%");
        assert_eq!(url_decode(b"%4"), b"%4");
    }

    #[test]
    fn var_keys_like_php() {
        let k = |s: &str| php_var_key(s.as_bytes()).map(|v| String::from_utf8(v).unwrap());
        assert_eq!(k("json"), Some("json".into()));
        assert_eq!(k("  json"), Some("json".into()));
        assert_eq!(k("a.b c"), Some("a_b_c".into()));
        assert_eq!(k("json[a][b]"), Some("json".into()));
        assert_eq!(k("json[]"), Some("json".into()));
        assert_eq!(k("x]"), Some("x]".into()));
        assert_eq!(k("full["), Some("full_".into()));
        assert_eq!(k("h[x.y"), Some("h_x_y".into()));
        assert_eq!(k("json[a]b"), Some("json".into()));
        assert_eq!(k("json[a][b"), Some("json".into()));
        assert_eq!(k(""), None);
        assert_eq!(k("   "), None);
        assert_eq!(k("[a]"), None);
        let deep64 = format!("json{}", "[a]".repeat(64));
        let deep65 = format!("json{}", "[a]".repeat(65));
        assert_eq!(k(&deep64), Some("json".into()));
        assert_eq!(k(&deep65), None);
        assert_eq!(php_var_key(b"x\0yz"), Some(b"x".to_vec()));
    }
}
