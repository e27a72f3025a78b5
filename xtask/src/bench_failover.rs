//! The failover part of `cargo xtask bench`: runs `failover-bench` (tests
//! crate) and renders its section of BENCHMARKS.md.
use std::{
    fmt::Write as _,
    process::{Command, Stdio},
};

use anyhow::{Context as _, Result, bail};
use serde_json::Value;

use crate::workspace_root;

/// Runs the rehearsals (`rounds` per scenario and timer set) and returns
/// the markdown section.
pub fn run(rounds: u32) -> Result<String> {
    // The labs start msee-daemon and msee-cli from next to the benchmark.
    crate::cargo(&["build", "--release", "--bins"])?;
    let rounds = rounds.to_string();
    let args = [
        "run",
        "--release",
        "-p",
        "e2e-tests",
        "--bin",
        "failover-bench",
        "--",
        "--rounds",
        &rounds,
    ];
    let out = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(args)
        .current_dir(workspace_root())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .output()
        .context("running cargo")?;
    if !out.status.success() {
        bail!("`cargo {}` failed ({})", args.join(" "), out.status);
    }
    let report: Value =
        serde_json::from_slice(&out.stdout).context("failover-bench printed no valid JSON")?;
    render(&report, &args.join(" "))
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or(f64::NAN)
}

pub fn render(r: &Value, command: &str) -> Result<String> {
    let mut w = String::new();
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
        .context("failover-bench JSON lacks sets")?;
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
    Ok(w)
}

fn s_array<'a>(v: &'a Value, key: &str) -> Result<&'a Vec<Value>> {
    v[key]
        .as_array()
        .with_context(|| format!("failover-bench JSON lacks {key}"))
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
        let md = render(&r, "run failover-bench").unwrap();
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
