//! The [`Ledger`] trait on [`StoreLedger`]: records, export batches, counters, cursors, reports,
//! the audit trail and stored values.

use std::collections::BTreeMap;
use std::path::Path;

use super::codec::{bkey, dprefix, from_json, okey, rkey, to_json, ukey, vkey};
use super::index::{qkey, read_u64, Stage, TALLY};
use super::{now, StoreLedger};
use crate::ledger::store::{Store, WriteBatch};
use crate::ledger::{
    keys, AuditEvent, Batch, BatchCommit, BatchStatus, Cursor, Ledger, LedgerError, OpenBatch,
    Record, RecordFilter, RecordKey, Recovery, Result, State,
};

impl<S: Store> Ledger for StoreLedger<S> {
    fn size_on_disk(&self) -> Option<u64> {
        Store::size_on_disk(self.store())
    }

    fn shared(&self) -> std::sync::Arc<dyn Ledger> {
        std::sync::Arc::new(self.clone())
    }

    fn get(&self, key: &RecordKey) -> Result<Option<Record>> {
        let k = rkey(key);
        self.store.get(&k)?.map(|v| self.decode(&k, &v)).transpose()
    }

    fn get_many(&self, keys: &[RecordKey]) -> Result<Vec<Option<Record>>> {
        let ks: Vec<Vec<u8>> = keys.iter().map(rkey).collect();
        let found = self.store.get_many(&ks)?;
        ks.iter()
            .zip(found)
            .map(|(k, v)| v.map(|v| self.decode(k, &v)).transpose())
            .collect()
    }

    fn put_records(&self, records: &[Record]) -> Result<()> {
        if records.is_empty() {
            return Ok(());
        }
        self.write_records(records, None)
    }

    fn put_records_if(&self, records: &[Record], expected: &[State]) -> Result<()> {
        if records.len() != expected.len() {
            return Err(LedgerError::Invalid(
                "one expected state per record".to_owned(),
            ));
        }
        self.write_records(records, Some(expected))
    }

    fn worker(&self) -> Option<String> {
        self.store.worker()
    }

    fn workers(&self) -> Result<Vec<String>> {
        self.store.workers()
    }

    fn lock_name(&self, name: &str) -> Result<()> {
        self.store.lock_name(name)
    }

    fn unlock_name(&self, name: &str) {
        self.store.unlock_name(name);
    }

    fn try_lock_name(&self, name: &str) -> Result<bool> {
        self.store.try_lock_name(name)
    }

    fn worker_alive(&self, id: &str) -> Result<bool> {
        self.store.worker_alive(id)
    }

    fn put_claims(&self, claims: &[Record], others: &[Record]) -> Result<Vec<RecordKey>> {
        let w = self.write_lock()?;
        let keys: Vec<Vec<u8>> = claims.iter().chain(others).map(|r| rkey(&r.key)).collect();
        let stored = self.store.get_many(&keys)?;
        let taken = |v: &Option<Vec<u8>>| {
            v.as_deref()
                .and_then(|v| self.logical(v))
                .is_some_and(|s| !s.is_eligible())
        };
        let refused: Vec<RecordKey> = claims
            .iter()
            .zip(&stored)
            .filter(|(_, v)| taken(v))
            .map(|(r, _)| r.key.clone())
            .collect();
        let mut write: Vec<&Record> = Vec::with_capacity(keys.len());
        if refused.is_empty() {
            write.extend(claims);
        }
        for (r, v) in others.iter().zip(stored.iter().skip(claims.len())) {
            if !(r.state.is_eligible() && taken(v)) {
                write.push(r);
            }
        }
        self.write_locked(&write)?;
        drop(w);
        self.store.flush()?;
        Ok(refused)
    }

    fn put_records_unchanged(
        &self,
        records: &[Record],
        read: &[Option<chrono::DateTime<chrono::Utc>>],
    ) -> Result<bool> {
        if records.len() != read.len() {
            return Err(LedgerError::Invalid("one read time per record".to_owned()));
        }
        let w = self.write_lock()?;
        let keys: Vec<Vec<u8>> = records.iter().map(|r| rkey(&r.key)).collect();
        for ((k, v), want) in keys.iter().zip(self.store.get_many(&keys)?).zip(read) {
            let now = v.map(|v| self.decode(k, &v)).transpose()?;
            if now.map(|r| r.updated_at) != *want {
                return Ok(false);
            }
        }
        let all: Vec<&Record> = records.iter().collect();
        self.write_locked(&all)?;
        drop(w);
        self.store.flush()?;
        Ok(true)
    }

    fn list(&self, f: &RecordFilter) -> Result<Vec<Record>> {
        let mut out = Vec::new();
        self.visit(f, &mut |r| {
            out.push(r);
            Ok(())
        })?;
        Ok(out)
    }

    fn visit(&self, f: &RecordFilter, each: &mut dyn FnMut(Record) -> Result<()>) -> Result<()> {
        if let Some(state) = f.state {
            // One (job, target) at a time, from its tally: those with no record in this state
            // are not read at all, the others through the state index where it covers them.
            for (job, target, tally) in self.tallies(f.job.as_deref())? {
                if f.target.as_ref().is_some_and(|t| *t != target)
                    || tally[usize::from(state.code())] == 0
                {
                    continue;
                }
                for r in self.list_state(&job, &target, state, &tally)? {
                    each(r)?;
                }
            }
            return Ok(());
        }
        let prefix = match (&f.job, &f.target) {
            (Some(j), Some(t)) => keys::prefix("r", &[j, t]),
            (Some(j), None) => keys::prefix("r", &[j]),
            _ => b"r\0".to_vec(),
        };
        for kv in self.store.scan(&prefix) {
            let (k, v) = kv?;
            let r = self.decode(&k, &v)?;
            if f.target.as_ref().is_some_and(|t| *t != r.key.target) {
                continue;
            }
            each(r)?;
        }
        Ok(())
    }

    fn find(&self, doc: &str) -> Result<Vec<Record>> {
        self.find_indexed(doc, None)
    }

    fn find_in_job(&self, job: &str, doc: &str) -> Result<Vec<Record>> {
        self.find_indexed(doc, Some(job))
    }

    fn count_states(&self, job: &str, target: &str) -> Result<BTreeMap<State, u64>> {
        let t = self.tally(job, target)?;
        Ok(State::ALL
            .iter()
            .map(|s| (*s, t[usize::from(s.code())]))
            .filter(|(_, n)| *n > 0)
            .collect())
    }

    fn forget(&self, key: &RecordKey, audit: AuditEvent) -> Result<Record> {
        let k = rkey(key);
        // Read under the write lock: a claim another worker takes meanwhile is never removed.
        let w = self.write_lock()?;
        let Some(v) = self.store.get(&k)? else {
            return Err(LedgerError::NotFound(format!("no ledger record for {key}")));
        };
        let r = self.decode(&k, &v)?;
        if r.state == State::Claimed {
            return Err(LedgerError::Invalid(format!(
                "{key} is claimed by a delivery in progress; run `facto sync` first so it is completed or rolled back"
            )));
        }
        let mut st = Stage::default();
        self.stage(&mut st, key, None)?;
        st.batch.insert(
            format!("a\0{:016}", self.next_seq("audit")?).into_bytes(),
            to_json(&audit)?,
        );
        self.apply(st)?;
        drop(w);
        self.store.flush()?;
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
        self.put(okey(id), to_json(&open)?)?;
        self.store.flush()?;
        Ok(open)
    }

    fn claim(&self, open: &OpenBatch, claimed: &[Record], others: &[Record]) -> Result<()> {
        self.claim_with_values(open, claimed, others, &[])
    }

    fn claim_with_values(
        &self,
        open: &OpenBatch,
        claimed: &[Record],
        others: &[Record],
        values: &[(String, serde_json::Value)],
    ) -> Result<()> {
        let w = self.write_lock()?;
        let mut st = Stage::default();
        for (key, value) in values {
            st.batch.insert(vkey(key), to_json(value)?);
        }
        self.prefetch(&mut st, claimed.iter().chain(others).map(|r| &r.key))?;
        let mut members = Vec::with_capacity(claimed.len() * 32);
        for r in claimed {
            debug_assert_eq!(r.state, State::Claimed);
            // The commit moves the batch's claimed tally for the batch's own job and target.
            debug_assert!(r.key.job == open.job && r.key.target == open.target);
            keys::push_member(&mut members, &r.key.job, &r.key.target, &r.key.doc_id);
            self.stage(&mut st, &r.key, Some(r))?;
        }
        if !claimed.is_empty() {
            let mut mk = dprefix(open.id);
            mk.extend(format!("{:016}", self.next_seq("page")?).into_bytes());
            st.batch.insert(mk, members);
        }
        for r in others {
            self.stage(&mut st, &r.key, Some(r))?;
        }
        self.apply(st)?;
        drop(w);
        self.store.flush()?;
        Ok(())
    }

    fn commit_batch(
        &self,
        open: &OpenBatch,
        commit: BatchCommit<'_>,
        file: &mut dyn std::io::Read,
    ) -> Result<()> {
        let id = open.id;
        // 1. The file's exact bytes, kept apart from the keys (no place for large values) and
        // made durable before the commit that refers to them.
        self.store.put_blob(id, file)?;
        // 2. The commit point: the batch becomes active and the open marker goes, atomically;
        // from then on every record claimed for it reads as delivered, so their tally moves
        // from claimed to delivered in the same write.
        let w = self.write_lock()?;
        let mut st = Stage::default();
        st.batch.insert(bkey(id), to_json(commit.batch)?);
        st.batch.insert(ukey(id), &[][..]);
        st.batch.remove(okey(id));
        st.batch.remove(qkey(id));
        let claimed = self
            .store
            .get(&qkey(id))?
            .map(|v| read_u64(&v))
            .unwrap_or(0);
        let claimed = i64::try_from(claimed).unwrap_or(i64::MAX);
        let mut delta = [0i64; TALLY];
        delta[usize::from(State::Claimed.code())] = -claimed;
        delta[usize::from(State::Delivered.code())] = claimed;
        st.tallies
            .insert((open.job.clone(), open.target.clone()), delta);
        for (name, next) in &commit.counters {
            st.batch.insert(
                format!("n\0{name}").into_bytes(),
                next.to_be_bytes().to_vec(),
            );
        }
        self.apply(st)?;
        self.set_open(id, false);
        drop(w);
        self.store.flush()?;
        Ok(())
    }

    fn abort_batch(&self, open: &OpenBatch, note: &str) -> Result<u64> {
        let w = self.write_lock()?;
        let mut st = Stage::default();
        let n = self.release_members(open.id, note, &mut st, true)?;
        st.batch.remove(okey(open.id));
        st.batch.remove(qkey(open.id));
        st.open_claims.remove(&open.id);
        self.apply(st)?;
        self.set_open(open.id, false);
        drop(w);
        self.store.flush()?;
        // The copy being made when the run was killed included.
        self.store.remove_blob(open.id);
        Ok(n)
    }

    fn mark_published(&self, id: u64) -> Result<()> {
        let mut b = WriteBatch::default();
        b.remove(ukey(id));
        self.store.apply(b)?;
        self.store.flush()?;
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
            let mut b = WriteBatch::default();
            self.set_rescan(&open.job, &mut b)?;
            self.store.apply(b)?;
            rec.rolled_back.push(open);
        }
        self.store.flush()?;
        for kv in self.store.scan(b"u\0") {
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
        self.store.get(&k)?.map(|v| from_json(&k, &v)).transpose()
    }

    fn batches(&self) -> Result<Vec<Batch>> {
        self.scan(b"b\0")
    }

    fn batch_file(&self, id: u64) -> Result<Vec<u8>> {
        if self.batch(id)?.is_none() {
            return Err(LedgerError::NotFound(format!("no export batch {id}")));
        }
        self.store.blob(id)
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
        let w = self.write_lock()?;
        let mut st = Stage::default();
        let n =
            self.release_members(id, &format!("export batch {id} cancelled"), &mut st, false)?;
        batch.status = BatchStatus::Cancelled;
        batch.cancelled_at = Some(now());
        st.batch.insert(bkey(id), to_json(&batch)?);
        st.batch.insert(
            format!("a\0{:016}", self.next_seq("audit")?).into_bytes(),
            to_json(&audit)?,
        );
        self.set_rescan(&batch.job, &mut st.batch)?;
        self.apply(st)?;
        drop(w);
        self.store.flush()?;
        Ok((batch, n))
    }

    fn counter(&self, name: &str) -> Result<u64> {
        Ok(self
            .store
            .get(format!("n\0{name}").as_bytes())?
            .and_then(|b| <[u8; 8]>::try_from(b.as_ref()).ok())
            .map(u64::from_be_bytes)
            .unwrap_or(1))
    }

    fn cursor(&self, job: &str) -> Result<Option<Cursor>> {
        let k = format!("c\0{job}").into_bytes();
        self.store.get(&k)?.map(|v| from_json(&k, &v)).transpose()
    }

    fn set_cursor(&self, job: &str, cursor: &Cursor) -> Result<()> {
        self.put(format!("c\0{job}").into_bytes(), to_json(cursor)?)?;
        self.store.flush()?;
        Ok(())
    }

    fn save_report(&self, run_id: &str, report: &serde_json::Value) -> Result<()> {
        self.put(format!("p\0{run_id}").into_bytes(), to_json(report)?)?;
        self.store.flush()?;
        Ok(())
    }

    fn report(&self, run_id: &str) -> Result<Option<serde_json::Value>> {
        let k = format!("p\0{run_id}").into_bytes();
        self.store.get(&k)?.map(|v| from_json(&k, &v)).transpose()
    }

    fn report_ids(&self) -> Result<Vec<String>> {
        self.store
            .scan(b"p\0")
            .map(|kv| Ok(String::from_utf8_lossy(&kv?.0[2..]).into_owned()))
            .collect()
    }

    fn audit(&self, event: AuditEvent) -> Result<()> {
        self.put(
            format!("a\0{:016}", self.next_seq("audit")?).into_bytes(),
            to_json(&event)?,
        )?;
        self.store.flush()?;
        Ok(())
    }

    fn audit_trail(&self) -> Result<Vec<AuditEvent>> {
        self.scan(b"a\0")
    }

    fn put_value(&self, key: &str, value: &serde_json::Value) -> Result<()> {
        self.put(vkey(key), to_json(value)?)?;
        self.store.flush()?;
        Ok(())
    }

    fn put_values(&self, values: &[(String, serde_json::Value)]) -> Result<()> {
        let mut batch = WriteBatch::default();
        for (key, value) in values {
            batch.insert(vkey(key), to_json(value)?);
        }
        self.store.apply(batch)?;
        self.store.flush()?;
        Ok(())
    }

    fn value(&self, key: &str) -> Result<Option<serde_json::Value>> {
        let k = vkey(key);
        self.store.get(&k)?.map(|v| from_json(&k, &v)).transpose()
    }

    fn values(&self, keys: &[String]) -> Result<Vec<Option<serde_json::Value>>> {
        let ks: Vec<Vec<u8>> = keys.iter().map(|k| vkey(k)).collect();
        let found = self.store.get_many(&ks)?;
        ks.iter()
            .zip(found)
            .map(|(k, v)| v.map(|v| from_json(k, &v)).transpose())
            .collect()
    }

    fn put_entries(
        &self,
        space: &str,
        entries: &[(Vec<String>, Option<serde_json::Value>)],
    ) -> Result<()> {
        let mut batch = WriteBatch::default();
        for (parts, value) in entries {
            let mut all: Vec<&str> = vec![space];
            all.extend(parts.iter().map(String::as_str));
            let k = keys::key("e", &all);
            match value {
                Some(v) => batch.insert(k, to_json(v)?),
                None => batch.remove(k),
            }
        }
        self.store.apply(batch)?;
        self.store.flush()?;
        Ok(())
    }

    fn entries(
        &self,
        space: &str,
        first: &[&str],
    ) -> Result<Vec<(Vec<String>, serde_json::Value)>> {
        let mut all: Vec<&str> = vec![space];
        all.extend_from_slice(first);
        let prefix = keys::prefix("e", &all);
        let mut out = Vec::new();
        for kv in self.store.scan(&prefix) {
            let (k, v) = kv?;
            let rest = keys::split(&k[prefix.len()..]).ok_or_else(|| LedgerError::Corrupt {
                key: String::from_utf8_lossy(&k).replace('\0', "/"),
                detail: "an entry's key does not split into its parts".into(),
            })?;
            out.push((rest, from_json(&k, &v)?));
        }
        Ok(out)
    }
}
