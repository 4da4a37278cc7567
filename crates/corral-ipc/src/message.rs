//! Messages on a pool's control channel (one SOCK_SEQPACKET pair per
//! prototype): the master's orders and the prototype's reports.
//!
//! The wire form is one short line of ASCII words per datagram (`spawn 3`,
//! `started 4242 3`), which keeps `strace` output readable; the typed enums
//! are the contract, and only this module knows the words. Descriptors ride
//! along as SCM_RIGHTS, and each message states how many it carries, so a
//! message with the wrong attachments is rejected rather than half-used.

use std::fmt::Write as _;

/// The longest datagram either side sends; receivers read into a buffer
/// this size, so a longer one is truncated and then fails to decode.
pub const MAX_MESSAGE: usize = 1024;

/// The most words a slow-log layout may have on `ready`.
pub const MAX_LAYOUT_WORDS: usize = 32;

/// The most characters of an `error` report the master will keep.
pub const MAX_ERROR_CHARS: usize = 512;

/// Why bytes from the other side are not a message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("the message is not ASCII/UTF-8 text")]
    NotText,
    #[error("unknown message '{0}'")]
    UnknownVerb(String),
    #[error("malformed '{verb}' message: {why}")]
    Malformed {
        verb: &'static str,
        why: &'static str,
    },
    #[error("'{verb}' carries {expected} descriptor(s), {got} attached")]
    Descriptors {
        verb: &'static str,
        expected: usize,
        got: usize,
    },
}

/// A wait(2) status as a prototype reports it for one of its workers. Only
/// the low 16 bits exist; anything wider is refused when decoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WaitStatus(u16);

impl WaitStatus {
    pub fn from_raw(raw: i32) -> Option<WaitStatus> {
        u16::try_from(raw).ok().map(WaitStatus)
    }
    /// Exited normally with `code`.
    pub fn exited(code: u8) -> WaitStatus {
        WaitStatus((code as u16) << 8)
    }
    /// Killed by `sig`, with or without a core dump.
    pub fn signaled(sig: i32, core: bool) -> WaitStatus {
        WaitStatus((sig as u16 & 0x7f) | if core { 0x80 } else { 0 })
    }
    pub fn raw(self) -> i32 {
        self.0 as i32
    }
    /// The signal that ended the process, if one did.
    pub fn signal(self) -> Option<i32> {
        let sig = (self.0 & 0x7f) as i32;
        (sig != 0).then_some(sig)
    }
    /// The exit code, if the process exited normally.
    pub fn code(self) -> Option<u8> {
        self.signal().is_none().then_some((self.0 >> 8) as u8)
    }
    pub fn core_dumped(self) -> bool {
        self.0 & 0x80 != 0
    }
}

/// Master → prototype.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToPrototype {
    /// Fork a worker that writes scoreboard slot `slot`.
    Spawn { slot: u32 },
    /// Stop one worker gracefully (pm idle kill); only a child of the
    /// prototype is ever signalled.
    Stop { pid: i32 },
    /// The access log was reopened (SIGUSR1): the new descriptor is
    /// attached; recycle workers onto it.
    ReopenAccessLog,
    /// Finish in-flight requests, then exit (graceful stop, retiring).
    Quit,
    /// Stop now (SIGTERM semantics).
    Terminate,
}

/// Prototype → master.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FromPrototype {
    /// PHP is up and privileges are dropped; the words are the slow-log
    /// layout (addresses and offsets in the workers' memory), possibly none.
    Ready { layout: Vec<u64> },
    /// A worker was forked for `slot`. With `captured`, the read ends of its
    /// stdout and stderr pipes are attached (catch_workers_output).
    Started { pid: i32, slot: u32, captured: bool },
    /// A worker was reaped.
    Exited { pid: i32, status: WaitStatus },
    /// Something the operator should read, already worded for the log.
    Error { text: String },
    /// One layer of the pool's confinement (namespaces, Landlock,
    /// no_new_privs) that was applied, or that was asked for and is
    /// lacking; one item per datagram, sent during start-up.
    Isolation { applied: bool, what: String },
}

/// Both directions share the framing: encode to a datagram, decode from
/// one plus the number of descriptors that came with it.
pub trait Message: Sized {
    /// The datagram, at most [`MAX_MESSAGE`] bytes.
    fn encode(&self) -> Vec<u8>;
    /// How many descriptors must travel with this message.
    fn descriptors(&self) -> usize;
    fn decode(bytes: &[u8], descriptors: usize) -> Result<Self, DecodeError>;
}

pub(crate) fn words(bytes: &[u8]) -> Result<(&str, Vec<&str>), DecodeError> {
    let text = std::str::from_utf8(bytes).map_err(|_| DecodeError::NotText)?;
    let (verb, rest) = text.split_once(' ').unwrap_or((text, ""));
    let args = if rest.is_empty() {
        Vec::new()
    } else {
        rest.split(' ').collect()
    };
    Ok((verb, args))
}

pub(crate) fn expect_fds(
    verb: &'static str,
    expected: usize,
    got: usize,
) -> Result<(), DecodeError> {
    if expected == got {
        Ok(())
    } else {
        Err(DecodeError::Descriptors {
            verb,
            expected,
            got,
        })
    }
}

fn no_args(verb: &'static str, args: &[&str]) -> Result<(), DecodeError> {
    if args.is_empty() {
        Ok(())
    } else {
        Err(DecodeError::Malformed {
            verb,
            why: "takes no arguments",
        })
    }
}

/// A worker pid: never 0 or 1, never negative (a negative pid would make
/// kill(2) signal a process group).
pub(crate) fn pid(verb: &'static str, s: &str) -> Result<i32, DecodeError> {
    let why = "the pid is not a number above 1";
    match number::<i32>(verb, s, why) {
        Ok(p) if p > 1 => Ok(p),
        _ => Err(DecodeError::Malformed { verb, why }),
    }
}

pub(crate) fn number<T: std::str::FromStr>(
    verb: &'static str,
    s: &str,
    why: &'static str,
) -> Result<T, DecodeError> {
    // `parse` accepts a leading '+': the wire form never has one.
    if s.starts_with('+') {
        return Err(DecodeError::Malformed { verb, why });
    }
    s.parse().map_err(|_| DecodeError::Malformed { verb, why })
}

impl Message for ToPrototype {
    fn encode(&self) -> Vec<u8> {
        match self {
            ToPrototype::Spawn { slot } => format!("spawn {slot}"),
            ToPrototype::Stop { pid } => format!("stop {pid}"),
            ToPrototype::ReopenAccessLog => "accesslog".into(),
            ToPrototype::Quit => "quit".into(),
            ToPrototype::Terminate => "term".into(),
        }
        .into_bytes()
    }

    fn descriptors(&self) -> usize {
        match self {
            ToPrototype::ReopenAccessLog => 1,
            _ => 0,
        }
    }

    fn decode(bytes: &[u8], fds: usize) -> Result<Self, DecodeError> {
        let (verb, args) = words(bytes)?;
        let one = |verb: &'static str| -> Result<&str, DecodeError> {
            match args.as_slice() {
                [a] => Ok(a),
                _ => Err(DecodeError::Malformed {
                    verb,
                    why: "takes exactly one argument",
                }),
            }
        };
        let msg = match verb {
            "spawn" => ToPrototype::Spawn {
                slot: number("spawn", one("spawn")?, "the slot is not a number")?,
            },
            "stop" => ToPrototype::Stop {
                pid: pid("stop", one("stop")?)?,
            },
            "accesslog" => {
                no_args("accesslog", &args)?;
                ToPrototype::ReopenAccessLog
            }
            "quit" => {
                no_args("quit", &args)?;
                ToPrototype::Quit
            }
            "term" => {
                no_args("term", &args)?;
                ToPrototype::Terminate
            }
            other => return Err(DecodeError::UnknownVerb(printable(other, 32))),
        };
        expect_fds(verb_name(&msg), msg.descriptors(), fds)?;
        Ok(msg)
    }
}

fn verb_name(m: &ToPrototype) -> &'static str {
    match m {
        ToPrototype::Spawn { .. } => "spawn",
        ToPrototype::Stop { .. } => "stop",
        ToPrototype::ReopenAccessLog => "accesslog",
        ToPrototype::Quit => "quit",
        ToPrototype::Terminate => "term",
    }
}

/// What the master will log of text it did not write: no control
/// characters (no forged log lines), bounded length.
pub fn printable(s: &str, max: usize) -> String {
    s.chars().filter(|c| !c.is_control()).take(max).collect()
}

impl Message for FromPrototype {
    fn encode(&self) -> Vec<u8> {
        let mut s = String::new();
        match self {
            FromPrototype::Ready { layout } => {
                s.push_str("ready");
                for w in layout.iter().take(MAX_LAYOUT_WORDS) {
                    let _ = write!(s, " {w}");
                }
            }
            FromPrototype::Started {
                pid,
                slot,
                captured,
            } => {
                let _ = write!(s, "started {pid} {slot}");
                if *captured {
                    s.push_str(" output");
                }
            }
            FromPrototype::Exited { pid, status } => {
                let _ = write!(s, "exited {pid} {}", status.raw());
            }
            FromPrototype::Error { text } => {
                s.push_str("error ");
                s.push_str(&printable(text, MAX_ERROR_CHARS));
            }
            FromPrototype::Isolation { applied, what } => {
                s.push_str(if *applied {
                    "isolation applied "
                } else {
                    "isolation lacking "
                });
                s.push_str(&printable(what, MAX_ERROR_CHARS));
            }
        }
        // Error text is the only open-ended part; keep the datagram whole.
        while s.len() > MAX_MESSAGE {
            s.pop();
        }
        s.into_bytes()
    }

    fn descriptors(&self) -> usize {
        match self {
            FromPrototype::Started { captured: true, .. } => 2,
            _ => 0,
        }
    }

    fn decode(bytes: &[u8], fds: usize) -> Result<Self, DecodeError> {
        if bytes.len() > MAX_MESSAGE {
            return Err(DecodeError::Malformed {
                verb: "message",
                why: "longer than the channel's datagram",
            });
        }
        let (verb, args) = words(bytes)?;
        let msg = match verb {
            "ready" => {
                if args.len() > MAX_LAYOUT_WORDS {
                    return Err(DecodeError::Malformed {
                        verb: "ready",
                        why: "too many layout words",
                    });
                }
                let layout = args
                    .iter()
                    .map(|w| number("ready", w, "a layout word is not a number"))
                    .collect::<Result<Vec<u64>, _>>()?;
                expect_fds("ready", 0, fds)?;
                FromPrototype::Ready { layout }
            }
            "started" => {
                let (p, slot, captured) = match args.as_slice() {
                    [p, s] => (p, s, false),
                    [p, s, "output"] => (p, s, true),
                    _ => {
                        return Err(DecodeError::Malformed {
                            verb: "started",
                            why: "expected 'started PID SLOT [output]'",
                        })
                    }
                };
                let msg = FromPrototype::Started {
                    pid: pid("started", p)?,
                    slot: number("started", slot, "the slot is not a number")?,
                    captured,
                };
                expect_fds("started", msg.descriptors(), fds)?;
                msg
            }
            "exited" => {
                let [p, st] = args.as_slice() else {
                    return Err(DecodeError::Malformed {
                        verb: "exited",
                        why: "expected 'exited PID STATUS'",
                    });
                };
                let raw: i32 = number("exited", st, "the status is not a number")?;
                let status = WaitStatus::from_raw(raw).ok_or(DecodeError::Malformed {
                    verb: "exited",
                    why: "the status is not a 16-bit wait status",
                })?;
                expect_fds("exited", 0, fds)?;
                FromPrototype::Exited {
                    pid: pid("exited", p)?,
                    status,
                }
            }
            "error" => {
                expect_fds("error", 0, fds)?;
                let text = std::str::from_utf8(&bytes[5..])
                    .map_err(|_| DecodeError::NotText)?
                    .strip_prefix(' ')
                    .unwrap_or("");
                FromPrototype::Error {
                    text: printable(text, MAX_ERROR_CHARS),
                }
            }
            "isolation" => {
                expect_fds("isolation", 0, fds)?;
                let text = std::str::from_utf8(&bytes["isolation".len()..])
                    .map_err(|_| DecodeError::NotText)?;
                let (applied, what) = if let Some(w) = text.strip_prefix(" applied ") {
                    (true, w)
                } else if let Some(w) = text.strip_prefix(" lacking ") {
                    (false, w)
                } else {
                    return Err(DecodeError::Malformed {
                        verb: "isolation",
                        why: "expected 'isolation applied|lacking TEXT'",
                    });
                };
                FromPrototype::Isolation {
                    applied,
                    what: printable(what, MAX_ERROR_CHARS),
                }
            }
            other => return Err(DecodeError::UnknownVerb(printable(other, 32))),
        };
        Ok(msg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn round_trip<M: Message + PartialEq + std::fmt::Debug>(m: &M) {
        let bytes = m.encode();
        assert!(bytes.len() <= MAX_MESSAGE);
        assert_eq!(&M::decode(&bytes, m.descriptors()).unwrap(), m);
    }

    fn to_prototype() -> impl Strategy<Value = ToPrototype> {
        prop_oneof![
            any::<u32>().prop_map(|slot| ToPrototype::Spawn { slot }),
            (2..=i32::MAX).prop_map(|pid| ToPrototype::Stop { pid }),
            Just(ToPrototype::ReopenAccessLog),
            Just(ToPrototype::Quit),
            Just(ToPrototype::Terminate),
        ]
    }

    fn from_prototype() -> impl Strategy<Value = FromPrototype> {
        prop_oneof![
            proptest::collection::vec(any::<u64>(), 0..=MAX_LAYOUT_WORDS)
                .prop_map(|layout| FromPrototype::Ready { layout }),
            (2..=i32::MAX, any::<u32>(), any::<bool>()).prop_map(|(pid, slot, captured)| {
                FromPrototype::Started {
                    pid,
                    slot,
                    captured,
                }
            }),
            (2..=i32::MAX, any::<u16>()).prop_map(|(pid, st)| FromPrototype::Exited {
                pid,
                status: WaitStatus::from_raw(st as i32).unwrap(),
            }),
            // Error text is stored printable and bounded, so only such text
            // survives a round trip unchanged.
            "[^\\p{Cc}]{0,512}".prop_map(|text| FromPrototype::Error { text }),
            (any::<bool>(), "[^\\p{Cc}]{0,512}")
                .prop_map(|(applied, what)| FromPrototype::Isolation { applied, what }),
        ]
    }

    proptest! {
        #[test]
        fn every_order_round_trips(m in to_prototype()) {
            round_trip(&m);
        }

        #[test]
        fn every_report_round_trips(m in from_prototype()) {
            round_trip(&m);
        }

        /// Whatever a tenant writes on its channel, decoding returns.
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..1100), fds in 0usize..4) {
            let _ = FromPrototype::decode(&bytes, fds);
            let _ = ToPrototype::decode(&bytes, fds);
        }
    }

    #[test]
    fn refuses_what_a_hostile_prototype_might_send() {
        let bad: &[(&[u8], usize)] = &[
            (b"started 1 0", 0),
            (b"started 0 0", 0),
            (b"started -5 0", 0),
            (b"started +5 0", 0),
            (b"started 5 0 extra", 0),
            (b"started 5 0 output", 0),
            (b"started 5 0", 2),
            (b"exited 9 99999999", 0),
            (b"exited 9 -1", 0),
            (b"\xff\xfe", 0),
            (b"ready now", 0),
            (b"ready 1 2", 1),
            (b"spawned 3", 0),
            (b"isolation", 0),
            (b"isolation maybe x", 0),
            (b"isolation applied x", 1),
            (b"", 0),
        ];
        for (bytes, fds) in bad {
            assert!(
                FromPrototype::decode(bytes, *fds).is_err(),
                "accepted {:?} with {fds} fds",
                String::from_utf8_lossy(bytes)
            );
        }
        let long = vec![b'1'; MAX_MESSAGE + 1];
        assert!(FromPrototype::decode(&long, 0).is_err());
    }

    #[test]
    fn error_text_cannot_forge_log_lines() {
        let m = FromPrototype::decode(b"error a\nb\r\x1b[31m", 0).unwrap();
        assert_eq!(
            m,
            FromPrototype::Error {
                text: "ab[31m".into()
            }
        );
        assert_eq!(
            FromPrototype::decode(b"error", 0).unwrap(),
            FromPrototype::Error { text: "".into() }
        );
    }

    #[test]
    fn isolation_text_is_bounded_and_printable() {
        let long = format!("isolation lacking {}\n{}", "x".repeat(900), "y");
        match FromPrototype::decode(long.as_bytes(), 0).unwrap() {
            FromPrototype::Isolation { applied, what } => {
                assert!(!applied);
                assert_eq!(what.chars().count(), MAX_ERROR_CHARS);
                assert!(!what.contains('\n'));
            }
            other => panic!("{other:?}"),
        }
        let m = FromPrototype::Isolation {
            applied: true,
            what: "é".repeat(600),
        };
        assert!(m.encode().len() <= MAX_MESSAGE);
    }

    #[test]
    fn orders_check_their_attachments() {
        assert_eq!(
            ToPrototype::decode(b"accesslog", 0),
            Err(DecodeError::Descriptors {
                verb: "accesslog",
                expected: 1,
                got: 0
            })
        );
        assert!(ToPrototype::decode(b"quit now", 0).is_err());
        assert!(ToPrototype::decode(b"spawn", 0).is_err());
        assert!(ToPrototype::decode(b"stop -1", 0).is_err());
    }

    #[test]
    fn wait_status_reads_like_wait2() {
        let s = WaitStatus::exited(3);
        assert_eq!((s.code(), s.signal()), (Some(3), None));
        let k = WaitStatus::signaled(11, true);
        assert_eq!(
            (k.code(), k.signal(), k.core_dumped()),
            (None, Some(11), true)
        );
        assert_eq!(WaitStatus::from_raw(0x10000), None);
    }
}
