//! Build and check Ethernet/IPv4/UDP frames, independently of the code under test.
use std::net::Ipv4Addr;

pub const ETH_LEN: usize = 14;
pub const IPV4_LEN: usize = 20;
pub const UDP_LEN: usize = 8;

/// One's complement sum of 16-bit big-endian words (odd byte padded).
pub fn ones_sum(data: &[u8], mut sum: u32) -> u32 {
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        sum += u16::from_be_bytes([c[0], c[1]]) as u32;
    }
    if let [last] = chunks.remainder() {
        sum += (*last as u32) << 8;
    }
    sum
}

pub fn fold(mut sum: u32) -> u16 {
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum as u16
}

#[derive(Clone, Debug)]
pub struct UdpFrame {
    pub dst_mac: [u8; 6],
    pub src_mac: [u8; 6],
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub ttl: u8,
    pub sport: u16,
    pub dport: u16,
    pub payload: Vec<u8>,
}

impl UdpFrame {
    pub fn build(&self) -> Vec<u8> {
        let udp_len = UDP_LEN + self.payload.len();
        let total = IPV4_LEN + udp_len;
        let mut f = Vec::with_capacity(ETH_LEN + total);
        f.extend_from_slice(&self.dst_mac);
        f.extend_from_slice(&self.src_mac);
        f.extend_from_slice(&0x0800u16.to_be_bytes());
        let mut ip = [0u8; IPV4_LEN];
        ip[0] = 0x45;
        ip[2..4].copy_from_slice(&(total as u16).to_be_bytes());
        ip[6] = 0x40; // DF
        ip[8] = self.ttl;
        ip[9] = 17;
        ip[12..16].copy_from_slice(&self.src.octets());
        ip[16..20].copy_from_slice(&self.dst.octets());
        let c = !fold(ones_sum(&ip, 0));
        ip[10..12].copy_from_slice(&c.to_be_bytes());
        f.extend_from_slice(&ip);
        let mut udp = Vec::with_capacity(udp_len);
        udp.extend_from_slice(&self.sport.to_be_bytes());
        udp.extend_from_slice(&self.dport.to_be_bytes());
        udp.extend_from_slice(&(udp_len as u16).to_be_bytes());
        udp.extend_from_slice(&[0, 0]);
        udp.extend_from_slice(&self.payload);
        let c = udp_checksum(self.src, self.dst, &udp);
        udp[6..8].copy_from_slice(&c.to_be_bytes());
        f.extend_from_slice(&udp);
        f
    }
}

fn udp_checksum(src: Ipv4Addr, dst: Ipv4Addr, udp: &[u8]) -> u16 {
    let mut pseudo = Vec::with_capacity(12);
    pseudo.extend_from_slice(&src.octets());
    pseudo.extend_from_slice(&dst.octets());
    pseudo.extend_from_slice(&[0, 17]);
    pseudo.extend_from_slice(&(udp.len() as u16).to_be_bytes());
    let c = !fold(ones_sum(udp, ones_sum(&pseudo, 0)));
    if c == 0 { 0xffff } else { c }
}

/// What a received frame says about itself, after checking every checksum.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParsedUdp {
    pub dst_mac: [u8; 6],
    pub src_mac: [u8; 6],
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub ttl: u8,
    pub ipv4_checksum_ok: bool,
    pub udp_checksum_ok: bool,
    pub sport: u16,
    pub dport: u16,
    pub payload: Vec<u8>,
}

/// Parse an Ethernet/IPv4/UDP frame; `None` if it is not one.
pub fn parse_udp(frame: &[u8]) -> Option<ParsedUdp> {
    if frame.len() < ETH_LEN + IPV4_LEN || frame[12..14] != [0x08, 0x00] {
        return None;
    }
    let ip = &frame[ETH_LEN..];
    let ihl = ((ip[0] & 0x0f) as usize) * 4;
    let total = u16::from_be_bytes([ip[2], ip[3]]) as usize;
    if ip[0] >> 4 != 4 || ip[9] != 17 || ihl < IPV4_LEN || total > ip.len() || total < ihl + UDP_LEN
    {
        return None;
    }
    let ipv4_checksum_ok = fold(ones_sum(&ip[..ihl], 0)) == 0xffff;
    let src = Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]);
    let dst = Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]);
    let udp = &ip[ihl..total];
    let udp_len = u16::from_be_bytes([udp[4], udp[5]]) as usize;
    if udp_len != udp.len() {
        return None;
    }
    let mut pseudo = Vec::with_capacity(12);
    pseudo.extend_from_slice(&src.octets());
    pseudo.extend_from_slice(&dst.octets());
    pseudo.extend_from_slice(&[0, 17]);
    pseudo.extend_from_slice(&(udp.len() as u16).to_be_bytes());
    let udp_checksum_ok = fold(ones_sum(udp, ones_sum(&pseudo, 0))) == 0xffff;
    Some(ParsedUdp {
        dst_mac: frame[0..6].try_into().ok()?,
        src_mac: frame[6..12].try_into().ok()?,
        src,
        dst,
        ttl: ip[8],
        ipv4_checksum_ok,
        udp_checksum_ok,
        sport: u16::from_be_bytes([udp[0], udp[1]]),
        dport: u16::from_be_bytes([udp[2], udp[3]]),
        payload: udp[UDP_LEN..].to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_frames_check_out() {
        let f = UdpFrame {
            dst_mac: [2, 0, 0, 0, 0, 1],
            src_mac: [2, 0, 0, 0, 0, 2],
            src: Ipv4Addr::new(192, 168, 100, 129),
            dst: Ipv4Addr::new(10, 1, 0, 4),
            ttl: 64,
            sport: 4000,
            dport: 5000,
            payload: b"hello".to_vec(),
        };
        let p = parse_udp(&f.build()).unwrap();
        assert!(p.ipv4_checksum_ok && p.udp_checksum_ok);
        assert_eq!(p.ttl, 64);
        assert_eq!(p.payload, b"hello");
        let mut bad = f.build();
        bad[ETH_LEN + 8] = 63; // TTL changed without fixing the checksum
        assert!(!parse_udp(&bad).unwrap().ipv4_checksum_ok);
    }
}
