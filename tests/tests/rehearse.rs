//! `cargo xtask rehearse` on a two-circuit file: one rehearsal per failure
//! kind of the first circuit's primary, traffic both ways, each report
//! held to its bounds (carrier and BGP teardown: the MSEE moves the flows
//! within 10 ms; a silent failure: within three BFD intervals and 10 ms;
//! drain and a BFD timer change: nothing lost), and nothing left behind.
use std::time::Duration;

use circuit::model::PeeringType;
use e2e_tests::{
    estate::EstateLabUp,
    rehearse::{self, Failure, Request},
    require_root, unique_prefix,
};
use lab::estate::{CustomerRouter, Customers};

const FILE: &str = r#"
[[circuits]]
name = "er-a"
serviceKey = "00000000-0000-0000-0000-00000000b001"
serviceProviderProvisioningState = "Provisioned"
serviceProviderProperties = { serviceProviderName = "Equinix", peeringLocation = "Amsterdam", bandwidthInMbps = 1000 }
sku = { tier = "Standard", family = "MeteredData" }

[[circuits.peerings]]
peeringType = "AzurePrivatePeering"
peerASN = 65001
peerAddressPrefix = "192.168.10.0/29"
vlanId = 100

[[circuits]]
name = "er-b"
serviceKey = "00000000-0000-0000-0000-00000000b002"
serviceProviderProvisioningState = "Provisioned"
serviceProviderProperties = { serviceProviderName = "Equinix", peeringLocation = "London", bandwidthInMbps = 500 }
sku = { tier = "Standard", family = "MeteredData" }

[[circuits.peerings]]
peeringType = "AzurePrivatePeering"
peerASN = 65002
peerAddressPrefix = "192.168.20.0/29"
vlanId = 200

[[virtualNetworks]]
name = "vnet-weu"
location = "West Europe"
addressSpace = { addressPrefixes = ["10.10.0.0/16"] }

[[connections]]
name = "a-weu"
virtualNetwork = "vnet-weu"
peer = "er-a"

[[connections]]
name = "b-weu"
virtualNetwork = "vnet-weu"
peer = "er-b"
"#;

#[test]
fn one_rehearsal_per_failure_kind_within_its_bounds() {
    if !require_root("one_rehearsal_per_failure_kind_within_its_bounds") {
        return;
    }
    let prefix = unique_prefix("reh");
    let dir = std::env::temp_dir().join(format!("msee-{prefix}"));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("estate.toml");
    std::fs::write(&file, FILE).unwrap();
    let model = circuit::load_files(&[&file]).unwrap();
    let lab = EstateLabUp::up_with(&file, &prefix, &Customers::all(CustomerRouter::Frr)).unwrap();
    let mut reports = Vec::new();
    for failure in [
        Failure::Carrier,
        Failure::Silent,
        Failure::Bgp,
        Failure::Drain,
        Failure::BfdTimers,
    ] {
        let r = rehearse::resolve(
            &model,
            &Request {
                circuit: Some("er-a".into()),
                peering: PeeringType::AzurePrivatePeering,
                failure,
                at: Duration::from_secs(2),
                hold: Duration::from_secs(2),
                traffic: "flows=16,rate=10kpps,size=128,dir=both".parse().unwrap(),
                bfd: None,
                repeat: 1,
            },
        )
        .unwrap();
        let (report, runs) = rehearse::rehearse(&lab, &r, &file, &|s| eprintln!("  {s}"))
            .unwrap_or_else(|e| panic!("{failure:?}: {e:#}\n{}", lab.daemon_log()));
        eprint!("{}", report.text());
        let (json, svg) =
            rehearse::write(&dir.join(format!("{failure:?}")), &report, &runs).unwrap();
        assert!(json.exists() && svg.exists());
        let o = &report.outcomes[0];
        if o.disturbed.is_some() {
            eprintln!("note: the machine disturbed the run; the bounds stand regardless");
        }
        assert_eq!(
            o.surviving_lost, 0,
            "{failure:?}: the secondary's flows lose nothing"
        );
        assert_eq!(
            o.lost_after_return, 0,
            "{failure:?}: nothing lost after the return"
        );
        // The customer's traffic was seen on the MSEE, and where its router
        // kept to the secondary the primary's failure cost it nothing.
        let via = o.to_azure_via.as_deref();
        assert!(
            via.is_some(),
            "{failure:?}: the customer's traffic was seen"
        );
        if via == Some("secondary") {
            assert_eq!(
                o.to_azure_lost,
                Some(0),
                "{failure:?}: sent on the secondary, lost nothing"
            );
        }
        match failure {
            Failure::Carrier | Failure::Bgp => {
                assert!(
                    o.outage_ms_max < 10.0,
                    "{failure:?}: outage {} ms",
                    o.outage_ms_max
                );
            }
            Failure::Silent => {
                assert!(
                    o.outage_ms_max < 3.0 * 300.0 + 10.0,
                    "silent: {} ms",
                    o.outage_ms_max
                );
                assert_eq!(o.detection_source.as_deref(), Some("BFD down"));
            }
            Failure::Drain | Failure::BfdTimers => {
                assert_eq!(
                    o.to_customer_lost, 0,
                    "{failure:?}: nothing lost to the customer"
                );
                assert_eq!(
                    o.to_azure_lost,
                    Some(0),
                    "{failure:?}: nothing lost to Azure"
                );
            }
        }
        reports.push(report);
    }
    let namespaces = lab.lab().namespaces();
    drop(lab);
    for ns in namespaces {
        assert!(!msee_sys::netns::exists(&ns), "{ns} left behind");
    }
    assert!(!lab::estate::state_dir(&prefix).exists());
}
