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
    let routes = HashMap::from([(IpAddr::V4(LO2), msee_tx.clone())]);
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
