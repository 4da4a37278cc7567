//! The end-to-end check after a change: a probe script in the docroot
//! prints a random token; fetching it through the web server with the
//! site's Host header proves vhost, socket, pool user and file
//! permissions all line up. The probe is created with O_EXCL under a
//! random name and removed whether the fetch worked or not.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::error::{Result, SitesError};

/// Random hex from the kernel.
pub fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        let _ = f.read_exact(&mut buf);
    }
    if buf.iter().all(|b| *b == 0) {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        return format!("{t:x}{:x}", std::process::id());
    }
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

/// The probe file's PHP.
pub fn probe_script(token: &str) -> String {
    format!("<?php echo 'corral-probe:', '{token}', ':', php_sapi_name();\n")
}

/// Fetches `base` + `path` with `Host: host` until the body holds
/// `corral-probe:TOKEN` three times in a row (a reloading web server may
/// answer from old workers for a moment) or `timeout` passes.
pub fn fetch_until(
    base: &str,
    host: &str,
    path: &str,
    token: &str,
    timeout: Duration,
) -> Result<()> {
    let addr = base
        .strip_prefix("http://")
        .ok_or_else(|| SitesError::Verify(format!("only http:// URLs are supported: {base}")))?
        .trim_end_matches('/');
    let addr = if addr.contains(':') {
        addr.to_string()
    } else {
        format!("{addr}:80")
    };
    let deadline = Instant::now() + timeout;
    let want = format!("corral-probe:{token}");
    // Three answers in a row: right after a reload, workers of the
    // previous generation may still accept a connection or two.
    let mut good = 0;
    loop {
        let last = match get(&addr, host, path) {
            Ok((status, body)) if status == 200 && body.contains(&want) => {
                good += 1;
                if good == 3 {
                    return Ok(());
                }
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
            Ok((status, body)) => {
                format!(
                    "HTTP {status}: {}",
                    body.chars().take(300).collect::<String>()
                )
            }
            Err(e) => e.to_string(),
        };
        good = 0;
        if Instant::now() > deadline {
            return Err(SitesError::Verify(format!(
                "GET http://{addr}{path} (Host: {host}) did not return the probe token: {last}"
            )));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn get(addr: &str, host: &str, path: &str) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        s,
        "GET {path} HTTP/1.0\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    Ok((status, body.to_string()))
}

/// Over TLS: `base_ip`:`port` with SNI and Host `host`, through curl (the
/// certificate is not judged here, `-k`: the web server's config test
/// loaded it; this proves the TLS vhost runs the site's PHP). Same
/// three-in-a-row rule as [`fetch_until`].
pub fn fetch_tls_until(
    ip: &str,
    port: u16,
    host: &str,
    path: &str,
    token: &str,
    timeout: Duration,
) -> Result<()> {
    let url = format!("https://{host}:{port}{path}");
    let resolve = format!("{host}:{port}:{ip}");
    let want = format!("corral-probe:{token}");
    let deadline = Instant::now() + timeout;
    let mut good = 0;
    loop {
        let out = std::process::Command::new("curl")
            .args(["-sk", "--max-time", "10", "--resolve", &resolve, &url])
            .output();
        let last = match out {
            Err(e) => {
                return Err(SitesError::Verify(format!(
                    "cannot run curl to check {url} ({e}); install curl or pass --no-verify"
                )))
            }
            Ok(o) if String::from_utf8_lossy(&o.stdout).contains(&want) => {
                good += 1;
                if good == 3 {
                    return Ok(());
                }
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
            Ok(o) => format!(
                "{}{}",
                String::from_utf8_lossy(&o.stdout)
                    .chars()
                    .take(300)
                    .collect::<String>(),
                String::from_utf8_lossy(&o.stderr).trim()
            ),
        };
        good = 0;
        if Instant::now() > deadline {
            return Err(SitesError::Verify(format!(
                "GET {url} (at {ip}) did not return the probe token: {last}"
            )));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The status of a plain GET (the HTTP->HTTPS redirect check).
pub fn status_of(base: &str, host: &str, path: &str) -> Result<u16> {
    let addr = base
        .strip_prefix("http://")
        .ok_or_else(|| SitesError::Verify(format!("only http:// URLs are supported: {base}")))?
        .trim_end_matches('/');
    let addr = if addr.contains(':') {
        addr.to_string()
    } else {
        format!("{addr}:80")
    };
    get(&addr, host, path)
        .map(|(s, _)| s)
        .map_err(|e| SitesError::Verify(format!("GET http://{addr}{path} (Host: {host}): {e}")))
}
