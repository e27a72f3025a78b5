//! The MSEE's BGP speaker for one circuit: plans one eBGP session per
//! peering per link from the circuit model, runs them over TCP (passive and
//! active, bound to the MSEE's peering address, TCP-MD5 from the peering's
//! `sharedKey`), and reports their events to the daemon, which feeds the
//! RIB and the dataplane.
use std::{
    collections::{BTreeMap, HashMap},
    net::{IpAddr, Ipv4Addr, SocketAddr},
    time::Duration,
};

use anyhow::{Context as _, Result, anyhow, bail};
use bgp::{
    fsm,
    transport::{self, BGP_PORT, Input, PeerConfig, SessionEvent},
    wire::{AsSegment, MpReach, Origin, PathAttribute, Update},
};
pub use circuit::model::AddressFamily as Family;
use circuit::model::{AddressFamily, PeeringType};
use ipnet::IpNet;
use msee_abi::PeeringKind;
use tokio::sync::mpsc;
use tracing::{info, warn};

/// A customer-facing port the daemon runs: its link id, its role, and the
/// addresses (both families) configured on it.
#[derive(Clone, Debug)]
pub struct PortInfo {
    pub link: u32,
    pub role: circuit::model::LinkRole,
    pub addrs: Vec<IpAddr>,
    /// With tagged peerings, each peering's own link on this port (its
    /// VLAN); empty when the port is untagged and `link` carries it all.
    pub peering_links: Vec<(PeeringType, u32)>,
}

impl PortInfo {
    /// The link that carries `peering` on this port.
    pub fn link_for(&self, peering: PeeringType) -> u32 {
        self.peering_links
            .iter()
            .find(|(t, _)| *t == peering)
            .map_or(self.link, |(_, l)| *l)
    }
}

/// One peering the daemon routes: its routing domain and links.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeeringPlan {
    pub kind: PeeringKind,
    pub domain: u32,
    /// Primary then secondary link ids.
    pub links: [u32; 2],
}

/// One BGP session to run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionSpec {
    /// e.g. `er-lab/AzurePrivatePeering/primary` (IPv6 sessions end `/ipv6`).
    pub name: String,
    /// Index into the peering plans.
    pub peering: usize,
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
    /// What we advertise once Established (next hop self, region community).
    pub adverts: Vec<Update>,
    /// BFD for this session's link, if the peering has it on.
    pub bfd: Option<circuit::model::BfdTimers>,
}

/// Routing domain of a peering type (the daemon's attachments use the same).
pub fn domain_of(kind: PeeringKind) -> u32 {
    match kind {
        PeeringKind::Private => 1,
        PeeringKind::Microsoft => 2,
    }
}

pub fn kind_of(t: PeeringType) -> PeeringKind {
    match t {
        PeeringType::AzurePrivatePeering => PeeringKind::Private,
        PeeringType::MicrosoftPeering => PeeringKind::Microsoft,
    }
}

pub fn type_of(k: PeeringKind) -> PeeringType {
    match k {
        PeeringKind::Private => PeeringType::AzurePrivatePeering,
        PeeringKind::Microsoft => PeeringType::MicrosoftPeering,
    }
}

/// The advertisements of a session: one UPDATE per region community, AS
/// path 12076, next hop self (`next_hop`'s family picks the routes: IPv4
/// NLRI, or IPv6 in MP_REACH_NLRI), at most `limit` prefixes (Azure's cap).
pub fn adverts(
    routes: impl IntoIterator<Item = (IpNet, circuit::Community)>,
    next_hop: IpAddr,
    limit: Option<u32>,
) -> (Vec<Update>, usize) {
    let mut by_community: BTreeMap<u32, Vec<IpNet>> = BTreeMap::new();
    let mut taken = 0usize;
    let mut dropped = 0usize;
    for (prefix, community) in routes {
        if prefix.addr().is_ipv4() != next_hop.is_ipv4() {
            continue;
        }
        if limit.is_some_and(|l| taken >= l as usize) {
            dropped += 1;
            continue;
        }
        taken += 1;
        by_community
            .entry(community.to_u32())
            .or_default()
            .push(prefix);
    }
    let updates = by_community
        .into_iter()
        .map(|(community, prefixes)| {
            let mut attributes = vec![
                PathAttribute::Origin(Origin::Igp),
                PathAttribute::AsPath(vec![AsSegment::Sequence(vec![bgp::MSEE_ASN])]),
            ];
            let mut nlri = Vec::new();
            match next_hop {
                IpAddr::V4(nh) => {
                    attributes.push(PathAttribute::NextHop(nh));
                    nlri = prefixes
                        .iter()
                        .filter_map(|p| match p {
                            IpNet::V4(p) => Some(*p),
                            IpNet::V6(_) => None,
                        })
                        .collect();
                }
                IpAddr::V6(nh) => attributes.push(PathAttribute::MpReach(MpReach {
                    next_hop: nh,
                    link_local: None,
                    nlri: prefixes
                        .iter()
                        .filter_map(|p| match p {
                            IpNet::V6(p) => Some(*p),
                            IpNet::V4(_) => None,
                        })
                        .collect(),
                })),
            }
            attributes.push(PathAttribute::Communities(vec![community]));
            Update {
                attributes,
                nlri,
                ..Default::default()
            }
        })
        .collect();
    (updates, dropped)
}

/// Extra copies of AS 12076 on the routes of a drained link: what Microsoft
/// does in maintenance, so the customer prefers the other link.
pub const DRAIN_PREPEND: usize = 3;

/// `update` with `extra` more copies of AS 12076 at the front of its path.
pub fn prepended(update: &Update, extra: usize) -> Update {
    let mut u = update.clone();
    if extra == 0 {
        return u;
    }
    for a in &mut u.attributes {
        if let PathAttribute::AsPath(segments) = a {
            match segments.first_mut() {
                Some(AsSegment::Sequence(v)) => {
                    v.splice(0..0, std::iter::repeat_n(bgp::MSEE_ASN, extra));
                }
                _ => segments.insert(0, AsSegment::Sequence(vec![bgp::MSEE_ASN; extra])),
            }
        }
    }
    u
}

/// Plans the sessions of `circuit`'s peerings whose MSEE addresses are
/// configured on the ports (the primary link's on the primary port, the
/// secondary's on the secondary): IPv4 always, IPv6 where the peering has
/// IPv6 addresses and the ports carry them. Other peerings are reported,
/// not run.
pub fn plan(
    model: &circuit::Model,
    circuit_name: &str,
    ports: &[PortInfo],
    max_prefixes_override: Option<u32>,
) -> Result<(Vec<PeeringPlan>, Vec<SessionSpec>, Vec<String>)> {
    let circuit = model.circuit(circuit_name).ok_or_else(|| {
        anyhow!(
            "circuit {circuit_name:?} is not in the configuration (it has: {})",
            model
                .circuits
                .iter()
                .map(|c| c.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )
    })?;
    let vnet_routes = circuit::reach::vnet_routes(model, circuit);
    let mut peerings = Vec::new();
    let mut specs = Vec::new();
    let mut notes = Vec::new();
    for p in &circuit.peerings {
        let port_of = |role| ports.iter().find(|x| x.role == role);
        let mut links = Vec::new();
        for l in [&p.primary, &p.secondary] {
            match port_of(l.role) {
                Some(port) if port.addrs.contains(&IpAddr::V4(l.ipv4.msee)) => {
                    links.push(port.link_for(p.peering_type))
                }
                Some(_) => {}
                None => bail!("no {} port to run {:?} on", l.role, p.peering_type),
            }
        }
        if links.len() != 2 {
            notes.push(format!(
                "{:?}: not run: its MSEE addresses {} and {} are not on the primary and secondary ports",
                p.peering_type, p.primary.ipv4.msee, p.secondary.ipv4.msee
            ));
            continue;
        }
        let kind = kind_of(p.peering_type);
        let index = peerings.len();
        peerings.push(PeeringPlan {
            kind,
            domain: domain_of(kind),
            links: [links[0], links[1]],
        });
        for s in circuit.sessions() {
            if s.peering_type != p.peering_type {
                continue;
            }
            let (link, link_model) = if s.link == p.primary.role {
                (links[0], &p.primary)
            } else {
                (links[1], &p.secondary)
            };
            let port = port_of(s.link).expect("checked above");
            if !port.addrs.contains(&s.local_address) {
                notes.push(format!(
                    "{:?} {} {:?}: not run: {} is not on the {} port",
                    p.peering_type, s.link, s.family, s.local_address, s.link
                ));
                continue;
            }
            // Private peering: the VNets in reach, with their region
            // communities. Microsoft peering: the services its route filter
            // selects, with their service communities (nothing without one).
            let (adverts, dropped) = match kind {
                PeeringKind::Private => adverts(
                    vnet_routes.iter().map(|r| (r.prefix, r.community)),
                    s.local_address,
                    s.max_advertised,
                ),
                PeeringKind::Microsoft => adverts(
                    p.service_routes.iter().copied(),
                    s.local_address,
                    s.max_advertised,
                ),
            };
            if dropped > 0 {
                notes.push(format!(
                    "{:?} {} {:?}: {dropped} VNet prefixes over the limit of {} not advertised",
                    p.peering_type,
                    s.link,
                    s.family,
                    s.max_advertised.unwrap_or(0)
                ));
            }
            let suffix = match s.family {
                AddressFamily::Ipv4 => "",
                AddressFamily::Ipv6 => "/ipv6",
            };
            specs.push(SessionSpec {
                name: format!("{}/{:?}/{}{suffix}", circuit.name, p.peering_type, s.link),
                peering: index,
                link,
                family: s.family,
                local: s.local_address,
                peer: s.peer_address,
                router_id: link_model.ipv4.msee,
                peer_as: s.peer_asn,
                md5_key: s.md5_key.as_ref().map(|k| k.as_bytes().to_vec()),
                max_prefixes: max_prefixes_override.unwrap_or(s.max_prefixes),
                adverts,
                bfd: s.bfd,
            });
        }
    }
    Ok((peerings, specs, notes))
}

/// Timers the operator (or a test) may shorten.
#[derive(Clone, Copy, Debug)]
pub struct Timers {
    pub connect_retry: Duration,
    pub idle_hold: Duration,
}

impl Default for Timers {
    fn default() -> Self {
        Self {
            connect_retry: Duration::from_secs(30),
            idle_hold: Duration::from_secs(5),
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

/// The running sessions. Session indices are stable for the daemon's life:
/// a reload restarts a session in its slot, adds new ones at the end, and
/// leaves removed ones as empty slots.
pub struct Speaker {
    pub specs: Vec<SessionSpec>,
    /// `None`: removed by a reload.
    inboxes: Vec<Option<mpsc::Sender<Input>>>,
    generations: Vec<u64>,
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
            specs: Vec::new(),
            inboxes: Vec::new(),
            generations: Vec::new(),
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

    /// Starts a new session; returns its index.
    pub fn add(&mut self, spec: SessionSpec) -> Result<usize> {
        let i = self.specs.len();
        self.specs.push(spec);
        self.inboxes.push(None);
        self.generations.push(0);
        self.spawn(i)?;
        Ok(i)
    }

    /// Stops session `i` (Cease / Administrative Shutdown to the peer) and
    /// starts it again with `spec` (a reload that changed its key, peer AS
    /// or addresses). Its old run's last events come tagged with the old
    /// generation (see [`Speaker::is_current`]).
    pub fn restart(&mut self, i: usize, spec: SessionSpec) -> Result<()> {
        self.stop(i);
        self.specs[i] = spec;
        self.spawn(i)
    }

    /// Stops session `i` for good (a reload removed it).
    pub fn remove(&mut self, i: usize) {
        self.stop(i);
    }

    pub fn is_active(&self, i: usize) -> bool {
        self.inboxes[i].is_some()
    }

    /// Whether an event of `generation` comes from session `i`'s current run.
    pub fn is_current(&self, i: usize, generation: u64) -> bool {
        self.generations[i] == generation && self.is_active(i)
    }

    fn stop(&mut self, i: usize) {
        let spec = &self.specs[i];
        if let Some(l) = self.listeners.get(&spec.local) {
            l.peers
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&spec.peer);
        }
        // Closing the inbox stops the session's task (ManualStop: Cease).
        self.inboxes[i] = None;
    }

    /// Starts session `i`'s task (and its address's listener if new).
    fn spawn(&mut self, i: usize) -> Result<()> {
        let s = self.specs[i].clone();
        let mut cfg = fsm::Config::new(s.router_id, s.peer_as);
        // One family per session, as on ExpressRoute.
        cfg.ipv4_unicast = s.family == AddressFamily::Ipv4;
        cfg.ipv6_unicast = s.family == AddressFamily::Ipv6;
        cfg.max_prefixes_v4 = Some(s.max_prefixes);
        cfg.max_prefixes_v6 = Some(s.max_prefixes);
        cfg.connect_retry = self.timers.connect_retry;
        cfg.idle_hold_initial = self.timers.idle_hold;
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
        self.generations[i] += 1;
        let generation = self.generations[i];
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
        self.inboxes[i] = Some(tx);
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
        let Some(inbox) = &self.inboxes[session] else {
            return;
        };
        if inbox.send(Input::Event(event)).await.is_err() {
            warn!(session = %self.specs[session].name, "session task gone");
        }
    }

    /// Sends the session's advertisements (after Established, a refresh or
    /// a drain), with AS 12076 prepended `prepend` more times.
    pub async fn advertise(&self, session: usize, prepend: usize) {
        for u in &self.specs[session].adverts {
            self.send(session, fsm::Event::SendUpdate(prepended(u, prepend)))
                .await;
        }
    }

    /// Replaces the session's advertisements (a reload changed the VNets in
    /// reach): withdraws what is no longer advertised, then (if
    /// `established`) sends the new set.
    pub async fn set_adverts(
        &mut self,
        session: usize,
        adverts: Vec<Update>,
        prepend: usize,
        established: bool,
    ) {
        let old = advertised_prefixes(&self.specs[session].adverts);
        let new = advertised_prefixes(&adverts);
        self.specs[session].adverts = adverts;
        if !established {
            return;
        }
        let gone: Vec<IpNet> = old.difference(&new).copied().collect();
        if !gone.is_empty() {
            self.send(session, fsm::Event::SendUpdate(withdrawal(&gone)))
                .await;
        }
        self.advertise(session, prepend).await;
    }
}

/// Every prefix announced by `updates`.
pub fn advertised_prefixes(updates: &[Update]) -> std::collections::BTreeSet<IpNet> {
    updates
        .iter()
        .flat_map(|u| {
            u.nlri
                .iter()
                .map(|p| IpNet::V4(*p))
                .chain(u.announced_v6().iter().map(|p| IpNet::V6(*p)))
        })
        .collect()
}

/// One UPDATE withdrawing `prefixes` (IPv4 in the withdrawn routes field,
/// IPv6 in MP_UNREACH_NLRI).
pub fn withdrawal(prefixes: &[IpNet]) -> Update {
    let mut u = Update::default();
    let mut v6 = Vec::new();
    for p in prefixes {
        match p {
            IpNet::V4(p) => u.withdrawn.push(*p),
            IpNet::V6(p) => v6.push(*p),
        }
    }
    if !v6.is_empty() {
        u.attributes
            .push(PathAttribute::MpUnreach(bgp::wire::MpUnreach {
                withdrawn: v6,
            }));
    }
    u
}

#[cfg(test)]
mod tests {
    use super::*;
    use circuit::model::LinkRole;

    const LAB: &str = r#"
[[circuits]]
name = "er-lab"
serviceKey = "6f1c2c7e-0d55-4a3c-9b4e-1a2b3c4d5e01"
serviceProviderProvisioningState = "Provisioned"
serviceProviderProperties = { serviceProviderName = "Equinix", peeringLocation = "Amsterdam", bandwidthInMbps = 1000 }
sku = { tier = "Standard", family = "MeteredData" }

[[circuits.peerings]]
peeringType = "AzurePrivatePeering"
peerASN = 65010
primaryPeerAddressPrefix = "192.168.100.128/30"
secondaryPeerAddressPrefix = "192.168.100.132/30"
vlanId = 100
sharedKey = "s3cret"

[[circuits.peerings]]
peeringType = "MicrosoftPeering"
peerASN = 65010
peerAddressPrefix = "203.0.113.0/29"
vlanId = 200
microsoftPeeringConfig = { advertisedPublicPrefixes = ["198.51.100.0/24"] }

[[virtualNetworks]]
name = "vnet-weu"
location = "West Europe"
addressSpace = { addressPrefixes = ["10.1.0.0/16", "10.2.0.0/16", "2001:db8:a10::/48"] }

[[virtualNetworks]]
name = "vnet-eus"
location = "East US"
addressSpace = { addressPrefixes = ["10.30.0.0/16"] }

[[connections]]
name = "weu"
virtualNetwork = "vnet-weu"
peer = "er-lab"

[[connections]]
name = "eus"
virtualNetwork = "vnet-eus"
peer = "er-lab"
"#;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn ports() -> Vec<PortInfo> {
        vec![
            PortInfo {
                link: 0,
                role: LinkRole::Primary,
                addrs: vec![ip("192.168.100.130"), ip("fd00:100::2")],
                peering_links: Vec::new(),
            },
            PortInfo {
                link: 1,
                role: LinkRole::Secondary,
                addrs: vec![ip("192.168.100.134"), ip("fd00:100::6")],
                peering_links: Vec::new(),
            },
        ]
    }

    #[test]
    fn plans_private_peering_sessions_from_the_model() {
        let model = circuit::load_toml(LAB).unwrap();
        let (peerings, specs, notes) = plan(&model, "er-lab", &ports(), None).unwrap();
        assert_eq!(
            peerings,
            vec![PeeringPlan {
                kind: PeeringKind::Private,
                domain: 1,
                links: [0, 1]
            }]
        );
        assert_eq!(specs.len(), 2);
        let p = &specs[0];
        assert_eq!(p.name, "er-lab/AzurePrivatePeering/primary");
        assert_eq!(
            (p.link, p.local, p.peer),
            (
                0,
                "192.168.100.130".parse().unwrap(),
                "192.168.100.129".parse().unwrap()
            )
        );
        assert_eq!(specs[1].link, 1);
        assert_eq!(specs[1].peer, ip("192.168.100.133"));
        assert_eq!(p.router_id, Ipv4Addr::new(192, 168, 100, 130));
        assert_eq!(p.peer_as, 65010);
        assert_eq!(p.md5_key.as_deref(), Some(&b"s3cret"[..]));
        assert_eq!(p.max_prefixes, 4000);
        assert_eq!(
            p.bfd,
            Some(circuit::model::BfdTimers {
                interval_ms: 300,
                multiplier: 3
            })
        );
        // West Europe is in reach of a Standard circuit in Amsterdam, East
        // US is not; the IPv6 prefix waits for IPv6 sessions.
        assert_eq!(p.adverts.len(), 1);
        let u = &p.adverts[0];
        assert_eq!(
            u.nlri,
            vec![
                "10.1.0.0/16".parse::<ipnet::Ipv4Net>().unwrap(),
                "10.2.0.0/16".parse().unwrap()
            ]
        );
        assert!(
            u.attributes
                .contains(&PathAttribute::NextHop(Ipv4Addr::new(192, 168, 100, 130)))
        );
        let weu = model.virtual_network("vnet-weu").unwrap().region_community;
        assert!(
            u.attributes
                .contains(&PathAttribute::Communities(vec![weu.to_u32()]))
        );
        assert!(
            notes.iter().any(|n| n.contains("MicrosoftPeering")),
            "{notes:?}"
        );
    }

    #[test]
    fn plans_ipv6_sessions_where_the_peering_and_the_ports_have_ipv6() {
        let text = LAB.replace(
            "sharedKey = \"s3cret\"",
            "sharedKey = \"s3cret\"\nipv6PeeringConfig = { primaryPeerAddressPrefix = \"fd00:100::/126\", secondaryPeerAddressPrefix = \"fd00:100::4/126\" }",
        );
        let model = circuit::load_toml(&text).unwrap();
        let (_, specs, notes) = plan(&model, "er-lab", &ports(), None).unwrap();
        assert_eq!(specs.len(), 4, "{notes:?}");
        let v6: Vec<&SessionSpec> = specs.iter().filter(|s| s.family == Family::Ipv6).collect();
        assert_eq!(v6.len(), 2);
        let p = v6[0];
        assert_eq!(p.name, "er-lab/AzurePrivatePeering/primary/ipv6");
        assert_eq!(
            (p.link, p.local, p.peer),
            (0, ip("fd00:100::2"), ip("fd00:100::1"))
        );
        assert_eq!(p.router_id, Ipv4Addr::new(192, 168, 100, 130));
        assert_eq!(p.max_prefixes, 100, "ExpressRoute's IPv6 limit");
        assert_eq!(p.bfd, None, "BFD is IPv4 only");
        assert_eq!(v6[1].link, 1);
        // The VNet's IPv6 range, next hop self in MP_REACH_NLRI.
        assert_eq!(p.adverts.len(), 1);
        let u = &p.adverts[0];
        assert!(u.nlri.is_empty());
        assert_eq!(u.announced_v6(), ["2001:db8:a10::/48".parse().unwrap()]);
        assert_eq!(
            u.mp_reach().unwrap().next_hop,
            "fd00:100::2".parse::<std::net::Ipv6Addr>().unwrap()
        );
        // The IPv4 sessions carry only the IPv4 prefixes.
        let v4 = specs.iter().find(|s| s.family == Family::Ipv4).unwrap();
        assert!(v4.adverts.iter().all(|u| u.mp_reach().is_none()));
        // Ports without the IPv6 addresses: IPv4 only, said in a note.
        let v4_ports: Vec<PortInfo> = ports()
            .into_iter()
            .map(|mut p| {
                p.addrs.retain(|a| a.is_ipv4());
                p
            })
            .collect();
        let (_, specs, notes) = plan(&model, "er-lab", &v4_ports, None).unwrap();
        assert_eq!(specs.len(), 2);
        assert!(
            notes
                .iter()
                .any(|n| n.contains("fd00:100::2 is not on the primary port")),
            "{notes:?}"
        );
    }

    #[test]
    fn tagged_ports_give_each_peering_its_own_links() {
        let model = circuit::load_toml(LAB).unwrap();
        let mut ports = ports();
        // Microsoft peering's MSEE addresses (203.0.113.0/29: .2 and .6) on
        // the same ports, each peering on its own link.
        ports[0].addrs.push(ip("203.0.113.2"));
        ports[1].addrs.push(ip("203.0.113.6"));
        ports[0].peering_links = vec![
            (PeeringType::AzurePrivatePeering, 0),
            (PeeringType::MicrosoftPeering, 2),
        ];
        ports[1].peering_links = vec![
            (PeeringType::AzurePrivatePeering, 1),
            (PeeringType::MicrosoftPeering, 3),
        ];
        let (peerings, specs, notes) = plan(&model, "er-lab", &ports, None).unwrap();
        assert_eq!(
            peerings,
            vec![
                PeeringPlan {
                    kind: PeeringKind::Private,
                    domain: 1,
                    links: [0, 1]
                },
                PeeringPlan {
                    kind: PeeringKind::Microsoft,
                    domain: 2,
                    links: [2, 3]
                }
            ],
            "{notes:?}"
        );
        let ms: Vec<(u32, IpAddr, u32)> = specs
            .iter()
            .filter(|s| s.name.contains("MicrosoftPeering"))
            .map(|s| (s.link, s.local, s.max_prefixes))
            .collect();
        assert_eq!(
            ms,
            [(2, ip("203.0.113.2"), 200), (3, ip("203.0.113.6"), 200)]
        );
        // Microsoft peering advertises nothing without a route filter.
        assert!(
            specs
                .iter()
                .filter(|s| s.name.contains("MicrosoftPeering"))
                .all(|s| s.adverts.is_empty())
        );
    }

    #[test]
    fn limit_override_and_unknown_circuit() {
        let model = circuit::load_toml(LAB).unwrap();
        let (_, specs, _) = plan(&model, "er-lab", &ports(), Some(5)).unwrap();
        assert!(specs.iter().all(|s| s.max_prefixes == 5));
        let e = plan(&model, "nope", &ports(), None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("\"nope\"") && e.contains("er-lab"), "{e}");
    }

    #[test]
    fn drain_prepends_our_as_to_the_path_only() {
        let model = circuit::load_toml(LAB).unwrap();
        let (_, specs, _) = plan(&model, "er-lab", &ports(), None).unwrap();
        let u = &specs[0].adverts[0];
        assert_eq!(&prepended(u, 0), u);
        let d = prepended(u, DRAIN_PREPEND);
        assert_eq!(d.nlri, u.nlri);
        assert!(
            d.attributes
                .contains(&PathAttribute::AsPath(vec![AsSegment::Sequence(
                    vec![bgp::MSEE_ASN; 1 + DRAIN_PREPEND]
                )]))
        );
        assert_eq!(d.attributes.len(), u.attributes.len());
    }

    #[test]
    fn adverts_respect_the_limit() {
        let model = circuit::load_toml(LAB).unwrap();
        let c = model.circuit("er-lab").unwrap();
        let routes = circuit::reach::vnet_routes(&model, c);
        let (u, dropped) = adverts(
            routes.iter().map(|r| (r.prefix, r.community)),
            ip("1.1.1.1"),
            Some(1),
        );
        assert_eq!(u.iter().map(|u| u.nlri.len()).sum::<usize>(), 1);
        assert_eq!(dropped, 1);
    }
}
