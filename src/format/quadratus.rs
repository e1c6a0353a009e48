//! QuadraCOMPTA "fichier d'entrée ASCII" (journal-formats note §2.1): one fixed-width `M` record
//! of 231 characters per line, CRLF, plain ASCII (positions are bytes), amounts in cents with a
//! sign, dates JJMMAA, the auxiliary account in the account field. Only `M` records are written:
//! the customer accounts must exist in the Quadra dossier (the `C` record layout is unverified).

use rust_decimal::Decimal;

use super::text::{fit, fold, seq_field, tail};
use super::EntryView;
use crate::format::Encoding;

/// Length of an `M` record, line ending excluded.
pub const RECORD_LEN: usize = 231;
/// Width of the account field (positions 2–9).
pub const ACCOUNT_WIDTH: usize = 8;

/// Whether an amount fits the 12 digits in cents of positions 44–55.
pub fn amount_fits(amount: Decimal) -> bool {
    amount < Decimal::new(10_000_000_000, 0)
}

fn cents(amount: Decimal) -> String {
    let c = (amount * Decimal::ONE_HUNDRED).round();
    format!("+{:012}", c.abs())
}

/// Appends one entry's `M` records.
pub fn render_entry(out: &mut String, e: &EntryView<'_>) {
    let ascii = |s: &str| fold(&super::text::clean_label(s), Encoding::Ascii);
    let journal = ascii(e.journal);
    let date = e.date.format("%d%m%y").to_string();
    let due = e
        .due
        .map_or_else(|| "000000".to_owned(), |d| d.format("%d%m%y").to_string());
    let label = ascii(e.label);
    let piece = ascii(e.piece);
    let seq5 = fit(&seq_field(e.seq, 5), 5);
    let seq8 = fit(&seq_field(e.seq, 8), 8);
    for l in &e.lines {
        let start = out.len();
        out.push('M');
        out.push_str(&fit(&ascii(l.account()), ACCOUNT_WIDTH));
        out.push_str(&fit(&journal, 2));
        out.push_str("000");
        out.push_str(&date);
        out.push(' ');
        out.push_str(&fit(&label, 20));
        out.push(l.sens());
        out.push_str(&cents(l.amount()));
        out.push_str(&" ".repeat(8));
        out.push_str(&due);
        out.push_str(&" ".repeat(5));
        out.push_str(&seq5);
        out.push_str(&" ".repeat(20));
        out.push_str(&seq8);
        out.push_str("EUR");
        out.push_str(&fit(&journal, 3));
        out.push_str(&" ".repeat(3));
        out.push_str(&fit(&label, 30));
        out.push_str(&" ".repeat(2));
        out.push_str(&fit(tail(&piece, 10), 10));
        out.push_str(&" ".repeat(RECORD_LEN - 158));
        debug_assert_eq!(out.len() - start, RECORD_LEN);
        out.push_str("\r\n");
    }
}
