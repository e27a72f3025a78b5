//! Failover rehearsal, shared by the failover tests, the benchmark and the
//! demo: the daemon with BGP and BFD on both links, FRR as the customer
//! router (zebra + bfdd + bgpd, its BGP sessions tied to BFD as a customer
//! configures them), and the packet engine streaming from the VNet host to
//! the customer over both links (the MSEE spreads the flows by hash). A
//! scenario fails the primary, waits for the MSEE to move its flows, brings
//! the primary back, waits for the MSEE to use it again, and measures every
//! packet of it.
use std::{path::PathBuf, time::Duration};

use lab::{IF_AZURE_PEER, IF_PRIMARY, IF_SECONDARY};
use msee_sys::monotonic_ns;
use serde::Serialize;
use traffic::{
    pacing::Rate,
    run::{self, Endpoint, RunConfig, RunHandle, RunReport},
};

use crate::{
    bgp_lab::{BgpLab, CUSTOMER_HOST, CUSTOMER_NET, circuit_toml_with, wait_for},
    frr::{Frr, bfdd_conf, customer_conf_bfd},
};

/// How the primary fails.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Scenario {
    /// The customer side of the primary goes down: the MSEE port loses
    /// carrier (restored by bringing it up).
    CarrierLoss,
    /// The primary drops everything both ways with its carrier up: only
    /// BFD can see it (restored by ending the black hole).
    SilentBlackhole,
    /// The customer router shuts the primary's BGP session down
    /// (NOTIFICATION Cease; restored by `no neighbor shutdown`).
    BgpTeardown,
}

impl Scenario {
    pub const ALL: [Scenario; 3] = [
        Scenario::CarrierLoss,
        Scenario::SilentBlackhole,
        Scenario::BgpTeardown,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Scenario::CarrierLoss => "primary loses carrier",
            Scenario::SilentBlackhole => "primary black-holes silently (BFD)",
            Scenario::BgpTeardown => "customer tears the primary's BGP session down",
        }
    }

    /// The outage the issue allows for this failure, with BFD at
    /// `bfd_interval_ms` (x3): carrier and BGP within 10 ms, a silent
    /// failure within three intervals plus 10 ms.
    pub fn outage_bound_ms(self, bfd_interval_ms: u32, multiplier: u8) -> f64 {
        match self {
            Scenario::SilentBlackhole => f64::from(bfd_interval_ms) * f64::from(multiplier) + 10.0,
            Scenario::CarrierLoss | Scenario::BgpTeardown => 10.0,
        }
    }
}

/// What one rehearsal measured.
#[derive(Clone, Debug, Serialize)]
pub struct Outcome {
    pub scenario: Scenario,
    /// CLOCK_MONOTONIC of the failure and of the MSEE's flips.
    pub failed_at_ns: u64,
    pub flipped_down_at_ns: u64,
    pub flip_down_cause: String,
    pub restored_at_ns: u64,
    pub flipped_up_at_ns: u64,
    /// Failure to the MSEE moving the primary's flows, from its own clock.
    pub detection_ms: f64,
    /// The primary's flows: count, and their loss-derived outage (lost /
    /// offered rate, RFC 6201): mean of the class and worst stream.
    pub failed_streams: usize,
    pub outage_ms: f64,
    pub outage_ms_max: f64,
    pub failed_lost: u64,
    /// The secondary's flows: count and packets lost (must be none).
    pub surviving_streams: usize,
    pub surviving_lost: u64,
    /// Packets lost by any flow after the primary was back up (must be
    /// none: make before break), and how many flows it carried at the end.
    pub lost_after_return: u64,
    pub returned_streams: usize,
    /// Packets the lab itself dropped on the way in or out of the MSEE
    /// (a veth ring or the sink's socket overflowing while a busy machine
    /// kept their CPU away): then the run measured the machine, not the
    /// failover. `None` when nothing was dropped outside the MSEE.
    pub disturbed: Option<String>,
    pub sent: u64,
    pub received: u64,
}

impl Outcome {
    pub fn summary(&self) -> String {
        format!(
            "{}: detected and moved in {:.1} ms ({}); primary's {} flows out for {:.1} ms (worst {:.1} ms, {} packets); secondary's {} flows lost {}; after the return lost {}, {} flows back on the primary ({} sent, {} received)",
            self.scenario.name(),
            self.detection_ms,
            self.flip_down_cause,
            self.failed_streams,
            self.outage_ms,
            self.outage_ms_max,
            self.failed_lost,
            self.surviving_streams,
            self.surviving_lost,
            self.lost_after_return,
            self.returned_streams,
            self.sent,
            self.received
        ) + &self
            .disturbed
            .as_ref()
            .map(|d| format!("; DISTURBED: {d}"))
            .unwrap_or_default()
    }
}

/// Drops outside the MSEE during a run: on the generator's interface (veth
/// ring full), on the sink's interfaces, or in the sink's sockets.
pub fn disturbance(report: &RunReport) -> Option<String> {
    let mut what = Vec::new();
    if report.tx_if.tx_dropped > 0 {
        what.push(format!(
            "{} dropped leaving the generator's interface",
            report.tx_if.tx_dropped
        ));
    }
    for rx in &report.rx {
        if let Some(c) = &rx.counters
            && c.rx_dropped > 0
        {
            what.push(format!(
                "{} dropped arriving on {}",
                c.rx_dropped, rx.ifname
            ));
        }
        let s = &rx.socket;
        let sink = s.rx_dropped + s.rx_ring_full + s.rx_fill_ring_empty_descs;
        if sink > 0 {
            what.push(format!(
                "{sink} dropped by the sink's socket on {}",
                rx.ifname
            ));
        }
    }
    (!what.is_empty()).then(|| what.join(", "))
}

/// The lab of a rehearsal. Drops FRR first, then the daemon and the lab.
pub struct FailoverLab {
    pub frr: Frr,
    pub lab: BgpLab,
    pub bfd_interval_ms: u32,
    pub bfd_multiplier: u8,
}

impl FailoverLab {
    pub fn up(tag: &str, bfd_interval_ms: u32, bfd_multiplier: u8) -> Self {
        Self::up_named(&crate::unique_prefix(tag), bfd_interval_ms, bfd_multiplier)
    }

    /// With namespaces `<prefix>-onprem`, `<prefix>-msee`, `<prefix>-azure`.
    pub fn up_named(prefix: &str, bfd_interval_ms: u32, bfd_multiplier: u8) -> Self {
        let lab = BgpLab::up_named(
            prefix,
            &circuit_toml_with(&format!(
                "bfd = {{ intervalMs = {bfd_interval_ms}, multiplier = {bfd_multiplier} }}"
            )),
        );
        let dir = lab.dir.join("frr");
        std::fs::create_dir_all(&dir).unwrap();
        let frr = Frr::start_with_bfd(
            &lab.topo.ns_onprem(),
            &customer_conf_bfd(&lab.topo, &dir.join("bgpd.log")),
            &bfdd_conf(&dir.join("bfdd.log"), bfd_interval_ms, bfd_multiplier),
            &dir,
        );
        Self {
            frr,
            lab,
            bfd_interval_ms,
            bfd_multiplier,
        }
    }

    pub fn dir(&self) -> PathBuf {
        self.lab.dir.clone()
    }

    /// Both logs, for failure messages.
    pub fn ctx(&self, what: &str) -> String {
        self.lab.ctx(what, &self.frr.log())
    }

    /// msee-cli's view of link `name`.
    pub fn link(&self, name: &str) -> serde_json::Value {
        self.lab
            .cli(&["links"])
            .as_array()
            .and_then(|l| l.iter().find(|l| l["name"] == name).cloned())
            .unwrap_or_default()
    }

    /// Waits (polling every 10 ms) until link `name` carries or not;
    /// returns its last flip (time, cause).
    pub fn wait_carries(
        &self,
        name: &str,
        carries: bool,
        timeout: Duration,
    ) -> Result<(u64, String), String> {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let l = self.link(name);
            if l["carries"] == carries {
                let flip = &l["history"][0];
                return Ok((
                    flip["at_mono_ns"].as_u64().unwrap_or(0),
                    flip["cause"].as_str().unwrap_or("").to_owned(),
                ));
            }
            if std::time::Instant::now() > deadline {
                return Err(self.ctx(&format!(
                    "link {name} did not become carries={carries} within {timeout:?}: {l}"
                )));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Both links carry: both IPv4 sessions and their BFD up, the
    /// customer's prefix on both.
    pub fn wait_ready(&self) -> Result<(), String> {
        wait_for(
            "both links carrying with BGP and BFD up",
            Duration::from_secs(40),
            || {
                ["primary", "secondary"].iter().all(|l| {
                    let v = self.link(l);
                    v["carries"] == true && v["bgp"] == true && v["bfd"] == true
                }) && self.lab.installed_on_both(CUSTOMER_NET)
            },
        )
        .map_err(|e| self.ctx(&e))
    }

    /// A stream from the VNet host to the customer host: `flows` flows at
    /// `pps` in all, bounded by `max`, received on both customer links, with
    /// a black-hole switch on each.
    pub fn stream(&self, pps: f64, flows: u16, max: Duration) -> anyhow::Result<RunHandle> {
        let topo = &self.lab.topo;
        let mut cfg = RunConfig::new(
            Endpoint::new(Some(&topo.ns_azure()), IF_AZURE_PEER),
            vec![
                Endpoint::new(Some(&topo.ns_onprem()), IF_PRIMARY),
                Endpoint::new(Some(&topo.ns_onprem()), IF_SECONDARY),
            ],
            topo.vnet_host.into(),
            CUSTOMER_HOST.into(),
            Rate::Pps(pps),
            (pps * max.as_secs_f64()) as u64,
            max,
        );
        cfg.flows = flows;
        cfg.rx_blackhole = true;
        run::start(&cfg)
    }

    /// Fails the primary as `scenario` says, at the engine's clock; returns
    /// when the failure took effect.
    fn fail(&self, h: &RunHandle, scenario: Scenario) -> Result<u64, String> {
        let topo = &self.lab.topo;
        match scenario {
            Scenario::CarrierLoss => {
                let at = monotonic_ns();
                lab::ip_ns_urgent(&topo.ns_onprem(), &["link", "set", IF_PRIMARY, "down"])
                    .map_err(|e| format!("{e:#}"))?;
                h.event_at("primary carrier down", at);
                Ok(at)
            }
            Scenario::SilentBlackhole => {
                let flip = h
                    .blackhole(IF_PRIMARY)
                    .ok_or("no black-hole switch on the primary")?
                    .on()
                    .map_err(|e| format!("{e:#}"))?;
                Ok(flip.at_ns)
            }
            Scenario::BgpTeardown => {
                let at = monotonic_ns();
                let out = self.frr.vtysh(&[
                    "configure terminal",
                    "router bgp 65010",
                    &format!("neighbor {} shutdown", topo.primary.msee),
                ]);
                if out.contains("% ") {
                    return Err(format!("FRR refused the shutdown: {out}"));
                }
                h.event_at("customer shuts the primary's BGP session", at);
                Ok(at)
            }
        }
    }

    fn restore(&self, h: &RunHandle, scenario: Scenario) -> Result<u64, String> {
        let topo = &self.lab.topo;
        match scenario {
            Scenario::CarrierLoss => {
                let at = monotonic_ns();
                lab::ip_ns_urgent(&topo.ns_onprem(), &["link", "set", IF_PRIMARY, "up"])
                    .map_err(|e| format!("{e:#}"))?;
                h.event_at("primary carrier up", at);
                Ok(at)
            }
            Scenario::SilentBlackhole => h
                .blackhole(IF_PRIMARY)
                .ok_or("no black-hole switch on the primary")?
                .off()
                .map(|f| f.at_ns)
                .map_err(|e| format!("{e:#}")),
            Scenario::BgpTeardown => {
                let at = monotonic_ns();
                let out = self.frr.vtysh(&[
                    "configure terminal",
                    "router bgp 65010",
                    &format!("no neighbor {} shutdown", topo.primary.msee),
                ]);
                if out.contains("% ") {
                    return Err(format!("FRR refused: {out}"));
                }
                h.event_at("customer restores the primary's BGP session", at);
                Ok(at)
            }
        }
    }

    /// One rehearsal: stream, fail, wait for the MSEE to move the flows,
    /// hold, restore, wait for the MSEE to use the primary again, stream on
    /// for a second, and measure. `pps` over `flows` flows.
    pub fn rehearse(
        &self,
        scenario: Scenario,
        pps: f64,
        flows: u16,
    ) -> Result<(Outcome, RunReport), String> {
        self.rehearse_telling(scenario, pps, flows, Duration::from_millis(500), &|_| {})
    }

    /// [`FailoverLab::rehearse`], holding the failure for `hold` after the
    /// MSEE moved the flows, and telling `tell` each step as it happens
    /// (the demo prints them).
    pub fn rehearse_telling(
        &self,
        scenario: Scenario,
        pps: f64,
        flows: u16,
        hold: Duration,
        tell: &dyn Fn(&str),
    ) -> Result<(Outcome, RunReport), String> {
        self.wait_ready()?;
        let h = self
            .stream(pps, flows, Duration::from_secs(90))
            .map_err(|e| format!("starting the stream: {e:#}"))?;
        // A second of steady traffic over both links first.
        if !h.wait_received(pps as u64, Duration::from_secs(5)) {
            return Err(self.ctx("the stream did not get going"));
        }
        let before = (
            h.received_on(IF_PRIMARY).unwrap_or(0),
            h.received_on(IF_SECONDARY).unwrap_or(0),
        );
        std::thread::sleep(Duration::from_secs(1));
        tell(&format!(
            "traffic over both links: primary {} packets/s, secondary {} packets/s",
            h.received_on(IF_PRIMARY).unwrap_or(0) - before.0,
            h.received_on(IF_SECONDARY).unwrap_or(0) - before.1
        ));
        tell(&format!("the primary fails: {}", scenario.name()));
        let failed_at = self.fail(&h, scenario)?;
        let (flipped_down_at, flip_down_cause) =
            self.wait_carries("primary", false, Duration::from_secs(10))?;
        h.event_at("MSEE moved the primary's flows", flipped_down_at);
        tell(&format!(
            "the MSEE moved the primary's flows to the secondary after {:.1} ms ({flip_down_cause})",
            flipped_down_at.saturating_sub(failed_at) as f64 / 1e6
        ));
        std::thread::sleep(hold);
        let restored_at = self.restore(&h, scenario)?;
        tell("the primary is repaired");
        let (flipped_up_at, cause) = self.wait_carries("primary", true, Duration::from_secs(40))?;
        h.event_at("primary up again", flipped_up_at);
        // The flows return once the customer's route is back on the
        // primary too (the customer re-advertises it on the new session).
        wait_for(
            "the customer's route on both links again",
            Duration::from_secs(40),
            || self.lab.installed_on_both(CUSTOMER_NET),
        )
        .map_err(|e| self.ctx(&e))?;
        let rerouted_at = monotonic_ns();
        h.event_at("flows back on the primary", rerouted_at);
        tell(&format!(
            "the primary is up again {:.2} s later ({cause}); its flows are back {:.2} s after that, when the customer's route is",
            flipped_up_at.saturating_sub(restored_at) as f64 / 1e9,
            rerouted_at.saturating_sub(flipped_up_at) as f64 / 1e9
        ));
        std::thread::sleep(Duration::from_secs(1));
        h.stop();
        let report = h.join().map_err(|e| format!("the stream: {e:#}"))?;
        let failed = report.carried_by(failed_at, IF_PRIMARY);
        let surviving = report.carried_by(failed_at, IF_SECONDARY);
        let since_t0 = flipped_up_at.saturating_sub(report.t0_ns);
        let lost_after_return = report.streams.iter().map(|s| s.lost_after(since_t0)).sum();
        // Flows the primary carried at the end (the return really happened).
        let primary = report.rx_index(IF_PRIMARY);
        let returned_streams = report
            .streams
            .iter()
            .filter(|s| primary.is_some() && s.path.last().map(|seg| seg.rx) == primary)
            .count();
        let disturbed = disturbance(&report);
        let outcome = Outcome {
            scenario,
            failed_at_ns: failed_at,
            flipped_down_at_ns: flipped_down_at,
            flip_down_cause,
            restored_at_ns: restored_at,
            flipped_up_at_ns: flipped_up_at,
            detection_ms: flipped_down_at.saturating_sub(failed_at) as f64 / 1e6,
            failed_streams: failed.streams.len(),
            outage_ms: failed.outage_ms,
            outage_ms_max: failed.outage_ms_max,
            failed_lost: failed.lost,
            surviving_streams: surviving.streams.len(),
            surviving_lost: surviving.lost,
            lost_after_return,
            returned_streams,
            disturbed,
            sent: report.totals.sent,
            received: report.totals.received,
        };
        Ok((outcome, report))
    }
}
