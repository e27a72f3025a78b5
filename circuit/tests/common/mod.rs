//! Small configs for the tests.
#![allow(dead_code)]

use circuit::config::{self, Config, PeeringType, SkuTier};
use circuit::{Catalog, Model, ValidationErrors};

/// One Provisioned Standard 1 Gbps circuit in Amsterdam with a private
/// peering (two /30s, VLAN 100).
pub(crate) const BASE: &str = r#"
[[circuits]]
name = "c0"
serviceKey = "00000000-0000-0000-0000-000000000000"
serviceProviderProvisioningState = "Provisioned"
serviceProviderProperties = { serviceProviderName = "Lab", peeringLocation = "Amsterdam", bandwidthInMbps = 1000 }
sku = { tier = "Standard", family = "MeteredData" }

[[circuits.peerings]]
peeringType = "AzurePrivatePeering"
peerASN = 65001
primaryPeerAddressPrefix = "192.168.100.128/30"
secondaryPeerAddressPrefix = "192.168.100.132/30"
vlanId = 100
"#;

pub(crate) fn base() -> Config {
    Config::from_toml_str(BASE).unwrap()
}

/// A circuit like the base one, with its own name, location, tier, service
/// key and VLAN/addresses derived from `n`.
pub(crate) fn circuit(n: u8, location: &str, tier: SkuTier) -> config::Circuit {
    let mut c = base().circuits.remove(0);
    c.name = format!("c{n}");
    c.service_key = format!("00000000-0000-0000-0000-0000000000{n:02}");
    c.service_provider_properties.peering_location = location.to_string();
    c.sku.tier = tier;
    let p = &mut c.peerings[0];
    p.vlan_id = Some(100 + u16::from(n));
    p.primary_peer_address_prefix = Some(format!("192.168.{n}.0/30"));
    p.secondary_peer_address_prefix = Some(format!("192.168.{n}.4/30"));
    c
}

pub(crate) fn microsoft_peering() -> config::Peering {
    config::Peering {
        peering_type: PeeringType::MicrosoftPeering,
        peer_asn: 65001,
        primary_peer_address_prefix: None,
        secondary_peer_address_prefix: None,
        peer_address_prefix: Some("203.0.113.0/29".to_string()),
        vlan_id: Some(200),
        s_tag: None,
        c_tag: None,
        shared_key: None,
        bfd: config::Bfd::default(),
        ipv6_peering_config: None,
        microsoft_peering_config: Some(config::MicrosoftPeeringConfig {
            advertised_public_prefixes: vec!["198.51.100.0/24".to_string()],
            customer_asn: None,
            routing_registry_name: None,
        }),
        route_filter: None,
        connections: Vec::new(),
    }
}

pub(crate) fn global_reach(name: &str, prefix: &str, peer: &str) -> config::CircuitConnection {
    config::CircuitConnection {
        name: name.to_string(),
        address_prefix: prefix.to_string(),
        peer_express_route_circuit_peering: peer.to_string(),
    }
}

pub(crate) fn vnet(name: &str, location: &str, prefixes: &[&str]) -> config::VirtualNetwork {
    config::VirtualNetwork {
        name: name.to_string(),
        location: location.to_string(),
        address_space: config::AddressSpace {
            address_prefixes: prefixes
                .iter()
                .map(std::string::ToString::to_string)
                .collect(),
        },
    }
}

pub(crate) fn link(name: &str, vnet: &str, circuit: &str) -> config::Connection {
    config::Connection {
        name: name.to_string(),
        connection_type: "ExpressRoute".to_string(),
        virtual_network: vnet.to_string(),
        peer: circuit.to_string(),
    }
}

pub(crate) fn valid(config: &Config) -> Model {
    match circuit::validate(config, &Catalog::embedded()) {
        Ok(m) => m,
        Err(e) => panic!("expected a valid config, got {e}"),
    }
}

pub(crate) fn invalid(config: &Config) -> ValidationErrors {
    match circuit::validate(config, &Catalog::embedded()) {
        Ok(_) => panic!("expected the config to be refused"),
        Err(e) => e,
    }
}

/// The config is refused with exactly one error, at `path`, whose message
/// contains `needle`. Returns the full error line.
#[track_caller]
pub(crate) fn refused_once(config: &Config, path: &str, needle: &str) -> String {
    let errors = invalid(config);
    assert_eq!(
        errors.0.len(),
        1,
        "expected exactly one error, got {errors}"
    );
    let e = &errors.0[0];
    assert_eq!(e.path, path, "wrong path in {e}");
    assert!(
        e.message.contains(needle),
        "message {:?} does not contain {needle:?}",
        e.message
    );
    e.to_string()
}
