//! Restarting `msee-daemon` under traffic, as an upgrade does: its exit
//! (SIGTERM, or a crash: SIGKILL) leaves the program forwarding on its
//! pinned XDP links and maps; the next daemon of the same state directory
//! adopts them, swaps its own program in, and tells the customer's FRR
//! (graceful restart on) that its forwarding state was preserved. Traffic
//! both ways, counted packet by packet, loses nothing through either
//! restart; `--stop` then leaves no program and no pin behind.
use std::{path::Path, time::Duration};

use e2e_tests::{
    bgp_lab::{
        BgpLab, CUSTOMER_HOST, CUSTOMER_NET, SESSION_PRIMARY, SESSION_SECONDARY, circuit_toml,
        route_lines, wait_for,
    },
    frr::{BGPD, Frr, customer_conf},
    require_root, unique_prefix,
};
use lab::{
    daemon::Daemon,
    traffic::{Flow, send_and_count_at},
};

/// The XDP program id on `dev` in `ns` (`None`: no program).
fn xdp_prog(ns: &str, dev: &str) -> Option<u64> {
    let out = std::process::Command::new("ip")
        .args(["-j", "-d", "-n", ns, "link", "show", "dev", dev])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    v[0]["xdp"]["prog"]["id"].as_u64()
}

/// The previous daemon's log kept under `name` (a new daemon's starts afresh).
fn keep_log(lab: &BgpLab, name: &str) {
    let _ = std::fs::copy(&lab.daemon.stderr_path, lab.dir.join(name));
}

/// The new daemon adopted the pinned state, the customer's routes were
/// never removed, and once both sessions were back with FRR's End-of-RIB,
/// nothing stale was left to remove.
fn check_adopted(lab: &BgpLab, frr: &Frr) {
    for session in [SESSION_PRIMARY, SESSION_SECONDARY] {
        lab.wait_established_after(session, 0, Duration::from_secs(60), || frr.log());
    }
    wait_for(
        "the adopted state reconciled",
        Duration::from_secs(60),
        || lab.daemon.log().contains("adopted state reconciled"),
    )
    .unwrap_or_else(|e| panic!("{}", lab.ctx(&e, &frr.log())));
    let log = lab.daemon.log();
    assert!(
        log.contains("adopted the previous instance's forwarding state"),
        "{}",
        lab.ctx("no adoption", &frr.log())
    );
    let adopted_links = log.lines().filter(|l| l.contains("link adopted")).count();
    assert_eq!(adopted_links, 3, "{}", lab.ctx("links adopted", ""));
    let reconciled = log
        .lines()
        .find(|l| l.contains("adopted state reconciled"))
        .unwrap();
    assert!(
        reconciled.contains("all_back=true") && reconciled.contains("stale_routes_removed=0"),
        "{reconciled}"
    );
    let removed: Vec<String> = route_lines(&log, CUSTOMER_NET)
        .into_iter()
        .filter(|l| l.contains("route removed"))
        .collect();
    assert!(removed.is_empty(), "{removed:#?}");
}

#[test]
fn daemon_restarts_and_a_crash_under_traffic_lose_nothing_with_graceful_restart() {
    if !require_root("daemon_restarts_and_a_crash_under_traffic_lose_nothing_with_graceful_restart")
    {
        return;
    }
    assert!(
        Path::new(BGPD).exists(),
        "{BGPD} is missing: install FRR (cargo xtask setup does)"
    );
    let mut lab = BgpLab::up_full(&unique_prefix("rst"), &circuit_toml(), &[], |_| {}, true);
    let topo = lab.topo.clone();
    let conf = customer_conf(&topo, &lab.dir.join("bgpd.log")).replace(
        " timers bgp 3 10\n",
        " timers bgp 3 10\n bgp graceful-restart\n bgp graceful-restart preserve-fw-state\n",
    );
    let frr = Frr::start(&topo.ns_onprem(), &conf, &lab.dir);
    lab.wait_both_established(Duration::from_secs(30), || frr.log());
    lab.check_installed_and_forwarding(false, || frr.log());
    let first_prog = xdp_prog(&topo.ns_msee(), "primary").expect("msee on the primary port");

    // 30 s of traffic each way, 1,000 pps, through both restarts.
    let flows: Vec<_> = [
        Flow {
            src_ns: topo.ns_azure(),
            src_addr: topo.vnet_host.into(),
            src_dev: None,
            dst_ns: topo.ns_onprem(),
            dst_addr: CUSTOMER_HOST.into(),
            dst_port: 7500,
        },
        Flow {
            src_ns: topo.ns_onprem(),
            src_addr: CUSTOMER_HOST.into(),
            src_dev: None,
            dst_ns: topo.ns_azure(),
            dst_addr: topo.vnet_host.into(),
            dst_port: 7501,
        },
    ]
    .into_iter()
    .map(|f| std::thread::spawn(move || send_and_count_at(&f, 30_000, Some(1000)).unwrap()))
    .collect();
    std::thread::sleep(Duration::from_secs(1));

    // 1. SIGTERM (an upgrade), and a new daemon of the same state directory.
    lab.daemon.stop().unwrap();
    keep_log(&lab, "daemon.1.log");
    assert!(
        lab.daemon.log().contains("forwarding left running"),
        "{}",
        lab.daemon.log()
    );
    assert_eq!(
        xdp_prog(&topo.ns_msee(), "primary"),
        Some(first_prog),
        "forwarding runs on while no daemon does"
    );
    lab.daemon = Daemon::start_hitless(lab.daemon_args(), &lab.dir).unwrap();
    check_adopted(&lab, &frr);
    let second_prog = xdp_prog(&topo.ns_msee(), "primary").expect("msee on the primary port");
    assert_ne!(
        second_prog, first_prog,
        "the new daemon's program swapped in"
    );

    // 2. SIGKILL (a crash), and a new daemon again.
    lab.daemon.kill_outright();
    keep_log(&lab, "daemon.2.log");
    lab.daemon = Daemon::start_hitless(lab.daemon_args(), &lab.dir).unwrap();
    check_adopted(&lab, &frr);
    assert_ne!(xdp_prog(&topo.ns_msee(), "primary"), Some(second_prog));

    for (f, what) in flows
        .into_iter()
        .zip(["to the customer", "from the customer"])
    {
        let got = f.join().unwrap();
        assert_eq!(got.sent, 30_000, "{what}: sent at its pace throughout");
        assert_eq!(
            got.received,
            got.sent,
            "{}",
            lab.ctx(
                &format!("{what}, through both restarts: {got:?}"),
                &frr.log()
            )
        );
        eprintln!("{what}: {got:?}");
    }

    // 3. Stopped for good: SIGTERM leaves forwarding, `--stop` removes it
    // all (no program on any port, no pins).
    lab.daemon.stop().unwrap();
    assert!(xdp_prog(&topo.ns_msee(), "primary").is_some());
    let out = lab.daemon.remove_left_state().unwrap();
    assert!(out.contains("3 ports detached"), "{out}");
    for dev in ["primary", "secondary", "azure"] {
        assert_eq!(xdp_prog(&topo.ns_msee(), dev), None, "{dev}");
    }
    assert!(!msee_sys::bpffs::is_bpffs(&lab.daemon.state_dir.join("bpf")).unwrap());
}
