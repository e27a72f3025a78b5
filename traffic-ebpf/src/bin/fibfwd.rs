//! `fibfwd`: the forwarder a user would pick instead of `msee`, the way
//! xdp-tools' `xdp-forward` (and the kernel's `xdp_fwd` sample) does it:
//! parse Ethernet and IPv4 or IPv6, ask the kernel's FIB with
//! `bpf_fib_lookup` (route and neighbour in one call), and on success
//! decrement the TTL or hop limit, write the MACs the kernel returned and
//! redirect through a devmap keyed by the egress ifindex. Anything the
//! kernel cannot resolve here (no route, no neighbour, forwarding off,
//! TTL about to expire) goes to the kernel's stack, as in `xdp-forward`.
//! Measured against `msee` in `cargo xtask bench`, never used by the daemon.
#![no_std]
#![no_main]

use aya_ebpf::{
    EbpfContext as _,
    bindings::{
        BPF_FIB_LKUP_RET_SUCCESS, BPF_FIB_LOOKUP_DIRECT, BPF_FIB_LOOKUP_TBID, bpf_fib_lookup,
        xdp_action,
    },
    helpers::generated::bpf_fib_lookup as fib_lookup,
    macros::{map, xdp},
    maps::{Array, DevMapHash},
    programs::XdpContext,
};
use traffic_abi::fibfwd::{FibfwdConfig, MAX_PORTS};
use xdp_ebpf::{
    net::{ETH_HDR_LEN, ETH_P_IPV4, ETH_P_IPV6, IPV4_MIN_HDR_LEN, IPV6_HDR_LEN, csum_replace},
    ptr_at,
};

/// Egress ifindex -> the same interface (filled by userspace, as
/// `xdp-forward` fills its devmap with every interface it forwards between).
#[map]
static FIBFWD_TX: DevMapHash = DevMapHash::with_max_entries(MAX_PORTS, 0);

#[map]
static FIBFWD_CONFIG: Array<FibfwdConfig> = Array::with_max_entries(1, 0);

const AF_INET: u8 = 2;
const AF_INET6: u8 = 10;

#[xdp]
fn fibfwd(ctx: XdpContext) -> u32 {
    forward(&ctx).unwrap_or(xdp_action::XDP_PASS)
}

#[inline(always)]
fn forward(ctx: &XdpContext) -> Option<u32> {
    let eth = ptr_at::<[u8; ETH_HDR_LEN]>(ctx, 0)?;
    let eth = unsafe { &mut *eth };
    let proto = u16::from_be_bytes([eth[12], eth[13]]);
    let mut p: bpf_fib_lookup = unsafe { core::mem::zeroed() };
    p.ifindex = ctx.ingress_ifindex() as u32;
    let mut flags = 0u32;
    if let Some(cfg) = FIBFWD_CONFIG.get(0)
        && cfg.table != 0
    {
        // One routing table, skipping the rules: as `xdp-forward`'s
        // fib-direct mode, pointed at a table of its own.
        flags = BPF_FIB_LOOKUP_DIRECT | BPF_FIB_LOOKUP_TBID;
        p.__bindgen_anon_5.tbid = cfg.table;
    }
    if proto == ETH_P_IPV4 {
        let ip = unsafe { &mut *ptr_at::<[u8; IPV4_MIN_HDR_LEN]>(ctx, ETH_HDR_LEN)? };
        // The kernel would send ICMP time exceeded: its business.
        if ip[8] <= 1 {
            return None;
        }
        p.family = AF_INET;
        p.__bindgen_anon_2.tos = ip[1];
        p.l4_protocol = ip[9];
        p.__bindgen_anon_1.tot_len = u16::from_be_bytes([ip[2], ip[3]]);
        p.__bindgen_anon_3.ipv4_src = u32::from_ne_bytes([ip[12], ip[13], ip[14], ip[15]]);
        p.__bindgen_anon_4.ipv4_dst = u32::from_ne_bytes([ip[16], ip[17], ip[18], ip[19]]);
        if !lookup(ctx, &mut p, flags) {
            return None;
        }
        // TTL is the high byte of the word it shares with the protocol.
        let old = u16::from_be_bytes([ip[8], ip[9]]);
        ip[8] -= 1;
        let new = u16::from_be_bytes([ip[8], ip[9]]);
        let check = csum_replace(u16::from_be_bytes([ip[10], ip[11]]), old, new);
        ip[10..12].copy_from_slice(&check.to_be_bytes());
    } else if proto == ETH_P_IPV6 {
        let ip = unsafe { &mut *ptr_at::<[u8; IPV6_HDR_LEN]>(ctx, ETH_HDR_LEN)? };
        if ip[7] <= 1 {
            return None;
        }
        p.family = AF_INET6;
        p.__bindgen_anon_2.flowinfo = u32::from_ne_bytes([ip[0] & 0x0f, ip[1], ip[2], ip[3]]);
        p.l4_protocol = ip[6];
        p.__bindgen_anon_1.tot_len = u16::from_be_bytes([ip[4], ip[5]]);
        let (mut src, mut dst) = ([0u32; 4], [0u32; 4]);
        for i in 0..4 {
            src[i] =
                u32::from_ne_bytes([ip[8 + 4 * i], ip[9 + 4 * i], ip[10 + 4 * i], ip[11 + 4 * i]]);
            dst[i] = u32::from_ne_bytes([
                ip[24 + 4 * i],
                ip[25 + 4 * i],
                ip[26 + 4 * i],
                ip[27 + 4 * i],
            ]);
        }
        p.__bindgen_anon_3.ipv6_src = src;
        p.__bindgen_anon_4.ipv6_dst = dst;
        if !lookup(ctx, &mut p, flags) {
            return None;
        }
        ip[7] -= 1;
    } else {
        return None;
    }
    eth[0..6].copy_from_slice(&p.dmac);
    eth[6..12].copy_from_slice(&p.smac);
    // `ifindex` now names the egress interface.
    Some(
        FIBFWD_TX
            .redirect(p.ifindex, 0)
            .unwrap_or(xdp_action::XDP_PASS),
    )
}

/// Route and neighbour from the kernel; true when both were found and the
/// frame may be forwarded from here.
#[inline(always)]
fn lookup(ctx: &XdpContext, p: &mut bpf_fib_lookup, flags: u32) -> bool {
    let rc = unsafe {
        fib_lookup(
            ctx.as_ptr(),
            p as *mut bpf_fib_lookup,
            core::mem::size_of::<bpf_fib_lookup>() as i32,
            flags,
        )
    };
    rc == i64::from(BPF_FIB_LKUP_RET_SUCCESS)
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";
