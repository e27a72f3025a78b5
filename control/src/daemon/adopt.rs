//! A restart without loss: what a previous instance of the daemon left
//! forwarding (its program on pinned XDP links, its pinned maps: links,
//! link states, routes, groups, counters) is adopted by the next one
//! instead of being rebuilt from nothing. The new daemon keeps every link
//! whose entry is the one it would write, takes the routes into its FIB as
//! they are, puts its own program on the pinned links in one step, and
//! tells its BGP peers that its forwarding state was preserved (RFC 4724).
//! Routes only the previous instance knew stay, stale, until every session
//! is back with its End-of-RIB (or the restart time ran out); then they go.
use std::{
    collections::BTreeMap,
    net::IpAddr,
    path::Path,
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail};
use msee_abi::{Link, MAX_LINKS, ROUTE_LOCAL, ROUTE_OUT_OF_REACH};
use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use super::Daemon;
use crate::{health::Signal, netlink::Interface, state_dir};

/// What a previous instance left in the maps, read before anything is
/// written.
pub(super) struct Adopted {
    /// Link id -> its entry and whether it carried.
    links: BTreeMap<u32, (Link, bool)>,
    /// Stale routes go then at the latest.
    sweep_by: Instant,
    started: Instant,
}

impl Adopted {
    /// The adopted entry of link `id` if it is exactly `wanted` but for
    /// the neighbour's MAC, which it knows: the link goes on as it was.
    pub(super) fn link(&self, id: u32, wanted: impl Fn([u8; 6]) -> Link) -> Option<(Link, bool)> {
        let (entry, up) = self.links.get(&id)?;
        (entry.dst_mac != [0; 6] && *entry == wanted(entry.dst_mac)).then_some((*entry, *up))
    }
}

/// Ports that run a program: each must be this instance's own pinned
/// attachment (adopted), or the start is refused. A pin of a port that
/// runs nothing any more (the interface was re-created) is removed.
pub(super) fn check_ports(bpf: &Path, ifaces: &BTreeMap<String, Interface>) -> Result<()> {
    for i in ifaces.values() {
        let pinned = dataplane::msee::pinned_link_program(bpf, i.ifindex)?;
        match (i.xdp_prog, pinned) {
            (Some(running), Some(ours)) if running == ours => {
                info!(port = %i.name, prog = running, "port runs the previous instance's msee: adopted");
            }
            (Some(id), _) => bail!(
                "port {} already has an XDP program attached (id {id}; `bpftool net show dev {}` names it): another msee-daemon on these ports? Stop it first; nothing was started",
                i.name,
                i.name
            ),
            (None, Some(_)) => {
                let pin = dataplane::msee::link_pin(bpf, i.ifindex);
                warn!(port = %i.name, pin = %pin.display(), "a pinned attachment of a port that runs no program: removed");
                std::fs::remove_file(&pin)
                    .with_context(|| format!("removing the stale pin {}", pin.display()))?;
            }
            (None, None) => {}
        }
    }
    Ok(())
}

/// Reads what the maps hold and takes the routes into the FIB.
pub(super) fn adopt(d: &mut Daemon, sweep_after: Duration) -> Result<Adopted> {
    let mut links = BTreeMap::new();
    for id in 0..MAX_LINKS {
        let link = d.msee.link(id)?;
        if link.ifindex != 0 {
            links.insert(id, (link, d.msee.link_state(id)?));
        }
    }
    let mut routes = 0;
    let mut groups = BTreeMap::new();
    for (domain, prefix, route) in d.msee.routes()? {
        // The links' own addresses are written again with their links.
        if route.flags & ROUTE_LOCAL != 0 {
            continue;
        }
        let members = if route.flags & ROUTE_OUT_OF_REACH != 0 {
            None
        } else {
            if let std::collections::btree_map::Entry::Vacant(e) = groups.entry(route.group) {
                e.insert(d.msee.group(route.group)?);
            }
            Some(groups[&route.group].as_slice())
        };
        d.routing
            .fib
            .adopt(domain, prefix, route.group, members)
            .with_context(|| format!("adopting the route {prefix} of domain {domain}"))?;
        routes += 1;
    }
    d.routing.fib.adopted();
    info!(
        links = links.len(),
        routes,
        groups = groups.len(),
        "adopted the previous instance's forwarding state"
    );
    Ok(Adopted {
        links,
        sweep_by: Instant::now() + sweep_after,
        started: Instant::now(),
    })
}

impl Daemon {
    /// After an adoption, once this configuration's links are installed:
    /// the previous instance's attachments of ports or VLANs this
    /// configuration no longer has are removed, and the links they fed
    /// set down. A frame on such a VLAN would otherwise still enter a
    /// routing domain, which this configuration may give another circuit.
    pub(super) fn drop_stale_attachments(&mut self) -> Result<()> {
        let wanted: std::collections::HashSet<_> = self
            .plan
            .links
            .iter()
            .map(crate::estate::LinkSpec::attachment_key)
            .collect();
        let configured: std::collections::HashSet<u32> =
            self.plan.links.iter().map(|l| l.id).collect();
        let mut removed = 0;
        for key in self.msee.attachment_keys()? {
            if wanted.contains(&key) {
                continue;
            }
            self.msee.remove_attachment(key)?;
            removed += 1;
        }
        let mut downed = 0;
        for id in self
            .adopted
            .as_ref()
            .map(|a| a.links.keys().copied().collect::<Vec<_>>())
            .unwrap_or_default()
        {
            if !configured.contains(&id) && self.msee.link_state(id)? {
                self.msee.set_link_state(id, false)?;
                downed += 1;
            }
        }
        if removed + downed > 0 {
            info!(
                attachments_removed = removed,
                links_set_down = downed,
                "adopted attachments and links this configuration does not have"
            );
        }
        Ok(())
    }

    /// Once every BGP session is back with its peer's End-of-RIB, or the
    /// restart time is over: the routes nobody announced again go, and a
    /// link held up for a session that did not come back goes down.
    pub(super) async fn reconcile_adopted(&mut self) {
        let Some((started, sweep_by)) = self.adopted.as_ref().map(|a| (a.started, a.sweep_by))
        else {
            return;
        };
        if Instant::now() >= started + super::sessions::BFD_FIRST_WAIT {
            self.release_awaiting_bfd().await;
        }
        let all_back = self.sessions.as_ref().is_none_or(|s| {
            s.rt.iter()
                .all(|rt| rt.status.established && rt.status.end_of_rib)
        });
        if !all_back && Instant::now() < sweep_by {
            return;
        }
        self.adopted = None;
        self.routing.flush(&mut self.msee);
        let removed = self.routing.sweep_unannounced(&mut self.msee);
        let mut held = Vec::new();
        if let Some(s) = &self.sessions {
            for i in 0..s.speaker.len() {
                let spec = s.speaker.spec(i);
                if spec.family == crate::speaker::Family::Ipv4
                    && !s.rt[i].status.established
                    && self.health.signal(spec.link, Signal::Bgp) == Some(true)
                {
                    held.push(spec.link);
                }
            }
        }
        for link in &held {
            self.health.set(*link, Signal::Bgp, false);
        }
        info!(
            all_back,
            stale_routes_removed = removed,
            links_released = held.len(),
            "adopted state reconciled"
        );
        self.send_adverts().await;
    }
}

/// The addresses a daemon put on its ports, kept in the state directory
/// when it leaves them there (its exit left forwarding running): the next
/// instance, or `--stop`, removes them when they are no longer needed.
#[derive(Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct AddedAddresses {
    pub addresses: Vec<AddedAddress>,
}

#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub struct AddedAddress {
    pub ifindex: u32,
    pub address: IpAddr,
    pub prefix_len: u8,
}

pub const ADDRESSES_FILE: &str = "addresses.json";

impl AddedAddresses {
    pub fn load(path: &Path) -> Result<Self> {
        match std::fs::read(path) {
            Ok(bytes) => match serde_json::from_slice(&bytes) {
                Ok(a) => Ok(a),
                Err(e) => {
                    let to = state_dir::set_aside(path)?;
                    warn!(file = %path.display(), aside = %to.display(),
                        "unreadable ({e}): set aside; the addresses it listed stay on their ports");
                    Ok(Self::default())
                }
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
        }
    }

    pub fn save(&self, path: &Path) -> Result<()> {
        state_dir::write_atomically(path, &serde_json::to_vec_pretty(self)?)
    }
}

/// What `msee-daemon --stop` removed.
#[derive(Debug, Default)]
pub struct Stopped {
    pub ports: usize,
    pub maps: bool,
    pub addresses: usize,
}

/// `msee-daemon --stop`: removes what a daemon that exited left running
/// in state directory `root` (its pinned attachments, which detach, its
/// pinned maps, the addresses it put on its ports). Refused while a daemon
/// holds the directory. Records other than these (usage, history) stay.
pub async fn stop(root: &Path) -> Result<Stopped> {
    let state = state_dir::StateDir::open(root)?;
    let bpf = state_dir::bpf_dir(root);
    let mut stopped = Stopped::default();
    if msee_sys::bpffs::is_bpffs(&bpf)? {
        stopped.ports = dataplane::msee::pinned_link_ifindexes(&bpf)?.len();
        stopped.maps = true;
        msee_sys::bpffs::unmount(&bpf)?;
    }
    let file = state.path(ADDRESSES_FILE);
    let added = AddedAddresses::load(&file)?;
    if !added.addresses.is_empty() {
        let handle = crate::netlink::connect()?;
        for a in &added.addresses {
            match crate::netlink::del_address(&handle, a.ifindex, a.address, a.prefix_len).await {
                Ok(()) => stopped.addresses += 1,
                Err(e) => warn!("{e:#}"),
            }
        }
    }
    let _ = std::fs::remove_file(&file);
    Ok(stopped)
}
