//! The map ABI of the test tooling's kernel programs (`traffic-ebpf`):
//! the packet engine's `xsk`, `lossy`, `txgen`, `blackhole_tc` and
//! `testfwd`, the `baseline` forwarder, `vlan_pop`, the customer side's
//! VLAN shim, and `vlan_switch`, the lab's provider network. Kept apart from `msee-abi`, which is the product's (`msee`
//! and `vlan_push`) alone.
//!
//! Keys and values are `#[repr(C)]` with explicit padding, so the kernel
//! programs and userspace agree byte for byte; `tests/layout.rs` pins them.
#![no_std]

pub const XSK_PROGRAM: &str = "xsk";
pub const LOSSY_PROGRAM: &str = "lossy";
pub const TXGEN_PROGRAM: &str = "txgen";

pub const BLACKHOLE_TC_PROGRAM: &str = "blackhole_tc";
pub const TESTFWD_PROGRAM: &str = "testfwd";

/// XSKMAP of the `xsk` program: index = rx queue.
pub const XSKS: &str = "XSKS";
pub const MAX_QUEUES: u32 = 64;

/// `xsk`: Array<TestFrameFilter>[1]. All zero (as loaded) = every frame
/// of a queue with a socket goes to the socket, untouched.
pub const XSK_CONFIG: &str = "XSK_CONFIG";
/// `xsk`: PerCpuArray<u64>[XSK_STATS_LEN], indexed by the `XSK_STAT_*`.
pub const XSK_STATS: &str = "XSK_STATS";
/// Frames handed to the socket of their queue.
pub const XSK_STAT_TO_SOCKET: u32 = 0;
/// Frames for a socket on a queue that has none (passed to the kernel).
pub const XSK_STAT_NO_SOCKET: u32 = 1;
/// Frames the filter passed to the kernel (not test frames).
pub const XSK_STAT_PASSED: u32 = 2;
pub const XSK_STATS_LEN: u32 = 3;

/// `TestFrameFilter::flags`: only UDP (over IPv4 or IPv6, behind up to
/// two VLAN tags) to a destination port in `port_lo..=port_hi` is a test
/// frame; everything else (ARP, ND, TCP/179, UDP/3784, ...) is the
/// kernel's.
pub const FILTER_UDP_PORTS: u32 = 1;
/// `TestFrameFilter::flags` (`xsk` only): prepend `RX_META_LEN` bytes of
/// XDP metadata holding `bpf_ktime_get_ns()` (native endian) to frames
/// sent to a socket: the receive time, taken in the kernel.
pub const FILTER_RX_TIMESTAMP: u32 = 2;
pub const RX_META_LEN: usize = 8;

/// Which frames are test frames (`xsk`, `lossy`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TestFrameFilter {
    pub flags: u32,
    pub port_lo: u16,
    pub port_hi: u16,
}

/// `lossy`: Array<u64>[1], drop every k-th frame (0 = drop nothing).
pub const LOSSY_EVERY: &str = "LOSSY_EVERY";
/// `lossy`: PerCpuArray<u64>[LOSSY_STATS_LEN], indexed by `LOSSY_STAT_*`.
pub const LOSSY_STATS: &str = "LOSSY_STATS";
/// UDP frames (test frames, if the filter is on) seen.
pub const LOSSY_STAT_SEEN: u32 = 0;
/// Of those, dropped as every k-th.
pub const LOSSY_STAT_DROPPED: u32 = 1;
/// Frames of any kind dropped by the black hole.
pub const LOSSY_STAT_BLACKHOLE: u32 = 2;
/// Of those, UDP frames (test frames, if the filter is on).
pub const LOSSY_STAT_BLACKHOLE_TEST: u32 = 3;
pub const LOSSY_STATS_LEN: u32 = 4;
/// `lossy`: ProgramArray[1], the program that gets frames not dropped.
pub const LOSSY_NEXT: &str = "LOSSY_NEXT";
/// `lossy`: Array<TestFrameFilter>[1], which frames count as UDP test
/// frames for `LOSSY_EVERY` (all zero = any UDP).
pub const LOSSY_FILTER: &str = "LOSSY_FILTER";
/// `lossy`: Array<BlackholeWindow>[1], the ingress black hole.
pub const LOSSY_BLACKHOLE: &str = "LOSSY_BLACKHOLE";

/// A black hole drops every frame (any protocol) processed at a
/// CLOCK_MONOTONIC time `t` with `from_ns <= t < until_ns`. All zero =
/// off, without reading the clock. Userspace schedules a switch a
/// little ahead (`from_ns` = now + lead), so ingress and egress, on every
/// CPU, switch at one known instant.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BlackholeWindow {
    pub from_ns: u64,
    pub until_ns: u64,
}

/// `blackhole_tc` (tcx ingress or egress): Array<BlackholeWindow>[1].
pub const BLACKHOLE_WINDOW: &str = "BLACKHOLE_WINDOW";
/// `blackhole_tc`: PerCpuArray<u64>[BLACKHOLE_STATS_LEN]: [0] frames
/// seen while the window was set, [1] dropped.
pub const BLACKHOLE_STATS: &str = "BLACKHOLE_STATS";
pub const BLACKHOLE_STAT_SEEN: u32 = 0;
pub const BLACKHOLE_STAT_DROPPED: u32 = 1;
pub const BLACKHOLE_STATS_LEN: u32 = 2;

/// `testfwd` (a tiny forwarder for engine tests): DevMap[TESTFWD_LINKS],
/// the egress interfaces.
pub const TESTFWD_OUT: &str = "TESTFWD_OUT";
pub const TESTFWD_LINKS: u32 = 4;
/// `testfwd`: Array<TestfwdLink>[TESTFWD_LINKS], MACs per egress slot.
pub const TESTFWD_MACS: &str = "TESTFWD_MACS";
/// `testfwd`: Array<u32>[TESTFWD_FLOWS]: egress slot of the UDP flows
/// whose destination port modulo TESTFWD_FLOWS is the index;
/// `TESTFWD_DROP` drops them.
pub const TESTFWD_FLOW: &str = "TESTFWD_FLOW";
pub const TESTFWD_FLOWS: u32 = 256;
pub const TESTFWD_DROP: u32 = u32::MAX;
/// `testfwd`: Array<TestFrameFilter>[1], the UDP ports it forwards
/// (all zero = any UDP); other frames go to the kernel.
pub const TESTFWD_FILTER: &str = "TESTFWD_FILTER";
/// `testfwd`: PerCpuArray<u64>[TESTFWD_LINKS + 1], frames sent to each
/// slot, and [TESTFWD_LINKS] dropped.
pub const TESTFWD_STATS: &str = "TESTFWD_STATS";

/// MACs written into frames leaving by one `testfwd` slot.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TestfwdLink {
    pub dst_mac: [u8; 6],
    pub src_mac: [u8; 6],
}

const _: () = {
    assert!(size_of::<TestFrameFilter>() == 8);
    assert!(size_of::<BlackholeWindow>() == 16);
    assert!(size_of::<TestfwdLink>() == 12);
};

/// `txgen`: Array<TxgenConfig>[1].
pub const TXGEN_CONFIG: &str = "TXGEN_CONFIG";
/// `txgen`: DevMap[1], slot 0 = egress interface.
pub const TXGEN_TX: &str = "TXGEN_TX";
/// `txgen`: PerCpuArray<u64>[1], the next sequence number of this CPU.
pub const TXGEN_SEQ: &str = "TXGEN_SEQ";
/// `txgen`: Array<[u8; TXGEN_PRISTINE_LEN]>[1], the frame's first bytes
/// as generated (headers and the initial payload, zero-padded). Live
/// frames are recycled without being reset, and a forwarding program
/// downstream (MAC rewrite, TTL) may have changed them in place: `txgen`
/// restores the headers from here on every run.
pub const TXGEN_PRISTINE: &str = "TXGEN_PRISTINE";
pub const TXGEN_PRISTINE_LEN: usize = 152;

/// Test payload at the start of the UDP payload, big endian:
/// stream id (u16), sequence (u64), transmit time (u64, CLOCK_MONOTONIC ns).
/// 18 bytes so a 64-byte IPv4 frame (60 bytes without FCS) carries it.
pub const PAYLOAD_LEN: usize = 18;
pub const PAYLOAD_STREAM: usize = 0;
pub const PAYLOAD_SEQ: usize = 2;
pub const PAYLOAD_TS: usize = 10;
/// Largest offset of the payload in a frame (Ethernet + 2 tags + IPv6 + UDP
/// is 70): a bound the verifier can check.
pub const MAX_PAYLOAD_OFFSET: u32 = 128;

/// How `txgen` stamps a frame.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TxgenConfig {
    /// Offset of the test payload from the start of the frame.
    pub payload_off: u32,
    /// Offset of the UDP checksum, or 0 to leave it alone (IPv4 with
    /// checksum 0).
    pub csum_off: u32,
    /// Stream id = stream_base + CPU number.
    pub stream_base: u32,
    /// Destinations to spread the frames over: frame number `sequence`
    /// goes to `TXGEN_DESTINATIONS[sequence % destinations]`, both
    /// checksums updated (0 or 1: every frame to the template's own).
    pub destinations: u32,
    /// Offset of the destination address (used only with destinations > 1).
    pub dst_off: u32,
    /// Length of the destination address: 4 (IPv4) or 16 (IPv6).
    pub dst_len: u32,
    /// Offset of the IPv4 header checksum (IPv4 only).
    pub ip_csum_off: u32,
    /// Offset of the outer VLAN tag's TCI whose VLAN ID each destination
    /// sets (`TxgenDestination::vlan`), or 0: the template's tags stay.
    pub vlan_off: u32,
}

/// Most destinations `txgen` spreads over (its table is sized to the
/// list, 24 bytes an entry).
pub const MAX_TXGEN_DESTINATIONS: u32 = 1 << 20;

const _: () = assert!(size_of::<TxgenConfig>() == 32);

/// `txgen`: Array<TxgenDestination>[destinations], sized at load time.
pub const TXGEN_DESTINATIONS: &str = "TXGEN_DESTINATIONS";

/// One destination of `txgen`'s spread traffic.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TxgenDestination {
    /// The address, network order, in the first 4 (IPv4) or 16 bytes.
    pub addr: [u8; 16],
    /// One's complement sum of the template's address words, inverted,
    /// and this address's words, folded to 16 bits: what both checksums
    /// change by when the template's address becomes this one (RFC 1624).
    pub csum_delta: u32,
    /// The outer VLAN ID frames to this destination carry (with
    /// `TxgenConfig::vlan_off`): traffic spread over many attachments.
    pub vlan: u16,
    pub _pad: u16,
}

const _: () = assert!(size_of::<TxgenDestination>() == 24);

/// `baseline`: the least an XDP forwarder can do, the yardstick the
/// benchmarks measure `msee` against.
pub mod baseline {
    pub const PROGRAM: &str = "baseline";
    /// `baseline`: DevMapHash, ingress ifindex -> egress port (as `msee`'s
    /// `TX_PORTS`, and as large).
    pub const TX: &str = "TX";
    pub const MAX_PORTS: u32 = msee_abi::MAX_PORTS;
}

/// `fibfwd`: the kernel-FIB forwarder (`bpf_fib_lookup`, as xdp-tools'
/// `xdp-forward`), the second yardstick the benchmarks measure `msee`
/// against.
pub mod fibfwd {
    pub const PROGRAM: &str = "fibfwd";
    /// DevMapHash, egress ifindex -> that interface (every port it may
    /// forward out of).
    pub const TX: &str = "FIBFWD_TX";
    /// Array<FibfwdConfig>[1].
    pub const CONFIG: &str = "FIBFWD_CONFIG";
    pub const MAX_PORTS: u32 = msee_abi::MAX_PORTS;

    /// How `fibfwd` asks the kernel.
    #[repr(C)]
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    pub struct FibfwdConfig {
        /// 0: the kernel's usual lookup (policy rules, then the main
        /// table); else this table alone (`BPF_FIB_LOOKUP_DIRECT |
        /// BPF_FIB_LOOKUP_TBID`).
        pub table: u32,
    }

    const _: () = assert!(size_of::<FibfwdConfig>() == 4);
}

/// `vlan_pop` (XDP, for a customer side without VLANs, like the lab's
/// customer router): pops the tag stacks listed in `VLAN_ACCEPT` and drops
/// (and counts) every other tagged frame. The other half of a customer's
/// shim is the product's `vlan_push` (see `msee_abi::vlan`).
pub mod vlan_pop {
    pub const PROGRAM: &str = "vlan_pop";

    /// HashMap<PopKey, VlanTags>, the tag stacks accepted per port.
    pub const ACCEPT: &str = "VLAN_ACCEPT";
    /// PerCpuArray<PopCounters>, row = `msee_abi::vlan::counter_row(ifindex)`.
    pub const STATS: &str = "VLAN_POP_STATS";
    pub const MAPS: [&str; 2] = [ACCEPT, STATS];

    pub const MAX_ACCEPT: u32 = 4096;

    /// `VLAN_ACCEPT` key: a port and the VLAN ids of a tag stack (inner 0
    /// for a single tag). The value's `outer_tpid` must match the frame's.
    #[repr(C)]
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
    pub struct PopKey {
        pub ifindex: u32,
        pub outer_vid: u16,
        pub inner_vid: u16,
    }

    /// `VLAN_POP_STATS` value: what `vlan_pop` did with received frames.
    #[repr(C)]
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
    pub struct PopCounters {
        /// An accepted tag stack, popped and passed to the kernel.
        pub popped: u64,
        /// Untagged: passed unchanged.
        pub untagged: u64,
        /// A tag stack not accepted on the port (or the wrong TPID): dropped.
        pub unknown: u64,
        /// Cut short inside its tags: dropped.
        pub malformed: u64,
    }

    impl PopCounters {
        pub fn add(&mut self, o: &PopCounters) {
            self.popped += o.popped;
            self.untagged += o.untagged;
            self.unknown += o.unknown;
            self.malformed += o.malformed;
        }
    }

    const _: () = {
        assert!(size_of::<PopKey>() == 8);
        assert!(size_of::<PopCounters>() == 32);
    };
}

/// `vlan_switch` (XDP): the lab's provider network, a VLAN cross-connect
/// between each access port (a customer link, untagged) and a trunk (the
/// MSEE's port, tagged).
pub mod vlan_switch {
    use msee_abi::vlan::VlanTags;

    pub const PROGRAM: &str = "vlan_switch";
    /// HashMap<u32, SwitchAccess>, by access port ifindex.
    pub const ACCESS: &str = "SWITCH_ACCESS";
    /// HashMap<PopKey, u32>: a trunk's tag stack -> its access port.
    pub const TRUNK: &str = "SWITCH_TRUNK";
    /// DevMapHash of every port it redirects to.
    pub const PORTS: &str = "SWITCH_PORTS";
    /// PerCpuArray<SwitchCounters>, one row.
    pub const STATS: &str = "SWITCH_STATS";
    pub const MAPS: [&str; 4] = [ACCESS, TRUNK, PORTS, STATS];
    pub const MAX_PORTS: u32 = 4096;

    /// `SWITCH_ACCESS` value: where an access port's frames go, with which
    /// tags.
    #[repr(C)]
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
    pub struct SwitchAccess {
        pub trunk: u32,
        pub _pad: u32,
        pub tags: VlanTags,
    }

    /// `SWITCH_STATS` value.
    #[repr(C)]
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
    pub struct SwitchCounters {
        /// Tagged and sent to the trunk.
        pub to_trunk: u64,
        /// Untagged and sent to the access port.
        pub to_access: u64,
        /// On a trunk, with a tag stack no access port has: dropped.
        pub unknown: u64,
        /// Cut short, or the tags could not be pushed or popped: dropped.
        pub malformed: u64,
    }

    impl SwitchCounters {
        pub fn add(&mut self, o: &Self) {
            self.to_trunk += o.to_trunk;
            self.to_access += o.to_access;
            self.unknown += o.unknown;
            self.malformed += o.malformed;
        }
    }

    const _: () = {
        assert!(size_of::<SwitchAccess>() == 16);
        assert!(size_of::<SwitchCounters>() == 32);
    };
}

#[cfg(feature = "user")]
mod pod {
    // SAFETY: #[repr(C)], integers and byte arrays only, no padding
    // (sizes asserted above): every bit pattern is valid.
    macro_rules! pod {
        ($($t:ty),* $(,)?) => {$(
            // SAFETY: as said above, for each of the types listed below.
            unsafe impl aya::Pod for $t {}
        )*};
    }
    pod!(
        super::TestFrameFilter,
        super::BlackholeWindow,
        super::TestfwdLink,
        super::TxgenConfig,
        super::TxgenDestination,
        super::fibfwd::FibfwdConfig,
        super::vlan_pop::PopKey,
        super::vlan_pop::PopCounters,
        super::vlan_switch::SwitchAccess,
        super::vlan_switch::SwitchCounters,
    );
}
