//! `cargo xtask setup`: install what a fresh machine lacks, idempotently, and
//! say what was done. Fast when everything is present.
use std::process::{Command, Stdio};

use anyhow::{Context as _, Result, bail};
use msee_sys::host::{self, BPFFS};

/// Debian packages: LLVM 22 for bpf-linker (matching the nightly's LLVM),
/// the lab's tools, and the BGP daemons the interop tests peer with.
pub(crate) const APT_PACKAGES: &[&str] = &[
    "llvm-22-dev",
    "libpolly-22-dev",
    "libzstd-dev",
    "iproute2",
    "ethtool",
    "bpftool",
    "tcpdump",
    // ping, for reaching a lab's hosts as the README shows.
    "iputils-ping",
    "frr",
    "bird2",
    "gobgpd",
    // A real Prometheus server scrapes the daemon's metrics in a test
    // (operator_view), and its promtool checks the exposition.
    "prometheus",
];

pub(crate) const NIGHTLY: &str = "nightly";
pub(crate) const LLVM_PREFIX: &str = "/usr/lib/llvm-22";
pub(crate) const BPF_LINKER_VERSION: &str = "0.13.0";

pub(crate) fn run() -> Result<()> {
    if !host::is_root() {
        bail!(
            "cargo xtask needs root (it installs packages, loads XDP programs and makes namespaces): run it with sudo"
        );
    }
    check_kernel()?;
    apt()?;
    nightly()?;
    cargo_fuzz()?;
    lint_components()?;
    bpf_linker()?;
    bpffs()?;
    exabgp()?;
    Ok(())
}

fn say(what: &str) {
    eprintln!("setup: {what}");
}

fn check_kernel() -> Result<()> {
    if !host::btf_present() {
        bail!(
            "this kernel exposes no BTF (/sys/kernel/btf/vmlinux): msee needs a kernel built with CONFIG_DEBUG_INFO_BTF=y"
        );
    }
    Ok(())
}

fn installed(package: &str) -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", package])
        .stderr(Stdio::null())
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).contains("install ok installed"))
        .unwrap_or(false)
}

fn apt() -> Result<()> {
    let missing: Vec<&str> = APT_PACKAGES
        .iter()
        .copied()
        .filter(|p| !installed(p))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    say(&format!(
        "installing Debian packages: {}",
        missing.join(" ")
    ));
    let env = [("DEBIAN_FRONTEND", "noninteractive")];
    run_checked(
        Command::new("apt-get").args(["update", "-qq"]).envs(env),
        "apt-get update",
    )?;
    run_checked(
        Command::new("apt-get")
            .args(["install", "-y", "-qq"])
            .args(&missing)
            .envs(env),
        "apt-get install",
    )
}

fn nightly() -> Result<()> {
    let toolchains = output(
        Command::new("rustup").args(["toolchain", "list"]),
        "rustup toolchain list",
    )?;
    if !toolchains.lines().any(|l| l.starts_with("nightly")) {
        say("installing the nightly Rust toolchain (for the eBPF build)");
        run_checked(
            Command::new("rustup").args([
                "toolchain",
                "install",
                NIGHTLY,
                "--profile",
                "minimal",
                "--component",
                "rust-src",
            ]),
            "rustup toolchain install nightly",
        )?;
    }
    let components = output(
        Command::new("rustup").args(["component", "list", "--installed", "--toolchain", NIGHTLY]),
        "rustup component list",
    )?;
    if !components.lines().any(|l| l.starts_with("rust-src")) {
        say("adding rust-src to the nightly toolchain (for -Z build-std=core)");
        run_checked(
            Command::new("rustup").args(["component", "add", "rust-src", "--toolchain", NIGHTLY]),
            "rustup component add rust-src",
        )?;
    }
    Ok(())
}

/// cargo-fuzz, pinned: `cargo xtask test` runs every fuzz target for a
/// few seconds (with the nightly toolchain installed above).
fn cargo_fuzz() -> Result<()> {
    let version = crate::fuzz::CARGO_FUZZ_VERSION;
    let have = Command::new("cargo")
        .args(["fuzz", "--version"])
        .output()
        .map(|o| o.status.success() && String::from_utf8_lossy(&o.stdout).contains(version))
        .unwrap_or(false);
    if have {
        return Ok(());
    }
    say(&format!(
        "installing cargo-fuzz {version} (about three minutes)"
    ));
    run_checked(
        Command::new("cargo").args(["install", "cargo-fuzz", "--locked", "--version", version]),
        "cargo install cargo-fuzz",
    )
}

/// rustfmt and clippy on the toolchain that builds the host crates: `cargo
/// xtask test` checks formatting and lints before it tests.
fn lint_components() -> Result<()> {
    let components = output(
        Command::new("rustup").args(["component", "list", "--installed"]),
        "rustup component list",
    )?;
    let missing: Vec<&str> = ["rustfmt", "clippy"]
        .into_iter()
        .filter(|c| !components.lines().any(|l| l.starts_with(c)))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    say(&format!(
        "adding {} to the Rust toolchain",
        missing.join(" and ")
    ));
    run_checked(
        Command::new("rustup")
            .args(["component", "add"])
            .args(&missing),
        "rustup component add",
    )
}

fn bpf_linker() -> Result<()> {
    let have = Command::new("bpf-linker")
        .arg("--version")
        .output()
        .map(|o| {
            o.status.success() && String::from_utf8_lossy(&o.stdout).contains(BPF_LINKER_VERSION)
        })
        .unwrap_or(false);
    if have {
        return Ok(());
    }
    say(&format!(
        "building bpf-linker {BPF_LINKER_VERSION} against LLVM 22 (about a minute)"
    ));
    // bpf-linker's build finds libLLVM through LLVM_PREFIX; llvm-sys through
    // LLVM_SYS_221_PREFIX. Its default feature wants LLVM 23, which Debian 12 lacks.
    run_checked(
        Command::new("cargo")
            .args([
                "install",
                "bpf-linker",
                "--locked",
                "--version",
                BPF_LINKER_VERSION,
            ])
            .args(["--no-default-features", "--features", "llvm-22"])
            .env("LLVM_PREFIX", LLVM_PREFIX)
            .env("LLVM_SYS_221_PREFIX", LLVM_PREFIX),
        "cargo install bpf-linker",
    )
}

/// ExaBGP, the fourth customer router of the interop tests, pinned, from PyPI.
pub(crate) const EXABGP_VERSION: &str = "4.2.25";

fn exabgp() -> Result<()> {
    let have = Command::new("exabgp")
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .map(|o| {
            o.status.success()
                || String::from_utf8_lossy(&o.stdout).contains("ExaBGP")
                || String::from_utf8_lossy(&o.stderr).contains("ExaBGP")
        })
        .unwrap_or(false);
    if have {
        return Ok(());
    }
    say(&format!(
        "installing ExaBGP {EXABGP_VERSION} from PyPI (pip)"
    ));
    run_checked(
        Command::new("python3").args([
            "-m",
            "pip",
            "install",
            "--quiet",
            &format!("exabgp=={EXABGP_VERSION}"),
        ]),
        "python3 -m pip install exabgp (needs python3 with pip and PyPI)",
    )?;
    let found = Command::new("exabgp")
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .is_ok();
    if !found {
        bail!("pip installed exabgp but no `exabgp` command is on PATH");
    }
    Ok(())
}

fn bpffs() -> Result<()> {
    if host::bpffs_mounted() {
        return Ok(());
    }
    say(&format!("mounting bpffs at {BPFFS}"));
    run_checked(
        Command::new("mount").args(["-t", "bpf", "bpf", BPFFS]),
        "mount bpffs",
    )
}

fn run_checked(cmd: &mut Command, what: &str) -> Result<()> {
    let status = cmd
        .status()
        .with_context(|| format!("{what}: could not start"))?;
    if !status.success() {
        bail!("{what} failed ({status})");
    }
    Ok(())
}

fn output(cmd: &mut Command, what: &str) -> Result<String> {
    let out = cmd
        .output()
        .with_context(|| format!("{what}: could not start"))?;
    if !out.status.success() {
        bail!(
            "{what} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}
