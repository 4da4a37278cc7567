//! php-fpm 8.2's configuration dialect.
//!
//! Loading happens in two phases, like the rest of corral's config work:
//! 1. [`raw`]: files (with `include=` globs) are read line by line into a
//!    stream of statements carrying `file:line`; values are INI-normalised
//!    by [`ini`] exactly as Zend's scanner does for php-fpm.
//! 2. [`build`] + [`validate`]: statements are typed through the single
//!    directive table in [`directives`], then post-processed in php-fpm's
//!    order, producing a [`Config`] or php-fpm's own error lines.
//!
//! The same table drives the `-tt` [`dump`].  Nothing here touches users,
//! sockets or log files: php-fpm's `-t` does not resolve users or bind, and
//! opening logs belongs to the master.

#![forbid(unsafe_code)]

pub mod access_format;
mod build;
pub mod directives;
mod dump;
pub mod error;
pub mod exposure;
pub mod global;
pub mod ini;
pub mod isolation;
pub mod metrics;
pub mod paths;
pub mod pool;
pub mod raw;
mod render;
pub mod validate;

use std::path::{Path, PathBuf};

pub use dump::{dump, dump_lines};
pub use error::{ConfigError, ConfigErrors, Diagnostic, Level};
pub use global::{ErrorLog, Global, LogLevel, Rlimit};
pub use isolation::Isolation;
pub use pool::{Listen, PhpIniValue, PmKind, Pool};
pub use raw::Location;
pub use render::{render_pool, render_pool_only, status_pool, RESOLVED_NEWLINE};

/// Resolves a php.ini directive's value by name.
pub type IniLookup = Box<dyn Fn(&str) -> Option<String>>;

/// Command-line inputs that change how a config is read.
#[derive(Default)]
pub struct LoadOptions {
    /// `-p`: prefix for relative paths (default `/usr`, `/var` for pid and
    /// error_log).
    pub prefix: Option<PathBuf>,
    /// Lookup of php.ini directive values for `${NAME}` (php.ini first,
    /// then env).  `None` = environment only.
    pub ini_lookup: Option<IniLookup>,
    /// `-g`: PID file; a `pid =` line in the config wins.
    pub pid_override: Option<PathBuf>,
    /// `-R`: allow pools without `user` when running as root.  php-fpm
    /// only demands `user` when the master is root; set this when not
    /// root too (the check is skipped).
    pub allow_run_as_root: bool,
    /// The text is [`render_pool`]'s output: every value is already final.
    /// Nothing is expanded or resolved a second time (`$pool`, `$VAR` in
    /// `env[]`, relative paths, php.ini path values), `env[]` may be
    /// empty (an unset `$VAR` resolved to ""), `${NAME}` only knows
    /// [`RESOLVED_NEWLINE`] (neither php.ini nor the environment is
    /// consulted), and nothing outside the text is looked at: no prefix,
    /// chroot or chdir `stat`, no `/proc` read for the user check (the
    /// loader of the full config did all that).  `prefix` and
    /// `ini_lookup` are ignored.
    pub resolved: bool,
}

/// A loaded, validated configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The main config file, as given.
    pub path: PathBuf,
    pub global: Global,
    pub pools: Vec<Pool>,
    /// Non-fatal messages php-fpm would log while loading (include
    /// patterns matching nothing, pm.start_servers defaulted, ...).
    pub warnings: Vec<Diagnostic>,
    /// corral's own WARNINGs about TCP listeners other tenants can reach
    /// (`exposure`), apart from `warnings` because php-fpm says nothing
    /// there: `-t` shows them as WARNINGs, a starting or reloading master
    /// as NOTICEs, so that `log_level = warning` keeps its log as quiet
    /// as php-fpm's.
    pub exposures: Vec<Diagnostic>,
}

impl Config {
    /// The pool with this name (names compare case-insensitively).
    pub fn pool(&self, name: &str) -> Option<&Pool> {
        self.pools
            .iter()
            .find(|p| p.name.eq_ignore_ascii_case(name))
    }
}

/// Read `path` and its includes, then validate.
pub fn load(path: &Path, opts: &LoadOptions) -> Result<Config, ConfigErrors> {
    check_prefix(opts)?;
    let lookup = lookup_fn(opts);
    let raw = raw::Reader::new(opts.prefix.as_deref(), &lookup).read_file(path);
    finish(path, raw, opts)
}

/// Parse config text as if read from `file_name` (includes still work).
pub fn parse_str(text: &str, file_name: &Path, opts: &LoadOptions) -> Result<Config, ConfigErrors> {
    check_prefix(opts)?;
    let lookup = lookup_fn(opts);
    let raw = raw::Reader::new(opts.prefix.as_deref(), &lookup).read_str(text, file_name);
    finish(file_name, raw, opts)
}

fn check_prefix(opts: &LoadOptions) -> Result<(), ConfigErrors> {
    if opts.resolved {
        return Ok(());
    }
    match &opts.prefix {
        Some(p) if !p.as_os_str().is_empty() && !p.is_dir() => {
            Err(ConfigErrors(vec![ConfigError::GlobalPrefix(
                p.display().to_string(),
            )
            .into()]))
        }
        _ => Ok(()),
    }
}

fn env_var(name: &str) -> Option<String> {
    std::env::var_os(name).map(|v| v.to_string_lossy().into_owned())
}

fn lookup_fn(opts: &LoadOptions) -> impl Fn(&str) -> Option<String> + '_ {
    move |name: &str| {
        if opts.resolved {
            return render::resolved_variable(name);
        }
        match &opts.ini_lookup {
            Some(f) => f(name).or_else(|| env_var(name)),
            None => env_var(name),
        }
    }
}

/// Whether the effective uid is 0, read from /proc (no unsafe needed).
fn running_as_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|e| e == "0"))
        })
        .unwrap_or(false)
}

fn finish(path: &Path, raw: raw::RawConfig, opts: &LoadOptions) -> Result<Config, ConfigErrors> {
    let load_failed = || Diagnostic::from(ConfigError::LoadFailed(path.display().to_string()));
    let mut collected = match build::collect(raw.items, opts.resolved) {
        Ok(c) => c,
        Err(mut diags) => {
            diags.push(load_failed());
            return Err(ConfigErrors(diags));
        }
    };
    let mut out = std::mem::take(&mut collected.notes);
    if let Some(mut errs) = raw.error {
        out.append(&mut errs);
        out.push(load_failed());
        return Err(ConfigErrors(out));
    }

    let mut global = collected.global;
    // -g is applied before reading, so a `pid` line overrides it.
    if !global.is_set("pid") {
        if let Some(pid) = &opts.pid_override {
            global.set("pid", directives::Value::Str(pid.display().to_string()));
        }
    }
    let ctx = validate::Context {
        prefix: opts.prefix.as_deref().filter(|_| !opts.resolved),
        require_user: !opts.resolved && !opts.allow_run_as_root && running_as_root(),
        resolved: opts.resolved,
    };
    let ok = validate::global(&mut global, &ctx, &mut out)
        .and_then(|_| validate::pools(&mut collected.pools, &global, &ctx, &mut out))
        .and_then(|_| validate::access_formats(&mut collected.pools, &mut out));
    if ok.is_err() {
        out.push(ConfigError::PostProcessFailed.into());
        return Err(ConfigErrors(out));
    }
    let env_lookup: Option<pool::EnvLookup<'_>> = if opts.resolved { None } else { Some(&env_var) };
    let pools: Vec<Pool> = collected
        .pools
        .into_iter()
        .map(|p| p.finish(env_lookup))
        .collect();
    // A prototype's rendered pool is one of many: the master warned.
    let exposures = if opts.resolved {
        Vec::new()
    } else {
        exposure::warnings(&pools)
    };
    Ok(Config {
        path: path.to_path_buf(),
        global: Global::from_settings(global),
        pools,
        warnings: out,
        exposures,
    })
}

#[cfg(test)]
mod tests;
