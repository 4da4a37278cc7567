//! Talking to a running corral through its control socket: reload one
//! pool (the others keep their workers), and read worker pids for sizing.

use std::path::Path;

use corral_ipc::control::{ControlReply, ControlRequest};

use crate::error::{Result, SitesError};

/// What a pool reload did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reloaded {
    /// corral answered; its summary.
    Done(String),
    /// Nothing listens on the socket: the pool starts with the next start.
    NotRunning,
}

/// Whether a corral master answers on `socket`.
pub fn reachable(socket: &Path) -> bool {
    std::os::unix::net::UnixStream::connect(socket).is_ok()
}

/// `corral reload POOL`.
pub fn reload_pool(socket: &Path, pool: &str) -> Result<Reloaded> {
    if !reachable(socket) {
        return Ok(Reloaded::NotRunning);
    }
    let req = ControlRequest::Reload {
        pools: vec![pool.to_string()],
    };
    match corral_ipc::control::request(socket, &req) {
        Ok(ControlReply { ok: true, text, .. }) => Ok(Reloaded::Done(text)),
        Ok(ControlReply {
            ok: false, text, ..
        }) => Err(SitesError::Corral {
            socket: socket.to_path_buf(),
            why: format!("reload {pool} failed: {text}"),
        }),
        Err(e) => Err(SitesError::Corral {
            socket: socket.to_path_buf(),
            why: e.to_string(),
        }),
    }
}

/// `(pool, worker pids)` of every running pool; `None` when corral is not
/// reachable.
pub fn pool_pids(socket: &Path) -> Option<Vec<(String, Vec<i32>)>> {
    if !reachable(socket) {
        return None;
    }
    let reply =
        corral_ipc::control::request(socket, &ControlRequest::Status { pool: None }).ok()?;
    if !reply.ok {
        return None;
    }
    parse_pids(&reply.text)
}

/// `(pool, worker pids)` from `corral status`'s JSON.
pub(crate) fn parse_pids(text: &str) -> Option<Vec<(String, Vec<i32>)>> {
    let v: serde_json::Value = serde_json::from_str(text).ok()?;
    Some(
        v.as_array()?
            .iter()
            .map(|p| {
                let name = p["pool"].as_str().unwrap_or_default().to_string();
                let pids = p["processes"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|x| x["pid"].as_i64())
                    .map(|x| x as i32)
                    .collect();
                (name, pids)
            })
            .collect(),
    )
}
