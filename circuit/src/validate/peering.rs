//! One peering: the rules of each family in turn, then its model.

use ipnet::{Ipv4Net, Ipv6Net};

use super::errors::Validator;
use super::family::AddressFamily;
use super::microsoft::{self, PeeringTypeConfig, RouteFilters};
use super::{addressing, bfd, bgp, vlan};
use crate::catalog::Catalog;
use crate::config::{self, ProvisioningState, SkuTier};
use crate::model::{self, Link, LinkRole, RouteLimits};

/// Whether the circuit takes its peering `j`: it must be Provisioned, and
/// have one peering of each type.
pub(super) fn place_in_circuit(v: &mut Validator, cp: &str, c: &config::Circuit, j: usize) {
    let pp = format!("{cp}.peerings[{j}]");
    let p = &c.peerings[j];
    if c.service_provider_provisioning_state != ProvisioningState::Provisioned {
        v.err(
            &pp,
            format!(
                "peerings can only be configured on a Provisioned circuit; serviceProviderProvisioningState is {:?}",
                c.service_provider_provisioning_state
            ),
        );
    }
    if let Some(k) = c.peerings[..j]
        .iter()
        .position(|o| o.peering_type == p.peering_type)
    {
        v.err(
            format!("{pp}.peeringType"),
            format!("{:?} is already configured at {cp}.peerings[{k}]; one peering of each type per circuit", p.peering_type),
        );
    }
}

/// The peering's own settings; its model if they are all valid.
pub(super) fn peering(
    v: &mut Validator,
    pp: &str,
    p: &config::Peering,
    tier: SkuTier,
    filters: &RouteFilters,
    catalog: &Catalog,
) -> Option<model::Peering> {
    let mark = v.mark();
    bgp::asn(v, &format!("{pp}.peerASN"), p.peer_asn);
    let v4 = addressing::link_subnets::<Ipv4Net>(
        v,
        pp,
        p.peer_address_prefix.as_deref(),
        p.primary_peer_address_prefix.as_deref(),
        p.secondary_peer_address_prefix.as_deref(),
    );
    let v6 = p.ipv6_peering_config.as_ref().map(|c6| {
        addressing::link_subnets::<Ipv6Net>(
            v,
            &format!("{pp}.ipv6PeeringConfig"),
            c6.peer_address_prefix.as_deref(),
            c6.primary_peer_address_prefix.as_deref(),
            c6.secondary_peer_address_prefix.as_deref(),
        )
    });
    let vlan = vlan::peering_tag(v, pp, p);
    bgp::shared_key(v, pp, p.shared_key.as_ref().map(crate::Secret::expose));
    let bfd = bfd::timers(v, pp, &p.bfd);
    let PeeringTypeConfig {
        advertised,
        selected,
    } = microsoft::peering_type_config(v, pp, p, filters);

    if !v.clean_since(mark) {
        return None;
    }
    let (pri4, sec4) = v4?;
    // Without ipv6PeeringConfig the links are IPv4 only.
    let v6 = v6.flatten();
    let link = |role, v4net: Ipv4Net, v6net: Option<Ipv6Net>| Link {
        role,
        ipv4: v4net.link_addresses(),
        ipv6: v6net.map(AddressFamily::link_addresses),
    };
    Some(model::Peering {
        peering_type: p.peering_type,
        peer_asn: p.peer_asn,
        vlan: vlan?,
        shared_key: p.shared_key.clone(),
        bfd,
        primary: link(LinkRole::Primary, pri4, v6.map(|x| x.0)),
        secondary: link(LinkRole::Secondary, sec4, v6.map(|x| x.1)),
        limits: RouteLimits::for_peering(p.peering_type, tier),
        advertised_public_prefixes: advertised,
        route_filter: p.route_filter.clone(),
        service_routes: microsoft::service_routes(catalog, &selected),
        selected_communities: selected,
    })
}
