//! What the BGP interop tests share: a lab with `msee-daemon` speaking BGP
//! for one circuit, the customer's network behind the onprem namespace, a
//! customer router process stopped by PID, and the checks every interop test
//! makes (sessions, installed routes, traffic, msee-cli).
use std::{
    net::{Ipv4Addr, Ipv6Addr},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use lab::{
    Lab, Topology,
    daemon::{Daemon, lab_args, workspace_bin},
    ip_ns,
    traffic::{Flow, send_and_count},
};

/// The peering's MD5 key (`sharedKey`).
pub const KEY: &str = "s3cret-md5";
/// The customer's ASN (`peerASN`).
pub const CUSTOMER_AS: u32 = 65010;
/// West Europe's region community in the catalog.
pub const WEST_EUROPE: &str = "12076:51002";
pub const SESSION_PRIMARY: &str = "er-lab/AzurePrivatePeering/primary";
pub const SESSION_SECONDARY: &str = "er-lab/AzurePrivatePeering/secondary";
/// The daemon's per-session route limit in these tests.
pub const MAX_PREFIXES: usize = 5;
/// The customer's first network, and the address in it that receives traffic.
pub const CUSTOMER_NET: &str = "172.16.0.0/16";
pub const CUSTOMER_HOST: Ipv4Addr = Ipv4Addr::new(172, 16, 0, 1);
/// The same over IPv6.
pub const CUSTOMER_NET6: &str = "fd00:c0::/48";
pub const CUSTOMER_HOST6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0xc0, 0, 0, 0, 0, 0, 1);
/// The VNet's IPv6 range (the lab's `vnet6`).
pub const VNET6: &str = "fd00:a10::/48";
pub const SESSION_PRIMARY6: &str = "er-lab/AzurePrivatePeering/primary/ipv6";
pub const SESSION_SECONDARY6: &str = "er-lab/AzurePrivatePeering/secondary/ipv6";

/// `n` customer /16s starting at 172.16.0.0/16.
pub fn customer_nets(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("172.{}.0.0/16", 16 + i)).collect()
}

pub fn circuit_toml() -> String {
    circuit_toml_with("")
}

/// The lab circuit with `peering_extra` added to its private peering
/// (e.g. `bfd = { intervalMs = 100 }`).
pub fn circuit_toml_with(peering_extra: &str) -> String {
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
peerASN = {CUSTOMER_AS}
primaryPeerAddressPrefix = "192.168.100.128/30"
secondaryPeerAddressPrefix = "192.168.100.132/30"
vlanId = 100
sharedKey = "{KEY}"
ipv6PeeringConfig = {{ primaryPeerAddressPrefix = "fd00:100::/126", secondaryPeerAddressPrefix = "fd00:100::4/126" }}
{peering_extra}

[[virtualNetworks]]
name = "vnet-lab"
location = "West Europe"
addressSpace = {{ addressPrefixes = ["10.1.0.0/16", "{VNET6}"] }}

[[connections]]
name = "lab"
virtualNetwork = "vnet-lab"
peer = "er-lab"
"#
    )
}

/// A lab with the daemon running the circuit above; the customer owns
/// 172.16.0.1 on the onprem namespace's loopback and Azure routes
/// 172.16.0.0/12 to the MSEE. Fields drop in order: daemon, then lab.
pub struct BgpLab {
    pub topo: Topology,
    pub dir: PathBuf,
    pub socket: PathBuf,
    pub daemon: Daemon,
    /// The daemon's arguments, for a restart.
    args: Vec<String>,
    _lab: Lab,
}

impl BgpLab {
    pub fn up(tag: &str) -> Self {
        Self::up_with(tag, &circuit_toml())
    }

    /// The lab with the daemon running the circuit described by `toml`.
    pub fn up_with(tag: &str, toml: &str) -> Self {
        Self::up_named(&crate::unique_prefix(tag), toml)
    }

    /// [`BgpLab::up_with`] with namespaces named after `prefix` exactly.
    pub fn up_named(prefix: &str, toml: &str) -> Self {
        Self::up_custom(prefix, toml, &[], |_| {})
    }

    /// The lab, `prepare` run on it (addresses, programs) before the daemon
    /// starts with `extra` arguments after the usual ones.
    pub fn up_custom(
        prefix: &str,
        toml: &str,
        extra: &[&str],
        prepare: impl FnOnce(&Topology),
    ) -> Self {
        Self::up_full(prefix, toml, extra, prepare, false)
    }

    /// [`BgpLab::up_custom`] with the daemon run as the product runs by
    /// default (`hitless`): its exit leaves forwarding running for the
    /// next daemon to adopt ([`Daemon::start_hitless`]).
    pub fn up_full(
        prefix: &str,
        toml: &str,
        extra: &[&str],
        prepare: impl FnOnce(&Topology),
        hitless: bool,
    ) -> Self {
        let topo = Topology::new(prefix).unwrap();
        let lab = Lab::up(topo.clone()).unwrap();
        prepare(&topo);
        let dir = std::env::temp_dir().join(format!("msee-{}", topo.prefix));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let config = dir.join("circuit.toml");
        std::fs::write(&config, toml).unwrap();

        ip_ns(
            &topo.ns_onprem(),
            &["addr", "add", &format!("{CUSTOMER_HOST}/32"), "dev", "lo"],
        )
        .unwrap();
        ip_ns(
            &topo.ns_onprem(),
            &["addr", "add", &format!("{CUSTOMER_HOST6}/128"), "dev", "lo"],
        )
        .unwrap();
        ip_ns(
            &topo.ns_azure(),
            &[
                "-6",
                "route",
                "add",
                "fd00:c0::/32",
                "via",
                &topo.azure_link_msee6.to_string(),
            ],
        )
        .unwrap();
        ip_ns(
            &topo.ns_azure(),
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
        args.extend(["--config".into(), config.display().to_string()]);
        if !extra.contains(&"--max-prefixes") {
            args.extend(["--max-prefixes".into(), MAX_PREFIXES.to_string()]);
        }
        args.extend(
            [
                "--connect-retry-secs",
                "2",
                "--idle-hold-secs",
                "1",
                "--log-level",
                "debug",
            ]
            .map(String::from),
        );
        args.extend(extra.iter().map(std::string::ToString::to_string));
        let daemon = if hitless {
            Daemon::start_hitless(&args, &dir).unwrap()
        } else {
            Daemon::start(&args, &dir).unwrap()
        };
        Self {
            topo,
            dir,
            socket,
            daemon,
            args,
            _lab: lab,
        }
    }

    /// The daemon's arguments (those of a second daemon on the same lab).
    pub fn daemon_args(&self) -> &[String] {
        &self.args
    }

    /// Stops the daemon (SIGTERM: Cease to its peers) and starts it again
    /// with the same arguments; its log starts afresh.
    pub fn restart_daemon(&mut self) {
        self.daemon.stop().unwrap();
        self.daemon = Daemon::start(&self.args, &self.dir).unwrap();
    }

    /// Since the daemon started, each of `sessions` came up exactly once and
    /// none went down; the API shows them Established with no last down
    /// reason. `Err` says what is wrong.
    pub fn clean_start(&self, sessions: &[&str]) -> Result<(), String> {
        let log = self.daemon.log();
        for s in sessions {
            let (up, down) = (
                count(&log, "session established", s),
                count(&log, "session down", s),
            );
            if (up, down) != (1, 0) {
                return Err(format!("{s}: established {up} times, down {down} times"));
            }
        }
        let api = self.cli(&["sessions"]);
        for s in api.as_array().unwrap() {
            if s["state"] != "Established" || !s["last_down"].is_null() {
                return Err(format!("API: {s}"));
            }
        }
        Ok(())
    }

    /// Connection collisions (RFC 4271 §6.8) the daemon's sessions resolved
    /// since it started.
    pub fn collisions(&self) -> usize {
        self.daemon
            .log()
            .lines()
            .filter(|l| l.contains("bgp connection collision"))
            .count()
    }

    /// A failure message with both sides' logs.
    pub fn ctx(&self, what: &str, peer_log: &str) -> String {
        format!(
            "{what}\n--- msee-daemon\n{}\n--- customer router\n{peer_log}",
            self.daemon.log()
        )
    }

    /// Times the daemon logged `needle` for `session`.
    pub fn count(&self, needle: &str, session: &str) -> usize {
        count(&self.daemon.log(), needle, session)
    }

    pub fn established(&self, session: &str) -> usize {
        self.count("session established", session)
    }

    /// UDP both ways between the VNet host and the customer's host: to the
    /// customer on `port`, from it on `port + 1`, the latter sent through
    /// `customer_dev` if given (a link of the customer's choosing).
    pub fn flows_both_ways(&self, port: u16, customer_dev: Option<&str>) -> [Flow; 2] {
        let topo = &self.topo;
        [
            Flow {
                src_ns: topo.ns_azure(),
                src_addr: topo.vnet_host.into(),
                src_dev: None,
                dst_ns: topo.ns_onprem(),
                dst_addr: CUSTOMER_HOST.into(),
                dst_port: port,
            },
            Flow {
                src_ns: topo.ns_onprem(),
                src_addr: CUSTOMER_HOST.into(),
                src_dev: customer_dev.map(str::to_owned),
                dst_ns: topo.ns_azure(),
                dst_addr: topo.vnet_host.into(),
                dst_port: port + 1,
            },
        ]
    }

    /// UDP from the VNet host to 172.16.0.1 on `port`: datagrams received.
    pub fn send(&self, port: u16, n: u64) -> u64 {
        let flow = Flow {
            src_ns: self.topo.ns_azure(),
            src_addr: self.topo.vnet_host.into(),
            src_dev: None,
            dst_ns: self.topo.ns_onprem(),
            dst_addr: CUSTOMER_HOST.into(),
            dst_port: port,
        };
        send_and_count(&flow, n).unwrap().received
    }

    /// UDP from the VNet host to the customer's IPv6 host on `port`:
    /// datagrams received.
    pub fn send6(&self, port: u16, n: u64) -> u64 {
        let flow = Flow {
            src_ns: self.topo.ns_azure(),
            src_addr: self.topo.vnet_host6.into(),
            src_dev: None,
            dst_ns: self.topo.ns_onprem(),
            dst_addr: CUSTOMER_HOST6.into(),
            dst_port: port,
        };
        send_and_count(&flow, n).unwrap().received
    }

    /// The customer's prefix of one family (CUSTOMER_NET or CUSTOMER_NET6)
    /// installed on both links, and 200 datagrams from Azure to the
    /// customer's host of that family all delivered.
    pub fn check_installed_and_forwarding(&self, ipv6: bool, peer_log: impl Fn() -> String) {
        let prefix = if ipv6 { CUSTOMER_NET6 } else { CUSTOMER_NET };
        wait_for(
            &format!("{prefix} on both links"),
            Duration::from_secs(15),
            || self.installed_on_both(prefix),
        )
        .unwrap_or_else(|e| panic!("{}", self.ctx(&e, &peer_log())));
        let delivered = if ipv6 {
            self.send6(7011, 200)
        } else {
            self.send(7001, 200)
        };
        assert_eq!(
            delivered,
            200,
            "{}",
            self.ctx(
                &format!("UDP azure -> the customer's host in {prefix}"),
                &peer_log()
            )
        );
    }

    /// Both IPv6 sessions established on the daemon's side.
    pub fn wait_ipv6_established(&self, peer_log: impl Fn() -> String) {
        for session in [SESSION_PRIMARY6, SESSION_SECONDARY6] {
            self.wait_established_after(session, 0, Duration::from_secs(30), &peer_log);
        }
    }

    /// `msee-cli --json` against the daemon's API socket.
    pub fn cli(&self, args: &[&str]) -> serde_json::Value {
        let out = Command::new(workspace_bin("msee-cli").unwrap())
            .arg("--socket")
            .arg(&self.socket)
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
    pub fn next_hops(&self, prefix: &str) -> Vec<(String, u64)> {
        self.cli(&["routes", "er-lab"])
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

    /// Whether the last install/remove line for `prefix` installed it on
    /// both links at equal preference.
    pub fn installed_on_both(&self, prefix: &str) -> bool {
        route_lines(&self.daemon.log(), prefix)
            .last()
            .is_some_and(|l| l.contains("link 0 pref 1, link 1 pref 1"))
    }

    pub fn removed(&self, prefix: &str) -> bool {
        route_lines(&self.daemon.log(), prefix)
            .last()
            .is_some_and(|l| l.contains("route removed"))
    }

    /// Both sessions Established on the daemon's side, within `timeout`.
    pub fn wait_both_established(&self, timeout: Duration, peer_log: impl Fn() -> String) {
        wait_for("both sessions Established", timeout, || {
            self.established(SESSION_PRIMARY) >= 1 && self.established(SESSION_SECONDARY) >= 1
        })
        .unwrap_or_else(|e| panic!("{}", self.ctx(&e, &peer_log())));
    }

    /// The daemon tore both sessions down for exceeding the route limit.
    pub fn wait_max_prefix_teardown(&self, timeout: Duration, peer_log: impl Fn() -> String) {
        wait_for("max-prefix teardown on both links", timeout, || {
            self.count("maximum prefixes exceeded", SESSION_PRIMARY) >= 1
                && self.count("maximum prefixes exceeded", SESSION_SECONDARY) >= 1
        })
        .unwrap_or_else(|e| panic!("{}", self.ctx(&e, &peer_log())));
    }

    /// The first MAX_PREFIXES customer nets installed on both links.
    pub fn wait_five_installed(&self, timeout: Duration, peer_log: impl Fn() -> String) {
        wait_for("five prefixes installed", timeout, || {
            customer_nets(MAX_PREFIXES)
                .iter()
                .all(|n| self.installed_on_both(n))
        })
        .unwrap_or_else(|e| panic!("{}", self.ctx(&e, &peer_log())));
    }

    /// CUSTOMER_NET back on both links at equal preference.
    pub fn wait_equal_paths(&self, peer_log: impl Fn() -> String) {
        wait_for("equal paths again", Duration::from_secs(15), || {
            self.next_hops(CUSTOMER_NET) == vec![("primary".into(), 1), ("secondary".into(), 1)]
        })
        .unwrap_or_else(|e| panic!("{}", self.ctx(&e, &peer_log())));
    }

    /// CUSTOMER_NET withdrawn: removed from the maps, and traffic to it
    /// (on `port`) no longer delivered.
    pub fn check_withdrawn(&self, port: u16, peer_log: impl Fn() -> String) {
        wait_for("172.16.0.0/16 removed", Duration::from_secs(15), || {
            self.removed(CUSTOMER_NET)
        })
        .unwrap_or_else(|e| panic!("{}", self.ctx(&e, &peer_log())));
        assert_eq!(
            self.send(port, 20),
            0,
            "{}",
            self.ctx("no route, no delivery", &peer_log())
        );
    }

    /// `session` established more than `before` times.
    pub fn wait_established_after(
        &self,
        session: &str,
        before: usize,
        timeout: Duration,
        peer_log: impl Fn() -> String,
    ) {
        wait_for(&format!("{session} established again"), timeout, || {
            self.established(session) > before
        })
        .unwrap_or_else(|e| panic!("{}", self.ctx(&e, &peer_log())));
    }

    /// The operator's view after the customer advertised CUSTOMER_NET on
    /// both links: two MD5 sessions with one prefix each, the route on both
    /// links, and at least `tx` datagrams out of the customer links.
    pub fn check_cli(&self, tx: u64) {
        let sessions = self.cli(&["sessions"]);
        let sessions = sessions.as_array().unwrap();
        assert_eq!(
            sessions.len(),
            4,
            "IPv4 and IPv6 on each link: {sessions:?}"
        );
        for s in sessions.iter().filter(|s| s["family"] == "Ipv4") {
            assert_eq!(s["state"], "Established", "{s}");
            assert_eq!(s["prefixes_received"], 1, "{s}");
            assert_eq!(s["max_prefixes"], MAX_PREFIXES as u64, "{s}");
            assert_eq!(s["md5"], true, "{s}");
        }
        assert_eq!(
            self.next_hops(CUSTOMER_NET),
            vec![("primary".into(), 1), ("secondary".into(), 1)]
        );
        let counters = self.cli(&["counters"]);
        let sent: u64 = counters
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["port"] == "primary" || p["port"] == "secondary")
            .map(|p| p["tx_packets"].as_u64().unwrap())
            .sum();
        assert!(
            sent >= tx,
            "the {tx} datagrams left on the customer links: {counters}"
        );
    }

    /// The operator's view of IPv6 after the customer advertised
    /// CUSTOMER_NET6 on both links: both IPv6 sessions Established and
    /// MD5-signed with one prefix each, and the route on both links at
    /// equal preference.
    pub fn check_cli6(&self) {
        let sessions = self.cli(&["sessions"]);
        let v6: Vec<_> = sessions
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["family"] == "Ipv6")
            .collect();
        assert_eq!(v6.len(), 2, "an IPv6 session on each link: {sessions}");
        for s in v6 {
            assert_eq!(s["state"], "Established", "{s}");
            assert_eq!(s["prefixes_received"], 1, "{s}");
            assert_eq!(s["md5"], true, "{s}");
        }
        assert_eq!(
            self.next_hops(CUSTOMER_NET6),
            vec![("primary".into(), 1), ("secondary".into(), 1)]
        );
    }

    /// MD5 signature failures counted so far in the MSEE's namespace and in
    /// the customer's: (MSEE, customer).
    pub fn md5_failures(&self) -> (u64, u64) {
        (
            md5_failures(&self.topo.ns_msee()),
            md5_failures(&self.topo.ns_onprem()),
        )
    }

    /// After a wrong MD5 key on one side: waits (at most 12 s, the fixed
    /// wait this replaces) until each end has had at least three more
    /// segments refused for their signature than `before`
    /// ([`BgpLab::md5_failures`]), i.e. both routers tried that session
    /// again and again and the kernels refused every attempt: what the
    /// fixed wait gave time for, seen to happen. A customer router that
    /// does not listen (`customer_listens` false) refuses the daemon's
    /// attempts without a signature check: only the MSEE's side counts.
    pub fn wait_md5_refused(&self, before: (u64, u64), customer_listens: bool) {
        let _ = wait_for(
            "connection attempts refused for their MD5 signature",
            Duration::from_secs(12),
            || {
                let (msee, customer) = self.md5_failures();
                msee >= before.0 + 3 && (!customer_listens || customer >= before.1 + 3)
            },
        );
    }

    /// The secondary session is down on the daemon's side with its stale
    /// routes withdrawn: CUSTOMER_NET only on the primary.
    pub fn check_secondary_down(&self, peer_log: &str) {
        assert_eq!(
            self.next_hops(CUSTOMER_NET),
            vec![("primary".into(), 1)],
            "{}",
            self.ctx("stale secondary routes withdrawn", peer_log)
        );
        let sessions = self.cli(&["sessions"]);
        let sec = sessions
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["link"] == "secondary" && s["family"] == "Ipv4")
            .unwrap()
            .clone();
        assert_eq!(sec["state"], "Down", "{sec}");
    }
}

impl Drop for BgpLab {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// A customer router process started in a namespace with `ip netns exec`
/// (which execs it, so the child's PID is the router's) and stopped by that
/// PID when dropped: SIGTERM, then SIGKILL after 5 s.
pub struct NsProcess {
    child: Option<Child>,
}

impl NsProcess {
    /// Run `program args` in `ns`, stdout/stderr to `<log>.stdout/.stderr` in `dir`.
    pub fn spawn(ns: &str, program: &str, args: &[String], dir: &Path, log: &str) -> Self {
        let child = Command::new("ip")
            .args(["netns", "exec", ns, program])
            .args(args)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(dir.join(format!("{log}.stdout"))).unwrap())
            .stderr(std::fs::File::create(dir.join(format!("{log}.stderr"))).unwrap())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {program}: {e}"));
        Self { child: Some(child) }
    }

    pub fn pid(&self) -> nix::unistd::Pid {
        nix::unistd::Pid::from_raw(self.child.as_ref().unwrap().id() as i32)
    }
}

impl Drop for NsProcess {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
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

/// TCP segments the kernel of namespace `ns` dropped for a wrong MD5
/// signature (`TcpExt: TCPMD5Failure` in its /proc/net/netstat).
pub fn md5_failures(ns: &str) -> u64 {
    let out = Command::new("ip")
        .args(["netns", "exec", ns, "cat", "/proc/net/netstat"])
        .output()
        .expect("reading /proc/net/netstat");
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines().filter(|l| l.starts_with("TcpExt:"));
    let (Some(names), Some(values)) = (lines.next(), lines.next()) else {
        return 0;
    };
    names
        .split_whitespace()
        .zip(values.split_whitespace())
        .find(|(n, _)| *n == "TCPMD5Failure")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0)
}

/// Concatenated contents of `files` in `dir` (missing ones are empty).
pub fn read_logs(dir: &Path, files: &[&str]) -> String {
    files
        .iter()
        .map(|f| std::fs::read_to_string(dir.join(f)).unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Poll `f` every 200 ms until it holds or `timeout` passes.
pub fn wait_for(what: &str, timeout: Duration, f: impl FnMut() -> bool) -> Result<(), String> {
    wait_for_every(what, timeout, Duration::from_millis(200), f)
}

/// Poll `f` every `interval` until it holds or `timeout` passes: for a
/// wait that a test repeats many times (a process's start, a session's),
/// where the time between the condition holding and the poll seeing it
/// adds up.
pub fn wait_for_every(
    what: &str,
    timeout: Duration,
    interval: Duration,
    mut f: impl FnMut() -> bool,
) -> Result<(), String> {
    let deadline = Instant::now() + timeout;
    loop {
        if f() {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!("timed out after {timeout:?} waiting for {what}"));
        }
        std::thread::sleep(interval);
    }
}

/// How often [`repeated_starts`] and the routers' starts poll.
pub const QUICK_POLL: Duration = Duration::from_millis(50);

/// Lines of `log` that contain `needle` and name exactly `session`
/// (`session=NAME`, not a longer name that starts with it).
pub fn count(log: &str, needle: &str, session: &str) -> usize {
    let field = format!("session={session}");
    log.lines()
        .filter(|l| {
            l.contains(needle)
                && l.match_indices(&field).any(|(i, _)| {
                    l[i + field.len()..]
                        .chars()
                        .next()
                        .is_none_or(|c| c == ' ' || c == ',')
                })
        })
        .count()
}

/// Lines of the daemon log about `prefix` being installed or removed.
pub fn route_lines(log: &str, prefix: &str) -> Vec<String> {
    log.lines()
        .filter(|l| {
            l.contains(&format!("prefix={prefix} ")) || l.ends_with(&format!("prefix={prefix}"))
        })
        .filter(|l| l.contains("route installed") || l.contains("route removed"))
        .map(str::to_owned)
        .collect()
}

/// Every session of the lab circuit: IPv4 and IPv6 on both links.
pub const ALL_SESSIONS: [&str; 4] = [
    SESSION_PRIMARY,
    SESSION_SECONDARY,
    SESSION_PRIMARY6,
    SESSION_SECONDARY6,
];

/// A customer router in a repeated-start test: started by `start`, and
/// asked whether all four of its sessions are Established and whether any
/// NOTIFICATION crossed them.
pub trait RestartableRouter {
    /// All four sessions Established on the router's side.
    fn all_established(&self) -> bool;
    /// `Err` names any NOTIFICATION the router sent or received since it
    /// started (its counters or its log).
    fn no_notification(&self) -> Result<(), String>;
    fn log(&self) -> String;
}

/// Issue 19: both ends active, `runs` times: the customer router and the
/// daemon are stopped and started again, in turns one first and then the
/// other with a start offset that moves by 150 ms a run (their connect
/// attempts meet at different moments of each other's start), and every
/// session must come up once, with no NOTIFICATION on either side. A
/// collision resolved by the daemon is not a failure (RFC 4271 §6.8 closes
/// the losing connection with Cease 6/7, which the router's counters may
/// show), but the session itself must never go down; `no_notification`
/// sees the router's side. Returns the collisions the daemon resolved.
pub fn repeated_starts<R: RestartableRouter>(
    lab: &mut BgpLab,
    runs: usize,
    mut start: impl FnMut(&BgpLab) -> R,
) -> usize {
    let mut router = Some(start(lab));
    let mut collisions = 0;
    for run in 0..runs {
        drop(router.take());
        let offset = Duration::from_millis(150 * (run as u64 % 8));
        if run % 2 == 0 {
            lab.restart_daemon();
            std::thread::sleep(offset);
            router = Some(start(lab));
        } else {
            lab.daemon.stop().unwrap();
            router = Some(start(lab));
            std::thread::sleep(offset);
            lab.daemon = Daemon::start(&lab.args, &lab.dir).unwrap();
        }
        let r = router.as_ref().unwrap();
        let started = Instant::now();
        wait_for_every(
            &format!("run {run}: every session Established on both sides"),
            Duration::from_secs(20),
            QUICK_POLL,
            || r.all_established() && lab.clean_start(&ALL_SESSIONS).is_ok(),
        )
        .unwrap_or_else(|e| {
            let why = lab.clean_start(&ALL_SESSIONS).err().unwrap_or_default();
            panic!("{}", lab.ctx(&format!("{e} ({why})"), &r.log()))
        });
        // Settled: nothing went down just after coming up.
        std::thread::sleep(Duration::from_millis(500));
        lab.clean_start(&ALL_SESSIONS)
            .and_then(|()| r.no_notification())
            .unwrap_or_else(|e| panic!("{}", lab.ctx(&format!("run {run}: {e}"), &r.log())));
        collisions += lab.collisions();
        eprintln!(
            "run {run}: up in {:?}, {} collisions",
            started.elapsed(),
            lab.collisions()
        );
        for l in lab.daemon.log().lines() {
            if l.contains("bgp connection collision")
                || l.contains("second connection")
                || l.contains("late connection")
            {
                eprintln!("  {l}");
            }
        }
    }
    collisions
}
