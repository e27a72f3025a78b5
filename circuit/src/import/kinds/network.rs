//! The Azure side: `virtualNetworks`, the `virtualNetworkGateways` that
//! put them on a circuit, and `connections` of type ExpressRoute (a VNet
//! link). Only the fields that shape what the MSEE does are read (a VNet's
//! region and address space; which gateway and circuit a connection joins);
//! subnets, DNS, gateway SKUs and the like are ignored.
//!
//! A connection names a gateway, not a VNet: the gateway's
//! `ipConfigurations[].subnet.id` (`.../virtualNetworks/VNET/subnets/
//! GatewaySubnet`) gives the VNet, once every input is read.

use crate::config::{AddressSpace, VirtualNetwork};
use crate::import::doc::{Diag, Obj, Reported, expected_id, id_names, join};

/// An ExpressRoute gateway and the VNet it sits in.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub(crate) struct Gateway {
    pub name: String,
    pub vnet: String,
}

/// A VNet link to a circuit.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Link {
    pub name: String,
    /// `ExpressRoute` (the validator refuses any other).
    pub connection_type: String,
    pub via: Via,
    pub circuit: String,
}

/// How a link reaches its VNet.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Via {
    /// Named directly (the project's own files).
    VirtualNetwork(String),
    /// Through an ExpressRoute gateway (Azure's `connections`).
    Gateway(String),
}

pub(crate) fn read_vnet(
    mut o: Obj<'_>,
    d: &mut Diag,
    name: String,
) -> Result<VirtualNetwork, Reported> {
    let location = o.req_str(d, "location");
    let prefixes = o.req_obj(d, "addressSpace").map(|mut a| {
        let nodes = a.opt_array(d, "addressPrefixes");
        let list: Vec<String> = nodes
            .into_iter()
            .filter_map(|n| n.str(d).map_err(|_| a.fail()).ok())
            .collect();
        (a.finish_lenient(), list)
    });
    let prefixes = match prefixes {
        Some((Ok(()), list)) => Some(list),
        Some((Err(_), _)) => {
            o.fail();
            None
        }
        None => None,
    };
    o.finish_lenient()?;
    match (location, prefixes) {
        (Some(location), Some(address_prefixes)) => Ok(VirtualNetwork {
            name,
            location,
            address_space: AddressSpace { address_prefixes },
        }),
        _ => Err(Reported),
    }
}

pub(crate) fn read_gateway(
    mut o: Obj<'_>,
    d: &mut Diag,
    name: String,
) -> Result<Gateway, Reported> {
    let configs_path = o.path_of("ipConfigurations");
    let mut vnets: Vec<(String, String)> = Vec::new();
    for n in o.opt_array(d, "ipConfigurations") {
        let Ok(mut c) = n.obj(d) else {
            o.fail();
            continue;
        };
        let Some(mut subnet) = c.req_obj(d, "subnet") else {
            o.fail();
            continue;
        };
        let id_path = join(&subnet.path, "id");
        let Some(id) = subnet.req_str(d, "id") else {
            o.fail();
            continue;
        };
        match id_names(&id, &["virtualNetworks", "subnets"]) {
            Some(names) => vnets.push((names[0].clone(), id_path)),
            None => {
                o.err(
                    d,
                    &id_path,
                    expected_id(&id, &["virtualNetworks", "subnets"]),
                );
            }
        }
    }
    o.finish_lenient()?;
    match vnets.as_slice() {
        [] => Err(d.err(
            &configs_path,
            "no ipConfigurations[].subnet.id: the gateway's VNet is unknown",
        )),
        [(first, _), rest @ ..] => {
            if let Some((other, p)) = rest.iter().find(|(v, _)| v != first) {
                return Err(d.err(
                    p,
                    format!(
                        "the gateway is in VNet {first:?} and {other:?}: a gateway sits in one VNet"
                    ),
                ));
            }
            Ok(Gateway {
                name,
                vnet: first.clone(),
            })
        }
    }
}

/// A connection of type ExpressRoute; other types (VPN) are noted and
/// skipped.
pub(crate) fn read_connection(
    mut o: Obj<'_>,
    d: &mut Diag,
    name: String,
) -> Result<Option<Link>, Reported> {
    let type_path = o.path_of("connectionType");
    let kind = o.req_str(d, "connectionType");
    if let Some(k) = &kind
        && k != "ExpressRoute"
    {
        d.note(
            &type_path,
            format!("a {k} connection, not an ExpressRoute one: not imported"),
        );
        return Ok(None);
    }
    let gw_path = o.path_of("virtualNetworkGateway1");
    let gw_given = o.present("virtualNetworkGateway1");
    let gateway = o.reference(d, "virtualNetworkGateway1", &["virtualNetworkGateways"]);
    if !gw_given {
        o.err(d, &gw_path, "missing");
    }
    let peer_path = o.path_of("peer");
    let peer_given = o.present("peer");
    let circuit = o.reference(d, "peer", &["expressRouteCircuits"]);
    if !peer_given {
        o.err(
            d,
            &peer_path,
            "missing: an ExpressRoute connection names its circuit in peer.id",
        );
    }
    o.finish_lenient()?;
    match (kind, gateway, circuit) {
        (Some(connection_type), Some(mut g), Some(mut c)) => Ok(Some(Link {
            name,
            connection_type,
            via: Via::Gateway(g.remove(0)),
            circuit: c.remove(0),
        })),
        _ => Err(Reported),
    }
}
