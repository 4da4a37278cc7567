//! corral's command line on clap: php-fpm's own flags at the top (no
//! command runs the master, as `php-fpm` does) and corral's subcommands,
//! each defined by the crate that owns it. Completions and man pages are
//! generated from these same definitions.
//!
//! php-fpm's flags parse as php-fpm's getopt does: short options glue
//! (`-yFILE`, `-tt`, `-dmemory_limit=1G`), long ones take `=` or the next
//! word, a value may start with `-`, and a repeated option's last value
//! wins. A bad one exits 64, as php-fpm does.

use std::path::PathBuf;

use clap::{ArgAction, Args, Parser, Subcommand};

/// corral's whole command line.
#[derive(Parser, Debug)]
#[command(
    name = "corral",
    about = "A php-fpm 8.2 drop-in that runs each pool in its own pen",
    long_about = "A php-fpm 8.2 drop-in that runs each pool in its own pen.\n\n\
        With no command, corral is php-fpm: it reads php-fpm's configuration \
        (-y, default /etc/php/8.2/fpm/php-fpm.conf), takes php-fpm's flags and runs \
        the master. The commands talk to a running master or to the host.",
    override_usage = "corral [-n] [-e] [-h] [-i] [-m] [-v] [-t] [-p <prefix>] [-g <pid>] [-c <file>] [-d foo[=bar]] [-y <file>] [-D] [-F [-O]]\n       corral <COMMAND> [OPTIONS] [--json]",
    after_help = "Exit codes: 0 ok, 1 failure, 64 usage, 69 no master answers, 70 internal error, 77 needs root, 78 invalid configuration (docs/cli.md).",
    args_override_self = true,
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    #[command(flatten)]
    pub fpm: FpmArgs,
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// corral's commands. Each one's flags live with its code: add a command
/// here and one line to `main`'s dispatch.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Re-read the configuration; only pools that changed restart
    Reload(crate::control::ReloadArgs),
    /// A new generation of the named pools, changed or not (a fresh OPcache)
    Restart(crate::control::RestartArgs),
    /// Every pool's counters and processes, and its cgroup's usage
    Status(crate::control::StatusArgs),
    /// Every pool's Prometheus metrics (text, OpenMetrics or JSON)
    Metrics(corral_metrics::cli::MetricsArgs),
    /// Every pool live in the terminal, sortable, updated every second
    Top(corral_top::TopArgs),
    /// Provision isolated sites: users, directories, pool file, vhost
    Site(Box<corral_sites::cli::SiteArgs>),
    /// Recommend pm.max_children from what the running workers use
    Tune(Box<corral_sites::cli::TuneArgs>),
    /// What isolation this host can give its pools
    Doctor(Box<corral_sites::doctor::DoctorArgs>),
    /// FastCGI load generator: throughput, HDR latency percentiles, errors
    ///
    /// Sends the same request over and over, straight to a FastCGI socket (no
    /// web server in between). Closed loop by default; --rate makes it an
    /// open loop whose latencies count from each request's scheduled time.
    /// Exit status: 0 when requests were answered (errors are in the report),
    /// 1 when none was, 64 on a bad command line.
    Bench(Box<corral_bench::BenchArgs>),
    /// Print a shell completion script
    Completions(crate::docs::CompletionsArgs),
    /// Print the man page, or write every page to a directory
    Man(crate::docs::ManArgs),
}

/// php-fpm 8.2's flags (`php-fpm8.2 -h`), and corral's two additions.
#[derive(Args, Debug, Default, Clone, PartialEq, Eq)]
#[command(next_help_heading = "php-fpm options (no command: run the master)")]
pub struct FpmArgs {
    /// Look for php.ini file in this directory
    #[arg(
        short = 'c',
        long = "php-ini",
        value_name = "path|file",
        allow_hyphen_values = true
    )]
    pub php_ini: Option<String>,
    /// No php.ini file will be used
    #[arg(short = 'n', long = "no-php-ini")]
    pub no_ini: bool,
    /// Define INI entry foo with value 'bar'
    #[arg(short = 'd', long = "define", value_name = "foo[=bar]", action = ArgAction::Append, allow_hyphen_values = true)]
    pub defines: Vec<String>,
    /// Generate extended information for debugger/profiler
    #[arg(short = 'e', long = "profile-info")]
    pub extended_info: bool,
    /// PHP information
    #[arg(short = 'i', long = "info")]
    pub info: bool,
    /// Show compiled in modules
    #[arg(short = 'm', long = "modules")]
    pub modules: bool,
    /// Version number (php-fpm's lines, then corral's)
    #[arg(short = 'v')]
    pub version: bool,
    /// corral's version and the PHP it embeds
    #[arg(long = "version")]
    pub corral_version: bool,
    /// Specify alternative prefix path to FastCGI process manager (default: /usr).
    #[arg(
        short = 'p',
        long = "prefix",
        value_name = "dir",
        allow_hyphen_values = true
    )]
    pub prefix: Option<PathBuf>,
    /// Specify the PID file location.
    #[arg(
        short = 'g',
        long = "pid",
        value_name = "file",
        allow_hyphen_values = true
    )]
    pub pid: Option<PathBuf>,
    /// Specify alternative path to FastCGI process manager config file.
    #[arg(
        short = 'y',
        long = "fpm-config",
        value_name = "file",
        allow_hyphen_values = true
    )]
    pub fpm_config: Option<PathBuf>,
    /// Test FPM configuration and exit (twice: and print it)
    #[arg(short = 't', long = "test", action = ArgAction::Count)]
    pub test: u8,
    /// force to run in background, and ignore daemonize option from config file
    #[arg(short = 'D', long = "daemonize", overrides_with = "nodaemonize")]
    daemonize: bool,
    /// force to stay in foreground, and ignore daemonize option from config file
    #[arg(short = 'F', long = "nodaemonize", overrides_with = "daemonize")]
    nodaemonize: bool,
    /// force output to stderr in nodaemonize even if stderr is not a TTY
    #[arg(short = 'O', long = "force-stderr")]
    pub force_stderr: bool,
    /// Allow pool to run as root (disabled by default)
    #[arg(short = 'R', long = "allow-to-run-as-root")]
    pub allow_root: bool,
    /// corral: where `corral reload|restart|status` reach this master [default: named after -y/-p]
    #[arg(long, value_name = "PATH")]
    pub control_socket: Option<PathBuf>,
    /// corral: the cgroup under the master's own that holds the pools' cgroups [default: corral]
    #[arg(long, value_name = "NAME")]
    pub cgroup_subtree: Option<String>,
}

impl FpmArgs {
    /// `-D` (true) or `-F` (false), whichever came last; `None`: the
    /// config's `daemonize` decides.
    pub fn daemonize(&self) -> Option<bool> {
        if self.daemonize {
            Some(true)
        } else if self.nodaemonize {
            Some(false)
        } else {
            None
        }
    }

    /// The arguments a prototype needs to start PHP the same way.
    pub fn php_args(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(c) = &self.php_ini {
            out.push("-c".into());
            out.push(c.clone());
        }
        if self.no_ini {
            out.push("-n".into());
        }
        for d in &self.defines {
            out.push("-d".into());
            out.push(d.clone());
        }
        if self.extended_info {
            out.push("-e".into());
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::error::ErrorKind;
    use clap::CommandFactory;

    fn p(a: &[&str]) -> Result<Cli, clap::Error> {
        let mut all = vec!["corral"];
        all.extend_from_slice(a);
        Cli::try_parse_from(all)
    }

    fn fpm(a: &[&str]) -> FpmArgs {
        let cli = p(a).unwrap_or_else(|e| panic!("{a:?}: {e}"));
        assert!(cli.command.is_none(), "{a:?} is php-fpm mode");
        cli.fpm
    }

    #[test]
    fn the_definitions_are_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn glued_and_separate_values() {
        let f = fpm(&[
            "-y/etc/x.conf",
            "-tt",
            "-d",
            "a=b",
            "-dmemory_limit=1G",
            "--prefix=/srv",
            "-F",
            "-O",
        ]);
        assert_eq!(f.fpm_config, Some(PathBuf::from("/etc/x.conf")));
        assert_eq!(f.test, 2);
        assert_eq!(f.defines, vec!["a=b", "memory_limit=1G"]);
        assert_eq!(f.prefix, Some(PathBuf::from("/srv")));
        assert_eq!(f.daemonize(), Some(false));
        assert!(f.force_stderr);
        assert_eq!(
            f.php_args(),
            ["-d", "a=b", "-d", "memory_limit=1G"].map(String::from)
        );
    }

    #[test]
    fn getopt_habits() {
        let f = fpm(&["-y", "a.conf", "--fpm-config", "b.conf", "-t", "--test"]);
        assert_eq!(f.fpm_config, Some(PathBuf::from("b.conf")), "last wins");
        assert_eq!(f.test, 2);
        assert_eq!(fpm(&["-D", "-F"]).daemonize(), Some(false));
        assert_eq!(fpm(&["-F", "-D"]).daemonize(), Some(true));
        assert_eq!(fpm(&["-FD"]).daemonize(), Some(true));
        assert_eq!(fpm(&[]).daemonize(), None);
        assert_eq!(fpm(&["-c", "-weird"]).php_ini.as_deref(), Some("-weird"));
        assert_eq!(fpm(&["-ntR"]).test, 1);
        let f = fpm(&["--php-ini=/etc/php", "--no-php-ini", "--define", "x=1"]);
        assert_eq!(
            f.php_args(),
            ["-c", "/etc/php", "-n", "-d", "x=1"].map(String::from)
        );
        assert!(fpm(&["-v"]).version && !fpm(&["-v"]).corral_version);
        assert!(fpm(&["--version"]).corral_version);
        assert!(fpm(&["-m"]).modules && fpm(&["-i"]).info && fpm(&["-e"]).extended_info);
        assert_eq!(
            fpm(&["-g", "/run/x.pid"]).pid,
            Some(PathBuf::from("/run/x.pid"))
        );
    }

    #[test]
    fn corral_long_options() {
        let f = fpm(&[
            "--cgroup-subtree",
            "corral-b",
            "--control-socket=/run/c.sock",
        ]);
        assert_eq!(f.cgroup_subtree.as_deref(), Some("corral-b"));
        assert_eq!(f.control_socket, Some(PathBuf::from("/run/c.sock")));
    }

    #[test]
    fn errors() {
        let kind = |a: &[&str]| p(a).unwrap_err().kind();
        assert_eq!(kind(&["-x"]), ErrorKind::UnknownArgument);
        assert_eq!(kind(&["-y"]), ErrorKind::InvalidValue);
        assert_eq!(kind(&["stray"]), ErrorKind::InvalidSubcommand);
        assert_eq!(kind(&["--nope"]), ErrorKind::UnknownArgument);
        assert_eq!(kind(&["--json"]), ErrorKind::UnknownArgument);
        assert_eq!(kind(&["-t", "status"]), ErrorKind::ArgumentConflict);
        assert_eq!(kind(&["-h"]), ErrorKind::DisplayHelp);
        assert_eq!(kind(&["--help"]), ErrorKind::DisplayHelp);
        assert_eq!(kind(&["status", "--jsn"]), ErrorKind::UnknownArgument);
        assert_eq!(kind(&["restart"]), ErrorKind::MissingRequiredArgument);
    }

    /// A command's global flag named like a php-fpm flag (site's
    /// --fpm-config, --control-socket) must not reach the php-fpm flags
    /// (clap hands global values up to the parent).
    #[test]
    fn command_flags_do_not_leak_into_php_fpm_flags() {
        for args in [
            &[
                "site",
                "list",
                "--fpm-config",
                "/x.conf",
                "--control-socket",
                "/c",
            ][..],
            &["doctor", "--fpm-config", "/x.conf", "--json"],
            &["tune", "--control-socket", "/c", "www"],
            &["status", "-y", "/x.conf", "--control-socket", "/c"],
        ] {
            let cli = p(args).unwrap_or_else(|e| panic!("{args:?}: {e}"));
            assert_eq!(cli.fpm, FpmArgs::default(), "{args:?}");
        }
    }

    /// Every command, nested ones too, has --json and its own --help.
    #[test]
    fn every_command_has_json_and_help() {
        let mut cmd = Cli::command();
        cmd.build();
        fn walk(c: &clap::Command, path: &str, out: &mut Vec<String>) {
            for sub in c.get_subcommands().filter(|s| s.get_name() != "help") {
                let path = format!("{path} {}", sub.get_name());
                for flag in ["json", "help"] {
                    if !sub.get_arguments().any(|a| a.get_long() == Some(flag)) {
                        out.push(format!("{path} lacks --{flag}"));
                    }
                }
                if sub.get_about().is_none() {
                    out.push(format!("{path} has no one-line help"));
                }
                walk(sub, &path, out);
            }
        }
        let mut missing = Vec::new();
        walk(&cmd, "corral", &mut missing);
        assert!(missing.is_empty(), "{missing:#?}");
    }
}
