//! System users and groups: read from /etc/passwd and /etc/group (the
//! files useradd writes), changed with useradd/groupadd/userdel/groupdel
//! so shadow, gshadow and subuid stay consistent the way the distribution
//! keeps them.

use std::process::Command;

use crate::error::{Result, SitesError};

/// An /etc/passwd entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub home: String,
    pub shell: String,
}

/// An /etc/group entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    pub name: String,
    pub gid: u32,
}

/// The lowest id a site's accounts get: ids below are the distribution's.
pub const MIN_ID: u32 = 1000;

fn read(path: &str) -> Result<String> {
    std::fs::read_to_string(path).map_err(|e| SitesError::io(path, e))
}

pub fn user(name: &str) -> Result<Option<User>> {
    Ok(read("/etc/passwd")?.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() >= 7 && f[0] == name).then(|| User {
            name: f[0].to_string(),
            uid: f[2].parse().unwrap_or(u32::MAX),
            gid: f[3].parse().unwrap_or(u32::MAX),
            home: f[5].to_string(),
            shell: f[6].to_string(),
        })
    }))
}

pub fn group(name: &str) -> Result<Option<Group>> {
    Ok(read("/etc/group")?.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() >= 3 && f[0] == name).then(|| Group {
            name: f[0].to_string(),
            gid: f[2].parse().unwrap_or(u32::MAX),
        })
    }))
}

/// Runs a command; a non-zero exit is an error carrying its output.
pub fn run(program: &str, args: &[&str]) -> Result<String> {
    let shown = format!("{program} {}", args.join(" "));
    let out = Command::new(program)
        .args(args)
        .output()
        .map_err(|e| SitesError::Command {
            command: shown.clone(),
            output: e.to_string(),
        })?;
    if !out.status.success() {
        return Err(SitesError::Command {
            command: shown,
            output: format!(
                "{}{}{}",
                out.status,
                if out.stderr.is_empty() { "" } else { ": " },
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// `groupadd`; `gid` only when re-creating a removed group.
pub fn add_group(name: &str, gid: Option<u32>) -> Result<Group> {
    let g = gid.map(|g| g.to_string());
    let mut args = vec!["-K", "GID_MIN=1000"];
    if let Some(g) = &g {
        args = vec!["--gid", g];
    }
    args.push(name);
    run("groupadd", &args)?;
    let g = group(name)?.ok_or_else(|| SitesError::UserConflict {
        name: name.into(),
        why: "was not created by groupadd".into(),
    })?;
    if g.gid < MIN_ID {
        return Err(SitesError::UserConflict {
            name: name.into(),
            why: format!("got gid {} below {MIN_ID}", g.gid),
        });
    }
    Ok(g)
}

/// `useradd` without a home directory (the layout creates it with the
/// right modes) and with its primary group given.
pub fn add_user(
    name: &str,
    group: &str,
    home: &str,
    shell: &str,
    comment: &str,
    uid: Option<u32>,
) -> Result<User> {
    let u = uid.map(|u| u.to_string());
    let mut args = vec![
        "--no-create-home",
        "--no-user-group",
        "--gid",
        group,
        "--home-dir",
        home,
        "--shell",
        shell,
        "--comment",
        comment,
        "-K",
        "UID_MIN=1000",
    ];
    if let Some(u) = &u {
        args.push("--uid");
        args.push(u);
    }
    args.push(name);
    run("useradd", &args)?;
    let u = user(name)?.ok_or_else(|| SitesError::UserConflict {
        name: name.into(),
        why: "was not created by useradd".into(),
    })?;
    if u.uid < MIN_ID {
        return Err(SitesError::UserConflict {
            name: name.into(),
            why: format!("got uid {} below {MIN_ID}", u.uid),
        });
    }
    Ok(u)
}

/// `userdel` (never `-r`: the layout code removes files it owns).
/// userdel refuses while the user has processes; a pool that was just
/// stopped may still have workers finishing their last request, so this
/// waits for them (up to 30 s) rather than fail.
pub fn del_user(name: &str) -> Result<()> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        if user(name)?.is_none() {
            return Ok(());
        }
        match run("userdel", &[name]) {
            Ok(_) => return Ok(()),
            Err(SitesError::Command { output, .. })
                if output.contains("currently used by process")
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(std::time::Duration::from_millis(200));
            }
            Err(e) => return Err(e),
        }
    }
}

/// `groupdel`; gone already is fine (userdel removes a user's same-named
/// group with USERGROUPS_ENAB).
pub fn del_group(name: &str) -> Result<()> {
    if group(name)?.is_some() {
        run("groupdel", &[name])?;
    }
    Ok(())
}

/// uid of a user or gid of a group given by name or number.
pub fn uid_of(name: &str) -> Result<u32> {
    if let Ok(n) = name.parse() {
        return Ok(n);
    }
    user(name)?
        .map(|u| u.uid)
        .ok_or_else(|| SitesError::UserConflict {
            name: name.into(),
            why: "does not exist".into(),
        })
}

/// The name of a group by gid.
pub fn group_name_of(gid: u32) -> Option<String> {
    read("/etc/group").ok()?.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() >= 3 && f[2].parse() == Ok(gid)).then(|| f[0].to_string())
    })
}

/// The name of a user by uid.
pub fn user_name_of(uid: u32) -> Option<String> {
    read("/etc/passwd").ok()?.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() >= 3 && f[2].parse() == Ok(uid)).then(|| f[0].to_string())
    })
}

/// The GECOS field, to re-create a deleted user as it was.
pub fn comment_of(name: &str) -> Result<Option<String>> {
    Ok(read("/etc/passwd")?.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() >= 7 && f[0] == name).then(|| f[4].to_string())
    }))
}
