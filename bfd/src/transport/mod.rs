//! Thin tokio glue (RFC 5881 single hop): runs every configured
//! [`Session`] over UDP and reports state changes upward. All protocol
//! decisions stay in the session; this module moves packets, keeps timer
//! deadlines and demultiplexes.
//!
//! # One task for all sessions
//!
//! One task owns every session, the receive sockets and the timer
//! deadlines:
//! * demultiplexing needs all sessions at once: by Your Discriminator when
//!   non-zero, else by (peer address, receive socket), and one port-3784
//!   socket per (local address, interface) serves every session on it;
//! * nothing is shared with the hot path but a status snapshot behind a
//!   mutex (written after each event, read by [`Bfd::status`]): no channel
//!   hop per packet, no locking between sessions;
//! * one `sleep_until` on the earliest of all deadlines replaces 2 x N
//!   timers; a scan of N sessions per wake-up is cheap at the scale of an
//!   MSEE (a few sessions per port), and the work per packet is a few
//!   microseconds, so one task keeps up with thousands of packets a second.
//!
//! Timers are `Instant` deadlines (`now` of the event + the armed
//! duration); tokio wakes at or after them (1 ms granularity). The detect
//! timer is re-armed on every valid packet with the packet's receive time,
//! taken right after `recvmsg`, and every state change is reported with
//! the `Instant` at which it happened.

mod socket;

use crate::session::{Action, Config, DiscardCounters, DiscardReason, Event, Session, Timer};
use crate::wire::{ControlPacket, Diag, State};
use anyhow::{Context, bail};
use serde::Serialize;
use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, RandomState};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::{Duration, Instant};
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

/// One BFD peer: a single-hop session from `local` to `peer`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerConfig {
    /// For logs and status (e.g. "er-lab/AzurePrivatePeering/primary").
    pub name: String,
    pub local: IpAddr,
    pub peer: IpAddr,
    /// Bind both sockets to this interface (SO_BINDTODEVICE); needed for
    /// an IPv6 link-local address.
    pub ifname: Option<String>,
    pub session: Config,
}

/// A session changed state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BfdEvent {
    /// Index into the `peers` given to [`Bfd::start`].
    pub session: usize,
    pub from: State,
    pub to: State,
    pub diag: Diag,
    /// When it happened: the receive time of the packet, or the moment
    /// the expired timer was handled.
    pub at: Instant,
}

/// The operator's view of one session. Intervals in microseconds, ages in
/// milliseconds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SessionStatus {
    pub name: String,
    pub local: IpAddr,
    pub peer: IpAddr,
    pub ifname: Option<String>,
    pub source_port: u16,
    pub state: State,
    pub remote_state: State,
    /// Our diag (the reason for our last state change).
    pub diag: Diag,
    /// The diag of our last transition to Down or AdminDown.
    pub last_down_diag: Diag,
    pub remote_diag: Diag,
    pub local_discriminator: u32,
    pub remote_discriminator: u32,
    /// Configured.
    pub desired_min_tx_us: u64,
    pub required_min_rx_us: u64,
    pub detect_mult: u8,
    /// Negotiated and in force (before jitter).
    pub tx_interval_us: u64,
    pub rx_interval_us: u64,
    pub detection_time_us: Option<u64>,
    pub remote_detect_mult: u8,
    pub remote_desired_min_tx_us: u64,
    pub remote_required_min_rx_us: u64,
    /// A Poll Sequence of ours is in progress.
    pub polling: bool,
    /// Time since the last state change.
    pub since_ms: Option<u64>,
    /// Time Up, when Up.
    pub uptime_ms: Option<u64>,
    pub last_rx_ms_ago: Option<u64>,
    pub packets_in: u64,
    pub packets_out: u64,
    pub send_errors: u64,
    pub last_send_error: Option<String>,
    /// Discarded packets in total, and by reason.
    pub discarded: u64,
    pub discards: DiscardCounters,
    pub polls_sent: u64,
    pub polls_received: u64,
    pub finals_sent: u64,
    pub finals_received: u64,
    pub ups: u64,
    pub downs: u64,
    #[serde(skip)]
    pub since: Option<Instant>,
    #[serde(skip)]
    pub last_rx: Option<Instant>,
}

/// What a session is and where its packets go; fixed at start.
#[derive(Debug, Clone)]
struct Static {
    peer: PeerConfig,
    source_port: u16,
}

#[derive(Debug, Default)]
struct Shared {
    sessions: Vec<(crate::session::Status, SendErrors)>,
    /// Packets that matched no session.
    unattributed: DiscardCounters,
}

#[derive(Debug, Clone, Default)]
struct SendErrors {
    count: u64,
    last: Option<String>,
}

#[derive(Debug)]
enum Command {
    AdminDown(usize, bool),
    SetConfig(usize, Config),
    Shutdown(oneshot::Sender<()>),
}

/// Running BFD sessions. Dropping it stops them at once (the peers see
/// the sessions time out); [`Bfd::shutdown`] signals AdminDown first.
pub struct Bfd {
    cmds: mpsc::UnboundedSender<Command>,
    shared: Arc<Mutex<Shared>>,
    statics: Vec<Static>,
    task: JoinHandle<()>,
}

impl Drop for Bfd {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Bfd {
    /// Starts every session (call inside a tokio runtime, in the right
    /// network namespace: the sockets are made here, by the calling
    /// thread). Session `i` in events and status is `peers[i]`.
    pub fn start(
        peers: Vec<PeerConfig>,
    ) -> anyhow::Result<(Bfd, mpsc::UnboundedReceiver<BfdEvent>)> {
        tokio::runtime::Handle::try_current()
            .context("bfd::transport::Bfd::start must be called inside a tokio runtime")?;
        let random = RandomState::new();
        let mut draw = {
            let mut n = 0u64;
            move || {
                n += 1;
                random.hash_one(n)
            }
        };
        let mut rx: Vec<RxSocket> = Vec::new();
        let mut by_peer = HashMap::new();
        let mut by_disc = HashMap::new();
        let mut used_ports = HashSet::new();
        let mut slots = Vec::new();
        let mut statics = Vec::new();
        for (i, p) in peers.iter().enumerate() {
            let what = || format!("BFD peer {:?} ({} -> {})", p.name, p.local, p.peer);
            p.session.validate().with_context(what)?;
            if p.local.is_ipv4() != p.peer.is_ipv4() {
                bail!("{}: local and peer addresses of different families", what());
            }
            if p.peer.is_unspecified() || p.peer.is_multicast() || p.local.is_unspecified() {
                bail!("{}: needs unicast local and peer addresses", what());
            }
            let key = (p.local, p.ifname.clone());
            let k = match rx.iter().position(|r| r.key == key) {
                Some(k) => k,
                None => {
                    let sock =
                        socket::rx_socket(p.local, p.ifname.as_deref()).with_context(|| {
                            format!("{}: receive socket on port {}", what(), crate::CONTROL_PORT)
                        })?;
                    rx.push(RxSocket { key, sock });
                    rx.len() - 1
                }
            };
            if by_peer.insert((k, p.peer), i).is_some() {
                bail!("{}: configured twice", what());
            }
            let disc = loop {
                let d = draw() as u32;
                if d != 0 && !by_disc.contains_key(&d) {
                    break d;
                }
            };
            by_disc.insert(disc, i);
            let first = *crate::SOURCE_PORTS.start() + (draw() % 16384) as u16;
            let (tx, port) =
                socket::tx_socket(p.local, p.ifname.as_deref(), &mut used_ports, first)
                    .with_context(|| format!("{}: sending socket", what()))?;
            let dest = socket::sockaddr(p.peer, crate::CONTROL_PORT, p.ifname.as_deref())?;
            slots.push(Slot {
                session: Session::with_seed(disc, p.session, draw()),
                tx,
                dest,
                deadlines: [None; 2],
                send_errors: SendErrors::default(),
            });
            statics.push(Static {
                peer: p.clone(),
                source_port: port,
            });
        }
        let shared = Arc::new(Mutex::new(Shared {
            sessions: slots
                .iter()
                .map(|s| (s.session.status(), s.send_errors.clone()))
                .collect(),
            unattributed: DiscardCounters::default(),
        }));
        let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
        let (ev_tx, ev_rx) = mpsc::unbounded_channel();
        let engine = Engine {
            names: peers.into_iter().map(|p| p.name).collect(),
            slots,
            rx,
            by_peer,
            by_disc,
            cmds: cmd_rx,
            events: ev_tx,
            shared: shared.clone(),
        };
        let task = tokio::spawn(engine.run());
        Ok((
            Bfd {
                cmds: cmd_tx,
                shared,
                statics,
                task,
            },
            ev_rx,
        ))
    }

    /// A snapshot of every session, in `peers` order.
    pub fn status(&self) -> Vec<SessionStatus> {
        let now = Instant::now();
        let shared = self
            .shared
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let ms =
            |t: Option<Instant>| t.map(|t| now.saturating_duration_since(t).as_millis() as u64);
        let us = |d: Duration| d.as_micros() as u64;
        self.statics
            .iter()
            .zip(&shared.sessions)
            .map(|(s, (st, errors))| SessionStatus {
                name: s.peer.name.clone(),
                local: s.peer.local,
                peer: s.peer.peer,
                ifname: s.peer.ifname.clone(),
                source_port: s.source_port,
                state: st.state,
                remote_state: st.remote_state,
                diag: st.diag,
                last_down_diag: st.last_down_diag,
                remote_diag: st.remote_diag,
                local_discriminator: st.my_disc,
                remote_discriminator: st.remote_disc,
                desired_min_tx_us: us(st.config.desired_min_tx),
                required_min_rx_us: us(st.config.required_min_rx),
                detect_mult: st.config.detect_mult,
                tx_interval_us: us(st.tx_interval),
                rx_interval_us: us(st.rx_interval),
                detection_time_us: st.detection_time.map(us),
                remote_detect_mult: st.remote_detect_mult,
                remote_desired_min_tx_us: us(st.remote_desired_min_tx),
                remote_required_min_rx_us: us(st.remote_required_min_rx),
                polling: st.polling,
                since_ms: ms(st.since),
                uptime_ms: if st.state == State::Up {
                    ms(st.since)
                } else {
                    None
                },
                last_rx_ms_ago: ms(st.last_rx),
                packets_in: st.counters.packets_in,
                packets_out: st.counters.packets_out,
                send_errors: errors.count,
                last_send_error: errors.last.clone(),
                discarded: st.counters.discarded.total(),
                discards: st.counters.discarded,
                polls_sent: st.counters.polls_sent,
                polls_received: st.counters.polls_received,
                finals_sent: st.counters.finals_sent,
                finals_received: st.counters.finals_received,
                ups: st.counters.ups,
                downs: st.counters.downs,
                since: st.since,
                last_rx: st.last_rx,
            })
            .collect()
    }

    /// Packets discarded before any session could be named (no session for
    /// the discriminator or the peer address).
    pub fn unattributed_discards(&self) -> DiscardCounters {
        self.shared
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .unattributed
    }

    /// Number of sessions.
    pub fn len(&self) -> usize {
        self.statics.len()
    }

    pub fn is_empty(&self) -> bool {
        self.statics.is_empty()
    }

    /// AdminDown (diag 7 to the peer) or back. An unknown index is ignored.
    pub fn set_admin_down(&self, session: usize, down: bool) {
        if session < self.len() {
            let _ = self.cmds.send(Command::AdminDown(session, down));
        } else {
            tracing::warn!(session, "set_admin_down: no such BFD session");
        }
    }

    /// New local intervals / multiplier; while Up through a Poll Sequence.
    /// Out-of-range values are clamped (see [`Config::validate`]); an
    /// unknown index is ignored.
    pub fn set_config(&self, session: usize, cfg: Config) {
        if let Err(e) = cfg.validate() {
            tracing::warn!(session, error = %e, "set_config: clamped into range");
        }
        if session < self.len() {
            let _ = self.cmds.send(Command::SetConfig(session, cfg));
        } else {
            tracing::warn!(session, "set_config: no such BFD session");
        }
    }

    /// Sends AdminDown on every session (so the peers go Down with diag 3
    /// at once rather than by timeout), then stops.
    pub async fn shutdown(self) {
        let (tx, rx) = oneshot::channel();
        if self.cmds.send(Command::Shutdown(tx)).is_ok() {
            let _ = tokio::time::timeout(Duration::from_secs(1), rx).await;
        }
    }
}

struct RxSocket {
    key: (IpAddr, Option<String>),
    sock: UdpSocket,
}

struct Slot {
    session: Session,
    tx: UdpSocket,
    dest: SocketAddr,
    /// Indexed by `Timer as usize`.
    deadlines: [Option<Instant>; 2],
    send_errors: SendErrors,
}

const TIMERS: [Timer; 2] = [Timer::Transmit, Timer::Detect];

enum Wake {
    Command(Option<Command>),
    Readable(usize),
    Timer,
}

struct Engine {
    names: Vec<String>,
    slots: Vec<Slot>,
    rx: Vec<RxSocket>,
    /// (receive socket, peer address) -> session.
    by_peer: HashMap<(usize, IpAddr), usize>,
    /// Our discriminator -> session.
    by_disc: HashMap<u32, usize>,
    cmds: mpsc::UnboundedReceiver<Command>,
    events: mpsc::UnboundedSender<BfdEvent>,
    shared: Arc<Mutex<Shared>>,
}

/// Datagrams read from one socket before timers and other sockets get
/// their turn.
const RX_BATCH: usize = 64;

impl Engine {
    async fn run(mut self) {
        let now = Instant::now();
        for i in 0..self.slots.len() {
            let acts = self.slots[i].session.start(now);
            self.apply(i, acts, now);
        }
        let mut buf = [0u8; 2048];
        let mut next_rx = 0;
        loop {
            let deadline = self.next_deadline();
            let wake = {
                let rx = &self.rx;
                let readable = std::future::poll_fn(|cx| {
                    // Round robin, so one busy socket cannot starve the others.
                    for j in 0..rx.len() {
                        let k = (next_rx + j) % rx.len();
                        if rx[k].sock.poll_recv_ready(cx).is_ready() {
                            return Poll::Ready(k);
                        }
                    }
                    Poll::Pending
                });
                let sleep = tokio::time::sleep_until(
                    deadline.map_or_else(tokio::time::Instant::now, tokio::time::Instant::from_std),
                );
                tokio::select! {
                    biased;
                    c = self.cmds.recv() => Wake::Command(c),
                    k = readable => Wake::Readable(k),
                    _ = sleep, if deadline.is_some() => Wake::Timer,
                }
            };
            match wake {
                Wake::Command(None) => return,
                Wake::Command(Some(Command::Shutdown(done))) => {
                    let now = Instant::now();
                    for i in 0..self.slots.len() {
                        let acts = self.slots[i].session.handle(Event::AdminDown, now);
                        self.apply(i, acts, now);
                    }
                    let _ = done.send(());
                    return;
                }
                Wake::Command(Some(c)) => self.command(c),
                Wake::Readable(k) => {
                    next_rx = k + 1;
                    for _ in 0..RX_BATCH {
                        match socket::try_recv(&self.rx[k].sock, &mut buf) {
                            Ok(d) => {
                                let at = Instant::now();
                                let len = d.len.min(buf.len());
                                self.datagram(k, &buf[..len], d.src, d.ttl, at);
                            }
                            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                            Err(e) => {
                                tracing::debug!(error = %e, "BFD receive error");
                                break;
                            }
                        }
                    }
                }
                Wake::Timer => {}
            }
            self.fire_due_timers();
        }
    }

    fn next_deadline(&self) -> Option<Instant> {
        self.slots
            .iter()
            .flat_map(|s| s.deadlines.iter().flatten())
            .min()
            .copied()
    }

    fn fire_due_timers(&mut self) {
        let now = Instant::now();
        for i in 0..self.slots.len() {
            for t in TIMERS {
                if self.slots[i].deadlines[t as usize].is_some_and(|d| d <= now) {
                    self.slots[i].deadlines[t as usize] = None;
                    let acts = self.slots[i].session.handle(Event::TimerExpired(t), now);
                    self.apply(i, acts, now);
                }
            }
        }
    }

    fn command(&mut self, c: Command) {
        let now = Instant::now();
        let (i, e) = match c {
            Command::AdminDown(i, true) => (i, Event::AdminDown),
            Command::AdminDown(i, false) => (i, Event::AdminUp),
            Command::SetConfig(i, cfg) => (i, Event::SetConfig(cfg)),
            Command::Shutdown(_) => return,
        };
        if i < self.slots.len() {
            let acts = self.slots[i].session.handle(e, now);
            self.apply(i, acts, now);
        }
    }

    /// RFC 5881 §5 TTL check, decode with the §6.8.6 checks, demultiplex.
    fn datagram(&mut self, k: usize, b: &[u8], src: IpAddr, ttl: Option<i32>, at: Instant) {
        let by_addr = self.by_peer.get(&(k, src)).copied();
        if ttl != Some(255) {
            return self.discard(by_addr, DiscardReason::Ttl);
        }
        let p = match ControlPacket::decode(b) {
            Ok(p) => p,
            Err(e) => return self.discard(by_addr, e.into()),
        };
        let i = if p.your_disc != 0 {
            match self.by_disc.get(&p.your_disc).copied() {
                Some(i) if Some(i) == by_addr => i,
                Some(i) => return self.discard(Some(i), DiscardReason::AddressMismatch),
                None => return self.discard(by_addr, DiscardReason::UnknownDiscriminator),
            }
        } else {
            match by_addr {
                Some(i) => i,
                None => return self.discard(None, DiscardReason::NoSession),
            }
        };
        let acts = self.slots[i].session.handle(Event::Received(p), at);
        self.apply(i, acts, at);
    }

    fn discard(&mut self, session: Option<usize>, r: DiscardReason) {
        match session {
            Some(i) => {
                self.slots[i].session.count_discard(r);
                self.publish(i);
            }
            None => {
                let mut shared = self
                    .shared
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                shared.unattributed.add(r);
            }
        }
    }

    /// Executes the actions; the status is published before the events
    /// go out, so a reader woken by an event sees the new state.
    fn apply(&mut self, i: usize, acts: Vec<Action>, now: Instant) {
        let mut changes = Vec::new();
        for a in acts {
            let slot = &mut self.slots[i];
            match a {
                Action::Send(p) => {
                    if let Err(e) = slot.tx.try_send_to(&p.encode(), slot.dest) {
                        slot.send_errors.count += 1;
                        tracing::debug!(session = %self.names[i], error = %e, "BFD send failed");
                        slot.send_errors.last = Some(e.to_string());
                    }
                }
                Action::ArmTimer(t, d) => slot.deadlines[t as usize] = Some(now + d),
                Action::CancelTimer(t) => slot.deadlines[t as usize] = None,
                Action::StateChanged { from, to, diag } => {
                    tracing::info!(session = %self.names[i], %from, %to, %diag, "BFD state change");
                    changes.push(BfdEvent {
                        session: i,
                        from,
                        to,
                        diag,
                        at: now,
                    });
                }
            }
        }
        self.publish(i);
        for e in changes {
            // Nobody listening is fine: the status still shows it.
            let _ = self.events.send(e);
        }
    }

    fn publish(&self, i: usize) {
        let s = &self.slots[i];
        let mut shared = self
            .shared
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        shared.sessions[i] = (s.session.status(), s.send_errors.clone());
    }
}
