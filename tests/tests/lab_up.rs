//! `cargo xtask lab up --config` as a user runs it (`msee-lab`): the
//! README's own example (a circuit as `az network express-route show`
//! prints it, and a second file with its VNets and route filter) builds,
//! every session comes up, the VNet in reach answers and the one out of
//! reach does not, and `lab down` leaves no namespace, process or pin
//! behind. A file whose lab cannot be built is refused with nothing made.
use std::{path::PathBuf, process::Command};

use e2e_tests::{require_root, unique_prefix};

fn example(name: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../circuit/examples/az")
        .join(name)
        .display()
        .to_string()
}

fn msee_lab(args: &[&str]) -> (bool, String) {
    let bin = lab::daemon::workspace_bin("msee-lab").expect("msee-lab is built");
    let out = Command::new(bin)
        .args(args)
        .output()
        .expect("running msee-lab");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

fn namespaces(prefix: &str) -> Vec<String> {
    std::fs::read_dir("/run/netns")
        .map(|d| {
            d.filter_map(std::result::Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with(&format!("{prefix}-")))
                .collect()
        })
        .unwrap_or_default()
}

fn ping(ns: &str, from: &str, to: &str) -> bool {
    Command::new("ip")
        .args([
            "netns", "exec", ns, "ping", "-c", "2", "-W", "1", "-I", from, to,
        ])
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn lab_up_from_az_output_and_down_leaves_nothing() {
    if !require_root("lab_up_from_az_output_and_down_leaves_nothing") {
        return;
    }
    let prefix = unique_prefix("up");
    let (circuit, azure) = (example("er-ams.json"), example("azure-side.toml"));
    let (ok, out) = msee_lab(&[
        "up", "--prefix", &prefix, "--config", &circuit, "--config", &azure,
    ]);
    let state = lab::estate::State::load(&prefix).unwrap();
    let guard = scopeguard(prefix.clone());
    assert!(ok, "{out}");
    assert!(out.contains("BGP: all 6 sessions established"), "{out}");
    let state = state.expect("a state file");
    assert!(out.contains(&format!("namespace {prefix}-er-ams")), "{out}");
    let ns = format!("{prefix}-er-ams");
    assert!(ping(&ns, "172.16.0.1", "10.10.0.4"), "vnet-weu is in reach");
    assert!(
        !ping(&ns, "172.16.0.1", "10.30.0.4"),
        "vnet-eus is out of reach"
    );
    assert!(
        ping(&ns, "198.51.100.1", "198.18.10.1"),
        "Exchange over Microsoft peering"
    );
    let pids: Vec<i32> = state.processes.iter().map(|p| p.pid).collect();
    drop(guard);
    assert!(namespaces(&prefix).is_empty(), "{:?}", namespaces(&prefix));
    for pid in pids {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        assert!(
            stat.is_empty() || stat.contains(") Z"),
            "process {pid} still runs: {stat}"
        );
    }
    assert!(!lab::estate::pin_dir(&prefix).exists());
    assert!(!lab::estate::state_dir(&prefix).exists());
}

#[test]
fn a_lab_that_cannot_be_built_is_refused_with_nothing_made() {
    if !require_root("a_lab_that_cannot_be_built_is_refused_with_nothing_made") {
        return;
    }
    let prefix = unique_prefix("bad");
    // One of its namespaces exists already.
    lab::ip(&["netns", "add", &format!("{prefix}-msee")]).unwrap();
    let (ok, out) = msee_lab(&[
        "up",
        "--prefix",
        &prefix,
        "--config",
        &example("er-ams.json"),
        "--config",
        &example("azure-side.toml"),
    ]);
    assert!(
        !ok && out.contains(&format!("namespace {prefix}-msee already exists")),
        "{out}"
    );
    assert_eq!(
        namespaces(&prefix),
        [format!("{prefix}-msee")],
        "nothing else made"
    );
    lab::ip(&["netns", "del", &format!("{prefix}-msee")]).unwrap();
    // A router the lab does not know.
    let (ok, out) = msee_lab(&[
        "up",
        "--prefix",
        &prefix,
        "--config",
        &example("er-ams.json"),
        "--config",
        &example("azure-side.toml"),
        "--customer",
        "er-nope=frr",
    ]);
    assert!(!ok && out.contains("no circuit er-nope"), "{out}");
    assert!(namespaces(&prefix).is_empty());
}

/// Removes the lab when dropped (even when an assertion failed first).
fn scopeguard(prefix: String) -> impl Drop {
    struct Down(String);
    impl Drop for Down {
        fn drop(&mut self) {
            let (ok, out) = msee_lab(&["down", "--prefix", &self.0]);
            if !ok {
                eprintln!("lab down: {out}");
            }
        }
    }
    Down(prefix)
}
