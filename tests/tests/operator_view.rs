//! The operator's view of a circuit against traffic the test sent and what
//! FRR announced, in one estate lab (one circuit, FRR as the customer):
//! `get-stats` bytes per link to the frame; a real Prometheus server
//! scraping the daemon and its rate matching a paced stream within 5 %, and
//! `promtool check metrics` on the endpoint; the route tables against
//! FRR's announcement and what FRR learned; the ARP table against the
//! lab's MACs.
use std::{net::IpAddr, time::Duration};

use e2e_tests::{estate::EstateLabUp, prometheus::Prometheus, require_root, unique_prefix};
use lab::{
    estate::CustomerRouter,
    traffic::{Flow, send_and_count_at},
};
use serde_json::Value;

const MODEL: &str = r#"
[[circuits]]
name = "er-ops"
serviceKey = "00000000-0000-0000-0000-0000000000e1"
serviceProviderProvisioningState = "Provisioned"
serviceProviderProperties = { serviceProviderName = "Equinix", peeringLocation = "Amsterdam", bandwidthInMbps = 1000 }
sku = { tier = "Standard", family = "MeteredData" }

[[circuits.peerings]]
peeringType = "AzurePrivatePeering"
peerASN = 65040
peerAddressPrefix = "192.168.40.0/29"
vlanId = 400

[[virtualNetworks]]
name = "vnet-ops"
location = "West Europe"
addressSpace = { addressPrefixes = ["10.40.0.0/16"] }

[[connections]]
name = "ops-vnet"
virtualNetwork = "vnet-ops"
peer = "er-ops"
"#;

const CIRCUIT: &str = "er-ops";
const PEERING: &str = "AzurePrivatePeering";
const VNET_HOST: &str = "10.40.0.4";
/// A test datagram (64 bytes of payload) on a customer link: Ethernet,
/// the peering's 802.1Q tag, IPv4, UDP, payload.
const FRAME: u64 = 14 + 4 + 20 + 8 + 64;
/// The largest frame the kernel's own traffic (ARP, BGP, BFD) may add.
const MAX_FRAME: u64 = 1522;

fn u(v: &Value, k: &str) -> u64 {
    v[k].as_u64().unwrap_or_else(|| panic!("no {k} in {v}"))
}

fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// The `counters` row of `circuit`'s link `role`.
fn counters(lab: &EstateLabUp, role: &str) -> Value {
    lab.cli(&["counters"])
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["circuit"] == CIRCUIT && p["role"] == role)
        .cloned()
        .unwrap_or_else(|| panic!("no {role} link of {CIRCUIT}"))
}

fn mac_of(ns: &str, ifname: &str) -> String {
    let out = std::process::Command::new("ip")
        .args(["-n", ns, "-j", "link", "show", "dev", ifname])
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    v[0]["address"].as_str().unwrap().to_owned()
}

/// The interface of `ns` that holds `addr`, and its MAC.
fn mac_with_addr(ns: &str, addr: &str) -> String {
    let out = std::process::Command::new("ip")
        .args(["-n", ns, "-j", "addr", "show"])
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    v.as_array()
        .unwrap()
        .iter()
        .find(|i| {
            i["addr_info"]
                .as_array()
                .is_some_and(|a| a.iter().any(|x| x["local"] == addr))
        })
        .map(|i| i["address"].as_str().unwrap().to_owned())
        .unwrap_or_else(|| panic!("no interface with {addr} in {ns}"))
}

#[test]
fn the_operator_sees_what_the_circuit_carried() {
    if !require_root("the_operator_sees_what_the_circuit_carried") {
        return;
    }
    let prefix = unique_prefix("ops");
    let dir = std::env::temp_dir().join(format!("msee-{prefix}"));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("ops.toml");
    std::fs::write(&file, MODEL).unwrap();
    let lab = EstateLabUp::up(&file, &prefix, CustomerRouter::Frr).unwrap();
    lab.wait_established(Duration::from_secs(60)).unwrap();
    let learned = lab.wait_learned(CIRCUIT, &["10.40.0.0/16"], Duration::from_secs(30));
    assert_eq!(learned.len(), 1, "FRR learned the VNet: {learned:?}");
    let c = lab.customer(CIRCUIT).clone();
    // The MSEE learned the customer's prefix on both links (its own
    // list-route-tables says so).
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    for role in ["primary", "secondary"] {
        while lab.cli(&[
            "list-route-tables",
            CIRCUIT,
            "--peering",
            PEERING,
            "--path",
            role,
        ])["value"]
            .as_array()
            .is_none_or(Vec::is_empty)
        {
            assert!(
                std::time::Instant::now() < deadline,
                "no route learned on the {role}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    let p = c.peerings[0].clone();
    let vnet_host: IpAddr = VNET_HOST.parse().unwrap();
    let vnet_ns = lab.azure_ns_of(vnet_host);
    let to_customer = |port| Flow {
        src_ns: vnet_ns.clone(),
        src_addr: vnet_host,
        src_dev: None,
        dst_ns: c.ns.clone(),
        dst_addr: IpAddr::V4(c.host),
        dst_port: port,
    };
    let msee_ns = lab.lab().msee_ns.clone();

    // --- get-stats: bytes per link to the frame.
    let before = lab.cli(&["get-stats", CIRCUIT, "--peering", PEERING]);
    let (pri0, sec0) = (counters(&lab, "primary"), counters(&lab, "secondary"));
    let n = 1000;
    // Paced, so that no frame meets the policer.
    let r = send_and_count_at(
        &Flow {
            src_ns: c.ns.clone(),
            src_addr: IpAddr::V4(c.host),
            src_dev: Some(p.ifnames[0].clone()),
            dst_ns: vnet_ns.clone(),
            dst_addr: vnet_host,
            dst_port: 7400,
        },
        n,
        Some(5000),
    )
    .unwrap();
    assert_eq!(
        r.received,
        n,
        "customer -> VNet over the primary\n{}",
        lab.daemon_log()
    );
    let r = send_and_count_at(&to_customer(7401), n, Some(5000)).unwrap();
    assert_eq!(r.received, n, "VNet -> customer");
    let after = lab.cli(&["get-stats", CIRCUIT, "--peering", PEERING]);
    let (pri1, sec1) = (counters(&lab, "primary"), counters(&lab, "secondary"));
    let kernel = |a: &Value, b: &Value| u(b, "pass_packets") - u(a, "pass_packets");
    let d = |k: &str| u(&after, k) - u(&before, k);
    // In on the primary: the test's frames, plus only what went to the
    // MSEE's kernel (BGP, BFD, ARP), each at most a full frame.
    let extra = d("primarybytesIn") - n * FRAME;
    assert!(
        d("primarybytesIn") >= n * FRAME && extra <= kernel(&pri0, &pri1) * MAX_FRAME,
        "primarybytesIn grew by {} for {n} frames of {FRAME} bytes and {} to the kernel",
        d("primarybytesIn"),
        kernel(&pri0, &pri1)
    );
    assert!(d("secondarybytesIn") <= kernel(&sec0, &sec1) * MAX_FRAME);
    // Out: exactly the test's frames, whichever link each flow took.
    assert_eq!(d("primarybytesOut") + d("secondarybytesOut"), n * FRAME);
    // The circuit's figure is its one peering's; a table without --json.
    assert_eq!(
        lab.cli(&["get-stats", CIRCUIT])["primarybytesOut"],
        lab.cli(&["get-stats", CIRCUIT, "--peering", PEERING])["primarybytesOut"]
    );
    // Unknown names: one line listing the valid ones.
    let bin = lab::daemon::workspace_bin("msee-cli").unwrap();
    let err = |args: &[&str]| {
        let o = std::process::Command::new(&bin)
            .arg("--socket")
            .arg(&lab.state.api_socket)
            .args(args)
            .output()
            .unwrap();
        assert!(!o.status.success());
        String::from_utf8_lossy(&o.stderr).trim().to_owned()
    };
    let e = err(&["get-stats", "er-nope"]);
    assert_eq!(
        e,
        "msee-cli: error: msee-daemon: unknown circuit \"er-nope\" (valid: er-ops)"
    );
    let e = err(&[
        "list-arp-tables",
        CIRCUIT,
        "--peering",
        "MicrosoftPeering",
        "--path",
        "primary",
    ]);
    assert!(
        e.ends_with("unknown peering of er-ops \"MicrosoftPeering\" (valid: AzurePrivatePeering)"),
        "{e}"
    );
    let e = err(&[
        "list-arp-tables",
        CIRCUIT,
        "--peering",
        PEERING,
        "--path",
        "tertiary",
    ]);
    assert!(
        e.ends_with("unknown path \"tertiary\" (valid: primary, secondary)"),
        "{e}"
    );
    assert_eq!(e.lines().count(), 1);

    // --- Prometheus scrapes the daemon; its rate matches a paced stream.
    let prom = Prometheus::start(
        &msee_ns,
        lab::estate::METRICS_ADDR,
        Duration::from_secs(1),
        &prefix,
    )
    .unwrap();
    let exposition =
        e2e_tests::prometheus::http_get(&msee_ns, lab::estate::METRICS_ADDR, "/metrics").unwrap();
    let mut promtool = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut promtool.stdin.take().unwrap(), exposition.as_bytes()).unwrap();
    let checked = promtool.wait_with_output().unwrap();
    assert!(
        checked.status.success() && checked.stdout.is_empty() && checked.stderr.is_empty(),
        "promtool check metrics: {checked:?}"
    );
    assert!(
        exposition.contains("msee_bgp_session_up{session=\"er-ops/AzurePrivatePeering/primary\"")
    );
    // The forwarding table holds the circuit's domains: no lookup falls
    // back to the LPM trie.
    let value = |line: &str| {
        exposition
            .lines()
            .find_map(|l| l.strip_prefix(line)?.trim().parse::<u64>().ok())
            .unwrap_or_else(|| panic!("no {line} in\n{exposition}"))
    };
    assert_eq!(value("msee_fib_fallback_lookups_total{family=\"ipv4\"}"), 0);
    assert!(value("msee_fib_table_domains") >= 1);
    assert!(value("msee_fib_table_nodes{family=\"ipv4\"}") > 0);
    let pps = 2000;
    let count = 16_000; // 8 s
    let stream = {
        let f = to_customer(7402);
        std::thread::spawn(move || {
            let t0 = unix_now();
            let r = send_and_count_at(&f, count, Some(pps)).unwrap();
            (r, t0, unix_now())
        })
    };
    // Bytes out toward the customer, as the daemon counts them.
    let out_bytes = || {
        let s = lab.cli(&["get-stats", CIRCUIT]);
        u(&s, "primarybytesOut") + u(&s, "secondarybytesOut")
    };
    std::thread::sleep(Duration::from_secs(2));
    let (t1, b1) = (unix_now(), out_bytes());
    std::thread::sleep(Duration::from_secs(5));
    let (t2, b2) = (unix_now(), out_bytes());
    let (r, s0, s1) = stream.join().unwrap();
    assert_eq!(r.received, count, "the paced stream");
    // What the stream sent on average, and what the daemon forwarded in
    // the window [t1, t2] inside it.
    let sent_rate = (count * FRAME) as f64 / (s1 - s0);
    let window_rate = (b2 - b1) as f64 / (t2 - t1);
    assert!(s0 < t1 - 1.0 && t2 < s1, "the window is inside the stream");
    // Until the scrape after `t2` is in.
    std::thread::sleep(Duration::from_millis(1500));
    // The slope of what Prometheus scraped inside the window: its own
    // timestamps, no extrapolation (a `rate()` over a few scrapes swings
    // with where the window's edges fall between them).
    let selector = format!("msee_link_bytes_total{{circuit=\"{CIRCUIT}\",direction=\"out\"}}");
    let samples = prom.samples(&selector, t1, t2).unwrap_or_else(|e| {
        panic!(
            "{e:#}\ntargets: {}\n{}",
            e2e_tests::prometheus::http_get(
                &msee_ns,
                e2e_tests::prometheus::LISTEN,
                "/api/v1/targets"
            )
            .unwrap_or_default(),
            prom.log()
        )
    });
    assert!(
        samples.len() >= 3,
        "a 1 s scrape interval gives at least 3 samples in 5 s: {samples:?}\nup: {:?}\nscrape durations: {:?}\n{}",
        prom.samples("up", t1 - 3.0, t2 + 1.0),
        prom.samples("scrape_duration_seconds", t1 - 3.0, t2 + 1.0),
        prom.log()
    );
    let ((ta, va), (tb, vb)) = (samples[0], samples[samples.len() - 1]);
    let rate = (vb - va) / (tb - ta);
    let figures = format!(
        "Prometheus {rate:.0} B/s over {} scrapes; get-stats over the window {window_rate:.0} B/s; \
         the stream sent {sent_rate:.0} B/s on average ({pps} pps of {FRAME} B asked: {} B/s)",
        samples.len(),
        u64::from(pps) * FRAME
    );
    eprintln!("{figures}");
    assert!((rate - sent_rate).abs() <= 0.05 * sent_rate, "{figures}");
    // The window's edges are two msee-cli runs (some ms each): looser.
    assert!(
        (rate - window_rate).abs() <= 0.10 * window_rate,
        "{figures}"
    );
    let up = prom
        .value("sum(msee_bgp_session_up{circuit=\"er-ops\"})", unix_now())
        .unwrap();
    assert_eq!(up, 2.0, "both sessions up, as Prometheus saw them");
    drop(prom);

    // --- Route tables against FRR.
    let onprem = c.onprem.to_string();
    for (k, role) in ["primary", "secondary"].iter().enumerate() {
        let rt = lab.cli(&[
            "list-route-tables",
            CIRCUIT,
            "--peering",
            PEERING,
            "--path",
            role,
        ]);
        let v = rt["value"].as_array().unwrap();
        assert_eq!(v.len(), 1, "{rt}");
        assert_eq!(v[0]["network"], onprem.as_str());
        assert_eq!(v[0]["nextHop"], p.customer[k].0.to_string().as_str());
        assert_eq!(v[0]["path"], c.asn.to_string().as_str());
        assert_eq!(v[0]["weight"], 0);
        assert_eq!(v[0]["locPrf"], "");
        let sum = lab.cli(&[
            "list-route-tables-summary",
            CIRCUIT,
            "--peering",
            PEERING,
            "--path",
            role,
        ]);
        let s = &sum["value"][0];
        assert_eq!(s["neighbor"], p.customer[k].0.to_string().as_str());
        assert_eq!(s["as"], c.asn);
        assert_eq!(s["v"], 4);
        assert_eq!(s["statePfxRcd"], "1");
        assert!(s["upDown"].as_str().unwrap().len() == 8, "{s}");
    }
    let adv = lab.cli(&[
        "list-route-tables",
        CIRCUIT,
        "--peering",
        PEERING,
        "--path",
        "primary",
        "--advertised",
    ]);
    let advertised: Vec<(String, String)> = adv["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["network"].as_str().unwrap().to_owned(),
                r["path"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        advertised,
        lab.learned(CIRCUIT),
        "what FRR learned from AS 12076"
    );
    assert_eq!(adv["value"][0]["nextHop"], p.msee[0].to_string().as_str());

    // --- ARP table against the lab's MACs.
    for (k, role) in ["primary", "secondary"].iter().enumerate() {
        let arp = lab.cli(&[
            "list-arp-tables",
            CIRCUIT,
            "--peering",
            PEERING,
            "--path",
            role,
        ]);
        let v = arp["value"].as_array().unwrap();
        let entry = |i: &str| {
            v.iter()
                .find(|e| e["interface"] == i)
                .unwrap_or_else(|| panic!("{arp}"))
        };
        let ours = entry("Microsoft");
        assert_eq!(ours["ipAddress"], p.msee[k].to_string().as_str());
        assert_eq!(
            ours["macAddress"],
            mac_with_addr(&msee_ns, &p.msee[k].to_string()).as_str()
        );
        let theirs = entry("On-Prem");
        assert_eq!(theirs["ipAddress"], p.customer[k].0.to_string().as_str());
        assert_eq!(theirs["macAddress"], mac_of(&c.ns, &p.ifnames[k]).as_str());
        assert_eq!(theirs["age"], 0);
    }
    drop(lab);
    std::fs::remove_dir_all(&dir).ok();
}

/// The lab of `MODEL` under a fresh prefix, sessions up and routes learned
/// both ways.
fn ops_lab(tag: &str) -> (EstateLabUp, std::path::PathBuf) {
    let prefix = unique_prefix(tag);
    let dir = std::env::temp_dir().join(format!("msee-{prefix}"));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("ops.toml");
    std::fs::write(&file, MODEL).unwrap();
    let lab = EstateLabUp::up(&file, &prefix, CustomerRouter::Frr).unwrap();
    lab.wait_established(Duration::from_secs(60)).unwrap();
    let learned = lab.wait_learned(CIRCUIT, &["10.40.0.0/16"], Duration::from_secs(30));
    assert_eq!(learned.len(), 1, "FRR learned the VNet: {learned:?}");
    wait_routes_both_links(&lab);
    (lab, dir)
}

/// Until the MSEE learned the customer's prefix on both links.
fn wait_routes_both_links(lab: &EstateLabUp) {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    for role in ["primary", "secondary"] {
        while lab
            .cli_result(&[
                "list-route-tables",
                CIRCUIT,
                "--peering",
                PEERING,
                "--path",
                role,
            ])
            .ok()
            .and_then(|v| v["value"].as_array().map(|a| !a.is_empty()))
            != Some(true)
        {
            assert!(
                std::time::Instant::now() < deadline,
                "no route learned on the {role}\n{}",
                lab.daemon_log()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

/// (ingress, egress) bytes of `role` in a usage report.
fn usage_of(report: &Value, role: &str) -> (u64, u64) {
    let p = report["peerings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["peeringType"] == PEERING)
        .unwrap_or_else(|| panic!("{report}"));
    let l = p["links"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["path"] == role)
        .unwrap_or_else(|| panic!("{report}"));
    (u(l, "ingressBytes"), u(l, "egressBytes"))
}

/// Frames the MSEE passed to its kernel (BGP, BFD, ARP) on `role`, now.
fn to_kernel(lab: &EstateLabUp, role: &str) -> u64 {
    u(&counters(lab, role), "pass_packets")
}

/// Usage counted per link to the byte across a daemon restart (nothing
/// lost, nothing counted twice), availability across a failover (the
/// outage listed with its cause, the circuit at 100 % while the other link
/// carried), both kept in the state directory across the restart, and a
/// corrupted usage file set aside and reported while forwarding goes on.
#[test]
fn usage_and_availability_outlive_the_daemon() {
    if !require_root("usage_and_availability_outlive_the_daemon") {
        return;
    }
    let (mut lab, dir) = ops_lab("use");
    let c = lab.customer(CIRCUIT).clone();
    let p = c.peerings[0].clone();
    let vnet_host: IpAddr = VNET_HOST.parse().unwrap();
    let vnet_ns = lab.azure_ns_of(vnet_host);
    let to_customer = |port| Flow {
        src_ns: vnet_ns.clone(),
        src_addr: vnet_host,
        src_dev: None,
        dst_ns: c.ns.clone(),
        dst_addr: IpAddr::V4(c.host),
        dst_port: port,
    };
    let from_customer = |port| Flow {
        src_ns: c.ns.clone(),
        src_addr: IpAddr::V4(c.host),
        src_dev: Some(p.ifnames[0].clone()),
        dst_ns: vnet_ns.clone(),
        dst_addr: vnet_host,
        dst_port: port,
    };
    let n = 1000;
    let usage = |lab: &EstateLabUp| lab.cli(&["usage", CIRCUIT]);
    let egress = |u: &Value| usage_of(u, "primary").1 + usage_of(u, "secondary").1;

    // --- Usage: the test's frames, per link.
    let u0 = usage(&lab);
    assert_eq!(u0["skuFamily"], "MeteredData");
    assert_eq!(u0["zone"], 1, "Amsterdam is in zone 1");
    let k0 = to_kernel(&lab, "primary");
    let r = send_and_count_at(&from_customer(7410), n, Some(5000)).unwrap();
    assert_eq!(r.received, n, "customer -> VNet\n{}", lab.daemon_log());
    let r = send_and_count_at(&to_customer(7411), n, Some(5000)).unwrap();
    assert_eq!(r.received, n, "VNet -> customer");
    let u1 = usage(&lab);
    let k1 = to_kernel(&lab, "primary");
    let ingress = usage_of(&u1, "primary").0 - usage_of(&u0, "primary").0;
    assert!(
        ingress >= n * FRAME && ingress - n * FRAME <= (k1 - k0) * MAX_FRAME,
        "primary ingress grew by {ingress} for {n} frames of {FRAME} B and {} to the kernel",
        k1 - k0
    );
    // Out toward the customer: exactly the test's frames, on whichever link.
    assert_eq!(egress(&u1) - egress(&u0), n * FRAME, "{u1}");
    let billed = u1["billedOutboundGb"].as_f64().unwrap();
    assert!(
        (billed - egress(&u1) as f64 / 1e9).abs() < 1e-12,
        "Metered: egress billed"
    );
    assert_eq!(u1["billedInboundGb"], 0.0);
    let bin = lab::daemon::workspace_bin("msee-cli").unwrap();
    let text = std::process::Command::new(&bin)
        .arg("--socket")
        .arg(&lab.state.api_socket)
        .args(["usage", CIRCUIT])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&text.stdout).into_owned();
    eprintln!("{text}");
    assert!(
        text.contains("er-ops: Standard MeteredData at Amsterdam (zone 1)")
            && text.contains("billed: outbound"),
        "{text}"
    );

    // --- Availability across a failover: the customer shuts the primary's
    // session down, then brings it back.
    // From now on (whatever the sessions' start did before).
    let a0 = lab.cli(&["availability", CIRCUIT]);
    eprintln!("before the failover: {a0}");
    // A second boundary at least 1 s after it (the report's times are
    // whole seconds).
    std::thread::sleep(Duration::from_millis(2100));
    let since = lab.cli(&["availability", CIRCUIT])["to"]
        .as_str()
        .unwrap()
        .to_owned();
    let neighbour = p.msee[0].to_string();
    let router = format!("router bgp {}", c.asn);
    lab.vtysh_config(
        CIRCUIT,
        &[&router, &format!("neighbor {neighbour} shutdown")],
    );
    let links_down = |lab: &EstateLabUp| {
        lab.cli(&["links"])
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["name"] == format!("{CIRCUIT}/{PEERING}/primary").as_str())
            .is_some_and(|l| l["carries"] == false)
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !links_down(&lab) {
        assert!(
            std::time::Instant::now() < deadline,
            "the primary never went down"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // The secondary carries meanwhile.
    let r = send_and_count_at(&to_customer(7412), 200, Some(2000)).unwrap();
    assert_eq!(
        r.received, 200,
        "over the secondary while the primary is down"
    );
    std::thread::sleep(Duration::from_secs(2));
    lab.vtysh_config(
        CIRCUIT,
        &[&router, &format!("no neighbor {neighbour} shutdown")],
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while links_down(&lab) {
        assert!(
            std::time::Instant::now() < deadline,
            "the primary never came back\n{}",
            lab.daemon_log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let check_outage = |a: &Value| {
        let outages: Vec<&Value> = a["outages"].as_array().unwrap().iter().collect();
        assert_eq!(outages.len(), 1, "one outage: {a}");
        let o = outages[0];
        assert_eq!(o["scope"], "primary");
        assert_eq!(o["peeringType"], PEERING);
        assert_eq!(o["cause"], "BGP", "{o}");
        assert_eq!(o["detail"], "BGP down", "{o}");
        assert!(o["end"].is_string(), "it ended: {o}");
        let secs = o["durationSecs"].as_f64().unwrap();
        assert!((2.0..30.0).contains(&secs), "{o}");
        assert_eq!(
            a["circuitUptimePercent"], 100.0,
            "the secondary stayed up: {a}"
        );
        let links = a["links"].as_array().unwrap();
        let link = |r: &str| links.iter().find(|l| l["path"] == r).unwrap().clone();
        assert_eq!(link("primary")["outages"], 1);
        assert!(link("primary")["uptimePercent"].as_f64().unwrap() < 100.0);
        assert_eq!(link("secondary")["outages"], 0);
        assert_eq!(link("secondary")["uptimePercent"], 100.0);
        secs
    };
    std::thread::sleep(Duration::from_millis(1100));
    let a1 = lab.cli(&["availability", CIRCUIT, "--from", &since]);
    // The period of the failover, for the same question after the restart.
    let until = a1["to"].as_str().unwrap().to_owned();
    let outage_secs = check_outage(&a1);
    eprintln!("outage of the primary: {outage_secs:.3} s");
    let text = lab::daemon::workspace_bin("msee-cli")
        .map(|bin| {
            std::process::Command::new(bin)
                .arg("--socket")
                .arg(&lab.state.api_socket)
                .args(["availability", CIRCUIT, "--from", &since])
                .output()
                .unwrap()
        })
        .unwrap();
    let text = String::from_utf8_lossy(&text.stdout).into_owned();
    eprintln!("{text}");
    assert!(
        text.starts_with("er-ops availability: circuit 100.000% over ")
            && text.contains("private primary")
            && text.contains("BGP down"),
        "{text}"
    );

    // --- A maintenance drain of the secondary: an outage of that link
    // (cause drain), none of the circuit (a drained link still carries).
    std::thread::sleep(Duration::from_millis(1100));
    let drain_from = lab.cli(&["availability", CIRCUIT])["to"]
        .as_str()
        .unwrap()
        .to_owned();
    lab.cli(&["drain", CIRCUIT, "secondary"]);
    std::thread::sleep(Duration::from_millis(2500));
    lab.cli(&["undrain", CIRCUIT, "secondary"]);
    // The daemon records drains each second.
    std::thread::sleep(Duration::from_millis(1500));
    let ad = lab.cli(&["availability", CIRCUIT, "--from", &drain_from]);
    let outages = ad["outages"].as_array().unwrap();
    assert_eq!(outages.len(), 1, "{ad}");
    assert_eq!(outages[0]["scope"], "secondary", "{ad}");
    assert_eq!(outages[0]["cause"], "drain", "{ad}");
    assert!(outages[0]["end"].is_string(), "{ad}");
    let secs = outages[0]["durationSecs"].as_f64().unwrap();
    assert!((1.5..4.5).contains(&secs), "{ad}");
    assert_eq!(ad["circuitUptimePercent"], 100.0, "{ad}");

    // --- A restart: usage and history carry over, nothing counted twice.
    wait_routes_both_links(&lab);
    let before = usage(&lab);
    lab.restart_daemon(|_| {}).unwrap();
    lab.wait_established(Duration::from_secs(60)).unwrap();
    wait_routes_both_links(&lab);
    let after = usage(&lab);
    // Nothing went out toward the customer while no daemon ran nor since.
    assert_eq!(egress(&after), egress(&before), "{before}\n{after}");
    // In: only the kernel's own frames since (a double count would add
    // everything counted before).
    let (bi, ai) = (
        usage_of(&before, "primary").0,
        usage_of(&after, "primary").0,
    );
    assert!(
        ai >= bi && ai - bi < n * FRAME / 4,
        "primary ingress {bi} before the restart, {ai} after"
    );
    let r = send_and_count_at(&to_customer(7413), n, Some(5000)).unwrap();
    assert_eq!(r.received, n, "VNet -> customer after the restart");
    assert_eq!(egress(&usage(&lab)), egress(&before) + n * FRAME);
    // The history too: the outage is still listed, the time without a
    // daemon not counted against anyone.
    let a2 = lab.cli(&["availability", CIRCUIT, "--from", &since, "--to", &until]);
    assert!((check_outage(&a2) - outage_secs).abs() < 1e-9, "{a2}");
    assert_eq!(a2["outages"], a1["outages"]);

    // --- A corrupted usage file: set aside, reported, forwarding goes on.
    let held = egress(&usage(&lab));
    let mut garbage = b"{\"version\": 1, \"links\": {".to_vec();
    garbage.extend_from_slice(&[0xff; 16]);
    lab.restart_daemon(|state| {
        std::fs::write(state.join("usage.json"), &garbage).unwrap();
    })
    .unwrap();
    let state = lab::estate::daemon_state_dir(&lab.state.lab.prefix);
    let aside: Vec<std::path::PathBuf> = std::fs::read_dir(&state)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("usage.json.corrupt-")
        })
        .collect();
    assert_eq!(aside.len(), 1, "{aside:?}");
    assert_eq!(std::fs::read(&aside[0]).unwrap(), garbage, "kept as it was");
    assert!(
        lab.daemon_log().contains("usage.json could not be read"),
        "{}",
        lab.daemon_log()
    );
    lab.wait_established(Duration::from_secs(60)).unwrap();
    wait_routes_both_links(&lab);
    let r = send_and_count_at(&to_customer(7414), n, Some(5000)).unwrap();
    assert_eq!(r.received, n, "forwarding goes on");
    let u3 = usage(&lab);
    let notes = u3["notes"].as_array().cloned().unwrap_or_default();
    assert!(
        notes
            .iter()
            .any(|n| n.as_str().unwrap().contains("set aside as")),
        "{u3}"
    );
    // Counted anew: the set-aside figures are not in the new ledger; what
    // the dataplane's counters still hold is, if the restart adopted them
    // (all the egress so far), else nothing of before.
    assert!(
        egress(&u3) == n * FRAME || egress(&u3) == held + n * FRAME,
        "counted anew: {} after {held} before the set-aside ({u3})",
        egress(&u3)
    );

    // --- Bad input: one line naming the valid circuits; a bad date.
    let bin = lab::daemon::workspace_bin("msee-cli").unwrap();
    let err = |args: &[&str]| {
        let o = std::process::Command::new(&bin)
            .arg("--socket")
            .arg(&lab.state.api_socket)
            .args(args)
            .output()
            .unwrap();
        assert!(!o.status.success());
        String::from_utf8_lossy(&o.stderr).trim().to_owned()
    };
    assert_eq!(
        err(&["usage", "er-nope"]),
        "msee-cli: error: msee-daemon: unknown circuit \"er-nope\" (valid: er-ops)"
    );
    assert_eq!(
        err(&["availability", "er-nope"]),
        "msee-cli: error: msee-daemon: unknown circuit \"er-nope\" (valid: er-ops)"
    );
    let e = err(&["usage", CIRCUIT, "--from", "2026-13-45"]);
    assert!(
        e.contains("--from") && e.contains("YYYY-MM-DD") && e.lines().count() == 1,
        "{e}"
    );
    drop(lab);
    std::fs::remove_dir_all(&dir).ok();
}

/// Frames the primary's policer drops, captured by `msee-cli capture` into
/// a pcapng file that tcpdump reads back, each frame with its reason and
/// link; and the live view of the same circuit (`msee-cli top --once`).
#[test]
fn policer_drops_are_captured_and_shown_live() {
    if !require_root("policer_drops_are_captured_and_shown_live") {
        return;
    }
    let prefix = unique_prefix("cap");
    let dir = std::env::temp_dir().join(format!("msee-{prefix}"));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("ops.toml");
    // 50 Mbit/s: a sender offering three times that meets the policer.
    std::fs::write(
        &file,
        MODEL.replace("bandwidthInMbps = 1000", "bandwidthInMbps = 50"),
    )
    .unwrap();
    let lab = EstateLabUp::up(&file, &prefix, CustomerRouter::Frr).unwrap();
    lab.wait_established(Duration::from_secs(60)).unwrap();
    lab.wait_learned(CIRCUIT, &["10.40.0.0/16"], Duration::from_secs(30));
    wait_routes_both_links(&lab);
    let c = lab.customer(CIRCUIT).clone();
    let p = c.peerings[0].clone();
    let link = format!("{CIRCUIT}/{PEERING}/primary");
    let bin = lab::daemon::workspace_bin("msee-cli").unwrap();
    let cli = |args: &[&str]| {
        std::process::Command::new(&bin)
            .arg("--socket")
            .arg(&lab.state.api_socket)
            .args(args)
            .output()
            .unwrap()
    };

    // Bad input first: one line naming what is valid.
    let pcap = dir.join("drops.pcapng");
    let pcap_s = pcap.display().to_string();
    let o = cli(&["capture", "--reason", "nope", "--count", "1", "-w", &pcap_s]);
    let e = String::from_utf8_lossy(&o.stderr).trim().to_owned();
    assert!(
        !o.status.success()
            && e.ends_with("unknown drop reason \"nope\" (valid: malformed, no_route, out_of_reach, ttl_expired, link_down, policer)")
            && e.lines().count() == 1,
        "{e}"
    );
    let o = cli(&["capture", "--link", "nope", "--count", "1", "-w", &pcap_s]);
    let e = String::from_utf8_lossy(&o.stderr).trim().to_owned();
    assert!(
        !o.status.success() && e.contains("unknown link \"nope\" (valid: ") && e.contains(&link),
        "{e}"
    );

    // The capture waits for its frames while the customer's router sends
    // 150 Mbit/s over the primary.
    let count = 20;
    let capture = {
        let (bin, socket, pcap_s, link) = (
            bin.clone(),
            lab.state.api_socket.clone(),
            pcap_s.clone(),
            link.clone(),
        );
        std::thread::spawn(move || {
            std::process::Command::new(&bin)
                .arg("--socket")
                .arg(&socket)
                .args(["capture", "--reason", "policer", "--link", &link])
                .args(["--count", &count.to_string(), "-w", &pcap_s])
                .args(["--timeout-secs", "20"])
                .output()
                .unwrap()
        })
    };
    std::thread::sleep(Duration::from_millis(500));
    let via = p.msee[0].to_string();
    lab::ip_ns(
        &c.ns,
        &[
            "route",
            "add",
            &format!("{VNET_HOST}/32"),
            "via",
            &via,
            "dev",
            &p.ifnames[0],
        ],
    )
    .unwrap();
    let tx = lab::traffic::udp_socket_in(&c.ns, IpAddr::V4(c.host), None).unwrap();
    let payload = vec![0x5au8; 1000];
    let frame_bytes = (payload.len() + 8 + 20 + 14 + 4) as u64;
    let dst: std::net::SocketAddr = format!("{VNET_HOST}:9").parse().unwrap();
    let before = counters(&lab, "primary");
    // The live view, one refresh while the policer drops.
    let top = {
        let (bin, socket) = (bin.clone(), lab.state.api_socket.clone());
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(500));
            std::process::Command::new(&bin)
                .arg("--socket")
                .arg(&socket)
                .args(["top", "--once", "--interval-ms", "1000"])
                .output()
                .unwrap()
        })
    };
    e2e_tests::policer::offer(&tx, dst, &payload, frame_bytes, 150_000_000, 2);
    let after = counters(&lab, "primary");
    let policed =
        after["drops"]["policer"].as_u64().unwrap() - before["drops"]["policer"].as_u64().unwrap();
    assert!(policed > count, "the policer dropped {policed} frames");
    let o = capture.join().unwrap();
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        o.status.success(),
        "{out}{}\n{}",
        String::from_utf8_lossy(&o.stderr),
        lab.daemon_log()
    );
    assert!(
        out.starts_with(&format!("{count} dropped frames written to {pcap_s}")),
        "{out}"
    );

    // tcpdump reads the file: the customer's datagrams, tagged, whole.
    let td = std::process::Command::new("tcpdump")
        .args(["-nn", "-e", "-r", &pcap_s])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&td.stdout).into_owned();
    assert!(
        td.status.success(),
        "{}",
        String::from_utf8_lossy(&td.stderr)
    );
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), count as usize, "{text}");
    for l in &lines {
        assert!(
            l.contains("vlan 400")
                && l.contains(&format!("{}.", c.host))
                && l.contains(&format!(" > {VNET_HOST}.9: UDP, length 1000"))
                && l.contains(&format!("length {frame_bytes}")),
            "{l}"
        );
    }
    // Each frame's comment: its reason, link and direction.
    let bytes = std::fs::read(&pcap).unwrap();
    let note = format!("msee drop: reason=policer link={link} direction=in");
    let notes = bytes
        .windows(note.len())
        .filter(|w| *w == note.as_bytes())
        .count();
    assert_eq!(notes, count as usize);
    assert!(
        lab.daemon_log().contains("capture done: off"),
        "{}",
        lab.daemon_log()
    );

    // The live view: the primary carries, takes tens of Mbit/s in and
    // drops at the policer; both sessions Established, BFD Up.
    let o = top.join().unwrap();
    let view = String::from_utf8_lossy(&o.stdout).into_owned();
    eprintln!("{view}");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let row = view
        .lines()
        .find(|l| l.contains(&link) && l.contains("bit/s"))
        .unwrap_or_else(|| panic!("no row of {link} in\n{view}"));
    assert!(
        row.contains("yes") && row.contains("Mbit/s") && row.contains("policer "),
        "{row}"
    );
    assert_eq!(view.matches("Established").count(), 2, "{view}");
    assert!(view.contains("BFD session"), "{view}");
    drop(lab);
    std::fs::remove_dir_all(&dir).ok();
}
