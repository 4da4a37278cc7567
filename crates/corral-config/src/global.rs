//! The `[global]` section as typed values.

use std::path::PathBuf;
use std::time::Duration;

use crate::directives::{Settings, Value};

/// Minimum level the master logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum LogLevel {
    Debug,
    #[default]
    Notice,
    Warning,
    Error,
    Alert,
}

impl LogLevel {
    /// Case-insensitive, accepting `warn` like php-fpm.
    pub fn parse(v: &str) -> Option<LogLevel> {
        Some(match v.to_ascii_lowercase().as_str() {
            "debug" => LogLevel::Debug,
            "notice" => LogLevel::Notice,
            "warning" | "warn" => LogLevel::Warning,
            "error" => LogLevel::Error,
            "alert" => LogLevel::Alert,
            _ => return None,
        })
    }

    /// zlog's upper-case level name.
    pub fn name(self) -> &'static str {
        match self {
            LogLevel::Debug => "DEBUG",
            LogLevel::Notice => "NOTICE",
            LogLevel::Warning => "WARNING",
            LogLevel::Error => "ERROR",
            LogLevel::Alert => "ALERT",
        }
    }
}

/// Where the master logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorLog {
    File(PathBuf),
    Syslog,
}

/// A resource limit: a value or RLIM_INFINITY.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rlimit {
    Value(u64),
    Unlimited,
}

impl Rlimit {
    /// php-fpm's int encoding: 0 = leave unchanged, -1 = unlimited.
    pub(crate) fn from_fpm(n: i64) -> Option<Rlimit> {
        match n {
            -1 => Some(Rlimit::Unlimited),
            n if n > 0 => Some(Rlimit::Value(n as u64)),
            _ => None,
        }
    }
}

/// Typed `[global]` options after php-fpm's post-processing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Global {
    /// Absolute PID file path (config `pid` wins over `-g`).
    pub pid: Option<PathBuf>,
    pub error_log: ErrorLog,
    pub syslog_ident: String,
    /// libc LOG_* facility value.
    pub syslog_facility: i32,
    pub log_buffering: bool,
    pub log_level: LogLevel,
    pub log_limit: usize,
    pub emergency_restart_threshold: u32,
    pub emergency_restart_interval: Duration,
    pub process_control_timeout: Duration,
    /// 0 = unlimited.
    pub process_max: u32,
    pub process_priority: Option<i32>,
    pub daemonize: bool,
    pub rlimit_files: Option<u64>,
    pub rlimit_core: Option<Rlimit>,
    /// As configured; `None` = auto (epoll on Linux).
    pub events_mechanism: Option<String>,
    /// `systemd_interval`; zero disables the notifications.
    pub systemd_interval: Duration,
    /// `corral.metrics_listen`: where the master serves metrics and the
    /// dashboard; `None` = off.
    pub metrics_listen: Option<std::net::SocketAddr>,
    /// `corral.zygote`: fork prototypes from the zygote (default yes).
    pub zygote: bool,
    /// The effective values by directive name, for `-tt` (see `dump`).
    pub settings: Settings,
}

pub(crate) fn secs(n: i64) -> Duration {
    Duration::from_secs(n.max(0) as u64)
}

pub(crate) fn unsigned(n: i64) -> u32 {
    n.clamp(0, i64::from(u32::MAX)) as u32
}

impl Global {
    /// Build the typed view from post-processed settings.
    pub(crate) fn from_settings(s: Settings) -> Global {
        let error_log = match s.str("error_log") {
            Some(e) if e.eq_ignore_ascii_case("syslog") => ErrorLog::Syslog,
            Some(e) => ErrorLog::File(PathBuf::from(e)),
            None => ErrorLog::File(PathBuf::from("/var/log/php-fpm.log")),
        };
        let log_level = match s.get("log_level") {
            Some(Value::LogLevel(l)) => l,
            _ => LogLevel::Notice,
        };
        Global {
            pid: s.str("pid").filter(|p| !p.is_empty()).map(PathBuf::from),
            error_log,
            syslog_ident: s.str("syslog.ident").unwrap_or_default(),
            syslog_facility: s.int("syslog.facility") as i32,
            log_buffering: s.bool("log_buffering"),
            log_level,
            log_limit: s.int("log_limit").max(0) as usize,
            emergency_restart_threshold: unsigned(s.int("emergency_restart_threshold")),
            emergency_restart_interval: secs(s.int("emergency_restart_interval")),
            process_control_timeout: secs(s.int("process_control_timeout")),
            process_max: unsigned(s.int("process.max")),
            process_priority: s
                .is_set("process.priority")
                .then(|| s.int("process.priority") as i32),
            daemonize: s.bool("daemonize"),
            rlimit_files: Some(s.int("rlimit_files"))
                .filter(|&n| n > 0)
                .map(|n| n as u64),
            rlimit_core: Rlimit::from_fpm(s.int("rlimit_core")),
            events_mechanism: s.str("events.mechanism"),
            systemd_interval: secs(s.int("systemd_interval")),
            metrics_listen: s.str("corral.metrics_listen").and_then(|a| a.parse().ok()),
            zygote: !s.is_set("corral.zygote") || s.bool("corral.zygote"),
            settings: s,
        }
    }
}
