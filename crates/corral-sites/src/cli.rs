//! `corral site ...` and `corral tune`: their clap definitions and their
//! output. The work is in [`plan`](crate::plan); this file only turns
//! arguments into a spec and results into text or JSON.
//!
//! The binary embeds [`SiteArgs`] and [`TuneArgs`] as subcommands and calls
//! their `run`; a new site subcommand or flag is added here only.

use std::collections::BTreeMap;

use clap::{Args, Subcommand};
use corral_cli::{finish, CliError, ExitCode, JsonArg, Reply};

use crate::error::{Result, SitesError};
use crate::lock::SiteLock;
use crate::paths::{HostArgs, Paths};
use crate::plan::{self, Outcome, RunOptions, SiteFiles};
use crate::registry::{self, Record};
use crate::sizing;
use crate::spec::{self, SiteSpec, WebServer};
use crate::template::Library;

/// `corral site`: provision isolated PHP sites.
#[derive(Args, Debug)]
pub struct SiteArgs {
    #[command(subcommand)]
    pub command: SiteCommand,
    #[command(flatten)]
    pub host: HostArgs,
    #[command(flatten)]
    pub out: JsonArg,
}

#[derive(Subcommand, Debug)]
pub enum SiteCommand {
    /// Create a site: users, home, pool and vhost; validated, reloaded, probed, rolled back on failure
    Add(AddArgs),
    /// Remove a site: its pool, vhost, users and (unless --keep-files) home, archived unless --purge
    Remove(RemoveArgs),
    /// Every site, one line each
    List,
    /// One site's settings and files
    Show(DomainArg),
    /// Change a site's settings and apply them
    Set(SetArgs),
    /// Serve a disabled site again
    Enable(ToggleArgs),
    /// Stop serving a site (the web server answers 503 "suspended"); nothing is deleted
    Disable(ToggleArgs),
    /// Owner access: show, add or remove the owner's SFTP keys (chrooted to the home), or turn SFTP off
    Sftp(SftpArgs),
    /// The templates a site can be made from
    Templates,
    /// Remove session files older than each site's session.gc_maxlifetime (run from cron)
    GcSessions(GcArgs),
    /// Let PHP write the site's code for a while (plugin, theme and core updates)
    Unlock(UnlockArgs),
    /// Close an unlock window: code back to the owner, read-only for PHP
    Lock(LockArgs),
}

/// Flags of every command that changes a site.
#[derive(Args, Debug, Clone, Copy, Default)]
pub struct ChangeFlags {
    /// Print the steps and the file diffs, and change nothing
    #[arg(long)]
    pub dry_run: bool,
}

/// For commands that leave a site enabled: a master must run.
#[derive(Args, Debug, Clone, Copy, Default)]
pub struct OfflineFlag {
    /// Write the files although no corral master runs (its next start loads them)
    #[arg(long)]
    pub offline: bool,
}

#[derive(Args, Debug)]
pub struct AddArgs {
    /// The site's domain (example.com)
    #[arg(value_parser = domain)]
    pub domain: String,
    /// The site owner's user name [default: derived from the domain]
    #[arg(long, value_name = "USER")]
    pub user: Option<String>,
    /// PHP version of the pool
    #[arg(long, value_name = "VERSION", default_value = spec::DEFAULT_PHP_VERSION)]
    pub php_version: String,
    /// The web server the vhost is for
    #[arg(long, value_name = "NAME", value_parser = ["nginx", "apache"], default_value = "nginx")]
    pub webserver: String,
    /// Template to build the site from (see `corral site templates`)
    #[arg(long, value_name = "NAME", default_value = "default")]
    pub template: String,
    /// A setting, as for `corral site set` (repeatable)
    #[arg(long = "set", value_name = "KEY=VALUE", value_parser = key_value)]
    pub sets: Vec<(String, String)>,
    /// Another name the vhost answers to (repeatable)
    #[arg(long = "alias", value_name = "NAME", value_parser = domain)]
    pub aliases: Vec<String>,
    /// The owner's login shell
    #[arg(long, value_name = "PATH", default_value = spec::DEFAULT_SHELL)]
    pub shell: String,
    /// Cap the site's disk use where the filesystem has group quotas (e.g. 10G)
    #[arg(long, value_name = "SIZE", value_parser = disk_quota)]
    pub disk_quota: Option<Quota>,
    /// HTTPS with these files (absolute paths), plain HTTP redirected
    #[arg(long, value_name = "CERT,KEY", conflicts_with = "certbot")]
    pub tls: Option<String>,
    /// HTTPS with a certificate from certbot's webroot mode, plain HTTP redirected
    #[arg(long)]
    pub certbot: bool,
    /// Give the owner SFTP, chrooted to the home, with this public key or key file (repeatable)
    #[arg(long = "sftp-key", value_name = "FILE|KEY")]
    pub sftp_keys: Vec<String>,
    /// Go on (with a warning) when the memory plan does not fit
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub offline: OfflineFlag,
    #[command(flatten)]
    pub change: ChangeFlags,
}

/// `corral site sftp DOMAIN`: without flags, what the owner's access is.
#[derive(Args, Debug)]
pub struct SftpArgs {
    /// The site's domain
    #[arg(value_parser = domain)]
    pub domain: String,
    /// Allow this public key or key file (repeatable; SFTP is on while a key is)
    #[arg(long = "add-key", value_name = "FILE|KEY")]
    pub add: Vec<String>,
    /// Take away this key, key file or SHA256:fingerprint (repeatable)
    #[arg(long = "remove-key", value_name = "FILE|KEY|SHA256:…")]
    pub remove: Vec<String>,
    /// Remove every key and the sshd drop-in: no SFTP for this site
    #[arg(long, conflicts_with = "add")]
    pub off: bool,
    #[command(flatten)]
    pub offline: OfflineFlag,
    #[command(flatten)]
    pub change: ChangeFlags,
}

#[derive(Args, Debug)]
pub struct RemoveArgs {
    /// The site's domain
    #[arg(value_parser = domain)]
    pub domain: String,
    /// Keep the home directory, its files and the accounts
    #[arg(long, conflicts_with = "purge")]
    pub keep_files: bool,
    /// Delete the home without keeping an archive of it
    #[arg(long)]
    pub purge: bool,
    /// Do not ask (needed without a terminal)
    #[arg(long, short = 'y')]
    pub yes: bool,
    #[command(flatten)]
    pub change: ChangeFlags,
}

#[derive(Args, Debug)]
pub struct GcArgs {
    /// Only these sites [default: every site]
    #[arg(value_parser = domain)]
    pub domains: Vec<String>,
    /// Print errors only (what the cron job runs)
    #[arg(long, short = 'q')]
    pub quiet: bool,
}

#[derive(Args, Debug)]
pub struct UnlockArgs {
    /// The site's domain
    #[arg(value_parser = domain)]
    pub domain: String,
    /// How long the window stays open: 90s, 15m, 2h (at most 24h)
    #[arg(long = "for", value_name = "DURATION", default_value = "15m", value_parser = window)]
    pub duration: u64,
    #[command(flatten)]
    pub offline: OfflineFlag,
    #[command(flatten)]
    pub change: ChangeFlags,
}

#[derive(Args, Debug)]
pub struct LockArgs {
    /// The site's domain
    #[arg(value_parser = domain, required_unless_present = "expired", conflicts_with = "expired")]
    pub domain: Option<String>,
    /// Lock every site whose unlock window has ended (what cron runs each minute)
    #[arg(long)]
    pub expired: bool,
    /// Print errors only
    #[arg(long, short = 'q')]
    pub quiet: bool,
    #[command(flatten)]
    pub change: ChangeFlags,
}

/// The longest unlock window: long enough for a slow core update by hand,
/// short enough that a forgotten `unlock` does not leave code writable.
pub const MAX_WINDOW_SECS: u64 = 24 * 3600;

/// `--for`: `90s`, `15m`, `2h`, or bare minutes; 1 s to 24 h.
fn window(v: &str) -> std::result::Result<u64, String> {
    parse_window(v).map_err(|e| e.to_string())
}

fn parse_window(v: &str) -> Result<u64> {
    let bad = |why: &str| SitesError::Usage(format!("--for '{v}': {why} (e.g. 15m, 90s, 2h)"));
    let v = v.trim();
    let (num, unit) = match v.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => v.split_at(i),
        None => (v, "m"),
    };
    let n: u64 = num.parse().map_err(|_| bad("not a duration"))?;
    let secs = match unit {
        "s" => n,
        "m" | "min" => n.saturating_mul(60),
        "h" => n.saturating_mul(3600),
        _ => return Err(bad("unit must be s, m or h")),
    };
    if secs == 0 {
        return Err(bad("must be longer than 0"));
    }
    if secs > MAX_WINDOW_SECS {
        return Err(bad("at most 24h"));
    }
    Ok(secs)
}

#[derive(Args, Debug)]
pub struct DomainArg {
    /// The site's domain
    #[arg(value_parser = domain)]
    pub domain: String,
}

#[derive(Args, Debug)]
pub struct SetArgs {
    /// The site's domain
    #[arg(value_parser = domain)]
    pub domain: String,
    /// KEY=VALUE: a pool directive, a php.ini name, corral.*, php_version, template, aliases, disk_quota or tls (CERT,KEY or certbot); KEY= drops an override
    #[arg(value_name = "KEY=VALUE", value_parser = key_value)]
    pub changes: Vec<(String, String)>,
    /// The same as a KEY=VALUE word (repeatable)
    #[arg(long = "set", value_name = "KEY=VALUE", value_parser = key_value)]
    pub sets: Vec<(String, String)>,
    /// disk_quota=SIZE
    #[arg(long, value_name = "SIZE")]
    pub disk_quota: Option<String>,
    /// Go on (with a warning) when the memory plan does not fit
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub offline: OfflineFlag,
    #[command(flatten)]
    pub change: ChangeFlags,
}

#[derive(Args, Debug)]
pub struct ToggleArgs {
    /// The site's domain
    #[arg(value_parser = domain)]
    pub domain: String,
    #[command(flatten)]
    pub offline: OfflineFlag,
    #[command(flatten)]
    pub change: ChangeFlags,
}

/// `corral tune`: pm.max_children from what the running workers use.
#[derive(Args, Debug)]
pub struct TuneArgs {
    /// Only this pool [default: every pool]
    pub pool: Option<String>,
    #[command(flatten)]
    pub host: HostArgs,
    #[command(flatten)]
    pub out: JsonArg,
}

/// A `--disk-quota` value: bytes, or none (`""`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota(pub Option<u64>);

/// Lowered, IDN to punycode; IPs, localhost and single labels refused.
fn domain(v: &str) -> std::result::Result<String, String> {
    spec::normalize_domain(v).map_err(|e| e.to_string())
}

fn key_value(s: &str) -> std::result::Result<(String, String), String> {
    split_kv(s).map_err(|e| e.to_string())
}

fn split_kv(s: &str) -> Result<(String, String)> {
    let (k, v) = s
        .split_once('=')
        .ok_or_else(|| SitesError::Usage(format!("expected KEY=VALUE, got '{s}'")))?;
    Ok((k.trim().to_string(), v.trim().to_string()))
}

/// `--disk-quota SIZE` (`10G`, `512M`); empty = no quota.
fn disk_quota(v: &str) -> std::result::Result<Quota, String> {
    parse_quota(v).map(Quota).map_err(|e| e.to_string())
}

fn parse_quota(v: &str) -> Result<Option<u64>> {
    if v.is_empty() {
        return Ok(None);
    }
    crate::sizing::parse_bytes(v)
        .filter(|b| *b > 0)
        .map(Some)
        .ok_or_else(|| SitesError::Usage(format!("--disk-quota: bad size '{v}' (e.g. 10G)")))
}

impl From<SitesError> for CliError {
    fn from(e: SitesError) -> CliError {
        CliError::new(e.exit_code(), e.to_string())
    }
}

impl SiteCommand {
    /// What `corral site X` is called in messages.
    fn name(&self) -> &'static str {
        match self {
            SiteCommand::Add(_) => "add",
            SiteCommand::Remove(_) => "remove",
            SiteCommand::List => "list",
            SiteCommand::Show(_) => "show",
            SiteCommand::Set(_) => "set",
            SiteCommand::Enable(_) => "enable",
            SiteCommand::Disable(_) => "disable",
            SiteCommand::Sftp(_) => "sftp",
            SiteCommand::Templates => "templates",
            SiteCommand::GcSessions(_) => "gc-sessions",
            SiteCommand::Unlock(_) => "unlock",
            SiteCommand::Lock(_) => "lock",
        }
    }

    /// Whether it changes the host (and so needs root) when run for real.
    fn changes_the_host(&self) -> bool {
        let dry = match self {
            SiteCommand::Add(a) => a.change.dry_run,
            SiteCommand::Remove(a) => a.change.dry_run,
            SiteCommand::Set(a) => a.change.dry_run,
            SiteCommand::Enable(a) | SiteCommand::Disable(a) => a.change.dry_run,
            SiteCommand::Sftp(a) => {
                if a.add.is_empty() && a.remove.is_empty() && !a.off {
                    return false;
                }
                a.change.dry_run
            }
            SiteCommand::GcSessions(_) => false,
            SiteCommand::Unlock(a) => a.change.dry_run,
            SiteCommand::Lock(a) => a.change.dry_run,
            SiteCommand::List | SiteCommand::Show(_) | SiteCommand::Templates => return false,
        };
        !dry
    }
}

impl SiteArgs {
    /// Runs the command and prints its result; the exit code.
    pub fn run(self) -> ExitCode {
        let name = format!("corral site {}", self.command.name());
        let json = self.out.json;
        finish(&name, json, self.reply())
    }

    fn reply(self) -> std::result::Result<Reply, CliError> {
        if self.command.changes_the_host() && !corral_sys::cred::is_root() {
            return Err(CliError::new(
                ExitCode::NoPerm,
                format!(
                    "must be run as root: `corral site {}` creates users, sets owners and ACLs and reloads corral and the web server (--dry-run shows the steps without root)",
                    self.command.name()
                ),
            ));
        }
        let paths = Paths::from_host(&self.host)?;
        Ok(match self.command {
            SiteCommand::Add(a) => add(&paths, a)?,
            SiteCommand::Remove(a) => remove(&paths, a)?,
            SiteCommand::List => list(&paths)?,
            SiteCommand::Show(a) => show(&paths, &a.domain)?,
            SiteCommand::Set(a) => set(&paths, a)?,
            SiteCommand::Enable(a) => toggle(&paths, a, true)?,
            SiteCommand::Disable(a) => toggle(&paths, a, false)?,
            SiteCommand::Sftp(a) => sftp(&paths, a)?,
            SiteCommand::Templates => templates(&paths),
            SiteCommand::GcSessions(a) => gc_sessions(&paths, a)?,
            SiteCommand::Unlock(a) => unlock(&paths, a)?,
            SiteCommand::Lock(a) => lock_sites(paths, a)?,
        })
    }
}

fn templates(paths: &Paths) -> Reply {
    let names = Library::new(&paths.template_dir).names();
    Reply::new(names.join("\n"), serde_json::json!(names))
}

fn lock(paths: &Paths, opts: RunOptions) -> Result<Option<SiteLock>> {
    if opts.dry_run {
        return Ok(None);
    }
    SiteLock::acquire(&paths.lock_file()).map(Some)
}

fn add(paths: &Paths, a: AddArgs) -> Result<Reply> {
    let mut sets = BTreeMap::new();
    for (k, v) in a.sets {
        if v.is_empty() {
            sets.remove(&k);
        } else {
            sets.insert(k, v);
        }
    }
    let mut spec = SiteSpec {
        user: a.user.unwrap_or_else(|| spec::user_from_domain(&a.domain)),
        domain: a.domain,
        php_version: a.php_version,
        webserver: WebServer::parse(&a.webserver)?,
        template: a.template,
        sets,
        aliases: a.aliases,
        shell: a.shell,
        enabled: true,
        disk_quota: a.disk_quota.and_then(|q| q.0),
        tls: match (a.tls, a.certbot) {
            (_, true) => Some(spec::Tls::Certbot),
            (Some(t), false) => spec::Tls::parse(&t)?,
            (None, false) => None,
        },
        unlocked_until: None,
        sftp_keys: Vec::new(),
    };
    for k in &a.sftp_keys {
        crate::sftp::add_keys(&mut spec.sftp_keys, crate::sftp::keys_from_arg(k)?);
    }
    for k in &spec.sftp_keys {
        crate::sftp::fingerprint(k)?;
    }
    let opts = RunOptions {
        dry_run: a.change.dry_run,
        force: a.force,
        offline: a.offline.offline,
    };
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
        same.unlocked_until = spec.unlocked_until;
        if same != spec {
            return Err(SitesError::Site {
                domain: spec.domain.clone(),
                why: format!(
                    "already exists with other options ({}); change it with `corral site set`",
                    differences(&o.spec, &spec).join(", ")
                ),
            });
        }
        // Same options: converge, keeping a disabled site disabled and an
        // unlock window open.
        spec.enabled = o.spec.enabled;
        spec.unlocked_until = o.spec.unlocked_until;
    }
    finish_change(
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
    if a.tls != b.tls {
        out.push(format!("tls {:?} vs {:?}", a.tls, b.tls));
    }
    if a.sftp_keys != b.sftp_keys {
        out.push(format!(
            "{} vs {} SFTP keys (change them with `corral site sftp`)",
            a.sftp_keys.len(),
            b.sftp_keys.len()
        ));
    }
    out
}

/// Checks `--set`/`set` keys before anything is written (see
/// [`keys`](crate::keys)); PHP is asked for its ini names only if needed.
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

/// The reply of a command that changed (or would change) a site: `verb`
/// when it changed, `unchanged` when it converged already.
fn change_reply(domain: &str, opts: RunOptions, result: &str, steps: &[String]) -> Reply {
    let text = if opts.dry_run {
        format!("dry run: nothing was changed\nsteps: {}", steps.join(" "))
    } else {
        format!("site {domain}: {result}")
    };
    Reply::new(
        text,
        serde_json::json!({
            "site": domain,
            "result": result,
            "dry_run": opts.dry_run,
            "steps": steps,
        }),
    )
}

fn finish_change(
    r: Result<(Outcome, crate::journal::Txn)>,
    domain: &str,
    opts: RunOptions,
    verb: &str,
) -> Result<Reply> {
    let (outcome, txn) = r?;
    let result = if outcome == Outcome::Unchanged && !opts.dry_run {
        "unchanged"
    } else {
        verb
    };
    Ok(change_reply(domain, opts, result, &txn.steps))
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

fn remove(paths: &Paths, a: RemoveArgs) -> Result<Reply> {
    let opts = RunOptions {
        dry_run: a.change.dry_run,
        ..RunOptions::default()
    };
    let how = match (a.keep_files, a.purge) {
        (true, _) => plan::Removal::KeepFiles,
        (false, true) => plan::Removal::Purge,
        (false, false) => plan::Removal::Archive,
    };
    let _lock = lock(paths, opts)?;
    let rec = registered(paths, &a.domain)?;
    if !a.yes && !opts.dry_run {
        confirm_removal(paths, &rec, how)?;
    }
    let txn = plan::remove(paths, &rec, how, opts)?;
    Ok(change_reply(&a.domain, opts, "removed", &txn.steps))
}

/// Asks on a terminal; refuses without one (a script says `--yes`).
fn confirm_removal(paths: &Paths, rec: &Record, how: plan::Removal) -> Result<()> {
    use std::io::{BufRead, IsTerminal, Write};
    let home = paths.home(&rec.spec.user);
    let accounts = format!("the accounts {} and {}", rec.spec.user, rec.spec.php_user());
    let what = match how {
        plan::Removal::Archive => format!(
            "delete {} (an archive is kept in {}) and {accounts}",
            home.display(),
            paths.archive_dir.display()
        ),
        plan::Removal::Purge => format!(
            "delete {} WITHOUT an archive, and {accounts}",
            home.display()
        ),
        plan::Removal::KeepFiles => format!("keep {} and {accounts}", home.display()),
    };
    let domain = rec.spec.domain.clone();
    if !std::io::stdin().is_terminal() {
        return Err(SitesError::Usage(format!(
            "remove {domain} would {what}; pass --yes to confirm (stdin is not a terminal)"
        )));
    }
    eprint!("Remove site {domain}: its pool, vhost and registry entry, and {what}? [y/N] ");
    let _ = std::io::stderr().flush();
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

fn gc_sessions(paths: &Paths, a: GcArgs) -> Result<Reply> {
    let report = crate::sessions::gc_all(paths, &a.domains, std::time::SystemTime::now())?;
    let failed = report.iter().filter(|r| r.error.is_some()).count();
    let text: Vec<String> = report
        .iter()
        .filter(|r| !a.quiet || r.error.is_some())
        .map(|r| r.line())
        .collect();
    if failed > 0 {
        return Err(SitesError::Site {
            domain: String::new(),
            why: format!(
                "session cleanup failed for {failed} site(s):\n{}",
                text.join("\n")
            ),
        });
    }
    let json: Vec<serde_json::Value> = report.iter().map(|r| r.json()).collect();
    Ok(Reply::new(text.join("\n"), serde_json::Value::Array(json)))
}

fn set(paths: &Paths, a: SetArgs) -> Result<Reply> {
    let opts = RunOptions {
        dry_run: a.change.dry_run,
        force: a.force,
        offline: a.offline.offline,
    };
    let mut changes = a.changes;
    changes.extend(a.sets);
    if let Some(q) = a.disk_quota {
        changes.push(("disk_quota".into(), q));
    }
    if changes.is_empty() {
        return Err(SitesError::Usage(
            "corral site set DOMAIN needs KEY=VALUE".into(),
        ));
    }
    let _lock = lock(paths, opts)?;
    let old = registered(paths, &a.domain)?;
    let mut spec = old.spec.clone();
    let keys: Vec<&str> = changes
        .iter()
        .map(|(k, _)| k.as_str())
        .filter(|k| !matches!(*k, "tls" | "user" | "webserver" | "domain"))
        .collect();
    check_keys(paths, &spec.php_version, keys)?;
    for (k, v) in changes {
        match k.as_str() {
            "php_version" | "php-version" => spec.php_version = v,
            "template" => spec.template = v,
            "disk_quota" | "disk-quota" => spec.disk_quota = parse_quota(&v)?,
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
    finish_change(
        plan::apply(paths, Some(&old), &spec, opts),
        &a.domain,
        opts,
        "updated",
    )
}

/// `site sftp`: the keys change in the registry's spec and the site
/// converges (the same steps as `add`); no flags = what there is now.
fn sftp(paths: &Paths, a: SftpArgs) -> Result<Reply> {
    let opts = RunOptions {
        dry_run: a.change.dry_run,
        force: false,
        offline: a.offline.offline,
    };
    if a.add.is_empty() && a.remove.is_empty() && !a.off {
        return sftp_status(paths, &registered(paths, &a.domain)?);
    }
    let _lock = lock(paths, opts)?;
    let old = registered(paths, &a.domain)?;
    let mut spec = old.spec.clone();
    for k in &a.remove {
        if crate::sftp::remove_keys(&mut spec.sftp_keys, k)? == 0 {
            return Err(SitesError::Usage(format!(
                "--remove-key: no key of {} matches '{k}' (`corral site sftp {}` lists them)",
                a.domain, a.domain
            )));
        }
    }
    if a.off {
        spec.sftp_keys.clear();
    }
    for k in &a.add {
        let new = crate::sftp::keys_from_arg(k)?;
        for key in &new {
            crate::sftp::fingerprint(key)?;
        }
        crate::sftp::add_keys(&mut spec.sftp_keys, new);
    }
    spec.validate()?;
    let verb = if spec.sftp_keys.is_empty() {
        "SFTP off"
    } else {
        "SFTP keys updated"
    };
    finish_change(
        plan::apply(paths, Some(&old), &spec, opts),
        &a.domain,
        opts,
        verb,
    )
}

fn sftp_status(paths: &Paths, r: &Record) -> Result<Reply> {
    let spec = &r.spec;
    let mut keys = Vec::new();
    for k in &spec.sftp_keys {
        let comment: Vec<&str> = k.split_whitespace().skip(2).collect();
        keys.push(serde_json::json!({
            "type": k.split_whitespace().next().unwrap_or(""),
            "fingerprint": crate::sftp::fingerprint(k)?,
            "comment": comment.join(" "),
        }));
    }
    let on = !keys.is_empty();
    let home = paths.home(&spec.user);
    let json = serde_json::json!({
        "site": spec.domain,
        "sftp": on,
        "user": spec.user,
        "chroot": on.then(|| home.clone()),
        "start_dir": on.then(|| format!("/htdocs/{}", spec.domain)),
        "keys": keys,
        "sshd_config": on.then(|| crate::sftp::dropin_file(paths, &spec.user)),
        "keys_file": on.then(|| crate::sftp::keys_file(paths, &spec.user)),
    });
    let text = if on {
        let mut t = format!(
            "SFTP for {user}: `sftp {user}@HOST`, chrooted to {home} (the session starts in /htdocs/{domain})
             sshd drop-in: {}
keys file:    {}
",
            crate::sftp::dropin_file(paths, &spec.user).display(),
            crate::sftp::keys_file(paths, &spec.user).display(),
            user = spec.user,
            home = home.display(),
            domain = spec.domain,
        );
        for k in &keys {
            t.push_str(&format!(
                "key {} {} {}
",
                k["type"].as_str().unwrap_or(""),
                k["fingerprint"].as_str().unwrap_or(""),
                k["comment"].as_str().unwrap_or("")
            ));
        }
        t
    } else {
        format!(
            "no SFTP for {} (add a key with `corral site sftp {} --add-key FILE`)",
            spec.domain, spec.domain
        )
    };
    Ok(Reply::new(text, json))
}

fn toggle(paths: &Paths, a: ToggleArgs, enable: bool) -> Result<Reply> {
    let opts = RunOptions {
        dry_run: a.change.dry_run,
        force: false,
        offline: a.offline.offline,
    };
    let _lock = lock(paths, opts)?;
    let old = registered(paths, &a.domain)?;
    let mut spec = old.spec.clone();
    spec.enabled = enable;
    let verb = if enable { "enabled" } else { "disabled" };
    finish_change(
        plan::apply(paths, Some(&old), &spec, opts),
        &a.domain,
        opts,
        verb,
    )
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// `site unlock`: the spec records the window's end, and [`plan::apply`]
/// opens the code tree, gives the pool's Landlock the site dir and
/// reloads the pool (see docs/sites.md, "Updates").
fn unlock(paths: &Paths, a: UnlockArgs) -> Result<Reply> {
    let opts = RunOptions {
        dry_run: a.change.dry_run,
        force: false,
        offline: a.offline.offline,
    };
    let _lock = lock(paths, opts)?;
    let old = registered(paths, &a.domain)?;
    let mut spec = old.spec.clone();
    let until = now_secs() + a.duration;
    spec.unlocked_until = Some(until);
    let before = crate::fpm::pids_of(&paths.control_socket, &a.domain);
    let r = plan::apply(paths, Some(&old), &spec, opts);
    let mut reply = finish_change(r, &a.domain, opts, "unlocked")?;
    if !opts.dry_run && reloaded(&reply) {
        new_generation(paths, &a.domain, &before);
    }
    if !opts.dry_run {
        reply.text.push_str(&format!(
            " until {} (UTC); `corral site lock {}` closes it earlier",
            utc_text(until),
            a.domain
        ));
    }
    if let Some(m) = reply.json.as_object_mut() {
        m.insert("unlocked_until".into(), serde_json::json!(until));
        m.insert(
            "unlocked_until_utc".into(),
            serde_json::json!(utc_text(until)),
        );
    }
    Ok(reply)
}

/// `site lock DOMAIN` or `--expired`. Locking never needs the master (the
/// pool file is written and loaded at its next start if none runs) and
/// skips the probe: a failed probe must not roll a lock back and leave
/// the code writable.
fn lock_sites(mut paths: Paths, a: LockArgs) -> Result<Reply> {
    paths.no_verify = true;
    let paths = &paths;
    let opts = RunOptions {
        dry_run: a.change.dry_run,
        force: true,
        offline: true,
    };
    let _lock = lock(paths, opts)?;
    let targets: Vec<Record> = match &a.domain {
        Some(d) => vec![registered(paths, d)?],
        None => {
            let now = now_secs();
            registry::all(paths)?
                .into_iter()
                .filter(|r| r.spec.unlocked_until.is_some_and(|u| u <= now))
                .collect()
        }
    };
    let mut lines = Vec::new();
    let mut json = Vec::new();
    let mut failed = Vec::new();
    for old in targets {
        let domain = old.spec.domain.clone();
        let mut spec = old.spec.clone();
        spec.unlocked_until = None;
        let before = crate::fpm::pids_of(&paths.control_socket, &domain);
        match finish_change(
            plan::apply(paths, Some(&old), &spec, opts),
            &domain,
            opts,
            "locked",
        ) {
            Ok(r) => {
                if !opts.dry_run && reloaded(&r) {
                    new_generation(paths, &domain, &before);
                }
                lines.push(r.text);
                json.push(r.json);
            }
            Err(e) => failed.push(format!("site {domain}: {e}")),
        }
    }
    if !failed.is_empty() {
        return Err(SitesError::Site {
            domain: String::new(),
            why: format!(
                "locking failed for {} site(s):\n{}",
                failed.len(),
                failed.join("\n")
            ),
        });
    }
    if a.domain.is_some() {
        let r = json.pop().unwrap_or_default();
        return Ok(Reply::new(lines.join("\n"), r));
    }
    let text = if a.quiet {
        String::new()
    } else {
        lines.join("\n")
    };
    Ok(Reply::new(text, serde_json::Value::Array(json)))
}

/// Whether the change reloaded the pool (its steps name `pool-reload`).
fn reloaded(r: &Reply) -> bool {
    r.json["steps"]
        .as_array()
        .is_some_and(|s| s.iter().any(|x| x == "pool-reload"))
}

/// Returns once the workers that started with the old Landlock rules are
/// gone, so that when `unlock` returns PHP can write and when `lock`
/// returns no worker that could is left; says so if they outlive 30 s.
fn new_generation(paths: &Paths, domain: &str, before: &[i32]) {
    let timeout = std::time::Duration::from_secs(30);
    if !crate::fpm::wait_old_gone(&paths.control_socket, domain, before, timeout) {
        eprintln!(
            "warning: pool {domain}: workers of before the reload still run after 30 s \
             (busy with long requests); they keep the old write rules until they exit"
        );
    }
}

/// `2026-12-01 15:45:00` from epoch seconds.
fn utc_text(secs: u64) -> String {
    let s = plan::utc_stamp(std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs));
    format!(
        "{}-{}-{} {}:{}:{}",
        &s[0..4],
        &s[4..6],
        &s[6..8],
        &s[9..11],
        &s[11..13],
        &s[13..15]
    )
}

/// `locked`, `unlocked until …`, or `unlocked, expired at …` (cron locks
/// it within a minute).
fn lock_state(r: &Record) -> String {
    match r.spec.unlocked_until {
        None => "locked".into(),
        Some(u) if u <= now_secs() => format!("unlocked, expired {} UTC", utc_text(u)),
        Some(u) => format!("unlocked until {} UTC", utc_text(u)),
    }
}

fn list(paths: &Paths) -> Result<Reply> {
    let all = registry::all(paths)?;
    let json: Vec<serde_json::Value> = all.iter().map(|r| summary_json(paths, r)).collect();
    let mut text = format!(
        "{:<32} {:<20} {:<8} {:<12} {:<8} {}\n",
        "DOMAIN", "USER", "PHP", "TEMPLATE", "STATE", "CODE"
    );
    for r in all {
        text.push_str(&format!(
            "{:<32} {:<20} {:<8} {:<12} {:<8} {}\n",
            r.spec.domain,
            r.spec.user,
            r.spec.php_version,
            r.spec.template,
            if r.spec.enabled {
                "enabled"
            } else {
                "disabled"
            },
            lock_state(&r)
        ));
    }
    Ok(Reply::new(text, serde_json::Value::Array(json)))
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
        "tls": r.spec.tls,
        "code": lock_state(r),
        "unlocked_until": r.spec.unlocked_until,
        "sftp": !r.spec.sftp_keys.is_empty(),
        "home": paths.home(&r.spec.user),
        "docroot": d.as_ref().map(|d| d.layout.docroot.clone()),
        "socket": paths.socket(&r.spec.domain),
        "pool_file": files.pool(r.spec.enabled),
        "vhost_file": files.vhost,
    })
}

fn show(paths: &Paths, domain: &str) -> Result<Reply> {
    let r = registered(paths, domain)?;
    let v = summary_json(paths, &r);
    let mut text = String::new();
    if let Some(map) = v.as_object() {
        for (k, val) in map {
            let s = match val {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            text.push_str(&format!("{:<12} {s}\n", format!("{k}:")));
        }
    }
    if let Ok(d) = plan::desired(&r.spec, paths) {
        text.push_str(&format!(
            "template chain: {}\n",
            d.resolved.chain.join(" <- ")
        ));
    }
    Ok(Reply::new(text, v))
}

impl TuneArgs {
    /// Runs `corral tune` and prints its result; the exit code.
    pub fn run(self) -> ExitCode {
        finish("corral tune", self.out.json, tune(&self))
    }
}

/// Every running pool's workers, or why corral could not be asked.
fn running_pools(
    socket: &std::path::Path,
) -> std::result::Result<Vec<(String, Vec<crate::fpm::Worker>)>, CliError> {
    use corral_ipc::control::ControlRequest;
    let reply = corral_ipc::control::request(socket, &ControlRequest::Status { pool: None })
        .map_err(|e| corral_cli::target::unreachable(socket, &e))?;
    if !reply.ok {
        return Err(CliError::new(reply.code, reply.text));
    }
    crate::fpm::parse_workers(&reply.text).ok_or_else(|| {
        CliError::new(
            ExitCode::Software,
            format!(
                "corral at {} sent a status that is not JSON",
                socket.display()
            ),
        )
    })
}

fn tune(a: &TuneArgs) -> std::result::Result<Reply, CliError> {
    let paths = Paths::from_host(&a.host)?;
    let only = a.pool.as_deref();
    let mem = match paths.mem_total {
        Some(m) => m,
        None => sizing::mem_total()?,
    };
    let running = running_pools(&paths.control_socket)?;
    let report = sizing::tune(mem, &running, only);
    if let Some(o) = only {
        if report.advice.is_empty() {
            return Err(CliError::failure(format!(
                "corral at {}: no pool named '{o}'",
                paths.control_socket.display()
            )));
        }
    }
    Ok(Reply::new(report.text(), report.json()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser, Debug)]
    struct T {
        #[command(subcommand)]
        cmd: Top,
    }

    #[derive(Subcommand, Debug)]
    enum Top {
        Site(SiteArgs),
    }

    fn site(args: &[&str]) -> std::result::Result<SiteArgs, clap::Error> {
        let mut all = vec!["corral", "site"];
        all.extend_from_slice(args);
        T::try_parse_from(all).map(|t| match t.cmd {
            Top::Site(s) => s,
        })
    }

    #[test]
    fn add_takes_its_flags_in_any_order() {
        let s = site(&[
            "add",
            "--template",
            "wordpress",
            "example.com",
            "--set",
            "pm.max_children=4",
            "--alias",
            "www.example.com",
            "--disk-quota",
            "10G",
            "--home-base",
            "/srv/h",
            "--json",
        ])
        .unwrap();
        let SiteCommand::Add(a) = s.command else {
            panic!("{:?}", s.command)
        };
        assert_eq!(a.domain, "example.com");
        assert_eq!(a.template, "wordpress");
        assert_eq!(a.sets, [("pm.max_children".into(), "4".into())]);
        assert_eq!(a.aliases, ["www.example.com"]);
        assert_eq!(a.disk_quota, Some(Quota(Some(10 << 30))));
        assert_eq!(s.host.home_base.as_deref(), Some("/srv/h"));
        assert!(s.out.json);
    }

    #[test]
    fn bad_words_are_usage_errors() {
        use clap::error::ErrorKind;
        let kind = |a: &[&str]| site(a).unwrap_err().kind();
        assert_eq!(kind(&["add"]), ErrorKind::MissingRequiredArgument);
        assert_eq!(kind(&["add", "x.com", "--jsn"]), ErrorKind::UnknownArgument);
        assert_eq!(kind(&["add", "not a domain"]), ErrorKind::ValueValidation);
        assert_eq!(
            kind(&["add", "x.com", "--disk-quota", "lots"]),
            ErrorKind::ValueValidation
        );
        assert_eq!(
            kind(&["set", "x.com", "novalue"]),
            ErrorKind::ValueValidation
        );
        assert_eq!(kind(&["frob"]), ErrorKind::InvalidSubcommand);
        assert!(site(&["add", "--help"]).unwrap_err().kind() == ErrorKind::DisplayHelp);
    }

    #[test]
    fn set_gathers_every_form_of_change() {
        let s = site(&[
            "set",
            "x.com",
            "memory_limit=256M",
            "--set",
            "corral.cpu_max=",
            "--disk-quota",
            "1G",
            "--dry-run",
        ])
        .unwrap();
        let SiteCommand::Set(a) = s.command else {
            panic!()
        };
        assert_eq!(a.changes, [("memory_limit".into(), "256M".into())]);
        assert_eq!(a.sets, [("corral.cpu_max".into(), String::new())]);
        assert_eq!(a.disk_quota.as_deref(), Some("1G"));
        assert!(a.change.dry_run);
    }

    #[test]
    fn unlock_windows() {
        assert_eq!(parse_window("15m").unwrap(), 900);
        assert_eq!(parse_window("90s").unwrap(), 90);
        assert_eq!(parse_window("2h").unwrap(), 7200);
        assert_eq!(parse_window("30").unwrap(), 1800);
        assert_eq!(parse_window("24h").unwrap(), MAX_WINDOW_SECS);
        for bad in [
            "",
            "0m",
            "25h",
            "1d",
            "soon",
            "-5m",
            "99999999999999999999h",
        ] {
            assert!(parse_window(bad).is_err(), "{bad}");
        }
        let s = site(&["unlock", "x.com"]).unwrap();
        let SiteCommand::Unlock(a) = s.command else {
            panic!()
        };
        assert_eq!(a.duration, 900, "15 minutes by default");
        let s = site(&["lock", "--expired", "-q"]).unwrap();
        let SiteCommand::Lock(a) = s.command else {
            panic!()
        };
        assert!(a.expired && a.quiet && a.domain.is_none());
        assert!(site(&["lock"]).is_err(), "a domain or --expired");
        assert!(site(&["lock", "x.com", "--expired"]).is_err());
        assert_eq!(utc_text(1_796_131_505), "2026-12-01 13:25:05");
    }

    #[test]
    fn only_real_changes_need_root() {
        let needs = |a: &[&str]| site(a).unwrap().command.changes_the_host();
        assert!(needs(&["add", "x.com"]));
        assert!(!needs(&["add", "x.com", "--dry-run"]));
        assert!(needs(&["remove", "x.com"]));
        assert!(needs(&["disable", "x.com"]));
        assert!(!needs(&["list"]));
        assert!(!needs(&["show", "x.com"]));
        assert!(needs(&["unlock", "x.com"]));
        assert!(needs(&["lock", "--expired"]));
        assert!(!needs(&["lock", "x.com", "--dry-run"]));
    }
}
