//! Interop with BIRD 2: `bird` in the on-premises namespace is the customer
//! router (AS 65010) with an MD5-signed IPv4 and IPv6 session to each MSEE
//! link (one `protocol bgp` per neighbour, each with the one channel of its
//! family). Routes from static protocols (both families) reach the
//! dataplane and traffic from Azure follows them; BIRD learns the VNet's
//! ranges with their region community; withdrawal, the route limit and a
//! wrong MD5 key behave as on ExpressRoute. Every change is a new
//! configuration file applied with `birdc configure`. Both ends active,
//! twenty starts of both sides: every session comes up once, with no
//! NOTIFICATION (issue 19). Route churn of 10,000 routes every second
//! costs the stable prefixes' traffic nothing (issue 21).
use std::{path::Path, time::Duration};

use e2e_tests::{
    bgp_lab::{
        BgpLab, CUSTOMER_NET, CUSTOMER_NET6, KEY, SESSION_PRIMARY, SESSION_SECONDARY, VNET6,
        customer_nets, repeated_starts, wait_for,
    },
    bird::{BIRD, Bird, bird_conf, wait_link_local},
    require_root,
};

#[test]
fn bird_customer_router_over_both_links() {
    if !require_root("bird_customer_router_over_both_links") {
        return;
    }
    if !Path::new(BIRD).exists() {
        panic!("{BIRD} is missing: install bird2 (cargo xtask setup does)");
    }
    let lab = BgpLab::up("bird");
    let topo = &lab.topo;
    let log = lab.dir.join("bird.log");
    let conf =
        |nets: &[String], secondary_key: &str| bird_conf(topo, &log, nets, secondary_key, false);
    // The customer's first network in each family.
    let first = || vec![CUSTOMER_NET.to_owned(), CUSTOMER_NET6.to_owned()];
    wait_link_local(topo);
    let bird = Bird::start(&topo.ns_onprem(), &conf(&first(), KEY), &lab.dir);
    let ctx = |what: &str| lab.ctx(what, &bird.log());

    // 1. Both sessions come up, MD5-signed.
    lab.wait_both_established(Duration::from_secs(30), || bird.log());
    wait_for(
        "BIRD sees both Established",
        Duration::from_secs(10),
        || bird.established("msee1") && bird.established("msee2"),
    )
    .unwrap_or_else(|e| panic!("{}", ctx(&e)));

    // 2. The static route reaches both links and traffic follows it.
    lab.check_installed_and_forwarding(false, || bird.log());

    // 3. BIRD learned the VNet from both MSEEs, AS path 12076, with the
    // region community.
    let vnet = || bird.birdc(&["show", "route", "10.1.0.0/16", "all"]);
    wait_for("VNet route at BIRD", Duration::from_secs(15), || {
        let out = vnet();
        out.matches("BGP.community: (12076,51002)").count() == 2
            && out.matches("BGP.as_path: 12076\n").count() == 2
    })
    .unwrap_or_else(|e| panic!("{}", ctx(&format!("{e}: {}", vnet()))));

    // 2b. The same over IPv6: both IPv6 sessions up (MD5-signed), the
    // static fd00:c0::/48 on both links, traffic follows it, and BIRD
    // learned the VNet's IPv6 range from both MSEEs, AS path 12076, with the
    // region community and the MSEE's IPv6 address as next hop.
    lab.wait_ipv6_established(|| bird.log());
    wait_for(
        "BIRD sees both IPv6 sessions Established",
        Duration::from_secs(10),
        || bird.established("msee1v6") && bird.established("msee2v6"),
    )
    .unwrap_or_else(|e| panic!("{}", ctx(&e)));
    // Its next hop towards the MSEEs carries the link-local address too
    // (a 32-octet next hop in MP_REACH_NLRI), which the MSEE accepts.
    for name in ["msee1v6", "msee2v6"] {
        let out = bird.birdc(&["show", "protocols", "all", name]);
        assert!(
            out.lines()
                .any(|l| l.trim_start().starts_with("BGP Next hop:") && l.contains(" fe80:")),
            "{}",
            ctx(&format!(
                "BIRD's IPv6 next hop with its link-local address: {out}"
            ))
        );
    }
    lab.check_installed_and_forwarding(true, || bird.log());
    let vnet6 = || bird.birdc(&["show", "route", VNET6, "all"]);
    wait_for("IPv6 VNet route at BIRD", Duration::from_secs(15), || {
        let out = vnet6();
        out.matches("BGP.community: (12076,51002)").count() == 2
            && out.matches("BGP.as_path: 12076\n").count() == 2
            && [topo.primary6.msee, topo.secondary6.msee]
                .iter()
                .all(|m| out.contains(&format!("BGP.next_hop: {m}")))
    })
    .unwrap_or_else(|e| panic!("{}", ctx(&format!("{e}: {}", vnet6()))));
    lab.check_cli(200);
    lab.check_cli6();

    // AS-path prepending towards the secondary (an export filter change,
    // which BIRD applies without restarting the session) makes it the
    // backup: the group keeps both links, the secondary at a worse
    // preference; removing it makes them equal again.
    let established = lab.established(SESSION_SECONDARY);
    bird.reconfigure(&bird_conf(topo, &log, &first(), KEY, true));
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
    bird.reconfigure(&conf(&first(), KEY));
    lab.wait_equal_paths(|| bird.log());
    assert_eq!(
        lab.established(SESSION_SECONDARY),
        established,
        "{}",
        ctx("the secondary session stayed up through the policy change")
    );

    // 4. Withdrawal: the static route removed from the configuration, one
    // family after the other.
    bird.reconfigure(&conf(&[CUSTOMER_NET6.to_owned()], KEY));
    lab.check_withdrawn(7002, || bird.log());
    bird.reconfigure(&conf(&[], KEY));
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

    // 5. Six prefixes over a limit of five: Cease / max-prefix, which BIRD
    // reports; back with five.
    bird.reconfigure(&conf(&customer_nets(6), KEY));
    lab.wait_max_prefix_teardown(Duration::from_secs(20), || bird.log());
    wait_for("BIRD got the Cease subcode", Duration::from_secs(5), || {
        bird.log()
            .contains("Received: Maximum number of prefixes reached")
    })
    .unwrap_or_else(|e| panic!("{}", ctx(&e)));
    let before = lab.established(SESSION_PRIMARY);
    bird.reconfigure(&conf(&customer_nets(5), KEY));
    lab.wait_established_after(SESSION_PRIMARY, before, Duration::from_secs(30), || {
        bird.log()
    });
    wait_for("BIRD back to Established", Duration::from_secs(30), || {
        bird.established("msee1") && bird.established("msee2")
    })
    .unwrap_or_else(|e| panic!("{}", ctx(&e)));
    lab.wait_five_installed(Duration::from_secs(15), || bird.log());
    assert_eq!(
        lab.send(7003, 50),
        50,
        "{}",
        ctx("traffic follows the re-learned route")
    );

    // 6. A wrong MD5 key on the secondary (BIRD restarts that protocol with
    // it) never establishes; the primary keeps carrying traffic.
    let before = lab.established(SESSION_SECONDARY);
    let refused = lab.md5_failures();
    bird.reconfigure(&conf(&customer_nets(5), "wrong-key"));
    lab.wait_md5_refused(refused, true);
    assert_eq!(
        lab.established(SESSION_SECONDARY),
        before,
        "{}",
        ctx("no session with a wrong key")
    );
    assert!(!bird.established("msee2"), "{}", bird.protocol("msee2"));
    lab.check_secondary_down(&bird.log());
    assert!(bird.established("msee1"), "{}", bird.protocol("msee1"));
    assert_eq!(
        lab.send(7004, 50),
        50,
        "{}",
        ctx("primary alone carries traffic")
    );
    // The right key again: back up.
    bird.reconfigure(&conf(&customer_nets(5), KEY));
    lab.wait_established_after(SESSION_SECONDARY, before, Duration::from_secs(30), || {
        bird.log()
    });
}

/// Issue 19: BIRD and the MSEE both active (BIRD connects out after 1 s
/// and retries every 2 s, the daemon too), both restarted twenty times:
/// every IPv4 and IPv6 session comes up once per start, and no
/// NOTIFICATION crosses either way.
#[test]
fn bird_both_active_twenty_starts() {
    if !require_root("bird_both_active_twenty_starts") {
        return;
    }
    let mut lab = BgpLab::up("bird20");
    wait_link_local(&lab.topo);
    let collisions = repeated_starts(&mut lab, 20, |lab| {
        // A fresh log per start: BIRD appends to its file.
        let log = lab.dir.join("bird.log");
        let _ = std::fs::remove_file(&log);
        let nets = [CUSTOMER_NET.to_owned(), CUSTOMER_NET6.to_owned()];
        let conf = bird_conf(&lab.topo, &log, &nets, KEY, false);
        Bird::start(&lab.topo.ns_onprem(), &conf, &lab.dir)
    });
    eprintln!("20 starts with BIRD: {collisions} connection collisions resolved");
}

/// Route churn (issue 21): BIRD withdraws and re-announces 10,000 routes
/// every second for 30 s (9,900 /24s elsewhere and 100 /25s inside the
/// stable /24s, so half the probed hosts' longest match flips between the
/// churning /25 and its stable /24) while the VNet sends to ten hosts of
/// 100 stable prefixes: nothing sent to the stable prefixes is lost.
#[test]
fn route_churn_costs_the_stable_prefixes_nothing() {
    if !require_root("route_churn_costs_the_stable_prefixes_nothing") {
        return;
    }
    let run = e2e_tests::faults::route_churn(30);
    for (h, got) in &run.flows {
        assert_eq!(got.received, got.sent, "to {h}: {got:?}");
    }
    // The churn reached the dataplane: both sessions withdrew the 10,000
    // many times over.
    assert!(
        run.withdrawn >= 20 * 2 * run.churned as u64,
        "{} prefixes withdrawn in {} churns of {}",
        run.withdrawn,
        run.rounds,
        run.churned
    );
    eprintln!(
        "churn: {} prefixes withdrawn while 10 stable hosts lost nothing",
        run.withdrawn
    );
}
