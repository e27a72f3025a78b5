//! Attachment: which (port, S-tag, C-tag) a frame came in on, and so its
//! circuit, peering, routing domain and link.

use aya_ebpf::programs::XdpContext;
use msee_abi::{Attachment, AttachmentKey, MAX_FAST_IFINDEX};
use xdp_ebpf::{
    msee::parse::{is_vlan_tpid, vlan_tags},
    net::{ETH_HDR_LEN, be16},
    ptr_at,
};

use crate::maps::{ATTACHMENTS, UNTAGGED};

/// A frame on one of the MSEE's attachments.
pub(crate) struct Arrival<'a> {
    pub(crate) eth: &'a [u8; ETH_HDR_LEN],
    pub(crate) att: &'static Attachment,
    /// The EtherType after the VLAN tags.
    pub(crate) ethertype: u16,
    pub(crate) l3_off: usize,
    /// How many VLAN tags it came with (0 to 2).
    pub(crate) tags_in: usize,
}

/// What the attachment stage found. (An enum of its own rather than a
/// `Result` carrying the `Verdict`: the program's code then stays as when
/// this stage was written inside `process`.)
pub(crate) enum Arrived<'a> {
    On(Arrival<'a>),
    /// On no attachment: passed untouched, uncounted.
    Unattached,
    /// Cut short in its L2 header: dropped, on no link's counters.
    Malformed,
}

/// Parse Ethernet and up to two VLAN tags (802.1Q, or 802.1ad outer) and
/// find the frame's attachment.
#[inline(always)]
pub(crate) fn arrive(ctx: &XdpContext) -> Arrived<'_> {
    let Some(eth) = ptr_at::<[u8; ETH_HDR_LEN]>(ctx, 0) else {
        return Arrived::Malformed;
    };
    let eth = unsafe { &*eth };
    let ifindex = ctx.ingress_ifindex() as u32;
    let ethertype = be16(eth, 12);
    let (att, ethertype, l3_off, tags_in) = if !is_vlan_tpid(ethertype) {
        // Untagged: by ifindex, from the array when the ifindex fits it.
        let att: &Attachment = if ifindex < MAX_FAST_IFINDEX {
            let Some(att) = UNTAGGED.get(ifindex) else {
                return Arrived::Unattached;
            };
            if att.valid == 0 {
                return Arrived::Unattached;
            }
            att
        } else {
            let key = AttachmentKey {
                ifindex,
                outer_vlan: 0,
                inner_vlan: 0,
            };
            let Some(att) = (unsafe { ATTACHMENTS.get(&key) }) else {
                return Arrived::Unattached;
            };
            att
        };
        (att, ethertype, ETH_HDR_LEN, 0)
    } else {
        let Some(tags) = vlan_tags(ctx) else {
            return Arrived::Malformed;
        };
        let key = AttachmentKey {
            ifindex,
            outer_vlan: tags.outer_vlan,
            inner_vlan: tags.inner_vlan,
        };
        let Some(att) = (unsafe { ATTACHMENTS.get(&key) }) else {
            return Arrived::Unattached;
        };
        (att, tags.ethertype, tags.l3_off, tags.count)
    };
    Arrived::On(Arrival {
        eth,
        att,
        ethertype,
        l3_off,
        tags_in,
    })
}
