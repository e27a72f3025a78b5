//! Addressing derivation, tags, keys, BFD, route limits and sessions.

mod common;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use circuit::config::{Ipv6PeeringConfig, PeeringType, SkuTier};
use circuit::model::{AddressFamily, LinkRole, MICROSOFT_ASN, RouteLimits, VlanTag};
use common::*;

fn v4(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

#[test]
fn slash_29_gives_customer_first_and_msee_second_in_each_slash_30() {
    let mut c = base();
    let p = &mut c.circuits[0].peerings[0];
    p.primary_peer_address_prefix = None;
    p.secondary_peer_address_prefix = None;
    p.peer_address_prefix = Some("192.168.100.128/29".into());
    let m = valid(&c);
    let p = &m.circuits[0].peerings[0];
    assert_eq!(p.primary.role, LinkRole::Primary);
    assert_eq!(p.primary.ipv4.subnet.to_string(), "192.168.100.128/30");
    assert_eq!(p.primary.ipv4.customer, v4("192.168.100.129"));
    assert_eq!(p.primary.ipv4.msee, v4("192.168.100.130"));
    assert_eq!(p.secondary.role, LinkRole::Secondary);
    assert_eq!(p.secondary.ipv4.subnet.to_string(), "192.168.100.132/30");
    assert_eq!(p.secondary.ipv4.customer, v4("192.168.100.133"));
    assert_eq!(p.secondary.ipv4.msee, v4("192.168.100.134"));
}

#[test]
fn slash_30_pair_gives_the_same_addresses_as_the_slash_29() {
    let m = valid(&base());
    let p = &m.circuits[0].peerings[0];
    assert_eq!(
        (
            p.primary.ipv4.customer,
            p.primary.ipv4.msee,
            p.secondary.ipv4.customer,
            p.secondary.ipv4.msee
        ),
        (
            v4("192.168.100.129"),
            v4("192.168.100.130"),
            v4("192.168.100.133"),
            v4("192.168.100.134")
        )
    );
}

#[test]
fn secondary_need_not_follow_primary() {
    let mut c = base();
    c.circuits[0].peerings[0].secondary_peer_address_prefix = Some("10.9.9.8/30".into());
    let m = valid(&c);
    let s = &m.circuits[0].peerings[0].secondary.ipv4;
    assert_eq!((s.customer, s.msee), (v4("10.9.9.9"), v4("10.9.9.10")));
}

#[test]
fn ipv6_slash_125_splits_into_two_slash_126() {
    let mut c = base();
    c.circuits[0].peerings[0].ipv6_peering_config = Some(Ipv6PeeringConfig {
        peer_address_prefix: Some("2001:db8:1::/125".into()),
        ..Default::default()
    });
    let m = valid(&c);
    let p = &m.circuits[0].peerings[0];
    let pri = p.primary.ipv6.unwrap();
    let sec = p.secondary.ipv6.unwrap();
    assert_eq!(pri.subnet.to_string(), "2001:db8:1::/126");
    assert_eq!(pri.customer, "2001:db8:1::1".parse::<Ipv6Addr>().unwrap());
    assert_eq!(pri.msee, "2001:db8:1::2".parse::<Ipv6Addr>().unwrap());
    assert_eq!(sec.subnet.to_string(), "2001:db8:1::4/126");
    assert_eq!(sec.customer, "2001:db8:1::5".parse::<Ipv6Addr>().unwrap());
    assert_eq!(sec.msee, "2001:db8:1::6".parse::<Ipv6Addr>().unwrap());
}

#[test]
fn tags_key_and_bfd_are_carried() {
    let mut c = base();
    c.circuits[0].peerings[0].shared_key = Some("md5pass".into());
    let mut ms = microsoft_peering();
    ms.vlan_id = None;
    ms.s_tag = Some(7);
    ms.c_tag = Some(20);
    ms.bfd.enabled = false;
    c.circuits[0].peerings[0].vlan_id = None;
    c.circuits[0].peerings[0].s_tag = Some(7);
    c.circuits[0].peerings[0].c_tag = Some(10);
    c.circuits[0].peerings.push(ms);
    let m = valid(&c);
    let private = m.circuits[0]
        .peering(PeeringType::AzurePrivatePeering)
        .unwrap();
    assert_eq!(
        private.vlan,
        VlanTag::QinQ {
            s_tag: 7,
            c_tag: 10
        }
    );
    assert_eq!(
        private.shared_key.as_ref().map(circuit::Secret::expose),
        Some("md5pass")
    );
    assert_eq!(
        private.bfd,
        Some(circuit::model::BfdTimers {
            interval_ms: 300,
            multiplier: 3
        }),
        "BFD defaults to on, 300 ms x 3 as on ExpressRoute"
    );
    let ms = m.circuits[0]
        .peering(PeeringType::MicrosoftPeering)
        .unwrap();
    assert_eq!(
        ms.vlan,
        VlanTag::QinQ {
            s_tag: 7,
            c_tag: 20
        }
    );
    assert_eq!(ms.bfd, None);
    assert_eq!(ms.shared_key, None);
    assert_eq!(
        ms.advertised_public_prefixes[0].to_string(),
        "198.51.100.0/24"
    );
    assert!(
        ms.selected_communities.is_empty(),
        "nothing advertised without a route filter"
    );
}

#[test]
fn bfd_defaults_to_enabled_in_the_file() {
    let c = circuit::Config::from_toml_str(common::BASE).unwrap();
    assert!(c.circuits[0].peerings[0].bfd.enabled);
    let text = common::BASE.replace("vlanId = 100", "vlanId = 100\nbfd = { enabled = false }");
    let c = circuit::Config::from_toml_str(&text).unwrap();
    assert!(!c.circuits[0].peerings[0].bfd.enabled);
    // Lab timers: faster than ExpressRoute's 300 ms x 3.
    let text = common::BASE.replace(
        "vlanId = 100",
        "vlanId = 100\nbfd = { intervalMs = 50, multiplier = 4 }",
    );
    let m = valid(&circuit::Config::from_toml_str(&text).unwrap());
    let bfd = m.circuits[0].peerings[0].bfd.unwrap();
    assert_eq!((bfd.interval_ms, bfd.multiplier), (50, 4));
    assert_eq!(bfd.detection_time(), std::time::Duration::from_millis(200));
}

#[test]
fn route_limits_per_peering_and_sku() {
    let private = |tier| RouteLimits::for_peering(PeeringType::AzurePrivatePeering, tier);
    assert_eq!(private(SkuTier::Local).from_customer_ipv4, 4000);
    assert_eq!(private(SkuTier::Standard).from_customer_ipv4, 4000);
    assert_eq!(private(SkuTier::Premium).from_customer_ipv4, 10000);
    for tier in [SkuTier::Local, SkuTier::Standard, SkuTier::Premium] {
        let p = private(tier);
        assert_eq!(
            (p.from_customer_ipv6, p.to_customer_ipv4, p.to_customer_ipv6),
            (100, Some(1000), Some(100))
        );
        let ms = RouteLimits::for_peering(PeeringType::MicrosoftPeering, tier);
        assert_eq!(
            (
                ms.from_customer_ipv4,
                ms.from_customer_ipv6,
                ms.to_customer_ipv4,
                ms.to_customer_ipv6
            ),
            (200, 200, None, None)
        );
    }
}

#[test]
fn limits_follow_the_circuit_sku() {
    let mut c = base();
    c.circuits[0].sku.tier = SkuTier::Premium;
    c.circuits[0].peerings.push(microsoft_peering());
    let m = valid(&c);
    assert_eq!(m.circuits[0].peerings[0].limits.from_customer_ipv4, 10000);
    assert_eq!(m.circuits[0].peerings[1].limits.from_customer_ipv4, 200);
}

#[test]
fn sessions_one_per_link_and_family() {
    let mut c = base();
    c.circuits[0].peerings[0].shared_key = Some("k".into());
    c.circuits[0].peerings[0].ipv6_peering_config = Some(Ipv6PeeringConfig {
        primary_peer_address_prefix: Some("2001:db8::/126".into()),
        secondary_peer_address_prefix: Some("2001:db8::4/126".into()),
        ..Default::default()
    });
    c.circuits[0].peerings.push(microsoft_peering());
    let m = valid(&c);
    let sessions = m.sessions();
    assert_eq!(
        sessions.len(),
        6,
        "private: 2 links x 2 families; Microsoft: 2 links x IPv4"
    );
    let s = &sessions[0];
    assert_eq!((s.link, s.family), (LinkRole::Primary, AddressFamily::Ipv4));
    assert_eq!(s.local_address, IpAddr::V4(v4("192.168.100.130")));
    assert_eq!(s.peer_address, IpAddr::V4(v4("192.168.100.129")));
    assert_eq!((s.local_asn, s.peer_asn), (MICROSOFT_ASN, 65001));
    assert_eq!(s.md5_key.as_ref().map(circuit::Secret::expose), Some("k"));
    assert!(s.bfd.is_some());
    assert_eq!((s.max_prefixes, s.max_advertised), (4000, Some(1000)));
    let v6 = &sessions[1];
    assert_eq!(v6.family, AddressFamily::Ipv6);
    assert!(v6.bfd.is_none(), "BFD is IPv4 only");
    assert_eq!((v6.max_prefixes, v6.max_advertised), (100, Some(100)));
    assert_eq!(v6.peer_address, "2001:db8::1".parse::<IpAddr>().unwrap());
    let ms: Vec<_> = sessions
        .iter()
        .filter(|s| s.peering_type == PeeringType::MicrosoftPeering)
        .collect();
    assert_eq!(ms.len(), 2);
    assert_eq!(ms[1].link, LinkRole::Secondary);
    assert_eq!(ms[1].local_address, IpAddr::V4(v4("203.0.113.6")));
    assert_eq!(ms[1].max_prefixes, 200);
}
