//! One pool's configuration as php-fpm text, for that pool's prototype.
//!
//! The master parses the whole configuration, every tenant's pools
//! included.  A prototype only needs its own pool, so the master hands it
//! [`render_pool`]'s text and the prototype parses that with
//! [`LoadOptions::resolved`](crate::LoadOptions::resolved) set: its memory
//! never holds another pool's `env[]` or `php_admin_value`s.
//!
//! The text is php-fpm's dialect.  Every value is final (paths absolute,
//! `$pool` and `$VAR` already substituted, defaults computed by the
//! post-processing written out), so it means the same thing parsed again
//! with `resolved`, which turns off every second expansion.  Strings are
//! written in double quotes with `\"`, `\\` and `\$` escaped, which keeps
//! blanks, `;`, `=`, `${`, quotes and keywords like `yes`/`none` exactly as
//! they are.  INI has no escape for a line break, so a `\n` (possible
//! after `${VAR}` or `$VAR` substitution) is written as
//! `${corral:newline}`, which only resolved parsing knows.

use std::fmt::Write as _;

use crate::directives::{self, Directive, Kind, Section, Value};
use crate::pool::Pool;
use crate::Config;

/// The `${...}` name that stands for a line break in rendered text.
pub const RESOLVED_NEWLINE: &str = "corral:newline";

/// `${NAME}` lookup while parsing resolved text: nothing from outside.
pub(crate) fn resolved_variable(name: &str) -> Option<String> {
    (name == RESOLVED_NEWLINE).then(|| "\n".to_string())
}

/// The config text for one pool (looked up case-insensitively): a
/// `[global]` section with what a prototype needs (`log_level`,
/// `log_limit`; `error_log = /dev/null`, never opened by parsing), then
/// the pool with every directive it set or post-processing computed,
/// `access.suppress_path[]`, `env[]` (resolved values) and `php_value` /
/// `php_admin_value` (flags as their "1"/"0" values, each name once).
///
/// Parse it with `LoadOptions { resolved: true, ..Default::default() }`:
/// the pool comes back equal in everything but `source` (now the rendered
/// text's line) and the `-tt` fields `raw_env`, `raw_php_values` and
/// `raw_php_admin_values` (now the resolved, deduplicated lists).
/// `None` when there is no such pool.
pub fn render_pool(config: &Config, pool_name: &str) -> Option<String> {
    let pool = config.pool(pool_name)?;
    render_pool_only(config, pool)
}

/// [`render_pool`] for a pool value that need not be in `config` (a reload
/// renders the new pool while the running configuration is still the old
/// one); only `config.global` is used.
pub fn render_pool_only(config: &Config, pool: &Pool) -> Option<String> {
    let mut out = String::from(
        "; One pool rendered by corral; parse with LoadOptions::resolved.\n[global]\nerror_log = /dev/null\n",
    );
    let g = &config.global.settings;
    for name in ["log_level", "log_limit"] {
        if let (true, Some(d), Some(v)) = (
            g.is_set(name),
            directives::lookup(Section::Global, name),
            g.get(name),
        ) {
            line(&mut out, name, &scalar(d, &v));
        }
    }
    render_section(&mut out, pool);
    Some(out)
}

fn render_section(out: &mut String, pool: &Pool) {
    let _ = writeln!(out, "[{}]", key(&pool.name));
    let s = &pool.settings;
    for d in directives::of(Section::Pool) {
        if !s.is_set(d.name) {
            continue;
        }
        // Without a slowlog the depth must be 0, which post-processing
        // turns into 20: write nothing and let it do that again.
        if d.name == "request_slowlog_trace_depth" && s.non_empty("slowlog").is_none() {
            continue;
        }
        if let Some(v) = s.get(d.name) {
            line(out, d.name, &scalar(d, &v));
        }
    }
    for p in &pool.access_suppress_path {
        line(out, "access.suppress_path[]", &quote(p));
    }
    // php-fpm prepends array entries, so the kept lists are in reverse
    // file order: write them backwards to get the same lists again.
    for (k, v) in pool.env.iter().rev() {
        line(out, &format!("env[{}]", key(k)), &quote(v));
    }
    php_values(out, pool);
}

/// The pool's `php_value` / `php_admin_value` lines. Names are unique
/// within each list, so first-wins has nothing to drop.
fn php_values(out: &mut String, pool: &Pool) {
    for v in pool.php_values.iter().rev() {
        let kind = if v.admin {
            "php_admin_value"
        } else {
            "php_value"
        };
        line(out, &format!("{kind}[{}]", key(&v.name)), &quote(&v.value));
    }
}

fn line(out: &mut String, name: &str, value: &str) {
    let _ = writeln!(out, "{name} = {value}");
}

/// A typed value as text its directive's parser turns back into it.
fn scalar(d: &Directive, v: &Value) -> String {
    match (d.kind, v) {
        (Kind::RlimitCore, Value::Int(-1)) => "unlimited".into(),
        (_, Value::Int(n)) => n.to_string(),
        (_, Value::Bool(b)) => if *b { "yes" } else { "no" }.into(),
        (_, Value::Str(t)) => quote(t),
        (_, Value::LogLevel(l)) => l.name().to_ascii_lowercase(),
        (_, Value::Pm(p)) => p.name().into(),
    }
}

/// A double-quoted INI string holding exactly `s`.
fn quote(s: &str) -> String {
    let mut q = String::with_capacity(s.len() + 2);
    q.push('"');
    for c in s.chars() {
        match c {
            '"' | '\\' | '$' => {
                q.push('\\');
                q.push(c);
            }
            '\n' => {
                q.push_str("${");
                q.push_str(RESOLVED_NEWLINE);
                q.push('}');
            }
            c => q.push(c),
        }
    }
    q.push('"');
    q
}

/// A section name or array key: bare when that is unambiguous, else
/// quoted (`[" x"]`, `env["a]b"]`).
fn key(s: &str) -> String {
    let bare = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if bare {
        s.to_string()
    } else {
        quote(s)
    }
}

#[cfg(test)]
mod tests;

/// php-fpm's hidden `<pool>_status` pool for `pm.status_listen`: ondemand,
/// at most 2 children, on the status address, with the parent's user,
/// group, socket permissions, allowed clients, status path and php.ini
/// overrides (what php-fpm's fpm_worker_pool_shared_status_alloc copies;
/// `php_flag[expose_php]` decides the pages' X-Powered-By there too).
/// Built as text and parsed, so it is validated like any pool.
pub fn status_pool(parent: &Pool) -> Option<Pool> {
    let listen = parent.settings.non_empty("pm.status_listen")?;
    let mut out = String::from("[global]\nerror_log = /dev/null\n");
    let _ = writeln!(out, "[{}]", key(&format!("{}_status", parent.name)));
    line(&mut out, "listen", &quote(&listen));
    line(&mut out, "pm", "ondemand");
    line(&mut out, "pm.max_children", "2");
    for name in [
        "user",
        "group",
        "listen.owner",
        "listen.group",
        "listen.acl_users",
        "listen.acl_groups",
        "listen.allowed_clients",
        "pm.status_path",
        "ping.path",
        "ping.response",
    ] {
        if let Some(v) = parent.settings.non_empty(name) {
            line(&mut out, name, &quote(&v));
        }
    }
    line(
        &mut out,
        "listen.mode",
        &format!("0{:o}", parent.listen_mode),
    );
    php_values(&mut out, parent);
    let opts = crate::LoadOptions {
        resolved: true,
        ..Default::default()
    };
    let cfg = crate::parse_str(&out, std::path::Path::new("(status pool)"), &opts).ok()?;
    cfg.pools.into_iter().next()
}
