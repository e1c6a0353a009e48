//! One pass of a job: pull → map → check → claim → deliver → record, page by page, with every
//! document isolated (a bad one is held with its reason; the rest goes on). `sync` reads what is
//! new since the cursor; `export` reads a period and writes one batch for one target.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;

use chrono::{NaiveDate, Utc};
use indicatif::ProgressBar;

use crate::config::{Config, Connector, Job};
use crate::ledger::{Cursor, Ledger, LedgerError, RecordFilter, State};
use crate::model::Document;
use crate::report::{Amounts, BatchLine, RunReport};
use crate::source::{Item, Page};
use crate::targets::journal_file;
use crate::targets::TargetError;

mod cashed;
mod changes;
mod deliver;
pub(crate) mod duplicates;
mod learned;
mod malformed;
mod process;
pub(crate) mod readahead;
mod share;
mod spill;
mod summary;
mod targets;
use deliver::deliver;
use duplicates::Duplicates;
use process::{JobRun, Pending, Tally};
use summary::finish_report;
use targets::build_targets;

pub use changes::{changes_after_delivery, snapshot, source_hash};
pub(crate) use process::fill_from_doc;
pub use targets::{api_target, mapping_file, offline_target};

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

/// A new run id, sortable by time and unique in the process: two passes starting in the same
/// millisecond (the daemon starts every job at once) get the next free millisecond, so one never
/// overwrites the other's report or alert.
pub fn new_run_id() -> String {
    use std::sync::atomic::{AtomicI64, Ordering};
    static LAST: AtomicI64 = AtomicI64::new(i64::MIN);
    let now = Utc::now().timestamp_millis();
    let prev = LAST
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |last| {
            Some(now.max(last.saturating_add(1)))
        })
        .unwrap_or(now);
    let ms = now.max(prev.saturating_add(1));
    chrono::DateTime::<Utc>::from_timestamp_millis(ms)
        .unwrap_or_else(Utc::now)
        .format("R%Y%m%dT%H%M%S%3fZ")
        .to_string()
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
    let out_dirs = cfg.connectors.values().filter_map(|c| match c {
        Connector::JournalFile(j) => Some(cfg.resolve(&j.out_dir)),
        _ => None,
    });
    let removed = journal_file::sweep_temps(out_dirs, ledger, &rec.rolled_back);
    if removed > 0 {
        notes.push(format!(
            "{removed} temp file(s) left by an interrupted run removed from the output folders"
        ));
    }
    Ok(notes)
}

/// The lock of one job's passes, shared by everything in this process: a pass holds it, and so
/// does the daemon's status polling of the job's targets (both settle the records left claimed:
/// at once, each could send a document again after its grace period). Keyed by the data folder
/// too: the tenants of a deployment have jobs of the same name, which never wait for each other.
pub fn job_lock(cfg: &Config, job: &str) -> Arc<tokio::sync::Mutex<()>> {
    static LOCKS: crate::targets::named_lock::Locks = std::sync::OnceLock::new();
    // The folder's real path: a forwarded command names it absolutely, the daemon maybe not.
    let dir = std::fs::canonicalize(&cfg.data_dir).unwrap_or_else(|_| cfg.data_dir.clone());
    let key = format!("{}\0{job}", dir.display());
    crate::targets::named_lock::keyed(&LOCKS, &key)
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
    let lock = job_lock(cfg, &job.name);
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
    let mut runs = build_targets(cfg, job, &targets, mode, opts, command)?;
    // Each target's layout says which documents it takes (its route) and how they are checked.
    let layouts: Vec<_> = runs.iter().map(|r| r.layout()).collect();
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
        unknown_warned: BTreeSet::new(),
        numbers_ride: runs.iter_mut().all(|r| r.journal().is_some()),
        malformed_ids: BTreeSet::new(),
        cashed: (matches!(mode, Mode::Sync) && !cashed::targets(cfg, job).is_empty())
            .then(BTreeMap::new),
        cashed_none: BTreeSet::new(),
        cashed_learn: !learned::accounting_targets(cfg, job).is_empty(),
        ahead: readahead::ReadAhead::default(),
        share: share::Share::default(),
        later: share::Later::new(),
        later_numbers: std::collections::HashSet::new(),
    };
    jr.dups.backfill(ledger, &job.name, opts.dry_run)?;
    let started = Utc::now();
    let cursor = ledger.cursor(&job.name)?;
    let from_cursor = match (mode, &cursor) {
        (Mode::Sync, Some(c)) if !c.rescan => Some(&c.state),
        _ => None,
    };
    let progress = opts.progress.as_ref();
    let mut source = match cfg.open_source(&job.source, from_cursor, Some((ledger, &job.name))) {
        Ok(s) => Some(s),
        Err(e) => {
            jr.report.error = Some(e.to_string());
            None
        }
    };
    if let Some(src) = &source {
        jr.unread = src.unread_origins();
    }
    // An export's documents wait on disk, keys in memory, until the period is read.
    let mut spills: Vec<Option<spill::Spill>> = jr.targets.iter().map(|_| None).collect();
    let mut failure: Option<TargetError> = None;
    let mut amounts = vec![Amounts::default(); jr.targets.len()];
    if let Some(src) = source.as_mut() {
        loop {
            match src.next_page().await {
                Ok(Some(page)) => {
                    if jr.repeats(&page) {
                        if let Err(e) = settle(&mut runs) {
                            failure = Some(e);
                            break;
                        }
                    }
                    if matches!(mode, Mode::Sync) && !opts.dry_run {
                        // Asked again at every page: a worker that starts or stops mid-run
                        // changes the shares of the pages still to come.
                        jr.share = share::Share::now(ledger)?;
                    }
                    let pending = jr.process(page, progress)?;
                    if matches!(mode, Mode::Export(_)) {
                        if let Err(e) =
                            set_aside(&mut runs, &mut spills, cfg, ledger, pending, &run_id)
                        {
                            failure = Some(e);
                            break;
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
                    if let Err(e) = deliver_later(
                        &mut jr,
                        share::DEFER_MAX,
                        (&mut runs, &mut stopped, &mut amounts),
                        ledger,
                        &run_id,
                    )
                    .await?
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
    // The other shares' documents read and not planned yet: whatever their owners did not
    // deliver by now is delivered here.
    if failure.is_none() {
        let runs = (&mut runs, &mut stopped, &mut amounts);
        if let Err(e) = deliver_later(&mut jr, 0, runs, ledger, &run_id).await? {
            failure = Some(e);
        }
    }
    // Held documents not seen in this pull are checked again from the copy the ledger keeps, so
    // a mapping fixed by an admin releases them without touching the source.
    // The re-check reads the ledger: every page handed to a writer is in it first.
    if failure.is_none() {
        if let Err(e) = settle(&mut runs) {
            failure = Some(e);
        }
    }
    if failure.is_none() && matches!(mode, Mode::Sync) {
        let mut seen = BTreeSet::new();
        let mut docs = Vec::new();
        for t in jr.targets.iter() {
            let held = ledger.list(&RecordFilter {
                job: Some(job.name.clone()),
                target: Some(t.clone()),
                state: Some(State::Held),
            })?;
            for mut r in held {
                if r.updated_at >= started
                    || jr.held_now.contains(&r.key.doc_id)
                    || !seen.insert(r.key.doc_id.clone())
                {
                    continue;
                }
                if let Some(doc) = r.take_held_doc() {
                    // The copy is the document as read under that hash: an unchanged one is
                    // not rewritten.
                    let hash = Some(r.source_hash).filter(|h| !h.is_empty());
                    docs.push(Item::Doc {
                        doc: Box::new(doc),
                        origin: r.origin,
                        hash,
                    });
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
        if let Err(e) = deliver_spills(&mut runs, spills, ledger, &run_id, &mut amounts) {
            failure = Some(e);
        }
    }
    let mut delivered = Vec::new();
    for (mut run, stop) in runs.into_iter().zip(&stopped) {
        if run.journal().is_none() {
            delivered.push(run.delivered());
            if let Some(why) = stop {
                jr.report.error = Some(why.clone());
            } else if failure.is_none() && matches!(mode, Mode::Sync) {
                // Statuses of what was sent, this run or before.
                match run.poll(ledger).await {
                    Ok(changes) => statuses.extend(changes),
                    Err(e @ TargetError::Remote { .. }) => jr.report.error = Some(e.to_string()),
                    Err(e) => return Err(e.into()),
                }
            }
            continue;
        }
        let Some(j) = run.into_journal() else {
            continue;
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
    } else if let Some(docs) = jr.cashed.take() {
        // The payments' statuses 212, after the invoices they follow were sent and polled.
        let none = std::mem::take(&mut jr.cashed_none);
        let read = cashed::Read { docs, none };
        let emitted = cashed::emit(cfg, ledger, job, mapping, read, opts.dry_run, &run_id).await?;
        statuses.extend(emitted.notes);
        jr.lines.extend(emitted.lines);
        if let Some(e) = emitted.error {
            jr.report.error.get_or_insert(e);
        }
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
            // Recorded (flushed) before the problems count as reported: never lost to a crash.
            crate::alerts::record(cfg.alerts.as_ref(), ledger, &report)?;
            crate::fail_on::remember(ledger, &report)?;
        }
    }
    Ok(report)
}

/// A run's targets in progress, why each stopped, and the amounts each delivered.
type Runs<'r> = (
    &'r mut Vec<Box<dyn crate::targets::TargetRun>>,
    &'r mut Vec<Option<String>>,
    &'r mut Vec<Amounts>,
);

/// Plans and delivers the oldest documents of other shares until no more than `keep` wait,
/// a page at a time. The outer error stops the run; the inner one is a target's failure.
async fn deliver_later(
    jr: &mut JobRun<'_>,
    keep: usize,
    (runs, stopped, amounts): Runs<'_>,
    ledger: &dyn Ledger,
    run_id: &str,
) -> Result<Result<(), TargetError>, RunError> {
    while jr.later.len() > keep {
        let pending = jr.plan_later(share::DEFER_PAGE)?;
        if let Err(e) = deliver(runs, stopped, ledger, pending, run_id, amounts).await {
            return Ok(Err(e));
        }
    }
    Ok(Ok(()))
}

/// Waits until every journal file's writer has claimed and written what it was handed.
fn settle(runs: &mut [Box<dyn crate::targets::TargetRun>]) -> Result<(), TargetError> {
    for run in runs.iter_mut() {
        if let Some(j) = run.journal() {
            j.settle()?;
        }
    }
    Ok(())
}

/// An export's page: its documents set aside in each journal target's spill, in the order read;
/// its other records (held, released) recorded now, as a sync records them.
fn set_aside(
    runs: &mut [Box<dyn crate::targets::TargetRun>],
    spills: &mut [Option<spill::Spill>],
    cfg: &Config,
    ledger: &dyn Ledger,
    pending: Vec<Pending>,
    run_id: &str,
) -> Result<(), TargetError> {
    let each = runs.iter_mut().zip(spills.iter_mut()).zip(pending);
    for (i, ((run, sp), p)) in each.enumerate() {
        let Some(j) = run.journal() else {
            continue;
        };
        // The page's numbers are recorded now, before any of its documents is written.
        j.register_numbers(p.numbers);
        if !p.others.is_empty() || j.has_numbers() {
            j.deliver_page(ledger, Vec::new(), p.others, run_id)?;
        }
        for (md, rec) in &p.deliver {
            let sp = match sp {
                Some(sp) => sp,
                None => sp.insert(spill::Spill::create(&cfg.data_dir, run_id, i)?),
            };
            sp.push(md, rec)?;
        }
    }
    Ok(())
}

/// Writes each journal target's batch from its spill, in (issue date, number) order across
/// the period, 500 documents a page (the same bytes as when the period was held in memory).
fn deliver_spills(
    runs: &mut [Box<dyn crate::targets::TargetRun>],
    spills: Vec<Option<spill::Spill>>,
    ledger: &dyn Ledger,
    run_id: &str,
    amounts: &mut [Amounts],
) -> Result<(), TargetError> {
    for ((run, sp), sum) in runs.iter_mut().zip(spills).zip(amounts.iter_mut()) {
        let (Some(j), Some(sp)) = (run.journal(), sp) else {
            continue;
        };
        let mut pages = sp.into_pages(500)?;
        while let Some(page) = pages.next_page()? {
            let page_sum: Vec<Amounts> = page.iter().map(|(m, _)| Amounts::of(&m.doc)).collect();
            // A journal file takes every document of the page, or fails the run.
            j.deliver_page(ledger, page, Vec::new(), run_id)?;
            page_sum.into_iter().for_each(|a| sum.add(a));
        }
    }
    Ok(())
}

/// A live sync pass of `job` that failed before its report was made (a target that cannot start,
/// the ledger): a report that says why is kept (the console's overview lists the job as stopped)
/// and the stop raises its alert once, like a pass that stopped early. Its own failures are
/// logged: the pass has failed already.
pub fn record_failed_pass(cfg: &Config, ledger: &dyn Ledger, job: &str, error: &RunError) {
    let mut report = RunReport::new(&new_run_id(), "sync", job, false);
    let targets: Vec<String> = cfg
        .jobs
        .iter()
        .find(|j| j.name == job)
        .map(|j| j.targets.clone())
        .unwrap_or_default();
    let mut error = error.to_string();
    // The target the failure names (`target `xero` is not connected...`) leads the error, as a
    // target's own stop does, so the overview can say which target stopped.
    let named: Vec<&String> = targets
        .iter()
        .filter(|t| error.contains(&format!("`{t}`")))
        .collect();
    if let [t] = named.as_slice() {
        error = format!("{t}: {error}");
    }
    report.targets = targets
        .iter()
        .map(|t| crate::report::TargetReport {
            target: t.clone(),
            ..Default::default()
        })
        .collect();
    report.error = Some(error);
    report.finished_at = Some(Utc::now());
    let kept = ledger
        .save_report(
            &report.run_id,
            &serde_json::to_value(&report).unwrap_or_default(),
        )
        .and_then(|()| crate::alerts::record(cfg.alerts.as_ref(), ledger, &report));
    if let Err(e) = kept {
        tracing::error!(job, error = %e, "The failed pass could not be recorded.");
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn run_ids_are_unique_and_in_order_even_within_one_millisecond() {
        let ids: Vec<String> = (0..2000).map(|_| super::new_run_id()).collect();
        let mut sorted = ids.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted, ids, "unique and already in order");
    }
}
