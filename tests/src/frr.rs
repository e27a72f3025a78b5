//! FRR as the customer router: `bgpd` (without zebra) in a namespace,
//! driven through `vtysh` on a private vty socket directory, stopped by PID.
use std::{
    net::Ipv4Addr,
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};

use lab::Topology;

use crate::bgp_lab::{KEY, NsProcess, QUICK_POLL, read_logs, wait_for_every};

/// The customer router of the lab: AS 65010, an IPv4 and an IPv6 session
/// to each MSEE link (MD5, timers 3/10), announcing 172.16.0.0/16 and
/// fd00:c0::/48.
pub fn customer_conf(topo: &Topology, log: &Path) -> String {
    customer_conf_inner(topo, log, "")
}

/// [`customer_conf`] with both IPv4 sessions tied to BFD (profile `lab`,
/// see [`bfdd_conf`]): as a customer would run it, a BFD failure takes the
/// BGP session down on FRR's side too.
pub fn customer_conf_bfd(topo: &Topology, log: &Path) -> String {
    let bfd = format!(
        " neighbor {} bfd profile lab\n neighbor {} bfd profile lab\n",
        topo.primary.msee, topo.secondary.msee
    );
    customer_conf_inner(topo, log, &bfd)
}

/// bfdd with the profile `lab` at `interval_ms` x `multiplier`.
pub fn bfdd_conf(log: &Path, interval_ms: u32, multiplier: u8) -> String {
    format!(
        "log file {}\nbfd\n profile lab\n  transmit-interval {interval_ms}\n  receive-interval {interval_ms}\n  detect-multiplier {multiplier}\n !\n",
        log.display()
    )
}

fn customer_conf_inner(topo: &Topology, log: &Path, neighbour_extra: &str) -> String {
    format!(
        "frr defaults traditional
hostname onprem
log file {log}
!
router bgp 65010
 bgp router-id {rid}
 no bgp ebgp-requires-policy
 no bgp network import-check
 timers bgp 3 10
 neighbor {p} remote-as 12076
 neighbor {p} password {KEY}
 neighbor {p} timers connect 2
 neighbor {s} remote-as 12076
 neighbor {s} password {KEY}
 neighbor {s} timers connect 2
 neighbor {p6} remote-as 12076
 neighbor {p6} password {KEY}
 neighbor {p6} timers connect 2
 neighbor {s6} remote-as 12076
 neighbor {s6} password {KEY}
 neighbor {s6} timers connect 2
{neighbour_extra} !
 address-family ipv4 unicast
  network 172.16.0.0/16
  no neighbor {p6} activate
  no neighbor {s6} activate
 exit-address-family
 !
 address-family ipv6 unicast
  network {net6}
  neighbor {p6} activate
  neighbor {s6} activate
 exit-address-family
!
",
        log = log.display(),
        rid = topo.primary.customer,
        p = topo.primary.msee,
        s = topo.secondary.msee,
        p6 = topo.primary6.msee,
        s6 = topo.secondary6.msee,
        net6 = crate::bgp_lab::CUSTOMER_NET6,
    )
}

pub const BGPD: &str = "/usr/lib/frr/bgpd";
pub const BFDD: &str = "/usr/lib/frr/bfdd";
pub const ZEBRA: &str = "/usr/lib/frr/zebra";
pub const VTYSH: &str = "/usr/bin/vtysh";

/// FRR in a namespace: `bgpd` alone (no zebra), or zebra + bfdd + bgpd
/// with the BGP sessions tied to BFD. Every daemon keeps its pid, log, vty
/// and zebra sockets in `dir`, and is stopped by PID when dropped (in
/// reverse start order).
pub struct Frr {
    processes: Vec<NsProcess>,
    dir: PathBuf,
}

impl Drop for Frr {
    fn drop(&mut self) {
        while let Some(p) = self.processes.pop() {
            drop(p);
        }
    }
}

impl Frr {
    /// `bgpd` without zebra (`-Z`), configured by `conf`.
    pub fn start(ns: &str, conf: &str, dir: &Path) -> Self {
        let mut frr = Self {
            processes: Vec::new(),
            dir: dir.to_owned(),
        };
        frr.spawn(ns, "bgpd", BGPD, conf, &["-Z", "-S", "-n"]);
        frr
    }

    /// zebra, bfdd (with `bfdd_conf`) and bgpd (with `bgpd_conf`, whose
    /// neighbours may use `bfd`): the customer router of a failover lab.
    /// `dir` must be writable by the daemons' user (they drop to `frr`).
    pub fn start_with_bfd(ns: &str, bgpd_conf: &str, bfdd_conf: &str, dir: &Path) -> Self {
        Self::start_router(ns, bgpd_conf, bfdd_conf, dir, false)
    }

    /// [`Frr::start_with_bfd`], with `install`: bgpd installs its best
    /// routes into the namespace's kernel (through zebra), so that the
    /// customer's own traffic follows what BGP told it.
    pub fn start_router(
        ns: &str,
        bgpd_conf: &str,
        bfdd_conf: &str,
        dir: &Path,
        install: bool,
    ) -> Self {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        let mut frr = Self {
            processes: Vec::new(),
            dir: dir.to_owned(),
        };
        let zserv = dir.join("zserv.api").display().to_string();
        frr.spawn(
            ns,
            "zebra",
            ZEBRA,
            &format!(
                "hostname onprem\nlog file {}\n",
                dir.join("zebra.log").display()
            ),
            &["-z", &zserv],
        );
        let zserv_path = dir.join("zserv.api");
        wait_for_every(
            "zebra's socket",
            Duration::from_secs(10),
            QUICK_POLL,
            || zserv_path.exists(),
        )
        .unwrap_or_else(|e| panic!("{e}\n{}", frr.log()));
        let bfdctl = dir.join("bfdd.sock").display().to_string();
        frr.spawn(
            ns,
            "bfdd",
            BFDD,
            bfdd_conf,
            &["-z", &zserv, "--bfdctl", &bfdctl],
        );
        let mut args = vec!["-z", &zserv, "-S"];
        if !install {
            args.push("-n");
        }
        frr.spawn(ns, "bgpd", BGPD, bgpd_conf, &args);
        frr
    }

    /// Starts `daemon` (`program`) with `conf` and `extra` arguments, and
    /// waits for its vty socket.
    fn spawn(&mut self, ns: &str, daemon: &str, program: &str, conf: &str, extra: &[&str]) {
        assert!(
            Path::new(program).exists(),
            "{program} is missing: install FRR (cargo xtask setup does)"
        );
        let conf_path = self.dir.join(format!("{daemon}.conf"));
        std::fs::write(&conf_path, conf).unwrap();
        let mut args = vec![
            "-f".into(),
            conf_path.display().to_string(),
            "-i".into(),
            self.dir.join(format!("{daemon}.pid")).display().to_string(),
            "--vty_socket".into(),
            self.dir.display().to_string(),
        ];
        args.extend(extra.iter().map(std::string::ToString::to_string));
        self.processes
            .push(NsProcess::spawn(ns, program, &args, &self.dir, daemon));
        let sock = self.dir.join(format!("{daemon}.vty"));
        wait_for_every(
            &format!("{daemon}'s vty socket"),
            Duration::from_secs(10),
            QUICK_POLL,
            || sock.exists(),
        )
        .unwrap_or_else(|e| panic!("{e}\n{}", self.log()));
    }

    /// vtysh against one daemon (`bgpd`, `bfdd`, `zebra`).
    pub fn vtysh_to(&self, daemon: &str, cmds: &[&str]) -> String {
        let mut c = Command::new(VTYSH);
        c.arg("--vty_socket").arg(&self.dir).args(["-d", daemon]);
        for cmd in cmds {
            c.args(["-c", cmd]);
        }
        let out = c.output().expect("running vtysh");
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
    }

    pub fn vtysh(&self, cmds: &[&str]) -> String {
        self.vtysh_to("bgpd", cmds)
    }

    pub fn configure(&self, lines: &[&str]) {
        let mut cmds = vec!["configure terminal", "router bgp 65010"];
        cmds.extend_from_slice(lines);
        let out = self.vtysh(&cmds);
        assert!(
            !out.contains("Unknown command") && !out.contains("% "),
            "vtysh {lines:?}: {out}"
        );
    }

    pub fn neighbour_state(&self, addr: Ipv4Addr) -> String {
        let out = self.vtysh(&[&format!("show bgp neighbors {addr} json")]);
        serde_json::from_str::<serde_json::Value>(&out)
            .ok()
            .and_then(|v| v[addr.to_string()]["bgpState"].as_str().map(str::to_owned))
            .unwrap_or_else(|| format!("unknown ({out})"))
    }

    pub fn log(&self) -> String {
        read_logs(
            &self.dir,
            &[
                "bgpd.log",
                "bgpd.stderr",
                "bfdd.log",
                "bfdd.stderr",
                "zebra.log",
                "zebra.stderr",
            ],
        )
    }
}
