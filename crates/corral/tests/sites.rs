//! `corral site`: provisioning isolated PHP sites end to end, as root,
//! with real users, a real corral and a real nginx (workers as www-data).
//! Each test sandboxes the host's paths in a temp dir (CORRAL_SITES_*),
//! uses users named `ct5<tag>-<pid>`, and deletes them even on failure.

mod common;
mod sites_support;

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::time::Duration;

use common::{require_bin, require_root};
use sites_support::*;

fn domain(tag: &str) -> String {
    format!("{tag}{}.test", std::process::id())
}

/// Root, nginx and setfacl, or a skip message.
fn ready() -> bool {
    require_root() && require_bin("nginx").is_some() && require_bin("setfacl").is_some()
}

#[test]
fn two_sites_serve_their_own_php_and_cannot_touch_each_other() {
    if !ready() {
        return;
    }
    let (ua, ub) = (user_name("a"), user_name("b"));
    let _users = UserGuard(vec![ua.clone(), ub.clone()]);
    let sb = Sandbox::new("iso");
    let corral = sb.start_corral();
    let Some(nginx) = SitesNginx::start(&sb.path("nginx")) else {
        return;
    };
    let env = sb.env(Some(&corral), Some(&nginx));
    let (da, db) = (domain("a"), domain("b"));
    // Site A has open_basedir off, so what stops it below is the kernel's
    // permission checks, not PHP's.
    let o = sb.site(
        &env,
        &[],
        &["add", &da, "--user", &ua, "--set", "open_basedir=/"],
    );
    ok(&o);
    assert!(o.stdout.contains("verified"), "{}", o.all());
    ok(&sb.site(&env, &[], &["add", &db, "--user", &ub]));

    let (ra, rb) = (sb.docroot(&ua, &da), sb.docroot(&ub, &db));
    write_as_owner(&ra.join("index.php"), "<?php echo 'site=A';", &ua);
    write_as_owner(&rb.join("index.php"), "<?php echo 'site=B';", &ub);
    write_as_owner(&rb.join("secret.php"), "<?php // B's password", &ub);
    write_as_owner(&ra.join("hello.txt"), "static-A", &ua);
    let sock_b = sb.path("run").join(format!("corral-{db}.sock"));
    let sock_a = sb.path("run").join(format!("corral-{da}.sock"));
    let home_a = sb.home(&ua);
    write_as_owner(
        &ra.join("iso.php"),
        &format!(
            r#"<?php
function r($x) {{ return $x === false ? 'denied' : 'ok'; }}
echo "read=", r(@file_get_contents('{b}/secret.php')), "\n";
echo "write=", r(@file_put_contents('{b}/pwned.php', 'x')), "\n";
echo "list=", r(@scandir('{b}')), "\n";
echo "connect=", r(@stream_socket_client('unix://{sb}', $e1, $s1, 2)), "\n";
echo "connect_own=", r(@stream_socket_client('unix://{sa}', $e2, $s2, 2)), "\n";
echo "tmp_write=", r(@file_put_contents('{ha}/tmp/t.txt', 'x')), "\n";
echo "runs_as=", fileowner('{ha}/tmp/t.txt'), "\n";
echo "session_write=", r(@file_put_contents('{ha}/sessions/s.txt', 'x')), "\n";
echo "code_write=", r(@file_put_contents(__DIR__ . '/new.php', 'x')), "\n";
echo "exec=", function_exists('shell_exec') && is_callable('shell_exec') ? r(@shell_exec('id')) : 'disabled', "\n";
echo "pool_read=", r(@file_get_contents('{pool_b}')), "\n";
echo "pool_list=", r(@scandir('{pool_dir}')), "\n";
foreach (['putenv', 'mail', 'mb_send_mail', 'shmop_open', 'shm_attach', 'sem_get', 'msg_get_queue'] as $f) {{
    echo "fn_$f=", function_exists($f) ? 'on' : 'off', "\n";
}}
"#,
            b = rb.display(),
            sb = sock_b.display(),
            sa = sock_a.display(),
            ha = home_a.display(),
            pool_b = sb.path("pool.d").join(format!("{db}.conf")).display(),
            pool_dir = sb.path("pool.d").display(),
        ),
        &ua,
    );

    let r = nginx.get(&da, "/");
    assert_eq!(
        (r.status, r.body.as_str()),
        (200, "site=A"),
        "{}",
        nginx.error_log()
    );
    let r = nginx.get(&db, "/");
    assert_eq!((r.status, r.body.as_str()), (200, "site=B"));
    let r = nginx.get(&da, "/hello.txt");
    assert_eq!((r.status, r.body.as_str()), (200, "static-A"));

    let r = nginx.get(&da, "/iso.php");
    assert_eq!(r.status, 200, "{}", r.body);
    for (k, want) in [
        ("read", "denied"),
        ("write", "denied"),
        ("list", "denied"),
        ("connect", "denied"),
        ("connect_own", "denied"),
        ("tmp_write", "ok"),
        ("session_write", "ok"),
        ("code_write", "denied"),
        // Pool files are root's alone: B's env[] and paths stay B's.
        ("pool_read", "denied"),
        ("pool_list", "denied"),
        ("fn_putenv", "off"),
        ("fn_mail", "off"),
        ("fn_mb_send_mail", "off"),
        ("fn_shmop_open", "off"),
        ("fn_shm_attach", "off"),
        ("fn_sem_get", "off"),
        ("fn_msg_get_queue", "off"),
    ] {
        assert!(
            r.body.contains(&format!("{k}={want}\n")),
            "{k} should be {want}:\n{}",
            r.body
        );
    }
    assert!(!r.body.contains("exec=ok"), "{}", r.body);
    let php_uid = common::uid_of(&format!("{ua}-php")).unwrap();
    assert!(
        r.body.contains(&format!("runs_as={php_uid}\n")),
        "PHP runs as {ua}-php: {}",
        r.body
    );
    assert!(!rb.join("pwned.php").exists());
    let pool_a = fs::read_to_string(sb.path("pool.d").join(format!("{da}.conf"))).unwrap();
    let h = home_a.display();
    assert!(
        pool_a.contains(&format!(
            "corral.landlock_write = {h}/logs {h}/tmp {h}/sessions\n"
        )) && pool_a.contains("corral.namespaces = yes"),
        "pens rendered from A's layout:\n{pool_a}"
    );
    let pool_b = sb.path("pool.d").join(format!("{db}.conf"));
    let m = fs::metadata(&pool_b).unwrap();
    assert_eq!(
        (m.mode() & 0o7777, m.uid(), m.gid()),
        (0o600, 0, 0),
        "pool file root:root 0600"
    );
    let m = fs::metadata(sb.path("pool.d")).unwrap();
    assert_eq!(m.mode() & 0o7777, 0o700, "pool dir closed");

    // A symlink in A's docroot to B's file: www-data may read both
    // docroots, so only nginx's owner check stops it. A link to A's own
    // file still works.
    let leak = ra.join("leak.txt");
    write_as_owner(&rb.join("wp-config.txt"), "B-DB-PASSWORD", &ub);
    std::os::unix::fs::symlink(rb.join("wp-config.txt"), &leak).unwrap();
    let uid_a = common::uid_of(&ua).unwrap();
    std::os::unix::fs::lchown(&leak, Some(uid_a), None).unwrap();
    let r = nginx.get(&da, "/leak.txt");
    assert!(
        !r.body.contains("B-DB-PASSWORD"),
        "symlink served: {}",
        r.body
    );
    // try_files finds no file it may open and falls through to =404.
    assert_eq!(r.status, 404, "{}", r.body);
    let mine = ra.join("mine.txt");
    std::os::unix::fs::symlink(ra.join("hello.txt"), &mine).unwrap();
    std::os::unix::fs::lchown(&mine, Some(uid_a), None).unwrap();
    assert_eq!(
        (
            nginx.get(&da, "/mine.txt").status,
            nginx.get(&da, "/mine.txt").body
        ),
        (200, "static-A".to_string())
    );

    // PHP dropped into an upload dir never runs; neither does a fake
    // path after an image.
    let up = ra.join("uploads");
    mkdir_as_owner(&up, &ua);
    let evil = "<?php echo 'EXE' . 'CUTED';";
    write_as_owner(&up.join("x.jpg"), evil, &ua);
    write_as_owner(&up.join("evil.php"), evil, &ua);
    write_as_owner(&ra.join("y.jpg"), evil, &ua);
    for path in [
        "/uploads/x.jpg/evil.php",
        "/uploads/evil.php",
        "/y.jpg/z.php",
        "/uploads/x.jpg/.php",
        "/uploads/evil.php/",
        "/uploads/evil.php/x.jpg",
    ] {
        let r = nginx.get(&da, path);
        assert!(
            !r.body.contains("EXECUTED"),
            "{path} ran PHP: {} {}",
            r.status,
            r.body
        );
        assert!(r.status == 403 || r.status == 404, "{path}: {}", r.status);
    }
    let r = nginx.get(&da, "/uploads/x.jpg");
    assert_eq!(r.status, 200);
    assert!(
        r.body.contains("EXE' . 'CUTED"),
        "static, not executed: {}",
        r.body
    );
    write_as_owner(&ra.join(".env"), "DB_PASSWORD=x", &ua);
    assert_eq!(nginx.get(&da, "/.env").status, 403);
    assert_eq!(nginx.get(&da, "/fpm-status").status, 403);
    assert_eq!(nginx.get(&da, "/fpm-ping").status, 403);
    // The web server reads the docroot, not the rest of the home.
    assert_eq!(nginx.get("unknown.invalid", "/").status, 404);

    // list / show.
    let o = ok(&sb.site(&env, &[], &["list", "--json"])).stdout.clone();
    let v: serde_json::Value = serde_json::from_str(o.trim()).unwrap();
    let names: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["domain"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&da.as_str()) && names.contains(&db.as_str()),
        "{o}"
    );
    let o = ok(&sb.site(&env, &[], &["show", &da])).stdout.clone();
    assert!(o.contains(&format!("php_user:    {ua}-php")), "{o}");

    ok(&sb.site(&env, &[], &["remove", &da, "--yes"]));
    ok(&sb.site(&env, &[], &["remove", &db, "--yes"]));
}

#[test]
fn add_twice_changes_nothing() {
    if !ready() {
        return;
    }
    let u = user_name("i");
    let _users = UserGuard(vec![u.clone()]);
    let sb = Sandbox::new("idem");
    let corral = sb.start_corral();
    let Some(nginx) = SitesNginx::start(&sb.path("nginx")) else {
        return;
    };
    let env = sb.env(Some(&corral), Some(&nginx));
    let d = domain("i");
    let args = [
        "add",
        d.as_str(),
        "--user",
        u.as_str(),
        "--template",
        "wordpress",
        "--alias",
        "www.x.test",
    ];
    ok(&sb.site(&env, &[], &args));
    let before = sb.snapshot(std::slice::from_ref(&u));
    let pids = pool_pids(&corral, &d);
    let o = sb.site(&env, &[], &args);
    ok(&o);
    assert!(o.stdout.contains("unchanged"), "{}", o.all());
    assert!(!o.stdout.contains("[pool-reload]"), "{}", o.all());
    let after = sb.snapshot(std::slice::from_ref(&u));
    assert!(
        before == after,
        "second add changed:\n{}",
        snapshot_diff(&before, &after)
    );
    assert_eq!(pids, pool_pids(&corral, &d), "the pool was not restarted");
    // Other options: refused, nothing changes.
    let o = sb.site(
        &env,
        &[],
        &["add", &d, "--user", &u, "--template", "laravel"],
    );
    assert_ne!(o.code, Some(0));
    assert!(o.stderr.contains("site set"), "{}", o.all());
    assert!(before == sb.snapshot(std::slice::from_ref(&u)));
    ok(&sb.site(&env, &[], &["remove", &d, "--yes"]));
}

#[test]
fn failure_at_every_step_leaves_the_host_as_it_was() {
    if !ready() {
        return;
    }
    let (u, other) = (user_name("f"), user_name("g"));
    let _users = UserGuard(vec![u.clone(), other.clone()]);
    let sb = Sandbox::new("fail");
    let corral = sb.start_corral();
    let Some(nginx) = SitesNginx::start(&sb.path("nginx")) else {
        return;
    };
    let env = sb.env(Some(&corral), Some(&nginx));
    // Another site that must not be disturbed.
    let dother = domain("g");
    ok(&sb.site(&env, &[], &["add", &dother, "--user", &other]));
    let other_pids = pool_pids(&corral, &dother);
    let users = [u.clone(), other.clone()];

    let d = domain("f");
    let add = [
        "add",
        d.as_str(),
        "--user",
        u.as_str(),
        "--template",
        "wordpress",
    ];
    let mut dry: Vec<&str> = add.to_vec();
    dry.push("--dry-run");
    let o = ok(&sb.site(&env, &[], &dry)).stdout.clone();
    let steps: Vec<String> = o
        .lines()
        .find_map(|l| l.strip_prefix("steps: "))
        .expect("dry run lists steps")
        .split_whitespace()
        .map(str::to_string)
        .collect();
    for must in [
        "group",
        "user",
        "php-user",
        "acl:site",
        "pool-file",
        "pool-validate",
        "vhost-file",
        "webserver-test",
        "pool-reload",
        "webserver-reload",
        "verify",
        "registry",
    ] {
        assert!(
            steps.iter().any(|s| s == must),
            "{must} missing from {steps:?}"
        );
    }

    let before = sb.snapshot(&users);
    for step in &steps {
        let o = sb.site(&env, &[("CORRAL_SITES_FAIL_AT", step)], &add);
        assert_ne!(o.code, Some(0), "injected failure at {step} did not fail");
        assert!(
            o.stderr.contains(&format!("step '{step}' failed")),
            "{step}: {}",
            o.all()
        );
        assert!(o.stderr.contains("rolled back"), "{step}: {}", o.all());
        let after = sb.snapshot(&users);
        assert!(
            before == after,
            "failure at {step} left changes:\n{}",
            snapshot_diff(&before, &after)
        );
        assert!(common::uid_of(&u).is_none(), "{step}: user left behind");
        assert_eq!(nginx.get(&d, "/").status, 404, "{step}: vhost left live");
        // A stopped pool's workers drain for a moment.
        wait_for(
            || corral.control(&["status", &d]).code != Some(0),
            &format!("{step}: pool left running"),
        );
    }
    assert_eq!(
        other_pids,
        pool_pids(&corral, &dother),
        "the other site's workers were touched"
    );

    // A real failure: the web server rejects the vhost.
    let env_bad: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| {
            if k == "CORRAL_SITES_WEBSERVER_TEST" {
                (k.clone(), "false".into())
            } else {
                (k.clone(), v.clone())
            }
        })
        .collect();
    let o = sb.site(&env_bad, &[], &add);
    assert!(
        o.stderr.contains("step 'webserver-test' failed"),
        "{}",
        o.all()
    );
    assert!(before == sb.snapshot(&users));

    // Removal: each failed step restores the site as it was.
    ok(&sb.site(&env, &[], &add));
    let o = ok(&sb.site(&env, &[], &["remove", &d, "--dry-run"]))
        .stdout
        .clone();
    let steps: Vec<String> = o
        .lines()
        .find_map(|l| l.strip_prefix("steps: "))
        .unwrap()
        .split_whitespace()
        .map(str::to_string)
        .collect();
    assert!(
        steps.iter().any(|s| s == "files") && steps.iter().any(|s| s == "user"),
        "{steps:?}"
    );
    let with_site = sb.snapshot(&users);
    for step in &steps {
        let o = sb.site(
            &env,
            &[("CORRAL_SITES_FAIL_AT", step)],
            &["remove", &d, "--yes"],
        );
        assert_ne!(
            o.code,
            Some(0),
            "remove: injected failure at {step} did not fail"
        );
        let after = sb.snapshot(&users);
        assert!(
            with_site == after,
            "remove failing at {step} left changes:\n{}",
            snapshot_diff(&with_site, &after)
        );
        wait_for(
            || nginx.get(&d, "/").status != 404,
            &format!("remove failing at {step}: site not served again"),
        );
    }
    ok(&sb.site(&env, &[], &["remove", &d, "--yes"]));
    ok(&sb.site(&env, &[], &["remove", &dother, "--yes"]));
}

fn wait_for(cond: impl Fn() -> bool, what: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(std::time::Instant::now() < deadline, "{what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn remove_leaves_nothing_and_keep_files_keeps_files() {
    if !ready() {
        return;
    }
    let u = user_name("r");
    let _users = UserGuard(vec![u.clone()]);
    let sb = Sandbox::new("rm");
    let corral = sb.start_corral();
    let Some(nginx) = SitesNginx::start(&sb.path("nginx")) else {
        return;
    };
    let env = sb.env(Some(&corral), Some(&nginx));
    let d = domain("r");
    // The first add closes the pool dir for good (0700, see
    // `pool_dir_is_closed_and_a_failed_add_reopens_it`): start closed.
    fs::set_permissions(sb.path("pool.d"), fs::Permissions::from_mode(0o700)).unwrap();
    let empty = sb.snapshot(std::slice::from_ref(&u));
    ok(&sb.site(&env, &[], &["add", &d, "--user", &u]));
    write_as_owner(
        &sb.docroot(&u, &d).join("index.php"),
        "<?php echo 'hi';",
        &u,
    );
    assert_eq!(nginx.get(&d, "/").body, "hi");

    // Without --yes and without a terminal: refused, nothing changes.
    let with_site = sb.snapshot(std::slice::from_ref(&u));
    let o = sb.site(&env, &[], &["remove", &d]);
    assert_ne!(o.code, Some(0));
    assert!(o.stderr.contains("--yes"), "{}", o.all());
    assert!(with_site == sb.snapshot(std::slice::from_ref(&u)));

    ok(&sb.site(&env, &[], &["remove", &d, "--yes", "--purge"]));
    let after = sb.snapshot(std::slice::from_ref(&u));
    assert!(
        empty == after,
        "remove left:\n{}",
        snapshot_diff(&empty, &after)
    );
    assert!(common::uid_of(&u).is_none() && common::uid_of(&format!("{u}-php")).is_none());
    assert!(common::gid_of_group(&u).is_none());
    assert!(
        !sb.path("run").join(format!("corral-{d}.sock")).exists(),
        "socket left"
    );
    wait_for(
        || corral.control(&["status", &d]).code != Some(0),
        "pool still running",
    );
    assert_eq!(nginx.get(&d, "/").status, 404);

    // --keep-files: the files and their accounts stay; add adopts them.
    ok(&sb.site(&env, &[], &["add", &d, "--user", &u]));
    let index = sb.docroot(&u, &d).join("index.php");
    write_as_owner(&index, "<?php echo 'kept';", &u);
    ok(&sb.site(&env, &[], &["remove", &d, "--yes", "--keep-files"]));
    assert!(index.exists());
    assert!(common::uid_of(&u).is_some());
    assert!(!sb.path("pool.d").join(format!("{d}.conf")).exists());
    assert!(!sb.path("nginx").join(format!("{d}.conf")).exists());
    assert!(!sb.path("state").join(format!("{d}.json")).exists());
    ok(&sb.site(&env, &[], &["add", &d, "--user", &u]));
    // nginx's previous generation may answer for a moment after a reload.
    wait_for(
        || nginx.get(&d, "/").body == "kept",
        "kept files not served",
    );
    // The default: the home goes, an archive of it stays (root's, 0600).
    let o = ok(&sb.site(&env, &[], &["remove", &d, "--yes"]))
        .stdout
        .clone();
    assert!(!sb.home(&u).exists());
    assert!(o.contains("kept an archive"), "{o}");
    let archives: Vec<_> = fs::read_dir(sb.path("archive"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert_eq!(archives.len(), 1, "{archives:?}");
    let m = fs::metadata(&archives[0]).unwrap();
    assert_eq!((m.uid(), m.mode() & 0o777), (0, 0o600));
    let listing = std::process::Command::new("tar")
        .args(["-tzvf"])
        .arg(&archives[0])
        .output()
        .unwrap();
    let listing = String::from_utf8_lossy(&listing.stdout);
    assert!(
        listing.contains(&format!("{u}/htdocs/{d}/index.php")),
        "{listing}"
    );
}

#[test]
fn site_set_reloads_only_that_pool() {
    if !ready() {
        return;
    }
    let (ua, ub) = (user_name("s"), user_name("t"));
    let _users = UserGuard(vec![ua.clone(), ub.clone()]);
    let sb = Sandbox::new("set");
    let corral = sb.start_corral();
    let Some(nginx) = SitesNginx::start(&sb.path("nginx")) else {
        return;
    };
    let env = sb.env(Some(&corral), Some(&nginx));
    let (da, db) = (domain("s"), domain("t"));
    ok(&sb.site(&env, &[], &["add", &da, "--user", &ua]));
    ok(&sb.site(&env, &[], &["add", &db, "--user", &ub]));
    write_as_owner(
        &sb.docroot(&ua, &da).join("m.php"),
        "<?php echo ini_get('memory_limit');",
        &ua,
    );
    assert_eq!(nginx.get(&da, "/m.php").body, "128M");
    let (pa, pb) = (pool_pids(&corral, &da), pool_pids(&corral, &db));
    assert!(!pa.is_empty() && !pb.is_empty());

    let o = ok(&sb.site(
        &env,
        &[],
        &["set", &da, "memory_limit=256M", "pm.max_children=3"],
    ))
    .stdout
    .clone();
    assert!(o.contains("updated"), "{o}");
    let pool = fs::read_to_string(sb.path("pool.d").join(format!("{da}.conf"))).unwrap();
    assert!(
        pool.contains("php_admin_value[memory_limit] = 256M")
            && pool.contains("pm.max_children = 3"),
        "{pool}"
    );
    // The pens moved with the pool's size: 3 × 256M × 1.25 + 128M, 4 × 3 + 16.
    assert!(
        pool.contains("corral.memory_max = 1088M") && pool.contains("corral.pids_max = 28"),
        "{pool}"
    );
    // An explicit limit wins, and `none` drops it.
    ok(&sb.site(
        &env,
        &[],
        &["set", &da, "corral.memory_max=512M", "corral.cpu_max=50%"],
    ));
    let pool = fs::read_to_string(sb.path("pool.d").join(format!("{da}.conf"))).unwrap();
    assert!(
        pool.contains("corral.memory_max = 512M") && pool.contains("corral.cpu_max = 50%"),
        "{pool}"
    );
    ok(&sb.site(
        &env,
        &[],
        &["set", &da, "corral.memory_max=none", "corral.cpu_max="],
    ));
    let pool = fs::read_to_string(sb.path("pool.d").join(format!("{da}.conf"))).unwrap();
    // `KEY=` goes back to the template's value: cpu_max = auto, every CPU
    // of the host but one.
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let auto_cpu = format!("corral.cpu_max = {}%", cpus.saturating_sub(1).max(1) * 100);
    assert!(
        !pool.contains("corral.memory_max")
            && !pool.contains("corral.swap_max")
            && pool.contains(&auto_cpu),
        "{pool}"
    );
    ok(&sb.site(&env, &[], &["set", &da, "corral.memory_max="]));
    assert_eq!(pb, pool_pids(&corral, &db), "B's workers changed");
    wait_for(
        || nginx.get(&da, "/m.php").body == "256M",
        "new memory_limit not served",
    );
    assert_eq!(pb, pool_pids(&corral, &db), "B's workers changed");
    wait_for(
        || pool_pids(&corral, &da).iter().all(|p| !pa.contains(p)),
        "A's workers were not replaced",
    );

    // The override is recorded; `KEY=` drops it again.
    let show = ok(&sb.site(&env, &[], &["show", &da, "--json"]))
        .stdout
        .clone();
    assert!(show.contains("\"memory_limit\":\"256M\""), "{show}");
    ok(&sb.site(&env, &[], &["set", &da, "memory_limit="]));
    wait_for(
        || nginx.get(&da, "/m.php").body == "128M",
        "override not dropped",
    );
    assert_eq!(pb, pool_pids(&corral, &db), "B's workers changed");

    // disable / enable.
    ok(&sb.site(&env, &[], &["disable", &da]));
    assert!(sb
        .path("pool.d")
        .join(format!("{da}.conf.disabled"))
        .exists());
    // The web server itself says the site is suspended (not its default
    // server, not a dead socket's 502), for every path.
    wait_for(
        || nginx.get(&da, "/m.php").status == 503,
        "not suspended after disable",
    );
    // (nginx's previous workers may still answer a request or two.)
    for path in ["/", "/m.php", "/wp-login.php", "/static.css"] {
        wait_for(
            || {
                let r = nginx.get(&da, path);
                r.status == 503 && r.body.contains("suspended")
            },
            &format!("{path} not suspended"),
        );
    }
    wait_for(
        || corral.control(&["status", &da]).code != Some(0),
        "pool still running after disable",
    );
    ok(&sb.site(&env, &[], &["enable", &da]));
    wait_for(
        || nginx.get(&da, "/m.php").body == "128M",
        "not served after enable",
    );
    assert_eq!(pb, pool_pids(&corral, &db), "B's workers changed");

    // tune measures the running workers.
    let o = common::run_cmd(
        &common::corral_bin(),
        &[
            "tune",
            "--control-socket",
            &corral.control_socket().display().to_string(),
            "--json",
        ],
    );
    let v: serde_json::Value =
        serde_json::from_str(o.stdout.trim()).unwrap_or_else(|e| panic!("{e}: {}", o.all()));
    let rec = v["recommendations"].as_array().unwrap();
    let b = rec.iter().find(|r| r["pool"] == db.as_str()).unwrap();
    assert!(b["workers_measured"].as_u64().unwrap() >= 1, "{v}");
    assert!(b["recommended_max_children"].as_u64().unwrap() >= 1, "{v}");

    ok(&sb.site(&env, &[], &["remove", &da, "--yes"]));
    ok(&sb.site(&env, &[], &["remove", &db, "--yes"]));
}

#[test]
fn a_foreign_user_of_the_same_name_is_refused() {
    if !require_root() || require_bin("setfacl").is_none() {
        return;
    }
    let u = user_name("x");
    let _users = UserGuard(vec![u.clone()]);
    common::ensure_system_user(&u);
    let sb = Sandbox::new("foreign");
    let env = sb.env(None, None);
    let before = sb.snapshot(std::slice::from_ref(&u));
    let o = sb.site(&env, &[], &["add", &domain("x"), "--user", &u, "--offline"]);
    assert_ne!(o.code, Some(0));
    assert!(
        o.stderr.contains("is not a corral site's account"),
        "{}",
        o.all()
    );
    assert!(before == sb.snapshot(std::slice::from_ref(&u)));
}

#[test]
fn sizing_refuses_unless_forced_and_dry_run_changes_nothing() {
    if !require_root() || require_bin("setfacl").is_none() {
        return;
    }
    let u = user_name("z");
    let _users = UserGuard(vec![u.clone()]);
    let sb = Sandbox::new("size");
    let mut env = sb.env(None, None);
    env.push(("CORRAL_SITES_MEM_TOTAL".into(), "100M".into()));
    let d = domain("z");
    let before = sb.snapshot(std::slice::from_ref(&u));
    let o = sb.site(&env, &[], &["add", &d, "--user", &u, "--offline"]);
    assert_ne!(o.code, Some(0));
    assert!(
        o.stderr.contains("not enough memory for PHP"),
        "{}",
        o.all()
    );
    let o = sb.site(
        &env,
        &[],
        &[
            "add",
            &d,
            "--user",
            &u,
            "--set",
            "pm.max_children=1",
            "--set",
            "pm.max_spare_servers=1",
            "--dry-run",
        ],
    );
    ok(&o);
    assert!(o.stdout.contains("would create user"), "{}", o.all());
    let o = ok(&sb.site(
        &env,
        &[],
        &["add", &d, "--user", &u, "--force", "--dry-run"],
    ))
    .stdout
    .clone();
    assert!(o.contains("dry run: nothing was changed"));
    let after = sb.snapshot(std::slice::from_ref(&u));
    assert!(
        before == after,
        "dry run changed:\n{}",
        snapshot_diff(&before, &after)
    );
    assert!(common::uid_of(&u).is_none());
}

#[test]
fn concurrent_commands_are_serialised() {
    if !require_root() || require_bin("setfacl").is_none() {
        return;
    }
    let names: Vec<String> = (0..4).map(|i| user_name(&format!("c{i}"))).collect();
    let _users = UserGuard(names.clone());
    let sb = Sandbox::new("conc");
    let env = sb.env(None, None);
    std::thread::scope(|s| {
        for (i, u) in names.iter().enumerate() {
            let (sb, env) = (&sb, &env);
            s.spawn(move || {
                ok(&sb.site(
                    env,
                    &[],
                    &["add", &domain(&format!("c{i}")), "--user", u, "--offline"],
                ))
                .code
            });
        }
    });
    let o = ok(&sb.site(&env, &[], &["list", "--json"])).stdout.clone();
    let v: serde_json::Value = serde_json::from_str(o.trim()).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 4, "{o}");
    let uids: std::collections::BTreeSet<u64> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["uid"].as_u64().unwrap())
        .collect();
    assert_eq!(uids.len(), 4);
    assert!(uids.iter().all(|u| *u >= 1000));
    for i in 0..4 {
        ok(&sb.site(&env, &[], &["remove", &domain(&format!("c{i}")), "--yes"]));
    }
}

#[test]
fn pool_dir_is_closed_and_a_failed_add_reopens_it() {
    if !require_root() || require_bin("setfacl").is_none() {
        return;
    }
    let u = user_name("d");
    let _users = UserGuard(vec![u.clone()]);
    let sb = Sandbox::new("pooldir");
    let env = sb.env(None, None);
    let d = domain("d");
    let mode = || fs::metadata(sb.path("pool.d")).unwrap().mode() & 0o7777;
    assert_eq!(mode(), 0o755, "Debian's pool.d mode");
    let o = sb.site(
        &env,
        &[("CORRAL_SITES_FAIL_AT", "pool-file")],
        &["add", &d, "--user", &u, "--offline"],
    );
    assert_ne!(o.code, Some(0));
    assert_eq!(mode(), 0o755, "rolled back with the rest:\n{}", o.all());
    ok(&sb.site(&env, &[], &["add", &d, "--user", &u, "--offline"]));
    assert_eq!(mode(), 0o700);
    let m = fs::metadata(sb.path("pool.d").join(format!("{d}.conf"))).unwrap();
    assert_eq!((m.mode() & 0o7777, m.uid(), m.gid()), (0o600, 0, 0));
    ok(&sb.site(&env, &[], &["remove", &d, "--yes"]));
}
