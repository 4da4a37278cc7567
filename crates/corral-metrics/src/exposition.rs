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

/// A sample's value: counts print as integers, the rest as floats.
#[derive(Debug, Clone, Copy)]
enum Num {
    U(u64),
    F(f64),
}

/// One per-pool family: its name (before the unit and `_total` suffixes
/// the encoder adds), help, unit, type, and the pool's value when it has
/// one.
struct Series {
    name: &'static str,
    help: &'static str,
    unit: Option<Unit>,
    kind: MetricType,
    value: fn(&PoolSnapshot) -> Option<Num>,
}

const fn s(
    name: &'static str,
    help: &'static str,
    unit: Option<Unit>,
    kind: MetricType,
    value: fn(&PoolSnapshot) -> Option<Num>,
) -> Series {
    Series {
        name,
        help,
        unit,
        kind,
        value,
    }
}

use MetricType::{Counter, Gauge};
use Num::{F, U};
const SECONDS: Option<Unit> = Some(Unit::Seconds);
const BYTES: Option<Unit> = Some(Unit::Bytes);

/// php-fpm_exporter's pool set, under its names.
#[rustfmt::skip]
const PHPFPM: &[Series] = &[
    s("phpfpm_up", "1 while the pool can serve (its prototype runs, or waits dormant for a connection).", None, Gauge,
        |p| Some(U(u64::from(matches!(p.prototype, PrototypeState::Running | PrototypeState::Dormant))))),
    s("phpfpm_start_since", "Seconds since the pool's current generation started.", SECONDS, Gauge, |p| Some(U(p.start_since))),
    s("phpfpm_accepted_connections", "Connections the pool accepted since the master started.", None, Counter, |p| Some(U(p.accepted_conn))),
    s("phpfpm_listen_queue", "Connections waiting in the pool's listen queue.", None, Gauge, |p| Some(U(p.listen_queue))),
    s("phpfpm_max_listen_queue", "Most connections seen waiting in the listen queue.", None, Gauge, |p| Some(U(p.max_listen_queue))),
    s("phpfpm_listen_queue_length", "Size of the listen queue (the socket's backlog; TCP only).", None, Gauge, |p| Some(U(p.listen_queue_len))),
    s("phpfpm_idle_processes", "Workers waiting for a request.", None, Gauge, |p| Some(U(p.idle_processes))),
    s("phpfpm_active_processes", "Workers serving a request.", None, Gauge, |p| Some(U(p.active_processes))),
    s("phpfpm_total_processes", "Workers, idle and active.", None, Gauge, |p| Some(U(p.total_processes))),
    s("phpfpm_max_active_processes", "Most workers active at once since the generation started.", None, Gauge, |p| Some(U(p.max_active_processes))),
    s("phpfpm_max_children_reached", "Times the pool wanted a worker beyond pm.max_children.", None, Counter, |p| Some(U(p.max_children_reached))),
    s("phpfpm_slow_requests", "Requests that ran past request_slowlog_timeout.", None, Counter, |p| Some(U(p.slow_requests))),
];

/// What only corral knows, per pool.
#[rustfmt::skip]
const CORRAL: &[Series] = &[
    s("corral_pool_max_children", "The pool's pm.max_children.", None, Gauge, |p| Some(U(p.max_children))),
    s("corral_pool_generation", "Id of the pool's current generation (it grows whenever a reload starts a new one).", None, Gauge, |p| Some(U(p.generation))),
    s("corral_pool_reloads", "Reloads that gave the pool a new generation.", None, Counter, |p| Some(U(p.reloads))),
    s("corral_pool_last_reload_timestamp", "When a reload last gave the pool a new generation (Unix time).", SECONDS, Gauge, |p| p.last_reload.map(F)),
    s("corral_pool_cpu", "CPU time of everything in the pool's cgroup.", SECONDS, Counter, |p| p.cgroup.as_ref()?.cpu_seconds.map(F)),
    s("corral_pool_memory", "Memory charged to the pool's cgroup.", BYTES, Gauge, |p| p.cgroup.as_ref()?.memory_bytes.map(U)),
    s("corral_pool_oom_kills", "Processes the kernel's OOM killer ended in the pool's cgroup.", None, Counter, |p| p.cgroup.as_ref()?.oom_kills.map(U)),
    s("corral_pool_pids", "Processes and threads in the pool's cgroup.", None, Gauge, |p| p.cgroup.as_ref()?.pids.map(U)),
    s("corral_pool_opcache_used_memory", "OPcache memory holding scripts, as the pool's workers report it.", BYTES, Gauge, |p| p.opcache.as_ref().map(|o| U(o.used_memory))),
    s("corral_pool_opcache_free_memory", "OPcache memory still free.", BYTES, Gauge, |p| p.opcache.as_ref().map(|o| U(o.free_memory))),
    s("corral_pool_opcache_wasted_memory", "OPcache memory wasted by invalidated scripts.", BYTES, Gauge, |p| p.opcache.as_ref().map(|o| U(o.wasted_memory))),
    s("corral_pool_opcache_hits", "OPcache lookups that found the script compiled.", None, Counter, |p| p.opcache.as_ref().map(|o| U(o.hits))),
    s("corral_pool_opcache_misses", "OPcache lookups that had to compile the script.", None, Counter, |p| p.opcache.as_ref().map(|o| U(o.misses))),
    s("corral_pool_opcache_hit_ratio", "OPcache hits / (hits + misses).", None, Gauge, |p| p.opcache.as_ref()?.hit_ratio.map(F)),
    s("corral_pool_opcache_cached_scripts", "Scripts in the pool's OPcache.", None, Gauge, |p| p.opcache.as_ref().map(|o| U(o.cached_scripts))),
];

/// One family, one sample per pool that has a value; no family at all
/// when none has.
fn per_pool(enc: &mut Enc<'_>, pools: &[PoolSnapshot], series: &Series) -> Res {
    let rows: Vec<(&str, Num)> = pools
        .iter()
        .filter_map(|p| (series.value)(p).map(|v| (p.name.as_str(), v)))
        .collect();
    if rows.is_empty() {
        return Ok(());
    }
    let mut family =
        enc.encode_descriptor(series.name, series.help, series.unit.as_ref(), series.kind)?;
    for (pool, v) in rows {
        let labels = [("pool", pool)];
        let mut m = family.encode_family(&labels)?;
        match (series.kind, v) {
            (Counter, U(v)) => m.encode_counter::<NoLabelSet, u64, f64>(&v, None)?,
            (Counter, F(v)) => m.encode_counter::<NoLabelSet, f64, f64>(&v, None)?,
            (_, U(v)) => m.encode_gauge(&v)?,
            (_, F(v)) => m.encode_gauge(&v)?,
        }
    }
    Ok(())
}

impl Collector for SnapshotCollector {
    fn encode(&self, mut enc: DescriptorEncoder) -> Res {
        let snap = &self.0;
        for series in PHPFPM {
            per_pool(&mut enc, &snap.pools, series)?;
        }
        processes(&mut enc, &snap.pools)?;
        prototype_state(&mut enc, &snap.pools)?;
        for series in CORRAL {
            per_pool(&mut enc, &snap.pools, series)?;
        }
        durations(&mut enc, snap)?;
        master(&mut enc, snap)
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
