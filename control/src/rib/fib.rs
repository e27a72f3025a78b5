//! FIB programming: turns best-path changes into dataplane writes.
//!
//! Next-hop groups are deduplicated by member set (links and preferences)
//! and reference-counted across every routing domain; a group is released
//! once no route points at it. A batch is applied make-before-break: every
//! new group is written first, then routes are repointed (one map update
//! each, so a prefix that stays routed is never missing), and only then are
//! groups that lost their last route released.
use std::collections::BTreeSet;

use ipnet::{IpNet, Ipv6Net};
use msee_abi::{GroupMember, MAX_GROUP_MEMBERS, MAX_GROUPS};

use super::prefix_map::{PrefixMap, v4_prefix};

/// The group id a route "out of reach" points at: no group is written for
/// it; the route itself carries `ROUTE_OUT_OF_REACH` (see the dataplane
/// sink), so its frames are dropped and counted as out of reach.
pub const OUT_OF_REACH_GROUP: u32 = MAX_GROUPS - 1;
/// The member that marks [`NextHops::out_of_reach`].
const OUT_OF_REACH_LINK: u32 = u32::MAX;

/// The route value the dataplane holds for a route to `group`.
fn dataplane_route(group: u32) -> msee_abi::Route {
    if group == OUT_OF_REACH_GROUP {
        msee_abi::Route {
            group: 0,
            flags: msee_abi::ROUTE_OUT_OF_REACH,
        }
    } else {
        msee_abi::Route { group, flags: 0 }
    }
}

/// Where FIB writes go: `dataplane::Msee` in the daemon, a recorder in tests.
pub trait FibSink {
    fn set_group(&mut self, id: u32, members: &[GroupMember]) -> anyhow::Result<()>;
    fn upsert_route(&mut self, domain: u32, prefix: IpNet, group: u32) -> anyhow::Result<()>;
    fn remove_route(&mut self, domain: u32, prefix: IpNet) -> anyhow::Result<()>;
    fn set_link_state(&mut self, link: u32, up: bool) -> anyhow::Result<()>;

    /// Installs or repoints each `(domain, prefix, group)`, in order, each
    /// one as [`FibSink::upsert_route`] would. The default makes one call
    /// per route; the dataplane batches them.
    fn upsert_routes(&mut self, routes: &[(u32, IpNet, u32)]) -> Result<(), SinkBatchError> {
        for (i, (domain, prefix, group)) in routes.iter().enumerate() {
            self.upsert_route(*domain, *prefix, *group)
                .map_err(|error| SinkBatchError {
                    applied: i,
                    failed: i,
                    error,
                })?;
        }
        Ok(())
    }

    /// Removes each `(domain, prefix)`, in order.
    fn remove_routes(&mut self, routes: &[(u32, IpNet)]) -> Result<(), SinkBatchError> {
        for (i, (domain, prefix)) in routes.iter().enumerate() {
            self.remove_route(*domain, *prefix)
                .map_err(|error| SinkBatchError {
                    applied: i,
                    failed: i,
                    error,
                })?;
        }
        Ok(())
    }
}

/// A batch of route writes that stopped: its first `applied` entries were
/// written, entry `failed` was refused with `error`, later ones were not
/// tried. (`failed` > `applied` only when the sink refused the batch before
/// writing anything, having found an invalid entry.)
#[derive(Debug)]
pub struct SinkBatchError {
    pub applied: usize,
    pub failed: usize,
    pub error: anyhow::Error,
}

impl From<dataplane::RouteBatchError> for SinkBatchError {
    fn from(e: dataplane::RouteBatchError) -> Self {
        Self {
            applied: e.applied,
            failed: e.failed,
            error: e.into(),
        }
    }
}

impl FibSink for dataplane::Msee {
    fn set_group(&mut self, id: u32, members: &[GroupMember]) -> anyhow::Result<()> {
        Ok(dataplane::Msee::set_group(self, id, members)?)
    }
    fn upsert_route(&mut self, domain: u32, prefix: IpNet, group: u32) -> anyhow::Result<()> {
        Ok(dataplane::Msee::upsert_route(
            self,
            domain,
            prefix,
            dataplane_route(group),
        )?)
    }
    fn remove_route(&mut self, domain: u32, prefix: IpNet) -> anyhow::Result<()> {
        Ok(dataplane::Msee::remove_route(self, domain, prefix)?)
    }
    fn set_link_state(&mut self, link: u32, up: bool) -> anyhow::Result<()> {
        Ok(dataplane::Msee::set_link_state(self, link, up)?)
    }
    fn upsert_routes(&mut self, routes: &[(u32, IpNet, u32)]) -> Result<(), SinkBatchError> {
        let routes: Vec<(u32, IpNet, msee_abi::Route)> = routes
            .iter()
            .map(|&(domain, prefix, group)| (domain, prefix, dataplane_route(group)))
            .collect();
        Ok(dataplane::Msee::upsert_routes(self, &routes)?)
    }
    fn remove_routes(&mut self, routes: &[(u32, IpNet)]) -> Result<(), SinkBatchError> {
        Ok(dataplane::Msee::remove_routes(self, routes)?)
    }
}

/// A next-hop set, the identity of a group: its members as (link,
/// preference), sorted, each once. At most [`MAX_GROUP_MEMBERS`] are kept;
/// `count` says how many there were (a set with more cannot be installed).
/// Inline and `Copy`: a best path is computed per prefix, a million times
/// for a full table, without allocating.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct NextHops {
    count: u16,
    members: [(u32, u32); MAX_GROUP_MEMBERS],
}

impl NextHops {
    /// The set of `members` (in any order, repeats ignored).
    pub fn new(members: &[GroupMember]) -> Self {
        let mut all: Vec<(u32, u32)> = members.iter().map(|m| (m.link, m.preference)).collect();
        all.sort_unstable();
        all.dedup();
        let mut h = Self {
            count: u16::try_from(all.len()).unwrap_or(u16::MAX),
            ..Default::default()
        };
        for (slot, m) in h.members.iter_mut().zip(&all) {
            *slot = *m;
        }
        h
    }

    /// The set of a known destination outside the circuit's reach.
    pub fn out_of_reach() -> Self {
        let mut h = Self {
            count: 1,
            ..Default::default()
        };
        h.members[0] = (OUT_OF_REACH_LINK, 0);
        h
    }

    pub fn is_out_of_reach(&self) -> bool {
        *self == Self::out_of_reach()
    }

    /// Adds a member (kept sorted, repeats ignored).
    pub fn push(&mut self, link: u32, preference: u32) {
        let m = (link, preference);
        let kept = self.kept();
        let Err(at) = self.members[..kept].binary_search(&m) else {
            return;
        };
        self.count = self.count.saturating_add(1);
        if kept < MAX_GROUP_MEMBERS {
            self.members.copy_within(at..kept, at + 1);
            self.members[at] = m;
        }
    }

    fn kept(&self) -> usize {
        usize::from(self.count).min(MAX_GROUP_MEMBERS)
    }

    /// How many members the set has (possibly more than are kept).
    pub fn count(&self) -> usize {
        usize::from(self.count)
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    pub fn members(&self) -> impl ExactSizeIterator<Item = GroupMember> + '_ {
        self.members[..self.kept()]
            .iter()
            .map(|&(link, preference)| GroupMember { link, preference })
    }

    pub fn to_vec(&self) -> Vec<GroupMember> {
        self.members().collect()
    }
}

/// One best-path change: `members` is the new next-hop set of `prefix` in
/// `domain`, or `None` when the prefix is no longer routed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FibChange {
    pub domain: u32,
    pub prefix: IpNet,
    pub members: Option<Vec<GroupMember>>,
}

/// Best-path changes of one routing domain, as the RIB hands them to the
/// FIB in bulk: each prefix with an index into `sets`, its new next-hop set
/// (`None`: no longer routed). Written in this order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ChangeBatch {
    pub changes: Vec<(IpNet, u32)>,
    pub sets: Vec<Option<NextHops>>,
}

impl ChangeBatch {
    pub fn len(&self) -> usize {
        self.changes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }

    /// Each prefix and its new next-hop set.
    pub fn iter(&self) -> impl Iterator<Item = (IpNet, Option<&NextHops>)> + '_ {
        self.changes
            .iter()
            .map(|(p, s)| (*p, self.sets[*s as usize].as_ref()))
    }
}

/// Builds a [`ChangeBatch`], numbering each distinct next-hop set once.
#[derive(Debug, Default)]
pub struct SetTable {
    sets: Vec<Option<NextHops>>,
    index: foldhash::HashMap<Option<NextHops>, u32>,
    /// The set looked up last (a table's prefixes mostly share one).
    last: Option<(Option<NextHops>, u32)>,
}

impl SetTable {
    /// The number of `set`, new or not.
    pub fn number(&mut self, set: Option<NextHops>) -> u32 {
        if let Some((s, n)) = self.last
            && s == set
        {
            return n;
        }
        let n = match self.index.get(&set) {
            Some(n) => *n,
            None => {
                let n = self.sets.len() as u32;
                self.sets.push(set);
                self.index.insert(set, n);
                n
            }
        };
        self.last = Some((set, n));
        n
    }

    pub fn len(&self) -> usize {
        self.sets.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sets.is_empty()
    }

    pub fn into_sets(self) -> Vec<Option<NextHops>> {
        self.sets
    }
}

/// What one batch did to the dataplane.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FibStats {
    pub groups_added: usize,
    pub groups_freed: usize,
    pub routes_upserted: usize,
    pub routes_removed: usize,
}

/// One route write of a batch: `prefix` in `domain` moves from group `old`
/// to `target` (`None`: not routed).
struct Write {
    domain: u32,
    prefix: IpNet,
    old: Option<u32>,
    target: Option<u32>,
}

#[derive(Debug)]
struct Group {
    key: NextHops,
    refs: usize,
}

/// The routes and groups this control plane has installed.
#[derive(Debug)]
pub struct Fib {
    by_key: foldhash::HashMap<NextHops, u32>,
    /// Indexed by group id (ids are below `MAX_GROUPS`, reused lowest first).
    groups: Vec<Option<Group>>,
    group_count: usize,
    /// Released ids, reused lowest first.
    free: BTreeSet<u32>,
    next_id: u32,
    /// Per routing domain (a handful), its routes and their groups.
    domains: Vec<(u32, PrefixMap<u32>)>,
}

impl Default for Fib {
    fn default() -> Self {
        Self::new(0)
    }
}

/// The index of `domain`'s table in `domains`, made if missing.
fn domain_index(domains: &mut Vec<(u32, PrefixMap<u32>)>, domain: u32) -> usize {
    match domains.iter().position(|(d, _)| *d == domain) {
        Some(i) => i,
        None => {
            domains.push((domain, PrefixMap::default()));
            domains.len() - 1
        }
    }
}

impl Fib {
    /// Group ids are allocated from `first_group` upward.
    pub fn new(first_group: u32) -> Self {
        Self {
            by_key: Default::default(),
            groups: Vec::new(),
            group_count: 0,
            free: BTreeSet::new(),
            next_id: first_group,
            domains: Vec::new(),
        }
    }

    fn table(&self, domain: u32) -> Option<&PrefixMap<u32>> {
        self.domains
            .iter()
            .find(|(d, _)| *d == domain)
            .map(|(_, t)| t)
    }

    /// Every prefix installed in `domain`.
    pub fn domain_prefixes(&self, domain: u32) -> Vec<IpNet> {
        self.table(domain)
            .map_or_else(Vec::new, |t| t.keys().collect())
    }

    /// The domains with routes installed.
    pub fn domain_ids(&self) -> Vec<u32> {
        self.domains.iter().map(|(d, _)| *d).collect()
    }

    /// Forgets an emptied domain's table.
    pub fn drop_domain(&mut self, domain: u32) {
        self.domains.retain(|(d, t)| *d != domain || !t.is_empty());
    }

    /// The group a prefix points at, if installed.
    pub fn route(&self, domain: u32, prefix: IpNet) -> Option<u32> {
        self.table(domain)?.get(&prefix.trunc()).copied()
    }

    /// Room for `v4` IPv4 and `v6` IPv6 routes in `domain` in all (e.g. the
    /// route limit of a session that came up), so that a full table does
    /// not grow its map step by step.
    pub fn reserve(&mut self, domain: u32, v4: usize, v6: usize) {
        let i = domain_index(&mut self.domains, domain);
        self.domains[i].1.reserve_total(v4, v6);
    }

    fn group(&self, id: u32) -> Option<&Group> {
        self.groups.get(id as usize)?.as_ref()
    }

    fn group_mut(&mut self, id: u32) -> &mut Group {
        self.groups[id as usize]
            .as_mut()
            .expect("an installed group")
    }

    /// Members of an installed group.
    pub fn group_members(&self, id: u32) -> Option<Vec<GroupMember>> {
        self.group(id).map(|g| g.key.to_vec())
    }

    pub fn group_count(&self) -> usize {
        self.group_count
    }

    pub fn route_count(&self) -> usize {
        self.domains.iter().map(|(_, t)| t.len()).sum()
    }

    /// Takes in a route the dataplane already holds (a previous
    /// instance's, adopted at start), pointing at group `group` with
    /// `members` (`None`: out of reach): the FIB then knows it as if it had
    /// written it, and a batch that gives the prefix the same next hops
    /// writes nothing. Call [`Fib::adopted`] after the last one.
    pub fn adopt(
        &mut self,
        domain: u32,
        prefix: IpNet,
        group: u32,
        members: Option<&[GroupMember]>,
    ) -> anyhow::Result<()> {
        let (id, key) = match members {
            None => (OUT_OF_REACH_GROUP, NextHops::out_of_reach()),
            Some([]) => anyhow::bail!("{prefix} points at group {group}, which has no members"),
            Some(m) => (group, NextHops::new(m)),
        };
        let slot = id as usize;
        if id >= MAX_GROUPS {
            anyhow::bail!("{prefix} points at group {id}, beyond {MAX_GROUPS}");
        }
        if self.groups.len() <= slot {
            self.groups.resize_with(slot + 1, || None);
        }
        match &mut self.groups[slot] {
            Some(g) if g.key == key => g.refs += 1,
            Some(_) => anyhow::bail!("group {id} read back with two member sets"),
            empty => {
                *empty = Some(Group { key, refs: 1 });
                self.by_key.entry(key).or_insert(id);
                if id != OUT_OF_REACH_GROUP {
                    self.group_count += 1;
                    self.next_id = self.next_id.max(id + 1);
                }
            }
        }
        let t = domain_index(&mut self.domains, domain);
        if let Some(old) = self.domains[t].1.insert(prefix.trunc(), id) {
            self.group_mut(old).refs -= 1;
        }
        Ok(())
    }

    /// After the adopted routes: ids below the highest adopted one that no
    /// adopted route uses are free again.
    pub fn adopted(&mut self) {
        self.free = (0..self.next_id)
            .filter(|id| self.group(*id).is_none())
            .collect();
    }

    fn allocate(&mut self) -> anyhow::Result<u32> {
        if let Some(id) = self.free.pop_first() {
            return Ok(id);
        }
        if self.next_id >= OUT_OF_REACH_GROUP {
            anyhow::bail!("next-hop group table full ({MAX_GROUPS} groups)");
        }
        let id = self.next_id;
        self.next_id += 1;
        Ok(id)
    }

    /// The group for `key`, made (written to the sink) if it does not
    /// exist yet; `made` says whether it was.
    fn group_for(
        &mut self,
        sink: &mut dyn FibSink,
        prefix: IpNet,
        key: &NextHops,
        stats: &mut FibStats,
    ) -> anyhow::Result<(u32, bool)> {
        if key.count() > MAX_GROUP_MEMBERS {
            anyhow::bail!(
                "{prefix}: {} next-hop links, at most {MAX_GROUP_MEMBERS}",
                key.count()
            );
        }
        if let Some(id) = self.by_key.get(key) {
            return Ok((*id, false));
        }
        if key.is_out_of_reach() {
            // Nothing to write: the routes carry the flag.
            let id = OUT_OF_REACH_GROUP;
            self.by_key.insert(*key, id);
            let slot = id as usize;
            if self.groups.len() <= slot {
                self.groups.resize_with(slot + 1, || None);
            }
            self.groups[slot] = Some(Group { key: *key, refs: 0 });
            return Ok((id, true));
        }
        let id = self.allocate()?;
        if let Err(e) = sink.set_group(id, &key.to_vec()) {
            self.free.insert(id);
            return Err(e.context(format!("writing next-hop group {id}")));
        }
        self.by_key.insert(*key, id);
        let slot = id as usize;
        if self.groups.len() <= slot {
            self.groups.resize_with(slot + 1, || None);
        }
        self.groups[slot] = Some(Group { key: *key, refs: 0 });
        self.group_count += 1;
        stats.groups_added += 1;
        Ok((id, true))
    }

    /// Applies a batch make-before-break. On a sink error the FIB stays
    /// consistent with what was written; the batch can be retried.
    ///
    /// Route writes go to the sink in the batch's order, in runs of
    /// consecutive upserts or removals ([`FibSink::upsert_routes`],
    /// [`FibSink::remove_routes`]: one batch syscall per run in the
    /// dataplane), after every group the batch needs exists and before any
    /// group it frees is released.
    pub fn apply(
        &mut self,
        sink: &mut dyn FibSink,
        batch: &[FibChange],
    ) -> anyhow::Result<FibStats> {
        let sets: Vec<Option<NextHops>> = batch
            .iter()
            .map(|c| c.members.as_deref().map(NextHops::new))
            .collect();
        self.apply_with(sink, batch.len(), |i| {
            (batch[i].domain, batch[i].prefix, sets[i].as_ref())
        })
    }

    /// [`Fib::apply`] for a [`ChangeBatch`] of `domain`.
    pub fn apply_batch(
        &mut self,
        sink: &mut dyn FibSink,
        domain: u32,
        batch: &ChangeBatch,
    ) -> anyhow::Result<FibStats> {
        self.apply_with(sink, batch.changes.len(), |i| {
            let (prefix, set) = batch.changes[i];
            (domain, prefix, batch.sets[set as usize].as_ref())
        })
    }

    /// The batch is `change(0..n)`: (domain, prefix, new next-hop set).
    fn apply_with<'a>(
        &mut self,
        sink: &mut dyn FibSink,
        n: usize,
        change: impl Fn(usize) -> (u32, IpNet, Option<&'a NextHops>),
    ) -> anyhow::Result<FibStats> {
        let mut stats = FibStats::default();
        // 1. Make: every group the batch needs exists before any route uses
        // it. Consecutive changes mostly share their next hops: the last
        // set and its group are remembered.
        let mut targets: Vec<Option<u32>> = Vec::with_capacity(n);
        // Each group the batch points routes at.
        let mut used: foldhash::HashSet<u32> = Default::default();
        let mut last: Option<(&NextHops, u32)> = None;
        for i in 0..n {
            let (_, prefix, set) = change(i);
            let target = match set {
                Some(key) if !key.is_empty() => match last {
                    Some((k, id)) if k == key => Some(id),
                    _ => {
                        let id = match self.group_for(sink, prefix, key, &mut stats) {
                            Ok((id, _)) => id,
                            Err(e) => {
                                // Groups made for this batch and unused are
                                // released.
                                self.release_unused(used, &mut stats);
                                return Err(e);
                            }
                        };
                        used.insert(id);
                        last = Some((key, id));
                        Some(id)
                    }
                },
                _ => None,
            };
            targets.push(target);
        }
        // 2. Repoint routes. The FIB's own tables change first (so that a
        // prefix twice in the batch sees its first change), then the sink
        // writes; whatever the sink did not apply is rolled back.
        let mut writes: Vec<Write> = Vec::with_capacity(n);
        // Groups that lost a route (the last one noted, to skip hashing).
        let mut touched: foldhash::HashSet<u32> = Default::default();
        let mut touched_last = None;
        let mut table: Option<(u32, usize)> = None;
        for (i, target) in targets.iter().enumerate() {
            let (domain, prefix, _) = change(i);
            let prefix = prefix.trunc();
            let t = match table {
                Some((d, t)) if d == domain => t,
                _ => {
                    let t = domain_index(&mut self.domains, domain);
                    table = Some((domain, t));
                    t
                }
            };
            let routes = &mut self.domains[t].1;
            let old = match target {
                Some(t) => match routes.insert(prefix, *t) {
                    Some(o) if o == *t => continue,
                    old => old,
                },
                None => match routes.remove(&prefix) {
                    None => continue,
                    old => old,
                },
            };
            if let Some(t) = target {
                self.group_mut(*t).refs += 1;
            }
            if let Some(o) = old {
                self.group_mut(o).refs -= 1;
                if touched_last != Some(o) {
                    touched.insert(o);
                    touched_last = Some(o);
                }
            }
            writes.push(Write {
                domain,
                prefix,
                old,
                target: *target,
            });
        }
        let (written, result) = match write_routes(sink, &writes) {
            Ok(()) => (writes.len(), Ok(())),
            Err(e) => {
                // Undo, newest first, what the sink did not write.
                for w in writes[e.applied..].iter().rev() {
                    let t = domain_index(&mut self.domains, w.domain);
                    match w.old {
                        Some(o) => {
                            self.domains[t].1.insert(w.prefix, o);
                            self.group_mut(o).refs += 1;
                        }
                        None => {
                            self.domains[t].1.remove(&w.prefix);
                        }
                    }
                    if let Some(t) = w.target {
                        self.group_mut(t).refs -= 1;
                    }
                }
                let w = &writes[e.failed];
                let what = if w.target.is_some() {
                    "installing"
                } else {
                    "removing"
                };
                let context = format!("{what} {}", w.prefix);
                (e.applied, Err(e.error.context(context)))
            }
        };
        for w in &writes[..written] {
            if w.target.is_some() {
                stats.routes_upserted += 1;
            } else {
                stats.routes_removed += 1;
            }
        }
        // 3. Break: release groups nothing points at any more (including
        // groups made in step 1 and left unused by an error).
        touched.extend(used);
        self.release_unused(touched, &mut stats);
        result.map(|()| stats)
    }

    /// Frees each of `ids` that no route points at any more.
    fn release_unused(&mut self, ids: impl IntoIterator<Item = u32>, stats: &mut FibStats) {
        for id in ids {
            if id == OUT_OF_REACH_GROUP {
                if self.group(id).is_some_and(|g| g.refs == 0) {
                    let g = self.groups[id as usize].take().expect("checked");
                    self.by_key.remove(&g.key);
                }
                continue;
            }
            if self.group(id).is_some_and(|g| g.refs == 0) {
                let g = self.groups[id as usize].take().expect("checked");
                self.by_key.remove(&g.key);
                self.free.insert(id);
                self.group_count -= 1;
                stats.groups_freed += 1;
            }
        }
    }
}

/// Sends `writes` to the sink in order, one call per run of upserts or
/// removals. On error, `applied` and `failed` index `writes`.
fn write_routes(sink: &mut dyn FibSink, writes: &[Write]) -> Result<(), SinkBatchError> {
    let mut start = 0;
    while start < writes.len() {
        let upsert = writes[start].target.is_some();
        let end = writes[start..]
            .iter()
            .position(|w| w.target.is_some() != upsert)
            .map_or(writes.len(), |n| start + n);
        let run = &writes[start..end];
        let r = if upsert {
            let routes: Vec<(u32, IpNet, u32)> = run
                .iter()
                .map(|w| (w.domain, w.prefix, w.target.expect("an upsert")))
                .collect();
            sink.upsert_routes(&routes)
        } else {
            let routes: Vec<(u32, IpNet)> = run.iter().map(|w| (w.domain, w.prefix)).collect();
            sink.remove_routes(&routes)
        };
        r.map_err(|e| SinkBatchError {
            applied: start + e.applied.min(run.len()),
            failed: start + e.failed.min(run.len() - 1),
            error: e.error,
        })?;
        start = end;
    }
    Ok(())
}

/// When the BGP side received UPDATEs and wrote the FIB into the dataplane
/// (CLOCK_MONOTONIC, ns), with counts since the daemon started: the
/// route-install benchmark's clock (issue #4), served by the API's `fib`.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct InstallRecord {
    pub updates: u64,
    pub prefixes_announced: u64,
    pub prefixes_withdrawn: u64,
    pub first_update_ns: Option<u64>,
    pub last_update_ns: Option<u64>,
    /// FIB batches that wrote something, and those that failed.
    pub batches: u64,
    pub failed_batches: u64,
    pub routes_upserted: u64,
    pub routes_removed: u64,
    pub groups_added: u64,
    pub groups_freed: u64,
    pub first_write_ns: Option<u64>,
    /// After the last route write of the last batch that wrote one.
    pub last_write_ns: Option<u64>,
    /// Prefixes whose last write the dataplane refused: where the maps
    /// and the RIBs differ until a retry writes them (0 when in step).
    #[serde(default)]
    pub pending_writes: u64,
    /// Rounds of retries of refused writes.
    #[serde(default)]
    pub write_retries: u64,
    /// Why the last refused write was refused (cleared once in step).
    #[serde(default)]
    pub last_write_error: Option<String>,
}

impl InstallRecord {
    /// An UPDATE reached the RIB.
    pub fn update_received(&mut self, update: &bgp::wire::Update) {
        let now = msee_sys::monotonic_ns();
        self.first_update_ns.get_or_insert(now);
        self.last_update_ns = Some(now);
        self.updates += 1;
        self.prefixes_announced += (update.nlri.len() + update.announced_v6().len()) as u64;
        self.prefixes_withdrawn += (update.withdrawn.len() + update.withdrawn_v6().len()) as u64;
    }

    /// A FIB batch was applied (or failed, having written part of it).
    pub fn batch_applied(&mut self, result: &anyhow::Result<FibStats>) {
        let Ok(stats) = result else {
            self.failed_batches += 1;
            return;
        };
        self.groups_added += stats.groups_added as u64;
        self.groups_freed += stats.groups_freed as u64;
        if stats.routes_upserted + stats.routes_removed == 0 {
            return;
        }
        let now = msee_sys::monotonic_ns();
        self.first_write_ns.get_or_insert(now);
        self.last_write_ns = Some(now);
        self.batches += 1;
        self.routes_upserted += stats.routes_upserted as u64;
        self.routes_removed += stats.routes_removed as u64;
    }
}

/// Best-path changes waiting for the FIB. The daemon adds each UPDATE's
/// changed prefixes here and writes them when no more UPDATEs are queued
/// (or [`PendingChanges::LIMIT`] prefixes wait): a table that arrives in
/// thousands of UPDATEs is then written in a few large batches, each in
/// address order. The kernel's LPM trie takes an insert in address order
/// after the previous one two to three times faster than a random one (the
/// walk down the trie is still in cache; see BENCHMARKS.md, "through the
/// dataplane API"). A lone UPDATE is written at once, as before.
///
/// Each change comes with the prefix's best path as it was right after its
/// UPDATE (computed then, while the RIB's entries are in cache); a prefix
/// changed again keeps its last. Whoever writes other RIB changes to the
/// FIB must first write what waits here, before changing the RIB (the
/// waiting best paths are those of the RIB as the UPDATEs left it).
#[derive(Debug, Default)]
pub struct PendingChanges {
    by_rib: Vec<RibPending>,
    len: usize,
}

/// Bits of a pending IPv4 change's key that hold its arrival position.
const POSITION_BITS: u32 = 26;
const POSITION_MASK: u64 = (1 << POSITION_BITS) - 1;

#[derive(Debug, Default)]
struct RibPending {
    /// IPv4 changes as `address << 32 | length << 26 | position`: sorted,
    /// they come in address order and, per prefix, in arrival order.
    v4: Vec<u64>,
    /// Per position: the number of the change's next-hop set.
    v4_sets: Vec<u32>,
    /// IPv6 changes: prefix, arrival position, set number.
    v6: Vec<(Ipv6Net, u32, u32)>,
    sets: SetTable,
}

impl RibPending {
    fn add(&mut self, prefix: IpNet, set: Option<NextHops>) {
        let n = self.sets.number(set);
        match prefix {
            IpNet::V4(p) => {
                if self.v4.len() > POSITION_MASK as usize {
                    self.compact_v4();
                }
                let pos = self.v4_sets.len() as u64;
                let p = p.trunc();
                let key = (u64::from(u32::from(p.network())) << 32)
                    | (u64::from(p.prefix_len()) << POSITION_BITS)
                    | pos;
                self.v4.push(key);
                self.v4_sets.push(n);
            }
            IpNet::V6(p) => {
                let pos = self.v6.len() as u32;
                self.v6.push((p.trunc(), pos, n));
            }
        }
    }

    /// Sorts the IPv4 changes and keeps each prefix's last.
    fn compact_v4(&mut self) {
        self.v4.sort_unstable();
        let mut sets = Vec::with_capacity(self.v4.len());
        let mut kept = 0;
        for i in 0..self.v4.len() {
            let key = self.v4[i];
            if self
                .v4
                .get(i + 1)
                .is_some_and(|next| next >> POSITION_BITS == key >> POSITION_BITS)
            {
                continue;
            }
            sets.push(self.v4_sets[(key & POSITION_MASK) as usize]);
            self.v4[kept] = (key & !POSITION_MASK) | kept as u64;
            kept += 1;
        }
        self.v4.truncate(kept);
        self.v4_sets = sets;
    }

    fn take(&mut self) -> ChangeBatch {
        self.compact_v4();
        let mut changes: Vec<(IpNet, u32)> = Vec::with_capacity(self.v4.len() + self.v6.len());
        changes.extend(self.v4.iter().zip(&self.v4_sets).map(|(key, set)| {
            // address << 32 | length << 26 back to address << 8 | length.
            let k = ((key >> 32) << 8) | ((key >> POSITION_BITS) & 0x3f);
            (IpNet::V4(v4_prefix(k)), *set)
        }));
        self.v6.sort_unstable_by_key(|(p, pos, _)| (*p, *pos));
        for (i, (p, _, set)) in self.v6.iter().enumerate() {
            if self.v6.get(i + 1).is_none_or(|next| next.0 != *p) {
                changes.push((IpNet::V6(*p), *set));
            }
        }
        let sets = std::mem::take(&mut self.sets).into_sets();
        *self = Self::default();
        ChangeBatch { changes, sets }
    }

    fn is_empty(&self) -> bool {
        self.v4.is_empty() && self.v6.is_empty()
    }
}

impl PendingChanges {
    /// At most this many prefixes wait (a batch this size keeps the main
    /// loop busy for a fraction of a second at a million routes).
    pub const LIMIT: usize = 1 << 18;

    /// Changes of RIB `rib`: each prefix with its best path now.
    pub fn add(
        &mut self,
        rib: usize,
        changed: impl IntoIterator<Item = (IpNet, Option<NextHops>)>,
    ) {
        if self.by_rib.len() <= rib {
            self.by_rib.resize_with(rib + 1, Default::default);
        }
        let r = &mut self.by_rib[rib];
        for (prefix, set) in changed {
            r.add(prefix, set);
            self.len += 1;
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn is_full(&self) -> bool {
        self.len >= Self::LIMIT
    }

    /// Everything pending, per RIB index: each prefix once, with its last
    /// best path, in address order (IPv4 first).
    pub fn take(&mut self) -> Vec<(usize, ChangeBatch)> {
        self.len = 0;
        self.by_rib
            .iter_mut()
            .enumerate()
            .filter(|(_, r)| !r.is_empty())
            .map(|(rib, r)| (rib, r.take()))
            .collect()
    }
}
