//! The canonical document (SPEC §4): invoices and credit notes as every source delivers them.
//!
//! Money and quantities are `rust_decimal::Decimal`, read from JSON strings. The model carries the
//! French e-invoicing reform's fields from the start (SPEC §9) even where no target uses them yet.

use chrono::{DateTime, FixedOffset, NaiveDate};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// Invoice or credit note.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DocKind {
    /// A sales invoice (UNTDID 1001 code 380).
    Invoice,
    /// A credit note, "avoir" (UNTDID 1001 code 381). Amounts are positive; the kind gives the sense.
    CreditNote,
}

impl DocKind {
    /// The word used in reports and CSV files.
    pub fn as_str(self) -> &'static str {
        match self {
            DocKind::Invoice => "invoice",
            DocKind::CreditNote => "credit_note",
        }
    }
}

/// Life-cycle status in the source application. Only `final` documents are ever transferred.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DocStatus {
    /// Still being edited.
    Draft,
    /// A quote-like document with no accounting value.
    Proforma,
    /// Finalized: numbered, immutable, to be booked.
    Final,
    /// Cancelled before finalization.
    Cancelled,
}

impl DocStatus {
    /// The word used in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            DocStatus::Draft => "draft",
            DocStatus::Proforma => "proforma",
            DocStatus::Final => "final",
            DocStatus::Cancelled => "cancelled",
        }
    }
}

/// Nature of the operation (reform mention: goods, services or both).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OperationNature {
    /// Delivery of goods.
    Goods,
    /// Supply of services.
    Services,
    /// Both.
    Mixed,
}

/// What an invoice settles, as the French core's business process (BT-23) says it with its digit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BillingCase {
    /// An invoice to be paid (`B1` / `S1` / `M1`).
    Standard,
    /// An invoice already paid in full when issued (`B2` / `S2` / `M2`): `totals.paid` is the
    /// gross, `totals.due` is zero and `due_date` is the date of payment (BR-FR-CO-09).
    AlreadyPaid,
    /// The final invoice after down payments (`B4` / `S4` / `M4`): the prepayment invoices (type
    /// `386`) were issued before; this one is not itself a prepayment invoice (BR-FR-CO-08).
    FinalAfterDownPayments,
}

/// A postal address.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Address {
    /// Street lines, first to last.
    #[serde(default)]
    pub lines: Vec<String>,
    /// Postal code.
    #[serde(default)]
    pub postcode: Option<String>,
    /// City.
    #[serde(default)]
    pub city: Option<String>,
    /// ISO 3166-1 alpha-2 country code.
    #[serde(default)]
    pub country_code: Option<String>,
    /// SIRET of the establishment the address belongs to (Chorus Pro requires it).
    #[serde(default)]
    pub siret: Option<String>,
}

/// An electronic address (EN 16931 BT-34/BT-49), e.g. scheme `0225` for the French directory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ElectronicAddress {
    /// Scheme identifier (ISO 6523 ICD or EAS code).
    pub scheme: String,
    /// The address itself.
    pub value: String,
}

/// Seller or buyer.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Party {
    /// Legal or trading name.
    pub name: String,
    /// Buyer: the identifier shared with the accounting software.
    #[serde(default)]
    pub customer_id: Option<String>,
    /// SIRET (14 digits).
    #[serde(default)]
    pub siret: Option<String>,
    /// SIREN (9 digits).
    #[serde(default)]
    pub siren: Option<String>,
    /// Intra-community VAT number.
    #[serde(default)]
    pub vat_id: Option<String>,
    /// E-mail address.
    #[serde(default)]
    pub email: Option<String>,
    /// Billing address.
    #[serde(default)]
    pub billing_address: Option<Address>,
    /// Delivery address.
    #[serde(default)]
    pub delivery_address: Option<Address>,
    /// This customer's invoices go to Chorus Pro.
    #[serde(default)]
    pub chorus: bool,
    /// Electronic address in the e-invoicing directory.
    #[serde(default)]
    pub electronic_address: Option<ElectronicAddress>,
    /// Bank account (seller).
    #[serde(default)]
    pub iban: Option<String>,
    /// Bank identifier (seller).
    #[serde(default)]
    pub bic: Option<String>,
}

/// A note with an optional UNTDID 4451 subject code (PMT, PMD, AAB, BAR, ...).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Note {
    /// Subject code, if any.
    #[serde(default)]
    pub subject_code: Option<String>,
    /// Free text.
    pub text: String,
}

/// Reads `notes` as a list of notes, or a plain string (one note without a subject code: most
/// invoicing apps have a single free-text note). `null` and `""` are no note.
fn notes<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<Note>, D::Error> {
    use serde::de::Error;
    match Option::<serde_json::Value>::deserialize(d)? {
        None | Some(serde_json::Value::Null) => Ok(Vec::new()),
        Some(serde_json::Value::String(t)) if t.trim().is_empty() => Ok(Vec::new()),
        Some(serde_json::Value::String(text)) => Ok(vec![Note {
            subject_code: None,
            text,
        }]),
        Some(v @ serde_json::Value::Array(_)) => serde_json::from_value(v).map_err(|e| {
            D::Error::custom(format!(
                "{e}; each note is {{\"subject_code\": \"PMT\", \"text\": \"...\"}} (subject_code optional)"
            ))
        }),
        Some(_) => Err(D::Error::custom(
            "notes must be a text, or a list of {\"subject_code\", \"text\"} objects",
        )),
    }
}

/// One invoice line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Line {
    /// Line identifier within the document.
    #[serde(default)]
    pub id: Option<String>,
    /// What was sold.
    #[serde(default)]
    pub description: String,
    /// Quantity invoiced.
    #[serde(deserialize_with = "amount::strict")]
    pub quantity: Decimal,
    /// UN/ECE recommendation 20 unit code.
    #[serde(default = "default_unit")]
    pub unit: String,
    /// Net unit price.
    #[serde(deserialize_with = "amount::strict")]
    pub unit_price: Decimal,
    /// Line allowance, as an amount.
    #[serde(default, deserialize_with = "amount::strict_opt")]
    pub discount: Option<Decimal>,
    /// Line net amount (quantity × price − discount), as the invoice states it.
    #[serde(deserialize_with = "amount::strict")]
    pub net_amount: Decimal,
    /// Source GL account code.
    #[serde(default)]
    pub gl_account: Option<String>,
    /// Source product code (used for the GL mapping when `gl_account` is absent).
    #[serde(default)]
    pub product_code: Option<String>,
    /// Source tax code.
    pub tax_code: String,
    /// Dossier / job number.
    #[serde(default)]
    pub job_ref: Option<String>,
}

fn default_unit() -> String {
    "C62".to_owned()
}

/// Document totals, as the invoice states them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Totals {
    /// Sum of line nets (HT).
    #[serde(deserialize_with = "amount::strict")]
    pub net: Decimal,
    /// Total VAT.
    #[serde(deserialize_with = "amount::strict")]
    pub tax: Decimal,
    /// Net + VAT (TTC).
    #[serde(deserialize_with = "amount::strict")]
    pub gross: Decimal,
    /// Already paid.
    #[serde(default, deserialize_with = "amount::strict")]
    pub paid: Decimal,
    /// Amount due.
    #[serde(deserialize_with = "amount::strict")]
    pub due: Decimal,
}

/// VAT per rate, as the invoice states it (the truth for the VAT lines of the entry).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaxBreakdown {
    /// Source tax code.
    pub tax_code: String,
    /// Rate in percent.
    #[serde(deserialize_with = "amount::strict")]
    pub rate: Decimal,
    /// Taxable base.
    #[serde(deserialize_with = "amount::strict")]
    pub base: Decimal,
    /// VAT amount.
    #[serde(deserialize_with = "amount::strict")]
    pub amount: Decimal,
}

/// What an attachment is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttachmentKind {
    /// The invoice's own PDF as the invoicing application rendered it.
    InvoicePdf,
    /// A supporting document.
    Supporting,
}

/// A file attached to the document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Attachment {
    /// What it is.
    pub kind: AttachmentKind,
    /// Local path.
    #[serde(default)]
    pub path: Option<String>,
    /// Remote URL.
    #[serde(default)]
    pub url: Option<String>,
    /// MIME type.
    #[serde(default)]
    pub mime_type: Option<String>,
    /// Expected SHA-256 (hex).
    #[serde(default)]
    pub sha256: Option<String>,
}

/// One payment of a document (`payments[]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Payment {
    /// The payment's id in the invoicing application, stable across exports. Without one, facto
    /// names it by its date, amount and rank among the document's payments of that date and
    /// amount.
    #[serde(default)]
    pub id: Option<String>,
    /// When the money was received (or refunded).
    pub date: NaiveDate,
    /// The amount received, VAT included, in the document's currency; positive.
    #[serde(deserialize_with = "amount::strict")]
    pub amount: Decimal,
}

/// An invoice or credit note in facto's canonical shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Document {
    /// Stable source identifier.
    pub id: String,
    /// Invoice number.
    pub number: String,
    /// Invoice or credit note.
    pub kind: DocKind,
    /// Source status.
    pub status: DocStatus,
    /// Issue date.
    pub issue_date: NaiveDate,
    /// Due date.
    #[serde(default)]
    pub due_date: Option<NaiveDate>,
    /// ISO 4217 currency code.
    pub currency: String,
    /// Last change in the source (the source cursor).
    pub updated_at: DateTime<FixedOffset>,
    /// Purchase order (BT-13).
    #[serde(default)]
    pub purchase_order: Option<String>,
    /// Numéro d'engagement juridique.
    #[serde(default)]
    pub engagement_number: Option<String>,
    /// Code service exécutant (BT-10).
    #[serde(default)]
    pub service_code: Option<String>,
    /// Contract reference (BT-12).
    #[serde(default)]
    pub contract_reference: Option<String>,
    /// Number of the invoice a credit note corrects (BT-25).
    #[serde(default)]
    pub preceding_invoice: Option<String>,
    /// Issue date of that invoice (BT-26): the French core asks for it on a credit note
    /// (BR-FR-CO-05). Left out of the serialized document when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preceding_invoice_date: Option<NaiveDate>,
    /// UNTDID 1001 document type code (BT-3) when it is not the plain one of its kind (`380` an
    /// invoice, `381` a credit note): `384` a corrective invoice (with `preceding_invoice` and
    /// its date), `386` a prepayment (down payment) invoice. Left out of the serialized document
    /// when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub type_code: Option<String>,
    /// What the invoice settles (the digit of the French core's BT-23): a plain invoice, one
    /// already paid, the final invoice after down payments. Left out of the serialized document
    /// when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub billing_case: Option<BillingCase>,
    /// Actual delivery date of the goods or services (BT-72). Left out of the serialized
    /// document when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery_date: Option<NaiveDate>,
    /// Chorus Pro billing framework (cadre de facturation).
    #[serde(default)]
    pub billing_framework: Option<String>,
    /// Notes, with optional subject codes; a plain string is read as one note without a code.
    #[serde(default, deserialize_with = "notes")]
    pub notes: Vec<Note>,
    /// Goods, services or mixed.
    #[serde(default)]
    pub operation_nature: Option<OperationNature>,
    /// The seller opted for VAT on debits.
    #[serde(default)]
    pub vat_on_debits: Option<bool>,
    /// The seller.
    pub seller: Party,
    /// The buyer.
    pub buyer: Party,
    /// UNCL 4461 payment means code.
    #[serde(default)]
    pub payment_means: Option<String>,
    /// IBAN to pay to.
    #[serde(default)]
    pub iban: Option<String>,
    /// BIC to pay to.
    #[serde(default)]
    pub bic: Option<String>,
    /// Payment terms.
    #[serde(default)]
    pub payment_terms: Option<String>,
    /// Lines.
    pub lines: Vec<Line>,
    /// Totals.
    pub totals: Totals,
    /// VAT per rate.
    #[serde(default)]
    pub tax_breakdown: Vec<TaxBreakdown>,
    /// Attached files.
    #[serde(default)]
    pub attachments: Vec<Attachment>,
    /// Payments received (or, for a credit note, refunds made), as the invoicing application
    /// recorded them: what status 212 "Encaissée" reports where VAT is due on receipt. Left out
    /// of the serialized document when empty, so that documents without any keep their hash.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub payments: Vec<Payment>,
}

impl Document {
    /// The buyer's customer identifier, or an empty string.
    pub fn customer_id(&self) -> &str {
        self.buyer.customer_id.as_deref().unwrap_or("")
    }
}

/// Strict readers for amounts: a JSON string holding a decimal, never a JSON number (a float would
/// already have lost cents before we could see it).
pub mod amount {
    use rust_decimal::Decimal;
    use serde::{de::Error, Deserialize, Deserializer};
    use std::str::FromStr;

    fn parse<E: Error>(s: &str) -> Result<Decimal, E> {
        Decimal::from_str(s.trim()).map_err(|_| {
            E::custom(format!(
                "`{s}` is not a decimal amount; write it as a string such as \"1358.25\""
            ))
        })
    }

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Str(String),
        Num(serde_json::Number),
    }

    fn from_raw<E: Error>(raw: Raw) -> Result<Decimal, E> {
        match raw {
            Raw::Str(s) => parse(&s),
            Raw::Num(n) => Err(E::custom(format!(
                "amount {n} is a JSON number; amounts must be JSON strings such as \"{n}\" \
                 (fix the source export)"
            ))),
        }
    }

    /// Reads a required amount.
    ///
    /// # Errors
    ///
    /// When the value is not a string holding a decimal.
    pub fn strict<'de, D: Deserializer<'de>>(d: D) -> Result<Decimal, D::Error> {
        from_raw(Raw::deserialize(d)?)
    }

    /// Reads an optional amount (`null` or absent is `None`).
    ///
    /// # Errors
    ///
    /// When the value is present and not a string holding a decimal.
    pub fn strict_opt<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Decimal>, D::Error> {
        Option::<Raw>::deserialize(d)?.map(from_raw).transpose()
    }
}

/// Error reading one document out of its JSON.
#[derive(Debug, thiserror::Error)]
#[error(
    "{origin}: document {doc}: {}: {message}",
    crate::problem::field_label(path)
)]
pub struct DocParseError {
    /// File or URL the document came from.
    pub origin: String,
    /// The document's id (or number, or position) as far as it could be read.
    pub doc: String,
    /// JSON path of the bad field.
    pub path: String,
    /// What is wrong with it.
    pub message: String,
}

/// `s` with each control character written as its escape (`\n`, `\u{1}`), so that an id that
/// is refused for holding one can still name its record and be shown.
pub fn printable(s: &str) -> String {
    if !s.chars().any(char::is_control) {
        return s.to_owned();
    }
    s.chars()
        .map(|c| match c.is_control() {
            true => c.escape_debug().to_string(),
            false => c.to_string(),
        })
        .collect()
}

/// Start of the ledger id of a malformed document whose id holds a control character: its
/// escaped id (`inv\n42`) could be a real document's id, this prefix (a control character
/// itself) cannot.
pub const MALFORMED_ID: &str = "\u{1}malformed:";

/// A ledger id as shown to people: a malformed document's id without [`MALFORMED_ID`].
pub fn shown_id(id: &str) -> &str {
    id.strip_prefix(MALFORMED_ID).unwrap_or(id)
}

/// Why a parsed document's identity cannot be taken: an empty id, or an id or number holding
/// a control character ([`identity_problem`]). Returns the field and the message.
pub fn identity_error(doc: &Document) -> Option<(&'static str, String)> {
    if doc.id.trim().is_empty() {
        return Some(("id", "must not be empty".to_owned()));
    }
    identity_problem(&doc.id, &doc.number)
}

/// Why a document's id or number cannot be taken: a control character (a line break, a NUL...)
/// would end up in ledger keys, report lines, file names and fixed-width journal fields.
/// Returns the field and the message.
pub fn identity_problem(id: &str, number: &str) -> Option<(&'static str, String)> {
    [("id", id), ("number", number)]
        .into_iter()
        .find_map(|(field, value)| {
            let (pos, c) = value.chars().enumerate().find(|(_, c)| c.is_control())?;
            Some((
                field,
                format!(
                    "holds a control character ({}) at character {}; ids and numbers must be printable text",
                    c.escape_debug(),
                    pos + 1
                ),
            ))
        })
}

/// Best-effort identity of a raw JSON document: its `id`, else its `number`, else `#position`.
/// Control characters are escaped (see [`printable`]).
pub fn raw_identity(value: &serde_json::Value, position: usize) -> (String, Option<String>) {
    let id = value.get("id").and_then(|v| v.as_str()).map(printable);
    let number = value.get("number").and_then(|v| v.as_str()).map(printable);
    match id {
        Some(id) if !id.is_empty() => (id, number),
        _ => (format!("#{position}"), number),
    }
}

/// Parses one JSON value into a [`Document`], naming the JSON path of the first bad field.
///
/// # Errors
///
/// [`DocParseError`] with the origin, the document identity and the JSON path.
pub fn parse_document(
    value: serde_json::Value,
    origin: &str,
    position: usize,
) -> Result<Document, DocParseError> {
    parse_document_noting(value, origin, position, &mut Vec::new())
}

/// The largest amount, quantity or unit price facto takes (ten thousand billion): products and
/// sums of such figures stay far inside `Decimal`'s range (about 7.9 × 10^28).
pub const MAX_FIGURE: Decimal = Decimal::from_parts(0x4E72_A000, 0x0918, 0, false, 0);

/// The problem for a figure, or a sum or product of figures, that facto cannot compute with.
pub fn out_of_range(
    field: impl Into<String>,
    what: impl std::fmt::Display,
) -> crate::problem::Problem {
    crate::problem::Problem::new(
        "amount-out-of-range",
        field,
        format!("amount out of range: {what}"),
        "correct the figure in the invoicing application (facto takes amounts, quantities and unit prices up to ±10 000 000 000 000)",
    )
}

/// The path of an ignored field as `source::unknown::UnknownField::path` writes it.
pub fn ignored_path(p: &serde_ignored::Path<'_>) -> String {
    use serde_ignored::Path;
    match p {
        Path::Root => String::new(),
        Path::Seq { parent, .. } => format!("{}[]", ignored_path(parent)),
        Path::Map { parent, key } => {
            let parent = ignored_path(parent);
            if parent.is_empty() {
                key.clone()
            } else {
                format!("{parent}.{key}")
            }
        }
        Path::Some { parent }
        | Path::NewtypeStruct { parent }
        | Path::NewtypeVariant { parent } => ignored_path(parent),
    }
}

/// [`parse_document`], noting in `unknown` the path of every field it ignored.
///
/// # Errors
///
/// As [`parse_document`].
pub fn parse_document_noting(
    value: serde_json::Value,
    origin: &str,
    position: usize,
    unknown: &mut Vec<String>,
) -> Result<Document, DocParseError> {
    let (id, number) = raw_identity(&value, position);
    let doc_label = match number {
        Some(n) => format!("{n} (id {id})"),
        None => id.clone(),
    };
    let mut seen = std::collections::BTreeSet::new();
    let mut note = |p: serde_ignored::Path<'_>| {
        seen.insert(ignored_path(&p));
    };
    let parsed: Result<Document, _> =
        serde_path_to_error::deserialize(serde_ignored::Deserializer::new(value, &mut note));
    unknown.extend(seen);
    let doc = parsed.map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner().to_string();
        // serde reports a missing field at its parent: name the field itself.
        let missing = inner
            .strip_prefix("missing field `")
            .and_then(|rest| rest.split('`').next())
            .map(str::to_owned);
        let path = match (path.as_str(), missing) {
            (".", Some(field)) => field,
            (_, Some(field)) => format!("{path}.{field}"),
            (".", None) => "(document)".to_owned(),
            _ => path,
        };
        DocParseError {
            origin: origin.to_owned(),
            doc: doc_label.clone(),
            path,
            message: inner,
        }
    })?;
    if let Some((field, message)) = identity_error(&doc) {
        return Err(DocParseError {
            origin: origin.to_owned(),
            doc: doc_label,
            path: field.to_owned(),
            message,
        });
    }
    Ok(doc)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    pub(crate) fn minimal() -> serde_json::Value {
        json!({
            "id": "d1", "number": "F1", "kind": "invoice", "status": "final",
            "issue_date": "2026-01-15", "currency": "EUR", "updated_at": "2026-01-15T10:00:00Z",
            "seller": {"name": "S"}, "buyer": {"name": "B", "customer_id": "C1"},
            "lines": [{"quantity": "1", "unit_price": "10.00", "net_amount": "10.00", "tax_code": "T20"}],
            "totals": {"net": "10.00", "tax": "2.00", "gross": "12.00", "due": "12.00"},
            "tax_breakdown": [{"tax_code": "T20", "rate": "20", "base": "10.00", "amount": "2.00"}]
        })
    }

    #[test]
    fn parses_minimal_document_with_defaults() {
        let doc = parse_document(minimal(), "f.json", 0).unwrap();
        assert_eq!(doc.lines[0].unit, "C62");
        assert_eq!(doc.totals.gross, Decimal::new(1200, 2));
        assert_eq!(doc.customer_id(), "C1");
    }

    #[test]
    fn french_core_terms_are_read_and_left_out_when_absent() {
        let mut v = minimal();
        v["type_code"] = json!("386");
        v["billing_case"] = json!("final_after_down_payments");
        v["delivery_date"] = json!("2026-01-10");
        let doc = parse_document(v, "f.json", 0).unwrap();
        assert_eq!(doc.type_code.as_deref(), Some("386"));
        assert_eq!(doc.billing_case, Some(BillingCase::FinalAfterDownPayments));
        assert_eq!(doc.delivery_date, NaiveDate::from_ymd_opt(2026, 1, 10));
        // Documents without them serialize as before (ledger and snapshots unchanged).
        let plain = serde_json::to_value(parse_document(minimal(), "f.json", 0).unwrap()).unwrap();
        for key in ["type_code", "billing_case", "delivery_date"] {
            assert!(plain.get(key).is_none(), "{key}");
        }
        let mut v = minimal();
        v["billing_case"] = json!("paid");
        let err = parse_document(v, "f.json", 0).unwrap_err();
        assert_eq!(err.path, "billing_case");
        assert!(err.to_string().contains("already_paid"), "{err}");
    }

    #[test]
    fn bad_amount_names_file_document_and_path() {
        let mut v = minimal();
        v["lines"][0]["net_amount"] = json!("ten");
        let err = parse_document(v, "f.json", 3).unwrap_err();
        assert_eq!(err.path, "lines[0].net_amount");
        let text = err.to_string();
        assert!(
            text.contains("f.json") && text.contains("F1 (id d1)"),
            "{text}"
        );
    }

    #[test]
    fn numeric_amount_is_refused_with_the_fix() {
        let mut v = minimal();
        v["totals"]["gross"] = json!(12.0);
        let err = parse_document(v, "f.json", 0).unwrap_err();
        assert_eq!(err.path, "totals.gross");
        assert!(err.message.contains("JSON strings"), "{}", err.message);
    }

    #[test]
    fn control_characters_in_id_or_number_are_refused_and_shown_escaped() {
        let mut v = minimal();
        v["id"] = json!("d\n1");
        let err = parse_document(v, "f.json", 0).unwrap_err();
        assert_eq!(
            (err.path.as_str(), err.doc.as_str()),
            ("id", "F1 (id d\\n1)")
        );
        assert!(
            err.message.contains("control character (\\n)"),
            "{}",
            err.message
        );
        let mut v = minimal();
        v["number"] = json!("F\u{0}1");
        let err = parse_document(v, "f.json", 0).unwrap_err();
        assert_eq!(err.path, "number");
        assert_eq!(raw_identity(&json!({"id": "a\tb"}), 0).0, "a\\tb");
    }

    #[test]
    fn notes_as_a_plain_string_are_one_note_without_a_code() {
        let mut v = minimal();
        v["notes"] = json!("Merci de votre confiance");
        let doc = parse_document(v.clone(), "f.json", 0).unwrap();
        assert_eq!(doc.notes.len(), 1);
        assert_eq!(doc.notes[0].subject_code, None);
        assert_eq!(doc.notes[0].text, "Merci de votre confiance");
        v["notes"] = json!([{"subject_code": "PMT", "text": "40 EUR"}]);
        let doc = parse_document(v.clone(), "f.json", 0).unwrap();
        assert_eq!(doc.notes[0].subject_code.as_deref(), Some("PMT"));
        v["notes"] = json!(null);
        assert!(parse_document(v.clone(), "f.json", 0)
            .unwrap()
            .notes
            .is_empty());
        v["notes"] = json!(42);
        let err = parse_document(v, "f.json", 0).unwrap_err();
        assert_eq!(err.path, "notes");
        assert!(err.message.contains("a text, or a list"), "{}", err.message);
    }

    #[test]
    fn document_without_id_is_named_by_position() {
        let mut v = minimal();
        v.as_object_mut().unwrap().remove("id");
        v.as_object_mut().unwrap().remove("number");
        let err = parse_document(v, "f.json", 4).unwrap_err();
        assert_eq!(err.doc, "#4");
        assert_eq!(err.path, "id");
    }
}
