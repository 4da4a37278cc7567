//! Uploads as WordPress makes them, through a real nginx and a real
//! Apache: a multipart POST to a PHP script that calls
//! `move_uploaded_file()` into `wp-content/uploads/YYYY/MM` and then
//! chmods the file the way WordPress does (the dir's mode & 0666). The
//! originals (a full-size PNG, a tiny PNG with no resized copy, a PDF) must
//! then come back through the web server byte for byte, a `.php` uploaded
//! must not run, nothing uploaded may be executable, and the web server
//! must still not read the site's tmp and session files.

mod common;
mod sites_support;

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use common::{require_bin, require_root};
use sites_support::*;

const UPLOAD_PHP: &str = r#"<?php
// What wp_handle_upload() does, reduced: a dated dir, move_uploaded_file,
// then chmod to the parent dir's mode & 0666.
$dir = __DIR__ . '/wp-content/uploads/2026/12';
if (!is_dir($dir) && !mkdir($dir, 0770, true)) { http_response_code(500); exit("mkdir failed"); }
$f = $_FILES['file'] ?? null;
if (!$f || $f['error'] !== UPLOAD_ERR_OK) { http_response_code(400); exit("upload error " . ($f['error'] ?? 'none')); }
$dest = $dir . '/' . basename($f['name']);
$ino = fileinode($f['tmp_name']);
if (!move_uploaded_file($f['tmp_name'], $dest)) { http_response_code(500); exit("move failed"); }
$perms = stat(dirname($dest))['mode'] & 0000666;
chmod($dest, $perms);
header('X-Renamed: ' . ($ino === fileinode($dest) ? 'yes' : 'no') . ' ' . $f['tmp_name']);
echo 'stored /wp-content/uploads/2026/12/', basename($dest);
"#;

/// PHP's own temp and session files, made by the pool, to check the web
/// server cannot read them.
const PRIVATE_PHP: &str = r#"<?php
$t = tempnam(sys_get_temp_dir(), 'priv');
file_put_contents($t, 'temp secret');
session_start();
$_SESSION['x'] = 'session secret';
echo $t, "\n", session_save_path() . '/sess_' . session_id();
"#;

#[test]
fn uploads_through_nginx_are_served_and_never_run() {
    if !require_root() || require_bin("setfacl").is_none() || require_bin("curl").is_none() {
        return;
    }
    let sb = Sandbox::outside_tmp("upn");
    let Some(nginx) = SitesNginx::start(&sb.path("nginx")) else {
        return;
    };
    walk_uploads(&sb, &nginx, "nginx", "un", true);
    walk_uploads(&sb, &nginx, "nginx", "um", false);
}

#[test]
fn uploads_through_apache_are_served_and_never_run() {
    if !require_root() || require_bin("setfacl").is_none() || require_bin("curl").is_none() {
        return;
    }
    let sb = Sandbox::outside_tmp("upa");
    let Some(apache) = SitesApache::start(&sb.path("apache/sites-enabled")) else {
        return;
    };
    walk_uploads(&sb, &apache, "apache", "ua", true);
    walk_uploads(&sb, &apache, "apache", "ub", false);
}

/// One site, with its pens (`landlock`) or with Landlock off.
fn walk_uploads(sb: &Sandbox, web: &dyn WebServer, server: &str, tag: &str, landlock: bool) {
    let u = user_name(tag);
    let _users = UserGuard(vec![u.clone()]);
    let corral = sb.start_corral();
    let env = sb.env(Some(&corral), Some(web));
    let d = format!("{tag}{}.test", std::process::id());
    ok(&sb.site(
        &env,
        &[],
        &[
            "add",
            &d,
            "--user",
            &u,
            "--template",
            "wordpress",
            "--webserver",
            server,
            "--set",
            if landlock {
                "corral.landlock=yes"
            } else {
                "corral.landlock=no"
            },
        ],
    ));
    let root = sb.docroot(&u, &d);
    write_as_owner(&root.join("upload.php"), UPLOAD_PHP, &u);
    write_as_owner(&root.join("private.php"), PRIVATE_PHP, &u);

    let files = sb.path(&format!("upload-src-{tag}"));
    let headers = files.join("headers");
    fs::create_dir(&files).unwrap();
    let cases: [(&str, Vec<u8>); 3] = [
        // Full size: larger than nginx's default body limit (1M) too.
        ("photo-full.png", files::png(1600, 1200, 7)),
        // 150 px or less: WordPress makes no resized copy of it.
        ("icon-tiny.png", files::png(16, 16, 3)),
        ("invoice.pdf", files::pdf("corral upload test")),
    ];
    let base = format!("http://127.0.0.1:{}", web.port());
    let host = format!("Host: {d}");
    for (name, bytes) in &cases {
        let src = files.join(name);
        fs::write(&src, bytes).unwrap();
        let r = curl(&[
            "-H",
            &host,
            "-D",
            &headers.display().to_string(),
            "-F",
            &format!("file=@{}", src.display()),
            &format!("{base}/upload.php"),
        ]);
        let said = String::from_utf8_lossy(&r.body).into_owned();
        assert_eq!(r.status, 200, "{name}: {said}\n{}", web.error_log());
        let url = said.strip_prefix("stored ").expect("stored").to_string();
        let head = fs::read_to_string(&headers).unwrap();
        if !landlock {
            // Without Landlock the temp file is renamed into place (with
            // Landlock the kernel refuses the cross-directory rename and
            // PHP copies): the path where the temp dir's ACL is all the
            // file has.
            assert!(head.contains("X-Renamed: yes"), "{name}: {head}");
        }
        let got = curl(&["-H", &host, &format!("{base}{url}")]);
        assert_eq!(got.status, 200, "{name}: GET {url}\n{}", web.error_log());
        assert!(
            got.body == *bytes,
            "{name}: {} bytes back, {} sent",
            got.body.len(),
            bytes.len()
        );
        let stored = root.join(url.trim_start_matches('/'));
        never_executable(&stored);
    }

    // A script uploaded as a file lands, but never runs.
    let evil = files.join("shell.php");
    fs::write(&evil, "<?php echo 'EXE' . 'CUTED';").unwrap();
    let r = curl(&[
        "-H",
        &host,
        "-F",
        &format!("file=@{}", evil.display()),
        &format!("{base}/upload.php"),
    ]);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    for path in [
        "/wp-content/uploads/2026/12/shell.php",
        "/wp-content/uploads/2026/12/shell.php/x.jpg",
    ] {
        let got = curl(&["-H", &host, &format!("{base}{path}")]);
        let body = String::from_utf8_lossy(&got.body);
        assert!(!body.contains("EXECUTED"), "{path} ran: {body}");
        assert_eq!(got.status, 403, "{path}");
    }
    never_executable(&root.join("wp-content/uploads/2026/12/shell.php"));

    // PHP's temp files and sessions stay out of the web server's reach,
    // although temp files carry its (read-only) entry for after a move.
    let r = curl(&["-H", &host, &format!("{base}/private.php")]);
    assert_eq!(r.status, 200);
    let text = String::from_utf8_lossy(&r.body).into_owned();
    let mut lines = text.lines();
    let (tmp, sess) = (lines.next().unwrap(), lines.next().unwrap());
    assert!(
        tmp.starts_with(&sb.home(&u).join("tmp").display().to_string()),
        "{tmp}"
    );
    for p in [tmp, sess] {
        assert!(Path::new(p).exists(), "{p}");
        assert!(!readable_by("www-data", Path::new(p)), "www-data reads {p}");
        assert!(
            readable_by(&format!("{u}-php"), Path::new(p)),
            "PHP reads {p}"
        );
    }
    // The owner can manage what PHP stored.
    let owned = root.join("wp-content/uploads/2026/12/invoice.pdf");
    assert!(readable_by(&u, &owned));

    ok(&sb.site(&env, &[], &["remove", &d, "--yes"]));
}

/// No execute bit in the mode, and no `x` in any ACL entry of a file.
fn never_executable(p: &Path) {
    let m = fs::metadata(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    assert_eq!(m.mode() & 0o111, 0, "{} mode {:o}", p.display(), m.mode());
    let acl = std::process::Command::new("getfacl")
        .args(["--absolute-names", "--omit-header", "--numeric"])
        .arg(p)
        .output()
        .unwrap();
    let acl = String::from_utf8_lossy(&acl.stdout).into_owned();
    // What each entry grants: the mask caps named and group entries.
    for line in acl.lines().filter(|l| !l.is_empty()) {
        let perms = match line.split_once("#effective:") {
            Some((_, eff)) => eff.trim(),
            None => line.rsplit(':').next().unwrap().trim(),
        };
        assert!(!perms.contains('x'), "{}: {line}\n{acl}", p.display());
    }
    let web = common::uid_of("www-data").unwrap();
    let web_entry = acl
        .lines()
        .find(|l| l.starts_with(&format!("user:{web}:")))
        .unwrap_or("");
    assert!(
        web_entry.ends_with("r--") || web_entry.ends_with("#effective:r--"),
        "{}: web server entry\n{acl}",
        p.display()
    );
}
