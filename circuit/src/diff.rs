//! Differences between two validated models, so that a reload applies only
//! what changed: circuits, peerings, BGP sessions, VNets, VNet links and
//! Global Reach pairs, each added, removed, changed or unchanged.

use std::collections::BTreeMap;

use crate::model::{Circuit, GlobalReachPair, Model, PeeringType, Session, SessionKey};

/// Keys sorted into the four outcomes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Changes<K, C = K> {
    pub added: Vec<K>,
    pub removed: Vec<K>,
    pub changed: Vec<C>,
    pub unchanged: Vec<K>,
}

impl<K, C> Default for Changes<K, C> {
    fn default() -> Self {
        Self {
            added: Vec::new(),
            removed: Vec::new(),
            changed: Vec::new(),
            unchanged: Vec::new(),
        }
    }
}

impl<K, C> Changes<K, C> {
    /// Nothing added, removed or changed.
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty() && self.changed.is_empty()
    }
}

/// A circuit whose own properties changed, and which ones (Azure field
/// names; `reach` and `vnetLinks` are derived). Changes inside its
/// peerings are reported under [`Diff::peerings`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CircuitChange {
    pub name: String,
    pub fields: Vec<&'static str>,
}

/// A session whose parameters changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionChange {
    pub key: SessionKey,
    pub fields: Vec<&'static str>,
    /// The session must be torn down and re-established (addresses, ASN,
    /// VLAN or MD5 key changed). Otherwise the change applies in place
    /// (BFD, prefix limits).
    pub reset: bool,
}

pub type PeeringKey = (String, PeeringType);

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Diff {
    pub circuits: Changes<String, CircuitChange>,
    pub peerings: Changes<PeeringKey>,
    pub sessions: Changes<SessionKey, SessionChange>,
    pub virtual_networks: Changes<String>,
    /// (circuit, VNet)
    pub vnet_links: Changes<(String, String)>,
    pub global_reach: Changes<GlobalReachPair>,
}

impl Diff {
    /// Nothing to apply.
    pub fn is_empty(&self) -> bool {
        self.circuits.is_empty()
            && self.peerings.is_empty()
            && self.sessions.is_empty()
            && self.virtual_networks.is_empty()
            && self.vnet_links.is_empty()
            && self.global_reach.is_empty()
    }
}

/// Sorts keys of `old` and `new` into added / removed / changed / unchanged.
fn classify<K: Ord + Clone, V, C>(
    old: &BTreeMap<K, V>,
    new: &BTreeMap<K, V>,
    mut compare: impl FnMut(&K, &V, &V) -> Option<C>,
) -> Changes<K, C> {
    let mut out = Changes::default();
    for (k, nv) in new {
        match old.get(k) {
            None => out.added.push(k.clone()),
            Some(ov) => match compare(k, ov, nv) {
                Some(c) => out.changed.push(c),
                None => out.unchanged.push(k.clone()),
            },
        }
    }
    out.removed = old
        .keys()
        .filter(|k| !new.contains_key(*k))
        .cloned()
        .collect();
    out
}

fn circuit_fields(a: &Circuit, b: &Circuit) -> Vec<&'static str> {
    let mut f = Vec::new();
    let mut check = |changed: bool, name| {
        if changed {
            f.push(name);
        }
    };
    check(a.service_key != b.service_key, "serviceKey");
    check(
        a.service_provider_name != b.service_provider_name,
        "serviceProviderProperties.serviceProviderName",
    );
    check(
        a.peering_location != b.peering_location,
        "serviceProviderProperties.peeringLocation",
    );
    check(
        a.bandwidth_mbps != b.bandwidth_mbps,
        "serviceProviderProperties.bandwidthInMbps",
    );
    check(a.tier != b.tier, "sku.tier");
    check(a.family != b.family, "sku.family");
    check(
        a.provisioning_state != b.provisioning_state,
        "serviceProviderProvisioningState",
    );
    check(
        a.express_route_port != b.express_route_port,
        "expressRoutePort",
    );
    check(a.reach != b.reach, "reach");
    check(a.vnet_links != b.vnet_links, "vnetLinks");
    f
}

fn session_fields(a: &Session, b: &Session) -> (Vec<&'static str>, bool) {
    let mut f = Vec::new();
    let mut reset = false;
    let mut check = |changed: bool, name, needs_reset: bool| {
        if changed {
            f.push(name);
            reset |= needs_reset;
        }
    };
    check(a.local_address != b.local_address, "localAddress", true);
    check(a.peer_address != b.peer_address, "peerAddress", true);
    check(a.local_asn != b.local_asn, "localASN", true);
    check(a.peer_asn != b.peer_asn, "peerASN", true);
    check(a.vlan != b.vlan, "vlan", true);
    check(a.md5_key != b.md5_key, "sharedKey", true);
    check(a.bfd != b.bfd, "bfd", false);
    check(a.max_prefixes != b.max_prefixes, "maxPrefixes", false);
    check(a.max_advertised != b.max_advertised, "maxAdvertised", false);
    (f, reset)
}

/// What changed from `old` to `new`.
pub fn diff(old: &Model, new: &Model) -> Diff {
    let circuits = |m: &Model| -> BTreeMap<String, Circuit> {
        m.circuits
            .iter()
            .map(|c| (c.name.clone(), c.clone()))
            .collect()
    };
    let circuits = classify(&circuits(old), &circuits(new), |name, a, b| {
        let fields = circuit_fields(a, b);
        (!fields.is_empty()).then(|| CircuitChange {
            name: name.clone(),
            fields,
        })
    });

    let peerings = |m: &Model| {
        m.circuits
            .iter()
            .flat_map(|c| {
                c.peerings
                    .iter()
                    .map(move |p| ((c.name.clone(), p.peering_type), p.clone()))
            })
            .collect::<BTreeMap<_, _>>()
    };
    let peerings = classify(&peerings(old), &peerings(new), |k, a, b| {
        (a != b).then(|| k.clone())
    });

    let sessions = |m: &Model| {
        m.sessions()
            .into_iter()
            .map(|s| (s.key(), s))
            .collect::<BTreeMap<_, _>>()
    };
    let sessions = classify(&sessions(old), &sessions(new), |k, a, b| {
        let (fields, reset) = session_fields(a, b);
        (!fields.is_empty()).then(|| SessionChange {
            key: k.clone(),
            fields,
            reset,
        })
    });

    let vnets = |m: &Model| {
        m.virtual_networks
            .iter()
            .map(|v| (v.name.clone(), v.clone()))
            .collect::<BTreeMap<_, _>>()
    };
    let virtual_networks = classify(&vnets(old), &vnets(new), |k, a, b| {
        (a != b).then(|| k.clone())
    });

    let links = |m: &Model| {
        m.circuits
            .iter()
            .flat_map(|c| {
                c.vnet_links
                    .iter()
                    .map(move |v| ((c.name.clone(), v.clone()), ()))
            })
            .collect::<BTreeMap<_, _>>()
    };
    let vnet_links = classify(&links(old), &links(new), |_, _, _| None::<(String, String)>);

    // A pair is identified by its two circuits; its /29 or name changing
    // counts as a change.
    let gr = |m: &Model| {
        m.global_reach
            .iter()
            .map(|p| ((p.a.clone(), p.b.clone()), p.clone()))
            .collect::<BTreeMap<_, _>>()
    };
    let (old_gr, new_gr) = (gr(old), gr(new));
    let by_key = classify(&old_gr, &new_gr, |k, a, b| (a != b).then(|| k.clone()));
    let global_reach = Changes {
        added: by_key.added.iter().map(|k| new_gr[k].clone()).collect(),
        removed: by_key.removed.iter().map(|k| old_gr[k].clone()).collect(),
        changed: by_key.changed.iter().map(|k| new_gr[k].clone()).collect(),
        unchanged: by_key.unchanged.iter().map(|k| new_gr[k].clone()).collect(),
    };

    Diff {
        circuits,
        peerings,
        sessions,
        virtual_networks,
        vnet_links,
        global_reach,
    }
}
