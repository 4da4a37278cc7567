//! The descriptors a prototype is exec'd with, at fixed numbers.
//!
//! The master builds a [`Handoff`] from descriptors it owns and asks
//! `corral_sys::process::spawn_self` to place each at its number; the
//! prototype takes them back as an [`Inherited`], which owns them, and
//! closes anything else that sits in the hand-off range. Which optional
//! descriptors are present is stated by the prototype's arguments, not
//! guessed from what happens to be open.

use std::os::fd::{OwnedFd, RawFd};

use crate::args::PrototypeArgs;

/// One hand-off position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandoffFd {
    Listen,
    Control,
    Board,
    Config,
    AccessLog,
    StatusBoard,
}

impl HandoffFd {
    pub const ALL: [HandoffFd; 6] = [
        HandoffFd::Listen,
        HandoffFd::Control,
        HandoffFd::Board,
        HandoffFd::Config,
        HandoffFd::AccessLog,
        HandoffFd::StatusBoard,
    ];

    /// The descriptor number in the prototype.
    pub const fn number(self) -> RawFd {
        match self {
            HandoffFd::Listen => 3,
            HandoffFd::Control => 4,
            HandoffFd::Board => 5,
            HandoffFd::Config => 6,
            HandoffFd::AccessLog => 7,
            HandoffFd::StatusBoard => 8,
        }
    }

    /// The highest number in use: the prototype closes everything above.
    pub const LAST: RawFd = 8;

    /// What it is and who keeps it (the table in docs/architecture.md).
    pub const fn describe(self) -> &'static str {
        match self {
            HandoffFd::Listen => "the pool's listening socket; workers accept on it",
            HandoffFd::Control => "the control channel to the master; workers close it",
            HandoffFd::Board => "the pool's scoreboard (sealed memfd); mapped, then closed",
            HandoffFd::Config => "the pool's rendered configuration (memfd); read once, closed",
            HandoffFd::AccessLog => "access.log opened by the master (O_APPEND); workers write it",
            HandoffFd::StatusBoard => {
                "pm.status_listen pools: the parent's scoreboard, read-only; mapped, then closed"
            }
        }
    }
}

/// The master's side: which of its descriptors go where.
#[derive(Debug, Clone, Copy)]
pub struct Handoff {
    pub listen: RawFd,
    pub control: RawFd,
    pub board: RawFd,
    pub config: RawFd,
    pub access_log: Option<RawFd>,
    pub status_board: Option<RawFd>,
}

impl Handoff {
    /// `(number in the prototype, descriptor in the master)` for each one
    /// present.
    pub fn placements(&self) -> Vec<(RawFd, RawFd)> {
        let mut out = vec![
            (HandoffFd::Listen.number(), self.listen),
            (HandoffFd::Control.number(), self.control),
            (HandoffFd::Board.number(), self.board),
            (HandoffFd::Config.number(), self.config),
        ];
        if let Some(fd) = self.access_log {
            out.push((HandoffFd::AccessLog.number(), fd));
        }
        if let Some(fd) = self.status_board {
            out.push((HandoffFd::StatusBoard.number(), fd));
        }
        out
    }
}

/// A descriptor the arguments promised is not open.
#[derive(Debug, thiserror::Error)]
#[error("descriptor {number} ({what}) was not handed over")]
pub struct HandoffError {
    pub number: RawFd,
    pub what: &'static str,
}

/// The prototype's side: the hand-off, owned.
#[derive(Debug)]
pub struct Inherited {
    pub listen: OwnedFd,
    pub control: OwnedFd,
    pub board: OwnedFd,
    pub config: OwnedFd,
    pub access_log: Option<OwnedFd>,
    pub status_board: Option<OwnedFd>,
}

impl Inherited {
    /// Take the descriptors `args` says were handed over, close whatever
    /// else is open in the hand-off range or above it (nothing the master
    /// did not mean to give may reach tenant code), and mark the rest
    /// close-on-exec.
    pub fn take(args: &PrototypeArgs) -> Result<Inherited, HandoffError> {
        corral_sys::process::close_fds_above(HandoffFd::LAST);
        let wanted = |fd: HandoffFd| match fd {
            HandoffFd::AccessLog => args.access_log,
            HandoffFd::StatusBoard => args.status_of.is_some(),
            _ => true,
        };
        for fd in HandoffFd::ALL.into_iter().filter(|&f| !wanted(f)) {
            drop(corral_sys::process::take_fixed_fd(fd.number()));
        }
        let take = |fd: HandoffFd| -> Result<OwnedFd, HandoffError> {
            let owned = corral_sys::process::take_fixed_fd(fd.number()).ok_or(HandoffError {
                number: fd.number(),
                what: fd.describe(),
            })?;
            let _ = corral_sys::process::set_cloexec(fd.number());
            Ok(owned)
        };
        let optional = |fd: HandoffFd| wanted(fd).then(|| take(fd)).transpose();
        Ok(Inherited {
            listen: take(HandoffFd::Listen)?,
            control: take(HandoffFd::Control)?,
            board: take(HandoffFd::Board)?,
            config: take(HandoffFd::Config)?,
            access_log: optional(HandoffFd::AccessLog)?,
            status_board: optional(HandoffFd::StatusBoard)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_distinct_and_in_order() {
        let nums: Vec<RawFd> = HandoffFd::ALL.iter().map(|f| f.number()).collect();
        assert_eq!(nums, (3..=HandoffFd::LAST).collect::<Vec<_>>());
    }

    #[test]
    fn placements_follow_what_is_present() {
        let h = Handoff {
            listen: 10,
            control: 11,
            board: 12,
            config: 13,
            access_log: None,
            status_board: Some(14),
        };
        assert_eq!(
            h.placements(),
            vec![(3, 10), (4, 11), (5, 12), (6, 13), (8, 14)]
        );
    }
}
