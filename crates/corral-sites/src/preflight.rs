//! Checks made before a command changes anything, so that a site that
//! cannot work is refused at once with the reason, not half-built and
//! rolled back (or, worse, "added" and broken):
//! * the PHP version's libphp is installed;
//! * `--tls` files exist, hold a certificate and a private key, and the
//!   certificate names the domain;
//! * for `--certbot`, certbot is installed;
//! * for SFTP keys, OpenSSH's server is (its drop-in dir exists).

use std::path::{Path, PathBuf};

use crate::error::{Result, SitesError};
use crate::paths::Paths;
use crate::spec::{SiteSpec, Tls};

/// Every check, in order.
pub fn check(spec: &SiteSpec, paths: &Paths) -> Result<()> {
    php_version(&spec.php_version, &paths.libphp_dir)?;
    if !spec.sftp_keys.is_empty() && !paths.sshd_config_dir.is_dir() {
        return Err(SitesError::Usage(format!(
            "SFTP needs OpenSSH's server, and {} does not exist (apt-get install \
             openssh-server, or point --sshd-config-dir at sshd's drop-in dir)",
            paths.sshd_config_dir.display()
        )));
    }
    match &spec.tls {
        Some(Tls::Files { cert, key }) => tls_files(&spec.domain, cert, key),
        Some(Tls::Certbot) if crate::vhost::certbot_pending(spec, paths) => certbot(&paths.certbot),
        _ => Ok(()),
    }
}

/// `libphpVERSION.so` in `dir` (Debian's `libphpX.Y-embed`).
pub fn php_version(version: &str, dir: &Path) -> Result<()> {
    let lib = dir.join(format!("libphp{version}.so"));
    if lib.is_file() {
        return Ok(());
    }
    Err(SitesError::Usage(format!(
        "PHP {version} is not installed: no {} (install libphp{version}-embed, or choose \
         another --php-version)",
        lib.display()
    )))
}

/// Readable files with a PEM certificate and a PEM private key, and (when
/// openssl is there to ask) a certificate that names `domain`.
pub fn tls_files(domain: &str, cert: &Path, key: &Path) -> Result<()> {
    let read = |p: &Path, what: &str, marker: &str| -> Result<()> {
        let text = std::fs::read_to_string(p).map_err(|e| {
            SitesError::Usage(format!(
                "--tls: cannot read the {what} {}: {e}",
                p.display()
            ))
        })?;
        if !text.contains(marker) {
            return Err(SitesError::Usage(format!(
                "--tls: {} holds no PEM {what} (no '{marker}')",
                p.display()
            )));
        }
        Ok(())
    };
    read(cert, "certificate", "-----BEGIN CERTIFICATE-----")?;
    read(key, "private key", "PRIVATE KEY-----")?;
    let out = std::process::Command::new("openssl")
        .args(["x509", "-noout", "-checkhost", domain, "-in"])
        .arg(cert)
        .output();
    if let Ok(o) = out {
        let said = String::from_utf8_lossy(&o.stdout);
        if !o.status.success() || said.contains("does NOT match") {
            return Err(SitesError::Usage(format!(
                "--tls: the certificate {} does not name {domain} ({})",
                cert.display(),
                said.trim()
            )));
        }
    }
    Ok(())
}

/// The certbot command's program exists (a path, or a name on PATH).
pub fn certbot(command: &str) -> Result<()> {
    let program = command.split_whitespace().next().unwrap_or("");
    let found = if program.contains('/') {
        Path::new(program).is_file()
    } else {
        std::env::var_os("PATH")
            .map(|p| std::env::split_paths(&p).any(|d: PathBuf| d.join(program).is_file()))
            .unwrap_or(false)
    };
    if found {
        return Ok(());
    }
    Err(SitesError::Usage(format!(
        "--certbot: certbot is not installed ('{program}' not found; apt-get install certbot), \
         or give the certificate with --tls CERT,KEY"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn php_versions_need_their_libphp() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("libphp8.2.so"), "").unwrap();
        assert!(php_version("8.2", d.path()).is_ok());
        let e = php_version("8.3", d.path()).unwrap_err().to_string();
        assert!(
            e.contains("PHP 8.3 is not installed") && e.contains("libphp8.3.so"),
            "{e}"
        );
    }

    #[test]
    fn tls_files_must_hold_pem() {
        let d = tempfile::tempdir().unwrap();
        let (c, k) = (d.path().join("c.pem"), d.path().join("k.pem"));
        let e = tls_files("a.test", &c, &k).unwrap_err().to_string();
        assert!(e.contains("cannot read the certificate"), "{e}");
        std::fs::write(&c, "junk").unwrap();
        std::fs::write(&k, "-----BEGIN PRIVATE KEY-----\n").unwrap();
        let e = tls_files("a.test", &c, &k).unwrap_err().to_string();
        assert!(e.contains("no PEM certificate"), "{e}");
    }

    #[test]
    fn certbot_must_be_installed() {
        assert!(certbot("/nonexistent/certbot --foo").is_err());
        assert!(certbot("corral-no-such-certbot")
            .unwrap_err()
            .to_string()
            .contains("apt-get install certbot"));
        assert!(certbot("sh -c true").is_ok());
    }
}
