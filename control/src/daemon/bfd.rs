//! BFD per peering: every IPv4 session of a peering gets a BFD session
//! (administratively down where the peering has BFD off, so a reload can
//! turn it on or off without a restart). Its state changes flip the link
//! the moment they happen, from the detectors' thread, then the main loop
//! hears of them (to stop or restart the BGP session). One BFD instance per
//! peering: a reload that adds or removes a peering leaves the others'
//! sessions untouched.
use std::{collections::BTreeMap, sync::Arc, time::Duration};

use anyhow::{Context as _, Result};
use tracing::{info, warn};

use super::Daemon;
use crate::{
    estate::PeeringRef,
    health::Signal,
    speaker::{Family, SessionSpec},
};

/// What the main loop hears of BFD: a session's BFD went down (not by the
/// peer's choice) or came up. The link flip has already happened.
#[derive(Debug)]
pub(super) struct BfdNotice {
    /// The BGP session over the same link.
    pub session: usize,
    pub up: bool,
}

/// One peering's BFD sessions.
pub(super) struct PeeringBfd {
    pub bfd: Arc<bfd::transport::Bfd>,
    /// BGP session index -> BFD session index in `bfd`.
    pub of_session: BTreeMap<usize, usize>,
}

/// BFD session timers from the model's: the same interval both ways.
pub(super) fn bfd_config(t: circuit::model::BfdTimers) -> bfd::Config {
    let interval = Duration::from_millis(u64::from(t.interval_ms));
    bfd::Config {
        desired_min_tx: interval,
        required_min_rx: interval,
        detect_mult: t.multiplier,
    }
}

/// ExpressRoute's default, for a session that starts administratively down.
const DEFAULT_TIMERS: circuit::model::BfdTimers = circuit::model::BfdTimers {
    interval_ms: 300,
    multiplier: 3,
};

impl Daemon {
    /// Starts BFD for every peering with sessions.
    pub(super) fn start_bfd_all(&mut self) -> Result<()> {
        let peerings: Vec<PeeringRef> = self
            .plan
            .peerings
            .iter()
            .map(super::super::estate::PeeringRun::reference)
            .collect();
        for pr in peerings {
            self.start_bfd(&pr)?;
        }
        Ok(())
    }

    /// Starts BFD for one peering's IPv4 sessions.
    pub(super) fn start_bfd(&mut self, pr: &PeeringRef) -> Result<()> {
        let Some(sessions) = self.sessions.as_mut() else {
            return Ok(());
        };
        let mine: Vec<(usize, SessionSpec)> = sessions
            .speaker
            .active()
            .filter(|(_, s)| s.family == Family::Ipv4 && (s.circuit.clone(), s.peering_type) == *pr)
            .map(|(i, s)| (i, s.clone()))
            .collect();
        if mine.is_empty() {
            return Ok(());
        }
        let mut peers = Vec::new();
        let mut owners = Vec::new();
        let mut of_session = BTreeMap::new();
        for (i, s) in &mine {
            of_session.insert(*i, peers.len());
            let ifname = self
                .links
                .by_id
                .get(&s.link)
                .map(|l| l.spec.iface.name.clone());
            peers.push(bfd::transport::PeerConfig {
                name: s.name.clone(),
                local: s.local,
                peer: s.peer,
                ifname,
                session: bfd_config(s.bfd.unwrap_or(DEFAULT_TIMERS)),
            });
            owners.push((*i, s.link));
        }
        let names: Vec<String> = peers.iter().map(|p| p.name.clone()).collect();
        let (bfd, mut events) = {
            // Its sockets and task belong to the detectors' runtime.
            let _in_detectors = self.detectors.enter();
            bfd::transport::Bfd::start(peers)
                .with_context(|| format!("starting BFD for {} {:?}", pr.0, pr.1))?
        };
        for (j, (_, s)) in mine.iter().enumerate() {
            if s.bfd.is_none() {
                bfd.set_admin_down(j, true);
            }
        }
        let bfd = Arc::new(bfd);
        // Weak: the last strong handle is the daemon's, so dropping it (a
        // reload removed the peering) stops the sessions and this task.
        let status = Arc::downgrade(&bfd);
        let health = self.health.clone();
        let notices = self.bfd_tx.clone();
        self.detectors.spawn(async move {
            while let Some(ev) = events.recv().await {
                let (session, link) = owners[ev.session];
                let name = &names[ev.session];
                if ev.to == bfd::State::Up {
                    info!(session = %name, "BFD up");
                    health.set(link, Signal::Bfd, true);
                    let _ = notices.send(BfdNotice { session, up: true });
                } else if ev.to == bfd::State::AdminDown {
                    // Turned off here (a reload): BFD stops speaking for the link.
                    info!(session = %name, "BFD turned off");
                    health.bfd_unused(link, "BFD turned off");
                } else if ev.from == bfd::State::Up {
                    // RFC 5882 §3.2: the peer turning BFD off is not a failure.
                    // (The status is published before the event is sent.)
                    let remote = status
                        .upgrade()
                        .and_then(|b| b.status().get(ev.session).map(|s| s.remote_state));
                    if remote == Some(bfd::State::AdminDown) {
                        info!(session = %name, "BFD turned off by the peer: not a failure");
                        health.bfd_unused(link, "BFD turned off by the peer");
                        continue;
                    }
                    warn!(session = %name, diag = %ev.diag, to = %ev.to, "BFD down: link down, BGP session stopped");
                    health.set(link, Signal::Bfd, false);
                    let _ = notices.send(BfdNotice { session, up: false });
                }
            }
        });
        let sessions = self.sessions.as_mut().expect("checked");
        sessions
            .bfd
            .insert(pr.clone(), PeeringBfd { bfd, of_session });
        Ok(())
    }

    /// Stops a peering's BFD (a reload removed the peering): its peers see
    /// AdminDown.
    pub(super) async fn stop_bfd(&mut self, pr: &PeeringRef) {
        let Some(sessions) = self.sessions.as_mut() else {
            return;
        };
        if let Some(p) = sessions.bfd.remove(pr) {
            match Arc::try_unwrap(p.bfd) {
                Ok(bfd) => bfd.shutdown().await,
                Err(_) => warn!("BFD of {} {:?} still in use: dropped", pr.0, pr.1),
            }
        }
    }

    /// The BFD session of BGP session `i`, if it has one.
    pub(super) fn bfd_of(&self, i: usize) -> Option<(&Arc<bfd::transport::Bfd>, usize)> {
        let sessions = self.sessions.as_ref()?;
        let spec = sessions.speaker.spec(i);
        let p = sessions
            .bfd
            .get(&(spec.circuit.clone(), spec.peering_type))?;
        Some((&p.bfd, *p.of_session.get(&i)?))
    }
}
