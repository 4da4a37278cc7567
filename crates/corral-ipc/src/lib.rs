//! The contract between corral's processes, in one place.
//!
//! Three roles talk to each other: the master (root), a prototype per pool
//! (runs as the tenant) and the workers it forks. Everything that crosses a
//! process boundary is defined here, with its encoding and its decoding side
//! by side, so the two ends cannot drift apart:
//!
//! * [`message`]: what the master tells a prototype ([`ToPrototype`]) and
//!   what a prototype reports back ([`FromPrototype`]), over [`Channel`].
//! * [`handoff`]: which descriptor sits at which number when the master
//!   execs a prototype ([`Handoff`]).
//! * [`args`]: the prototype's arguments ([`PrototypeArgs`]).
//! * [`control`]: the control socket that `corral reload`, `corral status`
//!   and `corral site` use to reach a running master, and its client.
//! * [`zygote`]: what the master asks of the zygote, the
//!   pre-linked root process that forks dormant pools' prototypes.
//! * [`exit`]: the exit codes every corral command ends with ([`ExitCode`]).
//!
//! A prototype runs tenant-owned code paths, so everything the master
//! decodes from it is untrusted input: decoders are strict, bounded, and
//! return a typed [`DecodeError`] instead of guessing.

#![forbid(unsafe_code)]

pub mod args;
pub mod channel;
pub mod control;
pub mod exit;
pub mod handoff;
pub mod message;
pub mod zygote;

pub use args::{ArgsError, PhpArgs, PrototypeArgs, PROTOTYPE_ENV};
pub use channel::{Channel, ChannelError, Received};
pub use exit::ExitCode;
pub use handoff::{Handoff, HandoffFd};
pub use message::{DecodeError, FromPrototype, ToPrototype, WaitStatus};
pub use zygote::{FromZygote, LaunchSpec, ToZygote, ZygoteArgs, ZYGOTE_ENV};
