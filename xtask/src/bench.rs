//! `cargo xtask bench`: runs the dataplane benchmark (`msee-bench`, in the
//! tests crate: xtask cannot depend on dataplane, which needs the eBPF
//! toolchain that `setup` installs) and writes BENCHMARKS.md from its JSON.
use std::{
    fmt::Write as _,
    process::{Command, Stdio},
};

use anyhow::{Context as _, Result, bail};
use serde_json::Value;

use crate::workspace_root;

/// msee with 10,000 routes and policing keeps this share of the baseline's pps.
const TARGET_VS_BASELINE: f64 = 0.9;
/// msee with 1,000,000 routes keeps this share of its own 1-route pps.
const TARGET_VS_ONE_ROUTE: f64 = 0.8;
/// Generator packets per second on one core, 64-byte frames on a veth pair.
const TARGET_AF_XDP_PPS: f64 = 1.2e6;
const TARGET_LIVE_FRAMES_PPS: f64 = 3.0e6;

/// Route installation from a BGP peer: 10,000 prefixes in under this long.
const TARGET_INSTALL_10K_SECS: f64 = 0.1;
/// ... and 1,000,000 at this rate or better.
const TARGET_INSTALL_1M_RATE: f64 = 500_000.0;

pub struct Options {
    pub rounds: u32,
    pub calls: u32,
    pub lab_rounds: u32,
    pub install_runs: u32,
    pub install_prefixes: String,
    pub only_install: bool,
    /// Rehearsals of each failover scenario per BFD timer set (0: none).
    pub failover_rounds: u32,
}

pub fn run(o: &Options) -> Result<()> {
    if !nix::unistd::geteuid().is_root() {
        bail!("the benchmark loads XDP programs: run it as root (`sudo cargo xtask bench`)");
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let started = std::time::Instant::now();
    // The install from a BGP peer runs msee-daemon, which msee-bench finds
    // next to itself.
    let build = [
        "build",
        "--release",
        "-p",
        "control",
        "--bin",
        "msee-daemon",
    ];
    let status = Command::new(&cargo)
        .args(build)
        .current_dir(workspace_root())
        .status()
        .context("running cargo")?;
    if !status.success() {
        bail!("`cargo {}` failed ({status})", build.join(" "));
    }
    let (rounds, calls, lab_rounds, install_runs) = (
        o.rounds.to_string(),
        o.calls.to_string(),
        o.lab_rounds.to_string(),
        o.install_runs.to_string(),
    );
    // `cargo run` builds only this binary (and what it needs), in release;
    // its stdout is the benchmark's JSON, progress goes to stderr.
    let mut args = vec![
        "run",
        "--release",
        "-p",
        "e2e-tests",
        "--bin",
        "msee-bench",
        "--",
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
    let out = Command::new(&cargo)
        .args(&args)
        .current_dir(workspace_root())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .output()
        .context("running cargo")?;
    if !out.status.success() {
        bail!("`cargo {}` failed ({})", args.join(" "), out.status);
    }
    let report: Value =
        serde_json::from_slice(&out.stdout).context("msee-bench printed no valid JSON")?;
    let machine = Machine::probe()?;
    if o.only_install {
        let text = render_install_only(&report, &machine)?;
        println!("{text}");
        println!("xtask bench: --only install: BENCHMARKS.md left as it is");
        return Ok(());
    }
    // Measured after the dataplane figures, on the same machine.
    let failover = if o.failover_rounds > 0 {
        Some(crate::bench_failover::run(o.failover_rounds)?)
    } else {
        None
    };
    let mut text = render(&report, &machine, started.elapsed().as_secs())?;
    if let Some(section) = failover {
        text += "\n";
        text += &section;
    }
    let path = workspace_root().join("BENCHMARKS.md");
    std::fs::write(&path, &text).with_context(|| format!("writing {}", path.display()))?;
    println!("{text}");
    println!("xtask bench: wrote {}", path.display());
    Ok(())
}

struct Machine {
    kernel: String,
    cpus: String,
    cpu_model: String,
    date: String,
    loadavg: String,
}

impl Machine {
    fn probe() -> Result<Self> {
        let cmd = |prog: &str, args: &[&str]| -> Result<String> {
            let out = Command::new(prog)
                .args(args)
                .output()
                .with_context(|| format!("running {prog}"))?;
            if !out.status.success() {
                bail!("`{prog} {}` failed ({})", args.join(" "), out.status);
            }
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
        };
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").context("reading /proc/cpuinfo")?;
        let cpu_model = cpuinfo
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                (k.trim() == "model name").then(|| v.trim().to_owned())
            })
            .unwrap_or_else(|| "unknown (no `model name` in /proc/cpuinfo)".into());
        Ok(Self {
            kernel: cmd("uname", &["-r"])?,
            cpus: cmd("nproc", &[])?,
            cpu_model,
            date: cmd("date", &["-u", "+%Y-%m-%d %H:%M UTC"])?,
            loadavg: std::fs::read_to_string("/proc/loadavg")
                .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
                .unwrap_or_else(|_| "unknown".into()),
        })
    }
}

fn num(v: &Value, path: &[&str]) -> Result<f64> {
    let mut cur = v;
    for key in path {
        cur = cur
            .get(key)
            .with_context(|| format!("msee-bench JSON lacks {}", path.join(".")))?;
    }
    cur.as_f64()
        .with_context(|| format!("msee-bench JSON: {} is not a number", path.join(".")))
}

fn mpps(ns: f64) -> f64 {
    1000.0 / ns
}

fn verdict(measured: f64, threshold: f64) -> &'static str {
    if measured >= threshold {
        "PASS"
    } else {
        "FAIL"
    }
}

fn render(r: &Value, m: &Machine, took_secs: u64) -> Result<String> {
    let msee = r["msee"]
        .as_array()
        .context("msee-bench JSON lacks the msee array")?;
    let find = |routes: u64, policing: bool| -> Result<&Value> {
        msee.iter()
            .find(|c| c["routes"].as_u64() == Some(routes) && c["policing"] == policing)
            .with_context(|| {
                format!("msee-bench JSON lacks msee, {routes} routes, policing {policing}")
            })
    };
    let base = num(r, &["baseline", "ns_per_packet", "median"])?;
    let mut s = String::new();
    let w = &mut s;
    writeln!(w, "# Benchmarks\n")?;
    writeln!(
        w,
        "Generated by `cargo xtask bench` (as root; building and running the \
         benchmark took {took_secs} s this time), which overwrites this file. Per-packet \
         cost of the `msee` XDP program through `BPF_PROG_TEST_RUN` against a \
         minimal XDP forwarder, route installation rates, forwarded packets \
         per second through the lab against the same forwarder, and the \
         packet engine's generator rates.\n"
    )?;
    render_machine(w, m)?;

    writeln!(w, "## Targets\n")?;
    writeln!(w, "| target | measured | threshold | result |")?;
    writeln!(w, "|---|---|---|---|")?;
    let mut missed = Vec::new();
    let t1 = num(find(10_000, true)?, &["baseline_over_msee", "median"])?;
    let row1 = "msee, 10,000 routes, policing: pps vs baseline pps";
    writeln!(
        w,
        "| {row1} | {t1:.3} | ≥ {TARGET_VS_BASELINE:.2} | {} |",
        verdict(t1, TARGET_VS_BASELINE)
    )?;
    if t1 < TARGET_VS_BASELINE {
        missed.push(format!("{row1}: {t1:.3}, below {TARGET_VS_BASELINE:.2}"));
    }
    for policing in [true, false] {
        let t = num(
            find(1_000_000, policing)?,
            &["one_route_over_this", "median"],
        )?;
        let row = format!(
            "msee, 1,000,000 routes, {}: pps vs its own 1-route pps",
            if policing { "policing" } else { "no policing" }
        );
        writeln!(
            w,
            "| {row} | {t:.3} | ≥ {TARGET_VS_ONE_ROUTE:.2} | {} |",
            verdict(t, TARGET_VS_ONE_ROUTE)
        )?;
        if t < TARGET_VS_ONE_ROUTE {
            missed.push(format!("{row}: {t:.3}, below {TARGET_VS_ONE_ROUTE:.2}"));
        }
    }
    let lab = r.get("lab").filter(|v| !v.is_null());
    if let Some(lab) = lab {
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
        for (row, t, threshold) in rows {
            writeln!(
                w,
                "| {row} | {t:.3} | ≥ {threshold:.2} | {} |",
                verdict(t, threshold)
            )?;
            if t < threshold {
                missed.push(format!("{row}: {t:.3}, below {threshold:.2}"));
            }
        }
    }
    if let Some(gens) = r.get("generators").and_then(Value::as_array) {
        for g in gens {
            let (name, threshold) = match g["mode"].as_str() {
                Some("af_xdp") => ("AF_XDP", TARGET_AF_XDP_PPS),
                Some("live_frames") => ("live frames", TARGET_LIVE_FRAMES_PPS),
                _ => continue,
            };
            let t = num(g, &["tx_pps", "median"])?;
            let row = format!("generator, {name}: pps on one core (64-byte, veth)");
            writeln!(
                w,
                "| {row} | {:.2} M | ≥ {:.1} M | {} |",
                t / 1e6,
                threshold / 1e6,
                verdict(t, threshold)
            )?;
            if t < threshold {
                missed.push(format!(
                    "{row}: {:.2} Mpps, below {:.1} Mpps",
                    t / 1e6,
                    threshold / 1e6
                ));
            }
        }
    }
    install_targets(w, r, &mut missed)?;
    writeln!(w)?;
    if missed.is_empty() {
        writeln!(w, "Every target is met on this run.\n")?;
    } else {
        writeln!(w, "**Missed on this run:**\n")?;
        for m in &missed {
            writeln!(w, "- {m}")?;
        }
        writeln!(w)?;
    }
    writeln!(
        w,
        "Ratios are medians over rounds of per-round ratios (each msee sample \
         against the baseline sample taken just before it, or against the \
         1-route sample of the same round), so drift between rounds cancels.\n"
    )?;

    writeln!(
        w,
        "## Per-packet cost, BPF_PROG_TEST_RUN, {}-byte IPv4/UDP frames\n",
        num(r, &["frame_bytes"])?
    )?;
    writeln!(
        w,
        "| program | IPv4 routes | policing | ns/packet (median) | min–max | fastest call, ns (median) | Mpps equivalent (one core) | pps vs baseline | pps vs 1 route |"
    )?;
    writeln!(w, "|---|---|---|---|---|---|---|---|---|")?;
    writeln!(
        w,
        "| baseline | – | – | {base:.1} | {:.1}–{:.1} | {:.1} | {:.1} | 1 | – |",
        num(r, &["baseline", "ns_per_packet", "min"])?,
        num(r, &["baseline", "ns_per_packet", "max"])?,
        num(r, &["baseline", "fastest_call_ns", "median"])?,
        mpps(base)
    )?;
    for routes in [1u64, 10_000, 1_000_000] {
        for policing in [false, true] {
            let c = find(routes, policing)?;
            let ns = num(c, &["ns_per_packet", "median"])?;
            writeln!(
                w,
                "| msee | {} | {} | {ns:.1} | {:.1}–{:.1} | {:.1} | {:.1} | {:.3} | {} |",
                thousands(routes),
                if policing { "100 Gbit/s" } else { "off" },
                num(c, &["ns_per_packet", "min"])?,
                num(c, &["ns_per_packet", "max"])?,
                num(c, &["fastest_call_ns", "median"])?,
                mpps(ns),
                num(c, &["baseline_over_msee", "median"])?,
                if routes == 1 {
                    "1".to_owned()
                } else {
                    format!("{:.3}", num(c, &["one_route_over_this", "median"])?)
                }
            )?;
        }
    }
    writeln!(w, "\n### Where msee's time goes\n")?;
    writeln!(
        w,
        "Frames that leave msee at successive points of its path (an msee with \
         the probe's route, one route out of reach and one over a link that is \
         down; policing off). The step is the difference from the row above \
         (for TTL 1, which leaves the path after the route lookup, from out of \
         reach), in fastest calls. \
         Where the baseline makes one map lookup (the devmap), a forwarded \
         frame costs msee array lookups (the attachment; the one `CONFIG` \
         element holding links, link state, policers, DSCP policy and route \
         epoch; this CPU's counter rows of the two links), the route lookup \
         and the devmap lookup. The route lookup is answered, in order, by \
         the ingress link's counter row on this CPU, which remembers the \
         destination routed last, by the per-CPU destination cache for a \
         destination seen since the last route or group change (both hold \
         the route with a copy of its next-hop group), else by the LPM trie \
         and the group. Between the 1, 10,000 \
         and 1,000,000-route rows above, only the route lookup differs; \
         between policing off and on, the two token buckets (each frame \
         spends its CPU's share of credit; a CPU whose share runs out reads \
         the clock and takes another chunk from the shared bucket with \
         atomics).\n"
    )?;
    writeln!(
        w,
        "| frame leaves msee at | ns/packet (median) | fastest call, ns (median) | step (fastest calls) |"
    )?;
    writeln!(w, "|---|---|---|---|")?;
    writeln!(
        w,
        "| (baseline, for scale) | {base:.1} | {:.1} | |",
        num(r, &["baseline", "fastest_call_ns", "median"])?
    )?;
    let stages = r["msee_stages"]
        .as_array()
        .context("msee-bench JSON lacks the msee_stages array")?;
    for (i, stage) in stages.iter().enumerate() {
        let ns = num(stage, &["ns_per_packet", "median"])?;
        let fastest = num(stage, &["fastest_call_ns", "median"])?;
        // `step_from`: the row the step counts from (the one above unless
        // the frame branches off the path; none for the first row).
        let step = match stage["step_from"].as_u64().map(|f| f as usize) {
            Some(f) => {
                let before = stages
                    .get(f)
                    .with_context(|| format!("msee_stages[{i}].step_from {f} is out of range"))?;
                format!(
                    "{:+.1}",
                    fastest - num(before, &["fastest_call_ns", "median"])?
                )
            }
            None => String::new(),
        };
        writeln!(
            w,
            "| {} | {ns:.1} | {fastest:.1} | {step} |",
            stage["exit"].as_str().unwrap_or("?"),
        )?;
    }
    writeln!(w)?;
    if let Some(cold) = r.get("cold").filter(|v| !v.is_null()) {
        render_many_destinations(w, cold)?;
    }

    render_install(w, r)?;

    writeln!(w, "## Method\n")?;
    writeln!(
        w,
        "- One process, one run: the `baseline` program and three `msee` instances \
         (1, 10,000 and 1,000,000 IPv4 routes) are loaded side by side. Each of \
         {} rounds (after one unrecorded warm-up round) takes, for each msee \
         configuration, a baseline sample then an msee sample; the table gives \
         medians over rounds.",
        num(r, &["rounds"])?
    )?;
    writeln!(
        w,
        "- A sample is the median of {} `BPF_PROG_TEST_RUN` calls with repeat {}; \
         the kernel times the runs (no syscall cost) and reports each call's mean \
         in whole nanoseconds, truncated: figures read about 0.5 ns low, for both \
         programs alike. The median, not the mean: on a shared machine a call \
         is now and then slowed by other work (a sample's mean can read twice \
         its fastest call), which swung the ratios between configurations from \
         run to run when samples were means. The fastest call of each sample is \
         shown too, the steadiest estimate of the program's own cost; the \
         targets above use the medians. Each call with repeat > 1 cost {:.1} ms of wall time \
         on this run, against microseconds with repeat 1 (for repeat > 1 the \
         kernel swaps the program into the XDP dispatcher and back, presumably \
         waiting for RCU grace periods): that is what bounds the number of calls.",
        num(r, &["calls_per_sample"])?,
        num(r, &["repeat"])?,
        num(r, &["wall_ms_per_call"])?
    )?;
    writeln!(
        w,
        "- `baseline` (`xdp-ebpf/src/bin/baseline.rs`) checks for an Ethernet \
         header, swaps the MACs and redirects through a `DevMapHash` entry \
         keyed by the ingress ifindex: a plain devmap redirect."
    )?;
    writeln!(
        w,
        "- `msee` runs its full path: attachment lookup, local-address check, \
         LPM lookup, next-hop group and link state, policers, TTL and checksum, \
         DSCP, MACs, devmap redirect, counters. The probe is routed over a link \
         whose neighbour MAC is the MSEE's own, untagged, so the rewritten frame \
         is forwarded again on every repeated run (TTL 255, repeat {} keeps \
         every run a forward). After timing, the bench checks the link's \
         counters: every run was forwarded, none dropped.",
        num(r, &["repeat"])?
    )?;
    writeln!(
        w,
        "- Routes: the probe's route ({}) plus random unicast /24../32 prefixes \
         (splitmix64, seed {:#x}) that do not overlap it, all in one routing \
         domain. Policing: {} Gbit/s on both directions of the link, far above \
         what one core can send, so it costs its time but drops nothing.",
        r["probe_route"].as_str().unwrap_or("?"),
        r["route_seed"].as_u64().unwrap_or(0),
        num(r, &["police_bits_per_sec"])? / 1e9
    )?;
    writeln!(
        w,
        "- Limits: one probe destination, so after its first run every lookup \
         is answered by msee's memo of the destination routed last (and the \
         trie path would stay \
         in the CPU's caches anyway); traffic to many destinations over a \
         large table costs more: see \"Many destinations\". \
         `BPF_PROG_TEST_RUN` does not carry out the redirect, so the cost of \
         transmitting is not in these figures (it is the same for both programs). \
         Mpps equivalent = 1000 / ns per packet: the program alone on one core.\n"
    )?;

    writeln!(w, "## Lab throughput\n")?;
    match lab {
        Some(lab) => render_lab(w, lab)?,
        None => writeln!(w, "Not measured on this run (`--lab-rounds 0`).\n")?,
    }
    writeln!(w, "## Generators\n")?;
    match r.get("generators").and_then(Value::as_array) {
        Some(gens) => render_generators(w, gens, lab)?,
        None => writeln!(w, "Not measured on this run (`--lab-rounds 0`).")?,
    }
    Ok(s)
}

/// The many-destinations section: one run per call, the probe vs
/// destinations the cache holds vs destinations spread over the table.
fn render_many_destinations(w: &mut String, cold: &Value) -> Result<()> {
    let samples = cold["samples"]
        .as_array()
        .context("msee-bench JSON lacks cold.samples")?;
    let get = |routes: u64, traffic: &str| -> Result<f64> {
        let s = samples
            .iter()
            .find(|s| {
                s["program"] == "msee"
                    && s["routes"].as_u64() == Some(routes)
                    && s["traffic"] == traffic
            })
            .with_context(|| format!("msee-bench JSON lacks cold {routes} routes, {traffic}"))?;
        num(s, &["ns_per_packet", "median"])
    };
    let calls = num(cold, &["calls_per_sample"])?;
    let cached = num(cold, &["cached_destinations"])?;
    let slots = num(cold, &["cache_slots_v4"])?;
    writeln!(
        w,
        "### Many destinations
"
    )?;
    writeln!(
        w,
        "msee caches route lookups per CPU ({slots:.0} IPv4 slots in two-way sets \
         chosen by a hash of domain and address, and in front of them the \
         destination each ingress link routed last; every route or group write \
         retires them all through an epoch, so forwarding follows each change \
         at once). The figures above send one destination, which the \
         last-destination memo answers. \
         Here each `BPF_PROG_TEST_RUN` call runs once, on another frame: \
         the probe again; round robin over {cached:.0} destinations across the \
         table, all held by the cache (never the one routed last); or each \
         call to another of {calls:.0} \
         destinations across the table, so most lookups miss the cache and \
         walk the trie (on a large table, a path the CPU's caches do not hold \
         either). A call of one run carries a cold start (the syscall just \
         ran), so these compare with each other, not with the figures above. \
         Policing off, medians over {} rounds.\n",
        num(cold, &["rounds"])?
    )?;
    writeln!(
        w,
        "| IPv4 routes | probe, ns/packet | {cached:.0} cached destinations | {calls:.0} destinations (mostly cache misses) | misses vs probe |"
    )?;
    writeln!(w, "|---|---|---|---|---|")?;
    for routes in [1u64, 10_000, 1_000_000] {
        let (probe, hit, spread) = (
            get(routes, "probe")?,
            get(routes, "cached")?,
            get(routes, "spread")?,
        );
        writeln!(
            w,
            "| {} | {probe:.1} | {hit:.1} | {spread:.1} | {:.2}x |",
            thousands(routes),
            spread / probe
        )?;
    }
    writeln!(w)?;
    Ok(())
}

fn render_machine(w: &mut String, m: &Machine) -> Result<()> {
    writeln!(w, "## Machine\n")?;
    writeln!(w, "- Date: {}", m.date)?;
    writeln!(w, "- Kernel (`uname -r`): {}", m.kernel)?;
    writeln!(w, "- CPUs (`nproc`): {}", m.cpus)?;
    writeln!(w, "- CPU model: {}", m.cpu_model)?;
    writeln!(
        w,
        "- Load average (1, 5, 15 min) when the run ended: {}",
        m.loadavg
    )?;
    writeln!(
        w,
        "- Shared machine: other jobs may have been running; \
         interleaving keeps the ratios fair, absolute times drift.\n"
    )?;
    Ok(())
}

/// The install from a BGP peer, size `prefixes`, if measured.
fn bgp_size(r: &Value, prefixes: u64) -> Option<&Value> {
    r["bgp_install"]["sizes"]
        .as_array()?
        .iter()
        .find(|s| s["prefixes"].as_u64() == Some(prefixes))
}

/// Target rows of the install from a BGP peer (issue #4).
fn install_targets(w: &mut String, r: &Value, missed: &mut Vec<String>) -> Result<()> {
    if let Some(s) = bgp_size(r, 10_000) {
        let secs = num(s, &["seconds", "median"])?;
        let row = "install from a BGP peer (BIRD): 10,000 prefixes, first UPDATE to last route in the map";
        let pass = secs < TARGET_INSTALL_10K_SECS;
        writeln!(
            w,
            "| {row} | {:.0} ms | < {:.0} ms | {} |",
            secs * 1e3,
            TARGET_INSTALL_10K_SECS * 1e3,
            if pass { "PASS" } else { "FAIL" }
        )?;
        if !pass {
            missed.push(format!(
                "{row}: {:.0} ms, not under {:.0} ms",
                secs * 1e3,
                TARGET_INSTALL_10K_SECS * 1e3
            ));
        }
    }
    if let Some(s) = bgp_size(r, 1_000_000) {
        let rate = num(s, &["prefixes_per_sec", "median"])?;
        let row = "install from a BGP peer (BIRD): 1,000,000 prefixes, prefixes per second";
        writeln!(
            w,
            "| {row} | {} | ≥ {} | {} |",
            thousands(rate.round() as u64),
            thousands(TARGET_INSTALL_1M_RATE as u64),
            verdict(rate, TARGET_INSTALL_1M_RATE)
        )?;
        if rate < TARGET_INSTALL_1M_RATE {
            missed.push(format!(
                "{row}: {}/s, below {}/s",
                thousands(rate.round() as u64),
                thousands(TARGET_INSTALL_1M_RATE as u64)
            ));
        }
    }
    Ok(())
}

/// The two route-installation sections: from a BGP peer, and through the
/// dataplane API.
fn render_install(w: &mut String, r: &Value) -> Result<()> {
    writeln!(w, "## Route installation from a BGP peer\n")?;
    match r.get("bgp_install").filter(|v| !v.is_null()) {
        Some(b) => {
            render_bgp_install(w, b)?;
            render_install_budget(w, r, b)?;
        }
        None => writeln!(w, "Not measured on this run (`--install-runs 0`).\n")?,
    }
    writeln!(w, "## Route installation through the dataplane API\n")?;
    let Some(installs) = r["install"].as_array() else {
        writeln!(w, "Not measured on this run.\n")?;
        return Ok(());
    };
    writeln!(w, "| IPv4 routes | method | order | seconds | routes/s |")?;
    writeln!(w, "|---|---|---|---|---|")?;
    for i in installs {
        let method = i["method"].as_str().unwrap_or("?");
        writeln!(
            w,
            "| {} | `{method}` | {} | {:.3} | {} |",
            thousands(num(i, &["routes"])? as u64),
            i["order"].as_str().unwrap_or("random"),
            num(i, &["seconds"])?,
            thousands(num(i, &["routes_per_sec"])?.round() as u64)
        )?;
    }
    writeln!(
        w,
        "\nInto an empty table of a fresh msee, timed from the first to the \
         last call: `Msee::upsert_route` one route at a time (one \
         `BPF_MAP_UPDATE_ELEM` each); `Msee::upsert_routes`, the same routes \
         in one call (`BPF_MAP_UPDATE_BATCH`, {} routes per syscall), in the \
         table's random order and sorted by address; then \
         `Msee::remove_routes` (`BPF_MAP_DELETE_BATCH`) removing the whole \
         table. Random /24../32 prefixes (the per-packet table). At a million \
         routes the kernel's LPM trie insert, not the syscall, is the cost: \
         batching saves little in random order, while each insert that \
         follows its neighbour in address order finds its path down the trie \
         in cache.\n",
        r["route_batch"].as_u64().unwrap_or(8192)
    )?;
    Ok(())
}

fn render_bgp_install(w: &mut String, b: &Value) -> Result<()> {
    writeln!(
        w,
        "| IPv4 prefixes | runs | first UPDATE to last write, s (median) | min–max | prefixes/s (median) | last UPDATE received at, s | UPDATEs | daemon CPU, s | BIRD CPU, s |"
    )?;
    writeln!(w, "|---|---|---|---|---|---|---|---|---|")?;
    for s in b["sizes"]
        .as_array()
        .context("msee-bench JSON lacks bgp_install.sizes")?
    {
        writeln!(
            w,
            "| {} | {} | {:.3} | {:.3}–{:.3} | {} | {:.3} | {:.0} | {:.2} | {:.2} |",
            thousands(num(s, &["prefixes"])? as u64),
            s["runs"].as_array().map_or(0, Vec::len),
            num(s, &["seconds", "median"])?,
            num(s, &["seconds", "min"])?,
            num(s, &["seconds", "max"])?,
            thousands(num(s, &["prefixes_per_sec", "median"])?.round() as u64),
            num(s, &["receive_seconds", "median"])?,
            num(s, &["updates", "median"])?,
            num(s, &["daemon_cpu_seconds", "median"])?,
            num(s, &["bird_cpu_seconds", "median"])?,
        )?;
    }
    writeln!(
        w,
        "\nA real peer, {injector}, in the lab's onprem namespace, announces N \
         random IPv4 prefixes (/24 to /32, none covering another) over an \
         MD5-signed session to `msee-daemon`'s primary link (the route limit \
         raised to N with `--max-prefixes`; ExpressRoute's 4,000 stays the \
         default). The daemon records on CLOCK_MONOTONIC when the first \
         UPDATE reached its RIB and when its last FIB write returned (API \
         `fib`); rate = N / (last write - first UPDATE). Each run is a fresh \
         daemon (empty maps) and a fresh BIRD; sizes interleaved, medians \
         over runs. The benchmark waits until the daemon reports N routes \
         installed, then looks up a sample of {sample} prefixes in the BPF map \
         through the daemon's dataplane handle (longest-prefix match, as \
         `msee` does per packet) and checks each is routed, and an address \
         outside the table is not. CPU = user + system time of each process \
         over the run (the daemon's includes decoding, RIB, FIB and the \
         kernel's map inserts; two cores, shared).",
        injector = b["injector"].as_str().unwrap_or("BIRD"),
        sample = b["sample"].as_u64().unwrap_or(1000),
    )?;
    writeln!(
        w,
        "\nWhy BIRD: its static protocol originates a table of any size from a \
         generated configuration, all of it in BIRD's table before the \
         session is enabled (`birdc enable`), and BIRD then sends it about \
         256 prefixes per UPDATE as fast as the session takes them. GoBGP \
         3.10 takes its routes through its gRPC API: `gobgp mrt inject` \
         loaded 100,000 routes from a generated MRT dump into gobgpd in \
         6.2 s on this machine (about 16,000 routes/s, before sending any), \
         so it would set the pace itself. BIRD 2.0.12 leaves the last UPDATE of a feed \
         queued until its main loop wakes up (up to its 3 s poll timeout: \
         a work event schedules the transmit event after the event list has \
         run); the benchmark wakes it every 2 ms with a `show status` on its \
         control socket.\n"
    )?;
    Ok(())
}

/// Where the largest install's time went: CPU of the daemon and of BIRD
/// against wall time, and the kernel's share measured through the API.
fn render_install_budget(w: &mut String, r: &Value, b: &Value) -> Result<()> {
    let Some(s) = b["sizes"]
        .as_array()
        .and_then(|a| a.iter().max_by_key(|s| s["prefixes"].as_u64()))
    else {
        return Ok(());
    };
    let n = num(s, &["prefixes"])? as u64;
    let wall = num(s, &["seconds", "median"])?;
    let daemon = num(s, &["daemon_cpu_seconds", "median"])?;
    let bird = num(s, &["bird_cpu_seconds", "median"])?;
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    write!(
        w,
        "At {} prefixes (medians): the daemon used {daemon:.2} CPU-seconds and \
         BIRD {bird:.2} in {wall:.2} s, {:.0}% of this machine's {cpus} CPUs \
         (the rest went to other jobs, or waited).",
        thousands(n),
        100.0 * (daemon + bird) / (wall * cpus),
    )?;
    let sorted = r["install"].as_array().and_then(|a| {
        a.iter().find(|i| {
            i["routes"].as_u64() == Some(n)
                && i["method"] == "upsert_routes"
                && i["order"] == "by address"
        })
    });
    if let Some(i) = sorted {
        let api = num(i, &["seconds"])?;
        write!(
            w,
            " Writing as many routes into an empty map through the dataplane \
             API alone, the whole table in address order, took {api:.2} s \
             (below): the kernel's LPM trie inserts cost the daemon at least \
             that much CPU (more in its batches of at most 262,144 prefixes), \
             whatever the control plane does.",
        )?;
    }
    writeln!(w, "\n")?;
    Ok(())
}

/// `--only install`: the machine, the install targets and sections.
fn render_install_only(r: &Value, m: &Machine) -> Result<String> {
    let mut s = String::new();
    let w = &mut s;
    writeln!(
        w,
        "# Benchmarks: route installation only (`--only install`)\n"
    )?;
    render_machine(w, m)?;
    writeln!(w, "## Targets\n")?;
    writeln!(w, "| target | measured | threshold | result |")?;
    writeln!(w, "|---|---|---|---|")?;
    let mut missed = Vec::new();
    install_targets(w, r, &mut missed)?;
    writeln!(w)?;
    render_install(w, r)?;
    Ok(s)
}

fn render_lab(w: &mut String, lab: &Value) -> Result<()> {
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

fn render_generators(w: &mut String, gens: &[Value], lab: Option<&Value>) -> Result<()> {
    writeln!(
        w,
        "Packets per second of each generator mode on one core (thread pinned \
         to CPU {}), 64-byte IPv4/UDP frames on a veth pair made for the \
         bench, an XDP drop on the receiving end. Sent = tx packets of the \
         sending interface, received = rx packets of the receiving one, both \
         from `ip -s link` over the same window as the lab figures; per CPU \
         second = tx packets over the whole run divided by the CPU time (user \
         + system) of the generator thread. Modes interleaved, medians over \
         rounds.\n",
        lab.and_then(|l| l["generator_cpu"].as_u64()).unwrap_or(0)
    )?;
    writeln!(
        w,
        "| mode | sent Mpps (median) | min–max | received Mpps | Mpps per CPU second | zero-copy |"
    )?;
    writeln!(w, "|---|---|---|---|---|---|")?;
    for g in gens {
        writeln!(
            w,
            "| {} | {:.3} | {:.3}–{:.3} | {:.3} | {:.3} | {} |",
            g["mode"].as_str().unwrap_or("?"),
            num(g, &["tx_pps", "median"])? / 1e6,
            num(g, &["tx_pps", "min"])? / 1e6,
            num(g, &["tx_pps", "max"])? / 1e6,
            num(g, &["rx_pps", "median"])? / 1e6,
            num(g, &["tx_per_cpu_s", "median"])? / 1e6,
            match (g["mode"].as_str(), g["zero_copy"].as_bool()) {
                (Some("live_frames"), _) => "– (in-kernel)",
                (_, Some(true)) => "yes",
                _ => "no (copy mode)",
            }
        )?;
    }
    Ok(())
}

/// 1000000 -> "1,000,000".
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::thousands;

    #[test]
    fn thousands_groups_digits() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(10_000), "10,000");
        assert_eq!(thousands(1_000_000), "1,000,000");
    }
}
