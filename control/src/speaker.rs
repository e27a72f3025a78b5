//! The MSEE's BGP speaker: one eBGP session per peering, link and
//! address family of every circuit it runs, planned from the model, run over
//! TCP (passive and active, bound to the MSEE's peering address, TCP-MD5
//! from the peering's `sharedKey`); their events go to the daemon, which
//! feeds the RIBs and the dataplane.
use std::{
    collections::HashMap,
    net::{IpAddr, Ipv4Addr, SocketAddr},
    time::Duration,
};

use anyhow::{Context as _, Result, anyhow};
use bgp::{
    fsm,
    transport::{self, BGP_PORT, Input, PeerConfig, SessionEvent},
    wire::Update,
};
pub use circuit::model::AddressFamily as Family;
use circuit::model::{AddressFamily, PeeringType};
use tokio::sync::mpsc;
use tracing::{info, warn};

use crate::estate::{Plan, Side};

/// One BGP session to run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionSpec {
    /// e.g. `er-lab/AzurePrivatePeering/primary` (IPv6 sessions end
    /// `/ipv6`): the session's identity across reloads.
    pub name: String,
    pub circuit: String,
    pub peering_type: PeeringType,
    pub role: circuit::model::LinkRole,
    pub link: u32,
    /// IPv4 sessions carry IPv4 unicast, IPv6 sessions IPv6 unicast.
    pub family: AddressFamily,
    pub local: IpAddr,
    pub peer: IpAddr,
    /// The BGP identifier: the MSEE's IPv4 address on the link.
    pub router_id: Ipv4Addr,
    pub peer_as: u32,
    /// Shown as `<redacted>` by Debug (see `circuit::Secret`).
    pub md5_key: Option<circuit::Secret>,
    pub max_prefixes: u32,
    /// Azure's cap on the model's prefixes advertised (VNets); `None` on
    /// Microsoft peering.
    pub max_advertised: Option<u32>,
    /// BFD for this session's link, if the peering has it on.
    pub bfd: Option<circuit::model::BfdTimers>,
}

impl SessionSpec {
    /// Whether a change from `self` to `new` needs the session restarted
    /// (its identity on the wire changed).
    pub fn needs_restart(&self, new: &SessionSpec) -> bool {
        self.local != new.local
            || self.peer != new.peer
            || self.peer_as != new.peer_as
            || self.md5_key != new.md5_key
            || self.router_id != new.router_id
            || self.link != new.link
    }
}

/// Extra copies of AS 12076 on the routes of a drained link: what Microsoft
/// does in maintenance, so the customer prefers the other link.
pub const DRAIN_PREPEND: usize = 3;

/// The sessions of every peering the plan runs: IPv4 always, IPv6 where the
/// peering has IPv6 addresses.
pub fn plan_sessions(
    model: &circuit::Model,
    plan: &Plan,
    max_prefixes_override: Option<u32>,
) -> Vec<SessionSpec> {
    let mut specs = Vec::new();
    for run in &plan.peerings {
        let Some(circuit) = model.circuit(&run.circuit) else {
            continue;
        };
        let Some(p) = circuit.peering(run.peering_type) else {
            continue;
        };
        for s in circuit.sessions() {
            if s.peering_type != run.peering_type {
                continue;
            }
            let side = Side::Customer {
                circuit: circuit.name.clone(),
                peering: run.peering_type,
                role: s.link,
            };
            let Some(link) = plan.link_of(&side) else {
                continue;
            };
            let link_model = if s.link == p.primary.role {
                &p.primary
            } else {
                &p.secondary
            };
            let suffix = match s.family {
                AddressFamily::Ipv4 => "",
                AddressFamily::Ipv6 => "/ipv6",
            };
            specs.push(SessionSpec {
                name: format!("{}/{:?}/{}{suffix}", circuit.name, p.peering_type, s.link),
                circuit: circuit.name.clone(),
                peering_type: p.peering_type,
                role: s.link,
                link: link.id,
                family: s.family,
                local: s.local_address,
                peer: s.peer_address,
                router_id: link_model.ipv4.msee,
                peer_as: s.peer_asn,
                md5_key: s.md5_key.clone(),
                max_prefixes: max_prefixes_override.unwrap_or(s.max_prefixes),
                max_advertised: s.max_advertised,
                bfd: s.bfd,
            });
        }
    }
    specs
}

/// Timers the operator (or a test) may shorten.
#[derive(Clone, Copy, Debug)]
pub struct Timers {
    pub connect_retry: Duration,
    pub idle_hold: Duration,
    /// BGP graceful restart (RFC 4724) on every session: our Restart Time,
    /// and how long a restarting peer's routes are kept. `None`: off.
    pub graceful_restart: Option<fsm::GracefulRestartConfig>,
}

/// What `msee-daemon` runs with unless told otherwise: graceful restart
/// on, with a Restart Time of 120 s.
impl Default for Timers {
    fn default() -> Self {
        Self {
            connect_retry: Duration::from_secs(30),
            idle_hold: Duration::from_secs(5),
            graceful_restart: Some(fsm::GracefulRestartConfig::default()),
        }
    }
}

/// Called from a session's own task with each of its events (and the
/// session's link and family) before the daemon's main loop sees it:
/// failover (a link flip) must not queue behind route processing.
pub type Hook = std::sync::Arc<dyn Fn(u32, Family, &SessionEvent) + Send + Sync>;

/// Where an event comes from: the run ("generation") of its session (after
/// a restart, the old run's last events are stale), and the session's
/// state epoch when it was sent (bumped by each Established and Down).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tag {
    pub generation: u64,
    pub epoch: u64,
}

/// A session's event and where it comes from.
pub type TaggedEvent = (usize, Tag, SessionEvent);

/// Session state events (Established, Down, a graceful restart's start
/// and its end by timeout): they go to the daemon ahead of any route
/// event queued before them.
pub fn is_state_event(e: &SessionEvent) -> bool {
    // A graceful restart's start (DownStale) and a restarting peer that
    // did not come back (its link goes down) change the session's state as
    // a Down does: route events queued before them are superseded (the
    // peer re-sends its table, and its End-of-RIB purges what it did not).
    // An End-of-RIB must follow the routes it closes: it stays in order.
    matches!(
        e,
        SessionEvent::Established(_)
            | SessionEvent::Down(_)
            | SessionEvent::DownStale { .. }
            | SessionEvent::PurgeStale {
                reason: bgp::fsm::PurgeReason::RestartTimeExpired,
                ..
            }
    )
}

/// Prefixes (at least one per event) a session's forwarder holds while
/// the daemon's route queue is full: past this, the forwarder stops
/// reading and the backpressure reaches the session (and TCP). Up to it,
/// a Down behind queued routes is read, and acted on, at once.
pub const FORWARD_BACKLOG_PREFIXES: usize = 1 << 20;

fn weight(e: &SessionEvent) -> usize {
    match e {
        SessionEvent::Routes(u) => {
            (u.nlri.len() + u.withdrawn.len() + u.announced_v6().len() + u.withdrawn_v6().len())
                .max(1)
        }
        _ => 1,
    }
}

/// Moves one session's events from its task (`from`) to the daemon: the
/// hook first (failover is the hook's, at once), then state events on
/// `state` (unbounded: a handful per session), route events on `routes`
/// (bounded), in order, each tagged. A full `routes` never holds a state
/// event back: routes wait here, up to [`FORWARD_BACKLOG_PREFIXES`], while
/// `from` is still read.
pub async fn forward(
    i: usize,
    generation: u64,
    mut from: mpsc::Receiver<SessionEvent>,
    hook: impl Fn(&SessionEvent),
    state: mpsc::UnboundedSender<TaggedEvent>,
    routes: mpsc::Sender<TaggedEvent>,
) {
    let mut backlog: std::collections::VecDeque<(Tag, SessionEvent)> = Default::default();
    let mut held = 0usize;
    let mut epoch = 0u64;
    let mut open = true;
    while open || !backlog.is_empty() {
        tokio::select! {
            biased;
            e = from.recv(), if open && held < FORWARD_BACKLOG_PREFIXES => match e {
                None => open = false,
                Some(e) => {
                    hook(&e);
                    if is_state_event(&e) {
                        epoch += 1;
                        if state.send((i, Tag { generation, epoch }, e)).is_err() {
                            return;
                        }
                    } else {
                        held += weight(&e);
                        backlog.push_back((Tag { generation, epoch }, e));
                    }
                }
            },
            permit = routes.reserve(), if !backlog.is_empty() => {
                let Ok(permit) = permit else { return };
                let (tag, e) = backlog.pop_front().expect("not empty");
                held -= weight(&e);
                permit.send((i, tag, e));
            }
        }
    }
}

/// A session's inbox that never makes the daemon wait: what the daemon
/// sends is queued here and handed to the session's task (`to`, bounded)
/// as it takes it. A session whose peer stops reading blocks in its write
/// until its hold timer ends it; meanwhile only its own queue grows, and
/// the daemon (API, signals, other sessions) goes on. Dropping the
/// returned sender closes `to` once what is queued is handed over.
pub fn relay(to: mpsc::Sender<Input>) -> mpsc::UnboundedSender<Input> {
    let (tx, mut rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(input) = rx.recv().await {
            if to.send(input).await.is_err() {
                return;
            }
        }
    });
    tx
}

/// What [`Speaker::next_event`] read: a state event is never behind a
/// route event queued before it.
#[derive(Debug)]
pub enum Next {
    State(TaggedEvent),
    Route(TaggedEvent),
}

/// A listening socket on one MSEE address and the sessions it serves.
struct Listener {
    /// The listener's fd, kept to update its MD5 keys (the accept task owns
    /// the socket for the daemon's lifetime).
    fd: std::os::fd::RawFd,
    peers: transport::PeerTable,
}

/// One session's slot: what it runs, and its task's inbox while it runs.
struct Slot {
    spec: SessionSpec,
    /// `None`: removed by a reload. Unbounded (see [`relay`]).
    inbox: Option<mpsc::UnboundedSender<Input>>,
    /// Bumped at each (re)start: events of an older run are stale.
    generation: u64,
    /// The epoch of the last state event the daemon took: route events of
    /// an earlier epoch (queued before a Down it already acted on) are
    /// stale.
    epoch: u64,
}

/// The running sessions. Session indices are stable for the daemon's life:
/// a reload restarts a session in its slot, adds new ones at the end, and
/// leaves removed ones as empty slots.
pub struct Speaker {
    slots: Vec<Slot>,
    listeners: HashMap<IpAddr, Listener>,
    timers: Timers,
    hook: Option<Hook>,
    ev_tx: mpsc::Sender<TaggedEvent>,
    /// Route events (UPDATEs, refresh requests), bounded.
    pub events: mpsc::Receiver<TaggedEvent>,
    state_tx: mpsc::UnboundedSender<TaggedEvent>,
    /// Session state events (Established, Down), never behind routes:
    /// the daemon reads these first.
    pub state_events: mpsc::UnboundedReceiver<TaggedEvent>,
}

impl Speaker {
    /// Listens on each MSEE address (port 179) and starts every session.
    pub fn start(specs: Vec<SessionSpec>, timers: Timers, hook: Option<Hook>) -> Result<Self> {
        Self::start_holding(specs, timers, hook, |_| false)
    }

    /// [`Speaker::start`], but the sessions `held` picks wait, idle, for a
    /// `ManualStart` ([`Speaker::send`]) instead of starting at once.
    pub fn start_holding(
        specs: Vec<SessionSpec>,
        timers: Timers,
        hook: Option<Hook>,
        held: impl Fn(&SessionSpec) -> bool,
    ) -> Result<Self> {
        let (ev_tx, events) = mpsc::channel(1024);
        let (state_tx, state_events) = mpsc::unbounded_channel();
        let mut speaker = Self {
            slots: Vec::new(),
            listeners: HashMap::new(),
            timers,
            hook,
            ev_tx,
            events,
            state_tx,
            state_events,
        };
        for spec in specs {
            let start = !held(&spec);
            speaker.add_started(spec, start)?;
        }
        Ok(speaker)
    }

    pub fn spec(&self, i: usize) -> &SessionSpec {
        &self.slots[i].spec
    }

    /// Updates what the daemon keeps of a running session's settings that
    /// change in place (limits, BFD).
    pub fn spec_mut(&mut self, i: usize) -> &mut SessionSpec {
        &mut self.slots[i].spec
    }

    /// Every slot's index, running or not.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// The running sessions: index and spec.
    pub fn active(&self) -> impl Iterator<Item = (usize, &SessionSpec)> + '_ {
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, s)| s.inbox.is_some())
            .map(|(i, s)| (i, &s.spec))
    }

    /// Starts a new session; returns its index.
    pub fn add(&mut self, spec: SessionSpec) -> Result<usize> {
        self.add_started(spec, true)
    }

    /// A new session, started now or left idle until a `ManualStart`.
    fn add_started(&mut self, spec: SessionSpec, start: bool) -> Result<usize> {
        let i = self.slots.len();
        self.slots.push(Slot {
            spec,
            inbox: None,
            generation: 0,
            epoch: 0,
        });
        self.spawn_started(i, start)?;
        Ok(i)
    }

    /// Stops session `i` (Cease / Administrative Shutdown to the peer) and
    /// starts it again with `spec` (a reload that changed its key, peer AS
    /// or addresses). Its old run's last events come tagged with the old
    /// generation (see [`Speaker::is_current`]).
    pub fn restart(&mut self, i: usize, spec: SessionSpec) -> Result<()> {
        self.stop(i);
        self.slots[i].spec = spec;
        self.spawn(i)
    }

    /// Stops session `i` for good (a reload removed it).
    pub fn remove(&mut self, i: usize) {
        self.stop(i);
    }

    pub fn is_active(&self, i: usize) -> bool {
        self.slots[i].inbox.is_some()
    }

    /// Whether an event of `generation` comes from session `i`'s current run.
    pub fn is_current(&self, i: usize, generation: u64) -> bool {
        self.slots[i].generation == generation && self.is_active(i)
    }

    /// The next event of any session: state events first (see
    /// [`Next`]). `None` once every session task is gone.
    pub async fn next_event(&mut self) -> Option<Next> {
        tokio::select! {
            biased;
            Some(e) = self.state_events.recv() => Some(Next::State(e)),
            Some(e) = self.events.recv() => Some(Next::Route(e)),
            else => None,
        }
    }

    /// Whether a state event tagged `tag` is session `i`'s current one; if
    /// so, its epoch is now the session's (see [`Speaker::takes_route`]).
    pub fn takes_state(&mut self, i: usize, tag: Tag) -> bool {
        if !self.is_current(i, tag.generation) {
            return false;
        }
        self.slots[i].epoch = tag.epoch;
        true
    }

    /// Whether a route event tagged `tag` is current: of the session's
    /// run, sent after the last state event the daemon took.
    pub fn takes_route(&self, i: usize, tag: Tag) -> bool {
        self.is_current(i, tag.generation) && self.slots[i].epoch == tag.epoch
    }

    fn stop(&mut self, i: usize) {
        let spec = &self.slots[i].spec;
        if let Some(l) = self.listeners.get(&spec.local) {
            l.peers
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .remove(&spec.peer);
        }
        // Closing the inbox stops the session's task (ManualStop: Cease).
        self.slots[i].inbox = None;
    }

    /// Starts session `i`'s task (and its address's listener if new).
    fn spawn(&mut self, i: usize) -> Result<()> {
        self.spawn_started(i, true)
    }

    fn spawn_started(&mut self, i: usize, start: bool) -> Result<()> {
        let s = self.slots[i].spec.clone();
        let mut cfg = fsm::Config::new(s.router_id, s.peer_as);
        // One family per session, as on ExpressRoute.
        cfg.ipv4_unicast = s.family == AddressFamily::Ipv4;
        cfg.ipv6_unicast = s.family == AddressFamily::Ipv6;
        cfg.max_prefixes_v4 = Some(s.max_prefixes);
        cfg.max_prefixes_v6 = Some(s.max_prefixes);
        cfg.connect_retry = self.timers.connect_retry;
        cfg.idle_hold_initial = self.timers.idle_hold;
        cfg.graceful_restart = self.timers.graceful_restart;
        let (tx, rx) = mpsc::channel(64);
        let (out_tx, out_rx) = mpsc::channel(256);
        let peer = PeerConfig {
            peer: SocketAddr::new(s.peer, BGP_PORT),
            local: Some(SocketAddr::new(s.local, 0)),
            md5_key: s.md5_key.as_ref().map(|k| k.expose().as_bytes().to_vec()),
        };
        // The listener first: a key must be in place before the peer's SYN.
        self.listen(&s, tx.clone())?;
        tokio::spawn(transport::run(fsm::Session::new(cfg), peer, rx, out_tx));
        self.slots[i].generation += 1;
        self.slots[i].epoch = 0;
        let generation = self.slots[i].generation;
        let hook = self.hook.clone();
        let (link, family) = (s.link, s.family);
        tokio::spawn(forward(
            i,
            generation,
            out_rx,
            move |e| {
                if let Some(hook) = &hook {
                    hook(link, family, e);
                }
            },
            self.state_tx.clone(),
            self.ev_tx.clone(),
        ));
        if start {
            tx.try_send(Input::Event(fsm::Event::ManualStart))
                .map_err(|e| anyhow!("starting session {}: {e}", s.name))?;
        }
        self.slots[i].inbox = Some(relay(tx));
        Ok(())
    }

    /// Registers session `s` (and its MD5 key) with the listener of its
    /// local address, starting one there if it is the first.
    fn listen(&mut self, s: &SessionSpec, inbox: mpsc::Sender<Input>) -> Result<()> {
        use std::os::fd::AsRawFd as _;
        if let std::collections::hash_map::Entry::Vacant(slot) = self.listeners.entry(s.local) {
            let addr = SocketAddr::new(s.local, BGP_PORT);
            let listener = transport::listen(addr, &[])
                .with_context(|| format!("listening for BGP on {addr}"))?;
            let peers = transport::PeerTable::default();
            let fd = listener.as_raw_fd();
            let table = peers.clone();
            tokio::spawn(async move {
                if let Err(e) = transport::accept_loop(listener, table).await {
                    warn!(%addr, "BGP listener stopped: {e}");
                }
            });
            info!(%addr, "BGP listening");
            slot.insert(Listener { fd, peers });
        }
        let l = &self.listeners[&s.local];
        match &s.md5_key {
            Some(key) => {
                transport::set_md5sig(l.fd, s.peer, key.expose().as_bytes(), s.local.is_ipv6())
                    .with_context(|| {
                        format!("setting the MD5 key for {} on {}", s.peer, s.local)
                    })?;
            }
            // An empty key removes one a previous run may have set; none
            // there (ENOENT) is fine.
            None => match transport::set_md5sig(l.fd, s.peer, &[], s.local.is_ipv6()) {
                Err(e) if e.raw_os_error() != Some(libc::ENOENT) => {
                    return Err(anyhow!(
                        "removing the MD5 key for {} on {}: {e}",
                        s.peer,
                        s.local
                    ));
                }
                _ => {}
            },
        }
        l.peers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(s.peer, inbox);
        Ok(())
    }

    /// Hands an FSM event (BfdDown, ManualStart, ...) to a session.
    pub async fn send(&self, session: usize, event: fsm::Event) {
        let Some(inbox) = &self.slots[session].inbox else {
            return;
        };
        if inbox.send(Input::Event(event)).is_err() {
            warn!(session = %self.slots[session].spec.name, "session task gone");
        }
    }

    /// Sends UPDATEs on a session, in order.
    pub async fn send_updates(&self, session: usize, updates: Vec<Update>) {
        for u in updates {
            self.send(session, fsm::Event::SendUpdate(u)).await;
        }
    }
}

#[cfg(test)]
mod tests;
