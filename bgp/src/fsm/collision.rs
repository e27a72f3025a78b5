//! Connection collision detection (RFC 4271 §6.8).
//!
//! When both speakers open a connection at once, each ends up with two: the
//! one it opened and the one the peer opened. The session's state follows
//! one of them (`Session::conn`); the other, if it arrives once our OPEN
//! went out on the first, is kept here with our OPEN sent on it until the
//! peer's OPEN arrives on it. The connection kept is the one opened by the
//! speaker with the higher BGP Identifier (with equal identifiers, the
//! larger AS: RFC 6286 §2.3); the other is closed with Cease / Connection
//! Collision Resolution:
//!
//! * the peer's OPEN on a connection that arrived while the other is
//!   Established: the new one is closed (we do not implement the optional
//!   CollisionDetectEstablishedState), unless both sides do graceful
//!   restart: then the peer restarted (RFC 4724 §4.2, `graceful.rs`) if
//!   it goes on with the new connection (its KEEPALIVE answers our OPEN),
//!   and the old one goes; a peer whose connection merely crossed ours
//!   closes it instead (Cease), and the session stays. A connection still pending when the session
//!   becomes Established lost the comparison (or never had it) and is
//!   closed then, so its OPEN is never taken for a restart. Our own
//!   connection attempt still in flight when the session goes on to
//!   OpenConfirm on the peer's connection is abandoned; one that completes
//!   all the same is closed at once, before anything is sent on it: the
//!   peer cannot pick it, so no comparison (and no Cease) is needed;
//! * while the other is in OpenConfirm: compared at once;
//! * while the other still waits for the peer's OPEN (OpenSent): if this
//!   connection would be kept, it goes on to OpenConfirm and the other
//!   stays pending. If the other would be kept, this OPEN is held (no
//!   KEEPALIVE, nothing more read) until the other brings its OPEN (then
//!   this one is closed) or closes (then this one goes on, as a peer that
//!   silently drops a duplicate connection, like GoBGP, expects).
//!
//! RFC 4271 compares only OpenConfirm connections, which lets a speaker
//! send KEEPALIVE on a connection the comparison closes a moment later;
//! if the peer has become Established on it by then, it keeps it while
//! we keep the other, and both are lost. Holding the OPEN means the peer
//! receives our KEEPALIVE only on the connection we keep.
//!
//! A pending connection that closes, sends a NOTIFICATION (the peer's own
//! collision resolution), anything but an OPEN, or nothing before its hold
//! timer expires is closed alone; the session carries on.

use super::{Action, Conn, Event, Negotiated, OPEN_HOLD_TIME, Session, State, Timer};
use crate::wire::{Message, Notification, error};
use std::time::{Duration, Instant};

/// The other direction's connection while a collision is pending: our OPEN
/// was sent on it.
#[derive(Debug)]
pub(super) struct Second {
    pub(super) conn: Conn,
    pub(super) rx: Vec<u8>,
    /// When our OPEN went out on it (its hold timer started).
    opened_at: Instant,
    /// The peer's OPEN on it, held while the session's connection (which
    /// the comparison would keep) waits for its own.
    held: Option<Negotiated>,
    /// Messages handed in decoded while held, for when it goes on.
    queued: Vec<Message>,
    /// The graceful-restart peer's OPEN on a connection that arrived while
    /// the session was Established: a restart if the peer goes on with it
    /// (its KEEPALIVE), a crossing connection of a collision if it closes
    /// it (its Cease). Read on meanwhile.
    restart: Option<Negotiated>,
}

impl Second {
    fn new(conn: Conn, rx: Vec<u8>, opened_at: Instant) -> Self {
        Self {
            conn,
            rx,
            opened_at,
            held: None,
            queued: Vec::new(),
            restart: None,
        }
    }
}

impl Conn {
    pub fn other(self) -> Conn {
        match self {
            Conn::Outgoing => Conn::Incoming,
            Conn::Incoming => Conn::Outgoing,
        }
    }
}

/// RFC 4271 §6.8: the connection kept when the local speaker (`local_id`,
/// `local_as`) and the peer (`peer_id`, `peer_as`) collide. Identifiers
/// compare as 4-octet unsigned integers; the higher one's own connection
/// wins. Equal identifiers (allowed between different ASes, RFC 6286 §2.3):
/// the connection opened by the larger AS wins.
pub(super) fn collision_winner(
    local_id: std::net::Ipv4Addr,
    local_as: u32,
    peer_id: std::net::Ipv4Addr,
    peer_as: u32,
) -> Conn {
    let (ours, theirs) = (u32::from(local_id), u32::from(peer_id));
    let we_win = if ours == theirs {
        local_as > peer_as
    } else {
        ours > theirs
    };
    if we_win {
        Conn::Outgoing
    } else {
        Conn::Incoming
    }
}

fn collision_cease() -> Notification {
    Notification::new(
        error::code::CEASE,
        error::cease::CONNECTION_COLLISION_RESOLUTION,
        vec![],
    )
}

/// What is left of an OPEN hold timer started at `since`.
fn open_hold_left(since: Instant, now: Instant) -> Duration {
    OPEN_HOLD_TIME.saturating_sub(now.saturating_duration_since(since))
}

impl Session {
    pub(super) fn is_second(&self, c: Conn) -> bool {
        self.second.as_ref().is_some_and(|s| s.conn == c)
    }

    /// Whether `c` is the pending connection with the peer's OPEN held.
    pub(super) fn is_held(&self, c: Conn) -> bool {
        self.second
            .as_ref()
            .is_some_and(|s| s.conn == c && s.held.is_some())
    }

    fn winner(&self, neg: &Negotiated) -> Conn {
        collision_winner(
            self.config.router_id,
            self.config.local_as,
            neg.peer_id,
            neg.peer_as,
        )
    }

    /// A connection arriving while the session already has one (OpenSent
    /// or later): our OPEN on it, and wait for the peer's.
    pub(super) fn second_connected(&mut self, c: Conn, now: Instant, out: &mut Vec<Action>) {
        if !self.accepts_connection(c) {
            // A transport asks accepts_connection() first; the connection
            // it would name is in use, so nothing here may close it.
            return;
        }
        if self.conn == Some(c) {
            // Only a graceful-restart peer's new connection in place of
            // the Established session's one is accepted so.
            return self.peer_connected_anew(c, now, out);
        }
        if c == Conn::Outgoing && matches!(self.state, State::OpenConfirm | State::Established) {
            // Our attempt from before the peer's connection was taken ended
            // after the session settled on that one: closed before anything
            // is sent on it, so the peer cannot choose it and no Cease is
            // needed (the peer just sees its accepted connection close).
            tracing::debug!(peer_as = self.config.peer_as, state = ?self.state,
                "bgp our late connection closed: the session runs on the peer's");
            out.push(Action::Close(c));
            return;
        }
        tracing::debug!(peer_as = self.config.peer_as, conn = ?c, state = ?self.state,
            "bgp second connection: OPEN sent, collision pending");
        out.push(Action::Send(c, Message::Open(self.open_message())));
        out.push(Action::ArmTimer(Timer::CollisionHold, OPEN_HOLD_TIME));
        self.second = Some(Second::new(c, Vec::new(), now));
    }

    /// The session goes on to OpenConfirm: if it runs on the peer's
    /// connection, an attempt of ours still in flight is abandoned (the
    /// transport aborts it, so an unanswered SYN is not sent again). Once
    /// the session settles on the peer's connection such an attempt can
    /// only end as a connection closed unused, and a peer doing graceful
    /// restart (BIRD) takes the mere arrival of a new connection, once it
    /// is Established, for our restart and drops the session. Our
    /// connection already completed and pending (our OPEN on it) is left
    /// to the collision rules.
    pub(super) fn abandon_our_attempt(&self, out: &mut Vec<Action>) {
        if self.conn == Some(Conn::Incoming)
            && !self.config.passive
            && !self.is_second(Conn::Outgoing)
        {
            out.push(Action::Close(Conn::Outgoing));
        }
    }

    /// The session becomes Established: a connection still pending lost
    /// (the session went on to OpenConfirm on the one the comparison
    /// keeps, and never sends KEEPALIVE on the other). It is closed now,
    /// with Cease / Connection Collision Resolution as our OPEN went out
    /// on it, rather than when the peer's OPEN comes on it: that OPEN
    /// would meet an Established session and, with graceful restart, be
    /// taken for a restarted peer's (RFC 4724 §4.2).
    pub(super) fn close_losing_second(&mut self, out: &mut Vec<Action>) {
        if let Some(second) = &self.second {
            tracing::info!(peer_as = self.config.peer_as, closed = ?second.conn, kept = ?self.conn,
                "bgp connection collision: established on the other connection");
            self.close_second(Some(collision_cease()), out);
        }
    }

    /// The pending connection becomes the session's.
    pub(super) fn take_second(&mut self, out: &mut Vec<Action>) -> Option<Second> {
        let mut second = self.second.take()?;
        out.push(Action::CancelTimer(Timer::CollisionHold));
        self.conn = Some(second.conn);
        self.opened_at = Some(second.opened_at);
        self.rx = std::mem::take(&mut second.rx);
        Some(second)
    }

    /// The session's connection closed in OpenSent or OpenConfirm (state
    /// set back to OpenSent by the caller): the pending one (if any) takes
    /// its place, going on with its held OPEN if it has one. Returns
    /// whether there was one.
    pub(super) fn promote_second(&mut self, now: Instant, out: &mut Vec<Action>) -> bool {
        let Some(second) = self.take_second(out) else {
            return false;
        };
        match second.held {
            Some(neg) => self.go_on_with_held(neg, second.queued, now, out),
            None => out.push(Action::ArmTimer(
                Timer::Hold,
                open_hold_left(second.opened_at, now),
            )),
        }
        true
    }

    /// The session's connection (in OpenSent) goes on with the peer's OPEN
    /// that was held on it, then reads what waited behind it.
    fn go_on_with_held(
        &mut self,
        neg: Negotiated,
        queued: Vec<Message>,
        now: Instant,
        out: &mut Vec<Action>,
    ) {
        self.open_confirm(neg, out);
        for m in queued {
            if !self.has_open_sent() {
                return;
            }
            self.receive(m, now, out);
        }
        if let Some(c) = self.conn {
            self.receive_bytes(c, &[], now, out);
        }
    }

    /// Swaps the roles of the session's connection and the pending one,
    /// with their OPEN hold timers. `arm_hold`: re-arm the session's Hold
    /// timer for its new connection (not when it goes on to OpenConfirm).
    fn swap_with_second(&mut self, arm_hold: bool, now: Instant, out: &mut Vec<Action>) {
        let mut second = self.second.take().expect("a pending connection");
        let old = self.conn.replace(second.conn).expect("a connection");
        let old_opened = self.opened_at.replace(second.opened_at).unwrap_or(now);
        let old_rx = std::mem::replace(&mut self.rx, std::mem::take(&mut second.rx));
        if arm_hold {
            out.push(Action::ArmTimer(
                Timer::Hold,
                open_hold_left(second.opened_at, now),
            ));
        }
        out.push(Action::ArmTimer(
            Timer::CollisionHold,
            open_hold_left(old_opened, now),
        ));
        self.second = Some(Second::new(old, old_rx, old_opened));
    }

    /// Closes the pending connection alone, with `n` if given.
    pub(super) fn close_second(&mut self, n: Option<Notification>, out: &mut Vec<Action>) {
        let Some(second) = self.second.take() else {
            return;
        };
        if let Some(n) = n {
            out.push(Action::Send(second.conn, Message::Notification(n)));
        }
        out.push(Action::Close(second.conn));
        out.push(Action::CancelTimer(Timer::CollisionHold));
    }

    /// Closes the session's connection for the pending one, which takes
    /// its place.
    fn lose_to_second(&mut self, out: &mut Vec<Action>) -> Second {
        let loser = self.conn.expect("a connection");
        out.push(Action::Send(
            loser,
            Message::Notification(collision_cease()),
        ));
        out.push(Action::Close(loser));
        self.take_second(out).expect("a pending connection")
    }

    pub(super) fn second_event(&mut self, event: Event, now: Instant, out: &mut Vec<Action>) {
        match event {
            Event::TcpClosed(_) => {
                tracing::debug!(
                    peer_as = self.config.peer_as,
                    "bgp second connection closed"
                );
                self.close_second(None, out);
            }
            Event::BytesReceived(c, bytes) => self.receive_bytes(c, &bytes, now, out),
            Event::MessageReceived(_, m) => self.second_receive(m, now, out),
            _ => unreachable!("only connection events are routed here"),
        }
    }

    pub(super) fn second_hold_expired(&mut self, out: &mut Vec<Action>) {
        if self.second.is_some() {
            let n = Notification::new(error::code::HOLD_TIMER_EXPIRED, 0, vec![]);
            self.close_second(Some(n), out);
        }
    }

    /// A message on the pending connection: only the peer's OPEN moves it
    /// on; once one is held, the rest waits for the decision.
    pub(super) fn second_receive(&mut self, m: Message, now: Instant, out: &mut Vec<Action>) {
        let open = match m {
            Message::Notification(n) => {
                tracing::info!(
                    peer_as = self.config.peer_as,
                    code = n.code,
                    subcode = n.subcode,
                    "bgp peer closed the second connection"
                );
                return self.close_second(None, out);
            }
            m if self.second.as_ref().is_some_and(|s| s.held.is_some()) => {
                self.second.as_mut().expect("checked").queued.push(m);
                return;
            }
            Message::Keepalive if self.second.as_ref().is_some_and(|s| s.restart.is_some()) => {
                // The peer is in OpenConfirm on the new connection: it
                // restarted, and the old connection is dead to it.
                let neg = self.second.as_mut().expect("checked").restart.take();
                self.peer_reconnected(neg.expect("checked"), now, out);
                return self.receive(Message::Keepalive, now, out);
            }
            Message::Open(open) => open,
            _ => {
                let n =
                    Notification::new(error::code::FSM, error::fsm::UNEXPECTED_IN_OPENSENT, vec![]);
                return self.close_second(Some(n), out);
            }
        };
        match self.negotiate(&open) {
            Ok(neg) => {
                let c = self.second.as_ref().expect("routed here").conn;
                self.open_received(c, neg, now, out);
            }
            Err(n) => {
                tracing::warn!(
                    peer_as = self.config.peer_as,
                    code = n.code,
                    subcode = n.subcode,
                    "bgp OPEN refused on the second connection"
                );
                self.close_second(Some(n), out);
            }
        }
    }

    /// The peer's valid OPEN on connection `c` (the session's one, in
    /// OpenSent, or the pending one in any state).
    pub(super) fn open_received(
        &mut self,
        c: Conn,
        neg: Negotiated,
        now: Instant,
        out: &mut Vec<Action>,
    ) {
        let Some(second) = &self.second else {
            return self.open_confirm(neg, out);
        };
        let winner = self.winner(&neg);
        let on_second = second.conn == c;
        let other_held = second.held.is_some();
        let restart = self.state == State::Established && self.restart_replaces_session();
        if restart {
            tracing::info!(peer_as = self.config.peer_as, peer_id = %neg.peer_id, on = ?c,
                "bgp peer's OPEN on a new connection while established: a restart if it goes on, a collision if it closes it");
        } else if self.state != State::OpenSent || other_held || winner != c {
            // An Established session keeps its connection whatever the
            // identifiers say.
            let kept = match self.state {
                State::Established => self.conn,
                _ => Some(winner),
            };
            tracing::info!(peer_as = self.config.peer_as, peer_id = %neg.peer_id, state = ?self.state,
                on = ?c, ?kept, "bgp connection collision");
        }
        match self.state {
            State::OpenSent if on_second && winner == c => {
                // The session's connection has no OPEN yet, and would lose.
                self.swap_with_second(false, now, out);
                self.open_confirm(neg, out);
            }
            State::OpenSent if on_second => {
                self.second.as_mut().expect("routed here").held = Some(neg);
            }
            State::OpenSent if other_held && winner == c => {
                self.close_second(Some(collision_cease()), out);
                self.open_confirm(neg, out);
            }
            State::OpenSent if other_held => {
                let second = self.lose_to_second(out);
                let held = second.held.expect("checked");
                self.go_on_with_held(held, second.queued, now, out);
            }
            State::OpenSent if winner == c => self.open_confirm(neg, out),
            State::OpenSent => {
                // The pending connection would win: hold this OPEN on it.
                self.swap_with_second(true, now, out);
                self.second.as_mut().expect("swapped").held = Some(neg);
            }
            State::OpenConfirm if winner == c => {
                self.lose_to_second(out);
                self.open_confirm(neg, out);
            }
            State::Established if on_second && self.restart_replaces_session() => {
                // No KEEPALIVE yet: the peer's next message on it tells.
                self.second.as_mut().expect("routed here").restart = Some(neg);
            }
            State::OpenConfirm | State::Established => {
                self.close_second(Some(collision_cease()), out);
            }
            State::Idle | State::Connect | State::Active => {
                unreachable!("a second connection exists only in OpenSent or later")
            }
        }
    }
}
