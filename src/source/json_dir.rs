//! `json-dir` source: each `.json` file of a folder holds one document or an array of them.
//! The cursor is each file's size and modification time: an unchanged folder is re-scanned
//! without reading a single file. Changed and new files are read whole; the ledger tells which of
//! their documents are new, changed or already delivered.

mod config;

pub use config::JsonDirConfig;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{items_from_value, Item, Page, SourceError};
use crate::model::{DocParseError, Document};

/// Size and modification time (ns) of a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct Fingerprint(u64, u128);

#[derive(Debug, Default, Serialize, Deserialize)]
struct DirCursor {
    files: BTreeMap<String, Fingerprint>,
}

/// Reads a file straight into documents when every one of them is well formed (the common case,
/// and several times faster than going through `serde_json::Value`). On any error nothing is
/// added and the caller takes the slow path, which names the bad document and field.
fn fast_parse(bytes: &[u8], origin: &str, page: &mut Page) -> bool {
    use serde_json::value::RawValue;
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    let raws: Vec<&RawValue> = match first {
        Some(b'[') => match serde_json::from_slice::<Vec<&RawValue>>(bytes) {
            Ok(r) => r,
            Err(_) => return false,
        },
        Some(b'{') => match serde_json::from_slice::<&RawValue>(bytes) {
            Ok(r) => vec![r],
            Err(_) => return false,
        },
        _ => return false,
    };
    let mut items = Vec::with_capacity(raws.len());
    let mut unknown_fields = Vec::new();
    for raw in raws {
        let mut seen = std::collections::BTreeSet::new();
        let mut note = |p: serde_ignored::Path<'_>| {
            seen.insert(crate::model::ignored_path(&p));
        };
        let mut de = serde_json::Deserializer::from_str(raw.get());
        let parsed: Result<Document, _> =
            serde::Deserialize::deserialize(serde_ignored::Deserializer::new(&mut de, &mut note));
        match parsed {
            Ok(doc) if crate::model::identity_error(&doc).is_none() => {
                unknown_fields.extend(super::unknown::of_document(seen, &doc));
                let hash = hex::encode(Sha256::digest(raw.get().as_bytes()));
                items.push(Item::Doc {
                    doc: Box::new(doc),
                    origin: origin.to_owned(),
                    hash: Some(hash),
                });
            }
            _ => return false,
        }
    }
    page.items.extend(items);
    page.unknown_fields.extend(unknown_fields);
    true
}

/// A folder being read.
pub struct JsonDirSource {
    pages: std::sync::mpsc::Receiver<(Page, Vec<String>)>,
    pending_len: usize,
    seen: BTreeMap<String, Fingerprint>,
    dir: PathBuf,
    unread: std::collections::BTreeSet<String>,
}

/// Reads and parses files into pages on its own thread, one page ahead of the pipeline, so that
/// parsing overlaps mapping, rendering and ledger writes (the machine has more than one core).
fn reader(
    dir: PathBuf,
    names: Vec<String>,
    page_size: usize,
    tx: std::sync::mpsc::SyncSender<(Page, Vec<String>)>,
) {
    let mut names = names.into_iter().peekable();
    while names.peek().is_some() {
        let mut page = Page::default();
        let mut vanished = Vec::new();
        while page.items.len() < page_size {
            let Some(name) = names.next() else { break };
            read_file(&dir, &name, &mut page, &mut vanished);
        }
        if tx.send((page, vanished)).is_err() {
            return; // The pull was abandoned.
        }
    }
}

fn read_file(dir: &Path, name: &str, page: &mut Page, vanished: &mut Vec<String>) {
    let path = dir.join(name);
    let origin = path.display().to_string();
    let file_id = format!("file:{origin}");
    let bad = |detail: String| Item::Bad {
        id: file_id.clone(),
        number: None,
        error: DocParseError {
            origin: origin.clone(),
            doc: "(whole file)".into(),
            path: "(file)".into(),
            message: detail,
        },
    };
    match std::fs::read(&path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => vanished.push(name.to_owned()),
        Err(e) => page.items.push(bad(format!("cannot read the file: {e}"))),
        Ok(bytes) if fast_parse(&bytes, &origin, page) => page.readable_files.push(file_id),
        Ok(bytes) => match serde_json::from_slice::<serde_json::Value>(&bytes) {
            Ok(value) => {
                page.readable_files.push(file_id);
                items_from_value(value, &origin, page);
            }
            Err(e) => page.items.push(bad(format!(
                "invalid JSON at line {} column {}: {e}; fix the file, it is read again on the next run",
                e.line(),
                e.column()
            ))),
        },
    }
}

fn fingerprint(meta: &std::fs::Metadata) -> Fingerprint {
    let mtime = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    Fingerprint(meta.len(), mtime)
}

impl JsonDirSource {
    /// Lists the folder and keeps the files that changed since `cursor`.
    ///
    /// # Errors
    ///
    /// The folder cannot be listed.
    pub fn open(
        dir: &Path,
        page_size: usize,
        cursor: Option<&serde_json::Value>,
    ) -> Result<Self, SourceError> {
        let folder_err = |e: std::io::Error| SourceError::Folder {
            path: dir.display().to_string(),
            detail: e.to_string(),
        };
        let previous: DirCursor = cursor
            .and_then(|c| serde_json::from_value(c.clone()).ok())
            .unwrap_or_default();
        let mut seen = BTreeMap::new();
        let mut changed = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(folder_err)? {
            let entry = entry.map_err(folder_err)?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if !name.ends_with(".json") || name.starts_with('.') {
                continue;
            }
            let meta = entry.metadata().map_err(folder_err)?;
            if !meta.is_file() {
                continue;
            }
            let fp = fingerprint(&meta);
            if previous.files.get(&name) != Some(&fp) {
                changed.push(name.clone());
            }
            seen.insert(name, fp);
        }
        changed.sort();
        let unread = seen
            .keys()
            .filter(|n| changed.binary_search(n).is_err())
            .map(|n| dir.join(n).display().to_string())
            .collect();
        let pending_len = changed.len();
        let (tx, pages) = std::sync::mpsc::sync_channel(1);
        let dir = dir.to_owned();
        let page_size = page_size.max(1);
        let reader_dir = dir.clone();
        std::thread::Builder::new()
            .name("facto-json-dir".into())
            .spawn(move || reader(reader_dir, changed, page_size, tx))
            .map_err(folder_err)?;
        Ok(JsonDirSource {
            pages,
            pending_len,
            seen,
            dir,
            unread,
        })
    }

    /// Files to read in this pull (new or changed since the cursor).
    pub fn pending_files(&self) -> usize {
        self.pending_len
    }

    /// The files of the folder this pull does not read (unchanged since the cursor), as
    /// documents' origins name them.
    pub fn unread_origins(&self) -> &std::collections::BTreeSet<String> {
        &self.unread
    }

    /// The next page of documents.
    ///
    /// # Errors
    ///
    /// Never for a bad file (that becomes a held item); the signature matches the other sources.
    pub fn next_page(&mut self) -> Result<Option<Page>, SourceError> {
        match self.pages.recv() {
            Ok((page, vanished)) => {
                for name in vanished {
                    self.seen.remove(&name);
                }
                Ok(Some(page))
            }
            Err(_) => Ok(None),
        }
    }

    /// Fingerprints of every file seen.
    pub fn cursor(&self) -> serde_json::Value {
        self.cursor_before(&std::collections::BTreeSet::new())
    }

    /// Fingerprints of every file seen but those `origins` name, which are read again.
    pub fn cursor_before(&self, origins: &std::collections::BTreeSet<String>) -> serde_json::Value {
        let files = self
            .seen
            .iter()
            .filter(|(name, _)| !origins.contains(&self.dir.join(name).display().to_string()))
            .map(|(n, f)| (n.clone(), *f))
            .collect();
        serde_json::to_value(DirCursor { files }).unwrap_or(serde_json::Value::Null)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(id: &str) -> String {
        format!(
            r#"{{"id":"{id}","number":"N{id}","kind":"invoice","status":"final","issue_date":"2026-01-01",
            "currency":"EUR","updated_at":"2026-01-01T00:00:00Z","seller":{{"name":"S"}},"buyer":{{"name":"B"}},
            "lines":[],"totals":{{"net":"0","tax":"0","gross":"0","due":"0"}}}}"#
        )
    }

    fn drain(s: &mut JsonDirSource) -> Vec<Item> {
        let mut out = Vec::new();
        while let Some(p) = s.next_page().unwrap() {
            out.extend(p.items);
        }
        out
    }

    #[test]
    fn reads_objects_and_arrays_then_only_changed_files() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.json"), doc("a")).unwrap();
        std::fs::write(
            dir.path().join("b.json"),
            format!("[{},{}]", doc("b1"), doc("b2")),
        )
        .unwrap();
        std::fs::write(dir.path().join("notes.txt"), "x").unwrap();
        let mut s = JsonDirSource::open(dir.path(), 2, None).unwrap();
        assert_eq!(drain(&mut s).len(), 3);
        let cursor = s.cursor();
        let mut s = JsonDirSource::open(dir.path(), 2, Some(&cursor)).unwrap();
        assert_eq!(s.pending_files(), 0);
        assert!(drain(&mut s).is_empty());
        std::fs::write(dir.path().join("c.json"), doc("c")).unwrap();
        let mut s = JsonDirSource::open(dir.path(), 2, Some(&cursor)).unwrap();
        let items = drain(&mut s);
        assert_eq!(items.len(), 1);
        assert!(matches!(&items[0], Item::Doc { doc, .. } if doc.id == "c"));
    }

    #[test]
    fn invalid_json_becomes_a_held_item_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("bad.json"), "{ \"id\": ").unwrap();
        let mut s = JsonDirSource::open(dir.path(), 10, None).unwrap();
        let items = drain(&mut s);
        match &items[0] {
            Item::Bad { id, error, .. } => {
                assert!(id.starts_with("file:") && id.ends_with("bad.json"));
                assert!(
                    error.to_string().contains("invalid JSON at line 1"),
                    "{error}"
                );
            }
            other => panic!("{other:?}"),
        }
    }
}
