//! The declarative ExpressRoute circuit model.
//!
//! - [`config`]: the file format (TOML or JSON, Azure's field names).
//! - [`import`](mod@import): the user's own files into one config, each
//!   file's kind detected: the project's TOML/JSON, `az network
//!   express-route show/list` output, REST bodies, deployment templates;
//!   several files merged.
//! - [`catalog`]: peering locations, regions, areas and communities
//!   (`data/catalog.toml`, embedded).
//! - [`validate`](mod@validate): checks a config as a whole against the catalog and
//!   derives the [`Model`], or returns every error with its field path.
//! - [`model`]: per peering and link, addresses, tags, keys, BFD, limits;
//!   BGP sessions.
//! - [`reach`]: regions reached per SKU, VNet routes with region
//!   communities, Global Reach peers.
//!
//! ```
//! let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/lab.toml")).unwrap();
//! let model = circuit::load_toml(&text).unwrap();
//! assert!(!model.circuits.is_empty());
//! ```
#![forbid(unsafe_code)]

pub mod catalog;
pub mod community;
pub mod config;
pub mod import;
pub mod model;
pub mod reach;
pub mod secret;
pub mod validate;

pub use catalog::Catalog;
pub use community::Community;
pub use config::Config;
pub use model::Model;
pub use secret::Secret;
pub use validate::{ValidationError, ValidationErrors, validate};

/// Why a configuration was not loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{0}")]
    Parse(#[from] config::ParseError),
    #[error("{0}")]
    Invalid(#[from] ValidationErrors),
    #[error("{0}")]
    Import(#[from] import::ImportErrors),
    #[error("reading {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// Parses and validates a TOML document against the embedded catalog.
pub fn load_toml(text: &str) -> Result<Model, LoadError> {
    let config = Config::from_toml_str(text)?;
    Ok(validate(&config, &Catalog::embedded())?)
}

/// Parses and validates a JSON document (same field names) against the
/// embedded catalog.
pub fn load_json(text: &str) -> Result<Model, LoadError> {
    let config = Config::from_json_str(text)?;
    Ok(validate(&config, &Catalog::embedded())?)
}

/// Reads, imports and validates one file of any kind
/// [`import`](mod@import) detects (the project's TOML or JSON, az output,
/// REST bodies, a deployment template).
pub fn load_file(path: impl AsRef<std::path::Path>) -> Result<Model, LoadError> {
    load_files(&[path])
}

/// Reads, imports, merges and validates several files into one model (see
/// [`import`](mod@import)).
pub fn load_files<P: AsRef<std::path::Path>>(paths: &[P]) -> Result<Model, LoadError> {
    let imported = import::import_files(paths)?;
    Ok(imported.validate(&Catalog::embedded())?)
}
