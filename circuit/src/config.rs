//! The configuration file as written by the user (TOML, or the same shape as
//! JSON). Field names follow Azure's resource model
//! (`Microsoft.Network/expressRouteCircuits` and friends) so that users of
//! `az network express-route` recognise them. Addresses are kept as strings
//! here: they are parsed during validation so that every bad one is
//! reported, with its field path, instead of only the first.
//!
//! See `examples/lab.toml` for a complete, commented file.

use serde::{Deserialize, Serialize};

/// The whole file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Config {
    /// ExpressRoute Direct port pairs (optional).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub express_route_ports: Vec<ExpressRoutePort>,
    #[serde(default)]
    pub circuits: Vec<Circuit>,
    /// Azure-side virtual networks.
    #[serde(default)]
    pub virtual_networks: Vec<VirtualNetwork>,
    /// VNet-to-circuit links (Azure `connections` of type ExpressRoute).
    #[serde(default)]
    pub connections: Vec<Connection>,
    /// Route filters for Microsoft peering.
    #[serde(default)]
    pub route_filters: Vec<RouteFilter>,
}

/// `expressRoutePorts`: a port pair (one port per MSEE) for ExpressRoute Direct.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExpressRoutePort {
    pub name: String,
    pub peering_location: String,
    /// 10 or 100.
    pub bandwidth_in_gbps: u32,
    pub encapsulation: Encapsulation,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Encapsulation {
    Dot1Q,
    QinQ,
}

/// `expressRouteCircuits`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Circuit {
    pub name: String,
    /// UUID, e.g. `00000000-0000-0000-0000-000000000001`.
    pub service_key: String,
    pub service_provider_properties: ServiceProviderProperties,
    pub sku: Sku,
    pub service_provider_provisioning_state: ProvisioningState,
    /// Name of the ExpressRoute Direct port pair the circuit is on; absent
    /// for provider circuits (which share the lab's default port pair).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub express_route_port: Option<String>,
    #[serde(default)]
    pub peerings: Vec<Peering>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServiceProviderProperties {
    pub service_provider_name: String,
    pub peering_location: String,
    pub bandwidth_in_mbps: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sku {
    pub tier: SkuTier,
    pub family: SkuFamily,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum SkuTier {
    Local,
    Standard,
    Premium,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SkuFamily {
    MeteredData,
    UnlimitedData,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ProvisioningState {
    NotProvisioned,
    Provisioning,
    Provisioned,
    Deprovisioning,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum PeeringType {
    AzurePrivatePeering,
    MicrosoftPeering,
}

/// A peering of a circuit.
///
/// IPv4 addressing is either `primaryPeerAddressPrefix` +
/// `secondaryPeerAddressPrefix` (two /30s, Azure's form) or
/// `peerAddressPrefix` (one /29, split into the two /30s).
/// The VLAN is either `vlanId` (802.1Q) or `sTag` + `cTag` (QinQ).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Peering {
    pub peering_type: PeeringType,
    #[serde(rename = "peerASN")]
    pub peer_asn: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary_peer_address_prefix: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secondary_peer_address_prefix: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer_address_prefix: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vlan_id: Option<u16>,
    /// QinQ outer tag (must be the same for every peering of the circuit).
    #[serde(default, rename = "sTag", skip_serializing_if = "Option::is_none")]
    pub s_tag: Option<u16>,
    /// QinQ inner tag (unique per peering).
    #[serde(default, rename = "cTag", skip_serializing_if = "Option::is_none")]
    pub c_tag: Option<u16>,
    /// MD5 password for the BGP sessions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shared_key: Option<crate::Secret>,
    #[serde(default)]
    pub bfd: Bfd,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipv6_peering_config: Option<Ipv6PeeringConfig>,
    /// Microsoft peering only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub microsoft_peering_config: Option<MicrosoftPeeringConfig>,
    /// Name of a route filter (Microsoft peering only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route_filter: Option<String>,
    /// Global Reach: `expressRouteCircuitConnections` of a private peering.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub connections: Vec<CircuitConnection>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Bfd {
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Transmit and receive interval in milliseconds. ExpressRoute uses 300;
    /// a lab may go as low as 10 to rehearse fast failover.
    #[serde(default = "bfd_interval_ms")]
    pub interval_ms: u32,
    /// Detection multiplier: packets missed before the session goes down.
    #[serde(default = "bfd_multiplier")]
    pub multiplier: u8,
}

fn yes() -> bool {
    true
}

fn bfd_interval_ms() -> u32 {
    300
}

fn bfd_multiplier() -> u8 {
    3
}

impl Default for Bfd {
    fn default() -> Self {
        Self {
            enabled: true,
            interval_ms: bfd_interval_ms(),
            multiplier: bfd_multiplier(),
        }
    }
}

/// IPv6 addressing of a peering: two /126s or one /125.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Ipv6PeeringConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary_peer_address_prefix: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secondary_peer_address_prefix: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer_address_prefix: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub microsoft_peering_config: Option<MicrosoftPeeringConfig>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MicrosoftPeeringConfig {
    #[serde(default)]
    pub advertised_public_prefixes: Vec<String>,
    /// ASN the prefixes originate from, when different from `peerASN`.
    #[serde(
        default,
        rename = "customerASN",
        skip_serializing_if = "Option::is_none"
    )]
    pub customer_asn: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub routing_registry_name: Option<String>,
}

/// A Global Reach connection from this circuit's private peering to another
/// circuit's private peering.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CircuitConnection {
    pub name: String,
    /// A /29 for the link between the two circuits.
    pub address_prefix: String,
    /// The other circuit's private peering: `<circuit>`,
    /// `<circuit>/AzurePrivatePeering`, or an ARM id ending in
    /// `expressRouteCircuits/<circuit>/peerings/AzurePrivatePeering`.
    pub peer_express_route_circuit_peering: String,
}

/// `virtualNetworks`: an Azure VNet in a region.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VirtualNetwork {
    pub name: String,
    /// Region, display name (`West Europe`) or programmatic (`westeurope`).
    pub location: String,
    pub address_space: AddressSpace,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AddressSpace {
    pub address_prefixes: Vec<String>,
}

/// A VNet link: Azure `connections` with `connectionType = "ExpressRoute"`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Connection {
    pub name: String,
    #[serde(default = "express_route")]
    pub connection_type: String,
    /// VNet name.
    pub virtual_network: String,
    /// Circuit name.
    pub peer: String,
}

fn express_route() -> String {
    "ExpressRoute".to_string()
}

/// `routeFilters`: which Microsoft services a Microsoft peering advertises.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RouteFilter {
    pub name: String,
    #[serde(default)]
    pub rules: Vec<RouteFilterRule>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RouteFilterRule {
    pub name: String,
    /// Only `Allow` exists in Azure.
    #[serde(default = "allow")]
    pub access: String,
    #[serde(default = "community_rule")]
    pub route_filter_rule_type: String,
    /// Service or region communities, e.g. `12076:5010`.
    pub communities: Vec<String>,
}

fn allow() -> String {
    "Allow".to_string()
}

fn community_rule() -> String {
    "Community".to_string()
}

/// Why a file could not even be parsed. The parser's message is kept,
/// with where it points, but not the source line the parser quotes nor the
/// values it names: a misspelt `sharedKey` line must not put the key in a
/// log or a reload's reply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("TOML: {}{message}", at(*.location))]
    Toml {
        /// Line and column (from 1) of where the parser stopped.
        location: Option<(usize, usize)>,
        message: String,
    },
    #[error("JSON: {0}")]
    Json(String),
}

fn at(location: Option<(usize, usize)>) -> String {
    location.map_or_else(String::new, |(l, c)| format!("line {l}, column {c}: "))
}

impl ParseError {
    pub fn toml(text: &str, e: &toml::de::Error) -> Self {
        let location = e.span().map(|span| {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            (line, column)
        });
        Self::Toml {
            location,
            message: crate::secret::without_values(e.message().trim_end()),
        }
    }

    /// serde_json's message says where (`at line L column C`) and quotes
    /// no source, only values, which are left out.
    pub fn json(e: &serde_json::Error) -> Self {
        Self::Json(crate::secret::without_values(&e.to_string()))
    }
}

impl Config {
    pub fn from_toml_str(text: &str) -> Result<Self, ParseError> {
        toml::from_str(text).map_err(|e| ParseError::toml(text, &e))
    }

    /// The same document as JSON (same field names).
    pub fn from_json_str(text: &str) -> Result<Self, ParseError> {
        serde_json::from_str(text).map_err(|e| ParseError::json(&e))
    }

    /// The configuration as a TOML document in this file format.
    pub fn to_toml_string(&self) -> Result<String, toml::ser::Error> {
        toml::to_string(self)
    }
}
