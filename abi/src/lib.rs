//! The map ABI between the `msee` XDP program and userspace.
//!
//! Every key and value stored in a BPF map is defined here once, `#[repr(C)]`
//! with explicit padding, so both sides agree byte for byte. Layout tests in
//! `tests` pin sizes and offsets: changing them is an ABI change.
#![no_std]

/// Names of the maps in the `msee` object, so userspace never spells them twice.
pub mod maps {
    pub const PORTS: &str = "PORTS";
    pub const TX_PORTS: &str = "TX_PORTS";
    pub const ROUTES_V4: &str = "ROUTES_V4";
    pub const NEXTHOPS: &str = "NEXTHOPS";
    pub const LOCAL_V4: &str = "LOCAL_V4";
    pub const PORT_STATS: &str = "PORT_STATS";
}

/// Name of the XDP program for MSEE ports inside the eBPF object.
pub const MSEE_PROGRAM: &str = "msee";

/// Upper bound on ports (links) one instance drives; sizes the per-port arrays.
pub const MAX_PORTS: u32 = 64;
/// Upper bound on next hops.
pub const MAX_NEXTHOPS: u32 = 4096;
/// Upper bound on IPv4 routes.
pub const MAX_ROUTES_V4: u32 = 1 << 20;
/// Upper bound on the MSEE's own IPv4 addresses.
pub const MAX_LOCAL_V4: u32 = 1024;

/// What a port is in the emulated circuit.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PortRole {
    /// The primary link to the customer's router.
    Primary = 0,
    /// The secondary link to the customer's router.
    Secondary = 1,
    /// The link toward the emulated Azure side.
    Azure = 2,
}

impl PortRole {
    pub const ALL: [PortRole; 3] = [PortRole::Primary, PortRole::Secondary, PortRole::Azure];

    pub const fn name(self) -> &'static str {
        match self {
            PortRole::Primary => "primary",
            PortRole::Secondary => "secondary",
            PortRole::Azure => "azure",
        }
    }

    pub const fn from_u32(v: u32) -> Option<PortRole> {
        match v {
            0 => Some(PortRole::Primary),
            1 => Some(PortRole::Secondary),
            2 => Some(PortRole::Azure),
            _ => None,
        }
    }
}

/// `PORTS` value, keyed by ingress ifindex (`u32`).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct PortConfig {
    /// Index of this port's row in `PORT_STATS` (< `MAX_PORTS`).
    pub slot: u32,
    /// A `PortRole` as `u32`.
    pub role: u32,
    /// The port's own MAC address: frames to it (or broadcast/multicast) are ours.
    pub mac: [u8; 6],
    pub _pad: [u8; 2],
}

/// `ROUTES_V4` key: an LPM trie key of prefix length + address in network order.
/// (The LPM trie key layout `{u32 prefixlen; u8 data[]}` is fixed by the kernel.)
pub type RouteV4Key = [u8; 4];

/// `ROUTES_V4` value: the next hop that carries the prefix.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct RouteV4 {
    /// Index into `NEXTHOPS`.
    pub nexthop: u32,
}

/// `NEXTHOPS` value (array index = next-hop id): where to send and how to rewrite.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct NextHop {
    /// Egress ifindex; also the key in the `TX_PORTS` devmap.
    pub ifindex: u32,
    /// Egress port's `PORT_STATS` slot.
    pub slot: u32,
    /// Source MAC: the egress port's own address.
    pub src_mac: [u8; 6],
    /// Destination MAC: the neighbour, as resolved by userspace.
    pub dst_mac: [u8; 6],
    /// `NEXTHOP_VALID` once userspace has resolved the neighbour.
    pub flags: u32,
}

pub const NEXTHOP_VALID: u32 = 1;

/// Why the program dropped a frame. Index into `PortStats::drops`.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DropReason {
    /// Truncated or malformed headers.
    Malformed = 0,
    /// No route for the destination.
    NoRoute = 1,
    /// TTL would reach zero.
    TtlExpired = 2,
    /// Route found, but its next hop's neighbour is not resolved yet.
    NoNeighbour = 3,
}

pub const DROP_REASONS: usize = 4;

impl DropReason {
    pub const ALL: [DropReason; DROP_REASONS] = [
        DropReason::Malformed,
        DropReason::NoRoute,
        DropReason::TtlExpired,
        DropReason::NoNeighbour,
    ];

    pub const fn name(self) -> &'static str {
        match self {
            DropReason::Malformed => "malformed",
            DropReason::NoRoute => "no_route",
            DropReason::TtlExpired => "ttl_expired",
            DropReason::NoNeighbour => "no_neighbour",
        }
    }
}

/// `PORT_STATS` value (per-CPU array, index = port slot). Userspace sums the CPUs.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct PortStats {
    /// Frames received on the port that the program looked at.
    pub rx_packets: u64,
    pub rx_bytes: u64,
    /// Frames handed to the kernel (addressed to the MSEE, or not IPv4).
    pub pass_packets: u64,
    /// Frames the program forwarded out of this port.
    pub tx_packets: u64,
    pub tx_bytes: u64,
    /// Drops on ingress at this port, by `DropReason`.
    pub drops: [u64; DROP_REASONS],
}

impl PortStats {
    /// Field-wise sum, used to fold per-CPU rows.
    pub fn add(&mut self, other: &PortStats) {
        self.rx_packets += other.rx_packets;
        self.rx_bytes += other.rx_bytes;
        self.pass_packets += other.pass_packets;
        self.tx_packets += other.tx_packets;
        self.tx_bytes += other.tx_bytes;
        for (a, b) in self.drops.iter_mut().zip(other.drops.iter()) {
            *a += b;
        }
    }

    pub fn dropped(&self, reason: DropReason) -> u64 {
        self.drops[reason as usize]
    }
}

#[cfg(feature = "user")]
mod pod {
    // SAFETY: all are #[repr(C)], made only of integers and byte arrays with
    // explicit padding, so every bit pattern is valid and there are no holes.
    unsafe impl aya::Pod for super::PortConfig {}
    unsafe impl aya::Pod for super::RouteV4 {}
    unsafe impl aya::Pod for super::NextHop {}
    unsafe impl aya::Pod for super::PortStats {}
    unsafe impl aya::Pod for super::engine::TxgenConfig {}
}

/// The packet engine's kernel programs (`xsk`, `lossy`, `txgen`) and the test
/// payload they share with userspace.
pub mod engine {
    pub const XSK_PROGRAM: &str = "xsk";
    pub const LOSSY_PROGRAM: &str = "lossy";
    pub const TXGEN_PROGRAM: &str = "txgen";

    /// XSKMAP of the `xsk` program: index = rx queue.
    pub const XSKS: &str = "XSKS";
    pub const MAX_QUEUES: u32 = 64;

    /// `lossy`: Array<u64>[1], drop every k-th frame (0 = drop nothing).
    pub const LOSSY_EVERY: &str = "LOSSY_EVERY";
    /// `lossy`: PerCpuArray<u64>[2], [0] UDP frames seen, [1] dropped.
    pub const LOSSY_STATS: &str = "LOSSY_STATS";
    /// `lossy`: ProgramArray[1], the program that gets frames not dropped.
    pub const LOSSY_NEXT: &str = "LOSSY_NEXT";

    /// `txgen`: Array<TxgenConfig>[1].
    pub const TXGEN_CONFIG: &str = "TXGEN_CONFIG";
    /// `txgen`: DevMap[1], slot 0 = egress interface.
    pub const TXGEN_TX: &str = "TXGEN_TX";
    /// `txgen`: PerCpuArray<u64>[1], the next sequence number of this CPU.
    pub const TXGEN_SEQ: &str = "TXGEN_SEQ";

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
        pub _pad: u32,
    }
}
