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
    fixture::{LO, ROUTE_SEED, XDP_REDIRECT, probe_frame, route_table, udp_frame},
    per_packet::{Program, alternate, set_policing},
    report::{num, thousands},
    stats::stats,
};

/// Destinations of the `cached` traffic of the many-destinations section.
const CACHED_DESTINATIONS: usize = 1000;

/// Destinations for the many-destinations section: one address in each
/// of (up to) `n` prefixes of the instance's table, the probe's route
/// included, in random order.
fn destinations(routes: usize, n: usize) -> Vec<Ipv4Addr> {
    let table = route_table(routes);
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
    let dests: Vec<Vec<Vec<u8>>> = programs[0]
        .instances
        .iter()
        .map(|(routes, _)| {
            destinations(*routes, args.cold_calls as usize)
                .into_iter()
                .map(|d| udp_frame(d, 255))
                .collect()
        })
        .collect();
    let probe = probe_frame();
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
                for (p, program) in alternate(programs.iter_mut().enumerate(), round) {
                    let (_, m) = &mut program.instances[i];
                    set_policing(m, false)?;
                    let frame_of = |n: usize| match *kind {
                        "spread" => &frames[n],
                        "cached" => &frames[n % CACHED_DESTINATIONS.min(frames.len())],
                        _ => &probe,
                    };
                    // Untimed: fill the destination cache with what this kind
                    // sends first (the previous sample's traffic evicted it).
                    for n in 0..CACHED_DESTINATIONS.min(frames.len()) {
                        m.time_run(frame_of(n), LO, 1)?;
                    }
                    let mut total = Duration::ZERO;
                    for n in 0..frames.len() {
                        let frame = frame_of(n);
                        let (verdict, d) = m.time_run(frame, LO, 1)?;
                        ensure!(
                            verdict == XDP_REDIRECT,
                            "{} {kind}: XDP action {verdict}, not XDP_REDIRECT",
                            program.name
                        );
                        total += d;
                    }
                    if round > 0 {
                        samples[p][i][k].push(total.as_nanos() as f64 / f64::from(args.cold_calls));
                    }
                }
            }
        }
    }
    let mut out = Vec::new();
    for (p, program) in programs.iter().enumerate() {
        for (i, (routes, _)) in program.instances.iter().enumerate() {
            for (k, kind) in kinds.iter().enumerate() {
                out.push(json!({
                    "program": program.name,
                    "routes": routes,
                    "traffic": kind,
                    "ns_per_packet": stats(&samples[p][i][k]),
                }));
            }
        }
    }
    Ok(json!({
        "calls_per_sample": args.cold_calls,
        "rounds": rounds,
        "cached_destinations": CACHED_DESTINATIONS,
        "cache_slots_v4": msee_abi::ROUTE_CACHE_V4_SLOTS,
        "samples": out,
    }))
}

/// The many-destinations section: one run per call, the probe vs
/// destinations the cache holds vs destinations spread over the table.
pub fn render(w: &mut String, cold: &Value) -> Result<()> {
    let samples = cold["samples"]
        .as_array()
        .context("msee-bench JSON lacks cold.samples")?;
    let get = |routes: u64, traffic: &str| -> Result<f64> {
        let s = samples
            .iter()
            .find(|s| {
                s["program"] == "msee"
                    && s["routes"].as_u64() == Some(routes)
                    && s["traffic"] == traffic
            })
            .with_context(|| format!("msee-bench JSON lacks cold {routes} routes, {traffic}"))?;
        num(s, &["ns_per_packet", "median"])
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
         at once). The figures above send one destination, which the \
         last-destination memo answers. \
         Here each `BPF_PROG_TEST_RUN` call runs once, on another frame: \
         the probe again; round robin over {cached:.0} destinations across the \
         table, all held by the cache (never the one routed last); or each \
         call to another of {calls:.0} \
         destinations across the table, so most lookups miss the cache and \
         walk the trie (on a large table, a path the CPU's caches do not hold \
         either). A call of one run carries a cold start (the syscall just \
         ran), so these compare with each other, not with the figures above. \
         Policing off, medians over {} rounds.\n",
        num(cold, &["rounds"])?
    )?;
    writeln!(
        w,
        "| IPv4 routes | probe, ns/packet | {cached:.0} cached destinations | {calls:.0} destinations (mostly cache misses) | misses vs probe |"
    )?;
    writeln!(w, "|---|---|---|---|---|")?;
    for routes in [1u64, 10_000, 1_000_000] {
        let (probe, hit, spread) = (
            get(routes, "probe")?,
            get(routes, "cached")?,
            get(routes, "spread")?,
        );
        writeln!(
            w,
            "| {} | {probe:.1} | {hit:.1} | {spread:.1} | {:.2}x |",
            thousands(routes),
            spread / probe
        )?;
    }
    writeln!(w)?;
    Ok(())
}
