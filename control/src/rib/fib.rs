//! FIB programming: turns best-path changes into dataplane writes.
//!
//! Next-hop groups are deduplicated by member set (links and preferences)
//! and reference-counted across every routing domain; a group is released
//! once no route points at it. A batch is applied make-before-break: every
//! new group is written first, then routes are repointed (one map update
//! each, so a prefix that stays routed is never missing), and only then are
//! groups that lost their last route released.
use std::collections::{BTreeMap, BTreeSet, btree_map::Entry};

use ipnet::IpNet;
use msee_abi::{GroupMember, MAX_GROUP_MEMBERS, MAX_GROUPS};

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
            msee_abi::Route { group, flags: 0 },
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
            .map(|&(domain, prefix, group)| (domain, prefix, msee_abi::Route { group, flags: 0 }))
            .collect();
        Ok(dataplane::Msee::upsert_routes(self, &routes)?)
    }
    fn remove_routes(&mut self, routes: &[(u32, IpNet)]) -> Result<(), SinkBatchError> {
        Ok(dataplane::Msee::remove_routes(self, routes)?)
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

/// What one batch did to the dataplane.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FibStats {
    pub groups_added: usize,
    pub groups_freed: usize,
    pub routes_upserted: usize,
    pub routes_removed: usize,
}

/// One route write of a batch: `batch[change]`'s prefix moves from group
/// `old` to `target` (`None`: not routed).
struct Write {
    change: usize,
    old: Option<u32>,
    target: Option<u32>,
}

/// A group's identity: its members as (link, preference), sorted by link.
type GroupKey = Vec<(u32, u32)>;

fn group_key(members: &[GroupMember]) -> GroupKey {
    let mut k: GroupKey = members.iter().map(|m| (m.link, m.preference)).collect();
    k.sort_unstable();
    k.dedup();
    k
}

#[derive(Debug)]
struct Group {
    key: GroupKey,
    refs: usize,
}

/// The routes and groups this control plane has installed.
#[derive(Debug)]
pub struct Fib {
    by_key: foldhash::HashMap<GroupKey, u32>,
    groups: BTreeMap<u32, Group>,
    /// Released ids, reused lowest first.
    free: BTreeSet<u32>,
    next_id: u32,
    /// Ordered: batches come in address order (see [`PendingChanges`]), and
    /// walking a B-tree in order stays in cache where hashing would not.
    routes: BTreeMap<(u32, IpNet), u32>,
}

impl Default for Fib {
    fn default() -> Self {
        Self::new(0)
    }
}

impl Fib {
    /// Group ids are allocated from `first_group` upward.
    pub fn new(first_group: u32) -> Self {
        Self {
            by_key: Default::default(),
            groups: BTreeMap::new(),
            free: BTreeSet::new(),
            next_id: first_group,
            routes: Default::default(),
        }
    }

    /// The group a prefix points at, if installed.
    pub fn route(&self, domain: u32, prefix: IpNet) -> Option<u32> {
        self.routes.get(&(domain, prefix)).copied()
    }

    /// Members of an installed group.
    pub fn group_members(&self, id: u32) -> Option<Vec<GroupMember>> {
        self.groups.get(&id).map(|g| {
            g.key
                .iter()
                .map(|&(link, preference)| GroupMember { link, preference })
                .collect()
        })
    }

    pub fn group_count(&self) -> usize {
        self.groups.len()
    }

    pub fn route_count(&self) -> usize {
        self.routes.len()
    }

    fn allocate(&mut self) -> anyhow::Result<u32> {
        if let Some(id) = self.free.pop_first() {
            return Ok(id);
        }
        if self.next_id >= MAX_GROUPS {
            anyhow::bail!("next-hop group table full ({MAX_GROUPS} groups)");
        }
        let id = self.next_id;
        self.next_id += 1;
        Ok(id)
    }

    /// The group for `members`, made (written to the sink) if it does not
    /// exist yet.
    fn group_for(
        &mut self,
        sink: &mut dyn FibSink,
        prefix: IpNet,
        members: &[GroupMember],
        stats: &mut FibStats,
    ) -> anyhow::Result<u32> {
        let key = group_key(members);
        if key.len() > MAX_GROUP_MEMBERS {
            anyhow::bail!(
                "{prefix}: {} next-hop links, at most {MAX_GROUP_MEMBERS}",
                key.len()
            );
        }
        if let Some(id) = self.by_key.get(&key) {
            return Ok(*id);
        }
        let id = self.allocate()?;
        let members: Vec<GroupMember> = key
            .iter()
            .map(|&(link, preference)| GroupMember { link, preference })
            .collect();
        if let Err(e) = sink.set_group(id, &members) {
            self.free.insert(id);
            return Err(e.context(format!("writing next-hop group {id}")));
        }
        self.by_key.insert(key.clone(), id);
        self.groups.insert(id, Group { key, refs: 0 });
        stats.groups_added += 1;
        Ok(id)
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
        let mut stats = FibStats::default();
        // 1. Make: every group the batch needs exists before any route uses
        // it. The changes of one UPDATE mostly share their next hops: the
        // last member set and its group are remembered.
        let mut targets = Vec::with_capacity(batch.len());
        let mut last: Option<(&[GroupMember], u32)> = None;
        for change in batch {
            let target = match change.members.as_deref() {
                Some(members) if !members.is_empty() => match last {
                    Some((m, id)) if m == members => Some(id),
                    _ => {
                        let id = match self.group_for(sink, change.prefix, members, &mut stats) {
                            Ok(id) => id,
                            Err(e) => {
                                // Groups made for this batch and unused are
                                // released.
                                self.release_unused(targets.iter().flatten().copied(), &mut stats);
                                return Err(e);
                            }
                        };
                        last = Some((members, id));
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
        let mut writes: Vec<Write> = Vec::new();
        let mut touched = BTreeSet::new();
        for (i, (change, target)) in batch.iter().zip(&targets).enumerate() {
            let key = (change.domain, change.prefix);
            let old = match (self.routes.entry(key), target) {
                (Entry::Occupied(o), _) if Some(*o.get()) == *target => continue,
                (Entry::Occupied(mut o), Some(t)) => Some(std::mem::replace(o.get_mut(), *t)),
                (Entry::Occupied(o), None) => Some(o.remove()),
                (Entry::Vacant(v), Some(t)) => {
                    v.insert(*t);
                    None
                }
                (Entry::Vacant(_), None) => continue,
            };
            if let Some(t) = target {
                self.groups.get_mut(t).expect("group made above").refs += 1;
            }
            if let Some(o) = old {
                self.groups.get_mut(&o).expect("installed group").refs -= 1;
                touched.insert(o);
            }
            writes.push(Write {
                change: i,
                old,
                target: *target,
            });
        }
        let (written, result) = match self.write_routes(sink, batch, &writes) {
            Ok(()) => (writes.len(), Ok(())),
            Err(e) => {
                // Undo, newest first, what the sink did not write.
                for w in writes[e.applied..].iter().rev() {
                    let c = &batch[w.change];
                    match w.old {
                        Some(o) => {
                            self.routes.insert((c.domain, c.prefix), o);
                            self.groups.get_mut(&o).expect("still referenced").refs += 1;
                        }
                        None => {
                            self.routes.remove(&(c.domain, c.prefix));
                        }
                    }
                    if let Some(t) = w.target {
                        self.groups.get_mut(&t).expect("made above").refs -= 1;
                    }
                }
                let w = &writes[e.failed];
                let what = if w.target.is_some() {
                    "installing"
                } else {
                    "removing"
                };
                let context = format!("{what} {}", batch[w.change].prefix);
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
        touched.extend(targets.iter().flatten().copied());
        self.release_unused(touched, &mut stats);
        result.map(|()| stats)
    }

    /// Sends `writes` to the sink in order, one call per run of upserts or
    /// removals. On error, `applied` and `failed` index `writes`.
    fn write_routes(
        &self,
        sink: &mut dyn FibSink,
        batch: &[FibChange],
        writes: &[Write],
    ) -> Result<(), SinkBatchError> {
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
                    .map(|w| {
                        let c = &batch[w.change];
                        (c.domain, c.prefix, w.target.expect("an upsert"))
                    })
                    .collect();
                sink.upsert_routes(&routes)
            } else {
                let routes: Vec<(u32, IpNet)> = run
                    .iter()
                    .map(|w| (batch[w.change].domain, batch[w.change].prefix))
                    .collect();
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

    /// Frees each of `ids` that no route points at any more.
    fn release_unused(&mut self, ids: impl IntoIterator<Item = u32>, stats: &mut FibStats) {
        for id in ids {
            if self.groups.get(&id).is_some_and(|g| g.refs == 0) {
                let g = self.groups.remove(&id).expect("checked");
                self.by_key.remove(&g.key);
                self.free.insert(id);
                stats.groups_freed += 1;
            }
        }
    }
}

/// CLOCK_MONOTONIC now, in nanoseconds (the clock other processes on the
/// machine, e.g. a benchmark, can read too).
pub fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid timespec for the call to fill.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// CPU time of this process (all threads, user + system), in nanoseconds.
pub fn process_cpu_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid timespec for the call to fill.
    unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// When the BGP side received UPDATEs and wrote the FIB into the dataplane
/// (CLOCK_MONOTONIC, ns), with counts since the daemon started: the
/// route-install benchmark's clock (issue #4), served by the API's `fib`.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
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
}

impl InstallRecord {
    /// An UPDATE reached the RIB.
    pub fn update_received(&mut self, update: &bgp::wire::Update) {
        let now = monotonic_ns();
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
        let now = monotonic_ns();
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
/// dataplane API"). A lone UPDATE is written at once, as before. Best paths
/// are computed when the batch is written, from the RIB as it is then.
#[derive(Debug, Default)]
pub struct PendingChanges {
    /// Per RIB (index), prefixes in arrival order, possibly repeated.
    by_rib: Vec<Vec<IpNet>>,
    len: usize,
}

impl PendingChanges {
    /// At most this many prefixes wait (a batch this size keeps the main
    /// loop busy for a fraction of a second at a million routes).
    pub const LIMIT: usize = 1 << 18;

    pub fn add(&mut self, rib: usize, changed: impl IntoIterator<Item = IpNet>) {
        if self.by_rib.len() <= rib {
            self.by_rib.resize_with(rib + 1, Vec::new);
        }
        let v = &mut self.by_rib[rib];
        let before = v.len();
        v.extend(changed);
        self.len += v.len() - before;
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

    /// Everything pending, per RIB index, in address order without repeats.
    pub fn take(&mut self) -> Vec<(usize, BTreeSet<IpNet>)> {
        self.len = 0;
        self.by_rib
            .iter_mut()
            .enumerate()
            .filter(|(_, v)| !v.is_empty())
            .map(|(rib, v)| {
                let mut v = std::mem::take(v);
                v.sort_unstable();
                v.dedup();
                // From sorted input, a BTreeSet is built in one pass.
                (rib, v.into_iter().collect())
            })
            .collect()
    }
}
