//! Faults around the daemon, counting every packet: a second daemon
//! started on the ports (or the API socket) of a running one is refused
//! with a clear error before it changes anything, and the first runs on
//! undisturbed; a BGP session flapping on the primary costs the flows on
//! the secondary nothing, and the daemon's memory does not grow with it; a
//! flood of malformed frames is counted frame by frame while good traffic
//! goes on.
use std::{
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use e2e_tests::{
    bgp_lab::{BgpLab, CUSTOMER_NET, SESSION_PRIMARY, SESSION_SECONDARY, wait_for},
    frr::{BGPD, Frr, customer_conf},
    require_root,
};
use lab::traffic::{Flow, send_and_count_at};

/// Runs `msee-daemon ARGS` to its end (bounded: 30 s), returns its exit
/// success and stderr. Its state directory is in `lab_dir` unless `args`
/// name one.
fn second_daemon(args: &[String], lab_dir: &std::path::Path) -> (bool, String) {
    let mut command = Command::new(lab::daemon::workspace_bin("msee-daemon").unwrap());
    command.args(args);
    if !args.iter().any(|a| a == "--state-dir") {
        command.arg("--state-dir").arg(lab_dir.join("second-state"));
    }
    let mut child = command
        .args(["--run-for-secs", "20"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `args` with `--api-socket`'s value replaced by `socket`.
fn with_socket(args: &[String], socket: &str) -> Vec<String> {
    let mut out = args.to_vec();
    let i = out.iter().position(|a| a == "--api-socket").unwrap();
    out[i + 1] = socket.to_owned();
    out
}

#[test]
fn a_second_daemon_on_the_same_ports_is_refused_and_the_first_runs_on() {
    if !require_root("a_second_daemon_on_the_same_ports_is_refused_and_the_first_runs_on") {
        return;
    }
    assert!(
        std::path::Path::new(BGPD).exists(),
        "{BGPD} is missing: install FRR (cargo xtask setup does)"
    );
    let lab = BgpLab::up("dup");
    let frr = Frr::start(
        &lab.topo.ns_onprem(),
        &customer_conf(&lab.topo, &lab.dir.join("bgpd.log")),
        &lab.dir,
    );
    let ctx = |what: &str| lab.ctx(what, &frr.log());
    let sessions = [SESSION_PRIMARY, SESSION_SECONDARY];
    lab.wait_both_established(Duration::from_secs(30), || frr.log());
    wait_for(
        "the customer's route on both links",
        Duration::from_secs(15),
        || lab.next_hops(CUSTOMER_NET).len() == 2,
    )
    .unwrap_or_else(|e| panic!("{}", ctx(&e)));
    let received = lab.send(7400, 100);
    assert_eq!(received, 100, "{}", ctx("traffic before"));

    // 1. Same API socket: refused on it, before anything else.
    let (ok, err) = second_daemon(lab.daemon_args(), &lab.dir);
    assert!(!ok, "the second daemon ran: {err}");
    assert!(
        err.contains("another msee-daemon answers on") && err.contains("nothing was started"),
        "{err}"
    );
    // 2. Its own socket, the same ports: refused on the first port that
    // already carries an XDP program.
    let other = lab.dir.join("second.sock").display().to_string();
    let (ok, err) = second_daemon(&with_socket(lab.daemon_args(), &other), &lab.dir);
    assert!(!ok, "the second daemon ran: {err}");
    assert!(
        err.contains("already has an XDP program attached") && err.contains("nothing was started"),
        "{err}"
    );
    assert!(!std::path::Path::new(&other).exists(), "no socket left");
    // 3. The first one's state directory: refused, naming its process.
    let mut same_state = with_socket(lab.daemon_args(), &other);
    same_state.push("--state-dir".into());
    same_state.push(lab.dir.join("state").display().to_string());
    let (ok, err) = second_daemon(&same_state, &lab.dir);
    assert!(!ok, "the second daemon ran: {err}");
    assert!(
        err.contains("uses the state directory") && err.contains("(pid "),
        "{err}"
    );
    assert!(!std::path::Path::new(&other).exists(), "no socket left");

    // The first is untouched: its socket answers, no session went down,
    // and it forwards.
    let api = lab.cli(&["sessions"]);
    assert!(
        api.as_array()
            .unwrap()
            .iter()
            .filter(|s| s["family"] == "Ipv4")
            .all(|s| s["state"] == "Established"),
        "{api}"
    );
    for s in sessions {
        assert_eq!(lab.count("session down", s), 0, "{}", ctx(s));
    }
    assert_eq!(lab.send(7401, 100), 100, "{}", ctx("traffic after"));
}

/// The customer shuts and reopens the primary's BGP session every 2 s for
/// 30 s (so it flaps as often as the daemon takes it back), the MSEE's way
/// to the customer preferring the secondary (the customer prepends its
/// path on the primary): the flows on the secondary, both ways, lose
/// nothing, and the daemon's memory does not grow with the flaps.
#[test]
fn a_flapping_primary_session_costs_the_secondary_nothing() {
    if !require_root("a_flapping_primary_session_costs_the_secondary_nothing") {
        return;
    }
    let run = e2e_tests::faults::flapping(15);
    for (got, what) in run
        .flows
        .iter()
        .zip(["to the customer", "from the customer"])
    {
        assert_eq!(got.received, got.sent, "{what}, on the secondary: {run:?}");
    }
    // As often as the daemon's IdleHold backoff (doubling after each
    // reset) lets the session come back within the 2 s cycles.
    assert!(run.primary_downs >= 3, "{run:?}");
    assert_eq!(run.secondary_downs, 0, "{run:?}");
    assert!(
        run.rss_after as f64 <= run.rss_before as f64 * 1.1,
        "RSS grew over the flaps: {run:?}"
    );
    eprintln!(
        "{} flaps: RSS {} -> {} bytes",
        run.primary_downs, run.rss_before, run.rss_after
    );
}

/// Frames the MSEE must drop as malformed: a UDP/IPv4 frame to `dst_mac`
/// cut inside each of its headers.
fn truncations(dst_mac: [u8; 6], src_mac: [u8; 6]) -> Vec<Vec<u8>> {
    let ip = e2e_tests::vlan_frames::ipv4(
        std::net::Ipv4Addr::new(172, 16, 0, 1),
        std::net::Ipv4Addr::new(10, 1, 0, 4),
        e2e_tests::vlan_frames::PROTO_UDP,
        64,
        &e2e_tests::vlan_frames::udp(4000, 4001, &[0; 32]),
    );
    let whole = e2e_tests::vlan_frames::eth(
        dst_mac,
        src_mac,
        &[],
        e2e_tests::vlan_frames::ETH_P_IPV4,
        &ip,
    );
    // Inside the IPv4 header (1, 10, 19 bytes of it) and inside UDP's.
    [15, 24, 33, 38]
        .iter()
        .map(|&n| whole[..n].to_vec())
        .collect()
}

/// tx and rx drops of `dev` in `ns`, as the kernel counts them.
fn kernel_drops(ns: &str, dev: &str) -> u64 {
    let out = lab::ip_ns(ns, &["-s", "-j", "link", "show", "dev", dev]).unwrap();
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let s = &v[0]["stats64"];
    s["rx"]["dropped"].as_u64().unwrap_or(0) + s["tx"]["dropped"].as_u64().unwrap_or(0)
}

/// A flood of truncated frames on the primary port, as fast as one
/// AF_PACKET socket sends them, mixed with good traffic: every bad frame is
/// counted (as malformed by msee, or as a drop by the veth when its ring
/// was full), and the good traffic keeps at least 0.9 of what it gets
/// without the flood.
#[test]
fn a_flood_of_malformed_frames_is_counted_and_good_traffic_goes_on() {
    if !require_root("a_flood_of_malformed_frames_is_counted_and_good_traffic_goes_on") {
        return;
    }
    // No customer router: the customer reaches the VNet by a static route,
    // the MSEE by the model's VNet route.
    let lab = BgpLab::up_custom("flood", &e2e_tests::bgp_lab::circuit_toml(), &[], |topo| {
        lab::ip_ns(
            &topo.ns_onprem(),
            &[
                "route",
                "add",
                &format!("{}/{}", topo.vnet, topo.vnet_len),
                "via",
                &topo.primary.msee.to_string(),
                "dev",
                lab::IF_PRIMARY,
            ],
        )
        .unwrap();
    });
    let topo = &lab.topo;
    let (onprem, msee) = (topo.ns_onprem(), topo.ns_msee());
    let good = |port: u16| {
        let flow = Flow {
            src_ns: onprem.clone(),
            src_addr: topo.primary.customer.into(),
            src_dev: Some(lab::IF_PRIMARY.into()),
            dst_ns: topo.ns_azure(),
            dst_addr: topo.vnet_host.into(),
            dst_port: port,
        };
        std::thread::spawn(move || send_and_count_at(&flow, 4000, Some(2000)).unwrap())
    };
    let without = good(7420).join().unwrap();
    assert!(without.received > 0, "good traffic alone: {without:?}");

    let malformed = || -> u64 {
        lab.cli(&["counters"])
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["port"] == "primary")
            .unwrap()["drops"]["malformed"]
            .as_u64()
            .unwrap()
    };
    let drops = || kernel_drops(&onprem, lab::IF_PRIMARY) + kernel_drops(&msee, lab::IF_PRIMARY);
    let (malformed_before, drops_before) = (malformed(), drops());
    let bad = truncations(
        lab::mac_of(&msee, lab::IF_PRIMARY).unwrap(),
        lab::mac_of(&onprem, lab::IF_PRIMARY).unwrap(),
    );
    let flood: Vec<Vec<u8>> = bad.iter().cycle().take(200_000).cloned().collect();
    let bad_sent = flood.len() as u64;
    let ifindex = lab::ifindex_of(&onprem, lab::IF_PRIMARY).unwrap();
    let with = good(7421);
    std::thread::sleep(Duration::from_millis(200));
    let started = Instant::now();
    e2e_tests::vlan_lab::send_raw(&onprem, ifindex, flood).unwrap();
    let flood_secs = started.elapsed().as_secs_f64();
    let with = with.join().unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let counted = malformed() - malformed_before;
    let dropped = drops() - drops_before;
    let good_lost = with.sent - with.received;
    eprintln!(
        "flood: {bad_sent} bad frames in {flood_secs:.2} s; msee counted {counted} malformed, \
         the veths dropped {dropped}; good traffic {with:?} (alone {without:?})"
    );
    // The veths' drops hold bad frames and any good ones lost in their
    // rings; a good datagram can also be lost past them (the receiving
    // socket's buffer), so the good losses bound the sum from above only.
    assert!(
        (bad_sent..=bad_sent + good_lost).contains(&(counted + dropped)),
        "every bad frame counted: malformed {counted} + kernel drops {dropped} \
         against {bad_sent} bad frames and {good_lost} good ones lost"
    );
    assert!(counted > 0);
    let share = |r: &lab::traffic::FlowResult| r.received as f64 / r.sent as f64;
    assert!(
        share(&with) >= 0.9 * share(&without),
        "good traffic with the flood {with:?}, without {without:?}"
    );
}
