//! As root, every pool must run as a real, non-root user (unless -R).
//! Checked at start-up and again before a reload is applied.

use corral_config::Config;

pub fn check(config: &Config, allow_root: bool) -> Result<(), String> {
    if !corral_sys::cred::is_root() {
        return Ok(());
    }
    for p in &config.pools {
        let Some(user) = &p.user else {
            if allow_root {
                continue;
            }
            return Err(format!("[pool {}] user has not been defined", p.name));
        };
        let account = corral_sys::cred::lookup_user(user)
            .ok_or_else(|| format!("[pool {}] cannot get uid for user '{}'", p.name, user))?;
        let gid = match &p.group {
            Some(g) => corral_sys::cred::lookup_group(g)
                .ok_or_else(|| format!("[pool {}] cannot get gid for group '{}'", p.name, g))?,
            None => account.gid,
        };
        if (account.uid == 0 || gid == 0) && !allow_root {
            return Err(format!(
                "[pool {}] please specify user and group other than root",
                p.name
            ));
        }
    }
    Ok(())
}
