//! Site templates with inheritance.
//!
//! A template `NAME` is a pool file `NAME.pool` plus optional vhost files
//! `NAME.nginx` and `NAME.apache`. Each file is looked up first in the
//! operator's directory (`/etc/corral/templates`), then among the shipped
//! defaults embedded in the binary, so an operator overrides a shipped
//! template by copying it.
//!
//! `.pool` syntax, one statement per line (`;` or `#` start a comment):
//! * `extends = PARENT` — only as the first statement;
//! * `KEY = VALUE` — a php-fpm pool directive (`pm.max_children = 5`,
//!   `php_admin_value[memory_limit] = 256M`) or a `corral.*` knob; a child
//!   replaces its parent's value in place;
//! * `unset KEY` — drops an inherited directive.
//!
//! Vhost files are whole files; a template without one uses its nearest
//! ancestor's. So is `NAME.php`, a PHP file installed root-owned into
//! `<php-include-dir>` for the pool to prepend (WordPress's update
//! constants). Errors name the file and line.

use std::path::{Path, PathBuf};

use crate::error::{Result, SitesError};

/// The shipped templates: `(file name, text)`.
pub const SHIPPED: &[(&str, &str)] = &[
    (
        "default.pool",
        include_str!("../../../templates/default.pool"),
    ),
    (
        "default.nginx",
        include_str!("../../../templates/default.nginx"),
    ),
    (
        "default.apache",
        include_str!("../../../templates/default.apache"),
    ),
    (
        "redirect.nginx",
        include_str!("../../../templates/redirect.nginx"),
    ),
    (
        "redirect.apache",
        include_str!("../../../templates/redirect.apache"),
    ),
    (
        "suspended.nginx",
        include_str!("../../../templates/suspended.nginx"),
    ),
    (
        "suspended.apache",
        include_str!("../../../templates/suspended.apache"),
    ),
    (
        "wordpress.pool",
        include_str!("../../../templates/wordpress.pool"),
    ),
    (
        "wordpress.php",
        include_str!("../../../templates/wordpress.php"),
    ),
    (
        "laravel.pool",
        include_str!("../../../templates/laravel.pool"),
    ),
    (
        "low-traffic.pool",
        include_str!("../../../templates/low-traffic.pool"),
    ),
];

/// Every `{{name}}` a template may use.
pub const PLACEHOLDERS: &[&str] = &[
    "domain",
    "user",
    "php_user",
    "home",
    "site_dir",
    "docroot",
    "writable_dirs",
    "socket",
    "php_version",
    "web_user",
    "web_group",
    "template",
    "listen",
    "server_names",
    "server_alias",
    "try_files",
    "fallback_resource",
    "client_max_body_size",
    "tls",
    "acme",
    "https_port",
    "php_include_dir",
];

/// Where a directive's value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub file: String,
    pub line: usize,
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.file, self.line)
    }
}

/// One resolved directive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub key: String,
    pub value: String,
    pub origin: Origin,
}

/// A template with its chain applied.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// The template and its ancestors, child first.
    pub chain: Vec<String>,
    /// Directives in first-definition order (a parent's order survives
    /// overrides, so rendered files diff cleanly).
    pub entries: Vec<Entry>,
    /// `(file, text)` of the vhost templates, if some ancestor has them.
    pub nginx: Option<(String, String)>,
    pub apache: Option<(String, String)>,
    /// `(template name, text)` of the nearest `NAME.php`: the file the
    /// pool prepends, installed as `<php-include-dir>/NAME.php`.
    pub php: Option<(String, String)>,
}

impl Resolved {
    pub fn get(&self, key: &str) -> Option<&str> {
        let k = normalize_key(key);
        self.entries
            .iter()
            .find(|e| e.key == k)
            .map(|e| e.value.as_str())
    }

    /// Sets or replaces (in place) a directive.
    pub fn set(&mut self, key: &str, value: &str, origin: Origin) {
        let key = normalize_key(key);
        match self.entries.iter_mut().find(|e| e.key == key) {
            Some(e) => {
                e.value = value.to_string();
                e.origin = origin;
            }
            None => self.entries.push(Entry {
                key,
                value: value.to_string(),
                origin,
            }),
        }
    }

    pub fn unset(&mut self, key: &str) {
        let key = normalize_key(key);
        self.entries.retain(|e| e.key != key);
    }
}

/// Scalar directives compare case-insensitively (as php-fpm's strcasecmp);
/// `name[key]` arrays keep the key's case.
pub fn normalize_key(key: &str) -> String {
    match key.split_once('[') {
        Some((name, rest)) => format!("{}[{rest}", name.to_ascii_lowercase()),
        None => key.to_ascii_lowercase(),
    }
}

/// The operator's directory in front of the shipped set.
#[derive(Debug, Clone)]
pub struct Library {
    pub operator_dir: PathBuf,
}

impl Library {
    pub fn new(operator_dir: &Path) -> Library {
        Library {
            operator_dir: operator_dir.to_path_buf(),
        }
    }

    /// `(shown file name, text)` of `file`, operator's first.
    pub fn file(&self, file: &str) -> Result<Option<(String, String)>> {
        let p = self.operator_dir.join(file);
        match std::fs::read_to_string(&p) {
            Ok(t) => return Ok(Some((p.display().to_string(), t))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(SitesError::io(p, e)),
        }
        Ok(SHIPPED
            .iter()
            .find(|(n, _)| *n == file)
            .map(|(n, t)| (format!("(shipped) templates/{n}"), t.to_string())))
    }

    /// Every template name (with a `.pool`), operator's and shipped.
    pub fn names(&self) -> Vec<String> {
        let mut out: Vec<String> = SHIPPED
            .iter()
            .filter_map(|(n, _)| n.strip_suffix(".pool").map(str::to_string))
            .collect();
        if let Ok(rd) = std::fs::read_dir(&self.operator_dir) {
            for e in rd.flatten() {
                if let Some(n) = e.file_name().to_str().and_then(|n| n.strip_suffix(".pool")) {
                    out.push(n.to_string());
                }
            }
        }
        out.sort();
        out.dedup();
        out
    }

    /// Resolves `name` and its ancestors.
    pub fn resolve(&self, name: &str) -> Result<Resolved> {
        let mut chain: Vec<String> = Vec::new();
        let mut parsed: Vec<Parsed> = Vec::new();
        let mut current = name.to_string();
        let mut referrer: Option<Origin> = None;
        loop {
            if chain.contains(&current) {
                let o = referrer.unwrap_or(Origin {
                    file: current.clone(),
                    line: 0,
                });
                chain.push(current);
                return Err(SitesError::Template {
                    file: o.file,
                    line: o.line,
                    why: format!("inheritance cycle: {}", chain.join(" -> ")),
                });
            }
            let Some((file, text)) = self.file(&format!("{current}.pool"))? else {
                return Err(match referrer {
                    Some(o) => SitesError::Template {
                        file: o.file,
                        line: o.line,
                        why: format!(
                            "unknown parent template '{current}' (no {current}.pool in {} or the shipped set)",
                            self.operator_dir.display()
                        ),
                    },
                    None => SitesError::TemplateMissing {
                        name: current,
                        searched: format!(
                            "{} and the shipped set: {}",
                            self.operator_dir.display(),
                            self.names().join(", ")
                        ),
                    },
                });
            };
            let p = parse_pool(&file, &text)?;
            chain.push(current.clone());
            let parent = p.extends.clone();
            parsed.push(p);
            match parent {
                Some((parent, origin)) => {
                    referrer = Some(origin);
                    current = parent;
                }
                None => break,
            }
        }
        let mut r = Resolved {
            chain: chain.clone(),
            entries: Vec::new(),
            nginx: None,
            apache: None,
            php: None,
        };
        for p in parsed.iter().rev() {
            for st in &p.statements {
                match st {
                    Statement::Set(e) => r.set(&e.key, &e.value, e.origin.clone()),
                    Statement::Unset(k) => r.unset(k),
                }
            }
        }
        for t in &chain {
            if r.nginx.is_none() {
                r.nginx = self.file(&format!("{t}.nginx"))?;
            }
            if r.apache.is_none() {
                r.apache = self.file(&format!("{t}.apache"))?;
            }
            if r.php.is_none() {
                r.php = self
                    .file(&format!("{t}.php"))?
                    .map(|(_, text)| (t.clone(), text));
            }
        }
        Ok(r)
    }
}

#[derive(Debug)]
enum Statement {
    Set(Entry),
    Unset(String),
}

#[derive(Debug)]
struct Parsed {
    extends: Option<(String, Origin)>,
    statements: Vec<Statement>,
}

fn parse_pool(file: &str, text: &str) -> Result<Parsed> {
    let mut out = Parsed {
        extends: None,
        statements: Vec::new(),
    };
    let mut seen_statement = false;
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let err = |why: String| SitesError::Template {
            file: file.to_string(),
            line,
            why,
        };
        let l = raw.trim();
        if l.is_empty() || l.starts_with(';') || l.starts_with('#') {
            continue;
        }
        check_placeholders(l).map_err(&err)?;
        if l.starts_with('[') {
            return Err(err(
                "a template holds one pool's directives; corral writes the [section] header".into(),
            ));
        }
        if let Some(k) = l.strip_prefix("unset ") {
            let k = k.trim();
            crate::spec::check_setting(k, "").map_err(|e| err(e.to_string()))?;
            out.statements.push(Statement::Unset(k.to_string()));
            seen_statement = true;
            continue;
        }
        let Some((k, v)) = l.split_once('=') else {
            return Err(err(format!(
                "expected `key = value`, `extends = NAME` or `unset KEY`, got `{l}`"
            )));
        };
        let (k, v) = (k.trim(), v.trim());
        if k.eq_ignore_ascii_case("extends") {
            if seen_statement || out.extends.is_some() {
                return Err(err("`extends` must be the first directive".into()));
            }
            if v.is_empty() {
                return Err(err("`extends` needs a template name".into()));
            }
            out.extends = Some((
                v.to_string(),
                Origin {
                    file: file.to_string(),
                    line,
                },
            ));
            seen_statement = true;
            continue;
        }
        if k.eq_ignore_ascii_case("include") {
            return Err(err("`include` is not allowed in a template".into()));
        }
        crate::spec::check_setting(k, v).map_err(|e| err(e.to_string()))?;
        out.statements.push(Statement::Set(Entry {
            key: normalize_key(k),
            value: v.to_string(),
            origin: Origin {
                file: file.to_string(),
                line,
            },
        }));
        seen_statement = true;
    }
    Ok(out)
}

/// Every `{{...}}` in `text` must be a known placeholder.
pub fn check_placeholders(text: &str) -> std::result::Result<(), String> {
    let mut rest = text;
    while let Some(i) = rest.find("{{") {
        let after = &rest[i + 2..];
        let Some(j) = after.find("}}") else {
            return Err("unterminated `{{`".into());
        };
        let name = after[..j].trim();
        if !PLACEHOLDERS.contains(&name) {
            return Err(format!(
                "unknown placeholder {{{{{name}}}}} (known: {})",
                PLACEHOLDERS.join(", ")
            ));
        }
        rest = &after[j + 2..];
    }
    Ok(())
}

/// Replaces the placeholders of a whole file; unknown ones are errors at
/// their line.
pub fn substitute(file: &str, text: &str, values: &[(&str, String)]) -> Result<String> {
    let mut out = String::with_capacity(text.len());
    for (i, line) in text.split_inclusive('\n').enumerate() {
        check_placeholders(line).map_err(|why| SitesError::Template {
            file: file.to_string(),
            line: i + 1,
            why,
        })?;
        out.push_str(&substitute_line(line, values));
    }
    Ok(out)
}

/// [`substitute`], dropping each line that held a placeholder and is
/// empty once filled.
pub fn substitute_dropping_empty(
    file: &str,
    text: &str,
    values: &[(&str, String)],
) -> Result<String> {
    let mut out = String::with_capacity(text.len());
    for (i, line) in text.split_inclusive('\n').enumerate() {
        check_placeholders(line).map_err(|why| SitesError::Template {
            file: file.to_string(),
            line: i + 1,
            why,
        })?;
        let filled = substitute_line(line, values);
        if filled.trim().is_empty() && line.contains("{{") {
            continue;
        }
        out.push_str(&filled);
    }
    Ok(out)
}

/// Replaces the placeholders in one checked line.
pub fn substitute_line(line: &str, values: &[(&str, String)]) -> String {
    let mut out = String::new();
    let mut rest = line;
    while let Some(i) = rest.find("{{") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        let Some(j) = after.find("}}") else {
            out.push_str(&rest[i..]);
            return out;
        };
        let name = after[..j].trim();
        match values.iter().find(|(n, _)| *n == name) {
            Some((_, v)) => out.push_str(v),
            None => out.push_str(&rest[i..i + 2 + j + 2]),
        }
        rest = &after[j + 2..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lib_with(files: &[(&str, &str)]) -> (tempfile::TempDir, Library) {
        let d = tempfile::tempdir().unwrap();
        for (n, t) in files {
            std::fs::write(d.path().join(n), t).unwrap();
        }
        let lib = Library::new(d.path());
        (d, lib)
    }

    /// WordPress's installer calls mail() through PHPMailer and dies on an
    /// undefined function; putenv (the LD_PRELOAD half) stays disabled.
    #[test]
    fn wordpress_may_mail_but_never_putenv() {
        let (_d, lib) = lib_with(&[]);
        let mut wp = lib.resolve("wordpress").unwrap();
        crate::pens::finish(&mut wp).unwrap();
        let disabled = wp.get("php_admin_value[disable_functions]").unwrap();
        let disabled: Vec<&str> = disabled.split(',').collect();
        for f in ["mail", "mb_send_mail"] {
            assert!(!disabled.contains(&f), "{f} disabled: {disabled:?}");
        }
        for f in ["putenv", "exec", "proc_open", "shm_attach"] {
            assert!(disabled.contains(&f), "{f} enabled: {disabled:?}");
        }
    }

    #[test]
    fn shipped_templates_resolve() {
        let (_d, lib) = lib_with(&[]);
        for name in ["default", "wordpress", "laravel", "low-traffic"] {
            let r = lib.resolve(name).unwrap();
            assert!(r.nginx.is_some() && r.apache.is_some(), "{name}");
            assert_eq!(r.get("listen"), Some("{{socket}}"));
        }
        let wp = lib.resolve("wordpress").unwrap();
        assert_eq!(wp.chain, ["wordpress", "default"]);
        assert_eq!(wp.get("php_admin_value[memory_limit]"), Some("256M"));
        assert_eq!(wp.get("corral.writable"), Some("wp-content/uploads"));
        let lt = lib.resolve("low-traffic").unwrap();
        assert_eq!(lt.get("pm"), Some("ondemand"));
        assert_eq!(lt.get("pm.process_idle_timeout"), Some("30s"));
        assert_eq!(lt.get("pm.start_servers"), None);
        // Inherited untouched.
        assert_eq!(lt.get("clear_env"), Some("yes"));
    }

    #[test]
    fn child_overrides_in_place_and_operator_wins() {
        let (_d, lib) = lib_with(&[
            ("base.pool", "user = a\npm = static\npm.max_children = 4\n"),
            (
                "mid.pool",
                "; c\nextends = base\nPM.MAX_CHILDREN = 9\nnew = 1\n",
            ),
            ("leaf.pool", "extends = mid\nunset new\nuser = b\n"),
            ("leaf.nginx", "server {}\n"),
            ("default.pool", "user = mine\n"),
        ]);
        let r = lib.resolve("leaf").unwrap();
        assert_eq!(r.chain, ["leaf", "mid", "base"]);
        let keys: Vec<_> = r
            .entries
            .iter()
            .map(|e| (e.key.as_str(), e.value.as_str()))
            .collect();
        assert_eq!(
            keys,
            [("user", "b"), ("pm", "static"), ("pm.max_children", "9")]
        );
        assert_eq!(r.entries[2].origin.line, 3);
        assert!(r.entries[2].origin.file.ends_with("mid.pool"));
        assert_eq!(r.nginx.as_ref().unwrap().1, "server {}\n");
        // Vhosts come from the nearest ancestor: here the shipped default
        // is not an ancestor, so there is no Apache template.
        assert!(r.apache.is_none());
        // The operator's default.pool replaces the shipped one.
        assert_eq!(lib.resolve("default").unwrap().get("user"), Some("mine"));
    }

    #[test]
    fn errors_name_file_and_line() {
        let (_d, lib) = lib_with(&[
            ("a.pool", "; x\nextends = b\n"),
            ("b.pool", "extends = a\n"),
            ("orphan.pool", "\n\nextends = nowhere\n"),
            ("late.pool", "pm = static\nextends = default\n"),
            ("bad.pool", "pm = static\nthis is not a directive\n"),
            ("ph.pool", "user = {{nobody}}\n"),
            ("sec.pool", "[www]\n"),
        ]);
        let msg = |n: &str| lib.resolve(n).unwrap_err().to_string();
        let m = msg("a");
        assert!(
            m.contains("b.pool:1") && m.contains("cycle: a -> b -> a"),
            "{m}"
        );
        let m = msg("orphan");
        assert!(
            m.contains("orphan.pool:3") && m.contains("unknown parent template 'nowhere'"),
            "{m}"
        );
        assert!(msg("late").contains("late.pool:2"));
        assert!(msg("bad").contains("bad.pool:2"));
        let m = msg("ph");
        assert!(
            m.contains("ph.pool:1") && m.contains("unknown placeholder"),
            "{m}"
        );
        assert!(msg("sec").contains("sec.pool:1"));
        assert!(msg("missing").contains("template 'missing' not found"));
    }

    #[test]
    fn substitution() {
        let v = [("domain", "a.b".to_string())];
        assert_eq!(
            substitute("f", "x {{domain}} {{ domain }}\n", &v).unwrap(),
            "x a.b a.b\n"
        );
        let e = substitute("f", "ok\n{{nope}}\n", &v)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("f:2:"), "{e}");
    }
}
