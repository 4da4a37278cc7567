//! Drawing one frame: a summary line, the pools' table, the keys.

use ratatui::layout::{Constraint, Layout};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Cell, Paragraph, Row as TableRow, Table};
use ratatui::Frame;

use crate::model::{Model, Row, SortKey};

const HEADERS: [&str; 13] = [
    "POOL",
    "STATE",
    "BUSY",
    "IDLE",
    "MAX",
    "QUEUE",
    "REQ/S",
    "P50",
    "P99",
    "MEMORY",
    "SLOW",
    "OPCACHE",
    "GEN/RELOADS",
];

/// Which header a sort key underlines.
fn header_of(k: SortKey) -> &'static str {
    match k {
        SortKey::Name => "POOL",
        SortKey::Busy => "BUSY",
        SortKey::Rate => "REQ/S",
        SortKey::P99 => "P99",
        SortKey::Memory => "MEMORY",
        SortKey::Queue => "QUEUE",
    }
}

pub fn seconds(s: Option<f64>) -> String {
    match s {
        None => "-".into(),
        Some(s) if s < 1.0 => format!("{:.1}ms", s * 1000.0),
        Some(s) => format!("{s:.2}s"),
    }
}

pub fn bytes(b: Option<u64>) -> String {
    let Some(b) = b else { return "-".into() };
    let units = ["B", "K", "M", "G", "T"];
    let mut v = b as f64;
    let mut i = 0;
    while v >= 1024.0 && i < units.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{b}B")
    } else {
        format!("{v:.1}{}", units[i])
    }
}

fn cells(r: &Row) -> [String; 13] {
    let p = &r.pool;
    let opcache = match &p.opcache {
        Some(o) => match o.hit_ratio {
            Some(h) => format!("{:.1}% {}", h * 100.0, bytes(Some(o.used_memory))),
            None => bytes(Some(o.used_memory)),
        },
        None => "-".into(),
    };
    [
        p.name.clone(),
        p.prototype.label().to_string(),
        p.active_processes.to_string(),
        p.idle_processes.to_string(),
        p.max_children.to_string(),
        p.listen_queue.to_string(),
        format!("{:.1}", r.rates.requests_per_second),
        seconds(r.rates.p50),
        seconds(r.rates.p99),
        bytes(p.cgroup.as_ref().and_then(|c| c.memory_bytes)),
        p.slow_requests.to_string(),
        opcache,
        format!("g{} / {}", p.generation, p.reloads),
    ]
}

fn summary(m: &Model) -> Line<'static> {
    let mut spans = vec![Span::styled(
        "corral top",
        Style::default().add_modifier(Modifier::BOLD),
    )];
    if let Some(s) = &m.current {
        let up = (s.time - s.master_started).max(0.0) as u64;
        spans.push(Span::raw(format!(
            "  {} pools · corral {} · master {} · up {}h{:02}m · {} reloads",
            s.pools.iter().filter(|p| p.status_of.is_none()).count(),
            s.version,
            s.master_pid,
            up / 3600,
            up / 60 % 60,
            s.reloads
        )));
    }
    let order = if m.reversed { "reversed" } else { "" };
    spans.push(Span::raw(format!(
        "  · sorted by {} {order}",
        m.sort_key().label()
    )));
    Line::from(spans)
}

fn keys() -> Line<'static> {
    let mut text: Vec<String> = SortKey::ALL
        .iter()
        .map(|k| format!("{} {}", k.key(), k.label()))
        .collect();
    text.push("R reverse".into());
    text.push("q quit".into());
    Line::from(text.join("  "))
}

pub fn draw(f: &mut Frame<'_>, m: &Model) {
    let [top, table, status, help] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(3),
        Constraint::Length(1),
        Constraint::Length(1),
    ])
    .areas(f.area());
    f.render_widget(Paragraph::new(summary(m)), top);

    let sorted = header_of(m.sort_key());
    let header = TableRow::new(HEADERS.iter().map(|h| {
        let style = Style::default().add_modifier(Modifier::BOLD);
        let style = if *h == sorted {
            style.add_modifier(Modifier::UNDERLINED).fg(Color::Yellow)
        } else {
            style
        };
        Cell::from(*h).style(style)
    }));
    let rows: Vec<TableRow<'_>> = m
        .rows()
        .iter()
        .map(|r| TableRow::new(cells(r).map(Cell::from)))
        .collect();
    let widths = [
        Constraint::Length(24),
        Constraint::Length(10),
        Constraint::Length(5),
        Constraint::Length(5),
        Constraint::Length(5),
        Constraint::Length(6),
        Constraint::Length(8),
        Constraint::Length(8),
        Constraint::Length(8),
        Constraint::Length(8),
        Constraint::Length(5),
        Constraint::Length(13),
        Constraint::Min(12),
    ];
    f.render_widget(
        Table::new(rows, widths)
            .header(header)
            .block(Block::bordered()),
        table,
    );
    let line = match &m.error {
        Some(e) => Line::styled(
            format!("update failed: {e}"),
            Style::default().fg(Color::Red),
        ),
        None if m.current.is_none() => Line::raw("waiting for the master..."),
        None => Line::raw("updated every second"),
    };
    f.render_widget(Paragraph::new(line), status);
    f.render_widget(Paragraph::new(keys()), help);
}

#[cfg(test)]
mod tests {
    use super::*;
    use corral_metrics::{PoolSnapshot, Snapshot};
    use ratatui::backend::TestBackend;
    use ratatui::Terminal;

    fn screen(m: &Model) -> String {
        let mut t = Terminal::new(TestBackend::new(160, 12)).unwrap();
        t.draw(|f| draw(f, m)).unwrap();
        let buf = t.backend().buffer().clone();
        let mut out = String::new();
        for y in 0..buf.area.height {
            for x in 0..buf.area.width {
                out.push_str(buf[(x, y)].symbol());
            }
            out.push('\n');
        }
        out
    }

    #[test]
    fn a_frame_shows_every_pool_and_the_keys() {
        let mut m = Model::default();
        m.update(Snapshot {
            version: "9.9".into(),
            pools: ["alpha", "beta"]
                .iter()
                .map(|n| PoolSnapshot {
                    name: n.to_string(),
                    max_children: 4,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        });
        let s = screen(&m);
        assert!(s.contains("alpha") && s.contains("beta"), "{s}");
        assert!(s.contains("corral 9.9") && s.contains("q quit"), "{s}");
        assert!(s.find("alpha") < s.find("beta"));
        m.failed("no master".into());
        assert!(screen(&m).contains("update failed: no master"));
    }

    #[test]
    fn sizes_and_times_read_short() {
        assert_eq!(bytes(Some(512)), "512B");
        assert_eq!(bytes(Some(3 << 20)), "3.0M");
        assert_eq!(bytes(None), "-");
        assert_eq!(seconds(Some(0.0123)), "12.3ms");
        assert_eq!(seconds(Some(2.5)), "2.50s");
    }
}
