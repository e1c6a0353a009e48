//! Pure checks on one document: lines, totals and tax breakdown add up (the exact difference is
//! reported, nothing is fixed), and the journal entry balances to the cent. [`prepare`] chains
//! checks and mapping: the one gate a document passes before any target sees it.

use rust_decimal::{Decimal, RoundingStrategy};

use crate::mapping::{map_document, JournalEntry, MappedDocument, Mapping};
use crate::model::{DocKind, Document};
use crate::problem::Problem;

#[cfg(test)]
const CENT: Decimal = Decimal::from_parts(1, 0, 0, false, 2);
/// The most that rounding one figure to the cent can move it.
const HALF_CENT: Decimal = Decimal::from_parts(5, 0, 0, false, 3);
const FIX_SOURCE: &str =
    "correct the amounts in the invoicing application (if the document is final, issue a credit note and a new invoice)";

fn mismatch(
    code: &str,
    field: impl Into<String>,
    what: String,
    stated: Decimal,
    computed: Decimal,
) -> Problem {
    Problem::new(
        code,
        field,
        format!(
            "{what}: the document states {stated} but the figures give {computed} (difference {})",
            stated - computed
        ),
        FIX_SOURCE,
    )
}

/// Checks that the document's figures are consistent: lines → tax breakdown → totals.
pub fn check_totals(doc: &Document) -> Vec<Problem> {
    let mut p = Vec::new();
    if doc.lines.is_empty() {
        p.push(Problem::new(
            "no-lines",
            "lines",
            "the document has no lines",
            FIX_SOURCE,
        ));
    }
    let amounts = [
        ("totals.net", doc.totals.net),
        ("totals.tax", doc.totals.tax),
        ("totals.gross", doc.totals.gross),
        ("totals.paid", doc.totals.paid),
        ("totals.due", doc.totals.due),
    ];
    for (field, v) in amounts {
        if v.normalize().scale() > 2 {
            p.push(Problem::new(
                "sub-cent-amount",
                field,
                format!("{v} has more than two decimals"),
                "the invoicing application must state amounts rounded to the cent",
            ));
        }
    }
    if doc.totals.gross < Decimal::ZERO {
        let (code, fix) = match doc.kind {
            DocKind::CreditNote => (
                "negative-credit-note",
                "facto expects credit notes with positive amounts (the kind gives the sense); export them with positive amounts",
            ),
            DocKind::Invoice => ("negative-invoice", "a negative invoice must be issued as a credit note"),
        };
        p.push(Problem::new(
            code,
            "totals.gross",
            format!("gross total {} is negative", doc.totals.gross),
            fix,
        ));
    }
    for (i, l) in doc.lines.iter().enumerate() {
        // The stated net may only differ from the exact figure by what rounding to the cent explains.
        let exact = l
            .quantity
            .checked_mul(l.unit_price)
            .and_then(|v| v.checked_sub(l.discount.unwrap_or_default()));
        let Some(exact) = exact else {
            p.push(Problem::new(
                "amount-out-of-range",
                format!("lines[{i}].quantity"),
                format!(
                    "line {} quantity × unit_price is too large to compute",
                    i + 1
                ),
                FIX_SOURCE,
            ));
            continue;
        };
        let diff = l.net_amount.checked_sub(exact);
        if diff.is_none_or(|d| d.abs() > HALF_CENT) {
            p.push(mismatch(
                "line-amount-mismatch",
                format!("lines[{i}].net_amount"),
                format!(
                    "line {} net amount (quantity × unit_price − discount, rounded to the cent)",
                    i + 1
                ),
                l.net_amount,
                exact.round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero),
            ));
        }
    }
    let lines_net: Decimal = doc.lines.iter().map(|l| l.net_amount).sum();
    if lines_net != doc.totals.net {
        p.push(mismatch(
            "totals-mismatch",
            "totals.net",
            "net total vs the sum of the lines".into(),
            doc.totals.net,
            lines_net,
        ));
    }
    let no_breakdown = doc.tax_breakdown.is_empty() && !doc.lines.is_empty();
    if no_breakdown {
        // Said once: the sums and per-line checks would only repeat it with zeros.
        p.push(Problem::new(
            "missing-tax-breakdown",
            "tax_breakdown",
            "the document has no tax_breakdown (VAT per rate: tax_code, rate, base, amount)",
            "send `tax_breakdown` at the top level of the document, beside `totals` (not inside it)",
        ));
    } else if !doc.tax_breakdown.is_empty() || !doc.totals.tax.is_zero() {
        let base: Decimal = doc.tax_breakdown.iter().map(|b| b.base).sum();
        let tax: Decimal = doc.tax_breakdown.iter().map(|b| b.amount).sum();
        if base != doc.totals.net {
            p.push(mismatch(
                "totals-mismatch",
                "tax_breakdown",
                "sum of the VAT bases vs the net total".into(),
                base,
                doc.totals.net,
            ));
        }
        if tax != doc.totals.tax {
            p.push(mismatch(
                "totals-mismatch",
                "totals.tax",
                "VAT total vs the sum of the VAT breakdown".into(),
                doc.totals.tax,
                tax,
            ));
        }
    }
    for (i, b) in doc.tax_breakdown.iter().enumerate() {
        let group: Vec<_> = doc
            .lines
            .iter()
            .filter(|l| l.tax_code == b.tax_code)
            .collect();
        let group_net: Decimal = group.iter().map(|l| l.net_amount).sum();
        if group_net != b.base {
            p.push(mismatch(
                "tax-base-mismatch",
                format!("tax_breakdown[{i}].base"),
                format!("VAT base of tax code {} vs its lines", b.tax_code),
                b.base,
                group_net,
            ));
        }
        // VAT per rate is taken as the document states it; it may differ from base × rate only by
        // the rounding of each line's VAT (at most half a cent per line).
        let exact = b.base.checked_mul(b.rate).map(|v| v / Decimal::ONE_HUNDRED);
        let bound = HALF_CENT * Decimal::from(group.len().max(1));
        let diff = exact.and_then(|e| b.amount.checked_sub(e));
        if diff.is_none_or(|d| d.abs() > bound) {
            let expected = exact
                .unwrap_or_default()
                .round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero);
            p.push(mismatch(
                "tax-amount-mismatch",
                format!("tax_breakdown[{i}].amount"),
                format!(
                    "VAT of tax code {} ({} % of {}, within half a cent per line for rounding)",
                    b.tax_code,
                    b.rate.normalize(),
                    b.base
                ),
                b.amount,
                expected,
            ));
        }
    }
    for (i, l) in doc.lines.iter().enumerate() {
        if !no_breakdown && !doc.tax_breakdown.iter().any(|b| b.tax_code == l.tax_code) {
            p.push(Problem::new(
                "tax-code-not-in-breakdown",
                format!("lines[{i}].tax_code"),
                format!(
                    "tax code {} of line {} is missing from tax_breakdown",
                    l.tax_code,
                    i + 1
                ),
                FIX_SOURCE,
            ));
        }
    }
    if doc.totals.net + doc.totals.tax != doc.totals.gross {
        p.push(mismatch(
            "totals-mismatch",
            "totals.gross",
            "gross total vs net + VAT".into(),
            doc.totals.gross,
            doc.totals.net + doc.totals.tax,
        ));
    }
    if doc.totals.gross - doc.totals.paid != doc.totals.due {
        p.push(mismatch(
            "totals-mismatch",
            "totals.due",
            "amount due vs gross − paid".into(),
            doc.totals.due,
            doc.totals.gross - doc.totals.paid,
        ));
    }
    p
}

/// Checks that an entry balances to the cent and that every line has exactly one positive side.
pub fn check_entry(entry: &JournalEntry) -> Vec<Problem> {
    let mut p = Vec::new();
    let (d, c) = entry.sums();
    if d != c {
        p.push(Problem::new(
            "unbalanced-entry",
            "totals.gross",
            format!(
                "the journal entry does not balance: debit {d}, credit {c} (difference {})",
                d - c
            ),
            FIX_SOURCE,
        ));
    }
    for l in &entry.lines {
        if l.debit < Decimal::ZERO
            || l.credit < Decimal::ZERO
            || (l.debit.is_zero() == l.credit.is_zero())
        {
            p.push(Problem::new(
                "bad-entry-line",
                "lines",
                format!(
                    "entry line on {} has debit {} and credit {}",
                    l.account, l.debit, l.credit
                ),
                FIX_SOURCE,
            ));
        }
    }
    p
}

/// The gate before any target: figures add up, every code is mapped, the entry balances.
///
/// # Errors
///
/// Every problem found (all of them, not only the first).
pub fn prepare(doc: &Document, mapping: &Mapping) -> Result<MappedDocument, Vec<Problem>> {
    let mut problems = check_totals(doc);
    match map_document(doc, mapping) {
        Ok(md) => {
            // An entry built from figures that do not add up cannot balance: say it once.
            if problems.is_empty() {
                problems.extend(check_entry(&md.entry));
            }
            if problems.is_empty() {
                Ok(md)
            } else {
                Err(problems)
            }
        }
        Err(p) => {
            problems.extend(p);
            Err(problems)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mapping::tests::{mapping, worked_credit_note, worked_invoice};
    use proptest::prelude::*;

    #[test]
    fn worked_documents_pass() {
        assert!(check_totals(&worked_invoice()).is_empty());
        assert!(prepare(&worked_credit_note(), &mapping()).is_ok());
    }

    #[test]
    fn gross_off_by_ten_cents_reports_exact_difference() {
        let mut doc = worked_invoice();
        doc.totals.gross += Decimal::new(10, 2);
        doc.totals.due += Decimal::new(10, 2);
        let p = check_totals(&doc);
        assert_eq!(p.len(), 1, "{p:?}");
        assert_eq!(p[0].field, "totals.gross");
        assert!(p[0].message.contains("difference 0.10"), "{}", p[0].message);
    }

    /// Three lines of 0.99 at 20 %: VAT per line rounds to 0.20 each, 0.60 in all, where 2.97 × 20 %
    /// is 0.594.
    fn three_small_lines(vat: &str) -> Document {
        let mut doc = worked_invoice();
        let mut line = doc.lines[0].clone();
        line.unit_price = Decimal::new(99, 2);
        line.net_amount = Decimal::new(99, 2);
        doc.lines = vec![line.clone(), line.clone(), line];
        let vat: Decimal = vat.parse().unwrap();
        doc.tax_breakdown.truncate(1);
        doc.tax_breakdown[0].base = Decimal::new(297, 2);
        doc.tax_breakdown[0].amount = vat;
        doc.totals.net = Decimal::new(297, 2);
        doc.totals.tax = vat;
        doc.totals.gross = doc.totals.net + vat;
        doc.totals.due = doc.totals.gross;
        doc
    }

    #[test]
    fn vat_rounding_per_line_is_accepted_but_a_wrong_vat_is_not() {
        assert!(check_totals(&three_small_lines("0.60")).is_empty());
        assert!(check_totals(&three_small_lines("0.59")).is_empty());
        let p = check_totals(&three_small_lines("0.62"));
        assert_eq!(p.len(), 1, "{p:?}");
        assert_eq!(p[0].code, "tax-amount-mismatch");
        assert!(p[0].message.contains("difference 0.03"), "{}", p[0].message);
        // One line of 1000.00 at 20 %: 200.01 is no rounding of 200.
        let mut doc = worked_invoice();
        doc.tax_breakdown[0].amount += CENT;
        doc.totals.tax += CENT;
        doc.totals.gross += CENT;
        doc.totals.due += CENT;
        assert_eq!(check_totals(&doc)[0].code, "tax-amount-mismatch");
    }

    #[test]
    fn a_line_net_only_differs_from_quantity_times_price_by_rounding() {
        let mut doc = worked_invoice();
        doc.lines[0].net_amount += CENT;
        let p = check_totals(&doc);
        assert!(p.iter().any(|p| p.code == "line-amount-mismatch"), "{p:?}");
        // 3 × 0.333 = 0.999 is stated 1.00: rounding explains it.
        let mut doc = three_small_lines("0.60");
        for l in &mut doc.lines {
            l.quantity = Decimal::from(3);
            l.unit_price = Decimal::new(333, 3);
            l.net_amount = Decimal::ONE;
        }
        assert!(check_totals(&doc)
            .iter()
            .all(|p| p.code != "line-amount-mismatch"));
        // Amounts too large to multiply are reported, not a panic.
        let mut doc = worked_invoice();
        doc.lines[0].quantity = Decimal::MAX;
        doc.lines[0].unit_price = Decimal::MAX;
        assert_eq!(check_totals(&doc)[0].code, "amount-out-of-range");
    }

    #[test]
    fn a_missing_tax_breakdown_is_said_once() {
        let mut doc = worked_invoice();
        doc.tax_breakdown.clear();
        let p = check_totals(&doc);
        assert_eq!(p.len(), 1, "{p:?}");
        assert_eq!(p[0].code, "missing-tax-breakdown");
    }

    #[test]
    fn unbalanced_entry_is_reported() {
        let mut md = prepare(&worked_invoice(), &mapping()).unwrap();
        md.entry.lines[1].credit += CENT;
        assert_eq!(check_entry(&md.entry)[0].code, "unbalanced-entry");
    }

    proptest! {
        /// Any consistent document (random lines, rates, kinds) maps to an entry that balances.
        #[test]
        fn consistent_documents_always_balance(
            lines in prop::collection::vec((1u32..50, 1i64..1_000_000, 0usize..2, -1i64..2), 1..8),
            credit in any::<bool>(),
        ) {
            let mut doc = worked_invoice();
            if credit { doc.kind = DocKind::CreditNote; }
            let template = doc.lines[0].clone();
            doc.lines = lines.iter().map(|&(q, cents, tax, sign)| {
                let mut l = template.clone();
                l.quantity = Decimal::from(q);
                l.unit_price = Decimal::new(cents * if sign < 0 { -1 } else { 1 }, 2);
                l.net_amount = l.quantity * l.unit_price;
                l.tax_code = ["TVA20", "TVA55"][tax].to_owned();
                l
            }).collect();
            let mut breakdown = Vec::new();
            for (code, rate) in [("TVA20", Decimal::from(20)), ("TVA55", Decimal::new(55, 1))] {
                let base: Decimal = doc.lines.iter().filter(|l| l.tax_code == code).map(|l| l.net_amount).sum();
                if doc.lines.iter().any(|l| l.tax_code == code) {
                    let amount = (base * rate / Decimal::ONE_HUNDRED).round_dp_with_strategy(2, rust_decimal::RoundingStrategy::MidpointAwayFromZero);
                    breakdown.push(crate::model::TaxBreakdown { tax_code: code.into(), rate, base, amount });
                }
            }
            doc.tax_breakdown = breakdown;
            doc.totals.net = doc.lines.iter().map(|l| l.net_amount).sum();
            doc.totals.tax = doc.tax_breakdown.iter().map(|b| b.amount).sum();
            doc.totals.gross = doc.totals.net + doc.totals.tax;
            doc.totals.due = doc.totals.gross;
            doc.totals.paid = Decimal::ZERO;
            prop_assume!(doc.totals.gross >= Decimal::ZERO);
            let md = prepare(&doc, &mapping());
            prop_assert!(md.is_ok(), "{:?}", md.err());
            let md = md.unwrap();
            let (d, c) = md.entry.sums();
            prop_assert_eq!(d, c);
            prop_assert_eq!(d, doc.totals.gross.max(Decimal::ZERO) + md.entry.lines.iter().skip(1).filter(|l| if credit { l.credit > Decimal::ZERO } else { l.debit > Decimal::ZERO }).map(|l| l.debit + l.credit).sum::<Decimal>());
        }
    }
}
