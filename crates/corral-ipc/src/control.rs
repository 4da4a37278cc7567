//! The control socket: how `corral reload`, `corral status` and `corral
//! site` reach a running master. One request line in, one reply out, then
//! the connection closes. The socket is 0600 and owned by the master's user
//! (root), so only root can reload or read every pool's status.
//!
//! Wire form: the request is `reload [POOL...]`, `restart POOL...`,
//! `status [POOL]` or `metrics text|openmetrics|json` and a newline; the
//! reply is `OK` or `ERROR` (followed by the [`ExitCode`] number the
//! client should exit with, when it is not [`ExitCode::Failure`]), a
//! newline, and free text.
//!
//! Where: one socket per master, named after the configuration it was
//! started on ([`socket_name`]), so masters side by side (8.2's and 8.3's
//! php-fpm.conf, or one file under two `-p` prefixes) never share one, and
//! `corral reload -y FILE` finds the master started with `-y FILE`.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::time::Duration;

use crate::exit::ExitCode;

/// The longest request line the master reads.
pub const MAX_REQUEST: usize = 4096;

/// How long the master waits on a client: a silent client cannot stall it.
pub const SERVER_TIMEOUT: Duration = Duration::from_secs(2);

/// How long a client waits for a reply: a reload of many pools validates
/// the whole configuration first.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(120);

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ControlRequest {
    /// Reload the named pools, or every pool when the list is empty.
    Reload { pools: Vec<String> },
    /// A new generation of each named pool (at least one), whether its
    /// configuration changed or not.
    Restart { pools: Vec<String> },
    /// Every pool's status, or one pool's, as JSON.
    Status { pool: Option<String> },
    /// Every pool's metrics, as the metrics address serves them.
    Metrics { format: MetricsFormat },
}

/// How `metrics` answers: Prometheus text, OpenMetrics, or the snapshot
/// as JSON (what the dashboard and `corral top` read).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricsFormat {
    Text,
    OpenMetrics,
    Json,
}

impl MetricsFormat {
    pub fn word(self) -> &'static str {
        match self {
            MetricsFormat::Text => "text",
            MetricsFormat::OpenMetrics => "openmetrics",
            MetricsFormat::Json => "json",
        }
    }

    pub fn from_word(w: &str) -> Option<MetricsFormat> {
        [
            MetricsFormat::Text,
            MetricsFormat::OpenMetrics,
            MetricsFormat::Json,
        ]
        .into_iter()
        .find(|f| f.word() == w)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControlReply {
    pub ok: bool,
    pub text: String,
    /// What the client exits with: [`ExitCode::Ok`] when `ok`.
    pub code: ExitCode,
}

#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("unknown command (reload [POOL...] | restart POOL... | status [POOL] | metrics text|openmetrics|json)")]
    Unknown,
    #[error("'status' takes at most one pool")]
    StatusArgs,
    #[error("'restart' needs at least one pool")]
    RestartArgs,
    #[error("'metrics' takes one format: text, openmetrics or json")]
    MetricsArgs,
    #[error("the request is longer than {MAX_REQUEST} bytes")]
    TooLong,
    #[error("cannot read the request: {0}")]
    Read(#[source] std::io::Error),
    #[error("unable to open the control socket '{0}': another corral master answers on it")]
    InUse(String),
    #[error("unable to open the control socket '{path}': {source}")]
    Bind {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

impl ControlRequest {
    pub fn encode(&self) -> String {
        match self {
            ControlRequest::Reload { pools } if pools.is_empty() => "reload\n".into(),
            ControlRequest::Reload { pools } => format!("reload {}\n", pools.join(" ")),
            ControlRequest::Restart { pools } => format!("restart {}\n", pools.join(" ")),
            ControlRequest::Status { pool: None } => "status\n".into(),
            ControlRequest::Status { pool: Some(p) } => format!("status {p}\n"),
            ControlRequest::Metrics { format } => format!("metrics {}\n", format.word()),
        }
    }

    pub fn decode(line: &str) -> Result<ControlRequest, ControlError> {
        let mut words = line.split_whitespace();
        match words.next() {
            Some("reload") => Ok(ControlRequest::Reload {
                pools: words.map(str::to_string).collect(),
            }),
            Some("restart") => {
                let pools: Vec<String> = words.map(str::to_string).collect();
                if pools.is_empty() {
                    return Err(ControlError::RestartArgs);
                }
                Ok(ControlRequest::Restart { pools })
            }
            Some("status") => {
                let pool = words.next().map(str::to_string);
                if words.next().is_some() {
                    return Err(ControlError::StatusArgs);
                }
                Ok(ControlRequest::Status { pool })
            }
            Some("metrics") => {
                let format = words.next().and_then(MetricsFormat::from_word);
                match (format, words.next()) {
                    (Some(format), None) => Ok(ControlRequest::Metrics { format }),
                    _ => Err(ControlError::MetricsArgs),
                }
            }
            _ => Err(ControlError::Unknown),
        }
    }
}

impl ControlReply {
    pub fn ok(text: impl Into<String>) -> ControlReply {
        ControlReply {
            ok: true,
            text: text.into(),
            code: ExitCode::Ok,
        }
    }

    /// A refusal the client reports with [`ExitCode::Failure`].
    pub fn error(text: impl Into<String>) -> ControlReply {
        Self::refused(ExitCode::Failure, text)
    }

    /// A refusal with its own exit code (e.g. [`ExitCode::Config`] for a
    /// configuration that does not validate).
    pub fn refused(code: ExitCode, text: impl Into<String>) -> ControlReply {
        ControlReply {
            ok: false,
            text: text.into(),
            code: if code == ExitCode::Ok {
                ExitCode::Failure
            } else {
                code
            },
        }
    }

    pub fn encode(&self) -> String {
        let head = match (self.ok, self.code) {
            (true, _) => "OK".to_string(),
            (false, ExitCode::Failure) => "ERROR".to_string(),
            (false, code) => format!("ERROR {}", code.code()),
        };
        format!("{head}\n{}\n", self.text.trim_end())
    }

    /// The client's reading; a code it does not know is a plain failure.
    pub fn decode(raw: &str) -> ControlReply {
        let (head, rest) = raw.split_once('\n').unwrap_or((raw, ""));
        let text = rest.trim_end().to_string();
        if head == "OK" {
            return ControlReply::ok(text);
        }
        let code = head
            .strip_prefix("ERROR ")
            .and_then(|n| n.trim().parse().ok())
            .and_then(ExitCode::from_code)
            .unwrap_or(ExitCode::Failure);
        ControlReply::refused(code, text)
    }
}

/// Where root's masters put their control sockets.
pub const ROOT_DIR: &str = "/run/corral";

/// The file name of the control socket of a master started on `config`
/// with global prefix `prefix`: the config's file name (tidied, cut short)
/// and a hash of both paths made absolute, for example
/// `php-fpm.conf-1f0e3c5a9b7d2e64.sock`. Computed from the command line
/// alone, so a client finds the master even when the file on disk is
/// broken, missing or changed since. Bounded in length: a socket path must
/// fit in 108 bytes.
pub fn socket_name(config: &Path, prefix: Option<&Path>) -> String {
    let config = absolute(config);
    let mut identity = config.as_os_str().as_encoded_bytes().to_vec();
    if let Some(p) = prefix {
        identity.push(0);
        identity.extend_from_slice(absolute(p).as_os_str().as_encoded_bytes());
    }
    let stem: String = config
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
        .chars()
        .map(|c| match c {
            'A'..='Z' | 'a'..='z' | '0'..='9' | '.' | '-' | '_' => c,
            _ => '_',
        })
        .take(32)
        .collect();
    format!("{stem}-{:016x}.sock", fnv1a(&identity))
}

/// [`socket_name`] in [`ROOT_DIR`]: where a root master started on
/// `config` listens unless told otherwise.
pub fn root_socket(config: &Path, prefix: Option<&Path>) -> std::path::PathBuf {
    Path::new(ROOT_DIR).join(socket_name(config, prefix))
}

/// The path as the master resolves it: symlinks and `..` followed when it
/// exists, made absolute when it does not.
fn absolute(p: &Path) -> std::path::PathBuf {
    std::fs::canonicalize(p)
        .or_else(|_| std::path::absolute(p))
        .unwrap_or_else(|_| p.to_path_buf())
}

/// FNV-1a, 64 bits: the same name from every build (std's hasher makes
/// no such promise across Rust versions).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// Bind the master's control socket, refusing to steal it from a master
/// that still answers there.
pub fn bind(path: &Path) -> Result<UnixListener, ControlError> {
    let fail = |source| ControlError::Bind {
        path: path.display().to_string(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(fail)?;
    }
    if UnixStream::connect(path).is_ok() {
        return Err(ControlError::InUse(path.display().to_string()));
    }
    let _ = std::fs::remove_file(path);
    let l = UnixListener::bind(path).map_err(fail)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(fail)?;
    l.set_nonblocking(true).map_err(fail)?;
    Ok(l)
}

/// The master's side: read one request, bounded in size and time.
pub fn read_request(stream: &UnixStream) -> Result<ControlRequest, ControlError> {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(SERVER_TIMEOUT));
    let _ = stream.set_write_timeout(Some(SERVER_TIMEOUT));
    let mut line = String::new();
    let mut reader = BufReader::new(stream.take(MAX_REQUEST as u64 + 1));
    reader.read_line(&mut line).map_err(ControlError::Read)?;
    if line.len() > MAX_REQUEST {
        return Err(ControlError::TooLong);
    }
    ControlRequest::decode(&line)
}

/// The master's side: answer and let the connection close.
pub fn write_reply(mut stream: &UnixStream, reply: &ControlReply) {
    let _ = stream.write_all(reply.encode().as_bytes());
}

/// The client's side: send one request and read the whole reply.
pub fn request(path: &Path, req: &ControlRequest) -> std::io::Result<ControlReply> {
    let mut s = UnixStream::connect(path)?;
    s.set_read_timeout(Some(CLIENT_TIMEOUT))?;
    s.write_all(req.encode().as_bytes())?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    Ok(ControlReply::decode(&out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const NAME: &str = "[A-Za-z0-9_.-]{1,16}";

    fn requests() -> impl Strategy<Value = ControlRequest> {
        prop_oneof![
            proptest::collection::vec(NAME, 0..5)
                .prop_map(|pools| ControlRequest::Reload { pools }),
            proptest::collection::vec(NAME, 1..5)
                .prop_map(|pools| ControlRequest::Restart { pools }),
            proptest::option::of(NAME).prop_map(|pool| ControlRequest::Status { pool }),
            proptest::sample::select(vec![
                MetricsFormat::Text,
                MetricsFormat::OpenMetrics,
                MetricsFormat::Json
            ])
            .prop_map(|format| ControlRequest::Metrics { format }),
        ]
    }

    proptest! {
        #[test]
        fn requests_round_trip(r in requests()) {
            prop_assert_eq!(ControlRequest::decode(&r.encode()).unwrap(), r);
        }

        #[test]
        fn replies_round_trip(ok in any::<bool>(), n in 0..ExitCode::ALL.len(), text in "[^\r]{0,200}") {
            let text = text.trim_end().to_string();
            let r = if ok {
                ControlReply::ok(text)
            } else {
                ControlReply::refused(ExitCode::ALL[n], text)
            };
            prop_assert_eq!(ControlReply::decode(&r.encode()), r);
        }
    }

    #[test]
    fn each_configuration_gets_its_own_socket() {
        let a = socket_name(Path::new("/etc/php/8.2/fpm/php-fpm.conf"), None);
        let b = socket_name(Path::new("/etc/php/8.3/fpm/php-fpm.conf"), None);
        assert_ne!(a, b, "php-fpm8.2 and php-fpm8.3 side by side");
        assert!(
            a.starts_with("php-fpm.conf-") && a.ends_with(".sock"),
            "{a}"
        );
        let under = |p: &str| socket_name(Path::new("/srv/x.conf"), Some(Path::new(p)));
        assert_ne!(
            under("/srv/a"),
            under("/srv/b"),
            "one file under two prefixes"
        );
        assert_eq!(under("/srv/a"), under("/srv/a"), "the same every time");
        let long = socket_name(Path::new(&format!("/tmp/{}.conf", "x".repeat(300))), None);
        assert!(root_socket(Path::new(&long), None).as_os_str().len() < 108);
    }

    #[test]
    fn a_config_reached_another_way_names_the_same_socket() {
        let dir = std::env::temp_dir().join(format!("corral-ipc-name-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        let conf = dir.join("pools.conf");
        std::fs::write(&conf, "").unwrap();
        let link = dir.join("link.conf");
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(&conf, &link).unwrap();
        let name = socket_name(&conf, None);
        assert_eq!(socket_name(&dir.join("sub/../pools.conf"), None), name);
        assert_eq!(socket_name(&link, None), name);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn unknown_commands_are_refused() {
        assert!(matches!(
            ControlRequest::decode("restrat www"),
            Err(ControlError::Unknown)
        ));
        assert!(matches!(
            ControlRequest::decode("restart"),
            Err(ControlError::RestartArgs)
        ));
        assert!(matches!(
            ControlRequest::decode("status a b"),
            Err(ControlError::StatusArgs)
        ));
        assert!(matches!(
            ControlRequest::decode(""),
            Err(ControlError::Unknown)
        ));
        for bad in ["metrics", "metrics xml", "metrics json json"] {
            assert!(
                matches!(ControlRequest::decode(bad), Err(ControlError::MetricsArgs)),
                "{bad}"
            );
        }
    }

    #[test]
    fn a_refusal_carries_its_exit_code() {
        let r = ControlReply::refused(ExitCode::Config, "bad file");
        assert_eq!(r.encode(), "ERROR 78\nbad file\n");
        assert_eq!(
            ControlReply::decode("ERROR\nno pool\n").code,
            ExitCode::Failure
        );
        let odd = ControlReply::decode("ERROR 3\nx\n");
        assert!(!odd.ok);
        assert_eq!(
            odd.code,
            ExitCode::Failure,
            "an unknown number is a failure"
        );
    }

    #[test]
    fn a_request_crosses_a_real_socket() {
        let dir = std::env::temp_dir().join(format!("corral-ipc-{}", std::process::id()));
        let path = dir.join("control.sock");
        let listener = bind(&path).unwrap();
        assert!(matches!(bind(&path), Err(ControlError::InUse(_))));
        let server = std::thread::spawn(move || loop {
            match listener.accept() {
                // The first connection is bind()'s own probe: it sends nothing.
                Ok((s, _)) => match read_request(&s) {
                    Ok(req) => {
                        write_reply(&s, &ControlReply::ok(format!("{req:?}")));
                        return;
                    }
                    Err(e) => write_reply(&s, &ControlReply::error(e.to_string())),
                },
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    std::thread::sleep(Duration::from_millis(5))
                }
                Err(e) => panic!("{e}"),
            }
        });
        let reply = request(
            &path,
            &ControlRequest::Reload {
                pools: vec!["www".into()],
            },
        )
        .unwrap();
        server.join().unwrap();
        assert!(reply.ok);
        assert!(reply.text.contains("www"), "{reply:?}");
        let _ = std::fs::remove_dir_all(dir);
    }
}
