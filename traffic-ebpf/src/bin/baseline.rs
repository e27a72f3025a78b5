//! `baseline`: the least an XDP forwarder can do, as the yardstick for `msee`
//! in `cargo xtask bench`. Like the kernel's `xdp_redirect_map` sample: check
//! that an Ethernet header is there, swap the MACs (the neighbour's MAC
//! becomes the destination) and redirect through a devmap entry keyed by the
//! ingress ifindex. No VLANs, no IP, no counters.
#![no_std]
#![no_main]

use aya_ebpf::{
    bindings::xdp_action,
    macros::{map, xdp},
    maps::DevMapHash,
    programs::XdpContext,
};
use traffic_abi::baseline::MAX_PORTS;
use xdp_ebpf::{net::ETH_HDR_LEN, ptr_at};

/// ifindex -> egress port, as `msee`'s `TX_PORTS`.
#[map]
static TX: DevMapHash = DevMapHash::with_max_entries(MAX_PORTS, 0);

#[xdp]
fn baseline(ctx: XdpContext) -> u32 {
    let Some(eth) = ptr_at::<[u8; ETH_HDR_LEN]>(&ctx, 0) else {
        return xdp_action::XDP_DROP;
    };
    let eth = unsafe { &mut *eth };
    // Byte by byte: fixed indices unroll into plain loads and stores (no
    // memmove call, which BPF has not got).
    for i in 0..6 {
        eth.swap(i, 6 + i);
    }
    TX.redirect(ctx.ingress_ifindex() as u32, 0)
        .unwrap_or(xdp_action::XDP_ABORTED)
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";
