//! The Azure resource kinds the import reads, one module each, and what
//! each becomes. The walkers (az/REST documents, deployment templates) find
//! a resource, its kind and its names; [`read`] turns it into a record.
//! Records are put together across files by [`super::estate`].

pub(crate) mod circuit;
pub(crate) mod network;
pub(crate) mod port;
pub(crate) mod route_filter;

use crate::config::{
    CircuitConnection, ExpressRoutePort, Peering, RouteFilter, RouteFilterRule, VirtualNetwork,
};

use super::doc::{Diag, Obj, Origin, Reported};

pub(crate) use circuit::CircuitDoc;
pub(crate) use network::{Gateway, Link};

/// A resource kind, by its ARM type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Circuit,
    Peering,
    /// A Global Reach connection (`.../peerings/connections`).
    CircuitConnection,
    /// `.../expressRouteCircuits/authorizations`: keys to link VNets of
    /// other subscriptions; nothing to emulate.
    Authorization,
    VirtualNetwork,
    Gateway,
    Connection,
    RouteFilter,
    RouteFilterRule,
    Port,
}

impl Kind {
    /// ARM types, without the `Microsoft.Network/` namespace.
    const TYPES: [(&'static str, Kind); 10] = [
        ("expressRouteCircuits", Kind::Circuit),
        ("expressRouteCircuits/peerings", Kind::Peering),
        (
            "expressRouteCircuits/peerings/connections",
            Kind::CircuitConnection,
        ),
        ("expressRouteCircuits/authorizations", Kind::Authorization),
        ("virtualNetworks", Kind::VirtualNetwork),
        ("virtualNetworkGateways", Kind::Gateway),
        ("connections", Kind::Connection),
        ("routeFilters", Kind::RouteFilter),
        ("routeFilters/routeFilterRules", Kind::RouteFilterRule),
        ("expressRoutePorts", Kind::Port),
    ];

    /// The kind of a full ARM type (`Microsoft.Network/expressRouteCircuits`).
    pub(super) fn of_type(t: &str) -> Option<Kind> {
        let (ns, rest) = t.split_once('/')?;
        if !ns.eq_ignore_ascii_case("Microsoft.Network") {
            return None;
        }
        Self::TYPES
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(rest))
            .map(|(_, k)| *k)
    }

    /// How many names a resource of this kind has (a peering: its circuit's
    /// and its own).
    pub(super) fn depth(self) -> usize {
        match self {
            Kind::Circuit
            | Kind::VirtualNetwork
            | Kind::Gateway
            | Kind::Connection
            | Kind::RouteFilter
            | Kind::Port => 1,
            Kind::Peering | Kind::Authorization | Kind::RouteFilterRule => 2,
            Kind::CircuitConnection => 3,
        }
    }

    /// The ARM type segments after the namespace, for ids.
    pub(super) fn segments(self) -> Vec<&'static str> {
        Self::TYPES
            .iter()
            .find(|(_, k)| *k == self)
            .map(|(name, _)| name.split('/').collect())
            .unwrap_or_default()
    }

    /// The kind of an object without a `type` (PUT bodies, some az
    /// output), from the fields only that kind has.
    pub(super) fn of_shape(o: &Obj<'_>) -> Option<Kind> {
        let has = |k: &str| o.has(k);
        if has("peeringType") || has("peerASN") || has("peerAsn") {
            Some(Kind::Peering)
        } else if has("serviceProviderProperties")
            || has("serviceKey")
            || (has("sku") && (has("expressRoutePort") || has("bandwidthInGbps")))
        {
            Some(Kind::Circuit)
        } else if has("peerExpressRouteCircuitPeering") {
            Some(Kind::CircuitConnection)
        } else if has("addressSpace") {
            Some(Kind::VirtualNetwork)
        } else if has("connectionType") {
            Some(Kind::Connection)
        } else if has("gatewayType") || has("ipConfigurations") {
            Some(Kind::Gateway)
        } else if has("routeFilterRuleType") {
            Some(Kind::RouteFilterRule)
        } else if has("rules") {
            Some(Kind::RouteFilter)
        } else if has("encapsulation") || has("links") {
            Some(Kind::Port)
        } else {
            None
        }
    }
}

/// One imported thing and where it came from.
#[derive(Debug, Clone)]
pub(crate) struct Item<T> {
    pub origin: Origin,
    pub value: T,
}

/// A peering given apart from its circuit.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PeeringChild {
    pub circuit: String,
    pub peering: Peering,
}

/// A Global Reach connection given apart from its peering.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct GlobalReachChild {
    pub circuit: String,
    pub peering: String,
    pub connection: CircuitConnection,
}

/// A route filter rule given apart from its filter.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RuleChild {
    pub filter: String,
    pub rule: RouteFilterRule,
}

/// Everything read from the inputs, not yet put together.
#[derive(Debug, Default)]
pub(crate) struct Collected {
    pub ports: Vec<Item<ExpressRoutePort>>,
    pub circuits: Vec<Item<CircuitDoc>>,
    pub peerings: Vec<Item<PeeringChild>>,
    pub global_reach: Vec<Item<GlobalReachChild>>,
    pub vnets: Vec<Item<VirtualNetwork>>,
    pub gateways: Vec<Item<Gateway>>,
    pub links: Vec<Item<Link>>,
    pub route_filters: Vec<Item<RouteFilter>>,
    pub rules: Vec<Item<RuleChild>>,
}

impl Collected {
    pub(super) fn len(&self) -> usize {
        self.ports.len()
            + self.circuits.len()
            + self.peerings.len()
            + self.global_reach.len()
            + self.vnets.len()
            + self.gateways.len()
            + self.links.len()
            + self.route_filters.len()
            + self.rules.len()
    }

    pub(super) fn extend(&mut self, other: Collected) {
        self.ports.extend(other.ports);
        self.circuits.extend(other.circuits);
        self.peerings.extend(other.peerings);
        self.global_reach.extend(other.global_reach);
        self.vnets.extend(other.vnets);
        self.gateways.extend(other.gateways);
        self.links.extend(other.links);
        self.route_filters.extend(other.route_filters);
        self.rules.extend(other.rules);
    }
}

fn item<T>(origin: &Origin, value: T) -> Item<T> {
    Item {
        origin: origin.clone(),
        value,
    }
}

/// Reads one resource of `kind` named `names` (its parents' names first)
/// into `out`. The walker has taken the fields common to every resource
/// (`name`, `type`, template bookkeeping).
pub(crate) fn read(
    kind: Kind,
    names: Vec<String>,
    o: Obj<'_>,
    d: &mut Diag,
    out: &mut Collected,
) -> Result<(), Reported> {
    let origin = d.origin(&o.path);
    let mut names = names.into_iter();
    let mut next = || names.next().unwrap_or_default();
    match kind {
        Kind::Circuit => {
            let c = circuit::read_circuit(o, d, next())?;
            out.circuits.push(item(&origin, c));
        }
        Kind::Peering => {
            let circuit = next();
            let p = circuit::read_peering(o, d, Some(next()))?;
            out.peerings.push(item(
                &origin,
                PeeringChild {
                    circuit,
                    peering: p,
                },
            ));
        }
        Kind::CircuitConnection => {
            let (circuit, peering) = (next(), next());
            let connection = circuit::read_global_reach(o, d, Some(next()))?;
            out.global_reach.push(item(
                &origin,
                GlobalReachChild {
                    circuit,
                    peering,
                    connection,
                },
            ));
        }
        Kind::Authorization => {}
        Kind::VirtualNetwork => {
            let v = network::read_vnet(o, d, next())?;
            out.vnets.push(item(&origin, v));
        }
        Kind::Gateway => {
            let g = network::read_gateway(o, d, next())?;
            out.gateways.push(item(&origin, g));
        }
        Kind::Connection => {
            if let Some(l) = network::read_connection(o, d, next())? {
                out.links.push(item(&origin, l));
            }
        }
        Kind::RouteFilter => {
            let f = route_filter::read_filter(o, d, next())?;
            out.route_filters.push(item(&origin, f));
        }
        Kind::RouteFilterRule => {
            let filter = next();
            let rule = route_filter::read_rule(o, d, Some(next()))?;
            out.rules.push(item(&origin, RuleChild { filter, rule }));
        }
        Kind::Port => {
            let p = port::read_port(o, d, next())?;
            out.ports.push(item(&origin, p));
        }
    }
    Ok(())
}
