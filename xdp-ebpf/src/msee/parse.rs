//! Parsing: the VLAN tags between the Ethernet header and L3 (they find the
//! frame's attachment), and the IPv6 extension headers between the IPv6
//! header and the transport header (they hide the ports).

use msee_abi::{ETH_P_8021AD, ETH_P_8021Q};

use crate::{
    msee::frame::Frame,
    net::{ETH_HDR_LEN, VLAN_HDR_LEN, be16},
};

/// Upper bound on IPv6 extension headers walked to find the L4 ports.
pub const MAX_EXT_HEADERS: usize = 4;

/// Whether an EtherType is a VLAN tag's: 802.1Q, or 802.1ad (an S-tag).
#[inline(always)]
pub fn is_vlan_tpid(ethertype: u16) -> bool {
    ethertype == ETH_P_8021Q || ethertype == ETH_P_8021AD
}

/// The tags of a tagged frame: one, or an outer tag and an inner 802.1Q.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VlanTags {
    pub outer_vlan: u16,
    /// 0 with one tag.
    pub inner_vlan: u16,
    /// The EtherType after the tags.
    pub ethertype: u16,
    /// Where the L3 header starts.
    pub l3_off: usize,
    /// 1 or 2.
    pub count: usize,
}

/// The tags of a frame whose EtherType is a VLAN TPID (`is_vlan_tpid`):
/// the tag after the Ethernet header and, if that one's EtherType is
/// 802.1Q, the next. `None` if the frame ends inside a tag.
#[inline(always)]
pub fn vlan_tags<F: Frame + ?Sized>(frame: &F) -> Option<VlanTags> {
    let tag = frame.bytes::<VLAN_HDR_LEN>(ETH_HDR_LEN)?;
    let mut tags = VlanTags {
        outer_vlan: be16(tag, 0) & 0x0fff,
        inner_vlan: 0,
        ethertype: be16(tag, 2),
        l3_off: ETH_HDR_LEN + VLAN_HDR_LEN,
        count: 1,
    };
    if tags.ethertype == ETH_P_8021Q {
        let tag = frame.bytes::<VLAN_HDR_LEN>(ETH_HDR_LEN + VLAN_HDR_LEN)?;
        tags.inner_vlan = be16(tag, 0) & 0x0fff;
        tags.ethertype = be16(tag, 2);
        tags.l3_off = ETH_HDR_LEN + 2 * VLAN_HDR_LEN;
        tags.count = 2;
    }
    Some(tags)
}

/// How many bytes of VLAN tags follow the MACs, as `vlan_tags` counts them,
/// from the frame's first 18 bytes: none, one tag or two.
#[inline(always)]
pub fn vlan_tags_len(l2: &[u8; ETH_HDR_LEN + VLAN_HDR_LEN]) -> usize {
    if !is_vlan_tpid(be16(l2, 12)) {
        0
    } else if be16(l2, 16) == ETH_P_8021Q {
        2 * VLAN_HDR_LEN
    } else {
        VLAN_HDR_LEN
    }
}

/// Where `walk_ext_headers` found the transport header. No `bool` (no
/// niche): the walk is out of line, so its return type is in the program's
/// BTF, and an `Option` of a type with a niche keeps its tag inside the
/// payload, which BTF describes as a union member at a non-zero offset;
/// the kernel refuses that, and the whole object's BTF was dropped at load.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Transport {
    /// Offset in the frame (u32 keeps the `Option` at 12 bytes).
    pub off: u32,
    pub proto: u8,
    /// 1 for a first fragment (or no fragment): the ports are there.
    pub first_fragment: u8,
    /// 1 behind a fragment header, first fragment or not: the datagram's
    /// other fragments carry no ports, so none of them may be hashed with.
    pub fragment: u8,
}

impl Transport {
    /// Not a fragment.
    pub const fn new(proto: u8, off: usize, first_fragment: bool) -> Self {
        Self {
            off: off as u32,
            proto,
            first_fragment: first_fragment as u8,
            fragment: 0,
        }
    }

    /// Behind a fragment header.
    pub const fn fragment(proto: u8, off: usize, first_fragment: bool) -> Self {
        Self {
            fragment: 1,
            ..Self::new(proto, off, first_fragment)
        }
    }
}

/// Walk at most `MAX_EXT_HEADERS` IPv6 extension headers from `off`, where
/// a header of type `next` starts: returns the transport protocol, its
/// offset and whether this is a first fragment (or no fragment), or `None`
/// if a header is cut short. The offset is not checked against the
/// packet's payload length: the caller does that. Out of line: unrolled,
/// the walk is what weighs on the stack.
#[inline(never)]
pub fn walk_ext_headers<F: Frame + ?Sized>(
    frame: &F,
    mut next: u8,
    mut off: usize,
) -> Option<Transport> {
    let mut first_fragment = true;
    let mut fragment = false;
    for _ in 0..MAX_EXT_HEADERS {
        match next {
            0 | 43 | 60 => {
                let h = frame.bytes::<2>(off)?;
                next = h[0];
                off += (h[1] as usize + 1) * 8;
            }
            44 => {
                let h = frame.bytes::<8>(off)?;
                next = h[0];
                first_fragment = be16(h, 2) & 0xfff8 == 0;
                fragment = true;
                off += 8;
            }
            _ => break,
        }
    }
    let t = Transport::new(next, off, first_fragment);
    Some(Transport {
        fragment: u8::from(fragment),
        ..t
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MACS: [u8; 12] = [2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1];

    /// MACs, then `rest` (TPIDs, tags, EtherType, payload).
    fn frame(rest: &[u8]) -> [u8; 64] {
        let mut f = [0u8; 64];
        f[..12].copy_from_slice(&MACS);
        f[12..12 + rest.len()].copy_from_slice(rest);
        f
    }

    #[test]
    fn one_tag_and_two() {
        // 802.1Q, VLAN 100 with priority 7 (the PCP bits are not the VLAN).
        let f = frame(&[0x81, 0x00, 0xe0, 100, 0x08, 0x00]);
        let one = VlanTags {
            outer_vlan: 100,
            inner_vlan: 0,
            ethertype: 0x0800,
            l3_off: 18,
            count: 1,
        };
        assert_eq!(vlan_tags(&f[..]), Some(one));
        // 802.1ad S-tag 300, then a C-tag 100 (PCP 3, DEI set).
        let f = frame(&[0x88, 0xa8, 0x01, 0x2c, 0x81, 0x00, 0x70, 100, 0x86, 0xdd]);
        let two = VlanTags {
            outer_vlan: 300,
            inner_vlan: 100,
            ethertype: 0x86dd,
            l3_off: 22,
            count: 2,
        };
        assert_eq!(vlan_tags(&f[..]), Some(two));
        // An S-tag alone: what follows it is the payload's EtherType.
        let f = frame(&[0x88, 0xa8, 0x00, 7, 0x08, 0x06]);
        assert_eq!(
            vlan_tags(&f[..]).map(|t| (t.count, t.ethertype)),
            Some((1, 0x0806))
        );
    }

    #[test]
    fn a_frame_ending_in_a_tag_has_none() {
        let f = frame(&[0x81, 0x00, 0x00, 100, 0x81, 0x00, 0x00, 200, 0x08, 0x00]);
        assert_eq!(vlan_tags(&f[..17]), None, "cut in the outer tag");
        assert_eq!(vlan_tags(&f[..21]), None, "cut in the inner tag");
        assert_eq!(vlan_tags(&f[..22]).map(|t| t.inner_vlan), Some(200));
    }

    #[test]
    fn tag_bytes_to_pop_match_the_parse() {
        let frames = [
            frame(&[0x08, 0x00]),
            frame(&[0x81, 0x00, 0x00, 100, 0x08, 0x00]),
            frame(&[0x88, 0xa8, 0x00, 100, 0x86, 0xdd]),
            frame(&[0x88, 0xa8, 0x00, 100, 0x81, 0x00, 0x00, 7, 0x08, 0x00]),
            frame(&[0x81, 0x00, 0x00, 100, 0x81, 0x00, 0x00, 7, 0x86, 0xdd]),
        ];
        let lens: [usize; 5] =
            core::array::from_fn(|i| vlan_tags_len(frames[i][..18].try_into().unwrap()));
        assert_eq!(lens, [0, 4, 4, 8, 8]);
        for (f, len) in frames.iter().zip(lens).skip(1) {
            assert_eq!(vlan_tags(&f[..]).unwrap().l3_off, ETH_HDR_LEN + len);
        }
    }

    /// An IPv6 packet's bytes after its header: `ext` headers, then 8
    /// bytes of transport header.
    fn after_ipv6(ext: &[&[u8]]) -> ([u8; 128], usize) {
        let mut b = [0u8; 128];
        let mut at = 0;
        for h in ext {
            b[at..at + h.len()].copy_from_slice(h);
            at += h.len();
        }
        b[at..at + 8].copy_from_slice(&[0x9c, 0x40, 0x00, 0x35, 0, 8, 0, 0]);
        (b, at + 8)
    }

    #[test]
    fn extension_headers_lead_to_the_transport_header() {
        // None: the transport header is where the walk starts.
        let (b, _) = after_ipv6(&[]);
        assert_eq!(
            walk_ext_headers(&b[..], 17, 0),
            Some(Transport::new(17, 0, true))
        );
        // Hop-by-hop (8 bytes), routing (24: length field 2), then TCP.
        let hbh = [43, 0, 0, 0, 0, 0, 0, 0];
        let mut routing = [0u8; 24];
        routing[..2].copy_from_slice(&[6, 2]);
        let (b, _) = after_ipv6(&[&hbh, &routing]);
        assert_eq!(
            walk_ext_headers(&b[..], 0, 0),
            Some(Transport::new(6, 32, true))
        );
        // Fragment header: offset 0 with more fragments is the first one;
        // offset 185 (1480 bytes) a later one.
        let (b, _) = after_ipv6(&[&[17, 0, 0x00, 0x01, 0, 0, 0, 1]]);
        assert_eq!(
            walk_ext_headers(&b[..], 44, 0),
            Some(Transport::fragment(17, 8, true))
        );
        let (b, _) = after_ipv6(&[&[17, 0, 0x05, 0xc8, 0, 0, 0, 1]]);
        assert_eq!(
            walk_ext_headers(&b[..], 44, 0),
            Some(Transport::fragment(17, 8, false))
        );
        // Destination options then a fragment, at an offset into the frame.
        let mut f = [0u8; 80];
        f[40..48].copy_from_slice(&[44, 0, 0, 0, 0, 0, 0, 0]);
        f[48..56].copy_from_slice(&[6, 0, 0x00, 0x08, 0, 0, 0, 1]);
        assert_eq!(
            walk_ext_headers(&f[..], 60, 40),
            Some(Transport::fragment(6, 56, false))
        );
    }

    #[test]
    fn the_walk_is_bounded() {
        // Five hop-by-hop headers: the walk stops after four, at the fifth.
        let hbh = [0u8, 0, 0, 0, 0, 0, 0, 0];
        let (b, _) = after_ipv6(&[&hbh, &hbh, &hbh, &hbh, &hbh]);
        assert_eq!(
            walk_ext_headers(&b[..], 0, 0),
            Some(Transport::new(0, 8 * MAX_EXT_HEADERS, true))
        );
        // Headers cut short: a fragment header needs 8 bytes, the others 2
        // (next header and length).
        let (b, _) = after_ipv6(&[&[17, 0, 0, 0, 0, 0, 0, 0]]);
        assert_eq!(walk_ext_headers(&b[..7], 44, 0), None);
        assert_eq!(walk_ext_headers(&b[..1], 60, 0), None);
        assert_eq!(walk_ext_headers(&b[..9], 0, 8), None);
        // A header claiming more than there is: its end comes back as is,
        // for the caller to hold against the payload length.
        let (b, _) = after_ipv6(&[&[17, 255, 0, 0, 0, 0, 0, 0]]);
        assert_eq!(
            walk_ext_headers(&b[..], 0, 0),
            Some(Transport::new(17, 2048, true))
        );
    }
}
