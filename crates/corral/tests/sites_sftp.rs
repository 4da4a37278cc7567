//! Owner access: `corral site add --sftp-key` and `corral site sftp`, with
//! Debian's real sshd (its own port on 127.0.0.1, the drop-in dir that
//! `corral site` writes to included like Debian's `sshd_config.d`), the
//! real `sftp`/`ssh` clients, a real corral and a real nginx.

mod common;
mod sites_support;

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;

use common::{require_bin, require_root};
use sites_support::sshd::{keygen, SitesSshd};
use sites_support::*;

fn ready() -> bool {
    require_root() && require_bin("nginx").is_some() && require_bin("setfacl").is_some()
}

const HELLO_PHP: &str = "<?php echo 'sftp-', 6 * 7, ' as ', get_current_user();\n";

fn acl_of(p: &Path) -> String {
    let o = Command::new("getfacl")
        .args(["--absolute-names", "--omit-header"])
        .arg(p)
        .output()
        .unwrap();
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn fingerprint(pubkey: &Path) -> String {
    let o = Command::new("ssh-keygen")
        .args(["-l", "-E", "sha256", "-f"])
        .arg(pubkey)
        .output()
        .unwrap();
    String::from_utf8_lossy(&o.stdout)
        .split_whitespace()
        .nth(1)
        .unwrap()
        .to_string()
}

fn sshd_test_passes(sshd: &SitesSshd) {
    let st = Command::new("sh")
        .args(["-c", &sshd.test_cmd()])
        .status()
        .unwrap();
    assert!(st.success(), "sshd -t fails:\n{}", sshd.log());
}

#[test]
fn owner_uploads_over_sftp_and_stays_in_the_chroot() {
    if !ready() {
        return;
    }
    // sshd chroots only below root-owned dirs that no group or other may
    // write: the sandbox is under /var/lib, not /tmp (1777).
    let sb = Sandbox::outside_tmp("sftp");
    let Some(sshd) = SitesSshd::start(&sb.path("ssh/sshd_config.d")) else {
        return;
    };
    let (ua, ub) = (user_name("sa"), user_name("sb"));
    let _users = UserGuard(vec![ua.clone(), ub.clone()]);
    let corral = sb.start_corral();
    let Some(nginx) = SitesNginx::start(&sb.path("nginx")) else {
        return;
    };
    let mut env = sb.env(Some(&corral), Some(&nginx));
    env.extend(sshd.env());
    let keys = common::temp_dir("sftp-keys");
    let (ka, kb) = (keys.path().join("a"), keys.path().join("b"));
    keygen(&ka, "owner-a@laptop");
    keygen(&kb, "owner-b@laptop");
    let (ka_pub, kb_pub) = (ka.with_extension("pub"), kb.with_extension("pub"));
    let (da, db) = (
        format!("sa{}.test", std::process::id()),
        format!("sb{}.test", std::process::id()),
    );
    let dropin_a = sb.path(&format!("ssh/sshd_config.d/corral-sftp-{ua}.conf"));
    let keys_a = sb.path(&format!("ssh/corral-keys/{ua}"));

    // A dry run shows the drop-in and the steps, and writes nothing.
    let add_a = [
        "add",
        da.as_str(),
        "--user",
        ua.as_str(),
        "--sftp-key",
        ka_pub.to_str().unwrap(),
    ];
    let mut dry = add_a.to_vec();
    dry.push("--dry-run");
    let o = ok(&sb.site(&env, &[], &dry)).stdout.clone();
    for must in [
        "ChrootDirectory",
        "ForceCommand internal-sftp -u 0027",
        "sshd-config",
        "sshd-test",
        "sshd-reload",
        &format!("(0750, root:{ua})"),
    ] {
        assert!(o.contains(must), "dry run lacks {must}:\n{o}");
    }
    assert!(!dropin_a.exists() && !keys_a.exists());

    ok(&sb.site(&env, &[], &add_a));
    ok(&sb.site(
        &env,
        &[],
        &[
            "add",
            &db,
            "--user",
            &ub,
            "--sftp-key",
            &fs::read_to_string(&kb_pub).unwrap(),
        ],
    ));
    // Idempotent: the same add again changes nothing.
    let o = ok(&sb.site(&env, &[], &add_a)).stdout.clone();
    assert!(o.contains("unchanged"), "{o}");

    // The layout: the home is root's (sshd's rule for a chroot) with the
    // same mode and ACL; below it everything is the owner's.
    let home = sb.home(&ua);
    let uid_a = common::uid_of(&ua).unwrap();
    let gid_a = common::gid_of_group(&ua).unwrap();
    let m = fs::metadata(&home).unwrap();
    assert_eq!((m.uid(), m.gid(), m.mode() & 0o7777), (0, gid_a, 0o750));
    assert!(
        acl_of(&home).contains("user:www-data:--x"),
        "{}",
        acl_of(&home)
    );
    let m = fs::metadata(home.join("htdocs")).unwrap();
    assert_eq!((m.uid(), m.gid()), (uid_a, gid_a));
    // Keys and drop-in: root's, outside the home.
    for f in [&keys_a, &dropin_a] {
        let m = fs::metadata(f).unwrap();
        assert_eq!((m.uid(), m.mode() & 0o777), (0, 0o644), "{}", f.display());
    }
    let keys_before = fs::read_to_string(&keys_a).unwrap();
    assert!(keys_before.contains(fs::read_to_string(&ka_pub).unwrap().trim()));
    sshd_test_passes(&sshd);
    // The Match ends with the drop-in: the rest of the config (Debian's
    // X11Forwarding yes, no chroot) still holds for everyone else.
    let effective = |user: &str| {
        let o = Command::new(sites_support::sshd::SSHD)
            .args(["-T", "-f"])
            .arg(sshd.config())
            .args(["-C", &format!("user={user},host=localhost,addr=127.0.0.1")])
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let root = effective("root");
    assert!(root.contains("x11forwarding yes") && root.contains("chrootdirectory none"));
    assert!(root.contains("forcecommand none"), "{root}");
    let owner = effective(&ua);
    assert!(owner.contains("x11forwarding no") && owner.contains("permittty no"));
    assert!(
        owner.contains(&format!("chrootdirectory {}", home.display())),
        "{owner}"
    );

    // `site sftp` shows the key by its fingerprint.
    let o = ok(&sb.site(&env, &[], &["sftp", &da, "--json"]))
        .stdout
        .clone();
    let v: serde_json::Value = serde_json::from_str(&o).unwrap();
    assert_eq!(v["sftp"], true);
    assert_eq!(v["keys"][0]["fingerprint"], fingerprint(&ka_pub).as_str());
    assert_eq!(v["keys"][0]["comment"], "owner-a@laptop");

    // The owner uploads a PHP file; the session starts in the site dir.
    let local = common::temp_dir("sftp-local");
    let hello = local.path().join("hello.php");
    fs::write(&hello, HELLO_PHP).unwrap();
    fs::set_permissions(&hello, fs::Permissions::from_mode(0o644)).unwrap();
    let got_passwd = local.path().join("passwd");
    let batch = format!(
        "pwd\nput {} hello.php\nls -1 /\n-get /etc/passwd {}\n-put {} /planted.php\n-mkdir /.ssh\n-cd /etc\n",
        hello.display(),
        got_passwd.display(),
        hello.display()
    );
    let o = sshd.sftp(&ua, &ka, &batch);
    let out = o.all();
    assert!(
        out.contains(&format!("Remote working directory: /htdocs/{da}")),
        "{out}\n{}",
        sshd.log()
    );
    // `cd /` is the home: only its four dirs.
    let listed: Vec<&str> = o
        .stdout
        .lines()
        .map(str::trim)
        .filter(|l| !l.starts_with("sftp>") && !l.is_empty())
        .filter(|l| !l.contains("Remote working directory") && !l.starts_with("Uploading"))
        .collect();
    for dir in ["/htdocs", "/logs", "/sessions", "/tmp"] {
        assert!(listed.contains(&dir), "{dir} not in {listed:?}");
    }
    assert!(!listed
        .iter()
        .any(|l| l.contains("home") || l.contains("etc")));
    assert!(!got_passwd.exists(), "read /etc/passwd from the chroot");
    assert!(!home.join("planted.php").exists() && !home.join(".ssh").exists());
    assert_eq!(fs::read_to_string(&keys_a).unwrap(), keys_before);

    // What was uploaded: the owner's, with the docroot's default ACL, so
    // PHP (group) and nginx (www-data) read it and nginx runs it.
    let up = sb.docroot(&ua, &da).join("hello.php");
    let m = fs::metadata(&up).unwrap();
    assert_eq!((m.uid(), m.gid()), (uid_a, gid_a), "owner of the upload");
    assert_eq!(m.mode() & 0o111, 0, "nothing uploaded is executable");
    // The docroot's default ACL, masked by the mode the client sent
    // (0644): read for the web server and PHP, execute for no one.
    let acl = acl_of(&up);
    assert!(
        acl.contains("user:www-data:") && acl.contains("mask::r--"),
        "{acl}"
    );
    assert!(readable_by("www-data", &up) && readable_by(&format!("{ua}-php"), &up));
    let r = nginx.get(&da, "/hello.php");
    assert_eq!(r.body, format!("sftp-42 as {ua}"), "{}", nginx.error_log());

    // No shell, no command, no forwarding.
    let o = sshd.ssh(&ua, &ka, &["-T"]);
    assert!(!o.all().contains("uid="), "a command ran: {}", o.all());
    let o = sshd.ssh(&ua, &ka, &["-tt"]);
    assert!(!o.all().contains("uid="), "a shell ran: {}", o.all());

    // The other site's owner: its own chroot, nothing of A's; its key is
    // not A's login.
    let stolen = local.path().join("stolen.php");
    let batch = format!(
        "ls -1 /\n-get {} {}\n-get ../{ua}/htdocs/{da}/hello.php {}\n-ls /../{ua}\n",
        up.display(),
        stolen.display(),
        stolen.display()
    );
    let o = sshd.sftp(&ub, &kb, &batch);
    assert!(o.stdout.contains("/htdocs"), "{}", o.all());
    assert!(!stolen.exists(), "B fetched A's file");
    let o = sshd.sftp(&ua, &kb, "pwd\n");
    assert_ne!(o.code, Some(0), "B's key logged in as A: {}", o.all());
    assert!(o.all().contains("Permission denied"), "{}", o.all());

    // Keys come and go; the last one removed takes SFTP away and gives the
    // home back to the owner.
    ok(&sb.site(
        &env,
        &[],
        &["sftp", &da, "--remove-key", &fingerprint(&ka_pub)],
    ));
    assert!(!dropin_a.exists() && !keys_a.exists());
    assert_eq!(fs::metadata(&home).unwrap().uid(), uid_a);
    let o = sshd.sftp(&ua, &ka, "pwd\n");
    assert_ne!(o.code, Some(0), "logged in without a key: {}", o.all());
    ok(&sb.site(
        &env,
        &[],
        &["sftp", &da, "--add-key", ka_pub.to_str().unwrap()],
    ));
    assert_eq!(fs::metadata(&home).unwrap().uid(), 0);
    let o = sshd.sftp(&ua, &ka, "pwd\n");
    assert_eq!(o.code, Some(0), "{}\n{}", o.all(), sshd.log());
    sshd_test_passes(&sshd);

    // Removal: user, keys and drop-in gone, sshd's config still good, the
    // other owner still served.
    ok(&sb.site(&env, &[], &["remove", &da, "--yes", "--purge"]));
    assert!(!dropin_a.exists() && !keys_a.exists());
    assert!(common::uid_of(&ua).is_none() && !home.exists());
    sshd_test_passes(&sshd);
    let o = sshd.sftp(&ua, &ka, "pwd\n");
    assert_ne!(o.code, Some(0), "{}", o.all());
    let o = sshd.sftp(&ub, &kb, "pwd\n");
    assert_eq!(o.code, Some(0), "{}\n{}", o.all(), sshd.log());
    ok(&sb.site(&env, &[], &["remove", &db, "--yes", "--purge"]));
    let left: Vec<_> = fs::read_dir(sb.path("ssh/sshd_config.d"))
        .unwrap()
        .collect();
    assert!(left.is_empty(), "drop-ins left: {left:?}");
    sshd_test_passes(&sshd);
}

/// A failure at any SFTP step, and a drop-in sshd refuses, leave the host
/// as it was; so does a failure at any step of removing an SFTP site.
#[test]
fn sftp_steps_roll_back() {
    if !ready() {
        return;
    }
    let sb = Sandbox::outside_tmp("sftprb");
    let Some(sshd) = SitesSshd::start(&sb.path("ssh/sshd_config.d")) else {
        return;
    };
    let u = user_name("sr");
    let _users = UserGuard(vec![u.clone()]);
    let users = [u.clone()];
    let corral = sb.start_corral();
    let Some(nginx) = SitesNginx::start(&sb.path("nginx")) else {
        return;
    };
    let mut env = sb.env(Some(&corral), Some(&nginx));
    env.extend(sshd.env());
    let keys = common::temp_dir("sftp-keys-rb");
    let k = keys.path().join("k");
    keygen(&k, "rollback");
    let kpub = k.with_extension("pub");
    let d = format!("sr{}.test", std::process::id());
    let add = [
        "add",
        &d,
        "--user",
        &u,
        "--sftp-key",
        kpub.to_str().unwrap(),
    ];
    // The first add closes the pool dir and keeps it so (see sites.rs).
    fs::set_permissions(sb.path("pool.d"), fs::Permissions::from_mode(0o700)).unwrap();

    let before = sb.snapshot(&users);
    for step in [
        "sftp-keys",
        "sshd-config",
        "sshd-test",
        "sshd-reload",
        "registry",
    ] {
        let o = sb.site(&env, &[("CORRAL_SITES_FAIL_AT", step)], &add);
        assert_ne!(o.code, Some(0), "injected failure at {step} did not fail");
        assert!(o.stderr.contains("rolled back"), "{step}: {}", o.all());
        let after = sb.snapshot(&users);
        assert!(
            before == after,
            "{step}:\n{}",
            snapshot_diff(&before, &after)
        );
    }
    // No OpenSSH server (no drop-in dir): refused before any step (64).
    let o = sb.site(
        &env,
        &[("CORRAL_SITES_SSHD_CONFIG_DIR", "/nonexistent/sshd_config.d")],
        &add,
    );
    assert_eq!(o.code, Some(64), "{}", o.all());
    assert!(o.all().contains("openssh-server"), "{}", o.all());
    assert!(!o.stdout.contains("[group]"), "a step ran: {}", o.all());
    assert!(before == sb.snapshot(&users));
    // sshd refuses the config: nothing stays, the running sshd never saw it.
    let o = sb.site(&env, &[("CORRAL_SITES_SSHD_TEST", "false")], &add);
    assert_ne!(o.code, Some(0), "{}", o.all());
    let after = sb.snapshot(&users);
    assert!(before == after, "{}", snapshot_diff(&before, &after));
    sshd_test_passes(&sshd);

    ok(&sb.site(&env, &[], &add));
    let with_site = sb.snapshot(&users);
    for step in ["sftp-keys", "sshd-config", "sshd-test", "sshd-reload"] {
        let o = sb.site(
            &env,
            &[("CORRAL_SITES_FAIL_AT", step)],
            &["remove", &d, "--yes", "--purge"],
        );
        assert_ne!(o.code, Some(0), "injected failure at {step} did not fail");
        let after = sb.snapshot(&users);
        assert!(
            with_site == after,
            "remove {step}:\n{}",
            snapshot_diff(&with_site, &after)
        );
    }
    let o = sshd.sftp(&u, &k, "pwd\n");
    assert_eq!(o.code, Some(0), "{}\n{}", o.all(), sshd.log());
    ok(&sb.site(&env, &[], &["remove", &d, "--yes", "--purge"]));
    assert_eq!(sb.snapshot(&users), before);
}
