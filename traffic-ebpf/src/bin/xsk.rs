//! `xsk`: hand frames to the AF_XDP socket registered for their rx queue;
//! frames on queues without a socket go to the kernel stack.
//!
//! `XSK_CONFIG` chooses which frames are the sink's. All zero (as loaded):
//! every frame, untouched. With `FILTER_UDP_PORTS`: only UDP to the run's
//! destination ports; the rest (ARP, ND, BGP, BFD, ping, ...) passes to the
//! kernel, so a routing daemon on the same interface keeps working. With
//! `FILTER_RX_TIMESTAMP`: each frame for a socket carries its receive time
//! (`bpf_ktime_get_ns`, CLOCK_MONOTONIC) in 8 bytes of XDP metadata, which
//! AF_XDP copies in front of the frame.
#![no_std]
#![no_main]

use aya_ebpf::{
    bindings::xdp_action,
    helpers::{bpf_ktime_get_ns, bpf_xdp_adjust_meta},
    macros::{map, xdp},
    maps::{Array, PerCpuArray, XskMap},
    programs::XdpContext,
};
use traffic_abi::{
    FILTER_RX_TIMESTAMP, FILTER_UDP_PORTS, MAX_QUEUES, RX_META_LEN, TestFrameFilter,
    XSK_STAT_NO_SOCKET, XSK_STAT_PASSED, XSK_STAT_TO_SOCKET, XSK_STATS_LEN,
};

use traffic_ebpf::testframe;

#[map]
static XSKS: XskMap = XskMap::with_max_entries(MAX_QUEUES, 0);

#[map]
static XSK_CONFIG: Array<TestFrameFilter> = Array::with_max_entries(1, 0);

#[map]
static XSK_STATS: PerCpuArray<u64> = PerCpuArray::with_max_entries(XSK_STATS_LEN, 0);

#[inline(always)]
fn count(i: u32) {
    if let Some(c) = XSK_STATS.get_ptr_mut(i) {
        unsafe { *c += 1 };
    }
}

/// Prepend the receive time as XDP metadata (best effort: a driver without
/// metadata support leaves the frame as it was, and userspace then stamps
/// the batch itself).
#[inline(always)]
fn stamp(ctx: &XdpContext) {
    if unsafe { bpf_xdp_adjust_meta(ctx.ctx, -(RX_META_LEN as i32)) } != 0 {
        return;
    }
    let meta = ctx.metadata();
    if meta + RX_META_LEN > ctx.data() {
        return;
    }
    unsafe { *(meta as *mut u64) = bpf_ktime_get_ns() };
}

#[xdp]
fn xsk(ctx: XdpContext) -> u32 {
    let cfg = XSK_CONFIG.get(0).copied().unwrap_or_default();
    if cfg.flags & FILTER_UDP_PORTS != 0 && !testframe::is_test_frame(&ctx, &cfg) {
        count(XSK_STAT_PASSED);
        return xdp_action::XDP_PASS;
    }
    if cfg.flags & FILTER_RX_TIMESTAMP != 0 {
        stamp(&ctx);
    }
    let queue = ctx.rx_queue_index();
    // The low bits of flags are the action when the slot is empty.
    match XSKS.redirect(queue, xdp_action::XDP_PASS as u64) {
        Ok(action) => {
            count(XSK_STAT_TO_SOCKET);
            action
        }
        Err(action) => {
            count(XSK_STAT_NO_SOCKET);
            action
        }
    }
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";
