//! Every pool's numbers at one moment, as the master sees them: the one
//! data model behind the Prometheus exposition, the dashboard's JSON and
//! `corral top`. The master fills it from what it knows and from the
//! scoreboards it has already read without trust; nothing here reads
//! shared memory.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    /// corral's version.
    pub version: String,
    pub master_pid: u32,
    /// When the snapshot was taken (Unix seconds).
    pub time: f64,
    /// When the master started (Unix seconds).
    pub master_started: f64,
    /// Reloads the master carried out (each `corral reload`, SIGUSR2...).
    pub reloads: u64,
    /// The last few reloads, oldest first.
    pub recent_reloads: Vec<ReloadEvent>,
    /// Upper bounds (seconds) of the request-duration buckets; each pool's
    /// `durations.cumulative` has one more entry, for `+Inf`.
    pub duration_buckets: Vec<f64>,
    pub pools: Vec<PoolSnapshot>,
}

/// One reload: when, whether the new configuration was taken, and what
/// it did to each pool.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ReloadEvent {
    pub time: f64,
    pub ok: bool,
    /// The pools that got a new generation (reloaded, added, moved).
    pub pools: Vec<String>,
    /// The reload's summary lines, or why nothing changed.
    pub summary: String,
}

/// Where a pool's prototype is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PrototypeState {
    /// Up and forking workers.
    Running,
    /// Started, PHP not ready yet.
    #[default]
    Starting,
    /// ondemand with no worker: only the socket exists.
    Dormant,
    /// Died; waiting out the crash-loop back-off.
    Restarting,
}

impl PrototypeState {
    pub const ALL: [PrototypeState; 4] = [
        PrototypeState::Running,
        PrototypeState::Starting,
        PrototypeState::Dormant,
        PrototypeState::Restarting,
    ];

    pub fn label(self) -> &'static str {
        match self {
            PrototypeState::Running => "running",
            PrototypeState::Starting => "starting",
            PrototypeState::Dormant => "dormant",
            PrototypeState::Restarting => "restarting",
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PoolSnapshot {
    pub name: String,
    /// pm.status_listen: this is `<parent>_status`, reporting the parent.
    pub status_of: Option<String>,
    /// static, dynamic or ondemand.
    pub pm: String,
    pub prototype: PrototypeState,
    /// The number of the pool's current generation (a reload that changes
    /// the pool starts a new one).
    pub generation: u64,
    /// Reloads that gave this pool a new generation.
    pub reloads: u64,
    pub last_reload: Option<f64>,
    /// Seconds since the current generation started.
    pub start_since: u64,
    /// Connections accepted since the master started (every generation).
    pub accepted_conn: u64,
    pub listen_queue: u64,
    pub max_listen_queue: u64,
    pub listen_queue_len: u64,
    pub idle_processes: u64,
    pub active_processes: u64,
    pub total_processes: u64,
    pub max_active_processes: u64,
    pub max_children: u64,
    pub max_children_reached: u64,
    /// Slow requests since the master started (every generation).
    pub slow_requests: u64,
    pub durations: Durations,
    pub processes: Vec<ProcessSnapshot>,
    /// The pool's cgroup, when it has one.
    pub cgroup: Option<CgroupSnapshot>,
    /// The pool's OPcache, when a worker reported plausible numbers.
    pub opcache: Option<OpcacheSnapshot>,
    /// The last minutes, one sample a second, oldest first; only when
    /// asked for (`/api/snapshot?history=1`), so that the dashboard draws
    /// its charts at once instead of from its own first polls.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<Sample>,
}

/// A pool at one second of its history.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    pub time: f64,
    pub accepted_conn: u64,
    pub active_processes: u64,
}

/// A cumulative histogram of request durations.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Durations {
    /// Requests that took at most each bucket's bound; the last is `+Inf`,
    /// every request.
    pub cumulative: Vec<u64>,
    pub sum_seconds: f64,
}

impl Durations {
    pub fn count(&self) -> u64 {
        self.cumulative.last().copied().unwrap_or(0)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ProcessSnapshot {
    pub pid: u32,
    /// php-fpm's state label (Idle, Running, Reading headers...).
    pub state: String,
    pub requests: u64,
    /// The running request's time so far, or the last one's when idle.
    pub request_duration_seconds: f64,
    pub last_request_cpu: f64,
    pub last_request_memory: u64,
    pub start_since: u64,
    /// Of a generation that a reload replaced, finishing its requests.
    pub retiring: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CgroupSnapshot {
    pub cpu_seconds: Option<f64>,
    pub memory_bytes: Option<u64>,
    pub oom_kills: Option<u64>,
    pub pids: Option<u64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OpcacheSnapshot {
    pub used_memory: u64,
    pub free_memory: u64,
    pub wasted_memory: u64,
    pub hits: u64,
    pub misses: u64,
    pub cached_scripts: u64,
    pub hit_ratio: Option<f64>,
}

impl Snapshot {
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| "{}".into())
    }

    pub fn from_json(text: &str) -> Result<Snapshot, serde_json::Error> {
        serde_json::from_str(text)
    }
}
