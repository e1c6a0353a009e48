//! Reading an e-invoice someone else wrote (issue 15 §3, supplier invoices received through the
//! PA): a CII (D16B or D22B), a UBL 2.1 Invoice or CreditNote, or the CII inside a Factur-X PDF,
//! into facto's canonical document. The XML becomes a small tree (local names, bounded depth and
//! size: hostile input is an error, not a panic), each syntax's reader writes the source format's
//! JSON from it ([`cii`], [`ubl`]), and that JSON goes through the same parser and checks as any
//! source document, so a received invoice is held for the same reasons with the same messages.

mod cii;
mod ubl;

use std::borrow::Cow;

use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;
use serde_json::Value;

use crate::model::Document;

/// Most nested elements a document may open.
const MAX_DEPTH: usize = 64;
/// Most elements a document may hold (a 10 000-line invoice holds about 300 000).
const MAX_ELEMENTS: usize = 1_000_000;

/// Why a received file could not be read into a document.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReadError {
    /// Not well-formed XML (or not UTF-8), or over the bounds.
    #[error("the file is not well-formed XML ({0})")]
    Xml(String),
    /// Another kind of file.
    #[error("the file is a {0}, not an invoice facto reads (CII CrossIndustryInvoice, UBL Invoice or CreditNote, Factur-X)")]
    NotInvoice(String),
    /// A value the document cannot do without.
    #[error("the invoice has no {0}")]
    Missing(&'static str),
    /// Read, but the canonical document refuses it (a bad amount or date, say).
    #[error("{0}")]
    Document(String),
}

/// One element: its local name, attributes, text and children.
#[derive(Debug, Default)]
pub(crate) struct El {
    pub(crate) name: String,
    attrs: Vec<(String, String)>,
    text: String,
    pub(crate) children: Vec<El>,
}

impl El {
    /// The first child named `name`.
    pub(crate) fn child(&self, name: &str) -> Option<&El> {
        self.children.iter().find(|c| c.name == name)
    }

    /// Every child named `name`.
    pub(crate) fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a El> + 'a {
        self.children.iter().filter(move |c| c.name == name)
    }

    /// The element at `path` (child names) under this one.
    pub(crate) fn at(&self, path: &[&str]) -> Option<&El> {
        path.iter().try_fold(self, |e, n| e.child(n))
    }

    /// The trimmed text at `path`, when not empty.
    pub(crate) fn text(&self, path: &[&str]) -> Option<String> {
        let t = self.at(path)?.text.trim();
        (!t.is_empty()).then(|| t.to_owned())
    }

    /// An attribute.
    pub(crate) fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The trimmed text at `path` as a JSON string, or JSON null.
    pub(crate) fn json(&self, path: &[&str]) -> Value {
        self.text(path).map_or(Value::Null, Value::String)
    }
}

fn local(e: &BytesStart<'_>) -> String {
    e.local_name().as_ref().to_owned()
}

fn element(e: &BytesStart<'_>) -> Result<El, ReadError> {
    let mut attrs = Vec::new();
    for a in e.attributes() {
        let a = a.map_err(|x| ReadError::Xml(x.to_string()))?;
        let key = a.key.local_name().as_ref().to_owned();
        let value = a
            .normalized_value(quick_xml::XmlVersion::Implicit1_0)
            .map(Cow::into_owned)
            .map_err(|x| ReadError::Xml(x.to_string()))?;
        attrs.push((key, value));
    }
    Ok(El {
        name: local(e),
        attrs,
        ..El::default()
    })
}

/// The element tree of an XML document.
///
/// # Errors
///
/// Not UTF-8, not well-formed, deeper than [`MAX_DEPTH`] or larger than [`MAX_ELEMENTS`].
pub(crate) fn tree(bytes: &[u8]) -> Result<El, ReadError> {
    let text = std::str::from_utf8(bytes).map_err(|e| ReadError::Xml(e.to_string()))?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut reader = Reader::from_str(text);
    let mut stack: Vec<El> = Vec::new();
    let mut count = 0usize;
    let mut root = None;
    loop {
        let ev = reader
            .read_event()
            .map_err(|e| ReadError::Xml(format!("at byte {}: {e}", reader.buffer_position())))?;
        let mut opened = |e: &BytesStart<'_>| -> Result<El, ReadError> {
            count += 1;
            if count > MAX_ELEMENTS || stack.len() >= MAX_DEPTH {
                return Err(ReadError::Xml(format!(
                    "more than {MAX_ELEMENTS} elements or {MAX_DEPTH} levels"
                )));
            }
            element(e)
        };
        match ev {
            Event::Start(e) => {
                let el = opened(&e)?;
                stack.push(el);
            }
            Event::Empty(e) => {
                let el = opened(&e)?;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(el),
                    None => root = Some(el),
                }
            }
            Event::Text(t) => {
                if let Some(el) = stack.last_mut() {
                    el.text.push_str(&t.xml10_content());
                }
            }
            Event::CData(t) => {
                if let Some(el) = stack.last_mut() {
                    el.text.push_str(&t.xml10_content());
                }
            }
            Event::GeneralRef(r) => {
                let raw = format!("&{};", r.xml10_content());
                let ch = quick_xml::escape::unescape(&raw)
                    .map_err(|e| ReadError::Xml(format!("entity {raw}: {e}")))?;
                if let Some(el) = stack.last_mut() {
                    el.text.push_str(&ch);
                }
            }
            Event::End(_) => {
                let Some(el) = stack.pop() else {
                    return Err(ReadError::Xml("an end tag without its start".into()));
                };
                match stack.last_mut() {
                    Some(parent) => parent.children.push(el),
                    None => root = Some(el),
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    root.ok_or_else(|| ReadError::Xml("no root element".into()))
}

/// What the caller knows of a received file that the file does not say.
pub struct Received<'a> {
    /// The document's id in facto (stable: the PA's flow id, say).
    pub id: &'a str,
    /// When the PA last changed the flow (the source cursor), RFC 3339.
    pub updated_at: &'a str,
    /// Where it came from, for messages (`PA flow flow-0042`).
    pub origin: &'a str,
}

/// The source-format JSON of an e-invoice: CII, UBL, or the CII of a Factur-X PDF.
///
/// # Errors
///
/// Not an invoice facto reads, or one without its number or issue date.
pub fn to_json(bytes: &[u8], r: &Received<'_>) -> Result<Value, ReadError> {
    let xml: Cow<'_, [u8]> =
        if bytes.starts_with(b"%PDF-") {
            Cow::Owned(crate::einvoice::facturx::embedded_xml(bytes).map_err(|e| {
                ReadError::NotInvoice(format!("PDF without its factur-x.xml ({e})"))
            })?)
        } else {
            Cow::Borrowed(bytes)
        };
    let root = tree(&xml)?;
    let mut v = match root.name.as_str() {
        "CrossIndustryInvoice" => cii::read(&root)?,
        "Invoice" | "CreditNote" => ubl::read(&root)?,
        other => return Err(ReadError::NotInvoice(other.to_owned())),
    };
    v["id"] = Value::String(r.id.to_owned());
    v["updated_at"] = Value::String(r.updated_at.to_owned());
    v["status"] = Value::String("final".into());
    Ok(v)
}

/// A received e-invoice as a canonical document, through the source parser.
///
/// # Errors
///
/// As [`to_json`], or a value the document format refuses (named with its path).
pub fn read(bytes: &[u8], r: &Received<'_>) -> Result<Document, ReadError> {
    let v = to_json(bytes, r)?;
    crate::model::parse_document(v, r.origin, 0).map_err(|e| ReadError::Document(e.to_string()))
}

/// A value the document cannot do without, or the error naming it.
pub(crate) fn need(v: Option<String>, what: &'static str) -> Result<String, ReadError> {
    v.ok_or(ReadError::Missing(what))
}

/// A received e-invoice as a document whose id is its seller and number
/// (`<seller SIREN, else VAT id, else name>:<number>`): the same invoice received twice, from a
/// folder or from the PA, is one document.
///
/// # Errors
///
/// As [`read`].
pub fn read_received(bytes: &[u8], updated_at: &str, origin: &str) -> Result<Document, ReadError> {
    let mut v = to_json(
        bytes,
        &Received {
            id: "",
            updated_at,
            origin,
        },
    )?;
    let seller = &v["seller"];
    let who = ["siren", "vat_id", "name"]
        .iter()
        .find_map(|k| seller[k].as_str().filter(|s| !s.trim().is_empty()))
        .unwrap_or("unknown seller")
        .to_owned();
    let number = v["number"].as_str().unwrap_or_default().to_owned();
    v["id"] = Value::String(format!("{who}:{number}"));
    crate::model::parse_document(v, origin, 0).map_err(|e| ReadError::Document(e.to_string()))
}

/// `20260115` (format 102) or `2026-01-15` as `2026-01-15`; anything else as it is, for the
/// document parser to name.
pub(crate) fn date(s: Option<String>) -> Value {
    match s {
        Some(d) if d.len() == 8 && d.bytes().all(|b| b.is_ascii_digit()) => {
            Value::String(format!("{}-{}-{}", &d[..4], &d[4..6], &d[6..]))
        }
        Some(d) => Value::String(d),
        None => Value::Null,
    }
}

/// A tax code for a VAT category and rate, as received invoices name them (`S 20`, `E 0`,
/// `AE 0`): what the purchase mapping maps.
pub(crate) fn tax_code(category: Option<String>, rate: Option<String>) -> Value {
    let cat = category.unwrap_or_else(|| "S".into());
    let rate = rate
        .and_then(|r| r.parse::<rust_decimal::Decimal>().ok())
        .map(|r| r.normalize().to_string())
        .unwrap_or_else(|| "0".into());
    Value::String(format!("{cat} {rate}"))
}

#[cfg(test)]
mod tests;
