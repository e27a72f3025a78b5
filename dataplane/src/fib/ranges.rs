//! The IPv4 side of the table (`msee_abi::fib`): a /16's addresses cut into
//! ranges of one route, the words they are kept in, and the shared list of
//! distinct routes a range points at.

use std::collections::BTreeMap;

/// The ranges of a /16 whose routes are `cover` (the route of the longest
/// prefix of /16 or shorter that covers it, 0 for none) and `prefixes`, the
/// longer ones inside it: `(first, end, leaf)`, offsets in the /16 (`end`
/// one past the last address), sorted by `first`, shorter first where two
/// start together. Returns each range's first address and route, in order,
/// the first at 0, no two neighbours with the same route (they merge: a
/// table costs the places its route changes, not its prefixes).
#[cfg(test)]
pub(crate) fn chunk_ranges(cover: u32, prefixes: &[(u32, u32, u32)]) -> Vec<(u16, u32)> {
    let mut out = Vec::new();
    chunk_ranges_into(cover, prefixes, &mut out, &mut Vec::new());
    out
}

/// [`chunk_ranges`] into `out`, with `open` for room (both cleared first:
/// the writer keeps them from /16 to /16 rather than allocate).
pub(crate) fn chunk_ranges_into(
    cover: u32,
    prefixes: &[(u32, u32, u32)],
    out: &mut Vec<(u16, u32)>,
    open: &mut Vec<(u32, u32)>,
) {
    out.clear();
    open.clear();
    let mut emit = |from: u32, leaf: u32| {
        if out.last().is_none_or(|&(_, last)| last != leaf) {
            out.push((from as u16, leaf));
        }
    };
    // The prefixes that hold the position reached, innermost last:
    // prefixes nest or are disjoint, so a stack of (end, leaf).
    let mut at = 0u32;
    for &(first, end, leaf) in prefixes {
        while let Some(&(top_end, top_leaf)) = open.last() {
            if top_end > first {
                break;
            }
            if at < top_end {
                emit(at, top_leaf);
                at = top_end;
            }
            open.pop();
        }
        if at < first {
            emit(at, open.last().map_or(cover, |o| o.1));
            at = first;
        }
        open.push((end, leaf));
    }
    while let Some((end, leaf)) = open.pop() {
        if at < end {
            emit(at, leaf);
            at = end;
        }
    }
    if at < 1 << 16 {
        emit(at, cover);
    }
}

/// Words a block of `words` takes: whole 16-byte quarters of a cache line,
/// so that freed blocks fit more of the blocks that follow. (Aligning
/// blocks to lines, so that a small /16's search reads one line, measured
/// no faster, and took a fifth more memory.)
pub(crate) fn block_size(words: u32) -> u32 {
    words.next_multiple_of(4)
}

/// Which words of `FIB_RANGES_V4` hold a /16's ranges, and which are free.
pub(crate) struct RangePool {
    /// Free blocks by size, to reuse now.
    free: BTreeMap<u32, Vec<u32>>,
    /// Unlinked blocks (first word, size), to reuse after the next grace
    /// period.
    pending: Vec<(u32, u32)>,
    /// Words from here to `capacity` were never used.
    next: u32,
    capacity: u32,
    in_use: u32,
}

impl RangePool {
    pub(crate) fn new(capacity: u32) -> Self {
        Self {
            free: BTreeMap::new(),
            pending: Vec::new(),
            next: 0,
            capacity,
            in_use: 0,
        }
    }

    /// Words held by blocks in use.
    pub(crate) fn in_use(&self) -> u32 {
        self.in_use
    }

    /// Words a table could still have: free, never used, and freed blocks
    /// that wait for a grace period.
    pub(crate) fn available(&self) -> u64 {
        u64::from(self.capacity - self.in_use)
    }

    /// The first word of a free block of `words` words, if one is free now
    /// (`None`: call [`RangePool::recycle`] after a grace period, or the
    /// pool is full).
    pub(crate) fn alloc(&mut self, words: u32) -> Option<u32> {
        let size = block_size(words);
        let first = if let Some(first) = self.free.get_mut(&size).and_then(Vec::pop) {
            first
        } else if self.capacity - self.next >= size {
            self.next += size;
            self.next - size
        } else {
            // The smallest larger free block, cut: its tail stays free.
            let (&larger, _) = self.free.range(size..).find(|(_, v)| !v.is_empty())?;
            let first = self.free.get_mut(&larger)?.pop()?;
            self.free
                .entry(larger - size)
                .or_default()
                .push(first + size);
            first
        };
        self.in_use += size;
        Some(first)
    }

    /// Words of the pool.
    pub(crate) fn capacity(&self) -> u32 {
        self.capacity
    }

    /// The block from `first` of `words` words is no longer pointed at: free
    /// after the next grace period.
    pub(crate) fn release(&mut self, first: u32, words: u32) {
        let size = block_size(words);
        self.in_use -= size;
        self.pending.push((first, size));
    }

    /// Whether blocks wait for a grace period.
    pub(crate) fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// A grace period has passed: the blocks that waited for it are free.
    /// Neighbouring free blocks merge (the pool is asked for words only
    /// when it has run out, so this is rare), and a free run that ends
    /// where the never-used words begin joins them: churn leaves no
    /// splinters that no /16 of more ranges can use.
    pub(crate) fn recycle(&mut self) {
        let mut blocks: Vec<(u32, u32)> = self.pending.drain(..).collect();
        for (&size, firsts) in &self.free {
            blocks.extend(firsts.iter().map(|&first| (first, size)));
        }
        self.free.clear();
        blocks.sort_unstable();
        let mut merged: Vec<(u32, u32)> = Vec::with_capacity(blocks.len());
        for (first, size) in blocks {
            match merged.last_mut() {
                Some((f, s)) if *f + *s == first => *s += size,
                _ => merged.push((first, size)),
            }
        }
        if let Some(&(first, size)) = merged.last()
            && first + size == self.next
        {
            self.next = first;
            merged.pop();
        }
        for (first, size) in merged {
            self.free.entry(size).or_default().push(first);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: u32 = 0x4000_0001;
    const B: u32 = 0x4000_0002;
    const C: u32 = 0x4000_0003;

    #[test]
    fn ranges_cut_where_the_route_changes() {
        // Nothing inside: one range of the cover.
        assert_eq!(chunk_ranges(A, &[]), [(0, A)]);
        assert_eq!(chunk_ranges(0, &[]), [(0, 0)]);
        // A /24 at the start, one in the middle with a /26 inside it, and
        // one at the end; the cover elsewhere.
        let ranges = chunk_ranges(
            A,
            &[
                (0, 256, B),
                (0x1000, 0x1100, B),
                (0x1040, 0x1080, C),
                (0xff00, 0x10000, C),
            ],
        );
        assert_eq!(
            ranges,
            [
                (0, B),
                (0x100, A),
                (0x1000, B),
                (0x1040, C),
                (0x1080, B),
                (0x1100, A),
                (0xff00, C)
            ]
        );
        // Neighbours of one route merge, with the cover too.
        let ranges = chunk_ranges(A, &[(0, 256, A), (256, 512, B), (512, 768, B)]);
        assert_eq!(ranges, [(0, A), (256, B), (768, A)]);
        // Nested prefixes that start together, and ones that end together.
        let ranges = chunk_ranges(
            0,
            &[(0x200, 0x400, A), (0x200, 0x300, B), (0x380, 0x400, C)],
        );
        assert_eq!(
            ranges,
            [(0, 0), (0x200, B), (0x300, A), (0x380, C), (0x400, 0)]
        );
    }

    #[test]
    fn blocks_are_reused_only_after_a_grace_period() {
        let mut pool = RangePool::new(64);
        assert_eq!(block_size(1), 4);
        let a = pool.alloc(5).unwrap();
        let b = pool.alloc(8).unwrap();
        assert_eq!((a, b), (0, 8), "5 words take 8");
        assert_eq!(pool.in_use(), 16);
        pool.release(a, 5);
        assert_eq!(
            pool.alloc(49),
            None,
            "48 words never used, a's not free yet"
        );
        assert_eq!(pool.alloc(40), Some(16));
        assert_eq!(pool.alloc(12), None);
        assert!(pool.has_pending());
        pool.recycle();
        assert_eq!(pool.alloc(7), Some(0), "a's block, after the grace period");
        assert_eq!((pool.in_use(), pool.available()), (56, 8));
        // With nothing left to hand out, a larger free block is cut.
        let mut pool = RangePool::new(16);
        assert_eq!(pool.alloc(16), Some(0));
        pool.release(0, 16);
        pool.recycle();
        assert_eq!(pool.alloc(3), Some(0));
        assert_eq!(pool.alloc(12), Some(4), "the rest of it");
        assert_eq!(pool.alloc(1), None);
        // Freed neighbours merge: four blocks of 4 make room for 16.
        let mut pool = RangePool::new(32);
        let blocks: Vec<u32> = (0..8).map(|_| pool.alloc(4).unwrap()).collect();
        for &b in &blocks[2..6] {
            pool.release(b, 4);
        }
        pool.recycle();
        assert_eq!(pool.alloc(16), Some(8));
        // And a free run at the end goes back to the never-used words.
        pool.release(blocks[6], 4);
        pool.release(blocks[7], 4);
        pool.recycle();
        assert_eq!(pool.alloc(8), Some(24));
    }
}
