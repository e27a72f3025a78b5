//! Verdicts: what becomes of a frame, and the per-(link, direction)
//! counters every frame is charged to. The forwarding path ends at a
//! redirect (`redirect`); everything else is carried out and counted by
//! `settle`, out of line.

use aya_ebpf::{bindings::xdp_action, helpers::bpf_xdp_adjust_head, programs::XdpContext};
use aya_log_ebpf::debug;
use msee_abi::{DropReason, Link, LinkCounters, LinkRow};
use xdp_ebpf::{
    msee::parse::vlan_tags_len,
    net::{ETH_HDR_LEN, VLAN_HDR_LEN},
    ptr_at,
};

use crate::maps::{COUNTERS, TX_PORTS};

pub(crate) enum Verdict {
    /// To the kernel: addressed to the MSEE, or not ours to forward; counted
    /// on the ingress link's rx row.
    Pass { row: u32 },
    /// Forwarded (and counted on the egress link's tx row).
    Redirect { action: u32 },
    /// Dropped, charged to counter row `row`.
    Drop { reason: DropReason, row: u32 },
    /// TTL expired: rewritten in place into an ICMP time exceeded and sent
    /// back out of the port it came in on (counted on the ingress rx row).
    TimeExceeded { row: u32 },
}

/// Count and carry out a verdict other than a redirect. Out of line: the
/// forwarding path ends at the redirect without it.
#[inline(never)]
pub(crate) fn settle(ctx: &XdpContext, verdict: Verdict, len: u64) -> u32 {
    match verdict {
        Verdict::Pass { row } => {
            if let Some(c) = counters(row) {
                c.to_kernel += 1;
            }
            vlan_shim_pop(ctx);
            xdp_action::XDP_PASS
        }
        // Not reached: `msee` returns a redirect's action itself.
        Verdict::Redirect { action } => action,
        Verdict::TimeExceeded { row } => {
            if let Some(c) = counters(row) {
                c.drops[DropReason::TtlExpired as usize] += 1;
                c.icmp_errors += 1;
            }
            // Back out of the ingress port through the devmap rather than
            // XDP_TX: on veth, XDP_TX only wakes a peer that runs XDP itself,
            // while a devmap redirect also reaches a peer with just GRO.
            TX_PORTS
                .redirect(ctx.ingress_ifindex() as u32, 0)
                .unwrap_or(xdp_action::XDP_TX)
        }
        Verdict::Drop { reason, row } => {
            // The volatile read hides the enum's range from the optimiser, so
            // the bounds check the verifier needs is kept.
            let index = unsafe { core::ptr::read_volatile(&(reason as u32)) } as usize;
            if let Some(c) = counters(row)
                && index < c.drops.len()
            {
                c.drops[index] += 1;
            }
            if matches!(reason, DropReason::Malformed) {
                log_malformed(ctx, len);
            }
            crate::capture::dropped(ctx, index as u32, row, len);
            xdp_action::XDP_DROP
        }
    }
}

/// Out of line: the logging machinery stays off the forwarding path. The
/// record's target is the program, whichever module logs.
#[inline(never)]
fn log_malformed(ctx: &XdpContext, len: u64) {
    debug!(
        ctx,
        target: "msee",
        "malformed frame of {} bytes on ifindex {}",
        len,
        ctx.ingress_ifindex() as u32
    );
}

// --- VLAN shim (see `msee_abi::vlan`): this kernel has no 802.1Q, so a
// frame for the MSEE on a tagged attachment reaches the kernel's port
// interface as plain Ethernet. Its replies get their tags back from the
// `vlan_push` TC egress program. Only frames already bound for XDP_PASS get
// here: the forwarding path is untouched.

/// Pop the frame's VLAN tags (the one or two that `process` parsed to find
/// its attachment), if any: shift the MACs over them. Frames that cannot be
/// shrunk (never: their tags were parsed) go up as they came.
#[inline(never)]
fn vlan_shim_pop(ctx: &XdpContext) {
    let Some(l2) = ptr_at::<[u8; ETH_HDR_LEN + VLAN_HDR_LEN]>(ctx, 0) else {
        return;
    };
    let l2 = unsafe { &*l2 };
    let delta = vlan_tags_len(l2) as i32;
    if delta == 0 {
        return;
    }
    let mut macs = [0u8; 12];
    macs.copy_from_slice(&l2[..12]);
    if unsafe { bpf_xdp_adjust_head(ctx.ctx, delta) } != 0 {
        return;
    }
    if let Some(l2) = ptr_at::<[u8; 12]>(ctx, 0) {
        unsafe { *l2 = macs };
    }
}

/// This CPU's row of a (link, direction): no other CPU writes it, so plain
/// increments are exact.
#[inline(always)]
pub(crate) fn link_row(row: u32) -> Option<&'static mut LinkRow> {
    COUNTERS.get_ptr_mut(row).map(|p| unsafe { &mut *p })
}

#[inline(always)]
fn counters(row: u32) -> Option<&'static mut LinkCounters> {
    link_row(row).map(|r| &mut r.counters)
}

/// Redirect out of `out` and count the frame, as sent, on its tx row.
#[inline(always)]
pub(crate) fn redirect(
    ctx: &XdpContext,
    out: &Link,
    tx_row: u32,
    tx: Option<&mut LinkRow>,
) -> Option<Verdict> {
    Some(match TX_PORTS.redirect(out.ifindex, 0) {
        Ok(action) => {
            if let Some(t) = tx {
                t.counters.packets += 1;
                t.counters.bytes += (ctx.data_end() - ctx.data()) as u64;
            }
            Verdict::Redirect { action }
        }
        Err(_) => Verdict::Drop {
            reason: DropReason::LinkDown,
            row: tx_row,
        },
    })
}
