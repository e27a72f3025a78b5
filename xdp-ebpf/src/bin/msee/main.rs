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
//!
//! `process` runs the stages in that order. Each has a module here, with
//! its maps (`maps`) and packet access: `attachment`, `l3` (route lookup
//! and caches), `police`, `rewrite`, `icmp` (time exceeded) and `verdict`
//! (counters, the redirect, what happens to frames not forwarded; with
//! `capture`, the copy of dropped frames when capture is on). What a
//! stage computes without maps or the XDP context lives in the library,
//! `xdp_ebpf::msee`, module by module, where it is tested on the host; the
//! link choice lives there whole.
#![no_std]
#![no_main]
#![feature(core_intrinsics)]
#![allow(internal_features)]

mod attachment;
mod capture;
mod icmp;
mod l3;
mod maps;
mod police;
mod rewrite;
mod verdict;

use aya_ebpf::{bindings::xdp_action, macros::xdp, programs::XdpContext};
use msee_abi::{Direction, DropReason, UNATTRIBUTED_ROW, link_dir_index};
use xdp_ebpf::{
    msee::{
        flow::flow_hash,
        link::{choose_link, link_slot},
        rewrite::dscp_policy,
        route::L3,
    },
    net::{ETH_P_IPV4, ETH_P_IPV6, mac_eq},
};

use crate::{
    attachment::{Arrival, Arrived, arrive},
    icmp::{icmp_allowed, time_exceeded},
    l3::{lookup_v4, lookup_v6},
    maps::{CONFIG, GROUPS},
    police::police,
    rewrite::{rewrite_l2, rewrite_l3},
    verdict::{Verdict, link_row, redirect, settle},
};

#[xdp]
fn msee(ctx: XdpContext) -> u32 {
    let len = (ctx.data_end() - ctx.data()) as u64;
    match process(&ctx, len) {
        Some(Verdict::Redirect { action }) => action,
        None => xdp_action::XDP_PASS,
        Some(verdict) => settle(&ctx, verdict, len),
    }
}

/// One frame through the stages. Returns `None` for frames on no attachment
/// (passed untouched, uncounted), else what to do.
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
    let out = config.links[link_slot(out_link_id)].current();

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

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";
