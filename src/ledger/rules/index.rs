//! The `t\0` tallies, the `x\0` state index and the `q\0` open-batch claim counts, and the
//! [`Stage`] that writes records together with the index changes they call for.

use std::collections::{BTreeMap, BTreeSet};

use super::codec::{encode_record, header, rkey, to_json};
use super::{doc_index, StoreLedger};
use crate::ledger::store::{Store, WriteBatch};
use crate::ledger::{keys, Record, RecordKey, Result, State, SCHEMA_VERSION};

/// Slots of a `t\0` tally: one per state (by code), then the records stored as claimed for an
/// export batch (which read as delivered once it is committed, and have no `x\0` entry).
pub(super) const TALLY: usize = State::ALL.len() + 1;
pub(super) const BATCHED: usize = State::ALL.len();

/// Records read at once when a state's index lists them.
const LIST_PAGE: usize = 500;

fn tkey(job: &str, target: &str) -> Vec<u8> {
    keys::key("t", &[job, target])
}
fn xprefix(job: &str, target: &str, state: State) -> Vec<u8> {
    keys::prefix("x", &[job, target, &state.code().to_string()])
}
fn xkey(k: &RecordKey, state: State) -> Vec<u8> {
    let mut v = xprefix(&k.job, &k.target, state);
    keys::push(&mut v, &k.doc_id);
    v
}
pub(super) fn qkey(id: u64) -> Vec<u8> {
    format!("q\0{id:016}").into_bytes()
}
pub(super) fn read_u64(v: &[u8]) -> u64 {
    <[u8; 8]>::try_from(v).map(u64::from_be_bytes).unwrap_or(0)
}
fn decode_tally(v: &[u8]) -> [u64; TALLY] {
    let mut t = [0u64; TALLY];
    for (slot, chunk) in t.iter_mut().zip(v.chunks_exact(8)) {
        *slot = read_u64(chunk);
    }
    t
}
fn encode_tally(t: &[u64; TALLY]) -> Vec<u8> {
    t.iter().flat_map(|n| n.to_be_bytes()).collect()
}
/// A record stored as claimed for an export batch is not in the `x\0` index.
fn indexed(state: State, batch: Option<u64>) -> bool {
    !(state == State::Claimed && batch.is_some())
}

/// The indexes a ledger's records call for (see [`StoreLedger::recount`]).
#[derive(Default)]
struct Recount {
    tallies: BTreeMap<Vec<u8>, [u64; TALLY]>,
    index: BTreeSet<Vec<u8>>,
    open_claims: BTreeMap<u64, u64>,
    /// Records whose key or header cannot be read (left out of the counts).
    unreadable: Vec<String>,
}

/// Record writes gathered into one atomic write batch, with what they change in the indexes.
#[derive(Default)]
pub(super) struct Stage {
    pub(super) batch: WriteBatch,
    /// Record values written so far in this stage (`None`: removed), read before the tree.
    records: std::collections::HashMap<Vec<u8>, Option<Vec<u8>>>,
    /// Record values read from the store ahead, in one call ([`StoreLedger::prefetch`]).
    read: std::collections::HashMap<Vec<u8>, Option<Vec<u8>>>,
    pub(super) tallies: BTreeMap<(String, String), [i64; TALLY]>,
    pub(super) open_claims: BTreeMap<u64, i64>,
}

impl<S: Store> StoreLedger<S> {
    /// Builds the `t\0`, `x\0` and `q\0` indexes from the records, in one atomic batch, and marks
    /// the ledger as indexed. Used once for a ledger written before the indexes existed.
    pub(super) fn rebuild_indexes(&self) -> Result<()> {
        let _w = self.write_lock()?;
        let mut b = WriteBatch::default();
        for prefix in [&b"t\0"[..], b"x\0", b"q\0"] {
            for kv in self.store.scan(prefix) {
                b.remove(kv?.0);
            }
        }
        let counted = self.recount()?;
        for k in counted.index {
            b.insert(k, &[][..]);
        }
        for (k, t) in counted.tallies {
            b.insert(k, encode_tally(&t));
        }
        for (id, n) in counted.open_claims {
            b.insert(qkey(id), n.to_be_bytes().to_vec());
        }
        b.insert(&b"m\0index"[..], &b"1"[..]);
        b.insert(&b"m\0schema"[..], to_json(&SCHEMA_VERSION)?);
        self.store.apply(b)?;
        self.store.flush()?;
        Ok(())
    }

    /// The indexes as the records call for them, from one scan of the records (headers and
    /// keys only).
    fn recount(&self) -> Result<Recount> {
        let mut c = Recount::default();
        for kv in self.store.scan(b"r\0") {
            let (k, v) = kv?;
            let parts = keys::split(&k[2..]).unwrap_or_default();
            let (Some((state, batch)), Some(logical), [job, target, doc]) =
                (header(&v), self.logical(&v), parts.as_slice())
            else {
                c.unreadable
                    .push(String::from_utf8_lossy(&k[2..]).replace('\0', "/"));
                continue;
            };
            let t = c.tallies.entry(tkey(job, target)).or_insert([0; TALLY]);
            t[usize::from(logical.code())] += 1;
            if indexed(state, batch) {
                let key = RecordKey {
                    job: job.clone(),
                    target: target.clone(),
                    doc_id: doc.clone(),
                };
                c.index.insert(xkey(&key, state));
            } else {
                t[BATCHED] += 1;
                if let Some(id) = batch.filter(|id| self.is_open(*id)) {
                    *c.open_claims.entry(id).or_insert(0) += 1;
                }
            }
        }
        Ok(c)
    }

    /// The stored value of record `k`, as this stage left it.
    pub(super) fn current(&self, st: &Stage, k: &[u8]) -> Result<Option<Vec<u8>>> {
        match st.records.get(k).or_else(|| st.read.get(k)) {
            Some(v) => Ok(v.clone()),
            None => self.store.get(k),
        }
    }

    /// Reads the stored values of these records, and the tallies of their jobs and targets, in
    /// one call, for the stage's writes that follow (under the write lock: nothing changes them
    /// meanwhile).
    pub(super) fn prefetch<'a>(
        &self,
        st: &mut Stage,
        keys: impl Iterator<Item = &'a RecordKey>,
    ) -> Result<()> {
        let mut want: Vec<Vec<u8>> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for key in keys {
            for k in [rkey(key), tkey(&key.job, &key.target)] {
                if !st.records.contains_key(&k)
                    && !st.read.contains_key(&k)
                    && seen.insert(k.clone())
                {
                    want.push(k);
                }
            }
        }
        if want.is_empty() {
            return Ok(());
        }
        let values = self.store.get_many(&want)?;
        st.read.extend(want.into_iter().zip(values));
        Ok(())
    }

    /// Stages writing `new` (or removing the record, for `None`) under `key`, with its index
    /// entries and tally changes.
    pub(super) fn stage(
        &self,
        st: &mut Stage,
        key: &RecordKey,
        new: Option<&Record>,
    ) -> Result<()> {
        let k = rkey(key);
        let old = self.current(st, &k)?;
        // Only a record's number can move it in the document index (its id is its key).
        let old_number = old.as_deref().and_then(doc_index::stored_number);
        doc_index::restage(
            &mut st.batch,
            key,
            old_number.as_deref(),
            new.map(|r| r.number.as_str()),
        );
        let tally = st
            .tallies
            .entry((key.job.clone(), key.target.clone()))
            .or_insert([0; TALLY]);
        if let Some(old) = old {
            if let (Some((state, batch)), Some(logical)) = (header(&old), self.logical(&old)) {
                tally[usize::from(logical.code())] -= 1;
                if indexed(state, batch) {
                    st.batch.remove(xkey(key, state));
                } else {
                    tally[BATCHED] -= 1;
                    if let Some(id) = batch.filter(|id| self.is_open(*id)) {
                        *st.open_claims.entry(id).or_insert(0) -= 1;
                    }
                }
            }
        }
        match new {
            Some(r) => {
                let logical = match (r.state, r.batch_id) {
                    (State::Claimed, Some(id)) if !self.is_open(id) => State::Delivered,
                    (s, _) => s,
                };
                tally[usize::from(logical.code())] += 1;
                if indexed(r.state, r.batch_id) {
                    st.batch.insert(xkey(key, r.state), &[][..]);
                } else {
                    tally[BATCHED] += 1;
                    if let Some(id) = r.batch_id.filter(|id| self.is_open(*id)) {
                        *st.open_claims.entry(id).or_insert(0) += 1;
                    }
                }
                let v = encode_record(r)?;
                st.batch.insert(k.clone(), v.clone());
                st.records.insert(k, Some(v));
            }
            None => {
                st.batch.remove(k.clone());
                st.records.insert(k, None);
            }
        }
        Ok(())
    }

    /// Adds the stage's tally changes to its batch and applies it atomically. The caller holds
    /// the write lock and flushes.
    pub(super) fn apply(&self, mut st: Stage) -> Result<()> {
        for ((job, target), delta) in &st.tallies {
            if delta.iter().all(|d| *d == 0) {
                continue;
            }
            let mut t = match st.read.get(&tkey(job, target)) {
                Some(v) => v.as_deref().map(decode_tally).unwrap_or([0; TALLY]),
                None => self.tally(job, target)?,
            };
            for (slot, d) in t.iter_mut().zip(delta) {
                *slot = slot.saturating_add_signed(*d);
            }
            st.batch.insert(tkey(job, target), encode_tally(&t));
        }
        for (id, delta) in &st.open_claims {
            let k = qkey(*id);
            let n = self.store.get(&k)?.map(|v| read_u64(&v)).unwrap_or(0);
            st.batch
                .insert(k, n.saturating_add_signed(*delta).to_be_bytes().to_vec());
        }
        self.store.apply(st.batch)?;
        Ok(())
    }

    pub(super) fn tally(&self, job: &str, target: &str) -> Result<[u64; TALLY]> {
        Ok(self
            .store
            .get(&tkey(job, target))?
            .map(|v| decode_tally(&v))
            .unwrap_or([0; TALLY]))
    }

    /// The records of `job`/`target` in logical state `state`, whose tally is `tally`: through
    /// the `x\0` index, or for `claimed`/`delivered` where records are stored as claimed for an
    /// export batch (they are not in the index), a scan of that job and target's records.
    pub(super) fn list_state(
        &self,
        job: &str,
        target: &str,
        state: State,
        tally: &[u64; TALLY],
    ) -> Result<Vec<Record>> {
        let batched = matches!(state, State::Claimed | State::Delivered) && tally[BATCHED] > 0;
        if !batched {
            return self.list_indexed(job, target, state);
        }
        let mut out = Vec::new();
        for kv in self.store.scan(&keys::prefix("r", &[job, target])) {
            let (k, v) = kv?;
            if self.logical(&v) == Some(state) {
                out.push(self.decode(&k, &v)?);
            }
        }
        Ok(out)
    }

    /// The `(job, target)` pairs with records, each with its tally, in key order; of `job` only
    /// when given.
    pub(super) fn tallies(&self, job: Option<&str>) -> Result<Vec<(String, String, [u64; TALLY])>> {
        let prefix = match job {
            Some(j) => keys::prefix("t", &[j]),
            None => b"t\0".to_vec(),
        };
        let mut out = Vec::new();
        for kv in self.store.scan(&prefix) {
            let (k, v) = kv?;
            if let Some([job, target]) =
                keys::split(&k[2..]).and_then(|p| <[String; 2]>::try_from(p).ok())
            {
                out.push((job, target, decode_tally(&v)));
            }
        }
        Ok(out)
    }

    /// The records of `job`/`target` in stored state `state`, through the `x\0` index; read
    /// [`LIST_PAGE`] at a time ([`Store::get_many`]: one query a page in a database, where one
    /// a record cost a round trip each).
    fn list_indexed(&self, job: &str, target: &str, state: State) -> Result<Vec<Record>> {
        let prefix = xprefix(job, target, state);
        let mut out = Vec::new();
        let mut page: Vec<Vec<u8>> = Vec::with_capacity(LIST_PAGE);
        let read = |page: &mut Vec<Vec<u8>>, out: &mut Vec<Record>| -> Result<()> {
            if page.is_empty() {
                return Ok(());
            }
            for (k, v) in page.iter().zip(self.store.get_many(page)?) {
                // Forgotten since the index was read (`check_indexes` reports a lasting
                // mismatch).
                let Some(v) = v else { continue };
                let r = self.decode(k, &v)?;
                if r.state == state {
                    out.push(r);
                }
            }
            page.clear();
            Ok(())
        };
        for kv in self.store.scan(&prefix) {
            let (xk, _) = kv?;
            let Some(doc_id) = keys::unescape(&xk[prefix.len()..]) else {
                continue;
            };
            page.push(rkey(&RecordKey {
                job: job.into(),
                target: target.into(),
                doc_id,
            }));
            if page.len() == LIST_PAGE {
                read(&mut page, &mut out)?;
            }
        }
        read(&mut page, &mut out)?;
        Ok(out)
    }

    /// Compares the indexes with the records they describe; returns the differences (none when
    /// the ledger is consistent). For tests and `ledger` diagnostics.
    pub fn check_indexes(&self) -> Result<Vec<String>> {
        let _w = self.write_lock()?;
        let expected = self.recount()?;
        let mut problems: Vec<String> = expected
            .unreadable
            .iter()
            .map(|k| format!("unreadable record {k}"))
            .collect();
        let mut found_q = BTreeMap::new();
        for kv in self.store.scan(b"q\0") {
            let (k, v) = kv?;
            let id = String::from_utf8_lossy(&k[2..]).parse::<u64>().unwrap_or(0);
            if read_u64(&v) != 0 {
                found_q.insert(id, read_u64(&v));
            }
        }
        if found_q != expected.open_claims {
            problems.push(format!(
                "claims of open batches {found_q:?} differ from the records' {:?}",
                expected.open_claims
            ));
        }
        let mut found_x = BTreeSet::new();
        for kv in self.store.scan(b"x\0") {
            found_x.insert(kv?.0.to_vec());
        }
        for k in expected.index.symmetric_difference(&found_x) {
            let which = if found_x.contains(k) {
                "stray"
            } else {
                "missing"
            };
            problems.push(format!(
                "{which} index entry {}",
                String::from_utf8_lossy(k).replace('\0', "/")
            ));
        }
        let mut found_t = BTreeMap::new();
        for kv in self.store.scan(b"t\0") {
            let (k, v) = kv?;
            let t = decode_tally(&v);
            if t.iter().any(|n| *n != 0) {
                found_t.insert(k.to_vec(), t);
            }
        }
        problems.extend(self.check_doc_index()?);
        if found_t != expected.tallies {
            problems.push(format!(
                "tallies {:?} differ from the records' {:?}",
                found_t.values().collect::<Vec<_>>(),
                expected.tallies.values().collect::<Vec<_>>()
            ));
        }
        Ok(problems)
    }
}

#[cfg(test)]
mod tests {
    use crate::ledger::conformance::record;
    use crate::ledger::{Ledger, MemLedger, RecordFilter, State, StoreLedger};

    /// A state's list reads its records a page at a time: every one of several pages, in key
    /// order; one removed or in another state since its index entry was written is not listed.
    #[test]
    fn a_state_lists_every_record_of_several_pages_in_order() {
        let l: MemLedger = StoreLedger::on(Default::default()).unwrap();
        let n = 2 * super::LIST_PAGE + 1;
        let records: Vec<_> = (0..n)
            .map(|i| record(&format!("d{i:05}"), State::Held))
            .collect();
        l.put_records(&records).unwrap();
        // Behind the index's back, at the end of the first page and the start of the second:
        // one record removed, one in another state. Neither is listed.
        let mut wb = crate::ledger::store::WriteBatch::default();
        wb.remove(super::rkey(&records[499].key));
        let mut other = records[500].clone();
        other.state = State::Failed;
        wb.insert(
            super::rkey(&other.key),
            super::super::codec::encode_record(&other).unwrap(),
        );
        crate::ledger::store::Store::apply(l.store(), wb).unwrap();
        let held: Vec<String> = l
            .list(&RecordFilter {
                state: Some(State::Held),
                ..Default::default()
            })
            .unwrap()
            .into_iter()
            .map(|r| r.key.doc_id)
            .collect();
        let want: Vec<String> = (0..n)
            .filter(|i| ![499, 500].contains(i))
            .map(|i| format!("d{i:05}"))
            .collect();
        assert_eq!(held, want);
    }
}
