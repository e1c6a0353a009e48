//! Cegid CSV import (journal-formats note §2.6): 8 `;`-separated columns (date JJMMAAAA,
//! journal, general account, auxiliary account, side, positive amount with a decimal comma,
//! label without accents, piece), LF, Windows-1252, no header.

use super::text::{amount, clean_field, fold};
use super::EntryView;
use crate::format::Encoding;

/// Appends one entry's lines.
pub fn render_entry(out: &mut String, e: &EntryView<'_>) {
    let clean = |s: &str| clean_field(s, ';');
    let date = e.date.format("%d%m%Y").to_string();
    let label = fold(&clean(e.label), Encoding::Ascii);
    let (piece, journal) = (clean(e.piece), clean(e.journal));
    for l in &e.lines {
        out.push_str(&format!(
            "{date};{journal};{};{};{};{};{label};{piece}\n",
            clean(&l.general),
            l.aux.as_deref().map(clean).unwrap_or_default(),
            l.sens(),
            amount(l.amount(), ','),
        ));
    }
}
