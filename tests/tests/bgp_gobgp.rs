//! Interop with GoBGP: `gobgpd` in the on-premises namespace is the customer
//! router (AS 65010) with an MD5-signed IPv4 and IPv6 session to each MSEE
//! link (each neighbour with the one afi-safi of its family). Routes
//! injected with `gobgp global rib add` (both families) reach the dataplane
//! and traffic from Azure follows them; GoBGP learns the VNet's ranges with
//! their region community; withdrawal, the route limit and a wrong MD5 key
//! behave as on ExpressRoute.
//! Its gRPC API listens on loopback inside the onprem namespace, on a port
//! unique to this test process. Both ends active, twenty starts of both
//! sides: every session comes up once, with no NOTIFICATION (issue 19).
use std::{
    net::IpAddr,
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};

use e2e_tests::{
    bgp_lab::{
        BgpLab, CUSTOMER_AS, CUSTOMER_NET, CUSTOMER_NET6, KEY, NsProcess, QUICK_POLL,
        RestartableRouter, SESSION_PRIMARY, SESSION_SECONDARY, VNET6, customer_nets, read_logs,
        repeated_starts, wait_for, wait_for_every,
    },
    require_root,
};
use lab::Topology;

const GOBGPD: &str = "/usr/bin/gobgpd";
const GOBGP: &str = "/usr/bin/gobgp";

/// gobgpd's configuration; `secondary_key` is the secondary IPv4 session's
/// key. The IPv6 neighbours negotiate IPv6 unicast only.
fn gobgp_conf(topo: &Topology, secondary_key: &str) -> String {
    let neighbor = |addr: IpAddr, key: &str| {
        let afi_safi = if addr.is_ipv6() {
            "ipv6-unicast"
        } else {
            "ipv4-unicast"
        };
        format!(
            r#"
[[neighbors]]
  [neighbors.config]
    neighbor-address = "{addr}"
    peer-as = 12076
    auth-password = "{key}"
  [neighbors.timers.config]
    connect-retry = 2
    hold-time = 10
    keepalive-interval = 3
    idle-hold-time-after-reset = 1
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "{afi_safi}"
"#
        )
    };
    format!(
        r#"[global.config]
  as = {CUSTOMER_AS}
  router-id = "{rid}"
{p}{s}{p6}{s6}"#,
        rid = topo.primary.customer,
        p = neighbor(topo.primary.msee.into(), KEY),
        s = neighbor(topo.secondary.msee.into(), secondary_key),
        p6 = neighbor(topo.primary6.msee.into(), KEY),
        s6 = neighbor(topo.secondary6.msee.into(), KEY),
    )
}

/// `gobgpd`, stopped by PID when dropped.
struct GoBgp {
    process: NsProcess,
    dir: PathBuf,
    ns: String,
    port: u16,
}

impl GoBgp {
    fn start(ns: &str, conf: &str, dir: &Path, port: u16) -> Self {
        let conf_path = dir.join("gobgpd.toml");
        std::fs::write(&conf_path, conf).unwrap();
        let args = [
            "-f".into(),
            conf_path.display().to_string(),
            "--api-hosts".into(),
            format!("127.0.0.1:{port}"),
            "--log-plain".into(),
            "--log-level".into(),
            "debug".into(),
            "--pprof-disable".into(),
        ];
        let gobgp = Self {
            process: NsProcess::spawn(ns, GOBGPD, &args, dir, "gobgpd"),
            dir: dir.to_owned(),
            ns: ns.to_owned(),
            port,
        };
        wait_for_every("gobgpd's API", Duration::from_secs(10), QUICK_POLL, || {
            gobgp.try_gobgp(&["global"]).is_ok()
        })
        .unwrap_or_else(|e| panic!("{e}\n{}", gobgp.log()));
        gobgp
    }

    fn try_gobgp(&self, args: &[&str]) -> Result<String, String> {
        let out = Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.ns,
                GOBGP,
                "-p",
                &self.port.to_string(),
            ])
            .args(args)
            .output()
            .expect("running gobgp");
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        if out.status.success() {
            Ok(text)
        } else {
            Err(text)
        }
    }

    fn gobgp(&self, args: &[&str]) -> String {
        self.try_gobgp(args)
            .unwrap_or_else(|e| panic!("gobgp {args:?}: {e}"))
    }

    /// Originate `net` (IPv4 or IPv6); GoBGP sends it to the neighbours of
    /// its family with its own address as next hop.
    fn add(&self, net: &str) {
        self.gobgp(&["global", "rib", "add", net, "-a", family(net)]);
    }

    fn del(&self, net: &str) {
        self.gobgp(&["global", "rib", "del", net, "-a", family(net)]);
    }

    fn established(&self, addr: impl Into<IpAddr>) -> bool {
        let addr: IpAddr = addr.into();
        self.try_gobgp(&["neighbor", &addr.to_string()])
            .is_ok_and(|o| o.contains("BGP state = ESTABLISHED"))
    }

    /// Rewrite the configuration file and have gobgpd reload it (SIGHUP).
    /// A changed neighbour is updated in place; gobgpd 3.10 takes the
    /// session down ("Peer Down ... dying") and brings it back with the new
    /// `auth-password` on its sockets.
    fn reload(&self, conf: &str) {
        std::fs::write(self.dir.join("gobgpd.toml"), conf).unwrap();
        nix::sys::signal::kill(self.process.pid(), nix::sys::signal::Signal::SIGHUP).unwrap();
    }

    fn log(&self) -> String {
        read_logs(&self.dir, &["gobgpd.stdout", "gobgpd.stderr"])
    }
}

/// `gobgp -a` for a prefix.
fn family(net: &str) -> &'static str {
    if net.contains(':') { "ipv6" } else { "ipv4" }
}

#[test]
fn gobgp_customer_router_over_both_links() {
    if !require_root("gobgp_customer_router_over_both_links") {
        return;
    }
    if !Path::new(GOBGPD).exists() {
        panic!("{GOBGPD} is missing: install gobgpd (cargo xtask setup does)");
    }
    let lab = BgpLab::up("gobgp");
    let topo = &lab.topo;
    // Unique to this process: other tests' gobgpd live in other namespaces,
    // but keep the port distinct anyway.
    let port = 40_000 + (std::process::id() % 20_000) as u16;
    let gobgp = GoBgp::start(&topo.ns_onprem(), &gobgp_conf(topo, KEY), &lab.dir, port);
    let ctx = |what: &str| lab.ctx(what, &gobgp.log());
    gobgp.add(CUSTOMER_NET);
    gobgp.add(CUSTOMER_NET6);

    // 1. Both sessions come up, MD5-signed.
    lab.wait_both_established(Duration::from_secs(30), || gobgp.log());
    wait_for(
        "GoBGP sees both Established",
        Duration::from_secs(10),
        || gobgp.established(topo.primary.msee) && gobgp.established(topo.secondary.msee),
    )
    .unwrap_or_else(|e| panic!("{}", ctx(&e)));

    // 2. The injected route reaches both links and traffic follows it.
    lab.check_installed_and_forwarding(false, || gobgp.log());

    // 3. GoBGP learned the VNet from both MSEEs with the region community.
    let vnet = || gobgp.gobgp(&["global", "rib", "-a", "ipv4", "10.1.0.0/16"]);
    wait_for("VNet route at GoBGP", Duration::from_secs(15), || {
        let out = vnet();
        let paths: Vec<&str> = out.lines().filter(|l| l.contains("10.1.0.0/16")).collect();
        paths.len() == 2
            && paths
                .iter()
                .all(|l| l.contains("12076:51002") && l.contains(" 12076 "))
    })
    .unwrap_or_else(|e| panic!("{}", ctx(&format!("{e}: {}", vnet()))));

    // 2b. The same over IPv6: both IPv6 sessions up (MD5-signed),
    // fd00:c0::/48 on both links, traffic follows it, and GoBGP learned the
    // VNet's IPv6 range from both MSEEs, AS path 12076, with the region
    // community and the MSEE's IPv6 address as next hop.
    lab.wait_ipv6_established(|| gobgp.log());
    wait_for(
        "GoBGP sees both IPv6 sessions Established",
        Duration::from_secs(10),
        || gobgp.established(topo.primary6.msee) && gobgp.established(topo.secondary6.msee),
    )
    .unwrap_or_else(|e| panic!("{}", ctx(&e)));
    lab.check_installed_and_forwarding(true, || gobgp.log());
    let vnet6 = || gobgp.gobgp(&["global", "rib", "-a", "ipv6", VNET6]);
    wait_for("IPv6 VNet route at GoBGP", Duration::from_secs(15), || {
        let out = vnet6();
        let paths: Vec<&str> = out.lines().filter(|l| l.contains(VNET6)).collect();
        paths.len() == 2
            && paths
                .iter()
                .all(|l| l.contains("12076:51002") && l.contains(" 12076 "))
            && [topo.primary6.msee, topo.secondary6.msee]
                .iter()
                .all(|m| paths.iter().any(|l| l.contains(&format!(" {m} "))))
    })
    .unwrap_or_else(|e| panic!("{}", ctx(&format!("{e}: {}", vnet6()))));
    lab.check_cli(200);
    lab.check_cli6();

    // AS-path prepending towards the secondary makes it the backup. GoBGP
    // applies export policies globally to non-route-server peers, so the
    // statement matches the secondary's address; a soft reset re-sends.
    let s = topo.secondary.msee.to_string();
    for args in [
        vec!["policy", "neighbor", "add", "SECONDARY", &format!("{s}/32")],
        vec!["policy", "statement", "add", "PREPEND"],
        vec![
            "policy",
            "statement",
            "PREPEND",
            "add",
            "condition",
            "neighbor",
            "SECONDARY",
        ],
        vec![
            "policy",
            "statement",
            "PREPEND",
            "add",
            "action",
            "as-prepend",
            "65010",
            "2",
        ],
        vec!["policy", "add", "TO_SECONDARY", "PREPEND"],
        vec!["global", "policy", "export", "add", "TO_SECONDARY"],
        vec!["neighbor", &s, "softresetout"],
    ] {
        gobgp.gobgp(&args);
    }
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
    gobgp.gobgp(&["global", "policy", "export", "del", "TO_SECONDARY"]);
    gobgp.gobgp(&["neighbor", &s, "softresetout"]);
    lab.wait_equal_paths(|| gobgp.log());

    // 4. Withdrawal, both families.
    gobgp.del(CUSTOMER_NET);
    lab.check_withdrawn(7002, || gobgp.log());
    gobgp.del(CUSTOMER_NET6);
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

    // 5. Six prefixes over a limit of five: Cease / max-prefix, which GoBGP
    // logs; back with five.
    for net in customer_nets(6) {
        gobgp.add(&net);
    }
    lab.wait_max_prefix_teardown(Duration::from_secs(20), || gobgp.log());
    wait_for("GoBGP got the Cease", Duration::from_secs(5), || {
        gobgp.log().contains(
            "notification-received code 6(cease) subcode 1(maximum number of prefixes reached)",
        )
    })
    .unwrap_or_else(|e| panic!("{}", ctx(&e)));
    let before = lab.established(SESSION_PRIMARY);
    gobgp.del(&customer_nets(6)[5]);
    lab.wait_established_after(SESSION_PRIMARY, before, Duration::from_secs(45), || {
        gobgp.log()
    });
    wait_for("GoBGP back to Established", Duration::from_secs(45), || {
        gobgp.established(topo.primary.msee) && gobgp.established(topo.secondary.msee)
    })
    .unwrap_or_else(|e| panic!("{}", ctx(&e)));
    lab.wait_five_installed(Duration::from_secs(15), || gobgp.log());
    assert_eq!(
        lab.send(7003, 50),
        50,
        "{}",
        ctx("traffic follows the re-learned route")
    );

    // 6. A wrong MD5 key on the secondary never establishes; the primary
    // keeps carrying traffic.
    let before = lab.established(SESSION_SECONDARY);
    let refused = lab.md5_failures();
    gobgp.reload(&gobgp_conf(topo, "wrong-key"));
    lab.wait_md5_refused(refused, true);
    assert_eq!(
        lab.established(SESSION_SECONDARY),
        before,
        "{}",
        ctx("no session with a wrong key")
    );
    assert!(
        !gobgp.established(topo.secondary.msee),
        "{}",
        ctx("GoBGP side")
    );
    lab.check_secondary_down(&gobgp.log());
    assert!(
        gobgp.established(topo.primary.msee),
        "{}",
        ctx("GoBGP side")
    );
    assert_eq!(
        lab.send(7004, 50),
        50,
        "{}",
        ctx("primary alone carries traffic")
    );
    // The right key again: back up.
    gobgp.reload(&gobgp_conf(topo, KEY));
    lab.wait_established_after(SESSION_SECONDARY, before, Duration::from_secs(45), || {
        gobgp.log()
    });
}

/// gobgpd and the four MSEE addresses it peers with.
struct GoBgpRouter {
    gobgp: GoBgp,
    peers: [IpAddr; 4],
}

impl RestartableRouter for GoBgpRouter {
    fn all_established(&self) -> bool {
        self.peers.iter().all(|a| self.gobgp.established(*a))
    }

    /// GoBGP's message statistics: no NOTIFICATION sent or received on
    /// any neighbour, and no session flop.
    fn no_notification(&self) -> Result<(), String> {
        for a in self.peers {
            let out = self.gobgp.gobgp(&["neighbor", &a.to_string()]);
            let line = out
                .lines()
                .find(|l| l.trim_start().starts_with("Notifications:"))
                .ok_or_else(|| format!("no Notifications statistics for {a}: {out}"))?;
            let counts: Vec<&str> = line.split_whitespace().skip(1).collect();
            if counts != ["0", "0"] || !out.contains("Flops = 0") {
                return Err(format!("GoBGP's neighbour {a}: {out}"));
            }
        }
        Ok(())
    }

    fn log(&self) -> String {
        self.gobgp.log()
    }
}

/// Issue 19: GoBGP and the MSEE both active (GoBGP connects out every 2 s,
/// the daemon too; GoBGP keeps one connection and silently drops any
/// other), both restarted twenty times: every IPv4 and IPv6 session comes
/// up once per start, and no NOTIFICATION crosses either way.
#[test]
fn gobgp_both_active_twenty_starts() {
    if !require_root("gobgp_both_active_twenty_starts") {
        return;
    }
    let mut lab = BgpLab::up("gobgp20");
    let t = lab.topo.clone();
    let peers = [
        t.primary.msee.into(),
        t.secondary.msee.into(),
        t.primary6.msee.into(),
        t.secondary6.msee.into(),
    ];
    let port = 40_000 + (std::process::id() % 20_000) as u16;
    let collisions = repeated_starts(&mut lab, 20, |lab| GoBgpRouter {
        gobgp: GoBgp::start(
            &lab.topo.ns_onprem(),
            &gobgp_conf(&lab.topo, KEY),
            &lab.dir,
            port,
        ),
        peers,
    });
    eprintln!("20 starts with GoBGP: {collisions} connection collisions resolved");
}
