//! The plan's links in the dataplane: the MSEE's addresses on its ports,
//! each link's egress entry, attachment, local addresses and policers, the
//! VLAN shim that tags the MSEE's own traffic, and each link's neighbour
//! (a link carries once its neighbour answers ARP).
use std::{
    collections::{BTreeMap, BTreeSet},
    net::IpAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use anyhow::{Context as _, Result, anyhow};
use dataplane::LoadOptions;
use ipnet::IpNet;
use msee_abi::{Attachment, Direction, Link, LinkRole};
use tracing::{debug, info, warn};

use super::{Daemon, format_mac};
use crate::{estate::LinkSpec, health::Signal, netlink, stats::PortReport};

/// What the daemon keeps of a link beyond its plan.
pub(super) struct LinkRt {
    pub spec: LinkSpec,
    pub neighbour_mac: Option<[u8; 6]>,
}

#[derive(Default)]
pub(super) struct Links {
    pub by_id: BTreeMap<u32, LinkRt>,
    /// Tags the MSEE's own traffic on tagged links (this kernel has no
    /// 802.1Q); loaded with the first tagged link.
    shim: Option<dataplane::VlanShim>,
    shim_ports: BTreeSet<u32>,
    /// Ports `msee` is attached to.
    attached: BTreeSet<u32>,
    /// Addresses the daemon put on its ports (removed again when their
    /// links go, and at exit): (ifindex, address) -> prefix length.
    pub added: BTreeMap<(u32, IpAddr), u8>,
    /// Port ifindex -> its links, read by the carrier monitor's task.
    pub carrier_map: Arc<Mutex<BTreeMap<u32, Vec<u32>>>>,
}

fn link_entry(spec: &LinkSpec, mac: [u8; 6]) -> Link {
    let t = spec.tags.unwrap_or_default();
    Link {
        ifindex: spec.iface.ifindex,
        outer_vlan: t.outer_vid,
        inner_vlan: t.inner_vid,
        outer_tpid: t.outer_tpid,
        role: spec.role as u8,
        src_mac: spec.iface.mac,
        dst_mac: mac,
        circuit: spec.circuit,
        ..Default::default()
    }
}

fn attachment(spec: &LinkSpec) -> Attachment {
    let first = |v6: bool| {
        spec.addrs
            .iter()
            .map(|(a, _)| *a)
            .find(|a| a.is_ipv6() == v6)
    };
    Attachment {
        link: spec.id,
        domain: spec.domain,
        circuit: spec.circuit,
        peering: spec.peering as u8,
        role: spec.role as u8,
        mac: spec.iface.mac,
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
    }
}

fn subnet(addr: IpAddr, len: u8) -> Result<IpNet> {
    Ok(IpNet::new(addr, len)
        .map_err(|e| anyhow!("{addr}/{len}: {e}"))?
        .trunc())
}

impl Daemon {
    /// Programs one link: its addresses on the port, its egress entry
    /// (down until its neighbour answers), its health, local addresses,
    /// attachment, policers and VLAN shim entries.
    /// A link that fails half-way is taken out again: a failed install
    /// leaves nothing behind.
    pub(super) async fn install_link(&mut self, spec: &LinkSpec) -> Result<()> {
        // Known first, so that taking it out finds what was written.
        self.links.by_id.insert(
            spec.id,
            LinkRt {
                spec: spec.clone(),
                neighbour_mac: None,
            },
        );
        let done = self.program_link(spec).await;
        if done.is_err() {
            self.uninstall_link(spec.id, true).await;
        }
        done
    }

    async fn program_link(&mut self, spec: &LinkSpec) -> Result<()> {
        let ifindex = spec.iface.ifindex;
        for (addr, len) in &spec.addrs {
            let present = match addr {
                IpAddr::V4(a) => spec.iface.addrs.iter().any(|(x, _)| x == a),
                IpAddr::V6(a) => spec.iface.addrs6.iter().any(|(x, _)| x == a),
            };
            if !present && !self.links.added.contains_key(&(ifindex, *addr)) {
                netlink::add_address(&self.handle, ifindex, *addr, *len).await?;
                self.links.added.insert((ifindex, *addr), *len);
                info!(link = %spec.name, port = %spec.iface.name, "{addr}/{len} added to the port");
            }
        }
        self.msee.add_port(ifindex)?;
        let adopted = self
            .adopted
            .as_ref()
            .and_then(|a| a.link(spec.id, |mac| link_entry(spec, mac)));
        match adopted {
            // The previous instance's link, the same in every field: it
            // goes on as it was (counters, neighbour, state).
            Some((entry, up)) => {
                if let Some(rt) = self.links.by_id.get_mut(&spec.id) {
                    rt.neighbour_mac = Some(entry.dst_mac);
                }
                self.health
                    .adopt_link(spec.id, &spec.name, spec.iface.carrier, spec.bgp, up)?;
                info!(link = %spec.name, carries = up, "link adopted");
            }
            None => {
                // The usage ledger counts what they hold first.
                self.ops_before_counter_reset(spec);
                self.msee.reset_link_counters(spec.id)?;
                self.msee.set_link(spec.id, link_entry(spec, [0; 6]))?;
                self.health
                    .add_link(spec.id, &spec.name, spec.iface.carrier, spec.bgp)?;
            }
        }
        for (addr, _) in &spec.addrs {
            self.msee.add_local(spec.domain, *addr)?;
        }
        for dir in Direction::ALL {
            self.msee
                .set_policer(spec.id, dir, spec.police_bps.unwrap_or(0), None)?;
        }
        if let Some(tags) = spec.tags {
            if self.links.shim.is_none() {
                self.links.shim = Some(
                    dataplane::VlanShim::load(&LoadOptions {
                        log_level: self.settings.kernel_log_level,
                        ..Default::default()
                    })
                    .context("loading the VLAN shim")?,
                );
            }
            let shim = self.links.shim.as_mut().expect("loaded above");
            if self.links.shim_ports.insert(ifindex) {
                shim.attach_egress(ifindex)
                    .with_context(|| format!("attaching the VLAN shim to {}", spec.iface.name))?;
            }
            for (addr, len) in &spec.addrs {
                let net = subnet(*addr, *len)?;
                shim.set_egress_tag(ifindex, net, tags)
                    .with_context(|| format!("tagging {net} on {}", spec.iface.name))?;
                info!(link = %spec.name, subnet = %net, tags = %dataplane::vlan::Tags(tags),
                    "VLAN shim: the MSEE's own traffic to this subnet is tagged");
            }
        }
        self.msee
            .set_attachment(spec.attachment_key(), attachment(spec))?;
        self.links
            .carrier_map
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry(ifindex)
            .or_default()
            .push(spec.id);
        Ok(())
    }

    /// A link's domain changed (a reload joined or split domains): its
    /// local addresses go into the new one, then its attachment points
    /// there (one map write), then they leave the old one.
    pub(super) fn repoint_link(&mut self, spec: &LinkSpec) -> Result<()> {
        let Some(rt) = self.links.by_id.get(&spec.id) else {
            return Ok(());
        };
        let old = rt.spec.domain;
        for (addr, _) in &spec.addrs {
            self.msee.add_local(spec.domain, *addr)?;
        }
        self.msee
            .set_attachment(spec.attachment_key(), attachment(spec))?;
        for (addr, _) in &rt.spec.addrs {
            if let Err(e) = self.msee.remove_local(old, *addr) {
                warn!(link = %spec.name, "removing {addr} from domain {old}: {e}");
            }
        }
        let mac = rt.neighbour_mac;
        let rt = self.links.by_id.get_mut(&spec.id).expect("checked");
        rt.spec = spec.clone();
        if let Some(mac) = mac {
            self.msee.set_link(spec.id, link_entry(spec, mac))?;
        }
        Ok(())
    }

    /// Takes a link a reload removed (or failed to install: `partial`) out
    /// of the dataplane: down first, then its attachment, local addresses,
    /// policers, shim entries and the addresses the daemon put on its port.
    /// Of a `partial` link some parts were never written: failing to remove
    /// those is expected, and not worth a warning.
    pub(super) async fn uninstall_link(&mut self, id: u32, partial: bool) {
        let Some(rt) = self.links.by_id.remove(&id) else {
            return;
        };
        let spec = rt.spec;
        // Its last traffic into the usage ledger.
        self.ops_sample_link(&spec, super::ops::unix_ms());
        let name = spec.name.clone();
        let report = |what: &str, r: Result<()>| match r {
            Err(e) if partial => debug!(link = %name, "removing {what}: {e:#}"),
            Err(e) => warn!(link = %name, "removing {what}: {e:#}"),
            Ok(()) => {}
        };
        report("its health", self.health.remove_link(id));
        report(
            "its attachment",
            self.msee
                .remove_attachment(spec.attachment_key())
                .map_err(Into::into),
        );
        for (addr, _) in &spec.addrs {
            report(
                "a local address",
                self.msee
                    .remove_local(spec.domain, *addr)
                    .map_err(Into::into),
            );
        }
        for dir in Direction::ALL {
            report(
                "its policer",
                self.msee.set_policer(id, dir, 0, None).map_err(Into::into),
            );
        }
        if let (Some(shim), Some(_)) = (self.links.shim.as_mut(), spec.tags) {
            for (addr, len) in &spec.addrs {
                if let Ok(net) = subnet(*addr, *len) {
                    report(
                        "a VLAN shim entry",
                        shim.remove_egress_tag(spec.iface.ifindex, net)
                            .map_err(Into::into),
                    );
                }
            }
        }
        for (addr, _) in &spec.addrs {
            if let Some(len) = self.links.added.remove(&(spec.iface.ifindex, *addr)) {
                report(
                    "its address",
                    netlink::del_address(&self.handle, spec.iface.ifindex, *addr, len).await,
                );
            }
        }
        if let Some(v) = self
            .links
            .carrier_map
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get_mut(&spec.iface.ifindex)
        {
            v.retain(|l| *l != id);
        }
    }

    /// Attaches `msee` to every port that has a link and lacks it; all of
    /// them or, when one refuses (e.g. another XDP program holds it), none.
    pub(super) fn attach_ports(&mut self) -> Result<()> {
        let ports: BTreeMap<u32, String> = self
            .links
            .by_id
            .values()
            .filter(|l| !self.links.attached.contains(&l.spec.iface.ifindex))
            .map(|l| (l.spec.iface.ifindex, l.spec.iface.name.clone()))
            .collect();
        let mut done = Vec::new();
        for (ifindex, name) in ports {
            if let Err(e) = self.msee.attach(ifindex, self.settings.mode) {
                for i in done {
                    if let Err(e) = self.msee.detach(i) {
                        warn!(ifindex = i, "detaching msee again: {e}");
                    }
                }
                return Err(anyhow!(e).context(format!(
                    "attaching msee ({:?} mode) to port {name}",
                    self.settings.mode
                )));
            }
            done.push(ifindex);
            info!(ifname = %name, ifindex, mode = ?self.settings.mode, "msee attached");
        }
        self.links.attached.extend(done);
        Ok(())
    }

    /// Removes the addresses the daemon put on its ports (at exit).
    pub(super) async fn remove_added_addresses(&mut self) {
        for ((ifindex, addr), len) in std::mem::take(&mut self.links.added) {
            if let Err(e) = netlink::del_address(&self.handle, ifindex, addr, len).await {
                warn!("{e:#}");
            }
        }
    }

    /// Resolves the neighbours not resolved yet (their links wait for it);
    /// with `recheck`, also looks at the kernel's table for the resolved
    /// ones and follows a neighbour whose MAC changed. A recheck never
    /// takes a working link down: liveness is carrier's, BGP's and BFD's
    /// business; a missing entry is only re-probed.
    pub(super) async fn resolve_pending(&mut self, timeout: Duration, recheck: bool) {
        let ids: Vec<u32> = self.links.by_id.keys().copied().collect();
        for id in ids {
            let rt = &self.links.by_id[&id];
            let Some(via) = rt.spec.neighbour else {
                continue;
            };
            let (ifindex, name) = (rt.spec.iface.ifindex, rt.spec.name.clone());
            if let Some(known) = rt.neighbour_mac {
                if !recheck {
                    continue;
                }
                match netlink::lookup_neighbour(&self.handle, ifindex, via).await {
                    Ok(Some(mac)) if mac != known => {
                        let entry = link_entry(&self.links.by_id[&id].spec, mac);
                        if let Err(e) = self.msee.set_link(id, entry) {
                            warn!(%via, "updating link {name}: {e}");
                            continue;
                        }
                        if let Some(rt) = self.links.by_id.get_mut(&id) {
                            rt.neighbour_mac = Some(mac);
                        }
                        info!(link = %name, %via, old = %format_mac(&known), mac = %format_mac(&mac), "neighbour's MAC changed: link updated");
                    }
                    Ok(Some(_)) => {}
                    Ok(None) => {
                        if let Err(e) = netlink::probe_neighbour(&self.handle, ifindex, via).await {
                            warn!(link = %name, %via, "re-probing the neighbour: {e:#}");
                        }
                    }
                    Err(e) => warn!(link = %name, %via, "reading the neighbour table: {e:#}"),
                }
                continue;
            }
            match netlink::resolve_neighbour(&self.handle, ifindex, via, timeout).await {
                Ok(mac) => {
                    let entry = link_entry(&self.links.by_id[&id].spec, mac);
                    if let Err(e) = self.msee.set_link(id, entry) {
                        warn!(%via, "installing link {name}: {e}");
                        continue;
                    }
                    if let Some(rt) = self.links.by_id.get_mut(&id) {
                        rt.neighbour_mac = Some(mac);
                    }
                    self.health.set(id, Signal::Neighbour, true);
                    info!(link = %name, %via, mac = %format_mac(&mac), "neighbour resolved");
                }
                Err(e) => {
                    self.health.set(id, Signal::Neighbour, false);
                    warn!(link = %name, %via, "neighbour unresolved, link down, retrying: {e:#}");
                }
            }
        }
    }

    /// Every link's counters, as the operator reads them.
    pub(super) fn port_reports(&self) -> Result<Vec<PortReport>> {
        self.links
            .by_id
            .values()
            .map(|rt| {
                let s = &rt.spec;
                let mut r = PortReport::new(
                    &s.name,
                    &s.iface.name,
                    &self.msee.link_counters(s.id, Direction::Rx)?,
                    &self.msee.link_counters(s.id, Direction::Tx)?,
                )
                .with_policers(
                    self.msee.policer(s.id, Direction::Rx)?.rate_bytes_per_sec,
                    self.msee.policer(s.id, Direction::Tx)?.rate_bytes_per_sec,
                );
                if let crate::estate::Side::Customer {
                    circuit, peering, ..
                } = &s.side
                {
                    r.circuit = Some(circuit.clone());
                    r.peering = Some(format!("{peering:?}"));
                }
                r.role = match s.role {
                    LinkRole::Primary => "primary",
                    LinkRole::Secondary => "secondary",
                    LinkRole::Azure => "azure",
                }
                .to_owned();
                Ok(r)
            })
            .collect()
    }
}
