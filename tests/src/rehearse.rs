//! A failover rehearsal of one circuit of the user's own estate: the lab
//! of their file (`lab::estate`) with FRR as the rehearsed circuit's
//! customer router, traffic from the packet engine over the chosen peering
//! (Azure to the customer over both links, and with `dir=both` the customer
//! to Azure through the customer's router), one failure of the primary at a
//! given time and its repair, measured packet by packet and set beside what
//! the real service would give for the same configuration.
use std::{
    net::IpAddr,
    path::{Path, PathBuf},
    time::Duration,
};

use anyhow::{Context as _, Result, anyhow, bail};
use circuit::{Config, Model, model::PeeringType};
use msee_sys::monotonic_ns;
use serde::Serialize;
use traffic::{
    frame::FrameSizes,
    pacing::Rate,
    run::{self, Endpoint, RunConfig, RunHandle, RunReport},
};

use crate::estate::EstateLabUp;

/// What fails on the primary link.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Failure {
    /// The MSEE's primary port loses carrier (every circuit on the port
    /// pair loses its primary link, as a port failure does).
    Carrier,
    /// The circuit's primary link drops everything both ways with its
    /// carrier up: only BFD (or the BGP hold timer) sees it.
    Silent,
    /// The customer's router shuts the primary's BGP session down.
    Bgp,
    /// Maintenance: the MSEE drains the primary (make before break).
    Drain,
    /// The peering's BFD timers change by a configuration reload.
    BfdTimers,
}

impl std::str::FromStr for Failure {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Self> {
        Ok(match s {
            "carrier" => Self::Carrier,
            "silent" => Self::Silent,
            "bgp" => Self::Bgp,
            "drain" => Self::Drain,
            "bfd-timers" => Self::BfdTimers,
            other => bail!("failure {other:?}: one of carrier, silent, bgp, drain, bfd-timers"),
        })
    }
}

impl Failure {
    pub fn describe(self) -> &'static str {
        match self {
            Failure::Carrier => "the MSEE's primary port loses carrier",
            Failure::Silent => "the primary link black-holes silently",
            Failure::Bgp => "the customer shuts the primary's BGP session down",
            Failure::Drain => "the MSEE drains the primary for maintenance",
            Failure::BfdTimers => "the peering's BFD timers change (reload)",
        }
    }

    /// Whether the MSEE takes the primary out of use (the others keep it).
    fn takes_link_down(self) -> bool {
        matches!(self, Failure::Carrier | Failure::Silent | Failure::Bgp)
    }
}

/// The traffic's rate: absolute, or a share of the circuit's bandwidth.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub enum RateSpec {
    Pps(f64),
    Bps(f64),
    /// Of the circuit's bandwidth (1.0 = all of it; above 1.0 the policers
    /// are part of the picture).
    Share(f64),
}

/// `flows=32,rate=80%,size=imix,dir=both`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TrafficSpec {
    pub flows: u16,
    pub rate: RateSpec,
    pub sizes: FrameSizes,
    pub both: bool,
}

impl Default for TrafficSpec {
    fn default() -> Self {
        Self {
            flows: 32,
            rate: RateSpec::Pps(20_000.0),
            sizes: FrameSizes::Fixed(128),
            both: true,
        }
    }
}

fn number(s: &str) -> Result<f64> {
    let (n, mult) = match s.char_indices().last() {
        Some((i, 'k')) => (&s[..i], 1e3),
        Some((i, 'M')) => (&s[..i], 1e6),
        Some((i, 'G')) => (&s[..i], 1e9),
        _ => (s, 1.0),
    };
    Ok(n.parse::<f64>()
        .with_context(|| format!("{s:?} is not a number"))?
        * mult)
}

impl std::str::FromStr for TrafficSpec {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Self> {
        let mut t = Self::default();
        for part in s.split(',').filter(|p| !p.is_empty()) {
            let (k, v) = part
                .split_once('=')
                .ok_or_else(|| anyhow!("traffic {part:?}: KEY=VALUE (flows, rate, size, dir)"))?;
            match k {
                "flows" => {
                    t.flows = v
                        .parse()
                        .ok()
                        .filter(|f| *f >= 1)
                        .ok_or_else(|| anyhow!("flows={v}: 1 to 65535"))?;
                }
                "rate" => {
                    t.rate = if let Some(p) = v.strip_suffix('%') {
                        RateSpec::Share(number(p)? / 100.0)
                    } else if let Some(b) = v.strip_suffix("bps") {
                        RateSpec::Bps(number(b)?)
                    } else if let Some(p) = v.strip_suffix("pps") {
                        RateSpec::Pps(number(p)?)
                    } else {
                        bail!(
                            "rate={v}: a share (80%), bits per second (500Mbps) or packets per second (20kpps)"
                        )
                    }
                }
                "size" => {
                    t.sizes = if v == "imix" {
                        FrameSizes::Imix
                    } else {
                        let n: u16 = v
                            .parse()
                            .ok()
                            .filter(|n| (64..=1518).contains(n))
                            .ok_or_else(|| {
                                anyhow!("size={v}: imix, or 64 to 1518 (bytes, with FCS)")
                            })?;
                        FrameSizes::Fixed(n)
                    }
                }
                "dir" => {
                    t.both = match v {
                        "both" => true,
                        "to-customer" => false,
                        other => bail!("dir={other}: both or to-customer"),
                    }
                }
                other => bail!("traffic key {other:?}: one of flows, rate, size, dir"),
            }
        }
        Ok(t)
    }
}

/// What the user asks for.
#[derive(Clone, Debug)]
pub struct Request {
    pub circuit: Option<String>,
    pub peering: PeeringType,
    pub failure: Failure,
    /// Traffic before the failure, and how long it lasts.
    pub at: Duration,
    pub hold: Duration,
    pub traffic: TrafficSpec,
    /// BFD timers for the rehearsed peering (interval ms, multiplier),
    /// over the file's.
    pub bfd: Option<(u32, u8)>,
    pub repeat: u32,
}

/// Packets per second the packet engine sends reliably here; a request
/// above it is refused rather than measured wrong.
pub const MAX_PPS: f64 = 1_000_000.0;

/// A request checked against the model.
#[derive(Clone, Debug, Serialize)]
pub struct Resolved {
    pub circuit: String,
    pub peering: PeeringType,
    pub failure: Failure,
    pub at: Duration,
    pub hold: Duration,
    pub flows: u16,
    pub pps: f64,
    pub sizes: FrameSizes,
    pub both: bool,
    pub bandwidth_mbps: u32,
    /// BFD in force on the peering (interval ms, multiplier).
    pub bfd: Option<(u32, u8)>,
    pub repeat: u32,
}

/// Checks `req` against the model: a failure the circuit cannot have, a
/// peering it lacks or a rate the generator cannot reach is refused before
/// anything starts, saying why.
pub fn resolve(model: &Model, req: &Request) -> Result<Resolved> {
    let circuit = match &req.circuit {
        Some(name) => model.circuit_named(name).map_err(|e| anyhow!(e))?,
        None => {
            let with: Vec<_> = model
                .circuits
                .iter()
                .filter(|c| c.peering(req.peering).is_some())
                .collect();
            match with.as_slice() {
                [only] => *only,
                [] => bail!("no circuit of the configuration has {:?}", req.peering),
                many => bail!(
                    "{} circuits have {:?}: choose one with --circuit ({})",
                    many.len(),
                    req.peering,
                    many.iter()
                        .map(|c| c.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            }
        }
    };
    let p = circuit.peering(req.peering).ok_or_else(|| {
        anyhow!(
            "circuit {} has no {:?} (it has: {})",
            circuit.name,
            req.peering,
            circuit
                .peerings
                .iter()
                .map(|p| format!("{:?}", p.peering_type))
                .collect::<Vec<_>>()
                .join(", ")
        )
    })?;
    let bfd = req.bfd.or(p.bfd.map(|b| (b.interval_ms, b.multiplier)));
    if req.failure == Failure::BfdTimers && bfd.is_none() {
        bail!(
            "--failure bfd-timers: BFD is off on {}'s {:?} (bfd.enabled = false): there are no timers to change",
            circuit.name,
            req.peering
        );
    }
    let mean = req.traffic.sizes.mean();
    let pps = match req.traffic.rate {
        RateSpec::Pps(p) => p,
        RateSpec::Bps(b) => b / 8.0 / mean,
        RateSpec::Share(s) => s * f64::from(circuit.bandwidth_mbps) * 1e6 / 8.0 / mean,
    };
    // NaN (a zero-length mix) fails this test too.
    if pps.is_nan() || pps < 1.0 {
        bail!("the traffic's rate comes to {pps:.1} packets/s: give at least 1");
    }
    if pps > MAX_PPS {
        bail!(
            "the traffic's rate comes to {:.0} packets/s, above the {:.0} the packet engine sends reliably here: lower rate= or use larger frames (size=)",
            pps,
            MAX_PPS
        );
    }
    if req.repeat == 0 {
        bail!("--repeat 0: at least one rehearsal");
    }
    if req.at < Duration::from_secs(1) {
        bail!(
            "--at {:?}: give the traffic at least 1 s before the failure",
            req.at
        );
    }
    Ok(Resolved {
        circuit: circuit.name.clone(),
        peering: req.peering,
        failure: req.failure,
        at: req.at,
        hold: req.hold,
        flows: req.traffic.flows,
        pps,
        sizes: req.traffic.sizes.clone(),
        both: req.traffic.both,
        bandwidth_mbps: circuit.bandwidth_mbps,
        bfd,
        repeat: req.repeat,
    })
}

/// `config` with the rehearsed peering's BFD timers set to `bfd`.
pub fn with_bfd(
    config: &Config,
    circuit: &str,
    peering: PeeringType,
    bfd: (u32, u8),
) -> Result<Config> {
    let mut c = config.clone();
    let p = c
        .circuits
        .iter_mut()
        .find(|x| x.name == circuit)
        .and_then(|x| x.peerings.iter_mut().find(|p| p.peering_type == peering))
        .ok_or_else(|| anyhow!("no {peering:?} on {circuit}"))?;
    p.bfd = circuit::config::Bfd {
        enabled: true,
        interval_ms: bfd.0,
        multiplier: bfd.1,
    };
    Ok(c)
}

/// What the real service would give for this configuration.
#[derive(Clone, Debug, Serialize)]
pub struct Expected {
    pub detection: String,
    pub detection_ms: Option<f64>,
    pub loss: String,
}

pub fn expected(r: &Resolved) -> Expected {
    match r.failure {
        Failure::Carrier => Expected {
            detection: "the MSEE's own port: immediate".into(),
            detection_ms: Some(0.0),
            loss: "the primary's flows until the MSEE moves them; none on the secondary".into(),
        },
        Failure::Silent => match r.bfd {
            Some((ms, mult)) => Expected {
                detection: format!("BFD, {ms} ms x {mult}"),
                detection_ms: Some(f64::from(ms) * f64::from(mult)),
                loss: "the primary's flows for about the detection time".into(),
            },
            None => Expected {
                detection:
                    "BGP hold timer (BFD off): 180 s, or the lower hold time the customer offers"
                        .into(),
                detection_ms: Some(180_000.0),
                loss: "the primary's flows until the hold timer expires".into(),
            },
        },
        Failure::Bgp => Expected {
            detection: "the NOTIFICATION: immediate".into(),
            detection_ms: Some(0.0),
            loss: "none to a few packets in flight".into(),
        },
        Failure::Drain | Failure::BfdTimers => Expected {
            detection: "no failure: a planned change".into(),
            detection_ms: None,
            loss: "none".into(),
        },
    }
}

/// One rehearsal's figures.
#[derive(Clone, Debug, Serialize)]
pub struct Outcome {
    pub failed_at_ns: u64,
    /// The MSEE's flip of the primary and its cause (failures that take the
    /// link down).
    pub detection_ms: Option<f64>,
    pub detection_source: Option<String>,
    /// Azure to the customer: the primary's flows (RFC 6201 outage from
    /// loss, per flow), the secondary's, and after the return.
    pub affected_flows: usize,
    pub outage_ms_per_flow: Vec<f64>,
    pub outage_ms: f64,
    pub outage_ms_max: f64,
    pub surviving_flows: usize,
    pub surviving_lost: u64,
    pub lost_after_return: u64,
    pub to_customer_sent: u64,
    pub to_customer_lost: u64,
    /// The customer to Azure (dir=both): lost, and the outage from loss.
    pub to_azure_sent: Option<u64>,
    pub to_azure_lost: Option<u64>,
    pub to_azure_outage_ms: Option<f64>,
    /// Which of the circuit's links the customer's router sent on before
    /// the failure ("primary", "secondary", or "both, N% on the primary"):
    /// with two equal paths a router keeps one (the oldest, by default), so
    /// its traffic crosses the failing link only if that one is the primary.
    pub to_azure_via: Option<String>,
    /// Frames the circuit's policers dropped during the event.
    pub policer_drops: u64,
    /// Drops outside the MSEE (a busy machine): the run measured the
    /// machine too.
    pub disturbed: Option<String>,
}

/// A rehearsal's report: the request, each repetition, their medians.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub rehearsal: Resolved,
    pub expected: Expected,
    pub outcomes: Vec<Outcome>,
    pub median_detection_ms: Option<f64>,
    pub median_outage_ms: f64,
    pub max_outage_ms: f64,
    pub total_surviving_lost: u64,
    pub total_lost_after_return: u64,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    if v.is_empty() { 0.0 } else { v[v.len() / 2] }
}

impl Report {
    pub fn new(rehearsal: Resolved, outcomes: Vec<Outcome>) -> Self {
        let det: Vec<f64> = outcomes.iter().filter_map(|o| o.detection_ms).collect();
        Self {
            expected: expected(&rehearsal),
            rehearsal,
            median_detection_ms: (!det.is_empty()).then(|| median(det)),
            median_outage_ms: median(outcomes.iter().map(|o| o.outage_ms).collect()),
            max_outage_ms: outcomes.iter().map(|o| o.outage_ms_max).fold(0.0, f64::max),
            total_surviving_lost: outcomes.iter().map(|o| o.surviving_lost).sum(),
            total_lost_after_return: outcomes.iter().map(|o| o.lost_after_return).sum(),
            outcomes,
        }
    }

    pub fn text(&self) -> String {
        let r = &self.rehearsal;
        let mut out = format!(
            "rehearsal of {} {:?}: {} ({} x), {} flows at {:.0} packets/s{}\n",
            r.circuit,
            r.peering,
            r.failure.describe(),
            r.repeat,
            r.flows,
            r.pps,
            if r.both {
                " each way"
            } else {
                " to the customer"
            }
        );
        for (i, o) in self.outcomes.iter().enumerate() {
            out += &format!(
                "  #{}: detected {}; to the customer: the primary's {} flows out {:.1} ms (worst {:.1}), the secondary's {} flows lost {}, after the return lost {}; to Azure (the customer's router failing over): {}; policer drops {}{}\n",
                i + 1,
                o.detection_ms
                    .map(|d| format!(
                        "in {d:.1} ms ({})",
                        o.detection_source.as_deref().unwrap_or("?")
                    ))
                    .unwrap_or_else(|| "nothing to detect".into()),
                o.affected_flows,
                o.outage_ms,
                o.outage_ms_max,
                o.surviving_flows,
                o.surviving_lost,
                o.lost_after_return,
                match (o.to_azure_lost, o.to_azure_outage_ms) {
                    (Some(l), Some(ms)) => format!(
                        "lost {l}, out {ms:.1} ms{}",
                        o.to_azure_via
                            .as_ref()
                            .map(|v| format!(" (it sent on the {v})"))
                            .unwrap_or_default()
                    ),
                    _ => "-".into(),
                },
                o.policer_drops,
                o.disturbed
                    .as_ref()
                    .map(|d| format!("; DISTURBED: {d}"))
                    .unwrap_or_default()
            );
        }
        out += &format!(
            "  medians: detection {}, outage {:.1} ms (worst {:.1}); surviving flows lost {}, after the return {}\n",
            self.median_detection_ms
                .map_or("none (a planned change)".into(), |d| format!("{d:.1} ms")),
            self.median_outage_ms,
            self.max_outage_ms,
            self.total_surviving_lost,
            self.total_lost_after_return
        );
        out += &format!(
            "  the real service, same configuration: detection {}; loss {}\n",
            self.expected.detection, self.expected.loss
        );
        out
    }
}

/// The lab's names for the rehearsed circuit and peering.
struct Names {
    customer_ns: String,
    /// The customer's interfaces of the peering (primary, secondary).
    ifnames: [String; 2],
    customer_host: IpAddr,
    /// The MSEE's link of the primary.
    primary_link: String,
    /// The customer's FRR router: its vty directory and AS.
    frr_dir: PathBuf,
    asn: u32,
    msee_primary: IpAddr,
    /// The Azure side's namespace and host the traffic comes from.
    azure_ns: String,
    azure_host: IpAddr,
    /// The switch namespace and the trunk of the MSEE's primary port.
    switch_ns: String,
    trunk: String,
}

fn names(lab: &EstateLabUp, r: &Resolved) -> Result<Names> {
    let c = lab.customer(&r.circuit).clone();
    let p = c
        .peerings
        .iter()
        .find(|p| p.peering_type == r.peering)
        .ok_or_else(|| anyhow!("the lab has no {:?} for {}", r.peering, r.circuit))?;
    let (azure_ns, azure_host, customer_host) = match r.peering {
        PeeringType::AzurePrivatePeering => {
            let v = lab
                .lab()
                .vnets
                .iter()
                .find(|v| v.hosts.iter().any(|(_, h)| h.is_ipv4()))
                .ok_or_else(|| {
                    anyhow!(
                        "{} links no VNet the lab built: nothing to send from",
                        r.circuit
                    )
                })?;
            let host = v
                .hosts
                .iter()
                .find(|(_, h)| h.is_ipv4())
                .map(|(_, h)| *h)
                .expect("found");
            (v.ns.clone(), host, IpAddr::V4(c.host))
        }
        PeeringType::MicrosoftPeering => {
            let m = lab.lab().microsoft.as_ref().ok_or_else(|| {
                anyhow!(
                    "{}'s Microsoft peering reaches no service (no route filter)",
                    r.circuit
                )
            })?;
            let host = m
                .hosts
                .iter()
                .find(|(_, h)| h.is_ipv4())
                .map(|(_, h)| *h)
                .expect("a service");
            let public = c
                .public_hosts
                .iter()
                .find(|h| h.is_ipv4())
                .copied()
                .ok_or_else(|| anyhow!("{} registered no IPv4 public prefix", r.circuit))?;
            (m.ns.clone(), host, public)
        }
    };
    let pair = &lab.lab().pairs[p.pair];
    Ok(Names {
        customer_ns: c.ns.clone(),
        ifnames: p.ifnames.clone(),
        customer_host,
        primary_link: format!("{}/{:?}/primary", r.circuit, r.peering),
        frr_dir: lab::estate::state_dir(&lab.lab().prefix).join(&r.circuit),
        asn: c.asn,
        msee_primary: IpAddr::V4(p.msee[0]),
        azure_ns,
        azure_host,
        switch_ns: lab.lab().switch_ns.clone(),
        trunk: pair.trunk[0].clone(),
    })
}

fn vtysh(dir: &Path, cmds: &[&str]) -> Result<String> {
    let mut c = std::process::Command::new("vtysh");
    c.arg("--vty_socket").arg(dir).args(["-d", "bgpd"]);
    for cmd in cmds {
        c.args(["-c", cmd]);
    }
    let out = c.output().context("running vtysh")?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    if text.contains("% ") {
        bail!("FRR refused {cmds:?}: {text}");
    }
    Ok(text)
}

/// The primary link's view: carries, last flip time and cause.
fn link(lab: &EstateLabUp, name: &str) -> (bool, u64, String) {
    let l = lab
        .cli(&["links"])
        .as_array()
        .and_then(|l| l.iter().find(|l| l["name"] == name).cloned())
        .unwrap_or_default();
    (
        l["carries"] == true,
        l["history"][0]["at_mono_ns"].as_u64().unwrap_or(0),
        l["history"][0]["cause"].as_str().unwrap_or("").to_owned(),
    )
}

fn wait_link(
    lab: &EstateLabUp,
    name: &str,
    carries: bool,
    timeout: Duration,
) -> Result<(u64, String)> {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        let (c, at, cause) = link(lab, name);
        if c == carries {
            return Ok((at, cause));
        }
        if std::time::Instant::now() > deadline {
            bail!("link {name} did not become carries={carries} within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn policer_drops(lab: &EstateLabUp, circuit: &str) -> u64 {
    lab.drops(circuit, "policer")
}

/// Frames received to be forwarded (not the link's own BGP, BFD or ARP) on
/// the peering's primary and secondary link, as the MSEE counts them.
fn forwarded_rx(lab: &EstateLabUp, circuit: &str, peering: &str) -> [u64; 2] {
    let mut out = [0; 2];
    for p in lab
        .cli(&["counters"])
        .as_array()
        .cloned()
        .unwrap_or_default()
    {
        if p["circuit"] != circuit || p["peering"] != peering {
            continue;
        }
        let slot = match p["role"].as_str() {
            Some("primary") => 0,
            Some("secondary") => 1,
            _ => continue,
        };
        let n = |k: &str| p[k].as_u64().unwrap_or(0);
        out[slot] += n("rx_packets").saturating_sub(n("pass_packets"));
    }
    out
}

/// Names the link(s) the customer's traffic took, from two counter samples.
fn via(before: [u64; 2], after: [u64; 2]) -> Option<String> {
    let (p, s) = (after[0] - before[0], after[1] - before[1]);
    let total = p + s;
    if total == 0 {
        return None;
    }
    let share = p as f64 / total as f64;
    Some(if share > 0.99 {
        "primary".into()
    } else if share < 0.01 {
        "secondary".into()
    } else {
        format!("both links, {:.0}% on the primary", share * 100.0)
    })
}

/// Runs the rehearsal `r` `repeat` times on `lab`, telling each step.
pub fn rehearse(
    lab: &EstateLabUp,
    r: &Resolved,
    config: &Path,
    tell: &dyn Fn(&str),
) -> Result<(Report, Vec<RunReport>)> {
    let n = names(lab, r)?;
    let mut outcomes = Vec::new();
    let mut reports = Vec::new();
    for i in 0..r.repeat {
        if r.repeat > 1 {
            tell(&format!("rehearsal {} of {}", i + 1, r.repeat));
        }
        let (o, rep) = once(lab, r, &n, config, tell)?;
        outcomes.push(o);
        reports.push(rep);
    }
    Ok((Report::new(r.clone(), outcomes), reports))
}

fn once(
    lab: &EstateLabUp,
    r: &Resolved,
    n: &Names,
    config: &Path,
    tell: &dyn Fn(&str),
) -> Result<(Outcome, RunReport)> {
    lab.wait_established(Duration::from_secs(60))?;
    wait_link(lab, &n.primary_link, true, Duration::from_secs(30))?;
    let max = r.at + r.hold + Duration::from_secs(60);
    let mut cfg = RunConfig::new(
        Endpoint::new(Some(&n.azure_ns), "msee"),
        vec![
            Endpoint::new(Some(&n.customer_ns), &n.ifnames[0]),
            Endpoint::new(Some(&n.customer_ns), &n.ifnames[1]),
        ],
        n.azure_host,
        n.customer_host,
        Rate::Pps(r.pps),
        (r.pps * max.as_secs_f64()) as u64,
        max,
    );
    cfg.flows = r.flows;
    cfg.sizes = r.sizes.clone();
    cfg.rx_blackhole = true;
    let h = run::start(&cfg).context("starting the traffic to the customer")?;
    let up = if r.both {
        Some(to_azure(r, n, max)?)
    } else {
        None
    };
    if !h.wait_received(r.pps as u64 / 2, Duration::from_secs(5)) {
        bail!("the traffic to the customer did not get going");
    }
    let peering = format!("{:?}", r.peering);
    let rx_start = forwarded_rx(lab, &r.circuit, &peering);
    std::thread::sleep(r.at.saturating_sub(Duration::from_millis(500)));
    let to_azure_via = if r.both {
        via(rx_start, forwarded_rx(lab, &r.circuit, &peering))
    } else {
        None
    };
    let policed_before = policer_drops(lab, &r.circuit);
    tell(&format!("the primary fails: {}", r.failure.describe()));
    let failed_at = fail(lab, r, n, &h, config, true)?;
    let (mut detection_ms, mut detection_source) = (None, None);
    if r.failure.takes_link_down() {
        let (at, cause) = wait_link(lab, &n.primary_link, false, Duration::from_secs(200))?;
        h.event_at("MSEE moved the primary's flows", at);
        let ms = at.saturating_sub(failed_at) as f64 / 1e6;
        tell(&format!(
            "the MSEE moved the primary's flows after {ms:.1} ms ({cause})"
        ));
        detection_ms = Some(ms);
        detection_source = Some(cause);
    }
    std::thread::sleep(r.hold);
    let restored_at = fail(lab, r, n, &h, config, false)?;
    tell("the primary is repaired");
    let back_at = if r.failure.takes_link_down() {
        let (at, _) = wait_link(lab, &n.primary_link, true, Duration::from_secs(60))?;
        h.event_at("primary up again", at);
        at
    } else {
        restored_at
    };
    // The traffic runs on past the return; the routes come back with the
    // customer's announcement on the new session.
    std::thread::sleep(Duration::from_secs(2));
    let policed = policer_drops(lab, &r.circuit) - policed_before;
    h.stop();
    let report = h.join().context("the traffic to the customer")?;
    let azure = match up {
        Some(u) => {
            u.stop();
            Some(u.join().context("the traffic to Azure")?)
        }
        None => None,
    };
    let failed = report.carried_by(failed_at, &n.ifnames[0]);
    let surviving = report.carried_by(failed_at, &n.ifnames[1]);
    let since = back_at.saturating_sub(report.t0_ns);
    let lost_after_return = report.streams.iter().map(|s| s.lost_after(since)).sum();
    let per_flow = report
        .streams
        .iter()
        .filter(|s| failed.streams.contains(&s.stream))
        .map(|s| s.outage_ms.unwrap_or(0.0))
        .collect();
    let mut disturbed = crate::failover_lab::disturbance(&report);
    if let Some(a) = &azure
        && let Some(d) = crate::failover_lab::disturbance(a)
    {
        disturbed = Some(disturbed.map_or(d.clone(), |x| format!("{x}; {d}")));
    }
    let outcome = Outcome {
        failed_at_ns: failed_at,
        detection_ms,
        detection_source,
        affected_flows: failed.streams.len(),
        outage_ms_per_flow: per_flow,
        outage_ms: failed.outage_ms,
        outage_ms_max: failed.outage_ms_max,
        surviving_flows: surviving.streams.len(),
        surviving_lost: surviving.lost,
        lost_after_return,
        to_customer_sent: report.totals.sent,
        to_customer_lost: report.totals.lost,
        to_azure_sent: azure.as_ref().map(|a| a.totals.sent),
        to_azure_lost: azure.as_ref().map(|a| a.totals.lost),
        // Loss over the offered rate (RFC 6201), the flows taken together.
        to_azure_outage_ms: azure
            .as_ref()
            .map(|a| a.totals.lost as f64 / r.pps * 1000.0),
        to_azure_via,
        policer_drops: policed,
        disturbed,
    };
    Ok((outcome, report))
}

/// The customer's traffic to Azure, through its router: a generator on a
/// LAN interface behind the customer's router sends to the router, which
/// routes by what it learned (and fails over by its own BFD and BGP).
fn to_azure(r: &Resolved, n: &Names, max: Duration) -> Result<RunHandle> {
    // A veth pair inside `ns` whose first end routes (forwarding on, no
    // reverse-path filter on it or `also`).
    let routed_veth = |ns: &str, a: &str, b: &str, also: &[&str]| -> Result<()> {
        lab::veth(ns, a, ns, b)?;
        for dev in [a, b] {
            lab::gro_on_tx_off(ns, dev)?;
        }
        lab::sysctl_ns(ns, "net.ipv4.ip_forward", "1")?;
        for k in ["all", a].iter().chain(also) {
            lab::sysctl_ns(ns, &format!("net.ipv4.conf.{k}.rp_filter"), "0")?;
        }
        Ok(())
    };
    let ns = &n.customer_ns;
    if lab::ip_ns(ns, &["link", "show", "lan"]).is_err() {
        routed_veth(ns, "lan", "lan-host", &[])?;
        lab::ip_ns(ns, &["addr", "add", "169.254.77.1/30", "dev", "lan"])?;
    }
    // The Azure side's receiver: a VM behind the gateway namespace (its
    // `msee` interface is the other direction's generator).
    let az = &n.azure_ns;
    let vm = vm_address(n.azure_host);
    if lab::ip_ns(az, &["link", "show", "vm"]).is_err() {
        routed_veth(az, "vm", "vm-nic", &["msee"])?;
        let nic = lab::mac_of(az, "vm-nic")?;
        let nic = nic
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<Vec<_>>()
            .join(":");
        lab::ip_ns(az, &["route", "add", &format!("{vm}/32"), "dev", "vm"])?;
        lab::ip_ns(
            az,
            &["neigh", "add", &vm.to_string(), "lladdr", &nic, "dev", "vm"],
        )?;
    }
    let lan_mac = lab::mac_of(ns, "lan")?;
    let mut cfg = RunConfig::new(
        Endpoint::new(Some(ns), "lan-host"),
        vec![Endpoint::new(Some(az), "vm-nic")],
        // A host behind the router: the router's own addresses would be
        // martian sources to itself.
        vm_address(n.customer_host),
        vm,
        Rate::Pps(r.pps),
        (r.pps * max.as_secs_f64()) as u64,
        max,
    );
    cfg.dst_mac = Some(lan_mac);
    cfg.flows = r.flows;
    cfg.sizes = r.sizes.clone();
    // Other ports than the other direction's: one sink per direction.
    cfg.dst_port = cfg.dst_port.wrapping_add(2048);
    cfg.src_port = cfg.src_port.wrapping_add(2048);
    run::start(&cfg).context("starting the traffic to Azure")
}

/// A host behind a lab host (a VM behind the gateway, a machine behind
/// the customer's router): the next address.
fn vm_address(host: IpAddr) -> IpAddr {
    match host {
        IpAddr::V4(a) => IpAddr::V4(std::net::Ipv4Addr::from(u32::from(a) + 1)),
        IpAddr::V6(a) => IpAddr::V6(std::net::Ipv6Addr::from(u128::from(a) + 1)),
    }
}

/// Fails (`on`) or repairs the primary; returns when that took effect on
/// the engine's clock.
fn fail(
    lab: &EstateLabUp,
    r: &Resolved,
    n: &Names,
    h: &RunHandle,
    config: &Path,
    on: bool,
) -> Result<u64> {
    match r.failure {
        Failure::Carrier => {
            let at = monotonic_ns();
            lab::ip_ns_urgent(
                &n.switch_ns,
                &["link", "set", &n.trunk, if on { "down" } else { "up" }],
            )?;
            h.event_at(
                if on {
                    "primary carrier down"
                } else {
                    "primary carrier up"
                },
                at,
            );
            Ok(at)
        }
        Failure::Silent => {
            let b = h
                .blackhole(&n.ifnames[0])
                .ok_or_else(|| anyhow!("no black-hole switch on {}", n.ifnames[0]))?;
            Ok(if on { b.on()?.at_ns } else { b.off()?.at_ns })
        }
        Failure::Bgp => {
            let at = monotonic_ns();
            let neighbor = format!(
                "{}neighbor {} shutdown",
                if on { "" } else { "no " },
                n.msee_primary
            );
            vtysh(
                &n.frr_dir,
                &[
                    "configure terminal",
                    &format!("router bgp {}", n.asn),
                    &neighbor,
                ],
            )?;
            h.event_at(
                if on {
                    "customer shuts the primary's session"
                } else {
                    "customer restores it"
                },
                at,
            );
            Ok(at)
        }
        Failure::Drain => {
            let at = monotonic_ns();
            let v = lab.cli(&[if on { "drain" } else { "undrain" }, &r.circuit, "primary"]);
            if v.get("circuit").is_none() {
                bail!("drain: {v}");
            }
            h.event_at(
                if on {
                    "primary drained"
                } else {
                    "primary undrained"
                },
                at,
            );
            Ok(at)
        }
        Failure::BfdTimers => {
            let text = std::fs::read_to_string(config)?;
            let cfg = circuit::Config::from_toml_str(&text)
                .map_err(|e| anyhow!("{}: {e}", config.display()))?;
            let (ms, mult) = r.bfd.expect("resolve checked BFD is on");
            // The change: slower timers, then back.
            let timers = if on { (ms * 2, mult) } else { (ms, mult) };
            let changed = with_bfd(&cfg, &r.circuit, r.peering, timers)?;
            std::fs::write(config, changed.to_toml_string()?)?;
            let at = monotonic_ns();
            let v = lab.cli(&["reload"]);
            if v["changed"] != true {
                bail!("the reload changed nothing: {v}");
            }
            h.event_at(
                if on {
                    "BFD timers doubled"
                } else {
                    "BFD timers restored"
                },
                at,
            );
            Ok(at)
        }
    }
}

/// Writes the report's JSON and the first run's rate plot into `out`.
pub fn write(out: &Path, report: &Report, runs: &[RunReport]) -> Result<(PathBuf, PathBuf)> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let json = out.join("rehearsal.json");
    std::fs::write(
        &json,
        serde_json::to_vec_pretty(&serde_json::json!({ "report": report, "runs": runs }))?,
    )?;
    let svg = out.join("rehearsal.svg");
    if let Some(first) = runs.first() {
        std::fs::write(
            &svg,
            traffic::plot::rate_svg(
                &format!(
                    "{} {:?}: {}",
                    report.rehearsal.circuit,
                    report.rehearsal.peering,
                    report.rehearsal.failure.describe()
                ),
                &first.plot_series(),
                &first.plot_markers(),
            ),
        )?;
    }
    Ok((json, svg))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model() -> Model {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../circuit/examples/lab.toml"
        ))
        .unwrap();
        circuit::load_toml(&text).unwrap()
    }

    fn req(circuit: Option<&str>, peering: PeeringType, failure: Failure) -> Request {
        Request {
            circuit: circuit.map(str::to_owned),
            peering,
            failure,
            at: Duration::from_secs(2),
            hold: Duration::from_secs(2),
            traffic: TrafficSpec::default(),
            bfd: None,
            repeat: 1,
        }
    }

    #[test]
    fn traffic_specs_parse_with_clear_errors() {
        let t: TrafficSpec = "flows=8,rate=80%,size=imix,dir=to-customer"
            .parse()
            .unwrap();
        assert_eq!((t.flows, t.rate, t.both), (8, RateSpec::Share(0.8), false));
        assert_eq!(t.sizes, FrameSizes::Imix);
        let t: TrafficSpec = "rate=500Mbps,size=1518".parse().unwrap();
        assert_eq!(
            (t.rate, t.sizes),
            (RateSpec::Bps(500e6), FrameSizes::Fixed(1518))
        );
        let t: TrafficSpec = "rate=20kpps".parse().unwrap();
        assert_eq!(t.rate, RateSpec::Pps(20e3));
        for (bad, says) in [
            ("size=9000", "64 to 1518"),
            ("rate=fast", "a share"),
            ("flows=0", "1 to 65535"),
            ("colour=red", "flows, rate, size, dir"),
            ("dir=up", "both or to-customer"),
        ] {
            let e = bad.parse::<TrafficSpec>().unwrap_err().to_string();
            assert!(e.contains(says), "{bad}: {e}");
        }
        assert!("melt".parse::<Failure>().is_err());
    }

    #[test]
    fn a_rehearsal_the_circuit_cannot_have_is_refused_saying_why() {
        let m = model();
        use PeeringType::*;
        // er-sv-prem runs BFD off: no timers to change.
        let e = resolve(
            &m,
            &req(Some("er-sv-prem"), AzurePrivatePeering, Failure::BfdTimers),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("BFD is off") && e.contains("er-sv-prem"), "{e}");
        // ... unless the rehearsal gives it timers.
        let mut r = req(Some("er-sv-prem"), AzurePrivatePeering, Failure::BfdTimers);
        r.bfd = Some((100, 3));
        assert_eq!(resolve(&m, &r).unwrap().bfd, Some((100, 3)));
        // er-lon-std has no Microsoft peering.
        let e = resolve(
            &m,
            &req(Some("er-lon-std"), MicrosoftPeering, Failure::Silent),
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("has no MicrosoftPeering") && e.contains("AzurePrivatePeering"),
            "{e}"
        );
        // Several circuits have private peering: choose one.
        let e = resolve(&m, &req(None, AzurePrivatePeering, Failure::Silent))
            .unwrap_err()
            .to_string();
        assert!(e.contains("choose one with --circuit"), "{e}");
        // 200% of a 10 Gbit/s circuit in 64-byte frames: beyond the engine.
        let mut r = req(Some("er-direct-prem"), AzurePrivatePeering, Failure::Silent);
        r.traffic = "rate=200%,size=64".parse().unwrap();
        let e = resolve(&m, &r).unwrap_err().to_string();
        assert!(e.contains("packet engine sends reliably"), "{e}");
        // A share of the bandwidth in packets: 80% of 1 Gbit/s of 1250-byte frames.
        let mut r = req(Some("er-ams-std"), AzurePrivatePeering, Failure::Drain);
        r.traffic = "rate=80%,size=1250".parse().unwrap();
        let ok = resolve(&m, &r).unwrap();
        assert!((ok.pps - 80_000.0).abs() < 1.0, "{}", ok.pps);
        assert_eq!(ok.bfd, Some((300, 3)));
        assert_eq!(expected(&ok).detection, "no failure: a planned change");
    }
}
