//! What the BFD interop tests share: two namespaces joined by one veth
//! pair (the customer's router and the MSEE), FRR's `bfdd` in the first,
//! our `bfd::transport::Bfd` in the second on a tokio runtime whose threads
//! live there, and a silent-failure switch (the `lossy` XDP program on both
//! veth ends, dropping every UDP frame while on, carrier untouched).
//! Everything is removed on drop, processes first (stopped by PID).
use std::{
    net::{IpAddr, Ipv4Addr},
    path::{Path, PathBuf},
    process::Command,
    time::{Duration, Instant},
};

use aya::{
    Ebpf,
    maps::Array,
    programs::{Xdp, XdpMode},
};
use bfd::transport::{Bfd, BfdEvent, PeerConfig, SessionStatus};
use traffic_abi::{LOSSY_EVERY, LOSSY_PROGRAM};

use crate::bgp_lab::{NsProcess, read_logs, wait_for};
use msee_sys::netns;

pub const BFDD: &str = "/usr/lib/frr/bfdd";
pub const VTYSH: &str = "/usr/bin/vtysh";
/// The customer side (FRR) and the MSEE side of the link, as on the
/// primary link of the lab (ExpressRoute: customer first, MSEE second).
pub const CUSTOMER: Ipv4Addr = Ipv4Addr::new(192, 168, 100, 129);
pub const MSEE: Ipv4Addr = Ipv4Addr::new(192, 168, 100, 130);
pub const IF_CUSTOMER: &str = "bfdc";
pub const IF_MSEE: &str = "bfdm";

/// Two namespaces `<prefix>-c` (customer) and `<prefix>-m` (MSEE) with a
/// veth pair between them, and a private temp dir. Drop removes both.
pub struct BfdLab {
    pub ns_customer: String,
    pub ns_msee: String,
    pub dir: PathBuf,
}

impl BfdLab {
    pub fn up(tag: &str) -> Self {
        let prefix = crate::unique_prefix(tag);
        let lab = Self {
            ns_customer: format!("{prefix}-c"),
            ns_msee: format!("{prefix}-m"),
            dir: std::env::temp_dir().join(format!("msee-{prefix}")),
        };
        for ns in [&lab.ns_customer, &lab.ns_msee] {
            assert!(
                !netns::exists(ns),
                "namespace {ns} exists: remove it with `ip netns del {ns}`"
            );
        }
        let _ = std::fs::remove_dir_all(&lab.dir);
        std::fs::create_dir_all(&lab.dir).unwrap();
        // bfdd drops to user frr and writes its pid, log and sockets here.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&lab.dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        // From here on, a failure still removes what was made (Drop).
        lab.build()
            .unwrap_or_else(|e| panic!("building the BFD lab: {e:#}"));
        lab
    }

    fn build(&self) -> anyhow::Result<()> {
        let (c, m) = (&self.ns_customer, &self.ns_msee);
        for ns in [c, m] {
            lab::ip(&["netns", "add", ns])?;
            lab::ip_ns(ns, &["link", "set", "lo", "up"])?;
        }
        // Distinct ifindexes on both ends (see lab::Lab::build).
        lab::ip(&[
            "link",
            "add",
            IF_CUSTOMER,
            "netns",
            c,
            "index",
            "111",
            "type",
            "veth",
            "peer",
            "name",
            IF_MSEE,
            "netns",
            m,
            "index",
            "211",
        ])?;
        for (ns, ifname, addr) in [(c, IF_CUSTOMER, CUSTOMER), (m, IF_MSEE, MSEE)] {
            lab::ip_ns(ns, &["addr", "add", &format!("{addr}/30"), "dev", ifname])?;
            lab::ip_ns(ns, &["link", "set", ifname, "up"])?;
            // Full checksums in every frame: XDP sees what the wire would.
            lab::run(
                "ip",
                &["netns", "exec", ns, "ethtool", "-K", ifname, "tx", "off"],
            )?;
        }
        Ok(())
    }

    pub fn path(&self, file: &str) -> PathBuf {
        self.dir.join(file)
    }
}

impl Drop for BfdLab {
    fn drop(&mut self) {
        for ns in [&self.ns_customer, &self.ns_msee] {
            if netns::exists(ns)
                && let Err(e) = lab::ip(&["netns", "del", ns])
            {
                eprintln!("BFD lab cleanup: {e:#}");
            }
        }
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// FRR's `bfdd` alone in a namespace (no zebra: a peer without an
/// `interface` line needs none), stopped by PID when dropped.
pub struct Bfdd {
    process: Option<NsProcess>,
    ns: String,
    dir: PathBuf,
}

impl Bfdd {
    /// `bfdd.conf` in `dir` holds `conf`; log, pid, vty and control
    /// sockets all stay in `dir`, and the zebra socket path points there
    /// too (nothing listens on it, so bfdd never talks to a zebra outside).
    pub fn start(ns: &str, dir: &Path, conf: &str) -> Self {
        assert!(
            Path::new(BFDD).exists(),
            "{BFDD} is missing: install FRR (cargo xtask setup does)"
        );
        std::fs::write(dir.join("bfdd.conf"), conf).unwrap();
        let mut d = Self {
            process: None,
            ns: ns.to_owned(),
            dir: dir.to_owned(),
        };
        d.spawn();
        d
    }

    fn spawn(&mut self) {
        let _ = std::fs::remove_file(self.dir.join("bfdd.vty"));
        let p = |f: &str| self.dir.join(f).display().to_string();
        let args = vec![
            "-f".into(),
            p("bfdd.conf"),
            "-i".into(),
            p("bfdd.pid"),
            "--vty_socket".into(),
            self.dir.display().to_string(),
            "-z".into(),
            p("zserv.api"),
            "--bfdctl".into(),
            p("bfdd.sock"),
        ];
        self.process = Some(NsProcess::spawn(&self.ns, BFDD, &args, &self.dir, "bfdd"));
        let vty = self.dir.join("bfdd.vty");
        wait_for("bfdd's vty socket", Duration::from_secs(10), || {
            vty.exists()
        })
        .unwrap_or_else(|e| panic!("{e}\n{}", self.log()));
    }

    /// Kill with SIGKILL (no goodbye packet), by PID.
    pub fn kill(&mut self) {
        if let Some(p) = &self.process {
            let _ = nix::sys::signal::kill(p.pid(), nix::sys::signal::Signal::SIGKILL);
        }
        // Drop reaps it.
        self.process = None;
    }

    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    pub fn vtysh(&self, cmds: &[&str]) -> String {
        let mut c = Command::new(VTYSH);
        c.arg("--vty_socket").arg(&self.dir).args(["-d", "bfdd"]);
        for cmd in cmds {
            c.args(["-c", cmd]);
        }
        let out = c.output().expect("running vtysh");
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
    }

    /// `configure terminal`, `bfd`, `peer ...`, then `lines`.
    pub fn configure_peer(&self, peer_line: &str, lines: &[&str]) {
        let mut cmds = vec!["configure terminal", "bfd", peer_line];
        cmds.extend_from_slice(lines);
        let out = self.vtysh(&cmds);
        assert!(
            !out.contains("Unknown command") && !out.contains("% "),
            "vtysh {lines:?}: {out}"
        );
    }

    /// The peer's entry in `show bfd peers json`.
    pub fn peer(&self, addr: IpAddr) -> serde_json::Value {
        let out = self.vtysh(&["show bfd peers json"]);
        serde_json::from_str::<serde_json::Value>(&out)
            .ok()
            .and_then(|v| {
                v.as_array()?
                    .iter()
                    .find(|p| p["peer"] == addr.to_string())
                    .cloned()
            })
            .unwrap_or_else(|| serde_json::json!({ "unparsed": out }))
    }

    pub fn log(&self) -> String {
        read_logs(&self.dir, &["bfdd.log", "bfdd.stdout", "bfdd.stderr"])
    }
}

/// The `lossy` XDP program on one interface: passes everything until told
/// to drop every UDP frame. Detached when dropped.
pub struct XdpDrop {
    ebpf: Ebpf,
}

impl XdpDrop {
    pub fn attach(ns: &str, ifname: &str) -> Self {
        let ifindex = lab::ifindex_of(ns, ifname).unwrap();
        let ebpf = netns::on_thread(ns, move || -> anyhow::Result<Ebpf> {
            let mut ebpf = Ebpf::load(traffic::LOSSY_OBJECT)?;
            let prog: &mut Xdp = ebpf
                .program_mut(LOSSY_PROGRAM)
                .ok_or_else(|| anyhow::anyhow!("no program {LOSSY_PROGRAM}"))?
                .try_into()?;
            prog.load()?;
            prog.attach_to_if_index(ifindex, XdpMode::Default)?;
            Ok(ebpf)
        })
        .map_err(anyhow::Error::from)
        .and_then(|r| r)
        .unwrap_or_else(|e| panic!("attaching lossy to {ifname} in {ns}: {e:#}"));
        let mut d = Self { ebpf };
        d.set(false);
        d
    }

    /// Drop every UDP frame (`lossy` with k = 1), or none (k = 0).
    pub fn set(&mut self, drop_all: bool) {
        let mut every: Array<_, u64> =
            Array::try_from(self.ebpf.map_mut(LOSSY_EVERY).expect("LOSSY_EVERY")).unwrap();
        every.set(0, u64::from(drop_all), 0).unwrap();
    }
}

/// Our BFD in a namespace: a tokio runtime whose threads were made there,
/// and `Bfd::start` run on it (so its sockets are there too).
pub struct OurBfd {
    pub bfd: Option<Bfd>,
    events: tokio::sync::mpsc::UnboundedReceiver<BfdEvent>,
    rt: tokio::runtime::Runtime,
}

impl OurBfd {
    pub fn start(ns: &str, peers: Vec<PeerConfig>) -> Self {
        netns::on_thread(ns, move || -> anyhow::Result<OurBfd> {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()?;
            let (bfd, events) = rt.block_on(async { Bfd::start(peers) })?;
            Ok(OurBfd {
                bfd: Some(bfd),
                events,
                rt,
            })
        })
        .map_err(anyhow::Error::from)
        .and_then(|r| r)
        .unwrap_or_else(|e| panic!("starting our BFD in {ns}: {e:#}"))
    }

    pub fn bfd(&self) -> &Bfd {
        self.bfd.as_ref().expect("running")
    }

    pub fn status(&self) -> SessionStatus {
        self.bfd().status().remove(0)
    }

    /// The next state change, if one comes within `within`.
    pub fn next_event(&mut self, within: Duration) -> Option<BfdEvent> {
        let events = &mut self.events;
        self.rt
            .block_on(async { tokio::time::timeout(within, events.recv()).await })
            .ok()
            .flatten()
    }

    /// Events until one reaches `to` (returned) or `within` passes (None).
    pub fn wait_state(&mut self, to: bfd::State, within: Duration) -> Option<BfdEvent> {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let e = self.next_event(left)?;
            eprintln!("  our BFD: {:?} -> {:?} ({:?})", e.from, e.to, e.diag);
            if e.to == to {
                return Some(e);
            }
        }
    }

    /// State changes already queued (none waited for).
    pub fn pending_events(&mut self) -> Vec<BfdEvent> {
        std::iter::from_fn(|| self.events.try_recv().ok()).collect()
    }
}

impl Drop for OurBfd {
    fn drop(&mut self) {
        // Stop the task before the runtime goes.
        self.bfd = None;
    }
}
