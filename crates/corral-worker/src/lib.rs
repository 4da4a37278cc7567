//! The two roles that run tenant code: the per-pool prototype (starts PHP,
//! drops privileges, forks workers) and the worker (accepts FastCGI
//! connections and runs requests); and the zygote, the pre-linked root
//! process that forks prototypes for the master.

#![forbid(unsafe_code)]

pub mod access_log;
mod builtin;
pub mod cgi_env;
pub mod connection;
mod exchange;
pub mod log;
pub mod pacing;
pub mod prototype;
mod request;
pub mod waiter;
pub mod worker;
pub mod zygote;

use corral_config::Pool;
use corral_php::LogLevel;

/// The part of a pool's configuration a worker consults per request.
#[derive(Debug, Clone)]
pub struct PoolRuntime {
    pub name: String,
    pub limit_extensions: Vec<String>,
    pub ping_path: Option<String>,
    pub ping_response: String,
    pub max_requests: u64,
    pub allowed_clients: Option<Vec<String>>,
    pub log_level: LogLevel,
    /// access.format, parsed, when the pool has an access.log.
    pub access_format: Option<Vec<corral_config::access_format::Token>>,
    pub access_suppress: Vec<String>,
    /// `%P` in access.format: php-fpm's master pid.
    pub master_pid: u32,
    pub status_path: Option<String>,
    pub pm_name: &'static str,
    /// A `pm.status_listen` pool (`<pool>_status`): it answers its parent's
    /// status and ping pages and nothing else, and never runs PHP, so a
    /// peer that reaches the status address cannot run code or change ini
    /// as the pool's user (php-fpm runs anything there; see builtin.rs).
    pub status_only: bool,
    /// `X-Powered-By: PHP/<version>` while the pool's `expose_php` is on:
    /// php-fpm sends it on its own pages too (they are answered after
    /// `php_request_startup`, which adds it), and tools look for it there.
    pub powered_by: Option<String>,
}

impl PoolRuntime {
    pub fn from_pool(pool: &Pool, level: corral_config::LogLevel) -> PoolRuntime {
        let log_level = match level {
            corral_config::LogLevel::Debug => LogLevel::Debug,
            corral_config::LogLevel::Notice => LogLevel::Notice,
            corral_config::LogLevel::Warning => LogLevel::Warning,
            _ => LogLevel::Error,
        };
        PoolRuntime {
            name: pool.name.clone(),
            limit_extensions: pool.security_limit_extensions.clone(),
            ping_path: pool.ping_path.clone(),
            ping_response: pool.ping_response.clone(),
            max_requests: pool.pm_max_requests as u64,
            allowed_clients: pool.listen_allowed_clients.clone(),
            log_level,
            access_format: pool.access_tokens.clone(),
            access_suppress: pool.access_suppress_path.clone(),
            master_pid: 0,
            status_path: pool.pm_status_path.clone(),
            pm_name: pool.pm.name(),
            status_only: false,
            powered_by: None,
        }
    }
}
