//! The validated, derived model: what the control plane applies.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use crate::community::Community;
pub use crate::config::{PeeringType, ProvisioningState, SkuFamily, SkuTier};

/// Microsoft's ASN on every peering.
pub const MICROSOFT_ASN: u32 = 12076;

/// The whole validated configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Model {
    pub circuits: Vec<Circuit>,
    pub virtual_networks: Vec<VirtualNetwork>,
    /// Global Reach pairs, each once, `a` < `b` by name.
    pub global_reach: Vec<GlobalReachPair>,
    /// Things that are accepted but worth knowing (e.g. a VNet link outside
    /// the circuit's reach, which is then not routed).
    pub warnings: Vec<String>,
}

impl Model {
    pub fn circuit(&self, name: &str) -> Option<&Circuit> {
        self.circuits.iter().find(|c| c.name == name)
    }

    /// `name`'s circuit, or an error that lists the circuits there are.
    pub fn circuit_named(&self, name: &str) -> Result<&Circuit, String> {
        self.circuit(name).ok_or_else(|| {
            let names: Vec<&str> = self.circuits.iter().map(|c| c.name.as_str()).collect();
            format!(
                "circuit {name:?} is not in the configuration (it has: {})",
                names.join(", ")
            )
        })
    }

    pub fn virtual_network(&self, name: &str) -> Option<&VirtualNetwork> {
        self.virtual_networks.iter().find(|v| v.name == name)
    }

    /// Every BGP session of every circuit.
    pub fn sessions(&self) -> Vec<Session> {
        self.circuits.iter().flat_map(Circuit::sessions).collect()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Circuit {
    pub name: String,
    pub service_key: String,
    pub service_provider_name: String,
    /// Canonical catalog name of the peering location.
    pub peering_location: String,
    pub metro: String,
    /// Geopolitical area of the peering location.
    pub area: String,
    pub national: bool,
    pub bandwidth_mbps: u32,
    pub tier: SkuTier,
    pub family: SkuFamily,
    pub provisioning_state: ProvisioningState,
    /// ExpressRoute Direct port pair, if any.
    pub express_route_port: Option<String>,
    pub peerings: Vec<Peering>,
    /// Display names of the regions this circuit reaches (see [`crate::reach`]).
    pub reach: Vec<String>,
    /// Names of the VNets linked to this circuit, in configuration order.
    pub vnet_links: Vec<String>,
}

impl Circuit {
    pub fn peering(&self, kind: PeeringType) -> Option<&Peering> {
        self.peerings.iter().find(|p| p.peering_type == kind)
    }

    pub fn reaches(&self, region: &str) -> bool {
        self.reach.iter().any(|r| r == region)
    }

    /// The two (or four, with IPv6) sessions of each peering.
    pub fn sessions(&self) -> Vec<Session> {
        let mut out = Vec::new();
        for p in &self.peerings {
            for link in [&p.primary, &p.secondary] {
                out.push(Session {
                    circuit: self.name.clone(),
                    peering_type: p.peering_type,
                    link: link.role,
                    family: AddressFamily::Ipv4,
                    local_address: link.ipv4.msee.into(),
                    peer_address: link.ipv4.customer.into(),
                    local_asn: MICROSOFT_ASN,
                    peer_asn: p.peer_asn,
                    vlan: p.vlan,
                    md5_key: p.shared_key.clone(),
                    bfd: p.bfd,
                    max_prefixes: p.limits.from_customer_ipv4,
                    max_advertised: p.limits.to_customer_ipv4,
                });
                if let Some(v6) = &link.ipv6 {
                    out.push(Session {
                        circuit: self.name.clone(),
                        peering_type: p.peering_type,
                        link: link.role,
                        family: AddressFamily::Ipv6,
                        local_address: v6.msee.into(),
                        peer_address: v6.customer.into(),
                        local_asn: MICROSOFT_ASN,
                        peer_asn: p.peer_asn,
                        vlan: p.vlan,
                        md5_key: p.shared_key.clone(),
                        // BFD is IPv4 only on ExpressRoute.
                        bfd: None,
                        max_prefixes: p.limits.from_customer_ipv6,
                        max_advertised: p.limits.to_customer_ipv6,
                    });
                }
            }
        }
        out
    }
}

/// BFD timers of a peering: the same interval both ways (desired minimum
/// transmit and required minimum receive), and the detection multiplier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BfdTimers {
    pub interval_ms: u32,
    pub multiplier: u8,
}

impl BfdTimers {
    /// Time without a packet after which the session goes down.
    pub fn detection_time(&self) -> std::time::Duration {
        std::time::Duration::from_millis(u64::from(self.interval_ms) * u64::from(self.multiplier))
    }
}

/// How a peering is tagged on the link.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum VlanTag {
    Dot1Q(u16),
    QinQ { s_tag: u16, c_tag: u16 },
}

impl fmt::Display for VlanTag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VlanTag::Dot1Q(v) => write!(f, "vlan {v}"),
            VlanTag::QinQ { s_tag, c_tag } => write!(f, "s-tag {s_tag} c-tag {c_tag}"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peering {
    pub peering_type: PeeringType,
    pub peer_asn: u32,
    pub vlan: VlanTag,
    pub shared_key: Option<crate::Secret>,
    /// `None` when BFD is off for the peering.
    pub bfd: Option<BfdTimers>,
    pub primary: Link,
    pub secondary: Link,
    pub limits: RouteLimits,
    /// Microsoft peering: prefixes the customer may advertise.
    pub advertised_public_prefixes: Vec<IpNet>,
    /// Microsoft peering: the route filter's name and the communities it
    /// selects. Empty means nothing is advertised to the customer.
    pub route_filter: Option<String>,
    pub selected_communities: Vec<Community>,
    /// Microsoft peering: what is advertised to the customer, the prefixes
    /// of the services its route filter selects, each with its service
    /// community. Empty without a route filter.
    pub service_routes: Vec<(IpNet, Community)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum LinkRole {
    Primary,
    Secondary,
}

impl fmt::Display for LinkRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LinkRole::Primary => "primary",
            LinkRole::Secondary => "secondary",
        })
    }
}

/// One link (primary or secondary) of a peering.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub role: LinkRole,
    pub ipv4: LinkAddresses<Ipv4Net, Ipv4Addr>,
    pub ipv6: Option<LinkAddresses<Ipv6Net, Ipv6Addr>>,
}

/// The point-to-point subnet of a link: the customer takes the first usable
/// address, the MSEE the second.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkAddresses<N, A> {
    pub subnet: N,
    pub customer: A,
    pub msee: A,
}

impl LinkAddresses<Ipv4Net, Ipv4Addr> {
    /// From a /30 network.
    pub fn from_v4(subnet: Ipv4Net) -> Self {
        let base = u32::from(subnet.network());
        Self {
            subnet,
            customer: Ipv4Addr::from(base + 1),
            msee: Ipv4Addr::from(base + 2),
        }
    }
}

impl LinkAddresses<Ipv6Net, Ipv6Addr> {
    /// From a /126 network.
    pub fn from_v6(subnet: Ipv6Net) -> Self {
        let base = u128::from(subnet.network());
        Self {
            subnet,
            customer: Ipv6Addr::from(base + 1),
            msee: Ipv6Addr::from(base + 2),
        }
    }
}

/// Route limits of one peering's sessions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteLimits {
    /// Prefixes the customer may advertise per session before it is torn down.
    pub from_customer_ipv4: u32,
    pub from_customer_ipv6: u32,
    /// VNet prefixes Azure advertises to the customer at most (private
    /// peering). `None` on Microsoft peering, whose advertisements are the
    /// service prefixes a route filter selects, not capped by this limit.
    pub to_customer_ipv4: Option<u32>,
    pub to_customer_ipv6: Option<u32>,
}

impl RouteLimits {
    pub const fn for_peering(kind: PeeringType, tier: SkuTier) -> Self {
        match kind {
            PeeringType::AzurePrivatePeering => Self {
                from_customer_ipv4: match tier {
                    SkuTier::Premium => 10_000,
                    SkuTier::Local | SkuTier::Standard => 4_000,
                },
                from_customer_ipv6: 100,
                to_customer_ipv4: Some(1_000),
                to_customer_ipv6: Some(100),
            },
            PeeringType::MicrosoftPeering => Self {
                from_customer_ipv4: 200,
                from_customer_ipv6: 200,
                to_customer_ipv4: None,
                to_customer_ipv6: None,
            },
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AddressFamily {
    Ipv4,
    Ipv6,
}

/// One eBGP session between an MSEE and the customer's router.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub circuit: String,
    pub peering_type: PeeringType,
    pub link: LinkRole,
    pub family: AddressFamily,
    pub local_address: std::net::IpAddr,
    pub peer_address: std::net::IpAddr,
    pub local_asn: u32,
    pub peer_asn: u32,
    pub vlan: VlanTag,
    pub md5_key: Option<crate::Secret>,
    /// `None` when the session runs without BFD.
    pub bfd: Option<BfdTimers>,
    /// Prefixes accepted from the customer before the session is torn down.
    pub max_prefixes: u32,
    /// Prefixes advertised to the customer at most (`None`: not capped).
    pub max_advertised: Option<u32>,
}

/// Identity of a session across reloads.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionKey {
    pub circuit: String,
    pub peering_type: PeeringType,
    pub link: LinkRole,
    pub family: AddressFamily,
}

impl Session {
    pub fn key(&self) -> SessionKey {
        SessionKey {
            circuit: self.circuit.clone(),
            peering_type: self.peering_type,
            link: self.link,
            family: self.family,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VirtualNetwork {
    pub name: String,
    /// Canonical display name of the region.
    pub region: String,
    pub region_community: Community,
    pub address_prefixes: Vec<IpNet>,
}

/// A Global Reach link between two circuits' private peerings.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GlobalReachPair {
    pub a: String,
    pub b: String,
    pub address_prefix: Ipv4Net,
    /// The connection's name as declared.
    pub name: String,
}
