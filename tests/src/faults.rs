//! Faults that count every packet (issue 21), as scenarios that return
//! what they measured: the `faults` and `bgp_bird` tests assert on them,
//! `msee-bench faults` reports them.
//! - Route churn: BIRD withdraws and re-announces 10,000 routes every
//!   second while the VNet sends to ten hosts of 100 stable prefixes.
//! - A flapping session: the customer shuts and reopens the primary's BGP
//!   session every 2 s while flows run both ways on the secondary.
use std::{net::Ipv4Addr, time::Duration};

use lab::{
    IF_SECONDARY,
    traffic::{Flow, FlowResult, send_and_count_at},
};

use crate::{
    bgp_lab::{
        BgpLab, CUSTOMER_NET, KEY, SESSION_PRIMARY, SESSION_SECONDARY, circuit_toml, wait_for,
    },
    bird::{Bird, bird_conf},
    frr::{Frr, customer_conf},
};

/// What a churn run measured.
#[derive(Debug)]
pub struct ChurnRun {
    /// Per probed host (half of them under a churning /25): its flow.
    pub flows: Vec<(Ipv4Addr, FlowResult)>,
    /// Prefixes the daemon saw withdrawn during the run.
    pub withdrawn: u64,
    /// Prefixes churned each time.
    pub churned: usize,
    pub rounds: u32,
}

/// BIRD withdraws and re-announces 10,000 routes (9,900 /24s elsewhere
/// and 100 /25s inside the stable /24s, so half the probed hosts' longest
/// match flips between the churning /25 and its stable /24) `rounds` times,
/// once a second, while the VNet sends to ten hosts of 100 stable prefixes
/// at 500 datagrams/s each.
pub fn route_churn(rounds: u32) -> ChurnRun {
    let stable: Vec<String> = (0..100).map(|i| format!("172.20.{i}.0/24")).collect();
    let churn: Vec<String> = (0..9_900u32)
        .map(|i| format!("10.{}.{}.0/24", 128 + i / 256, i % 256))
        .chain((0..100).map(|i| format!("172.20.{i}.128/25")))
        .collect();
    let hosts: Vec<Ipv4Addr> = (0..10u8)
        .map(|k| Ipv4Addr::new(172, 20, k * 11, if k % 2 == 0 { 1 } else { 129 }))
        .collect();
    let lab = BgpLab::up_custom(
        &crate::unique_prefix("churn"),
        &circuit_toml(),
        &["--max-prefixes", "20000"],
        |topo| {
            for h in &hosts {
                lab::ip_ns(
                    &topo.ns_onprem(),
                    &["addr", "add", &format!("{h}/32"), "dev", "lo"],
                )
                .unwrap();
            }
        },
    );
    let topo = &lab.topo;
    let mut nets = vec![CUSTOMER_NET.to_owned()];
    nets.extend(stable.iter().cloned());
    let mut conf = bird_conf(topo, &lab.dir.join("bird.log"), &nets, KEY, false).replace(
        "where proto = \"cust_nets\"",
        "where proto = \"cust_nets\" || proto = \"churn\"",
    );
    conf += "protocol static churn {\n  ipv4;\n";
    for c in &churn {
        conf += &format!("  route {c} blackhole;\n");
    }
    conf += "}\n";
    let bird = Bird::start(&topo.ns_onprem(), &conf, &lab.dir);
    let ctx = |what: &str| lab.ctx(what, &bird.log());
    let socket = lab.socket.clone();
    let fib = move || -> serde_json::Value {
        control::api::query(
            &socket,
            &control::api::Request::Fib { lookup: vec![] },
            Duration::from_secs(10),
        )
        .unwrap()
    };
    let all = (1 + stable.len() + churn.len()) as u64;
    wait_for("every route on both links", Duration::from_secs(60), || {
        [SESSION_PRIMARY, SESSION_SECONDARY]
            .iter()
            .all(|s| lab.established(s) >= 1)
            && fib()["record"]["prefixes_announced"].as_u64().unwrap_or(0) >= 2 * all
    })
    .unwrap_or_else(|e| panic!("{}", ctx(&e)));
    let withdrawn_before = fib()["record"]["prefixes_withdrawn"].as_u64().unwrap_or(0);

    // rounds + 2 s of traffic to each probed host, 500 pps each.
    let count = u64::from(rounds + 2) * 500;
    let flows: Vec<_> = hosts
        .iter()
        .enumerate()
        .map(|(k, h)| {
            let flow = Flow {
                src_ns: topo.ns_azure(),
                src_addr: topo.vnet_host.into(),
                src_dev: None,
                dst_ns: topo.ns_onprem(),
                dst_addr: (*h).into(),
                dst_port: 7500 + k as u16,
            };
            std::thread::spawn(move || send_and_count_at(&flow, count, Some(500)).unwrap())
        })
        .collect();
    std::thread::sleep(Duration::from_secs(1));
    for _ in 0..rounds {
        for cmd in ["disable", "enable"] {
            let out = bird.birdc(&[cmd, "churn"]);
            assert!(
                out.contains(&format!("{cmd}d")),
                "{}",
                ctx(&format!("birdc {cmd} churn: {out}"))
            );
            std::thread::sleep(Duration::from_millis(500));
        }
    }
    let flows = flows
        .into_iter()
        .zip(&hosts)
        .map(|(f, h)| (*h, f.join().unwrap()))
        .collect();
    let withdrawn = fib()["record"]["prefixes_withdrawn"].as_u64().unwrap_or(0) - withdrawn_before;
    ChurnRun {
        flows,
        withdrawn,
        churned: churn.len(),
        rounds,
    }
}

/// What a flapping run measured.
#[derive(Debug)]
pub struct FlapRun {
    /// On the secondary: to the customer, from the customer.
    pub flows: [FlowResult; 2],
    /// Times the primary's session went down, and the secondary's.
    pub primary_downs: usize,
    pub secondary_downs: usize,
    /// The daemon's RSS before the flapping and once the primary is back.
    pub rss_before: u64,
    pub rss_after: u64,
}

/// The customer shuts and reopens the primary's BGP session every 2 s,
/// `cycles` times, the MSEE's way to the customer preferring the secondary
/// (the customer prepends its path on the primary), while flows run both
/// ways on the secondary at 1,000 datagrams/s.
pub fn flapping(cycles: u32) -> FlapRun {
    let lab = BgpLab::up("flap");
    let topo = &lab.topo;
    let frr = Frr::start(
        &topo.ns_onprem(),
        &customer_conf(topo, &lab.dir.join("bgpd.log")),
        &lab.dir,
    );
    let ctx = |what: &str| lab.ctx(what, &frr.log());
    lab.wait_both_established(Duration::from_secs(30), || frr.log());
    let p = topo.primary.msee;
    let out = frr.vtysh(&[
        "configure terminal",
        "route-map PREPEND permit 10",
        "set as-path prepend 65010 65010",
        "exit",
        "router bgp 65010",
        "address-family ipv4 unicast",
        &format!("neighbor {p} route-map PREPEND out"),
        "end",
        &format!("clear bgp ipv4 unicast {p} soft out"),
    ]);
    assert!(!out.contains("% "), "prepend config: {out}");
    wait_for("the secondary preferred", Duration::from_secs(15), || {
        lab.next_hops(CUSTOMER_NET) == vec![("primary".into(), 3), ("secondary".into(), 1)]
    })
    .unwrap_or_else(|e| panic!("{}", ctx(&e)));
    let rss = |pid: nix::unistd::Pid| msee_sys::host::rss_bytes(pid.as_raw()).unwrap();
    let rss_before = rss(lab.daemon.pid());

    let count = u64::from(cycles * 2 + 2) * 1000;
    let flows: Vec<_> = lab
        .flows_both_ways(7410, Some(IF_SECONDARY))
        .into_iter()
        .map(|f| std::thread::spawn(move || send_and_count_at(&f, count, Some(1000)).unwrap()))
        .collect();
    std::thread::sleep(Duration::from_secs(1));
    for _ in 0..cycles {
        for cmd in ["neighbor {p} shutdown", "no neighbor {p} shutdown"] {
            let out = frr.vtysh(&[
                "configure terminal",
                "router bgp 65010",
                &cmd.replace("{p}", &p.to_string()),
                "end",
            ]);
            assert!(!out.contains("% "), "{cmd}: {out}");
            std::thread::sleep(Duration::from_secs(1));
        }
    }
    let mut got = flows.into_iter().map(|f| f.join().unwrap());
    let flows = [got.next().unwrap(), got.next().unwrap()];
    let primary_downs = lab.count("session down", SESSION_PRIMARY);
    wait_for("the primary back", Duration::from_secs(30), || {
        lab.established(SESSION_PRIMARY) > primary_downs
    })
    .unwrap_or_else(|e| panic!("{}", ctx(&e)));
    FlapRun {
        flows,
        primary_downs,
        secondary_downs: lab.count("session down", SESSION_SECONDARY),
        rss_before,
        rss_after: rss(lab.daemon.pid()),
    }
}
