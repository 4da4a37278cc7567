//! `corral site ...` and `corral tune`: argument parsing and output. The
//! work is in [`plan`](crate::plan); this file only turns words into a
//! spec and results into text.

use std::collections::BTreeMap;

use crate::error::{Result, SitesError};
use crate::lock::SiteLock;
use crate::paths::{Paths, FLAGS};
use crate::plan::{self, Outcome, RunOptions, SiteFiles};
use crate::registry::{self, Record};
use crate::sizing;
use crate::spec::{self, SiteSpec, WebServer};
use crate::template::Library;

const EXIT_OK: i32 = 0;
const EXIT_FAIL: i32 = 1;
const EXIT_USAGE: i32 = 64;

/// Usage text of `corral site`.
pub fn usage() -> String {
    let lines = [
        "usage:",
        "  corral site add DOMAIN [--user U] [--php-version 8.2] [--webserver nginx|apache]",
        "                  [--template NAME] [--set KEY=VALUE]... [--alias NAME]... [--shell PATH]",
        "                  [--disk-quota SIZE] [--tls CERT,KEY | --certbot] [--offline]",
        "                  [--dry-run] [--force]",
        "  corral site remove DOMAIN [--yes] [--purge | --keep-files] [--dry-run]",
        "  corral site list [--json]",
        "  corral site show DOMAIN [--json]",
        "  corral site set DOMAIN KEY=VALUE... [--disk-quota SIZE] [--offline] [--dry-run] [--force]",
        "        (KEY: a pool directive, a php.ini name, corral.*, php_version, template, aliases,",
        "         disk_quota, tls=CERT,KEY|certbot; KEY= drops an override)",
        "  corral site disable|enable DOMAIN [--offline] [--dry-run]",
        "  corral site templates",
        "  corral site gc-sessions [DOMAIN]... [--quiet]   (what the cron file runs)",
        "  corral tune [POOL] [--json]",
        "host options (also CORRAL_SITES_<NAME> in the environment):",
    ];
    let mut s = lines.join("\n");
    s.push('\n');
    for (f, h) in FLAGS {
        s.push_str(&format!("  --{f:<20} {h}\n"));
    }
    s.push_str("  --no-verify            do not fetch a probe through the web server\n");
    s
}

/// `corral site ARGS...`; returns the exit code.
pub fn main(args: &[String]) -> i32 {
    match run(args) {
        Ok(code) => code,
        Err(SitesError::Usage(m)) => {
            eprintln!("corral site: {m}\n{}", usage());
            EXIT_USAGE
        }
        Err(e) => {
            eprintln!("corral site: {e}");
            EXIT_FAIL
        }
    }
}

/// `corral tune ARGS...`.
pub fn tune(args: &[String]) -> i32 {
    match tune_run(args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("corral tune: {e}");
            EXIT_FAIL
        }
    }
}

/// Simple flag scanner over what [`Paths::from_args`] left.
struct Args {
    words: Vec<String>,
    pos: usize,
}

impl Args {
    fn next(&mut self) -> Option<String> {
        let w = self.words.get(self.pos).cloned();
        self.pos += 1;
        w
    }
    fn value(&mut self, flag: &str) -> Result<String> {
        self.next()
            .ok_or_else(|| SitesError::Usage(format!("{flag} needs a value")))
    }
}

/// `--disk-quota SIZE` (`10G`, `512M`); empty = no quota.
fn disk_quota(v: &str) -> Result<Option<u64>> {
    if v.is_empty() {
        return Ok(None);
    }
    crate::sizing::parse_bytes(v)
        .filter(|b| *b > 0)
        .map(Some)
        .ok_or_else(|| SitesError::Usage(format!("--disk-quota: bad size '{v}' (e.g. 10G)")))
}

fn split_kv(s: &str) -> Result<(String, String)> {
    let (k, v) = s
        .split_once('=')
        .ok_or_else(|| SitesError::Usage(format!("expected KEY=VALUE, got '{s}'")))?;
    Ok((k.trim().to_string(), v.trim().to_string()))
}

fn run(args: &[String]) -> Result<i32> {
    let mut rest = args.to_vec();
    let paths = Paths::from_args(&mut rest)?;
    let mut a = Args {
        words: rest,
        pos: 0,
    };
    let cmd = a.next().unwrap_or_default();
    match cmd.as_str() {
        "add" => add(&paths, &mut a),
        "remove" => remove(&paths, &mut a),
        "list" => list(&paths, &mut a),
        "show" => show(&paths, &mut a),
        "set" => set(&paths, &mut a),
        "enable" | "disable" => toggle(&paths, &mut a, cmd == "enable"),
        "gc-sessions" => gc_sessions(&paths, &mut a),
        "templates" => {
            for n in Library::new(&paths.template_dir).names() {
                println!("{n}");
            }
            Ok(EXIT_OK)
        }
        "" | "-h" | "--help" | "help" => {
            print!("{}", usage());
            Ok(EXIT_OK)
        }
        other => Err(SitesError::Usage(format!("unknown command '{other}'"))),
    }
}

fn domain_arg(a: &mut Args) -> Result<String> {
    let d = a
        .next()
        .filter(|d| !d.starts_with('-'))
        .ok_or_else(|| SitesError::Usage("DOMAIN is missing".into()))?;
    spec::normalize_domain(&d)
}

/// Checks `--set`/`set` keys before anything is written (see
/// [`keys`](crate::keys)): PHP is asked for its ini names only if needed.
fn check_keys<'a>(
    paths: &Paths,
    php_version: &str,
    keys: impl IntoIterator<Item = &'a str>,
) -> Result<()> {
    crate::keys::check_all(keys, || {
        let exe = std::env::current_exe().map_err(|e| SitesError::io("/proc/self/exe", e))?;
        let ini = paths.php_ini_dir_for(php_version);
        crate::keys::IniNames::from_php(&exe, Some(&ini))
    })
}

fn lock(paths: &Paths, opts: RunOptions) -> Result<Option<SiteLock>> {
    if opts.dry_run {
        return Ok(None);
    }
    SiteLock::acquire(&paths.lock_file()).map(Some)
}

fn add(paths: &Paths, a: &mut Args) -> Result<i32> {
    let domain = domain_arg(a)?;
    let mut spec = SiteSpec {
        user: spec::user_from_domain(&domain),
        domain,
        php_version: spec::DEFAULT_PHP_VERSION.into(),
        webserver: WebServer::Nginx,
        template: "default".into(),
        sets: BTreeMap::new(),
        aliases: Vec::new(),
        shell: spec::DEFAULT_SHELL.into(),
        enabled: true,
        disk_quota: None,
        tls: None,
    };
    let mut opts = RunOptions::default();
    while let Some(w) = a.next() {
        match w.as_str() {
            "--user" => spec.user = a.value("--user")?,
            "--php-version" => spec.php_version = a.value("--php-version")?,
            "--webserver" => spec.webserver = WebServer::parse(&a.value("--webserver")?)?,
            "--template" => spec.template = a.value("--template")?,
            "--shell" => spec.shell = a.value("--shell")?,
            "--alias" => spec
                .aliases
                .push(spec::normalize_domain(&a.value("--alias")?)?),
            "--tls" => spec.tls = spec::Tls::parse(&a.value("--tls")?)?,
            "--certbot" => spec.tls = Some(spec::Tls::Certbot),
            "--offline" => opts.offline = true,
            "--disk-quota" => spec.disk_quota = disk_quota(&a.value("--disk-quota")?)?,
            "--set" => {
                let (k, v) = split_kv(&a.value("--set")?)?;
                if v.is_empty() {
                    spec.sets.remove(&k);
                } else {
                    spec.sets.insert(k, v);
                }
            }
            "--dry-run" => opts.dry_run = true,
            "--force" => opts.force = true,
            other => return Err(SitesError::Usage(format!("unknown option '{other}'"))),
        }
    }
    spec.validate()?;
    check_keys(
        paths,
        &spec.php_version,
        spec.sets.keys().map(String::as_str),
    )?;
    let _lock = lock(paths, opts)?;
    let old = registry::load(paths, &spec.domain)?;
    if let Some(o) = &old {
        let mut same = o.spec.clone();
        same.enabled = spec.enabled;
        if same != spec {
            return Err(SitesError::Site {
                domain: spec.domain.clone(),
                why: format!(
                    "already exists with other options ({}); change it with `corral site set`",
                    differences(&o.spec, &spec).join(", ")
                ),
            });
        }
        // Same options: converge, keeping a disabled site disabled.
        spec.enabled = o.spec.enabled;
    }
    finish(
        plan::apply(paths, old.as_ref(), &spec, opts),
        &spec.domain,
        opts,
        "added",
    )
}

/// What differs between two specs, for the refusal message.
fn differences(a: &SiteSpec, b: &SiteSpec) -> Vec<String> {
    let mut out = Vec::new();
    if a.user != b.user {
        out.push(format!("user {} vs {}", a.user, b.user));
    }
    if a.php_version != b.php_version {
        out.push(format!(
            "php version {} vs {}",
            a.php_version, b.php_version
        ));
    }
    if a.webserver != b.webserver {
        out.push(format!(
            "webserver {} vs {}",
            a.webserver.name(),
            b.webserver.name()
        ));
    }
    if a.template != b.template {
        out.push(format!("template {} vs {}", a.template, b.template));
    }
    if a.sets != b.sets {
        out.push(format!("settings {:?} vs {:?}", a.sets, b.sets));
    }
    if a.aliases != b.aliases {
        out.push(format!("aliases {:?} vs {:?}", a.aliases, b.aliases));
    }
    if a.shell != b.shell {
        out.push(format!("shell {} vs {}", a.shell, b.shell));
    }
    if a.disk_quota != b.disk_quota {
        out.push(format!(
            "disk quota {:?} vs {:?}",
            a.disk_quota, b.disk_quota
        ));
    }
    out
}

fn finish(
    r: Result<(Outcome, crate::journal::Txn)>,
    domain: &str,
    opts: RunOptions,
    verb: &str,
) -> Result<i32> {
    let (outcome, txn) = r?;
    if opts.dry_run {
        println!("dry run: nothing was changed");
        println!("steps: {}", txn.steps.join(" "));
    } else if outcome == Outcome::Unchanged {
        println!("site {domain}: unchanged");
    } else {
        println!("site {domain}: {verb}");
    }
    Ok(EXIT_OK)
}

fn registered(paths: &Paths, domain: &str) -> Result<Record> {
    registry::load(paths, domain)?.ok_or_else(|| SitesError::Site {
        domain: domain.to_string(),
        why: format!(
            "is not a corral site (no {})",
            paths.registry_file(domain).display()
        ),
    })
}

fn remove(paths: &Paths, a: &mut Args) -> Result<i32> {
    let domain = domain_arg(a)?;
    let mut how = plan::Removal::Archive;
    let mut yes = false;
    let mut opts = RunOptions::default();
    while let Some(w) = a.next() {
        match w.as_str() {
            "--keep-files" => how = plan::Removal::KeepFiles,
            "--purge" => how = plan::Removal::Purge,
            "--yes" | "-y" => yes = true,
            "--dry-run" => opts.dry_run = true,
            other => return Err(SitesError::Usage(format!("unknown option '{other}'"))),
        }
    }
    let _lock = lock(paths, opts)?;
    let rec = registered(paths, &domain)?;
    if !yes && !opts.dry_run {
        confirm_removal(paths, &rec, how)?;
    }
    let txn = plan::remove(paths, &rec, how, opts)?;
    if opts.dry_run {
        println!("dry run: nothing was changed");
        println!("steps: {}", txn.steps.join(" "));
    } else {
        println!("site {domain}: removed");
    }
    Ok(EXIT_OK)
}

/// Asks on a terminal; refuses without one (a script says `--yes`).
fn confirm_removal(paths: &Paths, rec: &Record, how: plan::Removal) -> Result<()> {
    use std::io::{BufRead, IsTerminal, Write};
    let home = paths.home(&rec.spec.user);
    let what = match how {
        plan::Removal::Archive => format!(
            "delete {} (an archive is kept in {}) and the accounts {} and {}",
            home.display(),
            paths.archive_dir.display(),
            rec.spec.user,
            rec.spec.php_user()
        ),
        plan::Removal::Purge => format!(
            "delete {} WITHOUT an archive, and the accounts {} and {}",
            home.display(),
            rec.spec.user,
            rec.spec.php_user()
        ),
        plan::Removal::KeepFiles => format!("keep {} and its accounts", home.display()),
    };
    let domain = rec.spec.domain.clone();
    if !std::io::stdin().is_terminal() {
        return Err(SitesError::Site {
            domain,
            why: format!("remove would {what}; pass --yes to confirm (stdin is not a terminal)"),
        });
    }
    print!("Remove site {domain}: its pool, vhost and registry entry, and {what}? [y/N] ");
    let _ = std::io::stdout().flush();
    let mut answer = String::new();
    let _ = std::io::stdin().lock().read_line(&mut answer);
    if matches!(answer.trim(), "y" | "Y" | "yes" | "YES") {
        return Ok(());
    }
    Err(SitesError::Site {
        domain,
        why: "not removed (not confirmed)".into(),
    })
}

fn set(paths: &Paths, a: &mut Args) -> Result<i32> {
    let domain = domain_arg(a)?;
    let mut opts = RunOptions::default();
    let mut changes = Vec::new();
    while let Some(w) = a.next() {
        match w.as_str() {
            "--dry-run" => opts.dry_run = true,
            "--force" => opts.force = true,
            "--offline" => opts.offline = true,
            "--set" => changes.push(split_kv(&a.value("--set")?)?),
            "--disk-quota" => changes.push(("disk_quota".into(), a.value("--disk-quota")?)),
            kv if kv.contains('=') => changes.push(split_kv(kv)?),
            other => return Err(SitesError::Usage(format!("unknown option '{other}'"))),
        }
    }
    if changes.is_empty() {
        return Err(SitesError::Usage("site set needs KEY=VALUE".into()));
    }
    let _lock = lock(paths, opts)?;
    let old = registered(paths, &domain)?;
    let mut spec = old.spec.clone();
    let directives: Vec<&str> = changes
        .iter()
        .map(|(k, _)| k.as_str())
        .filter(|k| !matches!(*k, "tls" | "user" | "webserver" | "domain"))
        .collect();
    check_keys(paths, &spec.php_version, directives)?;
    for (k, v) in changes {
        match k.as_str() {
            "php_version" | "php-version" => spec.php_version = v,
            "template" => spec.template = v,
            "disk_quota" | "disk-quota" => spec.disk_quota = disk_quota(&v)?,
            "aliases" | "alias" => {
                spec.aliases = v
                    .split([',', ' '])
                    .filter(|s| !s.is_empty())
                    .map(spec::normalize_domain)
                    .collect::<Result<_>>()?
            }
            "tls" => spec.tls = spec::Tls::parse(&v)?,
            "user" | "webserver" | "domain" => {
                return Err(SitesError::Usage(format!(
                    "'{k}' cannot change; remove the site and add it again"
                )))
            }
            _ if v.is_empty() => {
                spec.sets.remove(&k);
            }
            _ => {
                spec.sets.insert(k, v);
            }
        }
    }
    spec.validate()?;
    finish(
        plan::apply(paths, Some(&old), &spec, opts),
        &domain,
        opts,
        "updated",
    )
}

fn toggle(paths: &Paths, a: &mut Args, enable: bool) -> Result<i32> {
    let domain = domain_arg(a)?;
    let mut opts = RunOptions::default();
    while let Some(w) = a.next() {
        match w.as_str() {
            "--dry-run" => opts.dry_run = true,
            "--offline" => opts.offline = true,
            other => return Err(SitesError::Usage(format!("unknown option '{other}'"))),
        }
    }
    let _lock = lock(paths, opts)?;
    let old = registered(paths, &domain)?;
    let mut spec = old.spec.clone();
    spec.enabled = enable;
    let verb = if enable { "enabled" } else { "disabled" };
    finish(
        plan::apply(paths, Some(&old), &spec, opts),
        &domain,
        opts,
        verb,
    )
}

fn gc_sessions(paths: &Paths, a: &mut Args) -> Result<i32> {
    let mut quiet = false;
    let mut only = Vec::new();
    while let Some(w) = a.next() {
        match w.as_str() {
            "--quiet" | "-q" => quiet = true,
            d if !d.starts_with('-') => only.push(d.to_string()),
            other => return Err(SitesError::Usage(format!("unknown option '{other}'"))),
        }
    }
    let failed = crate::sessions::gc_all(paths, &only, std::time::SystemTime::now(), quiet)?;
    Ok(if failed == 0 { EXIT_OK } else { EXIT_FAIL })
}

fn list(paths: &Paths, a: &mut Args) -> Result<i32> {
    let json = matches!(a.next().as_deref(), Some("--json"));
    let all = registry::all(paths)?;
    if json {
        let v: Vec<serde_json::Value> = all.iter().map(|r| summary_json(paths, r)).collect();
        println!("{}", serde_json::Value::Array(v));
        return Ok(EXIT_OK);
    }
    println!(
        "{:<32} {:<20} {:<8} {:<12} {:<8}",
        "DOMAIN", "USER", "PHP", "TEMPLATE", "STATE"
    );
    for r in all {
        println!(
            "{:<32} {:<20} {:<8} {:<12} {:<8}",
            r.spec.domain,
            r.spec.user,
            r.spec.php_version,
            r.spec.template,
            if r.spec.enabled {
                "enabled"
            } else {
                "disabled"
            }
        );
    }
    Ok(EXIT_OK)
}

fn summary_json(paths: &Paths, r: &Record) -> serde_json::Value {
    let files = SiteFiles::of(&r.spec, paths);
    let d = plan::desired(&r.spec, paths).ok();
    serde_json::json!({
        "domain": r.spec.domain,
        "user": r.spec.user,
        "php_user": r.spec.php_user(),
        "uid": r.uid,
        "php_uid": r.php_uid,
        "gid": r.gid,
        "php_version": r.spec.php_version,
        "webserver": r.spec.webserver.name(),
        "template": r.spec.template,
        "settings": r.spec.sets,
        "aliases": r.spec.aliases,
        "enabled": r.spec.enabled,
        "disk_quota_bytes": r.spec.disk_quota,
        "home": paths.home(&r.spec.user),
        "docroot": d.as_ref().map(|d| d.layout.docroot.clone()),
        "socket": paths.socket(&r.spec.domain),
        "pool_file": files.pool(r.spec.enabled),
        "vhost_file": files.vhost,
    })
}

fn show(paths: &Paths, a: &mut Args) -> Result<i32> {
    let domain = domain_arg(a)?;
    let json = matches!(a.next().as_deref(), Some("--json"));
    let r = registered(paths, &domain)?;
    let v = summary_json(paths, &r);
    if json {
        println!("{v}");
        return Ok(EXIT_OK);
    }
    if let Some(map) = v.as_object() {
        for (k, val) in map {
            let s = match val {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            println!("{:<12} {s}", format!("{k}:"));
        }
    }
    if let Ok(d) = plan::desired(&r.spec, paths) {
        println!("template chain: {}", d.resolved.chain.join(" <- "));
    }
    Ok(EXIT_OK)
}

fn tune_run(args: &[String]) -> Result<i32> {
    let mut rest = args.to_vec();
    let paths = Paths::from_args(&mut rest)?;
    let json = rest.iter().any(|a| a == "--json");
    let only = rest.iter().find(|a| !a.starts_with('-'));
    let mem = match paths.mem_total {
        Some(m) => m,
        None => sizing::mem_total()?,
    };
    let Some(running) = crate::fpm::pool_workers(&paths.control_socket) else {
        return Err(SitesError::Corral {
            socket: paths.control_socket.clone(),
            why: "not reachable; tune measures running workers".into(),
        });
    };
    let report = sizing::tune(mem, &running, only.map(String::as_str));
    if let Some(o) = only {
        if report.advice.is_empty() {
            return Err(SitesError::Corral {
                socket: paths.control_socket.clone(),
                why: format!("no pool named '{o}'"),
            });
        }
    }
    if json {
        println!("{}", report.json());
    } else {
        print!("{}", report.text());
    }
    Ok(EXIT_OK)
}
