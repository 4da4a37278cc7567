//! `corral site add|set --disk-quota`: on a loop-mounted ext4 image that
//! the test makes and mounts as the sandbox's home base. Without quota
//! support the command fails with an error that names the filesystem and
//! what to change, and rolls back; with it, PHP writing past the quota gets
//! EDQUOT. The mount and the loop device go away even when a test fails.

mod common;
mod sites_support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{require_bin, require_root};
use sites_support::*;

/// An ext4 image on a loop device, mounted on `point`; unmounted and
/// detached on drop.
struct LoopMount {
    point: PathBuf,
    device: String,
    _image_dir: tempfile::TempDir,
}

impl LoopMount {
    /// `Err` carries why it could not be mounted (mkfs/mount output).
    fn new(point: &Path, mkfs_opts: &[&str], mount_opts: &str) -> Result<LoopMount, String> {
        let image_dir = common::temp_dir("quota-img");
        let image = image_dir.path().join("home.img");
        let run = |cmd: &mut Command| -> Result<String, String> {
            let o = cmd.output().map_err(|e| format!("{cmd:?}: {e}"))?;
            if o.status.success() {
                Ok(String::from_utf8_lossy(&o.stdout).trim().to_string())
            } else {
                Err(format!(
                    "{cmd:?}: {}{}",
                    String::from_utf8_lossy(&o.stdout),
                    String::from_utf8_lossy(&o.stderr)
                ))
            }
        };
        run(Command::new("truncate").args(["-s", "64M"]).arg(&image))?;
        run(Command::new("mkfs.ext4")
            .args(["-q", "-F"])
            .args(mkfs_opts)
            .arg(&image))?;
        let device = run(Command::new("losetup").args(["-f", "--show"]).arg(&image))?;
        let m = LoopMount {
            point: point.to_path_buf(),
            device,
            _image_dir: image_dir,
        };
        let mut mount = Command::new("mount");
        if !mount_opts.is_empty() {
            mount.args(["-o", mount_opts]);
        }
        // On failure `m` drops here and detaches the loop device.
        run(mount.arg(&m.device).arg(point))?;
        Ok(m)
    }

    fn remount(&self, opts: &str) {
        let ok = |c: &mut Command| assert!(c.status().unwrap().success(), "{c:?}");
        ok(Command::new("umount").arg(&self.point));
        let mut mount = Command::new("mount");
        if !opts.is_empty() {
            mount.args(["-o", opts]);
        }
        ok(mount.arg(&self.device).arg(&self.point));
    }
}

impl Drop for LoopMount {
    fn drop(&mut self) {
        let mounted = || {
            fs::read_to_string("/proc/self/mountinfo")
                .unwrap_or_default()
                .lines()
                .any(|l| l.split(' ').nth(4) == Some(&*self.point.to_string_lossy()))
        };
        if mounted() {
            let _ = Command::new("umount").arg(&self.point).status();
        }
        if mounted() {
            // Something still holds it open: detach it lazily.
            let _ = Command::new("umount").arg("-l").arg(&self.point).status();
        }
        let _ = Command::new("losetup").arg("-d").arg(&self.device).status();
    }
}

fn ready() -> bool {
    require_root()
        && require_bin("setfacl").is_some()
        && require_bin("mkfs.ext4").is_some()
        && require_bin("losetup").is_some()
}

fn domain(tag: &str) -> String {
    format!("{tag}{}.test", std::process::id())
}

#[test]
fn disk_quota_without_quota_support_is_a_clear_error_and_rolls_back() {
    if !ready() {
        return;
    }
    let sb = Sandbox::new("noquota");
    let home = sb.path("home");
    let mnt = LoopMount::new(&home, &[], "").expect("plain ext4 on a loop device");
    let u = user_name("q");
    let _users = UserGuard(vec![u.clone()]);
    let env = sb.env(None, None);
    let d = domain("q");
    let before = sb.snapshot(std::slice::from_ref(&u));

    let o = sb.site(
        &env,
        &[],
        &["add", &d, "--user", &u, "--disk-quota", "8M", "--offline"],
    );
    assert_eq!(o.code, Some(1), "{}", o.all());
    let want = format!(
        "filesystem {} (ext4 on {}) has no group quotas: it is not mounted with grpquota",
        home.display(),
        mnt.device
    );
    assert!(o.stderr.contains(&want), "{}", o.all());
    assert!(
        o.stderr.contains("usrquota,grpquota"),
        "says what to do: {}",
        o.all()
    );
    assert!(o.stderr.contains("step 'disk-quota' failed") && o.stderr.contains("rolled back"));
    assert!(common::uid_of(&u).is_none(), "user left behind");
    let after = sb.snapshot(std::slice::from_ref(&u));
    assert!(before == after, "{}", snapshot_diff(&before, &after));

    // Mounted with grpquota but never turned on: a different reason.
    mnt.remount("grpquota");
    let o = sb.site(
        &env,
        &[],
        &["add", &d, "--user", &u, "--disk-quota", "8M", "--offline"],
    );
    assert_eq!(o.code, Some(1), "{}", o.all());
    assert!(
        o.stderr
            .contains("mounted with grpquota but quotas are not turned on"),
        "{}",
        o.all()
    );
    assert!(common::uid_of(&u).is_none());

    // Without --disk-quota the filesystem is not asked; set then refuses
    // and leaves the site as it was.
    ok(&sb.site(&env, &[], &["add", &d, "--user", &u, "--offline"]));
    let registry = sb.path("state").join(format!("{d}.json"));
    let rec = fs::read_to_string(&registry).unwrap();
    let o = sb.site(&env, &[], &["set", &d, "--disk-quota", "8M", "--offline"]);
    assert_eq!(o.code, Some(1), "{}", o.all());
    assert!(o.stderr.contains("has no group quotas"), "{}", o.all());
    assert_eq!(fs::read_to_string(&registry).unwrap(), rec);
    ok(&sb.site(&env, &[], &["remove", &d, "--yes"]));
}

#[test]
fn php_writing_past_the_disk_quota_gets_edquot() {
    if !ready() || require_bin("nginx").is_none() {
        return;
    }
    let sb = Sandbox::new("quota");
    let home = sb.path("home");
    let _mnt = match LoopMount::new(&home, &["-O", "quota"], "usrquota,grpquota") {
        Ok(m) => m,
        Err(why) => {
            // Debian's kernels can (CONFIG_QFMT_V2); some VM kernels cannot.
            common::skip(&format!(
                "this kernel cannot mount ext4 with the quota feature: {why}"
            ));
            return;
        }
    };
    let u = user_name("w");
    let _users = UserGuard(vec![u.clone()]);
    let corral = sb.start_corral();
    let Some(nginx) = SitesNginx::start(&sb.path("nginx")) else {
        return;
    };
    let env = sb.env(Some(&corral), Some(&nginx));
    let d = domain("w");
    ok(&sb.site(&env, &[], &["add", &d, "--user", &u, "--disk-quota", "8M"]));
    let tmp = sb.home(&u).join("tmp");
    write_as_owner(
        &sb.docroot(&u, &d).join("fill.php"),
        &format!(
            r#"<?php
$n = (int) $_GET['mib'] << 20;
$r = @file_put_contents('{}/fill-' . $_GET['mib'], str_repeat('x', $n));
echo $r === $n ? "wrote $r" : 'failed: ' . (error_get_last()['message'] ?? '?');
"#,
            tmp.display()
        ),
        &u,
    );
    let r = nginx.get(&d, "/fill.php?mib=2");
    assert_eq!(
        r.body,
        format!("wrote {}", 2 << 20),
        "{}",
        nginx.error_log()
    );
    let r = nginx.get(&d, "/fill.php?mib=16");
    assert!(
        r.body.starts_with("failed: ") && r.body.contains("errno=122 Disk quota exceeded"),
        "{}",
        r.body
    );
    // Raised by site set: the same write fits.
    fs::remove_file(tmp.join("fill-16")).ok();
    ok(&sb.site(&env, &[], &["set", &d, "--disk-quota", "32M"]));
    let r = nginx.get(&d, "/fill.php?mib=16");
    assert_eq!(r.body, format!("wrote {}", 16 << 20));
    ok(&sb.site(&env, &[], &["remove", &d, "--yes"]));
}
