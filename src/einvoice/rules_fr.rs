//! The French core invoice's own rules (BR-FR, the rules the approved platforms run after
//! EN 16931 since the reform), checked by facto on what it writes in the French core profile
//! (`Profile::FrenchCore`) before any document leaves: one function per rule id, each problem
//! naming the rule as the official schematrons print it, the field and the fix. The rules on the
//! document's own terms (dates, type code, billing case, BAR note, amounts, the BR-FR-CO
//! coherence rules) are in `terms`.

use super::{note_has_code, siren, InvoiceView, FRENCH_PROCESSES};
use crate::model::{ElectronicAddress, Party};
use crate::problem::Problem;

mod terms;
pub use terms::{
    br_fr_03, br_fr_04, br_fr_20, br_fr_31, br_fr_32, br_fr_bd_02, br_fr_co_04, br_fr_co_07,
    br_fr_co_08, br_fr_co_09, br_fr_co_12, br_fr_dec_01, br_fr_mv_02, BAR_VALUES,
    FRENCH_TYPE_CODES,
};

fn p(rule: &str, field: impl Into<String>, what: impl std::fmt::Display, fix: &str) -> Problem {
    Problem::new(rule, field, format!("{rule}: {what}"), fix)
}

fn digits(s: &str, n: usize) -> bool {
    s.len() == n && s.bytes().all(|b| b.is_ascii_digit())
}

/// The BR-FR rules a document written in the French core breaks, in the order of their ids.
pub fn french_core(v: &InvoiceView<'_>) -> Vec<Problem> {
    let mut out = Vec::new();
    br_fr_01(v, &mut out);
    br_fr_02(v, &mut out);
    br_fr_03(v, &mut out);
    br_fr_04(v, &mut out);
    br_fr_05(v, &mut out);
    br_fr_06(v, &mut out);
    br_fr_08(v, &mut out);
    br_fr_09(v, &mut out);
    br_fr_10(v, &mut out);
    br_fr_11(v, &mut out);
    br_fr_12(v, &mut out);
    br_fr_13(v, &mut out);
    br_fr_16(v, &mut out);
    br_fr_20(v, &mut out);
    br_fr_21(v, &mut out);
    br_fr_23(v, &mut out);
    br_fr_25(v, &mut out);
    br_fr_31(v, &mut out);
    br_fr_32(v, &mut out);
    br_fr_co_04(v, &mut out);
    br_fr_co_05(v, &mut out);
    br_fr_co_07(v, &mut out);
    br_fr_co_08(v, &mut out);
    br_fr_co_09(v, &mut out);
    br_fr_co_12(v, &mut out);
    br_fr_dec_01(v, &mut out);
    br_fr_dec_02(v, &mut out);
    br_fr_dec_03(v, &mut out);
    br_fr_mv_02(v, &mut out);
    br_fr_bd_02(v, &mut out);
    out
}

/// The invoice numbers a document writes: its own (BT-1) and the one it corrects (BT-25).
fn numbers<'a>(v: &InvoiceView<'a>) -> Vec<(&'static str, &'static str, &'a str)> {
    let mut out = vec![("number", "BT-1", v.doc.number.as_str())];
    if let Some(prev) = super::present(v.doc.preceding_invoice.as_deref()) {
        out.push(("preceding_invoice", "BT-25", prev));
    }
    out
}

/// BR-FR-01: an invoice number (BT-1, BT-25) has at most 35 characters.
pub fn br_fr_01(v: &InvoiceView<'_>, out: &mut Vec<Problem>) {
    for (field, bt, n) in numbers(v) {
        let len = n.chars().count();
        if len > 35 {
            out.push(p(
                "BR-FR-01",
                field,
                format!(
                    "invoice number ({bt}) `{n}` has {len} characters; the French core takes 35"
                ),
                "number invoices with at most 35 characters in the invoicing application",
            ));
        }
    }
}

/// BR-FR-02: an invoice number (BT-1, BT-25) is made of letters, digits and `+ - _ /` only.
pub fn br_fr_02(v: &InvoiceView<'_>, out: &mut Vec<Problem>) {
    for (field, bt, n) in numbers(v) {
        let ok = !n.is_empty()
            && n.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"+-_/".contains(&b));
        if !ok {
            out.push(p(
                "BR-FR-02",
                field,
                format!("invoice number ({bt}) `{n}` has characters other than letters, digits and + - _ /"),
                "number invoices with letters, digits and + - _ / only (no space, no dot) in the invoicing application",
            ));
        }
    }
}

/// BR-FR-05: the notes carry the late-payment fixed indemnity (PMT), the late-payment penalties
/// (PMD) and the early-payment discount or its absence (AAB).
pub fn br_fr_05(v: &InvoiceView<'_>, out: &mut Vec<Problem>) {
    let notes = v.notes();
    let what = [
        ("PMT", "the fixed indemnity for recovery costs"),
        ("PMD", "the late-payment penalties"),
        ("AAB", "the early-payment discount or its absence"),
    ];
    for (code, about) in what {
        if !notes.iter().any(|n| note_has_code(n, code)) {
            out.push(p(
                "BR-FR-05",
                "notes",
                format!("no note with subject code {code} ({about})"),
                "add the note in the invoicing application, or let facto write the legal wording (default notes of the French core)",
            ));
        }
    }
}

/// BR-FR-06: at most one note of each subject code PMT, PMD, AAB and TXD.
pub fn br_fr_06(v: &InvoiceView<'_>, out: &mut Vec<Problem>) {
    let notes = v.notes();
    for code in ["PMT", "PMD", "AAB", "TXD"] {
        let n = notes.iter().filter(|n| note_has_code(n, code)).count();
        if n > 1 {
            out.push(p(
                "BR-FR-06",
                "notes",
                format!("{n} notes with subject code {code}; the French core takes one"),
                "merge them into one note in the invoicing application",
            ));
        }
    }
}

/// Whether the document says it is a B2B invoice (a BAR note `B2B`, BT-21 / BT-22).
fn is_b2b(v: &InvoiceView<'_>) -> bool {
    v.notes()
        .iter()
        .any(|n| note_has_code(n, "BAR") && n.text == "B2B")
}

/// BR-FR-08: the business process (BT-23) is one of the French codes (B1, S1, M1, ...).
pub fn br_fr_08(v: &InvoiceView<'_>, out: &mut Vec<Problem>) {
    let code = v.business_process();
    if !FRENCH_PROCESSES.contains(&code) {
        out.push(p(
            "BR-FR-08",
            "operation_nature",
            format!("business process (BT-23) `{code}` is not a French code (B1, S1, M1, ...)"),
            "set operation_nature (goods, services or mixed) on the document, or a French billing_framework such as S1",
        ));
    }
}

fn siret_rule(v: &InvoiceView<'_>, party: &Party, who: &str, bt: &str, out: &mut Vec<Problem>) {
    let Some(siret) = super::present(party.siret.as_deref()) else {
        return;
    };
    let siren = v.legal_id(party).map(|(_, s)| s).unwrap_or_default();
    if !digits(siret, 14) || !siret.starts_with(siren) || siren.is_empty() {
        out.push(p(
            "BR-FR-09",
            format!("{who}.siret"),
            format!("the {who}'s SIRET ({bt}) `{siret}` is not 14 digits starting with its SIREN `{siren}`"),
            "correct the SIRET or the SIREN of the party in the invoicing application",
        ));
    }
}

/// BR-FR-09: a SIRET (BT-29, BT-46) has 14 digits and starts with the party's SIREN.
pub fn br_fr_09(v: &InvoiceView<'_>, out: &mut Vec<Problem>) {
    siret_rule(v, &v.doc.seller, "seller", "BT-29", out);
    siret_rule(v, &v.doc.buyer, "buyer", "BT-46", out);
}

/// BR-FR-10: the seller's SIREN (BT-30, scheme 0002) is present and has 9 digits.
pub fn br_fr_10(v: &InvoiceView<'_>, out: &mut Vec<Problem>) {
    match siren(&v.doc.seller) {
        Some(s) if digits(s, 9) => {}
        s => out.push(p(
            "BR-FR-10",
            "seller.siren",
            format!(
                "the seller's SIREN (BT-30) `{}` is missing or not 9 digits",
                s.unwrap_or_default()
            ),
            "fill in the company's SIREN (or SIRET) as the seller's in the invoicing application",
        )),
    }
}

/// BR-FR-11: on a B2B invoice (a BAR note `B2B`), the buyer's SIREN (BT-47, scheme 0002) is
/// present and has 9 digits.
pub fn br_fr_11(v: &InvoiceView<'_>, out: &mut Vec<Problem>) {
    if !is_b2b(v) {
        return;
    }
    match siren(&v.doc.buyer) {
        Some(s) if digits(s, 9) => {}
        s => out.push(p(
            "BR-FR-11",
            "buyer.siren",
            format!(
                "on a B2B invoice the buyer's SIREN (BT-47) `{}` is missing or not 9 digits",
                s.unwrap_or_default()
            ),
            "fill in the buyer's SIREN (or SIRET) in the invoicing application",
        )),
    }
}

/// BR-FR-12: the buyer has an electronic address (BT-49).
pub fn br_fr_12(v: &InvoiceView<'_>, out: &mut Vec<Problem>) {
    if v.electronic_address(&v.doc.buyer).is_none() {
        out.push(p(
            "BR-FR-12",
            "buyer.electronic_address",
            "the buyer has no electronic address (BT-49) and no SIREN to address it by",
            "fill in the buyer's electronic address (scheme 0225 and its directory address) or its SIREN",
        ));
    }
}

/// BR-FR-13: the seller has an electronic address (BT-34).
pub fn br_fr_13(v: &InvoiceView<'_>, out: &mut Vec<Problem>) {
    if v.electronic_address(&v.doc.seller).is_none() {
        out.push(p(
            "BR-FR-13",
            "seller.electronic_address",
            "the seller has no electronic address (BT-34) and no SIREN to address it by",
            "fill in the seller's electronic address (scheme 0225) or its SIREN",
        ));
    }
}

/// The VAT rates of France and its overseas departments, past and present, as BR-FR-16 lists
/// them (written without trailing zeros, as `super::number` writes a rate).
const FRENCH_VAT_RATES: [&str; 15] = [
    "0", "10", "13", "20", "8.5", "19.6", "2.1", "5.5", "7", "20.6", "1.05", "0.9", "1.75", "9.2",
    "9.6",
];

/// BR-FR-16: every VAT rate written (BT-119, BT-152) is a French rate.
pub fn br_fr_16(v: &InvoiceView<'_>, out: &mut Vec<Problem>) {
    let mut seen: Vec<String> = Vec::new();
    let rates = v
        .lines
        .iter()
        .map(|l| (l.category, l.rate))
        .chain(v.vat.iter().map(|r| (r.category, r.rate)));
    for (category, rate) in rates {
        // Category O writes no rate.
        let rate = super::number(rate);
        if category == crate::mapping::VatCategory::O
            || FRENCH_VAT_RATES.contains(&rate.as_str())
            || seen.contains(&rate)
        {
            continue;
        }
        out.push(p(
            "BR-FR-16",
            "lines[].tax_code",
            format!("VAT rate {rate} % is not a French rate"),
            "map the tax code to a French rate (20, 10, 5.5, 2.1, ...) in the mapping",
        ));
        seen.push(rate);
    }
}

/// BR-FR-21: on a B2B invoice (a BAR note `B2B`), the buyer's electronic address (BT-49) has
/// scheme 0225 and starts with the buyer's SIREN.
pub fn br_fr_21(v: &InvoiceView<'_>, out: &mut Vec<Problem>) {
    if !is_b2b(v) {
        return;
    }
    let siren = v.legal_id(&v.doc.buyer).map(|(_, s)| s).unwrap_or_default();
    let ok = v
        .electronic_address(&v.doc.buyer)
        .is_some_and(|e| e.scheme == "0225" && e.value.starts_with(siren));
    if !ok {
        out.push(p(
            "BR-FR-21",
            "buyer.electronic_address",
            format!("on a B2B invoice the buyer's electronic address (BT-49) has scheme 0225 and starts with its SIREN `{siren}`"),
            "use the buyer's address in the directory (scheme 0225), or leave it blank for facto to write the SIREN",
        ));
    }
}

/// The electronic addresses a document writes: the seller's (BT-34) and the buyer's (BT-49).
fn addresses(v: &InvoiceView<'_>) -> Vec<(&'static str, &'static str, ElectronicAddress)> {
    let mut out = Vec::new();
    for (who, bt, party) in [
        ("seller", "BT-34", &v.doc.seller),
        ("buyer", "BT-49", &v.doc.buyer),
    ] {
        if let Some(e) = v.electronic_address(party) {
            out.push((who, bt, e));
        }
    }
    out
}

/// BR-FR-23: a directory address (scheme 0225, BT-34 / BT-49) is made of letters, digits and
/// `+ - _ .` only.
pub fn br_fr_23(v: &InvoiceView<'_>, out: &mut Vec<Problem>) {
    for (who, bt, e) in addresses(v) {
        let ok = !e.value.is_empty()
            && e.value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"+-_.".contains(&b));
        if e.scheme == "0225" && !ok {
            out.push(p(
                "BR-FR-23",
                format!("{who}.electronic_address"),
                format!("the {who}'s directory address ({bt}) `{}` has characters other than letters, digits and + - _ .", e.value),
                "use the address as the directory gives it (SIREN[_SIRET[_routing code]])",
            ));
        }
    }
}

/// BR-FR-25: an electronic address (BT-34 / BT-49) has at most 125 characters.
pub fn br_fr_25(v: &InvoiceView<'_>, out: &mut Vec<Problem>) {
    for (who, bt, e) in addresses(v) {
        let len = e.value.chars().count();
        if len > 125 {
            out.push(p(
                "BR-FR-25",
                format!("{who}.electronic_address"),
                format!("the {who}'s electronic address ({bt}) has {len} characters; the French core takes 125"),
                "use the address as the directory gives it",
            ));
        }
    }
}

/// BR-FR-CO-05: a credit note refers to the invoice it corrects (BT-25) with its date (BT-26).
pub fn br_fr_co_05(v: &InvoiceView<'_>, out: &mut Vec<Problem>) {
    if !v.is_credit_note() {
        return;
    }
    if super::blank(v.doc.preceding_invoice.as_deref()) {
        out.push(p(
            "BR-FR-CO-05",
            "preceding_invoice",
            "the credit note does not name the invoice it corrects (BT-25)",
            "fill in preceding_invoice and preceding_invoice_date in the invoicing application",
        ));
    } else if v.preceding_invoice_date().is_none() {
        out.push(p(
            "BR-FR-CO-05",
            "preceding_invoice_date",
            "the credit note does not give the date of the invoice it corrects (BT-26)",
            "fill in preceding_invoice_date in the invoicing application",
        ));
    }
}

/// Whether a written number has at most `dp` decimals and 19 digits in all (BR-FR-DEC).
fn fits(written: &str, dp: usize) -> bool {
    let unsigned = written.trim_start_matches('-');
    let decimals = unsigned.split_once('.').map_or(0, |(_, d)| d.len());
    decimals <= dp && unsigned.bytes().filter(u8::is_ascii_digit).count() <= 19
}

/// BR-FR-DEC-02: an invoiced quantity (BT-129) has at most 4 decimals.
pub fn br_fr_dec_02(v: &InvoiceView<'_>, out: &mut Vec<Problem>) {
    for (i, l) in v.lines.iter().enumerate() {
        let q = super::number(l.line.quantity);
        if !fits(&q, 4) {
            out.push(p(
                "BR-FR-DEC-02",
                format!("lines[{i}].quantity"),
                format!("quantity {q} (BT-129) has more than 4 decimals or 19 digits"),
                "round the quantity to 4 decimals in the invoicing application",
            ));
        }
    }
}

/// BR-FR-DEC-03: a net unit price (BT-146) is not negative and has at most 6 decimals.
pub fn br_fr_dec_03(v: &InvoiceView<'_>, out: &mut Vec<Problem>) {
    for (i, l) in v.lines.iter().enumerate() {
        let price = super::number(l.line.unit_price);
        if price.starts_with('-') || !fits(&price, 6) {
            out.push(p(
                "BR-FR-DEC-03",
                format!("lines[{i}].unit_price"),
                format!("unit price {price} (BT-146) is negative, or has more than 6 decimals or 19 digits"),
                "give the line a positive unit price of at most 6 decimals (a discount is a negative quantity or an allowance)",
            ));
        }
    }
}
