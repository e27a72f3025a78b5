//! One BFD session in Asynchronous mode (RFC 5880 §6.8), sans-IO.
//!
//! The caller feeds [`Event`]s with the current time and executes the
//! returned [`Action`]s in order (send a packet, arm or cancel a timer,
//! report a state change). No clock, socket or thread lives here, so every
//! path, timers included, is unit-tested by sending events. Call
//! [`Session::start`] once to get the first packet and transmit timer.
//!
//! Behaviour, by RFC section:
//! * §6.8.6 reception: the stateless checks of
//!   [`ControlPacket::check`](crate::wire::ControlPacket::check), then Your
//!   Discriminator must be ours when non-zero and the A bit must be clear
//!   (no authentication is configured). Every discard is counted by
//!   [`DiscardReason`]; nothing panics.
//! * §6.2 / §6.8.6 state machine: Down -> Init -> Up three-way handshake;
//!   a peer's AdminDown takes us Down with diag 3 (Neighbor Signaled
//!   Down), a peer's Down takes us from Up to Down with diag 3; our own
//!   AdminDown sets diag 7 and ignores received packets until AdminUp.
//! * §6.8.4 detection: Detection Time = the peer's Detect Mult x
//!   max(our Required Min RX, the peer's Desired Min TX), re-armed on every
//!   valid packet; expiry in Init or Up goes Down with diag 1, and in any
//!   state forgets the peer's discriminator.
//! * §6.8.2 / §6.8.7 transmission: interval = max(our Desired Min TX, the
//!   peer's Required Min RX), reduced per packet by a random 0-25% (10-25%
//!   when our Detect Mult is 1). No periodic packets while the peer's
//!   Required Min RX is zero, or while the peer is in Demand mode and both
//!   sides are Up. A packet goes out at once on every state change and in
//!   answer to a Poll (with F set).
//! * §6.8.3 timers: while not Up, Desired Min TX is at least 1 s. A change
//!   of our intervals while Up (including going Up, when the 1 s floor
//!   lifts) starts a Poll Sequence. Changes that are safe at once take
//!   effect at once (a shorter transmit interval, a longer Required Min RX);
//!   the others (a longer transmit interval, a shorter Required Min RX,
//!   i.e. a shorter detection time) take effect when the Final arrives. A
//!   change during a Poll Sequence marks it stale: its Final then starts a
//!   new Poll Sequence for the latest values instead of applying them.
//!
//! Not implemented: authentication, Demand mode on our side, the Echo
//! function (we advertise Required Min Echo RX 0), the passive role.

#[cfg(test)]
mod tests;

use crate::wire::{ControlPacket, DecodeError, Diag, State};
use std::time::{Duration, Instant};

/// §6.8.3: Desired Min TX while the session is not Up.
pub const SLOW_TX: Duration = Duration::from_secs(1);
const SLOW_TX_US: u32 = 1_000_000;
/// Shortest interval [`Config::validate`] accepts.
pub const MIN_INTERVAL: Duration = Duration::from_millis(1);
/// Longest interval the wire can carry (u32 microseconds, about 71 min).
pub const MAX_INTERVAL: Duration = Duration::from_micros(u32::MAX as u64);

/// Local parameters of a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// bfd.DesiredMinTxInterval (floored at 1 s while not Up).
    pub desired_min_tx: Duration,
    /// bfd.RequiredMinRxInterval.
    pub required_min_rx: Duration,
    /// bfd.DetectMult.
    pub detect_mult: u8,
}

impl Default for Config {
    /// ExpressRoute's default: 300 ms x 3.
    fn default() -> Self {
        Self {
            desired_min_tx: Duration::from_millis(300),
            required_min_rx: Duration::from_millis(300),
            detect_mult: 3,
        }
    }
}

/// A [`Config`] that [`Config::validate`] refuses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("detect multiplier must be at least 1")]
    DetectMultZero,
    #[error("{field} {value:?} is outside {MIN_INTERVAL:?}..={MAX_INTERVAL:?}")]
    Interval {
        field: &'static str,
        value: Duration,
    },
}

impl Config {
    /// Intervals within [`MIN_INTERVAL`]..=[`MAX_INTERVAL`] and a non-zero
    /// detect multiplier. The session itself clamps anything else into
    /// range instead of failing.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.detect_mult == 0 {
            return Err(ConfigError::DetectMultZero);
        }
        for (field, value) in [
            ("desired_min_tx", self.desired_min_tx),
            ("required_min_rx", self.required_min_rx),
        ] {
            if !(MIN_INTERVAL..=MAX_INTERVAL).contains(&value) {
                return Err(ConfigError::Interval { field, value });
            }
        }
        Ok(())
    }

    fn clamped(self) -> Self {
        let c = |d: Duration| d.clamp(MIN_INTERVAL, MAX_INTERVAL);
        Self {
            desired_min_tx: c(self.desired_min_tx),
            required_min_rx: c(self.required_min_rx),
            detect_mult: self.detect_mult.max(1),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Timer {
    /// Time to send the next periodic packet.
    Transmit,
    /// Detection Time passed without a valid packet from the peer.
    Detect,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A packet from the peer, already decoded (and demultiplexed to this
    /// session by the transport).
    Received(ControlPacket),
    TimerExpired(Timer),
    AdminDown,
    AdminUp,
    /// New local intervals or multiplier (a Poll Sequence if Up).
    SetConfig(Config),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Send(ControlPacket),
    /// (Re)start a timer to expire after the duration; replaces a running
    /// one of the same kind.
    ArmTimer(Timer, Duration),
    CancelTimer(Timer),
    /// Reported before the packet that announces the new state.
    StateChanged {
        from: State,
        to: State,
        diag: Diag,
    },
}

/// Why a received packet was discarded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DiscardReason {
    /// Fewer octets than the mandatory section.
    Truncated,
    Version,
    /// Length below 24 (26 with A), or beyond the UDP payload.
    Length,
    DetectMultZero,
    Multipoint,
    MyDiscriminatorZero,
    /// Your Discriminator zero while the packet's state is Init or Up.
    YourDiscriminatorZero,
    /// Your Discriminator names no session (or not this one).
    UnknownDiscriminator,
    /// The A bit is set; no authentication is configured.
    Authentication,
    /// RFC 5881 §5: IP TTL / hop limit not 255.
    Ttl,
    /// The discriminator names a session with another peer address or
    /// interface (transport).
    AddressMismatch,
    /// No session for this peer address and interface (transport).
    NoSession,
    /// Valid, but our session is AdminDown (§6.8.6: discarded).
    LocalAdminDown,
}

impl DiscardReason {
    pub const ALL: [DiscardReason; 13] = [
        DiscardReason::Truncated,
        DiscardReason::Version,
        DiscardReason::Length,
        DiscardReason::DetectMultZero,
        DiscardReason::Multipoint,
        DiscardReason::MyDiscriminatorZero,
        DiscardReason::YourDiscriminatorZero,
        DiscardReason::UnknownDiscriminator,
        DiscardReason::Authentication,
        DiscardReason::Ttl,
        DiscardReason::AddressMismatch,
        DiscardReason::NoSession,
        DiscardReason::LocalAdminDown,
    ];

    /// snake_case name, as in the JSON status.
    pub fn name(self) -> &'static str {
        match self {
            DiscardReason::Truncated => "truncated",
            DiscardReason::Version => "version",
            DiscardReason::Length => "length",
            DiscardReason::DetectMultZero => "detect_mult_zero",
            DiscardReason::Multipoint => "multipoint",
            DiscardReason::MyDiscriminatorZero => "my_discriminator_zero",
            DiscardReason::YourDiscriminatorZero => "your_discriminator_zero",
            DiscardReason::UnknownDiscriminator => "unknown_discriminator",
            DiscardReason::Authentication => "authentication",
            DiscardReason::Ttl => "ttl",
            DiscardReason::AddressMismatch => "address_mismatch",
            DiscardReason::NoSession => "no_session",
            DiscardReason::LocalAdminDown => "local_admin_down",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

impl From<DecodeError> for DiscardReason {
    fn from(e: DecodeError) -> Self {
        match e {
            DecodeError::Truncated { .. } => DiscardReason::Truncated,
            DecodeError::Version(_) => DiscardReason::Version,
            DecodeError::LengthTooSmall { .. } | DecodeError::LengthExceedsPayload { .. } => {
                DiscardReason::Length
            }
            DecodeError::DetectMultZero => DiscardReason::DetectMultZero,
            DecodeError::Multipoint => DiscardReason::Multipoint,
            DecodeError::MyDiscriminatorZero => DiscardReason::MyDiscriminatorZero,
            DecodeError::YourDiscriminatorZero(_) => DiscardReason::YourDiscriminatorZero,
        }
    }
}

/// Discarded packets, per reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DiscardCounters([u64; DiscardReason::ALL.len()]);

impl DiscardCounters {
    pub fn get(&self, r: DiscardReason) -> u64 {
        self.0[r.index()]
    }

    pub fn add(&mut self, r: DiscardReason) {
        self.0[r.index()] += 1;
    }

    pub fn total(&self) -> u64 {
        self.0.iter().sum()
    }

    /// Every reason with its count (zeros included).
    pub fn iter(&self) -> impl Iterator<Item = (DiscardReason, u64)> + '_ {
        DiscardReason::ALL.iter().map(|&r| (r, self.get(r)))
    }

    /// Adds every count of `other`.
    pub fn merge(&mut self, other: &DiscardCounters) {
        for (a, b) in self.0.iter_mut().zip(other.0) {
            *a += b;
        }
    }
}

#[cfg(feature = "serde")]
impl serde::Serialize for DiscardCounters {
    /// A map from reason name to count, non-zero reasons only.
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let nonzero: Vec<_> = self.iter().filter(|(_, n)| *n > 0).collect();
        let mut m = s.serialize_map(Some(nonzero.len()))?;
        for (r, n) in nonzero {
            m.serialize_entry(r.name(), &n)?;
        }
        m.end()
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// Valid packets accepted by the session.
    pub packets_in: u64,
    pub packets_out: u64,
    pub discarded: DiscardCounters,
    pub polls_sent: u64,
    pub polls_received: u64,
    pub finals_sent: u64,
    pub finals_received: u64,
    /// Transitions into Up, and out of Up.
    pub ups: u64,
    pub downs: u64,
}

/// A snapshot of the session for management and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Status {
    pub state: State,
    pub remote_state: State,
    /// bfd.LocalDiag: the reason for our last state change.
    pub diag: Diag,
    /// The diag of our last transition out of Up (or into AdminDown).
    pub last_down_diag: Diag,
    /// The diag in the peer's last valid packet.
    pub remote_diag: Diag,
    pub my_disc: u32,
    /// Zero until the peer is heard, and again after Detection Time.
    pub remote_disc: u32,
    pub config: Config,
    /// Transmit interval in force, before jitter: max(our Desired Min TX
    /// (as in force), the peer's Required Min RX).
    pub tx_interval: Duration,
    /// Receive interval in force: max(our Required Min RX (as in force),
    /// the peer's Desired Min TX).
    pub rx_interval: Duration,
    /// None until the peer's first packet.
    pub detection_time: Option<Duration>,
    pub remote_detect_mult: u8,
    pub remote_desired_min_tx: Duration,
    pub remote_required_min_rx: Duration,
    /// A Poll Sequence of ours is in progress.
    pub polling: bool,
    /// When the state last changed (None before the first change).
    pub since: Option<Instant>,
    /// When the last valid packet arrived.
    pub last_rx: Option<Instant>,
    pub counters: Counters,
}

#[derive(Debug, Clone)]
pub struct Session {
    cfg: Config,
    my_disc: u32,
    state: State,
    diag: Diag,
    last_down_diag: Diag,
    remote_state: State,
    remote_diag: Diag,
    remote_disc: u32,
    remote_demand: bool,
    /// 0 until the peer's first packet: no detection before it.
    remote_detect_mult: u8,
    /// µs.
    remote_desired_tx_us: u32,
    /// bfd.RemoteMinRxInterval, 1 µs until heard (§6.8.1).
    remote_min_rx_us: u32,
    /// Desired Min TX in force for our transmit interval, µs.
    eff_tx_us: u32,
    /// Required Min RX in force for our detection time, µs.
    eff_rx_us: u32,
    polling: bool,
    /// The configuration changed during the current Poll Sequence.
    poll_stale: bool,
    started: bool,
    tx_deadline: Option<Instant>,
    detect_deadline: Option<Instant>,
    since: Option<Instant>,
    last_rx: Option<Instant>,
    rng: u64,
    counters: Counters,
}

fn us(d: Duration) -> u32 {
    u32::try_from(d.as_micros()).unwrap_or(u32::MAX)
}

fn dur(us: u64) -> Duration {
    Duration::from_micros(us)
}

impl Session {
    /// A session in state Down. `my_disc` must be non-zero and unique
    /// among the caller's sessions (0 is replaced by 1); it also seeds the
    /// jitter, see [`Session::with_seed`].
    pub fn new(my_disc: u32, cfg: Config) -> Self {
        Self::with_seed(my_disc, cfg, u64::from(my_disc))
    }

    /// As [`Session::new`] with an explicit seed for the transmit jitter.
    pub fn with_seed(my_disc: u32, cfg: Config, seed: u64) -> Self {
        let cfg = cfg.clamped();
        Self {
            cfg,
            my_disc: my_disc.max(1),
            state: State::Down,
            diag: Diag::None,
            last_down_diag: Diag::None,
            remote_state: State::Down,
            remote_diag: Diag::None,
            remote_disc: 0,
            remote_demand: false,
            remote_detect_mult: 0,
            remote_desired_tx_us: 0,
            remote_min_rx_us: 1,
            eff_tx_us: us(cfg.desired_min_tx).max(SLOW_TX_US),
            eff_rx_us: us(cfg.required_min_rx),
            polling: false,
            poll_stale: false,
            started: false,
            tx_deadline: None,
            detect_deadline: None,
            since: None,
            last_rx: None,
            rng: seed ^ 0x5bd1_e995_9e37_79b9,
            counters: Counters::default(),
        }
    }

    /// Sends the first packet and arms the transmit timer. Only the first
    /// call does anything; before it the session sends nothing (packets it
    /// receives are still handled).
    pub fn start(&mut self, now: Instant) -> Vec<Action> {
        let mut acts = Vec::new();
        if !self.started {
            self.started = true;
            self.send(&mut acts, false);
            self.arm_tx(&mut acts, now);
        }
        acts
    }

    pub fn state(&self) -> State {
        self.state
    }

    pub fn my_disc(&self) -> u32 {
        self.my_disc
    }

    pub fn config(&self) -> Config {
        self.cfg
    }

    pub fn status(&self) -> Status {
        Status {
            state: self.state,
            remote_state: self.remote_state,
            diag: self.diag,
            last_down_diag: self.last_down_diag,
            remote_diag: self.remote_diag,
            my_disc: self.my_disc,
            remote_disc: self.remote_disc,
            config: self.cfg,
            tx_interval: dur(self.tx_interval_us()),
            rx_interval: dur(u64::from(self.eff_rx_us.max(self.remote_desired_tx_us))),
            detection_time: self.detection_us().map(dur),
            remote_detect_mult: self.remote_detect_mult,
            remote_desired_min_tx: dur(self.remote_desired_tx_us.into()),
            remote_required_min_rx: dur(self.remote_min_rx_us.into()),
            polling: self.polling,
            since: self.since,
            last_rx: self.last_rx,
            counters: self.counters,
        }
    }

    /// Feeds one event; the actions are to be executed in order.
    pub fn handle(&mut self, e: Event, now: Instant) -> Vec<Action> {
        let mut acts = Vec::new();
        match e {
            Event::Received(p) => self.receive(p, now, &mut acts),
            Event::TimerExpired(Timer::Transmit) => {
                if self.tx_deadline.take().is_some() {
                    self.send(&mut acts, false);
                    self.arm_tx(&mut acts, now);
                }
            }
            Event::TimerExpired(Timer::Detect) => self.detect_expired(now, &mut acts),
            Event::AdminDown => {
                if self.state != State::AdminDown {
                    self.set_state(State::AdminDown, Diag::AdminDown, now, &mut acts);
                }
            }
            Event::AdminUp => {
                if self.state == State::AdminDown {
                    self.set_state(State::Down, Diag::None, now, &mut acts);
                }
            }
            Event::SetConfig(cfg) => self.set_config(cfg.clamped(), now, &mut acts),
        }
        acts
    }

    /// Counts a packet the transport discarded on this session's behalf
    /// (TTL, decode errors, address mismatch).
    pub fn count_discard(&mut self, r: DiscardReason) {
        self.counters.discarded.add(r);
    }

    // ---- reception (§6.8.6) ----

    fn receive(&mut self, p: ControlPacket, now: Instant, acts: &mut Vec<Action>) {
        if let Err(e) = p.check() {
            return self.count_discard(e.into());
        }
        if p.your_disc != 0 && p.your_disc != self.my_disc {
            return self.count_discard(DiscardReason::UnknownDiscriminator);
        }
        if p.auth {
            return self.count_discard(DiscardReason::Authentication);
        }
        self.remote_disc = p.my_disc;
        self.remote_state = p.state;
        self.remote_diag = p.diag;
        self.remote_demand = p.demand;
        self.remote_min_rx_us = p.required_min_rx_us;
        self.remote_desired_tx_us = p.desired_min_tx_us;
        self.remote_detect_mult = p.detect_mult;
        if p.poll {
            self.counters.polls_received += 1;
        }
        if p.fin {
            self.counters.finals_received += 1;
        }
        if self.state == State::AdminDown {
            // (No Poll Sequence runs in AdminDown, so no Final is lost.)
            return self.count_discard(DiscardReason::LocalAdminDown);
        }
        self.counters.packets_in += 1;
        self.last_rx = Some(now);
        if p.fin && self.polling {
            self.poll_terminated(now, acts);
        }

        if p.state == State::AdminDown {
            if self.state != State::Down {
                self.set_state(State::Down, Diag::NeighborSignaledDown, now, acts);
            }
        } else {
            match (self.state, p.state) {
                (State::Down, State::Down) => self.set_state(State::Init, Diag::None, now, acts),
                (State::Down, State::Init) | (State::Init, State::Init | State::Up) => {
                    self.set_state(State::Up, Diag::None, now, acts);
                }
                (State::Up, State::Down) => {
                    self.set_state(State::Down, Diag::NeighborSignaledDown, now, acts);
                }
                _ => {}
            }
        }
        // The peer's Required Min RX and Demand bit set our transmission
        // from now on.
        self.retime_tx(now, acts);
        // §6.8.4: the packet counts for detection.
        if let Some(d) = self.detection_us() {
            self.detect_deadline = Some(now + dur(d));
            acts.push(Action::ArmTimer(Timer::Detect, dur(d)));
        }
        if p.poll {
            self.counters.finals_sent += 1;
            self.send(acts, true);
        }
    }

    fn detect_expired(&mut self, now: Instant, acts: &mut Vec<Action>) {
        let Some(deadline) = self.detect_deadline else {
            return; // not armed: stale
        };
        if now < deadline {
            // Early or stale expiry: keep the real deadline.
            acts.push(Action::ArmTimer(Timer::Detect, deadline - now));
            return;
        }
        self.detect_deadline = None;
        self.remote_disc = 0;
        self.remote_state = State::Down;
        self.remote_demand = false;
        if matches!(self.state, State::Init | State::Up) {
            self.set_state(State::Down, Diag::ControlDetectionTimeExpired, now, acts);
        }
        self.retime_tx(now, acts);
    }

    // ---- state changes ----

    fn set_state(&mut self, to: State, diag: Diag, now: Instant, acts: &mut Vec<Action>) {
        let from = self.state;
        self.state = to;
        self.diag = diag;
        self.since = Some(now);
        acts.push(Action::StateChanged { from, to, diag });
        if from == State::Up {
            self.counters.downs += 1;
            // Poll Sequences only run while Up; the 1 s floor applies again.
            self.polling = false;
            self.poll_stale = false;
        }
        if to == State::Up {
            self.counters.ups += 1;
        }
        if matches!(to, State::Down | State::AdminDown) && diag != Diag::None {
            self.last_down_diag = diag;
        }
        if to == State::AdminDown {
            self.detect_deadline = None;
            acts.push(Action::CancelTimer(Timer::Detect));
        }
        if to == State::Up {
            // Going Up lifts the 1 s floor: a change of Desired Min TX
            // while Up, so a Poll Sequence (shorter interval now).
            self.eff_tx_us = self.eff_tx_us.min(self.adv_tx_us());
            if us(self.cfg.desired_min_tx) < SLOW_TX_US {
                self.polling = true;
                self.counters.polls_sent += 1;
            }
        } else {
            self.eff_tx_us = self.adv_tx_us();
            self.eff_rx_us = us(self.cfg.required_min_rx);
        }
        if self.started {
            self.send(acts, false);
            self.arm_tx(acts, now);
        }
    }

    // ---- Poll Sequence (§6.8.3) ----

    fn set_config(&mut self, cfg: Config, now: Instant, acts: &mut Vec<Action>) {
        let old_adv = (self.adv_tx_us(), us(self.cfg.required_min_rx));
        self.cfg = cfg;
        let new_adv = (self.adv_tx_us(), us(cfg.required_min_rx));
        if self.state != State::Up {
            self.eff_tx_us = new_adv.0;
            self.eff_rx_us = new_adv.1;
        } else if new_adv != old_adv {
            // Safe at once: sending faster, expecting packets less often.
            self.eff_tx_us = self.eff_tx_us.min(new_adv.0);
            self.eff_rx_us = self.eff_rx_us.max(new_adv.1);
            if self.polling {
                self.poll_stale = true;
            } else {
                self.polling = true;
                self.counters.polls_sent += 1;
                self.send(acts, false);
            }
        }
        self.retime_tx(now, acts);
        self.retime_detect(now, acts);
    }

    fn poll_terminated(&mut self, now: Instant, acts: &mut Vec<Action>) {
        if self.poll_stale {
            // The Final may answer a Poll that carried older values: poll
            // again for the values in force now, from the next periodic
            // packet on (this packet may still change our state).
            self.poll_stale = false;
            self.counters.polls_sent += 1;
            return;
        }
        self.polling = false;
        self.eff_tx_us = self.adv_tx_us();
        self.eff_rx_us = us(self.cfg.required_min_rx);
        self.retime_tx(now, acts);
        self.retime_detect(now, acts);
    }

    // ---- timers ----

    /// Desired Min TX as advertised: the 1 s floor while not Up.
    fn adv_tx_us(&self) -> u32 {
        let tx = us(self.cfg.desired_min_tx);
        if self.state == State::Up {
            tx
        } else {
            tx.max(SLOW_TX_US)
        }
    }

    fn tx_interval_us(&self) -> u64 {
        u64::from(self.eff_tx_us.max(self.remote_min_rx_us))
    }

    fn detection_us(&self) -> Option<u64> {
        (self.remote_detect_mult > 0).then(|| {
            u64::from(self.remote_detect_mult)
                * u64::from(self.eff_rx_us.max(self.remote_desired_tx_us))
        })
    }

    /// §6.8.7: whether periodic packets may be sent now.
    fn periodic_allowed(&self) -> bool {
        self.started
            && self.remote_min_rx_us != 0
            && !(self.remote_demand && self.state == State::Up && self.remote_state == State::Up)
    }

    /// The interval reduced by a random 0-25% (10-25% with Detect Mult 1).
    fn jittered(&mut self, interval_us: u64) -> Duration {
        let ns = interval_us * 1000;
        let lo = ns * 3 / 4;
        let hi = if self.cfg.detect_mult == 1 {
            ns * 9 / 10
        } else {
            ns
        };
        Duration::from_nanos(lo + self.next_random() % (hi - lo + 1))
    }

    /// splitmix64: small, fast, good enough for jitter.
    fn next_random(&mut self) -> u64 {
        self.rng = self.rng.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn arm_tx(&mut self, acts: &mut Vec<Action>, now: Instant) {
        if self.periodic_allowed() {
            let d = self.jittered(self.tx_interval_us());
            self.tx_deadline = Some(now + d);
            acts.push(Action::ArmTimer(Timer::Transmit, d));
        } else if self.tx_deadline.take().is_some() {
            acts.push(Action::CancelTimer(Timer::Transmit));
        }
    }

    /// After a change of the transmit interval or of what may be sent:
    /// stop, start, or bring the next packet forward if the new interval
    /// ends before the armed one. A longer interval applies from the next
    /// packet on.
    fn retime_tx(&mut self, now: Instant, acts: &mut Vec<Action>) {
        match self.tx_deadline {
            _ if !self.periodic_allowed() => self.arm_tx(acts, now),
            None => self.arm_tx(acts, now),
            Some(d) if d > now + dur(self.tx_interval_us()) => self.arm_tx(acts, now),
            Some(_) => {}
        }
    }

    /// After a change of the detection time: the deadline moves to the
    /// last packet plus the new Detection Time.
    fn retime_detect(&mut self, now: Instant, acts: &mut Vec<Action>) {
        if let (Some(_), Some(last), Some(d)) =
            (self.detect_deadline, self.last_rx, self.detection_us())
        {
            let deadline = last + dur(d);
            self.detect_deadline = Some(deadline);
            acts.push(Action::ArmTimer(
                Timer::Detect,
                deadline.saturating_duration_since(now),
            ));
        }
    }

    fn send(&mut self, acts: &mut Vec<Action>, fin: bool) {
        self.counters.packets_out += 1;
        acts.push(Action::Send(ControlPacket {
            version: crate::wire::VERSION,
            diag: self.diag,
            state: self.state,
            // Never both P and F (§6.5).
            poll: self.polling && !fin,
            fin,
            cpi: false,
            auth: false,
            demand: false,
            multipoint: false,
            detect_mult: self.cfg.detect_mult,
            my_disc: self.my_disc,
            your_disc: self.remote_disc,
            desired_min_tx_us: self.adv_tx_us(),
            required_min_rx_us: us(self.cfg.required_min_rx),
            required_min_echo_rx_us: 0,
        }));
    }
}
