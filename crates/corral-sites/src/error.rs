//! Every way a `corral site` command can fail, each with the path, user,
//! step or command that failed, so the operator reads what to fix.

use std::path::PathBuf;

/// The one error type of this crate.
#[derive(Debug, thiserror::Error)]
pub enum SitesError {
    #[error("usage: {0}")]
    Usage(String),
    #[error("invalid domain '{domain}': {why}")]
    Domain { domain: String, why: String },
    #[error("invalid user name '{name}': {why}")]
    UserName { name: String, why: String },
    #[error("invalid setting '{key}': {why}")]
    Setting { key: String, why: String },
    #[error("{file}:{line}: {why}")]
    Template {
        file: String,
        line: usize,
        why: String,
    },
    #[error("template '{name}' not found (looked in {searched})")]
    TemplateMissing { name: String, searched: String },
    #[error("rendered pool file {path} is not valid:\n{errors}")]
    PoolInvalid { path: PathBuf, errors: String },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("`{command}` failed: {output}")]
    Command { command: String, output: String },
    #[error("user '{name}' {why}")]
    UserConflict { name: String, why: String },
    #[error("site {domain}: {why}")]
    Site { domain: String, why: String },
    #[error("registry file {path} is damaged: {why}")]
    Registry { path: PathBuf, why: String },
    #[error("corral at {socket}: {why}")]
    Corral { socket: PathBuf, why: String },
    #[error("verification failed: {0}")]
    Verify(String),
    #[error("not enough memory for PHP: {0}")]
    Sizing(String),
    /// `--disk-quota` on a filesystem that cannot enforce it.
    #[error("filesystem {path} ({fstype} on {device}) has no group quotas: {why}")]
    Quota {
        path: PathBuf,
        fstype: String,
        device: String,
        why: String,
    },
    #[error("failure injected at step '{0}' (CORRAL_SITES_FAIL_AT)")]
    Injected(String),
    /// A step failed and the changes made before it were undone.
    #[error("step '{step}' failed: {cause}{}", rollback_note(.rollback_errors))]
    StepFailed {
        step: String,
        cause: Box<SitesError>,
        rollback_errors: Vec<String>,
    },
}

fn rollback_note(errors: &[String]) -> String {
    if errors.is_empty() {
        "\nevery change made before it was rolled back".to_string()
    } else {
        format!(
            "\nrollback was incomplete; fix by hand:\n  {}",
            errors.join("\n  ")
        )
    }
}

impl SitesError {
    /// Wraps an I/O error with the path it concerned.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        SitesError::Io {
            path: path.into(),
            source,
        }
    }
}

impl SitesError {
    /// The exit code from corral's one table: bad words on the command line
    /// are usage errors, a template or pool file that does not validate is
    /// a configuration error, a permission refused means "be root", the
    /// rest is a failure (whose changes were rolled back).
    pub fn exit_code(&self) -> corral_ipc::ExitCode {
        use corral_ipc::ExitCode;
        match self {
            SitesError::Usage(_)
            | SitesError::Domain { .. }
            | SitesError::UserName { .. }
            | SitesError::Setting { .. } => ExitCode::Usage,
            SitesError::Template { .. }
            | SitesError::TemplateMissing { .. }
            | SitesError::PoolInvalid { .. } => ExitCode::Config,
            SitesError::Io { source, .. }
                if source.kind() == std::io::ErrorKind::PermissionDenied =>
            {
                ExitCode::NoPerm
            }
            SitesError::StepFailed { cause, .. } if cause.exit_code() == ExitCode::NoPerm => {
                ExitCode::NoPerm
            }
            _ => ExitCode::Failure,
        }
    }
}

pub type Result<T, E = SitesError> = std::result::Result<T, E>;
