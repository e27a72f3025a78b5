//! Facts about the host that both `cargo xtask setup` and the daemon's
//! preflight check.
use std::path::Path;

/// Where bpffs is mounted (and pinned maps live).
pub const BPFFS: &str = "/sys/fs/bpf";
/// bpffs superblock magic (`BPF_FS_MAGIC` in linux/magic.h).
const BPF_FS_MAGIC: i64 = 0xcafe4a11;

pub fn bpffs_mounted() -> bool {
    nix::sys::statfs::statfs(BPFFS)
        .map(|fs| fs.filesystem_type().0 == BPF_FS_MAGIC)
        .unwrap_or(false)
}

pub fn btf_present() -> bool {
    Path::new("/sys/kernel/btf/vmlinux").exists()
}

pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}
