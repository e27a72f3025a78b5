//! `txgen`: the in-kernel traffic generator, run by BPF_PROG_TEST_RUN with
//! live frames. Stamps the test payload (stream = base + CPU, per-CPU
//! sequence, bpf_ktime_get_ns = CLOCK_MONOTONIC), patches the UDP checksum
//! incrementally, and redirects the frame out of devmap slot 0.
//!
//! With `TxgenConfig::destinations` > 1 it also spreads the frames over
//! the addresses of `TXGEN_DESTINATIONS` (IPv4 or IPv6, any prefixes),
//! frame number `sequence` to entry `sequence % destinations`, so that a
//! forwarder downstream sees traffic to many hosts across its table.
//!
//! Live frames come back to the generator's page pool without being reset,
//! possibly rewritten by whatever forwarded them (MACs, TTL, DSCP): every run
//! first restores the headers from `TXGEN_PRISTINE`, and computes the new UDP
//! checksum from the pristine payload, so each frame leaves as generated.
#![no_std]
#![no_main]

use aya_ebpf::{
    bindings::xdp_action,
    helpers::{bpf_get_smp_processor_id, bpf_ktime_get_ns},
    macros::{map, xdp},
    maps::{Array, DevMap, PerCpuArray},
    programs::XdpContext,
};
use traffic_abi::{
    MAX_PAYLOAD_OFFSET, PAYLOAD_LEN, TXGEN_PRISTINE_LEN, TxgenConfig, TxgenDestination,
};
use xdp_ebpf::{
    net::{csum_add, fold16},
    ptr_at,
};

#[map]
static TXGEN_CONFIG: Array<TxgenConfig> = Array::with_max_entries(1, 0);

#[map]
static TXGEN_TX: DevMap = DevMap::with_max_entries(1, 0);

#[map]
static TXGEN_SEQ: PerCpuArray<u64> = PerCpuArray::with_max_entries(1, 0);

/// Resized by the loader to the number of destinations.
#[map]
static TXGEN_DESTINATIONS: Array<TxgenDestination> = Array::with_max_entries(1, 0);

#[map]
static TXGEN_PRISTINE: Array<[u8; TXGEN_PRISTINE_LEN]> = Array::with_max_entries(1, 0);

#[xdp]
fn txgen(ctx: XdpContext) -> u32 {
    let Some(cfg) = TXGEN_CONFIG.get(0) else {
        return xdp_action::XDP_ABORTED;
    };
    let Some(seq) = TXGEN_SEQ.get_ptr_mut(0) else {
        return xdp_action::XDP_ABORTED;
    };
    let seq = unsafe { &mut *seq };
    // Bounded offsets keep the packet accesses below verifiable.
    let off = cfg.payload_off as usize;
    let csum_off = cfg.csum_off as usize;
    if off > MAX_PAYLOAD_OFFSET as usize || csum_off > MAX_PAYLOAD_OFFSET as usize {
        return xdp_action::XDP_ABORTED;
    }
    let start = ctx.data();
    let end = ctx.data_end();
    if start + off + PAYLOAD_LEN > end || start + csum_off + 2 > end {
        return xdp_action::XDP_ABORTED;
    }
    let Some(pristine) = TXGEN_PRISTINE.get(0) else {
        return xdp_action::XDP_ABORTED;
    };
    // Restore the headers in 8-byte words: up to 7 bytes past `off` land in
    // the payload, which is overwritten below (and off + 18 <= end).
    let mut i = 0usize;
    while i < MAX_PAYLOAD_OFFSET as usize {
        if i >= off {
            break;
        }
        let Some(dst) = ptr_at::<[u8; 8]>(&ctx, i) else {
            return xdp_action::XDP_ABORTED;
        };
        // i < 128 and the map value is 152 bytes.
        unsafe {
            *dst = core::ptr::read_unaligned(pristine.as_ptr().add(i) as *const [u8; 8]);
        }
        i += 8;
    }
    // The checksum just restored is the pristine payload's: update from that.
    let old = unsafe {
        core::ptr::read_unaligned(pristine.as_ptr().add(off) as *const [u8; PAYLOAD_LEN])
    };
    let Some(payload) = ptr_at::<[u8; PAYLOAD_LEN]>(&ctx, off) else {
        return xdp_action::XDP_ABORTED;
    };
    let payload = unsafe { &mut *payload };
    let stream = (cfg.stream_base + unsafe { bpf_get_smp_processor_id() }) as u16;
    let mut new = [0u8; PAYLOAD_LEN];
    new[0..2].copy_from_slice(&stream.to_be_bytes());
    new[2..10].copy_from_slice(&seq.to_be_bytes());
    new[10..18].copy_from_slice(&unsafe { bpf_ktime_get_ns() }.to_be_bytes());
    let dst_delta = spread_destination(&ctx, cfg, *seq);
    *seq += 1;

    if csum_off != 0 {
        // RFC 1624: HC' = ~(~HC + sum(~m) + sum(m')), m = the pristine payload.
        let Some(csum) = ptr_at::<[u8; 2]>(&ctx, csum_off) else {
            return xdp_action::XDP_ABORTED;
        };
        let csum = unsafe { &mut *csum };
        let mut sum = (!u16::from_be_bytes(*csum)) as u32;
        // The destination is in the UDP pseudo-header.
        if let Some(delta) = dst_delta {
            sum += delta as u32;
        }
        let mut i = 0;
        while i < PAYLOAD_LEN {
            sum += (!u16::from_be_bytes([old[i], old[i + 1]])) as u32;
            sum += u16::from_be_bytes([new[i], new[i + 1]]) as u32;
            i += 2;
        }
        sum = (sum & 0xffff) + (sum >> 16);
        sum = (sum & 0xffff) + (sum >> 16);
        let mut out = !(sum as u16);
        // 0 means "no checksum" in UDP over IPv4.
        if out == 0 {
            out = 0xffff;
        }
        *csum = out.to_be_bytes();
    }
    *payload = new;
    TXGEN_TX.redirect(0, 0).unwrap_or(xdp_action::XDP_ABORTED)
}

/// Point the frame at destination `seq % cfg.destinations` of
/// `TXGEN_DESTINATIONS`: write its address over the template's (just
/// restored from the pristine copy) and, for IPv4, update the header
/// checksum (RFC 1624). Returns the checksum delta for the UDP checksum
/// (the address is in its pseudo-header), or `None` when the frame keeps
/// its destination.
#[inline(always)]
fn spread_destination(ctx: &XdpContext, cfg: &TxgenConfig, seq: u64) -> Option<u16> {
    let count = cfg.destinations;
    if count <= 1 {
        return None;
    }
    let dest = TXGEN_DESTINATIONS.get((seq % u64::from(count)) as u32)?;
    let delta = dest.csum_delta as u16;
    // Bounded on its own (a combined test compiles to a form the
    // verifier cannot follow).
    let v = cfg.vlan_off as usize;
    if v > MAX_PAYLOAD_OFFSET as usize {
        return None;
    }
    if v != 0 {
        // The VLAN ID (low 12 bits of the TCI); priority and DEI stay.
        let tci = unsafe { &mut *ptr_at::<[u8; 2]>(ctx, v)? };
        let pcp = u16::from_be_bytes(*tci) & 0xf000;
        *tci = (pcp | (dest.vlan & 0x0fff)).to_be_bytes();
    }
    let off = cfg.dst_off as usize;
    if off > MAX_PAYLOAD_OFFSET as usize {
        return None;
    }
    if cfg.dst_len == 16 {
        let addr = unsafe { &mut *ptr_at::<[u8; 16]>(ctx, off)? };
        *addr = dest.addr;
    } else {
        let c = cfg.ip_csum_off as usize;
        if c > MAX_PAYLOAD_OFFSET as usize {
            return None;
        }
        let addr = unsafe { &mut *ptr_at::<[u8; 4]>(ctx, off)? };
        let check = unsafe { &mut *ptr_at::<[u8; 2]>(ctx, c)? };
        addr.copy_from_slice(&dest.addr[..4]);
        let sum = csum_add(!u16::from_be_bytes(*check), delta);
        *check = (!fold16(u32::from(sum))).to_be_bytes();
    }
    Some(delta)
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";
