use super::{
    history::{Event, History},
    ledger::{Ledger, LinkMeta, Raw, Totals},
    report,
};

fn temp_dir(tag: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("msee-usage-{}-{tag}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn meta() -> LinkMeta {
    LinkMeta {
        circuit: "er-lab".into(),
        peering: "AzurePrivatePeering".into(),
        role: "primary".into(),
    }
}

const L: &str = "er-lab/AzurePrivatePeering/primary";
const DAY: u64 = 1_764_892_800_000; // 2025-12-05T00:00:00Z

fn t(rx_bytes: u64, tx_bytes: u64) -> Totals {
    Totals {
        rx: Raw {
            packets: rx_bytes / 100,
            bytes: rx_bytes,
        },
        tx: Raw {
            packets: tx_bytes / 100,
            bytes: tx_bytes,
        },
    }
}

fn total(l: &Ledger) -> (u64, u64) {
    let t = l.totals(None, None);
    let t = t.get(L).map(|(_, t)| *t).unwrap_or_default();
    (t.rx.bytes, t.tx.bytes)
}

#[test]
fn counters_across_restarts_are_neither_lost_nor_counted_twice() {
    let dir = temp_dir("restart");
    let path = dir.join("usage.json");
    let mut l = Ledger::open(&path);
    assert_eq!(l.note, None);
    l.observe(L, &meta(), "boot/7/0", t(1000, 2000), DAY);
    l.observe(L, &meta(), "boot/7/0", t(1500, 3000), DAY + 1000);
    assert_eq!(total(&l), (1500, 3000));
    l.save(DAY + 1000).unwrap();

    // A restart that adopted the pinned counters (same source): they went
    // on counting while no daemon ran.
    let mut l = Ledger::open(&path);
    assert_eq!(l.saved_at_ms(), DAY + 1000);
    assert_eq!(total(&l), (1500, 3000));
    l.observe(L, &meta(), "boot/7/0", t(1600, 3100), DAY + 2000);
    assert_eq!(total(&l), (1600, 3100));
    // It zeroes them as it installs the link: what they held is counted
    // first, and the next sample counts from zero, even past the old mark.
    l.before_reset(L, &meta(), "boot/7/0", t(1700, 3100), DAY + 2500);
    l.observe(L, &meta(), "boot/7/0", t(5000, 0), DAY + 2600);
    assert_eq!(total(&l), (6700, 3100));
    l.save(DAY + 2600).unwrap();

    // A restart with new maps (another source): they start from zero, and
    // what they hold at the first sample is all new.
    let mut l = Ledger::open(&path);
    l.observe(L, &meta(), "boot/9/0", t(500, 100), DAY + 3000);
    assert_eq!(total(&l), (7200, 3200));
    // A counter below its mark in the same source was zeroed: from 0.
    l.observe(L, &meta(), "boot/9/0", t(70, 100), DAY + 5000);
    assert_eq!(total(&l), (7270, 3200));
    // Samples that see nothing new add nothing.
    l.observe(L, &meta(), "boot/9/0", t(70, 100), DAY + 5500);
    assert_eq!(total(&l), (7270, 3200));

    // Days split the totals; --from/--to select them.
    l.observe(L, &meta(), "boot/9/0", t(170, 100), DAY + 86_400_000);
    assert_eq!(total(&l), (7370, 3200));
    assert_eq!(l.totals(Some("2025-12-06"), None)[L].1.rx.bytes, 100);
    assert_eq!(l.totals(None, Some("2025-12-05"))[L].1.rx.bytes, 7270);
    assert!(l.totals(Some("2025-12-07"), None).is_empty());
    assert_eq!(
        l.days(),
        Some(("2025-12-05".to_owned(), "2025-12-06".to_owned()))
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_link_id_handed_to_another_link_does_not_carry_its_traffic_over() {
    let dir = temp_dir("reuse");
    let mut l = Ledger::open(&dir.join("usage.json"));
    const OTHER: &str = "er-lab/MicrosoftPeering/primary";
    // Link 3 was the private primary; a reload removed it (its last sample
    // is taken then) and gave id 3 to a new link, whose install samples
    // the counter before zeroing it.
    l.observe(L, &meta(), "b/7/3", t(1000, 2000), DAY);
    l.observe(L, &meta(), "b/7/3", t(1200, 2000), DAY + 1000);
    l.before_reset(OTHER, &meta(), "b/7/3", t(1200, 2000), DAY + 2000);
    l.observe(OTHER, &meta(), "b/7/3", t(300, 0), DAY + 3000);
    let all = l.totals(None, None);
    assert_eq!(all[L].1.rx.bytes, 1200);
    assert_eq!(all[OTHER].1.rx.bytes, 300, "only its own traffic");
    // Marks of another map are dropped; the same map's are kept.
    l.observe(L, &meta(), "b/9/3", t(10, 0), DAY + 4000);
    l.keep_sources("b/9/");
    l.observe(OTHER, &meta(), "b/7/3", t(300, 0), DAY + 5000);
    assert_eq!(
        l.totals(None, None)[OTHER].1.rx.bytes,
        600,
        "from zero: no mark"
    );
    l.observe(L, &meta(), "b/9/3", t(10, 0), DAY + 6000);
    assert_eq!(l.totals(None, None)[L].1.rx.bytes, 1210);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_corrupt_ledger_is_set_aside_and_reported() {
    let dir = temp_dir("corrupt");
    let path = dir.join("usage.json");
    std::fs::write(&path, b"{\"version\": 1, \"links\": [tr").unwrap();
    let mut l = Ledger::open(&path);
    let note = l.note.clone().expect("reported");
    assert!(
        note.contains("usage.json could not be read") && note.contains("set aside as"),
        "{note}"
    );
    let aside: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with("usage.json.corrupt-"))
        .collect();
    assert_eq!(aside.len(), 1, "{aside:?}");
    // The old bytes are kept as they were.
    assert!(
        std::fs::read(dir.join(&aside[0]))
            .unwrap()
            .starts_with(b"{\"version\": 1")
    );
    l.observe(L, &meta(), "e", t(64, 0), DAY);
    l.save(DAY).unwrap();
    let l = Ledger::open(&path);
    assert_eq!(l.note, None);
    assert_eq!(total(&l), (64, 0));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_history_with_bad_lines_keeps_the_good_ones_and_sets_the_file_aside() {
    let dir = temp_dir("history");
    let path = dir.join("history.jsonl");
    let mut h = History::open(&path);
    assert_eq!(h.note, None);
    h.append(Event::Start { at_ms: 1 }).unwrap();
    h.append(Event::Stop {
        at_ms: 2,
        clean: true,
    })
    .unwrap();
    // A crash mid-line, then garbage.
    let mut text = std::fs::read(&path).unwrap();
    text.extend_from_slice(b"{\"event\":\"start\",\"at_\n\xff\xfe\n");
    std::fs::write(&path, text).unwrap();
    let mut h = History::open(&path);
    let note = h.note.clone().expect("reported");
    assert!(
        note.contains("2 unreadable lines (3, 4)") && note.contains("2 readable events kept"),
        "{note}"
    );
    assert_eq!(h.events().len(), 2);
    h.append(Event::Start { at_ms: 3 }).unwrap();
    let h = History::open(&path);
    assert_eq!(h.note, None);
    assert_eq!(h.events().len(), 3);
    std::fs::remove_dir_all(&dir).ok();
}

fn flip(at_ms: u64, role: &str, up: bool, cause: &str) -> Event {
    Event::Flip {
        at_ms,
        circuit: "er-lab".into(),
        peering: "AzurePrivatePeering".into(),
        role: role.into(),
        up,
        cause: cause.into(),
    }
}

fn links() -> Vec<(String, String)> {
    ["primary", "secondary"]
        .iter()
        .map(|r| ("AzurePrivatePeering".to_owned(), (*r).to_owned()))
        .collect()
}

#[test]
fn a_failover_is_an_outage_of_one_link_and_none_of_the_circuit() {
    let s = 1_000_000u64;
    let events = vec![
        Event::Start { at_ms: s },
        flip(s + 1_000, "primary", true, "BGP established"),
        flip(s + 1_000, "secondary", true, "BGP established"),
        flip(s + 11_000, "primary", false, "BFD down"),
        flip(s + 13_000, "primary", true, "BFD up"),
        Event::Drain {
            at_ms: s + 20_000,
            circuit: "er-lab".into(),
            peering: "AzurePrivatePeering".into(),
            role: "secondary".into(),
            drained: true,
        },
        Event::Drain {
            at_ms: s + 21_000,
            circuit: "er-lab".into(),
            peering: "AzurePrivatePeering".into(),
            role: "secondary".into(),
            drained: false,
        },
        // Both down: the circuit is down for 1 s.
        flip(s + 30_000, "primary", false, "carrier lost"),
        flip(s + 30_500, "secondary", false, "BGP down"),
        flip(s + 31_500, "secondary", true, "BGP established"),
        flip(s + 32_000, "primary", true, "carrier up"),
        // A restart: nothing is known while no daemon runs, nor until the
        // links report again.
        Event::Stop {
            at_ms: s + 41_000,
            clean: true,
        },
        Event::Start { at_ms: s + 100_000 },
        flip(s + 101_000, "primary", true, "BGP established"),
        flip(s + 101_000, "secondary", true, "BGP established"),
    ];
    let a = report::availability("er-lab", &links(), &events, None, s + 111_000);
    // Known: 1..41 (40 s) and 101..111 (10 s).
    assert_eq!(a.measured_secs, 50.0);
    assert_eq!(a.circuit_downtime_secs, 1.0);
    assert!((a.circuit_uptime_percent - 98.0).abs() < 1e-9, "{a:?}");
    let pri = &a.links[0];
    assert_eq!((pri.path.as_str(), pri.outages), ("primary", 2));
    assert_eq!(pri.downtime_secs, 4.0);
    let sec = &a.links[1];
    assert_eq!((sec.outages, sec.downtime_secs), (2, 2.0));
    let o: Vec<(&str, &str, f64)> = a
        .outages
        .iter()
        .map(|o| (o.scope.as_str(), o.cause.as_str(), o.duration_secs))
        .collect();
    assert_eq!(
        o,
        [
            ("primary", "BFD", 2.0),
            ("secondary", "drain", 1.0),
            ("primary", "carrier", 2.0),
            ("circuit", "primary: carrier, secondary: BGP", 1.0),
            ("secondary", "BGP", 1.0),
        ]
    );
    assert_eq!(a.outages[0].detail, "BFD down");
    assert!(a.outages.iter().all(|o| o.end.is_some()));
    // One link down, the other up: the circuit at 100 %.
    let one = report::availability("er-lab", &links(), &events[..5], None, s + 15_000);
    assert_eq!(one.circuit_uptime_percent, 100.0);
    assert_eq!(one.links[0].outages, 1);
    // An outage still going on has no end; --from cuts the period.
    let open = report::availability(
        "er-lab",
        &links(),
        &events[..4],
        Some(s + 6_000),
        s + 12_000,
    );
    assert_eq!(open.measured_secs, 6.0);
    assert_eq!(open.outages.len(), 1);
    assert_eq!(open.outages[0].end, None);
    assert_eq!(open.outages[0].duration_secs, 1.0);
    assert!(open.line().starts_with("er-lab availability: circuit 100.000% over 6 s; private primary 83.333% (1 outage, 1.0 s)"), "{}", open.line());
}

#[test]
fn metered_bills_outbound_and_unlimited_and_local_bill_nothing() {
    use circuit::config::{SkuFamily, SkuTier};
    assert!(report::metered(SkuTier::Standard, SkuFamily::MeteredData));
    assert!(report::metered(SkuTier::Premium, SkuFamily::MeteredData));
    assert!(!report::metered(
        SkuTier::Standard,
        SkuFamily::UnlimitedData
    ));
    assert!(!report::metered(SkuTier::Local, SkuFamily::MeteredData));
    assert_eq!(super::parse_date("2025-12-05"), Ok(DAY));
    assert_eq!(super::utc_day(DAY + 86_399_999), "2025-12-05");
    assert!(
        super::parse_date("12/05/2025")
            .unwrap_err()
            .contains("YYYY-MM-DD")
    );
}
