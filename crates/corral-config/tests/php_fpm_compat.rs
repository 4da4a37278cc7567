//! Compare with the real php-fpm 8.2 where it is installed.

use std::path::Path;
use std::process::Command;

use corral_config::{dump_lines, load, parse_str, LoadOptions};

const DEBIAN_CONF: &str = "/etc/php/8.2/fpm/php-fpm.conf";
const PHP_FPM: &str = "/usr/sbin/php-fpm8.2";

#[test]
fn debian_sample_config_loads() {
    if !Path::new(DEBIAN_CONF).exists() {
        eprintln!("skipped: {DEBIAN_CONF} not present");
        return;
    }
    let c = load(Path::new(DEBIAN_CONF), &LoadOptions::default()).unwrap();
    assert!(c.pool("www").is_some());
    assert_eq!(
        c.global.pid.as_deref(),
        Some(Path::new("/run/php/php8.2-fpm.pid"))
    );
}

/// php-fpm's `-tt` NOTICE lines, without the "[date] NOTICE: " prefix.
fn php_fpm_dump(conf: &Path) -> Option<Vec<String>> {
    let out = Command::new(PHP_FPM)
        .arg("-tt")
        .arg("-y")
        .arg(conf)
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stderr).into_owned();
    Some(
        text.lines()
            .filter_map(|l| l.split_once("] NOTICE: ").map(|(_, m)| m.to_string()))
            .take_while(|m| !m.starts_with("configuration file "))
            .filter(|m| !m.contains("pm.start_servers is not set"))
            .collect(),
    )
}

#[test]
fn dump_matches_php_fpm() {
    if !Path::new(PHP_FPM).exists() {
        eprintln!("skipped: {PHP_FPM} not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let samples = [
        "[global]\nerror_log = /tmp/corral-cmp.log\nlog_level = notice\n[www]\nuser = nobody\nlisten = 127.0.0.1:9999\npm = ondemand\npm.max_children = 3\naccess.log = /tmp/corral-cmp-acc.log\naccess.format = %R - %u %t \"%m %r\" %s\nphp_value[a] = %u \"%m %r\" %s\nphp_value[b] = E_ALL & ~E_NOTICE\nphp_flag[c] = yes\nphp_value[d] = Off\nphp_value[e] = 'single q'\nphp_value[ h ] = a b   c  \nphp_value[p] = foo$pool\nphp_value[a] = second\nenv[X] = $HOME\nenv[Y] = abc\nphp_admin_value[error_log] = log/x.log\nphp_admin_value[ERROR_LOG] = syslog\n",
        "[global]\nerror_log = /tmp/corral-cmp2.log\nsyslog.facility = local3\nlog_level = NOTICE\nprocess.priority = -2\nrlimit_core = unlimited\nemergency_restart_interval = 1m\ndaemonize = no\n[a]\nuser = nobody\nlisten = a.sock\npm = dynamic\npm.max_children = 5\npm.min_spare_servers = 1\npm.max_spare_servers = 3\nping.path = /ping\npm.status_path = /status\nslowlog = /tmp/corral-cmp-s.log\nrequest_slowlog_timeout = 5s\nrequest_terminate_timeout = 1h\naccess.suppress_path[] = /ping\naccess.suppress_path[] = /status\n[b]\nuser = nobody\nlisten = 9001\npm = static\npm.max_children = 2\npm.status_listen = 127.0.0.1:9002\nlisten.allowed_clients = 127.0.0.1\nsecurity.limit_extensions = .php .php8\n[A]\nclear_env = no\n",
    ];
    for (i, text) in samples.iter().enumerate() {
        let path = dir.path().join(format!("s{i}.conf"));
        std::fs::write(&path, text).unwrap();
        let Some(expected) = php_fpm_dump(&path) else {
            eprintln!("skipped: could not run {PHP_FPM}");
            return;
        };
        let c = parse_str(text, &path, &LoadOptions::default()).unwrap();
        let ours = dump_lines(&c);
        assert_eq!(ours, expected, "sample {i}");
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(512))]
    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,300}") {
        let _ = parse_str(&text, Path::new("fuzz.conf"), &LoadOptions::default());
    }

    #[test]
    fn ini_like_text_never_panics(lines in proptest::collection::vec("[\\[\\]a-z_.=;\"'$&|^~!(){} \\t0-9%-]{0,40}", 0..12)) {
        let text = format!("[www]\n{}", lines.join("\n"));
        let _ = parse_str(&text, Path::new("fuzz.conf"), &LoadOptions::default());
    }
}
