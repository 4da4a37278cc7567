//! The pool's pens as provisioning writes them: the `corral.*` isolation
//! directives of the resolved template, finished for one site before the
//! pool file is rendered.
//!
//! * `corral.cpu_max = auto` becomes every CPU of the host but one.
//! * `corral.memory_max = auto` and `corral.pids_max = auto` become numbers
//!   derived from the pool's own size, so that `site set
//!   pm.max_children=N` or `memory_limit=…` moves the limits with it; an
//!   explicit value (template or `site set`) wins.
//! * A directive that means nothing without its switch (`corral.landlock_*`
//!   without `corral.landlock = yes`, `corral.tmp_size` without
//!   namespaces, `corral.swap_max` without a memory limit) is left out, so
//!   `site set corral.landlock=no` alone turns Landlock off instead of
//!   leaving a pool file that corral refuses.
//! * `corral.allow_functions` is taken out of `disable_functions`.
//!
//! Keys that only steer provisioning ([`PROVISIONING`]) never reach the
//! pool file; every other `corral.*` key does, and corral's config loader
//! validates it (a typo is an error with file and line, not a no-op).

use crate::functions;
use crate::template::{Origin, Resolved};

/// `corral.*` keys that steer provisioning and are not pool directives.
pub const PROVISIONING: &[&str] = &[
    "corral.public_dir",
    "corral.writable",
    "corral.front_controller",
    "corral.allow_functions",
];

/// Whether `key` is written to the pool file.
pub fn is_pool_directive(key: &str) -> bool {
    !PROVISIONING.contains(&key)
}

/// Per worker, what a PHP process holds outside `memory_limit` (libphp,
/// extensions, buffers): a quarter on top.
const WORKER_HEADROOM_PERCENT: u64 = 25;
/// Shared by the pool: its OPcache segment and the prototype.
const POOL_HEADROOM: u64 = 128 << 20;
/// php.ini's own default `memory_limit`.
const PHP_DEFAULT_MEMORY_LIMIT: u64 = 128 << 20;
/// Processes and threads per worker: during a reload the old and the new
/// generation overlap (2×), and a worker may run a helper (sendmail) or a
/// library's threads.
const PIDS_PER_WORKER: u64 = 4;
/// The prototype and spare.
const PIDS_BASE: u64 = 16;

/// Limits that `none` removes (`site set corral.memory_max=none`): an
/// empty value would only drop the override and bring back the
/// template's.
const LIMITS: &[&str] = &[
    "corral.memory_max",
    "corral.swap_max",
    "corral.cpu_weight",
    "corral.cpu_max",
    "corral.pids_max",
    "corral.io_weight",
    "corral.tmp_size",
];

/// (directive, switch it needs, whether the switch is a yes/no flag).
const NEEDS: &[(&str, &str, bool)] = &[
    ("corral.landlock_read", "corral.landlock", true),
    ("corral.landlock_write", "corral.landlock", true),
    ("corral.tmp_size", "corral.namespaces", true),
    ("corral.swap_max", "corral.memory_max", false),
];

/// Finishes the pens of `r` in place (see the module doc). `Err` is the
/// key and why, for [`SitesError::Setting`](crate::SitesError::Setting).
pub fn finish(r: &mut Resolved) -> Result<(), (String, String)> {
    for key in LIMITS {
        if r.get(key)
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("none"))
        {
            r.unset(key);
        }
    }
    derive_auto(r, "corral.memory_max", memory_max)?;
    derive_auto(r, "corral.pids_max", |r| Ok(pids_max(r)))?;
    derive_auto(r, "corral.cpu_max", |_| Ok(cpu_max(host_cpus())))?;
    for (key, switch, flag) in NEEDS {
        let on = match r.get(switch) {
            Some(v) if *flag => is_yes(v),
            Some(v) => !v.trim().is_empty(),
            None => false,
        };
        if !on {
            r.unset(key);
        }
    }
    allow_functions(r)
}

fn derive_auto(
    r: &mut Resolved,
    key: &str,
    derive: impl Fn(&Resolved) -> Result<String, String>,
) -> Result<(), (String, String)> {
    let Some(entry) = r.entries.iter().find(|e| e.key == key) else {
        return Ok(());
    };
    if !entry.value.trim().eq_ignore_ascii_case("auto") {
        return Ok(());
    }
    let origin: Origin = entry.origin.clone();
    let value = derive(r).map_err(|why| (key.to_string(), why))?;
    r.set(key, &value, origin);
    Ok(())
}

/// pm.max_children × memory_limit, a quarter on top, plus the pool's
/// shared memory: what the pool may use when every worker is at its PHP
/// limit, and not much more.
fn memory_max(r: &Resolved) -> Result<String, String> {
    let limit = php_ini(r, "memory_limit");
    let per_worker =
        match limit.as_deref().map(str::trim) {
            None | Some("") => PHP_DEFAULT_MEMORY_LIMIT,
            Some("-1") => return Err(
                "'auto' needs a memory_limit, and this pool has none (-1); set corral.memory_max"
                    .into(),
            ),
            Some(v) => crate::sizing::parse_bytes(v)
                .ok_or_else(|| format!("'auto' cannot read memory_limit '{v}'"))?,
        };
    let children = crate::render_pool::max_children(r);
    let bytes = children * per_worker * (100 + WORKER_HEADROOM_PERCENT) / 100 + POOL_HEADROOM;
    Ok(format!("{}M", bytes.div_ceil(1 << 20)))
}

/// Every CPU of the host but one, and at least one: a site can use the
/// machine, but never all of it, so a site burning CPU at full concurrency
/// leaves a core for its neighbours' requests. Weights alone share CPU
/// fairly only on average; the cap is what keeps a neighbour's tail
/// latency down.
fn cpu_max(cpus: u32) -> String {
    format!("{}%", cpus.saturating_sub(1).max(1) * 100)
}

fn host_cpus() -> u32 {
    std::thread::available_parallelism().map_or(1, |n| n.get() as u32)
}

fn pids_max(r: &Resolved) -> String {
    (crate::render_pool::max_children(r) * PIDS_PER_WORKER + PIDS_BASE).to_string()
}

/// A php.ini value as the pool sets it (admin values first).
fn php_ini(r: &Resolved, name: &str) -> Option<String> {
    ["php_admin_value", "php_value"]
        .iter()
        .find_map(|kind| r.get(&format!("{kind}[{name}]")))
        .map(str::to_string)
}

fn is_yes(v: &str) -> bool {
    matches!(
        v.trim().to_ascii_lowercase().as_str(),
        "yes" | "on" | "true" | "1"
    )
}

fn allow_functions(r: &mut Resolved) -> Result<(), (String, String)> {
    let allow = r
        .get("corral.allow_functions")
        .unwrap_or("")
        .trim()
        .to_string();
    if allow.is_empty() {
        return Ok(());
    }
    let key = ["php_admin_value", "php_value"]
        .iter()
        .map(|k| format!("{k}[disable_functions]"))
        .find(|k| r.get(k).is_some());
    let err = |why: String| ("corral.allow_functions".to_string(), why);
    let Some(key) = key else {
        return Err(err("the pool sets no disable_functions".into()));
    };
    let disabled = r.get(&key).unwrap_or("").to_string();
    let kept = functions::allow(&disabled, &allow).map_err(err)?;
    let origin = r
        .entries
        .iter()
        .find(|e| e.key == key)
        .map(|e| e.origin.clone())
        .unwrap_or(Origin {
            file: "corral.allow_functions".into(),
            line: 0,
        });
    if kept.is_empty() {
        r.unset(&key);
    } else {
        r.set(&key, &kept, origin);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::template::Entry;

    fn resolved(pairs: &[(&str, &str)]) -> Resolved {
        Resolved {
            chain: vec!["t".into()],
            entries: pairs
                .iter()
                .map(|(k, v)| Entry {
                    key: k.to_string(),
                    value: v.to_string(),
                    origin: Origin {
                        file: "t.pool".into(),
                        line: 1,
                    },
                })
                .collect(),
            nginx: None,
            apache: None,
            php: None,
        }
    }

    #[test]
    fn auto_cpu_cap_leaves_a_cpu_for_the_neighbours() {
        assert_eq!(cpu_max(1), "100%");
        assert_eq!(cpu_max(2), "100%");
        assert_eq!(cpu_max(16), "1500%");
    }

    #[test]
    fn auto_limits_follow_the_pool_size() {
        let mut r = resolved(&[
            ("pm.max_children", "5"),
            ("php_admin_value[memory_limit]", "256M"),
            ("corral.memory_max", "auto"),
            ("corral.pids_max", "auto"),
        ]);
        finish(&mut r).unwrap();
        // 5 × 256M × 1.25 + 128M
        assert_eq!(r.get("corral.memory_max"), Some("1728M"));
        assert_eq!(r.get("corral.pids_max"), Some("36"));
    }

    #[test]
    fn explicit_limits_win_and_unlimited_php_needs_one() {
        let mut r = resolved(&[
            ("php_admin_value[memory_limit]", "-1"),
            ("corral.memory_max", "2G"),
        ]);
        finish(&mut r).unwrap();
        assert_eq!(r.get("corral.memory_max"), Some("2G"));
        let mut r = resolved(&[("corral.memory_max", "none"), ("corral.swap_max", "0")]);
        finish(&mut r).unwrap();
        assert_eq!(r.get("corral.memory_max"), None);
        assert_eq!(r.get("corral.swap_max"), None);
        let mut r = resolved(&[
            ("php_admin_value[memory_limit]", "-1"),
            ("corral.memory_max", "auto"),
        ]);
        let (key, why) = finish(&mut r).unwrap_err();
        assert_eq!(key, "corral.memory_max");
        assert!(why.contains("set corral.memory_max"), "{why}");
    }

    #[test]
    fn dependents_go_with_their_switch() {
        let mut r = resolved(&[
            ("corral.landlock", "no"),
            ("corral.landlock_write", "/a"),
            ("corral.namespaces", "yes"),
            ("corral.tmp_size", "64M"),
            ("corral.swap_max", "0"),
        ]);
        finish(&mut r).unwrap();
        assert_eq!(r.get("corral.landlock_write"), None);
        assert_eq!(r.get("corral.tmp_size"), Some("64M"));
        assert_eq!(r.get("corral.swap_max"), None, "no memory_max");
    }

    #[test]
    fn allow_functions_edits_disable_functions() {
        let mut r = resolved(&[
            ("php_admin_value[disable_functions]", "exec,mail,putenv"),
            ("corral.allow_functions", "mail"),
        ]);
        finish(&mut r).unwrap();
        assert_eq!(
            r.get("php_admin_value[disable_functions]"),
            Some("exec,putenv")
        );
        assert!(!is_pool_directive("corral.allow_functions"));
        assert!(is_pool_directive("corral.memory_max"));
    }
}
