//! Routing domains and what the model puts in them: the one computation
//! both forwarding and advertisement read, so what a customer is told and
//! what is forwarded cannot disagree.
//!
//! - A circuit's private peering: its customer's routes, the routes of its
//!   Global Reach peers' customers (not transitively), and the VNets linked
//!   to it — toward their Azure-side ports when in reach, marked out of
//!   reach otherwise.
//! - A circuit's Microsoft peering: its customer's routes and the services
//!   its route filter selects, toward the Microsoft edge.
//! - A VNet's own Azure-side port: the customers of the circuits linked to
//!   it with the VNet in reach, and those circuits' VNets (VNet to VNet
//!   through the MSEE, as ExpressRoute allows).
//! - The shared Azure-side port (`--azure`): every running circuit's
//!   private peering and VNets.
//! - The Microsoft edge: every circuit's Microsoft-peering customers.
//!
//! Static routes (`--route`) go into every domain, over all of the above.
use std::collections::{BTreeMap, BTreeSet};

use circuit::{
    Community,
    model::{Circuit, Model, PeeringType},
};
use ipnet::IpNet;

use super::Side;

/// A peering whose customer's routes a domain holds.
pub type PeeringRef = (String, PeeringType);

/// What a domain holds, which is also its identity: two attachments whose
/// keys are equal look routes up in one domain.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DomainKey {
    /// Peerings whose customers' routes (from BGP) it holds.
    pub learned: BTreeSet<PeeringRef>,
    /// Circuits whose linked VNets it routes.
    pub vnets_of: BTreeSet<String>,
    /// Circuits whose Microsoft-peering services it routes.
    pub services_of: BTreeSet<String>,
}

/// Where a route from the model (or `--route`) goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StaticTarget {
    /// These links, equally preferred.
    Links(Vec<u32>),
    /// A known destination outside the circuit's reach: dropped and counted
    /// as such.
    OutOfReach,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DomainSpec {
    pub id: u32,
    pub key: DomainKey,
    /// The model's routes and `--route`'s, which win over learned ones.
    pub statics: BTreeMap<IpNet, StaticTarget>,
}

/// A route the model gives a circuit's peering: where it goes and, when it
/// is advertised to the customer, with which communities.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelRoute {
    pub prefix: IpNet,
    pub target: StaticTarget,
    /// `None`: not advertised (out of reach).
    pub advertised: Option<Vec<Community>>,
}

/// The link of the Azure-side port that carries `vnet`, if any.
fn vnet_link(sides: &[(Side, u32)], vnet: &str) -> Option<u32> {
    let find = |s: &Side| sides.iter().find(|(x, _)| x == s).map(|(_, l)| *l);
    find(&Side::Vnet(vnet.to_owned())).or_else(|| find(&Side::Azure))
}

/// The routes the model gives `circuit`'s private peering: every linked
/// VNet's prefixes, toward its Azure-side port and advertised with its
/// region community when in reach, out of reach otherwise. A VNet in reach
/// without an Azure-side port here is neither routed nor advertised.
pub fn vnet_routes(
    model: &Model,
    circuit: &Circuit,
    sides: &[(Side, u32)],
    notes: &mut Vec<String>,
) -> Vec<ModelRoute> {
    let mut out = Vec::new();
    for name in &circuit.vnet_links {
        let Some(vnet) = model.virtual_network(name) else {
            continue;
        };
        let in_reach = circuit.reaches(&vnet.region);
        let (target, advertised) = if !in_reach {
            (StaticTarget::OutOfReach, None)
        } else if let Some(link) = vnet_link(sides, name) {
            (
                StaticTarget::Links(vec![link]),
                Some(vec![vnet.region_community]),
            )
        } else {
            notes.push(format!(
                "VNet {name} (linked to {}): no Azure-side port for it (give --vnet {name}=IF or --azure IF): neither routed nor advertised",
                circuit.name
            ));
            continue;
        };
        for prefix in &vnet.address_prefixes {
            out.push(ModelRoute {
                prefix: *prefix,
                target: target.clone(),
                advertised: advertised.clone(),
            });
        }
    }
    out
}

/// The routes the model gives `circuit`'s Microsoft peering: the services
/// its route filter selects, toward the Microsoft edge, each advertised
/// with its community.
pub fn service_routes(
    circuit: &Circuit,
    sides: &[(Side, u32)],
    notes: &mut Vec<String>,
) -> Vec<ModelRoute> {
    let Some(p) = circuit.peering(PeeringType::MicrosoftPeering) else {
        return Vec::new();
    };
    if p.service_routes.is_empty() {
        return Vec::new();
    }
    let Some(link) = sides
        .iter()
        .find(|(s, _)| *s == Side::Microsoft)
        .map(|(_, l)| *l)
    else {
        notes.push(format!(
            "circuit {}: Microsoft peering's services have no port here (give --microsoft IF): neither routed nor advertised",
            circuit.name
        ));
        return Vec::new();
    };
    p.service_routes
        .iter()
        .map(|(prefix, community)| ModelRoute {
            prefix: *prefix,
            target: StaticTarget::Links(vec![link]),
            advertised: Some(vec![*community]),
        })
        .collect()
}

/// The model routes of one peering (what its sessions advertise comes
/// from the same list).
pub fn model_routes(
    model: &Model,
    circuit: &Circuit,
    peering: PeeringType,
    sides: &[(Side, u32)],
    notes: &mut Vec<String>,
) -> Vec<ModelRoute> {
    match peering {
        PeeringType::AzurePrivatePeering => vnet_routes(model, circuit, sides, notes),
        PeeringType::MicrosoftPeering => service_routes(circuit, sides, notes),
    }
}

/// The Global Reach peers of `circuit` that run here with a private peering.
pub fn global_reach_peers<'m>(
    model: &'m Model,
    circuit: &str,
    running: &[&Circuit],
) -> Vec<&'m str> {
    circuit::reach::global_reach_peers(model, circuit)
        .into_iter()
        .filter(|g| {
            running
                .iter()
                .any(|c| c.name == *g && c.peering(PeeringType::AzurePrivatePeering).is_some())
        })
        .collect()
}

/// The domain of every link side: its key and its static routes.
pub fn compute(
    model: Option<&Model>,
    running: &[&Circuit],
    sides: &[(Side, u32)],
    routes: &[(IpNet, Vec<u32>)],
    notes: &mut Vec<String>,
) -> Vec<(Side, DomainSpec)> {
    let has = |c: &Circuit, t| c.peering(t).is_some();
    let private = |c: &Circuit| (c.name.clone(), PeeringType::AzurePrivatePeering);
    let mut out = Vec::new();
    for (side, _) in sides {
        let mut key = DomainKey::default();
        if let Some(model) = model {
            match side {
                Side::Customer {
                    circuit, peering, ..
                } => {
                    key.learned.insert((circuit.clone(), *peering));
                    match peering {
                        PeeringType::AzurePrivatePeering => {
                            key.vnets_of.insert(circuit.clone());
                            for g in global_reach_peers(model, circuit, running) {
                                key.learned
                                    .insert((g.to_owned(), PeeringType::AzurePrivatePeering));
                            }
                        }
                        PeeringType::MicrosoftPeering => {
                            key.services_of.insert(circuit.clone());
                        }
                    }
                }
                Side::Vnet(vnet) => {
                    for c in running {
                        let region = model.virtual_network(vnet).map(|v| v.region.as_str());
                        if has(c, PeeringType::AzurePrivatePeering)
                            && c.vnet_links.iter().any(|l| l == vnet)
                            && region.is_some_and(|r| c.reaches(r))
                        {
                            key.learned.insert(private(c));
                            key.vnets_of.insert(c.name.clone());
                        }
                    }
                }
                Side::Azure => {
                    for c in running
                        .iter()
                        .filter(|c| has(c, PeeringType::AzurePrivatePeering))
                    {
                        key.learned.insert(private(c));
                        key.vnets_of.insert(c.name.clone());
                    }
                }
                Side::Microsoft => {
                    for c in running
                        .iter()
                        .filter(|c| has(c, PeeringType::MicrosoftPeering))
                    {
                        key.learned
                            .insert((c.name.clone(), PeeringType::MicrosoftPeering));
                    }
                }
                Side::Bare(_) => {}
            }
        }
        let mut statics: BTreeMap<IpNet, StaticTarget> = BTreeMap::new();
        if let Some(model) = model {
            for c in running {
                let vnets = key.vnets_of.contains(&c.name);
                let services = key.services_of.contains(&c.name);
                let mut found = Vec::new();
                if vnets {
                    found.extend(vnet_routes(model, c, sides, notes));
                }
                if services {
                    found.extend(service_routes(c, sides, notes));
                }
                for r in found {
                    // Routed by one circuit wins over out of reach by another.
                    match statics.get(&r.prefix) {
                        Some(StaticTarget::Links(_)) => {}
                        _ => {
                            statics.insert(r.prefix, r.target);
                        }
                    }
                }
            }
        }
        for (prefix, links) in routes {
            statics.insert(*prefix, StaticTarget::Links(links.clone()));
        }
        out.push((
            side.clone(),
            DomainSpec {
                id: 0,
                key,
                statics,
            },
        ));
    }
    let mut seen = BTreeSet::new();
    notes.retain(|n| seen.insert(n.clone()));
    out
}
