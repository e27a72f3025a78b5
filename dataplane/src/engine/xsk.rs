//! UMEM and one AF_XDP socket per (interface, queue), on xdpilone's rings;
//! and the `xsk` program that steers each rx queue into its socket.
use std::{num::NonZeroU32, ptr::NonNull};

use anyhow::{Context as _, Result, anyhow, bail};
use aya::{
    Ebpf,
    maps::{Array, MapData, ProgramArray, XskMap},
    programs::{Xdp, XdpMode, xdp::XdpLinkId},
};
use msee_abi::engine::{LOSSY_EVERY, LOSSY_NEXT, LOSSY_PROGRAM, LOSSY_STATS, XSK_PROGRAM, XSKS};
use serde::{Deserialize, Serialize};
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

    /// The chunk holding `addr` (rx descriptors may point past its start).
    pub fn chunk_of(addr: u64) -> u64 {
        addr & !u64::from(FRAME_SIZE - 1)
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

/// The `xsk` program attached to an interface (optionally behind `lossy`).
pub struct XskProgram {
    _ebpf: Ebpf,
    _lossy: Option<Ebpf>,
    xsks: XskMap<MapData>,
    lossy_stats: Option<aya::maps::PerCpuArray<MapData, u64>>,
    // Keeps the attachment: dropping the Ebpf detaches.
    _link: XdpLinkId,
}

impl XskProgram {
    /// Load `xsk` and attach it to `ifindex` in the calling thread's
    /// namespace; with `drop_every = Some(k)` attach `lossy` in front of it.
    pub fn attach(ifindex: u32, mode: XdpMode, drop_every: Option<u64>) -> Result<Self> {
        let mut ebpf = Ebpf::load(crate::XSK_OBJECT).context("loading the xsk eBPF object")?;
        let xsks = XskMap::try_from(
            ebpf.take_map(XSKS)
                .ok_or_else(|| anyhow!("xsk object has no {XSKS}"))?,
        )?;
        let prog: &mut Xdp = ebpf
            .program_mut(XSK_PROGRAM)
            .ok_or_else(|| anyhow!("xsk object has no program {XSK_PROGRAM}"))?
            .try_into()?;
        prog.load().context("loading the xsk program")?;
        let Some(k) = drop_every else {
            let link = prog
                .attach_to_if_index(ifindex, mode)
                .with_context(|| {
                    format!(
                        "attaching xsk to ifindex {ifindex} in {mode:?} mode (without native XDP in the driver, use generic mode)"
                    )
                })?;
            return Ok(Self {
                _ebpf: ebpf,
                _lossy: None,
                xsks,
                lossy_stats: None,
                _link: link,
            });
        };
        let xsk_fd = prog.fd()?.try_clone()?;
        let mut lossy = Ebpf::load(crate::LOSSY_OBJECT).context("loading the lossy eBPF object")?;
        let mut every: Array<_, u64> = Array::try_from(
            lossy
                .map_mut(LOSSY_EVERY)
                .ok_or_else(|| anyhow!("lossy object has no {LOSSY_EVERY}"))?,
        )?;
        every.set(0, k, 0)?;
        let stats = aya::maps::PerCpuArray::try_from(
            lossy
                .take_map(LOSSY_STATS)
                .ok_or_else(|| anyhow!("lossy object has no {LOSSY_STATS}"))?,
        )?;
        let lp: &mut Xdp = lossy
            .program_mut(LOSSY_PROGRAM)
            .ok_or_else(|| anyhow!("lossy object has no program {LOSSY_PROGRAM}"))?
            .try_into()?;
        lp.load().context("loading the lossy program")?;
        let link = lp
            .attach_to_if_index(ifindex, mode)
            .with_context(|| {
                format!(
                    "attaching lossy to ifindex {ifindex} in {mode:?} mode (without native XDP in the driver, use generic mode)"
                )
            })?;
        let mut next = ProgramArray::try_from(
            lossy
                .map_mut(LOSSY_NEXT)
                .ok_or_else(|| anyhow!("lossy object has no {LOSSY_NEXT}"))?,
        )?;
        next.set(0, &xsk_fd, 0)?;
        Ok(Self {
            _ebpf: ebpf,
            _lossy: Some(lossy),
            xsks,
            lossy_stats: Some(stats),
            _link: link,
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

    /// Frames `lossy` saw and dropped (summed over CPUs), if attached.
    pub fn lossy_counts(&self) -> Option<(u64, u64)> {
        let s = self.lossy_stats.as_ref()?;
        let seen = s.get(&0, 0).ok()?.iter().sum();
        let dropped = s.get(&1, 0).ok()?.iter().sum();
        Some((seen, dropped))
    }
}
