//! `corral top`: every pool of a running master in the terminal (ratatui),
//! updated every second from the control socket, sortable by key.

#![forbid(unsafe_code)]

pub mod model;
pub mod view;

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use clap::{Args, ValueEnum};
use corral_cli::{finish, CliError, ControlTarget, ExitCode, JsonArg, Reply};
use corral_ipc::control::{ControlRequest, MetricsFormat};
use corral_metrics::Snapshot;
use ratatui::crossterm::event::{self, Event, KeyCode, KeyEventKind, KeyModifiers};

use model::{Model, SortKey};

const TICK: Duration = Duration::from_secs(1);

/// `corral top`.
#[derive(Args, Debug)]
#[command(
    long_about = "Every pool of the running master in the terminal, updated every second:     state, busy and idle workers, queue, req/s, p50/p99, memory, slow requests, OPcache,     generation and reloads. Keys: n name, b busy, r req/s, p p99, m memory, l queue (the     same key again reverses), R reverse, q quit. With --json, one view (rates over one     second) is printed instead, and no terminal is needed."
)]
pub struct TopArgs {
    /// The order to start with
    #[arg(long, value_enum, default_value_t = Sort::Name)]
    pub sort: Sort,
    #[command(flatten)]
    pub target: ControlTarget,
    #[command(flatten)]
    pub out: JsonArg,
}

/// `--sort`: the same columns as the keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Sort {
    Name,
    Busy,
    Rate,
    P99,
    Memory,
    Queue,
}

impl From<Sort> for SortKey {
    fn from(s: Sort) -> SortKey {
        match s {
            Sort::Name => SortKey::Name,
            Sort::Busy => SortKey::Busy,
            Sort::Rate => SortKey::Rate,
            Sort::P99 => SortKey::P99,
            Sort::Memory => SortKey::Memory,
            Sort::Queue => SortKey::Queue,
        }
    }
}

/// One snapshot from the master.
pub fn fetch(target: &ControlTarget) -> Result<Snapshot, CliError> {
    let req = ControlRequest::Metrics {
        format: MetricsFormat::Json,
    };
    let text = target.request(&req)?;
    Snapshot::from_json(&text).map_err(|e| {
        CliError::new(
            ExitCode::Software,
            format!("the master's snapshot is not readable ({e})"),
        )
    })
}

impl TopArgs {
    pub fn run(self) -> ExitCode {
        let json = self.out.json;
        finish("corral top", json, self.view())
    }

    fn view(self) -> Result<Reply, CliError> {
        let interactive = !self.out.json;
        if interactive && !std::io::stdout().is_terminal() {
            return Err(CliError::usage(
                "needs a terminal; for one view as JSON use 'corral top --json' (or 'corral metrics --json')",
            ));
        }
        // Fail before taking the screen when there is no master at all.
        let mut model = Model {
            sort: Some(self.sort.into()),
            ..Model::default()
        };
        model.update(fetch(&self.target)?);
        if !interactive {
            std::thread::sleep(TICK);
            model.update(fetch(&self.target)?);
            return Ok(Reply::new(String::new(), rows_json(&model)));
        }
        let mut terminal = ratatui::init();
        let result = run(&mut terminal, &mut model, &self.target);
        ratatui::restore();
        result
            .map(|()| Reply::new(String::new(), serde_json::Value::Null))
            .map_err(|e| CliError::new(ExitCode::Software, format!("the terminal failed: {e}")))
    }
}

/// The rows as `--json` prints them, in the chosen order.
pub fn rows_json(m: &Model) -> serde_json::Value {
    let rows: Vec<serde_json::Value> = m
        .rows()
        .iter()
        .map(|r| {
            let p = &r.pool;
            serde_json::json!({
                "pool": p.name,
                "prototype": p.prototype.label(),
                "busy": p.active_processes,
                "idle": p.idle_processes,
                "max children": p.max_children,
                "listen queue": p.listen_queue,
                "requests per second": r.rates.requests_per_second,
                "p50 seconds": r.rates.p50,
                "p99 seconds": r.rates.p99,
                "memory bytes": p.cgroup.as_ref().and_then(|c| c.memory_bytes),
                "slow requests": p.slow_requests,
                "opcache hit ratio": p.opcache.as_ref().and_then(|o| o.hit_ratio),
                "generation": p.generation,
                "reloads": p.reloads,
            })
        })
        .collect();
    serde_json::json!({ "sorted by": m.sort_key().label(), "pools": rows })
}

/// Draw, wait for a key or the next second, repeat until `q`.
fn run(
    terminal: &mut ratatui::DefaultTerminal,
    model: &mut Model,
    target: &ControlTarget,
) -> std::io::Result<()> {
    let mut next = Instant::now() + TICK;
    loop {
        terminal.draw(|f| view::draw(f, model))?;
        let wait = next.saturating_duration_since(Instant::now());
        if event::poll(wait)? {
            if let Event::Key(k) = event::read()? {
                if k.kind != KeyEventKind::Press {
                    continue;
                }
                match k.code {
                    KeyCode::Char('q') | KeyCode::Esc => return Ok(()),
                    KeyCode::Char('c') if k.modifiers.contains(KeyModifiers::CONTROL) => {
                        return Ok(())
                    }
                    KeyCode::Char(c) => {
                        model.key(c);
                    }
                    _ => {}
                }
            }
            continue;
        }
        next = Instant::now() + TICK;
        match fetch(target) {
            Ok(s) => model.update(s),
            Err(e) => model.failed(e.message),
        }
    }
}
