//! The declarative ExpressRoute circuit model.
//!
//! - [`config`]: the file format (TOML or JSON, Azure's field names).
//! - [`azure`]: import of circuits from Azure's own JSON (`az network
//!   express-route show/list` output, REST resources).
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

pub mod azure;
pub mod catalog;
pub mod community;
pub mod config;
pub mod model;
pub mod reach;
pub mod validate;

pub use catalog::Catalog;
pub use community::Community;
pub use config::Config;
pub use model::Model;
pub use validate::{ValidationError, ValidationErrors, validate};

/// Why a configuration was not loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{0}")]
    Parse(#[from] config::ParseError),
    #[error("{0}")]
    Invalid(#[from] ValidationErrors),
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

/// Reads a file: `.json` as JSON, anything else as TOML.
pub fn load_file(path: impl AsRef<std::path::Path>) -> Result<Model, LoadError> {
    let path = path.as_ref();
    let text = std::fs::read_to_string(path).map_err(|source| LoadError::Io {
        path: path.display().to_string(),
        source,
    })?;
    if path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json"))
    {
        load_json(&text)
    } else {
        load_toml(&text)
    }
}
