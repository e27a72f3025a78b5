//! `lossy`: fault injection for tests. Drops every k-th UDP frame (k in
//! `LOSSY_EVERY`, 0 = none), counts what it saw and dropped, and tail-calls
//! the program in `LOSSY_NEXT` slot 0 with the rest (XDP_PASS if none), so it
//! can sit in front of `xsk` on a sink's interface. Only UDP over IPv4/IPv6
//! (behind up to two VLAN tags) is counted and dropped: ARP, ND and the
//! rest pass, so neighbour resolution never suffers from injected loss.
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
use xdp_ebpf::ptr_at;

#[map]
static LOSSY_EVERY: Array<u64> = Array::with_max_entries(1, 0);

#[map]
static LOSSY_STATS: PerCpuArray<u64> = PerCpuArray::with_max_entries(2, 0);

/// [0] = frames seen, shared by all CPUs.
#[map]
static LOSSY_COUNTER: Array<u64> = Array::with_max_entries(1, 0);

#[map]
static LOSSY_NEXT: ProgramArray = ProgramArray::with_max_entries(1, 0);

#[inline(always)]
fn u8_at(ctx: &XdpContext, off: usize) -> Option<u8> {
    ptr_at::<u8>(ctx, off).map(|p| unsafe { *p })
}

#[inline(always)]
fn u16_at(ctx: &XdpContext, off: usize) -> Option<u16> {
    ptr_at::<[u8; 2]>(ctx, off).map(|p| u16::from_be_bytes(unsafe { *p }))
}

/// UDP over IPv4 or IPv6, behind at most two VLAN tags.
#[inline(always)]
fn is_udp(ctx: &XdpContext) -> bool {
    let mut l3 = 14;
    let Some(mut ethertype) = u16_at(ctx, 12) else {
        return false;
    };
    if ethertype == 0x8100 || ethertype == 0x88a8 {
        let Some(t) = u16_at(ctx, 16) else {
            return false;
        };
        ethertype = t;
        l3 = 18;
        if ethertype == 0x8100 {
            let Some(t) = u16_at(ctx, 20) else {
                return false;
            };
            ethertype = t;
            l3 = 22;
        }
    }
    match ethertype {
        0x0800 => u8_at(ctx, l3 + 9) == Some(17),
        0x86dd => u8_at(ctx, l3 + 6) == Some(17),
        _ => false,
    }
}

#[xdp]
pub fn lossy(ctx: XdpContext) -> u32 {
    if !is_udp(&ctx) {
        let _ = unsafe { LOSSY_NEXT.tail_call(&ctx, 0) };
        return xdp_action::XDP_PASS;
    }
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
