//! `corral doctor [--json]`: what isolation this host can give its pools,
//! one finding per line, each weak one saying what to do. Exit 0 when
//! nothing is weak, 1 otherwise.
//!
//! Every check reads the kernel's own answer (sysctl files, mountinfo,
//! the cgroup tree, the Landlock syscall, an actual unshare, quotactl) and
//! the pool files corral would load; nothing is changed.

mod cgroups;
mod kernel;
mod pools;

use serde::Serialize;

use crate::paths::Paths;

/// How a finding bears on isolation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Ok,
    /// Something a tenant can use against another tenant or the host.
    Weak,
}

/// One line of the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// What was checked (`fs.protected_symlinks`, `cgroup`, `pool x`).
    pub check: String,
    pub level: Level,
    /// What this host has.
    pub value: String,
    /// What it protects against, or what to do when weak.
    pub advice: String,
}

impl Finding {
    pub fn ok(
        check: impl Into<String>,
        value: impl Into<String>,
        advice: impl Into<String>,
    ) -> Self {
        Finding {
            check: check.into(),
            level: Level::Ok,
            value: value.into(),
            advice: advice.into(),
        }
    }
    pub fn weak(
        check: impl Into<String>,
        value: impl Into<String>,
        advice: impl Into<String>,
    ) -> Self {
        Finding {
            level: Level::Weak,
            ..Finding::ok(check, value, advice)
        }
    }
}

/// Every check, in report order.
pub fn findings(paths: &Paths, php_version: &str) -> Vec<Finding> {
    let mut out = kernel::sysctls();
    out.extend(cgroups::check());
    out.push(kernel::landlock());
    out.push(kernel::namespaces());
    out.push(kernel::quota(&paths.home_base));
    out.extend(pools::check(&paths.fpm_config_for(php_version)));
    out
}

/// `corral doctor ARGS...`; returns the exit code.
pub fn main(args: &[String]) -> i32 {
    let mut rest = args.to_vec();
    let paths = match Paths::from_args(&mut rest) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("corral doctor: {e}");
            return 64;
        }
    };
    let mut json = false;
    let mut php_version = crate::spec::DEFAULT_PHP_VERSION.to_string();
    let mut it = rest.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--json" => json = true,
            "--php-version" => match it.next() {
                Some(v) => php_version = v.clone(),
                None => {
                    eprintln!("corral doctor: --php-version needs a value");
                    return 64;
                }
            },
            "-h" | "--help" => {
                println!("usage: corral doctor [--json] [--php-version 8.2] [--home-base DIR] [--fpm-config FILE]");
                return 0;
            }
            other => {
                eprintln!("corral doctor: unknown option '{other}'");
                return 64;
            }
        }
    }
    let all = findings(&paths, &php_version);
    let weak = all.iter().filter(|f| f.level == Level::Weak).count();
    if json {
        println!("{}", serde_json::json!({ "weak": weak, "findings": all }));
    } else {
        for f in &all {
            println!("{}", line(f));
        }
        println!(
            "{weak} weak finding(s){}",
            if weak == 0 {
                ""
            } else {
                ": fix the WEAK lines above"
            }
        );
    }
    i32::from(weak > 0)
}

/// `ok   CHECK = VALUE: ADVICE` or `WEAK …`.
pub fn line(f: &Finding) -> String {
    let tag = match f.level {
        Level::Ok => "ok  ",
        Level::Weak => "WEAK",
    };
    format!("{tag} {} = {}: {}", f.check, f.value, f.advice)
}
