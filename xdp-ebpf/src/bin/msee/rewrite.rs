//! Rewrite: TTL or hop limit and DSCP in place, then the L2 header for the
//! egress link (see `xdp_ebpf::msee::rewrite`).

use aya_ebpf::{helpers::bpf_xdp_adjust_head, programs::XdpContext};
use msee_abi::Link;
use xdp_ebpf::{
    msee::rewrite::{egress_tags, forward_ipv4, forward_ipv6, write_l2},
    net::{ETH_HDR_LEN, IPV4_MIN_HDR_LEN, IPV6_HDR_LEN, VLAN_HDR_LEN},
    ptr_at,
};

/// Take a hop off the IP header at `l3_off` (IPv6 if `v6`) and apply the
/// peering's DSCP `policy`. False if the header is not in the frame.
#[inline(always)]
pub(crate) fn rewrite_l3(ctx: &XdpContext, l3_off: usize, v6: bool, policy: &[u8; 64]) -> bool {
    if v6 {
        let Some(ip) = ptr_at::<[u8; IPV6_HDR_LEN]>(ctx, l3_off) else {
            return false;
        };
        forward_ipv6(unsafe { &mut *ip }, policy);
    } else {
        let Some(ip) = ptr_at::<[u8; IPV4_MIN_HDR_LEN]>(ctx, l3_off) else {
            return false;
        };
        forward_ipv4(unsafe { &mut *ip }, policy);
    }
    true
}

/// Give the frame, which came with `tags_in` VLAN tags, the ones the egress
/// link `out` needs (moving its head), then its L2 header. False if the
/// frame cannot be so moved.
#[inline(always)]
pub(crate) fn rewrite_l2(ctx: &XdpContext, out: &Link, tags_in: usize, ethertype: u16) -> bool {
    let tags_out = egress_tags(out);
    let delta = (tags_in as i32 - tags_out as i32) * VLAN_HDR_LEN as i32;
    if delta != 0 && unsafe { bpf_xdp_adjust_head(ctx.ctx, delta) } != 0 {
        return false;
    }
    // A valid IP frame is at least 14 + 20 bytes, so the widest L2 header
    // (22 bytes) always fits in front of it.
    let Some(l2) = ptr_at::<[u8; ETH_HDR_LEN + 2 * VLAN_HDR_LEN]>(ctx, 0) else {
        return false;
    };
    write_l2(unsafe { &mut *l2 }, out, tags_in, tags_out, ethertype);
    true
}
