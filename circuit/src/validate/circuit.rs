//! The circuits: each one's identity (name, service key, peering
//! location), then its port and bandwidth, peerings, Global Reach
//! connections and VLAN tags by their families' rules; and what the later
//! passes need to know of each.

use ipnet::Ipv4Net;

use super::errors::Validator;
use super::global_reach::{self, Declaration};
use super::microsoft::RouteFilters;
use super::ports::{self, PortLoad, Ports};
use super::{peering, vlan};
use crate::catalog::{Catalog, PeeringLocation};
use crate::config::{self, Config, PeeringType, SkuTier};
use crate::model;
use crate::reach;

/// Facts about a circuit other checks need (even when the circuit has errors).
pub(super) struct CircuitFacts<'c> {
    pub(super) name: String,
    pub(super) location: Option<&'c PeeringLocation>,
    pub(super) tier: SkuTier,
    pub(super) bandwidth: u32,
    pub(super) has_private_peering: bool,
    /// IPv4 peering subnets as written (parsed leniently), for overlap checks.
    pub(super) peering_subnets: Vec<Ipv4Net>,
    pub(super) reach: Vec<String>,
}

/// What the circuits' pass hands to the later passes.
pub(super) struct Circuits<'c> {
    /// One per circuit, in order.
    pub(super) facts: Vec<CircuitFacts<'c>>,
    /// Each circuit's model, `None` where it has errors.
    pub(super) built: Vec<Option<model::Circuit>>,
    pub(super) global_reach: Vec<Declaration>,
    pub(super) port_load: PortLoad<'c>,
}

pub(super) fn circuits<'c>(
    v: &mut Validator,
    config: &'c Config,
    catalog: &'c Catalog,
    ports: &Ports<'c>,
    filters: &RouteFilters,
) -> Circuits<'c> {
    let mut out = Circuits {
        facts: Vec::new(),
        built: Vec::new(),
        global_reach: Vec::new(),
        port_load: PortLoad::new(),
    };
    let mut attachments = vlan::Attachments::default();
    for (i, c) in config.circuits.iter().enumerate() {
        let cp = format!("circuits[{i}]");
        let mark = v.mark();
        identity(v, &cp, config, i);
        let location = peering_location(v, &cp, c, catalog);
        let port = ports::circuit_port(v, &cp, c, ports);
        ports::bandwidth(v, &cp, c, port, location, &mut out.port_load);
        let reach: Vec<String> = location
            .map(|l| {
                reach::regions_reached(catalog, l, c.sku.tier)
                    .into_iter()
                    .map(|r| r.name.clone())
                    .collect()
            })
            .unwrap_or_default();

        let mut peerings = Vec::new();
        for (j, p) in c.peerings.iter().enumerate() {
            let pp = format!("{cp}.peerings[{j}]");
            peering::place_in_circuit(v, &cp, c, j);
            peerings.extend(peering::peering(v, &pp, p, c.sku.tier, filters, catalog));
            global_reach::declare(v, &pp, i, p, &mut out.global_reach);
        }
        vlan::within_circuit(v, &cp, c, port);
        attachments.claim(v, &cp, c);

        out.facts.push(facts(c, location, reach.clone()));
        out.built.push(match location {
            Some(loc) if v.clean_since(mark) => Some(model(c, loc, peerings, reach)),
            _ => None,
        });
    }
    out
}

/// Circuit `i`'s name and service key, each its own.
fn identity(v: &mut Validator, cp: &str, config: &Config, i: usize) {
    let c = &config.circuits[i];
    if c.name.trim().is_empty() {
        v.err(format!("{cp}.name"), "circuit name is empty");
    } else if let Some(j) = config.circuits[..i].iter().position(|o| o.name == c.name) {
        v.err(
            format!("{cp}.name"),
            format!(
                "duplicate circuit name {:?} (already used by circuits[{j}])",
                c.name
            ),
        );
    }
    if !is_uuid(&c.service_key) {
        v.err(
            format!("{cp}.serviceKey"),
            format!("{:?} is not a UUID; expected 8-4-4-4-12 hex digits, e.g. 00000000-0000-0000-0000-000000000001", c.service_key),
        );
    } else if let Some(j) = config.circuits[..i]
        .iter()
        .position(|o| o.service_key.eq_ignore_ascii_case(&c.service_key))
    {
        v.err(
            format!("{cp}.serviceKey"),
            format!("duplicate serviceKey (already used by circuits[{j}])"),
        );
    }
}

fn peering_location<'c>(
    v: &mut Validator,
    cp: &str,
    c: &config::Circuit,
    catalog: &'c Catalog,
) -> Option<&'c PeeringLocation> {
    let name = &c.service_provider_properties.peering_location;
    let location = catalog.peering_location(name);
    match location {
        None => v.err(
            format!("{cp}.serviceProviderProperties.peeringLocation"),
            format!(
                "unknown peering location {name:?}; known: {}",
                catalog.peering_location_names().join(", ")
            ),
        ),
        Some(l) => {
            if let Some(why) = catalog.tier_unavailable(l, c.sku.tier) {
                v.err(
                    format!("{cp}.serviceProviderProperties.peeringLocation"),
                    why,
                );
            }
        }
    }
    location
}

fn facts<'c>(
    c: &config::Circuit,
    location: Option<&'c PeeringLocation>,
    reach: Vec<String>,
) -> CircuitFacts<'c> {
    CircuitFacts {
        name: c.name.clone(),
        location,
        tier: c.sku.tier,
        bandwidth: c.service_provider_properties.bandwidth_in_mbps,
        has_private_peering: c
            .peerings
            .iter()
            .any(|p| p.peering_type == PeeringType::AzurePrivatePeering),
        reach,
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
    }
}

fn model(
    c: &config::Circuit,
    location: &PeeringLocation,
    peerings: Vec<model::Peering>,
    reach: Vec<String>,
) -> model::Circuit {
    model::Circuit {
        name: c.name.clone(),
        service_key: c.service_key.to_ascii_lowercase(),
        service_provider_name: c.service_provider_properties.service_provider_name.clone(),
        peering_location: location.name.clone(),
        metro: location.metro.clone(),
        area: location.area.clone(),
        national: location.national,
        bandwidth_mbps: c.service_provider_properties.bandwidth_in_mbps,
        tier: c.sku.tier,
        family: c.sku.family,
        provisioning_state: c.service_provider_provisioning_state,
        express_route_port: c.express_route_port.clone(),
        peerings,
        reach,
        vnet_links: Vec::new(),
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
