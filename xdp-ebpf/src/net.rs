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
    let s = u32::from(a) + u32::from(b);
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
    // SAFETY (both): callers pass a pointer they bounds-checked against the
    // packet's end (the verifier insists), two readable bytes.
    #[cfg(target_arch = "bpf")]
    return unsafe { (p as *const u16).read() };
    #[cfg(not(target_arch = "bpf"))]
    // SAFETY: as above.
    return unsafe { (p as *const u16).read_unaligned() };
}

/// The store counterpart of `load16`.
#[inline(always)]
pub fn store16(p: *mut u8, v: u16) {
    #[cfg(target_arch = "bpf")]
    // SAFETY: as for `load16`, two bounds-checked writable bytes.
    unsafe {
        (p as *mut u16).write(v)
    }
    #[cfg(not(target_arch = "bpf"))]
    // SAFETY: as for `load16`, two bounds-checked writable bytes.
    unsafe {
        (p as *mut u16).write_unaligned(v);
    }
}

/// A 32-bit header word as it lies in memory (native order), from two
/// 16-bit loads: behind a 14-byte Ethernet header, IPv4 addresses and ports
/// sit at 2-byte, not 4-byte, alignment.
#[inline(always)]
pub fn load32_halves(p: *const u8) -> u32 {
    let (first, second) = (u32::from(load16(p)), u32::from(load16(p.wrapping_add(2))));
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

/// One's complement sum of the big-endian 16-bit words of `data[from..to]`
/// (an even number of bytes), added to `sum`; `fold16` folds it to 16 bits.
#[inline(always)]
pub fn sum16<const N: usize>(data: &[u8; N], from: usize, to: usize, mut sum: u32) -> u32 {
    let mut i = from;
    while i + 1 < to {
        sum += u32::from(u16::from_be_bytes([data[i], data[i + 1]]));
        i += 2;
    }
    sum
}

#[inline(always)]
pub fn fold16(mut sum: u32) -> u16 {
    sum = (sum & 0xffff) + (sum >> 16);
    sum = (sum & 0xffff) + (sum >> 16);
    sum as u16
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

    #[test]
    fn ones_complement_sums_fold() {
        // RFC 1071, 3: 00 01 f2 03 f4 f5 f6 f7 sums to ddf2.
        let data = [0x00u8, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(fold16(sum16(&data, 0, 8, 0)), 0xddf2);
        assert_eq!(
            fold16(sum16(&data, 2, 8, 0x0001)),
            0xddf2,
            "a sum carried in"
        );
        assert_eq!(csum_add(0xffff, 0x0001), 0x0001, "end-around carry");
    }
}
