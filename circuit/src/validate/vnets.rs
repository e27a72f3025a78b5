//! Virtual networks, and their links to circuits (`connections`).

use std::collections::HashMap;

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use super::addressing::any_prefix;
use super::circuit::CircuitFacts;
use super::errors::Validator;
use super::family::AddressFamily;
use crate::catalog::Catalog;
use crate::config::{Config, SkuTier};
use crate::model;

/// Azure-to-customer limit per VNet connection, IPv4.
pub const MAX_VNET_PREFIXES_IPV4: usize = 1_000;
/// Azure-to-customer limit per VNet connection, IPv6.
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

/// Each virtual network's model, `None` where it has errors.
pub(super) fn virtual_networks(
    v: &mut Validator,
    config: &Config,
    catalog: &Catalog,
) -> Vec<Option<model::VirtualNetwork>> {
    let mut vnets = Vec::new();
    for (i, vn) in config.virtual_networks.iter().enumerate() {
        let p = format!("virtualNetworks[{i}]");
        let mark = v.mark();
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
        }
        let list = format!("{p}.addressSpace.addressPrefixes");
        if vn.address_space.address_prefixes.is_empty() {
            v.err(&list, "a virtual network needs at least one address prefix");
        }
        let prefixes: Vec<IpNet> = vn
            .address_space
            .address_prefixes
            .iter()
            .enumerate()
            .filter_map(|(k, text)| any_prefix(v, &format!("{list}[{k}]"), text))
            .collect();
        prefix_limit::<Ipv4Net>(v, &list, &prefixes, MAX_VNET_PREFIXES_IPV4);
        prefix_limit::<Ipv6Net>(v, &list, &prefixes, MAX_VNET_PREFIXES_IPV6);
        vnets.push(match region {
            Some(r) if v.clean_since(mark) => Some(model::VirtualNetwork {
                name: vn.name.clone(),
                region: r.name.clone(),
                region_community: r.community,
                address_prefixes: prefixes,
            }),
            _ => None,
        });
    }
    vnets
}

/// At most `max` prefixes of family `F` in one connection's advertisement.
fn prefix_limit<F: AddressFamily>(v: &mut Validator, path: &str, prefixes: &[IpNet], max: usize) {
    let n = prefixes
        .iter()
        .filter(|n| F::from_ip_net(**n).is_some())
        .count();
    if n > max {
        v.err(
            path,
            format!(
                "{n} {family} prefixes; Azure advertises at most {max} {family} prefixes per connection",
                family = F::NAME
            ),
        );
    }
}

/// Links each connection's virtual network to its circuit (in `built`,
/// where that circuit has no errors), within the circuit's link limit.
pub(super) fn links(
    v: &mut Validator,
    config: &Config,
    catalog: &Catalog,
    facts: &[CircuitFacts],
    built: &mut [Option<model::Circuit>],
) {
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
}

/// Overlapping VNets on one circuit make its routes ambiguous: accepted
/// (Azure accepts it too), with a warning.
pub(super) fn overlap_warnings(
    v: &mut Validator,
    built: &[Option<model::Circuit>],
    vnets: &[Option<model::VirtualNetwork>],
) {
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
}
