//! More of a whole estate in one daemon (see `estate.rs`): Global Reach
//! between circuits, not transitive; three circuits on an ExpressRoute
//! Direct port pair with QinQ; Microsoft peering carrying traffic to a
//! selected service with its DSCP policy; a reload that adds a circuit and
//! removes another while a third carries traffic, after one the system
//! refused (a port held by another XDP program) changed nothing.
use std::{net::IpAddr, time::Duration};

use e2e_tests::{estate::EstateLabUp, require_root, unique_prefix};
use lab::{
    estate::CustomerRouter,
    traffic::{Flow, send_and_count_at},
};

/// Probe flows are paced under the slowest circuit's bandwidth: the MSEE
/// polices at millisecond granularity (as the service does), so an unpaced
/// burst of small datagrams through a 50 Mbit/s circuit is legitimately
/// cut (10,000 pps of ~100-byte datagrams is about 8 Mbit/s).
const PACED: Option<u32> = Some(10_000);

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
    send_and_count_at(
        &Flow {
            src_ns: src_ns.into(),
            src_addr: src,
            src_dev: None,
            dst_ns: dst_ns.into(),
            dst_addr: dst,
            dst_port: port,
        },
        n,
        PACED,
    )
    .unwrap()
    .received
}

/// Sends `n` UDP datagrams of 1472 bytes (1500-byte packets, not
/// fragmented) from `src` in `src_ns` to `dst` in `dst_ns`, paced; returns
/// how many arrived within a second of the last.
fn full_size(src_ns: &str, src: IpAddr, dst_ns: &str, dst: IpAddr, n: u64) -> u64 {
    let rx = lab::traffic::udp_socket_in(dst_ns, dst, None).unwrap();
    rx.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
    let to = rx.local_addr().unwrap();
    let tx = lab::traffic::udp_socket_in(src_ns, src, None).unwrap();
    let payload = [0x5a_u8; 1472];
    for _ in 0..n {
        tx.send_to(&payload, to).unwrap();
        std::thread::sleep(Duration::from_millis(2));
    }
    let mut buf = [0u8; 2048];
    let mut got = 0;
    while let Ok(len) = rx.recv(&mut buf) {
        assert_eq!(len, payload.len(), "a datagram arrived whole");
        got += 1;
        if got == n {
            break;
        }
    }
    got
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
    // Full-size packets (1500 bytes, 1522 on the wire in two tags) cross
    // the QinQ trunks both ways.
    let c = lab.customer("erd-0");
    let h = IpAddr::V4(c.host);
    assert_eq!(
        full_size(&c.ns, h, &vnet_ns, vnet_host, 20),
        20,
        "erd-0 -> VNet"
    );
    assert_eq!(
        full_size(&vnet_ns, vnet_host, &c.ns, h, 20),
        20,
        "VNet -> erd-0"
    );
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

[[expressRoutePorts]]
name = "erd-ams"
peeringLocation = "Amsterdam"
bandwidthInGbps = 10
encapsulation = "QinQ"
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
    // On the Direct port pair: its ports are msee's only once it runs.
    let d = circuit("erd-0", 4, "Amsterdam", "Standard", 1000)
        .replace("sku = ", "expressRoutePort = \"erd-ams\"\nsku = ")
        + &private(65004, "192.168.40.0/29", "sTag = 400\ncTag = 10")
        + &link("erd-0");
    let prefix = unique_prefix("rld");
    let all = write(&prefix, "all.toml", &format!("{a}{b}{c}{d}{vnet}"));
    let config = write(&prefix, "estate.toml", &format!("{a}{c}{vnet}"));
    let lab = EstateLabUp::up_planned(
        &all,
        &config,
        &prefix,
        &lab::estate::Customers::all(CustomerRouter::Frr),
    )
    .unwrap();
    lab.wait_established(Duration::from_secs(60)).unwrap();
    let vnet_host: IpAddr = "10.10.0.4".parse().unwrap();
    let vnet_ns = lab.azure_ns_of(vnet_host);
    let third = lab.customer("er-c").clone();
    lab.wait_learned("er-c", &["10.10.0.0/16"], Duration::from_secs(20));
    // er-c's traffic both ways throughout both reloads.
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
                    8000,
                    Some(1000),
                )
                .unwrap()
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs(2));

    // 1. A reload the system refuses while applying it: another XDP program
    // holds one of the Direct ports erd-0 needs. Refused whole: no link,
    // address, session or circuit of erd-0 stays behind.
    let msee_ns = lab.lab().msee_ns.clone();
    let direct = lab
        .lab()
        .pairs
        .iter()
        .find(|p| p.name == "erd-ams")
        .unwrap()
        .msee
        .clone();
    let busy = lab::ifindex_of(&msee_ns, &direct[1]).unwrap();
    let foreign = msee_sys::netns::within(&msee_ns, || -> anyhow::Result<dataplane::Msee> {
        let mut m = dataplane::Msee::load(&dataplane::LoadOptions::default())?;
        m.attach(busy, dataplane::AttachMode::Native)?;
        Ok(m)
    })
    .unwrap()
    .unwrap();
    let running = |lab: &EstateLabUp| -> Vec<String> {
        lab.cli(&["circuits"])
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["running"] == true)
            .map(|c| c["name"].as_str().unwrap().to_owned())
            .collect()
    };
    let addresses = |dev: &str| lab::ip_ns(&msee_ns, &["-br", "addr", "show", "dev", dev]).unwrap();
    std::fs::write(&config, format!("{a}{c}{d}{vnet}")).unwrap();
    let e = lab.cli_result(&["reload"]).unwrap_err();
    assert!(
        e.contains("refused, nothing changed") && e.contains(&direct[1]),
        "{e}"
    );
    assert_eq!(running(&lab), ["er-a", "er-c"]);
    for dev in &direct {
        assert!(
            !addresses(dev).contains("192.168.40."),
            "{dev}: {}",
            addresses(dev)
        );
    }
    let counters = lab.cli(&["counters"]);
    assert!(
        counters
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["circuit"] != "erd-0"),
        "{counters}"
    );
    assert!(
        lab.cli(&["sessions"])
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["circuit"] != "erd-0")
    );

    // 2. The port free again: er-a out, er-b and erd-0 in, in one reload.
    drop(foreign);
    std::fs::write(&config, format!("{b}{c}{d}{vnet}")).unwrap();
    let r = lab.cli(&["reload"]);
    assert_eq!(
        r["circuits_added"],
        serde_json::json!(["er-b", "erd-0"]),
        "{r}"
    );
    assert_eq!(r["circuits_removed"], serde_json::json!(["er-a"]), "{r}");
    for f in flows {
        let got = f.join().unwrap();
        assert_eq!(got.received, got.sent, "er-c lost nothing: {got:?}\n{r}");
    }
    // er-b and erd-0 run now, er-a does not.
    lab.wait_established(Duration::from_secs(60)).unwrap();
    assert_eq!(running(&lab), ["er-b", "er-c", "erd-0"]);
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
    for (name, port) in [("er-b", 7302), ("erd-0", 7303)] {
        let x = lab.customer(name);
        lab.wait_learned(name, &["10.10.0.0/16"], Duration::from_secs(20));
        assert_eq!(
            udp(&x.ns, IpAddr::V4(x.host), &vnet_ns, vnet_host, port, 100),
            100,
            "the added circuit {name} forwards"
        );
    }
}

/// Sends `n` UDP datagrams with DSCP `dscp` from `src` in `src_ns` to
/// `dst:port`, and returns the DSCP of each that arrived on the
/// (namespace, interface) it is captured at.
fn dscp_across(
    src_ns: &str,
    src: IpAddr,
    (dst_ns, dst_if): (&str, &str),
    dst: IpAddr,
    port: u16,
    dscp: u8,
    n: usize,
) -> Vec<u8> {
    use std::os::fd::AsRawFd as _;
    let ifindex = lab::ifindex_of(dst_ns, dst_if).unwrap();
    let cap = e2e_tests::vlan_lab::Capture::open(dst_ns, ifindex).unwrap();
    let tx = lab::traffic::udp_socket_in(src_ns, src, None).unwrap();
    let tos: libc::c_int = i32::from(dscp) << 2;
    // SAFETY: a valid socket and a c_int option value.
    let rc = unsafe {
        libc::setsockopt(
            tx.as_raw_fd(),
            libc::IPPROTO_IP,
            libc::IP_TOS,
            (&tos as *const libc::c_int).cast(),
            4,
        )
    };
    assert_eq!(rc, 0, "IP_TOS");
    for _ in 0..n {
        tx.send_to(b"dscp", (dst, port)).unwrap();
        std::thread::sleep(Duration::from_millis(2));
    }
    std::thread::sleep(Duration::from_millis(300));
    cap.drain()
        .into_iter()
        .filter(|(_, f)| {
            f.len() > 42
                && f[12..14] == [0x08, 0x00]
                && f[23] == 17
                && f[30..34]
                    == match dst {
                        IpAddr::V4(a) => a.octets(),
                        IpAddr::V6(_) => [0; 4],
                    }
                && u16::from_be_bytes([f[36], f[37]]) == port
        })
        .map(|(_, f)| f[15] >> 2)
        .collect()
}

#[test]
fn microsoft_peering_carries_traffic_to_the_selected_services() {
    if !require_root("microsoft_peering_carries_traffic_to_the_selected_services") {
        return;
    }
    let text = circuit("er-ms", 1, "Amsterdam", "Standard", 200)
        + &private(65010, "192.168.10.0/29", "vlanId = 100")
        + r#"
[[circuits.peerings]]
peeringType = "MicrosoftPeering"
peerASN = 65010
peerAddressPrefix = "203.0.113.0/29"
vlanId = 200
routeFilter = "rf-exchange"
microsoftPeeringConfig = { advertisedPublicPrefixes = ["198.51.100.0/24"] }

[[routeFilters]]
name = "rf-exchange"

[[routeFilters.rules]]
name = "exchange"
communities = ["12076:5010"]
"#;
    let prefix = unique_prefix("ms");
    let file = write(&prefix, "ms.toml", &text);
    let lab = EstateLabUp::up(&file, &prefix, CustomerRouter::Frr).unwrap();
    lab.wait_established(Duration::from_secs(60)).unwrap();
    let c = lab.customer("er-ms");
    let ms = lab.lab().microsoft.clone().expect("the Microsoft edge");
    // The selected service is advertised with its service community.
    let learned = lab.wait_learned("er-ms", &["198.18.10.0/24"], Duration::from_secs(20));
    assert_eq!(learned.len(), 1, "{learned:?}");
    let v: serde_json::Value =
        serde_json::from_str(&lab.vtysh("er-ms", "show bgp ipv4 unicast 198.18.10.0/24 json"))
            .unwrap();
    let communities: Vec<String> = v["paths"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["community"]["string"].as_str().unwrap_or("").to_owned())
        .collect();
    assert!(
        communities.iter().all(|c| c == "12076:5010"),
        "{communities:?}"
    );
    // The customer's public prefix, its private AS 65010 stripped from the
    // path in the RIB (one AS on private peering, none on Microsoft's).
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let routes = loop {
        let r = lab.cli(&["routes", "er-ms"]);
        if r.as_array()
            .unwrap()
            .iter()
            .any(|x| x["prefix"] == "198.51.100.0/24")
            || std::time::Instant::now() > deadline
        {
            break r;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let route = |peering: &str, prefix: &str| {
        routes
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["peering"] == peering && x["prefix"] == prefix)
            .unwrap_or_else(|| panic!("{peering} {prefix} in {routes}"))
            .clone()
    };
    let public = route("MicrosoftPeering", "198.51.100.0/24");
    assert!(
        public["next_hops"]
            .as_array()
            .unwrap()
            .iter()
            .all(|h| h["as_path_len"] == 0),
        "private AS stripped: {public}"
    );
    let onprem = route("AzurePrivatePeering", &c.onprem.to_string());
    assert!(
        onprem["next_hops"]
            .as_array()
            .unwrap()
            .iter()
            .all(|h| h["as_path_len"] == 1),
        "kept on private peering: {onprem}"
    );
    // Traffic to the service: Teams' EF (46) kept, 12 re-marked to 0.
    let exchange: IpAddr = "198.18.10.1".parse().unwrap();
    let public_host = c.public_hosts[0];
    for (sent, want) in [(46u8, 46u8), (12, 0)] {
        let got = dscp_across(
            &c.ns,
            public_host,
            (&ms.ns, "msee"),
            exchange,
            7400,
            sent,
            20,
        );
        assert_eq!(
            got.len(),
            20,
            "all 20 datagrams to Exchange arrived\n{}",
            lab.daemon_log()
        );
        assert!(
            got.iter().all(|d| *d == want),
            "DSCP {sent} arrived as {got:?}"
        );
    }
    // And back, from the service to the customer's public address.
    assert_eq!(udp(&ms.ns, exchange, &c.ns, public_host, 7401, 100), 100);
    // A service the filter did not select is not routed.
    let sharepoint_route = lab.learned("er-ms");
    assert!(!sharepoint_route.iter().any(|(p, _)| p == "198.18.20.0/24"));
}

/// Two circuits policed at the same time, each at its own bandwidth: 50
/// and 100 Mbit/s offered three times their rate over their primary links.
/// Each delivers what an exact token bucket at its rate would (within 2%),
/// and that is its rate (within 2%).
#[test]
fn two_circuits_policed_at_once_each_at_its_own_bandwidth() {
    if !require_root("two_circuits_policed_at_once_each_at_its_own_bandwidth") {
        return;
    }
    let text = circuit("er-50", 1, "Amsterdam", "Standard", 50)
        + &private(65001, "192.168.10.0/29", "vlanId = 100")
        + &circuit("er-100", 2, "Silicon Valley", "Premium", 100)
        + &private(65002, "192.168.20.0/29", "vlanId = 200")
        + r#"
[[virtualNetworks]]
name = "vnet-weu"
location = "West Europe"
addressSpace = { addressPrefixes = ["10.10.0.0/16"] }

[[virtualNetworks]]
name = "vnet-wus"
location = "West US"
addressSpace = { addressPrefixes = ["10.20.0.0/16"] }

[[connections]]
name = "c50"
virtualNetwork = "vnet-weu"
peer = "er-50"

[[connections]]
name = "c100"
virtualNetwork = "vnet-wus"
peer = "er-100"
"#;
    let prefix = unique_prefix("pol");
    let file = write(&prefix, "pol.toml", &text);
    let lab = EstateLabUp::up(&file, &prefix, CustomerRouter::Frr).unwrap();
    lab.wait_established(Duration::from_secs(60)).unwrap();
    let payload = vec![0u8; 1400];
    let frame_bytes = (payload.len() + 8 + 20 + 14 + 4) as u64; // tagged on the customer link
    let secs = 5;
    let mut sockets = Vec::new();
    for (name, host, rate) in [
        ("er-50", "10.10.0.4", 50_000_000u64),
        ("er-100", "10.20.0.4", 100_000_000),
    ] {
        let c = lab.customer(name).clone();
        lab.wait_learned(
            name,
            &[&host.replace(".0.4", ".0.0/16")],
            Duration::from_secs(20),
        );
        // Over the primary link only: its rx policer is the one measured.
        let via = c.peerings[0].msee[0].to_string();
        let dev = c.peerings[0].ifnames[0].clone();
        lab::ip_ns(
            &c.ns,
            &[
                "route",
                "add",
                &format!("{host}/32"),
                "via",
                &via,
                "dev",
                &dev,
            ],
        )
        .unwrap();
        let tx = lab::traffic::udp_socket_in(&c.ns, IpAddr::V4(c.host), None).unwrap();
        let dst: std::net::SocketAddr = format!("{host}:9").parse().unwrap();
        sockets.push((name, rate, tx, dst));
    }
    let streams: Vec<e2e_tests::policer::Stream> = sockets
        .iter()
        .map(|(_, rate, tx, dst)| e2e_tests::policer::Stream {
            tx,
            dst: *dst,
            bps: 3 * rate,
        })
        .collect();
    let before = lab.cli(&["counters"]);
    // Both circuits offered at once, from one thread (the other CPU is the
    // kernel's, which forwards).
    let sent = e2e_tests::policer::offer_streams(&streams, &payload, frame_bytes, secs);
    let results: Vec<_> = sockets
        .iter()
        .zip(sent)
        .map(|((name, rate, _, _), times)| (*name, *rate, times))
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    let after = lab.cli(&["counters"]);
    let counter = |v: &serde_json::Value, port: &str, key: &str| -> u64 {
        v.as_array()
            .unwrap()
            .iter()
            .find(|p| p["port"] == port)
            .map(|p| {
                if let Some(reason) = key.strip_prefix("drops.") {
                    p["drops"][reason].as_u64().unwrap()
                } else {
                    p[key].as_u64().unwrap()
                }
            })
            .unwrap_or_else(|| panic!("no {port} in {v}"))
    };
    for (name, rate, times) in results {
        let link = format!("{name}/AzurePrivatePeering/primary");
        // What arrived to be forwarded: the link's own BGP, BFD and ARP
        // frames also count as received, as passed to the kernel.
        let delta = |key: &str| counter(&after, &link, key) - counter(&before, &link, key);
        let rx = delta("rx_packets") - delta("pass_packets");
        let policed =
            counter(&after, &link, "drops.policer") - counter(&before, &link, "drops.policer");
        let delivered = rx - policed;
        let elapsed = times.last().unwrap().duration_since(times[0]).as_secs_f64();
        let burst = dataplane::default_burst_bytes(rate);
        let ideal = e2e_tests::policer::ideal_policer(&times, frame_bytes, rate, burst);
        let to_bps = |f: u64| (f * frame_bytes).saturating_sub(burst) as f64 * 8.0 / elapsed;
        let (got, ideal_bps) = (to_bps(delivered), to_bps(ideal));
        let offered = times.len() as f64 * frame_bytes as f64 * 8.0 / elapsed;
        let vs_ideal = (delivered as f64 - ideal as f64) / ideal as f64;
        let vs_rate = (got - rate as f64) / rate as f64;
        eprintln!(
            "{name}: offered {:.1} Mbit/s, delivered {:.2} Mbit/s ({:+.2}% vs rate, {:+.2}% vs an exact bucket at {:.2}); {policed} policed",
            offered / 1e6,
            got / 1e6,
            vs_rate * 100.0,
            vs_ideal * 100.0,
            ideal_bps / 1e6
        );
        assert_eq!(
            rx,
            times.len() as u64,
            "{name}: every frame offered reached the MSEE"
        );
        assert!(
            offered > 2.0 * rate as f64,
            "{name}: the sender kept above the rate"
        );
        assert!(
            vs_ideal.abs() < 0.02,
            "{name}: the kernel's bucket matches an exact one"
        );
        if (ideal_bps - rate as f64).abs() / (rate as f64) < 0.01 {
            assert!(vs_rate.abs() < 0.02, "{name}: {got} bit/s vs {rate}");
        }
    }
}
