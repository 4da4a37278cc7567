//! Landlock for a pool: applied by the prototype after PHP has started and
//! after the privilege drop (and the chroot, so paths are the tenant's),
//! before the first worker is forked; every worker inherits it, and so
//! does anything a worker starts.
//!
//! What a pool may do, file by file:
//! - **read** the system (`/usr`, `/bin`, `/sbin`, `/lib*`, `/etc`), PHP's
//!   own trees (extension_dir, include_path) and the pool's tree
//!   (`corral.landlock_read`, chdir, doc_root, open_basedir);
//! - **write** (and read) only in `corral.landlock_write`, its temporary
//!   directories (sys_temp_dir, upload_tmp_dir) and session.save_path, and
//!   append to its error_log file; /dev/null, /dev/zero, /dev/full,
//!   /dev/random and /dev/urandom are read-write devices;
//! - **execute** only system files, and only when the pool can start a
//!   process at all: when every PHP entry point that runs a program
//!   (exec, system, passthru, shell_exec, proc_open, popen, pcntl_exec,
//!   mail, mb_send_mail) is in disable_functions and FFI is off, nothing
//!   is executable. That kills the classic disable_functions bypasses
//!   (`putenv("LD_PRELOAD=…")` then error_log()/mb_send_mail() starting
//!   sendmail, Imagick delegates, an exploited PHP bug calling execve),
//!   at the price of `error_log($m, 1)` (mail) in such a pool. A tree the
//!   tenant can write never gets Execute, and a write tree beneath an
//!   executable one is refused (Landlock rights add up down a tree, so it
//!   would inherit Execute).
//!
//! Not covered by Landlock, and why that is acceptable or handled
//! elsewhere: stat(2)/readlink(2) of any path (file names, sizes and
//! owners stay visible; contents do not); mmap(PROT_EXEC) of a readable
//! file (the private tmpfs is `noexec`, see `namespaces`); connecting to
//! unix sockets (their file modes, `listen.mode`); `/proc/self` cannot be
//! a rule, because a rule binds the inode of the prototype's own
//! `/proc/PID` and forked workers have others, so `/proc` as a whole is
//! readable: with `corral.namespaces` it is the pool's hidepid procfs,
//! without it the host's (reported as lacking).
//!
//! **TCP** (ABI 4 and later): when the master names ports to deny (every
//! pool's FastCGI and status TCP ports, this pool's own included: a pool
//! never needs to talk FastCGI to a pool, and doing so could lift its own
//! php_admin_value limits), connect is allowed to every other port.
//! Landlock rules are allow-lists, so that is one rule per allowed port,
//! 65536 minus the denied ones; the port is denied on every address, not
//! only loopback. Pools with nothing to deny handle no network right at
//! all (no cost). UDP is not covered by Landlock.
//!
//! **Scope** (ABI 6 and later): signals to processes outside the pool's
//! domain are refused, so a pool cannot signal another pool or a host
//! process of the same user; and connecting to an abstract unix socket
//! created outside the pool is refused, so a pool cannot reach another
//! pool's (or a host daemon's) abstract sockets, which no file mode
//! protects. An agent that listens on one (New Relic's `@newrelic` by
//! default) must be given a path socket instead.
//!
//! The rights handled are pinned to [`TARGET`] (ABI 7) and applied best
//! effort: an older kernel enforces what it has, and the report names
//! what it lacks; a newer kernel's extra rights (e.g. ABI 9's control of
//! unix socket connects) stay unhandled until they are vetted here.

use std::path::{Component, Path, PathBuf};

use landlock::{
    Access, AccessFs, AccessNet, BitFlags, CompatLevel, Compatible, LandlockStatus, NetPort,
    PathBeneath, PathFd, Ruleset, RulesetAttr, RulesetCreatedAttr, RulesetStatus, Scope, ABI,
};

use crate::{Confinement, Report};

/// The Landlock ABI whose rights corral knows and handles.
pub const TARGET: ABI = ABI::V7;

/// What PHP needs besides the system, as read from its ini after start-up.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PhpNeeds {
    /// extension_dir, include_path, open_basedir, doc_root, chdir.
    pub read: Vec<PathBuf>,
    /// session.save_path, upload_tmp_dir, sys_temp_dir.
    pub write: Vec<PathBuf>,
    /// error_log.
    pub append: Vec<PathBuf>,
    /// Whether any way to start a program is enabled.
    pub exec: bool,
}

/// What a rule lets the pool do under a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Grant {
    Read,
    ReadExec,
    ReadWrite,
    /// A character device: read and write, no ioctl.
    Device,
    /// One file, written (appended) only.
    Append,
}

impl Grant {
    fn access(self) -> BitFlags<AccessFs> {
        let read = AccessFs::ReadFile | AccessFs::ReadDir;
        match self {
            Grant::Read => read,
            Grant::ReadExec => read | AccessFs::Execute,
            // No Execute, no symlinks (a tenant's symlink is how a web
            // server is tricked into serving another tenant's file), no
            // device nodes, no ioctl.
            Grant::ReadWrite => {
                read | AccessFs::WriteFile
                    | AccessFs::RemoveDir
                    | AccessFs::RemoveFile
                    | AccessFs::MakeDir
                    | AccessFs::MakeReg
                    | AccessFs::MakeSock
                    | AccessFs::MakeFifo
                    | AccessFs::Refer
                    | AccessFs::Truncate
            }
            Grant::Device => AccessFs::ReadFile | AccessFs::WriteFile | AccessFs::Truncate,
            Grant::Append => AccessFs::WriteFile.into(),
        }
    }

    fn label(self) -> &'static str {
        match self {
            Grant::Read => "read-only",
            Grant::ReadExec => "read+execute",
            Grant::ReadWrite => "read-write",
            Grant::Device => "devices",
            Grant::Append => "append",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub path: PathBuf,
    pub grant: Grant,
    /// Named by the pool (its settings or its PHP ini) rather than by
    /// corral: only then is a missing path worth a warning. A built-in
    /// path may simply not exist (no /lib32 without multilib, no /etc in
    /// a minimal chroot).
    pub asked: bool,
}

/// A pool's ruleset, before it meets the kernel.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rules {
    /// Sorted by path, one rule per path.
    pub rules: Vec<Rule>,
    /// TCP ports no process of the pool may connect to.
    pub deny_ports: Vec<u16>,
    /// What was asked for and refused, worded for the log.
    pub lacking: Vec<String>,
}

/// The system trees: executable when the pool may start programs.
const SYSTEM: [&str; 7] = [
    "/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32",
];
/// Read-only system trees, never executable.
const SYSTEM_DATA: [&str; 3] = ["/etc", "/proc", "/sys/devices/system/cpu"];
const DEVICES: [&str; 5] = [
    "/dev/null",
    "/dev/zero",
    "/dev/full",
    "/dev/random",
    "/dev/urandom",
];
/// Private (tmpfs) with corral.namespaces, shared with the host without.
const TMP_DIRS: [&str; 3] = ["/tmp", "/var/tmp", "/dev/shm"];

/// `/a/./b/` → `/a/b`; relative paths and `..` are refused, since a rule
/// must name what the operator meant, not what a path walk resolves to.
fn normalize(p: &Path) -> Option<PathBuf> {
    if !p.is_absolute() {
        return None;
    }
    let mut out = PathBuf::from("/");
    for c in p.components() {
        match c {
            Component::RootDir | Component::CurDir => {}
            Component::Normal(n) => out.push(n),
            Component::ParentDir | Component::Prefix(_) => return None,
        }
    }
    Some(out)
}

/// The rules for a pool, or none if it did not ask for Landlock.
pub fn rules(c: &Confinement, php: &PhpNeeds) -> Rules {
    if !c.landlock {
        return Rules::default();
    }
    let mut b = Builder::default();
    let system = if php.exec {
        Grant::ReadExec
    } else {
        Grant::Read
    };
    for p in SYSTEM {
        b.grant(p.as_ref(), system);
    }
    for p in SYSTEM_DATA {
        b.grant(p.as_ref(), Grant::Read);
    }
    for p in DEVICES {
        b.grant(p.as_ref(), Grant::Device);
    }
    if c.namespaces {
        for p in TMP_DIRS {
            b.grant(p.as_ref(), Grant::ReadWrite);
        }
    } else {
        b.lacking.push(
            "landlock: /proc is the host's (corral.namespaces = no): other pools' processes stay visible"
                .into(),
        );
    }
    for p in c.read.iter().chain(&php.read) {
        b.grant_checked(p, Grant::Read);
    }
    for p in c.write.iter().chain(&php.write) {
        if !c.namespaces && TMP_DIRS.iter().any(|t| p.starts_with(t)) {
            b.lacking.push(format!(
                "landlock: {} is writable and shared with the host (corral.namespaces = no)",
                p.display()
            ));
        }
        b.grant_checked(p, Grant::ReadWrite);
    }
    for p in &php.append {
        b.grant_checked(p, Grant::Append);
    }
    let mut rules = b.finish();
    rules.deny_ports = c.deny_connect_ports.clone();
    rules.deny_ports.sort_unstable();
    rules.deny_ports.dedup();
    rules
}

#[derive(Default)]
struct Builder {
    rules: Vec<Rule>,
    lacking: Vec<String>,
}

impl Builder {
    fn grant(&mut self, path: &Path, grant: Grant) {
        self.add(path, grant, false);
    }

    fn add(&mut self, path: &Path, grant: Grant, asked: bool) {
        match self.rules.iter_mut().find(|r| r.path == path) {
            // The stronger wins; Execute never meets write (see refuse).
            Some(r) => {
                r.grant = r.grant.max(grant);
                r.asked |= asked;
            }
            None => self.rules.push(Rule {
                path: path.to_path_buf(),
                grant,
                asked,
            }),
        }
    }

    /// A pool-supplied path: absolute, and a write tree must not hold or
    /// sit beneath something executable.
    fn grant_checked(&mut self, path: &Path, grant: Grant) {
        let Some(p) = normalize(path) else {
            self.lacking.push(format!(
                "landlock: '{}' is not an absolute path without '..', not granted",
                path.display()
            ));
            return;
        };
        if let Some(why) = self.refuse(&p, grant) {
            self.lacking.push(format!(
                "landlock: {} not {}: {why}",
                p.display(),
                grant.label()
            ));
            return;
        }
        self.add(&p, grant, true);
    }

    fn refuse(&self, p: &Path, grant: Grant) -> Option<String> {
        if !matches!(grant, Grant::ReadWrite | Grant::Append) {
            return None;
        }
        let system = SYSTEM.iter().chain(&SYSTEM_DATA).map(Path::new);
        if let Some(s) = system.clone().find(|s| s.starts_with(p)) {
            return Some(format!("it holds {}", s.display()));
        }
        self.rules
            .iter()
            .find(|r| r.grant == Grant::ReadExec && p.starts_with(&r.path))
            .map(|r| format!("it is beneath {}, which may execute", r.path.display()))
    }

    /// Sorted, and without rules an ancestor already covers (Landlock adds
    /// rights down a tree): a shorter ruleset and a readable report.
    fn finish(mut self) -> Rules {
        self.rules.sort_by(|a, b| a.path.cmp(&b.path));
        let all = self.rules.clone();
        self.rules.retain(|r| {
            !all.iter().any(|up| {
                up.path != r.path
                    && r.path.starts_with(&up.path)
                    && up.grant.access().contains(r.grant.access())
            })
        });
        Rules {
            rules: self.rules,
            deny_ports: Vec::new(),
            lacking: self.lacking,
        }
    }
}

/// Every port but the denied ones.
pub fn allowed_ports(deny: &[u16]) -> impl Iterator<Item = u16> + '_ {
    (0..=u16::MAX).filter(move |p| deny.binary_search(p).is_err())
}

/// Why a ruleset could not be built or enforced. Only a failure of the
/// kernel calls themselves: a missing path or an old ABI is reported,
/// not an error.
#[derive(Debug, thiserror::Error)]
pub enum LandlockError {
    #[error("landlock ruleset: {0}")]
    Ruleset(#[from] landlock::RulesetError),
}

/// Build the kernel's ruleset from `rules` and restrict this process (and
/// everything it forks from now on).
pub fn restrict(rules: &Rules) -> Result<Report, LandlockError> {
    let mut report = Report::default();
    for l in &rules.lacking {
        report.lacking(l.clone());
    }
    let mut ruleset = Ruleset::default()
        .set_compatibility(CompatLevel::BestEffort)
        .handle_access(AccessFs::from_all(TARGET))?
        .scope(Scope::Signal | Scope::AbstractUnixSocket)?;
    if !rules.deny_ports.is_empty() {
        ruleset = ruleset.handle_access(AccessNet::ConnectTcp)?;
    }
    let mut created = ruleset.create()?.no_new_privs(true);
    let mut granted: Vec<&Rule> = Vec::new();
    for r in &rules.rules {
        let fd = match PathFd::new(&r.path) {
            Ok(fd) => fd,
            Err(e) => {
                if r.asked {
                    report.lacking(format!("landlock: {} not granted ({e})", r.path.display()));
                }
                continue;
            }
        };
        let mut access = r.grant.access();
        if !r.path.is_dir() {
            access &= AccessFs::from_file(TARGET);
        }
        created = created.add_rule(PathBeneath::new(fd, access))?;
        granted.push(r);
    }
    if !rules.deny_ports.is_empty() {
        created = created
            .add_rules(allowed_ports(&rules.deny_ports).map(|p| {
                Ok::<_, landlock::RulesetError>(NetPort::new(p, AccessNet::ConnectTcp))
            }))?;
    }
    let status = created.restrict_self()?;
    let abi = match status.landlock {
        LandlockStatus::Available { effective_abi, .. } => effective_abi,
        _ => ABI::Unsupported,
    };
    if status.ruleset == RulesetStatus::NotEnforced || abi == ABI::Unsupported {
        report.lacking("landlock: not supported or not enabled by this kernel");
        return Ok(report);
    }
    report.applied(summary(abi, &granted));
    if !rules.deny_ports.is_empty() {
        if abi >= ABI::V4 {
            report.applied(format!(
                "landlock: TCP connect denied to port{} {}",
                if rules.deny_ports.len() == 1 { "" } else { "s" },
                ports_text(&rules.deny_ports)
            ));
        } else {
            report.lacking(format!(
                "landlock ABI {abi}: no TCP rules (ABI 4), connect to {} stays open",
                ports_text(&rules.deny_ports)
            ));
        }
    }
    for (need, what) in [
        (ABI::V2, "files cannot be moved between directories (ABI 2)"),
        (ABI::V3, "truncate is not controlled (ABI 3)"),
        (ABI::V5, "device ioctls are not controlled (ABI 5)"),
        (
            ABI::V6,
            "signals and abstract unix sockets of other pools are not scoped (ABI 6); file modes still apply",
        ),
    ] {
        if abi < need {
            report.lacking(format!("landlock ABI {abi}: {what}"));
        }
    }
    Ok(report)
}

/// "landlock ABI 7 applied (read-only: /etc /proc; read-write: /tmp; ...)",
/// bounded so it fits one report.
fn summary(abi: ABI, granted: &[&Rule]) -> String {
    let mut parts = Vec::new();
    for g in [
        Grant::Read,
        Grant::ReadExec,
        Grant::ReadWrite,
        Grant::Append,
        Grant::Device,
    ] {
        let paths: Vec<String> = granted
            .iter()
            .filter(|r| r.grant == g)
            .map(|r| r.path.display().to_string())
            .collect();
        if !paths.is_empty() {
            parts.push(format!("{}: {}", g.label(), paths.join(" ")));
        }
    }
    if !granted.iter().any(|r| r.grant == Grant::ReadExec) {
        parts.push("execute: nothing".into());
    }
    let mut s = format!("landlock ABI {abi} applied ({})", parts.join("; "));
    if s.chars().count() > 480 {
        s = s.chars().take(478).collect::<String>() + "…)";
    }
    s
}

/// "9000 9001 …", bounded.
fn ports_text(ports: &[u16]) -> String {
    let shown: Vec<String> = ports.iter().take(32).map(u16::to_string).collect();
    let more = ports.len().saturating_sub(32);
    if more > 0 {
        format!("{} and {more} more", shown.join(" "))
    } else {
        shown.join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn on() -> Confinement {
        Confinement {
            landlock: true,
            namespaces: true,
            ..Default::default()
        }
    }

    fn grant_of(r: &Rules, p: &str) -> Option<Grant> {
        r.rules
            .iter()
            .find(|x| x.path == Path::new(p))
            .map(|x| x.grant)
    }

    #[test]
    fn nothing_unless_asked() {
        let c = Confinement {
            namespaces: true,
            read: vec!["/srv".into()],
            ..Default::default()
        };
        assert_eq!(rules(&c, &PhpNeeds::default()), Rules::default());
    }

    #[test]
    fn system_is_read_only_and_executes_only_with_exec_functions() {
        let quiet = rules(&on(), &PhpNeeds::default());
        assert_eq!(grant_of(&quiet, "/usr"), Some(Grant::Read));
        assert!(quiet.rules.iter().all(|r| r.grant != Grant::ReadExec));
        let exec = rules(
            &on(),
            &PhpNeeds {
                exec: true,
                ..Default::default()
            },
        );
        assert_eq!(grant_of(&exec, "/usr"), Some(Grant::ReadExec));
        assert_eq!(grant_of(&exec, "/etc"), Some(Grant::Read));
        assert_eq!(grant_of(&exec, "/proc"), Some(Grant::Read));
        assert_eq!(grant_of(&exec, "/dev/null"), Some(Grant::Device));
    }

    #[test]
    fn pool_trees_read_write_trees_write_and_nothing_written_executes() {
        let c = Confinement {
            read: vec!["/srv/a/www/".into()],
            write: vec!["/srv/a/www/uploads".into()],
            ..on()
        };
        let php = PhpNeeds {
            read: vec![
                "/srv/a/www".into(),
                "/opt/php/ext".into(),
                "/usr/lib/php/ext".into(),
            ],
            write: vec!["/var/lib/php/sessions".into()],
            append: vec!["/srv/a/logs/php.log".into()],
            exec: true,
        };
        let r = rules(&c, &php);
        assert_eq!(grant_of(&r, "/srv/a/www"), Some(Grant::Read));
        assert_eq!(grant_of(&r, "/opt/php/ext"), Some(Grant::Read));
        assert_eq!(grant_of(&r, "/usr/lib/php/ext"), None, "covered by /usr");
        assert_eq!(grant_of(&r, "/srv/a/www/uploads"), Some(Grant::ReadWrite));
        assert_eq!(
            grant_of(&r, "/var/lib/php/sessions"),
            Some(Grant::ReadWrite)
        );
        assert_eq!(grant_of(&r, "/srv/a/logs/php.log"), Some(Grant::Append));
        assert_eq!(grant_of(&r, "/tmp"), Some(Grant::ReadWrite));
        for rule in &r.rules {
            let writes = rule.grant.access().contains(AccessFs::WriteFile);
            let execs = rule.grant.access().contains(AccessFs::Execute);
            assert!(!(writes && execs), "{rule:?}");
        }
        assert!(r.lacking.is_empty(), "{:?}", r.lacking);
    }

    #[test]
    fn write_access_never_includes_execute_symlinks_or_devices() {
        let a = Grant::ReadWrite.access();
        for bad in [
            AccessFs::Execute,
            AccessFs::MakeSym,
            AccessFs::MakeChar,
            AccessFs::MakeBlock,
            AccessFs::IoctlDev,
        ] {
            assert!(!a.contains(bad), "{bad:?}");
        }
        assert!(a.contains(AccessFs::Truncate));
    }

    #[test]
    fn refuses_write_trees_that_would_execute_or_hold_the_system() {
        let c = Confinement {
            write: vec![
                "/".into(),
                "/usr/local/app/cache".into(),
                "/usr".into(),
                "relative/dir".into(),
                "/srv/../etc".into(),
            ],
            ..on()
        };
        let r = rules(
            &c,
            &PhpNeeds {
                exec: true,
                ..Default::default()
            },
        );
        assert_eq!(grant_of(&r, "/"), None);
        assert_eq!(grant_of(&r, "/usr/local/app/cache"), None);
        assert_eq!(grant_of(&r, "/usr"), Some(Grant::ReadExec));
        assert_eq!(r.lacking.len(), 5, "{:#?}", r.lacking);
        assert!(r.lacking[1].contains("beneath /usr, which may execute"));
    }

    #[test]
    fn without_exec_a_write_tree_under_usr_is_fine() {
        let c = Confinement {
            write: vec!["/usr/local/app/cache".into()],
            ..on()
        };
        let r = rules(&c, &PhpNeeds::default());
        assert_eq!(grant_of(&r, "/usr/local/app/cache"), Some(Grant::ReadWrite));
    }

    #[test]
    fn shared_tmp_is_said_to_be_shared() {
        let c = Confinement {
            namespaces: false,
            ..on()
        };
        let php = PhpNeeds {
            write: vec!["/tmp".into()],
            ..Default::default()
        };
        let r = rules(&c, &php);
        assert_eq!(grant_of(&r, "/tmp"), Some(Grant::ReadWrite));
        assert_eq!(grant_of(&r, "/dev/shm"), None);
        assert_eq!(grant_of(&r, "/var/tmp"), None);
        assert_eq!(r.lacking.len(), 2, "{:?}", r.lacking);
    }

    #[test]
    fn one_rule_per_path_the_stronger_wins() {
        let c = Confinement {
            read: vec!["/srv/x".into()],
            write: vec!["/srv/x".into()],
            ..on()
        };
        let r = rules(&c, &PhpNeeds::default());
        assert_eq!(
            r.rules
                .iter()
                .filter(|x| x.path == Path::new("/srv/x"))
                .count(),
            1
        );
        assert_eq!(grant_of(&r, "/srv/x"), Some(Grant::ReadWrite));
        let mut sorted = r.rules.clone();
        sorted.sort_by(|a, b| a.path.cmp(&b.path));
        assert_eq!(sorted, r.rules);
    }

    #[test]
    fn ports_are_sorted_and_every_other_port_is_allowed() {
        let c = Confinement {
            deny_connect_ports: vec![9001, 9000, 9001],
            ..on()
        };
        let r = rules(&c, &PhpNeeds::default());
        assert_eq!(r.deny_ports, vec![9000, 9001]);
        let allowed: Vec<u16> = allowed_ports(&r.deny_ports).collect();
        assert_eq!(allowed.len(), 65536 - 2);
        assert!(!allowed.contains(&9000) && allowed.contains(&8999) && allowed.contains(&0));
        assert!(allowed.contains(&u16::MAX));
    }

    #[test]
    fn summary_is_bounded() {
        let many: Vec<Rule> = (0..200)
            .map(|i| Rule {
                path: format!("/srv/site-{i}").into(),
                grant: Grant::Read,
                asked: true,
            })
            .collect();
        let refs: Vec<&Rule> = many.iter().collect();
        let s = summary(ABI::V7, &refs);
        assert!(s.chars().count() <= 480, "{}", s.len());
        assert!(s.starts_with("landlock ABI 7 applied (read-only: /srv/site-0"));
    }
}
