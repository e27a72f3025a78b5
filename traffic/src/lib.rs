//! Test tooling, apart from the product: the AF_XDP packet engine (a
//! traffic generator and a sink that measure throughput, loss, reordering,
//! one-way latency and outage time, with fault injection), the
//! `msee-traffic` command, and [`Baseline`], the plain forwarder the
//! benchmarks measure `msee` against.
//!
//! - [`frame`]: test frames (Ethernet, 802.1Q/QinQ, IPv4/IPv6, UDP, payload
//!   with stream id, sequence and transmit time) and their parser.
//! - [`xsk`]: UMEM and AF_XDP sockets (xdpilone rings) and the `xsk` program.
//! - [`pacing`]: deadline-based, batch-aware rate control.
//! - [`generator`], [`sink`]: the per-queue threads; the sink merges
//!   several interfaces into one analysis.
//! - [`run`]: a generator and a sink started together, acted on while
//!   traffic flows, and their one report.
//! - [`fault`]: a silent black hole switched at run time.
//! - [`stats`]: per-stream sequence tracking, HDR latency, rate bins.
//! - [`live_frames`]: the in-kernel generator (BPF_PROG_TEST_RUN live frames).
//! - [`iface`]: interface facts (ifindex, MAC, speed, neighbours) per netns.
//! - [`plot`]: an SVG of received rate over time.
//! - [`baseline`]: the `baseline` XDP program's loader.
//! - [`vlan_pop`]: the customer side's half of the VLAN shim (the lab's
//!   customer router has no 802.1Q either).
//! - [`vlan_switch`]: the lab's provider network, a VLAN cross-connect.
pub mod baseline;
pub mod fault;
pub mod fibfwd;
pub mod frame;
pub mod generator;
pub mod iface;
pub mod live_frames;
pub mod pacing;
pub mod plot;
pub mod run;
pub mod sink;
pub mod stats;
pub mod vlan_pop;
pub mod vlan_switch;
pub mod xsk;
pub mod yardstick;

pub use baseline::Baseline;
pub use fibfwd::FibFwd;
pub use vlan_pop::VlanPop;
pub use vlan_switch::VlanSwitch;
pub use yardstick::YardstickError;

// The kernel programs, built from `traffic-ebpf` by this crate's build.rs.

/// The `baseline` eBPF object (a plain devmap redirect), the yardstick of
/// `cargo xtask bench`.
pub static BASELINE_OBJECT: &[u8] =
    aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/baseline"));
/// The `fibfwd` eBPF object (forwarding by the kernel's FIB, as
/// `xdp-forward`), the second yardstick of `cargo xtask bench`.
pub static FIBFWD_OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/fibfwd"));
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
/// The `vlan_pop` eBPF object: the customer side's VLAN tag popper.
pub static VLAN_POP_OBJECT: &[u8] =
    aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/vlan_pop"));
/// The `vlan_switch` eBPF object: the lab's provider network.
pub static VLAN_SWITCH_OBJECT: &[u8] =
    aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/vlan_switch"));

/// Move the calling thread into network namespace `ns`, if one is given
/// (an endpoint without one stays in the caller's namespace).
pub(crate) fn enter_netns(ns: Option<&str>) -> anyhow::Result<()> {
    if let Some(ns) = ns {
        msee_sys::netns::enter(ns)?;
    }
    Ok(())
}

/// The ifindex of `ifname` in the calling thread's namespace.
pub(crate) fn ifindex_here(ifname: &str) -> anyhow::Result<u32> {
    let c = std::ffi::CString::new(ifname)?;
    // SAFETY: a valid NUL-terminated name.
    match unsafe { libc::if_nametoindex(c.as_ptr()) } {
        0 => anyhow::bail!("interface {ifname} not found"),
        i => Ok(i),
    }
}

/// Pin the calling thread to `cpu` (best effort: a failure only costs speed).
pub fn pin_to_cpu(cpu: usize) {
    // SAFETY: a zeroed cpu_set_t is valid; CPU_SET bounds-checks.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &set);
    }
}

pub fn online_cpus() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZero::get)
}

/// Wait until each of `threads` per-queue threads has reported its setup,
/// and keep the first failure (a thread that died counts as one).
pub(crate) fn first_setup_error(
    ready: &std::sync::mpsc::Receiver<anyhow::Result<()>>,
    threads: usize,
    role: &str,
) -> Option<anyhow::Error> {
    let mut first_err = None;
    for _ in 0..threads {
        match ready.recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                first_err.get_or_insert(e);
            }
            Err(_) => {
                first_err.get_or_insert(anyhow::anyhow!("a {role} thread died during setup"));
            }
        }
    }
    first_err
}
