//! Importing circuits from Azure's own JSON.

mod common;

use circuit::config::{Config, PeeringType, SkuTier};
use circuit::model::VlanTag;
use common::valid;

/// Shaped like `az network express-route list -o json` (abridged, with the
/// read-only fields and nulls az prints).
const AZ_LIST: &str = r#"[
  {
    "allowClassicOperations": false,
    "authorizations": [],
    "bandwidthInGbps": null,
    "circuitProvisioningState": "Enabled",
    "etag": "W/\"00000000-0000-0000-0000-000000000000\"",
    "expressRoutePort": null,
    "gatewayManagerEtag": "",
    "globalReachEnabled": false,
    "id": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/expressRouteCircuits/er-ams",
    "location": "westeurope",
    "name": "er-ams",
    "peerings": [
      {
        "azureASN": 12076,
        "connections": [
          {
            "addressPrefix": "172.31.0.0/29",
            "name": "gr-ams-lon",
            "peerExpressRouteCircuitPeering": {
              "id": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/expressRouteCircuits/er-lon/peerings/AzurePrivatePeering"
            },
            "provisioningState": "Succeeded"
          }
        ],
        "etag": "W/\"x\"",
        "gatewayManagerEtag": "",
        "id": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/expressRouteCircuits/er-ams/peerings/AzurePrivatePeering",
        "ipv6PeeringConfig": {
          "primaryPeerAddressPrefix": "2001:db8::/126",
          "secondaryPeerAddressPrefix": "2001:db8::4/126",
          "state": "Enabled"
        },
        "lastModifiedBy": "Customer",
        "microsoftPeeringConfig": null,
        "name": "AzurePrivatePeering",
        "peerASN": 65010,
        "peeringType": "AzurePrivatePeering",
        "primaryAzurePort": "",
        "primaryPeerAddressPrefix": "192.168.100.128/30",
        "provisioningState": "Succeeded",
        "resourceGroup": "rg",
        "routeFilter": null,
        "secondaryAzurePort": "",
        "secondaryPeerAddressPrefix": "192.168.100.132/30",
        "sharedKey": null,
        "state": "Enabled",
        "stats": null,
        "type": "Microsoft.Network/expressRouteCircuits/peerings",
        "vlanId": 100
      },
      {
        "azureASN": 12076,
        "connections": [],
        "microsoftPeeringConfig": {
          "advertisedCommunities": [],
          "advertisedPublicPrefixes": ["198.51.100.0/24"],
          "advertisedPublicPrefixesState": "Configured",
          "customerASN": 0,
          "legacyMode": 0,
          "routingRegistryName": "NONE"
        },
        "name": "MicrosoftPeering",
        "peerASN": 65010,
        "peeringType": "MicrosoftPeering",
        "primaryPeerAddressPrefix": "203.0.113.0/30",
        "secondaryPeerAddressPrefix": "203.0.113.4/30",
        "routeFilter": { "id": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/routeFilters/rf-office" },
        "sharedKey": "md5key",
        "state": "Enabled",
        "vlanId": 200
      }
    ],
    "provisioningState": "Succeeded",
    "resourceGroup": "rg",
    "serviceKey": "6f1c2c7e-0d55-4a3c-9b4e-1a2b3c4d5e01",
    "serviceProviderNotes": null,
    "serviceProviderProperties": {
      "bandwidthInMbps": 1000,
      "peeringLocation": "Amsterdam",
      "serviceProviderName": "Equinix"
    },
    "serviceProviderProvisioningState": "Provisioned",
    "sku": { "family": "MeteredData", "name": "Standard_MeteredData", "tier": "Standard" },
    "stag": 2,
    "tags": {},
    "type": "Microsoft.Network/expressRouteCircuits"
  }
]"#;

/// The REST shape: `properties` nested, inside a `value` list.
const REST_LIST: &str = r#"{
  "value": [
    {
      "name": "er-lon",
      "id": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/expressRouteCircuits/er-lon",
      "location": "uksouth",
      "sku": { "name": "Standard_UnlimitedData", "tier": "Standard", "family": "UnlimitedData" },
      "properties": {
        "serviceKey": "6f1c2c7e-0d55-4a3c-9b4e-1a2b3c4d5e02",
        "serviceProviderProperties": { "serviceProviderName": "BT", "peeringLocation": "London", "bandwidthInMbps": 500 },
        "serviceProviderProvisioningState": "Provisioned",
        "peerings": [
          {
            "name": "AzurePrivatePeering",
            "properties": {
              "peeringType": "AzurePrivatePeering",
              "peerASN": 65020,
              "primaryPeerAddressPrefix": "192.168.110.0/30",
              "secondaryPeerAddressPrefix": "192.168.110.4/30",
              "vlanId": 110,
              "azureASN": 12076
            }
          }
        ]
      }
    }
  ]
}"#;

fn rf_office() -> circuit::config::RouteFilter {
    circuit::config::RouteFilter {
        name: "rf-office".into(),
        rules: vec![circuit::config::RouteFilterRule {
            name: "r".into(),
            access: "Allow".into(),
            route_filter_rule_type: "Community".into(),
            communities: vec!["12076:5010".into()],
        }],
    }
}

#[test]
fn az_cli_output_imports_and_validates_with_a_rest_list() {
    let mut config = Config::from_azure_json(AZ_LIST).unwrap();
    let rest = Config::from_azure_json(REST_LIST).unwrap();
    config.circuits.extend(rest.circuits);
    config.route_filters.push(rf_office());
    let m = valid(&config);

    let ams = m.circuit("er-ams").unwrap();
    assert_eq!(ams.tier, SkuTier::Standard);
    assert_eq!(ams.bandwidth_mbps, 1000);
    let private = ams.peering(PeeringType::AzurePrivatePeering).unwrap();
    assert_eq!(private.vlan, VlanTag::Dot1Q(100));
    assert_eq!(private.primary.ipv4.msee.to_string(), "192.168.100.130");
    assert!(private.primary.ipv6.is_some());
    let ms = ams.peering(PeeringType::MicrosoftPeering).unwrap();
    assert_eq!(ms.shared_key.as_deref(), Some("md5key"));
    assert_eq!(ms.route_filter.as_deref(), Some("rf-office"));
    assert_eq!(ms.selected_communities.len(), 1);
    // The selected service's prefixes (the catalog's benchmarking ranges),
    // each with its service community: what the MSEE advertises.
    let exchange: circuit::community::Community = "12076:5010".parse().unwrap();
    assert_eq!(
        ms.service_routes,
        [
            ("198.18.10.0/24".parse().unwrap(), exchange),
            ("2001:2:0:5010::/64".parse().unwrap(), exchange)
        ]
    );
    assert!(private.service_routes.is_empty());
    let raw = &config.circuits[0].peerings[1].microsoft_peering_config;
    assert_eq!(
        raw.as_ref().unwrap().customer_asn,
        None,
        "customerASN 0 means none"
    );
    assert_eq!(raw.as_ref().unwrap().routing_registry_name, None);

    assert_eq!(m.circuit("er-lon").unwrap().peering_location, "London");
    assert!(circuit::reach::globally_reachable(&m, "er-ams", "er-lon"));
}

#[test]
fn imported_config_round_trips_through_toml() {
    let mut config = Config::from_azure_json(AZ_LIST).unwrap();
    config
        .circuits
        .extend(Config::from_azure_json(REST_LIST).unwrap().circuits);
    config.route_filters.push(rf_office());
    let text = config.to_toml_string().unwrap();
    assert!(text.contains("peerASN = 65010"), "{text}");
    let back = Config::from_toml_str(&text).unwrap();
    assert_eq!(back, config);
}

#[test]
fn direct_circuits_and_malformed_items_are_reported_with_paths() {
    let text = r#"[
      { "name": "direct", "sku": { "tier": "Premium", "family": "UnlimitedData" },
        "bandwidthInGbps": 10, "expressRoutePort": { "id": "/x/expressRoutePorts/p" }, "peerings": [] },
      { "name": "bad", "sku": { "tier": "Standard", "family": "MeteredData" },
        "serviceProviderProperties": { "peeringLocation": "Amsterdam", "bandwidthInMbps": 50 },
        "peerings": [ { "peeringType": "AzurePrivatePeering", "peerASN": "not a number" } ] }
    ]"#;
    let err = Config::from_azure_json(text).unwrap_err();
    let circuit::azure::AzureImportError::Unsupported(errors) = err else {
        panic!("{err}")
    };
    let paths: Vec<&str> = errors.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(paths, ["[0].serviceProviderProperties", "[1].peerings[0]"]);
}
