//! Capture of dropped frames (`msee_abi::capture`): its maps, and the one
//! call on the drop path (`settle`). Off, a drop costs one array lookup and
//! one branch more; the forwarding path never comes here. On, each selected
//! drop (reason, link, one in `sample`) is copied into the ring, at most
//! `rate_per_sec` a second per CPU, its first `snap` bytes at most.

use aya_ebpf::{
    helpers::{bpf_ktime_get_ns, generated::bpf_xdp_load_bytes},
    macros::map,
    maps::{Array, PerCpuArray, RingBuf},
    programs::XdpContext,
};
use msee_abi::capture::{ANY_LINK, Config, RING_BYTES, Record, SNAP_LEN, State};

/// The selection, written by the daemon (`Config::on == 0`: off).
#[map]
static CAPTURE_CONFIG: Array<Config> = Array::with_max_entries(1, 0);
/// Captured frames, read by the daemon.
#[map]
static CAPTURE_RING: RingBuf = RingBuf::with_byte_size(RING_BYTES, 0);
/// Each CPU's sampling and rate.
#[map]
static CAPTURE_STATE: PerCpuArray<State> = PerCpuArray::with_max_entries(1, 0);

/// A frame dropped for `reason`, charged to counter row `row`.
#[inline(always)]
pub(crate) fn dropped(ctx: &XdpContext, reason: u32, row: u32, len: u64) {
    if let Some(config) = CAPTURE_CONFIG.get(0)
        && config.on != 0
    {
        take(ctx, config, reason, row, len);
    }
}

#[inline(never)]
fn take(ctx: &XdpContext, config: &Config, reason: u32, row: u32, len: u64) {
    if reason >= 32 || config.reasons & (1 << reason) == 0 {
        return;
    }
    if config.link != ANY_LINK && row / 2 != config.link {
        return;
    }
    let Some(state) = CAPTURE_STATE.get_ptr_mut(0) else {
        return;
    };
    // SAFETY: this CPU's element; nothing else on this CPU runs meanwhile.
    let state = unsafe { &mut *state };
    state.seen += 1;
    let sample = u64::from(config.sample);
    if sample > 1 && state.seen % sample != 0 {
        return;
    }
    // SAFETY: a helper without arguments.
    let now = unsafe { bpf_ktime_get_ns() };
    if now.wrapping_sub(state.window_ns) >= 1_000_000_000 {
        state.window_ns = now;
        state.in_window = 0;
    }
    if state.in_window >= u64::from(config.rate_per_sec) {
        state.lost += 1;
        return;
    }
    let Some(mut entry) = CAPTURE_RING.reserve::<Record>(0) else {
        state.lost += 1;
        return;
    };
    let snap = (config.snap as u64).min(SNAP_LEN as u64);
    let caplen = len.min(snap);
    let rec = entry.as_mut_ptr();
    // SAFETY: `rec` is the reserved entry, `Record`-sized; every field but
    // the uncopied tail of `data` is written before it is submitted.
    unsafe {
        (*rec).ktime_ns = now;
        (*rec).len = len as u32;
        (*rec).reason = reason;
        (*rec).row = row;
        (*rec).ifindex = (*ctx.ctx).ingress_ifindex;
        (*rec)._pad = 0;
        // The verifier needs the length bounded, and non-zero.
        let n = core::ptr::read_volatile(&caplen);
        let copied = if n > 0 && n <= SNAP_LEN as u64 {
            bpf_xdp_load_bytes(ctx.ctx, 0, (*rec).data.as_mut_ptr().cast(), n as u32) == 0
        } else {
            false
        };
        (*rec).caplen = if copied { n as u32 } else { 0 };
    }
    entry.submit(0);
    state.in_window += 1;
}
