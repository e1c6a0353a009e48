//! EN 16931 business rules that apply to the data facto carries (BR-*, BR-CO-*, per-category
//! BR-S/Z/E/AE/K/G/O-*, BR-DEC-*), checked before any document is sent, as the official
//! validator checks them; and Chorus Pro's own rules (invoice number length, SIRET and country
//! of the billing and delivery addresses, service code / engagement number). Every problem
//! carries its rule id, so a document Chorus would reject is held with the rule named.

use rust_decimal::Decimal;

use super::codes::{subject_code_ok, vat_prefix_ok};
use super::{blank, cents, present, InvoiceView};
use crate::mapping::VatCategory;
use crate::model::{Address, DocKind, Party};
use crate::problem::Problem;

fn p(rule: &str, field: impl Into<String>, what: impl std::fmt::Display, fix: &str) -> Problem {
    Problem::new(rule, field, format!("{rule}: {what}"), fix)
}

fn decimals(d: Decimal) -> u32 {
    d.normalize().scale()
}

fn country_ok(c: &str) -> bool {
    c.len() == 2 && c.bytes().all(|b| b.is_ascii_uppercase())
}

fn party_rules(
    out: &mut Vec<Problem>,
    party: &Party,
    who: &str,
    name_rule: &str,
    addr_rule: &str,
    country_rule: &str,
) {
    if blank(Some(&party.name)) {
        out.push(p(
            name_rule,
            format!("{who}.name"),
            format!("the {who}'s name is missing"),
            "fill in the name in the invoicing application",
        ));
    }
    match &party.billing_address {
        None => out.push(p(
            addr_rule,
            format!("{who}.billing_address"),
            format!("the {who}'s postal address is missing"),
            "fill in the address in the invoicing application",
        )),
        Some(a) => match present(a.country_code.as_deref()) {
            None => out.push(p(
                country_rule,
                format!("{who}.billing_address.country_code"),
                format!("the {who}'s address has no country code"),
                "set the ISO 3166 country code (FR)",
            )),
            Some(c) if !country_ok(c) => out.push(p(
                "BR-CL-14",
                format!("{who}.billing_address.country_code"),
                format!("`{c}` is not an ISO 3166-1 alpha-2 country code"),
                "use two capital letters (FR, DE, ...)",
            )),
            _ => {}
        },
    }
    if let Some(vat) = present(party.vat_id.as_deref()).filter(|v| !vat_prefix_ok(v)) {
        out.push(p(
            "BR-CO-09",
            format!("{who}.vat_id"),
            format!("the {who}'s VAT number `{vat}` does not start with an ISO 3166 country code"),
            "write the VAT number with its country prefix (FR12345678901)",
        ));
    }
}

/// BR-CL-08: a note's subject code, and what UBL reads as one (`#XYZ#` at the start of its
/// text), must be UNCL 4451 codes.
fn note_rules(out: &mut Vec<Problem>, notes: &[crate::model::Note]) {
    for (i, n) in notes.iter().enumerate() {
        let code = present(n.subject_code.as_deref());
        let written = super::ubl::note_text(n);
        let read = written
            .split_once('#')
            .and_then(|(_, rest)| rest.split_once('#'))
            .map(|(mid, _)| mid)
            .filter(|mid| mid.chars().count() == 3);
        let bad = code
            .filter(|c| !subject_code_ok(c))
            .or(read.filter(|m| !subject_code_ok(m)));
        if let Some(bad) = bad {
            out.push(p(
                "BR-CL-08",
                format!("notes[{i}].subject_code"),
                format!("`{bad}` is not a UNCL 4451 subject code"),
                "use a code such as PMT, PMD, AAB or BAR, or no subject code (and no `#XYZ#` in the text)",
            ));
        }
    }
}

/// The type codes (BT-3) facto writes for each kind: an invoice (380), a corrective invoice
/// (384) and a prepayment invoice (386) as UBL `Invoice`; a credit note (381) as `CreditNote`.
/// Each is in the UNTDID 1001 list of its root (BR-CL-01) and in the French core's (BR-FR-04).
pub const TYPE_CODES: [(DocKind, &str); 4] = [
    (DocKind::Invoice, "380"),
    (DocKind::Invoice, "384"),
    (DocKind::Invoice, "386"),
    (DocKind::CreditNote, "381"),
];

/// BR-CL-01: the type code (BT-3) is one facto writes for the document's kind.
fn type_code_rule(v: &InvoiceView<'_>, out: &mut Vec<Problem>) {
    let code = v.type_code();
    if !TYPE_CODES.contains(&(v.doc.kind, code)) {
        out.push(p(
            "BR-CL-01",
            "type_code",
            format!(
                "type code (BT-3) `{code}` does not fit a document of kind {}",
                v.doc.kind.as_str()
            ),
            "leave type_code out, or set 384 (corrective) or 386 (prepayment) on an invoice; a credit note is 381",
        ));
    }
}

/// The EN 16931 rules a document breaks.
pub fn en16931(v: &InvoiceView<'_>) -> Vec<Problem> {
    let d = v.doc;
    let mut out = Vec::new();
    if blank(Some(&d.number)) {
        out.push(p(
            "BR-02",
            "number",
            "the invoice number is missing",
            "number the document in the invoicing application",
        ));
    }
    if !(d.currency.len() == 3 && d.currency.bytes().all(|b| b.is_ascii_uppercase())) {
        out.push(p(
            "BR-CL-04",
            "currency",
            format!("`{}` is not an ISO 4217 currency code", d.currency),
            "use a code such as EUR",
        ));
    }
    type_code_rule(v, &mut out);
    party_rules(&mut out, &d.seller, "seller", "BR-06", "BR-08", "BR-09");
    party_rules(&mut out, &d.buyer, "buyer", "BR-07", "BR-10", "BR-11");
    note_rules(&mut out, &d.notes);
    if let Some(a) = &d.buyer.delivery_address {
        if blank(a.country_code.as_deref()) {
            out.push(p(
                "BR-57",
                "buyer.delivery_address.country_code",
                "the delivery address has no country code",
                "set the ISO 3166 country code (FR) of the delivery address",
            ));
        }
        if let Some(c) = present(a.country_code.as_deref()).filter(|c| !country_ok(c)) {
            out.push(p(
                "BR-CL-14",
                "buyer.delivery_address.country_code",
                format!("`{c}` is not an ISO 3166-1 alpha-2 country code"),
                "use two capital letters (FR, DE, ...)",
            ));
        }
    }
    if v.lines.is_empty() {
        out.push(p(
            "BR-16",
            "lines",
            "the document has no line",
            "a document needs at least one line",
        ));
    }
    for l in &v.lines {
        let i = l.number - 1;
        if l.line.unit.trim().is_empty() {
            out.push(p(
                "BR-23",
                format!("lines[{i}].unit"),
                "the line has no unit of measure",
                "set a UN/ECE rec. 20 unit code (C62 for units)",
            ));
        }
        if blank(Some(&l.line.description)) {
            out.push(p(
                "BR-25",
                format!("lines[{i}].description"),
                "the line has no item name",
                "describe what was sold",
            ));
        }
        if l.line.unit_price < Decimal::ZERO {
            out.push(p(
                "BR-27",
                format!("lines[{i}].unit_price"),
                format!("the net price {} is negative", l.line.unit_price),
                "put a discount on the line instead of a negative price",
            ));
        }
        if decimals(l.line.net_amount) > 2 {
            out.push(p(
                "BR-DEC-23",
                format!("lines[{i}].net_amount"),
                format!("{} has more than 2 decimals", l.line.net_amount),
                "round the line net to the cent in the invoicing application",
            ));
        }
    }
    let t = &d.totals;
    for (rule, field, value) in [
        ("BR-DEC-12", "totals.net", t.net),
        ("BR-DEC-13", "totals.tax", t.tax),
        ("BR-DEC-14", "totals.gross", t.gross),
        ("BR-DEC-18", "totals.due", t.due),
    ] {
        if decimals(value) > 2 {
            out.push(p(
                rule,
                field,
                format!("{value} has more than 2 decimals"),
                "round to the cent in the invoicing application",
            ));
        }
    }
    if v.line_total != t.net {
        out.push(p("BR-CO-13", "totals.net", format!("the total without VAT {} differs from the sum of the lines {} (no document-level allowance or charge is carried)", t.net, v.line_total), "correct the totals in the invoicing application"));
    }
    let vat_sum = v
        .vat
        .iter()
        .fold(Decimal::ZERO, |acc, r| acc.saturating_add(r.amount));
    if vat_sum != t.tax {
        out.push(p(
            "BR-CO-14",
            "totals.tax",
            format!(
                "the VAT total {} differs from the sum of the VAT breakdown {vat_sum}",
                t.tax
            ),
            "correct tax_breakdown or totals.tax",
        ));
    }
    if t.net.checked_add(t.tax) != Some(t.gross) {
        out.push(p(
            "BR-CO-15",
            "totals.gross",
            format!(
                "the total with VAT {} differs from {} + {}",
                t.gross, t.net, t.tax
            ),
            "correct the totals",
        ));
    }
    if t.gross.checked_sub(t.paid) != Some(t.due) {
        out.push(p(
            "BR-CO-16",
            "totals.due",
            format!(
                "the amount due {} differs from {} − {} paid",
                t.due, t.gross, t.paid
            ),
            "correct the amount due or the amount paid",
        ));
    }
    if v.vat.is_empty() {
        out.push(p(
            "BR-CO-18",
            "tax_breakdown",
            "the document has no VAT breakdown",
            "add the VAT per rate",
        ));
    }
    if t.due > Decimal::ZERO && d.due_date.is_none() && blank(d.payment_terms.as_deref()) {
        out.push(p(
            "BR-CO-25",
            "due_date",
            format!(
                "{} is due but the document has neither a due date nor payment terms",
                t.due
            ),
            "set the due date",
        ));
    }
    if blank(d.seller.siret.as_deref())
        && blank(d.seller.siren.as_deref())
        && blank(d.seller.vat_id.as_deref())
    {
        out.push(p(
            "BR-CO-26",
            "seller.siret",
            "the seller has no identifier, legal registration or VAT number",
            "set the company's SIRET in the invoicing application",
        ));
    }
    if matches!(v.payment_means(), "30" | "58") && v.iban().is_none() && d.kind == DocKind::Invoice
    {
        out.push(p(
            "BR-61",
            "iban",
            "payment by credit transfer without the account to pay to",
            "set the seller's IBAN",
        ));
    }
    vat_rules(v, &mut out);
    out
}

fn vat_rules(v: &InvoiceView<'_>, out: &mut Vec<Problem>) {
    let d = v.doc;
    let seller_vat = !blank(d.seller.vat_id.as_deref());
    let buyer_vat = !blank(d.buyer.vat_id.as_deref());
    let buyer_legal = !blank(d.buyer.siret.as_deref()) || !blank(d.buyer.siren.as_deref());
    for r in &v.vat {
        let (c, code) = (r.category, super::ubl::category_code(r.category));
        let field = "tax_breakdown";
        // VAT id of the seller: required by every category but O.
        if c != VatCategory::O && !seller_vat {
            out.push(p(
                &format!("BR-{code}-02"),
                "seller.vat_id",
                format!("VAT category {code} needs the seller's VAT number"),
                "set the seller's intra-community VAT number",
            ));
        }
        match c {
            VatCategory::S => {
                if r.rate <= Decimal::ZERO {
                    out.push(p(
                        "BR-S-05",
                        field,
                        "a standard-rated line needs a rate above zero",
                        "map the tax code to category Z or E, or give its rate",
                    ));
                }
                // Checked: the rate comes from the mapping, the base from the source.
                let expected = r
                    .base
                    .checked_mul(r.rate)
                    .map(|x| cents(x / Decimal::ONE_HUNDRED))
                    .unwrap_or(Decimal::MAX);
                // The official schematron accepts a difference below one currency unit.
                if r.amount
                    .checked_sub(expected)
                    .is_none_or(|d| d.abs() >= Decimal::ONE)
                {
                    out.push(p(
                        "BR-CO-17",
                        field,
                        format!(
                            "VAT at {} % on {} is {expected}, the document states {}",
                            r.rate.normalize(),
                            r.base,
                            r.amount
                        ),
                        "correct the VAT amount of that rate",
                    ));
                }
            }
            _ => {
                if !r.rate.is_zero() && c != VatCategory::O {
                    out.push(p(
                        &format!("BR-{code}-05"),
                        field,
                        format!(
                            "VAT category {code} takes a rate of 0, not {}",
                            r.rate.normalize()
                        ),
                        "correct the rate of the tax code in the mapping",
                    ));
                }
                if !r.amount.is_zero() {
                    out.push(p(
                        &format!("BR-{code}-09"),
                        field,
                        format!(
                            "VAT category {code} carries no VAT, the document states {}",
                            r.amount
                        ),
                        "correct the VAT of that tax code",
                    ));
                }
            }
        }
        if c.needs_exemption_reason()
            && blank(r.exemption_reason.as_deref())
            && blank(r.exemption_code.as_deref())
        {
            out.push(p(
                &format!("BR-{code}-10"),
                field,
                format!("VAT category {code} needs an exemption reason"),
                "add exemption_reason (or exemption_code) to the tax code in the mapping",
            ));
        }
        if c == VatCategory::O {
            if seller_vat || buyer_vat {
                out.push(p("BR-O-02", "seller.vat_id", "a document not subject to VAT (category O) carries no VAT number of seller or buyer", "map the tax code to E (exempt) with its reason, or remove the VAT numbers"));
            }
            if v.vat.len() > 1 {
                out.push(p(
                    "BR-O-11",
                    field,
                    "a document not subject to VAT (category O) has no other VAT category",
                    "issue the out-of-scope lines on a separate document",
                ));
            }
        }
        if matches!(c, VatCategory::AE | VatCategory::K)
            && !buyer_vat
            && !(c == VatCategory::AE && buyer_legal)
        {
            out.push(p(
                &format!("BR-{code}-02"),
                "buyer.vat_id",
                format!("VAT category {code} needs the buyer's VAT number"),
                "set the customer's intra-community VAT number",
            ));
        }
    }
}

fn address_rules(out: &mut Vec<Problem>, a: Option<&Address>, which: &str) {
    let Some(a) = a else { return };
    if blank(a.country_code.as_deref()) {
        out.push(p(
            "CHORUS-ADDRESS-COUNTRY",
            format!("buyer.{which}.country_code"),
            format!("the {which} has no country code"),
            "set the country code (FR) of that address",
        ));
    }
    if blank(a.siret.as_deref()) {
        out.push(p(
            "CHORUS-ADDRESS-SIRET",
            format!("buyer.{which}.siret"),
            format!("the {which} has no SIRET"),
            "set the SIRET of the public buyer's establishment on that address",
        ));
    }
}

/// Chorus Pro's rules beyond EN 16931 (the struck-through lines of the users' export screen).
pub fn chorus(v: &InvoiceView<'_>) -> Vec<Problem> {
    let d = v.doc;
    let mut out = Vec::new();
    let n = d.number.chars().count();
    if n > 20 {
        out.push(p(
            "CHORUS-NUMBER-LENGTH",
            "number",
            format!("the invoice number has {n} characters; Chorus Pro takes 20"),
            "number Chorus Pro invoices with at most 20 characters",
        ));
    }
    if !matches!(v.type_code(), "380" | "381" | "384" | "389" | "386") {
        out.push(p(
            "CHORUS-TYPE-CODE",
            "kind",
            format!("type code {} is not accepted", v.type_code()),
            "send invoices (380) or credit notes (381)",
        ));
    }
    if blank(d.buyer.siret.as_deref()) {
        out.push(p(
            "CHORUS-BUYER-SIRET",
            "buyer.siret",
            "the public buyer has no SIRET",
            "set the customer's SIRET (Chorus Pro routes on it)",
        ));
    }
    match d.buyer.billing_address.as_ref() {
        None => out.push(p(
            "CHORUS-ADDRESS-COUNTRY",
            "buyer.billing_address",
            "the billing address is missing",
            "fill in the customer's billing address",
        )),
        a => address_rules(&mut out, a, "billing_address"),
    }
    address_rules(
        &mut out,
        d.buyer.delivery_address.as_ref(),
        "delivery_address",
    );
    if !blank(d.engagement_number.as_deref())
        && !blank(d.purchase_order.as_deref())
        && d.engagement_number != d.purchase_order
    {
        out.push(p("CHORUS-EJ-OR-PO", "purchase_order", "both an engagement number and a purchase-order number are filled; Chorus Pro carries one (BT-13)", "keep the engagement number and clear the purchase order"));
    }
    if d.engagement_number
        .as_deref()
        .is_some_and(|e| e.chars().count() > 50)
    {
        out.push(p(
            "CHORUS-EJ-LENGTH",
            "engagement_number",
            "the engagement number is longer than 50 characters",
            "correct the engagement number",
        ));
    }
    if d.service_code
        .as_deref()
        .is_some_and(|s| s.chars().count() > 100)
    {
        out.push(p(
            "CHORUS-SERVICE-LENGTH",
            "service_code",
            "the service code is longer than 100 characters",
            "correct the service code",
        ));
    }
    if let Some(fw) = &d.billing_framework {
        if !matches!(fw.as_str(), "A1" | "A2" | "A9" | "A12") {
            out.push(p("CHORUS-FRAMEWORK", "billing_framework", format!("billing framework `{fw}` is not one facto sends (A1 invoice, A2 already paid, A9 subcontractor, A12 co-contractor)"), "use A1, or deposit this document on the portal by hand"));
        }
        if fw == "A2" && !d.totals.due.is_zero() {
            out.push(p(
                "CHORUS-A2-PAID",
                "totals.due",
                "framework A2 (already paid) with an amount still due",
                "use A1, or record the payment",
            ));
        }
    }
    out
}

/// What a buyer's Chorus Pro structure requires (from `structures/v1/consulter`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StructureRules {
    /// `codeServiceDoitEtreRenseigne`.
    pub service_code_required: bool,
    /// `numeroEJDoitEtreRenseigne`.
    pub engagement_required: bool,
    /// `gestionNumeroEJOuCodeService`: one of the two suffices.
    pub engagement_or_service: bool,
}

/// The buyer's structure settings applied to a document.
pub fn structure(v: &InvoiceView<'_>, s: &StructureRules) -> Vec<Problem> {
    let d = v.doc;
    let (svc, ej) = (
        !blank(d.service_code.as_deref()),
        !blank(d.engagement_number.as_deref()),
    );
    let mut out = Vec::new();
    if s.engagement_or_service {
        if !svc && !ej {
            out.push(p(
                "CHORUS-STRUCTURE-EJ-OR-SERVICE",
                "engagement_number",
                "this public buyer requires a service code or an engagement number",
                "ask the buyer for its service code or engagement number and fill it in",
            ));
        }
        return out;
    }
    if s.service_code_required && !svc {
        out.push(p(
            "CHORUS-STRUCTURE-SERVICE",
            "service_code",
            "this public buyer requires a service code (BT-10)",
            "ask the buyer for its service code and fill it in",
        ));
    }
    if s.engagement_required && !ej {
        out.push(p(
            "CHORUS-STRUCTURE-EJ",
            "engagement_number",
            "this public buyer requires an engagement number (BT-13)",
            "ask the buyer for the engagement number of the order",
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::prepare;
    use crate::einvoice::InvoiceView;
    use crate::mapping::tests::{mapping, worked_credit_note, worked_invoice};
    use crate::model::Address;

    fn fr(siret: &str) -> Address {
        Address {
            lines: vec!["1 rue".into()],
            postcode: Some("69001".into()),
            city: Some("Lyon".into()),
            country_code: Some("FR".into()),
            siret: Some(siret.into()),
        }
    }

    /// The worked invoice with everything EN 16931 and Chorus Pro ask for.
    fn complete() -> crate::model::Document {
        let mut d = worked_invoice();
        d.seller.vat_id = Some("FR11123456782".into());
        d.seller.siret = Some("12345678200017".into());
        d.seller.billing_address = Some(fr("12345678200017"));
        d.seller.iban = Some("FR7630006000011234567890189".into());
        d.buyer.siret = Some("21690123100011".into());
        d.buyer.billing_address = Some(fr("21690123100011"));
        d.buyer.chorus = true;
        d
    }

    fn codes(problems: &[Problem]) -> Vec<&str> {
        problems.iter().map(|p| p.code.as_str()).collect()
    }

    #[test]
    fn a_complete_document_passes() {
        let md = prepare(&complete(), &mapping()).unwrap();
        let v = InvoiceView::new(&md);
        assert!(en16931(&v).is_empty(), "{:?}", en16931(&v));
        assert!(chorus(&v).is_empty(), "{:?}", chorus(&v));
    }

    #[test]
    fn a_type_code_that_does_not_fit_the_kind_is_held_by_br_cl_01() {
        let held = |d: &crate::model::Document| {
            let md = prepare(d, &mapping()).unwrap();
            codes(&en16931(&InvoiceView::new(&md)))
                .into_iter()
                .filter(|c| *c == "BR-CL-01")
                .count()
        };
        let mut d = complete();
        for (code, n) in [("384", 0), ("386", 0), ("381", 1), ("325", 1)] {
            d.type_code = Some(code.into());
            assert_eq!(held(&d), n, "{code} on an invoice");
        }
        let mut cn = worked_credit_note();
        assert_eq!(held(&cn), 0);
        cn.type_code = Some("380".into());
        assert_eq!(held(&cn), 1, "380 on a credit note");
    }

    #[test]
    fn missing_parties_and_accounts_are_named_by_rule() {
        // The bare worked example: no addresses, no VAT number, no IBAN.
        let md = prepare(&worked_invoice(), &mapping()).unwrap();
        let v = InvoiceView::new(&md);
        let got = en16931(&v);
        let c = codes(&got);
        for rule in ["BR-08", "BR-10", "BR-CO-26", "BR-61", "BR-S-02"] {
            assert!(c.contains(&rule), "{rule} missing from {c:?}");
        }
        assert!(got.iter().all(|p| p.message.starts_with(&p.code)));
        // Credit notes need no account to pay to.
        let md = prepare(&worked_credit_note(), &mapping()).unwrap();
        assert!(!codes(&en16931(&InvoiceView::new(&md))).contains(&"BR-61"));
    }

    #[test]
    fn vat_amount_per_rate_is_checked_like_the_official_validator() {
        let mut d = complete();
        d.tax_breakdown[0].amount += Decimal::ONE;
        d.totals.tax += Decimal::ONE;
        d.totals.gross += Decimal::ONE;
        d.totals.due += Decimal::ONE;
        let m = mapping();
        let md = crate::mapping::map_document(&d, &m).unwrap();
        let got = en16931(&InvoiceView::new(&md));
        assert_eq!(codes(&got), ["BR-CO-17"], "{got:?}");
        assert!(got[0].message.contains("200.00") && got[0].message.contains("201.00"));
    }

    #[test]
    fn out_of_scope_documents_carry_no_vat_number_and_no_other_category() {
        let text = crate::mapping::tests::MAPPING.replace(
            "[tax.TVA55]\nrate = \"5.5\"\ncategory = \"S\"\naccount = \"445713\"\nlabel = \"TVA collectée 5,5%\"",
            "[tax.TVA55]\nrate = \"0\"\ncategory = \"O\"\nexemption_reason = \"Hors champ\"",
        );
        assert!(text.contains("category = \"O\""));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.toml");
        std::fs::write(&path, text).unwrap();
        let m = crate::mapping::Mapping::load(&path, crate::config::MAPPING_KEYS).unwrap();
        let mut d = complete();
        d.tax_breakdown[1].amount = Decimal::ZERO;
        d.tax_breakdown[1].rate = Decimal::ZERO;
        d.totals.tax -= Decimal::new(825, 2);
        d.totals.gross -= Decimal::new(825, 2);
        d.totals.due -= Decimal::new(825, 2);
        let md = crate::mapping::map_document(&d, &m).unwrap();
        let c = codes(&en16931(&InvoiceView::new(&md))).join(",");
        assert!(c.contains("BR-O-02") && c.contains("BR-O-11"), "{c}");
    }

    #[test]
    fn chorus_rules_and_structure_settings() {
        let mut d = complete();
        d.number = "FACTURE-2026-000000123".into();
        d.buyer.delivery_address = Some(Address {
            siret: None,
            country_code: None,
            ..fr("x")
        });
        d.engagement_number = Some("EJ1".into());
        d.purchase_order = Some("PO1".into());
        let md = prepare(&d, &mapping()).unwrap();
        let v = InvoiceView::new(&md);
        assert_eq!(
            codes(&chorus(&v)),
            [
                "CHORUS-NUMBER-LENGTH",
                "CHORUS-ADDRESS-COUNTRY",
                "CHORUS-ADDRESS-SIRET",
                "CHORUS-EJ-OR-PO"
            ]
        );
        let rules = StructureRules {
            service_code_required: true,
            engagement_required: true,
            engagement_or_service: false,
        };
        assert_eq!(codes(&structure(&v, &rules)), ["CHORUS-STRUCTURE-SERVICE"]);
        let either = StructureRules {
            engagement_or_service: true,
            ..Default::default()
        };
        assert!(structure(&v, &either).is_empty());
    }
}
