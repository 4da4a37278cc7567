//! POSIX ACLs through `getfacl`/`setfacl` (the `acl` package): corral's
//! crates keep libc calls in corral-sys, and these tools are what an
//! operator uses to inspect the result anyway.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::error::{Result, SitesError};
use crate::users::run;

/// The ACL entries (access and default) as sorted `getfacl` lines with
/// numeric ids, without the header: what [`desired_lines`] is compared to.
pub fn current_lines(path: &Path) -> Result<Vec<String>> {
    let p = path.display().to_string();
    let out = run(
        "getfacl",
        &[
            "--absolute-names",
            "--omit-header",
            "--numeric",
            "--no-effective",
            &p,
        ],
    )?;
    let mut v: Vec<String> = out
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect();
    v.sort();
    Ok(v)
}

/// `setfacl --set` text as the sorted lines getfacl would print.
pub fn desired_lines(spec: &str) -> Vec<String> {
    let mut v: Vec<String> = spec
        .split(',')
        .map(|e| {
            let (default, e) = match e.strip_prefix("d:") {
                Some(r) => ("default:", r),
                None => ("", e),
            };
            let mut parts = e.splitn(3, ':');
            let tag = match parts.next().unwrap_or("") {
                "u" => "user",
                "g" => "group",
                "m" => "mask",
                "o" => "other",
                t => t,
            };
            let q = parts.next().unwrap_or("");
            let perm = parts.next().unwrap_or("");
            format!("{default}{tag}:{q}:{perm}")
        })
        .collect();
    v.sort();
    v
}

/// A full dump (owner, group, flags, ACL) that [`restore`] puts back.
pub fn dump(path: &Path) -> Result<String> {
    let p = path.display().to_string();
    run("getfacl", &["--absolute-names", "--numeric", &p])
}

/// `setfacl --restore`: owner, group, mode, setgid flag and ACL as dumped.
pub fn restore(dump: &str) -> Result<()> {
    let mut child = Command::new("setfacl")
        .arg("--restore=-")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| SitesError::Command {
            command: "setfacl --restore=-".into(),
            output: e.to_string(),
        })?;
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(dump.as_bytes());
    }
    let out = child.wait_with_output().map_err(|e| SitesError::Command {
        command: "setfacl --restore=-".into(),
        output: e.to_string(),
    })?;
    if !out.status.success() {
        return Err(SitesError::Command {
            command: "setfacl --restore=-".into(),
            output: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(())
}

/// Replaces the whole ACL (access and default entries). The mode's group
/// bits become the mask, so the mode check that follows agrees.
pub fn set(path: &Path, spec: &str) -> Result<()> {
    let p = path.display().to_string();
    run("setfacl", &["--remove-all", &p])?;
    run("setfacl", &["--set", spec, &p])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_to_lines() {
        assert_eq!(
            desired_lines("u::rwx,g::r-x,o::---,u:33:--x,m::r-x,d:u::rwx"),
            [
                "default:user::rwx",
                "group::r-x",
                "mask::r-x",
                "other::---",
                "user:33:--x",
                "user::rwx"
            ]
        );
    }
}
