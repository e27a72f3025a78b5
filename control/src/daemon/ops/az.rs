//! The az-shaped answers: `get-stats`, `list-route-tables`,
//! `list-route-tables-summary`, `list-arp-tables`, in the ARM API's shapes
//! (`crate::api::az`). An unknown circuit, peering or path is an error that
//! lists the valid names.
use std::{net::IpAddr, time::Instant};

use msee_abi::Direction;

use crate::{
    api::{Request, az::*},
    daemon::Daemon,
    estate::{LinkSpec, PeeringRun},
};

/// The one valid choice equal to `given` (in any case), or an error naming
/// them all.
fn choose<'a>(what: &str, given: &str, valid: &[&'a str]) -> Result<&'a str, String> {
    valid
        .iter()
        .find(|v| v.eq_ignore_ascii_case(given))
        .copied()
        .ok_or_else(|| {
            format!(
                "unknown {what} {given:?} (valid: {})",
                if valid.is_empty() {
                    "none".to_owned()
                } else {
                    valid.join(", ")
                }
            )
        })
}

/// `hh:mm:ss`, as a router's `show bgp summary` (and the ARM answer) print
/// a session's time in its state.
fn hhmmss(secs: u64) -> String {
    format!("{:02}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60)
}

/// A space-separated AS path.
fn path_text(asns: impl IntoIterator<Item = u32>) -> String {
    asns.into_iter()
        .map(|a| a.to_string())
        .collect::<Vec<_>>()
        .join(" ")
}

impl Daemon {
    pub(super) fn az_circuit(&self, circuit: &str) -> Result<&str, String> {
        let names: Vec<&str> = self.plan.circuits.iter().map(|c| c.name.as_str()).collect();
        choose("circuit", circuit, &names)
    }

    /// The circuit's running peering named `peering`.
    fn az_peering(&self, circuit: &str, peering: &str) -> Result<&PeeringRun, String> {
        let circuit = self.az_circuit(circuit)?;
        let mine: Vec<&PeeringRun> = self
            .plan
            .peerings
            .iter()
            .filter(|p| p.circuit == circuit)
            .collect();
        let names: Vec<&str> = mine.iter().map(|p| p.kind.name()).collect();
        let name = choose(&format!("peering of {circuit}"), peering, &names)?;
        Ok(mine
            .into_iter()
            .find(|p| p.kind.name() == name)
            .expect("chosen among them"))
    }

    /// The link of `path` (primary or secondary) of a peering.
    fn az_link(
        &self,
        circuit: &str,
        peering: &str,
        path: &str,
    ) -> Result<(&PeeringRun, &LinkSpec), String> {
        let p = self.az_peering(circuit, peering)?;
        let role = choose("path", path, &["primary", "secondary"])?;
        let id = p.links[usize::from(role == "secondary")];
        let spec = self
            .links
            .by_id
            .get(&id)
            .map(|rt| &rt.spec)
            .ok_or_else(|| format!("the {role} link of {} is not installed", p.circuit))?;
        Ok((p, spec))
    }

    /// The az-shaped requests; `None` for the others.
    pub(in crate::daemon) fn answer_az(
        &self,
        request: &Request,
    ) -> Option<Result<serde_json::Value, String>> {
        fn to<T: serde::Serialize>(v: T) -> Result<serde_json::Value, String> {
            serde_json::to_value(v).map_err(|e| format!("encoding the answer: {e}"))
        }
        Some(match request {
            Request::Stats { circuit, peering } => {
                self.stats(circuit, peering.as_deref()).and_then(to)
            }
            Request::RouteTable {
                circuit,
                peering,
                path,
                advertised,
            } => self
                .route_table(circuit, peering, path, *advertised)
                .and_then(to),
            Request::RouteTableSummary {
                circuit,
                peering,
                path,
            } => self
                .route_table_summary(circuit, peering, path)
                .and_then(to),
            Request::ArpTable {
                circuit,
                peering,
                path,
            } => self.arp_table(circuit, peering, path).and_then(to),
            _ => return None,
        })
    }

    /// Bytes in (into the MSEE: from the customer) and out per link, summed
    /// over the circuit's peerings or of one.
    fn stats(&self, circuit: &str, peering: Option<&str>) -> Result<CircuitStats, String> {
        let circuit = self.az_circuit(circuit)?.to_owned();
        let peerings: Vec<&PeeringRun> = match peering {
            Some(p) => vec![self.az_peering(&circuit, p)?],
            None => self
                .plan
                .peerings
                .iter()
                .filter(|p| p.circuit == circuit)
                .collect(),
        };
        let mut s = CircuitStats::default();
        for p in peerings {
            for (k, id) in p.links.iter().enumerate() {
                let read = |dir| {
                    self.msee
                        .link_counters(*id, dir)
                        .map_err(|e| format!("reading the counters of link {id}: {e}"))
                };
                let (rx, tx) = (read(Direction::Rx)?, read(Direction::Tx)?);
                let (bytes_in, bytes_out) = if k == 0 {
                    (&mut s.primary_bytes_in, &mut s.primary_bytes_out)
                } else {
                    (&mut s.secondary_bytes_in, &mut s.secondary_bytes_out)
                };
                *bytes_in += rx.bytes;
                *bytes_out += tx.bytes;
            }
        }
        Ok(s)
    }

    /// The sessions (speaker indices) running on `link`.
    fn sessions_on(&self, link: u32) -> Vec<usize> {
        self.sessions
            .as_ref()
            .map(|s| {
                s.speaker
                    .active()
                    .filter(|(_, spec)| spec.link == link)
                    .map(|(i, _)| i)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The routes learned on the link (its sessions' Adj-RIB-In), or with
    /// `advertised` those the MSEE sends there (its Adj-RIB-Out, with the
    /// path the peer receives: AS 12076, prepended when drained).
    fn route_table(
        &self,
        circuit: &str,
        peering: &str,
        path: &str,
        advertised: bool,
    ) -> Result<List<RoutesTableEntry>, String> {
        let (p, link) = self.az_link(circuit, peering, path)?;
        let Some(ss) = &self.sessions else {
            return Ok(List { value: Vec::new() });
        };
        let rib = self.routing.peering_rib(&p.reference());
        let mut value = Vec::new();
        for i in self.sessions_on(link.id) {
            let spec = ss.speaker.spec(i);
            if advertised {
                let prepend = self.prepend(link.id);
                let out = &ss.rt[i].out;
                for prefix in out.prefixes() {
                    let Some(a) = out.get(&prefix) else { continue };
                    value.push(RoutesTableEntry {
                        network: prefix.to_string(),
                        next_hop: spec.local.to_string(),
                        loc_prf: String::new(),
                        weight: 0,
                        path: path_text(
                            std::iter::repeat_n(bgp::MSEE_ASN, 1 + prepend)
                                .chain(a.as_path.iter().copied()),
                        ),
                    });
                }
            } else if let Some(rib) = rib {
                let mut learned: Vec<_> = rib.paths((spec.link, spec.family)).collect();
                learned.sort_by_key(|(prefix, _)| *prefix);
                for (prefix, learned) in learned {
                    value.push(RoutesTableEntry {
                        network: prefix.to_string(),
                        next_hop: spec.peer.to_string(),
                        loc_prf: String::new(),
                        weight: 0,
                        path: path_text(learned.as_path.iter().copied()),
                    });
                }
            }
        }
        Ok(List { value })
    }

    /// The link's BGP neighbours: time Established and the prefixes
    /// accepted, or the state and how long since the last change.
    fn route_table_summary(
        &self,
        circuit: &str,
        peering: &str,
        path: &str,
    ) -> Result<List<RoutesTableSummaryEntry>, String> {
        let (p, link) = self.az_link(circuit, peering, path)?;
        let Some(ss) = &self.sessions else {
            return Ok(List { value: Vec::new() });
        };
        let rib = self.routing.peering_rib(&p.reference());
        let now = Instant::now();
        let value = self
            .sessions_on(link.id)
            .into_iter()
            .map(|i| {
                let spec = ss.speaker.spec(i);
                let st = &ss.rt[i].status;
                let since = st.since.map(|t| now.duration_since(t).as_secs());
                let (up_down, state_pfx_rcd) = if st.established {
                    let n = rib.map_or(0, |r| r.adj_rib_in_len((spec.link, spec.family)));
                    (since.map_or("-".to_owned(), hhmmss), n.to_string())
                } else {
                    // Held down by BFD or carrier: the FSM waits (Idle);
                    // otherwise it keeps trying to connect (Active).
                    let state = if st.held_by_bfd || st.held_by_carrier {
                        "Idle"
                    } else {
                        "Active"
                    };
                    (since.map_or("never".to_owned(), hhmmss), state.to_owned())
                };
                RoutesTableSummaryEntry {
                    neighbor: spec.peer.to_string(),
                    v: 4,
                    asn: spec.peer_as,
                    up_down,
                    state_pfx_rcd,
                }
            })
            .collect();
        Ok(List { value })
    }

    /// The link's IPv4 ARP entries: the MSEE's own address (`Microsoft`,
    /// age 0) and the customer router's once resolved (`On-Prem`, age in
    /// minutes since its MAC was learned).
    fn arp_table(
        &self,
        circuit: &str,
        peering: &str,
        path: &str,
    ) -> Result<List<ArpTableEntry>, String> {
        let (_, link) = self.az_link(circuit, peering, path)?;
        let mut value = Vec::new();
        if let Some(ours) = link.addrs.iter().map(|(a, _)| *a).find(IpAddr::is_ipv4) {
            value.push(ArpTableEntry {
                age: 0,
                interface: "Microsoft".into(),
                ip_address: ours.to_string(),
                mac_address: super::super::format_mac(&link.iface.mac),
            });
        }
        if let (Some(theirs), Some((mac, since))) =
            (link.neighbour, self.ops.neighbours.get(&link.id))
        {
            value.push(ArpTableEntry {
                age: (since.elapsed().as_secs() / 60) as u32,
                interface: "On-Prem".into(),
                ip_address: theirs.to_string(),
                mac_address: super::super::format_mac(mac),
            });
        }
        Ok(List { value })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wrong_name_lists_the_valid_ones() {
        assert_eq!(
            choose("path", "Secondary", &["primary", "secondary"]),
            Ok("secondary")
        );
        assert_eq!(
            choose("path", "tertiary", &["primary", "secondary"]).unwrap_err(),
            "unknown path \"tertiary\" (valid: primary, secondary)"
        );
        assert_eq!(
            choose("circuit", "x", &[]).unwrap_err(),
            "unknown circuit \"x\" (valid: none)"
        );
    }

    #[test]
    fn times_and_paths_print_as_a_router_does() {
        assert_eq!(hhmmss(0), "00:00:00");
        assert_eq!(hhmmss(3 * 3600 + 25 * 60 + 7), "03:25:07");
        assert_eq!(hhmmss(49 * 3600), "49:00:00");
        assert_eq!(path_text([12076, 12076, 65020]), "12076 12076 65020");
        assert_eq!(path_text([]), "");
    }
}
