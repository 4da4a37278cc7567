//! The master's supervision, reload and restart logic, driven through the
//! recording fake: the test plays each prototype on the far end of its
//! real control channel. Nothing here forks or needs root.

use std::path::{Path, PathBuf};
use std::time::Duration;

use corral_ipc::{FromPrototype, Received, ToPrototype, WaitStatus};

use crate::ids::{GenId, PoolId};
use crate::log::Logger;
use crate::master::{Master, MasterOptions};
use crate::testing::{FakeOs, FakeState};

struct Harness {
    m: Master,
    fake: FakeOs,
    dir: PathBuf,
    log: PathBuf,
}

fn pool(name: &str, dir: &Path, extra: &str) -> String {
    format!(
        "[{name}]\nlisten = {}/{name}.sock\npm = dynamic\npm.max_children = 4\npm.start_servers = 2\npm.min_spare_servers = 1\npm.max_spare_servers = 3\n{extra}\n",
        dir.display()
    )
}

impl Harness {
    fn new(tag: &str, pools: &[(&str, &str)]) -> Harness {
        Harness::with_fake(tag, pools, FakeOs::new())
    }

    fn with_fake(tag: &str, pools: &[(&str, &str)], fake: FakeOs) -> Harness {
        let dir = std::env::temp_dir().join(format!("corral-master-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let conf = dir.join("php-fpm.conf");
        write_conf(&conf, &dir, pools);
        let opts = MasterOptions {
            config_path: conf.clone(),
            allow_root: true,
            ..Default::default()
        };
        let load = corral_config::LoadOptions {
            allow_run_as_root: true,
            ..Default::default()
        };
        let config = corral_config::load(&conf, &load).expect("test config loads");
        let log_path = dir.join("master.log");
        let mut log = Logger::stderr();
        log.open(log_path.clone()).unwrap();
        let mut m = Master::new(opts, config, log, Box::new(fake.clone()));
        m.open_pools().expect("pools open");
        let ids: Vec<PoolId> = m.pools.keys().copied().collect();
        for id in ids {
            m.start_or_sleep(id);
        }
        Harness {
            m,
            fake,
            dir,
            log: log_path,
        }
    }

    fn st(&self) -> std::cell::RefMut<'_, FakeState> {
        self.fake.0.borrow_mut()
    }

    fn rewrite(&self, pools: &[(&str, &str)]) {
        write_conf(&self.dir.join("php-fpm.conf"), &self.dir, pools);
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn execs(&self) -> usize {
        self.st().execs.len()
    }

    fn pid_of(&self, exec: usize) -> i32 {
        self.st().execs[exec].pid
    }

    /// The pool and generation the master runs exec #`exec` as.
    fn ids_of(&self, exec: usize) -> (PoolId, GenId) {
        let pid = self.pid_of(exec);
        self.m.find_prototype(pid).expect("a live prototype")
    }

    fn pool_id(&self, name: &str) -> PoolId {
        *self
            .m
            .pools
            .iter()
            .find(|(_, p)| p.name == name)
            .expect("pool exists")
            .0
    }

    /// Exec #`exec` says something; the master handles its channel.
    fn says(&mut self, exec: usize, msg: FromPrototype) {
        let (p, g) = self.ids_of(exec);
        self.st().execs[exec].chan.send(&msg, &[]).unwrap();
        self.m.handle_ctl(p, g);
    }

    /// Everything the master told exec #`exec` so far.
    fn orders(&self, exec: usize) -> Vec<ToPrototype> {
        let st = self.st();
        let chan = &st.execs[exec].chan;
        chan.set_nonblocking(true).unwrap();
        let mut out = Vec::new();
        while let Ok(Received::Message(m, _)) = chan.recv::<ToPrototype>() {
            out.push(m);
        }
        out
    }

    /// Ready, then a worker for every spawn order: the pool is up.
    fn bring_up(&mut self, exec: usize) -> Vec<i32> {
        self.says(exec, FromPrototype::Ready { layout: vec![] });
        let proto = self.pid_of(exec);
        let mut pids = Vec::new();
        for order in self.orders(exec) {
            let ToPrototype::Spawn { slot } = order else {
                panic!("unexpected order {order:?}");
            };
            let pid = {
                let mut st = self.st();
                let pid = st.new_pid();
                st.parents.insert(pid, proto);
                pid
            };
            self.says(
                exec,
                FromPrototype::Started {
                    pid,
                    slot,
                    captured: false,
                },
            );
            pids.push(pid);
        }
        self.m.after_events();
        pids
    }

    /// The kernel reports exec #`exec` dead.
    fn dies(&mut self, exec: usize, status: WaitStatus) {
        let pid = self.pid_of(exec);
        self.st().exits.push_back((pid, status));
        self.m.reap();
        self.m.after_events();
    }

    /// Pool #0 up, its first worker exits (fast recycling): the slot of
    /// the one replacement the master orders.
    fn recycle_first_worker(&mut self) -> u32 {
        let pids = self.bring_up(0);
        self.says(
            0,
            FromPrototype::Exited {
                pid: pids[0],
                status: WaitStatus::exited(0),
            },
        );
        match self.orders(0).as_slice() {
            [ToPrototype::Spawn { slot }] => *slot,
            other => panic!("expected one replacement spawn, got {other:?}"),
        }
    }

    fn advance(&self, by: Duration) {
        let mut st = self.st();
        st.now = Some(st.now() + by);
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn write_conf(path: &Path, dir: &Path, pools: &[(&str, &str)]) {
    let mut text = String::from("[global]\n");
    for (name, extra) in pools {
        text.push_str(&pool(name, dir, extra));
    }
    std::fs::write(path, text).unwrap();
}

#[test]
fn a_pool_starts_its_first_workers_once_its_prototype_is_ready() {
    let mut h = Harness::new("start", &[("a", "")]);
    assert_eq!(h.execs(), 1);
    {
        let st = h.st();
        let e = &st.execs[0];
        assert_eq!(e.title, "php-fpm: pool a");
        assert_eq!(e.args.pool, "a");
        assert!(e.board_sealed, "the scoreboard is sealed before exec");
    }
    assert!(h.orders(0).is_empty(), "no order before ready");
    let pids = h.bring_up(0);
    assert_eq!(pids.len(), 2, "pm.start_servers = 2");
    let (p, _) = h.ids_of(0);
    assert!(h.m.pools[&p].current.as_ref().unwrap().is_up());
    assert!(h.m.all_ready());
}

#[test]
fn reload_starts_the_new_generation_before_retiring_the_old() {
    let mut h = Harness::new("reload", &[("a", ""), ("b", "")]);
    h.bring_up(0);
    h.bring_up(1);
    h.rewrite(&[("a", "pm.max_children = 5"), ("b", "")]);
    let summary = h.m.reload(None).expect("valid config reloads");
    assert!(summary.contains("[pool a] reloaded"), "{summary}");
    assert!(summary.contains("[pool b] unchanged"), "{summary}");
    assert_eq!(h.execs(), 3, "one new prototype, for a only");
    assert_eq!(h.st().execs[2].args.pool, "a");

    // The new generation is not up yet: the old one keeps serving.
    h.m.after_events();
    assert!(h.orders(0).is_empty(), "old a told to quit too early");
    h.says(2, FromPrototype::Ready { layout: vec![] });
    h.m.after_events();
    assert!(
        h.orders(0).is_empty(),
        "old a told to quit before the new workers started"
    );
    // bring_up would send Ready again; answer the spawns by hand.
    let proto = h.pid_of(2);
    for order in h.orders(2) {
        let ToPrototype::Spawn { slot } = order else {
            panic!("{order:?}")
        };
        let pid = h.st().new_pid();
        h.st().parents.insert(pid, proto);
        h.says(
            2,
            FromPrototype::Started {
                pid,
                slot,
                captured: false,
            },
        );
    }
    h.m.after_events();
    assert_eq!(h.orders(0), vec![ToPrototype::Quit], "old a retires now");
    assert!(h.orders(1).is_empty(), "b is left alone");

    // The old generation goes when its prototype exits.
    let a = h.pool_id("a");
    assert_eq!(h.m.pools[&a].retiring.len(), 1);
    h.dies(0, WaitStatus::exited(0));
    assert!(h.m.pools[&a].retiring.is_empty());
    assert_eq!(h.execs(), 3, "a retired generation is not restarted");
}

/// `corral restart a`: a new generation of an unchanged pool, handed over
/// as a reload does, without reading the file (a broken one is no matter).
#[test]
fn restart_regenerates_only_the_named_pool_on_its_running_config() {
    let mut h = Harness::new("restart", &[("a", ""), ("b", "")]);
    h.bring_up(0);
    h.bring_up(1);
    let a = h.pool_id("a");
    let cfg_before = h.m.pools[&a].current.as_ref().unwrap().cfg.clone();
    std::fs::write(h.dir.join("php-fpm.conf"), "[[[ not a config").unwrap();
    let summary = h.m.restart(&["a".to_string()]).expect("a restarts");
    assert_eq!(summary, "[pool a] restarted");
    assert_eq!(h.execs(), 3, "one new prototype, for a only");
    assert_eq!(h.st().execs[2].args.pool, "a");
    assert_eq!(h.m.pools[&a].current.as_ref().unwrap().cfg, cfg_before);
    h.m.after_events();
    assert!(h.orders(0).is_empty(), "old a told to quit too early");
    h.bring_up(2);
    h.m.after_events();
    assert_eq!(h.orders(0), vec![ToPrototype::Quit], "old a retires now");
    assert!(h.orders(1).is_empty(), "b is left alone");

    let err = h.m.restart(&["nosuch".to_string()]).unwrap_err();
    assert_eq!(err.exit_code(), corral_ipc::ExitCode::Failure, "{err}");
    assert_eq!(h.execs(), 3, "an unknown name restarts nothing");
}

#[test]
fn a_crashed_prototype_restarts_at_once_and_a_crash_loop_backs_off() {
    let mut h = Harness::new("crash", &[("a", "")]);
    h.bring_up(0);
    h.advance(Duration::from_secs(60));
    h.dies(0, WaitStatus::signaled(libc::SIGKILL, false));
    assert_eq!(h.execs(), 2, "restarted at once after a healthy run");

    // It dies again right away, and again: the waits grow.
    let mut waits = Vec::new();
    for n in 1..5 {
        h.dies(n, WaitStatus::exited(78));
        assert_eq!(h.execs(), n + 1, "no restart before the back-off");
        let a = h.pool_id("a");
        let at = h.m.pools[&a].current.as_ref().unwrap().restart_at.unwrap();
        let wait = at - h.fake.0.borrow().now();
        waits.push(wait);
        h.advance(wait - Duration::from_millis(1));
        h.m.restart_due();
        assert_eq!(h.execs(), n + 1, "restarted before the back-off ended");
        h.advance(Duration::from_millis(1));
        h.m.restart_due();
        assert_eq!(h.execs(), n + 2, "restarted when the back-off ended");
    }
    assert_eq!(
        waits,
        [100, 200, 400, 800].map(Duration::from_millis).to_vec()
    );
    let log = h.log_text();
    assert!(log.contains("restarting it in 0.1s"), "{log}");
}

#[test]
fn a_removed_pool_drains_and_its_socket_goes() {
    let mut h = Harness::new("remove", &[("a", ""), ("b", "")]);
    h.bring_up(0);
    h.bring_up(1);
    let sock = h.dir.join("b.sock");
    std::fs::write(&sock, "").unwrap();
    h.rewrite(&[("a", "")]);
    let summary = h.m.reload(None).unwrap();
    assert!(summary.contains("[pool b] removed"), "{summary}");
    h.m.after_events();
    assert_eq!(h.orders(1), vec![ToPrototype::Quit]);
    assert!(h.orders(0).is_empty());
    let b = h.pool_id("b");
    assert!(h.m.pools[&b].current.is_none());
    h.dies(1, WaitStatus::exited(0));
    assert!(!h.m.pools.contains_key(&b), "the pool is gone once drained");
    assert!(!sock.exists(), "its socket is unlinked");
    assert_eq!(h.execs(), 2, "nothing restarted");
}

#[test]
fn a_broken_config_changes_nothing() {
    let mut h = Harness::new("broken", &[("a", "")]);
    h.bring_up(0);
    std::fs::write(h.dir.join("php-fpm.conf"), "[a]\npm = sometimes\n").unwrap();
    let err = h.m.reload(None).unwrap_err();
    assert!(
        matches!(err, crate::error::ReloadError::Invalid { .. }),
        "{err}"
    );
    assert_eq!(h.execs(), 1);
    assert!(h.orders(0).is_empty());
    assert!(h.m.reload(Some(&["nope".to_string()])).is_err());
}

#[test]
fn what_a_lying_prototype_claims_is_not_believed() {
    let mut h = Harness::new("lies", &[("a", "")]);
    h.says(0, FromPrototype::Ready { layout: vec![] });
    let slots: Vec<u32> = h
        .orders(0)
        .into_iter()
        .map(|o| match o {
            ToPrototype::Spawn { slot } => slot,
            other => panic!("{other:?}"),
        })
        .collect();
    // A pid that is someone else's child.
    h.st().parents.insert(4242, 1);
    h.says(
        0,
        FromPrototype::Started {
            pid: 4242,
            slot: slots[0],
            captured: false,
        },
    );
    // A slot it was never given.
    h.says(
        0,
        FromPrototype::Started {
            pid: 4243,
            slot: 99,
            captured: false,
        },
    );
    // Garbage on the channel.
    let (p, g) = h.ids_of(0);
    corral_sys::socket::send_with_fds(
        std::os::fd::AsRawFd::as_raw_fd(&h.st().execs[0].chan),
        b"started 1 0\n[pool b] forged",
        &[],
    )
    .unwrap();
    h.m.handle_ctl(p, g);
    let gen = h.m.pools[&p].current.as_ref().unwrap();
    assert!(!gen.workers.contains_key(&4242));
    assert!(!gen.workers.contains_key(&4243));
    // No exit report explains 4242 within the grace: it was a lie.
    assert!(!h.log_text().contains("which is not its child"));
    h.advance(crate::pool::UNVERIFIED_GRACE + Duration::from_millis(1));
    h.m.maintenance();
    let log = h.log_text();
    assert!(
        log.contains("prototype reported pid 4242 which is not its child"),
        "{log}"
    );
    assert!(log.contains("unexpected slot 99"), "{log}");
    assert!(log.contains("ignoring a malformed message"), "{log}");
    assert!(h.st().signals.is_empty(), "nobody was signalled");
}

#[test]
fn fast_recycling_is_not_a_warning() {
    let mut h = Harness::new("recycle", &[("a", "pm.max_requests = 2")]);
    let slot = h.recycle_first_worker();
    // A replacement that exits before the master looks at /proc: the
    // kernel no longer knows its parent.
    let gone = h.st().new_pid();
    h.says(
        0,
        FromPrototype::Started {
            pid: gone,
            slot,
            captured: false,
        },
    );
    h.says(
        0,
        FromPrototype::Exited {
            pid: gone,
            status: WaitStatus::exited(0),
        },
    );
    let log = h.log_text();
    assert!(!log.contains("WARNING"), "{log}");
    assert_eq!(h.orders(0).len(), 1, "the recycled worker is replaced");
}

#[test]
fn a_recycled_worker_whose_pid_was_reused_is_not_a_warning() {
    let mut h = Harness::new("reused", &[("a", "pm.max_requests = 2")]);
    let slot = h.recycle_first_worker();
    // The replacement served its two requests and was reaped, and its pid
    // went to a stranger before the master read the report.
    let reused = h.st().new_pid();
    h.st().parents.insert(reused, 1);
    h.says(
        0,
        FromPrototype::Started {
            pid: reused,
            slot,
            captured: false,
        },
    );
    let (p, _) = h.ids_of(0);
    assert!(!h.m.pools[&p]
        .current
        .as_ref()
        .unwrap()
        .workers
        .contains_key(&reused));
    h.says(
        0,
        FromPrototype::Exited {
            pid: reused,
            status: WaitStatus::exited(0),
        },
    );
    h.advance(crate::pool::UNVERIFIED_GRACE * 2);
    h.m.maintenance();
    let log = h.log_text();
    assert!(!log.contains("WARNING"), "{log}");
    assert!(h.st().signals.is_empty(), "the stranger was not signalled");
    match h.orders(0).as_slice() {
        [ToPrototype::Spawn { .. }] => {}
        other => panic!("the recycled worker is replaced once, got {other:?}"),
    }
    assert!(h.m.pools[&p]
        .current
        .as_ref()
        .unwrap()
        .unverified
        .is_empty());
}

#[test]
fn a_status_pool_reads_its_parent_board_read_only() {
    let mut h = Harness::new(
        "statuslisten",
        &[(
            "a",
            "pm.status_path = /status\npm.status_listen = 127.0.0.1:1",
        )],
    );
    // ondemand: dormant until its first connection.
    assert_eq!(h.execs(), 1);
    let status_pool = h.pool_id("a_status");
    h.m.start_prototype(status_pool);
    let st = h.st();
    assert_eq!(st.execs.len(), 2, "a and a_status");
    let status = st.execs.iter().find(|e| e.args.pool == "a_status").unwrap();
    assert_eq!(
        status.args.status_of.as_ref().map(|s| s.0.as_str()),
        Some("a")
    );
    assert_eq!(status.status_board_read_only, Some(true));
}

#[test]
fn a_failed_exec_is_retried_after_a_back_off() {
    let fake = FakeOs::new();
    fake.0.borrow_mut().failing_execs = 1;
    let dir = std::env::temp_dir().join(format!("corral-master-execfail2-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let conf = dir.join("php-fpm.conf");
    write_conf(&conf, &dir, &[("a", "")]);
    let load = corral_config::LoadOptions {
        allow_run_as_root: true,
        ..Default::default()
    };
    let config = corral_config::load(&conf, &load).unwrap();
    let mut m = Master::new(
        MasterOptions {
            config_path: conf,
            allow_root: true,
            ..Default::default()
        },
        config,
        Logger::stderr(),
        Box::new(fake.clone()),
    );
    m.open_pools().unwrap();
    let id = *m.pools.keys().next().unwrap();
    m.start_prototype(id);
    assert!(fake.0.borrow().execs.is_empty());
    let at = m.pools[&id].current.as_ref().unwrap().restart_at.unwrap();
    assert!(at > fake.0.borrow().now(), "a failed exec waits");
    fake.0.borrow_mut().now = Some(at);
    m.restart_due();
    assert_eq!(fake.0.borrow().execs.len(), 1);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_listening_socket_shut_down_by_a_tenant_is_opened_again() {
    let mut h = Harness::new("deadsock", &[("a", ""), ("b", "")]);
    h.bring_up(0);
    h.bring_up(1);
    let a = h.pool_id("a");
    let fd = std::os::fd::AsRawFd::as_raw_fd(&h.m.pools[&a].listen);
    h.st().dead_listeners.push(fd);
    h.m.maintenance();
    let new_a = h.pool_id("a");
    assert_ne!(new_a, a, "a moved onto a new socket");
    assert_eq!(
        h.orders(0),
        vec![ToPrototype::Quit],
        "workers on the dead socket quit"
    );
    assert_eq!(h.execs(), 3, "a new prototype on the new socket");
    assert_eq!(h.st().execs[2].args.pool, "a");
    assert!(h.orders(1).is_empty(), "b is not touched");
    let log = h.log_text();
    assert!(
        log.contains("was shut down by a process holding it"),
        "{log}"
    );
}

#[test]
fn isolation_reports_are_logged_kept_bounded_and_shown_in_status() {
    let mut h = Harness::new("isolation", &[("a", "")]);
    h.says(
        0,
        FromPrototype::Isolation {
            applied: true,
            what: "landlock ABI 7 applied (read-only: /usr)".into(),
        },
    );
    h.says(
        0,
        FromPrototype::Isolation {
            applied: false,
            what: "/proc: own processes only: EPERM".into(),
        },
    );
    let log = h.log_text();
    assert!(
        log.contains("NOTICE: [pool a] isolation: landlock ABI 7 applied (read-only: /usr)"),
        "{log}"
    );
    assert!(
        log.contains("WARNING: [pool a] isolation: /proc: own processes only: EPERM"),
        "{log}"
    );
    // A tenant flooding reports fills a bounded list, and the log with it.
    for i in 0..100 {
        h.says(
            0,
            FromPrototype::Isolation {
                applied: false,
                what: format!("flood {i}"),
            },
        );
    }
    let json: serde_json::Value =
        serde_json::from_str(&crate::control::status_json(&h.m, Some("a")).unwrap()).unwrap();
    let iso = &json[0]["isolation"];
    assert_eq!(
        iso["applied"][0],
        "landlock ABI 7 applied (read-only: /usr)"
    );
    assert_eq!(
        iso["lacking"].as_array().unwrap().len(),
        crate::pool::IsolationReport::MAX_ITEMS
    );
    assert_eq!(h.log_text().matches("flood").count(), 31);
    // A restarted prototype reports afresh.
    h.dies(0, WaitStatus::exited(1));
    assert_eq!(h.execs(), 2);
    let json: serde_json::Value =
        serde_json::from_str(&crate::control::status_json(&h.m, Some("a")).unwrap()).unwrap();
    assert_eq!(json[0]["isolation"]["applied"].as_array().unwrap().len(), 0);
}

#[test]
fn a_pool_without_landlock_is_given_no_ports_to_deny() {
    let h = Harness::new("noports", &[("a", ""), ("b", "")]);
    let st = h.st();
    assert!(st.execs.iter().all(|e| e.args.deny_connect.is_empty()));
}

mod cgroups {
    use super::*;
    use crate::testing::{leaf_procs, CgroupOp};
    use corral_isolation::cgroup::Usage;
    use corral_isolation::Limits;

    const LIMITED: &str = "corral.pids_max = 16\ncorral.memory_max = 64M";

    fn limited(pids: u64) -> Limits {
        Limits {
            pids_max: Some(pids),
            memory_max: Some(64 << 20),
            ..Default::default()
        }
    }

    fn gen_of(h: &Harness, exec: usize) -> u64 {
        h.ids_of(exec).1.number()
    }

    #[test]
    fn a_generation_leaf_is_made_before_its_prototype_execs() {
        let mut h = Harness::new("cg-start", &[("a", LIMITED)]);
        let g = gen_of(&h, 0);
        {
            let st = h.st();
            assert_eq!(
                st.cgroup_ops,
                vec![
                    (
                        0,
                        CgroupOp::Pool {
                            pool: "a".into(),
                            limits: limited(16),
                            previous: Limits::default()
                        }
                    ),
                    (0, CgroupOp::Leaf("a".into(), g)),
                ],
                "the limits and the leaf come before the exec"
            );
            assert_eq!(st.execs[0].cgroup, vec![leaf_procs("a", g)]);
        }
        assert!(
            h.log_text()
                .contains("NOTICE: [pool a] cgroup v1: pids.max=16"),
            "{}",
            h.log_text()
        );
        // A crash kills the leaf; the restarted prototype enters it again.
        h.bring_up(0);
        h.advance(Duration::from_secs(60));
        h.dies(0, WaitStatus::signaled(libc::SIGKILL, false));
        let st = h.st();
        assert_eq!(
            st.cgroup_ops[2..],
            [
                (1, CgroupOp::Kill("a".into(), g)),
                (1, CgroupOp::Leaf("a".into(), g)),
            ]
        );
        assert_eq!(st.execs[1].cgroup, vec![leaf_procs("a", g)]);
    }

    #[test]
    fn a_pool_without_limits_has_no_cgroup() {
        let mut h = Harness::new("cg-none", &[("a", "")]);
        h.bring_up(0);
        h.rewrite(&[("a", "pm.max_children = 5")]);
        h.m.reload(None).unwrap();
        h.dies(0, WaitStatus::exited(0));
        h.m.remove_cgroups();
        let st = h.st();
        assert!(st.execs.iter().all(|e| e.cgroup.is_empty()));
        assert_eq!(
            st.ops(),
            vec![CgroupOp::Close],
            "nothing made, nothing to remove"
        );
    }

    #[test]
    fn a_reload_updates_the_limits_and_ends_only_the_old_leaf() {
        let mut h = Harness::new("cg-reload", &[("a", LIMITED), ("b", LIMITED)]);
        h.bring_up(0);
        h.bring_up(1);
        let old = gen_of(&h, 0);
        h.rewrite(&[
            ("a", "corral.pids_max = 32\ncorral.memory_max = 64M"),
            ("b", LIMITED),
        ]);
        h.m.reload(None).unwrap();
        let new = gen_of(&h, 2);
        assert_ne!(old, new);
        let before = h.st().cgroup_ops.len();
        assert_eq!(
            h.st().cgroup_ops[4..],
            [
                (
                    2,
                    CgroupOp::Pool {
                        pool: "a".into(),
                        limits: limited(32),
                        previous: limited(16)
                    }
                ),
                (2, CgroupOp::Leaf("a".into(), new)),
            ]
        );
        assert_eq!(h.st().execs[2].cgroup, vec![leaf_procs("a", new)]);
        // The old generation drains and goes: its leaf only.
        h.dies(0, WaitStatus::exited(0));
        assert_eq!(
            h.st().ops()[before..],
            [
                CgroupOp::Kill("a".into(), old),
                CgroupOp::RemoveLeaf("a".into(), old),
            ],
            "the pool's cgroup stays for the new generation"
        );
    }

    #[test]
    fn a_removed_pool_loses_its_cgroup() {
        let mut h = Harness::new("cg-remove", &[("a", LIMITED), ("b", LIMITED)]);
        h.bring_up(0);
        h.bring_up(1);
        let gb = gen_of(&h, 1);
        h.rewrite(&[("a", LIMITED)]);
        h.m.reload(None).unwrap();
        h.m.after_events();
        let before = h.st().cgroup_ops.len();
        h.dies(1, WaitStatus::exited(0));
        assert_eq!(
            h.st().ops()[before..],
            [
                CgroupOp::Kill("b".into(), gb),
                CgroupOp::RemoveLeaf("b".into(), gb),
                CgroupOp::RemovePool("b".into()),
            ]
        );
        assert!(!h.m.cgroups.contains_key("b"));
        assert!(h.m.cgroups.contains_key("a"));
    }

    #[test]
    fn limits_dropped_on_reload_leave_the_cgroup_once_the_old_generation_goes() {
        let mut h = Harness::new("cg-drop", &[("a", LIMITED)]);
        h.bring_up(0);
        let old = gen_of(&h, 0);
        h.rewrite(&[("a", "")]);
        h.m.reload(None).unwrap();
        assert!(h.st().execs[1].cgroup.is_empty(), "no limits, no leaf");
        h.dies(0, WaitStatus::exited(0));
        assert_eq!(
            h.st().ops()[2..],
            [
                CgroupOp::Kill("a".into(), old),
                CgroupOp::RemoveLeaf("a".into(), old),
                CgroupOp::RemovePool("a".into()),
            ]
        );
    }

    #[test]
    fn stopping_removes_every_leaf_and_pool() {
        let mut h = Harness::new("cg-stop", &[("a", LIMITED), ("b", "")]);
        h.bring_up(0);
        let g = gen_of(&h, 0);
        h.m.remove_cgroups();
        assert_eq!(
            h.st().ops()[2..],
            [
                CgroupOp::RemoveLeaf("a".into(), g),
                CgroupOp::RemovePool("a".into()),
                CgroupOp::Close,
            ]
        );
    }

    #[test]
    fn a_host_without_cgroups_still_serves_the_pool() {
        let fake = FakeOs::new();
        fake.0.borrow_mut().no_cgroups = true;
        let mut h = Harness::with_fake("cg-nohost", &[("a", LIMITED)], fake);
        assert_eq!(h.execs(), 1);
        assert!(h.st().execs[0].cgroup.is_empty());
        assert_eq!(h.bring_up(0).len(), 2);
        let log = h.log_text();
        assert!(
            log.contains(
                "WARNING: [pool a] runs without a cgroup, its corral.* limits are not applied"
            ),
            "{log}"
        );
        assert!(h.m.cgroups.is_empty());
    }

    #[test]
    fn status_shows_what_the_cgroup_counts() {
        let mut h = Harness::new("cg-status", &[("a", LIMITED), ("b", "")]);
        h.bring_up(0);
        h.bring_up(1);
        h.st().usage.insert(
            "a".into(),
            Usage {
                cpu_usec: Some(2_500_000),
                memory_bytes: Some(41_943_040),
                oom_kills: Some(1),
                pids: Some(3),
            },
        );
        let json: serde_json::Value =
            serde_json::from_str(&crate::control::status_json(&h.m, None).unwrap()).unwrap();
        assert_eq!(
            json[0]["cgroup"],
            serde_json::json!({
                "cpu seconds": 2.5,
                "memory bytes": 41_943_040u64,
                "oom kills": 1,
                "pids current": 3,
            })
        );
        assert!(json[1].get("cgroup").is_none(), "b has no cgroup");
    }
}

/// A worker of pool `name` serves one request of `ms` milliseconds in its
/// slot, as a real worker writes it.
fn serve_one(h: &Harness, name: &str, ms: u64) {
    let id = h.pool_id(name);
    let g = h.m.pools[&id].current.as_ref().unwrap();
    let (&pid, w) = g.workers.iter().next().expect("a worker");
    let slot = corral_status::SlotWriter::new(g.board.words(), w.slot).unwrap();
    slot.init(pid as u32);
    slot.accepting();
    std::thread::sleep(Duration::from_millis(ms));
    slot.finished(0, 1 << 20);
}

#[test]
fn the_snapshot_counts_across_a_reload_and_names_what_it_changed() {
    let mut h = Harness::new("snapshot", &[("a", ""), ("b", "")]);
    h.bring_up(0);
    h.bring_up(1);
    serve_one(&h, "a", 0);
    serve_one(&h, "a", 12);
    let s = h.m.snapshot();
    let a = s.pools.iter().find(|p| p.name == "a").unwrap();
    assert_eq!(a.accepted_conn, 2);
    assert_eq!(a.durations.count(), 2);
    assert_eq!(a.durations.cumulative[0], 1, "one under 5 ms");
    assert_eq!(a.prototype, corral_metrics::PrototypeState::Running);
    assert_eq!((a.reloads, a.max_children), (0, 4));
    assert_eq!(
        a.processes.len(),
        1,
        "only the slot a worker wrote is shown"
    );
    assert!(a.opcache.is_none(), "no worker reported OPcache");
    let first_gen = a.generation;

    h.rewrite(&[("a", "pm.max_children = 5"), ("b", "")]);
    h.m.reload(None).unwrap();
    h.bring_up(2);
    h.dies(0, WaitStatus::exited(0));
    let s = h.m.snapshot();
    let a = s.pools.iter().find(|p| p.name == "a").unwrap();
    assert_eq!(a.accepted_conn, 2, "the departed generation still counts");
    assert_eq!(a.durations.count(), 2);
    assert!(a.generation > first_gen);
    assert_eq!(a.reloads, 1);
    assert_eq!(s.reloads, 1);
    assert_eq!(s.recent_reloads.last().unwrap().pools, ["a"]);
    let b = s.pools.iter().find(|p| p.name == "b").unwrap();
    assert_eq!(b.reloads, 0);

    let text = h.m.metrics_text(corral_ipc::control::MetricsFormat::Text);
    assert!(
        text.contains("phpfpm_accepted_connections_total{pool=\"a\"} 2"),
        "{text}"
    );
    assert!(
        text.contains("corral_pool_reloads_total{pool=\"b\"} 0"),
        "{text}"
    );
    assert!(text.contains("corral_reloads_total 1"), "{text}");

    assert!(h.m.reload(Some(&["nope".to_string()])).is_err());
    let s = h.m.snapshot();
    assert!(
        !s.recent_reloads.last().unwrap().ok,
        "a refused reload is listed"
    );
    assert_eq!(s.reloads, 1);
}

#[test]
fn the_snapshot_tells_a_dormant_pool_from_a_running_one() {
    let mut h = Harness::new(
        "dormant",
        &[
            ("a", ""),
            ("b", "pm = ondemand\npm.process_idle_timeout = 10s"),
        ],
    );
    h.bring_up(0);
    let s = h.m.snapshot();
    let state = |n: &str| s.pools.iter().find(|p| p.name == n).unwrap().prototype;
    assert_eq!(state("a"), corral_metrics::PrototypeState::Running);
    assert_eq!(state("b"), corral_metrics::PrototypeState::Dormant);
    let text = h.m.metrics_text(corral_ipc::control::MetricsFormat::Text);
    assert!(
        text.contains("corral_pool_prototype_state{pool=\"b\",state=\"dormant\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("phpfpm_up{pool=\"b\"} 1"),
        "a dormant pool can serve: {text}"
    );
}
