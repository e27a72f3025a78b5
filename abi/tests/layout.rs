//! The ABI is shared with kernel code compiled separately: pin every size and offset.
use core::mem::{offset_of, size_of};
use msee_abi::*;

#[test]
fn attachment_layout() {
    assert_eq!(size_of::<AttachmentKey>(), 8);
    assert_eq!(offset_of!(AttachmentKey, outer_vlan), 4);
    assert_eq!(offset_of!(AttachmentKey, inner_vlan), 6);
    assert_eq!(size_of::<Attachment>(), 44);
    assert_eq!(offset_of!(Attachment, local_v4), 24);
    assert_eq!(offset_of!(Attachment, local_v6), 28);
    assert_eq!(offset_of!(Attachment, link), 0);
    assert_eq!(offset_of!(Attachment, domain), 4);
    assert_eq!(offset_of!(Attachment, circuit), 8);
    assert_eq!(offset_of!(Attachment, peering), 12);
    assert_eq!(offset_of!(Attachment, role), 13);
    assert_eq!(offset_of!(Attachment, valid), 14);
    assert_eq!(offset_of!(Attachment, mac), 16);
}

#[test]
fn link_layout() {
    assert_eq!(size_of::<Link>(), 28);
    assert_eq!(offset_of!(Link, ifindex), 0);
    assert_eq!(offset_of!(Link, outer_vlan), 4);
    assert_eq!(offset_of!(Link, inner_vlan), 6);
    assert_eq!(offset_of!(Link, outer_tpid), 8);
    assert_eq!(offset_of!(Link, role), 10);
    assert_eq!(offset_of!(Link, src_mac), 12);
    assert_eq!(offset_of!(Link, dst_mac), 18);
    assert_eq!(offset_of!(Link, circuit), 24);
}

#[test]
fn group_and_route_layout() {
    assert_eq!(size_of::<GroupMember>(), 8);
    assert_eq!(size_of::<NextHopGroup>(), 4 + 8 * MAX_GROUP_MEMBERS);
    assert_eq!(offset_of!(NextHopGroup, members), 4);
    assert_eq!(size_of::<Route>(), 8);
    assert_eq!(size_of::<RouteKeyV4>(), 8);
    assert_eq!(size_of::<RouteKeyV6>(), 20);
    assert_eq!(
        route_key_v4(0x0102_0304, [10, 1, 0, 0]),
        [1, 2, 3, 4, 10, 1, 0, 0]
    );
    let mut v6 = [0u8; 16];
    v6[0] = 0x20;
    v6[15] = 1;
    let k = route_key_v6(7, v6);
    assert_eq!(&k[..4], &[0, 0, 0, 7]);
    assert_eq!(&k[4..], &v6);
}

#[test]
fn route_cache_layout() {
    assert_eq!(size_of::<CachedGroup>(), 20);
    assert_eq!(offset_of!(CachedGroup, members), 4);
    // Two ways of a set are one map element: 96 and 128 bytes.
    assert_eq!(size_of::<RouteCacheV4>(), 48);
    assert_eq!(offset_of!(RouteCacheV4, epoch), 8);
    assert_eq!(size_of::<Resolved>(), 28);
    assert_eq!(offset_of!(Resolved, group), 8);
    assert_eq!(offset_of!(RouteCacheV4, resolved), 16);
    assert_eq!(size_of::<RouteCacheV6>(), 64);
    assert_eq!(offset_of!(RouteCacheV6, epoch), 24);
    assert_eq!(offset_of!(RouteCacheV6, resolved), 32);
    assert!(ROUTE_CACHE_V4_SLOTS.is_power_of_two());
    assert!(ROUTE_CACHE_V6_SLOTS.is_power_of_two());
    assert_eq!(ROUTE_NONE & (ROUTE_LOCAL | ROUTE_OUT_OF_REACH), 0);
}

#[test]
fn policer_and_counter_layout() {
    assert_eq!(size_of::<PolicerConfig>(), 32);
    assert_eq!(offset_of!(PolicerConfig, chunk_nb), 24);
    assert_eq!(offset_of!(PolicerConfig, burst_nb), 8);
    assert_eq!(offset_of!(PolicerConfig, refill_cap_ns), 16);
    assert_eq!(size_of::<PolicerState>(), 16);
    assert_eq!(offset_of!(PolicerState, last_ns), 8);
    assert_eq!(size_of::<LinkCounters>(), 8 * (4 + DROP_REASONS));
    assert_eq!(offset_of!(LinkCounters, to_kernel), 16);
    assert_eq!(offset_of!(LinkCounters, icmp_errors), 24);
    assert_eq!(offset_of!(LinkCounters, drops), 32);
    assert_eq!(offset_of!(LinkRow, counters), 8);
    assert_eq!(
        size_of::<LinkRow>(),
        8 + size_of::<LinkCounters>() + size_of::<RouteCacheV4>() + size_of::<RouteCacheV6>()
    );
    assert_eq!(offset_of!(LinkRow, last_v4), 8 + size_of::<LinkCounters>());
    assert_eq!(
        offset_of!(LinkRow, last_v6),
        8 + size_of::<LinkCounters>() + size_of::<RouteCacheV4>()
    );
}

#[test]
fn config_layout() {
    assert_eq!(offset_of!(MseeConfig, route_epoch), 0);
    assert_eq!(offset_of!(MseeConfig, dscp), 8);
    assert_eq!(offset_of!(MseeConfig, link_up), 8 + 64 * PEERING_KINDS);
    assert_eq!(offset_of!(MseeConfig, _pad), 136 + 4 * MAX_LINKS as usize);
    assert_eq!(offset_of!(MseeConfig, links), 4288);
    assert_eq!(size_of::<DoubleBuffered<Link>>(), 64);
    assert_eq!(offset_of!(DoubleBuffered<Link>, active), 0);
    assert_eq!(offset_of!(DoubleBuffered<Link>, copies), 8);
    assert_eq!(
        offset_of!(MseeConfig, policers),
        4288 + 64 * MAX_LINKS as usize
    );
    assert_eq!(size_of::<DoubleBuffered<PolicerConfig>>(), 72);
    assert_eq!(offset_of!(DoubleBuffered<PolicerConfig>, copies), 8);
    assert_eq!(size_of::<MseeConfig>(), 69824 + 72 * 2 * MAX_LINKS as usize);
    // A link's index and both copies share one cache line.
    assert_eq!(offset_of!(MseeConfig, links) % 64, 0);
    // The program reads MACs as 16-bit words: every link's MACs sit at
    // even offsets of the (page-aligned) value, in both copies.
    assert_eq!(size_of::<Link>() % 2, 0);
    assert_eq!(offset_of!(Link, src_mac) % 2, 0);
    assert_eq!(offset_of!(Link, dst_mac) % 2, 0);
    assert_eq!(offset_of!(MseeConfig, policers) % 8, 0);
    assert_eq!(PeeringKind::Microsoft as usize + 1, PEERING_KINDS);
}

#[test]
fn the_current_copy_is_the_one_active_names() {
    let mut entry = DoubleBuffered {
        active: 0,
        _pad: 0,
        copies: [1u64, 2],
    };
    assert_eq!(*entry.current(), 1);
    entry.active = 1;
    assert_eq!(*entry.current(), 2);
}

#[test]
fn enums_and_indices() {
    for role in LinkRole::ALL {
        assert_eq!(LinkRole::from_u8(role as u8), Some(role));
    }
    assert_eq!(LinkRole::from_u8(3), None);
    for (i, reason) in DropReason::ALL.iter().enumerate() {
        assert_eq!(*reason as usize, i);
    }
    assert_eq!(link_dir_index(5, Direction::Rx), 10);
    assert_eq!(link_dir_index(5, Direction::Tx), 11);
    assert_eq!(
        link_dir_index(MAX_LINKS - 1, Direction::Tx) + 1,
        UNATTRIBUTED_ROW
    );
    assert_eq!(UNATTRIBUTED_ROW + 1, COUNTER_ROWS);
}

#[test]
fn dscp_policy() {
    for d in 0..64u8 {
        assert_eq!(PeeringKind::Private.rewrite_dscp(d), 0);
        let kept = matches!(d, 46 | 34 | 18 | 10 | 0);
        assert_eq!(
            PeeringKind::Microsoft.rewrite_dscp(d) == d,
            kept,
            "dscp {d}"
        );
    }
}

#[test]
fn counters_fold() {
    let mut a = LinkCounters {
        packets: 1,
        drops: [1, 2, 3, 4, 5, 6],
        ..Default::default()
    };
    let b = LinkCounters {
        packets: 2,
        bytes: 7,
        drops: [1; DROP_REASONS],
        ..Default::default()
    };
    a.add(&b);
    assert_eq!(a.packets, 3);
    assert_eq!(a.bytes, 7);
    assert_eq!(a.dropped(DropReason::Policer), 7);
    assert_eq!(a.total_drops(), 27);
}

#[test]
fn vlan_shim_layout() {
    use msee_abi::vlan::*;
    assert_eq!(size_of::<VlanTags>(), 8);
    assert_eq!(offset_of!(VlanTags, outer_tpid), 0);
    assert_eq!(offset_of!(VlanTags, outer_vid), 2);
    assert_eq!(offset_of!(VlanTags, inner_vid), 4);
    assert_eq!(size_of::<EgressKeyV4>(), 8);
    assert_eq!(size_of::<EgressKeyV6>(), 20);
    assert_eq!(
        egress_key_v4(0x0102_0304, [192, 168, 100, 128]),
        [1, 2, 3, 4, 192, 168, 100, 128]
    );
    let k = egress_key_v6(7, [0xfd; 16]);
    assert_eq!(&k[..4], &[0, 0, 0, 7]);
    assert_eq!(&k[4..], &[0xfd; 16]);
    assert_eq!(size_of::<PushCounters>(), 8 * 6);
    assert_eq!(offset_of!(PushCounters, tagged), 0);
    assert_eq!(offset_of!(PushCounters, dropped), 40);
    // Counter rows: one per small ifindex, one shared by the rest.
    assert_eq!(counter_row(5), 5);
    assert_eq!(counter_row(MAX_FAST_IFINDEX), MAX_FAST_IFINDEX);
    assert_eq!(counter_row(u32::MAX), COUNTER_ROWS - 1);
    // Tag stacks.
    let t = VlanTags::dot1q(100);
    assert_eq!(
        (t.outer_tpid, t.outer_vid, t.inner_vid, t.count()),
        (ETH_P_8021Q, 100, 0, 1)
    );
    let t = VlanTags::qinq(200, 10);
    assert_eq!((t.outer_tpid, t.count()), (ETH_P_8021AD, 2));
    assert_eq!(VlanTags::double_dot1q(200, 10).outer_tpid, ETH_P_8021Q);
    // Map names fit the kernel's 15 characters.
    for name in PUSH_MAPS {
        assert!(name.len() <= 15, "{name}");
    }
}
