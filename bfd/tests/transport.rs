//! The tokio transport between two `Bfd` instances over loopback, each test
//! in a private network namespace of its own (needs root; skipped loudly
//! otherwise): handshake, silent failure detected with diag 1, AdminDown
//! signalled, a Poll Sequence, discards by reason, IPv6, start errors.

use bfd::transport::{Bfd, BfdEvent, PeerConfig};
use bfd::{Config, Diag, State};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::process::Command;
use std::time::{Duration, Instant};
use tokio::sync::mpsc::UnboundedReceiver;

/// Runs `f` on a tokio runtime whose threads live in a new network
/// namespace with only `lo` (up). Nothing leaves it; it disappears with
/// the runtime.
fn in_private_netns<F>(test: &str, f: impl FnOnce() -> F + Send + 'static) -> bool
where
    F: Future<Output = ()>,
{
    if !nix::unistd::geteuid().is_root() {
        eprintln!("SKIPPED {test}: needs root for a private network namespace");
        return false;
    }
    let r = std::thread::spawn(move || {
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).expect("unshare(CLONE_NEWNET)");
        for args in [
            &["link", "set", "lo", "up"][..],
            &["addr", "add", "fd00::1/128", "dev", "lo", "nodad"],
            &["addr", "add", "fd00::2/128", "dev", "lo", "nodad"],
        ] {
            let st = Command::new("ip").args(args).status().expect("running ip");
            assert!(st.success(), "ip {args:?}");
        }
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(f());
    })
    .join();
    if let Err(p) = r {
        std::panic::resume_unwind(p);
    }
    true
}

const A: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1));
const B: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));

fn fast() -> Config {
    Config {
        desired_min_tx: Duration::from_millis(20),
        required_min_rx: Duration::from_millis(20),
        detect_mult: 3,
    }
}

fn peer(name: &str, local: IpAddr, peer: IpAddr, session: Config) -> PeerConfig {
    PeerConfig {
        name: name.into(),
        local,
        peer,
        ifname: None,
        session,
    }
}

async fn next_event(rx: &mut UnboundedReceiver<BfdEvent>, within: Duration) -> BfdEvent {
    tokio::time::timeout(within, rx.recv())
        .await
        .unwrap_or_else(|_| panic!("no BFD event within {within:?}"))
        .expect("event channel open")
}

async fn wait_state(rx: &mut UnboundedReceiver<BfdEvent>, to: State, within: Duration) -> BfdEvent {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let e = next_event(rx, left).await;
        if e.to == to {
            return e;
        }
    }
}

/// Polls `f` every 10 ms until it holds, for at most `within`.
async fn eventually(what: &str, within: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !f() {
        assert!(Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

struct Pair {
    a: Bfd,
    a_rx: UnboundedReceiver<BfdEvent>,
    b: Bfd,
    b_rx: UnboundedReceiver<BfdEvent>,
}

async fn pair_up(la: IpAddr, lb: IpAddr, ca: Config, cb: Config) -> Pair {
    let (a, mut a_rx) = Bfd::start(vec![peer("a", la, lb, ca)]).unwrap();
    let (b, mut b_rx) = Bfd::start(vec![peer("b", lb, la, cb)]).unwrap();
    let up = Duration::from_secs(5);
    wait_state(&mut a_rx, State::Up, up).await;
    wait_state(&mut b_rx, State::Up, up).await;
    // The Poll Sequences that lift the 1 s floor end.
    eventually("both Poll Sequences done", up, || {
        !a.status()[0].polling && !b.status()[0].polling
    })
    .await;
    Pair { a, a_rx, b, b_rx }
}

#[test]
fn two_instances_come_up_with_negotiated_timers() {
    in_private_netns("two_instances_come_up_with_negotiated_timers", || async {
        let slow_b = Config {
            desired_min_tx: Duration::from_millis(30),
            required_min_rx: Duration::from_millis(40),
            detect_mult: 4,
        };
        let p = pair_up(A, B, fast(), slow_b).await;
        let (sa, sb) = (&p.a.status()[0], &p.b.status()[0]);
        assert_eq!((sa.state, sb.state), (State::Up, State::Up));
        assert_eq!(sa.remote_discriminator, sb.local_discriminator);
        assert_eq!(sb.remote_discriminator, sa.local_discriminator);
        assert!(bfd::SOURCE_PORTS.contains(&sa.source_port), "{sa:?}");
        assert!(bfd::SOURCE_PORTS.contains(&sb.source_port), "{sb:?}");
        // a sends at max(20, b's rx 40); b at max(30, 20).
        assert_eq!(sa.tx_interval_us, 40_000);
        assert_eq!(sb.tx_interval_us, 30_000);
        // a detects in b's mult 4 x max(20, 30); b in 3 x max(40, 20).
        assert_eq!(sa.detection_time_us, Some(120_000));
        assert_eq!(sb.detection_time_us, Some(120_000));
        assert_eq!(sa.discarded, 0, "{sa:?}");
        assert!(sa.uptime_ms.is_some());
        // Traffic flows at the negotiated rate: ~25 packets/s from a.
        let (t, before) = (Instant::now(), p.b.status()[0].packets_in);
        tokio::time::sleep(Duration::from_millis(1000)).await;
        let got = p.b.status()[0].packets_in - before;
        let rate = got as f64 / t.elapsed().as_secs_f64();
        // Jittered 30-40 ms: 25-33 a second.
        assert!((22.0..=36.0).contains(&rate), "b received {rate:.1}/s");
        let json = serde_json::to_value(p.a.status()).unwrap();
        assert_eq!(json[0]["state"], "Up");
        assert_eq!(json[0]["name"], "a");
        assert_eq!(json[0]["peer"], "127.0.0.2");
        assert_eq!(json[0]["discards"], serde_json::json!({}));
    });
}

#[test]
fn silent_peer_is_detected_with_diag_1_within_the_detection_time() {
    in_private_netns("silent_peer_is_detected", || async {
        let mut p = pair_up(A, B, fast(), fast()).await;
        let detect = Duration::from_micros(p.a.status()[0].detection_time_us.unwrap());
        assert_eq!(detect, Duration::from_millis(60));
        // b vanishes without a word (its task is aborted).
        let gone = Instant::now();
        drop(p.b);
        let e = wait_state(&mut p.a_rx, State::Down, Duration::from_secs(2)).await;
        assert_eq!(
            (e.from, e.diag),
            (State::Up, Diag::ControlDetectionTimeExpired)
        );
        let st = &p.a.status()[0];
        let last_rx = st.last_rx.unwrap();
        let late = e.at.duration_since(last_rx + detect);
        let outage = e.at.duration_since(gone);
        eprintln!(
            "detection {detect:?}: Down {outage:?} after the peer went silent, {late:?} after the deadline"
        );
        assert!(e.at >= last_rx + detect, "never before the deadline");
        // Generous bounds for a busy VM; typically 1-2 ms late.
        assert!(late < Duration::from_millis(100), "timer late by {late:?}");
        assert!(outage < detect + Duration::from_millis(100), "{outage:?}");
        assert_eq!(st.diag, Diag::ControlDetectionTimeExpired);
        assert_eq!(st.last_down_diag, Diag::ControlDetectionTimeExpired);
        assert_eq!(st.remote_discriminator, 0);
        assert_eq!(st.downs, 1);
    });
}

#[test]
fn admin_down_is_signalled_and_undone() {
    in_private_netns("admin_down_is_signalled_and_undone", || async {
        let mut p = pair_up(A, B, fast(), fast()).await;
        p.a.set_admin_down(0, true);
        let e = next_event(&mut p.a_rx, Duration::from_secs(1)).await;
        assert_eq!(
            (e.from, e.to, e.diag),
            (State::Up, State::AdminDown, Diag::AdminDown)
        );
        let e = next_event(&mut p.b_rx, Duration::from_secs(1)).await;
        assert_eq!(
            (e.from, e.to, e.diag),
            (State::Up, State::Down, Diag::NeighborSignaledDown)
        );
        assert_eq!(p.b.status()[0].remote_diag, Diag::AdminDown);
        assert_eq!(p.b.status()[0].remote_state, State::AdminDown);
        // b stays Down while a is AdminDown (no flapping through Init).
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert_eq!(p.b.status()[0].state, State::Down);
        assert!(p.b_rx.try_recv().is_err());
        p.a.set_admin_down(0, false);
        wait_state(&mut p.a_rx, State::Up, Duration::from_secs(5)).await;
        wait_state(&mut p.b_rx, State::Up, Duration::from_secs(5)).await;
        // Out-of-range indexes are ignored.
        p.a.set_admin_down(7, true);
        p.a.set_config(7, fast());
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(p.a.status()[0].state, State::Up);
        // shutdown() says AdminDown before stopping.
        p.a.shutdown().await;
        let e = wait_state(&mut p.b_rx, State::Down, Duration::from_secs(1)).await;
        assert_eq!(e.diag, Diag::NeighborSignaledDown);
    });
}

#[test]
fn interval_change_runs_a_poll_sequence_and_stays_up() {
    in_private_netns("interval_change_runs_a_poll_sequence", || async {
        let mut p = pair_up(A, B, fast(), fast()).await;
        let polls = p.a.status()[0].polls_sent;
        let finals = p.b.status()[0].finals_sent;
        p.a.set_config(
            0,
            Config {
                desired_min_tx: Duration::from_millis(50),
                required_min_rx: Duration::from_millis(70),
                detect_mult: 5,
            },
        );
        eventually("the Poll Sequence ends", Duration::from_secs(1), || {
            let a = &p.a.status()[0];
            a.polls_sent > polls && !a.polling
        })
        .await;
        let (sa, sb) = (&p.a.status()[0], &p.b.status()[0]);
        assert!(sb.finals_sent > finals);
        assert_eq!(sa.tx_interval_us, 50_000);
        assert_eq!(sa.detection_time_us, Some(3 * 70_000));
        assert_eq!(sb.tx_interval_us, 70_000);
        assert_eq!(sb.detection_time_us, Some(5 * 50_000));
        assert_eq!(sb.remote_detect_mult, 5);
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(p.a_rx.try_recv().is_err(), "no state change");
        assert!(p.b_rx.try_recv().is_err(), "no state change");
    });
}

#[test]
fn bad_packets_are_discarded_by_reason() {
    in_private_netns("bad_packets_are_discarded_by_reason", || async {
        let mut p = pair_up(A, B, fast(), fast()).await;
        let a_disc = p.a.status()[0].local_discriminator;
        let b_disc = p.b.status()[0].local_discriminator;
        let to_a = SocketAddr::new(A, bfd::CONTROL_PORT);
        let from = |src: IpAddr, ttl: u32| {
            let s = UdpSocket::bind(SocketAddr::new(src, 0)).unwrap();
            s.set_ttl(ttl).unwrap();
            s
        };
        let good = bfd::ControlPacket {
            state: State::Down,
            my_disc: b_disc,
            your_disc: a_disc,
            desired_min_tx_us: 20_000,
            required_min_rx_us: 20_000,
            ..Default::default()
        };
        // Each would take a Down if accepted.
        from(B, 64).send_to(&good.encode(), to_a).unwrap();
        from(B, 255).send_to(&good.encode()[..10], to_a).unwrap();
        let mut v2 = good.encode();
        v2[0] = 2 << 5;
        from(B, 255).send_to(&v2, to_a).unwrap();
        let wrong = bfd::ControlPacket {
            your_disc: a_disc ^ 0x5555,
            ..good
        };
        from(B, 255).send_to(&wrong.encode(), to_a).unwrap();
        let mut auth = good.encode().to_vec();
        auth[1] |= 0x04;
        auth[3] = 28;
        auth.extend_from_slice(&[1, 4, 0, 0]);
        from(B, 255).send_to(&auth, to_a).unwrap();
        // From an address with no session: right discriminator, wrong peer;
        // and no discriminator at all.
        let c = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 3));
        from(c, 255).send_to(&good.encode(), to_a).unwrap();
        let zero = bfd::ControlPacket {
            your_disc: 0,
            ..good
        };
        from(c, 255).send_to(&zero.encode(), to_a).unwrap();
        eventually("every packet counted", Duration::from_secs(1), || {
            p.a.status()[0].discarded == 6 && p.a.unattributed_discards().total() == 1
        })
        .await;
        let d = serde_json::to_value(p.a.status()[0].discards).unwrap();
        assert_eq!(
            d,
            serde_json::json!({"ttl": 1, "truncated": 1, "version": 1,
                "unknown_discriminator": 1, "authentication": 1, "address_mismatch": 1})
        );
        use bfd::session::DiscardReason;
        assert_eq!(p.a.unattributed_discards().get(DiscardReason::NoSession), 1);
        assert_eq!(p.a.status()[0].state, State::Up);
        assert!(p.a_rx.try_recv().is_err(), "no state change");
    });
}

#[test]
fn ipv6_and_interface_binding() {
    in_private_netns("ipv6_and_interface_binding", || async {
        let (a6, b6): (IpAddr, IpAddr) = ("fd00::1".parse().unwrap(), "fd00::2".parse().unwrap());
        let (a, mut a_rx) = Bfd::start(vec![PeerConfig {
            ifname: Some("lo".into()),
            ..peer("a6", a6, b6, fast())
        }])
        .unwrap();
        let (b, mut b_rx) = Bfd::start(vec![peer("b6", b6, a6, fast())]).unwrap();
        wait_state(&mut a_rx, State::Up, Duration::from_secs(5)).await;
        wait_state(&mut b_rx, State::Up, Duration::from_secs(5)).await;
        assert_eq!(a.status()[0].ifname.as_deref(), Some("lo"));
        drop(b);
        let e = wait_state(&mut a_rx, State::Down, Duration::from_secs(2)).await;
        assert_eq!(e.diag, Diag::ControlDetectionTimeExpired);
    });
}

#[test]
fn several_sessions_share_one_receive_socket() {
    in_private_netns("several_sessions_share_one_receive_socket", || async {
        let c = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 3));
        let (hub, mut hub_rx) =
            Bfd::start(vec![peer("to-b", A, B, fast()), peer("to-c", A, c, fast())]).unwrap();
        let (_b, mut b_rx) = Bfd::start(vec![peer("b", B, A, fast())]).unwrap();
        let (_c, mut c_rx) = Bfd::start(vec![peer("c", c, A, fast())]).unwrap();
        let mut up = [false; 2];
        while up != [true; 2] {
            let e = next_event(&mut hub_rx, Duration::from_secs(5)).await;
            if e.to == State::Up {
                up[e.session] = true;
            }
        }
        wait_state(&mut b_rx, State::Up, Duration::from_secs(5)).await;
        wait_state(&mut c_rx, State::Up, Duration::from_secs(5)).await;
        let st = hub.status();
        assert_ne!(st[0].source_port, st[1].source_port);
        assert_ne!(st[0].local_discriminator, st[1].local_discriminator);
        assert_eq!(hub.len(), 2);
    });
}

#[test]
fn start_refuses_bad_configs() {
    // Outside a runtime.
    assert!(Bfd::start(vec![]).is_err());
    in_private_netns("start_refuses_bad_configs", || async {
        let bad = Config {
            detect_mult: 0,
            ..fast()
        };
        assert!(Bfd::start(vec![peer("x", A, B, bad)]).is_err());
        let v6: IpAddr = "fd00::2".parse().unwrap();
        assert!(Bfd::start(vec![peer("x", A, v6, fast())]).is_err());
        assert!(Bfd::start(vec![peer("x", A, B, fast()), peer("y", A, B, fast())]).is_err());
        let nodev = PeerConfig {
            ifname: Some("nosuchdev0".into()),
            ..peer("x", A, B, fast())
        };
        let e = Bfd::start(vec![nodev]).err().unwrap();
        assert!(format!("{e:#}").contains("nosuchdev0"), "{e:#}");
        // An address not on this host cannot be bound.
        let far = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
        assert!(Bfd::start(vec![peer("x", far, B, fast())]).is_err());
        let (empty, _rx) = Bfd::start(vec![]).unwrap();
        assert!(empty.is_empty() && empty.status().is_empty());
    });
}
