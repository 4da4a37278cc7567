//! Diagnostics with php-fpm's exact wording and level.
//!
//! php-fpm reports configuration problems through zlog with a level
//! (ALERT for missing essentials, ERROR for bad values, WARNING/NOTICE for
//! things it fixes up).  Tools and tests compare these lines byte for byte
//! with php-fpm's, so every message text lives in [`ConfigError`] and is
//! rendered exactly once.

use std::fmt;
use std::path::PathBuf;

/// Severity of a diagnostic, matching zlog's levels that config code uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    Notice,
    Warning,
    Error,
    Alert,
}

impl Level {
    /// The upper-case name php-fpm prints before the message.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Notice => "NOTICE",
            Level::Warning => "WARNING",
            Level::Error => "ERROR",
            Level::Alert => "ALERT",
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The level to log a diagnostic at: a WARNING stays a WARNING even when
/// it travels in a failed load's [`ConfigErrors`].
impl From<Level> for crate::LogLevel {
    fn from(l: Level) -> Self {
        match l {
            Level::Notice => crate::LogLevel::Notice,
            Level::Warning => crate::LogLevel::Warning,
            Level::Error => crate::LogLevel::Error,
            Level::Alert => crate::LogLevel::Alert,
        }
    }
}

/// One message as php-fpm would log it (without the timestamp).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub level: Level,
    pub message: String,
}

impl Diagnostic {
    pub fn new(level: Level, message: impl Into<String>) -> Self {
        Diagnostic {
            level,
            message: message.into(),
        }
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.level, self.message)
    }
}

impl From<ConfigError> for Diagnostic {
    fn from(e: ConfigError) -> Self {
        Diagnostic::new(e.level(), e.to_string())
    }
}

/// A failed load: every line php-fpm would have printed, in order, ending
/// with "failed to load configuration file '..'" or "failed to post process
/// the configuration".  The caller adds "FPM initialization failed".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<Diagnostic>);

impl ConfigErrors {
    /// The first ERROR/ALERT, which is the one that explains the failure.
    pub fn first_error(&self) -> Option<&Diagnostic> {
        self.0.iter().find(|d| d.level >= Level::Error)
    }
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// Every way loading can fail or warn.  The `Display` text is php-fpm's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    // ---- reading files -------------------------------------------------
    /// open(2) failed; php-fpm logs it as SYSERROR with strerror appended.
    #[error("failed to open configuration file '{path}': {reason}")]
    Open { path: PathBuf, reason: String },
    #[error("configuration filename is empty")]
    EmptyFilename,
    #[error("failed to include more than 5 files recursively")]
    IncludeDepth,
    #[error("Unable to globalize '{pattern}' (ret=2) from {file} at line {line}.")]
    Globalize {
        pattern: String,
        file: String,
        line: usize,
    },
    #[error("Unable to include {path} from {file} at line {line}")]
    Include {
        path: String,
        file: String,
        line: usize,
    },
    #[error("Nothing matches the include pattern '{pattern}' from {file} at line {line}.")]
    IncludeNothingMatches {
        pattern: String,
        file: String,
        line: usize,
    },
    #[error("failed to load configuration file '{0}'")]
    LoadFailed(String),
    #[error("failed to post process the configuration")]
    PostProcessFailed,
    #[error("the global prefix '{0}' does not exist or is not a directory")]
    GlobalPrefix(String),

    // ---- line syntax ---------------------------------------------------
    /// php-fpm prints the Zend INI parser's bison message without position
    /// ("PHP:  syntax error, unexpected ..."); we add the position.
    #[error("[{file}:{line}] syntax error, {detail}")]
    Syntax {
        file: String,
        line: usize,
        detail: String,
    },
    #[error("[{file}:{line}] value is NULL for a ZEND_INI_PARSER_ENTRY")]
    NullValue { file: String, line: usize },
    #[error("[{file}:{line}] two includes at the same time !")]
    TwoIncludes { file: String, line: usize },

    // ---- entries -------------------------------------------------------
    #[error("[{file}:{line}] unknown entry '{name}'")]
    UnknownEntry {
        file: String,
        line: usize,
        name: String,
    },
    #[error("[{file}:{line}] unknown directive '{name}'")]
    UnknownDirective {
        file: String,
        line: usize,
        name: String,
    },
    #[error("[{file}:{line}] unable to parse value for entry '{name}': {reason}")]
    BadValue {
        file: String,
        line: usize,
        name: String,
        reason: String,
    },
    #[error("[{file}:{line}] Array are not allowed in the global section")]
    ArrayInGlobal { file: String, line: usize },
    #[error("[{file}:{line}] You must provide a key for field '{name}'")]
    MissingKey {
        file: String,
        line: usize,
        name: String,
    },
    #[error("[{file}:{line}] empty value")]
    EmptyEnvValue { file: String, line: usize },
    #[error("[{file}:{line}] Keys provided to field 'access.suppress_path' are ignored")]
    SuppressPathKey { file: String, line: usize },
    #[error("[{file}:{line}] Values provided to field 'access.suppress_path' must begin with '/'")]
    SuppressPathValue { file: String, line: usize },
    #[error("[{file}:{line}] error while parsing '{name}[{key}]' : {reason}")]
    BadArrayValue {
        file: String,
        line: usize,
        name: String,
        key: String,
        reason: String,
    },

    // ---- global post-processing ----------------------------------------
    #[error("log_limit must be greater than 512")]
    LogLimit,
    #[error("process_max can't be negative")]
    ProcessMax,
    #[error("process.priority must be included into [-19,20]")]
    GlobalPriority,
    #[error("event mechanism '{0}' is not available on this system")]
    EventMechanism(String),
    #[error("No pool defined. at least one pool section must be specified in config file")]
    NoPool,

    // ---- pool post-processing (fpm_conf_process_all_pools order) -------
    #[error("[pool {pool}] the prefix '{prefix}' does not exist or is not a directory")]
    PoolPrefix { pool: String, prefix: String },
    #[error("[pool {0}] user has not been defined")]
    NoUser(String),
    #[error("[pool {0}] no listen address have been defined!")]
    NoListen(String),
    #[error("[pool {0}] process.priority must be included into [-19,20]")]
    PoolPriority(String),
    #[error("[pool {0}] the process manager is missing (static, dynamic or ondemand)")]
    NoPm(String),
    #[error("[pool {0}] pm.max_children must be a positive value")]
    MaxChildren(String),
    #[error("[pool {pool}] pm.min_spare_servers({value}) must be a positive value")]
    MinSpare { pool: String, value: i64 },
    #[error("[pool {pool}] pm.max_spare_servers({value}) must be a positive value")]
    MaxSpare { pool: String, value: i64 },
    #[error("[pool {pool}] pm.min_spare_servers({min}) and pm.max_spare_servers({max}) cannot be greater than pm.max_children({children})")]
    SpareOverChildren {
        pool: String,
        min: i64,
        max: i64,
        children: i64,
    },
    #[error("[pool {pool}] pm.max_spare_servers({max}) must not be less than pm.min_spare_servers({min})")]
    SpareOrder { pool: String, max: i64, min: i64 },
    #[error("[pool {pool}] pm.start_servers is not set. It's been set to {value}.")]
    StartServersDefaulted { pool: String, value: i64 },
    #[error("[pool {pool}] pm.start_servers({start}) must not be less than pm.min_spare_servers({min}) and not greater than pm.max_spare_servers({max})")]
    StartServers {
        pool: String,
        start: i64,
        min: i64,
        max: i64,
    },
    #[error("[pool {0}] pm.max_spawn_rate must be a positive value")]
    SpawnRate(String),
    #[error("[pool {0}] ondemand process manager can ONLY be used when events.mechanism is either epoll (Linux) or kqueue (*BSD).")]
    OndemandEvents(String),
    #[error("[pool {pool}] pm.process_idle_timeout({value}s) must be greater than 0s")]
    IdleTimeout { pool: String, value: i64 },
    #[error("[pool {pool}] the status path '{path}' must start with a '/'")]
    StatusSlash { pool: String, path: String },
    #[error("[pool {pool}] the status path '{path}' is not long enough")]
    StatusShort { pool: String, path: String },
    #[error("[pool {pool}] the status path '{path}' must contain only the following characters '[alphanum]/_-.~'")]
    StatusChars { pool: String, path: String },
    #[error("[pool {pool}] the ping path '{path}' must start with a '/'")]
    PingSlash { pool: String, path: String },
    #[error("[pool {pool}] the ping path '{path}' is not long enough")]
    PingShort { pool: String, path: String },
    #[error("[pool {pool}] the ping path '{path}' must contain only the following characters '[alphanum]/_-.~'")]
    PingChars { pool: String, path: String },
    #[error("[pool {pool}] the ping response page '{response}' is not long enough")]
    PingResponse { pool: String, response: String },
    #[error("[pool {0}] 'slowlog' must be specified for use with 'request_slowlog_timeout'")]
    SlowlogNeededTimeout(String),
    #[error("[pool {pool}] 'request_slowlog_timeout' ({slow}) can't be greater than 'request_terminate_timeout' ({term})")]
    SlowlogOverTerminate { pool: String, slow: i64, term: i64 },
    #[error("[pool {0}] 'slowlog' must be specified for use with 'request_slowlog_trace_depth'")]
    SlowlogNeededDepth(String),
    #[error("[pool {pool}] 'request_slowlog_trace_depth' ({value}) must be a positive value")]
    TraceDepth { pool: String, value: i64 },
    #[error("'$prefix' must be use at the beginning of the value")]
    PrefixPlacement,
    #[error("[pool {pool}] the chroot path '{path}' must start with a '/'")]
    ChrootSlash { pool: String, path: String },
    #[error("[pool {pool}] the chroot path '{path}' does not exist or is not a directory")]
    ChrootMissing { pool: String, path: String },
    #[error("[pool {pool}] the chdir path '{path}' must start with a '/'")]
    ChdirSlash { pool: String, path: String },
    #[error("[pool {pool}] the chdir path '{path}' within the chroot path '{chroot}' ('{full}') does not exist or is not a directory")]
    ChdirInChroot {
        pool: String,
        path: String,
        chroot: String,
        full: String,
    },
    #[error("[pool {pool}] the chdir path '{path}' does not exist or is not a directory")]
    ChdirMissing { pool: String, path: String },
    #[error(
        "[pool {pool}] unable to set listen address as it's already used in another pool '{other}'"
    )]
    DuplicateListen { pool: String, other: String },
    /// The detail line php-fpm logs (WARNING) before the summary below.
    #[error("{0}")]
    AccessFormatDetail(String),
    #[error("[pool {pool}] wrong format for access.format '{format}'")]
    AccessFormat { pool: String, format: String },

    // ---- corral's own directives ----------------------------------------
    #[error("[pool {pool}] '{directive}' has no effect without '{needs}'")]
    CorralNeeds {
        pool: String,
        directive: &'static str,
        needs: &'static str,
    },

    // ---- corral's metrics server (metrics.rs) --------------------------
    #[error("corral.metrics_listen = {0} is reachable from other hosts: the metrics and the dashboard name every pool and its load. Listen on loopback (127.0.0.1:PORT) and let a local Prometheus or a proxy with authentication reach it, or set corral.metrics_allow_remote = yes")]
    MetricsRemote(String),
    #[error("corral.metrics_listen = {0} is reachable from other hosts (corral.metrics_allow_remote = yes): anyone who can connect sees every pool's name and load, without authentication")]
    MetricsRemoteAllowed(String),

    // ---- corral's warnings about reachable listeners (exposure.rs) -------
    #[error("[pool {pool}] {directive} = {address} is a TCP socket without listen.allowed_clients: every process on this host, other tenants' PHP included, {consequence}. Listen on a unix socket that only the web server may connect to, or set listen.allowed_clients to the web server's address.")]
    TcpListenerOpen {
        pool: String,
        directive: &'static str,
        address: String,
        consequence: &'static str,
    },
    #[error("[pool {pool}] {directive} = {address} admits clients on loopback (listen.allowed_clients = {allowed}), where the PHP of all {pools} pools on this host connects from too, so another tenant {consequence}. Listen on a unix socket that only the web server may connect to.")]
    TcpListenerLoopback {
        pool: String,
        directive: &'static str,
        address: String,
        allowed: String,
        pools: usize,
        consequence: &'static str,
    },

    // ---- start-up only ---------------------------------------------------
    #[error("invalid port value '{0}'")]
    InvalidPort(String),
}

impl ConfigError {
    /// The zlog level php-fpm uses for this message.
    pub fn level(&self) -> Level {
        use ConfigError::*;
        match self {
            IncludeNothingMatches { .. }
            | AccessFormatDetail(_)
            | TcpListenerOpen { .. }
            | TcpListenerLoopback { .. }
            | MetricsRemoteAllowed(_) => Level::Warning,
            StartServersDefaulted { .. } => Level::Notice,
            NoUser(_)
            | NoListen(_)
            | NoPm(_)
            | MaxChildren(_)
            | MinSpare { .. }
            | MaxSpare { .. }
            | SpareOverChildren { .. }
            | SpareOrder { .. }
            | StartServers { .. }
            | SpawnRate(_)
            | OndemandEvents(_)
            | IdleTimeout { .. } => Level::Alert,
            _ => Level::Error,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each level as fpm_conf.c (and fpm_log.c, fpm_events.c,
    /// fpm_sockets.c) passes it to zlog; SYSERROR prints as ERROR.
    #[test]
    fn levels_are_php_fpm_s() {
        let s = || String::from("x");
        let cases = [
            (
                ConfigError::IncludeNothingMatches {
                    pattern: s(),
                    file: s(),
                    line: 1,
                },
                Level::Warning,
            ),
            (ConfigError::AccessFormatDetail(s()), Level::Warning),
            (
                ConfigError::StartServersDefaulted {
                    pool: s(),
                    value: 1,
                },
                Level::Notice,
            ),
            (ConfigError::NoUser(s()), Level::Alert),
            (ConfigError::NoListen(s()), Level::Alert),
            (ConfigError::NoPm(s()), Level::Alert),
            (ConfigError::MaxChildren(s()), Level::Alert),
            (ConfigError::SpawnRate(s()), Level::Alert),
            (ConfigError::OndemandEvents(s()), Level::Alert),
            (
                ConfigError::IdleTimeout {
                    pool: s(),
                    value: 0,
                },
                Level::Alert,
            ),
            (
                ConfigError::Globalize {
                    pattern: s(),
                    file: s(),
                    line: 1,
                },
                Level::Error,
            ),
            (ConfigError::IncludeDepth, Level::Error),
            (ConfigError::NoPool, Level::Error),
            (ConfigError::PoolPriority(s()), Level::Error),
            (ConfigError::EventMechanism(s()), Level::Error),
            (ConfigError::PrefixPlacement, Level::Error),
            (
                ConfigError::AccessFormat {
                    pool: s(),
                    format: s(),
                },
                Level::Error,
            ),
            (ConfigError::InvalidPort(s()), Level::Error),
        ];
        for (e, level) in cases {
            assert_eq!(e.level(), level, "{e}");
            assert_eq!(Diagnostic::from(e).level, level);
        }
    }

    #[test]
    fn levels_map_to_log_levels() {
        use crate::LogLevel;
        for (l, want) in [
            (Level::Notice, LogLevel::Notice),
            (Level::Warning, LogLevel::Warning),
            (Level::Error, LogLevel::Error),
            (Level::Alert, LogLevel::Alert),
        ] {
            assert_eq!(LogLevel::from(l), want);
            assert_eq!(LogLevel::from(l).name(), l.as_str());
        }
    }
}
