//! php-fpm's command line, parsed the way php-fpm's getopt does: short
//! options may be glued (`-yFILE`, `-tt`), long options take `=` or the next
//! argument.

use std::path::PathBuf;

#[derive(Debug, Default, Clone)]
pub struct Flags {
    pub php_ini: Option<String>,
    pub no_ini: bool,
    pub defines: Vec<String>,
    pub extended_info: bool,
    pub help: bool,
    pub info: bool,
    pub modules: bool,
    pub version: bool,
    pub prefix: Option<PathBuf>,
    pub pid: Option<PathBuf>,
    pub fpm_config: Option<PathBuf>,
    pub test: u8,
    pub daemonize: Option<bool>,
    pub force_stderr: bool,
    pub allow_root: bool,
    /// corral's own: where `corral reload`/`status` reach this master.
    pub control_socket: Option<PathBuf>,
    /// corral's own: the cgroup under the master's own that holds the
    /// pools' cgroups (default `corral`); one per master on a host.
    pub cgroup_subtree: Option<String>,
}

#[derive(Debug, PartialEq, Eq)]
pub enum UsageError {
    Unknown(String),
    MissingValue(String),
    Extra(String),
}

/// (short, long, takes a value)
const OPTIONS: &[(char, &str, bool)] = &[
    ('c', "php-ini", true),
    ('n', "no-php-ini", false),
    ('d', "define", true),
    ('e', "profile-info", false),
    ('h', "help", false),
    ('i', "info", false),
    ('m', "modules", false),
    ('v', "version", false),
    ('p', "prefix", true),
    ('g', "pid", true),
    ('y', "fpm-config", true),
    ('t', "test", false),
    ('D', "daemonize", false),
    ('F', "nodaemonize", false),
    ('O', "force-stderr", false),
    ('R', "allow-to-run-as-root", false),
    // corral's own, long form only.
    ('\u{1}', "control-socket", true),
    ('\u{2}', "cgroup-subtree", true),
];

impl Flags {
    fn set(&mut self, short: char, value: Option<String>) {
        let v = || value.clone().unwrap_or_default();
        match short {
            'c' => self.php_ini = Some(v()),
            'n' => self.no_ini = true,
            'd' => self.defines.push(v()),
            'e' => self.extended_info = true,
            'h' => self.help = true,
            'i' => self.info = true,
            'm' => self.modules = true,
            'v' => self.version = true,
            'p' => self.prefix = Some(PathBuf::from(v())),
            'g' => self.pid = Some(PathBuf::from(v())),
            'y' => self.fpm_config = Some(PathBuf::from(v())),
            't' => self.test = self.test.saturating_add(1),
            'D' => self.daemonize = Some(true),
            'F' => self.daemonize = Some(false),
            'O' => self.force_stderr = true,
            'R' => self.allow_root = true,
            '\u{1}' => self.control_socket = Some(PathBuf::from(v())),
            '\u{2}' => self.cgroup_subtree = Some(v()),
            _ => {}
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

pub fn parse(args: &[String]) -> Result<Flags, UsageError> {
    let mut f = Flags::default();
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        i += 1;
        if let Some(long) = a.strip_prefix("--") {
            let (name, inline) = match long.split_once('=') {
                Some((n, v)) => (n, Some(v.to_string())),
                None => (long, None),
            };
            let Some(&(short, _, takes)) = OPTIONS.iter().find(|o| o.1 == name) else {
                return Err(UsageError::Unknown(a.clone()));
            };
            let value = if takes {
                match inline {
                    Some(v) => Some(v),
                    None if i < args.len() => {
                        i += 1;
                        Some(args[i - 1].clone())
                    }
                    None => return Err(UsageError::MissingValue(a.clone())),
                }
            } else {
                None
            };
            f.set(short, value);
        } else if let Some(shorts) = a.strip_prefix('-').filter(|s| !s.is_empty()) {
            let chars: Vec<char> = shorts.chars().collect();
            let mut j = 0;
            while j < chars.len() {
                let c = chars[j];
                j += 1;
                let Some(&(short, _, takes)) =
                    OPTIONS.iter().find(|o| o.0 == c && c.is_ascii_alphabetic())
                else {
                    return Err(UsageError::Unknown(format!("-{c}")));
                };
                if takes {
                    let rest: String = chars[j..].iter().collect();
                    let value = if !rest.is_empty() {
                        rest
                    } else if i < args.len() {
                        i += 1;
                        args[i - 1].clone()
                    } else {
                        return Err(UsageError::MissingValue(format!("-{c}")));
                    };
                    f.set(short, Some(value));
                    break;
                }
                f.set(short, None);
            }
        } else {
            return Err(UsageError::Extra(a.clone()));
        }
    }
    Ok(f)
}

pub fn usage(prog: &str) -> String {
    format!(
        "Usage: {prog} [-n] [-e] [-h] [-i] [-m] [-v] [-t] [-p <prefix>] [-g <pid>] [-c <file>] [-d foo[=bar]] [-y <file>] [-D] [-F [-O]]
  -c <path>|<file> Look for php.ini file in this directory
  -n               No php.ini file will be used
  -d foo[=bar]     Define INI entry foo with value 'bar'
  -e               Generate extended information for debugger/profiler
  -h               This help
  -i               PHP information
  -m               Show compiled in modules
  -v               Version number
  -p, --prefix <dir>
                   Specify alternative prefix path to FastCGI process manager (default: /usr).
  -g, --pid <file>
                   Specify the PID file location.
  -y, --fpm-config <file>
                   Specify alternative path to FastCGI process manager config file.
  -t, --test       Test FPM configuration and exit
  -D, --daemonize  force to run in background, and ignore daemonize option from config file
  -F, --nodaemonize
                   force to stay in foreground, and ignore daemonize option from config file
  -O, --force-stderr
                   force output to stderr in nodaemonize even if stderr is not a TTY
  -R, --allow-to-run-as-root
                   Allow pool to run as root (disabled by default)
"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(a: &[&str]) -> Result<Flags, UsageError> {
        parse(&a.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn glued_and_separate_values() {
        let f = p(&[
            "-y/etc/x.conf",
            "-tt",
            "-d",
            "a=b",
            "-dmemory_limit=1G",
            "--prefix=/srv",
            "-F",
            "-O",
        ])
        .unwrap();
        assert_eq!(f.fpm_config, Some(PathBuf::from("/etc/x.conf")));
        assert_eq!(f.test, 2);
        assert_eq!(f.defines, vec!["a=b", "memory_limit=1G"]);
        assert_eq!(f.prefix, Some(PathBuf::from("/srv")));
        assert_eq!(f.daemonize, Some(false));
        assert!(f.force_stderr);
    }

    #[test]
    fn corral_long_options() {
        let f = p(&[
            "--cgroup-subtree",
            "corral-b",
            "--control-socket=/run/c.sock",
        ])
        .unwrap();
        assert_eq!(f.cgroup_subtree.as_deref(), Some("corral-b"));
        assert_eq!(f.control_socket, Some(PathBuf::from("/run/c.sock")));
    }

    #[test]
    fn errors() {
        assert!(matches!(p(&["-x"]), Err(UsageError::Unknown(_))));
        assert!(matches!(p(&["-y"]), Err(UsageError::MissingValue(_))));
        assert!(matches!(p(&["stray"]), Err(UsageError::Extra(_))));
        assert!(matches!(p(&["--nope"]), Err(UsageError::Unknown(_))));
    }
}
