//! The AF_XDP sink: on one or more interfaces (in one or several
//! namespaces), the `xsk` program (optionally behind `lossy`), one socket
//! and thread per rx queue, and one aggregator thread that owns the
//! per-stream statistics.
//!
//! Every packet carries its receive time, taken in the kernel by `xsk`
//! (XDP metadata), or by the socket's thread when the driver keeps no
//! metadata. The receive threads hand batches to the aggregator, which
//! merges them by receive time across all queues and interfaces before
//! feeding the statistics: a stream that moves from one interface to
//! another is one sequence space, and its loss, reordering and gaps are
//! computed across both. To merge, each thread promises a watermark (no
//! packet it hands over later was received before it): the time it last
//! looked at its ring, less `MERGE_MARGIN_NS` for frames the kernel stamped
//! but had not yet put on the ring.
use std::{
    collections::{BTreeMap, VecDeque},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering},
        mpsc,
    },
    thread::JoinHandle,
    time::Duration,
};

use anyhow::{Context as _, Result, anyhow, bail};
use aya::programs::XdpMode;
use serde::{Deserialize, Serialize};

use super::{
    enter_netns,
    fault::{Blackhole, BlackholeCounts, Flip},
    frame::{Probe, parse},
    ifindex_here, pin_to_cpu,
    stats::{BIN_NS, StreamState},
    xsk::{
        BindMode, LossyCounts, SinkFilter, SocketCounts, Xsk, XskCounts, XskOptions, XskProgram,
    },
};
use msee_sys::monotonic_ns;

/// How long after the kernel stamped a frame it may still appear on a ring.
pub const MERGE_MARGIN_NS: u64 = 20_000_000;
/// Records the aggregator holds back at most while waiting for a slow
/// thread's watermark (then it merges what it has: order may suffer, memory
/// does not).
const MAX_BUFFERED: usize = 4_000_000;

/// One interface of the sink.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SinkIface {
    pub netns: Option<String>,
    pub ifname: String,
    pub queues: Vec<u32>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SinkConfig {
    /// One or more interfaces; their index is the `rx` of every figure.
    pub ifaces: Vec<SinkIface>,
    pub bind: BindMode,
    /// Native (driver) XDP unless generic is asked for.
    pub generic_xdp: bool,
    /// Put `lossy` in front of `xsk`, dropping every k-th test frame.
    pub drop_every: Option<u64>,
    /// Which frames are the sink's; the rest goes to the kernel.
    pub filter: SinkFilter,
    /// Receive times from the kernel (XDP metadata) where the driver keeps
    /// them.
    pub rx_timestamps: bool,
    /// A black-hole switch (off) on every interface (`Sink::blackhole`).
    pub blackhole: bool,
    /// Hard upper bound on the sink's run time.
    pub max_duration: Duration,
    pub batch: u32,
    pub cpus: Vec<usize>,
}

impl SinkConfig {
    /// A sink on `ifaces` taking the test frames of `filter`, kernel receive
    /// times, no faults, for at most `max_duration`.
    pub fn new(ifaces: Vec<SinkIface>, filter: SinkFilter, max_duration: Duration) -> Self {
        Self {
            ifaces,
            bind: BindMode::Auto,
            generic_xdp: false,
            drop_every: None,
            filter,
            rx_timestamps: true,
            blackhole: false,
            max_duration,
            batch: 64,
            cpus: Vec::new(),
        }
    }
}

/// What one receive interface saw.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct RxReport {
    pub ifname: String,
    pub netns: Option<String>,
    /// Test frames received on this interface.
    pub received: u64,
    /// Frames the sockets got that were not test frames.
    pub other: u64,
    pub zero_copy: bool,
    /// Packets whose receive time came from the kernel (XDP metadata), and
    /// from the socket's thread (driver without metadata).
    pub kernel_rx_time: u64,
    pub socket_rx_time: u64,
    /// The `xsk` program's counters: what went to the sockets and what the
    /// filter passed to the kernel.
    pub xsk: XskCounts,
    /// The sockets' own counters (ring full = the sink fell behind).
    pub socket: SocketCounts,
    pub lossy: Option<LossyCounts>,
    pub blackhole: Option<BlackholeCounts>,
    pub flips: Vec<Flip>,
    /// The kernel's counters of the interface over the run (`ip -s link`),
    /// filled by a run.
    pub counters: Option<super::iface::Counters>,
    /// Test frames received on this interface per 1 ms since the sink
    /// started.
    pub rate_bins_1ms: Vec<u32>,
}

/// What the sink saw, before the sender's figures are folded in.
pub struct SinkResult {
    pub streams: BTreeMap<u16, StreamState>,
    pub rx: Vec<RxReport>,
    /// Frames that were not test frames, all interfaces.
    pub other: u64,
    pub zero_copy: bool,
    /// (seen, dropped) by `lossy`, all interfaces.
    pub lossy: Option<(u64, u64)>,
    /// CLOCK_MONOTONIC when the sink started: bins and `*_ns` fields of the
    /// statistics count from here.
    pub t0_ns: u64,
}

impl SinkResult {
    pub fn rx_names(&self) -> Vec<String> {
        self.rx.iter().map(|r| r.ifname.clone()).collect()
    }
}

/// A received test frame on its way to the aggregator.
#[derive(Clone, Copy, Debug)]
struct Rec {
    rx_ns: u64,
    seq: u64,
    tx_ns: u64,
    stream: u16,
    len: u16,
    rx: u16,
}

enum Msg {
    /// Records in receive order, and the sender's new watermark.
    Batch {
        src: usize,
        recs: Vec<Rec>,
        wm: u64,
    },
    Done {
        src: usize,
    },
}

struct ThreadOut {
    other: u64,
    zero_copy: bool,
    kernel_ts: u64,
    socket_ts: u64,
    socket: SocketCounts,
}

struct Aggregate {
    streams: BTreeMap<u16, StreamState>,
    bins: Vec<Vec<u32>>,
}

struct Iface {
    cfg: SinkIface,
    program: Arc<Mutex<XskProgram>>,
    blackhole: Option<Blackhole>,
    received: Arc<AtomicU64>,
}

pub struct Sink {
    ifaces: Vec<Iface>,
    last_rx_ns: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    /// (rx index, thread)
    threads: Vec<(usize, JoinHandle<Result<ThreadOut>>)>,
    aggregator: Option<JoinHandle<Aggregate>>,
    t0_ns: u64,
}

impl Sink {
    /// Attach the programs and open every socket on every interface;
    /// returns once all queues are registered and receiving.
    pub fn start(cfg: SinkConfig) -> Result<Self> {
        if cfg.ifaces.is_empty() {
            bail!("no rx interface given");
        }
        if cfg.ifaces.len() > usize::from(u16::MAX) {
            bail!("too many rx interfaces");
        }
        for (i, f) in cfg.ifaces.iter().enumerate() {
            if f.queues.is_empty() {
                bail!("no rx queue given for {}", f.ifname);
            }
            if cfg.ifaces[..i]
                .iter()
                .any(|g| g.ifname == f.ifname && g.netns == f.netns)
            {
                bail!("rx interface {} given twice", f.ifname);
            }
        }
        let mode = if cfg.generic_xdp {
            XdpMode::Skb
        } else {
            XdpMode::Driver
        };
        let opts = XskOptions {
            mode,
            filter: cfg.filter,
            rx_timestamps: cfg.rx_timestamps,
            drop_every: cfg.drop_every,
            lossy: cfg.blackhole,
        };
        let mut ifaces = Vec::new();
        for f in &cfg.ifaces {
            let (ns, name) = (f.netns.clone(), f.ifname.clone());
            // Attach from inside the namespace (ifindex is per namespace).
            let program = std::thread::spawn(move || -> Result<XskProgram> {
                enter_netns(ns.as_deref())?;
                let ifindex = ifindex_here(&name)?;
                XskProgram::attach_with(ifindex, &opts)
            })
            .join()
            .map_err(|_| anyhow!("sink setup thread panicked"))?
            .with_context(|| format!("sink on {}", f.ifname))?;
            let blackhole = match (cfg.blackhole, program.lossy()) {
                (true, Some(l)) => Some(Blackhole::on_lossy(f.netns.as_deref(), &f.ifname, l)?),
                _ => None,
            };
            ifaces.push(Iface {
                cfg: f.clone(),
                program: Arc::new(Mutex::new(program)),
                blackhole,
                received: Arc::new(AtomicU64::new(0)),
            });
        }
        let last_rx_ns = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let t0_ns = monotonic_ns();
        let nsrc: usize = cfg.ifaces.iter().map(|f| f.queues.len()).sum();
        // Bounded: a sink thread whose aggregator fell behind blocks, its
        // ring fills, and the socket counts what the kernel dropped.
        let (tx, rx) = mpsc::sync_channel::<Msg>(4096);
        let nif = ifaces.len();
        let aggregator = std::thread::Builder::new()
            .name("sink-agg".into())
            .spawn(move || aggregate(rx, nsrc, nif, t0_ns))
            .context("spawning the sink aggregator")?;
        let (ready_tx, ready_rx) = mpsc::channel::<Result<()>>();
        let mut threads = Vec::new();
        let mut src = 0;
        for (i, f) in ifaces.iter().enumerate() {
            for &queue in &f.cfg.queues {
                let (cfg, fcfg) = (cfg.clone(), f.cfg.clone());
                let (received, last, stop, ready, program, tx) = (
                    f.received.clone(),
                    last_rx_ns.clone(),
                    stop.clone(),
                    ready_tx.clone(),
                    f.program.clone(),
                    tx.clone(),
                );
                let t = src;
                let handle = std::thread::Builder::new()
                    .name(format!("sink-{i}-q{queue}"))
                    .spawn(move || -> Result<ThreadOut> {
                        if !cfg.cpus.is_empty() {
                            pin_to_cpu(cfg.cpus[t % cfg.cpus.len()]);
                        }
                        let setup = (|| -> Result<Xsk> {
                            enter_netns(fcfg.netns.as_deref())?;
                            let ifindex = ifindex_here(&fcfg.ifname)?;
                            let mut xsk = Xsk::open(ifindex, queue, true, false, cfg.bind)?;
                            let mut chunks: Vec<u64> = (0..xsk.ring_size).map(Xsk::chunk).collect();
                            xsk.fill(&mut chunks);
                            program
                                .lock()
                                .map_err(|_| anyhow!("xsk program lock poisoned"))?
                                .register(queue, xsk.fd())?;
                            Ok(xsk)
                        })();
                        let xsk = match setup {
                            Ok(x) => {
                                let _ = ready.send(Ok(()));
                                x
                            }
                            Err(e) => {
                                let _ = ready
                                    .send(Err(anyhow!("{} queue {queue}: {e:#}", fcfg.ifname)));
                                let _ = tx.send(Msg::Done { src: t });
                                return Err(e);
                            }
                        };
                        let ctx = LoopCtx {
                            src: t,
                            rx: i as u16,
                            batch: cfg.batch.max(1),
                            deadline: t0_ns + cfg.max_duration.as_nanos() as u64,
                            t0_ns,
                            progress: &received,
                            last_rx: &last,
                            stop: &stop,
                            out: &tx,
                        };
                        let out = recv_loop(xsk, &ctx);
                        let _ = tx.send(Msg::Done { src: t });
                        if let Ok(mut p) = program.lock() {
                            p.unregister(queue);
                        }
                        out
                    })
                    .context("spawning a sink thread")?;
                threads.push((i, handle));
                src += 1;
            }
        }
        drop(ready_tx);
        drop(tx);
        let first_err = super::first_setup_error(&ready_rx, nsrc, "sink");
        let this = Self {
            ifaces,
            last_rx_ns,
            stop,
            threads,
            aggregator: Some(aggregator),
            t0_ns,
        };
        if let Some(e) = first_err {
            this.stop();
            let _ = this.join();
            return Err(e.context("sink setup"));
        }
        Ok(this)
    }

    /// Test frames received so far, all interfaces.
    pub fn received(&self) -> u64 {
        self.ifaces
            .iter()
            .map(|f| f.received.load(Ordering::Relaxed))
            .sum()
    }

    /// Test frames received so far on interface `rx`.
    pub fn received_on(&self, rx: usize) -> u64 {
        self.ifaces
            .get(rx)
            .map_or(0, |f| f.received.load(Ordering::Relaxed))
    }

    /// Index of interface `ifname` (the first of that name).
    pub fn rx_index(&self, ifname: &str) -> Option<usize> {
        self.ifaces.iter().position(|f| f.cfg.ifname == ifname)
    }

    /// The black-hole switch of interface `rx` (with `blackhole` set).
    pub fn blackhole(&self, rx: usize) -> Option<&Blackhole> {
        self.ifaces.get(rx)?.blackhole.as_ref()
    }

    /// CLOCK_MONOTONIC of the last batch received (0 = none yet).
    pub fn last_rx_ns(&self) -> u64 {
        self.last_rx_ns.load(Ordering::Relaxed)
    }

    pub fn t0_ns(&self) -> u64 {
        self.t0_ns
    }

    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }

    /// Wait until nothing arrived for `quiet` (or `limit` passed), then stop.
    pub fn settle(&self, quiet: Duration, limit: Duration) {
        let until = monotonic_ns() + limit.as_nanos() as u64;
        let quiet = quiet.as_nanos() as u64;
        loop {
            let now = monotonic_ns();
            if now >= until || now.saturating_sub(self.last_rx_ns()) >= quiet {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        self.stop();
    }

    pub fn join(mut self) -> Result<SinkResult> {
        self.stop();
        let mut rx: Vec<RxReport> = self
            .ifaces
            .iter()
            .map(|f| RxReport {
                ifname: f.cfg.ifname.clone(),
                netns: f.cfg.netns.clone(),
                ..Default::default()
            })
            .collect();
        let mut err = None;
        for (i, t) in std::mem::take(&mut self.threads) {
            match t.join() {
                Ok(Ok(o)) => {
                    let r = &mut rx[i];
                    r.other += o.other;
                    r.zero_copy |= o.zero_copy;
                    r.kernel_rx_time += o.kernel_ts;
                    r.socket_rx_time += o.socket_ts;
                    r.socket.add(&o.socket);
                }
                Ok(Err(e)) => {
                    err.get_or_insert(e);
                }
                Err(_) => {
                    err.get_or_insert(anyhow!("a sink thread panicked"));
                }
            }
        }
        let agg = self.aggregator.take().map(|a| {
            a.join()
                .map_err(|_| anyhow!("the sink aggregator panicked"))
        });
        if let Some(e) = err {
            return Err(e);
        }
        let agg = agg.ok_or_else(|| anyhow!("no aggregator"))??;
        for (i, f) in self.ifaces.iter().enumerate() {
            let r = &mut rx[i];
            r.received = f.received.load(Ordering::Relaxed);
            if let Ok(p) = f.program.lock() {
                r.xsk = p.counts();
                r.lossy = p.lossy().map(super::xsk::Lossy::counts);
            }
            if let Some(b) = &f.blackhole {
                r.blackhole = Some(b.counts());
                r.flips = b.flips();
            }
            r.rate_bins_1ms = agg.bins.get(i).cloned().unwrap_or_default();
        }
        let lossy = self
            .ifaces
            .iter()
            .filter_map(|f| f.program.lock().ok().and_then(|p| p.lossy_counts()))
            .reduce(|a, b| (a.0 + b.0, a.1 + b.1));
        Ok(SinkResult {
            streams: agg.streams,
            other: rx.iter().map(|r| r.other).sum(),
            zero_copy: rx.iter().any(|r| r.zero_copy),
            rx,
            lossy,
            t0_ns: self.t0_ns,
        })
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        // A sink dropped without join: stop the threads, which unregister
        // their sockets; the programs detach when the last handle goes.
        self.stop();
        for (_, t) in std::mem::take(&mut self.threads) {
            let _ = t.join();
        }
        if let Some(a) = self.aggregator.take() {
            let _ = a.join();
        }
    }
}

struct LoopCtx<'a> {
    src: usize,
    rx: u16,
    batch: u32,
    deadline: u64,
    t0_ns: u64,
    progress: &'a AtomicU64,
    last_rx: &'a AtomicU64,
    stop: &'a AtomicBool,
    out: &'a mpsc::SyncSender<Msg>,
}

fn recv_loop(mut xsk: Xsk, c: &LoopCtx<'_>) -> Result<ThreadOut> {
    let mut rx = xsk.rx.take().ok_or_else(|| anyhow!("no rx ring"))?;
    // Chunks not handed to the fill ring at start, plus received ones.
    let mut recycle: Vec<u64> = (xsk.ring_size..2 * xsk.ring_size).map(Xsk::chunk).collect();
    let (mut other, mut kernel_ts, mut socket_ts) = (0u64, 0u64, 0u64);
    let mut stopping = false;
    let mut sent_wm = 0u64;
    loop {
        // Promised below: every frame stamped before this is on the ring.
        let wm = monotonic_ns().saturating_sub(MERGE_MARGIN_NS);
        let mut r = rx.receive(c.batch);
        if r.capacity() == 0 {
            drop(r);
            if !recycle.is_empty() {
                xsk.fill(&mut recycle);
            }
            if stopping {
                break;
            }
            // Tell the aggregator time moved on (at most every 1 ms).
            if wm >= sent_wm + 1_000_000 {
                sent_wm = wm;
                let _ = c.out.send(Msg::Batch {
                    src: c.src,
                    recs: Vec::new(),
                    wm,
                });
            }
            // One more pass after stop drains what is in the ring.
            if c.stop.load(Ordering::Relaxed) || monotonic_ns() >= c.deadline {
                stopping = true;
                continue;
            }
            xsk.poll_rx(1);
            continue;
        }
        let ts = monotonic_ns();
        // A full batch may leave older frames on the ring: promise only up
        // to the last one read (a queue's receive times rise).
        let full = r.capacity() >= c.batch;
        let mut recs = Vec::with_capacity(r.capacity() as usize);
        while let Some(d) = r.read() {
            let chunk = Xsk::chunk_of(d.addr);
            // SAFETY: the kernel handed this chunk to us through the rx ring.
            let rx_ns = unsafe { xsk.take_rx_time(d.addr, chunk) }
                .filter(|&k| k > c.t0_ns.saturating_sub(1_000_000_000) && k <= ts);
            match rx_ns {
                Some(_) => kernel_ts += 1,
                None => socket_ts += 1,
            }
            // SAFETY: as above.
            let frame = unsafe { xsk.frame_mut(d.addr, d.len as usize) };
            match parse(frame) {
                Some(p) => recs.push(Rec {
                    rx_ns: rx_ns.unwrap_or(ts),
                    seq: p.seq,
                    tx_ns: p.tx_ns,
                    stream: p.stream,
                    len: (d.len + 4) as u16,
                    rx: c.rx,
                }),
                None => other += 1,
            }
            recycle.push(chunk);
        }
        r.release();
        xsk.fill(&mut recycle);
        c.progress.fetch_add(recs.len() as u64, Ordering::Relaxed);
        c.last_rx.fetch_max(ts, Ordering::Relaxed);
        let wm = match recs.last() {
            Some(last) if full => wm.min(last.rx_ns),
            _ => wm,
        };
        sent_wm = wm;
        if c.out
            .send(Msg::Batch {
                src: c.src,
                recs,
                wm,
            })
            .is_err()
        {
            bail!("the sink aggregator is gone");
        }
    }
    Ok(ThreadOut {
        other,
        zero_copy: xsk.zero_copy,
        kernel_ts,
        socket_ts,
        socket: xsk.socket_counts(),
    })
}

struct Source {
    q: VecDeque<Rec>,
    wm: u64,
    done: bool,
}

/// Merge the threads' records by receive time and feed the statistics.
fn aggregate(rx: mpsc::Receiver<Msg>, nsrc: usize, nif: usize, t0_ns: u64) -> Aggregate {
    let mut sources: Vec<Source> = (0..nsrc)
        .map(|_| Source {
            q: VecDeque::new(),
            wm: 0,
            done: false,
        })
        .collect();
    let mut states: Vec<Option<Box<StreamState>>> = (0..=u16::MAX).map(|_| None).collect();
    let mut bins: Vec<Vec<u32>> = vec![Vec::new(); nif];
    let mut buffered = 0usize;
    let mut apply = |r: &Rec| {
        let p = Probe {
            stream: r.stream,
            seq: r.seq,
            tx_ns: r.tx_ns,
        };
        states[usize::from(r.stream)]
            .get_or_insert_with(|| Box::new(StreamState::new(r.stream, t0_ns)))
            .record(&p, usize::from(r.len), r.rx_ns, usize::from(r.rx));
        let b = &mut bins[usize::from(r.rx)];
        let i = (r.rx_ns.saturating_sub(t0_ns) / BIN_NS) as usize;
        if i >= b.len() {
            b.resize(i + 1, 0);
        }
        b[i] += 1;
    };
    let mut disconnected = false;
    loop {
        // Poll rather than block: a sender then never has to wake us (a
        // futex call per batch is a cost at a million packets a second).
        let mut got = 0;
        while !disconnected && got < 4096 {
            match rx.try_recv() {
                Ok(Msg::Batch { src, recs, wm }) => {
                    let s = &mut sources[src];
                    buffered += recs.len();
                    s.q.extend(recs);
                    s.wm = s.wm.max(wm);
                    got += 1;
                }
                Ok(Msg::Done { src }) => {
                    sources[src].done = true;
                    got += 1;
                }
                Err(mpsc::TryRecvError::Empty) => break,
                Err(mpsc::TryRecvError::Disconnected) => disconnected = true,
            }
        }
        if got == 0 && !disconnected {
            std::thread::sleep(Duration::from_millis(1));
            continue;
        }
        if disconnected {
            for s in &mut sources {
                s.done = true;
            }
        }
        let w = sources
            .iter()
            .map(|s| if s.done { u64::MAX } else { s.wm })
            .min()
            .unwrap_or(u64::MAX);
        loop {
            // The source whose next record is the oldest.
            let mut best: Option<(usize, u64)> = None;
            for (i, s) in sources.iter().enumerate() {
                if let Some(r) = s.q.front()
                    && best.is_none_or(|(_, t)| r.rx_ns < t)
                {
                    best = Some((i, r.rx_ns));
                }
            }
            let Some((i, t)) = best else { break };
            if t > w && buffered < MAX_BUFFERED {
                break;
            }
            let r = sources[i].q.pop_front().expect("front exists");
            buffered -= 1;
            apply(&r);
        }
        if sources.iter().all(|s| s.done) && buffered == 0 {
            break;
        }
    }
    Aggregate {
        streams: states
            .into_iter()
            .flatten()
            .map(|b| (b.stream, *b))
            .collect(),
        bins,
    }
}
