//! The [`Ledger`] on sled. One tree, keys prefixed by kind, so that every group of related writes
//! is one atomic `sled::Batch`; `flush` after each group makes it durable before the caller goes on.
//!
//! Keys (names and ids escaped by `ledger::keys`, so that no byte of an id breaks them):
//! `m\0schema`; `r\0job\0target\0doc` → 9-byte header (state, batch) + record JSON;
//! `b\0<id>` batch; `o\0<id>` open batch; `u\0<id>` committed but not yet published;
//! `d\0<id>\0<page>` batch membership; `n\0name` counters; `c\0job` cursors; `p\0run` reports;
//! `a\0<seq>` audit trail. Ids are zero-padded so key order is numeric order. The exact bytes of each
//! batch file are kept as `batches/<id>.bin` beside the tree, written before the commit.
//!
//! Two indexes, written in the same atomic batch as the records they describe, keep a run's cost
//! independent of the ledger's size (no scan of every record per sync):
//! `t\0job\0target` → the number of records in each state (nine big-endian u64: the eight states,
//! then the records stored as claimed for an export batch); `x\0job\0target\0<state>\0doc` → one
//! empty value per record, except those stored as claimed for an export batch, which are many and
//! read back only by `ledger list`. `q\0<id>` counts the records claimed for open batch `id`, so a
//! commit moves them from claimed to delivered in one write. A ledger without `m\0index` gets both
//! indexes built once when it is opened.

use chrono::Utc;
use serde::de::DeserializeOwned;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::{
    keys, BatchStatus, Ledger, LedgerError, Record, RecordKey, Result, State, SCHEMA_VERSION,
};
/// For the migration tests, which write records in an earlier layout.
#[cfg(test)]
pub(super) use codec::encode_record;
use codec::{decode_record, dprefix, from_json, header, rkey, to_json};
use index::Stage;

/// The sled-backed ledger. Holds sled's exclusive lock on its folder while open.
#[derive(Clone)]
pub struct SledLedger {
    db: ::sled::Db,
    path: PathBuf,
    /// Ids of the open (uncommitted) batches, mirrored from the `o\0` keys. The process holds
    /// sled's exclusive lock, so this copy is exact (clones share it).
    open_batches: std::sync::Arc<Mutex<BTreeSet<u64>>>,
    /// Serializes the read-modify-write of records and their indexes (clones share it).
    writer: std::sync::Arc<Mutex<()>>,
}

/// Page cache of the tree. sled's default (1 GiB) would let the cache, and so the process, grow
/// with the ledger; the working set of a run is the records it touches.
const CACHE_BYTES: u64 = 32 << 20;

fn now() -> chrono::DateTime<Utc> {
    Utc::now()
}

impl SledLedger {
    /// Opens (or creates) the ledger in `path`.
    ///
    /// # Errors
    ///
    /// [`LedgerError::Locked`] when another process has it open, [`LedgerError::Schema`] for a
    /// ledger of another version, storage errors otherwise.
    pub fn open(path: &Path) -> Result<SledLedger> {
        let io = |e| LedgerError::Io {
            path: path.to_owned(),
            source: e,
        };
        // The folder is private before sled writes in it; its files are tightened once, below.
        std::fs::create_dir_all(path).map_err(io)?;
        crate::fsutil::set_mode(path, 0o700).map_err(io)?;
        let db = super::reopen::open_with_wait(path, || {
            ::sled::Config::new()
                .path(path)
                .cache_capacity(CACHE_BYTES)
                .open()
        })
        .map_err(|e| match super::reopen::is_lock_error(&e) {
            true => LedgerError::Locked(path.to_owned()),
            false => LedgerError::Store(e),
        })?;
        // Every file in it, sled's own included, 0600 (older versions left them readable).
        crate::fsutil::private_dir(path).map_err(io)?;
        match db.get(b"m\0schema")? {
            Some(v) => {
                let found: u32 = from_json(b"m\0schema", &v)?;
                if found == 1 || found == 2 {
                    // Its keys in the version-3 layout; the indexes are rebuilt below.
                    super::migrate::to_v3(&db)?;
                } else if found != SCHEMA_VERSION {
                    return Err(LedgerError::Schema {
                        path: path.to_owned(),
                        found,
                        expected: SCHEMA_VERSION,
                    });
                }
            }
            None => {
                db.insert(b"m\0schema", to_json(&SCHEMA_VERSION)?)?;
                db.flush()?;
            }
        }
        let mut open_batches = BTreeSet::new();
        for kv in db.scan_prefix(b"o\0") {
            let (k, _) = kv?;
            if let Ok(id) = String::from_utf8_lossy(&k[2..]).parse::<u64>() {
                open_batches.insert(id);
            }
        }
        let ledger = SledLedger {
            db,
            path: path.to_owned(),
            open_batches: std::sync::Arc::new(Mutex::new(open_batches)),
            writer: std::sync::Arc::new(Mutex::new(())),
        };
        if ledger.db.get(b"m\0index")?.is_none() {
            ledger.rebuild_indexes()?;
        }
        Ok(ledger)
    }

    fn write_lock(&self) -> std::sync::MutexGuard<'_, ()> {
        self.writer.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Where the ledger lives.
    pub fn path(&self) -> &Path {
        &self.path
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

    fn blob_path(&self, id: u64) -> PathBuf {
        self.path.join("batches").join(format!("{id:016}.bin"))
    }

    fn blob_tmp_path(&self, id: u64) -> PathBuf {
        self.path.join("batches").join(format!(".{id:016}.tmp"))
    }

    /// Copies a batch's file into `batches/<id>.bin` under the ledger folder: temp file, fsync,
    /// rename, fsync of the folder.
    fn store_blob(&self, id: u64, file: &mut dyn std::io::Read) -> Result<()> {
        let path = self.blob_path(id);
        let io = |e: std::io::Error| LedgerError::Io {
            path: path.clone(),
            source: e,
        };
        let dir = self.path.join("batches");
        std::fs::create_dir_all(&dir).map_err(io)?;
        crate::fsutil::set_mode(&dir, 0o700).map_err(io)?;
        let tmp = self.blob_tmp_path(id);
        let mut out = crate::fsutil::create_with_mode(&tmp, 0o600).map_err(io)?;
        std::io::copy(file, &mut out).map_err(io)?;
        out.sync_all().map_err(io)?;
        std::fs::rename(&tmp, &path).map_err(io)?;
        crate::fsutil::sync_dir(&dir).map_err(io)
    }

    /// The tree itself, for tests that write an earlier layout.
    #[cfg(test)]
    pub(super) fn db_for_tests(&self) -> ::sled::Db {
        self.db.clone()
    }

    /// Size of the ledger on disk, in bytes.
    pub fn size_on_disk(&self) -> u64 {
        self.db.size_on_disk().unwrap_or(0)
    }

    fn next_seq(&self, name: &str) -> Result<u64> {
        let key = format!("n\0{name}");
        let next = self
            .db
            .update_and_fetch(key.as_bytes(), |old| {
                let n = old
                    .and_then(|b| <[u8; 8]>::try_from(b).ok())
                    .map(u64::from_be_bytes)
                    .unwrap_or(0);
                Some((n + 1).to_be_bytes().to_vec())
            })?
            .and_then(|b| <[u8; 8]>::try_from(b.as_ref()).ok())
            .map(u64::from_be_bytes)
            .unwrap_or(1);
        Ok(next)
    }

    fn scan<T: DeserializeOwned>(&self, prefix: &[u8]) -> Result<Vec<T>> {
        self.db
            .scan_prefix(prefix)
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
        for kv in self.db.scan_prefix(dprefix(id)) {
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
            for kv in self.db.scan_prefix(dprefix(id)) {
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

    fn set_rescan(&self, job: &str, batch: &mut ::sled::Batch) -> Result<()> {
        let mut c = self.cursor(job)?.unwrap_or_default();
        c.rescan = true;
        batch.insert(format!("c\0{job}").into_bytes(), to_json(&c)?);
        Ok(())
    }
}

mod codec;
mod index;
mod ledger_impl;

#[cfg(test)]
mod tests;
