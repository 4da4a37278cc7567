//! The vhost file of a site: one or two blocks from the templates.
//!
//! | site | blocks |
//! |---|---|
//! | enabled, HTTP | the template's vhost on `--listen` |
//! | enabled, TLS | `redirect` on `--listen` (301 to https, ACME challenges excepted), the template's vhost on `--tls-listen` with the certificate |
//! | disabled | `suspended` (503 page) on `--listen`, and on `--tls-listen` for a TLS site |
//!
//! A disabled site keeps a vhost so that its visitors get a 503 saying it
//! is suspended from the web server itself, not nginx's default server
//! or another site. certbot's challenges are served from a root-owned dir
//! (`--acme-dir`), never from the tenant's tree: certbot runs as root, and
//! a tenant's `.well-known` could be a link to anywhere.
//!
//! Placeholders filled here: `{{listen}}` (per block), `{{tls}}` (the
//! certificate lines, empty on HTTP), `{{acme}}` (the challenge location,
//! for certbot sites), `{{https_port}}` (`:PORT` when TLS is not on 443).

use std::path::{Path, PathBuf};

use crate::error::{Result, SitesError};
use crate::paths::Paths;
use crate::spec::{SiteSpec, Tls, WebServer};
use crate::template::{self, Library, Resolved};

/// The certificate and key a TLS site's vhost names.
pub fn cert_files(spec: &SiteSpec, paths: &Paths) -> Option<(PathBuf, PathBuf)> {
    match spec.tls.as_ref()? {
        Tls::Files { cert, key } => Some((cert.clone(), key.clone())),
        Tls::Certbot => {
            let live = paths.letsencrypt_dir.join("live").join(&spec.domain);
            Some((live.join("fullchain.pem"), live.join("privkey.pem")))
        }
    }
}

/// A certbot site whose certificate is not issued yet: served over HTTP
/// (with the challenge location) until certbot has run.
pub fn certbot_pending(spec: &SiteSpec, paths: &Paths) -> bool {
    matches!(spec.tls, Some(Tls::Certbot))
        && cert_files(spec, paths).is_some_and(|(c, k)| !c.exists() || !k.exists())
}

/// The vhost text (see the module doc).
pub fn render(
    spec: &SiteSpec,
    paths: &Paths,
    lib: &Library,
    r: &Resolved,
    values: &[(&'static str, String)],
) -> Result<String> {
    let ws = spec.webserver;
    let ext = ws.name();
    let site = match ws {
        WebServer::Nginx => r.nginx.as_ref(),
        WebServer::Apache => r.apache.as_ref(),
    }
    .ok_or_else(|| SitesError::Site {
        domain: spec.domain.clone(),
        why: format!(
            "no template in the chain {} has an .{ext} file",
            r.chain.join(" <- ")
        ),
    })?;
    let shipped = |name: &str| -> Result<(String, String)> {
        lib.file(&format!("{name}.{ext}"))?
            .ok_or_else(|| SitesError::TemplateMissing {
                name: format!("{name}.{ext}"),
                searched: lib.operator_dir.display().to_string(),
            })
    };
    let http = listen_http(paths, ws);
    let tls_on = listen_tls(paths, ws);
    let certbot = matches!(spec.tls, Some(Tls::Certbot));
    let acme = if certbot {
        acme_block(ws, &paths.acme_dir)
    } else {
        String::new()
    };
    let tls = if certbot_pending(spec, paths) {
        None
    } else {
        cert_files(spec, paths)
    };
    let https_port = match paths.tls_listen.rsplit(':').next() {
        Some("443") | None => String::new(),
        Some(p) => format!(":{p}"),
    };
    let block = |(file, text): &(String, String), listen: &str, tls_text: &str, acme: &str| {
        let mut v: Vec<(&str, String)> = values
            .iter()
            .filter(|(k, _)| !matches!(*k, "listen" | "tls" | "acme" | "https_port"))
            .cloned()
            .collect();
        v.push(("listen", listen.to_string()));
        v.push(("tls", tls_text.to_string()));
        v.push(("acme", acme.to_string()));
        v.push(("https_port", https_port.clone()));
        fill(ws, file, text, &v)
    };
    let cert_text = tls.as_ref().map(|(c, k)| tls_block(ws, c, k));
    let mut out = String::new();
    match (spec.enabled, &cert_text) {
        (true, None) => out.push_str(&block(site, &http, "", &acme)?),
        (true, Some(c)) => {
            out.push_str(&block(&shipped("redirect")?, &http, "", &acme)?);
            out.push('\n');
            out.push_str(&block(site, &tls_on, c, "")?);
        }
        (false, None) => out.push_str(&block(&shipped("suspended")?, &http, "", "")?),
        (false, Some(c)) => {
            let s = shipped("suspended")?;
            out.push_str(&block(&s, &http, "", "")?);
            out.push('\n');
            out.push_str(&block(&s, &tls_on, c, "")?);
        }
    }
    Ok(out)
}

fn listen_http(paths: &Paths, ws: WebServer) -> String {
    match ws {
        WebServer::Nginx => paths.listen.clone(),
        WebServer::Apache => paths.apache_listen(),
    }
}

fn listen_tls(paths: &Paths, ws: WebServer) -> String {
    match ws {
        WebServer::Nginx => format!("{} ssl", paths.tls_listen),
        WebServer::Apache if paths.tls_listen.contains(':') => paths.tls_listen.clone(),
        WebServer::Apache => format!("*:{}", paths.tls_listen),
    }
}

fn tls_block(ws: WebServer, cert: &Path, key: &Path) -> String {
    match ws {
        WebServer::Nginx => format!(
            "    ssl_certificate {};\n    ssl_certificate_key {};\n    ssl_protocols TLSv1.2 TLSv1.3;",
            cert.display(),
            key.display()
        ),
        WebServer::Apache => format!(
            "    SSLEngine on\n    SSLCertificateFile {}\n    SSLCertificateKeyFile {}\n    SSLProtocol -all +TLSv1.2 +TLSv1.3",
            cert.display(),
            key.display()
        ),
    }
}

fn acme_block(ws: WebServer, dir: &Path) -> String {
    let d = dir.display();
    match ws {
        WebServer::Nginx => format!(
            "    # certbot's challenges, from a root-owned dir, never the tenant's tree.\n    \
             location ^~ /.well-known/acme-challenge/ {{\n        root {d};\n        \
             default_type text/plain;\n    }}"
        ),
        WebServer::Apache => format!(
            "    # certbot's challenges, from a root-owned dir, never the tenant's tree.\n    \
             Alias /.well-known/acme-challenge/ {d}/.well-known/acme-challenge/\n    \
             <Directory {d}/.well-known/acme-challenge>\n        Options None\n        \
             AllowOverride None\n        Require all granted\n    </Directory>"
        ),
    }
}

/// Placeholders filled; a line left empty by a placeholder is dropped
/// (no `ServerAlias`, no `FallbackResource`, no certificate lines).
fn fill(_ws: WebServer, file: &str, text: &str, values: &[(&str, String)]) -> Result<String> {
    template::substitute_dropping_empty(file, text, values)
}
