//! Test frames: build (templates per flow and size, patched per packet) and
//! parse. Frame sizes count the 4-byte FCS, as RFC 2544 does: a 64-byte frame
//! is 60 bytes in the UMEM; the NIC (or veth) adds nothing we must write.
use std::net::IpAddr;

use anyhow::{Result, bail};
use serde::{Deserialize, Serialize};
use traffic_abi::{PAYLOAD_LEN, PAYLOAD_SEQ, PAYLOAD_STREAM, PAYLOAD_TS};

pub const FCS_LEN: usize = 4;
pub const MIN_FRAME: u16 = 64;
pub const MAX_FRAME: u16 = 1518;
const ETH_P_IPV4: u16 = 0x0800;
const ETH_P_IPV6: u16 = 0x86dd;
const ETH_P_8021Q: u16 = 0x8100;
const ETH_P_8021AD: u16 = 0x88a8;
const IPPROTO_UDP: u8 = 17;

/// IMIX: 7 x 64, 4 x 576, 1 x 1500, interleaved so each batch sees the mix.
pub const IMIX_PATTERN: [u16; 12] = [64, 576, 64, 64, 576, 64, 1500, 64, 576, 64, 64, 576];

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum FrameSizes {
    Fixed(u16),
    Imix,
}

impl FrameSizes {
    pub fn pattern(&self) -> Vec<u16> {
        match self {
            FrameSizes::Fixed(n) => vec![*n],
            FrameSizes::Imix => IMIX_PATTERN.to_vec(),
        }
    }
    /// Mean frame size in bytes (with FCS).
    pub fn mean(&self) -> f64 {
        let p = self.pattern();
        p.iter().map(|&n| f64::from(n)).sum::<f64>() / p.len() as f64
    }
}

/// What to send: one flow = one stream of the sink.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrafficSpec {
    pub src_mac: [u8; 6],
    pub dst_mac: [u8; 6],
    /// VLAN ids, outermost first: one = 802.1Q, two = QinQ (outer 802.1ad).
    pub vlans: Vec<u16>,
    pub src_ip: IpAddr,
    pub dst_ip: IpAddr,
    pub src_port: u16,
    pub dst_port: u16,
    pub flows: u16,
    /// Flow i also adds i to the source and destination addresses.
    pub vary_addrs: bool,
    pub sizes: FrameSizes,
    /// Stream id of flow 0 (flow i is stream `stream_base + i`).
    pub stream_base: u16,
}

impl TrafficSpec {
    /// Bytes before the test payload.
    pub fn header_len(&self) -> usize {
        let l3 = if self.src_ip.is_ipv4() { 20 } else { 40 };
        14 + 4 * self.vlans.len() + l3 + 8
    }

    /// Smallest frame (with FCS) that carries the payload.
    pub fn min_frame(&self) -> u16 {
        ((self.header_len() + PAYLOAD_LEN + FCS_LEN) as u16).max(MIN_FRAME)
    }

    pub fn validate(&self) -> Result<()> {
        if self.src_ip.is_ipv4() != self.dst_ip.is_ipv4() {
            bail!(
                "source {} and destination {} are not the same IP version",
                self.src_ip,
                self.dst_ip
            );
        }
        if self.vlans.len() > 2 {
            bail!("at most two VLAN tags (QinQ), got {}", self.vlans.len());
        }
        if let Some(v) = self.vlans.iter().find(|&&v| v == 0 || v > 4094) {
            bail!("VLAN id {v} out of range 1..=4094");
        }
        if self.flows == 0 {
            bail!("--flows must be at least 1");
        }
        if u32::from(self.stream_base) + u32::from(self.flows) > 65536 {
            bail!(
                "stream ids {}+{} exceed 65535",
                self.stream_base,
                self.flows
            );
        }
        let max = MAX_FRAME as usize + 4 * self.vlans.len();
        if let FrameSizes::Fixed(n) = self.sizes
            && (n < self.min_frame() || n as usize > max)
        {
            bail!(
                "frame size {n} out of range {}..={max} for this header stack",
                self.min_frame()
            );
        }
        Ok(())
    }

    /// Templates for every (flow, size) pair.
    pub fn templates(&self) -> Vec<Vec<Template>> {
        let sizes = self.pattern();
        (0..self.flows)
            .map(|flow| {
                sizes
                    .iter()
                    .map(|&size| self.template(flow, size))
                    .collect()
            })
            .collect()
    }

    /// Sizes in sending order; IMIX sizes below the stack's minimum are raised.
    pub fn pattern(&self) -> Vec<u16> {
        let min = self.min_frame();
        self.sizes
            .pattern()
            .into_iter()
            .map(|n| n.max(min))
            .collect()
    }

    pub fn template(&self, flow: u16, size: u16) -> Template {
        let len = size as usize - FCS_LEN;
        let hlen = self.header_len();
        let mut h = Vec::with_capacity(hlen);
        h.extend_from_slice(&self.dst_mac);
        h.extend_from_slice(&self.src_mac);
        for (i, vid) in self.vlans.iter().enumerate() {
            let tpid = if i == 0 && self.vlans.len() == 2 {
                ETH_P_8021AD
            } else {
                ETH_P_8021Q
            };
            h.extend_from_slice(&tpid.to_be_bytes());
            h.extend_from_slice(&vid.to_be_bytes());
        }
        let sport = self.src_port.wrapping_add(flow);
        let dport = self.dst_port.wrapping_add(flow);
        let add = if self.vary_addrs { u32::from(flow) } else { 0 };
        let udp_len = (len - (hlen - 8)) as u16;
        let mut sum: u32;
        match (self.src_ip, self.dst_ip) {
            (IpAddr::V4(s), IpAddr::V4(d)) => {
                let s = (u32::from(s).wrapping_add(add)).to_be_bytes();
                let d = (u32::from(d).wrapping_add(add)).to_be_bytes();
                h.extend_from_slice(&ETH_P_IPV4.to_be_bytes());
                let mut ip = [0u8; 20];
                ip[0] = 0x45;
                ip[2..4].copy_from_slice(&(udp_len + 20).to_be_bytes());
                ip[6] = 0x40; // DF
                ip[8] = 64;
                ip[9] = IPPROTO_UDP;
                ip[12..16].copy_from_slice(&s);
                ip[16..20].copy_from_slice(&d);
                let c = fold(sum_words(&ip, 0));
                ip[10..12].copy_from_slice(&(!c).to_be_bytes());
                h.extend_from_slice(&ip);
                sum = sum_words(&s, 0);
                sum = sum_words(&d, sum);
                sum += u32::from(IPPROTO_UDP) + u32::from(udp_len);
            }
            (IpAddr::V6(s), IpAddr::V6(d)) => {
                let s = (u128::from(s).wrapping_add(u128::from(add))).to_be_bytes();
                let d = (u128::from(d).wrapping_add(u128::from(add))).to_be_bytes();
                h.extend_from_slice(&ETH_P_IPV6.to_be_bytes());
                let mut ip = [0u8; 40];
                ip[0] = 0x60;
                ip[4..6].copy_from_slice(&udp_len.to_be_bytes());
                ip[6] = IPPROTO_UDP;
                ip[7] = 64;
                ip[8..24].copy_from_slice(&s);
                ip[24..40].copy_from_slice(&d);
                h.extend_from_slice(&ip);
                sum = sum_words(&s, 0);
                sum = sum_words(&d, sum);
                sum += u32::from(IPPROTO_UDP) + u32::from(udp_len);
            }
            _ => unreachable!("validated: same IP version"),
        }
        let mut udp = [0u8; 8];
        udp[0..2].copy_from_slice(&sport.to_be_bytes());
        udp[2..4].copy_from_slice(&dport.to_be_bytes());
        udp[4..6].copy_from_slice(&udp_len.to_be_bytes());
        sum = sum_words(&udp, sum);
        h.extend_from_slice(&udp);
        Template {
            header: h,
            len,
            csum_partial: sum,
            stream: self.stream_base + flow,
        }
    }
}

/// A frame of one flow and size, missing only the payload stamp and the UDP
/// checksum (the rest of the payload stays zero, so it adds nothing).
#[derive(Clone, Debug)]
pub struct Template {
    pub header: Vec<u8>,
    /// Bytes in the buffer (frame size without FCS).
    pub len: usize,
    /// One's complement sum of pseudo-header and UDP header, unfolded.
    pub csum_partial: u32,
    pub stream: u16,
}

impl Template {
    /// Write the whole frame into `buf` (zeroing the payload tail if `zero`,
    /// which a buffer that held a different frame needs).
    #[inline]
    pub fn write(&self, buf: &mut [u8], seq: u64, tx_ns: u64, zero: bool) {
        let h = self.header.len();
        buf[..h].copy_from_slice(&self.header);
        let p = &mut buf[h..h + PAYLOAD_LEN];
        p[PAYLOAD_STREAM..PAYLOAD_STREAM + 2].copy_from_slice(&self.stream.to_be_bytes());
        p[PAYLOAD_SEQ..PAYLOAD_SEQ + 8].copy_from_slice(&seq.to_be_bytes());
        p[PAYLOAD_TS..PAYLOAD_TS + 8].copy_from_slice(&tx_ns.to_be_bytes());
        let sum = sum_words(p, self.csum_partial);
        if zero {
            buf[h + PAYLOAD_LEN..self.len].fill(0);
        }
        let mut c = !fold(sum);
        if c == 0 {
            c = 0xffff;
        }
        buf[h - 2..h].copy_from_slice(&c.to_be_bytes());
    }

    /// Offsets of the payload and the UDP checksum (for `txgen`).
    pub fn offsets(&self) -> (usize, usize) {
        (self.header.len(), self.header.len() - 2)
    }
}

/// Frames of one `TrafficSpec` sent to many destinations: where the
/// destination address and the checksums covering it lie, and the
/// addresses. A frame built from the spec's templates is pointed at
/// destination `i` by [`Destinations::apply`] (AF_XDP, per frame), or by
/// `txgen` in the kernel from [`Destinations::txgen_entries`]: the address
/// is written over the template's and both checksums are updated
/// incrementally (RFC 1624), not recomputed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Destinations {
    /// Offset of the destination address in the frame.
    pub addr_off: usize,
    /// Offset of the IPv4 header checksum (`None` for IPv6, which has none).
    pub ip_csum_off: Option<usize>,
    /// Offset of the UDP checksum.
    pub udp_csum_off: usize,
    pub addrs: Vec<IpAddr>,
    /// Each destination's outer VLAN ID (empty: the spec's own tags), its
    /// TCI at `vlan_off`.
    pub vlans: Vec<u16>,
    pub vlan_off: usize,
}

impl Destinations {
    /// `addrs` for frames of `spec`: all of the spec's IP version.
    pub fn new(spec: &TrafficSpec, addrs: Vec<IpAddr>) -> Result<Self> {
        if addrs.is_empty() {
            bail!("no destinations to send to");
        }
        if let Some(a) = addrs.iter().find(|a| a.is_ipv4() != spec.dst_ip.is_ipv4()) {
            bail!(
                "destination {a} is not of the IP version of {}",
                spec.dst_ip
            );
        }
        let l3 = 14 + 4 * spec.vlans.len();
        let (addr_off, ip_csum_off) = if spec.dst_ip.is_ipv4() {
            (l3 + 16, Some(l3 + 10))
        } else {
            (l3 + 24, None)
        };
        Ok(Self {
            addr_off,
            ip_csum_off,
            udp_csum_off: spec.header_len() - 2,
            addrs,
            vlans: Vec::new(),
            vlan_off: 0,
        })
    }

    /// Each destination's frames also in its own outer VLAN (`vlans[i]`
    /// for `addrs[i]`): traffic spread over many attachments of a port.
    /// The spec must have a tag.
    pub fn with_vlans(mut self, spec: &TrafficSpec, vlans: Vec<u16>) -> Result<Self> {
        if spec.vlans.is_empty() {
            bail!("per-destination VLANs need frames with a VLAN tag");
        }
        if vlans.len() != self.addrs.len() {
            bail!(
                "{} VLANs for {} destinations: one each",
                vlans.len(),
                self.addrs.len()
            );
        }
        if let Some(v) = vlans.iter().find(|v| !(1..=4094).contains(*v)) {
            bail!("VLAN ID {v} is not 1-4094");
        }
        // The outer tag's TCI, after the MACs and its TPID.
        self.vlan_off = 14;
        self.vlans = vlans;
        Ok(self)
    }

    /// `n` consecutive addresses from the spec's destination up (`None`
    /// for one: the spec's own).
    pub fn consecutive(spec: &TrafficSpec, n: u32) -> Result<Option<Self>> {
        if n <= 1 {
            return Ok(None);
        }
        // Before the list is built: a huge count is an error, not an
        // allocation.
        if n > traffic_abi::MAX_TXGEN_DESTINATIONS {
            bail!(
                "{n} destinations: at most {}",
                traffic_abi::MAX_TXGEN_DESTINATIONS
            );
        }
        let addrs = (0..n)
            .map(|i| match spec.dst_ip {
                IpAddr::V4(a) => IpAddr::V4(u32::from(a).wrapping_add(i).into()),
                IpAddr::V6(a) => IpAddr::V6(u128::from(a).wrapping_add(u128::from(i)).into()),
            })
            .collect();
        Self::new(spec, addrs).map(Some)
    }

    /// Bytes of an address of these frames (4 or 16).
    pub fn addr_len(&self) -> usize {
        if self.ip_csum_off.is_some() { 4 } else { 16 }
    }

    /// Point `frame` (a frame of the spec, to any destination) at
    /// destination `i % len`, both checksums following.
    #[inline]
    pub fn apply(&self, frame: &mut [u8], i: usize) {
        // On the stack: this runs for every frame the AF_XDP generator sends.
        let (v4, v6);
        let new: &[u8] = match &self.addrs[i % self.addrs.len()] {
            IpAddr::V4(a) => {
                v4 = a.octets();
                &v4
            }
            IpAddr::V6(a) => {
                v6 = a.octets();
                &v6
            }
        };
        let at = self.addr_off..self.addr_off + new.len();
        let delta = csum_delta(&frame[at.clone()], new);
        frame[at].copy_from_slice(new);
        if let Some(c) = self.ip_csum_off {
            patch_csum(frame, c, delta, false);
        }
        patch_csum(frame, self.udp_csum_off, delta, true);
        if let Some(v) = self.vlans.get(i % self.addrs.len()) {
            let tci = &mut frame[self.vlan_off..self.vlan_off + 2];
            let pcp = u16::from_be_bytes([tci[0], tci[1]]) & 0xf000;
            tci.copy_from_slice(&(pcp | v).to_be_bytes());
        }
    }

    /// `txgen`'s table: each address with its checksum delta from `from`
    /// (the template's destination).
    pub fn txgen_entries(&self, from: IpAddr) -> Vec<traffic_abi::TxgenDestination> {
        let from = octets(&from);
        self.addrs
            .iter()
            .enumerate()
            .map(|(i, a)| {
                let to = octets(a);
                let mut addr = [0u8; 16];
                addr[..to.len()].copy_from_slice(&to);
                traffic_abi::TxgenDestination {
                    addr,
                    csum_delta: u32::from(csum_delta(&from, &to)),
                    vlan: self.vlans.get(i).copied().unwrap_or(0),
                    _pad: 0,
                }
            })
            .collect()
    }
}

fn octets(a: &IpAddr) -> Vec<u8> {
    match a {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    }
}

/// What a checksum over `old` changes by when `old` becomes `new` (same
/// length, whole 16-bit words): sum(~m) + sum(m'), folded (RFC 1624).
fn csum_delta(old: &[u8], new: &[u8]) -> u16 {
    let mut sum = 0u32;
    for (o, n) in old.chunks_exact(2).zip(new.chunks_exact(2)) {
        sum += u32::from(!u16::from_be_bytes([o[0], o[1]]));
        sum += u32::from(u16::from_be_bytes([n[0], n[1]]));
    }
    fold(sum)
}

/// HC' = ~(~HC + delta) at `off`; a UDP checksum of 0 is sent as 0xffff.
fn patch_csum(frame: &mut [u8], off: usize, delta: u16, udp: bool) {
    let hc = u16::from_be_bytes([frame[off], frame[off + 1]]);
    let mut c = !fold(u32::from(!hc) + u32::from(delta));
    if udp && c == 0 {
        c = 0xffff;
    }
    frame[off..off + 2].copy_from_slice(&c.to_be_bytes());
}

/// Sum of big-endian 16-bit words (odd tail padded with zero) onto `sum`.
#[inline]
pub fn sum_words(bytes: &[u8], mut sum: u32) -> u32 {
    let mut chunks = bytes.chunks_exact(2);
    for c in &mut chunks {
        sum += u32::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [b] = chunks.remainder() {
        sum += u32::from(*b) << 8;
    }
    sum
}

#[inline]
pub fn fold(mut sum: u32) -> u16 {
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum as u16
}

/// The stamp found in a received test frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Probe {
    pub stream: u16,
    pub seq: u64,
    pub tx_ns: u64,
}

/// Parse Ethernet (with up to two VLAN tags), IPv4/IPv6, UDP and the stamp.
/// Anything else (ARP, ND, short or non-UDP frames) is `None`.
#[inline]
pub fn parse(frame: &[u8]) -> Option<Probe> {
    let mut off = 12;
    let mut ethertype = u16::from_be_bytes([*frame.get(off)?, *frame.get(off + 1)?]);
    off += 2;
    for _ in 0..2 {
        if ethertype == ETH_P_8021Q || ethertype == ETH_P_8021AD {
            ethertype = u16::from_be_bytes([*frame.get(off + 2)?, *frame.get(off + 3)?]);
            off += 4;
        }
    }
    let udp = match ethertype {
        ETH_P_IPV4 => {
            let ip = frame.get(off..off + 20)?;
            let ihl = usize::from(ip[0] & 0x0f) * 4;
            if ip[0] >> 4 != 4 || ip[9] != IPPROTO_UDP || ihl < 20 {
                return None;
            }
            off + ihl
        }
        ETH_P_IPV6 => {
            let ip = frame.get(off..off + 40)?;
            if ip[0] >> 4 != 6 || ip[6] != IPPROTO_UDP {
                return None;
            }
            off + 40
        }
        _ => return None,
    };
    let p = frame.get(udp + 8..udp + 8 + PAYLOAD_LEN)?;
    Some(Probe {
        stream: u16::from_be_bytes([p[0], p[1]]),
        seq: u64::from_be_bytes(p[PAYLOAD_SEQ..PAYLOAD_SEQ + 8].try_into().ok()?),
        tx_ns: u64::from_be_bytes(p[PAYLOAD_TS..PAYLOAD_TS + 8].try_into().ok()?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(v6: bool, vlans: Vec<u16>) -> TrafficSpec {
        let (s, d): (IpAddr, IpAddr) = if v6 {
            ("fd00::1".parse().unwrap(), "fd00::2".parse().unwrap())
        } else {
            ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap())
        };
        TrafficSpec {
            src_mac: [2, 0, 0, 0, 0, 1],
            dst_mac: [2, 0, 0, 0, 0, 2],
            vlans,
            src_ip: s,
            dst_ip: d,
            src_port: 1000,
            dst_port: 2000,
            flows: 3,
            vary_addrs: true,
            sizes: FrameSizes::Imix,
            stream_base: 7,
        }
    }

    /// Full UDP checksum over pseudo-header + UDP segment must verify to 0xffff.
    fn udp_ok(frame: &[u8], l3: usize, v6: bool) -> bool {
        let (src, dst, udp) = if v6 {
            (&frame[l3 + 8..l3 + 24], &frame[l3 + 24..l3 + 40], l3 + 40)
        } else {
            (&frame[l3 + 12..l3 + 16], &frame[l3 + 16..l3 + 20], l3 + 20)
        };
        let seg = &frame[udp..];
        let mut sum = sum_words(src, 0);
        sum = sum_words(dst, sum);
        sum += 17 + seg.len() as u32;
        fold(sum_words(seg, sum)) == 0xffff
    }

    #[test]
    fn frames_roundtrip_with_valid_checksums() {
        for v6 in [false, true] {
            for vlans in [vec![], vec![100], vec![200, 300]] {
                let s = spec(v6, vlans.clone());
                s.validate().unwrap();
                let l3 = 14 + 4 * vlans.len();
                for (flow, ts) in s.templates().iter().enumerate() {
                    for t in ts {
                        let mut buf = vec![0xaa; 2048];
                        t.write(&mut buf, 123_456_789_012 + flow as u64, 42, true);
                        let f = &buf[..t.len];
                        assert!(t.len + FCS_LEN >= 64);
                        assert!(udp_ok(f, l3, v6), "v6={v6} vlans={vlans:?}");
                        if !v6 {
                            assert_eq!(fold(sum_words(&f[l3..l3 + 20], 0)), 0xffff);
                        }
                        let p = parse(f).unwrap();
                        assert_eq!(p.stream, 7 + flow as u16);
                        assert_eq!(p.seq, 123_456_789_012 + flow as u64);
                        assert_eq!(p.tx_ns, 42);
                    }
                }
            }
        }
    }

    #[test]
    fn destinations_rewrite_address_and_both_checksums() {
        for v6 in [false, true] {
            for vlans in [vec![], vec![100], vec![200, 300]] {
                let s = spec(v6, vlans.clone());
                let l3 = 14 + 4 * vlans.len();
                let addrs: Vec<IpAddr> = if v6 {
                    ["2001:db8::1", "fd00:ffff::ffff", "::", "ffff::fffe"]
                        .iter()
                        .map(|a| a.parse().unwrap())
                        .collect()
                } else {
                    ["198.51.100.7", "255.255.255.254", "0.0.0.0", "10.0.0.2"]
                        .iter()
                        .map(|a| a.parse().unwrap())
                        .collect()
                };
                let d = Destinations::new(&s, addrs.clone()).unwrap();
                let t = s.template(0, 128);
                let mut buf = vec![0u8; t.len];
                t.write(&mut buf, 9, 9, true);
                let pristine = buf.clone();
                // Per frame, from whatever destination the buffer held last.
                for i in 0..10 {
                    d.apply(&mut buf, i);
                    let a = &buf[d.addr_off..d.addr_off + d.addr_len()];
                    assert_eq!(a, &octets(&addrs[i % 4])[..], "v6={v6} i={i}");
                    assert!(udp_ok(&buf, l3, v6), "v6={v6} vlans={vlans:?} i={i}");
                    if !v6 {
                        assert_eq!(fold(sum_words(&buf[l3..l3 + 20], 0)), 0xffff);
                    }
                    assert_eq!(parse(&buf).unwrap().seq, 9);
                }
                // txgen's deltas, applied to the pristine frame as txgen does.
                for (k, e) in d.txgen_entries(s.dst_ip).iter().enumerate() {
                    let mut f = pristine.clone();
                    let n = d.addr_len();
                    f[d.addr_off..d.addr_off + n].copy_from_slice(&e.addr[..n]);
                    if let Some(c) = d.ip_csum_off {
                        patch_csum(&mut f, c, e.csum_delta as u16, false);
                    }
                    patch_csum(&mut f, d.udp_csum_off, e.csum_delta as u16, true);
                    let mut g = pristine.clone();
                    d.apply(&mut g, k);
                    assert_eq!(f, g, "v6={v6} k={k}");
                }
            }
        }
        // Each destination in its own outer VLAN: the VLAN ID follows,
        // priority and DEI stay, txgen's entries carry the same.
        for v6 in [false, true] {
            let s = spec(v6, vec![100, 200]);
            let addrs: Vec<IpAddr> = if v6 {
                vec!["2001:db8::1".parse().unwrap(), "fd00::2".parse().unwrap()]
            } else {
                vec!["198.51.100.7".parse().unwrap(), "10.0.0.2".parse().unwrap()]
            };
            let vlans = vec![11, 4094];
            let d = Destinations::new(&s, addrs)
                .unwrap()
                .with_vlans(&s, vlans.clone())
                .unwrap();
            let t = s.template(0, 128);
            let mut buf = vec![0u8; t.len];
            t.write(&mut buf, 9, 9, true);
            buf[14] |= 0xa0;
            let inner = buf[18..20].to_vec();
            for i in 0..4 {
                d.apply(&mut buf, i);
                let tci = u16::from_be_bytes([buf[14], buf[15]]);
                assert_eq!((tci & 0x0fff, tci & 0xf000), (vlans[i % 2], 0xa000));
                assert_eq!(&buf[18..20], &inner[..], "the inner tag stays");
                assert!(udp_ok(&buf, 22, v6));
            }
            let e = d.txgen_entries(s.dst_ip);
            assert_eq!((e[0].vlan, e[1].vlan), (11, 4094));
        }
        let s = spec(false, vec![]);
        let one = || Destinations::new(&s, vec!["10.0.0.1".parse().unwrap()]).unwrap();
        assert!(one().with_vlans(&s, vec![5]).is_err(), "untagged frames");
        let tagged = spec(false, vec![7]);
        let d = || Destinations::new(&tagged, vec!["10.0.0.1".parse().unwrap()]).unwrap();
        assert!(d().with_vlans(&tagged, vec![5, 6]).is_err(), "one each");
        assert!(d().with_vlans(&tagged, vec![4095]).is_err());
        assert!(d().with_vlans(&tagged, vec![0]).is_err());
        // A count past txgen's table is refused before any list is built.
        let e = Destinations::consecutive(&spec(false, vec![]), u32::MAX).unwrap_err();
        assert!(e.to_string().contains("at most"), "{e}");
        // Of the spec's IP version only, and at least one.
        assert!(Destinations::new(&s, vec!["fd00::1".parse().unwrap()]).is_err());
        assert!(Destinations::new(&s, vec![]).is_err());
    }

    /// A rewrite whose UDP checksum comes out 0 sends 0xffff (0 means "no
    /// checksum" over IPv4, RFC 768): of the 65,536 values of the
    /// address's last word, the one that sums to 0 must not leave a 0.
    #[test]
    fn a_udp_checksum_that_comes_out_zero_is_sent_as_ffff() {
        let s = spec(false, vec![]);
        let t = s.template(0, 128);
        let mut pristine = vec![0u8; t.len];
        t.write(&mut pristine, 9, 9, true);
        let addrs: Vec<IpAddr> = (0..=0xffffu32)
            .map(|w| IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 | w)))
            .collect();
        let d = Destinations::new(&s, addrs).unwrap();
        let mut ffff = 0;
        for i in 0..=0xffff {
            let mut f = pristine.clone();
            d.apply(&mut f, i);
            let c = u16::from_be_bytes([f[d.udp_csum_off], f[d.udp_csum_off + 1]]);
            assert_ne!(c, 0, "destination {i}: a UDP checksum of 0");
            assert!(udp_ok(&f, 14, false), "destination {i}");
            ffff += usize::from(c == 0xffff);
        }
        assert_eq!(ffff, 1, "exactly one address sums to 0");
    }

    #[test]
    fn sizes_are_checked() {
        let mut s = spec(false, vec![]);
        s.sizes = FrameSizes::Fixed(64);
        assert!(s.validate().is_ok());
        s.sizes = FrameSizes::Fixed(63);
        assert!(s.validate().is_err());
        s.sizes = FrameSizes::Fixed(1519);
        assert!(s.validate().is_err());
        // IPv6 + QinQ needs more than 64 bytes for the stamp.
        let mut s = spec(true, vec![1, 2]);
        s.sizes = FrameSizes::Fixed(64);
        assert!(s.validate().is_err());
        assert_eq!(s.min_frame(), 14 + 8 + 40 + 8 + 18 + 4);
        assert!(parse(&[0u8; 20]).is_none());
    }
}
