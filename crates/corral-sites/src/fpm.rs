//! Talking to a running corral through its control socket: reload one
//! pool (the others keep their workers), and read worker pids for sizing.

use std::path::Path;
use std::time::{Duration, Instant};

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

/// One worker as `corral status` lists it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Worker {
    pub pid: i32,
    /// Requests it has served: 0 = a fresh fork, whose memory is nearly
    /// all shared with the prototype and says nothing about a real one.
    pub requests: u64,
}

/// `(pool, workers)` of every running pool; `None` when corral is not
/// reachable.
pub fn pool_workers(socket: &Path) -> Option<Vec<(String, Vec<Worker>)>> {
    if !reachable(socket) {
        return None;
    }
    let reply =
        corral_ipc::control::request(socket, &ControlRequest::Status { pool: None }).ok()?;
    if !reply.ok {
        return None;
    }
    parse_workers(&reply.text)
}

/// The pids of one pool's workers now (empty when corral does not answer).
pub fn pids_of(socket: &Path, pool: &str) -> Vec<i32> {
    pool_workers(socket)
        .unwrap_or_default()
        .into_iter()
        .filter(|(p, _)| p == pool)
        .flat_map(|(_, w)| w.into_iter().map(|w| w.pid))
        .collect()
}

/// Waits (up to `timeout`) until none of `old` serves `pool` any more: a
/// reload lets the old generation finish what it was doing, and a worker
/// keeps the Landlock rules it started with. `false` if some remain.
pub fn wait_old_gone(socket: &Path, pool: &str, old: &[i32], timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        let now = pids_of(socket, pool);
        if !now.iter().any(|p| old.contains(p)) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `(pool, workers)` from `corral status`'s JSON.
pub(crate) fn parse_workers(text: &str) -> Option<Vec<(String, Vec<Worker>)>> {
    let v: serde_json::Value = serde_json::from_str(text).ok()?;
    Some(
        v.as_array()?
            .iter()
            .map(|p| {
                let name = p["pool"].as_str().unwrap_or_default().to_string();
                let workers = p["processes"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|x| {
                        Some(Worker {
                            pid: i32::try_from(x["pid"].as_i64()?).ok()?,
                            requests: x["requests"].as_u64().unwrap_or(0),
                        })
                    })
                    .collect();
                (name, workers)
            })
            .collect(),
    )
}
