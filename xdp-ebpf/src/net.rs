//! Header constants and header arithmetic, free of BPF helpers so they can be
//! unit-tested on the host.

pub const ETH_HDR_LEN: usize = 14;
pub const ETH_P_IPV4: u16 = 0x0800;
pub const ETH_P_ARP: u16 = 0x0806;
pub const IPV4_MIN_HDR_LEN: usize = 20;

/// Decrement the IPv4 TTL and patch the header checksum incrementally
/// (RFC 1624): the 16-bit word holding TTL drops by 0x0100, so the checksum,
/// a one's complement sum, rises by 0x0100 with end-around carry.
#[inline(always)]
pub fn ipv4_decrement_ttl(ip: &mut [u8; IPV4_MIN_HDR_LEN]) {
    ip[8] = ip[8].wrapping_sub(1);
    let mut check = u16::from_be_bytes([ip[10], ip[11]]) as u32 + 0x0100;
    // Fold the carry; 0xFFFF folds to 0 as a freshly computed sum would.
    if check >= 0xFFFF {
        check -= 0xFFFF;
    }
    let check = (check as u16).to_be_bytes();
    ip[10] = check[0];
    ip[11] = check[1];
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full_checksum(ip: &[u8; IPV4_MIN_HDR_LEN]) -> u16 {
        let mut sum = 0u32;
        for i in (0..IPV4_MIN_HDR_LEN).step_by(2) {
            if i != 10 {
                sum += u16::from_be_bytes([ip[i], ip[i + 1]]) as u32;
            }
        }
        while sum > 0xffff {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        !(sum as u16)
    }

    #[test]
    fn ttl_decrement_matches_full_recomputation() {
        // Walk TTLs and enough header variety to hit every carry case,
        // including the 0xFEFF -> 0x0000 fold.
        let mut seed = 0x1234_5678u32;
        for n in 0..200_000u32 {
            seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            let mut ip = [0u8; IPV4_MIN_HDR_LEN];
            ip[0] = 0x45;
            ip[2..4].copy_from_slice(&((seed >> 16) as u16).to_be_bytes());
            ip[4..8].copy_from_slice(&seed.to_be_bytes());
            ip[8] = 2 + (n % 254) as u8;
            ip[9] = 17;
            ip[12..16].copy_from_slice(&seed.rotate_left(7).to_be_bytes());
            ip[16..20].copy_from_slice(&n.to_be_bytes());
            let c = full_checksum(&ip);
            ip[10..12].copy_from_slice(&c.to_be_bytes());
            ipv4_decrement_ttl(&mut ip);
            assert_eq!(
                u16::from_be_bytes([ip[10], ip[11]]),
                full_checksum(&ip),
                "{ip:02x?}"
            );
        }
    }
}
