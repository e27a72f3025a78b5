//! `msee-cli`'s az-shaped verbs against a stand-in daemon on a Unix socket
//! that answers with the fixtures of `tests/fixtures/az`: the request each
//! verb sends, its `--json` output (the ARM shape, unchanged), its table,
//! and a daemon's error passed through. Starts no daemon, needs no
//! privilege.
use std::{
    io::{BufRead as _, BufReader, Write as _},
    os::unix::net::UnixListener,
    path::{Path, PathBuf},
    process::Output,
};

use serde_json::{Value, json};

fn fixture(name: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/az")
        .join(format!("{name}.json"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Runs `msee-cli ARGS` against a stand-in daemon that answers its one
/// request with `answer`; returns the request it received and the output.
fn run(tag: &str, args: &[&str], answer: Value) -> (Value, Output) {
    let socket: PathBuf =
        std::env::temp_dir().join(format!("msee-az-cli-{}-{tag}.sock", std::process::id()));
    let _ = std::fs::remove_file(&socket);
    let listener = UnixListener::bind(&socket).unwrap();
    let daemon = std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        let mut line = String::new();
        BufReader::new(&stream).read_line(&mut line).unwrap();
        let mut w = &stream;
        writeln!(w, "{answer}").unwrap();
        serde_json::from_str::<Value>(&line).unwrap()
    });
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_msee-cli"))
        .arg("--socket")
        .arg(&socket)
        .args(args)
        .output()
        .unwrap();
    let request = daemon.join().unwrap();
    let _ = std::fs::remove_file(&socket);
    (request, out)
}

fn stdout(o: &Output) -> String {
    assert!(
        o.status.success(),
        "msee-cli failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout.clone()).unwrap()
}

#[test]
fn get_stats_json_is_the_arm_shape() {
    let (req, out) = run(
        "stats",
        &[
            "--json",
            "get-stats",
            "er-lab",
            "--peering",
            "AzurePrivatePeering",
        ],
        json!({ "ok": fixture("get-stats") }),
    );
    assert_eq!(
        req,
        json!({"cmd": "stats", "circuit": "er-lab", "peering": "AzurePrivatePeering"})
    );
    let printed: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(printed, fixture("get-stats"));
}

#[test]
fn get_stats_table_without_a_peering() {
    let (req, out) = run(
        "stats-table",
        &["get-stats", "er-lab"],
        json!({ "ok": fixture("get-stats") }),
    );
    assert_eq!(req, json!({"cmd": "stats", "circuit": "er-lab"}));
    assert!(
        stdout(&out).contains("primary    1534000  912640"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn list_route_tables_learned_and_advertised() {
    let args = |adv: bool| {
        let mut a = vec![
            "--json",
            "list-route-tables",
            "er-lab",
            "--peering",
            "AzurePrivatePeering",
            "--path",
            "secondary",
        ];
        if adv {
            a.push("--advertised");
        }
        a
    };
    for adv in [false, true] {
        let (req, out) = run(
            &format!("routes-{adv}"),
            &args(adv),
            json!({ "ok": fixture("list-route-tables") }),
        );
        assert_eq!(
            req,
            json!({"cmd": "route-table", "circuit": "er-lab", "peering": "AzurePrivatePeering",
                   "path": "secondary", "advertised": adv})
        );
        let printed: Value = serde_json::from_str(&stdout(&out)).unwrap();
        assert_eq!(printed, fixture("list-route-tables"));
    }
}

#[test]
fn summary_and_arp_tables() {
    let (req, out) = run(
        "summary",
        &[
            "list-route-tables-summary",
            "er-lab",
            "--peering",
            "AzurePrivatePeering",
            "--path",
            "primary",
        ],
        json!({ "ok": fixture("list-route-tables-summary") }),
    );
    assert_eq!(
        req,
        json!({"cmd": "route-table-summary", "circuit": "er-lab", "peering": "AzurePrivatePeering", "path": "primary"})
    );
    assert!(stdout(&out).contains("192.168.100.133  4  65010  never     Idle"));

    let (req, out) = run(
        "arp",
        &[
            "--json",
            "list-arp-tables",
            "er-lab",
            "--peering",
            "AzurePrivatePeering",
            "--path",
            "primary",
        ],
        json!({ "ok": fixture("list-arp-tables") }),
    );
    assert_eq!(req["cmd"], "arp-table");
    let printed: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(printed, fixture("list-arp-tables"));
}

#[test]
fn the_daemons_error_names_the_valid_choices() {
    let (_, out) = run(
        "error",
        &["get-stats", "er-nope"],
        json!({ "error": "unknown circuit \"er-nope\" (valid: er-lab, er-ams)" }),
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        err.trim(),
        "msee-cli: error: msee-daemon: unknown circuit \"er-nope\" (valid: er-lab, er-ams)"
    );
}
