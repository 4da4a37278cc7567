//! Real nginx in front of corral (and of php-fpm8.2, for comparison) on a
//! unix socket, configured the way a Debian site usually is.

mod common;

use common::*;

fn server_block(www: &str, sock: &str) -> String {
    format!(
        "    root {www};\n\
         \x20   index index.php;\n\
         \x20   location / {{ try_files $uri $uri/ =404; }}\n\
         \x20   location ~ \\.php$ {{\n\
         \x20     try_files $uri =404;\n\
         \x20     fastcgi_pass unix:{sock};\n\
         \x20     include /etc/nginx/fastcgi_params;\n\
         \x20     fastcgi_param SCRIPT_FILENAME $document_root$fastcgi_script_name;\n\
         \x20   }}\n"
    )
}

fn sock_of(s: &Server) -> String {
    match s.listen() {
        Listen::Unix(p) => p.display().to_string(),
        other => panic!("expected a unix socket, got {other:?}"),
    }
}

/// nginx runs as root here (master_process off), so the socket's default
/// root:root 0660 is fine; in the demo it connects as www-data.
fn conf() -> String {
    pool_conf("pm.max_children = 2")
}

#[test]
fn nginx_get_and_post_through_corral() {
    if require_bin("nginx").is_none() {
        return;
    }
    let s = Corral::start(&conf());
    let Some(nginx) = Nginx::start(&server_block(&s.www().display().to_string(), &sock_of(&s)))
    else {
        return;
    };
    let r = nginx.get("/index.php?b=2&a=1");
    assert_eq!(r.status, 200, "{r:?}\n{}", nginx.error_log());
    assert_eq!(r.header("Content-Type"), Some("text/plain;charset=UTF-8"));
    assert_eq!(
        r.body,
        "Hello from fpm-fcgi\nmethod=GET\nuri=/index.php?b=2&a=1\nscript=/index.php\npath_info=(none)\nget={\"a\":\"1\",\"b\":\"2\"}\npost=[]\n"
    );

    // index.php via the directory index.
    let r = nginx.get("/");
    assert_eq!(r.status, 200, "{r:?}");
    assert!(r.body.starts_with("Hello from fpm-fcgi\n"), "{}", r.body);

    let r = nginx.post_form("/index.php", "x=1&y=hello+there");
    assert_eq!(r.status, 200, "{r:?}");
    assert!(r.body.contains("method=POST\n"), "{}", r.body);
    assert!(
        r.body.contains("post={\"x\":\"1\",\"y\":\"hello there\"}"),
        "{}",
        r.body
    );

    // Status codes and headers pass through nginx.
    let r = nginx.get("/headers.php?mode=code");
    assert_eq!(r.status, 404);
    assert_eq!(r.header("X-Corral-Test"), Some("yes"));
    let r = nginx.get("/cookies.php");
    assert!(r
        .headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("Set-Cookie") && v == "out=v1"));

    // A missing .php is answered by nginx's try_files, not PHP.
    let r = nginx.get("/missing.php");
    assert_eq!(r.status, 404);

    // A subdirectory script and info.
    let r = nginx.get("/sub/page.php");
    assert_eq!(r.body, "sub page /sub/page.php\n");
    let r = nginx.get("/info.php");
    assert!(
        r.body.contains("sapi=fpm-fcgi\n") && r.body.contains("opcache=1\n"),
        "{}",
        r.body
    );
}

#[test]
fn nginx_corral_and_php_fpm_give_the_same_pages() {
    if require_bin("nginx").is_none() || require_php_fpm().is_none() {
        return;
    }
    let site = Site::new();
    let www = site.www().display().to_string();
    let corral = Corral::start_site(&conf(), &site);
    let fpm = PhpFpm::start_site(&conf(), &site);
    let Some(n1) = Nginx::start(&server_block(&www, &sock_of(&corral))) else {
        return;
    };
    let Some(n2) = Nginx::start(&server_block(&www, &sock_of(&fpm))) else {
        return;
    };
    for path in [
        "/index.php?x=1",
        "/",
        "/sub/page.php",
        "/headers.php?mode=status",
        "/headers.php?mode=redirect",
        "/userini/index.php?get=precision,default_charset",
        "/flush.php",
        "/finish.php",
        "/getallheaders.php",
        "/nope.php",
        "/static.txt",
    ] {
        let a = n1.get(path);
        let b = n2.get(path);
        assert_eq!(a.status, b.status, "{path}");
        assert_eq!(a.header("Content-Type"), b.header("Content-Type"), "{path}");
        // getallheaders shows the Host header with nginx's port.
        let norm = |s: &str, port: u16| s.replace(&port.to_string(), "PORT");
        assert_same(path, &norm(&a.body, n1.port), &norm(&b.body, n2.port));
    }
    let a = n1.post_form("/index.php", "a=1&b=2");
    let b = n2.post_form("/index.php", "a=1&b=2");
    assert_same("POST /index.php", &a.body, &b.body);
}
