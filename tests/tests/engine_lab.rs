//! The packet engine drives traffic through the lab and the real `msee`
//! program: onprem -> msee -> azure and back, paced, without loss, with
//! one-way latency and a JSON report that parses. The generator's
//! destination MAC is left to the engine, which resolves the gateway of the
//! kernel's route to the (off-link) destination.
use std::time::Duration;

use e2e_tests::{
    lab_dataplane::{AZURE, LabDataplane, PRIMARY, SECONDARY},
    require_root, unique_prefix,
};
use lab::{IF_AZURE_PEER, IF_PRIMARY};
use msee_abi::{Direction, PeeringKind, Route};
use traffic::{
    frame::FrameSizes,
    pacing::Rate,
    run::{Endpoint, GenMode, RunConfig, RunReport, run},
    xsk::BindMode,
};

const DOMAIN: u32 = 1;
const G_AZURE: u32 = 1;
const G_PRIMARY: u32 = 2;
const PPS: f64 = 50_000.0;
const SECS: u64 = 2;

fn config(tx: (&str, &str), rx: (&str, &str), src: &str, dst: &str) -> RunConfig {
    let ep = |(ns, dev): (&str, &str)| Endpoint {
        netns: Some(ns.to_owned()),
        ifname: dev.to_owned(),
        queues: 1,
    };
    RunConfig {
        tx: ep(tx),
        rx: vec![ep(rx)],
        src_ip: src.parse().unwrap(),
        dst_ip: dst.parse().unwrap(),
        // Resolved by the engine: the gateway of the route to dst.
        dst_mac: None,
        src_port: 10000,
        dst_port: 20000,
        flows: 4,
        vary_addrs: false,
        vlans: vec![],
        sizes: FrameSizes::Fixed(64),
        rate: Rate::Pps(PPS),
        count: PPS as u64 * SECS,
        duration: Duration::from_secs(SECS + 3),
        mode: GenMode::AfXdp,
        bind: BindMode::Auto,
        generic_xdp: false,
        drop_every: None,
        batch: 64,
        gen_cpus: vec![],
        sink_cpus: vec![],
        progress: false,
        all_frames: false,
        rx_blackhole: false,
    }
}

fn check(r: &RunReport, what: &str) {
    let n = PPS as u64 * SECS;
    eprintln!("{what}:\n{}", r.summary());
    assert_eq!(r.generator.sent, n, "{what}: {}", r.summary());
    assert_eq!(r.totals.received, n, "{what}: {}", r.summary());
    assert_eq!(
        (r.totals.lost, r.totals.duplicated, r.totals.reordered),
        (0, 0, 0),
        "{what}: {}",
        r.summary()
    );
    // The kernel's counters agree with the engine's.
    assert!(r.tx_if.tx_packets >= n, "{what}: tx {:?}", r.tx_if);
    assert!(r.rx_if.rx_packets >= n, "{what}: rx {:?}", r.rx_if);
    // Throughput: paced at 50 kpps for 2 s, the run took about 2 s.
    assert!(
        (r.generator.pps - PPS).abs() / PPS < 0.05,
        "{what}: {} pps",
        r.generator.pps
    );
    for s in &r.streams {
        let lat = s.latency.as_ref().expect("latency recorded");
        assert_eq!(lat.count, s.received);
        assert!(lat.min_ns > 0 && lat.max_ns < 1_000_000_000, "{lat:?}");
        assert!(lat.min_ns <= lat.p50_ns && lat.p50_ns <= lat.p99_ns);
    }
    let text = serde_json::to_string(r).unwrap();
    let back: RunReport = serde_json::from_str(&text).unwrap();
    assert_eq!(back.totals.received, r.totals.received);
    assert_eq!(back.totals.lost, r.totals.lost);
    // Integer fields only: serde_json's default float parsing may differ
    // from the printed float in the last bit.
    let key = |x: &RunReport| -> Vec<(u16, u64, u64, Option<u64>)> {
        x.streams
            .iter()
            .map(|s| {
                (
                    s.stream,
                    s.received,
                    s.lost,
                    s.latency.as_ref().map(|l| l.p99_ns),
                )
            })
            .collect()
    };
    assert_eq!(key(&back), key(r));
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["totals"]["received"], n);
}

#[test]
fn engine_drives_traffic_through_the_lab_msee_both_ways() {
    if !require_root("engine_drives_traffic_through_the_lab_msee_both_ways") {
        return;
    }
    let mut l = LabDataplane::up(&unique_prefix("el")).unwrap();
    for link in [PRIMARY, SECONDARY, AZURE] {
        l.attach_link(link, 1, PeeringKind::Private, DOMAIN)
            .unwrap();
    }
    l.group(G_AZURE, &[(AZURE, 0)]).unwrap();
    l.group(G_PRIMARY, &[(PRIMARY, 0)]).unwrap();
    let route = |group| Route { group, flags: 0 };
    l.msee
        .upsert_route(DOMAIN, "10.1.0.0/16".parse().unwrap(), route(G_AZURE))
        .unwrap();
    l.msee
        .upsert_route(
            DOMAIN,
            "192.168.100.128/30".parse().unwrap(),
            route(G_PRIMARY),
        )
        .unwrap();
    let (onprem, azure) = (l.topo.ns_onprem(), l.topo.ns_azure());
    let customer = l.topo.primary.customer.to_string();
    let vnet_host = l.topo.vnet_host.to_string();

    // onprem -> azure: 10.1.0.4 is behind the MSEE (route via .130).
    let to_azure_before = l.msee.link_counters(AZURE, Direction::Tx).unwrap().packets;
    let up = run(&config(
        (&onprem, IF_PRIMARY),
        (&azure, IF_AZURE_PEER),
        &customer,
        &vnet_host,
    ))
    .unwrap();
    check(&up, "onprem -> azure");
    assert_eq!(up.spec.dst_mac, l.port_mac[PRIMARY as usize]);
    let forwarded = l.msee.link_counters(AZURE, Direction::Tx).unwrap().packets - to_azure_before;
    assert!(forwarded >= up.generator.sent, "msee forwarded {forwarded}");

    // azure -> onprem: the customer's address is behind the MSEE too.
    let to_primary_before = l
        .msee
        .link_counters(PRIMARY, Direction::Tx)
        .unwrap()
        .packets;
    let down = run(&config(
        (&azure, IF_AZURE_PEER),
        (&onprem, IF_PRIMARY),
        &vnet_host,
        &customer,
    ))
    .unwrap();
    check(&down, "azure -> onprem");
    assert_eq!(down.spec.dst_mac, l.port_mac[AZURE as usize]);
    let forwarded = l
        .msee
        .link_counters(PRIMARY, Direction::Tx)
        .unwrap()
        .packets
        - to_primary_before;
    assert!(
        forwarded >= down.generator.sent,
        "msee forwarded {forwarded}"
    );
}

#[test]
fn engine_reports_an_unresolvable_next_hop() {
    if !require_root("engine_reports_an_unresolvable_next_hop") {
        return;
    }
    let l = LabDataplane::up(&unique_prefix("en")).unwrap();
    // No route to 203.0.113.9 in onprem: a clear error, nothing sent.
    let cfg = config(
        (&l.topo.ns_onprem(), IF_PRIMARY),
        (&l.topo.ns_azure(), IF_AZURE_PEER),
        &l.topo.primary.customer.to_string(),
        "203.0.113.9",
    );
    let err = format!("{:#}", run(&cfg).unwrap_err());
    assert!(err.contains("no route to 203.0.113.9"), "{err}");
    assert!(err.contains("--dst-mac"), "{err}");
}
