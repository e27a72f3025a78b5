//! Restarting `msee-daemon` under traffic, as an upgrade does: its exit
//! (SIGTERM, or a crash: SIGKILL) leaves the program forwarding on its
//! pinned XDP links and maps; the next daemon of the same state directory
//! adopts them, swaps its own program in, and tells the customer's FRR
//! (graceful restart on) that its forwarding state was preserved. Traffic
//! both ways, counted packet by packet, loses nothing through either
//! restart; `--stop` then leaves no program and no pin behind.
use e2e_tests::{
    bgp_lab::{CUSTOMER_NET, route_lines},
    require_root,
    restart::{Customer, Restart, RestartLab, Stop, xdp_prog},
};

/// The new daemon adopted the pinned state (its three links), the
/// customer's route was never removed, and once both sessions were back
/// with FRR's End-of-RIB, nothing stale was left to remove; its program
/// replaced the old one on the port.
fn check_adopted(r: &Restart) {
    let log = &r.new_log;
    assert!(
        log.contains("adopted the previous instance's forwarding state"),
        "{:?}: no adoption\n{log}",
        r.stop
    );
    let adopted_links = log.lines().filter(|l| l.contains("link adopted")).count();
    assert_eq!(adopted_links, 3, "{log}");
    let reconciled = log
        .lines()
        .find(|l| l.contains("adopted state reconciled"))
        .unwrap_or_else(|| panic!("not reconciled\n{log}"));
    assert!(
        reconciled.contains("all_back=true") && reconciled.contains("stale_routes_removed=0"),
        "{reconciled}"
    );
    let removed: Vec<String> = route_lines(log, CUSTOMER_NET)
        .into_iter()
        .filter(|l| l.contains("route removed"))
        .collect();
    assert!(removed.is_empty(), "{removed:#?}");
    assert!(r.prog_before.is_some() && r.prog_after.is_some(), "{r:?}");
    assert_ne!(
        r.prog_before, r.prog_after,
        "the new daemon's program swapped in"
    );
    if r.stop == Stop::Term {
        assert!(
            r.old_log.contains("forwarding left running"),
            "{}",
            r.old_log
        );
    }
}

fn run(tag: &str, bfd: bool, stops: &[Stop]) {
    let customer = Customer {
        graceful_restart: true,
        bfd,
    };
    let mut rl = RestartLab::up(tag, customer, &[]);
    let (flows, restarts) = rl.restarts_under_traffic(stops, 30, 1000);
    for r in &restarts {
        check_adopted(r);
    }
    for (got, what) in flows.iter().zip(["to the customer", "from the customer"]) {
        assert_eq!(
            got.sent,
            30_000,
            "{}",
            rl.ctx(&format!("{what}: sent at its pace throughout: {got:?}"))
        );
        assert_eq!(
            got.received,
            got.sent,
            "{}",
            rl.ctx(&format!("{what}, through the restarts: {got:?}"))
        );
        eprintln!("{what}: {got:?}");
    }

    // Stopped for good: SIGTERM leaves forwarding, `--stop` removes it
    // all (no program on any port, no pins).
    let ns = rl.lab.topo.ns_msee();
    rl.lab.daemon.stop().unwrap();
    assert!(xdp_prog(&ns, "primary").is_some());
    let out = rl.lab.daemon.remove_left_state().unwrap();
    assert!(out.contains("3 ports detached"), "{out}");
    for dev in ["primary", "secondary", "azure"] {
        assert_eq!(xdp_prog(&ns, dev), None, "{dev}");
    }
    assert!(!msee_sys::bpffs::is_bpffs(&rl.lab.daemon.state_dir.join("bpf")).unwrap());
}

#[test]
fn daemon_restarts_and_a_crash_under_traffic_lose_nothing_with_graceful_restart() {
    if !require_root("daemon_restarts_and_a_crash_under_traffic_lose_nothing_with_graceful_restart")
    {
        return;
    }
    run("rst", false, &[Stop::Term, Stop::Kill]);
}

/// The same with BFD on both links, as ExpressRoute customers run it: the
/// MSEE's BFD stops with its daemon, and FRR, told to check for a control
/// plane failure (RFC 5882 §4.3.1: the MSEE's BFD says it shares fate with
/// its control plane), keeps the session's graceful restart going instead
/// of taking BFD's word that the MSEE is gone.
#[test]
fn daemon_restart_under_traffic_loses_nothing_with_bfd_and_graceful_restart() {
    if !require_root("daemon_restart_under_traffic_loses_nothing_with_bfd_and_graceful_restart") {
        return;
    }
    run("rstbfd", true, &[Stop::Term]);
}

/// A restart with a configuration that no longer has a peering: the next
/// daemon adopts the forwarding state, and the peering's attachments (its
/// VLAN on both ports) go at once, so no frame on that VLAN enters a
/// routing domain the new configuration may give another circuit.
#[test]
fn a_restart_without_a_peering_removes_its_attachments() {
    if !require_root("a_restart_without_a_peering_removes_its_attachments") {
        return;
    }
    let private = e2e_tests::bgp_lab::circuit_toml();
    let microsoft = "\n[[circuits.peerings]]\npeeringType = \"MicrosoftPeering\"\n\
        peerASN = 65010\npeerAddressPrefix = \"203.0.113.0/29\"\nvlanId = 200\n\
        microsoftPeeringConfig = { advertisedPublicPrefixes = [\"198.51.100.0/24\"] }\n";
    // The Microsoft peering goes with the private one, before the VNet.
    let at = private.find("[[virtualNetworks]]").unwrap();
    let both = format!("{}{microsoft}\n{}", &private[..at], &private[at..]);
    let prefix = e2e_tests::unique_prefix("rsa");
    let config = std::env::temp_dir().join(format!("msee-{prefix}.toml"));
    std::fs::write(&config, &both).unwrap();
    let mut lab =
        e2e_tests::estate::EstateLabUp::up(&config, &prefix, lab::estate::CustomerRouter::None)
            .unwrap();
    lab.restart_daemon(|_| std::fs::write(&config, &private).unwrap())
        .unwrap();
    let log = lab.daemon_log();
    let _ = std::fs::remove_file(&config);
    assert!(
        log.contains("adopted the previous instance's forwarding state"),
        "{log}"
    );
    let line = log
        .lines()
        .find(|l| l.contains("this configuration does not have"))
        .unwrap_or_else(|| panic!("no stale attachment removed\n{log}"));
    assert!(line.contains("attachments_removed=2"), "{line}");
}
