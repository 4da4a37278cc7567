//! Listening sockets, created by the master as root before any privilege
//! is dropped, so tenants never need the right to bind them.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::OwnedFd;

use corral_config::{Listen, LogLevel, Pool};
use corral_sys::cred;

#[derive(Debug, thiserror::Error)]
pub enum ListenError {
    #[error("Another FPM instance seems to already listen on {0}")]
    InUse(String),
    #[error("{0}")]
    Sys(#[from] corral_sys::SysError),
    #[error("[pool {pool}] cannot get uid for user '{user}'")]
    NoUser { pool: String, user: String },
    #[error("[pool {pool}] cannot get gid for group '{group}'")]
    NoGroup { pool: String, group: String },
    #[error("unable to resolve address '{0}'")]
    Resolve(String),
    /// A port of 0 or past 65535, named as configured; php-fpm finds it
    /// when it binds, not in `-t`.
    #[error("invalid port value '{0}'")]
    InvalidPort(String),
    /// Named as configured (`9008`, not the address tried), with the errno
    /// as php-fpm's ZLOG_SYSERROR writes it.
    #[error(
        "unable to bind listening socket for address '{address}': {}",
        syserror(source)
    )]
    Bind {
        address: String,
        #[source]
        source: std::io::Error,
    },
}

/// `strerror (errno)`, how php-fpm ends a message about a failed call.
fn syserror(e: &std::io::Error) -> String {
    match e.raw_os_error() {
        Some(n) => format!(
            "{} ({n})",
            corral_sys::nix::errno::Errno::from_raw(n).desc()
        ),
        None => e.to_string(),
    }
}

/// A key naming the socket (php-fpm's FPM_SOCKETS key).
pub fn key(listen: &Listen) -> String {
    match listen {
        Listen::Unix(p) => p.display().to_string(),
        Listen::Tcp { host, port } => format!("{}:{}", host.as_deref().unwrap_or("*"), port),
    }
}

fn resolve(host: &str, port: u16) -> Result<IpAddr, ListenError> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(ip);
    }
    use std::net::ToSocketAddrs;
    (host, port)
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .map(|a| a.ip())
        .ok_or_else(|| ListenError::Resolve(host.to_string()))
}

/// php-fpm's `fpm_socket_af_inet_listening_socket`: a host:port binds
/// that address; a port alone tries `::` first, which also takes IPv4
/// clients, quietly, and then 0.0.0.0 after a NOTICE (IPv6 may be off).
fn listen_inet(
    pool: &Pool,
    host: Option<&str>,
    port: u16,
    note: &mut dyn FnMut(LogLevel, String),
) -> Result<OwnedFd, ListenError> {
    let bind = |ip: IpAddr, dual_stack: bool| {
        corral_sys::socket::listen_tcp(SocketAddr::new(ip, port), dual_stack, pool.listen_backlog)
            .map_err(|source| ListenError::Bind {
                address: pool.listen_address.clone(),
                source,
            })
    };
    match host {
        Some(h) => bind(resolve(h, port)?, false),
        None => bind(IpAddr::V6(Ipv6Addr::UNSPECIFIED), true).or_else(|_| {
            note(
                LogLevel::Notice,
                "Failed implicitly binding to ::, retrying with 0.0.0.0".into(),
            );
            bind(IpAddr::V4(Ipv4Addr::UNSPECIFIED), false)
        }),
    }
}

/// Create the pool's socket with its owner, group, mode and ACLs; `note`
/// takes what is worth logging on the way.
pub fn open(pool: &Pool, note: &mut dyn FnMut(LogLevel, String)) -> Result<OwnedFd, ListenError> {
    let mut warn = |msg: String| note(LogLevel::Warning, msg);
    if let Err(corral_config::ConfigError::InvalidPort(p)) =
        Listen::validate_address(&pool.listen_address)
    {
        return Err(ListenError::InvalidPort(p));
    }
    match &pool.listen {
        Listen::Tcp { host, port } => listen_inet(pool, host.as_deref(), *port, note),
        Listen::Unix(path) => {
            if corral_sys::socket::unix_in_use(path) {
                return Err(ListenError::InUse(path.display().to_string()));
            }
            let fd = corral_sys::socket::listen_unix(path, pool.listen_mode, pool.listen_backlog)?;
            if !cred::is_root() {
                return Ok(fd);
            }
            if !pool.listen_acl_users.is_empty() || !pool.listen_acl_groups.is_empty() {
                if let Some(o) = &pool.listen_owner {
                    warn(format!(
                        "[pool {}] ACL set, listen.owner = '{}' is ignored",
                        pool.name, o
                    ));
                }
                if let Some(g) = &pool.listen_group {
                    warn(format!(
                        "[pool {}] ACL set, listen.group = '{}' is ignored",
                        pool.name, g
                    ));
                }
                let mut uids = Vec::new();
                for u in &pool.listen_acl_users {
                    let a = cred::lookup_user(u).ok_or_else(|| ListenError::NoUser {
                        pool: pool.name.clone(),
                        user: u.clone(),
                    })?;
                    uids.push(a.uid);
                }
                let mut gids = Vec::new();
                for g in &pool.listen_acl_groups {
                    gids.push(cred::lookup_group(g).ok_or_else(|| ListenError::NoGroup {
                        pool: pool.name.clone(),
                        group: g.clone(),
                    })?);
                }
                corral_sys::socket::set_socket_acl(path, pool.listen_mode, &uids, &gids)?;
                return Ok(fd);
            }
            if pool.listen_owner.is_some() || pool.listen_group.is_some() {
                let (mut uid, mut gid) = (None, None);
                if let Some(o) = &pool.listen_owner {
                    // A number is that uid, passwd entry or not, and leaves
                    // the group alone (php-fpm's socket_gid stays -1).
                    if cred::is_id(o) {
                        uid = Some(o.parse().map_err(|_| ListenError::NoUser {
                            pool: pool.name.clone(),
                            user: o.clone(),
                        })?);
                    } else {
                        let a = cred::lookup_user(o).ok_or_else(|| ListenError::NoUser {
                            pool: pool.name.clone(),
                            user: o.clone(),
                        })?;
                        uid = Some(a.uid);
                        gid = Some(a.gid);
                    }
                }
                if let Some(g) = &pool.listen_group {
                    gid = Some(cred::lookup_group(g).ok_or_else(|| ListenError::NoGroup {
                        pool: pool.name.clone(),
                        group: g.clone(),
                    })?);
                }
                std::os::unix::fs::chown(path, uid, gid).map_err(|e| {
                    corral_sys::SysError::new(
                        format!("failed to chown() the socket '{}'", path.display()),
                        e,
                    )
                })?;
            }
            Ok(fd)
        }
    }
}
