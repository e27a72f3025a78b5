//! Userspace side of `msee`'s forwarding table (`msee_abi::fib`), per
//! routing domain and family, written in place through shared mappings of
//! the `FIB_*` maps, beside the LPM tries that keep every route (the
//! program asks the tries for a domain without a table of its own): for
//! IPv4 a direct table of /16s and each /16's ranges of one route (DXR),
//! for IPv6 a fixed-stride multibit trie.
//!
//! Why written here rather than taken from a crate: the table lives in BPF
//! arrays the kernel program walks, with the program's encoding, and every
//! write must keep it valid for a concurrent reader (make-before-break),
//! which no general-purpose crate does.
//!
//! IPv4 writes: a change rewrites the ranges of each /16 it touches, from
//! every route of the domain, in words of its own, and only then points
//! the /16's root entry at them (one aligned store); the old words are
//! reused after an RCU grace period. Each lookup reads a /16 whole, old or
//! new: a prefix that stays routed is never missing. A batch of routes
//! ([`Fib::upsert_all`]) writes each /16 it touches once.
//!
//! IPv6 writes, each one aligned store:
//! - a new node is filled with the entry it replaces (so it answers as that
//!   entry did) before the entry points at it;
//! - an insert overwrites only the leaves whose prefix is no longer than
//!   its own; a removal puts back, in the leaves of its prefix, the route
//!   of the longest prefix that covers it. A prefix that stays routed is
//!   never missing: each of its addresses reads its own leaf or a more
//!   specific one throughout;
//! - a node whose entries all came from above again is replaced by that
//!   leaf, and reused only after an RCU grace period, so no lookup under
//!   way reads it refilled. So is a domain's slot once the domain is gone.
//!
//! Memory: a root per slot (IPv4 256 KiB, IPv6 16 KiB); IPv4 ranges, 2 or
//! 4 bytes each (and a header word for a /16 of more than 127), in blocks
//! of whole 16-byte quarters, from a pool shared by all domains; the
//! distinct routes (256 KiB); IPv6 nodes of 64 bytes from a pool shared by
//! all domains, at most one per 4 bits past /12 of a route (a /48: 9 x 64
//! bytes), fewer where it shares them with its neighbours. Userspace keeps
//! each route once more in a hash map (to find the routes of a /16, and
//! the covering route of a removed prefix), about 40 bytes a route, and
//! IPv4 routes longer than /16 once more by /16.
pub(crate) mod ranges;
pub(crate) mod region;

#[cfg(test)]
mod tests;

use std::{
    collections::BTreeMap,
    net::IpAddr,
    sync::atomic::{AtomicU32, Ordering},
};

use ipnet::IpNet;
use msee_abi::{
    Route,
    fib::{
        FIB_CHILD, FIB_LEAF_IDS, FIB_LINE_WORDS, FIB_MAX_DOMAINS, FIB_PRESENT, FIB_RANGES_SHORT,
        FIB_SERVES_V4, FIB_SERVES_V6, FIB_SLOT_MASK, FIB_V4, FIB_V6, FibShape, fib_domain_word,
        fib_leaf, fib_plen, fib_range, fib_range_lookup, fib_ranges_at, fib_ranges_count,
        fib_ranges_entry, fib_ranges_header, fib_ranges_of, fib_ranges_words, fib_root_entry,
        fib_route, fib_short_range, fib_walk,
    },
};

use ranges::{RangePool, chunk_ranges_into};
use region::Region;

/// An address family's table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Family {
    V4 = 0,
    V6 = 1,
}

const FAMILIES: [Family; 2] = [Family::V4, Family::V6];

impl Family {
    fn of(prefix: &IpNet) -> Self {
        match prefix {
            IpNet::V4(_) => Family::V4,
            IpNet::V6(_) => Family::V6,
        }
    }

    fn of_addr(addr: &IpAddr) -> Self {
        match addr {
            IpAddr::V4(_) => Family::V4,
            IpAddr::V6(_) => Family::V6,
        }
    }

    fn serves_flag(self) -> u32 {
        match self {
            Family::V4 => FIB_SERVES_V4,
            Family::V6 => FIB_SERVES_V6,
        }
    }

    pub(crate) const fn shape(self) -> FibShape {
        match self {
            Family::V4 => FIB_V4,
            Family::V6 => FIB_V6,
        }
    }
}

/// An address left-aligned in 128 bits (IPv4 in the top 32), and a prefix
/// as such an address (host bits zero) and its length.
type Addr = u128;
type Prefix = (Addr, u8);

fn addr_of(ip: IpAddr) -> Addr {
    match ip {
        IpAddr::V4(a) => u128::from(u32::from(a)) << 96,
        IpAddr::V6(a) => u128::from(a),
    }
}

fn prefix_of(p: &IpNet) -> Prefix {
    (addr_of(p.trunc().addr()), p.prefix_len())
}

fn truncate(a: Addr, len: u8) -> Addr {
    if len == 0 {
        0
    } else {
        a & (!0u128 << (128 - u32::from(len)))
    }
}

/// The root entry index of `a` (its top `root_bits` bits).
fn top(shape: &FibShape, a: Addr) -> u32 {
    (a >> (128 - shape.root_bits)) as u32
}

/// The bits of `a` that pick the entry in a node of `level` (0: the level
/// below the root).
fn index(shape: &FibShape, a: Addr, level: u32) -> usize {
    ((a >> (128 - shape.level_end(level))) & (u128::from(shape.fanout()) - 1)) as usize
}

/// `FIB_DOMAINS` words are 8 bytes apart: a BPF array rounds its values
/// up to 8 bytes.
const DOMAIN_WORD_STRIDE: usize = 2;

/// Bytes of `FIB_DOMAINS`'s values.
pub(crate) const DOMAINS_BYTES: usize = FIB_MAX_DOMAINS as usize * DOMAIN_WORD_STRIDE * 4;

/// Bytes of `FIB_LEAVES`'s values.
pub(crate) const LEAVES_BYTES: usize = FIB_LEAF_IDS as usize * 4;

/// An IPv4 prefix's address (host order) and its /16 (the top 16 bits).
fn v4_parts(p: Prefix) -> (u32, u32) {
    let a = (p.0 >> 96) as u32;
    (a, a >> 16)
}

/// The IPv4 /16s a prefix covers (their top 16 bits).
fn chunks_of(p: Prefix) -> std::ops::Range<u32> {
    let c = (p.0 >> 112) as u32;
    c..c + (1 << (16 - p.1.min(16)))
}

/// An IPv4 route of a range or root entry: its leaf without the prefix
/// length, so that neighbours of one route merge.
fn route_leaf(leaf: u32) -> u32 {
    if leaf & FIB_PRESENT == 0 {
        0
    } else {
        fib_leaf(fib_route(leaf), 0)
    }
}

/// Which nodes of a family's map are free.
struct Pool {
    /// Free to reuse now.
    free: Vec<u32>,
    /// Unlinked, to be reused after the next grace period.
    pending: Vec<u32>,
    /// Nodes from here to `capacity` were never used.
    next: u32,
    /// The roots end here.
    first: u32,
    capacity: u32,
}

impl Pool {
    fn new(first: u32, capacity: u32) -> Self {
        Self {
            free: Vec::new(),
            pending: Vec::new(),
            next: first,
            first,
            capacity,
        }
    }

    fn in_use(&self) -> u32 {
        self.next - self.first - self.free.len() as u32 - self.pending.len() as u32
    }
}

/// A slot's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Slot {
    /// Nobody's, its roots zero.
    Clean,
    /// Nobody's; its roots may hold a former owner's entries, which a
    /// lookup that read the owner's word before it was cleared may still
    /// read: cleared after a grace period when the slot is next taken.
    Dirty,
    Owned,
}

#[derive(Default)]
struct Domain {
    /// The slot whose roots hold this domain's tables; `None`: no slot
    /// (an id from `FIB_MAX_DOMAINS` on, or every slot taken), and the
    /// program asks the tries.
    slot: Option<u32>,
    /// Per family: the table is complete and in use (else the pool ran out
    /// for it, and that family is asked of the tries).
    fast: [bool; 2],
    /// The domain's routes as their leaves, per family: every IPv6 route,
    /// the IPv4 routes of /16 or shorter (few: the /16s' covering routes,
    /// looked up for each /16 written, stay in the CPU's caches).
    routes: [foldhash::HashMap<Prefix, u32>; 2],
    /// The IPv4 routes longer than /16 ((address, length) and leaf), by
    /// /16, in address order: the only copy of them (what a /16's ranges
    /// are cut from).
    chunks: foldhash::HashMap<u32, BTreeMap<(u32, u8), u32>>,
    /// How many IPv4 routes of each length up to /16 (the lengths a /16's
    /// covering route is looked for at).
    short_lengths: [u32; 17],
}

impl Domain {
    fn is_empty(&self) -> bool {
        self.routes.iter().all(std::collections::HashMap::is_empty) && self.chunks.is_empty()
    }

    /// Whether the domain has routes of family `f`.
    fn has_routes(&self, f: Family) -> bool {
        !self.routes[f as usize].is_empty() || (f == Family::V4 && !self.chunks.is_empty())
    }

    /// The /16s the IPv4 routes touch, in order.
    fn v4_chunks(&self) -> Vec<u32> {
        let mut chunks: Vec<u32> = self.routes[Family::V4 as usize]
            .keys()
            .flat_map(|p| chunks_of(*p))
            .chain(self.chunks.keys().copied())
            .collect();
        chunks.sort_unstable();
        chunks.dedup();
        chunks
    }
}

/// How big the table's maps are: slots (roots), and per family the pool:
/// IPv4 lines of ranges (`FIB_RANGES_V4`, 64 bytes each), IPv6 nodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Sizes {
    pub slots: u32,
    pub pool: [u32; 2],
}

impl Sizes {
    /// Nodes of family `f`'s map: the roots, then (IPv6) the pool.
    pub(crate) fn nodes(&self, f: Family) -> u32 {
        let pool = match f {
            Family::V4 => 0,
            Family::V6 => self.pool[1],
        };
        self.slots * f.shape().root_nodes() + pool
    }

    /// Bytes of family `f`'s map of nodes.
    pub(crate) fn bytes(&self, f: Family) -> u64 {
        u64::from(self.nodes(f)) * u64::from(f.shape().node_bytes())
    }

    /// Bytes of `FIB_RANGES_V4`.
    pub(crate) fn range_bytes(&self) -> u64 {
        u64::from(self.pool[0]) * u64::from(FIB_LINE_WORDS) * 4
    }
}

/// The mappings of the table's maps.
pub(crate) struct Regions {
    /// `FIB_DOMAINS`'s values (`DOMAINS_BYTES`).
    pub words: Region,
    /// `FIB_NODES_V4`, `FIB_NODES_V6` ([`Sizes::bytes`]).
    pub v4: Region,
    pub v6: Region,
    /// `FIB_RANGES_V4` ([`Sizes::range_bytes`]), `FIB_LEAVES`
    /// (`LEAVES_BYTES`).
    pub ranges: Region,
    pub leaves: Region,
}

/// The table's maps as the program reads them.
pub(crate) struct View<'a> {
    words: &'a [AtomicU32],
    tables: [&'a [AtomicU32]; 2],
    ranges: &'a [AtomicU32],
    leaves: &'a [AtomicU32],
}

#[cfg(test)]
impl Regions {
    pub(crate) fn view(&self) -> View<'_> {
        View {
            words: self.words.words(),
            tables: [self.v4.words(), self.v6.words()],
            ranges: self.ranges.words(),
            leaves: self.leaves.words(),
        }
    }
}

impl View<'_> {
    /// The route the table gives `addr` in `domain`, found as the program
    /// finds it: `None` if the program asks the tries for it, `Some(None)`
    /// for no route.
    pub(crate) fn lookup(&self, domain: u32, addr: IpAddr) -> Option<Option<Route>> {
        let f = Family::of_addr(&addr);
        let shape = f.shape();
        let word = self
            .words
            .get(domain as usize * DOMAIN_WORD_STRIDE)?
            .load(Ordering::Acquire);
        if word & f.serves_flag() == 0 {
            return None;
        }
        let slot = word & FIB_SLOT_MASK;
        let a = addr_of(addr);
        let table = self.tables[f as usize];
        let fanout = shape.fanout() as usize;
        let entry = |n: u32, j: usize| -> Option<u32> {
            Some(table.get(n as usize * fanout + j)?.load(Ordering::Acquire))
        };
        let (n, j) = fib_root_entry(&shape, slot, top(&shape, a));
        let root = entry(n, j)?;
        let leaf = match f {
            Family::V4 if root & FIB_CHILD != 0 => {
                let word = |w: u32| Some(self.ranges.get(w as usize)?.load(Ordering::Acquire));
                let id = fib_range_lookup(root, (a >> 96) as u16, word)?;
                self.leaves.get(usize::from(id))?.load(Ordering::Acquire)
            }
            Family::V4 => root,
            Family::V6 => fib_walk(root, shape.levels(), |l| index(&shape, a, l), entry)?,
        };
        Some((leaf & FIB_PRESENT != 0).then(|| fib_route(leaf)))
    }
}

/// The table's occupancy, as [`crate::Msee::fib_stats`] reports it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FibStats {
    /// Domain slots (tables), and how many domains hold one.
    pub slots: u32,
    pub slots_used: u32,
    /// Per family (IPv4, IPv6): pool nodes in use and in all, and bytes a
    /// node takes (IPv4: 64-byte lines of ranges, in use counted in
    /// words / 16).
    pub nodes_in_use: [u32; 2],
    pub nodes: [u32; 2],
    pub node_bytes: [u32; 2],
    /// Bytes of the maps (roots, pools and distinct routes, both families;
    /// allocated whole when the program is loaded).
    pub map_bytes: u64,
    /// Domains with routes of a family that the table does not hold (no
    /// slot, or the pool ran out): the program looks them up in the LPM
    /// trie. (domain, IPv6?)
    pub on_trie: Vec<(u32, bool)>,
}

/// The forwarding table of every domain: the mappings of `FIB_DOMAINS`,
/// `FIB_NODES_V4` and `FIB_NODES_V6`, and what userspace keeps to write them.
pub(crate) struct Fib {
    words: Region,
    tables: [Region; 2],
    /// IPv6 nodes (IPv4's pool holds no nodes: its ranges are `range_pool`).
    pools: [Pool; 2],
    ranges: Region,
    range_pool: RangePool,
    leaves: Region,
    /// Each distinct IPv4 route's index in `FIB_LEAVES` (never given back:
    /// there are few, and a range may point at one until a grace period).
    leaf_ids: foldhash::HashMap<u32, u16>,
    /// While a batch is written ([`Fib::upsert_all`]): the (domain, /16)s
    /// to write once it is in.
    batch: Option<Vec<(u32, u32)>>,
    scratch: Scratch,
    slots: Vec<Slot>,
    domains: foldhash::HashMap<u32, Domain>,
    /// Domains whose table of a family gave up when the pool ran out: each
    /// is written again once the pool has room for all of its routes
    /// ([`Fib::retry_fallen`]), rather than left to the trie for good.
    fallen: Vec<(u32, Family)>,
    /// Waits for an RCU grace period.
    grace: Box<dyn FnMut() + Send + Sync>,
}

/// Vectors a /16's write fills, kept from one to the next.
#[derive(Default)]
struct Scratch {
    /// The /16's routes longer than /16: (first, end, route).
    inside: Vec<(u32, u32, u32)>,
    /// Its ranges: (first address, route, then the route's index).
    ranges: Vec<(u16, u32)>,
    open: Vec<(u32, u32)>,
    words: Vec<u32>,
}

/// What went wrong writing a domain's table: the pool is exhausted.
struct PoolFull;

impl Fib {
    /// A table over fresh (zeroed) maps of `sizes`.
    pub(crate) fn new(
        regions: Regions,
        sizes: Sizes,
        grace: Box<dyn FnMut() + Send + Sync>,
    ) -> Self {
        let pool = |f: Family| Pool::new(sizes.slots * f.shape().root_nodes(), sizes.nodes(f));
        let mut leaf_ids = foldhash::HashMap::default();
        leaf_ids.insert(0, 0);
        Self {
            words: regions.words,
            tables: [regions.v4, regions.v6],
            pools: [pool(Family::V4), pool(Family::V6)],
            ranges: regions.ranges,
            range_pool: RangePool::new(sizes.pool[0] * FIB_LINE_WORDS),
            leaves: regions.leaves,
            leaf_ids,
            batch: None,
            scratch: Scratch::default(),
            slots: vec![Slot::Clean; sizes.slots as usize],
            domains: Default::default(),
            fallen: Vec::new(),
            grace,
        }
    }

    /// A table over maps another handle may have written (adopted pins),
    /// written afresh from `routes`, every route of the LPM tries. The
    /// tries are the truth: the table a crash left between a trie write
    /// and its table write, or one made with other sizes, must not answer.
    /// Every domain is first handed to the tries (its word cleared), so
    /// after a grace period no lookup walks the old tables; they are zeroed
    /// and written again, each domain served again once its table is whole.
    pub(crate) fn rebuild(
        regions: Regions,
        sizes: Sizes,
        grace: Box<dyn FnMut() + Send + Sync>,
        routes: &[(u32, IpNet, Route)],
    ) -> Self {
        for w in regions.words.words() {
            w.store(0, Ordering::Release);
        }
        let mut fib = Self::new(regions, sizes, grace);
        fib.wait_grace();
        for table in fib.tables.iter().chain([&fib.ranges, &fib.leaves]) {
            for cell in table.words() {
                cell.store(0, Ordering::Relaxed);
            }
        }
        fib.upsert_all(routes);
        fib
    }

    fn word(&self, domain: u32) -> &AtomicU32 {
        &self.words.words()[domain as usize * DOMAIN_WORD_STRIDE]
    }

    fn cell(&self, f: Family, node: u32, entry: usize) -> &AtomicU32 {
        let fanout = f.shape().fanout() as usize;
        &self.tables[f as usize].words()[node as usize * fanout + entry]
    }

    fn load(&self, f: Family, node: u32, entry: usize) -> u32 {
        self.cell(f, node, entry).load(Ordering::Acquire)
    }

    fn store(&self, f: Family, node: u32, entry: usize, value: u32) {
        self.cell(f, node, entry).store(value, Ordering::Release);
    }

    fn wait_grace(&mut self) {
        (self.grace)();
    }

    /// Pool nodes in use, per family (roots not counted; IPv4: lines of
    /// range words, rounded up).
    pub(crate) fn nodes_in_use(&self) -> [u32; 2] {
        [
            self.range_pool.in_use().div_ceil(FIB_LINE_WORDS),
            self.pools[1].in_use(),
        ]
    }

    pub(crate) fn stats(&self) -> FibStats {
        let sizes = self.sizes();
        let mut on_trie: Vec<(u32, bool)> = self
            .domains
            .iter()
            .flat_map(|(&id, d)| {
                FAMILIES.into_iter().filter_map(move |f| {
                    let served = d.slot.is_some() && d.fast[f as usize];
                    (!served && d.has_routes(f)).then_some((id, f == Family::V6))
                })
            })
            .collect();
        on_trie.sort_unstable();
        FibStats {
            slots: sizes.slots,
            slots_used: self.slots.iter().filter(|s| **s == Slot::Owned).count() as u32,
            nodes_in_use: self.nodes_in_use(),
            nodes: sizes.pool,
            node_bytes: [FIB_LINE_WORDS * 4, Family::V6.shape().node_bytes()],
            map_bytes: sizes.bytes(Family::V4)
                + sizes.bytes(Family::V6)
                + sizes.range_bytes()
                + (DOMAINS_BYTES + LEAVES_BYTES) as u64,
            on_trie,
        }
    }

    fn range_pool_lines(&self) -> u32 {
        self.range_pool.capacity() / FIB_LINE_WORDS
    }

    fn sizes(&self) -> Sizes {
        Sizes {
            slots: self.slots.len() as u32,
            pool: [
                self.range_pool_lines(),
                self.pools[1].capacity - self.pools[1].first,
            ],
        }
    }

    /// Whether `domain`'s table of the family is the one the program uses
    /// (else the program asks the LPM trie).
    #[cfg(test)]
    pub(crate) fn serves(&self, domain: u32, v6: bool) -> bool {
        let f = if v6 { Family::V6 } else { Family::V4 };
        self.domains
            .get(&domain)
            .is_some_and(|d| d.slot.is_some() && d.fast[f as usize])
    }

    /// `prefix` in `domain` routes by `route` (written to the LPM trie
    /// already). `route`'s group was checked by the caller.
    pub(crate) fn upsert(&mut self, domain: u32, prefix: &IpNet, route: Route) {
        let f = Family::of(prefix);
        let p = prefix_of(prefix);
        let leaf = fib_leaf(route, p.1);
        if !self.domains.contains_key(&domain) {
            self.take_slot(domain);
        }
        let d = self.domains.get_mut(&domain).expect("added above");
        if f == Family::V4 && p.1 > 16 {
            let (a, c) = v4_parts(p);
            d.chunks.entry(c).or_default().insert((a, p.1), leaf);
        } else {
            let replaced = d.routes[f as usize].insert(p, leaf).is_some();
            if f == Family::V4 && !replaced {
                d.short_lengths[usize::from(p.1)] += 1;
            }
        }
        let (Some(slot), true) = (d.slot, d.fast[f as usize]) else {
            return;
        };
        let written = match f {
            Family::V4 => self.write_chunks(domain, slot, p),
            Family::V6 => self.insert(f, slot, p, leaf),
        };
        if written.is_err() {
            self.give_up(domain, f);
        }
    }

    /// [`Fib::upsert`] each of `routes`, in order, with room made first in
    /// the copies of the IPv6 routes (a large table grows them many times
    /// over otherwise), and each IPv4 /16 written once, after them all.
    pub(crate) fn upsert_all(&mut self, routes: &[(u32, IpNet, Route)]) {
        let mut v6_counts: foldhash::HashMap<u32, usize> = Default::default();
        for (domain, prefix, _) in routes {
            if let IpNet::V6(_) = prefix {
                *v6_counts.entry(*domain).or_default() += 1;
            }
        }
        for (domain, n) in v6_counts {
            if !self.domains.contains_key(&domain) {
                self.take_slot(domain);
            }
            let d = self.domains.get_mut(&domain).expect("added above");
            d.routes[Family::V6 as usize].reserve(n);
        }
        self.batch = Some(Vec::new());
        for (domain, prefix, route) in routes {
            self.upsert(*domain, prefix, *route);
        }
        self.write_batch();
    }

    /// `prefix` in `domain` is no longer routed (removed from the LPM trie
    /// already).
    pub(crate) fn remove(&mut self, domain: u32, prefix: &IpNet) {
        let f = Family::of(prefix);
        let p = prefix_of(prefix);
        let Some(d) = self.domains.get_mut(&domain) else {
            return;
        };
        if f == Family::V4 && p.1 > 16 {
            let (a, c) = v4_parts(p);
            let Some(set) = d.chunks.get_mut(&c) else {
                return;
            };
            if set.remove(&(a, p.1)).is_none() {
                return;
            }
            if set.is_empty() {
                d.chunks.remove(&c);
            }
        } else {
            if d.routes[f as usize].remove(&p).is_none() {
                return;
            }
            if f == Family::V4 {
                d.short_lengths[usize::from(p.1)] -= 1;
            }
        }
        if let (Some(slot), true) = (d.slot, d.fast[f as usize]) {
            match f {
                Family::V4 => {
                    if self.write_chunks(domain, slot, p).is_err() {
                        self.give_up(domain, f);
                    }
                }
                Family::V6 => {
                    // The route of the longest prefix that covers `p`, if any.
                    let routes = &self.domains[&domain].routes[f as usize];
                    let cover = (0..p.1)
                        .rev()
                        .find_map(|len| routes.get(&(truncate(p.0, len), len)).copied())
                        .unwrap_or(0);
                    self.clear(f, slot, p, cover);
                }
            }
        }
        if self.domains[&domain].is_empty() {
            self.release(domain);
        }
        if !self.fallen.is_empty() {
            self.retry_fallen();
        }
    }

    /// Write the ranges of each /16 of IPv4 prefix `p` in `domain`'s table
    /// (slot `s`) again, or while a batch is written, note them for
    /// [`Fib::write_batch`].
    fn write_chunks(&mut self, domain: u32, s: u32, p: Prefix) -> Result<(), PoolFull> {
        if let Some(batch) = &mut self.batch {
            // Sorted and deduplicated when written; routes in address
            // order note each /16 once here already.
            for c in chunks_of(p) {
                if batch.last() != Some(&(domain, c)) {
                    batch.push((domain, c));
                }
            }
            return Ok(());
        }
        for c in chunks_of(p) {
            self.write_chunk(domain, s, c)?;
        }
        Ok(())
    }

    /// Write every /16 the batch touched, of the domains still served.
    fn write_batch(&mut self) {
        let Some(mut batch) = self.batch.take() else {
            return;
        };
        batch.sort_unstable();
        batch.dedup();
        let mut failed = None;
        for (domain, c) in batch {
            if failed == Some(domain) {
                continue;
            }
            let Some(d) = self.domains.get(&domain) else {
                continue;
            };
            let (Some(s), true) = (d.slot, d.fast[Family::V4 as usize]) else {
                continue;
            };
            if self.write_chunk(domain, s, c).is_err() {
                self.give_up(domain, Family::V4);
                failed = Some(domain);
            }
        }
    }

    /// Write /16 `c` of `domain`'s IPv4 table (slot `s`) from its routes:
    /// its route if it has one throughout, else its ranges in fresh words,
    /// then the root entry; the words it pointed at are reused after a
    /// grace period.
    fn write_chunk(&mut self, domain: u32, s: u32, c: u32) -> Result<(), PoolFull> {
        let mut scratch = std::mem::take(&mut self.scratch);
        let written = self.write_chunk_with(domain, s, c, &mut scratch);
        self.scratch = scratch;
        written
    }

    /// [`Fib::write_chunk`] with vectors kept from /16 to /16.
    fn write_chunk_with(
        &mut self,
        domain: u32,
        s: u32,
        c: u32,
        scratch: &mut Scratch,
    ) -> Result<(), PoolFull> {
        let d = &self.domains[&domain];
        let routes = &d.routes[Family::V4 as usize];
        let first = u128::from(c) << 112;
        let cover = (0..=16u8)
            .rev()
            .filter(|&len| d.short_lengths[usize::from(len)] > 0)
            .find_map(|len| routes.get(&(truncate(first, len), len)))
            .map_or(0, |&leaf| route_leaf(leaf));
        scratch.inside.clear();
        if let Some(set) = d.chunks.get(&c) {
            scratch.inside.extend(set.iter().map(|(&(a, len), &leaf)| {
                let start = a & 0xffff;
                (
                    start,
                    start + (1 << (32 - u32::from(len))),
                    route_leaf(leaf),
                )
            }));
        }
        let Scratch {
            inside,
            ranges,
            open,
            words,
        } = scratch;
        chunk_ranges_into(cover, inside, ranges, open);
        let (n, j) = fib_root_entry(&FIB_V4, s, c);
        let old = self.load(Family::V4, n, j);
        let entry = if let [(_, leaf)] = ranges[..] {
            leaf
        } else {
            // The route's index in place of the route.
            for (_, leaf) in ranges.iter_mut() {
                *leaf = u32::from(self.leaf_id(*leaf)?);
            }
            // Short ranges where every range starts at a /24 and every
            // route's index fits a byte: half the words.
            let short = ranges
                .iter()
                .all(|&(start, id)| start & 0xff == 0 && id <= 0xff);
            let count = ranges.len() as u32;
            words.clear();
            // A header word only where the entry cannot say how many.
            if fib_ranges_count(fib_ranges_entry(0, count, short)) == 0 {
                words.push(fib_ranges_header(count, short));
            }
            if short {
                let half = |r: Option<&(u16, u32)>| {
                    r.map_or(0, |&(start, id)| {
                        u32::from(fib_short_range(start, id as u8))
                    })
                };
                words.extend(
                    ranges
                        .chunks(2)
                        .map(|pair| half(pair.first()) | half(pair.get(1)) << 16),
                );
            } else {
                words.extend(
                    ranges
                        .iter()
                        .map(|&(start, id)| fib_range(start, id as u16)),
                );
            }
            // Unchanged (the same words, read the same way): nothing to do.
            if fib_ranges_entry(fib_ranges_at(old), count, short) == old
                && self.range_words_are(old, words)
            {
                return Ok(());
            }
            let at = self.alloc_ranges(words.len() as u32)?;
            let cells = &self.ranges.words()[at as usize..at as usize + words.len()];
            for (cell, w) in cells.iter().zip(words.iter()) {
                cell.store(*w, Ordering::Release);
            }
            fib_ranges_entry(at, count, short)
        };
        if entry == old {
            return Ok(());
        }
        self.store(Family::V4, n, j, entry);
        if old & FIB_CHILD != 0 {
            self.release_ranges(old);
        }
        Ok(())
    }

    /// The words of `FIB_RANGES_V4` range root entry `entry` points at (a
    /// header, if any, and the ranges): the first, and how many.
    fn range_block(&self, entry: u32) -> (u32, u32) {
        let header = |w: u32| Some(self.ranges.words()[w as usize].load(Ordering::Acquire));
        let (count, first) = fib_ranges_of(entry, header).expect("a header in the map");
        let at = fib_ranges_at(entry);
        let short = entry & FIB_RANGES_SHORT != 0;
        (at, first - at + fib_ranges_words(count, short))
    }

    /// Whether range root entry `entry` points at `words`.
    fn range_words_are(&self, entry: u32, words: &[u32]) -> bool {
        let (at, len) = self.range_block(entry);
        let cells = &self.ranges.words()[at as usize..(at + len) as usize];
        cells.len() == words.len()
            && cells
                .iter()
                .zip(words)
                .all(|(c, w)| c.load(Ordering::Acquire) == *w)
    }

    /// The words range root entry `entry` pointed at are no longer pointed
    /// at.
    fn release_ranges(&mut self, entry: u32) {
        let (at, len) = self.range_block(entry);
        self.range_pool.release(at, len);
    }

    /// Words for a /16's ranges, after a grace period if only freed ones
    /// would do.
    fn alloc_ranges(&mut self, words: u32) -> Result<u32, PoolFull> {
        if let Some(at) = self.range_pool.alloc(words) {
            return Ok(at);
        }
        if !self.range_pool.has_pending() {
            return Err(PoolFull);
        }
        self.wait_grace();
        self.range_pool.recycle();
        self.range_pool.alloc(words).ok_or(PoolFull)
    }

    /// The index in `FIB_LEAVES` of an IPv4 route (a leaf without prefix
    /// length), written there the first time it is asked for.
    fn leaf_id(&mut self, leaf: u32) -> Result<u16, PoolFull> {
        if let Some(&id) = self.leaf_ids.get(&leaf) {
            return Ok(id);
        }
        let id = self.leaf_ids.len() as u32;
        if id >= FIB_LEAF_IDS {
            tracing::warn!(
                "the forwarding table holds {FIB_LEAF_IDS} distinct IPv4 routes (next-hop group and flags), all it can: a domain that needs another is looked up in the LPM trie"
            );
            return Err(PoolFull);
        }
        self.leaves.words()[id as usize].store(leaf, Ordering::Release);
        self.leaf_ids.insert(leaf, id as u16);
        Ok(id as u16)
    }

    /// Room family `f`'s pool has: IPv4 words, IPv6 nodes (free, never
    /// used, and unlinked ones waiting for a grace period).
    fn available(&self, f: Family) -> u64 {
        if f == Family::V4 {
            return self.range_pool.available();
        }
        let p = &self.pools[f as usize];
        (p.free.len() + p.pending.len()) as u64 + u64::from(p.capacity - p.next)
    }

    /// Room the routes of `domain`'s table of family `f` need at most: an
    /// IPv6 route one node per level; an IPv4 route longer than /16 two
    /// range words (where it starts and where it ends), and each /16 that
    /// has any one range, a header word and the rounding of its block (at
    /// most three words).
    fn room_needed(&self, domain: u32, f: Family) -> u64 {
        let Some(d) = self.domains.get(&domain) else {
            return 0;
        };
        match f {
            Family::V4 => d
                .chunks
                .values()
                .map(|inside| 2 * inside.len() as u64 + 5)
                .sum(),
            Family::V6 => d.routes[f as usize].len() as u64 * u64::from(f.shape().levels()),
        }
    }

    /// Write again the tables that gave up, of each domain whose routes
    /// now fit the pool (IPv4: in words, which free blocks of other sizes
    /// may not give; a write that still runs out gives up again).
    fn retry_fallen(&mut self) {
        // Ids of distinct routes are never given back: with all taken, a
        // table that needs another cannot be written again.
        let ids_left = self.leaf_ids.len() < FIB_LEAF_IDS as usize;
        for (domain, f) in std::mem::take(&mut self.fallen) {
            if self.room_needed(domain, f) > self.available(f) || (f == Family::V4 && !ids_left) {
                self.fallen.push((domain, f));
                continue;
            }
            self.rewrite_fallen(domain, f);
        }
    }

    /// [`Fib::retry_fallen`] for one domain and family: its roots cleared,
    /// every route written, and only then the family served again.
    fn rewrite_fallen(&mut self, domain: u32, f: Family) {
        let Some(d) = self.domains.get(&domain) else {
            return;
        };
        let (Some(s), false) = (d.slot, d.fast[f as usize]) else {
            return;
        };
        let (chunks, routes): (Vec<u32>, Vec<(Prefix, u32)>) = match f {
            Family::V4 => (d.v4_chunks(), Vec::new()),
            Family::V6 => (
                Vec::new(),
                d.routes[f as usize]
                    .iter()
                    .map(|(p, leaf)| (*p, *leaf))
                    .collect(),
            ),
        };
        // No lookup walks these roots since the family stopped being
        // served; a grace period makes sure of any that read the word
        // before, as they are cleared.
        self.wait_grace();
        let shape = f.shape();
        for i in 0..(1 << shape.root_bits) {
            let (n, j) = fib_root_entry(&shape, s, i);
            self.store(f, n, j, 0);
        }
        self.domains.get_mut(&domain).expect("looked up above").fast[f as usize] = true;
        if f == Family::V4 {
            for c in chunks {
                if self.write_chunk(domain, s, c).is_err() {
                    self.give_up(domain, f);
                    return;
                }
            }
        } else {
            for (p, leaf) in routes {
                if self.insert(f, s, p, leaf).is_err() {
                    self.give_up(domain, f);
                    return;
                }
            }
        }
        let word = self.word(domain).load(Ordering::Acquire);
        self.word(domain)
            .store(word | f.serves_flag(), Ordering::Release);
        tracing::info!(
            domain,
            family = ?f,
            "the forwarding table's pool has room again: this domain's routes of the family are looked up in its table again"
        );
    }

    /// The route the table gives `addr` in `domain` (see [`View::lookup`]).
    pub(crate) fn lookup(&self, domain: u32, addr: IpAddr) -> Option<Option<Route>> {
        self.view().lookup(domain, addr)
    }

    fn view(&self) -> View<'_> {
        View {
            words: self.words.words(),
            tables: [self.tables[0].words(), self.tables[1].words()],
            ranges: self.ranges.words(),
            leaves: self.leaves.words(),
        }
    }

    /// Give `domain` a slot if there is one; its tables start empty, as
    /// its tries do.
    fn take_slot(&mut self, domain: u32) {
        let mut d = Domain::default();
        let free = (domain < FIB_MAX_DOMAINS)
            .then(|| {
                // A clean slot first: a dirty one costs a grace period.
                let clean = self.slots.iter().position(|s| *s == Slot::Clean);
                clean.or_else(|| self.slots.iter().position(|s| *s == Slot::Dirty))
            })
            .flatten();
        match free {
            Some(s) => {
                let s = s as u32;
                if self.slots[s as usize] == Slot::Dirty {
                    // Lookups that read a former owner have finished.
                    self.wait_grace();
                    for f in FAMILIES {
                        let shape = f.shape();
                        for i in 0..(1 << shape.root_bits) {
                            let (n, j) = fib_root_entry(&shape, s, i);
                            self.store(f, n, j, 0);
                        }
                    }
                }
                self.slots[s as usize] = Slot::Owned;
                self.word(domain).store(
                    fib_domain_word(s, FIB_SERVES_V4 | FIB_SERVES_V6),
                    Ordering::Release,
                );
                d.slot = Some(s);
                d.fast = [true, true];
            }
            None if self.slots.is_empty() => tracing::debug!(
                domain,
                "no forwarding table (0 slots): its routes are looked up in the LPM tries"
            ),
            None => tracing::warn!(
                domain,
                "no forwarding table for this domain (ids from {FIB_MAX_DOMAINS} on, or all {} slots taken): its routes are looked up in the LPM tries",
                self.slots.len()
            ),
        }
        self.domains.insert(domain, d);
    }

    /// `domain` has no route left: its slot is free again.
    fn release(&mut self, domain: u32) {
        let Some(d) = self.domains.remove(&domain) else {
            return;
        };
        self.fallen.retain(|(fallen, _)| *fallen != domain);
        let Some(s) = d.slot else {
            return;
        };
        self.word(domain).store(0, Ordering::Release);
        for f in FAMILIES {
            if d.fast[f as usize] {
                self.unlink_all(f, s);
            }
        }
        self.slots[s as usize] = Slot::Dirty;
    }

    /// The pool ran out while writing `domain`'s table of family `f`: the
    /// program asks the LPM trie for that family (it holds every route)
    /// until [`Fib::retry_fallen`] writes the table again, and the table's
    /// nodes go back to the pool.
    fn give_up(&mut self, domain: u32, f: Family) {
        let d = self
            .domains
            .get_mut(&domain)
            .expect("a domain being written");
        let s = d.slot.expect("a domain with a table");
        d.fast[f as usize] = false;
        self.fallen.push((domain, f));
        let word = self.word(domain).load(Ordering::Acquire);
        self.word(domain)
            .store(word & !f.serves_flag(), Ordering::Release);
        tracing::warn!(
            domain,
            family = ?f,
            "the forwarding table's node pool is full: this domain's routes of the family are looked up in the LPM trie until the pool has room for all of them again (raise LoadOptions' fib sizes)"
        );
        self.unlink_all(f, s);
    }

    /// Every node under slot `s`'s root of family `f` to the pool, after a
    /// grace period (the root itself is left as it is: unused from now on,
    /// cleared when the slot is taken again).
    fn unlink_all(&mut self, f: Family, s: u32) {
        let shape = f.shape();
        if f == Family::V4 {
            for i in 0..(1 << shape.root_bits) {
                let (n, j) = fib_root_entry(&shape, s, i);
                let e = self.load(f, n, j);
                if e & FIB_CHILD != 0 {
                    self.release_ranges(e);
                }
            }
            return;
        }
        let mut nodes = Vec::new();
        for i in 0..(1 << shape.root_bits) {
            let (n, j) = fib_root_entry(&shape, s, i);
            self.collect(f, self.load(f, n, j), &mut nodes);
        }
        self.pools[f as usize].pending.extend(nodes);
    }

    fn collect(&self, f: Family, e: u32, out: &mut Vec<u32>) {
        if e & FIB_CHILD == 0 {
            return;
        }
        let n = e & !FIB_CHILD;
        out.push(n);
        for j in 0..f.shape().fanout() as usize {
            self.collect(f, self.load(f, n, j), out);
        }
    }

    /// A node to fill, and whether it is zero (never used since the map
    /// was created).
    fn alloc(&mut self, f: Family) -> Result<(u32, bool), PoolFull> {
        let pool = &mut self.pools[f as usize];
        if let Some(n) = pool.free.pop() {
            return Ok((n, false));
        }
        if pool.next < pool.capacity {
            pool.next += 1;
            return Ok((pool.next - 1, true));
        }
        if pool.pending.is_empty() {
            return Err(PoolFull);
        }
        self.wait_grace();
        let pool = &mut self.pools[f as usize];
        pool.free = std::mem::take(&mut pool.pending);
        pool.free.pop().map(|n| (n, false)).ok_or(PoolFull)
    }

    /// Write `leaf` (of a prefix `p`) into slot `s`'s table of family `f`.
    fn insert(&mut self, f: Family, s: u32, p: Prefix, leaf: u32) -> Result<(), PoolFull> {
        let shape = f.shape();
        let (a, len) = (p.0, u32::from(p.1));
        if len <= shape.root_bits {
            let (n, j) = fib_root_entry(&shape, s, top(&shape, a));
            self.set(f, n, j, 1 << (shape.root_bits - len), leaf, p.1);
            return Ok(());
        }
        let (mut node, mut j) = fib_root_entry(&shape, s, top(&shape, a));
        let mut level = 0;
        loop {
            let e = self.load(f, node, j);
            let child = if e & FIB_CHILD != 0 {
                e & !FIB_CHILD
            } else {
                // Filled with the leaf it replaces before it is linked
                // (a zero node already holds "no route": most nodes of a
                // table of disjoint prefixes).
                let (n, zero) = self.alloc(f)?;
                if !(zero && e == 0) {
                    for k in 0..shape.fanout() as usize {
                        self.store(f, n, k, e);
                    }
                }
                self.store(f, node, j, FIB_CHILD | n);
                n
            };
            let end = shape.level_end(level);
            let first = index(&shape, a, level);
            if len <= end {
                self.set(f, child, first, 1 << (end - len), leaf, p.1);
                return Ok(());
            }
            (node, j) = (child, first);
            level += 1;
        }
    }

    /// Put `leaf` (prefix length `len`) in the `count` entries of family
    /// `f`'s map from entry `first` of node `node` on (past the node's
    /// end for a root: a root's nodes follow each other) and the leaves
    /// under them, where their prefix is no longer than `len`.
    fn set(&self, f: Family, node: u32, first: usize, count: usize, leaf: u32, len: u8) {
        let fanout = f.shape().fanout() as usize;
        let start = node as usize * fanout + first;
        for cell in &self.tables[f as usize].words()[start..start + count] {
            let e = cell.load(Ordering::Acquire);
            if e & FIB_CHILD != 0 {
                self.set(f, e & !FIB_CHILD, 0, fanout, leaf, len);
            } else if e & FIB_PRESENT == 0 || fib_plen(e) <= len {
                cell.store(leaf, Ordering::Release);
            }
        }
    }

    /// Replace the leaves of prefix `p` in slot `s`'s table of family `f`
    /// by `cover`, and fold the nodes that no longer hold anything of their
    /// own.
    fn clear(&mut self, f: Family, s: u32, p: Prefix, cover: u32) {
        let shape = f.shape();
        let (a, len) = (p.0, u32::from(p.1));
        if len <= shape.root_bits {
            let first = top(&shape, a);
            for i in first..first + (1 << (shape.root_bits - len)) {
                let (n, j) = fib_root_entry(&shape, s, i);
                self.unset(f, n, j, cover, p.1, shape.root_bits);
            }
            return;
        }
        // The entries from the root down to the node that holds `p`.
        let mut path = Vec::with_capacity(shape.levels() as usize);
        let (mut node, mut j) = fib_root_entry(&shape, s, top(&shape, a));
        let mut level = 0;
        loop {
            let e = self.load(f, node, j);
            if e & FIB_CHILD == 0 {
                // Not in the table (no node down to its length).
                return;
            }
            path.push((node, j));
            let child = e & !FIB_CHILD;
            let end = shape.level_end(level);
            let first = index(&shape, a, level);
            if len <= end {
                for k in first..first + (1 << (end - len)) {
                    self.unset(f, child, k, cover, p.1, end);
                }
                break;
            }
            (node, j) = (child, first);
            level += 1;
        }
        // Deepest first: a folded node may let its parent fold.
        for (depth, &(node, j)) in path.iter().enumerate().rev() {
            if !self.fold(f, node, j, shape.level_end(depth as u32) - shape.stride) {
                break;
            }
        }
    }

    /// Entry `j` of `node` stands for prefixes of `end` bits: where it (or
    /// a leaf under it) holds prefix length `len`, put `cover` instead.
    fn unset(&mut self, f: Family, node: u32, j: usize, cover: u32, len: u8, end: u32) {
        let e = self.load(f, node, j);
        if e & FIB_CHILD != 0 {
            let child = e & !FIB_CHILD;
            for k in 0..f.shape().fanout() as usize {
                self.unset(f, child, k, cover, len, end + f.shape().stride);
            }
            self.fold(f, node, j, end);
        } else if e & FIB_PRESENT != 0 && fib_plen(e) == len {
            self.store(f, node, j, cover);
        }
    }

    /// If the node entry `j` of `node` points at holds nothing of its own
    /// (each entry a leaf of a prefix no longer than `start`, the length
    /// the node begins at: they are then all the same), point the entry
    /// at that leaf and return the node to the pool. Returns whether it did.
    fn fold(&mut self, f: Family, node: u32, j: usize, start: u32) -> bool {
        let e = self.load(f, node, j);
        if e & FIB_CHILD == 0 {
            return true;
        }
        let child = e & !FIB_CHILD;
        let first = self.load(f, child, 0);
        for k in 0..f.shape().fanout() as usize {
            let c = self.load(f, child, k);
            if c & FIB_CHILD != 0 || (c & FIB_PRESENT != 0 && u32::from(fib_plen(c)) > start) {
                return false;
            }
            debug_assert_eq!(c, first, "inherited leaves of one node differ");
        }
        self.store(f, node, j, first);
        self.pools[f as usize].pending.push(child);
        true
    }

    /// `domain`'s slot and, per family, whether its table is in use.
    #[cfg(test)]
    fn domain_state(&self, domain: u32) -> Option<(Option<u32>, [bool; 2])> {
        self.domains.get(&domain).map(|d| (d.slot, d.fast))
    }
}
