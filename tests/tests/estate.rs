//! A whole estate in one daemon, built by `lab::estate` from its file: three
//! circuits (Standard in Amsterdam, Premium in Silicon Valley, Local in
//! Amsterdam2) on the provider's port pair, each peering on its VLAN, FRR,
//! BIRD and GoBGP as their customers' routers, a namespace per VNet. Every session comes up;
//! each circuit's customer is told of exactly the VNets its SKU reaches and
//! reaches exactly those; a VNet linked out of reach is neither advertised
//! nor forwarded (its frames are counted as out of reach).
use std::{net::IpAddr, time::Duration};

use e2e_tests::{estate::EstateLabUp, require_root, unique_prefix};
use lab::{
    estate::{CustomerRouter, Customers},
    traffic::{Flow, send_and_count_at},
};

/// Probe flows are paced under the slowest circuit's bandwidth: the MSEE
/// polices at millisecond granularity (as the service does), so an unpaced
/// burst of small datagrams through a 50 Mbit/s circuit is legitimately
/// cut (10,000 pps of ~100-byte datagrams is about 8 Mbit/s).
const PACED: Option<u32> = Some(10_000);

const ESTATE: &str = r#"
[[circuits]]
name = "er-ams"
serviceKey = "00000000-0000-0000-0000-00000000a001"
serviceProviderProvisioningState = "Provisioned"
serviceProviderProperties = { serviceProviderName = "Equinix", peeringLocation = "Amsterdam", bandwidthInMbps = 50 }
sku = { tier = "Standard", family = "MeteredData" }

[[circuits.peerings]]
peeringType = "AzurePrivatePeering"
peerASN = 65001
peerAddressPrefix = "192.168.10.0/29"
vlanId = 100
sharedKey = "ams-key"

[[circuits]]
name = "er-sv"
serviceKey = "00000000-0000-0000-0000-00000000a002"
serviceProviderProvisioningState = "Provisioned"
serviceProviderProperties = { serviceProviderName = "Megaport", peeringLocation = "Silicon Valley", bandwidthInMbps = 100 }
sku = { tier = "Premium", family = "MeteredData" }

[[circuits.peerings]]
peeringType = "AzurePrivatePeering"
peerASN = 65002
peerAddressPrefix = "192.168.20.0/29"
vlanId = 200

[[circuits]]
name = "er-local"
serviceKey = "00000000-0000-0000-0000-00000000a003"
serviceProviderProvisioningState = "Provisioned"
serviceProviderProperties = { serviceProviderName = "Equinix", peeringLocation = "Amsterdam2", bandwidthInMbps = 1000 }
sku = { tier = "Local", family = "UnlimitedData" }

[[circuits.peerings]]
peeringType = "AzurePrivatePeering"
peerASN = 65003
peerAddressPrefix = "192.168.30.0/29"
vlanId = 300

[[virtualNetworks]]
name = "vnet-weu"
location = "West Europe"
addressSpace = { addressPrefixes = ["10.10.0.0/16"] }

[[virtualNetworks]]
name = "vnet-neu"
location = "North Europe"
addressSpace = { addressPrefixes = ["10.20.0.0/16"] }

[[virtualNetworks]]
name = "vnet-eus"
location = "East US"
addressSpace = { addressPrefixes = ["10.30.0.0/16"] }

[[connections]]
name = "ams-weu"
virtualNetwork = "vnet-weu"
peer = "er-ams"

[[connections]]
name = "ams-eus"
virtualNetwork = "vnet-eus"
peer = "er-ams"

[[connections]]
name = "sv-eus"
virtualNetwork = "vnet-eus"
peer = "er-sv"

[[connections]]
name = "sv-weu"
virtualNetwork = "vnet-weu"
peer = "er-sv"

[[connections]]
name = "local-weu"
virtualNetwork = "vnet-weu"
peer = "er-local"

[[connections]]
name = "local-neu"
virtualNetwork = "vnet-neu"
peer = "er-local"
"#;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[test]
fn every_circuit_reaches_exactly_the_vnets_its_sku_allows() {
    if !require_root("every_circuit_reaches_exactly_the_vnets_its_sku_allows") {
        return;
    }
    let prefix = unique_prefix("est");
    let dir = std::env::temp_dir().join(format!("msee-{prefix}"));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("estate.toml");
    std::fs::write(&file, ESTATE).unwrap();
    let customers = Customers {
        default: CustomerRouter::Frr,
        per_circuit: [
            ("er-sv".to_owned(), CustomerRouter::Bird),
            ("er-local".to_owned(), CustomerRouter::Gobgp),
        ]
        .into(),
    };
    let lab = EstateLabUp::up_with(&file, &prefix, &customers).unwrap();
    lab.wait_established(Duration::from_secs(60)).unwrap();
    let want: [(&str, &[&str], &[&str]); 3] = [
        ("er-ams", &["10.10.0.0/16"], &["10.30.0.0/16"]),
        ("er-sv", &["10.10.0.0/16", "10.30.0.0/16"], &[]),
        ("er-local", &["10.10.0.0/16"], &["10.20.0.0/16"]),
    ];
    for (circuit, reach, out_of_reach) in want {
        let c = lab
            .lab()
            .customers
            .iter()
            .find(|c| c.circuit == circuit)
            .unwrap();
        // Advertised: exactly the VNets in reach.
        let got: Vec<String> = lab
            .wait_learned(circuit, reach, Duration::from_secs(20))
            .into_iter()
            .map(|(p, _)| p)
            .collect();
        assert_eq!(got, reach, "{circuit} is told of its VNets in reach");
        // Forwarded: the customer's host reaches each VNet host in reach.
        for vnet in reach {
            let host = vnet.replace(".0.0/16", ".0.4");
            let side = lab
                .lab()
                .vnets
                .iter()
                .find(|v| v.hosts.iter().any(|(_, h)| *h == ip(&host)))
                .unwrap();
            let r = send_and_count_at(
                &Flow {
                    src_ns: c.ns.clone(),
                    src_addr: IpAddr::V4(c.host),
                    src_dev: None,
                    dst_ns: side.ns.clone(),
                    dst_addr: ip(&host),
                    dst_port: 7000,
                },
                100,
                PACED,
            )
            .unwrap();
            assert_eq!(
                r.received,
                100,
                "{circuit} -> {host}: {r:?}\ncustomer's route: {:?}\ncounters: {}\n{}",
                lab::ip_ns(&c.ns, &["route", "get", &host]),
                lab.cli(&["counters"]),
                lab.daemon_log()
            );
            // And back, from the VNet to the customer.
            let r = send_and_count_at(
                &Flow {
                    src_ns: side.ns.clone(),
                    src_addr: ip(&host),
                    src_dev: None,
                    dst_ns: c.ns.clone(),
                    dst_addr: IpAddr::V4(c.host),
                    dst_port: 7001,
                },
                100,
                PACED,
            )
            .unwrap();
            assert_eq!(r.received, 100, "{host} -> {circuit}: {r:?}");
        }
        // Out of reach: not advertised (above), and not forwarded even when
        // the customer sends there anyway: counted as out of reach.
        for vnet in out_of_reach {
            let host = vnet.replace(".0.0/16", ".0.4");
            let p = &c.peerings[0];
            lab::ip_ns(
                &c.ns,
                &["route", "add", vnet, "via", &p.msee[0].to_string()],
            )
            .unwrap();
            let side = lab
                .lab()
                .vnets
                .iter()
                .find(|v| v.hosts.iter().any(|(_, h)| *h == ip(&host)))
                .unwrap();
            let before = out_of_reach_drops(&lab, circuit);
            let r = send_and_count_at(
                &Flow {
                    src_ns: c.ns.clone(),
                    src_addr: IpAddr::V4(c.host),
                    src_dev: None,
                    dst_ns: side.ns.clone(),
                    dst_addr: ip(&host),
                    dst_port: 7002,
                },
                50,
                PACED,
            )
            .unwrap();
            assert_eq!(r.received, 0, "{circuit} -> {host} is out of reach");
            let dropped = out_of_reach_drops(&lab, circuit) - before;
            assert!(
                dropped >= 50,
                "{circuit}: {dropped} frames counted out of reach"
            );
        }
    }
}

/// Frames of `circuit`'s links dropped as out of reach.
fn out_of_reach_drops(lab: &EstateLabUp, circuit: &str) -> u64 {
    lab.cli(&["counters"])
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["circuit"] == circuit)
        .map(|p| p["drops"]["out_of_reach"].as_u64().unwrap_or(0))
        .sum()
}
