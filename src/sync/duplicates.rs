//! Duplicates in the source: one document id read twice in a run with different contents, or one
//! invoice number under two ids (in this run or an earlier one). The later document is held, naming both files and
//! ids, so that nothing is booked twice. Numbers are remembered in the ledger's value store, one
//! entry per (job, kind, number), written once per page.

use std::collections::HashMap;

use serde_json::{json, Value};

use crate::ledger::{Ledger, LedgerError, RecordKey};
use crate::model::{DocStatus, Document};
use crate::problem::Problem;

/// What is wrong with a document that duplicates another.
pub(crate) enum Duplicate {
    /// Its id was already read in this run: it shares the first one's ledger record, so it is
    /// left out, and only reported.
    SameId(Problem),
    /// Its number belongs to another document: it is held in its own record.
    SameNumber(Problem),
    /// The same id with the same content, read again (a page boundary that moved): skipped.
    Reread,
}

/// The ids and numbers seen by one run of a job.
#[derive(Default)]
pub(crate) struct Duplicates {
    ids: HashMap<String, (String, String)>,
    numbers: HashMap<String, (String, String)>,
    unsaved: Vec<(String, Value)>,
    /// Set while held documents are re-checked from the ledger's copies: those are not a
    /// second reading of the source.
    pub(crate) refeeding: bool,
}

fn number_key(job: &str, doc: &Document) -> String {
    // JSON quoting keeps the number unambiguous whatever it holds.
    let number = serde_json::to_string(&doc.number).unwrap_or_default();
    format!("doc-number\0{job}\0{}\0{number}", doc.kind.as_str())
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
        match self.ids.get(&doc.id) {
            Some((_, first_hash)) if !self.refeeding && first_hash == hash => {
                return Ok(Some(Duplicate::Reread));
            }
            Some((first, _)) if !self.refeeding => {
                return Ok(Some(Duplicate::SameId(Problem::new(
                    "duplicate-id",
                    "id",
                    format!(
                        "document id `{}` is read twice from the source with different contents: first in {first}, again in {origin} (number {}); the later one is left out so that nothing is delivered twice",
                        doc.id, doc.number
                    ),
                    "give each document its own id in the invoicing application, or remove the duplicate",
                ))));
            }
            Some(_) => {}
            None => {
                self.ids
                    .insert(doc.id.clone(), (origin.to_owned(), hash.to_owned()));
            }
        }
        if doc.number.is_empty() {
            return Ok(None);
        }
        let key = number_key(job, doc);
        let owner = match self.numbers.get(&key) {
            Some(o) => Some(o.clone()),
            None => match ledger.value(&key)? {
                Some(v) => {
                    let id = v["id"].as_str().unwrap_or_default().to_owned();
                    // A first document forgotten from the ledger no longer owns its number.
                    let mut alive = false;
                    for t in targets {
                        let k = RecordKey {
                            job: job.to_owned(),
                            target: t.clone(),
                            doc_id: id.clone(),
                        };
                        if ledger.get(&k)?.is_some() {
                            alive = true;
                            break;
                        }
                    }
                    let origin = v["origin"].as_str().unwrap_or_default().to_owned();
                    (alive || id == doc.id).then_some((id, origin))
                }
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
            Some(o) => {
                self.numbers.insert(key, o);
                Ok(None)
            }
            None => {
                let value = json!({"id": doc.id, "origin": origin});
                self.numbers
                    .insert(key.clone(), (doc.id.clone(), origin.to_owned()));
                self.unsaved.push((key, value));
                Ok(None)
            }
        }
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
