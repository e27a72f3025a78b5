//! Coverage-guided fuzzing with cargo-fuzz (libFuzzer, address sanitizer)
//! of the BGP and BFD codecs and session state machines and of the circuit
//! file parser and az/ARM import. Every target checks invariants, not just
//! the absence of panics (see each `fuzz_targets/*.rs`).
//!
//! `cargo xtask test` runs each target for [`TEST_SECONDS`] after the unit
//! tests; `cargo xtask fuzz --seconds N` is the long run. Both start from
//! the target's seeds (copied into its corpus, which is kept between runs
//! and out of git) and fail on a crash, naming the crashing input.
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, Result, bail};

use crate::workspace_root;

/// cargo-fuzz, pinned like the other tools `setup` installs.
pub(crate) const CARGO_FUZZ_VERSION: &str = "0.13.2";

/// Seconds per target inside `cargo xtask test`.
pub(crate) const TEST_SECONDS: u32 = 10;

struct Target {
    /// The fuzz crate (its own workspace).
    dir: &'static str,
    name: &'static str,
    /// Seed directories, relative to `dir`.
    seeds: &'static [&'static str],
}

const TARGETS: [Target; 6] = [
    Target {
        dir: "bgp/fuzz",
        name: "decode",
        seeds: &["seeds"],
    },
    Target {
        dir: "bgp/fuzz",
        name: "session",
        seeds: &["seeds-session"],
    },
    Target {
        dir: "bfd/fuzz",
        name: "decode",
        seeds: &[],
    },
    Target {
        dir: "bfd/fuzz",
        name: "session",
        seeds: &[],
    },
    Target {
        dir: "circuit/fuzz",
        name: "config",
        seeds: &["seeds/config"],
    },
    Target {
        dir: "circuit/fuzz",
        name: "import",
        seeds: &["seeds/import"],
    },
];

/// Builds every fuzz crate, then runs each target for `seconds`.
pub(crate) fn run(seconds: u32) -> Result<()> {
    if seconds == 0 {
        bail!("--seconds must be at least 1");
    }
    let root = workspace_root();
    let started = std::time::Instant::now();
    let mut built: Vec<&str> = Vec::new();
    for t in &TARGETS {
        if built.contains(&t.dir) {
            continue;
        }
        built.push(t.dir);
        println!("== fuzz: building {} (nightly, address sanitizer)", t.dir);
        let status = Command::new("cargo")
            .args(["+nightly", "fuzz", "build", "--target-dir"])
            .arg(target_dir(&root))
            .current_dir(root.join(t.dir))
            .status()
            .context("running cargo fuzz build")?;
        if !status.success() {
            bail!("cargo fuzz build in {} failed ({status})", t.dir);
        }
    }
    let build_time = started.elapsed();
    for t in &TARGETS {
        run_target(&root, t, seconds)?;
    }
    println!(
        "xtask fuzz: {} targets ran {seconds} s each without a crash ({:.0} s building, {:.0} s in all)",
        TARGETS.len(),
        build_time.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn run_target(root: &Path, t: &Target, seconds: u32) -> Result<()> {
    let crate_dir = root.join(t.dir);
    let corpus = crate_dir.join("corpus").join(t.name);
    let artifacts = crate_dir.join("artifacts").join(t.name);
    for dir in [&corpus, &artifacts] {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    for seeds in t.seeds {
        let seeds = crate_dir.join(seeds);
        for entry in
            std::fs::read_dir(&seeds).with_context(|| format!("reading {}", seeds.display()))?
        {
            let entry = entry?;
            std::fs::copy(entry.path(), corpus.join(entry.file_name()))?;
        }
    }
    let before = files(&artifacts)?;
    println!("== fuzz {} {} for {seconds} s", t.dir, t.name);
    let status = Command::new("cargo")
        .args(["+nightly", "fuzz", "run", "--target-dir"])
        .arg(target_dir(root))
        .arg(t.name)
        .arg(&corpus)
        .arg("--")
        .arg(format!("-max_total_time={seconds}"))
        .arg(format!("-artifact_prefix={}/", artifacts.display()))
        // No line per new input: the summary, and a crash's report, remain.
        .arg("-verbosity=0")
        .arg("-print_final_stats=1")
        .current_dir(&crate_dir)
        .status()
        .context("running cargo fuzz run")?;
    if status.success() {
        return Ok(());
    }
    let new: Vec<PathBuf> = files(&artifacts)?
        .into_iter()
        .filter(|f| !before.contains(f))
        .collect();
    match new.as_slice() {
        [] => bail!(
            "fuzz target {} in {} failed ({status}) without writing an input under {}",
            t.name,
            t.dir,
            artifacts.display()
        ),
        found => {
            let list: Vec<String> = found.iter().map(|f| f.display().to_string()).collect();
            bail!(
                "fuzz target {} in {} failed ({status}): crashing input {}\n  reproduce: cd {} && cargo +nightly fuzz run --target-dir {} {} {}",
                t.name,
                t.dir,
                list.join(", "),
                t.dir,
                target_dir(root).display(),
                t.name,
                list[0]
            )
        }
    }
}

/// One target directory for the three fuzz crates (each its own
/// workspace): libFuzzer and the dependencies they share are built once.
fn target_dir(root: &Path) -> PathBuf {
    root.join("target").join("fuzz")
}

fn files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        out.push(entry?.path());
    }
    Ok(out)
}
