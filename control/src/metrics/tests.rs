use std::{
    collections::BTreeMap,
    io::{Read as _, Write as _},
    net::TcpStream,
    time::Duration,
};

use super::{snapshot::*, *};

fn sample() -> Snapshot {
    let drops = |policer: u64| {
        BTreeMap::from([("no_route".to_owned(), 2), ("policer".to_owned(), policer)])
    };
    Snapshot {
        at_unix_ms: 1_700_000_000_500,
        links: vec![LinkSample {
            name: "er-ams/AzurePrivatePeering/primary".into(),
            ifname: "pri".into(),
            circuit: "er-ams".into(),
            peering: "AzurePrivatePeering".into(),
            role: "primary".into(),
            carries: true,
            flips: BTreeMap::from([
                ("BFD down".to_owned(), 1),
                ("BGP established".to_owned(), 2),
            ]),
            rx: DirCounters {
                packets: 10,
                bytes: 1280,
                drops: drops(3),
            },
            tx: DirCounters {
                packets: 20,
                bytes: 2560,
                drops: drops(7),
            },
            to_kernel: 5,
        }],
        sessions: vec![SessionSample {
            name: "er-ams/AzurePrivatePeering/primary/ipv4".into(),
            circuit: "er-ams".into(),
            peering: "AzurePrivatePeering".into(),
            link: "primary".into(),
            family: "Ipv4".into(),
            peer: "192.168.100.129".into(),
            peer_as: 65010,
            established: true,
            prefixes_received: 6,
            prefixes_refused: BTreeMap::from([("as_loop".to_owned(), 2)]),
            prefixes_accepted: 4,
            prefixes_advertised: 1,
            flaps: 2,
            last_change_unix: Some(1_699_999_990.0),
        }],
        bfd: vec![BfdSample {
            name: "er-ams/primary".into(),
            peer: "192.168.100.129".into(),
            state: "Up".into(),
            detection_time_us: Some(900_000),
            packets_in: 11,
            packets_out: 12,
        }],
        daemon: DaemonSample {
            version: "0.1.0".into(),
            routes_upserted: 9,
            routes_removed: 1,
            fib_batches: 3,
            fib_write_errors: 0,
            routes: 8,
            groups: 2,
            fib_table: FibTableSample {
                fallback_lookups: [12, 3],
                nodes_in_use: [40, 2],
                nodes: [65536, 65536],
                node_bytes: [64, 64],
                slots: 256,
                slots_used: 2,
                domains_on_trie: [1, 0],
                map_bytes: 200_000_000,
            },
        },
    }
}

fn line_of<'a>(text: &'a str, start: &str) -> &'a str {
    text.lines()
        .find(|l| l.starts_with(start))
        .unwrap_or_else(|| panic!("no line starts with {start:?} in\n{text}"))
}

#[test]
fn the_exposition_names_each_figure_with_its_labels() {
    let text = encode(std::sync::Arc::new(sample())).unwrap();
    let link = r#"circuit="er-ams",peering="AzurePrivatePeering",link="primary",port="er-ams/AzurePrivatePeering/primary",ifname="pri""#;
    assert!(
        text.contains("# TYPE msee_link_bytes_total counter"),
        "{text}"
    );
    assert_eq!(
        line_of(
            &text,
            &format!("msee_link_bytes_total{{{link},direction=\"in\"}}")
        ),
        format!("msee_link_bytes_total{{{link},direction=\"in\"}} 1280")
    );
    assert!(text.contains(&format!(
        "msee_link_bytes_total{{{link},direction=\"out\"}} 2560"
    )));
    assert!(text.contains(&format!(
        "msee_link_dropped_packets_total{{{link},direction=\"out\",reason=\"policer\"}} 7"
    )));
    assert!(text.contains(&format!(
        "msee_link_dropped_packets_total{{{link},direction=\"in\",reason=\"policer\"}} 3"
    )));
    assert!(text.contains(&format!(
        "msee_link_flips_total{{{link},cause=\"BFD down\"}} 1"
    )));
    assert!(text.contains(&format!("msee_link_carries{{{link}}} 1")));
    assert!(text.contains(
        "msee_bgp_session_flaps_total{session=\"er-ams/AzurePrivatePeering/primary/ipv4\""
    ));
    assert!(line_of(&text, "msee_bgp_prefixes_accepted{").ends_with(" 4"));
    assert!(line_of(&text, "msee_bgp_prefixes_received_total{").ends_with(" 6"));
    let refused = line_of(&text, "msee_bgp_prefixes_refused_total{");
    assert!(refused.ends_with(",reason=\"as_loop\"} 2"), "{refused}");
    assert!(line_of(&text, "msee_bgp_session_up{").ends_with(" 1"));
    assert!(
        line_of(&text, "msee_bgp_session_last_change_timestamp_seconds{")
            .ends_with(" 1699999990.0")
    );
    assert!(line_of(&text, "msee_bfd_detection_time_seconds{").ends_with(" 0.9"));
    assert!(text.contains("msee_fib_route_writes_total{op=\"upsert\"} 9"));
    assert!(text.contains("msee_fib_write_errors_total 0"));
    assert!(text.contains("msee_build_info{version=\"0.1.0\"} 1"));
    assert!(text.contains("msee_fib_fallback_lookups_total{family=\"ipv4\"} 12"));
    assert!(text.contains("msee_fib_fallback_lookups_total{family=\"ipv6\"} 3"));
    assert!(text.contains("msee_fib_table_nodes_in_use{family=\"ipv4\"} 40"));
    assert!(text.contains("msee_fib_table_nodes{family=\"ipv6\"} 65536"));
    assert!(text.contains("msee_fib_table_domains 2"));
    assert!(text.contains("msee_fib_table_domains_on_trie{family=\"ipv4\"} 1"));
    assert!(!text.contains("# EOF"), "Prometheus text, not OpenMetrics");
}

/// `promtool check metrics` (Debian's prometheus package, installed by
/// `cargo xtask setup`) finds nothing wrong with the exposition.
#[test]
fn promtool_accepts_the_exposition() {
    let Ok(promtool) = which_promtool() else {
        panic!("promtool not found: run `cargo xtask setup` (it installs Debian's prometheus)");
    };
    let text = encode(std::sync::Arc::new(sample())).unwrap();
    let mut child = std::process::Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let said =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "promtool check metrics:\n{said}\non\n{text}"
    );
    assert!(said.trim().is_empty(), "promtool has remarks:\n{said}");
}

fn which_promtool() -> Result<std::path::PathBuf, ()> {
    ["/usr/bin/promtool", "/usr/local/bin/promtool"]
        .iter()
        .map(std::path::PathBuf::from)
        .find(|p| p.exists())
        .ok_or(())
}

fn get(addr: std::net::SocketAddr, path: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

#[test]
fn the_endpoint_serves_the_latest_snapshot_past_a_stuck_scraper() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let p = Published::default();
    p.set(sample());
    let listener = server::bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = rt
        .block_on(async { server::serve(listener, p.clone()) })
        .unwrap();
    // A scraper that connects and sends half a request holds nothing.
    let mut stuck = TcpStream::connect(addr).unwrap();
    stuck.write_all(b"GET /metr").unwrap();
    let first = get(addr, "/metrics");
    assert!(first.starts_with("HTTP/1.1 200"), "{first}");
    assert!(first.contains("text/plain; version=0.0.4"), "{first}");
    assert!(first.contains("msee_fib_routes 8"), "{first}");
    // The next scrape sees what the loop published since.
    let mut s = sample();
    s.daemon.routes = 9;
    p.set(s);
    assert!(get(addr, "/metrics").contains("msee_fib_routes 9"));
    assert!(get(addr, "/nothing").starts_with("HTTP/1.1 404"));
    // A scrape asks the loop for fresh figures and gets them when the loop
    // answers in time.
    let loop_side = p.clone();
    rt.spawn(async move {
        loop_side.wanted().await;
        let mut s = sample();
        s.daemon.routes = 10;
        loop_side.set(s);
    });
    assert!(get(addr, "/metrics").contains("msee_fib_routes 10"));
    // The same address again: a clear error at start.
    let e = server::bind(addr).unwrap_err();
    let e = format!("{e:#}");
    assert!(
        e.contains(&format!("--metrics-listen {addr}")) && e.contains("in use"),
        "{e}"
    );
    drop(stuck);
}
