//! Sources: where documents come from. Each kind pages through its documents and reports the
//! cursor to save once every page was processed; a run that fails keeps the old cursor, so no
//! document is skipped.

pub mod attachments;
pub mod http;
pub mod json_dir;
pub mod push;
pub mod unknown;

use crate::model::{DocParseError, Document};

/// One thing read from a source.
#[derive(Debug)]
pub enum Item {
    /// A well-formed document.
    Doc {
        /// The document.
        doc: Box<Document>,
        /// File or URL it came from.
        origin: String,
        /// SHA-256 of the document's bytes as read, when the source has them (else the
        /// pipeline hashes the canonical JSON).
        hash: Option<String>,
    },
    /// Something that could not be read as a document: held with the message.
    Bad {
        /// Ledger id: the document's id, or `<file>#<position>`, or `file:<file>`.
        id: String,
        /// Invoice number when it could be read.
        number: Option<String>,
        /// What is wrong.
        error: DocParseError,
    },
}

/// A page of items, plus the ids of file-level problems now solved (their held records go).
#[derive(Debug, Default)]
pub struct Page {
    /// Items.
    pub items: Vec<Item>,
    /// `file:<name>` ids of files that now read correctly.
    pub readable_files: Vec<String>,
    /// Fields the documents carried that facto does not know (accepted, listed as warnings).
    pub unknown_fields: Vec<unknown::UnknownField>,
}

/// Errors that stop a pull (the cursor is not advanced).
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The folder cannot be listed.
    #[error("cannot read source folder {path}: {detail}")]
    Folder {
        /// Folder.
        path: String,
        /// Why.
        detail: String,
    },
    /// An HTTP request failed for good.
    #[error(transparent)]
    Http(#[from] crate::retry::HttpFailure),
    /// A page of the API is not the JSON expected.
    #[error("{url}: page {page} is malformed: {detail}; nothing after the last good page was taken, the cursor stays where it was")]
    MalformedPage {
        /// URL.
        url: String,
        /// Page number (1-based).
        page: usize,
        /// Why.
        detail: String,
    },
    /// The connector is misconfigured (missing token variable...).
    #[error("{0}")]
    Config(String),
}

/// A source another module implements (the PA's received invoices: `targets::pa::inbox`), as
/// the pipeline pulls it.
pub trait Paged: Send {
    /// The next page, or `None` when the pull is complete.
    fn next_page(
        &mut self,
    ) -> std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<Option<Page>, SourceError>> + Send + '_>,
    >;
    /// The cursor to save, kept before the documents read from `origins`.
    fn cursor_before(&self, origins: &std::collections::BTreeSet<String>) -> serde_json::Value;
}

/// A source opened for one pull.
pub enum Source {
    /// JSON files in a folder.
    JsonDir(json_dir::JsonDirSource),
    /// A paged HTTP API.
    Http(Box<http::HttpSource>),
    /// Another kind ([`Paged`]).
    Paged(Box<dyn Paged>),
}

impl Source {
    /// The next page, or `None` when the pull is complete.
    ///
    /// # Errors
    ///
    /// See [`SourceError`].
    pub async fn next_page(&mut self) -> Result<Option<Page>, SourceError> {
        match self {
            Source::JsonDir(s) => s.next_page(),
            Source::Http(s) => s.next_page().await,
            Source::Paged(s) => s.next_page().await,
        }
    }

    /// The files this pull does not read because they did not change (json-dir; none for
    /// http), as documents' origins name them.
    pub fn unread_origins(&self) -> std::collections::BTreeSet<String> {
        match self {
            Source::JsonDir(s) => s.unread_origins().clone(),
            Source::Http(_) | Source::Paged(_) => std::collections::BTreeSet::new(),
        }
    }

    /// The cursor to save, kept before the documents read from `origins` (files or pages) so
    /// that the next pull reads them again: the two copies of an id read twice stay in sight
    /// until a human removes one.
    pub fn cursor_before(&self, origins: &std::collections::BTreeSet<String>) -> serde_json::Value {
        match self {
            Source::JsonDir(s) => s.cursor_before(origins),
            Source::Http(s) => s.cursor_before(origins),
            Source::Paged(s) => s.cursor_before(origins),
        }
    }
}

/// Splits a parsed JSON value (one document or an array of them) into items.
pub(crate) fn items_from_value(value: serde_json::Value, origin: &str, page: &mut Page) {
    let values = match value {
        serde_json::Value::Array(v) => v,
        other => vec![other],
    };
    for (pos, v) in values.into_iter().enumerate() {
        item_from_value(v, origin, pos, page);
    }
}

/// One value read at `pos` of `origin`: a document, or a held item naming what is wrong.
pub(crate) fn item_from_value(v: serde_json::Value, origin: &str, pos: usize, page: &mut Page) {
    let out = &mut page.items;
    let (raw_id, number) = crate::model::raw_identity(&v, pos);
    let escaped = v
        .get("id")
        .and_then(|x| x.as_str())
        .is_some_and(|s| s.chars().any(char::is_control));
    let mut unknown = Vec::new();
    let parsed = crate::model::parse_document_noting(v, origin, pos, &mut unknown);
    if let Ok(doc) = &parsed {
        page.unknown_fields
            .extend(unknown::of_document(unknown, doc));
    }
    match parsed {
        Ok(doc) => out.push(Item::Doc {
            doc: Box::new(doc),
            origin: origin.to_owned(),
            hash: None,
        }),
        Err(error) => {
            let id = if raw_id.starts_with('#') {
                format!("{origin}{raw_id}")
            } else if escaped {
                // Never the record of a real document whose id is the escaped text.
                format!("{}{raw_id}", crate::model::MALFORMED_ID)
            } else {
                raw_id
            };
            out.push(Item::Bad { id, number, error });
        }
    }
}
