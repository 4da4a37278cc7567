//! The pool's own pages, answered by the worker without running PHP:
//! `pm.status_path` (php-fpm's status page in each of its formats) and
//! `ping.path`. php-fpm answers both from `fpm_status_handle_request`, before
//! the script is looked at, so the paths need no file behind them.
//!
//! Neither page runs PHP, so neither applies the request's `PHP_VALUE` or
//! `PHP_ADMIN_VALUE` (php-fpm applies them before its status handler, so
//! an ini setting such as an output handler reaches its status output).
//!
//! A `pm.status_listen` pool answers these pages only. php-fpm's
//! `<pool>_status` pool (fpm_worker_pool_shared_status_alloc) is an
//! ordinary ondemand pool on another address: any other request runs PHP
//! as the pool's user with the request's `PHP_ADMIN_VALUE`, so whoever
//! reaches a TCP status port (every tenant, on loopback) can run code as
//! that pool (`auto_prepend_file` = a `data://` URL). corral answers
//! anything else with php-fpm's 404 page, written here, without PHP.

use corral_php::{RequestIo, RequestSpec};

use crate::PoolRuntime;

/// A page the worker answers itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Page {
    Status,
    Ping,
}

/// The page `spec` asks for, if any. php-fpm matches SCRIPT_NAME after
/// rewriting (the `request_uri` it keeps), only for requests that have a
/// method; when both paths are the same, ping wins.
pub fn page_for(spec: &RequestSpec<'_>, pool: &PoolRuntime) -> Option<Page> {
    spec.request_method.as_ref()?;
    page_at(
        spec.request_uri.as_deref()?,
        pool.status_path.as_deref(),
        pool.ping_path.as_deref(),
    )
}

fn page_at(uri: &[u8], status_path: Option<&str>, ping_path: Option<&str>) -> Option<Page> {
    if ping_path.map(str::as_bytes) == Some(uri) {
        Some(Page::Ping)
    } else if status_path.map(str::as_bytes) == Some(uri) {
        Some(Page::Status)
    } else {
        None
    }
}

/// Answers `page` through `out`; returns the HTTP status for the access log.
/// `status` is the pool (and scoreboard) the status page reports.
pub fn respond(
    page: Page,
    out: &mut dyn RequestIo,
    spec: &RequestSpec<'_>,
    pool: &PoolRuntime,
    status: Option<(&str, &[std::sync::atomic::AtomicU64])>,
) -> u16 {
    let head_only = spec.request_method == Some(b"HEAD");
    match page {
        Page::Ping => ping(out, pool, head_only),
        Page::Status => status_page(out, spec.query_string, pool, status, head_only),
    }
}

/// The answer of a pm.status_listen pool to anything but its pages:
/// php-fpm's "Primary script unknown" page, without X-Powered-By (no PHP
/// ran to add it). Returns the HTTP status for the access log.
pub fn not_found(out: &mut dyn RequestIo, spec: &RequestSpec<'_>) -> u16 {
    let _ =
        out.write_out(b"Status: 404 Not Found\r\nContent-type: text/html; charset=UTF-8\r\n\r\n");
    if spec.request_method != Some(b"HEAD") {
        let _ = out.write_out(b"File not found.\n");
    }
    404
}

/// A response head: `X-Powered-By` first when the pool exposes PHP (PHP
/// adds it at request start-up, before anything a page adds), then
/// `lines`, then the empty line.
fn head(pool: &PoolRuntime, lines: &[&str]) -> String {
    let mut head = String::new();
    for line in pool
        .powered_by
        .iter()
        .map(String::as_str)
        .chain(lines.iter().copied())
    {
        head.push_str(line);
        head.push_str("\r\n");
    }
    head.push_str("\r\n");
    head
}

fn ping(out: &mut dyn RequestIo, pool: &PoolRuntime, head_only: bool) -> u16 {
    let head = head(
        pool,
        &[
            "Content-type: text/plain;charset=UTF-8",
            "Expires: Thu, 01 Jan 1970 00:00:00 GMT",
            "Cache-Control: no-cache, no-store, must-revalidate, max-age=0",
        ],
    );
    let _ = out.write_out(head.as_bytes());
    if !head_only {
        let _ = out.write_out(pool.ping_response.as_bytes());
    }
    200
}

/// The pool's status in the format the query asks for.
fn status_page(
    out: &mut dyn RequestIo,
    query: Option<&[u8]>,
    pool: &PoolRuntime,
    status: Option<(&str, &[std::sync::atomic::AtomicU64])>,
    head_only: bool,
) -> u16 {
    let Some((name, board)) = status else {
        let head = head(
            pool,
            &[
                "Status: 500 Internal Server Error",
                "Content-type: text/plain;charset=UTF-8",
            ],
        );
        let _ = out.write_out(head.as_bytes());
        let _ = out.write_out(b"Internal error. Please review log file for errors.");
        return 500;
    };
    let query = String::from_utf8_lossy(query.unwrap_or_default());
    let (format, full) = corral_status::render::parse_query(&query);
    let (pool_status, procs) = corral_status::snapshot(board, name, pool.pm_name);
    let page = corral_status::render::render(&pool_status, &procs, format, full);
    let lines: Vec<String> = page
        .headers
        .iter()
        .map(|(n, v)| format!("{n}: {v}"))
        .collect();
    let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
    let _ = out.write_out(head(pool, &lines).as_bytes());
    if !head_only {
        let _ = out.write_out(page.body.as_bytes());
    }
    200
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_are_matched_on_the_whole_script_name() {
        let (status, ping) = (Some("/status"), Some("/ping"));
        assert_eq!(page_at(b"/status", status, ping), Some(Page::Status));
        assert_eq!(page_at(b"/ping", status, ping), Some(Page::Ping));
        assert_eq!(page_at(b"/status/x", status, ping), None);
        assert_eq!(page_at(b"/x.php", status, ping), None);
        assert_eq!(page_at(b"/status", None, None), None);
        assert_eq!(page_at(b"/p", Some("/p"), Some("/p")), Some(Page::Ping));
    }

    /// Records what a page writes.
    #[derive(Default)]
    struct Recorder(Vec<u8>);

    impl RequestIo for Recorder {
        fn read_body(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
            Ok(0)
        }
        fn write_out(&mut self, data: &[u8]) -> std::io::Result<()> {
            self.0.extend_from_slice(data);
            Ok(())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
        fn finish(&mut self) -> std::io::Result<()> {
            Ok(())
        }
        fn log(&mut self, _: corral_php::LogLevel, _: &[u8], _: bool) {}
    }

    static NO_PARAMS: corral_fastcgi::Params = corral_fastcgi::Params::new();

    fn spec(method: &[u8]) -> RequestSpec<'_> {
        RequestSpec {
            params: &NO_PARAMS,
            request_method: Some(method),
            query_string: None,
            request_uri: Some(b"/x.php".to_vec()),
            path_translated: Some(b"/srv/x.php".to_vec()),
            content_type: b"",
            content_length: 0,
            deny_extension: false,
            want_opcache: false,
        }
    }

    fn runtime(powered_by: Option<&str>) -> PoolRuntime {
        let c = corral_config::parse_str(
            "[p]\nlisten = /run/p.sock\nuser = nobody\npm = static\npm.max_children = 1\nping.path = /ping\n",
            std::path::Path::new("t.conf"),
            &Default::default(),
        )
        .unwrap();
        let mut rt = PoolRuntime::from_pool(&c.pools[0], corral_config::LogLevel::Notice);
        rt.powered_by = powered_by.map(str::to_string);
        rt
    }

    #[test]
    fn a_status_pool_answers_anything_else_with_php_fpm_s_404() {
        let mut out = Recorder::default();
        assert_eq!(not_found(&mut out, &spec(b"GET")), 404);
        assert_eq!(
            out.0,
            b"Status: 404 Not Found\r\nContent-type: text/html; charset=UTF-8\r\n\r\nFile not found.\n"
        );
        let mut head = Recorder::default();
        assert_eq!(not_found(&mut head, &spec(b"HEAD")), 404);
        assert!(head.0.ends_with(b"\r\n\r\n"));
    }

    /// With expose_php on, PHP's header leads every page's head, as in
    /// php-fpm; with it off there is none.
    #[test]
    fn pages_carry_x_powered_by_first_while_php_is_exposed() {
        let exposed = runtime(Some("X-Powered-By: PHP/8.2.36"));
        let mut out = Recorder::default();
        assert_eq!(ping(&mut out, &exposed, false), 200);
        assert!(
            out.0.starts_with(
                b"X-Powered-By: PHP/8.2.36\r\nContent-type: text/plain;charset=UTF-8\r\n"
            ),
            "{}",
            String::from_utf8_lossy(&out.0)
        );
        assert!(out.0.ends_with(b"\r\n\r\npong"));

        let hidden = runtime(None);
        let mut out = Recorder::default();
        ping(&mut out, &hidden, false);
        assert!(out.0.starts_with(b"Content-type: text/plain"));
    }
}
