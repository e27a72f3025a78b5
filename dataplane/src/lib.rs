//! Userspace owner of the kernel side: loads the embedded `msee` object,
//! attaches it to ports, and exposes typed map handles and counters.
mod bpf_sys;
mod config_map;
mod fib;
pub mod msee;
pub mod vlan;

pub use fib::FibStats;
pub use msee::capture::CaptureRing;
pub use msee::{
    AttachMode, FibSizes, LinkSwitch, LoadOptions, Msee, MseeError, ROUTE_BATCH, RouteBatchError,
    default_burst_bytes, xdp_md,
};
pub use vlan::{EgressTag, VlanError, VlanShim};

/// The `msee` eBPF object, built from `xdp-ebpf` by this crate's build.rs.
pub static MSEE_OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/msee"));

/// The `vlan_push` eBPF object: the VLAN shim's TC egress program.
pub static VLAN_PUSH_OBJECT: &[u8] =
    aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/vlan_push"));
