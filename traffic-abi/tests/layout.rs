//! The ABI is shared with kernel code compiled separately: pin every size and offset.
use core::mem::{offset_of, size_of};
use traffic_abi::*;

#[test]
fn txgen_config_layout() {
    assert_eq!(size_of::<TxgenConfig>(), 32);
    assert_eq!(offset_of!(TxgenConfig, payload_off), 0);
    assert_eq!(offset_of!(TxgenConfig, csum_off), 4);
    assert_eq!(offset_of!(TxgenConfig, stream_base), 8);
    assert_eq!(offset_of!(TxgenConfig, destinations), 12);
    assert_eq!(offset_of!(TxgenConfig, dst_off), 16);
    assert_eq!(offset_of!(TxgenConfig, dst_len), 20);
    assert_eq!(offset_of!(TxgenConfig, ip_csum_off), 24);
    assert_eq!(size_of::<TxgenDestination>(), 24);
    assert_eq!(offset_of!(TxgenDestination, csum_delta), 16);
    assert_eq!(offset_of!(TxgenDestination, vlan), 20);
    // stream u16 | seq u64 | time u64, packed back to back.
    assert_eq!((PAYLOAD_STREAM, PAYLOAD_SEQ, PAYLOAD_TS), (0, 2, 10));
    assert_eq!(PAYLOAD_TS + 8, PAYLOAD_LEN);
    // The deepest header stack (Ethernet + QinQ + IPv6 + UDP) fits the bound.
    assert!(14 + 8 + 40 + 8 <= MAX_PAYLOAD_OFFSET as usize);
}

#[test]
fn engine_filter_and_window_layout() {
    assert_eq!(size_of::<TestFrameFilter>(), 8);
    assert_eq!(offset_of!(TestFrameFilter, port_lo), 4);
    assert_eq!(offset_of!(TestFrameFilter, port_hi), 6);
    assert_eq!(size_of::<BlackholeWindow>(), 16);
    assert_eq!(offset_of!(BlackholeWindow, until_ns), 8);
    assert_eq!(size_of::<TestfwdLink>(), 12);
    assert_eq!(offset_of!(TestfwdLink, src_mac), 6);
}

#[test]
fn vlan_pop_layout() {
    use traffic_abi::vlan_pop::*;
    assert_eq!(size_of::<PopKey>(), 8);
    assert_eq!(offset_of!(PopKey, ifindex), 0);
    assert_eq!(offset_of!(PopKey, outer_vid), 4);
    assert_eq!(offset_of!(PopKey, inner_vid), 6);
    assert_eq!(size_of::<PopCounters>(), 8 * 4);
    assert_eq!(offset_of!(PopCounters, malformed), 24);
    // Map names fit the kernel's 15 characters.
    for name in MAPS {
        assert!(name.len() <= 15, "{name}");
    }
}

#[test]
fn vlan_switch_layout() {
    use traffic_abi::vlan_switch::*;
    assert_eq!(size_of::<SwitchAccess>(), 16);
    assert_eq!(offset_of!(SwitchAccess, trunk), 0);
    assert_eq!(offset_of!(SwitchAccess, tags), 8);
    assert_eq!(size_of::<SwitchCounters>(), 8 * 4);
    assert_eq!(offset_of!(SwitchCounters, malformed), 24);
    for name in MAPS {
        assert!(name.len() <= 15, "{name}");
    }
}
