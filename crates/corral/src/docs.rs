//! Shell completions and man pages, generated from the same clap
//! definitions that parse the command line, so they cannot drift from it.
//! The Debian package ships both (scripts/deb.sh writes them).

use std::path::{Path, PathBuf};

use clap::{Args, CommandFactory};
use corral_cli::{finish, CliError, ExitCode, JsonArg, Reply};

use crate::cli::Cli;

/// Section 8, as php-fpm8.2's own page: corral is a system daemon.
pub const MAN_SECTION: &str = "8";

/// `corral completions SHELL`.
#[derive(Args, Debug)]
pub struct CompletionsArgs {
    /// The shell to complete for
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
    #[command(flatten)]
    pub out: JsonArg,
}

/// `corral man [--dir DIR]`.
#[derive(Args, Debug)]
pub struct ManArgs {
    /// Write corral.8 and a page per command (corral-site-add.8, ...) here instead of printing corral.8
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    #[command(flatten)]
    pub out: JsonArg,
}

impl CompletionsArgs {
    pub fn run(self) -> ExitCode {
        let mut script = Vec::new();
        clap_complete::generate(self.shell, &mut Cli::command(), "corral", &mut script);
        let script = String::from_utf8_lossy(&script).into_owned();
        let json = serde_json::json!({ "shell": self.shell.to_string(), "script": script });
        finish(
            "corral completions",
            self.out.json,
            Ok(Reply::new(script, json)),
        )
    }
}

impl ManArgs {
    pub fn run(self) -> ExitCode {
        let result = match &self.dir {
            Some(dir) => write_pages(dir),
            None => top_page(),
        };
        finish("corral man", self.out.json, result)
    }
}

fn man(cmd: clap::Command) -> clap_mangen::Man {
    clap_mangen::Man::new(cmd)
        .section(MAN_SECTION)
        .source(format!("corral {}", env!("CARGO_PKG_VERSION")))
        .manual("corral")
}

/// The whole tree, built so that each command knows its full name
/// (`corral site add`, page `corral-site-add.8`).
fn built() -> clap::Command {
    let mut cmd = Cli::command().disable_help_subcommand(true);
    cmd.build();
    cmd
}

fn top_page() -> Result<Reply, CliError> {
    let page = man(built());
    let mut roff = Vec::new();
    page.render(&mut roff)
        .map_err(|e| CliError::new(ExitCode::Software, e.to_string()))?;
    let roff = String::from_utf8_lossy(&roff).into_owned();
    let json = serde_json::json!({ "name": page.get_filename(), "roff": roff });
    Ok(Reply::new(roff, json))
}

fn write_pages(dir: &Path) -> Result<Reply, CliError> {
    let failed = |e: std::io::Error| CliError::failure(format!("{}: {e}", dir.display()));
    std::fs::create_dir_all(dir).map_err(failed)?;
    let mut written = Vec::new();
    fn walk(cmd: &clap::Command, dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
        out.push(man(cmd.clone()).generate_to(dir)?);
        for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
            walk(sub, dir, out)?;
        }
        Ok(())
    }
    walk(&built(), dir, &mut written).map_err(failed)?;
    let names: Vec<String> = written.iter().map(|p| p.display().to_string()).collect();
    let json = serde_json::json!({ "pages": names });
    Ok(Reply::new(names.join("\n"), json))
}
