//! Process-management policy as a pure function: given what a pool looks
//! like now, what should the master do? No processes here, so every rule is
//! unit-tested directly (php-fpm's fpm_pctl_perform_idle_server_maintenance
//! and fpm_pctl_on_socket_accept).

use std::time::Duration;

use corral_config::PmKind;

/// One worker as the policy sees it.
#[derive(Debug, Clone, Copy)]
pub struct WorkerView {
    pub pid: i32,
    pub idle: bool,
    /// When the worker was started (orders idle kills, oldest first).
    pub started_us: u64,
    /// Last state change (ondemand idle timeout).
    pub changed_us: u64,
}

#[derive(Debug, Clone)]
pub struct PoolView<'a> {
    pub name: &'a str,
    pub pm: PmKind,
    pub max_children: u32,
    pub start_servers: u32,
    pub min_spare: u32,
    pub max_spare: u32,
    pub max_spawn_rate: u32,
    pub idle_timeout: Duration,
    pub workers: &'a [WorkerView],
}

/// Per-pool memory of the policy between ticks.
#[derive(Debug, Clone, Default)]
pub struct PmState {
    pub spawn_rate: u32,
    /// "reached max_children" already logged for this episode.
    pub warned_max: bool,
    pub max_children_reached: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Spawn(u32),
    /// Graceful stop of one idle worker (SIGQUIT).
    StopIdle(i32),
    Log(corral_config::LogLevel, String),
}

/// Children to start when the pool starts.
pub fn initial(view: &PoolView) -> u32 {
    match view.pm {
        PmKind::Static => view.max_children,
        PmKind::Dynamic => view.start_servers,
        PmKind::Ondemand => 0,
    }
}

/// The 1-second maintenance tick.
pub fn tick(view: &PoolView, st: &mut PmState, now_us: u64) -> Vec<Action> {
    let mut out = Vec::new();
    let running = view.workers.len() as u32;
    let idle: Vec<&WorkerView> = view.workers.iter().filter(|w| w.idle).collect();
    let oldest_idle = idle.iter().min_by_key(|w| w.started_us).copied();
    if st.spawn_rate == 0 {
        st.spawn_rate = 1;
    }
    match view.pm {
        PmKind::Static => {
            if running < view.max_children {
                out.push(Action::Spawn(view.max_children - running));
            }
        }
        PmKind::Ondemand => {
            if let Some(w) = oldest_idle {
                let timeout = view.idle_timeout.as_micros() as u64;
                if now_us.saturating_sub(w.changed_us) > timeout {
                    out.push(Action::StopIdle(w.pid));
                }
            }
        }
        PmKind::Dynamic => {
            let idle_n = idle.len() as u32;
            if idle_n > view.max_spare {
                if let Some(w) = oldest_idle {
                    out.push(Action::StopIdle(w.pid));
                }
                st.spawn_rate = 1;
            } else if idle_n < view.min_spare {
                if running >= view.max_children {
                    if !st.warned_max {
                        out.push(Action::Log(
                            corral_config::LogLevel::Warning,
                            format!(
                                "[pool {}] server reached pm.max_children setting ({}), consider raising it",
                                view.name, view.max_children
                            ),
                        ));
                        st.warned_max = true;
                        st.max_children_reached += 1;
                    }
                    st.spawn_rate = 1;
                } else {
                    if st.spawn_rate >= 8 {
                        out.push(Action::Log(
                            corral_config::LogLevel::Warning,
                            format!(
                                "[pool {}] seems busy (you may need to increase pm.start_servers, or pm.min/max_spare_servers), spawning {} children, there are {} idle, and {} total children",
                                view.name, st.spawn_rate, idle_n, running
                            ),
                        ));
                    }
                    let n = st
                        .spawn_rate
                        .min(view.min_spare - idle_n)
                        .min(view.max_children - running);
                    if n > 0 {
                        out.push(Action::Spawn(n));
                        st.warned_max = false;
                    }
                    if st.spawn_rate < view.max_spawn_rate {
                        st.spawn_rate *= 2;
                    }
                }
            } else {
                st.spawn_rate = 1;
            }
        }
    }
    out
}

/// ondemand: a connection is waiting on the socket.
pub fn on_accept(view: &PoolView, st: &mut PmState) -> Vec<Action> {
    let running = view.workers.len() as u32;
    if running >= view.max_children {
        if !st.warned_max {
            st.warned_max = true;
            st.max_children_reached += 1;
            return vec![Action::Log(
                corral_config::LogLevel::Warning,
                format!(
                    "[pool {}] server reached max_children setting ({}), consider raising it",
                    view.name, view.max_children
                ),
            )];
        }
        return Vec::new();
    }
    if view.workers.iter().any(|w| w.idle) {
        return Vec::new();
    }
    st.warned_max = false;
    vec![Action::Spawn(1)]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view<'a>(pm: PmKind, workers: &'a [WorkerView]) -> PoolView<'a> {
        PoolView {
            name: "www",
            pm,
            max_children: 5,
            start_servers: 2,
            min_spare: 1,
            max_spare: 3,
            max_spawn_rate: 32,
            idle_timeout: Duration::from_secs(10),
            workers,
        }
    }

    fn w(pid: i32, idle: bool, started: u64) -> WorkerView {
        WorkerView {
            pid,
            idle,
            started_us: started,
            changed_us: started,
        }
    }

    #[test]
    fn static_refills_to_max_children() {
        let ws = [w(1, true, 0), w(2, false, 0)];
        let mut st = PmState::default();
        assert_eq!(
            tick(&view(PmKind::Static, &ws), &mut st, 0),
            vec![Action::Spawn(3)]
        );
    }

    #[test]
    fn dynamic_kills_oldest_idle_above_max_spare() {
        let ws = [
            w(1, true, 30),
            w(2, true, 10),
            w(3, true, 20),
            w(4, true, 40),
        ];
        let mut st = PmState::default();
        assert_eq!(
            tick(&view(PmKind::Dynamic, &ws), &mut st, 0),
            vec![Action::StopIdle(2)]
        );
    }

    #[test]
    fn dynamic_spawn_rate_doubles_and_is_capped_by_room() {
        let mut v = view(PmKind::Dynamic, &[]);
        v.min_spare = 5;
        v.max_spare = 5;
        v.max_children = 50;
        let mut st = PmState::default();
        let mut rates = Vec::new();
        for _ in 0..4 {
            let acts = tick(&v, &mut st, 0);
            rates.extend(acts.into_iter().filter_map(|a| match a {
                Action::Spawn(n) => Some(n),
                _ => None,
            }));
        }
        assert_eq!(rates, vec![1, 2, 4, 5]);
    }

    #[test]
    fn dynamic_warns_once_at_max_children() {
        let ws: Vec<WorkerView> = (0..5).map(|i| w(i, false, 0)).collect();
        let v = view(PmKind::Dynamic, &ws);
        let mut st = PmState::default();
        let a = tick(&v, &mut st, 0);
        assert!(
            matches!(&a[0], Action::Log(_, m) if m.contains("server reached pm.max_children setting (5)"))
        );
        assert!(tick(&v, &mut st, 0).is_empty());
        assert_eq!(st.max_children_reached, 1);
    }

    #[test]
    fn ondemand_spawns_only_without_idle_and_under_max() {
        let mut st = PmState::default();
        assert_eq!(
            on_accept(&view(PmKind::Ondemand, &[]), &mut st),
            vec![Action::Spawn(1)]
        );
        let ws = [w(1, true, 0)];
        assert!(on_accept(&view(PmKind::Ondemand, &ws), &mut st).is_empty());
        let full: Vec<WorkerView> = (0..5).map(|i| w(i, false, 0)).collect();
        let a = on_accept(&view(PmKind::Ondemand, &full), &mut st);
        assert!(
            matches!(&a[0], Action::Log(_, m) if m.contains("server reached max_children setting (5)"))
        );
    }

    #[test]
    fn ondemand_stops_idle_after_timeout() {
        let ws = [w(1, true, 0)];
        let mut st = PmState::default();
        assert!(tick(&view(PmKind::Ondemand, &ws), &mut st, 5_000_000).is_empty());
        assert_eq!(
            tick(&view(PmKind::Ondemand, &ws), &mut st, 11_000_000),
            vec![Action::StopIdle(1)]
        );
    }
}
