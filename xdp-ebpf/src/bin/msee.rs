//! `msee`: the XDP program on the emulated MSEE's ports.
//!
//! One pass per frame:
//!   attachment (ifindex, S-tag, C-tag) -> circuit, peering, routing domain, link
//!   -> frames for the MSEE itself go to the kernel, without their VLAN tags
//!   -> LPM lookup (domain, destination) -> next-hop group
//!   -> link choice: up, best preference, flow hash
//!   -> policers (ingress link rx, egress link tx)
//!   -> rewrite: TTL/hop limit, DSCP, VLAN tags, MACs -> redirect via devmap
//! and everything that is not forwarded is counted per (link, direction) by reason.
#![no_std]
#![no_main]
#![feature(core_intrinsics)]
#![allow(internal_features)]

use core::intrinsics::{AtomicOrdering::Relaxed, atomic_cxchg, atomic_xadd, atomic_xchg};

use aya_ebpf::{
    bindings::xdp_action,
    helpers::{bpf_ktime_get_ns, bpf_xdp_adjust_head, bpf_xdp_adjust_tail},
    macros::{map, xdp},
    maps::{Array, DevMapHash, HashMap, LpmTrie, PerCpuArray, lpm_trie::Key},
    programs::XdpContext,
};
use aya_log_ebpf::debug;
use msee_abi::{
    Attachment, AttachmentKey, BPF_F_MMAPABLE, CACHED_GROUP_MISSING, COUNTER_ROWS, CachedGroup,
    Direction, DropReason, ETH_P_8021AD, ETH_P_8021Q, ICMP_ERRORS_PER_SEC_PER_CPU, LINK_IS_UP,
    Link, LinkCounters, LinkRow, MAX_ATTACHMENTS, MAX_FAST_IFINDEX, MAX_GROUP_MEMBERS, MAX_GROUPS,
    MAX_LINKS, MAX_PORTS, MAX_ROUTES_V4, MAX_ROUTES_V6, MseeConfig, NextHopGroup, PEERING_KINDS,
    PolicerConfig, PolicerState, ROUTE_CACHE_V4_SLOTS, ROUTE_CACHE_V6_SLOTS, ROUTE_LOCAL,
    ROUTE_NONE, ROUTE_OUT_OF_REACH, Resolved, Route, RouteCacheV4, RouteCacheV6, RouteKeyV4,
    RouteKeyV6, UNATTRIBUTED_ROW, link_dir_index, route_key_v4, route_key_v6,
};
use xdp_ebpf::{
    net::{
        ETH_HDR_LEN, ETH_P_IPV4, ETH_P_IPV6, ICMP4_QUOTE, ICMP4_TE_LEN, ICMP6_QUOTE, ICMP6_TE_LEN,
        IPPROTO_TCP, IPPROTO_UDP, IPV4_MIN_HDR_LEN, IPV6_HDR_LEN, VLAN_HDR_LEN, cache_set_v4,
        cache_set_v6, flow_finish, flow_mix, flow_pick, flow_word, icmp4_time_exceeded,
        icmp6_time_exceeded, ipv4_decrement_ttl, ipv4_set_dscp, ipv6_dscp, ipv6_set_dscp, load16,
        load32_halves, policer_cost_nb, policer_refill_nb, policer_take, store16,
    },
    ptr_at,
};

#[map]
static ATTACHMENTS: HashMap<AttachmentKey, Attachment> =
    HashMap::with_max_entries(MAX_ATTACHMENTS, 0);
/// Untagged attachments by ifindex (a copy of their `ATTACHMENTS` entries).
#[map]
static UNTAGGED: Array<Attachment> = Array::with_max_entries(MAX_FAST_IFINDEX, 0);
/// Links, their state, policers, the DSCP policy and the route epoch, in
/// one element (see `msee_abi::MseeConfig`): one lookup per frame.
#[map]
static CONFIG: Array<MseeConfig> = Array::with_max_entries(1, BPF_F_MMAPABLE);
#[map]
static GROUPS: Array<NextHopGroup> = Array::with_max_entries(MAX_GROUPS, 0);
#[map]
static ROUTES_V4: LpmTrie<RouteKeyV4, Route> = LpmTrie::with_max_entries(MAX_ROUTES_V4, 0);
#[map]
static ROUTES_V6: LpmTrie<RouteKeyV6, Route> = LpmTrie::with_max_entries(MAX_ROUTES_V6, 0);
#[map]
static TX_PORTS: DevMapHash = DevMapHash::with_max_entries(MAX_PORTS, 0);
#[map]
static POLICER_STATE: Array<PolicerState> = Array::with_max_entries(MAX_LINKS * 2, 0);
/// Per-CPU ICMP error budget: [window start ns, errors sent in it].
#[map]
static ICMP_LIMIT: PerCpuArray<[u64; 2]> = PerCpuArray::with_max_entries(1, 0);
#[map]
static COUNTERS: PerCpuArray<LinkRow> = PerCpuArray::with_max_entries(COUNTER_ROWS, 0);
#[map]
static ROUTE_CACHE_V4: PerCpuArray<[RouteCacheV4; 2]> =
    PerCpuArray::with_max_entries(ROUTE_CACHE_V4_SLOTS / 2, 0);
#[map]
static ROUTE_CACHE_V6: PerCpuArray<[RouteCacheV6; 2]> =
    PerCpuArray::with_max_entries(ROUTE_CACHE_V6_SLOTS / 2, 0);

/// Where a link's (or a link direction's) entries sit in `MseeConfig`.
/// Userspace checks every link id it writes (attachments, group members)
/// against `MAX_LINKS`, a power of two, so the mask never changes an id: it
/// is there for the verifier, which must see a bound on the very register
/// an access uses (LLVM may check one copy of an index and address with
/// another, spilled one).
#[inline(always)]
fn link_slot(link: u32) -> usize {
    (link & (MAX_LINKS - 1)) as usize
}

#[inline(always)]
fn link_dir_slot(index: u32) -> usize {
    (index & (2 * MAX_LINKS - 1)) as usize
}

const _: () = assert!(MAX_LINKS.is_power_of_two() && PEERING_KINDS.is_power_of_two());

const NO_ROUTE: Route = Route {
    group: 0,
    flags: ROUTE_NONE,
};

/// Upper bound on IPv6 extension headers walked to find the L4 ports.
const MAX_EXT_HEADERS: usize = 4;
/// Transport headers further in than this are not looked at for hashing.
const MAX_L4_OFFSET: usize = 1024;

enum Verdict {
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

#[xdp]
pub fn msee(ctx: XdpContext) -> u32 {
    let len = (ctx.data_end() - ctx.data()) as u64;
    match process(&ctx, len) {
        Some(Verdict::Redirect { action }) => action,
        None => xdp_action::XDP_PASS,
        Some(verdict) => settle(&ctx, verdict, len),
    }
}

/// Count and carry out a verdict other than a redirect. Out of line: the
/// forwarding path ends at the redirect without it.
#[inline(never)]
fn settle(ctx: &XdpContext, verdict: Verdict, len: u64) -> u32 {
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
            xdp_action::XDP_DROP
        }
    }
}

/// Out of line: the logging machinery stays off the forwarding path.
#[inline(never)]
fn log_malformed(ctx: &XdpContext, len: u64) {
    debug!(
        ctx,
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
    let outer = be16(l2, 12);
    if outer != ETH_P_8021Q && outer != ETH_P_8021AD {
        return;
    }
    let delta = if be16(l2, 16) == ETH_P_8021Q {
        2 * VLAN_HDR_LEN as i32
    } else {
        VLAN_HDR_LEN as i32
    };
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
fn link_row(row: u32) -> Option<&'static mut LinkRow> {
    COUNTERS.get_ptr_mut(row).map(|p| unsafe { &mut *p })
}

#[inline(always)]
fn counters(row: u32) -> Option<&'static mut LinkCounters> {
    link_row(row).map(|r| &mut r.counters)
}

/// A MAC address as three 16-bit words (`load16`: one access per word
/// instead of one per byte); the MACs in map values are at even offsets.
#[inline(always)]
fn mac_words(p: *const u8) -> [u16; 3] {
    [
        load16(p),
        load16(p.wrapping_add(2)),
        load16(p.wrapping_add(4)),
    ]
}

/// Whether two MACs are equal, as three 16-bit compares folded into one
/// test (comparing the arrays whole makes LLVM assemble a 48-bit integer).
#[inline(always)]
fn mac_eq(a: *const u8, b: *const u8) -> bool {
    let (x, y) = (mac_words(a), mac_words(b));
    ((x[0] ^ y[0]) | (x[1] ^ y[1]) | (x[2] ^ y[2])) == 0
}

#[inline(always)]
fn set_mac_words(p: *mut u8, mac: [u16; 3]) {
    store16(p, mac[0]);
    store16(p.wrapping_add(2), mac[1]);
    store16(p.wrapping_add(4), mac[2]);
}

/// The big-endian 16-bit field at `b[i..i + 2]`, as one load (`load16`):
/// header fields sit at even offsets.
#[inline(always)]
fn be16(b: &[u8], i: usize) -> u16 {
    let _ = &b[i..i + 2];
    u16::from_be(load16(b.as_ptr().wrapping_add(i)))
}

/// Returns `None` for frames on no attachment (passed untouched, uncounted),
/// else the attachment and what to do.
#[inline(always)]
fn process(ctx: &XdpContext, len: u64) -> Option<Verdict> {
    let malformed_unattributed = Some(Verdict::Drop {
        reason: DropReason::Malformed,
        row: UNATTRIBUTED_ROW,
    });

    // --- L2: Ethernet, then up to two VLAN tags (802.1Q or 802.1ad outer).
    let Some(eth) = ptr_at::<[u8; ETH_HDR_LEN]>(ctx, 0) else {
        return malformed_unattributed;
    };
    let eth = unsafe { &*eth };
    let ifindex = ctx.ingress_ifindex() as u32;
    let ethertype = be16(eth, 12);
    let (att, ethertype, l3_off, tags_in) = if ethertype != ETH_P_8021Q && ethertype != ETH_P_8021AD
    {
        // Untagged: by ifindex, from the array when the ifindex fits it.
        let att: &Attachment = if ifindex < MAX_FAST_IFINDEX {
            let att = UNTAGGED.get(ifindex)?;
            if att.valid == 0 {
                return None;
            }
            att
        } else {
            let key = AttachmentKey {
                ifindex,
                outer_vlan: 0,
                inner_vlan: 0,
            };
            unsafe { ATTACHMENTS.get(&key) }?
        };
        (att, ethertype, ETH_HDR_LEN, 0usize)
    } else {
        let Some(tag) = ptr_at::<[u8; VLAN_HDR_LEN]>(ctx, ETH_HDR_LEN) else {
            return malformed_unattributed;
        };
        let tag = unsafe { &*tag };
        let outer_vlan = be16(tag, 0) & 0x0fff;
        let mut ethertype = be16(tag, 2);
        let mut l3_off = ETH_HDR_LEN + VLAN_HDR_LEN;
        let mut tags_in = 1;
        let mut inner_vlan = 0;
        if ethertype == ETH_P_8021Q {
            let Some(tag) = ptr_at::<[u8; VLAN_HDR_LEN]>(ctx, ETH_HDR_LEN + VLAN_HDR_LEN) else {
                return malformed_unattributed;
            };
            let tag = unsafe { &*tag };
            inner_vlan = be16(tag, 0) & 0x0fff;
            ethertype = be16(tag, 2);
            l3_off = ETH_HDR_LEN + 2 * VLAN_HDR_LEN;
            tags_in = 2;
        }
        let key = AttachmentKey {
            ifindex,
            outer_vlan,
            inner_vlan,
        };
        let att: &Attachment = unsafe { ATTACHMENTS.get(&key) }?;
        (att, ethertype, l3_off, tags_in)
    };
    let rx_row = link_dir_index(att.link, Direction::Rx);
    // Always there: userspace keeps every link id below `MAX_LINKS` (were it
    // not, the frame would go to the kernel untouched, like one on no
    // attachment).
    let rx = link_row(rx_row)?;
    rx.counters.packets += 1;
    rx.counters.bytes += len;
    let drop = |reason| {
        Some(Verdict::Drop {
            reason,
            row: rx_row,
        })
    };
    let pass = Some(Verdict::Pass { row: rx_row });

    // Broadcast, multicast, another host's unicast, ARP, or not IP: the kernel's.
    if eth[0] & 1 != 0 || !mac_eq(eth.as_ptr(), att.mac.as_ptr()) {
        return pass;
    }
    // Links, their state, policers, DSCP policy, route epoch: one lookup.
    let config = CONFIG.get(0)?;

    // --- L3: check the header and find the route. The flow is hashed later,
    // only if the link choice needs it.
    let epoch = config.route_epoch;
    let v6 = match ethertype {
        ETH_P_IPV4 => false,
        ETH_P_IPV6 => true,
        // ARP and anything else that is not IP.
        _ => return pass,
    };
    let l3 = if v6 {
        lookup_v6(ctx, l3_off, att.domain, epoch, &mut rx.last_v6)
    } else {
        lookup_v4(ctx, l3_off, att.domain, epoch, &mut rx.last_v4)
    };
    let resolved = match l3 {
        L3::Forward(resolved) => resolved,
        L3::Pass => return pass,
        L3::Drop(DropReason::TtlExpired) => {
            // Answer so traceroute shows the MSEE hop (rate-limited).
            if icmp_allowed() && time_exceeded(ctx, l3_off, v6, att) {
                return Some(Verdict::TimeExceeded { row: rx_row });
            }
            return drop(DropReason::TtlExpired);
        }
        L3::Drop(reason) => return drop(reason),
    };
    let out_link_id = match choose_link(config, resolved, || flow_hash(ctx, l3_off, v6)) {
        Ok(link) => link,
        Err(reason) => return drop(reason),
    };
    let out = &config.links[link_slot(out_link_id)];

    // --- Policing: the ingress link's rx bucket, then the egress link's tx bucket.
    // The clock is read once, and only if a policer on the path needs it.
    let mut now = 0u64;
    if !police(config, rx_row, &mut rx.policer_credit_nb, len, &mut now) {
        return drop(DropReason::Policer);
    }
    let tx_row = link_dir_index(out_link_id, Direction::Tx);
    let mut tx = link_row(tx_row);
    if let Some(t) = tx.as_mut()
        && !police(config, tx_row, &mut t.policer_credit_nb, len, &mut now)
    {
        return Some(Verdict::Drop {
            reason: DropReason::Policer,
            row: tx_row,
        });
    }

    // --- Rewrite L3 in place: TTL / hop limit, DSCP per the peering's policy.
    // The peering is a `PeeringKind` (0 or 1, as userspace writes it).
    let dscp_policy = &config.dscp[att.peering as usize & (PEERING_KINDS - 1)];
    if v6 {
        let Some(ip) = ptr_at::<[u8; IPV6_HDR_LEN]>(ctx, l3_off) else {
            return drop(DropReason::Malformed);
        };
        let ip = unsafe { &mut *ip };
        ip[7] -= 1;
        let dscp = ipv6_dscp(ip);
        let new_dscp = dscp_policy[dscp as usize & 63];
        if new_dscp != dscp {
            ipv6_set_dscp(ip, new_dscp);
        }
    } else {
        let Some(ip) = ptr_at::<[u8; IPV4_MIN_HDR_LEN]>(ctx, l3_off) else {
            return drop(DropReason::Malformed);
        };
        let ip = unsafe { &mut *ip };
        ipv4_decrement_ttl(ip);
        let dscp = ip[1] >> 2;
        let new_dscp = dscp_policy[dscp as usize & 63];
        if new_dscp != dscp {
            ipv4_set_dscp(ip, new_dscp);
        }
    }

    // --- Rewrite L2: as many tags as the egress link needs, then MACs.
    let tags_out = if out.outer_vlan == 0 {
        0
    } else if out.inner_vlan == 0 {
        1
    } else {
        2
    };
    let delta = (tags_in as i32 - tags_out as i32) * VLAN_HDR_LEN as i32;
    if delta != 0 && unsafe { bpf_xdp_adjust_head(ctx.ctx, delta) } != 0 {
        return drop(DropReason::Malformed);
    }
    // A valid IP frame is at least 14 + 20 bytes, so the widest L2 header
    // (22 bytes) always fits in front of it.
    let Some(l2) = ptr_at::<[u8; ETH_HDR_LEN + 2 * VLAN_HDR_LEN]>(ctx, 0) else {
        return drop(DropReason::Malformed);
    };
    let l2 = unsafe { &mut *l2 };
    set_mac_words(l2.as_mut_ptr(), mac_words(out.dst_mac.as_ptr()));
    set_mac_words(l2[6..].as_mut_ptr(), mac_words(out.src_mac.as_ptr()));
    match tags_out {
        // Untagged in and out: the EtherType is where it was.
        0 if tags_in == 0 => {}
        0 => l2[12..14].copy_from_slice(&ethertype.to_be_bytes()),
        1 => {
            l2[12..14].copy_from_slice(&out.outer_tpid.to_be_bytes());
            l2[14..16].copy_from_slice(&out.outer_vlan.to_be_bytes());
            l2[16..18].copy_from_slice(&ethertype.to_be_bytes());
        }
        _ => {
            l2[12..14].copy_from_slice(&out.outer_tpid.to_be_bytes());
            l2[14..16].copy_from_slice(&out.outer_vlan.to_be_bytes());
            l2[16..18].copy_from_slice(&ETH_P_8021Q.to_be_bytes());
            l2[18..20].copy_from_slice(&out.inner_vlan.to_be_bytes());
            l2[20..22].copy_from_slice(&ethertype.to_be_bytes());
        }
    }
    redirect(ctx, out, tx_row, tx)
}

/// Redirect out of `out` and count the frame, as sent, on its tx row.
#[inline(always)]
fn redirect(
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

/// What the L3 stage decided.
enum L3<'a> {
    /// Forward by this route (in the ingress link's memo: see `route_v4`).
    Forward(&'a Resolved),
    /// To the kernel: the MSEE's own traffic, multicast.
    Pass,
    Drop(DropReason),
}

/// A route as the L3 stage's answer: forward by it, or why not.
#[inline(always)]
fn route_outcome(resolved: &Resolved) -> L3<'_> {
    let flags = resolved.route.flags;
    if flags & ROUTE_NONE != 0 {
        L3::Drop(DropReason::NoRoute)
    } else if flags & ROUTE_OUT_OF_REACH != 0 {
        L3::Drop(DropReason::OutOfReach)
    } else {
        L3::Forward(resolved)
    }
}

/// What a flow's hash is made of.
#[derive(Clone, Copy)]
struct Flow {
    /// IPv4: source and destination as one word; IPv6: their hash.
    addrs: u64,
    /// Transport protocol and ports.
    l4: u64,
}

impl Flow {
    #[inline(always)]
    fn hash(self) -> u32 {
        flow_finish(flow_mix(flow_mix(0, self.addrs), self.l4))
    }
}

/// The hash of the frame's flow (addresses, protocol, ports), for a link
/// choice among several links. Only then: a group of one member, such as the
/// Azure side, needs none. The header was checked by `lookup_v4`/`lookup_v6`.
#[inline(always)]
fn flow_hash(ctx: &XdpContext, l3_off: usize, v6: bool) -> u32 {
    if v6 {
        flow_hash_v6(ctx, l3_off)
    } else {
        flow_hash_v4(ctx, l3_off)
    }
}

#[inline(always)]
fn flow_hash_v4(ctx: &XdpContext, l3_off: usize) -> u32 {
    let Some(ip) = ptr_at::<[u8; IPV4_MIN_HDR_LEN]>(ctx, l3_off) else {
        return 0;
    };
    let ip = unsafe { &*ip };
    let ihl = ((ip[0] & 0x0f) as usize) * 4;
    let proto = ip[9];
    // Ports only in a first (or unfragmented) fragment.
    let mut ports = 0;
    if (proto == IPPROTO_TCP || proto == IPPROTO_UDP) && be16(ip, 6) & 0x1fff == 0 {
        if let Some(p) = ptr_at::<[u8; 4]>(ctx, l3_off + (ihl & 0x3c)) {
            ports = load32_halves(p as *const u8);
        }
    }
    Flow {
        addrs: flow_word(
            load32_halves(ip.as_ptr().wrapping_add(12)),
            load32_halves(ip.as_ptr().wrapping_add(16)),
        ),
        l4: flow_word(proto as u32, ports),
    }
    .hash()
}

/// Out of line, like `route_v6`, for the stack budget.
#[inline(never)]
fn flow_hash_v6(ctx: &XdpContext, l3_off: usize) -> u32 {
    let Some(ip) = ptr_at::<[u8; IPV6_HDR_LEN]>(ctx, l3_off) else {
        return 0;
    };
    let ip = unsafe { &*ip };
    let mut next = ip[6];
    let mut ports = 0;
    if let Some(Transport {
        off,
        proto,
        first_fragment,
    }) = walk_ext_headers(ctx, ip[6], l3_off + IPV6_HDR_LEN)
    {
        next = proto;
        // `off` comes back from a BPF subprogram without its range; bound
        // it again for the verifier (deeper transport headers go unhashed).
        let off = off as usize;
        if (proto == IPPROTO_TCP || proto == IPPROTO_UDP)
            && first_fragment != 0
            && off < MAX_L4_OFFSET
        {
            if let Some(p) = ptr_at::<[u8; 4]>(ctx, off) {
                ports = u32::from_ne_bytes(unsafe { *p });
            }
        }
    }
    Flow {
        addrs: hash_v6_addresses(ip),
        l4: flow_word(next as u32, ports),
    }
    .hash()
}

/// Validate the IPv4 header, hand the MSEE's own traffic to the kernel and
/// look the destination up in the routing domain.
#[inline(always)]
fn lookup_v4<'m>(
    ctx: &XdpContext,
    l3_off: usize,
    domain: u32,
    epoch: u64,
    memo: &'m mut RouteCacheV4,
) -> L3<'m> {
    let frame_len = ctx.data_end() - ctx.data();
    let Some(ip) = ptr_at::<[u8; IPV4_MIN_HDR_LEN]>(ctx, l3_off) else {
        return L3::Drop(DropReason::Malformed);
    };
    let ip = unsafe { &*ip };
    let ihl = ((ip[0] & 0x0f) as usize) * 4;
    let total_len = be16(ip, 2) as usize;
    if ip[0] >> 4 != 4
        || ihl < IPV4_MIN_HDR_LEN
        || total_len < ihl
        || l3_off + total_len > frame_len
    {
        return L3::Drop(DropReason::Malformed);
    }
    let dst = load32_halves(ip.as_ptr().wrapping_add(16)).to_ne_bytes();
    if dst[0] >= 224 {
        return L3::Pass;
    }
    // One lookup answers both "is it ours?" and "where does it go?".
    route_v4(domain, dst, epoch, memo);
    let resolved = &memo.resolved;
    if resolved.route.flags & ROUTE_LOCAL != 0 {
        return L3::Pass;
    }
    if ip[8] <= 1 {
        return L3::Drop(DropReason::TtlExpired);
    }
    route_outcome(resolved)
}

/// The IPv6 counterpart of `lookup_v4`, with a bounded walk of extension
/// headers (a header cut short, or claiming more than the packet holds, is
/// malformed). Inline, like `lookup_v4` (`route_v6` and the walk are the
/// parts out of line, for the stack budget).
#[inline(always)]
fn lookup_v6<'m>(
    ctx: &XdpContext,
    l3_off: usize,
    domain: u32,
    epoch: u64,
    memo: &'m mut RouteCacheV6,
) -> L3<'m> {
    let frame_len = ctx.data_end() - ctx.data();
    let Some(ip) = ptr_at::<[u8; IPV6_HDR_LEN]>(ctx, l3_off) else {
        return L3::Drop(DropReason::Malformed);
    };
    let ip = unsafe { &*ip };
    if ip[0] >> 4 != 6 || l3_off + IPV6_HDR_LEN + be16(ip, 4) as usize > frame_len {
        return L3::Drop(DropReason::Malformed);
    }
    // The destination stays in the packet: map lookups take packet pointers.
    let dst = unsafe { &*(ip.as_ptr().add(24) as *const [u8; 16]) };
    // Multicast (ND, ...) and link-local are the kernel's; so are our own.
    if dst[0] == 0xff || (dst[0] == 0xfe && dst[1] & 0xc0 == 0x80) {
        return L3::Pass;
    }
    route_v6(domain, dst, epoch, memo);
    let resolved = &memo.resolved;
    if resolved.route.flags & ROUTE_LOCAL != 0 {
        return L3::Pass;
    }
    if ip[7] <= 1 {
        return L3::Drop(DropReason::TtlExpired);
    }
    let Some(Transport { off, .. }) = walk_ext_headers(ctx, ip[6], l3_off + IPV6_HDR_LEN) else {
        return L3::Drop(DropReason::Malformed);
    };
    let off = off as usize;
    if off > l3_off + IPV6_HDR_LEN + be16(ip, 4) as usize {
        return L3::Drop(DropReason::Malformed);
    }
    route_outcome(resolved)
}

/// Hash source and destination as four 64-bit words. Out of line, like
/// `route_v6`, so `lookup_v6` stays within the BPF stack budget.
#[inline(never)]
fn hash_v6_addresses(ip: &[u8; IPV6_HDR_LEN]) -> u64 {
    let words = unsafe { &*(ip.as_ptr().add(8) as *const [[u8; 8]; 4]) };
    let mut flow = 0;
    for w in words {
        flow = flow_mix(flow, u64::from_ne_bytes(*w));
    }
    flow
}

// `cache_set_v4` and `cache_set_v6` give a subnet's hosts 64 sets of their own.
const _: () = assert!(ROUTE_CACHE_V4_SLOTS / 2 >= 64 && ROUTE_CACHE_V6_SLOTS / 2 >= 64);

/// Leave the longest-prefix match for `dst` in `domain`, and its group, in
/// `memo` (the ingress link's `LinkRow::last_v4` on this CPU): there
/// already if `dst` is the destination routed last, else found through this
/// CPU's destination cache (`through_memo`). The stages after read the
/// answer where it lies rather than a copy. (A sentinel route rather than an
/// Option: an Option's undefined payload gets spilled from an uninitialised
/// register, which the verifier refuses.)
#[inline(always)]
fn route_v4(domain: u32, dst: [u8; 4], epoch: u64, memo: &mut RouteCacheV4) {
    let key = route_key_v4(domain, dst);
    through_memo(memo, key, epoch, || {
        let set = cache_set_v4(
            u64::from_ne_bytes(key),
            (ROUTE_CACHE_V4_SLOTS / 2).trailing_zeros(),
        );
        through_cache(&ROUTE_CACHE_V4, set, epoch, key, trie_v4)
    })
}

/// Keep `memo` (an rx row's `last_v4` or `last_v6`) as it is if it holds
/// `key`, else fill it with `lookup`'s answer.
#[inline(always)]
fn through_memo<S: CacheSlot>(
    memo: &mut S,
    key: S::Key,
    epoch: u64,
    lookup: impl FnOnce() -> Resolved,
) {
    // Epoch 0: caching off (see `through_cache`); the memo then only holds
    // the answer for the frame at hand.
    if epoch != 0 && memo.holds(&key, epoch) {
        return;
    }
    *memo = S::new(key, epoch, lookup());
}

#[inline(always)]
fn trie_v4(key: &RouteKeyV4) -> Route {
    ROUTES_V4
        .get(Key::new(64, *key))
        .copied()
        .unwrap_or(NO_ROUTE)
}

/// The IPv6 counterpart of `route_v4`.
#[inline(never)]
fn route_v6(domain: u32, dst: &[u8; 16], epoch: u64, memo: &mut RouteCacheV6) {
    let key = route_key_v6(domain, *dst);
    through_memo(memo, key, epoch, || {
        let [hi, lo] = unsafe { &*(dst.as_ptr() as *const [[u8; 8]; 2]) };
        let set = cache_set_v6(
            domain,
            u64::from_ne_bytes(*hi),
            u64::from_ne_bytes(*lo),
            (ROUTE_CACHE_V6_SLOTS / 2).trailing_zeros(),
        );
        through_cache(&ROUTE_CACHE_V6, set, epoch, key, trie_v6)
    })
}

/// A slot of a destination cache (`msee_abi::RouteCacheV4`, `RouteCacheV6`).
trait CacheSlot: Copy {
    type Key: PartialEq + Copy;
    fn holds(&self, key: &Self::Key, epoch: u64) -> bool;
    fn resolved(&self) -> Resolved;
    fn epoch(&self) -> u64;
    fn new(key: Self::Key, epoch: u64, resolved: Resolved) -> Self;
}

/// Both slot types have `key`, `epoch` and `resolved`, and padding.
macro_rules! cache_slot {
    ($slot:ident, $key:ident, { $($pad:ident: $zero:expr),* }) => {
        impl CacheSlot for $slot {
            type Key = $key;
            #[inline(always)]
            fn holds(&self, key: &$key, epoch: u64) -> bool {
                self.epoch == epoch && self.key == *key
            }
            #[inline(always)]
            fn resolved(&self) -> Resolved {
                self.resolved
            }
            #[inline(always)]
            fn epoch(&self) -> u64 {
                self.epoch
            }
            #[inline(always)]
            fn new(key: $key, epoch: u64, resolved: Resolved) -> Self {
                Self { key, epoch, resolved, $($pad: $zero),* }
            }
        }
    };
}
cache_slot!(RouteCacheV4, RouteKeyV4, { _pad: 0 });
cache_slot!(RouteCacheV6, RouteKeyV6, { _pad: 0, _pad2: 0 });

/// Look `key` up in the two-way `set` of this CPU's `cache` (one map
/// element holds both ways), else in the trie (`lookup`) and `GROUPS`, and
/// keep the answer in way 0, moving the entry there to way 1 (so the older
/// of the two is the one evicted). `epoch` was read before the trie: a
/// write racing this lookup bumps it afterwards, so what gets cached here
/// is retired at once.
#[inline(always)]
fn through_cache<S: CacheSlot>(
    cache: &PerCpuArray<[S; 2]>,
    set: u32,
    epoch: u64,
    key: S::Key,
    lookup: fn(&S::Key) -> Route,
) -> Resolved {
    let Some(ways) = cache.get_ptr_mut(set) else {
        return resolve(lookup(&key));
    };
    let [w0, w1] = unsafe { &mut *ways };
    if epoch == 0 {
        return resolve(lookup(&key));
    }
    if w0.holds(&key, epoch) {
        return w0.resolved();
    }
    if w1.holds(&key, epoch) {
        return w1.resolved();
    }
    let resolved = resolve(lookup(&key));
    if w0.epoch() == epoch {
        *w1 = *w0;
    }
    *w0 = S::new(key, epoch, resolved);
    resolved
}

/// A route from the trie with a copy of its group's head (see
/// `msee_abi::CachedGroup`); routes that forward nowhere need none.
#[inline(always)]
fn resolve(route: Route) -> Resolved {
    let mut group = CachedGroup::default();
    if route.flags & (ROUTE_NONE | ROUTE_LOCAL | ROUTE_OUT_OF_REACH) == 0 {
        match GROUPS.get(route.group) {
            Some(g) => {
                group.count = g.count;
                group.members = [g.members[0], g.members[1]];
            }
            None => group.count = CACHED_GROUP_MISSING,
        }
    }
    Resolved { route, group }
}

#[inline(always)]
fn trie_v6(key: &RouteKeyV6) -> Route {
    ROUTES_V6
        .get(Key::new(32 + 128, *key))
        .copied()
        .unwrap_or(NO_ROUTE)
}

/// Where `walk_ext_headers` found the transport header. No `bool` (no
/// niche): the walk is out of line, so its return type is in the program's
/// BTF, and an `Option` of a type with a niche keeps its tag inside the
/// payload, which BTF describes as a union member at a non-zero offset.
/// The kernel refuses that, and the whole object BTF was dropped at load.
#[repr(C)]
struct Transport {
    /// Offset in the frame (a packet offset: u32 keeps the `Option` at
    /// 12 bytes on the stack).
    off: u32,
    proto: u8,
    /// 1 for a first fragment (or no fragment): the ports are there.
    first_fragment: u8,
}

/// Walk at most `MAX_EXT_HEADERS` IPv6 extension headers from `off`:
/// returns the transport protocol, its offset and whether this is a first
/// fragment, or `None` if a header is cut short. Out of line: unrolled, the
/// walk is what weighs on the stack.
#[inline(never)]
fn walk_ext_headers(ctx: &XdpContext, mut next: u8, mut off: usize) -> Option<Transport> {
    let mut first_fragment = true;
    for _ in 0..MAX_EXT_HEADERS {
        match next {
            0 | 43 | 60 => {
                let h = unsafe { &*ptr_at::<[u8; 2]>(ctx, off)? };
                next = h[0];
                off += (h[1] as usize + 1) * 8;
            }
            44 => {
                let h = unsafe { &*ptr_at::<[u8; 8]>(ctx, off)? };
                next = h[0];
                first_fragment = be16(h, 2) & 0xfff8 == 0;
                off += 8;
            }
            _ => break,
        }
    }
    Some(Transport {
        off: off as u32,
        proto: next,
        first_fragment: u8::from(first_fragment),
    })
}

/// Per-CPU ICMP error budget: `ICMP_ERRORS_PER_SEC_PER_CPU` per second.
#[inline(always)]
fn icmp_allowed() -> bool {
    let Some(slot) = ICMP_LIMIT.get_ptr_mut(0) else {
        return false;
    };
    let slot = unsafe { &mut *slot };
    let now = unsafe { bpf_ktime_get_ns() };
    if now.wrapping_sub(slot[0]) >= 1_000_000_000 {
        slot[0] = now;
        slot[1] = 0;
    }
    if slot[1] >= ICMP_ERRORS_PER_SEC_PER_CPU {
        return false;
    }
    slot[1] += 1;
    true
}

/// Rewrite the expired packet in place into an ICMP (or ICMPv6) time
/// exceeded from the MSEE's address on this attachment, back to its sender
/// on the same VLANs: cut it to its header and first 8 bytes, grow room for
/// the new headers in front, move the L2 header there, and fill in.
/// Returns false (the caller just drops) when the attachment has no address,
/// the packet is too short to quote, or IPv4 carries options.
#[inline(never)]
fn time_exceeded(ctx: &XdpContext, l3_off: usize, v6: bool, att: &Attachment) -> bool {
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
    // [new room][L2 header][quote] -> [L2 header][new headers][quote]
    let Some(front) = ptr_at::<[u8; 48 + ETH_HDR_LEN + 2 * VLAN_HDR_LEN]>(ctx, 0) else {
        return false;
    };
    let front = unsafe { &mut *front };
    let g = grow as usize;
    for i in 0..ETH_HDR_LEN + 2 * VLAN_HDR_LEN {
        front[i] = front[g + i];
    }
    front[0..6].copy_from_slice(&sender_mac);
    front[6..12].copy_from_slice(&att.mac);
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

/// Pick the link for a flow: among members whose link is up, those with the
/// best (lowest) preference; among those, the flow hash decides. Groups of
/// one and two members (a circuit's own pair of links, the Azure side:
/// nearly every group) take a straight-line path on the destination cache's
/// copy of the group; larger groups the general loop on `GROUPS`, which
/// picks the same link for the same flow. Fails with no route (no such
/// group) or link down (no member up).
#[inline(always)]
fn choose_link(
    config: &MseeConfig,
    resolved: &Resolved,
    flow_hash: impl FnOnce() -> u32,
) -> Result<u32, DropReason> {
    let [a, b] = resolved.group.members;
    match resolved.group.count {
        1 => link_up(config, a.link)
            .then_some(a.link)
            .ok_or(DropReason::LinkDown),
        2 => match (link_up(config, a.link), link_up(config, b.link)) {
            (true, true) if a.preference == b.preference => {
                Ok([a.link, b.link][flow_pick(flow_hash(), 2) as usize & 1])
            }
            (true, true) if b.preference < a.preference => Ok(b.link),
            (true, _) => Ok(a.link),
            (false, true) => Ok(b.link),
            (false, false) => Err(DropReason::LinkDown),
        },
        CACHED_GROUP_MISSING => Err(DropReason::NoRoute),
        _ => {
            let Some(group) = GROUPS.get(resolved.route.group) else {
                return Err(DropReason::NoRoute);
            };
            choose_link_among(config, group, flow_hash()).ok_or(DropReason::LinkDown)
        }
    }
}

#[inline(always)]
fn link_up(config: &MseeConfig, link: u32) -> bool {
    config.link_up[link_slot(link)] == LINK_IS_UP
}

/// `choose_link` for any number of members.
#[inline(never)]
fn choose_link_among(config: &MseeConfig, group: &NextHopGroup, hash: u32) -> Option<u32> {
    let count = (group.count as usize).min(MAX_GROUP_MEMBERS);
    let mut best = u32::MAX;
    // Bit i: member i is up and has the best preference so far.
    let mut chosen = 0u32;
    let mut candidates = 0u32;
    for i in 0..MAX_GROUP_MEMBERS {
        if i >= count {
            break;
        }
        let m = group.members[i];
        if !link_up(config, m.link) {
            continue;
        }
        if m.preference < best {
            best = m.preference;
            chosen = 1 << i;
            candidates = 1;
        } else if m.preference == best {
            chosen |= 1 << i;
            candidates += 1;
        }
    }
    let mut pick = flow_pick(hash, candidates);
    for i in 0..MAX_GROUP_MEMBERS {
        if chosen & (1 << i) != 0 {
            if pick == 0 {
                return Some(group.members[i].link);
            }
            pick -= 1;
        }
    }
    None
}

/// Token bucket per (link, direction), shared by all CPUs, in nanobytes
/// (see `msee_abi::PolicerConfig`): a frame costs len * 1e9, a nanosecond
/// refills `rate`; exact, and free of divisions. Each CPU takes credit from
/// the bucket a chunk at a time into its own slot and spends it there: most
/// frames cost a read of the config and a subtraction from the credit in this
/// CPU's row (`local`, `LinkRow::policer_credit_nb`), no atomics and no
/// clock read (inline here; taking a chunk is `police_take_chunk`, out of
/// line). Returns whether the frame conforms.
#[inline(always)]
fn police(config: &MseeConfig, index: u32, local: &mut u64, len: u64, clock: &mut u64) -> bool {
    let cfg = &config.policers[link_dir_slot(index)];
    if cfg.rate_bytes_per_sec == 0 {
        return true;
    }
    let cost = policer_cost_nb(len);
    if *local >= cost {
        *local -= cost;
        return true;
    }
    police_take_chunk(index, cfg, local, cost, clock)
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

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";
