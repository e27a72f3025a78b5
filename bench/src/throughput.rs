//! The rig of the throughput benchmarks on real interfaces: forwarded
//! packets per second through the lab (onprem primary -> msee -> azure), and
//! the packet engine's generators on a plain veth pair. Rates are read from
//! the kernel's interface counters (`ip -s link`) over a window that starts
//! after a warm-up, never from the generator's own count.
//!
//! The receiving end of every path runs `lossy` with k = 1 (drop every UDP
//! frame in XDP, pass the rest), so every frame that arrives is counted in
//! the interface's rx counters and nothing reaches a socket.
use std::{
    net::{IpAddr, Ipv4Addr},
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, anyhow};
use aya::programs::XdpMode;
use lab::{IF_AZURE, IF_AZURE_PEER, IF_PRIMARY, Lab, Topology, ip, ip_ns};
use msee_sys::netns;
use traffic::{
    frame::{Destinations, FrameSizes, TrafficSpec},
    generator::{GenConfig, GenReport, Generator},
    iface::{self, Counters},
    live_frames::{self, LiveConfig},
    pacing::Rate,
    xsk::{BindMode, XskProgram},
};

/// Every sample: this much warm-up, then the window its rates are read over.
pub const WARMUP: Duration = Duration::from_millis(400);
pub const WINDOW: Duration = Duration::from_secs(1);
/// The generator's thread is pinned here; forwarding runs in the softirqs
/// its transmissions raise, on the same CPU.
pub const GEN_CPU: usize = 0;

/// `lossy` (k = 1) attached natively to `ifname` in `ns`: the drop sink.
fn drop_sink(ns: &str, ifname: &str) -> Result<XskProgram> {
    let ifindex = iface::ifindex(Some(ns), ifname)?;
    netns::within(ns, || XskProgram::attach(ifindex, XdpMode::Driver, Some(1)))
        .map_err(anyhow::Error::from)
        .and_then(|attached| attached)
        .with_context(|| format!("attaching the drop sink to {ifname} in {ns}"))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GenKind {
    /// `txgen` through BPF_PROG_TEST_RUN with live frames.
    LiveFrames,
    /// The userspace AF_XDP generator, unpaced.
    AfXdp,
}

impl GenKind {
    pub fn name(self) -> &'static str {
        match self {
            GenKind::LiveFrames => "live_frames",
            GenKind::AfXdp => "af_xdp",
        }
    }
}

/// Where a measurement sends from and counts at.
#[derive(Clone, Debug)]
pub struct Path {
    pub tx_ns: String,
    pub tx_if: String,
    /// Where forwarded frames are counted (rx counters).
    pub rx_ns: String,
    pub rx_if: String,
    pub spec: TrafficSpec,
}

/// One sample of one path.
#[derive(Clone, Debug, Default)]
pub struct Sample {
    /// rx packets at the counting interface per second of the window.
    pub rx_pps: f64,
    /// tx packets of the sending interface per second of the window.
    pub tx_pps: f64,
    /// tx packets of the sending interface over the whole run per CPU
    /// second of the generator thread.
    pub tx_per_cpu_s: f64,
    pub window_s: f64,
    pub generator: GenReport,
}

/// Send 64-byte frames as fast as `kind` can on one thread pinned to each
/// of `cpus` for `warmup + window` (plus a margin), and read the counters
/// at the window's two ends. With more than one of `destinations`, frame n
/// goes to destination n % len (both generators), else every frame to the
/// path's own. The AF_XDP generator is measured on one CPU.
pub fn measure(
    path: &Path,
    kind: GenKind,
    destinations: &[IpAddr],
    cpus: &[usize],
    warmup: Duration,
    window: Duration,
) -> Result<Sample> {
    measure_tagged(path, kind, destinations, &[], cpus, warmup, window)
}

/// [`measure`], each of `destinations` in the outer VLAN of the same index
/// in `vlans` (none: the path's own tags), for traffic spread over many
/// attachments of one port.
pub fn measure_tagged(
    path: &Path,
    kind: GenKind,
    destinations: &[IpAddr],
    vlans: &[u16],
    cpus: &[usize],
    warmup: Duration,
    window: Duration,
) -> Result<Sample> {
    let tx_ns = Some(path.tx_ns.as_str());
    let rx_ns = Some(path.rx_ns.as_str());
    let tx_ifindex = iface::ifindex(tx_ns, &path.tx_if)?;
    let FrameSizes::Fixed(size) = path.spec.sizes else {
        return Err(anyhow!("the benchmark sends one frame size"));
    };
    // Bounded either way: the duration ends the generator if `stop` is missed.
    let duration = warmup + window + Duration::from_millis(700);
    let count = u64::MAX / 4;
    let run_start = iface::counters(tx_ns, &path.tx_if)?;
    let stop = Arc::new(AtomicBool::new(false));
    let destinations = match destinations {
        [] | [_] => None,
        many if vlans.is_empty() => Some(Destinations::new(&path.spec, many.to_vec())?),
        many => Some(
            Destinations::new(&path.spec, many.to_vec())?.with_vlans(&path.spec, vlans.to_vec())?,
        ),
    };
    let finish: Box<dyn FnOnce() -> Result<GenReport>> = match kind {
        GenKind::LiveFrames => {
            let cfg = LiveConfig {
                netns: Some(path.tx_ns.clone()),
                ifindex: tx_ifindex,
                // Tagged frames need a few bytes more than 64 for the
                // test payload.
                template: path.spec.template(0, size.max(path.spec.min_frame())),
                template_dst: path.spec.dst_ip,
                stream_base: 0,
                count,
                duration,
                pps: None,
                cpus: cpus.to_vec(),
                batch: 64,
                destinations,
            };
            let stop2 = stop.clone();
            let h = std::thread::spawn(move || {
                live_frames::run(&cfg, Arc::new(AtomicU64::new(0)), stop2)
            });
            let stop = stop.clone();
            Box::new(move || {
                stop.store(true, Ordering::Relaxed);
                h.join()
                    .map_err(|_| anyhow!("live-frames thread panicked"))?
            })
        }
        GenKind::AfXdp if cpus.len() != 1 => {
            return Err(anyhow!(
                "the AF_XDP generator is measured on one CPU ({} asked)",
                cpus.len()
            ));
        }
        GenKind::AfXdp => {
            let g = Generator::start(GenConfig {
                netns: Some(path.tx_ns.clone()),
                ifindex: tx_ifindex,
                queues: vec![0],
                spec: path.spec.clone(),
                rate: Rate::Unlimited,
                count,
                duration,
                batch: 64,
                bind: BindMode::Auto,
                cpus: cpus.to_vec(),
                destinations,
            })
            .context("starting the AF_XDP generator")?;
            Box::new(move || {
                g.stop();
                g.join()
            })
        }
    };
    let read = || -> Result<(Counters, Counters, Instant)> {
        let rx = iface::counters(rx_ns, &path.rx_if)?;
        let tx = iface::counters(tx_ns, &path.tx_if)?;
        Ok((rx, tx, Instant::now()))
    };
    std::thread::sleep(warmup);
    let first = read();
    std::thread::sleep(window);
    let second = read();
    let generator = finish()?;
    let run_end = iface::counters(tx_ns, &path.tx_if)?;
    let ((rx0, tx0, t0), (rx1, tx1, t1)) = (first?, second?);
    let secs = (t1 - t0).as_secs_f64();
    let run_tx = run_end.delta(&run_start).tx_packets;
    Ok(Sample {
        rx_pps: rx1.delta(&rx0).rx_packets as f64 / secs,
        tx_pps: tx1.delta(&tx0).tx_packets as f64 / secs,
        tx_per_cpu_s: run_tx as f64 / generator.cpu_s.max(1e-9),
        window_s: secs,
        generator,
    })
}

/// 64-byte IPv4/UDP frames from `src_mac` to `dst_mac`.
pub fn spec64(src_mac: [u8; 6], dst_mac: [u8; 6], src: Ipv4Addr, dst: Ipv4Addr) -> TrafficSpec {
    TrafficSpec {
        src_mac,
        dst_mac,
        vlans: vec![],
        src_ip: IpAddr::V4(src),
        dst_ip: IpAddr::V4(dst),
        src_port: 10000,
        dst_port: 20000,
        flows: 1,
        vary_addrs: false,
        sizes: FrameSizes::Fixed(64),
        stream_base: 0,
    }
}

/// A veth pair `ga` (in `<p>a`) <-> `gb` (in `<p>b`), one queue each, the
/// drop sink on `gb`. Removed on drop.
pub struct VethBench {
    // Detached before the namespaces go.
    sink: Option<XskProgram>,
    pub a: String,
    pub b: String,
    pub path: Path,
}

impl VethBench {
    pub fn up(prefix: &str) -> Result<Self> {
        let (a, b) = (format!("{prefix}a"), format!("{prefix}b"));
        for ns in [&a, &b] {
            if netns::exists(ns) {
                anyhow::bail!("namespace {ns} already exists");
            }
        }
        // From here on, drop removes whatever was made.
        let mut me = Self {
            sink: None,
            a: a.clone(),
            b: b.clone(),
            path: Path {
                tx_ns: a.clone(),
                tx_if: "ga".into(),
                rx_ns: b.clone(),
                rx_if: "gb".into(),
                spec: spec64([0; 6], [0; 6], Ipv4Addr::UNSPECIFIED, Ipv4Addr::UNSPECIFIED),
            },
        };
        for ns in [&a, &b] {
            ip(&["netns", "add", ns])?;
        }
        ip(&[
            "link", "add", "ga", "netns", &a, "type", "veth", "peer", "name", "gb", "netns", &b,
        ])?;
        for (ns, dev, addr) in [(&a, "ga", "10.78.0.1/24"), (&b, "gb", "10.78.0.2/24")] {
            ip_ns(ns, &["addr", "add", addr, "dev", dev])?;
            ip_ns(ns, &["link", "set", dev, "up"])?;
        }
        me.sink = Some(drop_sink(&b, "gb")?);
        me.path.spec = spec64(
            iface::mac(Some(&a), "ga")?,
            iface::mac(Some(&b), "gb")?,
            Ipv4Addr::new(10, 78, 0, 1),
            Ipv4Addr::new(10, 78, 0, 2),
        );
        Ok(me)
    }
}

impl Drop for VethBench {
    fn drop(&mut self) {
        self.sink.take();
        for ns in [&self.a, &self.b] {
            if netns::exists(ns) {
                let _ = ip(&["netns", "del", ns]);
            }
        }
    }
}

/// The lab, with the drop sink on the azure side of the msee<->azure link.
/// The forwarding program on msee's primary port is the caller's (attached
/// and detached per sample).
pub struct LabBench {
    // Dropped first: the sink detaches before the lab goes.
    sink: Option<XskProgram>,
    pub primary_ifindex: u32,
    pub azure_ifindex: u32,
    pub primary_mac: [u8; 6],
    pub azure_mac: [u8; 6],
    pub onprem_mac: [u8; 6],
    pub azure_peer_mac: [u8; 6],
    pub path: Path,
    pub lab: Lab,
}

impl LabBench {
    /// Bring the lab up, `queues` queues on every veth; frames go from
    /// onprem's primary to msee's primary MAC, `src` -> `dst`, and are
    /// counted on azure's side of the azure link. Live frames sent from
    /// CPU k arrive on msee's receive queue k (the veth picks the queue by
    /// the sending CPU), so with 2 queues a generator on 2 CPUs has msee
    /// forward on both.
    pub fn up(prefix: &str, dst: Ipv4Addr, queues: u16) -> Result<Self> {
        let topo = Topology::new(prefix)?.with_queues(queues)?;
        let lab = Lab::up(topo.clone())?;
        let (onprem, msee, azure) = (topo.ns_onprem(), topo.ns_msee(), topo.ns_azure());
        let primary_mac = lab::mac_of(&msee, IF_PRIMARY)?;
        let onprem_mac = lab::mac_of(&onprem, IF_PRIMARY)?;
        let mut me = Self {
            sink: None,
            primary_ifindex: lab::ifindex_of(&msee, IF_PRIMARY)?,
            azure_ifindex: lab::ifindex_of(&msee, IF_AZURE)?,
            primary_mac,
            azure_mac: lab::mac_of(&msee, IF_AZURE)?,
            onprem_mac,
            azure_peer_mac: lab::mac_of(&azure, IF_AZURE_PEER)?,
            path: Path {
                tx_ns: onprem,
                tx_if: IF_PRIMARY.into(),
                rx_ns: azure.clone(),
                rx_if: IF_AZURE_PEER.into(),
                spec: spec64(onprem_mac, primary_mac, topo.primary.customer, dst),
            },
            lab,
        };
        me.sink = Some(drop_sink(&azure, IF_AZURE_PEER)?);
        Ok(me)
    }

    pub fn ns_msee(&self) -> String {
        self.lab.topo.ns_msee()
    }
}

impl Drop for LabBench {
    fn drop(&mut self) {
        self.sink.take();
    }
}
