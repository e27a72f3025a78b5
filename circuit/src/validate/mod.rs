//! Validation: a [`Config`] is checked as a whole against the [`Catalog`]
//! and turned into a [`Model`], or refused with every error found, each
//! naming its field path (`circuits[1].peerings[0].peerASN: ...`).

use std::collections::{BTreeMap, HashMap};

use ipnet::{IpNet, Ipv4Net};

use crate::catalog::Catalog;
use crate::config::{self, Config, PeeringType, SkuTier};
use crate::model::{self, GlobalReachPair, Model};
use crate::reach;

mod addressing;
mod bfd;
mod bgp;
mod errors;
mod family;
mod microsoft;
mod peering;
mod vlan;

pub use bfd::{BFD_INTERVAL_MS, BFD_MULTIPLIER};
pub use bgp::{MAX_SHARED_KEY_LEN, RESERVED_ASNS};
pub use errors::{ValidationError, ValidationErrors};

use errors::Validator;

/// Circuit bandwidths of provider circuits, in Mbps.
pub const PROVIDER_BANDWIDTHS_MBPS: [u32; 8] = [50, 100, 200, 500, 1_000, 2_000, 5_000, 10_000];
/// Circuit bandwidths on ExpressRoute Direct ports, in Mbps.
pub const DIRECT_BANDWIDTHS_MBPS: [u32; 6] = [1_000, 2_000, 5_000, 10_000, 40_000, 100_000];
/// Azure-to-customer limit per VNet connection.
pub const MAX_VNET_PREFIXES_IPV4: usize = 1_000;
pub const MAX_VNET_PREFIXES_IPV6: usize = 100;

/// How many VNets may be linked to a circuit.
pub fn max_vnet_links(tier: SkuTier, bandwidth_mbps: u32) -> usize {
    match tier {
        SkuTier::Local | SkuTier::Standard => 10,
        SkuTier::Premium => match bandwidth_mbps {
            0..=50 => 20,
            51..=200 => 25,
            201..=500 => 40,
            501..=1_000 => 50,
            1_001..=2_000 => 60,
            2_001..=5_000 => 75,
            _ => 100,
        },
    }
}

/// Facts about a circuit other checks need (even when the circuit has errors).
struct CircuitFacts<'c> {
    name: String,
    location: Option<&'c crate::catalog::PeeringLocation>,
    tier: SkuTier,
    bandwidth: u32,
    has_private_peering: bool,
    /// IPv4 peering subnets as written (parsed leniently), for overlap checks.
    peering_subnets: Vec<Ipv4Net>,
    reach: Vec<String>,
}

/// A Global Reach connection as declared, for the pairing pass.
struct GrDecl {
    path: String,
    from: usize,
    name: String,
    target: String,
    prefix: Option<Ipv4Net>,
}

/// Validates `config` against `catalog`. On success the derived model;
/// otherwise every error found.
pub fn validate(config: &Config, catalog: &Catalog) -> Result<Model, ValidationErrors> {
    let mut v = Validator::default();

    // ---- ExpressRoute Direct ports
    let mut ports: HashMap<&str, &config::ExpressRoutePort> = HashMap::new();
    for (i, port) in config.express_route_ports.iter().enumerate() {
        let p = format!("expressRoutePorts[{i}]");
        if port.name.trim().is_empty() {
            v.err(format!("{p}.name"), "port name is empty");
        } else if ports.insert(port.name.as_str(), port).is_some() {
            v.err(
                format!("{p}.name"),
                format!("duplicate port name {:?}", port.name),
            );
        }
        if catalog.peering_location(&port.peering_location).is_none() {
            v.err(
                format!("{p}.peeringLocation"),
                format!(
                    "unknown peering location {:?}; known: {}",
                    port.peering_location,
                    catalog.peering_location_names().join(", ")
                ),
            );
        }
        if ![10, 100].contains(&port.bandwidth_in_gbps) {
            v.err(
                format!("{p}.bandwidthInGbps"),
                format!(
                    "{} is not a port speed; ExpressRoute Direct ports are 10 or 100",
                    port.bandwidth_in_gbps
                ),
            );
        }
    }

    let filters = microsoft::route_filters(&mut v, config, catalog);

    // ---- circuits
    let mut facts: Vec<CircuitFacts> = Vec::new();
    let mut built: Vec<Option<model::Circuit>> = Vec::new();
    let mut gr_decls: Vec<GrDecl> = Vec::new();
    let mut attachments = vlan::Attachments::default();
    let mut port_load: BTreeMap<&str, u64> = BTreeMap::new();

    for (i, c) in config.circuits.iter().enumerate() {
        let cp = format!("circuits[{i}]");
        let mut ok = true;

        if c.name.trim().is_empty() {
            v.err(format!("{cp}.name"), "circuit name is empty");
            ok = false;
        } else if let Some(j) = config.circuits[..i].iter().position(|o| o.name == c.name) {
            v.err(
                format!("{cp}.name"),
                format!(
                    "duplicate circuit name {:?} (already used by circuits[{j}])",
                    c.name
                ),
            );
            ok = false;
        }
        if !is_uuid(&c.service_key) {
            v.err(
                format!("{cp}.serviceKey"),
                format!("{:?} is not a UUID; expected 8-4-4-4-12 hex digits, e.g. 00000000-0000-0000-0000-000000000001", c.service_key),
            );
            ok = false;
        } else if let Some(j) = config.circuits[..i]
            .iter()
            .position(|o| o.service_key.eq_ignore_ascii_case(&c.service_key))
        {
            v.err(
                format!("{cp}.serviceKey"),
                format!("duplicate serviceKey (already used by circuits[{j}])"),
            );
            ok = false;
        }

        let spp = &c.service_provider_properties;
        let location = catalog.peering_location(&spp.peering_location);
        if location.is_none() {
            v.err(
                format!("{cp}.serviceProviderProperties.peeringLocation"),
                format!(
                    "unknown peering location {:?}; known: {}",
                    spp.peering_location,
                    catalog.peering_location_names().join(", ")
                ),
            );
            ok = false;
        }

        let port = match &c.express_route_port {
            None => None,
            Some(name) => match ports.get(name.as_str()) {
                None => {
                    v.err(
                        format!("{cp}.expressRoutePort"),
                        format!("unknown expressRoutePort {name:?}"),
                    );
                    ok = false;
                    None
                }
                Some(port) => Some(*port),
            },
        };
        let bw = spp.bandwidth_in_mbps;
        let bw_path = format!("{cp}.serviceProviderProperties.bandwidthInMbps");
        if let Some(port) = port {
            if !DIRECT_BANDWIDTHS_MBPS.contains(&bw) {
                v.err(
                    &bw_path,
                    format!(
                        "{bw} is not offered on ExpressRoute Direct; allowed: {}",
                        list(&DIRECT_BANDWIDTHS_MBPS)
                    ),
                );
                ok = false;
            } else if u64::from(bw) > u64::from(port.bandwidth_in_gbps) * 1000 {
                v.err(
                    &bw_path,
                    format!(
                        "{bw} Mbps exceeds the {} Gbps port {:?}",
                        port.bandwidth_in_gbps, port.name
                    ),
                );
                ok = false;
            }
            *port_load.entry(port.name.as_str()).or_default() += u64::from(bw);
            if let Some(loc) = location
                && !loc.name.eq_ignore_ascii_case(&port.peering_location)
            {
                v.err(
                    format!("{cp}.expressRoutePort"),
                    format!(
                        "port {:?} is at {}, the circuit at {}; they must match",
                        port.name, port.peering_location, loc.name
                    ),
                );
                ok = false;
            }
        } else if !PROVIDER_BANDWIDTHS_MBPS.contains(&bw) {
            let extra = if DIRECT_BANDWIDTHS_MBPS.contains(&bw) {
                " (40000 and 100000 need an expressRoutePort: ExpressRoute Direct)"
            } else {
                ""
            };
            v.err(
                &bw_path,
                format!(
                    "{bw} is not a circuit bandwidth; allowed: {}{extra}",
                    list(&PROVIDER_BANDWIDTHS_MBPS)
                ),
            );
            ok = false;
        }

        let reach: Vec<String> = location
            .map(|l| {
                reach::regions_reached(catalog, l, c.sku.tier)
                    .into_iter()
                    .map(|r| r.name.clone())
                    .collect()
            })
            .unwrap_or_default();

        // peerings
        let mut peerings = Vec::new();
        for (j, p) in c.peerings.iter().enumerate() {
            let pp = format!("{cp}.peerings[{j}]");
            peering::place_in_circuit(&mut v, &cp, c, j);
            match peering::peering(&mut v, &pp, p, c.sku.tier, &filters, catalog) {
                Some(m) => peerings.push(m),
                None => ok = false,
            }
            for (k, gr) in p.connections.iter().enumerate() {
                let gp = format!("{pp}.connections[{k}]");
                if p.peering_type != PeeringType::AzurePrivatePeering {
                    v.err(
                        &gp,
                        "Global Reach connections belong to AzurePrivatePeering only",
                    );
                    continue;
                }
                let prefix = addressing::exact_prefix::<Ipv4Net>(
                    &mut v,
                    &format!("{gp}.addressPrefix"),
                    &gr.address_prefix,
                    29,
                );
                gr_decls.push(GrDecl {
                    path: gp,
                    from: i,
                    name: gr.name.clone(),
                    target: gr.peer_express_route_circuit_peering.clone(),
                    prefix,
                });
            }
        }

        let mark = v.mark();
        vlan::within_circuit(&mut v, &cp, c, port);
        attachments.claim(&mut v, &cp, c);
        ok &= v.clean_since(mark);

        facts.push(CircuitFacts {
            name: c.name.clone(),
            location,
            tier: c.sku.tier,
            bandwidth: bw,
            has_private_peering: c
                .peerings
                .iter()
                .any(|p| p.peering_type == PeeringType::AzurePrivatePeering),
            reach: reach.clone(),
            peering_subnets: c
                .peerings
                .iter()
                .flat_map(|p| {
                    [
                        &p.peer_address_prefix,
                        &p.primary_peer_address_prefix,
                        &p.secondary_peer_address_prefix,
                    ]
                })
                .filter_map(|t| t.as_deref()?.trim().parse::<Ipv4Net>().ok())
                .map(|n| n.trunc())
                .collect(),
        });
        built.push(if ok {
            let loc = location.expect("checked above");
            Some(model::Circuit {
                name: c.name.clone(),
                service_key: c.service_key.to_ascii_lowercase(),
                service_provider_name: spp.service_provider_name.clone(),
                peering_location: loc.name.clone(),
                metro: loc.metro.clone(),
                area: loc.area.clone(),
                national: loc.national,
                bandwidth_mbps: bw,
                tier: c.sku.tier,
                family: c.sku.family,
                provisioning_state: c.service_provider_provisioning_state,
                express_route_port: c.express_route_port.clone(),
                peerings,
                reach,
                vnet_links: Vec::new(),
            })
        } else {
            None
        });
    }

    // ---- Direct port subscription: circuits may add up to 2x the port speed
    for (i, port) in config.express_route_ports.iter().enumerate() {
        let load = port_load.get(port.name.as_str()).copied().unwrap_or(0);
        let cap = u64::from(port.bandwidth_in_gbps) * 2000;
        if load > cap {
            v.err(
                format!("expressRoutePorts[{i}]"),
                format!(
                    "circuits on port {:?} add up to {load} Mbps; a {} Gbps port pair allows {cap} Mbps",
                    port.name, port.bandwidth_in_gbps
                ),
            );
        }
    }

    // ---- virtual networks
    let mut vnets: Vec<Option<model::VirtualNetwork>> = Vec::new();
    for (i, vn) in config.virtual_networks.iter().enumerate() {
        let p = format!("virtualNetworks[{i}]");
        let mut ok = true;
        if let Some(j) = config.virtual_networks[..i]
            .iter()
            .position(|o| o.name == vn.name)
        {
            v.err(
                format!("{p}.name"),
                format!(
                    "duplicate virtual network name {:?} (already used by virtualNetworks[{j}])",
                    vn.name
                ),
            );
            ok = false;
        }
        let region = catalog.region(&vn.location);
        if region.is_none() {
            let known: Vec<&str> = catalog.regions.iter().map(|r| r.name.as_str()).collect();
            v.err(
                format!("{p}.location"),
                format!(
                    "unknown region {:?}; known: {}",
                    vn.location,
                    known.join(", ")
                ),
            );
            ok = false;
        }
        let mut prefixes = Vec::new();
        if vn.address_space.address_prefixes.is_empty() {
            v.err(
                format!("{p}.addressSpace.addressPrefixes"),
                "a virtual network needs at least one address prefix",
            );
            ok = false;
        }
        for (k, text) in vn.address_space.address_prefixes.iter().enumerate() {
            match addressing::any_prefix(
                &mut v,
                &format!("{p}.addressSpace.addressPrefixes[{k}]"),
                text,
            ) {
                Some(n) => prefixes.push(n),
                None => ok = false,
            }
        }
        let n4 = prefixes
            .iter()
            .filter(|n| matches!(n, IpNet::V4(_)))
            .count();
        let n6 = prefixes.len() - n4;
        if n4 > MAX_VNET_PREFIXES_IPV4 {
            v.err(
                format!("{p}.addressSpace.addressPrefixes"),
                format!("{n4} IPv4 prefixes; Azure advertises at most {MAX_VNET_PREFIXES_IPV4} IPv4 prefixes per connection"),
            );
            ok = false;
        }
        if n6 > MAX_VNET_PREFIXES_IPV6 {
            v.err(
                format!("{p}.addressSpace.addressPrefixes"),
                format!("{n6} IPv6 prefixes; Azure advertises at most {MAX_VNET_PREFIXES_IPV6} IPv6 prefixes per connection"),
            );
            ok = false;
        }
        vnets.push(match (ok, region) {
            (true, Some(r)) => Some(model::VirtualNetwork {
                name: vn.name.clone(),
                region: r.name.clone(),
                region_community: r.community,
                address_prefixes: prefixes,
            }),
            _ => None,
        });
    }

    // ---- VNet links (connections)
    let mut links_per_circuit: HashMap<usize, usize> = HashMap::new();
    for (k, conn) in config.connections.iter().enumerate() {
        let p = format!("connections[{k}]");
        if conn.connection_type != "ExpressRoute" {
            v.err(format!("{p}.connectionType"), format!("{:?} is not supported; only \"ExpressRoute\" connections link a VNet to a circuit", conn.connection_type));
        }
        let vnet = config
            .virtual_networks
            .iter()
            .position(|x| x.name == conn.virtual_network);
        if vnet.is_none() {
            v.err(
                format!("{p}.virtualNetwork"),
                format!("unknown virtual network {:?}", conn.virtual_network),
            );
        }
        let Some(ci) = config.circuits.iter().position(|x| x.name == conn.peer) else {
            v.err(
                format!("{p}.peer"),
                format!("unknown circuit {:?}", conn.peer),
            );
            continue;
        };
        if let Some(j) = config.connections[..k]
            .iter()
            .position(|o| o.peer == conn.peer && o.virtual_network == conn.virtual_network)
        {
            v.err(
                &p,
                format!(
                    "virtual network {:?} is already linked to circuit {:?} by connections[{j}]",
                    conn.virtual_network, conn.peer
                ),
            );
            continue;
        }
        let f = &facts[ci];
        if !f.has_private_peering {
            v.err(
                format!("{p}.peer"),
                format!(
                    "circuit {:?} has no AzurePrivatePeering; a VNet link needs one",
                    conn.peer
                ),
            );
        }
        let n = links_per_circuit.entry(ci).or_default();
        *n += 1;
        let max = max_vnet_links(f.tier, f.bandwidth);
        if *n == max + 1 {
            v.err(
                format!("{p}.peer"),
                format!(
                    "circuit {:?} would have more than {max} VNet links; {:?} at {} Mbps allows {max}{}",
                    conn.peer,
                    f.tier,
                    f.bandwidth,
                    if f.tier == SkuTier::Premium { "" } else { " (Premium allows more)" }
                ),
            );
        }
        if let (Some(vi), Some(circuit)) = (vnet, built[ci].as_mut()) {
            if let Some(region) = catalog.region(&config.virtual_networks[vi].location)
                && !f.reach.contains(&region.name)
            {
                v.warn(format!(
                    "{p}: virtual network {:?} is in {}, outside the reach of {:?} circuit {:?} at {}; its prefixes are not routed",
                    conn.virtual_network, region.name, f.tier, f.name, circuit.peering_location
                ));
            }
            circuit.vnet_links.push(conn.virtual_network.clone());
        }
    }

    // Overlapping VNets on one circuit make its routes ambiguous: accepted
    // (Azure accepts it too), with a warning.
    for circuit in built.iter().flatten() {
        let linked: Vec<&model::VirtualNetwork> = circuit
            .vnet_links
            .iter()
            .filter_map(|n| vnets.iter().flatten().find(|v| &v.name == n))
            .collect();
        for (i, a) in linked.iter().enumerate() {
            for b in &linked[i + 1..] {
                if let Some((x, y)) = a.address_prefixes.iter().find_map(|x| {
                    b.address_prefixes
                        .iter()
                        .find(|y| x.contains(*y) || y.contains(x))
                        .map(|y| (x, y))
                }) {
                    v.warn(format!(
                        "circuit {:?}: linked virtual networks {:?} ({x}) and {:?} ({y}) overlap; routes to the overlap are ambiguous",
                        circuit.name, a.name, b.name
                    ));
                }
            }
        }
    }

    // ---- Global Reach
    let mut pairs: Vec<(GlobalReachPair, String)> = Vec::new();
    for d in &gr_decls {
        let Some(target_name) = parse_peering_ref(
            &mut v,
            &format!("{}.peerExpressRouteCircuitPeering", d.path),
            &d.target,
        ) else {
            continue;
        };
        let a = &facts[d.from];
        let Some(bi) = facts.iter().position(|f| f.name == target_name) else {
            v.err(
                format!("{}.peerExpressRouteCircuitPeering", d.path),
                format!("unknown circuit {target_name:?}"),
            );
            continue;
        };
        let b = &facts[bi];
        if bi == d.from {
            v.err(
                format!("{}.peerExpressRouteCircuitPeering", d.path),
                "a circuit cannot be connected to itself",
            );
            continue;
        }
        if !b.has_private_peering {
            v.err(
                format!("{}.peerExpressRouteCircuitPeering", d.path),
                format!(
                    "circuit {:?} has no AzurePrivatePeering to connect to",
                    b.name
                ),
            );
        }
        for side in [a, b] {
            if side.tier == SkuTier::Local {
                v.err(
                    &d.path,
                    format!(
                        "Global Reach is not available on Local circuits ({:?} is Local)",
                        side.name
                    ),
                );
            }
        }
        if let (Some(la), Some(lb)) = (a.location, b.location) {
            if la.name == lb.name {
                v.err(
                    &d.path,
                    format!(
                        "{:?} and {:?} are both at peering location {}; Global Reach links circuits at different peering locations",
                        a.name, b.name, la.name
                    ),
                );
            } else if la.national != lb.national {
                v.err(
                    &d.path,
                    format!("{:?} ({}) and {:?} ({}): a national cloud is isolated from the global cloud", a.name, la.area, b.name, lb.area),
                );
            } else if la.area != lb.area {
                let not_premium: Vec<&str> = [a, b]
                    .iter()
                    .filter(|f| f.tier != SkuTier::Premium)
                    .map(|f| f.name.as_str())
                    .collect();
                if !not_premium.is_empty() {
                    v.err(
                        &d.path,
                        format!(
                            "{:?} ({}) and {:?} ({}) are in different geopolitical areas; both need sku.tier Premium (not Premium: {})",
                            a.name,
                            la.area,
                            b.name,
                            lb.area,
                            not_premium.join(", ")
                        ),
                    );
                }
            }
        }
        let (x, y) = if a.name <= b.name {
            (&a.name, &b.name)
        } else {
            (&b.name, &a.name)
        };
        if let Some((_, at)) = pairs.iter().find(|(p, _)| &p.a == x && &p.b == y) {
            v.err(&d.path, format!("{x:?} and {y:?} are already connected by {at}; declare a Global Reach connection once"));
            continue;
        }
        if let Some(prefix) = d.prefix {
            if let Some((side, used)) = [a, b].iter().find_map(|f| {
                f.peering_subnets
                    .iter()
                    .find(|n| n.contains(&prefix) || prefix.contains(*n))
                    .map(|n| (f.name.as_str(), n))
            }) {
                v.err(
                    format!("{}.addressPrefix", d.path),
                    format!("{prefix} overlaps {used}, a peering subnet of {side:?}; the Global Reach /29 must not overlap the circuits' peering addresses"),
                );
                continue;
            }
            if let Some((p, at)) = pairs.iter().find(|(p, _)| {
                p.address_prefix.contains(&prefix) || prefix.contains(&p.address_prefix)
            }) {
                v.err(
                    format!("{}.addressPrefix", d.path),
                    format!("{prefix} is already used by {at} ({} - {}); each Global Reach connection needs its own /29", p.a, p.b),
                );
                continue;
            }
            pairs.push((
                GlobalReachPair {
                    a: x.clone(),
                    b: y.clone(),
                    address_prefix: prefix,
                    name: d.name.clone(),
                },
                d.path.clone(),
            ));
        }
    }

    let warnings = v.finish()?;
    let mut global_reach: Vec<GlobalReachPair> = pairs.into_iter().map(|(p, _)| p).collect();
    global_reach.sort();
    Ok(Model {
        circuits: built.into_iter().map(|c| c.expect("no errors")).collect(),
        virtual_networks: vnets.into_iter().map(|x| x.expect("no errors")).collect(),
        global_reach,
        warnings,
    })
}

/// `<circuit>`, `<circuit>/AzurePrivatePeering` or an ARM id
/// `.../expressRouteCircuits/<circuit>/peerings/AzurePrivatePeering`.
fn parse_peering_ref(v: &mut Validator, path: &str, text: &str) -> Option<String> {
    let parts: Vec<&str> = text.trim().trim_matches('/').split('/').collect();
    let (circuit, peering) = if let Some(i) = parts
        .iter()
        .position(|s| s.eq_ignore_ascii_case("expressRouteCircuits"))
    {
        let circuit = parts.get(i + 1).copied();
        let peering = match parts.get(i + 2) {
            Some(s) if s.eq_ignore_ascii_case("peerings") => parts.get(i + 3).copied(),
            _ => None,
        };
        (circuit, peering)
    } else {
        match parts.as_slice() {
            [c] => (Some(*c), Some("AzurePrivatePeering")),
            [c, p] => (Some(*c), Some(*p)),
            _ => (None, None),
        }
    };
    match (circuit, peering) {
        (Some(c), Some(p)) if !c.is_empty() => {
            if p != "AzurePrivatePeering" {
                v.err(
                    path,
                    format!(
                        "Global Reach connects private peerings; {p:?} is not AzurePrivatePeering"
                    ),
                );
                return None;
            }
            Some(c.to_string())
        }
        _ => {
            v.err(
                path,
                format!("{text:?} does not name a peering; write <circuit>, <circuit>/AzurePrivatePeering or an ARM id .../expressRouteCircuits/<circuit>/peerings/AzurePrivatePeering"),
            );
            None
        }
    }
}

fn is_uuid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.bytes().all(|b| b.is_ascii_hexdigit()))
}

fn list(values: &[u32]) -> String {
    values
        .iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}
