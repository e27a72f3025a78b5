//! `msee-bench`: per-packet cost of `msee` against the `baseline` devmap
//! redirect through `BPF_PROG_TEST_RUN`, route install rates through the
//! dataplane API and from a real BGP peer (BIRD, see
//! `e2e_tests::install_bench`), and throughput through the lab. Run by
//! `cargo xtask bench` (as root), which turns the JSON this prints on stdout
//! into BENCHMARKS.md. Progress goes to stderr.
//!
//! Nothing is sent: every frame is run in the kernel on a copy. The msee
//! instances route the probe over a "loop" link whose neighbour MAC is the
//! MSEE's own and which is untagged, so a forwarded frame comes back
//! identical but for the TTL and is forwarded again on every repeated run:
//! `repeat` measures the whole forwarding path, not a drop.
use std::{
    collections::HashSet,
    net::{IpAddr, Ipv4Addr},
    process::ExitCode,
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail, ensure};
use dataplane::{AttachMode, LoadOptions, Msee};
use e2e_tests::{
    install_bench::{self, InstallBench},
    lab_bench::{GenKind, LabBench, Sample, VethBench, measure, with_netns},
    packet::{ETH_LEN, IPV4_LEN, UDP_LEN, UdpFrame, parse_udp},
};
use ipnet::{IpNet, Ipv4Net};
use msee_abi::{
    Attachment, AttachmentKey, Direction, DropReason, GroupMember, Link, LinkRole, PeeringKind,
    ROUTE_OUT_OF_REACH, Route,
};
use serde_json::json;
use testkit::{Rng, median};
use traffic::Baseline;

const XDP_PASS: u32 = 2;
const XDP_REDIRECT: u32 = 4;
/// `lo`: present everywhere; the test runs never send anything on it.
const LO: u32 = 1;
const MSEE_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x0a];
const FRAME_BYTES: usize = 64;
const DOMAIN: u32 = 1;
const LOOP_LINK: u32 = 0;
const LOOP_GROUP: u32 = 0;
/// The probe's destination and its route (one of the installed prefixes).
const PROBE_DST: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 1);
const PROBE_ROUTE: &str = "10.77.0.0/24";
/// Frames start with TTL 255 and lose one per forward, and the kernel
/// re-runs the same buffer: 250 runs per call keep every run a forward.
const REPEAT: u32 = 250;
/// "Non-limiting" policing: 100 Gbit/s on both directions of the loop link,
/// about 5 ns of line time per 64-byte frame, far below a run's cost.
const POLICE_BITS_PER_SEC: u64 = 100_000_000_000;
const ROUTE_SEED: u64 = 0x5eed_0e5c_2026_0003;

struct Args {
    rounds: usize,
    calls: u32,
    /// Rounds of the lab and generator throughput samples (0 = skip them).
    lab_rounds: usize,
    /// Route installation only: no per-packet, lab or generator figures.
    only_install: bool,
    /// ... and only from a BGP peer (not through the dataplane API).
    only_bgp_install: bool,
    /// Runs per table size of the install from a BGP peer (0 = skip it).
    install_runs: usize,
    /// Table sizes of the install from a BGP peer.
    install_prefixes: Vec<usize>,
    /// `--spin ROUTES[,police]`: only run the probe through one msee
    /// configuration for `spin_seconds`, for a profiler to sample.
    spin: Option<(usize, bool)>,
    spin_seconds: u64,
    /// `--spin-destinations N`: the spin's frames go to N destinations.
    spin_destinations: u32,
    /// Another build of the msee object, loaded next to the embedded one
    /// and measured in the same rounds (`--compare-object PATH`).
    compare: Option<std::path::PathBuf>,
    /// Calls of one run each per sample of the many-destinations section
    /// (0 = skip it).
    cold_calls: u32,
}

fn parse_args() -> Result<Args> {
    let mut args = Args {
        rounds: 10,
        calls: 16,
        lab_rounds: 15,
        only_install: false,
        only_bgp_install: false,
        install_runs: 3,
        install_prefixes: vec![10_000, 1_000_000],
        spin: None,
        spin_seconds: 10,
        spin_destinations: 1,
        compare: None,
        cold_calls: 4 * msee_abi::ROUTE_CACHE_V4_SLOTS,
    };
    let usage = "expected --rounds N, --calls N, --lab-rounds N, \
                 --only install|bgp-install, --install-runs N, --install-prefixes N[,N...], \
                 --spin ROUTES[,police], --spin-seconds N, --spin-destinations N, --compare-object PATH, --cold-calls N";
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = |name: &str| -> Result<String> {
            it.next().with_context(|| format!("{name} needs a value"))
        };
        let number = |name: &str, v: &str| -> Result<u64> {
            v.parse()
                .with_context(|| format!("{name} {v}: not a positive integer"))
        };
        match a.as_str() {
            "--rounds" => args.rounds = number(&a, &value(&a)?)? as usize,
            "--calls" => args.calls = number(&a, &value(&a)?)? as u32,
            "--lab-rounds" => args.lab_rounds = number(&a, &value(&a)?)? as usize,
            "--install-runs" => args.install_runs = number(&a, &value(&a)?)? as usize,
            "--install-prefixes" => {
                args.install_prefixes = value(&a)?
                    .split(',')
                    .map(|v| number(&a, v).map(|n| n as usize))
                    .collect::<Result<_>>()?;
                ensure!(
                    args.install_prefixes.iter().all(|n| *n >= 1),
                    "--install-prefixes: sizes must be at least 1"
                );
            }
            "--spin" => {
                let v = value(&a)?;
                let (routes, police) = match v.split_once(',') {
                    Some((r, "police")) => (r, true),
                    Some((_, other)) => bail!("--spin {v}: `{other}` is not `police`"),
                    None => (v.as_str(), false),
                };
                args.spin = Some((number(&a, routes)? as usize, police));
            }
            "--spin-seconds" => args.spin_seconds = number(&a, &value(&a)?)?,
            "--spin-destinations" => {
                args.spin_destinations = u32::try_from(number(&a, &value(&a)?)?)
                    .context("--spin-destinations: too large")?
            }
            "--compare-object" => args.compare = Some(value(&a)?.into()),
            "--cold-calls" => args.cold_calls = number(&a, &value(&a)?)? as u32,
            "--only" => match value(&a)?.as_str() {
                "install" => args.only_install = true,
                "bgp-install" => (args.only_install, args.only_bgp_install) = (true, true),
                other => bail!("--only {other}: `install` or `bgp-install`"),
            },
            other => bail!("unknown argument {other} ({usage})"),
        }
    }
    ensure!(
        args.rounds >= 1 && args.calls >= 1,
        "--rounds and --calls must be at least 1"
    );
    Ok(args)
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("msee-bench: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// `count` distinct IPv4 prefixes, the probe's route and `count - 1` random
/// unicast /24../32 that do not overlap it (so the probe's longest match is
/// its own route), the probe's in the middle of the install order.
fn route_table(count: usize) -> Vec<Ipv4Net> {
    let probe: Ipv4Net = PROBE_ROUTE.parse().expect("valid probe route");
    let mut rng = Rng::new(ROUTE_SEED);
    let mut seen = HashSet::with_capacity(count);
    let mut table = Vec::with_capacity(count);
    while table.len() + 1 < count {
        let r = rng.next_u64();
        let addr = Ipv4Addr::from(r as u32);
        let len = 24 + (r >> 32) as u8 % 9;
        let first = addr.octets()[0];
        if first == 0 || first == 127 || first >= 224 {
            continue;
        }
        let net = Ipv4Net::new(addr, len).expect("length <= 32").trunc();
        if probe.contains(&net.network()) || !seen.insert(net) {
            continue;
        }
        table.push(net);
    }
    table.insert(table.len() / 2, probe);
    table
}

/// An ARP request to the MSEE, padded to 64 bytes: msee parses L2, looks
/// the attachment up, counts and passes it.
fn arp_frame() -> Vec<u8> {
    let mut f = vec![0u8; FRAME_BYTES];
    f[0..6].copy_from_slice(&[0xff; 6]);
    f[6..12].copy_from_slice(&[0x02, 0, 0, 0, 0, 0x0c]);
    f[12..14].copy_from_slice(&0x0806u16.to_be_bytes());
    // Ethernet/IPv4, request; addresses do not matter to msee.
    f[14..22].copy_from_slice(&[0, 1, 8, 0, 6, 4, 0, 1]);
    f
}

fn probe_frame() -> Vec<u8> {
    udp_frame(PROBE_DST, 255)
}

fn udp_frame(dst: Ipv4Addr, ttl: u8) -> Vec<u8> {
    let mut f = UdpFrame::v4(Ipv4Addr::new(192, 168, 1, 10), dst);
    f.dst_mac = MSEE_MAC;
    f.ttl = ttl;
    f.payload = vec![0; FRAME_BYTES - ETH_LEN - IPV4_LEN - UDP_LEN];
    let frame = f.build();
    assert_eq!(frame.len(), FRAME_BYTES);
    frame
}

const OUT_OF_REACH_ROUTE: &str = "10.98.0.0/24";
const OUT_OF_REACH_DST: Ipv4Addr = Ipv4Addr::new(10, 98, 0, 1);
const LINK_DOWN_ROUTE: &str = "10.97.0.0/24";
const LINK_DOWN_DST: Ipv4Addr = Ipv4Addr::new(10, 97, 0, 1);
const NO_ROUTE_DST: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 1);

/// Frames that leave msee at successive points of its path (none rewrites
/// the frame, so repeated runs repeat the same path): the differences
/// between them are what each stage costs. The last, TTL 1, branches off
/// the path after the route lookup (`TTL_STAGE_FROM` names where).
fn stage_frames() -> Vec<(&'static str, u32, Vec<u8>)> {
    const XDP_DROP: u32 = 1;
    vec![
        (
            "ARP: L2, attachment lookup, count, XDP_PASS",
            XDP_PASS,
            arp_frame(),
        ),
        (
            "no route: + IPv4 checks, route lookup (a cached miss), drop",
            XDP_DROP,
            udp_frame(NO_ROUTE_DST, 255),
        ),
        (
            "out of reach: a cached route instead of a miss, drop",
            XDP_DROP,
            udp_frame(OUT_OF_REACH_DST, 255),
        ),
        (
            "link down: + group, link choice, drop",
            XDP_DROP,
            udp_frame(LINK_DOWN_DST, 255),
        ),
        (
            "forwarded: + policer checks (off), rewrite, devmap redirect",
            XDP_REDIRECT,
            probe_frame(),
        ),
        (
            "TTL 1: out of reach's path to the TTL check, then the ICMP error budget (a clock read), drop",
            XDP_DROP,
            udp_frame(PROBE_DST, 1),
        ),
    ]
}

/// The stage (index into `stage_frames`) the TTL 1 frame leaves the path
/// after: its step is counted from there.
const TTL_STAGE_FROM: usize = 2;

/// The 1-route msee plus the routes the stage frames need: one out of
/// reach, one over a second link that is down.
fn msee_for_stages(object: Option<&[u8]>) -> Result<Msee> {
    let (mut m, _) = msee_from(object, 1, Write::Batch)?;
    let down_link = LOOP_LINK + 1;
    let down_group = LOOP_GROUP + 1;
    m.set_link(
        down_link,
        Link {
            ifindex: LO,
            src_mac: MSEE_MAC,
            dst_mac: MSEE_MAC,
            ..Default::default()
        },
    )?;
    m.set_link_state(down_link, false)?;
    m.set_group(
        down_group,
        &[GroupMember {
            link: down_link,
            preference: 0,
        }],
    )?;
    m.upsert_route(
        DOMAIN,
        OUT_OF_REACH_ROUTE.parse()?,
        Route {
            group: LOOP_GROUP,
            flags: ROUTE_OUT_OF_REACH,
        },
    )?;
    m.upsert_route(
        DOMAIN,
        LINK_DOWN_ROUTE.parse()?,
        Route {
            group: down_group,
            flags: 0,
        },
    )?;
    Ok(m)
}

/// An msee with one circuit side on `lo` whose only link loops back to the
/// MSEE, and `routes` routes over it. Returns it and the install time.
/// How `msee_with_routes` writes its table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Write {
    /// `upsert_route`, one syscall per route.
    Single,
    /// `upsert_routes`, in the table's (random) order.
    Batch,
    /// `upsert_routes`, sorted by address first (the sort is timed too).
    BatchSorted,
}

fn msee_with_routes(routes: usize, write: Write) -> Result<(Msee, Duration)> {
    msee_from(None, routes, write)
}

/// As `msee_with_routes`, from `object` (another build) if given.
fn msee_from(object: Option<&[u8]>, routes: usize, write: Write) -> Result<(Msee, Duration)> {
    let opts = LoadOptions::default();
    let mut m = match object {
        None => Msee::load(&opts),
        Some(o) => Msee::load_object(&opts, o),
    }
    .context("loading msee")?;
    m.add_port(LO)?;
    m.set_link(
        LOOP_LINK,
        Link {
            ifindex: LO,
            role: LinkRole::Azure as u8,
            src_mac: MSEE_MAC,
            dst_mac: MSEE_MAC,
            circuit: 1,
            ..Default::default()
        },
    )?;
    m.set_link_state(LOOP_LINK, true)?;
    m.set_attachment(
        AttachmentKey {
            ifindex: LO,
            outer_vlan: 0,
            inner_vlan: 0,
        },
        Attachment {
            link: LOOP_LINK,
            domain: DOMAIN,
            circuit: 1,
            peering: PeeringKind::Private as u8,
            role: LinkRole::Azure as u8,
            mac: MSEE_MAC,
            ..Default::default()
        },
    )?;
    m.set_group(
        LOOP_GROUP,
        &[GroupMember {
            link: LOOP_LINK,
            preference: 0,
        }],
    )?;
    let table = route_table(routes);
    let route = Route {
        group: LOOP_GROUP,
        flags: 0,
    };
    let start = Instant::now();
    match write {
        Write::Single => {
            for prefix in &table {
                m.upsert_route(DOMAIN, IpNet::V4(*prefix), route)
                    .with_context(|| format!("installing route {prefix}"))?;
            }
        }
        Write::Batch | Write::BatchSorted => {
            let mut entries: Vec<(u32, IpNet, Route)> = table
                .iter()
                .map(|p| (DOMAIN, IpNet::V4(*p), route))
                .collect();
            if write == Write::BatchSorted {
                entries.sort_unstable_by_key(|e| e.1);
            }
            m.upsert_routes(&entries)?;
        }
    }
    let install = start.elapsed();
    Ok((m, install))
}

/// Refuse to time anything that does not forward the probe as intended.
fn check_msee_forwards(m: &mut Msee, frame: &[u8], routes: usize) -> Result<()> {
    let (verdict, out) = m.test_run(frame, LO)?;
    ensure!(
        verdict == XDP_REDIRECT,
        "msee with {routes} routes returned XDP action {verdict} for the probe, not XDP_REDIRECT"
    );
    let p = parse_udp(&out).context("msee's output is not an Ethernet/IPv4/UDP frame")?;
    ensure!(
        p.dst_mac == MSEE_MAC && p.ttl == 254 && p.ipv4_checksum_ok && out.len() == frame.len(),
        "msee with {routes} routes did not loop the probe back (dst {:02x?}, TTL {}, checksum ok {}, {} bytes)",
        p.dst_mac,
        p.ttl,
        p.ipv4_checksum_ok,
        out.len()
    );
    Ok(())
}

/// One sample: the median of `calls` kernel-timed calls of `REPEAT` runs,
/// in ns per run (the kernel reports each call's mean in whole
/// nanoseconds). On a shared machine a call is now and then slowed by other
/// work: a sample's mean can read twice its fastest call, and swings the
/// ratios between configurations from run to run; the median call is the
/// program's typical cost without those bursts. Also returns the fastest
/// call.
fn sample(
    calls: u32,
    what: &str,
    expect: u32,
    mut run: impl FnMut() -> Result<(u32, Duration)>,
) -> Result<Sample2> {
    let mut times = Vec::with_capacity(calls as usize);
    for _ in 0..calls {
        let (verdict, d) = run()?;
        ensure!(
            verdict == expect,
            "{what}: XDP action {verdict} during timing, not {expect}"
        );
        times.push(d.as_nanos() as f64);
    }
    ensure!(
        !times.is_empty(),
        "{what}: a sample needs at least one call"
    );
    times.sort_by(f64::total_cmp);
    let n = times.len();
    Ok(Sample2 {
        median: (times[(n - 1) / 2] + times[n / 2]) / 2.0,
        fastest: times[0],
    })
}

/// One sample: the median of its calls, and its fastest call (ns per run).
#[derive(Clone, Copy, Debug)]
struct Sample2 {
    median: f64,
    fastest: f64,
}

fn set_policing(m: &mut Msee, on: bool) -> Result<()> {
    let rate = if on { POLICE_BITS_PER_SEC } else { 0 };
    for dir in Direction::ALL {
        m.set_policer(LOOP_LINK, dir, rate, None)?;
    }
    Ok(())
}

fn stats(v: &[f64]) -> serde_json::Value {
    json!({
        "median": median(v),
        "min": v.iter().copied().fold(f64::INFINITY, f64::min),
        "max": v.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        "samples": v,
    })
}

struct Config {
    instance: usize,
    policing: bool,
    cost: Vec<f64>,
    /// Each sample's fastest call.
    fastest: Vec<f64>,
    /// Baseline sample taken just before each of this config's samples.
    paired_baseline: Vec<f64>,
}

fn run() -> Result<()> {
    let args = parse_args()?;
    if !nix::unistd::geteuid().is_root() {
        bail!("needs root to load XDP programs (run `sudo cargo xtask bench`)");
    }
    if let Some((routes, police)) = args.spin {
        return spin(routes, police, args.spin_seconds, args.spin_destinations);
    }
    let mut report = if args.only_install {
        json!({ "only": "install" })
    } else {
        packet_bench(&args)?
    };
    if !args.only_bgp_install {
        report["install"] = api_install_bench()?;
        report["route_batch"] = json!(dataplane::ROUTE_BATCH);
    }
    if args.install_runs > 0 {
        report["bgp_install"] = bgp_install_bench(&args)?;
    }
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}

/// Forward the lab's stream through one configuration for `seconds`, for a
/// profiler (`perf record -a`) to sample: `routes` 0 is the baseline, else an
/// msee with that many routes, policed (100 Gbit/s) or not. Prints the
/// forwarded pps of each 1 s window.
fn spin(routes: usize, police: bool, seconds: u64, destinations: u32) -> Result<()> {
    let prefix = format!("b{}s", std::process::id() % 100_000);
    let lb = LabBench::up(&prefix, PROBE_DST).context("lab for --spin")?;
    let ns = lb.ns_msee();
    let mut baseline = None;
    let mut msee = None;
    if routes == 0 {
        let mut b = Baseline::load().context("loading baseline")?;
        with_netns(&ns, || {
            b.set_redirect(lb.primary_ifindex, lb.azure_ifindex)?;
            Ok(b.attach(lb.primary_ifindex, AttachMode::Native)?)
        })?;
        baseline = Some(b);
    } else {
        let (mut m, _) = msee_with_routes(routes, Write::Batch)?;
        lab_program(&mut m, &lb)?;
        if !police {
            for link in [LAB_IN_LINK, LAB_OUT_LINK] {
                for dir in Direction::ALL {
                    m.set_policer(link, dir, 0, None)?;
                }
            }
        }
        with_netns(
            &ns,
            || Ok(m.attach(lb.primary_ifindex, AttachMode::Native)?),
        )?;
        msee = Some(m);
    }
    eprintln!(
        "msee-bench: spinning routes {routes} (0: baseline), policing {police}, {destinations} destinations, {seconds} s..."
    );
    let until = Instant::now() + Duration::from_secs(seconds);
    while Instant::now() < until {
        let s = lab_sample(&lb, destinations)?;
        eprintln!(
            "msee-bench:   {:.0} pps forwarded ({:.0} sent)",
            s.rx_pps, s.tx_pps
        );
    }
    with_netns(&ns, || {
        if let Some(b) = baseline.as_mut() {
            b.detach()?;
        }
        if let Some(m) = msee.as_mut() {
            m.detach_all()?;
        }
        Ok(())
    })
}

/// One build of msee under test: the embedded object, or the one given
/// with `--compare-object`, each with its instances (1, 10,000 and
/// 1,000,000 routes) and its stage instance.
struct Program {
    name: String,
    instances: Vec<(usize, Msee)>,
    staged: Msee,
    configs: Vec<Config>,
    stage_cost: Vec<Vec<f64>>,
    stage_fastest: Vec<Vec<f64>>,
}

/// Load every program's instances, interleaved by table size (1-route
/// instances of every program, then the 10,000-route ones...): the kernel
/// allocates each trie's nodes as it is filled, and memory taken at
/// different times lies differently in the caches and TLB, which shows in
/// the many-destinations figures (an A/A run of two programs loaded one
/// after the other read ~10% apart there).
fn load_programs(objects: &[(&str, Option<&[u8]>)], n_stages: usize) -> Result<Vec<Program>> {
    let frame = probe_frame();
    let mut instances: Vec<Vec<(usize, Msee)>> = objects.iter().map(|_| Vec::new()).collect();
    for routes in [1usize, 10_000, 1_000_000] {
        for ((name, object), list) in objects.iter().zip(instances.iter_mut()) {
            eprintln!("msee-bench: loading {name} with {routes} IPv4 routes...");
            let (mut m, _) = msee_from(*object, routes, Write::Batch)?;
            check_msee_forwards(&mut m, &frame, routes)?;
            list.push((routes, m));
        }
    }
    let mut programs = Vec::new();
    for ((name, object), instances) in objects.iter().zip(instances) {
        let configs = (0..instances.len())
            .flat_map(|instance| {
                [false, true].map(|policing| Config {
                    instance,
                    policing,
                    cost: Vec::new(),
                    fastest: Vec::new(),
                    paired_baseline: Vec::new(),
                })
            })
            .collect();
        programs.push(Program {
            name: (*name).to_owned(),
            instances,
            staged: msee_for_stages(*object).context("msee for the stage breakdown")?,
            configs,
            stage_cost: vec![Vec::new(); n_stages],
            stage_fastest: vec![Vec::new(); n_stages],
        });
    }
    Ok(programs)
}

/// `items` in order in even rounds, reversed in odd ones.
fn alternate<T>(items: impl DoubleEndedIterator<Item = T>, round: usize) -> Vec<T> {
    let mut v: Vec<T> = items.collect();
    if round % 2 == 1 {
        v.reverse();
    }
    v
}

/// Per-packet cost, then (unless `--lab-rounds 0`) the lab and generators.
fn packet_bench(args: &Args) -> Result<serde_json::Value> {
    let frame = probe_frame();
    let stages = stage_frames();

    let mut baseline = Baseline::load().context("loading baseline")?;
    baseline.set_port(LO)?;

    let compare_object = match &args.compare {
        Some(path) => {
            Some(std::fs::read(path).with_context(|| format!("reading {}", path.display()))?)
        }
        None => None,
    };
    let mut objects: Vec<(&str, Option<&[u8]>)> = vec![("msee", None)];
    if let Some(o) = &compare_object {
        objects.push(("compare", Some(o.as_slice())));
    }
    let mut programs = load_programs(&objects, stages.len())?;

    let mut baseline_all = Vec::new();
    let mut baseline_fastest = Vec::new();
    let mut calls_made = 0u64;
    let started = Instant::now();
    eprintln!(
        "msee-bench: {} rounds of baseline/msee pairs, {} calls x {REPEAT} runs per sample...",
        args.rounds, args.calls
    );
    let n_configs = programs[0].configs.len();
    // Round 0 warms up (cold caches, JIT pages) and is not recorded.
    for round in 0..=args.rounds {
        for c in 0..n_configs {
            let b = sample(args.calls, "baseline", XDP_REDIRECT, || {
                Ok(baseline.time_run(&frame, LO, REPEAT)?)
            })?;
            if round > 0 {
                baseline_all.push(b.median);
                baseline_fastest.push(b.fastest);
            }
            // Programs alternate which goes first from round to round: a
            // sample taken right after another program's reads differently
            // (an A/A run shows it), so the order must not favour one.
            for p in alternate(programs.iter_mut(), round) {
                let config = &mut p.configs[c];
                let (routes, m) = &mut p.instances[config.instance];
                set_policing(m, config.policing)?;
                let what = format!("{}, {routes} routes, policing {}", p.name, config.policing);
                let cost = sample(args.calls, &what, XDP_REDIRECT, || {
                    Ok(m.time_run(&frame, LO, REPEAT)?)
                })?;
                if round > 0 {
                    config.paired_baseline.push(b.median);
                    config.cost.push(cost.median);
                    config.fastest.push(cost.fastest);
                }
            }
        }
        for (s, (what, expect, f)) in stages.iter().enumerate() {
            for p in alternate(programs.iter_mut(), round) {
                let staged = &mut p.staged;
                let cost = sample(args.calls, what, *expect, || {
                    Ok(staged.time_run(f, LO, REPEAT)?)
                })?;
                if round > 0 {
                    p.stage_cost[s].push(cost.median);
                    p.stage_fastest[s].push(cost.fastest);
                }
            }
        }
        calls_made += (n_configs * (1 + programs.len()) + stages.len() * programs.len()) as u64
            * args.calls as u64;
        eprintln!("msee-bench:   round {round}/{} done", args.rounds);
    }
    let timing = started.elapsed();
    eprintln!("msee-bench: timed in {:.1} s", timing.as_secs_f64());

    // Every timed run must have been a forward: no policer (or other) drop.
    let runs_per_config = (args.rounds as u64 + 1) * args.calls as u64 * REPEAT as u64;
    let mut forwarding = Vec::new();
    for p in &programs {
        for (routes, m) in &p.instances {
            let tx = m.link_counters(LOOP_LINK, Direction::Tx)?;
            let rx = m.link_counters(LOOP_LINK, Direction::Rx)?;
            // Two configs per instance (warm-up round included), plus the
            // forwarding check's single run.
            let expected = 2 * runs_per_config + 1;
            ensure!(
                tx.packets == expected && rx.total_drops() + tx.total_drops() == 0,
                "{} with {routes} routes forwarded {} of {expected} runs (rx drops {:?}, tx drops {:?}, policer {})",
                p.name,
                tx.packets,
                rx.drops,
                tx.drops,
                tx.dropped(DropReason::Policer) + rx.dropped(DropReason::Policer)
            );
            forwarding.push(json!({"program": p.name, "routes": routes, "runs": expected, "forwarded": tx.packets}));
        }
    }

    let cold = if args.cold_calls > 0 {
        Some(cold_bench(args, &mut programs)?)
    } else {
        None
    };

    let reports: Vec<serde_json::Value> = programs
        .iter()
        .map(|p| program_report(p, &stages))
        .collect();
    let mut report = json!({
        "frame_bytes": FRAME_BYTES,
        "repeat": REPEAT,
        "calls_per_sample": args.calls,
        "rounds": args.rounds,
        "police_bits_per_sec": POLICE_BITS_PER_SEC,
        "route_seed": ROUTE_SEED,
        "probe_route": PROBE_ROUTE,
        "baseline": {
            "ns_per_packet": stats(&baseline_all),
            "fastest_call_ns": stats(&baseline_fastest),
        },
        "msee_stages": reports[0]["msee_stages"].clone(),
        // Wall time per BPF_PROG_TEST_RUN call, mostly outside the timed
        // runs: what bounds how many calls the bench can afford.
        "wall_ms_per_call": timing.as_secs_f64() * 1e3 / calls_made as f64,
        "msee": reports[0]["msee"].clone(),
        "forwarding_check": forwarding,
    });
    if let Some(cold) = cold {
        report["cold"] = cold;
    }
    if let Some(path) = &args.compare {
        report["compare"] = json!({
            "object": path.display().to_string(),
            "msee": reports[1]["msee"].clone(),
            "msee_stages": reports[1]["msee_stages"].clone(),
        });
    }
    if args.lab_rounds > 0 {
        report["generators"] = generator_bench(args.lab_rounds)?;
        report["lab"] = lab_bench(args.lab_rounds, &mut baseline, &mut programs)?;
    }
    Ok(report)
}

/// The per-packet figures of one program: its configs against the paired
/// baseline samples and its own 1-route samples, and its stages.
fn program_report(p: &Program, stages: &[(&'static str, u32, Vec<u8>)]) -> serde_json::Value {
    let one_route = |policing: bool| {
        p.configs
            .iter()
            .find(|c| c.instance == 0 && c.policing == policing)
            .expect("1-route config")
            .cost
            .clone()
    };
    let msee: Vec<_> = p
        .configs
        .iter()
        .map(|c| {
            let vs_baseline: Vec<f64> = c
                .paired_baseline
                .iter()
                .zip(&c.cost)
                .map(|(b, m)| b / m)
                .collect();
            // Same round, same policing: the 1-route sample a few ms apart.
            let vs_one_route: Vec<f64> = one_route(c.policing)
                .iter()
                .zip(&c.cost)
                .map(|(one, m)| one / m)
                .collect();
            json!({
                "routes": p.instances[c.instance].0,
                "policing": c.policing,
                "ns_per_packet": stats(&c.cost),
                "fastest_call_ns": stats(&c.fastest),
                "baseline_over_msee": stats(&vs_baseline),
                "one_route_over_this": stats(&vs_one_route),
            })
        })
        .collect();
    json!({
        "msee": msee,
        "msee_stages": stages
            .iter()
            .zip(p.stage_cost.iter().zip(&p.stage_fastest))
            .enumerate()
            .map(|(i, ((what, _, _), (c, f)))| json!({
                "exit": what,
                "ns_per_packet": stats(c),
                "fastest_call_ns": stats(f),
                // The row its step counts from: the one above (none for the
                // first), but for the branch at the end.
                "step_from": if i + 1 == stages.len() { Some(TTL_STAGE_FROM) } else { i.checked_sub(1) },
            }))
            .collect::<Vec<_>>(),
    })
}

/// Destinations for the many-destinations section: one address in each
/// of (up to) `n` prefixes of the instance's table, the probe's route
/// included, in random order.
fn destinations(routes: usize, n: usize) -> Vec<Ipv4Addr> {
    let table = route_table(routes);
    let mut rng = Rng::new(ROUTE_SEED ^ 0xd5);
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let p = if table.len() > 1 {
            table[(rng.next_u64() % table.len() as u64) as usize]
        } else {
            table[0]
        };
        // An address inside the prefix: the network, plus a random host
        // part when the prefix has one.
        let host_bits = 32 - u32::from(p.prefix_len());
        let host = if host_bits == 0 {
            0
        } else {
            (rng.next_u64() as u32 ^ i as u32) & ((1u32 << host_bits) - 1)
        };
        out.push(Ipv4Addr::from(u32::from(p.network()) | host));
    }
    out
}

/// Per-packet cost of one run per `BPF_PROG_TEST_RUN` call (so each call
/// can carry another frame), for three kinds of traffic:
/// - `probe`: the probe again and again (what the repeat-250 figures
///   measure, through a call of one run);
/// - `cached`: round robin over `CACHED_DESTINATIONS` destinations spread
///   over the table: few enough for msee's per-CPU destination cache to
///   hold them all;
/// - `spread`: every call to another of `--cold-calls` destinations across
///   the whole table (random prefixes), several times the cache's slots, so
///   most lookups miss the cache and walk the trie, whose path on a large
///   table is not in the CPU's caches either.
///
/// A call of one run is timed by the kernel like any other, but the figure
/// carries the cost of a run from a cold start (the syscall just ran on
/// this CPU), so compare these figures with each other, not with the
/// repeat-250 ones.
fn cold_bench(args: &Args, programs: &mut [Program]) -> Result<serde_json::Value> {
    let kinds = ["probe", "cached", "spread"];
    let dests: Vec<Vec<Vec<u8>>> = programs[0]
        .instances
        .iter()
        .map(|(routes, _)| {
            destinations(*routes, args.cold_calls as usize)
                .into_iter()
                .map(|d| udp_frame(d, 255))
                .collect()
        })
        .collect();
    let probe = probe_frame();
    // [program][instance][kind] -> samples (mean ns per run per round).
    let mut samples = vec![vec![vec![Vec::new(); kinds.len()]; dests.len()]; programs.len()];
    let rounds = args.rounds.div_ceil(2).max(1);
    eprintln!(
        "msee-bench: many destinations, {rounds} rounds of {} calls of one run...",
        args.cold_calls
    );
    for round in 0..=rounds {
        for (i, frames) in dests.iter().enumerate() {
            for (k, kind) in kinds.iter().enumerate() {
                for (p, program) in alternate(programs.iter_mut().enumerate(), round) {
                    let (_, m) = &mut program.instances[i];
                    set_policing(m, false)?;
                    let frame_of = |n: usize| match *kind {
                        "spread" => &frames[n],
                        "cached" => &frames[n % CACHED_DESTINATIONS.min(frames.len())],
                        _ => &probe,
                    };
                    // Untimed: fill the destination cache with what this kind
                    // sends first (the previous sample's traffic evicted it).
                    for n in 0..CACHED_DESTINATIONS.min(frames.len()) {
                        m.time_run(frame_of(n), LO, 1)?;
                    }
                    let mut total = Duration::ZERO;
                    for n in 0..frames.len() {
                        let frame = frame_of(n);
                        let (verdict, d) = m.time_run(frame, LO, 1)?;
                        ensure!(
                            verdict == XDP_REDIRECT,
                            "{} {kind}: XDP action {verdict}, not XDP_REDIRECT",
                            program.name
                        );
                        total += d;
                    }
                    if round > 0 {
                        samples[p][i][k].push(total.as_nanos() as f64 / f64::from(args.cold_calls));
                    }
                }
            }
        }
    }
    let mut out = Vec::new();
    for (p, program) in programs.iter().enumerate() {
        for (i, (routes, _)) in program.instances.iter().enumerate() {
            for (k, kind) in kinds.iter().enumerate() {
                out.push(json!({
                    "program": program.name,
                    "routes": routes,
                    "traffic": kind,
                    "ns_per_packet": stats(&samples[p][i][k]),
                }));
            }
        }
    }
    Ok(json!({
        "calls_per_sample": args.cold_calls,
        "rounds": rounds,
        "cached_destinations": CACHED_DESTINATIONS,
        "cache_slots_v4": msee_abi::ROUTE_CACHE_V4_SLOTS,
        "samples": out,
    }))
}

/// Destinations of the `cached` traffic of the many-destinations section.
const CACHED_DESTINATIONS: usize = 1000;

// ---- Route installation.

/// Install rates through the dataplane API into an empty table: one
/// `upsert_route` (one syscall) per route, then `upsert_routes` (batched),
/// then removing the whole table with `remove_routes`; each into a fresh
/// msee, timed from the first to the last call.
fn api_install_bench() -> Result<serde_json::Value> {
    let mut out = Vec::new();
    for routes in [10_000usize, 1_000_000] {
        let mut removal = None;
        for write in [Write::Single, Write::Batch, Write::BatchSorted] {
            let (mut m, install) = msee_with_routes(routes, write)?;
            let (method, order) = match write {
                Write::Single => ("upsert_route", "random"),
                Write::Batch => ("upsert_routes", "random"),
                Write::BatchSorted => ("upsert_routes", "by address"),
            };
            let rate = routes as f64 / install.as_secs_f64();
            eprintln!(
                "msee-bench: {routes} routes with {method}, {order} order: {:.3} s ({rate:.0} routes/s)",
                install.as_secs_f64()
            );
            out.push(json!({
                "routes": routes,
                "method": method,
                "order": order,
                "seconds": install.as_secs_f64(),
                "routes_per_sec": rate,
            }));
            if write == Write::Batch {
                let table: Vec<(u32, IpNet)> = route_table(routes)
                    .into_iter()
                    .map(|p| (DOMAIN, IpNet::V4(p)))
                    .collect();
                let start = Instant::now();
                m.remove_routes(&table)?;
                let took = start.elapsed();
                ensure!(
                    m.lookup_route(DOMAIN, IpAddr::V4(PROBE_DST))?.is_none(),
                    "the probe's route survived remove_routes"
                );
                let rate = routes as f64 / took.as_secs_f64();
                eprintln!(
                    "msee-bench: {routes} routes removed with remove_routes: {:.3} s ({rate:.0} routes/s)",
                    took.as_secs_f64()
                );
                removal = Some(json!({
                    "routes": routes,
                    "method": "remove_routes",
                    "order": "random",
                    "seconds": took.as_secs_f64(),
                    "routes_per_sec": rate,
                }));
            }
        }
        out.extend(removal);
    }
    Ok(json!(out))
}

/// Install from a real BGP peer: `install_runs` runs of each table size,
/// sizes interleaved, each run a fresh daemon and BIRD in one shared lab.
fn bgp_install_bench(args: &Args) -> Result<serde_json::Value> {
    let prefix = format!("b{}i", std::process::id() % 100_000);
    let bench = InstallBench::up(&prefix)?;
    let tables: Vec<Vec<Ipv4Net>> = args
        .install_prefixes
        .iter()
        .map(|n| install_bench::table(*n))
        .collect();
    let mut runs: Vec<Vec<install_bench::Run>> = vec![Vec::new(); tables.len()];
    eprintln!(
        "msee-bench: install from BIRD, {} runs of {:?} prefixes...",
        args.install_runs, args.install_prefixes
    );
    for r in 0..args.install_runs {
        for (t, table) in tables.iter().enumerate() {
            let run = bench.run(table, r)?;
            eprintln!(
                "msee-bench:   {} prefixes: {:.3} s first UPDATE to last write ({:.0} prefixes/s; last UPDATE at {:.3} s; {} UPDATEs; CPU: daemon {:.2} s, BIRD {:.2} s)",
                run.prefixes,
                run.seconds,
                run.rate(),
                run.receive_seconds,
                run.updates,
                run.daemon_cpu_seconds,
                run.bird_cpu_seconds,
            );
            runs[t].push(run);
        }
    }
    let bird_version = std::process::Command::new(install_bench::BIRD)
        .arg("--version")
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stderr).trim().to_owned()
                + String::from_utf8_lossy(&o.stdout).trim()
        })
        .unwrap_or_default();
    let sizes: Vec<serde_json::Value> = runs
        .iter()
        .map(|rs| {
            let pick =
                |f: fn(&install_bench::Run) -> f64| stats(&rs.iter().map(f).collect::<Vec<_>>());
            json!({
                "prefixes": rs[0].prefixes,
                "prefixes_per_sec": pick(install_bench::Run::rate),
                "seconds": pick(|r| r.seconds),
                "receive_seconds": pick(|r| r.receive_seconds),
                "setup_seconds": pick(|r| r.setup_seconds),
                "daemon_cpu_seconds": pick(|r| r.daemon_cpu_seconds),
                "bird_cpu_seconds": pick(|r| r.bird_cpu_seconds),
                "updates": pick(|r| r.updates as f64),
                "runs": rs.iter().map(install_bench::Run::json).collect::<Vec<_>>(),
            })
        })
        .collect();
    Ok(json!({
        "injector": bird_version,
        "sample": install_bench::SAMPLE,
        "runs": args.install_runs,
        "sizes": sizes,
    }))
}

// ---- Throughput on real interfaces (lab and generators).

/// msee's links in the lab: ingress (msee's primary port) and egress (its
/// azure port), and the group the probe's route points to during the lab
/// samples. Ids not used by the per-packet section.
const LAB_IN_LINK: u32 = 2;
const LAB_OUT_LINK: u32 = 3;
const LAB_GROUP: u32 = 2;
/// Destinations of the lab's spread samples: the probe's route's /24, round
/// robin (each frame to another destination than the last: never the one
/// msee's ingress link routed last, always one its destination cache holds).
const LAB_DESTINATIONS: u32 = 256;
const WARMUP: Duration = Duration::from_millis(400);
const WINDOW: Duration = Duration::from_secs(1);
/// The generator's thread is pinned here; forwarding runs in the softirqs
/// its transmissions raise, on the same CPU.
const GEN_CPU: usize = 0;

/// One lab sample as the bench takes it (the spin measures the same way).
fn lab_sample(lb: &LabBench, destinations: u32) -> Result<Sample> {
    measure(
        &lb.path,
        GenKind::LiveFrames,
        destinations,
        GEN_CPU,
        WARMUP,
        WINDOW,
    )
}

fn sample_json(s: &[Sample], f: impl Fn(&Sample) -> f64) -> serde_json::Value {
    stats(&s.iter().map(f).collect::<Vec<_>>())
}

/// Packets per second of each generator on a veth pair with a drop sink,
/// AF_XDP and live frames interleaved.
fn generator_bench(rounds: usize) -> Result<serde_json::Value> {
    let prefix = format!("b{}g", std::process::id() % 100_000);
    let bench = VethBench::up(&prefix).context("veth pair for the generator figures")?;
    let kinds = [GenKind::AfXdp, GenKind::LiveFrames];
    let mut samples: Vec<Vec<Sample>> = vec![Vec::new(); kinds.len()];
    eprintln!("msee-bench: generators on a veth pair, {rounds} rounds...");
    // Round 0 warms up and is not recorded.
    for round in 0..=rounds {
        for (k, kind) in kinds.iter().enumerate() {
            let s = measure(&bench.path, *kind, 1, GEN_CPU, WARMUP, WINDOW)
                .with_context(|| format!("generator {}", kind.name()))?;
            eprintln!(
                "msee-bench:   {}: {:.0} pps tx, {:.0} pps rx",
                kind.name(),
                s.tx_pps,
                s.rx_pps
            );
            if round > 0 {
                samples[k].push(s);
            }
        }
    }
    Ok(json!(
        kinds
            .iter()
            .zip(&samples)
            .map(|(kind, s)| json!({
                "mode": kind.name(),
                "tx_pps": sample_json(s, |x| x.tx_pps),
                "rx_pps": sample_json(s, |x| x.rx_pps),
                "tx_per_cpu_s": sample_json(s, |x| x.tx_per_cpu_s),
                "zero_copy": s.iter().any(|x| x.generator.threads.iter().any(|t| t.zero_copy)),
            }))
            .collect::<Vec<_>>()
    ))
}

/// Point the probe's route of `m` at the lab's azure port, with the lab's
/// primary port as an attachment and policing on both lab links.
fn lab_program(m: &mut Msee, lb: &LabBench) -> Result<()> {
    with_netns(&lb.ns_msee(), || Ok(m.add_port(lb.azure_ifindex)?))?;
    m.set_link(
        LAB_IN_LINK,
        Link {
            ifindex: lb.primary_ifindex,
            role: LinkRole::Primary as u8,
            src_mac: lb.primary_mac,
            dst_mac: lb.onprem_mac,
            circuit: 1,
            ..Default::default()
        },
    )?;
    m.set_link(
        LAB_OUT_LINK,
        Link {
            ifindex: lb.azure_ifindex,
            role: LinkRole::Azure as u8,
            src_mac: lb.azure_mac,
            dst_mac: lb.azure_peer_mac,
            circuit: 1,
            ..Default::default()
        },
    )?;
    for link in [LAB_IN_LINK, LAB_OUT_LINK] {
        m.set_link_state(link, true)?;
        for dir in Direction::ALL {
            m.set_policer(link, dir, POLICE_BITS_PER_SEC, None)?;
        }
    }
    m.set_group(
        LAB_GROUP,
        &[GroupMember {
            link: LAB_OUT_LINK,
            preference: 0,
        }],
    )?;
    m.set_attachment(
        AttachmentKey {
            ifindex: lb.primary_ifindex,
            outer_vlan: 0,
            inner_vlan: 0,
        },
        Attachment {
            link: LAB_IN_LINK,
            domain: DOMAIN,
            circuit: 1,
            peering: PeeringKind::Private as u8,
            role: LinkRole::Primary as u8,
            mac: lb.primary_mac,
            ..Default::default()
        },
    )?;
    m.upsert_route(
        DOMAIN,
        PROBE_ROUTE.parse()?,
        Route {
            group: LAB_GROUP,
            flags: 0,
        },
    )?;
    Ok(())
}

/// Forwarded pps through the lab, onprem primary -> msee -> azure, for the
/// baseline and each msee instance (all policed), interleaved per round.
fn lab_bench(
    rounds: usize,
    baseline: &mut Baseline,
    programs: &mut [Program],
) -> Result<serde_json::Value> {
    let prefix = format!("b{}l", std::process::id() % 100_000);
    let lb = LabBench::up(&prefix, PROBE_DST).context("lab for the throughput figures")?;
    let ns = lb.ns_msee();
    with_netns(&ns, || {
        Ok(baseline.set_redirect(lb.primary_ifindex, lb.azure_ifindex)?)
    })?;
    // Every instance of every program, in one list: (program, routes, msee).
    let mut instances: Vec<(String, usize, &mut Msee)> = Vec::new();
    for p in programs.iter_mut() {
        for (routes, m) in p.instances.iter_mut() {
            lab_program(m, &lb)?;
            instances.push((p.name.clone(), *routes, m));
        }
    }
    // Sample order within a round: baseline, then each msee instance, all
    // to one destination; then the baseline and msee with 10,000 routes
    // again, to `LAB_DESTINATIONS` destinations.
    let spread = instances
        .iter()
        .position(|(n, r, _)| n == "msee" && *r == 10_000);
    let mut plan: Vec<(Option<usize>, u32)> = vec![(None, 1)];
    plan.extend((0..instances.len()).map(|i| (Some(i), 1)));
    if let Some(i) = spread {
        plan.extend([(None, LAB_DESTINATIONS), (Some(i), LAB_DESTINATIONS)]);
    }
    let mut samples: Vec<Vec<Sample>> = vec![Vec::new(); plan.len()];
    let mut before = Vec::new();
    for (_, _, m) in instances.iter() {
        before.push(m.link_counters(LAB_OUT_LINK, Direction::Tx)?.packets);
    }
    eprintln!("msee-bench: lab throughput, {rounds} rounds of baseline and msee...");
    for round in 0..=rounds {
        for (slot, &(instance, destinations)) in samples.iter_mut().zip(&plan) {
            with_netns(&ns, || {
                match instance {
                    None => baseline.attach(lb.primary_ifindex, AttachMode::Native)?,
                    Some(i) => instances[i]
                        .2
                        .attach(lb.primary_ifindex, AttachMode::Native)?,
                }
                Ok(())
            })?;
            let s = lab_sample(&lb, destinations);
            with_netns(&ns, || {
                match instance {
                    None => baseline.detach()?,
                    Some(i) => instances[i].2.detach_all()?,
                }
                Ok(())
            })?;
            let label = match instance {
                None => "baseline".to_owned(),
                Some(i) => format!("{} {} routes", instances[i].0, instances[i].1),
            };
            let s =
                s.with_context(|| format!("lab sample {label}, {destinations} destinations"))?;
            eprintln!(
                "msee-bench:   {label}, {destinations} destinations: {:.0} pps forwarded ({:.0} pps sent)",
                s.rx_pps, s.tx_pps
            );
            if round > 0 {
                slot.push(s);
            }
        }
    }
    // Per-round ratios of sample set `s` to sample set `to`.
    let ratios = |s: &[Sample], to: &[Sample]| {
        stats(
            &s.iter()
                .zip(to)
                .map(|(m, b)| m.rx_pps / b.rx_pps.max(1.0))
                .collect::<Vec<_>>(),
        )
    };
    let sample_of = |instance: Option<usize>, destinations: u32| {
        plan.iter()
            .position(|p| *p == (instance, destinations))
            .map(|k| &samples[k])
            .expect("a sample set in the plan")
    };
    let mut configs = Vec::new();
    for (s, &(instance, destinations)) in samples.iter().zip(&plan) {
        let mut v = json!({
            "program": "baseline",
            "destinations": destinations,
            "rx_pps": sample_json(s, |x| x.rx_pps),
            "tx_pps": sample_json(s, |x| x.tx_pps),
            "delivered": sample_json(s, |x| x.rx_pps / x.tx_pps.max(1.0)),
            // Against the baseline sent to as many destinations.
            "vs_baseline": ratios(s, sample_of(None, destinations)),
        });
        if let Some(i) = instance {
            let (name, routes, m) = &instances[i];
            // This program's 1-route instance.
            let one = instances
                .iter()
                .position(|(n, r, _)| n == name && *r == 1)
                .expect("a 1-route instance");
            v["program"] = json!(name);
            let out = m.link_counters(LAB_OUT_LINK, Direction::Tx)?;
            let inn = m.link_counters(LAB_IN_LINK, Direction::Rx)?;
            v["routes"] = json!(routes);
            v["policing"] = json!(true);
            // Counters cover all of the instance's samples, to any number
            // of destinations.
            v["msee_forwarded"] = json!(out.packets - before[i]);
            v["msee_drops"] = json!(out.total_drops() + inn.total_drops());
            v["msee_received"] = json!(inn.packets);
            v["msee_to_kernel"] = json!(inn.to_kernel);
            if destinations == 1 {
                v["vs_one_route"] = ratios(s, sample_of(Some(one), 1));
            } else {
                v["vs_one_destination"] = ratios(s, sample_of(Some(i), 1));
            }
        }
        configs.push(v);
    }
    Ok(json!({
        "rounds": rounds,
        "warmup_s": WARMUP.as_secs_f64(),
        "window_s": WINDOW.as_secs_f64(),
        "generator_cpu": GEN_CPU,
        "dst": PROBE_DST.to_string(),
        "spread_destinations": LAB_DESTINATIONS,
        "configs": configs,
    }))
}
