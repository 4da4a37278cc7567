//! Which master a command talks to: the one started on the same
//! `-y/--fpm-config` and `-p/--prefix` (each master has its own control
//! socket, named after its configuration), or `--control-socket PATH`.
//!
//! Root's masters listen in `/run/corral`, anyone else's in their runtime
//! directory. A command never falls back from one to the other: a user
//! asking about root's master is told to be root, not shown another
//! master's pools.

use std::io;
use std::path::{Path, PathBuf};

use clap::Args;
use corral_ipc::control::{socket_name, ControlRequest, ROOT_DIR};
use corral_ipc::ExitCode;

use crate::output::CliError;

/// The flags that name a master. The same letters as the master's own
/// `-y` and `-p`, so the command that started it, with the subcommand
/// put in front, reaches it.
#[derive(Args, Debug, Clone, Default, PartialEq, Eq)]
pub struct ControlTarget {
    /// The master's control socket [default: the one of the master started on -y/-p]
    #[arg(long, value_name = "PATH")]
    pub control_socket: Option<PathBuf>,
    /// The php-fpm.conf the master was started on [default: /etc/php/8.2/fpm/php-fpm.conf]
    #[arg(short = 'y', long, value_name = "FILE")]
    pub fpm_config: Option<PathBuf>,
    /// The prefix the master was started with (its -p)
    #[arg(short = 'p', long, value_name = "DIR")]
    pub prefix: Option<PathBuf>,
}

/// What decides where a socket is: who we are and where the two kinds
/// of master put theirs. [`Places::here`] is this process; tests make
/// their own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Places {
    pub is_root: bool,
    pub uid: u32,
    /// Root's masters (`/run/corral`).
    pub root_dir: PathBuf,
    /// Everyone else's: `$XDG_RUNTIME_DIR`, else the temp dir.
    pub user_dir: PathBuf,
}

impl Places {
    pub fn here() -> Places {
        Places {
            is_root: corral_sys::cred::is_root(),
            uid: corral_sys::cred::current_account().uid,
            root_dir: PathBuf::from(ROOT_DIR),
            user_dir: std::env::var_os("XDG_RUNTIME_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(std::env::temp_dir),
        }
    }

    fn root_socket(&self, config: &Path, prefix: Option<&Path>) -> PathBuf {
        self.root_dir.join(socket_name(config, prefix))
    }

    fn user_socket(&self, config: &Path, prefix: Option<&Path>) -> PathBuf {
        self.user_dir.join(format!(
            "corral-{}-{}",
            self.uid,
            socket_name(config, prefix)
        ))
    }

    /// Where a master started by us on `config` (and `-p prefix`) listens
    /// unless `--control-socket` says otherwise.
    pub fn master_socket(&self, config: &Path, prefix: Option<&Path>) -> PathBuf {
        if self.is_root {
            self.root_socket(config, prefix)
        } else {
            self.user_socket(config, prefix)
        }
    }
}

/// [`Places::master_socket`] for this process: what the master binds.
pub fn master_socket(config: &Path, prefix: Option<&Path>) -> PathBuf {
    Places::here().master_socket(config, prefix)
}

impl ControlTarget {
    /// The configuration the master was started on.
    pub fn config(&self) -> PathBuf {
        self.fpm_config
            .clone()
            .unwrap_or_else(|| PathBuf::from(corral_config::paths::DEBIAN_FPM_CONFIG))
    }

    /// The socket to use, or why there is none to use.
    pub fn socket(&self) -> Result<PathBuf, CliError> {
        self.socket_in(&Places::here())
    }

    /// [`ControlTarget::socket`] for `places`. For anyone but root, the
    /// user's own master's socket if there is one; root's master is never
    /// used in its place (its socket is root's only), but named in the
    /// error so the operator knows to be root.
    pub fn socket_in(&self, places: &Places) -> Result<PathBuf, CliError> {
        if let Some(s) = &self.control_socket {
            return Ok(s.clone());
        }
        let config = self.config();
        let prefix = self.prefix.as_deref();
        let root = places.root_socket(&config, prefix);
        if places.is_root {
            return Ok(root);
        }
        let mine = places.user_socket(&config, prefix);
        if mine.exists() {
            return Ok(mine);
        }
        if root.exists() {
            return Err(CliError::new(
                ExitCode::NoPerm,
                format!(
                    "must be run as root: the master started on {} is root's, and so is its control socket {}",
                    config.display(),
                    root.display()
                ),
            ));
        }
        Err(CliError::new(
            ExitCode::Unavailable,
            format!(
                "no corral master runs on {}: neither {} (root's) nor {} (yours) exists",
                config.display(),
                root.display(),
                mine.display()
            ),
        ))
    }

    /// Sends `req` to the master; its answer, or the refusal with the
    /// exit code the master gave it.
    pub fn request(&self, req: &ControlRequest) -> Result<String, CliError> {
        let sock = self.socket()?;
        let reply = corral_ipc::control::request(&sock, req).map_err(|e| unreachable(&sock, &e))?;
        if reply.ok {
            Ok(reply.text)
        } else {
            Err(CliError::new(reply.code, reply.text))
        }
    }
}

/// Why the socket at `sock` could not be used, as the operator needs it:
/// not root, or no master there.
pub fn unreachable(sock: &Path, e: &io::Error) -> CliError {
    match e.kind() {
        io::ErrorKind::PermissionDenied => CliError::new(
            ExitCode::NoPerm,
            format!(
                "must be run as root: permission denied on the control socket {}",
                sock.display()
            ),
        ),
        _ => CliError::new(
            ExitCode::Unavailable,
            format!("no corral master answers on {}: {e}", sock.display()),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn places(dir: &Path, is_root: bool) -> Places {
        let root_dir = dir.join("root");
        let user_dir = dir.join("user");
        std::fs::create_dir_all(&root_dir).unwrap();
        std::fs::create_dir_all(&user_dir).unwrap();
        Places {
            is_root,
            uid: 1000,
            root_dir,
            user_dir,
        }
    }

    fn target(conf: &str) -> ControlTarget {
        ControlTarget {
            fpm_config: Some(PathBuf::from(conf)),
            ..Default::default()
        }
    }

    #[test]
    fn an_explicit_socket_wins() {
        let dir = tempfile::tempdir().unwrap();
        let t = ControlTarget {
            control_socket: Some("/c.sock".into()),
            ..target("/etc/a.conf")
        };
        assert_eq!(
            t.socket_in(&places(dir.path(), false)).unwrap(),
            PathBuf::from("/c.sock")
        );
    }

    #[test]
    fn root_reaches_root_s_master_named_after_its_config() {
        let dir = tempfile::tempdir().unwrap();
        let p = places(dir.path(), true);
        let t = ControlTarget {
            prefix: Some("/srv".into()),
            ..target("/etc/a.conf")
        };
        let want = p.root_dir.join(socket_name(
            Path::new("/etc/a.conf"),
            Some(Path::new("/srv")),
        ));
        assert_eq!(t.socket_in(&p).unwrap(), want);
        assert_eq!(
            p.master_socket(Path::new("/etc/a.conf"), Some(Path::new("/srv"))),
            want,
            "the same place the master binds"
        );
        let default = ControlTarget::default().socket_in(&p).unwrap();
        assert_eq!(
            default,
            p.root_dir.join(socket_name(
                Path::new(corral_config::paths::DEBIAN_FPM_CONFIG),
                None
            ))
        );
    }

    /// A user never silently gets another master: their own if it runs,
    /// else "must be run as root" when root's runs, else "none runs".
    #[test]
    fn a_user_is_told_to_be_root_rather_than_switched_to_another_socket() {
        let dir = tempfile::tempdir().unwrap();
        let p = places(dir.path(), false);
        let t = target("/etc/a.conf");
        let e = t.socket_in(&p).unwrap_err();
        assert_eq!(e.code, ExitCode::Unavailable, "{e}");
        let root = p.root_socket(Path::new("/etc/a.conf"), None);
        std::fs::write(&root, "").unwrap();
        let e = t.socket_in(&p).unwrap_err();
        assert_eq!(e.code, ExitCode::NoPerm, "{e}");
        assert!(e.message.starts_with("must be run as root"), "{e}");
        assert!(e.message.contains(&root.display().to_string()), "{e}");
        let mine = p.master_socket(Path::new("/etc/a.conf"), None);
        std::fs::write(&mine, "").unwrap();
        assert_eq!(t.socket_in(&p).unwrap(), mine, "their own master first");
    }

    #[test]
    fn connect_errors_say_root_or_absent() {
        let p = Path::new("/run/corral/x.sock");
        let denied = io::Error::from(io::ErrorKind::PermissionDenied);
        assert_eq!(unreachable(p, &denied).code, ExitCode::NoPerm);
        let absent = io::Error::from(io::ErrorKind::NotFound);
        let e = unreachable(p, &absent);
        assert_eq!(e.code, ExitCode::Unavailable);
        assert!(e.message.contains("/run/corral/x.sock"), "{e}");
    }
}
