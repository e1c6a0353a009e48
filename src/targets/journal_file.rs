//! The journal-file target: one export batch (one file) per run, written page by page to a temp
//! file beside its final name. Order of a batch: open marker (flushed) → per page, claims
//! (flushed) then bytes → fsync → ledger commit (flushed) → rename → published. A crash before
//! the commit rolls the batch back; after it, the file is (re)published from the ledger's bytes.

pub mod config;
mod render;
mod writer;

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{NaiveDate, Utc};
use rust_decimal::Decimal;
use sha2::{Digest, Sha256};

use self::config::JournalFileConfig;
use super::TargetError;
use crate::company::Company;
use crate::fault;
use crate::format::{self, fec, text, FileState, Layout};
use crate::fsutil;
use crate::ledger::{Batch, BatchCommit, BatchStatus, Ledger, OpenBatch, Record, State};
use crate::mapping::MappedDocument;
use writer::{write_counted, Open, PageWrite, Writer};

/// The batch being written: the ledger's open marker, the bytes handed to the writer so far
/// (the next zip entry's offset) and the writer thread that owns the file.
struct Current {
    batch: OpenBatch,
    size: u64,
    writer: Writer,
}

/// One run's delivery to a journal-file target.
pub struct JournalRun {
    name: String,
    job: String,
    cfg: JournalFileConfig,
    layout: Layout,
    state: FileState,
    out_dir: PathBuf,
    company: Company,
    journal_code: Option<String>,
    valid_date: NaiveDate,
    dry_run: bool,
    origin: String,
    open: Option<Current>,
    run_id: String,
    /// Batches already completed in this run (a Chorus lot is full at `lot_size` documents).
    closed: Vec<Batch>,
    zip: format::zip::Zip,
    single_name: Option<String>,
    batch_docs: u64,
    docs: u64,
    debit: Decimal,
    credit: Decimal,
    period: Option<(NaiveDate, NaiveDate)>,
    requested: Option<(NaiveDate, NaiveDate)>,
    entries: Option<(String, String)>,
    counter: Option<(String, u64)>,
    journal: String,
    /// Number registrations to record before the next page's claims.
    numbers: Vec<(String, serde_json::Value)>,
}

fn io_err(path: &Path) -> impl Fn(std::io::Error) -> TargetError + '_ {
    move |source| TargetError::Io {
        path: path.display().to_string(),
        source,
    }
}

impl JournalRun {
    /// Prepares a run; nothing is written until the first document is delivered.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        name: &str,
        job: &str,
        cfg: &JournalFileConfig,
        out_dir: PathBuf,
        company: &Company,
        journal_override: Option<String>,
        valid_date: NaiveDate,
        dry_run: bool,
        origin: &str,
    ) -> Self {
        JournalRun {
            name: name.to_owned(),
            job: job.to_owned(),
            cfg: cfg.clone(),
            layout: cfg.layout(),
            state: FileState::default(),
            out_dir,
            company: company.clone(),
            journal_code: journal_override,
            valid_date,
            dry_run,
            origin: origin.to_owned(),
            open: None,
            run_id: String::new(),
            closed: Vec::new(),
            zip: format::zip::Zip::default(),
            single_name: None,
            batch_docs: 0,
            docs: 0,
            debit: Decimal::ZERO,
            credit: Decimal::ZERO,
            period: None,
            requested: None,
            entries: None,
            counter: None,
            journal: String::new(),
            numbers: Vec::new(),
        }
    }

    /// Names the batch after the period an export asked for.
    pub fn for_period(mut self, from: NaiveDate, to: NaiveDate) -> Self {
        self.requested = Some((from, to));
        self
    }

    /// Target name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Documents delivered so far in this run.
    pub fn delivered(&self) -> u64 {
        self.docs
    }

    fn begin(&mut self, ledger: &dyn Ledger) -> Result<(), TargetError> {
        std::fs::create_dir_all(&self.out_dir).map_err(io_err(&self.out_dir))?;
        // The temp and final paths are recorded absolute: the recovery that removes or
        // publishes them may run from another folder (daemon, cron with --config /abs/…).
        if let Ok(dir) = std::path::absolute(&self.out_dir) {
            self.out_dir = dir;
        }
        let batch = ledger.begin_batch(&self.job, &self.name, &self.out_dir)?;
        let tmp = batch.tmp_path.clone();
        let file = fsutil::create_with_mode(&tmp, self.cfg.file_mode).map_err(io_err(&tmp))?;
        let mut open = Open {
            batch,
            file: BufWriter::new(file),
            hasher: Sha256::new(),
            size: 0,
        };
        let enc = self.layout.encoding;
        let mut head = text::preamble(enc).to_vec();
        head.extend(text::encode(&self.layout.header(), enc));
        write_counted(&mut open, &head).map_err(io_err(&tmp))?;
        self.open = Some(Current {
            batch: open.batch.clone(),
            size: open.size,
            writer: Writer::start(ledger.shared(), open, &self.name)?,
        });
        Ok(())
    }

    /// Number registrations (the run's duplicate checks) to record before the next page's
    /// claims, in the writer's order: a number is never delivered unregistered.
    pub fn register_numbers(&mut self, numbers: Vec<(String, serde_json::Value)>) {
        self.numbers.extend(numbers);
    }

    /// Whether number registrations wait for the next page.
    pub fn has_numbers(&self) -> bool {
        !self.numbers.is_empty()
    }

    /// Claims and writes one page of documents; `others` (held records) are recorded in the
    /// same group commit.
    ///
    /// # Errors
    ///
    /// Ledger or file failure: the batch is left open and is rolled back by the next run.
    pub fn deliver_page(
        &mut self,
        ledger: &dyn Ledger,
        mut docs: Vec<(Arc<MappedDocument>, Record)>,
        others: Vec<Record>,
        run_id: &str,
    ) -> Result<(), TargetError> {
        let Some(lot) = self.lot_size() else {
            return self.deliver_chunk(ledger, docs, others, run_id);
        };
        // A Chorus Pro lot holds at most `lot` documents: a full lot is completed and the next
        // one begun, each its own batch.
        let mut others = Some(others);
        loop {
            let room = lot.saturating_sub(self.batch_docs as usize);
            if room == 0 && !docs.is_empty() && !self.dry_run {
                self.close(ledger)?;
                continue;
            }
            let rest = docs.split_off(docs.len().min(room.max(1)));
            self.deliver_chunk(ledger, docs, others.take().unwrap_or_default(), run_id)?;
            if rest.is_empty() {
                return Ok(());
            }
            docs = rest;
        }
    }

    fn lot_size(&self) -> Option<usize> {
        self.layout
            .format
            .is_einvoice()
            .then(|| self.cfg.lot_size.unwrap_or(500))
    }

    fn deliver_chunk(
        &mut self,
        ledger: &dyn Ledger,
        mut docs: Vec<(Arc<MappedDocument>, Record)>,
        others: Vec<Record>,
        run_id: &str,
    ) -> Result<(), TargetError> {
        if self.dry_run {
            self.docs += docs.len() as u64;
            self.numbers.clear();
            return Ok(());
        }
        run_id.clone_into(&mut self.run_id);
        if docs.is_empty() {
            if !self.numbers.is_empty() {
                ledger.put_values(&std::mem::take(&mut self.numbers))?;
            }
            ledger.put_records(&others)?;
            return Ok(());
        }
        if self.open.is_none() {
            self.begin(ledger)?;
        }
        docs.sort_by(|a, b| {
            (a.0.doc.issue_date, &a.0.doc.number).cmp(&(b.0.doc.issue_date, &b.0.doc.number))
        });
        let journal = self
            .journal_code
            .clone()
            .unwrap_or_else(|| docs[0].0.entry.journal_code.clone());
        self.journal.clone_from(&journal);
        let counter_name = format!("entry\0{}\0{journal}", self.name);
        let mut next = match &self.counter {
            Some((_, n)) => *n,
            None => ledger.counter(&counter_name)?,
        };
        let mut page_bytes: Vec<u8> = Vec::new();
        let base_offset = self.open.as_ref().map_or(0, |o| o.size);
        let mut claimed = Vec::with_capacity(docs.len());
        let open_id = self.open.as_ref().map(|o| o.batch.id);
        let now = Utc::now();
        let (mds, recs): (Vec<_>, Vec<_>) = docs
            .into_iter()
            .map(|(md, rec)| {
                // A journal code given on the command line replaces the mapping's, in this
                // batch only.
                let md = match &self.journal_code {
                    Some(code) if *code != md.entry.journal_code => {
                        let mut m = MappedDocument::clone(&md);
                        m.entry.journal_code.clone_from(code);
                        Arc::new(m)
                    }
                    _ => md,
                };
                (md, rec)
            })
            .unzip();
        let (parts, lines) =
            render::page(&self.layout, &mds, next, self.state.lines, self.valid_date);
        self.state.lines = lines;
        for ((md, mut rec), part) in mds.into_iter().zip(recs).zip(parts) {
            let num = fec::entry_number(&journal, next);
            if !part.xml {
                page_bytes.extend(part.bytes);
            } else if self.lot_size() == Some(1) {
                // One document per file: the XML itself, named after the document.
                self.single_name = Some(format::einvoice_name(&self.layout, &md.doc.number));
                page_bytes.extend(part.bytes);
            } else {
                let name = format::einvoice_name(&self.layout, &md.doc.number);
                let offset = base_offset + page_bytes.len() as u64;
                page_bytes.extend(
                    self.zip
                        .entry(&name, &part.bytes, md.doc.issue_date, offset),
                );
            }
            let payload_hash = part.hash;
            next += 1;
            let (d, c) = md.entry.sums();
            // Each entry is bounded by the checks' gate: a batch cannot reach Decimal's limit.
            self.debit = self.debit.saturating_add(d);
            self.credit = self.credit.saturating_add(c);
            self.docs += 1;
            self.batch_docs += 1;
            let date = md.doc.issue_date;
            self.period = Some(match self.period {
                Some((a, b)) => (a.min(date), b.max(date)),
                None => (date, date),
            });
            self.entries = Some(match self.entries.take() {
                Some((first, _)) => (first, num.clone()),
                None => (num.clone(), num.clone()),
            });
            rec.payload_hash = Some(hex::encode(payload_hash));
            rec.batch_id = open_id;
            rec.attempts += 1;
            rec.transition(
                State::Claimed,
                format!(
                    "run {run_id}: claimed for export batch {}",
                    open_id.unwrap_or(0)
                ),
                now,
            );
            claimed.push(rec);
        }
        self.counter = Some((counter_name, next));
        let Some(cur) = self.open.as_mut() else {
            return Ok(());
        };
        let bytes = page_bytes;
        // The writer claims (flushed) then writes, while this thread goes on with the next page.
        cur.size += bytes.len() as u64;
        cur.writer.send(PageWrite {
            numbers: std::mem::take(&mut self.numbers),
            claimed,
            others,
            bytes,
        })
    }

    /// Waits until the pages handed to the writer are claimed and written, so that the ledger
    /// reads as if this thread had written them (before a page that repeats an id, before the
    /// re-check of held documents).
    ///
    /// # Errors
    ///
    /// The error that stopped the writer.
    pub fn settle(&mut self) -> Result<(), TargetError> {
        match self.open.as_mut() {
            Some(cur) => cur.writer.settle(),
            None => Ok(()),
        }
    }

    /// Completes the batch: fsync, ledger commit, rename into place. `None` when nothing was
    /// delivered (no empty file is produced).
    ///
    /// # Errors
    ///
    /// Ledger or file failure; a batch not committed is rolled back by the next run.
    pub fn finish(mut self, ledger: &dyn Ledger) -> Result<Vec<Batch>, TargetError> {
        self.close(ledger)?;
        Ok(self.closed)
    }

    /// Batches completed so far in this run (kept when a later one fails).
    pub fn closed(&self) -> &[Batch] {
        &self.closed
    }

    /// Completes the open batch, if any, and readies the run for the next one.
    fn close(&mut self, ledger: &dyn Ledger) -> Result<(), TargetError> {
        let Some(cur) = self.open.take() else {
            return Ok(());
        };
        let batch = cur.batch.clone();
        let mut committed = false;
        let result = self.close_open(ledger, cur, &mut committed);
        if let Err(e) = &result {
            if !committed {
                // A page that failed on the writer, or a failed fsync or commit: the batch is
                // rolled back now (its claims released, its temp file gone), not only by the
                // next start's recovery (the daemon's is at its start).
                let _ = std::fs::remove_file(&batch.tmp_path);
                if let Err(a) =
                    ledger.abort_batch(&batch, &format!("closing the batch failed: {e}"))
                {
                    tracing::error!(target = %self.name, error = %a, "The batch could not be rolled back; the next start's recovery does it.");
                }
            }
        }
        result
    }

    /// [`JournalRun::close`] of the batch `cur`; `committed` is set once the ledger holds it.
    fn close_open(
        &mut self,
        ledger: &dyn Ledger,
        cur: Current,
        committed: &mut bool,
    ) -> Result<(), TargetError> {
        let mut open = cur.writer.finish()?;
        let tmp = open.batch.tmp_path.clone();
        if self.layout.format.is_einvoice() && self.single_name.is_none() {
            let end = self.zip.finish(open.size);
            write_counted(&mut open, &end).map_err(io_err(&tmp))?;
        }
        open.file.flush().map_err(io_err(&tmp))?;
        open.file.get_ref().sync_all().map_err(io_err(&tmp))?;
        fault::point("after-write", &self.name);
        // An export is named after the period asked for; a sync after the documents it holds.
        let (from, to) = self
            .requested
            .or(self.period)
            .unwrap_or((self.valid_date, self.valid_date));
        let journal = self.journal.clone();
        // Fixed names (the FEC's SIREN + FEC + closing date, Ciel's XIMPORT.TXT) get a folder
        // per batch so that batches never overwrite each other.
        let (folder, file_name) = format::file_location(
            &self.layout,
            &self.company.siren,
            self.company.fiscal_year_closing(to),
            open.batch.id,
            from,
            to,
            &journal,
        );
        // A lone Chorus Pro document keeps its own name, in a folder per batch.
        let (folder, file_name) = match self.single_name.take() {
            Some(name) => (
                Some(format!(
                    "{}_B{:06}",
                    self.layout.format.as_str(),
                    open.batch.id
                )),
                name,
            ),
            None => (folder, file_name),
        };
        let rel = match &folder {
            Some(f) => Path::new(f).join(&file_name),
            None => PathBuf::from(&file_name),
        };
        let path = fsutil::join_under(&self.out_dir, &rel).ok_or_else(|| TargetError::Io {
            path: rel.display().to_string(),
            source: std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "the file name would leave the target's out_dir",
            ),
        })?;
        let dir = path.parent().unwrap_or(&self.out_dir).to_path_buf();
        std::fs::create_dir_all(&dir).map_err(io_err(&dir))?;
        let batch = Batch {
            id: open.batch.id,
            job: self.job.clone(),
            target: self.name.clone(),
            format: self.cfg.format.as_str().to_owned(),
            journal,
            period_from: from,
            period_to: to,
            file_name,
            path: path.clone(),
            sha256: hex::encode(open.hasher.clone().finalize()),
            size: open.size,
            documents: self.batch_docs,
            total_debit: self.debit,
            total_credit: self.credit,
            entries: self.entries.clone(),
            status: BatchStatus::Active,
            origin: self.origin.clone(),
            run_id: self.run_id.clone(),
            created_at: Utc::now(),
            cancelled_at: None,
            file_mode: Some(self.cfg.file_mode),
        };
        let mut reader = File::open(&tmp).map_err(io_err(&tmp))?;
        let counters = self.counter.clone().into_iter().collect();
        ledger.commit_batch(
            &open.batch,
            BatchCommit {
                batch: &batch,
                counters,
            },
            &mut reader,
        )?;
        *committed = true;
        fault::point("after-commit", &self.name);
        std::fs::rename(&tmp, &path).map_err(io_err(&path))?;
        fsutil::sync_dir(&dir).map_err(io_err(&dir))?;
        fault::point("after-publish", &self.name);
        ledger.mark_published(batch.id)?;
        self.closed.push(batch);
        self.batch_docs = 0;
        self.debit = Decimal::ZERO;
        self.credit = Decimal::ZERO;
        self.period = None;
        self.entries = None;
        self.zip = format::zip::Zip::default();
        self.state = FileState::default();
        Ok(())
    }

    /// Gives up the batch after an error: temp file removed, claims released.
    ///
    /// # Errors
    ///
    /// Ledger failure (the next run's recovery then does the same).
    pub fn abort(mut self, ledger: &dyn Ledger, why: &str) -> Result<(), TargetError> {
        self.closed.clear();
        if let Some(cur) = self.open.take() {
            // The writer's own error, if any, is the run's error already.
            let _ = cur.writer.finish();
            let _ = std::fs::remove_file(&cur.batch.tmp_path);
            ledger.abort_batch(&cur.batch, why)?;
        }
        Ok(())
    }
}

/// Puts a committed batch's file in place from the ledger's bytes when it is missing or differs
/// (a run stopped between the commit and the rename), then marks it published. `resolve` turns
/// a path an older version recorded relative into one from here (the config's folder).
///
/// # Errors
///
/// Ledger or file failure.
pub fn publish(
    ledger: &dyn Ledger,
    batch: &Batch,
    resolve: impl Fn(&Path) -> PathBuf,
) -> Result<bool, TargetError> {
    // A batch cancelled before its file was put in place never gets an importable file.
    if batch.status == BatchStatus::Cancelled {
        ledger.mark_published(batch.id)?;
        return Ok(false);
    }
    // A batch recorded by an older version with a name built from unchecked data is never
    // recreated outside its folder.
    if batch
        .path
        .components()
        .any(|c| matches!(c, std::path::Component::ParentDir))
    {
        tracing::warn!(
            batch = batch.id,
            path = %batch.path.display(),
            "Batch path leaves its folder: not written; `facto exports download` gives its bytes."
        );
        ledger.mark_published(batch.id)?;
        return Ok(false);
    }
    let path = resolve(&batch.path);
    let rewritten = !std::fs::read(&path).is_ok_and(|b| batch.holds(&b));
    if rewritten {
        let bytes = ledger.batch_file(batch.id)?;
        let mode = batch.file_mode.unwrap_or(config::DEFAULT_FILE_MODE);
        fsutil::write_atomic(&path, &bytes, Some(mode)).map_err(io_err(&path))?;
    }
    // The temp file sits in the target's folder: the file's own, or its parent for FEC batches.
    // Committed after its fsync, it holds exactly the batch's bytes; a temp file of that name
    // with other bytes is another configuration's write in a shared folder: left alone.
    for dir in path.ancestors().skip(1).take(2) {
        let tmp = dir.join(OpenBatch::tmp_name(batch.id));
        if std::fs::read(&tmp).is_ok_and(|b| batch.holds(&b)) {
            let _ = std::fs::remove_file(&tmp);
        }
    }
    ledger.mark_published(batch.id)?;
    Ok(rewritten)
}

/// How long a temp file stays untouched before the sweep takes it for a dead run's: a live run
/// writes its temp file page by page, far more often than this.
const STALE_TEMP: std::time::Duration = std::time::Duration::from_secs(60 * 60);

/// Removes, from every journal-file target's folder (`out_dirs`) and its direct subfolders (FEC
/// batches have a folder each), the temp files of this ledger's batches that a kill left: those of a batch just
/// rolled back (wherever a run put them), and stale ones (untouched for an hour) named after a
/// batch this ledger knows (`.batch-N.facto-tmp`, or `.<its file name>.facto-tmp` of a publish).
/// Any other temp file may be another facto configuration's write in progress in a shared
/// folder: it is left alone. Only for recovery, once every open batch was rolled back. Returns how
/// many were removed.
pub fn sweep_temps(
    out_dirs: impl IntoIterator<Item = PathBuf>,
    ledger: &dyn Ledger,
    rolled_back: &[OpenBatch],
) -> usize {
    // Once per folder: connectors often share one (the demo's layouts all write to `out`).
    let dirs: std::collections::BTreeSet<PathBuf> = out_dirs.into_iter().collect();
    let rolled: std::collections::HashSet<String> = rolled_back
        .iter()
        .map(|o| OpenBatch::tmp_name(o.id))
        .collect();
    // This ledger's temp names, read only if a stale temp file is found.
    let mut known: Option<std::collections::HashSet<String>> = None;
    let mut removed = 0;
    for dir in dirs {
        for f in temp_files(&dir) {
            let Some(name) = f.file_name().and_then(|n| n.to_str()).map(str::to_owned) else {
                continue;
            };
            let ours = rolled.contains(&name) || {
                let stale = std::fs::symlink_metadata(&f)
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| t.elapsed().ok())
                    .is_some_and(|age| age > STALE_TEMP);
                stale
                    && known
                        .get_or_insert_with(|| known_temp_names(ledger))
                        .contains(&name)
            };
            if ours && std::fs::remove_file(&f).is_ok() {
                removed += 1;
            }
        }
    }
    removed
}

/// The `.*.facto-tmp` files in `dir` and its direct subfolders.
fn temp_files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut subdirs = Vec::new();
    let mut files = Vec::new();
    for e in entries.flatten() {
        match e.file_type() {
            Ok(t) if t.is_dir() => subdirs.push(e.path()),
            Ok(t) if t.is_file() => files.push(e.path()),
            _ => {}
        }
    }
    for sub in subdirs {
        if let Ok(rd) = std::fs::read_dir(&sub) {
            files.extend(
                rd.flatten()
                    .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
                    .map(|e| e.path()),
            );
        }
    }
    files.retain(|f| {
        f.file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with('.') && n.ends_with(".facto-tmp"))
    });
    files
}

/// The temp file names this ledger's batches can leave: the batch's own and a publish's.
fn known_temp_names(ledger: &dyn Ledger) -> std::collections::HashSet<String> {
    let batches = ledger.batches().unwrap_or_default();
    let mut names = std::collections::HashSet::with_capacity(batches.len() * 2);
    for b in batches {
        names.insert(OpenBatch::tmp_name(b.id));
        names.insert(format!(".{}.facto-tmp", b.file_name));
    }
    names
}

/// What became of a cancelled batch's file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SetAside {
    /// Renamed to this path (`….cancelled`), so it cannot be imported by mistake.
    Renamed(PathBuf),
    /// No file at its path (already moved or deleted).
    Missing(PathBuf),
    /// The file there is not the batch's (other bytes): left alone.
    Changed(PathBuf),
}

/// Renames a cancelled batch's file to `<name>.cancelled` in its folder, if it is still there
/// with the batch's bytes. `resolve` turns a recorded relative path into one from here.
///
/// # Errors
///
/// The rename fails.
pub fn set_aside(batch: &Batch, resolve: impl Fn(&Path) -> PathBuf) -> std::io::Result<SetAside> {
    let path = resolve(&batch.path);
    let Ok(bytes) = std::fs::read(&path) else {
        return Ok(SetAside::Missing(path));
    };
    if !batch.holds(&bytes) {
        return Ok(SetAside::Changed(path));
    }
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".cancelled");
    let to = path.with_file_name(name);
    std::fs::rename(&path, &to)?;
    if let Some(dir) = to.parent() {
        fsutil::sync_dir(dir)?;
    }
    Ok(SetAside::Renamed(to))
}

/// Journal files keep their batch protocol (open marker, claims, bytes, commit, publish) behind
/// the same object as the API targets; they have nothing to reconcile or poll.
impl super::TargetRun for JournalRun {
    fn name(&self) -> &str {
        JournalRun::name(self)
    }

    fn delivered(&self) -> u64 {
        JournalRun::delivered(self)
    }

    fn reconcile<'a>(
        &'a mut self,
        _ledger: &'a dyn Ledger,
    ) -> super::driver::BoxFuture<'a, Result<Vec<String>, TargetError>> {
        Box::pin(async { Ok(Vec::new()) })
    }

    fn poll<'a>(
        &'a mut self,
        _ledger: &'a dyn Ledger,
    ) -> super::driver::BoxFuture<'a, Result<Vec<String>, TargetError>> {
        Box::pin(async { Ok(Vec::new()) })
    }

    fn deliver_page<'a>(
        &'a mut self,
        ledger: &'a dyn Ledger,
        docs: Vec<super::driver::Doc>,
        others: Vec<Record>,
        run_id: &'a str,
    ) -> super::driver::BoxFuture<'a, Result<(), TargetError>> {
        Box::pin(async move { JournalRun::deliver_page(self, ledger, docs, others, run_id) })
    }

    fn offline_problems(
        &self,
        _ledger: &dyn Ledger,
        _origin: &str,
        _md: &MappedDocument,
    ) -> Result<Vec<crate::problem::Problem>, TargetError> {
        Ok(Vec::new())
    }

    fn layout(&self) -> Option<Layout> {
        Some(self.layout)
    }

    fn journal(&mut self) -> Option<&mut JournalRun> {
        Some(self)
    }

    fn into_journal(self: Box<Self>) -> Option<Box<JournalRun>> {
        Some(self)
    }
}
