//! A reload (SIGHUP, `msee-cli reload`): the configuration is read and
//! planned again, and only the difference is applied, in place:
//! - refused whole (nothing changes) when the files are invalid, the new
//!   plan cannot run (a tag collision, a circuit without its ports...), or
//!   the system refuses a new link or port (what was installed is undone);
//! - circuits and peerings added or removed come and go without disturbing
//!   the others (their links, domains and sessions keep their ids);
//! - sessions whose key, peer AS or addresses changed are restarted;
//! - in place: route limits, BFD timers or BFD on/off, the advertised
//!   VNets and services (with withdrawals), registered public prefixes, and
//!   the bandwidth (policers keep their buckets).
//!
//! New links and domains are written before anything points at them, and
//! old ones removed only after nothing does (make before break).
use std::collections::{BTreeMap, BTreeSet};

use tracing::{info, warn};

use super::{Daemon, load_model};
use crate::{
    api::types::{InPlaceView, ReloadView},
    estate::{self, PeeringRef},
    netlink,
    speaker::{self, Family},
};

impl Daemon {
    pub(super) async fn reload(&mut self) -> Result<ReloadView, String> {
        let file = self
            .settings
            .paths
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ");
        if self.settings.paths.is_empty() {
            return Err(
                "this daemon runs no circuit configuration (start it with --config)".into(),
            );
        }
        let refused = |e: String| format!("{file}: refused, nothing changed:\n{e}");
        let model = load_model(&self.settings.paths).map_err(refused)?;
        // The ports as they are now (carrier, addresses).
        let mut ifaces = BTreeMap::new();
        for name in self.settings.ports.interfaces() {
            let i = netlink::interface(&self.handle, name)
                .await
                .map_err(|e| refused(format!("{e:#}")))?;
            ifaces.insert(name.to_owned(), i);
        }
        let mut ids = self.ids.clone();
        let plan = estate::plan(
            &estate::Inputs {
                model: Some(&model),
                ports: &self.settings.ports,
                ifaces: &ifaces,
                tagged: self.settings.tagged,
                only: &self.settings.only,
                routes: &self.settings.routes,
                bandwidth_override_bps: self.settings.bandwidth_bps,
            },
            &mut ids,
        )
        .map_err(|e| refused(format!("{e:#}")))?;
        let specs = speaker::plan_sessions(&model, &plan, self.settings.max_prefixes);
        for w in &model.warnings {
            warn!("{file}: {w}");
        }

        // 1. New links, down until their neighbours answer, and msee on
        // every port that has one. This is where the system can still say
        // no (an address the kernel refuses, a full map, another XDP
        // program on a port): then this step is undone and the reload
        // refused, before anything running has been touched. New links
        // never reuse a running link's id (see `IdBook::link`).
        let running: BTreeSet<u32> = self.plan.links.iter().map(|l| l.id).collect();
        let mut installed = Vec::new();
        let mut failed = None;
        for spec in plan.links.iter().filter(|l| !running.contains(&l.id)) {
            if let Err(e) = self.install_link(spec).await {
                failed = Some(format!("installing link {}: {e:#}", spec.name));
                break;
            }
            installed.push(spec.id);
        }
        if failed.is_none()
            && let Err(e) = self.attach_ports()
        {
            failed = Some(format!("{e:#}"));
        }
        if let Some(e) = failed {
            for id in installed.into_iter().rev() {
                self.uninstall_link(id, false).await;
            }
            warn!("{file}: reload refused: {e}");
            return Err(refused(e));
        }

        // Everything below rewrites what already runs and cannot be
        // refused by the system any more.
        let before = std::mem::replace(&mut self.plan, plan.clone());
        let old_model = self.model.replace(model);
        self.ids = ids;
        let mut view = ReloadView {
            file,
            notes: plan.notes.clone(),
            ..Default::default()
        };
        let old_circuits: BTreeSet<&str> =
            before.circuits.iter().map(|c| c.name.as_str()).collect();
        let new_circuits: BTreeSet<&str> = plan.circuits.iter().map(|c| c.name.as_str()).collect();
        view.circuits_added = new_circuits
            .difference(&old_circuits)
            .map(std::string::ToString::to_string)
            .collect();
        view.circuits_removed = old_circuits
            .difference(&new_circuits)
            .map(std::string::ToString::to_string)
            .collect();

        // 2. The domains' routes, then the attachments that use them (a
        // link id in both plans is the same link: `IdBook::link`).
        let old_links: BTreeMap<u32, &estate::LinkSpec> =
            before.links.iter().map(|l| (l.id, l)).collect();
        let retired = self
            .routing
            .replan(&before, &plan, self.model.as_ref(), &mut self.msee);
        for spec in &plan.links {
            let Some(old) = old_links.get(&spec.id) else {
                continue;
            };
            if old.domain != spec.domain
                && let Err(e) = self.repoint_link(spec)
            {
                warn!(link = %spec.name, "moving to domain {}: {e:#}", spec.domain);
            }
            if old.police_bps != spec.police_bps {
                for dir in msee_abi::Direction::ALL {
                    if let Err(e) =
                        self.msee
                            .set_policer(spec.id, dir, spec.police_bps.unwrap_or(0), None)
                    {
                        warn!(link = %spec.name, "policer: {e}");
                    }
                }
                view.bandwidth_mbps = spec.police_bps.map(|b| (b / 1_000_000) as u32);
            }
            if let Some(rt) = self.links.by_id.get_mut(&spec.id) {
                rt.spec = spec.clone();
            }
        }
        // 3. Sessions.
        let registered_changed: BTreeSet<PeeringRef> = plan
            .peerings
            .iter()
            .map(super::super::estate::PeeringRun::reference)
            .filter(|pr| {
                super::routing::registered(old_model.as_ref(), pr)
                    != super::routing::registered(self.model.as_ref(), pr)
            })
            .collect();
        self.reload_sessions(specs, &registered_changed, &mut view)
            .await;
        // 4. What is gone: domains nothing points at, then links.
        self.routing.drop_domains(&retired, &mut self.msee);
        let kept: BTreeSet<u32> = plan.links.iter().map(|l| l.id).collect();
        for old in &before.links {
            if !kept.contains(&old.id) {
                self.uninstall_link(old.id, false).await;
            }
        }
        // 5. Advertisements follow the new model.
        self.refresh_model_adverts();
        self.gr_refresh_all();
        self.send_adverts().await;
        self.resolve_pending(std::time::Duration::from_millis(500), false)
            .await;

        view.changed = !(view.circuits_added.is_empty()
            && view.circuits_removed.is_empty()
            && view.restarted.is_empty()
            && view.added.is_empty()
            && view.removed.is_empty()
            && view.in_place.is_empty()
            && view.bandwidth_mbps.is_none());
        info!(circuits_added = ?view.circuits_added, circuits_removed = ?view.circuits_removed,
            restarted = ?view.restarted, added = ?view.added, removed = ?view.removed,
            in_place = view.in_place.len(), "configuration reloaded");
        Ok(view)
    }

    /// Stops the sessions the new plan lacks, restarts those whose identity
    /// changed, starts new ones, and changes the rest in place.
    async fn reload_sessions(
        &mut self,
        specs: Vec<speaker::SessionSpec>,
        registered_changed: &BTreeSet<PeeringRef>,
        view: &mut ReloadView,
    ) {
        if self.sessions.is_none() {
            if specs.is_empty() {
                return;
            }
            match super::sessions::Sessions::start(
                Vec::new(),
                self.settings.timers,
                self.health.clone(),
            ) {
                Ok(s) => self.sessions = Some(s),
                Err(e) => {
                    warn!("starting BGP: {e:#}");
                    return;
                }
            }
        }
        let sessions = self.sessions.as_mut().expect("made above");
        let index: BTreeMap<String, usize> = sessions
            .speaker
            .active()
            .map(|(i, s)| (s.name.clone(), i))
            .collect();
        let keep: BTreeSet<&str> = specs.iter().map(|s| s.name.as_str()).collect();
        let mut bfd_restart: BTreeSet<PeeringRef> = BTreeSet::new();
        for (name, &i) in &index {
            if keep.contains(name.as_str()) {
                continue;
            }
            let old = sessions.speaker.spec(i).clone();
            sessions.speaker.remove(i);
            sessions.rt[i].status = Default::default();
            sessions.rt[i].out.reset();
            if let Some(rib) = self
                .routing
                .rib_of(&(old.circuit.clone(), old.peering_type))
                && let Some(r) = self.routing.rib_mut(rib)
                && let Err(e) = r.session_down((old.link, old.family))
            {
                warn!("{e:#}");
            }
            bfd_restart.insert((old.circuit.clone(), old.peering_type));
            view.removed.push(name.clone());
        }
        for spec in specs {
            let sessions = self.sessions.as_mut().expect("made above");
            let Some(&i) = index.get(&spec.name) else {
                let name = spec.name.clone();
                bfd_restart.insert((spec.circuit.clone(), spec.peering_type));
                match sessions.add(spec) {
                    Ok(_) => view.added.push(name),
                    Err(e) => warn!("starting {name}: {e:#}"),
                }
                continue;
            };
            let old = sessions.speaker.spec(i).clone();
            if old.needs_restart(&spec) {
                let name = spec.name.clone();
                if let Err(e) = sessions.speaker.restart(i, spec) {
                    warn!("restarting {name}: {e:#}");
                    continue;
                }
                sessions.rt[i].out.reset();
                sessions.rt[i].status = super::sessions::SessionStatus {
                    last_down: Some("restarted by a configuration reload".to_owned()),
                    ..Default::default()
                };
                if let Some(rib) = self
                    .routing
                    .rib_of(&(old.circuit.clone(), old.peering_type))
                    && let Some(r) = self.routing.rib_mut(rib)
                    && let Err(e) = r.session_down((old.link, old.family))
                {
                    warn!("{e:#}");
                }
                view.restarted.push(name);
                continue;
            }
            let mut fields = Vec::new();
            if old.max_prefixes != spec.max_prefixes {
                fields.push("maxPrefixes".to_owned());
                let limit = Some(spec.max_prefixes);
                sessions
                    .speaker
                    .send(
                        i,
                        bgp::fsm::Event::SetMaxPrefixes {
                            v4: limit,
                            v6: limit,
                        },
                    )
                    .await;
                sessions.speaker.spec_mut(i).max_prefixes = spec.max_prefixes;
            }
            if old.bfd != spec.bfd {
                fields.push("bfd".to_owned());
                sessions.speaker.spec_mut(i).bfd = spec.bfd;
                if let Some((bfd, j)) = self.bfd_of(i) {
                    match spec.bfd {
                        Some(t) => {
                            bfd.set_config(j, super::bfd::bfd_config(t));
                            bfd.set_admin_down(j, false);
                        }
                        None => bfd.set_admin_down(j, true),
                    }
                }
            }
            let sessions = self.sessions.as_mut().expect("made above");
            sessions.speaker.spec_mut(i).max_advertised = spec.max_advertised;
            if !fields.is_empty() {
                view.in_place.push(InPlaceView {
                    session: spec.name.clone(),
                    fields,
                });
            }
        }
        // Advertisement changes, listed per session.
        let before: BTreeMap<usize, BTreeSet<ipnet::IpNet>> = self
            .sessions
            .as_ref()
            .map(|s| {
                s.speaker
                    .active()
                    .map(|(i, _)| (i, s.rt[i].out.prefixes()))
                    .collect()
            })
            .unwrap_or_default();
        self.refresh_model_adverts();
        if let Some(s) = self.sessions.as_ref() {
            for (i, spec) in s.speaker.active() {
                if before.get(&i) != Some(&s.rt[i].out.prefixes())
                    && !view.added.contains(&spec.name)
                {
                    match view.in_place.iter_mut().find(|v| v.session == spec.name) {
                        Some(v) => v.fields.push("advertisements".into()),
                        None => view.in_place.push(InPlaceView {
                            session: spec.name.clone(),
                            fields: vec!["advertisements".into()],
                        }),
                    }
                }
            }
        }
        // Microsoft peering's registered prefixes changed: the peers
        // re-send their tables so what is newly inside comes.
        let refresh: Vec<(usize, Family, String)> = self
            .sessions
            .as_ref()
            .map(|s| {
                s.speaker
                    .active()
                    .filter(|(i, spec)| {
                        s.rt[*i].status.established
                            && registered_changed
                                .contains(&(spec.circuit.clone(), spec.peering_type))
                    })
                    .map(|(i, spec)| (i, spec.family, spec.name.clone()))
                    .collect()
            })
            .unwrap_or_default();
        for (i, family, name) in refresh {
            let afi = match family {
                Family::Ipv4 => bgp::wire::AFI_IPV4,
                Family::Ipv6 => bgp::wire::AFI_IPV6,
            };
            let s = self.sessions.as_ref().expect("checked");
            s.speaker
                .send(
                    i,
                    bgp::fsm::Event::RequestRouteRefresh {
                        afi,
                        safi: bgp::wire::SAFI_UNICAST,
                    },
                )
                .await;
            view.in_place.push(InPlaceView {
                session: name,
                fields: vec!["advertisedPublicPrefixes".into()],
            });
        }
        // BFD: peerings whose sessions changed get a fresh instance; new
        // peerings their first.
        let running: BTreeSet<PeeringRef> = self
            .plan
            .peerings
            .iter()
            .map(super::super::estate::PeeringRun::reference)
            .collect();
        let have: Vec<PeeringRef> = self
            .sessions
            .as_ref()
            .map(|s| s.bfd.keys().cloned().collect())
            .unwrap_or_default();
        for pr in have {
            if !running.contains(&pr) || bfd_restart.contains(&pr) {
                self.stop_bfd(&pr).await;
            }
        }
        for pr in running {
            let missing = self
                .sessions
                .as_ref()
                .is_some_and(|s| !s.bfd.contains_key(&pr));
            if missing && let Err(e) = self.start_bfd(&pr) {
                warn!("{e:#}");
            }
        }
    }
}
