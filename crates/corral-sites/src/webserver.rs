//! The web server's config test and reload, as commands. Defaults are
//! Debian's (`nginx -t`, `nginx -s reload || nginx`, `apachectl configtest`,
//! `apachectl graceful`); `--webserver-test`/`--webserver-reload` replace
//! them (tests run their own nginx and Apache with their own configs).

use std::process::Command;

use crate::error::{Result, SitesError};
use crate::paths::Paths;
use crate::spec::WebServer;

pub fn test_command(paths: &Paths, ws: WebServer) -> String {
    paths.webserver_test.clone().unwrap_or_else(|| match ws {
        WebServer::Nginx => format!("nginx -t -q -c {}", paths.nginx_conf.display()),
        WebServer::Apache => "apachectl configtest".into(),
    })
}

pub fn reload_command(paths: &Paths, ws: WebServer) -> String {
    paths.webserver_reload.clone().unwrap_or_else(|| match ws {
        // Like `apachectl graceful`, start the server when it is not
        // running (a fresh install with the service stopped).
        WebServer::Nginx => "nginx -s reload || nginx".into(),
        WebServer::Apache => "apachectl graceful".into(),
    })
}

/// Runs `cmd` with `sh -c`; non-zero exit is an error with its output.
pub fn run_shell(cmd: &str) -> Result<String> {
    let out = Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .output()
        .map_err(|e| SitesError::Command {
            command: cmd.to_string(),
            output: e.to_string(),
        })?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if !out.status.success() {
        return Err(SitesError::Command {
            command: cmd.to_string(),
            output: format!("{}: {}", out.status, text.trim()),
        });
    }
    Ok(text)
}
