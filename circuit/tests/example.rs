//! The shipped example file parses and validates.

use circuit::reach;

fn example() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/lab.toml")).unwrap()
}

#[test]
fn example_file_parses_and_validates() {
    let model = match circuit::load_toml(&example()) {
        Ok(m) => m,
        Err(e) => panic!("{e}"),
    };
    let names: Vec<&str> = model.circuits.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "er-ams-std",
            "er-lon-std",
            "er-sv-prem",
            "er-direct-prem",
            "er-ams-local",
            "er-tokyo-new"
        ]
    );
    assert_eq!(model.global_reach.len(), 2);
    assert!(reach::globally_reachable(
        &model,
        "er-ams-std",
        "er-lon-std"
    ));
    assert!(reach::globally_reachable(
        &model,
        "er-sv-prem",
        "er-direct-prem"
    ));
    assert!(model.warnings.is_empty(), "{:?}", model.warnings);
}

#[test]
fn example_file_loads_from_disk() {
    let model =
        circuit::load_file(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/lab.toml")).unwrap();
    assert_eq!(model.circuits.len(), 6);
}

#[test]
fn example_round_trips_through_json() {
    let config = circuit::Config::from_toml_str(&example()).unwrap();
    let json = serde_json::to_string_pretty(&config).unwrap();
    assert!(json.contains("\"peerASN\""), "Azure field names in JSON");
    assert!(json.contains("\"serviceProviderProperties\""));
    let from_json = circuit::load_json(&json).unwrap();
    let from_toml = circuit::load_toml(&example()).unwrap();
    assert_eq!(from_json, from_toml);
}

#[test]
fn json_files_load_by_extension() {
    let config = circuit::Config::from_toml_str(&example()).unwrap();
    let dir = std::env::temp_dir().join(format!("circuit-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("lab.json");
    std::fs::write(&path, serde_json::to_string(&config).unwrap()).unwrap();
    let model = circuit::load_file(&path);
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(model.unwrap(), circuit::load_toml(&example()).unwrap());
    assert!(matches!(
        circuit::load_file("/nonexistent/lab.toml"),
        Err(circuit::LoadError::Io { .. })
    ));
}
