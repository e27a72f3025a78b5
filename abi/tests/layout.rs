//! The ABI is shared with kernel code compiled separately: pin every size and offset.
use core::mem::{offset_of, size_of};
use msee_abi::*;

#[test]
fn port_config_layout() {
    assert_eq!(size_of::<PortConfig>(), 16);
    assert_eq!(offset_of!(PortConfig, slot), 0);
    assert_eq!(offset_of!(PortConfig, role), 4);
    assert_eq!(offset_of!(PortConfig, mac), 8);
}

#[test]
fn route_and_nexthop_layout() {
    assert_eq!(size_of::<RouteV4Key>(), 4);
    assert_eq!(size_of::<RouteV4>(), 4);
    assert_eq!(size_of::<NextHop>(), 24);
    assert_eq!(offset_of!(NextHop, ifindex), 0);
    assert_eq!(offset_of!(NextHop, slot), 4);
    assert_eq!(offset_of!(NextHop, src_mac), 8);
    assert_eq!(offset_of!(NextHop, dst_mac), 14);
    assert_eq!(offset_of!(NextHop, flags), 20);
}

#[test]
fn port_stats_layout() {
    assert_eq!(size_of::<PortStats>(), 8 * (5 + DROP_REASONS));
    assert_eq!(offset_of!(PortStats, rx_packets), 0);
    assert_eq!(offset_of!(PortStats, pass_packets), 16);
    assert_eq!(offset_of!(PortStats, tx_packets), 24);
    assert_eq!(offset_of!(PortStats, drops), 40);
}

#[test]
fn enums_round_trip() {
    for role in PortRole::ALL {
        assert_eq!(PortRole::from_u32(role as u32), Some(role));
    }
    assert_eq!(PortRole::from_u32(3), None);
    for (i, reason) in DropReason::ALL.iter().enumerate() {
        assert_eq!(*reason as usize, i);
    }
}

#[test]
fn stats_fold() {
    let mut a = PortStats {
        rx_packets: 1,
        drops: [1, 2, 3, 4],
        ..Default::default()
    };
    let b = PortStats {
        rx_packets: 2,
        tx_bytes: 7,
        drops: [1, 1, 1, 1],
        ..Default::default()
    };
    a.add(&b);
    assert_eq!(a.rx_packets, 3);
    assert_eq!(a.tx_bytes, 7);
    assert_eq!(a.dropped(DropReason::NoNeighbour), 5);
}

#[test]
fn txgen_config_layout() {
    use msee_abi::engine::{
        MAX_PAYLOAD_OFFSET, PAYLOAD_LEN, PAYLOAD_SEQ, PAYLOAD_STREAM, PAYLOAD_TS, TxgenConfig,
    };
    assert_eq!(core::mem::size_of::<TxgenConfig>(), 16);
    assert_eq!(core::mem::offset_of!(TxgenConfig, payload_off), 0);
    assert_eq!(core::mem::offset_of!(TxgenConfig, csum_off), 4);
    assert_eq!(core::mem::offset_of!(TxgenConfig, stream_base), 8);
    // stream u16 | seq u64 | time u64, packed back to back.
    assert_eq!((PAYLOAD_STREAM, PAYLOAD_SEQ, PAYLOAD_TS), (0, 2, 10));
    assert_eq!(PAYLOAD_TS + 8, PAYLOAD_LEN);
    // The deepest header stack (Ethernet + QinQ + IPv6 + UDP) fits the bound.
    assert!(14 + 8 + 40 + 8 <= MAX_PAYLOAD_OFFSET as usize);
}
