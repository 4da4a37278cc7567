//! What `site set KEY=VALUE` (and `add --set`) may name, checked before
//! anything is written: a typo (`memroy_limit`, `pm.max_chidren`) used to
//! become `php_admin_value[memroy_limit]` and exit 0, a setting that does
//! nothing. A key must be one of:
//! * a site option (`php_version`, `template`, `aliases`, `disk_quota`);
//! * a php-fpm pool directive or a `corral.*` key of corral's directive
//!   table (or a provisioning key, [`PROVISIONING`](crate::pens::PROVISIONING));
//! * `ARRAY[name]` for an array directive (`php_admin_value[x]`, `env[X]`):
//!   the way to set an ini name PHP does not know yet (an extension loaded
//!   later), unchecked by design;
//! * an ini name of the PHP the pools run, as `corral -i` lists them.
//!
//! Anything else is refused with the nearest known name.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use corral_config::directives::{self, Section};

use crate::error::{Result, SitesError};

/// Site options `site set` takes besides directives.
pub const SITE_OPTIONS: &[&str] = &[
    "php_version",
    "template",
    "aliases",
    "disk_quota",
    "php-version",
    "alias",
    "disk-quota",
];

/// The ini names PHP knows (from `corral -i`), for [`check`].
#[derive(Debug, Clone, Default)]
pub struct IniNames(pub BTreeSet<String>);

impl IniNames {
    /// Runs `exe -i` (corral's phpinfo, the same libphp and php.ini the
    /// pools use; `-c DIR` when given) and reads the directive names.
    pub fn from_php(exe: &Path, ini_dir: Option<&Path>) -> Result<IniNames> {
        let mut cmd = Command::new(exe);
        if let Some(d) = ini_dir.filter(|d| d.join("php.ini").exists()) {
            cmd.arg("-c").arg(d);
        }
        let shown = format!("{} -i", exe.display());
        let out = cmd.arg("-i").output().map_err(|e| SitesError::Command {
            command: shown.clone(),
            output: e.to_string(),
        })?;
        let names = parse_phpinfo(&String::from_utf8_lossy(&out.stdout));
        if !out.status.success() || names.0.is_empty() {
            return Err(SitesError::Command {
                command: shown,
                output: format!(
                    "{}: no ini names listed ({}); set an unchecked name as php_admin_value[NAME]",
                    out.status,
                    String::from_utf8_lossy(&out.stderr).trim()
                ),
            });
        }
        Ok(names)
    }
}

/// Directive lines of phpinfo's text form: `name => local => master`.
pub fn parse_phpinfo(text: &str) -> IniNames {
    IniNames(
        text.lines()
            .filter(|l| l.matches(" => ").count() == 2)
            .filter_map(|l| l.split(" => ").next())
            .map(str::trim)
            .filter(|n| {
                !n.is_empty()
                    && n.bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._".contains(&b))
            })
            .map(str::to_string)
            .collect(),
    )
}

/// Every name a bare key may be (for suggestions).
fn known(ini: &IniNames) -> Vec<String> {
    let mut v: Vec<String> = SITE_OPTIONS.iter().map(|s| s.to_string()).collect();
    v.extend(directives::of(Section::Pool).map(|d| d.name.to_string()));
    v.extend(crate::pens::PROVISIONING.iter().map(|s| s.to_string()));
    v.extend(ini.0.iter().cloned());
    v
}

/// Checks every key; PHP is asked for its ini names only when a key is
/// not a site option, directive or array key.
pub fn check_all<'a>(
    keys: impl IntoIterator<Item = &'a str>,
    ini: impl FnOnce() -> Result<IniNames>,
) -> Result<()> {
    let empty = IniNames::default();
    let rest: Vec<&str> = keys
        .into_iter()
        .filter(|k| check(k, &empty).is_err())
        .collect();
    if rest.is_empty() {
        return Ok(());
    }
    let names = ini()?;
    rest.into_iter().try_for_each(|k| check(k, &names))
}

/// `Ok` when `key` names something real (see the module doc).
pub fn check(key: &str, ini: &IniNames) -> Result<()> {
    if let Some((name, rest)) = key.split_once('[') {
        if directives::ARRAY_DIRECTIVES.contains(&name) && rest.len() > 1 && rest.ends_with(']') {
            return Ok(());
        }
        return Err(refuse(
            key,
            format!(
                "'{name}[…]' is not an array directive ({})",
                directives::ARRAY_DIRECTIVES.join(", ")
            ),
            nearest(
                name,
                directives::ARRAY_DIRECTIVES.iter().map(|s| s.to_string()),
            ),
        ));
    }
    let lower = key.to_ascii_lowercase();
    if SITE_OPTIONS.contains(&lower.as_str())
        || directives::lookup(Section::Pool, key).is_some()
        || crate::pens::PROVISIONING.contains(&lower.as_str())
        || ini.0.contains(key)
    {
        return Ok(());
    }
    let what = if lower.starts_with("corral.") {
        "not a corral.* key".to_string()
    } else {
        "neither a pool directive nor an ini name this PHP knows".to_string()
    };
    Err(refuse(key, what, nearest(key, known(ini))))
}

fn refuse(key: &str, what: String, near: Option<String>) -> SitesError {
    let hint = match near {
        Some(n) => format!("; did you mean '{n}'?"),
        None => String::new(),
    };
    SitesError::Setting {
        key: key.to_string(),
        why: format!(
            "{what}{hint} (an ini name PHP does not list, e.g. of an extension loaded \
             later, can be set unchecked as php_admin_value[NAME])"
        ),
    }
}

/// The closest candidate by edit distance, if it is close enough to be
/// what was meant (at most a third of the key's length, and 3).
pub fn nearest(key: &str, candidates: impl IntoIterator<Item = String>) -> Option<String> {
    let k = key.to_ascii_lowercase();
    let limit = (k.chars().count() / 3).clamp(1, 3);
    candidates
        .into_iter()
        .map(|c| (distance(&k, &c.to_ascii_lowercase()), c))
        .filter(|(d, _)| *d <= limit)
        .min_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.cmp(&b.1)))
        .map(|(_, c)| c)
}

/// Levenshtein distance with adjacent transpositions counted as one edit
/// (`memroy` → `memory`).
fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut v = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = v;
        }
    }
    d[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ini() -> IniNames {
        parse_phpinfo(
            "Directive => Local Value => Master Value\n\
             memory_limit => 128M => 128M\n\
             session.gc_maxlifetime => 1440 => 1440\n\
             upload_max_filesize => 2M => 2M\n\
             PHP Version => 8.2.36\n\
             System => Linux vm\n",
        )
    }

    #[test]
    fn php_is_asked_only_when_needed() {
        let never = || -> Result<IniNames> { panic!("asked PHP") };
        assert!(check_all(["pm.max_children", "env[X]", "template"], never).is_ok());
        let e = check_all(["memroy_limit"], || Ok(ini()))
            .unwrap_err()
            .to_string();
        assert!(e.contains("memory_limit"), "{e}");
    }

    #[test]
    fn phpinfo_lists_directives_only() {
        let n = ini();
        assert!(n.0.contains("memory_limit") && n.0.contains("session.gc_maxlifetime"));
        assert!(!n.0.contains("Directive") && !n.0.contains("PHP Version"));
    }

    #[test]
    fn real_keys_pass() {
        let n = ini();
        for k in [
            "memory_limit",
            "pm.max_children",
            "PM.MAX_CHILDREN",
            "corral.memory_max",
            "corral.writable",
            "php_admin_value[anything.goes]",
            "env[DB_HOST]",
            "php_version",
            "session.gc_maxlifetime",
        ] {
            assert!(check(k, &n).is_ok(), "{k}");
        }
    }

    #[test]
    fn typos_are_refused_with_the_nearest_name() {
        let n = ini();
        for (typo, meant) in [
            ("memroy_limit", "memory_limit"),
            ("pm.max_chidren", "pm.max_children"),
            ("corral.memory_mx", "corral.memory_max"),
            ("upload_max_filsize", "upload_max_filesize"),
            ("php_admin_valeu[x]", "php_admin_value"),
        ] {
            let e = check(typo, &n).unwrap_err().to_string();
            assert!(
                e.contains(&format!("did you mean '{meant}'")),
                "{typo}: {e}"
            );
        }
        let e = check("zzzzzzzz", &n).unwrap_err().to_string();
        assert!(!e.contains("did you mean"), "{e}");
        assert!(check("env[]", &n).is_err());
    }
}
