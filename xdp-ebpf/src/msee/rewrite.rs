//! Rewrite: what forwarding changes in a frame. At L3 the TTL or hop limit
//! (and the IPv4 checksum, incrementally) and the DSCP, per the ingress
//! peering's policy; at L2 the VLAN tags the egress link needs, and the
//! MACs.

use msee_abi::{ETH_P_8021Q, Link, MseeConfig, PEERING_KINDS};

use crate::net::{
    ETH_HDR_LEN, IPV4_MIN_HDR_LEN, IPV6_HDR_LEN, VLAN_HDR_LEN, csum_add, csum_replace, load16,
    mac_words, set_mac_words, store16,
};

// The DSCP policy row is found by masking the peering.
const _: () = assert!(PEERING_KINDS.is_power_of_two());

/// The DSCP policy of a peering: the DSCP a packet leaves with, by the one
/// it came with. The peering is a `PeeringKind` (0 or 1, as userspace
/// writes it).
#[inline(always)]
pub fn dscp_policy(config: &MseeConfig, peering: u8) -> &[u8; 64] {
    &config.dscp[peering as usize & (PEERING_KINDS - 1)]
}

/// Forward an IPv4 header: TTL down by one (the caller has checked it is
/// above 1), DSCP per `policy`.
#[inline(always)]
pub fn forward_ipv4(ip: &mut [u8; IPV4_MIN_HDR_LEN], policy: &[u8; 64]) {
    ipv4_decrement_ttl(ip);
    let dscp = ip[1] >> 2;
    let new_dscp = policy[dscp as usize & 63];
    if new_dscp != dscp {
        ipv4_set_dscp(ip, new_dscp);
    }
}

/// Forward an IPv6 header: hop limit down by one (the caller has checked it
/// is above 1), DSCP per `policy`.
#[inline(always)]
pub fn forward_ipv6(ip: &mut [u8; IPV6_HDR_LEN], policy: &[u8; 64]) {
    ip[7] -= 1;
    let dscp = ipv6_dscp(ip);
    let new_dscp = policy[dscp as usize & 63];
    if new_dscp != dscp {
        ipv6_set_dscp(ip, new_dscp);
    }
}

/// Decrement the IPv4 TTL and patch the header checksum incrementally
/// (RFC 1624, eqn. 3, HC' = ~(~HC + ~m + m')): the word m = (TTL, protocol)
/// drops by 0x0100, so ~m + m' is always 0xfeff and one one's complement
/// addition is left. One's complement sums do not depend on byte order
/// (RFC 1071, 2.B), so both words are worked on as they lie in memory: two
/// 16-bit loads and stores instead of six byte accesses and swaps. The
/// caller guarantees TTL > 1, so the decrement never borrows from the
/// protocol byte.
#[inline(always)]
pub fn ipv4_decrement_ttl(ip: &mut [u8; IPV4_MIN_HDR_LEN]) {
    let p = ip.as_mut_ptr();
    let ttl_proto = load16(p.wrapping_add(8));
    store16(
        p.wrapping_add(8),
        ttl_proto.wrapping_sub(u16::from_ne_bytes([1, 0])),
    );
    let patch = u16::from_ne_bytes(0xfeffu16.to_be_bytes());
    let check = !csum_add(!load16(p.wrapping_add(10)), patch);
    store16(p.wrapping_add(10), check);
}

/// Set the IPv4 DSCP (keeping ECN) and patch the header checksum.
#[inline(always)]
pub fn ipv4_set_dscp(ip: &mut [u8; IPV4_MIN_HDR_LEN], dscp: u8) {
    let old = u16::from_be_bytes([ip[0], ip[1]]);
    ip[1] = (dscp << 2) | (ip[1] & 0x03);
    let new = u16::from_be_bytes([ip[0], ip[1]]);
    let check = csum_replace(u16::from_be_bytes([ip[10], ip[11]]), old, new);
    ip[10..12].copy_from_slice(&check.to_be_bytes());
}

/// The DSCP of an IPv6 header (traffic class bits 4..9 of the first word).
#[inline(always)]
pub fn ipv6_dscp(ip: &[u8; IPV6_HDR_LEN]) -> u8 {
    let tc = ((ip[0] & 0x0f) << 4) | (ip[1] >> 4);
    tc >> 2
}

/// Set the IPv6 DSCP, keeping version, ECN and flow label.
#[inline(always)]
pub fn ipv6_set_dscp(ip: &mut [u8; IPV6_HDR_LEN], dscp: u8) {
    let ecn = (ip[1] >> 4) & 0x03;
    let tc = (dscp << 2) | ecn;
    ip[0] = (ip[0] & 0xf0) | (tc >> 4);
    ip[1] = (ip[1] & 0x0f) | (tc << 4);
}

/// How many VLAN tags a frame leaves by `out` with: none, the outer tag, or
/// the outer and an inner 802.1Q.
#[inline(always)]
pub fn egress_tags(out: &Link) -> usize {
    if out.outer_vlan == 0 {
        0
    } else if out.inner_vlan == 0 {
        1
    } else {
        2
    }
}

/// Write the L2 header of a frame leaving by `out` with `tags_out` tags
/// (`egress_tags`) into its first 22 bytes, once its head has moved by the
/// difference from the `tags_in` it came with: MACs, then the tags and the
/// payload's `ethertype`.
#[inline(always)]
pub fn write_l2(
    l2: &mut [u8; ETH_HDR_LEN + 2 * VLAN_HDR_LEN],
    out: &Link,
    tags_in: usize,
    tags_out: usize,
    ethertype: u16,
) {
    set_mac_words(l2.as_mut_ptr(), mac_words(out.dst_mac.as_ptr()));
    set_mac_words(l2[6..].as_mut_ptr(), mac_words(out.src_mac.as_ptr()));
    match tags_out {
        // Untagged in and out: the EtherType is where it was.
        0 if tags_in == 0 => {}
        0 => l2[12..14].copy_from_slice(&ethertype.to_be_bytes()),
        1 => {
            l2[12..14].copy_from_slice(&out.outer_tpid.to_be_bytes());
            l2[14..16].copy_from_slice(&out.outer_vlan.to_be_bytes());
            l2[16..18].copy_from_slice(&ethertype.to_be_bytes());
        }
        _ => {
            l2[12..14].copy_from_slice(&out.outer_tpid.to_be_bytes());
            l2[14..16].copy_from_slice(&out.outer_vlan.to_be_bytes());
            l2[16..18].copy_from_slice(&ETH_P_8021Q.to_be_bytes());
            l2[18..20].copy_from_slice(&out.inner_vlan.to_be_bytes());
            l2[20..22].copy_from_slice(&ethertype.to_be_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use msee_abi::PeeringKind;

    use super::*;

    /// The DSCP rows userspace writes into `MseeConfig::dscp`.
    fn policies() -> [(PeeringKind, [u8; 64]); 2] {
        [PeeringKind::Private, PeeringKind::Microsoft]
            .map(|p| (p, core::array::from_fn(|d| p.rewrite_dscp(d as u8))))
    }

    #[test]
    fn ipv4_forwarding_takes_a_hop_and_applies_the_peerings_dscp() {
        let mut seed = 0x0bad_cafe;
        for (peering, policy) in policies() {
            for dscp in 0..64u8 {
                let mut ip = random_header(&mut seed, u32::from(dscp));
                ip[1] = dscp << 2 | (dscp & 3);
                let c = full_checksum(&ip);
                ip[10..12].copy_from_slice(&c.to_be_bytes());
                let before = ip;
                forward_ipv4(&mut ip, &policy);
                assert_eq!(ip[8], before[8] - 1, "TTL");
                assert_eq!(ip[1] >> 2, peering.rewrite_dscp(dscp), "{peering:?} {dscp}");
                assert_eq!(ip[1] & 3, dscp & 3, "ECN kept");
                assert_checksum(&ip);
                assert_eq!(ip[12..], before[12..], "addresses kept");
            }
        }
        // Microsoft peering keeps EF; private peering clears it.
        let [(_, private), (_, microsoft)] = policies();
        let mut ip = random_header(&mut seed, 1);
        ip[1] = 46 << 2;
        let c = full_checksum(&ip);
        ip[10..12].copy_from_slice(&c.to_be_bytes());
        let mut kept = ip;
        forward_ipv4(&mut kept, &microsoft);
        assert_eq!(kept[1], 46 << 2);
        forward_ipv4(&mut ip, &private);
        assert_eq!(ip[1], 0);
        assert_checksum(&ip);
    }

    #[test]
    fn ipv6_forwarding_takes_a_hop_and_applies_the_peerings_dscp() {
        for (peering, policy) in policies() {
            for dscp in 0..64u8 {
                let mut ip = [0u8; IPV6_HDR_LEN];
                ip[..4].copy_from_slice(&[0x60, 0x01, 0x23, 0x45]);
                ipv6_set_dscp(&mut ip, dscp);
                ip[1] |= 0x20; // ECN 10
                ip[7] = 64;
                ip[8] = 0x20;
                let before = ip;
                forward_ipv6(&mut ip, &policy);
                assert_eq!(ip[7], 63, "hop limit");
                assert_eq!(
                    ipv6_dscp(&ip),
                    peering.rewrite_dscp(dscp),
                    "{peering:?} {dscp}"
                );
                assert_eq!((ip[1] >> 4) & 3, 0b10, "ECN kept");
                assert_eq!((ip[0] >> 4, ip[1] & 0x0f), (6, 1), "version, flow label");
                assert_eq!(ip[2..7], before[2..7]);
                assert_eq!(ip[8..], before[8..]);
            }
        }
    }

    #[test]
    fn the_peering_selects_its_policy_row() {
        let mut config = MseeConfig {
            route_epoch: 0,
            dscp: [[1; 64], [2; 64]],
            link_up: [0; msee_abi::MAX_LINKS as usize],
            _pad: [0; 56],
            links: [Default::default(); msee_abi::MAX_LINKS as usize],
            policers: [Default::default(); 2 * msee_abi::MAX_LINKS as usize],
        };
        assert_eq!(dscp_policy(&config, PeeringKind::Private as u8)[0], 1);
        assert_eq!(dscp_policy(&config, PeeringKind::Microsoft as u8)[0], 2);
        config.dscp[0][5] = 9;
        assert_eq!(dscp_policy(&config, 2)[5], 9, "masked into the table");
    }

    const DST: [u8; 6] = [0x02, 0xaa, 0, 0, 0, 0x01];
    const SRC: [u8; 6] = [0x02, 0xbb, 0, 0, 0, 0x02];

    fn link(outer_tpid: u16, outer_vlan: u16, inner_vlan: u16) -> Link {
        Link {
            ifindex: 4,
            outer_vlan,
            inner_vlan,
            outer_tpid,
            src_mac: SRC,
            dst_mac: DST,
            ..Link::default()
        }
    }

    /// Rewrite a frame that came in with `tags_in` tags as `msee` does:
    /// move its head by the difference in tags, write the L2 header. Returns
    /// the frame from its new head.
    fn forward(frame: &[u8], tags_in: usize, out: &Link, ethertype: u16) -> ([u8; 64], usize) {
        let tags_out = egress_tags(out);
        // Room in front, as XDP has (headroom).
        let mut buf = [0u8; 64];
        buf[8..8 + frame.len()].copy_from_slice(frame);
        let head = 8 + tags_in * VLAN_HDR_LEN - tags_out * VLAN_HDR_LEN;
        let l2: &mut [u8; 22] = (&mut buf[head..head + 22]).try_into().unwrap();
        write_l2(l2, out, tags_in, tags_out, ethertype);
        let mut out = [0u8; 64];
        let len = frame.len() + tags_out * VLAN_HDR_LEN - tags_in * VLAN_HDR_LEN;
        out[..len].copy_from_slice(&buf[head..head + len]);
        (out, len)
    }

    /// MACs `dst` and `src`, then `tags` and an IPv4 EtherType and header
    /// start.
    fn frame(dst: [u8; 6], src: [u8; 6], tags: &[u8]) -> ([u8; 64], usize) {
        let mut f = [0u8; 64];
        f[..6].copy_from_slice(&dst);
        f[6..12].copy_from_slice(&src);
        let rest = [0x08, 0x00, 0x45, 0, 0, 20, 1, 2, 3, 4];
        let at = 12 + tags.len();
        f[12..at].copy_from_slice(tags);
        f[at..at + rest.len()].copy_from_slice(&rest);
        (f, at + rest.len())
    }

    #[test]
    fn frames_leave_with_the_egress_links_tags_and_macs() {
        let (ours, theirs) = ([0x02, 0xdd, 0, 0, 0, 4], [0x02, 0xcc, 0, 0, 0, 3]);
        let untagged = frame(ours, theirs, &[]);
        let one = frame(ours, theirs, &[0x81, 0x00, 0, 100]);
        let two = frame(ours, theirs, &[0x88, 0xa8, 0x01, 0x2c, 0x81, 0x00, 0, 100]);
        let untagged_out = frame(DST, SRC, &[]);
        let q_out = frame(DST, SRC, &[0x81, 0x00, 0, 200]);
        let ad_out = frame(DST, SRC, &[0x88, 0xa8, 0, 200]);
        let qinq_out = frame(DST, SRC, &[0x88, 0xa8, 0, 200, 0x81, 0x00, 0x01, 0x2c]);
        let cases = [
            (
                "untagged to untagged",
                untagged,
                0,
                link(0, 0, 0),
                untagged_out,
            ),
            ("802.1Q to untagged", one, 1, link(0, 0, 0), untagged_out),
            ("QinQ to untagged", two, 2, link(0, 0, 0), untagged_out),
            (
                "untagged to 802.1Q",
                untagged,
                0,
                link(0x8100, 200, 0),
                q_out,
            ),
            ("QinQ to 802.1ad", two, 2, link(0x88a8, 200, 0), ad_out),
            (
                "untagged to QinQ",
                untagged,
                0,
                link(0x88a8, 200, 300),
                qinq_out,
            ),
            ("802.1Q to QinQ", one, 1, link(0x88a8, 200, 300), qinq_out),
        ];
        for (name, (f, len), tags_in, out, (want, want_len)) in cases {
            let (got, got_len) = forward(&f[..len], tags_in, &out, 0x0800);
            assert_eq!(&got[..got_len], &want[..want_len], "{name}");
        }
        assert_eq!(
            [link(0, 0, 0), link(0x8100, 7, 0), link(0x88a8, 7, 8)].map(|l| egress_tags(&l)),
            [0, 1, 2]
        );
    }

    #[test]
    fn an_untagged_frame_leaving_untagged_keeps_its_ethertype_bytes() {
        // Not rewritten: whatever lies there stays (an IPv6 frame's here).
        let mut l2 = [0xee; 22];
        l2[12..14].copy_from_slice(&[0x86, 0xdd]);
        write_l2(&mut l2, &link(0, 0, 0), 0, 0, 0x0800);
        assert_eq!(&l2[..12], &[DST, SRC].concat()[..]);
        assert_eq!(
            &l2[12..],
            &[0x86, 0xdd, 0xee, 0xee, 0xee, 0xee, 0xee, 0xee, 0xee, 0xee]
        );
    }

    fn full_checksum(ip: &[u8; IPV4_MIN_HDR_LEN]) -> u16 {
        let mut sum = 0u32;
        for i in (0..IPV4_MIN_HDR_LEN).step_by(2) {
            if i != 10 {
                sum += u32::from(u16::from_be_bytes([ip[i], ip[i + 1]]));
            }
        }
        while sum > 0xffff {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        !(sum as u16)
    }

    fn random_header(seed: &mut u32, n: u32) -> [u8; IPV4_MIN_HDR_LEN] {
        *seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        let mut ip = [0u8; IPV4_MIN_HDR_LEN];
        ip[0] = 0x45;
        ip[1] = (*seed >> 3) as u8;
        ip[2..4].copy_from_slice(&((*seed >> 16) as u16).to_be_bytes());
        ip[4..8].copy_from_slice(&seed.to_be_bytes());
        ip[8] = 2 + (n % 254) as u8;
        ip[9] = 17;
        ip[12..16].copy_from_slice(&seed.rotate_left(7).to_be_bytes());
        ip[16..20].copy_from_slice(&n.to_be_bytes());
        let c = full_checksum(&ip);
        ip[10..12].copy_from_slice(&c.to_be_bytes());
        ip
    }

    /// Checksums are equal as one's complement numbers (0x0000 == 0xffff only
    /// for all-zero data, which an IPv4 header never is).
    fn assert_checksum(ip: &[u8; IPV4_MIN_HDR_LEN]) {
        assert_eq!(
            u16::from_be_bytes([ip[10], ip[11]]),
            full_checksum(ip),
            "{ip:02x?}"
        );
    }

    #[test]
    fn ttl_decrement_matches_full_recomputation() {
        let mut seed = 0x1234_5678u32;
        for n in 0..200_000u32 {
            let mut ip = random_header(&mut seed, n);
            let before = ip;
            ipv4_decrement_ttl(&mut ip);
            assert_eq!(ip[8], before[8] - 1, "TTL decremented");
            assert_eq!(ip[9], before[9], "protocol kept");
            assert_checksum(&ip);
        }
    }

    #[test]
    fn dscp_rewrite_matches_full_recomputation() {
        let mut seed = 0x8765_4321u32;
        for n in 0..100_000u32 {
            let mut ip = random_header(&mut seed, n);
            let ecn = ip[1] & 3;
            let dscp = (n % 64) as u8;
            ipv4_set_dscp(&mut ip, dscp);
            assert_eq!(ip[1] >> 2, dscp);
            assert_eq!(ip[1] & 3, ecn, "ECN kept");
            assert_checksum(&ip);
        }
    }

    #[test]
    fn ipv6_dscp_keeps_version_ecn_and_flow_label() {
        let mut ip = [0u8; IPV6_HDR_LEN];
        ip[0] = 0x6b; // version 6, TC high nibble 0xb
        ip[1] = 0x9a; // TC low nibble 0x9 (ECN 01), flow label 0xa....
        ip[2] = 0xbc;
        ip[3] = 0xde;
        assert_eq!(ipv6_dscp(&ip), 0xb9 >> 2);
        ipv6_set_dscp(&mut ip, 46);
        assert_eq!(ipv6_dscp(&ip), 46);
        assert_eq!(ip[0] >> 4, 6);
        assert_eq!((((ip[0] & 0x0f) << 4) | (ip[1] >> 4)) & 3, 0b01);
        assert_eq!(ip[1] & 0x0f, 0x0a);
        assert_eq!(&ip[2..4], &[0xbc, 0xde]);
    }
}
