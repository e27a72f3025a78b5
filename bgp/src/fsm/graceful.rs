//! Graceful restart (RFC 4724), both roles, sans-IO like the rest of the
//! FSM.
//!
//! * Restarting speaker (us, after a restart that kept forwarding): our
//!   OPEN carries the capability with the Restart State bit and each
//!   family's Forwarding State bit ([`GracefulRestartConfig::forwarding_preserved`]),
//!   until the session is first established; later OPENs (a session lost
//!   while we kept running) say the forwarding state was preserved but
//!   not that we restarted. Once the owner has sent its initial
//!   advertisements ([`Event::InitialUpdateDone`](super::Event::InitialUpdateDone)) an End-of-RIB goes out
//!   per family. [`Event::StopForRestart`](super::Event::StopForRestart) ends a session without a
//!   NOTIFICATION, so that the peer keeps our routes while we restart.
//! * Receiving speaker ("helper"): when an Established session with a peer
//!   that sent the capability is lost without a NOTIFICATION (the
//!   connection closed, or a new one brought the peer's OPEN, RFC 4724
//!   §4.2) or by our hold timer (RFC 8538's rule, without the rest of
//!   RFC 8538), the owner is told to keep the peer's routes of the
//!   families in its capability, stale ([`Action::SessionDownStale`]), for
//!   the Restart Time the peer advertised. Failed attempts to come back
//!   within that time change nothing. Once established again, a family
//!   the peer no longer lists with its Forwarding State bit is purged at
//!   once; the others as soon as their End-of-RIB arrives, or when
//!   [`GracefulRestartConfig::stale_time`] runs out without it. The owner
//!   unmarks each route the peer announces again ([`Action::PurgeStale`]
//!   removes only what is still stale). A session lost again before that
//!   purges the old stale routes before marking the current ones (RFC 4724
//!   §4.2, consecutive restarts). Any other way down (a NOTIFICATION either
//!   way, BFD, carrier, a manual stop) is an ordinary [`Action::SessionDown`]:
//!   every route goes, stale ones included.
//!
//! After a loss that keeps routes, the session goes to Active rather than
//! Idle: the restarting peer's connection is taken at once, and only our
//! own connection attempt waits for the IdleHold backoff.

use super::{Action, Conn, DownReason, Negotiated, Session, State, Timer, secs};
use crate::wire::{
    AFI_IPV4, AFI_IPV6, GrFamily, GracefulRestart, Message, SAFI_UNICAST, Update,
    open::MAX_RESTART_TIME,
};
use std::time::{Duration, Instant};

/// Restart Time we advertise unless configured: what common routers use.
pub const DEFAULT_RESTART_TIME: u16 = 120;

/// How long a re-established peer's stale routes wait for its End-of-RIB
/// unless configured (FRR's stale-path time).
pub const DEFAULT_STALE_TIME: Duration = Duration::from_secs(360);

/// Graceful restart settings of a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GracefulRestartConfig {
    /// Seconds the peer should keep our routes while we restart (at most
    /// 4095: the field has 12 bits).
    pub restart_time: u16,
    /// This process restarted and found its forwarding state still in
    /// place: the first OPEN of the session says so (Restart State and
    /// Forwarding State bits), and the peer keeps forwarding to us.
    pub forwarding_preserved: bool,
    /// Upper bound on keeping a re-established peer's stale routes while
    /// its End-of-RIB does not come (RFC 4724 §4.2 allows one).
    pub stale_time: Duration,
}

impl Default for GracefulRestartConfig {
    fn default() -> Self {
        Self {
            restart_time: DEFAULT_RESTART_TIME,
            forwarding_preserved: false,
            stale_time: DEFAULT_STALE_TIME,
        }
    }
}

/// Why stale routes are removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PurgeReason {
    /// The peer's End-of-RIB for the family arrived.
    EndOfRib,
    /// The peer did not come back within its Restart Time.
    RestartTimeExpired,
    /// It came back, but its End-of-RIB did not come within the stale time.
    StaleTimeExpired,
    /// It came back without the family's Forwarding State bit (or without
    /// the family, or the capability): its forwarding was not preserved.
    NotPreserved,
    /// The session was lost again before the End-of-RIB.
    RestartedAgain,
}

/// What the helper side keeps between a session loss and the purge.
#[derive(Debug, Default)]
pub(super) struct GrState {
    /// Families whose routes the owner keeps, stale.
    retained: Vec<(u16, u8)>,
    /// When the peer's Restart Time runs out, while it is not established.
    restart_until: Option<Instant>,
    /// Whether the session was ever established in this process: its later
    /// losses are not our restarts, and our forwarding survived them.
    ever_established: bool,
}

/// Routes kept through a session loss.
pub(super) struct Kept {
    families: Vec<(u16, u8)>,
    restart_time: Duration,
    /// A new loss of an Established session (not a failed attempt to
    /// come back within the restart time already running).
    fresh: bool,
}

fn negotiated_family(neg: &Negotiated, family: (u16, u8)) -> bool {
    match family {
        (AFI_IPV4, SAFI_UNICAST) => neg.ipv4_unicast,
        (AFI_IPV6, SAFI_UNICAST) => neg.ipv6_unicast,
        _ => false,
    }
}

impl Session {
    /// The capability in our OPEN, if graceful restart is configured.
    pub(super) fn our_graceful_restart(&self) -> Option<GracefulRestart> {
        let gr = self.config.graceful_restart?;
        let preserved = gr.forwarding_preserved || self.gr.ever_established;
        Some(GracefulRestart {
            restart_state: gr.forwarding_preserved && !self.gr.ever_established,
            restart_time: gr.restart_time.min(MAX_RESTART_TIME),
            families: self
                .config
                .families()
                .into_iter()
                .map(|(afi, safi)| GrFamily {
                    afi,
                    safi,
                    forwarding_state: preserved,
                })
                .collect(),
        })
    }

    /// Whether a graceful-restart peer's OPEN on a new connection ends the
    /// Established session (RFC 4724 §4.2) instead of losing a collision.
    pub(super) fn restart_replaces_session(&self) -> bool {
        self.config.graceful_restart.is_some()
            && self
                .negotiated
                .as_ref()
                .is_some_and(|n| n.graceful_restart.is_some())
    }

    /// The routes kept if the session ends now for `reason` (called before
    /// the state and the negotiated parameters are reset).
    pub(super) fn retention(&self, reason: &DownReason, now: Instant) -> Option<Kept> {
        self.config.graceful_restart?;
        if !matches!(
            reason,
            DownReason::ConnectionClosed | DownReason::HoldTimerExpired | DownReason::PeerRestarted
        ) {
            return None;
        }
        if self.state == State::Established {
            let neg = self.negotiated.as_ref()?;
            let peer = neg.graceful_restart.as_ref()?;
            if peer.restart_time == 0 {
                return None;
            }
            let mut families: Vec<(u16, u8)> = Vec::new();
            for f in &peer.families {
                let f = (f.afi, f.safi);
                if negotiated_family(neg, f) && !families.contains(&f) {
                    families.push(f);
                }
            }
            if families.is_empty() {
                return None;
            }
            return Some(Kept {
                families,
                restart_time: secs(peer.restart_time),
                fresh: true,
            });
        }
        // A failed attempt to come back: the restart time runs on.
        let until = self.gr.restart_until?;
        if self.gr.retained.is_empty() {
            return None;
        }
        Some(Kept {
            families: self.gr.retained.clone(),
            restart_time: until.saturating_duration_since(now),
            fresh: false,
        })
    }

    /// Reports a loss that keeps routes (and arms the restart timer).
    pub(super) fn report_retained(
        &mut self,
        reason: DownReason,
        kept: Kept,
        now: Instant,
        out: &mut Vec<Action>,
    ) {
        if kept.fresh {
            // RFC 4724 §4.2: what is still stale from the previous restart
            // goes before the current routes are marked.
            if !self.gr.retained.is_empty() {
                for (afi, safi) in std::mem::take(&mut self.gr.retained) {
                    out.push(Action::PurgeStale {
                        afi,
                        safi,
                        reason: PurgeReason::RestartedAgain,
                    });
                }
                out.push(Action::CancelTimer(Timer::GrStale));
            }
            self.gr.retained = kept.families.clone();
            self.gr.restart_until = Some(now + kept.restart_time);
            out.push(Action::ArmTimer(Timer::GrRestart, kept.restart_time));
        }
        tracing::info!(peer_as = self.config.peer_as, ?reason, families = ?kept.families,
            restart_time = ?kept.restart_time, "bgp peer may be restarting: its routes are kept, stale");
        out.push(Action::SessionDownStale {
            reason,
            families: kept.families,
            restart_time: kept.restart_time,
        });
    }

    /// An ordinary loss: the owner drops every route, stale ones too.
    pub(super) fn gr_forget(&mut self, out: &mut Vec<Action>) {
        if self.gr.retained.is_empty() && self.gr.restart_until.is_none() {
            return;
        }
        self.gr.retained.clear();
        self.gr.restart_until = None;
        out.push(Action::CancelTimer(Timer::GrRestart));
        out.push(Action::CancelTimer(Timer::GrStale));
    }

    /// The session is established again (after `Action::Established`).
    pub(super) fn gr_established(&mut self, neg: &Negotiated, out: &mut Vec<Action>) {
        self.gr.ever_established = true;
        if self.gr.restart_until.take().is_some() {
            out.push(Action::CancelTimer(Timer::GrRestart));
        }
        if self.gr.retained.is_empty() {
            return;
        }
        let peer = neg.graceful_restart.as_ref();
        let mut kept = Vec::new();
        for (afi, safi) in std::mem::take(&mut self.gr.retained) {
            let preserved = negotiated_family(neg, (afi, safi))
                && peer
                    .and_then(|g| g.family(afi, safi))
                    .is_some_and(|f| f.forwarding_state);
            if preserved {
                kept.push((afi, safi));
            } else {
                out.push(Action::PurgeStale {
                    afi,
                    safi,
                    reason: PurgeReason::NotPreserved,
                });
            }
        }
        self.gr.retained = kept;
        if !self.gr.retained.is_empty()
            && let Some(gr) = self.config.graceful_restart
        {
            out.push(Action::ArmTimer(Timer::GrStale, gr.stale_time));
        }
    }

    pub(super) fn gr_timer_expired(&mut self, t: Timer, out: &mut Vec<Action>) {
        let reason = match t {
            Timer::GrRestart if self.gr.restart_until.take().is_some() => {
                PurgeReason::RestartTimeExpired
            }
            Timer::GrStale if self.state == State::Established => PurgeReason::StaleTimeExpired,
            _ => return,
        };
        if !self.gr.retained.is_empty() {
            tracing::info!(peer_as = self.config.peer_as, ?reason, families = ?self.gr.retained,
                "bgp stale routes of a restarting peer removed");
        }
        for (afi, safi) in std::mem::take(&mut self.gr.retained) {
            out.push(Action::PurgeStale { afi, safi, reason });
        }
    }

    pub(super) fn end_of_rib_received(&mut self, afi: u16, safi: u8, out: &mut Vec<Action>) {
        tracing::debug!(
            peer_as = self.config.peer_as,
            afi,
            safi,
            "bgp End-of-RIB received"
        );
        out.push(Action::EndOfRib { afi, safi });
        if let Some(i) = self.gr.retained.iter().position(|f| *f == (afi, safi)) {
            self.gr.retained.remove(i);
            out.push(Action::PurgeStale {
                afi,
                safi,
                reason: PurgeReason::EndOfRib,
            });
            if self.gr.retained.is_empty() {
                out.push(Action::CancelTimer(Timer::GrStale));
            }
        }
    }

    /// End-of-RIB for each family of the session, after our initial
    /// advertisements.
    pub(super) fn send_end_of_rib(&self, out: &mut Vec<Action>) {
        if self.config.graceful_restart.is_none() {
            return;
        }
        let Some(neg) = &self.negotiated else { return };
        for f in self.config.families() {
            if negotiated_family(neg, f)
                && let Some(eor) = Update::end_of_rib(f.0, f.1)
            {
                self.send(Message::Update(eor), out);
            }
        }
        self.arm_keepalive(out);
    }

    /// A new connection from a graceful-restart peer while Established on
    /// its previous one ([`Session::accepts_connection`] let it in): the
    /// peer restarted. RFC 4724 §4.2 takes the OPEN on the new connection
    /// as the sign ([`Session::peer_reconnected`], when the session runs
    /// on our connection, waits for the KEEPALIVE after it too: there the
    /// new connection may be one that crossed ours in a collision; here
    /// the peer's only one is the session's), but with one connection per direction the
    /// transport cannot keep both until it comes: it has dropped the old
    /// one, as BIRD does on such a connection. The routes are kept as for
    /// a lost connection and the new connection goes on in OpenSent.
    pub(super) fn peer_connected_anew(&mut self, c: Conn, now: Instant, out: &mut Vec<Action>) {
        tracing::info!(
            peer_as = self.config.peer_as,
            "bgp peer connected anew while established: it restarted (RFC 4724)"
        );
        // Gone already: nothing is sent on it or closed.
        self.conn = None;
        self.down(None, DownReason::PeerRestarted, None, now, out);
        out.push(Action::CancelTimer(Timer::IdleHold));
        self.open_sent(c, now, out);
    }

    /// The peer's OPEN and then KEEPALIVE on a new connection while
    /// Established, from a peer that does graceful restart: it restarted
    /// without our noticing (a peer whose connection merely crossed ours
    /// would have closed it with a Cease instead of the KEEPALIVE). The
    /// old connection is closed (no NOTIFICATION: the peer left it), its
    /// routes kept as for a lost connection, and the new one goes on to
    /// OpenConfirm.
    pub(super) fn peer_reconnected(
        &mut self,
        neg: Negotiated,
        now: Instant,
        out: &mut Vec<Action>,
    ) {
        let second = self
            .second
            .take()
            .expect("the OPEN came on the second connection");
        tracing::info!(peer_as = self.config.peer_as, peer_id = %neg.peer_id,
            "bgp peer opened a new session while established: it restarted (RFC 4724)");
        self.down(None, DownReason::PeerRestarted, None, now, out);
        // Whatever down() scheduled to come back is moot: the session goes
        // on on the new connection.
        out.push(Action::CancelTimer(Timer::IdleHold));
        out.push(Action::CancelTimer(Timer::ConnectRetry));
        self.second = Some(second);
        self.take_second(out);
        self.state = State::OpenSent;
        self.open_confirm(neg, out);
    }
}
