//! The master's side of the control socket (the wire format and the client
//! are in `corral_ipc::control`): reload and restart on request, and every
//! pool's status as JSON.

use std::os::unix::net::UnixStream;

use corral_ipc::control::{ControlReply, ControlRequest};

use corral_status::{ProcState, Reader};

use crate::master::Master;

/// Answer one client. The read is bounded in size and time so a silent or
/// flooding client cannot stall the master.
pub(crate) fn serve(m: &mut Master, stream: UnixStream) {
    let reply = match corral_ipc::control::read_request(&stream) {
        Ok(ControlRequest::Reload { pools }) => {
            let only = (!pools.is_empty()).then_some(pools.as_slice());
            match m.reload(only) {
                Ok(summary) => ControlReply::ok(summary),
                Err(e) => ControlReply::refused(e.exit_code(), e.to_string()),
            }
        }
        Ok(ControlRequest::Restart { pools }) => match m.restart(&pools) {
            Ok(summary) => ControlReply::ok(summary),
            Err(e) => ControlReply::refused(e.exit_code(), e.to_string()),
        },
        Ok(ControlRequest::Status { pool }) => match status_json(m, pool.as_deref()) {
            Ok(j) => ControlReply::ok(j),
            Err(e) => ControlReply::refused(e.exit_code(), e.to_string()),
        },
        Ok(ControlRequest::Metrics { format }) => ControlReply::ok(m.metrics_text(format)),
        Err(corral_ipc::control::ControlError::Read(_)) => return,
        Err(e) => ControlReply::refused(corral_ipc::ExitCode::Usage, e.to_string()),
    };
    corral_ipc::control::write_reply(&stream, &reply);
}

/// What the pool's cgroup counts (both generations of a reload together),
/// when it has one: what the kernel does not count is left out.
fn cgroup_json(m: &Master, sup: &crate::master::PoolSup) -> Option<serde_json::Value> {
    let name = &sup.current.as_ref()?.cfg.name;
    if !m.cgroups.contains_key(name) {
        return None;
    }
    let u = m.os.cgroup_usage(name)?;
    let mut out = serde_json::Map::new();
    if let Some(us) = u.cpu_usec {
        out.insert("cpu seconds".into(), serde_json::json!(us as f64 / 1e6));
    }
    let counts = [
        ("memory bytes", u.memory_bytes),
        ("oom kills", u.oom_kills),
        ("pids current", u.pids),
    ];
    for (key, v) in counts {
        if let Some(v) = v {
            out.insert(key.into(), serde_json::json!(v));
        }
    }
    Some(serde_json::Value::Object(out))
}

/// Every pool (or one) as JSON: counters and each process, from the
/// scoreboard as seen through the pids the master knows.
pub(crate) fn status_json(
    m: &Master,
    only: Option<&str>,
) -> Result<String, crate::error::ReloadError> {
    let now = corral_status::now_us();
    let mut pools = Vec::new();
    for sup in m.pools.values() {
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
        let mut isolation = serde_json::Value::Null;
        for g in sup.current.iter().chain(sup.retiring.iter()) {
            let reader = Reader::new(g.board.words());
            accepted += reader.accepted_conn();
            if sup.is_current(g.id) {
                pm = g.cfg.pm.name();
                max_reached = g.pm.max_children_reached;
                isolation = serde_json::json!({
                    "applied": g.isolation.applied,
                    "lacking": g.isolation.lacking,
                });
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
        let mut pool = serde_json::json!({
            "pool": sup.name,
            "process manager": pm,
            "accepted conn": accepted,
            "idle processes": idle,
            "active processes": active,
            "total processes": idle + active,
            "max children reached": max_reached,
            "processes": procs,
            "isolation": isolation,
        });
        if let Some(usage) = cgroup_json(m, sup) {
            pool["cgroup"] = usage;
        }
        pools.push(pool);
    }
    if let Some(n) = only {
        if pools.is_empty() {
            return Err(crate::error::ReloadError::UnknownPool(n.to_string()));
        }
    }
    Ok(serde_json::Value::Array(pools).to_string())
}
