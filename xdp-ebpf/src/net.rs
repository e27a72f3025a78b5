//! Header constants and header arithmetic, free of BPF helpers so they can be
//! unit-tested on the host.

pub const ETH_HDR_LEN: usize = 14;
pub const VLAN_HDR_LEN: usize = 4;
pub const ETH_P_IPV4: u16 = 0x0800;
pub const ETH_P_IPV6: u16 = 0x86dd;
pub const IPV4_MIN_HDR_LEN: usize = 20;
pub const IPV6_HDR_LEN: usize = 40;
pub const IPPROTO_TCP: u8 = 6;
pub const IPPROTO_UDP: u8 = 17;

/// One's complement add with end-around carry, the building block of
/// incremental checksum updates (RFC 1624).
#[inline(always)]
pub fn csum_add(a: u16, b: u16) -> u16 {
    let s = a as u32 + b as u32;
    ((s & 0xffff) + (s >> 16)) as u16
}

/// Patch an Internet checksum for one 16-bit word changing from `old` to
/// `new`: HC' = ~(~HC + ~m + m') (RFC 1624, eqn. 3).
#[inline(always)]
pub fn csum_replace(check: u16, old: u16, new: u16) -> u16 {
    !csum_add(csum_add(!check, !old), new)
}

/// A 16-bit header word as it lies in memory (native byte order). On BPF
/// one aligned access: LLVM's BPF target splits any access it cannot assume
/// aligned into single bytes, and header words sit at even addresses
/// (packet data starts even and msee moves it by whole tags; were one ever
/// odd, x86 still does the access and the verifier allows it). On the host
/// (tests) an unaligned read.
#[inline(always)]
pub fn load16(p: *const u8) -> u16 {
    #[cfg(target_arch = "bpf")]
    return unsafe { (p as *const u16).read() };
    #[cfg(not(target_arch = "bpf"))]
    return unsafe { (p as *const u16).read_unaligned() };
}

/// The store counterpart of `load16`.
#[inline(always)]
pub fn store16(p: *mut u8, v: u16) {
    #[cfg(target_arch = "bpf")]
    unsafe {
        (p as *mut u16).write(v)
    }
    #[cfg(not(target_arch = "bpf"))]
    unsafe {
        (p as *mut u16).write_unaligned(v)
    }
}

/// A 32-bit header word as it lies in memory (native order), from two
/// 16-bit loads: behind a 14-byte Ethernet header, IPv4 addresses and ports
/// sit at 2-byte, not 4-byte, alignment.
#[inline(always)]
pub fn load32_halves(p: *const u8) -> u32 {
    let (first, second) = (load16(p) as u32, load16(p.wrapping_add(2)) as u32);
    if cfg!(target_endian = "little") {
        first | second << 16
    } else {
        first << 16 | second
    }
}

/// The big-endian 16-bit field at `b[i..i + 2]`, as one load (`load16`):
/// header fields sit at even offsets.
#[inline(always)]
pub fn be16(b: &[u8], i: usize) -> u16 {
    let _ = &b[i..i + 2];
    u16::from_be(load16(b.as_ptr().wrapping_add(i)))
}

/// A MAC address as three 16-bit words (`load16`: one access per word
/// instead of one per byte); the MACs in map values are at even offsets.
#[inline(always)]
pub fn mac_words(p: *const u8) -> [u16; 3] {
    [
        load16(p),
        load16(p.wrapping_add(2)),
        load16(p.wrapping_add(4)),
    ]
}

/// Whether two MACs are equal, as three 16-bit compares folded into one
/// test (comparing the arrays whole makes LLVM assemble a 48-bit integer).
#[inline(always)]
pub fn mac_eq(a: *const u8, b: *const u8) -> bool {
    let (x, y) = (mac_words(a), mac_words(b));
    ((x[0] ^ y[0]) | (x[1] ^ y[1]) | (x[2] ^ y[2])) == 0
}

#[inline(always)]
pub fn set_mac_words(p: *mut u8, mac: [u16; 3]) {
    store16(p, mac[0]);
    store16(p.wrapping_add(2), mac[1]);
    store16(p.wrapping_add(4), mac[2]);
}

/// ICMP time exceeded for IPv4: new IP header (20) + ICMP header (8) +
/// quote of the expired packet's header and first 8 bytes (20 + 8).
pub const ICMP4_TE_LEN: usize = 56;
/// ICMPv6 time exceeded: IPv6 header (40) + ICMPv6 header (8) + quote (40 + 8).
pub const ICMP6_TE_LEN: usize = 96;
pub const ICMP4_QUOTE: usize = 28;
pub const ICMP6_QUOTE: usize = 48;

/// One's complement sum of the big-endian 16-bit words of `data` (even length).
#[inline(always)]
fn sum16<const N: usize>(data: &[u8; N], from: usize, to: usize, mut sum: u32) -> u32 {
    let mut i = from;
    while i + 1 < to {
        sum += u16::from_be_bytes([data[i], data[i + 1]]) as u32;
        i += 2;
    }
    sum
}

#[inline(always)]
fn fold16(mut sum: u32) -> u16 {
    sum = (sum & 0xffff) + (sum >> 16);
    sum = (sum & 0xffff) + (sum >> 16);
    sum as u16
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
    sum += payload as u32 + 58;
    let c = !fold16(sum16(pkt, 40, ICMP6_TE_LEN, sum));
    pkt[42..44].copy_from_slice(&c.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn word_loads_read_memory_order() {
        let bytes = [0x12u8, 0x34, 0x56, 0x78, 0x9a, 0xbc];
        for off in [0, 2] {
            let p = bytes[off..].as_ptr();
            assert_eq!(
                load32_halves(p),
                u32::from_ne_bytes(bytes[off..off + 4].try_into().unwrap())
            );
            assert_eq!(load16(p), u16::from_ne_bytes([bytes[off], bytes[off + 1]]));
        }
        let mut out = [0u8; 2];
        store16(out.as_mut_ptr(), u16::from_ne_bytes([0xab, 0xcd]));
        assert_eq!(out, [0xab, 0xcd]);
    }

    #[test]
    fn header_fields_and_macs() {
        let b = [0x12u8, 0x34, 0x81, 0x00];
        assert_eq!(be16(&b, 0), 0x1234);
        assert_eq!(be16(&b, 2), 0x8100);
        let a = [0x02u8, 0, 0, 0, 0, 0x01];
        assert!(mac_eq(a.as_ptr(), [0x02, 0, 0, 0, 0, 0x01].as_ptr()));
        // A difference in any one of the three words.
        for i in [0, 3, 5] {
            let mut b = a;
            b[i] ^= 0x80;
            assert!(!mac_eq(a.as_ptr(), b.as_ptr()), "byte {i} differs");
        }
        let mut out = [0u8; 8];
        set_mac_words(out[1..].as_mut_ptr(), mac_words(a.as_ptr()));
        assert_eq!(out, [0, 0x02, 0, 0, 0, 0, 0x01, 0]);
    }

    fn ones(data: &[u8], mut sum: u32) -> u16 {
        for c in data.chunks(2) {
            sum += u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]) as u32;
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
            sum += u16::from_be_bytes([c[0], c[1]]) as u32;
        }
        assert_eq!(ones(&[], sum), 0xffff, "ICMPv6 checksum with pseudo-header");
        assert_eq!(&pkt[24..40], &orig[8..24], "sent back to the source");
        assert_eq!((pkt[6], pkt[40], pkt[41]), (58, 3, 0));
    }
}
