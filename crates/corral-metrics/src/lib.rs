//! The operator's view of a corral master: every pool's numbers as one
//! [`Snapshot`], rendered as Prometheus/OpenMetrics text
//! ([`exposition`]), as JSON for the live dashboard ([`routes`]), and
//! served by a bounded non-blocking HTTP server ([`http`]) that the
//! master polls in its own event loop.

#![forbid(unsafe_code)]

pub mod cli;
pub mod exposition;
pub mod http;
pub mod live;
pub mod routes;
pub mod snapshot;

pub use exposition::Format;
pub use snapshot::{
    CgroupSnapshot, Durations, OpcacheSnapshot, PoolSnapshot, ProcessSnapshot, PrototypeState,
    ReloadEvent, Sample, Snapshot,
};
