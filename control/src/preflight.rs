//! Checks a wrong setup up front, so it gets one line that says what to do
//! instead of an obscure failure deep inside a BPF syscall.
use anyhow::{Result, bail};
use msee_sys::host::{self, BPFFS};

pub fn check_root() -> Result<()> {
    if !host::is_root() {
        bail!("msee needs root to load XDP programs: run it with sudo (or as root)");
    }
    Ok(())
}

pub fn check_btf() -> Result<()> {
    if !host::btf_present() {
        bail!(
            "this kernel exposes no BTF (/sys/kernel/btf/vmlinux is missing): use a kernel built with CONFIG_DEBUG_INFO_BTF=y"
        );
    }
    Ok(())
}

pub fn check_bpffs() -> Result<()> {
    if !host::bpffs_mounted() {
        bail!(
            "bpffs is not mounted at {BPFFS}: run `cargo xtask setup` or `mount -t bpf bpf {BPFFS}`"
        );
    }
    Ok(())
}

/// Everything the daemon needs before it touches the kernel.
pub fn check_all() -> Result<()> {
    check_root()?;
    check_btf()?;
    check_bpffs()
}
