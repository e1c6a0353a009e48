//! Agiris Isacompta CSV import (journal-formats note §2.3): 13 `;`-separated columns (entry
//! number, label, date JJMMAAAA, label, account, account label, piece, debit, credit, amount,
//! side, lettering, journal), decimal comma, LF, Windows-1252, no header.

use super::text::{amount, clean_field};
use super::EntryView;

/// Appends one entry's lines.
pub fn render_entry(out: &mut String, e: &EntryView<'_>) {
    let clean = |s: &str| clean_field(s, ';');
    let date = e.date.format("%d%m%Y").to_string();
    let (piece, label, journal) = (clean(e.piece), clean(e.label), clean(e.journal));
    for l in &e.lines {
        out.push_str(&format!(
            "{};{label};{date};{label};{};{};{piece};{};{};{};{};;{journal}\n",
            e.seq,
            clean(l.account()),
            clean(l.account_label()),
            amount(l.debit, ','),
            amount(l.credit, ','),
            amount(l.amount(), ','),
            l.sens(),
        ));
    }
}
