//! Reading Azure JSON field by field, each value with its JSON path, so that
//! every problem is reported where it is. The same reader serves REST bodies
//! and az output (strings as they are) and deployment templates (strings
//! are expressions to evaluate).
//!
//! REST bodies nest a resource's fields under `properties`; az output
//! flattens them beside `name`. [`Obj`] reads both: a field is looked up in
//! `properties` first, then beside it, and its path says where it was found.

use std::fmt;

use serde_json::{Map, Value};

use super::template::Template;
use super::template::expr::{ExprError, Scope};

/// Where an imported item came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub file: String,
    /// JSON path inside the file (`value[0].properties.peerings[1]`), or a
    /// TOML path for the project's own files.
    pub path: String,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.file)
        } else {
            write!(f, "{} at {}", self.file, self.path)
        }
    }
}

/// One problem (or note) about an input file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    pub file: String,
    pub path: String,
    pub message: String,
}

impl fmt::Display for Issue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(f, "{}: {}", self.file, self.message)
        } else {
            write!(f, "{}: {}: {}", self.file, self.path, self.message)
        }
    }
}

/// Errors and notes about one file.
#[derive(Debug)]
pub(crate) struct Diag {
    pub file: String,
    pub errors: Vec<Issue>,
    pub notes: Vec<Issue>,
}

/// The problem was reported to the [`Diag`]; the caller skips the item.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Reported;

impl Diag {
    pub(super) fn new(file: &str) -> Self {
        Self {
            file: file.to_string(),
            errors: Vec::new(),
            notes: Vec::new(),
        }
    }

    pub(super) fn err(&mut self, path: &str, message: impl Into<String>) -> Reported {
        self.errors.push(Issue {
            file: self.file.clone(),
            path: path.to_string(),
            message: message.into(),
        });
        Reported
    }

    pub(super) fn note(&mut self, path: &str, message: impl Into<String>) {
        self.notes.push(Issue {
            file: self.file.clone(),
            path: path.to_string(),
            message: message.into(),
        });
    }

    pub(super) fn origin(&self, path: &str) -> Origin {
        Origin {
            file: self.file.clone(),
            path: path.to_string(),
        }
    }
}

pub(crate) fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A value and its path; with a template, its strings are template text.
#[derive(Debug, Clone)]
pub(crate) struct Node<'t> {
    pub value: Value,
    pub path: String,
    pub template: Option<&'t Template>,
}

impl<'t> Node<'t> {
    pub(super) fn new(value: Value, path: String, template: Option<&'t Template>) -> Self {
        Self {
            value,
            path,
            template,
        }
    }

    /// Evaluates the value if it is a template expression.
    pub(super) fn resolve(self, d: &mut Diag) -> Result<Node<'t>, Reported> {
        let (Some(t), Value::String(s)) = (self.template, &self.value) else {
            return Ok(self);
        };
        match t.text(s) {
            Ok(ev) => Ok(Node {
                value: ev.value,
                path: self.path,
                template: ev.template_text.then_some(t),
            }),
            Err(e) => Err(d.err(&self.path, describe(s, &e))),
        }
    }

    pub(super) fn str(self, d: &mut Diag) -> Result<String, Reported> {
        let n = self.resolve(d)?;
        match n.value {
            Value::String(s) => Ok(s),
            other => Err(d.err(
                &n.path,
                format!("expected a string, found {}", kind(&other)),
            )),
        }
    }

    pub(super) fn int<T: TryFrom<u64> + fmt::Display>(
        self,
        d: &mut Diag,
        range: &str,
    ) -> Result<T, Reported> {
        let n = self.resolve(d)?;
        let v = match &n.value {
            Value::Number(x) => x.as_u64().or_else(|| {
                x.as_f64()
                    .filter(|f| f.fract() == 0.0 && *f >= 0.0 && *f <= u64::MAX as f64)
                    .map(|f| f as u64)
            }),
            _ => None,
        };
        v.and_then(|v| T::try_from(v).ok())
            .ok_or_else(|| d.err(&n.path, format!("expected {range}, found {}", n.value)))
    }

    pub(super) fn bool(self, d: &mut Diag) -> Result<bool, Reported> {
        let n = self.resolve(d)?;
        match n.value {
            Value::Bool(b) => Ok(b),
            other => Err(d.err(&n.path, format!("expected true or false, found {other}"))),
        }
    }

    pub(super) fn array(self, d: &mut Diag) -> Result<Vec<Node<'t>>, Reported> {
        let n = self.resolve(d)?;
        match n.value {
            Value::Array(items) => Ok(items
                .into_iter()
                .enumerate()
                .map(|(i, v)| Node::new(v, format!("{}[{i}]", n.path), n.template))
                .collect()),
            other => Err(d.err(
                &n.path,
                format!("expected an array, found {}", kind(&other)),
            )),
        }
    }

    pub(super) fn obj(self, d: &mut Diag) -> Result<Obj<'t>, Reported> {
        let n = self.resolve(d)?;
        let Value::Object(mut top) = n.value else {
            return Err(d.err(
                &n.path,
                format!("expected an object, found {}", kind(&n.value)),
            ));
        };
        let props = match top.remove("properties") {
            None | Some(Value::Null) => None,
            Some(p) => {
                let pn = Node::new(p, join(&n.path, "properties"), n.template).resolve(d)?;
                match pn.value {
                    Value::Object(m) => Some((pn.path, pn.template, m)),
                    other => {
                        return Err(d.err(
                            &pn.path,
                            format!("expected an object, found {}", kind(&other)),
                        ));
                    }
                }
            }
        };
        Ok(Obj {
            path: n.path,
            template: n.template,
            top,
            props,
            failed: false,
        })
    }
}

/// What the template said, for error messages.
fn describe(text: &str, e: &ExprError) -> String {
    let via = if e.via.is_empty() {
        String::new()
    } else {
        format!(" (through {})", e.via.join(", then "))
    };
    match e.unsupported_function() {
        Some(f) => format!(
            "the template expression {text:?}{via} calls {f}(), which the import does not evaluate: \
             only parameters(), variables(), concat(), format() and resourceId() are resolved, \
             anything else depends on the deployment; give the value in a parameters file \
             or write it in the project's TOML"
        ),
        None => {
            let crate::import::template::expr::ErrorKind::Other(m) = &e.kind else {
                unreachable!("unsupported_function() covers the other kind")
            };
            format!("the template expression {text:?}{via} has no value here: {m}")
        }
    }
}

/// An object being read: each field taken once; what is left at the end
/// must be a field known to be ignorable.
#[derive(Debug)]
pub(crate) struct Obj<'t> {
    pub path: String,
    template: Option<&'t Template>,
    top: Map<String, Value>,
    /// `properties`: its path, template and fields.
    props: Option<(String, Option<&'t Template>, Map<String, Value>)>,
    failed: bool,
}

/// Fields of every ARM resource and sub-resource that say nothing about
/// what to emulate: identity, concurrency and az's additions.
const COMMON_IGNORED: &[&str] = &["id", "etag", "type", "resourceGroup", "systemData", "tags"];

impl<'t> Obj<'t> {
    pub(super) fn has(&self, key: &str) -> bool {
        self.props
            .as_ref()
            .is_some_and(|(_, _, m)| m.contains_key(key))
            || self.top.contains_key(key)
    }

    /// The field is there and not null (as written, before evaluation).
    pub(super) fn present(&self, key: &str) -> bool {
        let v = self
            .props
            .as_ref()
            .and_then(|(_, _, m)| m.get(key))
            .or_else(|| self.top.get(key));
        v.is_some_and(|v| !v.is_null())
    }

    /// The field's value as written (unevaluated), removed from the object.
    pub(super) fn take(&mut self, key: &str) -> Option<Node<'t>> {
        if let Some((path, t, m)) = &mut self.props
            && let Some(v) = m.remove(key)
        {
            return Some(Node::new(v, join(path, key), *t));
        }
        self.top
            .remove(key)
            .map(|v| Node::new(v, join(&self.path, key), self.template))
    }

    /// The path a field has (or would have) in this object.
    pub(super) fn path_of(&self, key: &str) -> String {
        match &self.props {
            Some((path, _, _)) if !self.top.contains_key(key) => join(path, key),
            _ => join(&self.path, key),
        }
    }

    pub(super) fn fail(&mut self) {
        self.failed = true;
    }

    /// Records an error about this object.
    pub(super) fn err(&mut self, d: &mut Diag, path: &str, message: impl Into<String>) {
        d.err(path, message);
        self.failed = true;
    }

    fn track<T>(&mut self, r: Result<T, Reported>) -> Option<T> {
        match r {
            Ok(v) => Some(v),
            Err(Reported) => {
                self.failed = true;
                None
            }
        }
    }

    /// The field, evaluated; `None` when absent or null (az prints nulls
    /// for what is not set).
    pub(super) fn get(&mut self, d: &mut Diag, key: &str) -> Option<Node<'t>> {
        let n = self.take(key)?;
        let n = self.track(n.resolve(d))?;
        (!n.value.is_null()).then_some(n)
    }

    pub(super) fn req(&mut self, d: &mut Diag, key: &str) -> Option<Node<'t>> {
        let Some(n) = self.take(key) else {
            let path = self.path_of(key);
            self.err(d, &path, "missing");
            return None;
        };
        let n = self.track(n.resolve(d))?;
        if n.value.is_null() {
            self.err(d, &n.path, "missing (null)");
            return None;
        }
        Some(n)
    }

    pub(super) fn opt_str(&mut self, d: &mut Diag, key: &str) -> Option<String> {
        let n = self.get(d, key)?;
        self.track(n.str(d))
    }

    pub(super) fn req_str(&mut self, d: &mut Diag, key: &str) -> Option<String> {
        let n = self.req(d, key)?;
        self.track(n.str(d))
    }

    pub(super) fn opt_int<T: TryFrom<u64> + fmt::Display>(
        &mut self,
        d: &mut Diag,
        key: &str,
        range: &str,
    ) -> Option<T> {
        let n = self.get(d, key)?;
        self.track(n.int(d, range))
    }

    pub(super) fn req_int<T: TryFrom<u64> + fmt::Display>(
        &mut self,
        d: &mut Diag,
        key: &str,
        range: &str,
    ) -> Option<T> {
        let n = self.req(d, key)?;
        self.track(n.int(d, range))
    }

    pub(super) fn opt_array(&mut self, d: &mut Diag, key: &str) -> Vec<Node<'t>> {
        match self.get(d, key) {
            None => Vec::new(),
            Some(n) => self.track(n.array(d)).unwrap_or_default(),
        }
    }

    pub(super) fn opt_obj(&mut self, d: &mut Diag, key: &str) -> Option<Obj<'t>> {
        let n = self.get(d, key)?;
        self.track(n.obj(d))
    }

    pub(super) fn req_obj(&mut self, d: &mut Diag, key: &str) -> Option<Obj<'t>> {
        let n = self.req(d, key)?;
        self.track(n.obj(d))
    }

    /// A sub-resource reference `{"id": ...}` to a resource of `types`
    /// (`["expressRouteCircuits", "peerings"]`): the names in its id.
    pub(super) fn reference(
        &mut self,
        d: &mut Diag,
        key: &str,
        types: &[&str],
    ) -> Option<Vec<String>> {
        let mut r = self.opt_obj(d, key)?;
        let id = r.req_str(d, "id");
        // A reference may carry the referenced resource's own fields (az
        // prints some): they describe that resource, not this one.
        let path = r.path.clone();
        if r.failed {
            self.failed = true;
        }
        let id = id?;
        let names = id_names(&id, types);
        if names.is_none() {
            self.err(d, &join(&path, "id"), expected_id(&id, types));
        }
        names
    }

    /// Ends the reading: fields still unread are errors unless `ignored`
    /// (or common to every resource). `Err` when anything about this
    /// object was reported.
    pub(super) fn finish(mut self, d: &mut Diag, ignored: &[&str]) -> Result<(), Reported> {
        let unknown =
            |k: &String| !ignored.contains(&k.as_str()) && !COMMON_IGNORED.contains(&k.as_str());
        let mut left: Vec<String> = Vec::new();
        if let Some((path, _, m)) = &self.props {
            left.extend(m.keys().filter(|k| unknown(k)).map(|k| join(path, k)));
        }
        left.extend(
            self.top
                .keys()
                .filter(|k| unknown(k))
                .map(|k| join(&self.path, k)),
        );
        for p in left {
            self.err(
                d,
                &p,
                "unknown field: it is neither imported nor known to be safe to ignore \
                 (remove it, or write the circuit in the project's TOML)",
            );
        }
        if self.failed { Err(Reported) } else { Ok(()) }
    }

    /// Ends the reading of a resource of which only some fields matter to
    /// the emulator (VNets, gateways, connections: their subnets, DNS or
    /// gateway SKU do not shape what the MSEE does): the rest is ignored.
    pub(super) fn finish_lenient(self) -> Result<(), Reported> {
        if self.failed { Err(Reported) } else { Ok(()) }
    }
}

/// The resource names in an ARM id of a `Microsoft.Network` resource of the
/// given types: `/subscriptions/s/resourceGroups/rg/providers/
/// Microsoft.Network/expressRouteCircuits/c/peerings/p` with
/// `["expressRouteCircuits", "peerings"]` gives `["c", "p"]`. Ids made by
/// the template function `resourceId()` lack the subscription and resource
/// group; they read the same.
pub(crate) fn id_names(id: &str, types: &[&str]) -> Option<Vec<String>> {
    let parts: Vec<&str> = id.split('/').filter(|s| !s.is_empty()).collect();
    let p = parts
        .iter()
        .rposition(|s| s.eq_ignore_ascii_case("providers"))?;
    let rest = &parts[p + 1..];
    let (ns, pairs) = rest.split_first()?;
    if !ns.eq_ignore_ascii_case("Microsoft.Network") || pairs.len() != types.len() * 2 {
        return None;
    }
    let mut names = Vec::new();
    for (pair, t) in pairs.chunks(2).zip(types) {
        if !pair[0].eq_ignore_ascii_case(t) {
            return None;
        }
        names.push(pair[1].to_string());
    }
    Some(names)
}

pub(crate) fn expected_id(id: &str, types: &[&str]) -> String {
    let shape: String = types.iter().map(|t| format!("/{t}/NAME")).collect();
    format!("{id:?} is not the id of a resource .../providers/Microsoft.Network{shape}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_give_names() {
        let id = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/expressRouteCircuits/c/peerings/AzurePrivatePeering";
        assert_eq!(
            id_names(id, &["expressRouteCircuits", "peerings"]),
            Some(vec!["c".to_string(), "AzurePrivatePeering".to_string()])
        );
        assert_eq!(id_names(id, &["expressRouteCircuits"]), None);
        assert_eq!(
            id_names(
                "/providers/microsoft.network/routeFilters/rf",
                &["routeFilters"]
            ),
            Some(vec!["rf".to_string()])
        );
        assert_eq!(id_names("rf", &["routeFilters"]), None);
    }

    #[test]
    fn fields_are_found_in_properties_or_beside_them_with_their_paths() {
        let mut d = Diag::new("f.json");
        let v = serde_json::json!({"name": "x", "properties": {"peerASN": 65001, "odd": 1}, "vlanId": 7, "etag": "e"});
        let mut o = Node::new(v, "[0]".into(), None).obj(&mut d).unwrap();
        assert_eq!(o.req_int::<u32>(&mut d, "peerASN", "an ASN"), Some(65001));
        assert_eq!(o.opt_int::<u16>(&mut d, "vlanId", "a VLAN"), Some(7));
        assert_eq!(o.req_str(&mut d, "missing"), None);
        assert!(o.finish(&mut d, &["name"]).is_err());
        let got: Vec<String> = d.errors.iter().map(ToString::to_string).collect();
        assert_eq!(
            got,
            [
                "f.json: [0].properties.missing: missing",
                "f.json: [0].properties.odd: unknown field: it is neither imported nor known to be safe to ignore (remove it, or write the circuit in the project's TOML)"
            ]
        );
    }
}
