//! The few operating-system facts that the product (`msee-daemon`, the
//! dataplane) and its tools (the packet engine, the lab, the benchmarks)
//! share, written once: entering a network namespace, the clocks, bpffs
//! mounts and the host checks the daemon and `cargo xtask setup` make.
#![forbid(unsafe_code)]
pub mod bpffs;
pub mod clock;
pub mod host;
pub mod netns;

pub use clock::monotonic_ns;
