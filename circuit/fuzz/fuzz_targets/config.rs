//! Any text into the circuit file parser (TOML, and JSON with the same
//! field names) and the validator: they must never panic, and a config the
//! parser accepts must be written out (TOML and JSON) as a document that
//! parses back to the same config, in either format.
#![no_main]

use std::sync::LazyLock;

use circuit::{Catalog, Config};
use libfuzzer_sys::fuzz_target;

/// The catalog `load_toml` and `load_json` validate against, parsed once.
static CATALOG: LazyLock<Catalog> = LazyLock::new(Catalog::embedded);

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for config in [Config::from_toml_str(text), Config::from_json_str(text)]
        .into_iter()
        .flatten()
    {
        // Whatever the verdict, it comes without a panic.
        let _ = circuit::validate(&config, &CATALOG);
        written_back(&config);
    }
});

/// The config as TOML and as JSON, each parsing back to itself.
fn written_back(config: &Config) {
    let toml = config
        .to_toml_string()
        .unwrap_or_else(|e| panic!("accepted config does not write as TOML: {e}\n{config:#?}"));
    match Config::from_toml_str(&toml) {
        Ok(again) => assert_eq!(&again, config, "TOML written back differs:\n{toml}"),
        Err(e) => panic!("TOML written back does not parse: {e}\n{toml}"),
    }
    let json = serde_json::to_string(config)
        .unwrap_or_else(|e| panic!("accepted config does not write as JSON: {e}\n{config:#?}"));
    match Config::from_json_str(&json) {
        Ok(again) => assert_eq!(&again, config, "JSON written back differs:\n{json}"),
        Err(e) => panic!("JSON written back does not parse: {e}\n{json}"),
    }
}
