//! The peerings' RIBs, the routing domains they feed and the FIB: every
//! route change (an UPDATE, a session going down, a drain, a reload) becomes
//! best-path changes in each domain that holds the peering's routes, written
//! make-before-break.
use std::{
    collections::{BTreeMap, BTreeSet},
    time::{Duration, Instant},
};

use circuit::{Model, model::PeeringType};
use ipnet::IpNet;
use tracing::{info, warn};

use crate::{
    estate::{PeeringRef, Plan},
    rib::{
        ChangeBatch, Fib, FibSink, InstallRecord, PendingChanges, Rib, SetTable, domains::Domains,
    },
};

pub(super) struct Routing {
    /// By RIB slot: stable for the daemon's life; `None` once a reload
    /// removed the peering.
    ribs: Vec<Option<Rib>>,
    rib_slot: BTreeMap<PeeringRef, usize>,
    pub domains: Domains,
    pub fib: Fib,
    /// Changes waiting for the UPDATE queue to empty, by domain slot.
    pending: PendingChanges,
    /// When UPDATEs arrived and the FIB was written (API `fib`).
    pub install: InstallRecord,
    /// Global Reach: a private peering -> the RIB slots of its peers'
    /// private peerings, and the reverse.
    gr_sources: BTreeMap<PeeringRef, Vec<usize>>,
    gr_targets: BTreeMap<usize, Vec<PeeringRef>>,
    /// Writes the dataplane refused, retried with backoff.
    unwritten: Unwritten,
}

/// Prefixes whose last write to the dataplane failed, per domain id. The
/// FIB holds what the dataplane has, so these are where the dataplane and
/// the RIBs differ; they are written again from the best paths of the
/// moment (never a stale copy of the failed batch), after a backoff that
/// doubles from [`Unwritten::FIRST`] to [`Unwritten::MAX`]. A domain that
/// is gone by then is emptied instead.
#[derive(Debug)]
struct Unwritten {
    by_domain: BTreeMap<u32, BTreeSet<IpNet>>,
    backoff: Duration,
    retry_at: Option<Instant>,
}

impl Default for Unwritten {
    fn default() -> Self {
        Self {
            by_domain: BTreeMap::new(),
            backoff: Self::FIRST,
            retry_at: None,
        }
    }
}

impl Unwritten {
    const FIRST: Duration = Duration::from_secs(1);
    const MAX: Duration = Duration::from_secs(30);

    fn len(&self) -> usize {
        self.by_domain.values().map(BTreeSet::len).sum()
    }

    fn failed(&mut self, domain: u32, prefixes: impl Iterator<Item = IpNet>, now: Instant) {
        self.by_domain.entry(domain).or_default().extend(prefixes);
        self.retry_at.get_or_insert(now + self.backoff);
    }

    /// A batch of `domain` was written: its prefixes are in step again.
    fn written(&mut self, domain: u32, prefixes: impl Iterator<Item = IpNet>) {
        let Some(set) = self.by_domain.get_mut(&domain) else {
            return;
        };
        for p in prefixes {
            set.remove(&p);
        }
        if set.is_empty() {
            self.by_domain.remove(&domain);
        }
    }
}

/// Microsoft peering's registered public prefixes (the customer may
/// announce only within them); `None` for private peering.
pub(super) fn registered(model: Option<&Model>, pr: &PeeringRef) -> Option<Vec<IpNet>> {
    if pr.1 != PeeringType::MicrosoftPeering {
        return None;
    }
    let p = model?.circuit(&pr.0)?.peering(pr.1)?;
    Some(p.advertised_public_prefixes.clone())
}

impl Routing {
    pub(super) fn new(plan: &Plan, model: Option<&Model>) -> Self {
        let mut r = Self {
            ribs: Vec::new(),
            rib_slot: BTreeMap::new(),
            domains: Domains::default(),
            fib: Fib::new(0),
            pending: PendingChanges::default(),
            install: InstallRecord::default(),
            gr_sources: BTreeMap::new(),
            gr_targets: BTreeMap::new(),
            unwritten: Unwritten::default(),
        };
        for p in &plan.peerings {
            let mut rib = Rib::new(p.domain, p.kind, &p.links);
            if let Some(reg) = registered(model, &p.reference()) {
                rib.set_registered(reg);
            }
            r.rib_slot.insert(p.reference(), r.ribs.len());
            r.ribs.push(Some(rib));
        }
        r.set_domains(plan);
        r
    }

    fn set_domains(&mut self, plan: &Plan) {
        let slots = &self.rib_slot;
        self.domains = Domains::new(&plan.domains, |pr| slots.get(pr).copied());
        self.gr_sources.clear();
        self.gr_targets.clear();
        for p in &plan.peerings {
            if p.peering_type != PeeringType::AzurePrivatePeering {
                continue;
            }
            let Some(d) = plan.domain(p.domain) else {
                continue;
            };
            let me = p.reference();
            let sources: Vec<usize> = d
                .key
                .learned
                .iter()
                .filter(|l| **l != me && l.1 == PeeringType::AzurePrivatePeering)
                .filter_map(|l| self.rib_slot.get(l).copied())
                .collect();
            for s in &sources {
                self.gr_targets.entry(*s).or_default().push(me.clone());
            }
            self.gr_sources.insert(me, sources);
        }
    }

    pub(super) fn rib_of(&self, pr: &PeeringRef) -> Option<usize> {
        self.rib_slot.get(pr).copied()
    }

    pub(super) fn rib(&self, slot: usize) -> Option<&Rib> {
        self.ribs.get(slot)?.as_ref()
    }

    /// The RIB of a running peering.
    pub(super) fn peering_rib(&self, pr: &PeeringRef) -> Option<&Rib> {
        self.rib(self.rib_of(pr)?)
    }

    pub(super) fn rib_mut(&mut self, slot: usize) -> Option<&mut Rib> {
        self.ribs.get_mut(slot)?.as_mut()
    }

    pub(super) fn ribs(&self) -> &[Option<Rib>] {
        &self.ribs
    }

    /// The peerings whose customers learn RIB `slot`'s routes by Global
    /// Reach.
    pub(super) fn gr_targets(&self, slot: usize) -> &[PeeringRef] {
        self.gr_targets.get(&slot).map_or(&[], Vec::as_slice)
    }

    /// The RIB slots whose routes `pr`'s customer learns by Global Reach.
    pub(super) fn gr_sources(&self, pr: &PeeringRef) -> &[usize] {
        self.gr_sources.get(pr).map_or(&[], Vec::as_slice)
    }

    /// Writes every domain's routes (at start: the model's and `--route`'s).
    pub(super) fn program_all(&mut self, sink: &mut dyn FibSink) -> anyhow::Result<()> {
        for slot in 0..self.domains.slots.len() {
            let prefixes = self.domains.prefixes(&self.ribs, slot);
            let batch = self.batch(slot, prefixes.iter());
            self.write(slot, &batch, sink)?;
        }
        Ok(())
    }

    fn batch<'a>(&self, slot: usize, prefixes: impl Iterator<Item = &'a IpNet>) -> ChangeBatch {
        let mut sets = SetTable::default();
        let changes = prefixes
            .map(|p| (*p, sets.number(self.domains.best(&self.ribs, slot, *p))))
            .collect();
        ChangeBatch {
            changes,
            sets: sets.into_sets(),
        }
    }

    /// Prefixes of RIB `rib` changed by UPDATEs: their best paths now, in
    /// every domain the RIB feeds, wait for the UPDATE queue to empty (see
    /// [`PendingChanges`]).
    pub(super) fn learned(&mut self, rib: usize, changed: &[IpNet]) {
        for &slot in self.domains.fed_by(rib) {
            let domains = &self.domains;
            let ribs = &self.ribs;
            self.pending.add(
                slot,
                changed.iter().map(|p| (*p, domains.best(ribs, slot, *p))),
            );
        }
    }

    pub(super) fn pending_full(&self) -> bool {
        self.pending.is_full()
    }

    /// Route changes other than UPDATEs (a session's stale routes, a drain,
    /// registered prefixes): written now, after whatever UPDATEs left
    /// waiting (which callers write before they change a RIB).
    pub(super) fn apply(&mut self, rib: usize, changed: &BTreeSet<IpNet>, sink: &mut dyn FibSink) {
        self.flush(sink);
        if changed.is_empty() {
            return;
        }
        for slot in self.domains.fed_by(rib).to_vec() {
            let batch = self.batch(slot, changed.iter());
            if let Err(e) = self.write(slot, &batch, sink) {
                warn!("programming the dataplane: {e:#}");
            }
        }
    }

    /// Writes the changes that waited.
    pub(super) fn flush(&mut self, sink: &mut dyn FibSink) {
        for (slot, batch) in self.pending.take() {
            if let Err(e) = self.write(slot, &batch, sink) {
                warn!("programming the dataplane: {e:#}");
            }
        }
    }

    fn write(
        &mut self,
        slot: usize,
        batch: &ChangeBatch,
        sink: &mut dyn FibSink,
    ) -> anyhow::Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        let domain = self.domains.id(slot);
        let result = self.fib.apply_batch(sink, domain, batch);
        self.install.batch_applied(&result);
        let prefixes = batch.changes.iter().map(|(p, _)| *p);
        match &result {
            Ok(_) => self.unwritten.written(domain, prefixes),
            Err(e) => {
                self.unwritten.failed(domain, prefixes, Instant::now());
                self.install.last_write_error = Some(format!("domain {domain}: {e:#}"));
            }
        }
        self.install.pending_writes = self.unwritten.len() as u64;
        let stats = result?;
        // One line per route only when asked for: a full table is a million
        // lines.
        if tracing::enabled!(tracing::Level::DEBUG) {
            for (prefix, hops) in batch.iter() {
                match hops {
                    Some(h) if h.is_out_of_reach() => {
                        info!(domain, %prefix, "route installed: out of reach");
                    }
                    Some(h) => {
                        let links: Vec<String> = h
                            .members()
                            .map(|m| format!("link {} pref {}", m.link, m.preference))
                            .collect();
                        info!(domain, %prefix, via = %links.join(", "), "route installed");
                    }
                    None => info!(domain, %prefix, "route removed"),
                }
            }
        } else {
            info!(
                domain,
                installed = stats.routes_upserted,
                removed = stats.routes_removed,
                groups_added = stats.groups_added,
                groups_freed = stats.groups_freed,
                "FIB batch applied"
            );
        }
        Ok(())
    }

    /// A reload's new plan, first half (make): RIBs for new peerings, the
    /// new domains written whole where they changed, registered prefixes
    /// applied. Returns the ids of the domains no longer used, which
    /// [`Routing::drop_domains`] empties once no attachment points at them.
    pub(super) fn replan(
        &mut self,
        before: &Plan,
        plan: &Plan,
        model: Option<&Model>,
        sink: &mut dyn FibSink,
    ) -> Vec<u32> {
        self.flush(sink);
        let mut registered_changes: Vec<(usize, BTreeSet<IpNet>)> = Vec::new();
        let keep: BTreeSet<PeeringRef> = plan
            .peerings
            .iter()
            .map(super::super::estate::PeeringRun::reference)
            .collect();
        for (pr, slot) in self.rib_slot.clone() {
            if !keep.contains(&pr) {
                self.ribs[slot] = None;
                self.rib_slot.remove(&pr);
            }
        }
        for p in &plan.peerings {
            let pr = p.reference();
            match self.rib_slot.get(&pr) {
                Some(&slot) => {
                    let reg = registered(model, &pr);
                    if let Some(rib) = self.ribs[slot].as_mut()
                        && let Some(reg) = reg
                    {
                        registered_changes.push((slot, rib.set_registered(reg)));
                    }
                }
                None => {
                    let mut rib = Rib::new(p.domain, p.kind, &p.links);
                    if let Some(reg) = registered(model, &pr) {
                        rib.set_registered(reg);
                    }
                    self.rib_slot.insert(pr, self.ribs.len());
                    self.ribs.push(Some(rib));
                }
            }
        }
        let old: BTreeMap<u32, BTreeSet<IpNet>> = self
            .domains
            .slots
            .iter()
            .map(|d| (d.id, self.fib.domain_prefixes(d.id).into_iter().collect()))
            .collect();
        self.set_domains(plan);
        for slot in 0..self.domains.slots.len() {
            let id = self.domains.id(slot);
            // A domain of the same id holds the same peerings' routes; if
            // its model routes are the same too, nothing changed.
            if before.domain(id).map(|d| &d.statics) == plan.domain(id).map(|d| &d.statics) {
                continue;
            }
            let mut prefixes = self.domains.prefixes(&self.ribs, slot);
            if let Some(before) = old.get(&id) {
                prefixes.extend(before);
            }
            let batch = self.batch(slot, prefixes.iter());
            if let Err(e) = self.write(slot, &batch, sink) {
                warn!(domain = id, "programming the dataplane: {e:#}");
            }
        }
        for (rib, changed) in registered_changes {
            self.apply(rib, &changed, sink);
        }
        old.keys()
            .filter(|id| self.domains.slot(**id).is_none())
            .copied()
            .collect()
    }

    /// After an adoption: every installed route is written as the RIBs
    /// have it now, so that those no session announced again (and the
    /// domains the plan no longer has) go; returns how many routes went.
    pub(super) fn sweep_unannounced(&mut self, sink: &mut dyn FibSink) -> usize {
        let before = self.fib.route_count();
        for id in self.fib.domain_ids() {
            let Some(slot) = self.domains.slot(id) else {
                self.empty_domain(id, sink);
                continue;
            };
            let prefixes = self.fib.domain_prefixes(id);
            let batch = self.batch(slot, prefixes.iter());
            if let Err(e) = self.write(slot, &batch, sink) {
                warn!(domain = id, "removing stale routes (retried): {e:#}");
            }
        }
        before.saturating_sub(self.fib.route_count())
    }

    /// Removes every route of domains nothing uses any more (break).
    pub(super) fn drop_domains(&mut self, ids: &[u32], sink: &mut dyn FibSink) {
        for id in ids {
            self.empty_domain(*id, sink);
        }
    }

    /// Removes every route of domain `id`, which the plan no longer has;
    /// what the dataplane refuses is retried.
    fn empty_domain(&mut self, id: u32, sink: &mut dyn FibSink) {
        let prefixes = self.fib.domain_prefixes(id);
        let batch = ChangeBatch {
            changes: prefixes.iter().map(|p| (*p, 0)).collect(),
            sets: vec![None],
        };
        let result = self.fib.apply_batch(sink, id, &batch);
        self.install.batch_applied(&result);
        match result {
            Ok(stats) => {
                info!(
                    domain = id,
                    removed = stats.routes_removed,
                    "domain emptied"
                );
                self.fib.drop_domain(id);
                self.unwritten.by_domain.remove(&id);
            }
            Err(e) => {
                warn!(domain = id, "emptying the domain (retried): {e:#}");
                self.install.last_write_error = Some(format!("domain {id}: {e:#}"));
                let left = self.fib.domain_prefixes(id);
                self.unwritten.by_domain.remove(&id);
                self.unwritten.failed(id, left.into_iter(), Instant::now());
            }
        }
        self.install.pending_writes = self.unwritten.len() as u64;
    }

    /// Writes again what the dataplane refused, once its backoff is over
    /// (called every second). `now`: the caller's clock.
    pub(super) fn retry_unwritten(&mut self, sink: &mut dyn FibSink, now: Instant) {
        if self.unwritten.retry_at.is_none_or(|at| now < at) {
            return;
        }
        self.flush(sink);
        let waiting = std::mem::take(&mut self.unwritten.by_domain);
        self.unwritten.retry_at = None;
        self.install.write_retries += 1;
        let count: usize = waiting.values().map(BTreeSet::len).sum();
        for (domain, prefixes) in waiting {
            match self.domains.slot(domain) {
                Some(slot) => {
                    let batch = self.batch(slot, prefixes.iter());
                    if let Err(e) = self.write(slot, &batch, sink) {
                        warn!(domain, "writing again what the dataplane refused: {e:#}");
                    }
                }
                None => self.empty_domain(domain, sink),
            }
        }
        if self.unwritten.by_domain.is_empty() {
            info!(
                routes = count,
                "the dataplane took the writes it had refused: in step with the RIBs again"
            );
            self.unwritten.backoff = Unwritten::FIRST;
            self.unwritten.retry_at = None;
            self.install.last_write_error = None;
        } else {
            self.unwritten.backoff = (self.unwritten.backoff * 2).min(Unwritten::MAX);
            self.unwritten.retry_at = Some(now + self.unwritten.backoff);
            warn!(
                routes = self.unwritten.len(),
                next_in = ?self.unwritten.backoff,
                "the dataplane still refuses some route writes"
            );
        }
        self.install.pending_writes = self.unwritten.len() as u64;
    }
}

#[cfg(test)]
mod tests {
    use std::{collections::BTreeMap, net::Ipv4Addr};

    use bgp::wire::{AsSegment, Origin, PathAttribute, Update};
    use msee_abi::{GroupMember, PeeringKind};

    use super::*;
    use crate::{
        estate::{DomainKey, DomainSpec, PeeringRun},
        rib::{Family, SinkBatchError},
    };

    /// A dataplane that refuses route writes while `refuse` is set.
    #[derive(Default)]
    struct Flaky {
        refuse: bool,
        routes: BTreeMap<(u32, IpNet), u32>,
    }

    impl FibSink for Flaky {
        fn set_group(&mut self, _: u32, _: &[GroupMember]) -> anyhow::Result<()> {
            Ok(())
        }
        fn upsert_route(&mut self, domain: u32, prefix: IpNet, group: u32) -> anyhow::Result<()> {
            if self.refuse {
                anyhow::bail!("ENOMEM (injected)");
            }
            self.routes.insert((domain, prefix), group);
            Ok(())
        }
        fn remove_route(&mut self, domain: u32, prefix: IpNet) -> anyhow::Result<()> {
            if self.refuse {
                anyhow::bail!("ENOMEM (injected)");
            }
            self.routes.remove(&(domain, prefix));
            Ok(())
        }
        fn set_link_state(&mut self, _: u32, _: bool) -> anyhow::Result<()> {
            Ok(())
        }
        fn remove_routes(&mut self, routes: &[(u32, IpNet)]) -> Result<(), SinkBatchError> {
            for (i, (d, p)) in routes.iter().enumerate() {
                self.remove_route(*d, *p).map_err(|error| SinkBatchError {
                    applied: i,
                    failed: i,
                    error,
                })?;
            }
            Ok(())
        }
    }

    const DOMAIN: u32 = 5;

    fn one_peering() -> (Plan, PeeringRef) {
        let pr: PeeringRef = ("c".into(), PeeringType::AzurePrivatePeering);
        let plan = Plan {
            peerings: vec![PeeringRun {
                circuit: "c".into(),
                peering_type: PeeringType::AzurePrivatePeering,
                kind: PeeringKind::Private,
                links: [0, 1],
                domain: DOMAIN,
            }],
            domains: vec![DomainSpec {
                id: DOMAIN,
                key: DomainKey {
                    learned: [pr.clone()].into(),
                    ..Default::default()
                },
                statics: Default::default(),
            }],
            ..Default::default()
        };
        (plan, pr)
    }

    fn announce(prefix: &str) -> Update {
        Update {
            attributes: vec![
                PathAttribute::Origin(Origin::Igp),
                PathAttribute::AsPath(vec![AsSegment::Sequence(vec![65010])]),
                PathAttribute::NextHop(Ipv4Addr::new(192, 168, 100, 129)),
            ],
            nlri: vec![prefix.parse().unwrap()],
            ..Default::default()
        }
    }

    #[test]
    fn refused_writes_are_retried_with_backoff_until_the_dataplane_takes_them() {
        let (plan, pr) = one_peering();
        let mut r = Routing::new(&plan, None);
        let mut dp = Flaky::default();
        let slot = r.rib_of(&pr).unwrap();
        let rib = r.rib_mut(slot).unwrap();
        rib.session_up((0, Family::Ipv4)).unwrap();
        let out = rib
            .update((0, Family::Ipv4), &announce("172.16.0.0/16"))
            .unwrap();
        r.learned(slot, &out.changed);
        dp.refuse = true;
        r.flush(&mut dp);
        assert_eq!(r.install.failed_batches, 1);
        assert_eq!(r.install.pending_writes, 1, "the divergence is visible");
        assert!(
            r.install
                .last_write_error
                .as_deref()
                .is_some_and(|e| e.contains("ENOMEM")),
            "{:?}",
            r.install.last_write_error
        );
        let t0 = Instant::now();
        // Not before the backoff; then again, refused again: backoff doubles.
        r.retry_unwritten(&mut dp, t0);
        assert_eq!(r.install.write_retries, 0);
        r.retry_unwritten(&mut dp, t0 + Duration::from_secs(2));
        assert_eq!(r.install.write_retries, 1);
        assert_eq!(r.install.pending_writes, 1);
        r.retry_unwritten(&mut dp, t0 + Duration::from_secs(3));
        assert_eq!(r.install.write_retries, 1, "backoff now 2 s");
        // The dataplane recovers: the next retry writes the best path of
        // the moment, and the record says all is in step.
        dp.refuse = false;
        r.retry_unwritten(&mut dp, t0 + Duration::from_secs(5));
        assert_eq!(r.install.write_retries, 2);
        assert_eq!(r.install.pending_writes, 0);
        assert_eq!(r.install.last_write_error, None);
        let prefix: IpNet = "172.16.0.0/16".parse().unwrap();
        assert!(dp.routes.contains_key(&(DOMAIN, prefix)));
        assert!(r.fib.route(DOMAIN, prefix).is_some());
    }

    #[test]
    fn a_withdrawal_while_refused_is_what_the_retry_writes() {
        let (plan, pr) = one_peering();
        let mut r = Routing::new(&plan, None);
        let mut dp = Flaky::default();
        let slot = r.rib_of(&pr).unwrap();
        let session = (0, Family::Ipv4);
        let rib = r.rib_mut(slot).unwrap();
        rib.session_up(session).unwrap();
        let out = rib.update(session, &announce("172.16.0.0/16")).unwrap();
        r.learned(slot, &out.changed);
        r.flush(&mut dp);
        let prefix: IpNet = "172.16.0.0/16".parse().unwrap();
        assert!(dp.routes.contains_key(&(DOMAIN, prefix)));
        // The withdrawal is refused; by the retry, the RIB says "gone".
        dp.refuse = true;
        let rib = r.rib_mut(slot).unwrap();
        let out = rib
            .update(
                session,
                &Update {
                    withdrawn: vec![prefix.to_string().parse().unwrap()],
                    ..Default::default()
                },
            )
            .unwrap();
        r.learned(slot, &out.changed);
        r.flush(&mut dp);
        assert_eq!(r.install.pending_writes, 1);
        dp.refuse = false;
        r.retry_unwritten(&mut dp, Instant::now() + Duration::from_secs(2));
        assert!(!dp.routes.contains_key(&(DOMAIN, prefix)));
        assert_eq!(r.fib.route(DOMAIN, prefix), None);
        assert_eq!(r.install.pending_writes, 0);
    }
}
