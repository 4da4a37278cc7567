//! The master and the zygote.
//!
//! The zygote is a root process the master execs once: it links libphp
//! and preloads the extensions php.ini names, starts no PHP, and then forks
//! prototypes on the master's behalf, so a dormant pool's first request
//! pays for PHP's start-up only, not for exec, dynamic linking and every
//! extension's loading and relocation again. It holds no pool's settings:
//! each [`LaunchSpec`] arrives in a memfd with the descriptors of that one
//! prototype and is dropped once the fork is done.
//!
//! The zygote is trusted (root, exec'd by the master, never reachable by
//! a tenant), but its replies are still decoded strictly.

use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::PathBuf;

use crate::args::{ArgsError, PrototypeArgs};
use crate::message::{expect_fds, number, pid, printable, words, DecodeError, Message};
use crate::message::{MAX_ERROR_CHARS, MAX_MESSAGE};

/// The environment variable that makes corral's binary the zygote; its
/// value is [`ZygoteArgs::encode`].
pub const ZYGOTE_ENV: &str = "CORRAL_ZYGOTE";

/// What `ps` shows for the zygote: the master execs it with this argv[0],
/// and the zygote writes it back over the padding that follows.
pub const TITLE: &str = "corral: zygote";

/// The descriptor number of the zygote's channel to the master.
pub const ZYGOTE_CHANNEL_FD: i32 = 3;

/// The most descriptors one launch may place (the hand-off's six).
pub const MAX_PLACEMENTS: usize = 8;

/// What the zygote is exec'd with.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ZygoteArgs {
    /// Shared objects to dlopen at start, in php.ini's order.
    pub preload: Vec<PathBuf>,
}

const SEP: u8 = 0x1f;

impl ZygoteArgs {
    pub fn encode(&self) -> String {
        let parts: Vec<String> = self
            .preload
            .iter()
            .filter_map(|p| p.to_str())
            .filter(|s| !s.as_bytes().contains(&SEP))
            .map(str::to_string)
            .collect();
        parts.join(&char::from(SEP).to_string())
    }

    pub fn decode(value: &str) -> ZygoteArgs {
        ZygoteArgs {
            preload: value
                .split(char::from(SEP))
                .filter(|s| !s.is_empty())
                .map(PathBuf::from)
                .collect(),
        }
    }
}

/// One prototype to fork: what an exec would have carried in argv, the
/// environment and the cgroup join.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LaunchSpec {
    /// Its command line (`php-fpm: pool NAME`).
    pub title: String,
    pub args: PrototypeArgs,
    /// The cgroup.procs files it enters before anything else.
    pub cgroup: Vec<PathBuf>,
}

/// A launch spec's bytes are not one.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("the launch spec has no title or no arguments")]
    Short,
    #[error("the launch spec is not text")]
    NotText,
    #[error("{0}")]
    Args(#[from] ArgsError),
}

impl LaunchSpec {
    /// NUL-separated: title, arguments, then each cgroup path.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend(self.title.bytes().filter(|&b| b != 0));
        out.push(0);
        out.extend(self.args.encode().bytes().filter(|&b| b != 0));
        for p in &self.cgroup {
            out.push(0);
            out.extend(p.as_os_str().as_bytes().iter().filter(|&&b| b != 0));
        }
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<LaunchSpec, SpecError> {
        let mut parts = bytes.split(|&b| b == 0);
        let title = parts.next().ok_or(SpecError::Short)?;
        let args = parts.next().ok_or(SpecError::Short)?;
        let title = std::str::from_utf8(title).map_err(|_| SpecError::NotText)?;
        let args = std::str::from_utf8(args).map_err(|_| SpecError::NotText)?;
        Ok(LaunchSpec {
            title: title.to_string(),
            args: PrototypeArgs::decode(args)?,
            cgroup: parts
                .filter(|p| !p.is_empty())
                .map(|p| PathBuf::from(std::ffi::OsString::from_vec(p.to_vec())))
                .collect(),
        })
    }
}

/// Master → zygote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToZygote {
    /// Fork a prototype. Attached: the spec's memfd, the read end of the
    /// "go" pipe, then one descriptor per target number, placed there in
    /// the prototype. The prototype starts only once the master, having
    /// recorded its pid, writes `g` on that pipe; if the master gave up
    /// waiting (and started the pool some other way) it closes the pipe
    /// instead, and the late fork exits before touching anything.
    Launch { targets: Vec<i32> },
}

/// Attachments of a launch before the targets' descriptors.
pub const LAUNCH_FIXED_FDS: usize = 2;

/// Zygote → master.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FromZygote {
    /// Preloading is done: launches are answered at once from now on.
    Ready,
    /// The prototype runs as `pid` (by now the master's own child).
    Launched { pid: i32 },
    /// Nothing was started; the master execs the prototype itself.
    Failed { text: String },
}

impl Message for ToZygote {
    fn encode(&self) -> Vec<u8> {
        let ToZygote::Launch { targets } = self;
        let mut s = String::from("launch");
        for t in targets {
            s.push(' ');
            s.push_str(&t.to_string());
        }
        s.into_bytes()
    }

    fn descriptors(&self) -> usize {
        let ToZygote::Launch { targets } = self;
        LAUNCH_FIXED_FDS + targets.len()
    }

    fn decode(bytes: &[u8], fds: usize) -> Result<Self, DecodeError> {
        let (verb, args) = words(bytes)?;
        if verb != "launch" {
            return Err(DecodeError::UnknownVerb(printable(verb, 32)));
        }
        if args.is_empty() || args.len() > MAX_PLACEMENTS {
            return Err(DecodeError::Malformed {
                verb: "launch",
                why: "takes 1 to 8 descriptor numbers",
            });
        }
        let targets = args
            .iter()
            .map(|a| number::<i32>("launch", a, "a target is not a descriptor number"))
            .collect::<Result<Vec<i32>, _>>()?;
        if targets.iter().any(|&t| !(3..=64).contains(&t)) {
            return Err(DecodeError::Malformed {
                verb: "launch",
                why: "targets are descriptor numbers 3 to 64",
            });
        }
        let msg = ToZygote::Launch { targets };
        expect_fds("launch", msg.descriptors(), fds)?;
        Ok(msg)
    }
}

impl Message for FromZygote {
    fn encode(&self) -> Vec<u8> {
        let mut s = match self {
            FromZygote::Ready => "ready".to_string(),
            FromZygote::Launched { pid } => format!("launched {pid}"),
            FromZygote::Failed { text } => format!("failed {}", printable(text, MAX_ERROR_CHARS)),
        };
        s.truncate(MAX_MESSAGE);
        s.into_bytes()
    }

    fn descriptors(&self) -> usize {
        0
    }

    fn decode(bytes: &[u8], fds: usize) -> Result<Self, DecodeError> {
        let text = std::str::from_utf8(bytes).map_err(|_| DecodeError::NotText)?;
        let (verb, rest) = text.split_once(' ').unwrap_or((text, ""));
        let msg = match verb {
            "ready" if rest.is_empty() => FromZygote::Ready,
            "launched" => FromZygote::Launched {
                pid: pid("launched", rest)?,
            },
            "failed" => FromZygote::Failed {
                text: printable(rest, MAX_ERROR_CHARS),
            },
            other => return Err(DecodeError::UnknownVerb(printable(other, 32))),
        };
        expect_fds("launched", 0, fds)?;
        Ok(msg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::PhpArgs;

    fn spec() -> LaunchSpec {
        LaunchSpec {
            title: "php-fpm: pool www".into(),
            args: PrototypeArgs {
                pool: "www".into(),
                board_words: 64,
                status_of: None,
                access_log: true,
                php: PhpArgs {
                    ini_path: Some("/etc/php/8.2/fpm".into()),
                    ..PhpArgs::default()
                },
                deny_connect: vec![9000, 9001],
            },
            cgroup: vec![
                PathBuf::from("/sys/fs/cgroup/cpu/corral/www/g1/cgroup.procs"),
                PathBuf::from("/sys/fs/cgroup/memory/corral/www/g1/cgroup.procs"),
            ],
        }
    }

    #[test]
    fn a_spec_survives_the_trip() {
        let s = spec();
        assert_eq!(LaunchSpec::decode(&s.encode()).unwrap(), s);
        let bare = LaunchSpec {
            cgroup: Vec::new(),
            ..spec()
        };
        assert_eq!(LaunchSpec::decode(&bare.encode()).unwrap(), bare);
    }

    #[test]
    fn a_broken_spec_is_refused() {
        assert!(matches!(
            LaunchSpec::decode(b"title only"),
            Err(SpecError::Short)
        ));
        assert!(LaunchSpec::decode(b"t\0--bogus").is_err());
        assert!(LaunchSpec::decode(b"\xff\0--pool\x1fx").is_err());
    }

    #[test]
    fn messages_round_trip_and_bad_ones_are_refused() {
        let l = ToZygote::Launch {
            targets: vec![3, 4, 5, 6],
        };
        assert_eq!(ToZygote::decode(&l.encode(), 6).unwrap(), l);
        assert!(
            ToZygote::decode(&l.encode(), 5).is_err(),
            "the spec memfd and the go pipe are counted"
        );
        assert!(ToZygote::decode(b"launch", 2).is_err());
        assert!(
            ToZygote::decode(b"launch 2", 3).is_err(),
            "stderr is not a target"
        );
        assert!(ToZygote::decode(b"launch 3 4 5 6 7 8 9 10 11", 11).is_err());
        assert!(FromZygote::decode(b"ready now", 0).is_err());
        for m in [
            FromZygote::Ready,
            FromZygote::Launched { pid: 4242 },
            FromZygote::Failed {
                text: "fork: no memory".into(),
            },
        ] {
            assert_eq!(FromZygote::decode(&m.encode(), 0).unwrap(), m);
        }
        assert!(FromZygote::decode(b"launched 1", 0).is_err(), "never init");
        assert!(FromZygote::decode(b"launched -5", 0).is_err());
        assert!(FromZygote::decode(b"launched 77", 1).is_err());
        let forged = FromZygote::decode(b"failed a\nfake log line", 0).unwrap();
        assert_eq!(
            forged,
            FromZygote::Failed {
                text: "afake log line".into()
            }
        );
    }

    #[test]
    fn zygote_args_round_trip() {
        let a = ZygoteArgs {
            preload: vec![
                PathBuf::from("/usr/lib/php/20220829/opcache.so"),
                PathBuf::from("/usr/lib/php/20220829/pdo.so"),
            ],
        };
        assert_eq!(ZygoteArgs::decode(&a.encode()), a);
        assert_eq!(ZygoteArgs::decode(""), ZygoteArgs::default());
    }
}
