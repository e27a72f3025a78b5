//! The map ABI between the `msee` XDP program and userspace.
//!
//! Every key and value stored in a BPF map is defined here once, `#[repr(C)]`
//! with explicit padding, so both sides agree byte for byte. Layout tests in
//! `tests/layout.rs` pin sizes and offsets: changing them is an ABI change.
//!
//! The model, as the packet meets it:
//! - an *attachment* `(ingress ifindex, outer VLAN, inner VLAN)` names the
//!   circuit, the peering, the routing domain and the *link* the frame came in on;
//! - a *link* is one side of a circuit: its primary or secondary customer link,
//!   or its Azure side. Links carry egress details, an up/down state, policers
//!   and counters;
//! - a *routing domain* (one per circuit peering) holds IPv4 and IPv6 routes,
//!   each pointing at a *next-hop group* of links with preferences.
#![no_std]

/// Names of the maps in the `msee` object, so userspace never spells them twice.
pub mod maps {
    pub const ATTACHMENTS: &str = "ATTACHMENTS";
    pub const UNTAGGED: &str = "UNTAGGED";
    pub const CONFIG: &str = "CONFIG";
    pub const GROUPS: &str = "GROUPS";
    pub const ROUTES_V4: &str = "ROUTES_V4";
    pub const ROUTES_V6: &str = "ROUTES_V6";
    pub const TX_PORTS: &str = "TX_PORTS";
    pub const POLICER_STATE: &str = "POLICER_STATE";
    pub const ICMP_LIMIT: &str = "ICMP_LIMIT";
    pub const COUNTERS: &str = "COUNTERS";
    pub const ROUTE_CACHE_V4: &str = "ROUTE_CACHE_V4";
    pub const ROUTE_CACHE_V6: &str = "ROUTE_CACHE_V6";
    pub const ALL: [&str; 12] = [
        ATTACHMENTS,
        UNTAGGED,
        CONFIG,
        GROUPS,
        ROUTES_V4,
        ROUTES_V6,
        TX_PORTS,
        POLICER_STATE,
        ICMP_LIMIT,
        COUNTERS,
        ROUTE_CACHE_V4,
        ROUTE_CACHE_V6,
    ];
}

/// Name of the XDP program for MSEE ports inside the eBPF object.
pub const MSEE_PROGRAM: &str = "msee";

pub const MAX_ATTACHMENTS: u32 = 4096;
/// Untagged attachments of ports with an ifindex below this are also kept in
/// the `UNTAGGED` array, indexed by ifindex: an array lookup the verifier
/// inlines, where the hash map costs a hash on every frame.
pub const MAX_FAST_IFINDEX: u32 = 4096;
/// Links (primary, secondary and Azure side of every circuit).
pub const MAX_LINKS: u32 = 1024;
pub const MAX_GROUPS: u32 = 65536;
pub const MAX_GROUP_MEMBERS: usize = 4;
pub const MAX_ROUTES_V4: u32 = 2_000_000;
pub const MAX_ROUTES_V6: u32 = 200_000;
pub const MAX_PORTS: u32 = 256;
/// Counter rows: one per (link, direction), plus one for frames that could
/// not be tied to any link (e.g. cut inside their VLAN tags).
pub const COUNTER_ROWS: u32 = MAX_LINKS * 2 + 1;
pub const UNATTRIBUTED_ROW: u32 = MAX_LINKS * 2;

/// Which side of the circuit a link is.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkRole {
    Primary = 0,
    Secondary = 1,
    /// The Azure (Microsoft network) side of a circuit peering.
    Azure = 2,
}

impl LinkRole {
    pub const ALL: [LinkRole; 3] = [LinkRole::Primary, LinkRole::Secondary, LinkRole::Azure];

    pub const fn name(self) -> &'static str {
        match self {
            LinkRole::Primary => "primary",
            LinkRole::Secondary => "secondary",
            LinkRole::Azure => "azure",
        }
    }

    pub const fn from_u8(v: u8) -> Option<LinkRole> {
        match v {
            0 => Some(LinkRole::Primary),
            1 => Some(LinkRole::Secondary),
            2 => Some(LinkRole::Azure),
            _ => None,
        }
    }
}

/// ExpressRoute peering types; each has its own routing domain and DSCP policy.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PeeringKind {
    Private = 0,
    Microsoft = 1,
}

impl PeeringKind {
    pub const fn name(self) -> &'static str {
        match self {
            PeeringKind::Private => "AzurePrivatePeering",
            PeeringKind::Microsoft => "MicrosoftPeering",
        }
    }

    /// The DSCP a packet leaves with, per the peering's policy: private
    /// peering resets to 0; Microsoft peering keeps the Teams/Skype markings
    /// EF (46), AF41 (34), AF21 (18), AF11 (10) and CS0, and resets the rest.
    pub const fn rewrite_dscp(self, dscp: u8) -> u8 {
        match self {
            PeeringKind::Private => 0,
            PeeringKind::Microsoft => match dscp {
                46 | 34 | 18 | 10 => dscp,
                _ => 0,
            },
        }
    }
}

/// Counter direction on a link.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Received on the link (toward Azure for a customer link).
    Rx = 0,
    /// Sent out of the link (toward the customer for a customer link: the
    /// metered-billing direction).
    Tx = 1,
}

impl Direction {
    pub const ALL: [Direction; 2] = [Direction::Rx, Direction::Tx];
    pub const fn name(self) -> &'static str {
        match self {
            Direction::Rx => "rx",
            Direction::Tx => "tx",
        }
    }
}

/// Row of `(link, dir)` in `COUNTERS`, and index of its policer.
pub const fn link_dir_index(link: u32, dir: Direction) -> u32 {
    link * 2 + dir as u32
}

/// VLAN TPIDs.
pub const ETH_P_8021Q: u16 = 0x8100;
pub const ETH_P_8021AD: u16 = 0x88a8;

/// `ATTACHMENTS` key. VLAN IDs are 12-bit; 0 means "no tag here".
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct AttachmentKey {
    pub ifindex: u32,
    pub outer_vlan: u16,
    pub inner_vlan: u16,
}

/// `ATTACHMENTS` value: what a frame on this attachment belongs to.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Attachment {
    /// The link this attachment is (index into `MseeConfig::links`,
    /// `MseeConfig::link_up`, counters).
    pub link: u32,
    /// Routing domain for lookups of frames arriving here.
    pub domain: u32,
    pub circuit: u32,
    /// A `PeeringKind`; selects the DSCP policy row in `MseeConfig::dscp`.
    pub peering: u8,
    /// A `LinkRole`.
    pub role: u8,
    /// Non-zero for an attachment in use (userspace sets it); the
    /// `UNTAGGED` array holds zeroed rows for ports that have none.
    pub valid: u8,
    pub _pad: u8,
    /// The port's own MAC: unicast frames to any other MAC are not ours.
    pub mac: [u8; 6],
    pub _pad2: [u8; 2],
    /// The MSEE's addresses on this attachment: the source of the ICMP
    /// errors it sends (TTL exceeded), so traceroute shows the MSEE hop.
    /// All zero: send none.
    pub local_v4: [u8; 4],
    pub local_v6: [u8; 16],
}

/// `MseeConfig::links` entry: how to send out of a link.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Link {
    pub ifindex: u32,
    /// Tags to push on egress (0 = none); `outer_tpid` is 0x8100 or 0x88a8.
    pub outer_vlan: u16,
    pub inner_vlan: u16,
    pub outer_tpid: u16,
    /// A `LinkRole`.
    pub role: u8,
    pub _pad: u8,
    pub src_mac: [u8; 6],
    /// The neighbour on the link (customer router or Azure gateway).
    pub dst_mac: [u8; 6],
    pub circuit: u32,
}

/// `MseeConfig::link_up` values: one `u32` per link. Failover flips this
/// one word.
pub const LINK_DOWN: u32 = 0;
pub const LINK_IS_UP: u32 = 1;

/// One member of a next-hop group.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct GroupMember {
    pub link: u32,
    /// Lower is better (the AS path length the route was learned with).
    /// Among up members, only those with the best preference carry traffic.
    pub preference: u32,
}

/// `GROUPS` value: the links that can carry a route.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct NextHopGroup {
    /// Members in use (<= MAX_GROUP_MEMBERS).
    pub count: u32,
    pub members: [GroupMember; MAX_GROUP_MEMBERS],
}

/// `ROUTES_V4` key data (after the LPM trie's u32 prefix length): routing
/// domain (big-endian) then the address. Prefix length = 32 + mask length.
pub type RouteKeyV4 = [u8; 8];
/// `ROUTES_V6` key data: domain (big-endian) then the address; prefix length = 32 + mask.
pub type RouteKeyV6 = [u8; 20];

pub const fn route_key_v4(domain: u32, addr: [u8; 4]) -> RouteKeyV4 {
    // The same bytes, built as one word: msee builds a key per packet, and
    // byte by byte that is a dozen instructions.
    let d = u32::from_ne_bytes(domain.to_be_bytes()) as u64;
    let a = u32::from_ne_bytes(addr) as u64;
    if cfg!(target_endian = "little") {
        (d | a << 32).to_ne_bytes()
    } else {
        (d << 32 | a).to_ne_bytes()
    }
}

pub const fn route_key_v6(domain: u32, addr: [u8; 16]) -> RouteKeyV6 {
    let d = domain.to_be_bytes();
    let mut k = [0u8; 20];
    k[0] = d[0];
    k[1] = d[1];
    k[2] = d[2];
    k[3] = d[3];
    let mut i = 0;
    while i < 16 {
        k[4 + i] = addr[i];
        i += 1;
    }
    k
}

/// `ROUTES_V4`/`ROUTES_V6` value.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Route {
    pub group: u32,
    /// `ROUTE_OUT_OF_REACH`: a known destination outside the circuit's reach
    /// (by SKU): dropped and counted as such rather than as no route.
    /// `ROUTE_LOCAL`: addressed to the MSEE itself.
    pub flags: u32,
}

pub const ROUTE_OUT_OF_REACH: u32 = 1;
/// `ROUTE_LOCAL`: one of the MSEE's own addresses in this routing domain:
/// frames to it go to the kernel. (A /32 or /128 in the same trie as the
/// routes, so finding it costs no extra lookup per packet.)
pub const ROUTE_LOCAL: u32 = 2;

// --- Destination cache: a longest-prefix match in a large trie walks a
// dozen or more nodes per packet (hundreds of ns at a million routes), while
// a forwarding table's traffic goes to far fewer destinations than it has
// routes. Each CPU keeps a two-way set-associative cache of recent lookups
// (set = hash of domain and address; a new entry takes way 0 and moves the
// one there to way 1, evicting the older), tagged
// with the route epoch they were made in. Userspace bumps `MseeConfig::route_epoch`
// after every write to the route tries, which retires every cached entry at
// once: the next packet to each destination looks the trie up again, so a
// route change is seen exactly as without the cache. Epoch 0 means "cache
// off" (a fresh map, before userspace has set it).

/// Slots per CPU of `ROUTE_CACHE_V4` (a power of two; two per set, and a
/// set is one map element). Not larger: the sets a CPU uses should stay in
/// its caches and TLB. Traffic spread over 256 destinations cost msee 77 ns
/// per frame in the lab with 16,384 slots (786 KB per CPU) and 70 ns with
/// 8,192, against 47 ns for one destination (`msee-bench --spin
/// 10000,police --spin-destinations 256`, bpf_stats, medians of 5
/// alternating runs); 56 ns once a subnet's hosts shared neighbouring sets
/// (msee's `cache_set_v4`). Not smaller: with 4,096, 1,000 destinations over a
/// million routes collided in sets more often (146 against 122 ns per cold
/// call) and consecutive /24s fell into half the sets.
pub const ROUTE_CACHE_V4_SLOTS: u32 = 8192;
/// Slots per CPU of `ROUTE_CACHE_V6` (a power of two; two per set, and a
/// set is one map element).
pub const ROUTE_CACHE_V6_SLOTS: u32 = 4096;

/// A route's next-hop group as a destination cache slot holds it, so that a
/// cached destination's link choice needs no `GROUPS` lookup after the route
/// (one dependent load fewer per packet). Two members cover the groups
/// nearly every route has (a circuit's pair of links, the Azure side);
/// `count` > 2 sends the link choice to `GROUPS` itself. Userspace bumps the
/// route epoch after every group write, which retires these copies too.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct CachedGroup {
    /// The group's `count`, or `CACHED_GROUP_MISSING` for a group id the
    /// map does not hold.
    pub count: u32,
    /// Its first members (as many as `count`, at most two).
    pub members: [GroupMember; 2],
}

/// `CachedGroup::count` of a group id outside `GROUPS`: no route.
pub const CACHED_GROUP_MISSING: u32 = u32::MAX;

/// What a destination cache slot answers: the trie's route for the
/// destination (a miss too: `Route::flags` has `ROUTE_NONE` set) and a copy
/// of the route's group.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Resolved {
    pub route: Route,
    pub group: CachedGroup,
}

/// `ROUTE_CACHE_V4` slot: the answer for one (domain, address), found at
/// `epoch`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct RouteCacheV4 {
    pub key: RouteKeyV4,
    pub epoch: u64,
    pub resolved: Resolved,
    pub _pad: u32,
}

/// `ROUTE_CACHE_V6` slot.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct RouteCacheV6 {
    pub key: RouteKeyV6,
    pub _pad: u32,
    pub epoch: u64,
    pub resolved: Resolved,
    pub _pad2: u32,
}

/// `Route::flags` bit for "the trie has no route" (in a cache slot; never
/// stored in the tries).
pub const ROUTE_NONE: u32 = 1 << 31;

/// `MseeConfig::policers` entry, per (link, direction). Written by userspace only; the
/// bucket state lives apart in `POLICER_STATE` so a rate change never resets it.
///
/// The bucket counts nanobytes (1e-9 byte): a nanosecond at `rate` bytes/s
/// refills exactly `rate` of them and a frame of `len` bytes costs exactly
/// `len * 1e9`, so the per-packet arithmetic is two multiplications, with no
/// division and no rounding, at any rate.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct PolicerConfig {
    /// Committed rate in bytes per second; 0 disables the policer.
    pub rate_bytes_per_sec: u64,
    /// Bucket depth in nanobytes (burst bytes * 1e9; at most `MAX_BURST_NB`).
    pub burst_nb: u64,
    /// The refill interval that fills an empty bucket (burst_nb / rate,
    /// rounded up): a longer one adds nothing, and capping the elapsed time
    /// there keeps `elapsed * rate` within u64.
    pub refill_cap_ns: u64,
    /// How much credit a CPU takes from the shared bucket at once into its
    /// own row of `COUNTERS` (`LinkRow::policer_credit_nb`), to spend
    /// without atomics or a clock read (at least what the frame at hand
    /// needs). Userspace sets it to burst / (8 * possible CPUs): all CPUs
    /// together then hold at most an eighth of a burst on top of the bucket,
    /// and at low rates, where a chunk is smaller than a frame, every frame
    /// takes just its cost from the shared bucket (the plain token bucket).
    pub chunk_nb: u64,
}

/// `POLICER_STATE` value: credit in nanobytes, and when it was last
/// refilled. Shared by all CPUs, updated with atomics.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct PolicerState {
    pub credit_nb: u64,
    pub last_ns: u64,
}

/// Nanobytes per byte.
pub const NB_PER_BYTE: u64 = 1_000_000_000;
/// Deepest bucket: half of u64 in nanobytes (9.2 GB), so that a full
/// bucket plus one refill interval's worth never overflows.
pub const MAX_BURST_NB: u64 = u64::MAX / 2;

/// Why the program dropped a frame. Index into `LinkCounters::drops`.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DropReason {
    /// Truncated or malformed headers.
    Malformed = 0,
    /// No route for the destination in the routing domain.
    NoRoute = 1,
    /// The destination is outside the circuit's reach (SKU).
    OutOfReach = 2,
    /// TTL / hop limit would reach zero.
    TtlExpired = 3,
    /// Every link that could carry the route is down.
    LinkDown = 4,
    /// Over the committed rate.
    Policer = 5,
}

pub const DROP_REASONS: usize = 6;

impl DropReason {
    pub const ALL: [DropReason; DROP_REASONS] = [
        DropReason::Malformed,
        DropReason::NoRoute,
        DropReason::OutOfReach,
        DropReason::TtlExpired,
        DropReason::LinkDown,
        DropReason::Policer,
    ];

    pub const fn name(self) -> &'static str {
        match self {
            DropReason::Malformed => "malformed",
            DropReason::NoRoute => "no_route",
            DropReason::OutOfReach => "out_of_reach",
            DropReason::TtlExpired => "ttl_expired",
            DropReason::LinkDown => "link_down",
            DropReason::Policer => "policer",
        }
    }
}

/// `COUNTERS` value (per-CPU array, row = `link_dir_index`): all a CPU
/// keeps of its own for a (link, direction), so that forwarding a frame
/// touches one per-CPU row per direction, not two.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct LinkRow {
    /// Credit this CPU holds, taken from the (link, direction)'s shared
    /// token bucket (`POLICER_STATE`), in nanobytes. First, beside the
    /// packet and byte counts every frame updates.
    pub policer_credit_nb: u64,
    pub counters: LinkCounters,
    /// Rx rows: the IPv4 destination this CPU last routed for a frame in on
    /// the link, with its answer, in front of `ROUTE_CACHE_V4`: a train of
    /// frames to one destination (a transfer in full flow, a NAPI batch of
    /// one flow) finds its route here, in the row it has already fetched,
    /// without the cache's hash and per-CPU lookup. Retired by the route
    /// epoch like the cache.
    pub last_v4: RouteCacheV4,
    /// Rx rows: the same for IPv6, in front of `ROUTE_CACHE_V6`.
    pub last_v6: RouteCacheV6,
}

/// Counters of a (link, direction), in its `LinkRow`. Userspace sums CPUs.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct LinkCounters {
    /// Rx row: frames received on the link; Tx row: frames forwarded out of it.
    pub packets: u64,
    pub bytes: u64,
    /// Rx row: frames handed to the kernel (addressed to the MSEE).
    pub to_kernel: u64,
    /// Rx row: ICMP errors (time exceeded) sent back on this link.
    pub icmp_errors: u64,
    /// Drops charged to this (link, direction), by `DropReason`.
    pub drops: [u64; DROP_REASONS],
}

impl LinkCounters {
    /// Field-wise sum, used to fold per-CPU rows.
    pub fn add(&mut self, other: &LinkCounters) {
        self.packets += other.packets;
        self.bytes += other.bytes;
        self.to_kernel += other.to_kernel;
        self.icmp_errors += other.icmp_errors;
        for (a, b) in self.drops.iter_mut().zip(other.drops.iter()) {
            *a += b;
        }
    }

    pub fn dropped(&self, reason: DropReason) -> u64 {
        self.drops[reason as usize]
    }

    pub fn total_drops(&self) -> u64 {
        self.drops.iter().sum()
    }
}

/// ICMP errors each CPU may send per second (like the kernel's own
/// icmp rate limit: enough for traceroute, too few to amplify a flood).
pub const ICMP_ERRORS_PER_SEC_PER_CPU: u64 = 200;

/// Peering kinds, each with a row of `MseeConfig::dscp`.
pub const PEERING_KINDS: usize = 2;

/// `BPF_F_MMAPABLE`: the flag `CONFIG` is created with.
pub const BPF_F_MMAPABLE: u32 = 1 << 10;

/// `CONFIG`, a memory-mapped array of this one element: every small table
/// a forwarded frame reads besides its route and group. One map lookup
/// finds all of it (a separate map per table cost a lookup each: a dozen
/// instructions, with a spill of what the compiler holds in scratch
/// registers around each). Userspace writes fields in place through its
/// mapping of the map: a link flip and an epoch bump are single atomic
/// stores; a link or policer rewrite is a plain copy, as a map update is.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MseeConfig {
    /// Route epoch (see the destination cache): bumped by userspace after
    /// each write to the route tries; 0 turns the caches off.
    pub route_epoch: u64,
    /// The DSCP a packet leaves with, per `PeeringKind` and incoming DSCP
    /// (`PeeringKind::rewrite_dscp`, precomputed).
    pub dscp: [[u8; 64]; PEERING_KINDS],
    /// `LINK_IS_UP` or `LINK_DOWN`, per link.
    pub link_up: [u32; MAX_LINKS as usize],
    pub links: [Link; MAX_LINKS as usize],
    /// Per (link, direction), at `link_dir_index`.
    pub policers: [PolicerConfig; 2 * MAX_LINKS as usize],
}

#[cfg(feature = "user")]
mod pod {
    // SAFETY: all are #[repr(C)], made only of integers and byte arrays with
    // explicit padding, so every bit pattern is valid and there are no holes.
    unsafe impl aya::Pod for super::AttachmentKey {}
    unsafe impl aya::Pod for super::Attachment {}
    unsafe impl aya::Pod for super::Link {}
    unsafe impl aya::Pod for super::GroupMember {}
    unsafe impl aya::Pod for super::NextHopGroup {}
    unsafe impl aya::Pod for super::Route {}
    unsafe impl aya::Pod for super::CachedGroup {}
    unsafe impl aya::Pod for super::Resolved {}
    unsafe impl aya::Pod for super::RouteCacheV4 {}
    unsafe impl aya::Pod for super::RouteCacheV6 {}
    unsafe impl aya::Pod for super::PolicerConfig {}
    unsafe impl aya::Pod for super::PolicerState {}
    unsafe impl aya::Pod for super::LinkCounters {}
    unsafe impl aya::Pod for super::LinkRow {}
    unsafe impl aya::Pod for super::engine::TxgenConfig {}
    unsafe impl aya::Pod for super::vlan::VlanTags {}
    unsafe impl aya::Pod for super::vlan::PopKey {}
    unsafe impl aya::Pod for super::vlan::PushCounters {}
    unsafe impl aya::Pod for super::vlan::PopCounters {}
    unsafe impl aya::Pod for super::vlan::SwitchAccess {}
    unsafe impl aya::Pod for super::vlan::SwitchCounters {}
}

/// The packet engine's kernel programs (`xsk`, `lossy`, `txgen`) and the test
/// payload they share with userspace.
pub mod engine {
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

    #[cfg(feature = "user")]
    mod pod {
        // SAFETY: #[repr(C)], integers and byte arrays only, no padding
        // (sizes asserted above): every bit pattern is valid.
        unsafe impl aya::Pod for super::TestFrameFilter {}
        unsafe impl aya::Pod for super::BlackholeWindow {}
        unsafe impl aya::Pod for super::TestfwdLink {}
    }

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
        /// Destinations to spread the frames over, round robin by sequence
        /// number (a power of two up to `MAX_TXGEN_DESTINATIONS`; 0 or 1:
        /// the template's own): the last byte of the IPv4 destination goes
        /// up by `sequence % destinations`, wrapping within its /24, and both
        /// checksums follow.
        pub destinations: u32,
        /// Offset of the IPv4 header (used only with destinations > 1).
        pub ipv4_off: u32,
        pub _pad: u32,
    }

    /// Most destinations `txgen` spreads over: those of one /24.
    pub const MAX_TXGEN_DESTINATIONS: u32 = 256;
}

/// The VLAN shim: this kernel has no 802.1Q (`CONFIG_VLAN_8021Q` is off), so
/// the kernel's own traffic on tagged peerings (ARP, ND, BGP, BFD, ICMP) is
/// tagged and untagged by small programs around an untagged port interface:
///
/// - `msee` itself pops the tags of frames for the MSEE (XDP_PASS);
/// - `vlan_push` (TC egress, tcx) gives frames the kernel sends out of a port
///   the tags of the peering they belong to, by an LPM lookup on
///   (ifindex, address) in `VLAN_EGRESS_V4`/`VLAN_EGRESS_V6`;
/// - `vlan_pop` (XDP, for a customer side without VLANs) pops the tag stacks
///   listed in `VLAN_ACCEPT` and drops (and counts) every other tagged frame.
pub mod vlan {
    use super::{ETH_P_8021AD, ETH_P_8021Q, MAX_FAST_IFINDEX};

    pub const PUSH_PROGRAM: &str = "vlan_push";
    pub const POP_PROGRAM: &str = "vlan_pop";

    /// `vlan_push`: LpmTrie<Key<EgressKeyV4>, VlanTags>, the IPv4 peering
    /// subnets of each port.
    pub const EGRESS_V4: &str = "VLAN_EGRESS_V4";
    /// `vlan_push`: LpmTrie<Key<EgressKeyV6>, VlanTags>.
    pub const EGRESS_V6: &str = "VLAN_EGRESS_V6";
    /// `vlan_push`: PerCpuArray<PushCounters>, row = `counter_row(ifindex)`.
    pub const PUSH_STATS: &str = "VLAN_PUSH_STATS";
    /// `vlan_pop`: HashMap<PopKey, VlanTags>, the tag stacks accepted per port.
    pub const ACCEPT: &str = "VLAN_ACCEPT";
    /// `vlan_pop`: PerCpuArray<PopCounters>, row = `counter_row(ifindex)`.
    pub const POP_STATS: &str = "VLAN_POP_STATS";

    pub const PUSH_MAPS: [&str; 3] = [EGRESS_V4, EGRESS_V6, PUSH_STATS];
    pub const POP_MAPS: [&str; 2] = [ACCEPT, POP_STATS];

    pub const MAX_EGRESS_V4: u32 = 16384;
    pub const MAX_EGRESS_V6: u32 = 16384;
    pub const MAX_ACCEPT: u32 = 4096;
    /// Counter rows: one per ifindex below `MAX_FAST_IFINDEX`, and one shared
    /// by every larger ifindex.
    pub const COUNTER_ROWS: u32 = MAX_FAST_IFINDEX + 1;

    pub const fn counter_row(ifindex: u32) -> u32 {
        if ifindex < MAX_FAST_IFINDEX {
            ifindex
        } else {
            MAX_FAST_IFINDEX
        }
    }

    /// Highest usable VLAN id (0 means "no tag", 4095 is reserved).
    pub const MAX_VID: u16 = 4094;

    /// A tag stack: one 802.1Q tag, or an outer tag (`outer_tpid` 0x8100 or
    /// 0x88a8) with an inner 802.1Q tag. The value of both maps.
    #[repr(C)]
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
    pub struct VlanTags {
        pub outer_tpid: u16,
        pub outer_vid: u16,
        /// 0: a single tag.
        pub inner_vid: u16,
        pub _pad: u16,
    }

    impl VlanTags {
        /// One 802.1Q tag.
        pub const fn dot1q(vid: u16) -> Self {
            Self {
                outer_tpid: ETH_P_8021Q,
                outer_vid: vid,
                inner_vid: 0,
                _pad: 0,
            }
        }

        /// QinQ with an 802.1ad S-tag (0x88a8) and an 802.1Q C-tag.
        pub const fn qinq(s_vid: u16, c_vid: u16) -> Self {
            Self {
                outer_tpid: ETH_P_8021AD,
                outer_vid: s_vid,
                inner_vid: c_vid,
                _pad: 0,
            }
        }

        /// Two tags with 0x8100 on both (what ExpressRoute uses).
        pub const fn double_dot1q(s_vid: u16, c_vid: u16) -> Self {
            Self {
                outer_tpid: ETH_P_8021Q,
                outer_vid: s_vid,
                inner_vid: c_vid,
                _pad: 0,
            }
        }

        /// Number of tags: 1 or 2.
        pub const fn count(&self) -> usize {
            if self.inner_vid == 0 { 1 } else { 2 }
        }
    }

    /// `VLAN_EGRESS_V4` key data (after the trie's u32 prefix length):
    /// ifindex (big-endian) then the address; prefix length = 32 + mask.
    pub type EgressKeyV4 = [u8; 8];
    /// `VLAN_EGRESS_V6` key data: ifindex (big-endian) then the address.
    pub type EgressKeyV6 = [u8; 20];

    pub const fn egress_key_v4(ifindex: u32, addr: [u8; 4]) -> EgressKeyV4 {
        super::route_key_v4(ifindex, addr)
    }

    pub const fn egress_key_v6(ifindex: u32, addr: [u8; 16]) -> EgressKeyV6 {
        super::route_key_v6(ifindex, addr)
    }

    /// `VLAN_ACCEPT` key: a port and the VLAN ids of a tag stack (inner 0
    /// for a single tag). The value's `outer_tpid` must match the frame's.
    #[repr(C)]
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
    pub struct PopKey {
        pub ifindex: u32,
        pub outer_vid: u16,
        pub inner_vid: u16,
    }

    /// `vlan_switch`: the lab's provider network, a VLAN cross-connect.
    pub const SWITCH_PROGRAM: &str = "vlan_switch";
    /// `vlan_switch`: HashMap<u32, SwitchAccess>, by access port ifindex.
    pub const SWITCH_ACCESS: &str = "SWITCH_ACCESS";
    /// `vlan_switch`: HashMap<PopKey, u32>: a trunk's tag stack -> its
    /// access port.
    pub const SWITCH_TRUNK: &str = "SWITCH_TRUNK";
    /// `vlan_switch`: DevMapHash of every port it redirects to.
    pub const SWITCH_PORTS: &str = "SWITCH_PORTS";
    /// `vlan_switch`: PerCpuArray<SwitchCounters>, one row.
    pub const SWITCH_STATS: &str = "SWITCH_STATS";
    pub const SWITCH_MAPS: [&str; 4] = [SWITCH_ACCESS, SWITCH_TRUNK, SWITCH_PORTS, SWITCH_STATS];
    pub const MAX_SWITCH_PORTS: u32 = 4096;

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

    /// `VLAN_PUSH_STATS` value: what `vlan_push` did with the frames the
    /// kernel sent out of a port. All but `dropped` left the port as they were.
    #[repr(C)]
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
    pub struct PushCounters {
        /// Given the tags of a peering.
        pub tagged: u64,
        /// ARP or IP matching no peering subnet of the port: left untagged.
        pub unmatched: u64,
        /// IPv6 multicast other than Neighbor Solicitations/Advertisements
        /// (MLD reports, Router Solicitations...): left untagged.
        pub multicast: u64,
        /// Already tagged (in the frame or out of band): left alone.
        pub already_tagged: u64,
        /// Not ARP/IPv4/IPv6, or too short to classify: left untagged.
        pub unparsed: u64,
        /// The frame could not be grown for its tags: dropped rather than
        /// sent on the wrong VLAN.
        pub dropped: u64,
    }

    impl PushCounters {
        pub fn add(&mut self, o: &PushCounters) {
            self.tagged += o.tagged;
            self.unmatched += o.unmatched;
            self.multicast += o.multicast;
            self.already_tagged += o.already_tagged;
            self.unparsed += o.unparsed;
            self.dropped += o.dropped;
        }
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
}
