//! `msee`: the XDP program on the emulated MSEE's ports.
//!
//! One pass per frame: find the ingress port, parse Ethernet + IPv4, hand
//! frames addressed to the MSEE itself to the kernel, look the destination up
//! in the route table, rewrite MACs and TTL, and redirect through the devmap.
//! Everything else is counted per port, by reason.
#![no_std]
#![no_main]

use aya_ebpf::{
    bindings::xdp_action,
    macros::{map, xdp},
    maps::{DevMapHash, HashMap, LpmTrie, PerCpuArray, lpm_trie::Key},
    programs::XdpContext,
};
use aya_log_ebpf::debug;
use msee_abi::{
    DropReason, MAX_LOCAL_V4, MAX_NEXTHOPS, MAX_PORTS, MAX_ROUTES_V4, NEXTHOP_VALID, NextHop,
    PortConfig, PortStats, RouteV4,
};
use xdp_ebpf::{
    net::{ETH_HDR_LEN, ETH_P_ARP, ETH_P_IPV4, IPV4_MIN_HDR_LEN, ipv4_decrement_ttl},
    ptr_at,
};

#[map]
static PORTS: HashMap<u32, PortConfig> = HashMap::with_max_entries(MAX_PORTS, 0);

#[map]
static TX_PORTS: DevMapHash = DevMapHash::with_max_entries(MAX_PORTS, 0);

#[map]
static ROUTES_V4: LpmTrie<[u8; 4], RouteV4> = LpmTrie::with_max_entries(MAX_ROUTES_V4, 0);

#[map]
static NEXTHOPS: HashMap<u32, NextHop> = HashMap::with_max_entries(MAX_NEXTHOPS, 0);

#[map]
static LOCAL_V4: HashMap<[u8; 4], u8> = HashMap::with_max_entries(MAX_LOCAL_V4, 0);

#[map]
static PORT_STATS: PerCpuArray<PortStats> = PerCpuArray::with_max_entries(MAX_PORTS, 0);

#[xdp]
pub fn msee(ctx: XdpContext) -> u32 {
    let ifindex = ctx.ingress_ifindex() as u32;
    // Frames on ports we do not own are none of our business.
    let Some(port) = (unsafe { PORTS.get(&ifindex) }) else {
        return xdp_action::XDP_PASS;
    };
    let slot = port.slot;
    let len = (ctx.data_end() - ctx.data()) as u64;
    if let Some(stats) = stats(slot) {
        stats.rx_packets += 1;
        stats.rx_bytes += len;
    }
    match forward(&ctx, port) {
        Verdict::Pass => {
            if let Some(stats) = stats(slot) {
                stats.pass_packets += 1;
            }
            xdp_action::XDP_PASS
        }
        Verdict::Redirect {
            action,
            egress_slot,
        } => {
            if let Some(stats) = stats(egress_slot) {
                stats.tx_packets += 1;
                stats.tx_bytes += len;
            }
            action
        }
        Verdict::Drop(reason) => {
            if let Some(stats) = stats(slot) {
                stats.drops[reason as usize] += 1;
            }
            if matches!(reason, DropReason::Malformed) {
                debug!(
                    &ctx,
                    "malformed frame of {} bytes on ifindex {}", len, ifindex
                );
            }
            xdp_action::XDP_DROP
        }
    }
}

enum Verdict {
    Pass,
    Redirect { action: u32, egress_slot: u32 },
    Drop(DropReason),
}

#[inline(always)]
fn stats(slot: u32) -> Option<&'static mut PortStats> {
    // Per-CPU row: no other CPU writes it, so plain increments are exact.
    PORT_STATS.get_ptr_mut(slot).map(|p| unsafe { &mut *p })
}

#[inline(always)]
fn forward(ctx: &XdpContext, port: &PortConfig) -> Verdict {
    let Some(eth) = ptr_at::<[u8; ETH_HDR_LEN]>(ctx, 0) else {
        return Verdict::Drop(DropReason::Malformed);
    };
    let eth = unsafe { &mut *eth };
    // Broadcast, multicast or another host's unicast: the kernel decides.
    if eth[0] & 1 != 0 || eth[0..6] != port.mac {
        return Verdict::Pass;
    }
    let ethertype = u16::from_be_bytes([eth[12], eth[13]]);
    if ethertype == ETH_P_ARP || ethertype != ETH_P_IPV4 {
        return Verdict::Pass;
    }

    let Some(ip) = ptr_at::<[u8; IPV4_MIN_HDR_LEN]>(ctx, ETH_HDR_LEN) else {
        return Verdict::Drop(DropReason::Malformed);
    };
    let ip = unsafe { &mut *ip };
    let ihl = ((ip[0] & 0x0f) as usize) * 4;
    let total_len = u16::from_be_bytes([ip[2], ip[3]]) as usize;
    let l3_len = ctx.data_end() - ctx.data() - ETH_HDR_LEN;
    if ip[0] >> 4 != 4 || ihl < IPV4_MIN_HDR_LEN || total_len < ihl || total_len > l3_len {
        return Verdict::Drop(DropReason::Malformed);
    }
    let dst = [ip[16], ip[17], ip[18], ip[19]];
    if LOCAL_V4.get_ptr(dst).is_some() || dst[0] >= 224 {
        return Verdict::Pass;
    }
    if ip[8] <= 1 {
        return Verdict::Drop(DropReason::TtlExpired);
    }
    let Some(route) = ROUTES_V4.get(Key::new(32, dst)) else {
        return Verdict::Drop(DropReason::NoRoute);
    };
    let Some(nh) = (unsafe { NEXTHOPS.get(&route.nexthop) }) else {
        return Verdict::Drop(DropReason::NoRoute);
    };
    if nh.flags & NEXTHOP_VALID == 0 {
        return Verdict::Drop(DropReason::NoNeighbour);
    }

    ipv4_decrement_ttl(ip);
    eth[0..6].copy_from_slice(&nh.dst_mac);
    eth[6..12].copy_from_slice(&nh.src_mac);
    match TX_PORTS.redirect(nh.ifindex, 0) {
        Ok(action) => Verdict::Redirect {
            action,
            egress_slot: nh.slot,
        },
        Err(_) => Verdict::Drop(DropReason::NoRoute),
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
