//! The customer's side of the BGP sessions: ASNs and the MD5 key.

use super::errors::Validator;
use crate::model::MICROSOFT_ASN;

/// ASNs Azure reserves for itself.
pub const RESERVED_ASNS: std::ops::RangeInclusive<u32> = 65515..=65520;
/// Longest TCP MD5 key the kernel accepts (TCP_MD5SIG_MAXKEYLEN).
pub const MAX_SHARED_KEY_LEN: usize = 80;

/// A customer ASN (`peerASN`, `customerASN`).
pub(super) fn asn(v: &mut Validator, path: &str, asn: u32) {
    let msg = if asn == 0 {
        "0 is not a valid ASN; use a 2- or 4-byte ASN from 1 to 4294967294".to_string()
    } else if asn == 23456 {
        "23456 is AS_TRANS (RFC 6793), not a real ASN; use your 4-byte ASN directly".to_string()
    } else if asn == MICROSOFT_ASN {
        "12076 is Microsoft's ASN (the MSEE side of every peering); use your own ASN".to_string()
    } else if RESERVED_ASNS.contains(&asn) {
        format!("{asn} is reserved by Azure (65515-65520); use another public or private ASN")
    } else if asn == u32::MAX {
        "4294967295 is reserved (RFC 7300); use a 2- or 4-byte ASN from 1 to 4294967294".to_string()
    } else {
        return;
    };
    v.err(path, msg);
}

/// The peering's `sharedKey`, if any: it must fit the kernel's TCP MD5 key.
pub(super) fn shared_key(v: &mut Validator, pp: &str, key: Option<&str>) {
    if let Some(key) = key
        && (key.is_empty()
            || key.len() > MAX_SHARED_KEY_LEN
            || !key.bytes().all(|b| b.is_ascii_graphic()))
    {
        v.err(
            format!("{pp}.sharedKey"),
            format!("the MD5 key must be 1 to {MAX_SHARED_KEY_LEN} printable ASCII characters without spaces"),
        );
    }
}
