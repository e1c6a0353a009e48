//! One pass of a job: pull → map → check → claim → deliver → record, page by page, with every
//! document isolated (a bad one is held with its reason; the rest goes on). `sync` reads what is
//! new since the cursor; `export` reads a period and writes one batch for one target.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;

use chrono::{NaiveDate, Utc};
use indicatif::ProgressBar;
use sha2::{Digest, Sha256};

use crate::checks::prepare;
use crate::config::{Config, Connector, Job};
use crate::format::{self, Layout};
use crate::ledger::{
    AuditEvent, ChangeNote, Cursor, FieldChange, Ledger, LedgerError, Record, RecordFilter,
    RecordKey, State,
};
use crate::mapping::{MappedDocument, Mapping};
use crate::model::{DocStatus, Document};
use crate::problem::Problem;
use crate::report::{Amounts, BatchLine, ProblemLine, RunReport, TargetReport};
use crate::source::{Item, Page, Source};
use crate::target::chorus::ChorusRun;
use crate::target::journal_file::{self, JournalRun};
use crate::target::pennylane::PennylaneRun;
use crate::target::xero::XeroRun;
use crate::target::{TargetError, TargetRun};

pub(crate) mod duplicates;
mod malformed;
use duplicates::{Duplicate, Duplicates};

/// How the run behaves.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Do everything but deliver and record.
    pub dry_run: bool,
    /// Today's date (the validation date of journal entries).
    pub today: NaiveDate,
    /// Progress bar, when on a terminal.
    pub progress: Option<ProgressBar>,
}

/// What `export` selects.
#[derive(Debug, Clone)]
pub struct ExportSelection {
    /// Target connector (a journal-file target of the job).
    pub target: String,
    /// First issue date.
    pub from: NaiveDate,
    /// Last issue date.
    pub to: NaiveDate,
    /// Journal code to write instead of the mapping's.
    pub journal: Option<String>,
    /// Folder to write to instead of the connector's.
    pub out_dir: Option<PathBuf>,
    /// Export documents already in an active batch again.
    pub include_exported: bool,
    /// Only these document numbers (empty: all).
    pub only: Vec<String>,
    /// Not these document numbers.
    pub exclude: Vec<String>,
    /// Validation date of the entries (FEC `ValidDate`) instead of the job's or today.
    pub validation_date: Option<NaiveDate>,
}

impl ExportSelection {
    fn selects(&self, doc: &Document) -> bool {
        doc.issue_date >= self.from
            && doc.issue_date <= self.to
            && (self.only.is_empty() || self.only.contains(&doc.number))
            && !self.exclude.contains(&doc.number)
    }
}

/// Sync (incremental) or export (a period, one target).
#[derive(Debug, Clone)]
pub enum Mode {
    /// `facto sync`.
    Sync,
    /// `facto export`.
    Export(ExportSelection),
}

/// Errors that stop a run before it can report.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The configuration does not allow this run.
    #[error("{0}")]
    Config(String),
    /// The ledger failed.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    /// A target failed in a way that stops the run.
    #[error(transparent)]
    Target(#[from] TargetError),
}

/// A new run id, sortable by time.
pub fn new_run_id() -> String {
    Utc::now().format("R%Y%m%dT%H%M%S%3fZ").to_string()
}

/// Feeds serialized bytes straight into the hash (no intermediate buffer).
struct HashWriter(Sha256);

impl std::io::Write for HashWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// SHA-256 of the canonical JSON of a document.
pub fn source_hash(doc: &Document) -> String {
    let mut w = HashWriter(Sha256::new());
    // Serializing plain data into a hasher cannot fail.
    let _ = serde_json::to_writer(&mut w, doc);
    hex::encode(w.0.finalize())
}

/// Key fields of a document, to explain a change made after delivery.
pub fn snapshot(doc: &Document) -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    let t = &doc.totals;
    for (k, v) in [
        ("status", doc.status.as_str().to_owned()),
        ("number", doc.number.clone()),
        ("kind", doc.kind.as_str().to_owned()),
        ("issue_date", doc.issue_date.to_string()),
        (
            "due_date",
            doc.due_date.map(|d| d.to_string()).unwrap_or_default(),
        ),
        ("currency", doc.currency.clone()),
        ("buyer.customer_id", doc.customer_id().to_owned()),
        ("buyer.name", doc.buyer.name.clone()),
        ("totals.net", t.net.to_string()),
        ("totals.tax", t.tax.to_string()),
        ("totals.gross", t.gross.to_string()),
        ("totals.paid", t.paid.to_string()),
        ("totals.due", t.due.to_string()),
        ("lines", doc.lines.len().to_string()),
    ] {
        m.insert(k.to_owned(), v);
    }
    for (i, l) in doc.lines.iter().enumerate() {
        m.insert(
            format!("lines[{i}]"),
            format!(
                "{} | {} x {} = {} {}",
                l.description, l.quantity, l.unit_price, l.net_amount, l.tax_code
            ),
        );
    }
    m
}

/// Snapshot fields the record already holds in its own fields; not stored twice.
const CORE: [&str; 6] = [
    "number",
    "kind",
    "issue_date",
    "buyer.customer_id",
    "buyer.name",
    "totals.gross",
];

/// What is stored in the record: the snapshot less the fields the record holds anyway.
fn stored_snapshot(doc: &Document) -> BTreeMap<String, String> {
    let mut m = snapshot(doc);
    for k in CORE {
        m.remove(k);
    }
    m
}

/// The snapshot of a delivered record, rebuilt from its fields and its stored snapshot.
fn delivered_view(r: &Record) -> BTreeMap<String, String> {
    let mut m = r.snapshot.clone();
    let core = [
        r.number.clone(),
        r.kind.clone(),
        r.issue_date.map(|d| d.to_string()).unwrap_or_default(),
        r.customer_id.clone(),
        r.customer_name.clone(),
        r.gross.map(|g| g.to_string()).unwrap_or_default(),
    ];
    for (k, v) in CORE.iter().zip(core) {
        m.insert((*k).to_owned(), v);
    }
    m
}

/// What changed in the source since a document was delivered: nothing when the bytes are the
/// same, or when only their formatting changed (same key fields).
pub fn changes_after_delivery(r: &Record, doc: &Document, hash: &str) -> Vec<FieldChange> {
    if r.source_hash == hash {
        return Vec::new();
    }
    diff(&delivered_view(r), &snapshot(doc))
}

fn diff(before: &BTreeMap<String, String>, after: &BTreeMap<String, String>) -> Vec<FieldChange> {
    let keys: BTreeSet<&String> = before.keys().chain(after.keys()).collect();
    keys.into_iter()
        .filter(|k| before.get(*k) != after.get(*k))
        .map(|k| FieldChange {
            field: k.clone(),
            before: before.get(k).cloned().unwrap_or_default(),
            after: after.get(k).cloned().unwrap_or_default(),
        })
        .collect()
}

/// Rolls back interrupted batches and puts committed files in place; returns what it did.
///
/// # Errors
///
/// Ledger or file failure.
pub fn recover(ledger: &dyn Ledger, cfg: &Config) -> Result<Vec<String>, RunError> {
    let rec = ledger.recover()?;
    let mut notes = Vec::new();
    for open in &rec.rolled_back {
        let _ = std::fs::remove_file(&open.tmp_path);
        // Older versions recorded it relative to the folder the run was started from.
        let _ = std::fs::remove_file(cfg.resolve(&open.tmp_path));
        notes.push(format!(
            "export batch {} of {}/{} was interrupted before its commit: rolled back, its documents are exported again",
            open.id, open.job, open.target
        ));
    }
    for batch in &rec.unpublished {
        // Older versions recorded the path relative to the folder the run was started from.
        if journal_file::publish(ledger, batch, |p| cfg.resolve(p))? {
            notes.push(format!("export batch {} was committed but its file was not in place: {} written from the ledger", batch.id, cfg.resolve(&batch.path).display()));
        }
    }
    let removed = journal_file::sweep_temps(cfg, ledger, &rec.rolled_back);
    if removed > 0 {
        notes.push(format!(
            "{removed} temp file(s) left by an interrupted run removed from the output folders"
        ));
    }
    Ok(notes)
}

fn new_record(key: RecordKey, existing: Option<Record>, now: chrono::DateTime<Utc>) -> Record {
    existing.unwrap_or_else(|| Record::new(key, now))
}

fn fill_from_doc(r: &mut Record, doc: &Document, origin: &str, hash: &str) {
    r.number.clone_from(&doc.number);
    r.kind = doc.kind.as_str().to_owned();
    r.customer_id = doc.customer_id().to_owned();
    r.customer_name.clone_from(&doc.buyer.name);
    r.issue_date = Some(doc.issue_date);
    r.gross = Some(doc.totals.gross);
    r.origin = origin.to_owned();
    r.source_hash = hash.to_owned();
}

fn problem_lines(target: &str, r: &Record, status: &str) -> Vec<ProblemLine> {
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
type Prepared = Result<Arc<MappedDocument>, Vec<Problem>>;

/// Per-target work of one page.
#[derive(Default)]
struct Pending {
    deliver: Vec<(Arc<MappedDocument>, Record)>,
    others: Vec<Record>,
}

/// In-run tallies per target.
#[derive(Default, Clone)]
struct Tally {
    already: u64,
    held: u64,
    changed: u64,
    nothing_to_book: u64,
    /// Second copies of an id left out (they have no record of their own).
    copies: u64,
}

struct JobRun<'a> {
    ledger: &'a dyn Ledger,
    mapping: &'a Mapping,
    job: &'a Job,
    mode: &'a Mode,
    run_id: String,
    dry_run: bool,
    targets: Arc<[String]>,
    layouts: Vec<Option<Layout>>,
    tallies: Vec<Tally>,
    lines: Vec<ProblemLine>,
    report: RunReport,
    /// Ids of the documents held in this run, so that the re-check of held records skips them.
    held_now: BTreeSet<String>,
    dups: Duplicates,
    /// Source files not read in this pull (unchanged): a document whose record came from one
    /// of them, read now from another file, is a second copy of its id.
    unread: BTreeSet<String>,
}

impl JobRun<'_> {
    fn key(&self, target: &str, doc_id: &str) -> RecordKey {
        RecordKey {
            job: self.job.name.clone(),
            target: target.to_owned(),
            doc_id: doc_id.to_owned(),
        }
    }

    /// Sorts one page's items into per-target deliveries and records.
    fn process(
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
                            },
                        )?;
                    }
                }
            }
        }
        for f in &page.unknown_fields {
            // Once per run and path: the first document that carried it is named.
            let known = |w: &String| w.contains(&format!("unknown field `{}` ", f.path));
            if !self.report.warnings.iter().any(known) {
                self.report
                    .warnings
                    .push(crate::source::unknown::warning(f));
            }
        }
        for item in page.items {
            if let Some(p) = progress {
                p.inc(1);
            }
            match item {
                Item::Bad { id, number, error } => {
                    self.report.documents_read += 1;
                    let problem = Problem::new(
                        "malformed-document",
                        error.path.clone(),
                        error.to_string(),
                        "correct this field in the source document; it is read again on the next run",
                    );
                    let targets = Arc::clone(&self.targets);
                    for (ti, t) in targets.iter().enumerate() {
                        if !self.dry_run {
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
                    self.process_doc(&doc, &origin, &hash, &mut pending, now)?;
                }
            }
        }
        // Flushed before this page's records: a number is never delivered unregistered.
        self.dups.save(self.ledger, self.dry_run)?;
        Ok(pending)
    }

    fn process_doc(
        &mut self,
        doc: &Document,
        origin: &str,
        hash: &str,
        pending: &mut [Pending],
        now: chrono::DateTime<Utc>,
    ) -> Result<(), RunError> {
        let export = match self.mode {
            Mode::Export(sel) => {
                if !sel.selects(doc) {
                    return Ok(());
                }
                Some(sel)
            }
            Mode::Sync => None,
        };
        self.report.documents_read += 1;
        let targets = Arc::clone(&self.targets);
        let dup = self
            .dups
            .check(self.ledger, &self.job.name, &targets, doc, origin, hash)?;
        let same_number = match dup {
            Some(Duplicate::SameId(problem)) => {
                self.report_same_id(doc, origin, hash, &problem, now);
                return Ok(());
            }
            Some(Duplicate::SameNumber(problem)) => Some(problem),
            Some(Duplicate::Reread) => {
                tracing::warn!(doc = %doc.number, origin = %origin, "Document read twice with the same content; taken once.");
                return Ok(());
            }
            None => None,
        };
        if let Some(first) = self.copy_elsewhere(doc, origin)? {
            let problem = self.dups.same_id(doc, &first, origin);
            self.report_same_id(doc, origin, hash, &problem, now);
            return Ok(());
        }
        let mut prepared: Option<Prepared> = None;
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
            let existing = self.ledger.get(&key)?;
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
                            &mut prepared,
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
                    self.ledger.forget(
                        &key,
                        AuditEvent {
                            at: now,
                            action: "no-longer-final".into(),
                            detail: format!("{key}: now {} in the source", doc.status.as_str()),
                        },
                    )?;
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
                    self.tallies[ti].held += 1;
                    self.held_now.insert(doc.id.clone());
                    let mut rec = new_record(key, existing, now);
                    // Held already for this, as read: the stored record (and its copy) stands.
                    if rec.state == State::Held
                        && rec.source_hash == hash
                        && rec.origin == origin
                        && rec.problems == problems
                    {
                        self.lines.extend(problem_lines(t, &rec, "held"));
                        continue;
                    }
                    fill_from_doc(&mut rec, doc, origin, hash);
                    rec.hold(problems, serde_json::to_value(doc).ok(), &self.run_id, now);
                    self.lines.extend(problem_lines(t, &rec, "held"));
                    pending[ti].others.push(rec);
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
                        &mut prepared,
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
            if let Some(r) = self.ledger.get(&self.key(t, &doc.id))? {
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
            fill_from_doc(&mut r, doc, origin, hash);
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
        prepared: &mut Option<Prepared>,
        pending: &mut [Pending],
        now: chrono::DateTime<Utc>,
    ) {
        let result = prepared.get_or_insert_with(|| prepare(doc, self.mapping).map(Arc::new));
        let held_as_read =
            rec.state == State::Held && rec.source_hash == hash && rec.origin == origin;
        fill_from_doc(&mut rec, doc, origin, hash);
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
                rec.snapshot = stored_snapshot(doc);
                rec.changed_after_delivery = None;
                rec.restore_to = restore.map(|st| (st, rec.batch_id));
                pending[ti].deliver.push((Arc::clone(md), rec));
            }
            Err(problems) => {
                self.tallies[ti].held += 1;
                self.held_now.insert(doc.id.clone());
                // Held already, from the same source and for the same reasons: the stored
                // record stands (rewriting it each run grew the ledger by its size each time).
                if held_as_read && rec.problems == *problems {
                    self.lines.extend(problem_lines(target, &rec, "held"));
                    return;
                }
                rec.hold(
                    problems.clone(),
                    serde_json::to_value(doc).ok(),
                    &self.run_id,
                    now,
                );
                self.lines.extend(problem_lines(target, &rec, "held"));
                pending[ti].others.push(rec);
            }
        }
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

/// The lock of one job's passes, shared by everything in this process.
fn job_lock(job: &str) -> Arc<tokio::sync::Mutex<()>> {
    static LOCKS: std::sync::OnceLock<
        std::sync::Mutex<BTreeMap<String, Arc<tokio::sync::Mutex<()>>>>,
    > = std::sync::OnceLock::new();
    let map = LOCKS.get_or_init(Default::default);
    let mut m = map
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    Arc::clone(m.entry(job.to_owned()).or_default())
}

/// The file layout of each target that writes journal files.
pub fn target_layouts(cfg: &Config, names: &[String]) -> Vec<Option<Layout>> {
    names
        .iter()
        .map(|n| match cfg.connectors.get(n) {
            Some(Connector::JournalFile(c)) => Some(Layout::of(c)),
            Some(Connector::ChorusPro(c)) => Some(ChorusRun::layout(c)),
            _ => None,
        })
        .collect()
}

/// The mapping's file name as admins know it (`mappings/pcg-demo.toml`), for fixes.
pub fn mapping_file(m: &Mapping) -> String {
    let parent = m
        .path
        .parent()
        .and_then(|p| p.file_name())
        .map(|p| p.to_string_lossy().into_owned());
    let file = m
        .path
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    match parent {
        Some(p) => format!("{p}/{file}"),
        None => file,
    }
}

/// The run of an API target of a job (Chorus Pro, Pennylane, Xero), to follow statuses; `None`
/// for targets that are files.
pub fn api_target(cfg: &Config, job: &Job, name: &str) -> Option<Result<TargetRun, RunError>> {
    if matches!(
        cfg.connectors.get(name),
        Some(Connector::JournalFile(_)) | None
    ) {
        return None;
    }
    let opts = RunOptions {
        dry_run: false,
        today: chrono::Local::now().date_naive(),
        progress: None,
    };
    Some(
        build_targets(cfg, job, &[name.to_owned()], &Mode::Sync, &opts, "status")
            .map(|mut v| v.remove(0)),
    )
}

fn build_targets(
    cfg: &Config,
    job: &Job,
    names: &[String],
    mode: &Mode,
    opts: &RunOptions,
    origin: &str,
) -> Result<Vec<TargetRun>, RunError> {
    names
        .iter()
        .map(|name| match cfg.connectors.get(name) {
            Some(Connector::JournalFile(c)) => {
                let (journal, out) = match mode {
                    Mode::Export(sel) => (sel.journal.clone(), sel.out_dir.clone()),
                    Mode::Sync => (None, None),
                };
                let width = Layout::of(c).journal_width();
                if let (Some(code), Some(w)) = (&journal, width) {
                    if code.chars().count() > w {
                        return Err(RunError::Config(format!(
                            "--journal {code}: the {} layout holds journal codes of {w} characters",
                            c.format.as_str()
                        )));
                    }
                }
                let out_dir = out.unwrap_or_else(|| cfg.resolve(&c.out_dir));
                let valid_date = match mode {
                    Mode::Export(sel) => sel.validation_date,
                    Mode::Sync => None,
                }
                .or(job.validation_date)
                .unwrap_or(opts.today);
                let run = JournalRun::new(
                    name,
                    &job.name,
                    c,
                    out_dir,
                    &cfg.company,
                    journal,
                    valid_date,
                    opts.dry_run,
                    origin,
                );
                Ok(TargetRun::JournalFile(Box::new(match mode {
                    Mode::Export(sel) => run.for_period(sel.from, sel.to),
                    Mode::Sync => run,
                })))
            }
            Some(Connector::ChorusPro(c)) => {
                if matches!(mode, Mode::Export(_)) {
                    return Err(RunError::Config(format!(
                        "`{name}` deposits on Chorus Pro through its API: `facto sync` sends to it; `facto export` writes files (use a chorus-ubl or chorus-cii journal-file target for the portal)"
                    )));
                }
                ChorusRun::new(name, &job.name, c, opts.dry_run)
                    .map(|r| TargetRun::Chorus(Box::new(r)))
                    .map_err(|e| RunError::Config(e.to_string()))
            }
            Some(Connector::Xero(c)) => {
                if matches!(mode, Mode::Export(_)) {
                    return Err(RunError::Config(format!(
                        "`{name}` sends to Xero through its API: `facto sync` sends to it"
                    )));
                }
                XeroRun::new(name, &job.name, c, &cfg.data_dir, opts.dry_run)
                    .map(|r| TargetRun::Xero(Box::new(r)))
                    .map_err(|e| RunError::Config(e.to_string()))
            }
            Some(Connector::Pennylane(c)) => {
                if matches!(mode, Mode::Export(_)) {
                    return Err(RunError::Config(format!(
                        "`{name}` imports into Pennylane through its API: `facto sync` sends to it"
                    )));
                }
                PennylaneRun::new(
                    name,
                    &job.name,
                    c,
                    crate::source::attachments::AttachmentRoots::for_source(cfg, &job.source),
                    &cfg.data_dir,
                    opts.dry_run,
                )
                    .map(|r| TargetRun::Pennylane(Box::new(r)))
                    .map_err(|e| RunError::Config(e.to_string()))
            }
            _ => Err(RunError::Config(format!(
                "connector `{name}` is not a target facto can deliver to"
            ))),
        })
        .collect()
}

/// The amounts of a page handed to a target, added to the run's sum for the documents the
/// target counts as delivered.
struct PageAmounts {
    before: u64,
    docs: Vec<(RecordKey, Amounts)>,
}

impl PageAmounts {
    fn before(run: &TargetRun, docs: &[(Arc<MappedDocument>, Record)]) -> PageAmounts {
        PageAmounts {
            before: run.delivered(),
            docs: docs
                .iter()
                .map(|(m, r)| (r.key.clone(), Amounts::of(&m.doc)))
                .collect(),
        }
    }

    fn after(
        self,
        run: &TargetRun,
        ledger: &dyn Ledger,
        sum: &mut Amounts,
    ) -> Result<(), LedgerError> {
        let n = run.delivered().saturating_sub(self.before);
        if n == self.docs.len() as u64 {
            self.docs.into_iter().for_each(|(_, a)| sum.add(a));
        } else if n > 0 {
            // Some were refused (per-item errors): the ledger says which went through.
            for (key, a) in self.docs {
                if ledger.get(&key)?.is_some_and(|r| r.state.is_delivered()) {
                    sum.add(a);
                }
            }
        }
        Ok(())
    }
}

/// Delivers one page to every target. An API target that fails (unreachable, credentials
/// refused) stops for this run with its reason, without stopping the others.
async fn deliver(
    runs: &mut [TargetRun],
    stopped: &mut [Option<String>],
    ledger: &dyn Ledger,
    pending: Vec<Pending>,
    run_id: &str,
    amounts: &mut [Amounts],
) -> Result<(), TargetError> {
    for (((run, p), stop), sum) in runs
        .iter_mut()
        .zip(pending)
        .zip(stopped.iter_mut())
        .zip(amounts.iter_mut())
    {
        let page = PageAmounts::before(run, &p.deliver);
        match &mut *run {
            TargetRun::JournalFile(j) => j.deliver_page(ledger, p.deliver, p.others, run_id)?,
            _ if stop.is_some() => ledger.put_records(&p.others)?,
            api => match api.deliver_api(ledger, p.deliver, p.others, run_id).await {
                Ok(()) => {}
                Err(e @ (TargetError::Remote { .. } | TargetError::Config(_))) => {
                    tracing::error!(target = %api.name(), error = %e, "Target stopped for this run.");
                    *stop = Some(e.to_string());
                }
                Err(e) => return Err(e),
            },
        }
        page.after(run, ledger, sum)?;
    }
    Ok(())
}

/// Runs one job once (sync or export) and returns its report, also kept in the ledger.
///
/// A source that fails part-way is reported (exit 3): what was read is delivered, the cursor
/// stays, so the next run reads the rest.
///
/// # Errors
///
/// Configuration problems, ledger failures.
pub async fn run_job(
    cfg: &Config,
    ledger: &dyn Ledger,
    job: &Job,
    mode: &Mode,
    opts: &RunOptions,
) -> Result<RunReport, RunError> {
    // Never two passes of one job at once (the daemon's schedule and a `sync` through its API).
    let lock = job_lock(&job.name);
    let _pass = lock.lock().await;
    let run_id = new_run_id();
    let command = match mode {
        Mode::Sync => "sync",
        Mode::Export(_) => "export",
    };
    let targets: Vec<String> = match mode {
        Mode::Sync => job.targets.clone(),
        Mode::Export(sel) => {
            if !job.targets.contains(&sel.target)
                && !matches!(
                    cfg.connectors.get(&sel.target),
                    Some(Connector::JournalFile(_))
                )
            {
                return Err(RunError::Config(format!(
                    "job `{}` has no target `{}`; its targets: {} (or any journal-file connector)",
                    job.name,
                    sel.target,
                    job.targets.join(", ")
                )));
            }
            vec![sel.target.clone()]
        }
    };
    let mapping = cfg
        .mapping_for(job)
        .ok_or_else(|| RunError::Config(format!("mapping `{}` is not loaded", job.mapping)))?;
    let mapping = mapping.as_ref();
    let layouts = target_layouts(cfg, &targets);
    let mut runs = build_targets(cfg, job, &targets, mode, opts, command)?;
    let mut stopped: Vec<Option<String>> = vec![None; runs.len()];
    let mut statuses = Vec::new();
    // Deposits whose answer was lost are settled before anything is sent again.
    for (run, stop) in runs.iter_mut().zip(stopped.iter_mut()) {
        match run.reconcile(ledger).await {
            Ok(notes) => statuses.extend(notes),
            Err(e @ TargetError::Remote { .. }) => *stop = Some(e.to_string()),
            Err(e) => return Err(e.into()),
        }
    }
    let mut jr = JobRun {
        ledger,
        mapping,
        job,
        mode,
        run_id: run_id.clone(),
        dry_run: opts.dry_run,
        tallies: vec![Tally::default(); targets.len()],
        layouts,
        targets: targets.into(),
        lines: Vec::new(),
        report: RunReport::new(&run_id, command, &job.name, opts.dry_run),
        held_now: BTreeSet::new(),
        dups: Duplicates::default(),
        unread: BTreeSet::new(),
    };
    jr.dups.backfill(ledger, &job.name)?;
    let started = Utc::now();
    let cursor = ledger.cursor(&job.name)?;
    let from_cursor = match (mode, &cursor) {
        (Mode::Sync, Some(c)) if !c.rescan => Some(&c.state),
        _ => None,
    };
    let progress = opts.progress.as_ref();
    let mut source = match Source::open(cfg, &job.source, from_cursor) {
        Ok(s) => Some(s),
        Err(e) => {
            jr.report.error = Some(e.to_string());
            None
        }
    };
    if let Some(src) = &source {
        jr.unread = src.unread_origins();
    }
    let mut export_pool: Vec<Pending> = jr.targets.iter().map(|_| Pending::default()).collect();
    let mut failure: Option<TargetError> = None;
    let mut amounts = vec![Amounts::default(); jr.targets.len()];
    if let Some(src) = source.as_mut() {
        loop {
            match src.next_page().await {
                Ok(Some(page)) => {
                    let pending = jr.process(page, progress)?;
                    if matches!(mode, Mode::Export(_)) {
                        for (pool, p) in export_pool.iter_mut().zip(pending) {
                            pool.deliver.extend(p.deliver);
                            pool.others.extend(p.others);
                        }
                    } else if let Err(e) = deliver(
                        &mut runs,
                        &mut stopped,
                        ledger,
                        pending,
                        &run_id,
                        &mut amounts,
                    )
                    .await
                    {
                        failure = Some(e);
                        break;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    tracing::error!(job = %job.name, error = %e, "Source failed; delivering what was read.");
                    jr.report.error = Some(e.to_string());
                    break;
                }
            }
        }
    }
    // Held documents not seen in this pull are checked again from the copy the ledger keeps, so
    // a mapping fixed by an admin releases them without touching the source.
    if failure.is_none() && matches!(mode, Mode::Sync) {
        let mut seen = BTreeSet::new();
        let mut docs = Vec::new();
        for t in jr.targets.iter() {
            let held = ledger.list(&RecordFilter {
                job: Some(job.name.clone()),
                target: Some(t.clone()),
                state: Some(State::Held),
            })?;
            for r in held {
                if r.updated_at >= started
                    || jr.held_now.contains(&r.key.doc_id)
                    || !seen.insert(r.key.doc_id.clone())
                {
                    continue;
                }
                if let Some(v) = r.held_document {
                    if let Ok(doc) = serde_json::from_value::<Document>(v) {
                        // The copy is the document as read under that hash: an unchanged one
                        // is not rewritten.
                        let hash = Some(r.source_hash).filter(|h| !h.is_empty());
                        docs.push(Item::Doc {
                            doc: Box::new(doc),
                            origin: r.origin.clone(),
                            hash,
                        });
                    }
                }
            }
        }
        if !docs.is_empty() {
            jr.dups.refeeding = true;
            let read_before = jr.report.documents_read;
            let pending = jr.process(
                Page {
                    items: docs,
                    ..Page::default()
                },
                progress,
            )?;
            jr.report.documents_read = read_before;
            if let Err(e) = deliver(
                &mut runs,
                &mut stopped,
                ledger,
                pending,
                &run_id,
                &mut amounts,
            )
            .await
            {
                failure = Some(e);
            }
        }
    }
    if failure.is_none() && matches!(mode, Mode::Export(_)) {
        for pool in &mut export_pool {
            pool.deliver.sort_by(|a, b| {
                (a.0.doc.issue_date, &a.0.doc.number).cmp(&(b.0.doc.issue_date, &b.0.doc.number))
            });
        }
        for ((run, pool), sum) in runs.iter_mut().zip(export_pool).zip(amounts.iter_mut()) {
            let TargetRun::JournalFile(j) = run else {
                continue;
            };
            let mut others = Some(pool.others);
            let mut docs = pool.deliver.into_iter().peekable();
            while docs.peek().is_some() || others.is_some() {
                let page: Vec<_> = docs.by_ref().take(500).collect();
                // A journal file takes every document of the page, or fails the run.
                let page_sum: Vec<Amounts> =
                    page.iter().map(|(m, _)| Amounts::of(&m.doc)).collect();
                if let Err(e) =
                    j.deliver_page(ledger, page, others.take().unwrap_or_default(), &run_id)
                {
                    failure = Some(e);
                    break;
                }
                page_sum.into_iter().for_each(|a| sum.add(a));
            }
        }
    }
    let mut delivered = Vec::new();
    for (run, stop) in runs.into_iter().zip(&stopped) {
        let j = match run {
            TargetRun::JournalFile(j) => j,
            api => {
                delivered.push(api.delivered());
                if let Some(why) = stop {
                    jr.report.error = Some(why.clone());
                } else if failure.is_none() && matches!(mode, Mode::Sync) {
                    // Statuses of what was sent, this run or before.
                    match api.poll(ledger).await {
                        Ok(changes) => statuses.extend(changes),
                        Err(e @ TargetError::Remote { .. }) => {
                            jr.report.error = Some(e.to_string())
                        }
                        Err(e) => return Err(e.into()),
                    }
                }
                continue;
            }
        };
        delivered.push(j.delivered());
        let line = |b: &crate::ledger::Batch| BatchLine {
            id: b.id,
            target: b.target.clone(),
            path: b.path.display().to_string(),
            documents: b.documents,
            sha256: b.sha256.clone(),
        };
        if let Some(e) = &failure {
            // Lots completed before the failure are committed and published: they stay.
            jr.report.batches.extend(j.closed().iter().map(line));
            j.abort(ledger, &format!("run {run_id} failed: {e}"))?;
            continue;
        }
        let closed: Vec<BatchLine> = j.closed().iter().map(line).collect();
        match j.finish(ledger) {
            Ok(batches) => jr.report.batches.extend(batches.iter().map(line)),
            Err(e) => {
                jr.report.batches.extend(closed);
                jr.report.error = Some(e.to_string());
            }
        }
    }
    if let Some(e) = failure {
        jr.report.error = Some(e.to_string());
    }
    if !opts.dry_run && matches!(mode, Mode::Sync) && jr.report.error.is_none() {
        if let Some(src) = &source {
            ledger.set_cursor(
                &job.name,
                &Cursor {
                    state: src.cursor_before(&jr.dups.conflicts),
                    rescan: false,
                },
            )?;
        }
    }
    jr.report.statuses = statuses;
    finish_report(cfg, ledger, &mut jr, &delivered)?;
    let mut report = jr.report;
    for (t, a) in report.targets.iter_mut().zip(amounts) {
        t.amounts = a;
    }
    report.problem_groups = crate::report::group_problems(&report.problems);
    report.finished_at = Some(Utc::now());
    let sync = matches!(mode, Mode::Sync);
    if sync {
        crate::fail_on::count_new(ledger, &mut report)?;
    }
    if !opts.dry_run {
        ledger.save_report(
            &report.run_id,
            &serde_json::to_value(&report).unwrap_or_default(),
        )?;
        if sync {
            crate::fail_on::remember(ledger, &report)?;
        }
    }
    Ok(report)
}

fn finish_report(
    cfg: &Config,
    ledger: &dyn Ledger,
    jr: &mut JobRun<'_>,
    delivered: &[u64],
) -> Result<(), RunError> {
    let sync_live = matches!(jr.mode, Mode::Sync) && !jr.dry_run;
    let mut lines = std::mem::take(&mut jr.lines);
    for (ti, t) in jr.targets.iter().enumerate() {
        let kind = match cfg.connectors.get(t) {
            Some(Connector::JournalFile(c)) => format!("journal-file/{}", c.format.as_str()),
            Some(Connector::ChorusPro(_)) => "chorus-pro".into(),
            Some(Connector::Pennylane(_)) => "pennylane".into(),
            Some(Connector::Xero(_)) => "xero".into(),
            _ => "target".into(),
        };
        let tally = &jr.tallies[ti];
        let mut tr = TargetReport {
            target: t.clone(),
            kind,
            delivered: delivered[ti],
            ..Default::default()
        };
        let counts = ledger.count_states(&jr.job.name, t)?;
        let count = |s: State| counts.get(&s).copied().unwrap_or(0);
        tr.rejected = count(State::Rejected);
        tr.failed = count(State::Failed);
        tr.changed_after_delivery = tally.changed;
        tr.nothing_to_book = tally.nothing_to_book;
        if sync_live {
            let total_delivered: u64 = counts
                .iter()
                .filter(|(s, _)| s.is_delivered())
                .map(|(_, n)| n)
                .sum();
            tr.already_delivered = total_delivered.saturating_sub(tr.delivered);
            tr.held = count(State::Held) + tally.copies;
            // Held documents not read this run (unchanged files) still deserve their line.
            let listed: BTreeSet<(String, String)> = lines
                .iter()
                .map(|l| (l.target.clone(), l.doc_id.clone()))
                .collect();
            for state in [State::Held, State::Failed, State::Rejected] {
                let filter = RecordFilter {
                    job: Some(jr.job.name.clone()),
                    target: Some(t.clone()),
                    state: Some(state),
                };
                for r in ledger.list(&filter)? {
                    let shown = crate::model::shown_id(&r.key.doc_id).to_owned();
                    if listed.contains(&(t.clone(), shown)) {
                        continue;
                    }
                    if state == State::Held {
                        lines.extend(problem_lines(t, &r, "held"));
                    } else {
                        lines.push(ProblemLine {
                            target: t.clone(),
                            doc_id: crate::model::shown_id(&r.key.doc_id).to_owned(),
                            number: r.number.clone(),
                            customer: r.customer_name.clone(),
                            status: state.as_str().into(),
                            field: "(document)".into(),
                            reason: r
                                .last_error
                                .clone()
                                .unwrap_or_else(|| format!("{} by the target", state.as_str())),
                            fix: "correct the document, then `facto ledger retry`".into(),
                        });
                    }
                }
            }
        } else {
            tr.already_delivered = if matches!(jr.mode, Mode::Sync) {
                counts
                    .iter()
                    .filter(|(s, _)| s.is_delivered())
                    .map(|(_, n)| n)
                    .sum()
            } else {
                tally.already
            };
            tr.held = tally.held;
        }
        jr.report.targets.push(tr);
    }
    lines.sort_by(|a, b| (&a.target, &a.number, &a.field).cmp(&(&b.target, &b.number, &b.field)));
    jr.report.problems = lines;
    Ok(())
}
