//! A secret of the configuration (a peering's `sharedKey`, the TCP-MD5
//! key of its BGP sessions). It is kept as given but never shown: `Debug`
//! prints `<redacted>` and there is no `Display`, so a log line, an error
//! or an API answer that formats a model, a peering or a session cannot
//! carry it. Code that needs the key (the socket option, a router's
//! configuration) asks for it by name, [`Secret::expose`].
use serde::{Deserialize, Serialize};

#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself: for the kernel or a peer's configuration, never
    /// for a message.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

impl From<&str> for Secret {
    fn from(s: &str) -> Self {
        Self(s.to_owned())
    }
}

impl From<String> for Secret {
    fn from(s: String) -> Self {
        Self(s)
    }
}

/// `message` (a serde or TOML parser's) with the values it quotes left
/// out: serde names an unexpected value in its message (`invalid type:
/// string "...", expected u32`, `` integer `5` ``), and the value may be
/// a key written in the wrong place. Field and variant names stay: they
/// are what the user needs to find the line.
pub fn without_values(message: &str) -> String {
    const BACKTICKED: [&str; 4] = ["integer `", "floating point `", "boolean `", "character `"];
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    'scan: while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix("string \"") {
            out.push_str("string");
            // A Rust-escaped string: ends at the first unescaped quote.
            let mut escaped = false;
            for (i, c) in after.char_indices() {
                match c {
                    '\\' if !escaped => escaped = true,
                    '"' if !escaped => {
                        rest = &after[i + 1..];
                        continue 'scan;
                    }
                    _ => escaped = false,
                }
            }
            rest = "";
            continue;
        }
        for kind in BACKTICKED {
            if let Some(after) = rest.strip_prefix(kind) {
                out.push_str(kind.trim_end_matches(" `"));
                rest = after.find('`').map_or("", |end| &after[end + 1..]);
                continue 'scan;
            }
        }
        let c = rest.chars().next().expect("not empty");
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_secret() {
        let s = Secret::from("s3cret-md5");
        assert_eq!(format!("{s:?}"), "<redacted>");
        assert_eq!(format!("{:?}", Some(s.clone())), "Some(<redacted>)");
        assert_eq!(s.expose(), "s3cret-md5");
        assert_eq!(
            serde_json::to_string(&s).unwrap(),
            "\"s3cret-md5\"",
            "written as given (msee-cli import)"
        );
    }

    #[test]
    fn values_are_left_out_of_parser_messages() {
        assert_eq!(
            without_values(r#"invalid type: string "s3cret \"x\" md5", expected u32"#),
            "invalid type: string, expected u32"
        );
        assert_eq!(
            without_values("invalid type: integer `123456`, expected a string at line 3 column 14"),
            "invalid type: integer, expected a string at line 3 column 14"
        );
        assert_eq!(
            without_values("invalid type: floating point `1.5`, expected a string"),
            "invalid type: floating point, expected a string"
        );
        assert_eq!(
            without_values("invalid type: boolean `true`, expected a string"),
            "invalid type: boolean, expected a string"
        );
        assert_eq!(
            without_values("unknown field `sharedKy`, expected one of `peerASN`, `sharedKey`"),
            "unknown field `sharedKy`, expected one of `peerASN`, `sharedKey`",
            "names stay"
        );
        assert_eq!(without_values(r#"string "unterminated"#), "string");
    }
}
