//! E-invoice files in a json-dir folder (`einvoices = true`, issue 15 §3): a supplier invoice
//! received as CII or UBL (`.xml`) or Factur-X (`.pdf`) becomes one document
//! ([`crate::einvoice::read::read_received`]), its id its seller and number; a file that is not
//! one, or that does not read, is held whole with the reason, and read again once it changes.

use std::path::Path;

use sha2::{Digest, Sha256};

use super::Pager;
use crate::source::Item;

/// The largest e-invoice file read (a Factur-X with its images stays well under it).
const MAX_BYTES: u64 = 64 << 20;

/// Whether a file of the folder is an e-invoice to read (by its extension).
pub(super) fn is_einvoice(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    lower.ends_with(".xml") || lower.ends_with(".pdf")
}

/// Reads one e-invoice file into the page. False when the pull was abandoned.
pub(super) fn read_file(dir: &Path, name: &str, out: &mut Pager) -> bool {
    let path = dir.join(name);
    let origin = path.display().to_string();
    let file_id = format!("file:{origin}");
    let bad = |message: String| super::whole_file(&origin, message);
    let meta = match std::fs::metadata(&path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            out.vanished.push(name.to_owned());
            return true;
        }
        Err(e) => {
            out.page
                .items
                .push(bad(format!("cannot read the file: {e}")));
            return out.flush_if_full();
        }
        Ok(m) => m,
    };
    if meta.len() > MAX_BYTES {
        out.page.items.push(bad(format!(
            "the file is {} bytes, more than the {MAX_BYTES} an e-invoice may have",
            meta.len()
        )));
        return out.flush_if_full();
    }
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) => {
            out.page
                .items
                .push(bad(format!("cannot read the file: {e}")));
            return out.flush_if_full();
        }
    };
    let changed: chrono::DateTime<chrono::Utc> = meta
        .modified()
        .map(Into::into)
        .unwrap_or_else(|_| chrono::Utc::now());
    let updated_at = changed.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    match crate::einvoice::read::read_received(&bytes, &updated_at, &origin) {
        Ok(doc) => {
            out.page.readable_files.push(file_id.clone());
            out.page.items.push(Item::Doc {
                doc: Box::new(doc),
                origin,
                hash: Some(hex::encode(Sha256::digest(&bytes))),
            });
        }
        Err(e) => out
            .page
            .items
            .push(bad(format!("{e}; the file is read again once it changes"))),
    }
    out.flush_if_full()
}
