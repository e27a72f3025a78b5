//! Stable ids across reloads: a link, a routing domain and a circuit keep
//! the number they were given for the daemon's life, so a reload that adds
//! or removes one circuit leaves every other circuit's counters, routes and
//! link states where they are.
use std::collections::{BTreeMap, BTreeSet};

use super::{DomainKey, Side};

/// The ids handed out so far.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IdBook {
    links: BTreeMap<Side, u32>,
    domains: BTreeMap<DomainKey, u32>,
    circuits: BTreeMap<String, u32>,
    /// Domain ids are never reused: the destination caches of the kernel
    /// program are keyed by domain, and a fresh id can never match a stale
    /// entry.
    next_domain: u32,
}

impl IdBook {
    /// The link id of `side`: its old one, or the lowest id not in `taken`.
    /// Start `taken` from [`IdBook::held_link_ids`]: a new link then never
    /// takes the id of a link the running plan still has, so a reload can
    /// install every new link before it removes an old one, and put back
    /// the old plan if installing fails.
    pub fn link(&mut self, side: &Side, taken: &mut BTreeSet<u32>, max: u32) -> Option<u32> {
        if let Some(id) = self.links.get(side) {
            taken.insert(*id);
            return Some(*id);
        }
        let id = (0..max).find(|i| !taken.contains(i))?;
        taken.insert(id);
        self.links.insert(side.clone(), id);
        Some(id)
    }

    /// The ids of every link in the book (the running plan's, until
    /// [`IdBook::retain`] forgets the ones a new plan dropped).
    pub fn held_link_ids(&self) -> BTreeSet<u32> {
        self.links.values().copied().collect()
    }

    pub fn has_link(&self, side: &Side) -> bool {
        self.links.contains_key(side)
    }

    pub fn domain(&mut self, key: &DomainKey) -> u32 {
        if let Some(id) = self.domains.get(key) {
            return *id;
        }
        self.next_domain = self.next_domain.max(1);
        let id = self.next_domain;
        self.next_domain += 1;
        self.domains.insert(key.clone(), id);
        id
    }

    /// Circuit ids start at 1 (0 is the Azure side's).
    pub fn circuit(&mut self, name: &str) -> u32 {
        if let Some(id) = self.circuits.get(name) {
            return *id;
        }
        let id = self.circuits.values().max().map_or(1, |m| m + 1);
        self.circuits.insert(name.to_owned(), id);
        id
    }

    /// Forgets what the plan no longer uses (their ids become free for
    /// links; domain ids are never reused).
    pub fn retain(
        &mut self,
        sides: &BTreeSet<&Side>,
        domains: &BTreeSet<&DomainKey>,
        circuits: &BTreeSet<&str>,
    ) {
        self.links.retain(|s, _| sides.contains(s));
        self.domains.retain(|k, _| domains.contains(k));
        self.circuits.retain(|c, _| circuits.contains(c.as_str()));
    }
}
