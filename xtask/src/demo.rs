//! `cargo xtask demo`: the main job, end to end. The story itself is the
//! `msee-demo` binary of the demo crate (it drives the packet engine, FRR
//! and the daemon; xtask cannot depend on the dataplane, whose eBPF build
//! needs what `setup` installs).
use std::process::Command;

use anyhow::{Context as _, Result, bail};

use crate::workspace_root;

pub(crate) fn run(prefix: &str, out: &str) -> Result<()> {
    let args = [
        "run",
        "-q",
        "-p",
        "demo",
        "--bin",
        "msee-demo",
        "--",
        "--prefix",
        prefix,
        "--out",
        out,
    ];
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(args)
        .current_dir(workspace_root())
        .status()
        .context("running cargo")?;
    if !status.success() {
        bail!("the demo failed ({status})");
    }
    Ok(())
}
