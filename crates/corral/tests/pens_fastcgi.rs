//! Pens, FastCGI trust: a pool's `pm.status_listen` answers status and
//! ping only, and neither page applies `PHP_VALUE`/`PHP_ADMIN_VALUE`.
//!
//! The attack (issue 9): a tenant's PHP connects to another pool's TCP
//! status port on loopback and sends a FastCGI request for any script,
//! with `PHP_ADMIN_VALUE` setting `auto_prepend_file` to a `data://` URL.
//! php-fpm's `<pool>_status` pool is an ordinary pool and runs it, as the
//! victim's user; corral must answer "File not found." without PHP. Each
//! test prints what php-fpm does beside corral's answer.

mod common;

use common::*;

/// What the attacker's code prints when it runs.
const MARK: &str = "PWNED-BY-PREPEND";

/// A pool with its status and ping pages, and a TCP pm.status_listen.
fn conf() -> String {
    pool_conf(
        "pm.status_path = /status\nping.path = /ping\nping.response = pong-test\n\
         pm.status_listen = 127.0.0.1:{port2}",
    )
}

fn status_listen(s: &Server) -> Listen {
    Listen::parse(&format!("127.0.0.1:{}", s.placeholders.port2))
}

/// The ini the attacker asks for: its own code before any script, with the
/// pool's open_basedir lifted.
fn hostile_ini() -> String {
    format!(
        "allow_url_include = On\nopen_basedir = /\n\
         auto_prepend_file = \"data://text/plain,<?php echo '{MARK}'; exit; ?>\""
    )
}

/// A request for `script` in the server's docroot (SCRIPT_NAME `/script`),
/// carrying the hostile ini both ways.
fn hostile(s: &Server, script: &str) -> Request {
    hostile_with(s, script, "")
}

/// [`hostile`], with more ini lines.
fn hostile_with(s: &Server, script: &str, more: &str) -> Request {
    let ini = format!("{}\n{more}", hostile_ini());
    Request::php(&s.script(script))
        .document_root(&s.www().display().to_string())
        .param("PHP_ADMIN_VALUE", &ini)
        .param("PHP_VALUE", &ini)
}

fn show(r: &std::io::Result<Reply>) -> String {
    match r {
        Ok(r) => format!(
            "{} {:?}",
            r.status,
            r.body.chars().take(120).collect::<String>()
        ),
        Err(e) => format!("error: {e}"),
    }
}

/// php-fpm's answer to the same request, for the side-by-side print.
fn php_fpm_answer(script: &str, to_status_listen: bool) -> String {
    let Some(_) = require_php_fpm() else {
        return "not installed".into();
    };
    let s = PhpFpm::start(&conf());
    let listen = if to_status_listen {
        status_listen(&s)
    } else {
        s.listen().clone()
    };
    show(&request_on(&listen, &hostile(&s, script)))
}

#[test]
fn status_listen_never_runs_php() {
    if !require_root() {
        return;
    }
    let s = Corral::start(&conf());
    let listen = status_listen(&s);
    let ours = request_on(&listen, &hostile(&s, "pid.php"));
    eprintln!(
        "script with PHP_ADMIN_VALUE auto_prepend_file=data:// on pm.status_listen:\n  \
         corral:  {}\n  php-fpm: {}",
        show(&ours),
        php_fpm_answer("pid.php", true)
    );
    let r = ours.unwrap_or_else(|e| panic!("status_listen: {e}\n{}", s.log.text()));
    assert!(!r.body.contains(MARK), "the attacker's code ran: {r:?}");
    assert_eq!(r.status, 404, "{r:?}");
    assert_eq!(r.body, "File not found.\n", "{r:?}");
    assert!(
        r.header("X-Powered-By").is_none(),
        "no PHP ran to say so: {r:?}"
    );
    // Any method, any script: nothing but the two pages.
    for (what, req) in [
        ("POST", hostile(&s, "pid.php").method("POST")),
        ("missing script", hostile(&s, "nope.php")),
        ("info.php", hostile(&s, "info.php")),
    ] {
        let r = request_on(&listen, &req).unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(
            (r.status, r.body.as_str()),
            (404, "File not found.\n"),
            "{what}"
        );
    }
    // The pool itself still runs PHP on its own socket...
    let r = s.get("pid.php", "");
    assert_eq!(r.status, 200, "{r:?}");
    assert!(r.body.parse::<u32>().is_ok(), "{r:?}");
    // ...and the status listener still serves its pages.
    let status = Request::php(&s.script("status"))
        .document_root(&s.www().display().to_string())
        .query("json");
    let r = request_on(&listen, &status).expect("status page");
    assert_eq!(r.status, 200, "{r:?}");
    assert!(r.body.contains("\"pool\":\"www\""), "{r:?}");
    assert!(!s.log_contains("Passing INI directive"), "{}", s.log.text());
}

#[test]
fn status_and_ping_pages_ignore_php_value() {
    if !require_root() {
        return;
    }
    let s = Corral::start(&conf());
    let compressed = |s: &Server, page: &str| {
        hostile_with(s, page, "zlib.output_compression = On").header("Accept-Encoding", "gzip")
    };
    let on = |s: &Server, status: bool| {
        if status {
            status_listen(s)
        } else {
            s.listen().clone()
        }
    };
    let fpm = require_php_fpm().map(|_| PhpFpm::start(&conf()));
    for to_status in [false, true] {
        for page in ["status", "ping"] {
            let ours = request_on(&on(&s, to_status), &compressed(&s, page));
            let theirs = fpm
                .as_ref()
                .map(|f| request_on(&on(f, to_status), &compressed(f, page)))
                .map(|r| {
                    let enc = r
                        .as_ref()
                        .ok()
                        .and_then(|r| r.header("Content-Encoding").map(str::to_string));
                    format!("{} (Content-Encoding: {enc:?})", show(&r))
                })
                .unwrap_or_else(|| "not installed".into());
            let at = if to_status {
                "pm.status_listen"
            } else {
                "listen"
            };
            eprintln!(
                "/{page} on {at} with PHP_ADMIN_VALUE (prepend, zlib.output_compression):\n  \
                 corral:  {}\n  php-fpm: {theirs}",
                show(&ours)
            );
            let r = ours.unwrap_or_else(|e| panic!("/{page} on {at}: {e}"));
            assert_eq!(r.status, 200, "/{page} on {at}: {r:?}");
            assert!(!r.body.contains(MARK), "/{page} on {at}: {r:?}");
            assert!(
                r.header("Content-Encoding").is_none(),
                "/{page} on {at}: an ini setting reached the page: {r:?}"
            );
            match page {
                "ping" => assert_eq!(r.body, "pong-test", "{at}"),
                _ => assert!(r.body.contains("pool:"), "/status on {at}: {r:?}"),
            }
        }
    }
}
