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

#[cfg(test)]
mod tests {
    use ipnet::{Ipv4Net, Ipv6Net};

    use super::*;

    /// The subnets and every error line, for the fields under `p`.
    fn subnets<F: AddressFamily>(
        single: Option<&str>,
        primary: Option<&str>,
        secondary: Option<&str>,
    ) -> (Option<(F, F)>, Vec<String>) {
        let mut v = Validator::default();
        let got = link_subnets::<F>(&mut v, "p", single, primary, secondary);
        let errors = match v.finish() {
            Ok(_) => Vec::new(),
            Err(e) => e.0.iter().map(ToString::to_string).collect(),
        };
        (got, errors)
    }

    #[test]
    fn one_peering_prefix_gives_both_links() {
        let (got, errors) = subnets::<Ipv4Net>(Some(" 192.168.110.0/29 "), None, None);
        assert_eq!(errors, Vec::<String>::new());
        let (a, b) = got.unwrap();
        assert_eq!(
            (a.to_string(), b.to_string()),
            ("192.168.110.0/30".into(), "192.168.110.4/30".into())
        );
        let (got, errors) = subnets::<Ipv6Net>(Some("2001:db8:5::/125"), None, None);
        assert_eq!(errors, Vec::<String>::new());
        let (a, b) = got.unwrap();
        assert_eq!(
            (a.to_string(), b.to_string()),
            ("2001:db8:5::/126".into(), "2001:db8:5::4/126".into())
        );
    }

    #[test]
    fn two_link_subnets_are_taken_as_given() {
        let (got, errors) =
            subnets::<Ipv6Net>(None, Some("2001:db8::8/126"), Some("2001:db8::/126"));
        assert_eq!(errors, Vec::<String>::new());
        assert_eq!(
            got,
            Some((
                "2001:db8::8/126".parse().unwrap(),
                "2001:db8::/126".parse().unwrap()
            ))
        );
    }

    #[test]
    fn each_family_names_its_own_lengths() {
        let (got, errors) =
            subnets::<Ipv4Net>(Some("192.168.110.0/29"), Some("192.168.110.0/30"), None);
        assert_eq!(got, None);
        assert_eq!(
            errors,
            [
                "p.peerAddressPrefix: give either peerAddressPrefix (one /29) or primaryPeerAddressPrefix and secondaryPeerAddressPrefix (two /30s), not both"
            ]
        );
        let (_, errors) = subnets::<Ipv6Net>(Some("2001:db8::/125"), None, Some("2001:db8::/126"));
        assert_eq!(
            errors,
            [
                "p.peerAddressPrefix: give either peerAddressPrefix (one /125) or primaryPeerAddressPrefix and secondaryPeerAddressPrefix (two /126s), not both"
            ]
        );

        let (got, errors) = subnets::<Ipv6Net>(None, None, None);
        assert_eq!(got, None);
        assert_eq!(
            errors,
            [
                "p.primaryPeerAddressPrefix: missing; give primaryPeerAddressPrefix and secondaryPeerAddressPrefix (two /126s) or peerAddressPrefix (one /125)",
                "p.secondaryPeerAddressPrefix: missing; give primaryPeerAddressPrefix and secondaryPeerAddressPrefix (two /126s) or peerAddressPrefix (one /125)",
            ]
        );

        let (_, errors) = subnets::<Ipv4Net>(None, Some("192.168.1.0/30"), Some("192.168.1.0/30"));
        assert_eq!(
            errors,
            [
                "p.secondaryPeerAddressPrefix: 192.168.1.0/30 is also the primary /30; the primary and secondary links need two distinct /30s"
            ]
        );
        let (_, errors) =
            subnets::<Ipv6Net>(None, Some("2001:db8::4/126"), Some("2001:db8::4/126"));
        assert_eq!(
            errors,
            [
                "p.secondaryPeerAddressPrefix: 2001:db8::4/126 is also the primary /126; the primary and secondary links need two distinct /126s"
            ]
        );
    }

    #[test]
    fn prefix_errors_name_the_family_and_its_example() {
        let (_, errors) = subnets::<Ipv4Net>(None, Some("2001:db8::/126"), Some("192.168.1.5/30"));
        assert_eq!(
            errors,
            [
                "p.primaryPeerAddressPrefix: \"2001:db8::/126\" is not an IPv4 prefix; expected a /30 such as 192.168.100.128/30",
                "p.secondaryPeerAddressPrefix: 192.168.1.5/30 has host bits set; write the network address 192.168.1.4/30",
            ]
        );
        let (_, errors) = subnets::<Ipv6Net>(Some("192.168.1.0/29"), None, None);
        assert_eq!(
            errors,
            [
                "p.peerAddressPrefix: \"192.168.1.0/29\" is not an IPv6 prefix; expected a /125 such as 2001:db8::/125"
            ]
        );
        let (_, errors) = subnets::<Ipv6Net>(None, Some("2001:db8::/64"), Some("2001:db8::5/126"));
        assert_eq!(
            errors,
            [
                "p.primaryPeerAddressPrefix: 2001:db8::/64 is a /64; a /126 is required",
                "p.secondaryPeerAddressPrefix: 2001:db8::5/126 has host bits set; write the network address 2001:db8::4/126",
            ]
        );
    }

    #[test]
    fn any_prefix_takes_either_family_as_a_network_address() {
        let mut v = Validator::default();
        assert_eq!(
            any_prefix(&mut v, "a", "10.1.0.0/16"),
            Some("10.1.0.0/16".parse().unwrap())
        );
        assert_eq!(
            any_prefix(&mut v, "b", "2001:db8::/48"),
            Some("2001:db8::/48".parse().unwrap())
        );
        assert_eq!(any_prefix(&mut v, "c", "10.1.0.1/16"), None);
        assert_eq!(any_prefix(&mut v, "d", "10.1.0.0"), None);
        let errors: Vec<String> = v
            .finish()
            .unwrap_err()
            .0
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            errors,
            [
                "c: 10.1.0.1/16 has host bits set; write the network address 10.1.0.0/16",
                "d: \"10.1.0.0\" is not an IP prefix; expected e.g. 10.1.0.0/16 or 2001:db8::/48",
            ]
        );
    }
}
