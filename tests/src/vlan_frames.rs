//! Frames of the kernel's own traffic (ARP, TCP, UDP, ICMP, ND, MLD) with
//! or without VLAN tags, built independently of the code under test, and a
//! parser of what a frame on the wire is (its tags and what it is for), for
//! the VLAN shim's fixtures and lab test.
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::packet::{Tag, fold, ones_sum};

pub const ETH_P_ARP: u16 = 0x0806;
pub const ETH_P_IPV4: u16 = 0x0800;
pub const ETH_P_IPV6: u16 = 0x86dd;
pub const PROTO_ICMP: u8 = 1;
pub const PROTO_TCP: u8 = 6;
pub const PROTO_UDP: u8 = 17;
pub const PROTO_ICMPV6: u8 = 58;
pub const BROADCAST: [u8; 6] = [0xff; 6];

/// Ethernet header (with `tags`, outermost first), ethertype, payload.
pub fn eth(dst: [u8; 6], src: [u8; 6], tags: &[Tag], ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(14 + 4 * tags.len() + payload.len());
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    for t in tags {
        f.extend_from_slice(&t.tpid.to_be_bytes());
        f.extend_from_slice(&t.vid.to_be_bytes());
    }
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// `frame` with `tags` inserted after the MACs (what a push must produce).
pub fn insert_tags(frame: &[u8], tags: &[Tag]) -> Vec<u8> {
    let mut f = frame[..12].to_vec();
    for t in tags {
        f.extend_from_slice(&t.tpid.to_be_bytes());
        f.extend_from_slice(&t.vid.to_be_bytes());
    }
    f.extend_from_slice(&frame[12..]);
    f
}

/// The tags of a frame (outermost first, at most two), and the offset of
/// its ethertype.
pub fn tags_of(frame: &[u8]) -> (Vec<Tag>, usize) {
    let mut off = 12;
    let mut tags = Vec::new();
    while tags.len() < 2 && frame.len() >= off + 4 {
        let tpid = u16::from_be_bytes([frame[off], frame[off + 1]]);
        if tpid != 0x8100 && tpid != 0x88a8 {
            break;
        }
        let vid = u16::from_be_bytes([frame[off + 2], frame[off + 3]]) & 0x0fff;
        tags.push(Tag { tpid, vid });
        off += 4;
    }
    (tags, off)
}

/// An Ethernet/IPv4 ARP packet (28 bytes). `op` 1 request, 2 reply.
pub fn arp(op: u16, sha: [u8; 6], spa: Ipv4Addr, tha: [u8; 6], tpa: Ipv4Addr) -> Vec<u8> {
    let mut a = vec![0, 1, 0x08, 0x00, 6, 4];
    a.extend_from_slice(&op.to_be_bytes());
    a.extend_from_slice(&sha);
    a.extend_from_slice(&spa.octets());
    a.extend_from_slice(&tha);
    a.extend_from_slice(&tpa.octets());
    a
}

/// Offset of the checksum in a transport header, if it has one we fill in.
fn l4_csum_offset(proto: u8) -> Option<usize> {
    match proto {
        PROTO_TCP => Some(16),
        PROTO_UDP => Some(6),
        PROTO_ICMP | PROTO_ICMPV6 => Some(2),
        _ => None,
    }
}

/// An IPv4 packet (no options, DF) carrying `l4`, whose checksum (TCP, UDP,
/// ICMP) is filled in.
pub fn ipv4(src: Ipv4Addr, dst: Ipv4Addr, proto: u8, ttl: u8, l4: &[u8]) -> Vec<u8> {
    let mut l4 = l4.to_vec();
    if let Some(c) = l4_csum_offset(proto) {
        l4[c] = 0;
        l4[c + 1] = 0;
        let sum = if proto == PROTO_ICMP {
            ones_sum(&l4, 0)
        } else {
            let mut pseudo = Vec::new();
            pseudo.extend_from_slice(&src.octets());
            pseudo.extend_from_slice(&dst.octets());
            pseudo.extend_from_slice(&[0, proto]);
            pseudo.extend_from_slice(&(l4.len() as u16).to_be_bytes());
            ones_sum(&l4, ones_sum(&pseudo, 0))
        };
        let mut c16 = !fold(sum);
        if c16 == 0 && proto == PROTO_UDP {
            c16 = 0xffff;
        }
        l4[c..c + 2].copy_from_slice(&c16.to_be_bytes());
    }
    let mut ip = vec![0u8; 20];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&((20 + l4.len()) as u16).to_be_bytes());
    ip[6] = 0x40;
    ip[8] = ttl;
    ip[9] = proto;
    ip[12..16].copy_from_slice(&src.octets());
    ip[16..20].copy_from_slice(&dst.octets());
    let c = !fold(ones_sum(&ip, 0));
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    ip.extend_from_slice(&l4);
    ip
}

/// An IPv6 packet. `ext` are raw extension headers placed first (their
/// first byte is set to the next header), then `l4` with protocol `proto`
/// and its checksum (TCP, UDP, ICMPv6) filled in.
pub fn ipv6(
    src: Ipv6Addr,
    dst: Ipv6Addr,
    ext: &[(u8, Vec<u8>)],
    proto: u8,
    hop_limit: u8,
    l4: &[u8],
) -> Vec<u8> {
    let mut l4 = l4.to_vec();
    if let Some(c) = l4_csum_offset(proto) {
        l4[c] = 0;
        l4[c + 1] = 0;
        let mut pseudo = Vec::new();
        pseudo.extend_from_slice(&src.octets());
        pseudo.extend_from_slice(&dst.octets());
        pseudo.extend_from_slice(&(l4.len() as u32).to_be_bytes());
        pseudo.extend_from_slice(&[0, 0, 0, proto]);
        let mut c16 = !fold(ones_sum(&l4, ones_sum(&pseudo, 0)));
        if c16 == 0 && proto == PROTO_UDP {
            c16 = 0xffff;
        }
        l4[c..c + 2].copy_from_slice(&c16.to_be_bytes());
    }
    let mut exts = Vec::new();
    let first = ext.first().map_or(proto, |(k, _)| *k);
    for (i, (_, bytes)) in ext.iter().enumerate() {
        let mut b = bytes.clone();
        b[0] = ext.get(i + 1).map_or(proto, |(k, _)| *k);
        exts.extend_from_slice(&b);
    }
    let mut ip = vec![0u8; 40];
    ip[0] = 0x60;
    ip[4..6].copy_from_slice(&((exts.len() + l4.len()) as u16).to_be_bytes());
    ip[6] = first;
    ip[7] = hop_limit;
    ip[8..24].copy_from_slice(&src.octets());
    ip[24..40].copy_from_slice(&dst.octets());
    ip.extend_from_slice(&exts);
    ip.extend_from_slice(&l4);
    ip
}

/// A TCP SYN header (20 bytes, checksum left to the IP builder).
pub fn tcp_syn(sport: u16, dport: u16) -> Vec<u8> {
    let mut t = vec![0u8; 20];
    t[0..2].copy_from_slice(&sport.to_be_bytes());
    t[2..4].copy_from_slice(&dport.to_be_bytes());
    t[4..8].copy_from_slice(&0x1234_5678u32.to_be_bytes());
    t[12] = 5 << 4;
    t[13] = 0x02; // SYN
    t[14..16].copy_from_slice(&64240u16.to_be_bytes());
    t
}

pub fn udp(sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut u = Vec::new();
    u.extend_from_slice(&sport.to_be_bytes());
    u.extend_from_slice(&dport.to_be_bytes());
    u.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    u.extend_from_slice(&[0, 0]);
    u.extend_from_slice(payload);
    u
}

/// A BFD Control packet (RFC 5880, state Down) in UDP to port 3784.
pub fn bfd(sport: u16) -> Vec<u8> {
    let mut b = vec![0x20, 0x40, 3, 24];
    b.extend_from_slice(&1u32.to_be_bytes());
    b.extend_from_slice(&0u32.to_be_bytes());
    b.extend_from_slice(&300_000u32.to_be_bytes());
    b.extend_from_slice(&300_000u32.to_be_bytes());
    b.extend_from_slice(&0u32.to_be_bytes());
    udp(sport, 3784, &b)
}

pub fn icmp_echo(id: u16, seq: u16) -> Vec<u8> {
    let mut i = vec![8, 0, 0, 0];
    i.extend_from_slice(&id.to_be_bytes());
    i.extend_from_slice(&seq.to_be_bytes());
    i.extend_from_slice(b"ping");
    i
}

/// The solicited-node multicast group of `addr` (ff02::1:ffXX:XXXX).
pub fn solicited_node(addr: Ipv6Addr) -> Ipv6Addr {
    let o = addr.octets();
    Ipv6Addr::new(
        0xff02,
        0,
        0,
        0,
        0,
        1,
        0xff00 | u16::from(o[13]),
        u16::from_be_bytes([o[14], o[15]]),
    )
}

/// The Ethernet multicast address of an IPv6 group (33:33 + low 32 bits).
pub fn ipv6_multicast_mac(group: Ipv6Addr) -> [u8; 6] {
    let o = group.octets();
    [0x33, 0x33, o[12], o[13], o[14], o[15]]
}

/// ICMPv6 Neighbor Solicitation for `target`, with a source link-layer option.
pub fn nd_ns(target: Ipv6Addr, sll: [u8; 6]) -> Vec<u8> {
    let mut m = vec![135, 0, 0, 0, 0, 0, 0, 0];
    m.extend_from_slice(&target.octets());
    m.extend_from_slice(&[1, 1]);
    m.extend_from_slice(&sll);
    m
}

/// ICMPv6 Neighbor Advertisement for `target` (solicited and override as
/// given), with a target link-layer option.
pub fn nd_na(target: Ipv6Addr, solicited: bool, tll: [u8; 6]) -> Vec<u8> {
    let flags = 0x20 | if solicited { 0x40 } else { 0 };
    let mut m = vec![136, 0, 0, 0, flags, 0, 0, 0];
    m.extend_from_slice(&target.octets());
    m.extend_from_slice(&[2, 1]);
    m.extend_from_slice(&tll);
    m
}

/// ICMPv6 Router Solicitation.
pub fn nd_rs() -> Vec<u8> {
    vec![133, 0, 0, 0, 0, 0, 0, 0]
}

/// MLDv2 report (one record), to be sent to ff02::16 behind a hop-by-hop
/// header with the router alert option (see [`hop_by_hop_router_alert`]).
pub fn mldv2_report(group: Ipv6Addr) -> Vec<u8> {
    let mut m = vec![143, 0, 0, 0, 0, 0, 0, 1];
    m.extend_from_slice(&[4, 0, 0, 0]); // CHANGE_TO_EXCLUDE, no sources
    m.extend_from_slice(&group.octets());
    m
}

pub fn hop_by_hop_router_alert() -> (u8, Vec<u8>) {
    (0, vec![0, 0, 5, 2, 0, 0, 1, 0])
}

/// What a frame on the wire is, as far as the VLAN shim cares.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    Arp {
        op: u16,
        spa: Ipv4Addr,
        tpa: Ipv4Addr,
    },
    Ipv4 {
        src: Ipv4Addr,
        dst: Ipv4Addr,
        proto: u8,
    },
    /// `nd_target`: the target of a Neighbor Solicitation or Advertisement.
    Ipv6 {
        src: Ipv6Addr,
        dst: Ipv6Addr,
        next: u8,
        icmp_type: Option<u8>,
        nd_target: Option<Ipv6Addr>,
    },
    Other(u16),
}

/// Parse a frame's tags and what it carries.
pub fn classify(frame: &[u8]) -> Option<(Vec<Tag>, Kind)> {
    let (tags, off) = tags_of(frame);
    let et = u16::from_be_bytes([*frame.get(off)?, *frame.get(off + 1)?]);
    let p = frame.get(off + 2..)?;
    let kind = match et {
        ETH_P_ARP => {
            let a = p.get(..28)?;
            Kind::Arp {
                op: u16::from_be_bytes([a[6], a[7]]),
                spa: Ipv4Addr::new(a[14], a[15], a[16], a[17]),
                tpa: Ipv4Addr::new(a[24], a[25], a[26], a[27]),
            }
        }
        ETH_P_IPV4 => {
            let ip = p.get(..20)?;
            Kind::Ipv4 {
                src: Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]),
                dst: Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]),
                proto: ip[9],
            }
        }
        ETH_P_IPV6 => {
            let ip = p.get(..40)?;
            let src = Ipv6Addr::from(<[u8; 16]>::try_from(&ip[8..24]).ok()?);
            let dst = Ipv6Addr::from(<[u8; 16]>::try_from(&ip[24..40]).ok()?);
            let (icmp_type, nd_target) = if ip[6] == PROTO_ICMPV6 {
                let t = p.get(40).copied();
                let target = match (t, p.get(48..64)) {
                    (Some(135 | 136), Some(b)) => {
                        Some(Ipv6Addr::from(<[u8; 16]>::try_from(b).ok()?))
                    }
                    _ => None,
                };
                (t, target)
            } else {
                (None, None)
            };
            Kind::Ipv6 {
                src,
                dst,
                next: ip[6],
                icmp_type,
                nd_target,
            }
        }
        other => Kind::Other(other),
    };
    Some((tags, kind))
}

/// The address the VLAN shim's egress program keys a frame by first:
/// ARP's target, IP's destination, ND's target.
pub fn shim_address(kind: &Kind) -> Option<IpAddr> {
    match kind {
        Kind::Arp { tpa, .. } => Some(IpAddr::V4(*tpa)),
        Kind::Ipv4 { dst, .. } => Some(IpAddr::V4(*dst)),
        Kind::Ipv6 {
            nd_target: Some(t), ..
        } => Some(IpAddr::V6(*t)),
        Kind::Ipv6 { dst, .. } => Some(IpAddr::V6(*dst)),
        Kind::Other(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::dot1q;

    #[test]
    fn frames_parse_back() {
        let f = eth(
            BROADCAST,
            [2, 0, 0, 0, 0, 1],
            &[dot1q(100)],
            ETH_P_ARP,
            &arp(
                1,
                [2, 0, 0, 0, 0, 1],
                Ipv4Addr::new(192, 168, 100, 130),
                [0; 6],
                Ipv4Addr::new(192, 168, 100, 129),
            ),
        );
        let (tags, kind) = classify(&f).unwrap();
        assert_eq!(tags, vec![dot1q(100)]);
        assert_eq!(
            shim_address(&kind),
            Some(IpAddr::V4(Ipv4Addr::new(192, 168, 100, 129)))
        );
        let untagged = eth(BROADCAST, [2, 0, 0, 0, 0, 1], &[], ETH_P_ARP, &f[18..]);
        assert_eq!(insert_tags(&untagged, &[dot1q(100)]), f);

        let target: Ipv6Addr = "fd00:100::1".parse().unwrap();
        let ns = ipv6(
            "fd00:100::2".parse().unwrap(),
            solicited_node(target),
            &[],
            PROTO_ICMPV6,
            255,
            &nd_ns(target, [2, 0, 0, 0, 0, 1]),
        );
        assert_eq!(
            solicited_node(target),
            "ff02::1:ff00:1".parse::<Ipv6Addr>().unwrap()
        );
        let f = eth(
            ipv6_multicast_mac(solicited_node(target)),
            [2, 0, 0, 0, 0, 1],
            &[],
            ETH_P_IPV6,
            &ns,
        );
        let (_, kind) = classify(&f).unwrap();
        assert_eq!(shim_address(&kind), Some(IpAddr::V6(target)));
        // The ICMPv6 checksum verifies with the pseudo-header.
        let mut pseudo = Vec::new();
        pseudo.extend_from_slice(&ns[8..40]);
        pseudo.extend_from_slice(&((ns.len() - 40) as u32).to_be_bytes());
        pseudo.extend_from_slice(&[0, 0, 0, 58]);
        assert_eq!(fold(ones_sum(&ns[40..], ones_sum(&pseudo, 0))), 0xffff);
    }
}
