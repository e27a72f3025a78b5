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
    pub md5_key: Option<Vec<u8>>,
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
                md5_key: s.md5_key.as_ref().map(|k| k.as_bytes().to_vec()),
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

impl Default for Timers {
    fn default() -> Self {
        Self {
            connect_retry: Duration::from_secs(30),
            idle_hold: Duration::from_secs(5),
            graceful_restart: None,
        }
    }
}

/// Called from a session's own task with each of its events (and the
/// session's link and family) before the daemon's main loop sees it:
/// failover (a link flip) must not queue behind route processing.
pub type Hook = std::sync::Arc<dyn Fn(u32, Family, &SessionEvent) + Send + Sync>;

/// A session's events, tagged with the run ("generation") of the session
/// they come from: after a restart, the old run's last events are stale.
pub type TaggedEvent = (usize, u64, SessionEvent);

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
    /// `None`: removed by a reload.
    inbox: Option<mpsc::Sender<Input>>,
    /// Bumped at each (re)start: events of an older run are stale.
    generation: u64,
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
    pub events: mpsc::Receiver<TaggedEvent>,
}

impl Speaker {
    /// Listens on each MSEE address (port 179) and starts every session.
    pub fn start(specs: Vec<SessionSpec>, timers: Timers, hook: Option<Hook>) -> Result<Self> {
        let (ev_tx, events) = mpsc::channel(1024);
        let mut speaker = Self {
            slots: Vec::new(),
            listeners: HashMap::new(),
            timers,
            hook,
            ev_tx,
            events,
        };
        for spec in specs {
            speaker.add(spec)?;
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
        let i = self.slots.len();
        self.slots.push(Slot {
            spec,
            inbox: None,
            generation: 0,
        });
        self.spawn(i)?;
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

    fn stop(&mut self, i: usize) {
        let spec = &self.slots[i].spec;
        if let Some(l) = self.listeners.get(&spec.local) {
            l.peers
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&spec.peer);
        }
        // Closing the inbox stops the session's task (ManualStop: Cease).
        self.slots[i].inbox = None;
    }

    /// Starts session `i`'s task (and its address's listener if new).
    fn spawn(&mut self, i: usize) -> Result<()> {
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
        let (out_tx, mut out_rx) = mpsc::channel(256);
        let peer = PeerConfig {
            peer: SocketAddr::new(s.peer, BGP_PORT),
            local: Some(SocketAddr::new(s.local, 0)),
            md5_key: s.md5_key.clone(),
        };
        // The listener first: a key must be in place before the peer's SYN.
        self.listen(&s, tx.clone())?;
        tokio::spawn(transport::run(fsm::Session::new(cfg), peer, rx, out_tx));
        self.slots[i].generation += 1;
        let generation = self.slots[i].generation;
        let (ev_tx, hook) = (self.ev_tx.clone(), self.hook.clone());
        let (link, family) = (s.link, s.family);
        tokio::spawn(async move {
            while let Some(e) = out_rx.recv().await {
                if let Some(hook) = &hook {
                    hook(link, family, &e);
                }
                if ev_tx.send((i, generation, e)).await.is_err() {
                    break;
                }
            }
        });
        tx.try_send(Input::Event(fsm::Event::ManualStart))
            .map_err(|e| anyhow!("starting session {}: {e}", s.name))?;
        self.slots[i].inbox = Some(tx);
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
            Some(key) => transport::set_md5sig(l.fd, s.peer, key, s.local.is_ipv6())
                .with_context(|| format!("setting the MD5 key for {} on {}", s.peer, s.local))?,
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
            .unwrap_or_else(|e| e.into_inner())
            .insert(s.peer, inbox);
        Ok(())
    }

    /// Hands an FSM event (BfdDown, ManualStart, ...) to a session.
    pub async fn send(&self, session: usize, event: fsm::Event) {
        let Some(inbox) = &self.slots[session].inbox else {
            return;
        };
        if inbox.send(Input::Event(event)).await.is_err() {
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
