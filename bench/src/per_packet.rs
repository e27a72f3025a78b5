//! Per-packet cost of `msee` against the `baseline` devmap redirect through
//! `BPF_PROG_TEST_RUN`: 1, 10,000 and 1,000,000 routes, with and without
//! policing, and frames that leave msee at successive points of its path
//! (where its time goes). Instances of another build of msee can be
//! measured in the same rounds (`--compare-object`).
use std::{
    fmt::Write as _,
    net::Ipv4Addr,
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, ensure};
use dataplane::Msee;
use e2e_tests::packet::parse_udp;
use msee_abi::{Direction, DropReason, GroupMember, Link, ROUTE_OUT_OF_REACH, Route};
use serde_json::{Value, json};
use testkit::median;
use traffic::Baseline;

use crate::{
    DataplaneArgs, destinations,
    fixture::{
        DOMAIN, FRAME_BYTES, LO, LOOP_GROUP, LOOP_LINK, MSEE_MAC, POLICE_BITS_PER_SEC, PROBE_DST,
        PROBE_ROUTE, ROUTE_SEED, Write, XDP_PASS, XDP_REDIRECT, arp_frame, msee_from, probe_frame,
        udp_frame,
    },
    report::{Targets, mpps, num, thousands},
    stats::stats,
};

/// In the lab: msee with 10,000 routes and policing keeps this share of
/// the bare redirect's pps.
pub const TARGET_VS_BASELINE: f64 = 0.9;
/// msee with 1,000,000 routes keeps this share of its own 1-route pps.
pub const TARGET_VS_ONE_ROUTE: f64 = 0.8;

/// Frames start with TTL 255 and lose one per forward, and the kernel
/// re-runs the same buffer: 250 runs per call keep every run a forward.
const REPEAT: u32 = 250;

const OUT_OF_REACH_ROUTE: &str = "10.98.0.0/24";
const OUT_OF_REACH_DST: Ipv4Addr = Ipv4Addr::new(10, 98, 0, 1);
const LINK_DOWN_ROUTE: &str = "10.97.0.0/24";
const LINK_DOWN_DST: Ipv4Addr = Ipv4Addr::new(10, 97, 0, 1);
const NO_ROUTE_DST: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 1);

/// Frames that leave msee at successive points of its path (none rewrites
/// the frame, so repeated runs repeat the same path): the differences
/// between them are what each stage costs. The last, TTL 1, branches off
/// the path after the route lookup (`TTL_STAGE_FROM` names where).
fn stage_frames() -> Vec<(&'static str, u32, Vec<u8>)> {
    const XDP_DROP: u32 = 1;
    vec![
        (
            "ARP: L2, attachment lookup, count, XDP_PASS",
            XDP_PASS,
            arp_frame(),
        ),
        (
            "no route: + IPv4 checks, route lookup (a cached miss), drop",
            XDP_DROP,
            udp_frame(NO_ROUTE_DST, 255),
        ),
        (
            "out of reach: a cached route instead of a miss, drop",
            XDP_DROP,
            udp_frame(OUT_OF_REACH_DST, 255),
        ),
        (
            "link down: + group, link choice, drop",
            XDP_DROP,
            udp_frame(LINK_DOWN_DST, 255),
        ),
        (
            "forwarded: + policer checks (off), rewrite, devmap redirect",
            XDP_REDIRECT,
            probe_frame(),
        ),
        (
            "TTL 1: out of reach's path to the TTL check, then the ICMP error budget (a clock read), drop",
            XDP_DROP,
            udp_frame(PROBE_DST, 1),
        ),
    ]
}

/// The stage (index into `stage_frames`) the TTL 1 frame leaves the path
/// after: its step is counted from there.
const TTL_STAGE_FROM: usize = 2;

/// The 1-route msee plus the routes the stage frames need: one out of
/// reach, one over a second link that is down.
fn msee_for_stages(object: Option<&[u8]>) -> Result<Msee> {
    let (mut m, _) = msee_from(object, 1, Write::Batch)?;
    let down_link = LOOP_LINK + 1;
    let down_group = LOOP_GROUP + 1;
    m.set_link(
        down_link,
        Link {
            ifindex: LO,
            src_mac: MSEE_MAC,
            dst_mac: MSEE_MAC,
            ..Default::default()
        },
    )?;
    m.set_link_state(down_link, false)?;
    m.set_group(
        down_group,
        &[GroupMember {
            link: down_link,
            preference: 0,
        }],
    )?;
    m.upsert_route(
        DOMAIN,
        OUT_OF_REACH_ROUTE.parse()?,
        Route {
            group: LOOP_GROUP,
            flags: ROUTE_OUT_OF_REACH,
        },
    )?;
    m.upsert_route(
        DOMAIN,
        LINK_DOWN_ROUTE.parse()?,
        Route {
            group: down_group,
            flags: 0,
        },
    )?;
    Ok(m)
}

/// Refuse to time anything that does not forward the probe as intended.
fn check_msee_forwards(m: &mut Msee, frame: &[u8], routes: usize) -> Result<()> {
    let (verdict, out) = m.test_run(frame, LO)?;
    ensure!(
        verdict == XDP_REDIRECT,
        "msee with {routes} routes returned XDP action {verdict} for the probe, not XDP_REDIRECT"
    );
    let p = parse_udp(&out).context("msee's output is not an Ethernet/IPv4/UDP frame")?;
    ensure!(
        p.dst_mac == MSEE_MAC && p.ttl == 254 && p.ipv4_checksum_ok && out.len() == frame.len(),
        "msee with {routes} routes did not loop the probe back (dst {:02x?}, TTL {}, checksum ok {}, {} bytes)",
        p.dst_mac,
        p.ttl,
        p.ipv4_checksum_ok,
        out.len()
    );
    Ok(())
}

/// One sample: the median of `calls` kernel-timed calls of `REPEAT` runs,
/// in ns per run (the kernel reports each call's mean in whole
/// nanoseconds). On a shared machine a call is now and then slowed by other
/// work: a sample's mean can read twice its fastest call, and swings the
/// ratios between configurations from run to run; the median call is the
/// program's typical cost without those bursts. Also returns the fastest
/// call.
fn sample(
    calls: u32,
    what: &str,
    expect: u32,
    mut run: impl FnMut() -> Result<(u32, Duration)>,
) -> Result<CallSample> {
    let mut times = Vec::with_capacity(calls as usize);
    for _ in 0..calls {
        let (verdict, d) = run()?;
        ensure!(
            verdict == expect,
            "{what}: XDP action {verdict} during timing, not {expect}"
        );
        times.push(d.as_nanos() as f64);
    }
    ensure!(
        !times.is_empty(),
        "{what}: a sample needs at least one call"
    );
    Ok(CallSample {
        median: median(&times),
        fastest: times.iter().copied().fold(f64::INFINITY, f64::min),
    })
}

/// One sample: the median of its calls, and its fastest call (ns per run).
#[derive(Clone, Copy, Debug)]
struct CallSample {
    median: f64,
    fastest: f64,
}

pub fn set_policing(m: &mut Msee, on: bool) -> Result<()> {
    let rate = if on { POLICE_BITS_PER_SEC } else { 0 };
    for dir in Direction::ALL {
        m.set_policer(LOOP_LINK, dir, rate, None)?;
    }
    Ok(())
}

struct Config {
    instance: usize,
    policing: bool,
    cost: Vec<f64>,
    /// Each sample's fastest call.
    fastest: Vec<f64>,
    /// Baseline sample taken just before each of this config's samples.
    paired_baseline: Vec<f64>,
}

/// One build of msee under test: the embedded object, or the one given
/// with `--compare-object`, each with its instances (1, 10,000 and
/// 1,000,000 routes) and its stage instance.
pub struct Program {
    pub name: String,
    pub instances: Vec<(usize, Msee)>,
    staged: Msee,
    configs: Vec<Config>,
    stage_cost: Vec<Vec<f64>>,
    stage_fastest: Vec<Vec<f64>>,
}

/// What the per-packet rounds loaded: the baseline and every build's msee
/// instances, for the lab samples to reuse.
pub struct Loaded {
    pub baseline: Baseline,
    pub programs: Vec<Program>,
}

/// Load every program's instances, interleaved by table size (1-route
/// instances of every program, then the 10,000-route ones...): the kernel
/// allocates each trie's nodes as it is filled, and memory taken at
/// different times lies differently in the caches and TLB, which shows in
/// the many-destinations figures (an A/A run of two programs loaded one
/// after the other read ~10% apart there).
fn load_programs(objects: &[(&str, Option<&[u8]>)], n_stages: usize) -> Result<Vec<Program>> {
    let frame = probe_frame();
    let mut instances: Vec<Vec<(usize, Msee)>> = objects.iter().map(|_| Vec::new()).collect();
    for routes in [1usize, 10_000, 1_000_000] {
        for ((name, object), list) in objects.iter().zip(instances.iter_mut()) {
            eprintln!("msee-bench: loading {name} with {routes} IPv4 routes...");
            let (mut m, _) = msee_from(*object, routes, Write::Batch)?;
            check_msee_forwards(&mut m, &frame, routes)?;
            list.push((routes, m));
        }
    }
    let mut programs = Vec::new();
    for ((name, object), instances) in objects.iter().zip(instances) {
        let configs = (0..instances.len())
            .flat_map(|instance| {
                [false, true].map(|policing| Config {
                    instance,
                    policing,
                    cost: Vec::new(),
                    fastest: Vec::new(),
                    paired_baseline: Vec::new(),
                })
            })
            .collect();
        programs.push(Program {
            name: (*name).to_owned(),
            instances,
            staged: msee_for_stages(*object).context("msee for the stage breakdown")?,
            configs,
            stage_cost: vec![Vec::new(); n_stages],
            stage_fastest: vec![Vec::new(); n_stages],
        });
    }
    Ok(programs)
}

/// `items` in order in even rounds, reversed in odd ones.
pub fn alternate<T>(items: impl DoubleEndedIterator<Item = T>, round: usize) -> Vec<T> {
    let mut v: Vec<T> = items.collect();
    if round % 2 == 1 {
        v.reverse();
    }
    v
}

/// Per-packet cost of every configuration against the baseline, where
/// msee's time goes, and (unless `--cold-calls 0`) the many-destinations
/// figures. Returns the report and what it loaded, which the lab samples
/// reuse.
pub fn measure(args: &DataplaneArgs) -> Result<(serde_json::Value, Loaded)> {
    let frame = probe_frame();
    let stages = stage_frames();

    let mut baseline = Baseline::load().context("loading baseline")?;
    baseline.set_port(LO)?;

    let compare_object = match &args.compare_object {
        Some(path) => {
            Some(std::fs::read(path).with_context(|| format!("reading {}", path.display()))?)
        }
        None => None,
    };
    let mut objects: Vec<(&str, Option<&[u8]>)> = vec![("msee", None)];
    if let Some(o) = &compare_object {
        objects.push(("compare", Some(o.as_slice())));
    }
    let mut programs = load_programs(&objects, stages.len())?;

    let mut baseline_all = Vec::new();
    let mut baseline_fastest = Vec::new();
    let mut calls_made = 0u64;
    let started = Instant::now();
    eprintln!(
        "msee-bench: {} rounds of baseline/msee pairs, {} calls x {REPEAT} runs per sample...",
        args.rounds, args.calls
    );
    let n_configs = programs[0].configs.len();
    // Round 0 warms up (cold caches, JIT pages) and is not recorded.
    for round in 0..=args.rounds {
        for c in 0..n_configs {
            let b = sample(args.calls, "baseline", XDP_REDIRECT, || {
                Ok(baseline.time_run(&frame, LO, REPEAT)?)
            })?;
            if round > 0 {
                baseline_all.push(b.median);
                baseline_fastest.push(b.fastest);
            }
            // Programs alternate which goes first from round to round: a
            // sample taken right after another program's reads differently
            // (an A/A run shows it), so the order must not favour one.
            for p in alternate(programs.iter_mut(), round) {
                let config = &mut p.configs[c];
                let (routes, m) = &mut p.instances[config.instance];
                set_policing(m, config.policing)?;
                let what = format!("{}, {routes} routes, policing {}", p.name, config.policing);
                let cost = sample(args.calls, &what, XDP_REDIRECT, || {
                    Ok(m.time_run(&frame, LO, REPEAT)?)
                })?;
                if round > 0 {
                    config.paired_baseline.push(b.median);
                    config.cost.push(cost.median);
                    config.fastest.push(cost.fastest);
                }
            }
        }
        for (s, (what, expect, f)) in stages.iter().enumerate() {
            for p in alternate(programs.iter_mut(), round) {
                let staged = &mut p.staged;
                let cost = sample(args.calls, what, *expect, || {
                    Ok(staged.time_run(f, LO, REPEAT)?)
                })?;
                if round > 0 {
                    p.stage_cost[s].push(cost.median);
                    p.stage_fastest[s].push(cost.fastest);
                }
            }
        }
        calls_made += (n_configs * (1 + programs.len()) + stages.len() * programs.len()) as u64
            * u64::from(args.calls);
        eprintln!("msee-bench:   round {round}/{} done", args.rounds);
    }
    let timing = started.elapsed();
    eprintln!("msee-bench: timed in {:.1} s", timing.as_secs_f64());

    // Every timed run must have been a forward: no policer (or other) drop.
    let runs_per_config = (args.rounds as u64 + 1) * u64::from(args.calls) * u64::from(REPEAT);
    let mut forwarding = Vec::new();
    for p in &programs {
        for (routes, m) in &p.instances {
            let tx = m.link_counters(LOOP_LINK, Direction::Tx)?;
            let rx = m.link_counters(LOOP_LINK, Direction::Rx)?;
            // Two configs per instance (warm-up round included), plus the
            // forwarding check's single run.
            let expected = 2 * runs_per_config + 1;
            ensure!(
                tx.packets == expected && rx.total_drops() + tx.total_drops() == 0,
                "{} with {routes} routes forwarded {} of {expected} runs (rx drops {:?}, tx drops {:?}, policer {})",
                p.name,
                tx.packets,
                rx.drops,
                tx.drops,
                tx.dropped(DropReason::Policer) + rx.dropped(DropReason::Policer)
            );
            forwarding.push(json!({"program": p.name, "routes": routes, "runs": expected, "forwarded": tx.packets}));
        }
    }

    let cold = if args.cold_calls > 0 {
        Some(destinations::measure(args, &mut programs)?)
    } else {
        None
    };

    let reports: Vec<serde_json::Value> = programs
        .iter()
        .map(|p| program_report(p, &stages))
        .collect();
    let mut report = json!({
        "frame_bytes": FRAME_BYTES,
        "repeat": REPEAT,
        "calls_per_sample": args.calls,
        "rounds": args.rounds,
        "police_bits_per_sec": POLICE_BITS_PER_SEC,
        "route_seed": ROUTE_SEED,
        "probe_route": PROBE_ROUTE,
        "baseline": {
            "ns_per_packet": stats(&baseline_all),
            "fastest_call_ns": stats(&baseline_fastest),
        },
        "msee_stages": reports[0]["msee_stages"].clone(),
        // Wall time per BPF_PROG_TEST_RUN call, mostly outside the timed
        // runs: what bounds how many calls the bench can afford.
        "wall_ms_per_call": timing.as_secs_f64() * 1e3 / calls_made as f64,
        "msee": reports[0]["msee"].clone(),
        "forwarding_check": forwarding,
    });
    if let Some(cold) = cold {
        report["cold"] = cold;
    }
    if let Some(path) = &args.compare_object {
        report["compare"] = json!({
            "object": path.display().to_string(),
            "msee": reports[1]["msee"].clone(),
            "msee_stages": reports[1]["msee_stages"].clone(),
        });
    }
    Ok((report, Loaded { baseline, programs }))
}

/// The per-packet figures of one program: its configs against the paired
/// baseline samples and its own 1-route samples, and its stages.
fn program_report(p: &Program, stages: &[(&'static str, u32, Vec<u8>)]) -> serde_json::Value {
    let one_route = |policing: bool| {
        p.configs
            .iter()
            .find(|c| c.instance == 0 && c.policing == policing)
            .expect("1-route config")
            .cost
            .clone()
    };
    let msee: Vec<_> = p
        .configs
        .iter()
        .map(|c| {
            let vs_baseline: Vec<f64> = c
                .paired_baseline
                .iter()
                .zip(&c.cost)
                .map(|(b, m)| b / m)
                .collect();
            // Same round, same policing: the 1-route sample a few ms apart.
            let vs_one_route: Vec<f64> = one_route(c.policing)
                .iter()
                .zip(&c.cost)
                .map(|(one, m)| one / m)
                .collect();
            json!({
                "routes": p.instances[c.instance].0,
                "policing": c.policing,
                "ns_per_packet": stats(&c.cost),
                "fastest_call_ns": stats(&c.fastest),
                "baseline_over_msee": stats(&vs_baseline),
                "one_route_over_this": stats(&vs_one_route),
            })
        })
        .collect();
    json!({
        "msee": msee,
        "msee_stages": stages
            .iter()
            .zip(p.stage_cost.iter().zip(&p.stage_fastest))
            .enumerate()
            .map(|(i, ((what, _, _), (c, f)))| json!({
                "exit": what,
                "ns_per_packet": stats(c),
                "fastest_call_ns": stats(f),
                // The row its step counts from: the one above (none for the
                // first), but for the branch at the end.
                "step_from": if i + 1 == stages.len() { Some(TTL_STAGE_FROM) } else { i.checked_sub(1) },
            }))
            .collect::<Vec<_>>(),
    })
}

/// The per-packet msee configuration with `routes` routes and `policing`.
pub(crate) fn config(r: &Value, routes: u64, policing: bool) -> Result<&Value> {
    r["msee"]
        .as_array()
        .context("msee-bench JSON lacks the msee array")?
        .iter()
        .find(|c| c["routes"].as_u64() == Some(routes) && c["policing"] == policing)
        .with_context(|| {
            format!("msee-bench JSON lacks msee, {routes} routes, policing {policing}")
        })
}

/// The per-packet target rows. msee against `baseline` here is shown in
/// the table, not held to a target: it compares a router with a program
/// that does nothing (issue #23 retired that row; the lab holds msee to
/// the bare redirect and to the kernel-FIB forwarder instead).
pub fn targets(t: &mut Targets<'_>, r: &Value) -> Result<()> {
    for policing in [true, false] {
        let v = num(
            config(r, 1_000_000, policing)?,
            &["one_route_over_this", "median"],
        )?;
        let row = format!(
            "msee, 1,000,000 routes, {}: pps vs its own 1-route pps",
            if policing { "policing" } else { "no policing" }
        );
        t.row(
            &row,
            &format!("{v:.3}"),
            &format!("≥ {TARGET_VS_ONE_ROUTE:.2}"),
            v >= TARGET_VS_ONE_ROUTE,
            format!("{v:.3}, below {TARGET_VS_ONE_ROUTE:.2}"),
        )?;
    }
    Ok(())
}

/// The per-packet table and where msee's time goes.
pub fn render(w: &mut String, r: &Value) -> Result<()> {
    let base = num(r, &["baseline", "ns_per_packet", "median"])?;
    writeln!(
        w,
        "## Per-packet cost, BPF_PROG_TEST_RUN, {}-byte IPv4/UDP frames\n",
        num(r, &["frame_bytes"])?
    )?;
    writeln!(
        w,
        "| program | IPv4 routes | policing | ns/packet (median) | min–max | fastest call, ns (median) | Mpps equivalent (one core) | pps vs baseline | pps vs 1 route |"
    )?;
    writeln!(w, "|---|---|---|---|---|---|---|---|---|")?;
    writeln!(
        w,
        "| baseline | – | – | {base:.1} | {:.1}–{:.1} | {:.1} | {:.1} | 1 | – |",
        num(r, &["baseline", "ns_per_packet", "min"])?,
        num(r, &["baseline", "ns_per_packet", "max"])?,
        num(r, &["baseline", "fastest_call_ns", "median"])?,
        mpps(base)
    )?;
    for routes in [1u64, 10_000, 1_000_000] {
        for policing in [false, true] {
            let c = config(r, routes, policing)?;
            let ns = num(c, &["ns_per_packet", "median"])?;
            writeln!(
                w,
                "| msee | {} | {} | {ns:.1} | {:.1}–{:.1} | {:.1} | {:.1} | {:.3} | {} |",
                thousands(routes),
                if policing { "100 Gbit/s" } else { "off" },
                num(c, &["ns_per_packet", "min"])?,
                num(c, &["ns_per_packet", "max"])?,
                num(c, &["fastest_call_ns", "median"])?,
                mpps(ns),
                num(c, &["baseline_over_msee", "median"])?,
                if routes == 1 {
                    "1".to_owned()
                } else {
                    format!("{:.3}", num(c, &["one_route_over_this", "median"])?)
                }
            )?;
        }
    }
    writeln!(w, "\n### Where msee's time goes\n")?;
    writeln!(
        w,
        "Frames that leave msee at successive points of its path (an msee with \
         the probe's route, one route out of reach and one over a link that is \
         down; policing off). The step is the difference from the row above \
         (for TTL 1, which leaves the path after the route lookup, from out of \
         reach), in fastest calls. \
         Where the baseline makes one map lookup (the devmap), a forwarded \
         frame costs msee array lookups (the attachment; the one `CONFIG` \
         element holding links, link state, policers, DSCP policy and route \
         epoch; this CPU's counter rows of the two links), the route lookup \
         and the devmap lookup. The route lookup is answered, in order, by \
         the ingress link's counter row on this CPU, which remembers the \
         destination routed last, by the per-CPU destination cache for a \
         destination seen since the last route or group change (both hold \
         the route with a copy of its next-hop group), else by the routing \
         domain's forwarding table (in BPF arrays; IPv4: the /16's root \
         entry, a binary search of its ranges, the route's entry) and the \
         group. Between the 1, 10,000 \
         and 1,000,000-route rows above, only the route lookup differs; \
         between policing off and on, the two token buckets (each frame \
         spends its CPU's share of credit; a CPU whose share runs out reads \
         the clock and takes another chunk from the shared bucket with \
         atomics).\n"
    )?;
    writeln!(
        w,
        "| frame leaves msee at | ns/packet (median) | fastest call, ns (median) | step (fastest calls) |"
    )?;
    writeln!(w, "|---|---|---|---|")?;
    writeln!(
        w,
        "| (baseline, for scale) | {base:.1} | {:.1} | |",
        num(r, &["baseline", "fastest_call_ns", "median"])?
    )?;
    let stages = r["msee_stages"]
        .as_array()
        .context("msee-bench JSON lacks the msee_stages array")?;
    for (i, stage) in stages.iter().enumerate() {
        let ns = num(stage, &["ns_per_packet", "median"])?;
        let fastest = num(stage, &["fastest_call_ns", "median"])?;
        // `step_from`: the row the step counts from (the one above unless
        // the frame branches off the path; none for the first row).
        let step = match stage["step_from"].as_u64().map(|f| f as usize) {
            Some(f) => {
                let before = stages
                    .get(f)
                    .with_context(|| format!("msee_stages[{i}].step_from {f} is out of range"))?;
                format!(
                    "{:+.1}",
                    fastest - num(before, &["fastest_call_ns", "median"])?
                )
            }
            None => String::new(),
        };
        writeln!(
            w,
            "| {} | {ns:.1} | {fastest:.1} | {step} |",
            stage["exit"].as_str().unwrap_or("?"),
        )?;
    }
    writeln!(w)?;
    Ok(())
}

/// The method of the per-packet figures.
pub fn render_method(w: &mut String, r: &Value) -> Result<()> {
    writeln!(w, "## Method\n")?;
    writeln!(
        w,
        "- One process, one run: the `baseline` program and three `msee` instances \
         (1, 10,000 and 1,000,000 IPv4 routes) are loaded side by side. Each of \
         {} rounds (after one unrecorded warm-up round) takes, for each msee \
         configuration, a baseline sample then an msee sample; the table gives \
         medians over rounds.",
        num(r, &["rounds"])?
    )?;
    writeln!(
        w,
        "- A sample is the median of {} `BPF_PROG_TEST_RUN` calls with repeat {}; \
         the kernel times the runs (no syscall cost) and reports each call's mean \
         in whole nanoseconds, truncated: figures read about 0.5 ns low, for both \
         programs alike. The median, not the mean: on a shared machine a call \
         is now and then slowed by other work (a sample's mean can read twice \
         its fastest call), which swung the ratios between configurations from \
         run to run when samples were means. The fastest call of each sample is \
         shown too, the steadiest estimate of the program's own cost; the \
         targets above use the medians. Each call with repeat > 1 cost {:.1} ms of wall time \
         on this run, against microseconds with repeat 1 (for repeat > 1 the \
         kernel swaps the program into the XDP dispatcher and back, presumably \
         waiting for RCU grace periods): that is what bounds the number of calls.",
        num(r, &["calls_per_sample"])?,
        num(r, &["repeat"])?,
        num(r, &["wall_ms_per_call"])?
    )?;
    writeln!(
        w,
        "- `baseline` (`traffic-ebpf/src/bin/baseline.rs`) checks for an Ethernet \
         header, swaps the MACs and redirects through a `DevMapHash` entry \
         keyed by the ingress ifindex: a plain devmap redirect."
    )?;
    writeln!(
        w,
        "- `msee` runs its full path: attachment lookup, local-address check, \
         route lookup, next-hop group and link state, policers, TTL and checksum, \
         DSCP, MACs, devmap redirect, counters. The probe is routed over a link \
         whose neighbour MAC is the MSEE's own, untagged, so the rewritten frame \
         is forwarded again on every repeated run (TTL 255, repeat {} keeps \
         every run a forward). After timing, the bench checks the link's \
         counters: every run was forwarded, none dropped.",
        num(r, &["repeat"])?
    )?;
    writeln!(
        w,
        "- Routes: the probe's route ({}) plus random unicast prefixes of the \
         Internet table's lengths (/8../24, about 60 % /24; see Many \
         destinations) (splitmix64, seeded from {:#x}) that do not overlap \
         it, all in one routing \
         domain. Policing: {} Gbit/s on both directions of the link, far above \
         what one core can send, so it costs its time but drops nothing.",
        r["probe_route"].as_str().unwrap_or("?"),
        r["route_seed"].as_u64().unwrap_or(0),
        num(r, &["police_bits_per_sec"])? / 1e9
    )?;
    writeln!(
        w,
        "- Limits: one probe destination, so after its first run every lookup \
         is answered by msee's memo of the destination routed last (and the \
         table's path would stay \
         in the CPU's caches anyway); traffic to many destinations over a \
         large table costs more: see \"Many destinations\". \
         `BPF_PROG_TEST_RUN` does not carry out the redirect, so the cost of \
         transmitting is not in these figures (it is the same for both programs). \
         Mpps equivalent = 1000 / ns per packet: the program alone on one core.\n"
    )?;

    Ok(())
}
