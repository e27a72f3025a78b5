//! The AF_XDP packet engine over a veth pair between two namespaces made
//! here (and removed on drop, also on failure): generator to sink without
//! loss, exact loss from the `lossy` program, pacing accuracy, latency and
//! the JSON report, the live-frames generator, both generators spread over
//! a list of destinations.
use std::{net::IpAddr, sync::Mutex, time::Duration};

use e2e_tests::{require_root, unique_prefix, vlan_lab::Capture};
use lab::{ip, ip_ns};
use msee_sys::netns;
use traffic::{
    frame::{Destinations, FrameSizes, TrafficSpec, fold, parse, sum_words},
    generator::{GenConfig, Generator},
    live_frames::{self, LiveConfig},
    pacing::Rate,
    run::{Endpoint, GenMode, RunConfig, RunReport, run},
    xsk::BindMode,
};

/// Two cores are shared: one traffic test at a time keeps timing honest.
static SERIAL: Mutex<()> = Mutex::new(());

/// `<p>a` and `<p>b` joined by veth `ta` <-> `tb`.
struct VethPair {
    a: String,
    b: String,
}

impl VethPair {
    fn new(tag: &str) -> Self {
        Self::make(tag, true, 1)
    }

    fn with_queues(tag: &str, queues: u32) -> Self {
        Self::make(tag, true, queues)
    }

    /// Without IPv6 the kernel sends nothing on its own (no ND, MLD, RS).
    fn v4_only(tag: &str) -> Self {
        Self::make(tag, false, 1)
    }

    fn make(tag: &str, ipv6: bool, queues: u32) -> Self {
        let p = unique_prefix(tag);
        let pair = Self {
            a: format!("{p}a"),
            b: format!("{p}b"),
        };
        for ns in [&pair.a, &pair.b] {
            if netns::exists(ns) {
                ip(&["netns", "del", ns]).unwrap();
            }
            ip(&["netns", "add", ns]).unwrap();
        }
        let q = queues.to_string();
        ip(&[
            "link",
            "add",
            "ta",
            "netns",
            &pair.a,
            "numtxqueues",
            &q,
            "numrxqueues",
            &q,
            "type",
            "veth",
            "peer",
            "name",
            "tb",
            "netns",
            &pair.b,
            "numtxqueues",
            &q,
            "numrxqueues",
            &q,
        ])
        .unwrap();
        for (ns, dev, v4, v6) in [
            (&pair.a, "ta", "10.77.0.1/24", "fd77::1/64"),
            (&pair.b, "tb", "10.77.0.2/24", "fd77::2/64"),
        ] {
            ip_ns(ns, &["addr", "add", v4, "dev", dev]).unwrap();
            if ipv6 {
                ip_ns(ns, &["addr", "add", v6, "dev", dev, "nodad"]).unwrap();
            } else {
                let key = format!("net.ipv6.conf.{dev}.disable_ipv6=1");
                lab::run("ip", &["netns", "exec", ns, "sysctl", "-q", "-w", &key]).unwrap();
            }
            ip_ns(ns, &["link", "set", dev, "up"]).unwrap();
        }
        pair
    }
}

impl Drop for VethPair {
    fn drop(&mut self) {
        // Deleting a namespace deletes its veth end (and with it the pair).
        for ns in [&self.a, &self.b] {
            if netns::exists(ns) {
                let _ = ip(&["netns", "del", ns]);
            }
        }
    }
}

fn config(pair: &VethPair, count: u64, pps: f64) -> RunConfig {
    RunConfig {
        tx: Endpoint {
            netns: Some(pair.a.clone()),
            ifname: "ta".into(),
            queues: 1,
        },
        rx: vec![Endpoint {
            netns: Some(pair.b.clone()),
            ifname: "tb".into(),
            queues: 1,
        }],
        src_ip: "10.77.0.1".parse().unwrap(),
        dst_ip: "10.77.0.2".parse().unwrap(),
        dst_mac: None,
        src_port: 10000,
        dst_port: 20000,
        flows: 1,
        vary_addrs: false,
        vlans: vec![],
        sizes: FrameSizes::Fixed(64),
        rate: Rate::Pps(pps),
        count,
        duration: Duration::from_secs(10),
        mode: GenMode::AfXdp,
        bind: BindMode::Auto,
        generic_xdp: false,
        drop_every: None,
        batch: 64,
        gen_cpus: vec![],
        sink_cpus: vec![],
        progress: false,
        all_frames: false,
        rx_blackhole: false,
    }
}

fn assert_clean(r: &RunReport, n: u64) {
    assert_eq!(r.generator.sent, n, "{}", r.summary());
    assert_eq!(r.totals.received, n, "{}", r.summary());
    assert_eq!(r.totals.lost, 0, "{}", r.summary());
    assert_eq!(r.totals.reordered, 0, "{}", r.summary());
    assert_eq!(r.totals.duplicated, 0, "{}", r.summary());
    // The kernel agrees: every frame left ta and arrived at tb.
    assert!(r.tx_if.tx_packets >= n, "tx counters {:?}", r.tx_if);
    assert!(r.rx_if.rx_packets >= n, "rx counters {:?}", r.rx_if);
    for s in &r.streams {
        assert_eq!(Some(s.received), s.sent, "stream {}", s.stream);
        assert_eq!(s.outage_ms, Some(0.0));
    }
}

#[test]
fn engine_generator_to_sink_without_loss() {
    if !require_root("engine_generator_to_sink_without_loss") {
        return;
    }
    let _g = SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let pair = VethPair::new("eg1");
    let mut cfg = config(&pair, 40_000, 40_000.0);
    cfg.flows = 4;
    let r = run(&cfg).unwrap();
    assert_clean(&r, 40_000);
    assert_eq!(r.streams.len(), 4);
    assert!(r.streams.iter().all(|s| s.received == 10_000));
}

#[test]
fn engine_ipv6_qinq_imix_without_loss() {
    if !require_root("engine_ipv6_qinq_imix_without_loss") {
        return;
    }
    let _g = SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let pair = VethPair::new("eg2");
    let mut cfg = config(&pair, 12_000, 20_000.0);
    cfg.src_ip = "fd77::1".parse::<IpAddr>().unwrap();
    cfg.dst_ip = "fd77::2".parse::<IpAddr>().unwrap();
    cfg.vlans = vec![100, 200];
    cfg.sizes = FrameSizes::Imix;
    cfg.flows = 2;
    let r = run(&cfg).unwrap();
    assert_clean(&r, 12_000);
    // IMIX 7:4:1 of 64/576/1500 (the 64 raised to this stack's minimum, 92).
    let expected_bytes = 1000 * (7 * 92 + 4 * 576 + 1500);
    assert_eq!(r.generator.bytes, expected_bytes);
    assert_eq!(
        r.streams.iter().map(|s| s.bytes).sum::<u64>(),
        expected_bytes
    );
}

#[test]
fn engine_lossy_drops_exactly_every_kth() {
    if !require_root("engine_lossy_drops_exactly_every_kth") {
        return;
    }
    let _g = SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let pair = VethPair::new("eg3");
    let k = 50;
    let n = 10_000;
    let mut cfg = config(&pair, n, 10_000.0);
    cfg.drop_every = Some(k);
    let r = run(&cfg).unwrap();
    assert_eq!(r.generator.sent, n);
    assert_eq!(r.lossy, Some((n, n / k)), "{}", r.summary());
    assert_eq!(r.totals.lost, n / k, "{}", r.summary());
    assert_eq!(r.totals.received, n - n / k);
    assert_eq!(r.totals.reordered, 0);
    let s = &r.streams[0];
    // One flow: the k-th frame is sequence k-1, then every k after it. The
    // last one (sequence n-1) has no successor, so it is loss without an event.
    let gaps: Vec<(u64, u64)> = s
        .loss_events
        .iter()
        .map(|e| (e.first_seq, e.count))
        .collect();
    let expected: Vec<(u64, u64)> = (1..n / k).map(|i| (i * k - 1, 1)).collect();
    assert_eq!(gaps, expected);
    // Outage from loss: n/k packets at 10 kpps.
    let outage = s.outage_ms.unwrap();
    assert!((outage - (n / k) as f64 / 10.0).abs() < 1e-6, "{outage}");
    // The longest gap spans at least the dropped packet's slot (0.1 ms).
    assert!(s.longest_gap_ns >= 100_000, "{}", s.longest_gap_ns);
}

#[test]
fn engine_pacing_100kpps_for_5s() {
    if !require_root("engine_pacing_100kpps_for_5s") {
        return;
    }
    let _g = SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let pair = VethPair::new("eg4");
    let mut cfg = config(&pair, 10_000_000, 100_000.0);
    cfg.duration = Duration::from_secs(5);
    let r = run(&cfg).unwrap();
    let target = 500_000.0;
    let sent = r.generator.sent as f64;
    assert!(
        (sent - target).abs() / target < 0.01,
        "sent {sent}: {}",
        r.summary()
    );
    // Read from the interface, not from the generator.
    let on_wire = r.tx_if.tx_packets as f64;
    assert!(
        (on_wire - target).abs() / target < 0.01,
        "ta counted {on_wire}"
    );
    // The rate held over time: the middle seconds of 1 ms bins average 100/ms.
    let bins = &r.link_rate_bins_1ms;
    assert!(bins.len() >= 4_900, "{} bins", bins.len());
    let mid: u64 = bins[1000..4000].iter().map(|&b| u64::from(b)).sum();
    assert!((mid as f64 - 300_000.0).abs() / 300_000.0 < 0.02, "{mid}");
}

#[test]
fn engine_latency_and_json_report() {
    if !require_root("engine_latency_and_json_report") {
        return;
    }
    let _g = SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let pair = VethPair::new("eg5");
    let r = run(&config(&pair, 5_000, 10_000.0)).unwrap();
    assert_clean(&r, 5_000);
    let lat = r.streams[0].latency.as_ref().expect("latency recorded");
    assert_eq!(lat.count, 5_000);
    assert!(lat.min_ns > 0, "{lat:?}");
    assert!(lat.max_ns < 1_000_000_000, "{lat:?}");
    assert!(lat.min_ns <= lat.p50_ns && lat.p50_ns <= lat.p99_ns && lat.p99_ns <= lat.max_ns);
    let text = serde_json::to_string(&r).unwrap();
    let back: RunReport = serde_json::from_str(&text).unwrap();
    assert_eq!(back.totals, r.totals);
    assert_eq!(back.streams, r.streams);
    assert_eq!(back.generator.sent, r.generator.sent);
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["streams"][0]["latency"]["count"], 5_000);
}

#[test]
fn engine_live_frames_stamps_sequences() {
    if !require_root("engine_live_frames_stamps_sequences") {
        return;
    }
    let _g = SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let pair = VethPair::new("eg6");
    let mut cfg = config(&pair, 20_000, 20_000.0);
    cfg.mode = GenMode::LiveFrames;
    cfg.gen_cpus = vec![0];
    let r = run(&cfg).unwrap();
    assert_eq!(r.generator.sent, 20_000, "{}", r.summary());
    // The program's per-CPU sequence counted every frame it stamped.
    assert_eq!(r.generator.per_stream, vec![(0, 20_000)]);
    let s = &r.streams[0];
    assert_eq!(s.sent, Some(20_000));
    // Paced at 20 kpps the sink keeps up: the stamped sequences arrive whole.
    assert_eq!(s.received, 20_000, "{}", r.summary());
    assert_eq!((s.lost, s.duplicated, s.reordered), (0, 0, 0));
    assert!(s.latency.as_ref().unwrap().min_ns > 0);
}

#[test]
fn engine_rejects_rate_above_link_speed() {
    if !require_root("engine_rejects_rate_above_link_speed") {
        return;
    }
    let pair = VethPair::v4_only("eg7");
    let before = lab::ip_ns(&pair.a, &["-s", "link", "show", "ta"]).unwrap();
    // veth reports 10 Gbit/s: 14.88 Mpps of 64-byte frames at most.
    let cfg = config(&pair, 1_000, 20e6);
    let err = run(&cfg).unwrap_err().to_string();
    assert!(err.contains("above the link speed of ta"), "{err}");
    let mut cfg = config(&pair, 1_000, 1_000.0);
    cfg.rx[0].ifname = "nosuch".into();
    let err = run(&cfg).unwrap_err().to_string();
    assert!(err.contains("interface nosuch not found"), "{err}");
    // Nothing was sent by either refused run.
    let after = lab::ip_ns(&pair.a, &["-s", "link", "show", "ta"]).unwrap();
    let tx = |s: &str| {
        s.lines()
            .skip_while(|l| !l.contains("TX:"))
            .nth(1)
            .unwrap_or("")
            .split_whitespace()
            .nth(1)
            .unwrap_or("")
            .to_owned()
    };
    assert_eq!(tx(&before), tx(&after));
}

#[test]
fn engine_two_queues_uneven_flows_with_loss() {
    if !require_root("engine_two_queues_uneven_flows_with_loss") {
        return;
    }
    let _g = SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let pair = VethPair::with_queues("eg8", 2);
    let mut cfg = config(&pair, 30_000, 30_000.0);
    cfg.tx.queues = 2;
    cfg.rx[0].queues = 2;
    // Queue 0 carries flows 0 and 2, queue 1 flow 1 alone.
    cfg.flows = 3;
    cfg.drop_every = Some(100);
    let r = run(&cfg).unwrap();
    assert_eq!(r.generator.sent, 30_000);
    assert_eq!(r.generator.threads.len(), 2);
    // One shared counter in `lossy`: exact across both queues' CPUs.
    assert_eq!(r.lossy, Some((30_000, 300)), "{}", r.summary());
    assert_eq!(r.totals.lost, 300);
    assert_eq!(r.totals.received, 29_700);
    let sent: Vec<_> = r.streams.iter().map(|s| s.sent.unwrap()).collect();
    assert_eq!(sent, vec![7_500, 15_000, 7_500]);
    for s in &r.streams {
        // Each stream's outage is its loss at its own offered rate.
        let offered = if s.stream == 1 { 15_000.0 } else { 7_500.0 };
        assert_eq!(s.offered_pps, Some(offered));
        let expect = s.lost as f64 / offered * 1e3;
        assert!((s.outage_ms.unwrap() - expect).abs() < 1e-9);
        assert_eq!(s.received + s.lost, s.sent.unwrap());
        assert_eq!((s.duplicated, s.reordered), (0, 0));
    }
}

/// Both generators spread their frames over a list of destinations (random
/// IPv4 and IPv6 addresses, not one subnet's): every destination arrives at
/// the other end, each frame with valid checksums.
#[test]
fn engine_generators_send_to_every_destination() {
    if !require_root("engine_generators_send_to_every_destination") {
        return;
    }
    let _g = SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let pair = VethPair::new("eg9");
    // Live frames are XDP-redirected into `ta`: `tb` needs NAPI to get them.
    lab::gro_on_tx_off(&pair.b, "tb").unwrap();
    let tx_ifindex = traffic::iface::ifindex(Some(&pair.a), "ta").unwrap();
    let rx_ifindex = traffic::iface::ifindex(Some(&pair.b), "tb").unwrap();
    let (src_mac, dst_mac) = (
        lab::mac_of(&pair.a, "ta").unwrap(),
        lab::mac_of(&pair.b, "tb").unwrap(),
    );
    let mut rng = testkit::Rng::new(0xde57);
    const N: usize = 64;
    for v6 in [false, true] {
        let (src_ip, dst_ip): (IpAddr, IpAddr) = if v6 {
            ("fd77::1".parse().unwrap(), "fd77::2".parse().unwrap())
        } else {
            ("10.77.0.1".parse().unwrap(), "10.77.0.2".parse().unwrap())
        };
        let spec = TrafficSpec {
            src_mac,
            dst_mac,
            vlans: vec![],
            src_ip,
            dst_ip,
            src_port: 10000,
            dst_port: 20000,
            flows: 1,
            vary_addrs: false,
            sizes: FrameSizes::Fixed(if v6 { 90 } else { 64 }),
            stream_base: 0,
        };
        let addrs: Vec<IpAddr> = (0..N)
            .map(|_| {
                if v6 {
                    IpAddr::V6(
                        (u128::from(rng.next_u64()) << 64 | u128::from(rng.next_u64())).into(),
                    )
                } else {
                    IpAddr::V4(rng.u32().into())
                }
            })
            .collect();
        let d = Destinations::new(&spec, addrs.clone()).unwrap();
        for mode in [GenMode::AfXdp, GenMode::LiveFrames] {
            let cap = Capture::open(&pair.b, rx_ifindex).unwrap();
            let count = 4 * N as u64;
            let duration = Duration::from_secs(5);
            match mode {
                GenMode::AfXdp => {
                    Generator::start(GenConfig {
                        netns: Some(pair.a.clone()),
                        ifindex: tx_ifindex,
                        queues: vec![0],
                        spec: spec.clone(),
                        rate: Rate::Pps(20_000.0),
                        count,
                        duration,
                        batch: 16,
                        bind: BindMode::Auto,
                        cpus: vec![],
                        destinations: Some(d.clone()),
                    })
                    .unwrap()
                    .join()
                    .unwrap();
                }
                GenMode::LiveFrames => {
                    let FrameSizes::Fixed(size) = spec.sizes else {
                        unreachable!()
                    };
                    live_frames::run(
                        &LiveConfig {
                            netns: Some(pair.a.clone()),
                            ifindex: tx_ifindex,
                            template: spec.template(0, size),
                            template_dst: spec.dst_ip,
                            stream_base: 0,
                            count,
                            duration,
                            pps: Some(20_000.0),
                            cpus: vec![0],
                            batch: 16,
                            destinations: Some(d.clone()),
                        },
                        Default::default(),
                        Default::default(),
                    )
                    .unwrap();
                }
            }
            std::thread::sleep(Duration::from_millis(200));
            let mut seen = std::collections::HashMap::new();
            for (_, f) in cap.drain() {
                if parse(&f).is_none() {
                    continue; // the kernel's own (ND, MLD)
                }
                let (a, ok) = if v6 {
                    let a: [u8; 16] = f[38..54].try_into().unwrap();
                    (IpAddr::from(a), udp_ok(&f, 14, true))
                } else {
                    let a: [u8; 4] = f[30..34].try_into().unwrap();
                    let ip_ok = fold(sum_words(&f[14..34], 0)) == 0xffff;
                    (IpAddr::from(a), ip_ok && udp_ok(&f, 14, false))
                };
                assert!(ok, "{mode:?} v6={v6}: bad checksum to {a}");
                *seen.entry(a).or_insert(0u64) += 1;
            }
            let want: std::collections::HashSet<_> = addrs.iter().copied().collect();
            let got: std::collections::HashSet<_> = seen.keys().copied().collect();
            assert_eq!(got, want, "{mode:?} v6={v6}");
            // Round robin: each destination its share.
            assert!(seen.values().all(|&c| c == 4), "{mode:?} v6={v6}: {seen:?}");
        }
    }
}

/// The UDP checksum of `frame` (L3 at `l3`) verifies.
fn udp_ok(frame: &[u8], l3: usize, v6: bool) -> bool {
    let (src, dst, udp) = if v6 {
        (&frame[l3 + 8..l3 + 24], &frame[l3 + 24..l3 + 40], l3 + 40)
    } else {
        (&frame[l3 + 12..l3 + 16], &frame[l3 + 16..l3 + 20], l3 + 20)
    };
    let len = usize::from(u16::from_be_bytes([frame[udp + 4], frame[udp + 5]]));
    let seg = &frame[udp..udp + len];
    let mut sum = sum_words(src, 0);
    sum = sum_words(dst, sum);
    sum += 17 + seg.len() as u32;
    fold(sum_words(seg, sum)) == 0xffff
}
