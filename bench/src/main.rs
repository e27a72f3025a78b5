//! `msee-bench`: the benchmarks behind `cargo xtask bench` (which runs them
//! as root and writes BENCHMARKS.md). Each measuring command prints its
//! JSON on stdout and its progress on stderr; `report` renders saved JSON
//! into the document.
#![forbid(unsafe_code)]
use std::{path::PathBuf, process::ExitCode};

use anyhow::{Context as _, Result, bail};
use bench::{
    DataplaneArgs, Only, at_least_one, failover, faults, generators, install_api, install_bgp, lab,
    per_packet,
    report::{self, Failover, Machine},
    scale, spin,
};
use clap::{Parser, Subcommand};
use serde_json::{Value, json};

#[derive(Parser)]
#[command(
    name = "msee-bench",
    about = "Benchmarks of the MSEE emulator (needs root)"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Per-packet cost (BPF_PROG_TEST_RUN, msee against baseline), many
    /// destinations, route installation (dataplane API, BGP peer), lab
    /// throughput and generator rates; JSON on stdout.
    Dataplane(DataplaneArgs),
    /// The failover rehearsals at ExpressRoute's and at lab BFD timers;
    /// JSON on stdout.
    Failover {
        /// Rehearsals of each scenario per timer set.
        #[arg(long, default_value_t = 5, value_parser = at_least_one())]
        rounds: usize,
    },
    /// The daemon restarted and killed under traffic both ways (FRR with
    /// BFD, graceful restart on and off): lost datagrams and the longest
    /// gap per scenario; JSON on stdout.
    Faults {
        /// Seconds of traffic per scenario.
        #[arg(long, default_value_t = 20)]
        secs: u64,
    },
    /// One daemon running 100 circuits on a Direct port pair with one BIRD
    /// as every customer: start to Established and routes in, memory per
    /// circuit; per packet with 100 circuits' domains vs 1. JSON on stdout.
    Scale(scale::ScaleArgs),
    /// Forward the lab's stream through one configuration for a profiler.
    Spin {
        /// ROUTES[,police]: 0 is the baseline, else an msee with that many
        /// routes, policed at 100 Gbit/s with `,police`.
        #[arg(value_parser = parse_spin)]
        config: (usize, bool),
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        /// The frames go to this many destinations (round robin), one in
        /// each of as many random prefixes of msee's table.
        #[arg(long, default_value_t = 1)]
        destinations: u32,
    },
    /// Render BENCHMARKS.md (on stdout) from saved JSON.
    Report {
        /// What `msee-bench dataplane` printed.
        #[arg(long)]
        dataplane: PathBuf,
        /// What `msee-bench failover` printed.
        #[arg(long, requires = "failover_command")]
        failover: Option<PathBuf>,
        /// The cargo command that ran the failover rehearsals, as the
        /// report quotes it.
        #[arg(long)]
        failover_command: Option<String>,
        /// What `msee-bench scale` printed.
        #[arg(long, conflicts_with = "only_install")]
        scale: Option<PathBuf>,
        /// What `msee-bench faults` printed.
        #[arg(long, conflicts_with = "only_install")]
        faults: Option<PathBuf>,
        /// Seconds the whole benchmark took to build and run.
        #[arg(long, required_unless_present = "only_install")]
        took_secs: Option<u64>,
        /// The route-installation sections only (`dataplane --only install`).
        #[arg(long, conflicts_with = "failover")]
        only_install: bool,
    },
}

fn parse_spin(v: &str) -> Result<(usize, bool), String> {
    let (routes, police) = match v.split_once(',') {
        Some((r, "police")) => (r, true),
        Some((_, other)) => return Err(format!("`{other}` is not `police`")),
        None => (v, false),
    };
    let routes = routes
        .parse()
        .map_err(|_| format!("{routes}: not a number of routes"))?;
    Ok((routes, police))
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("msee-bench: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn require_root() -> Result<()> {
    if !msee_sys::host::is_root() {
        bail!("needs root to load XDP programs and make namespaces (run `sudo cargo xtask bench`)");
    }
    Ok(())
}

fn print_json(v: &Value) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

fn run(cli: Cli) -> Result<()> {
    match cli.cmd {
        Cmd::Dataplane(args) => {
            require_root()?;
            print_json(&dataplane(&args)?)
        }
        Cmd::Scale(args) => {
            require_root()?;
            print_json(&scale::measure(&args)?)
        }
        Cmd::Faults { secs } => {
            require_root()?;
            print_json(&faults::measure(secs)?)
        }
        Cmd::Failover { rounds } => {
            require_root()?;
            print_json(&failover::measure(rounds)?)
        }
        Cmd::Spin {
            config: (routes, police),
            seconds,
            destinations,
        } => {
            require_root()?;
            spin::run(routes, police, seconds, destinations)
        }
        Cmd::Report {
            dataplane,
            failover,
            failover_command,
            scale,
            faults,
            took_secs,
            only_install,
        } => {
            let r = read_json(&dataplane)?;
            let machine = Machine::probe()?;
            let text = if only_install {
                report::render_install_only(&r, &machine)?
            } else {
                let f = failover.as_deref().map(read_json).transpose()?;
                let failover = f.as_ref().map(|report| Failover {
                    report,
                    command: failover_command.as_deref().unwrap_or_default(),
                });
                let scale = scale.as_deref().map(read_json).transpose()?;
                let faults = faults.as_deref().map(read_json).transpose()?;
                report::render(
                    &r,
                    failover,
                    scale.as_ref(),
                    faults.as_ref(),
                    &machine,
                    took_secs.unwrap_or_default(),
                )?
            };
            print!("{text}");
            Ok(())
        }
    }
}

/// Everything but the failover, in the order the figures are taken: the
/// per-packet rounds, then (reusing their msee instances) the generators
/// and the lab, then route installation.
fn dataplane(args: &DataplaneArgs) -> Result<Value> {
    let mut report = match args.only {
        Some(Only::PerPacket) => return Ok(per_packet::measure(args)?.0),
        Some(_) => json!({ "only": "install" }),
        None => {
            let (mut report, mut loaded) = per_packet::measure(args)?;
            if args.lab_rounds > 0 {
                report["generators"] = generators::measure(args.lab_rounds)?;
                report["lab"] =
                    lab::measure(args.lab_rounds, &mut loaded.baseline, &mut loaded.programs)?;
            }
            report
        }
    };
    if args.only != Some(Only::BgpInstall) {
        report["install"] = install_api::measure()?;
        report["route_batch"] = json!(dataplane::ROUTE_BATCH);
    }
    if args.install_runs > 0 {
        report["bgp_install"] = install_bgp::measure(args)?;
    }
    Ok(report)
}

fn read_json(path: &std::path::Path) -> Result<Value> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text)
        .with_context(|| format!("{}: not the JSON of a benchmark", path.display()))
}
