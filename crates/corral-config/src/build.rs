//! Phase two: the raw statement stream → per-section typed settings.
//!
//! Mirrors fpm_conf_ini_parser_{section,entry,array}: the first error in
//! file order stops everything, exactly like php-fpm.

use crate::directives::{self, Section, Settings};
use crate::error::{ConfigError, Diagnostic};
use crate::pool::PoolDraft;
use crate::raw::{Location, RawItem};

/// Settings collected from the whole stream.
pub(crate) struct Collected {
    pub global: Settings,
    pub pools: Vec<PoolDraft>,
    /// Non-fatal diagnostics met on the way (include warnings).
    pub notes: Vec<Diagnostic>,
}

fn file_of(at: &Location) -> String {
    at.file.display().to_string()
}

/// Replace every `$pool` by the pool name; in [global] that is an error.
/// `None` for `pool` means [global]; `resolved` text is never expanded.
fn expand_pool(v: &str, pool: Option<&str>, resolved: bool) -> Result<String, &'static str> {
    if resolved || !v.contains("$pool") {
        return Ok(v.to_string());
    }
    match pool {
        Some(name) => Ok(v.replace("$pool", name)),
        None => Err("Can't use '$pool' when the pool is not defined"),
    }
}

/// Apply items in order.  `Err` holds diagnostics up to and including the
/// failing one (warnings met before it are kept, as php-fpm logs them).
/// `resolved`: see `LoadOptions::resolved`.
pub(crate) fn collect(items: Vec<RawItem>, resolved: bool) -> Result<Collected, Vec<Diagnostic>> {
    let mut c = Collected {
        global: Settings::default(),
        pools: Vec::new(),
        notes: Vec::new(),
    };
    let mut current: Option<usize> = None;
    for item in items {
        let r = match item {
            RawItem::Warning(d) => {
                c.notes.push(d);
                Ok(())
            }
            RawItem::Section { name, at } => {
                if name.eq_ignore_ascii_case("global") {
                    current = None;
                } else if let Some(i) = c
                    .pools
                    .iter()
                    .position(|p| p.name.eq_ignore_ascii_case(&name))
                {
                    current = Some(i);
                } else {
                    c.pools.push(PoolDraft::new(name, at));
                    current = Some(c.pools.len() - 1);
                }
                Ok(())
            }
            RawItem::Entry { name, value, at } => {
                entry(&mut c, current, &name, value, &at, resolved)
            }
            RawItem::Array {
                name,
                key,
                value,
                at,
            } => array(&mut c, current, &name, &key, &value, &at, resolved),
        };
        if let Err(mut errs) = r {
            let mut all = std::mem::take(&mut c.notes);
            all.append(&mut errs);
            return Err(all);
        }
    }
    Ok(c)
}

fn entry(
    c: &mut Collected,
    current: Option<usize>,
    name: &str,
    value: Option<String>,
    at: &Location,
    resolved: bool,
) -> Result<(), Vec<Diagnostic>> {
    let file = file_of(at);
    let Some(value) = value else {
        return Err(vec![ConfigError::NullValue {
            file,
            line: at.line,
        }
        .into()]);
    };
    let section = if current.is_some() {
        Section::Pool
    } else {
        Section::Global
    };
    let Some(d) = directives::lookup(section, name) else {
        return Err(vec![ConfigError::UnknownEntry {
            file,
            line: at.line,
            name: name.to_string(),
        }
        .into()]);
    };
    let bad = |reason: &str| {
        vec![Diagnostic::from(ConfigError::BadValue {
            file: file.clone(),
            line: at.line,
            name: d.name.to_string(),
            reason: reason.to_string(),
        })]
    };
    let mut v = directives::parse(d.kind, &value).map_err(|r| bad(&r))?;
    let pool_name = current.map(|i| c.pools[i].name.clone());
    if let directives::Value::Str(s) = &v {
        v = directives::Value::Str(expand_pool(s, pool_name.as_deref(), resolved).map_err(bad)?);
    }
    // process.priority 64 is php-fpm's "unset" marker.
    if d.name == "process.priority" && v == directives::Value::Int(64) {
        match current {
            Some(i) => c.pools[i].settings.unset(d.name),
            None => c.global.unset(d.name),
        }
        return Ok(());
    }
    match current {
        Some(i) => c.pools[i].settings.set(d.name, v),
        None => c.global.set(d.name, v),
    }
    Ok(())
}

fn array(
    c: &mut Collected,
    current: Option<usize>,
    name: &str,
    key: &str,
    value: &str,
    at: &Location,
    resolved: bool,
) -> Result<(), Vec<Diagnostic>> {
    let file = file_of(at);
    let line = at.line;
    if name == "access.suppress_path" {
        let mut errs: Vec<Diagnostic> = Vec::new();
        if !key.is_empty() {
            errs.push(
                ConfigError::SuppressPathKey {
                    file: file.clone(),
                    line,
                }
                .into(),
            );
        }
        if !value.starts_with('/') {
            errs.push(
                ConfigError::SuppressPathValue {
                    file: file.clone(),
                    line,
                }
                .into(),
            );
        }
        if !errs.is_empty() {
            return Err(errs);
        }
    } else if key.is_empty() {
        return Err(vec![ConfigError::MissingKey {
            file,
            line,
            name: name.to_string(),
        }
        .into()]);
    }
    let Some(i) = current else {
        return Err(vec![ConfigError::ArrayInGlobal { file, line }.into()]);
    };
    let pool = &mut c.pools[i];
    let bad = |reason: &str| {
        vec![Diagnostic::from(ConfigError::BadArrayValue {
            file: file.clone(),
            line,
            name: name.to_string(),
            key: key.to_string(),
            reason: reason.to_string(),
        })]
    };
    let text = || expand_pool(value, Some(&pool.name), resolved).map_err(bad);
    let flag = || {
        directives::parse_bool(value)
            .map(|b| if b { "1" } else { "0" }.to_string())
            .map_err(bad)
    };
    match name {
        "env" => {
            // A resolved `$UNSET` is legitimately empty.
            if value.is_empty() && !resolved {
                return Err(vec![ConfigError::EmptyEnvValue { file, line }.into()]);
            }
            let v = text()?;
            pool.env.push((key.to_string(), v));
        }
        "php_value" => {
            let v = text()?;
            pool.php_values.push((key.to_string(), v));
        }
        "php_admin_value" => {
            let v = text()?;
            pool.php_admin_values.push((key.to_string(), v));
        }
        "php_flag" => {
            let v = flag()?;
            pool.php_values.push((key.to_string(), v));
        }
        "php_admin_flag" => {
            let v = flag()?;
            pool.php_admin_values.push((key.to_string(), v));
        }
        "access.suppress_path" => {
            let v = text()?;
            pool.suppress_paths.push(v);
        }
        _ => {
            return Err(vec![ConfigError::UnknownDirective {
                file,
                line,
                name: name.to_string(),
            }
            .into()])
        }
    }
    debug_assert!(directives::ARRAY_DIRECTIVES.contains(&name));
    Ok(())
}
