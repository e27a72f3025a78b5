//! The table against a reference longest-prefix match, over random tables
//! and a million random addresses per family, through inserts, route
//! replacements and removals; and a concurrent reader through churn.
use std::{
    collections::HashMap,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
};

use ipnet::IpNet;
use msee_abi::{ROUTE_LOCAL, ROUTE_OUT_OF_REACH, Route, fib::FIB_MAX_DOMAINS};
use testkit::Rng;

use super::*;

/// IPv6 pool nodes of every test table (64 bytes each).
const V6_NODES: u32 = 1 << 18;

fn sizes(slots: u32, pool_v4: u32) -> Sizes {
    Sizes {
        slots,
        pool: [pool_v4, V6_NODES],
    }
}

/// Regions of the maps' shapes for `sizes`.
fn regions(sizes: Sizes) -> Regions {
    let region = |bytes: u64| Region::anonymous(bytes as usize).unwrap();
    Regions {
        words: region(DOMAINS_BYTES as u64),
        v4: region(sizes.bytes(Family::V4)),
        v6: region(sizes.bytes(Family::V6)),
        ranges: region(sizes.range_bytes()),
        leaves: region(LEAVES_BYTES as u64),
    }
}

/// Second mappings of `fib`'s maps: what the program reads.
fn mapped_again(fib: &Fib) -> Regions {
    let again = |r: &Region| r.again().unwrap();
    Regions {
        words: again(&fib.words),
        v4: again(&fib.tables[0]),
        v6: again(&fib.tables[1]),
        ranges: again(&fib.ranges),
        leaves: again(&fib.leaves),
    }
}

fn fib_of(sizes: Sizes) -> (Fib, Arc<AtomicU64>) {
    let graces = Arc::new(AtomicU64::new(0));
    let g = graces.clone();
    let fib = Fib::new(
        regions(sizes),
        sizes,
        Box::new(move || {
            g.fetch_add(1, Ordering::Relaxed);
        }),
    );
    (fib, graces)
}

fn fib_with(pool: u32) -> (Fib, Arc<AtomicU64>) {
    fib_of(sizes(8, pool))
}

/// The routes of one domain, looked up the plain way: every prefix length
/// from the longest down.
#[derive(Default)]
struct Reference {
    routes: HashMap<(u128, u8), Route>,
    /// The prefix lengths `routes` has, longest first.
    lengths: Vec<u8>,
}

impl Reference {
    fn index_lengths(&mut self) {
        self.lengths = self.routes.keys().map(|k| k.1).collect();
        self.lengths.sort_unstable_by(|a, b| b.cmp(a));
        self.lengths.dedup();
    }

    fn lookup(&self, addr: IpAddr) -> Option<Route> {
        let a = addr_of(addr);
        self.lengths
            .iter()
            .find_map(|&len| self.routes.get(&(truncate(a, len), len)).copied())
    }
}

/// A random route: of any group, or (`few`) of one of 8.
fn random_route(rng: &mut Rng, few: bool) -> Route {
    let flags = match rng.below(10) {
        0 => ROUTE_OUT_OF_REACH,
        1 => ROUTE_LOCAL,
        _ => 0,
    };
    Route {
        group: rng.below(if few { 8 } else { 65536 }) as u32,
        flags,
    }
}

/// A random prefix of `v6`'s family: lengths weighted toward what tables
/// hold (IPv4 /8../32 mostly /16../24 and a few short ones; IPv6 /16../128
/// mostly /32../64), addresses clustered under a few short prefixes so
/// that prefixes nest.
/// A random prefix; IPv4 ones (`internet`) no longer than /24.
fn random_prefix(rng: &mut Rng, v6: bool, internet: bool) -> IpNet {
    if v6 {
        let len = match rng.below(10) {
            0 => rng.below(32) as u8,
            1..=6 => 32 + rng.below(33) as u8,
            _ => 64 + rng.below(65) as u8,
        };
        let hi = 0x2001_0db8_0000_0000u64 | (rng.below(4) << 28) | rng.below(1 << 12) << 16;
        let a = u128::from(hi) << 64 | u128::from(rng.next_u64()) | u128::from(rng.u32()) << 64;
        IpNet::new(IpAddr::V6(Ipv6Addr::from(a)), len)
            .unwrap()
            .trunc()
    } else {
        let len = match rng.below(20) {
            0 => rng.below(8) as u8,
            1..=3 => 8 + rng.below(8) as u8,
            4..=15 => 16 + rng.below(9) as u8,
            _ if internet => 24,
            _ => 25 + rng.below(8) as u8,
        };
        let a = (10 + rng.below(4) as u32) << 24 | rng.u32() >> 8;
        IpNet::new(IpAddr::V4(Ipv4Addr::from(a)), len)
            .unwrap()
            .trunc()
    }
}

/// An address to look up: anywhere, or inside a prefix of the table
/// (where the answers are).
fn random_addr(rng: &mut Rng, v6: bool, table: &[IpNet]) -> IpAddr {
    let inside = rng.bool() && !table.is_empty();
    let base = inside.then(|| table[rng.below(table.len() as u64) as usize]);
    let (random, len) = if v6 {
        (
            u128::from(rng.next_u64()) | u128::from(rng.next_u64()) << 64,
            128,
        )
    } else {
        (u128::from(rng.u32()) << 96, 32)
    };
    let a = match base {
        Some(p) => {
            let plen = u32::from(p.prefix_len());
            let net = prefix_of(&p).0;
            let host = if plen == 128 {
                0
            } else {
                random & (!0u128 >> plen)
            };
            net | host
        }
        None if !v6 && rng.bool() => ((10 + u128::from(rng.below(4))) << 120) | (random >> 8),
        None => random,
    };
    match len {
        32 => IpAddr::V4(Ipv4Addr::from((a >> 96) as u32)),
        _ => IpAddr::V6(Ipv6Addr::from(a)),
    }
}

fn check(fib: &Fib, reference: &mut HashMap<u32, Reference>, rng: &mut Rng, v6: bool, n: usize) {
    reference.values_mut().for_each(Reference::index_lengths);
    let tables: HashMap<u32, Vec<IpNet>> = reference
        .iter()
        .map(|(d, r)| {
            let prefixes = r
                .routes
                .keys()
                .map(|&(a, len)| {
                    let ip = if v6 {
                        IpAddr::V6(Ipv6Addr::from(a))
                    } else {
                        IpAddr::V4(Ipv4Addr::from((a >> 96) as u32))
                    };
                    IpNet::new(ip, len).unwrap()
                })
                .collect();
            (*d, prefixes)
        })
        .collect();
    let domains: Vec<u32> = tables.keys().copied().collect();
    for _ in 0..n {
        let d = domains[rng.below(domains.len() as u64) as usize];
        let addr = random_addr(rng, v6, &tables[&d]);
        let want = reference[&d].lookup(addr);
        assert_eq!(
            fib.lookup(d, addr),
            Some(want),
            "domain {d}, {addr}: the table and the reference differ"
        );
    }
}

/// Random tables in a few domains, then a million lookups; half the
/// routes replaced and a third removed, then a million more; then every
/// route removed, leaving no node in use.
/// `internet`: IPv4 prefixes no longer than /24 and routes of 8 groups,
/// which the table keeps in short ranges.
fn against_the_reference(v6: bool, internet: bool, seed: u64) {
    let (mut fib, _) = fib_with(1 << 16);
    let mut rng = Rng::new(seed);
    let mut reference: HashMap<u32, Reference> = HashMap::new();
    let domains = [1u32, 2, 7, 300];
    // Domains 1 and 7 written as one batch (their routes interleaved, in
    // random order, a prefix given twice taking its last route), 2 and
    // 300 route by route.
    let mut batch = Vec::new();
    for _ in 0..5_000 {
        for &d in &domains {
            let p = random_prefix(&mut rng, v6, internet);
            let route = random_route(&mut rng, internet);
            reference
                .entry(d)
                .or_default()
                .routes
                .insert(prefix_of(&p), route);
            if d == 1 || d == 7 {
                batch.push((d, p, route));
            } else {
                fib.upsert(d, &p, route);
            }
        }
    }
    fib.upsert_all(&batch);
    check(&fib, &mut reference, &mut rng, v6, 1_000_000);
    if !v6 {
        // /16s of ranges, and of short ones.
        let [ranges, short] = [FIB_CHILD, FIB_CHILD | msee_abi::fib::FIB_RANGES_SHORT].map(|f| {
            let entries = fib.tables[0].words().iter();
            entries
                .filter(|e| e.load(Ordering::Relaxed) & f == f)
                .count()
        });
        assert!(ranges > 1000, "{ranges} /16s of ranges");
        if internet {
            assert_eq!(short, ranges, "every /16 of short ranges");
        } else {
            assert!(short < ranges / 10, "{short} of {ranges} short");
        }
    }

    for &d in &domains {
        let prefixes: Vec<(u128, u8)> = reference[&d].routes.keys().copied().collect();
        for (i, &(a, len)) in prefixes.iter().enumerate() {
            let ip = if v6 {
                IpAddr::V6(Ipv6Addr::from(a))
            } else {
                IpAddr::V4(Ipv4Addr::from((a >> 96) as u32))
            };
            let p = IpNet::new(ip, len).unwrap();
            let r = reference.get_mut(&d).unwrap();
            match i % 6 {
                0 | 3 => {
                    let route = random_route(&mut rng, internet);
                    fib.upsert(d, &p, route);
                    r.routes.insert((a, len), route);
                }
                1 | 4 => {
                    fib.remove(d, &p);
                    r.routes.remove(&(a, len));
                }
                _ => {}
            }
        }
    }
    check(&fib, &mut reference, &mut rng, v6, 1_000_000);

    for &d in &domains {
        let prefixes: Vec<(u128, u8)> = reference[&d].routes.keys().copied().collect();
        for (a, len) in prefixes {
            let ip = if v6 {
                IpAddr::V6(Ipv6Addr::from(a))
            } else {
                IpAddr::V4(Ipv4Addr::from((a >> 96) as u32))
            };
            fib.remove(d, &IpNet::new(ip, len).unwrap());
        }
        assert_eq!(fib.domain_state(d), None, "an empty domain keeps no slot");
    }
    assert_eq!(fib.nodes_in_use(), [0, 0], "every node back in the pool");
}

#[test]
fn ipv4_lookups_match_the_reference() {
    against_the_reference(false, false, 0x5eed_f1b4);
}

#[test]
fn ipv4_lookups_of_short_ranges_match_the_reference() {
    against_the_reference(false, true, 0x5eed_f1b5);
}

#[test]
fn ipv6_lookups_match_the_reference() {
    against_the_reference(true, false, 0x5eed_f1b6);
}

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

fn route(group: u32) -> Route {
    Route { group, flags: 0 }
}

#[test]
fn a_route_is_written_at_every_length_and_removal_uncovers_the_shorter() {
    let (mut fib, _) = fib_with(1 << 12);
    let a: IpAddr = "10.1.2.3".parse().unwrap();
    assert_eq!(
        fib.lookup(1, a),
        None,
        "no table before the domain's first route"
    );
    // Every length from /0 to /32 over one address, each uncovering the
    // one before it when removed.
    for len in 0..=32u8 {
        fib.upsert(
            1,
            &IpNet::new(a, len).unwrap().trunc(),
            route(u32::from(len)),
        );
        assert_eq!(fib.lookup(1, a), Some(Some(route(u32::from(len)))));
    }
    for len in (1..=32u8).rev() {
        fib.remove(1, &IpNet::new(a, len).unwrap().trunc());
        assert_eq!(fib.lookup(1, a), Some(Some(route(u32::from(len) - 1))));
    }
    let b: IpAddr = "10.1.2.200".parse().unwrap();
    assert_eq!(fib.lookup(1, b), Some(Some(route(0))));
    fib.remove(1, &net("0.0.0.0/0"));
    assert_eq!(fib.lookup(1, a), None, "the domain's slot was given up");
    assert_eq!(fib.nodes_in_use(), [0, 0]);
}

#[test]
fn domains_without_a_slot_are_left_to_the_tries() {
    let (mut fib, graces) = fib_of(sizes(2, 1 << 8));
    fib.upsert(5, &net("10.0.0.0/8"), route(1));
    fib.upsert(6, &net("10.0.0.0/8"), route(2));
    fib.upsert(7, &net("10.0.0.0/8"), route(3));
    fib.upsert(FIB_MAX_DOMAINS, &net("10.0.0.0/8"), route(4));
    let a = "10.9.9.9".parse().unwrap();
    assert_eq!(fib.lookup(5, a), Some(Some(route(1))));
    assert_eq!(fib.lookup(6, a), Some(Some(route(2))));
    assert_eq!(
        fib.lookup(7, a),
        None,
        "no slot left: the program asks the tries"
    );
    assert_eq!(
        fib.lookup(FIB_MAX_DOMAINS, a),
        None,
        "an id past FIB_DOMAINS"
    );
    assert!(fib.serves(5, false) && !fib.serves(7, false));
    assert_eq!(
        fib.stats().on_trie,
        vec![(7, false), (FIB_MAX_DOMAINS, false)]
    );
    // Once domain 5 has gone, a new domain takes its slot, after a grace
    // period, its roots cleared of 5's routes.
    fib.remove(5, &net("10.0.0.0/8"));
    assert_eq!(fib.lookup(5, a), None);
    let before = graces.load(Ordering::Relaxed);
    fib.upsert(8, &net("192.0.2.0/24"), route(5));
    assert!(graces.load(Ordering::Relaxed) > before);
    assert_eq!(
        fib.lookup(8, a),
        Some(None),
        "5's /8 is gone from the roots"
    );
    assert_eq!(
        fib.lookup(8, "192.0.2.1".parse().unwrap()),
        Some(Some(route(5)))
    );
}

#[test]
fn a_full_pool_hands_the_family_to_the_tries_and_words_return_after_a_grace_period() {
    // One line of IPv4 range words (16): a /32 alone in its /16 takes
    // four (a header and three ranges), so four fit.
    let (mut fib, graces) = fib_with(1);
    let host = |k: u32| net(&format!("10.{k}.0.1/32"));
    fib.upsert(1, &host(0), route(1));
    assert_eq!(fib.range_pool.in_use(), 4);
    fib.upsert(1, &net("2001:db8::/32"), route(9));
    for k in 1..4 {
        fib.upsert(1, &host(k), route(1));
    }
    assert!(fib.serves(1, false));
    assert_eq!(fib.range_pool.in_use(), 16);
    fib.upsert(1, &host(4), route(2));
    assert!(!fib.serves(1, false), "IPv4 given up");
    assert!(fib.serves(1, true), "IPv6 still served");
    assert_eq!(fib.stats().on_trie, vec![(1, false)]);
    assert_eq!(fib.lookup(1, "10.0.0.1".parse().unwrap()), None);
    assert_eq!(
        fib.lookup(1, "2001:db8::1".parse().unwrap()),
        Some(Some(route(9)))
    );
    assert_eq!(
        fib.range_pool.in_use(),
        0,
        "its words wait for a grace period"
    );
    // The given-up words are reused by another domain only after a grace
    // period.
    let before = graces.load(Ordering::Relaxed);
    fib.upsert(2, &host(0), route(4));
    assert!(graces.load(Ordering::Relaxed) > before);
    fib.upsert(2, &net("10.2.0.0/24"), route(5));
    assert!(fib.serves(2, false));
    assert_eq!(
        fib.lookup(2, "10.2.0.1".parse().unwrap()),
        Some(Some(route(5)))
    );
    assert_eq!(
        fib.lookup(2, "10.0.0.1".parse().unwrap()),
        Some(Some(route(4)))
    );
}

/// A new handle over maps another one wrote (adopted pins) writes the
/// tables again from the tries' routes: a route a crash left in the table
/// but not in the trie is gone, one left in the trie alone is served, and
/// the maps' bytes may be split into slots and pools another way.
#[test]
fn a_rebuild_takes_the_tries_routes_not_the_tables() {
    let before = sizes(3, 1 << 9);
    let (mut fib, _) = fib_of(before);
    for (d, p, g) in [
        (1, "10.0.0.0/8", 1),
        (1, "10.1.2.0/24", 2),
        (1, "2001:db8::/48", 3),
        (2, "10.1.2.128/25", 4),
    ] {
        fib.upsert(d, &net(p), route(g));
    }
    // The tries as a crash between trie and table writes left them:
    // 10.1.2.0/24 removed from the trie only, 10.7.0.0/16 added to it only.
    let routes = [
        (1, "10.0.0.0/8", 1),
        (1, "2001:db8::/48", 3),
        (1, "10.7.0.0/16", 5),
        (2, "10.1.2.128/25", 4),
    ]
    .map(|(d, p, g)| (d, net(p), route(g)));
    // One slot fewer, over maps of the same bytes: the IPv6 pool's first
    // nodes were the third slot's roots.
    let after = Sizes {
        slots: 2,
        pool: [before.pool[0], before.pool[1] + FIB_V6.root_nodes()],
    };
    assert_eq!(after.bytes(Family::V6), before.bytes(Family::V6));
    let rebuilt = Fib::rebuild(mapped_again(&fib), after, Box::new(|| {}), &routes);
    // Through the first handle's mappings: what the program reads.
    let read = |d: u32, a: &str| fib.lookup(d, a.parse().unwrap());
    for (d, a, want) in [
        (1, "10.1.2.3", route(1)),
        (1, "10.7.1.1", route(5)),
        (1, "2001:db8::1", route(3)),
        (2, "10.1.2.200", route(4)),
    ] {
        assert_eq!(read(d, a), Some(Some(want)), "domain {d}, {a}");
    }
    assert_eq!(read(2, "10.1.2.3"), Some(None));
    assert!(rebuilt.serves(1, false) && rebuilt.serves(1, true));
    // Nodes as a table written once from these routes holds them.
    let (mut fresh, _) = fib_of(after);
    fresh.upsert_all(&routes);
    assert_eq!(rebuilt.nodes_in_use(), fresh.nodes_in_use());
}

/// A reader on a second mapping looks up addresses of a stable prefix
/// while the writer replaces its route and adds and removes more and less
/// specific prefixes around it: every lookup finds the stable route or a
/// more specific one, never nothing. IPv4 and IPv6.
fn never_missing_under_churn(stable: &str, v6: bool) {
    let (mut fib, _) = fib_with(1 << 10);
    let stable = net(stable);
    let (base, len) = prefix_of(&stable);
    fib.upsert(1, &stable, route(1));
    let maps = mapped_again(&fib);
    let stop = Arc::new(AtomicBool::new(false));
    let stop2 = stop.clone();
    let to_ip = move |a: u128| {
        if v6 {
            IpAddr::V6(Ipv6Addr::from(a))
        } else {
            IpAddr::V4(Ipv4Addr::from((a >> 96) as u32))
        }
    };
    let host_bits = 128 - u32::from(len);
    let reader = std::thread::spawn(move || {
        let mut rng = Rng::new(7);
        let mut n = 0u64;
        while !stop2.load(Ordering::Relaxed) {
            let host = (u128::from(rng.next_u64()) << 64 | u128::from(rng.next_u64()))
                & ((1u128 << host_bits) - 1);
            let a = to_ip(base | host);
            let found = maps.view().lookup(1, a);
            assert!(
                matches!(found, Some(Some(r)) if r.group >= 1),
                "{a}: {found:?} while {stable} stayed routed"
            );
            n += 1;
        }
        n
    });
    let mut rng = Rng::new(8);
    let bits = if v6 { 128 } else { 32 };
    let cover = IpNet::new(to_ip(base), len - 8).unwrap().trunc();
    for round in 0..20_000u32 {
        fib.upsert(1, &stable, route(1 + round % 2));
        let host = (u128::from(rng.next_u64()) << 64 | u128::from(rng.next_u64()))
            & ((1u128 << host_bits) - 1);
        let inner_len = len + 1 + rng.below(u64::from(bits - u32::from(len))) as u8;
        let inner = IpNet::new(to_ip(base | host), inner_len).unwrap().trunc();
        fib.upsert(1, &inner, route(10));
        fib.upsert(1, &cover, route(11));
        fib.remove(1, &inner);
        fib.remove(1, &cover);
    }
    stop.store(true, Ordering::Relaxed);
    let lookups = reader.join().unwrap();
    assert!(lookups > 1000, "the reader ran ({lookups} lookups)");
}

#[test]
fn an_ipv4_prefix_that_stays_routed_is_never_missing_under_churn() {
    never_missing_under_churn("10.1.0.0/16", false);
}

#[test]
fn an_ipv6_prefix_that_stays_routed_is_never_missing_under_churn() {
    never_missing_under_churn("2001:db8:aa00::/40", true);
}

/// A domain whose table gave up when the pool ran out is served by its
/// table again once removals leave room for all of its routes, not left to
/// the trie until the next start.
#[test]
fn a_table_that_ran_out_is_written_again_when_the_pool_has_room() {
    let (mut fib, graces) = fib_of(sizes(2, 2));
    // A /25 alone in its /16 takes three words, four with the rounding:
    // eight fit in two lines (32 words).
    let p = |k: u32| net(&format!("10.{k}.0.0/25"));
    let at = |k: u32| -> IpAddr { format!("10.{k}.0.1").parse().unwrap() };
    for k in 0..9 {
        fib.upsert(1, &p(k), route(k + 1));
    }
    assert!(!fib.serves(1, false), "the ninth did not fit");
    assert_eq!(fib.lookup(1, at(0)), None, "the trie answers");
    assert_eq!(fib.stats().on_trie, vec![(1, false)]);
    // Five routes may need 35 words (two ranges each, a header and the
    // rounding per /16): not yet.
    for k in (5..9).rev() {
        fib.remove(1, &p(k));
    }
    assert!(!fib.serves(1, false));
    // Four need at most 28: written again, then served.
    let before = graces.load(Ordering::Relaxed);
    fib.remove(1, &p(4));
    assert!(fib.serves(1, false));
    assert!(
        graces.load(Ordering::Relaxed) > before,
        "a grace period first"
    );
    for k in 0..4 {
        assert_eq!(fib.lookup(1, at(k)), Some(Some(route(k + 1))), "10.{k}.0.1");
    }
    assert_eq!(fib.lookup(1, at(4)), Some(None));
    assert_eq!(fib.range_pool.in_use(), 16);
    assert_eq!(fib.stats().on_trie, vec![]);
    // And it goes on as any table: a removal gives its words back.
    fib.remove(1, &p(0));
    assert_eq!(fib.lookup(1, at(0)), Some(None));
    assert_eq!(fib.range_pool.in_use(), 12);
}
