//! A whole measurement: a sink on one or more interfaces (in one or more
//! namespaces), a generator in another, kernel counters before and after,
//! and one report (JSON-serialisable).
//!
//! [`start`] returns a [`RunHandle`] at once: the caller acts while traffic
//! flows (flips links, switches a black hole, records events on the
//! engine's clock) and [`RunHandle::join`] returns the report, whose `t0_ns`
//! maps event times onto the 1 ms bins. [`run`] is start + join.
use std::{
    io::Write as _,
    net::IpAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    thread::JoinHandle,
    time::Duration,
};

use anyhow::{Context as _, Result, anyhow, bail};
use serde::{Deserialize, Serialize};

use super::{
    fault::Blackhole,
    frame::{FrameSizes, TrafficSpec},
    generator::{GenConfig, GenReport, Generator},
    iface::{self, Counters},
    live_frames::{self, LiveConfig},
    pacing::Rate,
    sink::{RxReport, Sink, SinkConfig, SinkIface},
    stats::{StreamReport, StreamState},
    xsk::{BindMode, SinkFilter},
};
use msee_sys::monotonic_ns;

/// Upper bound on a rate when the link speed is unknown (ethtool says
/// nothing): well above what one host can generate.
pub const MAX_PPS_UNKNOWN_LINK: f64 = 200e6;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
pub enum GenMode {
    /// Userspace AF_XDP sockets: per-packet sequence and timestamp per flow.
    AfXdp,
    /// In-kernel BPF_PROG_TEST_RUN live frames: one stream per CPU.
    LiveFrames,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    pub netns: Option<String>,
    pub ifname: String,
    pub queues: u32,
}

impl Endpoint {
    /// `ifname` in `netns`, one queue.
    pub fn new(netns: Option<&str>, ifname: &str) -> Self {
        Self {
            netns: netns.map(str::to_owned),
            ifname: ifname.to_owned(),
            queues: 1,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RunConfig {
    pub tx: Endpoint,
    /// The sink's interfaces (one or more, any namespaces): a stream may
    /// move between them and stays one sequence space. Their order is the
    /// `rx` index of every per-interface figure.
    pub rx: Vec<Endpoint>,
    pub src_ip: IpAddr,
    pub dst_ip: IpAddr,
    /// Destination MAC; `None` = the tx namespace's neighbour entry of the
    /// next hop to dst_ip (its route's gateway, or dst_ip when on-link).
    pub dst_mac: Option<[u8; 6]>,
    pub src_port: u16,
    pub dst_port: u16,
    pub flows: u16,
    pub vary_addrs: bool,
    pub vlans: Vec<u16>,
    pub sizes: FrameSizes,
    pub rate: Rate,
    pub count: u64,
    pub duration: Duration,
    pub mode: GenMode,
    pub bind: BindMode,
    pub generic_xdp: bool,
    pub drop_every: Option<u64>,
    pub batch: u32,
    pub gen_cpus: Vec<usize>,
    pub sink_cpus: Vec<usize>,
    /// Print a live progress line on stderr.
    pub progress: bool,
    /// The sink takes every frame of its interfaces, as before filters
    /// existed (the kernel then sees no ARP, BGP or BFD there). Default:
    /// only UDP to the run's destination ports (`dst_port` ..
    /// `dst_port + flows - 1`); everything else goes to the kernel, so a
    /// routing daemon on the same interfaces keeps working.
    #[serde(default)]
    pub all_frames: bool,
    /// Attach a black-hole switch (off) to every rx interface:
    /// [`RunHandle::blackhole`].
    #[serde(default)]
    pub rx_blackhole: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Totals {
    pub sent: u64,
    pub received: u64,
    pub lost: u64,
    pub duplicated: u64,
    pub reordered: u64,
    pub longest_gap_ns: u64,
    /// When the longest gap ended (ns since the sink started) and on which
    /// stream.
    #[serde(default)]
    pub longest_gap_end_ns: u64,
    #[serde(default)]
    pub longest_gap_stream: Option<u16>,
    /// Sum over streams of loss-derived outage.
    pub outage_ms: f64,
    /// Loss-derived outage of the run (RFC 6201): all packets lost over
    /// the offered rate of all streams.
    #[serde(default)]
    pub outage_ms_run: f64,
    /// The worst stream's loss-derived outage.
    #[serde(default)]
    pub outage_ms_max: f64,
    pub latency_p50_ns_max: Option<u64>,
    pub latency_max_ns: Option<u64>,
}

/// Something the caller did during a run, on the engine's clock.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    pub label: String,
    /// CLOCK_MONOTONIC (`msee_sys::monotonic_ns`).
    pub at_ns: u64,
    /// ns since the sink started (the bins' origin).
    pub since_t0_ns: u64,
}

/// Streams grouped by the interface that carried them just before an
/// event, with their loss: e.g. "the flows of the surviving link lost
/// nothing, those of the failed link lost 40 ms".
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CarrierClass {
    /// The interface (rx index, name) that received each of these streams'
    /// last packet before the event; `None`: no packet before it.
    pub rx: Option<usize>,
    pub ifname: Option<String>,
    pub streams: Vec<u16>,
    /// Where their first packet after the event arrived: (rx, streams);
    /// rx `None`: none arrived after it.
    pub after: Vec<(Option<usize>, Vec<u16>)>,
    pub sent: u64,
    pub received: u64,
    /// Over the whole run.
    pub lost: u64,
    /// In sequence holes that closed after the event, plus the tail (see
    /// `StreamReport::lost_after`).
    pub lost_after: u64,
    pub offered_pps: f64,
    /// Loss-derived outage of the class: lost over the class's offered rate
    /// (the mean of its streams' outages when their rates are equal).
    pub outage_ms: f64,
    /// The worst stream's.
    pub outage_ms_max: f64,
    pub longest_gap_ns: u64,
    /// ns since the sink started.
    pub longest_gap_end_ns: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RunReport {
    pub config: RunConfig,
    pub spec: TrafficSpec,
    pub generator: GenReport,
    pub streams: Vec<StreamReport>,
    pub totals: Totals,
    /// CLOCK_MONOTONIC when the sink started: every `*_ns` "since the sink
    /// started" and every 1 ms bin counts from here.
    pub t0_ns: u64,
    /// Received packets per 1 ms over all streams and interfaces.
    pub link_rate_bins_1ms: Vec<u32>,
    /// Per rx interface, in `config.rx` order: received, bins, filter and
    /// socket counters, black hole.
    pub rx: Vec<RxReport>,
    /// The caller's events and the black-hole switches, by time.
    pub events: Vec<Event>,
    /// Frames at the sink that were not test frames.
    pub sink_other: u64,
    pub sink_zero_copy: bool,
    /// (seen, dropped) by the `lossy` program, all rx interfaces.
    pub lossy: Option<(u64, u64)>,
    /// Kernel counters of the tx interface, and of the rx interfaces
    /// summed (each one's are in `rx`), over the run.
    pub tx_if: Counters,
    pub rx_if: Counters,
    /// tx interface's tx packets / generator duration (`ip -s link`).
    pub tx_if_pps: f64,
}

/// Largest pps `ifname` can carry for frames of `mean` bytes (with 20 bytes
/// of preamble and gap on the wire), if ethtool knows its speed.
pub fn link_pps_limit(netns: Option<&str>, ifname: &str, mean: f64) -> Option<f64> {
    iface::speed_mbps(netns, ifname).map(|m| m as f64 * 1e6 / ((mean + 20.0) * 8.0))
}

pub fn check_rate(rate: Rate, limit: Option<f64>, mean: f64, ifname: &str) -> Result<()> {
    let Some(pps) = rate.pps(mean) else {
        return Ok(());
    };
    if pps.is_nan() || pps <= 0.0 || !pps.is_finite() {
        bail!("rate must be positive");
    }
    let (max, why) = match limit {
        Some(l) => (l, format!("the link speed of {ifname}")),
        None => (MAX_PPS_UNKNOWN_LINK, "the sanity bound".to_owned()),
    };
    if pps > max {
        bail!("rate of {pps:.0} pps is above {why} ({max:.0} pps at this frame size)");
    }
    Ok(())
}

impl RunConfig {
    /// A run from `tx` to the sink interfaces `rx`, flow i from port
    /// 10000 + i to 20000 + i, 64-byte frames, one flow, AF_XDP, at `rate`,
    /// bounded by `count` and `duration`. Adjust the public fields for more.
    pub fn new(
        tx: Endpoint,
        rx: Vec<Endpoint>,
        src_ip: IpAddr,
        dst_ip: IpAddr,
        rate: Rate,
        count: u64,
        duration: Duration,
    ) -> Self {
        Self {
            tx,
            rx,
            src_ip,
            dst_ip,
            dst_mac: None,
            src_port: 10000,
            dst_port: 20000,
            flows: 1,
            vary_addrs: false,
            vlans: Vec::new(),
            sizes: FrameSizes::Fixed(64),
            rate,
            count,
            duration,
            mode: GenMode::AfXdp,
            bind: BindMode::Auto,
            generic_xdp: false,
            drop_every: None,
            batch: 64,
            gen_cpus: Vec::new(),
            sink_cpus: Vec::new(),
            progress: false,
            all_frames: false,
            rx_blackhole: false,
        }
    }

    /// What the sink takes: the run's test ports, or every frame.
    pub fn sink_filter(&self) -> SinkFilter {
        if self.all_frames {
            SinkFilter::All
        } else {
            SinkFilter::test_ports(self.dst_port, self.flows)
        }
    }

    /// Check and resolve everything before a frame is sent: the traffic
    /// and the tx ifindex.
    pub fn resolve(&self) -> Result<(TrafficSpec, u32)> {
        if self.count == 0 || self.duration.is_zero() {
            bail!("both --count and --duration are required and must be > 0");
        }
        if self.rx.is_empty() {
            bail!("no rx interface given");
        }
        let txns = self.tx.netns.as_deref();
        let tx_ifindex = iface::ifindex(txns, &self.tx.ifname)?;
        for (i, r) in self.rx.iter().enumerate() {
            iface::ifindex(r.netns.as_deref(), &r.ifname)?;
            if r.queues == 0 {
                bail!("rx interface {} needs at least one queue", r.ifname);
            }
            if self.rx[..i]
                .iter()
                .any(|o| o.ifname == r.ifname && o.netns == r.netns)
            {
                bail!("rx interface {} given twice", r.ifname);
            }
        }
        let mut spec = TrafficSpec {
            src_mac: iface::mac(txns, &self.tx.ifname)?,
            // Resolved last: resolving may send a probe, and nothing may be
            // sent before every other check passed.
            dst_mac: self.dst_mac.unwrap_or([0; 6]),
            vlans: self.vlans.clone(),
            src_ip: self.src_ip,
            dst_ip: self.dst_ip,
            src_port: self.src_port,
            dst_port: self.dst_port,
            flows: self.flows,
            vary_addrs: self.vary_addrs,
            sizes: self.sizes.clone(),
            stream_base: 0,
        };
        spec.validate()?;
        if self.mode == GenMode::LiveFrames && self.sizes == FrameSizes::Imix {
            bail!("live frames send one frame size; IMIX needs --mode af-xdp");
        }
        let mean = spec.sizes.mean();
        check_rate(
            self.rate,
            link_pps_limit(txns, &self.tx.ifname, mean),
            mean,
            &self.tx.ifname,
        )?;
        if self.dst_mac.is_none() {
            spec.dst_mac = iface::next_hop_mac(txns, &self.tx.ifname, self.dst_ip)?;
        }
        Ok((spec, tx_ifindex))
    }
}

enum Gen {
    AfXdp(Generator),
    Live {
        thread: JoinHandle<Result<GenReport>>,
        progress: Arc<AtomicU64>,
        stop: Arc<AtomicBool>,
    },
}

/// Stops the generator when dropped: a handle dropped without `join` (a
/// failed test) leaves nothing sending.
struct StopOnDrop(Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// A run in the background: traffic flows while the caller acts. Dropped
/// without `join`, it stops the generator and the sink.
pub struct RunHandle {
    cfg: RunConfig,
    spec: TrafficSpec,
    gen_: Gen,
    sink: Sink,
    tx_before: Counters,
    rx_before: Vec<Counters>,
    events: Mutex<Vec<Event>>,
    started_ns: u64,
    _stop_on_drop: StopOnDrop,
}

/// Start the sink(s), then the generator, and return at once. Nothing is
/// sent unless every check passed and every socket is open. The run ends
/// by itself at `count` or `duration`; [`RunHandle::join`] waits for that.
pub fn start(cfg: &RunConfig) -> Result<RunHandle> {
    let (spec, tx_ifindex) = cfg.resolve()?;
    let txns = cfg.tx.netns.as_deref();
    let tx_before = iface::counters(txns, &cfg.tx.ifname)?;
    let rx_before = cfg
        .rx
        .iter()
        .map(|r| iface::counters(r.netns.as_deref(), &r.ifname))
        .collect::<Result<Vec<_>>>()?;
    let sink = Sink::start(SinkConfig {
        ifaces: cfg
            .rx
            .iter()
            .map(|r| SinkIface {
                netns: r.netns.clone(),
                ifname: r.ifname.clone(),
                queues: (0..r.queues).collect(),
            })
            .collect(),
        bind: cfg.bind,
        generic_xdp: cfg.generic_xdp,
        drop_every: cfg.drop_every,
        filter: cfg.sink_filter(),
        rx_timestamps: true,
        blackhole: cfg.rx_blackhole,
        // The generator's bound plus time to drain.
        max_duration: cfg.duration + Duration::from_secs(5),
        batch: 64,
        cpus: cfg.sink_cpus.clone(),
    })
    .context("starting the sink")?;
    let gen_ = match cfg.mode {
        GenMode::AfXdp => Gen::AfXdp(
            Generator::start(GenConfig {
                netns: cfg.tx.netns.clone(),
                ifindex: tx_ifindex,
                queues: (0..cfg.tx.queues).collect(),
                spec: spec.clone(),
                rate: cfg.rate,
                count: cfg.count,
                duration: cfg.duration,
                batch: cfg.batch,
                bind: cfg.bind,
                cpus: cfg.gen_cpus.clone(),
                destinations: None,
            })
            .context("starting the generator")?,
        ),
        GenMode::LiveFrames => {
            let FrameSizes::Fixed(size) = spec.sizes else {
                unreachable!("checked in resolve")
            };
            let cpus = if cfg.gen_cpus.is_empty() {
                vec![0]
            } else {
                cfg.gen_cpus.clone()
            };
            let live = LiveConfig {
                netns: cfg.tx.netns.clone(),
                ifindex: tx_ifindex,
                template: spec.template(0, size),
                template_dst: spec.dst_ip,
                stream_base: 0,
                count: cfg.count,
                duration: cfg.duration,
                pps: cfg.rate.pps(f64::from(size)),
                cpus,
                batch: cfg.batch.clamp(1, 256),
                destinations: None,
            };
            let progress = Arc::new(AtomicU64::new(0));
            let stop = Arc::new(AtomicBool::new(false));
            let (p, s) = (progress.clone(), stop.clone());
            Gen::Live {
                thread: std::thread::spawn(move || live_frames::run(&live, p, s)),
                progress,
                stop,
            }
        }
    };
    let stop_flag = match &gen_ {
        Gen::AfXdp(g) => g.stop_flag(),
        Gen::Live { stop, .. } => stop.clone(),
    };
    Ok(RunHandle {
        _stop_on_drop: StopOnDrop(stop_flag),
        cfg: cfg.clone(),
        spec,
        gen_,
        sink,
        tx_before,
        rx_before,
        events: Mutex::new(Vec::new()),
        started_ns: monotonic_ns(),
    })
}

/// Start, wait (printing progress if asked), and report.
pub fn run(cfg: &RunConfig) -> Result<RunReport> {
    let h = start(cfg)?;
    if cfg.progress {
        while !h.generator_finished() {
            std::thread::sleep(Duration::from_millis(200));
            let secs = (monotonic_ns() - h.started_ns) as f64 / 1e9;
            let (s, r) = (h.sent(), h.received());
            eprint!(
                "\r{secs:6.1} s  sent {s:>12}  received {r:>12}  ({:>10.0} pps sent)   ",
                s as f64 / secs.max(1e-9)
            );
            let _ = std::io::stderr().flush();
        }
        eprintln!();
    }
    h.join()
}

impl RunHandle {
    /// CLOCK_MONOTONIC when the sink started (the bins' origin).
    pub fn t0_ns(&self) -> u64 {
        self.sink.t0_ns()
    }

    pub fn config(&self) -> &RunConfig {
        &self.cfg
    }

    pub fn spec(&self) -> &TrafficSpec {
        &self.spec
    }

    /// Packets handed to the kernel so far.
    pub fn sent(&self) -> u64 {
        match &self.gen_ {
            Gen::AfXdp(g) => g.sent(),
            Gen::Live { progress, .. } => progress.load(Ordering::Relaxed),
        }
    }

    /// Test frames received so far, all rx interfaces.
    pub fn received(&self) -> u64 {
        self.sink.received()
    }

    /// Test frames received so far on rx interface `ifname`.
    pub fn received_on(&self, ifname: &str) -> Option<u64> {
        self.sink.rx_index(ifname).map(|i| self.sink.received_on(i))
    }

    /// The index of rx interface `ifname` in `config().rx`.
    pub fn rx_index(&self, ifname: &str) -> Option<usize> {
        self.sink.rx_index(ifname)
    }

    /// The black-hole switch of rx interface `ifname` (with `rx_blackhole`).
    pub fn blackhole(&self, ifname: &str) -> Option<&Blackhole> {
        self.sink.blackhole(self.sink.rx_index(ifname)?)
    }

    /// Record an event now; returns its time (CLOCK_MONOTONIC).
    pub fn event(&self, label: &str) -> u64 {
        let t = monotonic_ns();
        self.event_at(label, t);
        t
    }

    /// Record an event that happened at `at_ns` (CLOCK_MONOTONIC, e.g. a
    /// `Flip::at_ns` or a `msee_sys::monotonic_ns()` taken by the caller).
    pub fn event_at(&self, label: &str, at_ns: u64) {
        self.events
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(Event {
                label: label.to_owned(),
                at_ns,
                since_t0_ns: at_ns.saturating_sub(self.t0_ns()),
            });
    }

    pub fn generator_finished(&self) -> bool {
        match &self.gen_ {
            Gen::AfXdp(g) => g.is_finished(),
            Gen::Live { thread, .. } => thread.is_finished(),
        }
    }

    /// Wait until the sink has received `n` test frames (or `timeout`
    /// passed, or the generator ended); true if it has.
    pub fn wait_received(&self, n: u64, timeout: Duration) -> bool {
        let until = monotonic_ns() + timeout.as_nanos() as u64;
        loop {
            if self.received() >= n {
                return true;
            }
            if monotonic_ns() >= until || self.generator_finished() {
                return self.received() >= n;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// End the generator now (the run then ends as if its bound was hit).
    pub fn stop(&self) {
        match &self.gen_ {
            Gen::AfXdp(g) => g.stop(),
            Gen::Live { stop, .. } => stop.store(true, Ordering::Relaxed),
        }
    }

    /// Wait for the generator's bound, drain the sink, and report.
    pub fn join(self) -> Result<RunReport> {
        let RunHandle {
            cfg,
            spec,
            gen_,
            sink,
            tx_before,
            rx_before,
            events,
            started_ns: _,
            _stop_on_drop,
        } = self;
        let generated = match gen_ {
            Gen::AfXdp(g) => g.join(),
            Gen::Live { thread, .. } => thread
                .join()
                .map_err(|_| anyhow!("generator thread panicked"))
                .and_then(|r| r),
        };
        // Stop the sink whatever happened to the generator.
        sink.settle(Duration::from_millis(200), Duration::from_secs(3));
        let sunk = sink.join();
        let generator = generated?;
        let mut sunk = sunk?;
        let txns = cfg.tx.netns.as_deref();
        let tx_if = iface::counters(txns, &cfg.tx.ifname)?.delta(&tx_before);
        let mut rx_if = Counters::default();
        for ((r, ep), before) in sunk.rx.iter_mut().zip(&cfg.rx).zip(&rx_before) {
            let c = iface::counters(ep.netns.as_deref(), &ep.ifname)?.delta(before);
            rx_if.rx_packets += c.rx_packets;
            rx_if.rx_bytes += c.rx_bytes;
            rx_if.rx_dropped += c.rx_dropped;
            rx_if.tx_packets += c.tx_packets;
            rx_if.tx_bytes += c.tx_bytes;
            rx_if.tx_dropped += c.tx_dropped;
            r.counters = Some(c);
        }
        let names = sunk.rx_names();
        let t0 = sunk.t0_ns;
        let mut totals = Totals {
            sent: generator.sent,
            ..Default::default()
        };
        let mut streams = Vec::new();
        let mut link_bins: Vec<u32> = Vec::new();
        // Every stream the generator sent on, plus any the sink saw besides.
        let mut ids: Vec<u16> = generator.per_stream.iter().map(|(s, _)| *s).collect();
        ids.extend(sunk.streams.keys().copied());
        ids.sort();
        ids.dedup();
        let mut offered_total = 0.0;
        for id in ids {
            let sent = generator.sent_on(id);
            let offered = generator.offered_on(id);
            let r = match sunk.streams.get(&id) {
                Some(st) => st.report(sent, offered, &names),
                None => StreamState::new(id, t0).report(sent, offered, &names),
            };
            totals.received += r.received;
            totals.lost += r.lost;
            totals.duplicated += r.duplicated;
            totals.reordered += r.reordered;
            if r.longest_gap_ns > totals.longest_gap_ns {
                totals.longest_gap_ns = r.longest_gap_ns;
                totals.longest_gap_end_ns = r.longest_gap_end_ns;
                totals.longest_gap_stream = Some(r.stream);
            }
            let o = r.outage_ms.unwrap_or(0.0);
            totals.outage_ms += o;
            totals.outage_ms_max = totals.outage_ms_max.max(o);
            offered_total += r.offered_pps.unwrap_or(0.0);
            if let Some(l) = &r.latency {
                totals.latency_p50_ns_max = totals.latency_p50_ns_max.max(Some(l.p50_ns));
                totals.latency_max_ns = totals.latency_max_ns.max(Some(l.max_ns));
            }
            if r.rate_bins_1ms.len() > link_bins.len() {
                link_bins.resize(r.rate_bins_1ms.len(), 0);
            }
            for (a, b) in link_bins.iter_mut().zip(&r.rate_bins_1ms) {
                *a += b;
            }
            streams.push(r);
        }
        if offered_total > 0.0 {
            totals.outage_ms_run = totals.lost as f64 / offered_total * 1e3;
        }
        let mut events = events
            .into_inner()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for f in sunk.rx.iter().flat_map(|r| &r.flips) {
            events.push(Event {
                label: format!(
                    "{} black hole {}",
                    f.ifname,
                    if f.on { "on" } else { "off" }
                ),
                at_ns: f.at_ns,
                since_t0_ns: f.at_ns.saturating_sub(t0),
            });
        }
        events.sort_by_key(|e| e.at_ns);
        let tx_if_pps = tx_if.tx_packets as f64 / generator.duration_s.max(1e-9);
        Ok(RunReport {
            config: cfg,
            spec,
            generator,
            streams,
            totals,
            t0_ns: t0,
            link_rate_bins_1ms: link_bins,
            sink_other: sunk.other,
            sink_zero_copy: sunk.zero_copy,
            lossy: sunk.lossy,
            rx: sunk.rx,
            events,
            tx_if,
            rx_if,
            tx_if_pps,
        })
    }
}

impl RunReport {
    /// Human summary, a few lines.
    pub fn summary(&self) -> String {
        let t = &self.totals;
        let g = &self.generator;
        let mut s = format!(
            "generator ({}): sent {} in {:.3} s = {:.0} pps (tx interface counted {} = {:.0} pps); {:.3} CPU s = {:.0} pps per CPU second\n",
            g.mode,
            g.sent,
            g.duration_s,
            g.pps,
            self.tx_if.tx_packets,
            self.tx_if_pps,
            g.cpu_s,
            self.tx_if.tx_packets as f64 / g.cpu_s.max(1e-9)
        );
        s += &format!(
            "sink: received {} lost {} duplicated {} reordered {} longest gap {:.3} ms outage {:.3} ms (run), {:.3} ms (worst stream)\n",
            t.received,
            t.lost,
            t.duplicated,
            t.reordered,
            t.longest_gap_ns as f64 / 1e6,
            t.outage_ms_run,
            t.outage_ms_max
        );
        if self.rx.len() > 1 {
            for r in &self.rx {
                s += &format!(
                    "  {}: received {} (passed to the kernel {})\n",
                    r.ifname, r.received, r.xsk.passed
                );
            }
        }
        if let (Some(p50), Some(max)) = (t.latency_p50_ns_max, t.latency_max_ns) {
            s += &format!(
                "one-way latency: worst stream p50 {:.1} us, max {:.1} us\n",
                p50 as f64 / 1e3,
                max as f64 / 1e3
            );
        }
        if let Some((seen, dropped)) = self.lossy {
            s += &format!("lossy: saw {seen}, dropped {dropped}\n");
        }
        for r in &self.rx {
            if let Some(b) = &r.blackhole {
                s += &format!(
                    "black hole on {}: dropped {} in, {} out\n",
                    r.ifname, b.ingress_dropped, b.egress_dropped
                );
            }
        }
        for e in &self.events {
            s += &format!(
                "event at {:.3} s: {}\n",
                e.since_t0_ns as f64 / 1e9,
                e.label
            );
        }
        s
    }

    /// The index of rx interface `ifname`.
    pub fn rx_index(&self, ifname: &str) -> Option<usize> {
        self.rx.iter().position(|r| r.ifname == ifname)
    }

    pub fn stream(&self, id: u16) -> Option<&StreamReport> {
        self.streams.iter().find(|s| s.stream == id)
    }

    /// Group the streams by the interface that carried them just before
    /// `event_ns` (CLOCK_MONOTONIC, as `msee_sys::monotonic_ns` or an event's
    /// `at_ns`), with the loss of each group. Sorted by rx index, streams
    /// that had no packet before the event last.
    pub fn classify(&self, event_ns: u64) -> Vec<CarrierClass> {
        self.classify_settled(event_ns, 0)
    }

    /// As `classify`, with `after` read `settle_ns` past the event: frames
    /// already on their way by the old path when the event happened (a
    /// straggler arriving after a flow was moved) do not count as the new
    /// carrier.
    pub fn classify_settled(&self, event_ns: u64, settle_ns: u64) -> Vec<CarrierClass> {
        let at = event_ns.saturating_sub(self.t0_ns);
        let mut classes: Vec<CarrierClass> = Vec::new();
        for s in &self.streams {
            let rx = s.carrier_before(at);
            let i = match classes.iter().position(|c| c.rx == rx) {
                Some(i) => i,
                None => {
                    classes.push(CarrierClass {
                        rx,
                        ifname: rx.and_then(|i| self.rx.get(i)).map(|r| r.ifname.clone()),
                        ..Default::default()
                    });
                    classes.len() - 1
                }
            };
            let c = &mut classes[i];
            c.streams.push(s.stream);
            let after = s.carrier_after(at + settle_ns);
            match c.after.iter_mut().find(|(r, _)| *r == after) {
                Some((_, v)) => v.push(s.stream),
                None => c.after.push((after, vec![s.stream])),
            }
            c.sent += s.sent.unwrap_or(0);
            c.received += s.received;
            c.lost += s.lost;
            c.lost_after += s.lost_after(at);
            c.offered_pps += s.offered_pps.unwrap_or(0.0);
            c.outage_ms_max = c.outage_ms_max.max(s.outage_ms.unwrap_or(0.0));
            if s.longest_gap_ns > c.longest_gap_ns {
                c.longest_gap_ns = s.longest_gap_ns;
                c.longest_gap_end_ns = s.longest_gap_end_ns;
            }
        }
        for c in &mut classes {
            if c.offered_pps > 0.0 {
                c.outage_ms = c.lost as f64 / c.offered_pps * 1e3;
            }
            c.after.sort_by_key(|(r, _)| r.map_or(usize::MAX, |i| i));
        }
        classes.sort_by_key(|c| c.rx.map_or(usize::MAX, |i| i));
        classes
    }

    /// The class of the streams `ifname` carried just before `event_ns`
    /// (empty if it carried none).
    pub fn carried_by(&self, event_ns: u64, ifname: &str) -> CarrierClass {
        let rx = self.rx_index(ifname);
        self.classify(event_ns)
            .into_iter()
            .find(|c| c.rx.is_some() && c.rx == rx)
            .unwrap_or_else(|| CarrierClass {
                rx,
                ifname: Some(ifname.to_owned()),
                ..Default::default()
            })
    }

    /// Rate lines for the plot: all interfaces, each rx interface when
    /// there are several, and each stream when there are only a few.
    pub fn plot_series(&self) -> Vec<(String, Vec<u32>)> {
        let mut v = vec![("all".to_owned(), self.link_rate_bins_1ms.clone())];
        if self.rx.len() > 1 {
            v.extend(
                self.rx
                    .iter()
                    .map(|r| (format!("rx {}", r.ifname), r.rate_bins_1ms.clone())),
            );
        }
        // A line per stream is readable only for a few streams.
        if self.streams.len() > 1 && self.streams.len() <= 8 && self.rx.len() == 1 {
            v.extend(
                self.streams
                    .iter()
                    .map(|s| (format!("stream {}", s.stream), s.rate_bins_1ms.clone())),
            );
        }
        v
    }

    /// Events as plot markers: (label, ms since the sink started).
    pub fn plot_markers(&self) -> Vec<(String, f64)> {
        self.events
            .iter()
            .map(|e| (e.label.clone(), e.since_t0_ns as f64 / 1e6))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A failover test may hand the run or a switch to another thread.
    #[test]
    fn handles_cross_threads() {
        fn send<T: Send>() {}
        fn sync<T: Sync>() {}
        send::<RunHandle>();
        send::<Blackhole>();
        sync::<Blackhole>();
        send::<RunReport>();
    }

    fn stream(id: u16, path: &[(usize, u64, u64)], lost: u64) -> StreamReport {
        let mut st = StreamState::new(id, 0);
        let mut seq = 0;
        for &(rx, from_ms, to_ms) in path {
            for ms in from_ms..to_ms {
                let p = crate::frame::Probe {
                    stream: id,
                    seq,
                    tx_ns: 0,
                };
                st.record(&p, 64, ms * 1_000_000 + 1, rx);
                seq += 1;
            }
        }
        let sent = seq + lost;
        st.report(Some(sent), Some(1000.0), &["p".into(), "s".into()])
    }

    /// Streams by carrier before an event, where they went after it, and
    /// the loss of each class.
    #[test]
    fn classify_by_carrier_before_the_event() {
        let streams = vec![
            // On p until 100 ms, then on s (moved, 3 lost at the end).
            stream(0, &[(0, 0, 100), (1, 100, 200)], 3),
            // On s throughout.
            stream(1, &[(1, 0, 200)], 0),
            // On p throughout.
            stream(2, &[(0, 0, 200)], 0),
            // Nothing before 150 ms.
            stream(3, &[(1, 150, 200)], 0),
        ];
        let cfg = RunConfig::new(
            Endpoint::new(None, "t"),
            vec![Endpoint::new(None, "p"), Endpoint::new(None, "s")],
            "10.0.0.1".parse().unwrap(),
            "10.0.0.2".parse().unwrap(),
            Rate::Pps(1000.0),
            1,
            Duration::from_secs(1),
        );
        let r = RunReport {
            config: cfg,
            spec: TrafficSpec {
                src_mac: [0; 6],
                dst_mac: [0; 6],
                vlans: vec![],
                src_ip: "10.0.0.1".parse().unwrap(),
                dst_ip: "10.0.0.2".parse().unwrap(),
                src_port: 1,
                dst_port: 2,
                flows: 4,
                vary_addrs: false,
                sizes: FrameSizes::Fixed(64),
                stream_base: 0,
            },
            generator: GenReport::default(),
            streams,
            totals: Totals::default(),
            t0_ns: 5_000_000_000,
            link_rate_bins_1ms: vec![],
            rx: vec![
                RxReport {
                    ifname: "p".into(),
                    ..Default::default()
                },
                RxReport {
                    ifname: "s".into(),
                    ..Default::default()
                },
            ],
            events: vec![],
            sink_other: 0,
            sink_zero_copy: false,
            lossy: None,
            tx_if: Counters::default(),
            rx_if: Counters::default(),
            tx_if_pps: 0.0,
        };
        let event = r.t0_ns + 50_000_000; // 50 ms
        let c = r.classify(event);
        assert_eq!(c.len(), 3, "{c:#?}");
        assert_eq!((c[0].rx, c[0].ifname.as_deref()), (Some(0), Some("p")));
        assert_eq!(c[0].streams, vec![0, 2]);
        assert_eq!(c[0].after, vec![(Some(0), vec![0, 2])]);
        assert_eq!((c[0].lost, c[0].sent), (3, 403));
        // 3 lost at the class's 2000 pps (1000 per stream): 1.5 ms.
        assert!((c[0].outage_ms - 1.5).abs() < 1e-9);
        assert!((c[0].outage_ms_max - 3.0).abs() < 1e-9);
        assert_eq!(c[1].streams, vec![1]);
        // Stream 3 had no packet before the event: last, without a carrier.
        assert_eq!((c[2].rx, c[2].streams.clone()), (None, vec![3]));
        assert_eq!(c[2].after, vec![(Some(1), vec![3])]);
        let c = r.classify(r.t0_ns + 160_000_000);
        assert_eq!(
            c.iter().map(|k| k.rx).collect::<Vec<_>>(),
            vec![Some(0), Some(1)]
        );
        assert_eq!(c[1].streams, vec![0, 1, 3]);
        assert_eq!(r.carried_by(event, "s").streams, vec![1]);
        assert_eq!(r.carried_by(event, "p").after, vec![(Some(0), vec![0, 2])]);
        // Moved: p before 100 ms, s from it on.
        let moved = r.classify(r.t0_ns + 99_500_000);
        assert_eq!(moved[0].after, vec![(Some(0), vec![2]), (Some(1), vec![0])]);
        assert!(r.carried_by(event, "nosuch").streams.is_empty());
    }
}
