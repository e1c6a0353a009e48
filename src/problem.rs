//! A problem found with one document: what is wrong, where (JSON path), and the fix to apply.
//! Mapping, checks and sources all speak this one type so the report can print any of them.

use serde::{Deserialize, Serialize};

/// One reason a document is held back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    /// Stable machine code, e.g. `unmapped-tax-code`, `totals-mismatch`.
    pub code: String,
    /// JSON path of the field at fault (`lines[2].tax_code`), or `(document)`.
    pub field: String,
    /// What is wrong, with the exact values.
    pub message: String,
    /// What to do about it.
    pub fix: String,
}

impl Problem {
    /// Builds a problem.
    pub fn new(
        code: &str,
        field: impl Into<String>,
        message: impl Into<String>,
        fix: impl Into<String>,
    ) -> Self {
        Problem {
            code: code.to_owned(),
            field: field.into(),
            message: message.into(),
            fix: fix.into(),
        }
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {} (fix: {})", self.field, self.message, self.fix)
    }
}
