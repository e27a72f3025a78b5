//! Helpers shared by the end-to-end and packet fixture tests: frame builders,
//! checksum verifiers, and a guard that skips root-only tests with a reason.
pub mod bfd_lab;
pub mod bgp_lab;
pub mod engine_topo;
pub mod estate;
pub mod failover_lab;
pub mod frr;
pub mod lab_dataplane;
pub mod packet;
pub mod policer;
pub mod prometheus;
pub mod rehearse;
pub mod restart;
pub mod vlan_frames;
pub mod vlan_lab;

/// Root (or CAP_BPF + CAP_NET_ADMIN) is needed to load programs and make
/// namespaces. `cargo xtask test` runs as root; a plain `cargo test` as a
/// user skips these tests loudly instead of failing on a permission error.
pub fn require_root(test: &str) -> bool {
    if nix::unistd::geteuid().is_root() {
        return true;
    }
    if std::env::var_os("MSEE_REQUIRE_ROOT_TESTS").is_some() {
        panic!("{test} needs root and MSEE_REQUIRE_ROOT_TESTS is set");
    }
    eprintln!("SKIPPED {test}: needs root (run `sudo cargo xtask test`)");
    false
}

/// A lab prefix unique to this process and `tag`, so tests can run in parallel.
pub fn unique_prefix(tag: &str) -> String {
    format!("t{}{}", std::process::id() % 100_000, tag)
}
