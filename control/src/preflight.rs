//! Checks a wrong setup up front, so it gets one line that says what to do
//! instead of an obscure failure deep inside a BPF syscall.
use std::path::Path;

use anyhow::{Result, bail};

/// bpffs superblock magic (`BPF_FS_MAGIC` in linux/magic.h).
const BPF_FS_MAGIC: i64 = 0xcafe4a11;
pub const BPFFS: &str = "/sys/fs/bpf";

pub fn check_root() -> Result<()> {
    if !nix::unistd::geteuid().is_root() {
        bail!("msee needs root to load XDP programs: run it with sudo (or as root)");
    }
    Ok(())
}

pub fn check_btf() -> Result<()> {
    if !Path::new("/sys/kernel/btf/vmlinux").exists() {
        bail!(
            "this kernel exposes no BTF (/sys/kernel/btf/vmlinux is missing): use a kernel built with CONFIG_DEBUG_INFO_BTF=y"
        );
    }
    Ok(())
}

pub fn check_bpffs() -> Result<()> {
    match nix::sys::statfs::statfs(BPFFS) {
        Ok(fs) if fs.filesystem_type().0 as i64 == BPF_FS_MAGIC => Ok(()),
        _ => bail!(
            "bpffs is not mounted at {BPFFS}: run `cargo xtask setup` or `mount -t bpf bpf {BPFFS}`"
        ),
    }
}

/// Everything the daemon needs before it touches the kernel.
pub fn check_all() -> Result<()> {
    check_root()?;
    check_btf()?;
    check_bpffs()
}
