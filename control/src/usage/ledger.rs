//! Bytes and packets per link and direction, per UTC day, kept across
//! restarts in `usage.json`.
//!
//! The dataplane's counters are raw running totals. Each sample becomes an
//! increment against the last raw value seen of the same counter, its
//! *mark*, kept per counter *source* (boot id, counters map id, link id:
//! which counter it is, whichever link name reads it):
//!
//! - a mark, raw at or above it: the increment is the difference (a daemon
//!   that adopted the pinned counters goes on where the last one was);
//! - a mark, raw below it: the counter was zeroed; the increment is the raw
//!   value (a new segment from zero);
//! - no mark (new maps, a reboot): likewise, from zero.
//!
//! Keyed by source, not by link name, a link id a reload hands to another
//! link cannot charge the first link's traffic to the second. The daemon
//! zeroes a link's counters itself when it installs the link; it samples
//! just before ([`Ledger::before_reset`]), so nothing counted before the
//! reset is lost either. Increments and marks are saved together, in one
//! file written atomically: a crash loses at most the traffic since the
//! last save of counters that did not survive it, and never counts
//! anything twice.
use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

use anyhow::{Context as _, Result};
use serde::{Deserialize, Serialize};

/// Packets and bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Raw {
    pub packets: u64,
    pub bytes: u64,
}

/// A link's traffic over some time: `rx` into the MSEE, `tx` out of it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    pub rx: Raw,
    pub tx: Raw,
}

impl Totals {
    pub fn add(&mut self, o: &Totals) {
        self.rx.packets += o.rx.packets;
        self.rx.bytes += o.rx.bytes;
        self.tx.packets += o.tx.packets;
        self.tx.bytes += o.tx.bytes;
    }
}

/// What a link is, for the reports (a link keeps its name across restarts).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkMeta {
    pub circuit: String,
    pub peering: String,
    /// primary, secondary, or the role of an Azure-side port.
    pub role: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Mark {
    rx: Raw,
    tx: Raw,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
struct LedgerFile {
    version: u32,
    /// When the daemon last saved this file (Unix ms): how long it was
    /// last seen running, if it stopped without saying so.
    #[serde(default)]
    saved_at_ms: u64,
    links: BTreeMap<String, LinkMeta>,
    /// Per counter source: its last raw value.
    marks: BTreeMap<String, Mark>,
    /// UTC day -> link -> traffic that day.
    days: BTreeMap<String, BTreeMap<String, Totals>>,
}

const VERSION: u32 = 1;

pub struct Ledger {
    path: PathBuf,
    file: LedgerFile,
    dirty: bool,
    /// What went wrong reading it, if anything (the reports repeat it).
    pub note: Option<String>,
}

/// The increment from `mark` to `raw` of one counter.
fn step(mark: u64, raw: u64) -> u64 {
    if raw >= mark { raw - mark } else { raw }
}

impl Ledger {
    /// Reads `path`, or starts an empty ledger where there is none. A file
    /// that does not parse is set aside and reported in `note`; the ledger
    /// then starts empty.
    pub fn open(path: &Path) -> Self {
        let (file, note) = super::read_state(path, |b| {
            let f: LedgerFile = serde_json::from_slice(b).map_err(|e| e.to_string())?;
            if f.version != VERSION {
                return Err(format!(
                    "version {}, this daemon writes {VERSION}",
                    f.version
                ));
            }
            Ok(f)
        });
        Self {
            path: path.to_owned(),
            file: file.unwrap_or(LedgerFile {
                version: VERSION,
                ..Default::default()
            }),
            dirty: false,
            note,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// When the file was last saved (Unix ms; 0: never).
    pub fn saved_at_ms(&self) -> u64 {
        self.file.saved_at_ms
    }

    /// One sample of `link`'s raw counters from `source` at `unix_ms`.
    pub fn observe(
        &mut self,
        link: &str,
        meta: &LinkMeta,
        source: &str,
        now: Totals,
        unix_ms: u64,
    ) {
        if self.file.links.get(link) != Some(meta) {
            self.file.links.insert(link.to_owned(), meta.clone());
            self.dirty = true;
        }
        let zero = Mark::default();
        let mark = self.file.marks.get(source).unwrap_or(&zero);
        let inc = Totals {
            rx: Raw {
                packets: step(mark.rx.packets, now.rx.packets),
                bytes: step(mark.rx.bytes, now.rx.bytes),
            },
            tx: Raw {
                packets: step(mark.tx.packets, now.tx.packets),
                bytes: step(mark.tx.bytes, now.tx.bytes),
            },
        };
        let new_mark = Mark {
            rx: now.rx,
            tx: now.tx,
        };
        if inc != Totals::default() {
            self.file
                .days
                .entry(super::utc_day(unix_ms))
                .or_default()
                .entry(link.to_owned())
                .or_default()
                .add(&inc);
            self.dirty = true;
        }
        if self.file.marks.get(source) != Some(&new_mark) {
            self.file.marks.insert(source.to_owned(), new_mark);
            self.dirty = true;
        }
    }

    /// Forgets the marks of sources that cannot come back: those not
    /// starting with `prefix` (another boot, or maps made anew).
    pub fn keep_sources(&mut self, prefix: &str) {
        let before = self.file.marks.len();
        self.file.marks.retain(|s, _| s.starts_with(prefix));
        if self.file.marks.len() != before {
            self.dirty = true;
        }
    }

    /// The daemon is about to zero `link`'s counters (of `source`), whose
    /// values are `now`: they are counted, and the next sample counts from
    /// zero.
    pub fn before_reset(
        &mut self,
        link: &str,
        meta: &LinkMeta,
        source: &str,
        now: Totals,
        unix_ms: u64,
    ) {
        self.observe(link, meta, source, now, unix_ms);
        self.observe(link, meta, source, Totals::default(), unix_ms);
    }

    /// Writes the ledger if it changed (atomically).
    pub fn save(&mut self, unix_ms: u64) -> Result<()> {
        if !self.dirty {
            return Ok(());
        }
        self.file.saved_at_ms = unix_ms;
        let bytes = serde_json::to_vec(&self.file).context("encoding the usage ledger")?;
        crate::state_dir::write_atomically(&self.path, &bytes)?;
        self.dirty = false;
        Ok(())
    }

    /// Marks the ledger changed (the next save writes it, with its time).
    pub fn touch(&mut self) {
        self.dirty = true;
    }

    /// Each link's traffic over the UTC days from `from` to `to`
    /// (inclusive; `None`: unbounded), with what the link is.
    pub fn totals(
        &self,
        from: Option<&str>,
        to: Option<&str>,
    ) -> BTreeMap<String, (LinkMeta, Totals)> {
        let mut out: BTreeMap<String, (LinkMeta, Totals)> = BTreeMap::new();
        for (day, links) in &self.file.days {
            if from.is_some_and(|f| day.as_str() < f) || to.is_some_and(|t| day.as_str() > t) {
                continue;
            }
            for (link, t) in links {
                let meta = self.file.links.get(link).cloned().unwrap_or_default();
                out.entry(link.clone())
                    .or_insert((meta, Totals::default()))
                    .1
                    .add(t);
            }
        }
        out
    }

    /// The first and last UTC day with traffic on record.
    pub fn days(&self) -> Option<(String, String)> {
        Some((
            self.file.days.keys().next()?.clone(),
            self.file.days.keys().next_back()?.clone(),
        ))
    }
}
