//! A page's entries rendered on every core ([`crate::par`]): each document's text (encoded)
//! or e-invoice XML and the SHA-256 recorded as its payload hash. Each entry's number and
//! first line number are fixed before the work is spread, so the bytes are those one thread
//! writes.

use std::sync::Arc;

use chrono::NaiveDate;
use sha2::{Digest, Sha256};

use crate::format::{self, text, EntryView, FileState, Layout};
use crate::mapping::MappedDocument;

/// One document's part of the page.
pub(super) struct Rendered {
    /// The entry's text in the file's encoding, or the e-invoice's XML.
    pub(super) bytes: Vec<u8>,
    /// Whether `bytes` is an e-invoice (a zip entry or a file of its own) rather than text.
    pub(super) xml: bool,
    /// SHA-256 of the text (UTF-8, before encoding) or of the XML.
    pub(super) hash: [u8; 32],
}

/// Renders `mds`, the first numbered `first_seq`, after `lines` lines already in the file.
/// Returns the parts in order and the file's line count after them.
pub(super) fn page(
    layout: &Layout,
    mds: &[Arc<MappedDocument>],
    first_seq: u64,
    lines: u64,
    valid_date: NaiveDate,
) -> (Vec<Rendered>, u64) {
    let mut starts = Vec::with_capacity(mds.len());
    let mut total = lines;
    for md in mds {
        starts.push(total);
        if !layout.format.is_einvoice() {
            total += format::written_lines(md);
        }
    }
    let out = crate::par::map(mds, |i, md| {
        if let Some(xml) = format::einvoice_xml(layout, md) {
            let hash = Sha256::digest(&xml).into();
            return Rendered {
                bytes: xml,
                xml: true,
                hash,
            };
        }
        let mut piece = String::new();
        let view = EntryView::new(md, first_seq + i as u64, valid_date, layout);
        let mut state = FileState { lines: starts[i] };
        format::render(layout, &mut state, &view, &mut piece);
        Rendered {
            bytes: text::encode(&piece, layout.encoding),
            xml: false,
            hash: Sha256::digest(piece.as_bytes()).into(),
        }
    });
    (out, total)
}
