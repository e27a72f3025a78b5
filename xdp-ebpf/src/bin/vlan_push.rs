//! `vlan_push`: the egress half of the VLAN shim (TC, attached with tcx on a
//! port's egress). This kernel has no 802.1Q, so the frames the kernel itself
//! sends out of a port (ARP, ND, BGP, BFD, ICMP) leave it untagged; this
//! program gives each the tag(s) of the peering it belongs to, found by an
//! LPM lookup on (egress ifindex, address) in `VLAN_EGRESS_V4`/`_V6`:
//!
//! - ARP: the target protocol address, else the sender's;
//! - IPv4: the destination, else the source;
//! - ICMPv6 Neighbor Solicitation / Advertisement: the ND target (the
//!   address being resolved, or announced), whatever the destination (an NS
//!   goes to a solicited-node multicast group shared by every peering);
//! - other IPv6 to a multicast group (MLD reports, Router Solicitations...):
//!   left untagged and counted. They are link-scoped chatter no peering's
//!   control plane needs, they must still flow on untagged ports, and the
//!   peer's kernel (behind `msee`, or `vlan_pop`) takes an untagged frame on
//!   the port and ignores it;
//! - other IPv6: the destination, else the source.
//!
//! No match: left untagged (untagged attachments, the Azure side). Frames
//! already tagged are left alone. The source fallback covers the MSEE
//! answering a host beyond the /30 from its peering address.
//!
//! Frames that `msee` (or any XDP program) redirects out of a port never pass
//! through TC egress, so forwarded traffic is never tagged twice.
#![no_std]
#![no_main]

use aya_ebpf::{
    bindings::TC_ACT_SHOT,
    helpers::bpf_skb_change_head,
    macros::{classifier, map},
    maps::{LpmTrie, PerCpuArray, lpm_trie::Key},
    programs::TcContext,
};
use msee_abi::{
    ETH_P_8021AD, ETH_P_8021Q,
    vlan::{
        COUNTER_ROWS, EgressKeyV4, EgressKeyV6, MAX_EGRESS_V4, MAX_EGRESS_V6, PushCounters,
        VlanTags, counter_row, egress_key_v4, egress_key_v6,
    },
};
use xdp_ebpf::net::{ETH_HDR_LEN, ETH_P_IPV4, ETH_P_IPV6, IPV4_MIN_HDR_LEN, IPV6_HDR_LEN};

#[map]
static VLAN_EGRESS_V4: LpmTrie<EgressKeyV4, VlanTags> = LpmTrie::with_max_entries(MAX_EGRESS_V4, 0);
#[map]
static VLAN_EGRESS_V6: LpmTrie<EgressKeyV6, VlanTags> = LpmTrie::with_max_entries(MAX_EGRESS_V6, 0);
#[map]
static VLAN_PUSH_STATS: PerCpuArray<PushCounters> = PerCpuArray::with_max_entries(COUNTER_ROWS, 0);

const ETH_P_ARP: u16 = 0x0806;
const IPPROTO_ICMPV6: u8 = 58;
const ND_NEIGHBOR_SOLICIT: u8 = 135;
const ND_NEIGHBOR_ADVERT: u8 = 136;
/// ICMPv6 type, code, checksum, reserved/flags, then the ND target.
const ND_TARGET_OFF: usize = 8;
const ARP_LEN: usize = 28;

/// Let the frame go on (TCX_NEXT under tcx, TC_ACT_UNSPEC under cls_bpf):
/// the next program in the chain, if any, then the wire.
const NEXT: i32 = -1;

/// What to do with a frame. (Tags are found as a map value pointer and
/// copied only when used.)
enum Class {
    Tag(&'static VlanTags),
    Unmatched,
    Multicast,
    AlreadyTagged,
    Unparsed,
}

#[classifier]
fn vlan_push(ctx: TcContext) -> i32 {
    let skb = unsafe { &*ctx.skb.skb };
    let ifindex = skb.ifindex;
    let stats = VLAN_PUSH_STATS
        .get_ptr_mut(counter_row(ifindex))
        .map(|p| unsafe { &mut *p });
    let class = if skb.vlan_present != 0 {
        Class::AlreadyTagged
    } else {
        classify(&ctx, ifindex)
    };
    if let Class::Tag(tags) = class {
        let pushed = push(&ctx, tags);
        if let Some(s) = stats {
            if pushed {
                s.tagged += 1;
            } else {
                s.dropped += 1;
            }
        }
        return if pushed { NEXT } else { TC_ACT_SHOT };
    }
    if let Some(s) = stats {
        match class {
            Class::Unmatched => s.unmatched += 1,
            Class::Multicast => s.multicast += 1,
            Class::AlreadyTagged => s.already_tagged += 1,
            _ => s.unparsed += 1,
        }
    }
    NEXT
}

#[inline(always)]
fn be16(b: &[u8], i: usize) -> u16 {
    u16::from_be_bytes([b[i], b[i + 1]])
}

#[inline(always)]
fn v4(ifindex: u32, addr: [u8; 4]) -> Option<&'static VlanTags> {
    VLAN_EGRESS_V4.get(Key::new(64, egress_key_v4(ifindex, addr)))
}

#[inline(never)]
fn v6(ifindex: u32, addr: &[u8; 16]) -> Option<&'static VlanTags> {
    VLAN_EGRESS_V6.get(Key::new(32 + 128, egress_key_v6(ifindex, *addr)))
}

#[inline(always)]
fn found(tags: Option<&'static VlanTags>) -> Class {
    match tags {
        Some(t) => Class::Tag(t),
        None => Class::Unmatched,
    }
}

#[inline(always)]
fn classify(ctx: &TcContext, ifindex: u32) -> Class {
    let Ok(eth) = ctx.load::<[u8; ETH_HDR_LEN]>(0) else {
        return Class::Unparsed;
    };
    match be16(&eth, 12) {
        ETH_P_8021Q | ETH_P_8021AD => Class::AlreadyTagged,
        ETH_P_ARP => {
            let Ok(arp) = ctx.load::<[u8; ARP_LEN]>(ETH_HDR_LEN) else {
                return Class::Unparsed;
            };
            // Ethernet/IPv4 ARP only: ptype 0x0800, hlen 6, plen 4.
            if be16(&arp, 2) != ETH_P_IPV4 || arp[4] != 6 || arp[5] != 4 {
                return Class::Unparsed;
            }
            let tpa = [arp[24], arp[25], arp[26], arp[27]];
            let spa = [arp[14], arp[15], arp[16], arp[17]];
            found(v4(ifindex, tpa).or_else(|| v4(ifindex, spa)))
        }
        ETH_P_IPV4 => {
            let Ok(ip) = ctx.load::<[u8; IPV4_MIN_HDR_LEN]>(ETH_HDR_LEN) else {
                return Class::Unparsed;
            };
            if ip[0] >> 4 != 4 {
                return Class::Unparsed;
            }
            let dst = [ip[16], ip[17], ip[18], ip[19]];
            let src = [ip[12], ip[13], ip[14], ip[15]];
            found(v4(ifindex, dst).or_else(|| v4(ifindex, src)))
        }
        ETH_P_IPV6 => classify_v6(ctx, ifindex),
        _ => Class::Unparsed,
    }
}

/// Out of line: the IPv6 header and ND target weigh on the stack.
#[inline(never)]
fn classify_v6(ctx: &TcContext, ifindex: u32) -> Class {
    let Ok(ip) = ctx.load::<[u8; IPV6_HDR_LEN]>(ETH_HDR_LEN) else {
        return Class::Unparsed;
    };
    if ip[0] >> 4 != 6 {
        return Class::Unparsed;
    }
    // ND carries no extension headers (RFC 4861), so ICMPv6 follows directly.
    if ip[6] == IPPROTO_ICMPV6
        && let Ok(nd) = ctx.load::<[u8; ND_TARGET_OFF + 16]>(ETH_HDR_LEN + IPV6_HDR_LEN)
        && (nd[0] == ND_NEIGHBOR_SOLICIT || nd[0] == ND_NEIGHBOR_ADVERT)
    {
        let target = unsafe { &*(nd.as_ptr().add(ND_TARGET_OFF) as *const [u8; 16]) };
        if let Some(t) = v6(ifindex, target) {
            return Class::Tag(t);
        }
    }
    if ip[24] == 0xff {
        return Class::Multicast;
    }
    let dst = unsafe { &*(ip.as_ptr().add(24) as *const [u8; 16]) };
    let src = unsafe { &*(ip.as_ptr().add(8) as *const [u8; 16]) };
    found(v6(ifindex, dst).or_else(|| v6(ifindex, src)))
}

/// Grow the frame at the front and write the MACs and the tag(s) there; the
/// original ethertype is already in place after them. Returns false if the
/// frame could not be grown (it is then dropped, never sent untagged).
#[inline(never)]
fn push(ctx: &TcContext, tags: &VlanTags) -> bool {
    let Ok(macs) = ctx.load::<[u8; 12]>(0) else {
        return false;
    };
    let tpid = tags.outer_tpid.to_be_bytes();
    let outer = (tags.outer_vid & 0x0fff).to_be_bytes();
    if tags.inner_vid == 0 {
        if unsafe { bpf_skb_change_head(ctx.skb.skb, 4, 0) } != 0 {
            return false;
        }
        let mut h = [0u8; 16];
        h[..12].copy_from_slice(&macs);
        h[12..14].copy_from_slice(&tpid);
        h[14..16].copy_from_slice(&outer);
        ctx.store(0, &h, 0).is_ok()
    } else {
        let inner = (tags.inner_vid & 0x0fff).to_be_bytes();
        if unsafe { bpf_skb_change_head(ctx.skb.skb, 8, 0) } != 0 {
            return false;
        }
        let mut h = [0u8; 20];
        h[..12].copy_from_slice(&macs);
        h[12..14].copy_from_slice(&tpid);
        h[14..16].copy_from_slice(&outer);
        h[16..18].copy_from_slice(&ETH_P_8021Q.to_be_bytes());
        h[18..20].copy_from_slice(&inner);
        ctx.store(0, &h, 0).is_ok()
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
