//! `Microsoft.Network/expressRoutePorts`: an ExpressRoute Direct port pair,
//! its peering location, speed and encapsulation.

use crate::config::{Encapsulation, ExpressRoutePort};
use crate::import::doc::{Diag, Obj, Reported};

/// Read-only or physical details of the port (its links' routers and patch
/// panels, MACsec, billing) that do not change what is emulated.
const PORT_IGNORED: &[&str] = &[
    "location",
    "identity",
    "provisionedBandwidthInGbps",
    "mtu",
    "etherType",
    "allocationDate",
    "links",
    "circuits",
    "provisioningState",
    "resourceGuid",
    "billingType",
];

pub(crate) fn read_port(
    mut o: Obj<'_>,
    d: &mut Diag,
    name: String,
) -> Result<ExpressRoutePort, Reported> {
    let location = o.req_str(d, "peeringLocation");
    let gbps = o.req_int::<u32>(d, "bandwidthInGbps", "10 or 100 (Gbps)");
    let enc_path = o.path_of("encapsulation");
    let encapsulation = o
        .req_str(d, "encapsulation")
        .and_then(|e| match e.as_str() {
            "Dot1Q" => Some(Encapsulation::Dot1Q),
            "QinQ" => Some(Encapsulation::QinQ),
            other => {
                o.err(
                    d,
                    &enc_path,
                    format!("{other:?} is not an encapsulation (Dot1Q, QinQ)"),
                );
                None
            }
        });
    o.finish(d, PORT_IGNORED)?;
    match (location, gbps, encapsulation) {
        (Some(peering_location), Some(bandwidth_in_gbps), Some(encapsulation)) => {
            Ok(ExpressRoutePort {
                name,
                peering_location,
                bandwidth_in_gbps,
                encapsulation,
            })
        }
        _ => Err(Reported),
    }
}
