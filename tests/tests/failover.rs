//! Failover with FRR as the customer router: BFD (FRR's bfdd) taking a
//! link and its BGP session down and bringing them back; the maintenance
//! drain; and the failover scenarios measured packet by packet (carrier
//! loss, a silent black hole only BFD sees, the customer tearing the BGP
//! session down, each followed by the primary's return without loss).
use std::{net::IpAddr, time::Duration};

use e2e_tests::{
    bfd_lab::Bfdd,
    bgp_lab::{BgpLab, CUSTOMER_NET, SESSION_PRIMARY, circuit_toml_with, wait_for},
    failover_lab::{FailoverLab, Outcome, Scenario},
    frr::{BGPD, Frr, customer_conf},
    require_root,
};
use lab::Topology;

/// Lab BFD timers: 100 ms x 3, so 300 ms detection.
const BFD_INTERVAL_MS: u64 = 100;
const BFD_MULTIPLIER: u64 = 3;

/// FRR's bfdd on the customer side with a single-hop peer per link in
/// `links` (customer address, MSEE address), at the lab's timers.
fn bfdd_conf(log: &std::path::Path, links: &[(IpAddr, IpAddr)]) -> String {
    let mut c = format!("log file {} debugging\nbfd\n", log.display());
    for (customer, msee) in links {
        c += &format!(
            " peer {msee} local-address {customer}\n  receive-interval {BFD_INTERVAL_MS}\n  transmit-interval {BFD_INTERVAL_MS}\n  detect-multiplier {BFD_MULTIPLIER}\n !\n"
        );
    }
    c
}

/// The lab, FRR's bgpd, and bfdd with a BFD peer on the primary only (the
/// secondary runs without BFD on the customer side: its MSEE session never
/// comes up and must not hold that link down).
struct BfdFailoverLab {
    bfdd: Bfdd,
    frr: Frr,
    lab: BgpLab,
}

impl BfdFailoverLab {
    fn up(tag: &str) -> Self {
        let lab = BgpLab::up_with(
            tag,
            &circuit_toml_with(&format!(
                "bfd = {{ intervalMs = {BFD_INTERVAL_MS}, multiplier = {BFD_MULTIPLIER} }}"
            )),
        );
        let topo: &Topology = &lab.topo;
        let frr = Frr::start(
            &topo.ns_onprem(),
            &customer_conf(topo, &lab.dir.join("bgpd.log")),
            &lab.dir,
        );
        // bfdd drops to user frr: its directory must be writable by it.
        let dir = lab.dir.join("bfdd");
        std::fs::create_dir_all(&dir).unwrap();
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        let bfdd = Bfdd::start(
            &topo.ns_onprem(),
            &dir,
            &bfdd_conf(
                &dir.join("bfdd.log"),
                &[(topo.primary.customer.into(), topo.primary.msee.into())],
            ),
        );
        Self { bfdd, frr, lab }
    }

    fn logs(&self) -> String {
        format!(
            "{}\n--- bfdd\n{}",
            self.frr.log(),
            self.bfdd
                .log()
                .lines()
                .rev()
                .take(60)
                .collect::<Vec<_>>()
                .join("\n")
        )
    }

    fn ctx(&self, what: &str) -> String {
        self.lab.ctx(what, &self.logs())
    }

    /// msee-cli's view of the BFD session on `link` ("primary"/"secondary").
    fn bfd(&self, link: &str) -> serde_json::Value {
        self.lab
            .cli(&["bfd"])
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"].as_str().unwrap().ends_with(link))
            .cloned()
            .unwrap_or_default()
    }

    fn link(&self, name: &str) -> serde_json::Value {
        self.lab
            .cli(&["links"])
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["name"] == name)
            .cloned()
            .unwrap()
    }

    fn session(&self, link: &str) -> serde_json::Value {
        self.lab
            .cli(&["sessions"])
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["link"] == link && s["family"] == "Ipv4")
            .cloned()
            .unwrap()
    }

    fn wait(&self, what: &str, timeout: Duration, f: impl FnMut() -> bool) {
        wait_for(what, timeout, f).unwrap_or_else(|e| panic!("{}", self.ctx(&e)));
    }

    /// Both sessions up, BFD up on the primary, the customer's prefix on both links.
    fn wait_ready(&self) {
        self.lab
            .wait_both_established(Duration::from_secs(30), || self.logs());
        self.wait("BFD up on the primary", Duration::from_secs(15), || {
            self.bfd("primary")["state"] == "Up"
        });
        self.wait(
            "172.16.0.0/16 on both links",
            Duration::from_secs(15),
            || self.lab.installed_on_both(CUSTOMER_NET),
        );
    }
}

#[test]
fn bfd_with_frr_takes_the_link_and_its_session_down_and_back() {
    if !require_root("bfd_with_frr_takes_the_link_and_its_session_down_and_back") {
        return;
    }
    assert!(
        std::path::Path::new(BGPD).exists(),
        "{BGPD} is missing: install FRR (cargo xtask setup does)"
    );
    let mut l = BfdFailoverLab::up("bfd");
    l.wait_ready();
    let pri = l.bfd("primary");
    assert_eq!(pri["detection_time_us"], 300_000, "100 ms x 3: {pri}");
    assert_eq!(pri["remote_state"], "Up", "{pri}");
    // The secondary's BFD never came up (no BFD on that customer link),
    // and does not hold its link down.
    assert_ne!(l.bfd("secondary")["state"], "Up");
    let sec = l.link("secondary");
    assert!(sec["carries"] == true && sec["bfd"].is_null(), "{sec}");
    assert_eq!(l.lab.send(7101, 200), 200, "{}", l.ctx("both links carry"));

    // 1. The customer turns BFD off on the primary (AdminDown): RFC 5882
    // says that is not a failure. Link and session stay.
    let primary = l.lab.topo.primary;
    let peer_line = format!("peer {} local-address {}", primary.msee, primary.customer);
    l.bfdd.configure_peer(&peer_line, &["shutdown"]);
    l.wait("the peer's AdminDown seen", Duration::from_secs(5), || {
        l.bfd("primary")["remote_state"] == "AdminDown"
    });
    let link = l.link("primary");
    assert!(link["carries"] == true && link["bfd"].is_null(), "{link}");
    assert_eq!(l.session("primary")["state"], "Established");
    l.bfdd.configure_peer(&peer_line, &["no shutdown"]);
    l.wait("BFD up again", Duration::from_secs(10), || {
        l.bfd("primary")["state"] == "Up"
    });

    // 2. bfdd dies without a word: the MSEE's BFD times out, flips the
    // primary down, and stops its BGP session (Cease / BFD Down) until BFD
    // returns. The secondary carries everything meanwhile.
    let established_before = l.lab.established(SESSION_PRIMARY);
    // CLOCK_MONOTONIC: the clock of the daemon's flip times.
    let killed_at = msee_sys::monotonic_ns();
    l.bfdd.kill();
    l.wait("primary flipped down", Duration::from_secs(5), || {
        l.link("primary")["carries"] == false
    });
    let link = l.link("primary");
    let flip = &link["history"][0];
    assert_eq!(flip["cause"], "BFD down", "{link}");
    let detect_ms = (flip["at_mono_ns"].as_u64().unwrap() - killed_at) as f64 / 1e6;
    println!("bfdd killed -> primary flipped down: {detect_ms:.1} ms (detection time 300 ms)");
    // The last packet came at most one interval before the kill; the
    // margin is for a busy machine's scheduling.
    assert!(
        detect_ms <= 300.0 + 200.0,
        "{}",
        l.ctx(&format!("detection took {detect_ms:.1} ms"))
    );
    l.wait("BGP stopped for BFD", Duration::from_secs(5), || {
        let s = l.session("primary");
        s["state"] == "Down" && s["held_by_bfd"] == true
    });
    assert_eq!(l.bfd("primary")["diag"], "ControlDetectionTimeExpired");
    assert_eq!(l.lab.send(7102, 200), 200, "{}", l.ctx("secondary alone"));
    // FRR keeps trying to reconnect; the held session does not come back.
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(
        l.lab.established(SESSION_PRIMARY),
        established_before,
        "{}",
        l.ctx("held down while BFD is down")
    );
    let said = l
        .frr
        .vtysh(&[&format!("show bgp neighbors {} json", primary.msee)]);
    assert!(
        said.contains("BFD Down") || said.contains("Cease"),
        "FRR saw the Cease: {said}"
    );

    // 3. bfdd is back: BFD up, the session restarts, the link carries again.
    l.bfdd.restart();
    l.lab.wait_established_after(
        SESSION_PRIMARY,
        established_before,
        Duration::from_secs(30),
        || l.logs(),
    );
    l.wait("primary carries again", Duration::from_secs(15), || {
        let link = l.link("primary");
        link["carries"] == true && link["bfd"] == true
    });
    l.wait(
        "172.16.0.0/16 on both links again",
        Duration::from_secs(15),
        || l.lab.installed_on_both(CUSTOMER_NET),
    );
    assert_eq!(l.lab.send(7103, 200), 200, "{}", l.ctx("both links again"));
}

/// UDP from the VNet host to 172.16.0.1 in `flows` parallel flows (one per
/// destination port from `port`), `per_flow` datagrams each at `pps` per
/// flow, in the background; join for (sent, received).
fn background_flows(
    lab: &BgpLab,
    port: u16,
    flows: u16,
    per_flow: u64,
    pps: u32,
) -> Vec<std::thread::JoinHandle<lab::traffic::FlowResult>> {
    (0..flows)
        .map(|i| {
            let flow = lab::traffic::Flow {
                src_ns: lab.topo.ns_azure(),
                src_addr: lab.topo.vnet_host.into(),
                src_dev: None,
                dst_ns: lab.topo.ns_onprem(),
                dst_addr: e2e_tests::bgp_lab::CUSTOMER_HOST.into(),
                dst_port: port + i,
            };
            std::thread::spawn(move || {
                lab::traffic::send_and_count_at(&flow, per_flow, Some(pps)).unwrap()
            })
        })
        .collect()
}

/// Datagrams the MSEE sent out of `port` ("primary"/"secondary") so far.
fn tx_packets(lab: &BgpLab, port: &str) -> u64 {
    lab.cli(&["counters"])
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["port"] == port)
        .unwrap()["tx_packets"]
        .as_u64()
        .unwrap()
}

#[test]
fn drain_moves_traffic_to_the_other_link_and_loses_nothing() {
    if !require_root("drain_moves_traffic_to_the_other_link_and_loses_nothing") {
        return;
    }
    let lab = BgpLab::up("drn");
    let topo = &lab.topo;
    let frr = Frr::start(
        &topo.ns_onprem(),
        &customer_conf(topo, &lab.dir.join("bgpd.log")),
        &lab.dir,
    );
    let ctx = |what: &str| lab.ctx(what, &frr.log());
    lab.wait_both_established(Duration::from_secs(30), || frr.log());
    wait_for("equal paths", Duration::from_secs(15), || {
        lab.installed_on_both(CUSTOMER_NET)
    })
    .unwrap_or_else(|e| panic!("{}", ctx(&e)));
    // FRR learned the VNet on both links, one AS (12076) each.
    let vnet_paths = || -> Vec<(String, String, bool)> {
        let out = frr.vtysh(&["show bgp ipv4 unicast 10.1.0.0/16 json"]);
        let v: serde_json::Value = serde_json::from_str(&out).unwrap_or_default();
        v["paths"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .map(|p| {
                (
                    p["peer"]["peerId"].as_str().unwrap_or("").to_owned(),
                    p["aspath"]["string"].as_str().unwrap_or("").to_owned(),
                    p["bestpath"]["overall"] == true,
                )
            })
            .collect()
    };
    wait_for("VNet on both links at FRR", Duration::from_secs(15), || {
        vnet_paths().len() == 2
    })
    .unwrap_or_else(|e| panic!("{}", ctx(&e)));

    // Sixteen flows toward the customer for two seconds; the drain and the
    // undrain happen while they run.
    let t0 = std::time::Instant::now();
    let pri_before = tx_packets(&lab, "primary");
    let flows = background_flows(&lab, 7200, 16, 4000, 2000);
    std::thread::sleep(Duration::from_millis(300));
    let drained = lab.cli(&["drain", "er-lab", "primary"]);
    assert_eq!(drained["drained"], true, "{drained}");
    // The customer's IPv4 and IPv6 prefixes; both sessions of the primary.
    assert_eq!(drained["routes_repointed"], 2, "{drained}");
    assert_eq!(drained["sessions_readvertised"], 2, "{drained}");
    // The MSEE's own choice: the primary is now the backup of the route.
    assert_eq!(
        lab.next_hops(CUSTOMER_NET),
        vec![
            ("primary".to_owned(), 1 + 65536),
            ("secondary".to_owned(), 1)
        ]
    );
    let pri_at_drain = tx_packets(&lab, "primary");
    assert!(
        pri_at_drain > pri_before,
        "some flows were on the primary before the drain"
    );
    // The customer's choice: the primary's path now carries AS 12076 four
    // times, so FRR prefers the secondary.
    let p = topo.primary.msee.to_string();
    wait_for("FRR prefers the secondary", Duration::from_secs(10), || {
        let paths = vnet_paths();
        paths.len() == 2
            && paths
                .iter()
                .any(|(peer, path, best)| *peer == p && path == "12076 12076 12076 12076" && !best)
            && paths
                .iter()
                .any(|(peer, path, best)| *peer != p && path == "12076" && *best)
    })
    .unwrap_or_else(|e| panic!("{}", ctx(&format!("{e}: {:?}", vnet_paths()))));
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        tx_packets(&lab, "primary"),
        pri_at_drain,
        "{}",
        ctx("nothing left on the drained primary")
    );
    let sessions = lab.cli(&["sessions"]);
    assert!(
        sessions
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["link"] == "primary" && s["drained"] == true),
        "{sessions}"
    );

    let undrained = lab.cli(&["undrain", "er-lab", "primary"]);
    assert!(
        flows.iter().all(|f| !f.is_finished()),
        "the stream outlasts the drain ({:?})",
        t0.elapsed()
    );
    assert_eq!(undrained["drained"], false, "{undrained}");
    let (mut sent, mut received) = (0, 0);
    for f in flows {
        let r = f.join().unwrap();
        sent += r.sent;
        received += r.received;
    }
    assert_eq!(sent, 16 * 4000);
    assert_eq!(
        received,
        sent,
        "{}",
        ctx("nothing lost while draining and undraining")
    );
    lab.wait_equal_paths(|| frr.log());
    wait_for(
        "FRR sees one AS on both again",
        Duration::from_secs(10),
        || {
            let paths = vnet_paths();
            paths.len() == 2 && paths.iter().all(|(_, path, _)| path == "12076")
        },
    )
    .unwrap_or_else(|e| panic!("{}", ctx(&e)));
    // Both links carry again.
    let before = (tx_packets(&lab, "primary"), tx_packets(&lab, "secondary"));
    let flows = background_flows(&lab, 7300, 16, 100, 2000);
    let got: u64 = flows.into_iter().map(|f| f.join().unwrap().received).sum();
    assert_eq!(got, 1600, "{}", ctx("after the undrain"));
    assert!(tx_packets(&lab, "primary") > before.0 && tx_packets(&lab, "secondary") > before.1);
    // Bad input gets a clear answer.
    let out = std::process::Command::new(lab::daemon::workspace_bin("msee-cli").unwrap())
        .arg("--socket")
        .arg(&lab.socket)
        .args(["drain", "nope", "primary"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("unknown circuit \"nope\""), "{err}");
}

// ---- The four failover scenarios, measured by the packet engine: a
// stream from the VNet host to the customer over both links, FRR (zebra,
// bfdd, bgpd with BGP tied to BFD) as the customer router. Each of the
// three failures is followed by the fourth scenario, the primary's return,
// which must lose nothing.

/// 32 flows at 20,000 packets/s in all: one packet per flow every 1.6 ms.
const STREAM_PPS: f64 = 20_000.0;
const STREAM_FLOWS: u16 = 32;

/// Rehearsals tried before a scenario is declared failed: the machine is a
/// shared 2-core VM, and a kernel worker or the lab's own veth rings can
/// wait for a CPU (see `Outcome::disturbed`). The first attempt that meets
/// every requirement passes; all attempts are printed.
const ATTEMPTS: usize = 3;

fn rehearse(tag: &str, scenario: Scenario) {
    rehearse_with(tag, scenario, BFD_INTERVAL_MS as u32, BFD_MULTIPLIER as u8);
}

fn rehearse_with(tag: &str, scenario: Scenario, bfd_interval_ms: u32, bfd_multiplier: u8) {
    if !require_root(tag) {
        return;
    }
    let l = FailoverLab::up(tag, bfd_interval_ms, bfd_multiplier);
    let bound = scenario.outage_bound_ms(bfd_interval_ms, bfd_multiplier);
    let mut failures = Vec::new();
    for attempt in 1..=ATTEMPTS {
        let (o, report) = l
            .rehearse(scenario, STREAM_PPS, STREAM_FLOWS)
            .unwrap_or_else(|e| panic!("{e}"));
        println!("attempt {attempt}: {}", o.summary());
        match check(&o, bound) {
            Ok(()) => return,
            Err(why) => failures.push(format!(
                "attempt {attempt}: {why}\n{}\n{}",
                o.summary(),
                report.summary()
            )),
        }
    }
    panic!(
        "{}",
        l.ctx(&format!(
            "{} failed in all {ATTEMPTS} attempts:\n{}",
            scenario.name(),
            failures.join("\n")
        ))
    );
}

/// What a rehearsal must show.
fn check(o: &Outcome, bound: f64) -> Result<(), String> {
    if let Some(d) = &o.disturbed {
        return Err(format!("the lab dropped packets outside the MSEE ({d})"));
    }
    // The MSEE spread the flows over both links before the failure.
    if o.failed_streams == 0 || o.surviving_streams == 0 {
        return Err("flows were not on both links before the failure".into());
    }
    if o.failed_streams + o.surviving_streams != usize::from(STREAM_FLOWS) {
        return Err("not every flow was on a link".into());
    }
    // No packet of a flow on the surviving link was lost.
    if o.surviving_lost != 0 {
        return Err(format!("the secondary's flows lost {}", o.surviving_lost));
    }
    // The failed link's flows were out for no longer than the bound.
    if o.outage_ms > bound {
        return Err(format!(
            "outage {:.1} ms over the bound of {bound} ms",
            o.outage_ms
        ));
    }
    // The primary came back and carries its flows again, and nothing was
    // lost from then on (make before break).
    if o.returned_streams != o.failed_streams {
        return Err(format!(
            "{} of the primary's {} flows are back on it",
            o.returned_streams, o.failed_streams
        ));
    }
    if o.lost_after_return != 0 {
        return Err(format!("the return lost {}", o.lost_after_return));
    }
    Ok(())
}

#[test]
fn failover_carrier_loss_on_the_primary_and_its_return() {
    rehearse("fcar", Scenario::CarrierLoss);
}

/// At ExpressRoute's BFD timers (300 ms x 3) a carrier blip of about half a
/// second ends before BFD would see it, and while TCP still believes in the
/// old connections: the MSEE resets the link's sessions when carrier goes
/// (as the customer's router does), and the flows come back over a new
/// session once it returns.
#[test]
fn failover_carrier_blip_shorter_than_bfd_detection_and_its_return() {
    rehearse_with("fblip", Scenario::CarrierLoss, 300, 3);
}

#[test]
fn failover_silent_black_hole_seen_by_bfd_and_its_return() {
    rehearse("fbh", Scenario::SilentBlackhole);
}

#[test]
fn failover_customer_tears_down_the_primary_session_and_its_return() {
    rehearse("fbgp", Scenario::BgpTeardown);
}
