//! A pool section as typed values, and the listen address forms.

use std::path::PathBuf;
use std::time::Duration;

use crate::access_format::Token;
use crate::directives::{Settings, Value};
use crate::error::ConfigError;
use crate::global::{secs, unsigned, Rlimit};
use crate::raw::Location;

/// Process manager style.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PmKind {
    Static,
    Dynamic,
    Ondemand,
}

impl PmKind {
    /// Case-insensitive, as php-fpm.
    pub fn parse(v: &str) -> Option<PmKind> {
        Some(match v.to_ascii_lowercase().as_str() {
            "static" => PmKind::Static,
            "dynamic" => PmKind::Dynamic,
            "ondemand" => PmKind::Ondemand,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            PmKind::Static => "static",
            PmKind::Dynamic => "dynamic",
            PmKind::Ondemand => "ondemand",
        }
    }
}

/// A listening address, classified the way fpm_sockets.c does.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Listen {
    Unix(PathBuf),
    Tcp {
        /// `None` = port only: bind `::`, then `0.0.0.0`.
        host: Option<String>,
        /// 0 when the configured port is not 1..=65535 (see `validate`).
        port: u16,
    },
}

impl Listen {
    /// Classify: a `:` anywhere → inet split at the last `:` (brackets
    /// stripped); all digits → port only; anything else → unix path.
    /// Never fails: php-fpm's `-t` accepts bad ports.
    pub fn parse(addr: &str) -> Listen {
        if let Some(i) = addr.rfind(':') {
            let host = &addr[..i];
            let host = host
                .strip_prefix('[')
                .and_then(|h| h.strip_suffix(']'))
                .unwrap_or(host);
            return Listen::Tcp {
                host: (!host.is_empty()).then(|| host.to_string()),
                port: port_of(&addr[i + 1..]),
            };
        }
        if !addr.is_empty() && addr.bytes().all(|b| b.is_ascii_digit()) {
            return Listen::Tcp {
                host: None,
                port: port_of(addr),
            };
        }
        Listen::Unix(PathBuf::from(addr))
    }

    /// Whether php-fpm treats `addr` as a unix socket path.
    pub fn is_unix_address(addr: &str) -> bool {
        matches!(Listen::parse(addr), Listen::Unix(_))
    }

    /// Start-up check php-fpm does when binding (not in `-t`).
    pub fn validate(&self) -> Result<(), ConfigError> {
        match self {
            Listen::Tcp { port: 0, .. } => Err(ConfigError::InvalidPort("0".into())),
            _ => Ok(()),
        }
    }

    /// Like `validate`, with the port text as php-fpm prints it.
    pub fn validate_address(addr: &str) -> Result<Listen, ConfigError> {
        let l = Listen::parse(addr);
        if let Listen::Tcp { port: 0, .. } = l {
            let p = addr.rfind(':').map_or(addr, |i| &addr[i + 1..]);
            return Err(ConfigError::InvalidPort(p.to_string()));
        }
        Ok(l)
    }
}

fn port_of(s: &str) -> u16 {
    let n = crate::ini::atoi(s);
    u16::try_from(n).unwrap_or(0)
}

/// One php.ini setting a pool applies to its children.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhpIniValue {
    pub name: String,
    pub value: String,
    /// php_admin_value/flag: ZEND_INI_SYSTEM, not changeable by scripts.
    pub admin: bool,
}

/// Typed pool options after php-fpm's post-processing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pool {
    pub name: String,
    pub prefix: Option<PathBuf>,
    pub user: Option<String>,
    pub group: Option<String>,
    pub listen: Listen,
    /// The address text after path resolution: the socket-sharing key.
    pub listen_address: String,
    pub listen_backlog: i32,
    pub listen_owner: Option<String>,
    pub listen_group: Option<String>,
    /// Parsed as octal; 0o660 when unset or unparsable.
    pub listen_mode: u32,
    pub listen_acl_users: Vec<String>,
    pub listen_acl_groups: Vec<String>,
    /// Split on ',' without trimming, exactly as php-fpm.
    pub listen_allowed_clients: Option<Vec<String>>,
    pub process_priority: Option<i32>,
    pub process_dumpable: bool,
    pub pm: PmKind,
    pub pm_max_children: u32,
    pub pm_start_servers: u32,
    pub pm_min_spare_servers: u32,
    pub pm_max_spare_servers: u32,
    pub pm_max_spawn_rate: u32,
    pub pm_process_idle_timeout: Duration,
    /// `corral.prototype_idle_timeout`, when set: how long an ondemand
    /// pool's prototype stays after its last worker.
    pub prototype_idle_timeout: Option<Duration>,
    pub pm_max_requests: u32,
    pub pm_status_path: Option<String>,
    pub pm_status_listen: Option<Listen>,
    pub ping_path: Option<String>,
    /// "pong" by default; only meaningful with `ping_path`.
    pub ping_response: String,
    pub access_log: Option<PathBuf>,
    /// As written (or php-fpm's default), for `-tt` and messages.
    pub access_format: String,
    /// `access_format` parsed; present exactly when the pool has an
    /// access.log, because php-fpm checks the format only then.
    pub access_tokens: Option<Vec<Token>>,
    pub access_suppress_path: Vec<String>,
    pub slowlog: Option<PathBuf>,
    pub request_slowlog_timeout: Duration,
    pub request_slowlog_trace_depth: u32,
    pub request_terminate_timeout: Duration,
    pub request_terminate_timeout_track_finished: bool,
    pub rlimit_files: Option<u64>,
    pub rlimit_core: Option<Rlimit>,
    pub chroot: Option<PathBuf>,
    pub chdir: Option<PathBuf>,
    pub catch_workers_output: bool,
    pub decorate_workers_output: bool,
    pub clear_env: bool,
    /// Empty = every extension allowed.
    pub security_limit_extensions: Vec<String>,
    pub apparmor_hat: Option<String>,
    /// In application order; `$VAR` values resolved from the master env.
    pub env: Vec<(String, String)>,
    /// In application order (user values, then admin values), with
    /// duplicates removed so the one php-fpm ends up with is kept.
    pub php_values: Vec<PhpIniValue>,
    /// file:line of the section header that created the pool.
    pub source: Location,
    /// Effective scalar values by directive name, for `-tt`.
    pub settings: Settings,
    /// The arrays as php-fpm keeps them (reverse file order, duplicates
    /// and unresolved `$VAR`s included), for `-tt`.
    pub raw_env: Vec<(String, String)>,
    pub raw_php_values: Vec<(String, String)>,
    pub raw_php_admin_values: Vec<(String, String)>,
    /// corral's confinement directives (`corral.*`); all off by default.
    pub isolation: crate::isolation::Isolation,
}

/// Resolves `env[X] = $VAR` from the master's environment.
pub(crate) type EnvLookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// A pool while its section(s) are being read.
#[derive(Debug, Clone)]
pub(crate) struct PoolDraft {
    pub name: String,
    pub source: Location,
    pub settings: Settings,
    /// The arrays in file order (php-fpm prepends; we reverse at the end).
    pub env: Vec<(String, String)>,
    pub php_values: Vec<(String, String)>,
    pub php_admin_values: Vec<(String, String)>,
    pub suppress_paths: Vec<String>,
    /// Set by `validate::access_formats`.
    pub access_tokens: Option<Vec<Token>>,
}

impl PoolDraft {
    pub fn new(name: String, source: Location) -> Self {
        PoolDraft {
            name,
            source,
            settings: Settings::default(),
            env: Vec::new(),
            php_values: Vec::new(),
            php_admin_values: Vec::new(),
            suppress_paths: Vec::new(),
            access_tokens: None,
        }
    }

    /// The typed pool; call after post-processing.  `env_lookup` resolves
    /// `env[X] = $VAR`; `None` when the values are already resolved.
    pub fn finish(self, env_lookup: Option<EnvLookup<'_>>) -> Pool {
        let s = self.settings;
        let rev = |v: Vec<(String, String)>| v.into_iter().rev().collect::<Vec<_>>();
        let raw_env = rev(self.env);
        let raw_php_values = rev(self.php_values);
        let raw_php_admin_values = rev(self.php_admin_values);

        // php-fpm applies its prepended lists front to back, so for a
        // repeated key the entry applied last (first in the file) wins.
        let dedup = |list: &[(String, String)], admin: bool| {
            let mut out: Vec<PhpIniValue> = Vec::new();
            for (k, v) in list {
                out.retain(|p| p.name != *k);
                out.push(PhpIniValue {
                    name: k.clone(),
                    value: v.clone(),
                    admin,
                });
            }
            out
        };
        let mut php_values = dedup(&raw_php_values, false);
        php_values.extend(dedup(&raw_php_admin_values, true));

        let env = raw_env
            .iter()
            .map(|(k, v)| {
                let v = match (v.strip_prefix('$'), env_lookup) {
                    (Some(var), Some(lookup)) => lookup(var).unwrap_or_default(),
                    _ => v.clone(),
                };
                (k.clone(), v)
            })
            .collect();

        let listen_address = s.str("listen").unwrap_or_default();
        let split_commas =
            |v: Option<String>| v.map(|v| v.split(',').map(str::to_string).collect::<Vec<_>>());
        let pm = match s.get("pm") {
            Some(Value::Pm(p)) => p,
            _ => PmKind::Static,
        };
        let path = |n: &str| s.non_empty(n).map(PathBuf::from);
        Pool {
            isolation: crate::isolation::Isolation::from_settings(&s),
            name: self.name,
            prefix: path("prefix"),
            user: s.str("user"),
            group: s.str("group"),
            listen: Listen::parse(&listen_address),
            listen_address,
            listen_backlog: s.int("listen.backlog") as i32,
            listen_owner: s.str("listen.owner"),
            listen_group: s.str("listen.group"),
            listen_mode: s
                .non_empty("listen.mode")
                .and_then(|m| u32::from_str_radix(&m, 8).ok())
                .unwrap_or(0o660),
            listen_acl_users: split_commas(s.non_empty("listen.acl_users")).unwrap_or_default(),
            listen_acl_groups: split_commas(s.non_empty("listen.acl_groups")).unwrap_or_default(),
            listen_allowed_clients: split_commas(s.non_empty("listen.allowed_clients")),
            process_priority: s
                .is_set("process.priority")
                .then(|| s.int("process.priority") as i32),
            process_dumpable: s.bool("process.dumpable"),
            pm,
            pm_max_children: unsigned(s.int("pm.max_children")),
            pm_start_servers: unsigned(s.int("pm.start_servers")),
            pm_min_spare_servers: unsigned(s.int("pm.min_spare_servers")),
            pm_max_spare_servers: unsigned(s.int("pm.max_spare_servers")),
            pm_max_spawn_rate: unsigned(s.int("pm.max_spawn_rate")),
            pm_process_idle_timeout: secs(s.int("pm.process_idle_timeout")),
            prototype_idle_timeout: s
                .is_set("corral.prototype_idle_timeout")
                .then(|| secs(s.int("corral.prototype_idle_timeout"))),
            pm_max_requests: unsigned(s.int("pm.max_requests")),
            pm_status_path: s.non_empty("pm.status_path"),
            pm_status_listen: s.non_empty("pm.status_listen").map(|l| Listen::parse(&l)),
            ping_path: s.non_empty("ping.path"),
            ping_response: s.str("ping.response").unwrap_or_else(|| "pong".into()),
            access_log: path("access.log"),
            access_format: s
                .str("access.format")
                .unwrap_or_else(|| crate::access_format::DEFAULT.into()),
            access_tokens: self.access_tokens,
            access_suppress_path: self.suppress_paths,
            slowlog: path("slowlog"),
            request_slowlog_timeout: secs(s.int("request_slowlog_timeout")),
            request_slowlog_trace_depth: unsigned(s.int("request_slowlog_trace_depth")),
            request_terminate_timeout: secs(s.int("request_terminate_timeout")),
            request_terminate_timeout_track_finished: s
                .bool("request_terminate_timeout_track_finished"),
            rlimit_files: Some(s.int("rlimit_files"))
                .filter(|&n| n > 0)
                .map(|n| n as u64),
            rlimit_core: Rlimit::from_fpm(s.int("rlimit_core")),
            chroot: path("chroot"),
            chdir: path("chdir"),
            catch_workers_output: s.bool("catch_workers_output"),
            decorate_workers_output: s.bool("decorate_workers_output"),
            clear_env: s.bool("clear_env"),
            security_limit_extensions: s
                .str("security.limit_extensions")
                .unwrap_or_default()
                .split([' ', '\t'])
                .filter(|e| !e.is_empty())
                .map(str::to_string)
                .collect(),
            apparmor_hat: s.str("apparmor_hat"),
            env,
            php_values,
            source: self.source,
            settings: s,
            raw_env,
            raw_php_values,
            raw_php_admin_values,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_forms() {
        assert_eq!(
            Listen::parse("127.0.0.1:9000"),
            Listen::Tcp {
                host: Some("127.0.0.1".into()),
                port: 9000
            }
        );
        assert_eq!(
            Listen::parse("[::1]:9000"),
            Listen::Tcp {
                host: Some("::1".into()),
                port: 9000
            }
        );
        assert_eq!(
            Listen::parse("9000"),
            Listen::Tcp {
                host: None,
                port: 9000
            }
        );
        assert_eq!(
            Listen::parse("/run/php.sock"),
            Listen::Unix("/run/php.sock".into())
        );
        assert_eq!(Listen::parse("sock"), Listen::Unix("sock".into()));
        assert!(Listen::parse("127.0.0.1:99999").validate().is_err());
        assert_eq!(
            Listen::validate_address("127.0.0.1:99999")
                .unwrap_err()
                .to_string(),
            "invalid port value '99999'"
        );
        assert!(Listen::validate_address("localhost:9000").is_ok());
    }
}
