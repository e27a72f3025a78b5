//! The L3 stage: check the IP header, hand the MSEE's own traffic to the
//! kernel, and find the route (and its group) for the destination in the
//! attachment's routing domain: through the ingress link's memo of the
//! destination routed last, this CPU's destination cache, then the
//! domain's forwarding table (`msee_abi::fib`), or the LPM trie for a
//! domain without one.

use aya_ebpf::{
    maps::{Array, PerCpuArray, lpm_trie::Key},
    programs::XdpContext,
};
use msee_abi::{
    CACHED_GROUP_MISSING, CachedGroup, DropReason, ROUTE_CACHE_V4_SLOTS, ROUTE_CACHE_V6_SLOTS,
    ROUTE_LOCAL, ROUTE_NONE, ROUTE_OUT_OF_REACH, Resolved, Route, RouteCacheV4, RouteCacheV6,
    RouteKeyV4, RouteKeyV6,
    fib::{
        FIB_CHILD, FIB_FALLBACK_V4, FIB_FALLBACK_V6, FIB_LINE_WORDS, FIB_SERVES_V4, FIB_SERVES_V6,
        FIB_SLOT_MASK, FIB_V4, FIB_V6, FibLine, fib_range_lookup, fib_root_entry, fib_route,
        fib_walk,
    },
    route_key_v4, route_key_v6,
};
use xdp_ebpf::{
    msee::{
        parse::walk_ext_headers,
        route::{
            CacheSlot, L3, NO_ROUTE, cache_set_v4, cache_set_v6, ipv4_header_ok, ipv6_header_ok,
            kernel_only_v4, kernel_only_v6, route_outcome, through_memo, two_way,
        },
    },
    net::{IPV4_MIN_HDR_LEN, IPV6_HDR_LEN, be16, load32_halves},
    ptr_at,
};

use crate::maps::{
    FIB_DOMAINS, FIB_FALLBACK, FIB_LEAVES, FIB_NODES_V4, FIB_NODES_V6, FIB_RANGES_V4, GROUPS,
    ROUTE_CACHE_V4, ROUTE_CACHE_V6, ROUTES_V4, ROUTES_V6,
};

/// Validate the IPv4 header, hand the MSEE's own traffic to the kernel and
/// look the destination up in the routing domain.
#[inline(always)]
pub(crate) fn lookup_v4<'m>(
    ctx: &XdpContext,
    l3_off: usize,
    domain: u32,
    epoch: u64,
    memo: &'m mut RouteCacheV4,
) -> L3<'m> {
    let frame_len = ctx.data_end() - ctx.data();
    let Some(ip) = ptr_at::<[u8; IPV4_MIN_HDR_LEN]>(ctx, l3_off) else {
        return L3::Drop(DropReason::Malformed);
    };
    let ip = unsafe { &*ip };
    if !ipv4_header_ok(ip, l3_off, frame_len) {
        return L3::Drop(DropReason::Malformed);
    }
    let dst = load32_halves(ip.as_ptr().wrapping_add(16)).to_ne_bytes();
    if kernel_only_v4(dst) {
        return L3::Pass;
    }
    // One lookup answers both "is it ours?" and "where does it go?".
    route_v4(domain, dst, epoch, memo);
    let resolved = &memo.resolved;
    if resolved.route.flags & ROUTE_LOCAL != 0 {
        return L3::Pass;
    }
    if ip[8] <= 1 {
        return L3::Drop(DropReason::TtlExpired);
    }
    route_outcome(resolved)
}

/// The IPv6 counterpart of `lookup_v4`, with a bounded walk of extension
/// headers (a header cut short, or claiming more than the packet holds, is
/// malformed). Inline, like `lookup_v4` (`route_v6` and the walk are the
/// parts out of line, for the stack budget).
#[inline(always)]
pub(crate) fn lookup_v6<'m>(
    ctx: &XdpContext,
    l3_off: usize,
    domain: u32,
    epoch: u64,
    memo: &'m mut RouteCacheV6,
) -> L3<'m> {
    let frame_len = ctx.data_end() - ctx.data();
    let Some(ip) = ptr_at::<[u8; IPV6_HDR_LEN]>(ctx, l3_off) else {
        return L3::Drop(DropReason::Malformed);
    };
    let ip = unsafe { &*ip };
    if !ipv6_header_ok(ip, l3_off, frame_len) {
        return L3::Drop(DropReason::Malformed);
    }
    // The destination stays in the packet: map lookups take packet pointers.
    let dst = unsafe { &*(ip.as_ptr().add(24) as *const [u8; 16]) };
    // Multicast (ND, ...) and link-local are the kernel's; so are our own.
    if kernel_only_v6(dst) {
        return L3::Pass;
    }
    route_v6(domain, dst, epoch, memo);
    let resolved = &memo.resolved;
    if resolved.route.flags & ROUTE_LOCAL != 0 {
        return L3::Pass;
    }
    if ip[7] <= 1 {
        return L3::Drop(DropReason::TtlExpired);
    }
    let Some(t) = walk_ext_headers(ctx, ip[6], l3_off + IPV6_HDR_LEN) else {
        return L3::Drop(DropReason::Malformed);
    };
    let off = t.off as usize;
    if off > l3_off + IPV6_HDR_LEN + be16(ip, 4) as usize {
        return L3::Drop(DropReason::Malformed);
    }
    route_outcome(resolved)
}

/// Leave the longest-prefix match for `dst` in `domain`, and its group, in
/// `memo` (the ingress link's `LinkRow::last_v4` on this CPU): there
/// already if `dst` is the destination routed last, else found through this
/// CPU's destination cache (`through_memo`). The stages after read the
/// answer where it lies rather than a copy.
#[inline(always)]
fn route_v4(domain: u32, dst: [u8; 4], epoch: u64, memo: &mut RouteCacheV4) {
    let key = route_key_v4(domain, dst);
    through_memo(memo, key, epoch, || {
        let set = cache_set_v4(
            u64::from_ne_bytes(key),
            (ROUTE_CACHE_V4_SLOTS / 2).trailing_zeros(),
        );
        through_cache(&ROUTE_CACHE_V4, set, epoch, key, |key| {
            fib_v4(domain, u32::from_be_bytes(dst)).unwrap_or_else(|| trie_v4(key))
        })
    })
}

/// One entry of a forwarding table node, read once: userspace rewrites
/// entries while we walk, and a second read could see another value.
#[inline(always)]
fn entry<const N: usize>(node: &[u32; N], j: usize) -> u32 {
    // SAFETY: `j` is masked below `N` by the callers (and the indexing
    // checks it); a volatile read of an aligned u32 of a live map value.
    unsafe { core::ptr::read_volatile(&node[j]) }
}

/// The slot of `domain`'s table of the family `serves` names, if it has one.
#[inline(always)]
fn fib_slot(domain: u32, serves: u32) -> Option<u32> {
    let word = FIB_DOMAINS.get_ptr(domain)?;
    // SAFETY: a live map value, read once (userspace rewrites it).
    let word = unsafe { core::ptr::read_volatile(word) };
    (word & serves != 0).then_some(word & FIB_SLOT_MASK)
}

/// Word `w` of a map of lines (`FIB_RANGES_V4`, `FIB_LEAVES`), read once.
#[inline(always)]
fn line_word(map: &Array<FibLine>, w: u32) -> Option<u32> {
    Some(entry(
        map.get(w / FIB_LINE_WORDS)?,
        (w % FIB_LINE_WORDS) as usize,
    ))
}

/// The route `domain`'s forwarding table gives the IPv4 address `addr`
/// (host order); `None`: the domain has none, ask the trie. The root entry
/// is the /16's route, or where its ranges start (a header word: how many,
/// which the entry also says for a /16 of few ranges).
#[inline(always)]
fn fib_v4(domain: u32, addr: u32) -> Option<Route> {
    let slot = fib_slot(domain, FIB_SERVES_V4)?;
    let (n, j) = fib_root_entry(&FIB_V4, slot, addr >> (32 - FIB_V4.root_bits));
    let root = entry(FIB_NODES_V4.get(n)?, j);
    if root & FIB_CHILD == 0 {
        return Some(fib_route(root));
    }
    let id = fib_range_lookup(root, addr as u16, |w| line_word(&FIB_RANGES_V4, w))?;
    Some(fib_route(line_word(&FIB_LEAVES, u32::from(id))?))
}

/// The IPv6 counterpart of `fib_v4`, for the address as two big-endian
/// halves.
#[inline(always)]
fn fib_v6(domain: u32, hi: u64, lo: u64) -> Option<Route> {
    let slot = fib_slot(domain, FIB_SERVES_V6)?;
    let (n, j) = fib_root_entry(&FIB_V6, slot, (hi >> (64 - FIB_V6.root_bits)) as u32);
    let root = entry(FIB_NODES_V6.get(n)?, j);
    let mask = u64::from(FIB_V6.fanout() - 1);
    let leaf = fib_walk(
        root,
        FIB_V6.levels(),
        |level| {
            // Where the level's bits sit: FIB_V6's stride divides 64, so
            // they never straddle the halves.
            let shift = 128 - FIB_V6.level_end(level);
            let bits = if shift >= 64 {
                hi >> (shift - 64)
            } else {
                lo >> shift
            };
            (bits & mask) as usize
        },
        |n, j| Some(entry(FIB_NODES_V6.get(n)?, j)),
    )?;
    Some(fib_route(leaf))
}

/// Count a lookup the trie answers (`FIB_FALLBACK`).
#[inline(always)]
fn count_fallback(row: u32) {
    if let Some(c) = FIB_FALLBACK.get_ptr_mut(row) {
        // SAFETY: this CPU's own row of a per-CPU map.
        unsafe { *c += 1 };
    }
}

#[inline(always)]
fn trie_v4(key: &RouteKeyV4) -> Route {
    count_fallback(FIB_FALLBACK_V4);
    ROUTES_V4
        .get(Key::new(64, *key))
        .copied()
        .unwrap_or(NO_ROUTE)
}

/// The IPv6 counterpart of `route_v4`.
#[inline(never)]
fn route_v6(domain: u32, dst: &[u8; 16], epoch: u64, memo: &mut RouteCacheV6) {
    let key = route_key_v6(domain, *dst);
    through_memo(memo, key, epoch, || {
        let [hi, lo] = unsafe { &*(dst.as_ptr() as *const [[u8; 8]; 2]) };
        let set = cache_set_v6(
            domain,
            u64::from_ne_bytes(*hi),
            u64::from_ne_bytes(*lo),
            (ROUTE_CACHE_V6_SLOTS / 2).trailing_zeros(),
        );
        let (hi, lo) = (u64::from_be_bytes(*hi), u64::from_be_bytes(*lo));
        through_cache(&ROUTE_CACHE_V6, set, epoch, key, |key| {
            fib_v6(domain, hi, lo).unwrap_or_else(|| trie_v6(key))
        })
    })
}

/// Look `key` up in the two-way `set` of this CPU's `cache` (`two_way`),
/// else in the trie (`lookup`) and `GROUPS`. `epoch` was read before the
/// trie: a write racing this lookup bumps it afterwards, so what gets
/// cached here is retired at once.
#[inline(always)]
fn through_cache<S: CacheSlot>(
    cache: &PerCpuArray<[S; 2]>,
    set: u32,
    epoch: u64,
    key: S::Key,
    lookup: impl Fn(&S::Key) -> Route,
) -> Resolved {
    let Some(ways) = cache.get_ptr_mut(set) else {
        return resolve(lookup(&key));
    };
    two_way(unsafe { &mut *ways }, key, epoch, |key| {
        resolve(lookup(key))
    })
}

/// A route from the trie with a copy of its group's head (see
/// `msee_abi::CachedGroup`); routes that forward nowhere need none.
#[inline(always)]
fn resolve(route: Route) -> Resolved {
    let mut group = CachedGroup::default();
    if route.flags & (ROUTE_NONE | ROUTE_LOCAL | ROUTE_OUT_OF_REACH) == 0 {
        match GROUPS.get(route.group) {
            Some(g) => {
                group.count = g.count;
                group.members = [g.members[0], g.members[1]];
            }
            None => group.count = CACHED_GROUP_MISSING,
        }
    }
    Resolved { route, group }
}

#[inline(always)]
fn trie_v6(key: &RouteKeyV6) -> Route {
    count_fallback(FIB_FALLBACK_V6);
    ROUTES_V6
        .get(Key::new(32 + 128, *key))
        .copied()
        .unwrap_or(NO_ROUTE)
}
