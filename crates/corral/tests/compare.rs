//! The same FastCGI requests sent to corral and to php-fpm8.2 serving the
//! same docroot with the same pool config: status, headers, body and the
//! relevant $_SERVER must be identical. Skips when php-fpm8.2 is absent.

mod common;

use common::*;

struct Pair {
    site: Site,
    corral: Server,
    fpm: Server,
}

fn pair(extra: &str) -> Option<Pair> {
    require_php_fpm()?;
    let site = Site::new();
    let conf = pool_conf(extra);
    let corral = Corral::start_site(&conf, &site);
    let fpm = PhpFpm::start_site(&conf, &site);
    Some(Pair { site, corral, fpm })
}

/// What is compared: status, headers (in order) and body.
fn render(r: &Reply) -> String {
    let mut out = format!("status: {}\n", r.status);
    for (k, v) in &r.headers {
        out.push_str(&format!("header: {k}: {v}\n"));
    }
    out.push_str("body:\n");
    // Process ids legitimately differ.
    for line in r.body.split_inclusive('\n') {
        match line.strip_prefix("pid=") {
            Some(_) => out.push_str("pid=(pid)\n"),
            None => out.push_str(line),
        }
    }
    out
}

impl Pair {
    fn www(&self) -> String {
        self.site.www().display().to_string()
    }

    fn script(&self, name: &str) -> String {
        self.site.script(name)
    }

    fn both(&self, what: &str, req: &Request) -> (Reply, Reply) {
        let a = self.corral.request(req);
        let b = self.fpm.request(req);
        assert_same(what, &render(&a), &render(&b));
        (a, b)
    }

    /// Sends every case to both and fails once at the end, listing every
    /// case that differed (so one difference does not hide the others).
    fn all_same(&self, cases: &[(&str, Request)]) -> Vec<(Reply, Reply)> {
        let mut out = Vec::new();
        let mut failures = Vec::new();
        for (what, req) in cases {
            let a = self.corral.request(req);
            let b = self.fpm.request(req);
            let (ra, rb) = (render(&a), render(&b));
            if ra != rb {
                failures.push(format!(
                    "== {what} (- corral, + php-fpm)\n{}",
                    line_diff(&ra, &rb)
                ));
            }
            out.push((a, b));
        }
        assert!(
            failures.is_empty(),
            "{} of {} cases differ from php-fpm:\n{}",
            failures.len(),
            cases.len(),
            failures.join("\n")
        );
        out
    }
}

#[test]
fn server_vars_match_php_fpm() {
    let Some(p) = pair("") else { return };
    let www = p.www();
    let server_php = p.script("server.php");
    let cases: Vec<(&str, Request)> = vec![
        (
            "plain GET with query and headers",
            Request::php(&server_php)
                .document_root(&www)
                .query("a=1&b=two&arr[]=x")
                .header("X-Custom", "v")
                .header("Accept-Language", "en"),
        ),
        (
            "nginx fastcgi_split_path_info with PATH_INFO",
            Request::php(&server_php)
                .document_root(&www)
                .param("PATH_INFO", "/foo/bar")
                .param("REQUEST_URI", "/server.php/foo/bar?x=1")
                .param("DOCUMENT_URI", "/server.php/foo/bar")
                .param("QUERY_STRING", "x=1"),
        ),
        (
            "nginx with PATH_INFO and PATH_TRANSLATED",
            Request::php(&server_php)
                .document_root(&www)
                .param("PATH_INFO", "/foo/bar")
                .param("PATH_TRANSLATED", format!("{www}/foo/bar")),
        ),
        (
            "SCRIPT_FILENAME with trailing path info, PATH_INFO sent",
            Request::php(&format!("{server_php}/foo/bar"))
                .document_root(&www)
                .param("PATH_INFO", "/foo/bar"),
        ),
        (
            "SCRIPT_FILENAME with trailing path info, no PATH_INFO",
            Request::php(&format!("{server_php}/foo/bar"))
                .document_root(&www)
                .param("SCRIPT_NAME", "/server.php/foo/bar"),
        ),
        (
            "Apache mod_proxy_fcgi",
            Request::php("/x.php")
                .param(
                    "SCRIPT_FILENAME",
                    format!("proxy:fcgi://127.0.0.1:9000{server_php}/pi?q=1"),
                )
                .param("SCRIPT_NAME", "/server.php/pi")
                .param("PATH_INFO", "/pi")
                .param("REQUEST_URI", "/server.php/pi?q=1")
                .param("QUERY_STRING", "q=1")
                .param("DOCUMENT_ROOT", &www),
        ),
        (
            "Apache ProxyPass with an encoded path (bug #74129)",
            Request::php("/x.php")
                .param(
                    "SCRIPT_FILENAME",
                    format!("proxy:fcgi://127.0.0.1:9000{server_php}/1%202"),
                )
                .param("SCRIPT_NAME", "/server.php/1 2")
                .param("REQUEST_URI", "/server.php/1%202")
                .param("DOCUMENT_ROOT", &www),
        ),
        (
            "PATH_TRANSLATED only (IIS style)",
            Request::new()
                .param("REQUEST_METHOD", "GET")
                .param("PATH_TRANSLATED", &server_php)
                .param("SCRIPT_NAME", "/server.php")
                .param("DOCUMENT_ROOT", &www),
        ),
        (
            "POST with body and Authorization",
            Request::php(&server_php)
                .document_root(&www)
                .method("POST")
                .header("Authorization", "Basic dXNlcjpwYXNz")
                .body("application/x-www-form-urlencoded", "k=v"),
        ),
        (
            "HEAD",
            Request::php(&server_php).document_root(&www).method("HEAD"),
        ),
    ];
    let replies = p.all_same(&cases);
    for ((what, _), (a, _)) in cases.iter().zip(&replies) {
        assert_eq!(a.status, 200, "{what}: {a:?}");
        if *what != "HEAD" {
            assert!(
                a.body.contains("\"FCGI_ROLE\": \"RESPONDER\""),
                "{what}: {}",
                a.body
            );
        }
    }
}

#[test]
fn error_pages_match_php_fpm() {
    let Some(p) = pair("") else { return };
    let www = p.www();
    let cases: Vec<(&str, Request, u16, &str, &str)> = vec![
        (
            "missing script",
            Request::php(&p.script("nope.php")).document_root(&www),
            404,
            "File not found.\n",
            "Primary script unknown",
        ),
        (
            "limit_extensions",
            Request::php(&p.script("plain.txt")).document_root(&www),
            403,
            "Access denied.\n",
            "security.limit_extensions",
        ),
        (
            "dot-dot segment",
            Request::php(&format!("{www}/../www/info.php")).document_root(&www),
            404,
            "File not found.\n",
            "Primary script unknown",
        ),
        (
            "directory",
            Request::php(&format!("{www}/sub/")).document_root(&www),
            404,
            "File not found.\n",
            "Primary script unknown",
        ),
        (
            "no SCRIPT_FILENAME",
            Request::new()
                .param("REQUEST_METHOD", "GET")
                .param("SCRIPT_NAME", "/x.php"),
            404,
            "File not found.\n",
            "Primary script unknown",
        ),
    ];
    for (what, req, status, body, stderr) in &cases {
        let (a, b) = p.both(what, req);
        assert_eq!(a.status, *status, "{what}");
        assert_eq!(a.body, *body, "{what}");
        assert!(
            b.stderr.contains(stderr),
            "(test check) php-fpm stderr for {what}: {:?}",
            b.stderr
        );
        assert!(
            a.stderr.contains(stderr),
            "{what}: corral FCGI_STDERR {:?} lacks {stderr:?}",
            a.stderr
        );
    }
}

#[test]
fn php_features_match_php_fpm() {
    let Some(p) = pair("pm.max_children = 1") else {
        return;
    };
    let www = p.www();
    let boundary = "xYzZY";
    let multipart = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"f\"\r\n\r\nfield\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"up\"; filename=\"a.txt\"\r\nContent-Type: text/plain\r\n\r\nuploaded bytes\r\n--{boundary}--\r\n"
    );
    let cases: Vec<(&str, Request)> = vec![
        (
            "info",
            Request::php(&p.script("info.php")).document_root(&www),
        ),
        (
            "index",
            Request::php(&p.script("index.php"))
                .document_root(&www)
                .query("z=1&a=2"),
        ),
        (
            "post",
            Request::php(&p.script("post.php"))
                .document_root(&www)
                .method("POST")
                .body("application/x-www-form-urlencoded", "a=1&b=%20x"),
        ),
        (
            "multipart",
            Request::php(&p.script("post.php"))
                .document_root(&www)
                .method("POST")
                .body(
                    &format!("multipart/form-data; boundary={boundary}"),
                    multipart,
                ),
        ),
        (
            "put",
            Request::php(&p.script("input.php"))
                .document_root(&www)
                .method("PUT")
                .body("text/plain", "raw body"),
        ),
        (
            "cookies",
            Request::php(&p.script("cookies.php")).header("Cookie", "x=1; y=%41"),
        ),
        (
            "headers status",
            Request::php(&p.script("headers.php")).query("mode=status"),
        ),
        (
            "headers code",
            Request::php(&p.script("headers.php")).query("mode=code"),
        ),
        (
            "redirect",
            Request::php(&p.script("headers.php")).query("mode=redirect"),
        ),
        (
            "getallheaders",
            Request::php(&p.script("getallheaders.php"))
                .header("X-A", "1")
                .header("X-Multi-Word-Name", "2")
                .body("text/plain", ""),
        ),
        (
            "getallheaders in the SAPI's order",
            Request::php(&p.script("getallheaders.php"))
                .query("order=sapi")
                .header("X-A", "1")
                .header("X-B", "2")
                .body("text/plain", "x"),
        ),
        (
            "user.ini",
            Request::php(&p.script("userini/index.php"))
                .document_root(&www)
                .query("get=precision,default_charset,memory_limit"),
        ),
        (
            "PHP_VALUE",
            Request::php(&p.script("ini.php"))
                .query("get=serialize_precision")
                .param("PHP_VALUE", "serialize_precision=4"),
        ),
        (
            "php-fpm's cgi INI entries, read and set",
            Request::php(&p.script("ini.php"))
                .query("set=cgi.force_redirect:0&get=cgi.force_redirect,cgi.redirect_status_env,cgi.fix_pathinfo"),
        ),
        (
            "functions php-fpm lacks and has",
            Request::php(&p.script("functions.php"))
                .query("names=chroot,pcntl_fork,pcntl_signal,fastcgi_finish_request,fpm_get_status,getallheaders"),
        ),
        ("env", Request::php(&p.script("envall.php"))),
        ("flush", Request::php(&p.script("flush.php"))),
        ("finish", Request::php(&p.script("finish.php"))),
    ];
    p.all_same(&cases);
}

#[test]
fn fatal_errors_match_php_fpm() {
    let Some(p) = pair(
        "pm.max_children = 1\nphp_admin_value[max_execution_time] = 1\nphp_admin_value[memory_limit] = 16M",
    ) else {
        return;
    };
    for script in ["busy.php", "memory.php"] {
        let req = Request::php(&p.script(script));
        let (a, b) = p.both(script, &req);
        assert_eq!(b.status, 500, "(test check) php-fpm on {script}");
        assert_eq!(a.status, 500);
        // FCGI_STDERR carries the same PHP message.
        let first = |s: &str| s.lines().next().unwrap_or_default().to_string();
        assert_same(
            &format!("{script} stderr"),
            &first(&a.stderr),
            &first(&b.stderr),
        );
    }
}

#[test]
fn get_values_match_php_fpm() {
    let Some(p) = pair("pm.max_children = 3") else {
        return;
    };
    let names = ["FCGI_MAX_CONNS", "FCGI_MAX_REQS", "FCGI_MPXS_CONNS"];
    let ask = |s: &Server| {
        let mut c = Client::new(s.listen().connect().unwrap());
        c.get_values(&names).expect("FCGI_GET_VALUES")
    };
    let (a, b) = (ask(&p.corral), ask(&p.fpm));
    // php-fpm answers only FCGI_MPXS_CONNS; answering the other two as
    // well is allowed by the FastCGI spec, as long as the values make sense.
    assert_eq!(
        a.get_str("FCGI_MPXS_CONNS"),
        b.get_str("FCGI_MPXS_CONNS"),
        "{a:?} vs {b:?}"
    );
    for n in ["FCGI_MAX_CONNS", "FCGI_MAX_REQS"] {
        if let Some(v) = a.get_str(n) {
            assert!(
                v.parse::<u32>().map(|v| v > 0).unwrap_or(false),
                "{n}={v:?}"
            );
        }
    }
}
