//! `xsk`: hand every frame to the AF_XDP socket registered for its rx queue;
//! frames on queues without a socket go to the kernel stack.
#![no_std]
#![no_main]

use aya_ebpf::{
    bindings::xdp_action,
    macros::{map, xdp},
    maps::XskMap,
    programs::XdpContext,
};
use msee_abi::engine::MAX_QUEUES;

#[map]
static XSKS: XskMap = XskMap::with_max_entries(MAX_QUEUES, 0);

#[xdp]
pub fn xsk(ctx: XdpContext) -> u32 {
    let queue = ctx.rx_queue_index();
    // The low bits of flags are the action when the slot is empty.
    match XSKS.redirect(queue, xdp_action::XDP_PASS as u64) {
        Ok(action) => action,
        Err(action) => action,
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
