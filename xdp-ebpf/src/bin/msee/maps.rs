//! The program's maps. Userspace (`dataplane`) finds them by these names
//! (`msee_abi::maps`) and checks the layouts of the pinned ones.

use aya_ebpf::{
    macros::map,
    maps::{Array, DevMapHash, HashMap, LpmTrie, PerCpuArray},
};
use msee_abi::{
    Attachment, AttachmentKey, BPF_F_MMAPABLE, COUNTER_ROWS, LinkRow, MAX_ATTACHMENTS,
    MAX_FAST_IFINDEX, MAX_GROUPS, MAX_LINKS, MAX_PORTS, MAX_ROUTES_V4, MAX_ROUTES_V6, MseeConfig,
    NextHopGroup, PolicerState, ROUTE_CACHE_V4_SLOTS, ROUTE_CACHE_V6_SLOTS, Route, RouteCacheV4,
    RouteCacheV6, RouteKeyV4, RouteKeyV6,
    fib::{
        FIB_DEFAULT_POOL_V4, FIB_DEFAULT_POOL_V6, FIB_DEFAULT_SLOTS, FIB_LEAF_IDS, FIB_LINE_WORDS,
        FIB_MAX_DOMAINS, FIB_V4, FIB_V6, FibLine, FibNodeV4, FibNodeV6,
    },
};

#[map]
pub(crate) static ATTACHMENTS: HashMap<AttachmentKey, Attachment> =
    HashMap::with_max_entries(MAX_ATTACHMENTS, 0);
/// Untagged attachments by ifindex (a copy of their `ATTACHMENTS` entries).
#[map]
pub(crate) static UNTAGGED: Array<Attachment> = Array::with_max_entries(MAX_FAST_IFINDEX, 0);
/// Links, their state, policers, the DSCP policy and the route epoch, in
/// one element (see `msee_abi::MseeConfig`): one lookup per frame.
#[map]
pub(crate) static CONFIG: Array<MseeConfig> = Array::with_max_entries(1, BPF_F_MMAPABLE);
#[map]
pub(crate) static GROUPS: Array<NextHopGroup> = Array::with_max_entries(MAX_GROUPS, 0);
#[map]
pub(crate) static ROUTES_V4: LpmTrie<RouteKeyV4, Route> =
    LpmTrie::with_max_entries(MAX_ROUTES_V4, 0);
#[map]
pub(crate) static ROUTES_V6: LpmTrie<RouteKeyV6, Route> =
    LpmTrie::with_max_entries(MAX_ROUTES_V6, 0);
#[map]
pub(crate) static TX_PORTS: DevMapHash = DevMapHash::with_max_entries(MAX_PORTS, 0);
#[map]
pub(crate) static POLICER_STATE: Array<PolicerState> = Array::with_max_entries(MAX_LINKS * 2, 0);
/// Per-CPU ICMP error budget: [window start ns, errors sent in it].
#[map]
pub(crate) static ICMP_LIMIT: PerCpuArray<[u64; 2]> = PerCpuArray::with_max_entries(1, 0);
#[map]
pub(crate) static COUNTERS: PerCpuArray<LinkRow> = PerCpuArray::with_max_entries(COUNTER_ROWS, 0);
#[map]
pub(crate) static ROUTE_CACHE_V4: PerCpuArray<[RouteCacheV4; 2]> =
    PerCpuArray::with_max_entries(ROUTE_CACHE_V4_SLOTS / 2, 0);
#[map]
pub(crate) static ROUTE_CACHE_V6: PerCpuArray<[RouteCacheV6; 2]> =
    PerCpuArray::with_max_entries(ROUTE_CACHE_V6_SLOTS / 2, 0);
/// The forwarding table (`msee_abi::fib`): each domain's slot and the
/// families its tables serve, by domain id.
#[map]
pub(crate) static FIB_DOMAINS: Array<u32> =
    Array::with_max_entries(FIB_MAX_DOMAINS, BPF_F_MMAPABLE);
/// The IPv4 roots, the ranges behind them, the IPv6 roots then pool; the
/// loader sets the sizes (`dataplane::LoadOptions`), these are the
/// defaults.
#[map]
pub(crate) static FIB_NODES_V4: Array<FibNodeV4> =
    Array::with_max_entries(FIB_DEFAULT_SLOTS * FIB_V4.root_nodes(), BPF_F_MMAPABLE);
#[map]
pub(crate) static FIB_RANGES_V4: Array<FibLine> =
    Array::with_max_entries(FIB_DEFAULT_POOL_V4, BPF_F_MMAPABLE);
#[map]
pub(crate) static FIB_NODES_V6: Array<FibNodeV6> = Array::with_max_entries(
    FIB_DEFAULT_SLOTS * FIB_V6.root_nodes() + FIB_DEFAULT_POOL_V6,
    BPF_F_MMAPABLE,
);
/// The distinct routes IPv4 ranges point at, by index.
#[map]
pub(crate) static FIB_LEAVES: Array<FibLine> =
    Array::with_max_entries(FIB_LEAF_IDS / FIB_LINE_WORDS, BPF_F_MMAPABLE);
/// Lookups the LPM tries answered, per family (`FIB_FALLBACK_V4`, `_V6`).
#[map]
pub(crate) static FIB_FALLBACK: PerCpuArray<u64> = PerCpuArray::with_max_entries(2, 0);
