//! `msee`: the XDP program on the emulated MSEE's ports.
//!
//! One pass per frame:
//!   attachment (ifindex, S-tag, C-tag) -> circuit, peering, routing domain, link
//!   -> frames for the MSEE itself go to the kernel, without their VLAN tags
//!   -> LPM lookup (domain, destination) -> next-hop group
//!   -> link choice: up, best preference, flow hash
//!   -> policers (ingress link rx, egress link tx)
//!   -> rewrite: TTL/hop limit, DSCP, VLAN tags, MACs -> redirect via devmap
//! and everything that is not forwarded is counted per (link, direction) by reason.
#![no_std]
#![no_main]
#![feature(core_intrinsics)]
#![allow(internal_features)]

mod attachment;
mod l3;
mod maps;
mod police;
mod rewrite;
mod verdict;

use aya_ebpf::{
    bindings::xdp_action,
    helpers::{bpf_ktime_get_ns, bpf_xdp_adjust_head, bpf_xdp_adjust_tail},
    macros::xdp,
    programs::XdpContext,
};
use msee_abi::{
    Attachment, Direction, DropReason, ICMP_ERRORS_PER_SEC_PER_CPU, UNATTRIBUTED_ROW,
    link_dir_index,
};
use xdp_ebpf::{
    msee::{
        flow::flow_hash,
        link::{choose_link, link_slot},
        rewrite::dscp_policy,
        route::L3,
    },
    net::{
        ETH_HDR_LEN, ETH_P_IPV4, ETH_P_IPV6, ICMP4_QUOTE, ICMP4_TE_LEN, ICMP6_QUOTE, ICMP6_TE_LEN,
        VLAN_HDR_LEN, icmp4_time_exceeded, icmp6_time_exceeded, mac_eq,
    },
    ptr_at,
};

use crate::{
    attachment::{Arrival, Arrived, arrive},
    l3::{lookup_v4, lookup_v6},
    maps::{CONFIG, GROUPS, ICMP_LIMIT},
    police::police,
    rewrite::{rewrite_l2, rewrite_l3},
    verdict::{Verdict, link_row, redirect, settle},
};

#[xdp]
pub fn msee(ctx: XdpContext) -> u32 {
    let len = (ctx.data_end() - ctx.data()) as u64;
    match process(&ctx, len) {
        Some(Verdict::Redirect { action }) => action,
        None => xdp_action::XDP_PASS,
        Some(verdict) => settle(&ctx, verdict, len),
    }
}

/// Returns `None` for frames on no attachment (passed untouched, uncounted),
/// else the attachment and what to do.
#[inline(always)]
fn process(ctx: &XdpContext, len: u64) -> Option<Verdict> {
    // --- L2: Ethernet, VLAN tags, attachment.
    let Arrival {
        eth,
        att,
        ethertype,
        l3_off,
        tags_in,
    } = match arrive(ctx) {
        Arrived::On(arrival) => arrival,
        Arrived::Unattached => return None,
        Arrived::Malformed => {
            return Some(Verdict::Drop {
                reason: DropReason::Malformed,
                row: UNATTRIBUTED_ROW,
            });
        }
    };
    let rx_row = link_dir_index(att.link, Direction::Rx);
    // Always there: userspace keeps every link id below `MAX_LINKS` (were it
    // not, the frame would go to the kernel untouched, like one on no
    // attachment).
    let rx = link_row(rx_row)?;
    rx.counters.packets += 1;
    rx.counters.bytes += len;
    let drop = |reason| {
        Some(Verdict::Drop {
            reason,
            row: rx_row,
        })
    };
    let pass = Some(Verdict::Pass { row: rx_row });

    // Broadcast, multicast, another host's unicast, ARP, or not IP: the kernel's.
    if eth[0] & 1 != 0 || !mac_eq(eth.as_ptr(), att.mac.as_ptr()) {
        return pass;
    }
    // Links, their state, policers, DSCP policy, route epoch: one lookup.
    let config = CONFIG.get(0)?;

    // --- L3: check the header and find the route. The flow is hashed later,
    // only if the link choice needs it.
    let epoch = config.route_epoch;
    let v6 = match ethertype {
        ETH_P_IPV4 => false,
        ETH_P_IPV6 => true,
        // ARP and anything else that is not IP.
        _ => return pass,
    };
    let l3 = if v6 {
        lookup_v6(ctx, l3_off, att.domain, epoch, &mut rx.last_v6)
    } else {
        lookup_v4(ctx, l3_off, att.domain, epoch, &mut rx.last_v4)
    };
    let resolved = match l3 {
        L3::Forward(resolved) => resolved,
        L3::Pass => return pass,
        L3::Drop(DropReason::TtlExpired) => {
            // Answer so traceroute shows the MSEE hop (rate-limited).
            if icmp_allowed() && time_exceeded(ctx, l3_off, v6, att) {
                return Some(Verdict::TimeExceeded { row: rx_row });
            }
            return drop(DropReason::TtlExpired);
        }
        L3::Drop(reason) => return drop(reason),
    };
    let out_link_id = match choose_link(
        config,
        resolved,
        |group| GROUPS.get(group),
        || flow_hash(ctx, l3_off, v6),
    ) {
        Ok(link) => link,
        Err(reason) => return drop(reason),
    };
    let out = &config.links[link_slot(out_link_id)];

    // --- Policing: the ingress link's rx bucket, then the egress link's tx bucket.
    // The clock is read once, and only if a policer on the path needs it.
    let mut now = 0u64;
    if !police(config, rx_row, &mut rx.policer_credit_nb, len, &mut now) {
        return drop(DropReason::Policer);
    }
    let tx_row = link_dir_index(out_link_id, Direction::Tx);
    let mut tx = link_row(tx_row);
    if let Some(t) = tx.as_mut()
        && !police(config, tx_row, &mut t.policer_credit_nb, len, &mut now)
    {
        return Some(Verdict::Drop {
            reason: DropReason::Policer,
            row: tx_row,
        });
    }

    // --- Rewrite L3 in place: TTL / hop limit, DSCP per the peering's policy.
    if !rewrite_l3(ctx, l3_off, v6, dscp_policy(config, att.peering)) {
        return drop(DropReason::Malformed);
    }
    // --- Rewrite L2: as many tags as the egress link needs, then MACs.
    if !rewrite_l2(ctx, out, tags_in, ethertype) {
        return drop(DropReason::Malformed);
    }
    redirect(ctx, out, tx_row, tx)
}

/// Per-CPU ICMP error budget: `ICMP_ERRORS_PER_SEC_PER_CPU` per second.
#[inline(always)]
fn icmp_allowed() -> bool {
    let Some(slot) = ICMP_LIMIT.get_ptr_mut(0) else {
        return false;
    };
    let slot = unsafe { &mut *slot };
    let now = unsafe { bpf_ktime_get_ns() };
    if now.wrapping_sub(slot[0]) >= 1_000_000_000 {
        slot[0] = now;
        slot[1] = 0;
    }
    if slot[1] >= ICMP_ERRORS_PER_SEC_PER_CPU {
        return false;
    }
    slot[1] += 1;
    true
}

/// Rewrite the expired packet in place into an ICMP (or ICMPv6) time
/// exceeded from the MSEE's address on this attachment, back to its sender
/// on the same VLANs: cut it to its header and first 8 bytes, grow room for
/// the new headers in front, move the L2 header there, and fill in.
/// Returns false (the caller just drops) when the attachment has no address,
/// the packet is too short to quote, or IPv4 carries options.
#[inline(never)]
fn time_exceeded(ctx: &XdpContext, l3_off: usize, v6: bool, att: &Attachment) -> bool {
    let (quote, total) = if v6 {
        (ICMP6_QUOTE, ICMP6_TE_LEN)
    } else {
        (ICMP4_QUOTE, ICMP4_TE_LEN)
    };
    let no_source = if v6 {
        att.local_v6 == [0; 16]
    } else {
        att.local_v4 == [0; 4]
    };
    if no_source || l3_off > ETH_HDR_LEN + 2 * VLAN_HDR_LEN {
        return false;
    }
    let Some(eth) = ptr_at::<[u8; ETH_HDR_LEN]>(ctx, 0) else {
        return false;
    };
    let eth = unsafe { &*eth };
    let sender_mac = [eth[6], eth[7], eth[8], eth[9], eth[10], eth[11]];
    if !v6 {
        // IPv4 options would not fit the fixed quote.
        match ptr_at::<[u8; 1]>(ctx, l3_off) {
            Some(b) if unsafe { (*b)[0] } == 0x45 => {}
            _ => return false,
        }
    }
    let frame_len = ctx.data_end() - ctx.data();
    if frame_len < l3_off + quote {
        return false;
    }
    let cut = (l3_off + quote) as i32 - frame_len as i32;
    let grow = (total - quote) as i32;
    unsafe {
        if cut != 0 && bpf_xdp_adjust_tail(ctx.ctx, cut) != 0 {
            return false;
        }
        if bpf_xdp_adjust_head(ctx.ctx, -grow) != 0 {
            return false;
        }
    }
    // [new room][L2 header][quote] -> [L2 header][new headers][quote]
    let Some(front) = ptr_at::<[u8; 48 + ETH_HDR_LEN + 2 * VLAN_HDR_LEN]>(ctx, 0) else {
        return false;
    };
    let front = unsafe { &mut *front };
    let g = grow as usize;
    for i in 0..ETH_HDR_LEN + 2 * VLAN_HDR_LEN {
        front[i] = front[g + i];
    }
    front[0..6].copy_from_slice(&sender_mac);
    front[6..12].copy_from_slice(&att.mac);
    if v6 {
        let Some(pkt) = ptr_at::<[u8; ICMP6_TE_LEN]>(ctx, l3_off) else {
            return false;
        };
        icmp6_time_exceeded(unsafe { &mut *pkt }, &att.local_v6);
    } else {
        let Some(pkt) = ptr_at::<[u8; ICMP4_TE_LEN]>(ctx, l3_off) else {
            return false;
        };
        icmp4_time_exceeded(unsafe { &mut *pkt }, att.local_v4);
    }
    true
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";
