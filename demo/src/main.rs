//! `msee-demo` (run by `cargo xtask demo`): the whole story of an emulated
//! ExpressRoute circuit. The customer's router (FRR: zebra, bfdd, bgpd, AS
//! 65010) peers with the MSEE pair (AS 12076) over both links, with BFD at
//! ExpressRoute's 300 ms x 3; the VNet host streams to the customer and the
//! MSEE spreads the flows over both links; the primary fails silently
//! (carrier up, every frame dropped both ways: only BFD can see it); the
//! MSEE moves the flows to the secondary; the primary is repaired and
//! carries again. The outage is measured packet by packet and the received
//! rate per link is drawn over time. Needs root.
#![forbid(unsafe_code)]
use std::{path::PathBuf, process::ExitCode, time::Duration};

use anyhow::{Context as _, Result, bail};
use clap::Parser;
use e2e_tests::failover_lab::{FailoverLab, Scenario};
use msee_sys::netns;
use traffic::plot;

const PPS: f64 = 20_000.0;
const FLOWS: u16 = 32;
/// ExpressRoute's BFD timers.
const BFD_INTERVAL_MS: u32 = 300;
const BFD_MULTIPLIER: u8 = 3;

#[derive(Parser)]
#[command(
    name = "msee-demo",
    about = "A failover rehearsal on an emulated ExpressRoute circuit, measured and drawn (needs root)"
)]
struct Args {
    /// Instance prefix of the demo lab's namespaces.
    #[arg(long, default_value = "demo", value_parser = lab_prefix)]
    prefix: String,
    /// Where the rate plot (SVG) and the full report (JSON) go.
    #[arg(long, default_value = "results")]
    out: PathBuf,
}

fn lab_prefix(p: &str) -> Result<String> {
    lab::validate_prefix(p)?;
    Ok(p.to_owned())
}

fn main() -> ExitCode {
    match run(Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("msee-demo: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn step(n: u32, what: &str) {
    println!("\n== {n}. {what}");
}

fn run(Args { prefix, out }: Args) -> Result<()> {
    if !msee_sys::host::is_root() {
        bail!("the demo makes network namespaces and loads XDP programs: run it as root");
    }
    for ns in lab::Topology::new(&prefix)?.namespaces() {
        if netns::exists(&ns) {
            bail!("namespace {ns} exists: remove it with `cargo xtask lab down --prefix {prefix}`");
        }
    }
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;

    step(
        1,
        "The lab: onprem (the customer's router: FRR zebra + bfdd + bgpd, AS 65010) ==primary/secondary== msee (msee-daemon: XDP dataplane, BGP as AS 12076, BFD) ==azure== azure (VNet 10.1.0.0/16, host 10.1.0.4)",
    );
    let l = FailoverLab::up_named(&prefix, BFD_INTERVAL_MS, BFD_MULTIPLIER);
    println!("   namespaces {}", l.lab.topo.namespaces().join(", "));

    step(
        2,
        "BGP and BFD come up on both links (msee-cli sessions, bfd, routes)",
    );
    l.wait_ready().map_err(|e| anyhow::anyhow!("{e}"))?;
    for args in [&["sessions"][..], &["bfd"], &["routes", "er-lab"]] {
        print!("{}", cli_table(&l, args)?);
    }

    step(
        3,
        &format!(
            "Traffic: {FLOWS} flows, {PPS:.0} packets/s from the VNet host to the customer (172.16.0.1); the MSEE spreads them over both links by flow hash"
        ),
    );
    let tell = |s: &str| println!("   {s}");
    let (o, report) = l
        .rehearse_telling(
            Scenario::SilentBlackhole,
            PPS,
            FLOWS,
            Duration::from_secs(2),
            &|s: &str| {
                if s.starts_with("the primary fails") {
                    step(
                        4,
                        "The primary fails silently: carrier stays up, every frame is dropped both ways; only BFD (300 ms x 3, as on ExpressRoute) can see it",
                    );
                } else if s.starts_with("the primary is repaired") {
                    step(5, "The primary is repaired");
                }
                tell(s);
            },
        )
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    print!("{}", cli_table(&l, &["links"])?);

    step(6, "What every packet says");
    println!(
        "   the primary's {} flows were out for {:.1} ms (lost packets over their offered rate, RFC 6201; worst flow {:.1} ms)",
        o.failed_streams, o.outage_ms, o.outage_ms_max
    );
    println!(
        "   the secondary's {} flows lost {} packets; after the primary's return {} packets were lost",
        o.surviving_streams, o.surviving_lost, o.lost_after_return
    );
    println!(
        "   {} sent, {} received; the real service: about 0.9 s to detect with BFD, up to 180 s without, failover up to a minute",
        o.sent, o.received
    );
    let svg = out.join("demo-failover.svg");
    let json = out.join("demo-failover.json");
    std::fs::write(
        &svg,
        plot::rate_svg(
            "Received packets/s per link: the primary fails silently (BFD 300 ms x 3) and returns",
            &report.plot_series(),
            &report.plot_markers(),
        ),
    )
    .with_context(|| format!("writing {}", svg.display()))?;
    std::fs::write(
        &json,
        serde_json::to_vec_pretty(&serde_json::json!({ "outcome": o, "report": report }))?,
    )
    .with_context(|| format!("writing {}", json.display()))?;
    println!("   rate over time: {}", svg.display());
    println!("   full report:    {}", json.display());

    step(
        7,
        "What the operator sees: bytes per link (msee-cli get-stats, az's shape) and availability as the SLA counts it (msee-cli availability)",
    );
    print!("{}", cli_table(&l, &["get-stats", "er-lab"])?);
    let availability = cli_table(&l, &["availability", "er-lab"])?;
    println!("{}", availability.lines().next().unwrap_or_default());

    step(8, "The lab is removed");
    drop(l);
    println!("   done");
    if o.surviving_lost != 0 || o.lost_after_return != 0 {
        bail!("packets were lost where none should be (see above)");
    }
    Ok(())
}

/// `msee-cli ARGS` (its table) against the lab's daemon, indented.
fn cli_table(l: &FailoverLab, args: &[&str]) -> Result<String> {
    let out = std::process::Command::new(lab::daemon::workspace_bin("msee-cli")?)
        .arg("--socket")
        .arg(&l.lab.socket)
        .args(args)
        .output()
        .context("running msee-cli")?;
    if !out.status.success() {
        bail!(
            "msee-cli {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| format!("   {l}\n"))
        .collect())
}
