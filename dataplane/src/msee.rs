//! Typed, safe handle on a loaded `msee` program and its maps: what the
//! control plane calls to describe circuits, links, routes and policers.
use std::{
    net::IpAddr,
    os::fd::{AsFd as _, AsRawFd as _, BorrowedFd},
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use aya::{
    Ebpf, EbpfLoader, Pod,
    maps::{
        Array, DevMapHash, HashMap, IterableMap as _, LpmTrie, MapError, PerCpuArray, PerCpuValues,
        lpm_trie::Key,
    },
    programs::{
        ProgramError, TestRun, TestRunOptions, Xdp, XdpMode,
        links::{FdLink, PinnedLink},
        xdp::{XdpLink, XdpLinkId},
    },
};
use ipnet::IpNet;
use msee_abi::{
    Attachment, AttachmentKey, COUNTER_ROWS, Direction, GroupMember, LINK_DOWN, LINK_IS_UP, Link,
    LinkCounters, LinkRow, MAX_BURST_NB, MAX_FAST_IFINDEX, MAX_GROUP_MEMBERS, MAX_GROUPS,
    MAX_LINKS, MSEE_PROGRAM, NB_PER_BYTE, NextHopGroup, PEERING_KINDS, PeeringKind, PolicerConfig,
    PolicerState, ROUTE_LOCAL, Route, RouteKeyV4, RouteKeyV6, UNATTRIBUTED_ROW, link_dir_index,
    maps, route_key_v4, route_key_v6,
};

use crate::{
    config_map::{ConfigMap, GracePeriod},
    fib::{Family, Fib, FibStats, Regions, Sizes, region::Region},
};

pub mod capture;

/// How to attach to an interface.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttachMode {
    /// Native (driver) XDP: what the lab and real NICs use.
    Native,
    /// Generic (skb) XDP: works everywhere, slower.
    Generic,
}

impl From<AttachMode> for XdpMode {
    fn from(mode: AttachMode) -> XdpMode {
        match mode {
            AttachMode::Native => XdpMode::Driver,
            AttachMode::Generic => XdpMode::Skb,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum MseeError {
    #[error(
        "loading the msee eBPF object failed: {0} (needs root or CAP_BPF+CAP_NET_ADMIN, and a kernel with BTF)"
    )]
    Load(#[source] aya::EbpfError),
    #[error("the msee object has no {0}: the embedded object and this binary disagree")]
    Missing(&'static str),
    #[error("map {map}: {source}")]
    Map {
        map: &'static str,
        #[source]
        source: MapError,
    },
    #[error("devmap {map}: {source}")]
    DevMap {
        map: &'static str,
        #[source]
        source: aya::maps::xdp::XdpMapError,
    },
    #[error("program msee: {0}")]
    Program(#[source] ProgramError),
    #[error("attaching msee to ifindex {ifindex} in {mode:?} mode failed: {source}")]
    Attach {
        ifindex: u32,
        mode: AttachMode,
        #[source]
        source: ProgramError,
    },
    #[error("creating the pin directory {path}: {source}")]
    PinDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the pinned XDP link {path}: {reason}")]
    Pin { path: PathBuf, reason: String },
    #[error("route flags {0:#x} are not ones a route can carry (out of reach, local)")]
    RouteFlags(u32),
    #[error("{what} {value} is out of range (at most {max})")]
    OutOfRange {
        what: &'static str,
        value: u64,
        max: u64,
    },
    #[error("a next-hop group needs 1 to {MAX_GROUP_MEMBERS} members, not {0}")]
    GroupSize(usize),
    #[error(
        "the map pinned at {path} holds {found}, where this version's {map} holds {expected}: \
         it was pinned by another version of msee; remove that instance's pins \
         (`msee-daemon --stop` with its --state-dir) or use another state directory"
    )]
    PinnedLayout {
        map: String,
        path: PathBuf,
        found: String,
        expected: String,
    },
    #[error("mapping the CONFIG map into memory: {0}")]
    MapConfig(#[source] std::io::Error),
    #[error("mapping the forwarding table's map {map} into memory: {source}")]
    MapFib {
        map: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("policer rate {0} bit/s is below the minimum of 8 bit/s")]
    PolicerRate(u64),
    #[error("map {map}: {op}: {source}")]
    Syscall {
        map: &'static str,
        op: &'static str,
        #[source]
        source: std::io::Error,
    },
}

/// A route batch ([`Msee::upsert_routes`], [`Msee::remove_routes`]) that
/// was not applied whole. Entries are written in order: the first
/// `applied` are in the map, entry `failed` was refused for `source`, and
/// no later entry was tried. An entry that fails validation (a group id out
/// of range) is found before anything is written: `applied` is then 0.
#[derive(Debug, thiserror::Error)]
#[error(
    "{applied} of {total} route writes applied; entry {failed} ({prefix} in domain {domain}) failed, later ones not tried: {source}"
)]
pub struct RouteBatchError {
    pub applied: usize,
    pub total: usize,
    pub failed: usize,
    pub domain: u32,
    pub prefix: IpNet,
    #[source]
    pub source: Box<MseeError>,
}

type Result<T> = std::result::Result<T, MseeError>;

fn map_err(map: &'static str) -> impl FnOnce(MapError) -> MseeError {
    move |source| MseeError::Map { map, source }
}

/// A rewrite of a `CONFIG` entry could not wait for the program runs that
/// may still read the copy it writes (see `config_map`).
fn grace_err(source: std::io::Error) -> MseeError {
    MseeError::Syscall {
        map: maps::CONFIG,
        op: "waiting for a grace period",
        source,
    }
}

/// A route the program can carry: its group in range, and only the flags
/// a forwarding-table leaf keeps (the table and the trie must agree).
fn check_route(route: &Route) -> Result<()> {
    check_range("group id", route.group, MAX_GROUPS)?;
    let unknown = route.flags & !msee_abi::fib::FIB_ROUTE_FLAGS;
    if unknown != 0 {
        return Err(MseeError::RouteFlags(unknown));
    }
    Ok(())
}

fn check_range(what: &'static str, value: u32, limit: u32) -> Result<()> {
    if value >= limit {
        return Err(MseeError::OutOfRange {
            what,
            value: u64::from(value),
            max: u64::from(limit) - 1,
        });
    }
    Ok(())
}

/// Options for `Msee::load`.
#[derive(Clone, Debug, Default)]
pub struct LoadOptions {
    /// Most verbose aya-log level the kernel side emits (0 off, 1 error ... 5 trace).
    pub log_level: u8,
    /// Pin every map under this bpffs directory; a later load with the same
    /// directory adopts them (routes, link state and counters survive a
    /// restart of the control plane).
    pub pin_dir: Option<PathBuf>,
    /// The forwarding table's sizes (allocated whole at load).
    pub fib: FibSizes,
}

/// How big the forwarding table (`msee_abi::fib`) is: domains that can
/// have a table, and nodes per family shared by them. `None`: the default.
/// A domain beyond the slots, or whose table would need more nodes than
/// are left, is looked up in the LPM trie instead ([`Msee::fib_stats`]
/// names them).
///
/// Memory: per slot 256 KiB (IPv4 root) + 16 KiB (IPv6 root); per IPv4
/// "node" a 64-byte line of 16 range words, per IPv6 node 64 bytes; plus
/// 512 KiB of domain words and 256 KiB of distinct routes. An IPv4 route
/// longer than /16 takes at most two range words (where it starts and
/// where it ends; a /16 with ranges one header word more, in blocks of
/// four words), none where its neighbours have its route; an IPv6 route at
/// most one node per 4 bits past /12. The defaults (256 slots, 131,072
/// IPv4 lines, 65,536 IPv6 nodes) take 81 MiB.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FibSizes {
    /// Domain slots (default `msee_abi::fib::FIB_DEFAULT_SLOTS`); 0: no
    /// table, every lookup goes to the LPM tries (the pools are then not
    /// allocated).
    pub slots: Option<u32>,
    /// IPv4 pool: 64-byte lines of range words (default
    /// `FIB_DEFAULT_POOL_V4`).
    pub nodes_v4: Option<u32>,
    /// IPv6 pool nodes (default `FIB_DEFAULT_POOL_V6`).
    pub nodes_v6: Option<u32>,
}

impl FibSizes {
    fn resolve(&self) -> Result<Sizes> {
        use msee_abi::fib::{
            FIB_DEFAULT_POOL_V4, FIB_DEFAULT_POOL_V6, FIB_DEFAULT_SLOTS, FIB_LINE_WORDS,
            FIB_SLOT_MASK,
        };
        let slots = self.slots.unwrap_or(FIB_DEFAULT_SLOTS);
        let pool = |nodes: Option<u32>, default| {
            if slots == 0 {
                0
            } else {
                nodes.unwrap_or(default)
            }
        };
        let sizes = Sizes {
            slots,
            pool: [
                pool(self.nodes_v4, FIB_DEFAULT_POOL_V4),
                pool(self.nodes_v6, FIB_DEFAULT_POOL_V6),
            ],
        };
        if sizes.slots > FIB_SLOT_MASK + 1 {
            return Err(MseeError::OutOfRange {
                what: "forwarding table slots",
                value: u64::from(sizes.slots),
                max: u64::from(FIB_SLOT_MASK + 1),
            });
        }
        // Node indexes are 31 bits; a BPF array holds at most 4 GiB.
        for (f, what) in [
            (Family::V4, "forwarding table IPv4 range lines"),
            (Family::V6, "forwarding table IPv6 nodes"),
        ] {
            let roots = u64::from(sizes.slots) * u64::from(f.shape().root_nodes());
            let limit = ((1u64 << 31) - 1)
                .min((u64::from(u32::MAX) + 1) / u64::from(f.shape().node_bytes()) - 1);
            let Some(room) = limit.checked_sub(roots) else {
                return Err(MseeError::OutOfRange {
                    what: "forwarding table slots (their roots alone fill a map)",
                    value: u64::from(sizes.slots),
                    max: limit / u64::from(f.shape().root_nodes()),
                });
            };
            let max = match f {
                // Lines of `FIB_RANGES_V4`, a map of its own, whose words
                // root entries address in `FIB_RANGES_AT_BITS` bits.
                Family::V4 => {
                    (1u64 << msee_abi::fib::FIB_RANGES_AT_BITS) / u64::from(FIB_LINE_WORDS)
                }
                Family::V6 => room,
            };
            let pool = u64::from(sizes.pool[f as usize]);
            if pool > max {
                return Err(MseeError::OutOfRange {
                    what,
                    value: pool,
                    max,
                });
            }
        }
        Ok(sizes)
    }
}

/// The policer default: ExpressRoute polices with millisecond granularity,
/// so the bucket holds 1 ms at the committed rate, and never less than two
/// full-size frames (so a conforming flow of 1518-byte frames is not clipped
/// at low rates).
pub fn default_burst_bytes(rate_bits_per_sec: u64) -> u64 {
    (rate_bits_per_sec / 8 / 1000).max(2 * 1518)
}

/// The link-state words of a loaded `msee` (see [`Msee::link_switch`]):
/// cheap to clone, usable from any thread; one atomic store per flip.
#[derive(Clone)]
pub struct LinkSwitch {
    config: Arc<ConfigMap>,
}

impl LinkSwitch {
    /// Flip link `id`: every route whose group contains it follows at once.
    pub fn set(&self, id: u32, up: bool) -> Result<()> {
        check_range("link id", id, MAX_LINKS)?;
        self.config
            .set_link_up(id, if up { LINK_IS_UP } else { LINK_DOWN });
        Ok(())
    }

    pub fn get(&self, id: u32) -> Result<bool> {
        check_range("link id", id, MAX_LINKS)?;
        Ok(self.config.link_up(id) == LINK_IS_UP)
    }
}

impl std::fmt::Debug for LinkSwitch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LinkSwitch")
    }
}

/// A loaded `msee` program: owns the maps and the XDP attachments (which are
/// detached when this is dropped).
pub struct Msee {
    ebpf: Ebpf,
    /// The `CONFIG` map's value, mapped: links, link state, policers, DSCP
    /// policy, route epoch.
    config: Arc<ConfigMap>,
    links: Vec<(u32, Attached)>,
    /// Where attachments are pinned (with the maps), if anywhere.
    pin_dir: Option<PathBuf>,
    /// Some map was already pinned when this loaded: its content is a
    /// previous instance's (see [`Msee::adopted`]).
    adopted: bool,
    /// The kernel refused a batch command on the route tries (no batch
    /// operations on LPM tries before Linux 5.14): write one entry per call.
    no_batch: bool,
    /// CPUs that may run the program (per-CPU maps have a slot for each):
    /// sizes the policers' per-CPU credit chunks.
    possible_cpus: usize,
    /// The forwarding table, beside the LPM tries (which keep every route).
    fib: Fib,
}

/// The program on one interface.
enum Attached {
    /// Detached when the `Msee` drops.
    Owned(XdpLinkId),
    /// A `bpf_link` pinned at the path: it stays attached, running the
    /// last program put on it, when this process ends; removing the pin
    /// (with this handle gone) detaches it.
    Pinned(FdLink, PathBuf),
}

/// Where the XDP link on `ifindex` is pinned in `dir`.
pub fn link_pin(dir: &Path, ifindex: u32) -> PathBuf {
    dir.join(format!("link_{MSEE_PROGRAM}_{ifindex}"))
}

/// The interfaces with an XDP link pinned in `dir` ([`link_pin`]'s names);
/// none when `dir` does not exist.
pub fn pinned_link_ifindexes(dir: &Path) -> std::io::Result<Vec<u32>> {
    let prefix = format!("link_{MSEE_PROGRAM}_");
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut out = Vec::new();
    for e in entries {
        if let Some(ifindex) = e?
            .file_name()
            .to_str()
            .and_then(|n| n.strip_prefix(&prefix))
            .and_then(|i| i.parse().ok())
        {
            out.push(ifindex);
        }
    }
    out.sort_unstable();
    Ok(out)
}

/// The program the XDP link pinned in `dir` for `ifindex` runs, if there
/// is such a pin: a new instance compares it with the program the
/// interface runs to tell its own previous instance's attachment (which
/// it adopts) from anything else.
pub fn pinned_link_program(dir: &Path, ifindex: u32) -> Result<Option<u32>> {
    let path = link_pin(dir, ifindex);
    if !path.exists() {
        return Ok(None);
    }
    let link = PinnedLink::from_pin(&path).map_err(|e| MseeError::Pin {
        path: path.clone(),
        reason: e.to_string(),
    })?;
    let info = FdLink::from(link).info().map_err(|e| MseeError::Pin {
        path,
        reason: e.to_string(),
    })?;
    Ok(Some(info.program_id()))
}

/// Before adopting pinned maps, check each against the object's definition
/// of the map: a pin from another version with another type, keys, values
/// or sizes would otherwise surface as a verifier error on the program's
/// first access to it, as values read with the wrong layout, or (a shared
/// array where a per-CPU one belongs) as CPUs silently sharing state.
///
/// The forwarding table's maps are the exception: an adopting load writes
/// them again from the LPM tries whatever they hold (`Fib::rebuild`), so a
/// pin of one with another layout (other `--fib-*` sizes, or a version
/// that laid the table out otherwise) has all of them unpinned here and
/// made afresh. The program running meanwhile keeps its own.
fn check_pinned_layouts(
    object: &[u8],
    pins: &[(&'static str, PathBuf)],
    sizes: &[(&'static str, u32)],
) -> Result<()> {
    use aya::maps::MapType;
    use aya_obj::generated::bpf_map_type;
    let pinned: Vec<_> = pins.iter().filter(|(_, path)| path.exists()).collect();
    if pinned.is_empty() {
        return Ok(());
    }
    let obj = aya_obj::Object::parse(object)
        .map_err(|e| MseeError::Load(aya::EbpfError::ParseError(e)))?;
    let mut remake_fib = false;
    for (name, path) in pinned {
        let Some(def) = obj.maps.get(*name) else {
            continue;
        };
        let info = aya::maps::MapInfo::from_pin(path).map_err(map_err(name))?;
        // aya sizes a devmap's values for the kernel at load time.
        let devmap = matches!(info.map_type(), Ok(MapType::DevMap | MapType::DevMapHash));
        let layout = |kind: Option<MapType>, key: u32, value: u32, entries: u32| {
            let kind =
                kind.map_or_else(|| "a map of unknown type".to_owned(), |k| format!("{k:?}"));
            if devmap {
                format!("{kind}: keys of {key} bytes, {entries} entries")
            } else {
                format!("{kind}: keys of {key} bytes, values of {value} bytes, {entries} entries")
            }
        };
        let expected_kind = bpf_map_type::try_from(def.map_type())
            .ok()
            .and_then(|t| MapType::try_from(t).ok());
        let found = layout(
            info.map_type().ok(),
            info.key_size(),
            info.value_size(),
            info.max_entries(),
        );
        // The loader sizes some maps (`set_max_entries`).
        let entries = sizes
            .iter()
            .find(|(n, _)| n == name)
            .map_or(def.max_entries(), |(_, e)| *e);
        let expected = layout(expected_kind, def.key_size(), def.value_size(), entries);
        if found != expected && maps::FIB_TABLE.contains(name) {
            tracing::info!(
                map = name,
                found,
                expected,
                "a pinned forwarding table map of another layout: the table's maps are made afresh, written from the routes"
            );
            remake_fib = true;
            continue;
        }
        if found != expected {
            return Err(MseeError::PinnedLayout {
                map: name.to_string(),
                path: path.clone(),
                found,
                expected,
            });
        }
    }
    if remake_fib {
        // All of them: the program still attached (until the new one
        // replaces it) keeps the maps it has, which must stay a set that
        // agrees with itself; a root adopted beside fresh ranges, or
        // domain words adopted beside fresh roots, would send its lookups
        // into another domain's table.
        for (name, path) in pins {
            if maps::FIB_TABLE.contains(name) && path.exists() {
                std::fs::remove_file(path).map_err(|e| MseeError::Pin {
                    path: path.clone(),
                    reason: e.to_string(),
                })?;
            }
        }
    }
    Ok(())
}

impl Msee {
    /// Load the embedded object, creating or adopting pinned maps.
    pub fn load(opts: &LoadOptions) -> Result<Self> {
        Self::load_object(opts, crate::MSEE_OBJECT)
    }

    /// Load another build of the `msee` object than the embedded one (e.g.
    /// an earlier version, to compare the two in one benchmark run). Its
    /// maps must be the ones this version knows.
    pub fn load_object(opts: &LoadOptions, object: &[u8]) -> Result<Self> {
        let mut loader = EbpfLoader::new();
        loader.override_global("AYA_LOG_LEVEL", &opts.log_level, false);
        let pin_paths: Vec<(&'static str, PathBuf)> = match &opts.pin_dir {
            Some(dir) => {
                std::fs::create_dir_all(dir).map_err(|source| MseeError::PinDir {
                    path: dir.clone(),
                    source,
                })?;
                maps::ALL.iter().map(|m| (*m, dir.join(m))).collect()
            }
            None => Vec::new(),
        };
        let fib_sizes = opts.fib.resolve()?;
        // An array needs an entry (a table of no slots has no node).
        let sized = [
            (maps::FIB_NODES_V4, fib_sizes.nodes(Family::V4).max(1)),
            (maps::FIB_NODES_V6, fib_sizes.nodes(Family::V6).max(1)),
            (maps::FIB_RANGES_V4, fib_sizes.pool[0].max(1)),
        ];
        check_pinned_layouts(object, &pin_paths, &sized)?;
        let adopted = pin_paths.iter().any(|(_, path)| path.exists());
        for (name, path) in &pin_paths {
            loader.map_pin_path(name, path.as_path());
        }
        for (name, entries) in sized {
            loader.map_max_entries(name, entries);
        }
        let ebpf = loader.load(object).map_err(MseeError::Load)?;
        let config = match ebpf.map(maps::CONFIG) {
            Some(aya::maps::Map::Array(data)) => {
                // Written through a mapping, so its layout must be this
                // version's (an adopted pin or another object could differ).
                let info = data.info().map_err(map_err(maps::CONFIG))?;
                if info.max_entries() != 1
                    || info.value_size() as usize != size_of::<msee_abi::MseeConfig>()
                {
                    return Err(MseeError::Missing("CONFIG of this version's layout"));
                }
                ConfigMap::new(data.fd().as_fd()).map_err(MseeError::MapConfig)?
            }
            _ => return Err(MseeError::Missing("CONFIG as an array")),
        };
        // Only sizes the policers' per-CPU chunks: if the count is unknown,
        // a generous guess keeps chunks small (closer to a plain bucket).
        let possible_cpus = aya::util::nr_cpus().unwrap_or(256).max(1);
        let fib = Self::open_fib(&ebpf, fib_sizes, adopted)?;
        let mut msee = Self {
            ebpf,
            config: Arc::new(config),
            links: Vec::new(),
            pin_dir: opts.pin_dir.clone(),
            adopted,
            no_batch: false,
            possible_cpus,
            fib,
        };
        msee.program_mut()?.load().map_err(MseeError::Program)?;
        msee.write_dscp_policy()?;
        // Turns the destination caches on (epoch 0 is "off"), and retires
        // whatever adopted caches hold.
        msee.bump_route_epoch()?;
        Ok(msee)
    }

    /// Map the forwarding table's maps: a fresh table, or where any map was
    /// adopted (`adopted`), tables written again from the LPM tries (see
    /// `Fib::rebuild`): whatever pinned tables hold is never trusted.
    fn open_fib(ebpf: &Ebpf, sizes: Sizes, adopted: bool) -> Result<Fib> {
        let region = |name: &'static str, bytes: u64| -> Result<Region> {
            let Some(aya::maps::Map::Array(map)) = ebpf.map(name) else {
                return Err(MseeError::Missing(name));
            };
            let fd = map.fd().as_fd();
            Region::of_map(fd, bytes as usize)
                .map_err(|source| MseeError::MapFib { map: name, source })
        };
        let regions = Regions {
            words: region(maps::FIB_DOMAINS, crate::fib::DOMAINS_BYTES as u64)?,
            v4: region(maps::FIB_NODES_V4, sizes.bytes(Family::V4))?,
            v6: region(maps::FIB_NODES_V6, sizes.bytes(Family::V6))?,
            ranges: region(maps::FIB_RANGES_V4, sizes.range_bytes())?,
            leaves: region(maps::FIB_LEAVES, crate::fib::LEAVES_BYTES as u64)?,
        };
        let grace = GracePeriod::new().map_err(|source| MseeError::MapFib {
            map: maps::FIB_DOMAINS,
            source,
        })?;
        let grace = Box::new(move || {
            if let Err(e) = grace.wait() {
                // A program run lasts microseconds: a pause far longer than
                // any is the fallback.
                tracing::warn!(
                    "waiting for an RCU grace period failed ({e}): pausing 50 ms instead"
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        });
        if !adopted {
            return Ok(Fib::new(regions, sizes, grace));
        }
        let mut routes = Vec::new();
        let v4_trie: LpmTrie<_, RouteKeyV4, Route> = lpm(ebpf, maps::ROUTES_V4)?;
        for entry in v4_trie.iter() {
            let (key, route) = entry.map_err(map_err(maps::ROUTES_V4))?;
            let data = key.data();
            let (domain, addr) = data.split_at(4);
            let addr: [u8; 4] = addr.try_into().expect("4 bytes");
            let len = (key.prefix_len() - 32) as u8;
            let prefix = IpNet::new(IpAddr::from(addr), len).expect("a trie key's length");
            routes.push((domain_of(domain), prefix, route));
        }
        let v6_trie: LpmTrie<_, RouteKeyV6, Route> = lpm(ebpf, maps::ROUTES_V6)?;
        for entry in v6_trie.iter() {
            let (key, route) = entry.map_err(map_err(maps::ROUTES_V6))?;
            let data = key.data();
            let (domain, addr) = data.split_at(4);
            let addr: [u8; 16] = addr.try_into().expect("16 bytes");
            let len = (key.prefix_len() - 32) as u8;
            let prefix = IpNet::new(IpAddr::from(addr), len).expect("a trie key's length");
            routes.push((domain_of(domain), prefix, route));
        }
        Ok(Fib::rebuild(regions, sizes, grace, &routes))
    }

    /// The forwarding table's occupancy and the domains it leaves to the
    /// LPM tries.
    pub fn fib_stats(&self) -> FibStats {
        self.fib.stats()
    }

    /// Lookups the LPM tries answered because the domain had no forwarding
    /// table of the family (IPv4, IPv6), summed over CPUs.
    pub fn fib_fallback_lookups(&self) -> Result<[u64; 2]> {
        use msee_abi::fib::{FIB_FALLBACK_V4, FIB_FALLBACK_V6};
        let m: PerCpuArray<_, u64> = self.map_ref(maps::FIB_FALLBACK)?;
        let mut out = [0; 2];
        for (i, row) in [FIB_FALLBACK_V4, FIB_FALLBACK_V6].into_iter().enumerate() {
            let per_cpu = m.get(&row, 0).map_err(map_err(maps::FIB_FALLBACK))?;
            out[i] = per_cpu.iter().sum();
        }
        Ok(out)
    }

    /// Remove the pinned maps of an instance (after its last user stopped).
    pub fn unpin(dir: &Path) -> std::io::Result<()> {
        for m in maps::ALL {
            match std::fs::remove_file(dir.join(m)) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
        match std::fs::remove_dir(dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// Start forwarding aya-log records to the `log` facade. Keep the returned
    /// logger alive and call `flush` when its fd is readable.
    pub fn take_logger(
        &mut self,
    ) -> std::result::Result<aya_log::EbpfLogger<&'static dyn log::Log>, aya_log::Error> {
        aya_log::EbpfLogger::init(&mut self.ebpf)
    }

    /// The kernel's BTF id of the loaded program; `None` when the kernel
    /// refused the object's BTF (aya then loads the program without it and
    /// only logs a warning).
    pub fn program_btf_id(&self) -> Result<Option<u32>> {
        let program = self
            .ebpf
            .program(MSEE_PROGRAM)
            .ok_or(MseeError::Missing("msee program"))?;
        Ok(program.info().map_err(MseeError::Program)?.btf_id())
    }

    fn program_mut(&mut self) -> Result<&mut Xdp> {
        self.ebpf
            .program_mut(MSEE_PROGRAM)
            .ok_or(MseeError::Missing("msee program"))?
            .try_into()
            .map_err(MseeError::Program)
    }

    fn map_mut<'a, T>(&'a mut self, name: &'static str) -> Result<T>
    where
        T: TryFrom<&'a mut aya::maps::Map, Error = MapError>,
    {
        let map = self.ebpf.map_mut(name).ok_or(MseeError::Missing(name))?;
        T::try_from(map).map_err(map_err(name))
    }

    fn map_ref<'a, T>(&'a self, name: &'static str) -> Result<T>
    where
        T: TryFrom<&'a aya::maps::Map, Error = MapError>,
    {
        let map = self.ebpf.map(name).ok_or(MseeError::Missing(name))?;
        T::try_from(map).map_err(map_err(name))
    }

    /// The DSCP policy of every peering kind, precomputed for the kernel.
    fn write_dscp_policy(&mut self) -> Result<()> {
        let mut policy = [[0u8; 64]; PEERING_KINDS];
        for kind in [PeeringKind::Private, PeeringKind::Microsoft] {
            for dscp in 0..64u8 {
                policy[kind as usize][dscp as usize] = kind.rewrite_dscp(dscp);
            }
        }
        self.config.set_dscp_policy(policy);
        Ok(())
    }

    // ---- Ports and attachment to interfaces.

    /// Allow redirects out of `ifindex`.
    pub fn add_port(&mut self, ifindex: u32) -> Result<()> {
        let mut tx: DevMapHash<_> = self.map_mut(maps::TX_PORTS)?;
        tx.insert(ifindex, ifindex, None, 0)
            .map_err(|source| MseeError::DevMap {
                map: maps::TX_PORTS,
                source,
            })
    }

    /// Whether the maps were a previous instance's (pinned, and adopted by
    /// this load): routes, groups, links, link states and counters are
    /// what it left, and forwarding may still be running on them.
    pub fn adopted(&self) -> bool {
        self.adopted
    }

    /// Attach the program to `ifindex`. Without a pin directory it is
    /// detached when `self` drops. With one, the attachment is a pinned
    /// `bpf_link` that outlives this process; if a previous instance's
    /// link is pinned there, this program replaces its program on it in
    /// one step (`BPF_LINK_UPDATE`): the port never runs without one.
    pub fn attach(&mut self, ifindex: u32, mode: AttachMode) -> Result<()> {
        let attach_err = |source| MseeError::Attach {
            ifindex,
            mode,
            source,
        };
        let Some(dir) = self.pin_dir.clone() else {
            let link = self
                .program_mut()?
                .attach_to_if_index(ifindex, mode.into())
                .map_err(attach_err)?;
            self.links.push((ifindex, Attached::Owned(link)));
            return Ok(());
        };
        let path = link_pin(&dir, ifindex);
        let pin_err = |reason: String| MseeError::Pin {
            path: path.clone(),
            reason,
        };
        let program = self.program_mut()?;
        let id = if path.exists() {
            let pinned = PinnedLink::from_pin(&path).map_err(|e| pin_err(e.to_string()))?;
            let link =
                XdpLink::try_from(FdLink::from(pinned)).map_err(|e| pin_err(e.to_string()))?;
            program.attach_to_link(link).map_err(attach_err)?
        } else {
            program
                .attach_to_if_index(ifindex, mode.into())
                .map_err(attach_err)?
        };
        let link = program.take_link(id).map_err(MseeError::Program)?;
        let link = FdLink::try_from(link).map_err(|_| {
            pin_err(
                "the kernel attached XDP through netlink, not a bpf_link (Linux 5.9 or later \
                 is needed to pin it)"
                    .into(),
            )
        })?;
        if !path.exists() {
            let pinned = link.pin(&path).map_err(|e| pin_err(e.to_string()))?;
            self.links
                .push((ifindex, Attached::Pinned(FdLink::from(pinned), path)));
        } else {
            self.links.push((ifindex, Attached::Pinned(link, path)));
        }
        Ok(())
    }

    /// Detach from `ifindex` (nothing to do when not attached there).
    pub fn detach(&mut self, ifindex: u32) -> Result<()> {
        let Some(at) = self.links.iter().position(|(i, _)| *i == ifindex) else {
            return Ok(());
        };
        let (_, link) = self.links.remove(at);
        self.release(link)
    }

    fn release(&mut self, link: Attached) -> Result<()> {
        match link {
            Attached::Owned(link) => self.program_mut()?.detach(link).map_err(MseeError::Program),
            // The pin goes, then the last descriptor: the kernel detaches.
            Attached::Pinned(link, path) => {
                match std::fs::remove_file(&path) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                        return Err(MseeError::Pin {
                            path,
                            reason: e.to_string(),
                        });
                    }
                    _ => {}
                }
                drop(link);
                Ok(())
            }
        }
    }

    /// Detach from every interface this handle attached to.
    pub fn detach_all(&mut self) -> Result<()> {
        for (_, link) in std::mem::take(&mut self.links) {
            self.release(link)?;
        }
        Ok(())
    }

    /// The interfaces this handle attached to.
    pub fn attached(&self) -> Vec<u32> {
        self.links.iter().map(|(i, _)| *i).collect()
    }

    // ---- Circuits: attachments and links.

    /// Frames on `key` belong to `attachment` (its circuit, peering, domain, link).
    pub fn set_attachment(&mut self, key: AttachmentKey, attachment: Attachment) -> Result<()> {
        check_range("link id", attachment.link, MAX_LINKS)?;
        let attachment = Attachment {
            valid: 1,
            ..attachment
        };
        let mut m: HashMap<_, AttachmentKey, Attachment> = self.map_mut(maps::ATTACHMENTS)?;
        m.insert(key, attachment, 0)
            .map_err(map_err(maps::ATTACHMENTS))?;
        self.set_untagged(key, attachment)
    }

    pub fn remove_attachment(&mut self, key: AttachmentKey) -> Result<()> {
        let mut m: HashMap<_, AttachmentKey, Attachment> = self.map_mut(maps::ATTACHMENTS)?;
        m.remove(&key).map_err(map_err(maps::ATTACHMENTS))?;
        self.set_untagged(key, Attachment::default())
    }

    /// Every attachment's key, as the map holds them (a previous
    /// instance's too, after an adoption).
    pub fn attachment_keys(&self) -> Result<Vec<AttachmentKey>> {
        let m: HashMap<_, AttachmentKey, Attachment> = self.map_ref(maps::ATTACHMENTS)?;
        m.keys()
            .collect::<std::result::Result<_, _>>()
            .map_err(map_err(maps::ATTACHMENTS))
    }

    /// Mirror an untagged attachment into the by-ifindex fast path.
    fn set_untagged(&mut self, key: AttachmentKey, attachment: Attachment) -> Result<()> {
        if key.outer_vlan != 0 || key.inner_vlan != 0 || key.ifindex >= MAX_FAST_IFINDEX {
            return Ok(());
        }
        let mut m: Array<_, Attachment> = self.map_mut(maps::UNTAGGED)?;
        m.set(key.ifindex, attachment, 0)
            .map_err(map_err(maps::UNTAGGED))
    }

    /// Install or replace link `id`'s egress details (port, tags, MACs).
    /// Frames see the old entry or the new one whole, never a mix. A
    /// second rewrite of the same link within a few milliseconds waits for
    /// the frames that may still read the entry it replaces (an RCU grace
    /// period, milliseconds); so does the first rewrite of a handle.
    pub fn set_link(&mut self, id: u32, link: Link) -> Result<()> {
        check_range("link id", id, MAX_LINKS)?;
        self.config.set_link(id, link).map_err(grace_err)
    }

    /// Link `id`'s egress details as the program sees them.
    pub fn link(&self, id: u32) -> Result<Link> {
        check_range("link id", id, MAX_LINKS)?;
        Ok(self.config.link(id))
    }

    /// Flip one link up or down: every route whose group contains it moves
    /// at once, whatever the table size.
    pub fn set_link_state(&mut self, id: u32, up: bool) -> Result<()> {
        check_range("link id", id, MAX_LINKS)?;
        self.config
            .set_link_up(id, if up { LINK_IS_UP } else { LINK_DOWN });
        Ok(())
    }

    /// A handle on the link-state map alone, which other threads and tasks
    /// can hold: whoever detects a failure (carrier monitor, BFD) flips the
    /// link itself instead of queueing behind the owner of this `Msee`.
    pub fn link_switch(&self) -> Result<LinkSwitch> {
        Ok(LinkSwitch {
            config: self.config.clone(),
        })
    }

    pub fn link_state(&self, id: u32) -> Result<bool> {
        check_range("link id", id, MAX_LINKS)?;
        Ok(self.config.link_up(id) == LINK_IS_UP)
    }

    // ---- Routing.

    /// Install or replace next-hop group `id`: one map write, then the route
    /// epoch is bumped, which retires the destination caches' copies of the
    /// group. The write is a plain copy of the entry: a packet racing it may
    /// read some members old and some new (each a link of one of the two).
    pub fn set_group(&mut self, id: u32, members: &[GroupMember]) -> Result<()> {
        check_range("group id", id, MAX_GROUPS)?;
        if members.is_empty() || members.len() > MAX_GROUP_MEMBERS {
            return Err(MseeError::GroupSize(members.len()));
        }
        for m in members {
            check_range("link id", m.link, MAX_LINKS)?;
        }
        let mut group = NextHopGroup {
            count: members.len() as u32,
            ..Default::default()
        };
        group.members[..members.len()].copy_from_slice(members);
        let mut m: Array<_, NextHopGroup> = self.map_mut(maps::GROUPS)?;
        let written = m.set(id, group, 0).map_err(map_err(maps::GROUPS));
        // The destination caches hold copies of groups (`msee_abi::CachedGroup`).
        self.bump_route_epoch()?;
        written
    }

    /// Route `prefix` in `domain`. Replacing an existing route is one map
    /// update, so a prefix that stays routed is never missing.
    pub fn upsert_route(&mut self, domain: u32, prefix: IpNet, route: Route) -> Result<()> {
        check_route(&route)?;
        let written = self.write_route(domain, prefix, route);
        if written.is_ok() {
            self.fib.upsert(domain, &prefix, route);
        }
        self.bump_route_epoch()?;
        written
    }

    fn write_route(&mut self, domain: u32, prefix: IpNet, route: Route) -> Result<()> {
        match prefix {
            IpNet::V4(_) => {
                let mut m: LpmTrie<_, RouteKeyV4, Route> = self.map_mut(maps::ROUTES_V4)?;
                m.insert(&v4_key(domain, prefix), route, 0)
                    .map_err(map_err(maps::ROUTES_V4))
            }
            IpNet::V6(_) => {
                let mut m: LpmTrie<_, RouteKeyV6, Route> = self.map_mut(maps::ROUTES_V6)?;
                m.insert(&v6_key(domain, prefix), route, 0)
                    .map_err(map_err(maps::ROUTES_V6))
            }
        }
    }

    pub fn remove_route(&mut self, domain: u32, prefix: IpNet) -> Result<()> {
        let removed = self.delete_route(domain, prefix);
        if removed.is_ok() {
            self.fib.remove(domain, &prefix);
        }
        self.bump_route_epoch()?;
        removed
    }

    fn delete_route(&mut self, domain: u32, prefix: IpNet) -> Result<()> {
        match prefix {
            IpNet::V4(_) => {
                let mut m: LpmTrie<_, RouteKeyV4, Route> = self.map_mut(maps::ROUTES_V4)?;
                m.remove(&v4_key(domain, prefix))
                    .map_err(map_err(maps::ROUTES_V4))
            }
            IpNet::V6(_) => {
                let mut m: LpmTrie<_, RouteKeyV6, Route> = self.map_mut(maps::ROUTES_V6)?;
                m.remove(&v6_key(domain, prefix))
                    .map_err(map_err(maps::ROUTES_V6))
            }
        }
    }

    /// The route installed for exactly `prefix` in `domain`, if any.
    pub fn route(&self, domain: u32, prefix: IpNet) -> Result<Option<Route>> {
        let plen = 32 + u32::from(prefix.prefix_len());
        let found = match prefix.trunc() {
            IpNet::V4(p) => {
                let m: LpmTrie<_, RouteKeyV4, Route> = self.map_ref(maps::ROUTES_V4)?;
                m.iter()
                    .filter_map(std::result::Result::ok)
                    .find(|(k, _)| {
                        k.prefix_len() == plen
                            && k.data() == route_key_v4(domain, p.addr().octets())
                    })
                    .map(|(_, v)| v)
            }
            IpNet::V6(p) => {
                let m: LpmTrie<_, RouteKeyV6, Route> = self.map_ref(maps::ROUTES_V6)?;
                m.iter()
                    .filter_map(std::result::Result::ok)
                    .find(|(k, _)| {
                        k.prefix_len() == plen
                            && k.data() == route_key_v6(domain, p.addr().octets())
                    })
                    .map(|(_, v)| v)
            }
        };
        Ok(found)
    }

    /// Every route of every domain, as the maps hold them (a previous
    /// instance's, after an adoption): (domain, prefix, route).
    pub fn routes(&self) -> Result<Vec<(u32, IpNet, Route)>> {
        let mut out = Vec::new();
        let v4: LpmTrie<_, RouteKeyV4, Route> = self.map_ref(maps::ROUTES_V4)?;
        for entry in v4.iter() {
            let (k, route) = entry.map_err(map_err(maps::ROUTES_V4))?;
            let d = k.data();
            let domain = u32::from_be_bytes([d[0], d[1], d[2], d[3]]);
            let addr = std::net::Ipv4Addr::new(d[4], d[5], d[6], d[7]);
            let len = k.prefix_len().saturating_sub(32) as u8;
            if let Ok(net) = ipnet::Ipv4Net::new(addr, len) {
                out.push((domain, IpNet::V4(net), route));
            }
        }
        let v6: LpmTrie<_, RouteKeyV6, Route> = self.map_ref(maps::ROUTES_V6)?;
        for entry in v6.iter() {
            let (k, route) = entry.map_err(map_err(maps::ROUTES_V6))?;
            let d = k.data();
            let domain = u32::from_be_bytes([d[0], d[1], d[2], d[3]]);
            let mut a = [0u8; 16];
            a.copy_from_slice(&d[4..20]);
            let len = k.prefix_len().saturating_sub(32) as u8;
            if let Ok(net) = ipnet::Ipv6Net::new(a.into(), len) {
                out.push((domain, IpNet::V6(net), route));
            }
        }
        Ok(out)
    }

    /// Next-hop group `id` as the map holds it (empty: never written).
    pub fn group(&self, id: u32) -> Result<Vec<GroupMember>> {
        check_range("group id", id, MAX_GROUPS)?;
        let m: Array<_, NextHopGroup> = self.map_ref(maps::GROUPS)?;
        let g = m.get(&id, 0).map_err(map_err(maps::GROUPS))?;
        let n = (g.count as usize).min(MAX_GROUP_MEMBERS);
        Ok(g.members[..n].to_vec())
    }

    /// The route the dataplane uses for `addr` in `domain`: a longest-prefix
    /// match, as `msee` does per packet (in the domain's forwarding table,
    /// else its LPM trie; [`Msee::route`] finds an exact prefix but walks
    /// the table).
    pub fn lookup_route(&self, domain: u32, addr: IpAddr) -> Result<Option<Route>> {
        if let Some(found) = self.fib.lookup(domain, addr) {
            return Ok(found);
        }
        self.lookup_trie(domain, addr)
    }

    /// The LPM trie's longest-prefix match for `addr` in `domain` (every
    /// route is there, whether or not the domain has a forwarding table).
    pub fn lookup_trie(&self, domain: u32, addr: IpAddr) -> Result<Option<Route>> {
        let found = match addr {
            IpAddr::V4(a) => {
                let m: LpmTrie<_, RouteKeyV4, Route> = self.map_ref(maps::ROUTES_V4)?;
                m.get(&Key::new(64, route_key_v4(domain, a.octets())), 0)
            }
            IpAddr::V6(a) => {
                let m: LpmTrie<_, RouteKeyV6, Route> = self.map_ref(maps::ROUTES_V6)?;
                m.get(&Key::new(160, route_key_v6(domain, a.octets())), 0)
            }
        };
        match found {
            Ok(r) => Ok(Some(r)),
            Err(MapError::KeyNotFound) => Ok(None),
            Err(e) => Err(map_err(match addr {
                IpAddr::V4(_) => maps::ROUTES_V4,
                IpAddr::V6(_) => maps::ROUTES_V6,
            })(e)),
        }
    }

    /// Route (or re-route) every `(domain, prefix, route)` of `routes`, in
    /// order, with as few syscalls as the kernel allows
    /// (`BPF_MAP_UPDATE_BATCH`, up to [`ROUTE_BATCH`] entries per call).
    /// Each entry is still one atomic replacement in the map, exactly as
    /// [`Msee::upsert_route`]: a prefix that stays routed is never missing,
    /// even half way through a batch. Either every entry is applied, or the
    /// error says which were ([`RouteBatchError`]).
    pub fn upsert_routes(
        &mut self,
        routes: &[(u32, IpNet, Route)],
    ) -> std::result::Result<(), RouteBatchError> {
        let written = self.write_routes(routes);
        let applied = match &written {
            Ok(()) => routes.len(),
            Err(e) => e.applied,
        };
        self.fib.upsert_all(&routes[..applied]);
        let last = routes.last().map(|r| (routes.len(), r.0, r.1));
        self.retire_cached_routes(written, last)
    }

    fn write_routes(
        &mut self,
        routes: &[(u32, IpNet, Route)],
    ) -> std::result::Result<(), RouteBatchError> {
        let total = routes.len();
        let refuse = |i: usize, applied: usize, source: MseeError| RouteBatchError {
            applied,
            total,
            failed: i,
            domain: routes[i].0,
            prefix: routes[i].1,
            source: Box::new(source),
        };
        // Validate everything before writing anything.
        for (i, (_, _, route)) in routes.iter().enumerate() {
            check_route(route).map_err(|e| refuse(i, 0, e))?;
        }
        let mut done = 0;
        for run in family_runs(routes.iter().map(|r| r.1)) {
            let entries = &routes[run.clone()];
            let written = match entries[0].1 {
                IpNet::V4(_) => {
                    let keys: Vec<Key<RouteKeyV4>> =
                        entries.iter().map(|(d, p, _)| v4_key(*d, *p)).collect();
                    let values: Vec<Route> = entries.iter().map(|r| r.2).collect();
                    self.write_batch(maps::ROUTES_V4, &keys, Some(&values))
                }
                IpNet::V6(_) => {
                    let keys: Vec<Key<RouteKeyV6>> =
                        entries.iter().map(|(d, p, _)| v6_key(*d, *p)).collect();
                    let values: Vec<Route> = entries.iter().map(|r| r.2).collect();
                    self.write_batch(maps::ROUTES_V6, &keys, Some(&values))
                }
            };
            let (n, result) = written;
            if let Err(e) = result {
                return Err(refuse(done + n, done + n, e));
            }
            done += n;
        }
        Ok(())
    }

    /// Remove every exact `(domain, prefix)` of `prefixes`, in order
    /// (`BPF_MAP_DELETE_BATCH`). A prefix that is not routed is an error
    /// that stops the batch there, as with [`Msee::remove_route`].
    pub fn remove_routes(
        &mut self,
        prefixes: &[(u32, IpNet)],
    ) -> std::result::Result<(), RouteBatchError> {
        let removed = self.delete_routes(prefixes);
        let applied = match &removed {
            Ok(()) => prefixes.len(),
            Err(e) => e.applied,
        };
        for (domain, prefix) in &prefixes[..applied] {
            self.fib.remove(*domain, prefix);
        }
        let last = prefixes.last().map(|p| (prefixes.len(), p.0, p.1));
        self.retire_cached_routes(removed, last)
    }

    /// After a batch write, whatever it applied: bump the route epoch, so no
    /// CPU keeps forwarding by a cached answer of the tries from before it.
    /// `last` is (batch length, domain and prefix of its last entry): if the
    /// bump itself fails, the batch is reported as not applied from its
    /// last entry on (writing that one again is harmless).
    fn retire_cached_routes(
        &mut self,
        written: std::result::Result<(), RouteBatchError>,
        last: Option<(usize, u32, IpNet)>,
    ) -> std::result::Result<(), RouteBatchError> {
        let Some((total, domain, prefix)) = last else {
            return written;
        };
        let bumped = self.bump_route_epoch();
        written?;
        bumped.map_err(|source| RouteBatchError {
            applied: total - 1,
            total,
            failed: total - 1,
            domain,
            prefix,
            source: Box::new(source),
        })
    }

    /// Retire every CPU's cached route lookups (`msee_abi::RouteCacheV4`):
    /// called after each write to the route tries and to `GROUPS`. One writer (this handle
    /// is `&mut`), so read-increment-write is enough.
    fn bump_route_epoch(&mut self) -> Result<()> {
        self.config.bump_route_epoch();
        Ok(())
    }

    fn delete_routes(
        &mut self,
        prefixes: &[(u32, IpNet)],
    ) -> std::result::Result<(), RouteBatchError> {
        let mut done = 0;
        for run in family_runs(prefixes.iter().map(|r| r.1)) {
            let entries = &prefixes[run.clone()];
            let (n, result) = match entries[0].1 {
                IpNet::V4(_) => {
                    let keys: Vec<Key<RouteKeyV4>> =
                        entries.iter().map(|(d, p)| v4_key(*d, *p)).collect();
                    self.write_batch::<RouteKeyV4>(maps::ROUTES_V4, &keys, None)
                }
                IpNet::V6(_) => {
                    let keys: Vec<Key<RouteKeyV6>> =
                        entries.iter().map(|(d, p)| v6_key(*d, *p)).collect();
                    self.write_batch::<RouteKeyV6>(maps::ROUTES_V6, &keys, None)
                }
            };
            if let Err(source) = result {
                let i = done + n;
                return Err(RouteBatchError {
                    applied: i,
                    total: prefixes.len(),
                    failed: i,
                    domain: prefixes[i].0,
                    prefix: prefixes[i].1,
                    source: Box::new(source),
                });
            }
            done += n;
        }
        Ok(())
    }

    /// Writes (`values` given: update) or deletes `keys` in the LPM trie
    /// `name`, [`ROUTE_BATCH`] entries per syscall. Returns how many leading
    /// entries were applied, and the error that stopped the rest.
    fn write_batch<K: Pod>(
        &mut self,
        name: &'static str,
        keys: &[Key<K>],
        values: Option<&[Route]>,
    ) -> (usize, Result<()>) {
        debug_assert!(values.is_none_or(|v| v.len() == keys.len()));
        let op = if values.is_some() {
            "BPF_MAP_UPDATE_BATCH"
        } else {
            "BPF_MAP_DELETE_BATCH"
        };
        let no_batch = self.no_batch;
        let mut trie: LpmTrie<_, K, Route> = match self.map_mut(name) {
            Ok(t) => t,
            Err(e) => return (0, Err(e)),
        };
        let mut done = 0;
        let (mut fell_back, mut permanent) = (false, false);
        let mut no_memory = NoMemory::default();
        while done < keys.len() {
            if no_batch || fell_back {
                // One entry per syscall, as upsert_route/remove_route.
                let r = match values {
                    Some(v) => trie.insert(&keys[done], v[done], 0),
                    None => trie.remove(&keys[done]),
                };
                if let Err(e) = r {
                    return (done, Err(map_err(name)(e)));
                }
                done += 1;
                continue;
            }
            let end = keys.len().min(done + ROUTE_BATCH);
            // The trie was opened as LpmTrie<K, Route>, which checked that
            // the map's key and value sizes are those of Key<K> and Route:
            // the kernel reads exactly these slices.
            let (n, r) = map_batch(
                trie.map().fd().as_fd(),
                &keys[done..end],
                values.map(|v| &v[done..end]),
            );
            match r {
                Ok(()) => done = end,
                // No batch commands for this map type: nothing was
                // applied; single writes from now on.
                Err(e) if n == 0 && is_unsupported(&e) => {
                    tracing::warn!(
                        map = name,
                        "{op} unsupported ({e}): writing routes one per syscall"
                    );
                    fell_back = true;
                    permanent = true;
                }
                // Refused before anything was applied: an unknown command
                // (kernels before 5.6) or an invalid first entry. Single
                // writes tell which (and work on those kernels).
                Err(e) if n == 0 && e.raw_os_error() == Some(libc::EINVAL) => fell_back = true,
                // Go on from the entry that found no memory, after a wait.
                Err(e) if no_memory.waited(&e) => done += n,
                Err(source) => {
                    return (
                        done + n,
                        Err(MseeError::Syscall {
                            map: name,
                            op,
                            source,
                        }),
                    );
                }
            }
        }
        if permanent {
            self.no_batch = true;
        }
        if no_memory.waits > 0 {
            tracing::info!(
                map = name,
                waits = no_memory.waits,
                "{op}: the kernel had no memory for the trie's nodes for a moment; the write went on after waiting"
            );
        }
        (done, Ok(()))
    }

    /// `addr` is no longer the MSEE's in `domain`.
    pub fn remove_local(&mut self, domain: u32, addr: IpAddr) -> Result<()> {
        self.remove_route(domain, IpNet::from(addr))
    }

    /// Frames to `addr` arriving on any attachment of `domain` are the
    /// MSEE's own: handed to the kernel.
    pub fn add_local(&mut self, domain: u32, addr: IpAddr) -> Result<()> {
        self.upsert_route(
            domain,
            IpNet::from(addr),
            Route {
                group: 0,
                flags: ROUTE_LOCAL,
            },
        )
    }

    // ---- Policing.

    /// Police (link, direction) at `rate_bits_per_sec` with a bucket of
    /// `burst_bytes` (default: `default_burst_bytes`). Applied in place: the
    /// bucket's current credit is kept, so a rate change neither resets it
    /// nor drops conforming traffic. A rate of 0 turns the policer off.
    pub fn set_policer(
        &mut self,
        link: u32,
        dir: Direction,
        rate_bits_per_sec: u64,
        burst_bytes: Option<u64>,
    ) -> Result<()> {
        check_range("link id", link, MAX_LINKS)?;
        let cfg = if rate_bits_per_sec == 0 {
            PolicerConfig::default()
        } else {
            if rate_bits_per_sec < 8 {
                return Err(MseeError::PolicerRate(rate_bits_per_sec));
            }
            let rate = rate_bits_per_sec / 8;
            let burst = burst_bytes.unwrap_or_else(|| default_burst_bytes(rate_bits_per_sec));
            let burst_nb = burst.saturating_mul(NB_PER_BYTE).min(MAX_BURST_NB);
            PolicerConfig {
                rate_bytes_per_sec: rate,
                burst_nb,
                refill_cap_ns: burst_nb.div_ceil(rate),
                chunk_nb: burst_nb / (8 * self.possible_cpus as u64),
            }
        };
        self.config
            .set_policer(link_dir_index(link, dir), cfg)
            .map_err(grace_err)
    }

    /// The bucket of (link, direction) as the kernel left it.
    /// The policer's configuration (rate 0: not policed).
    pub fn policer(&self, link: u32, dir: Direction) -> Result<PolicerConfig> {
        check_range("link id", link, MAX_LINKS)?;
        Ok(self.config.policer(link_dir_index(link, dir)))
    }

    pub fn policer_state(&self, link: u32, dir: Direction) -> Result<PolicerState> {
        check_range("link id", link, MAX_LINKS)?;
        let m: Array<_, PolicerState> = self.map_ref(maps::POLICER_STATE)?;
        m.get(&link_dir_index(link, dir), 0)
            .map_err(map_err(maps::POLICER_STATE))
    }

    // ---- Counters.

    /// Counters of (link, direction), summed over CPUs.
    pub fn link_counters(&self, link: u32, dir: Direction) -> Result<LinkCounters> {
        check_range("link id", link, MAX_LINKS)?;
        self.counter_row(link_dir_index(link, dir))
    }

    /// Zeroes link `link`'s counter rows, both directions, every CPU: a link
    /// id a reload hands out again starts from nothing.
    pub fn reset_link_counters(&mut self, link: u32) -> Result<()> {
        check_range("link id", link, MAX_LINKS)?;
        let cpus = self.possible_cpus;
        let mut m: PerCpuArray<_, LinkRow> = self.map_mut(maps::COUNTERS)?;
        for dir in Direction::ALL {
            let zeros = PerCpuValues::try_from(vec![LinkRow::default(); cpus]).map_err(|e| {
                MseeError::Syscall {
                    map: maps::COUNTERS,
                    op: "zeroing a row",
                    source: e,
                }
            })?;
            m.set(link_dir_index(link, dir), zeros, 0)
                .map_err(map_err(maps::COUNTERS))?;
        }
        Ok(())
    }

    /// The kernel's id of the counters map: it changes when the map is
    /// made anew and stays when a pinned map is adopted, so it tells
    /// whether counters read now continue those read before (the usage
    /// ledger's counter source).
    pub fn counters_map_id(&self) -> Result<u32> {
        match self.ebpf.map(maps::COUNTERS) {
            Some(aya::maps::Map::PerCpuArray(data)) => {
                Ok(data.info().map_err(map_err(maps::COUNTERS))?.id())
            }
            _ => Err(MseeError::Missing("COUNTERS as a per-CPU array")),
        }
    }

    /// Frames that could not be tied to any link (cut inside their VLAN tags).
    pub fn unattributed_counters(&self) -> Result<LinkCounters> {
        self.counter_row(UNATTRIBUTED_ROW)
    }

    /// Link `link`'s counters in direction `dir`, CPU by CPU (index = CPU
    /// id): shows which CPUs forwarded a link's traffic.
    pub fn link_counters_per_cpu(&self, link: u32, dir: Direction) -> Result<Vec<LinkCounters>> {
        check_range("link id", link, MAX_LINKS)?;
        self.counter_rows(link_dir_index(link, dir))
    }

    fn counter_row(&self, row: u32) -> Result<LinkCounters> {
        let mut total = LinkCounters::default();
        for c in self.counter_rows(row)? {
            total.add(&c);
        }
        Ok(total)
    }

    fn counter_rows(&self, row: u32) -> Result<Vec<LinkCounters>> {
        debug_assert!(row < COUNTER_ROWS);
        let m: PerCpuArray<_, LinkRow> = self.map_ref(maps::COUNTERS)?;
        let per_cpu = m.get(&row, 0).map_err(map_err(maps::COUNTERS))?;
        Ok(per_cpu.iter().map(|r| r.counters).collect())
    }

    // ---- Running the program on a frame (fixtures and benchmarks).

    /// Run the program once on `frame` as if it arrived on `ingress_ifindex`
    /// (through `BPF_PROG_TEST_RUN`; nothing is sent). Returns the XDP action
    /// and the frame as the program left it.
    pub fn test_run(&mut self, frame: &[u8], ingress_ifindex: u32) -> Result<(u32, Vec<u8>)> {
        let ctx = xdp_md(frame.len(), ingress_ifindex);
        // Room for a frame that grows (tags pushed).
        let mut out = vec![0u8; frame.len() + 256];
        let result = self
            .program_mut()?
            .test_run(TestRunOptions {
                data_in: Some(frame),
                data_out: Some(&mut out),
                ctx_in: Some(&ctx),
                ..Default::default()
            })
            .map_err(MseeError::Program)?;
        out.truncate(result.data_size_out as usize);
        Ok((result.return_value, out))
    }

    /// Mean time per run of the program over `repeat` runs of `frame` (the
    /// kernel re-runs the same buffer, so a forwarded frame keeps losing TTL:
    /// send frames with TTL 255 and repeat at most ~250 times per call, or
    /// use a frame whose path does not depend on TTL).
    pub fn time_run(
        &mut self,
        frame: &[u8],
        ingress_ifindex: u32,
        repeat: u32,
    ) -> Result<(u32, Duration)> {
        let ctx = xdp_md(frame.len(), ingress_ifindex);
        let result = self
            .program_mut()?
            .test_run(TestRunOptions {
                data_in: Some(frame),
                ctx_in: Some(&ctx),
                repeat,
                ..Default::default()
            })
            .map_err(MseeError::Program)?;
        Ok((result.return_value, result.duration))
    }
}

/// The LPM trie `name` of a loaded object.
fn lpm<'a, K: Pod>(
    ebpf: &'a Ebpf,
    name: &'static str,
) -> Result<LpmTrie<&'a aya::maps::MapData, K, Route>> {
    let map = ebpf.map(name).ok_or(MseeError::Missing(name))?;
    LpmTrie::try_from(map).map_err(map_err(name))
}

/// The domain of a route key (its first 4 bytes, big-endian).
fn domain_of(bytes: &[u8]) -> u32 {
    u32::from_be_bytes(bytes.try_into().expect("4 bytes of domain"))
}

/// Most routes written per batch syscall: bounds the buffers and the time
/// one call spends in the kernel (each entry costs about a microsecond).
pub const ROUTE_BATCH: usize = 8192;

fn v4_key(domain: u32, prefix: IpNet) -> Key<RouteKeyV4> {
    let p = prefix.trunc();
    let addr = match p.addr() {
        IpAddr::V4(a) => a.octets(),
        IpAddr::V6(_) => unreachable!("an IPv4 run"),
    };
    Key::new(32 + u32::from(p.prefix_len()), route_key_v4(domain, addr))
}

fn v6_key(domain: u32, prefix: IpNet) -> Key<RouteKeyV6> {
    let p = prefix.trunc();
    let addr = match p.addr() {
        IpAddr::V6(a) => a.octets(),
        IpAddr::V4(_) => unreachable!("an IPv6 run"),
    };
    Key::new(32 + u32::from(p.prefix_len()), route_key_v6(domain, addr))
}

/// Index ranges of consecutive prefixes of one family (each family has its
/// own trie), in order.
fn family_runs(prefixes: impl Iterator<Item = IpNet>) -> Vec<std::ops::Range<usize>> {
    let mut runs: Vec<std::ops::Range<usize>> = Vec::new();
    let mut last_v4 = None;
    for (i, p) in prefixes.enumerate() {
        let v4 = matches!(p, IpNet::V4(_));
        match runs.last_mut() {
            Some(r) if last_v4 == Some(v4) => r.end = i + 1,
            _ => runs.push(i..i + 1),
        }
        last_v4 = Some(v4);
    }
    runs
}

/// `ENOTSUPP` (kernel-internal, 524): the map type has no batch operation.
const ENOTSUPP: i32 = 524;

/// ENOMEM from a route write is mostly transient: the LPM trie takes its
/// nodes from a per-CPU cache that the kernel refills without waiting for
/// reclaim, which fails for a moment when the page cache has taken the
/// free memory, until kswapd frees some. A batch that meets it waits a
/// little and goes on from the entry that failed, a bounded number of
/// times (`NoMemory::WAITS`, doubling from 1 ms: at most 255 ms a call),
/// rather than failing the batch and leaving the rest of it for the
/// control plane's retry a second later.
#[derive(Debug, Default)]
struct NoMemory {
    waits: u32,
}

impl NoMemory {
    const WAITS: u32 = 8;

    /// Whether `e` is ENOMEM with waits left, after waiting.
    fn waited(&mut self, e: &std::io::Error) -> bool {
        let Some(wait) = self.next_wait(e) else {
            return false;
        };
        std::thread::sleep(wait);
        true
    }

    /// How long to wait before writing again after `e`, if at all.
    fn next_wait(&mut self, e: &std::io::Error) -> Option<Duration> {
        if e.raw_os_error() != Some(libc::ENOMEM) || self.waits >= Self::WAITS {
            return None;
        }
        let wait = Duration::from_millis(1 << self.waits);
        self.waits += 1;
        Some(wait)
    }
}

fn is_unsupported(e: &std::io::Error) -> bool {
    matches!(e.raw_os_error(), Some(ENOTSUPP | libc::EOPNOTSUPP))
}

/// The `batch` member of `union bpf_attr` (include/uapi/linux/bpf.h), used
/// by the `BPF_MAP_*_BATCH` commands. The kernel accepts an attr shorter
/// than its union and zero-fills the rest.
#[repr(C)]
#[derive(Default)]
struct BatchAttr {
    in_batch: u64,
    out_batch: u64,
    keys: u64,
    values: u64,
    count: u32,
    map_fd: u32,
    elem_flags: u64,
    flags: u64,
}

const BPF_MAP_UPDATE_BATCH: libc::c_long = 26;
const BPF_MAP_DELETE_BATCH: libc::c_long = 27;

/// One `BPF_MAP_UPDATE_BATCH` (with `values`) or `BPF_MAP_DELETE_BATCH`
/// call on `fd`: the kernel applies the entries in order, each exactly as a
/// single `BPF_MAP_UPDATE_ELEM` / `BPF_MAP_DELETE_ELEM` would, and stops at
/// the first failure. Returns how many entries it applied and the error.
///
/// aya 0.14 wraps only the single-element commands, hence this small
/// wrapper over bpf(2). The caller guarantees that the map's key size is
/// `size_of::<Key<K>>()` and its value size `size_of::<Route>()` (aya
/// checked both when it opened the typed map).
fn map_batch<K: Pod>(
    fd: BorrowedFd<'_>,
    keys: &[Key<K>],
    values: Option<&[Route]>,
) -> (usize, std::io::Result<()>) {
    let Ok(count) = u32::try_from(keys.len()) else {
        return (0, Err(std::io::Error::from_raw_os_error(libc::E2BIG)));
    };
    if count == 0 {
        return (0, Ok(()));
    }
    if let Some(v) = values {
        assert_eq!(v.len(), keys.len(), "one value per key");
    }
    let mut attr = BatchAttr {
        keys: keys.as_ptr() as u64,
        values: values.map_or(0, |v| v.as_ptr() as u64),
        count,
        map_fd: fd.as_raw_fd() as u32,
        ..Default::default()
    };
    let cmd = if values.is_some() {
        BPF_MAP_UPDATE_BATCH
    } else {
        BPF_MAP_DELETE_BATCH
    };
    // SAFETY: `attr` is a valid `bpf_attr` prefix for the batch commands
    // and lives across the call; `keys` and `values` hold `count` entries
    // of the map's key and value sizes and outlive the call; the kernel
    // only reads them, and writes back `attr.count`.
    let Err(err) = (unsafe { crate::bpf_sys::bpf(cmd, &mut attr) }) else {
        return (keys.len(), Ok(()));
    };
    // The kernel writes back how many entries it applied, unless it failed
    // before looking at any (then `count` still holds our request).
    let applied = if attr.count < count {
        attr.count as usize
    } else {
        0
    };
    (applied, Err(err))
}

/// `struct xdp_md` for `BPF_PROG_TEST_RUN`: data 0, data_end = len,
/// data_meta 0, ingress_ifindex, rx_queue_index 0, egress_ifindex 0.
pub fn xdp_md(len: usize, ingress_ifindex: u32) -> [u8; 24] {
    let mut ctx = [0u8; 24];
    ctx[4..8].copy_from_slice(&(len as u32).to_ne_bytes());
    ctx[12..16].copy_from_slice(&ingress_ifindex.to_ne_bytes());
    ctx
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_write_waits_for_memory_a_bounded_time_and_only_for_enomem() {
        let enomem = std::io::Error::from_raw_os_error(libc::ENOMEM);
        let mut no_memory = NoMemory::default();
        assert_eq!(
            no_memory.next_wait(&std::io::Error::from_raw_os_error(libc::ENOSPC)),
            None,
            "a full map is not waited for"
        );
        let waits: Vec<u64> = std::iter::from_fn(|| no_memory.next_wait(&enomem))
            .map(|d| d.as_millis() as u64)
            .collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 32, 64, 128]);
        assert_eq!(no_memory.waits, NoMemory::WAITS);
    }

    #[test]
    fn pinned_links_are_listed_by_the_names_link_pin_gives() {
        let dir = std::env::temp_dir().join(format!("msee-pins-{}", std::process::id()));
        assert_eq!(pinned_link_ifindexes(&dir).unwrap(), Vec::<u32>::new());
        std::fs::create_dir_all(&dir).unwrap();
        for i in [12, 3] {
            std::fs::write(link_pin(&dir, i), b"").unwrap();
        }
        std::fs::write(dir.join("ROUTES_V4"), b"").unwrap();
        std::fs::write(dir.join("link_other_7"), b"").unwrap();
        assert_eq!(pinned_link_ifindexes(&dir).unwrap(), vec![3, 12]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn forwarding_table_sizes_out_of_range_are_refused() {
        let of = |slots, nodes_v4| {
            FibSizes {
                slots: Some(slots),
                nodes_v4: Some(nodes_v4),
                nodes_v6: None,
            }
            .resolve()
        };
        assert!(of(256, 1 << 16).is_ok());
        // Roots alone past what a map holds: refused, not wrapped around.
        let e = of(65536, 1).unwrap_err().to_string();
        assert!(e.contains("forwarding table slots"), "{e}");
        let e = of(256, u32::MAX).unwrap_err().to_string();
        assert!(e.contains("IPv4 range lines"), "{e}");
        // Root entries address 2^23 words of ranges: 2^19 lines.
        assert!(of(256, 1 << 19).is_ok());
        assert!(of(256, (1 << 19) + 1).is_err());
        assert!(of(65537, 0).is_err());
    }

    #[test]
    fn routes_with_flags_a_leaf_cannot_keep_are_refused() {
        use msee_abi::{ROUTE_LOCAL, ROUTE_NONE, ROUTE_OUT_OF_REACH};
        let r = |flags| Route { group: 1, flags };
        assert!(check_route(&r(ROUTE_OUT_OF_REACH | ROUTE_LOCAL)).is_ok());
        let e = check_route(&r(ROUTE_NONE)).unwrap_err().to_string();
        assert!(e.contains("route flags"), "{e}");
        assert!(
            check_route(&Route {
                group: MAX_GROUPS,
                flags: 0
            })
            .is_err()
        );
    }

    #[test]
    fn default_burst_is_a_millisecond_but_at_least_two_frames() {
        assert_eq!(default_burst_bytes(50_000_000), 6_250);
        assert_eq!(default_burst_bytes(10_000_000_000), 1_250_000);
        assert_eq!(default_burst_bytes(100_000_000_000), 12_500_000);
        assert_eq!(default_burst_bytes(1_000_000), 3_036);
    }

    /// Loading the program and mapping `CONFIG` need root; elsewhere the
    /// test says so and passes (as the fixture tests do).
    fn loaded(test: &str) -> Option<Msee> {
        // SAFETY: geteuid has no preconditions and cannot fail.
        if unsafe { libc::geteuid() } != 0 {
            if std::env::var_os("MSEE_REQUIRE_ROOT_TESTS").is_some() {
                panic!("{test} needs root and MSEE_REQUIRE_ROOT_TESTS is set");
            }
            eprintln!("SKIPPED {test}: needs root");
            return None;
        }
        Some(Msee::load(&LoadOptions::default()).expect("load msee"))
    }

    /// Two link entries that differ in every byte but the ifindex.
    fn patterns() -> [Link; 2] {
        let link = |b: u8| Link {
            ifindex: 1,
            outer_vlan: u16::from_ne_bytes([b, b + 1]),
            inner_vlan: u16::from_ne_bytes([b + 2, b + 3]),
            outer_tpid: u16::from_ne_bytes([b + 4, b + 5]),
            role: b + 6,
            _pad: b + 7,
            src_mac: [b + 8, b + 9, b + 10, b + 11, b + 12, b + 13],
            dst_mac: [b + 14, b + 15, b + 16, b + 17, b + 18, b + 19],
            circuit: u32::from_ne_bytes([b + 20, b + 21, b + 22, b + 23]),
        };
        [link(0x10), link(0x80)]
    }

    /// A writer rewrites one link between two entries as fast as it can
    /// while readers read it through the mapping: every read is one entry
    /// or the other, never a mix. (Before links were double-buffered, a
    /// read caught a half-written entry within milliseconds.)
    #[test]
    fn a_link_read_while_it_is_rewritten_is_never_torn() {
        let Some(m) = loaded("a_link_read_while_it_is_rewritten_is_never_torn") else {
            return;
        };
        let config = m.config.clone();
        let [a, b] = patterns();
        config.set_link(5, a).unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_millis(1500);
        let (writes, reads) = std::thread::scope(|s| {
            let writer = s.spawn(|| {
                let mut n = 0u64;
                while std::time::Instant::now() < deadline {
                    config
                        .set_link(5, if n.is_multiple_of(2) { b } else { a })
                        .unwrap();
                    n += 1;
                    // Readers take the writers' lock too, and a lock taken
                    // again at once can starve them on a loaded machine.
                    std::thread::sleep(std::time::Duration::from_micros(100));
                }
                n
            });
            let readers: Vec<_> = (0..2)
                .map(|_| {
                    s.spawn(|| {
                        let mut seen = [0u64; 2];
                        while std::time::Instant::now() < deadline && seen[0] + seen[1] < 5_000_000
                        {
                            let l = config.link(5);
                            if l != a && l != b {
                                return (seen, Some(l));
                            }
                            seen[usize::from(l == b)] += 1;
                        }
                        (seen, None)
                    })
                })
                .collect();
            let reads: Vec<_> = readers.into_iter().map(|r| r.join().unwrap()).collect();
            (writer.join().unwrap(), reads)
        });
        for (seen, torn) in &reads {
            assert_eq!(*torn, None, "a torn link entry, after {seen:?} whole ones");
        }
        assert!(writes >= 4, "the writer ran ({writes} writes)");
        assert!(
            reads.iter().any(|(seen, _)| seen[0] > 0 && seen[1] > 0),
            "readers saw both entries: {reads:?}"
        );
    }

    /// A rewrite waits for a grace period only when the copy it writes was
    /// retired since the last one: once per handle (the map may be adopted),
    /// then for a second rewrite of the same entry, and one grace period
    /// covers every entry flipped before it.
    #[test]
    fn rewrites_wait_only_for_copies_retired_since_the_last_grace_period() {
        let Some(mut m) =
            loaded("rewrites_wait_only_for_copies_retired_since_the_last_grace_period")
        else {
            return;
        };
        let [a, b] = patterns();
        let waits = |m: &Msee| m.config.grace_periods();
        assert_eq!(waits(&m), 0);
        m.set_link(0, a).unwrap();
        assert_eq!(waits(&m), 1, "the first rewrite of a handle");
        m.set_link(1, a).unwrap();
        m.set_policer(0, Direction::Rx, 1_000_000, None).unwrap();
        m.set_policer(0, Direction::Tx, 1_000_000, None).unwrap();
        assert_eq!(waits(&m), 1, "other entries' idle copies are free");
        m.set_link(0, b).unwrap();
        assert_eq!(waits(&m), 2, "link 0's idle copy was retired just now");
        m.set_link(1, b).unwrap();
        m.set_policer(0, Direction::Rx, 2_000_000, None).unwrap();
        assert_eq!(waits(&m), 2, "retired before that grace period");
        m.set_link(1, a).unwrap();
        assert_eq!(waits(&m), 3);
        assert_eq!(m.link(0).unwrap(), b);
        assert_eq!(m.link(1).unwrap(), a);
        assert_eq!(
            m.policer(0, Direction::Rx).unwrap().rate_bytes_per_sec,
            250_000
        );
        // The link state word is not double-buffered: a flip never waits.
        m.set_link_state(1, true).unwrap();
        assert_eq!(waits(&m), 3);
    }
}
