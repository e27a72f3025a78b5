//! The Prometheus endpoint (`msee-daemon --metrics-listen ADDR:PORT`):
//! `/metrics` in the Prometheus text format (0.0.4), encoded by the
//! `prometheus-client` crate from the latest [`Snapshot`] the daemon's main
//! loop published.
//!
//! Why a snapshot and not a request through the API's call channel: the
//! encoding, the HTTP exchange and a slow or stuck scraper then touch only
//! an `Arc` of data already taken, never the main loop (busy installing a
//! million routes, say). A scrape asks the loop for a fresh snapshot and
//! waits at most [`server::FRESH_WAIT`] for it (else it gets the last one,
//! at most a tick old): Prometheus's rates then see counters read at the
//! scrape, not up to a second before it.
//!
//! Names follow Prometheus conventions (snake_case, base units, `_total`
//! on counters) and Azure Monitor's ExpressRoute circuit metrics where one
//! exists (the README maps them): traffic per circuit, peering, link and
//! direction (`in` is toward the MSEE, as Azure's BitsIn), drops by reason,
//! BGP and BFD session state, link flips by cause.
pub mod server;
pub mod snapshot;

use prometheus_client::{
    collector::Collector,
    encoding::{DescriptorEncoder, EncodeGaugeValue, EncodeMetric},
    metrics::{MetricType, counter::ConstCounter, gauge::ConstGauge},
    registry::Registry,
};
pub use snapshot::{Published, Snapshot};

type Labels = Vec<(&'static str, String)>;

/// Encodes the snapshot of the scrape under way.
#[derive(Debug, Default)]
struct SnapshotCollector(std::sync::RwLock<std::sync::Arc<Snapshot>>);

/// One metric family: its descriptor, then each sample.
fn family<V>(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    kind: MetricType,
    samples: impl IntoIterator<Item = (Labels, V)>,
    encode: impl Fn(V, prometheus_client::encoding::MetricEncoder) -> std::fmt::Result,
) -> std::fmt::Result {
    let mut samples = samples.into_iter().peekable();
    if samples.peek().is_none() {
        return Ok(());
    }
    let mut m = enc.encode_descriptor(name, help, None, kind)?;
    for (labels, v) in samples {
        encode(v, m.encode_family(&labels)?)?;
    }
    Ok(())
}

fn counters(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    samples: impl IntoIterator<Item = (Labels, u64)>,
) -> std::fmt::Result {
    family(enc, name, help, MetricType::Counter, samples, |v, e| {
        ConstCounter::new(v).encode(e)
    })
}

/// Gauges of integers (`i64`: printed without a decimal point) or of
/// fractions (`f64`).
fn gauges<N: EncodeGaugeValue + std::fmt::Debug>(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    samples: impl IntoIterator<Item = (Labels, N)>,
) -> std::fmt::Result {
    family(enc, name, help, MetricType::Gauge, samples, |v, e| {
        ConstGauge::new(v).encode(e)
    })
}

fn flag(b: bool) -> i64 {
    i64::from(b)
}

fn int(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl Collector for SnapshotCollector {
    fn encode(&self, mut enc: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let s = self
            .0
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        let enc = &mut enc;
        let link_labels = |l: &snapshot::LinkSample| -> Labels {
            vec![
                ("circuit", l.circuit.clone()),
                ("peering", l.peering.clone()),
                ("link", l.role.clone()),
                ("port", l.name.clone()),
                ("ifname", l.ifname.clone()),
            ]
        };
        let by_dir = |l: &snapshot::LinkSample| {
            let base = link_labels(l);
            [("in", l.rx.clone()), ("out", l.tx.clone())]
                .into_iter()
                .map(move |(d, c)| {
                    let mut labels = base.clone();
                    labels.push(("direction", d.to_owned()));
                    (labels, c)
                })
        };
        counters(
            enc,
            "msee_link_bytes",
            "Bytes through the MSEE per link and direction (in: toward the MSEE, as Azure Monitor's BitsInPerSecond; out: out of it, BitsOutPerSecond)",
            s.links.iter().flat_map(by_dir).map(|(l, c)| (l, c.bytes)),
        )?;
        counters(
            enc,
            "msee_link_packets",
            "Frames through the MSEE per link and direction",
            s.links.iter().flat_map(by_dir).map(|(l, c)| (l, c.packets)),
        )?;
        counters(
            enc,
            "msee_link_dropped_packets",
            "Frames dropped per link, direction and reason (reason=\"policer\": Azure Monitor's QosDropBitsIn/OutPerSecond, in frames)",
            s.links.iter().flat_map(by_dir).flat_map(|(labels, c)| {
                c.drops.into_iter().map(move |(reason, n)| {
                    let mut labels = labels.clone();
                    labels.push(("reason", reason));
                    (labels, n)
                })
            }),
        )?;
        counters(
            enc,
            "msee_link_to_kernel_packets",
            "Frames for the MSEE itself (ARP, ND, BGP, BFD) handed to the kernel",
            s.links.iter().map(|l| (link_labels(l), l.to_kernel)),
        )?;
        gauges(
            enc,
            "msee_link_carries",
            "1 while the link carries traffic (neighbour resolved, carrier, BGP and BFD up)",
            s.links.iter().map(|l| (link_labels(l), flag(l.carries))),
        )?;
        counters(
            enc,
            "msee_link_flips",
            "Changes of whether the link carries traffic, by cause",
            s.links.iter().flat_map(|l| {
                let base = link_labels(l);
                l.flips.iter().map(move |(cause, n)| {
                    let mut labels = base.clone();
                    labels.push(("cause", cause.clone()));
                    (labels, *n)
                })
            }),
        )?;
        let session_labels = |x: &snapshot::SessionSample| -> Labels {
            vec![
                ("session", x.name.clone()),
                ("circuit", x.circuit.clone()),
                ("peering", x.peering.clone()),
                ("link", x.link.clone()),
                ("family", x.family.clone()),
                ("peer", x.peer.clone()),
                ("peer_as", x.peer_as.to_string()),
            ]
        };
        gauges(
            enc,
            "msee_bgp_session_up",
            "1 while the BGP session is Established (Azure Monitor's BgpAvailability, averaged)",
            s.sessions
                .iter()
                .map(|x| (session_labels(x), flag(x.established))),
        )?;
        counters(
            enc,
            "msee_bgp_prefixes_received",
            "Prefixes the peer announced, each announcement counted, accepted or not",
            s.sessions
                .iter()
                .map(|x| (session_labels(x), x.prefixes_received)),
        )?;
        counters(
            enc,
            "msee_bgp_prefixes_refused",
            "Announced prefixes the MSEE refused, by reason (as_loop, rfc1918, default_route, not_registered, wrong_family)",
            s.sessions.iter().flat_map(|x| {
                let base = session_labels(x);
                x.prefixes_refused.iter().map(move |(reason, n)| {
                    let mut labels = base.clone();
                    labels.push(("reason", reason.clone()));
                    (labels, *n)
                })
            }),
        )?;
        gauges(
            enc,
            "msee_bgp_prefixes_accepted",
            "Prefixes accepted from the peer (its Adj-RIB-In)",
            s.sessions
                .iter()
                .map(|x| (session_labels(x), int(x.prefixes_accepted))),
        )?;
        gauges(
            enc,
            "msee_bgp_prefixes_advertised",
            "Prefixes the MSEE advertises on the session (its Adj-RIB-Out)",
            s.sessions
                .iter()
                .map(|x| (session_labels(x), int(x.prefixes_advertised))),
        )?;
        counters(
            enc,
            "msee_bgp_session_flaps",
            "Times the Established session went down",
            s.sessions.iter().map(|x| (session_labels(x), x.flaps)),
        )?;
        gauges(
            enc,
            "msee_bgp_session_last_change_timestamp_seconds",
            "When the session last became Established or Down (Unix time)",
            s.sessions
                .iter()
                .filter_map(|x| Some((session_labels(x), x.last_change_unix?))),
        )?;
        let bfd_labels = |b: &snapshot::BfdSample| -> Labels {
            vec![("session", b.name.clone()), ("peer", b.peer.clone())]
        };
        gauges(
            enc,
            "msee_bfd_session_up",
            "1 while the BFD session is Up",
            s.bfd.iter().map(|b| (bfd_labels(b), flag(b.state == "Up"))),
        )?;
        gauges(
            enc,
            "msee_bfd_detection_time_seconds",
            "The BFD session's negotiated detection time",
            s.bfd
                .iter()
                .filter_map(|b| Some((bfd_labels(b), b.detection_time_us? as f64 / 1e6))),
        )?;
        counters(
            enc,
            "msee_bfd_control_packets",
            "BFD control packets received (in) and sent (out)",
            s.bfd.iter().flat_map(|b| {
                [("in", b.packets_in), ("out", b.packets_out)].map(|(d, n)| {
                    let mut l = bfd_labels(b);
                    l.push(("direction", d.to_owned()));
                    (l, n)
                })
            }),
        )?;
        let d = &s.daemon;
        let none = Labels::new;
        counters(
            enc,
            "msee_fib_route_writes",
            "Routes written into (op=\"upsert\") and removed from (op=\"remove\") the dataplane",
            [
                (vec![("op", "upsert".to_owned())], d.routes_upserted),
                (vec![("op", "remove".to_owned())], d.routes_removed),
            ],
        )?;
        counters(
            enc,
            "msee_fib_batches",
            "FIB batches written into the dataplane",
            [(none(), d.fib_batches)],
        )?;
        counters(
            enc,
            "msee_fib_write_errors",
            "FIB batches whose write into the dataplane failed",
            [(none(), d.fib_write_errors)],
        )?;
        gauges(
            enc,
            "msee_fib_routes",
            "Routes in the dataplane",
            [(none(), int(d.routes))],
        )?;
        gauges(
            enc,
            "msee_fib_next_hop_groups",
            "Next-hop groups in the dataplane",
            [(none(), int(d.groups))],
        )?;
        let t = &d.fib_table;
        let by_family = |v: [u64; 2]| {
            [("ipv4", v[0]), ("ipv6", v[1])].map(|(f, n)| (vec![("family", f.to_owned())], n))
        };
        counters(
            enc,
            "msee_fib_fallback_lookups",
            "Lookups the LPM trie answered because the routing domain had no forwarding table of the family (no slot left, or the node pool ran out)",
            by_family(t.fallback_lookups),
        )?;
        gauges(
            enc,
            "msee_fib_table_nodes_in_use",
            "Pool entries of the forwarding table in use, per family (IPv4: 64-byte lines of ranges, IPv6: trie nodes)",
            by_family(t.nodes_in_use).map(|(l, n)| (l, int(n))),
        )?;
        gauges(
            enc,
            "msee_fib_table_nodes",
            "Pool entries of the forwarding table in all (its capacity), per family (IPv4: lines of ranges, IPv6: trie nodes)",
            by_family(t.nodes).map(|(l, n)| (l, int(n))),
        )?;
        gauges(
            enc,
            "msee_fib_table_node_bytes",
            "Bytes of one pool entry of the forwarding table, per family",
            by_family(t.node_bytes).map(|(l, n)| (l, int(n))),
        )?;
        gauges(
            enc,
            "msee_fib_table_domains",
            "Routing domains with a forwarding table of their own",
            [(none(), int(t.slots_used))],
        )?;
        gauges(
            enc,
            "msee_fib_table_slots",
            "Forwarding tables the dataplane has room for (domain slots)",
            [(none(), int(t.slots))],
        )?;
        gauges(
            enc,
            "msee_fib_table_domains_on_trie",
            "Routing domains with routes of the family that the forwarding table does not hold (looked up in the LPM trie)",
            by_family(t.domains_on_trie).map(|(l, n)| (l, int(n))),
        )?;
        gauges(
            enc,
            "msee_fib_table_map_bytes",
            "Bytes of the forwarding table's maps, both families",
            [(none(), int(t.map_bytes))],
        )?;
        gauges(
            enc,
            "msee_build_info",
            "The daemon's version (always 1)",
            [(vec![("version", d.version.clone())], 1i64)],
        )?;
        gauges(
            enc,
            "msee_snapshot_timestamp_seconds",
            "When the daemon took the figures of this scrape (Unix time)",
            [(none(), s.at_unix_ms as f64 / 1e3)],
        )?;
        Ok(())
    }
}

/// The `/metrics` body of `snapshot`, in the Prometheus text format.
pub fn encode(snapshot: std::sync::Arc<Snapshot>) -> Result<String, std::fmt::Error> {
    // The registry is cheap: one collector over this snapshot.
    let collector = SnapshotCollector(std::sync::RwLock::new(snapshot));
    let mut registry = Registry::default();
    registry.register_collector(Box::new(collector));
    let mut out = String::new();
    prometheus_client::encoding::prometheus_text::encode(&mut out, &registry)?;
    Ok(out)
}

#[cfg(test)]
mod tests;
