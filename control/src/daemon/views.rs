//! The API's answers, read from the daemon's live state.
use serde::Serialize;

use super::Daemon;
use crate::{
    api::{Request, types::*},
    estate::Side,
};

fn json(v: impl Serialize) -> Result<serde_json::Value, String> {
    serde_json::to_value(v).map_err(|e| format!("encoding the answer: {e}"))
}

fn circuit_view(c: &circuit::model::Circuit, running: bool, model: &circuit::Model) -> CircuitView {
    let addrs = |l: &circuit::model::Link| LinkAddressesView {
        ipv4: AddressesView {
            subnet: l.ipv4.subnet.to_string(),
            customer: l.ipv4.customer.into(),
            msee: l.ipv4.msee.into(),
        },
        ipv6: l.ipv6.as_ref().map(|v6| AddressesView {
            subnet: v6.subnet.to_string(),
            customer: v6.customer.into(),
            msee: v6.msee.into(),
        }),
    };
    CircuitView {
        name: c.name.clone(),
        running,
        service_key: c.service_key.clone(),
        service_provider_name: c.service_provider_name.clone(),
        peering_location: c.peering_location.clone(),
        metro: c.metro.clone(),
        area: c.area.clone(),
        bandwidth_in_mbps: c.bandwidth_mbps,
        sku: SkuView {
            tier: format!("{:?}", c.tier),
            family: format!("{:?}", c.family),
        },
        service_provider_provisioning_state: format!("{:?}", c.provisioning_state),
        express_route_port: c.express_route_port.clone(),
        reach: c.reach.clone(),
        vnet_links: c.vnet_links.clone(),
        global_reach: circuit::reach::global_reach_peers(model, &c.name)
            .into_iter()
            .map(str::to_owned)
            .collect(),
        peerings: c
            .peerings
            .iter()
            .map(|p| PeeringView {
                peering_type: format!("{:?}", p.peering_type),
                peer_asn: p.peer_asn,
                vlan: p.vlan.to_string(),
                md5: p.shared_key.is_some(),
                bfd: p.bfd.map(|t| BfdTimersView {
                    interval_ms: t.interval_ms,
                    multiplier: t.multiplier,
                }),
                primary: addrs(&p.primary),
                secondary: addrs(&p.secondary),
                limits: LimitsView {
                    from_customer_ipv4: p.limits.from_customer_ipv4,
                    from_customer_ipv6: p.limits.from_customer_ipv6,
                    to_customer_ipv4: p.limits.to_customer_ipv4,
                    to_customer_ipv6: p.limits.to_customer_ipv6,
                },
            })
            .collect(),
    }
}

impl Daemon {
    /// The role name of link `id`.
    fn role_of(&self, id: u32) -> String {
        match self.plan.link(id).map(|l| &l.side) {
            Some(Side::Customer { role, .. }) | Some(Side::Bare(role)) => role.to_string(),
            Some(_) => "azure".to_owned(),
            None => "unknown".to_owned(),
        }
    }

    /// Answers one API request.
    pub(super) async fn answer(&mut self, request: &Request) -> Result<serde_json::Value, String> {
        if let Some(answer) = self.answer_az(request) {
            return answer;
        }
        if let Some(answer) = self.answer_ops(request) {
            return answer;
        }
        match request {
            Request::Drain {
                circuit,
                link,
                drain,
            } => {
                if self.sessions.is_none() {
                    return Err("this daemon runs no BGP circuit: nothing to drain".into());
                }
                let v = self.drain(circuit, link, *drain).await?;
                self.send_adverts().await;
                json(v)
            }
            Request::Reload => json(self.reload().await?),
            Request::Circuits => {
                let Some(model) = &self.model else {
                    return json(Vec::<CircuitView>::new());
                };
                json(
                    model
                        .circuits
                        .iter()
                        .map(|c| circuit_view(c, self.plan.circuit(&c.name).is_some(), model))
                        .collect::<Vec<_>>(),
                )
            }
            Request::Links => json(
                self.health
                    .view()
                    .into_iter()
                    .map(|l| LinkView {
                        link: l.link,
                        name: l.name,
                        neighbour: l.neighbour,
                        carrier: l.carrier,
                        bgp: l.bgp,
                        bfd: l.bfd,
                        carries: l.carries,
                        flips: l.flips,
                        history: l
                            .history
                            .into_iter()
                            .map(|f| FlipView {
                                up: f.up,
                                cause: f.cause.to_owned(),
                                at_mono_ns: f.at_mono_ns,
                            })
                            .collect(),
                    })
                    .collect::<Vec<_>>(),
            ),
            Request::Bfd => {
                let mut all = Vec::new();
                if let Some(s) = &self.sessions {
                    for p in s.bfd.values() {
                        all.extend(p.bfd.status());
                    }
                }
                json(all)
            }
            Request::Counters => self
                .port_reports()
                .map_err(|e| format!("reading counters: {e:#}"))
                .and_then(json),
            Request::Fib { lookup } => {
                let mut lookups = Vec::new();
                for addr in lookup {
                    for p in &self.plan.peerings {
                        let route = self
                            .msee
                            .lookup_route(p.domain, *addr)
                            .map_err(|e| format!("looking up {addr}: {e}"))?;
                        lookups.push(LookupView {
                            addr: *addr,
                            circuit: p.circuit.clone(),
                            peering: p.kind.name().to_owned(),
                            domain: p.domain,
                            route: route.map(|r| RouteEntryView {
                                group: r.group,
                                flags: r.flags,
                            }),
                        });
                    }
                }
                json(FibView {
                    circuits: self.plan.circuits.iter().map(|c| c.name.clone()).collect(),
                    now_ns: msee_sys::clock::monotonic_ns(),
                    cpu_ns: msee_sys::clock::process_cpu_ns(),
                    record: self.routing.install.clone(),
                    routes: self.routing.fib.route_count(),
                    groups: self.routing.fib.group_count(),
                    table: self.fib_table_sample(),
                    lookup: lookups,
                })
            }
            Request::Sessions => {
                let Some(s) = &self.sessions else {
                    return json(Vec::<SessionView>::new());
                };
                let now = std::time::Instant::now();
                let mut out = Vec::new();
                for (i, spec) in s.speaker.active() {
                    let rt = &s.rt[i];
                    let rib = self
                        .routing
                        .peering_rib(&(spec.circuit.clone(), spec.peering_type));
                    out.push(SessionView {
                        name: spec.name.clone(),
                        circuit: spec.circuit.clone(),
                        peering: format!("{:?}", spec.peering_type),
                        link: self.role_of(spec.link),
                        local: spec.local,
                        peer: spec.peer,
                        peer_as: spec.peer_as,
                        state: if rt.status.established {
                            "Established"
                        } else {
                            "Down"
                        }
                        .to_owned(),
                        since_secs: rt.status.since.map(|t| now.duration_since(t).as_secs()),
                        last_down: rt.status.last_down.clone(),
                        family: format!("{:?}", spec.family),
                        prefixes_received: rib
                            .map_or(0, |r| r.adj_rib_in_len((spec.link, spec.family))),
                        prefixes_advertised: rt.out.len(),
                        drained: rib.is_some_and(|r| r.is_drained(spec.link)),
                        held_by_bfd: rt.status.held_by_bfd,
                        held_by_carrier: rt.status.held_by_carrier,
                        max_prefixes: spec.max_prefixes,
                        md5: spec.md5_key.is_some(),
                    });
                }
                json(out)
            }
            Request::Routes { circuit } => {
                if self.plan.circuit(circuit).is_none() {
                    return Err(format!(
                        "unknown circuit {circuit:?} (this daemon runs: {})",
                        self.plan
                            .circuits
                            .iter()
                            .map(|c| c.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ));
                }
                let mut out = Vec::new();
                for p in self.plan.peerings.iter().filter(|p| &p.circuit == circuit) {
                    let Some(rib) = self
                        .routing
                        .rib_of(&p.reference())
                        .and_then(|r| self.routing.rib(r))
                    else {
                        continue;
                    };
                    for (prefix, members) in rib.routes() {
                        out.push(RouteView {
                            circuit: circuit.clone(),
                            peering: p.kind.name().to_owned(),
                            prefix: prefix.to_string(),
                            group: self.routing.fib.route(p.domain, prefix),
                            next_hops: members
                                .iter()
                                .map(|m| NextHopView {
                                    link: self.role_of(m.link),
                                    as_path_len: m.preference,
                                })
                                .collect(),
                        });
                    }
                }
                json(out)
            }
            // The operator's requests, answered by `answer_az` above.
            Request::Stats { .. }
            | Request::RouteTable { .. }
            | Request::RouteTableSummary { .. }
            | Request::ArpTable { .. }
            | Request::Usage { .. }
            | Request::Availability { .. }
            | Request::CaptureStart { .. }
            | Request::CaptureRead { .. }
            | Request::CaptureStop { .. }
            | Request::Snapshot => Err(format!("{request:?} is not answered here")),
        }
    }
}
