//! The sink shares its interface with the kernel (where a customer's FRR
//! runs BGP and BFD), and a black hole silences an interface both ways
//! while its carrier stays up. Over a veth pair made here (`a`: ta
//! 10.77.0.1, `b`: tb 10.77.0.2, IPv4 only), removed on drop.
use std::{
    collections::BTreeSet,
    io::{Read as _, Write as _},
    net::{SocketAddr, TcpListener, TcpStream, UdpSocket},
    sync::Mutex,
    time::Duration,
};

use e2e_tests::{
    engine_topo::{Pair, Testfwd, carrier_up, ping},
    require_root,
};
use lab::ip_ns;
use msee_sys::netns;
use traffic::{
    fault::{Blackhole, IngressHook},
    run::{RunHandle, start},
};

static SERIAL: Mutex<()> = Mutex::new(());

/// Packets per run: 5 s at 5 kpps, room for a few one-second pings.
const N: u64 = 25_000;

/// A kernel UDP socket in `ns` on `addr`, waiting at most `wait` per read.
fn udp_in(ns: &str, addr: &str, wait: Duration) -> UdpSocket {
    let addr: SocketAddr = addr.parse().unwrap();
    let s = netns::on_thread(ns, move || UdpSocket::bind(addr))
        .unwrap()
        .unwrap();
    s.set_read_timeout(Some(wait)).unwrap();
    s
}

/// Send one datagram from namespace `ns` to `to`; true if `rx` got it.
fn udp_reaches(ns: &str, rx: &UdpSocket, to: &str) -> bool {
    let to: SocketAddr = to.parse().unwrap();
    netns::on_thread(ns, move || {
        UdpSocket::bind("0.0.0.0:0")
            .and_then(|s| s.send_to(b"hello kernel", to))
            .unwrap()
    })
    .unwrap();
    let mut buf = [0u8; 64];
    matches!(rx.recv_from(&mut buf), Ok((12, _)))
}

/// A TCP connection from `ns` to `listener` (in another namespace) and a
/// byte across it.
fn tcp_works(ns: &str, listener: &TcpListener, to: &str) -> bool {
    let to: SocketAddr = to.parse().unwrap();
    let client = netns::on_thread(ns, move || -> std::io::Result<TcpStream> {
        let mut c = TcpStream::connect_timeout(&to, Duration::from_secs(2))?;
        c.write_all(b"x")?;
        Ok(c)
    })
    .unwrap();
    if client.is_err() {
        return false;
    }
    listener.set_nonblocking(false).unwrap();
    match listener.accept() {
        Ok((mut s, _)) => {
            s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
            let mut b = [0u8; 1];
            matches!(s.read(&mut b), Ok(1))
        }
        Err(_) => false,
    }
}

fn background(pair: &Pair, all_frames: bool, blackhole: bool) -> RunHandle {
    let mut cfg = pair.config(5_000.0, N, Duration::from_secs(10));
    cfg.all_frames = all_frames;
    cfg.rx_blackhole = blackhole;
    let h = start(&cfg).unwrap();
    assert!(h.wait_received(1_000, Duration::from_secs(5)));
    h
}

#[test]
fn engine_filtered_sink_leaves_arp_tcp_and_other_udp_to_the_kernel() {
    if !require_root("engine_filtered_sink_leaves_arp_tcp_and_other_udp_to_the_kernel") {
        return;
    }
    let _g = SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let pair = Pair::new("ec1").unwrap();
    let (a, b) = (pair.a.clone(), pair.b.clone());
    let other = udp_in(&b, "10.77.0.2:5555", Duration::from_secs(2));
    let bfd = udp_in(&b, "10.77.0.2:3784", Duration::from_secs(2));
    let bgp = netns::on_thread(&b, || TcpListener::bind("10.77.0.2:179"))
        .unwrap()
        .unwrap();
    // Default: the sink takes only UDP to the run's port (20000).
    let h = background(&pair, false, false);
    // Forget the neighbour so ARP must cross while the sink runs.
    ip_ns(&a, &["neigh", "flush", "dev", "ta"]).unwrap();
    assert!(ping(&a, "10.77.0.2"), "ping a -> b while the sink runs");
    assert!(udp_reaches(&a, &other, "10.77.0.2:5555"), "UDP to 5555");
    assert!(
        udp_reaches(&a, &bfd, "10.77.0.2:3784"),
        "UDP to the BFD port"
    );
    assert!(tcp_works(&a, &bgp, "10.77.0.2:179"), "TCP to the BGP port");
    let r = h.join().unwrap();
    eprintln!("{}\n{:?}", r.summary(), r.rx[0].xsk);
    assert_eq!((r.totals.received, r.totals.lost), (N, 0));
    assert_eq!(r.sink_other, 0);
    // ARP, echo, two datagrams, TCP handshake and data: all passed, counted.
    assert!(r.rx[0].xsk.passed >= 6, "{:?}", r.rx[0].xsk);
    assert_eq!(r.rx[0].xsk.to_socket, N);

    // As before filters (all frames to the sink): the kernel hears nothing.
    let h = background(&pair, true, false);
    assert!(!udp_reaches(&a, &other, "10.77.0.2:5555"));
    let r = h.join().unwrap();
    assert!(r.sink_other >= 1, "{}", r.summary());
    assert_eq!(r.rx[0].xsk.passed, 0);
    assert_eq!(r.totals.lost, 0);
}

/// Everything is blocked both ways while on, nothing while off; the
/// carrier stays up.
fn check_black_hole(pair: &Pair, hole: &Blackhole) {
    let (a, b) = (&pair.a, &pair.b);
    assert!(ping(a, "10.77.0.2") && ping(b, "10.77.0.1"), "off: pings");
    let before = hole.counts();
    hole.on().unwrap();
    assert!(hole.is_on());
    // Neighbours forgotten: ARP itself must cross, and cannot.
    ip_ns(a, &["neigh", "flush", "dev", "ta"]).unwrap();
    ip_ns(b, &["neigh", "flush", "dev", "tb"]).unwrap();
    assert!(!ping(a, "10.77.0.2"), "on: ping a -> b got through");
    assert!(!ping(b, "10.77.0.1"), "on: ping b -> a got through");
    assert!(carrier_up(b, "tb") && carrier_up(a, "ta"), "carrier lost");
    let neigh = ip_ns(a, &["neigh", "show", "10.77.0.2", "dev", "ta"]).unwrap();
    assert!(!neigh.contains("lladdr"), "a resolved b: {neigh}");
    let during = hole.counts();
    // a's ARP requests (and nothing else) came in; b's went nowhere.
    assert!(
        during.ingress_dropped > before.ingress_dropped,
        "{during:?}"
    );
    assert!(during.egress_dropped > before.egress_dropped, "{during:?}");
    hole.off().unwrap();
    let after = hole.counts();
    // Resolution failed while on: start afresh rather than wait for the
    // kernel's next retry.
    ip_ns(a, &["neigh", "flush", "dev", "ta"]).unwrap();
    ip_ns(b, &["neigh", "flush", "dev", "tb"]).unwrap();
    assert!(
        ping(a, "10.77.0.2") && ping(b, "10.77.0.1"),
        "off again: pings"
    );
    assert_eq!(hole.counts(), after, "dropped while off");
    let flips = hole.flips();
    assert_eq!(flips.len(), 2);
    assert!(flips[0].on && !flips[1].on && flips[0].at_ns < flips[1].at_ns);
}

/// Loaded programs of the black hole's kinds: (id, name).
fn hole_programs() -> BTreeSet<(u32, String)> {
    aya::programs::loaded_programs()
        .filter_map(Result::ok)
        .filter_map(|p| {
            let name = p.name_as_str()?.to_owned();
            ["blackhole_tc", "lossy"]
                .contains(&name.as_str())
                .then(|| (p.id(), name))
        })
        .collect()
}

/// Wait (up to 2 s: programs are freed after their last reference) until
/// none of `ids` is loaded.
fn gone(ids: &BTreeSet<(u32, String)>) -> bool {
    let until = std::time::Instant::now() + Duration::from_secs(2);
    loop {
        let now = hole_programs();
        if ids.iter().all(|p| !now.contains(p)) {
            return true;
        }
        if std::time::Instant::now() >= until {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn engine_black_hole_blocks_everything_both_ways_and_detaches() {
    if !require_root("engine_black_hole_blocks_everything_both_ways_and_detaches") {
        return;
    }
    let _g = SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let pair = Pair::new("ec2").unwrap();
    let xdp_on_tb = || {
        ip_ns(&pair.b, &["link", "show", "dev", "tb"])
            .unwrap()
            .contains("xdp")
    };
    // An interface without anything attached: lossy alone in XDP.
    let before = hole_programs();
    let hole = Blackhole::attach(Some(&pair.b), "tb").unwrap();
    assert_eq!(hole.ingress_hook(), IngressHook::Xdp);
    assert!(xdp_on_tb());
    let ours: BTreeSet<_> = hole_programs().difference(&before).cloned().collect();
    let names: BTreeSet<&str> = ours.iter().map(|(_, n)| n.as_str()).collect();
    assert_eq!(names, BTreeSet::from(["blackhole_tc", "lossy"]), "{ours:?}");
    check_black_hole(&pair, &hole);
    drop(hole);
    assert!(gone(&ours), "detached on drop: {:?}", hole_programs());
    assert!(!xdp_on_tb());
    // An interface with someone else's XDP program (here the test
    // forwarder, which leaves all but UDP to the kernel): tcx ingress.
    let other = Testfwd::attach(&pair.b, "tb", &[], (20000, 20000)).unwrap();
    let before = hole_programs();
    let hole = Blackhole::attach(Some(&pair.b), "tb").unwrap();
    assert_eq!(hole.ingress_hook(), IngressHook::Tcx);
    let ours: BTreeSet<_> = hole_programs().difference(&before).cloned().collect();
    assert_eq!(ours.len(), 2, "two tcx programs: {ours:?}");
    check_black_hole(&pair, &hole);
    drop(hole);
    assert!(gone(&ours), "detached on drop: {:?}", hole_programs());
    // The other program was left alone.
    assert!(xdp_on_tb());
    assert!(ping(&pair.a, "10.77.0.2"));
    drop(other);
}

#[test]
fn engine_black_hole_on_a_sink_drops_test_frames_only_while_on() {
    if !require_root("engine_black_hole_on_a_sink_drops_test_frames_only_while_on") {
        return;
    }
    let _g = SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let pair = Pair::new("ec3").unwrap();
    let h = background(&pair, false, true);
    // A switch of its own would miss what the sink's xsk takes first.
    let err = Blackhole::attach(Some(&pair.b), "tb").err().unwrap();
    assert!(format!("{err:#}").contains("ask the sink"), "{err:#}");
    let hole = h.blackhole("tb").unwrap();
    check_black_hole(&pair, hole);
    let flips = hole.flips();
    let r = h.join().unwrap();
    eprintln!("{}", r.summary());
    let bh = r.rx[0].blackhole.unwrap();
    // The run lost exactly the test frames the hole dropped, all of them
    // while it was on: the gaps closed just after it went off.
    assert!(r.totals.lost > 0);
    assert_eq!(Some(r.totals.lost), bh.ingress_test_dropped);
    assert_eq!(r.totals.received + r.totals.lost, N);
    // A switch that landed late (busy machine) widens the window.
    let slack = |i: usize| flips[i].written_ns.saturating_sub(flips[i].at_ns);
    let (on, off) = (
        flips[0].at_ns - r.t0_ns,
        flips[1].at_ns - r.t0_ns + slack(1),
    );
    let s = &r.streams[0];
    assert!(!s.loss_events.is_empty());
    for e in &s.loss_events {
        assert!(
            e.at_ns > on && e.at_ns < off + 5_000_000,
            "{e:?} on {on} off {off}"
        );
    }
    assert_eq!(s.lost_after(off + 5_000_000), 0);
    // Loss-derived outage: the hole's length at 5 kpps, within a packet
    // or two of pacing jitter.
    let hole_ms = (off - on) as f64 / 1e6;
    assert!(
        (s.outage_ms.unwrap() - hole_ms).abs() < 2.0 + (slack(0) + slack(1)) as f64 / 1e6,
        "{} vs {hole_ms}",
        s.outage_ms.unwrap()
    );
}
