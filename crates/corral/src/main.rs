//! corral: php-fpm's command line and corral's own subcommands.
//!
//! * [`cli`]: the clap definitions (php-fpm's flags and the commands).
//! * [`fpm`]: no command: php-fpm's mode, which runs the master.
//! * [`control`]: `reload`, `restart`, `status` against a running master.
//! * [`docs`]: completions and man pages from the same definitions.
//!
//! The other commands' flags and code live in the crates that own them
//! (`corral_sites`, `corral_bench`); dispatch is one line each.

#![forbid(unsafe_code)]

mod cli;
mod control;
mod docs;
mod fpm;

use clap::Parser;
use corral_cli::ExitCode;

use crate::cli::{Cli, Command};

fn main() {
    // A prototype: the master exec'd us with our arguments in the
    // environment, not on the command line.
    if let Ok(encoded) = std::env::var(corral_ipc::PROTOTYPE_ENV) {
        std::env::remove_var(corral_ipc::PROTOTYPE_ENV);
        std::process::exit(prototype(&encoded));
    }
    // The zygote: exec'd once by the master.
    if let Ok(encoded) = std::env::var(corral_ipc::ZYGOTE_ENV) {
        std::env::remove_var(corral_ipc::ZYGOTE_ENV);
        let args = corral_ipc::ZygoteArgs::decode(&encoded);
        std::process::exit(corral_worker::zygote::run(args));
    }
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let cli = match Cli::try_parse_from(&args) {
        Ok(cli) => cli,
        Err(e) => {
            let json = corral_cli::usage::wants_json(&args);
            if !json && fpm_mode(&args) && is_mistake(&e) {
                std::process::exit(fpm_usage_error(&e).code());
            }
            std::process::exit(corral_cli::usage::parse_error(&e, json).code());
        }
    };
    let code = match cli.command {
        None => {
            let prog = args.first().map(|a| a.to_string_lossy().into_owned());
            std::process::exit(fpm::run(cli.fpm, prog.as_deref().unwrap_or("corral")));
        }
        Some(command) => dispatch(command),
    };
    std::process::exit(code.code());
}

/// php-fpm's mode: no command word first (php-fpm's flags, or nothing).
fn fpm_mode(args: &[std::ffi::OsString]) -> bool {
    args.get(1)
        .is_none_or(|a| a.to_string_lossy().starts_with('-'))
}

/// A bad command line, not a request for help or the version.
fn is_mistake(e: &clap::Error) -> bool {
    !matches!(
        e.kind(),
        clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion
    )
}

/// php-fpm answers a bad flag with its usage on stdout and exit 64 (tools,
/// PHP's own bug78323 test among them, read the "Usage:" line); corral
/// adds clap's word on what was wrong, on stderr.
fn fpm_usage_error(e: &clap::Error) -> ExitCode {
    use clap::CommandFactory;
    use std::io::Write;
    let usage = Cli::command().render_usage().to_string();
    let mut out = std::io::stdout();
    let _ = writeln!(out, "{usage}");
    let _ = out.flush();
    eprintln!("{}", corral_cli::usage::message(e));
    ExitCode::Usage
}

fn dispatch(command: Command) -> ExitCode {
    match command {
        Command::Reload(a) => a.run(),
        Command::Restart(a) => a.run(),
        Command::Status(a) => a.run(),
        Command::Metrics(a) => a.run(),
        Command::Top(a) => a.run(),
        Command::Site(a) => (*a).run(),
        Command::Tune(a) => (*a).run(),
        Command::Doctor(a) => (*a).run(),
        Command::Bench(a) => (*a).run(),
        Command::Completions(a) => a.run(),
        Command::Man(a) => a.run(),
    }
}

/// A prototype's whole life.
fn prototype(encoded: &str) -> i32 {
    match corral_ipc::PrototypeArgs::decode(encoded) {
        Ok(args) => corral_worker::prototype::run(args),
        Err(e) => {
            eprintln!("corral prototype: {e}");
            ExitCode::Usage.code()
        }
    }
}
