//! Policing: the ingress link's rx bucket, then the egress link's tx
//! bucket (see `xdp_ebpf::msee::police`).

use core::intrinsics::{AtomicOrdering::Relaxed, atomic_cxchg, atomic_xadd, atomic_xchg};

use aya_ebpf::helpers::bpf_ktime_get_ns;
use msee_abi::{MseeConfig, PolicerConfig};
use xdp_ebpf::msee::{
    link::link_dir_slot,
    police::{policer_refill_nb, policer_take, spend_held},
};

use crate::maps::POLICER_STATE;

/// Token bucket per (link, direction), shared by all CPUs, in nanobytes
/// (see `msee_abi::PolicerConfig`): a frame costs len * 1e9, a nanosecond
/// refills `rate`; exact, and free of divisions. Each CPU takes credit from
/// the bucket a chunk at a time into its own slot and spends it there: most
/// frames cost a read of the config and a subtraction from the credit in this
/// CPU's row (`local`, `LinkRow::policer_credit_nb`), no atomics and no
/// clock read (inline here; taking a chunk is `police_take_chunk`, out of
/// line). Returns whether the frame conforms.
#[inline(always)]
pub(crate) fn police(
    config: &MseeConfig,
    index: u32,
    local: &mut u64,
    len: u64,
    clock: &mut u64,
) -> bool {
    let cfg = config.policers[link_dir_slot(index)].current();
    match spend_held(cfg, local, len) {
        None => true,
        Some(cost) => police_take_chunk(index, cfg, local, cost, clock),
    }
}

/// This CPU's credit (`local`) is short of `cost`: take a chunk from the
/// shared bucket. Claims the refill interval with an exchange on `last_ns`
/// (so CPUs never count the same nanoseconds twice) and updates the shared
/// credit with compare-and-swap.
#[inline(never)]
fn police_take_chunk(
    index: u32,
    cfg: &PolicerConfig,
    local: &mut u64,
    cost: u64,
    clock: &mut u64,
) -> bool {
    let Some(state) = POLICER_STATE.get_ptr_mut(index) else {
        return true;
    };
    let need = cost - *local;
    if *clock == 0 {
        *clock = unsafe { bpf_ktime_get_ns() };
    }
    let now = *clock;
    let last = unsafe { atomic_xchg::<u64, { Relaxed }>(&raw mut (*state).last_ns, now) };
    // Time only moves forward here; a stale `last` from a racing CPU just
    // yields no refill.
    let elapsed = if now > last { now - last } else { 0 };
    let refill = policer_refill_nb(elapsed, cfg.refill_cap_ns, cfg.rate_bytes_per_sec);
    let credit = unsafe { &raw mut (*state).credit_nb };
    for _ in 0..4 {
        let cur = unsafe { core::ptr::read_volatile(credit) };
        let (next, taken) = policer_take(cur, refill, cfg.burst_nb, need, cfg.chunk_nb);
        let (_, swapped) =
            unsafe { atomic_cxchg::<u64, { Relaxed }, { Relaxed }>(credit, cur, next) };
        if swapped {
            if taken == 0 {
                return false;
            }
            // taken >= need = cost - local.
            *local = *local + taken - cost;
            return true;
        }
    }
    // Heavy contention: keep the refill, call the frame non-conforming.
    unsafe { atomic_xadd::<u64, u64, { Relaxed }>(credit, refill) };
    false
}
