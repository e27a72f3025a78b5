//! Import of the user's own files into one [`Config`], each file's kind
//! detected from its content:
//!
//! - the project's own file, TOML or the same document as JSON;
//! - Azure resources as `az network express-route show`/`list` (and `az
//!   network express-route peering show`/`list`, `az network vnet show`,
//!   ...) print them, or as the REST API sends them: one resource, a JSON
//!   array, or a `{"value": [...]}` list (`import/rest.rs`);
//! - an ARM deployment template, with the parameters files given after it
//!   on the command line (`import/template/`).
//!
//! What one file lacks comes from another (VNets, connections and route
//! filters beside a circuit's document); the same resource given twice
//! must be the same (`import/estate.rs`). Azure's read-only
//! fields are accepted and ignored; an unknown field is refused with its
//! path. Every error names its file and JSON path.
//!
//! ```
//! let az = r#"{"name": "er-ams", "type": "Microsoft.Network/expressRouteCircuits",
//!   "sku": {"name": "Standard_MeteredData", "tier": "Standard", "family": "MeteredData"},
//!   "serviceKey": "6f1c2c7e-0d55-4a3c-9b4e-1a2b3c4d5e01", "etag": "W/\"1\"",
//!   "serviceProviderProperties": {"serviceProviderName": "Equinix", "peeringLocation": "Amsterdam", "bandwidthInMbps": 1000},
//!   "serviceProviderProvisioningState": "Provisioned", "circuitProvisioningState": "Enabled", "peerings": []}"#;
//! let imported = circuit::import::import_texts(&[("er-ams.json", az)]).unwrap();
//! let model = imported.validate(&circuit::Catalog::embedded()).unwrap();
//! assert_eq!(model.circuits[0].name, "er-ams");
//! let toml = imported.to_toml().unwrap();
//! assert_eq!(circuit::Config::from_toml_str(&toml).unwrap(), imported.config);
//! ```

mod doc;
mod estate;
mod kinds;
mod project;
mod rest;
mod template;

use std::fmt;
use std::path::Path;

use serde_json::Value;

use crate::config::Config;
use crate::validate::{ValidationError, ValidationErrors};
use crate::{Catalog, LoadError, Model};

pub use doc::{Issue, Origin};

use doc::Diag;
use kinds::Collected;

/// Everything imported, put together.
#[derive(Debug, Clone)]
pub struct Imported {
    pub config: Config,
    /// Things worth knowing: fields Azure sets that a document lacked and
    /// the default taken, resources not imported, ...
    pub notes: Vec<Issue>,
    /// The inputs, in the order given.
    pub files: Vec<String>,
    sources: estate::Sources,
}

/// Why the inputs were not imported: every problem, each with its file and
/// JSON path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ImportErrors(pub Vec<Issue>);

impl fmt::Display for ImportErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0.len();
        write!(
            f,
            "import refused, {n} error{}:",
            if n == 1 { "" } else { "s" }
        )?;
        for e in &self.0 {
            write!(f, "\n  {e}")?;
        }
        Ok(())
    }
}

impl Imported {
    /// The input a part of the config came from: for a config path
    /// (`circuits[1].peerings[0].vlanId`), the file and JSON path of the
    /// closest enclosing imported item.
    pub fn source(&self, config_path: &str) -> Option<&Origin> {
        self.source_entry(config_path).map(|(_, o)| o)
    }

    fn source_entry(&self, config_path: &str) -> Option<(&str, &Origin)> {
        self.sources
            .iter()
            .filter(|(prefix, _)| {
                config_path.starts_with(prefix.as_str())
                    && matches!(
                        config_path[prefix.len()..].chars().next(),
                        None | Some('.' | '[')
                    )
            })
            .max_by_key(|(prefix, _)| prefix.len())
            .map(|(p, o)| (p.as_str(), o))
    }

    /// Validates the config as a whole. Each error keeps its config path;
    /// when the config came from Azure documents or several files, the
    /// message says which file and JSON path the item came from.
    pub fn validate(&self, catalog: &Catalog) -> Result<Model, ValidationErrors> {
        crate::validate(&self.config, catalog).map_err(|e| {
            ValidationErrors(
                e.0.into_iter()
                    .map(|v| {
                        let from = self
                            .source_entry(&v.path)
                            .filter(|(prefix, o)| self.files.len() > 1 || o.path != *prefix);
                        match from {
                            Some((_, o)) => ValidationError {
                                message: format!("{} (from {o})", v.message),
                                path: v.path,
                            },
                            None => v,
                        }
                    })
                    .collect(),
            )
        })
    }

    /// The config as the project's TOML, headed by comments naming the
    /// inputs and the notes. It loads back to the same config.
    pub fn to_toml(&self) -> Result<String, toml::ser::Error> {
        let mut out = format!("# Imported from {}.\n", self.files.join(", "));
        for n in &self.notes {
            for (i, line) in n.to_string().lines().enumerate() {
                out += if i == 0 { "# note: " } else { "#   " };
                out += line;
                out.push('\n');
            }
        }
        out.push('\n');
        out += &self.config.to_toml_string()?;
        Ok(out)
    }
}

/// A file's content, by kind.
enum Document {
    Project(Config),
    Resources(Value),
    Template(Value),
    Parameters(Value),
}

/// Top-level keys of Azure documents that the project's own JSON never has.
const AZURE_KEYS: &[&str] = &[
    "name",
    "id",
    "type",
    "properties",
    "value",
    "sku",
    "$schema",
];

fn detect(name: &str, text: &str, d: &mut Diag) -> Option<Document> {
    let ext = Path::new(name)
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase());
    let toml = |d: &mut Diag| match Config::from_toml_str(text) {
        Ok(c) => Some(Document::Project(c)),
        Err(e) => {
            d.err("", e.to_string());
            None
        }
    };
    if ext.as_deref() == Some("toml") {
        return toml(d);
    }
    let json: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) if ext.as_deref() == Some("json") || text.trim_start().starts_with('{') => {
            d.err("", crate::config::ParseError::json(&e).to_string());
            return None;
        }
        // Not JSON, and not named .json: the project's TOML.
        Err(_) => return toml(d),
    };
    if template::is_template(&json) {
        return Some(Document::Template(json));
    }
    if template::is_parameters(&json) {
        return Some(Document::Parameters(json));
    }
    match &json {
        Value::Object(m) if !m.keys().any(|k| AZURE_KEYS.contains(&k.as_str())) => {
            match serde_json::from_value(json) {
                Ok(c) => Some(Document::Project(c)),
                Err(e) => {
                    d.err(
                        "",
                        format!(
                            "JSON (the project's own format, as it has none of Azure's resource fields): {}",
                            crate::secret::without_values(&e.to_string())
                        ),
                    );
                    None
                }
            }
        }
        _ => Some(Document::Resources(json)),
    }
}

/// Imports in-memory inputs, `(name, text)`: the name is used in messages
/// and its extension (`.toml`, `.json`) settles the format.
///
/// A parameters file applies to the template given before it.
pub fn import_texts(inputs: &[(&str, &str)]) -> Result<Imported, ImportErrors> {
    let mut diags: Vec<Diag> = inputs.iter().map(|(n, _)| Diag::new(n)).collect();
    let docs: Vec<Option<Document>> = inputs
        .iter()
        .zip(&mut diags)
        .map(|((n, t), d)| detect(n, t, d))
        .collect();

    // Each parameters file goes with the template before it.
    let mut params_of: Vec<Vec<usize>> = vec![Vec::new(); inputs.len()];
    let mut params = Vec::new();
    let mut last_template = None;
    for (i, doc) in docs.iter().enumerate() {
        match doc {
            Some(Document::Template(_)) => last_template = Some(i),
            Some(Document::Parameters(v)) => match last_template {
                Some(t) => {
                    if let Some(p) = template::read_parameters(v.clone(), &mut diags[i]) {
                        params_of[t].push(params.len());
                        params.push((i, p));
                    }
                }
                None => {
                    diags[i].err(
                        "",
                        "a parameters file applies to the template given before it, and no template comes before this one",
                    );
                }
            },
            _ => {}
        }
    }

    let mut collected = Collected::default();
    for (i, doc) in docs.into_iter().enumerate() {
        let mut found = Collected::default();
        let azure = match doc {
            None | Some(Document::Parameters(_)) => continue,
            Some(Document::Project(c)) => {
                project::read(c, &diags[i], &mut found);
                false
            }
            Some(Document::Resources(v)) => {
                rest::read(v, &mut diags[i], &mut found);
                true
            }
            Some(Document::Template(v)) => {
                let mine: Vec<&(usize, template::Parameters)> =
                    params_of[i].iter().map(|&k| &params[k]).collect();
                let values: Vec<&template::Parameters> = mine.iter().map(|(_, p)| p).collect();
                // The parameters files' own errors (a value the template does
                // not declare) are theirs.
                let mut pdiags: Vec<Diag> =
                    mine.iter().map(|(j, _)| Diag::new(inputs[*j].0)).collect();
                template::read_template(v, &values, &mut diags[i], &mut pdiags, &mut found);
                for ((j, _), pd) in mine.iter().zip(pdiags) {
                    diags[*j].errors.extend(pd.errors);
                }
                true
            }
        };
        if azure && found.len() == 0 && diags[i].errors.is_empty() {
            diags[i].err(
                "",
                "no ExpressRoute circuit, peering, Global Reach connection, VNet, gateway, connection, route filter or ExpressRoute port in it",
            );
        }
        collected.extend(found);
    }

    let mut errors: Vec<Issue> = diags.iter().flat_map(|d| d.errors.clone()).collect();
    if !errors.is_empty() {
        return Err(ImportErrors(errors));
    }
    let (config, sources) = estate::assemble(collected, &mut errors);
    if !errors.is_empty() {
        return Err(ImportErrors(errors));
    }
    Ok(Imported {
        config,
        notes: diags.into_iter().flat_map(|d| d.notes).collect(),
        files: inputs.iter().map(|(n, _)| n.to_string()).collect(),
        sources,
    })
}

/// Reads and imports files (see [`import_texts`]).
pub fn import_files<P: AsRef<Path>>(paths: &[P]) -> Result<Imported, LoadError> {
    let mut texts = Vec::new();
    for p in paths {
        let p = p.as_ref();
        let text = std::fs::read_to_string(p).map_err(|source| LoadError::Io {
            path: p.display().to_string(),
            source,
        })?;
        texts.push((p.display().to_string(), text));
    }
    let inputs: Vec<(&str, &str)> = texts
        .iter()
        .map(|(n, t)| (n.as_str(), t.as_str()))
        .collect();
    import_texts(&inputs).map_err(LoadError::Import)
}
