//! As root, every pool must run as a real, non-root user (unless -R).
//! Checked at start-up and again before a reload is applied.

use corral_config::Config;

/// A pool's user or group is missing or is root.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UserError {
    #[error("[pool {0}] user has not been defined")]
    Undefined(String),
    #[error("[pool {pool}] cannot get uid for user '{user}'")]
    NoUser { pool: String, user: String },
    #[error("[pool {pool}] cannot get gid for group '{group}'")]
    NoGroup { pool: String, group: String },
    #[error("[pool {0}] please specify user and group other than root")]
    Root(String),
}

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
        let account = corral_sys::cred::lookup_user(user).ok_or_else(|| UserError::NoUser {
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
