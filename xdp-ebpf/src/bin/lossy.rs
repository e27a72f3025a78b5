//! `lossy`: fault injection for tests. Drops every k-th frame (k in
//! `LOSSY_EVERY`, 0 = none), counts what it saw and dropped, and tail-calls
//! the program in `LOSSY_NEXT` slot 0 with the rest (XDP_PASS if none), so it
//! can sit in front of `xsk` on a sink's interface.
//!
//! The frame counter is one shared atomic (BPF fetch-add), so "every k-th"
//! is exact whichever CPUs the frames arrive on.
#![no_std]
#![no_main]
#![feature(core_intrinsics)]
#![allow(internal_features)]

use core::intrinsics::{AtomicOrdering, atomic_cxchg};

use aya_ebpf::{
    bindings::xdp_action,
    macros::{map, xdp},
    maps::{Array, PerCpuArray, ProgramArray},
    programs::XdpContext,
};

#[map]
static LOSSY_EVERY: Array<u64> = Array::with_max_entries(1, 0);

#[map]
static LOSSY_STATS: PerCpuArray<u64> = PerCpuArray::with_max_entries(2, 0);

/// [0] = frames seen, shared by all CPUs.
#[map]
static LOSSY_COUNTER: Array<u64> = Array::with_max_entries(1, 0);

#[map]
static LOSSY_NEXT: ProgramArray = ProgramArray::with_max_entries(1, 0);

#[xdp]
pub fn lossy(ctx: XdpContext) -> u32 {
    let every = LOSSY_EVERY.get(0).copied().unwrap_or(0);
    let Some(counter) = LOSSY_COUNTER.get_ptr_mut(0) else {
        return xdp_action::XDP_PASS;
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
    if n == 0 {
        // Lost every race (never seen in practice): let the frame through.
        let _ = unsafe { LOSSY_NEXT.tail_call(&ctx, 0) };
        return xdp_action::XDP_PASS;
    }
    if let Some(seen) = LOSSY_STATS.get_ptr_mut(0) {
        unsafe { *seen += 1 };
    }
    if every != 0 && n % every == 0 {
        if let Some(dropped) = LOSSY_STATS.get_ptr_mut(1) {
            unsafe { *dropped += 1 };
        }
        return xdp_action::XDP_DROP;
    }
    // Returns only if the slot is empty.
    let _ = unsafe { LOSSY_NEXT.tail_call(&ctx, 0) };
    xdp_action::XDP_PASS
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";
