//! Per-circuit-peering RIB: one Adj-RIB-In per BGP session (one per link
//! and address family), best path per prefix, and the FIB changes that
//! follow from it.
//!
//! Best path: every link that has a path for a prefix is a member of its
//! next-hop group, with the path's AS-path length as preference (lower is
//! better). Equal lengths on both links share traffic by flow; a prepended
//! path on one link leaves that link as a backup the dataplane uses only
//! when the preferred link is down; a prefix learned on one link only goes
//! to that link.
//!
//! A session going down is one link-state write in the dataplane (see
//! [`Rib::session_down`]); its Adj-RIB-In stays, marked stale, until
//! [`Rib::flush_stale`] withdraws it, so failover never waits for route
//! rewrites.
//!
//! A peer doing BGP graceful restart (RFC 4724) keeps its routes through
//! the loss instead ([`Rib::session_restarting`]): they stay in use,
//! each marked stale until the peer announces it again, and
//! [`Rib::purge_restart_stale`] withdraws those it did not (on its
//! End-of-RIB, or when its restart or stale time runs out).
pub mod adj_out;
pub mod domains;
pub mod fib;
mod prefix_map;

use std::collections::{BTreeMap, BTreeSet};

use bgp::wire::{AsSegment, PathAttribute, Update};
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use msee_abi::{GroupMember, PeeringKind};

pub use circuit::model::AddressFamily as Family;
pub use fib::{
    ChangeBatch, Fib, FibChange, FibSink, FibStats, InstallRecord, NextHops, PendingChanges,
    SetTable, SinkBatchError,
};
pub use prefix_map::PrefixMap;

/// A BGP session of a peering: its link and its address family.
pub type SessionId = (u32, Family);

fn family_of(prefix: &IpNet) -> Family {
    match prefix {
        IpNet::V4(_) => Family::Ipv4,
        IpNet::V6(_) => Family::Ipv6,
    }
}

/// What the RIB keeps of a path: its AS path (shared by every prefix of
/// the UPDATE that brought it) and that path's length for best-path
/// selection. The MSEE ignores customer communities, MED and next hop (a
/// link has exactly one neighbour).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Path {
    pub as_path_len: u32,
    /// Flattened, first AS first (an AS_SET's members in order).
    pub as_path: std::sync::Arc<[u32]>,
}

impl Path {
    /// The path of `update` as this peering keeps it: on Microsoft peering
    /// the private ASNs are removed, as Microsoft does (so private-AS
    /// prepending cannot steer traffic there).
    pub fn of(update: &Update, kind: PeeringKind) -> Self {
        let mut as_path: Vec<u32> = match update.attribute(bgp::wire::update::attr::AS_PATH) {
            Some(PathAttribute::AsPath(segments)) => segments
                .iter()
                .flat_map(|s| match s {
                    AsSegment::Sequence(v) | AsSegment::Set(v) => v.iter().copied(),
                })
                .collect(),
            _ => Vec::new(),
        };
        let mut as_path_len = as_path_len(update);
        if kind == PeeringKind::Microsoft {
            let before = as_path.len();
            as_path.retain(|a| !is_private_asn(*a));
            as_path_len = as_path_len.saturating_sub((before - as_path.len()) as u32);
        }
        Self {
            as_path_len,
            as_path: as_path.into(),
        }
    }
}

/// RFC 6996 private-use ASNs (2- and 4-octet ranges).
pub fn is_private_asn(asn: u32) -> bool {
    (64512..=65534).contains(&asn) || (4_200_000_000..=4_294_967_294).contains(&asn)
}

/// Why an announced prefix was not accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// A default route, on Microsoft peering.
    DefaultRoute,
    /// An RFC 1918 prefix, on Microsoft peering.
    Rfc1918,
    /// The AS path already contains AS 12076 (RFC 4271 §9.1.2 loop
    /// detection), e.g. our own VNet routes reflected back by the customer.
    AsLoop,
    /// A prefix of the other address family than the session's.
    WrongFamily,
    /// Microsoft peering: outside the customer's registered public
    /// prefixes (`advertisedPublicPrefixes`).
    NotRegistered,
}

impl Refusal {
    /// A short snake_case name (a metric's label value).
    pub fn label(&self) -> &'static str {
        match self {
            Refusal::DefaultRoute => "default_route",
            Refusal::Rfc1918 => "rfc1918",
            Refusal::AsLoop => "as_loop",
            Refusal::WrongFamily => "wrong_family",
            Refusal::NotRegistered => "not_registered",
        }
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Refusal::DefaultRoute => "default route refused on Microsoft peering",
            Refusal::Rfc1918 => "RFC 1918 prefix refused on Microsoft peering",
            Refusal::AsLoop => "AS path contains AS 12076 (loop)",
            Refusal::WrongFamily => "not of the session's address family",
            Refusal::NotRegistered => {
                "not within the advertised public prefixes registered for Microsoft peering"
            }
        })
    }
}

/// Import policy of a peering type.
pub fn import_check(kind: PeeringKind, prefix: IpNet) -> Result<(), Refusal> {
    if kind != PeeringKind::Microsoft {
        return Ok(());
    }
    if prefix.prefix_len() == 0 {
        return Err(Refusal::DefaultRoute);
    }
    if let IpNet::V4(p) = prefix {
        const RFC1918: [(u32, u8); 3] = [(0x0a00_0000, 8), (0xac10_0000, 12), (0xc0a8_0000, 16)];
        for (net, len) in RFC1918 {
            let block = Ipv4Net::new(net.into(), len).expect("valid");
            if block.contains(&p.network()) || p.contains(&block.network()) {
                return Err(Refusal::Rfc1918);
            }
        }
    }
    Ok(())
}

/// Whether the UPDATE's AS path contains `asn`.
pub fn as_path_contains(update: &Update, asn: u32) -> bool {
    match update.attribute(bgp::wire::update::attr::AS_PATH) {
        Some(PathAttribute::AsPath(segments)) => segments.iter().any(|s| match s {
            AsSegment::Sequence(v) | AsSegment::Set(v) => v.contains(&asn),
        }),
        _ => false,
    }
}

/// RFC 4271 §9.1.2.2: an AS_SET counts as one, each AS_SEQUENCE entry as one.
pub fn as_path_len(update: &Update) -> u32 {
    match update.attribute(bgp::wire::update::attr::AS_PATH) {
        Some(PathAttribute::AsPath(segments)) => segments
            .iter()
            .map(|s| match s {
                AsSegment::Sequence(v) => v.len() as u32,
                AsSegment::Set(v) => u32::from(!v.is_empty()),
            })
            .sum(),
        _ => 0,
    }
}

/// Added to the preference of a drained link's paths: worse than any AS
/// path, so the link carries a prefix only when no other link has it.
pub const DRAIN_PENALTY: u32 = 1 << 16;

#[derive(Debug, Default)]
struct AdjRibIn {
    /// Maintenance drain: keep the link, but as the last resort.
    drained: bool,
    established: bool,
    /// Kept after the session went down until flushed.
    stale: bool,
    /// Graceful restart: the routes kept through the peer's restart that
    /// it has not announced again yet (`None`: no restart under way).
    restart_stale: Option<std::collections::HashSet<IpNet>>,
    /// Hashed, not ordered: a full table is a million entries, looked up
    /// once per announcement and once per best-path computation, and only
    /// [`Rib::routes`] (the CLI) wants them in order.
    routes: PrefixMap<Path>,
}

/// Outcome of one UPDATE.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct UpdateOutcome {
    /// Prefixes whose best path may have changed, in the UPDATE's order (a
    /// prefix both withdrawn and announced is there twice).
    pub changed: Vec<IpNet>,
    pub refused: Vec<(IpNet, Refusal)>,
}

/// One peering of one circuit: its routing domain and its sessions.
#[derive(Debug)]
pub struct Rib {
    domain: u32,
    kind: PeeringKind,
    /// Microsoft peering: the public prefixes the customer registered; an
    /// announcement must fall within one of them. `None`: no such check.
    registered: Option<Vec<IpNet>>,
    sessions: BTreeMap<SessionId, AdjRibIn>,
}

impl Rib {
    /// `links` are the dataplane link ids of the peering; each may have an
    /// IPv4 and an IPv6 session.
    pub fn new(domain: u32, kind: PeeringKind, links: &[u32]) -> Self {
        Self {
            domain,
            kind,
            registered: None,
            sessions: links
                .iter()
                .flat_map(|l| [(*l, Family::Ipv4), (*l, Family::Ipv6)])
                .map(|s| (s, AdjRibIn::default()))
                .collect(),
        }
    }

    /// Microsoft peering: takes only announcements within `prefixes` (the
    /// customer's `advertisedPublicPrefixes`) from now on, and drops the
    /// paths already held that fall outside them; returns the prefixes
    /// whose best path may have changed. (Announcements refused before are
    /// not kept: ask the peers for a route refresh to see them again.)
    pub fn set_registered(&mut self, prefixes: Vec<IpNet>) -> BTreeSet<IpNet> {
        let mut changed = BTreeSet::new();
        for adj in self.sessions.values_mut() {
            adj.routes.retain(|p, _| {
                let keep = prefixes.iter().any(|r| r.contains(&p));
                if !keep {
                    changed.insert(p);
                }
                keep
            });
        }
        self.registered = Some(prefixes);
        changed
    }

    pub fn domain(&self) -> u32 {
        self.domain
    }

    pub fn kind(&self) -> PeeringKind {
        self.kind
    }

    fn adj(&mut self, session: SessionId) -> anyhow::Result<&mut AdjRibIn> {
        self.sessions.get_mut(&session).ok_or_else(|| {
            anyhow::anyhow!(
                "link {} ({:?}) is not a session of this peering",
                session.0,
                session.1
            )
        })
    }

    /// `session` reached Established. A stale Adj-RIB-In left from its
    /// previous run is withdrawn first: the returned prefixes need
    /// recomputing.
    pub fn session_up(&mut self, session: SessionId) -> anyhow::Result<BTreeSet<IpNet>> {
        let changed = self.flush_stale(session)?;
        self.adj(session)?.established = true;
        Ok(changed)
    }

    /// `session` went down. The caller flips the link down in the
    /// dataplane (one write) if that session speaks for it; the routes
    /// stay, stale, until [`Rib::flush_stale`].
    pub fn session_down(&mut self, session: SessionId) -> anyhow::Result<()> {
        let adj = self.adj(session)?;
        adj.established = false;
        adj.stale = !adj.routes.is_empty();
        adj.restart_stale = None;
        Ok(())
    }

    /// `session`'s peer is restarting gracefully (RFC 4724): its routes
    /// stay in use, each stale until it announces it again, and the session
    /// keeps its link. Nothing changes in the FIB. Marking again (the
    /// peer failed to come back, or was lost again after coming back)
    /// marks every route it holds now.
    pub fn session_restarting(&mut self, session: SessionId) -> anyhow::Result<()> {
        let adj = self.adj(session)?;
        adj.established = false;
        adj.stale = false;
        adj.restart_stale = Some(adj.routes.keys().collect());
        Ok(())
    }

    /// Withdraws `session`'s routes still stale from the peer's restart
    /// (it sent its End-of-RIB without them, or its time ran out); returns
    /// the prefixes whose best path may have changed.
    pub fn purge_restart_stale(&mut self, session: SessionId) -> anyhow::Result<BTreeSet<IpNet>> {
        let adj = self.adj(session)?;
        let mut changed = BTreeSet::new();
        for prefix in adj.restart_stale.take().unwrap_or_default() {
            if adj.routes.remove(&prefix).is_some() {
                changed.insert(prefix);
            }
        }
        Ok(changed)
    }

    /// How many of `session`'s routes wait, stale, for its restarting
    /// peer to announce them again (`None`: no restart under way).
    pub fn restart_stale_count(&self, session: SessionId) -> Option<usize> {
        self.sessions
            .get(&session)
            .and_then(|a| a.restart_stale.as_ref())
            .map(std::collections::HashSet::len)
    }

    /// Withdraws a down session's stale routes; returns the prefixes whose
    /// best path may have changed (none if the session is up again).
    pub fn flush_stale(&mut self, session: SessionId) -> anyhow::Result<BTreeSet<IpNet>> {
        let adj = self.adj(session)?;
        if !adj.stale {
            return Ok(BTreeSet::new());
        }
        adj.stale = false;
        Ok(adj.routes.take_keys().into_iter().collect())
    }

    /// Room for `routes` prefixes on `session` (its route limit, when it
    /// comes up), so that a full table does not grow its map step by step.
    pub fn reserve(&mut self, session: SessionId, routes: usize) -> anyhow::Result<()> {
        let adj = self.adj(session)?;
        match session.1 {
            Family::Ipv4 => adj.routes.reserve_total(routes, 0),
            Family::Ipv6 => adj.routes.reserve_total(0, routes),
        }
        Ok(())
    }

    pub fn is_stale(&self, session: SessionId) -> bool {
        self.sessions.get(&session).is_some_and(|a| a.stale)
    }

    /// Applies an UPDATE received on `session`.
    pub fn update(&mut self, session: SessionId, update: &Update) -> anyhow::Result<UpdateOutcome> {
        let kind = self.kind;
        let registered = self.registered.as_deref();
        let adj = self.sessions.get_mut(&session).ok_or_else(|| {
            anyhow::anyhow!(
                "link {} ({:?}) is not a session of this peering",
                session.0,
                session.1
            )
        })?;
        if !adj.established {
            anyhow::bail!(
                "UPDATE on link {} ({:?}) whose session is not established",
                session.0,
                session.1
            );
        }
        let mut out = UpdateOutcome::default();
        let withdrawn = update
            .withdrawn
            .iter()
            .map(|p| IpNet::V4(*p))
            .chain(update.withdrawn_v6().iter().map(|p| IpNet::V6(*p)));
        for prefix in withdrawn {
            let prefix = prefix.trunc();
            if let Some(stale) = adj.restart_stale.as_mut() {
                stale.remove(&prefix);
            }
            if adj.routes.remove(&prefix).is_some() {
                out.changed.push(prefix);
            }
        }
        let announced = update
            .nlri
            .iter()
            .map(|p: &Ipv4Net| IpNet::V4(p.trunc()))
            .chain(
                update
                    .announced_v6()
                    .iter()
                    .map(|p: &Ipv6Net| IpNet::V6(p.trunc())),
            );
        if update.treated_as_withdraw() {
            for prefix in announced {
                if let Some(stale) = adj.restart_stale.as_mut() {
                    stale.remove(&prefix);
                }
                if adj.routes.remove(&prefix).is_some() {
                    out.changed.push(prefix);
                }
            }
            return Ok(out);
        }
        out.changed
            .reserve(update.nlri.len() + update.announced_v6().len());
        let path = Path::of(update, kind);
        let looped = as_path_contains(update, bgp::MSEE_ASN);
        // Private peering takes any prefix of the session's family (and
        // has no registered prefixes).
        let open = kind != PeeringKind::Microsoft && !looped && registered.is_none();
        for prefix in announced {
            // Announced again (or refused now): no longer the restart's.
            if let Some(stale) = adj.restart_stale.as_mut() {
                stale.remove(&prefix);
            }
            // The most telling reason first: the registration check comes
            // after the default-route and RFC 1918 rules.
            let verdict = if family_of(&prefix) != session.1 {
                Err(Refusal::WrongFamily)
            } else if open {
                Ok(())
            } else if looped {
                Err(Refusal::AsLoop)
            } else {
                import_check(kind, prefix).and_then(|()| match registered {
                    Some(r) if !r.iter().any(|r| r.contains(&prefix)) => {
                        Err(Refusal::NotRegistered)
                    }
                    _ => Ok(()),
                })
            };
            match verdict {
                Ok(()) => {
                    if adj.routes.insert(prefix, path.clone()).as_ref() != Some(&path) {
                        out.changed.push(prefix);
                    }
                }
                Err(why) => {
                    // A refused re-announcement replaces an accepted one.
                    if adj.routes.remove(&prefix).is_some() {
                        out.changed.push(prefix);
                    }
                    out.refused.push((prefix, why));
                }
            }
        }
        Ok(out)
    }

    /// Drains `link` (maintenance) or undrains it: its paths stay, at a
    /// preference worse than any other link's, so traffic moves off it by
    /// group rewrites (make-before-break) while it still forwards. Returns
    /// the prefixes whose next hops change.
    pub fn set_drained(&mut self, link: u32, drained: bool) -> anyhow::Result<BTreeSet<IpNet>> {
        let mut changed = BTreeSet::new();
        for family in [Family::Ipv4, Family::Ipv6] {
            let adj = self.adj((link, family))?;
            if adj.drained != drained {
                adj.drained = drained;
                changed.extend(adj.routes.keys());
            }
        }
        Ok(changed)
    }

    pub fn is_drained(&self, link: u32) -> bool {
        self.sessions
            .get(&(link, Family::Ipv4))
            .is_some_and(|a| a.drained)
    }

    /// Best next-hop set for `prefix`: every link with a path, preference =
    /// AS-path length (plus [`DRAIN_PENALTY`] on a drained link); `None` if
    /// no link has one.
    pub fn best(&self, prefix: IpNet) -> Option<Vec<GroupMember>> {
        self.best_hops(prefix).map(|h| h.to_vec())
    }

    /// [`Rib::best`] as a [`NextHops`] set (no allocation).
    pub fn best_hops(&self, prefix: IpNet) -> Option<NextHops> {
        let mut hops = NextHops::default();
        self.add_hops(prefix, &mut hops);
        (!hops.is_empty()).then_some(hops)
    }

    /// Adds every link with a path for `prefix` to `hops` (a routing domain
    /// fed by several peerings merges theirs).
    pub fn add_hops(&self, prefix: IpNet, hops: &mut NextHops) {
        let prefix = prefix.trunc();
        let family = family_of(&prefix);
        for ((link, f), adj) in &self.sessions {
            if *f != family || adj.routes.is_empty() {
                continue;
            }
            if let Some(p) = adj.routes.get(&prefix) {
                let penalty = if adj.drained { DRAIN_PENALTY } else { 0 };
                hops.push(*link, p.as_path_len + penalty);
            }
        }
    }

    /// The shortest path held for `prefix` on any link (what Global Reach
    /// passes on to the other circuit's customer), drained links last.
    pub fn best_path(&self, prefix: IpNet) -> Option<&Path> {
        let prefix = prefix.trunc();
        let family = family_of(&prefix);
        self.sessions
            .iter()
            .filter(|((_, f), _)| *f == family)
            .filter_map(|(_, adj)| Some((adj.drained, adj.routes.get(&prefix)?)))
            .min_by_key(|(drained, p)| (*drained, p.as_path_len))
            .map(|(_, p)| p)
    }

    /// The paths held for `prefix`, per session.
    pub fn paths(&self, session: SessionId) -> impl Iterator<Item = (IpNet, &Path)> + '_ {
        self.sessions
            .get(&session)
            .into_iter()
            .flat_map(|a| a.routes.iter())
    }

    /// The FIB changes for `prefixes` (typically an [`UpdateOutcome`]'s).
    pub fn changes<'a>(&self, prefixes: impl IntoIterator<Item = &'a IpNet>) -> Vec<FibChange> {
        prefixes
            .into_iter()
            .map(|p| FibChange {
                domain: self.domain,
                prefix: *p,
                members: self.best(*p),
            })
            .collect()
    }

    /// The FIB changes for `prefixes` as one [`ChangeBatch`], in their order.
    pub fn change_batch<'a>(&self, prefixes: impl IntoIterator<Item = &'a IpNet>) -> ChangeBatch {
        let mut sets = SetTable::default();
        let changes = prefixes
            .into_iter()
            .map(|p| (*p, sets.number(self.best_hops(*p))))
            .collect();
        ChangeBatch {
            changes,
            sets: sets.into_sets(),
        }
    }

    /// Every prefix with a path on some session.
    pub fn routes_prefixes(&self) -> BTreeSet<IpNet> {
        self.sessions
            .values()
            .flat_map(|a| a.routes.keys())
            .collect()
    }

    /// Every prefix with a path, and its best next-hop set.
    pub fn routes(&self) -> BTreeMap<IpNet, Vec<GroupMember>> {
        let prefixes: BTreeSet<IpNet> = self
            .sessions
            .values()
            .flat_map(|a| a.routes.keys())
            .collect();
        prefixes
            .into_iter()
            .filter_map(|p| self.best(p).map(|m| (p, m)))
            .collect()
    }

    /// Prefixes accepted on `session`.
    pub fn adj_rib_in_len(&self, session: SessionId) -> usize {
        self.sessions.get(&session).map_or(0, |a| a.routes.len())
    }
}

#[cfg(test)]
mod tests;
