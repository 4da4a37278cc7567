//! The one table of php-fpm directives.
//!
//! Each row says where a directive is allowed, how its value is typed, its
//! default and how `-tt` prints it.  Parsing (unknown-entry detection and
//! value typing), the typed `Global`/`Pool` construction (defaults) and the
//! dump all read this table, so a directive is defined exactly once.  The
//! order of rows is php-fpm's dump order.

use std::borrow::Cow;
use std::collections::HashMap;

/// Which section a directive belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Global,
    Pool,
}

/// How a value is typed; the parsers reproduce fpm_conf.c's messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `-?[0-9]*` read with atoi; dumped `%d`.
    Int,
    /// seconds with optional s/m/h/d suffix; dumped `%ds`.
    Time,
    /// Time dumped without the `s` (pm.process_idle_timeout's quirk).
    TimeBare,
    /// INI-normalised "1" or ""; dumped yes/no.
    Bool,
    /// kept as given, `$pool` expanded; dumped as-is or `undefined`.
    Str,
    LogLevel,
    SyslogFacility,
    /// integer ≥ 0 or `unlimited` (-1).
    RlimitCore,
    Pm,
    /// corral: bytes with an optional K/M/G suffix, at least 1.
    Size,
    /// corral: like `Size`, and 0 is allowed (no swap).
    SizeOrZero,
    /// corral: a cgroup weight, 1..=10000.
    Weight,
    /// corral: an integer percent of one CPU with an optional '%',
    /// 1..=100000; dumped with the '%'.
    CpuPercent,
    /// corral: an integer, at least 1.
    Count,
    /// corral: absolute paths separated by blanks; kept joined by one
    /// space.
    AbsPaths,
    /// corral: a TCP address for the metrics server (`PORT`, `IP:PORT`,
    /// `[IPv6]:PORT`); kept normalised as `IP:PORT`.
    SocketAddr,
}

/// A typed value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Int(i64),
    Bool(bool),
    Str(String),
    LogLevel(crate::global::LogLevel),
    Pm(crate::pool::PmKind),
}

/// One row of the table.
#[derive(Debug, Clone, Copy)]
pub struct Directive {
    pub name: &'static str,
    pub section: Section,
    pub kind: Kind,
    /// Default as config text, parsed with `kind`; `None` = unset.
    pub default: Option<&'static str>,
    /// One line for docs and `corral help`.
    pub doc: &'static str,
}

impl Directive {
    /// One of corral's own directives (`corral.*`), which php-fpm lacks:
    /// `-tt` prints them only when set, so that a php-fpm configuration
    /// dumps byte for byte as php-fpm's.
    pub fn is_corral(&self) -> bool {
        self.name.starts_with("corral.")
    }
}

macro_rules! d {
    ($s:ident, $n:literal, $k:ident, $def:expr, $doc:literal) => {
        Directive {
            name: $n,
            section: Section::$s,
            kind: Kind::$k,
            default: $def,
            doc: $doc,
        }
    };
}

/// Every scalar directive php-fpm 8.2 (Linux, systemd, ACL, AppArmor build)
/// accepts, in `-tt` order.
pub static DIRECTIVES: &[Directive] = &[
    d!(Global, "pid", Str, None, "PID file; relative to -p or /var"),
    d!(
        Global,
        "error_log",
        Str,
        Some("log/php-fpm.log"),
        "master log file or 'syslog'; relative to -p or /var"
    ),
    d!(Global, "syslog.ident", Str, Some("php-fpm"), "syslog ident"),
    d!(
        Global,
        "syslog.facility",
        SyslogFacility,
        Some("daemon"),
        "syslog facility"
    ),
    d!(
        Global,
        "log_buffering",
        Bool,
        Some("1"),
        "write each log line in one write()"
    ),
    d!(
        Global,
        "log_level",
        LogLevel,
        None,
        "alert, error, warning, notice or debug (default notice)"
    ),
    d!(
        Global,
        "log_limit",
        Int,
        Some("1024"),
        "maximum length of a log line"
    ),
    d!(
        Global,
        "emergency_restart_interval",
        Time,
        Some("0"),
        "window for emergency_restart_threshold"
    ),
    d!(
        Global,
        "emergency_restart_threshold",
        Int,
        Some("0"),
        "SIGSEGV/SIGBUS deaths within the interval that trigger a reload"
    ),
    d!(
        Global,
        "process_control_timeout",
        Time,
        Some("0"),
        "grace time for children on stop/reload"
    ),
    d!(
        Global,
        "process.max",
        Int,
        Some("0"),
        "maximum children over all pools (0 = unlimited)"
    ),
    d!(
        Global,
        "process.priority",
        Int,
        None,
        "master nice value [-19,20] (root only)"
    ),
    d!(
        Global,
        "daemonize",
        Bool,
        Some("1"),
        "run in the background"
    ),
    d!(
        Global,
        "rlimit_files",
        Int,
        Some("0"),
        "RLIMIT_NOFILE for the master (0 = system)"
    ),
    d!(
        Global,
        "rlimit_core",
        RlimitCore,
        Some("0"),
        "RLIMIT_CORE for the master (0 = system)"
    ),
    d!(
        Global,
        "events.mechanism",
        Str,
        None,
        "epoll, poll or select (default epoll)"
    ),
    d!(
        Global,
        "systemd_interval",
        Time,
        Some("10"),
        "sd_notify interval (0 = off)"
    ),
    // corral's metrics server and dashboard (docs/metrics.md): off
    // unless set.
    d!(
        Global,
        "corral.metrics_listen",
        SocketAddr,
        None,
        "address of the Prometheus metrics and the live dashboard (loopback)"
    ),
    // The pre-linked process that forks prototypes (docs/architecture.md);
    // on unless set to no.
    d!(
        Global,
        "corral.zygote",
        Bool,
        None,
        "fork prototypes from a pre-linked root process (default yes)"
    ),
    d!(
        Global,
        "corral.metrics_allow_remote",
        Bool,
        None,
        "allow corral.metrics_listen on an address other hosts can reach"
    ),
    d!(
        Pool,
        "prefix",
        Str,
        None,
        "prefix for the pool's relative paths"
    ),
    d!(Pool, "user", Str, None, "user the children run as"),
    d!(Pool, "group", Str, None, "group the children run as"),
    d!(
        Pool,
        "listen",
        Str,
        None,
        "address: path, port, host:port or [v6]:port"
    ),
    d!(
        Pool,
        "listen.backlog",
        Int,
        Some("-1"),
        "listen(2) backlog (-1 = kernel maximum)"
    ),
    d!(
        Pool,
        "listen.acl_users",
        Str,
        None,
        "users given rw ACL entries on the socket"
    ),
    d!(
        Pool,
        "listen.acl_groups",
        Str,
        None,
        "groups given rw ACL entries on the socket"
    ),
    d!(Pool, "listen.owner", Str, None, "owner of the unix socket"),
    d!(Pool, "listen.group", Str, None, "group of the unix socket"),
    d!(
        Pool,
        "listen.mode",
        Str,
        None,
        "mode of the unix socket (default 0660)"
    ),
    d!(
        Pool,
        "listen.allowed_clients",
        Str,
        None,
        "comma-separated client IPs allowed (not trimmed)"
    ),
    d!(
        Pool,
        "process.priority",
        Int,
        None,
        "children's nice value [-19,20] (root only)"
    ),
    d!(
        Pool,
        "process.dumpable",
        Bool,
        Some(""),
        "PR_SET_DUMPABLE for the children"
    ),
    d!(Pool, "pm", Pm, None, "static, dynamic or ondemand"),
    d!(
        Pool,
        "pm.max_children",
        Int,
        Some("0"),
        "maximum number of children"
    ),
    d!(
        Pool,
        "pm.start_servers",
        Int,
        Some("0"),
        "children started with dynamic"
    ),
    d!(
        Pool,
        "pm.min_spare_servers",
        Int,
        Some("0"),
        "minimum idle children with dynamic"
    ),
    d!(
        Pool,
        "pm.max_spare_servers",
        Int,
        Some("0"),
        "maximum idle children with dynamic"
    ),
    d!(
        Pool,
        "pm.max_spawn_rate",
        Int,
        Some("32"),
        "cap on children spawned per tick with dynamic"
    ),
    d!(
        Pool,
        "pm.process_idle_timeout",
        TimeBare,
        Some("10"),
        "idle time before ondemand kills a child"
    ),
    d!(
        Pool,
        "pm.max_requests",
        Int,
        Some("0"),
        "requests per child before respawn (0 = never)"
    ),
    d!(Pool, "pm.status_path", Str, None, "URI of the status page"),
    d!(
        Pool,
        "pm.status_listen",
        Str,
        None,
        "extra address serving only status/ping"
    ),
    d!(Pool, "ping.path", Str, None, "URI of the ping page"),
    d!(
        Pool,
        "ping.response",
        Str,
        None,
        "body of the ping page (default pong)"
    ),
    d!(Pool, "access.log", Str, None, "access log file"),
    d!(Pool, "access.format", Str, None, "access log line format"),
    d!(Pool, "slowlog", Str, None, "slow request log file"),
    d!(
        Pool,
        "request_slowlog_timeout",
        Time,
        Some("0"),
        "time before a request's stack is logged"
    ),
    d!(
        Pool,
        "request_slowlog_trace_depth",
        Int,
        Some("0"),
        "frames in a slowlog trace (default 20)"
    ),
    d!(
        Pool,
        "request_terminate_timeout",
        Time,
        Some("0"),
        "time before a request's child is killed"
    ),
    d!(
        Pool,
        "request_terminate_timeout_track_finished",
        Bool,
        Some(""),
        "keep the terminate timer after fastcgi_finish_request()"
    ),
    d!(
        Pool,
        "rlimit_files",
        Int,
        Some("0"),
        "RLIMIT_NOFILE for the children (0 = system)"
    ),
    d!(
        Pool,
        "rlimit_core",
        RlimitCore,
        Some("0"),
        "RLIMIT_CORE for the children (0 = system)"
    ),
    d!(
        Pool,
        "chroot",
        Str,
        None,
        "chroot for the children ($prefix allowed at the start)"
    ),
    d!(
        Pool,
        "chdir",
        Str,
        None,
        "working directory of the children"
    ),
    d!(
        Pool,
        "catch_workers_output",
        Bool,
        Some(""),
        "log the children's stdout/stderr"
    ),
    d!(
        Pool,
        "decorate_workers_output",
        Bool,
        Some("1"),
        "prefix caught output lines"
    ),
    d!(
        Pool,
        "clear_env",
        Bool,
        Some("1"),
        "clear the environment of the children"
    ),
    d!(
        Pool,
        "security.limit_extensions",
        Str,
        None,
        "allowed script extensions (default .php .phar)"
    ),
    d!(Pool, "apparmor_hat", Str, None, "AppArmor hat to change to"),
    // corral's pens (docs/isolation.md); php-fpm has none of these, and
    // none is applied unless set.
    d!(
        Pool,
        "corral.memory_max",
        Size,
        None,
        "memory limit of the pool's cgroup (bytes, K, M or G)"
    ),
    d!(
        Pool,
        "corral.swap_max",
        SizeOrZero,
        None,
        "swap the pool's cgroup may use on top of memory_max (0 = none)"
    ),
    d!(
        Pool,
        "corral.cpu_weight",
        Weight,
        None,
        "CPU share under contention, 1..10000 (kernel default 100)"
    ),
    d!(
        Pool,
        "corral.cpu_max",
        CpuPercent,
        None,
        "hard CPU cap in percent of one CPU (200% = two CPUs)"
    ),
    d!(
        Pool,
        "corral.pids_max",
        Count,
        None,
        "processes and threads the whole pool may have"
    ),
    d!(
        Pool,
        "corral.io_weight",
        Weight,
        None,
        "block IO share under contention, 1..10000"
    ),
    d!(
        Pool,
        "corral.namespaces",
        Bool,
        None,
        "private /tmp, /var/tmp, /dev/shm and IPC; /proc shows only the pool"
    ),
    d!(
        Pool,
        "corral.tmp_size",
        Size,
        None,
        "size of each private tmpfs (needs corral.namespaces)"
    ),
    d!(
        Pool,
        "corral.prototype_idle_timeout",
        Time,
        None,
        "ondemand: how long the prototype (and OPcache) outlives the last worker (default 10 x pm.process_idle_timeout)"
    ),
    d!(
        Pool,
        "corral.landlock",
        Bool,
        None,
        "confine file access with Landlock (and no_new_privs)"
    ),
    d!(
        Pool,
        "corral.landlock_read",
        AbsPaths,
        None,
        "extra trees the pool may read (absolute, space-separated)"
    ),
    d!(
        Pool,
        "corral.landlock_write",
        AbsPaths,
        None,
        "trees the pool may write, never execute (absolute, space-separated)"
    ),
];

/// The array directives of a pool (`name[key] = value`), matched
/// case-sensitively like php-fpm.
pub static ARRAY_DIRECTIVES: &[&str] = &[
    "env",
    "php_value",
    "php_admin_value",
    "php_flag",
    "php_admin_flag",
    "access.suppress_path",
];

/// Find a scalar directive of a section, case-insensitively (strcasecmp).
pub fn lookup(section: Section, name: &str) -> Option<&'static Directive> {
    DIRECTIVES
        .iter()
        .find(|d| d.section == section && d.name.eq_ignore_ascii_case(name))
}

/// The directives of one section, in dump order.
pub fn of(section: Section) -> impl Iterator<Item = &'static Directive> {
    DIRECTIVES.iter().filter(move |d| d.section == section)
}

/// Type a value; `Err` is php-fpm's reason text (corral's own, naming
/// the offending part, for its kinds).
pub fn parse(kind: Kind, v: &str) -> Result<Value, Cow<'static, str>> {
    use crate::isolation as corral;
    let fpm = |r: Result<Value, &'static str>| r.map_err(Cow::Borrowed);
    match kind {
        Kind::Int => fpm(parse_int(v).map(Value::Int)),
        Kind::Time | Kind::TimeBare => fpm(parse_time(v).map(Value::Int)),
        Kind::Bool => fpm(parse_bool(v).map(Value::Bool)),
        Kind::Str => Ok(Value::Str(v.to_string())),
        Kind::LogLevel => fpm(crate::global::LogLevel::parse(v)
            .map(Value::LogLevel)
            .ok_or("invalid value for 'log_level'")),
        Kind::SyslogFacility => fpm(syslog_facility(v)
            .map(|f| Value::Int(i64::from(f)))
            .ok_or("invalid value")),
        Kind::RlimitCore => fpm(parse_rlimit_core(v).map(Value::Int)),
        Kind::Pm => fpm(crate::pool::PmKind::parse(v)
            .map(Value::Pm)
            .ok_or("invalid process manager (static, dynamic or ondemand)")),
        Kind::Size => corral::parse_size(v, 1).map(Value::Int).map_err(Cow::Owned),
        Kind::SizeOrZero => corral::parse_size(v, 0).map(Value::Int).map_err(Cow::Owned),
        Kind::Weight => corral::parse_weight(v).map(Value::Int).map_err(Cow::Owned),
        Kind::CpuPercent => corral::parse_cpu_percent(v)
            .map(Value::Int)
            .map_err(Cow::Owned),
        Kind::Count => corral::parse_count(v).map(Value::Int).map_err(Cow::Owned),
        Kind::AbsPaths => corral::parse_paths(v).map(Value::Str).map_err(Cow::Owned),
        Kind::SocketAddr => crate::metrics::parse_listen(v)
            .map(|a| Value::Str(a.to_string()))
            .map_err(Cow::Owned),
    }
}

/// fpm_conf_set_rlimit_core: an integer >= 0 or `unlimited` (-1).
fn parse_rlimit_core(v: &str) -> Result<i64, &'static str> {
    if v.eq_ignore_ascii_case("unlimited") {
        return Ok(-1);
    }
    let n = parse_int(v)?;
    if n < 0 {
        return Err("must be greater than zero or 'unlimited'");
    }
    Ok(n)
}

/// fpm_conf_set_integer: optional leading '-', then digits only, atoi.
pub fn parse_int(v: &str) -> Result<i64, &'static str> {
    let digits = v.strip_prefix('-').unwrap_or(v);
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err("is not a valid number (greater or equal than zero)");
    }
    Ok(i64::from(crate::ini::atoi(v)))
}

/// fpm_conf_set_time: last char s/m/h/d or a digit; the rest read by atoi
/// (so `1.5m` is 60 and `s` alone is 0).
pub fn parse_time(v: &str) -> Result<i64, &'static str> {
    let Some(last) = v.chars().last() else {
        return Err("invalid time value");
    };
    let head = &v[..v.len() - last.len_utf8()];
    let n = i64::from(crate::ini::atoi(head));
    let secs = match last {
        'm' => n * 60,
        'h' => n * 3600,
        'd' => n * 86400,
        's' => n,
        '0'..='9' => i64::from(crate::ini::atoi(v)),
        _ => return Err("unknown suffix used in time value"),
    };
    // php-fpm stores an int: keep its wrap-around.
    Ok(i64::from(secs as i32))
}

/// fpm_conf_set_boolean: only the INI-normalised "1" and "" are valid.
pub fn parse_bool(v: &str) -> Result<bool, &'static str> {
    match v {
        "1" => Ok(true),
        "" => Ok(false),
        _ => Err("invalid boolean value"),
    }
}

/// syslog facility names (case-insensitive) → libc values.
pub fn syslog_facility(v: &str) -> Option<i32> {
    const F: &[(&str, i32)] = &[
        ("AUTH", libc::LOG_AUTH),
        ("AUTHPRIV", libc::LOG_AUTHPRIV),
        ("CRON", libc::LOG_CRON),
        ("DAEMON", libc::LOG_DAEMON),
        ("FTP", libc::LOG_FTP),
        ("KERN", libc::LOG_KERN),
        ("LPR", libc::LOG_LPR),
        ("MAIL", libc::LOG_MAIL),
        ("NEWS", libc::LOG_NEWS),
        ("SYSLOG", libc::LOG_SYSLOG),
        ("USER", libc::LOG_USER),
        ("UUCP", libc::LOG_UUCP),
        ("LOCAL0", libc::LOG_LOCAL0),
        ("LOCAL1", libc::LOG_LOCAL1),
        ("LOCAL2", libc::LOG_LOCAL2),
        ("LOCAL3", libc::LOG_LOCAL3),
        ("LOCAL4", libc::LOG_LOCAL4),
        ("LOCAL5", libc::LOG_LOCAL5),
        ("LOCAL6", libc::LOG_LOCAL6),
        ("LOCAL7", libc::LOG_LOCAL7),
    ];
    F.iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(v))
        .map(|&(_, f)| f)
}

/// The values set for one section: explicit ones, falling back to the
/// table's defaults.  Post-processing rewrites entries (paths, computed
/// defaults) so the dump shows what php-fpm shows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settings {
    values: HashMap<&'static str, Value>,
}

impl Settings {
    pub fn set(&mut self, name: &'static str, v: Value) {
        self.values.insert(name, v);
    }

    pub fn unset(&mut self, name: &'static str) {
        self.values.remove(name);
    }

    /// Whether the config set this directive explicitly.
    pub fn is_set(&self, name: &str) -> bool {
        self.values.contains_key(name)
    }

    /// The explicit value, else the table default, else `None`.
    pub fn get(&self, name: &str) -> Option<Value> {
        if let Some(v) = self.values.get(name) {
            return Some(v.clone());
        }
        let d = DIRECTIVES.iter().find(|d| d.name == name)?;
        d.default.and_then(|t| parse(d.kind, t).ok())
    }

    pub fn int(&self, name: &str) -> i64 {
        match self.get(name) {
            Some(Value::Int(n)) => n,
            _ => 0,
        }
    }

    pub fn bool(&self, name: &str) -> bool {
        matches!(self.get(name), Some(Value::Bool(true)))
    }

    pub fn str(&self, name: &str) -> Option<String> {
        match self.get(name) {
            Some(Value::Str(s)) => Some(s),
            _ => None,
        }
    }

    /// A string that is set and non-empty (php-fpm's `x && *x`).
    pub fn non_empty(&self, name: &str) -> Option<String> {
        self.str(name).filter(|s| !s.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_consistent() {
        for d in DIRECTIVES {
            if let Some(t) = d.default {
                assert!(parse(d.kind, t).is_ok(), "default of {}", d.name);
            }
            let dup = DIRECTIVES
                .iter()
                .filter(|o| o.section == d.section && o.name == d.name)
                .count();
            assert_eq!(dup, 1, "{}", d.name);
        }
        assert!(lookup(Section::Pool, "PM.MAX_CHILDREN").is_some());
        assert!(lookup(Section::Global, "pm.max_children").is_none());
    }

    #[test]
    fn ints() {
        assert_eq!(parse_int("5"), Ok(5));
        assert_eq!(parse_int("-1"), Ok(-1));
        assert_eq!(parse_int(""), Ok(0));
        assert_eq!(parse_int("-"), Ok(0));
        let e = "is not a valid number (greater or equal than zero)";
        assert_eq!(parse_int("5k"), Err(e));
        assert_eq!(parse_int("1.5"), Err(e));
        assert_eq!(parse_int("--1"), Err(e));
        assert_eq!(parse_int(" 1"), Err(e));
    }

    #[test]
    fn times() {
        assert_eq!(parse_time("10"), Ok(10));
        assert_eq!(parse_time("10s"), Ok(10));
        assert_eq!(parse_time("2m"), Ok(120));
        assert_eq!(parse_time("1.5m"), Ok(60));
        assert_eq!(parse_time("3h"), Ok(10800));
        assert_eq!(parse_time("1d"), Ok(86400));
        assert_eq!(parse_time("s"), Ok(0));
        assert_eq!(parse_time(""), Err("invalid time value"));
        assert_eq!(parse_time("5M"), Err("unknown suffix used in time value"));
        assert_eq!(parse_time("5x"), Err("unknown suffix used in time value"));
    }

    #[test]
    fn bools_and_enums() {
        assert_eq!(parse_bool("1"), Ok(true));
        assert_eq!(parse_bool(""), Ok(false));
        assert_eq!(parse_bool("maybe"), Err("invalid boolean value"));
        assert_eq!(syslog_facility("local3"), Some(libc::LOG_LOCAL3));
        assert_eq!(syslog_facility("daemon"), Some(24));
        let err = |k, v| parse(k, v).unwrap_err().into_owned();
        assert_eq!(err(Kind::SyslogFacility, "foo"), "invalid value");
        assert_eq!(parse(Kind::RlimitCore, "Unlimited"), Ok(Value::Int(-1)));
        assert_eq!(
            err(Kind::RlimitCore, "-1"),
            "must be greater than zero or 'unlimited'"
        );
        assert_eq!(
            err(Kind::Pm, "x"),
            "invalid process manager (static, dynamic or ondemand)"
        );
        assert_eq!(err(Kind::LogLevel, "x"), "invalid value for 'log_level'");
    }
}
