//! The L3 stage: IP header checks, what the kernel takes whatever the
//! routes say, and the caches in front of the route tries (each rx row's
//! memo of the destination routed last, then a per-CPU two-way
//! set-associative destination cache), with where a destination sits in
//! them.

use msee_abi::{
    DropReason, ROUTE_CACHE_V4_SLOTS, ROUTE_CACHE_V6_SLOTS, ROUTE_NONE, ROUTE_OUT_OF_REACH,
    Resolved, Route, RouteCacheV4, RouteCacheV6, RouteKeyV4, RouteKeyV6,
};

use crate::{
    msee::flow::{GOLDEN_64, flow_finish, flow_mix},
    net::{IPV4_MIN_HDR_LEN, IPV6_HDR_LEN, be16},
};

/// The trie's answer where it has no route (a sentinel route rather than an
/// Option: an Option's undefined payload gets spilled from an uninitialised
/// register, which the verifier refuses).
pub const NO_ROUTE: Route = Route {
    group: 0,
    flags: ROUTE_NONE,
};

/// What the L3 stage decided.
pub enum L3<'a> {
    /// Forward by this route (in the ingress link's memo: see `route_v4`).
    Forward(&'a Resolved),
    /// To the kernel: the MSEE's own traffic, multicast.
    Pass,
    Drop(DropReason),
}

/// A route as the L3 stage's answer: forward by it, or why not.
#[inline(always)]
pub fn route_outcome(resolved: &Resolved) -> L3<'_> {
    let flags = resolved.route.flags;
    if flags & ROUTE_NONE != 0 {
        L3::Drop(DropReason::NoRoute)
    } else if flags & ROUTE_OUT_OF_REACH != 0 {
        L3::Drop(DropReason::OutOfReach)
    } else {
        L3::Forward(resolved)
    }
}

/// Whether the IPv4 header at `l3_off` of a frame of `frame_len` bytes can
/// be routed: version 4, a header of at least 20 bytes, within the total
/// length, which is within the frame.
#[inline(always)]
pub fn ipv4_header_ok(ip: &[u8; IPV4_MIN_HDR_LEN], l3_off: usize, frame_len: usize) -> bool {
    let ihl = ((ip[0] & 0x0f) as usize) * 4;
    let total_len = be16(ip, 2) as usize;
    !(ip[0] >> 4 != 4
        || ihl < IPV4_MIN_HDR_LEN
        || total_len < ihl
        || l3_off + total_len > frame_len)
}

/// Whether the IPv6 header at `l3_off` of a frame of `frame_len` bytes can
/// be routed: version 6, its payload within the frame.
#[inline(always)]
pub fn ipv6_header_ok(ip: &[u8; IPV6_HDR_LEN], l3_off: usize, frame_len: usize) -> bool {
    !(ip[0] >> 4 != 6 || l3_off + IPV6_HDR_LEN + be16(ip, 4) as usize > frame_len)
}

/// IPv4 destinations that are the kernel's whatever the routes say:
/// multicast (224/4) and the reserved 240/4.
#[inline(always)]
pub fn kernel_only_v4(dst: [u8; 4]) -> bool {
    dst[0] >= 224
}

/// IPv6 destinations that are the kernel's: multicast (ND, MLD...) and
/// link-local.
#[inline(always)]
pub fn kernel_only_v6(dst: &[u8; 16]) -> bool {
    dst[0] == 0xff || (dst[0] == 0xfe && dst[1] & 0xc0 == 0x80)
}

/// Which of `2^bits` cache sets `word` falls in: one multiply, keeping the
/// product's top bits, where every bit of `word` has had its say
/// (Fibonacci hashing). It spreads runs of consecutive keys (hosts, /24s,
/// domains) more evenly than a random placement would, which a two-way
/// cache needs: a set that three busy keys share thrashes.
#[inline(always)]
pub fn cache_set(word: u64, bits: u32) -> u32 {
    (word.wrapping_mul(GOLDEN_64) >> (64 - bits)) as u32
}

/// The low 6 bits of an IPv4 route key's address (`msee_abi::route_key_v4`),
/// wherever the byte order puts them in the key's word.
const V4_HOST_LOW6: u64 = u64::from_ne_bytes(msee_abi::route_key_v4(0, [0, 0, 0, 63]));

/// Which of `2^bits` sets (at least 64) of msee's IPv4 destination cache
/// the route key `key` (as a word) falls in. The key without the host's
/// low 6 bits (its /26, and the domain) picks a set by `cache_set`; the
/// host's low 6 bits are XORed into that set's low bits. So the hosts of one
/// /26 take 64 neighbouring sets, never the same one, and a subnet's hosts
/// share a few pages of the cache instead of one page each: traffic to many
/// hosts of a subnet, the usual case, misses the TLB less. The XOR keeps
/// the same host of many subnets (every .4) spread like the subnets are.
#[inline(always)]
pub fn cache_set_v4(key: u64, bits: u32) -> u32 {
    let host = ((key & V4_HOST_LOW6) >> V4_HOST_LOW6.trailing_zeros()) as u32;
    cache_set(key & !V4_HOST_LOW6, bits) ^ host
}

/// The IPv6 counterpart of `cache_set_v4`, for the address as two words
/// (`hi`: bytes 0-7, `lo`: bytes 8-15, in memory order) in `domain`: the
/// hosts of one /122 take 64 neighbouring sets of `2^bits` (at least 64).
#[inline(always)]
pub fn cache_set_v6(domain: u32, hi: u64, lo: u64, bits: u32) -> u32 {
    const HOST_LOW6: u64 = u64::from_ne_bytes([0, 0, 0, 0, 0, 0, 0, 63]);
    let host = ((lo & HOST_LOW6) >> HOST_LOW6.trailing_zeros()) as u32;
    let h = flow_mix(flow_mix(u64::from(domain), hi), lo & !HOST_LOW6);
    (flow_finish(h) & ((1 << bits) - 1)) ^ host
}

// `cache_set_v4` and `cache_set_v6` give a subnet's hosts 64 sets of their own.
const _: () = assert!(ROUTE_CACHE_V4_SLOTS / 2 >= 64 && ROUTE_CACHE_V6_SLOTS / 2 >= 64);

/// A slot of a destination cache (`msee_abi::RouteCacheV4`, `RouteCacheV6`).
pub trait CacheSlot: Copy {
    type Key: PartialEq + Copy;
    fn holds(&self, key: &Self::Key, epoch: u64) -> bool;
    fn resolved(&self) -> Resolved;
    fn epoch(&self) -> u64;
    fn new(key: Self::Key, epoch: u64, resolved: Resolved) -> Self;
}

/// Both slot types have `key`, `epoch` and `resolved`, and padding.
macro_rules! cache_slot {
    ($slot:ident, $key:ident, { $($pad:ident: $zero:expr),* }) => {
        impl CacheSlot for $slot {
            type Key = $key;
            #[inline(always)]
            fn holds(&self, key: &$key, epoch: u64) -> bool {
                self.epoch == epoch && self.key == *key
            }
            #[inline(always)]
            fn resolved(&self) -> Resolved {
                self.resolved
            }
            #[inline(always)]
            fn epoch(&self) -> u64 {
                self.epoch
            }
            #[inline(always)]
            fn new(key: $key, epoch: u64, resolved: Resolved) -> Self {
                Self { key, epoch, resolved, $($pad: $zero),* }
            }
        }
    };
}
cache_slot!(RouteCacheV4, RouteKeyV4, { _pad: 0 });
cache_slot!(RouteCacheV6, RouteKeyV6, { _pad: 0, _pad2: 0 });

/// Keep `memo` (an rx row's `last_v4` or `last_v6`) as it is if it holds
/// `key`, else fill it with `lookup`'s answer.
#[inline(always)]
pub fn through_memo<S: CacheSlot>(
    memo: &mut S,
    key: S::Key,
    epoch: u64,
    lookup: impl FnOnce() -> Resolved,
) {
    // Epoch 0: caching off (see `through_cache`); the memo then only holds
    // the answer for the frame at hand.
    if epoch != 0 && memo.holds(&key, epoch) {
        return;
    }
    *memo = S::new(key, epoch, lookup());
}

/// A two-way set of a destination cache (one map element holds both
/// ways): the answer for `key` if a way holds it at `epoch`, else `miss`'s,
/// kept in way 0, the entry there moving to way 1 (so the older of the two
/// is the one evicted; an entry of an older epoch is dropped). Epoch 0:
/// caching off, `miss` answers and nothing is kept.
#[inline(always)]
pub fn two_way<S: CacheSlot>(
    ways: &mut [S; 2],
    key: S::Key,
    epoch: u64,
    miss: impl FnOnce(&S::Key) -> Resolved,
) -> Resolved {
    let [w0, w1] = ways;
    if epoch == 0 {
        return miss(&key);
    }
    if w0.holds(&key, epoch) {
        return w0.resolved();
    }
    if w1.holds(&key, epoch) {
        return w1.resolved();
    }
    let resolved = miss(&key);
    if w0.epoch() == epoch {
        *w1 = *w0;
    }
    *w0 = S::new(key, epoch, resolved);
    resolved
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv4_headers_that_can_be_routed() {
        let mut ip = [0u8; IPV4_MIN_HDR_LEN];
        ip[0] = 0x45;
        ip[2..4].copy_from_slice(&60u16.to_be_bytes());
        assert!(ipv4_header_ok(&ip, 14, 74));
        assert!(ipv4_header_ok(&ip, 14, 1500), "Ethernet padding is fine");
        assert!(!ipv4_header_ok(&ip, 14, 73), "total length past the frame");
        assert!(!ipv4_header_ok(&ip, 22, 81), "the same, behind two tags");
        let with = |i: usize, v: u8| {
            let mut h = ip;
            h[i] = v;
            h
        };
        assert!(!ipv4_header_ok(&with(0, 0x65), 14, 74), "version 6");
        assert!(!ipv4_header_ok(&with(0, 0x44), 14, 74), "IHL 4");
        assert!(ipv4_header_ok(&with(0, 0x4f), 14, 74), "60 bytes of header");
        // Total length shorter than the header.
        let mut h = with(0, 0x46);
        h[2..4].copy_from_slice(&23u16.to_be_bytes());
        assert!(!ipv4_header_ok(&h, 14, 74));
    }

    #[test]
    fn ipv6_headers_that_can_be_routed() {
        let mut ip = [0u8; IPV6_HDR_LEN];
        ip[0] = 0x6c;
        ip[4..6].copy_from_slice(&16u16.to_be_bytes());
        assert!(ipv6_header_ok(&ip, 14, 70));
        assert!(!ipv6_header_ok(&ip, 14, 69), "payload past the frame");
        ip[0] = 0x4c;
        assert!(!ipv6_header_ok(&ip, 14, 70), "version 4");
    }

    #[test]
    fn what_the_kernel_takes() {
        assert!(kernel_only_v4([224, 0, 0, 5]));
        assert!(kernel_only_v4([239, 255, 255, 250]));
        assert!(kernel_only_v4([255, 255, 255, 255]));
        assert!(!kernel_only_v4([223, 255, 255, 255]));
        assert!(!kernel_only_v4([10, 0, 0, 1]));
        let v6 = |a: u128| kernel_only_v6(&a.to_be_bytes());
        assert!(v6(0xff02 << 112 | 1));
        assert!(v6(0xfe80 << 112 | 1));
        assert!(v6(0xfebf << 112 | 1), "fe80::/10 ends at febf");
        assert!(!v6(0xfec0 << 112 | 1));
        assert!(!v6(0x2001_0db8 << 96 | 1));
    }

    fn resolved(flags: u32) -> Resolved {
        Resolved {
            route: Route { group: 7, flags },
            ..Resolved::default()
        }
    }

    #[test]
    fn routes_forward_or_say_why_not() {
        let forward = resolved(0);
        assert!(matches!(route_outcome(&forward), L3::Forward(r) if r.route.group == 7));
        assert!(matches!(
            route_outcome(&resolved(ROUTE_NONE)),
            L3::Drop(DropReason::NoRoute)
        ));
        assert!(matches!(
            route_outcome(&resolved(ROUTE_OUT_OF_REACH)),
            L3::Drop(DropReason::OutOfReach)
        ));
        let miss = Resolved {
            route: NO_ROUTE,
            ..Resolved::default()
        };
        assert!(matches!(
            route_outcome(&miss),
            L3::Drop(DropReason::NoRoute)
        ));
    }

    fn key(host: u8) -> RouteKeyV4 {
        msee_abi::route_key_v4(1, [10, 0, 0, host])
    }

    /// The answer the trie would give for `key`: a route to group `host`.
    fn trie(key: &RouteKeyV4) -> Resolved {
        Resolved {
            route: Route {
                group: u32::from(key[7]),
                flags: 0,
            },
            ..Resolved::default()
        }
    }

    /// `two_way` on `ways`, counting the trie lookups in `misses`.
    fn lookup(ways: &mut [RouteCacheV4; 2], host: u8, epoch: u64, misses: &mut u32) -> u32 {
        two_way(ways, key(host), epoch, |k| {
            *misses += 1;
            trie(k)
        })
        .route
        .group
    }

    #[test]
    fn a_set_keeps_the_two_latest_destinations() {
        let mut ways = [RouteCacheV4::default(); 2];
        let mut misses = 0;
        assert_eq!(lookup(&mut ways, 1, 5, &mut misses), 1);
        assert_eq!(lookup(&mut ways, 1, 5, &mut misses), 1);
        assert_eq!(misses, 1, "a hit in way 0");
        assert_eq!(lookup(&mut ways, 2, 5, &mut misses), 2);
        assert_eq!(
            (ways[0].key, ways[1].key),
            (key(2), key(1)),
            "1 moved to way 1"
        );
        assert_eq!(lookup(&mut ways, 1, 5, &mut misses), 1);
        assert_eq!(misses, 2, "a hit in way 1");
        assert_eq!(
            (ways[0].key, ways[1].key),
            (key(2), key(1)),
            "hits move nothing"
        );
        // A third destination takes way 0; way 1 gets way 0's, and the
        // older of the two (1) is gone.
        assert_eq!(lookup(&mut ways, 3, 5, &mut misses), 3);
        assert_eq!((ways[0].key, ways[1].key), (key(3), key(2)));
        assert_eq!(lookup(&mut ways, 1, 5, &mut misses), 1);
        assert_eq!(misses, 4);
    }

    #[test]
    fn a_new_epoch_retires_the_set() {
        let mut ways = [RouteCacheV4::default(); 2];
        let mut misses = 0;
        lookup(&mut ways, 1, 5, &mut misses);
        lookup(&mut ways, 2, 5, &mut misses);
        // Epoch 6: both ways are stale; the one found is kept alone (a
        // stale way 0 is not moved to way 1).
        assert_eq!(lookup(&mut ways, 1, 6, &mut misses), 1);
        assert_eq!(misses, 3);
        assert_eq!((ways[0].key, ways[0].epoch), (key(1), 6));
        assert_eq!(ways[1].epoch, 5, "way 1 still stale");
        assert_eq!(lookup(&mut ways, 2, 6, &mut misses), 2);
        assert_eq!(misses, 4, "2 was cached at epoch 5 only");
        // Epoch 0: caching off, every lookup goes to the trie, none kept.
        let before = ways;
        for _ in 0..3 {
            assert_eq!(lookup(&mut ways, 2, 0, &mut misses), 2);
        }
        assert_eq!(misses, 7);
        assert_eq!(ways, before);
    }

    #[test]
    fn the_memo_holds_the_destination_routed_last() {
        let mut memo = RouteCacheV4::default();
        let mut misses = 0;
        let mut route = |memo: &mut RouteCacheV4, host: u8, epoch: u64| {
            through_memo(memo, key(host), epoch, || {
                misses += 1;
                trie(&key(host))
            });
            memo.resolved.route.group
        };
        assert_eq!(route(&mut memo, 1, 5), 1);
        assert_eq!(route(&mut memo, 1, 5), 1);
        assert_eq!(route(&mut memo, 2, 5), 2);
        assert_eq!(route(&mut memo, 2, 6), 2);
        assert_eq!(route(&mut memo, 2, 0), 2);
        assert_eq!(route(&mut memo, 2, 0), 2);
        // Looked up: 1, 2, 2 at the new epoch, and each time with caching off.
        assert_eq!(misses, 5);
    }

    #[test]
    fn cache_sets_spread_route_keys() {
        // msee's IPv4 destination cache, keyed by the route key word
        // (domain, address). Consecutive hosts, consecutive /24s, and one
        // address in many domains, as many as the cache has slots (two per
        // set): no set takes more than 5 (random placement: 8 or 9), and at
        // least 60 % of the sets are used.
        const SLOTS: u32 = msee_abi::ROUTE_CACHE_V4_SLOTS;
        const BITS: u32 = (SLOTS / 2).trailing_zeros();
        let key =
            |domain: u32, addr: [u8; 4]| u64::from_ne_bytes(msee_abi::route_key_v4(domain, addr));
        type Pattern = fn(u32) -> (u32, [u8; 4]);
        let patterns: [(&str, Pattern); 4] = [
            ("hosts", |i| (1, (0x0a00_0000u32 + i).to_be_bytes())),
            ("/24s", |i| (1, (0x0a00_0000u32 + (i << 8)).to_be_bytes())),
            ("domains", |i| (i, [10, 1, 2, 3])),
            // The same host (.4, Azure's first) of consecutive /24s.
            ("host .4 of /24s", |i| {
                (1, (0x0a00_0004u32 + (i << 8)).to_be_bytes())
            }),
        ];
        for (name, pattern) in patterns {
            let mut sets = [0u32; 1 << BITS];
            for i in 0..SLOTS {
                let (domain, addr) = pattern(i);
                sets[cache_set_v4(key(domain, addr), BITS) as usize] += 1;
            }
            let max = *sets.iter().max().unwrap();
            let used = sets.iter().filter(|&&n| n > 0).count();
            assert!(
                max <= 5 && used * 100 >= 60 * (1 << BITS),
                "{name}: fullest set {max}, {used} sets used"
            );
        }
    }

    /// The sets of 256 hosts of a subnet: all distinct, in at most 4 blocks
    /// of 64 neighbouring sets.
    fn assert_quarter_blocks(sets: &mut [u32; 256], what: &dyn core::fmt::Display) {
        sets.sort_unstable();
        assert!(
            sets.windows(2).all(|w| w[0] < w[1]),
            "{what}: hosts share a set"
        );
        let blocks = 1 + sets.windows(2).filter(|w| w[0] >> 6 != w[1] >> 6).count();
        assert!(blocks <= 4, "{what}: {blocks} blocks");
    }

    #[test]
    fn cache_sets_keep_a_subnets_hosts_together() {
        // The 256 hosts of a /24 in one domain: 256 sets, no two hosts
        // sharing one, in at most 4 blocks of 64 neighbouring sets (one per
        // /26). Every /24 of 10.0.0.0/16, in two domains.
        const BITS: u32 = (msee_abi::ROUTE_CACHE_V4_SLOTS / 2).trailing_zeros();
        for domain in [1, 7] {
            for net in 0..256u32 {
                let mut sets: [u32; 256] = core::array::from_fn(|host| {
                    let addr = (0x0a00_0000 | net << 8 | host as u32).to_be_bytes();
                    let key = u64::from_ne_bytes(msee_abi::route_key_v4(domain, addr));
                    cache_set_v4(key, BITS)
                });
                assert_quarter_blocks(&mut sets, &format_args!("domain {domain}, 10.0.{net}.0/24"));
            }
        }
    }

    #[test]
    fn v6_cache_sets_keep_a_subnets_hosts_together_and_spread_subnets() {
        const BITS: u32 = (msee_abi::ROUTE_CACHE_V6_SLOTS / 2).trailing_zeros();
        let set = |domain: u32, addr: u128| {
            let b = addr.to_be_bytes();
            let word = |i: usize| u64::from_ne_bytes(b[i..i + 8].try_into().unwrap());
            cache_set_v6(domain, word(0), word(8), BITS)
        };
        // The 256 hosts of a /120: distinct sets, at most 4 blocks of 64.
        let base: u128 = 0x2001_0db8_00aa_0001 << 64;
        for net in 0..64u128 {
            let mut sets: [u32; 256] =
                core::array::from_fn(|h| set(3, base | net << 8 | h as u128));
            assert_quarter_blocks(&mut sets, &format_args!("/120 number {net}"));
        }
        // Host ::4 of consecutive /64s, and one address in many domains,
        // as many as the cache has slots: no set takes more than 8 (a
        // hash, not Fibonacci placement) and most sets are used.
        let slots = msee_abi::ROUTE_CACHE_V6_SLOTS;
        let patterns: [(&str, &dyn Fn(u32) -> u32); 2] = [
            ("::4 of /64s", &|i| {
                set(1, (0x2001_0db8_0000_0000 | u128::from(i)) << 64 | 4)
            }),
            ("domains", &|i| set(i, base | 4)),
        ];
        for (name, pattern) in patterns {
            let mut count = [0u32; 1 << BITS];
            for i in 0..slots {
                count[pattern(i) as usize] += 1;
            }
            let max = *count.iter().max().unwrap();
            let used = count.iter().filter(|&&n| n > 0).count();
            assert!(
                max <= 8 && used * 100 >= 75 * (1 << BITS),
                "{name}: fullest set {max}, {used} sets used"
            );
        }
    }
}
