//! `blackhole_tc`: the tc half of a silent black hole (tcx ingress or
//! egress). Every frame, of any kind, that passes while the window in
//! `BLACKHOLE_WINDOW` is open is dropped; otherwise the next tcx program
//! (or the stack) gets it. The carrier stays up.
//!
//! On egress it sees what the kernel stack sends (BGP, BFD, ARP, ping);
//! frames an AF_XDP socket in copy mode or an XDP redirect sends out of the
//! interface bypass tc.
#![no_std]
#![no_main]

use aya_ebpf::{
    bindings::{TC_ACT_SHOT, tcx_action_base::TCX_NEXT},
    helpers::bpf_ktime_get_ns,
    macros::{classifier, map},
    maps::{Array, PerCpuArray},
    programs::TcContext,
};
use traffic_abi::{
    BLACKHOLE_STAT_DROPPED, BLACKHOLE_STAT_SEEN, BLACKHOLE_STATS_LEN, BlackholeWindow,
};

#[map]
static BLACKHOLE_WINDOW: Array<BlackholeWindow> = Array::with_max_entries(1, 0);

#[map]
static BLACKHOLE_STATS: PerCpuArray<u64> = PerCpuArray::with_max_entries(BLACKHOLE_STATS_LEN, 0);

#[inline(always)]
fn count(i: u32) {
    if let Some(c) = BLACKHOLE_STATS.get_ptr_mut(i) {
        unsafe { *c += 1 };
    }
}

#[classifier]
fn blackhole_tc(_ctx: TcContext) -> i32 {
    if let Some(w) = BLACKHOLE_WINDOW.get(0)
        && w.until_ns != 0
    {
        count(BLACKHOLE_STAT_SEEN);
        let now = unsafe { bpf_ktime_get_ns() };
        if now >= w.from_ns && now < w.until_ns {
            count(BLACKHOLE_STAT_DROPPED);
            return TC_ACT_SHOT as i32;
        }
    }
    TCX_NEXT
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";
