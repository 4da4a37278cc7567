//! Relative path resolution as php-fpm's `fpm_evaluate_full_path` does it.
//!
//! A relative value becomes `<pool prefix | -p prefix | default>/<value>`
//! by plain string joining (no normalisation: `$prefix/x` gives `/usr//x`,
//! and php-fpm prints exactly that in its messages).

use std::path::Path;

/// Install prefix of Debian's php-fpm8.2: relative paths land under it.
pub const PHP_PREFIX: &str = "/usr";
/// Where relative `pid` and `error_log` go when no `-p` is given.
pub const PHP_LOCALSTATEDIR: &str = "/var";
/// Debian's php-fpm 8.2: its configuration file (the default `-y`).
pub const DEBIAN_FPM_CONFIG: &str = "/etc/php/8.2/fpm/php-fpm.conf";
/// Debian's php-fpm 8.2 reads php.ini from here (and `conf.d/` below it);
/// corral reads the same files, not the embed SAPI's /etc/php/8.2/embed.
pub const FPM_PHP_INI_DIR: &str = "/etc/php/8.2/fpm";
/// Debian's PHP 8.2 extension_dir when php.ini does not set one.
pub const PHP_EXTENSION_DIR: &str = "/usr/lib/php/20220829";

/// Join `value` to the first prefix that is set, unless it is absolute.
pub fn full_path(
    value: &str,
    pool_prefix: Option<&str>,
    global_prefix: Option<&Path>,
    default_prefix: Option<&str>,
) -> String {
    if value.starts_with('/') {
        return value.to_string();
    }
    let prefix = prefix_for(pool_prefix, global_prefix, default_prefix);
    format!("{prefix}/{value}")
}

/// The prefix php-fpm would use: pool, then global (`-p`), then default.
pub fn prefix_for(
    pool_prefix: Option<&str>,
    global_prefix: Option<&Path>,
    default_prefix: Option<&str>,
) -> String {
    match (pool_prefix, global_prefix) {
        (Some(p), _) => p.to_string(),
        (None, Some(g)) => g.display().to_string(),
        (None, None) => default_prefix.unwrap_or(PHP_PREFIX).to_string(),
    }
}

/// `stat` + S_ISDIR, following symlinks, as `fpm_conf_is_dir`.
pub fn is_dir(path: &str) -> bool {
    Path::new(path).is_dir()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolution_order() {
        assert_eq!(full_path("/abs", Some("/p"), None, None), "/abs");
        assert_eq!(
            full_path("x", Some("/p"), Some(Path::new("/g")), None),
            "/p/x"
        );
        assert_eq!(full_path("x", None, Some(Path::new("/g")), None), "/g/x");
        assert_eq!(full_path("x", None, None, None), "/usr/x");
        assert_eq!(
            full_path("log/a", None, None, Some(PHP_LOCALSTATEDIR)),
            "/var/log/a"
        );
    }
}
