//! FRR as the customer router: `bgpd` (without zebra) in a namespace,
//! driven through `vtysh` on a private vty socket directory, stopped by PID.
use std::{
    net::Ipv4Addr,
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};

use lab::Topology;

use crate::bgp_lab::{KEY, NsProcess, read_logs, wait_for};

/// The customer router of the lab: AS 65010, an IPv4 and an IPv6 session
/// to each MSEE link (MD5, timers 3/10), announcing 172.16.0.0/16 and
/// fd00:c0::/48.
pub fn customer_conf(topo: &Topology, log: &Path) -> String {
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
 !
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
pub const VTYSH: &str = "/usr/bin/vtysh";

/// `bgpd` without zebra, stopped by PID when dropped.
pub struct Frr {
    _process: NsProcess,
    dir: PathBuf,
}

impl Frr {
    pub fn start(ns: &str, conf: &str, dir: &Path) -> Self {
        let conf_path = dir.join("bgpd.conf");
        std::fs::write(&conf_path, conf).unwrap();
        let args = [
            "-f".into(),
            conf_path.display().to_string(),
            "-i".into(),
            dir.join("bgpd.pid").display().to_string(),
            "--vty_socket".into(),
            dir.display().to_string(),
            "-Z".into(),
            "-S".into(),
            "-n".into(),
        ];
        let frr = Self {
            _process: NsProcess::spawn(ns, BGPD, &args, dir, "bgpd"),
            dir: dir.to_owned(),
        };
        let sock = dir.join("bgpd.vty");
        wait_for("bgpd's vty socket", Duration::from_secs(10), || {
            sock.exists()
        })
        .unwrap_or_else(|e| panic!("{e}\n{}", frr.log()));
        frr
    }

    pub fn vtysh(&self, cmds: &[&str]) -> String {
        let mut c = Command::new(VTYSH);
        c.arg("--vty_socket").arg(&self.dir).args(["-d", "bgpd"]);
        for cmd in cmds {
            c.args(["-c", cmd]);
        }
        let out = c.output().expect("running vtysh");
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
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
        read_logs(&self.dir, &["bgpd.log", "bgpd.stderr"])
    }
}
