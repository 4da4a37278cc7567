//! What PHP will read at start-up (php.ini, the scan directory, the
//! library itself), reduced to a fingerprint. A reload compares it: when
//! php.ini changed, every pool restarts, as php-fpm's re-exec would; when it
//! did not, untouched pools keep their workers and OPcache.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use corral_config::paths::FPM_PHP_INI_DIR as FPM_INI_DIR;
const LIBPHP: &str = "/usr/lib/libphp8.2.so";

/// The files PHP would load for these `-c`/`-n` arguments, in order.
pub fn files(php_args: &[String]) -> Vec<PathBuf> {
    let php = corral_ipc::PhpArgs::from_words(php_args);
    if php.no_ini {
        return Vec::new();
    }
    let mut out = Vec::new();
    let ini = php
        .ini_path
        .map_or_else(|| PathBuf::from(FPM_INI_DIR), PathBuf::from);
    if ini.is_dir() {
        // PHP prefers php-<sapi>.ini over php.ini in the same place.
        if let Some(f) = ["php-fpm-fcgi.ini", "php.ini"]
            .iter()
            .map(|n| ini.join(n))
            .find(|p| p.is_file())
        {
            out.push(f);
        }
    } else {
        out.push(ini);
    }
    let scan = std::env::var_os("PHP_INI_SCAN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(FPM_INI_DIR).join("conf.d"));
    if let Ok(rd) = std::fs::read_dir(&scan) {
        let mut extra: Vec<PathBuf> = rd
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "ini"))
            .collect();
        extra.sort();
        out.extend(extra);
    }
    out
}

/// The shared objects PHP will dlopen at start-up for these arguments, in
/// its order (zend_extension lines first, then extension lines), for the
/// zygote to preload. A name PHP would not find is simply not preloaded:
/// PHP itself reports it when the prototype starts.
pub fn preload(php_args: &[String]) -> Vec<PathBuf> {
    let php = corral_ipc::PhpArgs::from_words(php_args);
    preload_from(&files(php_args), &php.defines)
}

/// [`preload`] for these ini files and `-d` defines.
fn preload_from(files: &[PathBuf], defines: &[String]) -> Vec<PathBuf> {
    let mut lines = Vec::new();
    for f in files {
        if let Ok(text) = std::fs::read_to_string(f) {
            lines.extend(
                text.lines()
                    .filter_map(setting)
                    .map(|(k, v)| (k.to_string(), v)),
            );
        }
    }
    lines.extend(
        defines
            .iter()
            .filter_map(|d| setting(d))
            .map(|(k, v)| (k.to_string(), v)),
    );
    let ext_dir = lines
        .iter()
        .rev()
        .find(|(k, _)| k == "extension_dir")
        .map(|(_, v)| PathBuf::from(v))
        .unwrap_or_else(|| PathBuf::from(corral_config::paths::PHP_EXTENSION_DIR));
    let mut out = Vec::new();
    for kind in ["zend_extension", "extension"] {
        for (_, name) in lines.iter().filter(|(k, _)| k == kind) {
            if let Some(p) = resolve_extension(&ext_dir, name) {
                if !out.contains(&p) {
                    out.push(p);
                }
            }
        }
    }
    out
}

/// `key = value` of one ini line, the value unquoted and without a
/// trailing comment; None for comments, sections and other lines.
fn setting(line: &str) -> Option<(&str, String)> {
    let line = line.trim();
    if line.starts_with(';') || line.starts_with('[') {
        return None;
    }
    let (k, v) = line.split_once('=')?;
    let v = v.trim();
    let v = match v.chars().next() {
        Some(q @ ('"' | '\'')) => v[1..].split(q).next().unwrap_or(""),
        _ => v.split(';').next().unwrap_or("").trim(),
    };
    Some((k.trim(), v.to_string()))
}

/// Where PHP looks for `name`: as given when it has a slash (relative to
/// extension_dir for a relative one), else `extension_dir/name`, else
/// `extension_dir/name.so`.
fn resolve_extension(ext_dir: &Path, name: &str) -> Option<PathBuf> {
    if name.is_empty() {
        return None;
    }
    let direct = ext_dir.join(name);
    if name.contains('/') {
        return Some(direct).filter(|p| p.is_file());
    }
    if direct.is_file() {
        return Some(direct);
    }
    Some(ext_dir.join(format!("{name}.so"))).filter(|p| p.is_file())
}

pub fn fingerprint(php_args: &[String]) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    for f in files(php_args) {
        f.hash(&mut h);
        std::fs::read(&f).unwrap_or_default().hash(&mut h);
    }
    if let Ok(m) = std::fs::metadata(LIBPHP).and_then(|m| m.modified()) {
        m.hash(&mut h);
    }
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preload_lists_what_php_would_load_in_its_order() {
        let dir = std::env::temp_dir().join(format!("corral-preload-{}", std::process::id()));
        let ext = dir.join("ext");
        std::fs::create_dir_all(&ext).unwrap();
        for f in ["a.so", "b.so", "opcache.so", "plain"] {
            std::fs::write(ext.join(f), "").unwrap();
        }
        std::fs::write(
            dir.join("php.ini"),
            format!(
                "; extension=commented\n[PHP]\nextension_dir = \"{}\"\nextension=a\nextension = \"b.so\" ; two\nextension=missing\nzend_extension=opcache\nextension=plain\nextension=a.so\n",
                ext.display()
            ),
        )
        .unwrap();
        let defines = vec![format!("extension={}/b.so", ext.display())];
        let got = preload_from(&[dir.join("php.ini")], &defines);
        assert_eq!(
            got,
            vec![
                ext.join("opcache.so"),
                ext.join("a.so"),
                ext.join("b.so"),
                ext.join("plain")
            ],
            "zend_extension first, each once, missing ones left to PHP"
        );
        assert!(preload(&["-n".to_string()]).is_empty());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn follows_the_ini_file() {
        let dir = std::env::temp_dir().join(format!("corral-ini-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("php.ini"), "precision=5\n").unwrap();
        let args = vec!["-c".to_string(), dir.display().to_string()];
        assert_eq!(files(&args)[0], dir.join("php.ini"));
        let a = fingerprint(&args);
        assert_eq!(a, fingerprint(&args));
        std::fs::write(dir.join("php.ini"), "precision=6\n").unwrap();
        assert_ne!(a, fingerprint(&args));
        assert!(files(&["-n".to_string()]).is_empty());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
