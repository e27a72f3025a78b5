//! The BGP peer of the route-install benchmark (issue #4):
//! BIRD 2 in the lab's onprem namespace announces N IPv4 prefixes to
//! `msee-daemon` over the primary link, and the daemon's own record (API
//! `fib`) gives the CLOCK_MONOTONIC time of the first UPDATE it received
//! and of its last FIB write. Rate = N / (last write - first UPDATE).
//!
//! Why BIRD: its static protocol originates a generated table of any size
//! from a configuration file, all of it in BIRD's routing table before the
//! BGP session is enabled (`birdc enable`), and BIRD then sends it about
//! 256 prefixes per UPDATE as fast as the session takes them.
//! GoBGP 3.10 takes its routes through its gRPC API: `gobgp mrt inject`
//! loaded 100,000 routes from a generated MRT dump into gobgpd in 6.2 s
//! here (about 16,000 routes/s, before sending any), so the injector, not
//! the MSEE, would set the pace.
//!
//! Each run starts a fresh daemon (empty maps, a fresh record) and a fresh
//! BIRD; the lab's namespaces are shared by the runs and removed at the end,
//! also on failure. Every wait is bounded. `MSEE_INSTALL_KEEP=1` keeps each
//! run's directory (configurations, daemon and BIRD logs) under the temp
//! directory.
use std::{
    collections::HashSet,
    io::{Read as _, Write as _},
    net::{IpAddr, Ipv4Addr},
    os::unix::net::UnixStream,
    path::{Path, PathBuf},
    process::Command,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail, ensure};
use control::api::{self, Request};
use ipnet::Ipv4Net;
use lab::{
    Lab, Topology,
    daemon::{Daemon, lab_args},
};
use serde_json::{Value, json};

use e2e_tests::bgp_lab::{CUSTOMER_AS, KEY, NsProcess, circuit_toml};
use testkit::Rng;

pub const BIRD: &str = "/usr/sbin/bird";
const BIRDC: &str = "/usr/sbin/birdc";
/// Prefixes looked up in the daemon's BPF map after each run.
pub const SAMPLE: usize = 1000;
const SEED: u64 = 0x5eed_0e5c_2026_0004;

/// Whether the /24 `block` (address >> 8) is public unicast outside
/// anything the lab uses.
fn usable_block(block: u32) -> bool {
    let a = Ipv4Addr::from(block << 8);
    let [o1, o2, ..] = a.octets();
    !(o1 == 0
        || o1 == 10
        || o1 == 127
        || o1 >= 224
        || (o1 == 100 && (64..128).contains(&o2))
        || (o1 == 169 && o2 == 254)
        || (o1 == 172 && (16..32).contains(&o2))
        || (o1 == 192 && o2 == 168))
}

/// `n` distinct random IPv4 prefixes, /24 to /32, each in a /24 of its own
/// (so none covers another, and a longest-prefix lookup of a prefix's first
/// address finds that prefix and no other).
pub fn table(n: usize) -> Vec<Ipv4Net> {
    let mut rng = Rng::new(SEED);
    let mut blocks = HashSet::with_capacity(n);
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let r = rng.next_u64();
        let block = (r as u32) >> 8;
        if !usable_block(block) || !blocks.insert(block) {
            continue;
        }
        let len = 24 + ((r >> 32) % 9) as u8;
        let host = ((r >> 40) as u32) & 0xff;
        let addr = Ipv4Addr::from((block << 8) | host);
        out.push(Ipv4Net::new(addr, len).expect("len <= 32").trunc());
    }
    out
}

/// BIRD's configuration: the table as a static protocol, and one BGP
/// session to the MSEE's primary address, disabled until the table is in.
fn bird_conf(topo: &Topology, log: &Path, prefixes: &[Ipv4Net]) -> String {
    use std::fmt::Write as _;
    let mut s = String::with_capacity(prefixes.len() * 32 + 1024);
    let _ = write!(
        s,
        "log \"{log}\" {{ warning, error, fatal, bug }};
router id {rid};
protocol device {{ scan time 10; }}
protocol static bench {{
  ipv4;
",
        log = log.display(),
        rid = topo.primary.customer,
    );
    for p in prefixes {
        let _ = writeln!(s, "  route {p} blackhole;");
    }
    let _ = write!(
        s,
        "}}
protocol bgp msee1 {{
  disabled;
  local as {CUSTOMER_AS};
  neighbor {msee} as 12076;
  password \"{KEY}\";
  hold time 90;
  connect delay time 1;
  connect retry time 2;
  ipv4 {{ import none; export where source = RTS_STATIC; }};
}}
",
        msee = topo.primary.msee,
    );
    s
}

/// `bird` in the foreground in the onprem namespace, stopped by PID.
pub(crate) struct Bird {
    process: NsProcess,
    dir: PathBuf,
    ns: String,
}

impl Bird {
    pub(crate) fn start(ns: &str, conf: &str, dir: &Path) -> Result<Self> {
        let conf_path = dir.join("bird.conf");
        std::fs::write(&conf_path, conf)?;
        let args = [
            "-c".into(),
            conf_path.display().to_string(),
            "-s".into(),
            dir.join("bird.ctl").display().to_string(),
            "-P".into(),
            dir.join("bird.pid").display().to_string(),
            "-f".into(),
        ];
        let bird = Self {
            process: NsProcess::spawn(ns, BIRD, &args, dir, "bird"),
            dir: dir.to_owned(),
            ns: ns.to_owned(),
        };
        Ok(bird)
    }

    pub(crate) fn birdc(&self, cmd: &[&str]) -> String {
        let out = Command::new("ip")
            .args(["netns", "exec", &self.ns, BIRDC, "-s"])
            .arg(self.dir.join("bird.ctl"))
            .args(cmd)
            .output();
        match out {
            Ok(o) => {
                String::from_utf8_lossy(&o.stdout).into_owned()
                    + &String::from_utf8_lossy(&o.stderr)
            }
            Err(e) => format!("running birdc: {e}"),
        }
    }

    /// Routes in BIRD's master table (`show route count`).
    fn route_count(&self) -> Option<u64> {
        let out = self.birdc(&["show", "route", "count"]);
        // "1000000 of 1000000 routes for 1000000 networks in table master4"
        out.lines()
            .find(|l| l.contains("routes for") && l.contains("master4"))
            .and_then(|l| l.split_whitespace().next()?.parse().ok())
    }

    /// BIRD's CPU time so far (user + system), seconds.
    fn cpu_seconds(&self) -> Result<f64> {
        process_cpu_seconds(self.process.pid().as_raw())
    }

    pub(crate) fn log(&self) -> String {
        ["bird.log", "bird.stderr", "bird.stdout"]
            .iter()
            .map(|f| std::fs::read_to_string(self.dir.join(f)).unwrap_or_default())
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// Keeps BIRD's main loop turning while the table goes out: a command on
/// its control socket every [`NUDGE_EVERY`].
///
/// BIRD 2.0.12's loop runs its event list before its work list, and sleeps
/// in poll() for up to 3 s when neither had anything left *before* running:
/// the BGP transmit event that the last chunk of a feed schedules (a work
/// event scheduling an ordinary one) waits for the next timer or socket
/// activity. Seen here as the last UPDATE of a 10,000-prefix feed (16
/// prefixes and the End-of-RIB) leaving BIRD 3.0 s after the others, and
/// 0.8 s with a 1 s keepalive timer. A `show status` wakes the loop; it
/// costs BIRD microseconds.
pub(crate) struct Nudger {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

const NUDGE_EVERY: Duration = Duration::from_millis(2);

impl Nudger {
    pub(crate) fn start(ctl: &Path) -> Result<Self> {
        let mut sock = UnixStream::connect(ctl)
            .with_context(|| format!("connecting to BIRD's control socket {}", ctl.display()))?;
        sock.set_read_timeout(Some(Duration::from_micros(500)))?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while !flag.load(Ordering::Relaxed) {
                if sock.write_all(b"show status\n").is_err() {
                    return;
                }
                // Drain the answer (and the greeting) so the socket never fills.
                while let Ok(n) = sock.read(&mut buf) {
                    if n == 0 {
                        return;
                    }
                }
                std::thread::sleep(NUDGE_EVERY);
            }
        });
        Ok(Self {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for Nudger {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Poll `f` every `every` until it gives a value or `timeout` passes.
fn poll<T>(
    what: &str,
    timeout: Duration,
    every: Duration,
    mut f: impl FnMut() -> Result<Option<T>>,
) -> Result<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f()? {
            return Ok(v);
        }
        if Instant::now() > deadline {
            bail!("timed out after {timeout:?} waiting for {what}");
        }
        std::thread::sleep(every);
    }
}

/// One run's figures, from the daemon's record.
#[derive(Clone, Debug)]
pub struct Run {
    pub prefixes: usize,
    /// First UPDATE received to last FIB write.
    pub seconds: f64,
    /// First to last UPDATE received.
    pub receive_seconds: f64,
    /// BIRD's table loaded to the first UPDATE (session set-up).
    pub setup_seconds: f64,
    pub updates: u64,
    pub batches: u64,
    pub routes_upserted: u64,
    pub sampled: usize,
    /// The daemon's CPU time (user + system, all threads) from the session
    /// being enabled to the check that saw every route.
    pub daemon_cpu_seconds: f64,
    /// BIRD's over the same time.
    pub bird_cpu_seconds: f64,
}

impl Run {
    pub fn rate(&self) -> f64 {
        self.prefixes as f64 / self.seconds
    }

    pub fn json(&self) -> Value {
        json!({
            "prefixes": self.prefixes,
            "seconds": self.seconds,
            "prefixes_per_sec": self.rate(),
            "receive_seconds": self.receive_seconds,
            "setup_seconds": self.setup_seconds,
            "updates": self.updates,
            "fib_batches": self.batches,
            "routes_upserted": self.routes_upserted,
            "sampled": self.sampled,
            "daemon_cpu_seconds": self.daemon_cpu_seconds,
            "bird_cpu_seconds": self.bird_cpu_seconds,
        })
    }
}

/// The lab the runs share. Dropping it removes the namespaces.
pub struct InstallBench {
    topo: Topology,
    dir: PathBuf,
    /// The daemon's `--fib-slots` (0: no forwarding table, the LPM trie
    /// alone, to compare with); `None`: its default.
    pub fib_slots: Option<u32>,
    _lab: Lab,
}

impl InstallBench {
    pub fn up(prefix: &str) -> Result<Self> {
        ensure!(
            Path::new(BIRD).exists(),
            "{BIRD} is missing: install bird2 (cargo xtask setup does)"
        );
        let topo = Topology::new(prefix)?;
        let lab = Lab::up(topo.clone()).context("the lab for the install benchmark")?;
        let dir = std::env::temp_dir().join(format!("msee-install-{prefix}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        Ok(Self {
            topo,
            dir,
            fib_slots: None,
            _lab: lab,
        })
    }

    /// One run: a fresh daemon and BIRD, `prefixes` announced, the rate.
    pub fn run(&self, prefixes: &[Ipv4Net], run: usize) -> Result<Run> {
        let n = prefixes.len();
        let dir = self.dir.join(format!("{n}-{run}"));
        std::fs::create_dir_all(&dir)?;
        let config = dir.join("circuit.toml");
        std::fs::write(&config, circuit_toml())?;
        let socket = dir.join("api.sock");
        let mut args = lab_args(&self.topo);
        args.extend(
            [
                "--api-socket",
                &socket.display().to_string(),
                "--config",
                &config.display().to_string(),
                // The route limit is ExpressRoute's 4,000 unless overridden.
                "--max-prefixes",
                &n.to_string(),
                // A forwarding table that holds them all.
                "--fib-nodes-v4",
                &crate::fixture::fib_sizes(1, n)
                    .nodes_v4
                    .unwrap_or_default()
                    .to_string(),
                "--connect-retry-secs",
                "1",
                "--idle-hold-secs",
                "1",
                "--log-level",
                "info",
            ]
            .map(String::from),
        );
        if let Some(slots) = self.fib_slots {
            args.extend(["--fib-slots".to_owned(), slots.to_string()]);
        }
        let daemon = Daemon::start(&args, &dir).context("starting msee-daemon")?;
        let result = self.measure(prefixes, &dir, &socket);
        let result = result.with_context(|| {
            let log = daemon.log();
            let tail: Vec<&str> = log.lines().rev().take(30).collect();
            format!(
                "install run ({n} prefixes); daemon log tail:\n{}",
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            )
        });
        drop(daemon);
        if result.is_ok() && std::env::var_os("MSEE_INSTALL_KEEP").is_none() {
            let _ = std::fs::remove_dir_all(&dir);
        }
        result
    }

    fn measure(&self, prefixes: &[Ipv4Net], dir: &Path, socket: &Path) -> Result<Run> {
        let n = prefixes.len();
        let query = |lookup: Vec<IpAddr>| -> Result<Value> {
            api::query(socket, &Request::Fib { lookup }, Duration::from_secs(10))
        };
        let conf = bird_conf(&self.topo, &dir.join("bird.log"), prefixes);
        let bird = Bird::start(&self.topo.ns_onprem(), &conf, dir)?;
        // BIRD parses the table and fills its master table; the session
        // stays disabled until every route is in.
        let load_timeout = Duration::from_secs(30 + n as u64 / 20_000);
        poll(
            "BIRD's table",
            load_timeout,
            Duration::from_millis(100),
            || Ok(bird.route_count().filter(|c| *c as usize >= n)),
        )
        .with_context(|| format!("BIRD log:\n{}", bird.log()))?;
        let start = query(vec![])?;
        ensure!(
            start["record"]["updates"] == 0,
            "the daemon received UPDATEs before the session was enabled: {start}"
        );
        // The Azure side's own routes (the model's VNets) are in the FIB
        // before BIRD sends anything.
        let routes_before = start["routes"].as_u64().context("routes")?;
        let cpu_before = start["cpu_ns"].as_u64().context("cpu_ns")?;
        let bird_cpu_before = bird.cpu_seconds()?;
        let loaded_ns = start["now_ns"].as_u64().context("now_ns")?;
        let nudger = Nudger::start(&dir.join("bird.ctl"))?;
        let out = bird.birdc(&["enable", "msee1"]);
        ensure!(out.contains("enabled"), "birdc enable msee1: {out}");
        // Bounded: 60 s plus 20 µs per prefix.
        let timeout = Duration::from_secs(60 + n as u64 / 50_000);
        let fib = poll(
            &format!("{n} routes installed"),
            timeout,
            Duration::from_millis(20),
            || {
                let v = query(vec![])?;
                let upserted = v["record"]["routes_upserted"].as_u64().unwrap_or(0);
                let failed = v["record"]["failed_batches"].as_u64().unwrap_or(0);
                ensure!(failed == 0, "the daemon failed to write a FIB batch: {v}");
                let routes = v["routes"].as_u64().unwrap_or(0);
                Ok((routes == routes_before + n as u64 && upserted >= n as u64).then_some(v))
            },
        )
        .with_context(|| format!("BIRD log:\n{}", bird.log()))?;
        drop(nudger);
        let cpu_after = fib["cpu_ns"].as_u64().context("cpu_ns")?;
        let bird_cpu = bird.cpu_seconds()? - bird_cpu_before;
        let record = &fib["record"];
        let ns = |k: &str| -> Result<u64> {
            record[k]
                .as_u64()
                .with_context(|| format!("record.{k} in {fib}"))
        };
        ensure!(
            ns("prefixes_announced")? == n as u64 && ns("prefixes_withdrawn")? == 0,
            "the daemon received other prefixes than the {n} announced: {fib}"
        );
        // A sample of the BPF map through the daemon's dataplane handle:
        // each sampled prefix's first address resolves to a BGP route
        // (no prefix covers another, so it is that prefix's own entry).
        let step = (n / SAMPLE).max(1);
        let sample: Vec<IpAddr> = prefixes
            .iter()
            .step_by(step)
            .map(|p| IpAddr::V4(p.network()))
            .collect();
        let looked = query(sample.clone())?;
        let found = looked["lookup"].as_array().context("lookup")?;
        ensure!(found.len() == sample.len(), "lookup answered {looked}");
        let group = &found[0]["route"]["group"];
        for l in found {
            ensure!(
                l["route"].is_object() && l["route"]["group"] == *group && l["route"]["flags"] == 0,
                "{} is not routed in the BPF map as the others ({group}): {l}",
                l["addr"]
            );
        }
        // And an address outside the table is not.
        let outside = query(vec![IpAddr::V4(Ipv4Addr::new(100, 64, 0, 1))])?;
        ensure!(
            outside["lookup"][0]["route"].is_null(),
            "100.64.0.1 is routed: {outside}"
        );
        let first = ns("first_update_ns")?;
        Ok(Run {
            prefixes: n,
            seconds: (ns("last_write_ns")? - first) as f64 / 1e9,
            receive_seconds: (ns("last_update_ns")? - first) as f64 / 1e9,
            setup_seconds: first.saturating_sub(loaded_ns) as f64 / 1e9,
            updates: ns("updates")?,
            batches: ns("batches")?,
            routes_upserted: ns("routes_upserted")?,
            sampled: sample.len(),
            daemon_cpu_seconds: (cpu_after - cpu_before) as f64 / 1e9,
            bird_cpu_seconds: bird_cpu,
        })
    }
}

impl Drop for InstallBench {
    fn drop(&mut self) {
        if std::env::var_os("MSEE_INSTALL_KEEP").is_some() {
            return;
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// User + system CPU seconds of process `pid` (all its threads).
fn process_cpu_seconds(pid: i32) -> Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("reading /proc/{pid}/stat"))?;
    // The fields after the command name, which is in parentheses: utime
    // and stime (fields 14 and 15 of proc(5)) are the 12th and 13th.
    let rest = stat.rsplit_once(')').context("/proc/PID/stat format")?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    ensure!(f.len() > 13, "/proc/{pid}/stat: {stat}");
    let ticks: u64 = f[11].parse::<u64>()? + f[12].parse::<u64>()?;
    let hz = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)?.unwrap_or(100);
    Ok(ticks as f64 / hz as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_has_distinct_disjoint_unicast_prefixes() {
        let t = table(20_000);
        assert_eq!(t.len(), 20_000);
        let blocks: HashSet<u32> = t.iter().map(|p| u32::from(p.network()) >> 8).collect();
        assert_eq!(blocks.len(), t.len(), "one prefix per /24");
        assert!(t.iter().all(|p| (24..=32).contains(&p.prefix_len())));
        assert!(t.iter().all(|p| usable_block(u32::from(p.network()) >> 8)));
        assert_eq!(table(100), t[..100], "same seed, same table");
    }
}
