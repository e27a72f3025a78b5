//! The links' and the daemon's history, one JSON event per line in
//! `history.jsonl`, appended as things happen: what the availability
//! report is computed from.
use std::{
    io::Write as _,
    path::{Path, PathBuf},
};

use anyhow::{Context as _, Result};
use serde::{Deserialize, Serialize};

/// One line of the history.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// The daemon started: every link's state is unknown until its first
    /// flip after this.
    Start { at_ms: u64 },
    /// The daemon stopped: nothing is known until the next start.
    /// `clean: false`: it was not seen stopping (killed, crashed, the
    /// machine stopped); `at_ms` is then when it was last seen running.
    Stop { at_ms: u64, clean: bool },
    /// A link started or stopped carrying traffic.
    Flip {
        at_ms: u64,
        circuit: String,
        peering: String,
        role: String,
        up: bool,
        /// The signal change, e.g. "BFD down", "carrier lost", "BGP established".
        cause: String,
    },
    /// A maintenance drain of a link began or ended.
    Drain {
        at_ms: u64,
        circuit: String,
        peering: String,
        role: String,
        drained: bool,
    },
}

impl Event {
    pub fn at_ms(&self) -> u64 {
        match self {
            Event::Start { at_ms }
            | Event::Stop { at_ms, .. }
            | Event::Flip { at_ms, .. }
            | Event::Drain { at_ms, .. } => *at_ms,
        }
    }
}

pub struct History {
    path: PathBuf,
    /// Every event on record, in order (the file is only appended to).
    events: Vec<Event>,
    /// What went wrong reading it, if anything (the reports repeat it).
    pub note: Option<String>,
}

impl History {
    /// Reads `path`. Lines that do not parse (a crash mid-line, an edit by
    /// hand) are reported in `note`: the file is set aside whole and the
    /// lines that did parse are written to a new one, so the history keeps
    /// what it can.
    pub fn open(path: &Path) -> Self {
        let mut h = Self {
            path: path.to_owned(),
            events: Vec::new(),
            note: None,
        };
        let text = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return h,
            Err(e) => {
                h.note = Some(format!("{}: {e}", path.display()));
                return h;
            }
        };
        let mut bad = Vec::new();
        // Line by line, as bytes: a line of garbage is one bad line.
        for (i, line) in text.split(|b| *b == b'\n').enumerate() {
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            match serde_json::from_slice::<Event>(line) {
                Ok(e) => h.events.push(e),
                Err(_) => bad.push(i + 1),
            }
        }
        if !bad.is_empty() {
            let lines: Vec<String> = bad.iter().take(5).map(ToString::to_string).collect();
            let why = format!(
                "{} unreadable line{} ({}{})",
                bad.len(),
                if bad.len() == 1 { "" } else { "s" },
                lines.join(", "),
                if bad.len() > 5 { ", ..." } else { "" }
            );
            let mut note = super::aside_note(path, &why);
            if let Err(e) = h.rewrite() {
                note += &format!("; its readable events could not be kept: {e:#}");
            } else {
                note += &format!("; its {} readable events kept", h.events.len());
            }
            h.note = Some(note);
        }
        h
    }

    fn rewrite(&self) -> Result<()> {
        let mut text = String::new();
        for e in &self.events {
            text += &serde_json::to_string(e)?;
            text.push('\n');
        }
        crate::state_dir::write_atomically(&self.path, text.as_bytes())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one event (one line, one `write`). Kept in memory even when
    /// the file cannot be written.
    pub fn append(&mut self, event: Event) -> Result<()> {
        let mut line = serde_json::to_string(&event).context("encoding a history event")?;
        line.push('\n');
        self.events.push(event);
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .and_then(|mut f| f.write_all(line.as_bytes()))
            .with_context(|| format!("appending to {}", self.path.display()))
    }

    /// Every event on record, in order.
    pub fn events(&self) -> &[Event] {
        &self.events
    }
}
