//! The daemon: plans the estate from the model and its ports, loads `msee`,
//! programs every link, attachment, policer and route, runs the BGP and BFD
//! sessions of every circuit, and answers the local API until it is told to
//! stop.
//!
//! - [`links`]: the plan's links in the dataplane (ports, addresses,
//!   attachments, policers, the VLAN shim) and their neighbours.
//! - [`routing`]: the peerings' RIBs, the routing domains and the FIB.
//! - [`sessions`]: the BGP sessions and what they advertise.
//! - [`bfd`]: BFD per peering.
//! - [`reload`]: a new configuration applied in place.
//! - [`views`]: the API's answers.
//! - [`ops`]: the operator's view (metrics, az-shaped tables).
pub mod adopt;
mod bfd;
mod links;
mod ops;
mod reload;
mod routing;
mod sessions;
mod views;

use std::{
    collections::BTreeMap,
    net::IpAddr,
    path::PathBuf,
    sync::{Arc, Mutex},
    time::Duration,
};

use anyhow::{Context as _, Result, anyhow, bail};
use circuit::Model;
use dataplane::{AttachMode, LoadOptions, Msee};
use ipnet::IpNet;
use tokio::{io::unix::AsyncFd, signal::unix::SignalKind};
use tracing::{info, warn};

pub use crate::estate::{PortMap, StaticRoute};
use crate::{
    estate::{self, IdBook, Plan},
    health::{LinkHealth, Signal},
    netlink::{self, Interface},
    speaker::Timers,
    state_dir::StateDir,
};

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
    pub ports: PortMap,
    pub routes: Vec<StaticRoute>,
    pub mode: AttachMode,
    /// Police each customer link, both directions, at this rate (bit/s)
    /// instead of its circuit's bandwidth.
    pub bandwidth_bps: Option<u64>,
    /// Most verbose aya-log level emitted by the kernel side (0 off .. 5 trace).
    pub kernel_log_level: u8,
    /// The forwarding table's sizes.
    pub fib: dataplane::FibSizes,
    pub stats_file: Option<PathBuf>,
    /// Stop by itself after this long (the daemon otherwise runs until SIGINT/SIGTERM).
    pub run_for: Option<Duration>,
    /// Run the circuits of this model.
    pub model: Option<ModelConfig>,
    /// Serve the local API (for `msee-cli`) on this Unix socket.
    pub api_socket: Option<PathBuf>,
    /// Run each peering on its own VLAN (802.1Q or QinQ tags from the
    /// model), as on ExpressRoute, instead of one circuit's private peering
    /// untagged on the provider pair.
    pub tagged: bool,
    /// Serve Prometheus metrics (`/metrics`) here.
    pub metrics_listen: Option<std::net::SocketAddr>,
    /// The instance's state directory (`crate::state_dir`).
    pub state_dir: PathBuf,
    /// At exit, detach from the ports and remove the pinned state and the
    /// addresses put on ports (otherwise forwarding goes on, and the next
    /// daemon of this state directory adopts it).
    pub detach_on_exit: bool,
}

/// The circuits to run and how.
pub struct ModelConfig {
    pub model: Model,
    /// Where the model came from: a reload (SIGHUP, `msee-cli reload`)
    /// reads them again.
    pub paths: Vec<PathBuf>,
    /// Run only these circuits (all when empty).
    pub only: Vec<String>,
    /// Replaces the model's per-session route limit (labs and tests).
    pub max_prefixes: Option<u32>,
    pub timers: Timers,
}

/// Reads the configuration files (at start, and again on a reload): each
/// file's kind detected, merged in order by `circuit::import`.
pub fn load_model(paths: &[PathBuf]) -> Result<Model, String> {
    let files: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    circuit::load_files(paths).map_err(|e| format!("{}: {e}", files.join(", ")))
}

/// What does not change while the daemon runs.
struct Settings {
    ports: PortMap,
    routes: Vec<StaticRoute>,
    mode: AttachMode,
    bandwidth_bps: Option<u64>,
    kernel_log_level: u8,
    fib: dataplane::FibSizes,
    tagged: bool,
    paths: Vec<PathBuf>,
    only: Vec<String>,
    max_prefixes: Option<u32>,
    timers: Timers,
}

/// The running daemon's state; each concern's methods live in its module.
struct Daemon {
    settings: Settings,
    model: Option<Model>,
    plan: Plan,
    ids: IdBook,
    msee: Msee,
    handle: rtnetlink::Handle,
    health: LinkHealth,
    /// The ports, as the kernel reported them at start.
    ifaces: BTreeMap<String, Interface>,
    links: links::Links,
    routing: routing::Routing,
    sessions: Option<sessions::Sessions>,
    /// The failure detectors' runtime (carrier monitor, BFD).
    detectors: tokio::runtime::Handle,
    bfd_tx: tokio::sync::mpsc::UnboundedSender<bfd::BfdNotice>,
    /// The operator's view: metrics, az-shaped tables.
    ops: ops::Ops,
    /// Locked for this daemon while it runs.
    state: StateDir,
    /// What a previous instance left, until it is reconciled.
    adopted: Option<adopt::Adopted>,
}

/// Plans what `cfg` describes, without touching anything: the check of
/// `msee-daemon --check`'s kind, also the first step of [`run`].
async fn discover(
    handle: &rtnetlink::Handle,
    ports: &PortMap,
) -> Result<BTreeMap<String, Interface>> {
    let mut ifaces = BTreeMap::new();
    for name in ports.interfaces() {
        ifaces.insert(name.to_owned(), netlink::interface(handle, name).await?);
    }
    Ok(ifaces)
}

pub async fn run(cfg: DaemonConfig) -> Result<()> {
    // First: another daemon, or an address in use, stops the start before
    // anything is loaded or changed.
    let state = StateDir::open(&cfg.state_dir)?;
    if let Some(path) = &cfg.api_socket
        && std::os::unix::net::UnixStream::connect(path).is_ok()
    {
        bail!(
            "another msee-daemon answers on {}: stop it first, or give this one another --api-socket; nothing was started",
            path.display()
        );
    }
    let ops = ops::Ops::new(cfg.metrics_listen)?;
    let handle = netlink::connect()?;
    let ifaces = discover(&handle, &cfg.ports).await?;
    let bpf = crate::state_dir::bpf_dir(state.root());
    adopt::check_ports(&bpf, &ifaces)?;
    let (model, paths, only, max_prefixes, timers) = match cfg.model {
        Some(m) => (Some(m.model), m.paths, m.only, m.max_prefixes, m.timers),
        None => (None, Vec::new(), Vec::new(), None, Timers::default()),
    };
    let mut settings = Settings {
        ports: cfg.ports,
        routes: cfg.routes,
        mode: cfg.mode,
        bandwidth_bps: cfg.bandwidth_bps,
        kernel_log_level: cfg.kernel_log_level,
        fib: cfg.fib,
        tagged: cfg.tagged,
        paths,
        only,
        max_prefixes,
        timers,
    };
    // Everything is planned before anything is loaded, so that a wrong
    // configuration changes nothing.
    let mut ids = IdBook::default();
    let plan = estate::plan(
        &estate::Inputs {
            model: model.as_ref(),
            ports: &settings.ports,
            ifaces: &ifaces,
            tagged: settings.tagged,
            only: &settings.only,
            routes: &settings.routes,
            bandwidth_override_bps: settings.bandwidth_bps,
        },
        &mut ids,
    )?;
    for n in &plan.notes {
        warn!("{n}");
    }
    if let Some(m) = &model {
        for w in &m.warnings {
            warn!("configuration: {w}");
        }
    }

    let mounted_before = msee_sys::bpffs::is_bpffs(&bpf)?;
    state.bpf()?;
    let mut msee = match Msee::load(&LoadOptions {
        log_level: settings.kernel_log_level,
        pin_dir: Some(bpf.clone()),
        fib: settings.fib,
    }) {
        Ok(m) => m,
        Err(e) => {
            if !mounted_before {
                let _ = msee_sys::bpffs::unmount(&bpf);
            }
            return Err(e.into());
        }
    };
    let adopting = msee.adopted();
    // Graceful restart: the peers keep forwarding to us while the sessions
    // come back, and keep our routes.
    if adopting && let Some(gr) = settings.timers.graceful_restart.as_mut() {
        gr.forwarding_preserved = true;
    }
    let sweep_after = Duration::from_secs(
        settings
            .timers
            .graceful_restart
            .map_or(120, |gr| u64::from(gr.restart_time)),
    );
    relay_kernel_log(&mut msee)?;
    // The carrier monitor and BFD run on a thread of their own.
    let detectors = crate::detectors::start()?;
    // Every source of link state flips links through this, from its own task.
    let health = LinkHealth::new(msee.link_switch()?);
    let (bfd_tx, mut bfd_events) = tokio::sync::mpsc::unbounded_channel();
    let mut d = Daemon {
        routing: routing::Routing::new(&plan, model.as_ref()),
        links: links::Links::default(),
        settings,
        model,
        plan,
        ids,
        msee,
        handle,
        health,
        ifaces,
        sessions: None,
        detectors,
        bfd_tx,
        ops,
        state,
        adopted: None,
    };
    // The addresses a previous instance put on the ports and left there
    // are this one's to remove (at exit, or when their links go).
    let addresses = d.state.path(adopt::ADDRESSES_FILE);
    for a in adopt::AddedAddresses::load(&addresses)?.addresses {
        d.links.added.insert((a.ifindex, a.address), a.prefix_len);
    }
    if adopting {
        d.adopted = Some(adopt::adopt(&mut d, sweep_after)?);
    }
    if let Err(e) = d.start().await {
        if !adopting {
            // Nothing of a previous instance to keep: nothing is left.
            d.leave(true).await;
        }
        return Err(e);
    }
    d.remove_stale_pins(&bpf);
    d.ops_started()?;

    let (api_tx, mut api_rx) = tokio::sync::mpsc::channel::<crate::api::Call>(16);
    if let Some(path) = &cfg.api_socket {
        crate::api::serve(path, api_tx)?;
        info!(socket = %path.display(), "API listening");
    } else {
        drop(api_tx);
    }

    info!(state_dir = %d.state.root().display(), "state directory locked");
    println!("msee-daemon ready");
    use std::io::Write as _;
    std::io::stdout().flush().ok();

    let mut sigterm = tokio::signal::unix::signal(SignalKind::terminate())?;
    let mut sigint = tokio::signal::unix::signal(SignalKind::interrupt())?;
    let mut sighup = tokio::signal::unix::signal(SignalKind::hangup())?;
    let stop_at = cfg.run_for.map(|t| tokio::time::Instant::now() + t);
    let mut carrier_notices = d.watch_carrier()?;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let published = d.ops.published.clone();
    let mut ticks = 0u64;
    loop {
        tokio::select! {
            _ = sigterm.recv() => { info!("SIGTERM: stopping"); break; }
            _ = sigint.recv() => { info!("SIGINT: stopping"); break; }
            _ = async { tokio::time::sleep_until(stop_at.expect("guarded")).await }, if stop_at.is_some() => {
                info!("run time elapsed: stopping");
                break;
            }
            // A session's state (Established, Down: what stops or starts
            // forwarding on a link) is read ahead of its queued routes.
            Some(next) = async { d.sessions.as_mut().expect("guarded").speaker.next_event().await },
                if d.sessions.is_some() => {
                match next {
                    crate::speaker::Next::State((i, tag, event)) => {
                        // The last words of a session run that a reload
                        // replaced are stale.
                        if d.sessions.as_mut().is_some_and(|s| s.speaker.takes_state(i, tag)) {
                            d.on_session_event(i, event).await;
                        }
                    }
                    crate::speaker::Next::Route((i, tag, event)) => {
                        // Routes a session sent before a Down the daemon
                        // already acted on (or of a replaced run) are stale.
                        if d.sessions.as_ref().is_some_and(|s| s.speaker.takes_route(i, tag)) {
                            d.on_session_event(i, event).await;
                        }
                        if d.sessions.as_ref().is_some_and(|s| s.speaker.events.is_empty()) || d.routing.pending_full() {
                            d.flush().await;
                        }
                    }
                }
            }
            Some(notice) = bfd_events.recv() => {
                d.on_bfd(notice).await;
            }
            Some((links, up)) = carrier_notices.recv() => {
                d.on_carrier(&links, up).await;
            }
            _ = sighup.recv() => {
                match d.reload().await {
                    Ok(summary) => info!(changed = summary.changed, "SIGHUP: configuration reloaded"),
                    Err(e) => warn!("SIGHUP: {e}"),
                }
            }
            _ = published.wanted() => {
                d.ops_refresh();
            }
            Some(call) = api_rx.recv() => {
                let answer = d.answer(&call.request).await;
                let _ = call.reply.send(answer);
            }
            _ = tick.tick() => {
                ticks += 1;
                d.flush_stale().await;
                d.routing.retry_unwritten(&mut d.msee, std::time::Instant::now());
                // Unresolved neighbours are retried every second; resolved
                // ones are checked every 30 s in case the neighbour changed.
                d.resolve_pending(Duration::from_millis(500), ticks.is_multiple_of(30)).await;
                d.reconcile_adopted().await;
                d.ops_refresh();
                d.ops_persist();
            }
        }
    }

    d.ops_stopping();
    d.leave(cfg.detach_on_exit).await;
    if let Some(path) = &cfg.api_socket {
        std::fs::remove_file(path).ok();
    }
    let reports = d.port_reports()?;
    print!("{}", crate::stats::table(&reports));
    if let Some(path) = &cfg.stats_file {
        std::fs::write(path, serde_json::to_vec_pretty(&reports)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

impl Daemon {
    /// At exit: `detach` takes the program off the ports and removes the
    /// pinned state and the addresses the daemon put on its ports;
    /// otherwise all of it stays, forwarding goes on, and the next daemon
    /// of this state directory adopts it (`--stop` removes it).
    async fn leave(&mut self, detach: bool) {
        let addresses = self.state.path(adopt::ADDRESSES_FILE);
        if detach {
            if let Err(e) = self.msee.detach_all() {
                warn!("detaching msee: {e}");
            }
            self.remove_added_addresses().await;
            let _ = std::fs::remove_file(&addresses);
            let bpf = crate::state_dir::bpf_dir(self.state.root());
            if let Err(e) = msee_sys::bpffs::unmount(&bpf) {
                warn!("removing the pinned state: {e}");
            }
            info!("detached from every port; pinned state removed");
            return;
        }
        let kept = adopt::AddedAddresses {
            addresses: self
                .links
                .added
                .iter()
                .map(|((ifindex, address), len)| adopt::AddedAddress {
                    ifindex: *ifindex,
                    address: *address,
                    prefix_len: *len,
                })
                .collect(),
        };
        if let Err(e) = kept.save(&addresses) {
            warn!("{e:#}");
        }
        info!(
            state_dir = %self.state.root().display(),
            ports = self.msee.attached().len(),
            "forwarding left running on the pinned state: the next msee-daemon of this state directory adopts it; `msee-daemon --stop` removes it"
        );
    }

    /// Pinned attachments of ports this instance does not run (a port the
    /// configuration no longer has) are removed: they detach.
    fn remove_stale_pins(&self, bpf: &std::path::Path) {
        let attached = self.msee.attached();
        let pinned = match dataplane::msee::pinned_link_ifindexes(bpf) {
            Ok(p) => p,
            Err(e) => {
                warn!("listing the pinned attachments in {}: {e}", bpf.display());
                return;
            }
        };
        for ifindex in pinned {
            if !attached.contains(&ifindex) {
                warn!(
                    ifindex,
                    "a port of the previous instance this one does not run: detached"
                );
                let _ = std::fs::remove_file(dataplane::msee::link_pin(bpf, ifindex));
            }
        }
    }
}

/// Kernel-side log records flow into this process's log.
fn relay_kernel_log(msee: &mut Msee) -> Result<()> {
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
    Ok(())
}

impl Daemon {
    /// Programs the plan, attaches, starts the sessions.
    async fn start(&mut self) -> Result<()> {
        for spec in self.plan.links.clone() {
            self.install_link(&spec).await?;
        }
        if self.adopted.is_some() {
            self.drop_stale_attachments()?;
        }
        self.routing.program_all(&mut self.msee)?;
        self.attach_ports()?;
        self.resolve_pending(Duration::from_secs(3), false).await;
        if let Some(model) = &self.model {
            let specs =
                crate::speaker::plan_sessions(model, &self.plan, self.settings.max_prefixes);
            for s in &specs {
                info!(session = %s.name, local = %s.local, peer = %s.peer, peer_as = s.peer_as,
                    md5 = s.md5_key.is_some(), max_prefixes = s.max_prefixes, "BGP session configured");
            }
            if !specs.is_empty() {
                let sessions = sessions::Sessions::start_holding(
                    specs,
                    self.settings.timers,
                    self.health.clone(),
                    self.adopted.is_some(),
                )?;
                self.sessions = Some(sessions);
                self.refresh_model_adverts();
                self.start_bfd_all()?;
            }
        }
        Ok(())
    }

    /// The carrier monitor: flips links on the detectors' thread, then
    /// tells the main loop (which stops or restarts their BGP sessions).
    fn watch_carrier(&mut self) -> Result<tokio::sync::mpsc::UnboundedReceiver<(Vec<u32>, bool)>> {
        let mut events = {
            let _in_detectors = self.detectors.enter();
            crate::linkmon::watch(
                self.ifaces
                    .values()
                    .map(|i| (i.ifindex, i.carrier))
                    .collect(),
            )?
        };
        let links_of: Arc<Mutex<BTreeMap<u32, Vec<u32>>>> = self.links.carrier_map.clone();
        let health = self.health.clone();
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        self.detectors.spawn(async move {
            while let Some(ev) = events.recv().await {
                let links = links_of
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .get(&ev.ifindex)
                    .cloned()
                    .unwrap_or_default();
                for link in &links {
                    health.set(*link, Signal::Carrier, ev.up);
                }
                let _ = tx.send((links, ev.up));
            }
        });
        Ok(rx)
    }

    /// Writes what waited for the session events' queue to empty: route
    /// changes, then the advertisements they imply.
    async fn flush(&mut self) {
        self.routing.flush(&mut self.msee);
        self.send_adverts().await;
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
    use std::net::Ipv4Addr;

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
