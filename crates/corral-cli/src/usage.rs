//! clap's parse errors as corral's usage errors: exit 64 as php-fpm does
//! for a bad option (not clap's own 2), and JSON when `--json` was on the
//! command line, even one clap refused.

use std::ffi::OsStr;

use clap::error::ErrorKind;
use corral_ipc::ExitCode;

use crate::output::{print_error, CliError};

/// Whether the raw arguments ask for JSON. Looked up before parsing, so
/// a command line that does not parse still gets its error as JSON.
pub fn wants_json<S: AsRef<OsStr>>(args: &[S]) -> bool {
    args.iter()
        .take_while(|a| a.as_ref() != "--")
        .any(|a| a.as_ref() == "--json")
}

/// The first paragraph of clap's message, without its `error: ` tag.
pub fn message(e: &clap::Error) -> String {
    let text = e.render().to_string();
    let first = text.split("\n\n").next().unwrap_or_default().trim();
    first.strip_prefix("error: ").unwrap_or(first).to_string()
}

/// Prints what clap has to say and returns the exit code: help (and
/// clap's version text) is success; everything else, a missing
/// subcommand included, is [`ExitCode::Usage`].
pub fn parse_error(e: &clap::Error, json: bool) -> ExitCode {
    match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            let _ = e.print();
            ExitCode::Ok
        }
        _ if json => {
            print_error("corral", true, &CliError::usage(message(e)));
            ExitCode::Usage
        }
        _ => {
            let _ = e.print();
            ExitCode::Usage
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser, Debug)]
    #[command(name = "t")]
    struct T {
        #[arg(long)]
        json: bool,
    }

    #[test]
    fn an_unknown_flag_is_a_usage_error_with_a_message() {
        let e = T::try_parse_from(["t", "--jsn"]).unwrap_err();
        assert_eq!(parse_error(&e, false), ExitCode::Usage);
        let m = message(&e);
        assert!(m.contains("--jsn"), "{m}");
        assert!(!m.starts_with("error:"), "{m}");
        let help = T::try_parse_from(["t", "--help"]).unwrap_err();
        assert_eq!(parse_error(&help, false), ExitCode::Ok);
    }

    #[test]
    fn json_is_seen_before_parsing() {
        assert!(wants_json(&["status", "--jsn", "--json"]));
        assert!(!wants_json(&["bench", "--", "--json"]));
        assert!(!wants_json(&["status"]));
    }
}
