//! corral.* directives: typing, the errors with file:line, the checks
//! between them, `-tt` and the rendered pool a prototype receives.

use std::path::{Path, PathBuf};

use crate::{dump_lines, parse_str, render_pool, Config, ConfigErrors, Isolation, LoadOptions};

const HEAD: &str =
    "[www]\nuser = nobody\nlisten = /tmp/corral-test.sock\npm = static\npm.max_children = 1\n";

fn opts() -> LoadOptions {
    LoadOptions {
        allow_run_as_root: true,
        ..Default::default()
    }
}

fn parse(extra: &str) -> Result<Config, ConfigErrors> {
    parse_str(&format!("{HEAD}{extra}\n"), Path::new("t.conf"), &opts())
}

fn isolation(extra: &str) -> Isolation {
    let c = parse(extra).unwrap_or_else(|e| panic!("{e}\n{extra}"));
    c.pools[0].isolation.clone()
}

fn err(extra: &str) -> String {
    let e = parse(extra).expect_err(extra);
    e.first_error().expect("an error").message.clone()
}

#[test]
fn nothing_is_asked_for_by_default() {
    let i = isolation("");
    assert_eq!(i, Isolation::default());
    assert!(!i.wants_cgroup());
}

#[test]
fn every_directive_reaches_the_pool() {
    let i = isolation(
        "corral.memory_max = 256M\ncorral.swap_max = 0\ncorral.cpu_weight = 50\n\
         corral.cpu_max = 150%\ncorral.pids_max = 64\ncorral.io_weight = 10000\n\
         corral.namespaces = yes\ncorral.tmp_size = 64m\ncorral.landlock = on\n\
         corral.landlock_read = /srv/a  /usr/share/zoneinfo\n\
         corral.landlock_write = /home/a/tmp",
    );
    assert_eq!(
        i,
        Isolation {
            memory_max: Some(256 << 20),
            swap_max: Some(0),
            cpu_weight: Some(50),
            cpu_max_percent: Some(150),
            pids_max: Some(64),
            io_weight: Some(10000),
            namespaces: true,
            tmp_size: Some(64 << 20),
            landlock: true,
            landlock_read: vec![
                PathBuf::from("/srv/a"),
                PathBuf::from("/usr/share/zoneinfo")
            ],
            landlock_write: vec![PathBuf::from("/home/a/tmp")],
        }
    );
    assert!(i.wants_cgroup());
}

#[test]
fn sizes_in_php_s_style() {
    let size = |v: &str| isolation(&format!("corral.memory_max = {v}")).memory_max;
    assert_eq!(size("1"), Some(1));
    assert_eq!(size("4096"), Some(4096));
    assert_eq!(size("2k"), Some(2048));
    assert_eq!(size("2K"), Some(2048));
    assert_eq!(size("3M"), Some(3 << 20));
    assert_eq!(size("1G"), Some(1 << 30));
    assert_eq!(size("1g"), Some(1 << 30));
    let tmp =
        |v: &str| isolation(&format!("corral.namespaces = yes\ncorral.tmp_size = {v}")).tmp_size;
    assert_eq!(tmp("16M"), Some(16 << 20));
}

#[test]
fn other_values() {
    assert_eq!(isolation("corral.cpu_max = 50").cpu_max_percent, Some(50));
    assert_eq!(isolation("corral.cpu_max = 1%").cpu_max_percent, Some(1));
    assert_eq!(
        isolation("corral.cpu_max = 100000%").cpu_max_percent,
        Some(100_000)
    );
    assert_eq!(isolation("corral.cpu_weight = 1").cpu_weight, Some(1));
    assert_eq!(isolation("corral.io_weight = 1").io_weight, Some(1));
    assert_eq!(isolation("corral.pids_max = 1").pids_max, Some(1));
    assert!(!isolation("corral.namespaces = no").namespaces);
    assert!(!isolation("corral.landlock = off").landlock);
    // A directive name is case-insensitive, like php-fpm's.
    assert_eq!(isolation("CORRAL.PIDS_MAX = 9").pids_max, Some(9));
    // The last line wins, like every scalar directive.
    assert_eq!(
        isolation("corral.pids_max = 9\ncorral.pids_max = 10").pids_max,
        Some(10)
    );
    let empty = isolation("corral.landlock = yes\ncorral.landlock_read =");
    assert!(empty.landlock_read.is_empty());
}

#[test]
fn bad_values_name_file_and_line() {
    let at = |name: &str, reason: &str| {
        format!("[t.conf:6] unable to parse value for entry '{name}': {reason}")
    };
    let size = "bytes, or a number with K, M or G (e.g. 256M)";
    let cases: Vec<(&str, String)> = vec![
        (
            "corral.memory_max = 256MB",
            at(
                "corral.memory_max",
                &format!("'256MB' is not a size ({size})"),
            ),
        ),
        (
            "corral.memory_max = 1T",
            at("corral.memory_max", &format!("'1T' is not a size ({size})")),
        ),
        (
            "corral.memory_max = -1",
            at("corral.memory_max", &format!("'-1' is not a size ({size})")),
        ),
        (
            "corral.memory_max = 1.5G",
            at(
                "corral.memory_max",
                &format!("'1.5G' is not a size ({size})"),
            ),
        ),
        (
            "corral.memory_max = M",
            at("corral.memory_max", &format!("'M' is not a size ({size})")),
        ),
        (
            "corral.memory_max =",
            at("corral.memory_max", &format!("'' is not a size ({size})")),
        ),
        (
            "corral.memory_max = 0",
            at(
                "corral.memory_max",
                &format!("'0' must be at least 1 ({size})"),
            ),
        ),
        (
            "corral.memory_max = 99999999999G",
            at("corral.memory_max", "'99999999999G' is too large"),
        ),
        (
            "corral.memory_max = 99999999999999999999",
            at("corral.memory_max", "'99999999999999999999' is too large"),
        ),
        (
            "corral.swap_max = lots",
            at("corral.swap_max", &format!("'lots' is not a size ({size})")),
        ),
        (
            "corral.tmp_size = 0",
            at(
                "corral.tmp_size",
                &format!("'0' must be at least 1 ({size})"),
            ),
        ),
        (
            "corral.cpu_weight = 0",
            at(
                "corral.cpu_weight",
                "'0' must be an integer from 1 to 10000",
            ),
        ),
        (
            "corral.cpu_weight = 10001",
            at(
                "corral.cpu_weight",
                "'10001' must be an integer from 1 to 10000",
            ),
        ),
        (
            "corral.cpu_weight = high",
            at(
                "corral.cpu_weight",
                "'high' must be an integer from 1 to 10000",
            ),
        ),
        (
            "corral.io_weight = -5",
            at(
                "corral.io_weight",
                "'-5' must be an integer from 1 to 10000",
            ),
        ),
        (
            "corral.cpu_max = 0%",
            at(
                "corral.cpu_max",
                "'0%' must be a whole percent of one CPU from 1% to 100000% (e.g. 50% or 200%)",
            ),
        ),
        (
            "corral.cpu_max = 100001",
            at(
                "corral.cpu_max",
                "'100001' must be a whole percent of one CPU from 1% to 100000% (e.g. 50% or 200%)",
            ),
        ),
        (
            "corral.cpu_max = 1.5",
            at(
                "corral.cpu_max",
                "'1.5' must be a whole percent of one CPU from 1% to 100000% (e.g. 50% or 200%)",
            ),
        ),
        (
            "corral.cpu_max = %",
            at(
                "corral.cpu_max",
                "'%' must be a whole percent of one CPU from 1% to 100000% (e.g. 50% or 200%)",
            ),
        ),
        (
            "corral.cpu_max = 50%%",
            at(
                "corral.cpu_max",
                "'50%%' must be a whole percent of one CPU from 1% to 100000% (e.g. 50% or 200%)",
            ),
        ),
        (
            "corral.pids_max = 0",
            at("corral.pids_max", "'0' must be an integer of at least 1"),
        ),
        (
            "corral.pids_max = max",
            at("corral.pids_max", "'max' must be an integer of at least 1"),
        ),
        (
            "corral.namespaces = maybe",
            at("corral.namespaces", "invalid boolean value"),
        ),
        (
            "corral.landlock = 2",
            at("corral.landlock", "invalid boolean value"),
        ),
        (
            "corral.landlock_read = /usr relative/dir",
            at(
                "corral.landlock_read",
                "'relative/dir' is not an absolute path",
            ),
        ),
        (
            "corral.landlock_write = ./tmp",
            at("corral.landlock_write", "'./tmp' is not an absolute path"),
        ),
        (
            "corral.nonsense = 1",
            "[t.conf:6] unknown entry 'corral.nonsense'".to_string(),
        ),
    ];
    for (line, msg) in cases {
        assert_eq!(err(line), msg, "{line}");
    }
}

#[test]
fn corral_directives_belong_to_pools() {
    let text = format!("[global]\ncorral.memory_max = 1G\n{HEAD}");
    let e = parse_str(&text, Path::new("t.conf"), &opts()).unwrap_err();
    assert_eq!(
        e.first_error().unwrap().message,
        "[t.conf:2] unknown entry 'corral.memory_max'"
    );
}

#[test]
fn directives_that_need_another() {
    let cases = [
        (
            "corral.swap_max = 1G",
            "[pool www] 'corral.swap_max' has no effect without 'corral.memory_max'",
        ),
        (
            "corral.tmp_size = 1G",
            "[pool www] 'corral.tmp_size' has no effect without 'corral.namespaces = yes'",
        ),
        (
            "corral.namespaces = no\ncorral.tmp_size = 1G",
            "[pool www] 'corral.tmp_size' has no effect without 'corral.namespaces = yes'",
        ),
        (
            "corral.landlock_read = /srv",
            "[pool www] 'corral.landlock_read' has no effect without 'corral.landlock = yes'",
        ),
        (
            "corral.landlock = no\ncorral.landlock_write = /srv",
            "[pool www] 'corral.landlock_write' has no effect without 'corral.landlock = yes'",
        ),
    ];
    for (extra, msg) in cases {
        assert_eq!(err(extra), msg, "{extra}");
        let e = parse(extra).unwrap_err();
        assert_eq!(
            e.0.last().unwrap().message,
            "failed to post process the configuration"
        );
    }
    assert!(parse("corral.memory_max = 1G\ncorral.swap_max = 1G").is_ok());
}

fn dump_of(extra: &str) -> Vec<String> {
    dump_lines(&parse(extra).unwrap_or_else(|e| panic!("{e}")))
}

#[test]
fn dump_shows_only_what_is_set() {
    assert!(!dump_of("").iter().any(|l| l.contains("corral.")));
    let lines = dump_of(
        "corral.memory_max = 1G\ncorral.cpu_max = 200\ncorral.namespaces = yes\n\
         corral.landlock = yes\ncorral.landlock_write = /a\t/b",
    );
    let corral: Vec<&str> = lines
        .iter()
        .filter(|l| l.contains("corral."))
        .map(String::as_str)
        .collect();
    assert_eq!(
        corral,
        vec![
            "\tcorral.memory_max = 1073741824",
            "\tcorral.cpu_max = 200%",
            "\tcorral.namespaces = yes",
            "\tcorral.landlock = yes",
            "\tcorral.landlock_write = /a /b",
        ]
    );
    // After every php-fpm directive of the pool, before its arrays.
    let at = |needle: &str| lines.iter().position(|l| l.starts_with(needle)).unwrap();
    assert!(at("\tsecurity.limit_extensions") < at("\tcorral.memory_max"));
}

#[test]
fn a_prototype_gets_them_back() {
    let c = parse(
        "corral.memory_max = 256M\ncorral.swap_max = 0\ncorral.cpu_weight = 50\n\
         corral.cpu_max = 150%\ncorral.pids_max = 64\ncorral.io_weight = 7\n\
         corral.namespaces = yes\ncorral.tmp_size = 64M\ncorral.landlock = yes\n\
         corral.landlock_read = /srv/a /opt/x\ncorral.landlock_write = /home/a/tmp",
    )
    .unwrap();
    let text = render_pool(&c, "www").unwrap();
    assert!(text.contains("corral.memory_max = 268435456\n"), "{text}");
    assert!(
        text.contains("corral.landlock_read = \"/srv/a /opt/x\"\n"),
        "{text}"
    );
    let resolved = LoadOptions {
        resolved: true,
        ..Default::default()
    };
    let back = parse_str(&text, Path::new("rendered"), &resolved)
        .unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!(back.pools[0].isolation, c.pools[0].isolation);
    assert_eq!(back.pools[0].settings, c.pools[0].settings);
    // A pool without them renders without them.
    let plain = parse("").unwrap();
    assert!(!render_pool(&plain, "www").unwrap().contains("corral."));
}
