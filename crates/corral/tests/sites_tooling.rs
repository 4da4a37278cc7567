//! `corral site` tells the truth: typos in `set` are refused with the
//! nearest name, an add with no master fails unless `--offline`, domains
//! are normalised or refused, a PHP version without its libphp is refused
//! before anything changes, dry runs show names and diffs, and `tune`
//! measures warmed-up workers and never recommends more than memory
//! allows.

mod common;
mod sites_support;

use std::fs;

use common::{require_bin, require_root};
use sites_support::*;

fn ready() -> bool {
    require_root() && require_bin("nginx").is_some() && require_bin("setfacl").is_some()
}

#[test]
fn typos_in_set_are_refused_with_the_nearest_name() {
    if !ready() {
        return;
    }
    let u = user_name("k");
    let _users = UserGuard(vec![u.clone()]);
    let sb = Sandbox::new("keys");
    let corral = sb.start_corral();
    let Some(nginx) = SitesNginx::start(&sb.path("nginx")) else {
        return;
    };
    let env = sb.env(Some(&corral), Some(&nginx));
    let d = format!("k{}.test", std::process::id());
    let users = [u.clone()];
    let empty = sb.snapshot(&users);
    let o = sb.site(
        &env,
        &[],
        &["add", &d, "--user", &u, "--set", "memroy_limit=1G"],
    );
    assert_ne!(o.code, Some(0));
    assert!(
        o.stderr.contains("did you mean 'memory_limit'"),
        "{}",
        o.all()
    );
    assert!(
        empty == sb.snapshot(&users),
        "a refused add changed the host"
    );

    ok(&sb.site(&env, &[], &["add", &d, "--user", &u]));
    let before = sb.snapshot(&users);
    for (typo, meant) in [
        ("memroy_limit=1G", "memory_limit"),
        ("pm.max_chidren=3", "pm.max_children"),
        ("corral.memroy_max=1G", "corral.memory_max"),
        ("upload_max_filsize=8M", "upload_max_filesize"),
    ] {
        let o = sb.site(&env, &[], &["set", &d, typo]);
        assert_ne!(o.code, Some(0), "{typo} accepted");
        assert!(
            o.stderr.contains(&format!("did you mean '{meant}'")),
            "{typo}: {}",
            o.all()
        );
    }
    let after = sb.snapshot(&users);
    assert!(
        before == after,
        "refused sets changed:\n{}",
        snapshot_diff(&before, &after)
    );
    // Real names pass: a pool directive, an ini name PHP lists, and the
    // array form that sets any name unchecked.
    ok(&sb.site(
        &env,
        &[],
        &[
            "set",
            &d,
            "pm.max_children=4",
            "max_execution_time=20",
            "php_admin_value[custom.ext_setting]=1",
        ],
    ));
    let pool = fs::read_to_string(sb.path("pool.d").join(format!("{d}.conf"))).unwrap();
    assert!(
        pool.contains("pm.max_children = 4")
            && pool.contains("php_admin_value[max_execution_time] = 20")
            && pool.contains("php_admin_value[custom.ext_setting] = 1"),
        "{pool}"
    );
    ok(&sb.site(&env, &[], &["remove", &d, "--yes", "--purge"]));
}

#[test]
fn no_master_no_site_unless_offline() {
    if !require_root() || require_bin("setfacl").is_none() {
        return;
    }
    let u = user_name("o");
    let _users = UserGuard(vec![u.clone()]);
    let sb = Sandbox::new("offline");
    let env = sb.env(None, None);
    let d = format!("o{}.test", std::process::id());
    let users = [u.clone()];
    let empty = sb.snapshot(&users);
    let o = sb.site(&env, &[], &["add", &d, "--user", &u]);
    assert_eq!(o.code, Some(69), "EX_UNAVAILABLE: {}", o.all());
    assert!(
        o.stderr.contains("no corral master answers") && o.stderr.contains("--offline"),
        "{}",
        o.all()
    );
    assert!(!o.stdout.contains("added"), "{}", o.all());
    assert!(empty == sb.snapshot(&users));
    assert!(common::uid_of(&u).is_none());
    let o = ok(&sb.site(&env, &[], &["add", &d, "--user", &u, "--offline"]))
        .stdout
        .clone();
    assert!(o.contains("starts with the next start"), "{o}");
    assert!(sb.path("pool.d").join(format!("{d}.conf")).exists());
    ok(&sb.site(&env, &[], &["remove", &d, "--yes", "--purge"]));
}

#[test]
fn domains_are_normalised_and_non_names_refused() {
    if !require_root() || require_bin("setfacl").is_none() {
        return;
    }
    let u = user_name("n");
    let _users = UserGuard(vec![u.clone()]);
    let sb = Sandbox::new("names");
    let env = sb.env(None, None);
    let pid = std::process::id();
    for bad in ["localhost", "1.2.3.4", "::1", "intranet", "shop.localhost"] {
        let o = sb.site(&env, &[], &["add", bad, "--user", &u, "--offline"]);
        assert_ne!(o.code, Some(0), "{bad} accepted");
        assert!(o.stderr.contains("invalid domain"), "{bad}: {}", o.all());
    }
    assert!(common::uid_of(&u).is_none());
    // Uppercase is lowered and an IDN becomes punycode, everywhere.
    let typed = format!("Bücher{pid}.EXAMPLE");
    let o = ok(&sb.site(&env, &[], &["add", &typed, "--user", &u, "--offline"]))
        .stdout
        .clone();
    let ascii = o
        .lines()
        .find_map(|l| l.strip_prefix("site ")?.strip_suffix(": added"))
        .unwrap_or_else(|| panic!("{o}"))
        .to_string();
    assert!(
        ascii.starts_with(&format!("xn--bcher{pid}-")) && ascii.ends_with(".example"),
        "punycode, lowercased: {ascii}"
    );
    assert!(sb.path("state").join(format!("{ascii}.json")).exists());
    assert!(sb.path("pool.d").join(format!("{ascii}.conf")).exists());
    let vhost = fs::read_to_string(sb.path("nginx").join(format!("{ascii}.conf"))).unwrap();
    assert!(vhost.contains(&format!("server_name {ascii};")), "{vhost}");
    // Another spelling names the same site.
    ok(&sb.site(&env, &[], &["show", &format!("BÜCHER{pid}.example")]));
    ok(&sb.site(&env, &[], &["remove", &typed, "--yes", "--purge"]));
}

#[test]
fn a_php_version_without_its_libphp_is_refused_early() {
    if !require_root() || require_bin("setfacl").is_none() {
        return;
    }
    let u = user_name("v");
    let _users = UserGuard(vec![u.clone()]);
    let sb = Sandbox::new("phpver");
    let lib = sb.path("lib");
    fs::create_dir(&lib).unwrap();
    fs::write(lib.join("libphp8.2.so"), "").unwrap();
    let mut env = sb.env(None, None);
    env.push(("CORRAL_SITES_LIBPHP_DIR".into(), lib.display().to_string()));
    let d = format!("v{}.test", std::process::id());
    let users = [u.clone()];
    let empty = sb.snapshot(&users);
    for args in [
        vec!["add", &d, "--user", &u, "--php-version", "8.3", "--offline"],
        vec![
            "add",
            &d,
            "--user",
            &u,
            "--php-version",
            "8.3",
            "--offline",
            "--dry-run",
        ],
    ] {
        let o = sb.site(&env, &[], &args);
        assert_ne!(o.code, Some(0), "{args:?}");
        assert!(o.stderr.contains("PHP 8.3 is not installed"), "{}", o.all());
        assert!(
            !o.stdout.contains("[group]"),
            "refused before any step: {}",
            o.all()
        );
    }
    assert!(empty == sb.snapshot(&users));
    ok(&sb.site(&env, &[], &["add", &d, "--user", &u, "--offline"]));
    let o = sb.site(&env, &[], &["set", &d, "php_version=8.3", "--offline"]);
    assert!(o.stderr.contains("PHP 8.3 is not installed"), "{}", o.all());
    ok(&sb.site(&env, &[], &["remove", &d, "--yes", "--purge"]));
}

#[test]
fn dry_runs_show_names_and_diffs() {
    if !require_root() || require_bin("setfacl").is_none() {
        return;
    }
    let u = user_name("y");
    let _users = UserGuard(vec![u.clone()]);
    let sb = Sandbox::new("dry");
    let env = sb.env(None, None);
    let d = format!("y{}.test", std::process::id());
    let o = ok(&sb.site(
        &env,
        &[],
        &["add", &d, "--user", &u, "--offline", "--dry-run"],
    ))
    .stdout
    .clone();
    assert!(
        !o.contains("4294967295"),
        "ids of accounts not made yet:\n{o}"
    );
    assert!(o.contains(&format!("(0750, {u}:{u})")), "{o}");
    let pool = sb.path("pool.d").join(format!("{d}.conf"));
    assert!(o.contains(&format!("+++ {}", pool.display())), "{o}");
    assert!(o.contains(&format!("+user = {u}-php")), "{o}");
    assert!(!pool.exists());

    ok(&sb.site(&env, &[], &["add", &d, "--user", &u, "--offline"]));
    let before = fs::read_to_string(&pool).unwrap();
    let o = ok(&sb.site(
        &env,
        &[],
        &["set", &d, "memory_limit=256M", "--offline", "--dry-run"],
    ))
    .stdout
    .clone();
    assert!(
        o.contains("-php_admin_value[memory_limit] = 128M")
            && o.contains("+php_admin_value[memory_limit] = 256M"),
        "{o}"
    );
    // Only what changes, with the derived pens that move with it.
    assert!(o.contains("+corral.memory_max = "), "{o}");
    assert!(
        !o.contains("+user = "),
        "unchanged lines are context, not changes:\n{o}"
    );
    assert_eq!(before, fs::read_to_string(&pool).unwrap());
    ok(&sb.site(&env, &[], &["remove", &d, "--yes", "--purge"]));
}

#[test]
fn tune_measures_warmed_workers_and_fits_memory() {
    if !ready() {
        return;
    }
    let u = user_name("u");
    let _users = UserGuard(vec![u.clone()]);
    let sb = Sandbox::new("tune");
    let corral = sb.start_corral();
    let Some(nginx) = SitesNginx::start(&sb.path("nginx")) else {
        return;
    };
    let env = sb.env(Some(&corral), Some(&nginx));
    let d = format!("u{}.test", std::process::id());
    ok(&sb.site(&env, &[], &["add", &d, "--user", &u]));
    write_as_owner(
        &sb.docroot(&u, &d).join("work.php"),
        "<?php $a = str_repeat('x', 8 << 20); echo strlen($a);",
        &u,
    );
    for _ in 0..5 {
        assert_eq!(nginx.get(&d, "/work.php").body, (8 << 20).to_string());
    }
    let control = corral.control_socket().display().to_string();
    let tune = |mem: &str, json: bool| {
        let mut args = vec![
            "tune",
            "--control-socket",
            control.as_str(),
            "--mem-total",
            mem,
        ];
        if json {
            args.push("--json");
        }
        common::run_cmd(&common::corral_bin(), &args)
    };
    let o = tune("4G", true);
    let v: serde_json::Value =
        serde_json::from_str(o.stdout.trim()).unwrap_or_else(|e| panic!("{e}: {}", o.all()));
    let recs = v["recommendations"].as_array().unwrap();
    let pools = v["pools"].as_u64().unwrap();
    let php_ram = v["php_ram_bytes"].as_u64().unwrap();
    assert_eq!(v["mem_total_bytes"].as_u64(), Some(4 << 30));
    let site = recs.iter().find(|r| r["pool"] == d.as_str()).unwrap();
    assert!(site["workers_measured"].as_u64().unwrap() >= 1, "{v}");
    assert_eq!(site["estimated"], false, "{v}");
    // The keeper pool's only worker never served a request: skipped.
    let keeper = recs.iter().find(|r| r["pool"] == "keeper").unwrap();
    assert_eq!(keeper["workers_measured"], 0, "{v}");
    assert_eq!(keeper["workers_fresh_skipped"], 1, "{v}");
    assert_eq!(keeper["estimated"], true, "{v}");
    for r in recs {
        let n = r["recommended_max_children"].as_u64().unwrap();
        let per = r["per_worker_bytes"].as_u64().unwrap();
        assert!(per >= r["avg_pss_bytes"].as_u64().unwrap());
        assert!(n * per * pools <= php_ram, "more than memory allows: {r}");
        assert!(
            (n + 1) * per > php_ram / pools,
            "not the most that fits: {r}"
        );
    }
    // A host too small for even one such worker: 0, and it says so.
    let o = tune("8M", false);
    assert!(o.stdout.contains("inputs: MemTotal 8.0 MiB"), "{}", o.all());
    assert!(o.stdout.contains("not even one worker"), "{}", o.all());
    ok(&sb.site(&env, &[], &["remove", &d, "--yes", "--purge"]));
}
