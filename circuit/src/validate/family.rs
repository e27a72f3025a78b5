//! What the checks need to know of an address family, so that each
//! addressing rule is written once for IPv4 and IPv6.
//!
//! `ipnet` gives both prefix types the same methods but no trait over them,
//! hence this small one.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use crate::model::LinkAddresses;

pub(super) trait AddressFamily:
    Copy + Eq + fmt::Debug + fmt::Display + FromStr + Into<IpNet>
{
    type Addr;

    /// The family's name in messages.
    const NAME: &'static str;
    /// A network address shown in messages as an example.
    const EXAMPLE: &'static str;
    /// The one prefix both links of a peering are cut from: a /29 or /125.
    const PEERING_PREFIX_LEN: u8;
    /// One link's subnet: a /30 or /126.
    const LINK_PREFIX_LEN: u8;

    fn prefix_len(&self) -> u8;
    /// The address as written is not the network address.
    fn has_host_bits(&self) -> bool;
    /// The network the prefix names, host bits cleared.
    fn trunc(&self) -> Self;
    /// The two prefixes one bit longer that make up this one (a /29 into
    /// two /30s, a /125 into two /126s); `None` for a host route.
    fn halves(&self) -> Option<(Self, Self)>;
    /// A link's subnet with its first usable address (the customer's) and
    /// second (the MSEE's).
    fn link_addresses(self) -> LinkAddresses<Self, Self::Addr>;
    /// This family's prefix, if `net` is one.
    fn from_ip_net(net: IpNet) -> Option<Self>;
    /// Why a prefix other than the default route is not public (private,
    /// link-local, multicast...), or `None` if it is.
    fn special_use(&self) -> Option<String>;

    /// Why the prefix cannot be advertised on the Internet, or `None`.
    fn non_public(&self) -> Option<String> {
        if self.prefix_len() == 0 {
            Some("the default route".to_string())
        } else {
            self.special_use()
        }
    }
}

/// The name of the family `net` belongs to.
pub(super) fn family_name(net: &IpNet) -> &'static str {
    match net {
        IpNet::V4(_) => Ipv4Net::NAME,
        IpNet::V6(_) => Ipv6Net::NAME,
    }
}

impl AddressFamily for Ipv4Net {
    type Addr = Ipv4Addr;
    const NAME: &'static str = "IPv4";
    const EXAMPLE: &'static str = "192.168.100.128";
    const PEERING_PREFIX_LEN: u8 = 29;
    const LINK_PREFIX_LEN: u8 = 30;

    fn prefix_len(&self) -> u8 {
        Ipv4Net::prefix_len(self)
    }

    fn has_host_bits(&self) -> bool {
        self.addr() != self.network()
    }

    fn trunc(&self) -> Self {
        Ipv4Net::trunc(self)
    }

    fn halves(&self) -> Option<(Self, Self)> {
        let mut halves = self.subnets(self.prefix_len().checked_add(1)?).ok()?;
        Some((halves.next()?, halves.next()?))
    }

    fn link_addresses(self) -> LinkAddresses<Self, Ipv4Addr> {
        LinkAddresses::from_v4(self)
    }

    fn from_ip_net(net: IpNet) -> Option<Self> {
        match net {
            IpNet::V4(n) => Some(n),
            IpNet::V6(_) => None,
        }
    }

    fn special_use(&self) -> Option<String> {
        let net = |a: [u8; 4], l: u8| Ipv4Net::new(Ipv4Addr::from(a), l).expect("valid");
        let table = [
            (net([10, 0, 0, 0], 8), "private (RFC 1918)"),
            (net([172, 16, 0, 0], 12), "private (RFC 1918)"),
            (net([192, 168, 0, 0], 16), "private (RFC 1918)"),
            (net([100, 64, 0, 0], 10), "shared address space (RFC 6598)"),
            (net([127, 0, 0, 0], 8), "loopback"),
            (net([169, 254, 0, 0], 16), "link-local"),
            (net([224, 0, 0, 0], 4), "multicast"),
            (net([0, 0, 0, 0], 8), "\"this network\" (RFC 1122)"),
        ];
        for (range, why) in table {
            if range.contains(self) {
                return Some(why.to_string());
            }
            if self.contains(&range) {
                return Some(format!("covering {range}, which is {why}"));
            }
        }
        None
    }
}

impl AddressFamily for Ipv6Net {
    type Addr = Ipv6Addr;
    const NAME: &'static str = "IPv6";
    const EXAMPLE: &'static str = "2001:db8::";
    const PEERING_PREFIX_LEN: u8 = 125;
    const LINK_PREFIX_LEN: u8 = 126;

    fn prefix_len(&self) -> u8 {
        Ipv6Net::prefix_len(self)
    }

    fn has_host_bits(&self) -> bool {
        self.addr() != self.network()
    }

    fn trunc(&self) -> Self {
        Ipv6Net::trunc(self)
    }

    fn halves(&self) -> Option<(Self, Self)> {
        let mut halves = self.subnets(self.prefix_len().checked_add(1)?).ok()?;
        Some((halves.next()?, halves.next()?))
    }

    fn link_addresses(self) -> LinkAddresses<Self, Ipv6Addr> {
        LinkAddresses::from_v6(self)
    }

    fn from_ip_net(net: IpNet) -> Option<Self> {
        match net {
            IpNet::V6(n) => Some(n),
            IpNet::V4(_) => None,
        }
    }

    // Judged by the network address alone (a prefix covering one of these
    // ranges from outside it is not refused).
    fn special_use(&self) -> Option<String> {
        let seg0 = self.network().segments()[0];
        if seg0 & 0xfe00 == 0xfc00 {
            Some("a unique local address (RFC 4193)".to_string())
        } else if seg0 & 0xffc0 == 0xfe80 {
            Some("link-local".to_string())
        } else if seg0 & 0xff00 == 0xff00 {
            Some("multicast".to_string())
        } else if self.network() == Ipv6Addr::LOCALHOST {
            Some("loopback".to_string())
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(s: &str) -> Ipv4Net {
        s.parse().unwrap()
    }

    fn v6(s: &str) -> Ipv6Net {
        s.parse().unwrap()
    }

    #[test]
    fn the_peering_prefix_splits_into_two_link_subnets() {
        assert_eq!(
            v4("192.168.100.128/29").halves(),
            Some((v4("192.168.100.128/30"), v4("192.168.100.132/30")))
        );
        assert_eq!(
            v6("2001:db8:5::/125").halves(),
            Some((v6("2001:db8:5::/126"), v6("2001:db8:5::4/126")))
        );
        assert_eq!(
            v4("10.0.0.0/8").halves(),
            Some((v4("10.0.0.0/9"), v4("10.128.0.0/9")))
        );
        fn lengths_agree<F: AddressFamily>(example: F) {
            assert_eq!(example.prefix_len(), F::PEERING_PREFIX_LEN);
            let (a, b) = example.halves().unwrap();
            assert_eq!(a.prefix_len(), F::LINK_PREFIX_LEN);
            assert_eq!(b.prefix_len(), F::LINK_PREFIX_LEN);
            assert_ne!(a, b);
        }
        lengths_agree(v4("192.168.100.128/29"));
        lengths_agree(v6("2001:db8::/125"));
    }

    #[test]
    fn a_host_route_has_no_halves() {
        assert_eq!(v4("192.0.2.1/32").halves(), None);
        assert_eq!(v6("2001:db8::1/128").halves(), None);
    }

    #[test]
    fn the_customer_takes_the_first_usable_address_and_the_msee_the_second() {
        let a = v4("192.168.100.132/30").link_addresses();
        assert_eq!(a.subnet, v4("192.168.100.132/30"));
        assert_eq!(a.customer, "192.168.100.133".parse::<Ipv4Addr>().unwrap());
        assert_eq!(a.msee, "192.168.100.134".parse::<Ipv4Addr>().unwrap());
        let a = v6("2001:db8:100::4/126").link_addresses();
        assert_eq!(a.customer, "2001:db8:100::5".parse::<Ipv6Addr>().unwrap());
        assert_eq!(a.msee, "2001:db8:100::6".parse::<Ipv6Addr>().unwrap());
    }

    #[test]
    fn host_bits_and_trunc() {
        for (text, host_bits, network) in [
            ("192.168.100.133/30", true, "192.168.100.132/30"),
            ("192.168.100.132/30", false, "192.168.100.132/30"),
        ] {
            assert_eq!(v4(text).has_host_bits(), host_bits, "{text}");
            assert_eq!(AddressFamily::trunc(&v4(text)), v4(network));
        }
        for (text, host_bits, network) in [
            ("2001:db8::5/126", true, "2001:db8::4/126"),
            ("2001:db8::4/126", false, "2001:db8::4/126"),
        ] {
            assert_eq!(v6(text).has_host_bits(), host_bits, "{text}");
            assert_eq!(AddressFamily::trunc(&v6(text)), v6(network));
        }
    }

    #[test]
    fn the_example_is_a_network_address_of_its_family() {
        fn check<F: AddressFamily>() {
            let text = format!("{}/{}", F::EXAMPLE, F::PEERING_PREFIX_LEN);
            let Ok(net) = text.parse::<F>() else {
                panic!("{text} does not parse as {}", F::NAME);
            };
            assert!(!net.has_host_bits(), "{text}");
        }
        check::<Ipv4Net>();
        check::<Ipv6Net>();
    }

    #[test]
    fn an_ip_net_is_taken_by_its_own_family_only() {
        let four: IpNet = "198.51.100.0/24".parse().unwrap();
        let six: IpNet = "2001:db8::/32".parse().unwrap();
        assert_eq!(Ipv4Net::from_ip_net(four), Some(v4("198.51.100.0/24")));
        assert_eq!(Ipv4Net::from_ip_net(six), None);
        assert_eq!(Ipv6Net::from_ip_net(six), Some(v6("2001:db8::/32")));
        assert_eq!(Ipv6Net::from_ip_net(four), None);
        assert_eq!(family_name(&four), "IPv4");
        assert_eq!(family_name(&six), "IPv6");
    }

    #[test]
    fn non_public_prefixes_say_why() {
        for (text, why) in [
            ("0.0.0.0/0", Some("the default route")),
            ("10.1.0.0/16", Some("private (RFC 1918)")),
            ("100.64.0.0/10", Some("shared address space (RFC 6598)")),
            ("169.254.1.0/24", Some("link-local")),
            ("239.0.0.0/8", Some("multicast")),
            (
                "8.0.0.0/6",
                Some("covering 10.0.0.0/8, which is private (RFC 1918)"),
            ),
            ("198.51.100.0/24", None),
        ] {
            assert_eq!(v4(text).non_public().as_deref(), why, "{text}");
        }
        for (text, why) in [
            ("::/0", Some("the default route")),
            ("fd12:3456::/48", Some("a unique local address (RFC 4193)")),
            ("fe80::/64", Some("link-local")),
            ("ff02::/16", Some("multicast")),
            ("::1/128", Some("loopback")),
            ("2001:db8::/32", None),
            // by the network address: fc00::/6 starts in fc00::/7
            ("fc00::/6", Some("a unique local address (RFC 4193)")),
        ] {
            assert_eq!(v6(text).non_public().as_deref(), why, "{text}");
        }
    }
}
