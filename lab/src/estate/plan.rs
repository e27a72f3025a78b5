//! The lab an estate needs, planned from the model before anything is made:
//! its namespaces, interfaces, addresses and the customers' routers, so a
//! file whose lab cannot be built is refused with nothing created.
//!
//! ```text
//! [<p>-<circuit>] pri-private ... ==veth== a<c>-<k>-pri [<p>-switch] t-primary ==veth== primary [<p>-msee] vnet<i> ==veth== msee [<p>-<vnet>]
//!   the customer's router       access ports        trunks, one per MSEE port        msee-daemon      microsoft ==veth== msee [<p>-microsoft]
//! ```
//!
//! The switch namespace is the provider's network (and, for ExpressRoute
//! Direct, the customer's own switch): each customer link is an access port
//! whose frames get the peering's tags on their way to the MSEE's port, and
//! lose them on the way back — a VLAN cross-connect, as a provider runs for
//! a circuit. The customer's router sees plain interfaces, one per peering
//! and link.
use std::{
    collections::BTreeSet,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
};

use anyhow::{Result, bail};
use circuit::model::{Model, PeeringType, VlanTag};
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use serde::{Deserialize, Serialize};

/// How the lab's own address blocks are chosen (kept clear of the model's).
#[derive(Clone, Debug)]
pub struct Pools {
    /// /30s between the MSEE and each VNet's gateway, and the Microsoft
    /// edge's (the last /30).
    pub azure_side: Ipv4Net,
    pub azure_side6: Ipv6Net,
    /// A /24 per circuit: the customer's on-premises network.
    pub onprem: Ipv4Net,
    /// A /48 per circuit with IPv6 private peering.
    pub onprem6: Ipv6Net,
}

impl Default for Pools {
    fn default() -> Self {
        Self {
            azure_side: "100.127.0.0/16".parse().expect("literal"),
            azure_side6: "fd00:ff::/32".parse().expect("literal"),
            onprem: "172.16.0.0/12".parse().expect("literal"),
            onprem6: "fd00:c0::/32".parse().expect("literal"),
        }
    }
}

/// One port pair of the MSEE: the provider's, or an ExpressRoute Direct
/// port's.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortPair {
    /// `provider`, or the Direct port's name.
    pub name: String,
    /// Interfaces in the MSEE namespace.
    pub msee: [String; 2],
    /// Their peers in the switch namespace.
    pub trunk: [String; 2],
}

/// One peering of a customer's router: its two links.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomerPeering {
    pub peering_type: PeeringType,
    /// Interfaces in the customer's namespace (primary, secondary).
    pub ifnames: [String; 2],
    /// Their peers in the switch namespace: access ports.
    pub access: [String; 2],
    /// Which port pair's trunks they cross-connect to.
    pub pair: usize,
    /// Outer and inner VLAN (0: none), as ExpressRoute tags them (0x8100).
    pub tags: (u16, u16),
    /// The customer's (.1) and the MSEE's (.2) address on each link.
    pub customer: [(Ipv4Addr, u8); 2],
    pub msee: [Ipv4Addr; 2],
    pub customer6: Option<[(Ipv6Addr, u8); 2]>,
    pub msee6: Option<[Ipv6Addr; 2]>,
    pub md5: Option<String>,
    /// BFD interval (ms) and multiplier, if on.
    pub bfd: Option<(u32, u8)>,
    /// What the customer announces on this peering.
    pub announce: Vec<IpNet>,
}

/// A circuit's customer: its namespace and router.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Customer {
    pub circuit: String,
    pub ns: String,
    pub asn: u32,
    /// The on-premises network the lab gives it, and a host in it.
    pub onprem: Ipv4Net,
    pub host: Ipv4Addr,
    pub onprem6: Option<Ipv6Net>,
    pub host6: Option<Ipv6Addr>,
    /// Hosts in its registered public prefixes (Microsoft peering).
    pub public_hosts: Vec<IpAddr>,
    pub peerings: Vec<CustomerPeering>,
}

/// An Azure-side namespace: a VNet's gateway and hosts, or the Microsoft
/// edge and its services.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AzureSide {
    /// The VNet's name, or `microsoft`.
    pub name: String,
    pub ns: String,
    /// The MSEE's port (in the MSEE namespace); its peer is `msee`.
    pub port: String,
    pub msee_addr: Ipv4Addr,
    pub gateway: Ipv4Addr,
    pub msee_addr6: Option<Ipv6Addr>,
    pub gateway6: Option<Ipv6Addr>,
    /// Hosts (on the namespace's loopback): one per VNet prefix, or per
    /// service prefix.
    pub hosts: Vec<(String, IpAddr)>,
}

/// Everything `lab up --config` builds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EstateLab {
    pub prefix: String,
    pub msee_ns: String,
    pub switch_ns: String,
    pub pairs: Vec<PortPair>,
    pub customers: Vec<Customer>,
    pub vnets: Vec<AzureSide>,
    pub microsoft: Option<AzureSide>,
}

impl EstateLab {
    pub fn namespaces(&self) -> Vec<String> {
        let mut out = vec![self.msee_ns.clone(), self.switch_ns.clone()];
        for c in &self.customers {
            if !out.contains(&c.ns) {
                out.push(c.ns.clone());
            }
        }
        out.extend(self.vnets.iter().map(|v| v.ns.clone()));
        out.extend(self.microsoft.iter().map(|m| m.ns.clone()));
        out
    }

    /// Puts every circuit's customer side in one namespace, `PREFIX-customers`
    /// (interfaces renamed `c<circuit>-<peering>-pri|sec`), for one router
    /// playing every customer: what a scale benchmark needs, where a
    /// router per circuit would measure the routers. The circuits' own
    /// addresses and on-premises networks never overlap, so one namespace
    /// holds them all.
    pub fn share_customer_namespace(&mut self) {
        let ns = format!("{}-customers", self.prefix);
        for (ci, c) in self.customers.iter_mut().enumerate() {
            c.ns = ns.clone();
            for (k, p) in c.peerings.iter_mut().enumerate() {
                p.ifnames = [format!("c{ci}-{k}-pri"), format!("c{ci}-{k}-sec")];
            }
        }
    }

    /// The daemon's port arguments.
    pub fn daemon_port_args(&self) -> Vec<String> {
        let mut args = Vec::new();
        for p in &self.pairs {
            if p.name == "provider" {
                args.extend([
                    "--primary".into(),
                    p.msee[0].clone(),
                    "--secondary".into(),
                    p.msee[1].clone(),
                ]);
            } else {
                args.extend([
                    "--direct".into(),
                    format!("{}={},{}", p.name, p.msee[0], p.msee[1]),
                ]);
            }
        }
        for v in &self.vnets {
            args.extend(["--vnet".into(), format!("{}={}", v.name, v.port)]);
        }
        if let Some(m) = &self.microsoft {
            args.extend(["--microsoft".into(), m.port.clone()]);
        }
        args
    }
}

fn first_host(net: IpNet, n: u128) -> IpAddr {
    match net {
        IpNet::V4(n4) => IpAddr::V4(Ipv4Addr::from(u32::from(n4.network()) + n as u32)),
        IpNet::V6(n6) => IpAddr::V6(Ipv6Addr::from(u128::from(n6.network()) + n)),
    }
}

/// The `i`-th block of `len` bits inside `pool`.
fn nth_v4(pool: Ipv4Net, len: u8, i: u32) -> Result<Ipv4Net> {
    let count = 1u64 << (len - pool.prefix_len());
    if u64::from(i) >= count {
        bail!(
            "the lab's pool {pool} has room for {count} /{len}s, {} needed",
            i + 1
        );
    }
    let base = u32::from(pool.network()) + (i << (32 - len));
    Ok(Ipv4Net::new(base.into(), len)?)
}

fn nth_v6(pool: Ipv6Net, len: u8, i: u32) -> Result<Ipv6Net> {
    let bits = u32::from(len - pool.prefix_len());
    if bits < 32 && u64::from(i) >= 1u64 << bits {
        bail!("the lab's pool {pool} has no room for {} /{len}s", i + 1);
    }
    let base = u128::from(pool.network()) + (u128::from(i) << (128 - u32::from(len)));
    Ok(Ipv6Net::new(base.into(), len)?)
}

/// Every prefix the model names (peering subnets, VNets, public prefixes,
/// Global Reach subnets, services): the lab's pools must stay clear.
fn model_prefixes(model: &Model) -> Vec<(IpNet, String)> {
    let mut out = Vec::new();
    for c in &model.circuits {
        for p in &c.peerings {
            for l in [&p.primary, &p.secondary] {
                out.push((
                    IpNet::V4(l.ipv4.subnet),
                    format!("{} peering subnet", c.name),
                ));
                if let Some(v6) = &l.ipv6 {
                    out.push((IpNet::V6(v6.subnet), format!("{} peering subnet", c.name)));
                }
            }
            for pp in &p.advertised_public_prefixes {
                out.push((*pp, format!("{} advertisedPublicPrefixes", c.name)));
            }
            for (s, _) in &p.service_routes {
                out.push((*s, "a Microsoft service".to_owned()));
            }
        }
    }
    for v in &model.virtual_networks {
        for p in &v.address_prefixes {
            out.push((*p, format!("VNet {}", v.name)));
        }
    }
    for g in &model.global_reach {
        out.push((
            IpNet::V4(g.address_prefix),
            format!("Global Reach {}", g.name),
        ));
    }
    out
}

fn overlaps(a: &IpNet, b: &IpNet) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

fn vlan(tag: VlanTag) -> (u16, u16) {
    match tag {
        VlanTag::Dot1Q(v) => (v, 0),
        VlanTag::QinQ { s_tag, c_tag } => (s_tag, c_tag),
    }
}

/// Plans the lab of `model` under `prefix`. `only`: circuits to build
/// (all when empty).
pub fn plan(model: &Model, prefix: &str, pools: &Pools, only: &[String]) -> Result<EstateLab> {
    crate::validate_prefix(prefix)?;
    let taken = model_prefixes(model);
    // Blocks of the pools that overlap nothing of the model's, in order.
    let clear = |net: IpNet| !taken.iter().any(|(p, _)| overlaps(p, &net));
    let v4_blocks = |pool: Ipv4Net, len: u8, skip: &mut u32| -> Result<Ipv4Net> {
        loop {
            let n = nth_v4(pool, len, *skip)?;
            *skip += 1;
            if clear(IpNet::V4(n)) {
                return Ok(n);
            }
        }
    };
    for name in only {
        model.circuit_named(name).map_err(|e| anyhow::anyhow!(e))?;
    }
    let mut lab = EstateLab {
        prefix: prefix.to_owned(),
        msee_ns: format!("{prefix}-msee"),
        switch_ns: format!("{prefix}-switch"),
        pairs: Vec::new(),
        customers: Vec::new(),
        vnets: Vec::new(),
        microsoft: None,
    };
    let circuits: Vec<_> = model
        .circuits
        .iter()
        .filter(|c| !c.peerings.is_empty() && (only.is_empty() || only.contains(&c.name)))
        .collect();
    if circuits.is_empty() {
        bail!("the configuration has no circuit with peerings to build a lab for");
    }
    let mut direct: Vec<&str> = circuits
        .iter()
        .filter_map(|c| c.express_route_port.as_deref())
        .collect();
    direct.sort_unstable();
    direct.dedup();
    if circuits.iter().any(|c| c.express_route_port.is_none()) {
        lab.pairs.push(PortPair {
            name: "provider".into(),
            msee: ["primary".into(), "secondary".into()],
            trunk: ["t-primary".into(), "t-secondary".into()],
        });
    }
    for (i, port) in direct.iter().enumerate() {
        lab.pairs.push(PortPair {
            name: (*port).to_owned(),
            msee: [format!("direct{i}-pri"), format!("direct{i}-sec")],
            trunk: [format!("t{i}-pri"), format!("t{i}-sec")],
        });
    }
    let mut names = BTreeSet::from([lab.msee_ns.clone(), lab.switch_ns.clone()]);
    let mut unique = |ns: String, what: &str| -> Result<String> {
        if !names.insert(ns.clone()) {
            bail!("{what} would share namespace {ns} with another part of the lab: rename one");
        }
        Ok(ns)
    };
    let mut uses_microsoft = false;
    let mut onprem_next = 0;
    let mut azure_next = 0;
    for (ci, c) in circuits.iter().enumerate() {
        let pair = lab
            .pairs
            .iter()
            .position(|p| match &c.express_route_port {
                Some(port) => p.name == *port,
                None => p.name == "provider",
            })
            .expect("every circuit's pair was planned");
        let onprem = v4_blocks(pools.onprem, 24, &mut onprem_next)?;
        let has_v6 = c
            .peering(PeeringType::AzurePrivatePeering)
            .is_some_and(|p| p.primary.ipv6.is_some());
        let onprem6 = if has_v6 {
            Some(nth_v6(pools.onprem6, 48, ci as u32)?)
        } else {
            None
        };
        let mut customer = Customer {
            circuit: c.name.clone(),
            ns: unique(
                format!("{prefix}-{}", c.name),
                &format!("circuit {}", c.name),
            )?,
            asn: c.peerings[0].peer_asn,
            onprem,
            host: Ipv4Addr::from(u32::from(onprem.network()) + 1),
            onprem6,
            host6: onprem6.map(|n| Ipv6Addr::from(u128::from(n.network()) + 1)),
            public_hosts: Vec::new(),
            peerings: Vec::new(),
        };
        for (k, p) in c.peerings.iter().enumerate() {
            let short = match p.peering_type {
                PeeringType::AzurePrivatePeering => "private",
                PeeringType::MicrosoftPeering => "microsoft",
            };
            let mut announce = Vec::new();
            match p.peering_type {
                PeeringType::AzurePrivatePeering => {
                    announce.push(IpNet::V4(onprem));
                    announce.extend(onprem6.map(IpNet::V6));
                }
                PeeringType::MicrosoftPeering => {
                    uses_microsoft |= !p.service_routes.is_empty();
                    announce.extend(p.advertised_public_prefixes.iter().copied());
                    for pp in &p.advertised_public_prefixes {
                        customer.public_hosts.push(first_host(*pp, 1));
                    }
                }
            }
            customer.peerings.push(CustomerPeering {
                peering_type: p.peering_type,
                ifnames: [format!("pri-{short}"), format!("sec-{short}")],
                access: [format!("a{ci}-{k}-pri"), format!("a{ci}-{k}-sec")],
                pair,
                tags: vlan(p.vlan),
                customer: [
                    (p.primary.ipv4.customer, p.primary.ipv4.subnet.prefix_len()),
                    (
                        p.secondary.ipv4.customer,
                        p.secondary.ipv4.subnet.prefix_len(),
                    ),
                ],
                msee: [p.primary.ipv4.msee, p.secondary.ipv4.msee],
                customer6: p
                    .primary
                    .ipv6
                    .as_ref()
                    .zip(p.secondary.ipv6.as_ref())
                    .map(|(a, b)| {
                        [
                            (a.customer, a.subnet.prefix_len()),
                            (b.customer, b.subnet.prefix_len()),
                        ]
                    }),
                msee6: p
                    .primary
                    .ipv6
                    .as_ref()
                    .zip(p.secondary.ipv6.as_ref())
                    .map(|(a, b)| [a.msee, b.msee]),
                md5: p.shared_key.as_ref().map(|k| k.expose().to_owned()),
                bfd: p.bfd.map(|b| (b.interval_ms, b.multiplier)),
                announce,
            });
        }
        lab.customers.push(customer);
    }
    // The VNets linked to the circuits built, a namespace and port each.
    let linked: BTreeSet<&str> = circuits
        .iter()
        .flat_map(|c| c.vnet_links.iter().map(String::as_str))
        .collect();
    for (i, v) in model
        .virtual_networks
        .iter()
        .filter(|v| linked.contains(v.name.as_str()))
        .enumerate()
    {
        let net = v4_blocks(pools.azure_side, 30, &mut azure_next)?;
        let has_v6 = v.address_prefixes.iter().any(|p| p.addr().is_ipv6());
        let net6 = if has_v6 {
            Some(nth_v6(pools.azure_side6, 126, i as u32)?)
        } else {
            None
        };
        lab.vnets.push(AzureSide {
            name: v.name.clone(),
            ns: unique(format!("{prefix}-{}", v.name), &format!("VNet {}", v.name))?,
            port: format!("vnet{i}"),
            msee_addr: Ipv4Addr::from(u32::from(net.network()) + 1),
            gateway: Ipv4Addr::from(u32::from(net.network()) + 2),
            msee_addr6: net6.map(|n| Ipv6Addr::from(u128::from(n.network()) + 1)),
            gateway6: net6.map(|n| Ipv6Addr::from(u128::from(n.network()) + 2)),
            // Azure's first usable address in a subnet is .4.
            hosts: v
                .address_prefixes
                .iter()
                .map(|p| (p.to_string(), first_host(*p, 4)))
                .collect(),
        });
    }
    if uses_microsoft {
        let net = v4_blocks(pools.azure_side, 30, &mut azure_next)?;
        let net6 = nth_v6(pools.azure_side6, 126, 0xffff)?;
        let mut hosts = Vec::new();
        let mut seen = BTreeSet::new();
        for c in &circuits {
            if let Some(p) = c.peering(PeeringType::MicrosoftPeering) {
                for (prefix, community) in &p.service_routes {
                    if seen.insert(*prefix) {
                        hosts.push((format!("{prefix} ({community})"), first_host(*prefix, 1)));
                    }
                }
            }
        }
        lab.microsoft = Some(AzureSide {
            name: "microsoft".into(),
            ns: unique(format!("{prefix}-microsoft"), "the Microsoft edge")?,
            port: "microsoft".into(),
            msee_addr: Ipv4Addr::from(u32::from(net.network()) + 1),
            gateway: Ipv4Addr::from(u32::from(net.network()) + 2),
            msee_addr6: Some(Ipv6Addr::from(u128::from(net6.network()) + 1)),
            gateway6: Some(Ipv6Addr::from(u128::from(net6.network()) + 2)),
            hosts,
        });
    }
    Ok(lab)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example() -> Model {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../circuit/examples/lab.toml"
        ))
        .unwrap();
        circuit::load_toml(&text).unwrap()
    }

    #[test]
    fn customers_can_share_one_namespace_with_distinct_interfaces() {
        let mut lab = plan(&example(), "t2", &Pools::default(), &[]).unwrap();
        let before = lab.namespaces().len();
        lab.share_customer_namespace();
        let ns = lab.namespaces();
        assert_eq!(ns.len(), before + 1 - lab.customers.len(), "{ns:?}");
        assert!(lab.customers.iter().all(|c| c.ns == "t2-customers"));
        let mut names: Vec<&String> = lab
            .customers
            .iter()
            .flat_map(|c| c.peerings.iter().flat_map(|p| p.ifnames.iter()))
            .collect();
        let all = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), all, "interface names are unique");
        assert!(names.iter().all(|n| n.len() <= 15), "{names:?}");
    }

    #[test]
    fn the_example_gets_a_namespace_per_circuit_and_vnet() {
        let lab = plan(&example(), "t1", &Pools::default(), &[]).unwrap();
        let ns = lab.namespaces();
        assert!(ns.contains(&"t1-er-ams-std".to_owned()) && ns.contains(&"t1-vnet-weu".to_owned()));
        assert!(
            !ns.iter().any(|n| n.contains("er-tokyo-new")),
            "no peerings, no lab"
        );
        assert_eq!(lab.pairs.len(), 2, "the provider pair and one Direct pair");
        assert_eq!(lab.pairs[1].name, "erdirect-ams");
        let ams = &lab.customers[0];
        assert_eq!((ams.circuit.as_str(), ams.asn), ("er-ams-std", 65010));
        assert_eq!(ams.onprem.to_string(), "172.16.0.0/24");
        assert_eq!(ams.peerings[0].tags, (100, 0));
        assert_eq!(ams.peerings[1].ifnames, ["pri-microsoft", "sec-microsoft"]);
        assert_eq!(
            ams.public_hosts,
            ["198.51.100.1".parse::<IpAddr>().unwrap()]
        );
        let direct = lab
            .customers
            .iter()
            .find(|c| c.circuit == "er-direct-prem")
            .unwrap();
        assert_eq!(direct.peerings[0].tags, (400, 10));
        assert_eq!(direct.peerings[0].pair, 1);
        // Every interface name fits the kernel's 15 characters.
        for c in &lab.customers {
            for p in &c.peerings {
                for n in p.ifnames.iter().chain(&p.access) {
                    assert!(n.len() <= 15, "{n}");
                }
            }
        }
        let weu = lab.vnets.iter().find(|v| v.name == "vnet-weu").unwrap();
        assert_eq!(weu.hosts[0].1, "10.10.0.4".parse::<IpAddr>().unwrap());
        assert!(weu.gateway6.is_some(), "vnet-weu has an IPv6 prefix");
        let ms = lab.microsoft.as_ref().unwrap();
        assert_eq!(ms.hosts.len(), 6, "three services, IPv4 and IPv6");
        let args = lab.daemon_port_args().join(" ");
        assert!(
            args.contains("--primary primary --secondary secondary")
                && args.contains("--direct erdirect-ams=direct0-pri,direct0-sec")
                && args.contains("--vnet vnet-weu=vnet")
                && args.contains("--microsoft microsoft"),
            "{args}"
        );
    }

    #[test]
    fn lab_blocks_stay_clear_of_the_model_and_a_full_pool_is_refused() {
        // 10.10.0.0/16 and friends are VNets: the on-premises /24s skip them.
        let pools = Pools {
            onprem: "10.10.0.0/23".parse().unwrap(),
            ..Pools::default()
        };
        let e = plan(&example(), "t2", &pools, &[]).unwrap_err().to_string();
        assert!(
            e.contains("10.10.0.0/23") && e.contains("room for 2"),
            "{e}"
        );
        let pools = Pools {
            onprem: "10.0.0.0/8".parse().unwrap(),
            ..Pools::default()
        };
        let lab = plan(&example(), "t2", &pools, &[]).unwrap();
        for c in &lab.customers {
            assert!(
                !["10.10.", "10.20.", "10.30.", "10.40."]
                    .iter()
                    .any(|v| c.onprem.to_string().starts_with(v)),
                "{}",
                c.onprem
            );
        }
        let e = plan(&example(), "t2", &Pools::default(), &["nope".into()])
            .unwrap_err()
            .to_string();
        assert!(e.contains("nope"), "{e}");
    }
}
