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
        write!(
            f,
            "{}: {} (fix: {})",
            field_label(&self.field),
            self.message,
            self.fix
        )
    }
}

/// A field's JSON path as a person reads it: positions counted from 1, as the invoice shows its
/// lines (`lines[1].tax_code` → `line 2 tax_code`, `tax_breakdown[0].amount` →
/// `tax_breakdown line 1 amount`). The JSON report keeps the path itself.
pub fn field_label(path: &str) -> String {
    let mut out = String::with_capacity(path.len() + 8);
    let mut rest = path;
    while let Some(open) = rest.find('[') {
        let Some(close) = rest[open..].find(']').map(|c| open + c) else {
            break;
        };
        let Ok(index) = rest[open + 1..close].parse::<u64>() else {
            out.push_str(&rest[..=close]);
            rest = &rest[close + 1..];
            continue;
        };
        let before = &rest[..open];
        let (prefix, name) = match before.rfind('.') {
            Some(dot) => (&before[..dot], &before[dot + 1..]),
            None => ("", before),
        };
        out.push_str(prefix);
        if !prefix.is_empty() {
            out.push(' ');
        }
        let word = match name {
            "lines" => "line".to_owned(),
            "attachments" => "attachment".to_owned(),
            "notes" => "note".to_owned(),
            "tax_breakdown" => "tax_breakdown line".to_owned(),
            other => other.to_owned(),
        };
        out.push_str(&format!("{word} {}", index.saturating_add(1)));
        rest = &rest[close + 1..];
        if let Some(r) = rest.strip_prefix('.') {
            out.push(' ');
            rest = r;
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::field_label;

    #[test]
    fn positions_are_counted_from_one_for_people() {
        assert_eq!(field_label("lines[1].tax_code"), "line 2 tax_code");
        assert_eq!(field_label("lines[0]"), "line 1");
        assert_eq!(
            field_label("tax_breakdown[0].amount"),
            "tax_breakdown line 1 amount"
        );
        assert_eq!(
            field_label("buyer.billing_address.lines[2]"),
            "buyer.billing_address line 3"
        );
        assert_eq!(field_label("totals.gross"), "totals.gross");
        assert_eq!(field_label("(document)"), "(document)");
        assert_eq!(field_label("a[x].b"), "a[x].b");
    }
}
