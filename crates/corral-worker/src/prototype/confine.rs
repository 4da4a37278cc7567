//! The pool's pens as the prototype applies them (`corral-isolation` does
//! the kernel's part): namespaces while still root and before PHP
//! starts, then, once PHP is up and we are the tenant, no_new_privs and
//! Landlock, before the first worker is forked. Each item of each layer
//! is reported to the master, applied or lacking; a lacking layer does
//! not stop the pool (see `corral_isolation::namespaces` for the one case
//! where a layer stops itself half-way because going on would be unsafe).

use std::path::{Path, PathBuf};

use corral_config::Pool;
use corral_ipc::FromPrototype;
use corral_isolation::landlock::PhpNeeds;
use corral_isolation::{Confinement, Report as Items};
use corral_php::Engine;

use super::setup::Report;

/// The pool's settings and the master's port list, as the isolation crate
/// takes them.
pub fn confinement(pool: &Pool, deny_connect: &[u16]) -> Confinement {
    let iso = &pool.isolation;
    Confinement {
        namespaces: iso.namespaces,
        tmp_size: iso
            .tmp_size
            .unwrap_or(corral_isolation::namespaces::DEFAULT_TMP_SIZE),
        landlock: iso.landlock,
        read: iso.landlock_read.clone(),
        write: iso.landlock_write.clone(),
        deny_connect_ports: deny_connect.to_vec(),
    }
}

fn send(items: Items, report: Report<'_>) {
    for what in items.applied {
        report(FromPrototype::Isolation {
            applied: true,
            what,
        });
    }
    for what in items.lacking {
        report(FromPrototype::Isolation {
            applied: false,
            what,
        });
    }
}

/// Mount and IPC namespaces: only root may enter them, and only before
/// PHP starts, so that what start-up writes to /tmp is private already.
pub fn enter_namespaces(c: &Confinement, pool: &Pool, root: bool, report: Report<'_>) {
    if !c.namespaces {
        return;
    }
    let mut items = Items::default();
    if root {
        items = corral_isolation::namespaces::enter(c, pool.chroot.as_deref());
    } else {
        items.lacking("namespaces: the prototype is not root");
    }
    send(items, report);
}

/// no_new_privs, then Landlock: after the privilege drop (Landlock needs
/// no_new_privs of an unprivileged process) and after the chroot (rules
/// name the tenant's paths).
pub fn lock_down(c: &Confinement, engine: &Engine, pool: &Pool, report: Report<'_>) {
    if !c.landlock {
        return;
    }
    let mut items = Items::default();
    corral_isolation::privs::no_new_privs(&mut items);
    let needs = php_needs(&|n| engine.ini_string(n), pool);
    let rules = corral_isolation::landlock::rules(c, &needs);
    match corral_isolation::landlock::restrict(&rules) {
        Ok(r) => items.merge(r),
        Err(e) => items.lacking(e.to_string()),
    }
    send(items, report);
}

/// What this pool's PHP reads and writes beyond the system, from its
/// effective ini (php.ini, then the pool's php_value/php_admin_value).
pub fn php_needs(ini: &dyn Fn(&str) -> Option<String>, pool: &Pool) -> PhpNeeds {
    let get = |n: &str| ini(n).filter(|v| !v.trim().is_empty());
    let mut needs = PhpNeeds::default();
    // In a chroot, PHP's own trees were loaded from outside it and are
    // out of reach anyway.
    if pool.chroot.is_none() {
        needs.read.extend(get("extension_dir").map(PathBuf::from));
    }
    for name in ["include_path", "open_basedir"] {
        needs.read.extend(absolute_list(get(name).as_deref()));
    }
    needs.read.extend(get("doc_root").map(PathBuf::from));
    needs.read.extend(pool.chdir.clone());
    if get("session.save_handler").as_deref() == Some("files") {
        needs
            .write
            .extend(get("session.save_path").and_then(|p| save_dir(&p)));
    }
    let temp = get("sys_temp_dir")
        .or_else(|| std::env::var("TMPDIR").ok().filter(|t| !t.is_empty()))
        .unwrap_or_else(|| "/tmp".into());
    needs.write.push(PathBuf::from(&temp));
    needs
        .write
        .push(get("upload_tmp_dir").map_or_else(|| PathBuf::from(&temp), PathBuf::from));
    if let Some(log) = get("error_log").filter(|l| l != "syslog") {
        needs.append.push(PathBuf::from(log));
    }
    needs.exec = can_start_programs(&get);
    needs
}

/// `a:b:.` → the absolute entries (`.` means the script's directory,
/// which is in the pool's tree anyway).
fn absolute_list(v: Option<&str>) -> Vec<PathBuf> {
    v.unwrap_or("")
        .split(':')
        .filter(|p| p.starts_with('/'))
        .map(PathBuf::from)
        .collect()
}

/// session.save_path is `[N;[MODE;]]/path`.
fn save_dir(v: &str) -> Option<PathBuf> {
    let dir = v.rsplit(';').next()?.trim();
    Path::new(dir).is_absolute().then(|| PathBuf::from(dir))
}

/// Whether any PHP entry point that starts a program is enabled. mail()
/// and mb_send_mail() start sendmail; pcntl_exec and mb_send_mail exist
/// only with their extensions (seen by their ini entries); FFI can call
/// execve itself (with `ffi.enable = preload`, PHP's default, only from
/// preloaded code, so only when there is an opcache.preload script).
fn can_start_programs(get: &dyn Fn(&str) -> Option<String>) -> bool {
    let disabled: Vec<String> = get("disable_functions")
        .unwrap_or_default()
        .split([',', ' ', '\t'])
        .filter(|f| !f.is_empty())
        .map(|f| f.trim().to_ascii_lowercase())
        .collect();
    let enabled = |f: &str| !disabled.iter().any(|d| d == f);
    let core = [
        "exec",
        "passthru",
        "shell_exec",
        "system",
        "proc_open",
        "popen",
        "mail",
    ];
    let ffi_on = get("ffi.enable").is_some_and(|v| match v.trim().to_ascii_lowercase().as_str() {
        "0" | "off" | "false" | "no" => false,
        "preload" => get("opcache.preload").is_some(),
        _ => true,
    });
    core.iter().any(|f| enabled(f))
        || (get("pcntl.async_signals").is_some() && enabled("pcntl_exec"))
        || (get("mbstring.language").is_some() && enabled("mb_send_mail"))
        || ffi_on
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    const ALL_OFF: &str =
        "exec,passthru,shell_exec,system,proc_open,popen,mail,pcntl_exec,mb_send_mail";

    fn ini(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |n: &str| m.get(n).cloned()
    }

    fn pool() -> Pool {
        let c = corral_config::parse_str(
            "[p]\nlisten = /run/p.sock\nuser = nobody\npm = static\npm.max_children = 1\n",
            Path::new("t.conf"),
            &Default::default(),
        )
        .unwrap();
        let mut p = c.pools.into_iter().next().unwrap();
        p.chdir = Some("/srv/p".into());
        p
    }

    #[test]
    fn reads_and_writes_what_php_is_configured_with() {
        let get = ini(&[
            ("extension_dir", "/usr/lib/php/20220829"),
            ("include_path", ".:/usr/share/php:/opt/lib"),
            ("open_basedir", "/srv/p/www:/srv/p/tmp:."),
            ("session.save_handler", "files"),
            ("session.save_path", "2;0700;/srv/p/sessions"),
            ("sys_temp_dir", "/srv/p/tmp"),
            ("upload_tmp_dir", ""),
            ("error_log", "/srv/p/logs/php.log"),
            ("disable_functions", ALL_OFF),
        ]);
        let n = php_needs(&get, &pool());
        let p = |v: &[&str]| v.iter().map(PathBuf::from).collect::<Vec<_>>();
        assert_eq!(
            n.read,
            p(&[
                "/usr/lib/php/20220829",
                "/usr/share/php",
                "/opt/lib",
                "/srv/p/www",
                "/srv/p/tmp",
                "/srv/p"
            ])
        );
        assert_eq!(n.write, p(&["/srv/p/sessions", "/srv/p/tmp", "/srv/p/tmp"]));
        assert_eq!(n.append, p(&["/srv/p/logs/php.log"]));
        assert!(!n.exec);
    }

    #[test]
    fn defaults_are_tmp_and_no_log_file() {
        let n = php_needs(
            &ini(&[("error_log", "syslog"), ("session.save_handler", "redis")]),
            &pool(),
        );
        assert!(n.write.iter().all(|w| w.is_absolute()));
        assert!(n.append.is_empty());
        assert!(n.exec, "nothing disabled: programs may start");
    }

    #[test]
    fn any_enabled_way_to_start_a_program_allows_execute() {
        let without = |f: &str| {
            let list: Vec<&str> = ALL_OFF.split(',').filter(|x| *x != f).collect();
            list.join(", ")
        };
        for f in ["exec", "popen", "mail", "proc_open"] {
            assert!(
                can_start_programs(&ini(&[("disable_functions", &without(f))])),
                "{f}"
            );
        }
        // Extension functions count only when the extension is loaded.
        let only_pcntl = without("pcntl_exec");
        assert!(!can_start_programs(&ini(&[(
            "disable_functions",
            &only_pcntl
        )])));
        assert!(can_start_programs(&ini(&[
            ("disable_functions", &only_pcntl),
            ("pcntl.async_signals", "0")
        ])));
        let only_mb = without("mb_send_mail");
        assert!(can_start_programs(&ini(&[
            ("disable_functions", &only_mb),
            ("mbstring.language", "neutral")
        ])));
        assert!(can_start_programs(&ini(&[
            ("disable_functions", ALL_OFF),
            ("ffi.enable", "1")
        ])));
        assert!(!can_start_programs(&ini(&[
            ("disable_functions", ALL_OFF),
            ("ffi.enable", "0")
        ])));
        assert!(!can_start_programs(&ini(&[
            ("disable_functions", ALL_OFF),
            ("ffi.enable", "preload")
        ])));
        assert!(can_start_programs(&ini(&[
            ("disable_functions", ALL_OFF),
            ("ffi.enable", "preload"),
            ("opcache.preload", "/srv/p/preload.php")
        ])));
    }

    #[test]
    fn save_path_forms() {
        assert_eq!(
            save_dir("/var/lib/php/sessions"),
            Some("/var/lib/php/sessions".into())
        );
        assert_eq!(save_dir("2;/s"), Some("/s".into()));
        assert_eq!(save_dir("2;0700;/s"), Some("/s".into()));
        assert_eq!(save_dir("tcp://redis:6379"), None);
    }
}
