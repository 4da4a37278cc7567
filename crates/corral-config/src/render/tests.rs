//! `parse_str(render_pool(..))` gives the pool back.

use std::path::Path;

use proptest::prelude::*;

use crate::directives::Value;
use crate::{parse_str, render_pool, Config, LoadOptions, Location, PhpIniValue, Pool};

fn resolved() -> LoadOptions {
    LoadOptions {
        resolved: true,
        ..Default::default()
    }
}

/// The pool without what cannot (and need not) come back: where its
/// section was, and the `-tt` copies of the arrays as written.
fn runtime(p: &Pool) -> Pool {
    let mut p = p.clone();
    p.source = Location::default();
    p.raw_env.clear();
    p.raw_php_values.clear();
    p.raw_php_admin_values.clear();
    p
}

fn reparse(c: &Config, name: &str) -> (String, Config) {
    let text = render_pool(c, name).expect("pool exists");
    let r = parse_str(&text, Path::new("rendered.conf"), &resolved())
        .unwrap_or_else(|e| panic!("{e}\n--- rendered:\n{text}"));
    (text, r)
}

fn assert_round_trip(c: &Config) {
    for p in &c.pools {
        let (text, r) = reparse(c, &p.name);
        assert_eq!(r.pools.len(), 1, "{text}");
        assert_eq!(runtime(&r.pools[0]), runtime(p), "--- rendered:\n{text}");
        assert_eq!(r.global.log_level, c.global.log_level);
        assert_eq!(r.global.log_limit, c.global.log_limit);
        assert!(r.warnings.is_empty(), "{:?}", r.warnings);
        // Rendering is a fixed point.
        assert_eq!(render_pool(&r, &p.name).unwrap(), text);
    }
}

fn load_with(text: &str, o: &LoadOptions) -> Config {
    parse_str(text, Path::new("t.conf"), o).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

fn load(text: &str) -> Config {
    load_with(
        text,
        &LoadOptions {
            allow_run_as_root: true,
            ..Default::default()
        },
    )
}

const HEAD: &str = "[www]\nuser = nobody\nlisten = /tmp/corral-test.sock\n";

/// The configurations the load tests and the php-fpm comparison use.
const SAMPLES: &[&str] = &[
    "pm = static\npm.max_children = 5",
    "pm = dynamic\npm.max_children = 5\npm.min_spare_servers = 1\npm.max_spare_servers = 3",
    "pm = ondemand\npm.max_children = 5\npm.min_spare_servers = 4\nlisten.backlog = -5",
    "pm = static\npm.max_children = 1\npm.status_listen = 127.0.0.1:9001",
    "pm = static\npm.max_children = 1\npm.status_listen = rel.sock\nping.path = /ping",
    "pm = static\npm.max_children = 1\nphp_value[precision] = 10\nphp_admin_value[memory_limit] = 1G\nphp_value[precision] = 12\nphp_flag[display_errors] = on\nphp_admin_flag[log_errors] = off\nphp_value[error_reporting] = E_ALL & ~E_NOTICE\nenv[HOMEX] = $HOME\nenv[A] = $pool-x\nenv[NOPE] = $CORRAL_SURELY_UNSET\nphp_value[session.save_path] = /tmp/$pool\nenv[A] = again",
    "pm = static\npm.max_children = 1\nrequest_terminate_timeout = 1.5m\nrequest_slowlog_timeout = 2s\nslowlog = /tmp/x\nprocess.priority = -5\nrlimit_core = unlimited\nrlimit_files = 1024\nlisten.mode = 0600\nlisten.allowed_clients = 127.0.0.1, ::1\nsecurity.limit_extensions = .php\t.php7  .html\nlisten.acl_users = a,b",
    "pm = static\npm.max_children = 1\nslowlog = /tmp/s\nrequest_slowlog_trace_depth = 7\nrlimit_core = 0\nprocess.priority = 64\nprocess.dumpable = yes\ncatch_workers_output = yes\ndecorate_workers_output = no\nclear_env = no\nrequest_terminate_timeout_track_finished = on\napparmor_hat = hat\ngroup = nogroup\nlisten.owner = o\nlisten.group = g\nlisten.acl_groups = x\npm.max_requests = 500\npm.max_spawn_rate = 4\npm.process_idle_timeout = 1m\nping.path = /ping\nping.response = \"  yes; \"\npm.status_path = /status",
    "pm = static\npm.max_children = 1\naccess.log = /tmp/a.log\naccess.suppress_path[] = /ping\naccess.suppress_path[] = /$pool\nphp_value[a] = 1\nphp_value[a] = 2",
    "pm = static\npm.max_children = 1\naccess.log = log/$pool.access\naccess.format = \"%{REQUEST_URI}e %{mili}d \\\"%m\\\"\"\nuser = \"\"\nphp_value[q] = \"a \\\"b\\\" c\"\nphp_value[semi] = \"x;y=z\"\nphp_value[pad] = \"  padded  \"\nphp_value[kw] = \"none\"\nphp_value[empty] = \"\"\nphp_value[dollar] = 'lit${HOME}$pool'\nphp_value[bs] = \"a\\\\b\\\\\"\nphp_value[ h ] = a b   c  \nphp_value[\"we;ird]key\"] = v\nenv[\"K Y\"] = \"$notavar\"",
];

#[test]
fn sample_configs_round_trip() {
    for extra in SAMPLES {
        assert_round_trip(&load(&format!("{HEAD}{extra}\n")));
    }
    // The php-fpm comparison configs (several pools, a reopened section,
    // relative paths, global settings).
    let dir = tempfile::tempdir().unwrap();
    for text in [
        "[global]\nerror_log = /tmp/corral-cmp.log\nlog_level = notice\n[www]\nuser = nobody\nlisten = 127.0.0.1:9999\npm = ondemand\npm.max_children = 3\naccess.log = /tmp/corral-cmp-acc.log\naccess.format = %R - %u %t \"%m %r\" %s\nphp_value[a] = %u \"%m %r\" %s\nphp_value[b] = E_ALL & ~E_NOTICE\nphp_flag[c] = yes\nphp_value[d] = Off\nphp_value[e] = 'single q'\nphp_value[ h ] = a b   c  \nphp_value[p] = foo$pool\nphp_value[a] = second\nenv[X] = $HOME\nenv[Y] = abc\nphp_admin_value[error_log] = log/x.log\nphp_admin_value[ERROR_LOG] = syslog\n",
        "[global]\nerror_log = /tmp/corral-cmp2.log\nsyslog.facility = local3\nlog_level = NOTICE\nprocess.priority = -2\nrlimit_core = unlimited\nemergency_restart_interval = 1m\ndaemonize = no\n[a]\nuser = nobody\nlisten = a.sock\npm = dynamic\npm.max_children = 5\npm.min_spare_servers = 1\npm.max_spare_servers = 3\nping.path = /ping\npm.status_path = /status\nslowlog = /tmp/corral-cmp-s.log\nrequest_slowlog_timeout = 5s\nrequest_terminate_timeout = 1h\naccess.suppress_path[] = /ping\naccess.suppress_path[] = /status\n[b]\nuser = nobody\nlisten = 9001\npm = static\npm.max_children = 2\npm.status_listen = 127.0.0.1:9002\nlisten.allowed_clients = 127.0.0.1\nsecurity.limit_extensions = .php .php8\n[A]\nclear_env = no\n",
        "[global]\nlog_level = debug\nlog_limit = 4096\n[site]\nuser = x\nlisten = run/$pool.sock\npm = static\npm.max_children = 1\naccess.log = log/$pool.access\nslowlog = /var/log/$pool.slow\nphp_admin_value[error_log] = log/e.log\nphp_value[error_log] = syslog\nphp_admin_value[ERROR_LOG] = syslog\nphp_value[sendmail_path] = sbin/sendmail\nphp_value[include_path] = rel\n",
    ] {
        let c = load(text);
        assert_round_trip(&c);
        let path = dir.path().join("c.conf");
        std::fs::write(&path, text).unwrap();
        let o = LoadOptions {
            allow_run_as_root: true,
            ..Default::default()
        };
        let from_file = crate::load(&path, &o).unwrap();
        let rt = |c: &Config| c.pools.iter().map(runtime).collect::<Vec<_>>();
        assert_eq!(rt(&from_file), rt(&c));
        assert_round_trip(&from_file);
    }
}

#[test]
fn prefixes_chroot_and_relative_paths_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir_all(d.join("pp/www")).unwrap();
    let text = "[global]\nerror_log = log/x.log\n[a]\nuser = x\nprefix = pp\nlisten = a.sock\npm = static\npm.max_children = 1\nchdir = www\nslowlog = s.log\naccess.log = a.log\nphp_admin_value[error_log] = e.log\nphp_value[sendmail_path] = sbin/sm\n[b]\nuser = x\nlisten = b.sock\npm = static\npm.max_children = 1\nchroot = $prefix/pp\nchdir = /www\nphp_value[error_log] = rel.log\n";
    let o = LoadOptions {
        prefix: Some(d.to_path_buf()),
        allow_run_as_root: true,
        ..Default::default()
    };
    let c = load_with(text, &o);
    assert_round_trip(&c);
    // The rendered text holds the absolute paths, and parsing it neither
    // needs the prefix nor looks at the directories.
    let (text, _) = reparse(&c, "a");
    let pp = d.join("pp").display().to_string();
    assert!(text.contains(&format!("chdir = \"{pp}/www\"")), "{text}");
    drop(dir);
    let (_, again) = reparse(&c, "a");
    assert_eq!(runtime(&again.pools[0]), runtime(&c.pools[0]));

    // A relative -p leaves relative "absolute" paths: only resolved
    // parsing keeps them from being prefixed twice.
    let o = LoadOptions {
        prefix: Some("src".into()),
        allow_run_as_root: true,
        ..Default::default()
    };
    let c = load_with(
        "[r]\nlisten = r.sock\npm = static\npm.max_children = 1\nphp_value[error_log] = e.log\n",
        &o,
    );
    assert_eq!(c.pools[0].listen_address, "src/r.sock");
    assert_round_trip(&c);
}

#[test]
fn resolved_values_are_not_resolved_again() {
    std::env::set_var("CORRAL_RENDER_DOLLAR", "$HOME");
    std::env::set_var("CORRAL_RENDER_NL", "line1\nline2");
    let o = LoadOptions {
        allow_run_as_root: true,
        ini_lookup: Some(Box::new(|n| {
            (n == "corral.render.test").then(|| "a\nb \"${x}\"".to_string())
        })),
        ..Default::default()
    };
    let c = load_with(
        "[\"p $pool\"]\nlisten = /tmp/p.sock\npm = static\npm.max_children = 1\nenv[D] = $CORRAL_RENDER_DOLLAR\nenv[N] = $CORRAL_RENDER_NL\nenv[U] = $CORRAL_RENDER_SURELY_UNSET\nenv[P] = $pool\nphp_value[i] = ${corral.render.test}\nphp_value[\"${corral.render.test}\"] = k\nuser = $pool\n",
        &o,
    );
    let p = &c.pools[0];
    assert_eq!(p.name, "p $pool");
    let env: Vec<(&str, &str)> = p
        .env
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        env,
        vec![
            ("P", "p $pool"),
            ("U", ""),
            ("N", "line1\nline2"),
            ("D", "$HOME")
        ]
    );
    // A `${` that came out of a lookup is not looked up again.
    assert_eq!(p.php_values[1].value, "a\nb \"${x}\"");
    assert_eq!(p.php_values[0].name, "a\nb \"${x}\"");
    assert_round_trip(&c);
    let (text, _) = reparse(&c, "P $POOL");
    assert!(text.contains("env[D] = \"\\$HOME\""), "{text}");
    assert!(text.contains("env[U] = \"\""), "{text}");
    assert!(text.contains("\"line1${corral:newline}line2\""), "{text}");
}

#[test]
fn resolved_parsing_looks_at_nothing_outside_the_text() {
    std::env::set_var("CORRAL_RENDER_OUTSIDE", "leak");
    let c = parse_str(
        "[x]\nlisten = rel.sock\npm = static\npm.max_children = 1\nprefix = /nonexistent-prefix\nchroot = /nonexistent-root\nchdir = /nope\nenv[A] = $CORRAL_RENDER_OUTSIDE\nphp_value[b] = ${CORRAL_RENDER_OUTSIDE}x\nphp_value[c] = \"${corral:newline}\"\nphp_value[error_log] = rel\nslowlog = s\n",
        Path::new("r"),
        &LoadOptions {
            resolved: true,
            prefix: Some("/nonexistent-global-prefix".into()),
            ..Default::default()
        },
    )
    .unwrap();
    let p = &c.pools[0];
    assert_eq!(p.listen_address, "rel.sock");
    assert_eq!(
        p.env,
        vec![("A".to_string(), "$CORRAL_RENDER_OUTSIDE".to_string())]
    );
    let vals: Vec<&str> = p.php_values.iter().map(|v| v.value.as_str()).collect();
    assert_eq!(vals, vec!["rel", "\n", "x"]);
    assert_eq!(p.slowlog.as_deref(), Some(Path::new("s")));
}

#[test]
fn unknown_pool_is_none() {
    let c = load(&format!("{HEAD}pm = static\npm.max_children = 1\n"));
    assert!(render_pool(&c, "nope").is_none());
    assert!(render_pool(&c, "WWW").is_some());
}

#[test]
fn rendering_a_pool_leaves_the_others_out() {
    let c = load(
        "[global]\nlog_level = warning\n[alpha]\nuser = ua\nlisten = /tmp/alpha.sock\npm = static\npm.max_children = 1\nenv[SHARED] = alpha-env-secret\nphp_admin_value[mysqli.default_pw] = alpha-admin-secret\nphp_value[x] = alpha-value\n[beta]\nuser = ub\nlisten = /tmp/beta.sock\npm = static\npm.max_children = 1\nenv[SHARED] = beta-env-secret\nenv[BETA_ONLY_KEY] = b2\nphp_admin_value[mysqli.default_pw] = beta-admin-secret\nphp_value[beta.only] = beta-value\nslowlog = /tmp/beta-slow.log\n",
    );
    for (me, other) in [("alpha", "beta"), ("beta", "alpha")] {
        let text = render_pool(&c, me).unwrap();
        assert!(!text.contains(other), "{other} in:\n{text}");
        let o = c.pool(other).unwrap();
        for (k, v) in &o.env {
            assert!(!text.contains(v.as_str()), "{v} in:\n{text}");
            if k != "SHARED" {
                assert!(!text.contains(k.as_str()), "{k} in:\n{text}");
            }
        }
        for v in &o.php_values {
            assert!(!text.contains(&v.value), "{} in:\n{text}", v.value);
        }
        let (_, r) = reparse(&c, me);
        assert_eq!(r.pools.len(), 1);
        assert_eq!(r.pools[0].name, me);
    }
}

fn text() -> impl Strategy<Value = String> {
    "[ -~\t\r\né€]{0,24}"
}

fn key() -> impl Strategy<Value = String> {
    "[ -~\té]{1,12}"
}

fn set_str(p: &mut Pool, name: &'static str, v: &str) {
    p.settings.set(name, Value::Str(v.to_string()));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn random_pools_round_trip(
        name in text().prop_filter("not global", |n| !n.eq_ignore_ascii_case("global")),
        env in proptest::collection::vec((key(), text()), 0..8),
        php in proptest::collection::vec((key(), text(), any::<bool>()), 0..8),
        user in text(),
        group in text(),
        owner in text(),
        hat in text(),
        listen in "[ -~]{1,20}",
        exts in text(),
        suppress in proptest::collection::vec(text(), 0..3),
        level in 0usize..5,
    ) {
        let mut c = load(&format!("[global]\nlog_level = {}\n{HEAD}pm = static\npm.max_children = 1\n",
            ["debug", "notice", "warning", "error", "alert"][level]));
        let p = &mut c.pools[0];
        p.name = name.clone();
        p.env = env;
        let mut vals: Vec<PhpIniValue> = Vec::new();
        for (name, value, admin) in php {
            if !vals.iter().any(|v| v.name == name && v.admin == admin) {
                vals.push(PhpIniValue { name, value, admin });
            }
        }
        vals.sort_by_key(|v| v.admin);
        p.php_values = vals;
        set_str(p, "user", &user);
        p.user = Some(user);
        set_str(p, "group", &group);
        p.group = Some(group);
        set_str(p, "listen.owner", &owner);
        p.listen_owner = Some(owner);
        set_str(p, "apparmor_hat", &hat);
        p.apparmor_hat = Some(hat);
        set_str(p, "listen", &listen);
        p.listen = crate::Listen::parse(&listen);
        p.listen_address = listen;
        set_str(p, "security.limit_extensions", &exts);
        p.security_limit_extensions = exts
            .split([' ', '\t'])
            .filter(|e| !e.is_empty())
            .map(str::to_string)
            .collect();
        p.access_suppress_path = suppress.into_iter().map(|s| format!("/{s}")).collect();

        let text = render_pool(&c, &name).unwrap();
        let r = parse_str(&text, Path::new("rendered.conf"), &resolved());
        let r = match r {
            Ok(r) => r,
            Err(e) => return Err(TestCaseError::fail(format!("{e}\n{text}"))),
        };
        prop_assert_eq!(r.pools.len(), 1);
        prop_assert_eq!(runtime(&r.pools[0]), runtime(&c.pools[0]), "{}", text);
        prop_assert_eq!(r.global.log_level, c.global.log_level);
    }
}

#[test]
fn status_pool_copies_what_php_fpm_copies() {
    let text = "[www]\nuser = www-data\nlisten = /run/a.sock\nlisten.mode = 0600\npm = static\npm.max_children = 9\n\
                pm.status_listen = 127.0.0.1:9001\nphp_admin_value[memory_limit] = 1G\n";
    let opts = crate::LoadOptions {
        allow_run_as_root: true,
        ..Default::default()
    };
    let cfg = crate::parse_str(text, std::path::Path::new("t.conf"), &opts).unwrap();
    let st = crate::status_pool(&cfg.pools[0]).unwrap();
    assert_eq!(st.name, "www_status");
    assert_eq!(st.pm, crate::PmKind::Ondemand);
    assert_eq!(st.pm_max_children, 2);
    assert_eq!(st.listen, crate::Listen::parse("127.0.0.1:9001"));
    assert_eq!(st.user.as_deref(), Some("www-data"));
    // php-fpm sets "/" when pm.status_listen comes without a status path.
    assert_eq!(st.pm_status_path.as_deref(), Some("/"));
    assert_eq!(st.listen_mode, 0o600);
    // php-fpm 8.2 leaves them out (so `php_flag[expose_php] = Off` did
    // not reach the status pool's X-Powered-By); newer php-fpm copies them,
    // and so does corral: the status pool's PHP is the parent's.
    assert_eq!(st.php_values, cfg.pools[0].php_values);
    assert_eq!(st.php_values.len(), 1);
    assert!(crate::status_pool(&st).is_none());
}
