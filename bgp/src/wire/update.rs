//! UPDATE message and path attributes (RFC 4271 §4.3, §5; RFC 4760; RFC
//! 1997; RFC 6793) with RFC 7606 revised error handling.
//!
//! Error dispositions (RFC 7606 §2):
//! * session reset: returned as [`DecodeError`] carrying the NOTIFICATION;
//!   used only when the NLRI cannot be located reliably (withdrawn/attribute
//!   length fields inconsistent with the message, unparsable NLRI or
//!   MP_REACH/MP_UNREACH, duplicated MP attributes, unknown well-known
//!   attributes);
//! * treat-as-withdraw: the decoded [`Update`] has every announced prefix
//!   moved to its withdrawn lists, the other attributes dropped, and an
//!   [`AttributeIssue`] saying why;
//! * attribute discard: the attribute is dropped and an issue recorded.

use super::as4::{self, As4Attributes, AsWidth};
use super::error::{DecodeError, EncodeError, update as sub};
use super::nlri::{self, NlriError};
use super::open::{AFI_IPV4, AFI_IPV6, SAFI_UNICAST};
use ipnet::{Ipv4Net, Ipv6Net};
use std::net::{Ipv4Addr, Ipv6Addr};

/// Attribute flag bits (RFC 4271 §4.3).
pub mod flag {
    pub const OPTIONAL: u8 = 0x80;
    pub const TRANSITIVE: u8 = 0x40;
    pub const PARTIAL: u8 = 0x20;
    pub const EXTENDED_LENGTH: u8 = 0x10;
}

/// Attribute type codes.
pub mod attr {
    pub const ORIGIN: u8 = 1;
    pub const AS_PATH: u8 = 2;
    pub const NEXT_HOP: u8 = 3;
    pub const MULTI_EXIT_DISC: u8 = 4;
    pub const LOCAL_PREF: u8 = 5;
    pub const ATOMIC_AGGREGATE: u8 = 6;
    pub const AGGREGATOR: u8 = 7;
    pub const COMMUNITIES: u8 = 8;
    pub const MP_REACH_NLRI: u8 = 14;
    pub const MP_UNREACH_NLRI: u8 = 15;
    /// RFC 6793: the real path and aggregator next to their 2-octet forms.
    pub const AS4_PATH: u8 = 17;
    pub const AS4_AGGREGATOR: u8 = 18;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Igp = 0,
    Egp = 1,
    Incomplete = 2,
}

/// AS_PATH segment with the real (4-octet) ASNs. Toward and from a
/// 2-octet-AS peer the codec writes and reads the AS_TRANS form and the
/// AS4_PATH beside it (see `as4.rs`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AsSegment {
    Sequence(Vec<u32>),
    Set(Vec<u32>),
}

/// MP_REACH_NLRI for IPv6 unicast (RFC 4760 §3, RFC 2545 §3 next hops).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MpReach {
    pub next_hop: Ipv6Addr,
    pub link_local: Option<Ipv6Addr>,
    pub nlri: Vec<Ipv6Net>,
}

/// MP_UNREACH_NLRI for IPv6 unicast.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MpUnreach {
    pub withdrawn: Vec<Ipv6Net>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathAttribute {
    Origin(Origin),
    AsPath(Vec<AsSegment>),
    NextHop(Ipv4Addr),
    Med(u32),
    LocalPref(u32),
    AtomicAggregate,
    Aggregator {
        asn: u32,
        address: Ipv4Addr,
    },
    Communities(Vec<u32>),
    MpReach(MpReach),
    MpUnreach(MpUnreach),
    /// Unrecognised optional transitive attribute, passed along verbatim
    /// (the Partial bit is the caller's business when re-advertising).
    Unknown {
        flags: u8,
        type_code: u8,
        value: Vec<u8>,
    },
}

impl PathAttribute {
    pub fn type_code(&self) -> u8 {
        match self {
            PathAttribute::Origin(_) => attr::ORIGIN,
            PathAttribute::AsPath(_) => attr::AS_PATH,
            PathAttribute::NextHop(_) => attr::NEXT_HOP,
            PathAttribute::Med(_) => attr::MULTI_EXIT_DISC,
            PathAttribute::LocalPref(_) => attr::LOCAL_PREF,
            PathAttribute::AtomicAggregate => attr::ATOMIC_AGGREGATE,
            PathAttribute::Aggregator { .. } => attr::AGGREGATOR,
            PathAttribute::Communities(_) => attr::COMMUNITIES,
            PathAttribute::MpReach(_) => attr::MP_REACH_NLRI,
            PathAttribute::MpUnreach(_) => attr::MP_UNREACH_NLRI,
            PathAttribute::Unknown { type_code, .. } => *type_code,
        }
    }

    /// Writes the attribute; toward a 2-octet-AS peer, AS_PATH and
    /// AGGREGATOR are followed by AS4_PATH / AS4_AGGREGATOR when an ASN
    /// does not fit (RFC 6793 §4.2.2).
    fn encode(&self, out: &mut Vec<u8>, width: AsWidth) -> Result<(), EncodeError> {
        let mut v = Vec::new();
        let flags = match self {
            PathAttribute::Origin(o) => {
                v.push(*o as u8);
                flag::TRANSITIVE
            }
            PathAttribute::AsPath(segs) => {
                as4::encode_segments(segs, width, &mut v)?;
                if width == AsWidth::Two && as4::has_four_octet_as(segs) {
                    put_attribute(out, flag::TRANSITIVE, attr::AS_PATH, &v)?;
                    let mut real = Vec::new();
                    as4::encode_segments(segs, AsWidth::Four, &mut real)?;
                    let optional = flag::OPTIONAL | flag::TRANSITIVE;
                    return put_attribute(out, optional, attr::AS4_PATH, &real);
                }
                flag::TRANSITIVE
            }
            PathAttribute::NextHop(a) => {
                v.extend_from_slice(&a.octets());
                flag::TRANSITIVE
            }
            PathAttribute::Med(m) => {
                v.extend_from_slice(&m.to_be_bytes());
                flag::OPTIONAL
            }
            PathAttribute::LocalPref(p) => {
                v.extend_from_slice(&p.to_be_bytes());
                flag::TRANSITIVE
            }
            PathAttribute::AtomicAggregate => flag::TRANSITIVE,
            PathAttribute::Aggregator { asn, address } => {
                let optional = flag::OPTIONAL | flag::TRANSITIVE;
                if width == AsWidth::Two {
                    v.extend_from_slice(&as4::as2(*asn).to_be_bytes());
                    v.extend_from_slice(&address.octets());
                    if *asn > u32::from(u16::MAX) {
                        put_attribute(out, optional, attr::AGGREGATOR, &v)?;
                        let mut real = asn.to_be_bytes().to_vec();
                        real.extend_from_slice(&address.octets());
                        return put_attribute(out, optional, attr::AS4_AGGREGATOR, &real);
                    }
                } else {
                    v.extend_from_slice(&asn.to_be_bytes());
                    v.extend_from_slice(&address.octets());
                }
                optional
            }
            PathAttribute::Communities(c) => {
                c.iter().for_each(|c| v.extend_from_slice(&c.to_be_bytes()));
                flag::OPTIONAL | flag::TRANSITIVE
            }
            PathAttribute::MpReach(r) => {
                v.extend_from_slice(&AFI_IPV6.to_be_bytes());
                v.push(SAFI_UNICAST);
                v.push(if r.link_local.is_some() { 32 } else { 16 });
                v.extend_from_slice(&r.next_hop.octets());
                if let Some(ll) = r.link_local {
                    v.extend_from_slice(&ll.octets());
                }
                v.push(0); // reserved
                nlri::encode_v6(&r.nlri, &mut v);
                flag::OPTIONAL
            }
            PathAttribute::MpUnreach(u) => {
                v.extend_from_slice(&AFI_IPV6.to_be_bytes());
                v.push(SAFI_UNICAST);
                nlri::encode_v6(&u.withdrawn, &mut v);
                flag::OPTIONAL
            }
            // Written from the real path above, never relayed (RFC 6793 §4.1).
            PathAttribute::Unknown {
                type_code: attr::AS4_PATH | attr::AS4_AGGREGATOR,
                ..
            } => return Ok(()),
            PathAttribute::Unknown { flags, value, .. } => {
                v.extend_from_slice(value);
                flags & (flag::OPTIONAL | flag::TRANSITIVE | flag::PARTIAL)
            }
        };
        put_attribute(out, flags, self.type_code(), &v)
    }
}

/// Attribute header (extended length when needed) and value.
fn put_attribute(
    out: &mut Vec<u8>,
    flags: u8,
    type_code: u8,
    value: &[u8],
) -> Result<(), EncodeError> {
    let len = u16::try_from(value.len()).map_err(|_| EncodeError::FieldTooLong("attribute"))?;
    if len > 255 {
        out.extend_from_slice(&[flags | flag::EXTENDED_LENGTH, type_code]);
        out.extend_from_slice(&len.to_be_bytes());
    } else {
        out.extend_from_slice(&[flags, type_code, len as u8]);
    }
    out.extend_from_slice(value);
    Ok(())
}

/// What RFC 7606 made us do instead of resetting the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorAction {
    TreatAsWithdraw,
    AttributeDiscard,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttributeIssue {
    /// Type code of the attribute at fault (0 when none, e.g. a missing one
    /// is reported with the code of the missing attribute).
    pub type_code: u8,
    pub action: ErrorAction,
    pub reason: &'static str,
}

/// Decoding knobs that depend on the session.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DecodeOptions {
    /// eBGP peer: LOCAL_PREF is discarded whatever its form (RFC 7606 §7.5).
    pub external_peer: bool,
    /// How the peer writes ASNs (RFC 6793): 2-octet peers' AS4_PATH and
    /// AS4_AGGREGATOR are merged into the decoded path.
    pub as_width: AsWidth,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Update {
    pub withdrawn: Vec<Ipv4Net>,
    pub attributes: Vec<PathAttribute>,
    pub nlri: Vec<Ipv4Net>,
    /// Empty for a clean UPDATE. Ignored when encoding.
    pub issues: Vec<AttributeIssue>,
}

impl Update {
    /// True when RFC 7606 turned this UPDATE into a withdrawal.
    pub fn treated_as_withdraw(&self) -> bool {
        self.issues
            .iter()
            .any(|i| i.action == ErrorAction::TreatAsWithdraw)
    }

    pub fn attribute(&self, type_code: u8) -> Option<&PathAttribute> {
        self.attributes.iter().find(|a| a.type_code() == type_code)
    }

    pub fn mp_reach(&self) -> Option<&MpReach> {
        self.attributes.iter().find_map(|a| match a {
            PathAttribute::MpReach(r) => Some(r),
            _ => None,
        })
    }

    pub fn mp_unreach(&self) -> Option<&MpUnreach> {
        self.attributes.iter().find_map(|a| match a {
            PathAttribute::MpUnreach(u) => Some(u),
            _ => None,
        })
    }

    /// Applies RFC 7606 treat-as-withdraw for a reason found outside the
    /// codec (e.g. an eBGP AS_PATH not starting with the peer's AS).
    pub fn treat_as_withdraw(&mut self, type_code: u8, reason: &'static str) {
        issue(self, type_code, ErrorAction::TreatAsWithdraw, reason);
        apply_treat_as_withdraw(self);
    }

    /// The End-of-RIB marker of a family (RFC 4724 §2): for IPv4 unicast
    /// an UPDATE with nothing in it; for IPv6 unicast one whose only
    /// attribute is an MP_UNREACH_NLRI withdrawing nothing. Only the
    /// unicast families we carry can be expressed.
    pub fn end_of_rib(afi: u16, safi: u8) -> Option<Update> {
        match (afi, safi) {
            (AFI_IPV4, SAFI_UNICAST) => Some(Update::default()),
            (AFI_IPV6, SAFI_UNICAST) => Some(Update {
                attributes: vec![PathAttribute::MpUnreach(MpUnreach {
                    withdrawn: Vec::new(),
                })],
                ..Update::default()
            }),
            _ => None,
        }
    }

    /// The family whose End-of-RIB marker this UPDATE is, if it is one. An
    /// UPDATE that RFC 7606 emptied (treat-as-withdraw, attribute discard)
    /// is not: it said something else.
    pub fn end_of_rib_family(&self) -> Option<(u16, u8)> {
        if !self.withdrawn.is_empty() || !self.nlri.is_empty() || !self.issues.is_empty() {
            return None;
        }
        match self.attributes.as_slice() {
            [] => Some((AFI_IPV4, SAFI_UNICAST)),
            [PathAttribute::MpUnreach(u)] if u.withdrawn.is_empty() => {
                Some((AFI_IPV6, SAFI_UNICAST))
            }
            _ => None,
        }
    }

    /// IPv6 prefixes announced by this UPDATE.
    pub fn announced_v6(&self) -> &[Ipv6Net] {
        self.mp_reach().map_or(&[], |r| &r.nlri)
    }

    /// IPv6 prefixes withdrawn by this UPDATE.
    pub fn withdrawn_v6(&self) -> &[Ipv6Net] {
        self.mp_unreach().map_or(&[], |u| &u.withdrawn)
    }

    pub(crate) fn encode_body(&self, out: &mut Vec<u8>, width: AsWidth) -> Result<(), EncodeError> {
        let mut w = Vec::new();
        nlri::encode_v4(&self.withdrawn, &mut w);
        let wlen = u16::try_from(w.len()).map_err(|_| EncodeError::FieldTooLong("withdrawn"))?;
        out.extend_from_slice(&wlen.to_be_bytes());
        out.extend_from_slice(&w);
        let mut a = Vec::new();
        for at in &self.attributes {
            at.encode(&mut a, width)?;
        }
        let alen = u16::try_from(a.len()).map_err(|_| EncodeError::FieldTooLong("attributes"))?;
        out.extend_from_slice(&alen.to_be_bytes());
        out.extend_from_slice(&a);
        nlri::encode_v4(&self.nlri, out);
        Ok(())
    }

    pub(crate) fn decode_body(
        body: &[u8],
        msg_len: usize,
        opts: DecodeOptions,
    ) -> Result<Update, DecodeError> {
        if body.len() < 4 {
            return Err(DecodeError::bad_length(
                msg_len,
                "UPDATE shorter than 23 octets",
            ));
        }
        let malformed_list =
            |reason| DecodeError::update(sub::MALFORMED_ATTRIBUTE_LIST, vec![], reason);
        let wlen = usize::from(u16::from_be_bytes([body[0], body[1]]));
        if 2 + wlen + 2 > body.len() {
            return Err(malformed_list(
                "withdrawn routes length overruns the UPDATE",
            ));
        }
        let invalid_network = |_: NlriError| {
            DecodeError::update(
                sub::INVALID_NETWORK_FIELD,
                vec![],
                "unparsable prefix in UPDATE",
            )
        };
        let withdrawn = nlri::decode_v4(&body[2..2 + wlen]).map_err(invalid_network)?;
        let rest = &body[2 + wlen..];
        let alen = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
        if 2 + alen > rest.len() {
            return Err(malformed_list(
                "total path attribute length overruns the UPDATE",
            ));
        }
        let nlri = nlri::decode_v4(&rest[2 + alen..]).map_err(invalid_network)?;
        let mut u = Update {
            withdrawn,
            attributes: Vec::new(),
            nlri,
            issues: Vec::new(),
        };
        let as4 = decode_attributes(&rest[2..2 + alen], opts, &mut u)?;
        if opts.as_width == AsWidth::Two {
            as4::merge(&mut u, as4);
        }
        check_mandatory(&mut u);
        if u.treated_as_withdraw() {
            apply_treat_as_withdraw(&mut u);
        }
        Ok(u)
    }
}

fn issue(u: &mut Update, type_code: u8, action: ErrorAction, reason: &'static str) {
    u.issues.push(AttributeIssue {
        type_code,
        action,
        reason,
    });
}

/// Required flag bits (Optional, Transitive) of the attributes we know.
fn expected_flags(type_code: u8) -> Option<u8> {
    use attr::*;
    Some(match type_code {
        ORIGIN | AS_PATH | NEXT_HOP | LOCAL_PREF | ATOMIC_AGGREGATE => flag::TRANSITIVE,
        MULTI_EXIT_DISC | MP_REACH_NLRI | MP_UNREACH_NLRI => flag::OPTIONAL,
        AGGREGATOR | COMMUNITIES | AS4_PATH | AS4_AGGREGATOR => flag::OPTIONAL | flag::TRANSITIVE,
        _ => return None,
    })
}

/// Reads the attributes into `u`; returns the AS4 attributes of a 2-octet
/// speaker, for the merge once all are read.
fn decode_attributes(
    buf: &[u8],
    opts: DecodeOptions,
    u: &mut Update,
) -> Result<As4Attributes, DecodeError> {
    use ErrorAction::*;
    let mut as4 = As4Attributes::default();
    let mut seen = [false; 256];
    let mut pos = 0;
    while pos < buf.len() {
        let rest = &buf[pos..];
        // `rest` is non-empty here.
        let hdr = if rest[0] & flag::EXTENDED_LENGTH != 0 {
            4
        } else {
            3
        };
        let len = match (hdr, rest) {
            (4, [_, _, a, b, ..]) => Some(usize::from(u16::from_be_bytes([*a, *b]))),
            (3, [_, _, a, ..]) => Some(usize::from(*a)),
            _ => None,
        };
        let Some(len) = len.filter(|len| hdr + len <= rest.len()) else {
            // RFC 7606 §4: an attribute overrunning the attribute field is
            // treat-as-withdraw; the Total Attribute Length still locates
            // the IPv4 NLRI. But treat-as-withdraw needs every NLRI, and an
            // MP_REACH/MP_UNREACH could hide in the unparsed rest. Senders
            // encode MP attributes first (RFC 7606 §5.1), so once any
            // attribute was parsed the MP ones are known; an overrun in the
            // very first attribute of an UPDATE without IPv4 NLRI leaves
            // that unknown, and only a reset is safe (RFC 7606 §5).
            if pos > 0 || !u.nlri.is_empty() {
                let t = rest.get(1).copied().unwrap_or(0);
                let reason = "attribute length overruns the attribute field";
                issue(u, t, TreatAsWithdraw, reason);
                return Ok(as4);
            }
            return Err(DecodeError::update(
                sub::MALFORMED_ATTRIBUTE_LIST,
                vec![],
                "attribute length overruns the attribute field",
            ));
        };
        let (flags, type_code) = (rest[0], rest[1]);
        let whole = &rest[..hdr + len];
        let value = &rest[hdr..hdr + len];
        pos += hdr + len;

        let is_mp = type_code == attr::MP_REACH_NLRI || type_code == attr::MP_UNREACH_NLRI;
        if seen[usize::from(type_code)] {
            // RFC 7606 §3.g.
            if is_mp {
                return Err(DecodeError::update(
                    sub::MALFORMED_ATTRIBUTE_LIST,
                    vec![],
                    "MP_REACH_NLRI or MP_UNREACH_NLRI appears twice",
                ));
            }
            issue(u, type_code, AttributeDiscard, "duplicate attribute");
            continue;
        }
        seen[usize::from(type_code)] = true;

        let Some(expected) = expected_flags(type_code) else {
            if flags & flag::OPTIONAL == 0 {
                return Err(DecodeError::update(
                    sub::UNRECOGNIZED_WELL_KNOWN_ATTRIBUTE,
                    whole.to_vec(),
                    "unrecognized well-known attribute",
                ));
            }
            if flags & flag::TRANSITIVE != 0 {
                u.attributes.push(PathAttribute::Unknown {
                    flags: flags & !flag::EXTENDED_LENGTH,
                    type_code,
                    value: value.to_vec(),
                });
            }
            // Unknown optional non-transitive: quietly ignored (RFC 4271 §5).
            continue;
        };
        let flags_ok = flags & (flag::OPTIONAL | flag::TRANSITIVE) == expected;

        if is_mp {
            // Parsed whatever the flags say: treat-as-withdraw needs the NLRI.
            let a = decode_mp(type_code, value, whole)?;
            u.attributes.push(a);
            if !flags_ok {
                issue(u, type_code, TreatAsWithdraw, "attribute flags conflict");
            }
            continue;
        }
        if type_code == attr::LOCAL_PREF && opts.external_peer {
            issue(
                u,
                type_code,
                AttributeDiscard,
                "LOCAL_PREF from an external peer",
            );
            continue;
        }
        let is_as4 = type_code == attr::AS4_PATH || type_code == attr::AS4_AGGREGATOR;
        if is_as4 && opts.as_width == AsWidth::Four {
            continue; // RFC 6793 §4.1: not for 4-octet speakers; discarded
        }
        // RFC 7606 §7.6/§7.7: aggregate attributes are only ever discarded;
        // so are the AS4 ones (RFC 6793 §6).
        let on_error = match type_code {
            attr::ATOMIC_AGGREGATE | attr::AGGREGATOR => AttributeDiscard,
            _ if is_as4 => AttributeDiscard,
            _ => TreatAsWithdraw,
        };
        if !flags_ok {
            issue(u, type_code, on_error, "attribute flags conflict");
            continue;
        }
        let decoded = match type_code {
            attr::AS4_PATH => {
                as4::decode_segments(value, AsWidth::Four, true).map(|p| as4.path = Some(p))
            }
            attr::AS4_AGGREGATOR => decode_aggregator(value, AsWidth::Four)
                .map(|(asn, address)| as4.aggregator = Some((asn, address))),
            _ => decode_known(type_code, value, opts.as_width).map(|a| u.attributes.push(a)),
        };
        if let Err(reason) = decoded {
            issue(u, type_code, on_error, reason);
        }
    }
    Ok(as4)
}

/// AGGREGATOR (or AS4_AGGREGATOR, with `Four`): the AS and the address.
fn decode_aggregator(v: &[u8], width: AsWidth) -> Result<(u32, Ipv4Addr), &'static str> {
    match (width, v) {
        (AsWidth::Four, &[a, b, c, d, e, f, g, h]) => {
            Ok((u32::from_be_bytes([a, b, c, d]), Ipv4Addr::new(e, f, g, h)))
        }
        (AsWidth::Two, &[a, b, e, f, g, h]) => Ok((
            u32::from(u16::from_be_bytes([a, b])),
            Ipv4Addr::new(e, f, g, h),
        )),
        (AsWidth::Four, _) => Err("AGGREGATOR length is not 8"),
        (AsWidth::Two, _) => Err("AGGREGATOR length is not 6 (2-octet AS peer)"),
    }
}

/// Well-known and optional attributes other than MP_*; errors are reasons
/// for the RFC 7606 per-attribute disposition.
fn decode_known(type_code: u8, v: &[u8], width: AsWidth) -> Result<PathAttribute, &'static str> {
    let u32_of = |v: &[u8]| u32::from_be_bytes([v[0], v[1], v[2], v[3]]);
    Ok(match type_code {
        attr::ORIGIN => match v {
            [0] => PathAttribute::Origin(Origin::Igp),
            [1] => PathAttribute::Origin(Origin::Egp),
            [2] => PathAttribute::Origin(Origin::Incomplete),
            [_] => return Err("undefined ORIGIN value"),
            _ => return Err("ORIGIN length is not 1"),
        },
        attr::AS_PATH => PathAttribute::AsPath(as4::decode_segments(v, width, false)?),
        attr::NEXT_HOP if v.len() == 4 => {
            PathAttribute::NextHop(Ipv4Addr::new(v[0], v[1], v[2], v[3]))
        }
        attr::NEXT_HOP => return Err("NEXT_HOP length is not 4"),
        attr::MULTI_EXIT_DISC if v.len() == 4 => PathAttribute::Med(u32_of(v)),
        attr::MULTI_EXIT_DISC => return Err("MULTI_EXIT_DISC length is not 4"),
        attr::LOCAL_PREF if v.len() == 4 => PathAttribute::LocalPref(u32_of(v)),
        attr::LOCAL_PREF => return Err("LOCAL_PREF length is not 4"),
        attr::ATOMIC_AGGREGATE if v.is_empty() => PathAttribute::AtomicAggregate,
        attr::ATOMIC_AGGREGATE => return Err("ATOMIC_AGGREGATE length is not 0"),
        attr::AGGREGATOR => {
            let (asn, address) = decode_aggregator(v, width)?;
            PathAttribute::Aggregator { asn, address }
        }
        attr::COMMUNITIES if !v.is_empty() && v.len().is_multiple_of(4) => {
            PathAttribute::Communities(v.chunks_exact(4).map(u32_of).collect())
        }
        attr::COMMUNITIES => return Err("COMMUNITIES length is 0 or not a multiple of 4"),
        _ => unreachable!("only called for known attribute types"),
    })
}

/// RFC 4760 §7 / RFC 7606 §7.11: an MP attribute whose NLRI cannot be
/// located is a session reset with Optional Attribute Error, data = the
/// attribute. Only IPv6 unicast is carried in MP attributes here (IPv4
/// unicast uses the classic fields); anything else was never negotiated.
fn decode_mp(type_code: u8, v: &[u8], whole: &[u8]) -> Result<PathAttribute, DecodeError> {
    let err = |reason| DecodeError::update(sub::OPTIONAL_ATTRIBUTE_ERROR, whole.to_vec(), reason);
    if v.len() < 3 {
        return Err(err("MP attribute shorter than AFI/SAFI"));
    }
    let afi = u16::from_be_bytes([v[0], v[1]]);
    if afi != AFI_IPV6 || v[2] != SAFI_UNICAST {
        return Err(err("MP attribute for an AFI/SAFI that was not negotiated"));
    }
    let nlri_err = |_| err("unparsable prefix in MP attribute");
    if type_code == attr::MP_UNREACH_NLRI {
        let withdrawn = nlri::decode_v6(&v[3..]).map_err(nlri_err)?;
        return Ok(PathAttribute::MpUnreach(MpUnreach { withdrawn }));
    }
    if v.len() < 4 {
        return Err(err("MP_REACH_NLRI truncated before next hop length"));
    }
    let nh_len = usize::from(v[3]);
    if nh_len != 16 && nh_len != 32 {
        return Err(err("MP_REACH_NLRI IPv6 next hop length is not 16 or 32"));
    }
    if v.len() < 4 + nh_len + 1 {
        return Err(err("MP_REACH_NLRI next hop overruns the attribute"));
    }
    let addr = |o: usize| Ipv6Addr::from(<[u8; 16]>::try_from(&v[o..o + 16]).expect("16 octets"));
    let next_hop = addr(4);
    let link_local = (nh_len == 32).then(|| addr(20));
    // v[4 + nh_len] is the reserved octet (ignored on receipt, RFC 4760 §3).
    let nlri = nlri::decode_v6(&v[4 + nh_len + 1..]).map_err(nlri_err)?;
    Ok(PathAttribute::MpReach(MpReach {
        next_hop,
        link_local,
        nlri,
    }))
}

/// RFC 7606 §3.d: a missing well-known mandatory attribute is treat-as-withdraw.
fn check_mandatory(u: &mut Update) {
    let has = |u: &Update, t| u.attribute(t).is_some();
    let reaches = !u.nlri.is_empty() || has(u, attr::MP_REACH_NLRI);
    if !reaches || u.treated_as_withdraw() {
        return;
    }
    for (t, needed, reason) in [
        (attr::ORIGIN, true, "ORIGIN missing"),
        (attr::AS_PATH, true, "AS_PATH missing"),
        (attr::NEXT_HOP, !u.nlri.is_empty(), "NEXT_HOP missing"),
    ] {
        if needed && !has(u, t) {
            issue(u, t, ErrorAction::TreatAsWithdraw, reason);
        }
    }
}

/// Turns every announcement into a withdrawal and drops the attributes,
/// which describe routes that no longer exist.
fn apply_treat_as_withdraw(u: &mut Update) {
    u.withdrawn.append(&mut u.nlri);
    let mut v6: Vec<Ipv6Net> = Vec::new();
    for a in u.attributes.drain(..) {
        match a {
            PathAttribute::MpReach(r) => v6.extend(r.nlri),
            PathAttribute::MpUnreach(w) => v6.extend(w.withdrawn),
            _ => {}
        }
    }
    if !v6.is_empty() {
        u.attributes
            .push(PathAttribute::MpUnreach(MpUnreach { withdrawn: v6 }));
    }
}
