//! The answers of the az-shaped verbs, in the shapes the ARM API returns
//! (Microsoft.Network `ExpressRouteCircuits_GetStats`,
//! `ExpressRouteCircuits_ListRoutesTable`, `_ListRoutesTableSummary`,
//! `_ListArpTable`; field names and nesting from the public API examples
//! in azure-rest-api-specs).
use serde::{Deserialize, Serialize};

/// `az network express-route get-stats` (`ExpressRouteCircuitStats`):
/// bytes in (toward Microsoft) and out (toward the customer) per link.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CircuitStats {
    #[serde(rename = "primarybytesIn")]
    pub primary_bytes_in: u64,
    #[serde(rename = "primarybytesOut")]
    pub primary_bytes_out: u64,
    #[serde(rename = "secondarybytesIn")]
    pub secondary_bytes_in: u64,
    #[serde(rename = "secondarybytesOut")]
    pub secondary_bytes_out: u64,
}

/// An ARM list answer: `{"value": [...]}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct List<T> {
    pub value: Vec<T>,
}

/// `ExpressRouteCircuitRoutesTable`: a route on the link.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RoutesTableEntry {
    pub network: String,
    pub next_hop: String,
    /// Local preference (a string in the API; empty where none is set).
    pub loc_prf: String,
    pub weight: i32,
    /// The AS path, ASNs separated by spaces.
    pub path: String,
}

/// `ExpressRouteCircuitRoutesTableSummary`: a BGP neighbour on the link.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RoutesTableSummaryEntry {
    pub neighbor: String,
    /// BGP version.
    pub v: u32,
    #[serde(rename = "as")]
    pub asn: u32,
    /// How long the session has been Established (`hh:mm:ss`), or its state.
    pub up_down: String,
    /// Prefixes received when Established, else the state.
    pub state_pfx_rcd: String,
}

/// `ExpressRouteCircuitArpTable`: one ARP entry on the link.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ArpTableEntry {
    /// Minutes since the entry was learned (0 for the MSEE's own).
    pub age: u32,
    /// `On-Prem` (the customer's router) or `Microsoft` (the MSEE).
    pub interface: String,
    pub ip_address: String,
    pub mac_address: String,
}
