//! Connection collision (RFC 4271 §6.8) through the event interface: a
//! second connection in OpenSent, OpenConfirm and Established, both orders
//! of BGP Identifiers, and what happens to the pending connection when it
//! or the session's connection goes away.

use super::collision::collision_winner;
use super::tests::{PEER_AS, armed, cfg, down_reason, peer_open, s};
use super::*;

const OUT: Conn = Conn::Outgoing;
const IN: Conn = Conn::Incoming;
/// Our identifier in `cfg()`.
const OURS: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
/// Identifiers above and below ours.
const HIGHER: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
const LOWER: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 9);

fn open_from(id: Ipv4Addr) -> Message {
    let mut o = peer_open(90);
    o.bgp_id = id;
    Message::Open(o)
}

fn on(c: Conn, m: Message) -> Event {
    Event::MessageReceived(c, m)
}

fn cease_7() -> Notification {
    Notification::new(6, 7, vec![])
}

/// The NOTIFICATION sent on `c`, if any.
fn sent_notification(a: &[Action], c: Conn) -> Option<&Notification> {
    a.iter().find_map(|x| match x {
        Action::Send(k, Message::Notification(n)) if *k == c => Some(n),
        _ => None,
    })
}

fn sent(a: &[Action], c: Conn, m: &Message) -> bool {
    a.contains(&Action::Send(c, m.clone()))
}

/// `c` was sent a NOTIFICATION `n` and then closed, in that order.
fn assert_closed_with(a: &[Action], c: Conn, n: &Notification) {
    let send = a
        .iter()
        .position(|x| *x == Action::Send(c, Message::Notification(n.clone())))
        .unwrap_or_else(|| panic!("no {n:?} on {c:?}: {a:?}"));
    let close = a
        .iter()
        .position(|x| *x == Action::Close(c))
        .unwrap_or_else(|| panic!("{c:?} not closed: {a:?}"));
    assert!(send < close, "NOTIFICATION before Close: {a:?}");
}

/// A session whose first connection `first` is in OpenSent.
fn open_sent_on(first: Conn, now: Instant) -> Session {
    let mut c = cfg();
    c.passive = first == IN;
    let mut ses = Session::new(c);
    ses.handle(Event::ManualStart, now);
    ses.handle(Event::TcpConnected(first), now);
    assert_eq!(
        (ses.state(), ses.connection()),
        (State::OpenSent, Some(first))
    );
    ses
}

/// `first` in OpenSent, then the other direction connects: our OPEN goes
/// out on it and its own hold timer starts.
fn with_second(first: Conn, now: Instant) -> Session {
    let mut ses = open_sent_on(first, now);
    let second = first.other();
    assert!(ses.accepts_connection(second));
    let a = ses.handle(Event::TcpConnected(second), now);
    assert!(
        matches!(&a[0], Action::Send(c, Message::Open(o)) if *c == second && o.asn() == 12076),
        "{a:?}"
    );
    assert_eq!(armed(&a, Timer::CollisionHold), Some(OPEN_HOLD_TIME));
    assert!(!a.iter().any(|x| matches!(x, Action::Close(_))), "{a:?}");
    assert!(!ses.accepts_connection(first) && !ses.accepts_connection(second));
    assert_eq!(ses.state(), State::OpenSent);
    ses
}

#[test]
fn the_higher_identifier_keeps_its_own_connection() {
    // RFC 4271 §6.8: compared as 4-octet unsigned integers (10.x < 192.x).
    assert_eq!(collision_winner(OURS, 12076, HIGHER, PEER_AS), IN);
    assert_eq!(collision_winner(OURS, 12076, LOWER, PEER_AS), OUT);
    assert_eq!(
        collision_winner(
            Ipv4Addr::new(128, 0, 0, 0),
            1,
            Ipv4Addr::new(127, 255, 255, 255),
            2
        ),
        OUT,
        "not compared as signed"
    );
    // RFC 6286 §2.3: equal identifiers, the larger AS keeps its connection.
    assert_eq!(collision_winner(OURS, 12076, OURS, 65001), IN);
    assert_eq!(collision_winner(OURS, 4_200_000_000, OURS, 65001), OUT);
}

/// The connection the identifiers keep: the peer's when its identifier is
/// higher.
fn winner_for(peer_id: Ipv4Addr) -> Conn {
    if peer_id == HIGHER { IN } else { OUT }
}

/// Our connection in OpenConfirm when the peer connects: on the peer's
/// OPEN there, the connection opened by the higher identifier stays, the
/// other gets Cease / Connection Collision Resolution; both orders of
/// identifiers.
#[test]
fn collision_in_open_confirm_keeps_the_higher_identifiers_connection() {
    let first = OUT;
    for peer_id in [HIGHER, LOWER] {
        let now = Instant::now();
        let second = first.other();
        let mut ses = open_sent_on(first, now);
        ses.handle(on(first, open_from(peer_id)), now);
        assert_eq!(ses.state(), State::OpenConfirm);
        let a = ses.handle(Event::TcpConnected(second), now);
        assert!(matches!(&a[0], Action::Send(c, Message::Open(_)) if *c == second));
        let a = ses.handle(on(second, open_from(peer_id)), now);
        let winner = winner_for(peer_id);
        let loser = winner.other();
        let ctx = format!("first {first:?}, peer id {peer_id}: {a:?}");
        assert_closed_with(&a, loser, &cease_7());
        assert_eq!(
            a.iter()
                .filter(|x| matches!(x, Action::Send(_, Message::Notification(_))))
                .count(),
            1,
            "{ctx}"
        );
        assert!(!a.contains(&Action::Close(winner)), "{ctx}");
        assert!(down_reason(&a).is_none(), "no session went down: {ctx}");
        assert_eq!(ses.state(), State::OpenConfirm, "{ctx}");
        assert_eq!(ses.connection(), Some(winner), "{ctx}");
        assert!(
            a.contains(&Action::CancelTimer(Timer::CollisionHold)),
            "{ctx}"
        );
        if winner == second {
            // The second connection's OPEN is accepted: KEEPALIVE on it.
            assert!(sent(&a, second, &Message::Keepalive), "{ctx}");
            assert_eq!(armed(&a, Timer::Hold), Some(s(90)), "{ctx}");
        }
        // The loser is gone: its late messages change nothing.
        assert!(ses.handle(on(loser, Message::Keepalive), now).is_empty());
        assert!(ses.handle(Event::TcpClosed(loser), now).is_empty());
        let a = ses.handle(on(winner, Message::Keepalive), now);
        assert!(
            a.iter()
                .any(|x| matches!(x, Action::Established(n) if n.peer_id == peer_id)),
            "{ctx}"
        );
        // The session runs on the winner from now on.
        let a = ses.handle(Event::TimerExpired(Timer::Keepalive), now);
        assert!(sent(&a, winner, &Message::Keepalive), "{ctx}");
    }
}

/// Both connections in OpenSent, the peer's OPEN first on the connection
/// the identifiers keep: it goes on to OpenConfirm (KEEPALIVE on it only);
/// the peer's OPEN on the other then closes that one.
#[test]
fn collision_in_open_sent_open_on_the_winner_first() {
    for first in [OUT, IN] {
        for peer_id in [HIGHER, LOWER] {
            let t0 = Instant::now();
            let (winner, loser) = (winner_for(peer_id), winner_for(peer_id).other());
            let mut ses = with_second(first, t0);
            let t1 = t0 + s(5);
            let a = ses.handle(on(winner, open_from(peer_id)), t1);
            let ctx = format!("first {first:?}, peer id {peer_id}: {a:?}");
            assert!(sent(&a, winner, &Message::Keepalive), "{ctx}");
            assert!(!a.iter().any(|x| matches!(x, Action::Close(_))), "{ctx}");
            assert_eq!(
                (ses.state(), ses.connection()),
                (State::OpenConfirm, Some(winner))
            );
            if winner != first {
                // The first connection keeps what is left of its OPEN hold.
                assert_eq!(armed(&a, Timer::CollisionHold), Some(OPEN_HOLD_TIME - s(5)));
            }
            let a = ses.handle(on(loser, open_from(peer_id)), t1);
            assert_closed_with(&a, loser, &cease_7());
            assert!(sent_notification(&a, winner).is_none(), "{a:?}");
            assert_eq!(
                (ses.state(), ses.connection()),
                (State::OpenConfirm, Some(winner))
            );
            let a = ses.handle(on(winner, Message::Keepalive), t1);
            assert!(
                a.iter().any(|x| matches!(x, Action::Established(_))),
                "{a:?}"
            );
        }
    }
}

/// Both connections in OpenSent, the peer's OPEN first on the connection
/// the identifiers close: it is held (no KEEPALIVE, so the peer cannot
/// become Established on it, and its later messages wait) until the OPEN
/// on the other one closes it.
#[test]
fn collision_in_open_sent_open_on_the_loser_first_is_held() {
    for first in [OUT, IN] {
        for peer_id in [HIGHER, LOWER] {
            let t0 = Instant::now();
            let (winner, loser) = (winner_for(peer_id), winner_for(peer_id).other());
            let mut ses = with_second(first, t0);
            let t1 = t0 + s(5);
            let a = ses.handle(on(loser, open_from(peer_id)), t1);
            let ctx = format!("first {first:?}, peer id {peer_id}: {a:?}");
            assert!(
                !a.iter()
                    .any(|x| matches!(x, Action::Send(..) | Action::Close(_))),
                "{ctx}"
            );
            assert_eq!(
                (ses.state(), ses.connection()),
                (State::OpenSent, Some(winner)),
                "{ctx}"
            );
            assert!(ses.negotiated().is_none(), "{ctx}");
            if loser == first {
                // Timers follow their connections.
                assert_eq!(armed(&a, Timer::Hold), Some(OPEN_HOLD_TIME - s(5)), "{ctx}");
                assert_eq!(
                    armed(&a, Timer::CollisionHold),
                    Some(OPEN_HOLD_TIME - s(5)),
                    "{ctx}"
                );
            }
            // The peer's KEEPALIVE on the held connection waits.
            assert!(ses.handle(on(loser, Message::Keepalive), t1).is_empty());
            let a = ses.handle(on(winner, open_from(peer_id)), t1);
            let ctx = format!("first {first:?}, peer id {peer_id}: {a:?}");
            assert_closed_with(&a, loser, &cease_7());
            assert!(sent(&a, winner, &Message::Keepalive), "{ctx}");
            assert!(
                !a.iter().any(|x| matches!(x, Action::Established(_))),
                "{ctx}"
            );
            assert_eq!(
                (ses.state(), ses.connection()),
                (State::OpenConfirm, Some(winner))
            );
            let a = ses.handle(on(winner, Message::Keepalive), t1);
            assert!(
                a.iter().any(|x| matches!(x, Action::Established(_))),
                "{a:?}"
            );
        }
    }
}

/// The held connection goes on when the other one closes without an OPEN
/// (a peer that keeps one connection and silently drops the other, as
/// GoBGP does): KEEPALIVE on it, then what the peer sent meanwhile (its
/// KEEPALIVE, in the same read as its OPEN) is read and establishes it.
#[test]
fn held_open_goes_on_when_the_other_connection_closes() {
    for first in [OUT, IN] {
        let now = Instant::now();
        // The peer's identifier is lower: our own connection would win.
        let mut ses = with_second(first, now);
        let mut bytes = open_from(LOWER).encode().unwrap();
        bytes.extend(Message::Keepalive.encode().unwrap());
        let a = ses.handle(Event::BytesReceived(IN, bytes), now);
        assert!(!a.iter().any(|x| matches!(x, Action::Send(..))), "{a:?}");
        assert_eq!(
            (ses.state(), ses.connection()),
            (State::OpenSent, Some(OUT))
        );
        let a = ses.handle(Event::TcpClosed(OUT), now);
        assert!(sent(&a, IN, &Message::Keepalive), "{a:?}");
        assert!(
            a.iter().any(|x| matches!(x, Action::Established(_))),
            "{a:?}"
        );
        assert!(down_reason(&a).is_none(), "{a:?}");
        assert_eq!(
            (ses.state(), ses.connection()),
            (State::Established, Some(IN))
        );
    }
}

/// An Established session is kept whatever the identifiers say: the
/// peer's new connection gets our OPEN, and on the peer's OPEN it is
/// closed with Cease / Connection Collision Resolution. Nothing else
/// changes.
#[test]
fn collision_with_an_established_session_closes_the_new_connection() {
    let first = OUT;
    for peer_id in [HIGHER, LOWER] {
        let now = Instant::now();
        let second = first.other();
        let mut ses = open_sent_on(first, now);
        ses.handle(on(first, open_from(peer_id)), now);
        ses.handle(on(first, Message::Keepalive), now);
        assert_eq!(ses.state(), State::Established);
        let a = ses.handle(Event::TcpConnected(second), now);
        assert!(matches!(&a[0], Action::Send(c, Message::Open(_)) if *c == second));
        let a = ses.handle(on(second, open_from(peer_id)), now);
        let ctx = format!("first {first:?}, peer id {peer_id}: {a:?}");
        assert_closed_with(&a, second, &cease_7());
        assert!(sent_notification(&a, first).is_none(), "{ctx}");
        assert!(!a.contains(&Action::Close(first)), "{ctx}");
        assert!(down_reason(&a).is_none(), "{ctx}");
        assert_eq!(ses.state(), State::Established, "{ctx}");
        assert_eq!(ses.connection(), Some(first), "{ctx}");
        assert!(ses.accepts_connection(second), "{ctx}");
        // Routes still flow on the established connection.
        let a = ses.handle(on(first, Message::Keepalive), now);
        assert_eq!(a, vec![Action::ArmTimer(Timer::Hold, s(90))], "{ctx}");
    }
}

/// Our own attempt completing once the session is in OpenConfirm or
/// Established on the peer's connection: closed at once, before anything
/// is sent on it (the peer cannot choose it, so no Cease is needed), and
/// the session goes on; whichever identifier is higher.
#[test]
fn our_late_connection_is_closed_once_the_session_settled() {
    for established in [false, true] {
        for peer_id in [HIGHER, LOWER] {
            let now = Instant::now();
            let mut ses = open_sent_on(IN, now);
            ses.handle(on(IN, open_from(peer_id)), now);
            if established {
                ses.handle(on(IN, Message::Keepalive), now);
            }
            let state = ses.state();
            assert!(ses.accepts_connection(OUT));
            let a = ses.handle(Event::TcpConnected(OUT), now);
            assert_eq!(a, vec![Action::Close(OUT)], "{state:?}, peer id {peer_id}");
            assert_eq!((ses.state(), ses.connection()), (state, Some(IN)));
            assert!(ses.accepts_connection(OUT), "a later one is judged alike");
            let a = ses.handle(on(IN, Message::Keepalive), now);
            assert!(!a.iter().any(|x| matches!(x, Action::Close(_))), "{a:?}");
        }
    }
}

/// The peer's OPEN and KEEPALIVE in one read on the second connection:
/// the OPEN moves it to OpenConfirm (the first had no OPEN yet), and the
/// KEEPALIVE, read from the same buffer, establishes it; the first, which
/// lost, is closed then with Cease / Connection Collision Resolution.
#[test]
fn open_and_keepalive_in_one_read_on_the_second_connection() {
    let now = Instant::now();
    let mut ses = with_second(OUT, now);
    let mut bytes = open_from(HIGHER).encode().unwrap();
    bytes.extend(Message::Keepalive.encode().unwrap());
    let a = ses.handle(Event::BytesReceived(IN, bytes), now);
    assert!(
        a.iter().any(|x| matches!(x, Action::Established(_))),
        "{a:?}"
    );
    assert_eq!(
        (ses.state(), ses.connection()),
        (State::Established, Some(IN))
    );
    assert_closed_with(&a, OUT, &cease_7());
    assert!(a.contains(&Action::CancelTimer(Timer::CollisionHold)));
    // The first connection's late OPEN belongs to no connection of ours.
    let a = ses.handle(on(OUT, open_from(HIGHER)), now);
    assert!(a.is_empty(), "{a:?}");
    assert_eq!(ses.state(), State::Established);
}

#[test]
fn the_pending_connection_closing_or_failing_leaves_the_session_alone() {
    let now = Instant::now();
    let hold_expired = Notification::new(4, 0, vec![]);
    let fsm_error = Notification::new(5, 1, vec![]);
    let bad_as = Notification::new(2, 2, vec![]);
    let mut wrong_as = peer_open(90);
    wrong_as
        .capabilities
        .retain(|c| !matches!(c, Capability::FourOctetAs(_)));
    wrong_as.capabilities.push(Capability::FourOctetAs(65999));
    let cases: [(Event, Option<Notification>); 5] = [
        (Event::TcpClosed(IN), None),
        // The peer resolved the collision its way.
        (on(IN, Message::Notification(cease_7())), None),
        (
            Event::TimerExpired(Timer::CollisionHold),
            Some(hold_expired),
        ),
        (on(IN, Message::Keepalive), Some(fsm_error)),
        (on(IN, Message::Open(wrong_as)), Some(bad_as)),
    ];
    for (event, reply) in cases {
        // The peer's identifier is lower: OUT goes on, IN stays pending.
        let mut ses = with_second(OUT, now);
        ses.handle(on(OUT, open_from(LOWER)), now);
        let a = ses.handle(event.clone(), now);
        let ctx = format!("{event:?}: {a:?}");
        match &reply {
            Some(n) => assert_closed_with(&a, IN, n),
            None => {
                assert!(sent_notification(&a, IN).is_none(), "{ctx}");
                assert!(a.contains(&Action::Close(IN)), "{ctx}");
            }
        }
        assert!(
            a.contains(&Action::CancelTimer(Timer::CollisionHold)),
            "{ctx}"
        );
        assert!(sent_notification(&a, OUT).is_none(), "{ctx}");
        assert!(down_reason(&a).is_none(), "{ctx}");
        assert_eq!(
            (ses.state(), ses.connection()),
            (State::OpenConfirm, Some(OUT)),
            "{ctx}"
        );
        assert!(ses.accepts_connection(IN), "{ctx}");
    }
}

/// The session's connection closes before any OPEN was compared: the
/// pending one takes over in OpenSent, with what is left of its hold time,
/// instead of the session falling back to Active.
#[test]
fn the_pending_connection_takes_over_when_the_first_one_closes() {
    for open_received in [false, true] {
        let t0 = Instant::now();
        let mut ses = with_second(OUT, t0);
        if open_received {
            ses.handle(on(OUT, open_from(LOWER)), t0);
            assert_eq!(ses.state(), State::OpenConfirm);
        }
        let t1 = t0 + s(10);
        let a = ses.handle(Event::TcpClosed(OUT), t1);
        assert!(a.contains(&Action::Close(OUT)), "{a:?}");
        assert!(down_reason(&a).is_none(), "{a:?}");
        assert_eq!(armed(&a, Timer::Hold), Some(OPEN_HOLD_TIME - s(10)));
        assert_eq!(armed(&a, Timer::ConnectRetry), None);
        assert_eq!((ses.state(), ses.connection()), (State::OpenSent, Some(IN)));
        assert!(ses.negotiated().is_none());
        let a = ses.handle(on(IN, open_from(HIGHER)), t1);
        assert!(sent(&a, IN, &Message::Keepalive), "{a:?}");
        let a = ses.handle(on(IN, Message::Keepalive), t1);
        assert!(
            a.iter().any(|x| matches!(x, Action::Established(_))),
            "{a:?}"
        );
    }
}

/// Going down with a collision pending closes both connections; a Cease
/// (here Administrative Shutdown) goes out on both.
#[test]
fn stopping_closes_both_connections() {
    let now = Instant::now();
    let mut ses = with_second(OUT, now);
    let a = ses.handle(Event::ManualStop, now);
    let shutdown = Notification::new(6, 2, vec![]);
    assert_closed_with(&a, OUT, &shutdown);
    assert_closed_with(&a, IN, &shutdown);
    assert_eq!(ses.state(), State::Idle);
    // An error on the session's connection is not the pending one's: that
    // one is closed without it.
    let mut ses = with_second(OUT, now);
    let a = ses.handle(Event::TimerExpired(Timer::Hold), now);
    assert_closed_with(&a, OUT, &Notification::new(4, 0, vec![]));
    assert!(sent_notification(&a, IN).is_none() && a.contains(&Action::Close(IN)));
}

/// The peer's connection arriving while our own attempt is in flight is
/// taken, and our attempt is kept: when it completes it is the second
/// connection. (Abandoning it loses both connections whenever the peer
/// abandons its own attempt for ours at the same moment.)
#[test]
fn incoming_connection_in_connect_keeps_our_attempt() {
    let now = Instant::now();
    let mut ses = Session::new(cfg());
    ses.handle(Event::ManualStart, now);
    assert_eq!(ses.state(), State::Connect);
    let a = ses.handle(Event::TcpConnected(IN), now);
    assert!(!a.iter().any(|x| matches!(x, Action::Close(_))), "{a:?}");
    assert!(matches!(&a[1], Action::Send(IN, Message::Open(_))), "{a:?}");
    assert_eq!((ses.state(), ses.connection()), (State::OpenSent, Some(IN)));
    assert!(ses.accepts_connection(OUT));
    let a = ses.handle(Event::TcpConnected(OUT), now);
    assert!(
        matches!(&a[0], Action::Send(OUT, Message::Open(_))),
        "{a:?}"
    );
    // Or it fails, which changes nothing.
    let mut ses = Session::new(cfg());
    ses.handle(Event::ManualStart, now);
    ses.handle(Event::TcpConnected(IN), now);
    assert!(ses.handle(Event::TcpFailed, now).is_empty());
    assert_eq!(ses.state(), State::OpenSent);
}

/// Our attempt still in flight when the session goes on to OpenConfirm on
/// the peer's connection is abandoned then (the transport aborts it, so a
/// SYN the peer did not answer yet is not sent again): were it to complete
/// once the peer is Established, a peer doing graceful restart would take
/// the new connection for our restart. Nothing starts another one while
/// the session is up, whichever identifier is higher.
#[test]
fn our_attempt_in_flight_is_abandoned_once_the_peers_connection_is_chosen() {
    for peer_id in [HIGHER, LOWER] {
        let now = Instant::now();
        let mut ses = Session::new(cfg());
        ses.handle(Event::ManualStart, now);
        assert_eq!(ses.state(), State::Connect, "our attempt is in flight");
        let a = ses.handle(Event::TcpConnected(IN), now);
        assert!(!a.contains(&Action::Close(OUT)), "kept in OpenSent: {a:?}");
        let a = ses.handle(on(IN, open_from(peer_id)), now);
        let ctx = format!("peer id {peer_id}: {a:?}");
        assert!(a.contains(&Action::Close(OUT)), "{ctx}");
        assert!(sent(&a, IN, &Message::Keepalive), "{ctx}");
        assert!(sent_notification(&a, IN).is_none(), "{ctx}");
        assert_eq!(
            (ses.state(), ses.connection()),
            (State::OpenConfirm, Some(IN))
        );
        let a = ses.handle(on(IN, Message::Keepalive), now);
        assert!(
            a.iter().any(|x| matches!(x, Action::Established(_))),
            "{ctx}"
        );
        assert!(!a.contains(&Action::Connect), "{a:?}");
        // A stale ConnectRetry expiry starts nothing while Established.
        let a = ses.handle(Event::TimerExpired(Timer::ConnectRetry), now);
        assert!(!a.contains(&Action::Connect), "{a:?}");
        assert_eq!(ses.state(), State::Established);
    }
    // Passive: there is no attempt to abandon.
    let now = Instant::now();
    let mut ses = open_sent_on(IN, now);
    let a = ses.handle(on(IN, open_from(HIGHER)), now);
    assert!(!a.contains(&Action::Close(OUT)), "{a:?}");
    // On our own connection, the peer's attempt is its own business.
    let mut ses = open_sent_on(OUT, now);
    let a = ses.handle(on(OUT, open_from(LOWER)), now);
    assert!(!a.iter().any(|x| matches!(x, Action::Close(_))), "{a:?}");
}

/// A connection still pending when the session becomes Established on the
/// other (the one the comparison keeps) is closed then, with Cease /
/// Connection Collision Resolution, not left for its OPEN to meet an
/// Established session; both directions.
#[test]
fn a_pending_connection_is_closed_when_the_other_becomes_established() {
    for first in [OUT, IN] {
        let now = Instant::now();
        let second = first.other();
        let mut ses = with_second(first, now);
        // The identifier that keeps the first connection.
        let peer_id = if first == OUT { LOWER } else { HIGHER };
        let a = ses.handle(on(first, open_from(peer_id)), now);
        assert!(!a.contains(&Action::Close(second)), "pending: {a:?}");
        assert_eq!(ses.state(), State::OpenConfirm);
        let a = ses.handle(on(first, Message::Keepalive), now);
        let ctx = format!("first {first:?}: {a:?}");
        assert!(
            a.iter().any(|x| matches!(x, Action::Established(_))),
            "{ctx}"
        );
        assert_closed_with(&a, second, &cease_7());
        assert!(
            a.contains(&Action::CancelTimer(Timer::CollisionHold)),
            "{ctx}"
        );
        assert!(sent_notification(&a, first).is_none(), "{ctx}");
        assert_eq!(
            (ses.state(), ses.connection()),
            (State::Established, Some(first))
        );
        // Its OPEN, arriving late, finds no connection of ours.
        let a = ses.handle(on(second, open_from(peer_id)), now);
        assert!(a.is_empty(), "{first:?}: {a:?}");
    }
}
