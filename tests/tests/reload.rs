//! Configuration reload (`msee-cli reload`, SIGHUP) with FRR as the
//! customer router: only what changed is applied, sessions whose settings
//! did not change are never disturbed, and an invalid file changes nothing.
use std::time::Duration;

use e2e_tests::{
    bgp_lab::{
        BgpLab, SESSION_PRIMARY, SESSION_PRIMARY6, SESSION_SECONDARY, SESSION_SECONDARY6,
        circuit_toml, wait_for,
    },
    frr::{BGPD, Frr, customer_conf},
    require_root,
};

const SESSIONS: [&str; 4] = [
    SESSION_PRIMARY,
    SESSION_SECONDARY,
    SESSION_PRIMARY6,
    SESSION_SECONDARY6,
];

/// A second VNet in West Europe linked to the circuit.
const SECOND_VNET: &str = r#"
[[virtualNetworks]]
name = "vnet-lab2"
location = "West Europe"
addressSpace = { addressPrefixes = ["10.2.0.0/16"] }

[[connections]]
name = "lab2"
virtualNetwork = "vnet-lab2"
peer = "er-lab"
"#;

#[test]
fn reload_applies_only_the_difference() {
    if !require_root("reload_applies_only_the_difference") {
        return;
    }
    assert!(
        std::path::Path::new(BGPD).exists(),
        "{BGPD} is missing: install FRR (cargo xtask setup does)"
    );
    let lab = BgpLab::up("rld");
    let topo = &lab.topo;
    let frr = Frr::start(
        &topo.ns_onprem(),
        &customer_conf(topo, &lab.dir.join("bgpd.log")),
        &lab.dir,
    );
    let ctx = |what: &str| lab.ctx(what, &frr.log());
    let config = lab.dir.join("circuit.toml");
    let established = || -> Vec<usize> { SESSIONS.iter().map(|s| lab.established(s)).collect() };
    wait_for("all four sessions up", Duration::from_secs(30), || {
        established().iter().all(|n| *n == 1)
    })
    .unwrap_or_else(|e| panic!("{}", ctx(&e)));
    // FRR's count of established connections per MSEE address: a reset
    // anywhere shows there too.
    let frr_established = |addr: &str| -> u64 {
        let out = frr.vtysh(&[&format!("show bgp neighbors {addr} json")]);
        serde_json::from_str::<serde_json::Value>(&out).unwrap_or_default()[addr]
            ["connectionsEstablished"]
            .as_u64()
            .unwrap_or(0)
    };
    let msee_addrs = [
        topo.primary.msee.to_string(),
        topo.secondary.msee.to_string(),
        topo.primary6.msee.to_string(),
        topo.secondary6.msee.to_string(),
    ];
    let frr_before: Vec<u64> = msee_addrs.iter().map(|a| frr_established(a)).collect();
    let frr_has = |prefix: &str| -> usize {
        let out = frr.vtysh(&[&format!("show bgp ipv4 unicast {prefix} json")]);
        serde_json::from_str::<serde_json::Value>(&out).unwrap_or_default()["paths"]
            .as_array()
            .map_or(0, Vec::len)
    };
    wait_for("FRR learned 10.1.0.0/16", Duration::from_secs(15), || {
        frr_has("10.1.0.0/16") == 2
    })
    .unwrap_or_else(|e| panic!("{}", ctx(&e)));
    // The circuit as the operator sees it.
    let circuits = lab.cli(&["circuits"]);
    let c = &circuits[0];
    assert_eq!(c["name"], "er-lab");
    assert_eq!(c["running"], true);
    assert_eq!(c["bandwidthInMbps"], 1000);
    assert_eq!(
        c["peerings"][0]["primary"]["ipv4"]["msee"],
        "192.168.100.130"
    );
    assert_eq!(
        c["peerings"][0]["primary"]["ipv6"]["subnet"],
        "fd00:100::/126"
    );
    assert!(
        c["reach"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r == "West Europe")
    );
    // Policed at the circuit's bandwidth.
    let police = |port: &str| -> serde_json::Value {
        lab.cli(&["counters"])
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["port"] == port)
            .unwrap()["police_tx_bps"]
            .clone()
    };
    assert_eq!(police("primary"), 1_000_000_000u64);

    // 1. A second VNet: advertised in place on the IPv4 sessions.
    std::fs::write(&config, circuit_toml() + SECOND_VNET).unwrap();
    let r = lab.cli(&["reload"]);
    assert_eq!(r["changed"], true, "{r}");
    assert!(r["restarted"].as_array().unwrap().is_empty(), "{r}");
    let in_place: Vec<&str> = r["in_place"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["session"].as_str().unwrap())
        .collect();
    assert_eq!(in_place, [SESSION_PRIMARY, SESSION_SECONDARY], "{r}");
    wait_for("FRR learned 10.2.0.0/16", Duration::from_secs(15), || {
        frr_has("10.2.0.0/16") == 2
    })
    .unwrap_or_else(|e| panic!("{}", ctx(&e)));

    // 2. Gone again: withdrawn, in place.
    std::fs::write(&config, circuit_toml()).unwrap();
    let r = lab.cli(&["reload"]);
    assert_eq!(r["in_place"].as_array().unwrap().len(), 2, "{r}");
    wait_for("FRR lost 10.2.0.0/16", Duration::from_secs(15), || {
        frr_has("10.2.0.0/16") == 0
    })
    .unwrap_or_else(|e| panic!("{}", ctx(&e)));
    assert_eq!(frr_has("10.1.0.0/16"), 2, "the first VNet stays");

    // 3. The same file again: nothing to do.
    let r = lab.cli(&["reload"]);
    assert_eq!(r["changed"], false, "{r}");

    // 4. An invalid file is refused whole, naming the field; nothing changes.
    std::fs::write(
        &config,
        (circuit_toml() + SECOND_VNET).replace("peerASN = 65010", "peerASN = 65515"),
    )
    .unwrap();
    let out = std::process::Command::new(lab::daemon::workspace_bin("msee-cli").unwrap())
        .arg("--socket")
        .arg(&lab.socket)
        .arg("reload")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("refused, nothing changed") && err.contains("peerASN"),
        "{err}"
    );
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(frr_has("10.2.0.0/16"), 0, "the VNet of the refused file");

    // 5. Bandwidth raised in place: the policers follow, nothing resets.
    std::fs::write(
        &config,
        circuit_toml().replace("bandwidthInMbps = 1000", "bandwidthInMbps = 2000"),
    )
    .unwrap();
    // Through SIGHUP this time.
    nix::sys::signal::kill(lab.daemon.pid(), nix::sys::signal::Signal::SIGHUP).unwrap();
    wait_for("policer at 2 Gbit/s", Duration::from_secs(5), || {
        police("primary") == 2_000_000_000u64 && police("secondary") == 2_000_000_000u64
    })
    .unwrap_or_else(|e| panic!("{}", ctx(&e)));

    // None of that disturbed a session, on either side.
    assert_eq!(established(), [1, 1, 1, 1], "{}", ctx("no session reset"));
    let frr_after: Vec<u64> = msee_addrs.iter().map(|a| frr_established(a)).collect();
    assert_eq!(frr_after, frr_before, "{}", ctx("FRR saw no reset"));

    // 6. A new MD5 key: the peering's sessions restart (and wait for the
    // customer's new key); the new key on FRR brings them back.
    std::fs::write(
        &config,
        circuit_toml()
            .replace("bandwidthInMbps = 1000", "bandwidthInMbps = 2000")
            .replace("s3cret-md5", "n3w-key"),
    )
    .unwrap();
    let r = lab.cli(&["reload"]);
    assert_eq!(r["restarted"].as_array().unwrap().len(), 4, "{r}");
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(
        established(),
        [1, 1, 1, 1],
        "{}",
        ctx("no session with the old key")
    );
    let mut cmds = vec!["configure terminal", "router bgp 65010"];
    let lines: Vec<String> = msee_addrs
        .iter()
        .map(|a| format!("neighbor {a} password n3w-key"))
        .collect();
    cmds.extend(lines.iter().map(String::as_str));
    frr.vtysh(&cmds);
    wait_for(
        "all four back with the new key",
        Duration::from_secs(30),
        || established().iter().all(|n| *n == 2),
    )
    .unwrap_or_else(|e| panic!("{}", ctx(&e)));
    let sessions = lab.cli(&["sessions"]);
    assert_eq!(sessions.as_array().unwrap().len(), 4, "{sessions}");
}
