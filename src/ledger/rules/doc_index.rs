//! The `i\0` document index: `i\0<name>\0job\0target\0doc` → empty, one entry per name a record
//! answers to in [`crate::ledger::Ledger::find`] — its id, for a malformed document the id shown
//! to people and its `malformed:` form, and its number. So `ledger show`, a credit note's lookup
//! of its invoice and every other `find` read the records they name, not the whole ledger.
//! Written in the same atomic batch as the records ([`super::StoreLedger::stage`]); a ledger
//! without `m\0index2` gets it built once when it is opened.

use std::collections::BTreeSet;

use serde::Deserialize;

use super::codec::{body, rkey};
use super::StoreLedger;
use crate::ledger::store::{Store, WriteBatch};
use crate::ledger::{keys, Record, RecordKey, Result};
use crate::model::{shown_id, MALFORMED_ID};

/// The marker of a ledger whose document index is built.
const MARKER: &[u8] = b"m\0index2";
/// Index writes per flushed batch while building the index of an existing ledger (the marker,
/// written last, makes an interrupted build start over).
#[cfg(not(test))]
const CHUNK: usize = 10_000;
/// Small in tests, so that the conformance suite's build crosses chunks.
#[cfg(test)]
const CHUNK: usize = 3;

/// The names a record answers to, each once.
pub(super) fn names(doc_id: &str, number: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::from([doc_id.to_owned(), number.to_owned()]);
    if let Some(m) = doc_id.strip_prefix(MALFORMED_ID) {
        out.insert(m.to_owned());
        out.insert(format!("malformed:{m}"));
    }
    out
}

/// Whether the record `id`/`number` answers to `doc` (what [`names`] indexes).
pub(super) fn answers(doc: &str, id: &str, number: &str) -> bool {
    let malformed = id
        .strip_prefix(MALFORMED_ID)
        .is_some_and(|m| doc.strip_prefix("malformed:") == Some(m));
    id == doc || shown_id(id) == doc || malformed || number == doc
}

/// The index key of `key` under `name`.
pub(super) fn ikey(name: &str, key: &RecordKey) -> Vec<u8> {
    keys::key("i", &[name, &key.job, &key.target, &key.doc_id])
}

/// The number in a stored record value, read without building the record.
pub(super) fn stored_number(v: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    struct Numbered {
        number: String,
    }
    serde_json::from_slice::<Numbered>(body(v))
        .ok()
        .map(|n| n.number)
}

/// Stages the index changes of record `key` going from number `old` (`None`: no record) to
/// `new` (`None`: removed). Nothing is written when the number stays.
pub(super) fn restage(
    batch: &mut WriteBatch,
    key: &RecordKey,
    old: Option<&str>,
    new: Option<&str>,
) {
    if old.is_some() && old == new {
        return;
    }
    let before = old.map(|n| names(&key.doc_id, n)).unwrap_or_default();
    let after = new.map(|n| names(&key.doc_id, n)).unwrap_or_default();
    for name in before.difference(&after) {
        batch.remove(ikey(name, key));
    }
    for name in after.difference(&before) {
        batch.insert(ikey(name, key), &[][..]);
    }
}

impl<S: Store> StoreLedger<S> {
    /// Builds the document index if the ledger has none (see the module doc).
    pub(super) fn ensure_doc_index(&self) -> Result<()> {
        if self.store.get(MARKER)?.is_some() {
            return Ok(());
        }
        let _w = self.write_lock()?;
        // Nothing holds every key: what an interrupted build left is removed a chunk at a time
        // (each scan starts again from the first key left), and the entries are written as
        // the scan of the records reaches them, a chunk per flushed write, so that the memory
        // of the build does not grow with the ledger.
        loop {
            let mut b = WriteBatch::default();
            let mut n = 0;
            for kv in self.store.scan(b"i\0").take(CHUNK) {
                b.remove(kv?.0);
                n += 1;
            }
            if n == 0 {
                break;
            }
            self.store.apply(b)?;
            self.store.flush()?;
        }
        let mut b = WriteBatch::default();
        let mut n = 0;
        self.doc_entries(|k| {
            b.insert(k, &[][..]);
            n += 1;
            if n == CHUNK {
                self.store.apply(std::mem::take(&mut b))?;
                self.store.flush()?;
                n = 0;
            }
            Ok(())
        })?;
        // The marker with the last entries: an interrupted build starts over.
        b.insert(MARKER, &b"1"[..]);
        self.store.apply(b)?;
        self.store.flush()?;
        Ok(())
    }

    /// Calls `f` with each document index entry the records call for, from one scan of the
    /// records. Records whose key or number cannot be read are left out (`check_indexes`
    /// reports them).
    fn doc_entries(&self, mut f: impl FnMut(Vec<u8>) -> Result<()>) -> Result<()> {
        for kv in self.store.scan(b"r\0") {
            let (k, v) = kv?;
            let parts = keys::split(&k[2..]).unwrap_or_default();
            let ([job, target, doc_id], Some(number)) = (parts.as_slice(), stored_number(&v))
            else {
                continue;
            };
            let key = RecordKey {
                job: job.clone(),
                target: target.clone(),
                doc_id: doc_id.clone(),
            };
            for name in names(doc_id, &number) {
                f(ikey(&name, &key))?;
            }
        }
        Ok(())
    }

    /// The differences between the document index and the records (for `check_indexes`).
    pub(super) fn check_doc_index(&self) -> Result<Vec<String>> {
        let mut expected = BTreeSet::new();
        self.doc_entries(|k| {
            expected.insert(k);
            Ok(())
        })?;
        let mut found = BTreeSet::new();
        for kv in self.store.scan(b"i\0") {
            found.insert(kv?.0);
        }
        Ok(expected
            .symmetric_difference(&found)
            .map(|k| {
                let which = if found.contains(k) {
                    "stray"
                } else {
                    "missing"
                };
                format!(
                    "{which} document index entry {}",
                    String::from_utf8_lossy(k).replace('\0', "/")
                )
            })
            .collect())
    }

    /// The records answering to `doc` (see [`answers`]), of `job` only when given, in key order.
    pub(super) fn find_indexed(&self, doc: &str, job: Option<&str>) -> Result<Vec<Record>> {
        let prefix = match job {
            Some(job) => keys::prefix("i", &[doc, job]),
            None => keys::prefix("i", &[doc]),
        };
        let skip = keys::prefix("i", &[doc]).len();
        let mut out = Vec::new();
        for kv in self.store.scan(&prefix) {
            let (ik, _) = kv?;
            let Some([job, target, doc_id]) =
                keys::split(&ik[skip..]).and_then(|p| <[String; 3]>::try_from(p).ok())
            else {
                continue;
            };
            let key = RecordKey {
                job,
                target,
                doc_id,
            };
            let k = rkey(&key);
            // Forgotten since the index was read (`check_indexes` reports a lasting mismatch).
            let Some(v) = self.store.get(&k)? else {
                continue;
            };
            let r = self.decode(&k, &v)?;
            if answers(doc, &r.key.doc_id, &r.number) {
                out.push(r);
            }
        }
        Ok(out)
    }
}
