//! The sink on two links at once, in a triangle made here (see
//! `e2e_tests::engine_topo`): g sends, m's `testfwd` forwards each flow by
//! the link its map entry names, the sink listens on s0 and s1. Flows split
//! over both links arrive whole and are counted per link; flows moved
//! mid-run stay one sequence each and are classified by the link that
//! carried them; a black hole on one link loses exactly what it dropped,
//! only on the flows of that link, for as long as it lasted, and the
//! return loses nothing; a sink survives its link going down and up.
use std::{
    sync::Mutex,
    time::{Duration, Instant},
};

use e2e_tests::{
    engine_topo::{Triangle, carrier_up},
    require_root,
};
use lab::ip_ns;
use msee_sys::monotonic_ns;
use traffic::run::{CarrierClass, RunReport, run, start};

/// Two cores are shared: one traffic test at a time keeps timing honest.
static SERIAL: Mutex<()> = Mutex::new(());

const FLOWS: u16 = 8;
const PPS: f64 = 16_000.0;
const MS: u64 = 1_000_000;

fn even() -> Vec<u16> {
    (0..FLOWS).filter(|f| f % 2 == 0).collect()
}

fn odd() -> Vec<u16> {
    (0..FLOWS).filter(|f| f % 2 == 1).collect()
}

/// Even flows by s0, odd by s1.
fn split(tri: &mut Triangle) {
    for f in 0..FLOWS {
        tri.route(f, u32::from(f % 2)).unwrap();
    }
}

fn class(classes: &[CarrierClass], rx: usize) -> &CarrierClass {
    classes
        .iter()
        .find(|c| c.rx == Some(rx))
        .unwrap_or_else(|| panic!("no class for rx {rx}: {classes:#?}"))
}

fn sent_on(r: &RunReport, streams: &[u16]) -> u64 {
    streams
        .iter()
        .map(|&s| r.stream(s).unwrap().sent.unwrap())
        .sum()
}

fn split_over_two_links(tag: &str, split_ns: bool) {
    let mut tri = Triangle::new(tag, split_ns, FLOWS).unwrap();
    split(&mut tri);
    let n = 32_000;
    let r = run(&tri.config(FLOWS, PPS, n, Duration::from_secs(10))).unwrap();
    eprintln!("{}", r.summary());
    assert_eq!(r.generator.sent, n);
    assert_eq!(
        (
            r.totals.received,
            r.totals.lost,
            r.totals.duplicated,
            r.totals.reordered
        ),
        (n, 0, 0, 0),
        "{}",
        r.summary()
    );
    // Each stream arrived whole on its link, and only there.
    for s in &r.streams {
        let rx = usize::from(s.stream % 2);
        assert_eq!(s.per_rx.len(), 1, "stream {}: {:?}", s.stream, s.per_rx);
        assert_eq!(s.per_rx[0].rx, rx);
        assert_eq!(s.per_rx[0].ifname, ["s0", "s1"][rx]);
        assert_eq!(Some(s.per_rx[0].received), s.sent);
        assert_eq!(s.path.len(), 1);
    }
    // Per link: exact counts, bins that add up, kernel receive times.
    for (rx, streams) in [(0, even()), (1, odd())] {
        let l = &r.rx[rx];
        assert_eq!(l.received, sent_on(&r, &streams), "rx {rx}");
        assert_eq!(
            l.rate_bins_1ms.iter().map(|&b| u64::from(b)).sum::<u64>(),
            l.received
        );
        assert_eq!(l.kernel_rx_time, l.received, "rx {rx}: {l:?}");
        assert_eq!(l.other, 0);
        assert_eq!(l.socket.rx_dropped, 0, "{l:?}");
        assert!(tri.fwd.forwarded(rx as u32) >= l.received);
    }
    // Classified in the middle of the run: the two groups, no loss.
    let mid = r.t0_ns + 1000 * MS;
    let c = r.classify(mid);
    assert_eq!(c.len(), 2, "{c:#?}");
    assert_eq!(class(&c, 0).streams, even());
    assert_eq!(class(&c, 1).streams, odd());
    assert_eq!(class(&c, 0).after, vec![(Some(0), even())]);
    assert!(c.iter().all(|k| k.lost == 0 && k.outage_ms == 0.0));
    assert_eq!(r.carried_by(mid, "s1").streams, odd());
}

#[test]
fn engine_flows_split_over_two_links_arrive_whole() {
    if !require_root("engine_flows_split_over_two_links_arrive_whole") {
        return;
    }
    let _g = SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    split_over_two_links("el1", false);
}

#[test]
fn engine_sink_links_in_two_namespaces() {
    if !require_root("engine_sink_links_in_two_namespaces") {
        return;
    }
    let _g = SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    split_over_two_links("el2", true);
}

#[test]
fn engine_flows_moved_mid_run_stay_one_sequence() {
    if !require_root("engine_flows_moved_mid_run_stay_one_sequence") {
        return;
    }
    let _g = SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut tri = Triangle::new("el3", false, FLOWS).unwrap();
    split(&mut tri);
    let n = 48_000;
    let h = start(&tri.config(FLOWS, PPS, n, Duration::from_secs(10))).unwrap();
    assert!(h.wait_received(n / 3, Duration::from_secs(10)));
    // Half of s0's flows (0 and 4) move to s1, one map entry each. The
    // event is stamped before the first write: stamped after both, a packet
    // of flow 0 could reach s1 before it (the second write took longer than
    // a flow's packet interval once under load), and flow 0 would read as
    // one of s1's.
    let moved = [0u16, 4];
    let t_move = monotonic_ns();
    for &f in &moved {
        tri.route(f, 1).unwrap();
    }
    h.event_at("flows 0 and 4 move to s1", t_move);
    let r = h.join().unwrap();
    eprintln!("{}", r.summary());
    assert_eq!(r.generator.sent, n);
    assert_eq!(
        (r.totals.received, r.totals.lost, r.totals.duplicated),
        (n, 0, 0),
        "{}",
        r.summary()
    );
    // Both links are veths on one host: a packet overtaken across links is
    // possible but rare; it would be counted, never lost.
    assert!(r.totals.reordered <= 8, "{}", r.summary());
    let c = r.classify_settled(t_move, 5 * MS);
    let s0 = class(&c, 0);
    assert_eq!(s0.streams, even());
    assert_eq!(
        s0.after,
        vec![(Some(0), vec![2, 6]), (Some(1), moved.to_vec())]
    );
    assert_eq!(class(&c, 1).streams, odd());
    assert_eq!(class(&c, 1).after, vec![(Some(1), odd())]);
    let at = t_move - r.t0_ns;
    for &f in &moved {
        let s = r.stream(f).unwrap();
        // One sequence over two links: s0 then s1, adding up.
        let links: Vec<usize> = s.path.iter().map(|p| p.rx).collect();
        assert_eq!(links, vec![0, 1], "stream {f}: {:?}", s.path);
        assert_eq!(s.path[0].last_seq + 1, s.path[1].first_seq, "{:?}", s.path);
        let on: Vec<u64> = s.per_rx.iter().map(|x| x.received).collect();
        assert_eq!(on.iter().sum::<u64>(), s.sent.unwrap());
        assert!(on.iter().all(|&k| k > 0), "{on:?}");
        // s0 had the stream until the move, s1 from it on.
        assert!(s.per_rx[0].last_rx_ns <= at + 5 * MS, "{:?}", s.per_rx);
        assert!(s.per_rx[1].first_rx_ns + 5 * MS >= at, "{:?}", s.per_rx);
    }
    for f in [2u16, 6] {
        assert_eq!(r.stream(f).unwrap().path.len(), 1);
    }
    // Per-link rates show the shift: s1 carries 6 flows' worth after it.
    let bins = |rx: usize, from_ms: usize, to_ms: usize| -> u64 {
        r.rx[rx].rate_bins_1ms[from_ms..to_ms]
            .iter()
            .map(|&b| u64::from(b))
            .sum()
    };
    let a = (at / MS) as usize;
    let (before, after) = ((a - 600)..(a - 100), (a + 100)..(a + 600));
    let per_flow = PPS / f64::from(FLOWS) / 2.0; // packets per 500 ms
    let near =
        |got: u64, flows: f64| (got as f64 - flows * per_flow).abs() < 0.15 * flows * per_flow;
    assert!(near(bins(0, before.start, before.end), 4.0));
    assert!(near(bins(0, after.start, after.end), 2.0));
    assert!(near(bins(1, after.start, after.end), 6.0));
}

#[test]
fn engine_black_hole_on_a_link_loses_what_it_dropped_and_the_return_nothing() {
    if !require_root("engine_black_hole_on_a_link_loses_what_it_dropped_and_the_return_nothing") {
        return;
    }
    let _g = SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut tri = Triangle::new("el4", false, FLOWS).unwrap();
    split(&mut tri);
    let n = 64_000;
    let mut cfg = tri.config(FLOWS, PPS, n, Duration::from_secs(10));
    cfg.rx_blackhole = true;
    let h = start(&cfg).unwrap();
    assert!(h.wait_received(n / 5, Duration::from_secs(10)));
    let hole = h.blackhole("s0").expect("a black-hole switch on s0");
    assert!(h.blackhole("s1").is_some());
    // The primary (s0) fails silently; its carrier stays up.
    let on = hole.on().unwrap();
    // On a busy machine the switch may land a little after its instant.
    let slack_ms = (on.written_ns.saturating_sub(on.at_ns)) as f64 / 1e6;
    assert!(carrier_up(&tri.s, "s0"));
    std::thread::sleep(Duration::from_millis(300));
    // "Detection": its flows move to the secondary.
    let t_fail = monotonic_ns();
    for f in even() {
        tri.route(f, 1).unwrap();
    }
    h.event_at("even flows to s1", t_fail);
    std::thread::sleep(Duration::from_millis(200));
    let off = hole.off().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    // The primary returns: its flows move back, and must lose nothing.
    let t_back = h.event("even flows back to s0");
    for f in even() {
        tri.route(f, 0).unwrap();
    }
    let r = h.join().unwrap();
    eprintln!("{}", r.summary());
    assert_eq!(r.generator.sent, n);
    let bh = r.rx[0].blackhole.expect("black-hole counts");
    // Lost exactly what the black hole dropped, nothing else.
    assert_eq!(Some(r.totals.lost), bh.ingress_test_dropped, "{bh:?}");
    assert!(r.totals.lost > 0);
    assert_eq!(r.totals.received + r.totals.lost, n);
    assert_eq!(r.totals.duplicated, 0);
    // Only the flows that were on s0 lost, for as long as the hole lasted.
    let c = r.classify(on.at_ns);
    let (failed, survived) = (class(&c, 0), class(&c, 1));
    assert_eq!(failed.streams, even());
    assert_eq!(survived.streams, odd());
    assert_eq!((survived.lost, survived.lost_after), (0, 0));
    assert_eq!(failed.lost, r.totals.lost);
    let expect_ms = (t_fail - on.at_ns) as f64 / 1e6;
    assert!(
        (failed.outage_ms - expect_ms).abs() < 10.0 + slack_ms + 0.05 * expect_ms,
        "outage {} ms, black hole to failover {expect_ms} ms",
        failed.outage_ms
    );
    assert!(failed.longest_gap_ns as f64 / 1e6 >= expect_ms * 0.9);
    assert!(failed.longest_gap_end_ns >= t_fail - r.t0_ns);
    // After failover (and after the hole closed) nothing more was lost.
    for s in &r.streams {
        assert_eq!(s.lost_after(off.at_ns - r.t0_ns), 0, "stream {}", s.stream);
        assert_eq!(s.lost_after(t_back - r.t0_ns), 0, "stream {}", s.stream);
    }
    // The return: even flows back on s0.
    let back = r.classify_settled(t_back, 5 * MS);
    assert_eq!(
        class(&back, 1).after,
        vec![(Some(0), even()), (Some(1), odd())]
    );
    // The report carries the switches as events, in order.
    let labels: Vec<&str> = r.events.iter().map(|e| e.label.as_str()).collect();
    assert_eq!(
        labels,
        vec![
            "s0 black hole on",
            "even flows to s1",
            "s0 black hole off",
            "even flows back to s0"
        ]
    );
    assert_eq!(r.events[0].at_ns, on.at_ns);
}

/// `ip link set` in `ns`, timed: returns when the command returned.
fn link(ns: &str, dev: &str, state: &str) -> u64 {
    ip_ns(ns, &["link", "set", "dev", dev, state]).unwrap();
    monotonic_ns()
}

#[test]
fn engine_sink_survives_its_link_going_down_and_up() {
    if !require_root("engine_sink_survives_its_link_going_down_and_up") {
        return;
    }
    let _g = SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut tri = Triangle::new("el5", false, FLOWS).unwrap();
    split(&mut tri);
    let n = 64_000;
    let h = start(&tri.config(FLOWS, PPS, n, Duration::from_secs(10))).unwrap();
    assert!(h.wait_received(n / 5, Duration::from_secs(10)));
    // Carrier loss at s0: its peer goes down (the MSEE side of a link).
    let t1 = link(&tri.m, "m0", "down");
    h.event_at("m0 down (s0 loses carrier)", t1);
    assert!(!carrier_up(&tri.s, "s0"));
    std::thread::sleep(Duration::from_millis(300));
    let t2 = link(&tri.m, "m0", "up");
    h.event_at("m0 up", t2);
    let wait_carrier = Instant::now();
    while !carrier_up(&tri.s, "s0") && wait_carrier.elapsed() < Duration::from_secs(2) {
        std::thread::sleep(Duration::from_millis(5));
    }
    let before = h.received_on("s0").unwrap();
    std::thread::sleep(Duration::from_millis(400));
    let after_carrier = h.received_on("s0").unwrap() - before;
    // The sink's own interface goes down and up.
    let t3 = link(&tri.s, "s0", "down");
    h.event_at("s0 down", t3);
    std::thread::sleep(Duration::from_millis(300));
    let t4 = link(&tri.s, "s0", "up");
    h.event_at("s0 up", t4);
    let wait_carrier = Instant::now();
    while !carrier_up(&tri.s, "s0") && wait_carrier.elapsed() < Duration::from_secs(2) {
        std::thread::sleep(Duration::from_millis(5));
    }
    let before = h.received_on("s0").unwrap();
    std::thread::sleep(Duration::from_millis(400));
    let after_admin = h.received_on("s0").unwrap() - before;
    let r = h.join().unwrap();
    eprintln!(
        "{}\nreceived on s0 in 400 ms after carrier came back: {after_carrier}; after s0 came back up: {after_admin}",
        r.summary()
    );
    // 4 flows at 2 kpps on s0: ~3200 in 400 ms.
    assert!(
        after_carrier > 2_000,
        "s0's sink got {after_carrier} after carrier returned"
    );
    assert!(
        after_admin > 2_000,
        "s0's sink got {after_admin} after s0 came back up"
    );
    // The flows of s1 never noticed.
    let c = r.classify(t1);
    assert_eq!(class(&c, 1).streams, odd());
    assert_eq!(class(&c, 1).lost, 0);
    // s0's flows lost about the two outages (each ~300 ms plus the time the
    // link needs to come back), and were received until the end.
    let failed = class(&c, 0);
    assert_eq!(failed.streams, even());
    let down_ms = (t2 - t1 + t4 - t3) as f64 / 1e6;
    assert!(
        failed.outage_ms >= down_ms * 0.9 && failed.outage_ms < down_ms + 500.0,
        "outage {} ms for {down_ms} ms down",
        failed.outage_ms
    );
    for f in even() {
        let s = r.stream(f).unwrap();
        assert_eq!(s.received + s.lost, s.sent.unwrap());
        assert!(s.per_rx[0].last_rx_ns > t4 - r.t0_ns, "stream {f}");
    }
}

/// `msee-traffic run` with two --rx-dev and a scheduled black hole: the
/// JSON has both links with their counts, bins, the switches as events and
/// the classification inputs; the SVG draws a line per link and the events.
#[test]
fn engine_cli_two_rx_devices_json_and_plot() {
    if !require_root("engine_cli_two_rx_devices_json_and_plot") {
        return;
    }
    let _g = SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let bin = lab::daemon::workspace_bin("msee-traffic").unwrap();
    let mut tri = Triangle::new("el6", false, FLOWS).unwrap();
    split(&mut tri);
    let dir = std::env::temp_dir();
    let tag = format!("msee-traffic-{}", std::process::id());
    let (json, svg) = (
        dir.join(format!("{tag}.json")),
        dir.join(format!("{tag}.svg")),
    );
    let mut child = std::process::Command::new(bin)
        .args(["run", "--tx-netns", &tri.g, "--tx-dev", "ga"])
        .args(["--rx-netns", &tri.s, "--rx-dev", "s0", "--rx-dev", "s1"])
        .args(["--src-ip", "10.78.0.1", "--dst-ip", "10.78.9.9"])
        .args([
            "--flows",
            "8",
            "--pps",
            "8k",
            "--count",
            "16k",
            "--duration",
            "5s",
        ])
        .args(["--blackhole", "s0:500ms:300ms", "--quiet"])
        .arg("--json")
        .arg(&json)
        .arg("--plot")
        .arg(&svg)
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Bounded: the run is; stop it by PID if it is not.
    let until = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > until {
            let _ = child.kill();
            let _ = child.wait();
            panic!("msee-traffic did not finish in 30 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let text = std::fs::read_to_string(&json).unwrap_or_default();
    let plot = std::fs::read_to_string(&svg).unwrap_or_default();
    let _ = std::fs::remove_file(&json);
    let _ = std::fs::remove_file(&svg);
    assert!(status.success(), "{status}");
    let r: RunReport = serde_json::from_str(&text).unwrap();
    assert_eq!(r.rx.len(), 2);
    assert_eq!(
        (r.rx[0].ifname.as_str(), r.rx[1].ifname.as_str()),
        ("s0", "s1")
    );
    assert_eq!(r.generator.sent, 16_000);
    // s1's flows lost nothing; s0's lost what the hole dropped, ~300 ms.
    let bh = r.rx[0].blackhole.unwrap();
    assert_eq!(Some(r.totals.lost), bh.ingress_test_dropped);
    assert_eq!(r.rx[1].received, 8_000);
    let labels: Vec<&str> = r.events.iter().map(|e| e.label.as_str()).collect();
    assert_eq!(labels, vec!["s0 black hole on", "s0 black hole off"]);
    let c = r.classify(r.events[0].at_ns);
    assert_eq!(class(&c, 1).lost, 0);
    let failed = class(&c, 0);
    let hole_ms = (r.events[1].at_ns - r.events[0].at_ns) as f64 / 1e6;
    // Switched at the planned instants, 500 ms and 800 ms after t0 (later
    // only if the CLI was descheduled past its lead).
    let late = |e: usize, ms: u64| r.events[e].since_t0_ns - ms * MS;
    assert!(
        late(0, 500) < 10 * MS && late(1, 800) < 10 * MS,
        "{:?}",
        r.events
    );
    assert!((hole_ms - 300.0).abs() < 10.0, "{hole_ms}");
    assert!(
        (failed.outage_ms - hole_ms).abs() < 15.0,
        "{hole_ms} ms: {failed:?}"
    );
    for (rx, l) in r.rx.iter().enumerate() {
        let sum: u64 = l.rate_bins_1ms.iter().map(|&b| u64::from(b)).sum();
        assert_eq!(sum, l.received, "rx {rx}");
    }
    assert!(plot.contains(">rx s0</text>") && plot.contains(">rx s1</text>"));
    assert!(plot.contains(">s0 black hole on</text>"));
    assert_eq!(plot.matches("<polyline").count(), 3, "all, s0, s1");
}

/// `--destinations` is refused where it cannot apply, before anything is
/// sent: with the AF_XDP generator, with `run`, and more than `txgen`'s
/// table holds (live frames; refused before the generator starts).
#[test]
fn engine_cli_refuses_destinations_it_cannot_spread() {
    let bin = lab::daemon::workspace_bin("msee-traffic").unwrap();
    let common = [
        "--src-ip",
        "127.0.0.1",
        "--dst-ip",
        "127.0.0.2",
        "--dst-mac",
        "02:00:00:00:00:02",
        "--count",
        "1",
        "--duration",
        "1s",
    ];
    let cases: [(&[&str], &str); 3] = [
        (
            &["gen", "--dev", "lo", "--destinations", "4"],
            "--destinations is for `gen --mode live-frames`",
        ),
        (
            &[
                "run",
                "--tx-dev",
                "lo",
                "--rx-dev",
                "lo",
                "--destinations",
                "4",
            ],
            "--destinations is for `gen --mode live-frames`",
        ),
        (
            &[
                "gen",
                "--dev",
                "lo",
                "--mode",
                "live-frames",
                "--destinations",
                "2000000",
            ],
            "at most",
        ),
    ];
    for (args, expect) in cases {
        let out = std::process::Command::new(&bin)
            .args(args)
            .args(common)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && err.contains(expect),
            "{args:?}: {err}"
        );
    }
}
