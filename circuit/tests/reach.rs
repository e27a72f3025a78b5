//! Reach per SKU, VNet routes with region communities, Global Reach pairs.

mod common;

use circuit::Catalog;
use circuit::config::SkuTier;
use circuit::reach::{
    global_reach_peers, globally_reachable, regions_reached, unreachable_vnets, vnet_routes,
};
use common::*;

fn reached(location: &str, tier: SkuTier) -> Vec<String> {
    let catalog = Catalog::embedded();
    let loc = catalog.peering_location(location).unwrap();
    regions_reached(&catalog, loc, tier)
        .into_iter()
        .map(|r| r.name.clone())
        .collect()
}

#[test]
fn amsterdam_local_reaches_west_europe_only() {
    assert_eq!(reached("Amsterdam", SkuTier::Local), ["West Europe"]);
}

#[test]
fn amsterdam_standard_reaches_every_european_region() {
    let r = reached("Amsterdam", SkuTier::Standard);
    assert!(r.contains(&"West Europe".to_string()));
    assert!(r.contains(&"North Europe".to_string()));
    assert!(r.contains(&"UK South".to_string()));
    assert!(!r.contains(&"East US".to_string()));
    let catalog = Catalog::embedded();
    let europe = catalog
        .regions
        .iter()
        .filter(|r| r.area == "Europe")
        .count();
    assert_eq!(r.len(), europe);
}

#[test]
fn amsterdam_premium_reaches_every_global_region_but_no_national_cloud() {
    let r = reached("Amsterdam", SkuTier::Premium);
    let catalog = Catalog::embedded();
    assert_eq!(
        r.len(),
        catalog.regions.iter().filter(|r| !r.national).count()
    );
    for region in [
        "East US",
        "Japan East",
        "Brazil South",
        "Australia East",
        "West Europe",
    ] {
        assert!(r.contains(&region.to_string()), "{region}");
    }
    assert!(!r.iter().any(|n| n.starts_with("US Gov")));
}

#[test]
fn washington_dc_local_reaches_two_regions() {
    assert_eq!(
        reached("Washington DC", SkuTier::Local),
        ["East US", "East US 2"]
    );
}

#[test]
fn national_cloud_circuits_stay_in_their_cloud() {
    assert_eq!(reached("Phoenix Gov", SkuTier::Local), ["US Gov Arizona"]);
    let premium = reached("Phoenix Gov", SkuTier::Premium);
    assert_eq!(
        premium,
        [
            "US Gov Arizona",
            "US Gov Iowa",
            "US Gov Virginia",
            "US Gov Texas",
            "US DoD Central",
            "US DoD East"
        ]
    );
    // The global cloud's Phoenix is another location: Local reaches West US 3.
    assert_eq!(reached("Phoenix", SkuTier::Local), ["West US 3"]);
}

#[test]
fn model_carries_reach_and_routes_vnets_in_reach_with_region_community() {
    let mut c = base();
    c.virtual_networks.push(vnet(
        "weu",
        "West Europe",
        &["10.1.0.0/16", "2001:db8:1::/48"],
    ));
    c.virtual_networks
        .push(vnet("neu", "northeurope", &["10.2.0.0/16"]));
    c.virtual_networks
        .push(vnet("eus", "East US", &["10.3.0.0/16"]));
    c.connections.push(link("a", "weu", "c0"));
    c.connections.push(link("b", "neu", "c0"));
    c.connections.push(link("c", "eus", "c0"));

    // Standard in Amsterdam: West and North Europe routed, East US not.
    let m = valid(&c);
    let circuit = &m.circuits[0];
    assert!(circuit.reaches("North Europe") && !circuit.reaches("East US"));
    let routes = vnet_routes(&m, circuit);
    let got: Vec<(String, String)> = routes
        .iter()
        .map(|r| (r.prefix.to_string(), r.community.to_string()))
        .collect();
    assert_eq!(
        got,
        [
            ("10.1.0.0/16".to_string(), "12076:51002".to_string()),
            ("2001:db8:1::/48".to_string(), "12076:51002".to_string()),
            ("10.2.0.0/16".to_string(), "12076:51003".to_string()),
        ]
    );
    assert_eq!(unreachable_vnets(&m, circuit), ["eus"]);
    assert_eq!(m.warnings.len(), 1);
    assert!(
        m.warnings[0].starts_with(
            "connections[2]: virtual network \"eus\" is in East US, outside the reach"
        )
    );

    // Local: only West Europe.
    c.circuits[0].sku.tier = SkuTier::Local;
    let m = valid(&c);
    let routed: Vec<String> = vnet_routes(&m, &m.circuits[0])
        .iter()
        .map(|r| r.virtual_network.clone())
        .collect();
    assert_eq!(routed, ["weu", "weu"]);
    assert_eq!(unreachable_vnets(&m, &m.circuits[0]), ["neu", "eus"]);

    // Premium: all three, East US with its community.
    c.circuits[0].sku.tier = SkuTier::Premium;
    let m = valid(&c);
    let routes = vnet_routes(&m, &m.circuits[0]);
    assert_eq!(routes.len(), 4);
    assert_eq!(routes[3].region, "East US");
    assert_eq!(routes[3].community.to_string(), "12076:51004");
    assert!(m.warnings.is_empty());
}

#[test]
fn global_reach_is_not_transitive() {
    let mut c = base();
    c.circuits.push(circuit(1, "London", SkuTier::Standard));
    c.circuits.push(circuit(2, "Dublin", SkuTier::Standard));
    // c0 - c1 and c1 - c2
    c.circuits[0].peerings[0]
        .connections
        .push(global_reach("ab", "172.31.0.0/29", "c1"));
    c.circuits[1].peerings[0]
        .connections
        .push(global_reach("bc", "172.31.0.8/29", "c2"));
    let m = valid(&c);
    assert!(globally_reachable(&m, "c0", "c1"));
    assert!(globally_reachable(&m, "c1", "c0"), "a pair works both ways");
    assert!(globally_reachable(&m, "c1", "c2"));
    assert!(
        !globally_reachable(&m, "c0", "c2"),
        "A-B and B-C do not give A-C"
    );
    assert_eq!(global_reach_peers(&m, "c1"), ["c0", "c2"]);
    assert_eq!(global_reach_peers(&m, "c0"), ["c1"]);
}

#[test]
fn global_reach_pair_is_normalised_and_accepts_arm_ids() {
    let mut c = base();
    c.circuits.push(circuit(1, "London", SkuTier::Standard));
    c.circuits[1].peerings[0].connections.push(global_reach(
        "gr",
        "172.31.0.0/29",
        "/subscriptions/x/resourceGroups/y/providers/Microsoft.Network/expressRouteCircuits/c0/peerings/AzurePrivatePeering",
    ));
    let m = valid(&c);
    let p = &m.global_reach[0];
    assert_eq!(
        (p.a.as_str(), p.b.as_str(), p.name.as_str()),
        ("c0", "c1", "gr")
    );
}

#[test]
fn premium_in_china_reaches_both_chinese_areas_and_nothing_else() {
    let r = reached("Shanghai", SkuTier::Premium);
    assert!(r.contains(&"China East".to_string()), "{r:?}");
    assert!(r.contains(&"China North".to_string()), "{r:?}");
    assert!(!r.contains(&"West Europe".to_string()), "{r:?}");
    assert!(!r.iter().any(|n| n.contains("Gov")), "{r:?}");
    let standard = reached("Shanghai", SkuTier::Standard);
    assert!(
        !standard.contains(&"China North".to_string()),
        "{standard:?}"
    );
}
