//! More of a whole estate in one daemon (see `estate.rs`): Global Reach
//! between circuits, not transitive; three circuits on an ExpressRoute
//! Direct port pair with QinQ; Microsoft peering carrying traffic to a
//! selected service with its DSCP policy; a reload that adds a circuit and
//! removes another while a third carries traffic.
use std::{net::IpAddr, time::Duration};

use e2e_tests::{estate::EstateLabUp, require_root, unique_prefix};
use lab::{
    estate::CustomerRouter,
    traffic::{Flow, send_and_count, send_and_count_at},
};

fn circuit(name: &str, key: u32, location: &str, tier: &str, mbps: u32) -> String {
    format!(
        r#"
[[circuits]]
name = "{name}"
serviceKey = "00000000-0000-0000-0000-{key:012x}"
serviceProviderProvisioningState = "Provisioned"
serviceProviderProperties = {{ serviceProviderName = "Equinix", peeringLocation = "{location}", bandwidthInMbps = {mbps} }}
sku = {{ tier = "{tier}", family = "MeteredData" }}
"#
    )
}

fn private(asn: u32, prefix: &str, vlan: &str) -> String {
    format!(
        r#"
[[circuits.peerings]]
peeringType = "AzurePrivatePeering"
peerASN = {asn}
peerAddressPrefix = "{prefix}"
{vlan}
"#
    )
}

fn write(prefix: &str, name: &str, text: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("msee-{prefix}"));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join(name);
    std::fs::write(&file, text).unwrap();
    file
}

fn udp(src_ns: &str, src: IpAddr, dst_ns: &str, dst: IpAddr, port: u16, n: u64) -> u64 {
    send_and_count(
        &Flow {
            src_ns: src_ns.into(),
            src_addr: src,
            src_dev: None,
            dst_ns: dst_ns.into(),
            dst_addr: dst,
            dst_port: port,
        },
        n,
    )
    .unwrap()
    .received
}

#[test]
fn global_reach_joins_two_sites_and_is_not_transitive() {
    if !require_root("global_reach_joins_two_sites_and_is_not_transitive") {
        return;
    }
    // A-B and B-C: A and C never learn of nor reach each other.
    let text = circuit("er-a", 1, "Amsterdam", "Standard", 200)
        + &private(65001, "192.168.10.0/29", "vlanId = 100")
        + r#"
[[circuits.peerings.connections]]
name = "gr-a-b"
addressPrefix = "172.31.0.0/29"
peerExpressRouteCircuitPeering = "er-b/AzurePrivatePeering"
"# + &circuit("er-b", 2, "London", "Standard", 200)
        + &private(65002, "192.168.20.0/29", "vlanId = 200")
        + r#"
[[circuits.peerings.connections]]
name = "gr-b-c"
addressPrefix = "172.31.0.8/29"
peerExpressRouteCircuitPeering = "er-c/AzurePrivatePeering"
"# + &circuit("er-c", 3, "Paris", "Standard", 200)
        + &private(65003, "192.168.30.0/29", "vlanId = 300");
    let prefix = unique_prefix("gr");
    let file = write(&prefix, "gr.toml", &text);
    let lab = EstateLabUp::up(&file, &prefix, CustomerRouter::Frr).unwrap();
    lab.wait_established(Duration::from_secs(60)).unwrap();
    let (a, b, c) = (
        lab.customer("er-a"),
        lab.customer("er-b"),
        lab.customer("er-c"),
    );
    let net = |x: &lab::estate::plan::Customer| x.onprem.to_string();
    // Each customer learns its Global Reach peers' sites behind AS 12076.
    let la = lab.wait_learned("er-a", &[&net(b)], Duration::from_secs(20));
    assert_eq!(la, [(net(b), "12076 65002".to_owned())], "A learns B only");
    let mut both = [net(a), net(c)];
    both.sort();
    let lb = lab.wait_learned("er-b", &[&both[0], &both[1]], Duration::from_secs(20));
    assert_eq!(lb.len(), 2, "B learns A and C: {lb:?}");
    let lc = lab.wait_learned("er-c", &[&net(b)], Duration::from_secs(20));
    assert_eq!(lc, [(net(b), "12076 65002".to_owned())], "C learns B only");
    // Site to site, both ways, across the MSEEs.
    let (ha, hb, hc) = (IpAddr::V4(a.host), IpAddr::V4(b.host), IpAddr::V4(c.host));
    assert_eq!(
        udp(&a.ns, ha, &b.ns, hb, 7100, 100),
        100,
        "A -> B\n{}",
        lab.daemon_log()
    );
    assert_eq!(udp(&b.ns, hb, &a.ns, ha, 7101, 100), 100, "B -> A");
    assert_eq!(udp(&c.ns, hc, &b.ns, hb, 7102, 100), 100, "C -> B");
    // A -> C even with a route pointed at the MSEE: no route there.
    lab::ip_ns(
        &a.ns,
        &[
            "route",
            "add",
            &net(c),
            "via",
            &a.peerings[0].msee[0].to_string(),
        ],
    )
    .unwrap();
    let before = lab.drops("er-a", "no_route");
    assert_eq!(udp(&a.ns, ha, &c.ns, hc, 7103, 50), 0, "A never reaches C");
    assert!(lab.drops("er-a", "no_route") - before >= 50);
}

#[test]
fn three_circuits_on_a_direct_port_pair_with_qinq() {
    if !require_root("three_circuits_on_a_direct_port_pair_with_qinq") {
        return;
    }
    let mut text = r#"
[[expressRoutePorts]]
name = "erd-ams"
peeringLocation = "Amsterdam"
bandwidthInGbps = 10
encapsulation = "QinQ"
"#
    .to_owned();
    for (i, s_tag) in [400u32, 410, 420].iter().enumerate() {
        let name = format!("erd-{i}");
        text += &circuit(&name, 10 + i as u32, "Amsterdam", "Standard", 1000)
            .replace("sku = ", "expressRoutePort = \"erd-ams\"\nsku = ");
        text += &private(
            65010 + i as u32,
            &format!("192.168.{}.0/29", 40 + i),
            &format!("sTag = {s_tag}\ncTag = 10"),
        );
        text += &format!(
            "\n[[connections]]\nname = \"c{i}\"\nvirtualNetwork = \"vnet-weu\"\npeer = \"{name}\"\n"
        );
    }
    text += r#"
[[virtualNetworks]]
name = "vnet-weu"
location = "West Europe"
addressSpace = { addressPrefixes = ["10.10.0.0/16"] }
"#;
    let prefix = unique_prefix("erd");
    let file = write(&prefix, "direct.toml", &text);
    let lab = EstateLabUp::up(&file, &prefix, CustomerRouter::Frr).unwrap();
    assert_eq!(lab.lab().pairs.len(), 1, "only the Direct pair");
    assert_eq!(lab.lab().pairs[0].name, "erd-ams");
    lab.wait_established(Duration::from_secs(60)).unwrap();
    let vnet_host: IpAddr = "10.10.0.4".parse().unwrap();
    let vnet_ns = lab.azure_ns_of(vnet_host);
    for i in 0..3 {
        let name = format!("erd-{i}");
        let c = lab.customer(&name);
        assert_eq!(c.peerings[0].tags, ([400, 410, 420][i], 10));
        lab.wait_learned(&name, &["10.10.0.0/16"], Duration::from_secs(20));
        let h = IpAddr::V4(c.host);
        assert_eq!(
            udp(&c.ns, h, &vnet_ns, vnet_host, 7200 + i as u16, 100),
            100,
            "{name} -> VNet"
        );
        assert_eq!(
            udp(&vnet_ns, vnet_host, &c.ns, h, 7210 + i as u16, 100),
            100,
            "VNet -> {name}"
        );
    }
    // Each circuit's frames went on its own S-tag: its links counted them.
    let counters = lab.cli(&["counters"]);
    for i in 0..3 {
        let rx: u64 = counters
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["circuit"] == format!("erd-{i}"))
            .map(|p| p["rx_packets"].as_u64().unwrap())
            .sum();
        assert!(rx >= 100, "erd-{i}: {counters}");
    }
}

#[test]
fn reload_adds_and_removes_circuits_while_a_third_loses_nothing() {
    if !require_root("reload_adds_and_removes_circuits_while_a_third_loses_nothing") {
        return;
    }
    let vnet = r#"
[[virtualNetworks]]
name = "vnet-weu"
location = "West Europe"
addressSpace = { addressPrefixes = ["10.10.0.0/16"] }
"#;
    let link = |c: &str| {
        format!(
            "\n[[connections]]\nname = \"{c}-weu\"\nvirtualNetwork = \"vnet-weu\"\npeer = \"{c}\"\n"
        )
    };
    let a = circuit("er-a", 1, "Amsterdam", "Standard", 200)
        + &private(65001, "192.168.10.0/29", "vlanId = 100")
        + &link("er-a");
    let b = circuit("er-b", 2, "Amsterdam", "Standard", 200)
        + &private(65002, "192.168.20.0/29", "vlanId = 200")
        + &link("er-b");
    let c = circuit("er-c", 3, "Amsterdam", "Standard", 200)
        + &private(65003, "192.168.30.0/29", "vlanId = 300")
        + &link("er-c");
    let prefix = unique_prefix("rld");
    let all = write(&prefix, "all.toml", &format!("{a}{b}{c}{vnet}"));
    let config = write(&prefix, "estate.toml", &format!("{a}{c}{vnet}"));
    let lab = EstateLabUp::up_planned(&all, &config, &prefix, CustomerRouter::Frr).unwrap();
    lab.wait_established(Duration::from_secs(60)).unwrap();
    let vnet_host: IpAddr = "10.10.0.4".parse().unwrap();
    let vnet_ns = lab.azure_ns_of(vnet_host);
    let third = lab.customer("er-c").clone();
    lab.wait_learned("er-c", &["10.10.0.0/16"], Duration::from_secs(20));
    // er-c's traffic both ways throughout the reload.
    let flows: Vec<_> = [(true, 7300u16), (false, 7301)]
        .into_iter()
        .map(|(up, port)| {
            let (src_ns, src, dst_ns, dst) = if up {
                (
                    third.ns.clone(),
                    IpAddr::V4(third.host),
                    vnet_ns.clone(),
                    vnet_host,
                )
            } else {
                (
                    vnet_ns.clone(),
                    vnet_host,
                    third.ns.clone(),
                    IpAddr::V4(third.host),
                )
            };
            std::thread::spawn(move || {
                send_and_count_at(
                    &Flow {
                        src_ns,
                        src_addr: src,
                        src_dev: None,
                        dst_ns,
                        dst_addr: dst,
                        dst_port: port,
                    },
                    6000,
                    Some(1000),
                )
                .unwrap()
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs(2));
    std::fs::write(&config, format!("{b}{c}{vnet}")).unwrap();
    let r = lab.cli(&["reload"]);
    assert_eq!(r["circuits_added"], serde_json::json!(["er-b"]), "{r}");
    assert_eq!(r["circuits_removed"], serde_json::json!(["er-a"]), "{r}");
    for f in flows {
        let got = f.join().unwrap();
        assert_eq!(got.received, got.sent, "er-c lost nothing: {got:?}\n{r}");
    }
    // er-b runs now, er-a does not.
    lab.wait_established(Duration::from_secs(60)).unwrap();
    let names: Vec<String> = lab
        .cli(&["sessions"])
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["circuit"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        names.iter().any(|c| c == "er-b") && !names.iter().any(|c| c == "er-a"),
        "{names:?}"
    );
    let b = lab.customer("er-b");
    lab.wait_learned("er-b", &["10.10.0.0/16"], Duration::from_secs(20));
    assert_eq!(
        udp(&b.ns, IpAddr::V4(b.host), &vnet_ns, vnet_host, 7302, 100),
        100,
        "the added circuit forwards"
    );
}
