//! The documents an export delivers, set aside on disk while its period is read. A batch is
//! written in (issue date, number) order across the whole period, so it cannot start before the
//! last page is read; what stays in memory meanwhile is each document's sort key and place in
//! the file (about 60 bytes a document), never the documents. The file is private (0600), in
//! the data folder, and unlinked as soon as it is open (on Unix): a crash leaves nothing.

use std::fs::File;
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::NaiveDate;

use crate::ledger::Record;
use crate::mapping::MappedDocument;
use crate::targets::TargetError;

/// A document to deliver and its record, as the page hands them to a target.
pub(super) type Delivery = (Arc<MappedDocument>, Record);

/// Where one document lies in the spill file, and the key it is sorted by.
struct Key {
    date: NaiveDate,
    number: Box<str>,
    offset: u64,
    len: u32,
}

/// The period's documents for one target, on disk, sortable by key.
pub(super) struct Spill {
    path: Named,
    out: BufWriter<File>,
    size: u64,
    keys: Vec<Key>,
}

fn io_err(path: &Path, source: std::io::Error) -> TargetError {
    TargetError::Io {
        path: path.display().to_string(),
        source,
    }
}

impl Spill {
    /// A new, empty spill file in `dir`, named after the run and the target's place.
    ///
    /// # Errors
    ///
    /// The file cannot be created.
    pub(super) fn create(dir: &Path, run_id: &str, index: usize) -> Result<Spill, TargetError> {
        let path = dir.join(format!(".export-{run_id}-{index}.spill"));
        std::fs::create_dir_all(dir).map_err(|e| io_err(dir, e))?;
        let mut opts = std::fs::OpenOptions::new();
        opts.read(true).write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let file = opts.open(&path).map_err(|e| io_err(&path, e))?;
        // Unix keeps an unlinked file readable through its handle: nothing to clean after a crash.
        #[cfg(unix)]
        let _ = std::fs::remove_file(&path);
        Ok(Spill {
            path: Named(path),
            out: BufWriter::with_capacity(1 << 16, file),
            size: 0,
            keys: Vec::new(),
        })
    }

    /// Sets one document aside.
    ///
    /// # Errors
    ///
    /// The file cannot be written.
    pub(super) fn push(&mut self, md: &MappedDocument, rec: &Record) -> Result<(), TargetError> {
        let bytes = serde_json::to_vec(&(md, rec))
            .map_err(|e| io_err(&self.path.0, std::io::Error::other(e)))?;
        let len = u32::try_from(bytes.len()).map_err(|_| {
            io_err(
                &self.path.0,
                std::io::Error::other(format!("document {} too large to set aside", md.doc.number)),
            )
        })?;
        self.out
            .write_all(&bytes)
            .map_err(|e| io_err(&self.path.0, e))?;
        self.keys.push(Key {
            date: md.doc.issue_date,
            number: md.doc.number.as_str().into(),
            offset: self.size,
            len,
        });
        self.size += u64::from(len);
        Ok(())
    }

    /// The documents in (issue date, number) order, `page` at a time; documents with the same
    /// key keep the order they were read in.
    ///
    /// # Errors
    ///
    /// The file cannot be flushed.
    pub(super) fn into_pages(mut self, page: usize) -> Result<Pages, TargetError> {
        self.out.flush().map_err(|e| io_err(&self.path.0, e))?;
        let Spill {
            path,
            out,
            mut keys,
            ..
        } = self;
        let file = out
            .into_inner()
            .map_err(|e| io_err(&path.0, e.into_error()))?;
        keys.sort_by(|a, b| (a.date, &a.number).cmp(&(b.date, &b.number)));
        Ok(Pages {
            path,
            file,
            keys: keys.into_iter(),
            page: page.max(1),
            buf: Vec::new(),
        })
    }
}

/// The sorted documents of a spill, read back a page at a time.
pub(super) struct Pages {
    path: Named,
    file: File,
    keys: std::vec::IntoIter<Key>,
    page: usize,
    buf: Vec<u8>,
}

impl Pages {
    /// The next page, `None` at the end.
    ///
    /// # Errors
    ///
    /// The file cannot be read back.
    pub(super) fn next_page(&mut self) -> Result<Option<Vec<Delivery>>, TargetError> {
        let mut out = Vec::with_capacity(self.page.min(self.keys.len()));
        for key in self.keys.by_ref().take(self.page) {
            self.buf.resize(key.len as usize, 0);
            self.file
                .seek(SeekFrom::Start(key.offset))
                .and_then(|_| self.file.read_exact(&mut self.buf))
                .map_err(|e| io_err(&self.path.0, e))?;
            let (md, rec): (MappedDocument, Record) = serde_json::from_slice(&self.buf)
                .map_err(|e| io_err(&self.path.0, std::io::Error::other(e)))?;
            out.push((Arc::new(md), rec));
        }
        Ok((!out.is_empty()).then_some(out))
    }
}

/// The spill file's name, removed when the spill goes (off Unix it is still named).
struct Named(PathBuf);

impl Drop for Named {
    fn drop(&mut self) {
        #[cfg(not(unix))]
        let _ = std::fs::remove_file(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn demo() -> MappedDocument {
        crate::format::tests::worked().remove(0)
    }

    #[test]
    fn documents_come_back_whole_and_sorted_by_date_then_number() {
        let dir = tempfile::tempdir().unwrap();
        let base = demo();
        let mut spill = Spill::create(dir.path(), "R1", 0).unwrap();
        let order = [
            ("2026-03-02", "B"),
            ("2026-03-01", "Z"),
            ("2026-03-02", "A"),
        ];
        for (date, number) in order {
            let mut md = base.clone();
            md.doc.issue_date = date.parse().unwrap();
            md.doc.number = number.into();
            let rec = Record::new(
                crate::ledger::RecordKey {
                    job: "j".into(),
                    target: "t".into(),
                    doc_id: number.into(),
                },
                chrono::Utc::now(),
            );
            spill.push(&md, &rec).unwrap();
        }
        assert_eq!(spill.keys.len(), 3);
        #[cfg(unix)]
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            0,
            "unlinked while open"
        );
        let mut pages = spill.into_pages(2).unwrap();
        let first = pages.next_page().unwrap().unwrap();
        let second = pages.next_page().unwrap().unwrap();
        assert!(pages.next_page().unwrap().is_none());
        let numbers: Vec<&str> = first
            .iter()
            .chain(&second)
            .map(|(m, _)| m.doc.number.as_str())
            .collect();
        assert_eq!(numbers, ["Z", "A", "B"]);
        assert_eq!((first.len(), second.len()), (2, 1));
        // Every field comes back as it was (amounts with their scale).
        let mut expected = base.clone();
        expected.doc.issue_date = "2026-03-01".parse().unwrap();
        expected.doc.number = "Z".into();
        assert_eq!(*first[0].0, expected);
        assert_eq!(format!("{:?}", first[0].0), format!("{expected:?}"));
        assert_eq!(first[0].1.key.doc_id, "Z");
    }
}
