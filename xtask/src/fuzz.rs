//! `cargo xtask fuzz`: coverage-guided fuzzing of the BGP and BFD codecs and
//! session state machines with cargo-fuzz (libFuzzer), each target for a
//! bounded time. Not part of `cargo xtask test` (it needs the sanitizer
//! build and minutes of CPU); installs cargo-fuzz when it is missing.
use std::process::Command;

use anyhow::{Context as _, Result, bail};

use crate::workspace_root;

/// cargo-fuzz, pinned like the other tools `setup` installs.
const CARGO_FUZZ_VERSION: &str = "0.13.2";

/// (fuzz crate directory, target, seed directory if any).
const TARGETS: [(&str, &str, Option<&str>); 4] = [
    ("bgp/fuzz", "decode", Some("seeds")),
    ("bgp/fuzz", "session", None),
    ("bfd/fuzz", "decode", None),
    ("bfd/fuzz", "session", None),
];

pub(crate) fn run(seconds: u32) -> Result<()> {
    if seconds == 0 {
        bail!("--seconds must be at least 1");
    }
    cargo_fuzz()?;
    let root = workspace_root();
    for (dir, target, seeds) in TARGETS {
        let crate_dir = root.join(dir);
        let corpus = crate_dir.join("corpus").join(target);
        std::fs::create_dir_all(&corpus)
            .with_context(|| format!("creating {}", corpus.display()))?;
        if let Some(seeds) = seeds {
            for entry in std::fs::read_dir(crate_dir.join(seeds))? {
                let entry = entry?;
                std::fs::copy(entry.path(), corpus.join(entry.file_name()))?;
            }
        }
        println!("== fuzz {dir} {target} for {seconds} s");
        let status = Command::new("cargo")
            .args(["+nightly", "fuzz", "run", target])
            .arg(&corpus)
            .arg("--")
            .arg(format!("-max_total_time={seconds}"))
            .current_dir(&crate_dir)
            .status()
            .context("running cargo fuzz")?;
        if !status.success() {
            bail!(
                "fuzz target {target} in {dir} failed ({status}): the crashing input is under {dir}/artifacts/{target}/"
            );
        }
    }
    println!(
        "xtask fuzz: {} targets ran {seconds} s each without a crash",
        TARGETS.len()
    );
    Ok(())
}

fn cargo_fuzz() -> Result<()> {
    let have = Command::new("cargo")
        .args(["fuzz", "--version"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if have {
        return Ok(());
    }
    println!("xtask fuzz: installing cargo-fuzz {CARGO_FUZZ_VERSION} (about a minute)");
    let status = Command::new("cargo")
        .args([
            "install",
            "cargo-fuzz",
            "--locked",
            "--version",
            CARGO_FUZZ_VERSION,
        ])
        .status()
        .context("running cargo install cargo-fuzz")?;
    if !status.success() {
        bail!("cargo install cargo-fuzz failed ({status})");
    }
    Ok(())
}
