//! The failover scenarios (carrier loss, a silent black hole only BFD sees,
//! the customer tearing the BGP session down, each with the primary's
//! return) rehearsed several times each, at ExpressRoute's BFD timers
//! (300 ms x 3) and at lab timers (50 ms x 3), measured by the packet
//! engine (`e2e_tests::failover_lab`).
use std::fmt::Write as _;

use anyhow::{Context as _, Result, bail};
use e2e_tests::failover_lab::{FailoverLab, Outcome, Scenario};
use serde_json::{Value, json};
use testkit::median;

/// 32 flows at 20,000 packets/s in all: 1.6 ms between packets of a flow.
const PPS: f64 = 20_000.0;
const FLOWS: u16 = 32;
const MULTIPLIER: u8 = 3;
/// (label, BFD interval in ms).
const TIMERS: [(&str, u32); 2] = [("ExpressRoute's BFD timers", 300), ("lab BFD timers", 50)];

/// Rehearse each scenario `rounds` times per timer set (`rounds` >= 1).
pub fn measure(rounds: usize) -> Result<Value> {
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
                eprintln!("msee-bench failover: {interval} ms: {}", o.summary());
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
    Ok(report)
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or(f64::NAN)
}

/// The failover section; `command` ran the rehearsals.
pub fn render(w: &mut String, r: &Value, command: &str) -> Result<()> {
    writeln!(w, "## Failover (issue #6)\n")?;
    writeln!(
        w,
        "`cargo {command}` (run by `cargo xtask bench`): the lab with `msee-daemon` running BGP and BFD on both links, FRR as the customer router (zebra + bfdd + bgpd, its BGP sessions tied to BFD), and the packet engine streaming {} flows at {:.0} packets/s in all from the VNet host to the customer over both links. Each failure of the primary is followed by its return; every scenario ran {} times. Outage = the failed link's flows' lost packets over their offered rate (RFC 6201); detection = from the moment the lab starts the failure to the MSEE's flip of the link, on one clock; for carrier loss and the BGP teardown most of it is the lab's own command (starting `ip`, or `vtysh` and FRR's handling of it), which is why the outage can be far shorter.\n",
        r["flows"],
        f(&r["pps"]),
        r["rounds"]
    )?;
    let sets = r["sets"]
        .as_array()
        .context("msee-bench failover JSON lacks sets")?;
    for set in sets {
        writeln!(
            w,
            "### {} ({} ms x {})\n",
            set["timers"].as_str().unwrap_or("?"),
            set["bfd_interval_ms"],
            set["bfd_multiplier"]
        )?;
        writeln!(
            w,
            "| scenario | outage median (min-max) | target | detection median | flows of the surviving link: lost | after the return: lost | verdict |"
        )?;
        writeln!(w, "|---|---|---|---|---|---|---|")?;
        for s in s_array(set, "scenarios")? {
            let median = f(&s["outage_ms_median"]);
            let bound = f(&s["bound_ms"]);
            let surviving = s["surviving_lost"].as_u64().unwrap_or(u64::MAX);
            let after = s["lost_after_return"].as_u64().unwrap_or(u64::MAX);
            let pass = median < bound
                && surviving == 0
                && after == 0
                && s["returned_all"].as_bool().unwrap_or(true);
            writeln!(
                w,
                "| {} | {:.1} ms ({:.1}-{:.1}) | < {:.0} ms | {:.1} ms | {} | {} | {} |",
                s["scenario"].as_str().unwrap_or("?"),
                median,
                f(&s["outage_ms_min"]),
                f(&s["outage_ms_max"]),
                bound,
                f(&s["detection_ms_median"]),
                surviving,
                after,
                if pass { "PASS" } else { "FAIL" }
            )?;
        }
        writeln!(w)?;
        for s in s_array(set, "scenarios")? {
            if let Some(d) = s["disturbed_runs_discarded"]
                .as_array()
                .filter(|d| !d.is_empty())
            {
                writeln!(
                    w,
                    "{}: {} run(s) discarded and run again, the machine having dropped packets outside the MSEE ({}).\n",
                    s["scenario"].as_str().unwrap_or("?"),
                    d.len(),
                    d.iter()
                        .filter_map(|x| x.as_str())
                        .collect::<Vec<_>>()
                        .join("; ")
                )?;
            }
        }
    }
    writeln!(
        w,
        "For reference, the real service detects a silent failure in about 0.9 s with BFD at 300 ms x 3 and up to 180 s (the BGP hold time) without it, and states that failover can take up to a minute. A BGP teardown costs nothing here: the customer's NOTIFICATION arrives before any packet is lost, and the link is flipped the moment it does.\n"
    )?;
    Ok(())
}

fn s_array<'a>(v: &'a Value, key: &str) -> Result<&'a Vec<Value>> {
    v[key]
        .as_array()
        .with_context(|| format!("msee-bench failover JSON lacks {key}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_a_row_per_scenario_with_its_verdict() {
        let r = serde_json::json!({"flows": 32, "pps": 20000.0, "rounds": 5, "sets": [
            {"timers": "lab BFD timers", "bfd_interval_ms": 50, "bfd_multiplier": 3, "scenarios": [
                {"scenario": "primary loses carrier", "bound_ms": 10.0, "outage_ms_median": 1.7,
                 "outage_ms_min": 0.8, "outage_ms_max": 3.0, "detection_ms_median": 5.7,
                 "surviving_lost": 0, "lost_after_return": 0},
                {"scenario": "primary black-holes silently (BFD)", "bound_ms": 160.0, "outage_ms_median": 170.0,
                 "outage_ms_min": 150.0, "outage_ms_max": 180.0, "detection_ms_median": 170.0,
                 "surviving_lost": 0, "lost_after_return": 0}]}]});
        let mut md = String::new();
        render(&mut md, &r, "run failover-bench").unwrap();
        assert!(
            md.contains(
                "| primary loses carrier | 1.7 ms (0.8-3.0) | < 10 ms | 5.7 ms | 0 | 0 | PASS |"
            ),
            "{md}"
        );
        assert!(
            md.contains("| 170.0 ms (150.0-180.0) | < 160 ms") && md.contains("| FAIL |"),
            "{md}"
        );
    }
}
