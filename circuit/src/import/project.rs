//! The project's own files (TOML, or the same document as JSON): taken as
//! they are, so that they can be merged with Azure's documents.

use crate::config::Config;

use super::doc::Diag;
use super::kinds::network::{Link, Via};
use super::kinds::{CircuitDoc, Collected, Item};

fn item<T>(d: &Diag, path: String, value: T) -> Item<T> {
    Item {
        origin: d.origin(&path),
        value,
    }
}

pub(crate) fn read(config: Config, d: &Diag, out: &mut Collected) {
    for (i, p) in config.express_route_ports.into_iter().enumerate() {
        out.ports
            .push(item(d, format!("expressRoutePorts[{i}]"), p));
    }
    for (i, c) in config.circuits.into_iter().enumerate() {
        let path = format!("circuits[{i}]");
        let peering_paths = (0..c.peerings.len())
            .map(|j| format!("{path}.peerings[{j}]"))
            .collect();
        out.circuits.push(item(
            d,
            path,
            CircuitDoc {
                circuit: c,
                direct: None,
                peering_paths,
            },
        ));
    }
    for (i, v) in config.virtual_networks.into_iter().enumerate() {
        out.vnets.push(item(d, format!("virtualNetworks[{i}]"), v));
    }
    for (i, c) in config.connections.into_iter().enumerate() {
        out.links.push(item(
            d,
            format!("connections[{i}]"),
            Link {
                name: c.name,
                connection_type: c.connection_type,
                via: Via::VirtualNetwork(c.virtual_network),
                circuit: c.peer,
            },
        ));
    }
    for (i, f) in config.route_filters.into_iter().enumerate() {
        out.route_filters
            .push(item(d, format!("routeFilters[{i}]"), f));
    }
}
