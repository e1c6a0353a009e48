//! The BR-FR rules on the document's own terms: its dates, its type code (BT-3) and billing case
//! (BT-23), the BAR note and the amounts as written, with the coherence rules (BR-FR-CO-*)
//! that tie them together. One function per rule id, as in `rules_fr`.

use chrono::{Datelike, NaiveDate};
use rust_decimal::Decimal;

use super::{fits, p};
use crate::einvoice::{amount, cents, note_has_code, InvoiceView};
use crate::problem::Problem;

/// The dates a document writes, with their field and business term.
fn dates(v: &InvoiceView<'_>) -> Vec<(&'static str, &'static str, NaiveDate)> {
    let d = v.doc;
    let mut out = vec![("issue_date", "BT-2", d.issue_date)];
    out.extend(d.due_date.map(|x| ("due_date", "BT-9", x)));
    out.extend(
        v.preceding_invoice_date()
            .map(|x| ("preceding_invoice_date", "BT-26", x)),
    );
    out.extend(d.delivery_date.map(|x| ("delivery_date", "BT-72", x)));
    out
}

/// BR-FR-03: every date written (BT-2, BT-9, BT-26, BT-72) is in the years 2000 to 2099.
pub fn br_fr_03(v: &InvoiceView<'_>, out: &mut Vec<Problem>) {
    for (field, bt, day) in dates(v) {
        if !(2000..=2099).contains(&day.year()) {
            out.push(p(
                "BR-FR-03",
                field,
                format!("the date {day} ({bt}) is not in the years 2000 to 2099"),
                "correct the date in the invoicing application",
            ));
        }
    }
}

/// The document type codes (BT-3) the French core accepts (BR-FR-04).
pub const FRENCH_TYPE_CODES: [&str; 16] = [
    "380", "389", "393", "501", "386", "500", "384", "471", "472", "473", "261", "262", "381",
    "396", "502", "503",
];

/// BR-FR-04: the type code (BT-3) is in the French core's list.
pub fn br_fr_04(v: &InvoiceView<'_>, out: &mut Vec<Problem>) {
    let code = v.type_code();
    if !FRENCH_TYPE_CODES.contains(&code) {
        out.push(p(
            "BR-FR-04",
            "type_code",
            format!("type code (BT-3) `{code}` is not one the French core accepts (380, 381, 384, 386, ...)"),
            "leave type_code out (380 an invoice, 381 a credit note), or set 384 (corrective) or 386 (prepayment)",
        ));
    }
}

/// The values a BAR note (the processing rule, BT-22) may take (BR-FR-20, BR-FR-31).
pub const BAR_VALUES: [&str; 6] = [
    "B2B",
    "B2BINT",
    "B2C",
    "B2CINT",
    "OUTOFSCOPE",
    "ARCHIVEONLY",
];

/// BR-FR-20: a note with subject code BAR says one of the processing rules (B2B, B2BINT, B2C,
/// B2CINT, OUTOFSCOPE, ARCHIVEONLY), exactly as written.
pub fn br_fr_20(v: &InvoiceView<'_>, out: &mut Vec<Problem>) {
    for n in v.notes().iter().filter(|n| note_has_code(n, "BAR")) {
        if !BAR_VALUES.contains(&n.text.as_str()) {
            out.push(p(
                "BR-FR-20",
                "notes",
                format!("the BAR note says `{}`, not one of {}", n.text, BAR_VALUES.join(", ")),
                "write the processing rule alone (B2B, B2BINT, B2C, ...) as the BAR note's text, or drop the note",
            ));
        }
    }
}

/// BR-FR-31: at most one BAR note with a processing rule.
pub fn br_fr_31(v: &InvoiceView<'_>, out: &mut Vec<Problem>) {
    let notes = v.notes();
    let n = notes
        .iter()
        .filter(|n| note_has_code(n, "BAR") && BAR_VALUES.contains(&n.text.as_str()))
        .count();
    if n > 1 {
        out.push(p(
            "BR-FR-31",
            "notes",
            format!("{n} BAR notes; the French core takes one processing rule"),
            "keep one BAR note",
        ));
    }
}

/// BR-FR-CO-04: a corrective invoice (384) names the one invoice it corrects (BT-25) with its
/// date (BT-26).
pub fn br_fr_co_04(v: &InvoiceView<'_>, out: &mut Vec<Problem>) {
    if v.type_code() != "384" {
        return;
    }
    if crate::einvoice::blank(v.doc.preceding_invoice.as_deref()) {
        out.push(p(
            "BR-FR-CO-04",
            "preceding_invoice",
            "the corrective invoice (384) does not name the invoice it corrects (BT-25)",
            "fill in preceding_invoice and preceding_invoice_date in the invoicing application",
        ));
    } else if v.preceding_invoice_date().is_none() {
        out.push(p(
            "BR-FR-CO-04",
            "preceding_invoice_date",
            "the corrective invoice (384) does not give the date of the invoice it corrects (BT-26)",
            "fill in preceding_invoice_date in the invoicing application",
        ));
    }
}

/// Whether the business process (BT-23) as written says the invoice is already paid.
fn already_paid(v: &InvoiceView<'_>) -> bool {
    matches!(v.business_process(), "B2" | "S2" | "M2")
}

/// BR-FR-CO-07: the due date (BT-9) is not before the issue date (BT-2), except on a
/// prepayment invoice (386) or an invoice already paid (B2, S2, M2).
pub fn br_fr_co_07(v: &InvoiceView<'_>, out: &mut Vec<Problem>) {
    let Some(due) = v.doc.due_date else {
        return;
    };
    if due < v.doc.issue_date && v.type_code() != "386" && !already_paid(v) {
        out.push(p(
            "BR-FR-CO-07",
            "due_date",
            format!("the due date {due} (BT-9) is before the issue date {} (BT-2)", v.doc.issue_date),
            "correct the due date in the invoicing application (on an invoice paid at issue, set billing_case already_paid)",
        ));
    }
}

/// BR-FR-CO-08: a final invoice after down payments (B4, S4, M4) is not itself a prepayment
/// invoice (386).
pub fn br_fr_co_08(v: &InvoiceView<'_>, out: &mut Vec<Problem>) {
    let process = v.business_process();
    if matches!(process, "B4" | "S4" | "M4") && v.type_code() == "386" {
        out.push(p(
            "BR-FR-CO-08",
            "type_code",
            format!("the final invoice after down payments ({process}, BT-23) has the type of a prepayment invoice (386, BT-3)"),
            "leave type_code out on the final invoice, or drop billing_case final_after_down_payments on a prepayment invoice",
        ));
    }
}

/// BR-FR-CO-09: an invoice already paid (B2, S2, M2) has its paid amount (BT-113) equal to the
/// gross (BT-112), nothing left to pay (BT-115), and the date of payment as its due date (BT-9).
pub fn br_fr_co_09(v: &InvoiceView<'_>, out: &mut Vec<Problem>) {
    if !already_paid(v) {
        return;
    }
    let t = &v.doc.totals;
    let process = v.business_process();
    if cents(t.paid) != cents(t.gross) {
        out.push(p(
            "BR-FR-CO-09",
            "totals.paid",
            format!(
                "the invoice is already paid ({process}, BT-23) but the amount paid {} (BT-113) is not the gross {} (BT-112)",
                amount(t.paid),
                amount(t.gross)
            ),
            "give the amount paid in full as totals.paid, or drop billing_case already_paid",
        ));
    }
    if !cents(t.due).is_zero() {
        out.push(p(
            "BR-FR-CO-09",
            "totals.due",
            format!(
                "the invoice is already paid ({process}, BT-23) but {} is due (BT-115)",
                amount(t.due)
            ),
            "set totals.due to 0, or drop billing_case already_paid",
        ));
    }
    if v.doc.due_date.is_none() {
        out.push(p(
            "BR-FR-CO-09",
            "due_date",
            format!("the invoice is already paid ({process}, BT-23) but has no due date (BT-9), which gives the date of payment"),
            "set due_date to the date of payment",
        ));
    }
}

/// BR-FR-CO-12: an invoice in another currency than the euro gives its VAT in euros too (BT-6,
/// BT-111), which facto does not write: the French core takes invoices in EUR.
pub fn br_fr_co_12(v: &InvoiceView<'_>, out: &mut Vec<Problem>) {
    if v.doc.currency != "EUR" {
        out.push(p(
            "BR-FR-CO-12",
            "currency",
            format!("the invoice is in {}; the French core asks for its VAT in euros too (BT-6, BT-111), which facto does not write", v.doc.currency),
            "invoice in EUR for the French core",
        ));
    }
}

/// The amounts a document writes, with their field and business term.
fn amounts(v: &InvoiceView<'_>) -> Vec<(String, &'static str, Decimal)> {
    let t = &v.doc.totals;
    let mut out = Vec::new();
    for (i, l) in v.lines.iter().enumerate() {
        out.push((
            format!("lines[{i}].net_amount"),
            "BT-131",
            l.line.net_amount,
        ));
        if let Some(disc) = l.line.discount.filter(|d| !d.is_zero()) {
            out.push((format!("lines[{i}].discount"), "BT-136", disc));
        }
    }
    for r in &v.vat {
        out.push(("tax_breakdown[].base".to_owned(), "BT-116", r.base));
        out.push(("tax_breakdown[].amount".to_owned(), "BT-117", r.amount));
    }
    out.push(("lines[].net_amount".to_owned(), "BT-106", v.line_total));
    for (field, bt, value) in [
        ("totals.net", "BT-109", t.net),
        ("totals.tax", "BT-110", t.tax),
        ("totals.gross", "BT-112", t.gross),
        ("totals.paid", "BT-113", t.paid),
        ("totals.due", "BT-115", t.due),
    ] {
        out.push((field.to_owned(), bt, value));
    }
    out
}

/// BR-FR-DEC-01: an amount written has at most 2 decimals and 19 digits in all (facto writes
/// amounts to the cent, so only the digits can break it).
pub fn br_fr_dec_01(v: &InvoiceView<'_>, out: &mut Vec<Problem>) {
    for (field, bt, value) in amounts(v) {
        let written = amount(value);
        if !fits(&written, 2) {
            out.push(p(
                "BR-FR-DEC-01",
                field,
                format!("amount {written} ({bt}) has more than 19 digits"),
                "correct the amount in the invoicing application",
            ));
        }
    }
}

/// BR-FR-32 (UBL's rules): a legal identifier written with scheme 0002 (the SIREN, BT-30 /
/// BT-47) has 9 digits. The seller's is BR-FR-10 too; this names the buyer's outside B2B.
pub fn br_fr_32(v: &InvoiceView<'_>, out: &mut Vec<Problem>) {
    for (who, bt, party) in [
        ("seller", "BT-30", &v.doc.seller),
        ("buyer", "BT-47", &v.doc.buyer),
    ] {
        let Some(("0002", id)) = v.legal_id(party) else {
            continue;
        };
        if !super::digits(id, 9) {
            out.push(p(
                "BR-FR-32",
                format!("{who}.siren"),
                format!("the {who}'s SIREN ({bt}) `{id}` is not 9 digits"),
                "correct the SIREN (9 digits, no space) of the party in the invoicing application",
            ));
        }
    }
}

/// BR-FR-MV-02: a multi-vendor invoice (BT-23 `B8`, `S8`, `M8`) has GROUP lines, one per
/// vendor, which facto does not write: such a document is held.
pub fn br_fr_mv_02(v: &InvoiceView<'_>, out: &mut Vec<Problem>) {
    let process = v.business_process();
    if matches!(process, "B8" | "S8" | "M8") {
        out.push(p(
            "BR-FR-MV-02",
            "billing_framework",
            format!("business process (BT-23) `{process}` is a multi-vendor invoice, whose GROUP lines facto does not write"),
            "invoice each vendor's sale on its own (B1, S1, M1 from operation_nature)",
        ));
    }
}

/// BR-FR-BD-02: an invoice with a business process `B9`, `S9`, `M9` (self-billed on behalf of
/// several parties) has two GROUP lines, which facto does not write: such a document is held.
pub fn br_fr_bd_02(v: &InvoiceView<'_>, out: &mut Vec<Problem>) {
    let process = v.business_process();
    if matches!(process, "B9" | "S9" | "M9") {
        out.push(p(
            "BR-FR-BD-02",
            "billing_framework",
            format!("business process (BT-23) `{process}` asks for two GROUP lines, which facto does not write"),
            "invoice the sale on its own (B1, S1, M1 from operation_nature)",
        ));
    }
}
