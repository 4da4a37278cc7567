//! `<state-dir>/DOMAIN.json`: the options each site was created with, so
//! `site show/list/set` work and every re-render is deterministic.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Result, SitesError};
use crate::paths::Paths;
use crate::spec::SiteSpec;

/// One registry file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    #[serde(flatten)]
    pub spec: SiteSpec,
    /// Ids the accounts had when created: a user of the same name with
    /// another uid later is someone else.
    pub uid: Option<u32>,
    pub php_uid: Option<u32>,
    pub gid: Option<u32>,
}

impl Record {
    /// The file's bytes: pretty JSON, stable key order, trailing newline.
    pub fn to_text(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).unwrap_or_default();
        s.push('\n');
        s
    }
}

pub fn load(paths: &Paths, domain: &str) -> Result<Option<Record>> {
    let path = paths.registry_file(domain);
    match std::fs::read_to_string(&path) {
        Ok(t) => parse(&path, &t).map(Some),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(SitesError::io(path, e)),
    }
}

fn parse(path: &Path, text: &str) -> Result<Record> {
    serde_json::from_str(text).map_err(|e| SitesError::Registry {
        path: path.to_path_buf(),
        why: e.to_string(),
    })
}

/// Every registered site, by domain.
pub fn all(paths: &Paths) -> Result<Vec<Record>> {
    let mut out = Vec::new();
    let rd = match std::fs::read_dir(&paths.state_dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(SitesError::io(&paths.state_dir, e)),
    };
    for e in rd.flatten() {
        let p = e.path();
        if p.extension().and_then(|x| x.to_str()) != Some("json") {
            continue;
        }
        let t = std::fs::read_to_string(&p).map_err(|e| SitesError::io(&p, e))?;
        out.push(parse(&p, &t)?);
    }
    out.sort_by(|a, b| a.spec.domain.cmp(&b.spec.domain));
    Ok(out)
}
