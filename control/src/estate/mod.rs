//! The estate this daemon runs: every circuit of the model (or those chosen
//! with `--circuit`), each peering on its port pair with its tags, the
//! Azure side's ports, and the routing domain frames arriving on each link
//! are looked up in.
//!
//! Planned as a pure function of the model, the ports the kernel reported
//! and the ids of the previous plan ([`IdBook`]): a wrong configuration is
//! refused before anything is loaded, and a reload keeps every id it can.
//!
//! Routing domains come from one computation over the model (see
//! [`domains`]): the domain of a circuit's private peering holds its
//! customer's routes, its Global Reach peers' customers' routes and the
//! VNets linked to it (those out of reach marked so); the domain of a VNet's
//! Azure-side port holds the routes of the circuits linked to it; Microsoft
//! peering's domain holds the services its route filter selects. Two
//! attachments whose domains would hold the same routes share one domain.
pub mod domains;
pub mod ids;
#[cfg(test)]
mod tests;

use std::{
    collections::{BTreeMap, BTreeSet},
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
};

use anyhow::{Result, anyhow, bail};
use circuit::model::{self, Model, PeeringType};
use ipnet::IpNet;
use msee_abi::{LinkRole, PeeringKind, vlan::VlanTags};

pub use domains::{DomainKey, DomainSpec, PeeringRef, StaticTarget};
pub use ids::IdBook;

use crate::netlink::Interface;

/// Which interface plays which part, from the command line.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PortMap {
    /// The provider port pair (primary, secondary): every circuit without an
    /// ExpressRoute Direct port.
    pub provider: Option<[String; 2]>,
    /// ExpressRoute Direct port pairs by the port resource's name.
    pub direct: BTreeMap<String, [String; 2]>,
    /// One Azure-side port for every VNet without a port of its own.
    pub azure: Option<String>,
    /// A VNet's own Azure-side port (its gateway), by VNet name.
    pub vnets: BTreeMap<String, String>,
    /// The Microsoft edge: the services reached over Microsoft peering.
    pub microsoft: Option<String>,
}

impl PortMap {
    /// Every interface named, once.
    pub fn interfaces(&self) -> BTreeSet<&str> {
        let mut out = BTreeSet::new();
        for pair in self.provider.iter().chain(self.direct.values()) {
            out.extend(pair.iter().map(String::as_str));
        }
        out.extend(self.azure.as_deref());
        out.extend(self.vnets.values().map(String::as_str));
        out.extend(self.microsoft.as_deref());
        out
    }
}

/// A static route (`--route`): `prefix` via one or more neighbours, each
/// reached through whichever link has it in a connected subnet. Installed
/// in every routing domain, over what the model and BGP give.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StaticRoute {
    pub prefix: IpNet,
    pub via: Vec<IpAddr>,
}

/// What a link is, independent of the id it gets: the key of [`IdBook`].
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Side {
    /// A customer link of a circuit's peering.
    Customer {
        circuit: String,
        peering: PeeringType,
        role: model::LinkRole,
    },
    /// A customer port without a circuit model (static routes only).
    Bare(model::LinkRole),
    /// The Azure-side port of one VNet (its gateway).
    Vnet(String),
    /// The Azure-side port shared by every VNet without one of its own.
    Azure,
    /// The Microsoft edge.
    Microsoft,
}

/// One link of the MSEE: a peering's VLAN on a customer port, or an
/// Azure-side port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkSpec {
    pub id: u32,
    pub side: Side,
    /// How logs, counters and the API name it, e.g.
    /// `er-ams/AzurePrivatePeering/primary`, `vnet-weu`, `azure`.
    pub name: String,
    pub role: LinkRole,
    pub iface: Interface,
    /// `None`: untagged.
    pub tags: Option<VlanTags>,
    /// 0 on the Azure side.
    pub circuit: u32,
    pub peering: PeeringKind,
    /// Routing domain of frames arriving on this link.
    pub domain: u32,
    /// The MSEE's addresses on this link, with their prefix lengths. The
    /// daemon adds those the port lacks.
    pub addrs: Vec<(IpAddr, u8)>,
    /// The one neighbour on this link (customer router or Azure gateway):
    /// its IPv4 address, whose ARP answer gives the link's MAC, and its
    /// IPv6 address if the link carries IPv6 too.
    pub neighbour: Option<Ipv4Addr>,
    pub neighbour6: Option<Ipv6Addr>,
    /// Whether a BGP session runs over this link.
    pub bgp: bool,
    /// Policed at this rate (bit/s) in both directions.
    pub police_bps: Option<u64>,
}

impl LinkSpec {
    /// Whether `addr` is in one of this link's subnets.
    pub fn connects(&self, addr: IpAddr) -> bool {
        self.addrs.iter().any(|(a, len)| {
            IpNet::new(*a, *len).is_ok_and(|n| n.trunc().contains(&addr) && *a != addr)
        })
    }

    pub fn attachment_key(&self) -> msee_abi::AttachmentKey {
        let t = self.tags.unwrap_or_default();
        msee_abi::AttachmentKey {
            ifindex: self.iface.ifindex,
            outer_vlan: t.outer_vid,
            inner_vlan: t.inner_vid,
        }
    }
}

/// A peering that runs: its links and domain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeeringRun {
    pub circuit: String,
    pub peering_type: PeeringType,
    pub kind: PeeringKind,
    /// Primary then secondary.
    pub links: [u32; 2],
    pub domain: u32,
}

impl PeeringRun {
    pub fn reference(&self) -> PeeringRef {
        (self.circuit.clone(), self.peering_type)
    }
}

/// A circuit that runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CircuitRun {
    pub name: String,
    pub id: u32,
    /// Where its links are: the provider pair, or a Direct port's name.
    pub port_pair: String,
}

/// Everything the daemon runs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    pub circuits: Vec<CircuitRun>,
    pub peerings: Vec<PeeringRun>,
    /// By id.
    pub links: Vec<LinkSpec>,
    /// By id.
    pub domains: Vec<DomainSpec>,
    /// What is not run, and why.
    pub notes: Vec<String>,
}

impl Plan {
    pub fn link(&self, id: u32) -> Option<&LinkSpec> {
        self.links.iter().find(|l| l.id == id)
    }

    pub fn link_of(&self, side: &Side) -> Option<&LinkSpec> {
        self.links.iter().find(|l| &l.side == side)
    }

    pub fn peering(&self, circuit: &str, peering: PeeringType) -> Option<&PeeringRun> {
        self.peerings
            .iter()
            .find(|p| p.circuit == circuit && p.peering_type == peering)
    }

    pub fn domain(&self, id: u32) -> Option<&DomainSpec> {
        self.domains.iter().find(|d| d.id == id)
    }

    pub fn circuit(&self, name: &str) -> Option<&CircuitRun> {
        self.circuits.iter().find(|c| c.name == name)
    }
}

/// What the plan is made from.
pub struct Inputs<'a> {
    pub model: Option<&'a Model>,
    pub ports: &'a PortMap,
    /// The interfaces of `ports`, as the kernel reported them.
    pub ifaces: &'a BTreeMap<String, Interface>,
    /// Each peering on its VLAN; otherwise one circuit's private peering
    /// untagged on the provider pair.
    pub tagged: bool,
    /// Run only these circuits (all when empty).
    pub only: &'a [String],
    pub routes: &'a [StaticRoute],
    /// Police customer links at this rate instead of their circuit's.
    pub bandwidth_override_bps: Option<u64>,
}

pub fn kind_of(t: PeeringType) -> PeeringKind {
    match t {
        PeeringType::AzurePrivatePeering => PeeringKind::Private,
        PeeringType::MicrosoftPeering => PeeringKind::Microsoft,
    }
}

pub fn type_of(k: PeeringKind) -> PeeringType {
    match k {
        PeeringKind::Private => PeeringType::AzurePrivatePeering,
        PeeringKind::Microsoft => PeeringType::MicrosoftPeering,
    }
}

fn abi_role(r: model::LinkRole) -> LinkRole {
    match r {
        model::LinkRole::Primary => LinkRole::Primary,
        model::LinkRole::Secondary => LinkRole::Secondary,
    }
}

/// The tags of a peering's VLAN as ExpressRoute sends them (0x8100 on both
/// tags of a QinQ pair).
pub fn vlan_tags(tag: model::VlanTag) -> VlanTags {
    match tag {
        model::VlanTag::Dot1Q(vid) => VlanTags::dot1q(vid),
        model::VlanTag::QinQ { s_tag, c_tag } => VlanTags::double_dot1q(s_tag, c_tag),
    }
}

/// The other usable address of a point-to-point subnet (/30 or /31, /126
/// or /127): the neighbour of an Azure-side port.
fn point_to_point_peer(addr: IpAddr, len: u8) -> Option<IpAddr> {
    match addr {
        IpAddr::V4(a) => {
            let a = u32::from(a);
            match len {
                31 => Some(IpAddr::V4(Ipv4Addr::from(a ^ 1))),
                30 => match a & 3 {
                    1 => Some(IpAddr::V4(Ipv4Addr::from(a + 1))),
                    2 => Some(IpAddr::V4(Ipv4Addr::from(a - 1))),
                    _ => None,
                },
                _ => None,
            }
        }
        IpAddr::V6(a) => {
            let a = u128::from(a);
            match len {
                127 => Some(IpAddr::V6(Ipv6Addr::from(a ^ 1))),
                126 => match a & 3 {
                    1 => Some(IpAddr::V6(Ipv6Addr::from(a + 1))),
                    2 => Some(IpAddr::V6(Ipv6Addr::from(a - 1))),
                    _ => None,
                },
                _ => None,
            }
        }
    }
}

fn iface<'a>(inputs: &'a Inputs, name: &str) -> Result<&'a Interface> {
    inputs
        .ifaces
        .get(name)
        .ok_or_else(|| anyhow!("interface {name} was not found"))
}

fn iface_addrs(i: &Interface) -> Vec<(IpAddr, u8)> {
    i.addrs
        .iter()
        .map(|(a, l)| (IpAddr::V4(*a), *l))
        .chain(i.addrs6.iter().map(|(a, l)| (IpAddr::V6(*a), *l)))
        .collect()
}

/// A link before it has an id.
struct Draft {
    side: Side,
    name: String,
    role: LinkRole,
    iface: Interface,
    tags: Option<VlanTags>,
    circuit: String,
    peering: PeeringKind,
    addrs: Vec<(IpAddr, u8)>,
    neighbour: Option<Ipv4Addr>,
    neighbour6: Option<Ipv6Addr>,
    bgp: bool,
    police_bps: Option<u64>,
}

/// Plans the estate. `ids` carries the ids of the previous plan (empty at
/// start) and is updated.
pub fn plan(inputs: &Inputs, ids: &mut IdBook) -> Result<Plan> {
    let mut notes = Vec::new();
    let mut drafts: Vec<Draft> = Vec::new();
    let mut running: Vec<(&model::Circuit, String)> = Vec::new();

    if let Some(model) = inputs.model {
        for name in inputs.only {
            model.circuit_named(name).map_err(|e| anyhow::anyhow!(e))?;
        }
        for c in &model.circuits {
            if !inputs.only.is_empty() && !inputs.only.contains(&c.name) {
                continue;
            }
            if c.peerings.is_empty() {
                notes.push(format!(
                    "circuit {}: not run: it has no peerings (provisioning state {:?})",
                    c.name, c.provisioning_state
                ));
                continue;
            }
            let pair = match &c.express_route_port {
                Some(port) => match inputs.ports.direct.get(port) {
                    Some(pair) => (pair.clone(), port.clone()),
                    None => {
                        notes.push(format!(
                            "circuit {}: not run: no ports for its ExpressRoute Direct port pair {port} (give --direct {port}=PRIMARY,SECONDARY)",
                            c.name
                        ));
                        continue;
                    }
                },
                None => match &inputs.ports.provider {
                    Some(pair) => (pair.clone(), "provider".to_owned()),
                    None => {
                        notes.push(format!(
                            "circuit {}: not run: no provider port pair (give --primary and --secondary)",
                            c.name
                        ));
                        continue;
                    }
                },
            };
            running.push((c, pair.1));
            for p in &c.peerings {
                let kind = kind_of(p.peering_type);
                if !inputs.tagged && kind != PeeringKind::Private {
                    notes.push(format!(
                        "circuit {}: {:?} not run: it needs its VLAN (run with --tagged; an untagged port carries only private peering)",
                        c.name, p.peering_type
                    ));
                    continue;
                }
                for (l, ifname) in [&p.primary, &p.secondary].into_iter().zip(&pair.0) {
                    let mut addrs = vec![(IpAddr::V4(l.ipv4.msee), l.ipv4.subnet.prefix_len())];
                    if let Some(v6) = &l.ipv6 {
                        addrs.push((IpAddr::V6(v6.msee), v6.subnet.prefix_len()));
                    }
                    drafts.push(Draft {
                        side: Side::Customer {
                            circuit: c.name.clone(),
                            peering: p.peering_type,
                            role: l.role,
                        },
                        // Untagged, a port is one circuit's one link.
                        name: if inputs.tagged {
                            format!("{}/{:?}/{}", c.name, p.peering_type, l.role)
                        } else {
                            l.role.to_string()
                        },
                        role: abi_role(l.role),
                        iface: iface(inputs, ifname)?.clone(),
                        tags: inputs.tagged.then(|| vlan_tags(p.vlan)),
                        circuit: c.name.clone(),
                        peering: kind,
                        addrs,
                        neighbour: Some(l.ipv4.customer),
                        neighbour6: l.ipv6.as_ref().map(|v| v.customer),
                        bgp: true,
                        police_bps: Some(
                            inputs
                                .bandwidth_override_bps
                                .unwrap_or(u64::from(c.bandwidth_mbps) * 1_000_000),
                        ),
                    });
                }
            }
        }
        if running.is_empty() {
            bail!(
                "no circuit can run here:\n  {}",
                if notes.is_empty() {
                    "the configuration has no circuits".to_owned()
                } else {
                    notes.join("\n  ")
                }
            );
        }
        if !inputs.tagged && running.len() > 1 {
            bail!(
                "{} circuits would share the provider port pair untagged: run with --tagged (each peering on its VLAN) or choose one with --circuit",
                running.len()
            );
        }
        for name in inputs.ports.vnets.keys() {
            if model.virtual_network(name).is_none() {
                bail!(
                    "--vnet {name}: no such VNet in the configuration (it has: {})",
                    model
                        .virtual_networks
                        .iter()
                        .map(|v| v.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            }
        }
    } else {
        if inputs.tagged {
            bail!("--tagged runs the peerings of circuits: give their --config");
        }
        let Some(pair) = &inputs.ports.provider else {
            bail!("no customer ports: give --primary and --secondary");
        };
        for (role, ifname) in [model::LinkRole::Primary, model::LinkRole::Secondary]
            .into_iter()
            .zip(pair)
        {
            let i = iface(inputs, ifname)?;
            drafts.push(Draft {
                side: Side::Bare(role),
                name: role.to_string(),
                role: abi_role(role),
                iface: i.clone(),
                tags: None,
                circuit: String::new(),
                peering: PeeringKind::Private,
                addrs: iface_addrs(i),
                neighbour: None,
                neighbour6: None,
                bgp: false,
                police_bps: inputs.bandwidth_override_bps,
            });
        }
    }

    // The Azure side.
    let linked: BTreeSet<&str> = running
        .iter()
        .flat_map(|(c, _)| c.vnet_links.iter().map(String::as_str))
        .collect();
    let mut azure_side: Vec<(Side, String, &str, PeeringKind)> = Vec::new();
    for (vnet, ifname) in &inputs.ports.vnets {
        if !linked.contains(vnet.as_str()) {
            notes.push(format!(
                "VNet {vnet}: its port {ifname} is not used: no running circuit links it"
            ));
            continue;
        }
        azure_side.push((
            Side::Vnet(vnet.clone()),
            vnet.clone(),
            ifname,
            PeeringKind::Private,
        ));
    }
    if let Some(ifname) = &inputs.ports.azure {
        azure_side.push((Side::Azure, "azure".into(), ifname, PeeringKind::Private));
    }
    if let Some(ifname) = &inputs.ports.microsoft {
        azure_side.push((
            Side::Microsoft,
            "microsoft".into(),
            ifname,
            PeeringKind::Microsoft,
        ));
    }
    for (side, name, ifname, peering) in azure_side {
        let i = iface(inputs, ifname)?;
        let addrs = iface_addrs(i);
        if !addrs.iter().any(|(a, _)| a.is_ipv4()) {
            bail!("Azure-side port {ifname} ({name}) has no IPv4 address");
        }
        drafts.push(Draft {
            side,
            name,
            role: LinkRole::Azure,
            iface: i.clone(),
            tags: None,
            circuit: String::new(),
            peering,
            addrs,
            neighbour: None,
            neighbour6: None,
            bgp: false,
            police_bps: None,
        });
    }

    check_unique(&drafts)?;

    // Static routes name their next hops: the links that have them in a
    // connected subnet get them as neighbours.
    let mut route_links: Vec<(IpNet, Vec<usize>)> = Vec::new();
    for route in inputs.routes {
        let mut members = Vec::new();
        for via in &route.via {
            let d = drafts
                .iter()
                .position(|d| {
                    d.addrs.iter().any(|(a, len)| {
                        IpNet::new(*a, *len).is_ok_and(|n| n.trunc().contains(via) && a != via)
                    })
                })
                .ok_or_else(|| {
                    anyhow!(
                        "route {}: next hop {via} is on none of the links' subnets",
                        route.prefix
                    )
                })?;
            set_neighbour(&mut drafts[d], *via)?;
            members.push(d);
        }
        members.sort_unstable();
        members.dedup();
        route_links.push((route.prefix, members));
    }
    // Azure-side ports without a static route: the other end of their
    // point-to-point subnet.
    for d in drafts.iter_mut().filter(|d| d.role == LinkRole::Azure) {
        for (a, len) in d.addrs.clone() {
            let known = match a {
                IpAddr::V4(_) => d.neighbour.is_some(),
                IpAddr::V6(_) => d.neighbour6.is_some(),
            };
            if !known && let Some(peer) = point_to_point_peer(a, len) {
                set_neighbour(d, peer)?;
            }
        }
        if d.neighbour.is_none() && inputs.model.is_some() {
            bail!(
                "Azure-side port {} ({}): its neighbour is unknown: give the port a /30 or /31, or a --route via it",
                d.iface.name,
                d.name
            );
        }
    }
    if let Some(d) = drafts
        .iter()
        .find(|d| d.neighbour.is_none() && d.neighbour6.is_some())
    {
        bail!(
            "port {} ({}): next hop {} needs an IPv4 next hop on the same link too (its ARP answer gives the link's MAC)",
            d.iface.name,
            d.name,
            d.neighbour6.expect("checked")
        );
    }

    // Ids: links kept by this plan first, then new ones, which never take
    // an id the running plan's links hold.
    let held = ids.held_link_ids();
    let mut taken = held.clone();
    let mut link_ids = vec![None; drafts.len()];
    let order: Vec<usize> = (0..drafts.len())
        .filter(|i| ids.has_link(&drafts[*i].side))
        .chain((0..drafts.len()).filter(|i| !ids.has_link(&drafts[*i].side)))
        .collect();
    for i in order {
        link_ids[i] = Some(
            ids.link(&drafts[i].side, &mut taken, msee_abi::MAX_LINKS)
                .ok_or_else(|| {
                    let running = held.len();
                    if running == 0 {
                        anyhow!(
                            "more than {} links: the dataplane has room for no more",
                            msee_abi::MAX_LINKS
                        )
                    } else {
                        anyhow!(
                            "more than {} links: the dataplane has room for no more, counting the {running} running links, which stay until the new ones are in place (remove circuits in one reload, add them in the next)",
                            msee_abi::MAX_LINKS
                        )
                    }
                })?,
        );
    }
    let link_id = |i: usize| link_ids[i].expect("every draft has an id");

    let mut circuits = Vec::new();
    for (c, pair) in &running {
        circuits.push(CircuitRun {
            name: c.name.clone(),
            id: ids.circuit(&c.name),
            port_pair: pair.clone(),
        });
    }

    let statics: Vec<(IpNet, Vec<u32>)> = route_links
        .iter()
        .map(|(p, m)| (*p, m.iter().map(|i| link_id(*i)).collect()))
        .collect();
    let sides: Vec<(Side, u32)> = drafts
        .iter()
        .enumerate()
        .map(|(i, d)| (d.side.clone(), link_id(i)))
        .collect();
    let views = domains::compute(
        inputs.model,
        &running.iter().map(|(c, _)| *c).collect::<Vec<_>>(),
        &sides,
        &statics,
        &mut notes,
    );
    let mut domain_specs: BTreeMap<u32, DomainSpec> = BTreeMap::new();
    let mut link_domain = BTreeMap::new();
    for (side, view) in views {
        let id = ids.domain(&view.key);
        link_domain.insert(side, id);
        domain_specs.entry(id).or_insert(DomainSpec { id, ..view });
    }

    let circuit_id: BTreeMap<&str, u32> =
        circuits.iter().map(|c| (c.name.as_str(), c.id)).collect();
    let mut links: Vec<LinkSpec> = drafts
        .into_iter()
        .enumerate()
        .map(|(i, d)| LinkSpec {
            id: link_id(i),
            domain: link_domain[&d.side],
            circuit: circuit_id.get(d.circuit.as_str()).copied().unwrap_or(0),
            side: d.side,
            name: d.name,
            role: d.role,
            iface: d.iface,
            tags: d.tags,
            peering: d.peering,
            addrs: d.addrs,
            neighbour: d.neighbour,
            neighbour6: d.neighbour6,
            bgp: d.bgp,
            police_bps: d.police_bps,
        })
        .collect();
    links.sort_by_key(|l| l.id);

    let mut peerings = Vec::new();
    for (c, _) in &running {
        for p in &c.peerings {
            if !inputs.tagged && kind_of(p.peering_type) != PeeringKind::Private {
                continue;
            }
            let side = |role| Side::Customer {
                circuit: c.name.clone(),
                peering: p.peering_type,
                role,
            };
            let find = |role| {
                links
                    .iter()
                    .find(|l| l.side == side(role))
                    .expect("planned above")
            };
            let (pri, sec) = (
                find(model::LinkRole::Primary),
                find(model::LinkRole::Secondary),
            );
            peerings.push(PeeringRun {
                circuit: c.name.clone(),
                peering_type: p.peering_type,
                kind: kind_of(p.peering_type),
                links: [pri.id, sec.id],
                domain: pri.domain,
            });
        }
    }

    ids.retain(
        &links.iter().map(|l| &l.side).collect(),
        &domain_specs.values().map(|d| &d.key).collect(),
        &circuits.iter().map(|c| c.name.as_str()).collect(),
    );
    Ok(Plan {
        circuits,
        peerings,
        links,
        domains: domain_specs.into_values().collect(),
        notes,
    })
}

fn set_neighbour(d: &mut Draft, via: IpAddr) -> Result<()> {
    let known = match via {
        IpAddr::V4(v) => d.neighbour.replace(v).map(IpAddr::V4),
        IpAddr::V6(v) => d.neighbour6.replace(v).map(IpAddr::V6),
    };
    match known {
        Some(n) if n != via => bail!(
            "port {} ({}): next hops {n} and {via}: a link has exactly one neighbour",
            d.iface.name,
            d.name
        ),
        _ => Ok(()),
    }
}

/// Two links may not share an attachment (port and tags), and the MSEE's
/// subnets may not overlap: one namespace holds them all.
fn check_unique(drafts: &[Draft]) -> Result<()> {
    let mut keys: BTreeMap<(u32, u16, u16), &str> = BTreeMap::new();
    for d in drafts {
        let t = d.tags.unwrap_or_default();
        if let Some(other) = keys.insert((d.iface.ifindex, t.outer_vid, t.inner_vid), &d.name) {
            let tags = match d.tags {
                Some(t) if t.inner_vid != 0 => format!("tags {}/{}", t.outer_vid, t.inner_vid),
                Some(t) => format!("VLAN {}", t.outer_vid),
                None => "no tag".to_owned(),
            };
            bail!(
                "{} and {other} both use port {} with {tags}: a frame could not tell them apart",
                d.name,
                d.iface.name
            );
        }
    }
    let mut subnets: Vec<(IpNet, &str)> = Vec::new();
    for d in drafts.iter().filter(|d| d.role != LinkRole::Azure) {
        for (a, len) in &d.addrs {
            let Ok(net) = IpNet::new(*a, *len).map(|n| n.trunc()) else {
                continue;
            };
            if let Some((other, who)) = subnets
                .iter()
                .find(|(o, who)| *who != d.name && (o.contains(&net) || net.contains(o)))
            {
                bail!(
                    "{} ({net}) and {who} ({other}) claim overlapping peering subnets: one MSEE namespace cannot hold both",
                    d.name
                );
            }
            subnets.push((net, &d.name));
        }
    }
    Ok(())
}
