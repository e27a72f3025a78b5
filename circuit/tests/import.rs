//! Importing the user's own files: az output, REST bodies, peerings given
//! apart, deployment templates and the project's TOML, merged. The
//! fixtures under `tests/fixtures/` were written for these tests from the
//! shapes Microsoft documents (the REST API's examples, the az CLI how-tos,
//! the ExpressRoute quickstart template).

use circuit::config::{Config, PeeringType, ProvisioningState, SkuTier};
use circuit::import::{ImportErrors, Imported, Issue, import_texts};
use circuit::model::VlanTag;
use circuit::{Catalog, Model};

fn fixture(name: &str) -> String {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn import(names: &[&str]) -> Result<Imported, ImportErrors> {
    let texts: Vec<(String, String)> = names.iter().map(|n| (n.to_string(), fixture(n))).collect();
    let inputs: Vec<(&str, &str)> = texts
        .iter()
        .map(|(n, t)| (n.as_str(), t.as_str()))
        .collect();
    import_texts(&inputs)
}

/// Imports and validates, and checks that the printed TOML loads back to
/// the same config and the same model.
#[track_caller]
fn valid(names: &[&str]) -> (Imported, Model) {
    let imported = import(names).unwrap_or_else(|e| panic!("{names:?}: {e}"));
    let model = imported
        .validate(&Catalog::embedded())
        .unwrap_or_else(|e| panic!("{names:?}: {e}"));
    let toml = imported.to_toml().unwrap();
    let back = Config::from_toml_str(&toml).unwrap_or_else(|e| panic!("{e}\n{toml}"));
    assert_eq!(back, imported.config, "{toml}");
    assert_eq!(circuit::load_toml(&toml).unwrap(), model, "{toml}");
    (imported, model)
}

#[track_caller]
fn refused(names: &[&str]) -> Vec<Issue> {
    match import(names) {
        Ok(i) => panic!("{names:?} imported: {:#?}", i.config),
        Err(e) => e.0,
    }
}

fn texts(inputs: &[(&str, &str)]) -> Result<Imported, ImportErrors> {
    import_texts(inputs)
}

#[test]
fn az_show_and_list_merge_with_a_toml_file_of_vnets_and_route_filters() {
    let (imported, m) = valid(&["az-show.json", "az-list.json", "estate.toml"]);
    assert!(imported.notes.is_empty(), "{:?}", imported.notes);
    let names: Vec<&str> = m.circuits.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["er-ams", "er-lon", "er-tyo"]);

    let ams = m.circuit("er-ams").unwrap();
    assert_eq!((ams.tier, ams.bandwidth_mbps), (SkuTier::Standard, 1000));
    assert_eq!(ams.service_provider_name, "Equinix");
    let private = ams.peering(PeeringType::AzurePrivatePeering).unwrap();
    assert_eq!(private.vlan, VlanTag::Dot1Q(100));
    assert_eq!(private.peer_asn, 65010);
    assert_eq!(
        private.shared_key.as_ref().map(circuit::Secret::expose),
        Some("s3cret-md5")
    );
    assert_eq!(private.primary.ipv4.msee.to_string(), "192.168.100.130");
    assert_eq!(
        private.secondary.ipv6.unwrap().customer.to_string(),
        "2001:db8:100::5"
    );
    let ms = ams.peering(PeeringType::MicrosoftPeering).unwrap();
    assert_eq!(ms.vlan, VlanTag::Dot1Q(200));
    assert_eq!(ms.route_filter.as_deref(), Some("rf-office"));
    assert_eq!(ms.selected_communities.len(), 2);
    assert_eq!(
        ms.advertised_public_prefixes,
        ["198.51.100.0/24".parse().unwrap()]
    );
    // az prints an empty microsoftPeeringConfig on private peerings and
    // customerASN 0 / "NONE" for none: nothing of it is kept.
    let raw = &imported.config.circuits[0].peerings;
    assert_eq!(raw[0].microsoft_peering_config, None);
    let ms_raw = raw[1].microsoft_peering_config.as_ref().unwrap();
    assert_eq!(ms_raw.customer_asn, None);
    assert_eq!(ms_raw.routing_registry_name.as_deref(), Some("ARIN"));

    // Global Reach declared on er-lon's side, to er-ams by its peering id.
    assert_eq!(
        raw.len(),
        2,
        "the circuit-level stag of a provider circuit adds nothing"
    );
    assert_eq!(
        imported.config.circuits[1].peerings[0].connections[0].peer_express_route_circuit_peering,
        "er-ams/AzurePrivatePeering"
    );
    assert!(circuit::reach::globally_reachable(&m, "er-lon", "er-ams"));

    // The VNets and their links came from the TOML file.
    assert_eq!(ams.vnet_links, ["vnet-weu"]);
    assert_eq!(m.circuit("er-lon").unwrap().vnet_links, ["vnet-uks"]);
    let tyo = m.circuit("er-tyo").unwrap();
    assert_eq!(tyo.provisioning_state, ProvisioningState::NotProvisioned);
    assert!(tyo.peerings.is_empty());
    assert_eq!(
        imported
            .source("circuits[1].peerings[0].vlanId")
            .unwrap()
            .to_string(),
        "az-list.json at [0].peerings[0]"
    );
    assert_eq!(
        imported.source("connections[1]").unwrap().to_string(),
        "estate.toml at connections[1]"
    );
}

#[test]
fn a_circuit_document_alone_lacks_its_route_filter_and_says_where_it_came_from() {
    let imported = import(&["az-show.json"]).unwrap();
    let errors = imported.validate(&Catalog::embedded()).unwrap_err();
    let lines: Vec<String> = errors.0.iter().map(ToString::to_string).collect();
    assert_eq!(
        lines,
        [
            "circuits[0].peerings[1].routeFilter: unknown route filter \"rf-office\" (from az-show.json at peerings[1])"
        ]
    );
}

#[test]
fn a_rest_body_takes_its_peerings_from_separate_documents() {
    let (imported, m) = valid(&["arm-get.json", "peering-get.json", "az-peering-list.json"]);
    let sv = m.circuit("er-sv").unwrap();
    assert_eq!((sv.tier, sv.bandwidth_mbps), (SkuTier::Premium, 2000));
    assert_eq!(sv.peerings.len(), 2, "the private peering twice, once kept");
    let private = sv.peering(PeeringType::AzurePrivatePeering).unwrap();
    assert_eq!(
        (private.peer_asn, private.vlan),
        (4_200_000_001, VlanTag::Dot1Q(120))
    );
    let ms = sv.peering(PeeringType::MicrosoftPeering).unwrap();
    assert_eq!(
        ms.shared_key.as_ref().map(circuit::Secret::expose),
        Some("another-md5")
    );
    assert!(ms.primary.ipv6.is_some());
    let raw = &imported.config.circuits[0].peerings[1];
    assert_eq!(
        raw.microsoft_peering_config.as_ref().unwrap().customer_asn,
        Some(64496)
    );
    assert_eq!(
        raw.ipv6_peering_config
            .as_ref()
            .unwrap()
            .microsoft_peering_config
            .as_ref()
            .unwrap()
            .advertised_public_prefixes,
        ["2001:db8:5000::/48"]
    );
    // Where each peering came from: the first document that gave it.
    assert_eq!(
        imported
            .source("circuits[0].peerings[0]")
            .unwrap()
            .to_string(),
        "peering-get.json"
    );
    assert_eq!(
        imported
            .source("circuits[0].peerings[1]")
            .unwrap()
            .to_string(),
        "az-peering-list.json at [1]"
    );
    let notes: Vec<String> = imported.notes.iter().map(ToString::to_string).collect();
    assert_eq!(
        notes,
        ["az-peering-list.json: [1].state: the peering is Disabled in Azure; the emulator runs it"]
    );
}

#[test]
fn a_value_list_of_rest_bodies() {
    let (_, m) = valid(&["arm-list.json"]);
    let local = m.circuit("er-ams2-local").unwrap();
    assert_eq!(local.tier, SkuTier::Local);
    assert_eq!(local.reach, ["West Europe"]);
    assert_eq!(
        local.peerings[0].vlan,
        VlanTag::Dot1Q(150),
        "a peering nested in REST form"
    );
    let par = m.circuit("er-par").unwrap();
    assert_eq!(par.provisioning_state, ProvisioningState::Provisioning);
}

#[test]
fn a_template_with_its_parameters_file() {
    let (imported, m) = valid(&["template.json", "template.parameters.json"]);
    let wdc = m.circuit("er-wdc").unwrap();
    assert_eq!(
        wdc.bandwidth_mbps, 100,
        "the parameters file wins over defaultValue"
    );
    assert_eq!(wdc.tier, SkuTier::Premium);
    assert_eq!(wdc.peering_location, "Washington DC");
    let private = wdc.peering(PeeringType::AzurePrivatePeering).unwrap();
    assert_eq!(private.vlan, VlanTag::Dot1Q(300));
    assert_eq!(private.primary.ipv4.subnet.to_string(), "192.168.10.16/30");
    assert_eq!(
        private.secondary.ipv4.subnet.to_string(),
        "192.168.10.20/30"
    );
    assert_eq!(
        private.shared_key.as_ref().map(circuit::Secret::expose),
        Some("wdc-md5-key")
    );
    let ms = wdc.peering(PeeringType::MicrosoftPeering).unwrap();
    assert_eq!(ms.vlan, VlanTag::Dot1Q(301));
    assert_eq!(
        ms.advertised_public_prefixes,
        ["198.51.100.64/26".parse().unwrap()],
        "from a variable's object, its expression evaluated"
    );
    assert_eq!(ms.route_filter.as_deref(), Some("er-wdc-rf"));
    assert_eq!(
        ms.selected_communities,
        ["12076:5030".parse().unwrap()],
        "the rule is a child resource of the filter"
    );
    assert_eq!(wdc.vnet_links, ["vnet-eus"], "through the gateway's subnet");
    assert_eq!(m.virtual_network("vnet-eus").unwrap().region, "East US");
    assert_eq!(imported.config.connections[0].name, "vnet-eus-to-er-wdc");

    let direct = m.circuit("er-wdc-direct").unwrap();
    assert_eq!(direct.express_route_port.as_deref(), Some("erdirect-wdc"));
    assert_eq!(direct.peering_location, "Washington DC", "from the port");
    assert_eq!(direct.bandwidth_mbps, 1000);
    assert_eq!(direct.peerings[0].vlan, VlanTag::Dot1Q(310));

    // What a template cannot know is said, and visible in the TOML.
    let notes: Vec<String> = imported.notes.iter().map(ToString::to_string).collect();
    assert!(
        notes.contains(&"template.json: resources[1]: no serviceProviderProvisioningState (the provider sets it): Provisioned, as the emulated provider".to_string()),
        "{notes:#?}"
    );
    assert!(
        notes.iter().any(|n| n.starts_with(
            "template.json: resources[1]: no serviceKey (Azure assigns it): 00000000-0000-4000-8000-"
        )),
        "{notes:#?}"
    );
    assert!(
        notes.contains(&"template.json: resources: not imported, not part of what is emulated: Microsoft.Network/networkSecurityGroups, Microsoft.Network/publicIPAddresses".to_string()),
        "{notes:#?}"
    );
    assert_eq!(notes.len(), 5, "{notes:#?}");
    let toml = imported.to_toml().unwrap();
    assert!(
        toml.starts_with("# Imported from template.json, template.parameters.json.\n# note: template.json: resources[1]: no serviceKey"),
        "{toml}"
    );
    assert!(toml.contains(&format!(
        "serviceKey = \"{}\"",
        imported.config.circuits[0].service_key
    )));
}

#[test]
fn expressions_the_import_does_not_evaluate_are_refused_with_their_name_and_path() {
    let errors = refused(&["template-unsupported.json"]);
    let got: Vec<(&str, &str)> = errors
        .iter()
        .map(|e| (e.path.as_str(), e.message.as_str()))
        .collect();
    assert_eq!(got.len(), 2, "{errors:#?}");
    assert_eq!(got[0].0, "resources[0].name");
    assert!(
        got[0].1.contains("calls uniqueString()")
            && got[0].1.contains(
                "through variables.circuitName = \"[concat(parameters('prefix'), '-', uniqueString(resourceGroup().id))]\""
            ),
        "{}",
        got[0].1
    );
    assert_eq!(got[1].0, "resources[1].location");
    assert!(got[1].1.contains("calls resourceGroup()"), "{}", got[1].1);
    assert!(errors.iter().all(|e| e.file == "template-unsupported.json"));

    // The same template as template.json without its parameters file: the
    // VNet's region is the resource group's, which only a deployment knows.
    let errors = refused(&["template.json"]);
    let paths: Vec<&str> = errors.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "resources[1].resources[0].properties.sharedKey",
            "resources[4].location"
        ]
    );
    assert!(
        errors[0]
            .message
            .contains("parameter \"sharedKey\" has no defaultValue")
    );
    assert!(errors[1].message.contains(
        "(through parameters.location.defaultValue = \"[resourceGroup().location]\") calls resourceGroup()"
    ));
}

#[test]
fn a_direct_circuit_on_a_qinq_port_takes_its_stag_as_s_tag() {
    let (imported, m) = valid(&["direct-qinq.json"]);
    let c = m.circuit("er-fra-direct").unwrap();
    assert_eq!(c.express_route_port.as_deref(), Some("erdirect-fra"));
    assert_eq!(
        (c.peering_location.as_str(), c.bandwidth_mbps),
        ("Frankfurt", 5000)
    );
    let tags: Vec<VlanTag> = c.peerings.iter().map(|p| p.vlan).collect();
    assert_eq!(
        tags,
        [
            VlanTag::QinQ {
                s_tag: 401,
                c_tag: 10
            },
            VlanTag::QinQ {
                s_tag: 401,
                c_tag: 20
            }
        ]
    );
    assert_eq!(imported.config.express_route_ports[0].bandwidth_in_gbps, 10);

    // Without its stag (a template's circuit: Azure assigns it), a QinQ
    // circuit's tags are unknown: refused, not guessed.
    let text = fixture("direct-qinq.json").replace("\"stag\": 401,", "");
    let errors = texts(&[("d.json", &text)]).unwrap_err().0;
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert_eq!(errors[0].path, "[1]");
    assert!(errors[0].message.contains("is QinQ"), "{}", errors[0]);
    // Without its port, its location is unknown.
    let v: serde_json::Value = serde_json::from_str(&fixture("direct-qinq.json")).unwrap();
    let circuit_only = serde_json::to_string(&v[1]).unwrap();
    let errors = texts(&[("c.json", &circuit_only)]).unwrap_err().0;
    assert!(
        errors[0]
            .message
            .contains("port \"erdirect-fra\" is not among the inputs"),
        "{errors:#?}"
    );
}

#[test]
fn the_same_circuit_twice_with_different_content_is_refused_naming_both_files() {
    let show = fixture("az-show.json");
    let changed = show.replace("\"vlanId\": 100", "\"vlanId\": 101");
    let errors = texts(&[("a.json", &show), ("b.json", &changed)])
        .unwrap_err()
        .0;
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert_eq!(
        (errors[0].file.as_str(), errors[0].path.as_str()),
        ("b.json", "")
    );
    assert_eq!(
        errors[0].message,
        "circuit \"er-ams\" is also in a.json with different content: they differ at peerings[0].vlanId (100 vs 101); give it once, or the same in both"
    );
    // The same content twice is fine.
    let twice = texts(&[("a.json", &show), ("b.json", &show)]).unwrap();
    assert_eq!(twice.config.circuits.len(), 1);

    // The same circuit as az prints it and as the REST API sends it.
    let mut rest: serde_json::Value = serde_json::from_str(&show).unwrap();
    let mut properties = serde_json::Map::new();
    for key in [
        "serviceKey",
        "serviceProviderProperties",
        "serviceProviderProvisioningState",
        "peerings",
        "stag",
    ] {
        properties.insert(key.into(), rest[key].take());
    }
    let rest = serde_json::json!({"name": "er-ams", "sku": rest["sku"], "properties": properties});
    let rest = serde_json::to_string(&rest).unwrap();
    let both = texts(&[("show.json", &show), ("get.json", &rest)]).unwrap();
    assert_eq!(both.config.circuits.len(), 1);
    assert_eq!(
        both.source("circuits[0].peerings[1]").unwrap().to_string(),
        "show.json at peerings[1]"
    );

    // One peering fewer.
    let mut fewer: serde_json::Value = serde_json::from_str(&show).unwrap();
    fewer["peerings"].as_array_mut().unwrap().pop();
    let fewer = serde_json::to_string(&fewer).unwrap();
    let errors = texts(&[("a.json", &show), ("b.json", &fewer)])
        .unwrap_err()
        .0;
    assert!(
        errors[0]
            .message
            .contains("they differ at peerings (2 vs 1 items)"),
        "{errors:#?}"
    );

    // A separate peering that contradicts the one inside its circuit.
    let peering = fixture("peering-get.json").replace("\"vlanId\": 120", "\"vlanId\": 121");
    let errors = texts(&[
        ("get.json", &fixture("arm-get.json")),
        ("list.json", &fixture("az-peering-list.json")),
        ("peering.json", &peering),
    ])
    .unwrap_err()
    .0;
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert_eq!(errors[0].file, "peering.json");
    assert!(
        errors[0]
            .message
            .starts_with("peering \"er-sv/AzurePrivatePeering\" is also in list.json at [0]"),
        "{}",
        errors[0]
    );

    // A VNet in TOML and in another TOML, different.
    let a = "[[virtualNetworks]]\nname = \"v\"\nlocation = \"westeurope\"\naddressSpace = { addressPrefixes = [\"10.0.0.0/16\"] }\n";
    let b = a.replace("10.0.0.0/16", "10.1.0.0/16");
    let errors = texts(&[("a.toml", a), ("b.toml", &b)]).unwrap_err().0;
    assert_eq!(errors[0].path, "virtualNetworks[0]");
    assert!(
        errors[0]
            .message
            .contains("also in a.toml at virtualNetworks[0]")
    );
}

#[test]
fn read_only_fields_are_ignored_and_unknown_ones_refused_with_their_path() {
    let show = fixture("az-show.json")
        .replace("\"vlanId\": 200", "\"vlanId\": 200, \"fastPath\": true")
        .replace(
            "\"name\": \"er-ams\",",
            "\"name\": \"er-ams\", \"bandwidthPolicy\": \"x\",",
        );
    let errors = texts(&[("show.json", &show)]).unwrap_err().0;
    let paths: Vec<&str> = errors.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(paths, ["peerings[1].fastPath", "bandwidthPolicy"]);
    assert!(errors[0].message.starts_with("unknown field"));

    // In REST form the path goes through `properties`.
    let get = fixture("peering-get.json").replace("\"vlanId\": 120", "\"vlanId\": 120, \"odd\": 1");
    let errors = texts(&[("c.json", &fixture("arm-get.json")), ("p.json", &get)])
        .unwrap_err()
        .0;
    assert_eq!(
        errors[0].to_string(),
        "p.json: properties.odd: unknown field: it is neither imported nor known to be safe to ignore (remove it, or write the circuit in the project's TOML)"
    );
}

#[test]
fn what_azure_does_not_emulate_is_refused_not_dropped() {
    let show = fixture("az-show.json");
    let cases = [
        (
            show.replace(
                "\"legacyMode\": 0,\n        \"routingRegistryName\": \"ARIN\"",
                "\"legacyMode\": 1,\n        \"routingRegistryName\": \"ARIN\"",
            ),
            "peerings[1].microsoftPeeringConfig.legacyMode",
            "is not emulated",
        ),
        (
            show.replace("\"tier\": \"Standard\"", "\"tier\": \"Basic\""),
            "sku.tier",
            "\"Basic\" is not an ExpressRoute tier",
        ),
        (
            show.replacen(
                "\"peeringType\": \"AzurePrivatePeering\"",
                "\"peeringType\": \"AzurePublicPeering\"",
                1,
            ),
            "peerings[0].peeringType",
            "public peering was retired",
        ),
    ];
    for (text, path, needle) in cases {
        let errors = texts(&[("show.json", &text)]).unwrap_err().0;
        assert!(
            errors
                .iter()
                .any(|e| e.path == path && e.message.contains(needle)),
            "{path}: {errors:#?}"
        );
    }
}

#[test]
fn separate_documents_must_name_their_parents() {
    // A peering PUT body has no id: its circuit is unknown.
    let put = r#"{"properties": {"peerASN": 200, "primaryPeerAddressPrefix": "192.168.16.252/30",
        "secondaryPeerAddressPrefix": "192.168.18.252/30", "vlanId": 200}}"#;
    let errors = texts(&[("put.json", put)]).unwrap_err().0;
    assert!(
        errors[0]
            .message
            .contains("no id, so the circuit it belongs to is unknown"),
        "{errors:#?}"
    );
    // The same body with its id names the circuit and the peering (the
    // type is the peering's name), but that circuit is not given.
    let v: serde_json::Value = serde_json::from_str(put).unwrap();
    let mut v = v.as_object().unwrap().clone();
    v.insert(
        "id".into(),
        "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/expressRouteCircuits/nowhere/peerings/AzurePrivatePeering".into(),
    );
    let with_id = serde_json::to_string(&v).unwrap();
    let errors = texts(&[("put.json", &with_id)]).unwrap_err().0;
    assert_eq!(
        errors[0].message,
        "its circuit \"nowhere\" is not among the inputs: give the circuit's document too (az network express-route show)"
    );

    // A connection whose gateway is not given: its VNet is unknown.
    let conn = r#"{"name": "c1", "type": "Microsoft.Network/connections", "location": "westeurope",
        "properties": {"connectionType": "ExpressRoute", "routingWeight": 0,
          "virtualNetworkGateway1": {"id": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/virtualNetworkGateways/gw"},
          "peer": {"id": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/expressRouteCircuits/er-ams"}}}"#;
    let errors = texts(&[("show.json", &fixture("az-show.json")), ("conn.json", conn)])
        .unwrap_err()
        .0;
    assert!(
        errors[0]
            .message
            .contains("its gateway \"gw\" is not among the inputs"),
        "{errors:#?}"
    );

    // A parameters file goes after its template.
    let errors = refused(&["template.parameters.json", "template.json"]);
    assert_eq!(errors[0].file, "template.parameters.json");
    assert!(
        errors[0]
            .message
            .contains("applies to the template given before it")
    );
}

#[test]
fn the_project_files_still_load_alone_and_whole() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/lab.toml");
    let text = std::fs::read_to_string(path).unwrap();
    let imported = texts(&[("lab.toml", &text)]).unwrap();
    assert_eq!(imported.config, Config::from_toml_str(&text).unwrap());
    assert!(imported.notes.is_empty());
    assert_eq!(
        imported.validate(&Catalog::embedded()).unwrap(),
        circuit::load_toml(&text).unwrap()
    );
    // A project file's errors keep their plain path when it is the only
    // input.
    let broken = text.replace("vlanId = 110", "vlanId = 5000");
    let errors = texts(&[("lab.toml", &broken)])
        .unwrap()
        .validate(&Catalog::embedded())
        .unwrap_err();
    assert!(
        errors.0.iter().all(|e| !e.message.contains("(from ")),
        "{errors}"
    );
    // TOML and JSON parse errors name the file.
    let errors = texts(&[("lab.toml", "[[circuits]\n")]).unwrap_err().0;
    assert_eq!(errors[0].file, "lab.toml");
    let errors = texts(&[("x.json", "{\"name\": ")]).unwrap_err().0;
    assert!(errors[0].message.starts_with("JSON: "), "{errors:#?}");
}
