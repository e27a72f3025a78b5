//! Forwarded packets per second through the lab (onprem primary -> msee ->
//! azure) for the baseline (a bare redirect), the kernel-FIB forwarder
//! (`fibfwd`, over the same routes in the kernel) and each msee instance
//! (all policed), interleaved per round, to one destination and spread
//! over many across the route table.
use std::fmt::Write as _;

use anyhow::{Context as _, Result};
use dataplane::{AttachMode, Msee};
use msee_abi::{
    Attachment, AttachmentKey, Direction, GroupMember, Link, LinkRole, PeeringKind, Route,
};
use msee_sys::netns;
use serde_json::{Value, json};
use std::net::IpAddr;

use lab::IF_AZURE;
use traffic::{Baseline, FibFwd};

use crate::{
    destinations::destinations,
    fixture::{DOMAIN, LOOP_GROUP, POLICE_BITS_PER_SEC, PROBE_DST, PROBE_ROUTE, route_table},
    kernel_routes::{self, MAIN_TABLE},
    per_packet::{Program, TARGET_VS_BASELINE, TARGET_VS_ONE_ROUTE},
    report::{Targets, num, shortfall, thousands},
    stats::{sample_json, stats},
    throughput::{GEN_CPU, GenKind, LabBench, Sample, WARMUP, WINDOW, measure as measure_path},
};

// ---- Throughput on real interfaces (lab and generators).

/// msee's links in the lab: ingress (msee's primary port) and egress (its
/// azure port), and the group the probe's route points to during the lab
/// samples. Ids not used by the per-packet section.
pub const LAB_IN_LINK: u32 = 2;
pub const LAB_OUT_LINK: u32 = 3;
const LAB_GROUP: u32 = 2;
/// Destinations of the lab's spread samples: one address in each of this
/// many random prefixes of a route table (`destinations::destinations`),
/// in random order, sent round robin.
pub const LAB_DESTINATIONS: usize = 65_536;
/// The route tables the spread samples draw their destinations from: msee
/// has an instance of each size, the kernel a routing table.
const SPREAD_TABLES: [usize; 2] = [10_000, 1_000_000];
/// The kernel's routing table for `fibfwd` with the smaller table; the
/// largest is in the main table, looked up the usual way (as `xdp-forward`
/// does by default).
const KERNEL_TABLE_SMALL: u32 = 100;
/// Spread traffic over 1,000,000 routes: msee keeps this share of the
/// kernel-FIB forwarder's pps...
pub const TARGET_SPREAD_VS_FIBFWD: f64 = 1.0;
/// ... and of its own one-destination pps.
pub const TARGET_SPREAD_VS_ONE_DESTINATION: f64 = 0.8;
/// Spread traffic over 10,000 routes: msee keeps this share of the bare
/// redirect's pps.
pub const TARGET_SPREAD_VS_BASELINE: f64 = 0.85;

/// One lab sample as the bench takes it (the spin measures the same way):
/// to the probe's destination, or to each of `destinations` in turn, the
/// generator on `GEN_CPU`.
pub fn lab_sample(lb: &LabBench, destinations: &[IpAddr]) -> Result<Sample> {
    lab_sample_on(lb, destinations, &[GEN_CPU])
}

/// The same with a generator thread on each of `cpus`.
fn lab_sample_on(lb: &LabBench, destinations: &[IpAddr], cpus: &[usize]) -> Result<Sample> {
    measure_path(
        &lb.path,
        GenKind::LiveFrames,
        destinations,
        cpus,
        WARMUP,
        WINDOW,
    )
}

/// `n` destinations spread over the `routes`-route table msee gets.
pub fn spread_destinations(routes: usize, n: usize) -> Vec<IpAddr> {
    destinations(routes, n)
        .into_iter()
        .map(IpAddr::V4)
        .collect()
}

/// Attach msee's primary port (on `outer_vlan`, 0: untagged) to `link`
/// of `circuit`'s private peering, in `domain`.
fn attach_primary(
    m: &mut Msee,
    lb: &LabBench,
    outer_vlan: u16,
    link: u32,
    domain: u32,
    circuit: u32,
) -> Result<()> {
    m.set_attachment(
        AttachmentKey {
            ifindex: lb.primary_ifindex,
            outer_vlan,
            inner_vlan: 0,
        },
        Attachment {
            link,
            domain,
            circuit,
            peering: PeeringKind::Private as u8,
            role: LinkRole::Primary as u8,
            mac: lb.primary_mac,
            ..Default::default()
        },
    )?;
    Ok(())
}

/// Point the probe's route of `m` at the lab's azure port, with the lab's
/// primary port as an attachment and policing on both lab links.
pub fn lab_program(m: &mut Msee, lb: &LabBench) -> Result<()> {
    netns::within(&lb.ns_msee(), || m.add_port(lb.azure_ifindex))??;
    m.set_link(
        LAB_IN_LINK,
        Link {
            ifindex: lb.primary_ifindex,
            role: LinkRole::Primary as u8,
            src_mac: lb.primary_mac,
            dst_mac: lb.onprem_mac,
            circuit: 1,
            ..Default::default()
        },
    )?;
    m.set_link(
        LAB_OUT_LINK,
        Link {
            ifindex: lb.azure_ifindex,
            role: LinkRole::Azure as u8,
            src_mac: lb.azure_mac,
            dst_mac: lb.azure_peer_mac,
            circuit: 1,
            ..Default::default()
        },
    )?;
    for link in [LAB_IN_LINK, LAB_OUT_LINK] {
        m.set_link_state(link, true)?;
        for dir in Direction::ALL {
            m.set_policer(link, dir, POLICE_BITS_PER_SEC, None)?;
        }
    }
    // The probe's route, and with it the whole table (whose routes point
    // at the loop group), out of the azure port.
    for group in [LAB_GROUP, LOOP_GROUP] {
        m.set_group(
            group,
            &[GroupMember {
                link: LAB_OUT_LINK,
                preference: 0,
            }],
        )?;
    }
    attach_primary(m, lb, 0, LAB_IN_LINK, DOMAIN, 1)?;
    m.upsert_route(
        DOMAIN,
        PROBE_ROUTE.parse()?,
        Route {
            group: LAB_GROUP,
            flags: 0,
        },
    )?;
    Ok(())
}

/// Which program forwards a lab sample.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Who {
    Baseline,
    FibFwd,
    /// An msee instance (index into the flattened list).
    Msee(usize),
}

/// What a lab sample sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Traffic {
    /// The probe's destination only.
    One,
    /// `LAB_DESTINATIONS` destinations over a table of this many routes.
    Spread(usize),
}

/// Forwarded pps through the lab, onprem primary -> msee -> azure, for the
/// baseline, the kernel-FIB forwarder and each msee instance (all
/// policed), interleaved per round: to one destination, and spread over
/// the tables of `SPREAD_TABLES`.
pub fn measure(
    rounds: usize,
    baseline: &mut Baseline,
    programs: &mut [Program],
) -> Result<serde_json::Value> {
    let prefix = format!("b{}l", std::process::id() % 100_000);
    let two_cores = traffic::online_cpus() >= 2;
    let lb = LabBench::up(&prefix, PROBE_DST, if two_cores { 2 } else { 1 })
        .context("lab for the throughput figures")?;
    let ns = lb.ns_msee();
    netns::within(&ns, || {
        baseline.set_redirect(lb.primary_ifindex, lb.azure_ifindex)
    })??;
    let mut fibfwd = FibFwd::load().context("loading fibfwd")?;
    netns::within(&ns, || fibfwd.add_port(lb.azure_ifindex))??;
    // Every instance of every program, in one list: (program, routes, msee).
    let mut instances: Vec<(String, usize, &mut Msee)> = Vec::new();
    for p in programs.iter_mut() {
        for (routes, m) in p.instances.iter_mut() {
            lab_program(m, &lb)?;
            instances.push((p.name.clone(), *routes, m));
        }
    }
    let msee_of = |routes: usize| {
        instances
            .iter()
            .position(|(n, r, _)| n == "msee" && *r == routes)
    };
    let spread: Vec<(usize, usize)> = SPREAD_TABLES
        .iter()
        .filter_map(|&routes| msee_of(routes).map(|i| (routes, i)))
        .collect();
    // The kernel's routes for fibfwd: each spread table in a routing table
    // of its own, the largest in the main table.
    let topo = &lb.lab.topo;
    kernel_routes::prepare(&ns, IF_AZURE, topo.azure_link_peer, lb.azure_peer_mac)?;
    let largest = spread.iter().map(|(r, _)| *r).max().unwrap_or(1);
    let kernel_table = |routes: usize| {
        if routes == largest {
            MAIN_TABLE
        } else {
            KERNEL_TABLE_SMALL
        }
    };
    let mut kernel = Vec::new();
    for &(routes, _) in &spread {
        let table = kernel_table(routes);
        eprintln!("msee-bench: installing {routes} kernel routes (table {table})...");
        let took = kernel_routes::install(
            &ns,
            table,
            &route_table(routes),
            topo.azure_link_peer,
            IF_AZURE,
        )?;
        eprintln!("msee-bench:   in {:.1} s", took.as_secs_f64());
        kernel.push(json!({
            "routes": routes,
            "table": table,
            "install_s": took.as_secs_f64(),
            "installed": kernel_routes::count(&ns, table)?,
        }));
    }
    let dests: Vec<(usize, Vec<IpAddr>)> = spread
        .iter()
        .map(|&(routes, _)| (routes, spread_destinations(routes, LAB_DESTINATIONS)))
        .collect();
    // Sample order within a round: baseline, fibfwd (over the largest
    // kernel table), then each msee instance, all to one destination; then
    // for each spread table, the baseline, fibfwd and the msee instance of
    // that size, to its destinations.
    let mut plan: Vec<(Who, Traffic)> = vec![(Who::Baseline, Traffic::One)];
    if !spread.is_empty() {
        plan.push((Who::FibFwd, Traffic::One));
    }
    plan.extend((0..instances.len()).map(|i| (Who::Msee(i), Traffic::One)));
    for &(routes, i) in &spread {
        let t = Traffic::Spread(routes);
        plan.extend([(Who::Baseline, t), (Who::FibFwd, t), (Who::Msee(i), t)]);
    }
    let mut samples: Vec<Vec<Sample>> = vec![Vec::new(); plan.len()];
    // Datagrams the kernel forwarded itself during each sample set (fibfwd
    // passes what it cannot resolve, and forwarding is on): a fibfwd
    // figure is XDP's only when this stays 0.
    let mut kernel_forwarded = vec![0u64; plan.len()];
    // Frames fibfwd handed to the kernel in each of its sample sets (no
    // route, no neighbour, a lookup error): 0, or its figure is not all
    // XDP's.
    let mut fibfwd_passed = vec![0u64; plan.len()];
    let mut before = Vec::new();
    for (_, _, m) in instances.iter() {
        before.push(m.link_counters(LAB_OUT_LINK, Direction::Tx)?.packets);
    }
    let label = |who: Who| match who {
        Who::Baseline => "baseline".to_owned(),
        Who::FibFwd => FIBFWD.to_owned(),
        Who::Msee(i) => format!("{} {} routes", instances[i].0, instances[i].1),
    };
    let labels: Vec<String> = plan.iter().map(|(w, _)| label(*w)).collect();
    eprintln!("msee-bench: lab throughput, {rounds} rounds of baseline, fibfwd and msee...");
    for round in 0..=rounds {
        for ((((slot, &(who, traffic)), label), by_kernel), passed) in samples
            .iter_mut()
            .zip(&plan)
            .zip(&labels)
            .zip(kernel_forwarded.iter_mut())
            .zip(fibfwd_passed.iter_mut())
        {
            let to: &[IpAddr] = match traffic {
                Traffic::One => &[],
                Traffic::Spread(r) => &dests.iter().find(|(n, _)| *n == r).expect("planned").1,
            };
            netns::within(&ns, || -> Result<()> {
                match who {
                    Who::Baseline => baseline.attach(lb.primary_ifindex, AttachMode::Native)?,
                    Who::FibFwd => {
                        let table = match traffic {
                            Traffic::Spread(r) if kernel_table(r) != MAIN_TABLE => kernel_table(r),
                            _ => 0,
                        };
                        fibfwd.set_table(table)?;
                        fibfwd.attach(lb.primary_ifindex, AttachMode::Native)?;
                    }
                    Who::Msee(i) => instances[i]
                        .2
                        .attach(lb.primary_ifindex, AttachMode::Native)?,
                }
                Ok(())
            })??;
            let forwarded_before = kernel_routes::kernel_forwarded(&ns)?;
            let passed_before = fibfwd.stats()?.1;
            let s = lab_sample(&lb, to);
            let forwarded = kernel_routes::kernel_forwarded(&ns)? - forwarded_before;
            let passed_now = fibfwd.stats()?.1 - passed_before;
            netns::within(&ns, || -> Result<()> {
                match who {
                    Who::Baseline => baseline.detach()?,
                    Who::FibFwd => fibfwd.detach()?,
                    Who::Msee(i) => instances[i].2.detach_all()?,
                }
                Ok(())
            })??;
            let n = to.len().max(1);
            let s = s.with_context(|| format!("lab sample {label}, {n} destinations"))?;
            eprintln!(
                "msee-bench:   {label}, {n} destinations{}: {:.0} pps forwarded ({:.0} pps sent)",
                match traffic {
                    Traffic::Spread(r) => format!(" over {r} routes"),
                    Traffic::One => String::new(),
                },
                s.rx_pps,
                s.tx_pps
            );
            if round > 0 {
                slot.push(s);
                *by_kernel += forwarded;
                *passed += passed_now;
            }
        }
    }
    // Per-round ratios of sample set `s` to sample set `to`.
    let ratios = |s: &[Sample], to: &[Sample]| {
        stats(
            &s.iter()
                .zip(to)
                .map(|(m, b)| m.rx_pps / b.rx_pps.max(1.0))
                .collect::<Vec<_>>(),
        )
    };
    let sample_of = |who: Who, traffic: Traffic| {
        plan.iter()
            .position(|p| *p == (who, traffic))
            .map(|k| &samples[k])
    };
    let mut configs = Vec::new();
    for (((s, &(who, traffic)), by_kernel), passed) in samples
        .iter()
        .zip(&plan)
        .zip(&kernel_forwarded)
        .zip(&fibfwd_passed)
    {
        let destinations = match traffic {
            Traffic::One => 1,
            Traffic::Spread(_) => LAB_DESTINATIONS,
        };
        let mut v = json!({
            "program": "baseline",
            "destinations": destinations,
            "rx_pps": sample_json(s, |x| x.rx_pps),
            "tx_pps": sample_json(s, |x| x.tx_pps),
            "delivered": sample_json(s, |x| x.rx_pps / x.tx_pps.max(1.0)),
            // Against the baseline sent the same traffic.
            "vs_baseline": ratios(s, sample_of(Who::Baseline, traffic).expect("planned")),
        });
        if let Traffic::Spread(r) = traffic {
            v["spread_routes"] = json!(r);
        }
        v["kernel_forwarded"] = json!(by_kernel);
        if who == Who::FibFwd {
            v["program"] = json!(FIBFWD);
            v["fibfwd_passed"] = json!(passed);
            v["routes"] = json!(match traffic {
                Traffic::Spread(r) => r,
                Traffic::One => largest,
            });
        }
        if let Who::Msee(i) = who {
            let (name, routes, m) = &instances[i];
            // This program's 1-route instance.
            let one = instances
                .iter()
                .position(|(n, r, _)| n == name && *r == 1)
                .expect("a 1-route instance");
            v["program"] = json!(name);
            let out = m.link_counters(LAB_OUT_LINK, Direction::Tx)?;
            let inn = m.link_counters(LAB_IN_LINK, Direction::Rx)?;
            v["routes"] = json!(routes);
            v["policing"] = json!(true);
            // Counters cover all of the instance's samples, to any number
            // of destinations.
            v["msee_forwarded"] = json!(out.packets - before[i]);
            v["msee_drops"] = json!(out.total_drops() + inn.total_drops());
            v["msee_received"] = json!(inn.packets);
            v["msee_to_kernel"] = json!(inn.to_kernel);
            // Against fibfwd sent the same spread traffic (its
            // one-destination sample looks up another table size).
            if let (Traffic::Spread(_), Some(f)) = (traffic, sample_of(Who::FibFwd, traffic)) {
                v["vs_fibfwd"] = ratios(s, f);
            }
            match traffic {
                Traffic::One => {
                    v["vs_one_route"] =
                        ratios(s, sample_of(Who::Msee(one), traffic).expect("planned"));
                }
                Traffic::Spread(_) => {
                    v["vs_one_destination"] =
                        ratios(s, sample_of(who, Traffic::One).expect("planned"));
                }
            }
        }
        configs.push(v);
    }
    // The many-circuits samples, beside msee with 10,000 routes.
    let circuits = match instances
        .iter()
        .position(|(n, r, _)| n == "msee" && *r == CIRCUIT_ROUTES)
    {
        Some(i) => Some(measure_circuits(rounds, &lb, instances[i].2)?),
        None => None,
    };
    // The two-core samples: msee with 10,000 routes, the probe only.
    let cores = match instances
        .iter()
        .position(|(n, r, _)| n == "msee" && *r == 10_000)
    {
        Some(i) if two_cores => Some(measure_cores(rounds, &lb, baseline, instances[i].2)?),
        _ => None,
    };
    Ok(json!({
        "circuits": circuits,
        "cores": cores,
        "rounds": rounds,
        "warmup_s": WARMUP.as_secs_f64(),
        "window_s": WINDOW.as_secs_f64(),
        "generator_cpu": GEN_CPU,
        "dst": PROBE_DST.to_string(),
        "spread_destinations": LAB_DESTINATIONS,
        "kernel_routes": kernel,
        "configs": configs,
    }))
}

/// The kernel-FIB forwarder's name in the figures.
const FIBFWD: &str = "fibfwd";

/// Why a spread row falls short, from figures of the same run: the time a
/// cache miss may add to msee's time per packet for one destination here
/// (`one`, pps) for the ratio to reach `threshold` (against that same
/// rate, or against `other`: a name and its pps on the spread traffic),
/// beside what a miss costs per packet (`cold`: the many-destinations
/// samples of the same table).
/// `None` where the many-destinations figures are missing.
fn spread_shortfall(
    threshold: f64,
    cold: Option<&Value>,
    routes: u64,
    one: f64,
    other: Option<(&str, f64)>,
) -> Option<String> {
    let extra = crate::destinations::miss_extra_ns(cold?, routes)?;
    let one_ns = 1e9 / one;
    let (reference_ns, against) = match other {
        Some((name, pps)) => (
            1e9 / pps,
            format!(
                " against {name}'s {:.0} ns on the spread traffic",
                1e9 / pps
            ),
        ),
        None => (one_ns, String::new()),
    };
    let budget = reference_ns / threshold - one_ns;
    Some(format!(
        "most destinations miss msee's caches; reaching {threshold:.2} leaves a \
         miss {budget:.0} ns a packet over the {one_ns:.0} ns of msee's one-destination \
         sample here{against}, and a miss costs {extra:.0} ns more than the probe (per \
         packet, {} routes: Many destinations)",
        thousands(routes)
    ))
}

/// Why msee's one-destination lab rate falls short of `threshold` of the
/// bare redirect's, from figures of the same run: the time a packet of
/// msee may take here over the bare redirect's `baseline_ns` (the lab's
/// time per packet and CPU), beside what msee's program alone costs per
/// packet over the bare redirect's (`per_packet`: the BPF_PROG_TEST_RUN
/// figures, 10,000 routes, policing). Not a bound: in the lab msee's
/// work overlaps more of the kernel's than in a loop of test runs, so a
/// run can pass with the program's cost above the time left it.
/// `None` where the per-packet figures are missing.
fn program_shortfall(threshold: f64, per_packet: &Value, baseline_ns: f64) -> Option<String> {
    let msee = num(
        crate::per_packet::config(per_packet, 10_000, true).ok()?,
        &["ns_per_packet", "median"],
    )
    .ok()?;
    let bare = num(per_packet, &["baseline", "ns_per_packet", "median"]).ok()?;
    let extra = msee - bare;
    let budget = baseline_ns / threshold - baseline_ns;
    Some(format!(
        "msee's program costs {extra:.0} ns a packet more than the bare redirect \
         (per packet, 10,000 routes, policing: {msee:.1} vs {bare:.1} ns); reaching \
         {threshold:.2} leaves it {budget:.0} ns over the bare redirect's {baseline_ns:.0} ns \
         a packet here"
    ))
}

/// The lab's target rows; `figures`: the whole run's, whose per-packet
/// and many-destinations figures say why a row falls short.
pub fn targets(t: &mut Targets<'_>, lab: &Value, figures: &Value) -> Result<()> {
    let cold = figures.get("cold");
    let configs = || lab["configs"].as_array().into_iter().flatten();
    let cfg = |routes: u64| -> Result<&Value> {
        configs()
            .find(|c| {
                c["program"] == "msee" && c["routes"].as_u64() == Some(routes) && one_destination(c)
            })
            .with_context(|| format!("msee-bench JSON lacks lab msee, {routes} routes"))
    };
    let spread = |routes: u64| -> Result<&Value> {
        configs()
            .find(|c| {
                c["program"] == "msee"
                    && c["routes"].as_u64() == Some(routes)
                    && c["spread_routes"].as_u64() == Some(routes)
            })
            .with_context(|| {
                format!("msee-bench JSON lacks lab msee, {routes} routes, spread destinations")
            })
    };
    let n = thousands(num(lab, &["spread_destinations"])? as u64);
    let rows = [
        (
            "lab: msee, 10,000 routes, policing: forwarded pps vs baseline".to_owned(),
            num(cfg(10_000)?, &["vs_baseline", "median"])?,
            TARGET_VS_BASELINE,
        ),
        (
            "lab: msee, 1,000,000 routes, policing: forwarded pps vs its own 1-route pps"
                .to_owned(),
            num(cfg(1_000_000)?, &["vs_one_route", "median"])?,
            TARGET_VS_ONE_ROUTE,
        ),
        (
            format!(
                "lab, {n} random destinations over 1,000,000 routes: msee / kernel-FIB forwarder (fibfwd), same traffic"
            ),
            num(spread(1_000_000)?, &["vs_fibfwd", "median"])?,
            TARGET_SPREAD_VS_FIBFWD,
        ),
        (
            format!(
                "lab, {n} random destinations over 1,000,000 routes: msee / its own one-destination pps"
            ),
            num(spread(1_000_000)?, &["vs_one_destination", "median"])?,
            TARGET_SPREAD_VS_ONE_DESTINATION,
        ),
        (
            format!(
                "lab, {n} random destinations over 10,000 routes: msee / bare redirect (baseline)"
            ),
            num(spread(10_000)?, &["vs_baseline", "median"])?,
            TARGET_SPREAD_VS_BASELINE,
        ),
    ];
    // The kernel-FIB forwarder's figure is XDP's only if it passed nothing
    // up and the kernel forwarded nothing during its samples.
    let fibfwd_spread = configs()
        .find(|c| c["program"] == FIBFWD && c["spread_routes"].as_u64() == Some(1_000_000));
    let fibfwd_fault = fibfwd_spread.and_then(|c| {
        let passed = c["fibfwd_passed"].as_u64().unwrap_or(0);
        let by_kernel = c["kernel_forwarded"].as_u64().unwrap_or(0);
        (passed + by_kernel > 0).then(|| {
            format!(
                "fibfwd handed {passed} frames to the kernel, which forwarded {by_kernel}: \
                 its figure is not XDP's"
            )
        })
    });
    let pps = |c: &Value| num(c, &["rx_pps", "median"]);
    let baseline_one = configs().find(|c| c["program"] == "baseline" && one_destination(c));
    let baseline_spread_10k = configs()
        .find(|c| c["program"] == "baseline" && c["spread_routes"].as_u64() == Some(10_000));
    for (k, (row, v, threshold)) in rows.into_iter().enumerate() {
        // Row 2: msee / fibfwd.
        let fault = if k == 2 { fibfwd_fault.clone() } else { None };
        // Row 0: one destination against the bare redirect's; rows 3 and
        // 4: spread traffic, against msee's one destination (1M routes)
        // and against the bare redirect's spread rate (10K).
        let why = match (k, baseline_one, baseline_spread_10k) {
            (0, Some(b), _) => program_shortfall(threshold, figures, 1e9 / pps(b)?),
            (3, _, _) => spread_shortfall(threshold, cold, 1_000_000, pps(cfg(1_000_000)?)?, None),
            (4, _, Some(b)) => spread_shortfall(
                threshold,
                cold,
                10_000,
                pps(cfg(10_000)?)?,
                Some(("the bare redirect", pps(b)?)),
            ),
            _ => None,
        };
        t.row(
            &row,
            &format!("{v:.3}"),
            &format!("≥ {threshold:.2}"),
            v >= threshold && fault.is_none(),
            fault.unwrap_or_else(|| shortfall(format!("{v:.3}, below {threshold:.2}"), why)),
        )?;
    }
    cores_targets(t, lab, figures)
}

pub fn render(w: &mut String, lab: &Value) -> Result<()> {
    writeln!(
        w,
        "Forwarded packets per second through the lab: 64-byte IPv4/UDP frames \
         from the `txgen` live-frames generator in the onprem namespace (one \
         thread, pinned to CPU {}), to the MAC of msee's primary port, \
         destination {}; the program on msee's primary port redirects them out \
         of its azure port; on the azure side an XDP program drops them. \
         Forwarded = rx packets of the azure-side interface (`ip -s link`) \
         over a {:.1} s window after {:.1} s of warm-up; offered = tx packets \
         of onprem's primary interface over the same window. Medians of {} \
         rounds (after one unrecorded warm-up round); each round takes the \
         baseline, the kernel-FIB forwarder (where measured) then every msee \
         configuration, re-attaching the program on msee's primary port for \
         each sample. The two interfaces' counters \
         are read one after the other, so forwarded / offered can read a \
         little above 1.\n",
        num(lab, &["generator_cpu"])?,
        lab["dst"].as_str().unwrap_or("?"),
        num(lab, &["window_s"])?,
        num(lab, &["warmup_s"])?,
        num(lab, &["rounds"])?
    )?;
    writeln!(
        w,
        "| program | IPv4 routes | policing | forwarded Mpps (median) | min–max | offered Mpps | forwarded / offered | vs baseline | vs 1 route | msee drops |"
    )?;
    writeln!(w, "|---|---|---|---|---|---|---|---|---|---|")?;
    let configs = lab["configs"]
        .as_array()
        .context("msee-bench JSON lacks lab.configs")?;
    for c in configs.iter().filter(|c| one_destination(c)) {
        writeln!(w, "{}", lab_row(c)?)?;
    }
    writeln!(
        w,
        "\nRatios are medians of per-round ratios (each msee sample against the \
         baseline, or the 1-route msee, sample of the same round). \"msee \
         drops\" is the sum of msee's own drop counters on the two lab links \
         over all samples (policer and others): 0 means every frame msee saw \
         it forwarded, and any frame missing at the azure side was lost in \
         the veth rings, not dropped by msee. The whole path (generator, \
         msee's XDP, the drop) runs in the softirqs of one CPU, so these are \
         single-core figures. One flow to one destination: msee finds its \
         route in the memo of the destination its ingress link routed last; \
         traffic spread over many destinations follows.\n"
    )?;
    if configs.iter().any(|c| c["program"] == FIBFWD) {
        writeln!(
            w,
            "`{FIBFWD}` is the forwarder a user would pick instead of msee, \
             written the way xdp-tools' `xdp-forward` works: parse Ethernet \
             and IP, `bpf_fib_lookup` in the kernel's FIB (route and \
             neighbour), decrement the TTL, write the MACs and redirect \
             through a devmap. The msee namespace holds the same routes in \
             its kernel routing tables, via the azure peer (a permanent \
             neighbour entry), with forwarding on: the {} in the main table \
             (the lookup through the policy rules, `xdp-forward`'s default), \
             the others each in a table of their own (looked up directly). \
             Its one-destination row looks up the main table. Datagrams the \
             kernel forwarded itself during fibfwd's samples (frames it passed \
             up; `ForwDatagrams`): {}.\n",
            lab["kernel_routes"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|k| k["table"].as_u64() == Some(u64::from(MAIN_TABLE)))
                .map(|k| format!("{} routes", thousands(k["routes"].as_u64().unwrap_or(0))))
                .next()
                .unwrap_or_else(|| "largest table's routes".to_owned()),
            configs
                .iter()
                .filter(|c| c["program"] == FIBFWD)
                .map(|c| {
                    let traffic = match c["spread_routes"].as_u64() {
                        Some(r) => format!(
                            "{} destinations over {} routes",
                            thousands(c["destinations"].as_u64().unwrap_or(0)),
                            thousands(r)
                        ),
                        None => "one destination".to_owned(),
                    };
                    let n = c["kernel_forwarded"]
                        .as_u64()
                        .map_or("?".to_owned(), |n| n.to_string());
                    format!("{traffic}, {n}")
                })
                .collect::<Vec<_>>()
                .join("; ")
        )?;
        let installs: Vec<String> = lab["kernel_routes"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|k| -> Result<String> {
                Ok(format!(
                    "{} routes in {:.1} s",
                    thousands(num(k, &["routes"])? as u64),
                    num(k, &["install_s"])?
                ))
            })
            .collect::<Result<_>>()?;
        if !installs.is_empty() {
            writeln!(
                w,
                "Installing the kernel routes (`ip -batch`, one netlink \
                 request per route) took: {}.\n",
                installs.join("; ")
            )?;
        }
    }
    render_cores(w, lab)?;
    let spread: Vec<&Value> = configs.iter().filter(|c| !one_destination(c)).collect();
    if spread.is_empty() {
        return render_circuits(w, lab);
    }
    writeln!(
        w,
        "### Traffic to many destinations\n\n\
         The same, with `txgen` sending frame n to destination n mod {}, \
         each destination an address in a random prefix of msee's table \
         (seeded; prefixes drawn with replacement), the frame's checksums \
         updated incrementally in the generator. Every program is measured with the same traffic (the \
         generator's extra work is in all), in the same rounds as the table \
         above.\n",
        thousands(num(lab, &["spread_destinations"])? as u64)
    )?;
    writeln!(
        w,
        "| program | IPv4 routes | policing | destinations | forwarded Mpps (median) | min–max | offered Mpps | forwarded / offered | vs baseline | vs fibfwd | vs one destination | msee drops |"
    )?;
    writeln!(w, "|---|---|---|---|---|---|---|---|---|---|---|---|")?;
    for c in spread {
        writeln!(w, "{}", lab_row(c)?)?;
    }
    writeln!(
        w,
        "\n\"vs fibfwd\" is against the kernel-FIB forwarder sent the same \
         traffic, \"vs one destination\" against the same msee's \
         one-destination sample, both of the same round.\n"
    )?;
    render_circuits(w, lab)
}

/// A lab table's rate cells of sample set `c`: forwarded Mpps (median),
/// its min–max, and offered Mpps.
fn rate_cells(c: &Value) -> Result<String> {
    Ok(format!(
        "{:.3} | {:.3}–{:.3} | {:.3}",
        num(c, &["rx_pps", "median"])? / 1e6,
        num(c, &["rx_pps", "min"])? / 1e6,
        num(c, &["rx_pps", "max"])? / 1e6,
        num(c, &["tx_pps", "median"])? / 1e6
    ))
}

/// Whether a lab configuration sent to one destination (the main table and
/// the targets) rather than spread its traffic.
fn one_destination(c: &Value) -> bool {
    c["destinations"].as_u64().unwrap_or(1) == 1
}

/// A row of a lab table: the program, its routes and policing, the
/// destinations where spread, the rates, and the ratio to the baseline,
/// where spread to fibfwd, and (msee rows) to its 1-route sample, or where
/// spread, to its one-destination sample.
fn lab_row(c: &Value) -> Result<String> {
    let msee = c["program"] != "baseline" && c["program"] != FIBFWD;
    let spread = !one_destination(c);
    let mut cells = vec![
        c["program"].as_str().unwrap_or("?").to_owned(),
        c["routes"].as_u64().map_or("–".to_owned(), thousands),
        if msee { "100 Gbit/s" } else { "–" }.to_owned(),
    ];
    if spread {
        let d = thousands(num(c, &["destinations"])? as u64);
        cells.push(match c["spread_routes"].as_u64() {
            Some(r) => format!("{d} over {} routes", thousands(r)),
            None => d,
        });
    }
    let ratio = |key: &str| -> Result<String> {
        Ok(if c.get(key).is_some() {
            format!("{:.3}", num(c, &[key, "median"])?)
        } else {
            "–".to_owned()
        })
    };
    cells.extend([
        rate_cells(c)?,
        format!("{:.3}", num(c, &["delivered", "median"])?),
        format!("{:.3}", num(c, &["vs_baseline", "median"])?),
    ]);
    if spread {
        cells.push(if msee {
            ratio("vs_fibfwd")?
        } else {
            "–".to_owned()
        });
    }
    cells.push(if !msee {
        "–".to_owned()
    } else if spread {
        ratio("vs_one_destination")?
    } else {
        ratio("vs_one_route")?
    });
    cells.push(
        c["msee_drops"]
            .as_u64()
            .map_or("–".to_owned(), |d| d.to_string()),
    );
    Ok(format!("| {} |", cells.join(" | ")))
}

// ---- Two cores.

/// The CPUs of the two-core samples.
const TWO_CORES: [usize; 2] = [0, 1];
/// msee with 10,000 routes on 2 queues and 2 cores keeps this share of the
/// bare redirect's pps on the same 2 cores.
pub const TARGET_TWO_CORES_VS_BASELINE: f64 = 0.9;
/// msee on 2 cores forwards at least this many times its 1-core pps.
pub const TARGET_TWO_CORES_VS_ONE: f64 = 1.8;

/// The baseline and `m` (msee with 10,000 routes, already programmed by
/// `lab_program`), one destination, with the generator on 1 CPU and on 2
/// (the lab's veths have 2 queues, so each CPU's frames are forwarded on
/// that CPU), interleaved per round.
fn measure_cores(
    rounds: usize,
    lb: &LabBench,
    baseline: &mut Baseline,
    m: &mut Msee,
) -> Result<Value> {
    let ns = lb.ns_msee();
    // (msee?, cpus)
    let plan: [(bool, &[usize]); 4] = [
        (false, &TWO_CORES[..1]),
        (true, &TWO_CORES[..1]),
        (false, &TWO_CORES),
        (true, &TWO_CORES),
    ];
    let mut samples: Vec<Vec<Sample>> = vec![Vec::new(); plan.len()];
    let mut per_cpu = vec![0u64; TWO_CORES.len()];
    eprintln!("msee-bench: lab throughput on 1 and 2 cores, {rounds} rounds...");
    for round in 0..=rounds {
        for (slot, &(msee, cpus)) in samples.iter_mut().zip(&plan) {
            netns::within(&ns, || -> Result<()> {
                if msee {
                    m.attach(lb.primary_ifindex, AttachMode::Native)?;
                } else {
                    baseline.attach(lb.primary_ifindex, AttachMode::Native)?;
                }
                Ok(())
            })??;
            let before = m.link_counters_per_cpu(LAB_IN_LINK, Direction::Rx)?;
            let s = lab_sample_on(lb, &[], cpus);
            let after = m.link_counters_per_cpu(LAB_IN_LINK, Direction::Rx)?;
            netns::within(&ns, || -> Result<()> {
                if msee {
                    m.detach_all()?;
                } else {
                    baseline.detach()?;
                }
                Ok(())
            })??;
            let label = if msee {
                "msee 10,000 routes"
            } else {
                "baseline"
            };
            let s = s.with_context(|| format!("lab sample {label} on CPUs {cpus:?}"))?;
            eprintln!(
                "msee-bench:   {label}, CPUs {cpus:?}: {:.0} pps forwarded ({:.0} pps sent)",
                s.rx_pps, s.tx_pps
            );
            if round > 0 {
                if msee && cpus.len() == TWO_CORES.len() {
                    for (cpu, seen) in per_cpu.iter_mut().enumerate() {
                        *seen += after.get(cpu).map_or(0, |c| c.packets)
                            - before.get(cpu).map_or(0, |c| c.packets);
                    }
                }
                slot.push(s);
            }
        }
    }
    let ratios = |a: usize, b: usize| {
        stats(
            &samples[a]
                .iter()
                .zip(&samples[b])
                .map(|(x, y)| x.rx_pps / y.rx_pps.max(1.0))
                .collect::<Vec<_>>(),
        )
    };
    let config = |k: usize| {
        let (msee, cpus) = plan[k];
        let s = &samples[k];
        json!({
            "program": if msee { "msee" } else { "baseline" },
            "routes": if msee { Some(10_000) } else { None },
            "cpus": cpus.len(),
            "rx_pps": sample_json(s, |x| x.rx_pps),
            "tx_pps": sample_json(s, |x| x.tx_pps),
            "delivered": sample_json(s, |x| x.rx_pps / x.tx_pps.max(1.0)),
            // Against the baseline on as many CPUs, and against itself on 1.
            "vs_baseline": ratios(k, k - usize::from(msee)),
            "vs_one_core": ratios(k, k % 2),
        })
    };
    Ok(json!({
        "cpus": TWO_CORES,
        "configs": (0..plan.len()).map(config).collect::<Vec<_>>(),
        // msee's primary link, 2-core samples: frames each CPU forwarded.
        "msee_frames_per_cpu": per_cpu,
    }))
}

/// The two-core rows (a run on one CPU has none to show).
fn cores_targets(t: &mut Targets<'_>, lab: &Value, figures: &Value) -> Result<()> {
    let cores = &lab["cores"];
    if cores.is_null() {
        for row in [
            "lab: msee, 10,000 routes, 2 queues + 2 cores: forwarded pps vs baseline",
            "lab: msee, 2 cores vs 1 core",
        ] {
            t.row(
                row,
                "–",
                "–",
                false,
                "not measured on this run (it takes 2 CPUs)".into(),
            )?;
        }
        return Ok(());
    }
    let on = |program: &str, cpus: u64| -> Result<&Value> {
        cores["configs"]
            .as_array()
            .and_then(|a| {
                a.iter()
                    .find(|c| c["program"] == program && c["cpus"].as_u64() == Some(cpus))
            })
            .with_context(|| format!("msee-bench JSON lacks lab.cores {program} on {cpus} CPUs"))
    };
    let two = on("msee", 2)?;
    let bare = on("baseline", 2)?;
    // What a second core adds to the bare redirect, which shares nothing
    // between CPUs: the machine's own scaling.
    let bare_scaling = num(bare, &["vs_one_core", "median"])?;
    // Each CPU forwards its share: the bare redirect's time per packet and CPU.
    let baseline_ns = 2e9 / num(bare, &["rx_pps", "median"])?;
    for (k, (row, v, threshold)) in [
        (
            "lab: msee, 10,000 routes, 2 queues + 2 cores: forwarded pps vs baseline",
            num(two, &["vs_baseline", "median"])?,
            TARGET_TWO_CORES_VS_BASELINE,
        ),
        (
            "lab: msee, 2 cores vs 1 core",
            num(two, &["vs_one_core", "median"])?,
            TARGET_TWO_CORES_VS_ONE,
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let why = match k {
            0 => program_shortfall(threshold, figures, baseline_ns),
            _ => Some(format!(
                "the bare redirect, which shares nothing between CPUs, scaled {bare_scaling:.3} \
                 in the same rounds"
            )),
        };
        t.row(
            row,
            &format!("{v:.3}"),
            &format!("≥ {threshold:.2}"),
            v >= threshold,
            shortfall(format!("{v:.3}, below {threshold:.2}"), why),
        )?;
    }
    Ok(())
}

/// The two-core table.
fn render_cores(w: &mut String, lab: &Value) -> Result<()> {
    let cores = &lab["cores"];
    if cores.is_null() {
        return Ok(());
    }
    writeln!(
        w,
        "### Two cores\n\n\
         The same lab with 2 queues on every veth, one destination, the \
         generator on CPU 0 alone and then on CPUs 0 and 1 (a thread each). \
         A veth hands a frame sent from CPU k to its peer's receive queue k, \
         whose NAPI runs on CPU k: msee (or the baseline) forwards on both \
         CPUs, each beside its generator thread. Medians of per-round \
         ratios, the same rounds as above, interleaved.\n"
    )?;
    writeln!(
        w,
        "| program | IPv4 routes | CPUs | forwarded Mpps (median) | min–max | offered Mpps | forwarded / offered | vs baseline | vs 1 core |"
    )?;
    writeln!(w, "|---|---|---|---|---|---|---|---|---|")?;
    for c in cores["configs"]
        .as_array()
        .context("msee-bench JSON lacks lab.cores.configs")?
    {
        writeln!(
            w,
            "| {} | {} | {} | {} | {:.3} | {:.3} | {:.3} |",
            c["program"].as_str().unwrap_or("?"),
            c["routes"].as_u64().map_or("–".to_owned(), thousands),
            num(c, &["cpus"])?,
            rate_cells(c)?,
            num(c, &["delivered", "median"])?,
            num(c, &["vs_baseline", "median"])?,
            num(c, &["vs_one_core", "median"])?,
        )?;
    }
    let per_cpu: Vec<String> = cores["msee_frames_per_cpu"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|v| v.as_u64().map_or("?".into(), thousands))
                .collect()
        })
        .unwrap_or_default();
    writeln!(
        w,
        "\nFrames msee's primary link received per CPU over its 2-core samples: {}.\n",
        per_cpu.join(" / ")
    )?;
    Ok(())
}

// ---- Many circuits.

/// Circuits of the many-circuits samples: each its own routing domain of
/// [`CIRCUIT_ROUTES`] Internet-shaped routes and its own ingress link, on
/// an outer VLAN of msee's primary port (circuit c on `FIRST_VLAN + c`).
const CIRCUITS: u16 = 100;
const CIRCUIT_ROUTES: usize = 10_000;
const FIRST_VLAN: u16 = 100;
/// Circuit c's routing domain and ingress link ids (clear of the lab's).
const FIRST_CIRCUIT_DOMAIN: u32 = 1000;
const FIRST_CIRCUIT_LINK: u32 = 10;

/// Destinations and, for each, the outer VLAN it is sent in.
type Tagged = (Vec<IpAddr>, Vec<u16>);

/// msee with [`CIRCUITS`] circuits loaded (each a domain of
/// [`CIRCUIT_ROUTES`] routes, an ingress link with its policers, an
/// attachment on its VLAN, all routed out of the azure port), and its
/// destinations: across every circuit's table, each in its circuit's
/// VLAN, or across the first circuit's only.
fn msee_with_circuits(lb: &LabBench) -> Result<(Msee, [Tagged; 2])> {
    use crate::fixture::fib_sizes;
    let mut m = Msee::load(&dataplane::LoadOptions {
        fib: fib_sizes(usize::from(CIRCUITS), CIRCUIT_ROUTES),
        ..Default::default()
    })
    .context("loading msee for the many-circuits samples")?;
    lab_program(&mut m, lb)?;
    let table = route_table(CIRCUIT_ROUTES);
    let mut entries = Vec::with_capacity(usize::from(CIRCUITS) * table.len());
    for c in 0..CIRCUITS {
        let (link, domain, vlan) = (
            FIRST_CIRCUIT_LINK + u32::from(c),
            FIRST_CIRCUIT_DOMAIN + u32::from(c),
            FIRST_VLAN + c,
        );
        m.set_link(
            link,
            Link {
                ifindex: lb.primary_ifindex,
                outer_vlan: vlan,
                outer_tpid: msee_abi::ETH_P_8021Q,
                role: LinkRole::Primary as u8,
                src_mac: lb.primary_mac,
                dst_mac: lb.onprem_mac,
                circuit: u32::from(c) + 1,
                ..Default::default()
            },
        )?;
        m.set_link_state(link, true)?;
        for dir in Direction::ALL {
            m.set_policer(link, dir, POLICE_BITS_PER_SEC, None)?;
        }
        attach_primary(&mut m, lb, vlan, link, domain, u32::from(c) + 1)?;
        let route = Route {
            group: LAB_GROUP,
            flags: 0,
        };
        entries.extend(table.iter().map(|p| (domain, ipnet::IpNet::V4(*p), route)));
    }
    m.upsert_routes(&entries)?;
    // The same draws of prefixes and hosts for both lists; the circuit of
    // each destination drawn apart (seeded).
    let addrs = spread_destinations(CIRCUIT_ROUTES, LAB_DESTINATIONS);
    let mut rng = testkit::Rng::new(crate::fixture::ROUTE_SEED ^ 0xc1c);
    let all: Vec<u16> = (0..addrs.len())
        .map(|_| FIRST_VLAN + (rng.next_u64() % u64::from(CIRCUITS)) as u16)
        .collect();
    let first = vec![FIRST_VLAN; addrs.len()];
    Ok((m, [(addrs.clone(), all), (addrs, first)]))
}

/// msee with 100 circuits loaded, traffic to 65,536 destinations across
/// every circuit's domain and across the first circuit's only, and the
/// one-circuit msee (`one`, 10,000 routes, untagged) with the same
/// addresses, interleaved per round.
fn measure_circuits(rounds: usize, lb: &LabBench, one: &mut Msee) -> Result<Value> {
    eprintln!("msee-bench: loading {CIRCUITS} circuits of {CIRCUIT_ROUTES} routes for the lab...");
    let (mut many, [(addrs, all), (_, first)]) = msee_with_circuits(lb)?;
    let memory = many.fib_stats();
    let ns = lb.ns_msee();
    let mut tagged = lb.path.clone();
    tagged.spec.vlans = vec![FIRST_VLAN];
    // The one-circuit msee also on the first circuit's VLAN: what tagged
    // traffic costs, apart from the circuits loaded.
    attach_primary(one, lb, FIRST_VLAN, LAB_IN_LINK, DOMAIN, 1)?;
    // (label, 100 circuits?, tagged?, per-destination VLANs)
    let plan: [(&str, bool, bool, &[u16]); 4] = [
        ("1 circuit", false, false, &[]),
        ("1 circuit, tagged", false, true, &[]),
        ("100 circuits, traffic to the first", true, true, &first),
        ("100 circuits, traffic to all", true, true, &all),
    ];
    let mut samples: Vec<Vec<Sample>> = vec![Vec::new(); plan.len()];
    eprintln!("msee-bench: lab throughput with {CIRCUITS} circuits, {rounds} rounds...");
    for round in 0..=rounds {
        for (slot, &(label, hundred, is_tagged, vlans)) in samples.iter_mut().zip(&plan) {
            let m: &mut Msee = if hundred { &mut many } else { one };
            netns::within(&ns, || m.attach(lb.primary_ifindex, AttachMode::Native))??;
            let path = if is_tagged { &tagged } else { &lb.path };
            let s = crate::throughput::measure_tagged(
                path,
                GenKind::LiveFrames,
                &addrs,
                vlans,
                &[GEN_CPU],
                WARMUP,
                WINDOW,
            );
            netns::within(&ns, || m.detach_all())??;
            let s = s.with_context(|| format!("lab sample msee, {label}"))?;
            eprintln!(
                "msee-bench:   msee, {label}: {:.0} pps forwarded ({:.0} pps sent)",
                s.rx_pps, s.tx_pps
            );
            if round > 0 {
                slot.push(s);
            }
        }
    }
    let mut drops = 0;
    for c in 0..u32::from(CIRCUITS) {
        drops += many
            .link_counters(FIRST_CIRCUIT_LINK + c, Direction::Rx)?
            .total_drops();
    }
    let configs: Vec<Value> = plan
        .iter()
        .zip(&samples)
        .map(|(&(label, _, _, _), s)| {
            json!({
                "traffic": label,
                "rx_pps": sample_json(s, |x| x.rx_pps),
                "tx_pps": sample_json(s, |x| x.tx_pps),
                "vs_one_circuit": stats(
                    &s.iter()
                        .zip(&samples[0])
                        .map(|(m, b)| m.rx_pps / b.rx_pps.max(1.0))
                        .collect::<Vec<_>>(),
                ),
            })
        })
        .collect();
    Ok(json!({
        "circuits": CIRCUITS,
        "routes_per_circuit": CIRCUIT_ROUTES,
        "destinations": addrs.len(),
        "configs": configs,
        "ingress_drops": drops,
        "fib_nodes_v4": memory.nodes_in_use[0],
        "fib_node_bytes_v4": memory.node_bytes[0],
    }))
}

/// The many-circuits table (none when not measured).
fn render_circuits(w: &mut String, lab: &Value) -> Result<()> {
    let c = &lab["circuits"];
    if c.is_null() {
        return Ok(());
    }
    writeln!(
        w,
        "### Many circuits\n\n\
         msee with {} circuits loaded, each a routing domain of {} \
         Internet-shaped routes, an ingress link (policed at 100 Gbit/s) and \
         an attachment on its own VLAN of msee's primary port, all routed \
         out of the azure port; the forwarding table holds {} IPv4 lines of \
         ranges ({:.1} MiB). The generator sends to {} destinations (the spread \
         samples' addresses over a 10,000-route table), tagged: across the \
         first circuit only, or each in the VLAN of a random circuit (its \
         domain holds the same prefixes). \"1 circuit\" is the msee with \
         10,000 routes above, sent the same addresses untagged, and tagged \
         on an attachment of the same domain, in the same rounds. msee's drops on the circuits' links over all samples: {}.\n",
        num(c, &["circuits"])?,
        thousands(num(c, &["routes_per_circuit"])? as u64),
        thousands(num(c, &["fib_nodes_v4"])? as u64),
        num(c, &["fib_nodes_v4"])? * num(c, &["fib_node_bytes_v4"])? / f64::from(1 << 20),
        thousands(num(c, &["destinations"])? as u64),
        num(c, &["ingress_drops"])?,
    )?;
    writeln!(
        w,
        "| msee | forwarded Mpps (median) | min–max | offered Mpps | vs 1 circuit |"
    )?;
    writeln!(w, "|---|---|---|---|---|")?;
    for k in c["configs"]
        .as_array()
        .context("msee-bench JSON lacks lab.circuits.configs")?
    {
        writeln!(
            w,
            "| {} | {} | {:.3} |",
            k["traffic"].as_str().unwrap_or("?"),
            rate_cells(k)?,
            num(k, &["vs_one_circuit", "median"])?,
        )?;
    }
    writeln!(
        w,
        "\nNo target applies here; the per-packet one (100 circuits loaded vs 1) is under \"Scale of one daemon\".\n"
    )?;
    Ok(())
}
