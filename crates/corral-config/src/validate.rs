//! Post-processing: php-fpm's fpm_conf_post_process and
//! fpm_conf_process_all_pools, in their order and with their messages.
//!
//! Values are rewritten in place (relative paths resolved, computed
//! defaults filled) so the typed structs and the `-tt` dump agree with
//! php-fpm.  The first failing check ends processing.

use std::path::Path;

use crate::access_format;
use crate::directives::{Settings, Value};
use crate::error::{ConfigError, Diagnostic};
use crate::paths::{self, PHP_LOCALSTATEDIR};
use crate::pool::{Listen, PmKind, PoolDraft};

const DEFAULT_LIMIT_EXTENSIONS: &str = ".php .phar";
const BACKLOG_DEFAULT: i64 = -1;
const LOG_MIN_LIMIT: i64 = 512;

/// php.ini directives whose relative values php-fpm resolves against the
/// pool prefix (FPM_PHP_INI_TO_EXPAND in fpm_php.h).
pub const PHP_INI_TO_EXPAND: &[&str] = &[
    "error_log",
    "extension_dir",
    "mime_magic.magicfile",
    "sendmail_path",
    "session.cookie_path",
    "session_pgsql.sem_file_name",
    "soap.wsdl_cache_dir",
    "uploadprogress.file.filename_template",
    "xdebug.output_dir",
    "xdebug.profiler_output_dir",
    "xdebug.trace_output_dir",
    "xmms.path",
    "axis2.client_home",
    "blenc.key_file",
    "coin_acceptor.device",
];

/// What post-processing needs from the command line.
pub(crate) struct Context<'a> {
    pub prefix: Option<&'a Path>,
    /// php-fpm demands `user` only when root and without `-R`.
    pub require_user: bool,
    /// Rendered text (`LoadOptions::resolved`): paths are final and were
    /// checked by whoever loaded the full config; touch no filesystem.
    pub resolved: bool,
}

impl Context<'_> {
    /// `fpm_conf_is_dir`, trusted as already checked for resolved text.
    fn is_dir(&self, path: &str) -> bool {
        self.resolved || paths::is_dir(path)
    }
}

type Out = Vec<Diagnostic>;

fn fail(out: &mut Out, e: ConfigError) -> Result<(), ()> {
    out.push(e.into());
    Err(())
}

/// Global checks that run before the pools (fpm_conf_post_process).
pub(crate) fn global(s: &mut Settings, ctx: &Context<'_>, out: &mut Out) -> Result<(), ()> {
    if let Some(pid) = s.str("pid").filter(|p| !p.is_empty()) {
        let full = paths::full_path(&pid, None, ctx.prefix, Some(PHP_LOCALSTATEDIR));
        s.set("pid", Value::Str(full));
    }
    if s.int("log_limit") < LOG_MIN_LIMIT {
        return fail(out, ConfigError::LogLimit);
    }
    if s.int("process.max") < 0 {
        return fail(out, ConfigError::ProcessMax);
    }
    if s.is_set("process.priority") && !(-19..=20).contains(&s.int("process.priority")) {
        return fail(out, ConfigError::GlobalPriority);
    }
    let error_log = s.str("error_log").unwrap_or_default();
    if !error_log.eq_ignore_ascii_case("syslog") {
        let full = paths::full_path(&error_log, None, ctx.prefix, Some(PHP_LOCALSTATEDIR));
        s.set("error_log", Value::Str(full));
    }
    metrics_listen(s, out)?;
    if let Some(m) = s.str("events.mechanism") {
        if !["epoll", "poll", "select"].contains(&m.to_ascii_lowercase().as_str()) {
            return fail(out, ConfigError::EventMechanism(m));
        }
    }
    Ok(())
}

/// `corral.metrics_listen` on an address other hosts can reach needs
/// `corral.metrics_allow_remote = yes`, and is loudly warned about even then.
fn metrics_listen(s: &Settings, out: &mut Out) -> Result<(), ()> {
    let Some(addr) = s.str("corral.metrics_listen") else {
        return Ok(());
    };
    let Ok(parsed) = addr.parse::<std::net::SocketAddr>() else {
        return Ok(());
    };
    if crate::metrics::is_loopback(&parsed) {
        return Ok(());
    }
    if !s.bool("corral.metrics_allow_remote") {
        return fail(out, ConfigError::MetricsRemote(addr));
    }
    out.push(ConfigError::MetricsRemoteAllowed(addr).into());
    Ok(())
}

fn edge_triggered(global: &Settings) -> bool {
    match global.str("events.mechanism") {
        Some(m) => m.eq_ignore_ascii_case("epoll"),
        None => true,
    }
}

fn uri_chars_ok(p: &str) -> bool {
    p.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"/-_.~".contains(&b))
}

/// All pools, then the duplicate-listen check (fpm_conf_process_all_pools).
pub(crate) fn pools(
    pools: &mut [PoolDraft],
    global: &Settings,
    ctx: &Context<'_>,
    out: &mut Out,
) -> Result<(), ()> {
    if pools.is_empty() {
        return fail(out, ConfigError::NoPool);
    }
    for p in pools.iter_mut() {
        pool(p, global, ctx, out)?;
    }
    // The hidden "<pool>_status" pools of pm.status_listen take part too.
    let mut listens: Vec<(String, String)> = pools
        .iter()
        .filter_map(|p| Some((p.name.clone(), p.settings.non_empty("listen")?)))
        .collect();
    for p in pools.iter() {
        if let Some(l) = p.settings.non_empty("pm.status_listen") {
            let l = if Listen::is_unix_address(&l) {
                paths::full_path(&l, None, ctx.prefix, None)
            } else {
                l
            };
            listens.push((format!("{}_status", p.name), l));
        }
    }
    for (i, (a_name, a)) in listens.iter().enumerate() {
        for (j, (b_name, b)) in listens.iter().enumerate() {
            if i != j && a == b {
                return fail(
                    out,
                    ConfigError::DuplicateListen {
                        pool: b_name.clone(),
                        other: a_name.clone(),
                    },
                );
            }
        }
    }
    Ok(())
}

/// One pool, step by step in fpm_conf_process_all_pools' order; the first
/// failing step ends it.
fn pool(p: &mut PoolDraft, global: &Settings, ctx: &Context<'_>, out: &mut Out) -> Result<(), ()> {
    let name = p.name.clone();
    let s = &mut p.settings;
    prefix(s, &name, ctx, out)?;
    let paths = PoolPaths {
        prefix: s.non_empty("prefix"),
        ctx,
    };
    user(s, &name, ctx, out)?;
    listen(s, &name, &paths, out)?;
    priority(s, &name, out)?;
    pm(s, &name, global, out)?;
    status_path(s, &name, ctx, out)?;
    ping(s, &name, out)?;
    access_log(s, &paths);
    slowlog(s, &name, &paths, out)?;
    trace_depth(s, &name, out)?;
    chroot(s, &name, &paths, out)?;
    chdir(s, &name, &paths, out)?;
    limit_extensions(s);
    if let Err(e) = crate::isolation::check(s, &name) {
        return fail(out, e);
    }
    if s.str("chroot").is_none() && !ctx.resolved {
        expand_php_paths(&mut p.php_values, &mut p.php_admin_values, &paths);
    }
    Ok(())
}

/// A pool's relative paths, resolved as fpm_evaluate_full_path does:
/// against the pool's prefix, else `-p`, else /usr. Resolved text is
/// final already.
struct PoolPaths<'c, 'p> {
    prefix: Option<String>,
    ctx: &'c Context<'p>,
}

impl PoolPaths<'_, '_> {
    fn full(&self, path: &str) -> String {
        if self.ctx.resolved {
            path.to_string()
        } else {
            paths::full_path(path, self.prefix.as_deref(), self.ctx.prefix, None)
        }
    }

    /// What `$prefix` stands for.
    fn prefix_dir(&self) -> String {
        paths::prefix_for(self.prefix.as_deref(), self.ctx.prefix, None)
    }
}

/// `prefix`: made absolute against `-p`, and it must be a directory.
fn prefix(s: &mut Settings, name: &str, ctx: &Context<'_>, out: &mut Out) -> Result<(), ()> {
    let Some(prefix) = s.non_empty("prefix").filter(|_| !ctx.resolved) else {
        return Ok(());
    };
    let full = paths::full_path(&prefix, None, ctx.prefix, None);
    s.set("prefix", Value::Str(full.clone()));
    if !ctx.is_dir(&full) {
        return fail(
            out,
            ConfigError::PoolPrefix {
                pool: name.into(),
                prefix: full,
            },
        );
    }
    Ok(())
}

/// `user`, demanded only of a root master without `-R`.
fn user(s: &Settings, name: &str, ctx: &Context<'_>, out: &mut Out) -> Result<(), ()> {
    if ctx.require_user && s.str("user").is_none() {
        return fail(out, ConfigError::NoUser(name.into()));
    }
    Ok(())
}

/// `listen` must be set; a relative unix socket path becomes absolute.
fn listen(s: &mut Settings, name: &str, paths: &PoolPaths, out: &mut Out) -> Result<(), ()> {
    match s.non_empty("listen") {
        Some(l) if Listen::is_unix_address(&l) && !l.starts_with('/') => {
            s.set("listen", Value::Str(paths.full(&l)));
            Ok(())
        }
        Some(_) => Ok(()),
        None => fail(out, ConfigError::NoListen(name.into())),
    }
}

fn priority(s: &Settings, name: &str, out: &mut Out) -> Result<(), ()> {
    if s.is_set("process.priority") && !(-19..=20).contains(&s.int("process.priority")) {
        return fail(out, ConfigError::PoolPriority(name.into()));
    }
    Ok(())
}

/// `pm` and `pm.max_children`, then the settings of that kind of pm.
fn pm(s: &mut Settings, name: &str, global: &Settings, out: &mut Out) -> Result<(), ()> {
    let Some(Value::Pm(pm)) = s.get("pm") else {
        return fail(out, ConfigError::NoPm(name.into()));
    };
    let children = s.int("pm.max_children");
    if children < 1 {
        return fail(out, ConfigError::MaxChildren(name.into()));
    }
    match pm {
        PmKind::Dynamic => dynamic(s, name, children, out),
        PmKind::Ondemand => ondemand(s, name, global, out),
        PmKind::Static => Ok(()),
    }
}

/// The spare-server bounds of a dynamic pm, each against the others, and
/// pm.start_servers defaulted to their middle.
fn dynamic(s: &mut Settings, name: &str, children: i64, out: &mut Out) -> Result<(), ()> {
    let pool = || name.to_string();
    let min = s.int("pm.min_spare_servers");
    let max = s.int("pm.max_spare_servers");
    if min <= 0 {
        return fail(
            out,
            ConfigError::MinSpare {
                pool: pool(),
                value: min,
            },
        );
    }
    if max <= 0 {
        return fail(
            out,
            ConfigError::MaxSpare {
                pool: pool(),
                value: max,
            },
        );
    }
    if min > children || max > children {
        return fail(
            out,
            ConfigError::SpareOverChildren {
                pool: pool(),
                min,
                max,
                children,
            },
        );
    }
    if max < min {
        return fail(
            out,
            ConfigError::SpareOrder {
                pool: pool(),
                max,
                min,
            },
        );
    }
    let start = s.int("pm.start_servers");
    if start <= 0 {
        let value = min + (max - min) / 2;
        s.set("pm.start_servers", Value::Int(value));
        out.push(
            ConfigError::StartServersDefaulted {
                pool: pool(),
                value,
            }
            .into(),
        );
    } else if start < min || start > max {
        return fail(
            out,
            ConfigError::StartServers {
                pool: pool(),
                start,
                min,
                max,
            },
        );
    }
    if s.int("pm.max_spawn_rate") < 1 {
        return fail(out, ConfigError::SpawnRate(pool()));
    }
    Ok(())
}

/// An ondemand pm needs edge-triggered events and an idle timeout; the
/// spare-server settings do not apply to it.
fn ondemand(s: &mut Settings, name: &str, global: &Settings, out: &mut Out) -> Result<(), ()> {
    if !edge_triggered(global) {
        return fail(out, ConfigError::OndemandEvents(name.into()));
    }
    let idle = s.int("pm.process_idle_timeout");
    if idle < 1 {
        return fail(
            out,
            ConfigError::IdleTimeout {
                pool: name.into(),
                value: idle,
            },
        );
    }
    let backlog = s.int("listen.backlog");
    if backlog < BACKLOG_DEFAULT {
        out.push(Diagnostic::new(
            crate::Level::Warning,
            format!("[pool {name}] listen.backlog({backlog}) was too low for the ondemand process manager. I updated it for you to {BACKLOG_DEFAULT}."),
        ));
        s.set("listen.backlog", Value::Int(BACKLOG_DEFAULT));
    }
    for k in [
        "pm.start_servers",
        "pm.min_spare_servers",
        "pm.max_spare_servers",
    ] {
        s.set(k, Value::Int(0));
    }
    Ok(())
}

/// `pm.status_path` ("/" by default with pm.status_listen): an absolute,
/// plain URI path.
fn status_path(s: &mut Settings, name: &str, ctx: &Context<'_>, out: &mut Out) -> Result<(), ()> {
    let status_listen = s.is_set("pm.status_listen");
    if status_listen && s.str("pm.status_path").is_none() {
        s.set("pm.status_path", Value::Str("/".into()));
    }
    let Some(path) = s.non_empty("pm.status_path") else {
        return Ok(());
    };
    let pool = name.to_string();
    if !path.starts_with('/') {
        return fail(out, ConfigError::StatusSlash { pool, path });
    }
    // The master's rendered status pool (resolved text) serves "/" for its
    // parent, which had pm.status_listen.
    if !status_listen && !ctx.resolved && path.len() < 2 {
        return fail(out, ConfigError::StatusShort { pool, path });
    }
    if !uri_chars_ok(&path) {
        return fail(out, ConfigError::StatusChars { pool, path });
    }
    Ok(())
}

/// `ping.path` like the status path; `ping.response` is "pong" by default
/// and dropped without a ping path.
fn ping(s: &mut Settings, name: &str, out: &mut Out) -> Result<(), ()> {
    let Some(path) = s.non_empty("ping.path") else {
        s.unset("ping.response");
        return Ok(());
    };
    let pool = name.to_string();
    if !path.starts_with('/') {
        return fail(out, ConfigError::PingSlash { pool, path });
    }
    if path.len() < 2 {
        return fail(out, ConfigError::PingShort { pool, path });
    }
    if !uri_chars_ok(&path) {
        return fail(out, ConfigError::PingChars { pool, path });
    }
    match s.str("ping.response") {
        None => s.set("ping.response", Value::Str("pong".into())),
        Some(r) if r.is_empty() => {
            return fail(out, ConfigError::PingResponse { pool, response: r });
        }
        Some(_) => {}
    }
    Ok(())
}

/// `access.log` made absolute, with php-fpm's default format. The format
/// itself is checked after every pool (see [`access_formats`]).
fn access_log(s: &mut Settings, paths: &PoolPaths) {
    if let Some(log) = s.non_empty("access.log") {
        s.set("access.log", Value::Str(paths.full(&log)));
        if s.str("access.format").is_none() {
            s.set("access.format", Value::Str(access_format::DEFAULT.into()));
        }
    }
}

/// `slowlog` made absolute; request_slowlog_timeout needs it and must not
/// outlast request_terminate_timeout.
fn slowlog(s: &mut Settings, name: &str, paths: &PoolPaths, out: &mut Out) -> Result<(), ()> {
    if let Some(log) = s.non_empty("slowlog") {
        s.set("slowlog", Value::Str(paths.full(&log)));
    }
    let slow = s.int("request_slowlog_timeout");
    if slow == 0 {
        return Ok(());
    }
    if s.non_empty("slowlog").is_none() {
        return fail(out, ConfigError::SlowlogNeededTimeout(name.into()));
    }
    let term = s.int("request_terminate_timeout");
    if term != 0 && slow > term {
        return fail(
            out,
            ConfigError::SlowlogOverTerminate {
                pool: name.into(),
                slow,
                term,
            },
        );
    }
    Ok(())
}

/// `request_slowlog_trace_depth`: 20 when unset; otherwise it needs a
/// slowlog and must be positive.
fn trace_depth(s: &mut Settings, name: &str, out: &mut Out) -> Result<(), ()> {
    let depth = s.int("request_slowlog_trace_depth");
    if depth == 0 {
        s.set("request_slowlog_trace_depth", Value::Int(20));
        return Ok(());
    }
    if s.non_empty("slowlog").is_none() {
        return fail(out, ConfigError::SlowlogNeededDepth(name.into()));
    }
    if depth <= 0 {
        return fail(
            out,
            ConfigError::TraceDepth {
                pool: name.into(),
                value: depth,
            },
        );
    }
    Ok(())
}

/// `chroot`, where `$prefix` may start the value: it must end up an
/// absolute directory.
fn chroot(s: &mut Settings, name: &str, paths: &PoolPaths, out: &mut Out) -> Result<(), ()> {
    let Some(chroot) = s.non_empty("chroot") else {
        return Ok(());
    };
    let full = if chroot.starts_with('/') || paths.ctx.resolved {
        chroot
    } else {
        let prefix = paths.prefix_dir();
        match chroot.find("$prefix") {
            Some(0) => match &chroot["$prefix".len()..] {
                "" => prefix,
                rest => format!("{prefix}/{rest}"),
            },
            Some(_) => {
                // php-fpm logs this and carries on with the raw value.
                out.push(ConfigError::PrefixPlacement.into());
                chroot
            }
            None => format!("{prefix}/{chroot}"),
        }
    };
    s.set("chroot", Value::Str(full.clone()));
    let pool = name.to_string();
    if !full.starts_with('/') {
        return fail(out, ConfigError::ChrootSlash { pool, path: full });
    }
    if !paths.ctx.is_dir(&full) {
        return fail(out, ConfigError::ChrootMissing { pool, path: full });
    }
    Ok(())
}

/// `chdir` made absolute; it must be a directory, inside the chroot when
/// there is one.
fn chdir(s: &mut Settings, name: &str, paths: &PoolPaths, out: &mut Out) -> Result<(), ()> {
    let Some(chdir) = s.non_empty("chdir") else {
        return Ok(());
    };
    let full = paths.full(&chdir);
    s.set("chdir", Value::Str(full.clone()));
    let pool = name.to_string();
    if !full.starts_with('/') {
        return fail(out, ConfigError::ChdirSlash { pool, path: full });
    }
    match s.str("chroot") {
        Some(chroot) => {
            let inside = format!("{chroot}/{full}");
            if !paths.ctx.is_dir(&inside) {
                return fail(
                    out,
                    ConfigError::ChdirInChroot {
                        pool,
                        path: full,
                        chroot,
                        full: inside,
                    },
                );
            }
        }
        None if !paths.ctx.is_dir(&full) => {
            return fail(out, ConfigError::ChdirMissing { pool, path: full });
        }
        None => {}
    }
    Ok(())
}

fn limit_extensions(s: &mut Settings) {
    if s.str("security.limit_extensions").is_none() {
        s.set(
            "security.limit_extensions",
            Value::Str(DEFAULT_LIMIT_EXTENSIONS.into()),
        );
    }
}

/// php_value/php_admin_value entries that are paths (PHP_INI_TO_EXPAND)
/// made absolute; `php_admin_value[error_log] = syslog` is not a path.
fn expand_php_paths(
    values: &mut [(String, String)],
    admin_values: &mut [(String, String)],
    paths: &PoolPaths,
) {
    let expand = |list: &mut [(String, String)], admin: bool| {
        for (k, v) in list.iter_mut() {
            if admin && k.eq_ignore_ascii_case("error_log") && v.eq_ignore_ascii_case("syslog") {
                continue;
            }
            if PHP_INI_TO_EXPAND.iter().any(|e| e.eq_ignore_ascii_case(k)) {
                *v = paths.full(v);
            }
        }
    };
    expand(values, false);
    expand(admin_values, true);
}

/// After the pools: parse access.format of pools that log (php-fpm's
/// fpm_log_write in test mode). A pool without access.log may have any
/// format, as with php-fpm, since nothing will render it.
pub(crate) fn access_formats(pools: &mut [PoolDraft], out: &mut Out) -> Result<(), ()> {
    for p in pools {
        if p.settings.non_empty("access.log").is_none() {
            continue;
        }
        let format = p.settings.str("access.format").unwrap_or_default();
        match access_format::parse(&format) {
            Ok(tokens) => p.access_tokens = Some(tokens),
            Err(detail) => {
                out.push(ConfigError::AccessFormatDetail(detail).into());
                return fail(
                    out,
                    ConfigError::AccessFormat {
                        pool: p.name.clone(),
                        format,
                    },
                );
            }
        }
    }
    Ok(())
}
