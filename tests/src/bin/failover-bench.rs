//! `failover-bench`: the failover scenarios (carrier loss, a silent black
//! hole only BFD sees, the customer tearing the BGP session down, each with
//! the primary's return) rehearsed several times each, at ExpressRoute's
//! BFD timers (300 ms x 3) and at lab timers (50 ms x 3), measured by the
//! packet engine. Prints JSON on stdout (for `cargo xtask bench`), progress
//! on stderr. Needs root.
use std::process::ExitCode;

use anyhow::{Context as _, Result, bail};
use e2e_tests::failover_lab::{FailoverLab, Outcome, Scenario};
use serde_json::json;
use testkit::median;

/// 32 flows at 20,000 packets/s in all: 1.6 ms between packets of a flow.
const PPS: f64 = 20_000.0;
const FLOWS: u16 = 32;
const MULTIPLIER: u8 = 3;
/// (label, BFD interval in ms).
const TIMERS: [(&str, u32); 2] = [("ExpressRoute's BFD timers", 300), ("lab BFD timers", 50)];

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("failover-bench: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<()> {
    let mut rounds = 5usize;
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--rounds" => {
                let v = it.next().context("--rounds needs a value")?;
                rounds = v
                    .parse()
                    .with_context(|| format!("--rounds {v}: not a positive integer"))?;
            }
            other => bail!("unknown argument {other} (expected --rounds N)"),
        }
    }
    if rounds == 0 {
        bail!("--rounds must be at least 1");
    }
    if !nix::unistd::geteuid().is_root() {
        bail!("needs root (network namespaces, XDP programs)");
    }
    let mut sets = Vec::new();
    for (label, interval) in TIMERS {
        let lab = FailoverLab::up(&format!("fb{interval}"), interval, MULTIPLIER);
        let mut scenarios = Vec::new();
        for scenario in Scenario::ALL {
            let mut outcomes: Vec<Outcome> = Vec::new();
            // A run the machine disturbed (the lab dropped packets outside
            // the MSEE) measured the machine: it is run again, at most as
            // many extra times as there are rounds, and counted.
            let mut disturbed = Vec::new();
            while outcomes.len() < rounds && disturbed.len() <= rounds {
                let (o, _) = lab
                    .rehearse(scenario, PPS, FLOWS)
                    .map_err(|e| anyhow::anyhow!("{label}, {}: {e}", scenario.name()))?;
                eprintln!("failover-bench: {interval} ms: {}", o.summary());
                match &o.disturbed {
                    Some(d) => disturbed.push(d.clone()),
                    None => outcomes.push(o),
                }
            }
            if outcomes.is_empty() {
                bail!(
                    "{label}, {}: every run was disturbed by the machine: {disturbed:?}",
                    scenario.name()
                );
            }
            let bound = scenario.outage_bound_ms(interval, MULTIPLIER);
            let outage = median(&outcomes.iter().map(|o| o.outage_ms).collect::<Vec<_>>());
            scenarios.push(json!({
                "scenario": scenario.name(),
                "bound_ms": bound,
                "outage_ms_median": outage,
                "outage_ms_min": outcomes.iter().map(|o| o.outage_ms).fold(f64::INFINITY, f64::min),
                "outage_ms_max": outcomes.iter().map(|o| o.outage_ms).fold(0.0, f64::max),
                "worst_stream_ms_max": outcomes.iter().map(|o| o.outage_ms_max).fold(0.0, f64::max),
                "detection_ms_median": median(&outcomes.iter().map(|o| o.detection_ms).collect::<Vec<_>>()),
                "flip_causes": outcomes.iter().map(|o| o.flip_down_cause.clone()).collect::<Vec<_>>(),
                "surviving_lost": outcomes.iter().map(|o| o.surviving_lost).sum::<u64>(),
                "lost_after_return": outcomes.iter().map(|o| o.lost_after_return).sum::<u64>(),
                "returned_all": outcomes.iter().all(|o| o.returned_streams == o.failed_streams),
                "disturbed_runs_discarded": disturbed,
                "rounds": outcomes,
            }));
        }
        sets.push(json!({
            "timers": label,
            "bfd_interval_ms": interval,
            "bfd_multiplier": MULTIPLIER,
            "scenarios": scenarios,
        }));
    }
    let report = json!({
        "pps": PPS,
        "flows": FLOWS,
        "rounds": rounds,
        "sets": sets,
    });
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}
