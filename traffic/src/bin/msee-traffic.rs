//! `msee-traffic`: the AF_XDP traffic generator and sink.
//!
//!   msee-traffic run  --tx-netns A --tx-dev veth0 --rx-netns B --rx-dev veth1 \
//!       --src-ip 10.0.0.1 --dst-ip 10.0.0.2 --pps 100k --count 1M --duration 10s
//!   msee-traffic run  ... --rx-netns B --rx-dev p1 --rx-dev p2 (two links)
//!   msee-traffic gen  --netns A --dev veth0 ... (send only)
//!   msee-traffic sink --netns B --dev veth1 --dev veth2 --duration 10s (receive only)
use std::{net::IpAddr, path::PathBuf, process::ExitCode, time::Duration};

use anyhow::{Context as _, Result, bail};
use clap::{Args, Parser, Subcommand};
use traffic::{
    frame::{Destinations, FrameSizes, TrafficSpec},
    generator::{GenConfig, Generator},
    iface,
    live_frames::{self, LiveConfig},
    pacing::Rate,
    plot,
    run::{self, Endpoint, GenMode, RunConfig, check_rate, link_pps_limit},
    sink::{Sink, SinkConfig, SinkIface},
    xsk::{BindMode, SinkFilter},
};

#[derive(Parser)]
#[command(
    version,
    about = "AF_XDP traffic generator and sink: throughput, loss, latency, outage"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Start a sink and a generator (each in its namespace) and report.
    Run(RunArgs),
    /// Generate only.
    Gen(GenArgs),
    /// Receive only, until --duration or --idle after traffic stops.
    Sink(SinkArgs),
}

#[derive(Args, Clone)]
struct Traffic {
    #[arg(long)]
    src_ip: IpAddr,
    #[arg(long)]
    dst_ip: IpAddr,
    /// Destination MAC; default: the neighbour entry of the next hop to
    /// --dst-ip (the gateway of the kernel's route to it out of the tx
    /// device, or --dst-ip itself when on-link), resolved if missing.
    #[arg(long, value_parser = parse_mac)]
    dst_mac: Option<[u8; 6]>,
    #[arg(long, default_value_t = 10000)]
    src_port: u16,
    #[arg(long, default_value_t = 20000)]
    dst_port: u16,
    /// Flows (= streams): flow i uses ports + i.
    #[arg(long, default_value_t = 1)]
    flows: u16,
    /// Flow i also adds i to both IP addresses.
    #[arg(long)]
    vary_addrs: bool,
    /// VLAN id; twice for QinQ (outer first).
    #[arg(long = "vlan")]
    vlans: Vec<u16>,
    /// Frame size in bytes with FCS (64..=1518).
    #[arg(long, default_value_t = 64, conflicts_with = "imix")]
    size: u16,
    /// IMIX 7:4:1 of 64/576/1500-byte frames.
    #[arg(long)]
    imix: bool,
    /// Target packets per second (k/M/G suffixes).
    #[arg(long, value_parser = parse_si, conflicts_with = "bps")]
    pps: Option<f64>,
    /// Target layer-2 bits per second (k/M/G suffixes).
    #[arg(long, value_parser = parse_si)]
    bps: Option<f64>,
    /// Packets to send at most (k/M/G suffixes). Required.
    #[arg(long, value_parser = parse_si)]
    count: Option<f64>,
    /// Longest time to send (e.g. 5s, 500ms). Required.
    #[arg(long, value_parser = parse_duration)]
    duration: Option<Duration>,
    #[arg(long, value_enum, default_value_t = GenMode::AfXdp)]
    mode: GenMode,
    #[arg(long, value_enum, default_value_t = BindMode::Auto)]
    bind: BindMode,
    /// Descriptors per ring operation (AF_XDP) or frames per live batch.
    #[arg(long, default_value_t = 64)]
    batch: u32,
    /// CPUs for generator threads (comma list); live frames: one thread each.
    #[arg(long, value_delimiter = ',')]
    gen_cpus: Vec<usize>,
    /// `gen --mode live-frames`: send to this many consecutive destinations
    /// round robin, from --dst-ip up, so a forwarder sees traffic to many
    /// hosts.
    #[arg(long, default_value_t = 1)]
    destinations: u32,
}

impl Traffic {
    fn sizes(&self) -> FrameSizes {
        if self.imix {
            FrameSizes::Imix
        } else {
            FrameSizes::Fixed(self.size)
        }
    }
    fn rate(&self) -> Rate {
        match (self.pps, self.bps) {
            (Some(p), _) => Rate::Pps(p),
            (_, Some(b)) => Rate::Bps(b),
            _ => Rate::Unlimited,
        }
    }
    /// `--destinations` is for `gen --mode live-frames` only.
    fn one_destination_unless_live(&self, live: bool) -> Result<()> {
        if self.destinations > 1 && !live {
            bail!(
                "--destinations is for `gen --mode live-frames` (the AF_XDP generator varies addresses per flow: --flows with --vary-addrs)"
            );
        }
        Ok(())
    }
    fn bounds(&self) -> Result<(u64, Duration)> {
        match (self.count, self.duration) {
            (Some(c), Some(d)) if c >= 1.0 && !d.is_zero() => Ok((c as u64, d)),
            (Some(_), Some(_)) => bail!("--count and --duration must be > 0"),
            _ => bail!("both --count and --duration are required (every run is bounded)"),
        }
    }
}

#[derive(Args)]
struct RunArgs {
    #[arg(long)]
    tx_netns: Option<String>,
    #[arg(long)]
    tx_dev: String,
    #[arg(long, default_value_t = 1)]
    tx_queues: u32,
    /// Namespace of the rx devices: once for all, or once per --rx-dev.
    #[arg(long)]
    rx_netns: Vec<String>,
    /// Sink interface; repeat for several (e.g. the primary and secondary
    /// links): one analysis, a stream moving between them stays one.
    #[arg(long, required = true)]
    rx_dev: Vec<String>,
    /// Queues per rx device.
    #[arg(long, default_value_t = 1)]
    rx_queues: u32,
    #[command(flatten)]
    traffic: Traffic,
    /// Attach the sink's XDP in generic (skb) mode.
    #[arg(long)]
    generic_xdp: bool,
    /// Fault injection: drop every k-th test frame at the sink (lossy).
    #[arg(long)]
    drop_every: Option<u64>,
    /// The sink takes every frame of its devices, not only UDP to the
    /// run's ports (the kernel then sees no ARP, BGP, BFD there).
    #[arg(long)]
    all_frames: bool,
    /// Fault injection: black-hole an rx device (both ways, carrier up)
    /// from START after the sink started for LEN: DEV:START:LEN, e.g.
    /// p1:2s:500ms. Repeatable.
    #[arg(long, value_parser = parse_blackhole)]
    blackhole: Vec<(String, Duration, Duration)>,
    #[arg(long, value_delimiter = ',')]
    sink_cpus: Vec<usize>,
    /// Write the full result as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Write an SVG of received rate over time (per rx device) here.
    #[arg(long)]
    plot: Option<PathBuf>,
    #[arg(long)]
    quiet: bool,
}

#[derive(Args)]
struct GenArgs {
    #[arg(long)]
    netns: Option<String>,
    #[arg(long)]
    dev: String,
    #[arg(long, default_value_t = 1)]
    queues: u32,
    #[command(flatten)]
    traffic: Traffic,
    #[arg(long)]
    json: Option<PathBuf>,
}

#[derive(Args)]
struct SinkArgs {
    /// Namespace of the devices: once for all, or once per --dev.
    #[arg(long)]
    netns: Vec<String>,
    /// Device to receive on; repeat for several.
    #[arg(long, required = true)]
    dev: Vec<String>,
    /// Queues per device.
    #[arg(long, default_value_t = 1)]
    queues: u32,
    /// Longest time to listen. Required.
    #[arg(long, value_parser = parse_duration)]
    duration: Duration,
    /// Stop this long after the last packet (once traffic was seen).
    #[arg(long, value_parser = parse_duration, default_value = "1s")]
    idle: Duration,
    /// Test frames are UDP to these destination ports (LO-HI or one port);
    /// everything else goes to the kernel. The default covers a generator
    /// at its default --dst-port with up to 1024 flows.
    #[arg(long, value_parser = parse_ports, default_value = "20000-21023")]
    udp_ports: (u16, u16),
    /// Take every frame (no filter).
    #[arg(long)]
    all_frames: bool,
    #[arg(long, value_enum, default_value_t = BindMode::Auto)]
    bind: BindMode,
    #[arg(long)]
    generic_xdp: bool,
    #[arg(long)]
    drop_every: Option<u64>,
    #[arg(long)]
    json: Option<PathBuf>,
    #[arg(long)]
    plot: Option<PathBuf>,
}

/// Pair each device with its namespace: none, one for all, or one each.
fn netns_per_dev(flag: &str, netns: &[String], devs: &[String]) -> Result<Vec<Option<String>>> {
    match netns.len() {
        0 => Ok(vec![None; devs.len()]),
        1 => Ok(vec![Some(netns[0].clone()); devs.len()]),
        n if n == devs.len() => Ok(netns.iter().cloned().map(Some).collect()),
        n => bail!(
            "{n} {flag} for {} devices: give one for all or one per device",
            devs.len()
        ),
    }
}

fn parse_ports(s: &str) -> Result<(u16, u16), String> {
    let (lo, hi) = s.split_once('-').unwrap_or((s, s));
    let p = |x: &str| {
        x.trim()
            .parse::<u16>()
            .map_err(|_| format!("bad port in {s:?}"))
    };
    let (lo, hi) = (p(lo)?, p(hi)?);
    if lo > hi {
        return Err(format!("empty port range {s:?}"));
    }
    Ok((lo, hi))
}

fn parse_blackhole(s: &str) -> Result<(String, Duration, Duration), String> {
    let mut it = s.splitn(3, ':');
    match (it.next(), it.next(), it.next()) {
        (Some(dev), Some(start), Some(len)) if !dev.is_empty() => {
            let start = match start.trim_end_matches(|c: char| c.is_ascii_alphabetic()) {
                "0" => Duration::ZERO,
                _ => parse_duration(start)?,
            };
            Ok((dev.to_owned(), start, parse_duration(len)?))
        }
        _ => Err(format!("expected DEV:START:LEN, got {s:?}")),
    }
}

fn parse_si(s: &str) -> Result<f64, String> {
    let (num, mul) = match s.chars().last() {
        Some('k' | 'K') => (&s[..s.len() - 1], 1e3),
        Some('m' | 'M') => (&s[..s.len() - 1], 1e6),
        Some('g' | 'G') => (&s[..s.len() - 1], 1e9),
        _ => (s, 1.0),
    };
    let v: f64 = num.parse().map_err(|_| format!("not a number: {s:?}"))?;
    if !(v.is_finite() && v > 0.0) {
        return Err(format!("must be positive: {s:?}"));
    }
    Ok(v * mul)
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    let (num, unit) = s
        .find(|c: char| c.is_ascii_alphabetic())
        .map_or((s, "s"), |i| (&s[..i], &s[i..]));
    let v: f64 = num.parse().map_err(|_| format!("bad duration {s:?}"))?;
    let secs = match unit {
        "s" => v,
        "ms" => v / 1e3,
        "us" => v / 1e6,
        "m" | "min" => v * 60.0,
        _ => return Err(format!("bad duration unit in {s:?} (s, ms, us, m)")),
    };
    if !(secs.is_finite() && secs > 0.0) {
        return Err(format!("duration must be positive: {s:?}"));
    }
    Ok(Duration::from_secs_f64(secs))
}

fn parse_mac(s: &str) -> Result<[u8; 6], String> {
    lab::parse_mac(s).map_err(|e| e.to_string())
}

fn write_json<T: serde::Serialize>(path: &Option<PathBuf>, v: &T) -> Result<()> {
    if let Some(p) = path {
        let text = serde_json::to_string_pretty(v)?;
        std::fs::write(p, text).with_context(|| format!("writing {}", p.display()))?;
        eprintln!("wrote {}", p.display());
    }
    Ok(())
}

fn write_plot(
    path: &Option<PathBuf>,
    title: &str,
    series: &[(String, Vec<u32>)],
    markers: &[(String, f64)],
) -> Result<()> {
    if let Some(p) = path {
        std::fs::write(p, plot::rate_svg(title, series, markers))
            .with_context(|| format!("writing {}", p.display()))?;
        eprintln!("wrote {}", p.display());
    }
    Ok(())
}

fn cmd_run(a: RunArgs) -> Result<()> {
    let (count, duration) = a.traffic.bounds()?;
    let t = &a.traffic;
    t.one_destination_unless_live(false)?;
    let rx_ns = netns_per_dev("--rx-netns", &a.rx_netns, &a.rx_dev)?;
    for (dev, _, _) in &a.blackhole {
        if !a.rx_dev.contains(dev) {
            bail!("--blackhole {dev}: not an --rx-dev");
        }
    }
    let cfg = RunConfig {
        tx: Endpoint {
            netns: a.tx_netns.clone(),
            ifname: a.tx_dev.clone(),
            queues: a.tx_queues,
        },
        rx: a
            .rx_dev
            .iter()
            .zip(rx_ns)
            .map(|(dev, netns)| Endpoint {
                netns,
                ifname: dev.clone(),
                queues: a.rx_queues,
            })
            .collect(),
        src_ip: t.src_ip,
        dst_ip: t.dst_ip,
        dst_mac: t.dst_mac,
        src_port: t.src_port,
        dst_port: t.dst_port,
        flows: t.flows,
        vary_addrs: t.vary_addrs,
        vlans: t.vlans.clone(),
        sizes: t.sizes(),
        rate: t.rate(),
        count,
        duration,
        mode: t.mode,
        bind: t.bind,
        generic_xdp: a.generic_xdp,
        drop_every: a.drop_every,
        batch: t.batch,
        gen_cpus: t.gen_cpus.clone(),
        sink_cpus: a.sink_cpus.clone(),
        progress: !a.quiet,
        all_frames: a.all_frames,
        rx_blackhole: !a.blackhole.is_empty(),
    };
    let report = if a.blackhole.is_empty() {
        run::run(&cfg)?
    } else {
        let h = run::start(&cfg)?;
        // Switch times, in order: (when after t0, device, on).
        let mut plan: Vec<(Duration, &str, bool)> = Vec::new();
        for (dev, start, len) in &a.blackhole {
            plan.push((*start, dev.as_str(), true));
            plan.push((*start + *len, dev.as_str(), false));
        }
        plan.sort_by_key(|p| p.0);
        for (at, dev, on) in plan {
            // Scheduled for the exact instant, a little ahead of it.
            let when = h.t0_ns() + at.as_nanos() as u64;
            let lead = traffic::fault::LEAD_NS;
            while msee_sys::monotonic_ns() + lead < when && !h.generator_finished() {
                std::thread::sleep(Duration::from_micros(200));
            }
            if h.generator_finished() {
                break;
            }
            if let Some(b) = h.blackhole(dev) {
                b.set_at(on, when)?;
            }
        }
        // Never leave a device black-holed while the sink drains.
        for (dev, _, _) in &a.blackhole {
            if let Some(b) = h.blackhole(dev) {
                b.off()?;
            }
        }
        h.join()?
    };
    print!("{}", report.summary());
    write_json(&a.json, &report)?;
    write_plot(
        &a.plot,
        &format!("received rate at {}", a.rx_dev.join(", ")),
        &report.plot_series(),
        &report.plot_markers(),
    )?;
    Ok(())
}

fn cmd_gen(a: GenArgs) -> Result<()> {
    let (count, duration) = a.traffic.bounds()?;
    let t = &a.traffic;
    t.one_destination_unless_live(t.mode == GenMode::LiveFrames)?;
    let ns = a.netns.as_deref();
    let ifindex = iface::ifindex(ns, &a.dev)?;
    let mut spec = TrafficSpec {
        src_mac: iface::mac(ns, &a.dev)?,
        dst_mac: t.dst_mac.unwrap_or([0; 6]),
        vlans: t.vlans.clone(),
        src_ip: t.src_ip,
        dst_ip: t.dst_ip,
        src_port: t.src_port,
        dst_port: t.dst_port,
        flows: t.flows,
        vary_addrs: t.vary_addrs,
        sizes: t.sizes(),
        stream_base: 0,
    };
    spec.validate()?;
    let mean = spec.sizes.mean();
    check_rate(t.rate(), link_pps_limit(ns, &a.dev, mean), mean, &a.dev)?;
    // Last check: resolving the neighbour may send a probe.
    if t.dst_mac.is_none() {
        spec.dst_mac = iface::next_hop_mac(ns, &a.dev, t.dst_ip)?;
    }
    let before = iface::counters(ns, &a.dev)?;
    let report = match t.mode {
        GenMode::AfXdp => Generator::start(GenConfig {
            netns: a.netns.clone(),
            ifindex,
            queues: (0..a.queues).collect(),
            spec,
            rate: t.rate(),
            count,
            duration,
            batch: t.batch,
            bind: t.bind,
            cpus: t.gen_cpus.clone(),
            destinations: None,
        })?
        .join()?,
        GenMode::LiveFrames => {
            let FrameSizes::Fixed(size) = spec.sizes else {
                bail!("live frames send one frame size; IMIX needs --mode af-xdp");
            };
            log::warn!(
                "live frames are XDP-redirected: a veth peer needs an XDP program (e.g. a sink) or GRO on, or they vanish"
            );
            live_frames::run(
                &LiveConfig {
                    netns: a.netns.clone(),
                    ifindex,
                    template: spec.template(0, size),
                    template_dst: spec.dst_ip,
                    stream_base: 0,
                    count,
                    duration,
                    pps: t.rate().pps(f64::from(size)),
                    cpus: if t.gen_cpus.is_empty() {
                        vec![0]
                    } else {
                        t.gen_cpus.clone()
                    },
                    batch: t.batch.clamp(1, 256),
                    destinations: Destinations::consecutive(&spec, t.destinations)?,
                },
                Default::default(),
                Default::default(),
            )?
        }
    };
    let d = iface::counters(ns, &a.dev)?.delta(&before);
    println!(
        "sent {} in {:.3} s = {:.0} pps; {} counted tx {} = {:.0} pps",
        report.sent,
        report.duration_s,
        report.pps,
        a.dev,
        d.tx_packets,
        d.tx_packets as f64 / report.duration_s.max(1e-9)
    );
    write_json(&a.json, &report)
}

/// What `msee-traffic sink` writes as JSON.
#[derive(serde::Serialize)]
struct SinkOut {
    /// CLOCK_MONOTONIC when the sink started (origin of bins and times).
    t0_ns: u64,
    streams: Vec<traffic::stats::StreamReport>,
    rx: Vec<traffic::sink::RxReport>,
}

fn cmd_sink(a: SinkArgs) -> Result<()> {
    let netns = netns_per_dev("--netns", &a.netns, &a.dev)?;
    let ifaces: Vec<SinkIface> = a
        .dev
        .iter()
        .zip(netns)
        .map(|(dev, netns)| {
            // Name the missing device before anything is attached.
            iface::ifindex(netns.as_deref(), dev)?;
            Ok(SinkIface {
                netns,
                ifname: dev.clone(),
                queues: (0..a.queues).collect(),
            })
        })
        .collect::<Result<_>>()?;
    let filter = if a.all_frames {
        SinkFilter::All
    } else {
        SinkFilter::UdpPorts {
            lo: a.udp_ports.0,
            hi: a.udp_ports.1,
        }
    };
    let mut cfg = SinkConfig::new(ifaces, filter, a.duration);
    cfg.bind = a.bind;
    cfg.generic_xdp = a.generic_xdp;
    cfg.drop_every = a.drop_every;
    let sink = Sink::start(cfg)?;
    let until = std::time::Instant::now() + a.duration;
    while std::time::Instant::now() < until {
        std::thread::sleep(Duration::from_millis(200));
        let last = sink.last_rx_ns();
        if last != 0 && msee_sys::monotonic_ns().saturating_sub(last) > a.idle.as_nanos() as u64 {
            break;
        }
        eprint!("\rreceived {:>12}   ", sink.received());
    }
    eprintln!();
    let res = sink.join()?;
    let names = res.rx_names();
    let reports: Vec<_> = res
        .streams
        .values()
        .map(|s| s.report(None, None, &names))
        .collect();
    for r in &reports {
        let on: Vec<String> = r
            .per_rx
            .iter()
            .map(|x| format!("{} {}", x.ifname, x.received))
            .collect();
        println!(
            "stream {}: received {} lost {} dup {} reordered {} longest gap {:.3} ms (on {})",
            r.stream,
            r.received,
            r.lost,
            r.duplicated,
            r.reordered,
            r.longest_gap_ns as f64 / 1e6,
            on.join(", ")
        );
    }
    for r in &res.rx {
        println!(
            "{}: received {}, passed to the kernel {}",
            r.ifname, r.received, r.xsk.passed
        );
    }
    let mut series: Vec<_> = res
        .rx
        .iter()
        .map(|r| (format!("rx {}", r.ifname), r.rate_bins_1ms.clone()))
        .collect();
    if reports.len() <= 8 {
        series.extend(
            reports
                .iter()
                .map(|r| (format!("stream {}", r.stream), r.rate_bins_1ms.clone())),
        );
    }
    write_plot(
        &a.plot,
        &format!("received rate at {}", a.dev.join(", ")),
        &series,
        &[],
    )?;
    write_json(
        &a.json,
        &SinkOut {
            t0_ns: res.t0_ns,
            streams: reports,
            rx: res.rx,
        },
    )
}

/// Log lines (zero-copy fallback, incomplete drains) on stderr; `MSEE_LOG=debug`
/// shows more.
struct StderrLog;

impl log::Log for StderrLog {
    fn enabled(&self, m: &log::Metadata) -> bool {
        m.level() <= log::max_level()
    }
    fn log(&self, r: &log::Record) {
        if self.enabled(r.metadata()) {
            eprintln!(
                "msee-traffic: {}: {}",
                r.level().as_str().to_lowercase(),
                r.args()
            );
        }
    }
    fn flush(&self) {}
}

static LOGGER: StderrLog = StderrLog;

fn main() -> ExitCode {
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(match std::env::var("MSEE_LOG").as_deref() {
        Ok("debug") => log::LevelFilter::Debug,
        Ok("warn") => log::LevelFilter::Warn,
        _ => log::LevelFilter::Info,
    });
    let cli = Cli::parse();
    let r = match cli.cmd {
        Cmd::Run(a) => cmd_run(a),
        Cmd::Gen(a) => cmd_gen(a),
        Cmd::Sink(a) => cmd_sink(a),
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("msee-traffic: {e:#}");
            ExitCode::FAILURE
        }
    }
}
