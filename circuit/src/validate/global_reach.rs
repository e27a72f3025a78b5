//! Global Reach: connections declared on private peerings, then paired
//! across circuits once every circuit is known.

use ipnet::Ipv4Net;

use super::addressing::exact_prefix;
use super::circuit::CircuitFacts;
use super::errors::Validator;
use crate::config::{self, PeeringType, SkuTier};
use crate::model::GlobalReachPair;

/// Each Global Reach connection takes its own IPv4 /29.
const PREFIX_LEN: u8 = 29;

/// A Global Reach connection as declared, for the pairing pass.
pub(super) struct Declaration {
    path: String,
    /// Index of the declaring circuit.
    from: usize,
    name: String,
    target: String,
    prefix: Option<Ipv4Net>,
}

/// The connections of peering `pp` of circuit `from`.
pub(super) fn declare(
    v: &mut Validator,
    pp: &str,
    from: usize,
    p: &config::Peering,
    out: &mut Vec<Declaration>,
) {
    for (k, gr) in p.connections.iter().enumerate() {
        let gp = format!("{pp}.connections[{k}]");
        if p.peering_type != PeeringType::AzurePrivatePeering {
            v.err(
                &gp,
                "Global Reach connections belong to AzurePrivatePeering only",
            );
            continue;
        }
        let prefix = exact_prefix::<Ipv4Net>(
            v,
            &format!("{gp}.addressPrefix"),
            &gr.address_prefix,
            PREFIX_LEN,
        );
        out.push(Declaration {
            path: gp,
            from,
            name: gr.name.clone(),
            target: gr.peer_express_route_circuit_peering.clone(),
            prefix,
        });
    }
}

/// The pairs the declarations make, each once, sorted.
pub(super) fn pairs(
    v: &mut Validator,
    declarations: &[Declaration],
    facts: &[CircuitFacts],
) -> Vec<GlobalReachPair> {
    // Each pair with the path of the declaration that made it.
    let mut pairs: Vec<(GlobalReachPair, &str)> = Vec::new();
    for d in declarations {
        let Some(bi) = target(v, d, facts) else {
            continue;
        };
        let (a, b) = (&facts[d.from], &facts[bi]);
        ends_can_connect(v, d, a, b);
        let (x, y) = if a.name <= b.name {
            (&a.name, &b.name)
        } else {
            (&b.name, &a.name)
        };
        if let Some((_, at)) = pairs.iter().find(|(p, _)| &p.a == x && &p.b == y) {
            v.err(&d.path, format!("{x:?} and {y:?} are already connected by {at}; declare a Global Reach connection once"));
            continue;
        }
        let Some(prefix) = d.prefix else {
            continue;
        };
        if prefix_taken(v, d, prefix, [a, b], &pairs) {
            continue;
        }
        pairs.push((
            GlobalReachPair {
                a: x.clone(),
                b: y.clone(),
                address_prefix: prefix,
                name: d.name.clone(),
            },
            &d.path,
        ));
    }
    let mut pairs: Vec<GlobalReachPair> = pairs.into_iter().map(|(p, _)| p).collect();
    pairs.sort();
    pairs
}

/// The index of the circuit `d` connects to: another circuit that exists.
fn target(v: &mut Validator, d: &Declaration, facts: &[CircuitFacts]) -> Option<usize> {
    let path = format!("{}.peerExpressRouteCircuitPeering", d.path);
    let name = parse_peering_ref(v, &path, &d.target)?;
    let Some(bi) = facts.iter().position(|f| f.name == name) else {
        v.err(path, format!("unknown circuit {name:?}"));
        return None;
    };
    if bi == d.from {
        v.err(path, "a circuit cannot be connected to itself");
        return None;
    }
    Some(bi)
}

/// Whether circuits `a` and `b` may be connected: a private peering on the
/// target, no Local circuit, different peering locations, the same cloud,
/// and Premium on both to cross geopolitical areas.
fn ends_can_connect(v: &mut Validator, d: &Declaration, a: &CircuitFacts, b: &CircuitFacts) {
    if !b.has_private_peering {
        v.err(
            format!("{}.peerExpressRouteCircuitPeering", d.path),
            format!(
                "circuit {:?} has no AzurePrivatePeering to connect to",
                b.name
            ),
        );
    }
    for side in [a, b] {
        if side.tier == SkuTier::Local {
            v.err(
                &d.path,
                format!(
                    "Global Reach is not available on Local circuits ({:?} is Local)",
                    side.name
                ),
            );
        }
    }
    let (Some(la), Some(lb)) = (a.location, b.location) else {
        return;
    };
    if la.name == lb.name {
        v.err(
            &d.path,
            format!(
                "{:?} and {:?} are both at peering location {}; Global Reach links circuits at different peering locations",
                a.name, b.name, la.name
            ),
        );
    } else if la.cloud != lb.cloud {
        v.err(
            &d.path,
            format!(
                "{:?} ({}) and {:?} ({}): a national cloud is isolated from the global cloud and from the other national clouds",
                a.name, la.area, b.name, lb.area
            ),
        );
    } else if la.area != lb.area {
        let not_premium: Vec<&str> = [a, b]
            .iter()
            .filter(|f| f.tier != SkuTier::Premium)
            .map(|f| f.name.as_str())
            .collect();
        if !not_premium.is_empty() {
            v.err(
                &d.path,
                format!(
                    "{:?} ({}) and {:?} ({}) are in different geopolitical areas; both need sku.tier Premium (not Premium: {})",
                    a.name,
                    la.area,
                    b.name,
                    lb.area,
                    not_premium.join(", ")
                ),
            );
        }
    }
}

/// Reports (and says) whether the connection's /29 overlaps a peering
/// subnet of either circuit or another connection's /29.
fn prefix_taken(
    v: &mut Validator,
    d: &Declaration,
    prefix: Ipv4Net,
    ends: [&CircuitFacts; 2],
    pairs: &[(GlobalReachPair, &str)],
) -> bool {
    if let Some((side, used)) = ends.iter().find_map(|f| {
        f.peering_subnets
            .iter()
            .find(|n| n.contains(&prefix) || prefix.contains(*n))
            .map(|n| (f.name.as_str(), n))
    }) {
        v.err(
            format!("{}.addressPrefix", d.path),
            format!("{prefix} overlaps {used}, a peering subnet of {side:?}; the Global Reach /29 must not overlap the circuits' peering addresses"),
        );
        return true;
    }
    if let Some((p, at)) = pairs
        .iter()
        .find(|(p, _)| p.address_prefix.contains(&prefix) || prefix.contains(&p.address_prefix))
    {
        v.err(
            format!("{}.addressPrefix", d.path),
            format!("{prefix} is already used by {at} ({} - {}); each Global Reach connection needs its own /29", p.a, p.b),
        );
        return true;
    }
    false
}

/// `<circuit>`, `<circuit>/AzurePrivatePeering` or an ARM id
/// `.../expressRouteCircuits/<circuit>/peerings/AzurePrivatePeering`.
fn parse_peering_ref(v: &mut Validator, path: &str, text: &str) -> Option<String> {
    let parts: Vec<&str> = text.trim().trim_matches('/').split('/').collect();
    let (circuit, peering) = if let Some(i) = parts
        .iter()
        .position(|s| s.eq_ignore_ascii_case("expressRouteCircuits"))
    {
        let circuit = parts.get(i + 1).copied();
        let peering = match parts.get(i + 2) {
            Some(s) if s.eq_ignore_ascii_case("peerings") => parts.get(i + 3).copied(),
            _ => None,
        };
        (circuit, peering)
    } else {
        match parts.as_slice() {
            [c] => (Some(*c), Some("AzurePrivatePeering")),
            [c, p] => (Some(*c), Some(*p)),
            _ => (None, None),
        }
    };
    match (circuit, peering) {
        (Some(c), Some(p)) if !c.is_empty() => {
            if p != "AzurePrivatePeering" {
                v.err(
                    path,
                    format!(
                        "Global Reach connects private peerings; {p:?} is not AzurePrivatePeering"
                    ),
                );
                return None;
            }
            Some(c.to_string())
        }
        _ => {
            v.err(
                path,
                format!("{text:?} does not name a peering; write <circuit>, <circuit>/AzurePrivatePeering or an ARM id .../expressRouteCircuits/<circuit>/peerings/AzurePrivatePeering"),
            );
            None
        }
    }
}
