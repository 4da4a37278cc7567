//! A command's result as the operator asked for it: text for a person, or
//! one JSON value on stdout for a program, errors included, so a script
//! never has to scrape stderr to learn what went wrong.

use std::io::Write;

use clap::Args;
use corral_ipc::ExitCode;

/// `--json`, which every corral command has. Each command flattens it
/// into its own arguments; it is global there, so `corral site --json
/// list` and `corral site list --json` are the same.
#[derive(Args, Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JsonArg {
    /// Print one JSON value on stdout; an error is {"error": "...", "code": N}
    #[arg(long, global = true)]
    pub json: bool,
}

/// What a command that ran has to say.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    /// For a person, on stdout.
    pub text: String,
    /// For `--json`, on stdout.
    pub json: serde_json::Value,
    /// [`ExitCode::Ok`] unless the command ran and the answer is no (a
    /// `doctor` report with weak findings is still a report).
    pub code: ExitCode,
}

impl Reply {
    pub fn new(text: impl Into<String>, json: serde_json::Value) -> Reply {
        Reply {
            text: text.into(),
            json,
            code: ExitCode::Ok,
        }
    }

    pub fn with_code(mut self, code: ExitCode) -> Reply {
        self.code = code;
        self
    }
}

/// Why a command did not do what was asked, and the exit code that says so.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct CliError {
    pub code: ExitCode,
    pub message: String,
}

impl CliError {
    pub fn new(code: ExitCode, message: impl Into<String>) -> CliError {
        CliError {
            code,
            message: message.into(),
        }
    }

    pub fn usage(message: impl Into<String>) -> CliError {
        Self::new(ExitCode::Usage, message)
    }

    pub fn failure(message: impl Into<String>) -> CliError {
        Self::new(ExitCode::Failure, message)
    }

    /// `{"error": "...", "code": N}`.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({ "error": self.message, "code": self.code.code() })
    }
}

/// Prints `result` for `corral COMMAND` and returns its exit code. Text
/// goes to stdout and an error to stderr as `corral COMMAND: message`;
/// with `json`, either is one line of JSON on stdout.
pub fn finish(command: &str, json: bool, result: Result<Reply, CliError>) -> ExitCode {
    match result {
        Ok(reply) => {
            if json {
                out(&reply.json.to_string());
            } else if !reply.text.is_empty() {
                out(reply.text.trim_end_matches('\n'));
            }
            reply.code
        }
        Err(e) => {
            print_error(command, json, &e);
            e.code
        }
    }
}

/// An error, as [`finish`] prints it.
pub fn print_error(command: &str, json: bool, e: &CliError) {
    if json {
        out(&e.to_json().to_string());
    } else {
        let _ = writeln!(std::io::stderr().lock(), "{command}: {}", e.message);
    }
}

/// One block on stdout. A closed pipe (`corral status | head`) is not
/// worth a panic.
fn out(text: &str) {
    let _ = writeln!(std::io::stdout().lock(), "{text}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_in_json_has_its_message_and_code() {
        let e = CliError::new(ExitCode::NoPerm, "must be run as root");
        assert_eq!(
            e.to_json(),
            serde_json::json!({"error": "must be run as root", "code": 77})
        );
    }

    #[test]
    fn finish_returns_the_code_of_what_happened() {
        let weak = Reply::new("", serde_json::json!({})).with_code(ExitCode::Failure);
        assert_eq!(finish("corral t", true, Ok(weak)), ExitCode::Failure);
        let bad = CliError::usage("no");
        assert_eq!(finish("corral t", true, Err(bad)), ExitCode::Usage);
    }
}
