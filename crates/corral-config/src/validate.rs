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
    if let Some(m) = s.str("events.mechanism") {
        if !["epoll", "poll", "select"].contains(&m.to_ascii_lowercase().as_str()) {
            return fail(out, ConfigError::EventMechanism(m));
        }
    }
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

fn pool(p: &mut PoolDraft, global: &Settings, ctx: &Context<'_>, out: &mut Out) -> Result<(), ()> {
    let name = p.name.clone();
    let s = &mut p.settings;

    // prefix
    if let Some(prefix) = s.non_empty("prefix").filter(|_| !ctx.resolved) {
        let full = paths::full_path(&prefix, None, ctx.prefix, None);
        s.set("prefix", Value::Str(full.clone()));
        if !ctx.is_dir(&full) {
            return fail(
                out,
                ConfigError::PoolPrefix {
                    pool: name,
                    prefix: full,
                },
            );
        }
    }
    let pool_prefix = s.non_empty("prefix");
    let resolve = |v: &str| {
        if ctx.resolved {
            v.to_string()
        } else {
            paths::full_path(v, pool_prefix.as_deref(), ctx.prefix, None)
        }
    };

    // user
    if ctx.require_user && s.str("user").is_none() {
        return fail(out, ConfigError::NoUser(name));
    }

    // listen
    match s.non_empty("listen") {
        Some(l) if Listen::is_unix_address(&l) && !l.starts_with('/') => {
            s.set("listen", Value::Str(resolve(&l)));
        }
        Some(_) => {}
        None => return fail(out, ConfigError::NoListen(name)),
    }

    // priority
    if s.is_set("process.priority") && !(-19..=20).contains(&s.int("process.priority")) {
        return fail(out, ConfigError::PoolPriority(name));
    }

    // pm
    let pm = match s.get("pm") {
        Some(Value::Pm(pm)) => pm,
        _ => return fail(out, ConfigError::NoPm(name)),
    };
    let children = s.int("pm.max_children");
    if children < 1 {
        return fail(out, ConfigError::MaxChildren(name));
    }
    match pm {
        PmKind::Dynamic => {
            let min = s.int("pm.min_spare_servers");
            let max = s.int("pm.max_spare_servers");
            if min <= 0 {
                return fail(
                    out,
                    ConfigError::MinSpare {
                        pool: name,
                        value: min,
                    },
                );
            }
            if max <= 0 {
                return fail(
                    out,
                    ConfigError::MaxSpare {
                        pool: name,
                        value: max,
                    },
                );
            }
            if min > children || max > children {
                return fail(
                    out,
                    ConfigError::SpareOverChildren {
                        pool: name,
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
                        pool: name,
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
                        pool: name.clone(),
                        value,
                    }
                    .into(),
                );
            } else if start < min || start > max {
                return fail(
                    out,
                    ConfigError::StartServers {
                        pool: name,
                        start,
                        min,
                        max,
                    },
                );
            }
            if s.int("pm.max_spawn_rate") < 1 {
                return fail(out, ConfigError::SpawnRate(name));
            }
        }
        PmKind::Ondemand => {
            if !edge_triggered(global) {
                return fail(out, ConfigError::OndemandEvents(name));
            }
            let idle = s.int("pm.process_idle_timeout");
            if idle < 1 {
                return fail(
                    out,
                    ConfigError::IdleTimeout {
                        pool: name,
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
        }
        PmKind::Static => {}
    }

    // status
    let status_listen = s.is_set("pm.status_listen");
    if status_listen && s.str("pm.status_path").is_none() {
        s.set("pm.status_path", Value::Str("/".into()));
    }
    if let Some(path) = s.non_empty("pm.status_path") {
        if !path.starts_with('/') {
            return fail(out, ConfigError::StatusSlash { pool: name, path });
        }
        // The master's rendered status pool (resolved text) serves "/"
        // for its parent, which had pm.status_listen.
        if !status_listen && !ctx.resolved && path.len() < 2 {
            return fail(out, ConfigError::StatusShort { pool: name, path });
        }
        if !uri_chars_ok(&path) {
            return fail(out, ConfigError::StatusChars { pool: name, path });
        }
    }

    // ping
    if let Some(path) = s.non_empty("ping.path") {
        if !path.starts_with('/') {
            return fail(out, ConfigError::PingSlash { pool: name, path });
        }
        if path.len() < 2 {
            return fail(out, ConfigError::PingShort { pool: name, path });
        }
        if !uri_chars_ok(&path) {
            return fail(out, ConfigError::PingChars { pool: name, path });
        }
        match s.str("ping.response") {
            None => s.set("ping.response", Value::Str("pong".into())),
            Some(r) if r.is_empty() => {
                return fail(
                    out,
                    ConfigError::PingResponse {
                        pool: name,
                        response: r,
                    },
                )
            }
            Some(_) => {}
        }
    } else {
        s.unset("ping.response");
    }

    // access log
    if let Some(log) = s.non_empty("access.log") {
        s.set("access.log", Value::Str(resolve(&log)));
        if s.str("access.format").is_none() {
            s.set("access.format", Value::Str(access_format::DEFAULT.into()));
        }
    }

    // slowlog
    if let Some(log) = s.non_empty("slowlog") {
        s.set("slowlog", Value::Str(resolve(&log)));
    }
    let has_slowlog = s.non_empty("slowlog").is_some();
    let slow = s.int("request_slowlog_timeout");
    if slow != 0 {
        if !has_slowlog {
            return fail(out, ConfigError::SlowlogNeededTimeout(name));
        }
        let term = s.int("request_terminate_timeout");
        if term != 0 && slow > term {
            return fail(
                out,
                ConfigError::SlowlogOverTerminate {
                    pool: name,
                    slow,
                    term,
                },
            );
        }
    }
    let depth = s.int("request_slowlog_trace_depth");
    if depth != 0 {
        if !has_slowlog {
            return fail(out, ConfigError::SlowlogNeededDepth(name));
        }
        if depth <= 0 {
            return fail(
                out,
                ConfigError::TraceDepth {
                    pool: name,
                    value: depth,
                },
            );
        }
    } else {
        s.set("request_slowlog_trace_depth", Value::Int(20));
    }

    // chroot ($prefix allowed, at the start only)
    if let Some(chroot) = s.non_empty("chroot") {
        let full = if chroot.starts_with('/') || ctx.resolved {
            chroot
        } else {
            let prefix = paths::prefix_for(pool_prefix.as_deref(), ctx.prefix, None);
            match chroot.find("$prefix") {
                Some(0) => {
                    let rest = &chroot["$prefix".len()..];
                    if rest.is_empty() {
                        prefix
                    } else {
                        format!("{prefix}/{rest}")
                    }
                }
                Some(_) => {
                    // php-fpm logs this and carries on with the raw value.
                    out.push(ConfigError::PrefixPlacement.into());
                    chroot
                }
                None => format!("{prefix}/{chroot}"),
            }
        };
        s.set("chroot", Value::Str(full.clone()));
        if !full.starts_with('/') {
            return fail(
                out,
                ConfigError::ChrootSlash {
                    pool: name,
                    path: full,
                },
            );
        }
        if !ctx.is_dir(&full) {
            return fail(
                out,
                ConfigError::ChrootMissing {
                    pool: name,
                    path: full,
                },
            );
        }
    }

    // chdir
    if let Some(chdir) = s.non_empty("chdir") {
        let full = resolve(&chdir);
        s.set("chdir", Value::Str(full.clone()));
        if !full.starts_with('/') {
            return fail(
                out,
                ConfigError::ChdirSlash {
                    pool: name,
                    path: full,
                },
            );
        }
        match s.str("chroot") {
            Some(chroot) => {
                let inside = format!("{chroot}/{full}");
                if !ctx.is_dir(&inside) {
                    return fail(
                        out,
                        ConfigError::ChdirInChroot {
                            pool: name,
                            path: full,
                            chroot,
                            full: inside,
                        },
                    );
                }
            }
            None if !ctx.is_dir(&full) => {
                return fail(
                    out,
                    ConfigError::ChdirMissing {
                        pool: name,
                        path: full,
                    },
                )
            }
            None => {}
        }
    }

    // security.limit_extensions
    if s.str("security.limit_extensions").is_none() {
        s.set(
            "security.limit_extensions",
            Value::Str(DEFAULT_LIMIT_EXTENSIONS.into()),
        );
    }

    // php values that are paths, only without chroot
    if s.str("chroot").is_none() && !ctx.resolved {
        let expand = |list: &mut Vec<(String, String)>, admin: bool| {
            for (k, v) in list.iter_mut() {
                if admin && k.eq_ignore_ascii_case("error_log") && v.eq_ignore_ascii_case("syslog")
                {
                    continue;
                }
                if PHP_INI_TO_EXPAND.iter().any(|e| e.eq_ignore_ascii_case(k)) {
                    *v = resolve(v);
                }
            }
        };
        expand(&mut p.php_values, false);
        expand(&mut p.php_admin_values, true);
    }
    Ok(())
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
