//! Duplicates in the source: one document id read twice in a run with different contents, or one
//! invoice number under two ids (in this run or an earlier one). The later document is held, naming both files and
//! ids, so that nothing is booked twice. Numbers are remembered in the ledger's value store, one
//! entry per (job, kind, number), written once per page.

use std::collections::{BTreeSet, HashMap};

use serde_json::{json, Value};

use crate::ledger::{Ledger, LedgerError, Record, RecordFilter, RecordKey, State};
use crate::model::{DocStatus, Document};
use crate::problem::Problem;

/// What is wrong with a document that duplicates another.
pub(crate) enum Duplicate {
    /// Its id was already read in this run: it shares the first one's ledger record, so it is
    /// left out and reported; the cursor stays before both copies (see `conflicts`).
    SameId(Problem),
    /// Its number belongs to another document: it is held in its own record.
    SameNumber(Problem),
    /// The same id with the same content, read again (a page boundary that moved): skipped.
    Reread,
}

/// The ids and numbers seen by one run of a job. Kept for the whole run, so kept small: an
/// id maps to its file (an index into `origins`, one entry per file) and the first 16 bytes
/// of its content hash; a (kind, number) to its owner's id and file. About 150 bytes a
/// document, where full strings took about 420 (a first sync of a million documents held
/// 400 MiB of them).
#[derive(Default)]
pub(crate) struct Duplicates {
    ids: HashMap<Box<str>, (u32, [u8; 16])>,
    numbers: HashMap<Box<str>, (Box<str>, u32)>,
    origins: Vec<String>,
    origin_ix: HashMap<String, u32>,
    unsaved: Vec<(String, Value)>,
    /// Where the copies of an id read twice came from: the cursor does not move past them, so
    /// every run reads both again and reports them until one is removed.
    pub(crate) conflicts: BTreeSet<String>,
    /// Set while held documents are re-checked from the ledger's copies: those are not a
    /// second reading of the source.
    pub(crate) refeeding: bool,
    /// Set in a dry run of a job whose numbers are not all in the value store: a number not
    /// found there is looked up in the ledger's records (by number, through its index) rather
    /// than every record of the job read up front, since nothing would be saved.
    from_records: bool,
    /// The stored owners of the current page's numbers, read at once ([`Duplicates::read_ahead`]).
    ahead: HashMap<String, Option<Value>>,
}

fn number_key(job: &str, kind: &str, number: &str) -> String {
    // JSON quoting keeps the number unambiguous whatever it holds.
    let number = serde_json::to_string(number).unwrap_or_default();
    format!("doc-number\0{job}\0{kind}\0{number}")
}

/// The in-memory key of a (kind, number), the job being the run's.
fn short_key(kind: &str, number: &str) -> Box<str> {
    format!("{kind}\0{number}").into_boxed_str()
}

/// The first 16 bytes of a content hash (hex SHA-256); another text is hashed first.
fn fingerprint(hash: &str) -> [u8; 16] {
    let mut out = [0u8; 16];
    match hex::decode(hash.get(..32).unwrap_or_default()) {
        Ok(b) if b.len() == 16 => out.copy_from_slice(&b),
        _ => {
            use sha2::Digest;
            out.copy_from_slice(&sha2::Sha256::digest(hash.as_bytes())[..16]);
        }
    }
    out
}

/// Number registrations per flushed write while a job's numbers are registered for the first time.
const BACKFILL_CHUNK: usize = 10_000;

/// Set once a job's numbers are all in the value store.
fn marker(job: &str) -> String {
    format!("doc-number-index\0{job}")
}

impl Duplicates {
    /// Registers a final document and says whether it duplicates one read before.
    ///
    /// # Errors
    ///
    /// Ledger failure.
    pub(crate) fn check(
        &mut self,
        ledger: &dyn Ledger,
        job: &str,
        targets: &[String],
        doc: &Document,
        origin: &str,
        hash: &str,
    ) -> Result<Option<Duplicate>, LedgerError> {
        if doc.status != DocStatus::Final {
            return Ok(None);
        }
        match self.ids.get(doc.id.as_str()) {
            Some((_, first_hash)) if !self.refeeding && *first_hash == fingerprint(hash) => {
                return Ok(Some(Duplicate::Reread));
            }
            Some((first, _)) if !self.refeeding => {
                let first = self.origin(*first).to_owned();
                return Ok(Some(Duplicate::SameId(self.same_id(doc, &first, origin))));
            }
            Some(_) => {}
            None => {
                let o = self.intern(origin);
                self.ids
                    .insert(doc.id.as_str().into(), (o, fingerprint(hash)));
            }
        }
        if doc.number.is_empty() {
            return Ok(None);
        }
        let key = number_key(job, doc.kind.as_str(), &doc.number);
        let short = short_key(doc.kind.as_str(), &doc.number);
        let owner = match self.numbers.get(&short) {
            Some((id, o)) => Some((id.to_string(), self.origin(*o).to_owned())),
            None => match self
                .ahead
                .remove(&key)
                .map_or_else(|| ledger.value(&key), Ok)?
            {
                Some(v) => {
                    let id = v["id"].as_str().unwrap_or_default().to_owned();
                    // A first document forgotten from the ledger no longer owns its number
                    // (asked only when the owner is another document).
                    let mut owns = id == doc.id;
                    for t in targets {
                        if owns {
                            break;
                        }
                        let k = RecordKey {
                            job: job.to_owned(),
                            target: t.clone(),
                            doc_id: id.clone(),
                        };
                        owns = ledger.get(&k)?.is_some();
                    }
                    let origin = v["origin"].as_str().unwrap_or_default().to_owned();
                    owns.then_some((id, origin))
                }
                None if self.from_records => owner(
                    ledger.find_in_job(job, &doc.number)?,
                    doc.kind.as_str(),
                    &doc.number,
                ),
                None => None,
            },
        };
        match owner {
            Some((id, first)) if id != doc.id => {
                Ok(Some(Duplicate::SameNumber(Problem::new(
                    "duplicate-number",
                    "number",
                    format!(
                        "{} number {} is already used by document `{id}` ({first}); this document `{}` ({origin}) is held so that the number is not booked twice",
                        doc.kind.as_str(),
                        doc.number,
                        doc.id
                    ),
                    format!(
                        "give this document its own number in the invoicing application, or remove it; if `{id}` is the mistake, forgetting it from the ledger (`facto ledger forget {id} --target T --yes`, for each target) frees the number"
                    ),
                ))))
            }
            Some((id, first)) => {
                let o = self.intern(&first);
                self.numbers.insert(short, (id.into_boxed_str(), o));
                Ok(None)
            }
            None => {
                let value = json!({"id": doc.id, "origin": origin});
                let o = self.intern(origin);
                self.numbers.insert(short, (doc.id.as_str().into(), o));
                self.unsaved.push((key, value));
                Ok(None)
            }
        }
    }

    /// Reads at once the stored owners of the numbers of `docs` not met yet in this run, for
    /// [`Duplicates::check`] to find without a read each; what an earlier page read is dropped.
    ///
    /// # Errors
    ///
    /// Ledger failure.
    pub(crate) fn read_ahead<'d>(
        &mut self,
        ledger: &dyn Ledger,
        job: &str,
        docs: impl Iterator<Item = &'d Document>,
    ) -> Result<(), LedgerError> {
        self.ahead.clear();
        let keys: Vec<String> = docs
            .filter(|d| d.status == DocStatus::Final && !d.number.is_empty())
            .filter(|d| {
                !self
                    .numbers
                    .contains_key(&short_key(d.kind.as_str(), &d.number))
            })
            .map(|d| number_key(job, d.kind.as_str(), &d.number))
            .collect();
        if keys.is_empty() {
            return Ok(());
        }
        let found = ledger.values(&keys)?;
        self.ahead = keys.into_iter().zip(found).collect();
        Ok(())
    }

    /// The index of `origin` in `origins`, added when new.
    fn intern(&mut self, origin: &str) -> u32 {
        if let Some(i) = self.origin_ix.get(origin) {
            return *i;
        }
        let i = u32::try_from(self.origins.len()).unwrap_or(u32::MAX);
        self.origins.push(origin.to_owned());
        self.origin_ix.insert(origin.to_owned(), i);
        i
    }

    fn origin(&self, i: u32) -> &str {
        self.origins.get(i as usize).map_or("", String::as_str)
    }

    /// The numbers registered since the last save, taken: the caller has them written before
    /// any of their documents is delivered.
    pub(crate) fn take_unsaved(&mut self) -> Vec<(String, Value)> {
        std::mem::take(&mut self.unsaved)
    }

    /// Whether a final document with this id was read earlier in this run.
    pub(crate) fn seen(&self, id: &str) -> bool {
        self.ids.contains_key(id)
    }

    /// The problem of a second copy of `doc`'s id, read from `origin` after `first`; the
    /// cursor is kept before both.
    pub(crate) fn same_id(&mut self, doc: &Document, first: &str, origin: &str) -> Problem {
        self.conflicts.insert(first.to_owned());
        self.conflicts.insert(origin.to_owned());
        Problem::new(
            "duplicate-id",
            "id",
            format!(
                "document id `{}` is read twice from the source with different contents: first in {first}, again in {origin} (number {}); the later one is left out so that nothing is delivered twice, and both are read again on every run until one is removed",
                doc.id, doc.number
            ),
            "give each document its own id in the invoicing application, or remove the copy that is wrong (a delivered one that changed is then reported as changed after delivery)",
        )
    }

    /// Registers, once per job, the numbers of the documents a ledger made before numbers
    /// were remembered holds (a delivered one owns its number before any other); they are
    /// written with the first page. A dry run saves nothing: it looks each number up in the
    /// records when it meets it instead, so its cost follows the documents it reads.
    ///
    /// # Errors
    ///
    /// Ledger failure.
    pub(crate) fn backfill(
        &mut self,
        ledger: &dyn Ledger,
        job: &str,
        dry_run: bool,
    ) -> Result<(), LedgerError> {
        if ledger.value(&marker(job))?.is_some() {
            return Ok(());
        }
        if dry_run {
            self.from_records = true;
            return Ok(());
        }
        // The job's records one at a time (a job may hold hundreds of thousands): only each
        // number's owner is kept.
        // Keyed by (kind, number): the stored key is made from it when written.
        let mut owners: HashMap<String, (String, String, bool)> = HashMap::new();
        let filter = RecordFilter {
            job: Some(job.to_owned()),
            target: None,
            state: None,
        };
        ledger.visit(&filter, &mut |r| {
            if !r.number.is_empty() {
                let short = short_key(&r.kind, &r.number).into_string();
                claim_number(&mut owners, short, r);
            }
            Ok(())
        })?;
        // Written now, a flushed chunk at a time (one atomic batch of a whole job's numbers
        // took 1.4 GiB for 250 000); the marker, with the first page, says they are all there.
        let mut chunk = Vec::with_capacity(BACKFILL_CHUNK);
        for (short, (id, origin, _)) in owners {
            let (kind, number) = short.split_once('\0').unwrap_or_default();
            let key = number_key(job, kind, number);
            if ledger.value(&key)?.is_none() {
                chunk.push((key, json!({"id": id, "origin": origin})));
                if chunk.len() == BACKFILL_CHUNK {
                    ledger.put_values(&std::mem::take(&mut chunk))?;
                }
                let o = self.intern(&origin);
                self.numbers
                    .insert(short.into_boxed_str(), (id.into_boxed_str(), o));
            }
        }
        ledger.put_values(&chunk)?;
        self.unsaved.push((marker(job), json!(true)));
        Ok(())
    }

    /// Writes the numbers first seen since the last call (nothing in a dry run).
    ///
    /// # Errors
    ///
    /// Ledger failure.
    pub(crate) fn save(&mut self, ledger: &dyn Ledger, dry_run: bool) -> Result<(), LedgerError> {
        let unsaved = std::mem::take(&mut self.unsaved);
        if dry_run || unsaved.is_empty() {
            return Ok(());
        }
        ledger.put_values(&unsaved)
    }
}

/// The backfill's rule, one record at a time in key order: the first record with a number owns
/// it, unless a later one of another id was sent and it was not.
fn claim_number(owners: &mut HashMap<String, (String, String, bool)>, key: String, r: Record) {
    let sent = r.state.is_delivered() || r.state == State::Claimed;
    match owners.get(&key) {
        Some((id, _, was_sent)) if *was_sent || !sent || *id == r.key.doc_id => {}
        _ => {
            owners.insert(key, (r.key.doc_id, r.origin, sent));
        }
    }
}

/// The owner of `kind` `number` among `records` (a job's records answering to it), by the
/// backfill's rule.
fn owner(records: Vec<Record>, kind: &str, number: &str) -> Option<(String, String)> {
    let mut owners = HashMap::new();
    for r in records
        .into_iter()
        .filter(|r| r.number == number && r.kind == kind)
    {
        claim_number(&mut owners, String::new(), r);
    }
    owners.remove("").map(|(id, origin, _)| (id, origin))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::sled::SledLedger;
    use crate::mapping::tests::worked_invoice;

    #[test]
    fn a_number_delivered_before_numbers_were_remembered_still_holds_a_second_id() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = SledLedger::open(dir.path()).unwrap();
        let doc = worked_invoice();
        let key = |id: &str| RecordKey {
            job: "j".into(),
            target: "t".into(),
            doc_id: id.into(),
        };
        // An earlier run delivered the document, and held a second one with its number for
        // another reason; no number is in the value store.
        let now = chrono::Utc::now();
        let mut first = Record::new(key("second"), now);
        first.number.clone_from(&doc.number);
        first.kind = doc.kind.as_str().into();
        first.state = State::Held;
        let mut delivered = Record::new(key(&doc.id), now);
        delivered.number.clone_from(&doc.number);
        delivered.kind = doc.kind.as_str().into();
        delivered.state = State::Delivered;
        ledger.put_records(&[first, delivered]).unwrap();
        let targets = vec!["t".to_owned()];
        let mut again = doc.clone();
        again.id = "second".into();
        // A dry run (preview) reads no record up front and saves nothing, yet finds the same
        // owner, through the ledger's index by number.
        let mut dry = Duplicates::default();
        dry.backfill(&ledger, "j", true).unwrap();
        assert!(dry.numbers.is_empty() && dry.unsaved.is_empty());
        let found = dry
            .check(&ledger, "j", &targets, &again, "b.json", "h2")
            .unwrap();
        assert!(matches!(found, Some(Duplicate::SameNumber(_))));
        assert!(dry
            .check(&ledger, "j", &targets, &doc, "a.json", "h1")
            .unwrap()
            .is_none());
        dry.save(&ledger, true).unwrap();
        assert!(ledger.value(&marker("j")).unwrap().is_none());
        let mut d = Duplicates::default();
        d.backfill(&ledger, "j", false).unwrap();
        d.save(&ledger, false).unwrap();
        let found = Duplicates::default()
            .check(&ledger, "j", &targets, &again, "b.json", "h2")
            .unwrap();
        assert!(matches!(found, Some(Duplicate::SameNumber(_))));
        // The delivered document keeps its number; the backfill runs once.
        let mut d = Duplicates::default();
        assert!(d
            .check(&ledger, "j", &targets, &doc, "a.json", "h1")
            .unwrap()
            .is_none());
        d.backfill(&ledger, "j", false).unwrap();
        assert!(d.unsaved.is_empty());
    }
}
