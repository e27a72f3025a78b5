//! What the MSEE advertises on one session (its Adj-RIB-Out): each prefix
//! with the path and communities it goes out with. Two sources feed it: the
//! model (VNets in reach, the services a route filter selects), which wins,
//! and routes learned elsewhere (Global Reach: the other circuit's
//! customer's routes). Changes leave as UPDATE messages: withdrawals of what
//! is gone, announcements grouped by attributes, each message well within
//! BGP's 4096 octets.
use std::{
    collections::{BTreeMap, BTreeSet},
    net::IpAddr,
};

use bgp::wire::{AsSegment, MpReach, Origin, PathAttribute, Update};
use ipnet::IpNet;

/// How a prefix is advertised (after AS 12076, which every path starts with).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Advert {
    /// The path behind AS 12076: empty for Azure's own routes, the other
    /// customer's path for Global Reach.
    pub as_path: Vec<u32>,
    pub communities: Vec<u32>,
}

/// Prefixes per UPDATE: an IPv4 prefix takes at most 5 octets, an IPv6 one
/// 17, and the attributes well under 1000; both stay far below 4096.
const V4_PER_UPDATE: usize = 500;
const V6_PER_UPDATE: usize = 150;

#[derive(Clone, Debug, Default)]
pub struct AdjRibOut {
    /// The session's address family: prefixes of the other are ignored.
    ipv6: bool,
    model: BTreeMap<IpNet, Advert>,
    learned: BTreeMap<IpNet, Advert>,
    /// Prefixes whose advertisement changed since the last delta.
    dirty: BTreeSet<IpNet>,
    /// What was last sent (the peer's view): the delta is against it.
    sent: BTreeMap<IpNet, Advert>,
}

impl AdjRibOut {
    pub fn new(ipv6: bool) -> Self {
        Self {
            ipv6,
            ..Default::default()
        }
    }

    fn ours(&self, prefix: &IpNet) -> bool {
        prefix.addr().is_ipv6() == self.ipv6
    }

    /// What `prefix` is advertised with now.
    pub fn get(&self, prefix: &IpNet) -> Option<&Advert> {
        self.model.get(prefix).or_else(|| self.learned.get(prefix))
    }

    /// Replaces the model's routes; returns whether anything changed.
    pub fn set_model(&mut self, routes: impl IntoIterator<Item = (IpNet, Advert)>) -> bool {
        let new: BTreeMap<IpNet, Advert> =
            routes.into_iter().filter(|(p, _)| self.ours(p)).collect();
        if new == self.model {
            return false;
        }
        let touched: Vec<IpNet> = self.model.keys().chain(new.keys()).copied().collect();
        self.model = new;
        self.dirty.extend(touched);
        true
    }

    /// Sets (or with `None` removes) a learned route.
    pub fn set_learned(&mut self, prefix: IpNet, advert: Option<Advert>) {
        if !self.ours(&prefix) {
            return;
        }
        let changed = match advert {
            Some(a) => self.learned.insert(prefix, a.clone()).as_ref() != Some(&a),
            None => self.learned.remove(&prefix).is_some(),
        };
        if changed {
            self.dirty.insert(prefix);
        }
    }

    /// Every advertised prefix.
    pub fn prefixes(&self) -> BTreeSet<IpNet> {
        self.model
            .keys()
            .chain(self.learned.keys())
            .copied()
            .collect()
    }

    pub fn len(&self) -> usize {
        self.prefixes().len()
    }

    pub fn is_empty(&self) -> bool {
        self.model.is_empty() && self.learned.is_empty()
    }

    pub fn has_changes(&self) -> bool {
        !self.dirty.is_empty()
    }

    /// Everything, as after the session came up (or a route refresh, or a
    /// drain that changes the prepending): the peer's view becomes all of it.
    pub fn full(&mut self, next_hop: IpAddr, prepend: usize) -> Vec<Update> {
        self.dirty.clear();
        self.sent = self
            .prefixes()
            .into_iter()
            .map(|p| (p, self.get(&p).expect("listed").clone()))
            .collect();
        announcements(self.sent.iter(), next_hop, prepend)
    }

    /// What changed since the last delta (or full send): withdrawals, then
    /// announcements.
    pub fn delta(&mut self, next_hop: IpAddr, prepend: usize) -> Vec<Update> {
        let mut gone = Vec::new();
        let mut now = BTreeMap::new();
        for p in std::mem::take(&mut self.dirty) {
            match self.get(&p).cloned() {
                Some(a) => {
                    if self.sent.get(&p) != Some(&a) {
                        self.sent.insert(p, a.clone());
                        now.insert(p, a);
                    }
                }
                None => {
                    if self.sent.remove(&p).is_some() {
                        gone.push(p);
                    }
                }
            }
        }
        let mut out = withdrawals(&gone);
        out.extend(announcements(now.iter(), next_hop, prepend));
        out
    }

    /// The session went down: the peer's view is empty.
    pub fn reset(&mut self) {
        self.sent.clear();
        self.dirty.clear();
    }
}

/// UPDATEs withdrawing `prefixes` (IPv4 in the withdrawn routes field,
/// IPv6 in MP_UNREACH_NLRI).
pub fn withdrawals(prefixes: &[IpNet]) -> Vec<Update> {
    let mut out = Vec::new();
    let v4: Vec<_> = prefixes
        .iter()
        .filter_map(|p| match p {
            IpNet::V4(p) => Some(*p),
            IpNet::V6(_) => None,
        })
        .collect();
    let v6: Vec<_> = prefixes
        .iter()
        .filter_map(|p| match p {
            IpNet::V6(p) => Some(*p),
            IpNet::V4(_) => None,
        })
        .collect();
    for chunk in v4.chunks(V4_PER_UPDATE) {
        out.push(Update {
            withdrawn: chunk.to_vec(),
            ..Default::default()
        });
    }
    for chunk in v6.chunks(V6_PER_UPDATE) {
        out.push(Update {
            attributes: vec![PathAttribute::MpUnreach(bgp::wire::MpUnreach {
                withdrawn: chunk.to_vec(),
            })],
            ..Default::default()
        });
    }
    out
}

/// UPDATEs announcing `routes`, one or more per distinct advertisement:
/// origin IGP, AS 12076 (`1 + prepend` times) then the advert's path, next
/// hop self (`next_hop`'s family picks the prefixes: IPv4 NLRI, or IPv6 in
/// MP_REACH_NLRI), its communities.
pub fn announcements<'a>(
    routes: impl Iterator<Item = (&'a IpNet, &'a Advert)>,
    next_hop: IpAddr,
    prepend: usize,
) -> Vec<Update> {
    let mut by_advert: BTreeMap<&Advert, Vec<IpNet>> = BTreeMap::new();
    for (p, a) in routes {
        if p.addr().is_ipv6() == next_hop.is_ipv6() {
            by_advert.entry(a).or_default().push(*p);
        }
    }
    let mut out = Vec::new();
    for (advert, prefixes) in by_advert {
        let mut path = vec![bgp::MSEE_ASN; 1 + prepend];
        path.extend(&advert.as_path);
        let per = if next_hop.is_ipv6() {
            V6_PER_UPDATE
        } else {
            V4_PER_UPDATE
        };
        for chunk in prefixes.chunks(per) {
            let mut attributes = vec![
                PathAttribute::Origin(Origin::Igp),
                PathAttribute::AsPath(vec![AsSegment::Sequence(path.clone())]),
            ];
            let mut nlri = Vec::new();
            match next_hop {
                IpAddr::V4(nh) => {
                    attributes.push(PathAttribute::NextHop(nh));
                    nlri = chunk
                        .iter()
                        .filter_map(|p| match p {
                            IpNet::V4(p) => Some(*p),
                            IpNet::V6(_) => None,
                        })
                        .collect();
                }
                IpAddr::V6(nh) => attributes.push(PathAttribute::MpReach(MpReach {
                    next_hop: nh,
                    link_local: None,
                    nlri: chunk
                        .iter()
                        .filter_map(|p| match p {
                            IpNet::V6(p) => Some(*p),
                            IpNet::V4(_) => None,
                        })
                        .collect(),
                })),
            }
            if !advert.communities.is_empty() {
                attributes.push(PathAttribute::Communities(advert.communities.clone()));
            }
            out.push(Update {
                attributes,
                nlri,
                ..Default::default()
            });
        }
    }
    out
}

/// Every prefix announced by `updates`.
pub fn announced(updates: &[Update]) -> BTreeSet<IpNet> {
    updates
        .iter()
        .flat_map(|u| {
            u.nlri
                .iter()
                .map(|p| IpNet::V4(*p))
                .chain(u.announced_v6().iter().map(|p| IpNet::V6(*p)))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    fn region(c: u32) -> Advert {
        Advert {
            as_path: vec![],
            communities: vec![c],
        }
    }

    #[test]
    fn deltas_send_what_changed_against_what_the_peer_has() {
        let nh: IpAddr = "192.168.100.130".parse().unwrap();
        let mut out = AdjRibOut::new(false);
        assert!(out.set_model([
            (net("10.1.0.0/16"), region(1)),
            (net("10.2.0.0/16"), region(1)),
            (net("fd00::/48"), region(1)),
        ]));
        assert!(!out.set_model([
            (net("10.1.0.0/16"), region(1)),
            (net("10.2.0.0/16"), region(1))
        ]));
        let all = out.full(nh, 0);
        assert_eq!(all.len(), 1, "one advert, one UPDATE");
        assert_eq!(
            announced(&all),
            [net("10.1.0.0/16"), net("10.2.0.0/16")].into()
        );
        assert!(
            all[0]
                .attributes
                .contains(&PathAttribute::AsPath(vec![AsSegment::Sequence(vec![
                    12076
                ])]))
        );
        assert!(
            all[0]
                .attributes
                .contains(&PathAttribute::Communities(vec![1]))
        );
        // A Global Reach route arrives; a VNet prefix goes.
        out.set_learned(
            net("172.16.0.0/16"),
            Some(Advert {
                as_path: vec![65020],
                communities: vec![],
            }),
        );
        out.set_model([(net("10.1.0.0/16"), region(1))]);
        let d = out.delta(nh, 3);
        assert_eq!(
            d[0].withdrawn,
            ["10.2.0.0/16".parse::<ipnet::Ipv4Net>().unwrap()]
        );
        assert_eq!(announced(&d[1..]), [net("172.16.0.0/16")].into());
        assert!(
            d[1].attributes
                .contains(&PathAttribute::AsPath(vec![AsSegment::Sequence(vec![
                    12076, 12076, 12076, 12076, 65020
                ])]))
        );
        assert!(out.delta(nh, 0).is_empty(), "nothing left");
        // A learned route for a model prefix: the model's wins.
        out.set_learned(net("10.1.0.0/16"), Some(Advert::default()));
        assert!(out.delta(nh, 0).is_empty());
        assert_eq!(out.get(&net("10.1.0.0/16")), Some(&region(1)));
        // After the session went down nothing is withdrawn twice.
        out.reset();
        out.set_learned(net("172.16.0.0/16"), None);
        assert!(out.delta(nh, 0).is_empty());
    }

    #[test]
    fn large_tables_split_into_messages_that_encode() {
        let nh: IpAddr = "192.168.100.130".parse().unwrap();
        let mut out = AdjRibOut::new(false);
        out.set_model((0..2000u32).map(|i| {
            (
                IpNet::V4(ipnet::Ipv4Net::new((0x0a00_0000 | (i << 8)).into(), 24).unwrap()),
                region(7),
            )
        }));
        let all = out.full(nh, 3);
        assert_eq!(all.len(), 4);
        for u in &all {
            bgp::wire::Message::Update(u.clone())
                .encode()
                .expect("within 4096 octets");
        }
        let w = withdrawals(&out.prefixes().into_iter().collect::<Vec<_>>());
        for u in &w {
            bgp::wire::Message::Update(u.clone()).encode().unwrap();
        }
        let v6 = AdjRibOut::new(true);
        assert!(!v6.ours(&net("10.0.0.0/8")));
    }
}
