//! `json-dir` source: each `.json` file of a folder holds one document or an array of them.
//! The cursor is each file's size and modification time: an unchanged folder is re-scanned
//! without reading a single file. Changed and new files are read element by element, their
//! documents handed on page by page, so a big file never sits whole in memory; the ledger tells
//! which of their documents are new, changed or already delivered.

mod config;
mod einvoice;

pub use config::JsonDirConfig;

use std::collections::BTreeMap;
use std::io::{BufReader, Seek};
use std::path::{Path, PathBuf};
use std::sync::mpsc::SyncSender;
use std::time::UNIX_EPOCH;

use serde::de::{Deserializer as _, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};

use super::{item_from_value, Item, Page, SourceError};
use crate::model::{DocParseError, Document};

/// Files up to this size are read whole and parsed from memory (several times faster than from
/// a reader); bigger ones are parsed from disk, so the peak memory does not follow the file size.
const READ_WHOLE_MAX: u64 = 8 << 20;

/// Size and modification time (ns) of a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct Fingerprint(u64, u128);

#[derive(Debug, Default, Serialize, Deserialize)]
struct DirCursor {
    files: BTreeMap<String, Fingerprint>,
}

/// One element of a file: a document straight from its text when it is well formed (the common
/// case, and several times faster than going through `serde_json::Value`), else through `Value`,
/// which names the bad document and field.
fn push_element(raw: &RawValue, pos: usize, origin: &str, page: &mut Page) {
    let mut seen = std::collections::BTreeSet::new();
    let mut note = |p: serde_ignored::Path<'_>| {
        seen.insert(crate::model::ignored_path(&p));
    };
    let mut de = serde_json::Deserializer::from_str(raw.get());
    let parsed: Result<Document, _> =
        Deserialize::deserialize(serde_ignored::Deserializer::new(&mut de, &mut note));
    match parsed {
        Ok(doc) if crate::model::identity_error(&doc).is_none() => {
            page.unknown_fields
                .extend(super::unknown::of_document(seen, &doc));
            let hash = hex::encode(Sha256::digest(raw.get().as_bytes()));
            page.items.push(Item::Doc {
                doc: Box::new(doc),
                origin: origin.to_owned(),
                hash: Some(hash),
            });
        }
        _ => match serde_json::from_str::<serde_json::Value>(raw.get()) {
            Ok(value) => item_from_value(value, origin, pos, page),
            // Valid JSON that `Value` cannot hold (a number out of range).
            Err(e) => page.items.push(Item::Bad {
                id: format!("{origin}#{pos}"),
                number: None,
                error: DocParseError {
                    origin: origin.to_owned(),
                    doc: format!("#{pos}"),
                    path: "(document)".into(),
                    message: e.to_string(),
                },
            }),
        },
    }
}

/// What a file holds at its top level: an array of documents or a single value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    Array,
    Single,
}

/// Reads a whole value, keeping nothing, to learn its [`Shape`] (and that it is valid JSON).
struct ShapeVisitor;

impl<'de> Visitor<'de> for ShapeVisitor {
    type Value = Shape;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Shape, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Shape::Array)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Shape, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Shape::Single)
    }

    fn visit_bool<E>(self, _: bool) -> Result<Shape, E> {
        Ok(Shape::Single)
    }

    fn visit_i64<E>(self, _: i64) -> Result<Shape, E> {
        Ok(Shape::Single)
    }

    fn visit_u64<E>(self, _: u64) -> Result<Shape, E> {
        Ok(Shape::Single)
    }

    fn visit_f64<E>(self, _: f64) -> Result<Shape, E> {
        Ok(Shape::Single)
    }

    fn visit_str<E>(self, _: &str) -> Result<Shape, E> {
        Ok(Shape::Single)
    }

    fn visit_unit<E>(self) -> Result<Shape, E> {
        Ok(Shape::Single)
    }
}

/// Hands each element of an array on, one at a time, without collecting them.
struct Elements<'a, F>(&'a mut F);

/// The message of the error that stops a parse whose pages nobody reads any more.
const ABANDONED: &str = "facto: the pull was abandoned";

impl<'de, F: FnMut(Box<RawValue>) -> bool> Visitor<'de> for Elements<'_, F> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an array")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(raw) = seq.next_element::<Box<RawValue>>()? {
            if !(self.0)(raw) {
                return Err(serde::de::Error::custom(ABANDONED));
            }
        }
        Ok(())
    }
}

/// A file's bytes: in memory when small, else read from disk at each pass.
enum Input {
    Whole(Vec<u8>),
    Streamed(std::fs::File),
}

/// The [`Shape`] of a whole JSON text, checking it is one valid value and nothing after.
fn shape_of<'de, R: serde_json::de::Read<'de>>(
    mut de: serde_json::Deserializer<R>,
) -> Result<Shape, serde_json::Error> {
    let shape = (&mut de).deserialize_any(ShapeVisitor)?;
    de.end()?;
    Ok(shape)
}

/// Hands each element of a JSON text of `shape` to `f` (a single value is one element).
fn elements_of<'de, R, F>(
    mut de: serde_json::Deserializer<R>,
    shape: Shape,
    f: &mut F,
) -> Result<(), serde_json::Error>
where
    R: serde_json::de::Read<'de>,
    F: FnMut(Box<RawValue>) -> bool,
{
    match shape {
        Shape::Array => (&mut de).deserialize_seq(Elements(f))?,
        Shape::Single => {
            let raw = Box::<RawValue>::deserialize(&mut de)?;
            if !f(raw) {
                return Err(serde::de::Error::custom(ABANDONED));
            }
        }
    }
    de.end()
}

impl Input {
    fn open(path: &Path, whole_max: u64) -> std::io::Result<Input> {
        let mut file = std::fs::File::open(path)?;
        if file.metadata()?.len() <= whole_max {
            let mut bytes = Vec::new();
            std::io::Read::read_to_end(&mut file, &mut bytes)?;
            Ok(Input::Whole(bytes))
        } else {
            Ok(Input::Streamed(file))
        }
    }

    /// A reader from the start of a streamed file.
    fn rewound(file: &std::fs::File) -> Result<BufReader<&std::fs::File>, serde_json::Error> {
        let mut f = file;
        f.rewind().map_err(serde_json::Error::io)?;
        Ok(BufReader::with_capacity(1 << 16, f))
    }

    /// First pass: the shape of the file, and whether it is valid JSON at all.
    fn shape(&self) -> Result<Shape, serde_json::Error> {
        match self {
            Input::Whole(bytes) => shape_of(serde_json::Deserializer::from_slice(bytes)),
            Input::Streamed(file) => {
                shape_of(serde_json::Deserializer::from_reader(Input::rewound(file)?))
            }
        }
    }

    /// Second pass: each element to `f`, until `f` says stop.
    fn elements(
        &self,
        shape: Shape,
        mut f: impl FnMut(Box<RawValue>) -> bool,
    ) -> Result<(), serde_json::Error> {
        match self {
            Input::Whole(bytes) => {
                elements_of(serde_json::Deserializer::from_slice(bytes), shape, &mut f)
            }
            Input::Streamed(file) => elements_of(
                serde_json::Deserializer::from_reader(Input::rewound(file)?),
                shape,
                &mut f,
            ),
        }
    }
}

/// Fills pages of `size` items and hands each on, to the pipeline, as soon as it is full.
struct Pager {
    page: Page,
    vanished: Vec<String>,
    size: usize,
    tx: SyncSender<(Page, Vec<String>)>,
}

impl Pager {
    /// Hands the page on if it is full. False when the pull was abandoned.
    fn flush_if_full(&mut self) -> bool {
        self.page.items.len() < self.size || self.flush()
    }

    /// Hands the page on. False when the pull was abandoned.
    fn flush(&mut self) -> bool {
        let page = std::mem::take(&mut self.page);
        let vanished = std::mem::take(&mut self.vanished);
        self.tx.send((page, vanished)).is_ok()
    }
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
    whole_max: u64,
    tx: SyncSender<(Page, Vec<String>)>,
) {
    let mut out = Pager {
        page: Page::default(),
        vanished: Vec::new(),
        size: page_size,
        tx,
    };
    for name in names {
        let read = if einvoice::is_einvoice(&name) {
            einvoice::read_file(&dir, &name, &mut out)
        } else {
            read_file(&dir, &name, &mut out, whole_max)
        };
        if !read {
            return; // The pull was abandoned.
        }
    }
    let p = &out.page;
    if !(p.items.is_empty()
        && p.readable_files.is_empty()
        && p.unknown_fields.is_empty()
        && out.vanished.is_empty())
    {
        out.flush();
    }
}

/// A file held whole (`file:<origin>`): none of its documents goes out, and it is read again
/// once it changes.
fn whole_file(origin: &str, message: String) -> Item {
    Item::Bad {
        id: format!("file:{origin}"),
        number: None,
        error: DocParseError {
            origin: origin.to_owned(),
            doc: "(whole file)".into(),
            path: "(file)".into(),
            message,
        },
    }
}

/// Reads one file into pages. False when the pull was abandoned.
fn read_file(dir: &Path, name: &str, out: &mut Pager, whole_max: u64) -> bool {
    let path = dir.join(name);
    let origin = path.display().to_string();
    let file_id = format!("file:{origin}");
    let bad = |detail: String| whole_file(&origin, detail);
    let cannot_read = |e: &dyn std::fmt::Display| bad(format!("cannot read the file: {e}"));
    let input = match Input::open(&path, whole_max) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            out.vanished.push(name.to_owned());
            return true;
        }
        Err(e) => {
            out.page.items.push(cannot_read(&e));
            return out.flush_if_full();
        }
        Ok(input) => input,
    };
    // A file that is not JSON is held whole: none of its documents goes out, and it is read
    // again on the next run. Hence a first pass, keeping nothing, before any document goes out.
    let shape = match input.shape() {
        Ok(shape) => shape,
        Err(e) if e.is_io() => {
            out.page.items.push(cannot_read(&e));
            return out.flush_if_full();
        }
        Err(e) => {
            out.page.items.push(bad(format!(
                "invalid JSON at line {} column {}: {e}; fix the file, it is read again on the next run",
                e.line(),
                e.column()
            )));
            return out.flush_if_full();
        }
    };
    out.page.readable_files.push(file_id.clone());
    let mut pos = 0;
    let mut abandoned = false;
    let read = input.elements(shape, |raw| {
        push_element(&raw, pos, &origin, &mut out.page);
        pos += 1;
        abandoned = !out.flush_if_full();
        !abandoned
    });
    if abandoned {
        return false;
    }
    if let Err(e) = read {
        // The file changed (or became unreadable) between the two passes: held, read again on
        // the next run; the documents already handed on are known to the ledger by then.
        out.page.items.push(cannot_read(&e));
    }
    out.flush_if_full()
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
    /// Lists the folder and keeps the files that changed since `cursor`: `.json` files, and
    /// with `einvoices` also `.xml` and `.pdf` e-invoices.
    ///
    /// # Errors
    ///
    /// The folder cannot be listed.
    pub fn open(
        dir: &Path,
        page_size: usize,
        cursor: Option<&serde_json::Value>,
        einvoices: bool,
    ) -> Result<Self, SourceError> {
        Self::open_with(dir, page_size, cursor, READ_WHOLE_MAX, einvoices)
    }

    /// [`JsonDirSource::open`], files above `whole_max` bytes streamed from disk.
    fn open_with(
        dir: &Path,
        page_size: usize,
        cursor: Option<&serde_json::Value>,
        whole_max: u64,
        einvoices: bool,
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
            let wanted = name.ends_with(".json") || (einvoices && einvoice::is_einvoice(&name));
            if !wanted || name.starts_with('.') {
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
            .spawn(move || reader(reader_dir, changed, page_size, whole_max, tx))
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
        let mut s = JsonDirSource::open(dir.path(), 2, None, false).unwrap();
        assert_eq!(drain(&mut s).len(), 3);
        let cursor = s.cursor();
        let mut s = JsonDirSource::open(dir.path(), 2, Some(&cursor), false).unwrap();
        assert_eq!(s.pending_files(), 0);
        assert!(drain(&mut s).is_empty());
        std::fs::write(dir.path().join("c.json"), doc("c")).unwrap();
        let mut s = JsonDirSource::open(dir.path(), 2, Some(&cursor), false).unwrap();
        let items = drain(&mut s);
        assert_eq!(items.len(), 1);
        assert!(matches!(&items[0], Item::Doc { doc, .. } if doc.id == "c"));
    }

    #[test]
    fn invalid_json_becomes_a_held_item_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("bad.json"), "{ \"id\": ").unwrap();
        let mut s = JsonDirSource::open(dir.path(), 10, None, false).unwrap();
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

    /// Reads `dir` in pages of `size`, files above `whole_max` bytes streamed: each page's items.
    fn pages(dir: &Path, size: usize, whole_max: u64) -> Vec<Vec<Item>> {
        let mut s = JsonDirSource::open_with(dir, size, None, whole_max, false).unwrap();
        let mut out = Vec::new();
        while let Some(p) = s.next_page().unwrap() {
            out.push(p.items);
        }
        out
    }

    fn ids(items: &[Item]) -> Vec<String> {
        items
            .iter()
            .map(|i| match i {
                Item::Doc { doc, .. } => doc.id.clone(),
                Item::Bad { id, .. } => format!("bad:{id}"),
            })
            .collect()
    }

    #[test]
    fn one_big_file_yields_every_document_in_order_page_by_page() {
        let dir = tempfile::tempdir().unwrap();
        let docs: Vec<String> = (0..250).map(|i| doc(&format!("d{i:03}"))).collect();
        std::fs::write(
            dir.path().join("big.json"),
            format!("[{}]", docs.join(",\n")),
        )
        .unwrap();
        let want: Vec<String> = (0..250).map(|i| format!("d{i:03}")).collect();
        for whole_max in [0, u64::MAX] {
            let pages = pages(dir.path(), 100, whole_max);
            // Handed on as they are read: no page holds the whole file.
            let sizes: Vec<usize> = pages.iter().map(Vec::len).collect();
            assert_eq!(sizes, [100, 100, 50], "whole_max {whole_max}");
            assert_eq!(ids(&pages.into_iter().flatten().collect::<Vec<_>>()), want);
        }
    }

    #[test]
    fn a_streamed_file_gives_the_same_documents_and_hashes() {
        let dir = tempfile::tempdir().unwrap();
        let text = format!(
            " [\n {} ,\r\n\t{}, {}\n] \n",
            doc("a"),
            doc("b\\u00e9").replace("\"B\"", "\"B \\\"Caf\u{e9}\\\"\""),
            doc("c").replace("\"lines\"", "\"extra\":{\"k\":[1,2.5,null,true]},\"lines\"")
        );
        std::fs::write(dir.path().join("f.json"), text).unwrap();
        let summary = |whole_max| {
            let mut s = JsonDirSource::open_with(dir.path(), 10, None, whole_max, false).unwrap();
            let mut items = Vec::new();
            let mut unknown = Vec::new();
            while let Some(p) = s.next_page().unwrap() {
                items.extend(p.items);
                unknown.extend(p.unknown_fields.into_iter().map(|u| u.path));
            }
            let items: Vec<(String, String, Option<String>)> = items
                .into_iter()
                .map(|i| match i {
                    Item::Doc { doc, hash, .. } => (doc.id, doc.buyer.name, hash),
                    Item::Bad { id, .. } => panic!("{id}"),
                })
                .collect();
            (items, unknown)
        };
        let streamed = summary(0);
        assert_eq!(streamed, summary(u64::MAX));
        assert_eq!(streamed.0.len(), 3);
        assert_eq!(streamed.0[1].0, "b\u{e9}");
        assert_eq!(streamed.0[1].1, "B \"Caf\u{e9}\"");
        assert!(streamed.0.iter().all(|(_, _, h)| h.is_some()));
        assert_eq!(streamed.1, ["extra"]);
    }

    #[test]
    fn a_bad_document_in_the_middle_is_held_and_the_rest_goes_on() {
        let dir = tempfile::tempdir().unwrap();
        let bad = doc("m").replace(
            "\"issue_date\":\"2026-01-01\"",
            "\"issue_date\":\"someday\"",
        );
        let items: Vec<String> = (0..5)
            .map(|i| doc(&format!("d{i}")))
            .chain([bad.clone(), "42".to_owned()])
            .chain((5..10).map(|i| doc(&format!("d{i}"))))
            .collect();
        std::fs::write(dir.path().join("f.json"), format!("[{}]", items.join(","))).unwrap();
        let origin = dir.path().join("f.json").display().to_string();
        // What the document-by-document path says of each of the two, as before streaming.
        let mut want = Page::default();
        crate::source::items_from_value(
            serde_json::from_str(&format!("[{bad}]")).unwrap(),
            &origin,
            &mut want,
        );
        let mut want_42 = Page::default();
        item_from_value(serde_json::json!(42), &origin, 6, &mut want_42);
        for whole_max in [0, u64::MAX] {
            let got = pages(dir.path(), 4, whole_max)
                .into_iter()
                .flatten()
                .collect::<Vec<_>>();
            assert_eq!(
                ids(&got),
                [
                    "d0".to_owned(),
                    "d1".into(),
                    "d2".into(),
                    "d3".into(),
                    "d4".into(),
                    "bad:m".into(),
                    format!("bad:{origin}#6"),
                    "d5".into(),
                    "d6".into(),
                    "d7".into(),
                    "d8".into(),
                    "d9".into(),
                ]
            );
            for (g, w) in [(&got[5], &want.items[0]), (&got[6], &want_42.items[0])] {
                match (g, w) {
                    (Item::Bad { error: e, .. }, Item::Bad { error: w, .. }) => {
                        assert_eq!(e.to_string(), w.to_string());
                        assert_eq!(e.origin, origin);
                    }
                    other => panic!("{other:?}"),
                }
            }
            assert!(got[5..7]
                .iter()
                .any(|i| matches!(i, Item::Bad { error, .. } if error.path == "issue_date")));
        }
    }

    #[test]
    fn a_file_broken_after_many_documents_is_held_whole() {
        let dir = tempfile::tempdir().unwrap();
        let docs: Vec<String> = (0..50).map(|i| doc(&format!("d{i}"))).collect();
        // Cut short at the end: not one of its documents goes out.
        std::fs::write(dir.path().join("f.json"), format!("[{},", docs.join(","))).unwrap();
        for whole_max in [0, u64::MAX] {
            let got = pages(dir.path(), 10, whole_max)
                .into_iter()
                .flatten()
                .collect::<Vec<_>>();
            assert_eq!(got.len(), 1, "{:?}", ids(&got));
            match &got[0] {
                Item::Bad { id, error, .. } => {
                    assert!(id.starts_with("file:"), "{id}");
                    assert!(error.message.contains("invalid JSON at line"), "{error}");
                }
                other => panic!("{other:?}"),
            }
        }
    }
}
