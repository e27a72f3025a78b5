//! The flow hash: which flow a packet belongs to (addresses, transport
//! protocol, ports), so that a flow keeps to one link of a group and flows
//! spread over its links. Hashed only when a link choice needs it.

use crate::{
    msee::{frame::Frame, parse::walk_ext_headers},
    net::{IPPROTO_TCP, IPPROTO_UDP, IPV4_MIN_HDR_LEN, IPV6_HDR_LEN, be16, load32_halves},
};

/// Transport headers further in than this are not looked at for hashing.
pub const MAX_L4_OFFSET: usize = 1024;

/// 2^64 / golden ratio, odd: the multiplier of the flow hash and of the
/// cache-set hash (Fibonacci hashing).
pub(crate) const GOLDEN_64: u64 = 0x9e37_79b9_7f4a_7c15;

/// A stable 32-bit hash of a flow, so a flow always takes the same link and
/// flows spread over the links: 64-bit words folded in by xor and multiply,
/// then one xorshift-multiply round; the answer is the product's top half,
/// which every input bit reaches. (BPF has no rotate instruction: a murmur3
/// word mix costs about three times as many instructions.)
#[inline(always)]
pub fn flow_mix(h: u64, word: u64) -> u64 {
    (h ^ word).wrapping_mul(GOLDEN_64)
}

#[inline(always)]
pub fn flow_finish(h: u64) -> u32 {
    ((h ^ (h >> 29)).wrapping_mul(0xbf58_476d_1ce4_e5b9) >> 32) as u32
}

/// Two 32-bit words as one hash word.
#[inline(always)]
pub fn flow_word(hi: u32, lo: u32) -> u64 {
    u64::from(hi) << 32 | u64::from(lo)
}

/// Which of `n` candidates a flow takes: `hash` scaled to `0..n` by a
/// multiply (its top bits decide), not a division.
#[inline(always)]
pub fn flow_pick(hash: u32, n: u32) -> u32 {
    ((u64::from(hash) * u64::from(n)) >> 32) as u32
}

/// What a flow's hash is made of.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Flow {
    /// IPv4: source and destination as one word; IPv6: their hash.
    pub addrs: u64,
    /// Transport protocol and ports.
    pub l4: u64,
}

impl Flow {
    #[inline(always)]
    pub fn hash(self) -> u32 {
        flow_finish(flow_mix(flow_mix(0, self.addrs), self.l4))
    }
}

/// The hash of the frame's flow (addresses, protocol, ports), for a link
/// choice among several links. Only then: a group of one member, such as
/// the Azure side, needs none. The IP header at `l3_off` (IPv6 if `v6`) was
/// checked by the L3 stage.
#[inline(always)]
pub fn flow_hash<F: Frame + ?Sized>(frame: &F, l3_off: usize, v6: bool) -> u32 {
    if v6 {
        flow_hash_v6(frame, l3_off)
    } else {
        flow_hash_v4(frame, l3_off)
    }
}

/// IPv4: source, destination, protocol and, for TCP and UDP not
/// fragmented, the ports, after the header's options. A fragment, first or
/// not, hashes without ports: the later ones have none, and every
/// fragment of a datagram must take the same link.
#[inline(always)]
pub fn flow_hash_v4<F: Frame + ?Sized>(frame: &F, l3_off: usize) -> u32 {
    let Some(ip) = frame.bytes::<IPV4_MIN_HDR_LEN>(l3_off) else {
        return 0;
    };
    let ihl = ((ip[0] & 0x0f) as usize) * 4;
    let proto = ip[9];
    // Ports only when not fragmented (MF clear, offset 0).
    let mut ports = 0;
    if (proto == IPPROTO_TCP || proto == IPPROTO_UDP)
        && be16(ip, 6) & 0x3fff == 0
        && let Some(p) = frame.bytes::<4>(l3_off + (ihl & 0x3c))
    {
        ports = load32_halves(p.as_ptr());
    }
    Flow {
        addrs: flow_word(
            load32_halves(ip.as_ptr().wrapping_add(12)),
            load32_halves(ip.as_ptr().wrapping_add(16)),
        ),
        l4: flow_word(u32::from(proto), ports),
    }
    .hash()
}

/// IPv6: the addresses, the transport protocol after the extension headers
/// and, for TCP and UDP not fragmented within `MAX_L4_OFFSET`, the ports
/// (every fragment of a datagram takes one link, as for IPv4). Out of line, like the program's `route_v6`, for the stack budget.
#[inline(never)]
pub fn flow_hash_v6<F: Frame + ?Sized>(frame: &F, l3_off: usize) -> u32 {
    let Some(ip) = frame.bytes::<IPV6_HDR_LEN>(l3_off) else {
        return 0;
    };
    let mut next = ip[6];
    let mut ports = 0;
    if let Some(t) = walk_ext_headers(frame, ip[6], l3_off + IPV6_HDR_LEN) {
        let (proto, off, fragment) = (t.proto, t.off as usize, t.fragment != 0);
        next = proto;
        // `off` comes back from a BPF subprogram without its range; bound
        // it again for the verifier (deeper transport headers go unhashed).
        if (proto == IPPROTO_TCP || proto == IPPROTO_UDP)
            && !fragment
            && off < MAX_L4_OFFSET
            && let Some(p) = frame.bytes::<4>(off)
        {
            ports = u32::from_ne_bytes(*p);
        }
    }
    Flow {
        addrs: hash_v6_addresses(ip),
        l4: flow_word(u32::from(next), ports),
    }
    .hash()
}

/// Hash source and destination as four 64-bit words. Out of line, like the
/// program's `route_v6`, so its `lookup_v6` stays within the BPF stack
/// budget.
#[inline(never)]
pub fn hash_v6_addresses(ip: &[u8; IPV6_HDR_LEN]) -> u64 {
    // SAFETY: bytes 8..40 of the 40-byte header are the two addresses, and
    // a byte array has alignment 1.
    let words = unsafe { &*(ip.as_ptr().add(8) as *const [[u8; 8]; 4]) };
    let mut flow = 0;
    for w in words {
        flow = flow_mix(flow, u64::from_ne_bytes(*w));
    }
    flow
}

#[cfg(test)]
mod tests {
    use super::*;

    const L3: usize = 14;

    /// An Ethernet frame with an IPv4 packet from 10.1.0.4 to 192.168.100.129:
    /// `options` 4-byte words of options, then `payload`.
    fn v4(proto: u8, frag: u16, options: usize, payload: &[u8]) -> ([u8; 128], usize) {
        let mut f = [0u8; 128];
        let ip = &mut f[L3..];
        let hlen = 20 + 4 * options;
        ip[0] = 0x40 | (hlen / 4) as u8;
        ip[2..4].copy_from_slice(&((hlen + payload.len()) as u16).to_be_bytes());
        ip[4..6].copy_from_slice(&0x1234u16.to_be_bytes());
        ip[6..8].copy_from_slice(&frag.to_be_bytes());
        ip[8] = 64;
        ip[9] = proto;
        ip[12..16].copy_from_slice(&[10, 1, 0, 4]);
        ip[16..20].copy_from_slice(&[192, 168, 100, 129]);
        ip[hlen..hlen + payload.len()].copy_from_slice(payload);
        (f, L3 + hlen + payload.len())
    }

    /// The hash of source 10.1.0.4, destination 192.168.100.129, `proto`
    /// and the ports as they lie in the packet (0 for none).
    fn v4_flow(proto: u8, ports: [u8; 4]) -> u32 {
        let word = |b: [u8; 4]| u32::from_ne_bytes(b);
        Flow {
            addrs: flow_word(word([10, 1, 0, 4]), word([192, 168, 100, 129])),
            l4: flow_word(u32::from(proto), word(ports)),
        }
        .hash()
    }

    const UDP: [u8; 8] = [0x9c, 0x40, 0x13, 0x89, 0, 8, 0, 0];
    const PORTS: [u8; 4] = [0x9c, 0x40, 0x13, 0x89];

    #[test]
    fn ipv4_flows_hash_addresses_protocol_and_ports() {
        let (f, end) = v4(IPPROTO_UDP, 0, 0, &UDP);
        assert_eq!(flow_hash_v4(&f[..end], L3), v4_flow(IPPROTO_UDP, PORTS));
        assert_eq!(flow_hash(&f[..end], L3, false), v4_flow(IPPROTO_UDP, PORTS));
        // TTL, ID, checksum and payload are not the flow.
        let mut g = f;
        g[L3 + 8] = 3;
        g[L3 + 4] ^= 0xff;
        g[L3 + 10] = 0xab;
        g[L3 + 26] = 0xcd;
        assert_eq!(flow_hash_v4(&g[..end], L3), flow_hash_v4(&f[..end], L3));
        // Options move the ports.
        let (f, end) = v4(IPPROTO_TCP, 0, 2, &UDP);
        assert_eq!(flow_hash_v4(&f[..end], L3), v4_flow(IPPROTO_TCP, PORTS));
        // Another source port, another flow.
        let (f, end) = v4(IPPROTO_UDP, 0, 0, &[0x9c, 0x41, 0x13, 0x89]);
        assert_ne!(flow_hash_v4(&f[..end], L3), v4_flow(IPPROTO_UDP, PORTS));
    }

    #[test]
    fn ipv4_ports_only_where_there_are_ports() {
        // A later fragment (offset 185), ICMP, any other protocol: no ports.
        let (f, end) = v4(IPPROTO_UDP, 185, 0, &UDP);
        assert_eq!(flow_hash_v4(&f[..end], L3), v4_flow(IPPROTO_UDP, [0; 4]));
        // Nor the first fragment (MF, offset 0), though its ports are
        // there: all fragments of a datagram hash alike, so take one link
        // (issue 21).
        let (f, end) = v4(IPPROTO_UDP, 0x2000, 0, &UDP);
        assert_eq!(flow_hash_v4(&f[..end], L3), v4_flow(IPPROTO_UDP, [0; 4]));
        let (f, end) = v4(IPPROTO_TCP, 0x2000, 2, &UDP);
        assert_eq!(flow_hash_v4(&f[..end], L3), v4_flow(IPPROTO_TCP, [0; 4]));
        for proto in [1, 47, 50] {
            let (f, end) = v4(proto, 0, 0, &UDP);
            assert_eq!(flow_hash_v4(&f[..end], L3), v4_flow(proto, [0; 4]));
        }
        // A frame that ends before the ports: hashed without them.
        let (f, _) = v4(IPPROTO_UDP, 0, 0, &UDP);
        assert_eq!(
            flow_hash_v4(&f[..L3 + 22], L3),
            v4_flow(IPPROTO_UDP, [0; 4])
        );
        // No header at all: 0.
        assert_eq!(flow_hash_v4(&f[..L3 + 19], L3), 0);
    }

    /// An Ethernet frame with an IPv6 packet, 2001:db8::10 to 2001:db8:1::4:
    /// `next` as the header's next header, then `rest`.
    fn v6(next: u8, rest: &[u8]) -> ([u8; 1200], usize) {
        let mut f = [0u8; 1200];
        let ip = &mut f[L3..];
        ip[0] = 0x60;
        ip[4..6].copy_from_slice(&(rest.len() as u16).to_be_bytes());
        ip[6] = next;
        ip[7] = 64;
        ip[8..12].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8]);
        ip[23] = 0x10;
        ip[24..30].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0, 1]);
        ip[39] = 4;
        ip[40..40 + rest.len()].copy_from_slice(rest);
        (f, L3 + 40 + rest.len())
    }

    fn v6_flow(f: &[u8], proto: u8, ports: [u8; 4]) -> u32 {
        Flow {
            addrs: hash_v6_addresses(f[L3..L3 + 40].try_into().unwrap()),
            l4: flow_word(u32::from(proto), u32::from_ne_bytes(ports)),
        }
        .hash()
    }

    #[test]
    fn ipv6_flows_look_past_extension_headers() {
        let (f, end) = v6(IPPROTO_UDP, &UDP);
        let plain = flow_hash_v6(&f[..end], L3);
        assert_eq!(plain, v6_flow(&f, IPPROTO_UDP, PORTS));
        assert_eq!(flow_hash(&f[..end], L3, true), plain);
        // Behind hop-by-hop options: the same flow (the protocol is the
        // transport's, not the first header's).
        let mut opts = [0u8; 8 + UDP.len()];
        opts[..8].copy_from_slice(&[IPPROTO_UDP, 0, 1, 4, 0, 0, 0, 0]);
        opts[8..].copy_from_slice(&UDP);
        let (f, end) = v6(0, &opts);
        assert_eq!(flow_hash_v6(&f[..end], L3), plain);
        // Behind a first fragment's header: without ports, as the later
        // fragments of the datagram (issue 21: one datagram, one link).
        let mut rest = [0u8; 24];
        rest[..8].copy_from_slice(&[44, 0, 0, 0, 0, 0, 0, 0]);
        rest[8..16].copy_from_slice(&[IPPROTO_UDP, 0, 0x00, 0x01, 0, 0, 0, 9]);
        rest[16..].copy_from_slice(&UDP);
        let (f, end) = v6(0, &rest);
        let first = flow_hash_v6(&f[..end], L3);
        assert_eq!(first, v6_flow(&f, IPPROTO_UDP, [0; 4]));
        // A later fragment: the ports are not there; the same link.
        rest[10..12].copy_from_slice(&[0x05, 0xc8]);
        let (f, end) = v6(0, &rest);
        assert_eq!(flow_hash_v6(&f[..end], L3), first);
        // Another destination, another flow.
        let (mut f, end) = v6(IPPROTO_UDP, &UDP);
        f[L3 + 39] = 5;
        assert_ne!(flow_hash_v6(&f[..end], L3), plain);
    }

    #[test]
    fn ipv6_ports_only_within_reach() {
        // Transport header past `MAX_L4_OFFSET` (a 1,024-byte hop-by-hop
        // header): hashed without ports.
        let mut rest = [0u8; 1040];
        rest[..2].copy_from_slice(&[IPPROTO_UDP, 127]);
        rest[1024..1032].copy_from_slice(&UDP);
        let (f, end) = v6(0, &rest);
        const { assert!(L3 + 40 + 1024 >= MAX_L4_OFFSET) };
        assert_eq!(
            flow_hash_v6(&f[..end], L3),
            v6_flow(&f, IPPROTO_UDP, [0; 4])
        );
        // An extension header cut short: the first next header, no ports.
        let (f, end) = v6(44, &[IPPROTO_UDP, 0, 0, 0]);
        assert_eq!(flow_hash_v6(&f[..end], L3), v6_flow(&f, 44, [0; 4]));
        // No header at all: 0.
        assert_eq!(flow_hash_v6(&f[..L3 + 39], L3), 0);
    }

    #[test]
    fn flow_hash_spreads() {
        // 12,000 flows differing only in source port, or only in source
        // address, split evenly over 2 and over 3 links.
        let hash = |src: u32, ports: u32| {
            flow_finish(flow_mix(
                flow_mix(0, flow_word(src, 0xc0a8_6481)),
                flow_word(17, ports),
            ))
        };
        for n in [2u32, 3] {
            for by_port in [true, false] {
                let mut links = [0u32; 3];
                for i in 0..12_000u32 {
                    let h = if by_port {
                        hash(0x0a01_0004, i << 16 | 5001)
                    } else {
                        hash(0x0a01_0000 + i, 40_000 << 16 | 5001)
                    };
                    links[flow_pick(h, n) as usize] += 1;
                }
                let even = 12_000 / n;
                for (link, &flows) in links.iter().enumerate().take(n as usize) {
                    assert!(
                        flows.abs_diff(even) <= even / 20,
                        "{n} links, by port {by_port}: link {link} took {flows} of 12000"
                    );
                }
            }
        }
        assert_eq!(flow_pick(u32::MAX, 3), 2);
        assert_eq!(flow_pick(0, 3), 0);
    }
}
