//! The BGP sessions of every circuit: their events into the RIBs, what each
//! session advertises (the model's routes, and by Global Reach the other
//! circuit's customer's routes), maintenance drain, and the sessions' reaction
//! to BFD and carrier.
use std::{collections::BTreeSet, net::IpAddr, sync::Arc};

use bgp::{
    fsm::{DownReason, PurgeReason},
    transport::SessionEvent,
    wire::{AFI_IPV4, AFI_IPV6, SAFI_UNICAST},
};
use ipnet::IpNet;
use tracing::{info, warn};

use super::Daemon;
use crate::{
    api::types::DrainView,
    estate::{LinkSpec, PeeringRef, domains},
    health::{LinkHealth, Signal},
    rib::adj_out::{AdjRibOut, Advert},
    speaker::{self, DRAIN_PREPEND, Family, SessionSpec, Speaker, Timers},
};

/// What the daemon knows of a session (the FSM's finer states stay in its
/// task).
#[derive(Debug, Default)]
pub(super) struct SessionStatus {
    /// Stopped because its link's BFD went down; restarted when BFD is up.
    pub held_by_bfd: bool,
    /// Stopped because its port lost carrier; restarted when carrier is
    /// back (and BFD does not hold it).
    pub held_by_carrier: bool,
    pub established: bool,
    /// Held after a restart until BFD is up (or [`BFD_FIRST_WAIT`]): a
    /// customer router whose BFD has not yet seen the old daemon go would
    /// otherwise take the coming BFD down for a failure of the new
    /// session, and tear it down (Cease, BFD Down), while graceful restart
    /// keeps it forwarding on a session that is not up.
    pub awaiting_bfd: bool,
    /// The peer's End-of-RIB of the session's family came since it was
    /// last established: the peer's table is complete again.
    pub end_of_rib: bool,
    pub since: Option<std::time::Instant>,
    pub last_down: Option<String>,
    /// Prefixes the peer announced (each announcement, accepted or not),
    /// and those refused, by [`crate::rib::Refusal::label`]: the metrics'
    /// received and refused counts.
    pub prefixes_announced: u64,
    pub prefixes_refused: std::collections::BTreeMap<&'static str, u64>,
}

/// How long sessions wait for BFD after a restart ([`SessionStatus::awaiting_bfd`]).
pub(super) const BFD_FIRST_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// One session as the daemon runs it.
pub(super) struct SessionRt {
    pub status: SessionStatus,
    /// What it advertises.
    pub out: AdjRibOut,
}

impl SessionRt {
    fn new(spec: &SessionSpec) -> Self {
        Self {
            status: SessionStatus::default(),
            out: AdjRibOut::new(spec.family == Family::Ipv6),
        }
    }
}

pub(super) struct Sessions {
    pub speaker: Speaker,
    /// By session index (the speaker's).
    pub rt: Vec<SessionRt>,
    /// BFD of each peering.
    pub bfd: std::collections::BTreeMap<PeeringRef, super::bfd::PeeringBfd>,
}

impl Sessions {
    /// Starts every session. A session's state flips its link from the
    /// session's own task: the IPv4 session speaks for its link (as BFD,
    /// IPv4-only on ExpressRoute); an IPv6 session that fails loses its
    /// routes (stale, then withdrawn) but does not take the link down.
    pub(super) fn start(
        specs: Vec<SessionSpec>,
        timers: Timers,
        health: LinkHealth,
    ) -> anyhow::Result<Self> {
        Self::start_holding(specs, timers, health, false)
    }

    /// [`Sessions::start`]; with `bfd_first` (a restart that adopted its
    /// forwarding state) the IPv4 sessions that run BFD wait for it to be
    /// up (see [`SessionStatus::awaiting_bfd`]).
    pub(super) fn start_holding(
        specs: Vec<SessionSpec>,
        timers: Timers,
        health: LinkHealth,
        bfd_first: bool,
    ) -> anyhow::Result<Self> {
        let held = move |s: &SessionSpec| bfd_first && s.family == Family::Ipv4 && s.bfd.is_some();
        let hook: speaker::Hook = Arc::new(move |link, family, event| {
            if family != Family::Ipv4 {
                return;
            }
            match event {
                SessionEvent::Established(_) => {
                    health.set(link, Signal::Bgp, true);
                }
                // A peer restarting gracefully keeps forwarding: its link
                // stays up while its routes are kept, and goes down if it
                // does not come back within its restart time.
                SessionEvent::DownStale { .. } if keeps_routes(event, family) => {}
                SessionEvent::Down(_) | SessionEvent::DownStale { .. } => {
                    health.set(link, Signal::Bgp, false);
                }
                SessionEvent::PurgeStale {
                    reason: PurgeReason::RestartTimeExpired,
                    ..
                } => {
                    health.set(link, Signal::Bgp, false);
                }
                _ => {}
            }
        });
        let rt = specs
            .iter()
            .map(|spec| {
                let mut rt = SessionRt::new(spec);
                if held(spec) {
                    rt.status.held_by_bfd = true;
                    rt.status.awaiting_bfd = true;
                }
                rt
            })
            .collect();
        Ok(Self {
            speaker: Speaker::start_holding(specs, timers, Some(hook), held)?,
            rt,
            bfd: Default::default(),
        })
    }

    pub(super) fn add(&mut self, spec: SessionSpec) -> anyhow::Result<usize> {
        let rt = SessionRt::new(&spec);
        let i = self.speaker.add(spec)?;
        debug_assert_eq!(i, self.rt.len());
        self.rt.push(rt);
        Ok(i)
    }
}

/// The (AFI, SAFI) of a session's one family.
fn afi_safi(family: Family) -> (u16, u8) {
    match family {
        Family::Ipv4 => (AFI_IPV4, SAFI_UNICAST),
        Family::Ipv6 => (AFI_IPV6, SAFI_UNICAST),
    }
}

/// Whether `event` keeps the routes of a session of `family` through a
/// graceful restart of its peer (RFC 4724).
fn keeps_routes(event: &SessionEvent, family: Family) -> bool {
    matches!(event, SessionEvent::DownStale { families, .. } if families.contains(&afi_safi(family)))
}

fn peering_of(spec: &SessionSpec) -> PeeringRef {
    (spec.circuit.clone(), spec.peering_type)
}

impl Daemon {
    fn sides(&self) -> Vec<(crate::estate::Side, u32)> {
        self.plan
            .links
            .iter()
            .map(|l: &LinkSpec| (l.side.clone(), l.id))
            .collect()
    }

    /// AS 12076 prepends on `link`'s advertisements (drained or not).
    pub(super) fn prepend(&self, link: u32) -> usize {
        let drained = self
            .routing
            .ribs()
            .iter()
            .flatten()
            .any(|r| r.is_drained(link));
        if drained { DRAIN_PREPEND } else { 0 }
    }

    /// The model's advertisements of every session: the VNets in reach with
    /// their region community, the services a route filter selects with
    /// theirs (the same list the routing domains are built from), at most
    /// Azure's cap of them.
    pub(super) fn refresh_model_adverts(&mut self) {
        let Some(model) = &self.model else { return };
        let sides = self.sides();
        let Some(sessions) = self.sessions.as_mut() else {
            return;
        };
        for (i, spec) in sessions
            .speaker
            .active()
            .map(|(i, s)| (i, s.clone()))
            .collect::<Vec<_>>()
        {
            let Some(circuit) = model.circuit(&spec.circuit) else {
                continue;
            };
            let mut notes = Vec::new();
            let routes =
                domains::model_routes(model, circuit, spec.peering_type, &sides, &mut notes);
            let ipv6 = spec.family == Family::Ipv6;
            let mut ours: Vec<(IpNet, Advert)> = routes
                .into_iter()
                .filter(|r| r.prefix.addr().is_ipv6() == ipv6)
                .filter_map(|r| {
                    Some((
                        r.prefix,
                        Advert {
                            as_path: Vec::new(),
                            communities: r.advertised?.iter().map(|c| c.to_u32()).collect(),
                        },
                    ))
                })
                .collect();
            if let Some(limit) = spec.max_advertised
                && ours.len() > limit as usize
            {
                warn!(session = %spec.name, limit, dropped = ours.len() - limit as usize,
                    "VNet prefixes over Azure's limit not advertised");
                ours.truncate(limit as usize);
            }
            sessions.rt[i].out.set_model(ours);
        }
    }

    /// Global Reach: `changed` prefixes of RIB `rib` reach the customers of
    /// its Global Reach peers, with the other customer's path behind AS
    /// 12076 (never further: Global Reach is not transitive).
    fn gr_update(&mut self, rib: usize, changed: &[IpNet]) {
        let targets = self.routing.gr_targets(rib).to_vec();
        if targets.is_empty() || changed.is_empty() {
            return;
        }
        let Some(sessions) = self.sessions.as_mut() else {
            return;
        };
        for target in targets {
            let sources = self.routing.gr_sources(&target).to_vec();
            let mut adverts: Vec<(IpNet, Option<Advert>)> = Vec::with_capacity(changed.len());
            for p in changed {
                let best = sources
                    .iter()
                    .filter_map(|s| self.routing.rib(*s)?.best_path(*p))
                    .min_by_key(|path| path.as_path_len);
                adverts.push((
                    *p,
                    best.map(|path| Advert {
                        as_path: path.as_path.to_vec(),
                        communities: Vec::new(),
                    }),
                ));
            }
            for (i, spec) in sessions
                .speaker
                .active()
                .map(|(i, s)| (i, s.clone()))
                .collect::<Vec<_>>()
            {
                if peering_of(&spec) != target {
                    continue;
                }
                for (p, a) in &adverts {
                    sessions.rt[i].out.set_learned(*p, a.clone());
                }
            }
        }
    }

    /// Every Global Reach advertisement recomputed (after a reload).
    pub(super) fn gr_refresh_all(&mut self) {
        let mut all: Vec<(usize, Vec<IpNet>)> = Vec::new();
        for (slot, rib) in self.routing.ribs().iter().enumerate() {
            if let Some(rib) = rib
                && !self.routing.gr_targets(slot).is_empty()
            {
                all.push((slot, rib.routes_prefixes().into_iter().collect()));
            }
        }
        // Whatever a session learned by Global Reach and no source has now.
        if let Some(sessions) = self.sessions.as_mut() {
            for rt in &mut sessions.rt {
                let stale: Vec<IpNet> = rt.out.prefixes().into_iter().collect();
                for p in stale {
                    rt.out.set_learned(p, None);
                }
            }
        }
        for (slot, prefixes) in all {
            self.gr_update(slot, &prefixes);
        }
    }

    /// Route changes of RIB `rib` other than UPDATEs, written now.
    pub(super) fn rib_changed(&mut self, rib: usize, changed: &BTreeSet<IpNet>) {
        self.routing.apply(rib, changed, &mut self.msee);
        let changed: Vec<IpNet> = changed.iter().copied().collect();
        self.gr_update(rib, &changed);
    }

    /// Sends what changed in each established session's advertisements.
    pub(super) async fn send_adverts(&mut self) {
        let Some(sessions) = self.sessions.as_ref() else {
            return;
        };
        let work: Vec<(usize, IpAddr, u32)> = sessions
            .speaker
            .active()
            .filter(|(i, _)| {
                sessions.rt[*i].status.established && sessions.rt[*i].out.has_changes()
            })
            .map(|(i, s)| (i, s.local, s.link))
            .collect();
        for (i, local, link) in work {
            let prepend = self.prepend(link);
            let sessions = self.sessions.as_mut().expect("checked");
            let updates = sessions.rt[i].out.delta(local, prepend);
            sessions.speaker.send_updates(i, updates).await;
        }
    }

    /// Sends session `i` everything it advertises (it came up, the peer
    /// asked for a refresh, or a drain changed the prepending).
    async fn advertise_all(&mut self, i: usize) {
        let Some(sessions) = self.sessions.as_ref() else {
            return;
        };
        let spec = sessions.speaker.spec(i).clone();
        let prepend = self.prepend(spec.link);
        let sessions = self.sessions.as_mut().expect("checked");
        let updates = sessions.rt[i].out.full(spec.local, prepend);
        sessions.speaker.send_updates(i, updates).await;
    }

    /// A session event, after its link was flipped (see the speaker's
    /// hook): the RIB, the FIB, the advertisements and what the CLI shows.
    pub(super) async fn on_session_event(&mut self, i: usize, event: SessionEvent) {
        let Some(sessions) = self.sessions.as_mut() else {
            return;
        };
        if let SessionEvent::Routes(update) = &event {
            self.routing.install.update_received(update);
        }
        let spec = sessions.speaker.spec(i).clone();
        let Some(rib) = self.routing.rib_of(&peering_of(&spec)) else {
            return;
        };
        let session = (spec.link, spec.family);
        let keeps = keeps_routes(&event, spec.family);
        match event {
            SessionEvent::Established(n) => {
                // The hold flags stay: they say the FSM was told to stop
                // (BFD down, carrier lost) and waits for ManualStart, and
                // that notice may have crossed this event on its way here.
                let st = &mut sessions.rt[i].status;
                st.established = true;
                st.since = Some(std::time::Instant::now());
                info!(session = %spec.name, peer_as = n.peer_as, peer_id = %n.peer_id, hold = n.hold_time, "session established");
                // Room for as many routes as the session may announce: a
                // full table then fills its maps without growing them.
                let limit = spec.max_prefixes as usize;
                let (v4, v6) = match spec.family {
                    Family::Ipv4 => (limit.min(msee_abi::MAX_ROUTES_V4 as usize), 0),
                    Family::Ipv6 => (0, limit.min(msee_abi::MAX_ROUTES_V6 as usize)),
                };
                if let Some(r) = self.routing.rib_mut(rib)
                    && let Err(e) = r.reserve(session, v4 + v6)
                {
                    warn!(session = %spec.name, "{e:#}");
                }
                for &slot in self.routing.domains.fed_by(rib).to_vec().iter() {
                    let domain = self.routing.domains.id(slot);
                    self.routing.fib.reserve(domain, v4, v6);
                }
                // Waiting UPDATE changes first: coming back drops the
                // session's stale paths from the RIB.
                self.routing.flush(&mut self.msee);
                let changed = self.routing.rib_mut(rib).map(|r| r.session_up(session));
                match changed {
                    Some(Ok(changed)) => self.rib_changed(rib, &changed),
                    Some(Err(e)) => warn!(session = %spec.name, "{e:#}"),
                    None => {}
                }
                self.advertise_all(i).await;
                // End-of-RIB after them (with graceful restart only).
                let sessions = self.sessions.as_ref().expect("checked");
                sessions
                    .speaker
                    .send(i, bgp::fsm::Event::InitialUpdateDone)
                    .await;
            }
            SessionEvent::Down(reason) | SessionEvent::DownStale { reason, .. } => {
                // Graceful restart: the routes stay in use, stale, until the
                // peer sends them again or its time runs out (PurgeStale).
                // Otherwise the link was flipped by the hook and the routes
                // follow lazily.
                if let Some(r) = self.routing.rib_mut(rib) {
                    let marked = if keeps {
                        r.session_restarting(session)
                    } else {
                        r.session_down(session)
                    };
                    if let Err(e) = marked {
                        warn!(session = %spec.name, "{e:#}");
                    }
                }
                let rt = &mut sessions.rt[i];
                rt.out.reset();
                rt.status.established = false;
                rt.status.end_of_rib = false;
                rt.status.since = Some(std::time::Instant::now());
                rt.status.last_down = Some(match &reason {
                    DownReason::PrefixLimit(l) => {
                        format!("maximum prefixes ({}) exceeded", l.limit)
                    }
                    other => format!("{other:?}"),
                });
                match reason {
                    DownReason::PrefixLimit(l) => warn!(session = %spec.name, limit = l.limit,
                        "session down: maximum prefixes exceeded, Cease sent; it restarts after a backoff"),
                    other if keeps => warn!(session = %spec.name, reason = ?other,
                        "session down, peer restarting (graceful restart): its routes kept, stale"),
                    other => warn!(session = %spec.name, reason = ?other, "session down"),
                }
            }
            SessionEvent::PurgeStale { afi, safi, reason } => {
                if (afi, safi) != afi_safi(spec.family) {
                    return;
                }
                let changed = self
                    .routing
                    .rib_mut(rib)
                    .map(|r| r.purge_restart_stale(session));
                match changed {
                    Some(Ok(changed)) => {
                        info!(session = %spec.name, ?reason, withdrawn = changed.len(),
                            "stale routes of a restarting peer removed");
                        self.rib_changed(rib, &changed);
                    }
                    Some(Err(e)) => warn!(session = %spec.name, "{e:#}"),
                    None => {}
                }
            }
            SessionEvent::EndOfRib { afi, safi } => {
                info!(session = %spec.name, afi, safi, "peer's End-of-RIB received");
                if (afi, safi) == afi_safi(spec.family) {
                    sessions.rt[i].status.end_of_rib = true;
                }
            }
            SessionEvent::Routes(update) => {
                let outcome = self
                    .routing
                    .rib_mut(rib)
                    .map(|r| r.update(session, &update));
                match outcome {
                    Some(Ok(outcome)) => {
                        let st = &mut sessions.rt[i].status;
                        st.prefixes_announced +=
                            (update.nlri.len() + update.announced_v6().len()) as u64;
                        for (prefix, why) in &outcome.refused {
                            warn!(session = %spec.name, %prefix, "route refused: {why}");
                            *st.prefixes_refused.entry(why.label()).or_default() += 1;
                        }
                        self.routing.learned(rib, &outcome.changed);
                        self.gr_update(rib, &outcome.changed);
                    }
                    Some(Err(e)) => warn!(session = %spec.name, "{e:#}"),
                    None => {}
                }
            }
            SessionEvent::RouteRefreshRequested { .. } => self.advertise_all(i).await,
        }
    }

    /// Sessions held for BFD after a restart whose BFD did not come up
    /// within [`BFD_FIRST_WAIT`] start anyway (the customer may have
    /// stopped running BFD).
    pub(super) async fn release_awaiting_bfd(&mut self) {
        let Some(sessions) = self.sessions.as_mut() else {
            return;
        };
        for i in 0..sessions.rt.len() {
            let st = &mut sessions.rt[i].status;
            if st.awaiting_bfd {
                st.awaiting_bfd = false;
                if st.held_by_bfd && !st.held_by_carrier {
                    st.held_by_bfd = false;
                    warn!(session = %sessions.speaker.spec(i).name,
                        "BFD not up since the restart: BGP session started without it");
                    sessions.speaker.send(i, bgp::fsm::Event::ManualStart).await;
                }
            }
        }
    }

    /// BFD saw the session's link fail (stop the session: Cease / BFD
    /// Down) or come back (start it again).
    pub(super) async fn on_bfd(&mut self, notice: super::bfd::BfdNotice) {
        let Some(sessions) = self.sessions.as_mut() else {
            return;
        };
        let i = notice.session;
        let st = &mut sessions.rt[i].status;
        if notice.up {
            st.awaiting_bfd = false;
            if st.held_by_bfd {
                st.held_by_bfd = false;
                if !st.held_by_carrier {
                    info!(session = %sessions.speaker.spec(i).name, "BFD up: BGP session restarted");
                    sessions.speaker.send(i, bgp::fsm::Event::ManualStart).await;
                }
            }
        } else {
            st.held_by_bfd = true;
            sessions.speaker.send(i, bgp::fsm::Event::BfdDown).await;
        }
    }

    /// The port under `links` lost carrier (stop their sessions at once: the
    /// connections are gone, whatever TCP still believes) or got it back
    /// (start them again, unless BFD still holds them).
    pub(super) async fn on_carrier(&mut self, links: &[u32], up: bool) {
        let Some(sessions) = self.sessions.as_mut() else {
            return;
        };
        let affected: Vec<usize> = sessions
            .speaker
            .active()
            .filter(|(_, s)| links.contains(&s.link))
            .map(|(i, _)| i)
            .collect();
        for i in affected {
            let st = &mut sessions.rt[i].status;
            if !up {
                st.held_by_carrier = true;
                sessions.speaker.send(i, bgp::fsm::Event::CarrierLost).await;
            } else if st.held_by_carrier {
                st.held_by_carrier = false;
                if !st.held_by_bfd {
                    info!(session = %sessions.speaker.spec(i).name, "carrier back: BGP session restarted");
                    sessions.speaker.send(i, bgp::fsm::Event::ManualStart).await;
                }
            }
        }
    }

    /// Maintenance drain of one link ("primary" or "secondary") of a
    /// circuit: the link's routes go to the back of their next-hop groups
    /// (traffic to the customer moves to the other link, make-before-break,
    /// while the link keeps forwarding), and its sessions re-advertise with
    /// AS 12076 prepended so the customer prefers the other link too.
    pub(super) async fn drain(
        &mut self,
        circuit: &str,
        link_name: &str,
        drain: bool,
    ) -> Result<DrainView, String> {
        if self.plan.circuit(circuit).is_none() {
            return Err(format!(
                "unknown circuit {circuit:?} (this daemon runs: {})",
                self.plan
                    .circuits
                    .iter()
                    .map(|c| c.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
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
        // Waiting UPDATE changes first, before the RIBs change under them.
        self.routing.flush(&mut self.msee);
        let mut moved = 0;
        let mut links = Vec::new();
        let peerings: Vec<(PeeringRef, u32)> = self
            .plan
            .peerings
            .iter()
            .filter(|p| p.circuit == circuit)
            .map(|p| (p.reference(), p.links[side]))
            .collect();
        for (pr, link) in peerings {
            links.push(link);
            let Some(rib) = self.routing.rib_of(&pr) else {
                continue;
            };
            let changed = self
                .routing
                .rib_mut(rib)
                .map(|r| r.set_drained(link, drain))
                .transpose()
                .map_err(|e| format!("{e:#}"))?
                .unwrap_or_default();
            moved += changed.len();
            self.rib_changed(rib, &changed);
        }
        let targets: Vec<usize> = self
            .sessions
            .as_ref()
            .map(|s| {
                s.speaker
                    .active()
                    .filter(|(i, spec)| links.contains(&spec.link) && s.rt[*i].status.established)
                    .map(|(i, _)| i)
                    .collect()
            })
            .unwrap_or_default();
        for i in &targets {
            self.advertise_all(*i).await;
        }
        info!(
            circuit,
            link = link_name,
            drain,
            routes = moved,
            sessions = targets.len(),
            "{}",
            if drain {
                "link drained"
            } else {
                "link undrained"
            }
        );
        Ok(DrainView {
            circuit: circuit.to_owned(),
            link: link_name.to_owned(),
            drained: drain,
            routes_repointed: moved,
            sessions_readvertised: targets.len(),
            prepend: if drain { DRAIN_PREPEND } else { 0 },
        })
    }

    /// Withdraws the Adj-RIB-In of sessions that went down (lazily, after
    /// the link-state flip has already moved the traffic).
    pub(super) async fn flush_stale(&mut self) {
        self.routing.flush(&mut self.msee);
        let Some(sessions) = self.sessions.as_ref() else {
            return;
        };
        let all: Vec<(PeeringRef, (u32, Family))> = sessions
            .speaker
            .active()
            .map(|(_, s)| (peering_of(s), (s.link, s.family)))
            .collect();
        for (pr, session) in all {
            let Some(rib) = self.routing.rib_of(&pr) else {
                continue;
            };
            let Some(r) = self.routing.rib_mut(rib) else {
                continue;
            };
            if !r.is_stale(session) {
                continue;
            }
            match r.flush_stale(session) {
                Ok(changed) => {
                    info!(link = session.0, family = ?session.1, withdrawn = changed.len(),
                        "stale routes of a down session withdrawn");
                    self.rib_changed(rib, &changed);
                }
                Err(e) => warn!("{e:#}"),
            }
        }
        self.send_adverts().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn only_a_graceful_loss_of_the_sessions_own_family_keeps_its_routes() {
        let stale = |families| SessionEvent::DownStale {
            reason: DownReason::ConnectionClosed,
            families,
            restart_time: Duration::from_secs(120),
        };
        assert!(keeps_routes(&stale(vec![(1, 1)]), Family::Ipv4));
        assert!(!keeps_routes(&stale(vec![(1, 1)]), Family::Ipv6));
        assert!(keeps_routes(&stale(vec![(1, 1), (2, 1)]), Family::Ipv6));
        assert!(!keeps_routes(&stale(vec![]), Family::Ipv4));
        let down = SessionEvent::Down(DownReason::ConnectionClosed);
        assert!(!keeps_routes(&down, Family::Ipv4));
    }
}
