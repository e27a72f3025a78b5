//! Both peerings of a circuit on their VLANs, as on ExpressRoute: private
//! peering on 802.1Q 100 and Microsoft peering on 802.1Q 200 over the same
//! two ports, `msee-daemon --tagged`, and FRR as the customer router (its
//! kernel has no 802.1Q either: `vlan_pop` and the egress shim tag and untag
//! for it, as the MSEE's shim does for the MSEE). Each peering's sessions
//! come up on their own VLAN; private peering routes carry traffic from
//! Azure over the tagged links; Microsoft peering refuses the default route,
//! RFC 1918 prefixes and public prefixes the customer did not register,
//! takes the registered one into its own routing domain, and advertises the
//! services the route filter selects.
use std::time::Duration;

use dataplane::{AttachMode, LoadOptions, VlanShim};
use e2e_tests::{
    bgp_lab::{BgpLab, CUSTOMER_AS, KEY, SESSION_PRIMARY, SESSION_SECONDARY, wait_for},
    frr::{BGPD, Frr},
    require_root,
};
use ipnet::IpNet;
use lab::{IF_PRIMARY, IF_SECONDARY, Topology};
use msee_abi::vlan::VlanTags;
use msee_sys::netns;
use traffic::VlanPop;

const PRIVATE_VLAN: u16 = 100;
const MICROSOFT_VLAN: u16 = 200;
const MS_SESSION_PRIMARY: &str = "er-lab/MicrosoftPeering/primary";
const MS_SESSION_SECONDARY: &str = "er-lab/MicrosoftPeering/secondary";
/// Microsoft peering's /30s: customer .1/.5, MSEE .2/.6.
const MS_PRIMARY: (&str, &str) = ("203.0.113.1", "203.0.113.2");
const MS_SECONDARY: (&str, &str) = ("203.0.113.5", "203.0.113.6");
const PUBLIC_PREFIX: &str = "198.51.100.0/24";
/// Exchange Online's service community, and the prefix the catalog gives it.
const EXCHANGE: &str = "12076:5010";
const EXCHANGE_PREFIX: &str = "198.18.10.0/24";
/// Public, but not among the customer's registered prefixes.
const UNREGISTERED_PREFIX: &str = "192.0.2.0/24";

fn circuit_toml() -> String {
    e2e_tests::bgp_lab::circuit_toml()
        + &format!(
            r#"
[[circuits.peerings]]
peeringType = "MicrosoftPeering"
peerASN = {CUSTOMER_AS}
primaryPeerAddressPrefix = "203.0.113.0/30"
secondaryPeerAddressPrefix = "203.0.113.4/30"
vlanId = {MICROSOFT_VLAN}
sharedKey = "{KEY}"
microsoftPeeringConfig = {{ advertisedPublicPrefixes = ["{PUBLIC_PREFIX}"] }}
routeFilter = "rf-exchange"

[[routeFilters]]
name = "rf-exchange"

[[routeFilters.rules]]
name = "exchange"
communities = ["{EXCHANGE}"]
"#
        )
}

/// FRR announces the same four prefixes to every IPv4 neighbour; each
/// peering's import policy decides.
fn frr_conf(topo: &Topology, log: &std::path::Path) -> String {
    let mut c = format!(
        "frr defaults traditional\nhostname onprem\nlog file {}\n!\nrouter bgp {CUSTOMER_AS}\n bgp router-id {}\n no bgp ebgp-requires-policy\n no bgp network import-check\n timers bgp 3 10\n",
        log.display(),
        topo.primary.customer
    );
    for n in [
        topo.primary.msee.to_string(),
        topo.secondary.msee.to_string(),
        MS_PRIMARY.1.to_owned(),
        MS_SECONDARY.1.to_owned(),
    ] {
        c += &format!(
            " neighbor {n} remote-as 12076\n neighbor {n} password {KEY}\n neighbor {n} timers connect 2\n"
        );
    }
    c += " address-family ipv4 unicast\n";
    for p in [
        "172.16.0.0/16",
        PUBLIC_PREFIX,
        UNREGISTERED_PREFIX,
        "10.99.0.0/16",
        "0.0.0.0/0",
    ] {
        c += &format!("  network {p}\n");
    }
    c += " exit-address-family\n!\n";
    c
}

/// The customer's side of the VLANs: its ports pop the accepted tags on
/// the way in and tag its own traffic by destination on the way out.
struct CustomerShim {
    pop: VlanPop,
    push: VlanShim,
    ifindexes: [u32; 2],
}

impl CustomerShim {
    fn attach(topo: &Topology) -> anyhow::Result<Self> {
        let ns = topo.ns_onprem();
        let (pop, push) = netns::on_thread(&ns, || -> anyhow::Result<(VlanPop, VlanShim)> {
            let mut pop = VlanPop::load(&LoadOptions::default())?;
            let mut push = VlanShim::load(&LoadOptions::default())?;
            for dev in [IF_PRIMARY, IF_SECONDARY] {
                let ifindex = traffic::iface::ifindex(None, dev)?;
                pop.attach(ifindex, AttachMode::Native)?;
                push.attach_egress(ifindex)?;
                for vid in [PRIVATE_VLAN, MICROSOFT_VLAN] {
                    pop.accept(ifindex, VlanTags::dot1q(vid))?;
                }
            }
            Ok((pop, push))
        })??;
        let pri = lab::ifindex_of(&ns, IF_PRIMARY)?;
        let sec = lab::ifindex_of(&ns, IF_SECONDARY)?;
        let mut shim = Self {
            pop,
            push,
            ifindexes: [pri, sec],
        };
        for (ifindex, net, vid) in [
            (pri, "192.168.100.128/30", PRIVATE_VLAN),
            (sec, "192.168.100.132/30", PRIVATE_VLAN),
            (pri, "fd00:100::/126", PRIVATE_VLAN),
            (sec, "fd00:100::4/126", PRIVATE_VLAN),
            (pri, "203.0.113.0/30", MICROSOFT_VLAN),
            (sec, "203.0.113.4/30", MICROSOFT_VLAN),
        ] {
            let net: IpNet = net.parse()?;
            shim.push
                .set_egress_tag(ifindex, net, VlanTags::dot1q(vid))?;
        }
        Ok(shim)
    }
}

#[test]
fn both_peerings_run_on_their_vlans() {
    if !require_root("both_peerings_run_on_their_vlans") {
        return;
    }
    assert!(
        std::path::Path::new(BGPD).exists(),
        "{BGPD} is missing: install FRR (cargo xtask setup does)"
    );
    let mut shim = None;
    let lab = BgpLab::up_custom(
        &e2e_tests::unique_prefix("vlp"),
        &circuit_toml(),
        &["--tagged", "--microsoft", "microsoft"],
        |topo| {
            // The Microsoft edge: the services Microsoft peering reaches.
            lab::ip_ns(
                &topo.ns_msee(),
                &[
                    "link",
                    "add",
                    "microsoft",
                    "type",
                    "veth",
                    "peer",
                    "name",
                    "msee-ms",
                    "netns",
                    &topo.ns_azure(),
                ],
            )
            .unwrap();
            lab::ip_ns(
                &topo.ns_msee(),
                &["addr", "add", "100.127.255.1/30", "dev", "microsoft"],
            )
            .unwrap();
            lab::ip_ns(
                &topo.ns_azure(),
                &["addr", "add", "100.127.255.2/30", "dev", "msee-ms"],
            )
            .unwrap();
            for (ns, dev) in [(topo.ns_msee(), "microsoft"), (topo.ns_azure(), "msee-ms")] {
                lab::ip_ns(&ns, &["link", "set", dev, "up"]).unwrap();
            }
            // Microsoft peering's addresses sit on the same ports.
            for (ns, dev, addr) in [
                (topo.ns_onprem(), IF_PRIMARY, MS_PRIMARY.0),
                (topo.ns_msee(), IF_PRIMARY, MS_PRIMARY.1),
                (topo.ns_onprem(), IF_SECONDARY, MS_SECONDARY.0),
                (topo.ns_msee(), IF_SECONDARY, MS_SECONDARY.1),
            ] {
                lab::ip_ns(&ns, &["addr", "add", &format!("{addr}/30"), "dev", dev]).unwrap();
            }
            shim = Some(CustomerShim::attach(topo).unwrap());
        },
    );
    let topo = &lab.topo;
    let frr = Frr::start(
        &topo.ns_onprem(),
        &frr_conf(topo, &lab.dir.join("bgpd.log")),
        &lab.dir,
    );
    let ctx = |what: &str| lab.ctx(what, &frr.log());

    // Each peering's sessions come up, each on its own VLAN: the customer
    // and the MSEE can only reach each other's addresses through the tags.
    for session in [
        SESSION_PRIMARY,
        SESSION_SECONDARY,
        MS_SESSION_PRIMARY,
        MS_SESSION_SECONDARY,
    ] {
        lab.wait_established_after(session, 0, Duration::from_secs(40), || frr.log());
    }
    let links = lab.cli(&["links"]);
    let names: Vec<&str> = links
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "er-lab/AzurePrivatePeering/primary",
            "er-lab/AzurePrivatePeering/secondary",
            "er-lab/MicrosoftPeering/primary",
            "er-lab/MicrosoftPeering/secondary",
            "azure",
            "microsoft"
        ],
        "one link per peering per port: {links}"
    );

    // Private peering: the customer's routes (the default route too) on
    // both tagged links, and Azure's traffic follows them.
    wait_for(
        "172.16.0.0/16 on both links",
        Duration::from_secs(15),
        || lab.installed_on_both("172.16.0.0/16"),
    )
    .unwrap_or_else(|e| panic!("{}", ctx(&e)));
    assert_eq!(
        lab.send(7401, 200),
        200,
        "{}",
        ctx("azure -> 172.16.0.1 over VLAN 100")
    );
    let counters = lab.cli(&["counters"]);
    let tx: u64 = counters
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| {
            p["port"]
                .as_str()
                .unwrap()
                .contains("/AzurePrivatePeering/")
        })
        .map(|p| p["tx_packets"].as_u64().unwrap())
        .sum();
    assert!(tx >= 200, "the private links carried it: {counters}");

    // Microsoft peering: only the public prefix is taken, into its own
    // domain; the default route and RFC 1918 prefixes are refused.
    let routes = || lab.cli(&["routes", "er-lab"]);
    wait_for(
        "the public prefix on Microsoft peering",
        Duration::from_secs(15),
        || {
            routes()
                .as_array()
                .unwrap()
                .iter()
                .any(|r| r["peering"] == "MicrosoftPeering" && r["prefix"] == PUBLIC_PREFIX)
        },
    )
    .unwrap_or_else(|e| panic!("{}", ctx(&e)));
    let ms: Vec<String> = routes()
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["peering"] == "MicrosoftPeering")
        .map(|r| r["prefix"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ms, [PUBLIC_PREFIX], "{}", ctx("Microsoft peering's routes"));
    let private: Vec<String> = routes()
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| {
            r["peering"] == "AzurePrivatePeering" && r["prefix"].as_str().unwrap().contains('.')
        })
        .map(|r| r["prefix"].as_str().unwrap().to_owned())
        .collect();
    for p in ["0.0.0.0/0", "10.99.0.0/16", "172.16.0.0/16", PUBLIC_PREFIX] {
        assert!(
            private.iter().any(|x| x == p),
            "private peering takes {p}: {private:?}"
        );
    }
    let log = lab.daemon.log();
    for (prefix, why) in [
        ("0.0.0.0/0", "default route refused on Microsoft peering"),
        (
            "10.99.0.0/16",
            "RFC 1918 prefix refused on Microsoft peering",
        ),
        (
            "172.16.0.0/16",
            "RFC 1918 prefix refused on Microsoft peering",
        ),
    ] {
        assert!(
            log.lines()
                .any(|l| l.contains(MS_SESSION_PRIMARY) && l.contains(prefix) && l.contains(why)),
            "{}",
            ctx(&format!("{prefix} refused: {why}"))
        );
    }
    // Microsoft peering advertises what the route filter selects: Exchange
    // Online's prefix with its service community, from both MSEEs.
    wait_for("Exchange's prefix at FRR", Duration::from_secs(15), || {
        let out = frr.vtysh(&[&format!("show bgp ipv4 unicast {EXCHANGE_PREFIX} json")]);
        let v: serde_json::Value = serde_json::from_str(&out).unwrap_or_default();
        let paths = v["paths"].as_array().cloned().unwrap_or_default();
        paths.len() == 2
            && paths
                .iter()
                .all(|p| p["community"]["string"].as_str() == Some(EXCHANGE))
    })
    .unwrap_or_else(|e| panic!("{}", ctx(&e)));
    // ... and not the VNets, which are private peering's.
    let out = frr.vtysh(&["show bgp ipv4 unicast 10.1.0.0/16 json"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap_or_default();
    let from: Vec<String> = v["paths"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|p| p["peer"]["peerId"].as_str().unwrap_or("").to_owned())
        .collect();
    assert!(
        from.len() == 2 && from.iter().all(|p| p.starts_with("192.168.100.")),
        "the VNet only from private peering: {out}"
    );

    // The tags were really on the wire, both ways: every peering link of
    // the MSEE took the customer's frames for it on its own VLAN (a frame
    // untagged or on another VLAN would not be counted there), and the
    // customer's ports popped the MSEE's tagged frames.
    let counters = lab.cli(&["counters"]);
    for p in counters.as_array().unwrap() {
        if p["port"] != "azure" {
            assert!(
                p["pass_packets"].as_u64().unwrap() > 0,
                "{} got its peering's own traffic on its VLAN: {counters}",
                p["port"]
            );
        }
    }
    let shim = shim.unwrap();
    for ifindex in shim.ifindexes {
        let c = shim.pop.counters(ifindex).unwrap();
        assert!(
            c.popped > 0,
            "the customer's port {ifindex} popped tags: {c:?}"
        );
        assert_eq!(c.unknown, 0, "no frame on an unexpected VLAN: {c:?}");
        let pushed = shim.push.counters(ifindex).unwrap();
        assert!(
            pushed.tagged > 0,
            "the customer's own traffic was tagged: {pushed:?}"
        );
    }
    drop(frr);
    drop(lab);
}
