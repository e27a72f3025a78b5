//! `txgen`: the in-kernel traffic generator, run by BPF_PROG_TEST_RUN with
//! live frames. Stamps the test payload (stream = base + CPU, per-CPU
//! sequence, bpf_ktime_get_ns = CLOCK_MONOTONIC), patches the UDP checksum
//! incrementally, and redirects the frame out of devmap slot 0.
#![no_std]
#![no_main]

use aya_ebpf::{
    bindings::xdp_action,
    helpers::{bpf_get_smp_processor_id, bpf_ktime_get_ns},
    macros::{map, xdp},
    maps::{Array, DevMap, PerCpuArray},
    programs::XdpContext,
};
use msee_abi::engine::{MAX_PAYLOAD_OFFSET, PAYLOAD_LEN, TxgenConfig};

#[map]
static TXGEN_CONFIG: Array<TxgenConfig> = Array::with_max_entries(1, 0);

#[map]
static TXGEN_TX: DevMap = DevMap::with_max_entries(1, 0);

#[map]
static TXGEN_SEQ: PerCpuArray<u64> = PerCpuArray::with_max_entries(1, 0);

#[xdp]
pub fn txgen(ctx: XdpContext) -> u32 {
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
    let payload = unsafe { &mut *((start + off) as *mut [u8; PAYLOAD_LEN]) };
    let stream = (cfg.stream_base + unsafe { bpf_get_smp_processor_id() }) as u16;
    let mut new = [0u8; PAYLOAD_LEN];
    new[0..2].copy_from_slice(&stream.to_be_bytes());
    new[2..10].copy_from_slice(&seq.to_be_bytes());
    new[10..18].copy_from_slice(&unsafe { bpf_ktime_get_ns() }.to_be_bytes());
    *seq += 1;

    if csum_off != 0 {
        // RFC 1624: HC' = ~(~HC + sum(~m) + sum(m')). The frame may hold the
        // previous run's stamp (live frames are not reset), so read it.
        let csum = unsafe { &mut *((start + csum_off) as *mut [u8; 2]) };
        let mut sum = (!u16::from_be_bytes(*csum)) as u32;
        let mut i = 0;
        while i < PAYLOAD_LEN {
            sum += (!u16::from_be_bytes([payload[i], payload[i + 1]])) as u32;
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

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";
