//! Sage 50 / Ciel Compta `XIMPORT.TXT` (journal-formats note §2.5): fixed-width records of 142
//! characters, CRLF, Windows-1252 (one byte per character), dates AAAAMMJJ, amounts with a
//! decimal comma right-justified, `D`/`C`, the auxiliary account in the account field.

use rust_decimal::Decimal;

use super::text::{amount, clean_label, fit, fit_right, fold, seq_field, tail};
use super::EntryView;
use crate::format::Encoding;

/// The name Sage 50 / Ciel picks up automatically.
pub const FILE_NAME: &str = "XIMPORT.TXT";
/// Length of a record, line ending excluded.
pub const RECORD_LEN: usize = 142;
/// Width of the account field (positions 36–46).
pub const ACCOUNT_WIDTH: usize = 11;

/// Whether an amount fits the 13 characters of positions 72–84.
pub fn amount_fits(a: Decimal) -> bool {
    amount(a, ',').len() <= 13
}

/// Appends one entry's records.
pub fn render_entry(out: &mut String, e: &EntryView<'_>, enc: Encoding) {
    let text = |s: &str| fold(&clean_label(s), enc);
    let seq = fit(&seq_field(e.seq, 5), 5);
    let journal = fit(&text(e.journal), 2);
    let date = e.date.format("%Y%m%d").to_string();
    let due = e.due_or_date().format("%Y%m%d").to_string();
    let piece = text(e.piece);
    let piece = fit(tail(&piece, 12), 12);
    let label = text(e.label);
    for l in &e.lines {
        let mut rec = String::with_capacity(RECORD_LEN + 2);
        rec.push_str(&seq);
        rec.push_str(&journal);
        rec.push_str(&date);
        rec.push_str(&due);
        rec.push_str(&piece);
        rec.push_str(&fit(&text(l.account()), ACCOUNT_WIDTH));
        rec.push_str(&fit(&label, 25));
        rec.push_str(&fit_right(&amount(l.amount(), ','), 13));
        rec.push(l.sens());
        rec.push_str(&" ".repeat(18));
        rec.push_str(&fit(&label, 34));
        rec.push_str("O2003");
        debug_assert_eq!(rec.chars().count(), RECORD_LEN);
        rec.push_str("\r\n");
        out.push_str(&rec);
    }
}
