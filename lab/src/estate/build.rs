//! Making and removing an estate's lab: namespaces, links and addresses,
//! the provider's switch, `msee-daemon`, and FRR as each customer's router.
//! What was made is recorded in a state directory as it is made, so `lab
//! down` (from another process) removes exactly that, and a `lab up` that
//! fails half-way removes what it had made before returning its error.
use std::{
    net::IpAddr,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail};
use msee_sys::{host::BPFFS, netns};
use serde::{Deserialize, Serialize};

use super::{
    plan::{AzureSide, EstateLab},
    routers::{self, Customers},
};
use crate::{gro_on_tx_off, ip, ip_ns, veth};

/// Where a lab's state lives: `/run/msee/lab/<prefix>`.
pub fn state_dir(prefix: &str) -> PathBuf {
    PathBuf::from("/run/msee/lab").join(prefix)
}

/// The lab daemon's state directory (`msee-daemon --state-dir`).
pub fn daemon_state_dir(prefix: &str) -> PathBuf {
    state_dir(prefix).join("msee")
}

/// Where a lab's bpffs pins live (pins must be on bpffs).
pub fn pin_dir(prefix: &str) -> PathBuf {
    PathBuf::from(BPFFS).join(format!("msee-lab-{prefix}"))
}

/// A process the lab started, stopped by PID at `lab down`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Started {
    pub what: String,
    pub pid: i32,
}

/// What `lab up --config` made, as `lab down` reads it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    pub lab: EstateLab,
    pub config: Vec<PathBuf>,
    pub api_socket: PathBuf,
    /// Namespaces made so far (a failed `up` records what to remove).
    pub namespaces: Vec<String>,
    pub processes: Vec<Started>,
    /// bpffs pins of the switch's program links.
    pub pins: Vec<PathBuf>,
}

impl State {
    fn path(prefix: &str) -> PathBuf {
        state_dir(prefix).join("state.json")
    }

    pub fn save(&self) -> Result<()> {
        let path = Self::path(&self.lab.prefix);
        std::fs::write(&path, serde_json::to_vec_pretty(self)?)
            .with_context(|| format!("writing {}", path.display()))
    }

    pub fn load(prefix: &str) -> Result<Option<Self>> {
        let path = Self::path(prefix);
        match std::fs::read(&path) {
            Ok(b) => Ok(Some(serde_json::from_slice(&b).with_context(|| {
                format!("{} is not a lab state file", path.display())
            })?)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
        }
    }
}

/// The provider's switch: attaches the VLAN cross-connect to the switch
/// namespace's ports and pins it (so it outlives `lab up`); returns the
/// pins. Given by the caller, which owns the tool programs.
pub type SwitchInstaller = dyn Fn(&EstateLab, &Path) -> Result<Vec<PathBuf>>;

fn addr_add(ns: &str, addr: IpAddr, len: u8, dev: &str) -> Result<()> {
    let a = format!("{addr}/{len}");
    if addr.is_ipv6() {
        ip_ns(ns, &["addr", "add", &a, "dev", dev, "nodad"])?;
    } else {
        ip_ns(ns, &["addr", "add", &a, "dev", dev])?;
    }
    Ok(())
}

/// Brings the lab up: refuses if any of its namespaces exists, records
/// what it makes, and on failure removes it before returning the error.
/// Without `daemon_bin` the caller starts the daemon (with [`msee_args`]).
pub fn up(
    lab: &EstateLab,
    config: &[PathBuf],
    customers: &Customers,
    switch: &SwitchInstaller,
    daemon_bin: Option<&Path>,
) -> Result<State> {
    for ns in lab.namespaces() {
        if netns::exists(&ns) {
            bail!(
                "namespace {ns} already exists: run `cargo xtask lab down --prefix {}` first",
                lab.prefix
            );
        }
    }
    let dir = state_dir(&lab.prefix);
    if State::load(&lab.prefix)?.is_some() {
        bail!(
            "a lab {} is recorded in {}: run `cargo xtask lab down --prefix {}` first",
            lab.prefix,
            dir.display(),
            lab.prefix
        );
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut state = State {
        lab: lab.clone(),
        config: config
            .iter()
            .map(|p| std::fs::canonicalize(p).unwrap_or_else(|_| p.clone()))
            .collect(),
        api_socket: dir.join("api.sock"),
        namespaces: Vec::new(),
        processes: Vec::new(),
        pins: Vec::new(),
    };
    state.save()?;
    match build(&mut state, customers, switch, daemon_bin) {
        Ok(()) => {
            state.save()?;
            Ok(state)
        }
        Err(e) => {
            let _ = state.save();
            if let Err(d) = down(&state) {
                eprintln!("lab cleanup after a failed start: {d:#}");
            }
            Err(e)
        }
    }
}

fn build(
    state: &mut State,
    customers: &Customers,
    switch: &SwitchInstaller,
    daemon_bin: Option<&Path>,
) -> Result<()> {
    let lab = state.lab.clone();
    for ns in lab.namespaces() {
        ip(&["netns", "add", &ns])?;
        state.namespaces.push(ns.clone());
        state.save()?;
        ip_ns(&ns, &["link", "set", "lo", "up"])?;
    }
    // The MSEE's port pairs to the switch's trunks.
    for p in &lab.pairs {
        for k in 0..2 {
            veth(&lab.msee_ns, &p.msee[k], &lab.switch_ns, &p.trunk[k])?;
            let mtu = TRUNK_MTU.to_string();
            ip_ns(&lab.msee_ns, &["link", "set", &p.msee[k], "mtu", &mtu])?;
            ip_ns(&lab.switch_ns, &["link", "set", &p.trunk[k], "mtu", &mtu])?;
            // The MSEE's own frames (BGP, BFD, ARP) cross the switch.
            gro_on_tx_off(&lab.msee_ns, &p.msee[k])?;
        }
    }
    // Each customer link: its interface to an access port of the switch.
    for c in &lab.customers {
        for p in &c.peerings {
            for k in 0..2 {
                veth(&c.ns, &p.ifnames[k], &lab.switch_ns, &p.access[k])
                    .with_context(|| format!("{}: {}", c.circuit, p.ifnames[k]))?;
                gro_on_tx_off(&c.ns, &p.ifnames[k])?;
                let (a, len) = p.customer[k];
                addr_add(&c.ns, a.into(), len, &p.ifnames[k])?;
                if let Some(v6) = p.customer6 {
                    addr_add(&c.ns, v6[k].0.into(), v6[k].1, &p.ifnames[k])?;
                }
            }
        }
        addr_add(&c.ns, c.host.into(), 32, "lo")?;
        if let Some(h) = c.host6 {
            addr_add(&c.ns, h.into(), 128, "lo")?;
        }
        for h in &c.public_hosts {
            addr_add(&c.ns, *h, if h.is_ipv4() { 32 } else { 128 }, "lo")?;
        }
    }
    for side in lab.vnets.iter().chain(&lab.microsoft) {
        azure_side(&lab.msee_ns, side)?;
    }
    state.pins = switch(&lab, &pin_dir(&lab.prefix)).context("installing the provider's switch")?;
    state.save()?;

    if let Some(bin) = daemon_bin {
        start_msee(state, bin)?;
    }
    let dir = state_dir(&lab.prefix);
    for c in &lab.customers {
        let router = customers.of(&c.circuit);
        for (what, pid) in routers::start(router, c, &dir.join(&c.circuit))
            .with_context(|| format!("the router of {}", c.circuit))?
        {
            state.processes.push(Started {
                what: format!("{what} ({})", c.circuit),
                pid,
            });
            state.save()?;
        }
    }
    Ok(())
}

/// What `msee-daemon` needs to run this lab: its namespace, tagged
/// peerings, the configuration files and the ports (the caller adds its
/// API socket and timers).
pub fn msee_args(state: &State) -> Vec<String> {
    let lab = &state.lab;
    let mut args: Vec<String> = vec!["--netns".into(), lab.msee_ns.clone(), "--tagged".into()];
    for c in &state.config {
        args.extend(["--config".into(), c.display().to_string()]);
    }
    args.extend(lab.daemon_port_args());
    args
}

/// Starts the lab's `msee-daemon`, waits until it is ready and records it.
/// Its BGP timers are a lab's, as the BGP interop tests' daemon has them:
/// a session down (FRR resets each session once, when its BFD session
/// first comes up) is tried again after 1 s, and a failed connection
/// after 2 s, not after the product's 5 s and 30 s.
fn start_msee(state: &mut State, bin: &Path) -> Result<()> {
    let mut args = msee_args(state);
    args.extend([
        "--api-socket".into(),
        state.api_socket.display().to_string(),
        "--connect-retry-secs".into(),
        "2".into(),
        "--idle-hold-secs".into(),
        "1".into(),
        "--metrics-listen".into(),
        METRICS_ADDR.into(),
        "--state-dir".into(),
        daemon_state_dir(&state.lab.prefix).display().to_string(),
    ]);
    let pid = start_daemon(bin, &args, &state_dir(&state.lab.prefix))?;
    state.processes.push(Started {
        what: "msee-daemon".into(),
        pid,
    });
    state.save()
}

/// Stops the lab's `msee-daemon` (SIGTERM: a clean stop), runs `between`
/// while none runs, and starts it again with the same arguments and state
/// directory; waits until it is ready. The stopped one's output is kept as
/// `daemon.out.N` and `daemon.log.N` (N = 1, 2, ... per restart).
pub fn restart_msee(state: &mut State, bin: &Path, between: impl FnOnce()) -> Result<()> {
    let i = state
        .processes
        .iter()
        .position(|p| p.what == "msee-daemon")
        .context("the lab runs no msee-daemon")?;
    stop_pid(state.processes[i].pid);
    state.processes.remove(i);
    state.save()?;
    between();
    let dir = state_dir(&state.lab.prefix);
    let n = (1..)
        .find(|n| !dir.join(format!("daemon.log.{n}")).exists())
        .expect("some number is free");
    for f in ["daemon.out", "daemon.log"] {
        let _ = std::fs::rename(dir.join(f), dir.join(format!("{f}.{n}")));
    }
    start_msee(state, bin)
}

/// The MTU of the trunks between the MSEE and the switch: a veth takes
/// frames of at most its MTU + 18 bytes, and a full 1500-byte packet in two
/// tags (QinQ) is a 1522-byte frame, so a trunk needs 1504 to carry what
/// the customers' 1500-byte interfaces send (without it, full-size TCP
/// segments of a QinQ peering are lost and its sessions stall). The MSEE's
/// own TCP stays within 1500 bytes: it follows the customer's MSS.
pub const TRUNK_MTU: u32 = 1504;

/// Where the lab's daemon serves its Prometheus metrics, on the loopback
/// of the MSEE namespace.
pub const METRICS_ADDR: &str = "127.0.0.1:9477";

/// An Azure-side namespace: its port from the MSEE, the gateway address,
/// its hosts and its way back (everything via the MSEE).
fn azure_side(msee_ns: &str, s: &AzureSide) -> Result<()> {
    veth(msee_ns, &s.port, &s.ns, "msee")?;
    gro_on_tx_off(&s.ns, "msee")?;
    addr_add(msee_ns, s.msee_addr.into(), 30, &s.port)?;
    addr_add(&s.ns, s.gateway.into(), 30, "msee")?;
    ip_ns(
        &s.ns,
        &["route", "add", "default", "via", &s.msee_addr.to_string()],
    )?;
    if let (Some(m6), Some(g6)) = (s.msee_addr6, s.gateway6) {
        addr_add(msee_ns, m6.into(), 126, &s.port)?;
        addr_add(&s.ns, g6.into(), 126, "msee")?;
        ip_ns(
            &s.ns,
            &["-6", "route", "add", "default", "via", &m6.to_string()],
        )?;
    }
    for (_, h) in &s.hosts {
        if h.is_ipv6() && s.msee_addr6.is_none() {
            continue;
        }
        addr_add(&s.ns, *h, if h.is_ipv4() { 32 } else { 128 }, "lo")?;
    }
    Ok(())
}

/// Starts `msee-daemon` on its own (it outlives `lab up`), its output in
/// `dir`, and waits until it is ready.
fn start_daemon(bin: &Path, args: &[String], dir: &Path) -> Result<i32> {
    use std::os::unix::process::CommandExt as _;
    let out = dir.join("daemon.out");
    let log = dir.join("daemon.log");
    let child = Command::new(bin)
        .args(args)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out)?)
        .stderr(std::fs::File::create(&log)?)
        // Its own process group: a Ctrl-C at the `lab up` prompt does not
        // reach it.
        .process_group(0)
        .spawn()
        .with_context(|| format!("starting {}", bin.display()))?;
    let pid = child.id() as i32;
    // Not waited for: it runs until `lab down`.
    std::mem::forget(child);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if std::fs::read_to_string(&out).is_ok_and(|s| s.contains("msee-daemon ready")) {
            return Ok(pid);
        }
        if !alive(pid) {
            bail!(
                "msee-daemon stopped at start:\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
        if Instant::now() > deadline {
            stop_pid(pid);
            bail!(
                "msee-daemon did not become ready in 30 s:\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn alive(pid: i32) -> bool {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .is_ok_and(|s| s.split(") ").nth(1).is_some_and(|r| r.starts_with('Z')))
}

/// SIGTERM, up to 10 s, then SIGKILL.
fn stop_pid(pid: i32) {
    use nix::sys::signal::{Signal, kill};
    let p = nix::unistd::Pid::from_raw(pid);
    if kill(p, Signal::SIGTERM).is_err() {
        return;
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while alive(pid) {
        if Instant::now() > deadline {
            let _ = kill(p, Signal::SIGKILL);
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    // Reap it if it is our child.
    let _ = nix::sys::wait::waitpid(p, Some(nix::sys::wait::WaitPidFlag::WNOHANG));
}

/// Removes what `state` records: processes (newest first, by PID), pins,
/// namespaces, the state directory.
pub fn down(state: &State) -> Result<()> {
    for p in state.processes.iter().rev() {
        stop_pid(p.pid);
    }
    let mut first_err = None;
    // The daemon's exit left its program and maps pinned for a next
    // daemon to adopt: unmounting its bpffs removes them.
    let daemon_bpf = daemon_state_dir(&state.lab.prefix).join("bpf");
    if let Err(e) = msee_sys::bpffs::unmount(&daemon_bpf) {
        first_err.get_or_insert(anyhow::anyhow!("{e}"));
    }
    for pin in &state.pins {
        if let Err(e) = std::fs::remove_file(pin)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            first_err.get_or_insert(anyhow::anyhow!("removing {}: {e}", pin.display()));
        }
    }
    let pins = pin_dir(&state.lab.prefix);
    if let Err(e) = std::fs::remove_dir(&pins)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        first_err.get_or_insert(anyhow::anyhow!("removing {}: {e}", pins.display()));
    }
    for ns in state.namespaces.iter().rev() {
        if netns::exists(ns)
            && let Err(e) = ip(&["netns", "del", ns])
        {
            first_err.get_or_insert(e);
        }
    }
    let dir = state_dir(&state.lab.prefix);
    if let Err(e) = std::fs::remove_dir_all(&dir)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        first_err.get_or_insert(anyhow::anyhow!("removing {}: {e}", dir.display()));
    }
    first_err.map_or(Ok(()), Err)
}
