//! The report renders saved benchmark JSON into BENCHMARKS.md exactly as
//! before the benchmarks were split by subject: `data/*.json` hold the
//! figures of the BENCHMARKS.md of commit 3659ff3 (every field the report
//! reads), and `data/BENCHMARKS.md` is that file, but for the two places
//! that name where the code now lives (the baseline program's path and the
//! failover command) and the text that describes msee's route lookup (the
//! forwarding table since). The lab's kernel-FIB forwarder and spread
//! traffic samples came later: their figures (and the rows and text they
//! bring) are those of a 3-round lab run, `msee-bench dataplane --rounds 1
//! --calls 1 --lab-rounds 3 --install-runs 0 --cold-calls 0`; and the
//! two-core lab samples (`lab.cores`) of a 2-round run. The
//! many-destinations row of the Internet-shaped table over 16 next-hop
//! groups (`"groups": 16` in `cold`) came later still and was not
//! measured: its samples and forwarding-table figures are copies of the
//! one-group 1,000,000-route ones, there to render the row and its text.
use bench::report::{self, Failover, Machine};
use serde_json::Value;

fn data(name: &str) -> String {
    let path = format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn json(name: &str) -> Value {
    serde_json::from_str(&data(name)).unwrap()
}

fn machine() -> Machine {
    Machine {
        kernel: "6.18.44-fc-v769".into(),
        cpus: "2".into(),
        cpu_model: "Intel(R) Xeon(R) Processor".into(),
        date: "2026-11-30 18:14 UTC".into(),
        loadavg: "1.03 1.04 1.08".into(),
        available_cpus: 2,
    }
}

#[test]
fn the_report_renders_as_before() {
    let (r, f) = (json("dataplane.json"), json("failover.json"));
    let text = report::render(
        &r,
        Some(Failover {
            report: &f,
            command: "run --release -p bench --bin msee-bench -- failover --rounds 5",
        }),
        None,
        None,
        &machine(),
        645,
    )
    .unwrap();
    // REPORT_BLESS=1: write what the report renders as the expected text
    // (after a change of the report's wording; review the diff).
    if std::env::var_os("REPORT_BLESS").is_some() {
        let path = format!("{}/tests/data/BENCHMARKS.md", env!("CARGO_MANIFEST_DIR"));
        std::fs::write(&path, &text).unwrap();
    }
    let expected = data("BENCHMARKS.md");
    if text != expected {
        let line = text
            .lines()
            .zip(expected.lines())
            .position(|(a, b)| a != b)
            .map_or(text.lines().count().min(expected.lines().count()), |i| i);
        panic!(
            "the report differs from line {}:\n  got:      {:?}\n  expected: {:?}",
            line + 1,
            text.lines().nth(line),
            expected.lines().nth(line)
        );
    }
}

#[test]
fn sections_not_measured_say_so() {
    let mut r = json("dataplane.json");
    for key in ["lab", "generators", "bgp_install", "cold"] {
        r.as_object_mut().unwrap().remove(key);
    }
    let text = report::render(&r, None, None, None, &machine(), 1).unwrap();
    assert!(text.contains("## Lab throughput\n\nNot measured on this run (`--lab-rounds 0`)."));
    assert!(text.contains("## Generators\n\nNot measured on this run (`--lab-rounds 0`)."));
    assert!(text.contains("Not measured on this run (`--install-runs 0`)."));
    assert!(!text.contains("### Many destinations"));
    assert!(!text.contains("## Failover"));
    // The per-packet targets are still there; msee against the no-op
    // baseline is no longer one.
    assert!(text.contains(
        "| msee, 1,000,000 routes, policing: pps vs its own 1-route pps | 0.853 | ≥ 0.80 | PASS |\n"
    ));
    assert!(!text.contains("pps vs baseline pps"));
}

/// Figures from before the table of many next-hop groups render without
/// its row; the main rows and the target still read the one-group table.
#[test]
fn figures_without_the_many_groups_table_lack_its_row() {
    let mut r = json("dataplane.json");
    for key in ["samples", "fib"] {
        r["cold"][key]
            .as_array_mut()
            .unwrap()
            .retain(|s| s.get("groups").is_none());
    }
    let text = report::render(&r, None, None, None, &machine(), 1).unwrap();
    assert!(text.contains("| 1,000,000 | 76.9 | 118.4 | 2084.6 | 27.12x | – | – |\n"));
    assert!(!text.contains("16 groups at random (adversarial)"));
    assert!(!text.contains("routes over 16 groups at random:"));
    assert!(text.contains("not reached (27.12x)"));
    // Nor does the target read the many-groups table when its samples
    // come first.
    let mut r = json("dataplane.json");
    let samples = r["cold"]["samples"].as_array_mut().unwrap();
    samples.sort_by_key(|s| s.get("groups").is_none());
    samples[0]["ns_per_packet"]["median"] = 9999.0.into();
    let text = report::render(&r, None, None, None, &machine(), 1).unwrap();
    assert!(text.contains("not reached (27.12x)"), "{text}");
}

#[test]
fn install_only_has_the_install_targets_and_sections() {
    let text = report::render_install_only(&json("dataplane.json"), &machine()).unwrap();
    assert!(text.starts_with("# Benchmarks: route installation only (`--only install`)\n"));
    assert!(text.contains(
        "| install from a BGP peer (BIRD): 1,000,000 prefixes, prefixes per second | 585,537 | ≥ 500,000 | PASS |"
    ));
    assert!(text.contains("## Route installation through the dataplane API"));
    assert!(!text.contains("## Per-packet cost"));
}

#[test]
fn missing_figures_are_named() {
    let mut r = json("dataplane.json");
    r["baseline"]["ns_per_packet"]
        .as_object_mut()
        .unwrap()
        .remove("median");
    let e = report::render(&r, None, None, None, &machine(), 1).unwrap_err();
    assert_eq!(
        e.to_string(),
        "msee-bench JSON lacks baseline.ns_per_packet.median"
    );
}

#[test]
fn the_scale_figures_have_their_target_and_section() {
    // data/scale.json: what `msee-bench scale` printed on 2026-12-05 (its
    // per-packet part from `scale --per-packet-only --rounds 7`).
    let (r, sc) = (json("dataplane.json"), json("scale.json"));
    let text = report::render(&r, None, Some(&sc), None, &machine(), 1).unwrap();
    assert!(
        text.contains(
            "| Per packet (BPF_PROG_TEST_RUN), 100 circuits' domains loaded vs 1, many destinations across the domains | 0.926 | ≥ 0.95 | FAIL |"
        ),
        "{text}"
    );
    assert!(text.contains("## Scale of one daemon"));
    assert!(
        text.contains("| 100 circuits | 400 | 7.84 s | 7.83 s | 20,501 | 99.0 MiB | 2.85 s |"),
        "{text}"
    );
    assert!(
        text.contains(
            "Memory per circuit (100 circuits' RSS less one circuit's, over 99): **880 KiB**"
        ),
        "{text}"
    );
    assert!(
        text.contains("| each domain's probe, 250 runs per call | 93.0 | 95.0 | 0.959 |"),
        "{text}"
    );
    assert!(
        text.contains("| 1,000 destinations, one run per call, to the first circuit's domains only | 165.0 | 163.0 | 1.012 |"),
        "{text}"
    );
    assert!(
        text.contains("Forwarding table memory: 200 domains, 1,010,000 routes: 908,600 IPv4 lines of ranges, 940 MiB with the domains' roots (976 bytes per route, 4.7 MiB per domain; maps allocated at load 2090 MiB)"),
        "{text}"
    );
    // The target row falls short (0.926) and says why from the same rounds.
    assert!(
        text.contains(
            "- Per packet (BPF_PROG_TEST_RUN), 100 circuits' domains loaded vs 1, many \
             destinations across the domains: 0.926 of the one-circuit rate: loaded circuits \
             that carry no traffic cost little (the same number of destinations in the first \
             circuit's domains only: 1.012 of one circuit's rate), while spread over every \
             domain a packet costs 14 ns more (183.7 vs 169.4 ns, medians)"
        ),
        "{text}"
    );
    // Without the estate part (`--per-packet-only`), the per-packet figures alone.
    let mut pp = sc.clone();
    pp.as_object_mut().unwrap().remove("estate");
    let text = report::render(&r, None, Some(&pp), None, &machine(), 1).unwrap();
    assert!(!text.contains("| daemon runs |"));
    assert!(
        text.contains("200 domains; 10,000 Internet-shaped routes"),
        "{text}"
    );
    // Figures from before the spread traffic: each circuit's probe.
    pp["per_packet"] = serde_json::json!({
        "routes_per_domain": 10000, "rounds": 11, "one_ns": 166.5, "many_ns": 167.0,
        "ratio": 1.0,
    });
    let text = report::render(&r, None, Some(&pp), None, &machine(), 1).unwrap();
    assert!(
        text.contains("**166.5 ns vs 167.0 ns** (medians), **1.000** of the one-circuit rate (median of 11 rounds' ratios"),
        "{text}"
    );
    assert!(
        text.contains(
            "| Per packet (BPF_PROG_TEST_RUN), 100 circuits' domains loaded vs 1, each circuit's probe | 1.000 | ≥ 0.95 | PASS |"
        ),
        "{text}"
    );
}

/// The restart rows: a table row per scenario, a zero-loss target for
/// those that have one (missed when anything was lost).
#[test]
fn restart_rows_and_their_targets() {
    let r = json("dataplane.json");
    let flow = |lost: u64| serde_json::json!({"sent": 20000, "received": 20000 - lost, "lost": lost, "longest_gap_ms": 7.5});
    let faults = serde_json::json!({"pps": 1000, "secs": 20, "rows": [
        {"scenario": "restart (SIGTERM), customer with graceful restart", "zero_loss_target": true,
         "to_customer": flow(0), "from_customer": flow(0)},
        {"scenario": "crash (SIGKILL) and restart, customer with graceful restart", "zero_loss_target": true,
         "to_customer": flow(3), "from_customer": flow(0)},
        {"scenario": "restart (SIGTERM), customer without graceful restart", "zero_loss_target": false,
         "to_customer": flow(0), "from_customer": flow(1800)},
    ]});
    let text = report::render(&r, None, None, Some(&faults), &machine(), 1).unwrap();
    assert!(
        text.contains("## Restarts and faults under traffic"),
        "{text}"
    );
    assert!(text.contains(
        "| restart (SIGTERM), customer with graceful restart: lost, both ways | 0 | 0 | PASS |"
    ));
    assert!(text.contains(
        "| crash (SIGKILL) and restart, customer with graceful restart: lost, both ways | 3 | 0 | FAIL |"
    ));
    assert!(!text.contains("without graceful restart: lost, both ways"));
    assert!(text.contains(
        "| restart (SIGTERM), customer without graceful restart | 0 of 20000 | 7.5 ms | 1800 of 20000 | 7.5 ms |"
    ));
}

/// A lab row against the bare redirect, and the AF_XDP generator, that fall
/// short say why from the same run's figures: what msee's program costs
/// per packet over the bare redirect, and the kernel's share of the
/// generator's CPU time.
#[test]
fn rows_that_fall_short_say_why() {
    let mut r = json("dataplane.json");
    let lab = &mut r["lab"];
    for c in lab["configs"].as_array_mut().unwrap() {
        if c["program"] == "msee"
            && c["routes"] == 10_000
            && c["destinations"].as_u64().unwrap_or(1) == 1
        {
            c["vs_baseline"]["median"] = 0.85.into();
        }
    }
    for c in lab["cores"]["configs"].as_array_mut().unwrap() {
        if c["program"] == "msee" && c["cpus"] == 2 {
            c["vs_baseline"]["median"] = 0.86.into();
            c["vs_one_core"]["median"] = 1.7.into();
        }
    }
    let per_packet = |r: &Value| {
        let msee = r["msee"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["routes"] == 10_000 && c["policing"] == true)
            .unwrap()["ns_per_packet"]["median"]
            .as_f64()
            .unwrap();
        (
            msee,
            r["baseline"]["ns_per_packet"]["median"].as_f64().unwrap(),
        )
    };
    let (msee, bare) = per_packet(&r);
    let af_xdp = r["generators"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|g| g["mode"] == "af_xdp")
        .unwrap();
    af_xdp["tx_pps"]["median"] = 0.9e6.into();
    af_xdp["system_share"] = serde_json::json!({"median": 0.9});
    af_xdp["kernel_bound_pps"] = serde_json::json!({"median": 1.05e6});
    let text = report::render(&r, None, None, None, &machine(), 1).unwrap();
    let extra = format!(
        "msee's program costs {:.0} ns a packet more than the bare redirect \
         (per packet, 10,000 routes, policing: {msee:.1} vs {bare:.1} ns); reaching 0.90",
        msee - bare
    );
    assert!(
        text.contains(&format!(
            "- lab: msee, 10,000 routes, policing: forwarded pps vs baseline: 0.850, below 0.90: {extra}"
        )),
        "{text}"
    );
    assert!(text.contains(&format!(
        "- lab: msee, 10,000 routes, 2 queues + 2 cores: forwarded pps vs baseline: 0.860, below 0.90: {extra}"
    )));
    assert!(text.contains(
        "- generator, AF_XDP: pps on one core (64-byte, veth): 0.90 Mpps, below 1.2 Mpps: 90 % \
         of the sending thread's CPU time was the kernel's (system time: in copy mode it makes \
         an skb of every frame); were the generator's own code free, one core would send at \
         most 1.05 Mpps, below 1.2 Mpps\n"
    ));
    let bare_scaling = r["lab"]["cores"]["configs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["program"] == "baseline" && c["cpus"] == 2)
        .unwrap()["vs_one_core"]["median"]
        .as_f64()
        .unwrap();
    assert!(text.contains(&format!(
        "- lab: msee, 2 cores vs 1 core: 1.700, below 1.80: the bare redirect, which shares \
         nothing between CPUs, scaled {bare_scaling:.3} in the same rounds\n"
    )));
    assert!(!text.contains("caps the ratio"));
    assert!(text.contains("| af_xdp | 0.900 |"));
    assert!(text.contains("| 90 % | no (copy mode) |"));
}
