//! Loopback-only tests of the tokio transport: TCP-MD5 handshakes and two
//! sessions bringing each other up over a real socket.

use bgp::fsm::{Config, Event, Session};
use bgp::transport::{self, Input, PeerConfig, SessionEvent};
use bgp::wire::{AsSegment, Message, Origin, PathAttribute, Update};
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio::time::timeout;

const LO1: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 1);
const LO2: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);

fn addr(ip: Ipv4Addr, port: u16) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(ip), port)
}

#[tokio::test]
async fn md5_same_key_connects_and_carries_data() {
    let listener =
        transport::listen(addr(LO1, 0), &[(IpAddr::V4(LO2), b"s3cret".to_vec())]).unwrap();
    let port = listener.local_addr().unwrap().port();
    let client = timeout(
        Duration::from_secs(3),
        transport::connect(Some(addr(LO2, 0)), addr(LO1, port), Some(b"s3cret")),
    )
    .await
    .expect("handshake within 3 s")
    .expect("connect");
    let (mut server, from) = listener.accept().await.unwrap();
    assert_eq!(
        from.ip(),
        IpAddr::V4(LO2),
        "bound to the chosen local address"
    );
    let mut client = client;
    let ka = Message::Keepalive.encode().unwrap();
    client.write_all(&ka).await.unwrap();
    let mut got = [0u8; 19];
    server.read_exact(&mut got).await.unwrap();
    assert_eq!(Message::decode(&got).unwrap(), Message::Keepalive);
}

#[tokio::test]
async fn md5_key_mismatch_never_connects() {
    let listener =
        transport::listen(addr(LO1, 0), &[(IpAddr::V4(LO2), b"right".to_vec())]).unwrap();
    let port = listener.local_addr().unwrap().port();
    // Wrong key, then no key at all: the kernel drops the unverifiable SYNs.
    for key in [Some(&b"wrong"[..]), None] {
        let r = timeout(
            Duration::from_secs(3),
            transport::connect(Some(addr(LO2, 0)), addr(LO1, port), key),
        )
        .await;
        assert!(!matches!(r, Ok(Ok(_))), "connected with key {key:?}");
    }
}

/// Same over IPv6 loopback: exercises the sockaddr_in6 form of the key.
#[tokio::test]
async fn md5_over_ipv6_loopback() {
    let lo6: SocketAddr = "[::1]:0".parse().unwrap();
    let listener = match transport::listen(lo6, &[(lo6.ip(), b"v6key".to_vec())]) {
        Ok(l) => l,
        Err(e) if e.kind() == std::io::ErrorKind::AddrNotAvailable => {
            eprintln!("no IPv6 loopback on this machine; skipped");
            return;
        }
        Err(e) => panic!("{e}"),
    };
    let server = listener.local_addr().unwrap();
    let ok = timeout(
        Duration::from_secs(3),
        transport::connect(None, server, Some(b"v6key")),
    )
    .await;
    assert!(matches!(ok, Ok(Ok(_))), "{ok:?}");
    let bad = timeout(
        Duration::from_secs(3),
        transport::connect(None, server, Some(b"other")),
    )
    .await;
    assert!(!matches!(bad, Ok(Ok(_))), "connected with the wrong key");
}

fn update(prefix: &str, asn: u32) -> Update {
    Update {
        attributes: vec![
            PathAttribute::Origin(Origin::Igp),
            PathAttribute::AsPath(vec![AsSegment::Sequence(vec![asn])]),
            PathAttribute::NextHop(LO2),
        ],
        nlri: vec![prefix.parse().unwrap()],
        ..Update::default()
    }
}

async fn next_event(rx: &mut mpsc::Receiver<SessionEvent>) -> SessionEvent {
    timeout(Duration::from_secs(5), rx.recv())
        .await
        .expect("event within 5 s")
        .expect("driver alive")
}

/// MSEE (AS 12076, passive, listening on 127.0.0.1) and a customer router
/// (AS 65001, active, from 127.0.0.2) with an MD5 key: both reach
/// Established, a route crosses, and a stop is seen by the other side.
#[tokio::test]
async fn two_sessions_establish_over_loopback_with_md5() {
    let key = b"expressroute".to_vec();
    let listener = transport::listen(addr(LO1, 0), &[(IpAddr::V4(LO2), key.clone())]).unwrap();
    let port = listener.local_addr().unwrap().port();

    let mut msee_cfg = Config::new(LO1, 65001);
    msee_cfg.passive = true;
    msee_cfg.hold_time = 30;
    let (msee_tx, msee_in) = mpsc::channel(8);
    let (msee_out, mut msee_rx) = mpsc::channel(8);
    let msee_peer = PeerConfig {
        peer: addr(LO2, transport::BGP_PORT),
        local: Some(addr(LO1, port)),
        md5_key: Some(key.clone()),
    };
    tokio::spawn(transport::run(
        Session::new(msee_cfg),
        msee_peer,
        msee_in,
        msee_out,
    ));
    let routes = std::sync::Arc::new(std::sync::Mutex::new(HashMap::from([(
        IpAddr::V4(LO2),
        msee_tx.clone(),
    )])));
    let acceptor = tokio::spawn(transport::accept_loop(listener, routes));

    let mut cust_cfg = Config::new(LO2, 12076);
    cust_cfg.local_as = 65001;
    let (cust_tx, cust_in) = mpsc::channel(8);
    let (cust_out, mut cust_rx) = mpsc::channel(8);
    let cust_peer = PeerConfig {
        peer: addr(LO1, port),
        local: Some(addr(LO2, 0)),
        md5_key: Some(key),
    };
    tokio::spawn(transport::run(
        Session::new(cust_cfg),
        cust_peer,
        cust_in,
        cust_out,
    ));

    msee_tx
        .send(Input::Event(Event::ManualStart))
        .await
        .unwrap();
    cust_tx
        .send(Input::Event(Event::ManualStart))
        .await
        .unwrap();

    let SessionEvent::Established(n) = next_event(&mut msee_rx).await else {
        panic!("MSEE not established")
    };
    assert_eq!((n.peer_as, n.hold_time, n.keepalive), (65001, 30, 10));
    assert!(n.ipv4_unicast && n.ipv6_unicast && n.route_refresh);
    let SessionEvent::Established(n) = next_event(&mut cust_rx).await else {
        panic!("customer not established")
    };
    assert_eq!(n.peer_as, 12076);

    cust_tx
        .send(Input::Event(Event::SendUpdate(update(
            "10.20.0.0/16",
            65001,
        ))))
        .await
        .unwrap();
    let SessionEvent::Routes(u) = next_event(&mut msee_rx).await else {
        panic!("no routes")
    };
    assert_eq!(u.nlri, vec!["10.20.0.0/16".parse().unwrap()]);
    assert!(u.issues.is_empty());

    cust_tx.send(Input::Event(Event::ManualStop)).await.unwrap();
    let SessionEvent::Down(r) = next_event(&mut msee_rx).await else {
        panic!("MSEE did not see the stop")
    };
    assert!(
        matches!(r, bgp::fsm::DownReason::PeerNotification(ref n) if n.code == 6 && n.subcode == 2),
        "{r:?}"
    );
    acceptor.abort();
}

async fn read_msg(s: &mut tokio::net::TcpStream) -> Message {
    let mut hdr = [0u8; 19];
    timeout(Duration::from_secs(5), s.read_exact(&mut hdr))
        .await
        .expect("message within 5 s")
        .unwrap();
    let len = bgp::wire::frame_len(&hdr).unwrap().unwrap();
    let mut buf = hdr.to_vec();
    buf.resize(len, 0);
    s.read_exact(&mut buf[19..]).await.unwrap();
    Message::decode(&buf).unwrap()
}

fn spawn_session(
    cfg: Config,
    peer: PeerConfig,
) -> (mpsc::Sender<Input>, mpsc::Receiver<SessionEvent>) {
    let (tx, inbox) = mpsc::channel(8);
    let (out, rx) = mpsc::channel(8);
    tokio::spawn(transport::run(Session::new(cfg), peer, inbox, out));
    (tx, rx)
}

/// Connect fails (nobody listens), the session waits in Active, and the
/// ConnectRetry timer makes it try again once the peer is there.
#[tokio::test]
async fn driver_retries_connect_until_the_peer_listens() {
    let port = {
        let l = std::net::TcpListener::bind(addr(LO1, 0)).unwrap();
        l.local_addr().unwrap().port()
    };
    let mut cfg = Config::new(LO2, 12076);
    cfg.local_as = 65001;
    cfg.connect_retry = Duration::from_millis(500);
    let peer = PeerConfig {
        peer: addr(LO1, port),
        local: None,
        md5_key: None,
    };
    let (tx, _rx) = spawn_session(cfg, peer);
    tx.send(Input::Event(Event::ManualStart)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(800)).await;
    let listener = transport::listen(addr(LO1, port), &[]).unwrap();
    let (mut s, _) = timeout(Duration::from_secs(3), listener.accept())
        .await
        .expect("retried within 3 s")
        .unwrap();
    let Message::Open(o) = read_msg(&mut s).await else {
        panic!("expected OPEN")
    };
    assert_eq!(o.asn(), 65001);
}

/// Real timers through the driver: keepalives every hold/3 and, once the
/// peer goes silent, NOTIFICATION Hold Timer Expired and SessionDown.
#[tokio::test]
async fn driver_keepalives_then_hold_timer_expiry() {
    let listener = tokio::net::TcpListener::bind(addr(LO1, 0)).await.unwrap();
    let mut cfg = Config::new(LO1, 65001);
    cfg.hold_time = 3;
    cfg.min_hold_time = 3;
    let peer = PeerConfig {
        peer: listener.local_addr().unwrap(),
        local: None,
        md5_key: None,
    };
    let (tx, mut rx) = spawn_session(cfg, peer);
    tx.send(Input::Event(Event::ManualStart)).await.unwrap();
    let (mut s, _) = timeout(Duration::from_secs(3), listener.accept())
        .await
        .unwrap()
        .unwrap();
    let Message::Open(o) = read_msg(&mut s).await else {
        panic!("expected OPEN")
    };
    assert_eq!((o.asn(), o.hold_time), (12076, 3));
    let ours = bgp::wire::Open::new(65001, 30, LO2, &[(1, 1)]);
    s.write_all(&Message::Open(ours).encode().unwrap())
        .await
        .unwrap();
    s.write_all(&Message::Keepalive.encode().unwrap())
        .await
        .unwrap();
    assert_eq!(read_msg(&mut s).await, Message::Keepalive);
    let SessionEvent::Established(n) = next_event(&mut rx).await else {
        panic!("not established")
    };
    assert_eq!((n.hold_time, n.keepalive), (3, 1));
    // Silent from now on: about two keepalives, then the hold timer fires.
    let started = tokio::time::Instant::now();
    let mut keepalives = 0;
    let n = loop {
        match read_msg(&mut s).await {
            Message::Keepalive => keepalives += 1,
            Message::Notification(n) => break n,
            m => panic!("unexpected {m:?}"),
        }
    };
    assert_eq!((n.code, n.subcode), (4, 0));
    assert!(keepalives >= 1, "keepalive timer re-armed");
    assert!(started.elapsed() >= Duration::from_millis(2500));
    assert_eq!(
        next_event(&mut rx).await,
        SessionEvent::Down(bgp::fsm::DownReason::HoldTimerExpired)
    );
    // The driver closed the connection after the NOTIFICATION.
    let mut rest = Vec::new();
    let closed = timeout(Duration::from_secs(2), s.read_to_end(&mut rest)).await;
    assert!(matches!(closed, Ok(Ok(0))), "{closed:?}");
}

/// One side of `both_active_sessions_collide_and_come_up_once`: a session
/// at `ip` listening on its own port and connecting to `peer`.
struct Side {
    tx: mpsc::Sender<Input>,
    rx: mpsc::Receiver<SessionEvent>,
    acceptor: tokio::task::JoinHandle<std::io::Result<()>>,
}

fn side(
    ip: Ipv4Addr,
    asn: u32,
    listener: tokio::net::TcpListener,
    peer: SocketAddr,
    peer_as: u32,
) -> Side {
    let mut cfg = Config::new(ip, peer_as);
    cfg.local_as = asn;
    cfg.hold_time = 30;
    cfg.connect_retry = Duration::from_secs(1);
    let (tx, rx) = spawn_session(
        cfg,
        PeerConfig {
            peer,
            local: Some(addr(ip, 0)),
            md5_key: None,
        },
    );
    let table = std::sync::Arc::new(std::sync::Mutex::new(HashMap::from([(
        peer.ip(),
        tx.clone(),
    )])));
    let acceptor = tokio::spawn(transport::accept_loop(listener, table));
    Side { tx, rx, acceptor }
}

/// Both ends active and listening, started at the same instant, 12 times
/// (loopback makes the two connections cross): every run comes up exactly
/// once and stays up, whichever connection the collision keeps (RFC 4271
/// §6.8), in both orders of BGP Identifiers.
#[tokio::test]
async fn both_active_sessions_collide_and_come_up_once() {
    for run in 0..12 {
        // Identifiers in both orders: 127.0.0.1 < 127.0.0.2, and the
        // roles swapped every other run.
        let (a_ip, b_ip) = if run % 2 == 0 { (LO1, LO2) } else { (LO2, LO1) };
        let la = tokio::net::TcpListener::bind(addr(a_ip, 0)).await.unwrap();
        let lb = tokio::net::TcpListener::bind(addr(b_ip, 0)).await.unwrap();
        let (pa, pb) = (la.local_addr().unwrap(), lb.local_addr().unwrap());
        let mut a = side(a_ip, 12076, la, pb, 65001);
        let mut b = side(b_ip, 65001, lb, pa, 12076);
        let (sa, sb) = (
            a.tx.send(Input::Event(Event::ManualStart)),
            b.tx.send(Input::Event(Event::ManualStart)),
        );
        let (ra, rb) = tokio::join!(sa, sb);
        ra.unwrap();
        rb.unwrap();
        for (name, s) in [("a", &mut a), ("b", &mut b)] {
            match next_event(&mut s.rx).await {
                SessionEvent::Established(_) => {}
                e => panic!("run {run}: {name} reported {e:?} before Established"),
            }
        }
        // Nothing else happens: no session went down afterwards.
        for (name, s) in [("a", &mut a), ("b", &mut b)] {
            let more = timeout(Duration::from_millis(250), s.rx.recv()).await;
            assert!(more.is_err(), "run {run}: {name} then reported {more:?}");
        }
        a.acceptor.abort();
        b.acceptor.abort();
    }
}

/// A peer without the 4-octet AS capability (RFC 6793): the driver encodes
/// what it sends in 2-octet ASNs, with AS4_PATH for the real path, and the
/// peer's 2-octet UPDATE arrives with its AS4_PATH merged.
#[tokio::test]
async fn driver_speaks_two_octet_asns_to_a_peer_without_the_capability() {
    let listener = tokio::net::TcpListener::bind(addr(LO1, 0)).await.unwrap();
    let cfg = Config::new(LO1, 65001);
    let peer = PeerConfig {
        peer: listener.local_addr().unwrap(),
        local: None,
        md5_key: None,
    };
    let (tx, mut rx) = spawn_session(cfg, peer);
    tx.send(Input::Event(Event::ManualStart)).await.unwrap();
    let (mut s, _) = timeout(Duration::from_secs(3), listener.accept())
        .await
        .unwrap()
        .unwrap();
    let Message::Open(o) = read_msg(&mut s).await else {
        panic!("expected OPEN")
    };
    assert_eq!((o.my_as, o.four_octet_as()), (12076, Some(12076)));
    let mut old = bgp::wire::Open::new(65001, 30, LO2, &[(1, 1)]);
    old.capabilities
        .retain(|c| !matches!(c, bgp::wire::Capability::FourOctetAs(_)));
    s.write_all(&Message::Open(old).encode().unwrap())
        .await
        .unwrap();
    s.write_all(&Message::Keepalive.encode().unwrap())
        .await
        .unwrap();
    assert_eq!(read_msg(&mut s).await, Message::Keepalive);
    let SessionEvent::Established(n) = next_event(&mut rx).await else {
        panic!("not established")
    };
    assert!(!n.four_octet_as);
    // Ours: a path with a 4-octet AS (as Global Reach would carry).
    let path = vec![AsSegment::Sequence(vec![12076, 4_200_000_001])];
    let mut ours = update("10.9.0.0/16", 12076);
    ours.attributes[1] = PathAttribute::AsPath(path.clone());
    tx.send(Input::Event(Event::SendUpdate(ours.clone())))
        .await
        .unwrap();
    let mut hdr = [0u8; 19];
    timeout(Duration::from_secs(5), s.read_exact(&mut hdr))
        .await
        .unwrap()
        .unwrap();
    let len = bgp::wire::frame_len(&hdr).unwrap().unwrap();
    let mut wire = hdr.to_vec();
    wire.resize(len, 0);
    s.read_exact(&mut wire[19..]).await.unwrap();
    assert_eq!(
        wire,
        Message::Update(ours)
            .encode_with(bgp::wire::AsWidth::Two)
            .unwrap()
    );
    assert!(
        wire.windows(6).any(|w| w == [0x40, 2, 6, 2, 2, 0x2f]),
        "2-octet AS_PATH"
    );
    // Theirs: AS_PATH [65001 AS_TRANS] + AS4_PATH [65001 4200000002].
    let mut theirs = update("172.16.0.0/16", 65001);
    let real = vec![AsSegment::Sequence(vec![65001, 4_200_000_002])];
    theirs.attributes[1] = PathAttribute::AsPath(real.clone());
    let bytes = Message::Update(theirs)
        .encode_with(bgp::wire::AsWidth::Two)
        .unwrap();
    s.write_all(&bytes).await.unwrap();
    let SessionEvent::Routes(got) = next_event(&mut rx).await else {
        panic!("no routes")
    };
    assert_eq!(
        got.attribute(bgp::wire::update::attr::AS_PATH),
        Some(&PathAttribute::AsPath(real))
    );
}

/// Issue 21: a peer that completes the handshake, keeps sending
/// KEEPALIVEs but never reads. The driver's writes fill the socket; the
/// session must still go down when its hold timer says so, not wait on
/// the write for ever.
#[tokio::test]
async fn a_peer_that_never_reads_is_torn_down_by_the_hold_timer() {
    let sock = tokio::net::TcpSocket::new_v4().unwrap();
    // Small buffers: the peer's window closes after a few KB.
    sock.set_recv_buffer_size(4096).unwrap();
    sock.bind(addr(LO1, 0)).unwrap();
    let listener = sock.listen(1).unwrap();
    let mut cfg = Config::new(LO1, 65001);
    cfg.hold_time = 3;
    cfg.min_hold_time = 3;
    let peer = PeerConfig {
        peer: listener.local_addr().unwrap(),
        local: None,
        md5_key: None,
    };
    let (tx, mut rx) = spawn_session(cfg, peer);
    tx.send(Input::Event(Event::ManualStart)).await.unwrap();
    let (mut s, _) = timeout(Duration::from_secs(3), listener.accept())
        .await
        .unwrap()
        .unwrap();
    let Message::Open(_) = read_msg(&mut s).await else {
        panic!("expected OPEN")
    };
    let ours = bgp::wire::Open::new(65001, 3, LO2, &[(1, 1)]);
    s.write_all(&Message::Open(ours).encode().unwrap())
        .await
        .unwrap();
    s.write_all(&Message::Keepalive.encode().unwrap())
        .await
        .unwrap();
    assert_eq!(read_msg(&mut s).await, Message::Keepalive);
    let SessionEvent::Established(_) = next_event(&mut rx).await else {
        panic!("not established")
    };
    // From now on the peer only writes: a KEEPALIVE every 500 ms.
    let (rd, mut wr) = s.into_split();
    let keepalives = tokio::spawn(async move {
        let k = Message::Keepalive.encode().unwrap();
        while wr.write_all(&k).await.is_ok() {
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    });
    // 32 MB of UPDATEs, more than the socket buffers hold.
    let sender = tokio::spawn(async move {
        for i in 0..20_000u32 {
            let mut u = update("10.0.0.0/24", 65001);
            u.nlri = (0..400u32)
                .map(|j| {
                    let n = i * 400 + j;
                    format!("{}.{}.{}.0/24", 10 + (n >> 16), (n >> 8) & 255, n & 255)
                        .parse()
                        .unwrap()
                })
                .collect();
            if tx.send(Input::Event(Event::SendUpdate(u))).await.is_err() {
                return;
            }
        }
    });
    // The driver reads the KEEPALIVEs (and the hold timer restarts) until
    // its writes block: once the socket's send buffer (up to tcp_wmem's
    // maximum) is full, within a hold time.
    let down = timeout(Duration::from_secs(40), rx.recv())
        .await
        .expect("the session went down while its writes were blocked")
        .expect("driver alive");
    assert_eq!(
        down,
        SessionEvent::Down(bgp::fsm::DownReason::HoldTimerExpired)
    );
    drop(rd);
    keepalives.abort();
    sender.abort();
}

/// The peer's OPEN with the Graceful Restart capability for IPv4 unicast.
fn graceful_open(restart_time: u16, restarted: bool) -> bgp::wire::Open {
    let mut o = bgp::wire::Open::new(65001, 30, LO2, &[(1, 1)]);
    o.capabilities.push(bgp::wire::Capability::GracefulRestart(
        bgp::wire::GracefulRestart {
            restart_state: restarted,
            restart_time,
            families: vec![bgp::wire::GrFamily {
                afi: 1,
                safi: 1,
                forwarding_state: restarted,
            }],
        },
    ));
    o
}

/// Accepts the session's connection and brings it to Established with a
/// graceful-restart peer; returns the socket and the MSEE's OPEN.
async fn graceful_peer_up(
    listener: &tokio::net::TcpListener,
    rx: &mut mpsc::Receiver<SessionEvent>,
    restart_time: u16,
    restarted: bool,
) -> (tokio::net::TcpStream, bgp::wire::Open) {
    let (mut s, _) = timeout(Duration::from_secs(5), listener.accept())
        .await
        .expect("connection within 5 s")
        .unwrap();
    let Message::Open(ours) = read_msg(&mut s).await else {
        panic!("expected OPEN")
    };
    let theirs = graceful_open(restart_time, restarted);
    s.write_all(&Message::Open(theirs).encode().unwrap())
        .await
        .unwrap();
    s.write_all(&Message::Keepalive.encode().unwrap())
        .await
        .unwrap();
    assert_eq!(read_msg(&mut s).await, Message::Keepalive);
    let SessionEvent::Established(n) = next_event(rx).await else {
        panic!("not established")
    };
    assert_eq!(
        n.graceful_restart.map(|g| g.restart_time),
        Some(restart_time)
    );
    (s, ours)
}

fn graceful_msee(listener: &tokio::net::TcpListener) -> (Config, PeerConfig) {
    let mut cfg = Config::new(LO1, 65001);
    cfg.ipv6_unicast = false;
    cfg.idle_hold_initial = Duration::from_millis(100);
    cfg.graceful_restart = Some(bgp::fsm::GracefulRestartConfig::default());
    let peer = PeerConfig {
        peer: listener.local_addr().unwrap(),
        local: None,
        md5_key: None,
    };
    (cfg, peer)
}

/// Graceful restart over a real socket: our OPEN advertises it, our
/// End-of-RIB follows the initial routes; the peer's connection resets,
/// its routes are kept stale, and once it is back its End-of-RIB removes
/// what it did not announce again.
#[tokio::test]
async fn driver_keeps_a_restarting_peers_routes_until_its_end_of_rib() {
    let listener = tokio::net::TcpListener::bind(addr(LO1, 0)).await.unwrap();
    let (cfg, peer) = graceful_msee(&listener);
    let (tx, mut rx) = spawn_session(cfg, peer);
    tx.send(Input::Event(Event::ManualStart)).await.unwrap();
    let (mut s, ours) = graceful_peer_up(&listener, &mut rx, 60, false).await;
    let gr = ours
        .graceful_restart()
        .expect("our OPEN has the capability");
    assert_eq!((gr.restart_time, gr.restart_state), (120, false));
    // Our initial routes, then the marker.
    tx.send(Input::Event(Event::SendUpdate(update(
        "10.9.0.0/16",
        12076,
    ))))
    .await
    .unwrap();
    tx.send(Input::Event(Event::InitialUpdateDone))
        .await
        .unwrap();
    assert!(matches!(read_msg(&mut s).await, Message::Update(u) if !u.nlri.is_empty()));
    let Message::Update(eor) = read_msg(&mut s).await else {
        panic!("expected End-of-RIB")
    };
    assert_eq!(eor.end_of_rib_family(), Some((1, 1)));
    // The peer's routes, then it dies (reset, no NOTIFICATION).
    s.write_all(
        &Message::Update(update("172.16.0.0/16", 65001))
            .encode()
            .unwrap(),
    )
    .await
    .unwrap();
    assert!(matches!(next_event(&mut rx).await, SessionEvent::Routes(_)));
    s.set_zero_linger().unwrap();
    drop(s);
    assert_eq!(
        next_event(&mut rx).await,
        SessionEvent::DownStale {
            reason: bgp::fsm::DownReason::ConnectionClosed,
            families: vec![(1, 1)],
            restart_time: Duration::from_secs(60),
        }
    );
    // Back (R and F bits): routes, End-of-RIB, and only then the purge.
    let (mut s, _) = graceful_peer_up(&listener, &mut rx, 60, true).await;
    s.write_all(
        &Message::Update(update("172.16.0.0/16", 65001))
            .encode()
            .unwrap(),
    )
    .await
    .unwrap();
    assert!(matches!(next_event(&mut rx).await, SessionEvent::Routes(_)));
    let marker = bgp::wire::Update::end_of_rib(1, 1).unwrap();
    s.write_all(&Message::Update(marker).encode().unwrap())
        .await
        .unwrap();
    assert_eq!(
        next_event(&mut rx).await,
        SessionEvent::EndOfRib { afi: 1, safi: 1 }
    );
    assert_eq!(
        next_event(&mut rx).await,
        SessionEvent::PurgeStale {
            afi: 1,
            safi: 1,
            reason: bgp::fsm::PurgeReason::EndOfRib
        }
    );
}

/// The restart timer through the driver: a peer that does not come back
/// within its Restart Time has its stale routes purged.
#[tokio::test]
async fn driver_purges_stale_routes_when_the_restart_time_runs_out() {
    let listener = tokio::net::TcpListener::bind(addr(LO1, 0)).await.unwrap();
    let (cfg, peer) = graceful_msee(&listener);
    let (tx, mut rx) = spawn_session(cfg, peer);
    tx.send(Input::Event(Event::ManualStart)).await.unwrap();
    let (s, _) = graceful_peer_up(&listener, &mut rx, 1, false).await;
    let lost = tokio::time::Instant::now();
    drop(s);
    drop(listener); // it does not come back: every connect fails
    assert!(matches!(
        next_event(&mut rx).await,
        SessionEvent::DownStale { .. }
    ));
    assert_eq!(
        next_event(&mut rx).await,
        SessionEvent::PurgeStale {
            afi: 1,
            safi: 1,
            reason: bgp::fsm::PurgeReason::RestartTimeExpired
        }
    );
    assert!(
        lost.elapsed() >= Duration::from_millis(900),
        "{:?}",
        lost.elapsed()
    );
}
