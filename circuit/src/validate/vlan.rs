//! VLAN tags: each peering's 802.1Q tag or QinQ pair, their fit with an
//! ExpressRoute Direct port's encapsulation, and their uniqueness within a
//! circuit and across the circuits sharing a port pair.

use std::collections::BTreeMap;

use super::errors::Validator;
use crate::config::{self, Encapsulation};
use crate::model::VlanTag;

/// The peering's `vlanId`, or its `sTag` and `cTag`.
pub(super) fn peering_tag(v: &mut Validator, pp: &str, p: &config::Peering) -> Option<VlanTag> {
    match (p.vlan_id, p.s_tag, p.c_tag) {
        (Some(vid), None, None) => tag(v, &format!("{pp}.vlanId"), vid).map(VlanTag::Dot1Q),
        (None, Some(s), Some(c)) => {
            let s = tag(v, &format!("{pp}.sTag"), s);
            let c = tag(v, &format!("{pp}.cTag"), c);
            s.zip(c)
                .map(|(s_tag, c_tag)| VlanTag::QinQ { s_tag, c_tag })
        }
        (None, None, None) => {
            v.err(
                format!("{pp}.vlanId"),
                "missing; give vlanId (802.1Q) or sTag and cTag (QinQ)",
            );
            None
        }
        (None, Some(_), None) => {
            v.err(
                format!("{pp}.cTag"),
                "missing; QinQ needs both sTag (outer) and cTag (inner)",
            );
            None
        }
        (None, None, Some(_)) => {
            v.err(
                format!("{pp}.sTag"),
                "missing; QinQ needs both sTag (outer) and cTag (inner)",
            );
            None
        }
        (Some(_), _, _) => {
            v.err(
                format!("{pp}.vlanId"),
                "give either vlanId (802.1Q) or sTag and cTag (QinQ), not both",
            );
            None
        }
    }
}

fn tag(v: &mut Validator, path: &str, t: u16) -> Option<u16> {
    if (1..=4094).contains(&t) {
        Some(t)
    } else {
        v.err(
            path,
            format!("{t} is not a usable VLAN tag; allowed 1-4094"),
        );
        None
    }
}

/// The tags of a circuit's peerings among themselves, and against its
/// ExpressRoute Direct port's encapsulation.
pub(super) fn within_circuit(
    v: &mut Validator,
    cp: &str,
    c: &config::Circuit,
    port: Option<&config::ExpressRoutePort>,
) {
    let mut s_tag_seen: Option<(u16, String)> = None;
    for (j, p) in c.peerings.iter().enumerate() {
        let pp = format!("{cp}.peerings[{j}]");
        if let Some(port) = port {
            let qinq = p.s_tag.is_some() || p.c_tag.is_some();
            match port.encapsulation {
                Encapsulation::QinQ if !qinq && p.vlan_id.is_some() => {
                    v.err(
                        format!("{pp}.vlanId"),
                        format!(
                            "port {:?} uses QinQ encapsulation; give sTag and cTag",
                            port.name
                        ),
                    );
                }
                Encapsulation::Dot1Q if qinq => {
                    v.err(
                        format!("{pp}.sTag"),
                        format!(
                            "port {:?} uses Dot1Q encapsulation; give vlanId only",
                            port.name
                        ),
                    );
                }
                _ => {}
            }
        }
        if let Some(vid) = p.vlan_id
            && p.s_tag.is_none()
            && let Some(k) = c.peerings[..j]
                .iter()
                .position(|o| o.vlan_id == Some(vid) && o.s_tag.is_none())
        {
            v.err(
                format!("{pp}.vlanId"),
                format!("VLAN {vid} is already used by {cp}.peerings[{k}]; each peering needs its own VLAN on the link"),
            );
        }
        if let Some(s) = p.s_tag {
            match &s_tag_seen {
                None => s_tag_seen = Some((s, pp.clone())),
                Some((first, at)) if *first != s => {
                    v.err(
                        format!("{pp}.sTag"),
                        format!("S-tag {s} differs from S-tag {first} of {at}; the outer tag is the same for all peerings of a circuit"),
                    );
                }
                _ => {}
            }
            if let Some(ct) = p.c_tag
                && let Some(k) = c.peerings[..j]
                    .iter()
                    .position(|o| o.s_tag.is_some() && o.c_tag == Some(ct))
            {
                v.err(
                    format!("{pp}.cTag"),
                    format!("C-tag {ct} is already used by {cp}.peerings[{k}]; the inner tag is unique per peering"),
                );
            }
        }
    }
}

/// The tags claimed so far on each port pair, by the peering that holds
/// them: (port group, outer tag, inner tag) -> peering path. Provider
/// circuits share the lab's default port pair (group "").
#[derive(Default)]
pub(super) struct Attachments(BTreeMap<(String, u16, Option<u16>), String>);

impl Attachments {
    /// Claims the tags of a circuit's peerings; a tag another circuit on
    /// the same port pair holds is refused.
    pub(super) fn claim(&mut self, v: &mut Validator, cp: &str, c: &config::Circuit) {
        let group = c.express_route_port.clone().unwrap_or_default();
        let group_desc = match &c.express_route_port {
            Some(p) => format!("port {p:?}"),
            None => "the shared provider port pair".to_string(),
        };
        let mut own: Vec<(String, u16, Option<u16>)> = Vec::new();
        for (j, p) in c.peerings.iter().enumerate() {
            let pp = format!("{cp}.peerings[{j}]");
            let (key, field) = match (p.vlan_id, p.s_tag, p.c_tag) {
                (Some(vid), None, None) => ((group.clone(), vid, None), "vlanId"),
                (None, Some(s), Some(ct)) => ((group.clone(), s, Some(ct)), "sTag"),
                _ => continue,
            };
            if own.contains(&key) {
                continue; // reported by within_circuit
            }
            own.push(key.clone());
            // A dot1Q VLAN equal to another circuit's S-tag (or the reverse)
            // is also ambiguous on the wire.
            // On an ExpressRoute Direct port the S-tag identifies one
            // circuit: no other circuit may use it, whatever its C-tags.
            let direct = c.express_route_port.is_some();
            let clash = self.0.iter().find(|((g, outer, inner), _)| {
                *g == key.0
                    && *outer == key.1
                    && (direct || inner.is_none() || key.2.is_none() || *inner == key.2)
            });
            if let Some((_, other)) = clash
                && !other.starts_with(&format!("{cp}."))
            {
                let tag = match key.2 {
                    None => format!("VLAN {}", key.1),
                    Some(_) if direct => format!(
                        "S-tag {} (on ExpressRoute Direct the S-tag identifies one circuit)",
                        key.1
                    ),
                    Some(ct) => format!("S-tag {} C-tag {ct}", key.1),
                };
                v.err(
                    format!("{pp}.{field}"),
                    format!("{tag} is already used on {group_desc} by {other}; tags must be unique across circuits sharing a port pair"),
                );
                continue;
            }
            self.0.insert(key, pp);
        }
    }
}
