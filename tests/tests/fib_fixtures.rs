//! The forwarding table (`msee_abi::fib`) through `BPF_PROG_TEST_RUN` on
//! the real program: over random tables in three domains, a million random
//! addresses per family get the verdict, link and drop reason the LPM
//! trie's route for them calls for (the trie keeps every route), before
//! and after a third of the routes are replaced and a third removed; and
//! the table answered every lookup (no fallback to the tries).
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use dataplane::{FibSizes, LoadOptions, Msee};
use e2e_tests::{
    packet::{UdpFrame, dot1q},
    require_root,
};
use ipnet::IpNet;
use msee_abi::{
    AttachmentKey, Direction, DropReason, GroupMember, Link, LinkRole, PeeringKind, ROUTE_LOCAL,
    ROUTE_OUT_OF_REACH, Route,
};
use testkit::Rng;

const XDP_DROP: u32 = 1;
const XDP_PASS: u32 = 2;
const XDP_REDIRECT: u32 = 4;
const LO: u32 = 1;
const MSEE_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x0a];
/// Egress links, one per group: a forwarded frame's MAC names its route's
/// group.
const GROUPS: u32 = 16;
const DOMAINS: [u32; 3] = [1, 2, 3];
/// The ingress link (and VLAN) of domain `d`.
const fn ingress(d: u32) -> u32 {
    100 + d
}

fn neighbour_mac(link: u32) -> [u8; 6] {
    [0x02, 0, 0, 0, 0x10, link as u8]
}

fn fixture() -> Msee {
    fixture_with(FibSizes {
        nodes_v4: Some(1 << 17),
        nodes_v6: Some(1 << 19),
        ..Default::default()
    })
}

fn fixture_with(fib: FibSizes) -> Msee {
    fixture_of(&LoadOptions {
        fib,
        ..Default::default()
    })
}

fn fixture_of(opts: &LoadOptions) -> Msee {
    let mut m = Msee::load(opts).expect("load msee");
    m.add_port(LO).unwrap();
    for link in 0..GROUPS {
        m.set_link(
            link,
            Link {
                ifindex: LO,
                role: LinkRole::Azure as u8,
                src_mac: MSEE_MAC,
                dst_mac: neighbour_mac(link),
                circuit: 1,
                ..Default::default()
            },
        )
        .unwrap();
        m.set_link_state(link, true).unwrap();
        m.set_group(
            link,
            &[GroupMember {
                link,
                preference: 0,
            }],
        )
        .unwrap();
    }
    for d in DOMAINS {
        m.set_attachment(
            AttachmentKey {
                ifindex: LO,
                outer_vlan: ingress(d) as u16,
                inner_vlan: 0,
            },
            msee_abi::Attachment {
                link: ingress(d),
                domain: d,
                circuit: d,
                peering: PeeringKind::Private as u8,
                role: LinkRole::Primary as u8,
                mac: MSEE_MAC,
                ..Default::default()
            },
        )
        .unwrap();
    }
    m
}

fn random_route(rng: &mut Rng) -> Route {
    let flags = match rng.below(20) {
        0 | 1 => ROUTE_OUT_OF_REACH,
        2 => ROUTE_LOCAL,
        _ => 0,
    };
    Route {
        group: rng.below(u64::from(GROUPS)) as u32,
        flags,
    }
}

/// A random prefix: lengths weighted as tables hold them, addresses under
/// a few short prefixes so that prefixes nest; IPv4 ones (`internet`) no
/// longer than /24 (a table the program keeps in short ranges).
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
            0 => 1 + rng.below(7) as u8,
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

/// An address the program routes (not one the kernel takes whatever the
/// routes say): inside a prefix of `table` half the time, else anywhere.
fn random_addr(rng: &mut Rng, v6: bool, table: &[IpNet]) -> IpAddr {
    loop {
        let random = u128::from(rng.next_u64()) << 64 | u128::from(rng.next_u64());
        let a = if rng.bool() {
            let p = table[rng.below(table.len() as u64) as usize];
            let (net, len, bits) = match p {
                IpNet::V4(n) => (u128::from(u32::from(n.network())), n.prefix_len(), 32),
                IpNet::V6(n) => (u128::from(n.network()), n.prefix_len(), 128),
            };
            let host_bits = bits - u32::from(len);
            let host = if host_bits == 0 {
                0
            } else {
                random & (u128::MAX >> (128 - host_bits))
            };
            net | host
        } else if !v6 && rng.bool() {
            // Near the table: under 10.0.0.0/6.
            u128::from((10 + rng.below(4) as u32) << 24 | rng.u32() >> 8)
        } else if v6 {
            random
        } else {
            u128::from(rng.u32())
        };
        let ip = if v6 {
            IpAddr::V6(Ipv6Addr::from(a))
        } else {
            IpAddr::V4(Ipv4Addr::from(a as u32))
        };
        let kernels = match ip {
            IpAddr::V4(a) => a.octets()[0] >= 224,
            IpAddr::V6(a) => a.octets()[0] == 0xff || (a.segments()[0] & 0xffc0) == 0xfe80,
        };
        if !kernels {
            return ip;
        }
    }
}

/// Frames to `addrs` from domain `d`'s ingress: each outcome as the trie's
/// route calls for. Returns the (no route, out of reach) drops expected.
fn check(m: &mut Msee, d: u32, addrs: &[IpAddr]) -> [u64; 2] {
    let mut drops = [0; 2];
    for &addr in addrs {
        let want = m.lookup_trie(d, addr).unwrap();
        assert_eq!(
            m.lookup_route(d, addr).unwrap(),
            want,
            "domain {d}, {addr}: the userspace model of the table and the trie differ"
        );
        let mut f = match addr {
            IpAddr::V4(a) => UdpFrame::v4(Ipv4Addr::new(192, 168, 1, 10), a),
            IpAddr::V6(a) => UdpFrame::v6("2001:db8:ffff::10".parse().unwrap(), a),
        };
        f.dst_mac = MSEE_MAC;
        f.tags = vec![dot1q(ingress(d) as u16)];
        let (verdict, out) = m.test_run(&f.build(), LO).unwrap();
        let what = format!("domain {d}, {addr}, the trie's route {want:?}");
        match want {
            None => {
                assert_eq!(verdict, XDP_DROP, "{what}");
                drops[0] += 1;
            }
            Some(r) if r.flags & ROUTE_LOCAL != 0 => assert_eq!(verdict, XDP_PASS, "{what}"),
            Some(r) if r.flags & ROUTE_OUT_OF_REACH != 0 => {
                assert_eq!(verdict, XDP_DROP, "{what}");
                drops[1] += 1;
            }
            Some(r) => {
                assert_eq!(verdict, XDP_REDIRECT, "{what}");
                assert_eq!(out[0..6], neighbour_mac(r.group), "{what}: another link");
            }
        }
    }
    drops
}

fn lookups_match_the_trie(v6: bool, seed: u64) {
    let mut m = fixture();
    let mut rng = Rng::new(seed);
    let mut tables: Vec<Vec<IpNet>> = Vec::new();
    for d in DOMAINS {
        let mut routes = Vec::new();
        for _ in 0..8_000 {
            // Domain 3's IPv4 table as the Internet's: nothing past /24.
            let p = random_prefix(&mut rng, v6, d == 3);
            routes.push((d, p, random_route(&mut rng)));
        }
        m.upsert_routes(&routes).unwrap();
        let mut prefixes: Vec<IpNet> = routes.iter().map(|r| r.1).collect();
        prefixes.sort_unstable();
        prefixes.dedup();
        tables.push(prefixes);
    }
    let mut expected = vec![[0u64; 2]; DOMAINS.len()];
    let mut run = |m: &mut Msee, rng: &mut Rng, tables: &[Vec<IpNet>], n: usize| {
        for (i, d) in DOMAINS.into_iter().enumerate() {
            let addrs: Vec<IpAddr> = (0..n).map(|_| random_addr(rng, v6, &tables[i])).collect();
            let [none, out_of_reach] = check(m, d, &addrs);
            expected[i][0] += none;
            expected[i][1] += out_of_reach;
        }
    };
    run(&mut m, &mut rng, &tables, 200_000);
    // A third of each table replaced, a third removed (in batches, as the
    // daemon writes them), then more addresses.
    for (i, d) in DOMAINS.into_iter().enumerate() {
        let mut replaced = Vec::new();
        let mut removed = Vec::new();
        for (k, p) in tables[i].iter().enumerate() {
            match k % 3 {
                0 => replaced.push((d, *p, random_route(&mut rng))),
                1 => removed.push((d, *p)),
                _ => {}
            }
        }
        m.upsert_routes(&replaced).unwrap();
        m.remove_routes(&removed).unwrap();
        tables[i] = tables[i]
            .iter()
            .enumerate()
            .filter(|(k, _)| k % 3 != 1)
            .map(|(_, p)| *p)
            .collect();
    }
    run(&mut m, &mut rng, &tables, 134_000);
    for (i, d) in DOMAINS.into_iter().enumerate() {
        let rx = m.link_counters(ingress(d), Direction::Rx).unwrap();
        assert_eq!(
            [
                rx.dropped(DropReason::NoRoute),
                rx.dropped(DropReason::OutOfReach)
            ],
            expected[i],
            "domain {d}: drops by reason"
        );
    }
    let stats = m.fib_stats();
    assert_eq!(stats.on_trie, vec![], "every domain has its table");
    assert_eq!(
        m.fib_fallback_lookups().unwrap(),
        [0, 0],
        "the trie answered no lookup"
    );
}

#[test]
fn ipv4_lookups_through_the_program_match_the_trie() {
    if !require_root("ipv4_lookups_through_the_program_match_the_trie") {
        return;
    }
    lookups_match_the_trie(false, 0xf1b_0004);
}

#[test]
fn ipv6_lookups_through_the_program_match_the_trie() {
    if !require_root("ipv6_lookups_through_the_program_match_the_trie") {
        return;
    }
    lookups_match_the_trie(true, 0xf1b_0006);
}

/// A domain the table cannot hold (the pool is too small for it) is
/// looked up in the trie, and the fallback counter says so.
#[test]
fn a_domain_the_table_cannot_hold_is_looked_up_in_the_trie_and_counted() {
    if !require_root("a_domain_the_table_cannot_hold_is_looked_up_in_the_trie_and_counted") {
        return;
    }
    // One line of IPv4 range words (16): a /32 alone in its /16 takes
    // four, so the fifth does not fit.
    let mut m = fixture_with(FibSizes {
        nodes_v4: Some(1),
        ..Default::default()
    });
    let route = |group| Route { group, flags: 0 };
    let routes: Vec<_> = (0..5)
        .map(|k| (1, format!("10.{k}.0.1/32").parse().unwrap(), route(3 + k)))
        .collect();
    m.upsert_routes(&routes).unwrap();
    assert_eq!(m.fib_stats().on_trie, vec![(1, false)]);
    let addrs: Vec<IpAddr> = ["10.0.0.1", "10.1.0.1", "10.9.0.1"]
        .iter()
        .map(|a| a.parse().unwrap())
        .collect();
    assert_eq!(check(&mut m, 1, &addrs), [1, 0]);
    assert_eq!(m.fib_fallback_lookups().unwrap(), [3, 0]);
}

/// With no forwarding table (0 slots) every lookup goes to the trie, and
/// is counted.
#[test]
fn without_a_table_every_lookup_goes_to_the_trie() {
    if !require_root("without_a_table_every_lookup_goes_to_the_trie") {
        return;
    }
    let mut m = fixture_with(FibSizes {
        slots: Some(0),
        ..Default::default()
    });
    let route = |group| Route { group, flags: 0 };
    m.upsert_routes(&[
        (1, "10.0.0.0/8".parse().unwrap(), route(3)),
        (1, "2001:db8::/32".parse().unwrap(), route(4)),
    ])
    .unwrap();
    assert_eq!(m.fib_stats().on_trie, vec![(1, false), (1, true)]);
    let addrs: Vec<IpAddr> = ["10.9.9.9", "2001:db8::9", "11.0.0.1"]
        .iter()
        .map(|a| a.parse().unwrap())
        .collect();
    assert_eq!(check(&mut m, 1, &addrs), [1, 0]);
    assert_eq!(m.fib_fallback_lookups().unwrap(), [2, 1]);
}

/// A bpffs pin directory removed on drop, even when the test fails.
struct PinDir(std::path::PathBuf);

impl PinDir {
    /// `/sys/fs/bpf/msee-fib-{name}-{pid}`.
    fn new(name: &str) -> Self {
        Self(format!("/sys/fs/bpf/msee-fib-{name}-{}", std::process::id()).into())
    }

    /// Load options pinning there, with these pools.
    fn opts(&self, nodes_v4: u32, nodes_v6: u32) -> LoadOptions {
        LoadOptions {
            pin_dir: Some(self.0.clone()),
            fib: FibSizes {
                nodes_v4: Some(nodes_v4),
                nodes_v6: Some(nodes_v6),
                ..Default::default()
            },
            ..Default::default()
        }
    }
}

impl Drop for PinDir {
    fn drop(&mut self) {
        let _ = Msee::unpin(&self.0);
    }
}

/// Routes (domain, prefix, group) of no flags.
fn routes_of<const N: usize>(routes: [(u32, &str, u32); N]) -> [(u32, IpNet, Route); N] {
    routes.map(|(d, p, group)| (d, p.parse().unwrap(), Route { group, flags: 0 }))
}

/// The next load adopts pinned tables: the program keeps answering from
/// them (no lookup falls back to the trie), and writes go on from where
/// the other handle left them.
#[test]
fn a_pinned_table_is_adopted_by_the_next_load() {
    if !require_root("a_pinned_table_is_adopted_by_the_next_load") {
        return;
    }
    let pins = PinDir::new("adopt");
    let opts = pins.opts(1 << 10, 1 << 12);
    let route = |group| Route { group, flags: 0 };
    let routes = routes_of([
        (1, "10.0.0.0/8", 1),
        (1, "10.1.2.0/24", 2),
        (1, "10.1.2.128/25", 3),
        (2, "10.1.2.0/24", 4),
        (1, "2001:db8::/32", 5),
        (1, "2001:db8:0:1::/64", 6),
    ]);
    let before = {
        let mut m = fixture_of(&opts);
        m.upsert_routes(&routes).unwrap();
        m.fib_stats()
    };
    let mut m = Msee::load(&opts).unwrap();
    assert_eq!(
        m.fib_stats(),
        before,
        "the same tables, the same nodes in use"
    );
    // Links, groups and attachments are adopted too: frames through the
    // program get what the trie says, from the adopted table.
    let addrs: Vec<IpAddr> = [
        "10.1.2.200",
        "10.1.2.3",
        "10.9.0.1",
        "11.0.0.1",
        "2001:db8:0:1::9",
        "2001:db8:5::1",
    ]
    .iter()
    .map(|a| a.parse().unwrap())
    .collect();
    assert_eq!(check(&mut m, 1, &addrs), [1, 0]);
    assert_eq!(m.fib_fallback_lookups().unwrap(), [0, 0]);
    m.remove_routes(&[(1, "10.1.2.128/25".parse().unwrap())])
        .unwrap();
    m.upsert_route(2, "10.1.0.0/16".parse().unwrap(), route(7))
        .unwrap();
    for (d, a, want) in [
        (1, "10.1.2.200", route(2)),
        (2, "10.1.9.9", route(7)),
        (2, "10.1.2.9", route(4)),
    ] {
        let a: IpAddr = a.parse().unwrap();
        assert_eq!(m.lookup_route(d, a).unwrap(), Some(want), "domain {d}, {a}");
    }
    assert_eq!(m.fib_stats().on_trie, vec![]);
}

/// Pins from a version without the forwarding table (here: its pins
/// removed) leave tries full of routes and no table: the load fills a
/// fresh table from the tries before the program uses it.
#[test]
fn tries_pinned_without_a_table_fill_a_fresh_one() {
    if !require_root("tries_pinned_without_a_table_fill_a_fresh_one") {
        return;
    }
    let pins = PinDir::new("seed");
    let opts = pins.opts(1 << 10, 1 << 12);
    let routes = routes_of([
        (1, "10.0.0.0/8", 1),
        (1, "10.1.2.128/25", 3),
        (1, "2001:db8::/32", 5),
    ]);
    {
        let mut m = fixture_of(&opts);
        m.upsert_routes(&routes).unwrap();
    }
    for name in msee_abi::maps::FIB_TABLE
        .into_iter()
        .chain([msee_abi::maps::FIB_FALLBACK])
    {
        std::fs::remove_file(pins.0.join(name)).unwrap();
    }
    let mut m = Msee::load(&opts).unwrap();
    assert_eq!(m.fib_stats().on_trie, vec![]);
    let addrs: Vec<IpAddr> = ["10.1.2.200", "10.1.2.3", "11.0.0.1", "2001:db8::9"]
        .iter()
        .map(|a| a.parse().unwrap())
        .collect();
    assert_eq!(check(&mut m, 1, &addrs), [1, 0]);
    assert_eq!(m.fib_fallback_lookups().unwrap(), [0, 0]);
}

/// Pins of the forwarding table's maps of another layout (here: other
/// `--fib-*` sizes; an older version's layout alike) are not refused: the
/// table's maps are made afresh and written from the tries, which are
/// adopted as they are.
#[test]
fn a_table_pinned_with_other_sizes_is_made_afresh() {
    if !require_root("a_table_pinned_with_other_sizes_is_made_afresh") {
        return;
    }
    let pins = PinDir::new("resize");
    let routes = routes_of([
        (1, "10.0.0.0/8", 1),
        (1, "10.1.2.128/25", 3),
        (1, "2001:db8::/32", 5),
        (1, "2001:db8:0:1::/64", 6),
    ]);
    {
        let mut m = fixture_of(&pins.opts(1 << 10, 1 << 12));
        m.upsert_routes(&routes).unwrap();
    }
    // Every map of the table is made afresh, also those whose layout is
    // the same (domain words, IPv4 roots, routes): a program still
    // attached keeps a set of maps that agree with each other.
    let fib_maps = msee_abi::maps::FIB_TABLE;
    let id = |name: &str| {
        aya::maps::MapInfo::from_pin(pins.0.join(name))
            .unwrap()
            .id()
    };
    let before = fib_maps.map(id);
    let trie = id(msee_abi::maps::ROUTES_V4);
    let mut m = Msee::load(&pins.opts(1 << 11, 1 << 13)).unwrap();
    for (name, b) in fib_maps.iter().zip(before) {
        assert_ne!(id(name), b, "{name} made afresh");
    }
    assert_eq!(id(msee_abi::maps::ROUTES_V4), trie, "the trie adopted");
    let stats = m.fib_stats();
    assert_eq!(stats.on_trie, vec![]);
    assert_eq!(stats.nodes, [1 << 11, 1 << 13], "the new sizes");
    let addrs: Vec<IpAddr> = [
        "10.1.2.200",
        "10.1.2.3",
        "11.0.0.1",
        "2001:db8::9",
        "2001:db8:0:1::9",
    ]
    .iter()
    .map(|a| a.parse().unwrap())
    .collect();
    assert_eq!(check(&mut m, 1, &addrs), [1, 0]);
    assert_eq!(m.fib_fallback_lookups().unwrap(), [0, 0]);
}
