//! Any files into the import (az output, REST bodies, ARM templates and
//! their parameters, the project's own files, merged): it must never
//! panic, and an accepted import must write TOML (`Imported::to_toml`,
//! what `msee-lab import` prints) that loads again: it parses to the same
//! config, imports again as the same, and validates as the import did.
//!
//! The input is one or more files apart by a NUL octet (which no JSON or
//! TOML text holds raw); each is named `.json` when it looks like JSON and
//! `.toml` otherwise, as a user's files would be.
#![no_main]

use std::sync::LazyLock;

use circuit::import::import_texts;
use circuit::{Catalog, Config};
use libfuzzer_sys::fuzz_target;

static CATALOG: LazyLock<Catalog> = LazyLock::new(Catalog::embedded);

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let files: Vec<(String, &str)> = text
        .split('\0')
        .take(4)
        .enumerate()
        .map(|(i, t)| {
            let json = matches!(t.trim_start().chars().next(), Some('{' | '['));
            (format!("in{i}.{}", if json { "json" } else { "toml" }), t)
        })
        .collect();
    let inputs: Vec<(&str, &str)> = files.iter().map(|(n, t)| (n.as_str(), *t)).collect();
    let Ok(imported) = import_texts(&inputs) else {
        return;
    };
    let verdict = imported.validate(&CATALOG);
    let toml = imported.to_toml().unwrap_or_else(|e| {
        panic!(
            "accepted import does not write as TOML: {e}\n{:#?}",
            imported.config
        )
    });
    let config = Config::from_toml_str(&toml)
        .unwrap_or_else(|e| panic!("imported TOML does not parse: {e}\n{toml}"));
    assert_eq!(
        config, imported.config,
        "imported TOML parses to another config:\n{toml}"
    );
    let again = import_texts(&[("imported.toml", &toml)])
        .unwrap_or_else(|e| panic!("imported TOML does not import: {e}\n{toml}"));
    assert_eq!(
        again.config, imported.config,
        "imported TOML imports as another config:\n{toml}"
    );
    // The same verdict; the messages differ only in naming the inputs.
    match (verdict, circuit::validate(&config, &CATALOG)) {
        (Ok(a), Ok(b)) => assert_eq!(a, b, "imported TOML validates to another model:\n{toml}"),
        (Err(_), Err(_)) => {}
        (a, b) => panic!(
            "import validated {}, its TOML {}:\n{toml}",
            if a.is_ok() { "ok" } else { "with errors" },
            if b.is_ok() { "ok" } else { "with errors" }
        ),
    }
});
