//! The master's errors: one variant per step that can fail, with the pool
//! or path it failed for.

use std::path::PathBuf;

use crate::listen::ListenError;

/// Start-up failed; the master exits.
#[derive(Debug, thiserror::Error)]
pub enum MasterError {
    #[error("{0}")]
    Signals(#[source] corral_sys::SysError),
    #[error("{0}")]
    Pool(#[from] PoolError),
    #[error("Unable to create the PID file ({}): {source}", path.display())]
    PidFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// A pool could not be set up (at start or when a reload adds it).
#[derive(Debug, thiserror::Error)]
pub enum PoolError {
    #[error("{0}")]
    Listen(#[from] ListenError),
    #[error("[pool {pool}] cannot create the scoreboard: {source}")]
    Scoreboard {
        pool: String,
        #[source]
        source: corral_sys::SysError,
    },
    #[error("[pool {pool}] {source}")]
    AccessLog {
        pool: String,
        #[source]
        source: corral_sys::SysError,
    },
    #[error("Unable to create or open slowlog({}): {source}", path.display())]
    Slowlog {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// A prototype could not be started; the pool retries after a back-off.
#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    #[error("[pool {pool}] {source}")]
    Channel {
        pool: String,
        #[source]
        source: corral_ipc::ChannelError,
    },
    #[error("[pool {0}] cannot render the pool configuration")]
    Render(String),
    #[error("[pool {pool}] cannot hand over the configuration: {source}")]
    ConfigMemfd {
        pool: String,
        #[source]
        source: corral_sys::SysError,
    },
    #[error("[pool {pool}] cannot share the parent's scoreboard: {source}")]
    StatusBoard {
        pool: String,
        #[source]
        source: corral_sys::SysError,
    },
    #[error("[pool {pool}] {source}")]
    Exec {
        pool: String,
        #[source]
        source: corral_sys::SysError,
    },
}

/// A reload changed nothing; the previous configuration keeps running.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    #[error("failed to reload: the configuration in '{}' is not valid; still running the previous one\n{}", path.display(), details.join("\n"))]
    Invalid { path: PathBuf, details: Vec<String> },
    #[error("failed to reload: {0}; still running the previous configuration")]
    Users(#[from] crate::users::UserError),
    #[error("no pool named '{0}'")]
    UnknownPool(String),
    #[error("no running pool named '{0}' to restart")]
    NotRunning(String),
}

impl ReloadError {
    /// What `corral reload|restart|status` exits with for this refusal.
    pub fn exit_code(&self) -> corral_ipc::ExitCode {
        match self {
            ReloadError::Invalid { .. } | ReloadError::Users(_) => corral_ipc::ExitCode::Config,
            ReloadError::UnknownPool(_) | ReloadError::NotRunning(_) => {
                corral_ipc::ExitCode::Failure
            }
        }
    }
}
