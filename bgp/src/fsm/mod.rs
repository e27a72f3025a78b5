//! RFC 4271 §8 session state machine, sans-IO.
//!
//! The caller feeds [`Event`]s with the current time and executes the
//! returned [`Action`]s in order (open a connection, send, arm or cancel a
//! timer, close). No clocks or sockets live here, so every path, timers
//! included, is unit-tested by sending events.
//!
//! Choices and deviations, each deliberate:
//! * Connection collision (RFC 4271 §6.8, see `collision.rs`): at most two
//!   connections, one per direction ([`Conn`]). A second one arriving in
//!   OpenSent or later gets our OPEN and is kept until the peer's OPEN on
//!   it is compared with the other connection; the loser is closed with
//!   Cease / Connection Collision Resolution. We enter OpenConfirm (send
//!   KEEPALIVE) only on the connection the comparison would keep, so the
//!   peer can never reach Established on one we are about to close.
//! * The peer's connection arriving while our own attempt is still in
//!   flight (Connect) is taken, and our attempt carries on: abandoning it
//!   would lose both connections whenever the peer does the same for ours.
//!   Once the session goes on to OpenConfirm on the peer's connection the
//!   attempt is abandoned: a peer doing graceful restart (BIRD) takes a
//!   connection that reaches it once it is Established for our restart.
//! * A failed outgoing connect in Connect moves to Active (still accepting
//!   the peer's connection) and the ConnectRetry timer retries, instead of
//!   dropping to Idle.
//! * After an error the session goes to Idle and restarts by itself after
//!   an IdleHold delay that doubles per failure (RFC 4271 §8.1.1
//!   DampPeerOscillations); ManualStop disables automatic restart, and so
//!   does BfdDown (Cease subcode 10, RFC 9384) until the owner's next
//!   ManualStart once BFD is up again.
//! * Hold time: we propose 180 s; the negotiated value is min(ours, theirs)
//!   and keepalive = hold / 3. A peer hold of 0 (no keepalives) is accepted
//!   as RFC 4271 allows; 1..=9 s is refused with Unacceptable Hold Time:
//!   1-2 s by RFC 4271, 3-9 s because ExpressRoute's floor is hold 10 s
//!   (keepalive 3 s). The floor is [`Config::min_hold_time`].
//! * A peer without the 4-octet AS capability (RFC 6793) is spoken to in
//!   2-octet ASNs ([`Negotiated::four_octet_as`], [`Session::as_width`]):
//!   the codec merges its AS4_PATH and writes AS_TRANS plus AS4_PATH
//!   toward it. Such a peer cannot have a 4-octet AS: one configured above
//!   65535 is refused with OPEN error Bad Peer AS.
//! * BGP Identifier: 0.0.0.0 is refused; our own identifier is refused from
//!   an internal peer only (RFC 6286 §2.2).
//! * Graceful restart (RFC 4724, [`GracefulRestartConfig`], see
//!   `graceful.rs`): both roles, without RFC 8538 (a NOTIFICATION, sent
//!   or received, ends the peer's routes at once); a hold timer expiry is
//!   treated like a lost connection, as RFC 8538 would. A graceful-restart
//!   peer's new connection while the session is Established on its
//!   previous one is taken for its restart on arrival, not on its OPEN
//!   (one connection per direction: the old one has to go to make room).

mod backoff;
mod collision;
#[cfg(test)]
mod collision_tests;
mod graceful;
#[cfg(test)]
mod graceful_tests;
mod prefix_limit;
#[cfg(test)]
pub(super) mod tests;

pub use graceful::{DEFAULT_RESTART_TIME, DEFAULT_STALE_TIME, GracefulRestartConfig, PurgeReason};
pub use prefix_limit::PrefixLimitExceeded;

use crate::wire::{
    self, AFI_IPV4, AFI_IPV6, AsSegment, AsWidth, Capability, DecodeOptions, GracefulRestart,
    Message, Notification, Open, PathAttribute, RouteRefresh, SAFI_UNICAST, Update, error,
};
use backoff::Backoff;
use collision::Second;
use prefix_limit::PrefixTable;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

/// RFC 4271 §8.2.2: hold timer while waiting for the peer's OPEN.
pub const OPEN_HOLD_TIME: Duration = Duration::from_secs(240);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub local_as: u32,
    pub router_id: Ipv4Addr,
    /// The customer ASN configured on the peering.
    pub peer_as: u32,
    /// Hold time we propose, seconds.
    pub hold_time: u16,
    /// Smallest non-zero hold time we accept, seconds.
    pub min_hold_time: u16,
    pub connect_retry: Duration,
    /// Never initiate the TCP connection; wait for the peer.
    pub passive: bool,
    pub ipv4_unicast: bool,
    pub ipv6_unicast: bool,
    pub max_prefixes_v4: Option<u32>,
    pub max_prefixes_v6: Option<u32>,
    /// First IdleHold delay after an error.
    pub idle_hold_initial: Duration,
    /// IdleHold cap; also how long a session must stay up to reset the backoff.
    pub idle_hold_max: Duration,
    /// Graceful restart (RFC 4724): `None` neither advertises the
    /// capability nor keeps a restarting peer's routes.
    pub graceful_restart: Option<GracefulRestartConfig>,
}

impl Config {
    /// MSEE defaults: AS 12076, hold 180 s (keepalive 60 s), floor 10 s,
    /// both unicast families, ConnectRetry 30 s, IdleHold 5 s doubling to 300 s.
    pub fn new(router_id: Ipv4Addr, peer_as: u32) -> Self {
        Self {
            local_as: crate::MSEE_ASN,
            router_id,
            peer_as,
            hold_time: 180,
            min_hold_time: 10,
            connect_retry: Duration::from_secs(30),
            passive: false,
            ipv4_unicast: true,
            ipv6_unicast: true,
            max_prefixes_v4: None,
            max_prefixes_v6: None,
            idle_hold_initial: Duration::from_secs(5),
            idle_hold_max: Duration::from_secs(300),
            graceful_restart: None,
        }
    }

    fn families(&self) -> Vec<(u16, u8)> {
        let mut f = Vec::new();
        if self.ipv4_unicast {
            f.push((AFI_IPV4, SAFI_UNICAST));
        }
        if self.ipv6_unicast {
            f.push((AFI_IPV6, SAFI_UNICAST));
        }
        f
    }

    fn is_external(&self) -> bool {
        self.peer_as != self.local_as
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    Idle,
    Connect,
    Active,
    OpenSent,
    OpenConfirm,
    Established,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Timer {
    ConnectRetry,
    Hold,
    Keepalive,
    /// Delay before an automatic restart from Idle.
    IdleHold,
    /// The second connection's wait for the peer's OPEN (its own hold
    /// timer while a collision is pending, RFC 4271 §6.8).
    CollisionHold,
    /// Graceful restart helper: the peer's Restart Time, from the loss of
    /// its session until it is established again.
    GrRestart,
    /// Graceful restart helper: the bound on waiting for the re-established
    /// peer's End-of-RIB before its stale routes go.
    GrStale,
}

impl Timer {
    /// Every timer, in the order of their discriminants (a transport may
    /// keep its deadlines in an array indexed by `timer as usize`).
    pub const ALL: [Timer; 7] = [
        Timer::ConnectRetry,
        Timer::Hold,
        Timer::Keepalive,
        Timer::IdleHold,
        Timer::CollisionHold,
        Timer::GrRestart,
        Timer::GrStale,
    ];
}

/// One of the two TCP connections a session may have, named by who opened
/// it: RFC 4271 §6.8 keeps the one opened by the speaker with the higher
/// BGP Identifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Conn {
    /// We connected to the peer (locally initiated).
    Outgoing,
    /// The peer connected to us (remotely initiated).
    Incoming,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    ManualStart,
    /// ManualStart with passive TCP establishment (RFC 4271 §8.1.2, event
    /// 4): wait (Active) for the peer's connection, and open one only when
    /// ConnectRetry expires. For a start both sides make at the same moment
    /// (both see BFD come up), where two crossing connections would race.
    ManualStartPassive,
    ManualStop,
    /// Our connect succeeded (`Outgoing`) or the peer's connection was
    /// accepted (`Incoming`). Hand one in only if
    /// [`Session::accepts_connection`] says so.
    TcpConnected(Conn),
    /// Our connection attempt failed.
    TcpFailed,
    /// This TCP connection went away.
    TcpClosed(Conn),
    /// Raw octets from a connection; framed and decoded here.
    BytesReceived(Conn, Vec<u8>),
    /// An already decoded message (tests, or a transport that frames itself).
    MessageReceived(Conn, Message),
    TimerExpired(Timer),
    /// Tear down with Cease / Administrative Reset and come back at once.
    AdminReset,
    /// New route limits (a configuration reload): kept for the running
    /// session; if the peer already holds more, it is torn down as if it had
    /// just crossed the limit.
    SetMaxPrefixes {
        v4: Option<u32>,
        v6: Option<u32>,
    },
    /// The link's BFD session went down: tear down with Cease / BFD Down
    /// (RFC 9384) and stay down until the next ManualStart (BFD up again).
    BfdDown,
    /// The session's interface lost carrier: the connection is gone, and
    /// no NOTIFICATION can cross a dead link. Down at once (as a directly
    /// connected eBGP session is on routers with fast external failover),
    /// and down until the next ManualStart (carrier back).
    CarrierLost,
    /// Advertise or withdraw routes (sent only when Established).
    SendUpdate(Update),
    /// Ask the peer to resend a family (only if it supports route refresh).
    RequestRouteRefresh {
        afi: u16,
        safi: u8,
    },
    /// Our initial advertisements after Established are all sent: an
    /// End-of-RIB marker goes out for each family (RFC 4724 §4), when
    /// graceful restart is configured.
    InitialUpdateDone,
    /// Close the session without a NOTIFICATION and stay down (until the
    /// next ManualStart): we are about to restart with our forwarding
    /// state preserved, and a peer doing graceful restart keeps our routes
    /// only if the connection just ends (RFC 4724 §4).
    StopForRestart,
}

/// What was agreed in the OPEN exchange.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Negotiated {
    pub peer_as: u32,
    pub peer_id: Ipv4Addr,
    /// Seconds; 0 means no hold timer and no keepalives.
    pub hold_time: u16,
    pub keepalive: u16,
    pub ipv4_unicast: bool,
    pub ipv6_unicast: bool,
    pub route_refresh: bool,
    /// Both sides advertised the 4-octet AS capability (RFC 6793);
    /// otherwise ASNs travel in 2 octets with AS4_PATH beside them.
    pub four_octet_as: bool,
    /// The peer's Graceful Restart capability, when we do graceful restart
    /// too (otherwise it is ignored): what we keep if the session is lost.
    pub graceful_restart: Option<GracefulRestart>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DownReason {
    ManualStop,
    AdminReset,
    HoldTimerExpired,
    /// The peer sent this NOTIFICATION.
    PeerNotification(Notification),
    /// We sent this NOTIFICATION (decode, OPEN or FSM error).
    LocalNotification(Notification),
    PrefixLimit(PrefixLimitExceeded),
    ConnectionClosed,
    /// BFD saw the link fail (the session waits for BFD to come back).
    BfdDown,
    /// The interface lost carrier (the session waits for it to come back).
    CarrierLost,
    /// A new connection from a graceful-restart peer brought its OPEN while
    /// the session was Established: the peer restarted (RFC 4724 §4.2),
    /// the old connection is closed and the new one goes on.
    PeerRestarted,
    /// [`Event::StopForRestart`]: closed without a NOTIFICATION.
    StoppedForRestart,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Open an outgoing TCP connection to the peer.
    Connect,
    Send(Conn, Message),
    /// (Re)start a timer; replaces any running one of the same kind.
    ArmTimer(Timer, Duration),
    CancelTimer(Timer),
    /// Close this connection; `Outgoing` also abandons an attempt in flight.
    Close(Conn),
    Established(Negotiated),
    /// The session is down and every route the peer sent is gone (stale
    /// ones it kept from a graceful restart included).
    SessionDown(DownReason),
    /// The session is down, but the peer does graceful restart (RFC 4724
    /// §4.2): its routes of `families` stay in use, marked stale, until
    /// it re-announces them after coming back, or a [`Action::PurgeStale`]
    /// (End-of-RIB, or `restart_time` without it coming back) removes
    /// what is still stale. Routes of other families are gone.
    SessionDownStale {
        reason: DownReason,
        families: Vec<(u16, u8)>,
        restart_time: Duration,
    },
    /// Remove the routes of this family still marked stale since the last
    /// [`Action::SessionDownStale`] (those the peer did not announce again).
    PurgeStale {
        afi: u16,
        safi: u8,
        reason: PurgeReason,
    },
    /// The peer's End-of-RIB marker for a family (RFC 4724 §2): its
    /// initial advertisements are complete.
    EndOfRib {
        afi: u16,
        safi: u8,
    },
    /// A validated UPDATE from the peer, for the RIB.
    RoutesReceived(Update),
    /// The peer asked us to resend a family.
    RouteRefreshRequested {
        afi: u16,
        safi: u8,
    },
}

#[derive(Debug)]
pub struct Session {
    config: Config,
    state: State,
    /// Set by ManualStart, cleared by ManualStop: restart after errors.
    auto_restart: bool,
    negotiated: Option<Negotiated>,
    /// The connection `state` describes (OpenSent and later).
    conn: Option<Conn>,
    /// When our OPEN went out on `conn` (its OPEN hold timer started).
    opened_at: Option<Instant>,
    rx: Vec<u8>,
    /// The other direction's connection while a collision is pending.
    second: Option<Second>,
    backoff: Backoff,
    established_at: Option<Instant>,
    prefixes: PrefixTable,
    /// Graceful restart: see `graceful.rs`.
    gr: graceful::GrState,
}

impl Session {
    pub fn new(config: Config) -> Self {
        let backoff = Backoff::new(config.idle_hold_initial, config.idle_hold_max);
        Self {
            config,
            state: State::Idle,
            auto_restart: false,
            negotiated: None,
            conn: None,
            opened_at: None,
            rx: Vec::new(),
            second: None,
            backoff,
            established_at: None,
            prefixes: PrefixTable::default(),
            gr: graceful::GrState::default(),
        }
    }

    pub fn state(&self) -> State {
        self.state
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn negotiated(&self) -> Option<&Negotiated> {
        self.negotiated.as_ref()
    }

    /// Whether a new TCP connection in direction `conn` may be handed in:
    /// the first one in Connect or Active, and later a second one of the
    /// other direction while none is pending (RFC 4271 §6.8).
    ///
    /// While Established on the peer's connection, a new connection from
    /// the peer is taken only when both sides do graceful restart: the
    /// peer restarted, and the new connection replaces the session's one
    /// (the transport drops the old one as it stores the new one; see
    /// `graceful.rs`). Otherwise it is refused: RFC 4271 §6.8 would close
    /// it anyway once its OPEN met the Established session.
    pub fn accepts_connection(&self, conn: Conn) -> bool {
        match self.state {
            State::Idle => false,
            State::Connect | State::Active => true,
            State::Established if self.conn == Some(conn) => {
                conn == Conn::Incoming && self.second.is_none() && self.restart_replaces_session()
            }
            _ => self.conn != Some(conn) && self.second.is_none(),
        }
    }

    /// The connection the session's state describes, if any.
    pub fn connection(&self) -> Option<Conn> {
        self.conn
    }

    /// How ASNs travel to and from the peer: how a transport must encode
    /// the messages it sends ([`Message::encode_with`]). Four until an
    /// OPEN without the 4-octet AS capability is accepted.
    pub fn as_width(&self) -> AsWidth {
        match &self.negotiated {
            Some(n) if !n.four_octet_as => AsWidth::Two,
            _ => AsWidth::Four,
        }
    }

    /// Distinct prefixes the peer currently announces for `afi`.
    pub fn prefix_count(&self, afi: u16) -> usize {
        self.prefixes.count(afi)
    }

    /// Our OPEN (with the Graceful Restart capability when configured).
    pub fn open_message(&self) -> Open {
        let mut open = Open::new(
            self.config.local_as,
            self.config.hold_time,
            self.config.router_id,
            &self.config.families(),
        );
        if let Some(gr) = self.our_graceful_restart() {
            open.capabilities.push(Capability::GracefulRestart(gr));
        }
        open
    }

    pub fn handle(&mut self, event: Event, now: Instant) -> Vec<Action> {
        let mut out = Vec::new();
        self.step(event, now, &mut out);
        out
    }

    fn step(&mut self, event: Event, now: Instant, out: &mut Vec<Action>) {
        use State::*;
        tracing::trace!(state = ?self.state, ?event, "bgp fsm event");
        // Events of the second connection (a pending collision) and of
        // connections already closed are handled apart from the state.
        match &event {
            Event::TcpClosed(c) | Event::BytesReceived(c, _) | Event::MessageReceived(c, _)
                if self.is_second(*c) =>
            {
                return self.second_event(event, now, out);
            }
            Event::TimerExpired(Timer::CollisionHold) => return self.second_hold_expired(out),
            Event::TimerExpired(t @ (Timer::GrRestart | Timer::GrStale)) => {
                return self.gr_timer_expired(*t, out);
            }
            Event::TcpClosed(c) | Event::BytesReceived(c, _) | Event::MessageReceived(c, _)
                if self.conn != Some(*c) =>
            {
                return; // a connection we no longer have
            }
            _ => {}
        }
        match (self.state, event) {
            (_, Event::ManualStop) => {
                self.auto_restart = false;
                self.backoff.reset();
                out.push(Action::CancelTimer(Timer::IdleHold));
                if self.state != Idle {
                    let n = Notification::new(
                        error::code::CEASE,
                        error::cease::ADMINISTRATIVE_SHUTDOWN,
                        vec![],
                    );
                    self.down(Some(n), DownReason::ManualStop, None, now, out);
                }
            }
            (state, Event::SetMaxPrefixes { v4, v6 }) => {
                self.config.max_prefixes_v4 = v4;
                self.config.max_prefixes_v6 = v6;
                if state == Established
                    && let Err(exceeded) = self.prefixes.check(v4, v6)
                {
                    tracing::warn!(
                        peer_as = self.config.peer_as,
                        ?exceeded,
                        "bgp prefix limit lowered below what the peer holds"
                    );
                    self.down(
                        Some(exceeded.notification()),
                        DownReason::PrefixLimit(exceeded),
                        None,
                        now,
                        out,
                    );
                }
            }
            (_, Event::StopForRestart) => {
                self.auto_restart = false;
                self.backoff.reset();
                out.push(Action::CancelTimer(Timer::IdleHold));
                if self.state != Idle {
                    self.down(None, DownReason::StoppedForRestart, None, now, out);
                }
            }
            (_, ev @ (Event::BfdDown | Event::CarrierLost)) => {
                let bfd = matches!(ev, Event::BfdDown);
                self.auto_restart = false;
                self.backoff.reset();
                out.push(Action::CancelTimer(Timer::IdleHold));
                if self.state != Idle {
                    let n = bfd.then(|| {
                        Notification::new(error::code::CEASE, error::cease::BFD_DOWN, vec![])
                    });
                    let reason = if bfd {
                        DownReason::BfdDown
                    } else {
                        DownReason::CarrierLost
                    };
                    self.down(n, reason, None, now, out);
                }
            }
            (Idle, Event::ManualStart) => {
                self.auto_restart = true;
                self.backoff.reset();
                self.start(out);
            }
            (Idle, Event::ManualStartPassive) => {
                self.auto_restart = true;
                self.backoff.reset();
                self.state = Active;
                out.push(Action::ArmTimer(
                    Timer::ConnectRetry,
                    self.config.connect_retry,
                ));
            }
            (Idle, Event::TimerExpired(Timer::IdleHold)) if self.auto_restart => self.start(out),
            (Idle, _) => {}

            (_, Event::ManualStart | Event::ManualStartPassive) => {}

            (Connect, Event::TimerExpired(Timer::ConnectRetry)) => {
                out.push(Action::Close(Conn::Outgoing));
                out.push(Action::Connect);
                out.push(Action::ArmTimer(
                    Timer::ConnectRetry,
                    self.config.connect_retry,
                ));
            }
            (Active, Event::TimerExpired(Timer::ConnectRetry)) => {
                if !self.config.passive {
                    self.state = Connect;
                    out.push(Action::Connect);
                }
                out.push(Action::ArmTimer(
                    Timer::ConnectRetry,
                    self.config.connect_retry,
                ));
            }
            (Connect | Active, Event::TcpConnected(c)) => {
                // An attempt of ours still in flight is kept: if it completes
                // it is a second connection, and the OPENs decide (the peer
                // may be dropping its own attempt for ours right now).
                self.open_sent(c, now, out);
            }
            (Connect, Event::TcpFailed) => {
                self.state = Active;
            }
            (Connect | Active, _) => {}

            // From here on there is a connection (`self.conn`).
            (_, Event::TcpConnected(c)) => self.second_connected(c, now, out),
            (OpenSent, Event::TcpClosed(c)) => {
                out.push(Action::Close(c));
                out.push(Action::CancelTimer(Timer::Hold));
                self.rx.clear();
                self.conn = None;
                if !self.promote_second(now, out) {
                    // RFC 4271 §8.2.2: back to Active, waiting for a retry.
                    out.push(Action::ArmTimer(
                        Timer::ConnectRetry,
                        self.config.connect_retry,
                    ));
                    self.state = Active;
                }
            }
            (OpenConfirm, Event::TcpClosed(c)) if self.second.is_some() => {
                // Never established: the other connection carries on.
                out.push(Action::Close(c));
                out.push(Action::CancelTimer(Timer::Keepalive));
                self.negotiated = None;
                self.rx.clear();
                self.conn = None;
                self.state = OpenSent;
                self.promote_second(now, out);
            }
            (OpenConfirm | Established, Event::TcpClosed(_)) => {
                self.down(None, DownReason::ConnectionClosed, None, now, out);
            }
            // Our connect attempt ended after we took the peer's connection.
            (_, Event::TcpFailed) => {}
            (_, Event::TimerExpired(Timer::Hold)) => {
                let n = Notification::new(error::code::HOLD_TIMER_EXPIRED, 0, vec![]);
                self.down(Some(n), DownReason::HoldTimerExpired, None, now, out);
            }
            (OpenConfirm | Established, Event::TimerExpired(Timer::Keepalive)) => {
                self.send(Message::Keepalive, out);
                self.arm_keepalive(out);
            }
            (_, Event::TimerExpired(_)) => {}
            (_, Event::AdminReset) => {
                let n = Notification::new(
                    error::code::CEASE,
                    error::cease::ADMINISTRATIVE_RESET,
                    vec![],
                );
                let delay = self.config.idle_hold_initial;
                self.down(Some(n), DownReason::AdminReset, Some(delay), now, out);
            }
            (_, Event::BytesReceived(c, bytes)) => self.receive_bytes(c, &bytes, now, out),
            (_, Event::MessageReceived(_, m)) => self.receive(m, now, out),
            (Established, Event::SendUpdate(u)) => {
                self.send(Message::Update(u), out);
                self.arm_keepalive(out);
            }
            (Established, Event::InitialUpdateDone) => self.send_end_of_rib(out),
            (Established, Event::RequestRouteRefresh { afi, safi }) => {
                if self.negotiated.as_ref().is_some_and(|n| n.route_refresh) {
                    self.send(
                        Message::RouteRefresh(RouteRefresh {
                            afi,
                            reserved: 0,
                            safi,
                        }),
                        out,
                    );
                }
            }
            // Updates and refresh requests before Established are dropped:
            // the owner (re)sends its routes when it sees Action::Established.
            (
                _,
                Event::SendUpdate(_) | Event::RequestRouteRefresh { .. } | Event::InitialUpdateDone,
            ) => {}
        }
    }

    fn has_open_sent(&self) -> bool {
        matches!(
            self.state,
            State::OpenSent | State::OpenConfirm | State::Established
        )
    }

    /// Sends `m` on the session's connection.
    fn send(&self, m: Message, out: &mut Vec<Action>) {
        if let Some(c) = self.conn {
            out.push(Action::Send(c, m));
        }
    }

    fn start(&mut self, out: &mut Vec<Action>) {
        if self.config.passive {
            self.state = State::Active;
        } else {
            self.state = State::Connect;
            out.push(Action::Connect);
        }
        out.push(Action::ArmTimer(
            Timer::ConnectRetry,
            self.config.connect_retry,
        ));
    }

    /// A first connection: our OPEN on it, OpenSent.
    fn open_sent(&mut self, c: Conn, now: Instant, out: &mut Vec<Action>) {
        out.push(Action::CancelTimer(Timer::ConnectRetry));
        out.push(Action::Send(c, Message::Open(self.open_message())));
        out.push(Action::ArmTimer(Timer::Hold, OPEN_HOLD_TIME));
        self.conn = Some(c);
        self.opened_at = Some(now);
        self.state = State::OpenSent;
    }

    fn arm_keepalive(&self, out: &mut Vec<Action>) {
        if let Some(n) = &self.negotiated
            && n.keepalive > 0
        {
            out.push(Action::ArmTimer(Timer::Keepalive, secs(n.keepalive)));
        }
    }

    fn arm_hold(&self, out: &mut Vec<Action>) {
        if let Some(n) = &self.negotiated
            && n.hold_time > 0
        {
            out.push(Action::ArmTimer(Timer::Hold, secs(n.hold_time)));
        }
    }

    /// The peer's valid OPEN on the session's connection: KEEPALIVE back,
    /// the negotiated timers, OpenConfirm.
    fn open_confirm(&mut self, neg: Negotiated, out: &mut Vec<Action>) {
        self.negotiated = Some(neg);
        self.abandon_our_attempt(out);
        self.send(Message::Keepalive, out);
        out.push(Action::CancelTimer(Timer::Hold));
        self.arm_hold(out);
        self.arm_keepalive(out);
        self.state = State::OpenConfirm;
    }

    /// Leaves for Idle: optional NOTIFICATION, close, stop timers, report,
    /// and (unless stopped) schedule the automatic restart. `restart_in`
    /// overrides the backoff delay. A NOTIFICATION goes out only on a
    /// connection where our OPEN was sent; a pending second connection gets
    /// it too when it is a Cease (the session as a whole ends), and is
    /// otherwise just closed.
    fn down(
        &mut self,
        notification: Option<Notification>,
        reason: DownReason,
        restart_in: Option<Duration>,
        now: Instant,
        out: &mut Vec<Action>,
    ) {
        if let Some(second) = self.second.take() {
            if let Some(n) = notification
                .as_ref()
                .filter(|n| n.code == error::code::CEASE)
            {
                out.push(Action::Send(second.conn, Message::Notification(n.clone())));
            }
            out.push(Action::Close(second.conn));
            out.push(Action::CancelTimer(Timer::CollisionHold));
        }
        match self.conn.take() {
            Some(c) => {
                if let Some(n) = notification {
                    out.push(Action::Send(c, Message::Notification(n)));
                }
                out.push(Action::Close(c));
            }
            // No connection yet: abandon our attempt, if one is in flight.
            None if self.state == State::Connect => out.push(Action::Close(Conn::Outgoing)),
            None => {}
        }
        for t in [Timer::ConnectRetry, Timer::Hold, Timer::Keepalive] {
            out.push(Action::CancelTimer(t));
        }
        tracing::info!(peer_as = self.config.peer_as, from = ?self.state, ?reason, "bgp session down");
        // Decided before the negotiated parameters are forgotten.
        let kept = self.retention(&reason, now);
        self.state = State::Idle;
        self.opened_at = None;
        self.rx.clear();
        self.prefixes.clear();
        self.negotiated = None;
        match kept {
            Some(kept) if self.auto_restart => {
                // The restarting peer is let in at once (Active takes its
                // connection); our own attempt waits for the backoff.
                self.report_retained(reason, kept, now, out);
                let delay = self.backoff.next_delay(self.established_at, now);
                self.state = State::Active;
                out.push(Action::ArmTimer(Timer::ConnectRetry, delay));
            }
            _ => {
                self.gr_forget(out);
                out.push(Action::SessionDown(reason));
                if self.auto_restart {
                    let delay = restart_in
                        .unwrap_or_else(|| self.backoff.next_delay(self.established_at, now));
                    out.push(Action::ArmTimer(Timer::IdleHold, delay));
                }
            }
        }
        self.established_at = None;
    }

    fn fail(&mut self, n: Notification, now: Instant, out: &mut Vec<Action>) {
        self.down(
            Some(n.clone()),
            DownReason::LocalNotification(n),
            None,
            now,
            out,
        );
    }

    fn decode_options(&self) -> DecodeOptions {
        DecodeOptions {
            external_peer: self.config.is_external(),
            as_width: self.as_width(),
        }
    }

    /// Frames and decodes the octets of connection `c` one message at a
    /// time (an OPEN may change how the next message is read, or which
    /// connection the rest belongs to).
    fn receive_bytes(&mut self, c: Conn, bytes: &[u8], now: Instant, out: &mut Vec<Action>) {
        match self.buffer(c) {
            Some(rx) => rx.extend_from_slice(bytes),
            None => return, // no connection is ours to read in this state
        }
        loop {
            if self.is_held(c) {
                return; // read once the collision is decided
            }
            let opts = self.decode_options();
            let Some(rx) = self.buffer(c) else { return };
            let len = match wire::frame_len(rx) {
                Ok(Some(len)) if rx.len() >= len => len,
                Ok(_) => return,
                Err(e) => return self.decode_failed(c, e.notification, now, out),
            };
            let frame: Vec<u8> = rx.drain(..len).collect();
            match Message::decode_with(&frame, opts) {
                Ok(m) if self.is_second(c) => self.second_receive(m, now, out),
                Ok(m) => self.receive(m, now, out),
                Err(e) => {
                    tracing::warn!(peer_as = self.config.peer_as, error = %e, "bgp decode error");
                    return self.decode_failed(c, e.notification, now, out);
                }
            }
        }
    }

    /// The receive buffer of connection `c`, if it is one of ours.
    fn buffer(&mut self, c: Conn) -> Option<&mut Vec<u8>> {
        if self.conn == Some(c) && self.has_open_sent() {
            return Some(&mut self.rx);
        }
        self.second
            .as_mut()
            .filter(|s| s.conn == c)
            .map(|s| &mut s.rx)
    }

    fn decode_failed(&mut self, c: Conn, n: Notification, now: Instant, out: &mut Vec<Action>) {
        if self.is_second(c) {
            self.close_second(Some(n), out);
        } else {
            self.fail(n, now, out);
        }
    }

    fn receive(&mut self, m: Message, now: Instant, out: &mut Vec<Action>) {
        use State::*;
        let fsm_error = |sub| Notification::new(error::code::FSM, sub, vec![]);
        match (self.state, m) {
            (OpenSent | OpenConfirm | Established, Message::Notification(n)) => {
                self.down(None, DownReason::PeerNotification(n), None, now, out);
            }
            (OpenSent, Message::Open(open)) => match self.negotiate(&open) {
                Ok(neg) => {
                    let c = self.conn.expect("OpenSent has a connection");
                    self.open_received(c, neg, now, out);
                }
                Err(n) => self.fail(n, now, out),
            },
            (OpenConfirm, Message::Keepalive) => {
                self.arm_hold(out);
                self.close_losing_second(out);
                self.state = Established;
                self.established_at = Some(now);
                let neg = self.negotiated.clone().expect("negotiated in OpenSent");
                tracing::info!(
                    peer_as = neg.peer_as,
                    hold = neg.hold_time,
                    four_octet_as = neg.four_octet_as,
                    graceful_restart = neg.graceful_restart.is_some(),
                    "bgp session established"
                );
                out.push(Action::Established(neg.clone()));
                self.gr_established(&neg, out);
            }
            (Established, Message::Keepalive) => self.arm_hold(out),
            (Established, Message::Update(u)) => {
                self.arm_hold(out);
                match u.end_of_rib_family() {
                    Some((afi, safi)) => self.end_of_rib_received(afi, safi, out),
                    None => self.receive_update(u, now, out),
                }
            }
            (Established, Message::RouteRefresh(r)) => {
                if self.config.families().contains(&(r.afi, r.safi)) {
                    out.push(Action::RouteRefreshRequested {
                        afi: r.afi,
                        safi: r.safi,
                    });
                }
                // RFC 2918 §4: an unsupported AFI/SAFI is ignored.
            }
            (OpenSent, _) => self.fail(fsm_error(error::fsm::UNEXPECTED_IN_OPENSENT), now, out),
            (OpenConfirm, _) => {
                self.fail(fsm_error(error::fsm::UNEXPECTED_IN_OPENCONFIRM), now, out);
            }
            (Established, _) => {
                self.fail(fsm_error(error::fsm::UNEXPECTED_IN_ESTABLISHED), now, out);
            }
            // No connection in Idle/Connect/Active: nothing can arrive.
            (Idle | Connect | Active, _) => {}
        }
    }

    fn receive_update(&mut self, mut u: Update, now: Instant, out: &mut Vec<Action>) {
        // RFC 4271 §6.3 / RFC 7606 §7.2: an eBGP route must start with the
        // peer's AS; otherwise withdraw instead of resetting.
        if self.config.is_external()
            && !u.treated_as_withdraw()
            && let Some(PathAttribute::AsPath(segs)) = u.attribute(wire::update::attr::AS_PATH)
            && !matches!(segs.first(), Some(AsSegment::Sequence(a)) if a.first() == Some(&self.config.peer_as))
        {
            u.treat_as_withdraw(
                wire::update::attr::AS_PATH,
                "AS_PATH does not start with the peer's AS",
            );
        }
        // RFC 4271 §9.1.2: a route whose AS_PATH already holds our AS is a
        // loop (e.g. our own routes reflected back by the customer over the
        // other link). It is not accepted, so it does not count against the
        // prefix limit either.
        if !u.treated_as_withdraw()
            && let Some(PathAttribute::AsPath(segs)) = u.attribute(wire::update::attr::AS_PATH)
            && segs.iter().any(|s| match s {
                AsSegment::Sequence(a) | AsSegment::Set(a) => a.contains(&self.config.local_as),
            })
        {
            u.treat_as_withdraw(
                wire::update::attr::AS_PATH,
                "AS_PATH contains the local AS (loop)",
            );
        }
        // RFC 6793: the path as merged from a 2-octet peer's AS_PATH and
        // AS4_PATH (what the RIB's AS-path length and loop check saw).
        if self.as_width() == AsWidth::Two
            && let Some(PathAttribute::AsPath(segs)) = u.attribute(wire::update::attr::AS_PATH)
        {
            tracing::debug!(peer_as = self.config.peer_as, as_path = ?segs, "bgp UPDATE from a 2-octet AS peer");
        }
        if !u.issues.is_empty() {
            // RFC 7606 §6: errors handled without a reset must be logged.
            tracing::warn!(peer_as = self.config.peer_as, issues = ?u.issues, "bgp UPDATE error handled");
        }
        match self
            .prefixes
            .apply(&u, self.config.max_prefixes_v4, self.config.max_prefixes_v6)
        {
            Ok(()) => out.push(Action::RoutesReceived(u)),
            Err(exceeded) => {
                tracing::warn!(peer_as = self.config.peer_as, ?exceeded, "bgp prefix limit");
                self.down(
                    Some(exceeded.notification()),
                    DownReason::PrefixLimit(exceeded),
                    None,
                    now,
                    out,
                );
            }
        }
    }

    /// Checks the peer's OPEN (RFC 4271 §6.2) and agrees on parameters.
    fn negotiate(&self, open: &Open) -> Result<Negotiated, Notification> {
        let open_err = |sub, data| Notification::new(error::code::OPEN_MESSAGE, sub, data);
        // Without the 4-octet AS capability the peer's AS is its 2-octet
        // My AS; a customer ASN above 65535 cannot be that (RFC 6793 §4.2:
        // such a speaker would send AS_TRANS, and only with the capability).
        let four_octet_as = open.four_octet_as().is_some();
        if open.asn() != self.config.peer_as {
            return Err(open_err(error::open::BAD_PEER_AS, vec![]));
        }
        let id = open.bgp_id;
        if id.is_unspecified() || (!self.config.is_external() && id == self.config.router_id) {
            return Err(open_err(error::open::BAD_BGP_IDENTIFIER, vec![]));
        }
        let peer_hold = open.hold_time;
        if peer_hold != 0 && peer_hold < self.config.min_hold_time.max(3) {
            return Err(open_err(error::open::UNACCEPTABLE_HOLD_TIME, vec![]));
        }
        let hold_time = peer_hold.min(self.config.hold_time);
        // RFC 4760 §8: no multiprotocol capability means IPv4 unicast only.
        let v4 = open.supports_family(AFI_IPV4, SAFI_UNICAST) || !open.has_multiprotocol();
        let route_refresh = open.supports_route_refresh();
        if open
            .capabilities
            .iter()
            .any(|c| matches!(c, Capability::Unknown { .. }))
        {
            tracing::debug!(
                peer_as = self.config.peer_as,
                "peer offered capabilities we ignore"
            );
        }
        Ok(Negotiated {
            peer_as: open.asn(),
            peer_id: id,
            hold_time,
            keepalive: hold_time / 3,
            ipv4_unicast: self.config.ipv4_unicast && v4,
            ipv6_unicast: self.config.ipv6_unicast && open.supports_family(AFI_IPV6, SAFI_UNICAST),
            route_refresh,
            four_octet_as,
            graceful_restart: self
                .config
                .graceful_restart
                .and(open.graceful_restart().cloned()),
        })
    }
}

fn secs(s: u16) -> Duration {
    Duration::from_secs(u64::from(s))
}
