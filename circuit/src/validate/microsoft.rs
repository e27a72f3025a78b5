//! Microsoft peering: the public prefixes the customer advertises, their
//! customer ASN, route filters and the service prefixes they select; and
//! what private peering must not carry.

use std::collections::HashMap;

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use super::addressing::any_prefix;
use super::bgp;
use super::errors::Validator;
use super::family::{AddressFamily, family_name};
use crate::catalog::Catalog;
use crate::community::Community;
use crate::config::{self, Config, PeeringType};

/// Route filters by name, with the communities each selects (known to the
/// catalog, each once, in the order written).
pub(super) type RouteFilters<'c> = HashMap<&'c str, Vec<Community>>;

pub(super) fn route_filters<'c>(
    v: &mut Validator,
    config: &'c Config,
    catalog: &Catalog,
) -> RouteFilters<'c> {
    let mut filters = RouteFilters::new();
    for (i, f) in config.route_filters.iter().enumerate() {
        let p = format!("routeFilters[{i}]");
        let mut communities = Vec::new();
        for (r, rule) in f.rules.iter().enumerate() {
            let rp = format!("{p}.rules[{r}]");
            if rule.access != "Allow" {
                v.err(
                    format!("{rp}.access"),
                    format!(
                        "{:?} is not supported; route filter rules are \"Allow\"",
                        rule.access
                    ),
                );
            }
            if rule.route_filter_rule_type != "Community" {
                v.err(
                    format!("{rp}.routeFilterRuleType"),
                    format!(
                        "{:?} is not supported; the only rule type is \"Community\"",
                        rule.route_filter_rule_type
                    ),
                );
            }
            for (k, c) in rule.communities.iter().enumerate() {
                let cp = format!("{rp}.communities[{k}]");
                match c.parse::<Community>() {
                    Err(e) => v.err(cp, e.to_string()),
                    Ok(c) => match catalog.community(c) {
                        None => v.err(
                            cp,
                            format!(
                                "{c} is neither a Microsoft service community ({}) nor a region community (12076:51xxx) of the catalog",
                                catalog
                                    .service_communities
                                    .iter()
                                    .map(|s| format!("{} {}", s.community, s.name))
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            ),
                        ),
                        Some(_) => {
                            if !communities.contains(&c) {
                                communities.push(c);
                            }
                        }
                    },
                }
            }
        }
        if filters.insert(f.name.as_str(), communities).is_some() {
            v.err(
                format!("{p}.name"),
                format!("duplicate route filter name {:?}", f.name),
            );
        }
    }
    filters
}

/// What the peering type adds to a peering.
#[derive(Default)]
pub(super) struct PeeringTypeConfig {
    /// The public prefixes the customer advertises (Microsoft peering).
    pub(super) advertised: Vec<IpNet>,
    /// The communities its route filter selects (Microsoft peering).
    pub(super) selected: Vec<Community>,
}

pub(super) fn peering_type_config(
    v: &mut Validator,
    pp: &str,
    p: &config::Peering,
    filters: &RouteFilters,
) -> PeeringTypeConfig {
    match p.peering_type {
        PeeringType::AzurePrivatePeering => {
            private_peering(v, pp, p);
            PeeringTypeConfig::default()
        }
        PeeringType::MicrosoftPeering => microsoft_peering(v, pp, p, filters),
    }
}

/// Private peering takes none of Microsoft peering's settings.
fn private_peering(v: &mut Validator, pp: &str, p: &config::Peering) {
    if p.microsoft_peering_config.is_some() {
        v.err(
            format!("{pp}.microsoftPeeringConfig"),
            "only MicrosoftPeering takes a microsoftPeeringConfig",
        );
    }
    if p.ipv6_peering_config
        .as_ref()
        .is_some_and(|c| c.microsoft_peering_config.is_some())
    {
        v.err(
            format!("{pp}.ipv6PeeringConfig.microsoftPeeringConfig"),
            "only MicrosoftPeering takes a microsoftPeeringConfig",
        );
    }
    if p.route_filter.is_some() {
        v.err(
            format!("{pp}.routeFilter"),
            "route filters apply to MicrosoftPeering only",
        );
    }
}

fn microsoft_peering(
    v: &mut Validator,
    pp: &str,
    p: &config::Peering,
    filters: &RouteFilters,
) -> PeeringTypeConfig {
    let mut config = PeeringTypeConfig::default();
    let base = format!("{pp}.microsoftPeeringConfig");
    match &p.microsoft_peering_config {
        None => v.err(&base, "missing; Microsoft peering needs advertisedPublicPrefixes (the public prefixes you will advertise)"),
        Some(mc) => {
            if mc.advertised_public_prefixes.is_empty() {
                v.err(
                    format!("{base}.advertisedPublicPrefixes"),
                    "Microsoft peering needs at least one public prefix",
                );
            }
            advertise::<Ipv4Net>(
                v,
                &base,
                mc,
                "put IPv6 prefixes under ipv6PeeringConfig.microsoftPeeringConfig",
                &mut config.advertised,
            );
        }
    }
    if let Some(mc) = p
        .ipv6_peering_config
        .as_ref()
        .and_then(|c| c.microsoft_peering_config.as_ref())
    {
        advertise::<Ipv6Net>(
            v,
            &format!("{pp}.ipv6PeeringConfig.microsoftPeeringConfig"),
            mc,
            "this list takes IPv6 prefixes",
            &mut config.advertised,
        );
    }
    if let Some(name) = &p.route_filter {
        match filters.get(name.as_str()) {
            Some(communities) => config.selected = communities.clone(),
            None => v.err(
                format!("{pp}.routeFilter"),
                format!("unknown route filter {name:?}"),
            ),
        }
    }
    config
}

/// One family's `microsoftPeeringConfig` under `base`: its advertised
/// prefixes (into `out`) and customer ASN.
fn advertise<F: AddressFamily>(
    v: &mut Validator,
    base: &str,
    mc: &config::MicrosoftPeeringConfig,
    other_family: &str,
    out: &mut Vec<IpNet>,
) {
    for (k, text) in mc.advertised_public_prefixes.iter().enumerate() {
        let path = format!("{base}.advertisedPublicPrefixes[{k}]");
        if let Some(n) = public_prefix::<F>(v, &path, text, other_family) {
            out.push(n.into());
        }
    }
    if let Some(asn) = mc.customer_asn {
        bgp::asn(v, &format!("{base}.customerASN"), asn);
    }
}

/// An advertised prefix: public, of family `F`; `other_family` tells where
/// a prefix of the other family belongs.
fn public_prefix<F: AddressFamily>(
    v: &mut Validator,
    path: &str,
    text: &str,
    other_family: &str,
) -> Option<F> {
    let net = any_prefix(v, path, text)?;
    let Some(n) = F::from_ip_net(net) else {
        v.err(
            path,
            format!("{net} is {}; {other_family}", family_name(&net)),
        );
        return None;
    };
    if let Some(why) = n.non_public() {
        v.err(
            path,
            format!("{n} is {why}; Microsoft peering only accepts public prefixes"),
        );
        return None;
    }
    Some(n)
}

/// The prefixes of the services `selected` names (region communities
/// select no prefixes in this emulator), each with its community.
pub(super) fn service_routes(catalog: &Catalog, selected: &[Community]) -> Vec<(IpNet, Community)> {
    selected
        .iter()
        .filter_map(|c| {
            catalog
                .service_communities
                .iter()
                .find(|s| s.community == *c)
        })
        .flat_map(|s| s.prefixes.iter().map(|p| (*p, s.community)))
        .collect()
}
