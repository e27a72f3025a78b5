//! Interop with FRR: `bgpd` in the on-premises namespace is the customer
//! router (AS 65010) with a session to each MSEE link, MD5-signed. Routes it
//! advertises reach the dataplane and traffic from Azure follows them; it
//! learns the VNet with its region community; withdrawal, the route limit
//! and a wrong MD5 key behave as on ExpressRoute.
use std::{
    net::Ipv4Addr,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use e2e_tests::{require_root, unique_prefix};
use lab::{
    Lab, Topology,
    daemon::{Daemon, lab_args, workspace_bin},
    ip_ns,
    traffic::{Flow, send_and_count},
};

const BGPD: &str = "/usr/lib/frr/bgpd";
const VTYSH: &str = "/usr/bin/vtysh";
const KEY: &str = "s3cret-md5";
/// West Europe's region community in the catalog.
const WEST_EUROPE: &str = "12076:51002";
const SESSION_PRIMARY: &str = "er-lab/AzurePrivatePeering/primary";
const SESSION_SECONDARY: &str = "er-lab/AzurePrivatePeering/secondary";

fn circuit_toml() -> String {
    format!(
        r#"
[[circuits]]
name = "er-lab"
serviceKey = "6f1c2c7e-0d55-4a3c-9b4e-1a2b3c4d5e01"
serviceProviderProvisioningState = "Provisioned"
serviceProviderProperties = {{ serviceProviderName = "Equinix", peeringLocation = "Amsterdam", bandwidthInMbps = 1000 }}
sku = {{ tier = "Standard", family = "MeteredData" }}

[[circuits.peerings]]
peeringType = "AzurePrivatePeering"
peerASN = 65010
primaryPeerAddressPrefix = "192.168.100.128/30"
secondaryPeerAddressPrefix = "192.168.100.132/30"
vlanId = 100
sharedKey = "{KEY}"

[[virtualNetworks]]
name = "vnet-lab"
location = "West Europe"
addressSpace = {{ addressPrefixes = ["10.1.0.0/16"] }}

[[connections]]
name = "lab"
virtualNetwork = "vnet-lab"
peer = "er-lab"
"#
    )
}

fn frr_conf(topo: &Topology, log: &Path) -> String {
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
 !
 address-family ipv4 unicast
  network 172.16.0.0/16
 exit-address-family
!
",
        log = log.display(),
        rid = topo.primary.customer,
        p = topo.primary.msee,
        s = topo.secondary.msee,
    )
}

/// `bgpd` without zebra, stopped by PID when dropped.
struct Frr {
    child: Option<Child>,
    dir: PathBuf,
}

impl Frr {
    fn start(ns: &str, conf: &str, dir: &Path) -> Self {
        let conf_path = dir.join("bgpd.conf");
        std::fs::write(&conf_path, conf).unwrap();
        let child = Command::new("ip")
            .args(["netns", "exec", ns, BGPD])
            .arg("-f")
            .arg(&conf_path)
            .arg("-i")
            .arg(dir.join("bgpd.pid"))
            .arg("--vty_socket")
            .arg(dir)
            .args(["-Z", "-S", "-n"])
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(dir.join("bgpd.stdout")).unwrap())
            .stderr(std::fs::File::create(dir.join("bgpd.stderr")).unwrap())
            .spawn()
            .expect("starting FRR bgpd");
        let frr = Self {
            child: Some(child),
            dir: dir.to_owned(),
        };
        let sock = dir.join("bgpd.vty");
        wait_for("bgpd's vty socket", Duration::from_secs(10), || {
            sock.exists()
        })
        .unwrap_or_else(|e| panic!("{e}\n{}", frr.log()));
        frr
    }

    fn vtysh(&self, cmds: &[&str]) -> String {
        let mut c = Command::new(VTYSH);
        c.arg("--vty_socket").arg(&self.dir).args(["-d", "bgpd"]);
        for cmd in cmds {
            c.args(["-c", cmd]);
        }
        let out = c.output().expect("running vtysh");
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
    }

    fn configure(&self, lines: &[&str]) {
        let mut cmds = vec!["configure terminal", "router bgp 65010"];
        cmds.extend_from_slice(lines);
        let out = self.vtysh(&cmds);
        assert!(
            !out.contains("Unknown command") && !out.contains("% "),
            "vtysh {lines:?}: {out}"
        );
    }

    fn neighbour_state(&self, addr: Ipv4Addr) -> String {
        let out = self.vtysh(&[&format!("show bgp neighbors {addr} json")]);
        serde_json::from_str::<serde_json::Value>(&out)
            .ok()
            .and_then(|v| v[addr.to_string()]["bgpState"].as_str().map(str::to_owned))
            .unwrap_or_else(|| format!("unknown ({out})"))
    }

    fn log(&self) -> String {
        ["bgpd.log", "bgpd.stderr"]
            .iter()
            .map(|f| std::fs::read_to_string(self.dir.join(f)).unwrap_or_default())
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl Drop for Frr {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // `ip netns exec` execs bgpd: this PID is bgpd's.
            let pid = nix::unistd::Pid::from_raw(child.id() as i32);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn wait_for(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) -> Result<(), String> {
    let deadline = Instant::now() + timeout;
    loop {
        if f() {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!("timed out after {timeout:?} waiting for {what}"));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn count(log: &str, needle: &str, session: &str) -> usize {
    log.lines()
        .filter(|l| l.contains(needle) && l.contains(session))
        .count()
}

/// `msee-cli --json` against the daemon's API socket.
fn cli(socket: &Path, args: &[&str]) -> serde_json::Value {
    let out = Command::new(workspace_bin("msee-cli").unwrap())
        .arg("--socket")
        .arg(socket)
        .arg("--json")
        .args(args)
        .output()
        .expect("running msee-cli");
    assert!(
        out.status.success(),
        "msee-cli {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("msee-cli --json prints JSON")
}

/// Next hops of `prefix` as msee-cli shows them: (link, AS-path length).
fn cli_next_hops(socket: &Path, prefix: &str) -> Vec<(String, u64)> {
    cli(socket, &["routes", "er-lab"])
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["prefix"] == prefix)
        .flat_map(|r| r["next_hops"].as_array().unwrap().clone())
        .map(|h| {
            (
                h["link"].as_str().unwrap().to_owned(),
                h["as_path_len"].as_u64().unwrap(),
            )
        })
        .collect()
}

/// Lines of the daemon log about `prefix` being installed or removed.
fn route_lines(log: &str, prefix: &str) -> Vec<String> {
    log.lines()
        .filter(|l| {
            l.contains(&format!("prefix={prefix} ")) || l.ends_with(&format!("prefix={prefix}"))
        })
        .filter(|l| l.contains("route installed") || l.contains("route removed"))
        .map(str::to_owned)
        .collect()
}

#[test]
fn frr_customer_router_over_both_links() {
    if !require_root("frr_customer_router_over_both_links") {
        return;
    }
    if !Path::new(BGPD).exists() {
        panic!("{BGPD} is missing: install FRR (cargo xtask setup does)");
    }
    let topo = Topology::new(&unique_prefix("frr")).unwrap();
    let _lab = Lab::up(topo.clone()).unwrap();
    let dir = std::env::temp_dir().join(format!("msee-{}", topo.prefix));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("circuit.toml");
    std::fs::write(&config, circuit_toml()).unwrap();

    let (onprem, azure) = (topo.ns_onprem(), topo.ns_azure());
    // The customer's network behind its router, and Azure's way to it.
    ip_ns(&onprem, &["addr", "add", "172.16.0.1/32", "dev", "lo"]).unwrap();
    ip_ns(
        &azure,
        &[
            "route",
            "add",
            "172.16.0.0/12",
            "via",
            &topo.azure_link_msee.to_string(),
        ],
    )
    .unwrap();

    let socket = dir.join("api.sock");
    let mut args = lab_args(&topo);
    args.extend(["--api-socket".into(), socket.display().to_string()]);
    args.extend(
        [
            "--config",
            config.to_str().unwrap(),
            "--max-prefixes",
            "5",
            "--connect-retry-secs",
            "2",
            "--idle-hold-secs",
            "1",
            "--log-level",
            "debug",
        ]
        .map(String::from),
    );
    let daemon = Daemon::start(&args, &dir).unwrap();
    let frr = Frr::start(&onprem, &frr_conf(&topo, &dir.join("bgpd.log")), &dir);
    let ctx = |what: &str| {
        format!(
            "{what}\n--- msee-daemon\n{}\n--- bgpd\n{}",
            daemon.log(),
            frr.log()
        )
    };

    // 1. Both sessions come up, MD5-signed.
    wait_for("both sessions Established", Duration::from_secs(30), || {
        let log = daemon.log();
        count(&log, "session established", SESSION_PRIMARY) >= 1
            && count(&log, "session established", SESSION_SECONDARY) >= 1
    })
    .unwrap_or_else(|e| panic!("{}", ctx(&e)));
    for a in [topo.primary.msee, topo.secondary.msee] {
        assert_eq!(frr.neighbour_state(a), "Established", "{}", ctx("FRR side"));
    }

    // 2. 172.16.0.0/16, learned on both links at equal AS-path length, is
    // one group with both links at equal preference.
    wait_for(
        "172.16.0.0/16 on both links",
        Duration::from_secs(15),
        || {
            route_lines(&daemon.log(), "172.16.0.0/16")
                .last()
                .is_some_and(|l| l.contains("link 0 pref 1, link 1 pref 1"))
        },
    )
    .unwrap_or_else(|e| panic!("{}", ctx(&e)));
    // And traffic from Azure follows it to the customer.
    let flow = Flow {
        src_ns: azure.clone(),
        src_addr: topo.vnet_host,
        src_dev: None,
        dst_ns: onprem.clone(),
        dst_addr: Ipv4Addr::new(172, 16, 0, 1),
        dst_port: 7001,
    };
    let r = send_and_count(&flow, 200).unwrap();
    assert_eq!(r.received, 200, "{}", ctx("UDP azure -> 172.16.0.1"));

    // 3. FRR learned the VNet from both MSEEs, with the region community
    // and the MSEE as next hop.
    wait_for("VNet route at FRR", Duration::from_secs(15), || {
        let out = frr.vtysh(&["show bgp ipv4 unicast 10.1.0.0/16 json"]);
        let Ok(v) = serde_json::from_str::<serde_json::Value>(&out) else {
            return false;
        };
        let paths = v["paths"].as_array().cloned().unwrap_or_default();
        paths.len() == 2
            && paths.iter().all(|p| {
                p["community"]["string"].as_str() == Some(WEST_EUROPE)
                    && p["aspath"]["string"].as_str() == Some("12076")
            })
    })
    .unwrap_or_else(|e| {
        panic!(
            "{}",
            ctx(&format!(
                "{e}: {}",
                frr.vtysh(&["show bgp ipv4 unicast 10.1.0.0/16 json"])
            ))
        )
    });

    // The operator's view: sessions, routes and counters through msee-cli.
    let sessions = cli(&socket, &["sessions"]);
    let sessions = sessions.as_array().unwrap();
    assert_eq!(sessions.len(), 2, "{sessions:?}");
    for s in sessions {
        assert_eq!(s["state"], "Established", "{s}");
        assert_eq!(s["prefixes_received"], 1, "{s}");
        assert_eq!(s["max_prefixes"], 5, "{s}");
        assert_eq!(s["md5"], true, "{s}");
    }
    assert_eq!(
        cli_next_hops(&socket, "172.16.0.0/16"),
        vec![("primary".into(), 1), ("secondary".into(), 1)]
    );
    let counters = cli(&socket, &["counters"]);
    let primary_tx: u64 = counters
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["port"] == "primary" || p["port"] == "secondary")
        .map(|p| p["tx_packets"].as_u64().unwrap())
        .sum();
    assert!(
        primary_tx >= 200,
        "the 200 datagrams left on the customer links: {counters}"
    );

    // AS-path prepending on the secondary makes it the backup: the group
    // keeps both links, the secondary at a worse preference.
    let s = topo.secondary.msee;
    let out = frr.vtysh(&[
        "configure terminal",
        "route-map PREPEND permit 10",
        "set as-path prepend 65010 65010",
        "exit",
        "router bgp 65010",
        "address-family ipv4 unicast",
        &format!("neighbor {s} route-map PREPEND out"),
        "end",
        &format!("clear bgp ipv4 unicast {s} soft out"),
    ]);
    assert!(!out.contains("% "), "prepend config: {out}");
    wait_for(
        "prepended path on the secondary",
        Duration::from_secs(15),
        || {
            cli_next_hops(&socket, "172.16.0.0/16")
                == vec![("primary".into(), 1), ("secondary".into(), 3)]
        },
    )
    .unwrap_or_else(|e| panic!("{}", ctx(&e)));
    let r = send_and_count(
        &Flow {
            dst_port: 7005,
            ..flow.clone()
        },
        50,
    )
    .unwrap();
    assert_eq!(r.received, 50, "{}", ctx("traffic over the preferred link"));
    let out = frr.vtysh(&[
        "configure terminal",
        "router bgp 65010",
        "address-family ipv4 unicast",
        &format!("no neighbor {s} route-map PREPEND out"),
        "end",
        &format!("clear bgp ipv4 unicast {s} soft out"),
    ]);
    assert!(!out.contains("% "), "prepend removal: {out}");
    wait_for("equal paths again", Duration::from_secs(15), || {
        cli_next_hops(&socket, "172.16.0.0/16")
            == vec![("primary".into(), 1), ("secondary".into(), 1)]
    })
    .unwrap_or_else(|e| panic!("{}", ctx(&e)));

    // 4. Withdrawal removes the route; traffic stops.
    frr.configure(&["address-family ipv4 unicast", "no network 172.16.0.0/16"]);
    wait_for("172.16.0.0/16 removed", Duration::from_secs(15), || {
        route_lines(&daemon.log(), "172.16.0.0/16")
            .last()
            .is_some_and(|l| l.contains("route removed"))
    })
    .unwrap_or_else(|e| panic!("{}", ctx(&e)));
    let r = send_and_count(
        &Flow {
            dst_port: 7002,
            ..flow.clone()
        },
        20,
    )
    .unwrap();
    assert_eq!(r.received, 0, "{}", ctx("no route, no delivery"));

    // 5. Six prefixes over a limit of five: Cease / max-prefix, and the
    // sessions come back once the customer is under the limit.
    let nets: Vec<String> = (0..6)
        .map(|i| format!("network 172.{}.0.0/16", 16 + i))
        .collect();
    let mut lines = vec!["address-family ipv4 unicast"];
    lines.extend(nets.iter().map(String::as_str));
    frr.configure(&lines);
    wait_for(
        "max-prefix teardown on both links",
        Duration::from_secs(20),
        || {
            let log = daemon.log();
            count(&log, "maximum prefixes exceeded", SESSION_PRIMARY) >= 1
                && count(&log, "maximum prefixes exceeded", SESSION_SECONDARY) >= 1
        },
    )
    .unwrap_or_else(|e| panic!("{}", ctx(&e)));
    let frr_said = frr.vtysh(&[&format!("show bgp neighbors {}", topo.primary.msee)]);
    assert!(
        frr_said.contains("Maximum Number of Prefixes Reached"),
        "FRR saw the Cease subcode: {frr_said}"
    );
    frr.configure(&["address-family ipv4 unicast", "no network 172.21.0.0/16"]);
    let established_before = count(&daemon.log(), "session established", SESSION_PRIMARY);
    wait_for(
        "sessions back under the limit",
        Duration::from_secs(30),
        || {
            frr.neighbour_state(topo.primary.msee) == "Established"
                && frr.neighbour_state(topo.secondary.msee) == "Established"
        },
    )
    .unwrap_or_else(|e| panic!("{}", ctx(&e)));
    assert!(count(&daemon.log(), "session established", SESSION_PRIMARY) >= established_before);
    wait_for("five prefixes installed", Duration::from_secs(15), || {
        let log = daemon.log();
        (16..21).all(|i| {
            route_lines(&log, &format!("172.{i}.0.0/16"))
                .last()
                .is_some_and(|l| l.contains("link 0 pref 1, link 1 pref 1"))
        })
    })
    .unwrap_or_else(|e| panic!("{}", ctx(&e)));
    let r = send_and_count(
        &Flow {
            dst_port: 7003,
            ..flow.clone()
        },
        50,
    )
    .unwrap();
    assert_eq!(
        r.received,
        50,
        "{}",
        ctx("traffic follows the re-learned route")
    );

    // 6. A wrong MD5 key on the secondary never establishes; the primary
    // keeps carrying traffic.
    let before = count(&daemon.log(), "session established", SESSION_SECONDARY);
    frr.configure(&[&format!(
        "neighbor {} password wrong-key",
        topo.secondary.msee
    )]);
    std::thread::sleep(Duration::from_secs(12));
    assert_eq!(
        count(&daemon.log(), "session established", SESSION_SECONDARY),
        before,
        "{}",
        ctx("no session with a wrong key")
    );
    assert_ne!(frr.neighbour_state(topo.secondary.msee), "Established");
    // The secondary's session went down: its link was flipped down and its
    // stale routes withdrawn afterwards, leaving the primary alone.
    assert_eq!(
        cli_next_hops(&socket, "172.16.0.0/16"),
        vec![("primary".into(), 1)],
        "{}",
        ctx("stale secondary routes withdrawn")
    );
    let sessions = cli(&socket, &["sessions"]);
    let sec = sessions
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["link"] == "secondary")
        .unwrap();
    assert_eq!(sec["state"], "Down", "{sec}");
    assert_eq!(frr.neighbour_state(topo.primary.msee), "Established");
    let r = send_and_count(
        &Flow {
            dst_port: 7004,
            ..flow.clone()
        },
        50,
    )
    .unwrap();
    assert_eq!(r.received, 50, "{}", ctx("primary alone carries traffic"));
    // The right key again: back up.
    frr.configure(&[&format!("neighbor {} password {KEY}", topo.secondary.msee)]);
    wait_for(
        "secondary back with the right key",
        Duration::from_secs(30),
        || count(&daemon.log(), "session established", SESSION_SECONDARY) > before,
    )
    .unwrap_or_else(|e| panic!("{}", ctx(&e)));

    drop(frr);
    drop(daemon);
    let _ = std::fs::remove_dir_all(&dir);
}
