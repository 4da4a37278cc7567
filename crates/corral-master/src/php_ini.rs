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
