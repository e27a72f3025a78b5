//! `vlan_pop`: the ingress half of the VLAN shim for a side without `msee`
//! (the lab's customer router, or a user's whose kernel has no 802.1Q either).
//! A frame whose tag stack (one 802.1Q tag, or an outer 0x8100/0x88a8 tag and
//! an inner 802.1Q tag) is accepted on its port in `VLAN_ACCEPT` has its tags
//! popped and goes to the kernel as plain Ethernet; a tagged frame that is not
//! accepted is dropped and counted; untagged frames pass unchanged. With
//! `vlan_push` on the same port's egress, a routing daemon on one untagged
//! interface speaks to several peerings, each on its own VLAN on the wire.
#![no_std]
#![no_main]

use aya_ebpf::{
    bindings::xdp_action,
    helpers::bpf_xdp_adjust_head,
    macros::{map, xdp},
    maps::{HashMap, PerCpuArray},
    programs::XdpContext,
};
use msee_abi::{
    ETH_P_8021AD, ETH_P_8021Q,
    vlan::{COUNTER_ROWS, VlanTags, counter_row},
};
use traffic_abi::vlan_pop::{MAX_ACCEPT, PopCounters, PopKey};
use xdp_ebpf::{
    net::{ETH_HDR_LEN, VLAN_HDR_LEN},
    ptr_at,
};

#[map]
static VLAN_ACCEPT: HashMap<PopKey, VlanTags> = HashMap::with_max_entries(MAX_ACCEPT, 0);
#[map]
static VLAN_POP_STATS: PerCpuArray<PopCounters> = PerCpuArray::with_max_entries(COUNTER_ROWS, 0);

enum Outcome {
    Popped,
    Untagged,
    Unknown,
    Malformed,
}

#[xdp]
fn vlan_pop(ctx: XdpContext) -> u32 {
    let ifindex = ctx.ingress_ifindex() as u32;
    let outcome = process(&ctx, ifindex);
    if let Some(s) = VLAN_POP_STATS.get_ptr_mut(counter_row(ifindex)) {
        let s = unsafe { &mut *s };
        match outcome {
            Outcome::Popped => s.popped += 1,
            Outcome::Untagged => s.untagged += 1,
            Outcome::Unknown => s.unknown += 1,
            Outcome::Malformed => s.malformed += 1,
        }
    }
    match outcome {
        Outcome::Popped | Outcome::Untagged => xdp_action::XDP_PASS,
        Outcome::Unknown | Outcome::Malformed => xdp_action::XDP_DROP,
    }
}

#[inline(always)]
fn be16(b: &[u8], i: usize) -> u16 {
    u16::from_be_bytes([b[i], b[i + 1]])
}

#[inline(always)]
fn process(ctx: &XdpContext, ifindex: u32) -> Outcome {
    let Some(eth) = ptr_at::<[u8; ETH_HDR_LEN]>(ctx, 0) else {
        return Outcome::Malformed;
    };
    let eth = unsafe { &*eth };
    let tpid = be16(eth, 12);
    if tpid != ETH_P_8021Q && tpid != ETH_P_8021AD {
        return Outcome::Untagged;
    }
    let Some(tag) = ptr_at::<[u8; VLAN_HDR_LEN]>(ctx, ETH_HDR_LEN) else {
        return Outcome::Malformed;
    };
    let tag = unsafe { &*tag };
    let outer_vid = be16(tag, 0) & 0x0fff;
    let mut inner_vid = 0;
    if be16(tag, 2) == ETH_P_8021Q {
        let Some(tag) = ptr_at::<[u8; VLAN_HDR_LEN]>(ctx, ETH_HDR_LEN + VLAN_HDR_LEN) else {
            return Outcome::Malformed;
        };
        inner_vid = be16(unsafe { &*tag }, 0) & 0x0fff;
        // An inner priority tag (VLAN 0) is no tag stack any entry names.
        if inner_vid == 0 {
            return Outcome::Unknown;
        }
    }
    let key = PopKey {
        ifindex,
        outer_vid,
        inner_vid,
    };
    match unsafe { VLAN_ACCEPT.get(key) } {
        Some(accepted) if accepted.outer_tpid == tpid && accepted.inner_vid == inner_vid => {}
        _ => return Outcome::Unknown,
    }
    let macs = [
        eth[0], eth[1], eth[2], eth[3], eth[4], eth[5], eth[6], eth[7], eth[8], eth[9], eth[10],
        eth[11],
    ];
    let delta = if inner_vid == 0 {
        VLAN_HDR_LEN as i32
    } else {
        2 * VLAN_HDR_LEN as i32
    };
    if unsafe { bpf_xdp_adjust_head(ctx.ctx, delta) } != 0 {
        return Outcome::Malformed;
    }
    let Some(l2) = ptr_at::<[u8; 12]>(ctx, 0) else {
        return Outcome::Malformed;
    };
    unsafe { *l2 = macs };
    Outcome::Popped
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";
