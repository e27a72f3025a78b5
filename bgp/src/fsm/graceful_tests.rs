//! Graceful restart (RFC 4724) through the event interface: our OPEN and
//! End-of-RIB as the restarting speaker, and the helper's route retention,
//! its timers and its purges.

use super::tests::{O, armed, cfg, msg, notification, open_sent, s, update_v4};
use super::*;
use crate::wire::{GrFamily, GracefulRestart};

const V4: (u16, u8) = (AFI_IPV4, SAFI_UNICAST);
const V6: (u16, u8) = (AFI_IPV6, SAFI_UNICAST);
const I: Conn = Conn::Incoming;

fn gr_cfg() -> Config {
    let mut c = cfg();
    c.graceful_restart = Some(GracefulRestartConfig::default());
    c
}

/// The peer's OPEN with a Graceful Restart capability: `restart_time`, and
/// each family with its F bit.
fn gr_open(restart_time: u16, families: &[((u16, u8), bool)]) -> Open {
    let mut o = tests::peer_open(90);
    o.capabilities
        .push(Capability::GracefulRestart(GracefulRestart {
            restart_state: false,
            restart_time,
            families: families
                .iter()
                .map(|&((afi, safi), f)| GrFamily {
                    afi,
                    safi,
                    forwarding_state: f,
                })
                .collect(),
        }));
    o
}

fn established_on(ses: &mut Session, c: Conn, open: Open, now: Instant) -> Vec<Action> {
    ses.handle(Event::MessageReceived(c, Message::Open(open)), now);
    let a = ses.handle(Event::MessageReceived(c, Message::Keepalive), now);
    assert_eq!(ses.state(), State::Established, "{a:?}");
    a
}

/// Established with a graceful-restart peer (120 s, both families with F).
fn gr_established(now: Instant) -> Session {
    let mut ses = open_sent(gr_cfg(), now);
    established_on(&mut ses, O, gr_open(120, &[(V4, true), (V6, true)]), now);
    ses
}

fn our_gr(ses: &Session) -> Option<GracefulRestart> {
    ses.open_message().graceful_restart().cloned()
}

/// A [`Action::SessionDownStale`]'s reason, families and restart time.
type StaleDown<'a> = (&'a DownReason, &'a [(u16, u8)], Duration);

fn stale_down(a: &[Action]) -> Option<StaleDown<'_>> {
    a.iter().find_map(|x| match x {
        Action::SessionDownStale {
            reason,
            families,
            restart_time,
        } => Some((reason, families.as_slice(), *restart_time)),
        _ => None,
    })
}

fn purges(a: &[Action]) -> Vec<((u16, u8), PurgeReason)> {
    a.iter()
        .filter_map(|x| match x {
            Action::PurgeStale { afi, safi, reason } => Some(((*afi, *safi), *reason)),
            _ => None,
        })
        .collect()
}

fn plain_down(a: &[Action]) -> bool {
    a.iter().any(|x| matches!(x, Action::SessionDown(_)))
}

fn sent_updates(a: &[Action]) -> Vec<&Update> {
    a.iter()
        .filter_map(|x| match x {
            Action::Send(_, Message::Update(u)) => Some(u),
            _ => None,
        })
        .collect()
}

#[test]
fn timers_are_listed_in_discriminant_order() {
    for (i, t) in Timer::ALL.iter().enumerate() {
        assert_eq!(*t as usize, i, "{t:?}");
    }
}

// ----------------------------------------------------- restarting speaker

#[test]
fn capability_only_when_configured() {
    assert_eq!(our_gr(&Session::new(cfg())), None);
    let gr = our_gr(&Session::new(gr_cfg())).expect("capability");
    assert_eq!(gr.restart_time, DEFAULT_RESTART_TIME);
    assert!(!gr.restart_state, "a cold start is no restart");
    let fams: Vec<_> = gr.families.iter().map(|f| (f.afi, f.safi)).collect();
    assert_eq!(fams, vec![V4, V6]);
    assert!(
        gr.families.iter().all(|f| !f.forwarding_state),
        "nothing forwarded yet: nothing preserved"
    );
}

#[test]
fn restart_with_forwarding_preserved_sets_r_and_f_until_established() {
    let now = Instant::now();
    let mut c = gr_cfg();
    c.graceful_restart.as_mut().unwrap().forwarding_preserved = true;
    c.graceful_restart.as_mut().unwrap().restart_time = 90;
    c.ipv6_unicast = false;
    let mut ses = open_sent(c, now);
    let gr = our_gr(&ses).unwrap();
    assert!(gr.restart_state);
    assert_eq!(gr.restart_time, 90);
    assert_eq!(
        gr.families,
        vec![GrFamily {
            afi: 1,
            safi: 1,
            forwarding_state: true
        }]
    );
    established_on(&mut ses, O, gr_open(120, &[(V4, true)]), now);
    // Lost and back: we did not restart this time, and kept forwarding.
    ses.handle(Event::TcpClosed(O), now);
    let gr = our_gr(&ses).unwrap();
    assert!(!gr.restart_state);
    assert!(gr.families[0].forwarding_state);
}

#[test]
fn cold_start_says_forwarding_preserved_only_after_first_established() {
    let now = Instant::now();
    let mut ses = gr_established(now);
    ses.handle(Event::TcpClosed(O), now);
    let gr = our_gr(&ses).unwrap();
    assert!(!gr.restart_state);
    assert!(gr.families.iter().all(|f| f.forwarding_state));
}

#[test]
fn restart_time_over_12_bits_is_capped() {
    let mut c = gr_cfg();
    c.graceful_restart.as_mut().unwrap().restart_time = 10_000;
    let gr = our_gr(&Session::new(c)).unwrap();
    assert_eq!(gr.restart_time, 4095);
    assert!(
        Message::Open(Session::new(gr_cfg()).open_message())
            .encode()
            .is_ok()
    );
}

#[test]
fn initial_update_done_sends_end_of_rib_per_family() {
    let now = Instant::now();
    let mut ses = gr_established(now);
    let a = ses.handle(Event::SendUpdate(update_v4(&["10.0.0.0/8"])), now);
    assert_eq!(sent_updates(&a).len(), 1);
    let a = ses.handle(Event::InitialUpdateDone, now);
    let eors: Vec<_> = sent_updates(&a)
        .iter()
        .map(|u| u.end_of_rib_family())
        .collect();
    assert_eq!(eors, vec![Some(V4), Some(V6)]);
    assert!(armed(&a, Timer::Keepalive).is_some(), "an UPDATE went out");
    // Only families the peer took.
    let now = Instant::now();
    let mut ses = open_sent(gr_cfg(), now);
    let mut v4_only = gr_open(120, &[(V4, true)]);
    v4_only
        .capabilities
        .retain(|c| *c != Capability::Multiprotocol { afi: 2, safi: 1 });
    established_on(&mut ses, O, v4_only, now);
    let a = ses.handle(Event::InitialUpdateDone, now);
    let eors: Vec<_> = sent_updates(&a)
        .iter()
        .map(|u| u.end_of_rib_family())
        .collect();
    assert_eq!(eors, vec![Some(V4)]);
}

#[test]
fn no_end_of_rib_without_graceful_restart_or_before_established() {
    let now = Instant::now();
    let mut ses = open_sent(cfg(), now);
    ses.handle(msg(Message::Open(tests::peer_open(90))), now);
    assert!(ses.handle(Event::InitialUpdateDone, now).is_empty());
    ses.handle(msg(Message::Keepalive), now);
    assert_eq!(ses.state(), State::Established);
    assert!(ses.handle(Event::InitialUpdateDone, now).is_empty());
    let mut ses = open_sent(gr_cfg(), now);
    assert!(ses.handle(Event::InitialUpdateDone, now).is_empty());
}

#[test]
fn stop_for_restart_closes_without_notification_and_stays_down() {
    let now = Instant::now();
    let mut ses = gr_established(now);
    let a = ses.handle(Event::StopForRestart, now);
    assert!(notification(&a).is_none(), "{a:?}");
    assert!(a.contains(&Action::Close(O)));
    assert!(a.contains(&Action::SessionDown(DownReason::StoppedForRestart)));
    assert!(armed(&a, Timer::IdleHold).is_none(), "no automatic restart");
    assert_eq!(ses.state(), State::Idle);
    assert!(
        ses.handle(Event::TimerExpired(Timer::IdleHold), now)
            .is_empty()
    );
    ses.handle(Event::ManualStart, now);
    assert_eq!(ses.state(), State::Connect);
}

// ----------------------------------------------------------------- helper

#[test]
fn lost_connection_keeps_a_graceful_peers_routes() {
    let now = Instant::now();
    let mut ses = gr_established(now);
    let a = ses.handle(Event::TcpClosed(O), now);
    assert_eq!(
        stale_down(&a),
        Some((&DownReason::ConnectionClosed, &[V4, V6][..], s(120)))
    );
    assert!(!plain_down(&a), "{a:?}");
    assert!(notification(&a).is_none());
    assert_eq!(armed(&a, Timer::GrRestart), Some(s(120)));
    // The restarting peer is let in at once; our own attempt after the
    // backoff.
    assert_eq!(ses.state(), State::Active);
    assert!(ses.accepts_connection(I));
    assert_eq!(armed(&a, Timer::ConnectRetry), Some(s(5)));
    assert!(armed(&a, Timer::IdleHold).is_none());
}

#[test]
fn hold_timer_expiry_keeps_them_too() {
    let now = Instant::now();
    let mut ses = gr_established(now);
    let a = ses.handle(Event::TimerExpired(Timer::Hold), now);
    let n = notification(&a).expect("Hold Timer Expired still goes out");
    assert_eq!(n.code, error::code::HOLD_TIMER_EXPIRED);
    assert_eq!(
        stale_down(&a).map(|d| d.0),
        Some(&DownReason::HoldTimerExpired)
    );
}

#[test]
fn only_the_families_of_the_capability_that_were_negotiated_are_kept() {
    let now = Instant::now();
    let mut ses = open_sent(gr_cfg(), now);
    // F bits do not matter when the session is lost, only when it is back.
    established_on(
        &mut ses,
        O,
        gr_open(30, &[(V6, false), ((1, 128), true)]),
        now,
    );
    let a = ses.handle(Event::TcpClosed(O), now);
    assert_eq!(stale_down(&a).map(|d| d.1), Some(&[V6][..]));
    assert_eq!(stale_down(&a).map(|d| d.2), Some(s(30)));
}

#[test]
fn ordinary_downs_keep_nothing() {
    let now = Instant::now();
    let stop_events: Vec<Event> = vec![
        Event::ManualStop,
        Event::BfdDown,
        Event::CarrierLost,
        Event::AdminReset,
        // A NOTIFICATION from the peer (RFC 4724 §4: normal procedures).
        msg(Message::Notification(Notification::new(6, 2, vec![]))),
        // One of ours: an FSM error.
        msg(Message::Open(tests::peer_open(90))),
        // Our decode error.
        Event::BytesReceived(O, vec![0; 19]),
    ];
    for e in stop_events {
        let mut ses = gr_established(now);
        let a = ses.handle(e.clone(), now);
        assert!(plain_down(&a), "{e:?}: {a:?}");
        assert!(stale_down(&a).is_none(), "{e:?}");
        assert!(armed(&a, Timer::GrRestart).is_none(), "{e:?}");
    }
}

#[test]
fn no_retention_without_the_capability_on_both_sides() {
    let now = Instant::now();
    // The peer lacks it.
    let mut ses = open_sent(gr_cfg(), now);
    established_on(&mut ses, O, tests::peer_open(90), now);
    assert!(plain_down(&ses.handle(Event::TcpClosed(O), now)));
    // We lack it.
    let mut ses = open_sent(cfg(), now);
    established_on(&mut ses, O, gr_open(120, &[(V4, true)]), now);
    assert!(ses.negotiated().unwrap().graceful_restart.is_none());
    assert!(plain_down(&ses.handle(Event::TcpClosed(O), now)));
    // Restart time 0, or no family: nothing to keep.
    for open in [gr_open(0, &[(V4, true)]), gr_open(120, &[])] {
        let mut ses = open_sent(gr_cfg(), now);
        established_on(&mut ses, O, open, now);
        assert!(plain_down(&ses.handle(Event::TcpClosed(O), now)));
    }
}

#[test]
fn restart_time_running_out_purges_every_family() {
    let now = Instant::now();
    let mut ses = gr_established(now);
    ses.handle(Event::TcpClosed(O), now);
    let a = ses.handle(Event::TimerExpired(Timer::GrRestart), now + s(120));
    assert_eq!(
        purges(&a),
        vec![
            (V4, PurgeReason::RestartTimeExpired),
            (V6, PurgeReason::RestartTimeExpired)
        ]
    );
    // Once only; and coming back later purges nothing more.
    assert!(
        ses.handle(Event::TimerExpired(Timer::GrRestart), now)
            .is_empty()
    );
    ses.handle(Event::TcpConnected(I), now);
    let a = established_on(&mut ses, I, gr_open(120, &[(V4, true)]), now);
    assert!(purges(&a).is_empty());
    assert!(armed(&a, Timer::GrStale).is_none());
}

#[test]
fn failed_attempts_to_come_back_keep_the_routes_and_the_timer() {
    let now = Instant::now();
    let mut ses = gr_established(now);
    ses.handle(Event::TcpClosed(O), now);
    // A connection that closes before the OPEN: back to Active, silently.
    ses.handle(Event::TcpConnected(I), now + s(10));
    let a = ses.handle(Event::TcpClosed(I), now + s(11));
    assert!(!plain_down(&a) && stale_down(&a).is_none(), "{a:?}");
    assert_eq!(ses.state(), State::Active);
    // One that brings an OPEN, then closes in OpenConfirm: the routes stay
    // for what is left of the restart time.
    ses.handle(Event::TcpConnected(I), now + s(20));
    ses.handle(
        Event::MessageReceived(I, Message::Open(gr_open(120, &[(V4, true)]))),
        now + s(20),
    );
    let a = ses.handle(Event::TcpClosed(I), now + s(30));
    let (reason, families, left) = stale_down(&a).expect("still kept");
    assert_eq!(
        (reason, families, left),
        (&DownReason::ConnectionClosed, &[V4, V6][..], s(90))
    );
    assert!(
        armed(&a, Timer::GrRestart).is_none(),
        "the same timer runs on"
    );
    assert!(purges(&a).is_empty());
    let a = ses.handle(Event::TimerExpired(Timer::GrRestart), now + s(120));
    assert_eq!(purges(&a).len(), 2);
}

#[test]
fn back_with_forwarding_state_waits_for_end_of_rib() {
    let now = Instant::now();
    let mut ses = gr_established(now);
    ses.handle(Event::TcpClosed(O), now);
    ses.handle(Event::TcpConnected(I), now);
    // IPv4 forwarding preserved, IPv6 not.
    let a = established_on(&mut ses, I, gr_open(120, &[(V4, true), (V6, false)]), now);
    let established = a
        .iter()
        .position(|x| matches!(x, Action::Established(_)))
        .unwrap();
    let purge = a
        .iter()
        .position(|x| matches!(x, Action::PurgeStale { .. }))
        .unwrap();
    assert!(established < purge, "the owner learns it is up first");
    assert!(a.contains(&Action::CancelTimer(Timer::GrRestart)));
    assert_eq!(purges(&a), vec![(V6, PurgeReason::NotPreserved)]);
    assert_eq!(armed(&a, Timer::GrStale), Some(DEFAULT_STALE_TIME));
    // Routes refresh as usual...
    let a = ses.handle(
        Event::MessageReceived(I, Message::Update(update_v4(&["10.1.0.0/16"]))),
        now,
    );
    assert!(matches!(a.last(), Some(Action::RoutesReceived(_))));
    // ...and the End-of-RIB ends the wait.
    let eor = Update::end_of_rib(1, 1).unwrap();
    let a = ses.handle(Event::MessageReceived(I, Message::Update(eor)), now);
    assert!(a.contains(&Action::EndOfRib { afi: 1, safi: 1 }));
    assert_eq!(purges(&a), vec![(V4, PurgeReason::EndOfRib)]);
    assert!(a.contains(&Action::CancelTimer(Timer::GrStale)));
    assert!(
        !a.iter().any(|x| matches!(x, Action::RoutesReceived(_))),
        "a marker carries no routes"
    );
    assert!(
        armed(&a, Timer::Hold).is_some(),
        "an UPDATE restarts the hold timer"
    );
    // A second marker purges nothing.
    let eor = Update::end_of_rib(1, 1).unwrap();
    let a = ses.handle(Event::MessageReceived(I, Message::Update(eor)), now);
    assert!(purges(&a).is_empty());
}

#[test]
fn back_without_the_capability_purges_at_once() {
    let now = Instant::now();
    let mut ses = gr_established(now);
    ses.handle(Event::TcpClosed(O), now);
    ses.handle(Event::TcpConnected(I), now);
    let a = established_on(&mut ses, I, tests::peer_open(90), now);
    assert_eq!(
        purges(&a),
        vec![
            (V4, PurgeReason::NotPreserved),
            (V6, PurgeReason::NotPreserved)
        ]
    );
    assert!(armed(&a, Timer::GrStale).is_none());
}

#[test]
fn no_end_of_rib_within_the_stale_time_purges() {
    let now = Instant::now();
    let mut c = gr_cfg();
    c.graceful_restart.as_mut().unwrap().stale_time = s(45);
    let mut ses = open_sent(c, now);
    established_on(&mut ses, O, gr_open(120, &[(V4, true)]), now);
    ses.handle(Event::TcpClosed(O), now);
    ses.handle(Event::TcpConnected(I), now);
    let a = established_on(&mut ses, I, gr_open(120, &[(V4, true)]), now);
    assert_eq!(armed(&a, Timer::GrStale), Some(s(45)));
    let a = ses.handle(Event::TimerExpired(Timer::GrStale), now + s(45));
    assert_eq!(purges(&a), vec![(V4, PurgeReason::StaleTimeExpired)]);
    assert_eq!(ses.state(), State::Established);
}

#[test]
fn lost_again_before_end_of_rib_purges_the_old_stale_routes_first() {
    let now = Instant::now();
    let mut ses = gr_established(now);
    ses.handle(Event::TcpClosed(O), now);
    ses.handle(Event::TcpConnected(I), now);
    established_on(&mut ses, I, gr_open(60, &[(V4, true), (V6, true)]), now);
    let a = ses.handle(Event::TcpClosed(I), now + s(5));
    assert_eq!(
        purges(&a),
        vec![
            (V4, PurgeReason::RestartedAgain),
            (V6, PurgeReason::RestartedAgain)
        ]
    );
    let purge = a
        .iter()
        .position(|x| matches!(x, Action::PurgeStale { .. }))
        .unwrap();
    let marked = a
        .iter()
        .position(|x| matches!(x, Action::SessionDownStale { .. }))
        .unwrap();
    assert!(purge < marked);
    assert!(a.contains(&Action::CancelTimer(Timer::GrStale)));
    // The new restart time is the one the peer advertised this time.
    assert_eq!(armed(&a, Timer::GrRestart), Some(s(60)));
}

#[test]
fn lost_for_good_while_stale_drops_everything() {
    let now = Instant::now();
    let mut ses = gr_established(now);
    ses.handle(Event::TcpClosed(O), now);
    // BFD sees the link fail while the peer is away: a real failure.
    let a = ses.handle(Event::BfdDown, now);
    assert!(plain_down(&a), "{a:?}");
    assert_eq!(ses.state(), State::Idle);
    assert!(a.contains(&Action::CancelTimer(Timer::GrRestart)));
    assert!(
        ses.handle(Event::TimerExpired(Timer::GrRestart), now)
            .is_empty()
    );
}

#[test]
fn end_of_rib_is_reported_without_graceful_restart_too() {
    let now = Instant::now();
    let mut ses = open_sent(cfg(), now);
    established_on(&mut ses, O, tests::peer_open(90), now);
    let eor = Update::end_of_rib(2, 1).unwrap();
    let a = ses.handle(msg(Message::Update(eor)), now);
    assert!(a.contains(&Action::EndOfRib { afi: 2, safi: 1 }));
    assert!(purges(&a).is_empty());
    assert_eq!(ses.prefix_count(AFI_IPV6), 0);
}

#[test]
fn new_open_while_established_from_a_graceful_peer_replaces_the_session() {
    let now = Instant::now();
    let mut ses = gr_established(now);
    // The peer restarted without our noticing: a new connection and OPEN.
    assert!(ses.accepts_connection(I));
    let a = ses.handle(Event::TcpConnected(I), now);
    assert!(matches!(a[0], Action::Send(I, Message::Open(_))));
    let a = ses.handle(
        Event::MessageReceived(I, Message::Open(gr_open(120, &[(V4, true), (V6, true)]))),
        now,
    );
    // Nothing yet: a connection that crossed ours would get a Cease now.
    assert!(a.is_empty(), "{a:?}");
    assert_eq!(
        (ses.state(), ses.connection()),
        (State::Established, Some(O))
    );
    // The peer's KEEPALIVE: it goes on with the new connection.
    let a = ses.handle(Event::MessageReceived(I, Message::Keepalive), now);
    // The old connection closes without a NOTIFICATION; its routes stay.
    assert!(notification(&a).is_none(), "{a:?}");
    assert!(a.contains(&Action::Close(O)));
    assert_eq!(
        stale_down(&a).map(|d| d.0),
        Some(&DownReason::PeerRestarted)
    );
    assert!(!plain_down(&a));
    // The new one goes on: our KEEPALIVE on it, and the peer's one
    // establishes it.
    assert!(a.contains(&Action::Send(I, Message::Keepalive)));
    assert_eq!(ses.state(), State::Established);
    assert_eq!(ses.connection(), Some(I));
    let last_arm = |t| {
        a.iter().rev().find_map(|x| match x {
            Action::ArmTimer(k, _) if *k == t => Some(true),
            Action::CancelTimer(k) if *k == t => Some(false),
            _ => None,
        })
    };
    assert_eq!(last_arm(Timer::ConnectRetry), Some(false));
    assert_eq!(last_arm(Timer::IdleHold), Some(false));
    assert_eq!(last_arm(Timer::Hold), Some(true));
    assert!(a.iter().any(|x| matches!(x, Action::Established(_))));
    assert_eq!(armed(&a, Timer::GrStale), Some(DEFAULT_STALE_TIME));
}

/// Established on our connection, the graceful-restart peer's own attempt
/// that crossed ours arrives late and brings its OPEN (as BIRD's does when
/// both start at once). The peer's answer to our OPEN tells it from a
/// restart: its Cease (its Established session wins) closes the new
/// connection alone, and the session stays, its routes untouched.
#[test]
fn a_crossing_connection_from_a_graceful_peer_is_no_restart() {
    let now = Instant::now();
    let mut ses = gr_established(now);
    ses.handle(Event::TcpConnected(I), now);
    let a = ses.handle(
        Event::MessageReceived(I, Message::Open(gr_open(120, &[(V4, true), (V6, true)]))),
        now,
    );
    assert!(a.is_empty(), "{a:?}");
    let cease = Notification::new(6, 7, vec![]);
    let a = ses.handle(Event::MessageReceived(I, Message::Notification(cease)), now);
    assert!(a.contains(&Action::Close(I)), "{a:?}");
    assert!(notification(&a).is_none(), "{a:?}");
    assert!(!a.contains(&Action::Close(O)), "{a:?}");
    assert!(stale_down(&a).is_none() && !plain_down(&a), "{a:?}");
    assert_eq!(
        (ses.state(), ses.connection()),
        (State::Established, Some(O))
    );
    // Or it just closes it.
    let mut ses = gr_established(now);
    ses.handle(Event::TcpConnected(I), now);
    ses.handle(
        Event::MessageReceived(I, Message::Open(gr_open(120, &[(V4, true), (V6, true)]))),
        now,
    );
    let a = ses.handle(Event::TcpClosed(I), now);
    assert!(stale_down(&a).is_none() && !plain_down(&a), "{a:?}");
    assert_eq!(
        (ses.state(), ses.connection()),
        (State::Established, Some(O))
    );
    let a = ses.handle(Event::MessageReceived(O, Message::Keepalive), now);
    assert_eq!(a, vec![Action::ArmTimer(Timer::Hold, s(90))]);
}

#[test]
fn new_open_while_established_without_graceful_restart_is_a_collision() {
    let now = Instant::now();
    let mut ses = open_sent(gr_cfg(), now);
    established_on(&mut ses, O, tests::peer_open(90), now);
    ses.handle(Event::TcpConnected(I), now);
    let a = ses.handle(
        Event::MessageReceived(I, Message::Open(tests::peer_open(90))),
        now,
    );
    assert!(a.contains(&Action::Close(I)));
    assert_eq!(ses.state(), State::Established);
    assert_eq!(ses.connection(), Some(O));
}

/// Both sides do graceful restart and both connected: the session becomes
/// Established on the connection the comparison keeps while the other is
/// still pending. The peer's OPEN on that one is its side of the
/// collision, not a restart: the pending connection is closed when the
/// session is established (Cease / Connection Collision Resolution) and
/// the session stays; both directions.
#[test]
fn a_collision_from_before_established_is_no_restart() {
    for first in [O, I] {
        let now = Instant::now();
        let second = first.other();
        let mut c = gr_cfg();
        c.passive = first == I;
        let mut ses = Session::new(c);
        ses.handle(Event::ManualStart, now);
        ses.handle(Event::TcpConnected(first), now);
        assert!(ses.accepts_connection(second));
        ses.handle(Event::TcpConnected(second), now);
        // The identifier that keeps the first connection (ours: 192.0.2.1).
        let mut open = gr_open(120, &[(V4, true), (V6, true)]);
        open.bgp_id = if first == O {
            "10.0.0.9".parse().unwrap()
        } else {
            "192.0.2.2".parse().unwrap()
        };
        let a = established_on(&mut ses, first, open.clone(), now);
        let cease = Notification::new(6, 7, vec![]);
        assert!(
            a.contains(&Action::Send(second, Message::Notification(cease))),
            "{first:?}: {a:?}"
        );
        assert!(a.contains(&Action::Close(second)), "{first:?}: {a:?}");
        let a = ses.handle(Event::MessageReceived(second, Message::Open(open)), now);
        assert!(stale_down(&a).is_none() && !plain_down(&a), "{a:?}");
        assert!(!a.contains(&Action::Close(first)), "{a:?}");
        assert_eq!(
            (ses.state(), ses.connection()),
            (State::Established, Some(first))
        );
    }
}

/// Established on the peer's connection, a graceful-restart peer connects
/// again: it restarted (its old connection is only half gone). The new
/// connection is taken in place of the old one, which the transport drops
/// (so nothing is sent on it or closed by name: that would be the new
/// one), the routes are kept stale, and the new connection goes on.
#[test]
fn a_graceful_peers_new_connection_replaces_the_session_on_its_old_one() {
    let now = Instant::now();
    let mut c = gr_cfg();
    c.passive = true;
    let mut ses = Session::new(c);
    ses.handle(Event::ManualStart, now);
    ses.handle(Event::TcpConnected(I), now);
    established_on(&mut ses, I, gr_open(120, &[(V4, true), (V6, true)]), now);
    assert!(ses.accepts_connection(I));
    let a = ses.handle(Event::TcpConnected(I), now);
    assert!(notification(&a).is_none(), "{a:?}");
    assert!(
        !a.iter().any(|x| matches!(x, Action::Close(_))),
        "the new connection stays: {a:?}"
    );
    assert_eq!(
        stale_down(&a).map(|d| d.0),
        Some(&DownReason::PeerRestarted)
    );
    assert!(
        a.iter()
            .any(|x| matches!(x, Action::Send(I, Message::Open(_)))),
        "{a:?}"
    );
    assert_eq!(armed(&a, Timer::Hold), Some(OPEN_HOLD_TIME));
    assert_eq!(armed(&a, Timer::GrRestart), Some(s(120)));
    let last = |t| {
        a.iter().rev().find_map(|x| match x {
            Action::ArmTimer(k, _) if *k == t => Some(true),
            Action::CancelTimer(k) if *k == t => Some(false),
            _ => None,
        })
    };
    assert_eq!(last(Timer::ConnectRetry), Some(false));
    assert_eq!(last(Timer::IdleHold), Some(false));
    assert_eq!((ses.state(), ses.connection()), (State::OpenSent, Some(I)));
    assert!(!ses.accepts_connection(I));
    let a = established_on(&mut ses, I, gr_open(120, &[(V4, true), (V6, true)]), now);
    assert_eq!(armed(&a, Timer::GrStale), Some(DEFAULT_STALE_TIME));
}

/// The same without graceful restart on both sides: the session keeps its
/// connection and the new one is refused (RFC 4271 §6.8 would close it
/// once its OPEN met the Established session).
#[test]
fn without_graceful_restart_a_new_connection_on_the_same_side_is_refused() {
    for (ours, theirs) in [(true, false), (false, true)] {
        let now = Instant::now();
        let mut c = if ours { gr_cfg() } else { cfg() };
        c.passive = true;
        let mut ses = Session::new(c);
        ses.handle(Event::ManualStart, now);
        ses.handle(Event::TcpConnected(I), now);
        let open = if theirs {
            gr_open(120, &[(V4, true), (V6, true)])
        } else {
            tests::peer_open(90)
        };
        established_on(&mut ses, I, open, now);
        assert!(!ses.accepts_connection(I), "ours {ours}, theirs {theirs}");
        assert!(ses.accepts_connection(O), "ours {ours}, theirs {theirs}");
    }
}
