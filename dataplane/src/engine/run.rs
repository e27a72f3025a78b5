//! A whole measurement: sink in one namespace, generator in another, kernel
//! counters before and after, and one report (JSON-serialisable).
use std::{
    io::Write as _,
    net::IpAddr,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::Duration,
};

use anyhow::{Context as _, Result, anyhow, bail};
use serde::{Deserialize, Serialize};

use super::{
    frame::{FrameSizes, TrafficSpec},
    generator::{GenConfig, GenReport, Generator},
    iface::{self, Counters},
    live_frames::{self, LiveConfig},
    now_ns,
    pacing::Rate,
    sink::{Sink, SinkConfig},
    stats::StreamReport,
    xsk::BindMode,
};

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

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Endpoint {
    pub netns: Option<String>,
    pub ifname: String,
    pub queues: u32,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RunConfig {
    pub tx: Endpoint,
    pub rx: Endpoint,
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
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Totals {
    pub sent: u64,
    pub received: u64,
    pub lost: u64,
    pub duplicated: u64,
    pub reordered: u64,
    pub longest_gap_ns: u64,
    /// Sum over streams of loss-derived outage.
    pub outage_ms: f64,
    pub latency_p50_ns_max: Option<u64>,
    pub latency_max_ns: Option<u64>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RunReport {
    pub config: RunConfig,
    pub spec: TrafficSpec,
    pub generator: GenReport,
    pub streams: Vec<StreamReport>,
    pub totals: Totals,
    /// Received packets per 1 ms over all streams (the link).
    pub link_rate_bins_1ms: Vec<u32>,
    /// Frames at the sink that were not test frames.
    pub sink_other: u64,
    pub sink_zero_copy: bool,
    /// (seen, dropped) by the `lossy` program.
    pub lossy: Option<(u64, u64)>,
    /// Kernel counters of the tx interface and the rx interface over the run.
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
    /// Check and resolve everything before a frame is sent.
    pub fn resolve(&self) -> Result<(TrafficSpec, u32, u32)> {
        if self.count == 0 || self.duration.is_zero() {
            bail!("both --count and --duration are required and must be > 0");
        }
        let txns = self.tx.netns.as_deref();
        let rxns = self.rx.netns.as_deref();
        let tx_ifindex = iface::ifindex(txns, &self.tx.ifname)?;
        let rx_ifindex = iface::ifindex(rxns, &self.rx.ifname)?;
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
        Ok((spec, tx_ifindex, rx_ifindex))
    }
}

pub fn run(cfg: &RunConfig) -> Result<RunReport> {
    let (spec, tx_ifindex, rx_ifindex) = cfg.resolve()?;
    let txns = cfg.tx.netns.as_deref();
    let rxns = cfg.rx.netns.as_deref();
    let tx_before = iface::counters(txns, &cfg.tx.ifname)?;
    let rx_before = iface::counters(rxns, &cfg.rx.ifname)?;
    let sink = Sink::start(SinkConfig {
        netns: cfg.rx.netns.clone(),
        ifindex: rx_ifindex,
        queues: (0..cfg.rx.queues).collect(),
        bind: cfg.bind,
        generic_xdp: cfg.generic_xdp,
        drop_every: cfg.drop_every,
        // The generator's bound plus time to drain.
        max_duration: cfg.duration + Duration::from_secs(5),
        batch: 64,
        cpus: cfg.sink_cpus.clone(),
    })
    .context("starting the sink")?;

    let progress = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let gen_thread = match cfg.mode {
        GenMode::AfXdp => {
            let g = Generator::start(GenConfig {
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
            })
            .context("starting the generator")?;
            let progress = progress.clone();
            std::thread::spawn(move || {
                while !g.is_finished() {
                    progress.store(g.sent(), Ordering::Relaxed);
                    std::thread::sleep(Duration::from_millis(10));
                }
                g.join()
            })
        }
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
                stream_base: 0,
                count: cfg.count,
                duration: cfg.duration,
                pps: cfg.rate.pps(f64::from(size)),
                cpus,
                batch: cfg.batch.clamp(1, 256),
            };
            let (progress, stop) = (progress.clone(), stop.clone());
            std::thread::spawn(move || live_frames::run(&live, progress, stop))
        }
    };
    let started = now_ns();
    while !gen_thread.is_finished() {
        std::thread::sleep(Duration::from_millis(200));
        if cfg.progress {
            let secs = (now_ns() - started) as f64 / 1e9;
            let (s, r) = (progress.load(Ordering::Relaxed), sink.received());
            eprint!(
                "\r{secs:6.1} s  sent {s:>12}  received {r:>12}  ({:>10.0} pps sent)   ",
                s as f64 / secs.max(1e-9)
            );
            let _ = std::io::stderr().flush();
        }
    }
    if cfg.progress {
        eprintln!();
    }
    let generated = gen_thread
        .join()
        .map_err(|_| anyhow!("generator thread panicked"));
    // Stop the sink whatever happened to the generator.
    sink.settle(Duration::from_millis(200), Duration::from_secs(3));
    let sunk = sink.join();
    let generator = generated??;
    let sunk = sunk?;
    let tx_if = iface::counters(txns, &cfg.tx.ifname)?.delta(&tx_before);
    let rx_if = iface::counters(rxns, &cfg.rx.ifname)?.delta(&rx_before);

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
    for id in ids {
        let sent = generator.sent_on(id);
        let offered = generator.offered_on(id);
        let r = match sunk.streams.get(&id) {
            Some(st) => st.report(sent, offered),
            None => super::stats::StreamState::new(id, sunk.t0_ns).report(sent, offered),
        };
        totals.received += r.received;
        totals.lost += r.lost;
        totals.duplicated += r.duplicated;
        totals.reordered += r.reordered;
        totals.longest_gap_ns = totals.longest_gap_ns.max(r.longest_gap_ns);
        totals.outage_ms += r.outage_ms.unwrap_or(0.0);
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
    let tx_if_pps = tx_if.tx_packets as f64 / generator.duration_s.max(1e-9);
    Ok(RunReport {
        config: cfg.clone(),
        spec,
        generator,
        streams,
        totals,
        link_rate_bins_1ms: link_bins,
        sink_other: sunk.other,
        sink_zero_copy: sunk.zero_copy,
        lossy: sunk.lossy,
        tx_if,
        rx_if,
        tx_if_pps,
    })
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
            "sink: received {} lost {} duplicated {} reordered {} longest gap {:.3} ms outage {:.3} ms\n",
            t.received,
            t.lost,
            t.duplicated,
            t.reordered,
            t.longest_gap_ns as f64 / 1e6,
            t.outage_ms
        );
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
        s
    }

    pub fn plot_series(&self) -> Vec<(String, Vec<u32>)> {
        let mut v = vec![("link".to_owned(), self.link_rate_bins_1ms.clone())];
        // A line per stream is readable only for a few streams.
        if self.streams.len() > 1 && self.streams.len() <= 8 {
            v.extend(
                self.streams
                    .iter()
                    .map(|s| (format!("stream {}", s.stream), s.rate_bins_1ms.clone())),
            );
        }
        v
    }
}
