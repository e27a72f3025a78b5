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
    pub const FIB_DOMAINS: &str = super::fib::FIB_DOMAINS_MAP;
    pub const FIB_NODES_V4: &str = super::fib::FIB_NODES_V4_MAP;
    pub const FIB_NODES_V6: &str = super::fib::FIB_NODES_V6_MAP;
    pub const FIB_RANGES_V4: &str = super::fib::FIB_RANGES_V4_MAP;
    pub const FIB_LEAVES: &str = super::fib::FIB_LEAVES_MAP;
    pub const FIB_FALLBACK: &str = super::fib::FIB_FALLBACK_MAP;
    /// The forwarding table's maps: written from the LPM tries by every
    /// adopting load, so made afresh together when their layout changes.
    pub const FIB_TABLE: [&str; 5] = [
        FIB_DOMAINS,
        FIB_NODES_V4,
        FIB_NODES_V6,
        FIB_RANGES_V4,
        FIB_LEAVES,
    ];
    pub const ALL: [&str; 18] = [
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
        FIB_DOMAINS,
        FIB_NODES_V4,
        FIB_NODES_V6,
        FIB_RANGES_V4,
        FIB_LEAVES,
        FIB_FALLBACK,
    ];
}

pub mod fib;

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
/// 8,192, against 47 ns for one destination (`msee-bench spin
/// 10000,police --destinations 256`, bpf_stats, medians of 5
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

/// An entry of `MseeConfig` that userspace rewrites while the program may
/// be reading it on other CPUs: two copies, and the index of the one the
/// program reads. Userspace writes the other copy, then flips `active`
/// (a release store): a frame reads one whole copy, the old or the new,
/// never a mix of the two. Before it writes a copy again, userspace waits
/// for every program run that may still read it to end (an RCU grace
/// period: XDP programs run inside RCU read-side sections), so a copy is
/// never written while a program reads it, however slow that program.
/// The program reads the index once (`current`) and addresses the copy
/// with it: a data dependency, which orders the two loads on every CPU.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct DoubleBuffered<T> {
    /// Which copy is current: bit 0 (the rest is zero).
    pub active: u32,
    pub _pad: u32,
    pub copies: [T; 2],
}

impl<T> DoubleBuffered<T> {
    /// The current copy. `active` is read once, with a volatile load: the
    /// compiler may neither read it again later (and address the other
    /// copy for some fields) nor turn the index into a branch of its own.
    #[inline(always)]
    pub fn current(&self) -> &T {
        // SAFETY: a read of a u32 field of a live reference; volatile only
        // so that it is done exactly once.
        let active = unsafe { core::ptr::read_volatile(&self.active) };
        &self.copies[(active & 1) as usize]
    }
}

/// `CONFIG`, a memory-mapped array of this one element: every small table
/// a forwarded frame reads besides its route and group. One map lookup
/// finds all of it (a separate map per table cost a lookup each: a dozen
/// instructions, with a spill of what the compiler holds in scratch
/// registers around each). Userspace writes fields in place through its
/// mapping of the map: a link flip and an epoch bump are single atomic
/// stores; a link or policer rewrite goes to the idle copy of its
/// `DoubleBuffered` entry, published by one store of its index. The DSCP
/// table is written in place: a frame reads one byte of it, which no write
/// can tear, and it only ever holds the fixed policy of `rewrite_dscp`.
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
    /// Puts `links` at a multiple of 64 bytes of the (page-aligned) value:
    /// each link's entry, index and both copies, is one cache line.
    pub _pad: [u8; 56],
    pub links: [DoubleBuffered<Link>; MAX_LINKS as usize],
    /// Per (link, direction), at `link_dir_index`.
    pub policers: [DoubleBuffered<PolicerConfig>; 2 * MAX_LINKS as usize],
}

#[cfg(feature = "user")]
mod pod {
    // SAFETY: all are #[repr(C)], made only of integers and byte arrays with
    // explicit padding, so every bit pattern is valid and there are no holes.
    macro_rules! pod {
        ($($t:ty),* $(,)?) => {$(
            // SAFETY: as said above, for each of the types listed below.
            unsafe impl aya::Pod for $t {}
        )*};
    }
    pod!(
        super::AttachmentKey,
        super::Attachment,
        super::Link,
        super::GroupMember,
        super::NextHopGroup,
        super::Route,
        super::CachedGroup,
        super::Resolved,
        super::RouteCacheV4,
        super::RouteCacheV6,
        super::PolicerConfig,
        super::PolicerState,
        super::LinkCounters,
        super::LinkRow,
        super::vlan::VlanTags,
        super::vlan::PushCounters,
    );
}

/// The VLAN shim: this kernel has no 802.1Q (`CONFIG_VLAN_8021Q` is off), so
/// the kernel's own traffic on tagged peerings (ARP, ND, BGP, BFD, ICMP) is
/// tagged and untagged by small programs around an untagged port interface:
///
/// - `msee` itself pops the tags of frames for the MSEE (XDP_PASS);
/// - `vlan_push` (TC egress, tcx) gives frames the kernel sends out of a port
///   the tags of the peering they belong to, by an LPM lookup on
///   (ifindex, address) in `VLAN_EGRESS_V4`/`VLAN_EGRESS_V6`;
/// - on a customer side without VLANs (the lab's customer router),
///   `vlan_pop` of the test tooling (`traffic-abi`) pops them.
pub mod vlan {
    use super::{ETH_P_8021AD, ETH_P_8021Q, MAX_FAST_IFINDEX};

    pub const PUSH_PROGRAM: &str = "vlan_push";

    /// `vlan_push`: LpmTrie<Key<EgressKeyV4>, VlanTags>, the IPv4 peering
    /// subnets of each port.
    pub const EGRESS_V4: &str = "VLAN_EGRESS_V4";
    /// `vlan_push`: LpmTrie<Key<EgressKeyV6>, VlanTags>.
    pub const EGRESS_V6: &str = "VLAN_EGRESS_V6";
    /// `vlan_push`: PerCpuArray<PushCounters>, row = `counter_row(ifindex)`.
    pub const PUSH_STATS: &str = "VLAN_PUSH_STATS";

    pub const PUSH_MAPS: [&str; 3] = [EGRESS_V4, EGRESS_V6, PUSH_STATS];

    pub const MAX_EGRESS_V4: u32 = 16384;
    pub const MAX_EGRESS_V6: u32 = 16384;
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
    /// 0x88a8) with an inner 802.1Q tag. The value of the egress tables
    /// (and of `vlan_pop`'s accepted stacks, in the test tooling).
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
}
/// Capture of dropped frames (`msee-cli capture`): on the drop path only,
/// `msee` reads `CAPTURE_CONFIG`; while it is on, each drop it selects
/// (reason, link, one in `sample`, at most `rate_per_sec` a second per
/// CPU) is copied, its first `snap` bytes (at most `SNAP_LEN`), into the
/// `CAPTURE_RING` ring buffer as a [`capture::Record`]. Off (the default),
/// a drop costs one array lookup and one branch more, and forwarded frames
/// nothing: the forwarding path never reads these maps. Not in
/// `maps::ALL` (not pinned): a capture belongs to the daemon that runs it.
pub mod capture {
    /// `Array<Config>`, one element.
    pub const CONFIG_MAP: &str = "CAPTURE_CONFIG";
    /// `RingBuf` of [`Record`]s.
    pub const RING_MAP: &str = "CAPTURE_RING";
    /// `PerCpuArray<State>`, one element: each CPU's sampling and rate.
    pub const STATE_MAP: &str = "CAPTURE_STATE";

    /// Bytes kept of each frame: Ethernet, two VLAN tags, IPv6 with some
    /// extension headers, and the start of the payload.
    pub const SNAP_LEN: usize = 256;
    /// The ring's size (a power of two pages): 1024 records.
    pub const RING_BYTES: u32 = 512 * 1024;
    /// `Config::link` for every link.
    pub const ANY_LINK: u32 = u32::MAX;

    #[repr(C)]
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
    pub struct Config {
        /// Non-zero: capture is on.
        pub on: u32,
        /// Bit `DropReason as u32` set: that reason is captured.
        pub reasons: u32,
        /// The link id whose drops are captured, or [`ANY_LINK`].
        pub link: u32,
        /// Capture one drop in this many (1: all).
        pub sample: u32,
        /// Records per second per CPU at most.
        pub rate_per_sec: u32,
        /// Bytes of each frame kept (at most [`SNAP_LEN`]).
        pub snap: u32,
    }

    /// A CPU's capture state.
    #[repr(C)]
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
    pub struct State {
        /// Selected drops seen (the sampling counter).
        pub seen: u64,
        /// Start of the current one-second window (CLOCK_MONOTONIC ns).
        pub window_ns: u64,
        /// Records taken in it.
        pub in_window: u64,
        /// Selected drops not recorded: over the rate, or no room in the ring.
        pub lost: u64,
    }

    /// One captured frame.
    #[repr(C)]
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct Record {
        /// CLOCK_MONOTONIC of the drop, ns.
        pub ktime_ns: u64,
        /// The frame's length.
        pub len: u32,
        /// Bytes of it in `data`.
        pub caplen: u32,
        /// The counter row charged (`link_dir_index`).
        pub row: u32,
        /// `DropReason as u32`.
        pub reason: u32,
        pub ifindex: u32,
        pub _pad: u32,
        pub data: [u8; SNAP_LEN],
    }

    impl Default for Record {
        fn default() -> Self {
            Self {
                ktime_ns: 0,
                len: 0,
                caplen: 0,
                row: 0,
                reason: 0,
                ifindex: 0,
                _pad: 0,
                data: [0; SNAP_LEN],
            }
        }
    }

    #[cfg(feature = "user")]
    mod pod {
        // SAFETY: #[repr(C)], integers only, no holes.
        unsafe impl aya::Pod for super::Config {}
        // SAFETY: #[repr(C)], integers only, no holes.
        unsafe impl aya::Pod for super::State {}
        // SAFETY: #[repr(C)], integers and a byte array, no holes.
        unsafe impl aya::Pod for super::Record {}
    }

    const _: () = assert!(core::mem::size_of::<Record>() == 32 + SNAP_LEN);
    const _: () = assert!(core::mem::size_of::<Config>() == 24);
    const _: () = assert!(core::mem::size_of::<State>() == 32);
}
