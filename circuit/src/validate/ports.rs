//! ExpressRoute Direct ports, and a circuit's bandwidth: from the provider
//! list, or within its Direct port, whose pair may carry circuits adding up
//! to twice its speed.

use std::collections::{BTreeMap, HashMap};

use super::errors::Validator;
use crate::catalog::{Catalog, PeeringLocation};
use crate::config::{self, Config, ExpressRoutePort};

/// Circuit bandwidths of provider circuits, in Mbps.
pub const PROVIDER_BANDWIDTHS_MBPS: [u32; 8] = [50, 100, 200, 500, 1_000, 2_000, 5_000, 10_000];
/// Circuit bandwidths on ExpressRoute Direct ports, in Mbps.
pub const DIRECT_BANDWIDTHS_MBPS: [u32; 6] = [1_000, 2_000, 5_000, 10_000, 40_000, 100_000];

/// The Direct ports by name.
pub(super) type Ports<'c> = HashMap<&'c str, &'c ExpressRoutePort>;
/// Mbps of the circuits on each Direct port.
pub(super) type PortLoad<'c> = BTreeMap<&'c str, u64>;

pub(super) fn direct_ports<'c>(
    v: &mut Validator,
    config: &'c Config,
    catalog: &Catalog,
) -> Ports<'c> {
    let mut ports = Ports::new();
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
    ports
}

/// The circuit's Direct port, if it names one that exists.
pub(super) fn circuit_port<'c>(
    v: &mut Validator,
    cp: &str,
    c: &config::Circuit,
    ports: &Ports<'c>,
) -> Option<&'c ExpressRoutePort> {
    let name = c.express_route_port.as_ref()?;
    let port = ports.get(name.as_str()).copied();
    if port.is_none() {
        v.err(
            format!("{cp}.expressRoutePort"),
            format!("unknown expressRoutePort {name:?}"),
        );
    }
    port
}

/// The circuit's bandwidth, on its Direct `port` (also at the circuit's
/// peering location, and counted in the port's load) or from a provider.
pub(super) fn bandwidth<'c>(
    v: &mut Validator,
    cp: &str,
    c: &config::Circuit,
    port: Option<&'c ExpressRoutePort>,
    location: Option<&PeeringLocation>,
    load: &mut PortLoad<'c>,
) {
    let bw = c.service_provider_properties.bandwidth_in_mbps;
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
        } else if u64::from(bw) > u64::from(port.bandwidth_in_gbps) * 1000 {
            v.err(
                &bw_path,
                format!(
                    "{bw} Mbps exceeds the {} Gbps port {:?}",
                    port.bandwidth_in_gbps, port.name
                ),
            );
        }
        *load.entry(port.name.as_str()).or_default() += u64::from(bw);
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
    }
}

/// The circuits on a Direct port pair may add up to twice its speed.
pub(super) fn subscription(v: &mut Validator, config: &Config, load: &PortLoad) {
    for (i, port) in config.express_route_ports.iter().enumerate() {
        let load = load.get(port.name.as_str()).copied().unwrap_or(0);
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
}

fn list(values: &[u32]) -> String {
    values
        .iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}
