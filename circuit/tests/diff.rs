//! Reload diffs between two validated configs.

mod common;

use circuit::config::{PeeringType, SkuTier};
use circuit::diff;
use circuit::model::{AddressFamily, LinkRole, SessionKey};
use common::*;

fn key(circuit: &str, peering: PeeringType, link: LinkRole) -> SessionKey {
    SessionKey {
        circuit: circuit.into(),
        peering_type: peering,
        link,
        family: AddressFamily::Ipv4,
    }
}

#[test]
fn identical_configs_have_an_empty_diff() {
    let m = valid(&base());
    let d = diff(&m, &m);
    assert!(d.is_empty());
    assert_eq!(d.circuits.unchanged, ["c0"]);
    assert_eq!(d.sessions.unchanged.len(), 2);
}

#[test]
fn bandwidth_change_touches_the_circuit_only() {
    let old = base();
    let mut new = old.clone();
    new.circuits[0]
        .service_provider_properties
        .bandwidth_in_mbps = 2000;
    let d = diff(&valid(&old), &valid(&new));
    assert_eq!(d.circuits.changed.len(), 1);
    assert_eq!(d.circuits.changed[0].name, "c0");
    assert_eq!(
        d.circuits.changed[0].fields,
        ["serviceProviderProperties.bandwidthInMbps"]
    );
    assert!(
        d.peerings.is_empty(),
        "no peering touched: bandwidth scales in place"
    );
    assert!(d.sessions.is_empty());
}

#[test]
fn upgrade_to_premium_changes_limits_in_place() {
    let old = base();
    let mut new = old.clone();
    new.circuits[0].sku.tier = SkuTier::Premium;
    let d = diff(&valid(&old), &valid(&new));
    assert_eq!(d.circuits.changed[0].fields, ["sku.tier", "reach"]);
    assert_eq!(
        d.peerings.changed,
        [("c0".to_string(), PeeringType::AzurePrivatePeering)]
    );
    assert_eq!(d.sessions.changed.len(), 2);
    for s in &d.sessions.changed {
        assert_eq!(s.fields, ["maxPrefixes"]);
        assert!(!s.reset, "a new prefix limit needs no session reset");
    }
}

#[test]
fn asn_change_resets_the_sessions() {
    let old = base();
    let mut new = old.clone();
    new.circuits[0].peerings[0].peer_asn = 65002;
    let d = diff(&valid(&old), &valid(&new));
    assert!(d.circuits.changed.is_empty());
    assert_eq!(d.sessions.changed.len(), 2);
    assert!(
        d.sessions
            .changed
            .iter()
            .all(|s| s.reset && s.fields == ["peerASN"])
    );
}

#[test]
fn bfd_toggle_is_in_place() {
    let old = base();
    let mut new = old.clone();
    new.circuits[0].peerings[0].bfd.enabled = false;
    let d = diff(&valid(&old), &valid(&new));
    assert!(
        d.sessions
            .changed
            .iter()
            .all(|s| !s.reset && s.fields == ["bfd"])
    );
    // New timers are applied in place too (BFD's poll sequence).
    let mut new = old.clone();
    new.circuits[0].peerings[0].bfd.interval_ms = 50;
    let d = diff(&valid(&old), &valid(&new));
    assert!(!d.sessions.changed.is_empty());
    assert!(
        d.sessions
            .changed
            .iter()
            .all(|s| !s.reset && s.fields == ["bfd"])
    );
}

#[test]
fn secondary_address_change_touches_only_the_secondary_session() {
    let old = base();
    let mut new = old.clone();
    new.circuits[0].peerings[0].secondary_peer_address_prefix = Some("192.168.100.136/30".into());
    let d = diff(&valid(&old), &valid(&new));
    assert_eq!(d.sessions.changed.len(), 1);
    let s = &d.sessions.changed[0];
    assert_eq!(
        s.key,
        key("c0", PeeringType::AzurePrivatePeering, LinkRole::Secondary)
    );
    assert_eq!(s.fields, ["localAddress", "peerAddress"]);
    assert!(s.reset);
    assert_eq!(
        d.sessions.unchanged,
        [key(
            "c0",
            PeeringType::AzurePrivatePeering,
            LinkRole::Primary
        )]
    );
}

#[test]
fn added_peering_adds_its_sessions() {
    let old = base();
    let mut new = old.clone();
    new.circuits[0].peerings.push(microsoft_peering());
    let d = diff(&valid(&old), &valid(&new));
    assert_eq!(
        d.peerings.added,
        [("c0".to_string(), PeeringType::MicrosoftPeering)]
    );
    assert_eq!(
        d.peerings.unchanged,
        [("c0".to_string(), PeeringType::AzurePrivatePeering)]
    );
    assert_eq!(
        d.sessions.added,
        [
            key("c0", PeeringType::MicrosoftPeering, LinkRole::Primary),
            key("c0", PeeringType::MicrosoftPeering, LinkRole::Secondary),
        ]
    );
    assert!(d.circuits.changed.is_empty());
    // and the reverse removes them
    let d = diff(&valid(&new), &valid(&old));
    assert_eq!(
        d.peerings.removed,
        [("c0".to_string(), PeeringType::MicrosoftPeering)]
    );
    assert_eq!(d.sessions.removed.len(), 2);
}

#[test]
fn added_and_removed_circuits() {
    let old = base();
    let mut new = old.clone();
    new.circuits[0] = circuit(1, "London", SkuTier::Standard);
    let d = diff(&valid(&old), &valid(&new));
    assert_eq!(d.circuits.added, ["c1"]);
    assert_eq!(d.circuits.removed, ["c0"]);
    assert_eq!(d.sessions.added.len(), 2);
    assert_eq!(d.sessions.removed.len(), 2);
    assert!(d.sessions.unchanged.is_empty());
}

#[test]
fn vnet_links_and_global_reach_changes() {
    let mut old = base();
    old.circuits.push(circuit(1, "London", SkuTier::Standard));
    old.virtual_networks
        .push(vnet("weu", "West Europe", &["10.1.0.0/16"]));
    let mut new = old.clone();
    new.connections.push(link("l", "weu", "c0"));
    new.circuits[0].peerings[0]
        .connections
        .push(global_reach("gr", "172.31.0.0/29", "c1"));
    let (mo, mn) = (valid(&old), valid(&new));
    let d = diff(&mo, &mn);
    assert_eq!(d.vnet_links.added, [("c0".to_string(), "weu".to_string())]);
    assert_eq!(d.global_reach.added.len(), 1);
    assert_eq!(
        (
            d.global_reach.added[0].a.as_str(),
            d.global_reach.added[0].b.as_str()
        ),
        ("c0", "c1")
    );
    assert_eq!(d.circuits.changed[0].fields, ["vnetLinks"]);
    assert!(d.virtual_networks.is_empty());
    assert!(
        d.sessions.is_empty(),
        "Global Reach and VNet links leave BGP sessions alone"
    );

    // The /29 of an existing pair changes.
    let mut newer = new.clone();
    newer.circuits[0].peerings[0].connections[0].address_prefix = "172.31.0.8/29".into();
    let d = diff(&mn, &valid(&newer));
    assert_eq!(d.global_reach.changed.len(), 1);
    assert_eq!(
        d.global_reach.changed[0].address_prefix.to_string(),
        "172.31.0.8/29"
    );

    // VNet prefixes change.
    let mut newer = new.clone();
    newer.virtual_networks[0]
        .address_space
        .address_prefixes
        .push("10.2.0.0/16".into());
    let d = diff(&mn, &valid(&newer));
    assert_eq!(d.virtual_networks.changed, ["weu"]);
    assert!(d.vnet_links.is_empty());

    // Everything removed again.
    let d = diff(&mn, &mo);
    assert_eq!(d.vnet_links.removed.len(), 1);
    assert_eq!(d.global_reach.removed.len(), 1);
}
