//! `cargo xtask`: setup, build, lab, test, bench and demo for the MSEE emulator.
//! Every command except `lab down` runs `setup` first.
#![forbid(unsafe_code)]
mod bench;
mod demo;
mod fuzz;
mod setup;

use std::{path::PathBuf, process::Command};

use anyhow::{Context as _, Result, bail};
use clap::{Parser, Subcommand};
use lab::{Lab, Topology};

#[derive(Parser)]
#[command(about = "Developer tasks for the ExpressRoute MSEE emulator")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Install what a fresh machine lacks (Debian packages, nightly rust-src,
    /// cargo-fuzz, bpf-linker for LLVM 22, bpffs). Idempotent.
    Setup,
    /// Build the eBPF object and every binary.
    Build {
        #[arg(long)]
        release: bool,
    },
    /// Rehearse a failure of your own circuit under traffic: builds the lab
    /// of your file (or uses one already up), streams both ways, fails the
    /// primary and repairs it, and reports (terminal, JSON, SVG) beside the
    /// real service's figures. `cargo xtask rehearse --help` lists the
    /// options (--config FILE --failure carrier|silent|bgp|drain|bfd-timers
    /// [--circuit --peering --at --for --traffic --bfd --repeat --out]).
    #[command(disable_help_flag = true)]
    Rehearse {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Bring the lab topology up or down.
    Lab {
        #[command(subcommand)]
        action: LabAction,
    },
    /// Run every test: formatting and lints first (`lint`), then unit,
    /// every fuzz target for a few seconds, packet fixtures
    /// (BPF_PROG_TEST_RUN) and end-to-end labs.
    Test,
    /// `cargo fmt --check` and `cargo clippy -D warnings` over every crate.
    Lint,
    /// Dataplane benchmarks (BPF_PROG_TEST_RUN: msee against a plain devmap
    /// redirect, route install rates; forwarded pps through the lab and
    /// generator pps on a veth pair); writes BENCHMARKS.md. Needs root.
    Bench {
        /// Recorded rounds of interleaved baseline/msee samples.
        #[arg(long, default_value_t = 10)]
        rounds: u32,
        /// BPF_PROG_TEST_RUN calls (of 250 runs each) per sample. Each call
        /// costs milliseconds of wall time here (see BENCHMARKS.md).
        #[arg(long, default_value_t = 16)]
        calls: u32,
        /// Recorded rounds of the lab and generator throughput samples
        /// (about 11 s of traffic each); 0 skips them. A round's msee/baseline
        /// ratio varies by about 3 % here, so 15 rounds put the median
        /// within about 1 %.
        #[arg(long, default_value_t = 15)]
        lab_rounds: u32,
        /// Rehearsals of each failover scenario per BFD timer set (about
        /// 7 s each); 0 skips them.
        #[arg(long, default_value_t = 5)]
        failover_rounds: u32,
        /// Circuits of the scale benchmark (one daemon, one Direct port
        /// pair, one BIRD as every customer); 0 skips it.
        #[arg(long, default_value_t = 100)]
        scale_circuits: u32,
        /// Seconds of traffic per restart and fault scenario (three
        /// scenarios, each with its lab); 0 skips them.
        #[arg(long, default_value_t = 20)]
        fault_secs: u32,
        /// Runs per table size of the install from a BGP peer (BIRD);
        /// 0 skips it.
        #[arg(long, default_value_t = 3)]
        install_runs: u32,
        /// Table sizes of the install from a BGP peer, comma-separated.
        #[arg(long, default_value = "10000,1000000")]
        install_prefixes: String,
        /// `install`: only route installation (dataplane API and BGP peer);
        /// the report is printed, BENCHMARKS.md is left as it is.
        #[arg(long, value_parser = ["install"])]
        only: Option<String>,
    },
    /// Fuzz the BGP and BFD codecs and session state machines and the
    /// circuit file parser and az/ARM import (cargo-fuzz), each target for
    /// a bounded time; `test` runs them briefly.
    Fuzz {
        /// Seconds per target.
        #[arg(long, default_value_t = 60)]
        seconds: u32,
    },
    /// The main job: a lab with FRR as the customer router, BGP and BFD up on
    /// both links, traffic over both, the primary failing silently and
    /// returning, the outage measured and drawn; the lab is removed after.
    Demo {
        /// Instance prefix of the demo lab's namespaces.
        #[arg(long, default_value = "demo")]
        prefix: String,
        /// Where the rate plot (SVG) and the full report (JSON) go.
        #[arg(long, default_value = "results")]
        out: String,
    },
}

#[derive(Subcommand)]
enum LabAction {
    /// Create namespaces <prefix>-onprem, <prefix>-msee, <prefix>-azure and
    /// their links; with --config, the lab of your own estate: a customer
    /// namespace per circuit with its router, the MSEE running every
    /// circuit, a namespace per VNet and the Microsoft edge.
    Up {
        #[arg(long, default_value = "lab")]
        prefix: String,
        /// Your estate's configuration (repeatable; merged): the project's
        /// TOML/JSON, `az network express-route show/list` output, ARM
        /// bodies or deployment templates.
        #[arg(long = "config")]
        config: Vec<String>,
        /// With --config: the customers' router, frr, bird, gobgp or none,
        /// or CIRCUIT=ROUTER for one circuit (repeatable).
        #[arg(long = "customer", requires = "config")]
        customer: Vec<String>,
        /// With --config: build only these circuits (repeatable).
        #[arg(long = "circuit", requires = "config")]
        circuit: Vec<String>,
        /// Without --config: queues of every veth (1-64). With N, frames
        /// sent from CPU k reach the MSEE on receive queue k, so N
        /// generator threads on N CPUs have it forward on N CPUs.
        #[arg(long, default_value_t = 1, conflicts_with = "config")]
        queues: u16,
    },
    /// Remove what `lab up` made for this prefix.
    Down {
        #[arg(long, default_value = "lab")]
        prefix: String,
    },
}

fn main() -> std::process::ExitCode {
    match run(Cli::parse()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.cmd {
        Cmd::Setup => setup::run(),
        Cmd::Build { release } => {
            setup::run()?;
            build(release)
        }
        Cmd::Lab {
            action:
                LabAction::Up {
                    prefix,
                    config,
                    customer,
                    circuit,
                    ..
                },
        } if !config.is_empty() => {
            setup::run()?;
            build(false)?;
            let mut args = vec!["up".to_owned(), "--prefix".into(), prefix];
            for c in config {
                args.extend(["--config".into(), c]);
            }
            for c in customer {
                args.extend(["--customer".into(), c]);
            }
            for c in circuit {
                args.extend(["--circuit".into(), c]);
            }
            run_bin("demo", "msee-lab", &args)
        }
        Cmd::Lab {
            action: LabAction::Up { prefix, queues, .. },
        } => {
            setup::run()?;
            let topo = Lab::up(Topology::new(&prefix)?.with_queues(queues)?)?.keep();
            println!(
                "lab {prefix} is up: namespaces {}",
                topo.namespaces().join(", ")
            );
            println!(
                "  primary {} (customer) <-> {} (msee); secondary {} <-> {}; vnet {}/{} via azure {}",
                topo.primary.customer,
                topo.primary.msee,
                topo.secondary.customer,
                topo.secondary.msee,
                topo.vnet,
                topo.vnet_len,
                topo.azure_link_peer
            );
            if queues > 1 {
                println!("  {queues} queues on every veth");
            }
            println!("  remove it with: cargo xtask lab down --prefix {prefix}");
            Ok(())
        }
        Cmd::Lab {
            action: LabAction::Down { prefix },
        } => {
            // A lab built from a configuration records what it made.
            if let Some(state) = lab::estate::State::load(&prefix)? {
                lab::estate::down(&state)?;
                println!("lab {prefix} removed");
                return Ok(());
            }
            let topo = Topology::new(&prefix)?;
            if !topo
                .namespaces()
                .iter()
                .any(|ns| msee_sys::netns::exists(ns))
            {
                println!("lab {prefix} is not up: nothing to remove");
                return Ok(());
            }
            Lab::adopt(topo).down()?;
            println!("lab {prefix} removed");
            Ok(())
        }
        Cmd::Rehearse { args } => {
            setup::run()?;
            build(false)?;
            let mut all = vec!["rehearse".to_owned()];
            all.extend(args);
            run_bin("demo", "msee-lab", &all)
        }
        Cmd::Test => {
            setup::run()?;
            test()
        }
        Cmd::Lint => {
            setup::run()?;
            lint()
        }
        Cmd::Bench {
            rounds,
            calls,
            lab_rounds,
            failover_rounds,
            scale_circuits,
            fault_secs,
            install_runs,
            install_prefixes,
            only,
        } => {
            setup::run()?;
            bench::run(&bench::Options {
                rounds,
                calls,
                lab_rounds,
                install_runs,
                install_prefixes,
                only_install: only.is_some(),
                failover_rounds,
                scale_circuits,
                fault_secs,
            })
        }
        Cmd::Fuzz { seconds } => {
            setup::run()?;
            fuzz::run(seconds)
        }
        Cmd::Demo { prefix, out } => {
            setup::run()?;
            build(false)?;
            demo::run(&prefix, &out)
        }
    }
}

/// Runs a binary of the workspace's `package` through cargo (built as
/// `build` built the rest).
fn run_bin(package: &str, name: &str, args: &[String]) -> Result<()> {
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["run", "-q", "-p", package, "--bin", name, "--"])
        .args(args)
        .current_dir(workspace_root())
        .status()
        .context("running cargo")?;
    if !status.success() {
        bail!("{name} failed ({status})");
    }
    Ok(())
}

fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_owned()
}

fn cargo(args: &[&str]) -> Result<()> {
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(args)
        .current_dir(workspace_root())
        // Root-only tests fail instead of skipping when run from here.
        .env("MSEE_REQUIRE_ROOT_TESTS", "1")
        .status()
        .context("running cargo")?;
    if !status.success() {
        bail!("`cargo {}` failed ({status})", args.join(" "));
    }
    Ok(())
}

fn build(release: bool) -> Result<()> {
    // The default members: every host crate (the eBPF crate is built for its
    // own target by dataplane's build script).
    let mut args = vec!["build", "--bins"];
    if release {
        args.push("--release");
    }
    cargo(&args)
}

/// Formatting and lints, as CI wants them: any warning fails. The eBPF
/// crates' host-side code (their lib and unit tests) is linted too; their
/// programs build for the BPF target only.
fn lint() -> Result<()> {
    cargo(&["fmt", "--all", "--check"])?;
    cargo(&["clippy", "--all-targets", "--", "-D", "warnings"])?;
    cargo(&[
        "clippy",
        "-p",
        "xdp-ebpf",
        "-p",
        "traffic-ebpf",
        "--lib",
        "--tests",
        "--",
        "-D",
        "warnings",
    ])
}

fn test() -> Result<()> {
    lint()?;
    build(false)?;
    let mut tally = Tally::default();
    let unit: [&[&str]; 2] = [
        // Host-side unit tests of the kernel crate's pure helpers.
        &["test", "-p", "xdp-ebpf", "--lib"],
        &[
            "test",
            "--workspace",
            "--exclude",
            "xdp-ebpf",
            "--exclude",
            "e2e-tests",
        ],
    ];
    // Fixture and lab tests one at a time: lab tests measure traffic and
    // must not disturb each other. Every test binary runs even after a
    // failure, so one run shows every failing test.
    let e2e: &[&str] = &[
        "test",
        "-p",
        "e2e-tests",
        "--no-fail-fast",
        "--",
        "--test-threads=1",
    ];
    let mut result = unit
        .into_iter()
        .try_for_each(|args| cargo_test(args, &mut tally));
    if result.is_ok() {
        // Every fuzz target briefly, after the unit tests: a crash fails
        // the run with the crashing input's path.
        result = fuzz::run(fuzz::TEST_SECONDS);
    }
    if result.is_ok() {
        result = cargo_test(e2e, &mut tally);
    }
    println!(
        "xtask test: {} passed, {} failed",
        tally.passed, tally.failed
    );
    result
}

#[derive(Default)]
struct Tally {
    passed: u64,
    failed: u64,
}

/// `cargo test ...`, echoing its output and adding up its "test result" lines.
fn cargo_test(args: &[&str], tally: &mut Tally) -> Result<()> {
    use std::io::BufRead as _;
    let mut child = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(args)
        .current_dir(workspace_root())
        .env("MSEE_REQUIRE_ROOT_TESTS", "1")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .context("running cargo test")?;
    for line in std::io::BufReader::new(child.stdout.take().unwrap()).lines() {
        let line = line?;
        println!("{line}");
        if let Some(rest) = line.strip_prefix("test result: ") {
            let count = |word: &str| {
                rest.split(';')
                    .find_map(|part| {
                        part.trim()
                            .strip_suffix(word)?
                            .trim()
                            .rsplit(' ')
                            .next()?
                            .parse::<u64>()
                            .ok()
                    })
                    .unwrap_or(0)
            };
            tally.passed += count("passed");
            tally.failed += count("failed");
        }
    }
    let status = child.wait()?;
    if !status.success() {
        bail!("`cargo {}` failed ({status})", args.join(" "));
    }
    Ok(())
}
