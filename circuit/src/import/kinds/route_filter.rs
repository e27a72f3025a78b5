//! `Microsoft.Network/routeFilters` and their rules (inside the filter's
//! `rules`, or as `routeFilters/routeFilterRules` resources of their own):
//! which Microsoft services a Microsoft peering advertises.

use crate::config::{RouteFilter, RouteFilterRule};
use crate::import::doc::{Diag, Obj, Reported};

pub(crate) fn read_filter(
    mut o: Obj<'_>,
    d: &mut Diag,
    name: String,
) -> Result<RouteFilter, Reported> {
    let rules: Vec<_> = o
        .opt_array(d, "rules")
        .into_iter()
        .map(|n| n.obj(d).and_then(|r| read_rule(r, d, None)))
        .collect();
    // `peerings` and `ipv6Peerings` list the peerings using the filter, as
    // read-only back references: the peerings say it themselves.
    let finished = o.finish(
        d,
        &["location", "peerings", "ipv6Peerings", "provisioningState"],
    );
    let rules: Result<Vec<_>, _> = rules.into_iter().collect();
    let (Ok(()), Ok(rules)) = (finished, rules) else {
        return Err(Reported);
    };
    Ok(RouteFilter { name, rules })
}

pub(crate) fn read_rule(
    mut o: Obj<'_>,
    d: &mut Diag,
    name: Option<String>,
) -> Result<RouteFilterRule, Reported> {
    let name = match name {
        Some(n) => Some(n),
        None => o.req_str(d, "name"),
    };
    let access = o.req_str(d, "access");
    let kind = o.req_str(d, "routeFilterRuleType");
    let communities: Vec<String> = o
        .opt_array(d, "communities")
        .into_iter()
        .filter_map(|n| n.str(d).map_err(|_| o.fail()).ok())
        .collect();
    o.finish(d, &["name", "location", "provisioningState"])?;
    match (name, access, kind) {
        (Some(name), Some(access), Some(route_filter_rule_type)) => Ok(RouteFilterRule {
            name,
            access,
            route_filter_rule_type,
            communities,
        }),
        _ => Err(Reported),
    }
}
