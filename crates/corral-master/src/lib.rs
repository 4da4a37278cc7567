//! The supervisor. It runs as root, single-threaded, and never loads PHP:
//! it creates the pools' sockets, starts one prototype per pool, applies
//! the process-management policy from the scoreboard, reloads pools one by
//! one, and handles signals and the control socket.

#![forbid(unsafe_code)]

mod cgroups;
pub mod control;
pub mod error;
mod event_loop;
mod history;
pub mod ids;
pub mod listen;
pub mod log;
pub mod master;
mod metrics;
pub mod os;
pub mod php_ini;
pub mod pm;
pub mod pool;
mod pool_cgroups;
mod prototypes;
mod reload;
pub mod restart;
mod signals;
pub mod slowlog;
pub mod systemd;
pub mod timeouts;
pub mod users;
pub mod worker_output;
pub mod zygote;

pub use cgroups::DEFAULT_SUBTREE as DEFAULT_CGROUP_SUBTREE;
pub use log::Logger;
pub use master::{run, MasterOptions, EXIT_CONFIG, EXIT_OK, EXIT_SOFTWARE};

#[cfg(test)]
mod testing;
#[cfg(test)]
mod tests;
