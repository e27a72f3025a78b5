//! ICMP time exceeded: the reply that shows the MSEE hop in a traceroute,
//! built in place of the expired packet, a limited number per second and
//! CPU.

use msee_abi::ICMP_ERRORS_PER_SEC_PER_CPU;

use crate::net::{ETH_HDR_LEN, VLAN_HDR_LEN, fold16, sum16};

/// ICMP time exceeded for IPv4: new IP header (20) + ICMP header (8) +
/// quote of the expired packet's header and first 8 bytes (20 + 8).
pub const ICMP4_TE_LEN: usize = 56;
/// ICMPv6 time exceeded: IPv6 header (40) + ICMPv6 header (8) + quote (40 + 8).
pub const ICMP6_TE_LEN: usize = 96;
pub const ICMP4_QUOTE: usize = 28;
pub const ICMP6_QUOTE: usize = 48;

/// The bytes at the front of a frame a reply is assembled in: the room
/// grown for the new headers (at most ICMPv6's 48) and the widest L2
/// header behind it.
pub const REPLY_FRONT: usize = ICMP6_TE_LEN - ICMP6_QUOTE + ETH_HDR_LEN + 2 * VLAN_HDR_LEN;

/// One ICMP error against this CPU's budget, `slot`: [start of the current
/// one-second window in ns, errors sent in it]. Whether it may be sent at
/// `now` (and is then counted).
#[inline(always)]
pub fn icmp_budget(slot: &mut [u64; 2], now: u64) -> bool {
    if now.wrapping_sub(slot[0]) >= 1_000_000_000 {
        slot[0] = now;
        slot[1] = 0;
    }
    if slot[1] >= ICMP_ERRORS_PER_SEC_PER_CPU {
        return false;
    }
    slot[1] += 1;
    true
}

/// Whether an expired IPv4 packet, quoted by its header (no options) and
/// first 8 bytes, may be answered with an ICMP error. RFC 1812 §4.3.2.7
/// forbids it for a non-first fragment (its first 8 bytes are the middle
/// of a datagram, and the first fragment gets the answer), an ICMP error
/// (errors about errors can loop), a multicast or broadcast destination,
/// and a source that names no single host.
#[inline(always)]
pub fn may_answer_v4(quote: &[u8; ICMP4_QUOTE]) -> bool {
    let fragment_offset = u16::from_be_bytes([quote[6], quote[7]]) & 0x1fff;
    if fragment_offset != 0 {
        return false;
    }
    // Destination unreachable, source quench, redirect, time exceeded,
    // parameter problem: the ICMP error types.
    if quote[9] == 1 && matches!(quote[20], 3 | 4 | 5 | 11 | 12) {
        return false;
    }
    let (src, dst) = (&quote[12..16], &quote[16..20]);
    let not_a_host = src[0] == 0 || src[0] == 127 || src[0] >= 224;
    let group_or_broadcast = dst[0] >= 224;
    !not_a_host && !group_or_broadcast
}

/// The IPv6 counterpart (RFC 4443 §2.4 (e)): not for a non-first fragment
/// nor an ICMPv6 error (types below 128), nor to or from a multicast or
/// unspecified address. A first fragment of an ICMPv6 message is not
/// answered either: its type lies beyond the quote, so it may be an error.
#[inline(always)]
pub fn may_answer_v6(quote: &[u8; ICMP6_QUOTE]) -> bool {
    const FRAGMENT: u8 = 44;
    const ICMPV6: u8 = 58;
    match quote[6] {
        ICMPV6 if quote[40] < 128 => return false,
        FRAGMENT => {
            let offset = u16::from_be_bytes([quote[42], quote[43]]) >> 3;
            if offset != 0 || quote[40] == ICMPV6 {
                return false;
            }
        }
        _ => {}
    }
    let (src, dst) = (&quote[8..24], &quote[24..40]);
    let unspecified = src.iter().all(|&b| b == 0);
    !unspecified && src[0] != 0xff && dst[0] != 0xff
}

/// Move the expired frame's L2 header, tags included, from behind the
/// `grow` bytes just made in front of it to the front, addressed back to
/// its sender (`dst`) from the port's MAC (`src`):
/// [new room][L2 header][quote] -> [L2 header][new headers][quote].
#[inline(always)]
pub fn reply_l2(front: &mut [u8; REPLY_FRONT], grow: usize, dst: [u8; 6], src: &[u8; 6]) {
    for i in 0..ETH_HDR_LEN + 2 * VLAN_HDR_LEN {
        front[i] = front[grow + i];
    }
    front[0..6].copy_from_slice(&dst);
    front[6..12].copy_from_slice(src);
}

/// Fill in an ICMP "time exceeded in transit" packet from `src` in `pkt`,
/// whose last `ICMP4_QUOTE` bytes already hold the expired packet's IPv4
/// header (20 bytes, no options) and first 8 payload bytes.
#[inline(always)]
pub fn icmp4_time_exceeded(pkt: &mut [u8; ICMP4_TE_LEN], src: [u8; 4]) {
    let q = ICMP4_TE_LEN - ICMP4_QUOTE;
    let dst = [pkt[q + 12], pkt[q + 13], pkt[q + 14], pkt[q + 15]];
    pkt[0] = 0x45;
    pkt[1] = 0xc0; // CS6: network control
    pkt[2..4].copy_from_slice(&(ICMP4_TE_LEN as u16).to_be_bytes());
    pkt[4..8].copy_from_slice(&[0, 0, 0, 0]);
    pkt[8] = 64;
    pkt[9] = 1; // ICMP
    pkt[10] = 0;
    pkt[11] = 0;
    pkt[12..16].copy_from_slice(&src);
    pkt[16..20].copy_from_slice(&dst);
    let c = !fold16(sum16(pkt, 0, 20, 0));
    pkt[10..12].copy_from_slice(&c.to_be_bytes());
    pkt[20] = 11; // time exceeded
    pkt[21] = 0; // TTL exceeded in transit
    pkt[22..28].copy_from_slice(&[0; 6]);
    let c = !fold16(sum16(pkt, 20, ICMP4_TE_LEN, 0));
    pkt[22..24].copy_from_slice(&c.to_be_bytes());
}

/// The ICMPv6 counterpart: `pkt`'s last `ICMP6_QUOTE` bytes hold the
/// expired packet's IPv6 header and first 8 bytes after it.
#[inline(always)]
pub fn icmp6_time_exceeded(pkt: &mut [u8; ICMP6_TE_LEN], src: &[u8; 16]) {
    let q = ICMP6_TE_LEN - ICMP6_QUOTE;
    let mut dst = [0u8; 16];
    let mut i = 0;
    while i < 16 {
        dst[i] = pkt[q + 8 + i];
        i += 1;
    }
    let payload = (ICMP6_TE_LEN - 40) as u16;
    pkt[0] = 0x6c; // version 6, traffic class CS6
    pkt[1] = 0;
    pkt[2] = 0;
    pkt[3] = 0;
    pkt[4..6].copy_from_slice(&payload.to_be_bytes());
    pkt[6] = 58; // ICMPv6
    pkt[7] = 64;
    pkt[8..24].copy_from_slice(src);
    pkt[24..40].copy_from_slice(&dst);
    pkt[40] = 3; // time exceeded
    pkt[41] = 0; // hop limit exceeded in transit
    pkt[42..48].copy_from_slice(&[0; 6]);
    // Pseudo-header: source, destination, upper-layer length, next header.
    let mut sum = sum16(pkt, 8, 40, 0);
    sum += u32::from(payload) + 58;
    let c = !fold16(sum16(pkt, 40, ICMP6_TE_LEN, sum));
    pkt[42..44].copy_from_slice(&c.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cpu_sends_so_many_errors_a_second() {
        let mut slot = [0u64; 2];
        let t0 = 5_000_000_000;
        let sent = (0..1000).filter(|i| icmp_budget(&mut slot, t0 + i)).count();
        assert_eq!(sent as u64, ICMP_ERRORS_PER_SEC_PER_CPU);
        assert!(
            !icmp_budget(&mut slot, t0 + 999_999_999),
            "to the end of the second"
        );
        assert!(icmp_budget(&mut slot, t0 + 1_000_000_000), "a new window");
        assert_eq!(slot, [t0 + 1_000_000_000, 1]);
        // A clock behind the window's start (another CPU's slot never is,
        // but the arithmetic wraps): a new window, not a stuck one.
        assert!(icmp_budget(&mut slot, 3));
        assert_eq!(slot, [3, 1]);
    }

    /// An IPv4 header (no options) + 8 bytes: UDP from 10.0.0.1 to
    /// 10.1.0.1, TTL 1, with `edit` applied.
    fn v4(edit: impl FnOnce(&mut [u8; ICMP4_QUOTE])) -> [u8; ICMP4_QUOTE] {
        let mut q = [0u8; ICMP4_QUOTE];
        q[0] = 0x45;
        q[8] = 1;
        q[9] = 17;
        q[12..16].copy_from_slice(&[10, 0, 0, 1]);
        q[16..20].copy_from_slice(&[10, 1, 0, 1]);
        edit(&mut q);
        q
    }

    #[test]
    fn ipv4_errors_only_where_rfc_1812_allows_them() {
        assert!(may_answer_v4(&v4(|_| {})), "a UDP probe");
        // A first fragment (MF set, offset 0) is answered; a later one not.
        assert!(may_answer_v4(&v4(|q| q[6] = 0x20)));
        assert!(!may_answer_v4(&v4(|q| q[7] = 1)), "offset 8");
        assert!(!may_answer_v4(&v4(|q| q[6] = 0x3f)), "MF and a high offset");
        // ICMP: echo (traceroute -I) yes; every error type no.
        assert!(may_answer_v4(&v4(|q| {
            q[9] = 1;
            q[20] = 8;
        })));
        for error in [3, 4, 5, 11, 12] {
            assert!(
                !may_answer_v4(&v4(|q| {
                    q[9] = 1;
                    q[20] = error;
                })),
                "ICMP type {error}"
            );
        }
        // Type 11 on UDP is just a port's byte, not an ICMP error.
        assert!(may_answer_v4(&v4(|q| q[20] = 11)));
        for src in [[0, 0, 0, 0], [127, 0, 0, 1], [224, 0, 0, 5], [255; 4]] {
            assert!(
                !may_answer_v4(&v4(|q| q[12..16].copy_from_slice(&src))),
                "from {src:?}"
            );
        }
        for dst in [[224, 0, 0, 1], [239, 1, 1, 1], [255; 4]] {
            assert!(
                !may_answer_v4(&v4(|q| q[16..20].copy_from_slice(&dst))),
                "to {dst:?}"
            );
        }
    }

    /// An IPv6 header + 8 bytes: UDP from 2001:db8::1 to 2001:db8:1::1,
    /// hop limit 1, with `edit` applied.
    fn v6(edit: impl FnOnce(&mut [u8; ICMP6_QUOTE])) -> [u8; ICMP6_QUOTE] {
        let mut q = [0u8; ICMP6_QUOTE];
        q[0] = 0x60;
        q[6] = 17;
        q[7] = 1;
        q[8..12].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8]);
        q[23] = 1;
        q[24..30].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0, 1]);
        q[39] = 1;
        edit(&mut q);
        q
    }

    #[test]
    fn ipv6_errors_only_where_rfc_4443_allows_them() {
        assert!(may_answer_v6(&v6(|_| {})), "a UDP probe");
        assert!(may_answer_v6(&v6(|q| {
            q[6] = 58;
            q[40] = 128; // echo request
        })));
        for error in [1, 2, 3, 4, 127] {
            assert!(
                !may_answer_v6(&v6(|q| {
                    q[6] = 58;
                    q[40] = error;
                })),
                "ICMPv6 type {error}"
            );
        }
        // Fragment header: the first fragment of UDP yes; a later one no;
        // the first of an ICMPv6 message no (its type is past the quote).
        assert!(may_answer_v6(&v6(|q| {
            q[6] = 44;
            q[40] = 17;
            q[43] = 1; // M flag, offset 0
        })));
        assert!(!may_answer_v6(&v6(|q| {
            q[6] = 44;
            q[40] = 17;
            q[42..44].copy_from_slice(&(185u16 << 3).to_be_bytes());
        })));
        assert!(!may_answer_v6(&v6(|q| {
            q[6] = 44;
            q[40] = 58;
        })));
        assert!(!may_answer_v6(&v6(|q| q[8..24].fill(0))), "from ::");
        assert!(!may_answer_v6(&v6(|q| q[8] = 0xff)), "from a group");
        assert!(!may_answer_v6(&v6(|q| q[24] = 0xff)), "to a group");
    }

    #[test]
    fn the_reply_goes_back_on_the_same_vlans() {
        // Grown by 28 (IPv4) in front of a QinQ header: MACs swapped to
        // sender and port, tags and EtherType kept.
        let l2 = [
            0x02, 0xaa, 0, 0, 0, 1, 0x02, 0xbb, 0, 0, 0, 2, 0x88, 0xa8, 0x01, 0x2c, 0x81, 0x00, 0,
            100, 0x08, 0x00,
        ];
        for grow in [ICMP4_TE_LEN - ICMP4_QUOTE, ICMP6_TE_LEN - ICMP6_QUOTE] {
            let mut front = [0xeeu8; REPLY_FRONT];
            front[grow..grow + 22].copy_from_slice(&l2);
            let sender = [0x02, 0xbb, 0, 0, 0, 2];
            reply_l2(&mut front, grow, sender, &[0x02, 0xaa, 0, 0, 0, 1]);
            assert_eq!(&front[..6], &sender);
            assert_eq!(&front[6..12], &l2[..6]);
            assert_eq!(&front[12..22], &l2[12..], "grown by {grow}");
        }
    }

    fn ones(data: &[u8], mut sum: u32) -> u16 {
        for c in data.chunks(2) {
            sum += u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]));
        }
        while sum > 0xffff {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        sum as u16
    }

    #[test]
    fn icmp4_time_exceeded_is_a_valid_reply() {
        // UDP from 192.168.100.129 to 10.1.0.4 with TTL 1, checksum
        // 0x386c.
        let orig = [
            0x45, 0x00, 0x00, 0x1f, 0x12, 0x34, 0x40, 0x00, 0x01, 0x11, 0x38, 0x6c, 192, 168, 100,
            129, 10, 1, 0, 4,
        ];
        assert_eq!(ones(&orig, 0), 0xffff);
        let mut pkt = [0u8; ICMP4_TE_LEN];
        pkt[28..48].copy_from_slice(&orig);
        pkt[48..56].copy_from_slice(&[0x9c, 0x40, 0x82, 0x9b, 0, 23, 0xab, 0xcd]);
        icmp4_time_exceeded(&mut pkt, [192, 168, 100, 130]);
        assert_eq!(ones(&pkt[..20], 0), 0xffff, "IPv4 header checksum");
        assert_eq!(ones(&pkt[20..], 0), 0xffff, "ICMP checksum");
        assert_eq!(&pkt[12..16], &[192, 168, 100, 130]);
        assert_eq!(&pkt[16..20], &[192, 168, 100, 129]);
        assert_eq!((pkt[20], pkt[21], pkt[9]), (11, 0, 1));
        assert_eq!(&pkt[28..48], &orig, "the expired header is quoted intact");
    }

    #[test]
    fn icmp6_time_exceeded_is_a_valid_reply() {
        let mut pkt = [0u8; ICMP6_TE_LEN];
        let mut orig = [0u8; 40];
        orig[0] = 0x60;
        orig[4..6].copy_from_slice(&23u16.to_be_bytes());
        orig[6] = 17;
        orig[7] = 1;
        orig[8] = 0x20;
        orig[9] = 0x01;
        orig[23] = 0x10; // source 2001::10
        orig[24] = 0x20;
        orig[39] = 4;
        pkt[48..88].copy_from_slice(&orig);
        let mut src = [0u8; 16];
        src[0] = 0x20;
        src[15] = 2;
        icmp6_time_exceeded(&mut pkt, &src);
        let mut pseudo = [0u8; 40];
        pseudo[..32].copy_from_slice(&pkt[8..40]);
        pseudo[32..36].copy_from_slice(&56u32.to_be_bytes());
        pseudo[39] = 58;
        let mut sum = 0u32;
        for c in pseudo.chunks(2).chain(pkt[40..].chunks(2)) {
            sum += u32::from(u16::from_be_bytes([c[0], c[1]]));
        }
        assert_eq!(ones(&[], sum), 0xffff, "ICMPv6 checksum with pseudo-header");
        assert_eq!(&pkt[24..40], &orig[8..24], "sent back to the source");
        assert_eq!((pkt[6], pkt[40], pkt[41]), (58, 3, 0));
    }
}
