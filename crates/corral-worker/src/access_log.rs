//! php-fpm's access log: one line per request, written by the worker to a
//! descriptor the master opened (O_APPEND), formatted by `access.format`.

use std::io::Write;
use std::net::IpAddr;

/// Everything a format specifier can ask about a finished request.
#[derive(Debug, Default, Clone)]
pub struct Record<'a> {
    pub pool: &'a str,
    pub pid: u32,
    pub master_pid: u32,
    pub peer: Option<IpAddr>,
    pub params: &'a [(Vec<u8>, Vec<u8>)],
    pub method: Option<&'a [u8]>,
    pub request_uri: Option<&'a [u8]>,
    pub query: Option<&'a [u8]>,
    pub script: Option<&'a [u8]>,
    pub content_length: i64,
    pub status: u16,
    pub auth_user: Option<String>,
    /// Response headers the script set, as `Name: value` lines.
    pub headers: &'a [(String, String)],
    pub started_us: u64,
    pub finished_us: u64,
    pub cpu_user_us: u64,
    pub cpu_system_us: u64,
    pub peak_memory: u64,
}

/// The longest line php-fpm writes.
pub const LINE_MAX: usize = 1024;

fn text(b: Option<&[u8]>) -> String {
    match b {
        Some(b) if !b.is_empty() => String::from_utf8_lossy(b).into_owned(),
        _ => "-".to_string(),
    }
}

fn param<'p>(params: &'p [(Vec<u8>, Vec<u8>)], name: &str) -> Option<&'p [u8]> {
    params
        .iter()
        .find(|(n, _)| n == name.as_bytes())
        .map(|(_, v)| v.as_slice())
}

fn strftime(us: u64, fmt: &str) -> String {
    use chrono::TimeZone;
    let secs = (us / 1_000_000) as i64;
    match chrono::Local
        .timestamp_opt(secs, ((us % 1_000_000) * 1000) as u32)
        .single()
    {
        Some(t) => {
            let mut out = String::new();
            // chrono panics on an unknown specifier when formatting with
            // `to_string`; write! reports it instead.
            if std::fmt::Write::write_fmt(&mut out, format_args!("{}", t.format(fmt))).is_err() {
                return "-".into();
            }
            out
        }
        None => "-".into(),
    }
}

/// Percent of one CPU the request used.
fn cpu_percent(cpu_us: u64, wall_us: u64) -> String {
    if wall_us == 0 {
        return "0.00".into();
    }
    format!("{:.2}", cpu_us as f64 * 100.0 / wall_us as f64)
}

/// Check a format once at start-up: php-fpm refuses bad ones.
pub fn validate(fmt: &str) -> Result<(), String> {
    render(fmt, &Record::default()).map(|_| ())
}

/// Format one line (without the newline).
pub fn render(fmt: &str, r: &Record) -> Result<String, String> {
    let mut out = String::new();
    let chars: Vec<char> = fmt.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        i += 1;
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut modifier: Option<String> = None;
        if chars.get(i) == Some(&'{') {
            let end = chars[i..]
                .iter()
                .position(|&c| c == '}')
                .ok_or("missing closing embrace in the access.format")?;
            modifier = Some(chars[i + 1..i + end].iter().collect());
            i += end + 1;
        }
        let Some(&spec) = chars.get(i) else {
            return Err("Invalid token in the access.format (%)".into());
        };
        i += 1;
        let wall = r.finished_us.saturating_sub(r.started_us);
        let no_modifier = |m: &Option<String>| {
            if m.is_some() {
                Err(format!("embrace is not allowed for modifier %{spec}"))
            } else {
                Ok(())
            }
        };
        match spec {
            '%' => out.push('%'),
            'C' => {
                let cpu = match modifier.as_deref() {
                    None | Some("total") => r.cpu_user_us + r.cpu_system_us,
                    Some("user") => r.cpu_user_us,
                    Some("system") => r.cpu_system_us,
                    Some(m) => {
                        return Err(format!("only 'total', 'user' or 'system' are allowed as a modifier for %C ('{m}')"))
                    }
                };
                out.push_str(&cpu_percent(cpu, wall));
            }
            'd' => match modifier.as_deref() {
                None | Some("seconds") => out.push_str(&format!("{:.3}", wall as f64 / 1e6)),
                Some("milli" | "milliseconds" | "mili" | "miliseconds") => out.push_str(&format!("{:.3}", wall as f64 / 1e3)),
                Some("micro" | "microseconds") => out.push_str(&wall.to_string()),
                Some(m) => {
                    return Err(format!(
                        "only 'seconds', 'milli', 'miliseconds', 'micro' or 'microseconds' are allowed as a modifier for %d ('{m}')"
                    ))
                }
            },
            'e' => {
                let name = modifier.ok_or("the name of the environment variable must be set between embraces for %e")?;
                out.push_str(&text(param(r.params, &name)));
            }
            'f' => {
                no_modifier(&modifier)?;
                out.push_str(&text(r.script));
            }
            'l' => {
                no_modifier(&modifier)?;
                out.push_str(&r.content_length.max(0).to_string());
            }
            'm' => {
                no_modifier(&modifier)?;
                out.push_str(&text(r.method));
            }
            'M' => {
                let v = match modifier.as_deref() {
                    None | Some("bytes") => r.peak_memory,
                    Some("kilo" | "kilobytes") => r.peak_memory / 1024,
                    Some("mega" | "megabytes") => r.peak_memory / 1024 / 1024,
                    Some(m) => {
                        return Err(format!(
                            "only 'bytes', 'kilo', 'kilobytes', 'mega' or 'megabytes' are allowed as a modifier for %M ('{m}')"
                        ))
                    }
                };
                out.push_str(&v.to_string());
            }
            'n' => {
                no_modifier(&modifier)?;
                out.push_str(r.pool);
            }
            'o' => {
                let name = modifier.ok_or("the name of the header must be set between embraces for %o")?;
                // Case-sensitive, as php-fpm matches it.
                match r.headers.iter().find(|(n, _)| *n == name) {
                    Some((_, v)) => out.push_str(v),
                    None => out.push('-'),
                }
            }
            'p' => {
                no_modifier(&modifier)?;
                out.push_str(&r.pid.to_string());
            }
            'P' => {
                no_modifier(&modifier)?;
                out.push_str(&r.master_pid.to_string());
            }
            'q' => {
                no_modifier(&modifier)?;
                if let Some(q) = r.query {
                    out.push_str(&String::from_utf8_lossy(q));
                }
            }
            'Q' => {
                no_modifier(&modifier)?;
                if r.query.is_some_and(|q| !q.is_empty()) {
                    out.push('?');
                }
            }
            'r' => {
                no_modifier(&modifier)?;
                out.push_str(&text(r.request_uri));
            }
            'R' => {
                no_modifier(&modifier)?;
                match r.peer {
                    Some(ip) => out.push_str(&ip.to_string()),
                    None => out.push('-'),
                }
            }
            's' => {
                no_modifier(&modifier)?;
                out.push_str(&r.status.to_string());
            }
            't' => out.push_str(&strftime(r.started_us, modifier.as_deref().unwrap_or("%d/%b/%Y:%H:%M:%S %z"))),
            'T' => out.push_str(&strftime(r.finished_us, modifier.as_deref().unwrap_or("%d/%b/%Y:%H:%M:%S %z"))),
            'u' => {
                no_modifier(&modifier)?;
                if let Some(u) = &r.auth_user {
                    out.push_str(u);
                }
            }
            other => return Err(format!("Invalid token in the access.format (%{other})")),
        }
    }
    Ok(out)
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

/// Write one line with a single write(2), so lines from workers sharing
/// the descriptor never interleave.
pub fn write_line(out: &mut std::fs::File, mut line: String, log: &crate::log::WorkerLog) {
    if line.len() >= LINE_MAX {
        let mut cut = LINE_MAX - 1;
        while !line.is_char_boundary(cut) {
            cut -= 1;
        }
        line.truncate(cut);
        log.line(
            corral_php::LogLevel::Notice,
            format!(
                "the log buffer is full ({LINE_MAX}). The access log request has been truncated."
            )
            .as_bytes(),
        );
    }
    line.push('\n');
    let _ = out.write_all(line.as_bytes());
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

    fn rec<'a>(params: &'a [(Vec<u8>, Vec<u8>)], headers: &'a [(String, String)]) -> Record<'a> {
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

    #[test]
    fn default_format() {
        let r = rec(&[], &[]);
        let line = render("%R - %u \"%m %r\" %s", &r).unwrap();
        assert_eq!(line, "127.0.0.1 - bob \"GET /index.php\" 200");
    }

    #[test]
    fn every_specifier() {
        let params = vec![(b"HTTP_HOST".to_vec(), b"example.org".to_vec())];
        let headers = vec![("X-Cache".to_string(), "HIT".to_string())];
        let r = rec(&params, &headers);
        assert_eq!(
            render("%{HTTP_HOST}e %{NOPE}e", &r).unwrap(),
            "example.org -"
        );
        assert_eq!(render("%{X-Cache}o %{x-cache}o", &r).unwrap(), "HIT -");
        assert_eq!(
            render("%{milli}d %{micro}d %d", &r).unwrap(),
            "1.050 1050 0.001"
        );
        assert_eq!(
            render("%M %{kilo}M %{mega}M", &r).unwrap(),
            "2097152 2048 2"
        );
        assert_eq!(
            render("%n %p %P %q%Q %f %l %%", &r).unwrap(),
            "www 42 1 a=1? /srv/www/index.php 0 %"
        );
        assert_eq!(
            render("%C %{user}C %{system}C", &r).unwrap(),
            "47.62 47.62 0.00"
        );
        assert!(render("%{%Y}t", &r).unwrap().len() == 4);
    }

    #[test]
    fn bad_formats_are_refused() {
        assert!(validate("%Z").unwrap_err().contains("Invalid token"));
        assert!(validate("%{abc")
            .unwrap_err()
            .contains("missing closing embrace"));
        assert!(validate("%{x}m")
            .unwrap_err()
            .contains("embrace is not allowed for modifier %m"));
        assert!(validate("%e")
            .unwrap_err()
            .contains("between embraces for %e"));
        assert!(validate("%{cpu}C").unwrap_err().contains("only 'total'"));
        assert!(validate("%R - %u %t \"%m %r\" %s").is_ok());
    }

    #[test]
    fn suppress_only_clean_successes() {
        let mut r = rec(&[], &[]);
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
