//! What the operator asked for: a site's options, as recorded in the
//! registry. Everything else (files, users, ACLs) is derived from a spec
//! and the host's [`Paths`](crate::paths::Paths), so rendering is
//! deterministic and `site add` twice converges to the same bytes.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::{Result, SitesError};

/// Which web server fronts the site.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WebServer {
    Nginx,
    Apache,
}

impl WebServer {
    pub fn parse(s: &str) -> Result<WebServer> {
        match s {
            "nginx" => Ok(WebServer::Nginx),
            "apache" | "apache2" => Ok(WebServer::Apache),
            _ => Err(SitesError::Usage(format!(
                "--webserver must be nginx or apache, not '{s}'"
            ))),
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            WebServer::Nginx => "nginx",
            WebServer::Apache => "apache",
        }
    }
}

/// One site's options.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SiteSpec {
    pub domain: String,
    /// Owner user and group of the code.
    pub user: String,
    pub php_version: String,
    pub webserver: WebServer,
    pub template: String,
    /// `--set` overrides, applied after the template chain.
    #[serde(default)]
    pub sets: BTreeMap<String, String>,
    #[serde(default)]
    pub aliases: Vec<String>,
    /// Login shell of the owner (`/usr/sbin/nologin`).
    pub shell: String,
    /// false after `site disable`.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// `--disk-quota`: bytes the site's group may hold on the home's
    /// filesystem. Absent in registries written before quotas existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk_quota: Option<u64>,
    /// HTTPS: `--tls CERT,KEY` or `--certbot`. Absent = HTTP only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<Tls>,
    /// `site unlock`: the code tree is writable by PHP until this time
    /// (seconds since the epoch); absent = locked. Kept here so that every
    /// re-render (pool file, layout) and `site list/show` see the window,
    /// and `site lock --expired` finds it. See docs/sites.md, "Updates".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unlocked_until: Option<u64>,
    /// Owner access: SFTP public keys (`TYPE BASE64 [COMMENT]`). Empty =
    /// no SFTP; any key = the owner may log in with SFTP, chrooted to the
    /// home (see [`sftp`](crate::sftp)).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sftp_keys: Vec<String>,
}

/// Where a site's certificate comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", tag = "source")]
pub enum Tls {
    /// Files the operator manages (absolute paths, read by the web server
    /// as root).
    Files {
        cert: std::path::PathBuf,
        key: std::path::PathBuf,
    },
    /// certbot's webroot mode; the files are `<letsencrypt-dir>/live/DOMAIN/`.
    Certbot,
}

impl Tls {
    /// `CERT,KEY`, `certbot`, or empty for none (`site set DOMAIN tls=…`).
    pub fn parse(v: &str) -> Result<Option<Tls>> {
        let v = v.trim();
        if v.is_empty() || v == "none" || v == "off" {
            return Ok(None);
        }
        if v == "certbot" {
            return Ok(Some(Tls::Certbot));
        }
        let (cert, key) = v.split_once(',').ok_or_else(|| {
            SitesError::Usage(format!(
                "--tls takes CERT,KEY (two absolute paths), not '{v}'; or use --certbot"
            ))
        })?;
        let (cert, key) = (
            std::path::PathBuf::from(cert.trim()),
            std::path::PathBuf::from(key.trim()),
        );
        for p in [&cert, &key] {
            let s = p.display().to_string();
            if !p.is_absolute() || s.contains(char::is_whitespace) || s.contains([';', '"', '\'']) {
                return Err(SitesError::Usage(format!(
                    "--tls: '{s}' must be an absolute path without spaces, quotes or ';'"
                )));
            }
        }
        Ok(Some(Tls::Files { cert, key }))
    }
}

fn yes() -> bool {
    true
}

pub const DEFAULT_SHELL: &str = "/usr/sbin/nologin";
pub const DEFAULT_PHP_VERSION: &str = "8.2";

impl SiteSpec {
    /// The PHP runtime user: a separate account whose primary group is the
    /// owner's, so PHP reads code through the group and writes only where
    /// group write is granted.
    pub fn php_user(&self) -> String {
        php_user_of(&self.user)
    }

    /// Checks names and values a shell, a path or a config file would
    /// misread.
    pub fn validate(&self) -> Result<()> {
        check_domain(&self.domain)?;
        for a in &self.aliases {
            check_domain(a)?;
        }
        check_user(&self.user)?;
        check_user(&self.php_user())?;
        if !self
            .php_version
            .split('.')
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
            || self.php_version.split('.').count() != 2
        {
            return Err(SitesError::Usage(format!(
                "--php-version must look like 8.2, not '{}'",
                self.php_version
            )));
        }
        if !self
            .template
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            || self.template.is_empty()
        {
            return Err(SitesError::Usage(format!(
                "bad template name '{}'",
                self.template
            )));
        }
        if !self.shell.starts_with('/') || self.shell.contains(char::is_whitespace) {
            return Err(SitesError::Usage(format!("bad shell '{}'", self.shell)));
        }
        if self.disk_quota == Some(0) {
            return Err(SitesError::Usage(
                "--disk-quota must be more than 0 (drop it with disk_quota=)".into(),
            ));
        }
        for (k, v) in &self.sets {
            check_setting(k, v)?;
        }
        for k in &self.sftp_keys {
            if crate::sftp::parse_key(k)? != *k {
                return Err(SitesError::Usage(format!("bad SFTP key '{k}'")));
            }
        }
        Ok(())
    }
}

/// `USER-php`.
pub fn php_user_of(user: &str) -> String {
    format!("{user}-php")
}

/// A DNS name: lowercase letters, digits, `-` and `.`; no leading dot or
/// dash; at most 253 bytes. It names files, a pool and a socket, so
/// nothing else may pass.
pub fn check_domain(d: &str) -> Result<()> {
    let bad = |why: &str| {
        Err(SitesError::Domain {
            domain: d.to_string(),
            why: why.to_string(),
        })
    };
    if d.is_empty() || d.len() > 253 {
        return bad("must be 1 to 253 characters");
    }
    if !d
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
    {
        return bad("only lowercase letters, digits, '-' and '.' are allowed");
    }
    if d.split('.')
        .any(|l| l.is_empty() || l.starts_with('-') || l.ends_with('-') || l.len() > 63)
    {
        return bad("every label must be 1 to 63 characters and not start or end with '-'");
    }
    Ok(())
}

/// What the operator typed, as the name the site is known by: lowercased,
/// an IDN turned into its punycode (`bücher.example` →
/// `xn--bcher-kva.example`, what nginx, Apache and certificates match), a
/// trailing dot dropped. IP addresses, `localhost` (and `*.localhost`) and
/// single labels are refused: they are not a site's name, and a vhost for
/// one would catch traffic meant for the host.
pub fn normalize_domain(input: &str) -> Result<String> {
    let bad = |why: &str| {
        Err(SitesError::Domain {
            domain: input.to_string(),
            why: why.to_string(),
        })
    };
    let trimmed = input.trim().trim_end_matches('.');
    if trimmed.is_empty() {
        return bad("is empty");
    }
    if trimmed.parse::<std::net::IpAddr>().is_ok()
        || trimmed
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::Ipv6Addr>()
            .is_ok()
    {
        return bad("is an IP address; a site needs a DNS name");
    }
    let ascii = match idna::domain_to_ascii(trimmed) {
        Ok(a) => a,
        Err(_) => return bad("is not a valid internationalised domain name"),
    };
    if ascii == "localhost" || ascii.ends_with(".localhost") {
        return bad("is the host itself (localhost); a site needs its own name");
    }
    if !ascii.contains('.') {
        return bad("is a single label; use a full name such as example.com");
    }
    let tld = ascii.rsplit('.').next().unwrap_or("");
    if tld.bytes().all(|b| b.is_ascii_digit()) {
        return bad("ends in a numeric label (an IP address?); a site needs a DNS name");
    }
    check_domain(&ascii)?;
    Ok(ascii)
}

/// A Linux user name useradd accepts everywhere: `[a-z_][a-z0-9_-]*`,
/// at most 32 bytes.
pub fn check_user(name: &str) -> Result<()> {
    let bad = |why: &str| {
        Err(SitesError::UserName {
            name: name.to_string(),
            why: why.to_string(),
        })
    };
    if name.is_empty() || name.len() > 32 {
        return bad("must be 1 to 32 characters");
    }
    let first = name.as_bytes()[0];
    if !(first.is_ascii_lowercase() || first == b'_') {
        return bad("must start with a lowercase letter or '_'");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
    {
        return bad("only lowercase letters, digits, '_' and '-' are allowed");
    }
    Ok(())
}

/// The owner name derived from a domain: `www.example.com` → `example-com`;
/// cut so that `USER-php` still fits in 32 characters.
pub fn user_from_domain(domain: &str) -> String {
    let d = domain.strip_prefix("www.").unwrap_or(domain);
    let mut u: String = d
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    if !u.starts_with(|c: char| c.is_ascii_lowercase()) {
        u.insert(0, 's');
    }
    u.truncate(32 - "-php".len());
    u.trim_end_matches('-').to_string()
}

/// Setting keys are pool directives, `php_admin_value[x]`-style arrays,
/// php.ini names or `corral.*` knobs; values are one line.
pub fn check_setting(key: &str, value: &str) -> Result<()> {
    let bad = |why: &str| {
        Err(SitesError::Setting {
            key: key.to_string(),
            why: why.to_string(),
        })
    };
    if key.is_empty()
        || !key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-' | b'[' | b']'))
    {
        return bad("keys may hold letters, digits, '_', '.', '-' and '[]'");
    }
    if value.contains(['\n', '\r', '\0']) {
        return bad("values are one line");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_names_from_domains() {
        assert_eq!(user_from_domain("example.com"), "example-com");
        assert_eq!(user_from_domain("www.example.com"), "example-com");
        assert_eq!(user_from_domain("1.example.org"), "s1-example-org");
        let long = user_from_domain("a-very-long-subdomain-name.example-company.co.uk");
        assert!(long.len() <= 28, "{long}");
        assert!(check_user(&php_user_of(&long)).is_ok());
    }

    #[test]
    fn domains_are_checked() {
        assert!(check_domain("example.com").is_ok());
        assert!(check_domain("Example.com").is_err());
        assert!(check_domain("../etc").is_err());
        assert!(check_domain("a..b").is_err());
        assert!(check_domain("-a.b").is_err());
        assert!(check_domain("a b").is_err());
    }

    #[test]
    fn domains_are_normalised() {
        let n = |d: &str| normalize_domain(d);
        assert_eq!(n("Example.COM").unwrap(), "example.com");
        assert_eq!(n("www.Example.com.").unwrap(), "www.example.com");
        assert_eq!(n("bücher.example").unwrap(), "xn--bcher-kva.example");
        assert_eq!(n("ÉCOLE.fr").unwrap(), "xn--cole-9oa.fr");
        for bad in [
            "localhost",
            "LocalHost",
            "app.localhost",
            "1.2.3.4",
            "::1",
            "[::1]",
            "10.0.0",
            "intranet",
            "",
            "a b.com",
            "../etc",
            "a..b",
        ] {
            assert!(n(bad).is_err(), "{bad} accepted");
        }
        let e = n("1.2.3.4").unwrap_err().to_string();
        assert!(e.contains("IP address"), "{e}");
        let e = n("intranet").unwrap_err().to_string();
        assert!(e.contains("single label"), "{e}");
    }

    #[test]
    fn settings_are_checked() {
        assert!(check_setting("memory_limit", "256M").is_ok());
        assert!(check_setting("php_admin_value[x]", "1").is_ok());
        assert!(check_setting("a b", "1").is_err());
        assert!(check_setting("x", "1\n[evil]").is_err());
    }
}
