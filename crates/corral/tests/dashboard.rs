//! The live dashboard on the metrics address, loaded in headless Chromium
//! (Debian's `chromium`) while both pools serve: the page polls the master
//! and must show each pool, with rates that need two live updates. A
//! screenshot is taken too (`CORRAL_DASHBOARD_SCREENSHOT=docs/dashboard.png`
//! keeps it).

mod common;
mod operator_support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use common::*;
use operator_support::*;

/// How long one Chromium run may take before it is killed.
const CHROMIUM_LIMIT: Duration = Duration::from_secs(90);

/// Chromium with the house flags and a fresh profile; `what` is
/// `--dump-dom` or `--screenshot=PATH`. Returns stdout.
fn chromium(bin: &Path, profile: &Path, url: &str, what: &[&str], budget_ms: u32) -> String {
    let mut child = Command::new(bin)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("--virtual-time-budget={budget_ms}"))
        .args(what)
        .arg(url)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromium");
    let mut out = child.stdout.take().unwrap();
    let reader = thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut out, &mut s);
        s
    });
    let deadline = Instant::now() + CHROMIUM_LIMIT;
    loop {
        if child.try_wait().ok().flatten().is_some() {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium did not finish within {CHROMIUM_LIMIT:?}");
        }
        thread::sleep(Duration::from_millis(50));
    }
    reader.join().unwrap_or_default()
}

/// The `<tr data-pool="NAME">...</tr>` of a pool in the dumped DOM.
fn pool_row<'a>(dom: &'a str, pool: &str) -> Option<&'a str> {
    let start = dom.find(&format!("<tr data-pool=\"{pool}\">"))?;
    let end = dom[start..].find("</tr>")?;
    Some(&dom[start..start + end])
}

/// The text of the `<td class="CLASS...">` of a row.
fn cell<'a>(row: &'a str, class: &str) -> Option<&'a str> {
    let start = row.find(&format!("<td class=\"{class}"))?;
    let open_end = row[start..].find('>')? + start + 1;
    let close = row[open_end..].find("</td>")? + open_end;
    Some(&row[open_end..close])
}

/// Requests to beta (and a few to alpha) until stopped: the page sees
/// rates change between its updates.
fn background_traffic(m: &Metered, stop: Arc<AtomicBool>) -> thread::JoinHandle<()> {
    let listens = m.server.listens.clone();
    let www = m.server.www().to_path_buf();
    thread::spawn(move || {
        let until = Instant::now() + Duration::from_secs(120);
        let mut i = 0u64;
        while !stop.load(Ordering::SeqCst) && Instant::now() < until {
            let pool = if i.is_multiple_of(4) { 0 } else { 1 };
            let req = Request::php(&www.join("pid.php").display().to_string())
                .document_root(&www.display().to_string())
                .query(&format!("sleep_ms={}", 5 + i % 40));
            let _ = request_on(&listens[pool], &req);
            i += 1;
        }
    })
}

#[test]
fn the_dashboard_shows_both_pools_live() {
    if !require_root() {
        return;
    }
    let Some(bin) = require_bin("chromium") else {
        return;
    };
    let m = Metered::start();
    m.traffic(0, 4, 0);
    m.traffic(1, 6, 20);
    let stop = Arc::new(AtomicBool::new(false));
    let mut load = Some(background_traffic(&m, stop.clone()));
    // The master keeps a second-by-second history that the page draws its
    // charts from at once: wait until it has a few seconds of it.
    eventually(Duration::from_secs(30), "three seconds of history", || {
        let body = m.get("/api/snapshot?history=1", &[]).body;
        let v: serde_json::Value = serde_json::from_str(&body).ok()?;
        let pools = v["pools"].as_array()?;
        (pools.len() == 2
            && pools
                .iter()
                .all(|p| p["history"].as_array().is_some_and(|h| h.len() >= 3)))
        .then_some(())
    });
    assert!(
        !m.get("/api/snapshot", &[]).body.contains("\"history\""),
        "plain polls carry no history"
    );
    let profile = temp_dir("chromium");
    let url = format!("http://{}/", m.addr());

    let dom = chromium(&bin, profile.path(), &url, &["--dump-dom"], 6000);
    let updates: u32 = dom
        .split("data-updates=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no data-updates in the page:\n{dom}"));
    assert!(updates >= 2, "the page updated {updates} times:\n{dom}");
    assert!(dom.contains("class=\"live\""), "{dom}");
    assert!(dom.contains("2 pools"), "{dom}");
    for pool in ["alpha", "beta"] {
        let row = pool_row(&dom, pool).unwrap_or_else(|| panic!("no row for {pool}:\n{dom}"));
        assert_eq!(cell(row, "name"), Some(pool));
        assert_eq!(cell(row, "state"), Some("running"), "{row}");
        let rps = cell(row, "rps").unwrap();
        assert!(
            rps.parse::<f64>().is_ok(),
            "{pool}: req/s needs two updates: {rps:?}"
        );
        assert!(
            row.contains("<polyline"),
            "{pool}: its charts have points: {row}"
        );
    }
    let beta = pool_row(&dom, "beta").unwrap();
    assert!(cell(beta, "workers").unwrap().contains(" of 3"), "{beta}");
    if have_cgroups() {
        let alpha = pool_row(&dom, "alpha").unwrap();
        assert!(
            cell(alpha, "memory").unwrap().contains("iB"),
            "alpha's cgroup: {alpha}"
        );
        assert_eq!(cell(beta, "memory"), Some("–"), "beta has no cgroup");
    }

    // A reload shows under "Recent reloads" on the next load.
    let mut m = m;
    m.server
        .rewrite_config(&two_pools_conf().replace("pm.max_children = 3", "pm.max_children = 4"));
    let out = m.server.control(&["reload", "beta"]);
    assert!(out.status.success(), "{}", out.all());
    let shot = profile.path().join("dashboard.png");
    let dom = chromium(
        &bin,
        &profile.path().join("second"),
        &url,
        &[
            "--window-size=1500,430",
            &format!("--screenshot={}", shot.display()),
        ],
        8000,
    );
    assert!(dom.is_empty() || !dom.contains("panicked"));
    stop.store(true, Ordering::SeqCst);
    if let Some(l) = load.take() {
        let _ = l.join();
    }
    let png = std::fs::read(&shot).expect("a screenshot");
    assert!(
        png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 10_000,
        "{} bytes",
        png.len()
    );
    if let Ok(keep) = std::env::var("CORRAL_DASHBOARD_SCREENSHOT") {
        let keep = PathBuf::from(keep);
        let keep = if keep.is_absolute() {
            keep
        } else {
            workspace_root().join(keep)
        };
        std::fs::copy(&shot, &keep).expect("keep the screenshot");
    }
    let snapshot = m.get("/api/snapshot", &[]);
    assert!(
        snapshot.body.contains("\"pools\":[\"beta\"]"),
        "the reload is listed: {}",
        snapshot.body
    );
}
