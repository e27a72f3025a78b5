//! FSM tests through the event interface only: every timer path, OPEN
//! negotiation and its refusals, prefix-limit teardown and come-back.

use super::*;
use crate::wire::{MpReach, Origin, update::attr};
use ipnet::{Ipv4Net, Ipv6Net};

pub(super) const PEER_AS: u32 = 65001;
/// The connection most tests use: ours.
pub(super) const O: Conn = Conn::Outgoing;

pub(super) fn cfg() -> Config {
    Config::new(Ipv4Addr::new(192, 0, 2, 1), PEER_AS)
}

pub(super) fn s(n: u64) -> Duration {
    Duration::from_secs(n)
}

pub(super) fn peer_open(hold: u16) -> Open {
    Open::new(
        PEER_AS,
        hold,
        Ipv4Addr::new(192, 0, 2, 2),
        &[(1, 1), (2, 1)],
    )
}

pub(super) fn msg(m: Message) -> Event {
    Event::MessageReceived(O, m)
}

pub(super) fn open_sent(c: Config, now: Instant) -> Session {
    let mut ses = Session::new(c);
    ses.handle(Event::ManualStart, now);
    ses.handle(Event::TcpConnected(O), now);
    assert_eq!(ses.state(), State::OpenSent);
    ses
}

pub(super) fn established_with(c: Config, hold: u16, now: Instant) -> Session {
    let mut ses = open_sent(c, now);
    ses.handle(msg(Message::Open(peer_open(hold))), now);
    let a = ses.handle(msg(Message::Keepalive), now);
    assert!(
        a.iter().any(|a| matches!(a, Action::Established(_))),
        "{a:?}"
    );
    assert_eq!(ses.state(), State::Established);
    ses
}

fn established(now: Instant) -> Session {
    established_with(cfg(), 90, now)
}

pub(super) fn notification(actions: &[Action]) -> Option<&Notification> {
    actions.iter().find_map(|a| match a {
        Action::Send(O, Message::Notification(n)) => Some(n),
        _ => None,
    })
}

pub(super) fn armed(actions: &[Action], t: Timer) -> Option<Duration> {
    actions.iter().find_map(|a| match a {
        Action::ArmTimer(k, d) if *k == t => Some(*d),
        _ => None,
    })
}

pub(super) fn down_reason(actions: &[Action]) -> Option<&DownReason> {
    actions.iter().find_map(|a| match a {
        Action::SessionDown(r) => Some(r),
        _ => None,
    })
}

/// Torn down to Idle with this NOTIFICATION, and a restart scheduled.
fn assert_reset(ses: &Session, a: &[Action], code: u8, subcode: u8) -> Duration {
    let n = notification(a).unwrap_or_else(|| panic!("no NOTIFICATION in {a:?}"));
    assert_eq!((n.code, n.subcode), (code, subcode), "{n:?}");
    let send = a
        .iter()
        .position(|x| matches!(x, Action::Send(..)))
        .unwrap();
    let close = a
        .iter()
        .position(|x| *x == Action::Close(O))
        .expect("Close");
    assert!(send < close, "NOTIFICATION goes out before Close");
    assert!(down_reason(a).is_some());
    assert_eq!(ses.state(), State::Idle);
    assert!(ses.negotiated().is_none());
    armed(a, Timer::IdleHold).expect("automatic restart scheduled")
}

pub(super) fn update_v4(prefixes: &[&str]) -> Update {
    Update {
        attributes: vec![
            PathAttribute::Origin(Origin::Igp),
            PathAttribute::AsPath(vec![AsSegment::Sequence(vec![PEER_AS])]),
            PathAttribute::NextHop(Ipv4Addr::new(192, 0, 2, 2)),
        ],
        nlri: prefixes
            .iter()
            .map(|p| p.parse::<Ipv4Net>().unwrap())
            .collect(),
        ..Update::default()
    }
}

fn update_v6(prefixes: &[&str]) -> Update {
    Update {
        attributes: vec![
            PathAttribute::MpReach(MpReach {
                next_hop: "2001:db8::2".parse().unwrap(),
                link_local: None,
                nlri: prefixes
                    .iter()
                    .map(|p| p.parse::<Ipv6Net>().unwrap())
                    .collect(),
            }),
            PathAttribute::Origin(Origin::Igp),
            PathAttribute::AsPath(vec![AsSegment::Sequence(vec![PEER_AS])]),
        ],
        ..Update::default()
    }
}

// ------------------------------------------------------------ start / connect

#[test]
fn active_start_connects_and_arms_connect_retry() {
    let mut ses = Session::new(cfg());
    assert!(!ses.accepts_connection(Conn::Incoming));
    let a = ses.handle(Event::ManualStart, Instant::now());
    assert_eq!(
        a,
        vec![
            Action::Connect,
            Action::ArmTimer(Timer::ConnectRetry, s(30))
        ]
    );
    assert_eq!(ses.state(), State::Connect);
    assert!(ses.accepts_connection(Conn::Incoming));
}

/// RFC 4271 event 4: the session waits for the peer's connection, and
/// opens its own only when ConnectRetry expires.
#[test]
fn a_passive_start_waits_for_the_peer_then_connects_on_connect_retry() {
    let now = Instant::now();
    let mut ses = Session::new(cfg());
    let a = ses.handle(Event::ManualStartPassive, now);
    assert_eq!(a, vec![Action::ArmTimer(Timer::ConnectRetry, s(30))]);
    assert_eq!(ses.state(), State::Active);
    assert!(ses.accepts_connection(Conn::Incoming));
    let a = ses.handle(Event::TimerExpired(Timer::ConnectRetry), now);
    assert_eq!(
        a,
        vec![
            Action::Connect,
            Action::ArmTimer(Timer::ConnectRetry, s(30))
        ]
    );
    assert_eq!(ses.state(), State::Connect);
    // Started already: a second start of either kind changes nothing.
    assert!(ses.handle(Event::ManualStartPassive, now).is_empty());
    assert!(ses.handle(Event::ManualStart, now).is_empty());
}

#[test]
fn connect_retry_expiry_in_connect_retries_the_connection() {
    let now = Instant::now();
    let mut ses = Session::new(cfg());
    ses.handle(Event::ManualStart, now);
    let a = ses.handle(Event::TimerExpired(Timer::ConnectRetry), now);
    assert_eq!(
        a,
        vec![
            Action::Close(O),
            Action::Connect,
            Action::ArmTimer(Timer::ConnectRetry, s(30))
        ]
    );
    assert_eq!(ses.state(), State::Connect);
}

#[test]
fn connect_retry_expiry_in_active_goes_back_to_connect() {
    let now = Instant::now();
    let mut ses = Session::new(cfg());
    ses.handle(Event::ManualStart, now);
    assert!(ses.handle(Event::TcpFailed, now).is_empty());
    assert_eq!(ses.state(), State::Active);
    assert!(
        ses.accepts_connection(Conn::Incoming),
        "still accepts the peer's connection"
    );
    let a = ses.handle(Event::TimerExpired(Timer::ConnectRetry), now);
    assert_eq!(
        a,
        vec![
            Action::Connect,
            Action::ArmTimer(Timer::ConnectRetry, s(30))
        ]
    );
    assert_eq!(ses.state(), State::Connect);
}

#[test]
fn passive_session_never_connects() {
    let now = Instant::now();
    let mut c = cfg();
    c.passive = true;
    let mut ses = Session::new(c);
    let a = ses.handle(Event::ManualStart, now);
    assert_eq!(a, vec![Action::ArmTimer(Timer::ConnectRetry, s(30))]);
    assert_eq!(ses.state(), State::Active);
    let a = ses.handle(Event::TimerExpired(Timer::ConnectRetry), now);
    assert_eq!(a, vec![Action::ArmTimer(Timer::ConnectRetry, s(30))]);
    assert_eq!(ses.state(), State::Active);
    // The peer connects to us: passive open.
    let a = ses.handle(Event::TcpConnected(O), now);
    assert!(matches!(&a[1], Action::Send(O, Message::Open(_))));
    assert_eq!(ses.state(), State::OpenSent);
}

#[test]
fn tcp_connected_sends_our_open_and_arms_large_hold() {
    let now = Instant::now();
    let mut ses = Session::new(cfg());
    ses.handle(Event::ManualStart, now);
    let a = ses.handle(Event::TcpConnected(O), now);
    assert_eq!(a[0], Action::CancelTimer(Timer::ConnectRetry));
    let Action::Send(O, Message::Open(o)) = &a[1] else {
        panic!("{a:?}")
    };
    assert_eq!((o.my_as, o.asn(), o.hold_time), (12076, 12076, 180));
    assert!(o.supports_family(1, 1) && o.supports_family(2, 1) && o.supports_route_refresh());
    assert_eq!(armed(&a, Timer::Hold), Some(s(240)));
    // The same direction again: no; the other direction: a second
    // connection, for collision detection (RFC 4271 §6.8).
    assert!(!ses.accepts_connection(O));
    assert!(ses.accepts_connection(Conn::Incoming));
}

#[test]
fn tcp_closed_in_open_sent_returns_to_active() {
    let now = Instant::now();
    let mut ses = open_sent(cfg(), now);
    let a = ses.handle(Event::TcpClosed(O), now);
    assert!(a.contains(&Action::Close(O)));
    assert_eq!(armed(&a, Timer::ConnectRetry), Some(s(30)));
    assert_eq!(ses.state(), State::Active);
}

// ------------------------------------------------------------ negotiation

#[test]
fn open_negotiation_takes_the_smaller_hold_time() {
    for (peer, hold, keepalive) in [(90, 90, 30), (240, 180, 60), (10, 10, 3), (65535, 180, 60)] {
        let now = Instant::now();
        let mut ses = open_sent(cfg(), now);
        let a = ses.handle(msg(Message::Open(peer_open(peer))), now);
        assert_eq!(a[0], Action::Send(O, Message::Keepalive));
        assert_eq!(armed(&a, Timer::Hold), Some(s(hold)));
        assert_eq!(armed(&a, Timer::Keepalive), Some(s(keepalive)));
        assert_eq!(ses.state(), State::OpenConfirm);
        let a = ses.handle(msg(Message::Keepalive), now);
        let neg = Negotiated {
            peer_as: PEER_AS,
            peer_id: Ipv4Addr::new(192, 0, 2, 2),
            hold_time: hold as u16,
            keepalive: keepalive as u16,
            ipv4_unicast: true,
            ipv6_unicast: true,
            route_refresh: true,
            four_octet_as: true,
            graceful_restart: None,
        };
        assert!(a.contains(&Action::Established(neg)), "{a:?}");
        assert_eq!(ses.as_width(), AsWidth::Four);
        assert_eq!(ses.state(), State::Established);
    }
}

#[test]
fn hold_time_zero_means_no_hold_timer_and_no_keepalives() {
    let now = Instant::now();
    let mut ses = open_sent(cfg(), now);
    let a = ses.handle(msg(Message::Open(peer_open(0))), now);
    assert_eq!(armed(&a, Timer::Hold), None);
    assert_eq!(armed(&a, Timer::Keepalive), None);
    assert!(
        a.contains(&Action::CancelTimer(Timer::Hold)),
        "the 240 s OPEN hold stops"
    );
    let a = ses.handle(msg(Message::Keepalive), now);
    assert_eq!(armed(&a, Timer::Hold), None);
    assert_eq!(ses.negotiated().unwrap().hold_time, 0);
}

#[test]
fn unacceptable_hold_time_is_refused() {
    // 1-2 s per RFC 4271; 3-9 s under the ExpressRoute floor of 10 s.
    for hold in [1, 2, 3, 9] {
        let now = Instant::now();
        let mut ses = open_sent(cfg(), now);
        let a = ses.handle(msg(Message::Open(peer_open(hold))), now);
        assert_reset(&ses, &a, 2, 6);
    }
}

#[test]
fn bad_peer_as_is_refused() {
    let now = Instant::now();
    let mut ses = open_sent(cfg(), now);
    let mut o = peer_open(90);
    o = Open::new(65002, o.hold_time, o.bgp_id, &[(1, 1)]);
    let a = ses.handle(msg(Message::Open(o)), now);
    assert_reset(&ses, &a, 2, 2);
    assert!(matches!(
        down_reason(&a),
        Some(DownReason::LocalNotification(n)) if n.subcode == 2
    ));
}

#[test]
fn four_octet_peer_as_through_as_trans() {
    let now = Instant::now();
    let mut c = cfg();
    c.peer_as = 4_200_000_000;
    let mut ses = open_sent(c, now);
    let o = Open::new(4_200_000_000, 90, Ipv4Addr::new(192, 0, 2, 2), &[(1, 1)]);
    assert_eq!(o.my_as, crate::wire::AS_TRANS);
    ses.handle(msg(Message::Open(o)), now);
    assert_eq!(ses.state(), State::OpenConfirm);
    let neg = ses.negotiated().unwrap();
    assert_eq!(neg.peer_as, 4_200_000_000);
    assert!(neg.ipv4_unicast && !neg.ipv6_unicast);
}

/// A peer OPEN without the 4-octet AS capability (an RFC 6793 "OLD"
/// speaker), My AS `my_as`.
fn two_octet_open(my_as: u16) -> Open {
    let mut o = peer_open(90);
    o.my_as = my_as;
    o.capabilities
        .retain(|c| !matches!(c, Capability::FourOctetAs(_)));
    o
}

/// RFC 6793 with a 2-octet-AS peer: accepted, and its UPDATEs are read in
/// 2-octet form with AS4_PATH merged; what we send is encoded for it.
#[test]
fn peer_without_four_octet_as_speaks_two_octet_asns() {
    let now = Instant::now();
    let mut ses = open_sent(cfg(), now);
    assert_eq!(
        ses.as_width(),
        AsWidth::Four,
        "until the OPEN says otherwise"
    );
    let a = ses.handle(msg(Message::Open(two_octet_open(PEER_AS as u16))), now);
    assert!(notification(&a).is_none(), "{a:?}");
    assert_eq!(ses.state(), State::OpenConfirm);
    let a = ses.handle(msg(Message::Keepalive), now);
    let Some(Action::Established(neg)) = a.iter().find(|a| matches!(a, Action::Established(_)))
    else {
        panic!("{a:?}")
    };
    assert_eq!((neg.peer_as, neg.four_octet_as), (PEER_AS, false));
    assert_eq!(ses.as_width(), AsWidth::Two);
    // Its UPDATE on the wire: AS_PATH [65001, AS_TRANS] in 2-octet form,
    // AS4_PATH [65001, 4200000001]: the route carries the real path.
    let real = vec![AsSegment::Sequence(vec![PEER_AS, 4_200_000_001])];
    let mut u = update_v4(&["10.0.0.0/8"]);
    u.attributes[1] = PathAttribute::AsPath(real.clone());
    let bytes = Message::Update(u).encode_with(AsWidth::Two).unwrap();
    assert!(
        bytes.windows(3).any(|w| w == [0xc0, attr::AS4_PATH, 10]),
        "AS4_PATH on the wire"
    );
    let a = ses.handle(Event::BytesReceived(O, bytes), now);
    let Some(Action::RoutesReceived(got)) =
        a.iter().find(|a| matches!(a, Action::RoutesReceived(_)))
    else {
        panic!("{a:?}")
    };
    assert!(!got.treated_as_withdraw(), "{got:?}");
    assert_eq!(
        got.attribute(attr::AS_PATH),
        Some(&PathAttribute::AsPath(real))
    );
    assert_eq!(ses.prefix_count(AFI_IPV4), 1);
}

/// A customer ASN above 65535 cannot be a 2-octet speaker's: without the
/// capability its My AS (AS_TRANS, or anything else) is Bad Peer AS.
#[test]
fn four_octet_customer_asn_with_a_two_octet_peer_is_bad_peer_as() {
    for my_as in [crate::wire::AS_TRANS, 65001, 0x2c2f] {
        let now = Instant::now();
        let mut c = cfg();
        c.peer_as = 4_200_000_000;
        let mut ses = open_sent(c, now);
        let a = ses.handle(msg(Message::Open(two_octet_open(my_as))), now);
        assert_reset(&ses, &a, 2, 2);
    }
    // With the capability the same peer is fine (AS_TRANS in My AS).
    let now = Instant::now();
    let mut c = cfg();
    c.peer_as = 4_200_000_000;
    let mut ses = open_sent(c, now);
    let o = Open::new(4_200_000_000, 90, Ipv4Addr::new(192, 0, 2, 2), &[(1, 1)]);
    ses.handle(msg(Message::Open(o)), now);
    assert_eq!(ses.state(), State::OpenConfirm);
}

/// Our OPEN: AS 12076 fits in My AS; a 4-octet local AS would travel as
/// AS_TRANS, the capability carrying the real one either way.
#[test]
fn our_open_carries_as_trans_only_when_our_as_does_not_fit() {
    let ses = Session::new(cfg());
    let o = ses.open_message();
    assert_eq!((o.my_as, o.four_octet_as()), (12076, Some(12076)));
    let mut c = cfg();
    c.local_as = 4_200_000_000;
    let o = Session::new(c).open_message();
    assert_eq!(
        (o.my_as, o.four_octet_as()),
        (crate::wire::AS_TRANS, Some(4_200_000_000))
    );
}

#[test]
fn bad_bgp_identifier_is_refused() {
    let now = Instant::now();
    let mut ses = open_sent(cfg(), now);
    let mut o = peer_open(90);
    o.bgp_id = Ipv4Addr::UNSPECIFIED;
    let a = ses.handle(msg(Message::Open(o)), now);
    assert_reset(&ses, &a, 2, 3);
}

#[test]
fn wrong_version_on_the_wire_is_refused() {
    let now = Instant::now();
    let mut ses = open_sent(cfg(), now);
    let mut b = Message::Open(peer_open(90)).encode().unwrap();
    b[19] = 3;
    let a = ses.handle(Event::BytesReceived(O, b), now);
    assert_reset(&ses, &a, 2, 1);
    assert_eq!(notification(&a).unwrap().data, vec![0, 4]);
}

// ------------------------------------------------------------ timers

#[test]
fn hold_expiry_in_open_sent_open_confirm_and_established() {
    let now = Instant::now();
    let mut ses = open_sent(cfg(), now);
    let a = ses.handle(Event::TimerExpired(Timer::Hold), now);
    assert_reset(&ses, &a, 4, 0);
    assert_eq!(down_reason(&a), Some(&DownReason::HoldTimerExpired));

    let mut ses = open_sent(cfg(), now);
    ses.handle(msg(Message::Open(peer_open(90))), now);
    assert_eq!(ses.state(), State::OpenConfirm);
    let a = ses.handle(Event::TimerExpired(Timer::Hold), now);
    assert_reset(&ses, &a, 4, 0);

    let mut ses = established(now);
    let a = ses.handle(Event::TimerExpired(Timer::Hold), now);
    assert_reset(&ses, &a, 4, 0);
    for t in [Timer::ConnectRetry, Timer::Hold, Timer::Keepalive] {
        assert!(a.contains(&Action::CancelTimer(t)));
    }
}

#[test]
fn keepalive_expiry_sends_keepalive_and_rearms() {
    let now = Instant::now();
    let mut ses = open_sent(cfg(), now);
    ses.handle(msg(Message::Open(peer_open(90))), now);
    let a = ses.handle(Event::TimerExpired(Timer::Keepalive), now);
    assert_eq!(
        a,
        vec![
            Action::Send(O, Message::Keepalive),
            Action::ArmTimer(Timer::Keepalive, s(30))
        ]
    );
    ses.handle(msg(Message::Keepalive), now);
    let a = ses.handle(Event::TimerExpired(Timer::Keepalive), now);
    assert_eq!(
        a,
        vec![
            Action::Send(O, Message::Keepalive),
            Action::ArmTimer(Timer::Keepalive, s(30))
        ]
    );
    // Stale expiry after going down does nothing.
    ses.handle(Event::ManualStop, now);
    assert!(
        ses.handle(Event::TimerExpired(Timer::Keepalive), now)
            .is_empty()
    );
}

#[test]
fn keepalive_and_update_restart_the_hold_timer() {
    let now = Instant::now();
    let mut ses = established(now);
    let a = ses.handle(msg(Message::Keepalive), now);
    assert_eq!(a, vec![Action::ArmTimer(Timer::Hold, s(90))]);
    let a = ses.handle(msg(Message::Update(update_v4(&["10.0.0.0/8"]))), now);
    assert_eq!(a[0], Action::ArmTimer(Timer::Hold, s(90)));
    assert!(matches!(&a[1], Action::RoutesReceived(u) if u.nlri.len() == 1));
}

#[test]
fn idle_hold_backoff_doubles_and_restarts() {
    let mut now = Instant::now();
    let mut ses = Session::new(cfg());
    ses.handle(Event::ManualStart, now);
    let mut delays = Vec::new();
    for _ in 0..8 {
        ses.handle(Event::TcpConnected(O), now);
        let a = ses.handle(Event::TimerExpired(Timer::Hold), now);
        delays.push(assert_reset(&ses, &a, 4, 0));
        // Events other than the IdleHold expiry leave Idle alone.
        assert!(
            ses.handle(Event::TimerExpired(Timer::ConnectRetry), now)
                .is_empty()
        );
        now += delays[delays.len() - 1];
        let a = ses.handle(Event::TimerExpired(Timer::IdleHold), now);
        assert_eq!(a[0], Action::Connect, "automatic restart");
        assert_eq!(ses.state(), State::Connect);
    }
    assert_eq!(delays, [5, 10, 20, 40, 80, 160, 300, 300].map(s));
}

#[test]
fn backoff_resets_after_a_stable_session() {
    let t0 = Instant::now();
    let mut ses = Session::new(cfg());
    ses.handle(Event::ManualStart, t0);
    for _ in 0..3 {
        ses.handle(Event::TcpConnected(O), t0);
        ses.handle(Event::TimerExpired(Timer::Hold), t0);
        ses.handle(Event::TimerExpired(Timer::IdleHold), t0);
    }
    // Next would be 40 s; but the session now stays up for 10 minutes.
    ses.handle(Event::TcpConnected(O), t0);
    ses.handle(msg(Message::Open(peer_open(90))), t0);
    ses.handle(msg(Message::Keepalive), t0);
    let a = ses.handle(Event::TcpClosed(O), t0 + s(600));
    assert_eq!(down_reason(&a), Some(&DownReason::ConnectionClosed));
    assert_eq!(armed(&a, Timer::IdleHold), Some(s(5)));
}

#[test]
fn manual_stop_sends_cease_and_disables_restart() {
    let now = Instant::now();
    let mut ses = established(now);
    let a = ses.handle(Event::ManualStop, now);
    let n = notification(&a).unwrap();
    assert_eq!((n.code, n.subcode), (6, 2));
    assert_eq!(down_reason(&a), Some(&DownReason::ManualStop));
    assert_eq!(armed(&a, Timer::IdleHold), None);
    assert!(
        ses.handle(Event::TimerExpired(Timer::IdleHold), now)
            .is_empty()
    );
    assert_eq!(ses.state(), State::Idle);
    // Stop while only connecting: no NOTIFICATION (no OPEN was sent).
    let mut ses = Session::new(cfg());
    ses.handle(Event::ManualStart, now);
    let a = ses.handle(Event::ManualStop, now);
    assert!(notification(&a).is_none() && a.contains(&Action::Close(O)));
}

#[test]
fn lowering_the_prefix_limit_below_what_the_peer_holds_tears_down() {
    let now = Instant::now();
    let mut ses = established(now);
    let u = Update {
        attributes: vec![
            PathAttribute::Origin(Origin::Igp),
            PathAttribute::AsPath(vec![AsSegment::Sequence(vec![65001])]),
            PathAttribute::NextHop(Ipv4Addr::new(192, 0, 2, 1)),
        ],
        nlri: vec!["10.0.0.0/8".parse().unwrap(), "11.0.0.0/8".parse().unwrap()],
        ..Default::default()
    };
    ses.handle(msg(Message::Update(u)), now);
    // Raised, or lowered to what it holds: nothing happens.
    for limit in [10, 2] {
        let a = ses.handle(
            Event::SetMaxPrefixes {
                v4: Some(limit),
                v6: None,
            },
            now,
        );
        assert!(a.is_empty(), "{limit}: {a:?}");
        assert_eq!(ses.state(), State::Established);
    }
    let a = ses.handle(
        Event::SetMaxPrefixes {
            v4: Some(1),
            v6: None,
        },
        now,
    );
    let n = notification(&a).unwrap();
    assert_eq!((n.code, n.subcode), (6, 1));
    assert!(matches!(
        down_reason(&a),
        Some(DownReason::PrefixLimit(l)) if l.limit == 1
    ));
    // The new limit stays for the next session.
    assert_eq!(ses.config().max_prefixes_v4, Some(1));
}

#[test]
fn bfd_down_sends_cease_bfd_down_and_waits_for_a_manual_start() {
    let now = Instant::now();
    let mut ses = established(now);
    let a = ses.handle(Event::BfdDown, now);
    let n = notification(&a).unwrap();
    assert_eq!((n.code, n.subcode), (6, 10));
    assert_eq!(down_reason(&a), Some(&DownReason::BfdDown));
    assert_held_until_manual_start(&mut ses, &a, Event::BfdDown, now);
}

#[test]
fn carrier_lost_drops_the_session_silently_and_waits_for_a_manual_start() {
    let now = Instant::now();
    let mut ses = established(now);
    let a = ses.handle(Event::CarrierLost, now);
    assert!(notification(&a).is_none(), "nothing can cross a dead link");
    assert_eq!(down_reason(&a), Some(&DownReason::CarrierLost));
    assert_held_until_manual_start(&mut ses, &a, Event::CarrierLost, now);
}

/// After `a`, the actions of a session stopped by `event` (BFD down or
/// carrier lost): closed, held in Idle with no automatic restart; started
/// again only by its owner (when BFD or carrier is back), it connects at
/// once; the same event while only connecting just stops it (no OPEN was
/// sent, so no NOTIFICATION).
fn assert_held_until_manual_start(ses: &mut Session, a: &[Action], event: Event, now: Instant) {
    assert!(a.contains(&Action::Close(O)));
    assert_eq!(armed(a, Timer::IdleHold), None, "no automatic restart");
    assert!(
        ses.handle(Event::TimerExpired(Timer::IdleHold), now + s(600))
            .is_empty()
    );
    assert_eq!(ses.state(), State::Idle);
    let a = ses.handle(Event::ManualStart, now + s(1));
    assert_eq!(a[0], Action::Connect);
    let a = ses.handle(event, now + s(2));
    assert!(notification(&a).is_none() && a.contains(&Action::Close(O)));
    assert_eq!(ses.state(), State::Idle);
}

#[test]
fn admin_reset_comes_back_after_the_initial_delay() {
    let now = Instant::now();
    let mut ses = established(now);
    let a = ses.handle(Event::AdminReset, now);
    assert_eq!(assert_reset(&ses, &a, 6, 4), s(5));
    let a = ses.handle(Event::TimerExpired(Timer::IdleHold), now);
    assert_eq!(a[0], Action::Connect);
}

// ------------------------------------------------------------ messages

#[test]
fn unexpected_messages_are_fsm_errors() {
    let now = Instant::now();
    let mut ses = open_sent(cfg(), now);
    let a = ses.handle(msg(Message::Keepalive), now);
    assert_reset(&ses, &a, 5, 1);

    let mut ses = open_sent(cfg(), now);
    ses.handle(msg(Message::Open(peer_open(90))), now);
    let a = ses.handle(msg(Message::Update(update_v4(&[]))), now);
    assert_reset(&ses, &a, 5, 2);

    let mut ses = established(now);
    let a = ses.handle(msg(Message::Open(peer_open(90))), now);
    assert_reset(&ses, &a, 5, 3);
}

#[test]
fn peer_notification_takes_the_session_down_without_reply() {
    let now = Instant::now();
    let mut ses = established(now);
    let n = Notification::new(6, 2, vec![]);
    let a = ses.handle(msg(Message::Notification(n.clone())), now);
    assert!(notification(&a).is_none());
    assert_eq!(down_reason(&a), Some(&DownReason::PeerNotification(n)));
    assert_eq!(armed(&a, Timer::IdleHold), Some(s(5)));
}

#[test]
fn byte_stream_is_reassembled_across_reads() {
    let now = Instant::now();
    let mut ses = open_sent(cfg(), now);
    let mut stream = Message::Open(peer_open(90)).encode().unwrap();
    stream.extend(Message::Keepalive.encode().unwrap());
    stream.extend(
        Message::Update(update_v4(&["10.1.0.0/16"]))
            .encode()
            .unwrap(),
    );
    let mut actions = Vec::new();
    for chunk in stream.chunks(7) {
        actions.extend(ses.handle(Event::BytesReceived(O, chunk.to_vec()), now));
    }
    assert_eq!(ses.state(), State::Established);
    let routes: Vec<_> = actions
        .iter()
        .filter(|a| matches!(a, Action::RoutesReceived(_)))
        .collect();
    assert_eq!(routes.len(), 1);
    assert_eq!(ses.prefix_count(AFI_IPV4), 1);
}

#[test]
fn decode_error_in_stream_sends_its_notification() {
    let now = Instant::now();
    let mut ses = established(now);
    let mut b = Message::Keepalive.encode().unwrap();
    b[0] = 0;
    let a = ses.handle(Event::BytesReceived(O, b), now);
    assert_reset(&ses, &a, 1, 1);
}

#[test]
fn malformed_attribute_is_a_withdrawal_not_a_reset() {
    let now = Instant::now();
    let mut ses = established(now);
    ses.handle(msg(Message::Update(update_v4(&["10.1.0.0/16"]))), now);
    assert_eq!(ses.prefix_count(AFI_IPV4), 1);
    // Same prefix again with MED of length 3: RFC 7606 treat-as-withdraw.
    let mut b = Message::Update(update_v4(&["10.1.0.0/16"]))
        .encode()
        .unwrap();
    let at = 23 + usize::from(u16::from_be_bytes([b[21], b[22]]));
    b.splice(at..at, [0x80, 4, 3, 0, 0, 1]);
    let alen = u16::from_be_bytes([b[21], b[22]]) + 6;
    b[21..23].copy_from_slice(&alen.to_be_bytes());
    let len = b.len() as u16;
    b[16..18].copy_from_slice(&len.to_be_bytes());
    let a = ses.handle(Event::BytesReceived(O, b), now);
    assert!(notification(&a).is_none(), "{a:?}");
    assert_eq!(ses.state(), State::Established);
    let Some(Action::RoutesReceived(u)) = a.iter().find(|a| matches!(a, Action::RoutesReceived(_)))
    else {
        panic!("{a:?}")
    };
    assert!(u.treated_as_withdraw());
    assert_eq!(ses.prefix_count(AFI_IPV4), 0);
}

#[test]
fn ebgp_as_path_must_start_with_peer_as() {
    let now = Instant::now();
    let mut ses = established(now);
    let mut u = update_v4(&["10.2.0.0/16"]);
    u.attributes[1] = PathAttribute::AsPath(vec![AsSegment::Sequence(vec![65099, PEER_AS])]);
    let a = ses.handle(msg(Message::Update(u)), now);
    let Some(Action::RoutesReceived(u)) = a.get(1) else {
        panic!("{a:?}")
    };
    assert!(u.treated_as_withdraw());
    assert_eq!(u.issues[0].type_code, attr::AS_PATH);
    assert_eq!(u.withdrawn, vec!["10.2.0.0/16".parse::<Ipv4Net>().unwrap()]);
}

#[test]
fn route_refresh_both_ways() {
    let now = Instant::now();
    let mut ses = established(now);
    let rr = RouteRefresh {
        afi: 2,
        reserved: 0,
        safi: 1,
    };
    let a = ses.handle(msg(Message::RouteRefresh(rr)), now);
    assert_eq!(a, vec![Action::RouteRefreshRequested { afi: 2, safi: 1 }]);
    // A family we don't run is ignored (RFC 2918 §4).
    let a = ses.handle(
        msg(Message::RouteRefresh(RouteRefresh {
            afi: 1,
            reserved: 0,
            safi: 128,
        })),
        now,
    );
    assert!(a.is_empty());
    let a = ses.handle(Event::RequestRouteRefresh { afi: 2, safi: 1 }, now);
    assert_eq!(a, vec![Action::Send(O, Message::RouteRefresh(rr))]);
}

#[test]
fn send_update_only_when_established_and_restarts_keepalive() {
    let now = Instant::now();
    let mut ses = open_sent(cfg(), now);
    assert!(
        ses.handle(Event::SendUpdate(update_v4(&["10.0.0.0/8"])), now)
            .is_empty()
    );
    let mut ses = established(now);
    let a = ses.handle(Event::SendUpdate(update_v4(&["10.0.0.0/8"])), now);
    assert!(matches!(a[0], Action::Send(O, Message::Update(_))));
    assert_eq!(a[1], Action::ArmTimer(Timer::Keepalive, s(30)));
}

// ------------------------------------------------------------ prefix limit

#[test]
fn prefix_limit_tears_down_and_comes_back() {
    let t0 = Instant::now();
    let mut c = cfg();
    c.max_prefixes_v4 = Some(2);
    let mut ses = established_with(c.clone(), 90, t0);
    // Two prefixes, announced twice: still two.
    for _ in 0..2 {
        let a = ses.handle(
            msg(Message::Update(update_v4(&["10.0.0.0/8", "11.0.0.0/8"]))),
            t0,
        );
        assert!(a.iter().any(|a| matches!(a, Action::RoutesReceived(_))));
    }
    assert_eq!(ses.prefix_count(AFI_IPV4), 2);
    // A withdrawal makes room for another.
    let w = Update {
        withdrawn: vec!["11.0.0.0/8".parse().unwrap()],
        ..Update::default()
    };
    ses.handle(msg(Message::Update(w)), t0);
    ses.handle(msg(Message::Update(update_v4(&["12.0.0.0/8"]))), t0);
    assert_eq!(ses.prefix_count(AFI_IPV4), 2);
    // The third distinct prefix crosses the limit.
    let a = ses.handle(msg(Message::Update(update_v4(&["13.0.0.0/8"]))), t0);
    let delay = assert_reset(&ses, &a, 6, 1);
    assert_eq!(notification(&a).unwrap().data, vec![0, 1, 1, 0, 0, 0, 2]);
    assert!(!a.iter().any(|a| matches!(a, Action::RoutesReceived(_))));
    assert!(matches!(
        down_reason(&a),
        Some(DownReason::PrefixLimit(PrefixLimitExceeded {
            afi: 1,
            safi: 1,
            limit: 2
        }))
    ));
    assert_eq!(ses.prefix_count(AFI_IPV4), 0);
    assert_eq!(delay, s(5));

    // IdleHold expiry: automatic restart, and the session comes back.
    let t1 = t0 + delay;
    let a = ses.handle(Event::TimerExpired(Timer::IdleHold), t1);
    assert_eq!(a[0], Action::Connect);
    ses.handle(Event::TcpConnected(O), t1);
    ses.handle(msg(Message::Open(peer_open(90))), t1);
    let a = ses.handle(msg(Message::Keepalive), t1);
    assert!(a.iter().any(|a| matches!(a, Action::Established(_))));
    let a = ses.handle(msg(Message::Update(update_v4(&["10.0.0.0/8"]))), t1);
    assert!(a.iter().any(|a| matches!(a, Action::RoutesReceived(_))));

    // Exceeding again soon after: the backoff has doubled.
    let a = ses.handle(
        msg(Message::Update(update_v4(&["11.0.0.0/8", "12.0.0.0/8"]))),
        t1,
    );
    assert_eq!(assert_reset(&ses, &a, 6, 1), s(10));
}

#[test]
fn prefix_limit_is_per_family() {
    let now = Instant::now();
    let mut c = cfg();
    c.max_prefixes_v4 = Some(1);
    c.max_prefixes_v6 = Some(2);
    let mut ses = established_with(c, 90, now);
    ses.handle(msg(Message::Update(update_v4(&["10.0.0.0/8"]))), now);
    let a = ses.handle(
        msg(Message::Update(update_v6(&[
            "2001:db8:1::/48",
            "2001:db8:2::/48",
        ]))),
        now,
    );
    assert!(notification(&a).is_none());
    assert_eq!(
        (ses.prefix_count(AFI_IPV4), ses.prefix_count(AFI_IPV6)),
        (1, 2)
    );
    let a = ses.handle(msg(Message::Update(update_v6(&["2001:db8:3::/48"]))), now);
    assert_reset(&ses, &a, 6, 1);
    assert_eq!(notification(&a).unwrap().data, vec![0, 2, 1, 0, 0, 0, 2]);
}

// ------------------------------------------------------------ random walks

/// 20k random events on both connections: the FSM never panics and its
/// invariants hold after every step (a deterministic stand-in for property
/// testing). A model of the transport tracks which connections are open:
/// nothing is sent on a connection that is not, and a NOTIFICATION is
/// always followed by closing that connection.
#[test]
fn random_event_sequences_keep_invariants() {
    let mut seed = 0x1207_6bad_cafe_u64;
    let mut rnd = move |n: usize| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed % n as u64) as usize
    };
    let mut c = cfg();
    c.max_prefixes_v4 = Some(3);
    let mut ses = Session::new(c);
    let mut now = Instant::now();
    let mut open: Vec<Conn> = Vec::new();
    let (mut established, mut limits, mut collisions) = (0, 0, 0);
    for step in 0..20_000 {
        let k = [Conn::Outgoing, Conn::Incoming][rnd(2)];
        // Mostly the event that moves the session forward, sometimes anything.
        let main = ses.connection().unwrap_or(k);
        let on = |m| Event::MessageReceived(main, m);
        let happy = match ses.state() {
            _ if rnd(5) == 0 => None,
            State::Idle => Some(Event::TimerExpired(Timer::IdleHold)),
            State::Connect | State::Active => Some(Event::TcpConnected(k)),
            // Collisions: the other direction connects, and OPENs come on
            // either connection.
            _ if rnd(6) == 0 => Some(Event::TcpConnected(main.other())),
            State::OpenSent => Some(Event::MessageReceived(k, Message::Open(peer_open(90)))),
            State::OpenConfirm if rnd(3) == 0 => {
                Some(Event::MessageReceived(k, Message::Open(peer_open(90))))
            }
            State::OpenConfirm => Some(on(Message::Keepalive)),
            State::Established if rnd(6) == 0 => {
                Some(Event::MessageReceived(k, Message::Open(peer_open(90))))
            }
            State::Established => {
                let p = format!("10.{}.0.0/16", rnd(8));
                let mut u = update_v4(&[&p]);
                if rnd(2) == 0 {
                    u.withdrawn = vec![format!("10.{}.0.0/16", rnd(8)).parse().unwrap()];
                }
                Some(on(Message::Update(u)))
            }
        };
        let hold = [0, 2, 9, 10, 90, 180, 300][rnd(7)];
        let peer_open_from = |id| {
            let mut o = peer_open(hold);
            o.bgp_id = id;
            Event::MessageReceived(k, Message::Open(o))
        };
        let event = happy.unwrap_or_else(|| match rnd(20) {
            0 => Event::ManualStart,
            1 if rnd(10) == 0 => Event::ManualStop,
            2 | 17 => Event::TcpConnected(k),
            3 => Event::TcpFailed,
            4 => Event::TcpClosed(k),
            5 => Event::TimerExpired(
                [
                    Timer::ConnectRetry,
                    Timer::Hold,
                    Timer::Keepalive,
                    Timer::IdleHold,
                    Timer::CollisionHold,
                ][rnd(5)],
            ),
            6 => peer_open_from(Ipv4Addr::new(192, 0, 2, 2)),
            7 | 18 => peer_open_from(Ipv4Addr::new(10, 0, 0, 1)),
            8 | 9 => Event::MessageReceived(k, Message::Keepalive),
            10 => {
                let p = format!("10.{}.0.0/16", rnd(6));
                Event::MessageReceived(k, Message::Update(update_v4(&[&p])))
            }
            11 => Event::MessageReceived(
                k,
                Message::Notification(Notification::new(6, rnd(9) as u8, vec![])),
            ),
            12 => Event::AdminReset,
            13 => Event::SendUpdate(update_v4(&["192.0.2.0/24"])),
            14 => {
                let mut b = Message::Keepalive.encode().unwrap();
                let i = rnd(b.len());
                b[i] ^= 1 << rnd(8);
                Event::BytesReceived(k, b)
            }
            15 if rnd(10) == 0 => Event::BfdDown,
            16 => Event::SetMaxPrefixes {
                v4: Some(1 + rnd(3) as u32),
                v6: None,
            },
            _ => Event::TimerExpired(Timer::IdleHold),
        });
        // The transport hands in only connections the session accepts, and
        // reports only on connections it has.
        match &event {
            Event::TcpConnected(c) if !ses.accepts_connection(*c) => continue,
            Event::TcpConnected(c) => open.push(*c),
            Event::TcpClosed(c) | Event::BytesReceived(c, _) | Event::MessageReceived(c, _)
                if !open.contains(c) =>
            {
                continue;
            }
            Event::TcpClosed(c) => open.retain(|o| o != c),
            _ => {}
        }
        now += Duration::from_millis(rnd(5000) as u64);
        let before = ses.state();
        let a = ses.handle(event, now);
        let after = ses.state();
        let ctx = || format!("step {step}: {before:?} -> {after:?}: {a:?}");

        for (i, action) in a.iter().enumerate() {
            match action {
                Action::Send(c, m) => {
                    assert!(open.contains(c), "send on a closed connection: {}", ctx());
                    if matches!(m, Message::Notification(_)) {
                        assert_eq!(a.get(i + 1), Some(&Action::Close(*c)), "{}", ctx());
                    }
                    if matches!(m, Message::Notification(n) if n.subcode == 7 && n.code == 6) {
                        collisions += 1;
                    }
                }
                Action::Close(c) => open.retain(|o| o != c),
                _ => {}
            }
        }
        established += a
            .iter()
            .filter(|a| matches!(a, Action::Established(_)))
            .count();
        limits += a
            .iter()
            .filter(|a| matches!(a, Action::SessionDown(DownReason::PrefixLimit(_))))
            .count();
        let downs = a
            .iter()
            .filter(|a| matches!(a, Action::SessionDown(_)))
            .count();
        assert_eq!(
            downs,
            usize::from(before != State::Idle && after == State::Idle),
            "{}",
            ctx()
        );
        match after {
            State::Idle | State::Connect | State::Active => {
                assert!(open.is_empty(), "connections left open: {}", ctx());
                assert_eq!(ses.connection(), None, "{}", ctx());
            }
            _ => {
                let c = ses.connection().expect("a connection from OpenSent on");
                assert!(open.contains(&c), "{}", ctx());
                assert!(open.len() <= 2, "{}", ctx());
            }
        }
        if after == State::Idle {
            assert!(ses.negotiated().is_none(), "{}", ctx());
            assert_eq!(ses.prefix_count(AFI_IPV4), 0, "{}", ctx());
        }
        if after == State::Established || after == State::OpenConfirm {
            assert!(ses.negotiated().is_some(), "{}", ctx());
        }
        assert!(ses.prefix_count(AFI_IPV4) <= 3, "{}", ctx());
        if armed(&a, Timer::IdleHold).is_some() {
            assert_eq!(after, State::Idle, "{}", ctx());
        }
    }
    // The walk gets deep enough to matter.
    assert!(
        established > 1000 && limits > 100 && collisions > 100,
        "established={established} limits={limits} collisions={collisions}"
    );
}

#[test]
fn looped_routes_are_withdrawn_and_not_counted_against_the_limit() {
    let t0 = Instant::now();
    let mut c = cfg();
    c.max_prefixes_v4 = Some(1);
    let mut ses = established_with(c.clone(), 90, t0);
    ses.handle(msg(Message::Update(update_v4(&["10.0.0.0/8"]))), t0);
    // Our own AS further down the path: a loop, withdrawn, not counted.
    let mut looped = update_v4(&["11.0.0.0/8"]);
    looped.attributes[1] =
        PathAttribute::AsPath(vec![AsSegment::Sequence(vec![PEER_AS, c.local_as])]);
    let a = ses.handle(msg(Message::Update(looped)), t0);
    assert!(notification(&a).is_none());
    assert_eq!(ses.prefix_count(AFI_IPV4), 1);
    let Some(Action::RoutesReceived(u)) = a.iter().find(|a| matches!(a, Action::RoutesReceived(_)))
    else {
        panic!("no RoutesReceived: {a:?}");
    };
    assert!(u.treated_as_withdraw());
    assert!(u.nlri.is_empty());
    assert_eq!(u.withdrawn, vec!["11.0.0.0/8".parse::<Ipv4Net>().unwrap()]);
}
