//! Which frames are the engine's test frames, shared by the engine's XDP
//! programs (`xsk`, `lossy`, `testfwd`).
use aya_ebpf::programs::XdpContext;
use traffic_abi::{FILTER_UDP_PORTS, TestFrameFilter};
use xdp_ebpf::ptr_at;

#[inline(always)]
fn u8_at(ctx: &XdpContext, off: usize) -> Option<u8> {
    ptr_at::<u8>(ctx, off).map(|p| unsafe { *p })
}

#[inline(always)]
fn u16_at(ctx: &XdpContext, off: usize) -> Option<u16> {
    ptr_at::<[u8; 2]>(ctx, off).map(|p| u16::from_be_bytes(unsafe { *p }))
}

/// The destination port of a UDP frame: IPv4 without options or fragments,
/// or IPv6 without extension headers, behind at most two VLAN tags. `None`
/// for anything else (ARP, ND, TCP, ...).
#[inline(always)]
pub fn udp_dport(ctx: &XdpContext) -> Option<u16> {
    let mut l3 = 14;
    let mut ethertype = u16_at(ctx, 12)?;
    if ethertype == 0x8100 || ethertype == 0x88a8 {
        ethertype = u16_at(ctx, 16)?;
        l3 = 18;
        if ethertype == 0x8100 {
            ethertype = u16_at(ctx, 20)?;
            l3 = 22;
        }
    }
    match ethertype {
        0x0800 => {
            // Version 4, 20-byte header, UDP, not a fragment.
            if u8_at(ctx, l3)? != 0x45 || u8_at(ctx, l3 + 9)? != 17 {
                return None;
            }
            if u16_at(ctx, l3 + 6)? & 0x3fff != 0 {
                return None;
            }
            u16_at(ctx, l3 + 20 + 2)
        }
        0x86dd => {
            if u8_at(ctx, l3 + 6)? != 17 {
                return None;
            }
            u16_at(ctx, l3 + 40 + 2)
        }
        _ => None,
    }
}

/// A test frame: UDP, and with `FILTER_UDP_PORTS` to a port in the range.
#[inline(always)]
pub fn is_test_frame(ctx: &XdpContext, f: &TestFrameFilter) -> bool {
    match udp_dport(ctx) {
        None => false,
        Some(port) => f.flags & FILTER_UDP_PORTS == 0 || (port >= f.port_lo && port <= f.port_hi),
    }
}
