//! Faults around the daemon itself: a second daemon started on the ports
//! (or the API socket) of a running one is refused with a clear error
//! before it changes anything, and the first runs on undisturbed.
use std::{
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use e2e_tests::{
    bgp_lab::{BgpLab, CUSTOMER_NET, SESSION_PRIMARY, SESSION_SECONDARY, wait_for},
    frr::{BGPD, Frr, customer_conf},
    require_root,
};

/// Runs `msee-daemon ARGS` to its end (bounded: 30 s), returns its exit
/// success and stderr.
fn second_daemon(args: &[String]) -> (bool, String) {
    let mut child = Command::new(lab::daemon::workspace_bin("msee-daemon").unwrap())
        .args(args)
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
    wait_for("both IPv4 sessions up", Duration::from_secs(30), || {
        sessions.iter().all(|s| lab.established(s) == 1)
    })
    .unwrap_or_else(|e| panic!("{}", ctx(&e)));
    wait_for(
        "the customer's route on both links",
        Duration::from_secs(15),
        || lab.next_hops(CUSTOMER_NET).len() == 2,
    )
    .unwrap_or_else(|e| panic!("{}", ctx(&e)));
    let received = lab.send(7400, 100);
    assert_eq!(received, 100, "{}", ctx("traffic before"));

    // 1. Same API socket: refused on it, before anything else.
    let (ok, err) = second_daemon(lab.daemon_args());
    assert!(!ok, "the second daemon ran: {err}");
    assert!(
        err.contains("another msee-daemon answers on") && err.contains("nothing was started"),
        "{err}"
    );
    // 2. Its own socket, the same ports: refused on the first port that
    // already carries an XDP program.
    let other = lab.dir.join("second.sock").display().to_string();
    let (ok, err) = second_daemon(&with_socket(lab.daemon_args(), &other));
    assert!(!ok, "the second daemon ran: {err}");
    assert!(
        err.contains("already has an XDP program attached") && err.contains("nothing was started"),
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
