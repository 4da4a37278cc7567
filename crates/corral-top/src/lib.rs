//! `corral top`: every pool of a running master in the terminal (ratatui),
//! updated every second from the control socket, sortable by key.

#![forbid(unsafe_code)]

pub mod model;
pub mod view;

use std::io::IsTerminal;
use std::path::Path;
use std::time::{Duration, Instant};

use corral_ipc::control::{ControlReply, ControlRequest, MetricsFormat};
use corral_metrics::Snapshot;
use ratatui::crossterm::event::{self, Event, KeyCode, KeyEventKind, KeyModifiers};

use model::Model;

pub const EXIT_OK: i32 = 0;
pub const EXIT_USAGE: i32 = 64;
pub const EXIT_SOFTWARE: i32 = 70;

pub const USAGE: &str = "usage: corral top [-y CONFIG] [-p PREFIX] [--control-socket PATH]\n\
    Every pool of the running master, updated every second.\n\
    Keys: n name, b busy, r req/s, p p99, m memory, l queue (again: reverse), R reverse, q quit.";

const TICK: Duration = Duration::from_secs(1);

/// One snapshot from the master.
pub fn fetch(socket: &Path) -> Result<Snapshot, String> {
    let req = ControlRequest::Metrics {
        format: MetricsFormat::Json,
    };
    match corral_ipc::control::request(socket, &req) {
        Ok(ControlReply { ok: true, text }) => {
            Snapshot::from_json(&text).map_err(|e| format!("unreadable answer: {e}"))
        }
        Ok(ControlReply { ok: false, text }) => Err(text),
        Err(e) => Err(format!("cannot reach corral at {}: {e}", socket.display())),
    }
}

pub fn main(socket: &Path, args: &[String]) -> i32 {
    if args.iter().any(|a| a == "-h" || a == "--help") {
        println!("{USAGE}");
        return EXIT_OK;
    }
    if let Some(a) = args.first() {
        eprintln!("corral top: unknown argument '{a}'\n{USAGE}");
        return EXIT_USAGE;
    }
    if !std::io::stdout().is_terminal() {
        eprintln!(
            "corral top needs a terminal; for a machine-readable view use 'corral metrics --json'"
        );
        return EXIT_USAGE;
    }
    // Fail before taking the screen when there is no master at all.
    let first = match fetch(socket) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            return EXIT_SOFTWARE;
        }
    };
    let mut model = Model::default();
    model.update(first);
    let mut terminal = ratatui::init();
    let result = run(&mut terminal, &mut model, socket);
    ratatui::restore();
    match result {
        Ok(()) => EXIT_OK,
        Err(e) => {
            eprintln!("corral top: {e}");
            EXIT_SOFTWARE
        }
    }
}

/// Draw, wait for a key or the next second, repeat until `q`.
fn run(
    terminal: &mut ratatui::DefaultTerminal,
    model: &mut Model,
    socket: &Path,
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
        match fetch(socket) {
            Ok(s) => model.update(s),
            Err(e) => model.failed(e),
        }
    }
}
