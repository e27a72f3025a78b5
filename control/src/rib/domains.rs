//! Routing domains at run time: which peerings' RIBs feed each domain, the
//! routes the model gives it (which win over learned ones), and each
//! prefix's best next hops there. The plan says what a domain holds
//! ([`crate::estate::DomainSpec`]); this keeps it answerable per prefix, a
//! million times for a full table, without allocating.
use std::collections::{BTreeMap, BTreeSet};

use ipnet::IpNet;

use super::{NextHops, PrefixMap, Rib};
use crate::estate::{DomainSpec, PeeringRef, StaticTarget};

#[derive(Debug)]
pub struct DomainRt {
    pub id: u32,
    /// RIB slots whose customers' routes the domain holds.
    pub sources: Vec<usize>,
    /// Routes from the model and `--route`.
    pub statics: PrefixMap<NextHops>,
}

/// The domains of a plan, by slot (dense, for batching).
#[derive(Debug, Default)]
pub struct Domains {
    pub slots: Vec<DomainRt>,
    /// RIB slot -> the domain slots it feeds.
    feeds: BTreeMap<usize, Vec<usize>>,
}

fn static_hops(target: &StaticTarget) -> NextHops {
    match target {
        StaticTarget::Links(links) => {
            let mut h = NextHops::default();
            for l in links {
                h.push(*l, 0);
            }
            h
        }
        StaticTarget::OutOfReach => NextHops::out_of_reach(),
    }
}

impl Domains {
    /// `rib_of` gives the RIB slot of a peering (`None`: not run here).
    pub fn new(specs: &[DomainSpec], rib_of: impl Fn(&PeeringRef) -> Option<usize>) -> Self {
        let mut d = Self::default();
        for spec in specs {
            let slot = d.slots.len();
            let mut statics = PrefixMap::default();
            for (prefix, target) in &spec.statics {
                statics.insert(*prefix, static_hops(target));
            }
            let sources: Vec<usize> = spec.key.learned.iter().filter_map(&rib_of).collect();
            for r in &sources {
                d.feeds.entry(*r).or_default().push(slot);
            }
            d.slots.push(DomainRt {
                id: spec.id,
                sources,
                statics,
            });
        }
        d
    }

    pub fn slot(&self, id: u32) -> Option<usize> {
        self.slots.iter().position(|d| d.id == id)
    }

    pub fn id(&self, slot: usize) -> u32 {
        self.slots[slot].id
    }

    /// The domain slots RIB `rib` feeds.
    pub fn fed_by(&self, rib: usize) -> &[usize] {
        self.feeds.get(&rib).map_or(&[], Vec::as_slice)
    }

    /// `prefix`'s next hops in domain `slot`: the model's route if it has
    /// one, else every link of every feeding RIB that has a path.
    pub fn best(&self, ribs: &[Option<Rib>], slot: usize, prefix: IpNet) -> Option<NextHops> {
        let d = &self.slots[slot];
        if let Some(s) = d.statics.get(&prefix.trunc()) {
            return Some(*s);
        }
        let mut hops = NextHops::default();
        for r in &d.sources {
            if let Some(rib) = &ribs[*r] {
                rib.add_hops(prefix, &mut hops);
            }
        }
        (!hops.is_empty()).then_some(hops)
    }

    /// Every prefix domain `slot` routes (to rebuild it whole).
    pub fn prefixes(&self, ribs: &[Option<Rib>], slot: usize) -> BTreeSet<IpNet> {
        let d = &self.slots[slot];
        let mut out: BTreeSet<IpNet> = d.statics.keys().collect();
        for r in &d.sources {
            if let Some(rib) = &ribs[*r] {
                out.extend(rib.routes_prefixes());
            }
        }
        out
    }
}
