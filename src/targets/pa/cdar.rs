//! Reading a lifecycle status (CDAR, "compte rendu de cycle de vie", UN/CEFACT
//! CrossDomainAcknowledgementAndResponse D22B) as the PA delivers it about one of facto's
//! invoices: which invoice (BT-1, type, BT-2 date, seller SIREN), which status (200 Déposée …
//! 213 Rejetée, 220, 221) with its reasons, expected actions and amounts, when, and in which
//! phase. Where each value sits is in `../shared/reference/notes/fr-pa-flow-api.md` §6 (the
//! FNFE "MDT" numbers). Pure: bytes in, a typed status or an error naming the field out.

use std::borrow::Cow;

use chrono::{NaiveDate, NaiveDateTime};
use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;
use rust_decimal::Decimal;

/// Most nested elements a CDAR may open (the real ones use 7): a bound for hostile input.
const MAX_DEPTH: usize = 64;

/// Errors reading a CDAR.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CdarError {
    /// The bytes are not well-formed XML (or not UTF-8).
    #[error("the CDAR is not well-formed XML ({0}); ask the PA for the flow's original file")]
    Xml(String),
    /// The root element is another document.
    #[error("the file is a {0}, not a CDAR (rsm:CrossDomainAcknowledgementAndResponse)")]
    NotCdar(String),
    /// A value the status cannot do without is absent.
    #[error("the CDAR has no {0}; the PA must send it (XP Z12-012)")]
    Missing(&'static str),
    /// A value is not in its format or list.
    #[error("the CDAR's {field} is `{value}`: expected {expected}")]
    Invalid {
        /// Which value (name and element).
        field: &'static str,
        /// As read.
        value: String,
        /// What it must be.
        expected: &'static str,
    },
}

/// The lifecycle status codes (MDT-105) and their labels (MDT-106).
pub const STATUSES: [(u16, &str); 16] = [
    (200, "Déposée"),
    (201, "Émise"),
    (202, "Reçue"),
    (203, "Mise à disposition"),
    (204, "Prise en charge"),
    (205, "Approuvée"),
    (206, "Approuvée partiellement"),
    (207, "En litige"),
    (208, "Suspendue"),
    (209, "Complétée"),
    (210, "Refusée"),
    (211, "Paiement transmis"),
    (212, "Encaissée"),
    (213, "Rejetée"),
    (220, "Annulée"),
    (221, "Erreur de routage"),
];

/// A lifecycle status code (MDT-105), one of [`STATUSES`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct StatusCode(u16);

impl StatusCode {
    /// The code when it is one of [`STATUSES`].
    pub fn new(code: u16) -> Option<StatusCode> {
        STATUSES
            .iter()
            .any(|(c, _)| *c == code)
            .then_some(StatusCode(code))
    }

    /// The number (`205`).
    pub fn code(self) -> u16 {
        self.0
    }

    /// The reform's label (`Approuvée`).
    pub fn label(self) -> &'static str {
        STATUSES
            .iter()
            .find(|(c, _)| *c == self.0)
            .map_or("?", |(_, l)| l)
    }

    /// 210 Refusée and 213 Rejetée: final; the invoice is cancelled with a credit note and
    /// issued again under a new number.
    pub fn is_terminal(self) -> bool {
        matches!(self.0, 210 | 213)
    }

    /// The statuses that wait for the seller: 206, 207, 208 (the buyer's reasons and expected
    /// action) and 221 (the buyer's directory line to check).
    pub fn needs_a_human(self) -> bool {
        matches!(self.0, 206..=208 | 221)
    }
}

impl std::fmt::Display for StatusCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.0, self.label())
    }
}

/// The phase of a status (MDT-77).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Phase {
    /// `305`: the invoice's transmission (200–203, 213).
    Transmission,
    /// `23`: its processing by the buyer (204–212).
    Processing,
    /// Another code, kept as read.
    Other(String),
}

/// An amount of a status detail (`SpecifiedDocumentCharacteristic`), e.g. 212's `MEN`
/// (collected, per VAT rate).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Characteristic {
    /// `TypeCode` (MDT-207): `MEN` collected, `DIV`/`DVA` a disputed value and its right one.
    pub type_code: Option<String>,
    /// The business term concerned (MDT-206), e.g. `BT-152`.
    pub id: Option<String>,
    /// Amount (MDT-215).
    pub amount: Option<Decimal>,
    /// Its currency.
    pub currency: Option<String>,
    /// Percent (MDT-224): the VAT rate of a `MEN` amount.
    pub percent: Option<Decimal>,
}

/// One detail of a status (`SpecifiedDocumentStatus`): why, and what the buyer expects.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Detail {
    /// Reason code (MDT-113), e.g. `TX_TVA_ERR`.
    pub reason_code: Option<String>,
    /// Reason text (MDT-114).
    pub reason: Option<String>,
    /// Expected action code (MDT-121): NOA, PIN, NIN, CNF, CNP, CNA, OTH.
    pub action_code: Option<String>,
    /// Expected action text (MDT-122).
    pub action: Option<String>,
    /// Detail number (MDT-124-2).
    pub sequence: Option<String>,
    /// Values and amounts.
    pub characteristics: Vec<Characteristic>,
}

/// One lifecycle status about one invoice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CdarStatus {
    /// The CDAR's own id (MDT-4): the same status delivered twice carries the same.
    pub document_id: Option<String>,
    /// Invoice number, BT-1 (MDT-87).
    pub invoice_number: String,
    /// Invoice type, BT-3 (MDT-91).
    pub invoice_type: Option<String>,
    /// Invoice date, BT-2 (MDT-100).
    pub invoice_date: Option<NaiveDate>,
    /// The invoice issuer's (the seller's) SIREN (MDT-129).
    pub issuer_siren: Option<String>,
    /// The status (MDT-105).
    pub code: StatusCode,
    /// The label as the CDAR spells it (MDT-106).
    pub label: Option<String>,
    /// The UN/CEFACT status code (MDT-88), secondary.
    pub cefact_status: Option<String>,
    /// Reasons, actions and amounts.
    pub details: Vec<Detail>,
    /// When the status was set (MDT-78).
    pub status_at: Option<NaiveDateTime>,
    /// Transmission or processing (MDT-77).
    pub phase: Option<Phase>,
}

impl CdarStatus {
    /// The reasons and expected actions, as the accountant reads them: `TX_TVA_ERR: Taux de
    /// TVA erroné; expected action NIN: Créer une Facture Rectificative`.
    pub fn reasons(&self) -> String {
        let mut parts = Vec::new();
        for d in &self.details {
            let reason = match (&d.reason_code, &d.reason) {
                (Some(c), Some(r)) => Some(format!("{c}: {}", r.trim())),
                (Some(c), None) => Some(c.clone()),
                (None, Some(r)) => Some(r.trim().to_owned()),
                (None, None) => None,
            };
            parts.extend(reason);
            let action = match (&d.action_code, &d.action) {
                (Some(c), Some(a)) => Some(format!("expected action {c}: {}", a.trim())),
                (Some(c), None) => Some(format!("expected action {c}")),
                (None, Some(a)) => Some(format!("expected action: {}", a.trim())),
                (None, None) => None,
            };
            parts.extend(action);
        }
        parts.join("; ")
    }

    /// The amounts collected (`MEN`) per VAT rate: `12000 EUR at 20.00 %`.
    pub fn collected(&self) -> Vec<String> {
        self.details
            .iter()
            .flat_map(|d| &d.characteristics)
            .filter(|c| c.type_code.as_deref() == Some("MEN"))
            .filter_map(|c| {
                let amount = c.amount?;
                let cur = c
                    .currency
                    .as_deref()
                    .map(|x| format!(" {x}"))
                    .unwrap_or_default();
                let rate = c.percent.map(|p| format!(" at {p} %")).unwrap_or_default();
                Some(format!("{amount}{cur}{rate}"))
            })
            .collect()
    }
}

/// What one `ReferenceReferencedDocument` holds while it is read.
#[derive(Default)]
struct Reference {
    number: Option<String>,
    type_code: Option<String>,
    date: Option<String>,
    siren: Option<String>,
    code: Option<String>,
    label: Option<String>,
    cefact: Option<String>,
    details: Vec<Detail>,
}

/// Parses a CDAR: one status per referenced invoice (a "MULTI" CDAR references several).
///
/// # Errors
///
/// Not well-formed XML, not a CDAR, an invoice reference without its number or status code,
/// or a value out of its format (a date, a status code, an amount).
pub fn parse(bytes: &[u8]) -> Result<Vec<CdarStatus>, CdarError> {
    let text = std::str::from_utf8(bytes).map_err(|e| CdarError::Xml(e.to_string()))?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut reader = Reader::from_str(text);
    let mut stack: Vec<String> = Vec::new();
    let mut buf = String::new();
    // The attribute that matters on the element being read (schemeID, currencyID).
    let mut attr: Vec<Option<String>> = Vec::new();
    let mut document_id = None;
    let mut phase = None;
    let mut status_at = None;
    let mut refs: Vec<Reference> = Vec::new();
    loop {
        let ev = reader
            .read_event()
            .map_err(|e| CdarError::Xml(format!("at byte {}: {e}", reader.buffer_position())))?;
        match ev {
            Event::Start(e) => {
                let name = local(&e);
                if stack.is_empty() && name != "CrossDomainAcknowledgementAndResponse" {
                    return Err(CdarError::NotCdar(name));
                }
                if stack.len() >= MAX_DEPTH {
                    return Err(CdarError::Xml(format!(
                        "more than {MAX_DEPTH} nested elements"
                    )));
                }
                let a = ["schemeID", "currencyID"]
                    .iter()
                    .find_map(|k| e.try_get_attribute(k).ok().flatten())
                    .and_then(|a| {
                        a.normalized_value(quick_xml::XmlVersion::Implicit1_0)
                            .ok()
                            .map(Cow::into_owned)
                    });
                stack.push(name);
                attr.push(a);
                buf.clear();
                on_open(&stack, &mut refs);
            }
            Event::Empty(e) if stack.is_empty() => return Err(CdarError::NotCdar(local(&e))),
            Event::Text(t) => buf.push_str(&t.xml10_content()),
            Event::CData(t) => buf.push_str(&t.xml10_content()),
            Event::GeneralRef(r) => {
                let raw = format!("&{};", r.xml10_content());
                let ch = quick_xml::escape::unescape(&raw)
                    .map_err(|e| CdarError::Xml(format!("entity {raw}: {e}")))?;
                buf.push_str(&ch);
            }
            Event::End(_) => {
                let value = buf.trim().to_owned();
                buf.clear();
                let a = attr.pop().flatten();
                let path = stack.join("/");
                stack.pop();
                on_close(
                    &path,
                    value,
                    a,
                    &mut refs,
                    &mut document_id,
                    &mut phase,
                    &mut status_at,
                )?;
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if refs.is_empty() {
        return Err(CdarError::Missing(
            "invoice reference (rsm:AcknowledgementDocument/ram:ReferenceReferencedDocument)",
        ));
    }
    refs.into_iter()
        .map(|r| {
            let number = r
                .number
                .filter(|n| !n.is_empty())
                .ok_or(CdarError::Missing(
                    "invoice number, BT-1 (MDT-87, ram:IssuerAssignedID)",
                ))?;
            let raw = r.code.ok_or(CdarError::Missing(
                "status code (MDT-105, ram:ProcessConditionCode)",
            ))?;
            let code =
                raw.parse::<u16>()
                    .ok()
                    .and_then(StatusCode::new)
                    .ok_or(CdarError::Invalid {
                        field: "status code (MDT-105, ram:ProcessConditionCode)",
                        value: raw.clone(),
                        expected: "one of 200…213, 220, 221",
                    })?;
            let invoice_date = r
                .date
                .map(|d| {
                    NaiveDate::parse_from_str(&d, "%Y%m%d").map_err(|_| CdarError::Invalid {
                        field: "invoice date, BT-2 (MDT-100)",
                        value: d.clone(),
                        expected: "a date YYYYMMDD (format 102)",
                    })
                })
                .transpose()?;
            Ok(CdarStatus {
                document_id: document_id.clone(),
                invoice_number: number,
                invoice_type: r.type_code,
                invoice_date,
                issuer_siren: r.siren,
                code,
                label: r.label,
                cefact_status: r.cefact,
                details: r.details,
                status_at,
                phase: phase.clone(),
            })
        })
        .collect()
}

/// An element's local name (without its namespace prefix).
fn local(e: &BytesStart<'_>) -> String {
    e.local_name().as_ref().to_owned()
}

const REF: &str = "AcknowledgementDocument/ReferenceReferencedDocument";

/// Opens the structures the closing tags fill.
fn on_open(stack: &[String], refs: &mut Vec<Reference>) {
    let path = stack.join("/");
    if path.ends_with(REF) {
        refs.push(Reference::default());
    } else if path.ends_with(&format!("{REF}/SpecifiedDocumentStatus")) {
        if let Some(r) = refs.last_mut() {
            r.details.push(Detail::default());
        }
    } else if path.ends_with(&format!(
        "{REF}/SpecifiedDocumentStatus/SpecifiedDocumentCharacteristic"
    )) {
        if let Some(d) = refs.last_mut().and_then(|r| r.details.last_mut()) {
            d.characteristics.push(Characteristic {
                type_code: None,
                id: None,
                amount: None,
                currency: None,
                percent: None,
            });
        }
    }
}

fn decimal(field: &'static str, v: &str) -> Result<Decimal, CdarError> {
    v.parse::<Decimal>().map_err(|_| CdarError::Invalid {
        field,
        value: v.to_owned(),
        expected: "a decimal number",
    })
}

/// Stores the value of a closing element where it belongs.
#[allow(clippy::too_many_arguments)]
fn on_close(
    path: &str,
    value: String,
    attr: Option<String>,
    refs: &mut [Reference],
    document_id: &mut Option<String>,
    phase: &mut Option<Phase>,
    status_at: &mut Option<NaiveDateTime>,
) -> Result<(), CdarError> {
    let some = |v: String| (!v.is_empty()).then_some(v);
    if path == "CrossDomainAcknowledgementAndResponse/ExchangedDocument/ID" {
        *document_id = some(value);
        return Ok(());
    }
    if path == "CrossDomainAcknowledgementAndResponse/AcknowledgementDocument/TypeCode" {
        *phase = Some(match value.as_str() {
            "305" => Phase::Transmission,
            "23" => Phase::Processing,
            _ => Phase::Other(value),
        });
        return Ok(());
    }
    if path
        == "CrossDomainAcknowledgementAndResponse/AcknowledgementDocument/IssueDateTime/DateTimeString"
    {
        *status_at = Some(
            NaiveDateTime::parse_from_str(&value, "%Y%m%d%H%M%S").map_err(|_| {
                CdarError::Invalid {
                    field: "status date (MDT-78)",
                    value: value.clone(),
                    expected: "a time YYYYMMDDHHMMSS (format 204)",
                }
            })?,
        );
        return Ok(());
    }
    let Some(at) = path.find(REF) else {
        return Ok(());
    };
    let rest = &path[at + REF.len()..];
    let Some(r) = refs.last_mut() else {
        return Ok(());
    };
    match rest {
        "/IssuerAssignedID" => r.number = some(value),
        "/StatusCode" => r.cefact = some(value),
        "/TypeCode" => r.type_code = some(value),
        "/FormattedIssueDateTime/DateTimeString" => r.date = some(value),
        "/ProcessConditionCode" => r.code = some(value),
        "/ProcessCondition" => r.label = some(value),
        "/IssuerTradeParty/GlobalID" if attr.as_deref() == Some("0002") => r.siren = some(value),
        _ => {
            let Some(d) = r.details.last_mut() else {
                return Ok(());
            };
            match rest {
                "/SpecifiedDocumentStatus/ReasonCode" => d.reason_code = some(value),
                "/SpecifiedDocumentStatus/Reason" => d.reason = some(value),
                "/SpecifiedDocumentStatus/RequestedActionCode" => d.action_code = some(value),
                "/SpecifiedDocumentStatus/RequestedAction" => d.action = some(value),
                "/SpecifiedDocumentStatus/SequenceNumeric" => d.sequence = some(value),
                _ => {
                    let Some(c) = d.characteristics.last_mut() else {
                        return Ok(());
                    };
                    match rest
                        .strip_prefix("/SpecifiedDocumentStatus/SpecifiedDocumentCharacteristic")
                    {
                        Some("/TypeCode") => c.type_code = some(value),
                        Some("/ID") => c.id = some(value),
                        Some("/ValueAmount") => {
                            c.amount = Some(decimal("amount (MDT-215, ram:ValueAmount)", &value)?);
                            c.currency = attr;
                        }
                        Some("/ValuePercent") => {
                            c.percent =
                                Some(decimal("percent (MDT-224, ram:ValuePercent)", &value)?);
                        }
                        _ => {}
                    }
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
#[path = "cdar_tests.rs"]
mod tests;
