//! Owner access: SFTP for the site owner, chrooted to the home, with
//! Debian's OpenSSH server (see docs/sites.md, "Owner access (SFTP)").
//!
//! A site with at least one key gets two root-owned files outside the
//! home, both written and removed inside the site's transaction:
//! * `<sshd-config-dir>/corral-sftp-USER.conf`, a `Match User` drop-in
//!   (Debian 12's `sshd_config` includes `sshd_config.d/*.conf`) that
//!   chroots the owner to the home and forces `internal-sftp`;
//! * `<sftp-keys-dir>/USER`, the authorized keys, where the tenant cannot
//!   change them (`AuthorizedKeysFile` points there, not into the home).
//!
//! OpenSSH chroots only into a directory that, with every parent, is
//! root-owned and not writable by group or others; so the home of such a
//! site is `root:USER 0750` (see [`fs_layout`](crate::fs_layout)).

use std::path::{Path, PathBuf};

use crate::error::{Result, SitesError};
use crate::paths::Paths;
use crate::spec::SiteSpec;

/// Key types sshd accepts in an authorized keys file (no options: a line
/// with `command=` or `from=` is refused rather than passed through).
const KEY_TYPES: &[&str] = &[
    "ssh-ed25519",
    "ssh-rsa",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
];

/// The umask `internal-sftp` applies: group read for PHP. Below the
/// docroot the default ACLs decide instead (a default ACL replaces the
/// umask), so uploads there get PHP's and the web server's read entries.
pub const SFTP_UMASK: &str = "0027";

/// `<sshd-config-dir>/corral-sftp-USER.conf`.
pub fn dropin_file(paths: &Paths, user: &str) -> PathBuf {
    paths
        .sshd_config_dir
        .join(format!("corral-sftp-{user}.conf"))
}

/// `<sftp-keys-dir>/USER`.
pub fn keys_file(paths: &Paths, user: &str) -> PathBuf {
    paths.sftp_keys_dir.join(user)
}

/// One authorized key, checked and normalised to `TYPE BASE64 [COMMENT]`.
pub fn parse_key(line: &str) -> Result<String> {
    let bad = |why: &str| {
        SitesError::Usage(format!(
            "--sftp-key: {why}: '{}'",
            line.chars().take(60).collect::<String>()
        ))
    };
    let line = line.trim();
    if line.contains(['\n', '\r', '\0']) {
        return Err(bad("one key per line"));
    }
    let mut words = line.split_whitespace();
    let kind = words.next().ok_or_else(|| bad("empty key"))?;
    if !KEY_TYPES.contains(&kind) {
        return Err(bad(
            "not a public key (expected ssh-ed25519, ssh-rsa, ecdsa-sha2-…; options such as command= are not accepted)",
        ));
    }
    let blob = words
        .next()
        .ok_or_else(|| bad("the key's base64 is missing"))?;
    if blob.len() < 16
        || !blob
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'='))
    {
        return Err(bad("the key's base64 is not valid"));
    }
    let comment: Vec<&str> = words.collect();
    let comment = comment.join(" ");
    if comment.chars().any(char::is_control) {
        return Err(bad("control characters in the comment"));
    }
    Ok(if comment.is_empty() {
        format!("{kind} {blob}")
    } else {
        format!("{kind} {blob} {comment}")
    })
}

/// `--sftp-key FILE|KEY`: the keys of a `.pub`/authorized_keys file
/// (blank and `#` lines skipped), or the key itself.
pub fn keys_from_arg(arg: &str) -> Result<Vec<String>> {
    let text = if Path::new(arg).is_file() {
        std::fs::read_to_string(arg).map_err(|e| SitesError::io(arg, e))?
    } else if arg.contains(char::is_whitespace) {
        arg.to_string()
    } else {
        return Err(SitesError::Usage(format!(
            "--sftp-key: '{arg}' is neither a file nor a public key"
        )));
    };
    let keys: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(parse_key)
        .collect::<Result<_>>()?;
    if keys.is_empty() {
        return Err(SitesError::Usage(format!("--sftp-key: no key in '{arg}'")));
    }
    Ok(keys)
}

/// The `TYPE BASE64` part that identifies a key (comments may differ).
pub fn key_id(key: &str) -> String {
    key.split_whitespace().take(2).collect::<Vec<_>>().join(" ")
}

/// Adds keys not there yet (by [`key_id`]), keeping the order.
pub fn add_keys(have: &mut Vec<String>, new: Vec<String>) {
    for k in new {
        if !have.iter().any(|h| key_id(h) == key_id(&k)) {
            have.push(k);
        }
    }
}

/// Removes the keys matching `what`: a key (or file of keys), or a
/// fingerprint `SHA256:…` as `ssh-keygen -l` prints it. Returns how many.
pub fn remove_keys(have: &mut Vec<String>, what: &str) -> Result<usize> {
    let before = have.len();
    if what.starts_with("SHA256:") {
        let mut kept = Vec::new();
        for k in have.drain(..) {
            if fingerprint(&k)? != what {
                kept.push(k);
            }
        }
        *have = kept;
    } else {
        let ids: Vec<String> = keys_from_arg(what)?.iter().map(|k| key_id(k)).collect();
        have.retain(|k| !ids.contains(&key_id(k)));
    }
    Ok(before - have.len())
}

/// `SHA256:…` of a key, from `ssh-keygen -l` (which also proves the key
/// decodes: a key ssh-keygen cannot read is refused before any step).
pub fn fingerprint(key: &str) -> Result<String> {
    use std::io::Write;
    let mut child = std::process::Command::new("ssh-keygen")
        .args(["-l", "-E", "sha256", "-f", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| SitesError::Command {
            command: "ssh-keygen -l -f -".into(),
            output: format!("{e} (install openssh-client)"),
        })?;
    if let Some(mut stdin) = child.stdin.take() {
        let _ = writeln!(stdin, "{key}");
    }
    let out = child.wait_with_output().map_err(|e| SitesError::Command {
        command: "ssh-keygen -l -f -".into(),
        output: e.to_string(),
    })?;
    let text = String::from_utf8_lossy(&out.stdout);
    match text.split_whitespace().nth(1) {
        Some(fp) if out.status.success() && fp.starts_with("SHA256:") => Ok(fp.to_string()),
        _ => Err(SitesError::Usage(format!(
            "--sftp-key: ssh-keygen cannot read the key '{}': {}",
            key_id(key).chars().take(60).collect::<String>(),
            String::from_utf8_lossy(&out.stderr).trim()
        ))),
    }
}

/// The authorized keys file: one key per line, nothing else.
pub fn keys_text(spec: &SiteSpec) -> String {
    let mut s = format!(
        "# Managed by `corral site` for {}: `corral site sftp` changes it.\n",
        spec.domain
    );
    for k in &spec.sftp_keys {
        s.push_str(k);
        s.push('\n');
    }
    s
}

/// The sshd drop-in for one site owner. Every directive here is allowed in
/// a `Match` block; a `Match` in an included file ends with that file.
pub fn dropin_text(paths: &Paths, spec: &SiteSpec, home: &Path) -> String {
    format!(
        "# Managed by `corral site` for {domain}: SFTP for the owner {user}, chrooted to\n\
         # its home (root-owned, as sshd requires), keys in {keys}.\n\
         # Removed with the site or by `corral site sftp {domain} --off`.\n\
         Match User {user}\n\
         \x20   ChrootDirectory {home}\n\
         \x20   ForceCommand internal-sftp -u {umask} -d /htdocs/{domain}\n\
         \x20   AuthorizedKeysFile {keys}\n\
         \x20   AuthenticationMethods publickey\n\
         \x20   PasswordAuthentication no\n\
         \x20   KbdInteractiveAuthentication no\n\
         \x20   AllowTcpForwarding no\n\
         \x20   AllowStreamLocalForwarding no\n\
         \x20   AllowAgentForwarding no\n\
         \x20   X11Forwarding no\n\
         \x20   PermitTunnel no\n\
         \x20   PermitTTY no\n\
         \x20   PermitUserRC no\n",
        domain = spec.domain,
        user = spec.user,
        home = home.display(),
        keys = keys_file(paths, &spec.user).display(),
        umask = SFTP_UMASK,
    )
}

/// `--sshd-test`, default `/usr/sbin/sshd -t` (the whole config, drop-ins
/// included). sshd refuses to check anything without its privilege
/// separation dir, which only exists while the service runs; Debian's
/// init script makes it the same way before its own `sshd -t`.
pub fn test_command(paths: &Paths) -> String {
    paths
        .sshd_test
        .clone()
        .unwrap_or_else(|| "mkdir -p -m 0755 /run/sshd && /usr/sbin/sshd -t".into())
}

/// `--sshd-reload`, default: SIGHUP to the sshd of `/run/sshd.pid` if it
/// runs (sshd re-reads its config on SIGHUP; existing sessions stay), and
/// nothing when it does not (its next start reads the files).
pub fn reload_command(paths: &Paths) -> String {
    paths.sshd_reload.clone().unwrap_or_else(|| {
        "if [ -s /run/sshd.pid ] && kill -0 \"$(cat /run/sshd.pid)\" 2>/dev/null; \
         then kill -HUP \"$(cat /run/sshd.pid)\"; fi"
            .into()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHh0ZXN0a2V5Zm9yY29ycmFsc2Z0cHRlc3Rpbmc= me@host";

    #[test]
    fn keys_are_checked_and_normalised() {
        assert_eq!(parse_key(&format!("  {KEY}  ")).unwrap(), KEY);
        for bad in [
            "",
            "command=\"/bin/sh\" ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI",
            "ssh-ed25519",
            "ssh-ed25519 not*base64*at*all*here",
            "ssh-dss AAAAB3NzaC1kc3MAAACBAP",
        ] {
            assert!(parse_key(bad).is_err(), "{bad} accepted");
        }
        assert!(keys_from_arg("nofile-and-no-spaces").is_err());
        assert_eq!(keys_from_arg(KEY).unwrap(), vec![KEY.to_string()]);
    }

    #[test]
    fn adding_twice_keeps_one() {
        let mut have = vec![KEY.to_string()];
        add_keys(&mut have, vec![KEY.replace("me@host", "other comment")]);
        assert_eq!(have.len(), 1);
        assert_eq!(remove_keys(&mut have, KEY).unwrap(), 1);
        assert!(have.is_empty());
    }
}
