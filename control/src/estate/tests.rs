use std::collections::BTreeMap;

use circuit::model::{LinkRole as Role, Model, PeeringType, VlanTag};

use super::*;

fn example() -> Model {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../circuit/examples/lab.toml"
    ))
    .unwrap();
    circuit::load_toml(&text).unwrap()
}

fn iface(name: &str, ifindex: u32, addrs: &[(&str, u8)]) -> Interface {
    let mut i = Interface {
        name: name.to_owned(),
        ifindex,
        mac: [2, 0, 0, 0, 0, ifindex as u8],
        addrs: Vec::new(),
        addrs6: Vec::new(),
        carrier: true,
        xdp_prog: None,
    };
    for (a, len) in addrs {
        match a.parse::<IpAddr>().unwrap() {
            IpAddr::V4(a) => i.addrs.push((a, *len)),
            IpAddr::V6(a) => i.addrs6.push((a, *len)),
        }
    }
    i
}

/// Every port of the example's lab: the provider pair, the Direct pair,
/// a port per VNet and the Microsoft edge.
fn full_ports() -> (PortMap, BTreeMap<String, Interface>) {
    let mut ifaces = BTreeMap::new();
    let mut add = |i: Interface| {
        ifaces.insert(i.name.clone(), i);
    };
    add(iface("primary", 10, &[]));
    add(iface("secondary", 11, &[]));
    add(iface("d0-pri", 12, &[]));
    add(iface("d0-sec", 13, &[]));
    let vnets = ["vnet-weu", "vnet-neu", "vnet-eus", "vnet-jpe"];
    for (n, v) in vnets.iter().enumerate() {
        add(iface(
            &format!("vnet{n}"),
            20 + n as u32,
            &[(&format!("100.127.{n}.1"), 30)],
        ));
        let _ = v;
    }
    add(iface("microsoft", 30, &[("100.127.255.1", 30)]));
    let ports = PortMap {
        provider: Some(["primary".into(), "secondary".into()]),
        direct: [(
            "erdirect-ams".to_owned(),
            ["d0-pri".into(), "d0-sec".into()],
        )]
        .into(),
        azure: None,
        vnets: vnets
            .iter()
            .enumerate()
            .map(|(n, v)| (v.to_string(), format!("vnet{n}")))
            .collect(),
        microsoft: Some("microsoft".into()),
    };
    (ports, ifaces)
}

fn plan_with(
    model: &Model,
    ports: &PortMap,
    ifaces: &BTreeMap<String, Interface>,
    tagged: bool,
    only: &[String],
    ids: &mut IdBook,
) -> Result<Plan> {
    plan(
        &Inputs {
            model: Some(model),
            ports,
            ifaces,
            tagged,
            only,
            routes: &[],
            bandwidth_override_bps: None,
        },
        ids,
    )
}

fn customer(circuit: &str, peering: PeeringType, role: Role) -> Side {
    Side::Customer {
        circuit: circuit.to_owned(),
        peering,
        role,
    }
}

const PRIVATE: PeeringType = PeeringType::AzurePrivatePeering;
const MICROSOFT: PeeringType = PeeringType::MicrosoftPeering;

#[test]
fn every_circuit_of_the_file_runs_on_its_port_pair_with_its_tags() {
    let model = example();
    let (ports, ifaces) = full_ports();
    let plan = plan_with(&model, &ports, &ifaces, true, &[], &mut IdBook::default()).unwrap();
    let names: Vec<&str> = plan.circuits.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "er-ams-std",
            "er-lon-std",
            "er-sv-prem",
            "er-direct-prem",
            "er-ams-local"
        ]
    );
    assert!(
        plan.notes
            .iter()
            .any(|n| n.contains("er-tokyo-new") && n.contains("no peerings")),
        "{:?}",
        plan.notes
    );
    // Two links per peering (7 peerings), four VNet ports, the Microsoft edge.
    assert_eq!(plan.links.len(), 7 * 2 + 4 + 1);
    assert_eq!(plan.peerings.len(), 7);
    // Provider circuits on the provider pair, the Direct one on its pair,
    // each peering on its own tags.
    let l = plan
        .link_of(&customer("er-ams-std", MICROSOFT, Role::Secondary))
        .unwrap();
    assert_eq!(l.iface.name, "secondary");
    assert_eq!(l.tags, Some(VlanTags::dot1q(200)));
    assert_eq!(l.neighbour, Some("203.0.113.5".parse().unwrap()));
    assert_eq!(l.addrs, vec![("203.0.113.6".parse().unwrap(), 30)]);
    assert_eq!(l.police_bps, Some(1_000_000_000));
    let d = plan
        .link_of(&customer("er-direct-prem", PRIVATE, Role::Primary))
        .unwrap();
    assert_eq!(d.iface.name, "d0-pri");
    assert_eq!(d.tags, Some(VlanTags::double_dot1q(400, 10)));
    assert_eq!(d.police_bps, Some(10_000_000_000));
    // IPv6 where the peering has it.
    let v6 = plan
        .link_of(&customer("er-ams-std", PRIVATE, Role::Primary))
        .unwrap();
    assert_eq!(v6.neighbour6, Some("2001:db8:100::1".parse().unwrap()));
    assert_eq!(v6.addrs.len(), 2);
    // The Azure side: neighbours at the other end of each /30.
    let weu = plan.link_of(&Side::Vnet("vnet-weu".into())).unwrap();
    assert_eq!(weu.neighbour, Some("100.127.0.2".parse().unwrap()));
    assert_eq!(weu.role, LinkRole::Azure);
    assert_eq!(weu.police_bps, None);
    // Link ids are unique and every attachment is distinct.
    let mut ids: Vec<u32> = plan.links.iter().map(|l| l.id).collect();
    ids.dedup();
    assert_eq!(ids.len(), plan.links.len());
    // Circuit ids from 1, in file order.
    assert_eq!(plan.circuit("er-ams-std").unwrap().id, 1);
    assert_eq!(
        plan.circuit("er-direct-prem").unwrap().port_pair,
        "erdirect-ams"
    );
}

#[test]
fn circuits_without_their_ports_are_noted_not_run() {
    let model = example();
    let (mut ports, ifaces) = full_ports();
    ports.direct.clear();
    let plan = plan_with(&model, &ports, &ifaces, true, &[], &mut IdBook::default()).unwrap();
    assert!(plan.circuit("er-direct-prem").is_none());
    assert!(
        plan.notes
            .iter()
            .any(|n| n.contains("er-direct-prem") && n.contains("--direct erdirect-ams=")),
        "{:?}",
        plan.notes
    );
    ports.provider = None;
    let e = plan_with(&model, &ports, &ifaces, true, &[], &mut IdBook::default())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("no circuit can run here") && e.contains("--primary"),
        "{e}"
    );
}

#[test]
fn untagged_runs_one_circuits_private_peering_and_shares_its_domain_with_azure() {
    let model = example();
    let (mut ports, mut ifaces) = full_ports();
    // Untagged, a circuit's Microsoft peering is noted, not run.
    let mut azure_ports = ports.clone();
    azure_ports.vnets.clear();
    azure_ports.microsoft = None;
    azure_ports.azure = Some("azure".into());
    let mut with_azure = ifaces.clone();
    with_azure.insert("azure".into(), iface("azure", 40, &[("10.255.0.1", 30)]));
    let plan = plan_with(
        &model,
        &azure_ports,
        &with_azure,
        false,
        &["er-ams-std".into()],
        &mut IdBook::default(),
    )
    .unwrap();
    assert_eq!(plan.peerings.len(), 1);
    assert!(
        plan.notes
            .iter()
            .any(|n| n.contains("MicrosoftPeering not run") && n.contains("--tagged")),
        "{:?}",
        plan.notes
    );
    let e = plan_with(&model, &ports, &ifaces, false, &[], &mut IdBook::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("--tagged"), "{e}");
    ports.vnets.clear();
    ports.microsoft = None;
    ports.azure = Some("azure".into());
    ifaces.insert("azure".into(), iface("azure", 40, &[("10.255.0.1", 30)]));
    let plan = plan_with(
        &model,
        &ports,
        &ifaces,
        false,
        &["er-ams-local".into()],
        &mut IdBook::default(),
    )
    .unwrap();
    assert_eq!(plan.links.len(), 3);
    assert!(plan.links.iter().all(|l| l.tags.is_none()));
    assert_eq!(
        plan.links.iter().map(|l| l.id).collect::<Vec<_>>(),
        [0, 1, 2],
        "primary, secondary, azure"
    );
    // One circuit without Global Reach: the customer side and the Azure
    // side look routes up in one domain (each route written once).
    assert_eq!(plan.domains.len(), 1);
    assert!(plan.links.iter().all(|l| l.domain == plan.domains[0].id));
    let unknown = plan_with(
        &model,
        &ports,
        &ifaces,
        false,
        &["nope".into()],
        &mut IdBook::default(),
    )
    .unwrap_err()
    .to_string();
    assert!(
        unknown.contains("\"nope\"") && unknown.contains("er-ams-std"),
        "{unknown}"
    );
}

#[test]
fn global_reach_is_not_transitive_and_vnets_out_of_reach_are_marked() {
    let model = example();
    let (ports, ifaces) = full_ports();
    let plan = plan_with(&model, &ports, &ifaces, true, &[], &mut IdBook::default()).unwrap();
    let key = |c: &str| {
        let p = plan.peering(c, PRIVATE).unwrap();
        plan.domain(p.domain).unwrap().key.clone()
    };
    // ams-lon and sv-direct are the example's Global Reach pairs.
    let learned = |c: &str| {
        key(c)
            .learned
            .iter()
            .map(|(c, _)| c.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(learned("er-ams-std"), ["er-ams-std", "er-lon-std"]);
    assert_eq!(learned("er-lon-std"), ["er-ams-std", "er-lon-std"]);
    assert_eq!(learned("er-sv-prem"), ["er-direct-prem", "er-sv-prem"]);
    assert_eq!(learned("er-ams-local"), ["er-ams-local"]);
    // The Local circuit reaches West Europe only; vnet-weu is in reach.
    let local = plan.peering("er-ams-local", PRIVATE).unwrap();
    let statics = &plan.domain(local.domain).unwrap().statics;
    let weu_link = plan.link_of(&Side::Vnet("vnet-weu".into())).unwrap().id;
    assert_eq!(
        statics.get(&"10.10.0.0/16".parse().unwrap()),
        Some(&StaticTarget::Links(vec![weu_link]))
    );
    // er-sv-prem links vnet-eus and vnet-jpe, both in a Premium's reach;
    // er-ams-std links vnet-neu (Europe: in reach).
    let sv = plan
        .domain(plan.peering("er-sv-prem", PRIVATE).unwrap().domain)
        .unwrap();
    assert!(matches!(
        sv.statics.get(&"10.40.0.0/16".parse().unwrap()),
        Some(StaticTarget::Links(_))
    ));
    // A Local circuit linked to a VNet outside its metro: out of reach.
    let mut model = model;
    let local = model
        .circuits
        .iter_mut()
        .find(|c| c.name == "er-ams-local")
        .unwrap();
    local.vnet_links.push("vnet-eus".into());
    let plan = plan_with(&model, &ports, &ifaces, true, &[], &mut IdBook::default()).unwrap();
    let local = plan
        .domain(plan.peering("er-ams-local", PRIVATE).unwrap().domain)
        .unwrap();
    assert_eq!(
        local.statics.get(&"10.30.0.0/16".parse().unwrap()),
        Some(&StaticTarget::OutOfReach)
    );
    // vnet-eus's own domain holds er-sv-prem's customers, not the Local one's.
    let eus = plan.link_of(&Side::Vnet("vnet-eus".into())).unwrap();
    let eus_key = &plan.domain(eus.domain).unwrap().key;
    assert!(
        eus_key
            .learned
            .contains(&("er-sv-prem".to_owned(), PRIVATE))
    );
    assert!(
        !eus_key
            .learned
            .contains(&("er-ams-local".to_owned(), PRIVATE))
    );
}

#[test]
fn what_is_advertised_is_what_is_forwarded_for_every_circuit() {
    let model = example();
    let (ports, ifaces) = full_ports();
    let plan = plan_with(&model, &ports, &ifaces, true, &[], &mut IdBook::default()).unwrap();
    let sides: Vec<(Side, u32)> = plan.links.iter().map(|l| (l.side.clone(), l.id)).collect();
    let azure_side: BTreeSet<u32> = plan
        .links
        .iter()
        .filter(|l| l.role == LinkRole::Azure)
        .map(|l| l.id)
        .collect();
    let mut checked = 0;
    for p in &plan.peerings {
        let c = model.circuit(&p.circuit).unwrap();
        let mut notes = Vec::new();
        let advertised: BTreeSet<IpNet> =
            domains::model_routes(&model, c, p.peering_type, &sides, &mut notes)
                .into_iter()
                .filter(|r| r.advertised.is_some())
                .map(|r| r.prefix)
                .collect();
        let forwarded: BTreeSet<IpNet> = plan
            .domain(p.domain)
            .unwrap()
            .statics
            .iter()
            .filter(|(_, t)| matches!(t, StaticTarget::Links(l) if l.iter().all(|l| azure_side.contains(l))))
            .map(|(p, _)| *p)
            .collect();
        assert_eq!(advertised, forwarded, "{} {:?}", p.circuit, p.peering_type);
        checked += advertised.len();
    }
    assert!(checked > 5, "the example advertises VNets and services");
}

#[test]
fn a_reload_keeps_every_id_it_can() {
    let model = example();
    let (ports, ifaces) = full_ports();
    let mut ids = IdBook::default();
    let before = plan_with(&model, &ports, &ifaces, true, &[], &mut ids).unwrap();
    // Without er-lon-std (ams's Global Reach peer).
    let only: Vec<String> = ["er-ams-std", "er-sv-prem", "er-direct-prem", "er-ams-local"]
        .map(String::from)
        .to_vec();
    let after = plan_with(&model, &ports, &ifaces, true, &only, &mut ids).unwrap();
    for l in &after.links {
        assert_eq!(before.link_of(&l.side).unwrap().id, l.id, "{}", l.name);
    }
    for c in &after.circuits {
        assert_eq!(before.circuit(&c.name).unwrap().id, c.id);
    }
    // sv's domain did not change; ams's lost its Global Reach peer.
    let dom = |p: &Plan, c: &str| p.peering(c, PRIVATE).unwrap().domain;
    assert_eq!(dom(&before, "er-sv-prem"), dom(&after, "er-sv-prem"));
    assert_ne!(dom(&before, "er-ams-std"), dom(&after, "er-ams-std"));
    // Back again: london's links take free ids, the domain ids are new.
    let again = plan_with(&model, &ports, &ifaces, true, &[], &mut ids).unwrap();
    let lon = again
        .link_of(&customer("er-lon-std", PRIVATE, Role::Primary))
        .unwrap();
    assert!(after.links.iter().all(|l| l.id != lon.id));
    assert!(dom(&again, "er-ams-std") > dom(&before, "er-ams-std"));
}

#[test]
fn a_reload_never_gives_a_new_link_a_running_links_id() {
    let model = example();
    let (ports, ifaces) = full_ports();
    let mut ids = IdBook::default();
    let only = |names: &[&str]| -> Vec<String> { names.iter().map(|s| (*s).to_owned()).collect() };
    let first = plan_with(
        &model,
        &ports,
        &ifaces,
        true,
        &only(&["er-ams-std", "er-sv-prem"]),
        &mut ids,
    )
    .unwrap();
    // er-sv-prem out, er-direct-prem in, in one reload: the newcomer's
    // links take none of the ids er-sv-prem's links still hold (they are
    // removed only once the new ones are in place).
    let second = plan_with(
        &model,
        &ports,
        &ifaces,
        true,
        &only(&["er-ams-std", "er-direct-prem"]),
        &mut ids,
    )
    .unwrap();
    let running: BTreeSet<u32> = first.links.iter().map(|l| l.id).collect();
    let direct: Vec<u32> = second
        .links
        .iter()
        .filter(|l| l.name.contains("er-direct-prem"))
        .map(|l| l.id)
        .collect();
    assert!(!direct.is_empty());
    assert!(
        direct.iter().all(|id| !running.contains(id)),
        "{direct:?} vs {running:?}"
    );
    // Once it is gone, er-sv-prem's ids are free for the next reload.
    let third = plan_with(&model, &ports, &ifaces, true, &[], &mut ids).unwrap();
    let freed: BTreeSet<u32> = first
        .links
        .iter()
        .filter(|l| l.name.contains("er-sv-prem"))
        .map(|l| l.id)
        .collect();
    assert!(third.links.iter().any(|l| freed.contains(&l.id)));
}

#[test]
fn colliding_tags_and_overlapping_subnets_are_refused() {
    let (ports, ifaces) = full_ports();
    let mut model = example();
    // Validation refuses these; the plan refuses them too, whatever the
    // model says.
    let lon = model
        .circuits
        .iter_mut()
        .find(|c| c.name == "er-lon-std")
        .unwrap();
    lon.peerings[0].vlan = VlanTag::Dot1Q(100);
    let e = plan_with(&model, &ports, &ifaces, true, &[], &mut IdBook::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("VLAN 100") && e.contains("er-ams-std"), "{e}");
    let mut model = example();
    let lon = model
        .circuits
        .iter_mut()
        .find(|c| c.name == "er-lon-std")
        .unwrap();
    lon.peerings[0].primary.ipv4 =
        model::LinkAddresses::from_v4("192.168.100.128/30".parse().unwrap());
    let e = plan_with(&model, &ports, &ifaces, true, &[], &mut IdBook::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("overlapping"), "{e}");
}

#[test]
fn azure_side_neighbours_come_from_point_to_point_subnets() {
    let p = |a: &str, l| point_to_point_peer(a.parse().unwrap(), l).map(|x| x.to_string());
    assert_eq!(p("10.255.0.1", 30).as_deref(), Some("10.255.0.2"));
    assert_eq!(p("10.255.0.2", 30).as_deref(), Some("10.255.0.1"));
    assert_eq!(p("10.255.0.0", 31).as_deref(), Some("10.255.0.1"));
    assert_eq!(p("10.255.0.3", 30), None);
    assert_eq!(p("10.255.0.1", 24), None);
    assert_eq!(p("fd00:ff::1", 126).as_deref(), Some("fd00:ff::2"));
    let model = example();
    let (mut ports, mut ifaces) = full_ports();
    ports.vnets.clear();
    ports.azure = Some("azure".into());
    ifaces.insert("azure".into(), iface("azure", 40, &[("10.255.0.1", 24)]));
    let e = plan_with(&model, &ports, &ifaces, true, &[], &mut IdBook::default())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("neighbour is unknown") && e.contains("azure"),
        "{e}"
    );
}
