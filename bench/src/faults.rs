//! Restarts and faults under traffic (issue 21): the daemon restarted
//! (SIGTERM) and killed (SIGKILL) while UDP runs both ways between the VNet
//! host and the customer's host at 1,000 datagrams/s, with FRR as the
//! customer (BFD on, graceful restart on or off); route churn from BIRD;
//! a flapping session. Per scenario and direction: datagrams lost and the
//! longest time between two received. The rigs are the ones the tests use
//! (`e2e_tests::restart`, `e2e_tests::faults`).
use std::fmt::Write as _;

use anyhow::Result;
use e2e_tests::restart::{Customer, RestartLab, Stop};
use lab::traffic::FlowResult;
use serde_json::{Value, json};

use crate::report::Targets;

const PPS: u32 = 1000;

fn flow(r: &FlowResult) -> Value {
    json!({
        "sent": r.sent,
        "received": r.received,
        "lost": r.sent.saturating_sub(r.received),
        "longest_gap_ms": r.longest_gap.as_secs_f64() * 1e3,
    })
}

fn run(rl: &mut RestartLab, scenario: &str, stop: Stop, secs: u64, target: bool) -> Value {
    eprintln!("faults: {scenario}");
    let ([to, from], restarts) = rl.restarts_under_traffic(&[stop], secs, PPS);
    // A loss where none is expected is worth its logs.
    if target && (to.received < to.sent || from.received < from.sent) {
        for r in &restarts {
            eprintln!(
                "faults: {scenario}: lost {} / {}\n--- the stopped daemon\n{}\n--- the new daemon\n{}",
                to.sent - to.received,
                from.sent - from.received,
                r.old_log,
                r.new_log
            );
        }
        eprintln!("--- the customer's router\n{}", rl.frr.log());
    }
    json!({
        "scenario": scenario,
        "zero_loss_target": target,
        "to_customer": flow(&to),
        "from_customer": flow(&from),
    })
}

/// Every scenario, `secs` of traffic each.
pub fn measure(secs: u64) -> Result<Value> {
    let mut rows = Vec::new();
    {
        let with_gr = Customer {
            graceful_restart: true,
            bfd: true,
        };
        let mut rl = RestartLab::up("bfgr", with_gr, &[]);
        rows.push(run(
            &mut rl,
            "restart (SIGTERM), customer with graceful restart",
            Stop::Term,
            secs,
            true,
        ));
        rows.push(run(
            &mut rl,
            "crash (SIGKILL) and restart, customer with graceful restart",
            Stop::Kill,
            secs,
            true,
        ));
    }
    {
        let without = Customer {
            graceful_restart: false,
            bfd: true,
        };
        let mut rl = RestartLab::up("bfnogr", without, &[]);
        rows.push(run(
            &mut rl,
            "restart (SIGTERM), customer without graceful restart",
            Stop::Term,
            secs,
            false,
        ));
    }
    {
        eprintln!("faults: route churn");
        let rounds = u32::try_from(secs).unwrap_or(30);
        let run = e2e_tests::faults::route_churn(rounds);
        let sent: u64 = run.flows.iter().map(|(_, f)| f.sent).sum();
        let received: u64 = run.flows.iter().map(|(_, f)| f.received).sum();
        let gap = run
            .flows
            .iter()
            .map(|(_, f)| f.longest_gap)
            .max()
            .unwrap_or_default();
        rows.push(json!({
            "scenario": format!(
                "route churn: {} routes withdrawn and re-announced every second, {} s \
                 (traffic to 10 hosts of 100 stable prefixes)",
                run.churned, run.rounds
            ),
            "zero_loss_target": true,
            "to_customer": flow(&FlowResult { sent, received, longest_gap: gap }),
            "from_customer": null,
        }));
    }
    {
        eprintln!("faults: flapping session");
        let cycles = u32::try_from(secs / 2).unwrap_or(15).max(1);
        let run = e2e_tests::faults::flapping(cycles);
        rows.push(json!({
            "scenario": format!(
                "the primary's session flapping every 2 s, {} s ({} downs; traffic on the \
                 secondary; daemon RSS {:.1} -> {:.1} MiB)",
                cycles * 2,
                run.primary_downs,
                run.rss_before as f64 / 1_048_576.0,
                run.rss_after as f64 / 1_048_576.0
            ),
            "zero_loss_target": true,
            "to_customer": flow(&run.flows[0]),
            "from_customer": flow(&run.flows[1]),
        }));
    }
    Ok(json!({ "pps": PPS, "secs": secs, "rows": rows }))
}

fn cell(v: &Value) -> String {
    if v.is_null() {
        return "- | -".into();
    }
    format!(
        "{} of {} | {:.1} ms",
        v["lost"],
        v["sent"],
        v["longest_gap_ms"].as_f64().unwrap_or(f64::NAN)
    )
}

pub fn render(w: &mut String, v: &Value) -> Result<()> {
    writeln!(w, "## Restarts and faults under traffic\n")?;
    writeln!(
        w,
        "`msee-daemon` restarted while UDP runs both ways between the VNet host and the \
         customer's host, {} datagrams/s each way for {} s, FRR as the customer's router with \
         BFD (300 ms x 3, `bfd check-control-plane-failure`) on both links and its routes to \
         the VNet only those BGP gave it (zebra installing them). The old daemon's \
         exit leaves its program forwarding on the pinned state; the new one (same arguments, \
         same state directory) adopts it. Lost = sent - received; the longest gap is the \
         longest time between two datagrams received (the outage when one happens). Route \
         churn: BIRD as the customer, 500 datagrams/s to each of 10 hosts (half of them under a \
         churning /25 inside their stable /24). Flapping: the customer (FRR, prepending on the \
         primary so that the secondary carries) shuts and reopens the primary's session. The \
         same scenarios run in `cargo xtask test` (`restart`, `bgp_bird`, `faults`), which \
         assert what the targets say.\n",
        v["pps"], v["secs"]
    )?;
    writeln!(
        w,
        "| scenario | to the customer: lost | longest gap | from the customer: lost | longest gap |"
    )?;
    writeln!(w, "|---|---:|---:|---:|---:|")?;
    for r in v["rows"].as_array().into_iter().flatten() {
        writeln!(
            w,
            "| {} | {} | {} |",
            r["scenario"].as_str().unwrap_or("?"),
            cell(&r["to_customer"]),
            cell(&r["from_customer"]),
        )?;
    }
    writeln!(
        w,
        "\nA customer without graceful restart drops the MSEE's routes as soon as the session \
         goes, so its traffic to Azure stops until BGP is back; the MSEE keeps forwarding to \
         it on the adopted routes.\n"
    )?;
    Ok(())
}

pub fn targets(t: &mut Targets<'_>, v: &Value) -> Result<()> {
    for r in v["rows"].as_array().into_iter().flatten() {
        if r["zero_loss_target"] != true {
            continue;
        }
        let lost_of = |v: &Value| {
            if v.is_null() {
                0
            } else {
                v["lost"].as_u64().unwrap_or(u64::MAX)
            }
        };
        let lost = lost_of(&r["to_customer"]).saturating_add(lost_of(&r["from_customer"]));
        t.row(
            &format!("{}: lost, both ways", r["scenario"].as_str().unwrap_or("?")),
            &lost.to_string(),
            "0",
            lost == 0,
            format!("{lost} datagrams lost"),
        )?;
    }
    Ok(())
}
