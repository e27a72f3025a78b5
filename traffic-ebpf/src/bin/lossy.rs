//! `lossy`: fault injection for tests, in front of `xsk` on a sink's
//! interface (tail call to `LOSSY_NEXT` slot 0, XDP_PASS if empty) or alone.
//!
//! - Every k-th test frame dropped (k in `LOSSY_EVERY`, 0 = none). Test
//!   frames are UDP over IPv4/IPv6 behind up to two VLAN tags, narrowed to a
//!   destination port range by `LOSSY_FILTER`: ARP, ND, BGP and BFD pass, so
//!   neighbour resolution and a routing daemon never suffer from injected
//!   loss. The frame counter is one shared atomic, so "every k-th" is exact
//!   whichever CPUs the frames arrive on.
//! - A black hole (`LOSSY_BLACKHOLE`): every frame, of any kind, processed
//!   inside the window is dropped, while the carrier stays up. Userspace
//!   schedules the window, so the switch happens at one known instant.
#![no_std]
#![no_main]
#![feature(core_intrinsics)]
#![allow(internal_features)]

use core::intrinsics::{AtomicOrdering, atomic_cxchg};

use aya_ebpf::{
    bindings::xdp_action,
    helpers::bpf_ktime_get_ns,
    macros::{map, xdp},
    maps::{Array, PerCpuArray, ProgramArray},
    programs::XdpContext,
};
use traffic_abi::{
    BlackholeWindow, LOSSY_STAT_BLACKHOLE, LOSSY_STAT_BLACKHOLE_TEST, LOSSY_STAT_DROPPED,
    LOSSY_STAT_SEEN, LOSSY_STATS_LEN, TestFrameFilter,
};

use traffic_ebpf::testframe;

#[map]
static LOSSY_EVERY: Array<u64> = Array::with_max_entries(1, 0);

#[map]
static LOSSY_STATS: PerCpuArray<u64> = PerCpuArray::with_max_entries(LOSSY_STATS_LEN, 0);

/// [0] = frames seen, shared by all CPUs.
#[map]
static LOSSY_COUNTER: Array<u64> = Array::with_max_entries(1, 0);

#[map]
static LOSSY_NEXT: ProgramArray = ProgramArray::with_max_entries(1, 0);

#[map]
static LOSSY_FILTER: Array<TestFrameFilter> = Array::with_max_entries(1, 0);

#[map]
static LOSSY_BLACKHOLE: Array<BlackholeWindow> = Array::with_max_entries(1, 0);

#[inline(always)]
fn count(i: u32) {
    if let Some(c) = LOSSY_STATS.get_ptr_mut(i) {
        unsafe { *c += 1 };
    }
}

#[inline(always)]
fn next(ctx: &XdpContext) -> u32 {
    // Returns only if the slot is empty.
    let _ = unsafe { LOSSY_NEXT.tail_call(ctx, 0) };
    xdp_action::XDP_PASS
}

#[xdp]
fn lossy(ctx: XdpContext) -> u32 {
    let filter = LOSSY_FILTER.get(0).copied().unwrap_or_default();
    if let Some(w) = LOSSY_BLACKHOLE.get(0)
        && w.until_ns != 0
    {
        let now = unsafe { bpf_ktime_get_ns() };
        if now >= w.from_ns && now < w.until_ns {
            count(LOSSY_STAT_BLACKHOLE);
            if testframe::is_test_frame(&ctx, &filter) {
                count(LOSSY_STAT_BLACKHOLE_TEST);
            }
            return xdp_action::XDP_DROP;
        }
    }
    if !testframe::is_test_frame(&ctx, &filter) {
        return next(&ctx);
    }
    count(LOSSY_STAT_SEEN);
    let every = LOSSY_EVERY.get(0).copied().unwrap_or(0);
    if every == 0 {
        return next(&ctx);
    }
    let Some(counter) = LOSSY_COUNTER.get_ptr_mut(0) else {
        return next(&ctx);
    };
    // This frame's number (1-based) across all CPUs: a bounded CAS loop,
    // since fetch-add with a used result needs a newer BPF CPU than the
    // linker's default.
    let mut n = 0;
    let mut i = 0;
    while i < 16 {
        let old = unsafe { core::ptr::read_volatile(counter) };
        let (_, ok) = unsafe {
            atomic_cxchg::<u64, { AtomicOrdering::Relaxed }, { AtomicOrdering::Relaxed }>(
                counter,
                old,
                old + 1,
            )
        };
        if ok {
            n = old + 1;
            break;
        }
        i += 1;
    }
    // n == 0: lost every race (never seen in practice): let the frame through.
    if n != 0 && n % every == 0 {
        count(LOSSY_STAT_DROPPED);
        return xdp_action::XDP_DROP;
    }
    next(&ctx)
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";
