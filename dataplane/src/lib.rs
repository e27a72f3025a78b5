//! Userspace owner of the kernel side: loads the embedded `msee` object,
//! attaches it to ports, and exposes typed map handles and counters.
mod config_map;
pub mod msee;
pub mod vlan;

pub use msee::{
    AttachMode, LinkSwitch, LoadOptions, Msee, MseeError, ROUTE_BATCH, RouteBatchError,
    default_burst_bytes, xdp_md,
};
pub use vlan::{EgressTag, VlanError, VlanPop, VlanShim};

/// The `msee` eBPF object, built from `xdp-ebpf` by this crate's build.rs.
pub static MSEE_OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/msee"));

/// The `baseline` eBPF object (a plain devmap redirect), the yardstick of
/// `cargo xtask bench`.
pub static BASELINE_OBJECT: &[u8] =
    aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/baseline"));
/// The `xsk` eBPF object: feeds the XSKMAP of the AF_XDP sockets.
pub static XSK_OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/xsk"));
/// The `lossy` eBPF object: drops every k-th frame, or everything inside a
/// black-hole window (fault injection).
pub static LOSSY_OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/lossy"));
/// The `txgen` eBPF object: the live-frames in-kernel generator.
pub static TXGEN_OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/txgen"));
/// The `blackhole_tc` eBPF object: the tcx half of a silent black hole.
pub static BLACKHOLE_TC_OBJECT: &[u8] =
    aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/blackhole_tc"));
/// The `testfwd` eBPF object: a tiny per-flow forwarder for engine tests.
pub static TESTFWD_OBJECT: &[u8] =
    aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/testfwd"));
/// The `vlan_push` eBPF object: the VLAN shim's TC egress program.
pub static VLAN_PUSH_OBJECT: &[u8] =
    aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/vlan_push"));
/// The `vlan_pop` eBPF object: the VLAN shim's XDP tag popper.
pub static VLAN_POP_OBJECT: &[u8] =
    aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/vlan_pop"));
