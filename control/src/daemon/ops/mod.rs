//! The operator's view, inside the daemon: each tick (1 s), and when a
//! scrape asks for fresh figures, the main loop takes a [`Snapshot`] of its
//! counters and sessions and publishes it for the Prometheus endpoint
//! (`crate::metrics`); it answers the az-shaped requests ([`az`]); and it
//! keeps the usage ledger and the link history in the state directory and
//! answers the usage and availability reports from them ([`persist`]);
//! and it runs captures of dropped frames ([`capture`]).
mod az;
mod capture;
mod persist;

use std::{collections::BTreeMap, net::SocketAddr, time::Instant};

use anyhow::Result;
use msee_abi::{Direction, DropReason, LinkCounters};
use tracing::{info, warn};

use super::Daemon;
use crate::{
    estate::{LinkSpec, Side},
    metrics::{
        Published,
        snapshot::{
            BfdSample, DaemonSample, DirCounters, FibTableSample, LinkSample, SessionSample,
            Snapshot,
        },
    },
};

/// What the operator's view keeps between ticks.
pub(super) struct Ops {
    pub published: Published,
    /// Bound at start (an address in use fails the start), served once the
    /// daemon runs.
    metrics: Option<std::net::TcpListener>,
    /// Per session name: last seen state, when it changed, and its flaps.
    sessions: BTreeMap<String, SessionMark>,
    /// Per link: the neighbour's MAC and since when (ARP entries' age).
    neighbours: BTreeMap<u32, ([u8; 6], Instant)>,
    /// When the daemon started (Unix ms): the history's start.
    started_ms: u64,
    persist: persist::Persist,
    /// The capture of dropped frames (`msee-cli capture`).
    capture: capture::Captures,
}

struct SessionMark {
    established: bool,
    since: Option<Instant>,
    flaps: u64,
}

impl Ops {
    /// Binds the metrics address before the daemon loads anything: an
    /// address in use stops the start with an error naming it.
    pub(super) fn new(metrics_listen: Option<SocketAddr>) -> Result<Self> {
        let metrics = metrics_listen
            .map(crate::metrics::server::bind)
            .transpose()?;
        Ok(Self {
            published: Published::default(),
            metrics,
            sessions: BTreeMap::new(),
            neighbours: BTreeMap::new(),
            started_ms: unix_ms(),
            persist: persist::Persist::default(),
            capture: capture::Captures::default(),
        })
    }
}

/// Unix time now, in milliseconds.
pub(super) fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn dir_counters(c: &LinkCounters) -> DirCounters {
    DirCounters {
        packets: c.packets,
        bytes: c.bytes,
        drops: DropReason::ALL
            .iter()
            .map(|r| (r.name().to_owned(), c.dropped(*r)))
            .collect(),
    }
}

/// A link's circuit, peering and role (primary, secondary; or the role of
/// an Azure-side port, with no circuit).
fn link_place(spec: &LinkSpec) -> (String, String, String) {
    match &spec.side {
        Side::Customer {
            circuit,
            peering,
            role,
        } => (circuit.clone(), format!("{peering:?}"), role.to_string()),
        _ => (String::new(), String::new(), spec.role.name().to_owned()),
    }
}

/// A session's flaps: a change of `since` while Established before is the
/// end of an Established period (seen Down at this tick, or gone down and
/// up again between two ticks).
fn count_flap(mark: &mut SessionMark, established: bool, since: Option<Instant>) {
    if mark.since != since && mark.established {
        mark.flaps += 1;
    }
    mark.established = established;
    mark.since = since;
}

impl Daemon {
    /// After the start: starts the metrics endpoint, publishes the first
    /// snapshot, records the start in the link history.
    pub(super) fn ops_started(&mut self) -> Result<()> {
        self.ops_open_state(self.ops.started_ms);
        if let Some(listener) = self.ops.metrics.take() {
            let addr = crate::metrics::server::serve(listener, self.ops.published.clone())?;
            info!(%addr, "metrics endpoint listening (/metrics)");
        }
        self.ops_refresh();
        Ok(())
    }

    /// Publishes a snapshot of the figures now (each tick, and when a
    /// scrape wants fresh ones).
    pub(super) fn ops_refresh(&mut self) {
        let s = self.snapshot(unix_ms());
        self.ops.published.set(s);
    }

    /// The forwarding table's occupancy and fallback counter, as the
    /// metrics and `msee-cli fib` show them.
    pub(super) fn fib_table_sample(&self) -> FibTableSample {
        let st = self.msee.fib_stats();
        let fallback_lookups = self.msee.fib_fallback_lookups().unwrap_or_else(|e| {
            warn!("reading the FIB fallback counter: {e}");
            [0; 2]
        });
        let on_trie = |v6: bool| st.on_trie.iter().filter(|(_, f)| *f == v6).count() as u64;
        FibTableSample {
            fallback_lookups,
            nodes_in_use: st.nodes_in_use.map(u64::from),
            nodes: st.nodes.map(u64::from),
            node_bytes: st.node_bytes.map(u64::from),
            slots: u64::from(st.slots),
            slots_used: u64::from(st.slots_used),
            domains_on_trie: [on_trie(false), on_trie(true)],
            map_bytes: st.map_bytes,
        }
    }

    fn snapshot(&mut self, now_ms: u64) -> Snapshot {
        let health: BTreeMap<u32, crate::health::LinkView> = self
            .health
            .view()
            .into_iter()
            .map(|l| (l.link, l))
            .collect();
        let mut links = Vec::new();
        let now = Instant::now();
        for rt in self.links.by_id.values() {
            let s = &rt.spec;
            let read = |dir| {
                self.msee.link_counters(s.id, dir).unwrap_or_else(|e| {
                    warn!(link = %s.name, "reading counters: {e}");
                    LinkCounters::default()
                })
            };
            let (rx, tx) = (read(Direction::Rx), read(Direction::Tx));
            let (circuit, peering, role) = link_place(s);
            let h = health.get(&s.id);
            links.push(LinkSample {
                name: s.name.clone(),
                ifname: s.iface.name.clone(),
                circuit,
                peering,
                role,
                carries: h.is_some_and(|h| h.carries),
                flips: h
                    .map(|h| {
                        h.flips_by_cause
                            .iter()
                            .map(|(c, n)| ((*c).to_owned(), *n))
                            .collect()
                    })
                    .unwrap_or_default(),
                rx: dir_counters(&rx),
                tx: dir_counters(&tx),
                to_kernel: rx.to_kernel,
            });
            match rt.neighbour_mac {
                Some(mac) => {
                    let e = self.ops.neighbours.entry(s.id).or_insert((mac, now));
                    if e.0 != mac {
                        *e = (mac, now);
                    }
                }
                None => {
                    self.ops.neighbours.remove(&s.id);
                }
            }
        }
        let mut sessions = Vec::new();
        let mut bfd = Vec::new();
        if let Some(ss) = &self.sessions {
            let wall_now = now_ms as f64 / 1e3;
            for (i, spec) in ss.speaker.active() {
                let st = &ss.rt[i].status;
                let mark = self
                    .ops
                    .sessions
                    .entry(spec.name.clone())
                    .or_insert(SessionMark {
                        established: st.established,
                        since: st.since,
                        flaps: 0,
                    });
                count_flap(mark, st.established, st.since);
                let rib = self
                    .routing
                    .peering_rib(&(spec.circuit.clone(), spec.peering_type));
                sessions.push(SessionSample {
                    name: spec.name.clone(),
                    circuit: spec.circuit.clone(),
                    peering: format!("{:?}", spec.peering_type),
                    link: spec.role.to_string(),
                    family: format!("{:?}", spec.family),
                    peer: spec.peer.to_string(),
                    peer_as: spec.peer_as,
                    established: st.established,
                    prefixes_received: st.prefixes_announced,
                    prefixes_refused: st
                        .prefixes_refused
                        .iter()
                        .map(|(r, n)| ((*r).to_owned(), *n))
                        .collect(),
                    prefixes_accepted: rib.map_or(0, |r| r.adj_rib_in_len((spec.link, spec.family)))
                        as u64,
                    prefixes_advertised: ss.rt[i].out.len() as u64,
                    flaps: mark.flaps,
                    last_change_unix: st
                        .since
                        .map(|t| wall_now - now.duration_since(t).as_secs_f64()),
                });
            }
            for p in ss.bfd.values() {
                for b in p.bfd.status() {
                    bfd.push(BfdSample {
                        name: b.name.clone(),
                        peer: b.peer.to_string(),
                        state: format!("{:?}", b.state),
                        detection_time_us: b.detection_time_us,
                        packets_in: b.packets_in,
                        packets_out: b.packets_out,
                    });
                }
            }
        }
        let install = &self.routing.install;
        Snapshot {
            at_unix_ms: now_ms,
            links,
            sessions,
            bfd,
            daemon: DaemonSample {
                version: env!("CARGO_PKG_VERSION").to_owned(),
                routes_upserted: install.routes_upserted,
                routes_removed: install.routes_removed,
                fib_batches: install.batches,
                fib_write_errors: install.failed_batches,
                routes: self.routing.fib.route_count() as u64,
                groups: self.routing.fib.group_count() as u64,
                fib_table: self.fib_table_sample(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flap_is_counted_once_whether_the_tick_saw_the_down_or_not() {
        let t0 = Instant::now();
        let t1 = t0 + std::time::Duration::from_secs(1);
        let t2 = t0 + std::time::Duration::from_secs(2);
        let mut m = SessionMark {
            established: true,
            since: Some(t0),
            flaps: 0,
        };
        // Still up: no flap.
        count_flap(&mut m, true, Some(t0));
        assert_eq!(m.flaps, 0);
        // Seen down: one flap; staying down adds none; up again adds none.
        count_flap(&mut m, false, Some(t1));
        count_flap(&mut m, false, Some(t1));
        count_flap(&mut m, true, Some(t2));
        assert_eq!(m.flaps, 1);
        // Down and up again between two ticks: Established at both, a new
        // `since`: one flap more.
        count_flap(&mut m, true, Some(t2 + std::time::Duration::from_secs(1)));
        assert_eq!(m.flaps, 2);
    }
}
