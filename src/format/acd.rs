//! ACD iSuite Expert CSV import (journal-formats note §2.3): 13 `;`-separated columns, entry
//! number first, date JJ/MM/AAAA then split into year, month and day, debit and credit columns
//! with a decimal comma plus the positive amount, CRLF, Windows-1252, no header.

use super::text::{amount, clean_field};
use super::EntryView;

/// Appends one entry's lines.
pub fn render_entry(out: &mut String, e: &EntryView<'_>) {
    let clean = |s: &str| clean_field(s, ';');
    let date = e.date.format("%d/%m/%Y;%Y;%m;%d").to_string();
    let (piece, label, customer, journal) = (
        clean(e.piece),
        clean(e.label),
        clean(e.customer),
        clean(e.journal),
    );
    for l in &e.lines {
        out.push_str(&format!(
            "{};{date};{piece};{label};{};{customer};{};{};{};{journal}\r\n",
            e.seq,
            clean(l.account()),
            amount(l.debit, ','),
            amount(l.credit, ','),
            amount(l.amount(), ','),
        ));
    }
}
