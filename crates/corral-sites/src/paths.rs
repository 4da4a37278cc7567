//! Where things live on this host, and how to drive its web server.
//!
//! Every knob has a Debian default, an environment variable
//! (`CORRAL_SITES_<FLAG>`, e.g. `CORRAL_SITES_HOME_BASE`) and a flag
//! (`--home-base`); the flag wins. Tests sandbox a whole host this way:
//! homes, pool dir, vhost dir and registry all under one temp dir.

use std::path::{Path, PathBuf};

use crate::error::{Result, SitesError};

/// The host's layout and commands, resolved from flags, env and defaults.
#[derive(Debug, Clone)]
pub struct Paths {
    /// Parent of every site's home (`/home`).
    pub home_base: PathBuf,
    /// Pool files; `None` = `/etc/php/<php_version>/fpm/pool.d`.
    pub pool_dir: Option<PathBuf>,
    /// Where pool sockets are created (`/run/php`).
    pub socket_dir: PathBuf,
    /// nginx vhosts that are live (`/etc/nginx/sites-enabled`).
    pub nginx_dir: PathBuf,
    /// Apache vhosts (`/etc/apache2/sites-available`).
    pub apache_dir: PathBuf,
    /// Apache's enabled links, what `a2ensite` makes (`/etc/apache2/sites-enabled`).
    pub apache_enabled_dir: PathBuf,
    /// Registry and lock (`/var/lib/corral/sites`).
    pub state_dir: PathBuf,
    /// Operator templates, searched before the shipped ones (`/etc/corral/templates`).
    pub template_dir: PathBuf,
    /// The control socket of the corral running `fpm_config`
    /// (`/run/corral/php-fpm.conf-HASH.sock`, see
    /// [`corral_ipc::control::socket_name`]).
    pub control_socket: PathBuf,
    /// The php-fpm.conf corral runs with, loaded whole after a pool file
    /// is written; `None` = `/etc/php/<php_version>/fpm/php-fpm.conf`.
    pub fpm_config: Option<PathBuf>,
    /// nginx's main config, for the default `nginx -t -c`.
    pub nginx_conf: PathBuf,
    /// Command (run with `sh -c`) that tests the web server's config.
    pub webserver_test: Option<String>,
    /// Command (run with `sh -c`) that makes the web server reload.
    pub webserver_reload: Option<String>,
    /// What vhosts listen on (`80`; `127.0.0.1:8080` works for both servers).
    pub listen: String,
    /// Base URL the probe is fetched from; `None` = `http://127.0.0.1:<listen port>`.
    pub verify_url: Option<String>,
    /// Skip fetching the probe.
    pub no_verify: bool,
    /// The web server's user and group (`www-data` on Debian, nginx and Apache).
    pub web_user: String,
    pub web_group: String,
    /// Override of MemTotal in bytes (tests; hosts with cgroup limits).
    pub mem_total: Option<u64>,
    /// Where the session-cleanup cron file goes (`/etc/cron.d`).
    pub cron_dir: PathBuf,
    /// Where per-site logrotate files go (`/etc/logrotate.d`).
    pub logrotate_dir: PathBuf,
    /// Where `site remove` keeps an archive of the home (`/var/lib/corral/archive`).
    pub archive_dir: PathBuf,
    /// The ACME challenge webroot certbot writes to (`/var/lib/corral/acme`).
    pub acme_dir: PathBuf,
    /// certbot's config dir, holding `live/DOMAIN/` (`/etc/letsencrypt`).
    pub letsencrypt_dir: PathBuf,
    /// The certbot command (run with `sh -c`, arguments appended).
    pub certbot: String,
    /// What TLS vhosts listen on (`443`).
    pub tls_listen: String,
    /// The php.ini dir of a PHP version; `None` = `/etc/php/VERSION/fpm`.
    pub php_ini_dir: Option<PathBuf>,
    /// Where `libphpVERSION.so` lives (`/usr/lib`).
    pub libphp_dir: PathBuf,
    /// Root-owned PHP files pools prepend (`auto_prepend_file`), one per
    /// template that ships `NAME.php` (`/var/lib/corral/php`).
    pub php_include_dir: PathBuf,
    /// sshd drop-ins, one per SFTP owner (`/etc/ssh/sshd_config.d`).
    pub sshd_config_dir: PathBuf,
    /// SFTP owners' authorized keys, root's (`/etc/ssh/corral-keys`).
    pub sftp_keys_dir: PathBuf,
    /// Command (run with `sh -c`) that checks sshd's whole config.
    pub sshd_test: Option<String>,
    /// Command (run with `sh -c`) that makes a running sshd re-read it.
    pub sshd_reload: Option<String>,
}

/// (flag, help) of every knob, for usage text and parsing.
pub const FLAGS: &[(&str, &str)] = &[
    ("home-base", "parent of site homes [/home]"),
    ("pool-dir", "pool files [/etc/php/VERSION/fpm/pool.d]"),
    ("socket-dir", "pool sockets [/run/php]"),
    ("nginx-dir", "nginx vhosts [/etc/nginx/sites-enabled]"),
    ("apache-dir", "Apache vhosts [/etc/apache2/sites-available]"),
    (
        "apache-enabled-dir",
        "Apache enabled links [/etc/apache2/sites-enabled]",
    ),
    ("state-dir", "registry and lock [/var/lib/corral/sites]"),
    ("template-dir", "operator templates [/etc/corral/templates]"),
    (
        "control-socket",
        "corral's control socket [the one of the master on --fpm-config]",
    ),
    (
        "fpm-config",
        "php-fpm.conf to validate [/etc/php/VERSION/fpm/php-fpm.conf]",
    ),
    ("nginx-conf", "nginx main config [/etc/nginx/nginx.conf]"),
    (
        "webserver-test",
        "config test command [nginx -t | apachectl configtest]",
    ),
    (
        "webserver-reload",
        "reload command [nginx -s reload || nginx | apachectl graceful]",
    ),
    ("listen", "vhost listen address [80]"),
    (
        "verify-url",
        "base URL for the probe [http://127.0.0.1:PORT]",
    ),
    ("web-user", "web server user [www-data]"),
    ("web-group", "web server group [www-data]"),
    ("mem-total", "RAM to plan with, e.g. 2G [MemTotal]"),
    ("cron-dir", "session cleanup cron file [/etc/cron.d]"),
    (
        "logrotate-dir",
        "per-site logrotate files [/etc/logrotate.d]",
    ),
    (
        "archive-dir",
        "archives of removed homes [/var/lib/corral/archive]",
    ),
    ("acme-dir", "ACME challenge webroot [/var/lib/corral/acme]"),
    ("letsencrypt-dir", "certbot's config dir [/etc/letsencrypt]"),
    ("certbot-command", "certbot command [certbot]"),
    ("tls-listen", "TLS vhost listen address [443]"),
    ("php-ini-dir", "php.ini dir [/etc/php/VERSION/fpm]"),
    ("libphp-dir", "where libphpVERSION.so is [/usr/lib]"),
    (
        "php-include-dir",
        "PHP files pools prepend [/var/lib/corral/php]",
    ),
    (
        "sshd-config-dir",
        "sshd drop-ins for SFTP owners [/etc/ssh/sshd_config.d]",
    ),
    (
        "sftp-keys-dir",
        "SFTP owners' authorized keys [/etc/ssh/corral-keys]",
    ),
    ("sshd-test", "sshd config test command [/usr/sbin/sshd -t]"),
    (
        "sshd-reload",
        "sshd reload command [SIGHUP to /run/sshd.pid if it runs]",
    ),
];

/// The host knobs as clap flags, for every `corral site`, `tune` and
/// `doctor` command (global there: they may come before or after the
/// subcommand). Each has a `CORRAL_SITES_<NAME>` variable too; the flag
/// wins. [`FLAGS`] names them; a test keeps the two lists equal.
#[derive(clap::Args, Debug, Clone, Default, PartialEq, Eq)]
#[command(next_help_heading = "Host options (also CORRAL_SITES_<NAME> in the environment)")]
pub struct HostArgs {
    /// Parent of site homes [default: /home]
    #[arg(long, global = true, value_name = "DIR")]
    pub home_base: Option<String>,
    /// Pool files [default: /etc/php/VERSION/fpm/pool.d]
    #[arg(long, global = true, value_name = "DIR")]
    pub pool_dir: Option<String>,
    /// Pool sockets [default: /run/php]
    #[arg(long, global = true, value_name = "DIR")]
    pub socket_dir: Option<String>,
    /// nginx vhosts [default: /etc/nginx/sites-enabled]
    #[arg(long, global = true, value_name = "DIR")]
    pub nginx_dir: Option<String>,
    /// Apache vhosts [default: /etc/apache2/sites-available]
    #[arg(long, global = true, value_name = "DIR")]
    pub apache_dir: Option<String>,
    /// Apache enabled links [default: /etc/apache2/sites-enabled]
    #[arg(long, global = true, value_name = "DIR")]
    pub apache_enabled_dir: Option<String>,
    /// Registry and lock [default: /var/lib/corral/sites]
    #[arg(long, global = true, value_name = "DIR")]
    pub state_dir: Option<String>,
    /// Operator templates [default: /etc/corral/templates]
    #[arg(long, global = true, value_name = "DIR")]
    pub template_dir: Option<String>,
    /// corral's control socket [default: the one of the master on --fpm-config]
    // Own ids: global values reach the parent command, whose php-fpm
    // flags have the same names with another type.
    #[arg(
        id = "host_control_socket",
        long = "control-socket",
        global = true,
        value_name = "PATH"
    )]
    pub control_socket: Option<String>,
    /// php-fpm.conf to validate [default: /etc/php/VERSION/fpm/php-fpm.conf]
    #[arg(
        id = "host_fpm_config",
        long = "fpm-config",
        global = true,
        value_name = "FILE"
    )]
    pub fpm_config: Option<String>,
    /// nginx main config [default: /etc/nginx/nginx.conf]
    #[arg(long, global = true, value_name = "FILE")]
    pub nginx_conf: Option<String>,
    /// Config test command [default: nginx -t | apachectl configtest]
    #[arg(long, global = true, value_name = "COMMAND")]
    pub webserver_test: Option<String>,
    /// Reload command [default: nginx -s reload || nginx | apachectl graceful]
    #[arg(long, global = true, value_name = "COMMAND")]
    pub webserver_reload: Option<String>,
    /// Vhost listen address [default: 80]
    #[arg(long, global = true, value_name = "ADDR")]
    pub listen: Option<String>,
    /// Base URL for the probe [default: http://127.0.0.1:PORT]
    #[arg(long, global = true, value_name = "URL")]
    pub verify_url: Option<String>,
    /// Web server user [default: www-data]
    #[arg(long, global = true, value_name = "USER")]
    pub web_user: Option<String>,
    /// Web server group [default: www-data]
    #[arg(long, global = true, value_name = "GROUP")]
    pub web_group: Option<String>,
    /// RAM to plan with, e.g. 2G [default: MemTotal]
    #[arg(long, global = true, value_name = "SIZE")]
    pub mem_total: Option<String>,
    /// Session cleanup cron file [default: /etc/cron.d]
    #[arg(long, global = true, value_name = "DIR")]
    pub cron_dir: Option<String>,
    /// Per-site logrotate files [default: /etc/logrotate.d]
    #[arg(long, global = true, value_name = "DIR")]
    pub logrotate_dir: Option<String>,
    /// Archives of removed homes [default: /var/lib/corral/archive]
    #[arg(long, global = true, value_name = "DIR")]
    pub archive_dir: Option<String>,
    /// ACME challenge webroot [default: /var/lib/corral/acme]
    #[arg(long, global = true, value_name = "DIR")]
    pub acme_dir: Option<String>,
    /// certbot's config dir [default: /etc/letsencrypt]
    #[arg(long, global = true, value_name = "DIR")]
    pub letsencrypt_dir: Option<String>,
    /// certbot command [default: certbot]
    #[arg(long, global = true, value_name = "COMMAND")]
    pub certbot_command: Option<String>,
    /// TLS vhost listen address [default: 443]
    #[arg(long, global = true, value_name = "ADDR")]
    pub tls_listen: Option<String>,
    /// php.ini dir [default: /etc/php/VERSION/fpm]
    #[arg(long, global = true, value_name = "DIR")]
    pub php_ini_dir: Option<String>,
    /// Where libphpVERSION.so is [default: /usr/lib]
    #[arg(long, global = true, value_name = "DIR")]
    pub libphp_dir: Option<String>,
    /// PHP files pools prepend [default: /var/lib/corral/php]
    #[arg(long, global = true, value_name = "DIR")]
    pub php_include_dir: Option<String>,
    /// sshd drop-ins for SFTP owners [default: /etc/ssh/sshd_config.d]
    #[arg(long, global = true, value_name = "DIR")]
    pub sshd_config_dir: Option<String>,
    /// SFTP owners' authorized keys [default: /etc/ssh/corral-keys]
    #[arg(long, global = true, value_name = "DIR")]
    pub sftp_keys_dir: Option<String>,
    /// sshd config test command [default: /usr/sbin/sshd -t]
    #[arg(long, global = true, value_name = "COMMAND")]
    pub sshd_test: Option<String>,
    /// sshd reload command [default: SIGHUP to /run/sshd.pid if it runs]
    #[arg(long, global = true, value_name = "COMMAND")]
    pub sshd_reload: Option<String>,
    /// Do not fetch a probe through the web server
    #[arg(long, global = true)]
    pub no_verify: bool,
}

impl HostArgs {
    /// (flag name as in [`FLAGS`], value) of every knob.
    pub fn given(&self) -> [(&'static str, &Option<String>); 32] {
        [
            ("home-base", &self.home_base),
            ("pool-dir", &self.pool_dir),
            ("socket-dir", &self.socket_dir),
            ("nginx-dir", &self.nginx_dir),
            ("apache-dir", &self.apache_dir),
            ("apache-enabled-dir", &self.apache_enabled_dir),
            ("state-dir", &self.state_dir),
            ("template-dir", &self.template_dir),
            ("control-socket", &self.control_socket),
            ("fpm-config", &self.fpm_config),
            ("nginx-conf", &self.nginx_conf),
            ("webserver-test", &self.webserver_test),
            ("webserver-reload", &self.webserver_reload),
            ("listen", &self.listen),
            ("verify-url", &self.verify_url),
            ("web-user", &self.web_user),
            ("web-group", &self.web_group),
            ("mem-total", &self.mem_total),
            ("cron-dir", &self.cron_dir),
            ("logrotate-dir", &self.logrotate_dir),
            ("archive-dir", &self.archive_dir),
            ("acme-dir", &self.acme_dir),
            ("letsencrypt-dir", &self.letsencrypt_dir),
            ("certbot-command", &self.certbot_command),
            ("tls-listen", &self.tls_listen),
            ("php-ini-dir", &self.php_ini_dir),
            ("libphp-dir", &self.libphp_dir),
            ("php-include-dir", &self.php_include_dir),
            ("sshd-config-dir", &self.sshd_config_dir),
            ("sftp-keys-dir", &self.sftp_keys_dir),
            ("sshd-test", &self.sshd_test),
            ("sshd-reload", &self.sshd_reload),
        ]
    }
}

/// The php-fpm.conf the host's corral runs on: `--fpm-config`, or Debian's
/// for the default PHP version (what `corral` itself defaults to).
fn default_fpm_config(get: &impl Fn(&str) -> Option<String>) -> PathBuf {
    get("fpm-config").map(PathBuf::from).unwrap_or_else(|| {
        PathBuf::from(format!(
            "/etc/php/{}/fpm/php-fpm.conf",
            crate::spec::DEFAULT_PHP_VERSION
        ))
    })
}

impl Paths {
    /// Debian defaults overridden by `CORRAL_SITES_*` variables.
    pub fn from_env() -> Result<Paths> {
        Self::resolve(|flag| {
            let var = format!(
                "CORRAL_SITES_{}",
                flag.replace('-', "_").to_ascii_uppercase()
            );
            std::env::var(var).ok().filter(|v| !v.is_empty())
        })
    }

    /// The knobs given as flags on a command line clap has parsed; env and
    /// defaults fill the rest.
    pub fn from_host(host: &HostArgs) -> Result<Paths> {
        let given = host
            .given()
            .into_iter()
            .filter_map(|(f, v)| Some((f.to_string(), v.clone()?)))
            .collect();
        Self::from_given(given, host.no_verify)
    }

    /// Takes the knob flags (`--flag VALUE`, `--flag=VALUE`, `--no-verify`)
    /// out of `args`; env and defaults fill the rest.
    pub fn from_args(args: &mut Vec<String>) -> Result<Paths> {
        let mut given: Vec<(String, String)> = Vec::new();
        let mut no_verify = false;
        let mut rest = Vec::new();
        let mut it = std::mem::take(args).into_iter();
        while let Some(a) = it.next() {
            if a == "--no-verify" {
                no_verify = true;
                continue;
            }
            let Some(body) = a.strip_prefix("--") else {
                rest.push(a);
                continue;
            };
            let (name, inline) = match body.split_once('=') {
                Some((n, v)) => (n, Some(v.to_string())),
                None => (body, None),
            };
            if !FLAGS.iter().any(|(f, _)| *f == name) {
                rest.push(a);
                continue;
            }
            let value = match inline.or_else(|| it.next()) {
                Some(v) => v,
                None => return Err(SitesError::Usage(format!("--{name} needs a value"))),
            };
            given.push((name.to_string(), value));
        }
        *args = rest;
        Self::from_given(given, no_verify)
    }

    /// `given` (flag, value) pairs over env over defaults.
    fn from_given(given: Vec<(String, String)>, no_verify: bool) -> Result<Paths> {
        let env = Self::from_env()?;
        let mut p = Self::resolve(|flag| {
            given
                .iter()
                .rev()
                .find(|(f, _)| f == flag)
                .map(|(_, v)| v.clone())
                .or_else(|| {
                    let var = format!(
                        "CORRAL_SITES_{}",
                        flag.replace('-', "_").to_ascii_uppercase()
                    );
                    std::env::var(var).ok().filter(|v| !v.is_empty())
                })
        })?;
        p.no_verify = no_verify || env.no_verify;
        Ok(p)
    }

    fn resolve(get: impl Fn(&str) -> Option<String>) -> Result<Paths> {
        let path = |flag: &str, default: &str| PathBuf::from(get(flag).unwrap_or(default.into()));
        let mem_total = match get("mem-total") {
            Some(v) => Some(
                crate::sizing::parse_bytes(&v)
                    .ok_or_else(|| SitesError::Usage(format!("--mem-total: bad size '{v}'")))?,
            ),
            None => None,
        };
        Ok(Paths {
            home_base: path("home-base", "/home"),
            pool_dir: get("pool-dir").map(PathBuf::from),
            socket_dir: path("socket-dir", "/run/php"),
            nginx_dir: path("nginx-dir", "/etc/nginx/sites-enabled"),
            apache_dir: path("apache-dir", "/etc/apache2/sites-available"),
            apache_enabled_dir: path("apache-enabled-dir", "/etc/apache2/sites-enabled"),
            state_dir: path("state-dir", "/var/lib/corral/sites"),
            template_dir: path("template-dir", "/etc/corral/templates"),
            control_socket: get("control-socket").map_or_else(
                || corral_ipc::control::root_socket(&default_fpm_config(&get), None),
                PathBuf::from,
            ),
            fpm_config: get("fpm-config").map(PathBuf::from),
            nginx_conf: path("nginx-conf", "/etc/nginx/nginx.conf"),
            webserver_test: get("webserver-test"),
            webserver_reload: get("webserver-reload"),
            listen: get("listen").unwrap_or_else(|| "80".into()),
            verify_url: get("verify-url"),
            no_verify: get("no-verify").is_some_and(|v| v != "0"),
            web_user: get("web-user").unwrap_or_else(|| "www-data".into()),
            web_group: get("web-group").unwrap_or_else(|| "www-data".into()),
            mem_total,
            cron_dir: path("cron-dir", "/etc/cron.d"),
            logrotate_dir: path("logrotate-dir", "/etc/logrotate.d"),
            archive_dir: path("archive-dir", "/var/lib/corral/archive"),
            acme_dir: path("acme-dir", "/var/lib/corral/acme"),
            letsencrypt_dir: path("letsencrypt-dir", "/etc/letsencrypt"),
            certbot: get("certbot-command").unwrap_or_else(|| "certbot".into()),
            tls_listen: get("tls-listen").unwrap_or_else(|| "443".into()),
            php_ini_dir: get("php-ini-dir").map(PathBuf::from),
            libphp_dir: path("libphp-dir", "/usr/lib"),
            php_include_dir: path("php-include-dir", "/var/lib/corral/php"),
            sshd_config_dir: path("sshd-config-dir", "/etc/ssh/sshd_config.d"),
            sftp_keys_dir: path("sftp-keys-dir", "/etc/ssh/corral-keys"),
            sshd_test: get("sshd-test"),
            sshd_reload: get("sshd-reload"),
        })
    }

    /// Every knob a site change reads, as (flag, value) with the value
    /// resolved: what a job that changes sites later (cron's `site lock
    /// --expired`) must be given to act on the same host as this command.
    /// Knobs whose default depends on the PHP version are given only when
    /// set.
    pub fn change_knobs(&self) -> Vec<(&'static str, String)> {
        let p = |v: &Path| v.display().to_string();
        let mut out = vec![
            ("home-base", p(&self.home_base)),
            ("socket-dir", p(&self.socket_dir)),
            ("nginx-dir", p(&self.nginx_dir)),
            ("apache-dir", p(&self.apache_dir)),
            ("apache-enabled-dir", p(&self.apache_enabled_dir)),
            ("state-dir", p(&self.state_dir)),
            ("template-dir", p(&self.template_dir)),
            ("control-socket", p(&self.control_socket)),
            ("nginx-conf", p(&self.nginx_conf)),
            ("listen", self.listen.clone()),
            ("web-user", self.web_user.clone()),
            ("web-group", self.web_group.clone()),
            ("cron-dir", p(&self.cron_dir)),
            ("logrotate-dir", p(&self.logrotate_dir)),
            ("acme-dir", p(&self.acme_dir)),
            ("letsencrypt-dir", p(&self.letsencrypt_dir)),
            ("tls-listen", self.tls_listen.clone()),
            ("libphp-dir", p(&self.libphp_dir)),
            ("php-include-dir", p(&self.php_include_dir)),
            ("sshd-config-dir", p(&self.sshd_config_dir)),
            ("sftp-keys-dir", p(&self.sftp_keys_dir)),
        ];
        let optional = [
            ("pool-dir", self.pool_dir.as_deref().map(p)),
            ("fpm-config", self.fpm_config.as_deref().map(p)),
            ("php-ini-dir", self.php_ini_dir.as_deref().map(p)),
            ("webserver-test", self.webserver_test.clone()),
            ("webserver-reload", self.webserver_reload.clone()),
            ("verify-url", self.verify_url.clone()),
            ("sshd-test", self.sshd_test.clone()),
            ("sshd-reload", self.sshd_reload.clone()),
        ];
        out.extend(optional.into_iter().filter_map(|(f, v)| Some((f, v?))));
        out
    }

    /// The pool directory for a PHP version.
    pub fn pool_dir_for(&self, php_version: &str) -> PathBuf {
        self.pool_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from(format!("/etc/php/{php_version}/fpm/pool.d")))
    }

    /// The php-fpm.conf to validate against for a PHP version.
    pub fn fpm_config_for(&self, php_version: &str) -> PathBuf {
        self.fpm_config
            .clone()
            .unwrap_or_else(|| PathBuf::from(format!("/etc/php/{php_version}/fpm/php-fpm.conf")))
    }

    /// The php.ini dir (php.ini and conf.d/) a PHP version's pools read.
    pub fn php_ini_dir_for(&self, php_version: &str) -> PathBuf {
        self.php_ini_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from(format!("/etc/php/{php_version}/fpm")))
    }

    /// The site owner's home.
    pub fn home(&self, user: &str) -> PathBuf {
        self.home_base.join(user)
    }

    /// A pool's socket: `corral-` keeps it apart from Debian's own
    /// `php8.2-fpm.sock` in the same directory.
    pub fn socket(&self, domain: &str) -> PathBuf {
        self.socket_dir.join(format!("corral-{domain}.sock"))
    }

    pub fn registry_file(&self, domain: &str) -> PathBuf {
        self.state_dir.join(format!("{domain}.json"))
    }

    pub fn lock_file(&self) -> PathBuf {
        self.state_dir.join("lock")
    }

    /// The port part of `listen` (for the default verify URL).
    pub fn listen_port(&self) -> u16 {
        self.listen
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or(80)
    }

    /// Apache wants `*:80` where nginx takes `80`.
    pub fn apache_listen(&self) -> String {
        if self.listen.contains(':') {
            self.listen.clone()
        } else {
            format!("*:{}", self.listen)
        }
    }

    /// The probe goes where the vhosts listen: to their address when
    /// `listen` names one (a vhost on `127.0.0.5:80` does not answer on
    /// 127.0.0.1), else to loopback.
    pub fn verify_base(&self) -> String {
        self.verify_url.clone().unwrap_or_else(|| {
            let host = match self.listen.rsplit_once(':') {
                Some((h, _)) if !matches!(h, "" | "*" | "0.0.0.0" | "[::]") => h,
                _ => "127.0.0.1",
            };
            format!("http://{host}:{}", self.listen_port())
        })
    }
}

/// `path` with `dir` replaced, for messages.
pub fn show(p: &Path) -> String {
    p.display().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_probe_goes_to_the_address_vhosts_listen_on() {
        let base = |listen: &str| {
            let mut p = Paths::resolve(knobs(&[("listen", listen)])).unwrap();
            p.verify_url = None;
            p.verify_base()
        };
        assert_eq!(base("80"), "http://127.0.0.1:80");
        assert_eq!(base("127.0.0.1:8080"), "http://127.0.0.1:8080");
        assert_eq!(base("127.9.8.7:80"), "http://127.9.8.7:80");
        assert_eq!(base("*:80"), "http://127.0.0.1:80");
        assert_eq!(base("0.0.0.0:81"), "http://127.0.0.1:81");
        assert_eq!(base("[::1]:80"), "http://[::1]:80");
    }

    fn knobs<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |flag| {
            pairs
                .iter()
                .find(|(f, _)| *f == flag)
                .map(|(_, v)| v.to_string())
        }
    }

    /// Every knob of [`FLAGS`] is a flag of [`HostArgs`], and a given flag
    /// wins over the environment's.
    #[test]
    fn host_args_are_the_knobs() {
        use clap::CommandFactory;
        #[derive(clap::Parser)]
        struct T {
            #[command(flatten)]
            host: HostArgs,
        }
        let cmd = T::command();
        let longs: Vec<&str> = cmd
            .get_arguments()
            .filter_map(|a| a.get_long())
            .filter(|l| *l != "no-verify")
            .collect();
        let knobs: Vec<&str> = FLAGS.iter().map(|(f, _)| *f).collect();
        assert_eq!(longs, knobs);
        let given: Vec<&str> = HostArgs::default()
            .given()
            .iter()
            .map(|(f, _)| *f)
            .collect();
        assert_eq!(given, knobs);
        use clap::Parser;
        let t = T::try_parse_from(["t", "--home-base", "/srv/h", "--no-verify"]).unwrap();
        let p = Paths::from_host(&t.host).unwrap();
        assert_eq!(p.home_base, PathBuf::from("/srv/h"));
        assert!(p.no_verify);
    }

    #[test]
    fn the_control_socket_is_the_one_of_the_master_on_fpm_config() {
        use corral_ipc::control::root_socket;
        let debian = Paths::resolve(knobs(&[])).unwrap();
        assert_eq!(
            debian.control_socket,
            root_socket(Path::new("/etc/php/8.2/fpm/php-fpm.conf"), None)
        );
        let other = Paths::resolve(knobs(&[("fpm-config", "/etc/php/8.3/fpm/php-fpm.conf")]));
        assert_eq!(
            other.unwrap().control_socket,
            root_socket(Path::new("/etc/php/8.3/fpm/php-fpm.conf"), None)
        );
        let given = Paths::resolve(knobs(&[("control-socket", "/tmp/c.sock")])).unwrap();
        assert_eq!(given.control_socket, PathBuf::from("/tmp/c.sock"));
    }
}
