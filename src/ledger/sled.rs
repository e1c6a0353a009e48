//! The [`Ledger`] on sled. One tree, keys prefixed by kind, so that every group of related writes
//! is one atomic `sled::Batch`; `flush` after each group makes it durable before the caller goes on.
//!
//! Keys: `m\0schema`; `r\0job\0target\0doc` → 9-byte header (state, batch) + record JSON;
//! `b\0<id>` batch; `o\0<id>` open batch; `u\0<id>` committed but not yet published;
//! `d\0<id>\0<page>` batch membership; `n\0name` counters; `c\0job` cursors; `p\0run` reports;
//! `a\0<seq>` audit trail. Ids are zero-padded so key order is numeric order. The exact bytes of each
//! batch file are kept as `batches/<id>.bin` beside the tree, written before the commit.

use chrono::Utc;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::{
    AuditEvent, Batch, BatchCommit, BatchStatus, Cursor, Ledger, LedgerError, OpenBatch, Record,
    RecordFilter, RecordKey, Recovery, Result, State, SCHEMA_VERSION,
};

/// The sled-backed ledger. Holds sled's exclusive lock on its folder while open.
#[derive(Clone)]
pub struct SledLedger {
    db: ::sled::Db,
    path: PathBuf,
    /// Ids of the open (uncommitted) batches, mirrored from the `o\0` keys. The process holds
    /// sled's exclusive lock, so this copy is exact (clones share it).
    open_batches: std::sync::Arc<Mutex<BTreeSet<u64>>>,
}

fn rkey(k: &RecordKey) -> Vec<u8> {
    format!("r\0{}\0{}\0{}", k.job, k.target, k.doc_id).into_bytes()
}
fn bkey(id: u64) -> Vec<u8> {
    format!("b\0{id:016}").into_bytes()
}
fn okey(id: u64) -> Vec<u8> {
    format!("o\0{id:016}").into_bytes()
}
fn ukey(id: u64) -> Vec<u8> {
    format!("u\0{id:016}").into_bytes()
}
fn dprefix(id: u64) -> Vec<u8> {
    format!("d\0{id:016}\0").into_bytes()
}

fn to_json<T: Serialize>(v: &T) -> Result<Vec<u8>> {
    serde_json::to_vec(v).map_err(|e| LedgerError::Corrupt {
        key: "(encode)".into(),
        detail: e.to_string(),
    })
}

fn from_json<T: DeserializeOwned>(key: &[u8], bytes: &[u8]) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|e| LedgerError::Corrupt {
        key: String::from_utf8_lossy(key).replace('\0', "/"),
        detail: e.to_string(),
    })
}

/// A record is stored as a 9-byte header — state, batch id (`u64::MAX` for none) — then its JSON.
/// The header is authoritative. A record claimed for a batch that has since been committed is
/// delivered: the commit is one small atomic write, however many documents the batch holds, and
/// an interrupted batch (its open marker still there) is rolled back record by record.
const HEADER: usize = 9;

fn encode_record(r: &Record) -> Result<Vec<u8>> {
    let mut v = Vec::with_capacity(1024);
    v.push(r.state.code());
    v.extend_from_slice(&r.batch_id.unwrap_or(u64::MAX).to_be_bytes());
    serde_json::to_writer(&mut v, r).map_err(|e| LedgerError::Corrupt {
        key: "(encode)".into(),
        detail: e.to_string(),
    })?;
    Ok(v)
}

fn header(v: &[u8]) -> Option<(State, Option<u64>)> {
    let state = State::from_code(*v.first()?)?;
    let id = u64::from_be_bytes(v.get(1..HEADER)?.try_into().ok()?);
    Some((state, (id != u64::MAX).then_some(id)))
}

fn decode_record(key: &[u8], v: &[u8], state: State) -> Result<Record> {
    let mut r: Record = from_json(key, v.get(HEADER..).unwrap_or_default())?;
    let batch = header(v).and_then(|h| h.1);
    if state != r.state {
        let note = match batch {
            Some(id) => format!("export batch {id} committed"),
            None => "state changed".to_owned(),
        };
        r.history.push(super::Event {
            at: r.updated_at,
            state,
            note,
        });
        r.state = state;
    }
    r.batch_id = batch;
    Ok(r)
}

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
        std::fs::create_dir_all(path).map_err(|e| LedgerError::Store(e.into()))?;
        let db = ::sled::Config::new()
            .path(path)
            .open()
            .map_err(|e| match &e {
                ::sled::Error::Io(io)
                    if io.kind() == std::io::ErrorKind::WouldBlock
                        || io.to_string().contains("lock") =>
                {
                    LedgerError::Locked(path.to_owned())
                }
                _ => LedgerError::Store(e),
            })?;
        match db.get(b"m\0schema")? {
            Some(v) => {
                let found: u32 = from_json(b"m\0schema", &v)?;
                if found != SCHEMA_VERSION {
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
        Ok(SledLedger {
            db,
            path: path.to_owned(),
            open_batches: std::sync::Arc::new(Mutex::new(open_batches)),
        })
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
        let tmp = dir.join(format!(".{id:016}.tmp"));
        let mut out = std::fs::File::create(&tmp).map_err(io)?;
        std::io::copy(file, &mut out).map_err(io)?;
        out.sync_all().map_err(io)?;
        std::fs::rename(&tmp, &path).map_err(io)?;
        crate::fsutil::sync_dir(&dir).map_err(io)
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

    /// Members of a batch: one key per claimed page (`d\0<id>\0<page>`), its value the member
    /// keys joined by `\n` — one insert per page rather than per document.
    fn docs_of(&self, id: u64) -> Result<Vec<RecordKey>> {
        let mut out = Vec::new();
        for kv in self.db.scan_prefix(dprefix(id)) {
            let (k, v) = kv?;
            for member in v.split(|b| *b == b'\n').filter(|m| !m.is_empty()) {
                let text = String::from_utf8_lossy(member);
                let mut parts = text.splitn(3, '\0');
                match (parts.next(), parts.next(), parts.next()) {
                    (Some(job), Some(target), Some(doc)) => out.push(RecordKey {
                        job: job.into(),
                        target: target.into(),
                        doc_id: doc.into(),
                    }),
                    _ => {
                        return Err(LedgerError::Corrupt {
                            key: String::from_utf8_lossy(&k).replace('\0', "/"),
                            detail: "bad membership entry".into(),
                        })
                    }
                }
            }
        }
        Ok(out)
    }

    /// Releases the documents of batch `id` still pointing at it; returns how many.
    fn release_members(
        &self,
        id: u64,
        note: &str,
        batch: &mut ::sled::Batch,
        remove_membership: bool,
    ) -> Result<u64> {
        let t = now();
        let mut n = 0;
        if remove_membership {
            for kv in self.db.scan_prefix(dprefix(id)) {
                batch.remove(kv?.0);
            }
        }
        for key in self.docs_of(id)? {
            let k = rkey(&key);
            if let Some(v) = self.db.get(&k)? {
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
                    batch.insert(k, encode_record(&r)?);
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

impl Ledger for SledLedger {
    fn get(&self, key: &RecordKey) -> Result<Option<Record>> {
        let k = rkey(key);
        self.db.get(&k)?.map(|v| self.decode(&k, &v)).transpose()
    }

    fn put_records(&self, records: &[Record]) -> Result<()> {
        if records.is_empty() {
            return Ok(());
        }
        let mut b = ::sled::Batch::default();
        for r in records {
            b.insert(rkey(&r.key), encode_record(r)?);
        }
        self.db.apply_batch(b)?;
        self.db.flush()?;
        Ok(())
    }

    fn list(&self, f: &RecordFilter) -> Result<Vec<Record>> {
        let prefix = match (&f.job, &f.target) {
            (Some(j), Some(t)) => format!("r\0{j}\0{t}\0"),
            (Some(j), None) => format!("r\0{j}\0"),
            _ => "r\0".to_owned(),
        };
        let mut out = Vec::new();
        for kv in self.db.scan_prefix(prefix.as_bytes()) {
            let (k, v) = kv?;
            if let Some(s) = f.state {
                if self.logical(&v) != Some(s) {
                    continue;
                }
            }
            let r = self.decode(&k, &v)?;
            if f.target.as_ref().is_some_and(|t| *t != r.key.target) {
                continue;
            }
            out.push(r);
        }
        Ok(out)
    }

    fn find(&self, doc: &str) -> Result<Vec<Record>> {
        let mut out = Vec::new();
        for kv in self.db.scan_prefix(b"r\0") {
            let (k, v) = kv?;
            let r = self.decode(&k, &v)?;
            if r.key.doc_id == doc || r.number == doc {
                out.push(r);
            }
        }
        Ok(out)
    }

    fn count_states(&self, job: &str, target: &str) -> Result<BTreeMap<State, u64>> {
        let mut out = BTreeMap::new();
        for kv in self
            .db
            .scan_prefix(format!("r\0{job}\0{target}\0").as_bytes())
        {
            let (_, v) = kv?;
            if let Some(s) = self.logical(&v) {
                *out.entry(s).or_insert(0) += 1;
            }
        }
        Ok(out)
    }

    fn forget(&self, key: &RecordKey, audit: AuditEvent) -> Result<Record> {
        let k = rkey(key);
        let Some(v) = self.db.get(&k)? else {
            return Err(LedgerError::NotFound(format!("no ledger record for {key}")));
        };
        let r = self.decode(&k, &v)?;
        if r.state == State::Claimed {
            return Err(LedgerError::Invalid(format!(
                "{key} is claimed by a delivery in progress; run `facto sync` first so it is completed or rolled back"
            )));
        }
        let mut b = ::sled::Batch::default();
        b.remove(k);
        b.insert(
            format!("a\0{:016}", self.next_seq("audit")?).into_bytes(),
            to_json(&audit)?,
        );
        self.db.apply_batch(b)?;
        self.db.flush()?;
        Ok(r)
    }

    fn begin_batch(&self, job: &str, target: &str, dir: &Path) -> Result<OpenBatch> {
        let id = self.next_seq("batch")?;
        let tmp_path = dir.join(OpenBatch::tmp_name(id));
        let open = OpenBatch {
            id,
            job: job.into(),
            target: target.into(),
            tmp_path,
            started_at: now(),
        };
        self.set_open(id, true);
        self.db.insert(okey(id), to_json(&open)?)?;
        self.db.flush()?;
        Ok(open)
    }

    fn claim(&self, open: &OpenBatch, claimed: &[Record], others: &[Record]) -> Result<()> {
        let mut b = ::sled::Batch::default();
        let mut members = Vec::with_capacity(claimed.len() * 32);
        for r in claimed {
            debug_assert_eq!(r.state, State::Claimed);
            members.extend_from_slice(
                format!("{}\0{}\0{}\n", r.key.job, r.key.target, r.key.doc_id).as_bytes(),
            );
            b.insert(rkey(&r.key), encode_record(r)?);
        }
        if !claimed.is_empty() {
            let mut mk = dprefix(open.id);
            mk.extend(format!("{:016}", self.next_seq("page")?).into_bytes());
            b.insert(mk, members);
        }
        for r in others {
            b.insert(rkey(&r.key), encode_record(r)?);
        }
        self.db.apply_batch(b)?;
        self.db.flush()?;
        Ok(())
    }

    fn commit_batch(
        &self,
        open: &OpenBatch,
        commit: BatchCommit<'_>,
        file: &mut dyn std::io::Read,
    ) -> Result<()> {
        let id = open.id;
        // 1. The file's exact bytes, kept beside the tree (sled is no place for large blobs) and
        // made durable before the commit that refers to them.
        self.store_blob(id, file)?;
        // 2. The commit point: the batch becomes active and the open marker goes, atomically;
        // from then on every record claimed for it reads as delivered.
        let mut b = ::sled::Batch::default();
        b.insert(bkey(id), to_json(commit.batch)?);
        b.insert(ukey(id), &[][..]);
        b.remove(okey(id));
        for (name, next) in &commit.counters {
            b.insert(
                format!("n\0{name}").into_bytes(),
                next.to_be_bytes().to_vec(),
            );
        }
        self.db.apply_batch(b)?;
        self.db.flush()?;
        self.set_open(id, false);
        Ok(())
    }

    fn abort_batch(&self, open: &OpenBatch, note: &str) -> Result<u64> {
        let mut b = ::sled::Batch::default();
        let n = self.release_members(open.id, note, &mut b, true)?;
        b.remove(okey(open.id));
        self.db.apply_batch(b)?;
        self.db.flush()?;
        self.set_open(open.id, false);
        let _ = std::fs::remove_file(self.blob_path(open.id));
        Ok(n)
    }

    fn mark_published(&self, id: u64) -> Result<()> {
        self.db.remove(ukey(id))?;
        self.db.flush()?;
        Ok(())
    }

    fn recover(&self) -> Result<Recovery> {
        let mut rec = Recovery::default();
        let opens: Vec<OpenBatch> = self.scan(b"o\0")?;
        for open in opens {
            let note = format!(
                "export batch {} was interrupted before it was committed; rolled back",
                open.id
            );
            rec.released += self.abort_batch(&open, &note)?;
            let mut b = ::sled::Batch::default();
            self.set_rescan(&open.job, &mut b)?;
            self.db.apply_batch(b)?;
            rec.rolled_back.push(open);
        }
        self.db.flush()?;
        for kv in self.db.scan_prefix(b"u\0") {
            let (k, _) = kv?;
            let id: u64 = String::from_utf8_lossy(&k[2..]).parse().unwrap_or(0);
            if let Some(batch) = self.batch(id)? {
                rec.unpublished.push(batch);
            }
        }
        Ok(rec)
    }

    fn batch(&self, id: u64) -> Result<Option<Batch>> {
        let k = bkey(id);
        self.db.get(&k)?.map(|v| from_json(&k, &v)).transpose()
    }

    fn batches(&self) -> Result<Vec<Batch>> {
        self.scan(b"b\0")
    }

    fn batch_file(&self, id: u64) -> Result<Vec<u8>> {
        if self.batch(id)?.is_none() {
            return Err(LedgerError::NotFound(format!("no export batch {id}")));
        }
        let path = self.blob_path(id);
        std::fs::read(&path).map_err(|e| LedgerError::Io { path, source: e })
    }

    fn batch_documents(&self, id: u64) -> Result<Vec<RecordKey>> {
        self.docs_of(id)
    }

    fn cancel_batch(&self, id: u64, audit: AuditEvent) -> Result<(Batch, u64)> {
        let Some(mut batch) = self.batch(id)? else {
            return Err(LedgerError::NotFound(format!("no export batch {id}")));
        };
        if batch.status == BatchStatus::Cancelled {
            return Err(LedgerError::Invalid(format!(
                "export batch {id} is already cancelled"
            )));
        }
        let mut b = ::sled::Batch::default();
        let n = self.release_members(id, &format!("export batch {id} cancelled"), &mut b, false)?;
        batch.status = BatchStatus::Cancelled;
        batch.cancelled_at = Some(now());
        b.insert(bkey(id), to_json(&batch)?);
        b.insert(
            format!("a\0{:016}", self.next_seq("audit")?).into_bytes(),
            to_json(&audit)?,
        );
        self.set_rescan(&batch.job, &mut b)?;
        self.db.apply_batch(b)?;
        self.db.flush()?;
        Ok((batch, n))
    }

    fn counter(&self, name: &str) -> Result<u64> {
        Ok(self
            .db
            .get(format!("n\0{name}").as_bytes())?
            .and_then(|b| <[u8; 8]>::try_from(b.as_ref()).ok())
            .map(u64::from_be_bytes)
            .unwrap_or(1))
    }

    fn cursor(&self, job: &str) -> Result<Option<Cursor>> {
        let k = format!("c\0{job}").into_bytes();
        self.db.get(&k)?.map(|v| from_json(&k, &v)).transpose()
    }

    fn set_cursor(&self, job: &str, cursor: &Cursor) -> Result<()> {
        self.db
            .insert(format!("c\0{job}").into_bytes(), to_json(cursor)?)?;
        self.db.flush()?;
        Ok(())
    }

    fn save_report(&self, run_id: &str, report: &serde_json::Value) -> Result<()> {
        self.db
            .insert(format!("p\0{run_id}").into_bytes(), to_json(report)?)?;
        self.db.flush()?;
        Ok(())
    }

    fn report(&self, run_id: &str) -> Result<Option<serde_json::Value>> {
        let k = format!("p\0{run_id}").into_bytes();
        self.db.get(&k)?.map(|v| from_json(&k, &v)).transpose()
    }

    fn report_ids(&self) -> Result<Vec<String>> {
        self.db
            .scan_prefix(b"p\0")
            .keys()
            .map(|k| Ok(String::from_utf8_lossy(&k?[2..]).into_owned()))
            .collect()
    }

    fn audit(&self, event: AuditEvent) -> Result<()> {
        self.db.insert(
            format!("a\0{:016}", self.next_seq("audit")?).into_bytes(),
            to_json(&event)?,
        )?;
        self.db.flush()?;
        Ok(())
    }

    fn audit_trail(&self) -> Result<Vec<AuditEvent>> {
        self.scan(b"a\0")
    }

    fn put_value(&self, key: &str, value: &serde_json::Value) -> Result<()> {
        self.db
            .insert(format!("k\0{key}").into_bytes(), to_json(value)?)?;
        self.db.flush()?;
        Ok(())
    }

    fn value(&self, key: &str) -> Result<Option<serde_json::Value>> {
        let k = format!("k\0{key}").into_bytes();
        self.db.get(&k)?.map(|v| from_json(&k, &v)).transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;
    use rust_decimal::Decimal;

    pub(crate) fn record(doc: &str, state: State) -> Record {
        let key = RecordKey {
            job: "j".into(),
            target: "t".into(),
            doc_id: doc.into(),
        };
        Record {
            state,
            number: format!("N-{doc}"),
            ..Record::new(key, now())
        }
    }

    fn batch(id: u64) -> Batch {
        Batch {
            id,
            job: "j".into(),
            target: "t".into(),
            format: "fec".into(),
            journal: "VE".into(),
            period_from: NaiveDate::from_ymd_opt(2026, 1, 1).unwrap(),
            period_to: NaiveDate::from_ymd_opt(2026, 1, 31).unwrap(),
            file_name: "f.txt".into(),
            path: "out/f.txt".into(),
            sha256: "x".into(),
            size: 3,
            documents: 2,
            total_debit: Decimal::ONE,
            total_credit: Decimal::ONE,
            entries: None,
            status: BatchStatus::Active,
            origin: "sync".into(),
            run_id: "r".into(),
            created_at: now(),
            cancelled_at: None,
        }
    }

    fn claimed(open: &OpenBatch, doc: &str) -> Record {
        let mut r = record(doc, State::Claimed);
        r.batch_id = Some(open.id);
        r
    }

    fn audit(action: &str) -> AuditEvent {
        AuditEvent {
            at: now(),
            action: action.into(),
            detail: String::new(),
        }
    }

    #[test]
    fn commit_makes_members_delivered_and_file_downloadable() {
        let dir = tempfile::tempdir().unwrap();
        let l = SledLedger::open(dir.path()).unwrap();
        let open = l.begin_batch("j", "t", Path::new("tmp")).unwrap();
        l.claim(
            &open,
            &[claimed(&open, "a"), claimed(&open, "b")],
            &[record("c", State::Held)],
        )
        .unwrap();
        let file = vec![7u8; (1 << 20) + 10];
        l.commit_batch(
            &open,
            BatchCommit {
                batch: &batch(open.id),
                counters: vec![("VE".into(), 3)],
            },
            &mut &file[..],
        )
        .unwrap();
        assert_eq!(l.batch_file(open.id).unwrap(), file);
        let counts = l.count_states("j", "t").unwrap();
        assert_eq!(counts.get(&State::Delivered), Some(&2));
        assert_eq!(counts.get(&State::Held), Some(&1));
        assert_eq!(l.counter("VE").unwrap(), 3);
        assert_eq!(l.recover().unwrap().unpublished.len(), 1);
        l.mark_published(open.id).unwrap();
        assert!(l.recover().unwrap().unpublished.is_empty());
    }

    #[test]
    fn interrupted_batch_is_rolled_back_on_recovery() {
        let dir = tempfile::tempdir().unwrap();
        {
            let l = SledLedger::open(dir.path()).unwrap();
            let open = l.begin_batch("j", "t", Path::new("tmp")).unwrap();
            l.claim(&open, &[claimed(&open, "a")], &[]).unwrap();
        }
        let l = SledLedger::open(dir.path()).unwrap();
        let rec = l.recover().unwrap();
        assert_eq!(rec.rolled_back.len(), 1);
        assert_eq!(rec.released, 1);
        let r = l.get(&record("a", State::Held).key).unwrap().unwrap();
        assert_eq!(r.state, State::Released);
        assert!(l.cursor("j").unwrap().unwrap().rescan);
        assert!(l.batches().unwrap().is_empty());
    }

    #[test]
    fn cancel_releases_documents_and_keeps_history() {
        let dir = tempfile::tempdir().unwrap();
        let l = SledLedger::open(dir.path()).unwrap();
        let open = l.begin_batch("j", "t", Path::new("tmp")).unwrap();
        l.claim(&open, &[claimed(&open, "a")], &[]).unwrap();
        l.commit_batch(
            &open,
            BatchCommit {
                batch: &batch(open.id),
                counters: vec![],
            },
            &mut &b"abc"[..],
        )
        .unwrap();
        let (b, n) = l.cancel_batch(open.id, audit("cancel")).unwrap();
        assert_eq!((b.status, n), (BatchStatus::Cancelled, 1));
        assert!(l.cancel_batch(open.id, audit("cancel")).is_err());
        assert_eq!(l.batch_file(open.id).unwrap(), b"abc");
        assert_eq!(
            l.get(&record("a", State::Held).key).unwrap().unwrap().state,
            State::Released
        );
        assert_eq!(l.audit_trail().unwrap().len(), 1);
    }

    #[test]
    fn second_process_is_told_the_ledger_is_locked() {
        let dir = tempfile::tempdir().unwrap();
        let _l = SledLedger::open(dir.path()).unwrap();
        // sled's lock is per process (fcntl); a second open in the same process may succeed, so
        // this is proven across processes by the integration tests. Here: the schema check.
        drop(_l);
        let db = ::sled::open(dir.path()).unwrap();
        db.insert(b"m\0schema", b"99".to_vec()).unwrap();
        db.flush().unwrap();
        drop(db);
        match SledLedger::open(dir.path()) {
            Err(LedgerError::Schema { found: 99, .. }) => {}
            other => panic!("{:?}", other.err()),
        }
    }
}
