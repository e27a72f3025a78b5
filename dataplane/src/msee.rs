//! Typed handle on a loaded `msee` program and its maps.
use std::net::Ipv4Addr;

use aya::{
    Ebpf, EbpfLoader,
    maps::{DevMapHash, HashMap, LpmTrie, MapError, PerCpuArray, lpm_trie::Key},
    programs::{ProgramError, TestRun, TestRunOptions, Xdp, XdpMode, xdp::XdpLinkId},
};
use msee_abi::{
    MAX_PORTS, MSEE_PROGRAM, NEXTHOP_VALID, NextHop, PortConfig, PortRole, PortStats, RouteV4, maps,
};

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
    #[error("port slot {0} is out of range (at most {MAX_PORTS} ports)")]
    SlotOutOfRange(u32),
}

type Result<T> = std::result::Result<T, MseeError>;

fn map_err(map: &'static str) -> impl FnOnce(MapError) -> MseeError {
    move |source| MseeError::Map { map, source }
}

/// One MSEE port as the program sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PortSpec {
    pub ifindex: u32,
    /// Row in the per-port counters; unique per port, < `MAX_PORTS`.
    pub slot: u32,
    pub role: PortRole,
    pub mac: [u8; 6],
}

/// A next hop: out of which port, to which neighbour.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NextHopSpec {
    pub port: PortSpec,
    /// The neighbour's MAC, once resolved; `None` keeps the next hop
    /// installed but unusable (its traffic is counted as `no_neighbour`).
    pub neighbour_mac: Option<[u8; 6]>,
}

/// A loaded `msee` program: owns the maps and the XDP attachments (which are
/// detached when this is dropped).
pub struct Msee {
    ebpf: Ebpf,
    links: Vec<(u32, XdpLinkId)>,
}

impl Msee {
    /// Load the embedded object. `log_level` is the most verbose aya-log level
    /// the kernel side emits (0 = off, 1 = error ... 5 = trace).
    pub fn load(log_level: u8) -> Result<Self> {
        let mut ebpf = EbpfLoader::new()
            .override_global("AYA_LOG_LEVEL", &log_level, false)
            .load(crate::MSEE_OBJECT)
            .map_err(MseeError::Load)?;
        let program: &mut Xdp = ebpf
            .program_mut(MSEE_PROGRAM)
            .ok_or(MseeError::Missing("msee program"))?
            .try_into()
            .map_err(MseeError::Program)?;
        program.load().map_err(MseeError::Program)?;
        Ok(Self {
            ebpf,
            links: Vec::new(),
        })
    }

    /// Start forwarding aya-log records to the `log` facade. Keep the returned
    /// logger alive and call `flush` when its fd is readable.
    pub fn take_logger(
        &mut self,
    ) -> std::result::Result<aya_log::EbpfLogger<&'static dyn log::Log>, aya_log::Error> {
        aya_log::EbpfLogger::init(&mut self.ebpf)
    }

    fn program_mut(&mut self) -> Result<&mut Xdp> {
        self.ebpf
            .program_mut(MSEE_PROGRAM)
            .ok_or(MseeError::Missing("msee program"))?
            .try_into()
            .map_err(MseeError::Program)
    }

    /// Declare a port: frames arriving on it are handled, and next hops may
    /// send out of it. Does not attach.
    pub fn add_port(&mut self, port: PortSpec) -> Result<()> {
        if port.slot >= MAX_PORTS {
            return Err(MseeError::SlotOutOfRange(port.slot));
        }
        let config = PortConfig {
            slot: port.slot,
            role: port.role as u32,
            mac: port.mac,
            _pad: [0; 2],
        };
        let mut ports: HashMap<_, u32, PortConfig> = self.map_mut(maps::PORTS)?;
        ports
            .insert(port.ifindex, config, 0)
            .map_err(map_err(maps::PORTS))?;
        let mut tx: DevMapHash<_> = self.map_mut(maps::TX_PORTS)?;
        tx.insert(port.ifindex, port.ifindex, None, 0)
            .map_err(|source| MseeError::DevMap {
                map: maps::TX_PORTS,
                source,
            })?;
        Ok(())
    }

    /// Attach the program to `ifindex`. Detached when `self` drops.
    pub fn attach(&mut self, ifindex: u32, mode: AttachMode) -> Result<()> {
        let link = self
            .program_mut()?
            .attach_to_if_index(ifindex, mode.into())
            .map_err(|source| MseeError::Attach {
                ifindex,
                mode,
                source,
            })?;
        self.links.push((ifindex, link));
        Ok(())
    }

    /// Detach from every interface this handle attached to.
    pub fn detach_all(&mut self) -> Result<()> {
        let links = std::mem::take(&mut self.links);
        let program = self.program_mut()?;
        for (_, link) in links {
            program.detach(link).map_err(MseeError::Program)?;
        }
        Ok(())
    }

    /// Frames to this address are the MSEE's own: handed to the kernel.
    pub fn add_local_v4(&mut self, addr: Ipv4Addr) -> Result<()> {
        let mut local: HashMap<_, [u8; 4], u8> = self.map_mut(maps::LOCAL_V4)?;
        local
            .insert(addr.octets(), 1, 0)
            .map_err(map_err(maps::LOCAL_V4))
    }

    /// Install or replace next hop `id`.
    pub fn set_nexthop(&mut self, id: u32, spec: NextHopSpec) -> Result<()> {
        let value = NextHop {
            ifindex: spec.port.ifindex,
            slot: spec.port.slot,
            src_mac: spec.port.mac,
            dst_mac: spec.neighbour_mac.unwrap_or([0; 6]),
            flags: if spec.neighbour_mac.is_some() {
                NEXTHOP_VALID
            } else {
                0
            },
        };
        let mut nexthops: HashMap<_, u32, NextHop> = self.map_mut(maps::NEXTHOPS)?;
        nexthops
            .insert(id, value, 0)
            .map_err(map_err(maps::NEXTHOPS))
    }

    /// Route `addr/len` to next hop `nexthop` (replacing any previous entry in
    /// one update, so the prefix is never missing).
    pub fn upsert_route_v4(&mut self, addr: Ipv4Addr, len: u8, nexthop: u32) -> Result<()> {
        let mut routes: LpmTrie<_, [u8; 4], RouteV4> = self.map_mut(maps::ROUTES_V4)?;
        routes
            .insert(
                &Key::new(u32::from(len), addr.octets()),
                RouteV4 { nexthop },
                0,
            )
            .map_err(map_err(maps::ROUTES_V4))
    }

    pub fn remove_route_v4(&mut self, addr: Ipv4Addr, len: u8) -> Result<()> {
        let mut routes: LpmTrie<_, [u8; 4], RouteV4> = self.map_mut(maps::ROUTES_V4)?;
        routes
            .remove(&Key::new(u32::from(len), addr.octets()))
            .map_err(map_err(maps::ROUTES_V4))
    }

    /// Counters of the port in `slot`, summed over CPUs.
    pub fn port_stats(&self, slot: u32) -> Result<PortStats> {
        let map = self
            .ebpf
            .map(maps::PORT_STATS)
            .ok_or(MseeError::Missing("PORT_STATS map"))?;
        let stats: PerCpuArray<_, PortStats> =
            PerCpuArray::try_from(map).map_err(map_err(maps::PORT_STATS))?;
        let per_cpu = stats.get(&slot, 0).map_err(map_err(maps::PORT_STATS))?;
        let mut total = PortStats::default();
        for row in per_cpu.iter() {
            total.add(row);
        }
        Ok(total)
    }

    /// Run the program once on `frame` as if it arrived on `ingress_ifindex`
    /// (through `BPF_PROG_TEST_RUN`; nothing is sent). Returns the XDP action
    /// and the frame as the program left it.
    pub fn test_run(&mut self, frame: &[u8], ingress_ifindex: u32) -> Result<(u32, Vec<u8>)> {
        // struct xdp_md { data, data_end, data_meta, ingress_ifindex, rx_queue_index, egress_ifindex }
        let mut ctx = [0u8; 24];
        ctx[4..8].copy_from_slice(&(frame.len() as u32).to_ne_bytes());
        ctx[12..16].copy_from_slice(&ingress_ifindex.to_ne_bytes());
        // Room for a frame that grows (tags pushed by later programs).
        let mut out = vec![0u8; frame.len() + 256];
        let program = self.program_mut()?;
        let result = program
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

    fn map_mut<'a, T>(&'a mut self, name: &'static str) -> Result<T>
    where
        T: TryFrom<&'a mut aya::maps::Map, Error = MapError>,
    {
        let map = self.ebpf.map_mut(name).ok_or(MseeError::Missing(name))?;
        T::try_from(map).map_err(map_err(name))
    }
}
