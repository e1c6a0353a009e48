//! The [`Ledger`] over any [`Store`]: the logical state of a record, claims and their release or
//! restore, the tallies and indexes, export batches, counters, cursors, reports and the audit
//! trail. The store only keeps bytes; every rule is here, once, for every backend.
//!
//! Keys (names and ids escaped by `ledger::keys`, so that no byte of an id breaks them):
//! `m\0schema`; `r\0job\0target\0doc` → 9-byte header (state, batch) + record JSON;
//! `b\0<id>` batch; `o\0<id>` open batch; `u\0<id>` committed but not yet published;
//! `d\0<id>\0<page>` batch membership; `n\0name` counters; `c\0job` cursors; `p\0run` reports;
//! `a\0<seq>` audit trail. Ids are zero-padded so key order is numeric order. The exact bytes of each
//! batch file are kept by the store ([`Store::put_blob`]), written before the commit.
//!
//! Two indexes, written in the same atomic batch as the records they describe, keep a run's cost
//! independent of the ledger's size (no scan of every record per sync):
//! `t\0job\0target` → the number of records in each state (nine big-endian u64: the eight states,
//! then the records stored as claimed for an export batch); `x\0job\0target\0<state>\0doc` → one
//! empty value per record, except those stored as claimed for an export batch, which are many and
//! read back only by `ledger list`. `q\0<id>` counts the records claimed for open batch `id`, so a
//! commit moves them from claimed to delivered in one write. A ledger without `m\0index` gets both
//! indexes built once when it is opened.
//!
//! `i\0<name>\0job\0target\0doc` indexes each record under every name `find` answers to (its id,
//! its number, a malformed document's shown id and `malformed:` id; see `rules::doc_index`), in
//! the same batches; a ledger without `m\0index2` gets it built once when it is opened.

use chrono::Utc;
use serde::de::DeserializeOwned;
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use super::store::{Store, WriteBatch};
use super::{
    keys, BatchStatus, Ledger, LedgerError, Record, RecordKey, Result, State, SCHEMA_VERSION,
};
/// For the migration tests, which write records in an earlier layout.
#[cfg(test)]
pub(super) use codec::encode_record;
use codec::{decode_record, dprefix, from_json, header, rkey, to_json};
use index::Stage;

/// The ledger's rules over the store `S` (`SledLedger` on disk, [`super::MemLedger`] in
/// memory). Clones share the store and the state below.
pub struct StoreLedger<S> {
    store: Arc<S>,
    /// Ids of the open (uncommitted) batches, mirrored from the `o\0` keys. The process holds
    /// the store alone (the backend's exclusive lock), so this copy is exact (clones share it).
    open_batches: Arc<Mutex<BTreeSet<u64>>>,
    /// Serializes the read-modify-write of records and their indexes (clones share it).
    writer: Arc<Mutex<()>>,
}

impl<S> Clone for StoreLedger<S> {
    fn clone(&self) -> Self {
        StoreLedger {
            store: Arc::clone(&self.store),
            open_batches: Arc::clone(&self.open_batches),
            writer: Arc::clone(&self.writer),
        }
    }
}

/// The ledger's write lock: this process's, and the store's across processes.
pub(super) struct WriteGuard<'a, S: Store> {
    store: &'a S,
    _local: std::sync::MutexGuard<'a, ()>,
}

impl<S: Store> Drop for WriteGuard<'_, S> {
    fn drop(&mut self) {
        self.store.unlock_writes();
    }
}

pub(super) fn now() -> chrono::DateTime<Utc> {
    Utc::now()
}

impl<S: Store> StoreLedger<S> {
    /// Opens the ledger kept in `store`: a new one is stamped with the schema version, one of
    /// an earlier version upgraded, and the indexes built if it has none.
    ///
    /// # Errors
    ///
    /// [`LedgerError::Schema`] for a ledger of another version, storage errors otherwise.
    pub fn on(store: S) -> Result<StoreLedger<S>> {
        match store.get(b"m\0schema")? {
            Some(v) => {
                let found: u32 = from_json(b"m\0schema", &v)?;
                if found == 1 || found == 2 {
                    // Its keys in the version-3 layout; the indexes are rebuilt below.
                    super::migrate::to_v3(&store)?;
                } else if found != SCHEMA_VERSION {
                    return Err(LedgerError::Schema {
                        path: store.location().to_owned(),
                        found,
                        expected: SCHEMA_VERSION,
                    });
                }
            }
            None => {
                let mut b = WriteBatch::default();
                b.insert(&b"m\0schema"[..], to_json(&SCHEMA_VERSION)?);
                store.apply(b)?;
                store.flush()?;
            }
        }
        let mut open_batches = BTreeSet::new();
        for kv in store.scan(b"o\0") {
            let (k, _) = kv?;
            if let Ok(id) = String::from_utf8_lossy(&k[2..]).parse::<u64>() {
                open_batches.insert(id);
            }
        }
        let ledger = StoreLedger {
            store: Arc::new(store),
            open_batches: Arc::new(Mutex::new(open_batches)),
            writer: Arc::new(Mutex::new(())),
        };
        if ledger.store.get(b"m\0index")?.is_none() {
            ledger.rebuild_indexes()?;
        }
        ledger.ensure_doc_index()?;
        Ok(ledger)
    }

    /// The store under the ledger.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// This process's write lock, then the store's across processes ([`Store::lock_writes`]),
    /// both held until the guard drops.
    fn write_lock(&self) -> Result<WriteGuard<'_, S>> {
        let local = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        self.store.lock_writes()?;
        Ok(WriteGuard {
            store: &self.store,
            _local: local,
        })
    }

    /// Writes `records` in one atomic batch and flushes; with `expected`, only if each record is
    /// still in that state, checked under the same lock as the write (else nothing is written).
    fn write_records(&self, records: &[Record], expected: Option<&[State]>) -> Result<()> {
        let w = self.write_lock()?;
        for (r, want) in records.iter().zip(expected.unwrap_or_default()) {
            let now = self
                .store
                .get(&rkey(&r.key))?
                .and_then(|v| self.logical(&v));
            if now != Some(*want) {
                return Err(LedgerError::Invalid(format!(
                    "{} changed meanwhile (now {}); look at it again",
                    r.key,
                    now.map_or("gone", State::as_str)
                )));
            }
        }
        let all: Vec<&Record> = records.iter().collect();
        self.write_locked(&all)?;
        drop(w);
        self.store.flush()?;
        Ok(())
    }

    /// Writes `records` with their indexes in one atomic batch; the caller holds the write
    /// lock and flushes.
    fn write_locked(&self, records: &[&Record]) -> Result<()> {
        if records.is_empty() {
            return Ok(());
        }
        let mut st = index::Stage::default();
        self.prefetch(&mut st, records.iter().map(|r| &r.key))?;
        for r in records {
            self.stage(&mut st, &r.key, Some(r))?;
        }
        self.apply(st)
    }

    /// The state a stored header stands for: `claimed` in a committed batch is `delivered`.
    fn logical(&self, v: &[u8]) -> Option<State> {
        let (state, batch) = header(v)?;
        Some(match (state, batch) {
            (State::Claimed, Some(id)) if !self.is_open(id) => State::Delivered,
            _ => state,
        })
    }

    fn is_open(&self, id: u64) -> bool {
        self.open_batches
            .lock()
            .map(|s| s.contains(&id))
            .unwrap_or(true)
    }

    fn set_open(&self, id: u64, open: bool) {
        if let Ok(mut s) = self.open_batches.lock() {
            if open {
                s.insert(id);
            } else {
                s.remove(&id);
            }
        }
    }

    fn decode(&self, key: &[u8], v: &[u8]) -> Result<Record> {
        let state = self.logical(v).ok_or_else(|| LedgerError::Corrupt {
            key: String::from_utf8_lossy(key).replace('\0', "/"),
            detail: "bad record header".into(),
        })?;
        decode_record(key, v, state)
    }

    fn next_seq(&self, name: &str) -> Result<u64> {
        self.store.increment(format!("n\0{name}").as_bytes())
    }

    /// One key written at once (not flushed).
    fn put(&self, key: Vec<u8>, value: Vec<u8>) -> Result<()> {
        let mut b = WriteBatch::default();
        b.insert(key, value);
        self.store.apply(b)
    }

    fn scan<T: DeserializeOwned>(&self, prefix: &[u8]) -> Result<Vec<T>> {
        self.store
            .scan(prefix)
            .map(|kv| {
                let (k, v) = kv?;
                from_json(&k, &v)
            })
            .collect()
    }

    /// Members of a batch: one key per claimed page (`d\0<id>\0<page>`), its value the members
    /// as [`keys::push_member`] writes them — one insert per page rather than per document.
    fn docs_of(&self, id: u64) -> Result<Vec<RecordKey>> {
        let mut out = Vec::new();
        for kv in self.store.scan(&dprefix(id)) {
            let (k, v) = kv?;
            let Some(members) = keys::members(&v) else {
                return Err(LedgerError::Corrupt {
                    key: String::from_utf8_lossy(&k).replace('\0', "/"),
                    detail: "bad membership entry".into(),
                });
            };
            out.extend(members.into_iter().map(|[job, target, doc_id]| RecordKey {
                job,
                target,
                doc_id,
            }));
        }
        Ok(out)
    }

    /// Releases the documents of batch `id` still pointing at it; returns how many.
    fn release_members(
        &self,
        id: u64,
        note: &str,
        st: &mut Stage,
        remove_membership: bool,
    ) -> Result<u64> {
        let t = now();
        let mut n = 0;
        if remove_membership {
            for kv in self.store.scan(&dprefix(id)) {
                st.batch.remove(kv?.0);
            }
        }
        for key in self.docs_of(id)? {
            let k = rkey(&key);
            if let Some(v) = self.current(st, &k)? {
                let mut r = self.decode(&k, &v)?;
                if r.batch_id == Some(id) && (r.state == State::Claimed || r.state.is_delivered()) {
                    // A document re-exported from a batch that is still active goes back to it.
                    let back = match r.restore_to.take() {
                        Some((state, Some(prev)))
                            if self
                                .batch(prev)?
                                .is_some_and(|b| b.status == BatchStatus::Active) =>
                        {
                            Some((state, prev))
                        }
                        _ => None,
                    };
                    match back {
                        Some((state, prev)) => {
                            r.transition(state, format!("{note}; still in export batch {prev}"), t);
                            r.batch_id = Some(prev);
                        }
                        None => {
                            r.transition(State::Released, note, t);
                            r.batch_id = None;
                            n += 1;
                        }
                    }
                    self.stage(st, &key, Some(&r))?;
                }
            }
        }
        Ok(n)
    }

    fn set_rescan(&self, job: &str, batch: &mut WriteBatch) -> Result<()> {
        let mut c = self.cursor(job)?.unwrap_or_default();
        c.rescan = true;
        batch.insert(format!("c\0{job}").into_bytes(), to_json(&c)?);
        Ok(())
    }
}

mod codec;
mod doc_index;
mod index;
mod ledger_impl;
