//! Reach: which Azure regions a circuit reaches, which VNet prefixes it
//! therefore routes and advertises (with their region community), and its
//! Global Reach peers.
//!
//! - Local: the one or two regions in or near the peering location's metro.
//! - Standard: every region of the peering location's geopolitical area.
//! - Premium: every region of the global cloud (national clouds excluded).
//!   A Premium circuit at a national-cloud location reaches every region of
//!   its own national cloud (national clouds are isolated from the global
//!   cloud and from each other).

use ipnet::IpNet;

use crate::catalog::{Catalog, PeeringLocation, Region};
use crate::community::Community;
use crate::config::SkuTier;
use crate::model::{Circuit, Model};

/// Regions reached by a circuit of `tier` at `location`, in catalog order.
pub fn regions_reached<'a>(
    catalog: &'a Catalog,
    location: &PeeringLocation,
    tier: SkuTier,
) -> Vec<&'a Region> {
    catalog
        .regions
        .iter()
        .filter(|r| match tier {
            SkuTier::Local => location
                .local_regions
                .iter()
                .any(|n| n.eq_ignore_ascii_case(&r.name)),
            SkuTier::Standard => r.area == location.area,
            // Premium reaches its whole cloud: the global cloud's regions,
            // or (at a national location) every area of that national
            // cloud, which may have several (China East and China North).
            SkuTier::Premium => r.cloud == location.cloud,
        })
        .collect()
}

/// A VNet prefix a circuit routes and advertises to the customer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VnetRoute {
    pub prefix: IpNet,
    pub virtual_network: String,
    pub region: String,
    /// Region community attached to the advertisement.
    pub community: Community,
}

/// The VNet prefixes a circuit routes: those of the VNets linked to it whose
/// region is within its reach. Links outside the reach are accepted by
/// validation (with a warning) but produce no route here.
pub fn vnet_routes(model: &Model, circuit: &Circuit) -> Vec<VnetRoute> {
    let mut out = Vec::new();
    for name in &circuit.vnet_links {
        let Some(vnet) = model.virtual_network(name) else {
            continue;
        };
        if !circuit.reaches(&vnet.region) {
            continue;
        }
        for prefix in &vnet.address_prefixes {
            out.push(VnetRoute {
                prefix: *prefix,
                virtual_network: vnet.name.clone(),
                region: vnet.region.clone(),
                community: vnet.region_community,
            });
        }
    }
    out
}

/// VNets linked to the circuit but outside its reach (not routed).
pub fn unreachable_vnets<'m>(model: &'m Model, circuit: &Circuit) -> Vec<&'m str> {
    circuit
        .vnet_links
        .iter()
        .filter_map(|n| model.virtual_network(n))
        .filter(|v| !circuit.reaches(&v.region))
        .map(|v| v.name.as_str())
        .collect()
}

/// Circuits whose on-premises routes this circuit's customer receives via
/// Global Reach. Direct pairs only: Global Reach is not transitive.
pub fn global_reach_peers<'m>(model: &'m Model, circuit: &str) -> Vec<&'m str> {
    let mut peers: Vec<&str> = model
        .global_reach
        .iter()
        .filter_map(|p| {
            if p.a == circuit {
                Some(p.b.as_str())
            } else if p.b == circuit {
                Some(p.a.as_str())
            } else {
                None
            }
        })
        .collect();
    peers.sort_unstable();
    peers.dedup();
    peers
}

/// Whether on-premises sites behind circuits `a` and `b` reach each other.
pub fn globally_reachable(model: &Model, a: &str, b: &str) -> bool {
    global_reach_peers(model, a).contains(&b)
}
