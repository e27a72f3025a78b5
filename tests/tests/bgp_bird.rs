//! Interop with BIRD 2: `bird` in the on-premises namespace is the customer
//! router (AS 65010) with an MD5-signed IPv4 and IPv6 session to each MSEE
//! link (one `protocol bgp` per neighbour, each with the one channel of its
//! family). Routes from static protocols (both families) reach the
//! dataplane and traffic from Azure follows them; BIRD learns the VNet's
//! ranges with their region community; withdrawal, the route limit and a
//! wrong MD5 key behave as on ExpressRoute. Every change is a new
//! configuration file applied with `birdc configure`. Both ends active,
//! twenty starts of both sides: every session comes up once, with no
//! NOTIFICATION (issue 19). Route churn of 10,000 routes every second
//! costs the stable prefixes' traffic nothing (issue 21).
use std::{
    net::Ipv4Addr,
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};

use e2e_tests::{
    bgp_lab::{
        BgpLab, CUSTOMER_AS, CUSTOMER_NET, CUSTOMER_NET6, KEY, NsProcess, RestartableRouter,
        SESSION_PRIMARY, SESSION_SECONDARY, VNET6, customer_nets, read_logs, repeated_starts,
        wait_for,
    },
    require_root,
};
use lab::{
    IF_PRIMARY, IF_SECONDARY, Topology,
    traffic::{Flow, send_and_count_at},
};

const BIRD: &str = "/usr/sbin/bird";
const BIRDC: &str = "/usr/sbin/birdc";

/// BIRD's configuration: the static routes it exports (IPv4 and IPv6
/// prefixes, each exported on the sessions of its family), the secondary
/// IPv4 session's MD5 key, and whether it prepends 65010 twice towards the
/// secondary over IPv4.
fn bird_conf(
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
struct Bird {
    _process: NsProcess,
    dir: PathBuf,
    ns: String,
}

impl Bird {
    fn start(ns: &str, conf: &str, dir: &Path) -> Self {
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
        wait_for("BIRD's control socket", Duration::from_secs(10), || {
            bird.birdc(&["show", "status"]).contains("Daemon is up")
        })
        .unwrap_or_else(|e| panic!("{e}\n{}", bird.log()));
        bird
    }

    fn birdc(&self, cmd: &[&str]) -> String {
        let out = Command::new("ip")
            .args(["netns", "exec", &self.ns, BIRDC, "-s"])
            .arg(self.dir.join("bird.ctl"))
            .args(cmd)
            .output()
            .expect("running birdc");
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
    }

    /// Replace the configuration and apply it.
    fn reconfigure(&self, conf: &str) {
        let conf_path = self.dir.join("bird.conf");
        std::fs::write(&conf_path, conf).unwrap();
        let out = self.birdc(&["configure", &format!("\"{}\"", conf_path.display())]);
        assert!(
            out.contains("Reconfigured") || out.contains("Reconfiguration in progress"),
            "birdc configure: {out}"
        );
    }

    /// BIRD's line for protocol `name` in `show protocols` (state, info).
    fn protocol(&self, name: &str) -> String {
        let out = self.birdc(&["show", "protocols", name]);
        out.lines()
            .find(|l| l.starts_with(name))
            .unwrap_or("unknown")
            .to_owned()
    }

    fn established(&self, name: &str) -> bool {
        self.protocol(name).trim_end().ends_with("Established")
    }

    fn log(&self) -> String {
        read_logs(&self.dir, &["bird.log", "bird.stderr", "bird.stdout"])
    }
}

/// BIRD takes the link-local address of a neighbour's interface for the
/// IPv6 next hop (global and link-local, RFC 2545) when the session starts;
/// like a router whose interfaces are up, wait until duplicate address
/// detection is done with them.
fn wait_link_local(topo: &Topology) {
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

#[test]
fn bird_customer_router_over_both_links() {
    if !require_root("bird_customer_router_over_both_links") {
        return;
    }
    if !Path::new(BIRD).exists() {
        panic!("{BIRD} is missing: install bird2 (cargo xtask setup does)");
    }
    let lab = BgpLab::up("bird");
    let topo = &lab.topo;
    let log = lab.dir.join("bird.log");
    let conf =
        |nets: &[String], secondary_key: &str| bird_conf(topo, &log, nets, secondary_key, false);
    // The customer's first network in each family.
    let first = || vec![CUSTOMER_NET.to_owned(), CUSTOMER_NET6.to_owned()];
    wait_link_local(topo);
    let bird = Bird::start(&topo.ns_onprem(), &conf(&first(), KEY), &lab.dir);
    let ctx = |what: &str| lab.ctx(what, &bird.log());

    // 1. Both sessions come up, MD5-signed.
    lab.wait_both_established(Duration::from_secs(30), || bird.log());
    wait_for(
        "BIRD sees both Established",
        Duration::from_secs(10),
        || bird.established("msee1") && bird.established("msee2"),
    )
    .unwrap_or_else(|e| panic!("{}", ctx(&e)));

    // 2. The static route reaches both links and traffic follows it.
    lab.check_installed_and_forwarding(false, || bird.log());

    // 3. BIRD learned the VNet from both MSEEs, AS path 12076, with the
    // region community.
    let vnet = || bird.birdc(&["show", "route", "10.1.0.0/16", "all"]);
    wait_for("VNet route at BIRD", Duration::from_secs(15), || {
        let out = vnet();
        out.matches("BGP.community: (12076,51002)").count() == 2
            && out.matches("BGP.as_path: 12076\n").count() == 2
    })
    .unwrap_or_else(|e| panic!("{}", ctx(&format!("{e}: {}", vnet()))));

    // 2b. The same over IPv6: both IPv6 sessions up (MD5-signed), the
    // static fd00:c0::/48 on both links, traffic follows it, and BIRD
    // learned the VNet's IPv6 range from both MSEEs, AS path 12076, with the
    // region community and the MSEE's IPv6 address as next hop.
    lab.wait_ipv6_established(|| bird.log());
    wait_for(
        "BIRD sees both IPv6 sessions Established",
        Duration::from_secs(10),
        || bird.established("msee1v6") && bird.established("msee2v6"),
    )
    .unwrap_or_else(|e| panic!("{}", ctx(&e)));
    // Its next hop towards the MSEEs carries the link-local address too
    // (a 32-octet next hop in MP_REACH_NLRI), which the MSEE accepts.
    for name in ["msee1v6", "msee2v6"] {
        let out = bird.birdc(&["show", "protocols", "all", name]);
        assert!(
            out.lines()
                .any(|l| l.trim_start().starts_with("BGP Next hop:") && l.contains(" fe80:")),
            "{}",
            ctx(&format!(
                "BIRD's IPv6 next hop with its link-local address: {out}"
            ))
        );
    }
    lab.check_installed_and_forwarding(true, || bird.log());
    let vnet6 = || bird.birdc(&["show", "route", VNET6, "all"]);
    wait_for("IPv6 VNet route at BIRD", Duration::from_secs(15), || {
        let out = vnet6();
        out.matches("BGP.community: (12076,51002)").count() == 2
            && out.matches("BGP.as_path: 12076\n").count() == 2
            && [topo.primary6.msee, topo.secondary6.msee]
                .iter()
                .all(|m| out.contains(&format!("BGP.next_hop: {m}")))
    })
    .unwrap_or_else(|e| panic!("{}", ctx(&format!("{e}: {}", vnet6()))));
    lab.check_cli(200);
    lab.check_cli6();

    // AS-path prepending towards the secondary (an export filter change,
    // which BIRD applies without restarting the session) makes it the
    // backup: the group keeps both links, the secondary at a worse
    // preference; removing it makes them equal again.
    let established = lab.established(SESSION_SECONDARY);
    bird.reconfigure(&bird_conf(topo, &log, &first(), KEY, true));
    wait_for(
        "prepended path on the secondary",
        Duration::from_secs(15),
        || lab.next_hops(CUSTOMER_NET) == vec![("primary".into(), 1), ("secondary".into(), 3)],
    )
    .unwrap_or_else(|e| panic!("{}", ctx(&e)));
    assert_eq!(
        lab.send(7005, 50),
        50,
        "{}",
        ctx("traffic over the preferred link")
    );
    bird.reconfigure(&conf(&first(), KEY));
    lab.wait_equal_paths(|| bird.log());
    assert_eq!(
        lab.established(SESSION_SECONDARY),
        established,
        "{}",
        ctx("the secondary session stayed up through the policy change")
    );

    // 4. Withdrawal: the static route removed from the configuration, one
    // family after the other.
    bird.reconfigure(&conf(&[CUSTOMER_NET6.to_owned()], KEY));
    lab.check_withdrawn(7002, || bird.log());
    bird.reconfigure(&conf(&[], KEY));
    wait_for("fd00:c0::/48 removed", Duration::from_secs(15), || {
        lab.removed(CUSTOMER_NET6)
    })
    .unwrap_or_else(|e| panic!("{}", ctx(&e)));
    assert_eq!(
        lab.send6(7012, 20),
        0,
        "{}",
        ctx("no IPv6 route, no delivery")
    );

    // 5. Six prefixes over a limit of five: Cease / max-prefix, which BIRD
    // reports; back with five.
    bird.reconfigure(&conf(&customer_nets(6), KEY));
    lab.wait_max_prefix_teardown(Duration::from_secs(20), || bird.log());
    wait_for("BIRD got the Cease subcode", Duration::from_secs(5), || {
        bird.log()
            .contains("Received: Maximum number of prefixes reached")
    })
    .unwrap_or_else(|e| panic!("{}", ctx(&e)));
    let before = lab.established(SESSION_PRIMARY);
    bird.reconfigure(&conf(&customer_nets(5), KEY));
    lab.wait_established_after(SESSION_PRIMARY, before, Duration::from_secs(30), || {
        bird.log()
    });
    wait_for("BIRD back to Established", Duration::from_secs(30), || {
        bird.established("msee1") && bird.established("msee2")
    })
    .unwrap_or_else(|e| panic!("{}", ctx(&e)));
    lab.wait_five_installed(Duration::from_secs(15), || bird.log());
    assert_eq!(
        lab.send(7003, 50),
        50,
        "{}",
        ctx("traffic follows the re-learned route")
    );

    // 6. A wrong MD5 key on the secondary (BIRD restarts that protocol with
    // it) never establishes; the primary keeps carrying traffic.
    let before = lab.established(SESSION_SECONDARY);
    bird.reconfigure(&conf(&customer_nets(5), "wrong-key"));
    std::thread::sleep(Duration::from_secs(12));
    assert_eq!(
        lab.established(SESSION_SECONDARY),
        before,
        "{}",
        ctx("no session with a wrong key")
    );
    assert!(!bird.established("msee2"), "{}", bird.protocol("msee2"));
    lab.check_secondary_down(&bird.log());
    assert!(bird.established("msee1"), "{}", bird.protocol("msee1"));
    assert_eq!(
        lab.send(7004, 50),
        50,
        "{}",
        ctx("primary alone carries traffic")
    );
    // The right key again: back up.
    bird.reconfigure(&conf(&customer_nets(5), KEY));
    lab.wait_established_after(SESSION_SECONDARY, before, Duration::from_secs(30), || {
        bird.log()
    });
}

/// The four BGP protocols of `bird_conf`.
const BIRD_SESSIONS: [&str; 4] = ["msee1", "msee2", "msee1v6", "msee2v6"];

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

/// Issue 19: BIRD and the MSEE both active (BIRD connects out after 1 s
/// and retries every 2 s, the daemon too), both restarted twenty times:
/// every IPv4 and IPv6 session comes up once per start, and no
/// NOTIFICATION crosses either way.
#[test]
fn bird_both_active_twenty_starts() {
    if !require_root("bird_both_active_twenty_starts") {
        return;
    }
    let mut lab = BgpLab::up("bird20");
    wait_link_local(&lab.topo);
    let collisions = repeated_starts(&mut lab, 20, |lab| {
        // A fresh log per start: BIRD appends to its file.
        let log = lab.dir.join("bird.log");
        let _ = std::fs::remove_file(&log);
        let nets = [CUSTOMER_NET.to_owned(), CUSTOMER_NET6.to_owned()];
        let conf = bird_conf(&lab.topo, &log, &nets, KEY, false);
        Bird::start(&lab.topo.ns_onprem(), &conf, &lab.dir)
    });
    eprintln!("20 starts with BIRD: {collisions} connection collisions resolved");
}

/// Route churn (issue 21): BIRD withdraws and re-announces 10,000 routes
/// every second for 30 s (9,900 /24s elsewhere and 100 /25s inside the
/// stable /24s, so half the probed hosts' longest match flips between the
/// churning /25 and its stable /24) while the VNet sends to ten hosts of
/// 100 stable prefixes: nothing sent to the stable prefixes is lost.
#[test]
fn route_churn_costs_the_stable_prefixes_nothing() {
    if !require_root("route_churn_costs_the_stable_prefixes_nothing") {
        return;
    }
    let stable: Vec<String> = (0..100).map(|i| format!("172.20.{i}.0/24")).collect();
    let churn: Vec<String> = (0..9_900u32)
        .map(|i| format!("10.{}.{}.0/24", 128 + i / 256, i % 256))
        .chain((0..100).map(|i| format!("172.20.{i}.128/25")))
        .collect();
    // Ten probed hosts across the stable prefixes, half under a churning /25.
    let hosts: Vec<Ipv4Addr> = (0..10u8)
        .map(|k| Ipv4Addr::new(172, 20, k * 11, if k % 2 == 0 { 1 } else { 129 }))
        .collect();
    let lab = BgpLab::up_custom(
        "churn",
        &e2e_tests::bgp_lab::circuit_toml(),
        &["--max-prefixes", "20000"],
        |topo| {
            for h in &hosts {
                lab::ip_ns(
                    &topo.ns_onprem(),
                    &["addr", "add", &format!("{h}/32"), "dev", "lo"],
                )
                .unwrap();
            }
        },
    );
    let topo = &lab.topo;
    let mut nets = vec![CUSTOMER_NET.to_owned()];
    nets.extend(stable.iter().cloned());
    let mut conf = bird_conf(topo, &lab.dir.join("bird.log"), &nets, KEY, false).replace(
        "where proto = \"cust_nets\"",
        "where proto = \"cust_nets\" || proto = \"churn\"",
    );
    conf += "protocol static churn {\n  ipv4;\n";
    for c in &churn {
        conf += &format!("  route {c} blackhole;\n");
    }
    conf += "}\n";
    let bird = Bird::start(&topo.ns_onprem(), &conf, &lab.dir);
    let ctx = |what: &str| lab.ctx(what, &bird.log());
    let socket = lab.socket.clone();
    let fib = move || -> serde_json::Value {
        control::api::query(
            &socket,
            &control::api::Request::Fib { lookup: vec![] },
            Duration::from_secs(10),
        )
        .unwrap()
    };
    let all = (1 + stable.len() + churn.len()) as u64;
    wait_for("every route on both links", Duration::from_secs(60), || {
        [SESSION_PRIMARY, SESSION_SECONDARY]
            .iter()
            .all(|s| lab.established(s) >= 1)
            && fib()["record"]["prefixes_announced"].as_u64().unwrap_or(0) >= 2 * all
    })
    .unwrap_or_else(|e| panic!("{}", ctx(&e)));
    let withdrawn_before = fib()["record"]["prefixes_withdrawn"].as_u64().unwrap_or(0);

    // 32 s of traffic to each probed host, 500 pps each.
    let flows: Vec<_> = hosts
        .iter()
        .enumerate()
        .map(|(k, h)| {
            let flow = Flow {
                src_ns: topo.ns_azure(),
                src_addr: topo.vnet_host.into(),
                src_dev: None,
                dst_ns: topo.ns_onprem(),
                dst_addr: (*h).into(),
                dst_port: 7500 + k as u16,
            };
            std::thread::spawn(move || send_and_count_at(&flow, 16_000, Some(500)).unwrap())
        })
        .collect();
    std::thread::sleep(Duration::from_secs(1));
    for _ in 0..30 {
        for cmd in ["disable", "enable"] {
            let out = bird.birdc(&[cmd, "churn"]);
            assert!(out.contains(&format!("{cmd}d")), "birdc {cmd} churn: {out}");
            std::thread::sleep(Duration::from_millis(500));
        }
    }
    for (f, h) in flows.into_iter().zip(&hosts) {
        let got = f.join().unwrap();
        assert_eq!(
            got.received,
            got.sent,
            "{}",
            ctx(&format!("to {h}: {got:?}"))
        );
    }
    // The churn reached the dataplane: both sessions withdrew the 10,000
    // many times over.
    let withdrawn = fib()["record"]["prefixes_withdrawn"].as_u64().unwrap_or(0) - withdrawn_before;
    assert!(
        withdrawn >= 20 * 2 * churn.len() as u64,
        "{withdrawn} prefixes withdrawn in 30 churns of {}",
        churn.len()
    );
    eprintln!("churn: {withdrawn} prefixes withdrawn while 10 stable hosts lost nothing");
}
