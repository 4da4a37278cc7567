//! What every corral subcommand shares, so they all behave alike:
//!
//! * [`output`]: a command's result as text or as JSON (`--json`), its
//!   errors too (`{"error": "...", "code": N}`), and the exit code from
//!   corral's one table ([`ExitCode`]).
//! * [`target`]: which master a command talks to (`--control-socket`,
//!   `-y/--fpm-config`, `-p/--prefix`) and what to say when it cannot,
//!   without ever falling back to another master's socket.
//! * [`usage`]: a clap parse error as a usage error (exit 64, like
//!   php-fpm's), in JSON when `--json` was asked for.
//!
//! Each subcommand's clap definition lives in the crate that owns the
//! command; this crate only has the parts they have in common.

#![forbid(unsafe_code)]

pub mod output;
pub mod target;
pub mod usage;

pub use corral_ipc::ExitCode;
pub use output::{finish, CliError, JsonArg, Reply};
pub use target::ControlTarget;
