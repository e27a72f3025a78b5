//! The msee the per-packet and route-install benchmarks time: one circuit
//! side on `lo` whose only link loops back to the MSEE, a seeded table of
//! random routes with the probe's among them, and the frames sent through
//! it.
//!
//! Nothing is sent: every frame is run in the kernel on a copy. The probe
//! is routed over the "loop" link, whose neighbour MAC is the MSEE's own
//! and which is untagged, so a forwarded frame comes back identical but for
//! the TTL and is forwarded again on every repeated run: `repeat` measures
//! the whole forwarding path, not a drop.
use std::{
    collections::HashSet,
    net::Ipv4Addr,
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result};
use dataplane::{FibSizes, LoadOptions, Msee};
use e2e_tests::packet::{ETH_LEN, IPV4_LEN, UDP_LEN, UdpFrame};
use ipnet::{IpNet, Ipv4Net};
use msee_abi::{Attachment, AttachmentKey, GroupMember, Link, LinkRole, PeeringKind, Route};
use testkit::Rng;

/// XDP actions, as the kernel returns them.
pub const XDP_PASS: u32 = 2;
pub const XDP_REDIRECT: u32 = 4;
/// `lo`: present everywhere; the test runs never send anything on it.
pub const LO: u32 = 1;
pub const MSEE_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x0a];
pub const FRAME_BYTES: usize = 64;
pub const DOMAIN: u32 = 1;
pub const LOOP_LINK: u32 = 0;
pub const LOOP_GROUP: u32 = 0;
/// The probe's destination and its route (one of the installed prefixes).
pub const PROBE_DST: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 1);
pub const PROBE_ROUTE: &str = "10.77.0.0/24";
/// "Non-limiting" policing: 100 Gbit/s on both directions of the loop link,
/// about 5 ns of line time per 64-byte frame, far below a run's cost.
pub const POLICE_BITS_PER_SEC: u64 = 100_000_000_000;
/// Seed of the random part of the route table.
pub const ROUTE_SEED: u64 = 0x5eed_0e5c_2026_0003;

/// The shape of a benchmark's route table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TableShape {
    /// Shaped like the Internet's IPv4 table (what "a full table" means to
    /// the users this emulator is for): prefix lengths drawn from
    /// [`INTERNET_LENGTHS`], none longer than /24, since operators filter
    /// those out of the default-free zone.
    Internet,
    /// Uniformly random /24../32: eight routes in nine longer than /24, so
    /// nearly every route needs forwarding-table nodes of its own. The
    /// adversarial case of the table's memory and of a lookup's cache
    /// misses.
    Random,
}

impl TableShape {
    pub fn name(self) -> &'static str {
        match self {
            TableShape::Internet => "internet",
            TableShape::Random => "random",
        }
    }
}

/// Prefix lengths of the Internet's IPv4 table, in parts per million of
/// its prefixes: the default-free zone of about a million IPv4 prefixes
/// around the start of 2024, rounded approximations (two or three
/// significant digits; each length moves by a few percent a year) of the
/// public breakdowns by prefix length: Geoff Huston's "BGP in 2023" and
/// "BGP in 2024" reports (APNIC), the CIDR report and the AS65000 BGP
/// table statistics (bgp.potaroo.net). About 60 % /24, then /22, /23, /21,
/// /20; some 16 /8s, 2,000 /15s and 13,000 /16s in a million prefixes,
/// /8../15 together under 0.5 %; nothing longer than /24, which operators
/// filter out. Per million, so that a table of a million routes has as few
/// short prefixes as the real one (`route_table_of` draws 16 /8s; a share
/// per mille gave it a thousand, which covered nearly all of the unicast
/// space). Its prefixes being distinct, a length with few possible
/// prefixes ends a little under its share: some 11,900 /16s in a million,
/// as a random /16 is often drawn twice.
pub const INTERNET_LENGTHS: [(u8, u32); 17] = [
    (8, 16),
    (9, 14),
    (10, 40),
    (11, 100),
    (12, 300),
    (13, 580),
    (14, 1_150),
    (15, 2_000),
    (16, 13_000),
    (17, 8_500),
    (18, 14_300),
    (19, 26_000),
    (20, 44_000),
    (21, 50_000),
    (22, 135_000),
    (23, 100_000),
    (24, 605_000),
];
/// The scale of [`INTERNET_LENGTHS`]' shares.
const PER_MILLION: u32 = 1_000_000;
const _: () = {
    let mut sum = 0;
    let mut i = 0;
    while i < INTERNET_LENGTHS.len() {
        sum += INTERNET_LENGTHS[i].1;
        i += 1;
    }
    assert!(sum == PER_MILLION);
};

/// A prefix length of `shape`, from random bits `r`.
fn prefix_len(shape: TableShape, r: u32) -> u8 {
    match shape {
        TableShape::Random => 24 + (r % 9) as u8,
        TableShape::Internet => {
            let mut at = r % PER_MILLION;
            for (len, share) in INTERNET_LENGTHS {
                if at < share {
                    return len;
                }
                at -= share;
            }
            24
        }
    }
}

/// The main table of the benchmarks: Internet-shaped (see
/// [`route_table_of`]).
pub fn route_table(count: usize) -> Vec<Ipv4Net> {
    route_table_of(TableShape::Internet, count)
}

/// `count` distinct IPv4 prefixes of `shape`, the probe's route and
/// `count - 1` random unicast prefixes that do not overlap it (so the
/// probe's longest match is its own route), the probe's in the middle of
/// the install order. Prefixes may cover one another, as in real tables.
pub fn route_table_of(shape: TableShape, count: usize) -> Vec<Ipv4Net> {
    let probe: Ipv4Net = PROBE_ROUTE.parse().expect("valid probe route");
    let mut rng = Rng::new(match shape {
        TableShape::Random => ROUTE_SEED,
        TableShape::Internet => ROUTE_SEED ^ 0x1e7,
    });
    let mut seen = HashSet::with_capacity(count);
    let mut table = Vec::with_capacity(count);
    while table.len() + 1 < count {
        let r = rng.next_u64();
        let addr = Ipv4Addr::from(r as u32);
        let len = prefix_len(shape, (r >> 32) as u32);
        let first = addr.octets()[0];
        if first == 0 || first == 127 || first >= 224 {
            continue;
        }
        let net = Ipv4Net::new(addr, len).expect("length <= 32").trunc();
        if net.contains(&probe.network()) || probe.contains(&net.network()) || !seen.insert(net) {
            continue;
        }
        table.push(net);
    }
    table.insert(table.len() / 2, probe);
    table
}

/// An ARP request to the MSEE, padded to 64 bytes: msee parses L2, looks
/// the attachment up, counts and passes it.
pub fn arp_frame() -> Vec<u8> {
    let mut f = vec![0u8; FRAME_BYTES];
    f[0..6].copy_from_slice(&[0xff; 6]);
    f[6..12].copy_from_slice(&[0x02, 0, 0, 0, 0, 0x0c]);
    f[12..14].copy_from_slice(&0x0806u16.to_be_bytes());
    // Ethernet/IPv4, request; addresses do not matter to msee.
    f[14..22].copy_from_slice(&[0, 1, 8, 0, 6, 4, 0, 1]);
    f
}

pub fn probe_frame() -> Vec<u8> {
    udp_frame(PROBE_DST, 255)
}

pub fn udp_frame(dst: Ipv4Addr, ttl: u8) -> Vec<u8> {
    let mut f = UdpFrame::v4(Ipv4Addr::new(192, 168, 1, 10), dst);
    f.dst_mac = MSEE_MAC;
    f.ttl = ttl;
    f.payload = vec![0; FRAME_BYTES - ETH_LEN - IPV4_LEN - UDP_LEN];
    let frame = f.build();
    assert_eq!(frame.len(), FRAME_BYTES);
    frame
}

/// How `msee_with_routes` writes its table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Write {
    /// `upsert_route`, one syscall per route.
    Single,
    /// `upsert_routes`, in the table's (random) order.
    Batch,
    /// `upsert_routes`, sorted by address first (the sort is timed too).
    BatchSorted,
}

/// Forwarding table sizes that hold `domains` domains of `count` routes of
/// any shape each: a /16 with k routes longer than /16 has at most 2k + 1
/// ranges and a header, in a block of at most 4k + 17 words (see
/// `dataplane`'s range pool); capped at the most a table can address (the
/// bound is far above what real tables take: the report states the lines
/// in use).
pub fn fib_sizes(domains: usize, count: usize) -> FibSizes {
    let words = 4 * count + 17 * count.min(1 << 16);
    let lines = (domains * words / msee_abi::fib::FIB_LINE_WORDS as usize)
        .saturating_add(msee_abi::fib::FIB_DEFAULT_POOL_V4 as usize)
        .min((1 << msee_abi::fib::FIB_RANGES_AT_BITS) / msee_abi::fib::FIB_LINE_WORDS as usize);
    FibSizes {
        slots: Some((domains as u32).max(msee_abi::fib::FIB_DEFAULT_SLOTS)),
        nodes_v4: Some(lines as u32),
        ..Default::default()
    }
}

/// An msee with one circuit side on `lo` whose only link loops back to the
/// MSEE, and `routes` routes of [`route_table`] over it. Returns it and the
/// install time.
pub fn msee_with_routes(routes: usize, write: Write) -> Result<(Msee, Duration)> {
    msee_from(None, routes, write)
}

/// As `msee_with_routes`, from `object` (another build) if given.
pub fn msee_from(object: Option<&[u8]>, routes: usize, write: Write) -> Result<(Msee, Duration)> {
    let shape = TableShape::Internet;
    msee_sized(object, routes, shape, 1, write, fib_sizes(1, routes))
}

/// As `msee_with_routes`, on a table of `shape` whose routes are spread
/// over `groups` next-hop groups (see [`routes_over_groups`]).
pub fn msee_shaped(shape: TableShape, routes: usize, groups: u32) -> Result<(Msee, Duration)> {
    msee_sized(
        None,
        routes,
        shape,
        groups,
        Write::Batch,
        fib_sizes(1, routes),
    )
}

/// As `msee_with_routes`, with no forwarding table: every lookup that
/// misses the caches walks the LPM trie (what msee did before the table).
pub fn msee_trie_only(routes: usize) -> Result<(Msee, Duration)> {
    let none = FibSizes {
        slots: Some(0),
        ..Default::default()
    };
    msee_sized(None, routes, TableShape::Internet, 1, Write::Batch, none)
}

/// Seed of the next-hop groups of [`routes_over_groups`].
const GROUP_SEED: u64 = ROUTE_SEED ^ 0x6_0a9;

/// The routes of `table`, each over one of `groups` next-hop groups,
/// `LOOP_GROUP` and the ids after it: all over `LOOP_GROUP` when there is
/// one group, else each route's group drawn at random (seeded), so that
/// neighbouring prefixes rarely share a next hop. `msee_with_routes` and
/// its variants make every such group forward out of the loop link, so
/// the groups change the table's next hops, not what becomes of a frame.
pub fn routes_over_groups(table: &[Ipv4Net], groups: u32) -> Vec<(IpNet, Route)> {
    let mut rng = Rng::new(GROUP_SEED);
    table
        .iter()
        .map(|p| {
            let group = match groups {
                0 | 1 => LOOP_GROUP,
                n => LOOP_GROUP + (rng.next_u64() % u64::from(n)) as u32,
            };
            (IpNet::V4(*p), Route { group, flags: 0 })
        })
        .collect()
}

fn msee_sized(
    object: Option<&[u8]>,
    routes: usize,
    shape: TableShape,
    groups: u32,
    write: Write,
    fib: FibSizes,
) -> Result<(Msee, Duration)> {
    let opts = LoadOptions {
        fib,
        ..Default::default()
    };
    let mut m = match object {
        None => Msee::load(&opts),
        Some(o) => Msee::load_object(&opts, o),
    }
    .context("loading msee")?;
    m.add_port(LO)?;
    m.set_link(
        LOOP_LINK,
        Link {
            ifindex: LO,
            role: LinkRole::Azure as u8,
            src_mac: MSEE_MAC,
            dst_mac: MSEE_MAC,
            circuit: 1,
            ..Default::default()
        },
    )?;
    m.set_link_state(LOOP_LINK, true)?;
    m.set_attachment(
        AttachmentKey {
            ifindex: LO,
            outer_vlan: 0,
            inner_vlan: 0,
        },
        Attachment {
            link: LOOP_LINK,
            domain: DOMAIN,
            circuit: 1,
            peering: PeeringKind::Private as u8,
            role: LinkRole::Azure as u8,
            mac: MSEE_MAC,
            ..Default::default()
        },
    )?;
    for group in LOOP_GROUP..LOOP_GROUP + groups.max(1) {
        m.set_group(
            group,
            &[GroupMember {
                link: LOOP_LINK,
                preference: 0,
            }],
        )?;
    }
    let table = routes_over_groups(&route_table_of(shape, routes), groups);
    let start = Instant::now();
    match write {
        Write::Single => {
            for &(prefix, route) in &table {
                m.upsert_route(DOMAIN, prefix, route)
                    .with_context(|| format!("installing route {prefix}"))?;
            }
        }
        Write::Batch | Write::BatchSorted => {
            let mut entries: Vec<(u32, IpNet, Route)> =
                table.iter().map(|&(p, r)| (DOMAIN, p, r)).collect();
            if write == Write::BatchSorted {
                entries.sort_unstable_by_key(|e| e.1);
            }
            m.upsert_routes(&entries)?;
        }
    }
    let install = start.elapsed();
    Ok((m, install))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_have_their_shape_and_the_probe_route_alone_covers_the_probe() {
        let probe: Ipv4Net = PROBE_ROUTE.parse().unwrap();
        for shape in [TableShape::Internet, TableShape::Random] {
            let t = route_table_of(shape, 100_000);
            assert_eq!(t.len(), 100_000);
            assert_eq!(t.iter().collect::<HashSet<_>>().len(), t.len(), "distinct");
            let covering: Vec<_> = t.iter().filter(|p| p.contains(&PROBE_DST)).collect();
            assert_eq!(covering, [&probe], "{shape:?}");
            let share = |len: u8| {
                t.iter().filter(|p| p.prefix_len() == len).count() as f64 / t.len() as f64
            };
            match shape {
                TableShape::Internet => {
                    assert!(t.iter().all(|p| (8..=24).contains(&p.prefix_len())));
                    assert!((0.57..0.63).contains(&share(24)), "{}", share(24));
                    assert!((0.11..0.15).contains(&share(22)), "{}", share(22));
                }
                TableShape::Random => {
                    assert!(t.iter().all(|p| p.prefix_len() >= 24));
                    assert!((0.09..0.13).contains(&share(32)), "{}", share(32));
                }
            }
        }
    }

    /// A million Internet-shaped routes have about as many short prefixes
    /// as the default-free zone (some 16 /8s, 2,000 /15s, 13,000 /16s), not
    /// one /8 in a thousand routes.
    #[test]
    fn a_full_table_has_as_few_short_prefixes_as_the_internet() {
        let t = route_table_of(TableShape::Internet, 1_000_000);
        let count = |len: u8| t.iter().filter(|p| p.prefix_len() == len).count();
        assert_eq!(count(8), 16);
        assert!((1_800..2_200).contains(&count(15)), "{}", count(15));
        // Fewer /16s than drawn: a random /16 is often drawn twice.
        assert!((11_000..13_000).contains(&count(16)), "{}", count(16));
    }

    /// One group: every route over `LOOP_GROUP`. Several: each route over
    /// one at random, every group used about as often, and neighbouring
    /// prefixes rarely over the same one.
    #[test]
    fn routes_are_spread_over_their_groups() {
        let t = route_table_of(TableShape::Internet, 10_000);
        let one = routes_over_groups(&t, 1);
        assert!(one.iter().all(|(_, r)| r.group == LOOP_GROUP));
        let many = routes_over_groups(&t, 16);
        assert_eq!(many.len(), t.len());
        assert!(many.iter().zip(&t).all(|((p, _), q)| *p == IpNet::V4(*q)));
        let mut uses = [0usize; 16];
        for (_, r) in &many {
            uses[(r.group - LOOP_GROUP) as usize] += 1;
        }
        assert!(uses.iter().all(|&n| (500..750).contains(&n)), "{uses:?}");
        let mut sorted = many.clone();
        sorted.sort_unstable_by_key(|e| e.0);
        let runs = sorted
            .windows(2)
            .filter(|w| w[0].1.group == w[1].1.group)
            .count();
        assert!(runs < t.len() / 10, "{runs}");
        assert_eq!(many, routes_over_groups(&t, 16), "seeded");
    }
}
