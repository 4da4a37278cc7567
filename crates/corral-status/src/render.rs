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
    let body = match format {
        Format::Text => render_text(pool, procs, full),
        Format::Json => render_json(pool, procs, full),
        Format::Xml => render_xml(pool, procs, full),
        Format::Html => render_html(pool, procs, full),
        Format::OpenMetrics => render_openmetrics(pool),
    };
    Rendered {
        headers: status_headers(format),
        body,
    }
}

/// A process's fields as they are printed, before escaping.
struct Shown<'a> {
    method: &'a str,
    uri: &'a str,
    /// `Some` when there is a non-empty query string.
    query: Option<&'a str>,
    user: &'a str,
    script: &'a str,
    cpu: f64,
    memory: u64,
}

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

fn shown(p: &ProcStatus) -> Shown<'_> {
    let (uri, query) = split_uri(&p.request_uri);
    Shown {
        method: or_dash(&p.request_method),
        uri: or_dash(uri),
        query: (!query.is_empty()).then_some(query),
        user: or_dash(&p.user),
        script: or_dash(&p.script),
        cpu: cpu_value(p),
        memory: if is_idle(p) { p.last_request_memory } else { 0 },
    }
}

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

/// The request URI as printed: `uri[?query]`, each part escaped alone.
fn uri_with_query(s: &Shown<'_>, esc: fn(&str) -> String) -> String {
    match s.query {
        Some(q) => format!("{}?{}", esc(s.uri), esc(q)),
        None => esc(s.uri),
    }
}

fn raw(s: &str) -> String {
    s.to_owned()
}

fn render_text(pool: &PoolStatus, procs: &[ProcStatus], full: bool) -> String {
    let mut b = String::with_capacity(512 + if full { procs.len() * 512 } else { 0 });
    let _ = write!(
        b,
        "pool:                 {}\n\
         process manager:      {}\n\
         start time:           {}\n\
         start since:          {}\n\
         accepted conn:        {}\n\
         listen queue:         {}\n\
         max listen queue:     {}\n\
         listen queue len:     {}\n\
         idle processes:       {}\n\
         active processes:     {}\n\
         total processes:      {}\n\
         max active processes: {}\n\
         max children reached: {}\n\
         slow requests:        {}\n",
        pool.pool,
        pool.process_manager,
        local_time(pool.start_time),
        pool.start_since,
        pool.accepted_conn,
        pool.listen_queue,
        pool.max_listen_queue,
        pool.listen_queue_len,
        pool.idle_processes,
        pool.active_processes,
        pool.total_processes,
        pool.max_active_processes,
        pool.max_children_reached,
        pool.slow_requests,
    );
    if full {
        for p in procs {
            let s = shown(p);
            let _ = write!(
                b,
                "\n\
                 ************************\n\
                 pid:                  {}\n\
                 state:                {}\n\
                 start time:           {}\n\
                 start since:          {}\n\
                 requests:             {}\n\
                 request duration:     {}\n\
                 request method:       {}\n\
                 request URI:          {}\n\
                 content length:       {}\n\
                 user:                 {}\n\
                 script:               {}\n\
                 last request cpu:     {:.2}\n\
                 last request memory:  {}\n",
                p.pid,
                p.state,
                local_time(p.start_time),
                p.start_since,
                p.requests,
                p.request_duration,
                s.method,
                uri_with_query(&s, raw),
                p.content_length,
                s.user,
                s.script,
                s.cpu,
                s.memory,
            );
        }
    }
    b
}

fn render_json(pool: &PoolStatus, procs: &[ProcStatus], full: bool) -> String {
    let mut b = String::with_capacity(512 + if full { procs.len() * 512 } else { 0 });
    // php-fpm prints the pool name unescaped, even here (observed).
    let _ = write!(
        b,
        "{{\"pool\":\"{}\",\"process manager\":\"{}\",\"start time\":{},\
         \"start since\":{},\"accepted conn\":{},\"listen queue\":{},\
         \"max listen queue\":{},\"listen queue len\":{},\"idle processes\":{},\
         \"active processes\":{},\"total processes\":{},\"max active processes\":{},\
         \"max children reached\":{},\"slow requests\":{}",
        pool.pool,
        pool.process_manager,
        pool.start_time,
        pool.start_since,
        pool.accepted_conn,
        pool.listen_queue,
        pool.max_listen_queue,
        pool.listen_queue_len,
        pool.idle_processes,
        pool.active_processes,
        pool.total_processes,
        pool.max_active_processes,
        pool.max_children_reached,
        pool.slow_requests,
    );
    if !full {
        b.push('}');
        return b;
    }
    b.push_str(", \"processes\":[");
    for (i, p) in procs.iter().enumerate() {
        if i > 0 {
            b.push(',');
        }
        let s = shown(p);
        let _ = write!(
            b,
            "{{\"pid\":{},\"state\":\"{}\",\"start time\":{},\"start since\":{},\
             \"requests\":{},\"request duration\":{},\"request method\":\"{}\",\
             \"request uri\":\"{}\",\"content length\":{},\"user\":\"{}\",\
             \"script\":\"{}\",\"last request cpu\":{:.2},\"last request memory\":{}}}",
            p.pid,
            escape_json(&p.state),
            p.start_time,
            p.start_since,
            p.requests,
            p.request_duration,
            escape_json(s.method),
            uri_with_query(&s, escape_json),
            p.content_length,
            escape_json(s.user),
            escape_json(s.script),
            s.cpu,
            s.memory,
        );
    }
    b.push_str("]}");
    b
}

fn render_xml(pool: &PoolStatus, procs: &[ProcStatus], full: bool) -> String {
    let mut b = String::with_capacity(768 + if full { procs.len() * 640 } else { 0 });
    let _ = write!(
        b,
        "<?xml version=\"1.0\" ?>\n\
         <status>\n\
         <pool>{}</pool>\n\
         <process-manager>{}</process-manager>\n\
         <start-time>{}</start-time>\n\
         <start-since>{}</start-since>\n\
         <accepted-conn>{}</accepted-conn>\n\
         <listen-queue>{}</listen-queue>\n\
         <max-listen-queue>{}</max-listen-queue>\n\
         <listen-queue-len>{}</listen-queue-len>\n\
         <idle-processes>{}</idle-processes>\n\
         <active-processes>{}</active-processes>\n\
         <total-processes>{}</total-processes>\n\
         <max-active-processes>{}</max-active-processes>\n\
         <max-children-reached>{}</max-children-reached>\n\
         <slow-requests>{}</slow-requests>\n",
        pool.pool,
        pool.process_manager,
        pool.start_time,
        pool.start_since,
        pool.accepted_conn,
        pool.listen_queue,
        pool.max_listen_queue,
        pool.listen_queue_len,
        pool.idle_processes,
        pool.active_processes,
        pool.total_processes,
        pool.max_active_processes,
        pool.max_children_reached,
        pool.slow_requests,
    );
    if !full {
        b.push_str("</status>");
        return b;
    }
    b.push_str("<processes>\n");
    for p in procs {
        let s = shown(p);
        let _ = writeln!(
            b,
            "<process><pid>{}</pid><state>{}</state><start-time>{}</start-time>\
             <start-since>{}</start-since><requests>{}</requests>\
             <request-duration>{}</request-duration><request-method>{}</request-method>\
             <request-uri>{}</request-uri><content-length>{}</content-length>\
             <user>{}</user><script>{}</script><last-request-cpu>{:.2}</last-request-cpu>\
             <last-request-memory>{}</last-request-memory></process>",
            p.pid,
            escape_html(&p.state),
            p.start_time,
            p.start_since,
            p.requests,
            p.request_duration,
            escape_html(s.method),
            uri_with_query(&s, escape_html),
            p.content_length,
            escape_html(s.user),
            escape_html(s.script),
            s.cpu,
            s.memory,
        );
    }
    b.push_str("</processes>\n</status>");
    b
}

fn render_html(pool: &PoolStatus, procs: &[ProcStatus], full: bool) -> String {
    let mut b = String::with_capacity(1024 + if full { procs.len() * 512 } else { 0 });
    let _ = write!(
        b,
        "<!DOCTYPE html PUBLIC \"-//W3C//DTD XHTML 1.0 Strict//EN\" \
         \"http://www.w3.org/TR/xhtml1/DTD/xhtml1-strict.dtd\">\n\
         <html xmlns=\"http://www.w3.org/1999/xhtml\" xml:lang=\"en\" lang=\"en\">\n\
         <head><title>PHP-FPM Status Page</title></head>\n\
         <body>\n\
         <table>\n\
         <tr><th>pool</th><td>{}</td></tr>\n\
         <tr><th>process manager</th><td>{}</td></tr>\n\
         <tr><th>start time</th><td>{}</td></tr>\n\
         <tr><th>start since</th><td>{}</td></tr>\n\
         <tr><th>accepted conn</th><td>{}</td></tr>\n\
         <tr><th>listen queue</th><td>{}</td></tr>\n\
         <tr><th>max listen queue</th><td>{}</td></tr>\n\
         <tr><th>listen queue len</th><td>{}</td></tr>\n\
         <tr><th>idle processes</th><td>{}</td></tr>\n\
         <tr><th>active processes</th><td>{}</td></tr>\n\
         <tr><th>total processes</th><td>{}</td></tr>\n\
         <tr><th>max active processes</th><td>{}</td></tr>\n\
         <tr><th>max children reached</th><td>{}</td></tr>\n\
         <tr><th>slow requests</th><td>{}</td></tr>\n\
         </table>\n",
        pool.pool,
        pool.process_manager,
        local_time(pool.start_time),
        pool.start_since,
        pool.accepted_conn,
        pool.listen_queue,
        pool.max_listen_queue,
        pool.listen_queue_len,
        pool.idle_processes,
        pool.active_processes,
        pool.total_processes,
        pool.max_active_processes,
        pool.max_children_reached,
        pool.slow_requests,
    );
    if !full {
        b.push_str("</body></html>");
        return b;
    }
    b.push_str(
        "<table border=\"1\">\n\
         <tr><th>pid</th><th>state</th><th>start time</th><th>start since</th>\
         <th>requests</th><th>request duration</th><th>request method</th>\
         <th>request uri</th><th>content length</th><th>user</th><th>script</th>\
         <th>last request cpu</th><th>last request memory</th></tr>\n",
    );
    for p in procs {
        let s = shown(p);
        let _ = writeln!(
            b,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>\
             <td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.2}</td>\
             <td>{}</td></tr>",
            p.pid,
            escape_html(&p.state),
            local_time(p.start_time),
            p.start_since,
            p.requests,
            p.request_duration,
            escape_html(s.method),
            uri_with_query(&s, escape_html),
            p.content_length,
            escape_html(s.user),
            escape_html(s.script),
            s.cpu,
            s.memory,
        );
    }
    b.push_str("</table></body></html>");
    b
}

fn render_openmetrics(pool: &PoolStatus) -> String {
    let mut b = String::with_capacity(2048);
    let _ = write!(
        b,
        "# HELP phpfpm_up Could pool {} using a {} PM on PHP-FPM be reached?\n\
         # TYPE phpfpm_up gauge\n\
         phpfpm_up 1\n\
         # HELP phpfpm_start_since The number of seconds since FPM has started.\n\
         # TYPE phpfpm_start_since counter\n\
         phpfpm_start_since {}\n\
         # HELP phpfpm_accepted_connections The number of requests accepted by the pool.\n\
         # TYPE phpfpm_accepted_connections counter\n\
         phpfpm_accepted_connections {}\n\
         # HELP phpfpm_listen_queue The number of requests in the queue of pending connections.\n\
         # TYPE phpfpm_listen_queue gauge\n\
         phpfpm_listen_queue {}\n\
         # HELP phpfpm_max_listen_queue The maximum number of requests in the queue of pending connections since FPM has started.\n\
         # TYPE phpfpm_max_listen_queue counter\n\
         phpfpm_max_listen_queue {}\n\
         # TYPE phpfpm_listen_queue_length gauge\n\
         # HELP phpfpm_listen_queue_length The size of the socket queue of pending connections.\n\
         phpfpm_listen_queue_length {}\n\
         # HELP phpfpm_idle_processes The number of idle processes.\n\
         # TYPE phpfpm_idle_processes gauge\n\
         phpfpm_idle_processes {}\n\
         # HELP phpfpm_active_processes The number of active processes.\n\
         # TYPE phpfpm_active_processes gauge\n\
         phpfpm_active_processes {}\n\
         # HELP phpfpm_total_processes The number of idle + active processes.\n\
         # TYPE phpfpm_total_processes gauge\n\
         phpfpm_total_processes {}\n\
         # HELP phpfpm_max_active_processes The maximum number of active processes since FPM has started.\n\
         # TYPE phpfpm_max_active_processes counter\n\
         phpfpm_max_active_processes {}\n\
         # HELP phpfpm_max_children_reached The number of times, the process limit has been reached, when pm tries to start more children (works only for pm 'dynamic' and 'ondemand').\n\
         # TYPE phpfpm_max_children_reached counter\n\
         phpfpm_max_children_reached {}\n\
         # HELP phpfpm_slow_requests The number of requests that exceeded your 'request_slowlog_timeout' value.\n\
         # TYPE phpfpm_slow_requests counter\n\
         phpfpm_slow_requests {}\n\
         # EOF\n",
        pool.pool,
        pool.process_manager,
        pool.start_since,
        pool.accepted_conn,
        pool.listen_queue,
        pool.max_listen_queue,
        pool.listen_queue_len,
        pool.idle_processes,
        pool.active_processes,
        pool.total_processes,
        pool.max_active_processes,
        pool.max_children_reached,
        pool.slow_requests,
    );
    b
}

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

/// What PHP's `fpm_get_status()` returns, as JSON for the worker's shim to
/// `json_decode($json, true)`: keys `pool`, `process-manager`, `start-time`,
/// ... `slow-requests`, then `procs`, a list of objects with `pid`, `state`,
/// `start-time`, `start-since`, `requests`, `request-duration`,
/// `request-method`, `request-uri` (without the query), `query-string`,
/// `request-length`, `user`, `script`, `last-request-cpu` (always a float)
/// and `last-request-memory`. As in php-fpm, an empty method, user or script
/// is `-`, and cpu and memory are 0 unless the process is `Idle`.
pub fn fpm_get_status_json(pool: &PoolStatus, procs: &[ProcStatus]) -> String {
    let mut b = String::with_capacity(512 + procs.len() * 512);
    let _ = write!(
        b,
        "{{\"pool\":\"{}\",\"process-manager\":\"{}\",\"start-time\":{},\
         \"start-since\":{},\"accepted-conn\":{},\"listen-queue\":{},\
         \"max-listen-queue\":{},\"listen-queue-len\":{},\"idle-processes\":{},\
         \"active-processes\":{},\"total-processes\":{},\"max-active-processes\":{},\
         \"max-children-reached\":{},\"slow-requests\":{},\"procs\":[",
        escape_json(&pool.pool),
        escape_json(&pool.process_manager),
        pool.start_time,
        php_int(pool.start_since),
        php_int(pool.accepted_conn),
        php_int(pool.listen_queue),
        php_int(pool.max_listen_queue),
        php_int(pool.listen_queue_len),
        php_int(pool.idle_processes),
        php_int(pool.active_processes),
        php_int(pool.total_processes),
        php_int(pool.max_active_processes),
        php_int(pool.max_children_reached),
        php_int(pool.slow_requests),
    );
    for (i, p) in procs.iter().enumerate() {
        if i > 0 {
            b.push(',');
        }
        let (uri, query) = split_uri(&p.request_uri);
        let _ = write!(
            b,
            "{{\"pid\":{},\"state\":\"{}\",\"start-time\":{},\"start-since\":{},\
             \"requests\":{},\"request-duration\":{},\"request-method\":\"{}\",\
             \"request-uri\":\"{}\",\"query-string\":\"{}\",\"request-length\":{},\
             \"user\":\"{}\",\"script\":\"{}\",\"last-request-cpu\":{},\
             \"last-request-memory\":{}}}",
            p.pid,
            escape_json(&p.state),
            p.start_time,
            php_int(p.start_since),
            php_int(p.requests),
            php_int(p.request_duration),
            escape_json(or_dash(&p.request_method)),
            escape_json(uri),
            escape_json(query),
            php_int(p.content_length),
            escape_json(or_dash(&p.user)),
            escape_json(or_dash(&p.script)),
            php_float(cpu_value(p)),
            php_int(if is_idle(p) { p.last_request_memory } else { 0 }),
        );
    }
    b.push_str("]}");
    b
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
