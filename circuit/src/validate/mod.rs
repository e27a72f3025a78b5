//! Validation: a [`Config`] is checked as a whole against the [`Catalog`]
//! and turned into a [`Model`], or refused with every error found, each
//! naming its field path (`circuits[1].peerings[0].peerASN: ...`).
//!
//! One module per family of rules, applied in a fixed order (the order of
//! the errors): Direct ports, route filters, then each circuit (identity,
//! port and bandwidth, each peering: ASN, IPv4 and IPv6 addressing, VLAN
//! tags, MD5 key, BFD, Microsoft peering, its Global Reach connections;
//! then the circuit's tags), the ports' subscription, virtual networks and
//! their links, and last the Global Reach pairs, which need every circuit.
//! The address rules are written once for IPv4 and IPv6 over
//! `AddressFamily` (in `family`).

use crate::catalog::Catalog;
use crate::config::Config;
use crate::model::Model;

mod addressing;
mod bfd;
mod bgp;
mod circuit;
mod errors;
mod family;
mod global_reach;
mod microsoft;
mod peering;
mod ports;
mod vlan;
mod vnets;

pub use bfd::{BFD_INTERVAL_MS, BFD_MULTIPLIER};
pub use bgp::{MAX_SHARED_KEY_LEN, RESERVED_ASNS};
pub use errors::{ValidationError, ValidationErrors};
pub use ports::{DIRECT_BANDWIDTHS_MBPS, PROVIDER_BANDWIDTHS_MBPS};
pub use vnets::{MAX_VNET_PREFIXES_IPV4, MAX_VNET_PREFIXES_IPV6, max_vnet_links};

use errors::Validator;

/// Validates `config` against `catalog`. On success the derived model;
/// otherwise every error found.
pub fn validate(config: &Config, catalog: &Catalog) -> Result<Model, ValidationErrors> {
    let mut v = Validator::default();
    let ports = ports::direct_ports(&mut v, config, catalog);
    let filters = microsoft::route_filters(&mut v, config, catalog);
    let circuits = circuit::circuits(&mut v, config, catalog, &ports, &filters);
    ports::subscription(&mut v, config, &circuits.port_load);
    let vnets = vnets::virtual_networks(&mut v, config, catalog);
    let mut built = circuits.built;
    vnets::links(&mut v, config, catalog, &circuits.facts, &mut built);
    vnets::overlap_warnings(&mut v, &built, &vnets);
    let global_reach = global_reach::pairs(&mut v, &circuits.global_reach, &circuits.facts);

    let warnings = v.finish()?;
    Ok(Model {
        circuits: built.into_iter().map(|c| c.expect("no errors")).collect(),
        virtual_networks: vnets.into_iter().map(|x| x.expect("no errors")).collect(),
        global_reach,
        warnings,
    })
}
