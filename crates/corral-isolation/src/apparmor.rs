//! `apparmor_hat`: the pool changes to a hat (subprofile) of the AppArmor
//! profile the master runs under, as php-fpm's children do
//! (fpm_unix_init_child: aa_getcon, then aa_change_profile to
//! `<current>//<hat>`). Done here through the kernel's procfs interface
//! libapparmor itself uses, so corral needs no libapparmor.
//!
//! The prototype changes once, after dropping to the pool's user and before
//! Landlock; the workers it forks inherit the confinement. When AppArmor
//! is absent the query fails as php-fpm's does (EINVAL), with php-fpm's
//! message, and the pool does not start: a pool that asked to be confined
//! never runs unconfined.

use std::fs;
use std::io;
use std::path::PathBuf;

/// Why the hat could not be put on; the texts are php-fpm's.
#[derive(Debug, thiserror::Error)]
pub enum AppArmorError {
    #[error("failed to query apparmor confinement. Please check if \"/proc/*/attr/current\" is read and writeable.: {}", syserror(.0))]
    Query(#[source] io::Error),
    #[error("failed to change to new confinement ({wanted}). Please check if \"/proc/*/attr/current\" is read and writeable and \"change_profile -> {current}//*\" is allowed.: {}", syserror(.source))]
    Change {
        wanted: String,
        current: String,
        #[source]
        source: io::Error,
    },
}

/// `strerror (errno)`, how php-fpm ends a message about a failed call.
fn syserror(e: &io::Error) -> String {
    match e.raw_os_error() {
        Some(n) => format!(
            "{} ({n})",
            corral_sys::nix::errno::Errno::from_raw(n).desc()
        ),
        None => e.to_string(),
    }
}

/// The process attribute file: the AppArmor-specific one on kernels with
/// stacked LSMs, the shared one otherwise (libapparmor's order).
fn attr_current() -> PathBuf {
    let own = PathBuf::from("/proc/self/attr/apparmor/current");
    if own.exists() {
        own
    } else {
        PathBuf::from("/proc/self/attr/current")
    }
}

/// The label of the current confinement, without its mode: `unconfined`,
/// or `php-fpm` for `php-fpm (enforce)` (aa_getcon's label).
pub fn current_label() -> Result<String, AppArmorError> {
    let raw = fs::read_to_string(attr_current()).map_err(AppArmorError::Query)?;
    Ok(label_of(&raw).to_string())
}

fn label_of(raw: &str) -> &str {
    let line = raw.trim_end_matches(['\n', '\0']);
    match line.rfind(" (") {
        Some(i) if line.ends_with(')') => &line[..i],
        _ => line,
    }
}

/// Changes to `<current label>//<hat>`.
pub fn change_hat(hat: &str) -> Result<(), AppArmorError> {
    let current = current_label()?;
    let wanted = format!("{current}//{hat}");
    fs::write(attr_current(), format!("changeprofile {wanted}")).map_err(|source| {
        AppArmorError::Change {
            wanted: wanted.clone(),
            current: current.clone(),
            source,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_lose_their_mode() {
        assert_eq!(label_of("php-fpm (enforce)\n"), "php-fpm");
        assert_eq!(label_of("/usr/sbin/corral (complain)"), "/usr/sbin/corral");
        assert_eq!(label_of("unconfined\n"), "unconfined");
    }

    #[test]
    fn messages_are_php_fpm_s() {
        let e = AppArmorError::Query(io::Error::from_raw_os_error(22));
        assert_eq!(
            e.to_string(),
            "failed to query apparmor confinement. Please check if \"/proc/*/attr/current\" is read and writeable.: Invalid argument (22)"
        );
        let e = AppArmorError::Change {
            wanted: "php-fpm//www".into(),
            current: "php-fpm".into(),
            source: io::Error::from_raw_os_error(13),
        };
        assert_eq!(
            e.to_string(),
            "failed to change to new confinement (php-fpm//www). Please check if \"/proc/*/attr/current\" is read and writeable and \"change_profile -> php-fpm//*\" is allowed.: Permission denied (13)"
        );
    }
}
