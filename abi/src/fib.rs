//! The forwarding table `msee` looks routes up in before the LPM tries:
//! per routing domain and address family, a multibit trie of fixed strides
//! with its routes pushed to the leaves, in BPF arrays that userspace
//! writes through a shared mapping. A lookup is one load per level,
//! whatever the table size: the root entry (the address's top
//! `root_bits`), then one node entry per further `stride` bits, until a
//! leaf. IPv4 ([`FIB_V4`]: a 16-bit root, then nodes of 256 entries):
//! a route of /16 or shorter is found in the root, /17../24 in 1 + 1
//! loads, /25../32 in 1 + 2. IPv6 ([`FIB_V6`]: a 12-bit root, then nodes
//! of 16 entries, one 64-byte cache line): 1 + 9 loads for a /48, at most
//! 1 + 29.
//!
//! Layout: `FIB_NODES_V4` and `FIB_NODES_V6` are arrays of nodes. The first
//! `slots * root_nodes` are the roots (slot `s`'s root is nodes
//! `s * root_nodes ..`, its `1 << root_bits` entries in order); the rest
//! is a pool of nodes shared by every domain. `FIB_DOMAINS[domain]` says
//! which slot holds the domain's tables and for which families they are
//! complete ([`fib_domain_word`]); a domain without a table (ids from
//! [`FIB_MAX_DOMAINS`] on, no slot left, or the pool ran out) is looked up
//! in the LPM tries, which keep every route, and `FIB_FALLBACK` counts
//! those lookups.
//!
//! Entries are `u32`: 0 is "no route"; [`FIB_CHILD`] plus a node index
//! points one level down; otherwise a leaf ([`fib_leaf`]) holds the route
//! and the length of the prefix it came from, so that userspace can tell,
//! entry by entry, which prefix a write may replace. Every change is one
//! aligned 4-byte store: a lookup sees each entry old or new, never torn,
//! and a new node is filled before anything points at it.

use crate::{MAX_GROUPS, ROUTE_LOCAL, ROUTE_NONE, ROUTE_OUT_OF_REACH, Route};

/// Map names.
pub const FIB_DOMAINS_MAP: &str = "FIB_DOMAINS";
pub const FIB_NODES_V4_MAP: &str = "FIB_NODES_V4";
pub const FIB_NODES_V6_MAP: &str = "FIB_NODES_V6";
pub const FIB_FALLBACK_MAP: &str = "FIB_FALLBACK";

/// The strides of one family's tables.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FibShape {
    /// Address bits.
    pub bits: u32,
    /// Bits of the address the root is indexed by.
    pub root_bits: u32,
    /// Bits of each level below the root.
    pub stride: u32,
}

impl FibShape {
    /// Entries of a node.
    pub const fn fanout(&self) -> u32 {
        1 << self.stride
    }

    /// Nodes one root takes.
    pub const fn root_nodes(&self) -> u32 {
        1 << (self.root_bits - self.stride)
    }

    /// Node levels below the root, at most.
    pub const fn levels(&self) -> u32 {
        (self.bits - self.root_bits) / self.stride
    }

    /// Bytes of a node.
    pub const fn node_bytes(&self) -> u32 {
        4 * self.fanout()
    }

    /// The prefix length the entries of a node of `level` (0: just below
    /// the root) stand for.
    pub const fn level_end(&self, level: u32) -> u32 {
        self.root_bits + self.stride * (level + 1)
    }

    const fn valid(&self) -> bool {
        self.root_bits >= self.stride
            && (self.bits - self.root_bits).is_multiple_of(self.stride)
            && 64 % self.stride == 0
    }
}

/// IPv4: a 16-bit root (256 KiB per domain), then 8-bit strides in nodes
/// of 1 KiB. Two levels at most: a table of /24s costs one node per /16
/// that holds any, and each longer prefix at most one node more.
pub const FIB_V4: FibShape = FibShape {
    bits: 32,
    root_bits: 16,
    stride: 8,
};
/// IPv6: a 12-bit root (16 KiB per domain), then 4-bit strides in nodes of
/// one 64-byte cache line: IPv6 prefixes are long and sparse, so a wider
/// stride would mostly copy leaves.
pub const FIB_V6: FibShape = FibShape {
    bits: 128,
    root_bits: 12,
    stride: 4,
};
const _: () = assert!(FIB_V4.valid() && FIB_V6.valid());

/// A node of each family's map (the maps are created mmapable, so their
/// values start page-aligned and each node is whole cache lines).
pub type FibNodeV4 = [u32; FIB_V4.fanout() as usize];
pub type FibNodeV6 = [u32; FIB_V6.fanout() as usize];

/// `FIB_DOMAINS` entries (`u32`s, which the array spaces 8 bytes apart as
/// it does every value): domain ids from here on are left to the tries.
pub const FIB_MAX_DOMAINS: u32 = 65536;
/// `FIB_DOMAINS` value: the domain's IPv4 / IPv6 table is complete and in
/// use, at the slot in the low bits.
pub const FIB_SERVES_V4: u32 = 1 << 31;
pub const FIB_SERVES_V6: u32 = 1 << 30;
pub const FIB_SLOT_MASK: u32 = 0xffff;

/// Domain slots (tables) when the loader is not told otherwise
/// (`dataplane::LoadOptions`): 100 circuits' two peerings and more.
pub const FIB_DEFAULT_SLOTS: u32 = 256;
/// Pool nodes of each family when the loader is not told otherwise: 64 MiB
/// of IPv4 nodes, 4 MiB of IPv6 nodes.
pub const FIB_DEFAULT_POOL_V4: u32 = 1 << 16;
pub const FIB_DEFAULT_POOL_V6: u32 = 1 << 16;

/// `FIB_FALLBACK` rows (per-CPU `u64`): lookups the LPM trie answered
/// because the domain had no table of the family.
pub const FIB_FALLBACK_V4: u32 = 0;
pub const FIB_FALLBACK_V6: u32 = 1;

// A leaf keeps the group in 16 bits.
const _: () = assert!(MAX_GROUPS <= 1 << 16);

/// An entry pointing at node `index` (the low 31 bits).
pub const FIB_CHILD: u32 = 1 << 31;
/// A leaf with a route (an entry of 0 has none).
pub const FIB_PRESENT: u32 = 1 << 30;
const PLEN_SHIFT: u32 = 20;
const FLAGS_SHIFT: u32 = 16;
/// The route flags a leaf can hold.
pub const FIB_ROUTE_FLAGS: u32 = ROUTE_OUT_OF_REACH | ROUTE_LOCAL;
const _: () = assert!(FIB_ROUTE_FLAGS < 1 << (PLEN_SHIFT - FLAGS_SHIFT));

/// The `FIB_DOMAINS` word of a domain at `slot` with the tables of
/// `families` (`FIB_SERVES_V4`, `FIB_SERVES_V6`) in use.
#[inline(always)]
pub const fn fib_domain_word(slot: u32, families: u32) -> u32 {
    (slot & FIB_SLOT_MASK) | families
}

/// A leaf for `route` from a prefix of `plen` bits. `route.group` must be
/// below `MAX_GROUPS` and its flags within `FIB_ROUTE_FLAGS`.
#[inline(always)]
pub const fn fib_leaf(route: Route, plen: u8) -> u32 {
    FIB_PRESENT
        | (plen as u32) << PLEN_SHIFT
        | (route.flags & FIB_ROUTE_FLAGS) << FLAGS_SHIFT
        | (route.group & 0xffff)
}

/// The route of a leaf (`ROUTE_NONE` for an entry without one).
#[inline(always)]
pub const fn fib_route(entry: u32) -> Route {
    if entry & FIB_PRESENT == 0 {
        return Route {
            group: 0,
            flags: ROUTE_NONE,
        };
    }
    Route {
        group: entry & 0xffff,
        flags: (entry >> FLAGS_SHIFT) & FIB_ROUTE_FLAGS,
    }
}

/// The prefix length of a leaf (0 for an entry without a route).
#[inline(always)]
pub const fn fib_plen(entry: u32) -> u8 {
    (entry >> PLEN_SHIFT) as u8
}

/// Walk down from `entry` (a root entry) to a leaf: at most `levels` node
/// loads, `index(level)` the address's bits that pick the entry in a node
/// of that level (0 first), `load(n, j)` entry `j` of node `n` of the
/// family's map (`None`: a node past the map, which userspace never
/// links). Returns the leaf, or `None` where the walk could not finish
/// (the caller then asks the LPM trie).
#[inline(always)]
pub fn fib_walk(
    mut entry: u32,
    levels: u32,
    index: impl Fn(u32) -> usize,
    load: impl Fn(u32, usize) -> Option<u32>,
) -> Option<u32> {
    let mut level = 0;
    while level < levels {
        if entry & FIB_CHILD == 0 {
            return Some(entry);
        }
        entry = load(entry & !FIB_CHILD, index(level))?;
        level += 1;
    }
    if entry & FIB_CHILD == 0 {
        Some(entry)
    } else {
        None
    }
}

/// The node of slot `slot`'s root (of `shape`) that holds the entry for an
/// address whose top `root_bits` bits are `top`, and the entry's index in it.
#[inline(always)]
pub const fn fib_root_entry(shape: &FibShape, slot: u32, top: u32) -> (u32, usize) {
    (
        slot * shape.root_nodes() + (top >> shape.stride),
        (top & (shape.fanout() - 1)) as usize,
    )
}
