//! What validation reports: every error with its field path, and the
//! warnings of a configuration that is accepted.

use std::fmt;

/// One problem in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationError {
    /// Field path, e.g. `circuits[1].peerings[0].peerASN`.
    pub path: String,
    /// What is wrong and what is allowed.
    pub message: String,
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// Every problem found; the file is refused whole.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ValidationErrors(pub Vec<ValidationError>);

impl ValidationErrors {
    /// The errors at exactly this path.
    pub fn at(&self, path: &str) -> Vec<&ValidationError> {
        self.0.iter().filter(|e| e.path == path).collect()
    }
}

impl fmt::Display for ValidationErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0.len();
        write!(
            f,
            "configuration refused, {n} error{}:",
            if n == 1 { "" } else { "s" }
        )?;
        for e in &self.0 {
            write!(f, "\n  {e}")?;
        }
        Ok(())
    }
}

/// Collects what the checks find. A check reports and carries on, so that
/// one run names every problem of the file, in the order of the checks.
#[derive(Default)]
pub(super) struct Validator {
    errors: Vec<ValidationError>,
    warnings: Vec<String>,
}

/// Where the error list stood; see [`Validator::clean_since`].
#[derive(Clone, Copy)]
pub(super) struct Mark(usize);

impl Validator {
    pub(super) fn err(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.errors.push(ValidationError {
            path: path.into(),
            message: message.into(),
        });
    }

    pub(super) fn warn(&mut self, message: String) {
        self.warnings.push(message);
    }

    pub(super) fn mark(&self) -> Mark {
        Mark(self.errors.len())
    }

    /// No error was reported since `mark`: what those checks covered can
    /// go into the model.
    pub(super) fn clean_since(&self, mark: Mark) -> bool {
        self.errors.len() == mark.0
    }

    /// The warnings if nothing was wrong, else every error.
    pub(super) fn finish(self) -> Result<Vec<String>, ValidationErrors> {
        if self.errors.is_empty() {
            Ok(self.warnings)
        } else {
            Err(ValidationErrors(self.errors))
        }
    }
}
