//! The Apache `<VirtualHost>`: the template's `.apache` file with
//! placeholders filled. The shipped one hands `.php` to the pool through
//! mod_proxy_fcgi inside `<If "-f %{REQUEST_FILENAME}">`, so only files
//! that exist reach PHP (`/x.jpg/evil.php` does not), denies PHP in upload
//! dirs including the PATH_INFO forms (`/uploads/evil.php/x.jpg`, which
//! Apache maps to `evil.php`), keeps `SymLinksIfOwnerMatch`, and drops
//! lines a placeholder left empty.

use crate::error::{Result, SitesError};
use crate::template::{self, Resolved};

/// `listen` is Apache's `*:80` form here.
pub fn render(
    domain: &str,
    r: &Resolved,
    values: &[(&str, String)],
    apache_listen: &str,
) -> Result<String> {
    let (file, text) = r.apache.as_ref().ok_or_else(|| SitesError::Site {
        domain: domain.to_string(),
        why: format!(
            "no template in the chain {} has an .apache file",
            r.chain.join(" <- ")
        ),
    })?;
    let values: Vec<(&str, String)> = values
        .iter()
        .map(|(k, v)| {
            if *k == "listen" {
                (*k, apache_listen.to_string())
            } else {
                (*k, v.clone())
            }
        })
        .collect();
    let out = template::substitute(file, text, &values)?;
    // A line that held only an empty placeholder (no ServerAlias, no
    // FallbackResource) goes.
    let mut kept = String::with_capacity(out.len());
    for (rendered, original) in out.split_inclusive('\n').zip(text.split_inclusive('\n')) {
        if rendered.trim().is_empty() && original.contains("{{") {
            continue;
        }
        kept.push_str(rendered);
    }
    Ok(kept)
}
