//! `msee-cli import` and `msee-daemon --check` on the circuit crate's
//! import fixtures: their output and exit status. Both run unprivileged
//! (as root the tests drop to nobody, without capabilities, to show it)
//! and start nothing.

use std::path::PathBuf;
use std::process::{Command, Output};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../circuit/tests/fixtures"
    ))
    .join(name)
}

/// `bin` as an unprivileged user: as root, through setpriv as nobody with
/// no capabilities.
fn unprivileged(bin: &str) -> Command {
    if nix::unistd::geteuid().is_root() {
        let mut c = Command::new("setpriv");
        c.args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=-all",
            "--bounding-set=-all",
            bin,
        ]);
        c
    } else {
        Command::new(bin)
    }
}

fn run(bin: &str, args: &[&str], fixtures: &[&str]) -> Output {
    let mut c = unprivileged(bin);
    c.args(args);
    for f in fixtures {
        c.arg(fixture(f));
    }
    c.output().expect("the binary runs")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

const CLI: &str = env!("CARGO_BIN_EXE_msee-cli");
const DAEMON: &str = env!("CARGO_BIN_EXE_msee-daemon");

#[test]
fn import_prints_toml_that_loads_back_to_the_same_model() {
    let out = run(
        CLI,
        &["import"],
        &["az-show.json", "az-list.json", "estate.toml"],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let toml = text(&out.stdout);
    assert!(toml.starts_with("# Imported from "), "{toml}");
    assert!(toml.contains("name = \"er-ams\"") && toml.contains("routeFilter = \"rf-office\""));
    let printed = circuit::load_toml(&toml).expect("the printed TOML loads");
    let direct = circuit::load_files(&[
        fixture("az-show.json"),
        fixture("az-list.json"),
        fixture("estate.toml"),
    ])
    .unwrap();
    assert_eq!(printed, direct);

    // --json prints the same config as JSON, the notes on stderr.
    let out = run(
        CLI,
        &["--json", "import"],
        &["template.json", "template.parameters.json"],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let config: circuit::Config = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(config.circuits.len(), 2);
    assert!(
        text(&out.stderr).contains("note: "),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn import_refuses_what_it_cannot_read_and_flags_what_does_not_validate() {
    let out = run(CLI, &["import"], &["template-unsupported.json"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    let err = text(&out.stderr);
    assert!(
        err.contains("resources[0].name: the template expression")
            && err.contains("uniqueString()"),
        "{err}"
    );

    // Imports, but lacks its route filter: printed, and exit status 1.
    let out = run(CLI, &["import"], &["az-show.json"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stdout).contains("name = \"er-ams\""));
    assert!(
        text(&out.stderr).contains("unknown route filter \"rf-office\" (from "),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn daemon_check_validates_without_starting_anything() {
    let out = run(
        DAEMON,
        &[
            "--check",
            "--config",
            fixture("arm-get.json").to_str().unwrap(),
            "--config",
            fixture("peering-get.json").to_str().unwrap(),
            "--config",
        ],
        &["az-peering-list.json"],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    assert!(
        stdout.contains("valid: 1 circuits, 2 peerings, 6 BGP sessions"),
        "{stdout}"
    );
    // The Disabled peering's note.
    assert!(
        text(&out.stderr).contains("note: "),
        "{}",
        text(&out.stderr)
    );

    // A single project file, as before.
    let out = run(
        DAEMON,
        &[
            "--check",
            "--config",
            concat!(env!("CARGO_MANIFEST_DIR"), "/../circuit/examples/lab.toml"),
        ],
        &[],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("valid: 6 circuits"));
}

#[test]
fn daemon_check_prints_every_error_with_its_path_and_exits_1() {
    let out = run(DAEMON, &["--check", "--config"], &["template.json"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    let err = text(&out.stderr);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 3, "{err}");
    assert!(lines[0].contains("template.json: resources[1].resources[0].properties.sharedKey: "));
    assert!(
        lines[1].contains("template.json: resources[4].location: ")
            && lines[1].contains("resourceGroup()")
    );
    assert!(lines[2].ends_with("refused, 2 errors"), "{err}");

    // Validation errors: the config path, and where it came from.
    let out = run(DAEMON, &["--check", "--config"], &["az-show.json"]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.starts_with(
            "circuits[0].peerings[1].routeFilter: unknown route filter \"rf-office\" (from "
        ),
        "{err}"
    );

    // --check needs a file; the ports are not needed with it.
    let out = run(DAEMON, &["--check"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("--config"));
}
