//! Packet fixtures for the engine's kernel programs through
//! BPF_PROG_TEST_RUN (no live frames: nothing is sent): `txgen` stamps,
//! re-checksums and spreads frames over its list of destinations, `xsk`
//! passes frames of queues without a socket and, with its filter on, takes
//! only UDP to the test ports (ARP, TCP/179, UDP/3784 go to the kernel) and
//! stamps the receive time in the metadata; `lossy`
//! drops exactly every k-th UDP frame and never ARP, and drops everything
//! inside a black-hole window; `blackhole_tc` likewise; `testfwd` sends
//! each flow out of its slot with that slot's MACs; `fibfwd` forwards by
//! the kernel's FIB of a namespace made here, and passes what it cannot.
use std::net::IpAddr;

use aya::{
    Ebpf, EbpfLoader,
    maps::{Array, DevMap, PerCpuArray},
    programs::{SchedClassifier, TestRun, TestRunOptions, Xdp},
};
use e2e_tests::require_root;
use msee_sys::monotonic_ns;
use traffic::{
    frame::{Destinations, FrameSizes, Template, TrafficSpec, fold, parse, sum_words},
    pin_to_cpu,
};
use traffic_abi::{
    BLACKHOLE_STAT_DROPPED, BLACKHOLE_STATS, BLACKHOLE_TC_PROGRAM, BLACKHOLE_WINDOW,
    BlackholeWindow, FILTER_RX_TIMESTAMP, FILTER_UDP_PORTS, LOSSY_BLACKHOLE, LOSSY_EVERY,
    LOSSY_FILTER, LOSSY_PROGRAM, LOSSY_STAT_BLACKHOLE, LOSSY_STAT_BLACKHOLE_TEST, LOSSY_STAT_SEEN,
    LOSSY_STATS, RX_META_LEN, TESTFWD_DROP, TESTFWD_FILTER, TESTFWD_FLOW, TESTFWD_FLOWS,
    TESTFWD_MACS, TESTFWD_OUT, TESTFWD_PROGRAM, TXGEN_CONFIG, TXGEN_DESTINATIONS, TXGEN_PRISTINE,
    TXGEN_PRISTINE_LEN, TXGEN_PROGRAM, TXGEN_TX, TestFrameFilter, TestfwdLink, TxgenConfig,
    TxgenDestination, XSK_CONFIG, XSK_PROGRAM, XSK_STAT_NO_SOCKET, XSK_STAT_PASSED, XSK_STATS,
};

const XDP_DROP: u32 = 1;
const XDP_PASS: u32 = 2;
const XDP_REDIRECT: u32 = 4;

fn spec(v6: bool, vlans: Vec<u16>) -> TrafficSpec {
    let (s, d): (IpAddr, IpAddr) = if v6 {
        ("fd00::1".parse().unwrap(), "fd00::2".parse().unwrap())
    } else {
        ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap())
    };
    TrafficSpec {
        src_mac: [2, 0, 0, 0, 0, 1],
        dst_mac: [2, 0, 0, 0, 0, 2],
        vlans,
        src_ip: s,
        dst_ip: d,
        src_port: 1000,
        dst_port: 2000,
        flows: 1,
        vary_addrs: false,
        sizes: FrameSizes::Fixed(128),
        stream_base: 0,
    }
}

/// Verify the UDP checksum of `frame` whose L3 header starts at `l3`.
fn udp_checksum_ok(frame: &[u8], l3: usize, v6: bool) -> bool {
    let (src, dst, udp) = if v6 {
        (&frame[l3 + 8..l3 + 24], &frame[l3 + 24..l3 + 40], l3 + 40)
    } else {
        (&frame[l3 + 12..l3 + 16], &frame[l3 + 16..l3 + 20], l3 + 20)
    };
    let seg = &frame[udp..];
    let mut sum = sum_words(src, 0);
    sum = sum_words(dst, sum);
    sum += 17 + seg.len() as u32;
    fold(sum_words(seg, sum)) == 0xffff
}

fn load(object: &[u8], program: &str) -> Ebpf {
    let mut ebpf = Ebpf::load(object).expect("load object");
    let p: &mut Xdp = ebpf.program_mut(program).unwrap().try_into().unwrap();
    p.load().expect("verifier accepts the program");
    ebpf
}

fn run(ebpf: &mut Ebpf, program: &str, frame: &[u8]) -> (u32, Vec<u8>) {
    let p: &mut Xdp = ebpf.program_mut(program).unwrap().try_into().unwrap();
    let mut out = vec![0u8; frame.len()];
    let r = p
        .test_run(TestRunOptions {
            data_in: Some(frame),
            data_out: Some(&mut out),
            ..Default::default()
        })
        .unwrap();
    out.truncate(r.data_size_out as usize);
    (r.return_value, out)
}

/// `txgen` loaded and configured for `frame` (made from `t`), stream base 5,
/// sending to lo, spread over `dests` if given (from the template's
/// destination `from`).
fn txgen_loaded(t: &Template, frame: &[u8], dests: Option<(&Destinations, IpAddr)>) -> Ebpf {
    let n = dests.map_or(1, |(d, _)| d.addrs.len() as u32);
    let mut ebpf = EbpfLoader::new()
        .map_max_entries(TXGEN_DESTINATIONS, n)
        .load(traffic::TXGEN_OBJECT)
        .expect("load object");
    let p: &mut Xdp = ebpf.program_mut(TXGEN_PROGRAM).unwrap().try_into().unwrap();
    p.load().expect("verifier accepts the program");
    let (payload_off, csum_off) = t.offsets();
    let mut cfg = TxgenConfig {
        payload_off: payload_off as u32,
        csum_off: csum_off as u32,
        stream_base: 5,
        destinations: n,
        ..Default::default()
    };
    if let Some((d, from)) = dests {
        cfg.dst_off = d.addr_off as u32;
        cfg.dst_len = d.addr_len() as u32;
        cfg.ip_csum_off = d.ip_csum_off.unwrap_or(0) as u32;
        if !d.vlans.is_empty() {
            cfg.vlan_off = d.vlan_off as u32;
        }
        let mut table: Array<_, TxgenDestination> =
            Array::try_from(ebpf.map_mut(TXGEN_DESTINATIONS).unwrap()).unwrap();
        for (i, e) in d.txgen_entries(from).iter().enumerate() {
            table.set(i as u32, e, 0).unwrap();
        }
    }
    let mut conf: Array<_, TxgenConfig> =
        Array::try_from(ebpf.map_mut(TXGEN_CONFIG).unwrap()).unwrap();
    conf.set(0, cfg, 0).unwrap();
    let mut pristine = [0u8; TXGEN_PRISTINE_LEN];
    let head = frame.len().min(TXGEN_PRISTINE_LEN);
    pristine[..head].copy_from_slice(&frame[..head]);
    let mut pm: Array<_, [u8; TXGEN_PRISTINE_LEN]> =
        Array::try_from(ebpf.map_mut(TXGEN_PRISTINE).unwrap()).unwrap();
    pm.set(0, pristine, 0).unwrap();
    let mut tx = DevMap::try_from(ebpf.map_mut(TXGEN_TX).unwrap()).unwrap();
    tx.set(0, 1, None, 0).unwrap(); // lo
    ebpf
}

#[test]
fn txgen_stamps_sequence_time_and_checksum() {
    if !require_root("txgen_stamps_sequence_time_and_checksum") {
        return;
    }
    // The stream id is base + CPU: run on CPU 0.
    std::thread::spawn(|| {
        pin_to_cpu(0);
        for (v6, vlans) in [(false, vec![]), (true, vec![10, 20]), (false, vec![7])] {
            let s = spec(v6, vlans.clone());
            let t: Template = s.template(0, 128);
            let mut frame = vec![0u8; t.len];
            t.write(&mut frame, 0, 0, true);
            let mut ebpf = txgen_loaded(&t, &frame, None);
            let (payload_off, _) = t.offsets();
            let l3 = 14 + 4 * vlans.len();
            let original = frame.clone();
            for seq in 0..3u64 {
                let before = monotonic_ns();
                // Feed the previous output back, rewritten as a forwarder
                // downstream would (MACs, TTL / hop limit), as recycled live
                // frames come back: txgen restores the headers and its
                // checksum update holds.
                frame[0..12].fill(0xee);
                frame[l3 + if v6 { 7 } else { 8 }] = 3;
                let (verdict, out) = run(&mut ebpf, TXGEN_PROGRAM, &frame);
                assert_eq!(verdict, XDP_REDIRECT);
                let p = parse(&out).expect("still a test frame");
                assert_eq!((p.stream, p.seq), (5, seq));
                assert!(p.tx_ns >= before && p.tx_ns <= monotonic_ns(), "{p:?}");
                assert!(udp_checksum_ok(&out, l3, v6), "seq {seq} v6={v6}");
                assert_eq!(out[..payload_off - 8], original[..payload_off - 8]);
                frame = out;
            }
        }
    })
    .join()
    .unwrap();
}

#[test]
fn txgen_spreads_frames_over_destinations() {
    if !require_root("txgen_spreads_frames_over_destinations") {
        return;
    }
    std::thread::spawn(|| {
        pin_to_cpu(0);
        // Addresses anywhere (not one /24), IPv4 tagged and IPv6 QinQ; the
        // frame fed back each time is the last output, as live frames come
        // back, with a downstream forwarder's TTL rewrite on top.
        for (v6, vlans) in [(false, vec![7]), (true, vec![10, 20]), (false, vec![])] {
            let s = spec(v6, vlans.clone());
            let addrs: Vec<IpAddr> = if v6 {
                ["2001:db8::1", "fd00:ffff::ffff", "ffff::fffe"]
                    .iter()
                    .map(|a| a.parse().unwrap())
                    .collect()
            } else {
                ["198.51.100.7", "255.255.255.254", "1.0.0.0"]
                    .iter()
                    .map(|a| a.parse().unwrap())
                    .collect()
            };
            let mut d = Destinations::new(&s, addrs.clone()).unwrap();
            // Tagged frames: each destination in a VLAN of its own.
            let per_dest: Vec<u16> = (0..3).map(|k| 300 + k).collect();
            if !vlans.is_empty() {
                d = d.with_vlans(&s, per_dest.clone()).unwrap();
            }
            let t = s.template(0, 128);
            let mut frame = vec![0u8; t.len];
            t.write(&mut frame, 0, 0, true);
            let l3 = 14 + 4 * vlans.len();
            let mut ebpf = txgen_loaded(&t, &frame, Some((&d, s.dst_ip)));
            let original = frame.clone();
            let n = d.addr_len();
            let mut seen = Vec::new();
            for seq in 0..7u64 {
                frame[l3 + if v6 { 7 } else { 8 }] = 3;
                let (verdict, out) = run(&mut ebpf, TXGEN_PROGRAM, &frame);
                assert_eq!(verdict, XDP_REDIRECT);
                assert_eq!(parse(&out).expect("still a test frame").seq, seq);
                if !v6 {
                    assert_eq!(
                        fold(sum_words(&out[l3..l3 + 20], 0)),
                        0xffff,
                        "IPv4 checksum, seq {seq}"
                    );
                }
                assert!(
                    udp_checksum_ok(&out, l3, v6),
                    "UDP checksum, seq {seq} v6={v6}"
                );
                // Up to the UDP checksum, only the destination and the IPv4
                // header checksum change.
                let (a, h) = (d.addr_off, t.offsets().1);
                for (i, (x, y)) in out[..h].iter().zip(&original[..h]).enumerate() {
                    let changes = (a..a + n).contains(&i)
                        || d.ip_csum_off.is_some_and(|c| (c..c + 2).contains(&i))
                        || (!d.vlans.is_empty() && (14..16).contains(&i));
                    if !changes {
                        assert_eq!(x, y, "byte {i}, seq {seq} v6={v6}");
                    }
                }
                if !vlans.is_empty() {
                    let vid = u16::from_be_bytes([out[14], out[15]]) & 0x0fff;
                    assert_eq!(vid, per_dest[seq as usize % 3], "seq {seq} v6={v6}");
                }
                seen.push(out[a..a + n].to_vec());
                frame = out;
            }
            let want: Vec<Vec<u8>> = (0..7)
                .map(|k| match addrs[k % 3] {
                    IpAddr::V4(a) => a.octets().to_vec(),
                    IpAddr::V6(a) => a.octets().to_vec(),
                })
                .collect();
            assert_eq!(seen, want, "v6={v6}");
        }
    })
    .join()
    .unwrap();
}

#[test]
fn xsk_passes_frames_of_queues_without_socket() {
    if !require_root("xsk_passes_frames_of_queues_without_socket") {
        return;
    }
    let t = spec(false, vec![]).template(0, 64);
    let mut frame = vec![0u8; t.len];
    t.write(&mut frame, 1, 2, true);
    let mut ebpf = load(traffic::XSK_OBJECT, XSK_PROGRAM);
    let (verdict, out) = run(&mut ebpf, XSK_PROGRAM, &frame);
    assert_eq!(verdict, XDP_PASS);
    assert_eq!(out, frame);
}

#[test]
fn lossy_drops_every_kth_udp_frame_only() {
    if !require_root("lossy_drops_every_kth_udp_frame_only") {
        return;
    }
    let t = spec(false, vec![100, 200]).template(0, 128);
    let mut udp = vec![0u8; t.len];
    t.write(&mut udp, 1, 2, true);
    let mut arp = vec![0u8; 42];
    arp[12..14].copy_from_slice(&0x0806u16.to_be_bytes());
    let mut ebpf = load(traffic::LOSSY_OBJECT, LOSSY_PROGRAM);
    let mut every: Array<_, u64> = Array::try_from(ebpf.map_mut(LOSSY_EVERY).unwrap()).unwrap();
    every.set(0, 3, 0).unwrap();
    let mut verdicts = Vec::new();
    for i in 0..9 {
        // ARP in between never counts and always passes (no next program).
        assert_eq!(run(&mut ebpf, LOSSY_PROGRAM, &arp).0, XDP_PASS, "arp {i}");
        verdicts.push(run(&mut ebpf, LOSSY_PROGRAM, &udp).0);
    }
    let p = XDP_PASS;
    let d = XDP_DROP;
    assert_eq!(verdicts, vec![p, p, d, p, p, d, p, p, d]);
}

/// A frame of `len` bytes with `ethertype` at 12, IPv4 protocol `proto` and
/// destination port `dport` (for UDP/TCP), zeros elsewhere.
fn ipv4_frame(proto: u8, dport: u16) -> Vec<u8> {
    let mut f = vec![0u8; 60];
    f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
    f[14] = 0x45;
    f[14 + 9] = proto;
    f[34 + 2..34 + 4].copy_from_slice(&dport.to_be_bytes());
    f
}

fn arp_frame() -> Vec<u8> {
    let mut arp = vec![0u8; 42];
    arp[12..14].copy_from_slice(&0x0806u16.to_be_bytes());
    arp
}

fn percpu_sum(ebpf: &Ebpf, map: &str, i: u32) -> u64 {
    let m: PerCpuArray<_, u64> = PerCpuArray::try_from(ebpf.map(map).unwrap()).unwrap();
    m.get(&i, 0).unwrap().iter().sum()
}

fn test_frame(v6: bool, vlans: Vec<u16>, dport: u16) -> Vec<u8> {
    let mut s = spec(v6, vlans);
    s.dst_port = dport;
    let t = s.template(0, 128);
    let mut f = vec![0u8; t.len];
    t.write(&mut f, 1, 2, true);
    f
}

#[test]
fn xsk_filter_takes_only_test_ports_and_stamps_receive_time() {
    if !require_root("xsk_filter_takes_only_test_ports_and_stamps_receive_time") {
        return;
    }
    let mut ebpf = load(traffic::XSK_OBJECT, XSK_PROGRAM);
    let mut conf: Array<_, TestFrameFilter> =
        Array::try_from(ebpf.map_mut(XSK_CONFIG).unwrap()).unwrap();
    conf.set(
        0,
        TestFrameFilter {
            flags: FILTER_UDP_PORTS,
            port_lo: 20000,
            port_hi: 20003,
        },
        0,
    )
    .unwrap();
    // Not test frames: passed to the kernel unchanged, counted as passed.
    let others = [
        arp_frame(),
        ipv4_frame(6, 179),    // BGP
        ipv4_frame(17, 3784),  // BFD
        ipv4_frame(17, 19999), // just below the range
        ipv4_frame(1, 0),      // ICMP
        test_frame(true, vec![10, 20], 20004),
    ];
    for f in &others {
        let (verdict, out) = run(&mut ebpf, XSK_PROGRAM, f);
        assert_eq!((verdict, &out), (XDP_PASS, f));
    }
    assert_eq!(
        percpu_sum(&ebpf, XSK_STATS, XSK_STAT_PASSED),
        others.len() as u64
    );
    // Test frames (IPv4 plain, IPv6 behind QinQ, both range ends) go for
    // the socket; with none on the queue they pass, counted as such.
    let tests = [
        test_frame(false, vec![], 20000),
        test_frame(true, vec![10, 20], 20003),
        test_frame(false, vec![7], 20001),
    ];
    for f in &tests {
        assert_eq!(run(&mut ebpf, XSK_PROGRAM, f).0, XDP_PASS);
    }
    assert_eq!(
        percpu_sum(&ebpf, XSK_STATS, XSK_STAT_NO_SOCKET),
        tests.len() as u64
    );
    assert_eq!(
        percpu_sum(&ebpf, XSK_STATS, XSK_STAT_PASSED),
        others.len() as u64
    );
    // With receive times: test frames get 8 bytes of metadata holding
    // bpf_ktime_get_ns (the engine's clock); other frames none.
    let mut conf: Array<_, TestFrameFilter> =
        Array::try_from(ebpf.map_mut(XSK_CONFIG).unwrap()).unwrap();
    conf.set(
        0,
        TestFrameFilter {
            flags: FILTER_UDP_PORTS | FILTER_RX_TIMESTAMP,
            port_lo: 20000,
            port_hi: 20003,
        },
        0,
    )
    .unwrap();
    let before = monotonic_ns();
    let (verdict, out) = run_with_meta(&mut ebpf, XSK_PROGRAM, &tests[0]);
    let after = monotonic_ns();
    assert_eq!(verdict, XDP_PASS);
    assert_eq!(out.len(), tests[0].len() + RX_META_LEN, "metadata in front");
    let stamp = u64::from_ne_bytes(out[..8].try_into().unwrap());
    assert!(
        stamp >= before && stamp <= after,
        "{before} <= {stamp} <= {after}"
    );
    assert_eq!(&out[RX_META_LEN..], &tests[0][..]);
    let (_, out) = run_with_meta(&mut ebpf, XSK_PROGRAM, &others[0]);
    assert_eq!(out, others[0]);
}

/// Like `run`, with room for metadata in the output.
fn run_with_meta(ebpf: &mut Ebpf, program: &str, frame: &[u8]) -> (u32, Vec<u8>) {
    let p: &mut Xdp = ebpf.program_mut(program).unwrap().try_into().unwrap();
    let mut out = vec![0u8; frame.len() + 64];
    let r = p
        .test_run(TestRunOptions {
            data_in: Some(frame),
            data_out: Some(&mut out),
            ..Default::default()
        })
        .unwrap();
    out.truncate(r.data_size_out as usize);
    (r.return_value, out)
}

#[test]
fn lossy_black_hole_drops_everything_inside_its_window() {
    if !require_root("lossy_black_hole_drops_everything_inside_its_window") {
        return;
    }
    let mut ebpf = load(traffic::LOSSY_OBJECT, LOSSY_PROGRAM);
    let mut f: Array<_, TestFrameFilter> =
        Array::try_from(ebpf.map_mut(LOSSY_FILTER).unwrap()).unwrap();
    f.set(
        0,
        TestFrameFilter {
            flags: FILTER_UDP_PORTS,
            port_lo: 20000,
            port_hi: 20000,
        },
        0,
    )
    .unwrap();
    let frames = [
        arp_frame(),
        ipv4_frame(6, 179),
        ipv4_frame(17, 3784),
        test_frame(false, vec![], 20000),
    ];
    let set = |ebpf: &mut Ebpf, w: BlackholeWindow| {
        let mut m: Array<_, BlackholeWindow> =
            Array::try_from(ebpf.map_mut(LOSSY_BLACKHOLE).unwrap()).unwrap();
        m.set(0, w, 0).unwrap();
    };
    // Off (all zero): everything passes; only the test frame is "seen".
    for fr in &frames {
        assert_eq!(run(&mut ebpf, LOSSY_PROGRAM, fr).0, XDP_PASS);
    }
    assert_eq!(percpu_sum(&ebpf, LOSSY_STATS, LOSSY_STAT_SEEN), 1);
    // On since the epoch, forever: everything dropped, test frames counted.
    set(
        &mut ebpf,
        BlackholeWindow {
            from_ns: 1,
            until_ns: u64::MAX,
        },
    );
    for fr in &frames {
        assert_eq!(run(&mut ebpf, LOSSY_PROGRAM, fr).0, XDP_DROP);
    }
    assert_eq!(percpu_sum(&ebpf, LOSSY_STATS, LOSSY_STAT_BLACKHOLE), 4);
    assert_eq!(percpu_sum(&ebpf, LOSSY_STATS, LOSSY_STAT_BLACKHOLE_TEST), 1);
    // A window in the future, and one in the past: nothing dropped.
    for w in [
        BlackholeWindow {
            from_ns: monotonic_ns() + 60_000_000_000,
            until_ns: u64::MAX,
        },
        BlackholeWindow {
            from_ns: 1,
            until_ns: monotonic_ns(),
        },
    ] {
        set(&mut ebpf, w);
        for fr in &frames {
            assert_eq!(run(&mut ebpf, LOSSY_PROGRAM, fr).0, XDP_PASS);
        }
    }
    assert_eq!(percpu_sum(&ebpf, LOSSY_STATS, LOSSY_STAT_BLACKHOLE), 4);
}

#[test]
fn blackhole_tc_drops_inside_its_window_and_defers_otherwise() {
    if !require_root("blackhole_tc_drops_inside_its_window_and_defers_otherwise") {
        return;
    }
    let mut ebpf = Ebpf::load(traffic::BLACKHOLE_TC_OBJECT).unwrap();
    let p: &mut SchedClassifier = ebpf
        .program_mut(BLACKHOLE_TC_PROGRAM)
        .unwrap()
        .try_into()
        .unwrap();
    p.load().expect("verifier accepts blackhole_tc");
    let verdict = |ebpf: &Ebpf, frame: &[u8]| -> i32 {
        let p: &SchedClassifier = ebpf
            .program(BLACKHOLE_TC_PROGRAM)
            .unwrap()
            .try_into()
            .unwrap();
        p.test_run(TestRunOptions {
            data_in: Some(frame),
            ..Default::default()
        })
        .unwrap()
        .return_value as i32
    };
    let frame = ipv4_frame(1, 0);
    const TCX_NEXT: i32 = -1;
    const TC_ACT_SHOT: i32 = 2;
    assert_eq!(verdict(&ebpf, &frame), TCX_NEXT);
    let mut w: Array<_, BlackholeWindow> =
        Array::try_from(ebpf.map_mut(BLACKHOLE_WINDOW).unwrap()).unwrap();
    w.set(
        0,
        BlackholeWindow {
            from_ns: 1,
            until_ns: u64::MAX,
        },
        0,
    )
    .unwrap();
    assert_eq!(verdict(&ebpf, &frame), TC_ACT_SHOT);
    assert_eq!(verdict(&ebpf, &arp_frame()), TC_ACT_SHOT);
    let mut w: Array<_, BlackholeWindow> =
        Array::try_from(ebpf.map_mut(BLACKHOLE_WINDOW).unwrap()).unwrap();
    w.set(
        0,
        BlackholeWindow {
            from_ns: 1,
            until_ns: monotonic_ns(),
        },
        0,
    )
    .unwrap();
    assert_eq!(verdict(&ebpf, &frame), TCX_NEXT);
    assert_eq!(
        percpu_sum(&ebpf, BLACKHOLE_STATS, BLACKHOLE_STAT_DROPPED),
        2
    );
}

#[test]
fn testfwd_sends_each_flow_out_of_its_slot() {
    if !require_root("testfwd_sends_each_flow_out_of_its_slot") {
        return;
    }
    let mut ebpf = load(traffic::TESTFWD_OBJECT, TESTFWD_PROGRAM);
    let mut out = DevMap::try_from(ebpf.map_mut(TESTFWD_OUT).unwrap()).unwrap();
    out.set(0, 1, None, 0).unwrap(); // lo
    out.set(1, 1, None, 0).unwrap();
    let mut macs: Array<_, TestfwdLink> =
        Array::try_from(ebpf.map_mut(TESTFWD_MACS).unwrap()).unwrap();
    for slot in 0..2u8 {
        macs.set(
            u32::from(slot),
            TestfwdLink {
                dst_mac: [2, 0, 0, 0, 1, slot],
                src_mac: [2, 0, 0, 0, 2, slot],
            },
            0,
        )
        .unwrap();
    }
    let mut filter: Array<_, TestFrameFilter> =
        Array::try_from(ebpf.map_mut(TESTFWD_FILTER).unwrap()).unwrap();
    filter
        .set(
            0,
            TestFrameFilter {
                flags: FILTER_UDP_PORTS,
                port_lo: 20000,
                port_hi: 20003,
            },
            0,
        )
        .unwrap();
    let mut flow: Array<_, u32> = Array::try_from(ebpf.map_mut(TESTFWD_FLOW).unwrap()).unwrap();
    flow.set(20001 % TESTFWD_FLOWS, 1, 0).unwrap();
    flow.set(20002 % TESTFWD_FLOWS, TESTFWD_DROP, 0).unwrap();
    for (port, verdict, slot) in [
        (20000u16, XDP_REDIRECT, Some(0u8)),
        (20001, XDP_REDIRECT, Some(1)),
        (20002, XDP_DROP, None),
        (20004, XDP_PASS, None),
    ] {
        let f = test_frame(false, vec![], port);
        let (v, o) = run(&mut ebpf, TESTFWD_PROGRAM, &f);
        assert_eq!(v, verdict, "port {port}");
        match slot {
            Some(s) => {
                assert_eq!(o[..6], [2, 0, 0, 0, 1, s]);
                assert_eq!(o[6..12], [2, 0, 0, 0, 2, s]);
                assert_eq!(o[12..], f[12..]);
            }
            None if v == XDP_PASS => assert_eq!(o, f),
            None => {}
        }
    }
    assert_eq!(run(&mut ebpf, TESTFWD_PROGRAM, &arp_frame()).0, XDP_PASS);
}

/// A namespace deleted on drop.
struct Netns(String);

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = lab::ip(&["netns", "del", &self.0]);
    }
}

#[test]
fn fibfwd_forwards_by_the_kernel_fib_and_passes_the_rest() {
    if !require_root("fibfwd_forwards_by_the_kernel_fib_and_passes_the_rest") {
        return;
    }
    // One namespace, a veth pair `in` <-> `out`; the kernel routes
    // 198.51.100.0/24 and 2001:db8:1::/48 out of `out` via a permanent
    // neighbour, 192.0.2.0/24 the same in table 100 only.
    let ns = Netns(format!("ff{}", std::process::id() % 100_000));
    let n = ns.0.as_str();
    lab::ip(&["netns", "add", n]).unwrap();
    let ip = |args: &[&str]| lab::ip_ns(n, args).unwrap();
    ip(&["link", "add", "in", "type", "veth", "peer", "name", "out"]);
    ip(&["addr", "add", "10.8.0.1/30", "dev", "in"]);
    ip(&["addr", "add", "10.9.0.1/30", "dev", "out"]);
    ip(&["addr", "add", "fd00:9::1/64", "dev", "out", "nodad"]);
    ip(&["link", "set", "in", "up"]);
    ip(&["link", "set", "out", "up"]);
    let peer_mac = "02:00:00:00:00:99";
    for peer in ["10.9.0.2", "fd00:9::2"] {
        ip(&[
            "neigh",
            "replace",
            peer,
            "lladdr",
            peer_mac,
            "dev",
            "out",
            "nud",
            "permanent",
        ]);
    }
    ip(&[
        "route",
        "add",
        "198.51.100.0/24",
        "via",
        "10.9.0.2",
        "dev",
        "out",
    ]);
    ip(&[
        "route",
        "add",
        "192.0.2.0/24",
        "via",
        "10.9.0.2",
        "dev",
        "out",
        "table",
        "100",
    ]);
    ip(&[
        "-6",
        "route",
        "add",
        "2001:db8:1::/48",
        "via",
        "fd00:9::2",
        "dev",
        "out",
    ]);
    lab::sysctl_ns(n, "net.ipv4.conf.all.forwarding", "1").unwrap();
    lab::sysctl_ns(n, "net.ipv6.conf.all.forwarding", "1").unwrap();
    let ifindex = |dev: &str| traffic::iface::ifindex(Some(n), dev).unwrap();
    let (ingress, egress) = (ifindex("in"), ifindex("out"));
    let out_mac = lab::mac_of(n, "out").unwrap();
    let mut f = traffic::FibFwd::load().unwrap();
    let frame = |dst: &str, ttl: u8| {
        let mut s = spec(dst.contains(':'), vec![]);
        if dst.contains(':') {
            s.src_ip = "fd00:8::1".parse().unwrap();
        } else {
            s.src_ip = "10.8.0.2".parse().unwrap();
        }
        s.dst_ip = dst.parse().unwrap();
        let t = s.template(0, 128);
        let mut b = vec![0u8; t.len];
        t.write(&mut b, 0, 0, true);
        b[14 + if dst.contains(':') { 7 } else { 8 }] = ttl;
        if !dst.contains(':') {
            // Re-checksum the IPv4 header after the TTL change.
            b[24..26].fill(0);
            let c = !fold(sum_words(&b[14..34], 0));
            b[24..26].copy_from_slice(&c.to_be_bytes());
        }
        b
    };
    msee_sys::netns::within(n, || {
        f.add_port(egress).unwrap();
        let peer = [2, 0, 0, 0, 0, 0x99];
        for dst in ["198.51.100.9", "2001:db8:1::5"] {
            let v6 = dst.contains(':');
            let input = frame(dst, 64);
            let (verdict, out, _) = f.run(&input, ingress).unwrap();
            assert_eq!(verdict, XDP_REDIRECT, "{dst}");
            assert_eq!(out[0..6], peer, "{dst}: the neighbour's MAC");
            assert_eq!(out[6..12], out_mac, "{dst}: the egress port's MAC");
            if v6 {
                assert_eq!(out[14 + 7], 63, "hop limit");
            } else {
                assert_eq!(out[14 + 8], 63, "TTL");
                assert_eq!(fold(sum_words(&out[14..34], 0)), 0xffff, "IPv4 checksum");
            }
            assert_eq!(out[34..], input[34..], "{dst}: the rest untouched");
            // About to expire: the kernel's (it sends the ICMP error).
            let last = frame(dst, 1);
            assert_eq!(f.run(&last, ingress).unwrap().0, XDP_PASS, "{dst} TTL 1");
        }
        // No route in the main table: the kernel's, untouched.
        for dst in ["203.0.113.1", "192.0.2.1", "2001:db8:2::1"] {
            let input = frame(dst, 64);
            let (verdict, out, _) = f.run(&input, ingress).unwrap();
            assert_eq!((verdict, &out), (XDP_PASS, &input), "{dst}");
        }
        // Table 100 alone: its route, and not the main table's.
        f.set_table(100).unwrap();
        assert_eq!(
            f.run(&frame("192.0.2.1", 64), ingress).unwrap().0,
            XDP_REDIRECT
        );
        assert_eq!(
            f.run(&frame("198.51.100.9", 64), ingress).unwrap().0,
            XDP_PASS
        );
        // Forwarding off: the kernel's.
        f.set_table(0).unwrap();
        lab::sysctl_ns(n, "net.ipv4.conf.all.forwarding", "0").unwrap();
        assert_eq!(
            f.run(&frame("198.51.100.9", 64), ingress).unwrap().0,
            XDP_PASS
        );
    })
    .unwrap();
}
