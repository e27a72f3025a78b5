//! ARM deployment templates (`$schema` `.../deploymentTemplate.json#`) and
//! their parameters files (`.../deploymentParameters.json#`).
//!
//! The resources read are `Microsoft.Network/expressRouteCircuits` with
//! their `peerings` (nested in the circuit's `resources` or top-level as
//! `circuit/peering`) and Global Reach `connections`, `virtualNetworks`,
//! `virtualNetworkGateways`, `connections`, `routeFilters` (and
//! `routeFilterRules`) and `expressRoutePorts`. Other resource types
//! (network security groups, public IPs, ...) are listed in a note and not
//! read, so their expressions are never evaluated.
//!
//! Values are evaluated as ARM would for what can be known without a
//! deployment: a parameter's value from the parameters file or its
//! `defaultValue`, variables, `concat()`, `format()` and `resourceId()`
//! (see [`expr`]). Any other function is reported with the JSON path of the
//! field that needs it; nothing is guessed. `resourceId()` with every
//! argument known is a name reference: it yields the id without
//! subscription and resource group, from which the import reads the names.

pub(crate) mod expr;

use std::cell::RefCell;
use std::collections::BTreeSet;

use serde_json::{Map, Value};

use super::doc::{Diag, Node, Reported, join};
use super::kinds::{self, Collected, Kind};
use expr::{Evaluated, ExprError, Scope};

/// A template's parameters and variables: what its expressions read.
#[derive(Debug)]
pub(crate) struct Template {
    parameters: Map<String, Value>,
    /// `parameters` of the parameters files, by name.
    values: Map<String, Value>,
    /// Which parameters file gave each value, for messages.
    value_files: Map<String, Value>,
    variables: Map<String, Value>,
    /// Parameters and variables being evaluated: a reference back to one of
    /// them is a cycle.
    stack: RefCell<Vec<String>>,
}

fn lookup<'m>(m: &'m Map<String, Value>, name: &str) -> Option<(&'m String, &'m Value)> {
    m.iter().find(|(k, _)| k.eq_ignore_ascii_case(name))
}

impl Template {
    fn enter(&self, what: &str) -> Result<(), ExprError> {
        let mut stack = self.stack.borrow_mut();
        if stack.iter().any(|s| s.eq_ignore_ascii_case(what)) {
            return Err(ExprError::other(format!(
                "{what} refers to itself ({} -> {what})",
                stack.join(" -> ")
            )));
        }
        stack.push(what.to_string());
        Ok(())
    }

    fn leave(&self) {
        self.stack.borrow_mut().pop();
    }

    /// Evaluates `value`, found at template path `at`, entered as `what`.
    fn member(&self, what: &str, at: &str, value: &Value) -> Result<Evaluated, ExprError> {
        self.enter(what)?;
        let r = match value {
            Value::String(s) => self.text(s).map_err(|e| {
                // A key is named, never shown.
                if at.ends_with("sharedKey") {
                    e.through(at.to_string())
                } else {
                    e.through(format!("{at} = {s:?}"))
                }
            }),
            other => Ok(Evaluated {
                value: other.clone(),
                template_text: true,
            }),
        };
        self.leave();
        r
    }
}

impl Scope for Template {
    fn parameter(&self, name: &str) -> Result<Evaluated, ExprError> {
        let Some((declared, decl)) = lookup(&self.parameters, name) else {
            let known: Vec<&str> = self.parameters.keys().map(String::as_str).collect();
            return Err(ExprError::other(format!(
                "the template declares no parameter {name:?} (it has: {})",
                known.join(", ")
            )));
        };
        if let Some((_, given)) = lookup(&self.values, name) {
            let file = lookup(&self.value_files, name)
                .and_then(|(_, f)| f.as_str())
                .unwrap_or("the parameters file");
            return match given.get("value") {
                Some(v) => Ok(Evaluated {
                    value: v.clone(),
                    template_text: false,
                }),
                None => Err(ExprError::other(format!(
                    "parameter {declared:?} in {file} has no \"value\" (a Key Vault reference is resolved at deployment only)"
                ))),
            };
        }
        match decl.get("defaultValue") {
            Some(v) => self.member(
                &format!("parameters('{declared}')"),
                &format!("parameters.{declared}.defaultValue"),
                v,
            ),
            None => Err(ExprError::other(format!(
                "parameter {declared:?} has no defaultValue; give it in a parameters file"
            ))),
        }
    }

    fn variable(&self, name: &str) -> Result<Evaluated, ExprError> {
        let Some((declared, v)) = lookup(&self.variables, name) else {
            return Err(ExprError::other(format!(
                "the template declares no variable {name:?}"
            )));
        };
        self.member(
            &format!("variables('{declared}')"),
            &format!("variables.{declared}"),
            v,
        )
    }

    fn text(&self, s: &str) -> Result<Evaluated, ExprError> {
        match expr::expression_text(s) {
            Some(t) => {
                let e =
                    expr::parse(t).map_err(|m| ExprError::other(format!("cannot read it: {m}")))?;
                expr::eval(&e, self)
            }
            None => Ok(Evaluated {
                value: Value::String(expr::literal_text(s)),
                template_text: false,
            }),
        }
    }
}

/// Is this JSON document a deployment template?
pub(crate) fn is_template(doc: &Value) -> bool {
    schema(doc).is_some_and(|s| s.to_ascii_lowercase().contains("deploymenttemplate"))
}

/// Is this JSON document a deployment parameters file?
pub(crate) fn is_parameters(doc: &Value) -> bool {
    schema(doc).is_some_and(|s| s.to_ascii_lowercase().contains("deploymentparameters"))
}

fn schema(doc: &Value) -> Option<&str> {
    doc.get("$schema").and_then(Value::as_str)
}

/// A parameters file's values, checked against the template's declarations.
pub(crate) struct Parameters {
    pub file: String,
    pub values: Map<String, Value>,
}

/// Reads a parameters file (its `parameters` object).
pub(crate) fn read_parameters(doc: Value, d: &mut Diag) -> Option<Parameters> {
    let Value::Object(mut top) = doc else {
        d.err("", "a parameters file is a JSON object");
        return None;
    };
    let values = match top.remove("parameters") {
        Some(Value::Object(m)) => m,
        None => Map::new(),
        Some(_) => {
            d.err("parameters", "expected an object");
            return None;
        }
    };
    for k in top.keys() {
        if !matches!(k.as_str(), "$schema" | "contentVersion" | "metadata") {
            d.err(k, "unknown field of a parameters file");
        }
    }
    for (k, v) in &values {
        let ok = v
            .as_object()
            .is_some_and(|o| o.contains_key("value") || o.contains_key("reference"));
        if !ok {
            d.err(
                &join("parameters", k),
                "expected {\"value\": ...} (or a Key Vault \"reference\")",
            );
        }
    }
    Some(Parameters {
        file: d.file.clone(),
        values,
    })
}

/// Template keys that are not resources' content.
const TEMPLATE_KEYS: &[&str] = &[
    "$schema",
    "contentVersion",
    "apiProfile",
    "metadata",
    "languageVersion",
    "definitions",
    "functions",
    "outputs",
];

/// Keys of a template resource that are deployment bookkeeping, or ARM
/// resource envelope fields that nothing emulated depends on.
const RESOURCE_BOOKKEEPING: &[&str] = &[
    "apiVersion",
    "dependsOn",
    "comments",
    "scope",
    "metadata",
    "kind",
    "plan",
    "zones",
    "identity",
    "extendedLocation",
    "existing",
];

/// Reads a template with its parameters files (in the order given: later
/// values win) into `out`; `params_diags` are the parameters files' own.
pub(crate) fn read_template(
    doc: Value,
    params: &[&Parameters],
    d: &mut Diag,
    params_diags: &mut [Diag],
    out: &mut Collected,
) {
    let Value::Object(mut top) = doc else {
        d.err("", "a template is a JSON object");
        return;
    };
    let section = |top: &mut Map<String, Value>, d: &mut Diag, key: &str| match top.remove(key) {
        Some(Value::Object(m)) => m,
        None => Map::new(),
        Some(_) => {
            d.err(key, "expected an object");
            Map::new()
        }
    };
    let parameters = section(&mut top, d, "parameters");
    let variables = section(&mut top, d, "variables");
    let resources = top.remove("resources");
    for k in top.keys() {
        if !TEMPLATE_KEYS.contains(&k.as_str()) {
            d.err(k, "unknown field of a deployment template");
        }
    }
    let mut values = Map::new();
    let mut value_files = Map::new();
    for (p, pd) in params.iter().zip(params_diags.iter_mut()) {
        for (k, v) in &p.values {
            match lookup(&parameters, k) {
                Some((declared, _)) => {
                    values.insert(declared.clone(), v.clone());
                    value_files.insert(declared.clone(), Value::String(p.file.clone()));
                }
                None => {
                    pd.err(
                        &join("parameters", k),
                        format!("the template {} declares no such parameter", d.file),
                    );
                }
            }
        }
    }
    let t = Template {
        parameters,
        values,
        value_files,
        variables,
        stack: RefCell::new(Vec::new()),
    };
    let Some(resources) = resources else {
        d.err("resources", "missing");
        return;
    };
    let mut ignored = BTreeSet::new();
    let nodes = resource_nodes(Node::new(resources, "resources".into(), Some(&t)), d);
    walk(nodes, None, d, out, &mut ignored);
    if !ignored.is_empty() {
        d.note(
            "resources",
            format!(
                "not imported, not part of what is emulated: {}",
                ignored.into_iter().collect::<Vec<_>>().join(", ")
            ),
        );
    }
}

/// `resources` is an array, or (languageVersion 2.0) an object of
/// symbolic names.
fn resource_nodes<'t>(n: Node<'t>, d: &mut Diag) -> Vec<Node<'t>> {
    match n.value {
        Value::Array(items) => items
            .into_iter()
            .enumerate()
            .map(|(i, v)| Node::new(v, format!("{}[{i}]", n.path), n.template))
            .collect(),
        Value::Object(m) => m
            .into_iter()
            .map(|(k, v)| Node::new(v, join(&n.path, &k), n.template))
            .collect(),
        _ => {
            d.err(&n.path, "expected an array of resources");
            Vec::new()
        }
    }
}

/// A parent resource: its full type and names.
struct Parent<'p> {
    full_type: &'p str,
    names: &'p [String],
}

fn walk(
    nodes: Vec<Node<'_>>,
    parent: Option<Parent<'_>>,
    d: &mut Diag,
    out: &mut Collected,
    ignored: &mut BTreeSet<String>,
) {
    for node in nodes {
        let Ok(mut o) = node.obj(d) else { continue };
        let Some(ty) = o.req_str(d, "type") else {
            continue;
        };
        let full_type = match &parent {
            Some(p) if !ty.contains('.') => format!("{}/{ty}", p.full_type),
            _ => ty.clone(),
        };
        if let Some(c) = o.get(d, "condition") {
            match c.bool(d) {
                Ok(true) => {}
                Ok(false) => continue,
                Err(Reported) => continue,
            }
        }
        let kind = Kind::of_type(&full_type);
        let copy_path = o.path_of("copy");
        let copy = o.take("copy");
        let children = o.take("resources");
        for k in RESOURCE_BOOKKEEPING {
            o.take(k);
        }
        let Some(kind) = kind else {
            if full_type.eq_ignore_ascii_case("Microsoft.Resources/deployments") {
                d.note(
                    &o.path,
                    "a nested deployment: not imported (give its template as a file of its own)",
                );
            } else {
                ignored.insert(full_type);
            }
            continue;
        };
        if copy.is_some() {
            d.err(
                &copy_path,
                "copy loops are not expanded by the import; write the resources out, or the circuits in the project's TOML",
            );
            continue;
        }
        let name_path = o.path_of("name");
        let Some(name) = o.req_str(d, "name") else {
            continue;
        };
        let own: Vec<String> = name.split('/').map(str::to_string).collect();
        let names = match &parent {
            Some(p) if own.len() < kind.depth() => {
                let mut n = p.names.to_vec();
                n.extend(own);
                n
            }
            _ => own,
        };
        if names.len() != kind.depth() || names.iter().any(String::is_empty) {
            d.err(
                &name_path,
                format!(
                    "{name:?} does not name a {full_type} (expected {} name(s) separated by '/')",
                    kind.depth()
                ),
            );
            continue;
        }
        let read = kinds::read(kind, names.clone(), o, d, out);
        // The children of a resource that could not be read would only add
        // "parent not found" errors.
        let (Ok(()), Some(children)) = (read, children) else {
            continue;
        };
        let Ok(children) = children.resolve(d) else {
            continue;
        };
        let nodes = resource_nodes(children, d);
        let parent = Parent {
            full_type: &full_type,
            names: &names,
        };
        walk(nodes, Some(parent), d, out, ignored);
    }
}
