//! Build and check Ethernet (+VLAN) / IPv4 or IPv6 / UDP frames,
//! independently of the code under test.
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

pub const ETH_LEN: usize = 14;
pub const VLAN_LEN: usize = 4;
pub const IPV4_LEN: usize = 20;
pub const IPV6_LEN: usize = 40;
pub const UDP_LEN: usize = 8;

/// One's complement sum of 16-bit big-endian words (odd byte padded).
pub fn ones_sum(data: &[u8], mut sum: u32) -> u32 {
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        sum += u32::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [last] = chunks.remainder() {
        sum += u32::from(*last) << 8;
    }
    sum
}

pub fn fold(mut sum: u32) -> u16 {
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum as u16
}

/// A VLAN tag: TPID (0x8100 or 0x88a8) and VLAN id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tag {
    pub tpid: u16,
    pub vid: u16,
}

pub const fn dot1q(vid: u16) -> Tag {
    Tag { tpid: 0x8100, vid }
}
pub const fn dot1ad(vid: u16) -> Tag {
    Tag { tpid: 0x88a8, vid }
}

#[derive(Clone, Debug)]
pub struct UdpFrame {
    pub dst_mac: [u8; 6],
    pub src_mac: [u8; 6],
    pub tags: Vec<Tag>,
    pub src: IpAddr,
    pub dst: IpAddr,
    /// TTL or hop limit.
    pub ttl: u8,
    pub dscp: u8,
    pub sport: u16,
    pub dport: u16,
    /// IPv6 only: raw extension headers placed before UDP, as (next header
    /// value of this header, bytes). Each entry's first byte is overwritten
    /// with the following header's number.
    pub ext: Vec<(u8, Vec<u8>)>,
    pub payload: Vec<u8>,
}

impl UdpFrame {
    pub fn v4(src: Ipv4Addr, dst: Ipv4Addr) -> Self {
        Self::new(IpAddr::V4(src), IpAddr::V4(dst))
    }
    pub fn v6(src: Ipv6Addr, dst: Ipv6Addr) -> Self {
        Self::new(IpAddr::V6(src), IpAddr::V6(dst))
    }
    fn new(src: IpAddr, dst: IpAddr) -> Self {
        Self {
            dst_mac: [0x02, 0, 0, 0, 0, 0x0a],
            src_mac: [0x02, 0, 0, 0, 0, 0x0c],
            tags: Vec::new(),
            src,
            dst,
            ttl: 64,
            dscp: 0,
            sport: 40000,
            dport: 5001,
            ext: Vec::new(),
            payload: b"fixture payload".to_vec(),
        }
    }

    pub fn build(&self) -> Vec<u8> {
        let mut f = Vec::new();
        f.extend_from_slice(&self.dst_mac);
        f.extend_from_slice(&self.src_mac);
        for t in &self.tags {
            f.extend_from_slice(&t.tpid.to_be_bytes());
            f.extend_from_slice(&t.vid.to_be_bytes());
        }
        let mut udp = Vec::new();
        udp.extend_from_slice(&self.sport.to_be_bytes());
        udp.extend_from_slice(&self.dport.to_be_bytes());
        udp.extend_from_slice(&((UDP_LEN + self.payload.len()) as u16).to_be_bytes());
        udp.extend_from_slice(&[0, 0]);
        udp.extend_from_slice(&self.payload);
        let c = l4_checksum(self.src, self.dst, &udp);
        udp[6..8].copy_from_slice(&c.to_be_bytes());
        match (self.src, self.dst) {
            (IpAddr::V4(src), IpAddr::V4(dst)) => {
                f.extend_from_slice(&0x0800u16.to_be_bytes());
                let mut ip = [0u8; IPV4_LEN];
                ip[0] = 0x45;
                ip[1] = self.dscp << 2;
                ip[2..4].copy_from_slice(&((IPV4_LEN + udp.len()) as u16).to_be_bytes());
                ip[6] = 0x40; // DF
                ip[8] = self.ttl;
                ip[9] = 17;
                ip[12..16].copy_from_slice(&src.octets());
                ip[16..20].copy_from_slice(&dst.octets());
                let c = !fold(ones_sum(&ip, 0));
                ip[10..12].copy_from_slice(&c.to_be_bytes());
                f.extend_from_slice(&ip);
            }
            (IpAddr::V6(src), IpAddr::V6(dst)) => {
                f.extend_from_slice(&0x86ddu16.to_be_bytes());
                let mut ext = Vec::new();
                let mut first_next = 17u8;
                for (i, (kind, bytes)) in self.ext.iter().enumerate() {
                    if i == 0 {
                        first_next = *kind;
                    }
                    let mut b = bytes.clone();
                    b[0] = self.ext.get(i + 1).map_or(17, |(k, _)| *k);
                    ext.extend_from_slice(&b);
                }
                let mut ip = [0u8; IPV6_LEN];
                let tc = self.dscp << 2;
                ip[0] = 0x60 | (tc >> 4);
                ip[1] = tc << 4;
                ip[4..6].copy_from_slice(&((ext.len() + udp.len()) as u16).to_be_bytes());
                ip[6] = first_next;
                ip[7] = self.ttl;
                ip[8..24].copy_from_slice(&src.octets());
                ip[24..40].copy_from_slice(&dst.octets());
                f.extend_from_slice(&ip);
                f.extend_from_slice(&ext);
            }
            _ => panic!("mixed address families"),
        }
        f.extend_from_slice(&udp);
        f
    }
}

fn l4_checksum(src: IpAddr, dst: IpAddr, udp: &[u8]) -> u16 {
    let mut pseudo = Vec::new();
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            pseudo.extend_from_slice(&s.octets());
            pseudo.extend_from_slice(&d.octets());
            pseudo.extend_from_slice(&[0, 17]);
            pseudo.extend_from_slice(&(udp.len() as u16).to_be_bytes());
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            pseudo.extend_from_slice(&s.octets());
            pseudo.extend_from_slice(&d.octets());
            pseudo.extend_from_slice(&(udp.len() as u32).to_be_bytes());
            pseudo.extend_from_slice(&[0, 0, 0, 17]);
        }
        _ => panic!("mixed address families"),
    }
    let c = !fold(ones_sum(udp, ones_sum(&pseudo, 0)));
    if c == 0 { 0xffff } else { c }
}

/// What a received frame says about itself, after checking every checksum.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParsedUdp {
    pub dst_mac: [u8; 6],
    pub src_mac: [u8; 6],
    pub tags: Vec<Tag>,
    pub src: IpAddr,
    pub dst: IpAddr,
    pub ttl: u8,
    pub dscp: u8,
    /// Always true for IPv6 (no header checksum).
    pub ipv4_checksum_ok: bool,
    pub udp_checksum_ok: bool,
    pub sport: u16,
    pub dport: u16,
    pub payload: Vec<u8>,
}

/// Parse an Ethernet (+ up to two tags) / IP / UDP frame; `None` if it is not
/// one. IPv6 extension headers are not followed (UDP must come first).
pub fn parse_udp(frame: &[u8]) -> Option<ParsedUdp> {
    let mut off = 12;
    let mut tags = Vec::new();
    let mut ethertype = u16::from_be_bytes([*frame.get(12)?, *frame.get(13)?]);
    while (ethertype == 0x8100 || ethertype == 0x88a8) && tags.len() < 2 {
        let vid = u16::from_be_bytes([*frame.get(off + 2)?, *frame.get(off + 3)?]) & 0x0fff;
        tags.push(Tag {
            tpid: ethertype,
            vid,
        });
        off += 4;
        ethertype = u16::from_be_bytes([*frame.get(off)?, *frame.get(off + 1)?]);
    }
    let ip = frame.get(off + 2..)?;
    let (src, dst, ttl, dscp, ipv4_checksum_ok, l4) = match ethertype {
        0x0800 => {
            if ip.len() < IPV4_LEN {
                return None;
            }
            let ihl = ((ip[0] & 0x0f) as usize) * 4;
            let total = u16::from_be_bytes([ip[2], ip[3]]) as usize;
            if ip[0] >> 4 != 4
                || ip[9] != 17
                || ihl < IPV4_LEN
                || total > ip.len()
                || total < ihl + UDP_LEN
            {
                return None;
            }
            let ok = fold(ones_sum(&ip[..ihl], 0)) == 0xffff;
            let src = IpAddr::V4(Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]));
            let dst = IpAddr::V4(Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]));
            (src, dst, ip[8], ip[1] >> 2, ok, &ip[ihl..total])
        }
        0x86dd => {
            if ip.len() < IPV6_LEN || ip[0] >> 4 != 6 || ip[6] != 17 {
                return None;
            }
            let plen = u16::from_be_bytes([ip[4], ip[5]]) as usize;
            let l4 = ip.get(IPV6_LEN..IPV6_LEN + plen)?;
            let src = IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(&ip[8..24]).ok()?));
            let dst = IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(&ip[24..40]).ok()?));
            let tc = ((ip[0] & 0x0f) << 4) | (ip[1] >> 4);
            (src, dst, ip[7], tc >> 2, true, l4)
        }
        _ => return None,
    };
    if l4.len() < UDP_LEN || u16::from_be_bytes([l4[4], l4[5]]) as usize != l4.len() {
        return None;
    }
    let mut pseudo = Vec::new();
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            pseudo.extend_from_slice(&s.octets());
            pseudo.extend_from_slice(&d.octets());
            pseudo.extend_from_slice(&[0, 17]);
            pseudo.extend_from_slice(&(l4.len() as u16).to_be_bytes());
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            pseudo.extend_from_slice(&s.octets());
            pseudo.extend_from_slice(&d.octets());
            pseudo.extend_from_slice(&(l4.len() as u32).to_be_bytes());
            pseudo.extend_from_slice(&[0, 0, 0, 17]);
        }
        _ => return None,
    }
    let udp_checksum_ok = fold(ones_sum(l4, ones_sum(&pseudo, 0))) == 0xffff;
    Some(ParsedUdp {
        dst_mac: frame[0..6].try_into().ok()?,
        src_mac: frame[6..12].try_into().ok()?,
        tags,
        src,
        dst,
        ttl,
        dscp,
        ipv4_checksum_ok,
        udp_checksum_ok,
        sport: u16::from_be_bytes([l4[0], l4[1]]),
        dport: u16::from_be_bytes([l4[2], l4[3]]),
        payload: l4[UDP_LEN..].to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_frames_check_out() {
        let mut f = UdpFrame::v4(
            Ipv4Addr::new(192, 168, 100, 129),
            Ipv4Addr::new(10, 1, 0, 4),
        );
        f.tags = vec![dot1ad(200), dot1q(10)];
        f.dscp = 46;
        let p = parse_udp(&f.build()).unwrap();
        assert!(p.ipv4_checksum_ok && p.udp_checksum_ok);
        assert_eq!((p.ttl, p.dscp), (64, 46));
        assert_eq!(p.tags, vec![dot1ad(200), dot1q(10)]);
        assert_eq!(p.payload, b"fixture payload");
        let mut bad = f.build();
        bad[ETH_LEN + 2 * VLAN_LEN + 8] = 63; // TTL changed without fixing the checksum
        assert!(!parse_udp(&bad).unwrap().ipv4_checksum_ok);

        let mut f6 = UdpFrame::v6(
            "2001:db8::1".parse().unwrap(),
            "2001:db8:1::4".parse().unwrap(),
        );
        f6.dscp = 34;
        let p = parse_udp(&f6.build()).unwrap();
        assert!(p.udp_checksum_ok);
        assert_eq!((p.ttl, p.dscp), (64, 34));
        let mut bad = f6.build();
        *bad.last_mut().unwrap() ^= 1;
        assert!(!parse_udp(&bad).unwrap().udp_checksum_ok);
    }
}
