//! Which Landlock ABI the running kernel offers, for host checks
//! (`corral doctor`). Applying a ruleset is `corral-isolation`'s job; this
//! only asks the kernel, which answers without creating anything.

use nix::errno::Errno;

/// `LANDLOCK_CREATE_RULESET_VERSION` (linux/landlock.h): with a null
/// attribute and size 0, the syscall returns the highest ABI version.
const LANDLOCK_CREATE_RULESET_VERSION: u32 = 1 << 0;

/// The Landlock ABI version (1, 2, …), or the errno: `ENOSYS` (kernel
/// without Landlock) or `EOPNOTSUPP` (built in but disabled at boot, e.g.
/// not in `lsm=`).
pub fn landlock_abi() -> Result<u32, Errno> {
    // SAFETY: landlock_create_ruleset(NULL, 0, VERSION) reads no memory
    // and creates no descriptor; it only returns a number or -1/errno.
    let r = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<libc::c_void>(),
            0usize,
            LANDLOCK_CREATE_RULESET_VERSION,
        )
    };
    if r < 0 {
        return Err(Errno::last());
    }
    u32::try_from(r).map_err(|_| Errno::EINVAL)
}

#[cfg(test)]
mod tests {
    use nix::errno::Errno;

    #[test]
    fn agrees_with_the_active_lsm_list() {
        let abi = super::landlock_abi();
        match abi {
            Ok(v) => assert!(v >= 1, "ABI {v}"),
            Err(e) => assert!(matches!(e, Errno::ENOSYS | Errno::EOPNOTSUPP), "{e}"),
        }
        // Where securityfs is mounted, it names the active LSMs.
        if let Ok(lsm) = std::fs::read_to_string("/sys/kernel/security/lsm") {
            let active = lsm.trim().split(',').any(|l| l == "landlock");
            assert_eq!(abi.is_ok(), active, "lsm list {lsm:?}, syscall {abi:?}");
        }
    }
}
