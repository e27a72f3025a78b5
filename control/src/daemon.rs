//! The daemon: load `msee`, describe one circuit's links, attachments and
//! routes to it, attach, keep each link's neighbour resolved (a link is up
//! once its neighbour answers), and report counters when asked to stop.
//!
//! Until the circuit model and BGP land, the daemon runs one circuit's
//! private peering on three untagged ports, with static routes.
use std::{
    collections::BTreeMap,
    fs::File,
    net::{IpAddr, Ipv4Addr},
    os::fd::AsFd,
    path::PathBuf,
    time::Duration,
};

use anyhow::{Context as _, Result, anyhow, bail};
use dataplane::{AttachMode, LoadOptions, Msee};
use ipnet::{IpNet, Ipv4Net};
use msee_abi::{
    Attachment, AttachmentKey, Direction, GroupMember, Link, LinkRole, PeeringKind, Route,
};
use tokio::{io::unix::AsyncFd, signal::unix::SignalKind};
use tracing::{info, warn};

use crate::{
    health::{LinkHealth, Signal},
    netlink::{self, Interface},
    rib::{Fib, Rib},
    speaker::{self, PortInfo, Speaker, Timers},
    stats::{self, PortReport},
};

/// The lab circuit's id and its private peering's routing domain.
const CIRCUIT: u32 = 1;
const DOMAIN: u32 = 1;

/// A static route: `prefix` via one or more neighbours, each reached through
/// whichever port has it in a connected subnet. Several next hops share the
/// traffic by flow.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StaticRoute {
    pub prefix: Ipv4Net,
    pub via: Vec<Ipv4Addr>,
}

impl std::str::FromStr for StaticRoute {
    type Err = anyhow::Error;
    /// `PREFIX=VIA[,VIA...]`, e.g. `10.1.0.0/16=10.255.0.2`.
    fn from_str(s: &str) -> Result<Self> {
        let (prefix, via) = s.split_once('=').ok_or_else(|| {
            anyhow!(
                "route {s:?} must look like PREFIX=NEXTHOP[,NEXTHOP], e.g. 10.1.0.0/16=10.255.0.2"
            )
        })?;
        let prefix: Ipv4Net = prefix
            .parse()
            .with_context(|| format!("route {s:?}: bad prefix {prefix:?}"))?;
        if prefix.trunc() != prefix {
            bail!(
                "route {s:?}: {prefix} has host bits set (did you mean {}?)",
                prefix.trunc()
            );
        }
        let via = via
            .split(',')
            .map(|v| {
                v.parse()
                    .with_context(|| format!("route {s:?}: bad next hop {v:?}"))
            })
            .collect::<Result<Vec<Ipv4Addr>>>()?;
        if via.len() > msee_abi::MAX_GROUP_MEMBERS {
            bail!(
                "route {s:?}: at most {} next hops",
                msee_abi::MAX_GROUP_MEMBERS
            );
        }
        Ok(Self { prefix, via })
    }
}

pub struct DaemonConfig {
    /// Enter this network namespace (by name under /run/netns) first.
    pub netns: Option<String>,
    /// Ports by role, as interface names.
    pub ports: Vec<(LinkRole, String)>,
    pub routes: Vec<StaticRoute>,
    pub mode: AttachMode,
    /// Police each customer link, both directions, at this rate (bit/s).
    pub bandwidth_bps: Option<u64>,
    /// Most verbose aya-log level emitted by the kernel side (0 off .. 5 trace).
    pub kernel_log_level: u8,
    pub stats_file: Option<PathBuf>,
    /// Stop by itself after this long (the daemon otherwise runs until SIGINT/SIGTERM).
    pub run_for: Option<Duration>,
    /// Run the BGP sessions of one circuit of this model.
    pub bgp: Option<BgpConfig>,
    /// Serve the local API (for `msee-cli`) on this Unix socket.
    pub api_socket: Option<PathBuf>,
}

/// BGP for one circuit: sessions, RIB and FIB programming.
pub struct BgpConfig {
    pub model: circuit::Model,
    pub circuit: String,
    /// Replaces the model's per-session route limit (labs and tests).
    pub max_prefixes: Option<u32>,
    pub timers: Timers,
}

/// Enter a named network namespace. Must run before any other thread exists
/// (threads inherit the namespace they are created in).
pub fn enter_netns(name: &str) -> Result<()> {
    let path = format!("/run/netns/{name}");
    let file = File::open(&path)
        .with_context(|| format!("network namespace {name} not found ({path})"))?;
    nix::sched::setns(file.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET)
        .with_context(|| format!("entering network namespace {name}"))
}

/// One port and the link behind it (link id = index in the port list).
struct Port {
    link: u32,
    role: LinkRole,
    iface: Interface,
    /// The one neighbour on this link (customer router or Azure gateway).
    neighbour: Option<Ipv4Addr>,
    neighbour_mac: Option<[u8; 6]>,
    /// Whether a BGP session runs over this link.
    bgp: bool,
}

impl Port {
    fn link_entry(&self, mac: [u8; 6]) -> Link {
        Link {
            ifindex: self.iface.ifindex,
            role: self.role as u8,
            src_mac: self.iface.mac,
            dst_mac: mac,
            circuit: CIRCUIT,
            ..Default::default()
        }
    }
}

pub async fn run(cfg: DaemonConfig) -> Result<()> {
    let handle = netlink::connect()?;
    let mut ports = Vec::new();
    for (link, (role, name)) in cfg.ports.iter().enumerate() {
        let iface = netlink::interface(&handle, name).await?;
        ports.push(Port {
            link: link as u32,
            role: *role,
            iface,
            neighbour: None,
            neighbour_mac: None,
            bgp: false,
        });
    }

    // BGP sessions of the configured circuit, planned before anything is
    // loaded so that a wrong configuration changes nothing.
    let mut bgp_plan = None;
    if let Some(bgp) = &cfg.bgp {
        let infos: Vec<PortInfo> = ports
            .iter()
            .filter_map(|p| {
                let role = match p.role {
                    LinkRole::Primary => circuit::model::LinkRole::Primary,
                    LinkRole::Secondary => circuit::model::LinkRole::Secondary,
                    LinkRole::Azure => return None,
                };
                Some(PortInfo {
                    link: p.link,
                    role,
                    addrs: p.iface.addrs.iter().map(|(a, _)| *a).collect(),
                })
            })
            .collect();
        let (peerings, specs, notes) =
            speaker::plan(&bgp.model, &bgp.circuit, &infos, bgp.max_prefixes)?;
        for n in &notes {
            warn!("circuit {}: {n}", bgp.circuit);
        }
        if specs.is_empty() {
            bail!(
                "circuit {}: no peering has its MSEE addresses on the primary and secondary ports",
                bgp.circuit
            );
        }
        for p in &peerings {
            // Lab ports are untagged: each carries the one peering its
            // attachment names (private, domain DOMAIN).
            if p.kind != PeeringKind::Private || p.domain != DOMAIN {
                bail!(
                    "circuit {}: {:?} peering over untagged ports is not supported yet (only private peering)",
                    bgp.circuit,
                    p.kind
                );
            }
        }
        for s in &specs {
            let port = &mut ports[s.link as usize];
            if let Some(n) = port.neighbour
                && n != s.peer
            {
                bail!(
                    "port {}: static next hop {n} and BGP peer {}: a link has exactly one neighbour",
                    port.iface.name,
                    s.peer
                );
            }
            port.neighbour = Some(s.peer);
            port.bgp = true;
        }
        bgp_plan = Some((peerings, specs));
    }

    // Each route's next hops name the links that carry it.
    let mut groups: BTreeMap<Vec<u32>, u32> = BTreeMap::new();
    let mut routes = Vec::new();
    for route in &cfg.routes {
        let mut members = Vec::new();
        for via in &route.via {
            let port = ports
                .iter_mut()
                .find(|p| p.iface.connects(*via))
                .ok_or_else(|| {
                    anyhow!(
                        "route {}: next hop {via} is on none of the ports' subnets",
                        route.prefix
                    )
                })?;
            match port.neighbour {
                Some(n) if n != *via => bail!(
                    "port {} ({}): next hops {n} and {via}: a link has exactly one neighbour",
                    port.iface.name,
                    port.role.name()
                ),
                _ => port.neighbour = Some(*via),
            }
            members.push(port.link);
        }
        members.sort_unstable();
        members.dedup();
        let next_id = groups.len() as u32;
        let group = *groups.entry(members).or_insert(next_id);
        routes.push((route.prefix, group));
    }

    let mut msee = Msee::load(&LoadOptions {
        log_level: cfg.kernel_log_level,
        pin_dir: None,
    })?;
    // Kernel-side log records flow into this process's log.
    match msee.take_logger() {
        Ok(logger) => {
            // SAFETY: the logger owns its ring-buffer fd and moves into the
            // AsyncFd, so the fd stays open for as long as it is registered.
            let mut fd =
                unsafe { AsyncFd::register_with_interest(logger, tokio::io::Interest::READABLE) }
                    .map_err(|e| anyhow!("watching the aya-log ring buffer: {e}"))?;
            tokio::spawn(async move {
                while let Ok(mut guard) = fd.readable_mut().await {
                    guard.get_inner_mut().flush();
                    guard.clear_ready();
                }
            });
        }
        Err(e) => warn!("kernel-side logging unavailable: {e}"),
    }

    // Every source of link state flips links through this, from its own task.
    let health = LinkHealth::new(msee.link_switch()?);
    for p in &ports {
        msee.add_port(p.iface.ifindex)?;
        for (addr, _) in &p.iface.addrs {
            msee.add_local(DOMAIN, IpAddr::V4(*addr))?;
        }
        // Links start down: up once the neighbour answers (and BGP is up).
        msee.set_link(p.link, p.link_entry([0; 6]))?;
        health.add_link(p.link, p.role.name(), p.iface.carrier, p.bgp)?;
        msee.set_attachment(
            AttachmentKey {
                ifindex: p.iface.ifindex,
                outer_vlan: 0,
                inner_vlan: 0,
            },
            Attachment {
                link: p.link,
                domain: DOMAIN,
                circuit: CIRCUIT,
                peering: PeeringKind::Private as u8,
                role: p.role as u8,
                mac: p.iface.mac,
                // Time-exceeded replies come from the port's own address.
                local_v4: p.iface.addrs.first().map_or([0; 4], |(a, _)| a.octets()),
                ..Default::default()
            },
        )?;
        if let Some(bps) = cfg.bandwidth_bps
            && p.role != LinkRole::Azure
        {
            for dir in Direction::ALL {
                msee.set_policer(p.link, dir, bps, None)?;
            }
        }
    }
    let first_bgp_group = groups.len() as u32;
    for (members, id) in &groups {
        let members: Vec<GroupMember> = members
            .iter()
            .map(|l| GroupMember {
                link: *l,
                preference: 0,
            })
            .collect();
        msee.set_group(*id, &members)?;
    }
    for (prefix, group) in &routes {
        msee.upsert_route(
            DOMAIN,
            IpNet::V4(*prefix),
            Route {
                group: *group,
                flags: 0,
            },
        )?;
        info!(%prefix, group, "route installed");
    }

    for p in &ports {
        msee.attach(p.iface.ifindex, cfg.mode)?;
        info!(link = p.role.name(), ifname = %p.iface.name, ifindex = p.iface.ifindex, mode = ?cfg.mode, "msee attached");
    }

    resolve_pending(
        &handle,
        &mut msee,
        &health,
        &mut ports,
        Duration::from_secs(3),
    )
    .await;

    let (api_tx, mut api_rx) = tokio::sync::mpsc::channel::<crate::api::Call>(16);
    if let Some(path) = &cfg.api_socket {
        crate::api::serve(path, api_tx)?;
        info!(socket = %path.display(), "API listening");
    } else {
        drop(api_tx);
    }

    let mut bgp = match bgp_plan {
        Some((peerings, specs)) => {
            let ribs: Vec<Rib> = peerings
                .iter()
                .map(|p| Rib::new(p.domain, p.kind, &p.links))
                .collect();
            for s in &specs {
                info!(session = %s.name, local = %s.local, peer = %s.peer, peer_as = s.peer_as,
                    md5 = s.md5_key.is_some(), max_prefixes = s.max_prefixes,
                    adverts = s.adverts.iter().map(|u| u.nlri.len()).sum::<usize>(), "BGP session configured");
            }
            let timers = cfg.bgp.as_ref().map(|b| b.timers).unwrap_or_default();
            // A session's state flips its link from the session's own task.
            let links: Vec<u32> = specs.iter().map(|s| s.link).collect();
            let bgp_health = health.clone();
            let bgp_hook: speaker::Hook = std::sync::Arc::new(move |i, event| {
                use bgp::transport::SessionEvent;
                match event {
                    SessionEvent::Established(_) => {
                        bgp_health.set(links[i], Signal::Bgp, true);
                    }
                    SessionEvent::Down(_) => {
                        bgp_health.set(links[i], Signal::Bgp, false);
                    }
                    _ => {}
                }
            });
            let status = specs.iter().map(|_| SessionStatus::default()).collect();
            Some(Bgp {
                circuit: cfg
                    .bgp
                    .as_ref()
                    .map(|b| b.circuit.clone())
                    .unwrap_or_default(),
                peerings,
                speaker: Speaker::start(specs, timers, Some(bgp_hook))?,
                ribs,
                fib: Fib::new(first_bgp_group),
                status,
                install: Default::default(),
                pending: Default::default(),
            })
        }
        None => None,
    };

    println!("msee-daemon ready");
    use std::io::Write as _;
    std::io::stdout().flush().ok();

    let mut sigterm = tokio::signal::unix::signal(SignalKind::terminate())?;
    let mut sigint = tokio::signal::unix::signal(SignalKind::interrupt())?;
    let stop_at = cfg.run_for.map(|d| tokio::time::Instant::now() + d);
    // Carrier changes flip links from their own task, not the main loop.
    let mut carrier_events =
        crate::linkmon::watch(ports.iter().map(|p| p.iface.ifindex).collect())?;
    let link_of: BTreeMap<u32, u32> = ports.iter().map(|p| (p.iface.ifindex, p.link)).collect();
    let carrier_health = health.clone();
    tokio::spawn(async move {
        while let Some(ev) = carrier_events.recv().await {
            if let Some(link) = link_of.get(&ev.ifindex) {
                carrier_health.set(*link, Signal::Carrier, ev.up);
            }
        }
    });
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut ticks = 0u64;
    loop {
        tokio::select! {
            _ = sigterm.recv() => { info!("SIGTERM: stopping"); break; }
            _ = sigint.recv() => { info!("SIGINT: stopping"); break; }
            _ = async { tokio::time::sleep_until(stop_at.unwrap()).await }, if stop_at.is_some() => {
                info!("run time elapsed: stopping");
                break;
            }
            Some((i, event)) = async { bgp.as_mut().expect("guarded").speaker.events.recv().await },
                if bgp.is_some() => {
                let b = bgp.as_mut().expect("guarded");
                b.on_event(i, event, &mut msee).await;
            }
            Some(call) = api_rx.recv() => {
                let answer = match &call.request {
                    crate::api::Request::Drain { circuit, link, drain } => match bgp.as_mut() {
                        Some(b) => b.drain(circuit, link, *drain, &mut msee).await,
                        None => Err("this daemon runs no BGP circuit: nothing to drain".into()),
                    },
                    other => answer(other, bgp.as_ref(), &msee, &health, &ports),
                };
                let _ = call.reply.send(answer);
            }
            _ = tick.tick() => {
                ticks += 1;
                if let Some(b) = bgp.as_mut() {
                    b.flush_stale(&mut msee);
                }
                // Unresolved neighbours are retried every second; resolved
                // ones are checked every 30 s in case the neighbour changed.
                if ticks.is_multiple_of(30) {
                    for p in ports.iter_mut() { p.neighbour_mac = None; }
                }
                resolve_pending(&handle, &mut msee, &health, &mut ports, Duration::from_millis(500)).await;
            }
        }
    }

    msee.detach_all()?;
    if let Some(path) = &cfg.api_socket {
        std::fs::remove_file(path).ok();
    }
    let reports = port_reports(&msee, &ports)?;
    print!("{}", stats::table(&reports));
    if let Some(path) = &cfg.stats_file {
        std::fs::write(path, serde_json::to_vec_pretty(&reports)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

async fn resolve_pending(
    handle: &rtnetlink::Handle,
    msee: &mut Msee,
    health: &LinkHealth,
    ports: &mut [Port],
    timeout: Duration,
) {
    for p in ports.iter_mut().filter(|p| p.neighbour_mac.is_none()) {
        let Some(via) = p.neighbour else { continue };
        match netlink::resolve_neighbour(handle, p.iface.ifindex, via, timeout).await {
            Ok(mac) => {
                if let Err(e) = msee.set_link(p.link, p.link_entry(mac)) {
                    warn!(%via, "installing link {}: {e}", p.role.name());
                    continue;
                }
                p.neighbour_mac = Some(mac);
                health.set(p.link, Signal::Neighbour, true);
                info!(link = p.role.name(), %via, mac = %format_mac(&mac), "neighbour resolved");
            }
            Err(e) => {
                health.set(p.link, Signal::Neighbour, false);
                warn!(link = p.role.name(), %via, "neighbour unresolved, link down, retrying: {e:#}");
            }
        }
    }
}

fn port_reports(msee: &Msee, ports: &[Port]) -> Result<Vec<PortReport>> {
    ports
        .iter()
        .map(|p| {
            Ok(PortReport::new(
                p.role.name(),
                &p.iface.name,
                &msee.link_counters(p.link, Direction::Rx)?,
                &msee.link_counters(p.link, Direction::Tx)?,
            ))
        })
        .collect()
}

/// Answers one API request from the daemon's live state.
fn answer(
    request: &crate::api::Request,
    bgp: Option<&Bgp>,
    msee: &Msee,
    health: &LinkHealth,
    ports: &[Port],
) -> std::result::Result<serde_json::Value, String> {
    use crate::api::Request;
    use serde_json::json;
    let role_of = |link: u32| {
        ports
            .get(link as usize)
            .map_or("unknown", |p| p.role.name())
    };
    match request {
        Request::Links => Ok(json!(health.view())),
        Request::Drain { .. } => Err("drain is answered by the main loop".into()),
        Request::Fib { lookup } => {
            let Some(b) = bgp else {
                return Err("this daemon runs no BGP circuit".into());
            };
            let mut lookups = Vec::new();
            for addr in lookup {
                for (plan, rib) in b.peerings.iter().zip(&b.ribs) {
                    let route = msee
                        .lookup_route(rib.domain(), *addr)
                        .map_err(|e| format!("looking up {addr}: {e}"))?;
                    lookups.push(json!({
                        "addr": addr,
                        "peering": plan.kind.name(),
                        "route": route.map(|r| json!({"group": r.group, "flags": r.flags})),
                    }));
                }
            }
            Ok(json!({
                "circuit": b.circuit,
                "now_ns": crate::rib::fib::monotonic_ns(),
                "cpu_ns": crate::rib::fib::process_cpu_ns(),
                "record": b.install,
                "routes": b.fib.route_count(),
                "groups": b.fib.group_count(),
                "lookup": lookups,
            }))
        }
        Request::Counters => port_reports(msee, ports)
            .map(|r| json!(r))
            .map_err(|e| format!("reading counters: {e:#}")),
        Request::Sessions => {
            let Some(b) = bgp else {
                return Ok(json!([]));
            };
            let now = std::time::Instant::now();
            Ok(json!(
                b.speaker
                    .specs
                    .iter()
                    .zip(&b.status)
                    .map(|(s, st)| json!({
                        "name": s.name,
                        "link": role_of(s.link),
                        "local": s.local,
                        "peer": s.peer,
                        "peer_as": s.peer_as,
                        "state": if st.established { "Established" } else { "Down" },
                        "since_secs": st.since.map(|t| now.duration_since(t).as_secs()),
                        "last_down": st.last_down,
                        "prefixes_received": b.ribs[s.peering].adj_rib_in_len(s.link),
                        "drained": b.ribs[s.peering].is_drained(s.link),
                        "max_prefixes": s.max_prefixes,
                        "md5": s.md5_key.is_some(),
                    }))
                    .collect::<Vec<_>>()
            ))
        }
        Request::Routes { circuit } => {
            let Some(b) = bgp.filter(|b| &b.circuit == circuit) else {
                return Err(format!(
                    "unknown circuit {circuit:?} (this daemon runs: {})",
                    bgp.map_or("no circuit", |b| b.circuit.as_str())
                ));
            };
            let mut out = Vec::new();
            for (plan, rib) in b.peerings.iter().zip(&b.ribs) {
                for (prefix, members) in rib.routes() {
                    out.push(json!({
                        "peering": plan.kind.name(),
                        "prefix": prefix.to_string(),
                        "group": b.fib.route(rib.domain(), prefix),
                        "next_hops": members.iter().map(|m| json!({
                            "link": role_of(m.link),
                            "as_path_len": m.preference,
                        })).collect::<Vec<_>>(),
                    }));
                }
            }
            Ok(json!(out))
        }
    }
}

/// What the daemon knows of a session (the FSM's finer states stay in its task).
#[derive(Debug, Default)]
struct SessionStatus {
    established: bool,
    since: Option<std::time::Instant>,
    last_down: Option<String>,
}

/// The running BGP side: sessions, one RIB per peering, the FIB.
struct Bgp {
    circuit: String,
    peerings: Vec<speaker::PeeringPlan>,
    speaker: Speaker,
    ribs: Vec<Rib>,
    fib: Fib,
    status: Vec<SessionStatus>,
    /// When UPDATEs arrived and the FIB was written (API `fib`).
    install: crate::rib::InstallRecord,
    /// Route changes not yet written (while more UPDATEs are queued).
    pending: crate::rib::PendingChanges,
}

impl Bgp {
    fn apply(&mut self, rib: usize, changed: &std::collections::BTreeSet<IpNet>, msee: &mut Msee) {
        if changed.is_empty() {
            return;
        }
        let batch = self.ribs[rib].changes(changed);
        let result = self.fib.apply(msee, &batch);
        self.install.batch_applied(&result);
        match result {
            // One line per route only when asked for: a full table is a
            // million lines.
            Ok(stats) if !tracing::enabled!(tracing::Level::DEBUG) => {
                info!(
                    installed = stats.routes_upserted,
                    removed = stats.routes_removed,
                    groups_added = stats.groups_added,
                    groups_freed = stats.groups_freed,
                    "FIB batch applied"
                );
            }
            Ok(stats) => {
                for c in &batch {
                    match &c.members {
                        Some(m) => {
                            let links: Vec<String> = m
                                .iter()
                                .map(|m| format!("link {} pref {}", m.link, m.preference))
                                .collect();
                            info!(prefix = %c.prefix, via = %links.join(", "), "route installed");
                        }
                        None => info!(prefix = %c.prefix, "route removed"),
                    }
                }
                tracing::debug!(?stats, "FIB batch applied");
            }
            Err(e) => warn!("programming the dataplane: {e:#}"),
        }
    }

    /// A session event, after its link was flipped (see [`Speaker::start`]'s
    /// hook): the RIB, the FIB and what the CLI shows.
    async fn on_event(&mut self, i: usize, event: bgp::transport::SessionEvent, msee: &mut Msee) {
        use bgp::{fsm::DownReason, transport::SessionEvent};
        if let SessionEvent::Routes(update) = &event {
            self.install.update_received(update);
        }
        let spec = &self.speaker.specs[i];
        let (name, link, rib) = (spec.name.clone(), spec.link, spec.peering);
        match event {
            SessionEvent::Established(n) => {
                self.status[i] = SessionStatus {
                    established: true,
                    since: Some(std::time::Instant::now()),
                    last_down: self.status[i].last_down.take(),
                };
                info!(session = %name, peer_as = n.peer_as, peer_id = %n.peer_id, hold = n.hold_time, "session established");
                match self.ribs[rib].session_up(link) {
                    Ok(changed) => self.apply(rib, &changed, msee),
                    Err(e) => warn!(session = %name, "{e:#}"),
                }
                self.speaker.advertise(i, self.prepend(link)).await;
            }
            SessionEvent::Down(reason) => {
                // The link was flipped by the hook; the routes follow lazily.
                if let Err(e) = self.ribs[rib].session_down(link) {
                    warn!(session = %name, "{e:#}");
                }
                self.status[i].established = false;
                self.status[i].since = Some(std::time::Instant::now());
                self.status[i].last_down = Some(match &reason {
                    DownReason::PrefixLimit(l) => {
                        format!("maximum prefixes ({}) exceeded", l.limit)
                    }
                    other => format!("{other:?}"),
                });
                match reason {
                    DownReason::PrefixLimit(l) => warn!(session = %name, limit = l.limit,
                        "session down: maximum prefixes exceeded, Cease sent; it restarts after a backoff"),
                    other => warn!(session = %name, reason = ?other, "session down"),
                }
            }
            SessionEvent::Routes(update) => match self.ribs[rib].update(link, &update) {
                Ok(outcome) => {
                    for (prefix, why) in &outcome.refused {
                        warn!(session = %name, %prefix, "route refused: {why}");
                    }
                    self.pending.add(rib, outcome.changed);
                }
                Err(e) => warn!(session = %name, "{e:#}"),
            },
            SessionEvent::RouteRefreshRequested { .. } => {
                self.speaker.advertise(i, self.prepend(link)).await
            }
        }
        // Route changes wait while more UPDATEs are queued (see PendingChanges).
        if self.pending.is_full() || self.speaker.events.is_empty() {
            self.flush_pending(msee);
        }
    }

    /// Writes the route changes that waited for the UPDATE queue to empty.
    fn flush_pending(&mut self, msee: &mut Msee) {
        for (rib, changed) in self.pending.take() {
            self.apply(rib, &changed, msee);
        }
    }

    /// AS 12076 prepends on `link`'s advertisements (drained or not).
    fn prepend(&self, link: u32) -> usize {
        if self.ribs.iter().any(|r| r.is_drained(link)) {
            speaker::DRAIN_PREPEND
        } else {
            0
        }
    }

    /// Maintenance drain of `link_name` ("primary" or "secondary"): the
    /// link's routes go to the back of their next-hop groups (traffic to the
    /// customer moves to the other link, make-before-break, while the link
    /// keeps forwarding), and its sessions re-advertise with AS 12076
    /// prepended so the customer prefers the other link too.
    async fn drain(
        &mut self,
        circuit: &str,
        link_name: &str,
        drain: bool,
        msee: &mut Msee,
    ) -> std::result::Result<serde_json::Value, String> {
        if circuit != self.circuit {
            return Err(format!(
                "unknown circuit {circuit:?} (this daemon runs {})",
                self.circuit
            ));
        }
        let side = match link_name {
            "primary" => 0,
            "secondary" => 1,
            other => {
                return Err(format!(
                    "unknown link {other:?}: a circuit has a primary and a secondary link"
                ));
            }
        };
        let mut moved = 0;
        let mut links = Vec::new();
        for r in 0..self.ribs.len() {
            let link = self.peerings[r].links[side];
            links.push(link);
            match self.ribs[r].set_drained(link, drain) {
                Ok(changed) => {
                    moved += changed.len();
                    self.apply(r, &changed, msee);
                }
                Err(e) => return Err(format!("{e:#}")),
            }
        }
        let mut readvertised = 0;
        for (i, spec) in self.speaker.specs.iter().enumerate() {
            if links.contains(&spec.link) && self.status[i].established {
                self.speaker.advertise(i, self.prepend(spec.link)).await;
                readvertised += 1;
            }
        }
        info!(
            circuit,
            link = link_name,
            drain,
            routes = moved,
            sessions = readvertised,
            "{}",
            if drain {
                "link drained"
            } else {
                "link undrained"
            }
        );
        Ok(serde_json::json!({
            "circuit": circuit,
            "link": link_name,
            "drained": drain,
            "routes_repointed": moved,
            "sessions_readvertised": readvertised,
            "prepend": if drain { speaker::DRAIN_PREPEND } else { 0 },
        }))
    }

    /// Withdraws the Adj-RIB-In of sessions that went down (lazily, after
    /// the link-state flip has already moved the traffic).
    fn flush_stale(&mut self, msee: &mut Msee) {
        self.flush_pending(msee);
        for r in 0..self.ribs.len() {
            let links: Vec<u32> = self
                .speaker
                .specs
                .iter()
                .filter(|s| s.peering == r)
                .map(|s| s.link)
                .collect();
            for link in links {
                if self.ribs[r].is_stale(link) {
                    match self.ribs[r].flush_stale(link) {
                        Ok(changed) => {
                            info!(
                                link,
                                withdrawn = changed.len(),
                                "stale routes of a down session withdrawn"
                            );
                            self.apply(r, &changed, msee);
                        }
                        Err(e) => warn!("{e:#}"),
                    }
                }
            }
        }
    }
}

pub fn format_mac(mac: &[u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_parse_with_clear_errors() {
        let r: StaticRoute = "10.1.0.0/16=10.255.0.2".parse().unwrap();
        assert_eq!(r.prefix.to_string(), "10.1.0.0/16");
        assert_eq!(r.via, vec![Ipv4Addr::new(10, 255, 0, 2)]);
        let r: StaticRoute = "0.0.0.0/0=192.168.100.129,192.168.100.133".parse().unwrap();
        assert_eq!(r.via.len(), 2);
        let e = "10.1.0.0/16"
            .parse::<StaticRoute>()
            .unwrap_err()
            .to_string();
        assert!(e.contains("PREFIX=NEXTHOP"), "{e}");
        let e = "10.1.0.1/16=10.255.0.2"
            .parse::<StaticRoute>()
            .unwrap_err()
            .to_string();
        assert!(e.contains("host bits"), "{e}");
        assert!("10.1.0.0/33=1.2.3.4".parse::<StaticRoute>().is_err());
        assert!("10.1.0.0/16=nope".parse::<StaticRoute>().is_err());
        assert!(
            "10.1.0.0/16=1.1.1.1,2.2.2.2,3.3.3.3,4.4.4.4,5.5.5.5"
                .parse::<StaticRoute>()
                .is_err()
        );
    }
}
