//! `msee-cli top`: a live view of the daemon refreshed every second, for
//! someone rehearsing a failover: per link, whether it carries and its rates
//! in and out; drops by reason; the BGP and BFD sessions. It reads the
//! snapshot the metrics endpoint publishes (`Request::Snapshot`); rates are
//! the differences of two snapshots over their time apart.
use std::{collections::BTreeMap, path::Path, time::Duration};

use anyhow::Result;
use ratatui::{
    Frame,
    layout::{Constraint, Layout},
    style::{Color, Modifier, Style},
    text::Line,
    widgets::{Block, Cell, Paragraph, Row, Table},
};

use crate::{
    api::{self, Request},
    metrics::snapshot::{LinkSample, Snapshot},
};

/// The last two snapshots: rates come from their difference.
#[derive(Default)]
pub struct Top {
    prev: Option<Snapshot>,
    cur: Option<Snapshot>,
    pub error: Option<String>,
}

/// A link's rates between two snapshots.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Rates {
    pub in_bps: f64,
    pub out_bps: f64,
    pub in_pps: f64,
    pub out_pps: f64,
    /// Drops per second by reason, both directions.
    pub drops: BTreeMap<String, f64>,
}

/// A name column as wide as its longest name (names are never cut).
fn name_width<'a>(names: impl Iterator<Item = &'a str>) -> u16 {
    names.map(|n| n.chars().count()).max().unwrap_or(4).max(11) as u16
}

fn si(v: f64, unit: &str) -> String {
    let (d, p) = if v >= 1e9 {
        (1e9, "G")
    } else if v >= 1e6 {
        (1e6, "M")
    } else if v >= 1e3 {
        (1e3, "k")
    } else {
        (1.0, "")
    };
    format!("{:.1} {p}{unit}", v / d)
}

impl Top {
    pub fn push(&mut self, s: Snapshot) {
        // The same snapshot twice (asked within one tick) gives no rate.
        if self
            .cur
            .as_ref()
            .is_some_and(|c| c.at_unix_ms == s.at_unix_ms)
        {
            return;
        }
        self.prev = self.cur.take();
        self.cur = Some(s);
        self.error = None;
    }

    pub fn rates(&self, link: &LinkSample) -> Option<Rates> {
        let (prev, cur) = (self.prev.as_ref()?, self.cur.as_ref()?);
        let p = prev.links.iter().find(|l| l.name == link.name)?;
        let dt = cur.at_unix_ms.checked_sub(prev.at_unix_ms)? as f64 / 1e3;
        if dt <= 0.0 {
            return None;
        }
        let d = |a: u64, b: u64| a.saturating_sub(b) as f64 / dt;
        let both = |l: &LinkSample, reason: &str| {
            l.rx.drops.get(reason).copied().unwrap_or(0)
                + l.tx.drops.get(reason).copied().unwrap_or(0)
        };
        let drops = link
            .rx
            .drops
            .keys()
            .chain(link.tx.drops.keys())
            .map(|reason| (reason.clone(), d(both(link, reason), both(p, reason))))
            .collect();
        Some(Rates {
            in_bps: 8.0 * d(link.rx.bytes, p.rx.bytes),
            out_bps: 8.0 * d(link.tx.bytes, p.tx.bytes),
            in_pps: d(link.rx.packets, p.rx.packets),
            out_pps: d(link.tx.packets, p.tx.packets),
            drops,
        })
    }

    /// Draws the whole view into `f`.
    pub fn draw(&self, f: &mut Frame) {
        let area = f.area();
        let Some(s) = &self.cur else {
            f.render_widget(
                Paragraph::new(
                    self.error
                        .clone()
                        .unwrap_or_else(|| "waiting for the daemon...".into()),
                ),
                area,
            );
            return;
        };
        let [title, links, sessions, bfd] = Layout::vertical([
            Constraint::Length(1),
            Constraint::Length(s.links.len() as u16 + 3),
            Constraint::Length(s.sessions.len() as u16 + 3),
            Constraint::Min(3),
        ])
        .areas(area);
        let when = crate::usage::rfc3339(s.at_unix_ms);
        let status = match &self.error {
            Some(e) => format!("msee top  {when}  (stale: {e})  q: quit"),
            None => format!("msee top  {when}  q: quit"),
        };
        f.render_widget(
            Line::from(status).style(Style::new().add_modifier(Modifier::BOLD)),
            title,
        );

        let bold = Style::new().add_modifier(Modifier::BOLD);
        let rows: Vec<Row> = s
            .links
            .iter()
            .map(|l| {
                let r = self.rates(l);
                let cell = |v: Option<String>| Cell::from(v.unwrap_or_else(|| "-".into()));
                let drops = r
                    .as_ref()
                    .map(|r| {
                        let v: Vec<String> = r
                            .drops
                            .iter()
                            .filter(|(_, n)| **n > 0.0)
                            .map(|(k, n)| format!("{k} {n:.0}/s"))
                            .collect();
                        if v.is_empty() {
                            "-".to_owned()
                        } else {
                            v.join(" ")
                        }
                    })
                    .unwrap_or_else(|| "-".into());
                let carries = if l.carries {
                    Cell::from("yes").style(Style::new().fg(Color::Green))
                } else {
                    Cell::from("NO").style(Style::new().fg(Color::Red).add_modifier(Modifier::BOLD))
                };
                Row::new(vec![
                    Cell::from(l.name.clone()),
                    carries,
                    cell(r.as_ref().map(|r| si(r.in_bps, "bit/s"))),
                    cell(r.as_ref().map(|r| si(r.out_bps, "bit/s"))),
                    cell(r.as_ref().map(|r| format!("{:.0}", r.in_pps))),
                    cell(r.as_ref().map(|r| format!("{:.0}", r.out_pps))),
                    Cell::from(drops),
                ])
            })
            .collect();
        f.render_widget(
            Table::new(
                rows,
                [
                    Constraint::Length(name_width(s.links.iter().map(|l| l.name.as_str()))),
                    Constraint::Length(7),
                    Constraint::Length(14),
                    Constraint::Length(14),
                    Constraint::Length(9),
                    Constraint::Length(9),
                    Constraint::Fill(1),
                ],
            )
            .header(
                Row::new(["link", "carries", "in", "out", "in pps", "out pps", "drops"])
                    .style(bold),
            )
            .block(Block::bordered().title("links")),
            links,
        );

        let rows: Vec<Row> = s
            .sessions
            .iter()
            .map(|x| {
                let state = if x.established {
                    Cell::from("Established").style(Style::new().fg(Color::Green))
                } else {
                    Cell::from("Down")
                        .style(Style::new().fg(Color::Red).add_modifier(Modifier::BOLD))
                };
                Row::new(vec![
                    Cell::from(x.name.clone()),
                    Cell::from(x.peer.clone()),
                    state,
                    Cell::from(x.prefixes_accepted.to_string()),
                    Cell::from(x.prefixes_advertised.to_string()),
                    Cell::from(x.flaps.to_string()),
                ])
            })
            .collect();
        f.render_widget(
            Table::new(
                rows,
                [
                    Constraint::Length(name_width(s.sessions.iter().map(|x| x.name.as_str()))),
                    Constraint::Length(24),
                    Constraint::Length(12),
                    Constraint::Length(9),
                    Constraint::Length(11),
                    Constraint::Length(6),
                ],
            )
            .header(
                Row::new([
                    "BGP session",
                    "peer",
                    "state",
                    "received",
                    "advertised",
                    "flaps",
                ])
                .style(bold),
            )
            .block(Block::bordered().title("BGP")),
            sessions,
        );

        let rows: Vec<Row> = s
            .bfd
            .iter()
            .map(|b| {
                let state = if b.state == "Up" {
                    Cell::from("Up").style(Style::new().fg(Color::Green))
                } else {
                    Cell::from(b.state.clone())
                        .style(Style::new().fg(Color::Red).add_modifier(Modifier::BOLD))
                };
                Row::new(vec![
                    Cell::from(b.name.clone()),
                    Cell::from(b.peer.clone()),
                    state,
                    Cell::from(
                        b.detection_time_us
                            .map_or("-".to_owned(), |us| format!("{:.0} ms", us as f64 / 1e3)),
                    ),
                ])
            })
            .collect();
        f.render_widget(
            Table::new(
                rows,
                [
                    Constraint::Length(name_width(s.bfd.iter().map(|b| b.name.as_str()))),
                    Constraint::Length(24),
                    Constraint::Length(10),
                    Constraint::Length(10),
                ],
            )
            .header(Row::new(["BFD session", "peer", "state", "detect"]).style(bold))
            .block(Block::bordered().title("BFD")),
            bfd,
        );
    }

    fn refresh(&mut self, socket: &Path) {
        match api::query_as::<Snapshot>(socket, &Request::Snapshot, Duration::from_secs(2)) {
            Ok(s) => self.push(s),
            Err(e) => self.error = Some(format!("{e:#}")),
        }
    }
}

/// The view as text, `width` x `height` cells (`--once`, and tests).
pub fn render_text(top: &Top, width: u16, height: u16) -> String {
    let backend = ratatui::backend::TestBackend::new(width, height);
    let mut terminal = ratatui::Terminal::new(backend).expect("a test backend");
    terminal.draw(|f| top.draw(f)).expect("drawing into memory");
    let buf = terminal.backend().buffer();
    let mut out = String::new();
    for y in 0..buf.area.height {
        let mut line = String::new();
        for x in 0..buf.area.width {
            line += buf[(x, y)].symbol();
        }
        out += line.trim_end();
        out.push('\n');
    }
    out
}

/// `--once`: two snapshots `interval` apart, drawn once, as text.
pub fn once(socket: &Path, interval: Duration) -> Result<String> {
    let mut top = Top::default();
    top.push(api::query_as(
        socket,
        &Request::Snapshot,
        Duration::from_secs(2),
    )?);
    std::thread::sleep(interval);
    top.push(api::query_as(
        socket,
        &Request::Snapshot,
        Duration::from_secs(2),
    )?);
    // The terminal's width when there is one; wide enough for any
    // table otherwise (a file, a pipe): 132 columns.
    use std::io::IsTerminal as _;
    let w = if std::io::stdout().is_terminal() {
        ratatui::crossterm::terminal::size().map_or(160, |(w, _)| w.max(100))
    } else {
        132
    };
    // As tall as its tables: a title line, each table's rows, header and borders.
    let h = top.cur.as_ref().map_or(3, |s| {
        1 + (s.links.len() + s.sessions.len() + s.bfd.len()) as u16 + 9
    });
    Ok(render_text(&top, w, h))
}

/// The live view, until q, Esc or Ctrl-C.
pub fn run(socket: &Path, interval: Duration) -> Result<()> {
    use ratatui::crossterm::event::{self, Event, KeyCode, KeyModifiers};
    let mut terminal = ratatui::init();
    let mut top = Top::default();
    let result = (|| -> Result<()> {
        loop {
            top.refresh(socket);
            terminal.draw(|f| top.draw(f))?;
            let until = std::time::Instant::now() + interval;
            while let Some(left) = until.checked_duration_since(std::time::Instant::now()) {
                if event::poll(left)?
                    && let Event::Key(k) = event::read()?
                    && (matches!(k.code, KeyCode::Char('q') | KeyCode::Esc)
                        || (k.code == KeyCode::Char('c')
                            && k.modifiers.contains(KeyModifiers::CONTROL)))
                {
                    return Ok(());
                }
            }
        }
    })();
    ratatui::restore();
    result
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::metrics::snapshot::*;

    fn snap(at_ms: u64, bytes_in: u64, policer: u64, carries: bool, established: bool) -> Snapshot {
        let link = |name: &str, bytes: u64, carries: bool| LinkSample {
            name: name.into(),
            ifname: "x".into(),
            circuit: "er-lab".into(),
            peering: "AzurePrivatePeering".into(),
            role: "primary".into(),
            carries,
            rx: DirCounters {
                packets: bytes / 100,
                bytes,
                drops: BTreeMap::from([("policer".to_owned(), policer)]),
            },
            tx: DirCounters::default(),
            ..Default::default()
        };
        Snapshot {
            at_unix_ms: at_ms,
            links: vec![
                link("er-lab/AzurePrivatePeering/primary", bytes_in, carries),
                link("er-lab/AzurePrivatePeering/secondary", 0, true),
            ],
            sessions: vec![SessionSample {
                name: "er-lab/AzurePrivatePeering/primary".into(),
                peer: "192.168.100.129".into(),
                established,
                prefixes_accepted: 3,
                ..Default::default()
            }],
            bfd: vec![BfdSample {
                name: "er-lab/primary".into(),
                peer: "192.168.100.129".into(),
                state: if established { "Up" } else { "Down" }.into(),
                detection_time_us: Some(900_000),
                ..Default::default()
            }],
            daemon: Default::default(),
        }
    }

    #[test]
    fn the_view_shows_rates_drops_and_states() {
        let mut top = Top::default();
        top.push(snap(1_000, 0, 0, true, true));
        // Before a second snapshot there is no rate.
        assert!(render_text(&top, 140, 20).contains("er-lab/AzurePrivatePeering/primary"));
        // 1 s later: 1,250,000 bytes in (10 Mbit/s), 50 policer drops.
        top.push(snap(2_000, 1_250_000, 50, false, false));
        let r = top.rates(&top.cur.clone().unwrap().links[0]).unwrap();
        assert_eq!(r.in_bps, 10e6);
        assert_eq!(r.in_pps, 12_500.0);
        let text = render_text(&top, 140, 20);
        let primary = text
            .lines()
            .find(|l| l.contains("er-lab/AzurePrivatePeering/primary") && l.contains("bit/s"))
            .unwrap_or_else(|| panic!("no primary row in\n{text}"));
        assert!(
            primary.contains("NO") && primary.contains("10.0 Mbit/s") && primary.contains("12500"),
            "{primary}"
        );
        assert!(primary.contains("policer 50/s"), "{primary}");
        assert!(
            text.contains("BGP session") && text.contains("Down"),
            "{text}"
        );
        assert!(
            text.contains("er-lab/primary") && text.contains("900 ms"),
            "{text}"
        );
    }
}
