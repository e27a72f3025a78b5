//! `cargo xtask bench`: runs the benchmarks of the `bench` crate (xtask
//! cannot depend on them: they load eBPF objects, which need the toolchain
//! that `setup` installs), saves what each prints under `target/bench/`,
//! and has `msee-bench report` render BENCHMARKS.md from it (again, from
//! the saved JSON, with `cargo run -p bench --bin msee-bench -- report`).
use std::{
    path::Path,
    process::{Command, Stdio},
};

use anyhow::{Context as _, Result, bail};

use crate::workspace_root;

pub(crate) struct Options {
    pub rounds: u32,
    pub calls: u32,
    pub lab_rounds: u32,
    pub install_runs: u32,
    pub install_prefixes: String,
    pub only_install: bool,
    /// Rehearsals of each failover scenario per BFD timer set (0: none).
    pub failover_rounds: u32,
    /// Circuits of the scale benchmark (0: none).
    pub scale_circuits: u32,
    /// Seconds of traffic per restart and fault scenario (0: none).
    pub fault_secs: u32,
}

/// `cargo ARGS`, failing with the command line if it fails.
fn cargo_status(args: &[&str]) -> Result<()> {
    let status = Command::new(cargo())
        .args(args)
        .current_dir(workspace_root())
        .status()
        .context("running cargo")?;
    if !status.success() {
        bail!("`cargo {}` failed ({status})", args.join(" "));
    }
    Ok(())
}

fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())
}

/// `cargo run --release -p bench --bin msee-bench -- ARGS`, its stdout (the
/// JSON or the report); progress goes to stderr.
fn msee_bench(args: &[&str]) -> Result<Vec<u8>> {
    let mut full = vec![
        "run",
        "--release",
        "-p",
        "bench",
        "--bin",
        "msee-bench",
        "--",
    ];
    full.extend_from_slice(args);
    let out = Command::new(cargo())
        .args(&full)
        .current_dir(workspace_root())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .output()
        .context("running cargo")?;
    if !out.status.success() {
        bail!("`cargo {}` failed ({})", full.join(" "), out.status);
    }
    Ok(out.stdout)
}

/// Run a measuring command of `msee-bench` and save its JSON at `path`.
fn measure(args: &[&str], path: &Path) -> Result<()> {
    let json = msee_bench(args)?;
    serde_json::from_slice::<serde_json::Value>(&json)
        .with_context(|| format!("`msee-bench {}` printed no valid JSON", args.join(" ")))?;
    std::fs::write(path, json).with_context(|| format!("writing {}", path.display()))
}

pub(crate) fn run(o: &Options) -> Result<()> {
    if !msee_sys::host::is_root() {
        bail!("the benchmark loads XDP programs: run it as root (`sudo cargo xtask bench`)");
    }
    let started = std::time::Instant::now();
    let dir = workspace_root().join("target").join("bench");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let (dataplane_json, failover_json, scale_json, faults_json) = (
        dir.join("dataplane.json"),
        dir.join("failover.json"),
        dir.join("scale.json"),
        dir.join("faults.json"),
    );
    // The install from a BGP peer runs msee-daemon, which msee-bench finds
    // next to itself.
    cargo_status(&[
        "build",
        "--release",
        "-p",
        "control",
        "--bin",
        "msee-daemon",
    ])?;
    let (rounds, calls, lab_rounds, install_runs) = (
        o.rounds.to_string(),
        o.calls.to_string(),
        o.lab_rounds.to_string(),
        o.install_runs.to_string(),
    );
    let mut args = vec![
        "dataplane",
        "--rounds",
        &rounds,
        "--calls",
        &calls,
        "--lab-rounds",
        &lab_rounds,
        "--install-runs",
        &install_runs,
        "--install-prefixes",
        &o.install_prefixes,
    ];
    if o.only_install {
        args.extend(["--only", "install"]);
    }
    measure(&args, &dataplane_json)?;
    let dataplane = dataplane_json.to_str().context("a UTF-8 target path")?;
    if o.only_install {
        let text = msee_bench(&["report", "--dataplane", dataplane, "--only-install"])?;
        println!("{}", String::from_utf8_lossy(&text));
        println!("xtask bench: --only install: BENCHMARKS.md left as it is");
        return Ok(());
    }
    // Measured after the dataplane figures, on the same machine. The labs
    // start msee-daemon and msee-cli from next to the benchmark.
    if o.scale_circuits > 0 || o.failover_rounds > 0 || o.fault_secs > 0 {
        crate::cargo(&["build", "--release", "--bins"])?;
    }
    let scale_circuits = o.scale_circuits.to_string();
    if o.scale_circuits > 0 {
        measure(&["scale", "--circuits", &scale_circuits], &scale_json)?;
    }
    let fault_secs = o.fault_secs.to_string();
    if o.fault_secs > 0 {
        measure(&["faults", "--secs", &fault_secs], &faults_json)?;
    }
    let failover_rounds = o.failover_rounds.to_string();
    let failover_args = ["failover", "--rounds", &failover_rounds];
    if o.failover_rounds > 0 {
        measure(&failover_args, &failover_json)?;
    }
    let took = started.elapsed().as_secs().to_string();
    let failover_command = format!(
        "run --release -p bench --bin msee-bench -- {}",
        failover_args.join(" ")
    );
    let mut report = vec!["report", "--dataplane", dataplane, "--took-secs", &took];
    let failover = failover_json.to_str().context("a UTF-8 target path")?;
    let scale = scale_json.to_str().context("a UTF-8 target path")?;
    if o.scale_circuits > 0 {
        report.extend(["--scale", scale]);
    }
    let faults = faults_json.to_str().context("a UTF-8 target path")?;
    if o.fault_secs > 0 {
        report.extend(["--faults", faults]);
    }
    if o.failover_rounds > 0 {
        report.extend([
            "--failover",
            failover,
            "--failover-command",
            &failover_command,
        ]);
    }
    let text = msee_bench(&report)?;
    let path = workspace_root().join("BENCHMARKS.md");
    std::fs::write(&path, &text).with_context(|| format!("writing {}", path.display()))?;
    println!("{}", String::from_utf8_lossy(&text));
    println!("xtask bench: wrote {}", path.display());
    Ok(())
}
