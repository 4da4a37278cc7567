//! `corral metrics [--openmetrics|--json]`: the metrics address's page,
//! from the master's control socket (so it works with no metrics address
//! configured, and needs the control socket's rights: root).

use std::path::Path;

use corral_ipc::control::{ControlReply, ControlRequest, MetricsFormat};

/// Exit codes as the other control commands use them.
pub const EXIT_OK: i32 = 0;
pub const EXIT_USAGE: i32 = 64;
pub const EXIT_SOFTWARE: i32 = 70;

pub const USAGE: &str = "usage: corral metrics [--openmetrics | --json] [-y CONFIG] [-p PREFIX] [--control-socket PATH]\n\
    Prints every pool's metrics in Prometheus' text format (as the\n\
    corral.metrics_listen address serves /metrics), in OpenMetrics, or the\n\
    snapshot as JSON.";

/// The format the arguments ask for, or a usage error.
pub fn parse_args(args: &[String]) -> Result<MetricsFormat, String> {
    let mut format = MetricsFormat::Text;
    for a in args {
        format = match a.as_str() {
            "--openmetrics" => MetricsFormat::OpenMetrics,
            "--json" => MetricsFormat::Json,
            "--text" => MetricsFormat::Text,
            other => return Err(format!("corral metrics: unknown argument '{other}'")),
        };
    }
    Ok(format)
}

/// Ask the master at `socket` and print its answer; the exit code.
pub fn main(socket: &Path, args: &[String]) -> i32 {
    if args.iter().any(|a| a == "-h" || a == "--help") {
        println!("{USAGE}");
        return EXIT_OK;
    }
    let format = match parse_args(args) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("{e}\n{USAGE}");
            return EXIT_USAGE;
        }
    };
    match corral_ipc::control::request(socket, &ControlRequest::Metrics { format }) {
        Ok(ControlReply { ok: true, text }) => {
            println!("{text}");
            EXIT_OK
        }
        Ok(ControlReply { ok: false, text }) => {
            eprintln!("{text}");
            EXIT_SOFTWARE
        }
        Err(e) => {
            eprintln!("cannot reach corral at {}: {e}", socket.display());
            EXIT_SOFTWARE
        }
    }
}
