//! The exposition of a two-pool snapshot, in both formats.

use corral_metrics::exposition::{encode, Format};
use corral_metrics::*;

fn pool(name: &str, accepted: u64) -> PoolSnapshot {
    PoolSnapshot {
        name: name.into(),
        pm: "static".into(),
        prototype: PrototypeState::Running,
        generation: 3,
        reloads: 1,
        last_reload: Some(1_700_000_000.0),
        accepted_conn: accepted,
        idle_processes: 1,
        active_processes: 1,
        total_processes: 2,
        max_children: 2,
        max_children_reached: 4,
        slow_requests: 2,
        durations: Durations {
            cumulative: vec![3, 5, 5],
            sum_seconds: 0.25,
        },
        processes: vec![ProcessSnapshot {
            pid: 4242,
            state: "Running".into(),
            requests: 7,
            request_duration_seconds: 0.5,
            ..Default::default()
        }],
        cgroup: Some(CgroupSnapshot {
            cpu_seconds: Some(1.5),
            memory_bytes: Some(1 << 20),
            oom_kills: Some(0),
            pids: Some(3),
        }),
        opcache: Some(OpcacheSnapshot {
            used_memory: 100,
            free_memory: 900,
            hits: 3,
            misses: 1,
            cached_scripts: 2,
            hit_ratio: Some(0.75),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn snapshot() -> Snapshot {
    let mut quoted = pool("we\"ird", 1);
    quoted.prototype = PrototypeState::Dormant;
    quoted.cgroup = None;
    quoted.opcache = None;
    Snapshot {
        version: "0.1.0".into(),
        master_pid: 1,
        time: 1_700_000_100.0,
        master_started: 1_700_000_000.0,
        reloads: 2,
        duration_buckets: vec![0.01, 0.1],
        pools: vec![pool("a", 10), pool("b", 20), quoted],
        ..Default::default()
    }
}

#[test]
fn prometheus_text_has_every_pool_labelled() {
    let text = encode(&snapshot(), Format::Prometheus);
    for line in [
        "phpfpm_accepted_connections_total{pool=\"a\"} 10",
        "phpfpm_accepted_connections_total{pool=\"b\"} 20",
        "phpfpm_max_children_reached_total{pool=\"a\"} 4",
        "phpfpm_slow_requests_total{pool=\"b\"} 2",
        "phpfpm_process_requests_total{pool=\"a\",pid=\"4242\"} 7",
        "phpfpm_process_state{pool=\"a\",pid=\"4242\",state=\"Running\"} 1",
        "corral_pool_prototype_state{pool=\"a\",state=\"running\"} 1",
        "corral_pool_prototype_state{pool=\"we\\\"ird\",state=\"dormant\"} 1",
        "corral_pool_prototype_state{pool=\"we\\\"ird\",state=\"running\"} 0",
        "corral_pool_generation{pool=\"a\"} 3",
        "corral_pool_reloads_total{pool=\"a\"} 1",
        "corral_pool_cpu_seconds_total{pool=\"a\"} 1.5",
        "corral_pool_memory_bytes{pool=\"b\"} 1048576",
        "corral_pool_opcache_hit_ratio{pool=\"a\"} 0.75",
        "corral_pool_request_duration_seconds_bucket{pool=\"a\",le=\"0.01\"} 3",
        "corral_pool_request_duration_seconds_bucket{pool=\"a\",le=\"0.1\"} 5",
        "corral_pool_request_duration_seconds_bucket{pool=\"a\",le=\"+Inf\"} 5",
        "corral_pool_request_duration_seconds_count{pool=\"a\"} 5",
        "corral_reloads_total 2",
        "corral_build_info{version=\"0.1.0\"} 1",
    ] {
        assert!(text.contains(line), "missing {line:?} in\n{text}");
    }
    assert!(!text.contains("# EOF"), "the classic format has no EOF");
    assert!(
        !text.contains("corral_pool_memory_bytes{pool=\"we"),
        "a pool without a cgroup has no cgroup series"
    );
}

#[test]
fn openmetrics_is_given_when_asked() {
    let f = Format::from_accept(Some(
        "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5",
    ));
    assert_eq!(f, Format::OpenMetrics);
    assert_eq!(Format::from_accept(Some("text/plain")), Format::Prometheus);
    assert_eq!(Format::from_accept(None), Format::Prometheus);
    let text = encode(&snapshot(), f);
    assert!(text.ends_with("# EOF\n"), "{text}");
    assert!(text.contains("# TYPE phpfpm_accepted_connections counter"));
    assert!(text.contains("# UNIT corral_pool_memory_bytes bytes"));
    assert!(text.contains("phpfpm_accepted_connections_total{pool=\"a\"} 10"));
}

#[test]
fn the_snapshot_round_trips_as_json() {
    let s = snapshot();
    assert_eq!(Snapshot::from_json(&s.to_json()).unwrap(), s);
}
