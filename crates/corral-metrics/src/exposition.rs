//! The snapshot as Prometheus text (0.0.4) or OpenMetrics, through
//! prometheus-client: one `pool` label on every series.
//!
//! php-fpm_exporter's metric set keeps its `phpfpm_` names (so existing
//! dashboards find them; counters end in `_total` as OpenMetrics wants);
//! what only corral knows is `corral_*`. docs/metrics.md lists them all.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::{Registry, Unit};

use crate::snapshot::{PoolSnapshot, PrototypeState, Snapshot};

/// Which text format a scraper gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `text/plain; version=0.0.4`
    Prometheus,
    /// `application/openmetrics-text; version=1.0.0`
    OpenMetrics,
}

impl Format {
    /// OpenMetrics when the `Accept` header names it (as Prometheus'
    /// scraper does), the classic text format otherwise.
    pub fn from_accept(accept: Option<&str>) -> Format {
        match accept {
            Some(a)
                if a.to_ascii_lowercase()
                    .contains("application/openmetrics-text") =>
            {
                Format::OpenMetrics
            }
            _ => Format::Prometheus,
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::Prometheus => prometheus_client::encoding::prometheus_text::CONTENT_TYPE,
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
        }
    }
}

/// The whole exposition of one snapshot.
pub fn encode(snapshot: &Snapshot, format: Format) -> String {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(SnapshotCollector(snapshot.clone())));
    let mut out = String::new();
    let done = match format {
        Format::Prometheus => {
            prometheus_client::encoding::prometheus_text::encode(&mut out, &registry)
        }
        Format::OpenMetrics => prometheus_client::encoding::text::encode(&mut out, &registry),
    };
    // Writing into a String cannot fail; a failed encoder would be a bug
    // in it, and an empty page says so better than a partial one.
    if done.is_err() {
        out.clear();
    }
    out
}

#[derive(Debug)]
struct SnapshotCollector(Snapshot);

type Enc<'a> = DescriptorEncoder<'a>;
type Res = Result<(), std::fmt::Error>;

/// One value per pool, when the pool has it.
fn per_pool<V>(
    enc: &mut Enc<'_>,
    pools: &[PoolSnapshot],
    name: &str,
    help: &str,
    unit: Option<&Unit>,
    kind: MetricType,
    value: impl Fn(&PoolSnapshot) -> Option<V>,
) -> Res
where
    V: Into<f64>,
{
    let rows: Vec<(&str, f64)> = pools
        .iter()
        .filter_map(|p| value(p).map(|v| (p.name.as_str(), v.into())))
        .collect();
    if rows.is_empty() {
        return Ok(());
    }
    let mut family = enc.encode_descriptor(name, help, unit, kind)?;
    for (pool, v) in rows {
        let labels = [("pool", pool)];
        let mut m = family.encode_family(&labels)?;
        match kind {
            MetricType::Counter => m.encode_counter::<NoLabelSet, f64, f64>(&v, None)?,
            _ => m.encode_gauge(&v)?,
        }
    }
    Ok(())
}

/// Counters are kept as u64 in the snapshot; as f64 they are exact up to
/// 2^53, which the scoreboard reader already clamps to.
fn n(v: u64) -> f64 {
    v as f64
}

impl Collector for SnapshotCollector {
    fn encode(&self, mut enc: DescriptorEncoder) -> Res {
        let s = &self.0;
        let pools = &s.pools;
        let e = &mut enc;
        use MetricType::{Counter, Gauge};
        let secs = Some(&Unit::Seconds);
        let bytes = Some(&Unit::Bytes);

        // php-fpm_exporter's set.
        per_pool(
            e,
            pools,
            "phpfpm_up",
            "1 while the pool can serve (its prototype runs or waits dormant for a connection).",
            None,
            Gauge,
            |p| {
                Some(n(matches!(
                    p.prototype,
                    PrototypeState::Running | PrototypeState::Dormant
                ) as u64))
            },
        )?;
        per_pool(
            e,
            pools,
            "phpfpm_start_since",
            "Seconds since the pool's current generation started.",
            secs,
            Gauge,
            |p| Some(n(p.start_since)),
        )?;
        per_pool(
            e,
            pools,
            "phpfpm_accepted_connections",
            "Connections the pool accepted since the master started.",
            None,
            Counter,
            |p| Some(n(p.accepted_conn)),
        )?;
        per_pool(
            e,
            pools,
            "phpfpm_listen_queue",
            "Connections waiting in the pool's listen queue.",
            None,
            Gauge,
            |p| Some(n(p.listen_queue)),
        )?;
        per_pool(
            e,
            pools,
            "phpfpm_max_listen_queue",
            "Most connections seen waiting in the listen queue.",
            None,
            Gauge,
            |p| Some(n(p.max_listen_queue)),
        )?;
        per_pool(
            e,
            pools,
            "phpfpm_listen_queue_length",
            "Size of the listen queue (the socket's backlog).",
            None,
            Gauge,
            |p| Some(n(p.listen_queue_len)),
        )?;
        per_pool(
            e,
            pools,
            "phpfpm_idle_processes",
            "Workers waiting for a request.",
            None,
            Gauge,
            |p| Some(n(p.idle_processes)),
        )?;
        per_pool(
            e,
            pools,
            "phpfpm_active_processes",
            "Workers serving a request.",
            None,
            Gauge,
            |p| Some(n(p.active_processes)),
        )?;
        per_pool(
            e,
            pools,
            "phpfpm_total_processes",
            "Workers, idle and active.",
            None,
            Gauge,
            |p| Some(n(p.total_processes)),
        )?;
        per_pool(
            e,
            pools,
            "phpfpm_max_active_processes",
            "Most workers active at once since the generation started.",
            None,
            Gauge,
            |p| Some(n(p.max_active_processes)),
        )?;
        per_pool(
            e,
            pools,
            "phpfpm_max_children_reached",
            "Times the pool wanted a worker beyond pm.max_children.",
            None,
            Counter,
            |p| Some(n(p.max_children_reached)),
        )?;
        per_pool(
            e,
            pools,
            "phpfpm_slow_requests",
            "Requests that ran past request_slowlog_timeout.",
            None,
            Counter,
            |p| Some(n(p.slow_requests)),
        )?;
        processes(e, pools)?;

        // What only corral knows.
        per_pool(
            e,
            pools,
            "corral_pool_max_children",
            "The pool's pm.max_children.",
            None,
            Gauge,
            |p| Some(n(p.max_children)),
        )?;
        prototype_state(e, pools)?;
        per_pool(
            e,
            pools,
            "corral_pool_generation",
            "The pool's current generation (a reload that changes the pool starts a new one).",
            None,
            Gauge,
            |p| Some(n(p.generation)),
        )?;
        per_pool(
            e,
            pools,
            "corral_pool_reloads",
            "Reloads that gave the pool a new generation.",
            None,
            Counter,
            |p| Some(n(p.reloads)),
        )?;
        per_pool(
            e,
            pools,
            "corral_pool_last_reload_timestamp",
            "When a reload last gave the pool a new generation (Unix time).",
            secs,
            Gauge,
            |p| p.last_reload,
        )?;
        durations(e, s)?;
        per_pool(
            e,
            pools,
            "corral_pool_cpu",
            "CPU time of everything in the pool's cgroup.",
            secs,
            Counter,
            |p| p.cgroup.as_ref()?.cpu_seconds,
        )?;
        per_pool(
            e,
            pools,
            "corral_pool_memory",
            "Memory charged to the pool's cgroup.",
            bytes,
            Gauge,
            |p| p.cgroup.as_ref()?.memory_bytes.map(n),
        )?;
        per_pool(
            e,
            pools,
            "corral_pool_oom_kills",
            "Processes the kernel's OOM killer ended in the pool's cgroup.",
            None,
            Counter,
            |p| p.cgroup.as_ref()?.oom_kills.map(n),
        )?;
        per_pool(
            e,
            pools,
            "corral_pool_pids",
            "Processes and threads in the pool's cgroup.",
            None,
            Gauge,
            |p| p.cgroup.as_ref()?.pids.map(n),
        )?;
        per_pool(
            e,
            pools,
            "corral_pool_opcache_used_memory",
            "OPcache memory holding scripts (as the pool's workers report it).",
            bytes,
            Gauge,
            |p| p.opcache.as_ref().map(|o| n(o.used_memory)),
        )?;
        per_pool(
            e,
            pools,
            "corral_pool_opcache_free_memory",
            "OPcache memory still free.",
            bytes,
            Gauge,
            |p| p.opcache.as_ref().map(|o| n(o.free_memory)),
        )?;
        per_pool(
            e,
            pools,
            "corral_pool_opcache_wasted_memory",
            "OPcache memory wasted by invalidated scripts.",
            bytes,
            Gauge,
            |p| p.opcache.as_ref().map(|o| n(o.wasted_memory)),
        )?;
        per_pool(
            e,
            pools,
            "corral_pool_opcache_hits",
            "OPcache lookups that found the script compiled.",
            None,
            Counter,
            |p| p.opcache.as_ref().map(|o| n(o.hits)),
        )?;
        per_pool(
            e,
            pools,
            "corral_pool_opcache_misses",
            "OPcache lookups that compiled the script.",
            None,
            Counter,
            |p| p.opcache.as_ref().map(|o| n(o.misses)),
        )?;
        per_pool(
            e,
            pools,
            "corral_pool_opcache_hit_ratio",
            "OPcache hits / (hits + misses).",
            None,
            Gauge,
            |p| p.opcache.as_ref()?.hit_ratio,
        )?;
        per_pool(
            e,
            pools,
            "corral_pool_opcache_cached_scripts",
            "Scripts in the pool's OPcache.",
            None,
            Gauge,
            |p| p.opcache.as_ref().map(|o| n(o.cached_scripts)),
        )?;
        master(e, s)
    }
}

/// php-fpm_exporter's per-process series, labelled by pool and pid.
fn processes(e: &mut Enc<'_>, pools: &[PoolSnapshot]) -> Res {
    type Row<'a> = (&'a str, String, &'a crate::snapshot::ProcessSnapshot);
    let rows: Vec<Row<'_>> = pools
        .iter()
        .flat_map(|p| {
            p.processes
                .iter()
                .map(move |pr| (p.name.as_str(), pr.pid.to_string(), pr))
        })
        .collect();
    if rows.is_empty() {
        return Ok(());
    }
    type Pick = fn(&crate::snapshot::ProcessSnapshot) -> f64;
    let families: [(&str, &str, Option<&Unit>, MetricType, Pick); 4] = [
        (
            "phpfpm_process_requests",
            "Requests the worker served.",
            None,
            MetricType::Counter,
            |p| p.requests as f64,
        ),
        (
            "phpfpm_process_request_duration",
            "The worker's current request so far, or its last one when idle.",
            Some(&Unit::Seconds),
            MetricType::Gauge,
            |p| p.request_duration_seconds,
        ),
        (
            "phpfpm_process_last_request_cpu",
            "CPU percent of the worker's last request.",
            None,
            MetricType::Gauge,
            |p| p.last_request_cpu,
        ),
        (
            "phpfpm_process_last_request_memory",
            "Peak memory of the worker's last request.",
            Some(&Unit::Bytes),
            MetricType::Gauge,
            |p| p.last_request_memory as f64,
        ),
    ];
    for (name, help, unit, kind, pick) in families {
        let mut family = e.encode_descriptor(name, help, unit, kind)?;
        for (pool, pid, pr) in &rows {
            let labels = [("pool", *pool), ("pid", pid.as_str())];
            let mut m = family.encode_family(&labels)?;
            let v = pick(pr);
            match kind {
                MetricType::Counter => m.encode_counter::<NoLabelSet, f64, f64>(&v, None)?,
                _ => m.encode_gauge(&v)?,
            }
        }
    }
    let mut family = e.encode_descriptor(
        "phpfpm_process_state",
        "1 for the worker's php-fpm state (Idle, Running, Reading headers...).",
        None,
        MetricType::Gauge,
    )?;
    for (pool, pid, pr) in &rows {
        let labels = [
            ("pool", *pool),
            ("pid", pid.as_str()),
            ("state", pr.state.as_str()),
        ];
        family.encode_family(&labels)?.encode_gauge(&1i64)?;
    }
    Ok(())
}

/// One series per state, 1 for the pool's and 0 for the others, so that
/// `corral_pool_prototype_state{state="dormant"} == 1` selects pools.
fn prototype_state(e: &mut Enc<'_>, pools: &[PoolSnapshot]) -> Res {
    if pools.is_empty() {
        return Ok(());
    }
    let mut family = e.encode_descriptor(
        "corral_pool_prototype_state",
        "1 for the state the pool's prototype is in: running, starting, dormant (ondemand, no process) or restarting.",
        None,
        MetricType::Gauge,
    )?;
    for p in pools {
        for st in PrototypeState::ALL {
            let labels = [("pool", p.name.as_str()), ("state", st.label())];
            family
                .encode_family(&labels)?
                .encode_gauge(&i64::from(p.prototype == st))?;
        }
    }
    Ok(())
}

/// The request-duration histogram, from the workers' buckets.
fn durations(e: &mut Enc<'_>, s: &Snapshot) -> Res {
    let pools: Vec<&PoolSnapshot> = s
        .pools
        .iter()
        .filter(|p| p.durations.cumulative.len() == s.duration_buckets.len() + 1)
        .collect();
    if pools.is_empty() {
        return Ok(());
    }
    let mut family = e.encode_descriptor(
        "corral_pool_request_duration",
        "Time from accepting a request to finishing it, as the pool's workers count it.",
        Some(&Unit::Seconds),
        MetricType::Histogram,
    )?;
    for p in pools {
        let bounds = s.duration_buckets.iter().copied().chain([f64::INFINITY]);
        // prometheus-client wants per-bucket counts and accumulates them.
        let mut prev = 0u64;
        let buckets: Vec<(f64, u64)> = bounds
            .zip(&p.durations.cumulative)
            .map(|(le, &c)| {
                let own = c.saturating_sub(prev);
                prev = prev.max(c);
                (le, own)
            })
            .collect();
        let labels = [("pool", p.name.as_str())];
        family
            .encode_family(&labels)?
            .encode_histogram::<NoLabelSet>(
                p.durations.sum_seconds,
                p.durations.count(),
                &buckets,
                None,
            )?;
    }
    Ok(())
}

/// The master's own series.
fn master(e: &mut Enc<'_>, s: &Snapshot) -> Res {
    let mut info = e.encode_descriptor(
        "corral_build_info",
        "corral's version.",
        None,
        MetricType::Gauge,
    )?;
    info.encode_family(&[("version", s.version.as_str())])?
        .encode_gauge(&1i64)?;
    let mut started = e.encode_descriptor(
        "corral_master_start_time",
        "When the master started (Unix time).",
        Some(&Unit::Seconds),
        MetricType::Gauge,
    )?;
    started.encode_gauge(&s.master_started)?;
    let mut reloads = e.encode_descriptor(
        "corral_reloads",
        "Reloads the master carried out (corral reload, SIGUSR2, SIGHUP).",
        None,
        MetricType::Counter,
    )?;
    reloads.encode_counter::<NoLabelSet, u64, u64>(&s.reloads, None)?;
    let mut pools = e.encode_descriptor(
        "corral_pools",
        "Pools in the running configuration.",
        None,
        MetricType::Gauge,
    )?;
    pools.encode_gauge(&(s.pools.len() as u64))
}
