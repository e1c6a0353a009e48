//! EBP Compta ASCII import (journal-formats note §2.2): 11 comma-separated columns, texts in
//! double quotes (quotes inside removed), amounts positive with a dot and the side in its own
//! column (EBP refuses negatives), dates JJMMAAAA, CRLF, no header. Column 1 numbers the lines
//! of the file.

use super::text::{amount, clean_field, tail};
use super::{EntryView, FileState};

/// Appends one entry's lines.
pub fn render_entry(out: &mut String, state: &mut FileState, e: &EntryView<'_>) {
    let clean = |s: &str| clean_field(s, ',');
    let date = e.date.format("%d%m%Y").to_string();
    let due = e.due_or_date().format("%d%m%Y").to_string();
    let journal = clean(e.journal);
    let label: String = clean(e.label).chars().take(40).collect();
    let piece = clean(e.piece);
    let piece = tail(&piece, 15);
    for (i, l) in e.lines.iter().enumerate() {
        let n = state.lines + i as u64 + 1;
        out.push_str(&format!(
            "{n},{date},{journal},{},,\"{label}\",\"{piece}\",{},{},{due},EUR\r\n",
            clean(l.account()),
            amount(l.amount(), '.'),
            l.sens()
        ));
    }
}
