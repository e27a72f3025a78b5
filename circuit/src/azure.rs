//! Import of Azure's own JSON for circuits: the output of
//! `az network express-route show` / `list` (properties flattened, read-only
//! fields such as `etag`, `azureASN`, `primaryAzurePort` present and
//! ignored) or REST/ARM resources (`{"name": ..., "sku": ..., "properties":
//! {...}}`, also inside a `{"value": [...]}` list). The result is a
//! [`Config`] holding the circuits; VNets, links, route filters and Direct
//! ports are not part of a circuit resource and are added separately.
//!
//! Mapping notes:
//! - `vlanId` becomes an 802.1Q tag. Azure's circuit-level `stag` is the
//!   outer tag of QinQ on ExpressRoute Direct; Direct circuits (no
//!   `serviceProviderProperties`) are refused by the import, because their
//!   peering location and encapsulation live on the port resource.
//! - `routeFilter.id` and `expressRoutePort.id` keep the resource name (the
//!   last segment of the id); the route filter itself must be declared.
//! - Global Reach `connections[].peerExpressRouteCircuitPeering.id` keeps
//!   the ARM id, which the validator resolves to the circuit name.

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::config::{
    self, Bfd, CircuitConnection, Config, Ipv6PeeringConfig, MicrosoftPeeringConfig, PeeringType,
    ProvisioningState, ServiceProviderProperties, Sku, SkuFamily, SkuTier,
};
use crate::validate::ValidationError;

/// Why Azure JSON could not be imported; each error names its JSON path.
#[derive(Debug, thiserror::Error)]
pub enum AzureImportError {
    #[error("JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
    Unsupported(Vec<ValidationError>),
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AzCircuit {
    name: String,
    service_key: Option<String>,
    service_provider_properties: Option<AzProvider>,
    sku: AzSku,
    service_provider_provisioning_state: Option<ProvisioningState>,
    express_route_port: Option<AzRef>,
    #[serde(default)]
    peerings: Vec<Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AzProvider {
    service_provider_name: Option<String>,
    peering_location: String,
    bandwidth_in_mbps: u32,
}

#[derive(Deserialize)]
struct AzSku {
    tier: SkuTier,
    family: SkuFamily,
}

#[derive(Deserialize)]
struct AzRef {
    id: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AzPeering {
    peering_type: PeeringType,
    #[serde(rename = "peerASN")]
    peer_asn: u32,
    primary_peer_address_prefix: Option<String>,
    secondary_peer_address_prefix: Option<String>,
    vlan_id: Option<u16>,
    shared_key: Option<String>,
    microsoft_peering_config: Option<AzMsConfig>,
    ipv6_peering_config: Option<Value>,
    route_filter: Option<AzRef>,
    #[serde(default)]
    connections: Option<Vec<Value>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AzIpv6 {
    primary_peer_address_prefix: Option<String>,
    secondary_peer_address_prefix: Option<String>,
    microsoft_peering_config: Option<AzMsConfig>,
    route_filter: Option<AzRef>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AzMsConfig {
    advertised_public_prefixes: Option<Vec<String>>,
    #[serde(rename = "customerASN")]
    customer_asn: Option<u32>,
    routing_registry_name: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AzConnection {
    name: Option<String>,
    address_prefix: String,
    peer_express_route_circuit_peering: AzRef,
}

/// Moves the members of `properties` (REST/ARM shape) up beside `name`.
fn flatten(v: &Value) -> Value {
    let Some(obj) = v.as_object() else {
        return v.clone();
    };
    let mut out: Map<String, Value> = obj.clone();
    if let Some(Value::Object(props)) = out.remove("properties") {
        for (k, val) in props {
            out.entry(k).or_insert(val);
        }
    }
    Value::Object(out)
}

fn from<T: for<'de> Deserialize<'de>>(
    v: Value,
    path: &str,
    errors: &mut Vec<ValidationError>,
) -> Option<T> {
    match serde_json::from_value(v) {
        Ok(t) => Some(t),
        Err(e) => {
            errors.push(ValidationError {
                path: path.to_string(),
                message: e.to_string(),
            });
            None
        }
    }
}

fn last_segment(id: &str) -> String {
    id.trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or(id)
        .to_string()
}

/// Imports circuits from Azure JSON (one circuit, an array, or `{"value": [...]}`).
pub fn config_from_azure_json(text: &str) -> Result<Config, AzureImportError> {
    let doc: Value = serde_json::from_str(text)?;
    let items: Vec<Value> = match doc {
        Value::Array(a) => a,
        Value::Object(ref o) if o.get("value").is_some_and(Value::is_array) => {
            o["value"].as_array().cloned().unwrap_or_default()
        }
        other => vec![other],
    };
    let mut errors = Vec::new();
    let mut circuits = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let cp = format!("[{i}]");
        let Some(az) = from::<AzCircuit>(flatten(item), &cp, &mut errors) else {
            continue;
        };
        let Some(spp) = az.service_provider_properties else {
            errors.push(ValidationError {
                path: format!("{cp}.serviceProviderProperties"),
                message: "missing: ExpressRoute Direct circuits are not imported from JSON; declare the port in expressRoutePorts and the circuit in the TOML file".into(),
            });
            continue;
        };
        let mut peerings = Vec::new();
        for (j, pv) in az.peerings.iter().enumerate() {
            let pp = format!("{cp}.peerings[{j}]");
            let Some(p) = from::<AzPeering>(flatten(pv), &pp, &mut errors) else {
                continue;
            };
            let ipv6 = match p.ipv6_peering_config {
                None | Some(Value::Null) => None,
                Some(v) => from::<AzIpv6>(v, &format!("{pp}.ipv6PeeringConfig"), &mut errors),
            };
            let route_filter = p
                .route_filter
                .as_ref()
                .or(ipv6.as_ref().and_then(|x| x.route_filter.as_ref()))
                .map(|r| last_segment(&r.id));
            let mut connections = Vec::new();
            for (k, cv) in p.connections.unwrap_or_default().iter().enumerate() {
                let path = format!("{pp}.connections[{k}]");
                if let Some(c) = from::<AzConnection>(flatten(cv), &path, &mut errors) {
                    connections.push(CircuitConnection {
                        name: c.name.unwrap_or_else(|| format!("{}-gr{k}", az.name)),
                        address_prefix: c.address_prefix,
                        peer_express_route_circuit_peering: c.peer_express_route_circuit_peering.id,
                    });
                }
            }
            let ms = |c: AzMsConfig| MicrosoftPeeringConfig {
                advertised_public_prefixes: c.advertised_public_prefixes.unwrap_or_default(),
                customer_asn: c.customer_asn.filter(|a| *a != 0),
                routing_registry_name: c
                    .routing_registry_name
                    .filter(|n| !n.is_empty() && n != "NONE"),
            };
            peerings.push(config::Peering {
                peering_type: p.peering_type,
                peer_asn: p.peer_asn,
                primary_peer_address_prefix: p.primary_peer_address_prefix,
                secondary_peer_address_prefix: p.secondary_peer_address_prefix,
                peer_address_prefix: None,
                vlan_id: p.vlan_id,
                s_tag: None,
                c_tag: None,
                shared_key: p.shared_key.filter(|k| !k.is_empty()),
                bfd: Bfd::default(),
                microsoft_peering_config: match p.peering_type {
                    PeeringType::MicrosoftPeering => p.microsoft_peering_config.map(ms),
                    PeeringType::AzurePrivatePeering => None,
                },
                ipv6_peering_config: ipv6.and_then(|x| {
                    let has = x.primary_peer_address_prefix.is_some()
                        || x.secondary_peer_address_prefix.is_some();
                    has.then(|| Ipv6PeeringConfig {
                        primary_peer_address_prefix: x.primary_peer_address_prefix,
                        secondary_peer_address_prefix: x.secondary_peer_address_prefix,
                        peer_address_prefix: None,
                        microsoft_peering_config: match p.peering_type {
                            PeeringType::MicrosoftPeering => x.microsoft_peering_config.map(ms),
                            PeeringType::AzurePrivatePeering => None,
                        },
                    })
                }),
                route_filter: match p.peering_type {
                    PeeringType::MicrosoftPeering => route_filter,
                    PeeringType::AzurePrivatePeering => None,
                },
                connections,
            });
        }
        circuits.push(config::Circuit {
            name: az.name,
            service_key: az.service_key.unwrap_or_default(),
            service_provider_properties: ServiceProviderProperties {
                service_provider_name: spp.service_provider_name.unwrap_or_default(),
                peering_location: spp.peering_location,
                bandwidth_in_mbps: spp.bandwidth_in_mbps,
            },
            sku: Sku {
                tier: az.sku.tier,
                family: az.sku.family,
            },
            service_provider_provisioning_state: az
                .service_provider_provisioning_state
                .unwrap_or(ProvisioningState::NotProvisioned),
            express_route_port: az.express_route_port.map(|r| last_segment(&r.id)),
            peerings,
        });
    }
    if !errors.is_empty() {
        return Err(AzureImportError::Unsupported(errors));
    }
    Ok(Config {
        circuits,
        ..Config::default()
    })
}

impl Config {
    /// Circuits from Azure's JSON (see [`config_from_azure_json`]).
    pub fn from_azure_json(text: &str) -> Result<Self, AzureImportError> {
        config_from_azure_json(text)
    }

    /// The configuration as a TOML document in this crate's file format.
    pub fn to_toml_string(&self) -> Result<String, toml::ser::Error> {
        toml::to_string(self)
    }
}
