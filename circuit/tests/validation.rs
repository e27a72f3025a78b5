//! One test per validation rule: a minimal bad config, the exact field path.

mod common;

use circuit::config::{
    Encapsulation, ExpressRoutePort, Ipv6PeeringConfig, PeeringType, ProvisioningState,
    RouteFilter, RouteFilterRule, SkuTier,
};
use circuit::validate::max_vnet_links;
use common::*;

#[test]
fn base_config_is_valid() {
    let m = valid(&base());
    assert_eq!(m.circuits.len(), 1);
}

// ---- ASNs

#[test]
fn reserved_asn_is_refused() {
    for asn in [65515, 65517, 65520] {
        let mut c = base();
        c.circuits[0].peerings[0].peer_asn = asn;
        let line = refused_once(
            &c,
            "circuits[0].peerings[0].peerASN",
            "is reserved by Azure (65515-65520)",
        );
        assert!(line.starts_with(&format!(
            "circuits[0].peerings[0].peerASN: {asn} is reserved by Azure (65515-65520)"
        )));
    }
    for asn in [65514, 65521, 4_200_000_000, 1] {
        let mut c = base();
        c.circuits[0].peerings[0].peer_asn = asn;
        valid(&c);
    }
}

#[test]
fn microsoft_asn_as_customer_asn_is_refused() {
    let mut c = base();
    c.circuits[0].peerings[0].peer_asn = 12076;
    refused_once(
        &c,
        "circuits[0].peerings[0].peerASN",
        "12076 is Microsoft's ASN",
    );
}

#[test]
fn asn_zero_and_as_trans_are_refused() {
    let mut c = base();
    c.circuits[0].peerings[0].peer_asn = 0;
    refused_once(&c, "circuits[0].peerings[0].peerASN", "not a valid ASN");
    c.circuits[0].peerings[0].peer_asn = 23456;
    refused_once(&c, "circuits[0].peerings[0].peerASN", "AS_TRANS");
}

// ---- IPv4 / IPv6 addressing

#[test]
fn primary_that_is_not_a_slash_30_is_refused() {
    let mut c = base();
    c.circuits[0].peerings[0].primary_peer_address_prefix = Some("192.168.100.128/29".into());
    refused_once(
        &c,
        "circuits[0].peerings[0].primaryPeerAddressPrefix",
        "is a /29; a /30 is required",
    );
}

#[test]
fn secondary_with_host_bits_is_refused() {
    let mut c = base();
    c.circuits[0].peerings[0].secondary_peer_address_prefix = Some("192.168.100.133/30".into());
    refused_once(
        &c,
        "circuits[0].peerings[0].secondaryPeerAddressPrefix",
        "host bits set; write the network address 192.168.100.132/30",
    );
}

#[test]
fn garbage_prefix_is_refused() {
    let mut c = base();
    c.circuits[0].peerings[0].primary_peer_address_prefix = Some("192.168.100.300/30".into());
    refused_once(
        &c,
        "circuits[0].peerings[0].primaryPeerAddressPrefix",
        "is not an IPv4 prefix",
    );
}

#[test]
fn identical_primary_and_secondary_are_refused() {
    let mut c = base();
    c.circuits[0].peerings[0].secondary_peer_address_prefix = Some("192.168.100.128/30".into());
    refused_once(
        &c,
        "circuits[0].peerings[0].secondaryPeerAddressPrefix",
        "two distinct /30s",
    );
}

#[test]
fn missing_secondary_is_refused() {
    let mut c = base();
    c.circuits[0].peerings[0].secondary_peer_address_prefix = None;
    refused_once(
        &c,
        "circuits[0].peerings[0].secondaryPeerAddressPrefix",
        "missing",
    );
}

#[test]
fn slash_29_form_must_be_a_slash_29() {
    let mut c = base();
    let p = &mut c.circuits[0].peerings[0];
    p.primary_peer_address_prefix = None;
    p.secondary_peer_address_prefix = None;
    p.peer_address_prefix = Some("192.168.100.128/28".into());
    refused_once(
        &c,
        "circuits[0].peerings[0].peerAddressPrefix",
        "is a /28; a /29 is required",
    );
}

#[test]
fn both_address_forms_at_once_are_refused() {
    let mut c = base();
    c.circuits[0].peerings[0].peer_address_prefix = Some("192.168.100.128/29".into());
    refused_once(&c, "circuits[0].peerings[0].peerAddressPrefix", "not both");
}

#[test]
fn ipv6_pair_must_be_slash_126_and_distinct() {
    let mut c = base();
    c.circuits[0].peerings[0].ipv6_peering_config = Some(Ipv6PeeringConfig {
        primary_peer_address_prefix: Some("2001:db8::/64".into()),
        secondary_peer_address_prefix: Some("2001:db8::4/126".into()),
        ..Default::default()
    });
    refused_once(
        &c,
        "circuits[0].peerings[0].ipv6PeeringConfig.primaryPeerAddressPrefix",
        "is a /64; a /126 is required",
    );
    c.circuits[0].peerings[0].ipv6_peering_config = Some(Ipv6PeeringConfig {
        primary_peer_address_prefix: Some("2001:db8::4/126".into()),
        secondary_peer_address_prefix: Some("2001:db8::4/126".into()),
        ..Default::default()
    });
    refused_once(
        &c,
        "circuits[0].peerings[0].ipv6PeeringConfig.secondaryPeerAddressPrefix",
        "two distinct /126s",
    );
}

#[test]
fn ipv6_single_form_must_be_slash_125() {
    let mut c = base();
    c.circuits[0].peerings[0].ipv6_peering_config = Some(Ipv6PeeringConfig {
        peer_address_prefix: Some("2001:db8::/126".into()),
        ..Default::default()
    });
    refused_once(
        &c,
        "circuits[0].peerings[0].ipv6PeeringConfig.peerAddressPrefix",
        "is a /126; a /125 is required",
    );
}

// ---- VLAN tags

#[test]
fn duplicate_vlan_within_a_circuit_is_refused() {
    let mut c = base();
    let mut ms = microsoft_peering();
    ms.vlan_id = Some(100);
    c.circuits[0].peerings.push(ms);
    refused_once(
        &c,
        "circuits[0].peerings[1].vlanId",
        "VLAN 100 is already used by circuits[0].peerings[0]",
    );
}

#[test]
fn vlan_out_of_range_is_refused() {
    let mut c = base();
    c.circuits[0].peerings[0].vlan_id = Some(4095);
    refused_once(&c, "circuits[0].peerings[0].vlanId", "allowed 1-4094");
}

#[test]
fn missing_vlan_is_refused() {
    let mut c = base();
    c.circuits[0].peerings[0].vlan_id = None;
    refused_once(&c, "circuits[0].peerings[0].vlanId", "missing");
}

fn qinq(config: &mut circuit::Config, peering: usize, s: u16, c: u16) {
    let p = &mut config.circuits[0].peerings[peering];
    p.vlan_id = None;
    p.s_tag = Some(s);
    p.c_tag = Some(c);
}

#[test]
fn qinq_s_tag_must_be_the_same_for_all_peerings_of_a_circuit() {
    let mut c = base();
    c.circuits[0].peerings.push(microsoft_peering());
    qinq(&mut c, 0, 300, 10);
    qinq(&mut c, 1, 301, 20);
    refused_once(
        &c,
        "circuits[0].peerings[1].sTag",
        "S-tag 301 differs from S-tag 300",
    );
    qinq(&mut c, 1, 300, 20);
    valid(&c);
}

#[test]
fn qinq_c_tag_must_be_unique_per_peering() {
    let mut c = base();
    c.circuits[0].peerings.push(microsoft_peering());
    qinq(&mut c, 0, 300, 10);
    qinq(&mut c, 1, 300, 10);
    refused_once(
        &c,
        "circuits[0].peerings[1].cTag",
        "C-tag 10 is already used by circuits[0].peerings[0]",
    );
}

#[test]
fn qinq_needs_both_tags() {
    let mut c = base();
    qinq(&mut c, 0, 300, 10);
    c.circuits[0].peerings[0].c_tag = None;
    refused_once(&c, "circuits[0].peerings[0].cTag", "missing");
}

#[test]
fn dot1q_tag_must_be_unique_across_circuits_on_the_shared_port_pair() {
    let mut c = base();
    let mut other = circuit(1, "London", SkuTier::Standard);
    other.peerings[0].vlan_id = Some(100);
    c.circuits.push(other);
    refused_once(
        &c,
        "circuits[1].peerings[0].vlanId",
        "VLAN 100 is already used on the shared provider port pair by circuits[0].peerings[0]",
    );
}

#[test]
fn qinq_pair_must_be_unique_across_circuits_but_s_tag_alone_may_repeat_with_other_c_tags() {
    let mut c = base();
    c.circuits.push(circuit(1, "London", SkuTier::Standard));
    qinq(&mut c, 0, 300, 10);
    {
        let p = &mut c.circuits[1].peerings[0];
        p.vlan_id = None;
        p.s_tag = Some(300);
        p.c_tag = Some(10);
    }
    refused_once(
        &c,
        "circuits[1].peerings[0].sTag",
        "S-tag 300 C-tag 10 is already used",
    );
    c.circuits[1].peerings[0].c_tag = Some(11);
    valid(&c);
}

fn direct_port(name: &str, gbps: u32, encapsulation: Encapsulation) -> ExpressRoutePort {
    ExpressRoutePort {
        name: name.into(),
        peering_location: "Amsterdam".into(),
        bandwidth_in_gbps: gbps,
        encapsulation,
    }
}

#[test]
fn same_vlan_on_different_direct_ports_is_fine() {
    let mut c = base();
    c.express_route_ports
        .push(direct_port("p1", 10, Encapsulation::Dot1Q));
    c.express_route_ports
        .push(direct_port("p2", 10, Encapsulation::Dot1Q));
    c.circuits[0].express_route_port = Some("p1".into());
    let mut other = circuit(1, "Amsterdam", SkuTier::Standard);
    other.peerings[0].vlan_id = Some(100);
    other.express_route_port = Some("p2".into());
    c.circuits.push(other);
    valid(&c);
    c.circuits[1].express_route_port = Some("p1".into());
    refused_once(
        &c,
        "circuits[1].peerings[0].vlanId",
        "already used on port \"p1\"",
    );
}

#[test]
fn direct_port_encapsulation_is_enforced() {
    let mut c = base();
    c.express_route_ports
        .push(direct_port("p1", 10, Encapsulation::QinQ));
    c.circuits[0].express_route_port = Some("p1".into());
    refused_once(
        &c,
        "circuits[0].peerings[0].vlanId",
        "uses QinQ encapsulation",
    );
}

// ---- VNet links per SKU and bandwidth

#[test]
fn vnet_link_limits_table() {
    for bw in [50, 100, 200, 500, 1000, 2000, 5000, 10000] {
        assert_eq!(max_vnet_links(SkuTier::Standard, bw), 10);
        assert_eq!(max_vnet_links(SkuTier::Local, bw), 10);
    }
    let premium: Vec<usize> = [50, 100, 200, 500, 1000, 2000, 5000, 10000, 40000, 100000]
        .iter()
        .map(|bw| max_vnet_links(SkuTier::Premium, *bw))
        .collect();
    assert_eq!(premium, [20, 25, 25, 40, 50, 60, 75, 100, 100, 100]);
}

fn with_links(tier: SkuTier, bandwidth: u32, n: usize) -> circuit::Config {
    let mut c = base();
    c.circuits[0].sku.tier = tier;
    c.circuits[0].service_provider_properties.bandwidth_in_mbps = bandwidth;
    for i in 0..n {
        c.virtual_networks.push(vnet(
            &format!("v{i}"),
            "West Europe",
            &[&format!("10.{i}.0.0/16")],
        ));
        c.connections
            .push(link(&format!("l{i}"), &format!("v{i}"), "c0"));
    }
    c
}

#[test]
fn more_vnet_links_than_standard_allows_are_refused() {
    valid(&with_links(SkuTier::Standard, 10000, 10));
    refused_once(
        &with_links(SkuTier::Standard, 10000, 11),
        "connections[10].peer",
        "more than 10 VNet links; Standard at 10000 Mbps allows 10 (Premium allows more)",
    );
}

#[test]
fn more_vnet_links_than_premium_allows_at_the_bandwidth_are_refused() {
    valid(&with_links(SkuTier::Premium, 50, 20));
    refused_once(
        &with_links(SkuTier::Premium, 50, 21),
        "connections[20].peer",
        "Premium at 50 Mbps allows 20",
    );
    valid(&with_links(SkuTier::Premium, 1000, 50));
    refused_once(
        &with_links(SkuTier::Premium, 1000, 51),
        "connections[50].peer",
        "allows 50",
    );
}

#[test]
fn vnet_link_to_unknown_circuit_or_vnet_is_refused() {
    let mut c = base();
    c.virtual_networks
        .push(vnet("v", "West Europe", &["10.0.0.0/16"]));
    c.connections.push(link("l", "v", "nope"));
    refused_once(&c, "connections[0].peer", "unknown circuit \"nope\"");
    c.connections[0] = link("l", "nope", "c0");
    refused_once(
        &c,
        "connections[0].virtualNetwork",
        "unknown virtual network \"nope\"",
    );
}

// ---- Global Reach

#[test]
fn global_reach_on_a_local_circuit_is_refused() {
    let mut c = base();
    c.circuits[0].sku.tier = SkuTier::Local;
    c.circuits.push(circuit(1, "London", SkuTier::Standard));
    c.circuits[0].peerings[0]
        .connections
        .push(global_reach("gr", "172.31.0.0/29", "c1"));
    refused_once(
        &c,
        "circuits[0].peerings[0].connections[0]",
        "Global Reach is not available on Local circuits (\"c0\" is Local)",
    );
}

#[test]
fn global_reach_between_circuits_at_the_same_peering_location_is_refused() {
    let mut c = base();
    c.circuits.push(circuit(1, "Amsterdam", SkuTier::Standard));
    c.circuits[0].peerings[0]
        .connections
        .push(global_reach("gr", "172.31.0.0/29", "c1"));
    refused_once(
        &c,
        "circuits[0].peerings[0].connections[0]",
        "both at peering location Amsterdam",
    );
    // Amsterdam2 is another peering location in the same metro: fine.
    c.circuits[1].service_provider_properties.peering_location = "Amsterdam2".into();
    valid(&c);
}

#[test]
fn global_reach_across_areas_needs_premium_on_both() {
    let mut c = base();
    c.circuits
        .push(circuit(1, "Silicon Valley", SkuTier::Premium));
    c.circuits[0].peerings[0]
        .connections
        .push(global_reach("gr", "172.31.0.0/29", "c1"));
    refused_once(
        &c,
        "circuits[0].peerings[0].connections[0]",
        "different geopolitical areas; both need sku.tier Premium (not Premium: c0)",
    );
    c.circuits[0].sku.tier = SkuTier::Premium;
    valid(&c);
}

#[test]
fn global_reach_within_an_area_works_on_standard() {
    let mut c = base();
    c.circuits.push(circuit(1, "London", SkuTier::Standard));
    c.circuits[0].peerings[0]
        .connections
        .push(global_reach("gr", "172.31.0.0/29", "c1"));
    let m = valid(&c);
    assert_eq!(m.global_reach.len(), 1);
    assert_eq!(
        m.global_reach[0].address_prefix.to_string(),
        "172.31.0.0/29"
    );
}

#[test]
fn global_reach_with_a_national_cloud_is_refused() {
    let mut c = base();
    c.circuits[0].sku.tier = SkuTier::Premium;
    c.circuits.push(circuit(1, "Phoenix Gov", SkuTier::Premium));
    c.circuits[0].peerings[0]
        .connections
        .push(global_reach("gr", "172.31.0.0/29", "c1"));
    refused_once(
        &c,
        "circuits[0].peerings[0].connections[0]",
        "national cloud is isolated",
    );
}

#[test]
fn global_reach_prefix_must_be_a_slash_29() {
    let mut c = base();
    c.circuits.push(circuit(1, "London", SkuTier::Standard));
    c.circuits[0].peerings[0]
        .connections
        .push(global_reach("gr", "172.31.0.0/30", "c1"));
    refused_once(
        &c,
        "circuits[0].peerings[0].connections[0].addressPrefix",
        "a /29 is required",
    );
}

#[test]
fn global_reach_to_an_unknown_circuit_or_non_private_peering_is_refused() {
    let mut c = base();
    c.circuits[0].peerings[0]
        .connections
        .push(global_reach("gr", "172.31.0.0/29", "ghost"));
    refused_once(
        &c,
        "circuits[0].peerings[0].connections[0].peerExpressRouteCircuitPeering",
        "unknown circuit \"ghost\"",
    );
    c.circuits.push(circuit(1, "London", SkuTier::Standard));
    c.circuits[0].peerings[0].connections[0] =
        global_reach("gr", "172.31.0.0/29", "c1/MicrosoftPeering");
    refused_once(
        &c,
        "circuits[0].peerings[0].connections[0].peerExpressRouteCircuitPeering",
        "is not AzurePrivatePeering",
    );
}

#[test]
fn global_reach_declared_from_both_sides_is_refused() {
    let mut c = base();
    c.circuits.push(circuit(1, "London", SkuTier::Standard));
    c.circuits[0].peerings[0]
        .connections
        .push(global_reach("a", "172.31.0.0/29", "c1"));
    c.circuits[1].peerings[0]
        .connections
        .push(global_reach("b", "172.31.0.8/29", "c0"));
    refused_once(
        &c,
        "circuits[1].peerings[0].connections[0]",
        "already connected by circuits[0].peerings[0].connections[0]",
    );
}

// ---- provisioning state, bandwidth, locations

#[test]
fn peerings_on_a_circuit_that_is_not_provisioned_are_refused() {
    for state in [
        ProvisioningState::NotProvisioned,
        ProvisioningState::Provisioning,
        ProvisioningState::Deprovisioning,
    ] {
        let mut c = base();
        c.circuits[0].service_provider_provisioning_state = state;
        refused_once(
            &c,
            "circuits[0].peerings[0]",
            "peerings can only be configured on a Provisioned circuit",
        );
        c.circuits[0].peerings.clear();
        valid(&c);
    }
}

#[test]
fn bandwidth_not_offered_is_refused() {
    let mut c = base();
    c.circuits[0].service_provider_properties.bandwidth_in_mbps = 300;
    refused_once(
        &c,
        "circuits[0].serviceProviderProperties.bandwidthInMbps",
        "300 is not a circuit bandwidth; allowed: 50, 100, 200, 500, 1000, 2000, 5000, 10000",
    );
}

#[test]
fn forty_and_hundred_gbps_need_express_route_direct() {
    let mut c = base();
    c.circuits[0].service_provider_properties.bandwidth_in_mbps = 40000;
    refused_once(
        &c,
        "circuits[0].serviceProviderProperties.bandwidthInMbps",
        "need an expressRoutePort",
    );
    c.express_route_ports
        .push(direct_port("p100", 100, Encapsulation::Dot1Q));
    c.circuits[0].express_route_port = Some("p100".into());
    valid(&c);
    c.circuits[0].service_provider_properties.bandwidth_in_mbps = 50;
    refused_once(
        &c,
        "circuits[0].serviceProviderProperties.bandwidthInMbps",
        "not offered on ExpressRoute Direct",
    );
}

#[test]
fn direct_port_subscription_is_at_most_twice_the_port_speed() {
    let mut c = base();
    c.express_route_ports
        .push(direct_port("p", 10, Encapsulation::Dot1Q));
    c.circuits.clear();
    for n in 0..3 {
        let mut x = circuit(n, "Amsterdam", SkuTier::Standard);
        x.express_route_port = Some("p".into());
        x.service_provider_properties.bandwidth_in_mbps = 10000;
        c.circuits.push(x);
    }
    refused_once(
        &c,
        "expressRoutePorts[0]",
        "add up to 30000 Mbps; a 10 Gbps port pair allows 20000 Mbps",
    );
    c.circuits.pop();
    valid(&c);
}

#[test]
fn unknown_peering_location_is_refused() {
    let mut c = base();
    c.circuits[0].service_provider_properties.peering_location = "Atlantis".into();
    refused_once(
        &c,
        "circuits[0].serviceProviderProperties.peeringLocation",
        "unknown peering location \"Atlantis\"; known: Abu Dhabi, Amsterdam,",
    );
}

#[test]
fn unknown_region_is_refused() {
    let mut c = base();
    c.virtual_networks
        .push(vnet("v", "Mars Central", &["10.0.0.0/16"]));
    refused_once(
        &c,
        "virtualNetworks[0].location",
        "unknown region \"Mars Central\"; known: East US,",
    );
}

#[test]
fn bad_vnet_prefix_is_refused() {
    let mut c = base();
    c.virtual_networks
        .push(vnet("v", "westeurope", &["10.0.0.0/16", "10.1.0.1/16"]));
    refused_once(
        &c,
        "virtualNetworks[0].addressSpace.addressPrefixes[1]",
        "host bits set",
    );
}

#[test]
fn too_many_vnet_prefixes_per_connection_are_refused() {
    let mut c = base();
    let prefixes: Vec<String> = (0..1001u32)
        .map(|i| format!("10.{}.{}.0/24", i / 256, i % 256))
        .collect();
    let refs: Vec<&str> = prefixes.iter().map(String::as_str).collect();
    c.virtual_networks.push(vnet("v", "West Europe", &refs));
    refused_once(
        &c,
        "virtualNetworks[0].addressSpace.addressPrefixes",
        "at most 1000 IPv4 prefixes",
    );
}

// ---- Microsoft peering

#[test]
fn microsoft_peering_with_an_rfc1918_advertised_prefix_is_refused() {
    for private in ["10.1.0.0/16", "172.16.5.0/24", "192.168.0.0/24"] {
        let mut c = base();
        let mut ms = microsoft_peering();
        ms.microsoft_peering_config
            .as_mut()
            .unwrap()
            .advertised_public_prefixes
            .push(private.into());
        c.circuits[0].peerings.push(ms);
        refused_once(
            &c,
            "circuits[0].peerings[1].microsoftPeeringConfig.advertisedPublicPrefixes[1]",
            "is private (RFC 1918); Microsoft peering only accepts public prefixes",
        );
    }
}

#[test]
fn microsoft_peering_needs_advertised_prefixes() {
    let mut c = base();
    let mut ms = microsoft_peering();
    ms.microsoft_peering_config = None;
    c.circuits[0].peerings.push(ms);
    refused_once(
        &c,
        "circuits[0].peerings[1].microsoftPeeringConfig",
        "missing",
    );
}

#[test]
fn route_filter_must_exist_and_name_known_communities() {
    let mut c = base();
    let mut ms = microsoft_peering();
    ms.route_filter = Some("rf".into());
    c.circuits[0].peerings.push(ms);
    refused_once(
        &c,
        "circuits[0].peerings[1].routeFilter",
        "unknown route filter \"rf\"",
    );
    c.route_filters.push(RouteFilter {
        name: "rf".into(),
        rules: vec![RouteFilterRule {
            name: "r".into(),
            access: "Allow".into(),
            route_filter_rule_type: "Community".into(),
            communities: vec!["12076:5010".into(), "12076:9999".into()],
        }],
    });
    refused_once(
        &c,
        "routeFilters[0].rules[0].communities[1]",
        "12076:9999 is neither",
    );
    c.route_filters[0].rules[0].communities[1] = "12076:51002".into(); // a region community
    let m = valid(&c);
    let p = m.circuits[0]
        .peering(PeeringType::MicrosoftPeering)
        .unwrap();
    let selected: Vec<String> = p
        .selected_communities
        .iter()
        .map(std::string::ToString::to_string)
        .collect();
    assert_eq!(selected, ["12076:5010", "12076:51002"]);
}

#[test]
fn route_filter_on_private_peering_is_refused() {
    let mut c = base();
    c.circuits[0].peerings[0].route_filter = Some("rf".into());
    refused_once(
        &c,
        "circuits[0].peerings[0].routeFilter",
        "MicrosoftPeering only",
    );
}

// ---- names and keys

#[test]
fn duplicate_circuit_names_are_refused() {
    let mut c = base();
    let mut other = circuit(1, "London", SkuTier::Standard);
    other.name = "c0".into();
    c.circuits.push(other);
    refused_once(
        &c,
        "circuits[1].name",
        "duplicate circuit name \"c0\" (already used by circuits[0])",
    );
}

#[test]
fn service_key_must_be_a_uuid_and_unique() {
    let mut c = base();
    c.circuits[0].service_key = "not-a-key".into();
    refused_once(&c, "circuits[0].serviceKey", "is not a UUID");
    let mut c = base();
    let mut other = circuit(1, "London", SkuTier::Standard);
    other.service_key = c.circuits[0].service_key.clone();
    c.circuits.push(other);
    refused_once(&c, "circuits[1].serviceKey", "duplicate serviceKey");
}

#[test]
fn duplicate_peering_type_is_refused() {
    let mut c = base();
    let mut second = c.circuits[0].peerings[0].clone();
    second.vlan_id = Some(101);
    c.circuits[0].peerings.push(second);
    refused_once(
        &c,
        "circuits[0].peerings[1].peeringType",
        "AzurePrivatePeering is already configured",
    );
}

#[test]
fn shared_key_must_fit_tcp_md5() {
    let mut c = base();
    c.circuits[0].peerings[0].shared_key = Some("x".repeat(81).into());
    refused_once(
        &c,
        "circuits[0].peerings[0].sharedKey",
        "1 to 80 printable ASCII",
    );
}

#[test]
fn bfd_timers_must_be_in_range() {
    let mut c = base();
    c.circuits[0].peerings[0].bfd.interval_ms = 5;
    refused_once(
        &c,
        "circuits[0].peerings[0].bfd.intervalMs",
        "must be 10 to 60000 ms",
    );
    let mut c = base();
    c.circuits[0].peerings[0].bfd.multiplier = 1;
    refused_once(
        &c,
        "circuits[0].peerings[0].bfd.multiplier",
        "must be 2 to 255",
    );
    // Checked even while BFD is off, so turning it on cannot fail later.
    let mut c = base();
    c.circuits[0].peerings[0].bfd.enabled = false;
    c.circuits[0].peerings[0].bfd.interval_ms = 70_000;
    refused_once(&c, "circuits[0].peerings[0].bfd.intervalMs", "not 70000");
    // The bounds themselves are accepted.
    let mut c = base();
    c.circuits[0].peerings[0].bfd.interval_ms = 10;
    c.circuits[0].peerings[0].bfd.multiplier = 2;
    valid(&c);
}

// ---- the file is refused whole, with every error

#[test]
fn a_file_with_many_errors_reports_all_of_them() {
    let text = r#"
[[circuits]]
name = "a"
serviceKey = "00000000-0000-0000-0000-000000000001"
serviceProviderProvisioningState = "Provisioned"
serviceProviderProperties = { serviceProviderName = "Lab", peeringLocation = "Amsterdam", bandwidthInMbps = 1000 }
sku = { tier = "Standard", family = "MeteredData" }

[[circuits.peerings]]
peeringType = "AzurePrivatePeering"
peerASN = 65001
primaryPeerAddressPrefix = "192.168.100.128/30"
secondaryPeerAddressPrefix = "192.168.100.132/30"
vlanId = 100

[[circuits]]
name = "b"
serviceKey = "00000000-0000-0000-0000-000000000002"
serviceProviderProvisioningState = "Provisioned"
serviceProviderProperties = { serviceProviderName = "Lab", peeringLocation = "Narnia", bandwidthInMbps = 123 }
sku = { tier = "Standard", family = "MeteredData" }

[[circuits.peerings]]
peeringType = "AzurePrivatePeering"
peerASN = 65515
primaryPeerAddressPrefix = "192.168.200.0/29"
secondaryPeerAddressPrefix = "192.168.200.4/30"
vlanId = 100

[[circuits.peerings]]
peeringType = "MicrosoftPeering"
peerASN = 65001
peerAddressPrefix = "203.0.113.0/29"
vlanId = 200
microsoftPeeringConfig = { advertisedPublicPrefixes = ["10.0.0.0/8"] }

[[virtualNetworks]]
name = "v"
location = "Moon South"
addressSpace = { addressPrefixes = ["10.0.0.0/16"] }
"#;
    let err = match circuit::load_toml(text) {
        Err(circuit::LoadError::Invalid(e)) => e,
        other => panic!("expected validation errors, got {other:?}"),
    };
    let paths: Vec<&str> = err.0.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "circuits[1].serviceProviderProperties.peeringLocation",
            "circuits[1].serviceProviderProperties.bandwidthInMbps",
            "circuits[1].peerings[0].peerASN",
            "circuits[1].peerings[0].primaryPeerAddressPrefix",
            "circuits[1].peerings[1].microsoftPeeringConfig.advertisedPublicPrefixes[0]",
            "circuits[1].peerings[0].vlanId",
            "virtualNetworks[0].location",
        ],
        "{err}"
    );
    let text = err.to_string();
    assert!(
        text.starts_with("configuration refused, 7 errors:"),
        "{text}"
    );
    assert!(
        text.contains(
            "\n  circuits[1].peerings[0].peerASN: 65515 is reserved by Azure (65515-65520)"
        )
    );
}

#[test]
fn unknown_fields_and_bad_enums_are_parse_errors() {
    let text = BASE_WITH_TYPO;
    match circuit::load_toml(text) {
        Err(circuit::LoadError::Parse(e)) => assert!(e.to_string().contains("peerAsn"), "{e}"),
        other => panic!("expected a parse error, got {other:?}"),
    }
    let text = common::BASE.replace("tier = \"Standard\"", "tier = \"Gold\"");
    match circuit::load_toml(&text) {
        Err(circuit::LoadError::Parse(e)) => assert!(e.to_string().contains("Gold"), "{e}"),
        other => panic!("expected a parse error, got {other:?}"),
    }
}

const BASE_WITH_TYPO: &str = r#"
[[circuits]]
name = "c0"
serviceKey = "00000000-0000-0000-0000-000000000000"
serviceProviderProvisioningState = "Provisioned"
serviceProviderProperties = { serviceProviderName = "Lab", peeringLocation = "Amsterdam", bandwidthInMbps = 1000 }
sku = { tier = "Standard", family = "MeteredData" }

[[circuits.peerings]]
peeringType = "AzurePrivatePeering"
peerAsn = 65001
vlanId = 100
"#;

#[test]
fn s_tag_identifies_one_circuit_on_a_direct_port() {
    let mut c = base();
    c.express_route_ports
        .push(direct_port("p", 10, Encapsulation::QinQ));
    c.circuits.push(circuit(1, "Amsterdam", SkuTier::Standard));
    for (i, ct) in [(0, 10), (1, 11)] {
        let x = &mut c.circuits[i];
        x.express_route_port = Some("p".into());
        let p = &mut x.peerings[0];
        p.vlan_id = None;
        p.s_tag = Some(400);
        p.c_tag = Some(ct);
    }
    refused_once(
        &c,
        "circuits[1].peerings[0].sTag",
        "S-tag 400 (on ExpressRoute Direct the S-tag identifies one circuit) is already used on port \"p\" by circuits[0].peerings[0]",
    );
    c.circuits[1].peerings[0].s_tag = Some(401);
    valid(&c);
}

#[test]
fn global_reach_prefix_must_not_overlap_peering_subnets_or_another_pair() {
    let mut c = base();
    c.circuits.push(circuit(1, "London", SkuTier::Standard));
    c.circuits.push(circuit(2, "Dublin", SkuTier::Standard));
    c.circuits[0].peerings[0]
        .connections
        .push(global_reach("a", "192.168.1.0/29", "c1"));
    refused_once(
        &c,
        "circuits[0].peerings[0].connections[0].addressPrefix",
        "overlaps 192.168.1.0/30, a peering subnet of \"c1\"",
    );
    c.circuits[0].peerings[0].connections[0].address_prefix = "172.31.0.0/29".into();
    c.circuits[0].peerings[0]
        .connections
        .push(global_reach("b", "172.31.0.0/29", "c2"));
    refused_once(
        &c,
        "circuits[0].peerings[0].connections[1].addressPrefix",
        "is already used by circuits[0].peerings[0].connections[0]",
    );
}

#[test]
fn microsoft_peering_refuses_default_route_and_covering_prefixes() {
    for (prefix, needle) in [
        ("0.0.0.0/0", "is the default route"),
        (
            "8.0.0.0/6",
            "covering 10.0.0.0/8, which is private (RFC 1918)",
        ),
        ("100.64.1.0/24", "shared address space"),
    ] {
        let mut c = base();
        let mut ms = microsoft_peering();
        ms.microsoft_peering_config
            .as_mut()
            .unwrap()
            .advertised_public_prefixes = vec![prefix.into()];
        c.circuits[0].peerings.push(ms);
        refused_once(
            &c,
            "circuits[0].peerings[1].microsoftPeeringConfig.advertisedPublicPrefixes[0]",
            needle,
        );
    }
}

#[test]
fn overlapping_vnets_on_one_circuit_are_accepted_with_a_warning() {
    let mut c = base();
    c.virtual_networks
        .push(vnet("a", "West Europe", &["10.0.0.0/16"]));
    c.virtual_networks
        .push(vnet("b", "North Europe", &["10.0.128.0/17"]));
    c.connections.push(link("la", "a", "c0"));
    c.connections.push(link("lb", "b", "c0"));
    let m = valid(&c);
    assert_eq!(m.warnings.len(), 1, "{:?}", m.warnings);
    assert!(m.warnings[0].contains("\"a\" (10.0.0.0/16) and \"b\" (10.0.128.0/17) overlap"));
}
