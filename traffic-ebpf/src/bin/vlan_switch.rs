//! `vlan_switch`: the lab's provider network, a VLAN cross-connect between
//! each customer link (an access port, untagged) and the MSEE's port (a
//! trunk). A frame from an access port gets that port's tag stack (one
//! 802.1Q tag, or an outer and an inner tag) and goes to its trunk; a frame
//! from a trunk whose tag stack names an access port loses its tags and
//! goes there; anything else is dropped and counted. No MAC learning and
//! no flooding: each tag stack is one customer link, as a provider's
//! Ethernet virtual circuit is.
#![no_std]
#![no_main]

use aya_ebpf::{
    bindings::xdp_action,
    helpers::bpf_xdp_adjust_head,
    macros::{map, xdp},
    maps::{DevMapHash, HashMap, PerCpuArray},
    programs::XdpContext,
};
use msee_abi::{ETH_P_8021AD, ETH_P_8021Q};
use traffic_abi::{
    vlan_pop::PopKey,
    vlan_switch::{MAX_PORTS as MAX_SWITCH_PORTS, SwitchAccess, SwitchCounters},
};
use xdp_ebpf::{
    net::{ETH_HDR_LEN, VLAN_HDR_LEN},
    ptr_at,
};

#[map]
static SWITCH_ACCESS: HashMap<u32, SwitchAccess> = HashMap::with_max_entries(MAX_SWITCH_PORTS, 0);
#[map]
static SWITCH_TRUNK: HashMap<PopKey, u32> = HashMap::with_max_entries(MAX_SWITCH_PORTS, 0);
#[map]
static SWITCH_PORTS: DevMapHash = DevMapHash::with_max_entries(MAX_SWITCH_PORTS, 0);
#[map]
static SWITCH_STATS: PerCpuArray<SwitchCounters> = PerCpuArray::with_max_entries(1, 0);

enum Outcome {
    ToTrunk(u32),
    ToAccess(u32),
    Unknown,
    Malformed,
}

#[xdp]
fn vlan_switch(ctx: XdpContext) -> u32 {
    let ifindex = ctx.ingress_ifindex() as u32;
    let outcome = match unsafe { SWITCH_ACCESS.get(ifindex) } {
        Some(a) => push(&ctx, a),
        None => pop(&ctx, ifindex),
    };
    let stats = SWITCH_STATS.get_ptr_mut(0).map(|s| unsafe { &mut *s });
    match outcome {
        Outcome::ToTrunk(port) | Outcome::ToAccess(port) => {
            if let Some(s) = stats {
                if matches!(outcome, Outcome::ToTrunk(_)) {
                    s.to_trunk += 1;
                } else {
                    s.to_access += 1;
                }
            }
            SWITCH_PORTS
                .redirect(port, 0)
                .unwrap_or(xdp_action::XDP_DROP)
        }
        Outcome::Unknown => {
            if let Some(s) = stats {
                s.unknown += 1;
            }
            xdp_action::XDP_DROP
        }
        Outcome::Malformed => {
            if let Some(s) = stats {
                s.malformed += 1;
            }
            xdp_action::XDP_DROP
        }
    }
}

#[inline(always)]
fn be16(b: &[u8], i: usize) -> u16 {
    u16::from_be_bytes([b[i], b[i + 1]])
}

/// Access port -> trunk: the port's tags after the MACs.
#[inline(always)]
fn push(ctx: &XdpContext, a: &SwitchAccess) -> Outcome {
    let Some(eth) = ptr_at::<[u8; 12]>(ctx, 0) else {
        return Outcome::Malformed;
    };
    let macs = unsafe { *eth };
    let (tags, trunk) = (a.tags, a.trunk);
    if tags.inner_vid == 0 {
        if unsafe { bpf_xdp_adjust_head(ctx.ctx, -(VLAN_HDR_LEN as i32)) } != 0 {
            return Outcome::Malformed;
        }
        let Some(h) = ptr_at::<[u8; 16]>(ctx, 0) else {
            return Outcome::Malformed;
        };
        let h = unsafe { &mut *h };
        h[..12].copy_from_slice(&macs);
        h[12..14].copy_from_slice(&tags.outer_tpid.to_be_bytes());
        h[14..16].copy_from_slice(&tags.outer_vid.to_be_bytes());
    } else {
        if unsafe { bpf_xdp_adjust_head(ctx.ctx, -2 * VLAN_HDR_LEN as i32) } != 0 {
            return Outcome::Malformed;
        }
        let Some(h) = ptr_at::<[u8; 20]>(ctx, 0) else {
            return Outcome::Malformed;
        };
        let h = unsafe { &mut *h };
        h[..12].copy_from_slice(&macs);
        h[12..14].copy_from_slice(&tags.outer_tpid.to_be_bytes());
        h[14..16].copy_from_slice(&tags.outer_vid.to_be_bytes());
        h[16..18].copy_from_slice(&ETH_P_8021Q.to_be_bytes());
        h[18..20].copy_from_slice(&tags.inner_vid.to_be_bytes());
    }
    Outcome::ToTrunk(trunk)
}

/// Trunk -> access port: the tags that name it come off.
#[inline(always)]
fn pop(ctx: &XdpContext, ifindex: u32) -> Outcome {
    let Some(eth) = ptr_at::<[u8; ETH_HDR_LEN]>(ctx, 0) else {
        return Outcome::Malformed;
    };
    let eth = unsafe { &*eth };
    let tpid = be16(eth, 12);
    if tpid != ETH_P_8021Q && tpid != ETH_P_8021AD {
        return Outcome::Unknown;
    }
    let Some(tag) = ptr_at::<[u8; VLAN_HDR_LEN]>(ctx, ETH_HDR_LEN) else {
        return Outcome::Malformed;
    };
    let tag = unsafe { &*tag };
    let outer_vid = be16(tag, 0) & 0x0fff;
    let mut inner_vid = 0;
    if be16(tag, 2) == ETH_P_8021Q {
        let Some(inner) = ptr_at::<[u8; VLAN_HDR_LEN]>(ctx, ETH_HDR_LEN + VLAN_HDR_LEN) else {
            return Outcome::Malformed;
        };
        inner_vid = be16(unsafe { &*inner }, 0) & 0x0fff;
    }
    let key = PopKey {
        ifindex,
        outer_vid,
        inner_vid,
    };
    let Some(&access) = (unsafe { SWITCH_TRUNK.get(key) }) else {
        return Outcome::Unknown;
    };
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
    Outcome::ToAccess(access)
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";
