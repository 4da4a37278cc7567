//! The control socket: how `corral reload` and `corral status` reach a
//! running master. One line in, one answer out, then the connection closes.
//! The socket is 0600 and owned by the master's user (root), so only root
//! can reload or read every pool's status.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::time::Duration;

use corral_status::{ProcState, Reader};

use crate::master::Master;

pub fn listen(path: &Path) -> std::io::Result<UnixListener> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    if UnixStream::connect(path).is_ok() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::AddrInUse,
            "another corral master answers on it",
        ));
    }
    let _ = std::fs::remove_file(path);
    let l = UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    l.set_nonblocking(true)?;
    Ok(l)
}

/// Answer one client. The read is bounded in time so a silent client
/// cannot stall the master.
pub(crate) fn serve(m: &mut Master, stream: UnixStream) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let _ = stream.set_write_timeout(Some(Duration::from_secs(2)));
    let mut line = String::new();
    let mut reader = BufReader::new(match stream.try_clone() {
        Ok(s) => s,
        Err(_) => return,
    });
    if reader.read_line(&mut line).is_err() || line.len() > 4096 {
        return;
    }
    let mut words = line.split_whitespace();
    let answer = match words.next() {
        Some("reload") => {
            let pools: Vec<String> = words.map(str::to_string).collect();
            let only = (!pools.is_empty()).then_some(pools.as_slice());
            match m.reload(only) {
                Ok(summary) => format!("OK\n{summary}\n"),
                Err(e) => format!("ERROR\n{e}\n"),
            }
        }
        Some("status") => {
            let pool = words.next().map(str::to_string);
            status_json(m, pool.as_deref())
                .map_or_else(|e| format!("ERROR\n{e}\n"), |j| format!("OK\n{j}\n"))
        }
        _ => "ERROR\nunknown command (reload [POOL...] | status [POOL])\n".to_string(),
    };
    let mut w = stream;
    let _ = w.write_all(answer.as_bytes());
}

/// Every pool (or one) as JSON: counters and each process, from the
/// scoreboard as seen through the pids the master knows.
fn status_json(m: &Master, only: Option<&str>) -> Result<String, String> {
    let now = corral_status::now_us();
    let mut pools = Vec::new();
    for sup in &m.pools {
        if only.is_some_and(|n| n != sup.name) {
            continue;
        }
        // A removed pool (or a pool's previous address) that is still
        // draining is no longer part of the configuration.
        if sup.current.is_none() {
            continue;
        }
        let mut procs = Vec::new();
        let mut accepted = 0u64;
        let (mut idle, mut active) = (0u64, 0u64);
        let mut pm = "";
        let mut max_reached = 0;
        for g in sup.current.iter().chain(sup.retiring.iter()) {
            let reader = Reader::new(g.board.words());
            accepted += reader.accepted_conn();
            if sup.current.as_ref().is_some_and(|c| std::ptr::eq(c, g)) {
                pm = g.cfg.pm.name();
                max_reached = g.pm.max_children_reached;
            }
            for (&pid, w) in &g.workers {
                let Some(s) = reader.slot(w.slot, pid as u32) else {
                    continue;
                };
                if s.state == ProcState::Idle {
                    idle += 1;
                } else {
                    active += 1;
                }
                let duration = if s.state == ProcState::Idle {
                    s.last_duration_us
                } else {
                    now.saturating_sub(s.accepted_us)
                };
                procs.push(serde_json::json!({
                    "pid": pid,
                    "state": s.state.label(),
                    "start time": s.started_us / 1_000_000,
                    "start since": now.saturating_sub(s.started_us) / 1_000_000,
                    "requests": s.requests,
                    "request duration": duration,
                    "request method": s.method,
                    "request uri": s.uri,
                    "content length": s.content_length,
                    "user": s.user,
                    "script": s.script,
                    "last request memory": s.last_memory,
                    "retiring": g.quit_sent,
                }));
            }
        }
        pools.push(serde_json::json!({
            "pool": sup.name,
            "process manager": pm,
            "accepted conn": accepted,
            "idle processes": idle,
            "active processes": active,
            "total processes": idle + active,
            "max children reached": max_reached,
            "processes": procs,
        }));
    }
    if let Some(n) = only {
        if pools.is_empty() {
            return Err(format!("no pool named '{n}'"));
        }
    }
    Ok(serde_json::Value::Array(pools).to_string())
}

/// Client side: send one command, return (ok, text).
pub fn request(path: &Path, command: &str) -> std::io::Result<(bool, String)> {
    let mut s = UnixStream::connect(path)?;
    s.set_read_timeout(Some(Duration::from_secs(120)))?;
    s.write_all(command.as_bytes())?;
    s.write_all(b"\n")?;
    let mut out = String::new();
    std::io::Read::read_to_string(&mut s, &mut out)?;
    let (head, rest) = out.split_once('\n').unwrap_or((out.as_str(), ""));
    Ok((head == "OK", rest.trim_end().to_string()))
}
