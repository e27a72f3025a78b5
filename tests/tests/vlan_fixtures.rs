//! Packet fixtures of the VLAN shim through `BPF_PROG_TEST_RUN`: `msee`
//! popping the tags of frames for the MSEE, `vlan_push` (TC egress) tagging
//! the kernel's own frames, `vlan_pop` (XDP) popping accepted tag stacks.
//! Nothing is attached and nothing is sent; every run uses `lo` (ifindex 1).
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use dataplane::{LoadOptions, Msee, VlanError, VlanShim};
use e2e_tests::{
    packet::{Tag, dot1ad, dot1q, parse_udp},
    require_root,
    vlan_frames::{
        BROADCAST, ETH_P_ARP, ETH_P_IPV4, ETH_P_IPV6, PROTO_ICMP, PROTO_ICMPV6, PROTO_TCP,
        PROTO_UDP, arp, bfd, eth, hop_by_hop_router_alert, icmp_echo, insert_tags, ipv4, ipv6,
        ipv6_multicast_mac, mldv2_report, nd_na, nd_ns, nd_rs, solicited_node, tcp_syn, udp,
    },
};
use msee_abi::{
    Attachment, AttachmentKey, Direction, DropReason, GroupMember, Link, LinkRole, PeeringKind,
    Route,
    vlan::{PushCounters, VlanTags},
};
use traffic::VlanPop;
use traffic_abi::vlan_pop::PopCounters;

const XDP_DROP: u32 = 1;
const XDP_PASS: u32 = 2;
const XDP_REDIRECT: u32 = 4;
const TC_NEXT: i32 = -1;
const LO: u32 = 1;
const MSEE_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x0a];
const PEER_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x0c];

macro_rules! root_only {
    ($name:literal) => {
        if !require_root($name) {
            return;
        }
    };
}

fn v4(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}
fn v6(s: &str) -> Ipv6Addr {
    s.parse().unwrap()
}

// ---------------------------------------------------------------- msee

/// The MSEE side: private peering on 802.1Q 100 (link 0, domain 1),
/// Microsoft peering on QinQ 802.1ad 200 / 802.1Q 10 (link 1, domain 2),
/// an untagged Azure side (link 2, domain 1).
const PRIVATE: u32 = 0;
const MICROSOFT: u32 = 1;
const AZURE: u32 = 2;

fn msee_tags(link: u32) -> Vec<Tag> {
    match link {
        PRIVATE => vec![dot1q(100)],
        MICROSOFT => vec![dot1ad(200), dot1q(10)],
        _ => vec![],
    }
}

/// (customer, MSEE) addresses of each attachment.
fn addrs4(link: u32) -> (Ipv4Addr, Ipv4Addr) {
    match link {
        PRIVATE => (v4("192.168.100.129"), v4("192.168.100.130")),
        MICROSOFT => (v4("203.0.113.1"), v4("203.0.113.2")),
        _ => (v4("10.255.0.2"), v4("10.255.0.1")),
    }
}
fn addrs6(link: u32) -> (Ipv6Addr, Ipv6Addr) {
    match link {
        PRIVATE => (v6("fd00:100::1"), v6("fd00:100::2")),
        MICROSOFT => (v6("2001:db8:300::1"), v6("2001:db8:300::2")),
        _ => (v6("fd00:ff::2"), v6("fd00:ff::1")),
    }
}

fn msee_fixture() -> Msee {
    let mut m = Msee::load(&LoadOptions::default()).expect("load msee");
    m.add_port(LO).unwrap();
    for link in [PRIVATE, MICROSOFT, AZURE] {
        let tags = msee_tags(link);
        let domain = if link == MICROSOFT { 2 } else { 1 };
        m.set_link(
            link,
            Link {
                ifindex: LO,
                outer_vlan: tags.first().map_or(0, |t| t.vid),
                inner_vlan: tags.get(1).map_or(0, |t| t.vid),
                outer_tpid: tags.first().map_or(0, |t| t.tpid),
                role: LinkRole::Primary as u8,
                src_mac: MSEE_MAC,
                dst_mac: [0x02, 0, 0, 0, 0x10, link as u8],
                circuit: 1,
                ..Default::default()
            },
        )
        .unwrap();
        m.set_link_state(link, true).unwrap();
        m.set_attachment(
            AttachmentKey {
                ifindex: LO,
                outer_vlan: tags.first().map_or(0, |t| t.vid),
                inner_vlan: tags.get(1).map_or(0, |t| t.vid),
            },
            Attachment {
                link,
                domain,
                circuit: 1,
                peering: if link == MICROSOFT {
                    PeeringKind::Microsoft as u8
                } else {
                    PeeringKind::Private as u8
                },
                role: LinkRole::Primary as u8,
                mac: MSEE_MAC,
                ..Default::default()
            },
        )
        .unwrap();
        m.add_local(domain, IpAddr::V4(addrs4(link).1)).unwrap();
        m.add_local(domain, IpAddr::V6(addrs6(link).1)).unwrap();
        m.set_group(
            link,
            &[GroupMember {
                link,
                preference: 0,
            }],
        )
        .unwrap();
    }
    let route = |group| Route { group, flags: 0 };
    m.upsert_route(1, "10.1.0.0/16".parse().unwrap(), route(AZURE))
        .unwrap();
    m.upsert_route(1, "192.168.0.0/16".parse().unwrap(), route(PRIVATE))
        .unwrap();
    m.upsert_route(2, "13.107.0.0/16".parse().unwrap(), route(AZURE))
        .unwrap();
    m
}

/// The kernel-bound frames of one attachment, as the customer sends them
/// with `tags`: (name, frame).
fn frames_for_the_msee(link: u32, tags: &[Tag]) -> Vec<(&'static str, Vec<u8>)> {
    let (cust4, msee4) = addrs4(link);
    let (cust6, msee6) = addrs6(link);
    let to_msee4 = |proto, l4: &[u8]| {
        eth(
            MSEE_MAC,
            PEER_MAC,
            tags,
            ETH_P_IPV4,
            &ipv4(cust4, msee4, proto, 64, l4),
        )
    };
    let to_msee6 = |proto, l4: &[u8]| {
        eth(
            MSEE_MAC,
            PEER_MAC,
            tags,
            ETH_P_IPV6,
            &ipv6(cust6, msee6, &[], proto, 64, l4),
        )
    };
    let group = solicited_node(msee6);
    vec![
        (
            "ARP request",
            eth(
                BROADCAST,
                PEER_MAC,
                tags,
                ETH_P_ARP,
                &arp(1, PEER_MAC, cust4, [0; 6], msee4),
            ),
        ),
        (
            "ARP reply",
            eth(
                MSEE_MAC,
                PEER_MAC,
                tags,
                ETH_P_ARP,
                &arp(2, PEER_MAC, cust4, MSEE_MAC, msee4),
            ),
        ),
        ("BGP SYN", to_msee4(PROTO_TCP, &tcp_syn(40001, 179))),
        ("BFD", to_msee4(PROTO_UDP, &bfd(49152))),
        ("ICMP echo", to_msee4(PROTO_ICMP, &icmp_echo(1, 1))),
        (
            "BGP SYN over IPv6",
            to_msee6(PROTO_TCP, &tcp_syn(40002, 179)),
        ),
        (
            "ND NS",
            eth(
                ipv6_multicast_mac(group),
                PEER_MAC,
                tags,
                ETH_P_IPV6,
                &ipv6(
                    cust6,
                    group,
                    &[],
                    PROTO_ICMPV6,
                    255,
                    &nd_ns(msee6, PEER_MAC),
                ),
            ),
        ),
        (
            "ND NA",
            eth(
                MSEE_MAC,
                PEER_MAC,
                tags,
                ETH_P_IPV6,
                &ipv6(
                    cust6,
                    msee6,
                    &[],
                    PROTO_ICMPV6,
                    255,
                    &nd_na(cust6, true, PEER_MAC),
                ),
            ),
        ),
    ]
}

#[test]
fn msee_pops_the_tags_of_frames_for_the_msee() {
    root_only!("msee_pops_the_tags_of_frames_for_the_msee");
    let mut m = msee_fixture();
    for link in [PRIVATE, MICROSOFT] {
        let tags = msee_tags(link);
        let frames = frames_for_the_msee(link, &tags);
        let plain = frames_for_the_msee(link, &[]);
        for ((name, tagged), (_, untagged)) in frames.iter().zip(&plain) {
            let (verdict, out) = m.test_run(tagged, LO).unwrap();
            assert_eq!(verdict, XDP_PASS, "{name} on {tags:?}");
            assert_eq!(
                &out, untagged,
                "{name} on {tags:?}: popped, otherwise untouched"
            );
        }
        let c = m.link_counters(link, Direction::Rx).unwrap();
        assert_eq!(
            (c.packets, c.to_kernel),
            (frames.len() as u64, frames.len() as u64),
            "counted on the attachment's link as before"
        );
    }
}

#[test]
fn msee_leaves_untagged_and_unattached_frames_as_they_were() {
    root_only!("msee_leaves_untagged_and_unattached_frames_as_they_were");
    let mut m = msee_fixture();
    let frames = frames_for_the_msee(AZURE, &[]);
    for (name, frame) in &frames {
        let (verdict, out) = m.test_run(frame, LO).unwrap();
        assert_eq!((verdict, &out), (XDP_PASS, frame), "untagged {name}");
    }
    assert_eq!(
        m.link_counters(AZURE, Direction::Rx).unwrap().to_kernel,
        frames.len() as u64
    );
    // A VLAN with no attachment is not the MSEE's: passed as it came.
    for (name, frame) in frames_for_the_msee(PRIVATE, &[dot1q(999)]) {
        let (verdict, out) = m.test_run(&frame, LO).unwrap();
        assert_eq!((verdict, &out), (XDP_PASS, &frame), "{name} on VLAN 999");
    }
}

#[test]
fn msee_forwarded_tagged_traffic_is_unchanged() {
    root_only!("msee_forwarded_tagged_traffic_is_unchanged");
    let mut m = msee_fixture();
    // Customer (VLAN 100) to Azure: the tag is popped by forwarding, as before.
    let frame = eth(
        MSEE_MAC,
        PEER_MAC,
        &[dot1q(100)],
        ETH_P_IPV4,
        &ipv4(
            v4("192.168.1.10"),
            v4("10.1.0.4"),
            PROTO_UDP,
            64,
            &udp(1, 2, b"x"),
        ),
    );
    let (verdict, out) = m.test_run(&frame, LO).unwrap();
    assert_eq!(verdict, XDP_REDIRECT);
    let p = parse_udp(&out).unwrap();
    assert_eq!((p.tags, p.ttl), (vec![], 63));
    // Azure to the customer: the link's tag is pushed.
    let frame = eth(
        MSEE_MAC,
        PEER_MAC,
        &[],
        ETH_P_IPV4,
        &ipv4(
            v4("10.1.0.4"),
            v4("192.168.1.10"),
            PROTO_UDP,
            64,
            &udp(2, 1, b"x"),
        ),
    );
    let (verdict, out) = m.test_run(&frame, LO).unwrap();
    assert_eq!(verdict, XDP_REDIRECT);
    assert_eq!(parse_udp(&out).unwrap().tags, vec![dot1q(100)]);
    // QinQ Microsoft peering to Azure.
    let frame = eth(
        MSEE_MAC,
        PEER_MAC,
        &msee_tags(MICROSOFT),
        ETH_P_IPV4,
        &ipv4(
            v4("203.0.113.1"),
            v4("13.107.6.152"),
            PROTO_UDP,
            64,
            &udp(1, 2, b"x"),
        ),
    );
    let (verdict, out) = m.test_run(&frame, LO).unwrap();
    assert_eq!(verdict, XDP_REDIRECT);
    assert_eq!(parse_udp(&out).unwrap().tags, vec![]);
    assert_eq!(
        m.link_counters(PRIVATE, Direction::Rx).unwrap().to_kernel,
        0
    );
}

#[test]
fn msee_cut_frames_for_the_msee_never_go_up_broken() {
    root_only!("msee_cut_frames_for_the_msee_never_go_up_broken");
    let mut m = msee_fixture();
    for link in [PRIVATE, MICROSOFT] {
        let tags = msee_tags(link);
        let l2 = 14 + 4 * tags.len();
        for (name, frame) in frames_for_the_msee(link, &tags) {
            for len in 0..=frame.len() {
                let cut = &frame[..len];
                match m.test_run(cut, LO) {
                    Err(e) => assert!(len < 14, "{name}: {len}-byte cut refused: {e}"),
                    Ok((XDP_DROP, _)) => {}
                    Ok((XDP_PASS, out)) => {
                        assert!(len >= l2, "{name}: {len}-byte cut inside the tags passed");
                        let mut expected = cut[..12].to_vec();
                        expected.extend_from_slice(&cut[l2 - 2..]);
                        assert_eq!(
                            out, expected,
                            "{name}: {len}-byte cut passed without its tags"
                        );
                    }
                    Ok((verdict, _)) => panic!("{name}: {len}-byte cut: verdict {verdict}"),
                }
            }
        }
    }
    // Cuts inside the tags are unattributed malformed drops, as before.
    assert!(
        m.unattributed_counters()
            .unwrap()
            .dropped(DropReason::Malformed)
            > 0
    );
}

// ------------------------------------------------------------ vlan_push

const V100: VlanTags = VlanTags::dot1q(100);
const V200: VlanTags = VlanTags::dot1q(200);
const QINQ: VlanTags = VlanTags::qinq(300, 10);
const DOUBLE: VlanTags = VlanTags::double_dot1q(300, 11);

fn tags_of(t: VlanTags) -> Vec<Tag> {
    let mut v = vec![Tag {
        tpid: t.outer_tpid,
        vid: t.outer_vid,
    }];
    if t.inner_vid != 0 {
        v.push(dot1q(t.inner_vid));
    }
    v
}

fn push_fixture() -> VlanShim {
    let mut s = VlanShim::load(&LoadOptions::default()).expect("load vlan_push");
    for (prefix, tags) in [
        ("192.168.100.128/30", V100),
        ("192.168.200.128/30", V200),
        ("fd00:100::/126", V100),
        ("fd00:200::/126", V200),
        ("203.0.113.0/30", QINQ),
        ("fd00:300::/126", DOUBLE),
    ] {
        s.set_egress_tag(LO, prefix.parse().unwrap(), tags).unwrap();
    }
    // Another port's peering: must never tag frames leaving lo.
    s.set_egress_tag(2, "10.0.0.0/8".parse().unwrap(), VlanTags::dot1q(999))
        .unwrap();
    s.set_egress_tag(2, "::/0".parse().unwrap(), VlanTags::dot1q(999))
        .unwrap();
    s
}

/// Frames the MSEE's kernel sends, each with the tags it must leave with.
fn kernel_frames() -> Vec<(&'static str, Vec<u8>, Option<VlanTags>)> {
    let me4 = v4("192.168.100.130");
    let peer4 = v4("192.168.100.129");
    let me6 = v6("fd00:100::2");
    let peer6 = v6("fd00:100::1");
    let ip4 = |src, dst, proto, l4: &[u8]| {
        eth(
            PEER_MAC,
            MSEE_MAC,
            &[],
            ETH_P_IPV4,
            &ipv4(src, dst, proto, 64, l4),
        )
    };
    let ip6 = |src, dst, proto, l4: &[u8]| {
        eth(
            PEER_MAC,
            MSEE_MAC,
            &[],
            ETH_P_IPV6,
            &ipv6(src, dst, &[], proto, 64, l4),
        )
    };
    let nd = |src, dst: Ipv6Addr, l4: Vec<u8>| {
        eth(
            ipv6_multicast_mac(dst),
            MSEE_MAC,
            &[],
            ETH_P_IPV6,
            &ipv6(src, dst, &[], PROTO_ICMPV6, 255, &l4),
        )
    };
    let peer200 = v6("fd00:200::1");
    vec![
        (
            "ARP request (by target)",
            eth(
                BROADCAST,
                MSEE_MAC,
                &[],
                ETH_P_ARP,
                &arp(1, MSEE_MAC, me4, [0; 6], peer4),
            ),
            Some(V100),
        ),
        (
            "ARP reply (by target)",
            eth(
                PEER_MAC,
                MSEE_MAC,
                &[],
                ETH_P_ARP,
                &arp(
                    2,
                    MSEE_MAC,
                    v4("192.168.200.130"),
                    PEER_MAC,
                    v4("192.168.200.129"),
                ),
            ),
            Some(V200),
        ),
        (
            "ARP request for a foreign target (by sender)",
            eth(
                BROADCAST,
                MSEE_MAC,
                &[],
                ETH_P_ARP,
                &arp(1, MSEE_MAC, me4, [0; 6], v4("10.9.9.9")),
            ),
            Some(V100),
        ),
        (
            "BGP SYN",
            ip4(me4, peer4, PROTO_TCP, &tcp_syn(179, 40001)),
            Some(V100),
        ),
        (
            "BFD",
            ip4(
                v4("192.168.200.130"),
                v4("192.168.200.129"),
                PROTO_UDP,
                &bfd(49153),
            ),
            Some(V200),
        ),
        (
            "ICMP to a host beyond the /30 (by source)",
            ip4(me4, v4("172.16.0.10"), PROTO_ICMP, &icmp_echo(7, 1)),
            Some(V100),
        ),
        (
            "IPv4 to no peering",
            ip4(
                v4("10.255.0.1"),
                v4("10.1.0.4"),
                PROTO_UDP,
                &udp(1, 2, b"x"),
            ),
            None,
        ),
        (
            "IPv4 broadcast",
            ip4(
                v4("10.255.0.1"),
                v4("255.255.255.255"),
                PROTO_UDP,
                &udp(68, 67, b"x"),
            ),
            None,
        ),
        (
            "QinQ BGP SYN",
            ip4(
                v4("203.0.113.2"),
                v4("203.0.113.1"),
                PROTO_TCP,
                &tcp_syn(179, 40002),
            ),
            Some(QINQ),
        ),
        (
            "IPv6 BGP SYN",
            ip6(me6, peer6, PROTO_TCP, &tcp_syn(179, 40003)),
            Some(V100),
        ),
        (
            "double 802.1Q IPv6",
            ip6(
                v6("fd00:300::2"),
                v6("fd00:300::1"),
                PROTO_UDP,
                &udp(3784, 49152, b"bfd"),
            ),
            Some(DOUBLE),
        ),
        (
            "IPv6 to a host beyond the /126 (by source)",
            ip6(me6, v6("2001:db8::10"), PROTO_UDP, &udp(1, 2, b"x")),
            Some(V100),
        ),
        (
            "IPv6 to no peering",
            ip6(
                v6("fd00:ff::1"),
                v6("fd00:a10::4"),
                PROTO_UDP,
                &udp(1, 2, b"x"),
            ),
            None,
        ),
        (
            // The source is VLAN 100's, the target VLAN 200's: the target decides.
            "ND NS to a solicited-node group (by target)",
            nd(me6, solicited_node(peer200), nd_ns(peer200, MSEE_MAC)),
            Some(V200),
        ),
        (
            "DAD NS from :: (by target)",
            nd(
                Ipv6Addr::UNSPECIFIED,
                solicited_node(me6),
                nd_ns(me6, MSEE_MAC),
            ),
            Some(V100),
        ),
        (
            "unsolicited NA to all nodes (by target)",
            nd(me6, v6("ff02::1"), nd_na(me6, false, MSEE_MAC)),
            Some(V100),
        ),
        (
            "solicited NA (by target)",
            ip6(me6, peer6, PROTO_ICMPV6, &nd_na(me6, true, MSEE_MAC)),
            Some(V100),
        ),
        (
            "ND NS for a link-local target",
            nd(
                v6("fe80::2"),
                solicited_node(v6("fe80::1")),
                nd_ns(v6("fe80::1"), MSEE_MAC),
            ),
            None,
        ),
        (
            "Router Solicitation",
            nd(v6("fe80::2"), v6("ff02::2"), nd_rs()),
            None,
        ),
        (
            "MLDv2 report",
            eth(
                ipv6_multicast_mac(v6("ff02::16")),
                MSEE_MAC,
                &[],
                ETH_P_IPV6,
                &ipv6(
                    v6("fe80::2"),
                    v6("ff02::16"),
                    &[hop_by_hop_router_alert()],
                    PROTO_ICMPV6,
                    1,
                    &mldv2_report(solicited_node(me6)),
                ),
            ),
            None,
        ),
        (
            "LLDP",
            eth(
                [0x01, 0x80, 0xc2, 0, 0, 0x0e],
                MSEE_MAC,
                &[],
                0x88cc,
                &[0; 32],
            ),
            None,
        ),
    ]
}

#[test]
fn vlan_push_tags_the_kernels_frames_by_peering() {
    root_only!("vlan_push_tags_the_kernels_frames_by_peering");
    let mut s = push_fixture();
    let mut expected = PushCounters::default();
    for (name, frame, tags) in kernel_frames() {
        let (verdict, out) = s.test_run(&frame, LO).unwrap();
        assert_eq!(verdict, TC_NEXT, "{name}");
        match tags {
            Some(t) => {
                assert_eq!(
                    out,
                    insert_tags(&frame, &tags_of(t)),
                    "{name}: tagged {t:?}"
                );
                expected.tagged += 1;
            }
            None => assert_eq!(out, frame, "{name}: untagged"),
        }
    }
    expected.unmatched = 3; // IPv4 and IPv6 to no peering, IPv4 broadcast
    expected.multicast = 3; // NS for a link-local target, RS, MLD
    expected.unparsed = 1; // LLDP
    assert_eq!(s.counters(LO).unwrap(), expected);
    assert_eq!(s.counters(2).unwrap(), PushCounters::default());
}

#[test]
fn vlan_push_leaves_tagged_frames_alone() {
    root_only!("vlan_push_leaves_tagged_frames_alone");
    let mut s = push_fixture();
    for tags in [
        vec![dot1q(100)],
        vec![dot1ad(300), dot1q(10)],
        vec![dot1q(5)],
    ] {
        let frame = eth(
            PEER_MAC,
            MSEE_MAC,
            &tags,
            ETH_P_IPV4,
            &ipv4(
                v4("192.168.100.130"),
                v4("192.168.100.129"),
                PROTO_UDP,
                64,
                &udp(1, 2, b"x"),
            ),
        );
        let (verdict, out) = s.test_run(&frame, LO).unwrap();
        assert_eq!((verdict, out), (TC_NEXT, frame), "{tags:?}");
    }
    assert_eq!(s.counters(LO).unwrap().already_tagged, 3);
}

/// The shortest L3 header the kernel's test run accepts for this ethertype.
fn min_l3(frame: &[u8]) -> usize {
    match u16::from_be_bytes([frame[12], frame[13]]) {
        ETH_P_IPV4 => 20,
        ETH_P_IPV6 => 40,
        _ => 0,
    }
}

#[test]
fn vlan_push_handles_every_truncation() {
    root_only!("vlan_push_handles_every_truncation");
    let mut s = push_fixture();
    for (name, frame, tags) in kernel_frames() {
        for len in 0..frame.len() {
            let cut = &frame[..len];
            match s.test_run(cut, LO) {
                // The kernel refuses test skbs shorter than an Ethernet
                // header, or than the IPv4/IPv6 header their ethertype
                // announces (it never sends such frames either).
                Err(e) => assert!(
                    len < 14 + min_l3(&frame),
                    "{name}: {len}-byte cut refused: {e:?}"
                ),
                Ok((verdict, out)) => {
                    assert_eq!(verdict, TC_NEXT, "{name}: {len}-byte cut");
                    // Either untouched, or exactly the frame's own tags in
                    // front (a cut that still holds the deciding address).
                    let ok =
                        out == cut || tags.is_some_and(|t| out == insert_tags(cut, &tags_of(t)));
                    assert!(ok, "{name}: {len}-byte cut came out as {out:02x?}");
                }
            }
        }
    }
    assert_eq!(s.counters(LO).unwrap().dropped, 0);
}

#[test]
fn vlan_push_table_updates_and_errors() {
    root_only!("vlan_push_table_updates_and_errors");
    let mut s = push_fixture();
    let syn = eth(
        PEER_MAC,
        MSEE_MAC,
        &[],
        ETH_P_IPV4,
        &ipv4(
            v4("192.168.100.130"),
            v4("192.168.100.129"),
            PROTO_TCP,
            64,
            &tcp_syn(179, 1),
        ),
    );
    // Replace in place, then remove: untagged.
    s.set_egress_tag(LO, "192.168.100.128/30".parse().unwrap(), V200)
        .unwrap();
    assert_eq!(
        s.test_run(&syn, LO).unwrap().1,
        insert_tags(&syn, &tags_of(V200))
    );
    // Host bits are ignored.
    s.remove_egress_tag(LO, "192.168.100.130/30".parse().unwrap())
        .unwrap();
    assert_eq!(s.test_run(&syn, LO).unwrap().1, syn);
    let err = s
        .remove_egress_tag(LO, "192.168.100.128/30".parse().unwrap())
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "no egress tags for 192.168.100.128/30 on ifindex 1"
    );
    // A covering prefix tags what the removed one did.
    s.set_egress_tag(LO, "192.168.0.0/16".parse().unwrap(), VlanTags::dot1q(7))
        .unwrap();
    assert_eq!(
        s.test_run(&syn, LO).unwrap().1,
        insert_tags(&syn, &[dot1q(7)])
    );
    let entries = s.egress_tags().unwrap();
    assert!(entries.iter().any(|e| e.ifindex == LO
        && e.prefix == "192.168.0.0/16".parse().unwrap()
        && e.tags == VlanTags::dot1q(7)));
    assert!(entries.iter().any(|e| e.ifindex == LO
        && e.prefix == "fd00:300::/126".parse().unwrap()
        && e.tags == DOUBLE));
    assert_eq!(entries.len(), 8);
    // Refused with what is wrong.
    let p = "10.0.0.0/30".parse().unwrap();
    assert!(matches!(
        s.set_egress_tag(0, p, V100),
        Err(VlanError::IfindexZero)
    ));
    assert!(matches!(
        s.set_egress_tag(LO, p, VlanTags::dot1q(4095)),
        Err(VlanError::Vid { vid: 4095, .. })
    ));
    assert!(matches!(
        s.set_egress_tag(
            LO,
            p,
            VlanTags {
                outer_tpid: 0x0800,
                ..V100
            }
        ),
        Err(VlanError::Tpid(0x0800))
    ));
    assert!(matches!(
        s.attach_egress(0x7fff_fff0),
        Err(VlanError::NoSuchInterface(0x7fff_fff0))
    ));
}

#[test]
fn vlan_push_maps_can_be_pinned_and_adopted() {
    root_only!("vlan_push_maps_can_be_pinned_and_adopted");
    let dir = std::path::PathBuf::from(format!("/sys/fs/bpf/vlan-fixture-{}", std::process::id()));
    struct Unpin(std::path::PathBuf);
    impl Drop for Unpin {
        fn drop(&mut self) {
            let _ = VlanShim::unpin(&self.0);
            let _ = VlanPop::unpin(&self.0);
        }
    }
    let _guard = Unpin(dir.clone());
    let opts = LoadOptions {
        pin_dir: Some(dir.clone()),
        ..Default::default()
    };
    {
        let mut s = VlanShim::load(&opts).unwrap();
        s.set_egress_tag(LO, "192.168.100.128/30".parse().unwrap(), V100)
            .unwrap();
        let mut p = VlanPop::load(&opts).unwrap();
        p.accept(LO, QINQ).unwrap();
    }
    let s = VlanShim::load(&opts).unwrap();
    let p = VlanPop::load(&opts).unwrap();
    assert_eq!(s.egress_tags().unwrap().len(), 1);
    assert_eq!(p.accepted().unwrap(), vec![(LO, QINQ)]);
    drop((s, p));
    VlanShim::unpin(&dir).unwrap();
    VlanPop::unpin(&dir).unwrap();
    assert!(!dir.exists());
}

// ------------------------------------------------------------- vlan_pop

fn pop_fixture() -> VlanPop {
    let mut p = VlanPop::load(&LoadOptions::default()).expect("load vlan_pop");
    p.accept(LO, V100).unwrap();
    p.accept(LO, V200).unwrap();
    p.accept(LO, QINQ).unwrap();
    p.accept(LO, DOUBLE).unwrap();
    p.accept(2, VlanTags::dot1q(500)).unwrap();
    p
}

fn customer_frames(tags: &[Tag]) -> Vec<(&'static str, Vec<u8>)> {
    let me = v4("192.168.100.129");
    let msee = v4("192.168.100.130");
    vec![
        (
            "ARP reply",
            eth(
                PEER_MAC,
                MSEE_MAC,
                tags,
                ETH_P_ARP,
                &arp(2, MSEE_MAC, msee, PEER_MAC, me),
            ),
        ),
        (
            "BGP SYN",
            eth(
                PEER_MAC,
                MSEE_MAC,
                tags,
                ETH_P_IPV4,
                &ipv4(msee, me, PROTO_TCP, 64, &tcp_syn(179, 40001)),
            ),
        ),
        (
            "ND NS",
            eth(
                ipv6_multicast_mac(solicited_node(v6("fd00:100::1"))),
                MSEE_MAC,
                tags,
                ETH_P_IPV6,
                &ipv6(
                    v6("fd00:100::2"),
                    solicited_node(v6("fd00:100::1")),
                    &[],
                    PROTO_ICMPV6,
                    255,
                    &nd_ns(v6("fd00:100::1"), MSEE_MAC),
                ),
            ),
        ),
    ]
}

#[test]
fn vlan_pop_pops_accepted_tags_and_drops_the_rest() {
    root_only!("vlan_pop_pops_accepted_tags_and_drops_the_rest");
    let mut p = pop_fixture();
    let mut expected = PopCounters::default();
    for t in [V100, V200, QINQ, DOUBLE] {
        for ((name, tagged), (_, plain)) in customer_frames(&tags_of(t))
            .into_iter()
            .zip(customer_frames(&[]))
        {
            let (verdict, out) = p.test_run(&tagged, LO).unwrap();
            assert_eq!((verdict, out), (XDP_PASS, plain), "{name} on {t:?}");
            expected.popped += 1;
        }
    }
    for (name, plain) in customer_frames(&[]) {
        let (verdict, out) = p.test_run(&plain, LO).unwrap();
        assert_eq!((verdict, &out), (XDP_PASS, &plain), "untagged {name}");
        expected.untagged += 1;
    }
    for unknown in [
        vec![dot1q(101)],
        vec![dot1ad(100)],            // right VLAN, wrong TPID
        vec![dot1q(300), dot1q(10)],  // QinQ entry is 802.1ad outside
        vec![dot1ad(300), dot1q(12)], // unknown C-tag
        vec![dot1ad(300)],            // S-tag alone
        vec![dot1q(100), dot1q(7)],   // a second tag the entry does not have
        vec![dot1q(100), dot1q(0)],   // inner priority tag
        vec![dot1q(500)],             // another port's VLAN
    ] {
        for (name, frame) in customer_frames(&unknown) {
            assert_eq!(
                p.test_run(&frame, LO).unwrap().0,
                XDP_DROP,
                "{name} on {unknown:?}"
            );
            expected.unknown += 1;
        }
    }
    assert_eq!(p.counters(LO).unwrap(), expected);
    assert_eq!(p.counters(2).unwrap(), PopCounters::default());

    // Refused again once no longer accepted.
    p.refuse(LO, V200).unwrap();
    let (name, frame) = &customer_frames(&tags_of(V200))[0];
    assert_eq!(p.test_run(frame, LO).unwrap().0, XDP_DROP, "{name}");
    assert_eq!(
        p.refuse(LO, V200).unwrap_err().to_string(),
        "802.1Q 200 is not accepted on ifindex 1"
    );
    let mut accepted = p.accepted().unwrap();
    accepted.sort_by_key(|(i, t)| (*i, t.outer_vid, t.inner_vid));
    assert_eq!(
        accepted,
        vec![
            (LO, V100),
            (LO, QINQ),
            (LO, DOUBLE),
            (2, VlanTags::dot1q(500))
        ]
    );
    assert!(matches!(
        p.accept(LO, VlanTags::qinq(300, 4095)),
        Err(VlanError::Vid { which: "inner", .. })
    ));
}

#[test]
fn vlan_pop_handles_every_truncation() {
    root_only!("vlan_pop_handles_every_truncation");
    let mut p = pop_fixture();
    for t in [V100, QINQ] {
        let tags = tags_of(t);
        let l2 = 14 + 4 * tags.len();
        for (name, frame) in customer_frames(&tags) {
            for len in 0..frame.len() {
                let cut = &frame[..len];
                match p.test_run(cut, LO) {
                    Err(e) => assert!(len < 14, "{name}: {len}-byte cut refused: {e}"),
                    Ok((XDP_DROP, _)) => assert!(len < l2, "{name}: {len}-byte cut dropped"),
                    Ok((XDP_PASS, out)) => {
                        assert!(len >= l2, "{name}: {len}-byte cut inside the tags passed");
                        let mut expected = cut[..12].to_vec();
                        expected.extend_from_slice(&cut[l2 - 2..]);
                        assert_eq!(out, expected, "{name}: {len}-byte cut");
                    }
                    Ok((verdict, _)) => panic!("{name}: {len}-byte cut: verdict {verdict}"),
                }
            }
        }
    }
    let c = p.counters(LO).unwrap();
    assert!(c.malformed > 0 && c.popped > 0, "{c:?}");
}
