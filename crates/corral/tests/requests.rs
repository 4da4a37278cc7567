//! Requests through corral: what PHP sees and what the client gets back.
//! Each test starts its own corral on a temp dir with a copy of tests/php/.

mod common;

use common::*;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use corral_fastcgi::RecordType;

fn one_worker(extra: &str) -> String {
    pool_conf(&format!("pm.max_children = 1\n{extra}"))
}

#[test]
fn sapi_is_fpm_fcgi_with_opcache() {
    let s = Corral::start(&pool_conf(""));
    let r = s.get("info.php", "");
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.kv("sapi").as_deref(), Some("fpm-fcgi"), "{}", r.body);
    assert_eq!(
        r.kv("opcache").as_deref(),
        Some("1"),
        "opcache_get_status()['opcache_enabled'] must be true: {}",
        r.body
    );
    assert_eq!(
        r.kv("version").as_deref().map(|v| v.starts_with("8.2.")),
        Some(true)
    );
    if is_root() {
        assert_eq!(
            r.kv("uid").and_then(|u| u.parse().ok()),
            uid_of("nobody"),
            "the pool's PHP must run as user=nobody"
        );
    }
    assert_eq!(
        r.header("Content-Type"),
        Some("text/plain;charset=UTF-8"),
        "header('Content-Type: text/plain') gets PHP's default charset appended"
    );
}

#[test]
fn default_headers_like_php_fpm() {
    let s = Corral::start(&pool_conf(""));
    let r = s.get("index.php", "");
    assert_eq!(r.status, 200);
    assert!(r.body.starts_with("Hello from fpm-fcgi\n"), "{}", r.body);
    // The Debian php.ini has expose_php = Off? Then no X-Powered-By; either
    // way corral must agree with php.ini, so just check the charset default.
    assert_eq!(r.header("Content-type"), Some("text/plain;charset=UTF-8"));
    // An empty script still answers with the default content type.
    let r = s.get("ini.php", "");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("Content-type"), Some("text/plain;charset=UTF-8"));
}

#[test]
fn nginx_style_path_info() {
    let s = Corral::start(&pool_conf(""));
    let www = s.www().display().to_string();
    let req = Request::php(&s.script("server.php"))
        .document_root(&www)
        .param("PATH_INFO", "/foo/bar")
        .param("REQUEST_URI", "/server.php/foo/bar?x=1")
        .param("QUERY_STRING", "x=1");
    let r = s.request(&req);
    assert_eq!(r.status, 200, "{r:?}");
    for want in [
        format!("\"SCRIPT_FILENAME\": \"{www}/server.php\""),
        "\"SCRIPT_NAME\": \"/server.php\"".to_string(),
        "\"PATH_INFO\": \"/foo/bar\"".to_string(),
        "\"PHP_SELF\": \"/server.php/foo/bar\"".to_string(),
        "\"REQUEST_METHOD\": \"GET\"".to_string(),
        "\"QUERY_STRING\": \"x=1\"".to_string(),
        "\"FCGI_ROLE\": \"RESPONDER\"".to_string(),
        "\"HTTP_HOST\": \"localhost\"".to_string(),
        "\"x\": \"1\"".to_string(),
    ] {
        assert!(r.body.contains(&want), "missing {want} in\n{}", r.body);
    }
    assert!(
        !r.body.contains("\"PATH_TRANSLATED\""),
        "nginx-style input without PATH_TRANSLATED leaves it unset (php-fpm): {}",
        r.body
    );
}

#[test]
fn script_filename_with_trailing_path_info() {
    let s = Corral::start(&pool_conf(""));
    let www = s.www().display().to_string();
    let req = Request::php(&format!("{www}/server.php/foo/bar"))
        .document_root(&www)
        .param("PATH_INFO", "/foo/bar");
    let r = s.request(&req);
    assert_eq!(r.status, 200, "fix_pathinfo must find server.php: {r:?}");
    for want in [
        format!("\"SCRIPT_FILENAME\": \"{www}/server.php\""),
        format!("\"ORIG_SCRIPT_FILENAME\": \"{www}/server.php/foo/bar\""),
        "\"PATH_INFO\": \"/foo/bar\"".to_string(),
        // php-fpm keeps SCRIPT_NAME as sent when PATH_INFO did not change,
        // so PHP_SELF repeats the path info (observed with php-fpm8.2).
        "\"SCRIPT_NAME\": \"/server.php/foo/bar\"".to_string(),
        "\"PHP_SELF\": \"/server.php/foo/bar/foo/bar\"".to_string(),
        format!("\"PATH_TRANSLATED\": \"{www}/foo/bar\""),
    ] {
        assert!(r.body.contains(&want), "missing {want} in\n{}", r.body);
    }
}

#[test]
fn apache_proxy_fcgi_prefix() {
    let s = Corral::start(&pool_conf(""));
    let www = s.www().display().to_string();
    let req = Request::php("/x.php")
        .param(
            "SCRIPT_FILENAME",
            format!("proxy:fcgi://127.0.0.1:9000{www}/server.php/pi?q=1"),
        )
        .param("SCRIPT_NAME", "/server.php/pi")
        .param("REQUEST_URI", "/server.php/pi?q=1")
        .param("QUERY_STRING", "q=1")
        .param("DOCUMENT_ROOT", &www);
    let r = s.request(&req);
    assert_eq!(r.status, 200, "{r:?}");
    for want in [
        format!("\"SCRIPT_FILENAME\": \"{www}/server.php\""),
        "\"PATH_INFO\": \"/pi\"".to_string(),
        "\"SCRIPT_NAME\": \"/server.php\"".to_string(),
        format!("\"PATH_TRANSLATED\": \"{www}/pi\""),
        "\"q\": \"1\"".to_string(),
    ] {
        assert!(r.body.contains(&want), "missing {want} in\n{}", r.body);
    }
}

/// Apache's ProxyPass sends the path encoded in SCRIPT_FILENAME and
/// decoded in SCRIPT_NAME (bug #74129): php-fpm 8.2 matches them decoded
/// to trim SCRIPT_NAME but leaves PATH_INFO, and so PHP_SELF, encoded.
#[test]
fn apache_proxy_pass_leaves_an_encoded_path_info_encoded() {
    let s = Corral::start(&pool_conf(""));
    let www = s.www().display().to_string();
    let req = Request::php("/x.php")
        .param(
            "SCRIPT_FILENAME",
            format!("proxy:fcgi://127.0.0.1:9000{www}/server.php/a%20b"),
        )
        .param("SCRIPT_NAME", "/server.php/a b")
        .param("REQUEST_URI", "/server.php/a%20b")
        .param("DOCUMENT_ROOT", &www);
    let r = s.request(&req);
    assert_eq!(r.status, 200, "{r:?}");
    for want in [
        format!("\"SCRIPT_FILENAME\": \"{www}/server.php\""),
        "\"PATH_INFO\": \"/a%20b\"".to_string(),
        "\"SCRIPT_NAME\": \"/server.php\"".to_string(),
        "\"ORIG_SCRIPT_NAME\": \"/server.php/a b\"".to_string(),
        "\"PHP_SELF\": \"/server.php/a%20b\"".to_string(),
        format!("\"PATH_TRANSLATED\": \"{www}/a%20b\""),
    ] {
        assert!(r.body.contains(&want), "missing {want} in\n{}", r.body);
    }
}

#[test]
fn missing_script_is_404_primary_script_unknown() {
    let s = Corral::start(&pool_conf(""));
    let r = s.get("no-such-file.php", "");
    assert_eq!(r.status, 404, "{r:?}");
    assert_eq!(r.body, "File not found.\n");
    assert!(
        r.stderr.contains("Primary script unknown"),
        "FCGI_STDERR should say \"Primary script unknown\" like php-fpm, got {:?}",
        r.stderr
    );
}

#[test]
fn limit_extensions_denies_other_files() {
    let s = Corral::start(&pool_conf(""));
    let r = s.get("plain.txt", "");
    assert_eq!(r.status, 403, "{r:?}");
    assert_eq!(r.body, "Access denied.\n");
    assert!(
        r.stderr.contains("security.limit_extensions"),
        "FCGI_STDERR should explain the denial: {:?}",
        r.stderr
    );
    // And a configured list is honoured: .txt allowed, .php not.
    let s = Corral::start(&pool_conf("security.limit_extensions = .txt"));
    let r = s.get("static.txt", "");
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body, "static file\n");
    let r = s.get("info.php", "");
    assert_eq!(r.status, 403, "{r:?}");
}

#[test]
fn dotdot_path_is_404() {
    let s = Corral::start(&pool_conf(""));
    let www = s.www().display().to_string();
    let req = Request::php(&format!("{www}/../www/info.php")).document_root(&www);
    let r = s.request(&req);
    assert_eq!(r.status, 404, "a `..` segment must be refused: {r:?}");
    assert_eq!(r.body, "File not found.\n");
    // A directory is not a script either.
    let req = Request::php(&format!("{www}/sub/")).document_root(&www);
    let r = s.request(&req);
    assert_eq!(r.status, 404, "{r:?}");
}

#[test]
fn post_urlencoded() {
    let s = Corral::start(&pool_conf(""));
    let req = Request::php(&s.script("post.php")).method("POST").body(
        "application/x-www-form-urlencoded",
        "a=1&b=hello+world&arr%5B%5D=x&arr%5B%5D=y&enc=%C3%A9%26",
    );
    let r = s.request(&req);
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(
        r.body,
        "method=POST\npost[a]=1\npost[arr]=[\"x\",\"y\"]\npost[b]=hello world\npost[enc]=\u{e9}&\n"
    );
}

fn multipart(boundary: &str, parts: &[(&str, Option<&str>, &[u8])]) -> Vec<u8> {
    let mut body = Vec::new();
    for (name, filename, content) in parts {
        body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        match filename {
            Some(f) => body.extend_from_slice(
                format!(
                    "Content-Disposition: form-data; name=\"{name}\"; filename=\"{f}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
                )
                .as_bytes(),
            ),
            None => body.extend_from_slice(
                format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n").as_bytes(),
            ),
        }
        body.extend_from_slice(content);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    body
}

#[test]
fn multipart_upload() {
    let s = Corral::start(&pool_conf(""));
    let boundary = "----corralboundary7MA4YWxk";
    let content = b"file content\nline2";
    let body = multipart(
        boundary,
        &[
            ("field", None, b"value 1"),
            ("up", Some("hello.txt"), content),
        ],
    );
    let req = Request::php(&s.script("post.php"))
        .method("POST")
        .body(&format!("multipart/form-data; boundary={boundary}"), body);
    let r = s.request(&req);
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(
        r.body,
        "method=POST\npost[field]=value 1\nfile[up].name=hello.txt\nfile[up].error=0\nfile[up].size=18\nfile[up].content=file content\nline2\n"
    );
}

#[test]
fn large_multipart_upload_spans_many_records() {
    let s = Corral::start(&pool_conf(""));
    let boundary = "b0undary";
    let content: Vec<u8> = (0..300_000u32).map(|i| b'a' + (i % 26) as u8).collect();
    let body = multipart(boundary, &[("big", Some("big.bin"), &content)]);
    let req = Request::php(&s.script("post.php"))
        .method("POST")
        .body(&format!("multipart/form-data; boundary={boundary}"), body);
    let r = s.request(&req);
    assert_eq!(r.status, 200);
    assert!(
        r.body.contains("file[big].error=1\n") || r.body.contains("file[big].size=300000\n"),
        "either upload_max_filesize (2M) allows it (size 300000) — got {}",
        &r.body[..r.body.len().min(300)]
    );
    assert!(
        r.body.contains("file[big].size=300000\n"),
        "{}",
        &r.body[..r.body.len().min(300)]
    );
    let expected = format!(
        "file[big].content={}\n",
        String::from_utf8(content).unwrap()
    );
    assert!(r.body.ends_with(&expected), "uploaded content differs");
}

#[test]
fn php_input_for_put() {
    let s = Corral::start(&pool_conf(""));
    let body: Vec<u8> = (0..200_000u32).map(|i| b'0' + (i % 10) as u8).collect();
    let req = Request::php(&s.script("input.php"))
        .method("PUT")
        .body("application/octet-stream", body.clone());
    let r = s.request(&req);
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.kv("method").as_deref(), Some("PUT"));
    assert_eq!(r.kv("length").as_deref(), Some("200000"));
    let echoed = r
        .body
        .split_once("body=")
        .map(|(_, b)| b)
        .unwrap_or_default();
    assert!(
        echoed.as_bytes() == body.as_slice(),
        "php://input differs from what was sent"
    );
    // Empty body.
    let req = Request::php(&s.script("input.php")).method("PUT");
    let r = s.request(&req);
    assert_eq!(r.kv("length").as_deref(), Some("0"));
}

#[test]
fn cookies_in_and_out() {
    let s = Corral::start(&pool_conf(""));
    let req = Request::php(&s.script("cookies.php")).header("Cookie", "a=1; b=two%20words; c=3");
    let r = s.request(&req);
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body, "a=1\nb=two words\nc=3\n");
    assert_eq!(r.header_all("Set-Cookie"), vec!["out=v1", "out2=v2"]);
}

#[test]
fn response_headers_and_status() {
    let s = Corral::start(&pool_conf(""));
    let r = s.get("headers.php", "");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("X-Corral-Test"), Some("yes"));
    assert_eq!(
        r.header("Content-Type"),
        Some("text/plain; charset=us-ascii")
    );
    assert_eq!(r.body, "code=200\n");

    let r = s.get("headers.php", "mode=status");
    assert_eq!(r.status, 404, "Status: header: {r:?}");
    assert_eq!(r.header("X-Corral-Test"), Some("yes"));

    let r = s.get("headers.php", "mode=code");
    assert_eq!(r.status, 404, "http_response_code(404): {r:?}");
    assert_eq!(r.body, "code=404\n");

    let r = s.get("headers.php", "mode=redirect");
    assert_eq!(r.status, 302, "{r:?}");
    assert_eq!(r.header("Location"), Some("/elsewhere"));

    // The status must be reset between requests on the same worker.
    let s1 = Corral::start(&one_worker(""));
    assert_eq!(s1.get("headers.php", "mode=code").status, 404);
    assert_eq!(
        s1.get("headers.php", "").status,
        200,
        "status leaked into the next request"
    );
}

#[test]
fn flush_sends_output_early() {
    let s = Corral::start(&pool_conf(""));
    let mut client = Client::new(s.listen().connect().unwrap());
    let req = Request::php(&s.script("flush.php"));
    client.send_request(&req).unwrap();
    let mut first_chunk = None;
    let mut stdout = Vec::new();
    loop {
        let rec = client.next_record().unwrap();
        match rec.record_type {
            RecordType::Stdout => {
                if first_chunk.is_none() && !rec.content.is_empty() {
                    first_chunk = Some(String::from_utf8_lossy(&rec.content).into_owned());
                }
                stdout.extend_from_slice(&rec.content);
            }
            RecordType::EndRequest => break,
            _ => {}
        }
    }
    let cgi = corral_fastcgi::parse_response(&stdout).unwrap();
    assert_eq!(String::from_utf8_lossy(&cgi.body), "part1\npart2\n");
    let first = first_chunk.unwrap();
    assert!(
        first.contains("part1") && !first.contains("part2"),
        "flush() must send part1 in its own FCGI_STDOUT before the script sleeps; first record: {first:?}"
    );
}

#[test]
fn fastcgi_finish_request_answers_early() {
    let s = Corral::start(&pool_conf(""));
    let marker_dir = temp_dir("marker");
    fs::set_permissions(marker_dir.path(), fs::Permissions::from_mode(0o777)).unwrap();
    let marker = marker_dir.path().join("done");
    let start = Instant::now();
    let r = s.get(
        "finish.php",
        &format!("sleep_ms=3000&marker={}", marker.display()),
    );
    let took = start.elapsed();
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(
        r.body, "before-finish\n",
        "output after fastcgi_finish_request() must be dropped"
    );
    assert!(
        took < Duration::from_millis(2500),
        "response took {took:?}: fastcgi_finish_request() must end the request before the script finishes"
    );
    assert!(!marker.exists(), "script should still be sleeping");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !marker.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        fs::read_to_string(&marker).ok().as_deref(),
        Some("finished"),
        "the script must run on after fastcgi_finish_request() (which returns true)"
    );
}

#[test]
fn getallheaders_returns_request_headers() {
    let s = Corral::start(&pool_conf(""));
    let req = Request::php(&s.script("getallheaders.php"))
        .header("X-Custom-Header", "abc")
        .header("User-Agent", "corral-test/1");
    let r = s.request(&req);
    assert_eq!(r.status, 200);
    for want in [
        "Host: localhost",
        "X-Custom-Header: abc",
        "User-Agent: corral-test/1",
    ] {
        assert!(
            r.body.lines().any(|l| l == want),
            "missing {want:?} in\n{}",
            r.body
        );
    }
}

#[test]
fn user_ini_in_docroot_is_applied() {
    let s = Corral::start(&pool_conf(""));
    let r = s.get(
        "userini/index.php",
        "get=precision,default_charset,memory_limit",
    );
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(
        r.kv("precision").as_deref(),
        Some("7"),
        ".user.ini not applied: {}",
        r.body
    );
    assert_eq!(
        r.kv("default_charset").as_deref(),
        Some("ISO-8859-1"),
        "{}",
        r.body
    );
    assert_eq!(r.kv("memory_limit").as_deref(), Some("77M"), "{}", r.body);
    // Not outside its directory.
    let r = s.get("ini.php", "get=precision");
    assert_eq!(r.kv("precision").as_deref(), Some("14"), "{}", r.body);
}

#[test]
fn user_ini_cannot_override_php_admin_value() {
    let s = Corral::start(&pool_conf(
        "php_admin_value[memory_limit] = 64M\nphp_value[precision] = 3",
    ));
    let r = s.get("userini/index.php", "get=precision,memory_limit");
    assert_eq!(r.kv("memory_limit").as_deref(), Some("64M"), "{}", r.body);
    assert_eq!(
        r.kv("precision").as_deref(),
        Some("7"),
        ".user.ini overrides php_value: {}",
        r.body
    );
}

#[test]
fn php_value_and_php_admin_value_params() {
    let s = Corral::start(&pool_conf(""));
    let req = Request::php(&s.script("ini.php"))
        .query("get=precision,memory_limit,serialize_precision")
        .param("PHP_VALUE", "precision=9\nserialize_precision=5")
        .param("PHP_ADMIN_VALUE", "memory_limit=33M");
    let r = s.request(&req);
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.kv("precision").as_deref(), Some("9"), "{}", r.body);
    assert_eq!(
        r.kv("serialize_precision").as_deref(),
        Some("5"),
        "{}",
        r.body
    );
    assert_eq!(r.kv("memory_limit").as_deref(), Some("33M"), "{}", r.body);
}

/// php-fpm keeps PHP_VALUE changes in the worker for later requests (a
/// known surprise); corral's design says per-request values must not leak.
#[test]
fn php_value_param_does_not_leak_into_next_request() {
    if std::env::var("CORRAL_TEST_AGAINST").as_deref() == Ok("php-fpm") {
        skip("php-fpm keeps PHP_VALUE in the worker; corral does not");
        return;
    }
    let s = Corral::start(&one_worker(""));
    let req = Request::php(&s.script("ini.php"))
        .query("get=precision")
        .param("PHP_VALUE", "precision=9");
    assert_eq!(s.request(&req).kv("precision").as_deref(), Some("9"));
    let r = s.get("ini.php", "get=precision");
    assert_eq!(
        r.kv("precision").as_deref(),
        Some("14"),
        "PHP_VALUE leaked: {}",
        r.body
    );
}

#[test]
fn php_admin_value_cannot_be_changed_by_ini_set() {
    let s = Corral::start(&pool_conf(
        "php_admin_value[precision] = 11\nphp_value[serialize_precision] = 5\nphp_admin_flag[html_errors] = off",
    ));
    let r = s.get("ini.php", "set=precision:3&get=precision");
    assert_eq!(r.status, 200, "{r:?}");
    assert!(
        r.body.contains("set precision=FAILED"),
        "ini_set must fail on php_admin_value: {}",
        r.body
    );
    assert_eq!(r.kv("precision").as_deref(), Some("11"), "{}", r.body);
    let r = s.get(
        "ini.php",
        "set=serialize_precision:7&get=serialize_precision",
    );
    assert!(
        r.body.contains("set serialize_precision=ok"),
        "php_value stays changeable: {}",
        r.body
    );
    assert_eq!(
        r.kv("serialize_precision").as_deref(),
        Some("7"),
        "{}",
        r.body
    );
    let r = s.get("ini.php", "get=serialize_precision,html_errors");
    assert_eq!(
        r.kv("serialize_precision").as_deref(),
        Some("5"),
        "ini_set leaked into the next request: {}",
        r.body
    );
    assert_eq!(
        r.kv("html_errors").as_deref(),
        Some("0"),
        "php_admin_flag off is stored as \"0\": {}",
        r.body
    );
}

#[test]
fn env_and_clear_env() {
    let s = Corral::start(&pool_conf(
        "env[CORRAL_A] = hello world\nenv[CORRAL_FROM_MASTER] = $CORRAL_TEST_MARKER",
    ));
    let r = s.get(
        "env.php",
        "names=CORRAL_A,CORRAL_FROM_MASTER,CORRAL_TEST_MARKER,USER",
    );
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(
        r.kv("CORRAL_A").as_deref(),
        Some("hello world"),
        "{}",
        r.body
    );
    assert_eq!(
        r.kv("CORRAL_FROM_MASTER").as_deref(),
        Some("from-master"),
        "env[X] = $VAR takes the master's variable: {}",
        r.body
    );
    assert_eq!(
        r.kv("CORRAL_TEST_MARKER").as_deref(),
        Some("(unset)"),
        "clear_env (default yes) must hide the master's environment: {}",
        r.body
    );
    if is_root() {
        assert_eq!(r.kv("USER").as_deref(), Some("nobody"), "{}", r.body);
    }

    let s = Corral::start(&pool_conf("clear_env = no"));
    let r = s.get("env.php", "names=CORRAL_TEST_MARKER");
    assert_eq!(
        r.kv("CORRAL_TEST_MARKER").as_deref(),
        Some("from-master"),
        "clear_env = no keeps the environment: {}",
        r.body
    );
}

#[test]
fn max_execution_time_gives_500_and_worker_recovers() {
    let s = Corral::start(&one_worker("php_admin_value[max_execution_time] = 1"));
    let start = Instant::now();
    let r = s.get("busy.php", "");
    assert!(
        start.elapsed() < Duration::from_secs(15),
        "took {:?}",
        start.elapsed()
    );
    assert_eq!(r.status, 500, "{r:?}");
    assert!(
        r.stderr
            .contains("Maximum execution time of 1 second exceeded"),
        "the fatal error goes to FCGI_STDERR: {:?}",
        r.stderr
    );
    for _ in 0..3 {
        let r = s.get("info.php", "");
        assert_eq!(
            r.status, 200,
            "the single worker must serve the next request: {r:?}"
        );
        assert_eq!(r.kv("sapi").as_deref(), Some("fpm-fcgi"));
    }
}

#[test]
fn memory_limit_gives_500_and_worker_recovers() {
    let s = Corral::start(&one_worker("php_admin_value[memory_limit] = 16M"));
    let r = s.get("memory.php", "");
    assert_eq!(r.status, 500, "{r:?}");
    assert!(
        r.stderr
            .contains("Allowed memory size of 16777216 bytes exhausted"),
        "{:?}",
        r.stderr
    );
    let pid = s.get("pid.php", "").body;
    for _ in 0..3 {
        let r = s.get("pid.php", "");
        assert_eq!(r.status, 200, "{r:?}");
        assert_eq!(r.body, pid, "the same worker keeps serving");
    }
    let r = s.get("ini.php", "get=memory_limit");
    assert_eq!(r.kv("memory_limit").as_deref(), Some("16M"));
}

#[test]
fn keep_conn_serves_several_requests_on_one_connection() {
    let s = Corral::start(&pool_conf("pm.max_children = 3"));
    let mut client = Client::new(s.listen().connect().unwrap());
    let mut pids = Vec::new();
    for id in 1..=5u16 {
        let req = Request::php(&s.script("pid.php")).id(id).keep_conn(true);
        let r = Reply::from_response(client.request(&req).unwrap_or_else(|e| {
            panic!(
                "request {id} on a kept connection failed: {e}\n{}",
                s.log.text()
            )
        }));
        assert_eq!(r.status, 200);
        pids.push(r.body);
    }
    assert!(
        pids.windows(2).all(|w| w[0] == w[1]),
        "one connection, one worker: {pids:?}"
    );
    // Without keep_conn the application closes after the response.
    let req = Request::php(&s.script("pid.php")).id(6).keep_conn(false);
    let r = client.request(&req).expect("last request");
    assert_eq!(r.app_status, 0);
    let after = client.next_record();
    assert!(
        after.is_err(),
        "connection must be closed after a request without FCGI_KEEP_CONN: {after:?}"
    );
}

/// A request on a kept connection, answered within the test's I/O timeout.
fn kept_request(s: &Server, client: &mut Client<Conn>, id: u16, what: &str) -> Reply {
    let req = Request::php(&s.script("pid.php")).id(id).keep_conn(true);
    let raw = client
        .request(&req)
        .unwrap_or_else(|e| panic!("{what}: {e}\n{}", s.log.text()));
    Reply::from_response(raw)
}

#[test]
fn a_kept_connection_does_not_tie_up_its_worker() {
    // One worker. A php-fpm worker would read only the kept connection
    // until the web server closed it, and the second connection would wait
    // in the backlog (nginx: until fastcgi_read_timeout).
    let s = Corral::start(&pool_conf("pm = static\npm.max_children = 1"));
    let mut kept = Client::new(s.listen().connect().unwrap());
    let pid = kept_request(&s, &mut kept, 1, "first request, kept").body;

    let other = request_timeout(
        s.listen(),
        &Request::php(&s.script("pid.php")),
        Duration::from_secs(5),
    )
    .unwrap_or_else(|e| panic!("a new connection while one is kept: {e}\n{}", s.log.text()));
    assert_eq!(other.status, 200);
    assert_eq!(other.body, pid, "the one worker served it");

    let again = kept_request(&s, &mut kept, 2, "the kept connection afterwards");
    assert_eq!(again.status, 200);
    assert_eq!(again.body, pid);
}

#[test]
fn a_worker_keeps_a_bounded_number_of_connections() {
    // corral_worker::waiter::MAX_KEPT: one more is closed after its response.
    const MAX_KEPT: usize = 8;
    let s = Corral::start(&pool_conf("pm = static\npm.max_children = 1"));
    let mut clients: Vec<Client<Conn>> = Vec::new();
    for i in 0..=MAX_KEPT {
        let mut c = Client::new(s.listen().connect().unwrap());
        let r = kept_request(&s, &mut c, 1, &format!("connection {i}"));
        assert_eq!(r.status, 200);
        clients.push(c);
    }
    let mut extra = clients.pop().unwrap();
    let closed = extra.next_record();
    assert!(
        closed.is_err(),
        "the connection over the bound must be closed after its response: {closed:?}"
    );
    // The ones it kept still serve, in any order.
    for (i, c) in clients.iter_mut().enumerate().rev() {
        let r = kept_request(&s, c, 2, &format!("kept connection {i}, second request"));
        assert_eq!(r.status, 200);
    }
}

#[test]
fn get_values_answered() {
    let s = Corral::start(&pool_conf("pm.max_children = 3"));
    let mut client = Client::new(s.listen().connect().unwrap());
    let values = client
        .get_values(&["FCGI_MAX_CONNS", "FCGI_MAX_REQS", "FCGI_MPXS_CONNS"])
        .expect("FCGI_GET_VALUES must be answered with FCGI_GET_VALUES_RESULT");
    // php-fpm answers only FCGI_MPXS_CONNS (compare.rs checks the rest).
    assert_eq!(values.get_str("FCGI_MPXS_CONNS"), Some("0"), "{values:?}");
    // The pool still works afterwards.
    assert_eq!(s.get("info.php", "").status, 200);
}

#[test]
fn unknown_role_is_rejected() {
    let s = Corral::start(&one_worker(""));
    // php-fpm runs RESPONDER, AUTHORIZER and FILTER alike; other roles
    // get the connection closed.
    let req = Request::php(&s.script("info.php")).role(corral_fastcgi::Role::Other(9));
    let mut client = Client::new(s.listen().connect().unwrap());
    if let Ok(resp) = client.request(&req) {
        assert_eq!(
            resp.protocol_status,
            corral_fastcgi::protocol_status::UNKNOWN_ROLE,
            "role 9 must end with FCGI_UNKNOWN_ROLE or a closed connection, not run PHP: {resp:?}"
        );
        assert!(resp.stdout.is_empty(), "{resp:?}");
    }
    drop(client);
    assert_eq!(s.get("info.php", "").status, 200);
}

#[test]
fn ping_path() {
    let s = Corral::start(&pool_conf("ping.path = /ping\nping.response = alive"));
    let req = Request::php(&s.script("ping")).param("SCRIPT_NAME", "/ping");
    let r = s.request(&req);
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body, "alive");
    assert_eq!(r.header("Content-type"), Some("text/plain;charset=UTF-8"));
    assert_eq!(
        r.header("Cache-Control"),
        Some("no-cache, no-store, must-revalidate, max-age=0")
    );
}

/// getallheaders() in php-fpm's order: its params hash lists the last
/// param to arrive first, so request headers come newest first, before
/// the ones nginx sends ahead of them.
#[test]
fn getallheaders_lists_the_last_param_first() {
    let s = Corral::start(&pool_conf(""));
    let req = Request::php(&s.script("getallheaders.php"))
        .query("order=sapi")
        .header("X-First", "1")
        .header("X-Second", "2");
    let r = s.request(&req);
    assert_eq!(r.status, 200, "{r:?}");
    let lines: Vec<&str> = r.body.lines().collect();
    assert_eq!(
        lines,
        [
            "X-Second: 2",
            "X-First: 1",
            "Host: localhost",
            "Content-Length: ",
            "Content-Type: "
        ]
    );
}
