//! Unknown fields in source documents. They are accepted (invoicing apps send more than facto
//! reads), but a field facto does not know is often a known one in the wrong place
//! (`totals.tax_breakdown`): each is listed once per run as a warning, with the known field of
//! the same name elsewhere when there is one.

use std::collections::BTreeSet;
use std::sync::OnceLock;

use chrono::{DateTime, NaiveDate};
use rust_decimal::Decimal;

use crate::model::{
    Address, Attachment, AttachmentKind, BillingCase, DocKind, DocStatus, Document,
    ElectronicAddress, Line, Note, OperationNature, Party, Payment, TaxBreakdown, Totals,
};

/// A field a document carried that facto ignored: its path (positions as `[]`) and the
/// document it was first seen in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownField {
    /// JSON path, e.g. `totals.tax_breakdown` or `lines[].colour`.
    pub path: String,
    /// Number (or id) of the document.
    pub doc: String,
}

/// The unknown field paths `paths` met in `doc`, as the report lists them.
pub fn of_document(
    paths: impl IntoIterator<Item = String>,
    doc: &crate::model::Document,
) -> Vec<UnknownField> {
    paths
        .into_iter()
        .map(|path| UnknownField {
            path,
            doc: doc.number.clone(),
        })
        .collect()
}

/// Every field path of the canonical document (positions as `[]`).
fn known_paths() -> &'static BTreeSet<String> {
    static KNOWN: OnceLock<BTreeSet<String>> = OnceLock::new();
    KNOWN.get_or_init(|| {
        let mut out = BTreeSet::new();
        if let Ok(v) = serde_json::to_value(full_document()) {
            walk(&v, "", &mut out);
        }
        out
    })
}

fn walk(v: &serde_json::Value, path: &str, out: &mut BTreeSet<String>) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, v) in m {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                out.insert(p.clone());
                walk(v, &p, out);
            }
        }
        serde_json::Value::Array(a) => {
            for v in a {
                walk(v, &format!("{path}[]"), out);
            }
        }
        _ => {}
    }
}

fn loose(name: &str) -> String {
    name.chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// The known field an unknown path most likely meant: the same name elsewhere, or a name
/// spelled differently (`taxCode`, `Tax-Code`) at the same place.
pub fn suggestion(path: &str) -> Option<String> {
    let (parent, name) = match path.rfind('.') {
        Some(i) => (&path[..i], &path[i + 1..]),
        None => ("", path),
    };
    let leaf = |p: &str| p.rsplit('.').next().unwrap_or(p).to_owned();
    let known = known_paths();
    let same_name: Vec<&String> = known.iter().filter(|k| leaf(k) == name).collect();
    // The shortest of them: a party field at the top means the seller's or the buyer's.
    if let Some(k) = same_name.iter().min_by_key(|k| k.matches('.').count()) {
        return Some((*k).clone());
    }
    known
        .iter()
        .find(|k| {
            let (kp, kn) = k.rsplit_once('.').unwrap_or(("", k));
            kp == parent && loose(kn) == loose(name)
        })
        .cloned()
}

/// The warning for one unknown field.
pub fn warning(f: &UnknownField) -> String {
    let hint = match suggestion(&f.path) {
        Some(k) => format!("; did you mean `{k}`?"),
        None => String::new(),
    };
    format!(
        "source documents carry the unknown field `{}` (first in {}), which facto ignores{hint}",
        f.path, f.doc
    )
}

/// A document with every optional part present, so that serializing it names every field; the
/// struct literals make the compiler keep it complete.
fn full_document() -> Document {
    let address = Address {
        lines: vec![String::new()],
        postcode: Some(String::new()),
        city: Some(String::new()),
        country_code: Some(String::new()),
        siret: Some(String::new()),
    };
    let party = Party {
        name: String::new(),
        customer_id: Some(String::new()),
        siret: Some(String::new()),
        siren: Some(String::new()),
        vat_id: Some(String::new()),
        email: Some(String::new()),
        billing_address: Some(address.clone()),
        delivery_address: Some(address),
        chorus: false,
        electronic_address: Some(ElectronicAddress {
            scheme: String::new(),
            value: String::new(),
        }),
        iban: Some(String::new()),
        bic: Some(String::new()),
    };
    let date = NaiveDate::default();
    Document {
        id: String::new(),
        number: String::new(),
        kind: DocKind::Invoice,
        status: DocStatus::Final,
        issue_date: date,
        due_date: Some(date),
        currency: String::new(),
        updated_at: DateTime::default(),
        purchase_order: Some(String::new()),
        engagement_number: Some(String::new()),
        service_code: Some(String::new()),
        contract_reference: Some(String::new()),
        preceding_invoice: Some(String::new()),
        preceding_invoice_date: Some(date),
        type_code: Some(String::new()),
        billing_case: Some(BillingCase::Standard),
        delivery_date: Some(date),
        billing_framework: Some(String::new()),
        notes: vec![Note {
            subject_code: Some(String::new()),
            text: String::new(),
        }],
        operation_nature: Some(OperationNature::Goods),
        vat_on_debits: Some(false),
        seller: party.clone(),
        buyer: party,
        payment_means: Some(String::new()),
        iban: Some(String::new()),
        bic: Some(String::new()),
        payment_terms: Some(String::new()),
        lines: vec![Line {
            id: Some(String::new()),
            description: String::new(),
            quantity: Decimal::ZERO,
            unit: String::new(),
            unit_price: Decimal::ZERO,
            discount: Some(Decimal::ZERO),
            net_amount: Decimal::ZERO,
            gl_account: Some(String::new()),
            product_code: Some(String::new()),
            tax_code: String::new(),
            job_ref: Some(String::new()),
        }],
        totals: Totals {
            net: Decimal::ZERO,
            tax: Decimal::ZERO,
            gross: Decimal::ZERO,
            paid: Decimal::ZERO,
            due: Decimal::ZERO,
        },
        tax_breakdown: vec![TaxBreakdown {
            tax_code: String::new(),
            rate: Decimal::ZERO,
            base: Decimal::ZERO,
            amount: Decimal::ZERO,
        }],
        attachments: vec![Attachment {
            kind: AttachmentKind::InvoicePdf,
            path: Some(String::new()),
            url: Some(String::new()),
            mime_type: Some(String::new()),
            sha256: Some(String::new()),
        }],
        payments: vec![Payment {
            id: Some(String::new()),
            date,
            amount: Decimal::ZERO,
        }],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_known_name_in_the_wrong_place_is_suggested() {
        assert_eq!(
            suggestion("totals.tax_breakdown").as_deref(),
            Some("tax_breakdown")
        );
        assert_eq!(
            suggestion("lines[].taxCode").as_deref(),
            Some("lines[].tax_code")
        );
        assert_eq!(suggestion("lines[].colour"), None);
        // A party field at the top: the seller's or the buyer's.
        assert!(
            suggestion("siret").is_some_and(|s| s.ends_with(".siret") && !s.contains("address"))
        );
    }

    #[test]
    fn ignored_fields_are_noted_once_with_positions_as_brackets() {
        let mut v = serde_json::json!({
            "id": "d1", "number": "F1", "kind": "invoice", "status": "final",
            "issue_date": "2026-01-15", "currency": "EUR", "updated_at": "2026-01-15T10:00:00Z",
            "seller": {"name": "S"}, "buyer": {"name": "B"},
            "lines": [{"quantity": "1", "unit_price": "10.00", "net_amount": "10.00", "tax_code": "T20"}],
            "totals": {"net": "10.00", "tax": "2.00", "gross": "12.00", "due": "12.00"}
        });
        v["totals"]["tax_breakdown"] = serde_json::json!([]);
        v["lines"][0]["colour"] = serde_json::json!("red");
        v["lines"] = serde_json::json!([v["lines"][0].clone(), v["lines"][0].clone()]);
        let mut unknown = Vec::new();
        assert!(crate::model::parse_document_noting(v, "f.json", 0, &mut unknown).is_ok());
        assert_eq!(unknown, ["lines[].colour", "totals.tax_breakdown"]);
    }
}
