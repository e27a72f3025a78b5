//! What the daemon keeps for the usage and availability reports
//! (`crate::usage`), kept up to date from the main loop's tick
//! ([`Daemon::ops_persist`]), before a link's counters are zeroed or the
//! link removed, and once more as the daemon stops ([`Daemon::ops_stopping`]):
//! each link's counters into the ledger, each link's flips (from
//! `LinkHealth`'s history) and drains into the history. Nothing here
//! stops forwarding: a file that cannot be written is logged, reported in
//! the reports, and written again at the next tick.
use std::collections::BTreeMap;

use msee_abi::Direction;
use tracing::{info, warn};

use super::{link_place, unix_ms};
use crate::{
    daemon::Daemon,
    estate::{LinkSpec, Side},
    usage::{
        self,
        history::{Event, History},
        ledger::{Ledger, LinkMeta, Raw, Totals},
        report::{AvailabilityView, UsageView},
    },
};

/// The ledger and the history, opened at the daemon's start.
#[derive(Default)]
pub(in crate::daemon) struct Persist {
    ledger: Option<Ledger>,
    history: Option<History>,
    /// This boot's id (`/proc/sys/kernel/random/boot_id`).
    boot: String,
    /// The counters map's kernel id.
    map_id: u32,
    /// Per link id: flips of `LinkHealth` already in the history.
    flips_seen: BTreeMap<u32, u64>,
    /// Per link id: drained or not, as last recorded.
    drained: BTreeMap<u32, bool>,
    /// The last failure to write, if the last write failed.
    write_error: Option<String>,
    /// When the ledger was last written (Unix ms).
    saved_ms: u64,
    /// Per link id: when this daemon first saw it (Unix ms), and whether
    /// it was recorded down for never having come up.
    first_seen: BTreeMap<u32, (u64, bool)>,
}

/// The ledger is written this often (and as the daemon stops): the marks
/// and totals go together, so a crash loses at most this much of counters
/// that do not survive it, and never counts anything twice.
const SAVE_EVERY_MS: u64 = 10_000;

/// A link that has not carried since the daemon started (or added it) for
/// this long is recorded down, with the signal that holds it.
const NEVER_UP_MS: u64 = 60_000;

/// The signal that holds a link down (the first of carrier, neighbour,
/// BGP, BFD that does).
fn holding_signal(v: &crate::health::LinkView) -> &'static str {
    if !v.carrier {
        "carrier lost"
    } else if !v.neighbour {
        "neighbour unresolved"
    } else if v.bgp == Some(false) {
        "BGP down"
    } else if v.bfd == Some(false) {
        "BFD down"
    } else {
        "down"
    }
}

fn meta(spec: &LinkSpec) -> LinkMeta {
    let (circuit, peering, role) = link_place(spec);
    LinkMeta {
        circuit,
        peering,
        role,
    }
}

impl Persist {
    fn source(&self, link: u32) -> String {
        format!("{}/{}/{link}", self.boot, self.map_id)
    }

    /// What went wrong with the files, for the reports.
    fn notes(&self) -> Vec<String> {
        let mut notes: Vec<String> = [
            self.ledger.as_ref().and_then(|l| l.note.clone()),
            self.history.as_ref().and_then(|h| h.note.clone()),
            self.write_error.clone(),
        ]
        .into_iter()
        .flatten()
        .collect();
        notes.dedup();
        notes
    }
}

impl Daemon {
    /// At start (once: the first install of a link, or after the start):
    /// opens the ledger and the history (a file that cannot be read is set
    /// aside and reported), and records the start, after the stop of the
    /// last run if it was not seen stopping.
    pub(in crate::daemon) fn ops_open_state(&mut self, started_ms: u64) {
        if self.ops.persist.ledger.is_some() {
            return;
        }
        let p = &mut self.ops.persist;
        p.boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
            .map(|s| s.trim().to_owned())
            .unwrap_or_else(|_| "unknown-boot".to_owned());
        p.map_id = self.msee.counters_map_id().unwrap_or_else(|e| {
            warn!("the counters map's id: {e}");
            0
        });
        let mut ledger = Ledger::open(&self.state.path("usage.json"));
        // Marks of counters of another boot or of maps made anew are of
        // no use, and would be wrong should a map id come again.
        ledger.keep_sources(&format!("{}/{}/", p.boot, p.map_id));
        let mut history = History::open(&self.state.path("history.jsonl"));
        for note in [&ledger.note, &history.note].into_iter().flatten() {
            warn!("state directory: {note}");
        }
        let last_seen = ledger.saved_at_ms();
        let stopped = history
            .events()
            .last()
            .is_none_or(|e| matches!(e, Event::Stop { .. }));
        if !stopped {
            let last = history.events().last().map_or(0, Event::at_ms);
            let at_ms = last_seen.max(last).min(started_ms);
            warn!(
                last_seen = %usage::rfc3339(at_ms),
                "the last daemon of this state directory was not seen stopping"
            );
            append(
                &mut history,
                &mut p.write_error,
                Event::Stop {
                    at_ms,
                    clean: false,
                },
            );
        }
        append(
            &mut history,
            &mut p.write_error,
            Event::Start { at_ms: started_ms },
        );
        p.ledger = Some(ledger);
        p.history = Some(history);
        info!(
            usage = %self.state.path("usage.json").display(),
            history = %self.state.path("history.jsonl").display(),
            "usage and link history kept in the state directory"
        );
    }

    /// Each tick: counters into the ledger, flips and drains into the
    /// history; the ledger saved if it changed.
    pub(in crate::daemon) fn ops_persist(&mut self) {
        self.capture_tick();
        if self.ops.persist.ledger.is_none() {
            return;
        }
        let now = unix_ms();
        let specs: Vec<LinkSpec> = self.links.by_id.values().map(|l| l.spec.clone()).collect();
        for spec in &specs {
            self.ops_sample_link(spec, now);
        }
        self.ops_record_history(now);
        let p = &mut self.ops.persist;
        if now.saturating_sub(p.saved_ms) < SAVE_EVERY_MS {
            return;
        }
        let ledger = p.ledger.as_mut().expect("checked");
        // Written even when nothing changed: its time says until when this
        // daemon was seen running, should it stop without saying so.
        ledger.touch();
        match ledger.save(now) {
            Ok(()) => {
                p.saved_ms = now;
                if p.write_error.take().is_some() {
                    info!("{} written again", ledger.path().display());
                }
            }
            Err(e) => {
                let e = format!("{e:#}");
                if p.write_error.as_ref() != Some(&e) {
                    warn!("usage ledger not saved (retried every 10 s): {e}");
                }
                p.write_error = Some(e);
            }
        }
    }

    /// As the daemon stops: the last figures, and the stop.
    pub(in crate::daemon) fn ops_stopping(&mut self) {
        self.ops_persist();
        let now = unix_ms();
        let p = &mut self.ops.persist;
        if let Some(h) = p.history.as_mut() {
            append(
                h,
                &mut p.write_error,
                Event::Stop {
                    at_ms: now,
                    clean: true,
                },
            );
        }
        if let Some(l) = p.ledger.as_mut() {
            l.touch();
            if let Err(e) = l.save(now) {
                warn!("usage ledger not saved at stop: {e:#}");
            }
        }
    }

    fn raw_totals(&self, id: u32) -> Option<Totals> {
        let read = |dir| {
            self.msee
                .link_counters(id, dir)
                .map(|c| Raw {
                    packets: c.packets,
                    bytes: c.bytes,
                })
                .ok()
        };
        Some(Totals {
            rx: read(Direction::Rx)?,
            tx: read(Direction::Tx)?,
        })
    }

    /// One sample of a link's counters into the ledger.
    pub(in crate::daemon) fn ops_sample_link(&mut self, spec: &LinkSpec, now_ms: u64) {
        let Some(raw) = self.raw_totals(spec.id) else {
            return;
        };
        let source = self.ops.persist.source(spec.id);
        if let Some(l) = self.ops.persist.ledger.as_mut() {
            l.observe(&spec.name, &meta(spec), &source, raw, now_ms);
        }
    }

    /// The daemon is about to zero `spec`'s counters (it installs the
    /// link): what they hold is counted first, and the next sample counts
    /// from zero.
    pub(in crate::daemon) fn ops_before_counter_reset(&mut self, spec: &LinkSpec) {
        self.ops_open_state(self.ops.started_ms);
        let Some(raw) = self.raw_totals(spec.id) else {
            return;
        };
        let source = self.ops.persist.source(spec.id);
        if let Some(l) = self.ops.persist.ledger.as_mut() {
            l.before_reset(&spec.name, &meta(spec), &source, raw, unix_ms());
        }
    }

    /// New flips of each link (from `LinkHealth`'s bounded history, timed
    /// on CLOCK_MONOTONIC) and drains, into the history, oldest first.
    fn ops_record_history(&mut self, now_ms: u64) {
        let mono_now = msee_sys::monotonic_ns();
        let mut events: Vec<Event> = Vec::new();
        for view in self.health.view() {
            let Some(rt) = self.links.by_id.get(&view.link) else {
                continue;
            };
            let m = meta(&rt.spec);
            let seen = self
                .ops
                .persist
                .flips_seen
                .get(&view.link)
                .copied()
                .unwrap_or(0);
            // A link made anew (a reload) counts its flips from zero.
            let seen_before = if view.flips < seen { 0 } else { seen };
            let new = (view.flips - seen_before) as usize;
            let new_here = !self.ops.persist.first_seen.contains_key(&view.link);
            let first = self
                .ops
                .persist
                .first_seen
                .entry(view.link)
                .or_insert((now_ms, false));
            // A link that carries without having flipped was adopted from
            // the previous daemon (a restart without loss): it is known to
            // carry from now on.
            if new_here && view.flips == 0 && view.carries {
                events.push(Event::Flip {
                    at_ms: now_ms,
                    circuit: m.circuit.clone(),
                    peering: m.peering.clone(),
                    role: m.role.clone(),
                    up: true,
                    cause: "carrying at the start (adopted)".to_owned(),
                });
            }
            if view.flips == 0
                && !view.carries
                && !first.1
                && now_ms.saturating_sub(first.0) >= NEVER_UP_MS
            {
                first.1 = true;
                events.push(Event::Flip {
                    at_ms: now_ms,
                    circuit: m.circuit.clone(),
                    peering: m.peering.clone(),
                    role: m.role.clone(),
                    up: false,
                    cause: format!("{} (not up since the start)", holding_signal(&view)),
                });
            }
            if new > view.history.len() {
                warn!(link = %view.name, lost = new - view.history.len(),
                    "more flips in a second than the link keeps: the oldest are not in the history");
            }
            self.ops.persist.flips_seen.insert(view.link, view.flips);
            for f in view.history.iter().take(new).rev() {
                let ago_ms = mono_now.saturating_sub(f.at_mono_ns) / 1_000_000;
                events.push(Event::Flip {
                    at_ms: now_ms.saturating_sub(ago_ms),
                    circuit: m.circuit.clone(),
                    peering: m.peering.clone(),
                    role: m.role.clone(),
                    up: f.up,
                    cause: f.cause.to_owned(),
                });
            }
        }
        for rt in self.links.by_id.values() {
            let Side::Customer {
                circuit, peering, ..
            } = &rt.spec.side
            else {
                continue;
            };
            let drained = self
                .routing
                .peering_rib(&(circuit.clone(), *peering))
                .is_some_and(|r| r.is_drained(rt.spec.id));
            let was = self.ops.persist.drained.insert(rt.spec.id, drained);
            if was.unwrap_or(false) != drained {
                let m = meta(&rt.spec);
                events.push(Event::Drain {
                    at_ms: now_ms,
                    circuit: m.circuit,
                    peering: m.peering,
                    role: m.role,
                    drained,
                });
            }
        }
        events.sort_by_key(Event::at_ms);
        let p = &mut self.ops.persist;
        if let Some(h) = p.history.as_mut() {
            for e in events {
                append(h, &mut p.write_error, e);
            }
        }
    }

    /// The circuit's links, as (peering, role).
    fn ops_circuit_links(&self, circuit: &str) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for p in self.plan.peerings.iter().filter(|p| p.circuit == circuit) {
            for role in ["primary", "secondary"] {
                out.push((format!("{:?}", p.peering_type), role.to_owned()));
            }
        }
        out
    }

    /// The usage and availability requests; `None` for the others.
    pub(in crate::daemon) fn answer_ops(
        &mut self,
        request: &crate::api::Request,
    ) -> Option<Result<serde_json::Value, String>> {
        use crate::api::Request;
        fn to<T: serde::Serialize>(v: T) -> Result<serde_json::Value, String> {
            serde_json::to_value(v).map_err(|e| format!("encoding the answer: {e}"))
        }
        Some(match request {
            Request::Usage {
                circuit,
                from,
                to: until,
            } => self
                .usage_report(circuit, from.as_deref(), until.as_deref())
                .and_then(to),
            Request::Availability {
                circuit,
                from,
                to: until,
            } => self
                .availability_report(circuit, from.as_deref(), until.as_deref())
                .and_then(to),
            Request::CaptureStart {
                reasons,
                link,
                count,
                sample,
                rate,
                snap,
            } => self
                .capture_start(reasons, link.as_deref(), *count, *sample, *rate, *snap)
                .and_then(to),
            Request::CaptureRead { id } => self.capture_read(*id).and_then(to),
            Request::CaptureStop { id } => self.capture_stop(*id).and_then(to),
            Request::Snapshot => {
                let s = self.snapshot(unix_ms());
                self.ops.published.set(s.clone());
                to(s)
            }
            _ => return None,
        })
    }

    /// `msee-cli usage`.
    pub(in crate::daemon) fn usage_report(
        &mut self,
        circuit: &str,
        from: Option<&str>,
        to: Option<&str>,
    ) -> Result<UsageView, String> {
        let circuit = self.az_circuit(circuit)?.to_owned();
        let day = |what: &str, s: Option<&str>| {
            s.map(|s| {
                usage::parse_date(s)
                    .map(usage::utc_day)
                    .map_err(|e| format!("--{what}: {e}"))
            })
            .transpose()
        };
        let (from, to) = (day("from", from)?, day("to", to)?);
        if let (Some(f), Some(t)) = (&from, &to)
            && f > t
        {
            return Err(format!("--from {f} is after --to {t}"));
        }
        // Up to this moment.
        let now = unix_ms();
        let specs: Vec<LinkSpec> = self.links.by_id.values().map(|l| l.spec.clone()).collect();
        for spec in &specs {
            self.ops_sample_link(spec, now);
        }
        let model = self
            .model
            .as_ref()
            .and_then(|m| m.circuits.iter().find(|c| c.name == circuit))
            .ok_or_else(|| format!("{circuit} has no model here"))?;
        let ledger = self
            .ops
            .persist
            .ledger
            .as_ref()
            .ok_or("the usage ledger is not open")?;
        let totals = ledger.totals(from.as_deref(), to.as_deref());
        let (first, last) = ledger.days().unzip();
        let mut v = usage::report::usage(
            model,
            &self.ops_circuit_links(&circuit),
            &totals,
            from.or(first),
            to.or(last),
        );
        v.notes = self.ops.persist.notes();
        Ok(v)
    }

    /// `msee-cli availability`.
    pub(in crate::daemon) fn availability_report(
        &mut self,
        circuit: &str,
        from: Option<&str>,
        to: Option<&str>,
    ) -> Result<AvailabilityView, String> {
        let circuit = self.az_circuit(circuit)?.to_owned();
        let time = |what: &str, s: Option<&str>| {
            s.map(|s| usage::parse_date(s).map_err(|e| format!("--{what}: {e}")))
                .transpose()
        };
        let now = unix_ms();
        let from = time("from", from)?;
        let to = time("to", to)?.unwrap_or(now).min(now);
        if from.is_some_and(|f| f > to) {
            return Err("--from is after --to".into());
        }
        // Up to this moment.
        self.ops_record_history(now);
        let history = self
            .ops
            .persist
            .history
            .as_ref()
            .ok_or("the link history is not open")?;
        let mut v = usage::report::availability(
            &circuit,
            &self.ops_circuit_links(&circuit),
            history.events(),
            from,
            to,
        );
        v.notes = self.ops.persist.notes();
        Ok(v)
    }
}

fn append(h: &mut History, error: &mut Option<String>, e: Event) {
    if let Err(e) = h.append(e) {
        let e = format!("{e:#}");
        if error.as_ref() != Some(&e) {
            warn!("link history: {e}");
        }
        *error = Some(e);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_link_never_up_is_held_by_its_first_failing_signal() {
        let view = |carrier, neighbour, bgp, bfd| crate::health::LinkView {
            link: 0,
            name: "er-lab/AzurePrivatePeering/primary".into(),
            neighbour,
            carrier,
            bgp,
            bfd,
            carries: false,
            flips: 0,
            history: Vec::new(),
            flips_by_cause: BTreeMap::new(),
        };
        assert_eq!(
            holding_signal(&view(false, false, Some(false), None)),
            "carrier lost"
        );
        assert_eq!(
            holding_signal(&view(true, false, Some(false), None)),
            "neighbour unresolved"
        );
        assert_eq!(
            holding_signal(&view(true, true, Some(false), None)),
            "BGP down"
        );
        assert_eq!(
            holding_signal(&view(true, true, None, Some(false))),
            "BFD down"
        );
        let cause = format!(
            "{} (not up since the start)",
            holding_signal(&view(true, true, Some(false), None))
        );
        assert_eq!(usage::report::category(&cause), "BGP");
    }
}
