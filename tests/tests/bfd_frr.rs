//! Interop with FRR's `bfdd` (single hop, RFC 5881): FRR is the customer
//! router in one namespace, our `bfd` crate the MSEE in the other, 100 ms
//! x 3 on both sides. Both come Up; a silent failure (every UDP frame
//! dropped by XDP on both veth ends, carrier untouched) is detected by us
//! with diag 1 within the negotiated Detection Time and by FRR too; both
//! recover; interval changes on either side run a Poll Sequence without a
//! flap; AdminDown on either side is signalled (diag 3 / diag 7); a killed
//! bfdd is detected like a silent failure.
//!
//! Timing on a shared VM is noisy: detection is checked against the
//! negotiated Detection Time (never before it; at most 150 ms late), and
//! the measured figures are printed (`-- --nocapture`).
use std::{
    net::IpAddr,
    path::Path,
    sync::Mutex,
    time::{Duration, Instant},
};

use bfd::{Config, Diag, State, transport::PeerConfig};
use e2e_tests::{
    bfd_lab::{BfdLab, Bfdd, CUSTOMER, IF_CUSTOMER, IF_MSEE, MSEE, OurBfd, XdpDrop},
    bgp_lab::wait_for,
    require_root,
};

/// The lab tests time detection: one at a time in this binary.
static SERIAL: Mutex<()> = Mutex::new(());

const PEER_LINE: &str = "peer 192.168.100.130 local-address 192.168.100.129";

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn frr_conf(dir: &Path, interval_ms: u64) -> String {
    format!(
        "log file {log} debugging
debug bfd peer
debug bfd network
!
bfd
 {PEER_LINE}
  receive-interval {interval_ms}
  transmit-interval {interval_ms}
  detect-multiplier 3
 !
!
",
        log = dir.join("bfdd.log").display(),
    )
}

fn our_peer(interval_ms: u64) -> PeerConfig {
    PeerConfig {
        name: "er-lab/AzurePrivatePeering/primary".into(),
        local: IpAddr::V4(MSEE),
        peer: IpAddr::V4(CUSTOMER),
        ifname: Some(IF_MSEE.into()),
        session: Config {
            desired_min_tx: ms(interval_ms),
            required_min_rx: ms(interval_ms),
            detect_mult: 3,
        },
    }
}

fn ctx(what: &str, ours: &OurBfd, frr: &Bfdd) -> String {
    format!(
        "{what}\n--- our status\n{}\n--- FRR\n{}\n--- bfdd log\n{}",
        serde_json::to_string_pretty(&ours.bfd().status()).unwrap(),
        frr.peer(IpAddr::V4(MSEE)),
        frr.log()
    )
}

fn frr_state(frr: &Bfdd) -> String {
    frr.peer(IpAddr::V4(MSEE))["status"]
        .as_str()
        .unwrap_or("?")
        .to_owned()
}

/// Both sides Up, and our side settled at `detection` (FRR's Poll
/// Sequence off its 1 s floor done, and ours).
fn wait_both_up(ours: &mut OurBfd, frr: &Bfdd, detection: Duration) -> Duration {
    let t = Instant::now();
    if ours.status().state != State::Up {
        ours.wait_state(State::Up, Duration::from_secs(15))
            .unwrap_or_else(|| panic!("{}", ctx("our side Up", ours, frr)));
    }
    let up = t.elapsed();
    wait_for("FRR's side Up", Duration::from_secs(10), || {
        frr_state(frr) == "up"
    })
    .unwrap_or_else(|e| panic!("{}", ctx(&e, ours, frr)));
    wait_for("timers settled", Duration::from_secs(5), || {
        let s = ours.status();
        !s.polling && s.detection_time_us == Some(detection.as_micros() as u64)
    })
    .unwrap_or_else(|e| panic!("{}", ctx(&e, ours, frr)));
    up
}

fn setup(tag: &str) -> (BfdLab, Bfdd, OurBfd) {
    let lab = BfdLab::up(tag);
    let frr = Bfdd::start(&lab.ns_customer, &lab.dir, &frr_conf(&lab.dir, 100));
    let ours = OurBfd::start(&lab.ns_msee, vec![our_peer(100)]);
    (lab, frr, ours)
}

#[test]
fn frr_bfdd_silent_failure_detected_and_recovered() {
    if !require_root("frr_bfdd_silent_failure_detected_and_recovered") {
        return;
    }
    let _serial = SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    // Declared first, dropped last: processes and programs go before the
    // namespaces.
    let lab = BfdLab::up("bfds");
    let mut drops = [
        XdpDrop::attach(&lab.ns_customer, IF_CUSTOMER),
        XdpDrop::attach(&lab.ns_msee, IF_MSEE),
    ];
    let frr = Bfdd::start(&lab.ns_customer, &lab.dir, &frr_conf(&lab.dir, 100));
    let mut ours = OurBfd::start(&lab.ns_msee, vec![our_peer(100)]);

    // 1. Up on both sides, timers negotiated.
    let up = wait_both_up(&mut ours, &frr, ms(300));
    eprintln!("Up {up:?} after start (1 s slow start while Down)");
    let st = ours.status();
    let f = frr.peer(IpAddr::V4(MSEE));
    assert_eq!(st.tx_interval_us, 100_000, "{st:?}");
    assert_eq!(st.rx_interval_us, 100_000);
    assert_eq!(st.detection_time_us, Some(300_000));
    assert_eq!(st.remote_detect_mult, 3);
    assert_eq!(f["remote-id"], st.local_discriminator, "{f}");
    assert_eq!(f["id"], st.remote_discriminator, "{f}");
    assert_eq!(f["remote-receive-interval"], 100, "{f}");
    assert_eq!(f["remote-transmit-interval"], 100, "{f}");
    assert_eq!(f["remote-detect-multiplier"], 3, "{f}");
    assert!(bfd::SOURCE_PORTS.contains(&st.source_port));
    assert_eq!(st.discarded, 0, "{st:?}");
    assert!(st.finals_received >= 1 && st.finals_sent >= 1, "{st:?}");

    // 2. Silent failure and recovery, three times.
    let detection = ms(300);
    let mut outages = Vec::new();
    for round in 1..=3 {
        let t0 = Instant::now();
        for d in &mut drops {
            d.set(true);
        }
        let e = ours
            .wait_state(State::Down, Duration::from_secs(3))
            .unwrap_or_else(|| panic!("{}", ctx("silent failure detected", &ours, &frr)));
        let st = ours.status();
        assert_eq!(
            (e.from, e.diag),
            (State::Up, Diag::ControlDetectionTimeExpired)
        );
        assert_eq!(st.last_down_diag, Diag::ControlDetectionTimeExpired);
        let deadline = st.last_rx.expect("packets were received") + detection;
        let outage = e.at.duration_since(t0);
        let late = e.at.duration_since(deadline);
        eprintln!(
            "round {round}: detection time {detection:?}; Down {outage:?} after the drop began, \
             {late:?} after the deadline (last packet + detection time)"
        );
        assert!(e.at >= deadline, "Down before the Detection Time ran out");
        assert!(late <= ms(150), "detection timer {late:?} late");
        assert!(outage <= detection + ms(150), "outage {outage:?}");
        outages.push(outage);
        wait_for("FRR's side Down", Duration::from_secs(3), || {
            let f = frr.peer(IpAddr::V4(MSEE));
            f["status"] == "down" && f["diagnostic"] == "control detection time expired"
        })
        .unwrap_or_else(|e| panic!("{}", ctx(&e, &ours, &frr)));

        for d in &mut drops {
            d.set(false);
        }
        let back = wait_both_up(&mut ours, &frr, detection);
        eprintln!("round {round}: Up again {back:?} after the drop ended");
    }
    eprintln!("outages at 100 ms x 3: {outages:?}");
    let st = ours.status();
    assert_eq!((st.ups, st.downs), (4, 3), "{st:?}");
    assert_eq!(st.discarded, 0, "{st:?}");
}

#[test]
fn frr_bfdd_poll_sequences_admin_down_and_killed_process() {
    if !require_root("frr_bfdd_poll_sequences_admin_down_and_killed_process") {
        return;
    }
    let _serial = SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let (_lab, mut frr, mut ours) = setup("bfdp");
    wait_both_up(&mut ours, &frr, ms(300));

    // 1. FRR slows down (tx 200, rx 250): its Poll, our Final, no flap.
    let before = ours.status();
    frr.configure_peer(
        PEER_LINE,
        &["transmit-interval 200", "receive-interval 250"],
    );
    wait_for("FRR's new intervals", Duration::from_secs(5), || {
        let s = ours.status();
        s.remote_desired_min_tx_us == 200_000 && s.remote_required_min_rx_us == 250_000
    })
    .unwrap_or_else(|e| panic!("{}", ctx(&e, &ours, &frr)));
    let st = ours.status();
    assert!(st.polls_received > before.polls_received, "{st:?}");
    assert!(st.finals_sent > before.finals_sent, "{st:?}");
    // We send at max(100, 250); we detect in 3 x max(100, 200).
    assert_eq!(st.tx_interval_us, 250_000);
    assert_eq!(st.detection_time_us, Some(600_000));
    let f = frr.peer(IpAddr::V4(MSEE));
    assert_eq!(
        (
            &f["status"],
            &f["transmit-interval"],
            &f["receive-interval"]
        ),
        (&"up".into(), &200.into(), &250.into()),
        "{f}"
    );
    eprintln!(
        "FRR tx 200/rx 250: we answered {} Poll(s) with a Final",
        st.finals_sent - before.finals_sent
    );

    // 2. We change ours (300/300 x 4): our Poll, FRR's Final, no flap.
    let before = ours.status();
    ours.bfd().set_config(
        0,
        Config {
            desired_min_tx: ms(300),
            required_min_rx: ms(300),
            detect_mult: 4,
        },
    );
    wait_for("our Poll Sequence done", Duration::from_secs(5), || {
        let s = ours.status();
        !s.polling && s.finals_received > before.finals_received
    })
    .unwrap_or_else(|e| panic!("{}", ctx(&e, &ours, &frr)));
    let st = ours.status();
    assert_eq!(st.polls_sent, before.polls_sent + 1, "{st:?}");
    assert_eq!(st.tx_interval_us, 300_000);
    assert_eq!(st.detection_time_us, Some(900_000));
    wait_for("FRR sees our new timers", Duration::from_secs(3), || {
        let f = frr.peer(IpAddr::V4(MSEE));
        f["remote-transmit-interval"] == 300
            && f["remote-receive-interval"] == 300
            && f["remote-detect-multiplier"] == 4
    })
    .unwrap_or_else(|e| panic!("{}", ctx(&e, &ours, &frr)));
    assert_eq!(frr_state(&frr), "up");
    assert!(
        ours.pending_events().is_empty(),
        "{}",
        ctx("no state change on interval changes", &ours, &frr)
    );
    assert_eq!(ours.status().downs, 0);

    // 3. FRR shuts the peer down: AdminDown on the wire, diag 3 here.
    frr.configure_peer(PEER_LINE, &["shutdown"]);
    let e = ours
        .wait_state(State::Down, Duration::from_secs(3))
        .unwrap_or_else(|| panic!("{}", ctx("FRR's AdminDown seen", &ours, &frr)));
    assert_eq!((e.from, e.diag), (State::Up, Diag::NeighborSignaledDown));
    let st = ours.status();
    assert_eq!(st.remote_state, State::AdminDown, "{st:?}");
    // (FRR 8.4 sends its AdminDown with diag 0, not 7.)
    eprintln!("FRR's AdminDown carries diag {:?}", st.remote_diag);
    assert_eq!(frr_state(&frr), "shutdown");
    // Down (not Init) for as long as FRR stays AdminDown.
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(ours.status().state, State::Down);
    frr.configure_peer(PEER_LINE, &["no shutdown"]);
    wait_both_up(&mut ours, &frr, ms(900));

    // 4. We go AdminDown: FRR goes Down and names the reason.
    ours.bfd().set_admin_down(0, true);
    let e = ours.next_event(Duration::from_secs(1)).unwrap();
    assert_eq!(
        (e.from, e.to, e.diag),
        (State::Up, State::AdminDown, Diag::AdminDown)
    );
    wait_for("FRR Down by our AdminDown", Duration::from_secs(3), || {
        let f = frr.peer(IpAddr::V4(MSEE));
        f["status"] == "down" && f["remote-diagnostic"] == "administratively down"
    })
    .unwrap_or_else(|e| panic!("{}", ctx(&e, &ours, &frr)));
    eprintln!("FRR after our AdminDown: {}", frr.peer(IpAddr::V4(MSEE)));
    ours.bfd().set_admin_down(0, false);
    wait_both_up(&mut ours, &frr, ms(900));

    // 5. bfdd killed by PID (SIGKILL: no goodbye): diag 1 in time.
    let detection = ms(900);
    let t0 = Instant::now();
    frr.kill();
    let e = ours
        .wait_state(State::Down, Duration::from_secs(5))
        .unwrap_or_else(|| panic!("{}", ctx("killed bfdd detected", &ours, &frr)));
    assert_eq!(
        (e.from, e.diag),
        (State::Up, Diag::ControlDetectionTimeExpired)
    );
    let deadline = ours.status().last_rx.unwrap() + detection;
    let (outage, late) = (e.at.duration_since(t0), e.at.duration_since(deadline));
    eprintln!(
        "bfdd killed: detection time {detection:?}; Down {outage:?} after the kill, {late:?} after the deadline"
    );
    assert!(e.at >= deadline);
    assert!(late <= ms(150), "detection timer {late:?} late");
    assert!(outage <= detection + ms(150), "outage {outage:?}");

    // 6. A new bfdd (its config file: 100 ms x 3) brings it back.
    frr.restart();
    wait_both_up(&mut ours, &frr, ms(900));
    let st = ours.status();
    assert_eq!(st.detection_time_us, Some(900_000), "3 x max(our 300, 100)");
    // The only discards: FRR's packets while we were AdminDown (§6.8.6).
    assert_eq!(
        st.discarded,
        st.discards.get(bfd::session::DiscardReason::LocalAdminDown),
        "{st:?}"
    );
    assert_eq!((st.ups, st.downs), (4, 3), "{st:?}");
}
