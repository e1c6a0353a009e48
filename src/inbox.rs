//! The inbox of the documents pushed to a `push` source (`source::push`): each waits in the
//! ledger's `inbox` entry space, once for each job reading the source, keyed by (job, document
//! id, content hash), until a pass of that job reads it. It is written (and flushed) before the
//! ingestion endpoint answers, so an accepted document is never lost, and a shared PostgreSQL
//! ledger gives every worker the same inbox. A newer version of a document replaces the
//! waiting one in the same write. The pull ([`PushSource`]) hands every waiting document on,
//! page by page; its cursor lists what it read. The next pull removes those of them that are
//! settled, every record delivered (a pass saves its cursor only once every document it read is
//! recorded in the ledger); a document held, failed, claimed or released stays and is read again,
//! as a release or a retry needs it. Entries are removed by their hash: a version pushed
//! meanwhile stays. The whole inbox of a job is read at each pull (pages are cut from it in
//! memory): it holds only what is not yet delivered.

use std::collections::{BTreeMap, BTreeSet};

use chrono::Utc;
use serde::{Deserialize, Serialize};

use crate::ledger::{Ledger, SharedLedger};
use crate::source::{item_from_value, Item, Page, Paged, SourceError};

/// The ledger entry space of the waiting documents: parts (job, document id, hash).
pub const SPACE: &str = "inbox";

/// One waiting document, as the inbox keeps it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Waiting {
    /// When the endpoint accepted it.
    pub received_at: chrono::DateTime<Utc>,
    /// The document as pushed.
    pub document: serde_json::Value,
}

/// The versions of document `id` waiting for job `job`: their hashes.
///
/// # Errors
///
/// Storage failure.
pub fn waiting(
    ledger: &dyn Ledger,
    job: &str,
    id: &str,
) -> Result<Vec<String>, crate::ledger::LedgerError> {
    Ok(ledger
        .entries(SPACE, &[job, id])?
        .into_iter()
        .filter_map(|(rest, _)| rest.into_iter().next())
        .collect())
}

/// The versions of document `id` waiting for job `job`, with their hashes.
///
/// # Errors
///
/// Storage failure.
pub fn waiting_versions(
    ledger: &dyn Ledger,
    job: &str,
    id: &str,
) -> Result<Vec<(String, Waiting)>, crate::ledger::LedgerError> {
    Ok(ledger
        .entries(SPACE, &[job, id])?
        .into_iter()
        .filter_map(|(rest, v)| Some((rest.into_iter().next()?, serde_json::from_value(v).ok()?)))
        .collect())
}

/// Puts documents in the inbox of each of `jobs` (each: id, hash, the document as pushed), replacing
/// the versions of the same ids waiting there; one write, flushed before it returns.
///
/// # Errors
///
/// Storage failure: nothing is written.
pub fn put(
    ledger: &dyn Ledger,
    jobs: &[&str],
    docs: &[(String, String, serde_json::Value)],
) -> Result<(), crate::ledger::LedgerError> {
    let mut writes = Vec::with_capacity(docs.len());
    let mut new: BTreeSet<(&str, &str)> = BTreeSet::new();
    for (id, hash, _) in docs {
        new.insert((id, hash));
    }
    let now = Utc::now();
    for (id, hash, doc) in docs {
        for job in jobs {
            for old in waiting(ledger, job, id)? {
                if !new.contains(&(id.as_str(), old.as_str())) {
                    writes.push((vec![(*job).to_owned(), id.clone(), old], None));
                }
            }
            let w = Waiting {
                received_at: now,
                document: doc.clone(),
            };
            let value =
                serde_json::to_value(&w).map_err(|e| crate::ledger::LedgerError::Corrupt {
                    key: format!("{SPACE}/{id}"),
                    detail: e.to_string(),
                })?;
            writes.push((
                vec![(*job).to_owned(), id.clone(), hash.clone()],
                Some(value),
            ));
        }
    }
    ledger.put_entries(SPACE, &writes)
}

/// What a pull read: (document id, hash) per origin.
#[derive(Debug, Default, Serialize, Deserialize)]
struct PushCursor {
    /// Entries read by the last complete pass, removed by the next pull.
    #[serde(default)]
    read: Vec<(String, String)>,
}

/// One pull of a push source.
pub struct PushSource {
    pages: std::vec::IntoIter<Page>,
    /// Origin of each document read, to its (id, hash).
    origins: BTreeMap<String, (String, String)>,
}

/// The origin a pushed document carries in records and reports.
fn origin(job: &str, hash: &str) -> String {
    format!("push:{job}:{}", hash.get(..16).unwrap_or(hash))
}

impl PushSource {
    /// A pull that reads nothing.
    pub fn empty() -> Self {
        PushSource {
            pages: Vec::new().into_iter(),
            origins: BTreeMap::new(),
        }
    }

    /// Opens a pull of job `job`'s inbox: first removes what the job's last complete pass
    /// read (`cursor`), then takes every document still waiting.
    ///
    /// # Errors
    ///
    /// The ledger cannot be read or written.
    pub fn open(
        ledger: SharedLedger,
        job: &str,
        page_size: usize,
        cursor: Option<&serde_json::Value>,
    ) -> Result<Self, SourceError> {
        let led = |e: crate::ledger::LedgerError| {
            SourceError::Config(format!("the inbox of `{job}`: {e}"))
        };
        let done: PushCursor = cursor
            .and_then(|c| serde_json::from_value(c.clone()).ok())
            .unwrap_or_default();
        // What the last complete pass read goes once it is settled: every record of it
        // delivered (or none: no target takes it). A document held, failed, claimed or released
        // stays, for it may be needed again (a retry, a release after the lookup grace period).
        let mut gone = Vec::new();
        for (id, hash) in done.read {
            let records = ledger.find_in_job(job, &id).map_err(led)?;
            if records
                .iter()
                .filter(|r| r.key.doc_id == id)
                .all(|r| r.state.is_delivered())
            {
                gone.push((vec![job.to_owned(), id, hash], None));
            }
        }
        if !gone.is_empty() {
            ledger.put_entries(SPACE, &gone).map_err(led)?;
        }
        let mut waiting: Vec<(chrono::DateTime<Utc>, String, String, serde_json::Value)> = ledger
            .entries(SPACE, &[job])
            .map_err(led)?
            .into_iter()
            .filter_map(|(parts, v)| {
                let [id, hash]: [String; 2] = parts.try_into().ok()?;
                let w: Waiting = serde_json::from_value(v).ok()?;
                Some((w.received_at, id, hash, w.document))
            })
            .collect();
        // In the order they came.
        waiting.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
        let mut pages = Vec::new();
        let mut page = Page::default();
        let mut origins = BTreeMap::new();
        for (_, id, hash, doc) in waiting {
            let o = origin(job, &hash);
            item_from_value(doc, &o, 0, &mut page);
            if let Some(Item::Doc { hash: h, .. }) = page.items.last_mut() {
                *h = Some(hash.clone());
            }
            origins.insert(o, (id, hash));
            if page.items.len() >= page_size.max(1) {
                pages.push(std::mem::take(&mut page));
            }
        }
        if !page.items.is_empty() {
            pages.push(page);
        }
        Ok(PushSource {
            pages: pages.into_iter(),
            origins,
        })
    }
}

impl Paged for PushSource {
    fn next_page(
        &mut self,
    ) -> std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<Option<Page>, SourceError>> + Send + '_>,
    > {
        let next = self.pages.next();
        Box::pin(async move { Ok(next) })
    }

    fn cursor_before(&self, origins: &BTreeSet<String>) -> serde_json::Value {
        let read = self
            .origins
            .iter()
            .filter(|(o, _)| !origins.contains(*o))
            .map(|(_, v)| v.clone())
            .collect();
        serde_json::to_value(PushCursor { read }).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::MemLedger;

    fn doc(id: &str, note: &str) -> serde_json::Value {
        serde_json::json!({"id": id, "number": id, "notes": note})
    }

    fn ids(src: &mut PushSource) -> Vec<String> {
        let mut out = Vec::new();
        for p in src.pages.by_ref() {
            for i in p.items {
                match i {
                    Item::Doc { doc, .. } => out.push(doc.id.clone()),
                    Item::Bad { id, .. } => out.push(id),
                }
            }
        }
        out
    }

    #[test]
    fn a_newer_version_replaces_the_waiting_one_and_a_read_entry_goes_at_the_next_pull() {
        let l: SharedLedger = std::sync::Arc::new(MemLedger::in_memory().unwrap());
        put(&*l, &["app"], &[("A".into(), "h1".into(), doc("A", "one"))]).unwrap();
        put(&*l, &["app"], &[("B".into(), "h2".into(), doc("B", "two"))]).unwrap();
        put(
            &*l,
            &["app"],
            &[("A".into(), "h3".into(), doc("A", "three"))],
        )
        .unwrap();
        assert_eq!(waiting(&*l, "app", "A").unwrap(), vec!["h3".to_owned()]);
        let mut s = PushSource::open(l.clone(), "app", 1, None).unwrap();
        let cursor = s.cursor_before(&BTreeSet::new());
        assert_eq!(ids(&mut s), vec!["B".to_owned(), "A".to_owned()]);
        // Pushed while the pass ran: stays for the next one.
        put(
            &*l,
            &["app"],
            &[("A".into(), "h4".into(), doc("A", "four"))],
        )
        .unwrap();
        let mut s = PushSource::open(l.clone(), "app", 10, Some(&cursor)).unwrap();
        assert_eq!(ids(&mut s), vec!["A".to_owned()]);
        assert_eq!(waiting(&*l, "app", "B").unwrap(), Vec::<String>::new());
        assert_eq!(waiting(&*l, "app", "A").unwrap(), vec!["h4".to_owned()]);
    }

    #[test]
    fn a_document_kept_for_the_next_pull_is_not_removed() {
        let l: SharedLedger = std::sync::Arc::new(MemLedger::in_memory().unwrap());
        put(&*l, &["app"], &[("A".into(), "h1".into(), doc("A", "one"))]).unwrap();
        let s = PushSource::open(l.clone(), "app", 10, None).unwrap();
        let keep: BTreeSet<String> = s.origins.keys().cloned().collect();
        let cursor = s.cursor_before(&keep);
        let mut s = PushSource::open(l.clone(), "app", 10, Some(&cursor)).unwrap();
        assert_eq!(ids(&mut s), vec!["A".to_owned()]);
    }

    #[test]
    fn a_document_not_yet_delivered_stays_for_a_retry_or_a_release() {
        use crate::ledger::{Record, RecordKey, State};
        let l: SharedLedger = std::sync::Arc::new(MemLedger::in_memory().unwrap());
        put(&*l, &["app"], &[("A".into(), "h1".into(), doc("A", "one"))]).unwrap();
        put(&*l, &["app"], &[("B".into(), "h2".into(), doc("B", "two"))]).unwrap();
        let rec = |id: &str, target: &str, state| Record {
            state,
            source_hash: "h".into(),
            ..Record::new(
                RecordKey {
                    job: "app".into(),
                    target: target.into(),
                    doc_id: id.into(),
                },
                Utc::now(),
            )
        };
        // A delivered to one target, released at the other (its answer was lost); B delivered.
        l.put_records(&[
            rec("A", "t1", State::Delivered),
            rec("A", "t2", State::Released),
            rec("B", "t1", State::Delivered),
            rec("B", "t2", State::Paid),
        ])
        .unwrap();
        let s = PushSource::open(l.clone(), "app", 10, None).unwrap();
        let cursor = s.cursor_before(&BTreeSet::new());
        let mut s = PushSource::open(l.clone(), "app", 10, Some(&cursor)).unwrap();
        assert_eq!(ids(&mut s), vec!["A".to_owned()]);
        assert_eq!(waiting(&*l, "app", "B").unwrap(), Vec::<String>::new());
    }
}
