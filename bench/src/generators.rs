//! Packets per second of the packet engine's generators on one core: AF_XDP
//! and live frames, interleaved, on a veth pair with a drop sink.
use std::fmt::Write as _;

use anyhow::{Context as _, Result};
use serde_json::{Value, json};

use crate::{
    report::{Targets, num, shortfall},
    stats::sample_json,
    throughput::{GEN_CPU, GenKind, Sample, VethBench, WARMUP, WINDOW, measure as measure_path},
};

/// Generator packets per second on one core, 64-byte frames on a veth pair.
const TARGET_AF_XDP_PPS: f64 = 1.2e6;
const TARGET_LIVE_FRAMES_PPS: f64 = 3.0e6;

/// Packets per second of each generator on a veth pair with a drop sink,
/// AF_XDP and live frames interleaved.
pub fn measure(rounds: usize) -> Result<serde_json::Value> {
    let prefix = format!("b{}g", std::process::id() % 100_000);
    let bench = VethBench::up(&prefix).context("veth pair for the generator figures")?;
    let kinds = [GenKind::AfXdp, GenKind::LiveFrames];
    let mut samples: Vec<Vec<Sample>> = vec![Vec::new(); kinds.len()];
    eprintln!("msee-bench: generators on a veth pair, {rounds} rounds...");
    // Round 0 warms up and is not recorded.
    for round in 0..=rounds {
        for (k, kind) in kinds.iter().enumerate() {
            let s = measure_path(&bench.path, *kind, &[], &[GEN_CPU], WARMUP, WINDOW)
                .with_context(|| format!("generator {}", kind.name()))?;
            eprintln!(
                "msee-bench:   {}: {:.0} pps tx, {:.0} pps rx",
                kind.name(),
                s.tx_pps,
                s.rx_pps
            );
            if round > 0 {
                samples[k].push(s);
            }
        }
    }
    Ok(json!(
        kinds
            .iter()
            .zip(&samples)
            .map(|(kind, s)| json!({
                "mode": kind.name(),
                "tx_pps": sample_json(s, |x| x.tx_pps),
                "rx_pps": sample_json(s, |x| x.rx_pps),
                "tx_per_cpu_s": sample_json(s, |x| x.tx_per_cpu_s),
                "system_share": sample_json(s, system_share),
                "kernel_bound_pps": sample_json(s, |x| x.tx_per_cpu_s / system_share(x).max(1e-9)),
                "zero_copy": s.iter().any(|x| x.generator.threads.iter().any(|t| t.zero_copy)),
            }))
            .collect::<Vec<_>>()
    ))
}

/// The kernel's share (system time) of the sending threads' CPU time.
fn system_share(s: &Sample) -> f64 {
    let threads = &s.generator.threads;
    let cpu: f64 = threads.iter().map(|t| t.cpu_s).sum();
    threads.iter().map(|t| t.system_s).sum::<f64>() / cpu.max(1e-9)
}

/// Why a generator falls short of `threshold` pps, where the run measured
/// the kernel's share of its CPU time: the rate it would reach were its
/// own code free, which bounds what any change to the generator can win.
fn generator_shortfall(g: &Value, threshold: f64) -> Option<String> {
    let share = num(g, &["system_share", "median"]).ok()?;
    let bound = num(g, &["kernel_bound_pps", "median"]).ok()?;
    let copy_mode = g["mode"] == "af_xdp" && g["zero_copy"] != true;
    Some(format!(
        "{:.0} % of the sending thread's CPU time was the kernel's (system time{}); \
         were the generator's own code free, one core would send at most {:.2} Mpps{}",
        share * 100.0,
        if copy_mode {
            ": in copy mode it makes an skb of every frame"
        } else {
            ""
        },
        bound / 1e6,
        if bound < threshold {
            format!(", below {:.1} Mpps", threshold / 1e6)
        } else {
            String::new()
        }
    ))
}

/// The generators' target rows.
pub fn targets(t: &mut Targets<'_>, gens: &[Value]) -> Result<()> {
    for g in gens {
        let (name, threshold) = match g["mode"].as_str() {
            Some("af_xdp") => ("AF_XDP", TARGET_AF_XDP_PPS),
            Some("live_frames") => ("live frames", TARGET_LIVE_FRAMES_PPS),
            _ => continue,
        };
        let v = num(g, &["tx_pps", "median"])?;
        t.row(
            &format!("generator, {name}: pps on one core (64-byte, veth)"),
            &format!("{:.2} M", v / 1e6),
            &format!("≥ {:.1} M", threshold / 1e6),
            v >= threshold,
            shortfall(
                format!("{:.2} Mpps, below {:.1} Mpps", v / 1e6, threshold / 1e6),
                generator_shortfall(g, threshold),
            ),
        )?;
    }
    Ok(())
}

pub fn render(w: &mut String, gens: &[Value], lab: Option<&Value>) -> Result<()> {
    writeln!(
        w,
        "Packets per second of each generator mode on one core (thread pinned \
         to CPU {}), 64-byte IPv4/UDP frames on a veth pair made for the \
         bench, an XDP drop on the receiving end. Sent = tx packets of the \
         sending interface, received = rx packets of the receiving one, both \
         from `ip -s link` over the same window as the lab figures; per CPU \
         second = tx packets over the whole run divided by the CPU time (user \
         + system) of the generator thread; the kernel's share is the system \
         part of that time (`getrusage`, sampled by the tick), which no \
         change to the generator's own code can win back. Modes \
         interleaved, medians over rounds.\n",
        lab.and_then(|l| l["generator_cpu"].as_u64()).unwrap_or(0)
    )?;
    writeln!(
        w,
        "| mode | sent Mpps (median) | min–max | received Mpps | Mpps per CPU second | kernel's share of that CPU time | zero-copy |"
    )?;
    writeln!(w, "|---|---|---|---|---|---|---|")?;
    for g in gens {
        writeln!(
            w,
            "| {} | {:.3} | {:.3}–{:.3} | {:.3} | {:.3} | {} | {} |",
            g["mode"].as_str().unwrap_or("?"),
            num(g, &["tx_pps", "median"])? / 1e6,
            num(g, &["tx_pps", "min"])? / 1e6,
            num(g, &["tx_pps", "max"])? / 1e6,
            num(g, &["rx_pps", "median"])? / 1e6,
            num(g, &["tx_per_cpu_s", "median"])? / 1e6,
            num(g, &["system_share", "median"])
                .map_or("–".to_owned(), |v| format!("{:.0} %", v * 100.0)),
            match (g["mode"].as_str(), g["zero_copy"].as_bool()) {
                (Some("live_frames"), _) => "– (in-kernel)",
                (_, Some(true)) => "yes",
                _ => "no (copy mode)",
            }
        )?;
    }
    Ok(())
}
