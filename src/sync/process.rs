//! One page of a run sorted document by document: what goes to each target, what is held and
//! why, what was already delivered or changed since, with the run's tallies and problem lines.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use chrono::Utc;
use indicatif::ProgressBar;

use super::changes::{changes_after_delivery, source_hash, stored_snapshot};
use super::duplicates::{Duplicate, Duplicates};
use super::readahead::ReadAhead;
use super::share::{Deferred, Later, Share};
use super::{malformed, mapping_file, Mode, RunError};
use crate::checks::prepare;
use crate::config::Job;
use crate::format::{self, Layout};
use crate::ledger::{AuditEvent, ChangeNote, Ledger, Record, RecordKey, State};
use crate::mapping::{MappedDocument, Mapping, Side};
use crate::model::{DocStatus, Document};
use crate::problem::Problem;
use crate::report::{ProblemLine, RunReport};
use crate::source::{Item, Page};

fn new_record(key: RecordKey, existing: Option<Record>, now: chrono::DateTime<Utc>) -> Record {
    existing.unwrap_or_else(|| Record::new(key, now))
}

/// The record's copy of the document's identity; its customer is the counterparty of the
/// mapping's side (the supplier of a purchase).
pub(crate) fn fill_from_doc(r: &mut Record, doc: &Document, side: Side, origin: &str, hash: &str) {
    r.number.clone_from(&doc.number);
    r.kind = doc.kind.as_str().to_owned();
    let (id, name) = match side {
        Side::Sales => (doc.customer_id(), doc.buyer.name.as_str()),
        Side::Purchases => {
            let (id, name) = crate::mapping::counterparty(doc, side);
            (id.unwrap_or_default(), name)
        }
    };
    id.clone_into(&mut r.customer_id);
    name.clone_into(&mut r.customer_name);
    r.issue_date = Some(doc.issue_date);
    r.gross = Some(doc.totals.gross);
    r.origin = origin.to_owned();
    r.source_hash = hash.to_owned();
}

/// Whether `r` is held from this very source (same file, same bytes).
fn held_as_read(r: &Record, origin: &str, hash: &str) -> bool {
    r.state == State::Held && r.source_hash == hash && r.origin == origin
}

pub(super) fn problem_lines(target: &str, r: &Record, status: &str) -> Vec<ProblemLine> {
    r.problems
        .iter()
        .map(|p| ProblemLine {
            target: target.to_owned(),
            doc_id: crate::model::shown_id(&r.key.doc_id).to_owned(),
            number: r.number.clone(),
            customer: if r.customer_name.is_empty() {
                r.customer_id.clone()
            } else {
                r.customer_name.clone()
            },
            status: status.to_owned(),
            field: p.field.clone(),
            reason: p.message.clone(),
            fix: p.fix.clone(),
        })
        .collect()
}

/// A document through checks and mapping: its entry (shared by the job's targets), or why it
/// is held.
pub(super) type Prepared = Result<Arc<MappedDocument>, Vec<Problem>>;

/// A document's pure work, done ahead on any thread: its [`Prepared`] and its snapshot.
pub(super) struct Ready {
    prepared: Prepared,
    snapshot: BTreeMap<String, String>,
}

/// Per-target work of one page.
#[derive(Default)]
pub(super) struct Pending {
    pub(super) deliver: Vec<(Arc<MappedDocument>, Record)>,
    pub(super) others: Vec<Record>,
    /// The page's new number registrations, when the target's writer records them (before
    /// its claims); empty when the run saved them itself.
    pub(super) numbers: Vec<(String, serde_json::Value)>,
}

/// In-run tallies per target.
#[derive(Default, Clone)]
pub(super) struct Tally {
    pub(super) already: u64,
    pub(super) held: u64,
    pub(super) changed: u64,
    pub(super) nothing_to_book: u64,
    /// Second copies of an id left out (they have no record of their own).
    pub(super) copies: u64,
}

/// One job's run in progress: its targets and their layouts, tallies, problem lines and report.
pub(super) struct JobRun<'a> {
    pub(super) ledger: &'a dyn Ledger,
    pub(super) mapping: &'a Mapping,
    pub(super) job: &'a Job,
    pub(super) mode: &'a Mode,
    pub(super) run_id: String,
    pub(super) dry_run: bool,
    pub(super) targets: Arc<[String]>,
    pub(super) layouts: Vec<Option<Layout>>,
    pub(super) tallies: Vec<Tally>,
    pub(super) lines: Vec<ProblemLine>,
    pub(super) report: RunReport,
    /// Ids of the documents held in this run, so that the re-check of held records skips them.
    pub(super) held_now: BTreeSet<String>,
    pub(super) dups: Duplicates,
    /// Source files not read in this pull (unchanged): a document whose record came from one
    /// of them, read now from another file, is a second copy of its id.
    pub(super) unread: BTreeSet<String>,
    /// Unknown field paths already warned about in this run.
    pub(super) unknown_warned: BTreeSet<String>,
    /// Every target is a journal file: each one's writer records the page's new numbers
    /// before its claims, off this thread. Otherwise the run records them before delivering.
    pub(super) numbers_ride: bool,
    /// Ids of the unreadable documents met in this run: their held records may still be on
    /// their way to the ledger too (see [`JobRun::repeats`]).
    pub(super) malformed_ids: BTreeSet<String>,
    /// The documents of this run that may owe statuses 212 to a PA target (by id; the last
    /// copy read stands), when a target of the job sends them.
    pub(super) cashed: Option<BTreeMap<String, Document>>,
    /// The ids of the documents of this run that owe none (no payment, not due, not final):
    /// a 212 still waiting for one of them is owed no more.
    pub(super) cashed_none: BTreeSet<String>,
    /// Whether the job's accounting targets may report payments (so that unpaid documents
    /// that may owe 212 are kept for the 212 phase too).
    pub(super) cashed_learn: bool,
    /// The current page's records, read at once.
    pub(super) ahead: ReadAhead,
    /// This worker's share of the documents, when workers share the ledger.
    pub(super) share: Share,
    /// Documents of other shares read and admitted, to be planned later.
    pub(super) later: Later,
    /// The numbers of the documents in `later`: a credit note of one of them waits too.
    pub(super) later_numbers: std::collections::HashSet<String>,
}

impl JobRun<'_> {
    fn key(&self, target: &str, doc_id: &str) -> RecordKey {
        RecordKey {
            job: self.job.name.clone(),
            target: target.to_owned(),
            doc_id: doc_id.to_owned(),
        }
    }

    /// Whether `page` holds an id read earlier in this run: its records may still be on their
    /// way to the ledger (a journal file's writer), so the page waits for them before it reads.
    pub(super) fn repeats(&self, page: &Page) -> bool {
        let seen = |id: &str| self.dups.seen(id) || self.malformed_ids.contains(id);
        page.items.iter().any(|item| match item {
            Item::Bad { id, .. } => seen(id),
            Item::Doc { doc, .. } => seen(&doc.id),
        })
    }

    /// Sorts one page's items into per-target deliveries and records.
    pub(super) fn process(
        &mut self,
        page: Page,
        progress: Option<&ProgressBar>,
    ) -> Result<Vec<Pending>, RunError> {
        let now = Utc::now();
        let mut pending: Vec<Pending> = self.targets.iter().map(|_| Pending::default()).collect();
        if !self.dry_run {
            for file_id in &page.readable_files {
                for t in self.targets.iter() {
                    let key = self.key(t, file_id);
                    if self
                        .ledger
                        .get(&key)?
                        .is_some_and(|r| r.state == State::Held)
                    {
                        self.ledger.forget(
                            &key,
                            AuditEvent {
                                at: now,
                                action: "resolved".into(),
                                detail: format!("{key}: the file reads correctly now"),
                                who: crate::ledger::WHO_SYNC.into(),
                            },
                        )?;
                    }
                }
            }
        }
        for f in &page.unknown_fields {
            // Once per run and path: the first document that carried it is named.
            if self.unknown_warned.insert(f.path.clone()) {
                self.report
                    .warnings
                    .push(crate::source::unknown::warning(f));
            }
        }
        let later = self.deferred(&page.items);
        let docs: Vec<Option<&Document>> = page
            .items
            .iter()
            .zip(&later)
            .map(|(item, later)| match item {
                Item::Doc { doc, .. } if !later => Some(doc.as_ref()),
                _ => None,
            })
            .collect();
        self.read_ahead(&docs)?;
        let all = page.items.iter().filter_map(|item| match item {
            Item::Doc { doc, .. } => Some(doc.as_ref()),
            Item::Bad { .. } => None,
        });
        self.dups.read_ahead(self.ledger, &self.job.name, all)?;
        let mut ready = self.prepare_page(&docs)?;
        drop(docs);
        let each = page.items.into_iter().zip(later).zip(ready.iter_mut());
        for ((item, later), ready) in each {
            if let Some(p) = progress {
                p.inc(1);
            }
            match item {
                Item::Bad { id, number, error } => {
                    self.report.documents_read += 1;
                    self.malformed_ids.insert(id.clone());
                    let problem = Problem::new(
                        "malformed-document",
                        error.path.clone(),
                        error.to_string(),
                        "correct this field in the source document; it is read again on the next run",
                    );
                    let targets = Arc::clone(&self.targets);
                    for (ti, t) in targets.iter().enumerate() {
                        if !self.dry_run {
                            // The record under the escaped id may go: neither copy stands.
                            self.ahead.changed(&self.key(t, &id));
                            self.ahead
                                .changed(&self.key(t, crate::model::shown_id(&id)));
                            malformed::rekey(self.ledger, &self.key(t, &id), &error.origin, now)?;
                        }
                        let existing = self.ledger.get(&self.key(t, &id))?;
                        if existing
                            .as_ref()
                            .is_some_and(|r| r.state.is_delivered() || r.state == State::Claimed)
                        {
                            tracing::warn!(doc = %id, target = %t, "Document already delivered is now unreadable in the source.");
                            continue;
                        }
                        let mut r = new_record(self.key(t, &id), existing, now);
                        let number = number
                            .clone()
                            .unwrap_or_else(|| crate::model::shown_id(&id).to_owned());
                        let unchanged = r.state == State::Held
                            && r.number == number
                            && r.origin == error.origin
                            && r.problems.len() == 1
                            && r.problems[0] == problem;
                        r.number = number;
                        r.origin.clone_from(&error.origin);
                        self.tallies[ti].held += 1;
                        self.held_now.insert(id.clone());
                        if !unchanged {
                            r.hold(vec![problem.clone()], None, &self.run_id, now);
                        }
                        self.lines.extend(problem_lines(t, &r, "held"));
                        if !unchanged {
                            pending[ti].others.push(r);
                        }
                    }
                }
                Item::Doc { doc, origin, hash } => {
                    let hash = hash.unwrap_or_else(|| source_hash(&doc));
                    if !later {
                        self.process_doc(&doc, &origin, &hash, ready.take(), &mut pending, now)?;
                    } else if let Some(same_number) = self.admit(&doc, &origin, &hash, now)? {
                        self.later_numbers.insert(doc.number.clone());
                        self.later.push_back(Deferred {
                            doc,
                            origin,
                            hash,
                            same_number,
                        });
                    }
                }
            }
        }
        // Flushed before this page's records: a number is never delivered unregistered.
        if self.numbers_ride && !self.dry_run {
            let numbers = self.dups.take_unsaved();
            if !numbers.is_empty() {
                for p in &mut pending {
                    p.numbers.clone_from(&numbers);
                }
            }
        } else {
            self.dups.save(self.ledger, self.dry_run)?;
        }
        Ok(pending)
    }

    /// Which of `items` are planned later: documents of another worker's share, and credit
    /// notes of an invoice planned later (this page's included), as the targets send a credit
    /// note after its invoice. Decided once per item, before the page is read ahead.
    fn deferred(&self, items: &[Item]) -> Vec<bool> {
        if !matches!(self.mode, Mode::Sync) || self.dups.refeeding {
            return vec![false; items.len()];
        }
        let mut page: std::collections::HashSet<&str> = std::collections::HashSet::new();
        items
            .iter()
            .map(|item| {
                let Item::Doc { doc, .. } = item else {
                    return false;
                };
                let later = !self.share.mine(&doc.id)
                    || doc
                        .preceding_invoice
                        .as_deref()
                        .is_some_and(|n| self.later_numbers.contains(n) || page.contains(n));
                if later {
                    page.insert(&doc.number);
                }
                later
            })
            .collect()
    }

    /// Reads at once the records, on every target, of the documents about to be planned.
    fn read_ahead(&mut self, docs: &[Option<&Document>]) -> Result<(), RunError> {
        let keys = docs
            .iter()
            .flatten()
            .flat_map(|doc| self.targets.iter().map(|t| self.key(t, &doc.id)))
            .collect();
        self.ahead.load(self.ledger, keys)?;
        Ok(())
    }

    /// Plans the oldest `max` documents of other shares (see [`super::share`]): by now their
    /// owners have delivered most of them, found delivered here at the cost of a read.
    pub(super) fn plan_later(&mut self, max: usize) -> Result<Vec<Pending>, RunError> {
        let now = Utc::now();
        let n = self.later.len().min(max);
        let batch: Vec<Deferred> = self.later.drain(..n).collect();
        for d in &batch {
            self.later_numbers.remove(&d.doc.number);
        }
        let mut pending: Vec<Pending> = self.targets.iter().map(|_| Pending::default()).collect();
        let docs: Vec<Option<&Document>> = batch.iter().map(|d| Some(d.doc.as_ref())).collect();
        self.read_ahead(&docs)?;
        let mut ready = self.prepare_page(&docs)?;
        for (d, ready) in batch.iter().zip(ready.iter_mut()) {
            let same_number = d.same_number.clone();
            self.plan(
                &d.doc,
                &d.origin,
                &d.hash,
                same_number,
                ready.take(),
                &mut pending,
                now,
            )?;
        }
        Ok(pending)
    }

    /// The pure work of the page's documents that are likely to be delivered (final, not
    /// delivered yet to its first target) — mapping, checks and the snapshot kept in the
    /// record — done on every core before the page is sorted in order on this thread.
    fn prepare_page(&self, docs: &[Option<&Document>]) -> Result<Vec<Option<Ready>>, RunError> {
        let mut wanted = Vec::with_capacity(docs.len());
        for doc in docs {
            let doc = match doc {
                Some(doc)
                    if doc.status == DocStatus::Final
                        && match self.mode {
                            Mode::Export(sel) => sel.selects(doc),
                            Mode::Sync => true,
                        } =>
                {
                    *doc
                }
                _ => {
                    wanted.push(None);
                    continue;
                }
            };
            let fresh = match self.targets.first() {
                Some(t) => !self
                    .ahead
                    .get(self.ledger, &self.key(t, &doc.id))?
                    .is_some_and(|r| r.state.is_delivered()),
                None => false,
            };
            wanted.push(fresh.then_some(doc));
        }
        let mapping = self.mapping;
        Ok(crate::par::map(&wanted, |_, doc| {
            doc.map(|doc| Ready {
                prepared: prepare(doc, mapping).map(Arc::new),
                snapshot: stored_snapshot(doc),
            })
        }))
    }

    fn process_doc(
        &mut self,
        doc: &Document,
        origin: &str,
        hash: &str,
        ready: Option<Ready>,
        pending: &mut [Pending],
        now: chrono::DateTime<Utc>,
    ) -> Result<(), RunError> {
        match self.admit(doc, origin, hash, now)? {
            Some(same_number) => self.plan(doc, origin, hash, same_number, ready, pending, now),
            None => Ok(()),
        }
    }

    /// Counts a document read and finds, in read order, whether it duplicates another;
    /// `None` when it is left out (not selected, a second copy), else the number's other owner
    /// when it has one.
    fn admit(
        &mut self,
        doc: &Document,
        origin: &str,
        hash: &str,
        now: chrono::DateTime<Utc>,
    ) -> Result<Option<Option<Problem>>, RunError> {
        if let Mode::Export(sel) = self.mode {
            if !sel.selects(doc) {
                return Ok(None);
            }
        }
        self.report.documents_read += 1;
        let targets = Arc::clone(&self.targets);
        let dup = self
            .dups
            .check(self.ledger, &self.job.name, &targets, doc, origin, hash)?;
        let same_number = match dup {
            Some(Duplicate::SameId(problem)) => {
                self.report_same_id(doc, origin, hash, &problem, now);
                return Ok(None);
            }
            Some(Duplicate::SameNumber(problem)) => Some(problem),
            Some(Duplicate::Reread) => {
                tracing::warn!(doc = %doc.number, origin = %origin, "Document read twice with the same content; taken once.");
                return Ok(None);
            }
            None => None,
        };
        if let Some(first) = self.copy_elsewhere(doc, origin)? {
            let problem = self.dups.same_id(doc, &first, origin);
            self.report_same_id(doc, origin, hash, &problem, now);
            return Ok(None);
        }
        if let Some(c) = self.cashed.as_mut() {
            if super::cashed::candidate(doc, self.cashed_learn) {
                c.insert(doc.id.clone(), doc.clone());
                self.cashed_none.remove(&doc.id);
            } else {
                c.remove(&doc.id);
                self.cashed_none.insert(doc.id.clone());
            }
        }
        Ok(Some(same_number))
    }

    /// Sorts an admitted document on each target: delivered already, changed since, held, or
    /// to deliver.
    #[allow(clippy::too_many_arguments)]
    fn plan(
        &mut self,
        doc: &Document,
        origin: &str,
        hash: &str,
        same_number: Option<Problem>,
        ready: Option<Ready>,
        pending: &mut [Pending],
        now: chrono::DateTime<Utc>,
    ) -> Result<(), RunError> {
        let export = match self.mode {
            Mode::Export(sel) => Some(sel),
            Mode::Sync => None,
        };
        let targets = Arc::clone(&self.targets);
        let (mut prepared, mut snapshot) = match ready {
            Some(r) => (Some(r.prepared), Some(r.snapshot)),
            None => (None, None),
        };
        let mut skipped_counted = false;
        for (ti, t) in targets.iter().enumerate() {
            // Chorus Pro files are for public buyers only: other documents never reach them.
            if self.layouts[ti]
                .as_ref()
                .is_some_and(|l| !format::in_scope(l, doc))
            {
                continue;
            }
            let key = self.key(t, &doc.id);
            let existing = self.ahead.get(self.ledger, &key)?;
            let state = existing.as_ref().map(|r| r.state);
            if let Some(st) = state.filter(|s| s.is_delivered()) {
                let rec = existing.unwrap_or_else(|| new_record(key.clone(), None, now));
                if let Some(sel) = export {
                    if sel.include_exported && doc.status == DocStatus::Final {
                        self.deliver_or_hold(
                            ti,
                            t,
                            doc,
                            origin,
                            hash,
                            rec,
                            Some(st),
                            (&mut prepared, &mut snapshot),
                            pending,
                            now,
                        );
                    } else {
                        self.tallies[ti].already += 1;
                    }
                    continue;
                }
                if rec.source_hash != hash {
                    self.note_change(ti, t, doc, rec, hash, pending, now);
                } else {
                    self.tallies[ti].already += 1;
                }
                continue;
            }
            if doc.status != DocStatus::Final {
                // A held document that went back to draft (or was cancelled) must not be
                // re-checked from its old final copy: its record goes.
                if matches!(state, Some(State::Held | State::Released)) && !self.dry_run {
                    self.ahead.changed(&key);
                    let forgot = self.ledger.forget(
                        &key,
                        AuditEvent {
                            at: now,
                            action: "no-longer-final".into(),
                            detail: format!("{key}: now {} in the source", doc.status.as_str()),
                            who: crate::ledger::WHO_SYNC.into(),
                        },
                    );
                    match forgot {
                        // Read with the page: another worker may have removed it since.
                        Ok(_) | Err(crate::ledger::LedgerError::NotFound(_)) => {}
                        Err(e) => return Err(e.into()),
                    }
                }
                if !skipped_counted {
                    *self
                        .report
                        .skipped
                        .entry(doc.status.as_str().to_owned())
                        .or_insert(0) += 1;
                    skipped_counted = true;
                }
                continue;
            }
            match state {
                Some(State::Claimed) => {
                    tracing::warn!(doc = %doc.number, target = %t, "Document is claimed by a delivery in progress; left alone.");
                }
                Some(State::Failed) => {
                    tracing::info!(doc = %doc.number, target = %t, "Document failed earlier; `facto ledger retry` sends it again.");
                }
                _ if same_number.is_some() => {
                    let problems: Vec<Problem> = same_number.iter().cloned().collect();
                    let rec = new_record(key, existing, now);
                    let as_read = held_as_read(&rec, origin, hash);
                    self.hold(
                        ti, t, doc, origin, hash, rec, as_read, problems, pending, now,
                    );
                }
                _ => {
                    let rec = new_record(key, existing, now);
                    self.deliver_or_hold(
                        ti,
                        t,
                        doc,
                        origin,
                        hash,
                        rec,
                        None,
                        (&mut prepared, &mut snapshot),
                        pending,
                        now,
                    );
                }
            }
        }
        Ok(())
    }

    /// The unchanged source file (not read in this pull) that the document's record came
    /// from, when the document is now read from another file: the id is in both.
    fn copy_elsewhere(&self, doc: &Document, origin: &str) -> Result<Option<String>, RunError> {
        if self.dups.refeeding || self.unread.is_empty() || doc.status != DocStatus::Final {
            return Ok(None);
        }
        for t in self.targets.iter() {
            if let Some(r) = self.ahead.get(self.ledger, &self.key(t, &doc.id))? {
                let elsewhere = r.origin != origin && self.unread.contains(&r.origin);
                return Ok(elsewhere.then_some(r.origin));
            }
        }
        Ok(None)
    }

    /// A second document with an id already read: reported on every target it would reach,
    /// never delivered (its record is the first one's).
    fn report_same_id(
        &mut self,
        doc: &Document,
        origin: &str,
        hash: &str,
        problem: &Problem,
        now: chrono::DateTime<Utc>,
    ) {
        let targets = Arc::clone(&self.targets);
        for (ti, t) in targets.iter().enumerate() {
            if self.layouts[ti]
                .as_ref()
                .is_some_and(|l| !format::in_scope(l, doc))
            {
                continue;
            }
            let mut r = Record::new(self.key(t, &doc.id), now);
            fill_from_doc(&mut r, doc, self.mapping.journal.side, origin, hash);
            r.problems = vec![problem.clone()];
            self.tallies[ti].held += 1;
            self.tallies[ti].copies += 1;
            self.lines.extend(problem_lines(t, &r, "held"));
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn deliver_or_hold(
        &mut self,
        ti: usize,
        target: &str,
        doc: &Document,
        origin: &str,
        hash: &str,
        mut rec: Record,
        restore: Option<State>,
        (prepared, snapshot): (&mut Option<Prepared>, &mut Option<BTreeMap<String, String>>),
        pending: &mut [Pending],
        now: chrono::DateTime<Utc>,
    ) {
        let result = prepared.get_or_insert_with(|| prepare(doc, self.mapping).map(Arc::new));
        let as_read = held_as_read(&rec, origin, hash);
        fill_from_doc(&mut rec, doc, self.mapping.journal.side, origin, hash);
        // What this target's layout cannot hold (an account wider than its field) holds the
        // document back for this target only.
        let layout_problems = match (&*result, &self.layouts[ti]) {
            (Ok(md), Some(layout)) => format::check(layout, md, &mapping_file(self.mapping)),
            _ => Vec::new(),
        };
        let result = match result {
            Ok(_) if !layout_problems.is_empty() => &Err(layout_problems),
            r => &*r,
        };
        match result {
            Ok(md)
                if restore.is_none() && self.layouts[ti].is_some_and(|l| l.nothing_to_book(md)) =>
            {
                // No line to write: the document is in no file, so it is not counted delivered.
                self.tallies[ti].nothing_to_book += 1;
                self.report.warnings.push(format!(
                    "{} ({}): nothing to book for {target}: every amount is zero, no line written",
                    doc.number, doc.buyer.name
                ));
                if rec.state == State::Held {
                    rec.problems.clear();
                    rec.held_document = None;
                    rec.transition(
                        State::Released,
                        format!("run {}: nothing to book (every amount zero)", self.run_id),
                        now,
                    );
                    pending[ti].others.push(rec);
                }
            }
            Ok(md) => {
                rec.problems.clear();
                rec.held_document = None;
                rec.mapping_hash = Some(self.mapping.hash.clone());
                rec.snapshot = snapshot.take().unwrap_or_else(|| stored_snapshot(doc));
                rec.changed_after_delivery = None;
                rec.restore_to = restore.map(|st| (st, rec.batch_id));
                pending[ti].deliver.push((Arc::clone(md), rec));
            }
            Err(problems) => {
                let problems = problems.clone();
                self.hold(
                    ti, target, doc, origin, hash, rec, as_read, problems, pending, now,
                );
            }
        }
    }

    /// Holds `doc` for `target` with `problems`. Held already, from the same source
    /// (`held_as_read`) and for the same reasons: the stored record stands (rewriting it each
    /// run grew the ledger by its size each time).
    #[allow(clippy::too_many_arguments)]
    fn hold(
        &mut self,
        ti: usize,
        target: &str,
        doc: &Document,
        origin: &str,
        hash: &str,
        mut rec: Record,
        held_as_read: bool,
        problems: Vec<Problem>,
        pending: &mut [Pending],
        now: chrono::DateTime<Utc>,
    ) {
        self.tallies[ti].held += 1;
        self.held_now.insert(doc.id.clone());
        if held_as_read && rec.problems == problems {
            self.lines.extend(problem_lines(target, &rec, "held"));
            return;
        }
        fill_from_doc(&mut rec, doc, self.mapping.journal.side, origin, hash);
        rec.hold(problems, serde_json::to_value(doc).ok(), &self.run_id, now);
        self.lines.extend(problem_lines(target, &rec, "held"));
        pending[ti].others.push(rec);
    }

    #[allow(clippy::too_many_arguments)]
    fn note_change(
        &mut self,
        ti: usize,
        target: &str,
        doc: &Document,
        mut rec: Record,
        hash: &str,
        pending: &mut [Pending],
        now: chrono::DateTime<Utc>,
    ) {
        if rec
            .changed_after_delivery
            .as_ref()
            .is_some_and(|c| c.source_hash == hash)
        {
            self.tallies[ti].already += 1;
            return;
        }
        let changes = changes_after_delivery(&rec, doc, hash);
        if changes.is_empty() {
            // Same content, other bytes (the source re-wrote the file): nothing to report.
            self.tallies[ti].already += 1;
            return;
        }
        let summary: Vec<String> = changes
            .iter()
            .take(6)
            .map(|c| {
                format!(
                    "{}: {} → {}",
                    crate::problem::field_label(&c.field),
                    c.before,
                    c.after
                )
            })
            .collect();
        self.tallies[ti].changed += 1;
        self.lines.push(ProblemLine {
            target: target.to_owned(),
            doc_id: doc.id.clone(),
            number: doc.number.clone(),
            customer: doc.buyer.name.clone(),
            status: "changed-after-delivery".into(),
            field: changes.first().map(|c| c.field.clone()).unwrap_or_else(|| "(document)".into()),
            reason: format!("changed in the source after delivery, not sent again: {}", summary.join("; ")),
            fix: "a delivered document is corrected with a credit note and a new invoice in the invoicing application".into(),
        });
        rec.changed_after_delivery = Some(ChangeNote {
            detected_at: now,
            source_hash: hash.to_owned(),
            changes,
        });
        rec.updated_at = now;
        pending[ti].others.push(rec);
    }
}
