//! Fault injection at run time: a silent black hole on one interface.
//!
//! While on, the interface drops every frame in both directions (data,
//! ARP, ND, ping, BGP, BFD) and its carrier stays up: only a liveness
//! protocol (BFD, hold timers) notices. Both halves are attached when the
//! switch is made, and stay attached until it is dropped; turning it on or
//! off is one map write per half, so nothing is attached or detached at the
//! critical moment.
//!
//! - Ingress: the `lossy` program in XDP (in front of `xsk` on a sink's
//!   interface, see `Sink::blackhole`; alone on an interface without an XDP
//!   program), or `blackhole_tc` on tcx ingress when the interface already
//!   has an XDP program of someone else's (it then sees only what that
//!   program passes to the stack).
//! - Egress: `blackhole_tc` on tcx egress, first in the chain. It sees what
//!   the kernel stack sends; frames an AF_XDP socket (copy mode) or an XDP
//!   redirect sends out of the interface bypass tc.
//!
//! Each switch is scheduled `LEAD_NS` ahead: both halves hold the same
//! window `[from, until)` of CLOCK_MONOTONIC and compare it with
//! `bpf_ktime_get_ns()` per frame, so the switch happens at one instant on
//! every CPU and in both directions, and that instant is reported.
use std::sync::Mutex;

use anyhow::{Context as _, Result, anyhow, bail};
use aya::{
    Ebpf,
    maps::{Array, Map, MapData, PerCpuArray},
    programs::{LinkOrder, SchedClassifier, TcAttachType, XdpMode, tc::TcAttachOptions},
};
use serde::{Deserialize, Serialize};
use traffic_abi::{
    BLACKHOLE_STAT_DROPPED, BLACKHOLE_STATS, BLACKHOLE_TC_PROGRAM, BLACKHOLE_WINDOW,
    BlackholeWindow, LOSSY_PROGRAM, LOSSY_STAT_BLACKHOLE, LOSSY_STAT_BLACKHOLE_TEST,
    TestFrameFilter, XSK_PROGRAM,
};

use super::{
    ifindex_here,
    xsk::{Lossy, sum_percpu},
};
use msee_sys::monotonic_ns;

/// How far ahead a switch is scheduled: the two map writes take a few
/// microseconds, but a writer on a busy machine may be descheduled for
/// hundreds (then the switch is not exact: see `Flip::exact`).
pub const LEAD_NS: u64 = 1_000_000;

/// One switch of a black hole.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Flip {
    pub ifname: String,
    pub on: bool,
    /// CLOCK_MONOTONIC instant from which every frame is dropped (on) or
    /// passed (off), in both directions.
    pub at_ns: u64,
    /// When the map writes were done. Normally before `at_ns`; if the
    /// writer was descheduled past it, the switch took effect somewhere
    /// between `at_ns` and this.
    pub written_ns: u64,
}

impl Flip {
    /// The switch happened exactly at `at_ns`.
    pub fn exact(&self) -> bool {
        self.written_ns <= self.at_ns
    }
}

/// Where the ingress half runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum IngressHook {
    /// `lossy` in XDP: sees every frame, before any AF_XDP socket.
    Xdp,
    /// `blackhole_tc` on tcx ingress: sees what XDP passes to the stack.
    Tcx,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlackholeCounts {
    /// Frames dropped on the way in.
    pub ingress_dropped: u64,
    /// Of those, test frames (XDP ingress only: tcx does not look).
    pub ingress_test_dropped: Option<u64>,
    /// Frames dropped on the way out.
    pub egress_dropped: u64,
}

/// `blackhole_tc` attached to one direction of an interface.
struct TcHook {
    window: Array<MapData, BlackholeWindow>,
    stats: PerCpuArray<MapData, u64>,
    // Holds the tcx link: dropping the object detaches it.
    _ebpf: Ebpf,
}

impl TcHook {
    /// Attach in the calling thread's namespace.
    fn attach(ifname: &str, dir: TcAttachType) -> Result<Self> {
        let mut ebpf = Ebpf::load(crate::BLACKHOLE_TC_OBJECT)
            .context("loading the blackhole_tc eBPF object")?;
        let window = Array::try_from(
            ebpf.take_map(BLACKHOLE_WINDOW)
                .ok_or_else(|| anyhow!("blackhole_tc has no {BLACKHOLE_WINDOW}"))?,
        )?;
        let stats = PerCpuArray::try_from(
            ebpf.take_map(BLACKHOLE_STATS)
                .ok_or_else(|| anyhow!("blackhole_tc has no {BLACKHOLE_STATS}"))?,
        )?;
        let prog: &mut SchedClassifier = ebpf
            .program_mut(BLACKHOLE_TC_PROGRAM)
            .ok_or_else(|| anyhow!("no program {BLACKHOLE_TC_PROGRAM}"))?
            .try_into()?;
        prog.load().context("loading blackhole_tc")?;
        // First in the chain: nothing else sees a frame the hole drops.
        prog.attach_with_options(ifname, dir, TcAttachOptions::TcxOrder(LinkOrder::first()))
            .with_context(|| format!("attaching blackhole_tc to tcx {dir:?} of {ifname}"))?;
        Ok(Self {
            window,
            stats,
            _ebpf: ebpf,
        })
    }

    fn dropped(&self) -> u64 {
        sum_percpu(&self.stats, BLACKHOLE_STAT_DROPPED)
    }
}

enum Ingress {
    /// The window and counters of a `lossy` (a sink's, or our own).
    Lossy {
        window: Array<MapData, BlackholeWindow>,
        stats: PerCpuArray<MapData, u64>,
        /// Our own `lossy`, attached alone; `None` when it is a sink's.
        own: Option<Lossy>,
    },
    Tc(TcHook),
}

struct Inner {
    ingress: Ingress,
    egress: TcHook,
    window: BlackholeWindow,
    on: bool,
    flips: Vec<Flip>,
}

impl Inner {
    fn write(&mut self, w: BlackholeWindow) -> Result<()> {
        // Egress first: on switch-on, nothing the stack sends after the
        // instant leaves, and ingress follows within the same lead.
        self.egress.window.set(0, w, 0)?;
        match &mut self.ingress {
            Ingress::Lossy { window, .. } => window.set(0, w, 0)?,
            Ingress::Tc(t) => t.window.set(0, w, 0)?,
        }
        Ok(())
    }
}

/// A black-hole switch on one interface (off when made). Detached on drop
/// (a sink's `lossy` is switched off instead: the sink owns it).
pub struct Blackhole {
    netns: Option<String>,
    ifname: String,
    hook: IngressHook,
    inner: Mutex<Inner>,
}

/// Run `f` on a thread inside `netns` (ifnames and ifindexes are per
/// namespace).
fn in_netns<T: Send + 'static>(
    netns: Option<&str>,
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    match netns {
        Some(ns) => msee_sys::netns::on_thread(ns, f)?,
        None => f(),
    }
}

impl Blackhole {
    /// Make a switch on `ifname` in `netns`, an interface without a sink of
    /// this process: `lossy` alone in native XDP for ingress if the
    /// interface has no XDP program, else tcx ingress; tcx egress.
    pub fn attach(netns: Option<&str>, ifname: &str) -> Result<Self> {
        // A sink's xsk would hand test frames to its sockets before a tcx
        // ingress hook saw them: a sink's interface gets its switch from
        // the sink.
        if let Some(id) = super::iface::xdp_prog_id(netns, ifname)? {
            let name = aya::programs::loaded_programs()
                .filter_map(Result::ok)
                .find(|p| p.id() == id)
                .and_then(|p| p.name_as_str().map(str::to_owned));
            if let Some(n) = name.filter(|n| n == XSK_PROGRAM || n == LOSSY_PROGRAM) {
                bail!(
                    "{ifname} has the engine's {n} program (a sink): ask the sink for its black hole (RunConfig::rx_blackhole, RunHandle::blackhole)"
                );
            }
        }
        let name = ifname.to_owned();
        let (ingress, egress, hook) = in_netns(netns, move || {
            let ifindex = ifindex_here(&name)?;
            let egress = TcHook::attach(&name, TcAttachType::Egress)?;
            let xdp = Lossy::load(0, TestFrameFilter::default()).and_then(|mut l| {
                l.attach(ifindex, XdpMode::Driver)?;
                Ok(l)
            });
            let (ingress, hook) = match xdp {
                Ok(lossy) => {
                    let (w, s) = lossy.blackhole_maps()?;
                    (
                        Ingress::Lossy {
                            window: Array::try_from(Map::Array(w))?,
                            stats: PerCpuArray::try_from(Map::PerCpuArray(s))?,
                            own: Some(lossy),
                        },
                        IngressHook::Xdp,
                    )
                }
                Err(e) => {
                    log::info!(
                        "black hole on {name}: XDP ingress not possible ({e:#}); using tcx ingress"
                    );
                    (
                        Ingress::Tc(TcHook::attach(&name, TcAttachType::Ingress)?),
                        IngressHook::Tcx,
                    )
                }
            };
            Ok((ingress, egress, hook))
        })
        .with_context(|| format!("black hole on {ifname}"))?;
        Ok(Self::new(netns, ifname, ingress, egress, hook))
    }

    /// A switch on a sink's interface: ingress through the sink's `lossy`
    /// (in front of its `xsk`), egress through tcx.
    pub(crate) fn on_lossy(netns: Option<&str>, ifname: &str, lossy: &Lossy) -> Result<Self> {
        let (w, s) = lossy.blackhole_maps()?;
        let ingress = Ingress::Lossy {
            window: Array::try_from(Map::Array(w))?,
            stats: PerCpuArray::try_from(Map::PerCpuArray(s))?,
            own: None,
        };
        let name = ifname.to_owned();
        let egress = in_netns(netns, move || TcHook::attach(&name, TcAttachType::Egress))
            .with_context(|| format!("black hole on {ifname}"))?;
        Ok(Self::new(netns, ifname, ingress, egress, IngressHook::Xdp))
    }

    fn new(
        netns: Option<&str>,
        ifname: &str,
        ingress: Ingress,
        egress: TcHook,
        hook: IngressHook,
    ) -> Self {
        Self {
            netns: netns.map(str::to_owned),
            ifname: ifname.to_owned(),
            hook,
            inner: Mutex::new(Inner {
                ingress,
                egress,
                window: BlackholeWindow::default(),
                on: false,
                flips: Vec::new(),
            }),
        }
    }

    pub fn ifname(&self) -> &str {
        &self.ifname
    }

    pub fn netns(&self) -> Option<&str> {
        self.netns.as_deref()
    }

    pub fn ingress_hook(&self) -> IngressHook {
        self.hook
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Switch on (drop everything) or off, `LEAD_NS` from now; returns once
    /// the switch is in effect, with the instant it took effect. Switching
    /// to the state it is in changes nothing and returns the last switch.
    pub fn set(&self, on: bool) -> Result<Flip> {
        self.set_at(on, monotonic_ns() + LEAD_NS)
    }

    /// Switch at `at_ns` (CLOCK_MONOTONIC), or `LEAD_NS` from now if that
    /// is sooner than `LEAD_NS / 10` ahead; returns once in effect.
    pub fn set_at(&self, on: bool, at_ns: u64) -> Result<Flip> {
        let mut g = self.lock();
        if g.on == on {
            return Ok(g.flips.last().cloned().unwrap_or(Flip {
                ifname: self.ifname.clone(),
                on,
                at_ns: 0,
                written_ns: 0,
            }));
        }
        let now = monotonic_ns();
        let at = if at_ns < now + LEAD_NS / 10 {
            now + LEAD_NS
        } else {
            at_ns
        };
        let w = if on {
            BlackholeWindow {
                from_ns: at,
                until_ns: u64::MAX,
            }
        } else {
            BlackholeWindow {
                from_ns: g.window.from_ns,
                until_ns: at,
            }
        };
        g.write(w)
            .with_context(|| format!("switching the black hole on {}", self.ifname))?;
        let written = monotonic_ns();
        g.window = w;
        g.on = on;
        let flip = Flip {
            ifname: self.ifname.clone(),
            on,
            at_ns: at,
            written_ns: written,
        };
        g.flips.push(flip.clone());
        drop(g);
        // Return once in effect.
        loop {
            let now = monotonic_ns();
            if now >= at {
                break;
            }
            std::thread::sleep(std::time::Duration::from_nanos(at - now));
        }
        Ok(flip)
    }

    pub fn on(&self) -> Result<Flip> {
        self.set(true)
    }

    pub fn off(&self) -> Result<Flip> {
        self.set(false)
    }

    pub fn is_on(&self) -> bool {
        self.lock().on
    }

    /// Every switch so far, in order.
    pub fn flips(&self) -> Vec<Flip> {
        self.lock().flips.clone()
    }

    pub fn counts(&self) -> BlackholeCounts {
        let g = self.lock();
        let (ingress_dropped, ingress_test_dropped) = match &g.ingress {
            Ingress::Lossy { stats, .. } => (
                sum_percpu(stats, LOSSY_STAT_BLACKHOLE),
                Some(sum_percpu(stats, LOSSY_STAT_BLACKHOLE_TEST)),
            ),
            Ingress::Tc(t) => (t.dropped(), None),
        };
        BlackholeCounts {
            ingress_dropped,
            ingress_test_dropped,
            egress_dropped: g.egress.dropped(),
        }
    }
}

impl Drop for Blackhole {
    fn drop(&mut self) {
        // A sink's lossy outlives this switch: leave it passing.
        let mut g = self.lock();
        if let Ingress::Lossy { window, own, .. } = &mut g.ingress
            && own.is_none()
        {
            let _ = window.set(0, BlackholeWindow::default(), 0);
        }
    }
}
