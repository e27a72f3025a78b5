//! ICMP time exceeded: a packet whose TTL or hop limit runs out is answered
//! (rate-limited) so that traceroute shows the MSEE hop (see
//! `xdp_ebpf::msee::icmp`).

use aya_ebpf::{
    helpers::{bpf_ktime_get_ns, bpf_xdp_adjust_head, bpf_xdp_adjust_tail},
    programs::XdpContext,
};
use msee_abi::Attachment;
use xdp_ebpf::{
    msee::icmp::{
        ICMP4_QUOTE, ICMP4_TE_LEN, ICMP6_QUOTE, ICMP6_TE_LEN, REPLY_FRONT, icmp_budget,
        icmp4_time_exceeded, icmp6_time_exceeded, may_answer_v4, may_answer_v6, reply_l2,
    },
    net::{ETH_HDR_LEN, VLAN_HDR_LEN},
    ptr_at,
};

use crate::maps::ICMP_LIMIT;

/// Per-CPU ICMP error budget: `ICMP_ERRORS_PER_SEC_PER_CPU` per second.
#[inline(always)]
pub(crate) fn icmp_allowed() -> bool {
    let Some(slot) = ICMP_LIMIT.get_ptr_mut(0) else {
        return false;
    };
    icmp_budget(unsafe { &mut *slot }, unsafe { bpf_ktime_get_ns() })
}

/// Rewrite the expired packet in place into an ICMP (or ICMPv6) time
/// exceeded from the MSEE's address on this attachment, back to its sender
/// on the same VLANs: cut it to its header and first 8 bytes, grow room for
/// the new headers in front, move the L2 header there, and fill in.
/// Returns false (the caller just drops) when the attachment has no address,
/// the packet is too short to quote, IPv4 carries options, or no error may
/// be sent for it (a non-first fragment, an ICMP error, a group address).
#[inline(never)]
pub(crate) fn time_exceeded(ctx: &XdpContext, l3_off: usize, v6: bool, att: &Attachment) -> bool {
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
    // Before the length arithmetic below: from it the compiler would infer
    // the quote's bounds check and drop it, which the verifier cannot follow.
    let may_answer = if v6 {
        ptr_at::<[u8; ICMP6_QUOTE]>(ctx, l3_off).is_some_and(|q| may_answer_v6(unsafe { &*q }))
    } else {
        ptr_at::<[u8; ICMP4_QUOTE]>(ctx, l3_off).is_some_and(|q| may_answer_v4(unsafe { &*q }))
    };
    if !may_answer {
        return false;
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
    let Some(front) = ptr_at::<[u8; REPLY_FRONT]>(ctx, 0) else {
        return false;
    };
    reply_l2(unsafe { &mut *front }, grow as usize, sender_mac, &att.mac);
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
