//! The master's side of the operator's view: one snapshot of every pool
//! (`corral-metrics` renders it as Prometheus text, OpenMetrics, JSON and
//! the dashboard), built from what the master knows and from the
//! scoreboards read through `corral-status`' distrustful reader; and the
//! metrics server (`corral.metrics_listen`), whose sockets this loop polls.

use std::os::fd::RawFd;

use corral_ipc::control::MetricsFormat;
use corral_metrics::http::{Limits, Request, Server};
use corral_metrics::{
    CgroupSnapshot, OpcacheSnapshot, PoolSnapshot, ProcessSnapshot, PrototypeState, Snapshot,
};
use corral_status::{ProcState, Reader};

use crate::history::Carried;
use crate::master::{Master, PoolSup};
use crate::pool::Generation;

impl Master {
    /// Every pool of the running configuration, now; with `history`, each
    /// pool's last minutes too.
    pub(crate) fn snapshot_with(&self, history: bool) -> Snapshot {
        let mut s = self.snapshot();
        if history {
            for p in &mut s.pools {
                p.history = self.history.series(&p.name);
            }
        }
        s
    }

    /// Once a second while the metrics address is open: each pool's
    /// sample for the dashboard's charts. Only the two numbers the charts
    /// draw are read (no cgroup files, no process list).
    pub(crate) fn sample_history(&mut self) {
        if self.metrics.is_none() {
            return;
        }
        let time = crate::history::now_s();
        let samples = self
            .pools
            .values()
            .filter_map(|sup| {
                let name = sup.current.as_ref()?.cfg.name.clone();
                let mut accepted = self.history.carried(&name).accepted;
                let mut active = 0u64;
                for g in sup.gens() {
                    accepted =
                        accepted.saturating_add(Reader::new(g.board.words()).accepted_conn());
                    active += g.views().iter().filter(|w| !w.idle).count() as u64;
                }
                let sample = corral_metrics::Sample {
                    time,
                    accepted_conn: accepted,
                    active_processes: active,
                };
                Some((sup.name.clone(), sample))
            })
            .collect();
        self.history.sample(samples);
    }

    /// Every pool of the running configuration, now.
    pub(crate) fn snapshot(&self) -> Snapshot {
        Snapshot {
            version: env!("CARGO_PKG_VERSION").to_string(),
            master_pid: std::process::id(),
            time: crate::history::now_s(),
            master_started: self.history.started,
            reloads: self.history.reloads,
            recent_reloads: self.history.recent.iter().cloned().collect(),
            duration_buckets: corral_status::DURATION_BUCKETS_US
                .iter()
                .map(|&us| us as f64 / 1e6)
                .collect(),
            pools: self
                .pools
                .values()
                .filter_map(|sup| self.pool_snapshot(sup))
                .collect(),
        }
    }

    /// A configured pool (one draining after removal, or a pool's previous
    /// address, is not part of the configuration any more).
    fn pool_snapshot(&self, sup: &PoolSup) -> Option<PoolSnapshot> {
        let cur = sup.current.as_ref()?;
        let now = corral_status::now_us();
        let reader = Reader::new(cur.board.words());
        let published = reader.published();
        let reloads = self.history.pool(&cur.cfg.name);
        let mut counters = self.history.carried(&cur.cfg.name);
        let mut processes = Vec::new();
        for g in sup.gens() {
            counters.add(&generation_counters(g));
            processes.extend(process_snapshots(g, now));
        }
        let idle = processes.iter().filter(|p| p.state == "Idle").count() as u64;
        let total = processes.len() as u64;
        Some(PoolSnapshot {
            name: sup.name.clone(),
            status_of: sup.status_of.clone(),
            pm: cur.cfg.pm.name().to_string(),
            prototype: prototype_state(cur),
            generation: cur.id.number(),
            reloads: reloads.count,
            last_reload: reloads.last,
            start_since: (now / 1_000_000).saturating_sub(cur.started_s),
            accepted_conn: counters.accepted,
            listen_queue: published.listen_queue,
            max_listen_queue: published.max_listen_queue,
            listen_queue_len: published.listen_queue_len,
            idle_processes: idle,
            active_processes: total - idle,
            total_processes: total,
            max_active_processes: cur.max_active.max(total - idle),
            max_children: u64::from(cur.cfg.pm_max_children),
            max_children_reached: counters.max_children_reached,
            slow_requests: counters.slow_requests,
            durations: corral_metrics::Durations {
                cumulative: counters.durations.cumulative.to_vec(),
                sum_seconds: counters.durations.sum_us as f64 / 1e6,
            },
            processes,
            cgroup: self.cgroup_snapshot(&cur.cfg.name),
            opcache: sup.gens().find_map(opcache_snapshot),
            history: Vec::new(),
        })
    }

    fn cgroup_snapshot(&self, pool: &str) -> Option<CgroupSnapshot> {
        if !self.cgroups.contains_key(pool) {
            return None;
        }
        let u = self.os.cgroup_usage(pool)?;
        Some(CgroupSnapshot {
            cpu_seconds: u.cpu_usec.map(|us| us as f64 / 1e6),
            memory_bytes: u.memory_bytes,
            oom_kills: u.oom_kills,
            pids: u.pids,
        })
    }

    /// A generation is gone for good: its counters live on in the pool's.
    pub(crate) fn carry_counters(&mut self, g: &Generation) {
        self.history.carry(&g.cfg.name, &generation_counters(g));
    }

    /// The metrics page for `corral metrics`.
    pub(crate) fn metrics_text(&self, format: MetricsFormat) -> String {
        let snapshot = self.snapshot();
        match format {
            MetricsFormat::Text => {
                corral_metrics::exposition::encode(&snapshot, corral_metrics::Format::Prometheus)
            }
            MetricsFormat::OpenMetrics => {
                corral_metrics::exposition::encode(&snapshot, corral_metrics::Format::OpenMetrics)
            }
            MetricsFormat::Json => snapshot.to_json(),
        }
    }

    /// Listen where the configuration says (at start-up and after each
    /// reload): a new address closes the old one first. A failure is
    /// logged, never fatal: PHP is served without metrics.
    pub(crate) fn sync_metrics_server(&mut self) {
        let wanted = self.config.global.metrics_listen;
        if self.metrics.as_ref().map(|s| s.local_addr()) == wanted {
            return;
        }
        self.metrics = None;
        let Some(addr) = wanted else {
            return;
        };
        match Server::bind(addr, Limits::default()) {
            Ok(s) => {
                self.log.notice(&format!(
                    "metrics and dashboard on http://{addr}/ (Prometheus: /metrics)"
                ));
                self.metrics = Some(s);
            }
            Err(e) => self.log.error(&e.to_string()),
        }
    }

    /// One of the metrics server's descriptors is ready.
    pub(crate) fn handle_metrics(&mut self, fd: RawFd) {
        let Some(mut server) = self.metrics.take() else {
            return;
        };
        let loopback = corral_config::metrics::is_loopback(&server.local_addr());
        let this = &*self;
        let mut handler = |req: &Request| {
            corral_metrics::routes::respond(req, loopback, &mut |h| this.snapshot_with(h))
        };
        server.ready(fd, &mut handler);
        self.metrics = Some(server);
    }
}

fn prototype_state(g: &Generation) -> PrototypeState {
    match &g.proto {
        _ if g.dormant => PrototypeState::Dormant,
        Some(p) if p.ready => PrototypeState::Running,
        Some(_) => PrototypeState::Starting,
        None if g.restart_at.is_some() => PrototypeState::Restarting,
        None => PrototypeState::Starting,
    }
}

/// A generation's own counters: its workers' (from the scoreboard) and
/// the master's.
fn generation_counters(g: &Generation) -> Carried {
    let reader = Reader::new(g.board.words());
    Carried {
        accepted: reader.accepted_conn(),
        slow_requests: g.slow_requests,
        max_children_reached: g.pm.max_children_reached,
        durations: reader.durations(),
    }
}

/// The workers the master spawned, as their slots say (a slot whose pid
/// is not the worker's is skipped).
fn process_snapshots(g: &Generation, now_us: u64) -> Vec<ProcessSnapshot> {
    let reader = Reader::new(g.board.words());
    let mut out: Vec<ProcessSnapshot> = g
        .workers
        .iter()
        .filter_map(|(&pid, w)| {
            let s = reader.slot(w.slot, u32::try_from(pid).ok()?)?;
            let idle = s.state == ProcState::Idle;
            let duration_us = if idle {
                s.last_duration_us
            } else {
                now_us.saturating_sub(s.accepted_us)
            };
            Some(ProcessSnapshot {
                pid: s.pid,
                state: s.state.label().to_string(),
                requests: s.requests,
                request_duration_seconds: duration_us as f64 / 1e6,
                last_request_cpu: s.last_cpu_x100 as f64 / 100.0,
                last_request_memory: s.last_memory,
                start_since: now_us.saturating_sub(w.started_us) / 1_000_000,
                retiring: g.quit_sent,
            })
        })
        .collect();
    out.sort_by_key(|p| p.pid);
    out
}

fn opcache_snapshot(g: &Generation) -> Option<OpcacheSnapshot> {
    let o = Reader::new(g.board.words()).opcache()?;
    Some(OpcacheSnapshot {
        used_memory: o.used_memory,
        free_memory: o.free_memory,
        wasted_memory: o.wasted_memory,
        hits: o.hits,
        misses: o.misses,
        cached_scripts: o.cached_scripts,
        hit_ratio: o.hit_ratio(),
    })
}
