//! The forwarding table `msee` looks routes up in before the LPM tries,
//! per routing domain and address family, in BPF arrays that userspace
//! writes through a shared mapping.
//!
//! IPv4 is a direct table with range tables behind it (the DXR scheme of
//! Zec, Rizzo and Mikuc): the root, indexed by the address's top 16 bits,
//! holds either the route of the whole /16 (a leaf) or where the /16's
//! ranges start in `FIB_RANGES_V4`. A /16's ranges are its addresses cut
//! where the route changes, neighbours of one route merged, each its first
//! address's low 16 bits over the index of its route in `FIB_LEAVES` (the
//! distinct routes, shared by every domain): 4 bytes, or 2 where every
//! range starts at a /24 and every index is below 256 (short ranges, as
//! the Internet's table has). The root entry says how many, up to 127
//! (more: a header word before them). A lookup is the root entry, then a
//! binary search of the /16's ranges, then the leaf: a table compresses to
//! about the places where its route changes, whatever the prefix lengths,
//! so a million Internet routes of one next hop take about 1.4 MiB.
//!
//! IPv6 is a multibit trie of fixed strides with its routes pushed to the
//! leaves ([`FIB_V6`]: a 12-bit root, then nodes of 16 entries, one
//! 64-byte cache line): 1 + 9 loads for a /48, at most 1 + 29.
//!
//! Layout: `FIB_NODES_V4` holds the IPv4 roots (slot `s`'s root is nodes
//! `s * root_nodes ..`, its `1 << 16` entries in order), `FIB_RANGES_V4`
//! the range words of every domain, in 64-byte lines. `FIB_NODES_V6`'s
//! first `slots * root_nodes` nodes are the IPv6 roots, the rest a pool of
//! nodes shared by every domain. `FIB_DOMAINS[domain]` says which slot
//! holds the domain's tables and for which families they are complete
//! ([`fib_domain_word`]); a domain without a table (ids from
//! [`FIB_MAX_DOMAINS`] on, no slot left, or the pool ran out) is looked up
//! in the LPM tries, which keep every route, and `FIB_FALLBACK` counts
//! those lookups.
//!
//! Entries are `u32`: 0 is "no route"; [`FIB_CHILD`] plus an index points
//! one level down (IPv6: a node; IPv4: a /16's ranges); otherwise a leaf
//! ([`fib_leaf`]) holds the route (IPv6 leaves also the length of the
//! prefix they came from, so that userspace can tell, entry by entry,
//! which prefix a write may replace). Every change is one aligned 4-byte
//! store: a lookup sees each entry old or new, never torn, and new ranges
//! or a new node are filled before anything points at them.

use crate::{MAX_GROUPS, ROUTE_LOCAL, ROUTE_NONE, ROUTE_OUT_OF_REACH, Route};

/// Map names.
pub const FIB_DOMAINS_MAP: &str = "FIB_DOMAINS";
pub const FIB_NODES_V4_MAP: &str = "FIB_NODES_V4";
pub const FIB_NODES_V6_MAP: &str = "FIB_NODES_V6";
pub const FIB_RANGES_V4_MAP: &str = "FIB_RANGES_V4";
pub const FIB_LEAVES_MAP: &str = "FIB_LEAVES";
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

/// IPv4: a 16-bit root (256 KiB per domain), in nodes of 1 KiB; what
/// lies behind a root entry is a /16's ranges (`FIB_RANGES_V4`), not
/// nodes.
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
/// Pool sizes when the loader is not told otherwise: IPv4 range lines
/// (64 bytes, 16 words each: 8 MiB, about two million ranges), IPv6 nodes
/// (4 MiB).
pub const FIB_DEFAULT_POOL_V4: u32 = 1 << 17;
pub const FIB_DEFAULT_POOL_V6: u32 = 1 << 16;

/// A line of `FIB_RANGES_V4` and of `FIB_LEAVES`: 16 words, one cache line
/// (a BPF array spaces values of 4 bytes 8 apart; lines waste nothing).
pub const FIB_LINE_WORDS: u32 = 16;
pub type FibLine = [u32; FIB_LINE_WORDS as usize];
/// Distinct routes `FIB_LEAVES` holds (a range keeps a route's index in 16
/// bits); index 0 is "no route".
pub const FIB_LEAF_IDS: u32 = 1 << 16;
/// Binary-search steps that find a range among the most a /16 can have
/// (65,536: one per address).
pub const FIB_RANGE_STEPS: u32 = 17;

/// An IPv4 root entry for a /16 whose ranges are at word `at` of
/// `FIB_RANGES_V4`: `at` in the low [`FIB_RANGES_AT_BITS`] bits, whether the
/// ranges are short ([`FIB_RANGES_SHORT`]), and above them how many ranges
/// there are, up to 127; for more, 0, and the ranges follow a header word
/// at `at` ([`fib_ranges_header`]). Most /16s have fewer: no header word to
/// keep, and no dependent load to read it.
#[inline(always)]
pub const fn fib_ranges_entry(at: u32, count: u32, short: bool) -> u32 {
    let inline = if count <= FIB_RANGES_INLINE_MAX {
        count
    } else {
        0
    };
    let short = if short { FIB_RANGES_SHORT } else { 0 };
    FIB_CHILD | inline << FIB_RANGES_COUNT_SHIFT | short | at & FIB_RANGES_AT_MASK
}
/// Bits of a range root entry that say where the ranges start: the pool
/// holds at most `1 << 23` words (32 MiB).
pub const FIB_RANGES_AT_BITS: u32 = 23;
pub const FIB_RANGES_AT_MASK: u32 = (1 << FIB_RANGES_AT_BITS) - 1;
/// A /16's ranges are short: two to a word, each a 16-bit word of the
/// range's first /24 (the third byte of its address) over its route's
/// index, below 256 (every prefix of the /16 is /24 or shorter, as in the
/// Internet's table). Long ranges: one word each, [`fib_range`].
pub const FIB_RANGES_SHORT: u32 = 1 << FIB_RANGES_AT_BITS;
const FIB_RANGES_COUNT_SHIFT: u32 = FIB_RANGES_AT_BITS + 1;
const FIB_RANGES_INLINE_MAX: u32 = (FIB_CHILD >> FIB_RANGES_COUNT_SHIFT) - 1;

/// The header word of a /16's ranges: how many, and whether short.
#[inline(always)]
pub const fn fib_ranges_header(count: u32, short: bool) -> u32 {
    count | if short { FIB_CHILD } else { 0 }
}

/// Words `count` ranges take, short or long.
#[inline(always)]
pub const fn fib_ranges_words(count: u32, short: bool) -> u32 {
    if short { count.div_ceil(2) } else { count }
}

/// The ranges of a range root entry: how many, and the word of the first.
/// `header` reads the header word, for a /16 of more than 127.
#[inline(always)]
pub fn fib_ranges_of(entry: u32, header: impl FnOnce(u32) -> Option<u32>) -> Option<(u32, u32)> {
    let at = fib_ranges_at(entry);
    match fib_ranges_count(entry) {
        0 => Some((header(at)? & !FIB_CHILD, at + 1)),
        count => Some((count, at)),
    }
}

/// Where a range root entry's header word is.
#[inline(always)]
pub const fn fib_ranges_at(entry: u32) -> u32 {
    entry & FIB_RANGES_AT_MASK
}

/// How many ranges a range root entry says its /16 has (0: as many as its
/// header word says).
#[inline(always)]
pub const fn fib_ranges_count(entry: u32) -> u32 {
    (entry & !FIB_CHILD) >> FIB_RANGES_COUNT_SHIFT
}

/// A long range word: the range's first address's low 16 bits, and the
/// index of its route in `FIB_LEAVES`.
#[inline(always)]
pub const fn fib_range(start: u16, leaf_id: u16) -> u32 {
    (start as u32) << 16 | leaf_id as u32
}

/// A short range (see [`FIB_RANGES_SHORT`]): a range starting at a /24
/// (`start`'s low byte 0), whose route has an index below 256. Range `i`
/// is in the low half of word `i / 2` when `i` is even.
#[inline(always)]
pub const fn fib_short_range(start: u16, leaf_id: u8) -> u16 {
    start & 0xff00 | leaf_id as u16
}

/// The last of `count` sorted ranges (`value(i)`: the range's word, or its
/// 16 bits if short, which sort as the ranges' first addresses do) whose
/// value is at most `key`; the first range starts at 0, so there is one.
/// A binary search of at most [`FIB_RANGE_STEPS`] loads and one more.
/// `None`: no ranges, or a load past the map (userspace never points
/// there).
#[inline(always)]
pub fn fib_range_search(count: u32, key: u32, value: impl Fn(u32) -> Option<u32>) -> Option<u32> {
    let mut base = 0;
    let mut len = count;
    let mut step = 0;
    while step < FIB_RANGE_STEPS {
        if len <= 1 {
            break;
        }
        let half = len / 2;
        // Without a branch: which half holds the answer is as random as
        // the addresses, and a mispredicted branch per step costs more
        // than the arithmetic.
        let below = (u64::from(key).wrapping_sub(u64::from(value(base + half)?)) >> 63) as u32;
        base += half * (1 ^ below);
        len -= half;
        step += 1;
    }
    if len != 1 {
        return None;
    }
    value(base)
}

/// The index in `FIB_LEAVES` of the route an IPv4 address whose low 16
/// bits are `low` has in the /16 of range root entry `entry`; `word(w)`
/// reads word `w` of `FIB_RANGES_V4`.
#[inline(always)]
pub fn fib_range_lookup(entry: u32, low: u16, word: impl Fn(u32) -> Option<u32>) -> Option<u16> {
    let (count, first) = fib_ranges_of(entry, &word)?;
    if entry & FIB_RANGES_SHORT != 0 {
        // Every address of a /24 is past the ranges starting at or before it.
        let key = (u32::from(low) & 0xff00) | 0xff;
        let found = fib_range_search(count, key, |i| {
            Some((word(first + i / 2)? >> (16 * (i & 1))) & 0xffff)
        })?;
        Some((found & 0xff) as u16)
    } else {
        // Every word of a range starting at or before `low` is at most `key`.
        let key = u32::from(low) << 16 | 0xffff;
        let found = fib_range_search(count, key, |i| word(first + i))?;
        Some(found as u16)
    }
}

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

#[cfg(test)]
mod tests {
    extern crate std;
    use std::{vec, vec::Vec};

    use super::*;

    /// Words of a /16's ranges (a header first) from `(start, id)`s.
    fn block(ranges: &[(u16, u16)], short: bool) -> Vec<u32> {
        let count = ranges.len() as u32;
        let mut words = vec![fib_ranges_header(count, short)];
        if short {
            for pair in ranges.chunks(2) {
                let half = |k: usize| {
                    pair.get(k)
                        .map_or(0, |&(s, id)| u32::from(fib_short_range(s, id as u8)))
                };
                words.push(half(0) | half(1) << 16);
            }
        } else {
            words.extend(ranges.iter().map(|&(s, id)| fib_range(s, id)));
        }
        assert_eq!(words.len() as u32, 1 + fib_ranges_words(count, short));
        words
    }

    #[test]
    fn a_range_lookup_finds_the_range_of_every_address() {
        // Ranges from 0, 10, 11, 300, 65535 (long) or from the /24s 0, 10,
        // 11, 44, 255 (short), each range's index + 1 as its route, for
        // every count of them, the count in the entry or in the header.
        let long = [0u16, 10, 11, 300, 65535];
        let short = [0u16, 10 << 8, 11 << 8, 44 << 8, 255 << 8];
        for (starts, is_short) in [(long, false), (short, true)] {
            for count in 1..=starts.len() {
                let ranges: Vec<(u16, u16)> = starts[..count]
                    .iter()
                    .enumerate()
                    .map(|(i, &s)| (s, i as u16 + 1))
                    .collect();
                let words = block(&ranges, is_short);
                let word = |w: u32| words.get(w as usize).copied();
                // The count in the entry (no header: the ranges at word 1
                // here), or in the header at word 0.
                for entry in [
                    fib_ranges_entry(1, count as u32, is_short),
                    fib_ranges_entry(0, 1000, is_short),
                ] {
                    for low in 0..=u16::MAX {
                        let want = starts[..count].iter().rposition(|&s| s <= low).unwrap() + 1;
                        assert_eq!(
                            fib_range_lookup(entry, low, word),
                            Some(want as u16),
                            "{count} ranges (short: {is_short}), address {low}"
                        );
                    }
                }
            }
        }
        // A /16 of one range per address takes every step.
        let ranges: Vec<(u16, u16)> = (0..=u16::MAX).map(|s| (s, s)).collect();
        let words = block(&ranges, false);
        let entry = fib_ranges_entry(0, 1 << 16, false);
        for low in [0, 1, 12345, u16::MAX] {
            let found = fib_range_lookup(entry, low, |w| words.get(w as usize).copied());
            assert_eq!(found, Some(low));
        }
        // Root entries keep up to 127 ranges' count.
        for (at, count) in [(0, 2), (12345, 127), (FIB_RANGES_AT_MASK, 128), (7, 65536)] {
            for short in [false, true] {
                let e = fib_ranges_entry(at, count, short);
                assert!(e & FIB_CHILD != 0);
                assert_eq!(e & FIB_RANGES_SHORT != 0, short);
                assert_eq!(fib_ranges_at(e), at);
                assert_eq!(fib_ranges_count(e), if count <= 127 { count } else { 0 });
            }
        }
        // No ranges, or a word past the map: no answer.
        assert_eq!(fib_range_search(0, 5, |_| Some(0)), None);
        assert_eq!(fib_range_search(4, 5, |_| None), None);
        assert_eq!(
            fib_range_lookup(fib_ranges_entry(0, 3, false), 5, |_| None),
            None
        );
    }
}
