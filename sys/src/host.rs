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

/// The resident set size (VmRSS) of process `pid`, bytes.
pub fn rss_bytes(pid: i32) -> std::io::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        .map(|kb| kb * 1024)
        .ok_or_else(|| std::io::Error::other(format!("no VmRSS in /proc/{pid}/status")))
}

#[cfg(test)]
mod rss_tests {
    #[test]
    fn this_process_has_a_resident_set() {
        let rss = super::rss_bytes(std::process::id() as i32).unwrap();
        assert!(rss > 1 << 20, "{rss}");
    }
}
