//! The nginx server block: the template's `.nginx` file with placeholders
//! filled. The shipped one serves static files directly, sends only
//! existing `.php` files to the pool (`try_files $uri =404` before
//! `fastcgi_pass`), denies hidden files, PHP in upload dirs (also with a
//! path after it) and the pool's status/ping paths, and follows a symlink
//! only when link and target have one owner (`disable_symlinks
//! if_not_owner`), since www-data may read every tenant's docroot.

use crate::error::{Result, SitesError};
use crate::template::{self, Resolved};

pub fn render(domain: &str, r: &Resolved, values: &[(&str, String)]) -> Result<String> {
    let (file, text) = r.nginx.as_ref().ok_or_else(|| SitesError::Site {
        domain: domain.to_string(),
        why: format!(
            "no template in the chain {} has an .nginx file",
            r.chain.join(" <- ")
        ),
    })?;
    template::substitute(file, text, values)
}
