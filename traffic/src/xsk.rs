//! UMEM and one AF_XDP socket per (interface, queue), on xdpilone's rings;
//! and the `xsk` program that steers each rx queue into its socket.
use std::{
    num::NonZeroU32,
    os::fd::{AsFd as _, OwnedFd},
    ptr::NonNull,
};

use anyhow::{Context as _, Result, anyhow, bail};
use aya::{
    Ebpf,
    maps::{Array, Map, MapData, PerCpuArray, ProgramArray, XskMap},
    programs::{Xdp, XdpMode, xdp::XdpLinkId},
};
use serde::{Deserialize, Serialize};
use traffic_abi::{
    FILTER_RX_TIMESTAMP, FILTER_UDP_PORTS, LOSSY_BLACKHOLE, LOSSY_EVERY, LOSSY_FILTER, LOSSY_NEXT,
    LOSSY_PROGRAM, LOSSY_STAT_BLACKHOLE, LOSSY_STAT_BLACKHOLE_TEST, LOSSY_STAT_DROPPED,
    LOSSY_STAT_SEEN, LOSSY_STATS, RX_META_LEN, TestFrameFilter, XSK_CONFIG, XSK_PROGRAM,
    XSK_STAT_NO_SOCKET, XSK_STAT_PASSED, XSK_STAT_TO_SOCKET, XSK_STATS, XSKS,
};
use xdpilone::{DeviceQueue, IfInfo, RingRx, RingTx, Socket, SocketConfig, Umem, UmemConfig};

/// Aligned UMEM chunk: holds a 1518-byte frame (veth accepts 2048 or 4096).
pub const FRAME_SIZE: u32 = 2048;
/// Ring sizes: TX needs little (completions come back quickly); RX is the
/// buffer that covers a sink thread being descheduled on a busy host
/// (8192 frames = 80 ms at 100 kpps).
pub const TX_RING_SIZE: u32 = 2048;
pub const RX_RING_SIZE: u32 = 8192;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
pub enum BindMode {
    /// Zero-copy if the driver supports it, else copy (with a log line).
    Auto,
    ZeroCopy,
    Copy,
}

/// Anonymous, page-aligned memory for the UMEM.
struct Area {
    ptr: NonNull<u8>,
    len: usize,
}

impl Area {
    fn new(len: usize) -> Result<Self> {
        // SAFETY: anonymous private mapping, checked for MAP_FAILED.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_POPULATE,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            bail!(
                "mmap of {len} bytes for the UMEM: {}",
                std::io::Error::last_os_error()
            );
        }
        Ok(Self {
            ptr: NonNull::new(p.cast()).ok_or_else(|| anyhow!("mmap returned null"))?,
            len,
        })
    }
}

impl Drop for Area {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `new`; the sockets using it are gone
        // (Xsk drops them first).
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}

/// One AF_XDP socket with its own UMEM, fill/completion and rx/tx rings.
/// Field order is drop order: rings and sockets before the memory.
pub struct Xsk {
    pub rx: Option<RingRx>,
    pub tx: Option<RingTx>,
    pub device: DeviceQueue,
    _user: xdpilone::User,
    _socket: Socket,
    _umem: Umem,
    area: Area,
    pub zero_copy: bool,
    pub ifindex: u32,
    pub queue: u32,
    /// Entries per ring; the UMEM holds twice as many chunks.
    pub ring_size: u32,
}

impl Xsk {
    /// Open a socket on `ifindex`/`queue` of the calling thread's namespace.
    pub fn open(ifindex: u32, queue: u32, rx: bool, tx: bool, mode: BindMode) -> Result<Self> {
        let try_mode = |zc: bool| Self::open_once(ifindex, queue, rx, tx, zc);
        match mode {
            BindMode::Copy => try_mode(false),
            BindMode::ZeroCopy => try_mode(true),
            BindMode::Auto => try_mode(true).or_else(|e| {
                log::info!("{e:#}; falling back to copy mode");
                try_mode(false)
            }),
        }
    }

    fn open_once(ifindex: u32, queue: u32, rx: bool, tx: bool, zero_copy: bool) -> Result<Self> {
        let errno = |what: &'static str| {
            move |e: xdpilone::Errno| {
                anyhow!("{what}: {}", std::io::Error::from_raw_os_error(e.get_raw()))
            }
        };
        let ring = if rx { RX_RING_SIZE } else { TX_RING_SIZE };
        let area = Area::new((2 * ring * FRAME_SIZE) as usize)?;
        let mem = NonNull::slice_from_raw_parts(area.ptr, area.len);
        let cfg = UmemConfig {
            fill_size: ring,
            complete_size: ring,
            frame_size: FRAME_SIZE,
            headroom: 0,
            flags: 0,
        };
        // SAFETY: page-aligned mapping that outlives the Umem (field order).
        let umem = unsafe { Umem::new(cfg, mem) }.map_err(errno("registering the UMEM"))?;
        let mut info = IfInfo::invalid();
        info.from_ifindex(ifindex)
            .map_err(errno("interface lookup for the AF_XDP socket"))?;
        info.set_queue(queue);
        let socket = Socket::with_shared(&info, &umem).map_err(errno("AF_XDP socket"))?;
        let device = umem
            .fq_cq(&socket)
            .map_err(errno("fill/completion rings"))?;
        let mode_flag = if zero_copy {
            SocketConfig::XDP_BIND_ZEROCOPY
        } else {
            SocketConfig::XDP_BIND_COPY
        };
        let user = umem
            .rx_tx(
                &socket,
                &SocketConfig {
                    rx_size: rx.then(|| NonZeroU32::new(ring)).flatten(),
                    tx_size: tx.then(|| NonZeroU32::new(ring)).flatten(),
                    bind_flags: SocketConfig::XDP_BIND_NEED_WAKEUP | mode_flag,
                },
            )
            .map_err(errno("rx/tx rings"))?;
        let rx_ring = if rx {
            Some(user.map_rx().map_err(errno("mapping the rx ring"))?)
        } else {
            None
        };
        let tx_ring = if tx {
            Some(user.map_tx().map_err(errno("mapping the tx ring"))?)
        } else {
            None
        };
        // A queue just released by another socket can be EBUSY for a moment.
        let mut tries = 0;
        loop {
            match umem.bind(&user) {
                Ok(()) => break,
                Err(e) if e.get_raw() == libc::EBUSY && tries < 50 => {
                    tries += 1;
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                Err(e) => {
                    return Err(errno(if zero_copy {
                        "zero-copy bind"
                    } else {
                        "copy-mode bind"
                    })(e))
                    .with_context(|| format!("ifindex {ifindex} queue {queue}"));
                }
            }
        }
        if tx {
            raise_tx_budget(device.as_raw_fd());
        }
        Ok(Self {
            rx: rx_ring,
            tx: tx_ring,
            device,
            _user: user,
            _socket: socket,
            _umem: umem,
            area,
            zero_copy,
            ifindex,
            queue,
            ring_size: ring,
        })
    }

    pub fn fd(&self) -> i32 {
        self.device.as_raw_fd()
    }

    /// UMEM offset of chunk `i`.
    pub fn chunk(i: u32) -> u64 {
        u64::from(i) * u64::from(FRAME_SIZE)
    }

    /// The bytes at UMEM offset `addr`, `len` long.
    ///
    /// # Safety
    /// The caller owns the chunk (not in any ring the kernel reads or writes).
    #[inline]
    pub unsafe fn frame_mut(&mut self, addr: u64, len: usize) -> &mut [u8] {
        debug_assert!(addr as usize + len <= self.area.len);
        // SAFETY: in bounds (addr comes from our chunks or the kernel's
        // descriptors into them); ownership per the contract.
        unsafe { std::slice::from_raw_parts_mut(self.area.ptr.as_ptr().add(addr as usize), len) }
    }

    /// Put chunks on the fill ring for the kernel to receive into.
    pub fn fill(&mut self, addrs: &mut Vec<u64>) -> u32 {
        let mut w = self.device.fill(addrs.len() as u32);
        let n = w.insert(addrs.iter().copied());
        w.commit();
        addrs.drain(..n as usize);
        n
    }

    /// Wait up to `timeout_ms` for the rx ring (needed in need-wakeup mode
    /// when the fill ring ran dry; cheap otherwise).
    pub fn poll_rx(&self, timeout_ms: i32) {
        let mut pfd = libc::pollfd {
            fd: self.fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        unsafe { libc::poll(&mut pfd, 1, timeout_ms) };
    }

    /// The receive time `xsk` put in the XDP metadata in front of the
    /// frame at `addr` (in `chunk`), if any; zeroes it, so a chunk reused
    /// for a frame without metadata never shows a stale time.
    ///
    /// # Safety
    /// As for `frame_mut`: the caller owns the chunk.
    #[inline]
    pub unsafe fn take_rx_time(&mut self, addr: u64, chunk: u64) -> Option<u64> {
        if addr < chunk + RX_META_LEN as u64 || addr as usize > self.area.len {
            return None;
        }
        // SAFETY: in bounds (checked), inside the caller's chunk.
        unsafe {
            let p = self
                .area
                .ptr
                .as_ptr()
                .add(addr as usize - RX_META_LEN)
                .cast::<u64>();
            let v = p.read_unaligned();
            p.write_unaligned(0);
            (v != 0).then_some(v)
        }
    }

    /// The socket's counters (zero where the kernel has none).
    pub fn socket_counts(&self) -> SocketCounts {
        match self.device.statistics_v2() {
            Ok(s) => SocketCounts {
                rx_dropped: s.rx_dropped,
                rx_invalid_descs: s.rx_invalid_descs,
                rx_ring_full: s.rx_ring_full,
                rx_fill_ring_empty_descs: s.rx_fill_ring_empty_descs,
            },
            Err(_) => SocketCounts::default(),
        }
    }

    /// The chunk holding `addr` (rx descriptors may point past its start).
    pub fn chunk_of(addr: u64) -> u64 {
        addr & !u64::from(FRAME_SIZE - 1)
    }
}

/// An AF_XDP socket's receive counters (`XDP_STATISTICS`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SocketCounts {
    /// Frames the kernel could not put on the rx ring (ring full or no
    /// fill buffer).
    pub rx_dropped: u64,
    pub rx_invalid_descs: u64,
    pub rx_ring_full: u64,
    pub rx_fill_ring_empty_descs: u64,
}

impl SocketCounts {
    pub fn add(&mut self, o: &SocketCounts) {
        self.rx_dropped += o.rx_dropped;
        self.rx_invalid_descs += o.rx_invalid_descs;
        self.rx_ring_full += o.rx_ring_full;
        self.rx_fill_ring_empty_descs += o.rx_fill_ring_empty_descs;
    }
}

/// Copy-mode TX handles at most 32 frames per sendto unless the socket's
/// budget is raised (`XDP_MAX_TX_SKB_BUDGET`, Linux 6.17+). Best effort:
/// older kernels keep 32.
fn raise_tx_budget(fd: i32) {
    const SOL_XDP: i32 = 283;
    const XDP_MAX_TX_SKB_BUDGET: i32 = 9;
    let budget: u32 = TX_RING_SIZE / 2;
    // SAFETY: valid fd and a u32 option value of the right size.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            SOL_XDP,
            XDP_MAX_TX_SKB_BUDGET,
            (&budget as *const u32).cast(),
            size_of::<u32>() as u32,
        )
    };
    if rc != 0 {
        log::debug!(
            "XDP_MAX_TX_SKB_BUDGET not set: {}",
            std::io::Error::last_os_error()
        );
    }
}

/// Which frames of an interface the sink takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SinkFilter {
    /// Every frame of a queue with a socket: the kernel sees none of them
    /// (no ARP replies, no routing daemon). What `xsk` does as loaded.
    All,
    /// Only UDP to destination ports `lo..=hi` (the run's flows); ARP, ND,
    /// BGP, BFD, ping and any other UDP go to the kernel.
    UdpPorts { lo: u16, hi: u16 },
}

impl SinkFilter {
    /// The destination ports of `flows` flows from `dst_port` (flow i uses
    /// dst_port + i); all ports if they wrap past 65535.
    pub fn test_ports(dst_port: u16, flows: u16) -> Self {
        let hi = u32::from(dst_port) + u32::from(flows.max(1)) - 1;
        match u16::try_from(hi) {
            Ok(hi) => SinkFilter::UdpPorts { lo: dst_port, hi },
            Err(_) => SinkFilter::UdpPorts { lo: 0, hi: 65535 },
        }
    }

    pub fn abi(&self, rx_timestamps: bool) -> TestFrameFilter {
        let ts = if rx_timestamps {
            FILTER_RX_TIMESTAMP
        } else {
            0
        };
        match *self {
            SinkFilter::All => TestFrameFilter {
                flags: ts,
                port_lo: 0,
                port_hi: 0,
            },
            SinkFilter::UdpPorts { lo, hi } => TestFrameFilter {
                flags: FILTER_UDP_PORTS | ts,
                port_lo: lo,
                port_hi: hi,
            },
        }
    }
}

/// How the `xsk` program (and `lossy` in front of it) is set up.
#[derive(Clone, Copy, Debug)]
pub struct XskOptions {
    pub mode: XdpMode,
    pub filter: SinkFilter,
    /// Receive times taken in the kernel (XDP metadata) instead of at the
    /// socket.
    pub rx_timestamps: bool,
    /// `lossy` in front: drop every k-th test frame.
    pub drop_every: Option<u64>,
    /// `lossy` in front even without `drop_every`: for its black hole.
    pub lossy: bool,
}

impl XskOptions {
    /// As `xsk` behaved before it had options: every frame, socket-side
    /// receive times.
    pub fn all_frames(mode: XdpMode, drop_every: Option<u64>) -> Self {
        Self {
            mode,
            filter: SinkFilter::All,
            rx_timestamps: false,
            drop_every,
            lossy: drop_every.is_some(),
        }
    }
}

/// Per-CPU counters of `xsk`, summed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct XskCounts {
    /// Frames handed to a socket.
    pub to_socket: u64,
    /// Test frames on a queue without a socket (went to the kernel).
    pub no_socket: u64,
    /// Frames the filter passed to the kernel (not test frames).
    pub passed: u64,
}

/// Per-CPU counters of `lossy`, summed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LossyCounts {
    /// Test frames seen (outside a black hole).
    pub seen: u64,
    /// Test frames dropped as every k-th.
    pub dropped: u64,
    /// Frames of any kind dropped by the black hole.
    pub blackhole: u64,
    /// Of those, test frames.
    pub blackhole_test: u64,
}

/// A second descriptor of a map of a loaded object (the same kernel map),
/// so that a `Blackhole` can write it without owning the object.
pub(crate) fn map_fd(ebpf: &Ebpf, name: &str) -> Result<OwnedFd> {
    let map = ebpf
        .map(name)
        .ok_or_else(|| anyhow!("object has no map {name}"))?;
    let (Map::Array(data) | Map::PerCpuArray(data)) = map else {
        bail!("map {name} is not an array");
    };
    Ok(data.fd().as_fd().try_clone_to_owned()?)
}

pub(crate) fn sum_percpu(m: &PerCpuArray<MapData, u64>, i: u32) -> u64 {
    m.get(&i, 0).map(|v| v.iter().sum()).unwrap_or(0)
}

/// `lossy`, loaded and configured; attached alone or in front of `xsk`.
pub struct Lossy {
    // Keeps the attachment: dropping the Ebpf detaches.
    link: Option<XdpLinkId>,
    ebpf: Ebpf,
    stats: PerCpuArray<MapData, u64>,
    window_fd: OwnedFd,
    stats_fd: OwnedFd,
}

impl Lossy {
    pub fn load(every: u64, filter: TestFrameFilter) -> Result<Self> {
        let mut ebpf = Ebpf::load(crate::LOSSY_OBJECT).context("loading the lossy eBPF object")?;
        let mut e: Array<_, u64> = Array::try_from(
            ebpf.map_mut(LOSSY_EVERY)
                .ok_or_else(|| anyhow!("lossy object has no {LOSSY_EVERY}"))?,
        )?;
        e.set(0, every, 0)?;
        let mut f: Array<_, TestFrameFilter> = Array::try_from(
            ebpf.map_mut(LOSSY_FILTER)
                .ok_or_else(|| anyhow!("lossy object has no {LOSSY_FILTER}"))?,
        )?;
        // Only the port range matters to lossy.
        f.set(
            0,
            TestFrameFilter {
                flags: filter.flags & FILTER_UDP_PORTS,
                ..filter
            },
            0,
        )?;
        let window_fd = map_fd(&ebpf, LOSSY_BLACKHOLE)?;
        let stats_fd = map_fd(&ebpf, LOSSY_STATS)?;
        let stats = PerCpuArray::try_from(
            ebpf.take_map(LOSSY_STATS)
                .ok_or_else(|| anyhow!("lossy object has no {LOSSY_STATS}"))?,
        )?;
        let lp: &mut Xdp = ebpf
            .program_mut(LOSSY_PROGRAM)
            .ok_or_else(|| anyhow!("lossy object has no program {LOSSY_PROGRAM}"))?
            .try_into()?;
        lp.load().context("loading the lossy program")?;
        Ok(Self {
            link: None,
            ebpf,
            stats,
            window_fd,
            stats_fd,
        })
    }

    /// Tail-call `next` with every frame not dropped.
    pub fn chain(&mut self, next: &aya::programs::ProgramFd) -> Result<()> {
        let mut n = ProgramArray::try_from(
            self.ebpf
                .map_mut(LOSSY_NEXT)
                .ok_or_else(|| anyhow!("lossy object has no {LOSSY_NEXT}"))?,
        )?;
        n.set(0, next, 0)?;
        Ok(())
    }

    /// Attach to `ifindex` of the calling thread's namespace.
    pub fn attach(&mut self, ifindex: u32, mode: XdpMode) -> Result<()> {
        let lp: &mut Xdp = self
            .ebpf
            .program_mut(LOSSY_PROGRAM)
            .ok_or_else(|| anyhow!("lossy object has no program {LOSSY_PROGRAM}"))?
            .try_into()?;
        self.link = Some(lp.attach_to_if_index(ifindex, mode).with_context(|| {
            format!(
                "attaching lossy to ifindex {ifindex} in {mode:?} mode (without native XDP in the driver, use generic mode)"
            )
        })?);
        Ok(())
    }

    pub fn counts(&self) -> LossyCounts {
        LossyCounts {
            seen: sum_percpu(&self.stats, LOSSY_STAT_SEEN),
            dropped: sum_percpu(&self.stats, LOSSY_STAT_DROPPED),
            blackhole: sum_percpu(&self.stats, LOSSY_STAT_BLACKHOLE),
            blackhole_test: sum_percpu(&self.stats, LOSSY_STAT_BLACKHOLE_TEST),
        }
    }

    /// New handles on the black-hole window and the counters (see
    /// `Blackhole`).
    pub(crate) fn blackhole_maps(&self) -> Result<(MapData, MapData)> {
        Ok((
            MapData::from_fd(self.window_fd.try_clone()?)?,
            MapData::from_fd(self.stats_fd.try_clone()?)?,
        ))
    }
}

/// The `xsk` program attached to an interface (optionally behind `lossy`).
pub struct XskProgram {
    // Field order is drop order: detach lossy (in front) first.
    lossy: Option<Lossy>,
    // Keeps the attachment: dropping the Ebpf detaches.
    _link: Option<XdpLinkId>,
    _ebpf: Ebpf,
    xsks: XskMap<MapData>,
    stats: PerCpuArray<MapData, u64>,
}

impl XskProgram {
    /// Load `xsk` and attach it to `ifindex` in the calling thread's
    /// namespace, taking every frame (as before filters existed); with
    /// `drop_every = Some(k)` attach `lossy` in front of it.
    pub fn attach(ifindex: u32, mode: XdpMode, drop_every: Option<u64>) -> Result<Self> {
        Self::attach_with(ifindex, &XskOptions::all_frames(mode, drop_every))
    }

    /// Load, configure and attach `xsk` (and `lossy` in front if asked).
    pub fn attach_with(ifindex: u32, o: &XskOptions) -> Result<Self> {
        let mode = o.mode;
        let mut ebpf = Ebpf::load(crate::XSK_OBJECT).context("loading the xsk eBPF object")?;
        let filter = o.filter.abi(o.rx_timestamps);
        let mut conf: Array<_, TestFrameFilter> = Array::try_from(
            ebpf.map_mut(XSK_CONFIG)
                .ok_or_else(|| anyhow!("xsk object has no {XSK_CONFIG}"))?,
        )?;
        conf.set(0, filter, 0)?;
        let xsks = XskMap::try_from(
            ebpf.take_map(XSKS)
                .ok_or_else(|| anyhow!("xsk object has no {XSKS}"))?,
        )?;
        let stats = PerCpuArray::try_from(
            ebpf.take_map(XSK_STATS)
                .ok_or_else(|| anyhow!("xsk object has no {XSK_STATS}"))?,
        )?;
        let prog: &mut Xdp = ebpf
            .program_mut(XSK_PROGRAM)
            .ok_or_else(|| anyhow!("xsk object has no program {XSK_PROGRAM}"))?
            .try_into()?;
        prog.load().context("loading the xsk program")?;
        if !(o.lossy || o.drop_every.is_some()) {
            let link = prog
                .attach_to_if_index(ifindex, mode)
                .with_context(|| {
                    format!(
                        "attaching xsk to ifindex {ifindex} in {mode:?} mode (without native XDP in the driver, use generic mode)"
                    )
                })?;
            return Ok(Self {
                lossy: None,
                _link: Some(link),
                _ebpf: ebpf,
                xsks,
                stats,
            });
        }
        let mut lossy = Lossy::load(o.drop_every.unwrap_or(0), filter)?;
        lossy.chain(prog.fd()?)?;
        lossy.attach(ifindex, mode)?;
        Ok(Self {
            lossy: Some(lossy),
            _link: None,
            _ebpf: ebpf,
            xsks,
            stats,
        })
    }

    pub fn register(&mut self, queue: u32, fd: i32) -> Result<()> {
        // SAFETY: the fd is an open AF_XDP socket owned by a live Xsk.
        let bfd = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
        self.xsks
            .set(queue, bfd, 0)
            .with_context(|| format!("registering the AF_XDP socket of queue {queue}"))
    }

    pub fn unregister(&mut self, queue: u32) {
        let _ = self.xsks.unset(queue);
    }

    /// Frames `lossy` saw and dropped as every k-th (summed over CPUs), if
    /// attached.
    pub fn lossy_counts(&self) -> Option<(u64, u64)> {
        self.lossy.as_ref().map(|l| {
            let c = l.counts();
            (c.seen, c.dropped)
        })
    }

    pub fn lossy(&self) -> Option<&Lossy> {
        self.lossy.as_ref()
    }

    pub fn counts(&self) -> XskCounts {
        XskCounts {
            to_socket: sum_percpu(&self.stats, XSK_STAT_TO_SOCKET),
            no_socket: sum_percpu(&self.stats, XSK_STAT_NO_SOCKET),
            passed: sum_percpu(&self.stats, XSK_STAT_PASSED),
        }
    }
}
