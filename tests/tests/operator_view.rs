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
}
