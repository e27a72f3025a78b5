//! The usage (billing) and availability reports, computed from the ledger
//! and the history: pure functions of their inputs, which the daemon
//! answers `msee-cli usage` and `msee-cli availability` with.
use std::collections::BTreeMap;

use circuit::config::{SkuFamily, SkuTier};
use serde::{Deserialize, Serialize};

use super::{
    history::Event,
    ledger::{LinkMeta, Totals},
};

/// Bytes per GB in the report (decimal, 10^9, as Azure bills).
pub const BYTES_PER_GB: f64 = 1e9;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UsageLink {
    /// primary or secondary.
    pub path: String,
    /// From the customer into Microsoft's network (into the MSEE).
    pub ingress_bytes: u64,
    /// From Microsoft's network to the customer (out of the MSEE toward
    /// the customer): what Metered circuits are billed for.
    pub egress_bytes: u64,
    pub ingress_packets: u64,
    pub egress_packets: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UsagePeering {
    pub peering_type: String,
    pub ingress_bytes: u64,
    pub egress_bytes: u64,
    pub links: Vec<UsageLink>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UsageView {
    pub circuit: String,
    pub sku_tier: String,
    pub sku_family: String,
    pub peering_location: String,
    /// The location's pricing zone (1-4), when it has one.
    pub zone: Option<u8>,
    /// UTC days covered (inclusive): the request's, else the ledger's.
    pub from: Option<String>,
    pub to: Option<String>,
    pub ingress_bytes: u64,
    pub egress_bytes: u64,
    /// Data billed per GB: outbound on Metered (Standard, Premium);
    /// nothing on Unlimited and Local (the port fee covers it); inbound is
    /// never billed.
    pub billed_outbound_gb: f64,
    pub billed_inbound_gb: f64,
    /// How this SKU is billed, in a sentence.
    pub billing: String,
    pub peerings: Vec<UsagePeering>,
    /// What went wrong with the state files (set aside, unwritable).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// Whether outbound data of a circuit of this SKU is billed per GB.
pub fn metered(tier: SkuTier, family: SkuFamily) -> bool {
    family == SkuFamily::MeteredData && tier != SkuTier::Local
}

/// The circuit's usage from the ledger's per-link totals (links of other
/// circuits and the Azure side are left out). Every peering and link of
/// `links` (peering, role) is listed, with zeros when nothing was counted.
pub fn usage(
    circuit: &circuit::model::Circuit,
    links: &[(String, String)],
    totals: &BTreeMap<String, (LinkMeta, Totals)>,
    from: Option<String>,
    to: Option<String>,
) -> UsageView {
    let mut per: BTreeMap<(String, String), Totals> = links
        .iter()
        .map(|k| (k.clone(), Totals::default()))
        .collect();
    for (meta, t) in totals.values() {
        if meta.circuit != circuit.name || !matches!(meta.role.as_str(), "primary" | "secondary") {
            continue;
        }
        per.entry((meta.peering.clone(), meta.role.clone()))
            .or_default()
            .add(t);
    }
    let mut peerings: Vec<UsagePeering> = Vec::new();
    for ((peering, role), t) in per {
        if peerings.last().is_none_or(|p| p.peering_type != peering) {
            peerings.push(UsagePeering {
                peering_type: peering.clone(),
                ingress_bytes: 0,
                egress_bytes: 0,
                links: Vec::new(),
            });
        }
        let p = peerings.last_mut().expect("pushed");
        p.ingress_bytes += t.rx.bytes;
        p.egress_bytes += t.tx.bytes;
        p.links.push(UsageLink {
            path: role,
            ingress_bytes: t.rx.bytes,
            egress_bytes: t.tx.bytes,
            ingress_packets: t.rx.packets,
            egress_packets: t.tx.packets,
        });
    }
    let ingress: u64 = peerings.iter().map(|p| p.ingress_bytes).sum();
    let egress: u64 = peerings.iter().map(|p| p.egress_bytes).sum();
    let zone = super::zones::zone_of(&circuit.peering_location);
    let zone_text = zone.map_or("no pricing zone".to_owned(), |z| format!("zone {z}"));
    let metered = metered(circuit.tier, circuit.family);
    let billing = if circuit.tier == SkuTier::Local {
        format!(
            "Local: data transfer is included in the port fee, nothing billed per GB ({zone_text})"
        )
    } else if metered {
        format!("Metered: outbound data billed per GB at {zone_text} rates, inbound free")
    } else {
        format!("Unlimited: data transfer is included in the port fee ({zone_text})")
    };
    UsageView {
        circuit: circuit.name.clone(),
        sku_tier: format!("{:?}", circuit.tier),
        sku_family: format!("{:?}", circuit.family),
        peering_location: circuit.peering_location.clone(),
        zone,
        from,
        to,
        ingress_bytes: ingress,
        egress_bytes: egress,
        billed_outbound_gb: if metered {
            egress as f64 / BYTES_PER_GB
        } else {
            0.0
        },
        billed_inbound_gb: 0.0,
        billing,
        peerings,
        notes: Vec::new(),
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LinkAvailability {
    pub peering_type: String,
    pub path: String,
    /// Of the time its state was known.
    pub uptime_percent: f64,
    pub measured_secs: f64,
    pub downtime_secs: f64,
    pub outages: usize,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Outage {
    /// primary, secondary, or circuit (every link of the peering down).
    pub scope: String,
    pub peering_type: String,
    /// RFC 3339, UTC, to the millisecond.
    pub start: String,
    /// `None`: still going on.
    pub end: Option<String>,
    pub duration_secs: f64,
    /// carrier, BFD, BGP, neighbour or drain; for the circuit, each link's
    /// ("primary: BFD, secondary: carrier").
    pub cause: String,
    /// The signal change that began it, e.g. "BFD down", "carrier lost".
    pub detail: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AvailabilityView {
    pub circuit: String,
    /// The period asked for (or the whole history), RFC 3339.
    pub from: Option<String>,
    pub to: String,
    /// Time in the period the circuit's state was known (a daemon ran and
    /// some link of it had reported).
    pub measured_secs: f64,
    /// As the SLA counts it: the circuit is down only while every link of
    /// one of its peerings is unable to carry traffic (a drained link
    /// still carries).
    pub circuit_uptime_percent: f64,
    pub circuit_downtime_secs: f64,
    pub links: Vec<LinkAvailability>,
    /// Oldest first.
    pub outages: Vec<Outage>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

impl AvailabilityView {
    /// One line: the circuit's figure, then each link's.
    pub fn line(&self) -> String {
        let mut s = format!(
            "{} availability: circuit {:.3}% over {:.0} s",
            self.circuit, self.circuit_uptime_percent, self.measured_secs
        );
        for l in &self.links {
            s += &format!(
                "; {} {} {:.3}% ({} outage{}, {:.1} s)",
                short_peering(&l.peering_type),
                l.path,
                l.uptime_percent,
                l.outages,
                if l.outages == 1 { "" } else { "s" },
                l.downtime_secs
            );
        }
        s
    }
}

fn short_peering(p: &str) -> &str {
    match p {
        "AzurePrivatePeering" => "private",
        "MicrosoftPeering" => "microsoft",
        other => other,
    }
}

/// The kind of a flip's cause.
pub fn category(cause: &str) -> &'static str {
    let c = cause.to_ascii_lowercase();
    if c.contains("bfd") {
        "BFD"
    } else if c.contains("bgp") {
        "BGP"
    } else if c.contains("carrier") {
        "carrier"
    } else if c.contains("neighbour") {
        "neighbour"
    } else if c.contains("drain") {
        "drain"
    } else {
        "other"
    }
}

/// What is known of a link at some moment.
#[derive(Clone, Debug, PartialEq)]
enum State {
    Unknown,
    Up,
    /// The flip's cause.
    Down(String),
}

type Key = (String, String);

/// An outage: start, end (`None`: open), (peering, scope), cause, detail.
type Span = (u64, Option<u64>, Key, String, String);

/// The walk through the history.
struct Walk {
    from: u64,
    to: u64,
    peerings: Vec<String>,
    monitored: bool,
    state: BTreeMap<Key, State>,
    drained: BTreeMap<Key, bool>,
    known: BTreeMap<Key, u64>,
    down: BTreeMap<Key, u64>,
    measured: u64,
    circuit_down: u64,
    open: BTreeMap<Key, (u64, String, String)>,
    spans: Vec<Span>,
}

impl Walk {
    /// What is unavailable now: links (down, or drained) and peerings
    /// whose every link is down (scope "circuit"), with cause and detail.
    fn unavailable(&self) -> BTreeMap<Key, (String, String)> {
        let mut now: BTreeMap<Key, (String, String)> = BTreeMap::new();
        for (k, s) in &self.state {
            match s {
                State::Down(c) => {
                    now.insert(k.clone(), (category(c).to_owned(), c.clone()));
                }
                State::Up if self.drained.get(k).copied().unwrap_or(false) => {
                    now.insert(k.clone(), ("drain".to_owned(), "drained".to_owned()));
                }
                _ => {}
            }
        }
        for p in &self.peerings {
            let mine: Vec<(&String, &String)> = self
                .state
                .iter()
                .filter(|(k, _)| &k.0 == p)
                .map(|(k, s)| match s {
                    State::Down(c) => Some((&k.1, c)),
                    _ => None,
                })
                .collect::<Option<_>>()
                .unwrap_or_default();
            if mine.is_empty() {
                continue;
            }
            let list = |f: &dyn Fn(&str) -> String| {
                mine.iter()
                    .map(|(role, c)| format!("{role}: {}", f(c)))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            now.insert(
                (p.clone(), "circuit".to_owned()),
                (list(&|c| category(c).to_owned()), list(&|c| c.to_owned())),
            );
        }
        now
    }

    /// Time passes from `t0` to `t1`: counted where it falls in the period.
    fn advance(&mut self, t0: u64, t1: u64) {
        let (lo, hi) = (t0.max(self.from), t1.min(self.to));
        if !self.monitored || hi <= lo {
            return;
        }
        let dt = hi - lo;
        let mut any_known = false;
        for (k, s) in &self.state {
            if *s == State::Unknown {
                continue;
            }
            any_known = true;
            *self.known.entry(k.clone()).or_default() += dt;
            if matches!(s, State::Down(_)) || self.drained.get(k).copied().unwrap_or(false) {
                *self.down.entry(k.clone()).or_default() += dt;
            }
        }
        if any_known {
            self.measured += dt;
            if self.unavailable().keys().any(|k| k.1 == "circuit") {
                self.circuit_down += dt;
            }
        }
    }

    /// Opens and closes outages after a change at `t`.
    fn reconcile(&mut self, t: u64) {
        let now = if self.monitored {
            self.unavailable()
        } else {
            BTreeMap::new()
        };
        let closing: Vec<Key> = self
            .open
            .keys()
            .filter(|k| !now.contains_key(*k))
            .cloned()
            .collect();
        for k in closing {
            let (start, cause, detail) = self.open.remove(&k).expect("listed");
            self.spans.push((start, Some(t), k, cause, detail));
        }
        for (k, (cause, detail)) in now {
            self.open.entry(k).or_insert((t, cause, detail));
        }
    }
}

/// The circuit's availability over `[from_ms, to_ms]` from its history.
/// `links`: its (peering, role) pairs.
pub fn availability(
    circuit: &str,
    links: &[Key],
    events: &[Event],
    from_ms: Option<u64>,
    to_ms: u64,
) -> AvailabilityView {
    let mut peerings: Vec<String> = links.iter().map(|(p, _)| p.clone()).collect();
    peerings.dedup();
    let mut w = Walk {
        from: from_ms.unwrap_or(0),
        to: to_ms,
        peerings,
        monitored: false,
        state: links.iter().map(|k| (k.clone(), State::Unknown)).collect(),
        drained: BTreeMap::new(),
        known: BTreeMap::new(),
        down: BTreeMap::new(),
        measured: 0,
        circuit_down: 0,
        open: BTreeMap::new(),
        spans: Vec::new(),
    };
    let mut last: Option<u64> = None;
    for e in events.iter().take_while(|e| e.at_ms() <= to_ms) {
        // Events are in the order they happened; a clock stepped back does
        // not make time run backwards here.
        let t = e.at_ms().max(last.unwrap_or(0));
        if let Some(t0) = last {
            w.advance(t0, t);
        }
        last = Some(t);
        match e {
            Event::Start { .. } | Event::Stop { .. } => {
                w.monitored = matches!(e, Event::Start { .. });
                for s in w.state.values_mut() {
                    *s = State::Unknown;
                }
                w.drained.clear();
            }
            Event::Flip {
                circuit: c,
                peering,
                role,
                up,
                cause,
                ..
            } if c == circuit => {
                if let Some(s) = w.state.get_mut(&(peering.clone(), role.clone())) {
                    *s = if *up {
                        State::Up
                    } else {
                        State::Down(cause.clone())
                    };
                }
            }
            Event::Drain {
                circuit: c,
                peering,
                role,
                drained,
                ..
            } if c == circuit => {
                w.drained.insert((peering.clone(), role.clone()), *drained);
            }
            _ => {}
        }
        w.reconcile(t);
    }
    if let Some(t0) = last {
        w.advance(t0, to_ms.max(t0));
    }
    // Still open at the end of the period: ongoing.
    for (k, (start, cause, detail)) in std::mem::take(&mut w.open) {
        w.spans.push((start, None, k, cause, detail));
    }
    let from = w.from;
    let mut counts: BTreeMap<Key, usize> = BTreeMap::new();
    let mut outages: Vec<Outage> = Vec::new();
    for (start, end, k, cause, detail) in std::mem::take(&mut w.spans) {
        let (s, e) = (start.max(from), end.unwrap_or(to_ms).min(to_ms));
        if e < s || (e == s && end.is_some()) {
            continue;
        }
        if k.1 != "circuit" {
            *counts.entry(k.clone()).or_default() += 1;
        }
        outages.push(Outage {
            scope: k.1.clone(),
            peering_type: k.0.clone(),
            start: super::rfc3339_ms(s),
            end: end.map(|_| super::rfc3339_ms(e)),
            duration_secs: (e - s) as f64 / 1e3,
            cause,
            detail,
        });
    }
    outages.sort_by(|a, b| a.start.cmp(&b.start).then(a.scope.cmp(&b.scope)));
    let pct = |down: u64, total: u64| {
        if total == 0 {
            100.0
        } else {
            100.0 * (total - down.min(total)) as f64 / total as f64
        }
    };
    AvailabilityView {
        circuit: circuit.to_owned(),
        from: from_ms.map(super::rfc3339),
        to: super::rfc3339(to_ms),
        measured_secs: w.measured as f64 / 1e3,
        circuit_uptime_percent: pct(w.circuit_down, w.measured),
        circuit_downtime_secs: w.circuit_down as f64 / 1e3,
        links: links
            .iter()
            .map(|k| {
                let total = w.known.get(k).copied().unwrap_or(0);
                let d = w.down.get(k).copied().unwrap_or(0);
                LinkAvailability {
                    peering_type: k.0.clone(),
                    path: k.1.clone(),
                    uptime_percent: pct(d, total),
                    measured_secs: total as f64 / 1e3,
                    downtime_secs: d as f64 / 1e3,
                    outages: counts.get(k).copied().unwrap_or(0),
                }
            })
            .collect(),
        outages,
        notes: Vec::new(),
    }
}
