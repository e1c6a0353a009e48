//! Pure checks on one document: lines, totals and tax breakdown add up (the exact difference is
//! reported, nothing is fixed), and the journal entry balances to the cent. [`prepare`] chains
//! checks and mapping: the one gate a document passes before any target sees it.
//!
//! Source figures are arbitrary: every sum and product here is checked, and [`amount_range`]
//! holds a document whose figures are beyond [`MAX_FIGURE`], so the writers and targets after
//! the gate compute on bounded values and cannot overflow.

use rust_decimal::{Decimal, RoundingStrategy};

use crate::mapping::{map_document, JournalEntry, MappedDocument, Mapping};
use crate::model::{DocKind, Document};
use crate::problem::Problem;

pub use crate::model::{out_of_range, MAX_FIGURE};

#[cfg(test)]
const CENT: Decimal = Decimal::from_parts(1, 0, 0, false, 2);
/// The most that rounding one figure to the cent can move it.
const HALF_CENT: Decimal = Decimal::from_parts(5, 0, 0, false, 3);
const FIX_SOURCE: &str =
    "correct the amounts in the invoicing application (if the document is final, issue a credit note and a new invoice)";

/// The largest VAT rate, in percent.
const MAX_RATE: Decimal = Decimal::ONE_HUNDRED;

fn mismatch(
    code: &str,
    field: impl Into<String>,
    what: String,
    stated: Decimal,
    computed: Decimal,
) -> Problem {
    let diff = stated
        .checked_sub(computed)
        .map_or_else(|| "out of range".to_owned(), |d| d.to_string());
    Problem::new(
        code,
        field,
        format!(
            "{what}: the document states {stated} but the figures give {computed} (difference {diff})"
        ),
        FIX_SOURCE,
    )
}

/// `Σ values`, or `None` when the sum overflows.
pub fn checked_sum(values: impl IntoIterator<Item = Decimal>) -> Option<Decimal> {
    values
        .into_iter()
        .try_fold(Decimal::ZERO, |acc, v| acc.checked_add(v))
}

/// Holds a document with a figure beyond [`MAX_FIGURE`] (or a VAT rate beyond 100 %), naming
/// each field: the writers and targets compute only on figures this gate let through.
pub fn amount_range(doc: &Document) -> Vec<Problem> {
    let mut p = Vec::new();
    // The field's name is built only for a figure beyond the limit: this runs on every document.
    let mut check = |v: Decimal, field: &dyn Fn() -> String| {
        if v.abs() > MAX_FIGURE {
            let field = field();
            let what = format!("{field} is {v}, beyond ±{MAX_FIGURE}");
            p.push(out_of_range(field, what));
        }
    };
    check(doc.totals.net, &|| "totals.net".into());
    check(doc.totals.tax, &|| "totals.tax".into());
    check(doc.totals.gross, &|| "totals.gross".into());
    check(doc.totals.paid, &|| "totals.paid".into());
    check(doc.totals.due, &|| "totals.due".into());
    for (i, l) in doc.lines.iter().enumerate() {
        check(l.quantity, &|| format!("lines[{i}].quantity"));
        check(l.unit_price, &|| format!("lines[{i}].unit_price"));
        check(l.net_amount, &|| format!("lines[{i}].net_amount"));
        if let Some(d) = l.discount {
            check(d, &|| format!("lines[{i}].discount"));
        }
    }
    for (i, b) in doc.tax_breakdown.iter().enumerate() {
        check(b.base, &|| format!("tax_breakdown[{i}].base"));
        check(b.amount, &|| format!("tax_breakdown[{i}].amount"));
    }
    for (i, b) in doc.tax_breakdown.iter().enumerate() {
        if b.rate.abs() > MAX_RATE {
            p.push(out_of_range(
                format!("tax_breakdown[{i}].rate"),
                format!("VAT rate {} % is beyond 100 %", b.rate),
            ));
        }
    }
    p
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
        let Some(exact) = l
            .quantity
            .checked_mul(l.unit_price)
            .and_then(|v| v.checked_sub(l.discount.unwrap_or_default()))
        else {
            p.push(out_of_range(
                format!("lines[{i}].quantity"),
                format!("line {} quantity × unit_price − discount", i + 1),
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
    let lines_net = checked_sum(doc.lines.iter().map(|l| l.net_amount));
    if let Some(lines_net) = lines_net.filter(|n| *n != doc.totals.net) {
        p.push(mismatch(
            "totals-mismatch",
            "totals.net",
            "net total vs the sum of the lines".into(),
            doc.totals.net,
            lines_net,
        ));
    }
    if lines_net.is_none() {
        p.push(out_of_range(
            "lines[].net_amount",
            "the sum of the lines' net amounts",
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
        let (Some(base), Some(tax)) = (
            checked_sum(doc.tax_breakdown.iter().map(|b| b.base)),
            checked_sum(doc.tax_breakdown.iter().map(|b| b.amount)),
        ) else {
            p.push(out_of_range(
                "tax_breakdown",
                "the sum of the VAT bases or amounts",
            ));
            return p;
        };
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
        let Some(group_net) = checked_sum(group.iter().map(|l| l.net_amount)) else {
            p.push(out_of_range(
                format!("tax_breakdown[{i}].base"),
                format!("the sum of the lines of tax code {}", b.tax_code),
            ));
            continue;
        };
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
        let Some(exact) = b
            .base
            .checked_mul(b.rate)
            .and_then(|v| v.checked_div(Decimal::ONE_HUNDRED))
        else {
            p.push(out_of_range(
                format!("tax_breakdown[{i}].base"),
                format!("VAT of tax code {} (base × rate)", b.tax_code),
            ));
            continue;
        };
        let bound = HALF_CENT * Decimal::from(group.len().max(1));
        let diff = b.amount.checked_sub(exact);
        if diff.is_none_or(|d| d.abs() > bound) {
            let expected = exact.round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero);
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
    match doc.totals.net.checked_add(doc.totals.tax) {
        None => p.push(out_of_range("totals.gross", "net + VAT")),
        Some(sum) if sum != doc.totals.gross => p.push(mismatch(
            "totals-mismatch",
            "totals.gross",
            "gross total vs net + VAT".into(),
            doc.totals.gross,
            sum,
        )),
        Some(_) => {}
    }
    match doc.totals.gross.checked_sub(doc.totals.paid) {
        None => p.push(out_of_range("totals.due", "gross − paid")),
        Some(due) if due != doc.totals.due => p.push(mismatch(
            "totals-mismatch",
            "totals.due",
            "amount due vs gross − paid".into(),
            doc.totals.due,
            due,
        )),
        Some(_) => {}
    }
    p
}

/// Checks that an entry balances to the cent and that every line has exactly one positive side.
pub fn check_entry(entry: &JournalEntry) -> Vec<Problem> {
    let mut p = Vec::new();
    let Some((d, c)) = entry.checked_sums() else {
        p.push(out_of_range(
            "totals.gross",
            "the journal entry's debit or credit total",
        ));
        return p;
    };
    if d != c {
        p.push(Problem::new(
            "unbalanced-entry",
            "totals.gross",
            format!(
                "the journal entry does not balance: debit {d}, credit {c} (difference {})",
                d.checked_sub(c).unwrap_or_default()
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
    let out_of_range = amount_range(doc);
    if !out_of_range.is_empty() {
        return Err(out_of_range);
    }
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

        /// No input panics: extreme figures (up to `Decimal`'s limits, any scale) in any field
        /// give problems, never an overflow; beyond [`MAX_FIGURE`] the gate names the field.
        #[test]
        fn extreme_figures_never_panic(
            figures in prop::collection::vec(extreme_decimal(), 16),
            extra_lines in 0usize..4,
            credit in any::<bool>(),
        ) {
            let mut doc = worked_invoice();
            if credit { doc.kind = DocKind::CreditNote; }
            let template = doc.lines[0].clone();
            for _ in 0..extra_lines { doc.lines.push(template.clone()); }
            let mut f = figures.into_iter().cycle();
            let mut next = || f.next().unwrap_or_default();
            for l in &mut doc.lines {
                l.quantity = next();
                l.unit_price = next();
                l.discount = Some(next());
                l.net_amount = next();
            }
            for b in &mut doc.tax_breakdown {
                b.base = next();
                b.amount = next();
                b.rate = next();
            }
            doc.totals.net = next();
            doc.totals.tax = next();
            doc.totals.gross = next();
            doc.totals.paid = next();
            doc.totals.due = next();
            let _ = check_totals(&doc);
            let mapped = crate::mapping::map_document(&doc, &mapping());
            if let Ok(md) = &mapped {
                let _ = check_entry(&md.entry);
            }
            let beyond = amount_range(&doc);
            let prepared = prepare(&doc, &mapping());
            if !beyond.is_empty() {
                let problems = prepared.expect_err("a figure beyond the limit is held");
                prop_assert!(problems.iter().all(|p| p.code == "amount-out-of-range"));
            }
        }
    }

    /// Any `Decimal`: every mantissa, sign and scale, biased towards the limits.
    fn extreme_decimal() -> impl Strategy<Value = Decimal> {
        prop_oneof![
            Just(Decimal::MAX),
            Just(Decimal::MIN),
            Just(Decimal::ZERO),
            Just(MAX_FIGURE),
            (
                any::<u32>(),
                any::<u32>(),
                any::<u32>(),
                any::<bool>(),
                0u32..=28
            )
                .prop_map(|(lo, mid, hi, neg, scale)| Decimal::from_parts(lo, mid, hi, neg, scale)),
            (-1_000_000i64..1_000_000, 0u32..4).prop_map(|(n, s)| Decimal::new(n, s)),
        ]
    }

    #[test]
    fn the_limit_is_ten_thousand_billion() {
        assert_eq!(MAX_FIGURE, Decimal::from(10_000_000_000_000i64));
    }

    #[test]
    fn a_quantity_at_decimals_limit_is_held_naming_the_field() {
        let mut doc = worked_invoice();
        doc.lines[0].quantity = Decimal::MAX;
        doc.lines[0].unit_price = Decimal::TWO;
        let p = prepare(&doc, &mapping()).unwrap_err();
        assert_eq!(p[0].code, "amount-out-of-range");
        assert_eq!(p[0].field, "lines[0].quantity");
        assert!(
            p[0].message.starts_with("amount out of range"),
            "{}",
            p[0].message
        );
        // Without the gate, the check itself reports the overflow instead of panicking.
        let p = check_totals(&doc);
        assert!(p.iter().any(|p| p.code == "amount-out-of-range"), "{p:?}");
    }
}
