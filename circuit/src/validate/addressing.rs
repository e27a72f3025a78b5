//! Prefixes as written in the file, and the peering's link subnets: the
//! same rules for IPv4 and IPv6, over [`AddressFamily`].

use std::fmt;

use ipnet::IpNet;

use super::errors::Validator;
use super::family::AddressFamily;

/// A prefix of family `F`, exactly `/len`, written as its network address.
pub(super) fn exact_prefix<F: AddressFamily>(
    v: &mut Validator,
    path: &str,
    text: &str,
    len: u8,
) -> Option<F> {
    let Ok(net) = text.trim().parse::<F>() else {
        v.err(
            path,
            format!(
                "{text:?} is not an {} prefix; expected a /{len} such as {}/{len}",
                F::NAME,
                F::EXAMPLE
            ),
        );
        return None;
    };
    if net.prefix_len() != len {
        v.err(
            path,
            format!("{net} is a /{}; a /{len} is required", net.prefix_len()),
        );
        return None;
    }
    if net.has_host_bits() {
        v.err(path, host_bits_set(net, net.trunc()));
        return None;
    }
    Some(net)
}

/// An IPv4 or IPv6 prefix of any length, written as its network address.
pub(super) fn any_prefix(v: &mut Validator, path: &str, text: &str) -> Option<IpNet> {
    match text.trim().parse::<IpNet>() {
        Ok(n) if n.addr() == n.network() => Some(n),
        Ok(n) => {
            v.err(path, host_bits_set(n, n.trunc()));
            None
        }
        Err(_) => {
            v.err(
                path,
                format!("{text:?} is not an IP prefix; expected e.g. 10.1.0.0/16 or 2001:db8::/48"),
            );
            None
        }
    }
}

fn host_bits_set(net: impl fmt::Display, network: impl fmt::Display) -> String {
    format!("{net} has host bits set; write the network address {network}")
}

/// The primary and secondary link subnets of one family, under `base`:
/// one `peerAddressPrefix` (a /29 or /125) cut in two, or two given apart
/// (/30s or /126s).
pub(super) fn link_subnets<F: AddressFamily>(
    v: &mut Validator,
    base: &str,
    single: Option<&str>,
    primary: Option<&str>,
    secondary: Option<&str>,
) -> Option<(F, F)> {
    let (pair, link) = (F::PEERING_PREFIX_LEN, F::LINK_PREFIX_LEN);
    match (single, primary, secondary) {
        (Some(_), Some(_), _) | (Some(_), _, Some(_)) => {
            v.err(
                format!("{base}.peerAddressPrefix"),
                format!("give either peerAddressPrefix (one /{pair}) or primaryPeerAddressPrefix and secondaryPeerAddressPrefix (two /{link}s), not both"),
            );
            None
        }
        (Some(text), None, None) => {
            exact_prefix::<F>(v, &format!("{base}.peerAddressPrefix"), text, pair)
                .map(|n| n.halves().expect("a /29 or /125 splits in two"))
        }
        (None, primary, secondary) => {
            let mut get = |field: &str, text: Option<&str>| match text {
                None => {
                    v.err(
                        format!("{base}.{field}"),
                        format!("missing; give primaryPeerAddressPrefix and secondaryPeerAddressPrefix (two /{link}s) or peerAddressPrefix (one /{pair})"),
                    );
                    None
                }
                Some(t) => exact_prefix::<F>(v, &format!("{base}.{field}"), t, link),
            };
            let a = get("primaryPeerAddressPrefix", primary);
            let b = get("secondaryPeerAddressPrefix", secondary);
            match (a, b) {
                (Some(a), Some(b)) if a == b => {
                    v.err(
                        format!("{base}.secondaryPeerAddressPrefix"),
                        format!("{b} is also the primary /{link}; the primary and secondary links need two distinct /{link}s"),
                    );
                    None
                }
                (Some(a), Some(b)) => Some((a, b)),
                _ => None,
            }
        }
    }
}
