//! Interop with FRR: `bgpd` in the on-premises namespace is the customer
//! router (AS 65010) with an IPv4 and an IPv6 session to each MSEE link,
//! MD5-signed. Routes it advertises (both families) reach the dataplane and
//! traffic from Azure follows them; it learns the VNet with its region
//! community; withdrawal, the route limit and a wrong MD5 key behave as on
//! ExpressRoute. Both ends active, twenty starts of both sides: every
//! session comes up once, with no NOTIFICATION (issue 19).
use std::{net::IpAddr, path::Path, time::Duration};

use e2e_tests::{
    bgp_lab::{
        BgpLab, CUSTOMER_NET, CUSTOMER_NET6, KEY, RestartableRouter, SESSION_PRIMARY,
        SESSION_SECONDARY, VNET6, WEST_EUROPE, customer_nets, repeated_starts, wait_for,
    },
    frr::{BGPD, Frr, customer_conf},
    require_root,
};

#[test]
fn frr_customer_router_over_both_links() {
    if !require_root("frr_customer_router_over_both_links") {
        return;
    }
    if !Path::new(BGPD).exists() {
        panic!("{BGPD} is missing: install FRR (cargo xtask setup does)");
    }
    let lab = BgpLab::up("frr");
    let topo = &lab.topo;
    let frr = Frr::start(
        &topo.ns_onprem(),
        &customer_conf(topo, &lab.dir.join("bgpd.log")),
        &lab.dir,
    );
    let ctx = |what: &str| lab.ctx(what, &frr.log());

    // 1. Both sessions come up, MD5-signed.
    lab.wait_both_established(Duration::from_secs(30), || frr.log());
    for a in [topo.primary.msee, topo.secondary.msee] {
        assert_eq!(frr.neighbour_state(a), "Established", "{}", ctx("FRR side"));
    }

    // 2. 172.16.0.0/16, learned on both links at equal AS-path length, is
    // one group with both links at equal preference.
    // And traffic from Azure follows it to the customer.
    lab.check_installed_and_forwarding(false, || frr.log());

    // 3. FRR learned the VNet from both MSEEs, with the region community
    // and the MSEE as next hop.
    wait_for("VNet route at FRR", Duration::from_secs(15), || {
        let out = frr.vtysh(&["show bgp ipv4 unicast 10.1.0.0/16 json"]);
        let Ok(v) = serde_json::from_str::<serde_json::Value>(&out) else {
            return false;
        };
        let paths = v["paths"].as_array().cloned().unwrap_or_default();
        paths.len() == 2
            && paths.iter().all(|p| {
                p["community"]["string"].as_str() == Some(WEST_EUROPE)
                    && p["aspath"]["string"].as_str() == Some("12076")
            })
    })
    .unwrap_or_else(|e| {
        panic!(
            "{}",
            ctx(&format!(
                "{e}: {}",
                frr.vtysh(&["show bgp ipv4 unicast 10.1.0.0/16 json"])
            ))
        )
    });

    // 2b. The same over IPv6: the IPv6 sessions on both links carry
    // fd00:c0::/48 into the maps, traffic follows it, and FRR learned the
    // VNet's IPv6 range with the region community, next hop the MSEE.
    lab.wait_ipv6_established(|| frr.log());
    lab.check_installed_and_forwarding(true, || frr.log());
    wait_for("IPv6 VNet route at FRR", Duration::from_secs(15), || {
        let out = frr.vtysh(&[&format!("show bgp ipv6 unicast {VNET6} json")]);
        let Ok(v) = serde_json::from_str::<serde_json::Value>(&out) else {
            return false;
        };
        let paths = v["paths"].as_array().cloned().unwrap_or_default();
        paths.len() == 2
            && paths.iter().all(|p| {
                p["community"]["string"].as_str() == Some(WEST_EUROPE)
                    && p["aspath"]["string"].as_str() == Some("12076")
            })
    })
    .unwrap_or_else(|e| {
        panic!(
            "{}",
            ctx(&format!(
                "{e}: {}",
                frr.vtysh(&[&format!("show bgp ipv6 unicast {VNET6} json")])
            ))
        )
    });

    // The operator's view: sessions, routes and counters through msee-cli.
    lab.check_cli(200);

    // AS-path prepending on the secondary makes it the backup: the group
    // keeps both links, the secondary at a worse preference.
    let s = topo.secondary.msee;
    let out = frr.vtysh(&[
        "configure terminal",
        "route-map PREPEND permit 10",
        "set as-path prepend 65010 65010",
        "exit",
        "router bgp 65010",
        "address-family ipv4 unicast",
        &format!("neighbor {s} route-map PREPEND out"),
        "end",
        &format!("clear bgp ipv4 unicast {s} soft out"),
    ]);
    assert!(!out.contains("% "), "prepend config: {out}");
    wait_for(
        "prepended path on the secondary",
        Duration::from_secs(15),
        || lab.next_hops(CUSTOMER_NET) == vec![("primary".into(), 1), ("secondary".into(), 3)],
    )
    .unwrap_or_else(|e| panic!("{}", ctx(&e)));
    assert_eq!(
        lab.send(7005, 50),
        50,
        "{}",
        ctx("traffic over the preferred link")
    );
    let out = frr.vtysh(&[
        "configure terminal",
        "router bgp 65010",
        "address-family ipv4 unicast",
        &format!("no neighbor {s} route-map PREPEND out"),
        "end",
        &format!("clear bgp ipv4 unicast {s} soft out"),
    ]);
    assert!(!out.contains("% "), "prepend removal: {out}");
    lab.wait_equal_paths(|| frr.log());

    // 4. Withdrawal removes the route; traffic stops. Both families.
    frr.configure(&["address-family ipv4 unicast", "no network 172.16.0.0/16"]);
    lab.check_withdrawn(7002, || frr.log());
    frr.configure(&[
        "address-family ipv6 unicast",
        &format!("no network {CUSTOMER_NET6}"),
    ]);
    wait_for("fd00:c0::/48 removed", Duration::from_secs(15), || {
        lab.removed(CUSTOMER_NET6)
    })
    .unwrap_or_else(|e| panic!("{}", ctx(&e)));
    assert_eq!(
        lab.send6(7012, 20),
        0,
        "{}",
        ctx("no IPv6 route, no delivery")
    );

    // 5. Six prefixes over a limit of five: Cease / max-prefix, and the
    // sessions come back once the customer is under the limit.
    let nets: Vec<String> = customer_nets(6)
        .iter()
        .map(|n| format!("network {n}"))
        .collect();
    let mut lines = vec!["address-family ipv4 unicast"];
    lines.extend(nets.iter().map(String::as_str));
    frr.configure(&lines);
    lab.wait_max_prefix_teardown(Duration::from_secs(20), || frr.log());
    let frr_said = frr.vtysh(&[&format!("show bgp neighbors {}", topo.primary.msee)]);
    assert!(
        frr_said.contains("Maximum Number of Prefixes Reached"),
        "FRR saw the Cease subcode: {frr_said}"
    );
    frr.configure(&["address-family ipv4 unicast", "no network 172.21.0.0/16"]);
    let established_before = lab.established(SESSION_PRIMARY);
    wait_for(
        "sessions back under the limit",
        Duration::from_secs(30),
        || {
            frr.neighbour_state(topo.primary.msee) == "Established"
                && frr.neighbour_state(topo.secondary.msee) == "Established"
        },
    )
    .unwrap_or_else(|e| panic!("{}", ctx(&e)));
    assert!(lab.established(SESSION_PRIMARY) >= established_before);
    lab.wait_five_installed(Duration::from_secs(15), || frr.log());
    assert_eq!(
        lab.send(7003, 50),
        50,
        "{}",
        ctx("traffic follows the re-learned route")
    );

    // 6. A wrong MD5 key on the secondary never establishes; the primary
    // keeps carrying traffic.
    let before = lab.established(SESSION_SECONDARY);
    let refused = lab.md5_failures();
    frr.configure(&[&format!(
        "neighbor {} password wrong-key",
        topo.secondary.msee
    )]);
    lab.wait_md5_refused(refused, true);
    assert_eq!(
        lab.established(SESSION_SECONDARY),
        before,
        "{}",
        ctx("no session with a wrong key")
    );
    assert_ne!(frr.neighbour_state(topo.secondary.msee), "Established");
    // The secondary's session went down: its link was flipped down and its
    // stale routes withdrawn afterwards, leaving the primary alone.
    lab.check_secondary_down(&frr.log());
    assert_eq!(frr.neighbour_state(topo.primary.msee), "Established");
    assert_eq!(
        lab.send(7004, 50),
        50,
        "{}",
        ctx("primary alone carries traffic")
    );
    // The right key again: back up.
    frr.configure(&[&format!("neighbor {} password {KEY}", topo.secondary.msee)]);
    lab.wait_established_after(SESSION_SECONDARY, before, Duration::from_secs(30), || {
        frr.log()
    });
}

/// FRR and the four MSEE addresses it peers with.
struct FrrRouter {
    frr: Frr,
    peers: [IpAddr; 4],
}

impl FrrRouter {
    fn neighbour(&self, addr: IpAddr) -> serde_json::Value {
        let out = self
            .frr
            .vtysh(&[&format!("show bgp neighbors {addr} json")]);
        serde_json::from_str::<serde_json::Value>(&out)
            .map(|v| v[addr.to_string()].clone())
            .unwrap_or_default()
    }
}

impl RestartableRouter for FrrRouter {
    fn all_established(&self) -> bool {
        self.peers
            .iter()
            .all(|a| self.neighbour(*a)["bgpState"] == "Established")
    }

    /// FRR's counters: no NOTIFICATION either way, the one connection
    /// never dropped; and its log has no %NOTIFICATION line.
    fn no_notification(&self) -> Result<(), String> {
        for a in self.peers {
            let n = self.neighbour(a);
            let stats = &n["messageStats"];
            if stats["notificationsSent"] != 0
                || stats["notificationsRecv"] != 0
                || n["connectionsEstablished"] != 1
                || n["connectionsDropped"] != 0
            {
                return Err(format!("FRR's neighbour {a}: {n}"));
            }
        }
        match self.log().lines().find(|l| l.contains("%NOTIFICATION")) {
            Some(l) => Err(format!("FRR logged {l}")),
            None => Ok(()),
        }
    }

    fn log(&self) -> String {
        self.frr.log()
    }
}

/// Issue 19's first test: FRR and the MSEE both active (FRR connects out
/// every 2 s, the daemon too), both restarted twenty times: every IPv4 and
/// IPv6 session comes up once per start, and no NOTIFICATION crosses
/// either way. bgpd runs alone, as in the other FRR tests: with zebra,
/// bgpd fails every connection made in its first moments, before zebra
/// has told it its interfaces ("nexthop_set failed ... intf (Unknown)",
/// "bgp_getsockname(): failed"), with an FSM error 5/0, whoever opened it;
/// that FRR race, not a collision, is the 5/0 the demo showed.
#[test]
fn frr_both_active_twenty_starts() {
    if !require_root("frr_both_active_twenty_starts") {
        return;
    }
    let mut lab = BgpLab::up("frr20");
    let t = lab.topo.clone();
    let peers = [
        t.primary.msee.into(),
        t.secondary.msee.into(),
        t.primary6.msee.into(),
        t.secondary6.msee.into(),
    ];
    let collisions = repeated_starts(&mut lab, 20, |lab| {
        // A fresh log per start: FRR appends to its file.
        let log = lab.dir.join("bgpd.log");
        let _ = std::fs::remove_file(&log);
        FrrRouter {
            frr: Frr::start(
                &lab.topo.ns_onprem(),
                &customer_conf(&lab.topo, &log),
                &lab.dir,
            ),
            peers,
        }
    });
    eprintln!("20 starts with FRR: {collisions} connection collisions resolved");
}
