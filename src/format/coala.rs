//! Sage Coala CSV import (journal-formats note §2.4): 9 `;`-separated columns (date JJ/MM/AAAA,
//! journal, general account, entry number, piece, debit, credit, `E`, auxiliary account),
//! decimal comma without thousands separator, LF, Windows-1252, no header.

use super::text::{amount, clean_field};
use super::EntryView;

/// Appends one entry's lines.
pub fn render_entry(out: &mut String, e: &EntryView<'_>) {
    let clean = |s: &str| clean_field(s, ';');
    let date = e.date.format("%d/%m/%Y").to_string();
    let (piece, journal) = (clean(e.piece), clean(e.journal));
    for l in &e.lines {
        out.push_str(&format!(
            "{date};{journal};{};{};{piece};{};{};E;{}\n",
            clean(&l.general),
            e.seq,
            amount(l.debit, ','),
            amount(l.credit, ','),
            l.aux.as_deref().map(clean).unwrap_or_default(),
        ));
    }
}
