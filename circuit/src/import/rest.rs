//! Azure's own JSON for resources, as `az network ... show/list` prints it
//! (fields flattened beside `name`) or as the REST API sends and takes it
//! (`{"name", "sku", "properties": {...}}`): one resource, a JSON array of
//! them, or a `{"value": [...]}` list.
//!
//! A resource's kind comes from its `type`, or, for PUT bodies without
//! one, from the fields only that kind has. Its names come from its `id`
//! (`.../expressRouteCircuits/CIRCUIT/peerings/NAME`) or its `name`: a
//! peering, Global Reach connection or route filter rule given on its own
//! is attached to its circuit (or filter) by the names in its id.

use serde_json::Value;

use super::doc::{Diag, Node, expected_id, id_names, join};
use super::kinds::{self, Collected, Kind};

pub(crate) fn read(doc: Value, d: &mut Diag, out: &mut Collected) {
    let items: Vec<Node<'_>> = match doc {
        Value::Array(items) => items
            .into_iter()
            .enumerate()
            .map(|(i, v)| Node::new(v, format!("[{i}]"), None))
            .collect(),
        Value::Object(mut m) if m.get("value").is_some_and(Value::is_array) => {
            let Some(Value::Array(items)) = m.remove("value") else {
                unreachable!("checked just above")
            };
            // A REST list page: `nextLink` points at the next page.
            m.remove("nextLink");
            for k in m.keys() {
                d.err(k, "unknown field beside a \"value\" list");
            }
            items
                .into_iter()
                .enumerate()
                .map(|(i, v)| Node::new(v, format!("value[{i}]"), None))
                .collect()
        }
        other => vec![Node::new(other, String::new(), None)],
    };
    for node in items {
        read_item(node, d, out);
    }
}

fn read_item(node: Node<'_>, d: &mut Diag, out: &mut Collected) {
    let Ok(mut o) = node.obj(d) else { return };
    let path = o.path.clone();
    let ty = o.opt_str(d, "type");
    // `id` and `name` sit beside `properties`, never in it.
    let id_path = join(&path, "id");
    let id = o.opt_str(d, "id");
    let name_path = join(&path, "name");
    let name = o.opt_str(d, "name");
    let kind = match &ty {
        Some(t) => match Kind::of_type(t) {
            Some(k) => k,
            None => {
                d.note(
                    &path,
                    format!("{t}: not imported, not part of what is emulated"),
                );
                return;
            }
        },
        None => match Kind::of_shape(&o) {
            Some(k) => k,
            None => {
                d.err(
                    &path,
                    "not a resource this import reads: no \"type\", and not shaped like an ExpressRoute circuit, peering, Global Reach connection, VNet, gateway, connection, route filter or ExpressRoute port",
                );
                return;
            }
        },
    };
    let segments = kind.segments();
    let names = match (&id, &name) {
        (Some(id), _) => match id_names(id, &segments) {
            Some(names) => {
                if let Some(n) = &name
                    && !names
                        .last()
                        .is_some_and(|last| last.eq_ignore_ascii_case(n))
                {
                    d.err(
                        &name_path,
                        format!("{n:?} is not the name its id ends with ({id})"),
                    );
                    return;
                }
                names
            }
            None => {
                d.err(&id_path, expected_id(id, &segments));
                return;
            }
        },
        (None, _) if kind.depth() > 1 => {
            let parent = match kind {
                Kind::RouteFilterRule => "route filter",
                _ => "circuit",
            };
            d.err(
                &path,
                format!(
                    "no id, so the {parent} it belongs to is unknown: give it as az or the REST API print it, with \"id\": \".../providers/Microsoft.Network/{}\"",
                    segments.iter().map(|s| format!("{s}/NAME")).collect::<Vec<_>>().join("/")
                ),
            );
            return;
        }
        (None, Some(n)) => vec![n.clone()],
        (None, None) => {
            d.err(&name_path, "missing (no name and no id)");
            return;
        }
    };
    // Errors are in `d`; the item is skipped.
    let _ = kinds::read(kind, names, o, d, out);
}
