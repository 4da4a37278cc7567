//! The `disk-quota` step of `site add/set/enable/disable/remove`: the
//! site group's block limit on the filesystem of its home, through the
//! transaction so that a later failure puts the old limit back.

use std::path::Path;

use crate::error::Result;
use crate::journal::Txn;
use crate::quota;

/// Converges the group's limit to `want` (bytes; `None` = no limit).
/// `had` is what the registry recorded before: a site that never had a
/// quota is not probed at all, so hosts without quota support are
/// unaffected unless `--disk-quota` is asked for.
pub fn converge(
    t: &mut Txn,
    home: &Path,
    gid: Option<u32>,
    want: Option<u64>,
    had: Option<u64>,
) -> Result<()> {
    if want.is_none() && had.is_none() {
        return Ok(());
    }
    // A dry run may not have created the home: ask about its parent.
    let probe = if home.exists() {
        home
    } else {
        home.parent().unwrap_or(home)
    };
    let fs = quota::group_quota_fs(probe)?;
    let Some(gid) = gid else {
        // Dry run of a new site: no group yet.
        t.note(format!(
            "set the disk quota of the new group on {} to {}",
            fs.device.display(),
            want.map(crate::sizing::mib)
                .unwrap_or_else(|| "none".into())
        ));
        return Ok(());
    };
    t.ensure_group_quota(&fs.device, gid, want.unwrap_or(0))?;
    Ok(())
}
