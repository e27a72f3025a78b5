//! A hash map from prefixes to values, with IPv4 prefixes packed into one
//! `u64` (a full table is a million of them: 16-byte entries hashed in one
//! step instead of 24-byte `IpNet` entries hashed field by field).
use std::net::Ipv4Addr;

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

/// An IPv4 prefix as `address << 8 | length`: ordered as `Ipv4Net` is
/// (address, then length).
pub(crate) fn v4_key(p: Ipv4Net) -> u64 {
    u64::from(u32::from(p.network())) << 8 | u64::from(p.prefix_len())
}

pub(crate) fn v4_prefix(key: u64) -> Ipv4Net {
    Ipv4Net::new(Ipv4Addr::from((key >> 8) as u32), (key & 0xff) as u8)
        .expect("made from a valid prefix")
}

/// Hashed, not ordered: lookups come once per announcement and per route
/// write; foldhash is seeded per process, and what a peer can put in is
/// bounded by its route limit.
#[derive(Debug, Clone)]
pub struct PrefixMap<V> {
    v4: foldhash::HashMap<u64, V>,
    v6: foldhash::HashMap<Ipv6Net, V>,
}

impl<V> Default for PrefixMap<V> {
    fn default() -> Self {
        Self {
            v4: Default::default(),
            v6: Default::default(),
        }
    }
}

impl<V> PrefixMap<V> {
    /// Prefixes are kept as given: callers pass them truncated.
    pub fn get(&self, prefix: &IpNet) -> Option<&V> {
        match prefix {
            IpNet::V4(p) => self.v4.get(&v4_key(*p)),
            IpNet::V6(p) => self.v6.get(p),
        }
    }

    pub fn get_v4(&self, prefix: Ipv4Net) -> Option<&V> {
        self.v4.get(&v4_key(prefix))
    }

    pub fn insert(&mut self, prefix: IpNet, value: V) -> Option<V> {
        match prefix {
            IpNet::V4(p) => self.v4.insert(v4_key(p), value),
            IpNet::V6(p) => self.v6.insert(p, value),
        }
    }

    pub fn insert_v4(&mut self, prefix: Ipv4Net, value: V) -> Option<V> {
        self.v4.insert(v4_key(prefix), value)
    }

    pub fn remove(&mut self, prefix: &IpNet) -> Option<V> {
        match prefix {
            IpNet::V4(p) => self.v4.remove(&v4_key(*p)),
            IpNet::V6(p) => self.v6.remove(p),
        }
    }

    /// Room for `v4` IPv4 and `v6` IPv6 prefixes in all without growing.
    pub fn reserve_total(&mut self, v4: usize, v6: usize) {
        self.v4.reserve(v4.saturating_sub(self.v4.len()));
        self.v6.reserve(v6.saturating_sub(self.v6.len()));
    }

    pub fn len(&self) -> usize {
        self.v4.len() + self.v6.len()
    }

    pub fn is_empty(&self) -> bool {
        self.v4.is_empty() && self.v6.is_empty()
    }

    /// Every prefix, in no particular order.
    pub fn keys(&self) -> impl Iterator<Item = IpNet> + '_ {
        self.v4
            .keys()
            .map(|k| IpNet::V4(v4_prefix(*k)))
            .chain(self.v6.keys().map(|p| IpNet::V6(*p)))
    }

    pub fn iter(&self) -> impl Iterator<Item = (IpNet, &V)> + '_ {
        self.v4
            .iter()
            .map(|(k, v)| (IpNet::V4(v4_prefix(*k)), v))
            .chain(self.v6.iter().map(|(p, v)| (IpNet::V6(*p), v)))
    }

    pub fn retain(&mut self, mut keep: impl FnMut(IpNet, &mut V) -> bool) {
        self.v4.retain(|k, v| keep(IpNet::V4(v4_prefix(*k)), v));
        self.v6.retain(|p, v| keep(IpNet::V6(*p), v));
    }

    /// Empties the map; returns its prefixes.
    pub fn take_keys(&mut self) -> Vec<IpNet> {
        let keys = self.keys().collect();
        *self = Self::default();
        keys
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv4_keys_order_as_prefixes_and_round_trip() {
        let mut ps: Vec<Ipv4Net> = ["10.0.0.0/8", "10.0.0.0/24", "9.255.255.255/32", "0.0.0.0/0"]
            .map(|p| p.parse().unwrap())
            .to_vec();
        let mut keys: Vec<u64> = ps.iter().map(|p| v4_key(*p)).collect();
        ps.sort();
        keys.sort();
        assert_eq!(keys.into_iter().map(v4_prefix).collect::<Vec<_>>(), ps);
    }

    #[test]
    fn both_families() {
        let mut m = PrefixMap::default();
        let a: IpNet = "10.0.0.0/8".parse().unwrap();
        let b: IpNet = "2001:db8::/32".parse().unwrap();
        assert_eq!(m.insert(a, 1), None);
        assert_eq!(m.insert(b, 2), None);
        assert_eq!(m.insert(a, 3), Some(1));
        assert_eq!((m.get(&a), m.get(&b), m.len()), (Some(&3), Some(&2), 2));
        let mut keys: Vec<IpNet> = m.keys().collect();
        keys.sort();
        assert_eq!(keys, [a, b]);
        m.retain(|p, _| p == b);
        assert_eq!(m.take_keys(), [b]);
        assert!(m.is_empty());
    }
}
