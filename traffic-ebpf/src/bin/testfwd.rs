//! `testfwd`: a tiny forwarder for the engine's tests. UDP frames (to the
//! ports in `TESTFWD_FILTER`, any if unset) leave by the egress slot that
//! `TESTFWD_FLOW[dst port % TESTFWD_FLOWS]` names, with the MACs of that
//! slot (`TESTFWD_MACS`), through the devmap `TESTFWD_OUT`; the value
//! `TESTFWD_DROP` drops them. Everything else goes to the kernel. Flipping
//! one `TESTFWD_FLOW` entry moves a flow from one link to another.
#![no_std]
#![no_main]

use aya_ebpf::{
    bindings::xdp_action,
    macros::{map, xdp},
    maps::{Array, DevMap, PerCpuArray},
    programs::XdpContext,
};
use traffic_abi::{
    FILTER_UDP_PORTS, TESTFWD_DROP, TESTFWD_FLOWS, TESTFWD_LINKS, TestFrameFilter, TestfwdLink,
};
use xdp_ebpf::ptr_at;

use traffic_ebpf::testframe;

#[map]
static TESTFWD_OUT: DevMap = DevMap::with_max_entries(TESTFWD_LINKS, 0);

#[map]
static TESTFWD_MACS: Array<TestfwdLink> = Array::with_max_entries(TESTFWD_LINKS, 0);

#[map]
static TESTFWD_FLOW: Array<u32> = Array::with_max_entries(TESTFWD_FLOWS, 0);

#[map]
static TESTFWD_FILTER: Array<TestFrameFilter> = Array::with_max_entries(1, 0);

#[map]
static TESTFWD_STATS: PerCpuArray<u64> = PerCpuArray::with_max_entries(TESTFWD_LINKS + 1, 0);

#[inline(always)]
fn count(i: u32) {
    if let Some(c) = TESTFWD_STATS.get_ptr_mut(i) {
        unsafe { *c += 1 };
    }
}

#[xdp]
fn testfwd(ctx: XdpContext) -> u32 {
    let Some(port) = testframe::udp_dport(&ctx) else {
        return xdp_action::XDP_PASS;
    };
    let f = TESTFWD_FILTER.get(0).copied().unwrap_or_default();
    if f.flags & FILTER_UDP_PORTS != 0 && (port < f.port_lo || port > f.port_hi) {
        return xdp_action::XDP_PASS;
    }
    let slot = TESTFWD_FLOW
        .get(u32::from(port) % TESTFWD_FLOWS)
        .copied()
        .unwrap_or(0);
    if slot == TESTFWD_DROP {
        count(TESTFWD_LINKS);
        return xdp_action::XDP_DROP;
    }
    if slot >= TESTFWD_LINKS {
        return xdp_action::XDP_PASS;
    }
    let Some(link) = TESTFWD_MACS.get(slot) else {
        return xdp_action::XDP_ABORTED;
    };
    let Some(eth) = ptr_at::<[u8; 12]>(&ctx, 0) else {
        return xdp_action::XDP_ABORTED;
    };
    let eth = unsafe { &mut *eth };
    eth[..6].copy_from_slice(&link.dst_mac);
    eth[6..].copy_from_slice(&link.src_mac);
    count(slot);
    TESTFWD_OUT
        .redirect(slot, 0)
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
