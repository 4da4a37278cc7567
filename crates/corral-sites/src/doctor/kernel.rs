//! Host-wide checks: the link-protection sysctls, Landlock, namespaces and
//! disk quotas on the homes' filesystem.

use std::path::Path;
use std::process::{Command, Stdio};

use super::Finding;

/// (sysctl, value wanted, what it stops).
const SYSCTLS: &[(&str, u32, &str)] = &[
    (
        "fs.protected_symlinks",
        1,
        "a tenant's symlink in a shared sticky dir (/tmp) is not followed by others, root included",
    ),
    (
        "fs.protected_hardlinks",
        1,
        "a tenant cannot hard-link files it does not own (another site's, setuid binaries)",
    ),
    (
        "fs.protected_regular",
        2,
        "O_CREAT opens of files another user planted in sticky world- or group-writable dirs fail",
    ),
    (
        "fs.protected_fifos",
        2,
        "the same for FIFOs planted in shared sticky dirs",
    ),
];

/// One finding per link-protection sysctl, from /proc/sys.
pub fn sysctls() -> Vec<Finding> {
    SYSCTLS
        .iter()
        .map(|(name, want, why)| {
            let file = format!("/proc/sys/{}", name.replace('.', "/"));
            match std::fs::read_to_string(&file) {
                Ok(v) => {
                    let v = v.trim().to_string();
                    match v.parse::<u32>() {
                        Ok(n) if n >= *want => Finding::ok(*name, v, *why),
                        _ => Finding::weak(
                            *name,
                            v,
                            format!(
                                "set it to {want} (sysctl -w {name}={want}, and in /etc/sysctl.d/) so that {why}"
                            ),
                        ),
                    }
                }
                Err(e) => Finding::weak(*name, "unreadable", format!("{file}: {e}")),
            }
        })
        .collect()
}

/// The Landlock ABI the kernel offers.
pub fn landlock() -> Finding {
    use corral_sys::nix::errno::Errno;
    match corral_sys::landlock_abi::landlock_abi() {
        Ok(abi) if abi >= 4 => Finding::ok(
            "landlock",
            format!("ABI {abi}"),
            "pools can be held to their own files and denied TCP connects to other pools",
        ),
        Ok(abi) => Finding::weak(
            "landlock",
            format!("ABI {abi}"),
            "file rules only: ABI 4 (Linux 6.7) is needed to deny a pool TCP connects to another pool's FastCGI port; upgrade the kernel",
        ),
        Err(Errno::EOPNOTSUPP) => Finding::weak(
            "landlock",
            "disabled",
            "built in but not enabled: add landlock to the lsm= boot parameter",
        ),
        Err(e) => Finding::weak(
            "landlock",
            "unsupported",
            format!("the kernel has no Landlock ({}): use Linux 5.13+ with CONFIG_SECURITY_LANDLOCK", e.desc()),
        ),
    }
}

/// Whether a mount and an IPC namespace can be created here, tried for
/// real with unshare(1) (corral does the same as root in the prototype).
pub fn namespaces() -> Finding {
    let check = "namespaces";
    for limit in ["max_mnt_namespaces", "max_ipc_namespaces"] {
        let file = format!("/proc/sys/user/{limit}");
        if std::fs::read_to_string(&file).is_ok_and(|v| v.trim() == "0") {
            return Finding::weak(
                check,
                format!("user.{limit} = 0"),
                format!("set user.{limit} above 0 so pools get private /tmp and IPC"),
            );
        }
    }
    let r = Command::new("unshare")
        .args(["--mount", "--ipc", "true"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output();
    match r {
        Ok(o) if o.status.success() => Finding::ok(
            check,
            "mount+ipc",
            "pools get private /tmp, /var/tmp, /dev/shm and SysV IPC",
        ),
        Ok(o) => Finding::weak(
            check,
            "refused",
            format!(
                "unshare --mount --ipc failed ({}); run corral as root outside a restricted container",
                String::from_utf8_lossy(&o.stderr).trim()
            ),
        ),
        Err(e) => Finding::weak(check, "unknown", format!("cannot run unshare(1): {e} (install util-linux)")),
    }
}

/// Whether `--disk-quota` can work on the homes' filesystem.
pub fn quota(home_base: &Path) -> Finding {
    let check = format!("disk quota ({})", home_base.display());
    match crate::quota::group_quota_fs(home_base) {
        Ok(fs) => Finding::ok(
            check,
            format!(
                "{} on {}, group quotas on",
                fs.mount.fstype,
                fs.device.display()
            ),
            "corral site add --disk-quota SIZE caps what a site can write",
        ),
        Err(e) => Finding::weak(
            check,
            "none",
            format!("a tenant can fill the disk for all: {e}"),
        ),
    }
}
