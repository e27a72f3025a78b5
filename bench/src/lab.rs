//! Forwarded packets per second through the lab (onprem primary -> msee ->
//! azure) for the baseline and each msee instance, all policed,
//! interleaved per round, to one destination and spread over many.
use std::fmt::Write as _;

use anyhow::{Context as _, Result};
use dataplane::{AttachMode, Msee};
use msee_abi::{
    Attachment, AttachmentKey, Direction, GroupMember, Link, LinkRole, PeeringKind, Route,
};
use msee_sys::netns;
use serde_json::{Value, json};
use traffic::Baseline;

use crate::{
    fixture::{DOMAIN, POLICE_BITS_PER_SEC, PROBE_DST, PROBE_ROUTE},
    per_packet::{Program, TARGET_VS_BASELINE, TARGET_VS_ONE_ROUTE},
    report::{Targets, num, thousands},
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
/// Destinations of the lab's spread samples: the probe's route's /24, round
/// robin (each frame to another destination than the last: never the one
/// msee's ingress link routed last, always one its destination cache holds).
const LAB_DESTINATIONS: u32 = 256;

/// One lab sample as the bench takes it (the spin measures the same way).
pub fn lab_sample(lb: &LabBench, destinations: u32) -> Result<Sample> {
    measure_path(
        &lb.path,
        GenKind::LiveFrames,
        destinations,
        GEN_CPU,
        WARMUP,
        WINDOW,
    )
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
    m.set_group(
        LAB_GROUP,
        &[GroupMember {
            link: LAB_OUT_LINK,
            preference: 0,
        }],
    )?;
    m.set_attachment(
        AttachmentKey {
            ifindex: lb.primary_ifindex,
            outer_vlan: 0,
            inner_vlan: 0,
        },
        Attachment {
            link: LAB_IN_LINK,
            domain: DOMAIN,
            circuit: 1,
            peering: PeeringKind::Private as u8,
            role: LinkRole::Primary as u8,
            mac: lb.primary_mac,
            ..Default::default()
        },
    )?;
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

/// Forwarded pps through the lab, onprem primary -> msee -> azure, for the
/// baseline and each msee instance (all policed), interleaved per round.
pub fn measure(
    rounds: usize,
    baseline: &mut Baseline,
    programs: &mut [Program],
) -> Result<serde_json::Value> {
    let prefix = format!("b{}l", std::process::id() % 100_000);
    let lb = LabBench::up(&prefix, PROBE_DST).context("lab for the throughput figures")?;
    let ns = lb.ns_msee();
    netns::within(&ns, || {
        baseline.set_redirect(lb.primary_ifindex, lb.azure_ifindex)
    })??;
    // Every instance of every program, in one list: (program, routes, msee).
    let mut instances: Vec<(String, usize, &mut Msee)> = Vec::new();
    for p in programs.iter_mut() {
        for (routes, m) in p.instances.iter_mut() {
            lab_program(m, &lb)?;
            instances.push((p.name.clone(), *routes, m));
        }
    }
    // Sample order within a round: baseline, then each msee instance, all
    // to one destination; then the baseline and msee with 10,000 routes
    // again, to `LAB_DESTINATIONS` destinations.
    let spread = instances
        .iter()
        .position(|(n, r, _)| n == "msee" && *r == 10_000);
    let mut plan: Vec<(Option<usize>, u32)> = vec![(None, 1)];
    plan.extend((0..instances.len()).map(|i| (Some(i), 1)));
    if let Some(i) = spread {
        plan.extend([(None, LAB_DESTINATIONS), (Some(i), LAB_DESTINATIONS)]);
    }
    let mut samples: Vec<Vec<Sample>> = vec![Vec::new(); plan.len()];
    let mut before = Vec::new();
    for (_, _, m) in instances.iter() {
        before.push(m.link_counters(LAB_OUT_LINK, Direction::Tx)?.packets);
    }
    eprintln!("msee-bench: lab throughput, {rounds} rounds of baseline and msee...");
    for round in 0..=rounds {
        for (slot, &(instance, destinations)) in samples.iter_mut().zip(&plan) {
            netns::within(&ns, || -> Result<()> {
                match instance {
                    None => baseline.attach(lb.primary_ifindex, AttachMode::Native)?,
                    Some(i) => instances[i]
                        .2
                        .attach(lb.primary_ifindex, AttachMode::Native)?,
                }
                Ok(())
            })??;
            let s = lab_sample(&lb, destinations);
            netns::within(&ns, || -> Result<()> {
                match instance {
                    None => baseline.detach()?,
                    Some(i) => instances[i].2.detach_all()?,
                }
                Ok(())
            })??;
            let label = match instance {
                None => "baseline".to_owned(),
                Some(i) => format!("{} {} routes", instances[i].0, instances[i].1),
            };
            let s =
                s.with_context(|| format!("lab sample {label}, {destinations} destinations"))?;
            eprintln!(
                "msee-bench:   {label}, {destinations} destinations: {:.0} pps forwarded ({:.0} pps sent)",
                s.rx_pps, s.tx_pps
            );
            if round > 0 {
                slot.push(s);
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
    let sample_of = |instance: Option<usize>, destinations: u32| {
        plan.iter()
            .position(|p| *p == (instance, destinations))
            .map(|k| &samples[k])
            .expect("a sample set in the plan")
    };
    let mut configs = Vec::new();
    for (s, &(instance, destinations)) in samples.iter().zip(&plan) {
        let mut v = json!({
            "program": "baseline",
            "destinations": destinations,
            "rx_pps": sample_json(s, |x| x.rx_pps),
            "tx_pps": sample_json(s, |x| x.tx_pps),
            "delivered": sample_json(s, |x| x.rx_pps / x.tx_pps.max(1.0)),
            // Against the baseline sent to as many destinations.
            "vs_baseline": ratios(s, sample_of(None, destinations)),
        });
        if let Some(i) = instance {
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
            if destinations == 1 {
                v["vs_one_route"] = ratios(s, sample_of(Some(one), 1));
            } else {
                v["vs_one_destination"] = ratios(s, sample_of(Some(i), 1));
            }
        }
        configs.push(v);
    }
    Ok(json!({
        "rounds": rounds,
        "warmup_s": WARMUP.as_secs_f64(),
        "window_s": WINDOW.as_secs_f64(),
        "generator_cpu": GEN_CPU,
        "dst": PROBE_DST.to_string(),
        "spread_destinations": LAB_DESTINATIONS,
        "configs": configs,
    }))
}

/// The lab's target rows.
pub fn targets(t: &mut Targets<'_>, lab: &Value) -> Result<()> {
    let cfg = |routes: u64| -> Result<&Value> {
        lab["configs"]
            .as_array()
            .and_then(|a| {
                a.iter()
                    .find(|c| c["routes"].as_u64() == Some(routes) && one_destination(c))
            })
            .with_context(|| format!("msee-bench JSON lacks lab msee, {routes} routes"))
    };
    let rows = [
        (
            "lab: msee, 10,000 routes, policing: forwarded pps vs baseline",
            num(cfg(10_000)?, &["vs_baseline", "median"])?,
            TARGET_VS_BASELINE,
        ),
        (
            "lab: msee, 1,000,000 routes, policing: forwarded pps vs its own 1-route pps",
            num(cfg(1_000_000)?, &["vs_one_route", "median"])?,
            TARGET_VS_ONE_ROUTE,
        ),
    ];
    for (row, v, threshold) in rows {
        t.row(
            row,
            &format!("{v:.3}"),
            &format!("≥ {threshold:.2}"),
            v >= threshold,
            format!("{v:.3}, below {threshold:.2}"),
        )?;
    }
    Ok(())
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
         baseline then every msee configuration, re-attaching the program on \
         msee's primary port for each sample. The two interfaces' counters \
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
    let spread: Vec<&Value> = configs.iter().filter(|c| !one_destination(c)).collect();
    if spread.is_empty() {
        return Ok(());
    }
    writeln!(
        w,
        "### Traffic to many destinations\n\n\
         The same, with `txgen` sending each frame to the next of {} \
         destinations in the probe's /24 (round robin on the last byte of the \
         address; both checksums updated): msee's memo of the destination \
         routed last never answers, its per-CPU destination cache does. The \
         baseline is measured with the same traffic (the generator's extra \
         work is in both), in the same rounds as the table above.\n",
        num(lab, &["spread_destinations"])?
    )?;
    writeln!(
        w,
        "| program | IPv4 routes | policing | destinations | forwarded Mpps (median) | min–max | offered Mpps | forwarded / offered | vs baseline | vs one destination | msee drops |"
    )?;
    writeln!(w, "|---|---|---|---|---|---|---|---|---|---|---|")?;
    for c in spread {
        writeln!(w, "{}", lab_row(c)?)?;
    }
    writeln!(
        w,
        "\n\"vs one destination\" is against the same msee's one-destination \
         sample of the same round. No target applies to this row: it shows \
         what spread traffic costs where the figures above send one flow.\n"
    )?;
    Ok(())
}

/// Whether a lab configuration sent to one destination (the main table and
/// the targets) rather than spread its traffic.
fn one_destination(c: &Value) -> bool {
    c["destinations"].as_u64().unwrap_or(1) == 1
}

/// A row of a lab table: the program, its routes and policing, the
/// destinations where spread, the rates, and the ratio to the baseline and
/// (msee rows) to its 1-route sample, or where spread, to its one-destination
/// sample.
fn lab_row(c: &Value) -> Result<String> {
    let msee = c["program"] != "baseline";
    let (spread, vs) = if one_destination(c) {
        (None, "vs_one_route")
    } else {
        (Some(num(c, &["destinations"])?), "vs_one_destination")
    };
    let mut cells = vec![
        c["program"].as_str().unwrap_or("?").to_owned(),
        c["routes"].as_u64().map_or("–".to_owned(), thousands),
        if msee { "100 Gbit/s" } else { "–" }.to_owned(),
    ];
    cells.extend(spread.map(|d| d.to_string()));
    cells.extend([
        format!("{:.3}", num(c, &["rx_pps", "median"])? / 1e6),
        format!(
            "{:.3}–{:.3}",
            num(c, &["rx_pps", "min"])? / 1e6,
            num(c, &["rx_pps", "max"])? / 1e6
        ),
        format!("{:.3}", num(c, &["tx_pps", "median"])? / 1e6),
        format!("{:.3}", num(c, &["delivered", "median"])?),
        format!("{:.3}", num(c, &["vs_baseline", "median"])?),
        if msee {
            format!("{:.3}", num(c, &[vs, "median"])?)
        } else {
            "–".to_owned()
        },
        c["msee_drops"]
            .as_u64()
            .map_or("–".to_owned(), |d| d.to_string()),
    ]);
    Ok(format!("| {} |", cells.join(" | ")))
}
