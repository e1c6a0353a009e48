//! Factur-X 1.07 / 1.09, EN 16931 profile: a PDF/A-3 whose catalog carries the French-core CII
//! (the very bytes the CII writer gives) as the associated file `factur-x.xml`. The PDF is the
//! invoice's own when the source gives one ([`attach`]), else one facto draws ([`render`]).
//! Bytes in, bytes out, no IO; the same document always gives the same bytes (dates from the
//! document, file ID from the XML), so a resend carries the same file and sha256.

mod pdfa;
mod render;
mod subset;

use lopdf::Document;

use super::InvoiceView;

/// Name of the embedded XML (Factur-X: always this name).
pub const XML_NAME: &str = "factur-x.xml";

/// The profile written in the XMP (`fx:ConformanceLevel`): the CII is written for EN 16931.
pub const CONFORMANCE_LEVEL: &str = "EN 16931";

/// Why a Factur-X cannot be made.
#[derive(Debug, thiserror::Error)]
pub enum FacturxError {
    /// The invoice PDF of the source cannot be read as a PDF.
    #[error("the invoice PDF cannot be read as a PDF: {0}")]
    Unreadable(String),
    /// The invoice PDF is encrypted: PDF/A forbids it.
    #[error("the invoice PDF is encrypted, which PDF/A forbids")]
    Encrypted,
    /// The PDF cannot be written (a bug: the input was read).
    #[error("the Factur-X PDF cannot be written: {0}")]
    Write(String),
}

fn meta<'a>(v: &InvoiceView<'a>) -> pdfa::Meta<'a> {
    let what = if v.is_credit_note() {
        "Avoir"
    } else {
        "Facture"
    };
    pdfa::Meta {
        title: format!("{what} {}", v.doc.number),
        author: &v.doc.seller.name,
        date: v.doc.issue_date,
    }
}

/// A Factur-X drawn by facto: the invoice's readable pages (see `render`) with `cii` attached.
///
/// # Errors
///
/// [`FacturxError::Write`] only (the input is facto's own).
pub fn render(v: &InvoiceView<'_>, cii: &[u8]) -> Result<Vec<u8>, FacturxError> {
    let mut doc = render::document(v)?;
    pdfa::finish(&mut doc, cii, &meta(v))
}

/// The source's own invoice PDF made a Factur-X: `cii` attached as `factur-x.xml` (replacing an
/// earlier `factur-x.xml`), the catalog's `/AF`, the XMP of PDF/A-3 with the Factur-X schema
/// (replacing the PDF's own metadata), an sRGB output intent and a file ID. What the pages
/// themselves use (fonts not embedded, transparency, other colour spaces) is left as it is: a
/// PDF that was not PDF/A to begin with is not made one by this.
///
/// # Errors
///
/// The PDF cannot be read, or it is encrypted.
pub fn attach(pdf: &[u8], v: &InvoiceView<'_>, cii: &[u8]) -> Result<Vec<u8>, FacturxError> {
    // The PDF comes from outside: should the reader fail on it in a way it does not report, the
    // document is held like any unreadable PDF, and the run goes on. Nothing shared is mutated.
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| attach_to(pdf, v, cii)))
        .unwrap_or_else(|_| {
            Err(FacturxError::Unreadable(
                "its structure broke the reader".into(),
            ))
        })
}

fn attach_to(pdf: &[u8], v: &InvoiceView<'_>, cii: &[u8]) -> Result<Vec<u8>, FacturxError> {
    let mut doc = Document::load_mem(pdf).map_err(|e| FacturxError::Unreadable(e.to_string()))?;
    if doc.is_encrypted() || doc.was_encrypted() {
        return Err(FacturxError::Encrypted);
    }
    // Incremental updates are folded in: the file is written anew, in one piece.
    doc.trailer.remove(b"Prev");
    doc.trailer.remove(b"Encrypt");
    pdfa::finish(&mut doc, cii, &meta(v))
}

/// The `factur-x.xml` a PDF carries (through the catalog's `/Names /EmbeddedFiles`).
///
/// # Errors
///
/// The PDF cannot be read, or it has no `factur-x.xml`.
pub fn embedded_xml(pdf: &[u8]) -> Result<Vec<u8>, FacturxError> {
    let unreadable = |what: &str| FacturxError::Unreadable(what.to_owned());
    let doc = Document::load_mem(pdf).map_err(|e| FacturxError::Unreadable(e.to_string()))?;
    let names = doc
        .catalog()
        .and_then(|c| c.get_deref(b"Names", &doc))
        .and_then(lopdf::Object::as_dict)
        .and_then(|n| n.get_deref(b"EmbeddedFiles", &doc))
        .and_then(lopdf::Object::as_dict)
        .and_then(|e| e.get(b"Names"))
        .and_then(lopdf::Object::as_array)
        .map_err(|_| unreadable("no embedded files"))?;
    for pair in names.chunks(2) {
        let [name, spec] = pair else { continue };
        if name.as_str().ok() != Some(XML_NAME.as_bytes()) {
            continue;
        }
        let stream = doc
            .dereference(spec)
            .and_then(|(_, s)| s.as_dict())
            .and_then(|s| s.get(b"EF"))
            .and_then(lopdf::Object::as_dict)
            .and_then(|ef| ef.get(b"F"))
            .and_then(|f| doc.dereference(f))
            .and_then(|(_, f)| f.as_stream())
            .map_err(|_| unreadable("factur-x.xml has no file stream"))?;
        return stream
            .decompressed_content()
            .map_err(|e| FacturxError::Unreadable(e.to_string()));
    }
    Err(unreadable("no factur-x.xml"))
}

#[cfg(test)]
mod tests;
