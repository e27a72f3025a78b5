//! Validation: a [`Config`] is checked as a whole against the [`Catalog`]
//! and turned into a [`Model`], or refused with every error found, each
//! naming its field path (`circuits[1].peerings[0].peerASN: ...`).

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use crate::catalog::Catalog;
use crate::community::Community;
use crate::config::{self, Config, Encapsulation, PeeringType, ProvisioningState, SkuTier};
use crate::model::{self, GlobalReachPair, Link, LinkRole, Model, RouteLimits, VlanTag};
use crate::reach;

mod family;

use family::{AddressFamily, family_name};

/// Circuit bandwidths of provider circuits, in Mbps.
pub const PROVIDER_BANDWIDTHS_MBPS: [u32; 8] = [50, 100, 200, 500, 1_000, 2_000, 5_000, 10_000];
/// Circuit bandwidths on ExpressRoute Direct ports, in Mbps.
pub const DIRECT_BANDWIDTHS_MBPS: [u32; 6] = [1_000, 2_000, 5_000, 10_000, 40_000, 100_000];
/// ASNs Azure reserves for itself.
pub const RESERVED_ASNS: std::ops::RangeInclusive<u32> = 65515..=65520;
/// Longest TCP MD5 key the kernel accepts (TCP_MD5SIG_MAXKEYLEN).
pub const MAX_SHARED_KEY_LEN: usize = 80;
/// BFD intervals accepted, in milliseconds (FRR's bfdd takes the same range).
pub const BFD_INTERVAL_MS: std::ops::RangeInclusive<u32> = 10..=60_000;
/// BFD detection multipliers accepted: below 2 one lost packet is an outage.
pub const BFD_MULTIPLIER: std::ops::RangeInclusive<u8> = 2..=255;
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

/// One problem in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationError {
    /// Field path, e.g. `circuits[1].peerings[0].peerASN`.
    pub path: String,
    /// What is wrong and what is allowed.
    pub message: String,
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// Every problem found; the file is refused whole.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ValidationErrors(pub Vec<ValidationError>);

impl ValidationErrors {
    /// The errors at exactly this path.
    pub fn at(&self, path: &str) -> Vec<&ValidationError> {
        self.0.iter().filter(|e| e.path == path).collect()
    }
}

impl fmt::Display for ValidationErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0.len();
        write!(
            f,
            "configuration refused, {n} error{}:",
            if n == 1 { "" } else { "s" }
        )?;
        for e in &self.0 {
            write!(f, "\n  {e}")?;
        }
        Ok(())
    }
}

struct Validator {
    errors: Vec<ValidationError>,
    warnings: Vec<String>,
}

impl Validator {
    fn err(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.errors.push(ValidationError {
            path: path.into(),
            message: message.into(),
        });
    }

    fn asn(&mut self, path: &str, asn: u32) -> bool {
        let msg = if asn == 0 {
            "0 is not a valid ASN; use a 2- or 4-byte ASN from 1 to 4294967294".to_string()
        } else if asn == 23456 {
            "23456 is AS_TRANS (RFC 6793), not a real ASN; use your 4-byte ASN directly".to_string()
        } else if asn == model::MICROSOFT_ASN {
            "12076 is Microsoft's ASN (the MSEE side of every peering); use your own ASN"
                .to_string()
        } else if RESERVED_ASNS.contains(&asn) {
            format!("{asn} is reserved by Azure (65515-65520); use another public or private ASN")
        } else if asn == u32::MAX {
            "4294967295 is reserved (RFC 7300); use a 2- or 4-byte ASN from 1 to 4294967294"
                .to_string()
        } else {
            return true;
        };
        self.err(path, msg);
        false
    }

    /// A prefix of family `F`, exactly `/len`, written as its network address.
    fn prefix<F: AddressFamily>(&mut self, path: &str, text: &str, len: u8) -> Option<F> {
        let Ok(net) = text.trim().parse::<F>() else {
            self.err(
                path,
                format!(
                    "{text:?} is not an {} prefix; expected a /{len} such as {}/{len}",
                    F::NAME,
                    F::EXAMPLE
                ),
            );
            return None;
        };
        if net.prefix_len() != len {
            self.err(
                path,
                format!("{net} is a /{}; a /{len} is required", net.prefix_len()),
            );
            return None;
        }
        if net.has_host_bits() {
            self.err(
                path,
                format!(
                    "{net} has host bits set; write the network address {}",
                    net.trunc()
                ),
            );
            return None;
        }
        Some(net)
    }

    fn any_net(&mut self, path: &str, text: &str) -> Option<IpNet> {
        match text.trim().parse::<IpNet>() {
            Ok(n) if n.addr() == n.network() => Some(n),
            Ok(n) => {
                self.err(
                    path,
                    format!(
                        "{n} has host bits set; write the network address {}",
                        n.trunc()
                    ),
                );
                None
            }
            Err(_) => {
                self.err(
                    path,
                    format!(
                        "{text:?} is not an IP prefix; expected e.g. 10.1.0.0/16 or 2001:db8::/48"
                    ),
                );
                None
            }
        }
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
/// The prefixes of the services `selected` names (region communities
/// select no prefixes in this emulator), each with its community.
fn service_routes(catalog: &Catalog, selected: &[Community]) -> Vec<(IpNet, Community)> {
    selected
        .iter()
        .filter_map(|c| {
            catalog
                .service_communities
                .iter()
                .find(|s| s.community == *c)
        })
        .flat_map(|s| s.prefixes.iter().map(|p| (*p, s.community)))
        .collect()
}

pub fn validate(config: &Config, catalog: &Catalog) -> Result<Model, ValidationErrors> {
    let mut v = Validator {
        errors: Vec::new(),
        warnings: Vec::new(),
    };

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

    // ---- route filters
    let mut filters: HashMap<&str, Vec<Community>> = HashMap::new();
    for (i, f) in config.route_filters.iter().enumerate() {
        let p = format!("routeFilters[{i}]");
        let mut communities = Vec::new();
        for (r, rule) in f.rules.iter().enumerate() {
            let rp = format!("{p}.rules[{r}]");
            if rule.access != "Allow" {
                v.err(
                    format!("{rp}.access"),
                    format!(
                        "{:?} is not supported; route filter rules are \"Allow\"",
                        rule.access
                    ),
                );
            }
            if rule.route_filter_rule_type != "Community" {
                v.err(
                    format!("{rp}.routeFilterRuleType"),
                    format!(
                        "{:?} is not supported; the only rule type is \"Community\"",
                        rule.route_filter_rule_type
                    ),
                );
            }
            for (k, c) in rule.communities.iter().enumerate() {
                let cp = format!("{rp}.communities[{k}]");
                match c.parse::<Community>() {
                    Err(e) => v.err(cp, e.to_string()),
                    Ok(c) => match catalog.community(c) {
                        None => v.err(
                            cp,
                            format!(
                                "{c} is neither a Microsoft service community ({}) nor a region community (12076:51xxx) of the catalog",
                                catalog
                                    .service_communities
                                    .iter()
                                    .map(|s| format!("{} {}", s.community, s.name))
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            ),
                        ),
                        Some(_) => {
                            if !communities.contains(&c) {
                                communities.push(c);
                            }
                        }
                    },
                }
            }
        }
        if filters.insert(f.name.as_str(), communities).is_some() {
            v.err(
                format!("{p}.name"),
                format!("duplicate route filter name {:?}", f.name),
            );
        }
    }

    // ---- circuits
    let mut facts: Vec<CircuitFacts> = Vec::new();
    let mut built: Vec<Option<model::Circuit>> = Vec::new();
    let mut gr_decls: Vec<GrDecl> = Vec::new();
    // (port group, outer tag, inner tag) -> (circuit path, peering path)
    let mut attachments: BTreeMap<(String, u16, Option<u16>), String> = BTreeMap::new();
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
            if c.service_provider_provisioning_state != ProvisioningState::Provisioned {
                v.err(
                    &pp,
                    format!(
                        "peerings can only be configured on a Provisioned circuit; serviceProviderProvisioningState is {:?}",
                        c.service_provider_provisioning_state
                    ),
                );
                ok = false;
            }
            if let Some(k) = c.peerings[..j]
                .iter()
                .position(|o| o.peering_type == p.peering_type)
            {
                v.err(
                    format!("{pp}.peeringType"),
                    format!("{:?} is already configured at {cp}.peerings[{k}]; one peering of each type per circuit", p.peering_type),
                );
                ok = false;
            }
            match peering(&mut v, &pp, p, c.sku.tier, &filters) {
                Some(mut m) => {
                    m.service_routes = service_routes(catalog, &m.selected_communities);
                    peerings.push(m)
                }
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
                let prefix =
                    v.prefix::<Ipv4Net>(&format!("{gp}.addressPrefix"), &gr.address_prefix, 29);
                gr_decls.push(GrDecl {
                    path: gp,
                    from: i,
                    name: gr.name.clone(),
                    target: gr.peer_express_route_circuit_peering.clone(),
                    prefix,
                });
            }
        }

        // VLAN tags within the circuit
        let mut s_tag_seen: Option<(u16, String)> = None;
        for (j, p) in c.peerings.iter().enumerate() {
            let pp = format!("{cp}.peerings[{j}]");
            if let Some(port) = port {
                let qinq = p.s_tag.is_some() || p.c_tag.is_some();
                match port.encapsulation {
                    Encapsulation::QinQ if !qinq && p.vlan_id.is_some() => {
                        v.err(
                            format!("{pp}.vlanId"),
                            format!(
                                "port {:?} uses QinQ encapsulation; give sTag and cTag",
                                port.name
                            ),
                        );
                        ok = false;
                    }
                    Encapsulation::Dot1Q if qinq => {
                        v.err(
                            format!("{pp}.sTag"),
                            format!(
                                "port {:?} uses Dot1Q encapsulation; give vlanId only",
                                port.name
                            ),
                        );
                        ok = false;
                    }
                    _ => {}
                }
            }
            if let Some(vid) = p.vlan_id
                && p.s_tag.is_none()
                && let Some(k) = c.peerings[..j]
                    .iter()
                    .position(|o| o.vlan_id == Some(vid) && o.s_tag.is_none())
            {
                v.err(
                    format!("{pp}.vlanId"),
                    format!("VLAN {vid} is already used by {cp}.peerings[{k}]; each peering needs its own VLAN on the link"),
                );
                ok = false;
            }
            if let Some(s) = p.s_tag {
                match &s_tag_seen {
                    None => s_tag_seen = Some((s, pp.clone())),
                    Some((first, at)) if *first != s => {
                        v.err(
                            format!("{pp}.sTag"),
                            format!("S-tag {s} differs from S-tag {first} of {at}; the outer tag is the same for all peerings of a circuit"),
                        );
                        ok = false;
                    }
                    _ => {}
                }
                if let Some(ct) = p.c_tag
                    && let Some(k) = c.peerings[..j]
                        .iter()
                        .position(|o| o.s_tag.is_some() && o.c_tag == Some(ct))
                {
                    v.err(
                        format!("{pp}.cTag"),
                        format!("C-tag {ct} is already used by {cp}.peerings[{k}]; the inner tag is unique per peering"),
                    );
                    ok = false;
                }
            }
        }
        // VLAN tags across circuits sharing a port pair (provider circuits
        // share the lab's default port pair).
        let group = c.express_route_port.clone().unwrap_or_default();
        let group_desc = match &c.express_route_port {
            Some(p) => format!("port {p:?}"),
            None => "the shared provider port pair".to_string(),
        };
        let mut own: Vec<(String, u16, Option<u16>)> = Vec::new();
        for (j, p) in c.peerings.iter().enumerate() {
            let pp = format!("{cp}.peerings[{j}]");
            let (key, field) = match (p.vlan_id, p.s_tag, p.c_tag) {
                (Some(vid), None, None) => ((group.clone(), vid, None), "vlanId"),
                (None, Some(s), Some(ct)) => ((group.clone(), s, Some(ct)), "sTag"),
                _ => continue,
            };
            if own.contains(&key) {
                continue; // reported above as a duplicate within the circuit
            }
            own.push(key.clone());
            // A dot1Q VLAN equal to another circuit's S-tag (or the reverse)
            // is also ambiguous on the wire.
            // On an ExpressRoute Direct port the S-tag identifies one
            // circuit: no other circuit may use it, whatever its C-tags.
            let direct = c.express_route_port.is_some();
            let clash = attachments.iter().find(|((g, outer, inner), _)| {
                *g == key.0
                    && *outer == key.1
                    && (direct || inner.is_none() || key.2.is_none() || *inner == key.2)
            });
            if let Some((_, other)) = clash
                && !other.starts_with(&format!("{cp}."))
            {
                let tag = match key.2 {
                    None => format!("VLAN {}", key.1),
                    Some(_) if direct => format!(
                        "S-tag {} (on ExpressRoute Direct the S-tag identifies one circuit)",
                        key.1
                    ),
                    Some(ct) => format!("S-tag {} C-tag {ct}", key.1),
                };
                v.err(
                    format!("{pp}.{field}"),
                    format!("{tag} is already used on {group_desc} by {other}; tags must be unique across circuits sharing a port pair"),
                );
                ok = false;
                continue;
            }
            attachments.insert(key, pp);
        }

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
            match v.any_net(&format!("{p}.addressSpace.addressPrefixes[{k}]"), text) {
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
                v.warnings.push(format!(
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
                    v.warnings.push(format!(
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

    if !v.errors.is_empty() {
        return Err(ValidationErrors(v.errors));
    }
    let mut global_reach: Vec<GlobalReachPair> = pairs.into_iter().map(|(p, _)| p).collect();
    global_reach.sort();
    Ok(Model {
        circuits: built.into_iter().map(|c| c.expect("no errors")).collect(),
        virtual_networks: vnets.into_iter().map(|x| x.expect("no errors")).collect(),
        global_reach,
        warnings: v.warnings,
    })
}

fn peering(
    v: &mut Validator,
    pp: &str,
    p: &config::Peering,
    tier: SkuTier,
    filters: &HashMap<&str, Vec<Community>>,
) -> Option<model::Peering> {
    let mut ok = v.asn(&format!("{pp}.peerASN"), p.peer_asn);

    let v4 = link_subnets::<Ipv4Net>(
        v,
        pp,
        p.peer_address_prefix.as_deref(),
        p.primary_peer_address_prefix.as_deref(),
        p.secondary_peer_address_prefix.as_deref(),
    );
    ok &= v4.is_some();
    let mut v6: Option<(Ipv6Net, Ipv6Net)> = None;
    if let Some(c6) = &p.ipv6_peering_config {
        v6 = link_subnets::<Ipv6Net>(
            v,
            &format!("{pp}.ipv6PeeringConfig"),
            c6.peer_address_prefix.as_deref(),
            c6.primary_peer_address_prefix.as_deref(),
            c6.secondary_peer_address_prefix.as_deref(),
        );
        ok &= v6.is_some();
    }

    // VLAN
    let vlan = match (p.vlan_id, p.s_tag, p.c_tag) {
        (Some(vid), None, None) => tag(v, &format!("{pp}.vlanId"), vid).map(VlanTag::Dot1Q),
        (None, Some(s), Some(c)) => {
            let s = tag(v, &format!("{pp}.sTag"), s);
            let c = tag(v, &format!("{pp}.cTag"), c);
            s.zip(c)
                .map(|(s_tag, c_tag)| VlanTag::QinQ { s_tag, c_tag })
        }
        (None, None, None) => {
            v.err(
                format!("{pp}.vlanId"),
                "missing; give vlanId (802.1Q) or sTag and cTag (QinQ)",
            );
            None
        }
        (None, Some(_), None) => {
            v.err(
                format!("{pp}.cTag"),
                "missing; QinQ needs both sTag (outer) and cTag (inner)",
            );
            None
        }
        (None, None, Some(_)) => {
            v.err(
                format!("{pp}.sTag"),
                "missing; QinQ needs both sTag (outer) and cTag (inner)",
            );
            None
        }
        (Some(_), _, _) => {
            v.err(
                format!("{pp}.vlanId"),
                "give either vlanId (802.1Q) or sTag and cTag (QinQ), not both",
            );
            None
        }
    };
    ok &= vlan.is_some();

    // MD5
    if let Some(key) = &p.shared_key
        && (key.is_empty()
            || key.len() > MAX_SHARED_KEY_LEN
            || !key.bytes().all(|b| b.is_ascii_graphic()))
    {
        v.err(
            format!("{pp}.sharedKey"),
            format!("the MD5 key must be 1 to {MAX_SHARED_KEY_LEN} printable ASCII characters without spaces"),
        );
        ok = false;
    }

    // BFD timers (checked even when BFD is off: turning it on must not
    // reveal an error later)
    if !BFD_INTERVAL_MS.contains(&p.bfd.interval_ms) {
        v.err(
            format!("{pp}.bfd.intervalMs"),
            format!(
                "must be {} to {} ms (ExpressRoute uses 300), not {}",
                BFD_INTERVAL_MS.start(),
                BFD_INTERVAL_MS.end(),
                p.bfd.interval_ms
            ),
        );
        ok = false;
    }
    if !BFD_MULTIPLIER.contains(&p.bfd.multiplier) {
        v.err(
            format!("{pp}.bfd.multiplier"),
            format!(
                "must be {} to {} (ExpressRoute uses 3), not {}",
                BFD_MULTIPLIER.start(),
                BFD_MULTIPLIER.end(),
                p.bfd.multiplier
            ),
        );
        ok = false;
    }

    // Microsoft peering specifics
    let mut advertised = Vec::new();
    let mut selected = Vec::new();
    match p.peering_type {
        PeeringType::AzurePrivatePeering => {
            if p.microsoft_peering_config.is_some() {
                v.err(
                    format!("{pp}.microsoftPeeringConfig"),
                    "only MicrosoftPeering takes a microsoftPeeringConfig",
                );
                ok = false;
            }
            if p.ipv6_peering_config
                .as_ref()
                .is_some_and(|c| c.microsoft_peering_config.is_some())
            {
                v.err(
                    format!("{pp}.ipv6PeeringConfig.microsoftPeeringConfig"),
                    "only MicrosoftPeering takes a microsoftPeeringConfig",
                );
                ok = false;
            }
            if p.route_filter.is_some() {
                v.err(
                    format!("{pp}.routeFilter"),
                    "route filters apply to MicrosoftPeering only",
                );
                ok = false;
            }
        }
        PeeringType::MicrosoftPeering => {
            let base = format!("{pp}.microsoftPeeringConfig");
            match &p.microsoft_peering_config {
                None => {
                    v.err(&base, "missing; Microsoft peering needs advertisedPublicPrefixes (the public prefixes you will advertise)");
                    ok = false;
                }
                Some(mc) => {
                    if mc.advertised_public_prefixes.is_empty() {
                        v.err(
                            format!("{base}.advertisedPublicPrefixes"),
                            "Microsoft peering needs at least one public prefix",
                        );
                        ok = false;
                    }
                    for (k, text) in mc.advertised_public_prefixes.iter().enumerate() {
                        match public_prefix::<Ipv4Net>(
                            v,
                            &format!("{base}.advertisedPublicPrefixes[{k}]"),
                            text,
                            "put IPv6 prefixes under ipv6PeeringConfig.microsoftPeeringConfig",
                        ) {
                            Some(n) => advertised.push(n),
                            None => ok = false,
                        }
                    }
                    if let Some(asn) = mc.customer_asn {
                        ok &= v.asn(&format!("{base}.customerASN"), asn);
                    }
                }
            }
            if let Some(mc) = p
                .ipv6_peering_config
                .as_ref()
                .and_then(|c| c.microsoft_peering_config.as_ref())
            {
                let base = format!("{pp}.ipv6PeeringConfig.microsoftPeeringConfig");
                for (k, text) in mc.advertised_public_prefixes.iter().enumerate() {
                    match public_prefix::<Ipv6Net>(
                        v,
                        &format!("{base}.advertisedPublicPrefixes[{k}]"),
                        text,
                        "this list takes IPv6 prefixes",
                    ) {
                        Some(n) => advertised.push(n),
                        None => ok = false,
                    }
                }
                if let Some(asn) = mc.customer_asn {
                    ok &= v.asn(&format!("{base}.customerASN"), asn);
                }
            }
            if let Some(name) = &p.route_filter {
                match filters.get(name.as_str()) {
                    Some(communities) => selected = communities.clone(),
                    None => {
                        v.err(
                            format!("{pp}.routeFilter"),
                            format!("unknown route filter {name:?}"),
                        );
                        ok = false;
                    }
                }
            }
        }
    }

    if !ok {
        return None;
    }
    let (pri4, sec4) = v4?;
    let link = |role, v4net: Ipv4Net, v6net: Option<Ipv6Net>| Link {
        role,
        ipv4: v4net.link_addresses(),
        ipv6: v6net.map(AddressFamily::link_addresses),
    };
    Some(model::Peering {
        peering_type: p.peering_type,
        peer_asn: p.peer_asn,
        vlan: vlan?,
        shared_key: p.shared_key.clone(),
        bfd: p.bfd.enabled.then_some(model::BfdTimers {
            interval_ms: p.bfd.interval_ms,
            multiplier: p.bfd.multiplier,
        }),
        primary: link(LinkRole::Primary, pri4, v6.map(|x| x.0)),
        secondary: link(LinkRole::Secondary, sec4, v6.map(|x| x.1)),
        limits: RouteLimits::for_peering(p.peering_type, tier),
        advertised_public_prefixes: advertised,
        route_filter: p.route_filter.clone(),
        selected_communities: selected,
        service_routes: Vec::new(),
    })
}

/// The primary and secondary link subnets of one family, under `base`:
/// one `peerAddressPrefix` (a /29 or /125) cut in two, or two given apart
/// (/30s or /126s).
fn link_subnets<F: AddressFamily>(
    v: &mut Validator,
    base: &str,
    single: Option<&str>,
    primary: Option<&str>,
    secondary: Option<&str>,
) -> Option<(F, F)> {
    let (pair, link) = (F::PEERING_PREFIX_LEN, F::LINK_PREFIX_LEN);
    match (single, primary, secondary) {
        (Some(_), Some(_), _) | (Some(_), _, Some(_)) => {
            v.err(
                format!("{base}.peerAddressPrefix"),
                format!("give either peerAddressPrefix (one /{pair}) or primaryPeerAddressPrefix and secondaryPeerAddressPrefix (two /{link}s), not both"),
            );
            None
        }
        (Some(text), None, None) => v
            .prefix::<F>(&format!("{base}.peerAddressPrefix"), text, pair)
            .map(|n| n.halves().expect("a /29 or /125 splits in two")),
        (None, primary, secondary) => {
            let mut get = |field: &str, text: Option<&str>| match text {
                None => {
                    v.err(
                        format!("{base}.{field}"),
                        format!("missing; give primaryPeerAddressPrefix and secondaryPeerAddressPrefix (two /{link}s) or peerAddressPrefix (one /{pair})"),
                    );
                    None
                }
                Some(t) => v.prefix::<F>(&format!("{base}.{field}"), t, link),
            };
            let a = get("primaryPeerAddressPrefix", primary);
            let b = get("secondaryPeerAddressPrefix", secondary);
            match (a, b) {
                (Some(a), Some(b)) if a == b => {
                    v.err(
                        format!("{base}.secondaryPeerAddressPrefix"),
                        format!("{b} is also the primary /{link}; the primary and secondary links need two distinct /{link}s"),
                    );
                    None
                }
                (Some(a), Some(b)) => Some((a, b)),
                _ => None,
            }
        }
    }
}

fn tag(v: &mut Validator, path: &str, t: u16) -> Option<u16> {
    if (1..=4094).contains(&t) {
        Some(t)
    } else {
        v.err(
            path,
            format!("{t} is not a usable VLAN tag; allowed 1-4094"),
        );
        None
    }
}

/// A Microsoft peering advertised prefix: public, of family `F`;
/// `other_family` tells where a prefix of the other family belongs.
fn public_prefix<F: AddressFamily>(
    v: &mut Validator,
    path: &str,
    text: &str,
    other_family: &str,
) -> Option<IpNet> {
    let net = v.any_net(path, text)?;
    let Some(n) = F::from_ip_net(net) else {
        v.err(
            path,
            format!("{net} is {}; {other_family}", family_name(&net)),
        );
        return None;
    };
    if let Some(why) = n.non_public() {
        v.err(
            path,
            format!("{n} is {why}; Microsoft peering only accepts public prefixes"),
        );
        return None;
    }
    Some(net)
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
