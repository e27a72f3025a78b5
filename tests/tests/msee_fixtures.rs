//! Packet fixture tests of the `msee` program through `BPF_PROG_TEST_RUN`:
//! frame + map state in, verdict + frame + counters out. Nothing is sent.
//!
//! The ingress port is `lo` (ifindex 1, present in every namespace), so the
//! tests need no interfaces of their own.
use std::net::Ipv4Addr;

use dataplane::{Msee, NextHopSpec, PortSpec};
use e2e_tests::{
    packet::{ETH_LEN, IPV4_LEN, UdpFrame, parse_udp},
    require_root,
};
use msee_abi::{DropReason, PortRole, PortStats};

const XDP_DROP: u32 = 1;
const XDP_PASS: u32 = 2;
const XDP_REDIRECT: u32 = 4;

const LO: u32 = 1;
const PORT_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x0a];
const NEIGHBOUR_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x0b];
const CUSTOMER_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x0c];
const INGRESS_SLOT: u32 = 0;
const EGRESS_SLOT: u32 = 2;
const MSEE_ADDR: Ipv4Addr = Ipv4Addr::new(192, 168, 100, 130);
const VNET_HOST: Ipv4Addr = Ipv4Addr::new(10, 1, 0, 4);

/// A program with one ingress port (lo), a route 10.1.0.0/16 to a resolved
/// next hop, a route 10.2.0.0/16 to an unresolved one, and a local address.
fn fixture() -> Msee {
    let mut msee = Msee::load(0).expect("load msee");
    let ingress = PortSpec {
        ifindex: LO,
        slot: INGRESS_SLOT,
        role: PortRole::Primary,
        mac: PORT_MAC,
    };
    msee.add_port(ingress).unwrap();
    let egress = PortSpec {
        ifindex: LO,
        slot: EGRESS_SLOT,
        role: PortRole::Azure,
        mac: PORT_MAC,
    };
    msee.set_nexthop(
        1,
        NextHopSpec {
            port: egress,
            neighbour_mac: Some(NEIGHBOUR_MAC),
        },
    )
    .unwrap();
    msee.set_nexthop(
        2,
        NextHopSpec {
            port: egress,
            neighbour_mac: None,
        },
    )
    .unwrap();
    msee.upsert_route_v4(Ipv4Addr::new(10, 1, 0, 0), 16, 1)
        .unwrap();
    msee.upsert_route_v4(Ipv4Addr::new(10, 2, 0, 0), 16, 2)
        .unwrap();
    msee.add_local_v4(MSEE_ADDR).unwrap();
    msee
}

fn udp_to(dst: Ipv4Addr, ttl: u8) -> UdpFrame {
    UdpFrame {
        dst_mac: PORT_MAC,
        src_mac: CUSTOMER_MAC,
        src: Ipv4Addr::new(192, 168, 100, 129),
        dst,
        ttl,
        sport: 40000,
        dport: 5001,
        payload: b"fixture payload".to_vec(),
    }
}

fn stats(msee: &Msee, slot: u32) -> PortStats {
    msee.port_stats(slot).unwrap()
}

#[test]
fn forwards_with_mac_rewrite_and_ttl_decrement() {
    if !require_root("forwards_with_mac_rewrite_and_ttl_decrement") {
        return;
    }
    let mut msee = fixture();
    let frame = udp_to(VNET_HOST, 64).build();
    let (verdict, out) = msee.test_run(&frame, LO).unwrap();
    assert_eq!(verdict, XDP_REDIRECT);
    let p = parse_udp(&out).expect("output is UDP");
    assert_eq!(p.dst_mac, NEIGHBOUR_MAC);
    assert_eq!(p.src_mac, PORT_MAC);
    assert_eq!(p.ttl, 63);
    assert!(p.ipv4_checksum_ok, "IPv4 checksum after TTL decrement");
    assert!(p.udp_checksum_ok);
    assert_eq!(
        out[ETH_LEN + IPV4_LEN..],
        frame[ETH_LEN + IPV4_LEN..],
        "L4 untouched"
    );
    let rx = stats(&msee, INGRESS_SLOT);
    assert_eq!((rx.rx_packets, rx.rx_bytes), (1, frame.len() as u64));
    let tx = stats(&msee, EGRESS_SLOT);
    assert_eq!((tx.tx_packets, tx.tx_bytes), (1, frame.len() as u64));
}

#[test]
fn frames_for_the_msee_go_to_the_kernel() {
    if !require_root("frames_for_the_msee_go_to_the_kernel") {
        return;
    }
    let mut msee = fixture();
    let to_msee = udp_to(MSEE_ADDR, 64).build();
    let mut broadcast = udp_to(VNET_HOST, 64).build();
    broadcast[0..6].copy_from_slice(&[0xff; 6]);
    let mut other_host = udp_to(VNET_HOST, 64).build();
    other_host[0..6].copy_from_slice(&[0x02, 9, 9, 9, 9, 9]);
    let mut arp = vec![0u8; 42];
    arp[0..6].copy_from_slice(&[0xff; 6]);
    arp[12..14].copy_from_slice(&[0x08, 0x06]);
    let mut arp_unicast = arp.clone();
    arp_unicast[0..6].copy_from_slice(&PORT_MAC);
    let mut ipv6 = udp_to(VNET_HOST, 64).build();
    ipv6[12..14].copy_from_slice(&[0x86, 0xdd]);
    let multicast = udp_to(Ipv4Addr::new(224, 0, 0, 5), 1).build();
    for (name, frame) in [
        ("to msee", &to_msee),
        ("broadcast", &broadcast),
        ("other host", &other_host),
        ("arp", &arp),
        ("arp unicast", &arp_unicast),
        ("ipv6", &ipv6),
        ("multicast", &multicast),
    ] {
        let (verdict, out) = msee.test_run(frame, LO).unwrap();
        assert_eq!(verdict, XDP_PASS, "{name}");
        assert_eq!(&out, frame, "{name}: passed untouched");
    }
    let s = stats(&msee, INGRESS_SLOT);
    assert_eq!(s.pass_packets, 7);
    assert_eq!(s.drops, [0; msee_abi::DROP_REASONS]);
}

#[test]
fn drops_are_counted_by_reason() {
    if !require_root("drops_are_counted_by_reason") {
        return;
    }
    let mut msee = fixture();
    let cases = [
        (udp_to(VNET_HOST, 1).build(), DropReason::TtlExpired),
        (udp_to(VNET_HOST, 0).build(), DropReason::TtlExpired),
        (
            udp_to(Ipv4Addr::new(172, 16, 0, 1), 64).build(),
            DropReason::NoRoute,
        ),
        (
            udp_to(Ipv4Addr::new(10, 2, 3, 4), 64).build(),
            DropReason::NoNeighbour,
        ),
    ];
    for (frame, reason) in &cases {
        let (verdict, _) = msee.test_run(frame, LO).unwrap();
        assert_eq!(verdict, XDP_DROP, "{reason:?}");
    }
    let s = stats(&msee, INGRESS_SLOT);
    assert_eq!(s.dropped(DropReason::TtlExpired), 2);
    assert_eq!(s.dropped(DropReason::NoRoute), 1);
    assert_eq!(s.dropped(DropReason::NoNeighbour), 1);
    assert_eq!(s.dropped(DropReason::Malformed), 0);
    assert_eq!(stats(&msee, EGRESS_SLOT).tx_packets, 0);
}

#[test]
fn truncated_frames_are_dropped_as_malformed() {
    if !require_root("truncated_frames_are_dropped_as_malformed") {
        return;
    }
    let mut msee = fixture();
    let frame = udp_to(VNET_HOST, 64).build();
    let mut dropped = 0;
    // Every cut from an empty frame to one byte short of the full IPv4 header.
    for len in 0..ETH_LEN + IPV4_LEN {
        match msee.test_run(&frame[..len], LO) {
            Ok((verdict, _)) => {
                assert_eq!(verdict, XDP_DROP, "{len}-byte frame");
                dropped += 1;
            }
            // The kernel itself refuses frames shorter than an Ethernet header.
            Err(e) => assert!(len < ETH_LEN, "{len}-byte frame refused by the kernel: {e}"),
        }
    }
    // A cut inside the UDP payload: the IPv4 total length now exceeds the frame.
    let (verdict, _) = msee.test_run(&frame[..frame.len() - 3], LO).unwrap();
    assert_eq!(verdict, XDP_DROP);
    dropped += 1;
    assert_eq!(
        stats(&msee, INGRESS_SLOT).dropped(DropReason::Malformed),
        dropped
    );
    assert!(
        dropped >= (IPV4_LEN + 1) as u64,
        "at least every cut inside the IPv4 header ran"
    );
}

#[test]
fn malformed_ipv4_headers_are_dropped() {
    if !require_root("malformed_ipv4_headers_are_dropped") {
        return;
    }
    let mut msee = fixture();
    let good = udp_to(VNET_HOST, 64).build();
    let ip = ETH_LEN;
    let mut cases: Vec<(&str, Vec<u8>)> = Vec::new();
    let mut f = good.clone();
    f[ip] = 0x65; // version 6 in an IPv4 ethertype
    cases.push(("version", f));
    let mut f = good.clone();
    f[ip] = 0x44; // IHL 4 (16 bytes)
    cases.push(("ihl too small", f));
    let mut f = good.clone();
    f[ip] = 0x4f; // IHL 15 (60 bytes) beyond the total length
    cases.push(("ihl beyond total length", f));
    let mut f = good.clone();
    f[ip + 2..ip + 4].copy_from_slice(&2000u16.to_be_bytes());
    cases.push(("total length beyond frame", f));
    let mut f = good.clone();
    f[ip + 2..ip + 4].copy_from_slice(&10u16.to_be_bytes());
    cases.push(("total length below header", f));
    for (name, frame) in &cases {
        let (verdict, _) = msee.test_run(frame, LO).unwrap();
        assert_eq!(verdict, XDP_DROP, "{name}");
    }
    assert_eq!(
        stats(&msee, INGRESS_SLOT).dropped(DropReason::Malformed),
        cases.len() as u64
    );
    // The intact frame still forwards: the drops were about the headers.
    assert_eq!(msee.test_run(&good, LO).unwrap().0, XDP_REDIRECT);
}

#[test]
fn frames_on_unknown_ports_pass_untouched_and_uncounted() {
    if !require_root("frames_on_unknown_ports_pass_untouched_and_uncounted") {
        return;
    }
    let mut msee = Msee::load(0).unwrap();
    let frame = udp_to(VNET_HOST, 64).build();
    let (verdict, out) = msee.test_run(&frame, LO).unwrap();
    assert_eq!(verdict, XDP_PASS);
    assert_eq!(out, frame);
    assert_eq!(stats(&msee, INGRESS_SLOT), PortStats::default());
}

#[test]
fn route_replacement_moves_traffic_without_a_gap() {
    if !require_root("route_replacement_moves_traffic_without_a_gap") {
        return;
    }
    let mut msee = fixture();
    let other_mac = [0x02, 0, 0, 0, 0, 0x0d];
    let egress = PortSpec {
        ifindex: LO,
        slot: 3,
        role: PortRole::Secondary,
        mac: PORT_MAC,
    };
    msee.set_nexthop(
        7,
        NextHopSpec {
            port: egress,
            neighbour_mac: Some(other_mac),
        },
    )
    .unwrap();
    msee.upsert_route_v4(Ipv4Addr::new(10, 1, 0, 0), 16, 7)
        .unwrap();
    let (verdict, out) = msee.test_run(&udp_to(VNET_HOST, 64).build(), LO).unwrap();
    assert_eq!(verdict, XDP_REDIRECT);
    assert_eq!(parse_udp(&out).unwrap().dst_mac, other_mac);
    assert_eq!(stats(&msee, 3).tx_packets, 1);
    // A more specific route wins; removing it falls back to the /16.
    msee.upsert_route_v4(Ipv4Addr::new(10, 1, 0, 4), 32, 1)
        .unwrap();
    let (_, out) = msee.test_run(&udp_to(VNET_HOST, 64).build(), LO).unwrap();
    assert_eq!(parse_udp(&out).unwrap().dst_mac, NEIGHBOUR_MAC);
    msee.remove_route_v4(Ipv4Addr::new(10, 1, 0, 4), 32)
        .unwrap();
    let (_, out) = msee.test_run(&udp_to(VNET_HOST, 64).build(), LO).unwrap();
    assert_eq!(parse_udp(&out).unwrap().dst_mac, other_mac);
}
