//! Link health: whether each link may carry traffic, from every source that
//! can tell — neighbour resolution, carrier, the BGP session, BFD. Each
//! source sets its own signal from its own task; the call that changes a
//! link's verdict writes the dataplane's link-state word there and then, so
//! there is no queue between detection and the flip (failover is one map
//! write, whatever the table size).
//!
//! A link carries while its neighbour is resolved, its port has carrier,
//! its BGP session (if it has one) is established, and its BFD session (if
//! it has ever come up) is up. BFD that never came up does not hold a link
//! down: the customer may run without it.
use std::{
    collections::{BTreeMap, VecDeque},
    sync::{Arc, Mutex},
};

use serde::Serialize;
use tracing::{info, warn};

/// Where link-state writes go: the dataplane's [`dataplane::LinkSwitch`], or
/// a recorder in tests.
pub trait LinkWriter: Send {
    fn write(&mut self, link: u32, up: bool) -> anyhow::Result<()>;
}

impl LinkWriter for dataplane::LinkSwitch {
    fn write(&mut self, link: u32, up: bool) -> anyhow::Result<()> {
        Ok(self.set(link, up)?)
    }
}

/// A source of truth about a link.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Signal {
    Neighbour,
    Carrier,
    Bgp,
    Bfd,
}

impl Signal {
    fn describe(self, value: bool) -> &'static str {
        match (self, value) {
            (Signal::Neighbour, true) => "neighbour resolved",
            (Signal::Neighbour, false) => "neighbour unresolved",
            (Signal::Carrier, true) => "carrier up",
            (Signal::Carrier, false) => "carrier lost",
            (Signal::Bgp, true) => "BGP established",
            (Signal::Bgp, false) => "BGP down",
            (Signal::Bfd, true) => "BFD up",
            (Signal::Bfd, false) => "BFD down",
        }
    }
}

/// One change of a link's verdict.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Flip {
    pub up: bool,
    /// The signal change that caused it, e.g. "BFD down".
    pub cause: &'static str,
    /// CLOCK_MONOTONIC, ns: comparable with the packet engine's timestamps
    /// (another process on the same host).
    pub at_mono_ns: u64,
}

/// Flips remembered per link.
const HISTORY: usize = 32;

#[derive(Clone, Debug, Serialize)]
pub struct LinkView {
    pub link: u32,
    pub name: String,
    pub neighbour: bool,
    pub carrier: bool,
    /// `None`: no BGP session on this link.
    pub bgp: Option<bool>,
    /// `None`: no BFD, or BFD has not come up yet.
    pub bfd: Option<bool>,
    pub carries: bool,
    pub flips: u64,
    /// Most recent first.
    pub history: Vec<Flip>,
    /// Every flip since the link was added, by its cause.
    pub flips_by_cause: BTreeMap<&'static str, u64>,
}

#[derive(Debug)]
struct LinkState {
    name: String,
    neighbour: bool,
    carrier: bool,
    bgp: Option<bool>,
    bfd: Option<bool>,
    carries: bool,
    flips: u64,
    history: VecDeque<Flip>,
    flips_by_cause: BTreeMap<&'static str, u64>,
}

impl LinkState {
    fn verdict(&self) -> bool {
        self.neighbour && self.carrier && self.bgp != Some(false) && self.bfd != Some(false)
    }
}

struct Inner {
    writer: Box<dyn LinkWriter>,
    links: BTreeMap<u32, LinkState>,
}

/// Shared by the daemon's tasks (cheap to clone).
#[derive(Clone)]
pub struct LinkHealth {
    inner: Arc<Mutex<Inner>>,
}

impl std::fmt::Debug for LinkHealth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.view()).finish()
    }
}

impl LinkHealth {
    pub fn new(writer: impl LinkWriter + 'static) -> Self {
        Self {
            inner: Arc::new(Mutex::new(Inner {
                writer: Box::new(writer),
                links: BTreeMap::new(),
            })),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic elsewhere must not stop failover: the state stays usable.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Registers a link, not carrying until its signals say so (written
    /// down now). `bgp`: whether a BGP session runs over it.
    pub fn add_link(&self, link: u32, name: &str, carrier: bool, bgp: bool) -> anyhow::Result<()> {
        let mut inner = self.lock();
        inner.links.insert(
            link,
            LinkState {
                name: name.to_owned(),
                neighbour: false,
                carrier,
                bgp: bgp.then_some(false),
                bfd: None,
                carries: false,
                flips: 0,
                history: VecDeque::new(),
                flips_by_cause: BTreeMap::new(),
            },
        );
        inner.writer.write(link, false)
    }

    /// Registers a link a previous instance of the daemon left forwarding
    /// (its entry adopted whole, neighbour included): it goes on as it
    /// was, `carries` (nothing is written). A BGP link that carried is
    /// held up as its session's graceful restart allows, until the session
    /// is back or [`LinkHealth::set`] says otherwise.
    pub fn adopt_link(
        &self,
        link: u32,
        name: &str,
        carrier: bool,
        bgp: bool,
        carries: bool,
    ) -> anyhow::Result<()> {
        let mut inner = self.lock();
        let mut st = LinkState {
            name: name.to_owned(),
            neighbour: true,
            carrier,
            bgp: bgp.then_some(carries),
            bfd: None,
            carries,
            flips: 0,
            history: VecDeque::new(),
            flips_by_cause: BTreeMap::new(),
        };
        // Carrier lost while no daemon ran: the verdict is written now.
        let verdict = st.verdict();
        if verdict != carries {
            inner.writer.write(link, verdict)?;
            st.carries = verdict;
        }
        inner.links.insert(link, st);
        Ok(())
    }

    /// Forgets a link a reload removed (written down first).
    pub fn remove_link(&self, link: u32) -> anyhow::Result<()> {
        let mut inner = self.lock();
        if inner.links.remove(&link).is_some() {
            inner.writer.write(link, false)?;
        }
        Ok(())
    }

    /// Sets one signal of `link`; if the verdict changes, writes the
    /// dataplane at once and returns the flip.
    pub fn set(&self, link: u32, signal: Signal, value: bool) -> Option<Flip> {
        self.apply(link, signal.describe(value), |st| match signal {
            Signal::Neighbour => st.neighbour = value,
            Signal::Carrier => st.carrier = value,
            Signal::Bgp => st.bgp = Some(value),
            // BFD holds a link down only once it has been up.
            Signal::Bfd => {
                st.bfd = if value {
                    Some(true)
                } else {
                    st.bfd.map(|_| false)
                }
            }
        })
    }

    /// BFD no longer speaks for `link` (turned off here, or by the peer:
    /// RFC 5882 §3.2, AdminDown is not a failure): it holds the link
    /// neither down nor up until it comes up again.
    pub fn bfd_unused(&self, link: u32, cause: &'static str) -> Option<Flip> {
        self.apply(link, cause, |st| st.bfd = None)
    }

    fn apply(
        &self,
        link: u32,
        cause: &'static str,
        change: impl FnOnce(&mut LinkState),
    ) -> Option<Flip> {
        let mut guard = self.lock();
        let inner = &mut *guard;
        let Some(st) = inner.links.get_mut(&link) else {
            warn!(link, cause, "signal for an unknown link ignored");
            return None;
        };
        change(st);
        let verdict = st.verdict();
        if verdict == st.carries {
            return None;
        }
        let flip = Flip {
            up: verdict,
            cause,
            at_mono_ns: msee_sys::monotonic_ns(),
        };
        match inner.writer.write(link, verdict) {
            Ok(()) => {
                st.carries = verdict;
                st.flips += 1;
                if st.history.len() == HISTORY {
                    st.history.pop_back();
                }
                st.history.push_front(flip.clone());
                *st.flips_by_cause.entry(cause).or_default() += 1;
                info!(link = %st.name, carries = verdict, cause, "link flipped");
                Some(flip)
            }
            Err(e) => {
                // The verdict stays as written; the next signal retries.
                warn!(link = %st.name, carries = verdict, "writing the link state: {e:#}");
                None
            }
        }
    }

    /// Whether `link` carries traffic now.
    pub fn carries(&self, link: u32) -> bool {
        self.lock().links.get(&link).is_some_and(|s| s.carries)
    }

    pub fn signal(&self, link: u32, signal: Signal) -> Option<bool> {
        let inner = self.lock();
        let st = inner.links.get(&link)?;
        match signal {
            Signal::Neighbour => Some(st.neighbour),
            Signal::Carrier => Some(st.carrier),
            Signal::Bgp => st.bgp,
            Signal::Bfd => st.bfd,
        }
    }

    pub fn view(&self) -> Vec<LinkView> {
        self.lock()
            .links
            .iter()
            .map(|(link, s)| LinkView {
                link: *link,
                name: s.name.clone(),
                neighbour: s.neighbour,
                carrier: s.carrier,
                bgp: s.bgp,
                bfd: s.bfd,
                carries: s.carries,
                flips: s.flips,
                history: s.history.iter().cloned().collect(),
                flips_by_cause: s.flips_by_cause.clone(),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Records every write; can be told to fail.
    #[derive(Clone, Default)]
    struct Recorder {
        writes: Arc<Mutex<Vec<(u32, bool)>>>,
        fail: Arc<Mutex<bool>>,
    }

    impl LinkWriter for Recorder {
        fn write(&mut self, link: u32, up: bool) -> anyhow::Result<()> {
            if *self.fail.lock().unwrap() {
                anyhow::bail!("map write refused");
            }
            self.writes.lock().unwrap().push((link, up));
            Ok(())
        }
    }

    fn health() -> (LinkHealth, Recorder) {
        let rec = Recorder::default();
        let h = LinkHealth::new(rec.clone());
        h.add_link(0, "primary", true, true).unwrap();
        h.add_link(1, "secondary", true, true).unwrap();
        h.add_link(2, "azure", true, false).unwrap();
        (h, rec)
    }

    fn up(h: &LinkHealth, link: u32, bgp: bool) {
        h.set(link, Signal::Neighbour, true);
        if bgp {
            h.set(link, Signal::Bgp, true);
        }
    }

    #[test]
    fn a_link_carries_once_every_signal_agrees() {
        let (h, rec) = health();
        assert_eq!(
            *rec.writes.lock().unwrap(),
            [(0, false), (1, false), (2, false)],
            "links start down"
        );
        assert_eq!(h.set(0, Signal::Neighbour, true), None, "BGP not up yet");
        let flip = h.set(0, Signal::Bgp, true).unwrap();
        assert!(flip.up && flip.cause == "BGP established");
        assert!(h.carries(0));
        // No BGP on the Azure side: the neighbour is enough.
        assert!(h.set(2, Signal::Neighbour, true).unwrap().up);
        assert_eq!(rec.writes.lock().unwrap().len(), 5);
    }

    #[test]
    fn each_source_alone_takes_a_link_down_and_only_its_own_return_brings_it_back() {
        for signal in [Signal::Carrier, Signal::Bgp, Signal::Neighbour, Signal::Bfd] {
            let (h, rec) = health();
            up(&h, 0, true);
            h.set(0, Signal::Bfd, true);
            assert!(h.carries(0));
            let flip = h.set(0, signal, false).unwrap();
            assert!(!flip.up, "{signal:?}");
            assert_eq!(rec.writes.lock().unwrap().last(), Some(&(0, false)));
            // Another source saying "fine" does not undo it.
            for other in [Signal::Carrier, Signal::Bgp, Signal::Neighbour, Signal::Bfd] {
                if other != signal {
                    assert_eq!(h.set(0, other, true), None, "{signal:?} then {other:?}");
                }
            }
            assert!(h.set(0, signal, true).unwrap().up, "{signal:?}");
            assert!(h.carries(0));
            // The secondary never moved.
            assert!(!rec.writes.lock().unwrap().contains(&(1, true)));
        }
    }

    #[test]
    fn bfd_that_never_came_up_does_not_hold_a_link_down() {
        let (h, _) = health();
        up(&h, 0, true);
        assert!(h.carries(0));
        assert_eq!(h.set(0, Signal::Bfd, false), None);
        assert_eq!(h.signal(0, Signal::Bfd), None);
        assert!(h.carries(0));
        h.set(0, Signal::Bfd, true);
        assert_eq!(h.signal(0, Signal::Bfd), Some(true));
        assert!(!h.set(0, Signal::Bfd, false).unwrap().up);
    }

    #[test]
    fn bfd_turned_off_by_the_peer_releases_the_link() {
        let (h, _) = health();
        up(&h, 0, true);
        h.set(0, Signal::Bfd, true);
        assert!(!h.set(0, Signal::Bfd, false).unwrap().up);
        let flip = h.bfd_unused(0, "BFD turned off by the peer").unwrap();
        assert!(flip.up && flip.cause == "BFD turned off by the peer");
        assert_eq!(h.signal(0, Signal::Bfd), None);
        assert!(h.carries(0));
        assert_eq!(h.bfd_unused(0, "again"), None, "nothing to release");
        // Up again later, it speaks for the link again.
        h.set(0, Signal::Bfd, true);
        assert!(!h.set(0, Signal::Bfd, false).unwrap().up);
    }

    #[test]
    fn flips_are_remembered_most_recent_first_and_bounded() {
        let (h, _) = health();
        up(&h, 2, false);
        for i in 0..40 {
            h.set(2, Signal::Carrier, i % 2 == 1);
        }
        let v = h.view();
        let azure = v.iter().find(|l| l.link == 2).unwrap();
        assert_eq!(azure.flips, 41);
        assert_eq!(azure.history.len(), HISTORY);
        assert!(azure.history[0].up && azure.history[0].cause == "carrier up");
        assert!(azure.history[0].at_mono_ns >= azure.history[1].at_mono_ns);
    }

    #[test]
    fn a_failed_write_keeps_the_old_verdict_and_the_next_signal_retries() {
        let (h, rec) = health();
        up(&h, 0, true);
        *rec.fail.lock().unwrap() = true;
        assert_eq!(h.set(0, Signal::Carrier, false), None);
        assert!(h.carries(0), "what the dataplane still has");
        *rec.fail.lock().unwrap() = false;
        assert!(!h.set(0, Signal::Bgp, false).unwrap().up);
        assert!(!h.carries(0));
        assert_eq!(h.set(9, Signal::Carrier, true), None, "unknown link");
    }
}
