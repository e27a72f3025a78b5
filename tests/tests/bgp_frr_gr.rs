//! BGP graceful restart (RFC 4724) with FRR as the customer router: with
//! `bgp graceful-restart` (forwarding state preserved) on its side, its
//! bgpd killed and started again, the MSEE keeps the customer's routes
//! and forwards to them all along; its End-of-RIB, once it is back, ends
//! the wait without a route ever being withdrawn. (The daemon runs with
//! `--graceful-restart-secs 120`, the default, said explicitly so that
//! this test keeps testing graceful restart whatever the default.)
use std::{path::Path, time::Duration};

use e2e_tests::{
    bgp_lab::{
        BgpLab, CUSTOMER_NET, SESSION_PRIMARY, SESSION_SECONDARY, circuit_toml, route_lines,
        wait_for,
    },
    frr::{BGPD, Frr, customer_conf},
    require_root, unique_prefix,
};

/// The lab's daemon with graceful restart on (120 s).
fn graceful_lab(tag: &str) -> BgpLab {
    BgpLab::up_custom(
        &unique_prefix(tag),
        &circuit_toml(),
        &["--graceful-restart-secs", "120"],
        |_| {},
    )
}

/// Kills FRR's bgpd outright (no NOTIFICATION: its sockets just close),
/// then lets `Frr` reap it.
fn kill_bgpd(frr: Frr, dir: &Path) {
    let pid = std::fs::read_to_string(dir.join("bgpd.pid")).expect("bgpd.pid");
    let pid = nix::unistd::Pid::from_raw(pid.trim().parse().expect("a pid"));
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL).expect("kill bgpd");
    drop(frr);
    // The next bgpd waits for its own vty socket.
    let _ = std::fs::remove_file(dir.join("bgpd.vty"));
    let _ = std::fs::remove_file(dir.join("bgpd.pid"));
}

#[test]
fn frr_graceful_restart_keeps_the_customers_routes_while_bgpd_restarts() {
    if !require_root("frr_graceful_restart_keeps_the_customers_routes_while_bgpd_restarts") {
        return;
    }
    if !Path::new(BGPD).exists() {
        panic!("{BGPD} is missing: install FRR (cargo xtask setup does)");
    }
    let lab = graceful_lab("frrgr");
    let topo = &lab.topo;
    let conf = customer_conf(topo, &lab.dir.join("bgpd.log")).replace(
        " timers bgp 3 10\n",
        " timers bgp 3 10\n bgp graceful-restart\n bgp graceful-restart preserve-fw-state\n",
    );
    assert!(conf.contains("bgp graceful-restart\n"), "{conf}");
    let frr = Frr::start(&topo.ns_onprem(), &conf, &lab.dir);
    lab.wait_both_established(Duration::from_secs(30), || frr.log());
    lab.check_installed_and_forwarding(false, || frr.log());
    let out = frr.vtysh(&[&format!("show bgp neighbors {} json", topo.primary.msee)]);
    assert!(
        out.contains("gracefulRestart"),
        "FRR sees the MSEE's Graceful Restart capability: {out}"
    );

    // 1. bgpd dies: the MSEE keeps its routes, stale, and forwards.
    kill_bgpd(frr, &lab.dir);
    let no_log = String::new;
    for session in [SESSION_PRIMARY, SESSION_SECONDARY] {
        wait_for(
            &format!("{session} kept through the restart"),
            Duration::from_secs(20),
            || lab.count("peer restarting (graceful restart)", session) > 0,
        )
        .unwrap_or_else(|e| panic!("{}", lab.ctx(&e, &no_log())));
    }
    assert_eq!(
        lab.send(7002, 200),
        200,
        "{}",
        lab.ctx("UDP azure -> customer while its bgpd is down", "")
    );

    // 2. It comes back (forwarding state preserved): both sessions up
    // again, and its End-of-RIB ends the wait.
    let frr = Frr::start(&topo.ns_onprem(), &conf, &lab.dir);
    for session in [SESSION_PRIMARY, SESSION_SECONDARY] {
        lab.wait_established_after(session, 1, Duration::from_secs(60), || frr.log());
        wait_for(
            &format!("{session}: End-of-RIB ends the restart"),
            Duration::from_secs(30),
            || lab.count("stale routes of a restarting peer removed", session) > 0,
        )
        .unwrap_or_else(|e| panic!("{}", lab.ctx(&e, &frr.log())));
    }
    let log = lab.daemon.log();
    let purges: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("stale routes of a restarting peer removed"))
        .collect();
    assert!(
        purges
            .iter()
            .all(|l| l.contains("EndOfRib") && l.contains("withdrawn=0")),
        "{purges:#?}"
    );
    // The customer's prefix was never withdrawn, and still forwards.
    let removed: Vec<String> = route_lines(&log, CUSTOMER_NET)
        .into_iter()
        .filter(|l| l.contains("route removed"))
        .collect();
    assert!(removed.is_empty(), "{removed:#?}");
    lab.check_installed_and_forwarding(false, || frr.log());
}

/// The same loss from FRR without graceful restart (its default: helper
/// only, no family in its capability): the MSEE withdraws the customer's
/// routes at once, and the link goes down.
#[test]
fn frr_without_graceful_restart_loses_its_routes_when_bgpd_dies() {
    if !require_root("frr_without_graceful_restart_loses_its_routes_when_bgpd_dies") {
        return;
    }
    let lab = graceful_lab("frrnogr");
    let topo = &lab.topo;
    let frr = Frr::start(
        &topo.ns_onprem(),
        &customer_conf(topo, &lab.dir.join("bgpd.log")),
        &lab.dir,
    );
    lab.wait_both_established(Duration::from_secs(30), || frr.log());
    lab.check_installed_and_forwarding(false, || frr.log());
    kill_bgpd(frr, &lab.dir);
    wait_for(
        &format!("{CUSTOMER_NET} withdrawn"),
        Duration::from_secs(20),
        || lab.removed(CUSTOMER_NET),
    )
    .unwrap_or_else(|e| panic!("{}", lab.ctx(&e, "")));
    for session in [SESSION_PRIMARY, SESSION_SECONDARY] {
        assert_eq!(
            lab.count("peer restarting (graceful restart)", session),
            0,
            "{}",
            lab.ctx(session, "")
        );
    }
}
