//! Scale of one daemon: an estate of N circuits on one ExpressRoute Direct
//! port pair (QinQ; private and Microsoft peering on each circuit), one BIRD
//! process playing every customer:
//! - from the daemon's start, the time until every session is Established
//!   and every route the customers announce is in the dataplane;
//! - the daemon's memory (RSS) per circuit: N circuits against one;
//! - per packet (`BPF_PROG_TEST_RUN`), traffic spread over N circuits'
//!   routing domains against one circuit's, each domain with its own table.
use std::{
    fmt::Write as _,
    net::Ipv4Addr,
    path::Path,
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail, ensure};
use control::api::{self, Request};
use dataplane::{LoadOptions, Msee};
use e2e_tests::{packet::Tag, vlan_frames};
use ipnet::{IpNet, Ipv4Net};
use lab::{daemon::Daemon, estate};
use msee_abi::{Attachment, AttachmentKey, GroupMember, Link, LinkRole, PeeringKind, Route};
use serde_json::{Value, json};
use testkit::median;

use crate::{
    bird::{BIRD, Bird, Nudger},
    fixture::{LO, MSEE_MAC, PROBE_DST, XDP_REDIRECT, route_table},
    report::{Targets, thousands},
};

/// Per packet, N circuits' domains loaded against one: at least this share.
pub const TARGET_MANY_VS_ONE: f64 = 0.95;

/// Runs per BPF_PROG_TEST_RUN call (the frame's TTL allows 254 forwards).
const REPEAT: u32 = 250;

/// A daemon run's bound: all sessions up and all routes in by then.
const TIMEOUT: Duration = Duration::from_secs(120);

/// `msee-bench scale`: its sizes.
#[derive(clap::Args, Debug)]
pub struct ScaleArgs {
    /// Circuits on the Direct port pair (each with private and Microsoft
    /// peering: two peerings, four BGP sessions).
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u16).range(1..=1000))]
    pub circuits: u16,
    /// Prefixes each customer announces on private peering.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u16).range(1..=4000))]
    pub prefixes: u16,
    /// Routes in each circuit's domain for the per-packet figures.
    #[arg(long, default_value_t = 10_000)]
    pub domain_routes: usize,
    /// Interleaved rounds of the per-packet samples.
    #[arg(long, default_value_t = 11, value_parser = crate::at_least_one())]
    pub rounds: usize,
    /// Skip the estate (lab) part: per-packet figures only.
    #[arg(long)]
    pub per_packet_only: bool,
}

pub fn measure(args: &ScaleArgs) -> Result<Value> {
    let mut out = json!({
        "circuits": args.circuits,
        "per_packet": per_packet(usize::from(args.circuits), args.domain_routes, args.rounds)?,
    });
    if !args.per_packet_only {
        out["estate"] = estate_start(args)?;
    }
    Ok(out)
}

// ---- The estate: N circuits, one daemon, one BIRD.

/// The S-tag of circuit `i` (both its peerings); C-tags 10 (private) and
/// 20 (Microsoft).
fn s_tag(i: usize) -> usize {
    100 + i
}

/// A /29 of `base` (a /16 or wider) for circuit `i`.
fn slash29(base: Ipv4Addr, i: usize) -> Ipv4Net {
    Ipv4Net::new(Ipv4Addr::from(u32::from(base) + 8 * i as u32), 29).expect("29 <= 32")
}

/// The extra prefixes circuit `i` announces on private peering (besides
/// its on-premises /24): /24s of 10.128.0.0/9, disjoint between circuits.
fn extra_prefixes(i: usize, count: usize) -> Vec<Ipv4Net> {
    (0..count)
        .map(|j| {
            let n = (i * count + j) as u32;
            Ipv4Net::new(Ipv4Addr::from(0x0a80_0000 + (n << 8)), 24).expect("24 <= 32")
        })
        .collect()
}

/// The estate's file: N circuits on one Direct port pair, each with
/// private peering (linked to one VNet) and Microsoft peering (Exchange
/// through one route filter, one registered public /24).
fn estate_toml(circuits: usize) -> String {
    let mut s = String::from(
        r#"[[expressRoutePorts]]
name = "erd-scale"
peeringLocation = "Amsterdam"
bandwidthInGbps = 100
encapsulation = "QinQ"

[[virtualNetworks]]
name = "vnet-weu"
location = "West Europe"
addressSpace = { addressPrefixes = ["10.10.0.0/16"] }

[[routeFilters]]
name = "rf-exchange"

[[routeFilters.rules]]
name = "exchange"
communities = ["12076:5010"]
"#,
    );
    for i in 0..circuits {
        let asn = 64512 + i;
        let private = slash29(Ipv4Addr::new(192, 168, 0, 0), i);
        let public = slash29(Ipv4Addr::new(198, 18, 0, 0), i);
        let registered =
            Ipv4Net::new(Ipv4Addr::new(198, 19, (i % 256) as u8, 0), 24).expect("24 <= 32");
        let _ = write!(
            s,
            r#"
[[circuits]]
name = "c{i:03}"
serviceKey = "00000000-0000-0000-0001-{i:012x}"
serviceProviderProvisioningState = "Provisioned"
expressRoutePort = "erd-scale"
serviceProviderProperties = {{ serviceProviderName = "Equinix", peeringLocation = "Amsterdam", bandwidthInMbps = 1000 }}
sku = {{ tier = "Standard", family = "MeteredData" }}

[[circuits.peerings]]
peeringType = "AzurePrivatePeering"
peerASN = {asn}
peerAddressPrefix = "{private}"
sTag = {stag}
cTag = 10

[[circuits.peerings]]
peeringType = "MicrosoftPeering"
peerASN = {asn}
peerAddressPrefix = "{public}"
sTag = {stag}
cTag = 20
routeFilter = "rf-exchange"
microsoftPeeringConfig = {{ advertisedPublicPrefixes = ["{registered}"] }}

[[connections]]
name = "c{i:03}-weu"
virtualNetwork = "vnet-weu"
peer = "c{i:03}"
"#,
            stag = s_tag(i),
        );
    }
    s
}

/// One BIRD for every customer: per peering a static protocol with what
/// that peering announces and a `protocol bgp` per MSEE link, each from the
/// customer's own address and AS; BFD on every link at the model's timers.
fn bird_conf(lab: &estate::EstateLab, extra: usize, log: &Path) -> String {
    let mut s = format!(
        "log \"{}\" {{ warning, error, fatal, bug }};\nrouter id 192.0.2.1;\n\
         protocol device {{ scan time 10; }}\n",
        log.display()
    );
    let mut bfd = String::new();
    for (ci, c) in lab.customers.iter().enumerate() {
        for (k, p) in c.peerings.iter().enumerate() {
            let mut announce: Vec<IpNet> = p
                .announce
                .iter()
                .filter(|a| a.addr().is_ipv4())
                .copied()
                .collect();
            if k == 0 {
                announce.extend(extra_prefixes(ci, extra).into_iter().map(IpNet::V4));
            }
            let _ = writeln!(s, "protocol static s{ci}_{k} {{\n  ipv4;");
            for a in &announce {
                let _ = writeln!(s, "  route {a} blackhole;");
            }
            s += "}\n";
            for link in 0..2 {
                let _ = write!(
                    s,
                    "protocol bgp c{ci}_{k}_{link} {{\n  local {local} as {asn};\n  \
                     neighbor {msee} as 12076;\n  connect retry time 2;\n  error wait time 1, 2;\n  \
                     {bfd_on}  ipv4 {{ import all; export where proto = \"s{ci}_{k}\"; }};\n}}\n",
                    local = p.customer[link].0,
                    asn = c.asn,
                    msee = p.msee[link],
                    bfd_on = if p.bfd.is_some() { "bfd on;\n" } else { "" },
                );
                if let Some((ms, mult)) = p.bfd {
                    let _ = writeln!(
                        bfd,
                        "  interface \"{}\" {{ interval {ms} ms; multiplier {mult}; }};",
                        p.ifnames[link]
                    );
                }
            }
        }
    }
    if !bfd.is_empty() {
        s += &format!("protocol bfd {{\n{bfd}}}\n");
    }
    s
}

/// The lab, removed when dropped.
struct EstateUp {
    state: estate::State,
}

impl Drop for EstateUp {
    fn drop(&mut self) {
        if let Err(e) = estate::down(&self.state) {
            eprintln!("msee-bench: removing the scale lab: {e:#}");
        }
    }
}

/// A daemon run: start, wait for every session and route, read its memory.
struct StartRun {
    established_secs: f64,
    routes_secs: f64,
    sessions: usize,
    prefixes_received: u64,
    fib_routes: u64,
    rss_bytes: u64,
    cpu_secs: f64,
}

fn estate_start(args: &ScaleArgs) -> Result<Value> {
    ensure!(
        Path::new(BIRD).exists(),
        "{BIRD} is missing: install bird2 (cargo xtask setup does)"
    );
    let circuits = usize::from(args.circuits);
    let extra = usize::from(args.prefixes) - 1;
    ensure!(
        circuits * extra <= 32_768,
        "{circuits} circuits x {extra} extra prefixes: more /24s than 10.128.0.0/9 holds"
    );
    let prefix = format!("sc{}", std::process::id() % 10_000);
    let dir = std::env::temp_dir().join(format!("msee-scale-{prefix}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let config = dir.join("estate.toml");
    std::fs::write(&config, estate_toml(circuits))?;
    let model = circuit::load_files(&[config.as_path()])
        .map_err(|e| anyhow::anyhow!("{e}"))
        .context("the scale benchmark's estate")?;
    let mut plan = estate::plan(&model, &prefix, &estate::Pools::default(), &[])?;
    plan.share_customer_namespace();
    eprintln!(
        "msee-bench: scale: building the lab of {circuits} circuits ({} customer interfaces)...",
        circuits * 4
    );
    let built = Instant::now();
    let lab = EstateUp {
        state: estate::up(
            &plan,
            std::slice::from_ref(&config),
            &estate::Customers::all(estate::CustomerRouter::None),
            &traffic::vlan_switch::install_estate_switch,
            None,
        )?,
    };
    let build_secs = built.elapsed().as_secs_f64();
    let customers_ns = plan.customers[0].ns.clone();
    let expected_received = (circuits * 2 * (extra + 1) + circuits * 2) as u64;
    eprintln!(
        "msee-bench: scale: {circuits} circuits, {} sessions, {expected_received} prefixes received in all...",
        circuits * 4
    );
    // One circuit first (its RSS is the daemon's own part), then all; each
    // run with a fresh BIRD: a BIRD that saw its peer go was seen to leave
    // some of the next sessions without their UPDATEs and KEEPALIVEs.
    let one_name = plan.customers[0].circuit.clone();
    let one = with_bird(&customers_ns, &plan, extra, &dir.join("one"), |run_dir| {
        start_run(
            &lab.state,
            run_dir,
            Some(&one_name),
            (2 * (extra + 1) + 2) as u64,
        )
    })?;
    eprintln!(
        "msee-bench: scale:   one circuit: Established {:.2} s, routes {:.2} s; RSS {} MiB",
        one.established_secs,
        one.routes_secs,
        one.rss_bytes >> 20
    );
    let all = with_bird(&customers_ns, &plan, extra, &dir.join("all"), |run_dir| {
        start_run(&lab.state, run_dir, None, expected_received)
    })?;
    eprintln!(
        "msee-bench: scale:   all sessions Established {:.2} s, all routes in {:.2} s after start; RSS {} MiB",
        all.established_secs,
        all.routes_secs,
        all.rss_bytes >> 20
    );
    drop(lab);
    let _ = std::fs::remove_dir_all(&dir);
    let per_circuit =
        all.rss_bytes.saturating_sub(one.rss_bytes) as f64 / (circuits - 1).max(1) as f64;
    let run_json = |r: &StartRun| {
        json!({
            "established_secs": r.established_secs,
            "routes_secs": r.routes_secs,
            "sessions": r.sessions,
            "prefixes_received": r.prefixes_received,
            "fib_routes": r.fib_routes,
            "rss_bytes": r.rss_bytes,
            "cpu_secs": r.cpu_secs,
        })
    };
    Ok(json!({
        "circuits": circuits,
        "peerings": circuits * 2,
        "prefixes_per_private_peering": extra + 1,
        "lab_build_secs": build_secs,
        "all": run_json(&all),
        "one": run_json(&one),
        "rss_bytes_per_circuit": per_circuit,
    }))
}

/// Runs `f` with a fresh BIRD playing every customer in `ns` (its files in
/// `dir`), started and ready before `f` runs, stopped after.
fn with_bird<T>(
    ns: &str,
    plan: &estate::EstateLab,
    extra: usize,
    dir: &Path,
    f: impl FnOnce(&Path) -> Result<T>,
) -> Result<T> {
    std::fs::create_dir_all(dir)?;
    let bird = Bird::start(ns, &bird_conf(plan, extra, &dir.join("bird.log")), dir)?;
    let deadline = Instant::now() + Duration::from_secs(30);
    while !bird
        .birdc(&["show", "status"])
        .contains("Daemon is up and running")
    {
        ensure!(
            Instant::now() < deadline,
            "BIRD not up in 30 s: {}",
            bird.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // BIRD's loop can sit on a scheduled transmit for seconds (see the
    // install benchmark): keep it turning, so BIRD's pace is not measured.
    let nudger = Nudger::start(&dir.join("bird.ctl"))?;
    let out = f(dir).with_context(|| {
        let stuck: Vec<String> = bird
            .birdc(&["show", "protocols"])
            .lines()
            .filter(|l| l.contains(" BGP ") && !l.contains("Established"))
            .take(20)
            .map(str::to_owned)
            .collect();
        format!("BIRD's sessions not Established: {stuck:?}")
    });
    drop(nudger);
    drop(bird);
    out
}

/// Starts the daemon on the lab (all circuits, or `only` one), and waits
/// until every one of its sessions is Established and every prefix the
/// customers announce is received and written into the dataplane.
fn start_run(
    state: &estate::State,
    dir: &Path,
    only: Option<&str>,
    expected_received: u64,
) -> Result<StartRun> {
    std::fs::create_dir_all(dir)?;
    let socket = dir.join("api.sock");
    let mut args = estate::msee_args(state);
    args.extend(
        [
            "--api-socket",
            &socket.display().to_string(),
            "--connect-retry-secs",
            "1",
            "--idle-hold-secs",
            "1",
            "--log-level",
            "warn",
        ]
        .map(String::from),
    );
    if let Some(c) = only {
        args.extend(["--circuit".into(), c.to_owned()]);
    }
    let t0 = monotonic_ns();
    let daemon = Daemon::start(&args, dir).context("starting msee-daemon")?;
    let pid = daemon.pid().as_raw();
    let result = wait_complete(&socket, t0, expected_received, pid);
    if result.is_err() {
        // What the daemon saw, for the post-mortem (the directory stays).
        for (what, r) in [
            ("counters", Request::Counters),
            ("sessions", Request::Sessions),
        ] {
            if let Ok(v) = api::query(&socket, &r, Duration::from_secs(10)) {
                let _ = std::fs::write(dir.join(format!("{what}.json")), v.to_string());
            }
        }
    }
    let result = result.with_context(|| {
        let log = daemon.log();
        let tail: Vec<&str> = log.lines().rev().take(30).collect();
        format!(
            "daemon log tail:\n{}",
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        )
    });
    drop(daemon);
    result
}

fn wait_complete(socket: &Path, t0: u64, expected_received: u64, pid: i32) -> Result<StartRun> {
    let deadline = Instant::now() + TIMEOUT;
    let q = |r: &Request| api::query(socket, r, Duration::from_secs(10));
    let mut established_at = None;
    let mut last_seen = String::new();
    loop {
        ensure!(
            Instant::now() < deadline,
            "not complete in {TIMEOUT:?}: {last_seen} (files in {})",
            socket.parent().unwrap_or(socket).display()
        );
        let now = monotonic_ns();
        let sessions = q(&Request::Sessions)?;
        let all = sessions.as_array().context("sessions")?;
        let up = all.iter().filter(|s| s["state"] == "Established").count();
        let received: u64 = all
            .iter()
            .map(|s| s["prefixes_received"].as_u64().unwrap_or(0))
            .sum();
        last_seen = format!(
            "{up} of {} sessions Established, {received} of {expected_received} prefixes received",
            all.len()
        );
        if established_at.is_none() && !all.is_empty() && up == all.len() {
            established_at = Some(now);
        }
        if up == all.len() && received == expected_received {
            // Received: now wait until the FIB writes stop (1 s quiet).
            let fib = q(&Request::Fib { lookup: vec![] })?;
            let record = &fib["record"];
            ensure!(
                record["failed_batches"].as_u64().unwrap_or(0) == 0,
                "a FIB batch failed: {fib}"
            );
            let last_write = record["last_write_ns"].as_u64().unwrap_or(0);
            let now_ns = fib["now_ns"].as_u64().context("now_ns")?;
            if last_write > 0 && now_ns.saturating_sub(last_write) > 1_000_000_000 {
                let cpu_ns = fib["cpu_ns"].as_u64().unwrap_or(0);
                return Ok(StartRun {
                    established_secs: (established_at.unwrap_or(now) - t0) as f64 / 1e9,
                    routes_secs: (last_write - t0) as f64 / 1e9,
                    sessions: all.len(),
                    prefixes_received: received,
                    fib_routes: fib["routes"].as_u64().unwrap_or(0),
                    rss_bytes: msee_sys::host::rss_bytes(pid)
                        .with_context(|| format!("the daemon's memory (pid {pid})"))?,
                    cpu_secs: cpu_ns as f64 / 1e9,
                });
            }
        } else if up < all.len() {
            // A session that went down again: Established is when all are.
            established_at = None;
        }
        // The Established time is this poll's: 50 ms granularity.
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn monotonic_ns() -> u64 {
    let t = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC).expect("CLOCK_MONOTONIC");
    t.tv_sec() as u64 * 1_000_000_000 + t.tv_nsec() as u64
}

// ---- Per packet: N circuits' domains against one.

/// An msee with `circuits` circuits on `lo`, each on its own QinQ tags with
/// its own routing domain of `routes` routes and a link that loops back to
/// the MSEE on the same tags (so a forwarded frame is forwarded again on
/// every repeated run, as in [`crate::fixture`]).
fn msee_with_circuits(circuits: usize, routes: usize) -> Result<Msee> {
    let mut m = Msee::load(&LoadOptions {
        fib: crate::fixture::fib_sizes(circuits, routes, crate::fixture::TableShape::Internet),
        ..Default::default()
    })
    .context("loading msee")?;
    m.add_port(LO)?;
    let table = route_table(routes);
    let mut entries = Vec::with_capacity(circuits * table.len());
    for c in 0..circuits {
        let (id, domain, circuit) = (c as u32, c as u32 + 1, c as u32 + 1);
        let (outer, inner) = (s_tag(c) as u16, 10u16);
        m.set_link(
            id,
            Link {
                ifindex: LO,
                outer_vlan: outer,
                inner_vlan: inner,
                outer_tpid: msee_abi::ETH_P_8021Q,
                role: LinkRole::Azure as u8,
                src_mac: MSEE_MAC,
                dst_mac: MSEE_MAC,
                circuit,
                ..Default::default()
            },
        )?;
        m.set_link_state(id, true)?;
        m.set_attachment(
            AttachmentKey {
                ifindex: LO,
                outer_vlan: outer,
                inner_vlan: inner,
            },
            Attachment {
                link: id,
                domain,
                circuit,
                peering: PeeringKind::Private as u8,
                role: LinkRole::Azure as u8,
                mac: MSEE_MAC,
                ..Default::default()
            },
        )?;
        m.set_group(
            id,
            &[GroupMember {
                link: id,
                preference: 0,
            }],
        )?;
        let route = Route {
            group: id,
            flags: 0,
        };
        entries.extend(table.iter().map(|p| (domain, IpNet::V4(*p), route)));
    }
    m.upsert_routes(&entries)?;
    Ok(m)
}

/// The probe (to [`PROBE_DST`], in every domain's table) on circuit `c`'s tags.
fn circuit_frame(c: usize) -> Vec<u8> {
    let payload = vlan_frames::udp(4000, 5000, &[0; 18]);
    let ip = vlan_frames::ipv4(
        Ipv4Addr::new(192, 168, 1, 10),
        PROBE_DST,
        vlan_frames::PROTO_UDP,
        255,
        &payload,
    );
    let tags = [
        Tag {
            tpid: msee_abi::ETH_P_8021Q,
            vid: s_tag(c) as u16,
        },
        Tag {
            tpid: msee_abi::ETH_P_8021Q,
            vid: 10,
        },
    ];
    vlan_frames::eth(
        MSEE_MAC,
        [0x02, 0, 0, 0, 0, 0x0c],
        &tags,
        vlan_frames::ETH_P_IPV4,
        &ip,
    )
}

/// Median ns per run over `calls`, each call on the next of `frames`.
fn sample(m: &mut Msee, frames: &[Vec<u8>], calls: usize) -> Result<f64> {
    let mut times = Vec::with_capacity(calls);
    for k in 0..calls {
        let (verdict, d) = m.time_run(&frames[k % frames.len()], LO, REPEAT)?;
        ensure!(
            verdict == XDP_REDIRECT,
            "XDP action {verdict}, not a redirect (frame {})",
            k % frames.len()
        );
        times.push(d.as_nanos() as f64);
    }
    Ok(median(&times))
}

fn per_packet(circuits: usize, routes: usize, rounds: usize) -> Result<Value> {
    eprintln!(
        "msee-bench: scale: per packet, 1 circuit vs {circuits} circuits of {routes} routes each..."
    );
    let loaded = Instant::now();
    let mut one = msee_with_circuits(1, routes)?;
    let mut many = msee_with_circuits(circuits, routes)?;
    let load_secs = loaded.elapsed().as_secs_f64();
    let one_frames = vec![circuit_frame(0)];
    let many_frames: Vec<Vec<u8>> = (0..circuits).map(circuit_frame).collect();
    // Warm-up: every circuit's destination once.
    sample(&mut many, &many_frames, circuits)?;
    sample(&mut one, &one_frames, 1)?;
    // Calls alternate between the two, so both see the same machine; each
    // round's ratio is of its two medians, and the figure is the median of
    // the rounds' ratios (as the per-packet section does).
    // Each call costs milliseconds of wall time (see the per-packet
    // section): this many per side and round keeps the whole under a minute.
    let calls = circuits.max(100);
    let (mut a, mut b, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..rounds {
        let (mut x, mut y) = (Vec::with_capacity(calls), Vec::with_capacity(calls));
        for k in 0..calls {
            x.push(sample(&mut one, &one_frames, 1)?);
            y.push(sample(&mut many, &many_frames[k % circuits..], 1)?);
        }
        let (x, y) = (median(&x), median(&y));
        if x <= 0.0 || y <= 0.0 {
            bail!("per-packet samples of zero time: {x} {y}");
        }
        a.push(x);
        b.push(y);
        ratios.push(x / y);
    }
    let (one_ns, many_ns) = (median(&a), median(&b));
    Ok(json!({
        "routes_per_domain": routes,
        "rounds": rounds,
        "calls_per_sample": calls,
        "load_secs": load_secs,
        "one_ns": one_ns,
        "many_ns": many_ns,
        "one_samples": a,
        "many_samples": b,
        "ratios": ratios,
        "ratio": median(&ratios),
    }))
}

// ---- The report.

pub fn render(w: &mut String, s: &Value) -> Result<()> {
    let circuits = s["circuits"].as_u64().context("circuits")?;
    let p = &s["per_packet"];
    writeln!(w, "## Scale of one daemon\n")?;
    if let Some(e) = s.get("estate").filter(|e| e.is_object()) {
        let all = &e["all"];
        let one = &e["one"];
        writeln!(
            w,
            "{circuits} circuits on one ExpressRoute Direct port pair (QinQ: S-tag per circuit, \
             C-tag per peering), each with private and Microsoft peering: {} peerings, {} BGP \
             sessions with BFD at 300 ms x 3, one BIRD process as every customer. Each customer \
             announces {} prefixes on private peering and its registered /24 on Microsoft \
             peering ({} prefixes received in all). Times from the daemon's start (lab already \
             built, BIRD already running) to the last session Established and to the last route \
             written into the dataplane (1 s without writes after every prefix was received).\n",
            e["peerings"],
            all["sessions"],
            e["prefixes_per_private_peering"],
            thousands(all["prefixes_received"].as_u64().unwrap_or(0)),
        )?;
        writeln!(
            w,
            "| daemon runs | sessions | all Established | all routes in | routes in the dataplane | RSS | daemon CPU |"
        )?;
        writeln!(w, "|---|---:|---:|---:|---:|---:|---:|")?;
        for (what, r) in [
            (format!("{circuits} circuits"), all),
            ("1 circuit".to_owned(), one),
        ] {
            writeln!(
                w,
                "| {what} | {} | {:.2} s | {:.2} s | {} | {:.1} MiB | {:.2} s |",
                r["sessions"],
                f(&r["established_secs"]),
                f(&r["routes_secs"]),
                thousands(r["fib_routes"].as_u64().unwrap_or(0)),
                f(&r["rss_bytes"]) / 1_048_576.0,
                f(&r["cpu_secs"]),
            )?;
        }
        writeln!(
            w,
            "\nMemory per circuit ({circuits} circuits' RSS less one circuit's, over {}): **{} KiB**. \
             Building the lab (namespaces, {} customer interfaces, the switch) took {:.1} s.\n",
            circuits - 1,
            (f(&e["rss_bytes_per_circuit"]) / 1024.0).round(),
            circuits * 4,
            f(&e["lab_build_secs"]),
        )?;
    }
    writeln!(
        w,
        "Per packet (`BPF_PROG_TEST_RUN`, {} runs per call), {} routes in each circuit's domain, \
         frames on each circuit's QinQ tags to a destination of its table: one circuit loaded \
         against {circuits} loaded with the calls spread over all of them, calls alternating \
         between the two: **{:.1} ns vs {:.1} ns** (medians), **{:.3}** of the one-circuit rate \
         (median of {} rounds' ratios; target ≥ {TARGET_MANY_VS_ONE}).\n",
        REPEAT,
        thousands(p["routes_per_domain"].as_u64().unwrap_or(0)),
        f(&p["one_ns"]),
        f(&p["many_ns"]),
        f(&p["ratio"]),
        p["rounds"],
    )?;
    Ok(())
}

pub fn targets(t: &mut Targets<'_>, s: &Value) -> Result<()> {
    let circuits = s["circuits"].as_u64().context("circuits")?;
    let ratio = s["per_packet"]["ratio"]
        .as_f64()
        .context("per_packet.ratio")?;
    t.row(
        &format!("Per packet (BPF_PROG_TEST_RUN), {circuits} circuits' domains loaded vs 1"),
        &format!("{ratio:.3}"),
        &format!("≥ {TARGET_MANY_VS_ONE}"),
        ratio >= TARGET_MANY_VS_ONE,
        format!("{ratio:.3} of the one-circuit rate"),
    )
}

/// A number of the JSON, 0 when missing (the report of a partial run).
fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_estate_file_is_valid_and_plans_one_direct_pair() {
        let text = estate_toml(5);
        let model = circuit::load_toml(&text).unwrap();
        assert_eq!(model.circuits.len(), 5);
        let mut lab = estate::plan(&model, "t", &estate::Pools::default(), &[]).unwrap();
        lab.share_customer_namespace();
        assert_eq!(lab.pairs.len(), 1);
        assert_eq!(lab.customers[4].peerings.len(), 2);
        assert_eq!(lab.customers[4].peerings[1].tags, (104, 20));
        let conf = bird_conf(&lab, 3, Path::new("/tmp/x.log"));
        assert_eq!(conf.matches("protocol bgp ").count(), 20);
        // Circuit 4's private peering: its /24 and 3 more.
        let s = conf.split("protocol static s4_0").nth(1).unwrap();
        assert_eq!(s.split('}').next().unwrap().matches("route ").count(), 4);
    }

    #[test]
    fn extra_prefixes_are_disjoint_between_circuits() {
        let a = extra_prefixes(0, 100);
        let b = extra_prefixes(1, 100);
        assert!(b.iter().all(|p| !a.contains(p)));
        let block: Ipv4Net = "10.128.0.0/9".parse().unwrap();
        let last = extra_prefixes(326, 100);
        assert!(a.iter().chain(&b).chain(&last).all(|p| block.contains(p)));
    }
}
