//! FIB programming: turns best-path changes into dataplane writes.
//!
//! Next-hop groups are deduplicated by member set (links and preferences)
//! and reference-counted across every routing domain; a group is released
//! once no route points at it. A batch is applied make-before-break: every
//! new group is written first, then routes are repointed (one map update
//! each, so a prefix that stays routed is never missing), and only then are
//! groups that lost their last route released.
use std::collections::{BTreeMap, BTreeSet, HashMap};

use ipnet::IpNet;
use msee_abi::{GroupMember, MAX_GROUP_MEMBERS, MAX_GROUPS};

/// Where FIB writes go: `dataplane::Msee` in the daemon, a recorder in tests.
pub trait FibSink {
    fn set_group(&mut self, id: u32, members: &[GroupMember]) -> anyhow::Result<()>;
    fn upsert_route(&mut self, domain: u32, prefix: IpNet, group: u32) -> anyhow::Result<()>;
    fn remove_route(&mut self, domain: u32, prefix: IpNet) -> anyhow::Result<()>;
    fn set_link_state(&mut self, link: u32, up: bool) -> anyhow::Result<()>;
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
    by_key: HashMap<GroupKey, u32>,
    groups: BTreeMap<u32, Group>,
    /// Released ids, reused lowest first.
    free: BTreeSet<u32>,
    next_id: u32,
    routes: HashMap<(u32, IpNet), u32>,
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
            by_key: HashMap::new(),
            groups: BTreeMap::new(),
            free: BTreeSet::new(),
            next_id: first_group,
            routes: HashMap::new(),
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

    /// Applies a batch make-before-break. On a sink error the FIB stays
    /// consistent with what was written; the batch can be retried.
    pub fn apply(
        &mut self,
        sink: &mut dyn FibSink,
        batch: &[FibChange],
    ) -> anyhow::Result<FibStats> {
        let mut stats = FibStats::default();
        // 1. Make: every group the batch needs exists before any route uses it.
        let mut targets = Vec::with_capacity(batch.len());
        for change in batch {
            let target = match &change.members {
                Some(members) if !members.is_empty() => {
                    let key = group_key(members);
                    if key.len() > MAX_GROUP_MEMBERS {
                        anyhow::bail!(
                            "{}: {} next-hop links, at most {MAX_GROUP_MEMBERS}",
                            change.prefix,
                            key.len()
                        );
                    }
                    let id = match self.by_key.get(&key) {
                        Some(id) => *id,
                        None => {
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
                            id
                        }
                    };
                    Some(id)
                }
                _ => None,
            };
            targets.push(target);
        }
        // 2. Repoint routes.
        let mut touched = BTreeSet::new();
        let result = (|| {
            for (change, target) in batch.iter().zip(&targets) {
                let key = (change.domain, change.prefix);
                let old = self.routes.get(&key).copied();
                if old == *target {
                    continue;
                }
                match target {
                    Some(id) => {
                        sink.upsert_route(change.domain, change.prefix, *id)
                            .map_err(|e| e.context(format!("installing {}", change.prefix)))?;
                        self.routes.insert(key, *id);
                        self.groups.get_mut(id).expect("group made above").refs += 1;
                        stats.routes_upserted += 1;
                    }
                    None => {
                        sink.remove_route(change.domain, change.prefix)
                            .map_err(|e| e.context(format!("removing {}", change.prefix)))?;
                        self.routes.remove(&key);
                        stats.routes_removed += 1;
                    }
                }
                if let Some(old) = old {
                    let g = self.groups.get_mut(&old).expect("installed group");
                    g.refs -= 1;
                    touched.insert(old);
                }
            }
            anyhow::Ok(())
        })();
        // 3. Break: release groups nothing points at any more (including
        // groups made in step 1 and left unused by an error).
        touched.extend(targets.iter().flatten().copied());
        for id in touched {
            if self.groups.get(&id).is_some_and(|g| g.refs == 0) {
                let g = self.groups.remove(&id).expect("checked");
                self.by_key.remove(&g.key);
                self.free.insert(id);
                stats.groups_freed += 1;
            }
        }
        result.map(|()| stats)
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
