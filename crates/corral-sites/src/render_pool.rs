//! The pool file: the resolved template with `--set` overrides applied,
//! placeholders filled, under a `[DOMAIN]` header. Validated by parsing it
//! with corral's own config loader before anything runs it.

use std::collections::BTreeMap;
use std::path::Path;

use corral_config::directives::{self, Section};

use crate::error::{Result, SitesError};
use crate::fs_layout::Layout;
use crate::paths::Paths;
use crate::spec::SiteSpec;
use crate::template::{self, Origin, Resolved};

/// Where `--set` values come from in error messages.
const SET_ORIGIN: &str = "--set";

/// Maps a `--set` key to the directive it changes:
/// * `corral.*`, `name[key]` and php-fpm pool directives stay as they are;
/// * anything else is a php.ini setting: it replaces the template's
///   `php_*[key]` line if there is one, else becomes
///   `php_admin_value[key]` (admin: the script cannot undo it).
pub fn directive_for(r: &Resolved, key: &str) -> String {
    if key.starts_with("corral.")
        || key.contains('[')
        || directives::lookup(Section::Pool, key).is_some()
    {
        return template::normalize_key(key);
    }
    for kind in ["php_admin_value", "php_admin_flag", "php_value", "php_flag"] {
        let k = format!("{kind}[{key}]");
        if r.get(&k).is_some() {
            return k;
        }
    }
    format!("php_admin_value[{key}]")
}

/// Applies the spec's overrides, last.
pub fn apply_sets(r: &mut Resolved, sets: &BTreeMap<String, String>) {
    for (k, v) in sets {
        let d = directive_for(r, k);
        r.set(
            &d,
            v,
            Origin {
                file: SET_ORIGIN.into(),
                line: 0,
            },
        );
    }
}

/// The placeholder values of a site.
pub fn values(
    spec: &SiteSpec,
    paths: &Paths,
    layout: &Layout,
    r: &Resolved,
) -> Vec<(&'static str, String)> {
    let front = r
        .get("corral.front_controller")
        .unwrap_or("")
        .trim()
        .to_string();
    let mut names = vec![spec.domain.clone()];
    names.extend(spec.aliases.iter().cloned());
    vec![
        ("domain", spec.domain.clone()),
        ("user", spec.user.clone()),
        ("php_user", spec.php_user()),
        ("home", layout.home.display().to_string()),
        ("site_dir", layout.site_dir.display().to_string()),
        ("docroot", layout.docroot.display().to_string()),
        ("writable_dirs", writable_dirs(layout)),
        ("socket", paths.socket(&spec.domain).display().to_string()),
        ("php_version", spec.php_version.clone()),
        (
            "php_include_dir",
            paths.php_include_dir.display().to_string(),
        ),
        ("web_user", paths.web_user.clone()),
        ("web_group", paths.web_group.clone()),
        ("template", r.chain.join(" <- ")),
        ("listen", paths.listen.clone()),
        ("server_names", names.join(" ")),
        (
            "server_alias",
            if spec.aliases.is_empty() {
                String::new()
            } else {
                format!("ServerAlias {}", spec.aliases.join(" "))
            },
        ),
        (
            "try_files",
            if front.is_empty() {
                "$uri $uri/ =404".into()
            } else {
                format!("$uri $uri/ {front}?$args")
            },
        ),
        ("client_max_body_size", body_limit(r)),
        (
            "fallback_resource",
            if front.is_empty() {
                String::new()
            } else {
                format!("FallbackResource {front}")
            },
        ),
    ]
}

/// The largest request body PHP accepts (`post_max_size`, PHP's and
/// Debian's default 8M when no template sets it), for nginx's
/// `client_max_body_size`: nginx's own default of 1M made every upload
/// above 1 MiB a 413 although the pool allowed 64M.
pub fn body_limit(r: &Resolved) -> String {
    ["php_admin_value", "php_value"]
        .iter()
        .find_map(|k| r.get(&format!("{k}[post_max_size]")))
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "8M".into())
}

/// Every directory PHP may write, absolute and space-separated (the
/// Landlock write list): logs, tmp, sessions and the template's writable
/// dirs, as the layout creates them.
pub fn writable_dirs(layout: &Layout) -> String {
    let mut dirs = vec![
        layout.logs.clone(),
        layout.tmp.clone(),
        layout.sessions.clone(),
    ];
    if layout.unlocked {
        // `site unlock`: the whole code tree, for the window only (the
        // pool is reloaded when it opens and when it closes).
        dirs.push(layout.site_dir.clone());
    } else {
        dirs.extend(layout.writable.iter().map(|w| layout.site_dir.join(w)));
    }
    dirs.iter()
        .map(|d| d.display().to_string())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The pool file text.
pub fn render(spec: &SiteSpec, r: &Resolved, values: &[(&str, String)]) -> String {
    let mut out = format!(
        "; Managed by `corral site` for {} (template {}).\n\
         ; Change it with `corral site set {} KEY=VALUE`; edits here are overwritten.\n\
         [{}]\n",
        spec.domain,
        r.chain.join(" <- "),
        spec.domain,
        spec.domain
    );
    for e in &r.entries {
        if !crate::pens::is_pool_directive(&e.key) {
            continue;
        }
        let v = template::substitute_line(&e.value, values);
        out.push_str(&format!("{} = {}\n", e.key, v));
    }
    out
}

/// Parses the rendered text the way corral will, then (when it exists)
/// the whole php-fpm.conf that includes it, so a clash with another pool
/// (same socket, same name) is caught before a reload.
pub fn validate(text: &str, path: &Path, fpm_config: Option<&Path>) -> Result<()> {
    let opts = corral_config::LoadOptions {
        allow_run_as_root: true,
        ..Default::default()
    };
    corral_config::parse_str(text, path, &opts).map_err(|e| SitesError::PoolInvalid {
        path: path.to_path_buf(),
        errors: e.to_string(),
    })?;
    if let Some(main) = fpm_config.filter(|p| p.exists()) {
        let config = corral_config::load(main, &opts).map_err(|e| SitesError::PoolInvalid {
            path: main.to_path_buf(),
            errors: e.to_string(),
        })?;
        let domain = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".conf"))
            .unwrap_or_default();
        if !domain.is_empty() && config.pool(domain).is_none() {
            return Err(SitesError::PoolInvalid {
                path: main.to_path_buf(),
                errors: format!(
                    "it does not include {} (no pool [{domain}] after loading it)",
                    path.display()
                ),
            });
        }
    }
    Ok(())
}

/// `pm.max_children` of a resolved pool (for sizing).
pub fn max_children(r: &Resolved) -> u64 {
    r.get("pm.max_children")
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(5)
}
