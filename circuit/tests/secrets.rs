//! A peering's `sharedKey` never leaves the model in a message: not in a
//! parse error (whose parser would quote the offending line), not in an
//! import error, not in the Debug form of the config or the model.
mod common;

use circuit::{Catalog, Config, import, load_files, load_json, load_toml};

const KEY: &str = "Zq7-never-show-me-Kx9";

fn with_line(line: &str) -> String {
    format!("{}{line}\n", common::BASE)
}

#[track_caller]
fn hidden(what: &str, text: &str) {
    assert!(!text.contains(KEY), "{what} shows the key: {text}");
    assert!(
        !text.contains("never-show"),
        "{what} shows part of the key: {text}"
    );
}

#[test]
fn a_misspelt_shared_key_line_is_refused_without_the_key() {
    for line in [
        format!("sharedKy = \"{KEY}\""),
        format!("sharedkey = \"{KEY}\""),
        format!("sharedKey = \"{KEY}\"\nsharedKey = \"{KEY}\""),
        format!("sharedKey = \"{KEY}"),
        format!("sharedKey = {KEY}"),
        format!("sharedKey = [\"{KEY}\"]"),
        format!("peerASN = \"{KEY}\""),
    ] {
        let e = load_toml(&with_line(&line)).unwrap_err().to_string();
        hidden(&line, &e);
        assert!(e.starts_with("TOML: line "), "{line}: {e}");
    }
    let e = load_toml(&with_line(&format!("sharedKy = \"{KEY}\"")))
        .unwrap_err()
        .to_string();
    // BASE is 14 lines (the first empty): the appended line is the 15th.
    assert!(
        e.contains("line 15, column 1") && e.contains("unknown field `sharedKy`"),
        "{e}"
    );
}

#[test]
fn json_errors_name_the_field_but_not_the_value() {
    let base: serde_json::Value =
        serde_json::to_value(Config::from_toml_str(common::BASE).unwrap()).unwrap();
    for (field, value) in [
        ("sharedKy", serde_json::json!(KEY)),
        ("peerASN", serde_json::json!(KEY)),
        ("sharedKey", serde_json::json!([KEY])),
    ] {
        let mut doc = base.clone();
        doc["circuits"][0]["peerings"][0][field] = value;
        let text = doc.to_string();
        let e = load_json(&text).unwrap_err().to_string();
        hidden(field, &e);
        // Through import (a file of the project's own JSON).
        let e = import::import_texts(&[("c.json", &text)])
            .unwrap_err()
            .to_string();
        hidden(field, &e);
    }
}

#[test]
fn two_files_with_different_keys_are_refused_without_either_key() {
    let a = with_line(&format!("sharedKey = \"{KEY}\""));
    let b = with_line("sharedKey = \"another-key\"");
    let e = import::import_texts(&[("a.toml", &a), ("b.toml", &b)])
        .unwrap_err()
        .to_string();
    hidden("the conflict", &e);
    assert!(!e.contains("another-key"), "{e}");
    assert!(e.contains("sharedKey"), "names the field: {e}");
}

#[test]
fn debug_forms_of_config_and_model_hide_the_key() {
    let text = with_line(&format!("sharedKey = \"{KEY}\""));
    let config = Config::from_toml_str(&text).unwrap();
    hidden("Config's Debug", &format!("{config:?}"));
    let model = circuit::validate(&config, &Catalog::embedded()).unwrap();
    hidden("Model's Debug", &format!("{model:?}"));
    hidden("sessions' Debug", &format!("{:?}", model.sessions()));
    // The key is there for whoever asks for it by name, and written back
    // as given (msee-cli import prints the equivalent TOML).
    let p = &model.circuits[0].peerings[0];
    assert_eq!(
        p.shared_key.as_ref().map(circuit::Secret::expose),
        Some(KEY)
    );
    assert!(config.to_toml_string().unwrap().contains(KEY));
    // A file read from disk too.
    let dir = std::env::temp_dir().join(format!("circuit-secrets-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("bad.toml");
    std::fs::write(&path, with_line(&format!("sharedKy = \"{KEY}\""))).unwrap();
    let e = load_files(&[&path]).unwrap_err().to_string();
    std::fs::remove_dir_all(&dir).ok();
    hidden("a file's error", &e);
}
