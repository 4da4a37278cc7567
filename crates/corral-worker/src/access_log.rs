//! php-fpm's access log: one line per request, written by the worker to a
//! descriptor the master opened (O_APPEND), formatted by `access.format`.
//!
//! The line is built the way php-fpm's fpm_log_write builds it, limits
//! included, so that what lands in the file is what php-fpm would write.

use std::borrow::Cow;
use std::io::Write;
use std::net::IpAddr;

use corral_config::access_format::{Cpu, Duration, Memory, Token};

/// Everything a format specifier can ask about a finished request.
#[derive(Debug, Clone)]
pub struct Record<'a> {
    pub pool: &'a str,
    pub pid: u32,
    pub master_pid: u32,
    pub peer: Option<IpAddr>,
    pub params: &'a corral_fastcgi::Params,
    pub method: Option<&'a [u8]>,
    pub request_uri: Option<&'a [u8]>,
    pub query: Option<&'a [u8]>,
    pub script: Option<&'a [u8]>,
    pub content_length: i64,
    pub status: u16,
    pub auth_user: Option<String>,
    /// Response headers the script set, as (name, value); `%{..}o` looks
    /// at them as the `name: value` lines php-fpm keeps.
    pub headers: &'a [(String, String)],
    pub started_us: u64,
    pub finished_us: u64,
    pub cpu_user_us: u64,
    pub cpu_system_us: u64,
    pub peak_memory: u64,
}

/// php-fpm's line buffer (FPM_LOG_BUFFER), newline excluded.
pub const LINE_MAX: usize = 1024;

/// The sizes of the scoreboard fields php-fpm copies request data into
/// (fpm_scoreboard.h) before it formats the line: longer values lose
/// their end, the C string's terminator taking the last byte.
const POOL_FIELD: usize = 32;
const URI_FIELD: usize = 128;
const QUERY_FIELD: usize = 512;
const METHOD_FIELD: usize = 16;
const SCRIPT_FIELD: usize = 256;
const USER_FIELD: usize = 32;
/// php-fpm gives strftime() 128 bytes.
const TIME_FIELD: usize = 128;

/// A formatted access-log line, without its newline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub bytes: Vec<u8>,
    /// Whether php-fpm would have logged "the log buffer is full".
    pub truncated: bool,
}

impl Line {
    /// php-fpm looks for room before each character of the format.
    fn full(&mut self) -> bool {
        if self.bytes.len() >= LINE_MAX {
            self.truncated = true;
        }
        self.truncated
    }

    /// Format text, byte by byte as php-fpm copies it. `false`: the line
    /// is full.
    fn push_literal(&mut self, text: &[u8]) -> bool {
        for &b in text {
            if self.full() {
                return false;
            }
            self.bytes.push(b);
        }
        true
    }

    /// A specifier's value, as php-fpm's snprintf() into the rest of the
    /// buffer: a value that does not fit is cut, and the NUL snprintf ends
    /// it with is written to the file too (observed). `false`: the line is
    /// full.
    fn push_value(&mut self, value: &[u8]) -> bool {
        if self.full() {
            return false;
        }
        let room = LINE_MAX - self.bytes.len();
        if value.len() < room {
            self.bytes.extend_from_slice(value);
            return true;
        }
        self.bytes.extend_from_slice(&value[..room - 1]);
        self.bytes.push(0);
        self.truncated = true;
        false
    }

    /// php-fpm writes no line when its buffer holds an empty C string.
    pub fn is_empty(&self) -> bool {
        self.bytes.first().is_none_or(|&b| b == 0)
    }
}

/// A value as the C string php-fpm holds: cut at the first NUL, then to
/// the size of the field it was copied into.
fn c_field(b: &[u8], field: usize) -> &[u8] {
    let b = b.split(|&c| c == 0).next().unwrap_or_default();
    &b[..b.len().min(field - 1)]
}

/// php-fpm prints `-` for some fields when they are empty, not for all.
fn or_dash(b: &[u8]) -> &[u8] {
    if b.is_empty() {
        b"-"
    } else {
        b
    }
}

/// `%{name}o` as php-fpm finds it: the first header line that contains
/// `name` anywhere and has `: ` right after the first `name.len()` bytes.
/// So `%{ab}o` also matches `cd: ab` (observed), and a header with an
/// empty value never matches.
fn header(headers: &[(String, String)], name: &str) -> Option<Vec<u8>> {
    headers.iter().find_map(|(n, v)| {
        let line = format!("{n}: {v}");
        let b = line.as_bytes();
        let at = name.len();
        (line.contains(name) && b.len() > at + 2 && &b[at..at + 2] == b": ")
            .then(|| b[at + 2..].to_vec())
    })
}

/// `%t`/`%T`: whole seconds, local time.
fn strftime(us: u64, fmt: &str) -> Vec<u8> {
    use chrono::TimeZone;
    let Some(t) = chrono::Local
        .timestamp_opt((us / 1_000_000) as i64, 0)
        .single()
    else {
        return b"-".to_vec();
    };
    let mut out = String::new();
    // chrono panics on an unknown specifier when formatting with
    // `to_string`; write! reports it instead.
    if std::fmt::Write::write_fmt(&mut out, format_args!("{}", t.format(fmt))).is_err() {
        return b"-".to_vec();
    }
    c_field(out.as_bytes(), TIME_FIELD).to_vec()
}

/// Percent of one CPU the request used.
fn cpu_percent(cpu_us: u64, wall_us: u64) -> String {
    if wall_us == 0 {
        return "0.00".into();
    }
    format!("{:.2}", cpu_us as f64 * 100.0 / wall_us as f64)
}

/// What one specifier prints.
fn value<'r>(token: &Token, r: &'r Record) -> Cow<'r, [u8]> {
    let wall = r.finished_us.saturating_sub(r.started_us);
    let shown = |s: &dyn std::fmt::Display| Cow::Owned(s.to_string().into_bytes());
    let field = |b: Option<&'r [u8]>, size| Cow::Borrowed(c_field(b.unwrap_or_default(), size));
    let dashed =
        |b: Option<&'r [u8]>, size| Cow::Borrowed(or_dash(c_field(b.unwrap_or_default(), size)));
    match token {
        Token::Literal(text) => Cow::Owned(text.as_bytes().to_vec()),
        Token::Cpu(which) => {
            let cpu = match which {
                Cpu::Total => r.cpu_user_us + r.cpu_system_us,
                Cpu::User => r.cpu_user_us,
                Cpu::System => r.cpu_system_us,
            };
            shown(&cpu_percent(cpu, wall))
        }
        Token::Duration(Duration::Seconds) => shown(&format_args!("{:.3}", wall as f64 / 1e6)),
        Token::Duration(Duration::Milliseconds) => shown(&format_args!("{:.3}", wall as f64 / 1e3)),
        Token::Duration(Duration::Microseconds) => shown(&wall),
        // A parameter that is set but empty prints as empty (observed).
        Token::Env(name) => match r.params.first(name) {
            Some(v) => field(Some(v), usize::MAX),
            None => Cow::Borrowed(b"-"),
        },
        Token::Script => dashed(r.script, SCRIPT_FIELD),
        Token::ContentLength => shown(&r.content_length.max(0)),
        Token::Method => dashed(r.method, METHOD_FIELD),
        Token::Memory(Memory::Bytes) => shown(&r.peak_memory),
        Token::Memory(Memory::Kilobytes) => shown(&(r.peak_memory / 1024)),
        Token::Memory(Memory::Megabytes) => shown(&(r.peak_memory / 1024 / 1024)),
        Token::Pool => dashed(Some(r.pool.as_bytes()), POOL_FIELD),
        Token::Header(name) => match header(r.headers, name) {
            Some(v) => Cow::Owned(v),
            None => Cow::Borrowed(b"-"),
        },
        Token::Pid => shown(&r.pid),
        Token::MasterPid => shown(&r.master_pid),
        Token::Query => field(r.query, QUERY_FIELD),
        Token::QueryMark => {
            let mark: &[u8] = if field(r.query, QUERY_FIELD).is_empty() {
                b""
            } else {
                b"?"
            };
            Cow::Borrowed(mark)
        }
        // An empty URI prints as empty, unlike the method (observed).
        Token::RequestUri => field(r.request_uri, URI_FIELD),
        Token::RemoteAddr => match r.peer {
            Some(ip) => shown(&ip),
            None => Cow::Borrowed(b"-"),
        },
        Token::Status => shown(&r.status),
        Token::RequestTime(fmt) => Cow::Owned(strftime(r.started_us, fmt)),
        Token::LogTime(fmt) => Cow::Owned(strftime(r.finished_us, fmt)),
        Token::User => Cow::Owned(
            c_field(
                r.auth_user.as_deref().unwrap_or_default().as_bytes(),
                USER_FIELD,
            )
            .to_vec(),
        ),
    }
}

/// Formats one line. The tokens come from corral-config, which already
/// refused every format php-fpm refuses, so nothing can fail here.
pub fn render(tokens: &[Token], r: &Record) -> Line {
    let mut line = Line {
        bytes: Vec::with_capacity(256),
        truncated: false,
    };
    for token in tokens {
        let room = match token {
            Token::Literal(text) => line.push_literal(text.as_bytes()),
            _ => line.push_value(&value(token, r)),
        };
        if !room {
            break;
        }
    }
    line
}

/// php-fpm's access.suppress_path: quiet health checks, only for clean
/// GET/HEAD requests without body or query that succeeded.
pub fn suppressed(r: &Record, paths: &[String]) -> bool {
    if paths.is_empty() {
        return false;
    }
    let method_ok = matches!(r.method, Some(b"GET") | Some(b"HEAD"));
    let uri = r.request_uri.unwrap_or_default();
    method_ok
        && r.content_length <= 0
        && r.query.is_none_or(<[u8]>::is_empty)
        && (200..300).contains(&r.status)
        && paths.iter().any(|p| p.as_bytes() == uri)
}

/// Writes one line with a single write(2), so lines from workers sharing
/// the descriptor never interleave.
pub fn write_line(mut out: &std::fs::File, line: Line, log: &crate::log::WorkerLog) {
    if line.truncated {
        log.line(
            corral_php::LogLevel::Notice,
            format!(
                "the log buffer is full ({LINE_MAX}). The access log request has been truncated."
            )
            .as_bytes(),
        );
    }
    if line.is_empty() {
        return;
    }
    let mut bytes = line.bytes;
    bytes.push(b'\n');
    let _ = out.write_all(&bytes);
}

/// PHP_AUTH_USER as PHP derives it from a Basic Authorization header.
pub fn basic_auth_user(authorization: Option<&[u8]>) -> Option<String> {
    let a = authorization?;
    let rest = a
        .strip_prefix(b"Basic ")
        .or_else(|| a.strip_prefix(b"basic "))?;
    let decoded = base64_decode(rest.trim_ascii())?;
    let colon = decoded.iter().position(|&b| b == b':')?;
    Some(String::from_utf8_lossy(&decoded[..colon]).into_owned())
}

fn base64_decode(s: &[u8]) -> Option<Vec<u8>> {
    let val = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let mut out = Vec::new();
    let mut acc = 0u32;
    let mut bits = 0;
    for &c in s {
        if c == b'=' {
            break;
        }
        acc = (acc << 6) | val(c)?;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    static NO_PARAMS: corral_fastcgi::Params = corral_fastcgi::Params::new();

    fn rec<'a>(params: &'a corral_fastcgi::Params, headers: &'a [(String, String)]) -> Record<'a> {
        Record {
            pool: "www",
            pid: 42,
            master_pid: 1,
            peer: Some("127.0.0.1".parse().unwrap()),
            params,
            method: Some(b"GET"),
            request_uri: Some(b"/index.php"),
            query: Some(b"a=1"),
            script: Some(b"/srv/www/index.php"),
            content_length: 0,
            status: 200,
            auth_user: Some("bob".into()),
            headers,
            started_us: 1_000_000,
            finished_us: 1_001_050,
            cpu_user_us: 500,
            cpu_system_us: 0,
            peak_memory: 2 * 1024 * 1024,
        }
    }

    fn tokens(format: &str) -> Vec<Token> {
        corral_config::access_format::parse(format).unwrap()
    }

    fn render_str(format: &str, r: &Record) -> String {
        String::from_utf8(render(&tokens(format), r).bytes).unwrap()
    }

    #[test]
    fn default_format() {
        let r = rec(&NO_PARAMS, &[]);
        assert_eq!(
            render_str("%R - %u \"%m %r\" %s", &r),
            "127.0.0.1 - bob \"GET /index.php\" 200"
        );
    }

    #[test]
    fn every_specifier() {
        let params = vec![
            (b"HTTP_HOST".to_vec(), b"example.org".to_vec()),
            (b"HTTP_EMPTY".to_vec(), Vec::new()),
        ];
        let params = corral_fastcgi::Params::from_pairs(params);
        let headers = vec![("X-Cache".to_string(), "HIT".to_string())];
        let r = rec(&params, &headers);
        assert_eq!(
            render_str("%{HTTP_HOST}e|%{NOPE}e|%{HTTP_EMPTY}e", &r),
            "example.org|-|"
        );
        assert_eq!(render_str("%{X-Cache}o %{x-cache}o", &r), "HIT -");
        assert_eq!(render_str("%{milli}d %{micro}d %d", &r), "1.050 1050 0.001");
        assert_eq!(render_str("%M %{kilo}M %{mega}M", &r), "2097152 2048 2");
        assert_eq!(
            render_str("%n %p %P %q%Q %f %l %%", &r),
            "www 42 1 a=1? /srv/www/index.php 0 %"
        );
        assert_eq!(render_str("%C %{user}C %{system}C", &r), "47.62 47.62 0.00");
        assert_eq!(render_str("%{%Y}t", &r).len(), 4);
        assert_eq!(render_str("%{%Y}T", &r).len(), 4);
    }

    /// Each case as php-fpm 8.2.36 logged it.
    #[test]
    fn empty_values_like_php_fpm() {
        let r = Record {
            method: Some(b""),
            request_uri: Some(b""),
            query: None,
            script: None,
            auth_user: None,
            peer: None,
            ..rec(&NO_PARAMS, &[])
        };
        assert_eq!(
            render_str("[%m][%r][%q][%Q][%f][%u][%R]", &r),
            "[-][][][][-][][-]"
        );
    }

    #[test]
    fn trailing_percent_is_dropped() {
        let r = rec(&NO_PARAMS, &[]);
        assert_eq!(render_str("abc %", &r), "abc ");
        assert_eq!(render_str("%m %", &r), "GET ");
    }

    /// Values pass through php-fpm's fixed-size scoreboard fields.
    #[test]
    fn long_values_are_cut_like_php_fpm() {
        let uri = format!("/{}", "u".repeat(200));
        let query = "q".repeat(600);
        let script = format!("/{}", "s".repeat(310));
        let pool = "w".repeat(42);
        let r = Record {
            pool: &pool,
            method: Some(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ"),
            request_uri: Some(uri.as_bytes()),
            query: Some(query.as_bytes()),
            script: Some(script.as_bytes()),
            auth_user: Some("u".repeat(40)),
            ..rec(&NO_PARAMS, &[])
        };
        let cut = |f: &str| render_str(f, &r).len();
        assert_eq!(cut("%r"), 127);
        assert_eq!(cut("%q"), 511);
        assert_eq!(render_str("%m", &r), "ABCDEFGHIJKLMNO");
        assert_eq!(cut("%f"), 255);
        assert_eq!(cut("%u"), 31);
        assert_eq!(cut("%n"), 31);
        // C strings end at the first NUL.
        let params = vec![(b"HTTP_X".to_vec(), b"ab\0cd".to_vec())];
        let params = corral_fastcgi::Params::from_pairs(params);
        let r = Record {
            request_uri: Some(b"/a\0b"),
            ..rec(&params, &[])
        };
        assert_eq!(render_str("%{HTTP_X}e %r", &r), "ab /a");
        // strftime() gets 128 bytes.
        let long = "a".repeat(128);
        assert_eq!(render_str(&format!("%{{{long}}}t"), &r), "a".repeat(127));
    }

    #[test]
    fn full_lines_like_php_fpm() {
        let r = rec(&NO_PARAMS, &[]);
        // Longer text stops at the buffer's size.
        let line = render(&tokens(&"a".repeat(1100)), &r);
        assert_eq!(line.bytes, vec![b'a'; 1024]);
        assert!(line.truncated);
        // Exactly full: no notice, nothing lost.
        let line = render(&tokens(&"a".repeat(1024)), &r);
        assert_eq!(line.bytes.len(), 1024);
        assert!(!line.truncated);
        // A full buffer stops before the next specifier.
        let line = render(&tokens(&format!("{}b%m", "a".repeat(1023))), &r);
        assert_eq!(line.bytes.last(), Some(&b'b'));
        assert_eq!(line.bytes.len(), 1024);
        assert!(line.truncated);

        // A value that does not fit is cut, and snprintf's NUL ends it.
        let filler = "a".repeat(1000);
        let format = format!("{filler}%{{HTTP_X}}e|after");
        for (len, want) in [
            (100, format!("{filler}{}\0", "v".repeat(23))),
            (24, format!("{filler}{}\0", "v".repeat(23))),
            (23, format!("{filler}{}|", "v".repeat(23))),
        ] {
            let params = vec![(b"HTTP_X".to_vec(), vec![b'v'; len])];
            let params = corral_fastcgi::Params::from_pairs(params);
            let line = render(&tokens(&format), &rec(&params, &[]));
            assert_eq!(line.bytes, want.as_bytes(), "value of {len} bytes");
            assert!(line.truncated);
        }
    }

    #[test]
    fn an_empty_line_is_not_written() {
        let r = Record {
            query: None,
            ..rec(&NO_PARAMS, &[])
        };
        assert!(render(&tokens("%q"), &r).is_empty());
        assert!(render(&tokens(""), &r).is_empty());
        assert!(!render(&tokens("%q "), &r).is_empty());
    }

    #[test]
    fn headers_as_php_fpm_finds_them() {
        let headers = vec![
            ("cd".to_string(), "ab".to_string()),
            ("X-Empty".to_string(), String::new()),
            ("X-Two".to_string(), "first".to_string()),
            ("X-Two".to_string(), "second".to_string()),
        ];
        let r = rec(&NO_PARAMS, &headers);
        assert_eq!(
            render_str("[%{ab}o][%{cd}o][%{X-Empty}o][%{X-Two}o][%{X}o]", &r),
            "[ab][ab][-][first][-]"
        );
    }

    #[test]
    fn suppress_only_clean_successes() {
        let mut r = rec(&NO_PARAMS, &[]);
        let paths = vec!["/index.php".to_string()];
        assert!(!suppressed(&r, &paths), "query string present");
        r.query = None;
        assert!(suppressed(&r, &paths));
        r.status = 500;
        assert!(!suppressed(&r, &paths));
    }

    #[test]
    fn auth_user_from_basic() {
        assert_eq!(
            basic_auth_user(Some(b"Basic Ym9iOnNlY3JldA==")),
            Some("bob".into())
        );
        assert_eq!(basic_auth_user(Some(b"Bearer x")), None);
        assert_eq!(basic_auth_user(None), None);
    }
}
