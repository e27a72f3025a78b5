//! The daemon: load `msee`, describe one circuit's links, attachments and
//! routes to it, attach, keep each link's neighbour resolved (a link is up
//! once its neighbour answers), and report counters when asked to stop.
//!
//! Until the circuit model and BGP land, the daemon runs one circuit's
//! private peering on three untagged ports, with static routes.
use std::{
    collections::BTreeMap,
    net::{IpAddr, Ipv4Addr},
    path::PathBuf,
    time::Duration,
};

use anyhow::{Context as _, Result, anyhow, bail};
use dataplane::{AttachMode, LoadOptions, Msee};
use ipnet::IpNet;
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
/// traffic by flow. IPv4 or IPv6; next hops of the prefix's family.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StaticRoute {
    pub prefix: IpNet,
    pub via: Vec<IpAddr>,
}

impl std::str::FromStr for StaticRoute {
    type Err = anyhow::Error;
    /// `PREFIX=VIA[,VIA...]`, e.g. `10.1.0.0/16=10.255.0.2` or
    /// `fd00:a10::/48=fd00:ff::2`.
    fn from_str(s: &str) -> Result<Self> {
        let (prefix, via) = s.split_once('=').ok_or_else(|| {
            anyhow!(
                "route {s:?} must look like PREFIX=NEXTHOP[,NEXTHOP], e.g. 10.1.0.0/16=10.255.0.2"
            )
        })?;
        let prefix: IpNet = prefix
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
                let a: IpAddr = v
                    .parse()
                    .with_context(|| format!("route {s:?}: bad next hop {v:?}"))?;
                if a.is_ipv4() != matches!(prefix, IpNet::V4(_)) {
                    bail!("route {s:?}: next hop {a} is not of the prefix's address family");
                }
                Ok(a)
            })
            .collect::<Result<Vec<IpAddr>>>()?;
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
    /// Police each customer link, both directions, at this rate (bit/s);
    /// by default, the circuit's bandwidth when a circuit model is given.
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
    /// Run each peering on its own VLAN (802.1Q or QinQ tags from the
    /// model), as on ExpressRoute, instead of one untagged peering per port:
    /// each peering gets its own link on each customer port, and the VLAN
    /// shim tags the MSEE's own traffic (ARP, ND, BGP, BFD) by peering.
    pub tagged: bool,
}

/// BGP for one circuit: sessions, RIB and FIB programming.
pub struct BgpConfig {
    pub model: circuit::Model,
    /// Where the model came from: a reload (SIGHUP, `msee-cli reload`)
    /// reads it again.
    pub path: PathBuf,
    pub circuit: String,
    /// Replaces the model's per-session route limit (labs and tests).
    pub max_prefixes: Option<u32>,
    pub timers: Timers,
}

/// One link of the MSEE (link id = index in the list): a port, or with
/// tagged peerings one peering's VLAN on a customer port.
struct Port {
    link: u32,
    role: LinkRole,
    /// How the link is named in logs, counters and the API: its role, or
    /// its role and peering when the port carries several.
    name: String,
    /// The port's interface (shared by the links of its peerings).
    iface: Interface,
    /// The peering's tags on the port; `None`: untagged.
    tags: Option<msee_abi::vlan::VlanTags>,
    peering: PeeringKind,
    /// Routing domain of frames arriving on this link.
    domain: u32,
    /// The MSEE's addresses on this link, with their prefix lengths.
    addrs: Vec<(IpAddr, u8)>,
    /// The one neighbour on this link (customer router or Azure gateway):
    /// its IPv4 address, whose ARP answer gives the link's MAC, and its
    /// IPv6 address if the link also carries IPv6 (the same router).
    neighbour: Option<Ipv4Addr>,
    neighbour6: Option<std::net::Ipv6Addr>,
    neighbour_mac: Option<[u8; 6]>,
    /// Whether a BGP session runs over this link.
    bgp: bool,
}

impl Port {
    /// The whole (untagged) port as one link of the private peering.
    fn untagged(link: u32, role: LinkRole, iface: Interface) -> Self {
        let addrs = iface
            .addrs
            .iter()
            .map(|(a, l)| (IpAddr::V4(*a), *l))
            .chain(iface.addrs6.iter().map(|(a, l)| (IpAddr::V6(*a), *l)))
            .collect();
        Self {
            link,
            role,
            name: role.name().to_owned(),
            iface,
            tags: None,
            peering: PeeringKind::Private,
            domain: DOMAIN,
            addrs,
            neighbour: None,
            neighbour6: None,
            neighbour_mac: None,
            bgp: false,
        }
    }

    /// Whether `addr` is in one of this link's subnets.
    fn connects(&self, addr: IpAddr) -> bool {
        self.addrs.iter().any(|(a, len)| match (a, addr) {
            (IpAddr::V4(a), IpAddr::V4(b)) => netlink::same_subnet(*a, b, *len),
            (IpAddr::V6(a), IpAddr::V6(b)) => netlink::same_subnet6(*a, b, *len),
            _ => false,
        })
    }

    fn attachment_key(&self) -> AttachmentKey {
        let t = self.tags.unwrap_or_default();
        AttachmentKey {
            ifindex: self.iface.ifindex,
            outer_vlan: t.outer_vid,
            inner_vlan: t.inner_vid,
        }
    }

    fn link_entry(&self, mac: [u8; 6]) -> Link {
        let t = self.tags.unwrap_or_default();
        Link {
            ifindex: self.iface.ifindex,
            outer_vlan: t.outer_vid,
            inner_vlan: t.inner_vid,
            outer_tpid: t.outer_tpid,
            role: self.role as u8,
            src_mac: self.iface.mac,
            dst_mac: mac,
            circuit: CIRCUIT,
            ..Default::default()
        }
    }
}

/// The tags of a peering's VLAN as ExpressRoute sends them (0x8100 on both
/// tags of a QinQ pair).
fn vlan_tags(tag: circuit::model::VlanTag) -> msee_abi::vlan::VlanTags {
    match tag {
        circuit::model::VlanTag::Dot1Q(vid) => msee_abi::vlan::VlanTags::dot1q(vid),
        circuit::model::VlanTag::QinQ { s_tag, c_tag } => {
            msee_abi::vlan::VlanTags::double_dot1q(s_tag, c_tag)
        }
    }
}

/// The links of tagged peerings: for each peering of `circuit` whose MSEE
/// addresses are on the primary and secondary ports, one link per port on
/// its VLAN, then the Azure port's (untagged, private domain).
fn tagged_links(
    model: &circuit::Model,
    circuit_name: &str,
    ifaces: &[(LinkRole, Interface)],
) -> Result<Vec<Port>> {
    let circuit = model
        .circuit(circuit_name)
        .ok_or_else(|| anyhow!("circuit {circuit_name:?} is not in the configuration"))?;
    let mut links = Vec::new();
    for p in &circuit.peerings {
        let kind = speaker::kind_of(p.peering_type);
        let mut pair = Vec::new();
        for l in [&p.primary, &p.secondary] {
            let role = match l.role {
                circuit::model::LinkRole::Primary => LinkRole::Primary,
                circuit::model::LinkRole::Secondary => LinkRole::Secondary,
            };
            let Some((_, iface)) = ifaces.iter().find(|(r, _)| *r == role) else {
                bail!("no {} port for {:?}", role.name(), p.peering_type);
            };
            let mut addrs: Vec<(IpAddr, u8)> = Vec::new();
            let mine = |a: IpAddr| {
                iface
                    .addrs
                    .iter()
                    .map(|(x, n)| (IpAddr::V4(*x), *n))
                    .chain(iface.addrs6.iter().map(|(x, n)| (IpAddr::V6(*x), *n)))
                    .find(|(x, _)| *x == a)
            };
            addrs.extend(mine(IpAddr::V4(l.ipv4.msee)));
            if let Some(v6) = &l.ipv6 {
                addrs.extend(mine(IpAddr::V6(v6.msee)));
            }
            if !addrs.iter().any(|(a, _)| a.is_ipv4()) {
                break;
            }
            pair.push(Port {
                link: 0,
                role,
                name: format!("{}/{}", role.name(), kind.name()),
                iface: iface.clone(),
                tags: Some(vlan_tags(p.vlan)),
                peering: kind,
                domain: speaker::domain_of(kind),
                addrs,
                neighbour: None,
                neighbour6: None,
                neighbour_mac: None,
                bgp: false,
            });
        }
        if pair.len() == 2 {
            links.extend(pair);
        } else {
            warn!(
                "circuit {circuit_name}: {:?} not run: its MSEE addresses {} and {} are not on the primary and secondary ports",
                p.peering_type, p.primary.ipv4.msee, p.secondary.ipv4.msee
            );
        }
    }
    if links.is_empty() {
        bail!(
            "circuit {circuit_name}: no peering has its MSEE addresses on the primary and secondary ports"
        );
    }
    let Some((_, azure)) = ifaces.iter().find(|(r, _)| *r == LinkRole::Azure) else {
        bail!("no azure port");
    };
    links.push(Port::untagged(0, LinkRole::Azure, azure.clone()));
    for (i, l) in links.iter_mut().enumerate() {
        l.link = i as u32;
    }
    Ok(links)
}

pub async fn run(cfg: DaemonConfig) -> Result<()> {
    let handle = netlink::connect()?;
    let mut ifaces = Vec::new();
    for (role, name) in &cfg.ports {
        ifaces.push((*role, netlink::interface(&handle, name).await?));
    }
    let mut ports = match (&cfg.bgp, cfg.tagged) {
        (Some(bgp), true) => tagged_links(&bgp.model, &bgp.circuit, &ifaces)?,
        (None, true) => bail!("--tagged runs the peerings of a circuit: give its --config"),
        (_, false) => ifaces
            .iter()
            .enumerate()
            .map(|(i, (role, iface))| Port::untagged(i as u32, *role, iface.clone()))
            .collect(),
    };

    // BGP sessions of the configured circuit, planned before anything is
    // loaded so that a wrong configuration changes nothing.
    let mut bgp_plan = None;
    if let Some(bgp) = &cfg.bgp {
        // One entry per customer port (its first link), with each tagged
        // peering's own link on it.
        let mut infos: Vec<PortInfo> = Vec::new();
        for p in &ports {
            let role = match p.role {
                LinkRole::Primary => circuit::model::LinkRole::Primary,
                LinkRole::Secondary => circuit::model::LinkRole::Secondary,
                LinkRole::Azure => continue,
            };
            let info = match infos.iter_mut().find(|i| i.role == role) {
                Some(i) => i,
                None => {
                    infos.push(PortInfo {
                        link: p.link,
                        role,
                        addrs: p.iface.all_addrs().collect(),
                        peering_links: Vec::new(),
                    });
                    infos.last_mut().expect("pushed")
                }
            };
            if p.tags.is_some() {
                info.peering_links
                    .push((speaker::type_of(p.peering), p.link));
            }
        }
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
            // An untagged port carries one peering: the private one, in the
            // domain its attachment names.
            if !cfg.tagged && (p.kind != PeeringKind::Private || p.domain != DOMAIN) {
                bail!(
                    "circuit {}: {:?} peering needs its VLAN: run with --tagged (an untagged port carries only private peering)",
                    bgp.circuit,
                    p.kind
                );
            }
        }
        for s in &specs {
            let port = &mut ports[s.link as usize];
            let known = match s.peer {
                IpAddr::V4(a) => port.neighbour.replace(a).map(IpAddr::V4),
                IpAddr::V6(a) => port.neighbour6.replace(a).map(IpAddr::V6),
            };
            if let Some(n) = known
                && n != s.peer
            {
                bail!(
                    "port {}: next hop {n} and BGP peer {}: a link has exactly one neighbour",
                    port.iface.name,
                    s.peer
                );
            }
            port.bgp = true;
        }
        bgp_plan = Some((peerings, specs, infos));
    }

    // Each route's next hops name the links that carry it.
    let mut groups: BTreeMap<Vec<u32>, u32> = BTreeMap::new();
    let mut routes = Vec::new();
    for route in &cfg.routes {
        let mut members = Vec::new();
        for via in &route.via {
            let port = ports.iter_mut().find(|p| p.connects(*via)).ok_or_else(|| {
                anyhow!(
                    "route {}: next hop {via} is on none of the ports' subnets",
                    route.prefix
                )
            })?;
            let known = match via {
                IpAddr::V4(v) => port.neighbour.replace(*v).map(IpAddr::V4),
                IpAddr::V6(v) => port.neighbour6.replace(*v).map(IpAddr::V6),
            };
            if let Some(n) = known
                && n != *via
            {
                bail!(
                    "port {} ({}): next hops {n} and {via}: a link has exactly one neighbour",
                    port.iface.name,
                    port.name
                );
            }
            members.push(port.link);
        }
        members.sort_unstable();
        members.dedup();
        let next_id = groups.len() as u32;
        let group = *groups.entry(members).or_insert(next_id);
        routes.push((route.prefix, group));
    }
    // A link's MAC comes from its IPv4 neighbour's ARP answer.
    if let Some(p) = ports
        .iter()
        .find(|p| p.neighbour.is_none() && p.neighbour6.is_some())
    {
        bail!(
            "port {} ({}): next hop {} needs an IPv4 next hop on the same link too (its ARP answer gives the link's MAC)",
            p.iface.name,
            p.name,
            p.neighbour6.expect("checked")
        );
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

    // ExpressRoute polices each link at the circuit's bandwidth.
    let police_bps = cfg.bandwidth_bps.or_else(|| {
        let b = cfg.bgp.as_ref()?;
        Some(u64::from(b.model.circuit(&b.circuit)?.bandwidth_mbps) * 1_000_000)
    });
    // The carrier monitor and BFD run on a thread of their own.
    let detectors = crate::detectors::start()?;
    // Every source of link state flips links through this, from its own task.
    let health = LinkHealth::new(msee.link_switch()?);
    for p in &ports {
        msee.add_port(p.iface.ifindex)?;
        for (addr, _) in &p.addrs {
            msee.add_local(p.domain, *addr)?;
        }
        // Links start down: up once the neighbour answers (and BGP is up).
        msee.set_link(p.link, p.link_entry([0; 6]))?;
        health.add_link(p.link, &p.name, p.iface.carrier, p.bgp)?;
        let first = |v6: bool| p.addrs.iter().map(|(a, _)| *a).find(|a| a.is_ipv6() == v6);
        msee.set_attachment(
            p.attachment_key(),
            Attachment {
                link: p.link,
                domain: p.domain,
                circuit: CIRCUIT,
                peering: p.peering as u8,
                role: p.role as u8,
                mac: p.iface.mac,
                // Time-exceeded replies come from the link's own address.
                local_v4: match first(false) {
                    Some(IpAddr::V4(a)) => a.octets(),
                    _ => [0; 4],
                },
                local_v6: match first(true) {
                    Some(IpAddr::V6(a)) => a.octets(),
                    _ => [0; 16],
                },
                ..Default::default()
            },
        )?;
        if let Some(bps) = police_bps
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
            *prefix,
            Route {
                group: *group,
                flags: 0,
            },
        )?;
        info!(%prefix, group, "route installed");
    }

    // The MSEE's own traffic on tagged peerings leaves with its peering's
    // tags (this kernel has no 802.1Q): the shim, by destination subnet.
    let _vlan_shim = if cfg.tagged {
        Some(vlan_shim(&ports, cfg.kernel_log_level)?)
    } else {
        None
    };
    let mut attached = std::collections::BTreeSet::new();
    for p in &ports {
        if !attached.insert(p.iface.ifindex) {
            continue;
        }
        msee.attach(p.iface.ifindex, cfg.mode)?;
        info!(port = p.role.name(), ifname = %p.iface.name, ifindex = p.iface.ifindex, mode = ?cfg.mode, "msee attached");
    }

    resolve_pending(
        &handle,
        &mut msee,
        &health,
        &mut ports,
        Duration::from_secs(3),
        false,
    )
    .await;

    let (api_tx, mut api_rx) = tokio::sync::mpsc::channel::<crate::api::Call>(16);
    if let Some(path) = &cfg.api_socket {
        crate::api::serve(path, api_tx)?;
        info!(socket = %path.display(), "API listening");
    } else {
        drop(api_tx);
    }

    // BFD events that concern the BGP sessions (the links were flipped already).
    let (_no_bfd, mut bfd_events) = tokio::sync::mpsc::unbounded_channel::<BfdNotice>();
    let mut bgp = match bgp_plan {
        Some((peerings, specs, infos)) => {
            let ribs: Vec<Rib> = peerings
                .iter()
                .map(|p| {
                    let mut rib = Rib::new(p.domain, p.kind, &p.links);
                    if let Some(registered) = cfg.bgp.as_ref().and_then(|b| registered(b, p.kind)) {
                        rib.set_registered(registered);
                    }
                    rib
                })
                .collect();
            for s in &specs {
                info!(session = %s.name, local = %s.local, peer = %s.peer, peer_as = s.peer_as,
                    md5 = s.md5_key.is_some(), max_prefixes = s.max_prefixes,
                    adverts = s.adverts.iter().map(|u| u.nlri.len()).sum::<usize>(), "BGP session configured");
            }
            let timers = cfg.bgp.as_ref().map(|b| b.timers).unwrap_or_default();
            // A session's state flips its link from the session's own task.
            // The IPv4 session speaks for its link (as BFD, IPv4-only on
            // ExpressRoute); an IPv6 session that fails loses its routes
            // (stale, then withdrawn) but does not take the link down.
            let bgp_health = health.clone();
            let bgp_hook: speaker::Hook = std::sync::Arc::new(move |link, family, event| {
                use bgp::transport::SessionEvent;
                if family != speaker::Family::Ipv4 {
                    return;
                }
                match event {
                    SessionEvent::Established(_) => {
                        bgp_health.set(link, Signal::Bgp, true);
                    }
                    SessionEvent::Down(_) => {
                        bgp_health.set(link, Signal::Bgp, false);
                    }
                    _ => {}
                }
            });
            let status = specs.iter().map(|_| SessionStatus::default()).collect();
            let BfdRuntime {
                bfd,
                bfd_of,
                notices,
            } = {
                // Its sockets and task belong to the detectors' runtime.
                let _in_detectors = detectors.enter();
                start_bfd(&specs, &ports, &health)?
            };
            bfd_events = notices;
            let b = cfg.bgp.as_ref().expect("planned from it");
            Some(Bgp {
                model: b.model.clone(),
                path: b.path.clone(),
                max_prefixes: b.max_prefixes,
                infos,
                police_override: cfg.bandwidth_bps.is_some(),
                bfd_of,
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
                bfd,
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
    let mut sighup = tokio::signal::unix::signal(SignalKind::hangup())?;
    let stop_at = cfg.run_for.map(|d| tokio::time::Instant::now() + d);
    // Carrier changes flip links from the detectors' thread, not the main loop.
    let mut carrier_events = {
        let _in_detectors = detectors.enter();
        crate::linkmon::watch(ports.iter().map(|p| p.iface.ifindex).collect())?
    };
    let mut links_of: BTreeMap<u32, Vec<u32>> = BTreeMap::new();
    for p in &ports {
        links_of.entry(p.iface.ifindex).or_default().push(p.link);
    }
    let carrier_health = health.clone();
    // The main loop hears of carrier changes after the links were flipped,
    // to stop (and later restart) the BGP sessions over them.
    let (carrier_tx, mut carrier_notices) =
        tokio::sync::mpsc::unbounded_channel::<(Vec<u32>, bool)>();
    detectors.spawn(async move {
        while let Some(ev) = carrier_events.recv().await {
            let links = links_of.get(&ev.ifindex).cloned().unwrap_or_default();
            for link in &links {
                carrier_health.set(*link, Signal::Carrier, ev.up);
            }
            let _ = carrier_tx.send((links, ev.up));
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
            Some((i, generation, event)) = async { bgp.as_mut().expect("guarded").speaker.events.recv().await },
                if bgp.is_some() => {
                let b = bgp.as_mut().expect("guarded");
                // The last words of a session run that a reload replaced.
                if b.speaker.is_current(i, generation) {
                    b.on_event(i, event, &mut msee).await;
                }
            }
            _ = sighup.recv() => {
                match bgp.as_mut() {
                    Some(b) => match b.reload(&mut msee).await {
                        Ok(summary) => info!(%summary, "SIGHUP: configuration reloaded"),
                        Err(e) => warn!("SIGHUP: {e}"),
                    },
                    None => warn!("SIGHUP: no circuit configuration to reload (run with --config)"),
                }
            }
            Some(notice) = bfd_events.recv() => {
                if let Some(b) = bgp.as_mut() {
                    b.on_bfd(notice).await;
                }
            }
            Some((links, up)) = carrier_notices.recv() => {
                if let Some(b) = bgp.as_mut() {
                    b.on_carrier(&links, up).await;
                }
            }
            Some(call) = api_rx.recv() => {
                let answer = match &call.request {
                    crate::api::Request::Drain { circuit, link, drain } => match bgp.as_mut() {
                        Some(b) => b.drain(circuit, link, *drain, &mut msee).await,
                        None => Err("this daemon runs no BGP circuit: nothing to drain".into()),
                    },
                    crate::api::Request::Reload => match bgp.as_mut() {
                        Some(b) => b.reload(&mut msee).await,
                        None => Err("this daemon runs no circuit configuration (start it with --config)".into()),
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
                resolve_pending(&handle, &mut msee, &health, &mut ports,
                    Duration::from_millis(500), ticks.is_multiple_of(30)).await;
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

/// Microsoft peering's registered public prefixes in `b`'s model (the
/// customer may announce only within them); `None` for private peering.
fn registered(b: &BgpConfig, kind: PeeringKind) -> Option<Vec<IpNet>> {
    registered_in(&b.model, &b.circuit, kind)
}

fn registered_in(model: &circuit::Model, circuit: &str, kind: PeeringKind) -> Option<Vec<IpNet>> {
    if kind != PeeringKind::Microsoft {
        return None;
    }
    let p = model
        .circuit(circuit)?
        .peering(circuit::model::PeeringType::MicrosoftPeering)?;
    Some(p.advertised_public_prefixes.clone())
}

/// The VLAN shim on every customer port: each tagged link's subnets get
/// its tags on the way out. Kept alive by the caller (dropping detaches).
fn vlan_shim(ports: &[Port], log_level: u8) -> Result<dataplane::VlanShim> {
    let mut shim = dataplane::VlanShim::load(&LoadOptions {
        log_level,
        pin_dir: None,
    })
    .context("loading the VLAN shim")?;
    let mut attached = std::collections::BTreeSet::new();
    for p in ports {
        let Some(tags) = p.tags else { continue };
        if attached.insert(p.iface.ifindex) {
            shim.attach_egress(p.iface.ifindex)
                .with_context(|| format!("attaching the VLAN shim to {}", p.iface.name))?;
        }
        for (addr, len) in &p.addrs {
            let subnet = IpNet::new(*addr, *len)
                .map_err(|e| anyhow!("{addr}/{len}: {e}"))?
                .trunc();
            shim.set_egress_tag(p.iface.ifindex, subnet, tags)
                .with_context(|| format!("tagging {subnet} on {}", p.iface.name))?;
            info!(link = %p.name, %subnet, tags = %dataplane::vlan::Tags(tags), "VLAN shim: the MSEE's own traffic to this subnet is tagged");
        }
    }
    Ok(shim)
}

/// What the main loop hears of BFD: a session's BFD went down (not by the
/// peer's choice) or came up. The link flip has already happened.
#[derive(Debug)]
struct BfdNotice {
    /// The BGP session over the same link.
    session: usize,
    up: bool,
}

/// The running BFD sessions and what the main loop hears of them.
struct BfdRuntime {
    bfd: Option<std::sync::Arc<bfd::transport::Bfd>>,
    /// BGP session index -> BFD session index.
    bfd_of: BTreeMap<usize, usize>,
    notices: tokio::sync::mpsc::UnboundedReceiver<BfdNotice>,
}

/// Starts BFD for every BGP session whose peering has it on (IPv4 only, as
/// on ExpressRoute), and a task that flips links on its state changes the
/// moment they happen, then tells the main loop (which takes BGP down or
/// lets it come back).
fn start_bfd(
    specs: &[speaker::SessionSpec],
    ports: &[Port],
    health: &LinkHealth,
) -> Result<BfdRuntime> {
    let (notice_tx, notice_rx) = tokio::sync::mpsc::unbounded_channel();
    let mut peers = Vec::new();
    let mut owners = Vec::new();
    let mut bfd_of = BTreeMap::new();
    let mut off = Vec::new();
    // Every IPv4 session gets a BFD session (BFD is IPv4-only on
    // ExpressRoute), administratively down where its peering has BFD off,
    // so a reload can turn it on or off without a restart.
    for (i, s) in specs.iter().enumerate() {
        if s.family != speaker::Family::Ipv4 {
            continue;
        }
        if s.bfd.is_none() {
            off.push(peers.len());
        }
        bfd_of.insert(i, peers.len());
        peers.push(bfd::transport::PeerConfig {
            name: s.name.clone(),
            local: s.local,
            peer: s.peer,
            ifname: Some(ports[s.link as usize].iface.name.clone()),
            session: bfd_config(s.bfd.unwrap_or(circuit::model::BfdTimers {
                interval_ms: 300,
                multiplier: 3,
            })),
        });
        owners.push((i, s.link));
    }
    if peers.is_empty() {
        return Ok(BfdRuntime {
            bfd: None,
            bfd_of,
            notices: notice_rx,
        });
    }
    let names: Vec<String> = peers.iter().map(|p| p.name.clone()).collect();
    let (bfd, mut events) = bfd::transport::Bfd::start(peers).context("starting BFD")?;
    for j in off {
        bfd.set_admin_down(j, true);
    }
    let bfd = std::sync::Arc::new(bfd);
    let status = bfd.clone();
    let health = health.clone();
    tokio::spawn(async move {
        while let Some(ev) = events.recv().await {
            let (session, link) = owners[ev.session];
            let name = &names[ev.session];
            if ev.to == bfd::State::Up {
                info!(session = %name, "BFD up");
                health.set(link, Signal::Bfd, true);
                let _ = notice_tx.send(BfdNotice { session, up: true });
            } else if ev.to == bfd::State::AdminDown {
                // Turned off here (a reload): BFD stops speaking for the link.
                info!(session = %name, "BFD turned off");
                health.bfd_unused(link, "BFD turned off");
            } else if ev.from == bfd::State::Up {
                // RFC 5882 §3.2: the peer turning BFD off is not a failure.
                // (The status is published before the event is sent.)
                let remote = status.status().get(ev.session).map(|s| s.remote_state);
                if remote == Some(bfd::State::AdminDown) {
                    info!(session = %name, "BFD turned off by the peer: not a failure");
                    health.bfd_unused(link, "BFD turned off by the peer");
                    continue;
                }
                warn!(session = %name, diag = %ev.diag, to = %ev.to, "BFD down: link down, BGP session stopped");
                health.set(link, Signal::Bfd, false);
                let _ = notice_tx.send(BfdNotice { session, up: false });
            }
        }
    });
    Ok(BfdRuntime {
        bfd: Some(bfd),
        bfd_of,
        notices: notice_rx,
    })
}

/// BFD session timers from the model's: the same interval both ways.
fn bfd_config(t: circuit::model::BfdTimers) -> bfd::Config {
    let interval = Duration::from_millis(u64::from(t.interval_ms));
    bfd::Config {
        desired_min_tx: interval,
        required_min_rx: interval,
        detect_mult: t.multiplier,
    }
}

/// Resolves the neighbours not resolved yet (their links wait for it);
/// with `recheck`, also looks at the kernel's table for the resolved ones
/// and follows a neighbour whose MAC changed. A recheck never takes a
/// working link down: liveness is carrier's, BGP's and BFD's business; a
/// missing entry is only re-probed.
async fn resolve_pending(
    handle: &rtnetlink::Handle,
    msee: &mut Msee,
    health: &LinkHealth,
    ports: &mut [Port],
    timeout: Duration,
    recheck: bool,
) {
    for p in ports.iter_mut() {
        let Some(via) = p.neighbour else { continue };
        if let Some(known) = p.neighbour_mac {
            if !recheck {
                continue;
            }
            match netlink::lookup_neighbour(handle, p.iface.ifindex, via).await {
                Ok(Some(mac)) if mac != known => {
                    if let Err(e) = msee.set_link(p.link, p.link_entry(mac)) {
                        warn!(%via, "updating link {}: {e}", p.name);
                        continue;
                    }
                    p.neighbour_mac = Some(mac);
                    info!(link = p.name, %via, old = %format_mac(&known), mac = %format_mac(&mac), "neighbour's MAC changed: link updated");
                }
                Ok(Some(_)) => {}
                Ok(None) => {
                    if let Err(e) = netlink::probe_neighbour(handle, p.iface.ifindex, via).await {
                        warn!(link = p.name, %via, "re-probing the neighbour: {e:#}");
                    }
                }
                Err(e) => warn!(link = p.name, %via, "reading the neighbour table: {e:#}"),
            }
            continue;
        }
        match netlink::resolve_neighbour(handle, p.iface.ifindex, via, timeout).await {
            Ok(mac) => {
                if let Err(e) = msee.set_link(p.link, p.link_entry(mac)) {
                    warn!(%via, "installing link {}: {e}", p.name);
                    continue;
                }
                p.neighbour_mac = Some(mac);
                health.set(p.link, Signal::Neighbour, true);
                info!(link = p.name, %via, mac = %format_mac(&mac), "neighbour resolved");
            }
            Err(e) => {
                health.set(p.link, Signal::Neighbour, false);
                warn!(link = p.name, %via, "neighbour unresolved, link down, retrying: {e:#}");
            }
        }
    }
}

fn port_reports(msee: &Msee, ports: &[Port]) -> Result<Vec<PortReport>> {
    ports
        .iter()
        .map(|p| {
            Ok(PortReport::new(
                &p.name,
                &p.iface.name,
                &msee.link_counters(p.link, Direction::Rx)?,
                &msee.link_counters(p.link, Direction::Tx)?,
            )
            .with_policers(
                msee.policer(p.link, Direction::Rx)?.rate_bytes_per_sec,
                msee.policer(p.link, Direction::Tx)?.rate_bytes_per_sec,
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
        Request::Circuits => Ok(json!(bgp.map_or_else(Vec::new, |b| {
            b.model
                .circuits
                .iter()
                .map(|c| circuit_view(c, c.name == b.circuit))
                .collect()
        }))),
        Request::Links => Ok(json!(health.view())),
        Request::Bfd => Ok(json!(
            bgp.and_then(|b| b.bfd.as_ref())
                .map(|b| b.status())
                .unwrap_or_default()
        )),
        Request::Drain { .. } | Request::Reload => Err("answered by the main loop".into()),
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
                "now_ns": msee_sys::clock::monotonic_ns(),
                "cpu_ns": msee_sys::clock::process_cpu_ns(),
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
                    .enumerate()
                    .filter(|(i, _)| b.speaker.is_active(*i))
                    .map(|(_, (s, st))| json!({
                        "name": s.name,
                        "link": role_of(s.link),
                        "local": s.local,
                        "peer": s.peer,
                        "peer_as": s.peer_as,
                        "state": if st.established { "Established" } else { "Down" },
                        "since_secs": st.since.map(|t| now.duration_since(t).as_secs()),
                        "last_down": st.last_down,
                        "family": format!("{:?}", s.family),
                        "prefixes_received": b.ribs[s.peering].adj_rib_in_len((s.link, s.family)),
                        "drained": b.ribs[s.peering].is_drained(s.link),
                        "held_by_bfd": st.held_by_bfd,
                        "held_by_carrier": st.held_by_carrier,
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

/// A circuit as the operator knows it from `az network express-route show`,
/// plus what the model derived (reach, limits, per-link addresses).
fn circuit_view(c: &circuit::model::Circuit, running: bool) -> serde_json::Value {
    use serde_json::json;
    let link = |l: &circuit::model::Link| {
        json!({
            "ipv4": { "subnet": l.ipv4.subnet.to_string(), "customer": l.ipv4.customer, "msee": l.ipv4.msee },
            "ipv6": l.ipv6.as_ref().map(|v6| json!({
                "subnet": v6.subnet.to_string(), "customer": v6.customer, "msee": v6.msee,
            })),
        })
    };
    json!({
        "name": c.name,
        "running": running,
        "serviceKey": c.service_key,
        "serviceProviderName": c.service_provider_name,
        "peeringLocation": c.peering_location,
        "metro": c.metro,
        "area": c.area,
        "bandwidthInMbps": c.bandwidth_mbps,
        "sku": { "tier": format!("{:?}", c.tier), "family": format!("{:?}", c.family) },
        "serviceProviderProvisioningState": format!("{:?}", c.provisioning_state),
        "expressRoutePort": c.express_route_port,
        "reach": c.reach,
        "vnetLinks": c.vnet_links,
        "peerings": c.peerings.iter().map(|p| json!({
            "peeringType": format!("{:?}", p.peering_type),
            "peerASN": p.peer_asn,
            "vlan": p.vlan.to_string(),
            "md5": p.shared_key.is_some(),
            "bfd": p.bfd.map(|t| json!({ "intervalMs": t.interval_ms, "multiplier": t.multiplier })),
            "primary": link(&p.primary),
            "secondary": link(&p.secondary),
            "limits": {
                "fromCustomerIpv4": p.limits.from_customer_ipv4,
                "fromCustomerIpv6": p.limits.from_customer_ipv6,
                "toCustomerIpv4": p.limits.to_customer_ipv4,
                "toCustomerIpv6": p.limits.to_customer_ipv6,
            },
        })).collect::<Vec<_>>(),
    })
}

/// What the daemon knows of a session (the FSM's finer states stay in its task).
#[derive(Debug, Default)]
struct SessionStatus {
    /// Stopped because its link's BFD went down; restarted when BFD is up.
    held_by_bfd: bool,
    /// Stopped because its port lost carrier; restarted when carrier is back
    /// (and BFD does not hold it).
    held_by_carrier: bool,
    established: bool,
    since: Option<std::time::Instant>,
    last_down: Option<String>,
}

/// The running BGP side: sessions, one RIB per peering, the FIB.
struct Bgp {
    /// The model and file it runs (a reload compares against them).
    model: circuit::Model,
    path: PathBuf,
    max_prefixes: Option<u32>,
    infos: Vec<PortInfo>,
    /// `--bandwidth-mbps` was given: the policers ignore the model's.
    police_override: bool,
    /// Session index -> its BFD session index.
    bfd_of: BTreeMap<usize, usize>,
    circuit: String,
    peerings: Vec<speaker::PeeringPlan>,
    speaker: Speaker,
    ribs: Vec<Rib>,
    fib: Fib,
    status: Vec<SessionStatus>,
    bfd: Option<std::sync::Arc<bfd::transport::Bfd>>,
    /// When UPDATEs arrived and the FIB was written (API `fib`).
    install: crate::rib::InstallRecord,
    /// Route changes not yet written (while more UPDATEs are queued).
    pending: crate::rib::PendingChanges,
}

impl Bgp {
    /// Writes the best paths of `changed` (RIB changes other than
    /// UPDATEs), after whatever UPDATEs left waiting (which callers write
    /// before they change the RIB: see PendingChanges).
    fn apply(&mut self, rib: usize, changed: &std::collections::BTreeSet<IpNet>, msee: &mut Msee) {
        self.flush_pending(msee);
        if changed.is_empty() {
            return;
        }
        let batch = self.ribs[rib].change_batch(changed);
        self.write_batch(rib, &batch, msee);
    }

    fn write_batch(&mut self, rib: usize, batch: &crate::rib::ChangeBatch, msee: &mut Msee) {
        let result = self.fib.apply_batch(msee, self.ribs[rib].domain(), batch);
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
                for (prefix, hops) in batch.iter() {
                    match hops {
                        Some(h) => {
                            let links: Vec<String> = h
                                .members()
                                .map(|m| format!("link {} pref {}", m.link, m.preference))
                                .collect();
                            info!(%prefix, via = %links.join(", "), "route installed");
                        }
                        None => info!(%prefix, "route removed"),
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
        let session = (link, spec.family);
        match event {
            SessionEvent::Established(n) => {
                self.status[i] = SessionStatus {
                    held_by_bfd: false,
                    held_by_carrier: false,
                    established: true,
                    since: Some(std::time::Instant::now()),
                    last_down: self.status[i].last_down.take(),
                };
                info!(session = %name, peer_as = n.peer_as, peer_id = %n.peer_id, hold = n.hold_time, "session established");
                // Room for as many routes as the session may announce: a
                // full table then fills its maps without growing them.
                let limit = spec.max_prefixes as usize;
                let (v4, v6) = match spec.family {
                    speaker::Family::Ipv4 => (limit.min(msee_abi::MAX_ROUTES_V4 as usize), 0),
                    speaker::Family::Ipv6 => (0, limit.min(msee_abi::MAX_ROUTES_V6 as usize)),
                };
                if let Err(e) = self.ribs[rib].reserve(session, v4 + v6) {
                    warn!(session = %name, "{e:#}");
                }
                let domain = self.ribs[rib].domain();
                self.fib.reserve(domain, v4, v6);
                // Waiting UPDATE changes first: coming back drops the
                // session's stale paths from the RIB.
                self.flush_pending(msee);
                match self.ribs[rib].session_up(session) {
                    Ok(changed) => self.apply(rib, &changed, msee),
                    Err(e) => warn!(session = %name, "{e:#}"),
                }
                self.speaker.advertise(i, self.prepend(link)).await;
            }
            SessionEvent::Down(reason) => {
                // The link was flipped by the hook; the routes follow lazily.
                if let Err(e) = self.ribs[rib].session_down(session) {
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
            SessionEvent::Routes(update) => match self.ribs[rib].update(session, &update) {
                Ok(outcome) => {
                    for (prefix, why) in &outcome.refused {
                        warn!(session = %name, %prefix, "route refused: {why}");
                    }
                    // Each prefix's best path now, while the RIB's entries
                    // are in cache (see PendingChanges).
                    let r = &self.ribs[rib];
                    self.pending
                        .add(rib, outcome.changed.iter().map(|p| (*p, r.best_hops(*p))));
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
        for (rib, batch) in self.pending.take() {
            self.write_batch(rib, &batch, msee);
        }
    }

    /// BFD saw the session's link fail (stop the session: Cease / BFD
    /// Down) or come back (start it again).
    async fn on_bfd(&mut self, notice: BfdNotice) {
        let i = notice.session;
        let st = &mut self.status[i];
        if notice.up {
            if st.held_by_bfd {
                st.held_by_bfd = false;
                if !st.held_by_carrier {
                    info!(session = %self.speaker.specs[i].name, "BFD up: BGP session restarted");
                    self.speaker.send(i, bgp::fsm::Event::ManualStart).await;
                }
            }
        } else {
            st.held_by_bfd = true;
            self.speaker.send(i, bgp::fsm::Event::BfdDown).await;
        }
    }

    /// The port under `links` lost carrier (stop their sessions at once:
    /// the connections are gone, whatever TCP still believes) or got it
    /// back (start them again, unless BFD still holds them).
    async fn on_carrier(&mut self, links: &[u32], up: bool) {
        for i in 0..self.speaker.specs.len() {
            if !links.contains(&self.speaker.specs[i].link) {
                continue;
            }
            let st = &mut self.status[i];
            if !up {
                st.held_by_carrier = true;
                self.speaker.send(i, bgp::fsm::Event::CarrierLost).await;
            } else if st.held_by_carrier {
                st.held_by_carrier = false;
                if !st.held_by_bfd {
                    info!(session = %self.speaker.specs[i].name, "carrier back: BGP session restarted");
                    self.speaker.send(i, bgp::fsm::Event::ManualStart).await;
                }
            }
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
        // Waiting UPDATE changes first, before the RIBs change under them.
        self.flush_pending(msee);
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

    /// Re-reads the circuit file and applies only what changed, without
    /// disturbing any session whose own settings did not change:
    /// - refused whole (nothing changes) when the file is invalid, lacks
    ///   this circuit, or changes what needs a restart (its peerings);
    /// - sessions whose key, peer AS or addresses changed are restarted;
    ///   new sessions (IPv6 added) start, removed ones stop;
    /// - in place: route limits, BFD timers or BFD on/off, the VNet
    ///   prefixes advertised (withdrawals for what is gone), the bandwidth
    ///   (policers keep their buckets).
    async fn reload(&mut self, msee: &mut Msee) -> std::result::Result<serde_json::Value, String> {
        use serde_json::json;
        let path = self.path.display().to_string();
        let model = circuit::load_file(&self.path)
            .map_err(|e| format!("{path}: refused, nothing changed:\n{e}"))?;
        let Some(new_circuit) = model.circuit(&self.circuit) else {
            return Err(format!(
                "{path}: refused, nothing changed: circuit {} is gone from the file (this daemon runs it)",
                self.circuit
            ));
        };
        let (peerings, specs, notes) =
            speaker::plan(&model, &self.circuit, &self.infos, self.max_prefixes)
                .map_err(|e| format!("{path}: refused, nothing changed: {e:#}"))?;
        if peerings != self.peerings {
            return Err(format!(
                "{path}: refused, nothing changed: the peerings run on these ports changed ({:?} -> {:?}); restart the daemon to apply that",
                self.peerings.iter().map(|p| p.kind).collect::<Vec<_>>(),
                peerings.iter().map(|p| p.kind).collect::<Vec<_>>()
            ));
        }
        for w in &model.warnings {
            warn!("{path}: {w}");
        }

        let mut restarted = Vec::new();
        let mut added = Vec::new();
        let mut removed = Vec::new();
        let mut in_place = Vec::new();
        let index: BTreeMap<String, usize> = self
            .speaker
            .specs
            .iter()
            .enumerate()
            .filter(|(i, _)| self.speaker.is_active(*i))
            .map(|(i, s)| (s.name.clone(), i))
            .collect();
        let keep: std::collections::BTreeSet<&str> =
            specs.iter().map(|s| s.name.as_str()).collect();
        for (name, &i) in &index {
            if !keep.contains(name.as_str()) {
                let old = &self.speaker.specs[i];
                let (session, peering) = ((old.link, old.family), old.peering);
                self.speaker.remove(i);
                if let Err(e) = self.ribs[peering].session_down(session) {
                    warn!("{e:#}");
                }
                self.status[i] = SessionStatus::default();
                removed.push(name.clone());
            }
        }
        for spec in specs {
            let Some(&i) = index.get(&spec.name) else {
                let name = spec.name.clone();
                self.speaker
                    .add(spec)
                    .map_err(|e| format!("starting {name}: {e:#}"))?;
                self.status.push(SessionStatus::default());
                added.push(name);
                continue;
            };
            let old = self.speaker.specs[i].clone();
            let reset = old.local != spec.local
                || old.peer != spec.peer
                || old.peer_as != spec.peer_as
                || old.md5_key != spec.md5_key
                || old.router_id != spec.router_id;
            if reset {
                let name = spec.name.clone();
                self.speaker
                    .restart(i, spec)
                    .map_err(|e| format!("restarting {name}: {e:#}"))?;
                if let Err(e) = self.ribs[old.peering].session_down((old.link, old.family)) {
                    warn!("{e:#}");
                }
                let last_down = Some("restarted by a configuration reload".to_owned());
                self.status[i] = SessionStatus {
                    last_down,
                    ..Default::default()
                };
                restarted.push(name);
                continue;
            }
            let mut fields = Vec::new();
            if old.max_prefixes != spec.max_prefixes {
                fields.push("maxPrefixes");
                let limit = Some(spec.max_prefixes);
                self.speaker
                    .send(
                        i,
                        bgp::fsm::Event::SetMaxPrefixes {
                            v4: limit,
                            v6: limit,
                        },
                    )
                    .await;
                self.speaker.specs[i].max_prefixes = spec.max_prefixes;
            }
            if old.bfd != spec.bfd {
                fields.push("bfd");
                if let (Some(j), Some(bfd)) = (self.bfd_of.get(&i), &self.bfd) {
                    match spec.bfd {
                        Some(t) => {
                            bfd.set_config(*j, bfd_config(t));
                            bfd.set_admin_down(*j, false);
                        }
                        None => bfd.set_admin_down(*j, true),
                    }
                }
                self.speaker.specs[i].bfd = spec.bfd;
            }
            if old.adverts != spec.adverts {
                fields.push("advertisements");
                let prepend = self.prepend(spec.link);
                let established = self.status[i].established;
                self.speaker
                    .set_adverts(i, spec.adverts, prepend, established)
                    .await;
            }
            if !fields.is_empty() {
                in_place.push(json!({ "session": spec.name, "fields": fields }));
            }
        }

        // Microsoft peering's registered prefixes: what falls outside goes
        // now; the peers re-send their tables so what is newly inside comes.
        // What UPDATEs left waiting goes first, with the best paths it was
        // queued with (see PendingChanges), before the RIB changes them.
        self.flush_pending(msee);
        for r in 0..self.ribs.len() {
            let kind = self.peerings[r].kind;
            let (old, new) = (
                registered_in(&self.model, &self.circuit, kind),
                registered_in(&model, &self.circuit, kind),
            );
            if old == new {
                continue;
            }
            let changed = self.ribs[r].set_registered(new.unwrap_or_default());
            self.apply(r, &changed, msee);
            for (i, spec) in self.speaker.specs.iter().enumerate() {
                if spec.peering == r && self.status[i].established {
                    let afi = match spec.family {
                        speaker::Family::Ipv4 => bgp::wire::AFI_IPV4,
                        speaker::Family::Ipv6 => bgp::wire::AFI_IPV6,
                    };
                    self.speaker
                        .send(
                            i,
                            bgp::fsm::Event::RequestRouteRefresh {
                                afi,
                                safi: bgp::wire::SAFI_UNICAST,
                            },
                        )
                        .await;
                    in_place.push(
                        json!({ "session": spec.name, "fields": ["advertisedPublicPrefixes"] }),
                    );
                }
            }
        }

        let mut bandwidth = None;
        let old_mbps = self.model.circuit(&self.circuit).map(|c| c.bandwidth_mbps);
        if old_mbps != Some(new_circuit.bandwidth_mbps) && !self.police_override {
            let bps = u64::from(new_circuit.bandwidth_mbps) * 1_000_000;
            for plan in &self.peerings {
                for link in plan.links {
                    for dir in Direction::ALL {
                        msee.set_policer(link, dir, bps, None)
                            .map_err(|e| format!("setting the policer of link {link}: {e}"))?;
                    }
                }
            }
            bandwidth = Some(new_circuit.bandwidth_mbps);
        }
        for n in &notes {
            warn!("circuit {}: {n}", self.circuit);
        }
        self.model = model;
        let changed = !(restarted.is_empty()
            && added.is_empty()
            && removed.is_empty()
            && in_place.is_empty()
            && bandwidth.is_none());
        info!(circuit = %self.circuit, ?restarted, ?added, ?removed, in_place = in_place.len(),
            bandwidth_mbps = ?bandwidth, "configuration reloaded");
        Ok(json!({
            "file": path,
            "changed": changed,
            "restarted": restarted,
            "added": added,
            "removed": removed,
            "in_place": in_place,
            "bandwidth_mbps": bandwidth,
            "notes": notes,
        }))
    }

    /// Withdraws the Adj-RIB-In of sessions that went down (lazily, after
    /// the link-state flip has already moved the traffic).
    fn flush_stale(&mut self, msee: &mut Msee) {
        self.flush_pending(msee);
        let sessions: Vec<(usize, (u32, speaker::Family))> = self
            .speaker
            .specs
            .iter()
            .map(|s| (s.peering, (s.link, s.family)))
            .collect();
        for (r, session) in sessions {
            if !self.ribs[r].is_stale(session) {
                continue;
            }
            match self.ribs[r].flush_stale(session) {
                Ok(changed) => {
                    info!(
                        link = session.0,
                        family = ?session.1,
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
        assert_eq!(r.via, vec![IpAddr::V4(Ipv4Addr::new(10, 255, 0, 2))]);
        let r: StaticRoute = "fd00:a10::/48=fd00:ff::2".parse().unwrap();
        assert_eq!(r.via, vec!["fd00:ff::2".parse::<IpAddr>().unwrap()]);
        let e = "fd00:a10::/48=10.255.0.2"
            .parse::<StaticRoute>()
            .unwrap_err()
            .to_string();
        assert!(e.contains("not of the prefix's address family"), "{e}");
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
