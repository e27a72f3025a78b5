//! `msee-traffic` refuses bad arguments with one clear line before sending
//! anything. These need no root: they fail before any socket or program.
use std::process::Command;

fn run(args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_msee-traffic"))
        .args(args)
        .output()
        .expect("run msee-traffic");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A `run` on loopback (exists everywhere, no link speed) with extra args.
fn run_lo(extra: &[&str]) -> (bool, String) {
    let mut args = vec![
        "run",
        "--tx-dev",
        "lo",
        "--rx-dev",
        "lo",
        "--src-ip",
        "127.0.0.1",
        "--dst-ip",
        "127.0.0.2",
        "--dst-mac",
        "02:00:00:00:00:01",
        "--quiet",
    ];
    args.extend_from_slice(extra);
    run(&args)
}

fn one_line_error(stderr: &str, needle: &str) {
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "expected one line, got: {stderr}");
    assert!(lines[0].contains(needle), "{needle:?} not in {stderr:?}");
}

#[test]
fn count_and_duration_are_required() {
    let (ok, err) = run_lo(&["--duration", "1s"]);
    assert!(!ok);
    one_line_error(&err, "both --count and --duration are required");
    let (ok, err) = run_lo(&["--count", "10"]);
    assert!(!ok);
    one_line_error(&err, "both --count and --duration are required");
}

#[test]
fn missing_interface_is_named() {
    let (ok, err) = run(&[
        "run",
        "--tx-dev",
        "nosuchdev0",
        "--rx-dev",
        "lo",
        "--src-ip",
        "127.0.0.1",
        "--dst-ip",
        "127.0.0.2",
        "--count",
        "10",
        "--duration",
        "1s",
        "--quiet",
    ]);
    assert!(!ok);
    one_line_error(&err, "interface nosuchdev0 not found");
}

#[test]
fn missing_namespace_is_named() {
    let (ok, err) = run(&[
        "gen",
        "--netns",
        "no-such-ns-x",
        "--dev",
        "lo",
        "--src-ip",
        "127.0.0.1",
        "--dst-ip",
        "127.0.0.2",
        "--count",
        "10",
        "--duration",
        "1s",
    ]);
    assert!(!ok);
    assert!(err.contains("no-such-ns-x"), "{err}");
}

#[test]
fn frame_size_out_of_range() {
    for size in ["63", "1519"] {
        let (ok, err) = run_lo(&["--count", "10", "--duration", "1s", "--size", size]);
        assert!(!ok);
        one_line_error(&err, &format!("frame size {size} out of range 64..=1518"));
    }
}

#[test]
fn rate_above_bound() {
    let (ok, err) = run_lo(&["--count", "10", "--duration", "1s", "--pps", "300M"]);
    assert!(!ok);
    one_line_error(&err, "above the sanity bound");
}

#[test]
fn bad_units_and_mixed_families() {
    let (ok, err) = run_lo(&["--count", "10", "--duration", "5parsecs"]);
    assert!(!ok);
    assert!(err.contains("bad duration unit"), "{err}");
    let (ok, err) = run(&[
        "run",
        "--tx-dev",
        "lo",
        "--rx-dev",
        "lo",
        "--src-ip",
        "127.0.0.1",
        "--dst-ip",
        "::1",
        "--dst-mac",
        "02:00:00:00:00:01",
        "--count",
        "10",
        "--duration",
        "1s",
        "--quiet",
    ]);
    assert!(!ok);
    one_line_error(&err, "not the same IP version");
}

#[test]
fn rx_namespaces_must_match_rx_devices() {
    let (ok, err) = run_lo(&[
        "--count",
        "10",
        "--duration",
        "1s",
        "--rx-netns",
        "a",
        "--rx-netns",
        "b",
    ]);
    assert!(!ok);
    one_line_error(&err, "2 --rx-netns for 1 devices");
}

#[test]
fn black_hole_needs_an_rx_device() {
    let (ok, err) = run_lo(&[
        "--count",
        "10",
        "--duration",
        "1s",
        "--blackhole",
        "eth9:1s:1s",
    ]);
    assert!(!ok);
    one_line_error(&err, "--blackhole eth9: not an --rx-dev");
    let (ok, err) = run_lo(&["--count", "10", "--duration", "1s", "--blackhole", "lo"]);
    assert!(!ok);
    assert!(err.contains("expected DEV:START:LEN"), "{err}");
}

#[test]
fn sink_port_range_is_checked() {
    let (ok, err) = run(&[
        "sink",
        "--dev",
        "lo",
        "--duration",
        "1s",
        "--udp-ports",
        "30000-20000",
    ]);
    assert!(!ok);
    assert!(err.contains("empty port range"), "{err}");
    let (ok, err) = run(&["sink", "--dev", "nosuchdev0", "--duration", "1s"]);
    assert!(!ok);
    one_line_error(&err, "interface nosuchdev0 not found");
}
