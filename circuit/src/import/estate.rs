//! Putting every input together into one [`Config`]: the same resource
//! given twice is kept once when both are equal and refused, naming both
//! files, when they differ; peerings, Global Reach connections and route
//! filter rules given apart join their parents; Direct circuits take their
//! peering location and tags from their port; VNet links find their VNet
//! through their gateway.

use serde::Serialize;
use serde_json::Value;

use crate::config::{self, Config, Encapsulation, PeeringType};

use super::doc::{Issue, Origin};
use super::kinds::network::Via;
use super::kinds::{CircuitDoc, Collected, Item};

/// Which input each part of the config came from, by config path
/// (`circuits[0]`, `circuits[0].peerings[1]`, `virtualNetworks[2]`).
pub(crate) type Sources = Vec<(String, Origin)>;

fn err(errors: &mut Vec<Issue>, at: &Origin, message: String) {
    errors.push(Issue {
        file: at.file.clone(),
        path: at.path.clone(),
        message,
    });
}

fn json<T: Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

/// The first place two JSON values differ, as `path (a vs b)`.
fn difference(a: &Value, b: &Value, path: &str) -> Option<String> {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let mut keys: Vec<&String> = x.keys().chain(y.keys()).collect();
            keys.sort();
            keys.dedup();
            keys.into_iter().find_map(|k| {
                let (va, vb) = (
                    x.get(k).unwrap_or(&Value::Null),
                    y.get(k).unwrap_or(&Value::Null),
                );
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                difference(va, vb, &p)
            })
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => x
            .iter()
            .zip(y)
            .enumerate()
            .find_map(|(i, (va, vb))| difference(va, vb, &format!("{path}[{i}]"))),
        (Value::Array(x), Value::Array(y)) => Some(format!(
            "{} ({} vs {} items)",
            if path.is_empty() { "the list" } else { path },
            x.len(),
            y.len()
        )),
        _ if a == b => None,
        // A key is named, never shown.
        _ if path.rsplit('.').next() == Some("sharedKey") => {
            Some(format!("{path} (two different keys)"))
        }
        _ => Some(format!(
            "{} ({a} vs {b})",
            if path.is_empty() { "the value" } else { path }
        )),
    }
}

fn conflict(what: &str, name: &str, first: &Origin, diff: Option<String>) -> String {
    format!(
        "{what} {name:?} is also in {first} with different content{}; give it once, or the same in both",
        diff.map(|d| format!(": they differ at {d}"))
            .unwrap_or_default()
    )
}

/// Keeps the first of each name; an equal repeat is dropped, a different
/// one refused.
fn dedupe<T: Serialize + PartialEq>(
    items: Vec<Item<T>>,
    what: &str,
    name: impl Fn(&T) -> &str,
    errors: &mut Vec<Issue>,
) -> Vec<Item<T>> {
    let mut out: Vec<Item<T>> = Vec::new();
    for item in items {
        match out
            .iter()
            .find(|o| name(&o.value).eq_ignore_ascii_case(name(&item.value)))
        {
            Some(first) if first.value != item.value => {
                let diff = difference(&json(&first.value), &json(&item.value), "");
                let message = conflict(what, name(&item.value), &first.origin, diff);
                err(errors, &item.origin, message);
            }
            Some(_) => {}
            None => out.push(item),
        }
    }
    out
}

/// A circuit being put together, with the origin of each peering.
struct Assembling {
    origin: Origin,
    doc: CircuitDoc,
    peering_origins: Vec<Origin>,
    connection_origins: Vec<(String, Origin)>,
}

/// Serialized for conflict messages: the circuit as it would be written.
impl Serialize for CircuitDoc {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.circuit.serialize(s)
    }
}

pub(crate) fn assemble(c: Collected, errors: &mut Vec<Issue>) -> (Config, Sources) {
    let mut sources: Sources = Vec::new();

    let ports = dedupe(c.ports, "ExpressRoute port", |p| &p.name, errors);
    let circuits = dedupe(c.circuits, "circuit", |c| &c.circuit.name, errors);
    let mut circuits: Vec<Assembling> = circuits
        .into_iter()
        .map(|item| {
            let peering_origins = item
                .value
                .peering_paths
                .iter()
                .map(|p| Origin {
                    file: item.origin.file.clone(),
                    path: p.clone(),
                })
                .collect();
            Assembling {
                origin: item.origin,
                doc: item.value,
                peering_origins,
                connection_origins: Vec::new(),
            }
        })
        .collect();

    for child in c.peerings {
        let Some(a) = circuits.iter_mut().find(|a| {
            a.doc
                .circuit
                .name
                .eq_ignore_ascii_case(&child.value.circuit)
        }) else {
            err(
                errors,
                &child.origin,
                format!(
                    "its circuit {:?} is not among the inputs: give the circuit's document too (az network express-route show)",
                    child.value.circuit
                ),
            );
            continue;
        };
        let p = child.value.peering;
        let existing = a
            .doc
            .circuit
            .peerings
            .iter()
            .position(|q| q.peering_type == p.peering_type);
        match existing {
            Some(i) if a.doc.circuit.peerings[i] != p => {
                let diff = difference(&json(&a.doc.circuit.peerings[i]), &json(&p), "");
                let message = conflict(
                    "peering",
                    &format!("{}/{}", a.doc.circuit.name, peering_name(p.peering_type)),
                    &a.peering_origins[i],
                    diff,
                );
                err(errors, &child.origin, message);
            }
            Some(_) => {}
            None => {
                a.doc.circuit.peerings.push(p);
                a.peering_origins.push(child.origin);
            }
        }
    }

    for child in c.global_reach {
        let g = &child.value;
        let Some(a) = circuits
            .iter_mut()
            .find(|a| a.doc.circuit.name.eq_ignore_ascii_case(&g.circuit))
        else {
            err(
                errors,
                &child.origin,
                format!("its circuit {:?} is not among the inputs", g.circuit),
            );
            continue;
        };
        let Some(peering) = a
            .doc
            .circuit
            .peerings
            .iter_mut()
            .find(|p| peering_name(p.peering_type).eq_ignore_ascii_case(&g.peering))
        else {
            err(
                errors,
                &child.origin,
                format!(
                    "its peering {}/{} is not among the inputs",
                    g.circuit, g.peering
                ),
            );
            continue;
        };
        match peering
            .connections
            .iter()
            .find(|x| x.name.eq_ignore_ascii_case(&g.connection.name))
        {
            Some(x) if *x != g.connection => {
                let diff = difference(&json(x), &json(&g.connection), "");
                let message = conflict(
                    "Global Reach connection",
                    &g.connection.name,
                    &a.origin,
                    diff,
                );
                err(errors, &child.origin, message);
            }
            Some(_) => {}
            None => {
                peering.connections.push(g.connection.clone());
                a.connection_origins
                    .push((g.connection.name.clone(), child.origin.clone()));
            }
        }
    }

    for a in &mut circuits {
        if let Some(direct) = a.doc.direct.clone() {
            on_port(a, &direct, &ports, errors);
        }
    }

    let mut filters = dedupe(c.route_filters, "route filter", |f| &f.name, errors);
    let mut rule_origins: Vec<(usize, usize, Origin)> = Vec::new();
    for child in c.rules {
        let Some((fi, f)) = filters
            .iter_mut()
            .enumerate()
            .find(|(_, f)| f.value.name.eq_ignore_ascii_case(&child.value.filter))
        else {
            err(
                errors,
                &child.origin,
                format!(
                    "its route filter {:?} is not among the inputs",
                    child.value.filter
                ),
            );
            continue;
        };
        let rule = &child.value.rule;
        match f
            .value
            .rules
            .iter()
            .find(|r| r.name.eq_ignore_ascii_case(&rule.name))
        {
            Some(r) if r != rule => {
                let diff = difference(&json(r), &json(rule), "");
                let message = conflict("route filter rule", &rule.name, &f.origin, diff);
                err(errors, &child.origin, message);
            }
            Some(_) => {}
            None => {
                f.value.rules.push(rule.clone());
                rule_origins.push((fi, f.value.rules.len() - 1, child.origin));
            }
        }
    }

    let vnets = dedupe(c.vnets, "virtual network", |v| &v.name, errors);
    let gateways = dedupe(c.gateways, "virtual network gateway", |g| &g.name, errors);
    let mut links: Vec<Item<config::Connection>> = Vec::new();
    for l in c.links {
        let vnet = match &l.value.via {
            Via::VirtualNetwork(v) => v.clone(),
            Via::Gateway(g) => match gateways
                .iter()
                .find(|x| x.value.name.eq_ignore_ascii_case(g))
            {
                Some(x) => x.value.vnet.clone(),
                None => {
                    err(
                        errors,
                        &l.origin,
                        format!(
                            "its gateway {g:?} is not among the inputs, so the VNet it links is unknown: give the gateway's document (az network vnet-gateway show) or the link in the project's TOML"
                        ),
                    );
                    continue;
                }
            },
        };
        links.push(Item {
            origin: l.origin,
            value: config::Connection {
                name: l.value.name,
                connection_type: l.value.connection_type,
                virtual_network: vnet,
                peer: l.value.circuit,
            },
        });
    }
    let links = dedupe(links, "connection", |l| &l.name, errors);

    for (i, p) in ports.iter().enumerate() {
        sources.push((format!("expressRoutePorts[{i}]"), p.origin.clone()));
    }
    for (i, a) in circuits.iter().enumerate() {
        let cp = format!("circuits[{i}]");
        sources.push((cp.clone(), a.origin.clone()));
        for (j, (p, o)) in a
            .doc
            .circuit
            .peerings
            .iter()
            .zip(&a.peering_origins)
            .enumerate()
        {
            let pp = format!("{cp}.peerings[{j}]");
            sources.push((pp.clone(), o.clone()));
            for (k, c) in p.connections.iter().enumerate() {
                if let Some((_, o)) = a.connection_origins.iter().find(|(n, _)| *n == c.name) {
                    sources.push((format!("{pp}.connections[{k}]"), o.clone()));
                }
            }
        }
    }
    for (i, v) in vnets.iter().enumerate() {
        sources.push((format!("virtualNetworks[{i}]"), v.origin.clone()));
    }
    for (i, l) in links.iter().enumerate() {
        sources.push((format!("connections[{i}]"), l.origin.clone()));
    }
    for (i, f) in filters.iter().enumerate() {
        sources.push((format!("routeFilters[{i}]"), f.origin.clone()));
    }
    for (fi, ri, o) in rule_origins {
        sources.push((format!("routeFilters[{fi}].rules[{ri}]"), o));
    }

    let config = Config {
        express_route_ports: ports.into_iter().map(|p| p.value).collect(),
        circuits: circuits.into_iter().map(|a| a.doc.circuit).collect(),
        virtual_networks: vnets.into_iter().map(|v| v.value).collect(),
        connections: links.into_iter().map(|l| l.value).collect(),
        route_filters: filters.into_iter().map(|f| f.value).collect(),
    };
    (config, sources)
}

/// A Direct circuit takes its port's peering location; on a QinQ port its
/// peerings' `vlanId` is the C-tag under the circuit's S-tag (`stag`).
fn on_port(
    a: &mut Assembling,
    direct: &super::kinds::circuit::Direct,
    ports: &[Item<config::ExpressRoutePort>],
    errors: &mut Vec<Issue>,
) {
    let Some(port) = ports
        .iter()
        .find(|p| p.value.name.eq_ignore_ascii_case(&direct.port))
    else {
        err(
            errors,
            &a.origin,
            format!(
                "its ExpressRoute Direct port {:?} is not among the inputs: give the port's document (az network express-route port show) for its peering location and encapsulation",
                direct.port
            ),
        );
        return;
    };
    let c = &mut a.doc.circuit;
    c.express_route_port = Some(port.value.name.clone());
    c.service_provider_properties.peering_location = port.value.peering_location.clone();
    if port.value.encapsulation != Encapsulation::QinQ {
        return;
    }
    let tagged = c.peerings.iter().any(|p| p.vlan_id.is_some());
    match direct.stag {
        Some(s_tag) => {
            for p in &mut c.peerings {
                if let Some(v) = p.vlan_id.take() {
                    p.s_tag = Some(s_tag);
                    p.c_tag = Some(v);
                }
            }
        }
        None if tagged => err(
            errors,
            &a.origin,
            format!(
                "port {:?} is QinQ: the circuit's S-tag is its stag, which Azure assigns and this document lacks; write the circuit in the project's TOML with sTag and cTag",
                port.value.name
            ),
        ),
        None => {}
    }
}

/// Peering type names as Azure writes them.
fn peering_name(t: PeeringType) -> &'static str {
    match t {
        PeeringType::AzurePrivatePeering => "AzurePrivatePeering",
        PeeringType::MicrosoftPeering => "MicrosoftPeering",
    }
}
