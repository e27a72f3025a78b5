//! ARM template expressions (`"[parameters('x')]"`): a parser and an
//! evaluator for the few functions that name things without needing a
//! deployment: `parameters`, `variables`, `concat`, `format` and
//! `resourceId`. Anything else (`resourceGroup()`, `reference()`,
//! `uniqueString()`, ...) depends on where and when the template is
//! deployed, so it is reported by name rather than guessed.
//!
//! Written here rather than taken from a crate: no Rust crate evaluates ARM
//! template expressions, and the subset needed is small.

use serde_json::Value;

/// A parsed expression.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Expr {
    Str(String),
    Int(i64),
    Call {
        name: String,
        args: Vec<Expr>,
    },
    /// `base.name`
    Property(Box<Expr>, String),
    /// `base[index]`
    Index(Box<Expr>, Box<Expr>),
}

/// `Some(expression text)` when `s` is an expression (`[...]`, not `[[...`).
pub(crate) fn expression_text(s: &str) -> Option<&str> {
    let t = s.trim();
    if t.starts_with("[[") || !t.starts_with('[') || !t.ends_with(']') {
        return None;
    }
    Some(&t[1..t.len() - 1])
}

/// A string that is not an expression, as the template means it: a leading
/// `[[` stands for a literal `[`.
pub(crate) fn literal_text(s: &str) -> String {
    match s.strip_prefix("[[") {
        Some(rest) => format!("[{rest}"),
        None => s.to_string(),
    }
}

pub(crate) fn parse(text: &str) -> Result<Expr, String> {
    let mut p = Parser {
        chars: text.chars().collect(),
        pos: 0,
    };
    let e = p.expr()?;
    p.skip_ws();
    if p.pos != p.chars.len() {
        return Err(format!(
            "unexpected {:?} at position {} of the expression",
            p.chars[p.pos], p.pos
        ));
    }
    Ok(e)
}

struct Parser {
    chars: Vec<char>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn skip_ws(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.pos += 1;
        }
    }

    fn eat(&mut self, c: char) -> bool {
        self.skip_ws();
        if self.peek() == Some(c) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, c: char) -> Result<(), String> {
        if self.eat(c) {
            Ok(())
        } else {
            Err(match self.peek() {
                Some(found) => format!("expected {c:?} at position {}, found {found:?}", self.pos),
                None => format!("expected {c:?} at the end of the expression"),
            })
        }
    }

    fn ident(&mut self) -> String {
        let start = self.pos;
        while self
            .peek()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            self.pos += 1;
        }
        self.chars[start..self.pos].iter().collect()
    }

    fn expr(&mut self) -> Result<Expr, String> {
        let mut e = self.primary()?;
        loop {
            if self.eat('.') {
                self.skip_ws();
                let name = self.ident();
                if name.is_empty() {
                    return Err(format!("expected a property name at position {}", self.pos));
                }
                e = Expr::Property(Box::new(e), name);
            } else if self.eat('[') {
                let index = self.expr()?;
                self.expect(']')?;
                e = Expr::Index(Box::new(e), Box::new(index));
            } else {
                return Ok(e);
            }
        }
    }

    fn args(&mut self) -> Result<Vec<Expr>, String> {
        let mut args = Vec::new();
        if self.eat(')') {
            return Ok(args);
        }
        loop {
            args.push(self.expr()?);
            if self.eat(')') {
                return Ok(args);
            }
            self.expect(',')?;
        }
    }

    fn primary(&mut self) -> Result<Expr, String> {
        self.skip_ws();
        match self.peek() {
            Some('\'') => {
                self.pos += 1;
                let mut s = String::new();
                loop {
                    match self.peek() {
                        None => return Err("unterminated string literal".into()),
                        Some('\'') if self.chars.get(self.pos + 1) == Some(&'\'') => {
                            s.push('\'');
                            self.pos += 2;
                        }
                        Some('\'') => {
                            self.pos += 1;
                            return Ok(Expr::Str(s));
                        }
                        Some(c) => {
                            s.push(c);
                            self.pos += 1;
                        }
                    }
                }
            }
            Some(c) if c.is_ascii_digit() || c == '-' => {
                let start = self.pos;
                self.pos += 1;
                while self.peek().is_some_and(|c| c.is_ascii_digit()) {
                    self.pos += 1;
                }
                let text: String = self.chars[start..self.pos].iter().collect();
                text.parse()
                    .map(Expr::Int)
                    .map_err(|_| format!("{text:?} is not an integer"))
            }
            Some(c) if c.is_ascii_alphabetic() || c == '_' => {
                let mut name = self.ident();
                if self.eat('.') {
                    // `namespace.function(...)`: a user-defined function.
                    self.skip_ws();
                    name = format!("{name}.{}", self.ident());
                }
                self.expect('(')?;
                let args = self.args()?;
                Ok(Expr::Call { name, args })
            }
            Some(c) => Err(format!("unexpected {c:?} at position {}", self.pos)),
            None => Err("empty expression".into()),
        }
    }
}

/// Why an expression has no value here.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ExprError {
    pub kind: ErrorKind,
    /// The parameters and variables the evaluation went through, outermost
    /// first, each with its template text (`parameters('location') =
    /// "[resourceGroup().location]"`).
    pub via: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum ErrorKind {
    /// A function the import does not evaluate.
    Unsupported { function: String },
    /// Anything else (unknown parameter, wrong argument, cycle...).
    Other(String),
}

impl ExprError {
    pub(crate) fn unsupported(function: &str) -> Self {
        Self {
            kind: ErrorKind::Unsupported {
                function: function.to_string(),
            },
            via: Vec::new(),
        }
    }

    pub(crate) fn other(message: String) -> Self {
        Self {
            kind: ErrorKind::Other(message),
            via: Vec::new(),
        }
    }

    /// The error as met inside `step` (a parameter or variable).
    pub(crate) fn through(mut self, step: String) -> Self {
        self.via.insert(0, step);
        self
    }

    /// The unsupported function's name, if that is the error.
    pub(crate) fn unsupported_function(&self) -> Option<&str> {
        match &self.kind {
            ErrorKind::Unsupported { function } => Some(function),
            ErrorKind::Other(_) => None,
        }
    }
}

/// A value computed from the template.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Evaluated {
    pub value: Value,
    /// The value is template text (an object or array from `variables` or a
    /// `defaultValue`): its strings are expressions still to evaluate. Values
    /// from a parameters file and computed strings are literal.
    pub template_text: bool,
}

impl Evaluated {
    fn literal(value: Value) -> Self {
        Self {
            value,
            template_text: false,
        }
    }
}

/// What expressions read: the template's parameters and variables.
pub(crate) trait Scope {
    fn parameter(&self, name: &str) -> Result<Evaluated, ExprError>;
    fn variable(&self, name: &str) -> Result<Evaluated, ExprError>;
    /// Evaluates template text found inside a value (a string property of a
    /// variable's object, say).
    fn text(&self, s: &str) -> Result<Evaluated, ExprError>;
}

pub(crate) fn eval(e: &Expr, scope: &dyn Scope) -> Result<Evaluated, ExprError> {
    match e {
        Expr::Str(s) => Ok(Evaluated::literal(Value::String(s.clone()))),
        Expr::Int(n) => Ok(Evaluated::literal(Value::from(*n))),
        Expr::Property(base, name) => {
            let b = eval(base, scope)?;
            let Value::Object(map) = &b.value else {
                return Err(ExprError::other(format!(
                    "property .{name} of a {} value",
                    kind(&b.value)
                )));
            };
            let v = map
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.clone())
                .ok_or_else(|| ExprError::other(format!("no property {name:?}")))?;
            inner(v, b.template_text, scope)
        }
        Expr::Index(base, index) => {
            let b = eval(base, scope)?;
            let i = eval(index, scope)?.value;
            let v = match (&b.value, &i) {
                (Value::Array(a), Value::Number(n)) => n
                    .as_u64()
                    .and_then(|n| a.get(usize::try_from(n).ok()?))
                    .cloned()
                    .ok_or_else(|| ExprError::other(format!("index {n} out of range")))?,
                (Value::Object(m), Value::String(k)) => m
                    .iter()
                    .find(|(key, _)| key.eq_ignore_ascii_case(k))
                    .map(|(_, v)| v.clone())
                    .ok_or_else(|| ExprError::other(format!("no property {k:?}")))?,
                _ => {
                    return Err(ExprError::other(format!(
                        "cannot index a {} value with a {}",
                        kind(&b.value),
                        kind(&i)
                    )));
                }
            };
            inner(v, b.template_text, scope)
        }
        Expr::Call { name, args } => call(name, args, scope),
    }
}

/// A member of a template-text value is itself template text.
fn inner(v: Value, template_text: bool, scope: &dyn Scope) -> Result<Evaluated, ExprError> {
    match (&v, template_text) {
        (Value::String(s), true) => scope.text(s),
        _ => Ok(Evaluated {
            value: v,
            template_text,
        }),
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn string_arg(name: &str, i: usize, v: &Value) -> Result<String, ExprError> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        other => Err(ExprError::other(format!(
            "{name}(): argument {} is a {}, not a string",
            i + 1,
            kind(other)
        ))),
    }
}

fn call(name: &str, args: &[Expr], scope: &dyn Scope) -> Result<Evaluated, ExprError> {
    let lower = name.to_ascii_lowercase();
    let one_name = |args: &[Expr]| -> Result<String, ExprError> {
        match args {
            [a] => match eval(a, scope)?.value {
                Value::String(s) => Ok(s),
                other => Err(ExprError::other(format!(
                    "{name}() takes a name, not a {}",
                    kind(&other)
                ))),
            },
            _ => Err(ExprError::other(format!(
                "{name}() takes one argument, got {}",
                args.len()
            ))),
        }
    };
    match lower.as_str() {
        "parameters" => scope.parameter(&one_name(args)?),
        "variables" => scope.variable(&one_name(args)?),
        "concat" => {
            let values = args
                .iter()
                .map(|a| eval(a, scope))
                .collect::<Result<Vec<_>, _>>()?;
            if !values.is_empty() && values.iter().all(|v| v.value.is_array()) {
                let template_text = values.iter().any(|v| v.template_text);
                let items = values
                    .into_iter()
                    .flat_map(|v| v.value.as_array().cloned().unwrap_or_default())
                    .collect();
                return Ok(Evaluated {
                    value: Value::Array(items),
                    template_text,
                });
            }
            let mut out = String::new();
            for (i, v) in values.iter().enumerate() {
                out += &string_arg("concat", i, &v.value)?;
            }
            Ok(Evaluated::literal(Value::String(out)))
        }
        "format" => {
            let values = args
                .iter()
                .map(|a| eval(a, scope).map(|v| v.value))
                .collect::<Result<Vec<_>, _>>()?;
            let Some((Value::String(f), rest)) = values.split_first() else {
                return Err(ExprError::other(
                    "format() takes a format string first".into(),
                ));
            };
            format_string(f, rest).map(|s| Evaluated::literal(Value::String(s)))
        }
        "resourceid" => {
            let values = args
                .iter()
                .enumerate()
                .map(|(i, a)| string_arg("resourceId", i, &eval(a, scope)?.value))
                .collect::<Result<Vec<_>, _>>()?;
            resource_id(&values).map(|s| Evaluated::literal(Value::String(s)))
        }
        _ => Err(ExprError::unsupported(name)),
    }
}

/// `format('{0}/{1}', a, b)`: .NET composite formatting, placeholders
/// without format specifiers.
fn format_string(f: &str, args: &[Value]) -> Result<String, ExprError> {
    let mut out = String::new();
    let mut chars = f.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '{' if chars.peek() == Some(&'{') => {
                chars.next();
                out.push('{');
            }
            '}' if chars.peek() == Some(&'}') => {
                chars.next();
                out.push('}');
            }
            '{' => {
                let mut spec = String::new();
                for c in chars.by_ref() {
                    if c == '}' {
                        break;
                    }
                    spec.push(c);
                }
                let i: usize = spec.trim().parse().map_err(|_| {
                    ExprError::other(format!(
                        "format(): placeholder {{{spec}}} is not supported (only {{0}}, {{1}}, ...)"
                    ))
                })?;
                let v = args.get(i).ok_or_else(|| {
                    ExprError::other(format!(
                        "format(): placeholder {{{i}}} has no argument ({} given)",
                        args.len()
                    ))
                })?;
                out += &string_arg("format", i + 1, v)?;
            }
            c => out.push(c),
        }
    }
    Ok(out)
}

/// `resourceId([subscriptionId], [resourceGroupName], type, name1, ...)`:
/// the resource's id. Without a subscription or resource group among the
/// arguments those parts are left out (`/providers/TYPE/NAME`): the import
/// only needs the names, which the arguments give exactly.
fn resource_id(args: &[String]) -> Result<String, ExprError> {
    let Some(t) = args.iter().position(|a| {
        a.split_once('/')
            .is_some_and(|(ns, rest)| ns.contains('.') && !rest.is_empty())
    }) else {
        return Err(ExprError::other(
            "resourceId(): no resource type argument (NAMESPACE/TYPE)".into(),
        ));
    };
    if t > 2 {
        return Err(ExprError::other(
            "resourceId(): more than a subscription and a resource group before the type".into(),
        ));
    }
    let mut types = args[t].split('/');
    let namespace = types.next().unwrap_or_default();
    let types: Vec<&str> = types.collect();
    let names = &args[t + 1..];
    if names.len() != types.len() {
        return Err(ExprError::other(format!(
            "resourceId(): type {} needs {} name(s), got {}",
            args[t],
            types.len(),
            names.len()
        )));
    }
    let mut id = String::new();
    match &args[..t] {
        [sub, rg] => id += &format!("/subscriptions/{sub}/resourceGroups/{rg}"),
        [rg] => id += &format!("/resourceGroups/{rg}"),
        _ => {}
    }
    id += &format!("/providers/{namespace}");
    for (t, n) in types.iter().zip(names) {
        id += &format!("/{t}/{n}");
    }
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    struct Fixed;

    impl Scope for Fixed {
        fn parameter(&self, name: &str) -> Result<Evaluated, ExprError> {
            match name {
                "name" => Ok(Evaluated::literal(json!("er-ams"))),
                "vlan" => Ok(Evaluated::literal(json!(100))),
                "obj" => Ok(Evaluated {
                    value: json!({"loc": "[parameters('name')]"}),
                    template_text: true,
                }),
                _ => Err(ExprError::other(format!("no parameter {name}"))),
            }
        }
        fn variable(&self, name: &str) -> Result<Evaluated, ExprError> {
            Err(ExprError::other(format!("no variable {name}")))
        }
        fn text(&self, s: &str) -> Result<Evaluated, ExprError> {
            match expression_text(s) {
                Some(t) => eval(&parse(t).map_err(ExprError::other)?, self),
                None => Ok(Evaluated::literal(json!(literal_text(s)))),
            }
        }
    }

    fn run(s: &str) -> Result<Value, ExprError> {
        let e = parse(expression_text(s).expect("an expression")).map_err(ExprError::other)?;
        eval(&e, &Fixed).map(|v| v.value)
    }

    #[test]
    fn strings_numbers_and_nesting() {
        assert_eq!(
            run("[concat(parameters('name'), '-', 'it''s', parameters('vlan'))]"),
            Ok(json!("er-ams-it's100"))
        );
        assert_eq!(
            run("[format('{0}/{1}', concat('a', 'b'), 'AzurePrivatePeering')]"),
            Ok(json!("ab/AzurePrivatePeering"))
        );
        assert_eq!(run("[parameters('obj').loc]"), Ok(json!("er-ams")));
        assert_eq!(run("[parameters('vlan')]"), Ok(json!(100)));
        assert_eq!(
            run(
                "[resourceId('Microsoft.Network/expressRouteCircuits/peerings', parameters('name'), 'AzurePrivatePeering')]"
            ),
            Ok(json!(
                "/providers/Microsoft.Network/expressRouteCircuits/er-ams/peerings/AzurePrivatePeering"
            ))
        );
        assert_eq!(
            run("[resourceId('sub', 'rg', 'Microsoft.Network/routeFilters', 'rf')]"),
            Ok(json!(
                "/subscriptions/sub/resourceGroups/rg/providers/Microsoft.Network/routeFilters/rf"
            ))
        );
    }

    #[test]
    fn other_functions_are_reported_by_name() {
        assert_eq!(
            run("[resourceGroup().location]"),
            Err(ExprError::unsupported("resourceGroup"))
        );
        assert_eq!(
            run("[concat('x', uniqueString(resourceGroup().id))]"),
            Err(ExprError::unsupported("uniqueString"))
        );
        assert_eq!(
            run(
                "[resourceId(subscription().subscriptionId, 'rg', 'Microsoft.Network/routeFilters', 'rf')]"
            ),
            Err(ExprError::unsupported("subscription"))
        );
        assert_eq!(
            run("[my.helper('a')]"),
            Err(ExprError::unsupported("my.helper"))
        );
    }

    #[test]
    fn escapes_and_errors() {
        assert_eq!(expression_text("[[not an expression]"), None);
        assert_eq!(literal_text("[[x]"), "[x]");
        assert_eq!(expression_text("plain"), None);
        assert!(parse("concat('a'").is_err());
        assert!(matches!(
            run("[format('{0:N2}', 1)]"),
            Err(ExprError { kind: ErrorKind::Other(m), .. }) if m.contains("{0:N2}")
        ));
        assert!(matches!(
            run("[resourceId('Microsoft.Network/expressRouteCircuits')]"),
            Err(ExprError { kind: ErrorKind::Other(m), .. }) if m.contains("needs 1 name")
        ));
    }
}
