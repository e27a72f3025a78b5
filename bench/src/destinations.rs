//! Many destinations: per-packet cost of one run per `BPF_PROG_TEST_RUN`
//! call, so each call can carry another frame: the probe again, round robin
//! over destinations msee's destination cache holds, and destinations
//! spread over the whole table (mostly cache misses).
use std::{fmt::Write as _, net::Ipv4Addr, time::Duration};

use anyhow::{Context as _, Result, ensure};
use serde_json::{Value, json};
use testkit::Rng;

use crate::{
    DataplaneArgs,
    fixture::{
        LO, ROUTE_SEED, TableShape, XDP_REDIRECT, msee_shaped, msee_trie_only, probe_frame,
        route_table_of, udp_frame,
    },
    per_packet::{Program, alternate, set_policing},
    report::{num, thousands},
    stats::stats,
};

/// Destinations of the `cached` traffic of the many-destinations section.
const CACHED_DESTINATIONS: usize = 1000;

/// Routes of the adversarial tables measured beside the main ones.
const ADVERSARIAL_ROUTES: usize = 1_000_000;

/// Next-hop groups of the adversarial table of many next hops: the
/// Internet-shaped table of `ADVERSARIAL_ROUTES` routes, each over one of
/// them at random (all out of the same link as the main tables' one
/// group). A forwarding table that compresses runs of equal next hops
/// (ranges, as DXR builds) finds few such runs in it.
const ADVERSARIAL_GROUPS: u32 = 16;

/// Destinations for the many-destinations section: one address in each
/// of (up to) `n` prefixes of the instance's table, the probe's route
/// included, in random order.
pub fn destinations(routes: usize, n: usize) -> Vec<Ipv4Addr> {
    destinations_of(TableShape::Internet, routes, n)
}

/// As [`destinations`], in the table of `shape`.
fn destinations_of(shape: TableShape, routes: usize, n: usize) -> Vec<Ipv4Addr> {
    let table = route_table_of(shape, routes);
    let mut rng = Rng::new(ROUTE_SEED ^ 0xd5);
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let p = if table.len() > 1 {
            table[(rng.next_u64() % table.len() as u64) as usize]
        } else {
            table[0]
        };
        // An address inside the prefix: the network, plus a random host
        // part when the prefix has one.
        let host_bits = 32 - u32::from(p.prefix_len());
        let host = if host_bits == 0 {
            0
        } else {
            (rng.next_u64() as u32 ^ i as u32) & ((1u32 << host_bits) - 1)
        };
        out.push(Ipv4Addr::from(u32::from(p.network()) | host));
    }
    out
}

/// Per-packet cost of one run per `BPF_PROG_TEST_RUN` call (so each call
/// can carry another frame), for three kinds of traffic:
/// - `probe`: the probe again and again (what the repeat-250 figures
///   measure, through a call of one run);
/// - `cached`: round robin over `CACHED_DESTINATIONS` destinations spread
///   over the table: few enough for msee's per-CPU destination cache to
///   hold them all;
/// - `spread`: every call to another of `--cold-calls` destinations across
///   the whole table (random prefixes), several times the cache's slots, so
///   most lookups miss the cache and walk the trie, whose path on a large
///   table is not in the CPU's caches either.
///
/// A call of one run is timed by the kernel like any other, but the figure
/// carries the cost of a run from a cold start (the syscall just ran on
/// this CPU), so compare these figures with each other, not with the
/// repeat-250 ones.
pub fn measure(args: &DataplaneArgs, programs: &mut [Program]) -> Result<serde_json::Value> {
    let kinds = ["probe", "cached", "spread"];
    let frames_of = |shape: TableShape, routes: usize| -> Vec<Vec<u8>> {
        destinations_of(shape, routes, args.cold_calls as usize)
            .into_iter()
            .map(|d| udp_frame(d, 255))
            .collect()
    };
    let dests: Vec<Vec<Vec<u8>>> = programs[0]
        .instances
        .iter()
        .map(|(routes, _)| frames_of(TableShape::Internet, *routes))
        .collect();
    let probe = probe_frame();
    // Measured in the same rounds: the same tables without the forwarding
    // table (what a lookup that misses the caches cost before it: the LPM
    // trie's walk), and the adversarial tables: one whose routes nearly
    // all need nodes of their own, and one whose neighbouring routes
    // rarely share a next hop.
    let mut extra: Vec<Extra> = Vec::new();
    for (routes, _) in &programs[0].instances {
        if *routes >= 10_000 {
            eprintln!(
                "msee-bench: loading msee with {routes} IPv4 routes and no forwarding table..."
            );
            extra.push(Extra {
                program: TRIE_ONLY,
                shape: TableShape::Internet,
                groups: 1,
                routes: *routes,
                m: msee_trie_only(*routes)?.0,
                frames: frames_of(TableShape::Internet, *routes),
                samples: vec![Vec::new(); kinds.len()],
            });
        }
    }
    eprintln!("msee-bench: loading msee with {ADVERSARIAL_ROUTES} random /24../32 routes...");
    extra.push(Extra {
        program: "msee",
        shape: TableShape::Random,
        groups: 1,
        routes: ADVERSARIAL_ROUTES,
        m: msee_shaped(TableShape::Random, ADVERSARIAL_ROUTES, 1)?.0,
        frames: frames_of(TableShape::Random, ADVERSARIAL_ROUTES),
        samples: vec![Vec::new(); kinds.len()],
    });
    eprintln!(
        "msee-bench: loading msee with {ADVERSARIAL_ROUTES} Internet-shaped routes over \
         {ADVERSARIAL_GROUPS} groups at random..."
    );
    extra.push(Extra {
        program: "msee",
        shape: TableShape::Internet,
        groups: ADVERSARIAL_GROUPS,
        routes: ADVERSARIAL_ROUTES,
        m: msee_shaped(TableShape::Internet, ADVERSARIAL_ROUTES, ADVERSARIAL_GROUPS)?.0,
        frames: frames_of(TableShape::Internet, ADVERSARIAL_ROUTES),
        samples: vec![Vec::new(); kinds.len()],
    });
    // [program][instance][kind] -> samples (mean ns per run per round).
    let mut samples = vec![vec![vec![Vec::new(); kinds.len()]; dests.len()]; programs.len()];
    let rounds = args.rounds.div_ceil(2).max(1);
    eprintln!(
        "msee-bench: many destinations, {rounds} rounds of {} calls of one run...",
        args.cold_calls
    );
    for round in 0..=rounds {
        for (i, frames) in dests.iter().enumerate() {
            for (k, kind) in kinds.iter().enumerate() {
                let frame_of = |n: usize| pick(kind, frames, &probe, n);
                for (p, program) in alternate(programs.iter_mut().enumerate(), round) {
                    let (_, m) = &mut program.instances[i];
                    let ns = sample(m, frames.len(), frame_of, &program.name, kind)?;
                    if round > 0 {
                        samples[p][i][k].push(ns);
                    }
                }
                let routes = programs[0].instances[i].0;
                for e in extra.iter_mut().filter(|e| e.routes == routes) {
                    let frame_of = |n: usize| pick(kind, &e.frames, &probe, n);
                    let ns = sample(&mut e.m, e.frames.len(), frame_of, e.program, kind)?;
                    if round > 0 {
                        e.samples[k].push(ns);
                    }
                }
            }
        }
    }
    let mut out = Vec::new();
    for e in &extra {
        for (k, kind) in kinds.iter().enumerate() {
            out.push(json!({
                "program": e.program,
                "table": e.shape.name(),
                "groups": e.groups,
                "routes": e.routes,
                "traffic": kind,
                "ns_per_packet": stats(&e.samples[k]),
            }));
        }
    }
    // What the forwarding table of each instance takes.
    let adversarial = extra
        .iter()
        .filter(|e| e.program == "msee")
        .map(|e| (e.shape, e.groups, &e.routes, &e.m));
    let fib: Vec<Value> = programs[0]
        .instances
        .iter()
        .map(|(routes, m)| (TableShape::Internet, 1, routes, m))
        .chain(adversarial)
        .map(|(shape, groups, routes, m)| {
            let s = m.fib_stats();
            json!({
                "table": shape.name(),
                "groups": groups,
                "routes": routes,
                "nodes_v4": s.nodes_in_use[0],
                "node_bytes_v4": s.node_bytes[0],
                "map_bytes": s.map_bytes,
                "on_trie": s.on_trie.len(),
            })
        })
        .collect();
    for (p, program) in programs.iter().enumerate() {
        for (i, (routes, _)) in program.instances.iter().enumerate() {
            for (k, kind) in kinds.iter().enumerate() {
                out.push(json!({
                    "program": program.name,
                    "table": TableShape::Internet.name(),
                    "groups": 1,
                    "routes": routes,
                    "traffic": kind,
                    "ns_per_packet": stats(&samples[p][i][k]),
                }));
            }
        }
    }
    eprintln!("msee-bench: memory latency of dependent random loads...");
    let latency: Vec<Value> = LATENCY_MIB
        .iter()
        .map(|&mib| {
            json!({
                "mib": mib,
                "ns": chase_ns(mib),
            })
        })
        .collect();
    Ok(json!({
        "latency": latency,
        "calls_per_sample": args.cold_calls,
        "rounds": rounds,
        "cached_destinations": CACHED_DESTINATIONS,
        "cache_slots_v4": msee_abi::ROUTE_CACHE_V4_SLOTS,
        "samples": out,
        "fib": fib,
    }))
}

/// Buffer sizes of the memory-latency probe: within the CPU's L2 (2 MiB a
/// core here), past it (the L3), past the L3, and a gigabyte.
const LATENCY_MIB: [usize; 4] = [1, 4, 64, 1024];

/// Mean ns of one load of a chain of dependent loads, each to a random
/// cache line of a `mib` MiB buffer (from the heap: 4 KiB pages, as the
/// kernel maps BPF arrays): what a lookup pays per node that no cache of
/// the CPU holds, on this machine.
fn chase_ns(mib: usize) -> f64 {
    const LINE: usize = 64 / std::mem::size_of::<usize>();
    let lines = (mib << 20) / 64;
    let mut slots = vec![0usize; lines * LINE];
    // One cycle through every line in a random order.
    let mut order: Vec<usize> = (0..lines).collect();
    let mut rng = Rng::new(ROUTE_SEED ^ 0xc4a5e);
    for i in (1..lines).rev() {
        order.swap(i, (rng.next_u64() % (i as u64 + 1)) as usize);
    }
    for k in 0..lines {
        slots[order[k] * LINE] = order[(k + 1) % lines] * LINE;
    }
    drop(order);
    let steps = 2_000_000u32;
    let mut at = 0;
    for _ in 0..steps / 4 {
        at = slots[at];
    }
    let t = std::time::Instant::now();
    for _ in 0..steps {
        at = slots[at];
    }
    let ns = t.elapsed().as_nanos() as f64 / f64::from(steps);
    std::hint::black_box(at);
    ns
}

/// The program name of the instances without a forwarding table.
const TRIE_ONLY: &str = "msee, LPM trie only";

/// An msee measured beside the programs' instances, on the same kinds of
/// traffic, in the same rounds.
struct Extra {
    program: &'static str,
    shape: TableShape,
    /// Next-hop groups its routes are spread over (`msee_shaped`).
    groups: u32,
    routes: usize,
    m: dataplane::Msee,
    frames: Vec<Vec<u8>>,
    samples: Vec<Vec<f64>>,
}

/// The frame of call `n` of traffic `kind`.
fn pick<'f>(kind: &str, frames: &'f [Vec<u8>], probe: &'f Vec<u8>, n: usize) -> &'f Vec<u8> {
    match kind {
        "spread" => &frames[n],
        "cached" => &frames[n % CACHED_DESTINATIONS.min(frames.len())],
        _ => probe,
    }
}

/// Mean ns per run of one run per call on `calls` frames (`frame_of(n)`),
/// after an untimed pass that fills the destination cache with what this
/// kind sends first (the previous sample's traffic evicted it).
fn sample<'f>(
    m: &mut dataplane::Msee,
    calls: usize,
    frame_of: impl Fn(usize) -> &'f Vec<u8>,
    program: &str,
    kind: &str,
) -> Result<f64> {
    set_policing(m, false)?;
    for n in 0..CACHED_DESTINATIONS.min(calls) {
        m.time_run(frame_of(n), LO, 1)?;
    }
    let mut total = Duration::ZERO;
    for n in 0..calls {
        let (verdict, d) = m.time_run(frame_of(n), LO, 1)?;
        ensure!(
            verdict == XDP_REDIRECT,
            "{program} {kind}: XDP action {verdict}, not XDP_REDIRECT"
        );
        total += d;
    }
    Ok(total.as_nanos() as f64 / calls as f64)
}

/// The many-destinations section: one run per call, the probe vs
/// destinations the cache holds vs destinations spread over the table,
/// with and without the forwarding table; and the table's memory.
pub fn render(w: &mut String, cold: &Value) -> Result<()> {
    let samples = cold["samples"]
        .as_array()
        .context("msee-bench JSON lacks cold.samples")?;
    let find = |program: &str, (shape, groups, routes): Row, traffic: &str| {
        samples.iter().find(|s| {
            s["program"] == program
                && table_of(s) == shape
                && groups_of(s) == groups
                && s["routes"].as_u64() == Some(routes)
                && s["traffic"] == traffic
        })
    };
    let get = |row: Row, traffic: &str| -> Option<f64> {
        num(find("msee", row, traffic)?, &["ns_per_packet", "median"]).ok()
    };
    let calls = num(cold, &["calls_per_sample"])?;
    let cached = num(cold, &["cached_destinations"])?;
    let slots = num(cold, &["cache_slots_v4"])?;
    writeln!(
        w,
        "### Many destinations
"
    )?;
    writeln!(
        w,
        "msee caches route lookups per CPU ({slots:.0} IPv4 slots in two-way sets \
         chosen by a hash of domain and address, and in front of them the \
         destination each ingress link routed last; every route or group write \
         retires them all through an epoch, so forwarding follows each change \
         at once). A lookup that misses them reads the routing domain's \
         forwarding table, in BPF arrays (IPv4: DXR): the root entry of the \
         address's /16, which holds the route of the whole /16 or where its \
         ranges are (the /16 cut where the route changes, 2 or 4 bytes a \
         range), a binary search of those ranges, and the route's entry in \
         the shared list of distinct routes, whatever the table size (the \
         LPM trie, which keeps every route for domains without a table, \
         walks a path that grows with the table). The figures above send one destination, which the \
         last-destination memo answers. \
         Here each `BPF_PROG_TEST_RUN` call runs once, on another frame: \
         the probe again; round robin over {cached:.0} destinations across the \
         table, all held by the cache (never the one routed last); or each \
         call to another of {calls:.0} \
         destinations across the table, so most lookups miss the cache and \
         read the table (on a large table, lines the CPU's L1 and L2 do \
         not hold either). \"LPM trie only\" is the same table loaded with no \
         forwarding table (`FibSizes::slots` 0), measured in the same rounds. \
         A call of one run carries a cold start (the syscall just \
         ran), so these compare with each other, not with the figures above. \
         Policing off, medians over {} rounds.\n",
        num(cold, &["rounds"])?
    )?;
    writeln!(
        w,
        "The main table of each size is shaped like the Internet's IPv4 table \
         (prefix lengths as in the default-free zone: about 60 % /24, then \
         /22, /23, /21, /20, under 1 % shorter than /16, none longer than \
         /24, which operators filter out), every route over one next-hop \
         group. Two adversarial tables of a million routes are reported \
         beside it: uniformly random /24../32, whose routes each cut ranges \
         of their own, in long ranges (4 bytes); and the Internet-shaped table with each route's group \
         drawn at random from {ADVERSARIAL_GROUPS}, all out of the same link \
         (frames fare as in the main table; only the next hops differ), \
         which leaves few runs of equal next hops for a table that \
         compresses them.\n"
    )?;
    writeln!(
        w,
        "| IPv4 routes | probe, ns/packet | {cached:.0} cached destinations | {calls:.0} destinations (mostly cache misses) | misses vs probe | LPM trie only: {calls:.0} destinations | LPM trie only: misses vs probe |"
    )?;
    writeln!(w, "|---|---|---|---|---|---|---|")?;
    let adversarial = ADVERSARIAL_ROUTES as u64;
    let rows: [Row; 5] = [
        (TableShape::Internet, 1, 1),
        (TableShape::Internet, 1, 10_000),
        (TableShape::Internet, 1, 1_000_000),
        (TableShape::Random, 1, adversarial),
        (TableShape::Internet, ADVERSARIAL_GROUPS, adversarial),
    ];
    for row in rows {
        let (shape, groups, routes) = row;
        let (Some(probe), Some(hit), Some(spread)) =
            (get(row, "probe"), get(row, "cached"), get(row, "spread"))
        else {
            // Figures from before an adversarial table lack its rows.
            ensure!(
                shape == TableShape::Random || groups > 1,
                "msee-bench JSON lacks cold {routes} routes"
            );
            continue;
        };
        let trie = match (
            find(TRIE_ONLY, row, "probe"),
            find(TRIE_ONLY, row, "spread"),
        ) {
            (Some(p), Some(s)) => {
                let (p, s) = (
                    num(p, &["ns_per_packet", "median"])?,
                    num(s, &["ns_per_packet", "median"])?,
                );
                format!("{s:.1} | {:.2}x", s / p)
            }
            _ => "– | –".to_owned(),
        };
        let label = match (shape, groups) {
            (TableShape::Internet, 1) => thousands(routes),
            (TableShape::Internet, _) => format!(
                "{}, Internet-shaped, {groups} groups at random (adversarial)",
                thousands(routes)
            ),
            (TableShape::Random, _) => {
                format!("{}, random /24../32 (adversarial)", thousands(routes))
            }
        };
        writeln!(
            w,
            "| {label} | {probe:.1} | {hit:.1} | {spread:.1} | {:.2}x | {trie} |",
            spread / probe
        )?;
    }
    writeln!(w)?;
    let Some(fib) = cold["fib"].as_array() else {
        // Figures from before the forwarding table.
        return Ok(());
    };
    let ratio = miss_ratio(cold)?;
    // The main million-route table's ranges, and the frames of a sample.
    let ranges_mib = fib
        .iter()
        .find(|f| {
            table_of(f) == TableShape::Internet
                && groups_of(f) == 1
                && f["routes"].as_u64() == Some(1_000_000)
        })
        .map_or(0.0, |f| {
            f["nodes_v4"].as_f64().unwrap_or(0.0) * f["node_bytes_v4"].as_f64().unwrap_or(0.0)
                / f64::from(1 << 20)
        });
    let frames_mib = calls * crate::fixture::FRAME_BYTES as f64 / f64::from(1 << 20);
    let latency = cold["latency"].as_array().map(|l| {
        l.iter()
            .map(|x| {
                format!(
                    "{:.0} ns over {:.0} MiB",
                    x["ns"].as_f64().unwrap_or(0.0),
                    x["mib"].as_f64().unwrap_or(0.0),
                )
            })
            .collect::<Vec<_>>()
            .join("; ")
    });
    writeln!(
        w,
        "Target (issue #23): misses vs probe at 1,000,000 Internet-shaped routes \
         at most {TARGET_MISS_RATIO:.1}x: {}. A miss costs the destination \
         cache's set (the cache holds {slots:.0} of the {calls:.0} destinations), \
         the root entry (256 KiB per domain), a binary search of the /16's \
         ranges (one or two cache lines) and the route's entry, then the \
         next-hop group, and the cache's set is written. Over 10,000 routes the \
         table's lines stay in the CPU's L2; a million Internet-shaped routes \
         take {ranges_mib:.1} MiB of ranges beside the 256 KiB root, which with \
         the cache and the {calls:.0} frames the test copies in ({frames_mib:.0} \
         MiB) outgrow the CPU's L2 (2 MiB a core here): their lines come from \
         the L3. Even traffic the \
         cache holds costs more than the probe (another frame each call). \
         What one load that misses the CPU's caches costs on this machine, \
         measured in the same run (dependent loads to random cache lines of \
         a buffer in 4 KiB pages, from userspace): {}.\n",
        if ratio <= TARGET_MISS_RATIO {
            format!("PASS ({ratio:.2}x)")
        } else {
            format!("not reached ({ratio:.2}x)")
        },
        latency.unwrap_or_else(|| "not measured".to_owned()),
    )?;
    render_memory(w, fib)
}

/// The target: misses vs probe over a million routes, at most this.
pub const TARGET_MISS_RATIO: f64 = 2.0;

/// The median ns per packet of msee's `traffic` samples on the main
/// table (Internet-shaped, one group) of `routes` routes.
fn msee_median(cold: &Value, routes: u64, traffic: &str) -> Result<f64> {
    let s = cold["samples"]
        .as_array()
        .context("msee-bench JSON lacks cold.samples")?
        .iter()
        .find(|s| {
            s["program"] == "msee"
                && table_of(s) == TableShape::Internet
                && groups_of(s) == 1
                && s["routes"].as_u64() == Some(routes)
                && s["traffic"] == traffic
        })
        .with_context(|| format!("msee-bench JSON lacks cold {routes} routes, {traffic}"))?;
    num(s, &["ns_per_packet", "median"])
}

/// Misses vs probe at 1,000,000 Internet-shaped routes.
fn miss_ratio(cold: &Value) -> Result<f64> {
    Ok(msee_median(cold, 1_000_000, "spread")? / msee_median(cold, 1_000_000, "probe")?)
}

/// What a destination that misses msee's caches costs per packet over the
/// probe, in ns (medians of the many-destinations samples on the
/// Internet-shaped table of `routes` routes), if measured.
pub fn miss_extra_ns(cold: &Value, routes: u64) -> Option<f64> {
    Some(msee_median(cold, routes, "spread").ok()? - msee_median(cold, routes, "probe").ok()?)
}

/// The table a sample was taken on (figures from before the field: the
/// random one, the only one then).
fn table_of(s: &Value) -> TableShape {
    match s["table"].as_str() {
        Some("internet") => TableShape::Internet,
        _ => TableShape::Random,
    }
}

/// The next-hop groups of the table a sample was taken on (figures from
/// before the field: one, the only number then).
fn groups_of(s: &Value) -> u32 {
    s["groups"]
        .as_u64()
        .and_then(|g| u32::try_from(g).ok())
        .unwrap_or(1)
}

/// A row of the many-destinations table: the table's shape, its next-hop
/// groups and its routes.
type Row = (TableShape, u32, u64);

/// The targets row of the many-destinations figures (if measured, with the
/// forwarding table).
pub fn targets(t: &mut crate::report::Targets<'_>, r: &Value) -> Result<()> {
    let Some(cold) = r.get("cold").filter(|c| c["fib"].is_array()) else {
        return Ok(());
    };
    let Ok(ratio) = miss_ratio(cold) else {
        return Ok(());
    };
    t.row(
        "Per packet, cache-missing destinations over 1,000,000 Internet-shaped routes vs one destination",
        &format!("{ratio:.2}x"),
        &format!("≤ {TARGET_MISS_RATIO:.1}x"),
        ratio <= TARGET_MISS_RATIO,
        miss_shortfall(cold, ratio),
    )
}

/// Why the misses' ratio falls short, from the same run: the ratio over
/// 10,000 routes, whose table the CPU's L2 holds (the miss path's own
/// work), and what the million-route table adds to a miss.
fn miss_shortfall(cold: &Value, ratio: f64) -> String {
    let miss_and_probe = |routes: u64| {
        Some((
            miss_extra_ns(cold, routes)?,
            msee_median(cold, routes, "probe").ok()?,
        ))
    };
    let (Some((extra_10k, probe_10k)), Some((extra_1m, _))) =
        (miss_and_probe(10_000), miss_and_probe(1_000_000))
    else {
        return format!("{ratio:.2}x (see Many destinations)");
    };
    format!(
        "{ratio:.2}x; over 10,000 routes, whose table stays in this CPU's L2, misses already cost \
         {:.2}x (the miss path's own work: the cache's set read and written, root entry, binary \
         search, route, group); the million-route table adds {:.0} ns a miss, lines the L2 \
         does not hold (see Many destinations)",
        (probe_10k + extra_10k) / probe_10k,
        extra_1m - extra_10k
    )
}

/// The forwarding table's memory per route and per domain.
fn render_memory(w: &mut String, fib: &[Value]) -> Result<()> {
    use msee_abi::fib::{FIB_V4, FIB_V6};
    let root_kib = (FIB_V4.root_nodes() * FIB_V4.node_bytes()
        + FIB_V6.root_nodes() * FIB_V6.node_bytes())
        / 1024;
    let rows: Vec<String> = fib
        .iter()
        .filter(|f| f["routes"].as_u64().is_some_and(|r| r >= 10_000))
        .map(|f| -> Result<String> {
            let routes = num(f, &["routes"])?;
            let bytes = num(f, &["nodes_v4"])? * num(f, &["node_bytes_v4"])?;
            let table = match (table_of(f), groups_of(f)) {
                (TableShape::Internet, 1) => "Internet-shaped routes".to_owned(),
                (TableShape::Internet, g) => {
                    format!("Internet-shaped routes over {g} groups at random")
                }
                (TableShape::Random, _) => "random /24../32 routes".to_owned(),
            };
            Ok(format!(
                "{} {table}: {} lines, {:.1} bytes per route",
                thousands(routes as u64),
                thousands(num(f, &["nodes_v4"])? as u64),
                bytes / routes
            ))
        })
        .collect::<Result<_>>()?;
    writeln!(
        w,
        "Forwarding table memory: {root_kib} KiB of roots per routing domain \
         (IPv4 256 KiB, IPv6 16 KiB); IPv4 ranges only for the /16s whose \
         route changes inside them: per route longer than /16 at most two \
         ranges (where it starts and where it ends; none where its \
         neighbours have its route), 2 bytes each where the /16 holds \
         nothing longer than /24 and its routes are among the first 256 \
         distinct ones, else 4, in blocks of 16-byte quarters (a count above \
         127 takes a header word); routes of /16 or shorter none; 256 KiB for \
         the distinct routes, shared. IPv6: per route at most one 64-byte \
         node per 4 bits past /12. The maps are allocated whole at load \
         (`LoadOptions::fib`; by default 256 domains, 131,072 IPv4 lines of \
         64 bytes and 65,536 IPv6 nodes, 81 MiB). Lines in use: {}.\n",
        rows.join("; ")
    )?;
    Ok(())
}
