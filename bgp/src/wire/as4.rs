//! Speaking with 2-octet-AS BGP speakers (RFC 6793's "OLD" speakers).
//!
//! In memory an AS path is always the real one, in 4-octet ASNs. On the
//! wire toward a peer that did not advertise the 4-octet AS capability
//! ([`AsWidth::Two`]):
//! * sending: AS_PATH and AGGREGATOR carry 2-octet ASNs, AS_TRANS (23456)
//!   for any that does not fit; when one did not fit, AS4_PATH (and
//!   AS4_AGGREGATOR) carry the real values (RFC 6793 §4.2.2);
//! * receiving: AS_PATH and AGGREGATOR are read as 2-octet, and AS4_PATH /
//!   AS4_AGGREGATOR are merged back into them (§4.2.3), so the rest of the
//!   speaker sees the real path.
//!
//! Between two 4-octet speakers AS4_PATH and AS4_AGGREGATOR have no
//! business on the wire: they are discarded on receipt (§4.1) and never
//! sent.

use super::open::AS_TRANS;
use super::update::{AsSegment, PathAttribute, Update};
use std::net::Ipv4Addr;

/// How ASNs travel in AS_PATH and AGGREGATOR on a session.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum AsWidth {
    /// Both speakers advertised the 4-octet AS capability (RFC 6793).
    #[default]
    Four,
    /// The peer did not: 2-octet ASNs plus AS4_PATH / AS4_AGGREGATOR.
    Two,
}

impl AsWidth {
    fn octets(self) -> usize {
        match self {
            AsWidth::Four => 4,
            AsWidth::Two => 2,
        }
    }
}

/// AS_PATH segment types (RFC 4271 §4.3, RFC 5065 for the confederation
/// ones, which only AS4_PATH parsing needs to recognise).
pub(crate) const AS_SET: u8 = 1;
pub(crate) const AS_SEQUENCE: u8 = 2;
const AS_CONFED_SEQUENCE: u8 = 3;
const AS_CONFED_SET: u8 = 4;

/// The 2-octet form of `asn`: itself, or AS_TRANS when it does not fit.
pub fn as2(asn: u32) -> u16 {
    u16::try_from(asn).unwrap_or(AS_TRANS)
}

/// Whether `segments` hold an ASN that does not fit in 2 octets.
pub fn has_four_octet_as(segments: &[AsSegment]) -> bool {
    segments.iter().any(|s| match s {
        AsSegment::Sequence(v) | AsSegment::Set(v) => v.iter().any(|&a| a > u32::from(u16::MAX)),
    })
}

/// The number of ASNs in a path as route selection counts them (RFC 4271
/// §9.1.2.2): each AS_SEQUENCE entry one, an AS_SET one in all.
pub fn path_len(segments: &[AsSegment]) -> usize {
    segments
        .iter()
        .map(|s| match s {
            AsSegment::Sequence(v) => v.len(),
            AsSegment::Set(v) => usize::from(!v.is_empty()),
        })
        .sum()
}

/// RFC 6793 §4.2.3: the AS path of an UPDATE from a 2-octet speaker, from
/// its AS_PATH and the AS4_PATH it carried. An AS4_PATH longer than the
/// AS_PATH is ignored; otherwise the leading ASNs of the AS_PATH (those
/// the 2-octet speakers on the way prepended) come first, then the
/// AS4_PATH, so the path keeps the AS_PATH's length.
pub fn reconstruct(as_path: &[AsSegment], as4_path: &[AsSegment]) -> Vec<AsSegment> {
    let (n2, n4) = (path_len(as_path), path_len(as4_path));
    if n2 < n4 {
        return as_path.to_vec();
    }
    let mut need = n2 - n4;
    let mut out: Vec<AsSegment> = Vec::new();
    for segment in as_path {
        if need == 0 {
            break;
        }
        match segment {
            AsSegment::Sequence(v) => {
                let k = need.min(v.len());
                out.push(AsSegment::Sequence(v[..k].to_vec()));
                need -= k;
            }
            AsSegment::Set(v) => {
                out.push(AsSegment::Set(v.clone()));
                need -= 1;
            }
        }
    }
    for segment in as4_path {
        // One sequence across the join, as the path was before AS_TRANS.
        match (out.last_mut(), segment) {
            (Some(AsSegment::Sequence(a)), AsSegment::Sequence(b)) if a.len() + b.len() <= 255 => {
                a.extend_from_slice(b);
            }
            (_, s) => out.push(s.clone()),
        }
    }
    out
}

/// Writes `segments` as an AS_PATH (or AS4_PATH, with `Four`) value.
pub(crate) fn encode_segments(
    segments: &[AsSegment],
    width: AsWidth,
    out: &mut Vec<u8>,
) -> Result<(), super::EncodeError> {
    for s in segments {
        let (t, asns) = match s {
            AsSegment::Set(a) => (AS_SET, a),
            AsSegment::Sequence(a) => (AS_SEQUENCE, a),
        };
        let n = u8::try_from(asns.len())
            .map_err(|_| super::EncodeError::FieldTooLong("AS_PATH segment"))?;
        out.extend_from_slice(&[t, n]);
        for &a in asns {
            match width {
                AsWidth::Four => out.extend_from_slice(&a.to_be_bytes()),
                AsWidth::Two => out.extend_from_slice(&as2(a).to_be_bytes()),
            }
        }
    }
    Ok(())
}

/// Reads an AS_PATH value of `width` ASNs (RFC 7606 §7.2: an unknown
/// segment type, a zero-length segment or an overrun is malformed). In an
/// AS4_PATH (`as4_path`), confederation segments are dropped (RFC 6793 §6:
/// they have no place there); in an AS_PATH from an external customer they
/// are malformed.
pub(crate) fn decode_segments(
    mut v: &[u8],
    width: AsWidth,
    as4_path: bool,
) -> Result<Vec<AsSegment>, &'static str> {
    let size = width.octets();
    let mut segs = Vec::new();
    while !v.is_empty() {
        if v.len() < 2 {
            return Err("AS_PATH segment header truncated");
        }
        let (t, n) = (v[0], usize::from(v[1]));
        if n == 0 {
            return Err("AS_PATH segment of length 0");
        }
        if v.len() < 2 + size * n {
            return Err("AS_PATH segment overruns the attribute");
        }
        let asns = v[2..2 + size * n]
            .chunks_exact(size)
            .map(|c| match c {
                &[a, b] => u32::from(u16::from_be_bytes([a, b])),
                c => u32::from_be_bytes([c[0], c[1], c[2], c[3]]),
            })
            .collect();
        match t {
            AS_SET => segs.push(AsSegment::Set(asns)),
            AS_SEQUENCE => segs.push(AsSegment::Sequence(asns)),
            AS_CONFED_SEQUENCE | AS_CONFED_SET if as4_path => {}
            _ => return Err("AS_PATH segment type unknown"),
        }
        v = &v[2 + size * n..];
    }
    Ok(segs)
}

/// AS4_PATH and AS4_AGGREGATOR as read from a 2-octet speaker's UPDATE,
/// waiting to be merged once every attribute is read.
#[derive(Debug, Default)]
pub(crate) struct As4Attributes {
    pub(crate) path: Option<Vec<AsSegment>>,
    pub(crate) aggregator: Option<(u32, Ipv4Addr)>,
}

/// RFC 6793 §4.2.3 on a decoded UPDATE from a 2-octet speaker. With both
/// AGGREGATOR and AS4_AGGREGATOR: an AGGREGATOR AS other than AS_TRANS
/// means a 2-octet speaker aggregated after the AS4 attributes were
/// written, so both AS4 attributes are ignored; otherwise AS4_AGGREGATOR
/// replaces it. An AS4_AGGREGATOR without AGGREGATOR is ignored. Then the
/// AS4_PATH, if still in use, is merged into the AS_PATH.
pub(crate) fn merge(u: &mut Update, as4: As4Attributes) {
    let mut use_as4_path = true;
    if let Some((asn, address)) = as4.aggregator {
        for a in &mut u.attributes {
            if let PathAttribute::Aggregator {
                asn: two,
                address: addr,
            } = a
            {
                if *two == u32::from(AS_TRANS) {
                    (*two, *addr) = (asn, address);
                } else {
                    use_as4_path = false;
                }
            }
        }
    }
    if let (true, Some(as4_path)) = (use_as4_path, as4.path) {
        for a in &mut u.attributes {
            if let PathAttribute::AsPath(segments) = a {
                *segments = reconstruct(segments, &as4_path);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seq(v: &[u32]) -> AsSegment {
        AsSegment::Sequence(v.to_vec())
    }

    fn set(v: &[u32]) -> AsSegment {
        AsSegment::Set(v.to_vec())
    }

    const T: u32 = AS_TRANS as u32;

    #[test]
    fn reconstruct_takes_the_leading_part_of_as_path_then_as4_path() {
        // RFC 6793 §4.2.3, the usual case: a 2-octet speaker (65010)
        // prepended itself to a path from a 4-octet AS.
        assert_eq!(
            reconstruct(&[seq(&[65010, T, 65020])], &[seq(&[4_200_000_001, 65020])]),
            vec![seq(&[65010, 4_200_000_001, 65020])]
        );
        // Equal lengths: the AS4_PATH is the whole path.
        assert_eq!(
            reconstruct(&[seq(&[T, T])], &[seq(&[4_200_000_001, 4_200_000_002])]),
            vec![seq(&[4_200_000_001, 4_200_000_002])]
        );
        // An AS4_PATH longer than the AS_PATH is ignored.
        assert_eq!(
            reconstruct(&[seq(&[65010])], &[seq(&[4_200_000_001, 65020])]),
            vec![seq(&[65010])]
        );
        // An AS_SET counts as one and is taken whole; segments are kept.
        assert_eq!(
            reconstruct(
                &[seq(&[65010]), set(&[1, 2, 3]), seq(&[T])],
                &[seq(&[4_200_000_001])]
            ),
            vec![seq(&[65010]), set(&[1, 2, 3]), seq(&[4_200_000_001])]
        );
        // The split falls inside the leading sequence.
        assert_eq!(
            reconstruct(
                &[seq(&[65010, 65011, T]), set(&[T, 7])],
                &[seq(&[4_200_000_001]), set(&[4_200_000_002, 7])]
            ),
            vec![
                seq(&[65010, 65011, 4_200_000_001]),
                set(&[4_200_000_002, 7])
            ]
        );
        // An empty AS4_PATH leaves the AS_PATH as it is.
        assert_eq!(
            reconstruct(&[seq(&[65010, 1])], &[]),
            vec![seq(&[65010, 1])]
        );
    }

    #[test]
    fn path_length_counts_a_set_as_one() {
        assert_eq!(path_len(&[seq(&[1, 2]), set(&[3, 4, 5]), set(&[])]), 3);
        assert!(has_four_octet_as(&[seq(&[1, 65536])]));
        assert!(!has_four_octet_as(&[seq(&[1, 65535]), set(&[12076])]));
        assert_eq!(
            (as2(12076), as2(65535), as2(65536)),
            (12076, 65535, AS_TRANS)
        );
    }

    #[test]
    fn segments_in_both_widths() {
        let path = vec![seq(&[12076, 4_200_000_001]), set(&[7, 70_000])];
        let mut four = Vec::new();
        encode_segments(&path, AsWidth::Four, &mut four).unwrap();
        assert_eq!(decode_segments(&four, AsWidth::Four, false).unwrap(), path);
        let mut two = Vec::new();
        encode_segments(&path, AsWidth::Two, &mut two).unwrap();
        assert_eq!(
            two,
            [2, 2, 0x2f, 0x2c, 0x5b, 0xa0, 1, 2, 0, 7, 0x5b, 0xa0],
            "AS_TRANS for what does not fit"
        );
        assert_eq!(
            decode_segments(&two, AsWidth::Two, false).unwrap(),
            vec![seq(&[12076, T]), set(&[7, T])]
        );
        // Confederation segments: dropped from an AS4_PATH, malformed in
        // an AS_PATH.
        let confed = [3, 1, 0, 0, 0, 9, 2, 1, 0, 0, 0, 1];
        assert_eq!(
            decode_segments(&confed, AsWidth::Four, true).unwrap(),
            vec![seq(&[1])]
        );
        assert!(decode_segments(&confed, AsWidth::Four, false).is_err());
        assert!(decode_segments(&[2, 2, 0, 1, 0], AsWidth::Two, false).is_err());
    }
}
