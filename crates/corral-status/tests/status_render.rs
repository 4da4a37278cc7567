//! The status page against real php-fpm 8.2.36 output (captured in UTC).

mod common;

use common::{check_fixture, response, set_tz};
use corral_status::render::{
    escape_html, escape_json, fpm_get_status_json, parse_query, render, Format, PoolStatus,
    ProcStatus,
};

fn utc() {
    set_tz("UTC");
}

#[test]
fn text_matches_php_fpm() {
    utc();
    let (_, procs) = check_fixture("text.txt", Format::Text, false);
    assert!(procs.is_empty());
}

#[test]
fn text_full_matches_php_fpm() {
    utc();
    let (_, procs) = check_fixture("text_full.txt", Format::Text, true);
    assert_eq!(procs.len(), 4);
}

#[test]
fn json_matches_php_fpm() {
    utc();
    check_fixture("json.txt", Format::Json, false);
}

#[test]
fn json_full_matches_php_fpm() {
    utc();
    let (_, procs) = check_fixture("json_full.txt", Format::Json, true);
    assert_eq!(procs.len(), 4);
    // The fixture holds a request with a control character, an emoji,
    // `/`, `"` and `\` in it, and a user with `<`, `&` and `é`.
    assert!(procs
        .iter()
        .any(|p| p.request_uri.contains('\u{1}') && p.user.contains('é')));
}

#[test]
fn xml_matches_php_fpm() {
    utc();
    check_fixture("xml.txt", Format::Xml, false);
}

#[test]
fn xml_full_matches_php_fpm() {
    utc();
    let (_, procs) = check_fixture("xml_full.txt", Format::Xml, true);
    assert_eq!(procs.len(), 4);
}

#[test]
fn html_matches_php_fpm() {
    utc();
    check_fixture("html.txt", Format::Html, false);
}

#[test]
fn html_full_matches_php_fpm() {
    utc();
    let (_, procs) = check_fixture("html_full.txt", Format::Html, true);
    assert_eq!(procs.len(), 4);
}

#[test]
fn openmetrics_matches_php_fpm() {
    utc();
    check_fixture("openmetrics.txt", Format::OpenMetrics, false);
}

#[test]
fn openmetrics_ignores_full() {
    utc();
    // php-fpm's ?openmetrics&full output has no per-process part.
    check_fixture("openmetrics_full.txt", Format::OpenMetrics, true);
    let pool = common::parse_openmetrics(&response("openmetrics_full.txt").body);
    let with_procs = render(&pool, &[sample_proc()], Format::OpenMetrics, true);
    let without = render(&pool, &[], Format::OpenMetrics, false);
    assert_eq!(with_procs, without);
    assert!(without.body.ends_with("# EOF\n"));
    // The TYPE-before-HELP quirk of phpfpm_listen_queue_length.
    assert!(without.body.contains(
        "phpfpm_max_listen_queue 0\n# TYPE phpfpm_listen_queue_length gauge\n# HELP phpfpm_listen_queue_length "
    ));
}

/// A control in the query shows up as U+FFFD in XML and HTML (php-fpm's
/// htmlspecialchars() with ENT_DISALLOWED), raw in text, `\u0001` in JSON.
#[test]
fn control_characters_in_fixtures() {
    let text = response("text_full.txt").body;
    let json = response("json_full.txt").body;
    let xml = response("xml_full.txt").body;
    let html = response("html_full.txt").body;
    assert!(text.contains("&amp;'é\u{1}\t😀\\end\n"));
    assert!(json.contains("&amp;'\\u00e9\\u0001\\t\\ud83d\\ude00\\\\end\""));
    assert!(xml.contains("&amp;amp;'é\u{fffd}\t😀\\end</request-uri>"));
    assert!(html.contains("&amp;amp;'é\u{fffd}\t😀\\end</td>"));
}

fn sample_pool() -> PoolStatus {
    PoolStatus {
        pool: "www".into(),
        process_manager: "dynamic".into(),
        start_time: 1_700_000_000,
        start_since: 42,
        accepted_conn: 7,
        listen_queue: 1,
        max_listen_queue: 2,
        listen_queue_len: 4096,
        idle_processes: 1,
        active_processes: 1,
        total_processes: 2,
        max_active_processes: 2,
        max_children_reached: 3,
        slow_requests: 4,
    }
}

fn sample_proc() -> ProcStatus {
    ProcStatus {
        pid: 1234,
        state: "Running".into(),
        start_time: 1_700_000_000,
        start_since: 42,
        requests: 3,
        request_duration: 1500,
        request_method: "GET".into(),
        request_uri: "/a&b<c>\"d'/e.php?x=1&y=</z>\"'".into(),
        content_length: 0,
        user: String::new(),
        script: "/srv/a&b<c>\"d'/e.php".into(),
        last_request_cpu: 12.345,
        last_request_memory: 2_097_152,
    }
}

#[test]
fn escaping_of_uri_per_format() {
    utc();
    let pool = sample_pool();
    let procs = [sample_proc()];
    let body = |f| render(&pool, &procs, f, true).body;

    let text = body(Format::Text);
    assert!(text.contains("request URI:          /a&b<c>\"d'/e.php?x=1&y=</z>\"'\n"));
    assert!(text.contains("script:               /srv/a&b<c>\"d'/e.php\n"));
    assert!(text.contains("user:                 -\n"));

    let json = body(Format::Json);
    assert!(json.contains(r#""request uri":"\/a&b<c>\"d'\/e.php?x=1&y=<\/z>\"'","#));
    assert!(json.contains(r#""script":"\/srv\/a&b<c>\"d'\/e.php","#));
    assert!(json.contains(r#""user":"-","#));

    let xml = body(Format::Xml);
    assert!(xml.contains(
        "<request-uri>/a&amp;b&lt;c&gt;&quot;d'/e.php?x=1&amp;y=&lt;/z&gt;&quot;'</request-uri>"
    ));
    assert!(xml.contains("<script>/srv/a&amp;b&lt;c&gt;&quot;d'/e.php</script>"));

    let html = body(Format::Html);
    assert!(html.contains("<td>/a&amp;b&lt;c&gt;&quot;d'/e.php?x=1&amp;y=&lt;/z&gt;&quot;'</td>"));
}

#[test]
fn cpu_and_memory_only_for_idle() {
    utc();
    let pool = sample_pool();
    let mut p = sample_proc();
    let text = render(&pool, std::slice::from_ref(&p), Format::Text, true).body;
    assert!(text.contains("last request cpu:     0.00\nlast request memory:  0\n"));
    p.state = "Idle".into();
    let text = render(&pool, std::slice::from_ref(&p), Format::Text, true).body;
    assert!(text.contains("last request cpu:     12.35\nlast request memory:  2097152\n"));
    let json = render(&pool, &[p], Format::Json, true).body;
    assert!(json.contains(r#""last request cpu":12.35,"last request memory":2097152}]}"#));
}

#[test]
fn empty_fields_and_query() {
    utc();
    let pool = sample_pool();
    let p = ProcStatus {
        request_method: String::new(),
        request_uri: "?q=1".into(),
        script: String::new(),
        ..sample_proc()
    };
    let text = render(&pool, &[p], Format::Text, true).body;
    assert!(text.contains("request method:       -\nrequest URI:          -?q=1\n"));
    assert!(text.contains("script:               -\n"));
    let p = ProcStatus {
        request_uri: "/x?".into(),
        ..sample_proc()
    };
    let text = render(&pool, &[p], Format::Text, true).body;
    assert!(text.contains("request URI:          /x\n"));
    let json = render(&pool, &[], Format::Json, true).body;
    assert!(json.ends_with(r#""slow requests":4, "processes":[]}"#));
}

#[test]
fn escapers() {
    assert_eq!(escape_html("&amp;<>\"'"), "&amp;amp;&lt;&gt;&quot;'");
    assert_eq!(
        escape_html("\u{1}\u{8}\t\u{b}\u{c}\n\r\u{1f}\u{7f}\u{85}\u{a0}\u{fdd0}\u{fffe}\u{ffff}\u{1fffe}"),
        "\u{fffd}\u{fffd}\t\u{fffd}\u{fffd}\n\r\u{fffd}\u{7f}\u{85}\u{a0}\u{fdd0}\u{fffd}\u{fffd}\u{1fffe}"
    );
    // Observed from php-fpm 8.2.36 with the same input.
    assert_eq!(
        escape_json(
            "\u{1}\u{8}\t\u{b}\u{c}\n\r\u{1f}\u{7f}\u{85}\u{a0}\u{fdd0}\u{fffe}\u{1fffe}😀\u{2028}\\/\"'<>&amp;"
        ),
        "\\u0001\\b\\t\\u000b\\f\\n\\r\\u001f\u{7f}\\u0085\\u00a0\\ufdd0\\ufffe\\ud83f\\udffe\
         \\ud83d\\ude00\\u2028\\\\\\/\\\"'<>&amp;"
    );
}

#[test]
fn pool_name_is_not_escaped() {
    // Observed: php-fpm prints the pool name raw in every format.
    utc();
    let pool = PoolStatus {
        pool: "p&<o>o/l\\é".into(),
        ..sample_pool()
    };
    for f in [Format::Text, Format::Json, Format::Xml, Format::Html] {
        assert!(
            render(&pool, &[], f, false).body.contains("p&<o>o/l\\é"),
            "{f:?}"
        );
    }
    assert!(render(&pool, &[], Format::OpenMetrics, false)
        .body
        .starts_with(
            "# HELP phpfpm_up Could pool p&<o>o/l\\é using a dynamic PM on PHP-FPM be reached?\n"
        ));
}

#[test]
fn method_is_escaped() {
    // Observed with REQUEST_METHOD='G<E"T/é'.
    utc();
    let p = ProcStatus {
        request_method: "G<E\"T/é".into(),
        ..sample_proc()
    };
    let pool = sample_pool();
    let json = render(&pool, std::slice::from_ref(&p), Format::Json, true).body;
    assert!(json.contains(r#""request method":"G<E\"T\/\u00e9""#));
    let xml = render(&pool, std::slice::from_ref(&p), Format::Xml, true).body;
    assert!(xml.contains("<request-method>G&lt;E&quot;T/é</request-method>"));
    let text = render(&pool, &[p], Format::Text, true).body;
    assert!(text.contains("request method:       G<E\"T/é\n"));
}

#[test]
fn headers_per_format() {
    let pool = sample_pool();
    let ct = |f| render(&pool, &[], f, false).headers;
    let common = [
        (
            "Expires".to_owned(),
            "Thu, 01 Jan 1970 00:00:00 GMT".to_owned(),
        ),
        (
            "Cache-Control".to_owned(),
            "no-cache, no-store, must-revalidate, max-age=0".to_owned(),
        ),
    ];
    for (f, name, value) in [
        (Format::Text, "Content-type", "text/plain;charset=UTF-8"),
        (Format::Html, "Content-type", "text/html;charset=UTF-8"),
        (Format::Xml, "Content-type", "text/xml;charset=UTF-8"),
        (Format::Json, "Content-Type", "application/json"),
        (
            Format::OpenMetrics,
            "Content-Type",
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        ),
    ] {
        let h = ct(f);
        assert_eq!(h[..2], common);
        assert_eq!(h[2], (name.to_owned(), value.to_owned()));
        assert_eq!(h.len(), 3);
    }
}

/// Every case here was run against php-fpm 8.2.36.
#[test]
fn parse_query_like_php_fpm() {
    use Format::*;
    let cases: &[(&str, Format, bool)] = &[
        ("", Text, false),
        ("full", Text, true),
        ("json", Json, false),
        ("json&full", Json, true),
        ("full&json", Json, true),
        ("xml", Xml, false),
        ("html", Html, false),
        ("openmetrics", OpenMetrics, false),
        ("openmetrics&full", OpenMetrics, true),
        // precedence html > xml > json > openmetrics
        ("json&xml", Xml, false),
        ("html&xml", Html, false),
        ("openmetrics&json", Json, false),
        ("json&html&xml&openmetrics", Html, false),
        // keys match when they are a prefix of the name
        ("json&x", Xml, false),
        ("json&h", Html, false),
        ("j", Json, false),
        ("js", Json, false),
        ("xm", Xml, false),
        ("o", OpenMetrics, false),
        ("open", OpenMetrics, false),
        ("h", Html, false),
        ("json&ht", Html, false),
        ("openmetrics&x", Xml, false),
        ("x=1&html", Html, false),
        ("json&f", Json, true),
        ("json&fu", Json, true),
        // ... but not when longer, or in another case
        ("jsonx", Text, false),
        ("xmlz", Text, false),
        ("json&fulll", Json, false),
        ("json&FULL", Json, false),
        ("JSON", Text, false),
        // values are irrelevant; arrays count by their base name
        ("json=1&full=", Json, true),
        ("xml[]=1", Xml, false),
        ("x[a]=1", Xml, false),
        ("json[]&f[]", Json, true),
        ("&json[a][b]=1&full[x", Json, false),
        ("a[&json", Json, false),
        ("h[x", Text, false),
        ("x]", Text, false),
        ("f.&json", Json, false),
        // decoding
        ("json&%78", Xml, false),
        ("json&x%00y", Xml, false),
        ("%20json", Json, false),
        ("+json", Json, false),
        (" j", Json, false),
        ("j son", Text, false),
        ("json&x y", Json, false),
        ("json&x.y", Json, false),
        ("json&x_y", Json, false),
        // separators
        ("json;full", Text, false),
        ("json&&&full", Json, true),
        ("=json", Text, false),
        ("json=&=full", Json, false),
        ("a&json", Json, false),
    ];
    for &(q, f, full) in cases {
        assert_eq!(parse_query(q), (f, full), "query {q:?}");
    }
}

#[test]
fn parse_query_max_input_vars() {
    // php-fpm 8.2.36: the 1001st variable is dropped, empty names count.
    let vars = |n: usize, f: &dyn Fn(usize) -> String| (0..n).map(f).collect::<Vec<_>>().join("&");
    let q = format!("{}&json", vars(999, &|i| format!("a{i}")));
    assert_eq!(parse_query(&q), (Format::Json, false));
    let q = format!("{}&json", vars(1000, &|i| format!("a{i}")));
    assert_eq!(parse_query(&q), (Format::Text, false));
    let q = format!("{}&json", vars(1000, &|i| format!("={i}")));
    assert_eq!(parse_query(&q), (Format::Text, false));
    // Nesting deeper than 64 levels drops the variable.
    let deep = |n| format!("json{}", "[a]".repeat(n));
    assert_eq!(parse_query(&deep(64)), (Format::Json, false));
    assert_eq!(parse_query(&deep(65)), (Format::Text, false));
}

#[test]
fn fpm_get_status_matches_php() {
    // fixtures/fpm_get_status.txt is json_encode(fpm_get_status()) from a
    // script running in the same pool.
    let want = response("fpm_get_status.txt").body;
    let v: serde_json::Value = serde_json::from_str(&want).unwrap();
    let s = |v: &serde_json::Value| v.as_str().unwrap().to_owned();
    let n = |v: &serde_json::Value| v.as_u64().unwrap();
    let undash = |s: String| if s == "-" { String::new() } else { s };
    let pool = PoolStatus {
        pool: s(&v["pool"]),
        process_manager: s(&v["process-manager"]),
        start_time: v["start-time"].as_i64().unwrap(),
        start_since: n(&v["start-since"]),
        accepted_conn: n(&v["accepted-conn"]),
        listen_queue: n(&v["listen-queue"]),
        max_listen_queue: n(&v["max-listen-queue"]),
        listen_queue_len: n(&v["listen-queue-len"]),
        idle_processes: n(&v["idle-processes"]),
        active_processes: n(&v["active-processes"]),
        total_processes: n(&v["total-processes"]),
        max_active_processes: n(&v["max-active-processes"]),
        max_children_reached: n(&v["max-children-reached"]),
        slow_requests: n(&v["slow-requests"]),
    };
    let procs: Vec<ProcStatus> = v["procs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let q = s(&p["query-string"]);
            let uri = s(&p["request-uri"]);
            ProcStatus {
                pid: n(&p["pid"]) as u32,
                state: s(&p["state"]),
                start_time: p["start-time"].as_i64().unwrap(),
                start_since: n(&p["start-since"]),
                requests: n(&p["requests"]),
                request_duration: n(&p["request-duration"]),
                request_method: s(&p["request-method"]),
                request_uri: if q.is_empty() {
                    uri
                } else {
                    format!("{uri}?{q}")
                },
                content_length: n(&p["request-length"]),
                user: undash(s(&p["user"])),
                script: undash(s(&p["script"])),
                last_request_cpu: p["last-request-cpu"].as_f64().unwrap(),
                last_request_memory: n(&p["last-request-memory"]),
            }
        })
        .collect();
    let got = fpm_get_status_json(&pool, &procs);
    // PHP's json_encode() writes the float 0.0 as `0`; we keep the `.0` so
    // that json_decode() gives the PHP script a float, as fpm_get_status()
    // does. Everything else is byte for byte.
    assert_eq!(
        got.replace("\"last-request-cpu\":0.0,", "\"last-request-cpu\":0,") + "\n",
        want
    );
    assert!(got.contains("\"last-request-cpu\":0.0,"));
}

#[test]
fn fpm_get_status_cpu_is_a_float() {
    let mut p = ProcStatus {
        state: "Idle".into(),
        last_request_cpu: 3.0,
        ..sample_proc()
    };
    let out = fpm_get_status_json(&sample_pool(), std::slice::from_ref(&p));
    assert!(out.contains("\"last-request-cpu\":3.0,\"last-request-memory\":2097152}"));
    p.last_request_cpu = f64::NAN;
    let out = fpm_get_status_json(&sample_pool(), &[p]);
    assert!(out.contains("\"last-request-cpu\":0.0,"));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["procs"][0]["request-uri"], "/a&b<c>\"d'/e.php");
    assert_eq!(v["procs"][0]["query-string"], "x=1&y=</z>\"'");
    assert_eq!(v["procs"][0]["user"], "-");
}
