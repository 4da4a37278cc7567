//! `corral metrics`: the metrics address's page, from the master's
//! control socket (so it works with no metrics address configured, and
//! needs the control socket's rights: root).

use clap::Args;
use corral_cli::{finish, CliError, ControlTarget, ExitCode, JsonArg, Reply};
use corral_ipc::control::{ControlRequest, MetricsFormat};

use crate::snapshot::Snapshot;

/// `corral metrics [--openmetrics | --json]`.
#[derive(Args, Debug)]
#[command(
    long_about = "Every pool's metrics, as the corral.metrics_listen address serves \
    /metrics: Prometheus' text format, OpenMetrics with --openmetrics, or the snapshot \
    behind them (every pool's numbers, as the dashboard reads them) with --json. \
    Asks the master on its control socket, so no metrics address is needed."
)]
pub struct MetricsArgs {
    /// OpenMetrics 1.0 instead of Prometheus' text format 0.0.4
    #[arg(long, conflicts_with = "json")]
    pub openmetrics: bool,
    #[command(flatten)]
    pub target: ControlTarget,
    #[command(flatten)]
    pub out: JsonArg,
}

impl MetricsArgs {
    pub fn format(&self) -> MetricsFormat {
        match (self.out.json, self.openmetrics) {
            (true, _) => MetricsFormat::Json,
            (false, true) => MetricsFormat::OpenMetrics,
            (false, false) => MetricsFormat::Text,
        }
    }

    pub fn run(self) -> ExitCode {
        let format = self.format();
        let req = ControlRequest::Metrics { format };
        let result = self.target.request(&req).and_then(|text| match format {
            MetricsFormat::Json => {
                let snapshot = Snapshot::from_json(&text).map_err(|e| {
                    CliError::new(
                        ExitCode::Software,
                        format!("the master's snapshot is not readable ({e})"),
                    )
                })?;
                let json = serde_json::to_value(&snapshot).unwrap_or_default();
                Ok(Reply::new(text, json))
            }
            _ => Ok(Reply::new(text, serde_json::Value::Null)),
        });
        finish("corral metrics", self.out.json, result)
    }
}
