//! The peerings' RIBs, the routing domains they feed and the FIB: every
//! route change (an UPDATE, a session going down, a drain, a reload) becomes
//! best-path changes in each domain that holds the peering's routes, written
//! make-before-break.
use std::collections::{BTreeMap, BTreeSet};

use circuit::{Model, model::PeeringType};
use dataplane::Msee;
use ipnet::IpNet;
use tracing::{info, warn};

use crate::{
    estate::{PeeringRef, Plan},
    rib::{ChangeBatch, Fib, InstallRecord, PendingChanges, Rib, SetTable, domains::Domains},
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
    pub fn new(plan: &Plan, model: Option<&Model>) -> Self {
        let mut r = Self {
            ribs: Vec::new(),
            rib_slot: BTreeMap::new(),
            domains: Domains::default(),
            fib: Fib::new(0),
            pending: PendingChanges::default(),
            install: InstallRecord::default(),
            gr_sources: BTreeMap::new(),
            gr_targets: BTreeMap::new(),
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

    pub fn rib_of(&self, pr: &PeeringRef) -> Option<usize> {
        self.rib_slot.get(pr).copied()
    }

    pub fn rib(&self, slot: usize) -> Option<&Rib> {
        self.ribs.get(slot)?.as_ref()
    }

    pub fn rib_mut(&mut self, slot: usize) -> Option<&mut Rib> {
        self.ribs.get_mut(slot)?.as_mut()
    }

    pub fn ribs(&self) -> &[Option<Rib>] {
        &self.ribs
    }

    /// The peerings whose customers learn RIB `slot`'s routes by Global
    /// Reach.
    pub fn gr_targets(&self, slot: usize) -> &[PeeringRef] {
        self.gr_targets.get(&slot).map_or(&[], Vec::as_slice)
    }

    /// The RIB slots whose routes `pr`'s customer learns by Global Reach.
    pub fn gr_sources(&self, pr: &PeeringRef) -> &[usize] {
        self.gr_sources.get(pr).map_or(&[], Vec::as_slice)
    }

    /// Writes every domain's routes (at start: the model's and `--route`'s).
    pub fn program_all(&mut self, msee: &mut Msee) -> anyhow::Result<()> {
        for slot in 0..self.domains.slots.len() {
            let prefixes = self.domains.prefixes(&self.ribs, slot);
            let batch = self.batch(slot, prefixes.iter());
            self.write(slot, &batch, msee)?;
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
    pub fn learned(&mut self, rib: usize, changed: &[IpNet]) {
        for &slot in self.domains.fed_by(rib) {
            let domains = &self.domains;
            let ribs = &self.ribs;
            self.pending.add(
                slot,
                changed.iter().map(|p| (*p, domains.best(ribs, slot, *p))),
            );
        }
    }

    pub fn pending_full(&self) -> bool {
        self.pending.is_full()
    }

    /// Route changes other than UPDATEs (a session's stale routes, a drain,
    /// registered prefixes): written now, after whatever UPDATEs left
    /// waiting (which callers write before they change a RIB).
    pub fn apply(&mut self, rib: usize, changed: &BTreeSet<IpNet>, msee: &mut Msee) {
        self.flush(msee);
        if changed.is_empty() {
            return;
        }
        for slot in self.domains.fed_by(rib).to_vec() {
            let batch = self.batch(slot, changed.iter());
            if let Err(e) = self.write(slot, &batch, msee) {
                warn!("programming the dataplane: {e:#}");
            }
        }
    }

    /// Writes the changes that waited.
    pub fn flush(&mut self, msee: &mut Msee) {
        for (slot, batch) in self.pending.take() {
            if let Err(e) = self.write(slot, &batch, msee) {
                warn!("programming the dataplane: {e:#}");
            }
        }
    }

    fn write(&mut self, slot: usize, batch: &ChangeBatch, msee: &mut Msee) -> anyhow::Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        let domain = self.domains.id(slot);
        let result = self.fib.apply_batch(msee, domain, batch);
        self.install.batch_applied(&result);
        let stats = result?;
        // One line per route only when asked for: a full table is a million
        // lines.
        if tracing::enabled!(tracing::Level::DEBUG) {
            for (prefix, hops) in batch.iter() {
                match hops {
                    Some(h) if h.is_out_of_reach() => {
                        info!(domain, %prefix, "route installed: out of reach")
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
    pub fn replan(
        &mut self,
        before: &Plan,
        plan: &Plan,
        model: Option<&Model>,
        msee: &mut Msee,
    ) -> Vec<u32> {
        self.flush(msee);
        let mut registered_changes: Vec<(usize, BTreeSet<IpNet>)> = Vec::new();
        let keep: BTreeSet<PeeringRef> = plan.peerings.iter().map(|p| p.reference()).collect();
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
            if let Err(e) = self.write(slot, &batch, msee) {
                warn!(domain = id, "programming the dataplane: {e:#}");
            }
        }
        for (rib, changed) in registered_changes {
            self.apply(rib, &changed, msee);
        }
        old.keys()
            .filter(|id| self.domains.slot(**id).is_none())
            .copied()
            .collect()
    }

    /// Removes every route of domains nothing uses any more (break).
    pub fn drop_domains(&mut self, ids: &[u32], msee: &mut Msee) {
        for id in ids {
            let prefixes = self.fib.domain_prefixes(*id);
            let batch = ChangeBatch {
                changes: prefixes.into_iter().map(|p| (p, 0)).collect(),
                sets: vec![None],
            };
            match self.fib.apply_batch(msee, *id, &batch) {
                Ok(stats) => {
                    info!(
                        domain = id,
                        removed = stats.routes_removed,
                        "domain emptied"
                    );
                    self.fib.drop_domain(*id);
                }
                Err(e) => warn!(domain = id, "emptying the domain: {e:#}"),
            }
        }
    }
}
