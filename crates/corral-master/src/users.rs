//! The accounts a configuration names, checked as php-fpm checks them:
//! `-t` / `-tt` look up every user and group (fpm_unix_test_config), and
//! as root every pool must run as a real, non-root user unless -R
//! (fpm_unix_conf_wp), at start-up and again before a reload is applied.
//! A user or group given as a number is taken as that id, passwd entry or
//! not, as php-fpm takes it.

use corral_config::{Config, LogLevel};

/// A pool's user or group is missing or is root.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UserError {
    #[error("[pool {0}] user has not been defined")]
    Undefined(String),
    #[error("[pool {pool}] cannot get uid for user '{user}'")]
    NoUser { pool: String, user: String },
    #[error("[pool {pool}] cannot get gid for group '{group}'")]
    NoGroup { pool: String, group: String },
    /// listen.owner; php-fpm reports it as a failed system call, with
    /// errno (0, "Success", for a name that is simply not there).
    #[error("[pool {pool}] cannot get uid for user '{user}': Success (0)")]
    NoListenOwner { pool: String, user: String },
    #[error("[pool {pool}] cannot get gid for group '{group}': Success (0)")]
    NoListenGroup { pool: String, group: String },
    #[error("[pool {0}] please specify user and group other than root")]
    Root(String),
}

impl UserError {
    /// php-fpm's level for each: a pool without a user is an ALERT of its
    /// configuration check, the rest are ERRORs.
    pub fn level(&self) -> LogLevel {
        match self {
            UserError::Undefined(_) => LogLevel::Alert,
            _ => LogLevel::Error,
        }
    }
}

/// `-t`: every user, group, listen.owner and listen.group of every pool
/// exists (numbers always do), as root or not; whether they are root is
/// left to start-up, as in php-fpm.
pub fn test(config: &Config) -> Result<(), UserError> {
    use corral_sys::cred::{is_id, lookup_group, pool_user};
    let group_exists = |g: &str| is_id(g) || lookup_group(g).is_some();
    for p in &config.pools {
        let pool = || p.name.clone();
        if let Some(user) = p.user.as_deref().filter(|u| pool_user(u).is_none()) {
            return Err(UserError::NoUser {
                pool: pool(),
                user: user.to_string(),
            });
        }
        if let Some(group) = p.group.as_deref().filter(|g| !group_exists(g)) {
            return Err(UserError::NoGroup {
                pool: pool(),
                group: group.to_string(),
            });
        }
        if let Some(user) = p.listen_owner.as_deref().filter(|u| pool_user(u).is_none()) {
            return Err(UserError::NoListenOwner {
                pool: pool(),
                user: user.to_string(),
            });
        }
        if let Some(group) = p.listen_group.as_deref().filter(|g| !group_exists(g)) {
            return Err(UserError::NoListenGroup {
                pool: pool(),
                group: group.to_string(),
            });
        }
    }
    Ok(())
}

/// Start-up and reload, as root: each pool's account exists and is not
/// root (unless `allow_root`). A numeric user without a passwd entry has
/// group 0 unless `group` says otherwise, so it needs a group or -R.
pub fn check(config: &Config, allow_root: bool) -> Result<(), UserError> {
    if !corral_sys::cred::is_root() {
        return Ok(());
    }
    for p in &config.pools {
        let Some(user) = &p.user else {
            if allow_root {
                continue;
            }
            return Err(UserError::Undefined(p.name.clone()));
        };
        let account = corral_sys::cred::pool_user(user).ok_or_else(|| UserError::NoUser {
            pool: p.name.clone(),
            user: user.clone(),
        })?;
        let gid = match &p.group {
            Some(g) => corral_sys::cred::lookup_group(g).ok_or_else(|| UserError::NoGroup {
                pool: p.name.clone(),
                group: g.clone(),
            })?,
            None => account.gid,
        };
        if (account.uid == 0 || gid == 0) && !allow_root {
            return Err(UserError::Root(p.name.clone()));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(pool: &str) -> Config {
        let text = format!("[p]\nlisten = /run/p.sock\npm = static\npm.max_children = 1\n{pool}\n");
        let opts = corral_config::LoadOptions {
            allow_run_as_root: true,
            ..Default::default()
        };
        corral_config::parse_str(&text, std::path::Path::new("t.conf"), &opts).unwrap()
    }

    #[test]
    fn the_config_test_looks_up_every_account_by_name_and_takes_numbers() {
        assert_eq!(test(&config("user = nobody\ngroup = nogroup")), Ok(()));
        assert_eq!(
            test(&config(
                "user = 4000000\ngroup = 4000001\nlisten.owner = 4000002\nlisten.group = 4000003"
            )),
            Ok(())
        );
        let no = "corral-no-such-account";
        assert_eq!(
            test(&config(&format!("user = {no}")))
                .unwrap_err()
                .to_string(),
            format!("[pool p] cannot get uid for user '{no}'")
        );
        assert_eq!(
            test(&config(&format!("user = root\ngroup = {no}")))
                .unwrap_err()
                .to_string(),
            format!("[pool p] cannot get gid for group '{no}'")
        );
        assert_eq!(
            test(&config(&format!("user = nobody\nlisten.owner = {no}")))
                .unwrap_err()
                .to_string(),
            format!("[pool p] cannot get uid for user '{no}': Success (0)")
        );
        assert_eq!(
            test(&config(&format!("user = nobody\nlisten.group = {no}")))
                .unwrap_err()
                .to_string(),
            format!("[pool p] cannot get gid for group '{no}': Success (0)")
        );
        // Root is start-up's business, not the test's.
        assert_eq!(test(&config("user = root")), Ok(()));
    }

    #[test]
    fn levels_are_php_fpm_s() {
        assert_eq!(UserError::Undefined("p".into()).level(), LogLevel::Alert);
        assert_eq!(UserError::Root("p".into()).level(), LogLevel::Error);
    }
}
