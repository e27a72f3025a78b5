//! BIRD 2 as the customer's router: its configuration for the lab's four
//! sessions, the process (stopped by PID when dropped) and `birdc`.
use std::{
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};

use lab::{IF_PRIMARY, IF_SECONDARY, Topology};

use crate::bgp_lab::{
    CUSTOMER_AS, KEY, NsProcess, QUICK_POLL, RestartableRouter, read_logs, wait_for, wait_for_every,
};

pub const BIRD: &str = "/usr/sbin/bird";
pub const BIRDC: &str = "/usr/sbin/birdc";

/// BIRD's configuration: the static routes it exports (IPv4 and IPv6
/// prefixes, each exported on the sessions of its family), the secondary
/// IPv4 session's MD5 key, and whether it prepends 65010 twice towards the
/// secondary over IPv4.
pub fn bird_conf(
    topo: &Topology,
    log: &Path,
    nets: &[String],
    secondary_key: &str,
    prepend_secondary: bool,
) -> String {
    let routes = |v6: bool| -> String {
        nets.iter()
            .filter(|n| n.contains(':') == v6)
            .map(|n| format!("  route {n} blackhole;\n"))
            .collect()
    };
    let session = |name: &str, addr: std::net::IpAddr, key: &str, prepend: bool| {
        let (channel, statics) = if addr.is_ipv6() {
            ("ipv6", "cust_nets6")
        } else {
            ("ipv4", "cust_nets")
        };
        let export = if prepend {
            format!(
                "filter {{ if proto != \"{statics}\" then reject; \
                 bgp_path.prepend({CUSTOMER_AS}); bgp_path.prepend({CUSTOMER_AS}); accept; }}"
            )
        } else {
            format!("where proto = \"{statics}\"")
        };
        format!(
            "protocol bgp {name} {{
  local as {CUSTOMER_AS};
  neighbor {addr} as 12076;
  password \"{key}\";
  hold time 10;
  keepalive time 3;
  connect delay time 1;
  connect retry time 2;
  error wait time 1, 2;
  {channel} {{ import all; export {export}; }};
}}
"
        )
    };
    format!(
        "log \"{log}\" all;
router id {rid};
protocol device {{ scan time 10; }}
protocol static cust_nets {{
  ipv4;
{routes4}}}
protocol static cust_nets6 {{
  ipv6;
{routes6}}}
{p}{s}{p6}{s6}",
        log = log.display(),
        rid = topo.primary.customer,
        routes4 = routes(false),
        routes6 = routes(true),
        p = session("msee1", topo.primary.msee.into(), KEY, false),
        s = session(
            "msee2",
            topo.secondary.msee.into(),
            secondary_key,
            prepend_secondary
        ),
        p6 = session("msee1v6", topo.primary6.msee.into(), KEY, false),
        s6 = session("msee2v6", topo.secondary6.msee.into(), KEY, false),
    )
}

/// `bird` in the foreground, stopped by PID when dropped.
pub struct Bird {
    _process: NsProcess,
    dir: PathBuf,
    ns: String,
}

impl Bird {
    pub fn start(ns: &str, conf: &str, dir: &Path) -> Self {
        let conf_path = dir.join("bird.conf");
        std::fs::write(&conf_path, conf).unwrap();
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
            _process: NsProcess::spawn(ns, BIRD, &args, dir, "bird"),
            dir: dir.to_owned(),
            ns: ns.to_owned(),
        };
        wait_for_every(
            "BIRD's control socket",
            Duration::from_secs(10),
            QUICK_POLL,
            || bird.birdc(&["show", "status"]).contains("Daemon is up"),
        )
        .unwrap_or_else(|e| panic!("{e}\n{}", bird.log()));
        bird
    }

    pub fn birdc(&self, cmd: &[&str]) -> String {
        let out = Command::new("ip")
            .args(["netns", "exec", &self.ns, BIRDC, "-s"])
            .arg(self.dir.join("bird.ctl"))
            .args(cmd)
            .output()
            .expect("running birdc");
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
    }

    /// Replace the configuration and apply it.
    pub fn reconfigure(&self, conf: &str) {
        let conf_path = self.dir.join("bird.conf");
        std::fs::write(&conf_path, conf).unwrap();
        let out = self.birdc(&["configure", &format!("\"{}\"", conf_path.display())]);
        assert!(
            out.contains("Reconfigured") || out.contains("Reconfiguration in progress"),
            "birdc configure: {out}"
        );
    }

    /// BIRD's line for protocol `name` in `show protocols` (state, info).
    pub fn protocol(&self, name: &str) -> String {
        let out = self.birdc(&["show", "protocols", name]);
        out.lines()
            .find(|l| l.starts_with(name))
            .unwrap_or("unknown")
            .to_owned()
    }

    pub fn established(&self, name: &str) -> bool {
        self.protocol(name).trim_end().ends_with("Established")
    }

    pub fn log(&self) -> String {
        read_logs(&self.dir, &["bird.log", "bird.stderr", "bird.stdout"])
    }
}

/// BIRD takes the link-local address of a neighbour's interface for the
/// IPv6 next hop (global and link-local, RFC 2545) when the session starts;
/// like a router whose interfaces are up, wait until duplicate address
/// detection is done with them.
pub fn wait_link_local(topo: &Topology) {
    wait_for(
        "on-prem link-local addresses",
        Duration::from_secs(10),
        || {
            [IF_PRIMARY, IF_SECONDARY].iter().all(|dev| {
                let out = Command::new("ip")
                    .args(["-n", &topo.ns_onprem(), "-6", "addr", "show", "dev", dev])
                    .args(["scope", "link", "-tentative"])
                    .output()
                    .unwrap();
                String::from_utf8_lossy(&out.stdout).contains("inet6 fe80:")
            })
        },
    )
    .unwrap_or_else(|e| panic!("{e}"));
}

/// The four BGP protocols of `bird_conf`.
pub const BIRD_SESSIONS: [&str; 4] = ["msee1", "msee2", "msee1v6", "msee2v6"];

impl RestartableRouter for Bird {
    fn all_established(&self) -> bool {
        BIRD_SESSIONS.iter().all(|p| self.established(p))
    }

    /// BIRD logs every NOTIFICATION it sends ("Error: ...") or receives
    /// ("Received: ..."), and `show protocols all` keeps the last error.
    fn no_notification(&self) -> Result<(), String> {
        if let Some(l) = self
            .log()
            .lines()
            .find(|l| l.contains("Received:") || l.contains("Error:"))
        {
            return Err(format!("BIRD logged {l}"));
        }
        for p in BIRD_SESSIONS {
            let all = self.birdc(&["show", "protocols", "all", p]);
            if let Some(l) = all.lines().find(|l| l.contains("Last error")) {
                return Err(format!("BIRD {p}: {l}"));
            }
        }
        Ok(())
    }

    fn log(&self) -> String {
        Bird::log(self)
    }
}
