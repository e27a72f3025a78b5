//! Packet fixtures for the engine's kernel programs through
//! BPF_PROG_TEST_RUN (no live frames: nothing is sent): `txgen` stamps and
//! re-checksums, `xsk` passes frames of queues without a socket, `lossy`
//! drops exactly every k-th UDP frame and never ARP.
use std::net::IpAddr;

use aya::{
    Ebpf,
    maps::{Array, DevMap},
    programs::{TestRun, TestRunOptions, Xdp},
};
use dataplane::engine::{
    frame::{FrameSizes, Template, TrafficSpec, fold, parse, sum_words},
    now_ns, pin_to_cpu,
};
use e2e_tests::require_root;
use msee_abi::engine::{
    LOSSY_EVERY, LOSSY_PROGRAM, TXGEN_CONFIG, TXGEN_PRISTINE, TXGEN_PRISTINE_LEN, TXGEN_PROGRAM,
    TXGEN_TX, TxgenConfig, XSK_PROGRAM,
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
            let mut ebpf = load(dataplane::TXGEN_OBJECT, TXGEN_PROGRAM);
            let (payload_off, csum_off) = t.offsets();
            let mut conf: Array<_, TxgenConfig> =
                Array::try_from(ebpf.map_mut(TXGEN_CONFIG).unwrap()).unwrap();
            conf.set(
                0,
                TxgenConfig {
                    payload_off: payload_off as u32,
                    csum_off: csum_off as u32,
                    stream_base: 5,
                    _pad: 0,
                },
                0,
            )
            .unwrap();
            let mut pristine = [0u8; TXGEN_PRISTINE_LEN];
            let head = frame.len().min(TXGEN_PRISTINE_LEN);
            pristine[..head].copy_from_slice(&frame[..head]);
            let mut pm: Array<_, [u8; TXGEN_PRISTINE_LEN]> =
                Array::try_from(ebpf.map_mut(TXGEN_PRISTINE).unwrap()).unwrap();
            pm.set(0, pristine, 0).unwrap();
            let mut tx = DevMap::try_from(ebpf.map_mut(TXGEN_TX).unwrap()).unwrap();
            tx.set(0, 1, None, 0).unwrap(); // lo
            let l3 = 14 + 4 * vlans.len();
            let original = frame.clone();
            for seq in 0..3u64 {
                let before = now_ns();
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
                assert!(p.tx_ns >= before && p.tx_ns <= now_ns(), "{p:?}");
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
fn xsk_passes_frames_of_queues_without_socket() {
    if !require_root("xsk_passes_frames_of_queues_without_socket") {
        return;
    }
    let t = spec(false, vec![]).template(0, 64);
    let mut frame = vec![0u8; t.len];
    t.write(&mut frame, 1, 2, true);
    let mut ebpf = load(dataplane::XSK_OBJECT, XSK_PROGRAM);
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
    let mut ebpf = load(dataplane::LOSSY_OBJECT, LOSSY_PROGRAM);
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
