//! The daemon–CLI contract: what each request's answer holds. The daemon
//! serializes these, `msee-cli` (and tests) read them back; field names
//! follow Azure's where the operator knows them from `az`.
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

/// A circuit as the operator knows it from `az network express-route
/// show`, plus what the model derived (reach, limits, per-link addresses).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CircuitView {
    pub name: String,
    /// Whether this daemon runs it.
    pub running: bool,
    pub service_key: String,
    pub service_provider_name: String,
    pub peering_location: String,
    pub metro: String,
    pub area: String,
    pub bandwidth_in_mbps: u32,
    pub sku: SkuView,
    pub service_provider_provisioning_state: String,
    pub express_route_port: Option<String>,
    pub reach: Vec<String>,
    pub vnet_links: Vec<String>,
    /// The circuits its customer reaches by Global Reach.
    #[serde(default)]
    pub global_reach: Vec<String>,
    pub peerings: Vec<PeeringView>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SkuView {
    pub tier: String,
    pub family: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PeeringView {
    pub peering_type: String,
    #[serde(rename = "peerASN")]
    pub peer_asn: u32,
    /// e.g. `vlan 100`, `s-tag 400 c-tag 10`.
    pub vlan: String,
    pub md5: bool,
    pub bfd: Option<BfdTimersView>,
    pub primary: LinkAddressesView,
    pub secondary: LinkAddressesView,
    pub limits: LimitsView,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BfdTimersView {
    pub interval_ms: u32,
    pub multiplier: u8,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkAddressesView {
    pub ipv4: AddressesView,
    pub ipv6: Option<AddressesView>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddressesView {
    pub subnet: String,
    pub customer: IpAddr,
    pub msee: IpAddr,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LimitsView {
    pub from_customer_ipv4: u32,
    pub from_customer_ipv6: u32,
    pub to_customer_ipv4: Option<u32>,
    pub to_customer_ipv6: Option<u32>,
}

/// A BGP session.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionView {
    pub name: String,
    pub circuit: String,
    pub peering: String,
    /// primary or secondary.
    pub link: String,
    pub local: IpAddr,
    pub peer: IpAddr,
    pub peer_as: u32,
    /// Established or Down.
    pub state: String,
    /// Seconds in this state.
    pub since_secs: Option<u64>,
    pub last_down: Option<String>,
    /// Ipv4 or Ipv6.
    pub family: String,
    pub prefixes_received: usize,
    pub prefixes_advertised: usize,
    pub drained: bool,
    pub held_by_bfd: bool,
    pub held_by_carrier: bool,
    pub max_prefixes: u32,
    pub md5: bool,
}

/// A prefix a circuit's customer announced, and where it goes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteView {
    pub circuit: String,
    pub peering: String,
    pub prefix: String,
    /// The next-hop group the prefix points at in the peering's domain.
    pub group: Option<u32>,
    pub next_hops: Vec<NextHopView>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NextHopView {
    /// primary or secondary.
    pub link: String,
    pub as_path_len: u32,
}

/// A link: whether it carries traffic and why, with its last flips.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkView {
    pub link: u32,
    pub name: String,
    pub neighbour: bool,
    pub carrier: bool,
    /// `None`: no BGP session on this link.
    pub bgp: Option<bool>,
    /// `None`: no BFD, or BFD has not come up yet.
    pub bfd: Option<bool>,
    pub carries: bool,
    pub flips: u64,
    /// Most recent first.
    pub history: Vec<FlipView>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlipView {
    pub up: bool,
    /// The signal change that caused it, e.g. "BFD down".
    pub cause: String,
    /// CLOCK_MONOTONIC, ns: comparable with the packet engine's timestamps.
    pub at_mono_ns: u64,
}

/// A BFD session, as the CLI shows it (the daemon sends more).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BfdView {
    pub name: String,
    pub peer: IpAddr,
    pub state: String,
    pub remote_state: String,
    pub diag: String,
    pub tx_interval_us: u64,
    pub rx_interval_us: u64,
    pub detection_time_us: Option<u64>,
    pub uptime_ms: Option<u64>,
    pub packets_in: u64,
    pub packets_out: u64,
}

/// What a drain or undrain did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DrainView {
    pub circuit: String,
    pub link: String,
    pub drained: bool,
    pub routes_repointed: usize,
    pub sessions_readvertised: usize,
    pub prepend: usize,
}

/// What a reload did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReloadView {
    pub file: String,
    pub changed: bool,
    #[serde(default)]
    pub circuits_added: Vec<String>,
    #[serde(default)]
    pub circuits_removed: Vec<String>,
    /// Sessions restarted (their key, peer AS or addresses changed),
    /// started, and stopped.
    pub restarted: Vec<String>,
    pub added: Vec<String>,
    pub removed: Vec<String>,
    pub in_place: Vec<InPlaceView>,
    /// A circuit's new bandwidth, applied to its policers in place (the
    /// last one if several changed).
    pub bandwidth_mbps: Option<u32>,
    pub notes: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InPlaceView {
    pub session: String,
    pub fields: Vec<String>,
}

/// How the BGP side programmed the dataplane (the route-install
/// benchmark's clock), and lookups in the dataplane's maps.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FibView {
    pub circuits: Vec<String>,
    pub now_ns: u64,
    pub cpu_ns: u64,
    pub record: crate::rib::InstallRecord,
    pub routes: usize,
    pub groups: usize,
    /// The forwarding table in front of the LPM tries: occupancy and the
    /// lookups left to the tries.
    #[serde(default)]
    pub table: crate::metrics::snapshot::FibTableSample,
    pub lookup: Vec<LookupView>,
}

/// `addr` looked up as `msee` does per packet (longest-prefix match) in the
/// domain of one running peering.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LookupView {
    pub addr: IpAddr,
    pub circuit: String,
    pub peering: String,
    pub domain: u32,
    pub route: Option<RouteEntryView>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteEntryView {
    pub group: u32,
    pub flags: u32,
}

/// A dropped frame a capture took (`msee-cli capture`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CapturedFrame {
    /// When it was dropped, Unix ns.
    pub at_unix_ns: u64,
    /// The frame's length on the wire (as it arrived, or as it would have
    /// left for a drop on the egress link).
    pub len: u32,
    /// Its first bytes, in hex.
    pub data: String,
    /// The drop reason (`policer`, `no_route`, ...).
    pub reason: String,
    /// The link it was charged to, or `unattributed`.
    pub link: String,
    /// `in` (into the MSEE on that link) or `out`.
    pub direction: String,
}

/// A running capture's frames since the last read.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaptureBatch {
    pub id: u64,
    pub frames: Vec<CapturedFrame>,
    /// Selected drops not copied since the capture started (over the rate,
    /// or the ring full).
    pub lost: u64,
    /// The capture is over (its count reached, or stopped): nothing more.
    pub done: bool,
}
