//! `Microsoft.Network/expressRouteCircuits`, its peerings and their Global
//! Reach connections, field by field as the REST API
//! (`ExpressRouteCircuit`, `ExpressRouteCircuitPeering`,
//! `ExpressRouteCircuitConnection`) and az output name them.
//!
//! - Read-only and bookkeeping fields (`azureASN`, `primaryAzurePort`,
//!   `provisioningState`, `stats`, `stag` of provider circuits, ...) are
//!   accepted and ignored; an unknown field is refused with its path.
//! - `serviceKey` and `serviceProviderProvisioningState` are Azure's and
//!   the provider's to set: a template or PUT body lacks them. The import
//!   then derives the key from the circuit's name and takes `Provisioned`
//!   (the emulator plays the provider), with a note, both visible in the
//!   printed TOML.
//! - A circuit on an ExpressRoute Direct port (`expressRoutePort`,
//!   `bandwidthInGbps`) gets its peering location and tags from the port
//!   when the inputs are put together (see [`Direct`]).

use crate::config::{
    self, Bfd, CircuitConnection, Ipv6PeeringConfig, MicrosoftPeeringConfig, PeeringType,
    ProvisioningState, ServiceProviderProperties, Sku, SkuFamily, SkuTier,
};
use crate::import::doc::{Diag, Obj, Reported, join};

/// A circuit as read, before the inputs are put together. Two are equal
/// when they describe the same circuit, wherever their peerings sit in
/// their files.
#[derive(Debug, Clone)]
pub(crate) struct CircuitDoc {
    pub circuit: config::Circuit,
    /// Set for a circuit on an ExpressRoute Direct port.
    pub direct: Option<Direct>,
    /// The JSON path of each of `circuit.peerings`.
    pub peering_paths: Vec<String>,
}

impl PartialEq for CircuitDoc {
    fn eq(&self, other: &Self) -> bool {
        self.circuit == other.circuit && self.direct == other.direct
    }
}

/// What a Direct circuit takes from its port: `circuit.
/// serviceProviderProperties` is filled in from the port when the inputs
/// are put together, and on a QinQ port each peering's `vlanId` becomes its
/// C-tag under the circuit's S-tag (`stag`, which Azure assigns).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Direct {
    pub port: String,
    pub stag: Option<u16>,
}

/// Circuit fields that say nothing about what to emulate.
const CIRCUIT_IGNORED: &[&str] = &[
    "location",
    "allowClassicOperations",
    "circuitProvisioningState",
    "authorizations",
    "serviceProviderNotes",
    "provisioningState",
    "gatewayManagerEtag",
    "globalReachEnabled",
    "authorizationKey",
    "authorizationStatus",
    // Rate limiting of a Direct circuit: the emulator polices every circuit.
    "enableDirectPortRateLimit",
];

const PEERING_IGNORED: &[&str] = &[
    "name",
    "azureASN",
    "azureAsn",
    "primaryAzurePort",
    "secondaryAzurePort",
    "stats",
    "provisioningState",
    "gatewayManagerEtag",
    "lastModifiedBy",
    // A Virtual WAN hub's connection to the peering, set by Azure.
    "expressRouteConnection",
    // Global Reach connections made by the other circuit: read from it.
    "peeredConnections",
];

const MS_CONFIG_IGNORED: &[&str] = &["advertisedPublicPrefixesState"];

const GLOBAL_REACH_IGNORED: &[&str] = &[
    "name",
    // This side of the connection: the peering it is read from.
    "expressRouteCircuitPeering",
    "authorizationKey",
    "circuitConnectionStatus",
    "provisioningState",
];

const ASN: &str = "an AS number (1-4294967295)";

/// A deterministic service key for a circuit whose document has none (a
/// template's: Azure assigns the key). FNV-1a of the name, in UUID form.
pub(crate) fn derived_service_key(name: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("00000000-0000-4000-8000-{:012x}", h & 0xffff_ffff_ffff)
}

pub(crate) fn read_circuit(
    mut o: Obj<'_>,
    d: &mut Diag,
    name: String,
) -> Result<CircuitDoc, Reported> {
    let path = o.path.clone();
    let sku = o.req_obj(d, "sku").map(|s| read_sku(s, d));
    let service_key = o.opt_str(d, "serviceKey").filter(|k| !k.trim().is_empty());
    let state_path = o.path_of("serviceProviderProvisioningState");
    let state = match o.opt_str(d, "serviceProviderProvisioningState").as_deref() {
        None => None,
        Some("NotProvisioned") => Some(ProvisioningState::NotProvisioned),
        Some("Provisioning") => Some(ProvisioningState::Provisioning),
        Some("Provisioned") => Some(ProvisioningState::Provisioned),
        Some("Deprovisioning") => Some(ProvisioningState::Deprovisioning),
        Some(other) => {
            o.err(
                d,
                &state_path,
                format!(
                    "{other:?} is not a provisioning state (NotProvisioned, Provisioning, Provisioned, Deprovisioning)"
                ),
            );
            None
        }
    };
    let spp_given = o.present("serviceProviderProperties");
    let spp = o
        .opt_obj(d, "serviceProviderProperties")
        .map(|s| read_provider(s, d))
        .transpose();
    let port_given = o.present("expressRoutePort");
    let port_path = o.path_of("expressRoutePort");
    let port = o
        .reference(d, "expressRoutePort", &["expressRoutePorts"])
        .map(|mut n| n.remove(0));
    let gbps_given = o.present("bandwidthInGbps");
    let gbps_path = o.path_of("bandwidthInGbps");
    let gbps: Option<f64> = o
        .get(d, "bandwidthInGbps")
        .and_then(|n| match n.value.as_f64() {
            Some(g) if g > 0.0 => Some(g),
            _ => {
                d.err(
                    &n.path,
                    format!("expected a bandwidth in Gbps, found {}", n.value),
                );
                None
            }
        });
    let stag: Option<u16> = o.opt_int(d, "stag", "a tag (0-4095)");
    let mut peerings = Vec::new();
    let mut peering_paths = Vec::new();
    for n in o.opt_array(d, "peerings") {
        let p = n.path.clone();
        match n.obj(d).and_then(|po| read_peering(po, d, None)) {
            Ok(peering) => {
                peerings.push(peering);
                peering_paths.push(p);
            }
            Err(Reported) => o.fail(),
        }
    }

    if spp_given && port_given {
        o.err(
            d,
            &port_path,
            "a circuit is either a provider's (serviceProviderProperties) or on an ExpressRoute Direct port (expressRoutePort), not both",
        );
    } else if !spp_given && !port_given {
        let p = o.path_of("serviceProviderProperties");
        o.err(
            d,
            &p,
            "missing: a circuit needs serviceProviderProperties (provider circuit) or expressRoutePort (ExpressRoute Direct)",
        );
    }
    let direct = port.map(|port| Direct { port, stag });
    let bandwidth = match (&spp, &direct, gbps) {
        (Ok(Some(s)), _, _) => Some(s.bandwidth_in_mbps),
        (_, Some(_), Some(g)) => {
            let mbps = g * 1000.0;
            if mbps.fract() == 0.0 && mbps <= f64::from(u32::MAX) {
                Some(mbps as u32)
            } else {
                o.err(
                    d,
                    &gbps_path,
                    format!("{g} Gbps is not a whole number of Mbps"),
                );
                None
            }
        }
        (_, Some(_), None) if !gbps_given => {
            o.err(
                d,
                &gbps_path,
                "missing: a circuit on an ExpressRoute Direct port gives its bandwidth in bandwidthInGbps",
            );
            None
        }
        _ => None,
    };
    let finished = o.finish(d, CIRCUIT_IGNORED);
    let (Ok(()), Some(Ok(sku)), Ok(spp), Some(bandwidth_in_mbps)) = (finished, sku, spp, bandwidth)
    else {
        return Err(Reported);
    };
    let service_key = service_key.unwrap_or_else(|| {
        let key = derived_service_key(&name);
        d.note(
            &path,
            format!("no serviceKey (Azure assigns it): {key}, derived from the circuit's name"),
        );
        key
    });
    let state = state.unwrap_or_else(|| {
        d.note(
            &path,
            "no serviceProviderProvisioningState (the provider sets it): Provisioned, as the emulated provider",
        );
        ProvisioningState::Provisioned
    });
    Ok(CircuitDoc {
        circuit: config::Circuit {
            name,
            service_key,
            // A Direct circuit's location comes from its port, later.
            service_provider_properties: spp.unwrap_or(ServiceProviderProperties {
                service_provider_name: String::new(),
                peering_location: String::new(),
                bandwidth_in_mbps,
            }),
            sku,
            service_provider_provisioning_state: state,
            express_route_port: direct.as_ref().map(|x| x.port.clone()),
            peerings,
        },
        direct,
        peering_paths,
    })
}

fn read_sku(mut o: Obj<'_>, d: &mut Diag) -> Result<Sku, Reported> {
    let tier_path = o.path_of("tier");
    let tier = o.req_str(d, "tier").and_then(|t| match t.as_str() {
        "Local" => Some(SkuTier::Local),
        "Standard" => Some(SkuTier::Standard),
        "Premium" => Some(SkuTier::Premium),
        other => {
            o.err(
                d,
                &tier_path,
                format!("{other:?} is not an ExpressRoute tier the emulator has (Local, Standard, Premium)"),
            );
            None
        }
    });
    let family_path = o.path_of("family");
    let family = o.req_str(d, "family").and_then(|f| match f.as_str() {
        "MeteredData" => Some(SkuFamily::MeteredData),
        "UnlimitedData" => Some(SkuFamily::UnlimitedData),
        other => {
            o.err(
                d,
                &family_path,
                format!("{other:?} is not a SKU family (MeteredData, UnlimitedData)"),
            );
            None
        }
    });
    // `name` is `<tier>_<family>`, implied by the two.
    o.finish(d, &["name"])?;
    match (tier, family) {
        (Some(tier), Some(family)) => Ok(Sku { tier, family }),
        _ => Err(Reported),
    }
}

fn read_provider(mut o: Obj<'_>, d: &mut Diag) -> Result<ServiceProviderProperties, Reported> {
    let name = o.opt_str(d, "serviceProviderName").unwrap_or_default();
    let location = o.req_str(d, "peeringLocation");
    let bw = o.req_int::<u32>(d, "bandwidthInMbps", "a bandwidth in Mbps");
    o.finish(d, &[])?;
    match (location, bw) {
        (Some(peering_location), Some(bandwidth_in_mbps)) => Ok(ServiceProviderProperties {
            service_provider_name: name,
            peering_location,
            bandwidth_in_mbps,
        }),
        _ => Err(Reported),
    }
}

fn peering_type(s: &str) -> Result<PeeringType, String> {
    match s {
        "AzurePrivatePeering" => Ok(PeeringType::AzurePrivatePeering),
        "MicrosoftPeering" => Ok(PeeringType::MicrosoftPeering),
        "AzurePublicPeering" => Err(
            "Azure public peering was retired; the emulator has AzurePrivatePeering and MicrosoftPeering".into(),
        ),
        other => Err(format!(
            "{other:?} is not a peering type (AzurePrivatePeering, MicrosoftPeering)"
        )),
    }
}

/// A prefix field: az prints `""` for one that is not set.
fn prefix(o: &mut Obj<'_>, d: &mut Diag, key: &str) -> Option<String> {
    o.opt_str(d, key).filter(|s| !s.trim().is_empty())
}

/// A peering, inside its circuit's `peerings` or on its own; `name` is the
/// peering's name when the walker knows it from an id or a template.
pub(crate) fn read_peering(
    mut o: Obj<'_>,
    d: &mut Diag,
    name: Option<String>,
) -> Result<config::Peering, Reported> {
    let peering_path = o.path.clone();
    // A resource's name sits beside `properties`, never in it.
    let name_path = join(&o.path, "name");
    let name = name.or_else(|| o.opt_str(d, "name"));
    let type_path = o.path_of("peeringType");
    let declared = o.opt_str(d, "peeringType");
    let kind = match (&declared, &name) {
        (Some(t), _) => peering_type(t).map_err(|m| (type_path.clone(), m)),
        // A PUT body names the peering in its URL only: the name is the type.
        (None, Some(n)) => peering_type(n).map_err(|m| {
            (
                type_path.clone(),
                format!("missing, and the peering's name does not give it: {m}"),
            )
        }),
        (None, None) => Err((type_path.clone(), "missing".to_string())),
    };
    let kind = match kind {
        Ok(k) => {
            if let (Some(t), Some(n)) = (&declared, &name)
                && t != n
            {
                o.err(
                    d,
                    &name_path,
                    format!("peering name {n:?} differs from its peeringType {t:?}; Azure names a peering after its type"),
                );
            }
            Some(k)
        }
        Err((p, m)) => {
            o.err(d, &p, m);
            None
        }
    };
    let asn = if o.has("peerASN") || !o.has("peerAsn") {
        o.req_int::<u32>(d, "peerASN", ASN)
    } else {
        // Older az versions print `peerAsn`.
        o.req_int::<u32>(d, "peerAsn", ASN)
    };
    let primary = prefix(&mut o, d, "primaryPeerAddressPrefix");
    let secondary = prefix(&mut o, d, "secondaryPeerAddressPrefix");
    let vlan: Option<u16> = o.opt_int(d, "vlanId", "a VLAN ID (1-4094)");
    let shared_key = o
        .opt_str(d, "sharedKey")
        .filter(|k| !k.is_empty())
        .map(crate::Secret::from);
    let ms = o
        .opt_obj(d, "microsoftPeeringConfig")
        .map(|m| read_ms_config(m, d));
    let ipv6 = o.opt_obj(d, "ipv6PeeringConfig").map(|m| read_ipv6(m, d));
    let route_filter = o
        .reference(d, "routeFilter", &["routeFilters"])
        .map(|mut n| n.remove(0));
    let connections: Vec<_> = o
        .opt_array(d, "connections")
        .into_iter()
        .map(|n| n.obj(d).and_then(|c| read_global_reach(c, d, None)))
        .collect();
    let state_path = o.path_of("state");
    if let Some(state) = o.opt_str(d, "state")
        && state != "Enabled"
    {
        d.note(
            &state_path,
            format!("the peering is {state} in Azure; the emulator runs it"),
        );
    }
    let finished = o.finish(d, PEERING_IGNORED);
    let connections: Result<Vec<_>, _> = connections.into_iter().collect();
    let (Ok(()), Some(kind), Some(peer_asn), Ok(ms), Ok(ipv6), Ok(connections)) = (
        finished,
        kind,
        asn,
        ms.transpose(),
        ipv6.transpose(),
        connections,
    ) else {
        return Err(Reported);
    };
    let microsoft = kind == PeeringType::MicrosoftPeering;
    let (ipv6, ipv6_filter) = ipv6.unwrap_or((None, None));
    let route_filter = match (route_filter, ipv6_filter) {
        (Some(a), Some(b)) if a != b => {
            return Err(d.err(
                &peering_path,
                format!("the IPv4 and IPv6 sides use different route filters ({a:?}, {b:?}); the emulator has one per peering"),
            ));
        }
        (a, b) => a.or(b),
    };
    Ok(config::Peering {
        peering_type: kind,
        peer_asn,
        primary_peer_address_prefix: primary,
        secondary_peer_address_prefix: secondary,
        peer_address_prefix: None,
        vlan_id: vlan,
        s_tag: None,
        c_tag: None,
        shared_key,
        bfd: Bfd::default(),
        ipv6_peering_config: ipv6.map(|mut v6| {
            if !microsoft {
                v6.microsoft_peering_config = None;
            }
            v6
        }),
        // az prints an empty microsoftPeeringConfig on private peerings.
        microsoft_peering_config: if microsoft { ms } else { None },
        route_filter,
        connections,
    })
}

fn read_ms_config(mut o: Obj<'_>, d: &mut Diag) -> Result<MicrosoftPeeringConfig, Reported> {
    let prefixes: Vec<String> = o
        .opt_array(d, "advertisedPublicPrefixes")
        .into_iter()
        .filter_map(|n| n.str(d).map_err(|_| o.fail()).ok())
        .filter(|s| !s.trim().is_empty())
        .collect();
    let communities_path = o.path_of("advertisedCommunities");
    let communities = o.opt_array(d, "advertisedCommunities");
    if !communities.is_empty() {
        o.err(
            d,
            &communities_path,
            "communities on the customer's advertisements are not emulated; leave the list empty",
        );
    }
    let legacy_path = o.path_of("legacyMode");
    if let Some(mode) = o.opt_int::<u32>(d, "legacyMode", "0 or 1")
        && mode != 0
    {
        o.err(
            d,
            &legacy_path,
            format!("legacyMode {mode} (Microsoft peering from before August 2017, every service advertised without a route filter) is not emulated"),
        );
    }
    let customer_asn = o.opt_int::<u32>(d, "customerASN", ASN).filter(|a| *a != 0);
    let registry = o
        .opt_str(d, "routingRegistryName")
        .filter(|n| !n.is_empty() && n != "NONE");
    o.finish(d, MS_CONFIG_IGNORED)?;
    Ok(MicrosoftPeeringConfig {
        advertised_public_prefixes: prefixes,
        customer_asn,
        routing_registry_name: registry,
    })
}

/// The IPv6 side of a peering (`None` when it has no addresses) and its
/// route filter.
fn read_ipv6(
    mut o: Obj<'_>,
    d: &mut Diag,
) -> Result<(Option<Ipv6PeeringConfig>, Option<String>), Reported> {
    let primary = prefix(&mut o, d, "primaryPeerAddressPrefix");
    let secondary = prefix(&mut o, d, "secondaryPeerAddressPrefix");
    let ms = o
        .opt_obj(d, "microsoftPeeringConfig")
        .map(|m| read_ms_config(m, d));
    let filter = o
        .reference(d, "routeFilter", &["routeFilters"])
        .map(|mut n| n.remove(0));
    o.finish(d, &["state"])?;
    let ms = ms.transpose()?;
    if primary.is_none() && secondary.is_none() {
        return Ok((None, filter));
    }
    Ok((
        Some(Ipv6PeeringConfig {
            primary_peer_address_prefix: primary,
            secondary_peer_address_prefix: secondary,
            peer_address_prefix: None,
            microsoft_peering_config: ms,
        }),
        filter,
    ))
}

/// A Global Reach connection of a private peering. The peer is kept as
/// `<circuit>/<peering>`, the names in its id.
pub(crate) fn read_global_reach(
    mut o: Obj<'_>,
    d: &mut Diag,
    name: Option<String>,
) -> Result<CircuitConnection, Reported> {
    let name = match name {
        Some(n) => Some(n),
        None => o.req_str(d, "name"),
    };
    let prefix = o.req_str(d, "addressPrefix");
    let peer_path = o.path_of("peerExpressRouteCircuitPeering");
    let peer_given = o.present("peerExpressRouteCircuitPeering");
    let peer = o.reference(
        d,
        "peerExpressRouteCircuitPeering",
        &["expressRouteCircuits", "peerings"],
    );
    if !peer_given {
        o.err(d, &peer_path, "missing");
    }
    let v6_path = o.path_of("ipv6CircuitConnectionConfig");
    if let Some(mut v6) = o.opt_obj(d, "ipv6CircuitConnectionConfig") {
        let p = v6.opt_str(d, "addressPrefix");
        if v6.finish(d, &["circuitConnectionStatus"]).is_err() {
            o.fail();
        }
        if p.is_some_and(|p| !p.is_empty()) {
            o.err(
                d,
                &v6_path,
                "IPv6 Global Reach is not emulated (the emulator links circuits over IPv4)",
            );
        }
    }
    o.finish(d, GLOBAL_REACH_IGNORED)?;
    match (name, prefix, peer) {
        (Some(name), Some(address_prefix), Some(peer)) => Ok(CircuitConnection {
            name,
            address_prefix,
            peer_express_route_circuit_peering: peer.join("/"),
        }),
        _ => Err(Reported),
    }
}
