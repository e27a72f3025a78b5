//! The daemon: load `msee`, describe the ports and routes to it, attach,
//! keep next hops resolved, and report counters when asked to stop.
use std::{fs::File, net::Ipv4Addr, os::fd::AsFd, path::PathBuf, time::Duration};

use anyhow::{Context as _, Result, anyhow, bail};
use dataplane::{AttachMode, Msee, NextHopSpec, PortSpec};
use ipnet::Ipv4Net;
use msee_abi::PortRole;
use tokio::{io::unix::AsyncFd, signal::unix::SignalKind};
use tracing::{info, warn};

use crate::{
    netlink::{self, Interface},
    stats::{self, PortReport},
};

/// A static route: `prefix` via the neighbour `via`, reached through
/// whichever port has `via` in a connected subnet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StaticRoute {
    pub prefix: Ipv4Net,
    pub via: Ipv4Addr,
}

impl std::str::FromStr for StaticRoute {
    type Err = anyhow::Error;
    /// `PREFIX=VIA`, e.g. `10.1.0.0/16=10.255.0.2`.
    fn from_str(s: &str) -> Result<Self> {
        let (prefix, via) = s.split_once('=').ok_or_else(|| {
            anyhow!("route {s:?} must look like PREFIX=NEXTHOP, e.g. 10.1.0.0/16=10.255.0.2")
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
            .parse()
            .with_context(|| format!("route {s:?}: bad next hop {via:?}"))?;
        Ok(Self { prefix, via })
    }
}

pub struct DaemonConfig {
    /// Enter this network namespace (by name under /run/netns) first.
    pub netns: Option<String>,
    /// Ports by role, as interface names.
    pub ports: Vec<(PortRole, String)>,
    pub routes: Vec<StaticRoute>,
    pub mode: AttachMode,
    /// Most verbose aya-log level emitted by the kernel side (0 off .. 5 trace).
    pub kernel_log_level: u8,
    pub stats_file: Option<PathBuf>,
    /// Stop by itself after this long (the daemon otherwise runs until SIGINT/SIGTERM).
    pub run_for: Option<Duration>,
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

struct Port {
    role: PortRole,
    spec: PortSpec,
    iface: Interface,
}

struct NextHopState {
    id: u32,
    via: Ipv4Addr,
    port: PortSpec,
    mac: Option<[u8; 6]>,
}

pub async fn run(cfg: DaemonConfig) -> Result<()> {
    let handle = netlink::connect()?;
    let mut ports = Vec::new();
    for (slot, (role, name)) in cfg.ports.iter().enumerate() {
        let iface = netlink::interface(&handle, name).await?;
        let spec = PortSpec {
            ifindex: iface.ifindex,
            slot: slot as u32,
            role: *role,
            mac: iface.mac,
        };
        ports.push(Port {
            role: *role,
            spec,
            iface,
        });
    }

    let mut msee = Msee::load(cfg.kernel_log_level)?;
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

    for p in &ports {
        msee.add_port(p.spec)?;
        for (addr, _) in &p.iface.addrs {
            msee.add_local_v4(*addr)?;
        }
    }

    let mut nexthops: Vec<NextHopState> = Vec::new();
    for route in &cfg.routes {
        let port = ports
            .iter()
            .find(|p| p.iface.connects(route.via))
            .ok_or_else(|| {
                anyhow!(
                    "route {}: next hop {} is on none of the ports' subnets",
                    route.prefix,
                    route.via
                )
            })?;
        let id = match nexthops.iter().find(|n| n.via == route.via) {
            Some(n) => n.id,
            None => {
                let id = nexthops.len() as u32;
                nexthops.push(NextHopState {
                    id,
                    via: route.via,
                    port: port.spec,
                    mac: None,
                });
                msee.set_nexthop(
                    id,
                    NextHopSpec {
                        port: port.spec,
                        neighbour_mac: None,
                    },
                )?;
                id
            }
        };
        msee.upsert_route_v4(route.prefix.addr(), route.prefix.prefix_len(), id)?;
        info!(prefix = %route.prefix, via = %route.via, port = port.role.name(), "route installed");
    }

    for p in &ports {
        msee.attach(p.spec.ifindex, cfg.mode)?;
        info!(port = p.role.name(), ifname = %p.iface.name, ifindex = p.spec.ifindex, mode = ?cfg.mode, "msee attached");
    }

    resolve_pending(&handle, &mut msee, &mut nexthops, Duration::from_secs(3)).await;

    println!("msee-daemon ready");
    use std::io::Write as _;
    std::io::stdout().flush().ok();

    let mut sigterm = tokio::signal::unix::signal(SignalKind::terminate())?;
    let mut sigint = tokio::signal::unix::signal(SignalKind::interrupt())?;
    let stop_at = cfg.run_for.map(|d| tokio::time::Instant::now() + d);
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
            _ = tick.tick() => {
                ticks += 1;
                // Unresolved next hops are retried every second; resolved
                // ones are refreshed every 30 s in case the neighbour changed.
                if ticks.is_multiple_of(30) {
                    for n in nexthops.iter_mut() { n.mac = None; }
                }
                resolve_pending(&handle, &mut msee, &mut nexthops, Duration::from_millis(500)).await;
            }
        }
    }

    msee.detach_all()?;
    let reports: Vec<PortReport> = ports
        .iter()
        .map(|p| {
            Ok(PortReport::new(
                p.role.name(),
                &p.iface.name,
                &msee.port_stats(p.spec.slot)?,
            ))
        })
        .collect::<Result<_>>()?;
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
    nexthops: &mut [NextHopState],
    timeout: Duration,
) {
    for n in nexthops.iter_mut().filter(|n| n.mac.is_none()) {
        match netlink::resolve_neighbour(handle, n.port.ifindex, n.via, timeout).await {
            Ok(mac) => {
                if let Err(e) = msee.set_nexthop(
                    n.id,
                    NextHopSpec {
                        port: n.port,
                        neighbour_mac: Some(mac),
                    },
                ) {
                    warn!(via = %n.via, "installing next hop: {e}");
                    continue;
                }
                n.mac = Some(mac);
                info!(via = %n.via, mac = %format_mac(&mac), "next hop resolved");
            }
            Err(e) => warn!(via = %n.via, "next hop unresolved, retrying: {e:#}"),
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
        assert_eq!(r.via, Ipv4Addr::new(10, 255, 0, 2));
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
    }
}
