//! The ledger: the single source of truth for what was sent where (SPEC §5). This module owns the
//! record and batch types and the state machine; `rules` applies it over any [`store::Store`],
//! `sled` (on disk) or [`store::MemStore`]; `conformance` proves both by the same tests. Nothing
//! else writes state.
//!
//! States of a (job, target, document) record:
//! `held` → `claimed` (flushed before any file write or network call) → `delivered` →
//! target follow-ups (`accepted`, `rejected`, `paid`). `released` marks a document freed by a
//! cancelled or rolled-back batch, or by `ledger retry`: it is eligible again. `failed` is a
//! permanent refusal by the target.

#[cfg(test)]
pub(crate) mod conformance;
mod error;
mod keys;
mod migrate;
pub mod postgres;
mod record;
mod rules;
pub mod sled;
pub mod store;
mod transition;

pub use error::LedgerError;
pub use record::{ChangeNote, Event, FieldChange, Record, RecordKey};
pub use rules::StoreLedger;

pub use transition::IllegalTransition;

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Version of the on-disk layout. Opening a ledger of another version fails, except that an
/// earlier one is upgraded in place, once: version 1 lacked the state indexes, version 2 joined
/// ids into keys unescaped (see `keys`). An older facto then refuses the upgraded ledger rather
/// than write keys or indexes it does not know.
pub const SCHEMA_VERSION: u32 = 3;

/// State of one (job, target, document) record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum State {
    /// A mapping or check problem; re-checked on every run.
    Held,
    /// Payload built and recorded; delivery in progress (or interrupted: look it up first).
    Claimed,
    /// Written to an export batch, or accepted by the remote API (remote id recorded).
    Delivered,
    /// Eligible again: its batch was cancelled or rolled back, or an admin asked for a retry.
    Released,
    /// The target accepted the document after processing (API targets).
    Accepted,
    /// The target rejected the document after delivery (API targets); a human must act.
    Rejected,
    /// The target reports the document paid (API targets).
    Paid,
    /// The target refused the document permanently at delivery.
    Failed,
}

impl State {
    /// All states, for parsing and listing.
    pub const ALL: [State; 8] = [
        State::Held,
        State::Claimed,
        State::Delivered,
        State::Released,
        State::Accepted,
        State::Rejected,
        State::Paid,
        State::Failed,
    ];

    /// The state's name, as in `--state`.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Held => "held",
            State::Claimed => "claimed",
            State::Delivered => "delivered",
            State::Released => "released",
            State::Accepted => "accepted",
            State::Rejected => "rejected",
            State::Paid => "paid",
            State::Failed => "failed",
        }
    }

    /// Parses a state name.
    pub fn parse(s: &str) -> Option<State> {
        State::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// One byte stored before the record, so that counting states reads no JSON.
    fn code(self) -> u8 {
        State::ALL.iter().position(|s| *s == self).unwrap_or(0) as u8
    }

    fn from_code(b: u8) -> Option<State> {
        State::ALL.get(usize::from(b)).copied()
    }

    /// True when the document reached the target (it must never be sent there again by `sync`).
    pub fn is_delivered(self) -> bool {
        matches!(
            self,
            State::Delivered | State::Accepted | State::Rejected | State::Paid
        )
    }

    /// True when a run may (re)process the document for this target.
    pub fn is_eligible(self) -> bool {
        matches!(self, State::Held | State::Released)
    }
}

/// Status of an export batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BatchStatus {
    /// Its documents count as exported.
    Active,
    /// Kept for history; its documents are free again.
    Cancelled,
}

/// One export batch: one journal file (or file set) for a job, target, journal and period.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Batch {
    /// Sequential id.
    pub id: u64,
    /// Job.
    pub job: String,
    /// Target connector.
    pub target: String,
    /// File format.
    pub format: String,
    /// Journal code.
    pub journal: String,
    /// First document date.
    pub period_from: NaiveDate,
    /// Last document date.
    pub period_to: NaiveDate,
    /// File name.
    pub file_name: String,
    /// Where the file was written.
    pub path: PathBuf,
    /// SHA-256 of the file.
    pub sha256: String,
    /// Size in bytes.
    pub size: u64,
    /// Documents in the batch.
    pub documents: u64,
    /// Sum of debits.
    pub total_debit: Decimal,
    /// Sum of credits.
    pub total_credit: Decimal,
    /// First and last entry numbers.
    pub entries: Option<(String, String)>,
    /// Active or cancelled.
    pub status: BatchStatus,
    /// Created by `sync` or `export`.
    pub origin: String,
    /// Run that produced it.
    pub run_id: String,
    /// When it was written.
    pub created_at: DateTime<Utc>,
    /// When it was cancelled.
    pub cancelled_at: Option<DateTime<Utc>>,
    /// Permissions of its file (the target's `file_mode`); absent in older ledgers.
    #[serde(default)]
    pub file_mode: Option<u32>,
}

impl Batch {
    /// Whether `bytes` are this batch's bytes (their sha256 is the one recorded): the test for a
    /// file found where the batch's file should be, and for the stored copy.
    pub fn holds(&self, bytes: &[u8]) -> bool {
        use sha2::{Digest, Sha256};
        hex::encode(Sha256::digest(bytes)) == self.sha256
    }
}

/// A batch being written: recorded (and flushed) before its file is started, so that an
/// interrupted run can be rolled back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OpenBatch {
    /// Batch id.
    pub id: u64,
    /// Job.
    pub job: String,
    /// Target.
    pub target: String,
    /// The temporary file being written.
    pub tmp_path: PathBuf,
    /// Started at.
    pub started_at: DateTime<Utc>,
}

impl OpenBatch {
    /// Name of the temp file of batch `id`, beside the final file.
    pub fn tmp_name(id: u64) -> String {
        format!(".batch-{id:06}.facto-tmp")
    }
}

/// Everything a batch commit writes at once.
#[derive(Debug)]
pub struct BatchCommit<'a> {
    /// The finished batch.
    pub batch: &'a Batch,
    /// Continuous numbering counters to advance (`name`, next value).
    pub counters: Vec<(String, u64)>,
}

/// What the recovery at start-up found and did.
#[derive(Debug, Default)]
pub struct Recovery {
    /// Batches that were being written when a run stopped: rolled back; their temp files.
    pub rolled_back: Vec<OpenBatch>,
    /// Documents freed by those roll-backs.
    pub released: u64,
    /// Committed batches whose file may not be in place yet.
    pub unpublished: Vec<Batch>,
}

/// Filter for [`Ledger::list`].
#[derive(Debug, Default, Clone)]
pub struct RecordFilter {
    /// Only this job.
    pub job: Option<String>,
    /// Only this target.
    pub target: Option<String>,
    /// Only this state.
    pub state: Option<State>,
}

/// Source cursor of a job, as the source defines it, plus a rescan request.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Cursor {
    /// Source-specific position.
    pub state: serde_json::Value,
    /// Set by `exports cancel` and `ledger retry`: the next sync reads the source from the start.
    pub rescan: bool,
}

/// An admin action, kept forever.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEvent {
    /// When.
    pub at: DateTime<Utc>,
    /// What (`forget`, `retry`, `cancel-batch`...).
    pub action: String,
    /// On what, and anything worth keeping.
    pub detail: String,
    /// Who acted: `cli`, `api`, `console:admin`, `console:accountant`, or `sync` for what a
    /// pass does on its own; "" in the records written before it was kept (the command line).
    #[serde(default)]
    pub who: String,
}

/// Who acts, in the audit log: a command typed at the command line (run here or forwarded,
/// signed, to the daemon).
pub const WHO_CLI: &str = "cli";
/// Who acts, in the audit log: a caller of the admin API with the admin token.
pub const WHO_API: &str = "api";
/// Who acts, in the audit log: a pass of a job, on its own.
pub const WHO_SYNC: &str = "sync";

/// A ledger whatever its store, shared between the tasks of a process (the daemon's, a
/// command's).
pub type SharedLedger = std::sync::Arc<dyn Ledger>;

/// The ledger in memory, for tests (see [`store::MemStore`]).
pub type MemLedger = StoreLedger<store::MemStore>;

/// Result alias.
pub type Result<T> = std::result::Result<T, LedgerError>;

/// The ledger's operations. Every method that changes state flushes to disk before it returns.
pub trait Ledger: Send + Sync {
    /// Another handle on this same ledger, for a thread of its own (a journal file's writer):
    /// it shares the store, the open batches and the write lock; nothing is copied.
    fn shared(&self) -> std::sync::Arc<dyn Ledger>;

    /// Its size on disk, when its store has one of its own (sled's folder; not a database
    /// server's).
    fn size_on_disk(&self) -> Option<u64> {
        None
    }

    /// Reads one record.
    ///
    /// # Errors
    ///
    /// Storage or decoding failure.
    fn get(&self, key: &RecordKey) -> Result<Option<Record>>;

    /// Reads several records at once, in the order of `keys` (one round trip to a database
    /// server, where [`Ledger::get`] takes one each).
    ///
    /// # Errors
    ///
    /// Storage or decoding failure.
    fn get_many(&self, keys: &[RecordKey]) -> Result<Vec<Option<Record>>> {
        keys.iter().map(|k| self.get(k)).collect()
    }

    /// Writes records (held, released, follow-ups) in one atomic batch and flushes.
    ///
    /// # Errors
    ///
    /// Storage failure.
    fn put_records(&self, records: &[Record]) -> Result<()>;

    /// [`Ledger::put_records`], provided each record is still in the state it was read in
    /// (`expected`, one per record): the check and the write are one step against every other
    /// writer of the ledger, so an admin's change never overwrites a claim or a delivery a pass
    /// made meanwhile.
    ///
    /// # Errors
    ///
    /// [`LedgerError::Invalid`] naming the record that changed (nothing is written); storage
    /// failure.
    fn put_records_if(&self, records: &[Record], expected: &[State]) -> Result<()>;

    /// Claims `claims` and writes `others` (held, released) in one atomic batch, as workers
    /// sharing the ledger need: the claims are written only if none of their records was
    /// claimed or delivered meanwhile, by another worker (else none is, and their keys come
    /// back: the caller sends nothing of them); a record of `others` held or released is not
    /// written over one no longer eligible.
    ///
    /// # Errors
    ///
    /// Storage failure.
    fn put_claims(&self, claims: &[Record], others: &[Record]) -> Result<Vec<RecordKey>>;

    /// Writes `records` provided each is still as it was read (`read`: its `updated_at` then,
    /// `None` for a record not stored), checked in the same step as the write: a worker takes
    /// over a claim left by another only if no one else did meanwhile. `false`, and nothing
    /// written, when one changed.
    ///
    /// # Errors
    ///
    /// Storage failure.
    fn put_records_unchanged(
        &self,
        records: &[Record],
        read: &[Option<DateTime<Utc>>],
    ) -> Result<bool>;

    /// Takes the lock `name` across the workers sharing the ledger, waiting for it, until
    /// [`Ledger::unlock_name`]; nothing to do for a ledger one process holds alone. Use
    /// [`crate::targets::one_at_a_time`], which also serializes this process's tasks.
    ///
    /// # Errors
    ///
    /// Storage failure.
    fn lock_name(&self, _name: &str) -> Result<()> {
        Ok(())
    }

    /// Lets go of what [`Ledger::lock_name`] took; best effort.
    fn unlock_name(&self, _name: &str) {}

    /// Takes the lock `name` as [`Ledger::lock_name`] does if no other worker holds it, without
    /// waiting: `false` when another does. Always `true` for a ledger one process holds alone.
    ///
    /// # Errors
    ///
    /// Storage failure.
    fn try_lock_name(&self, _name: &str) -> Result<bool> {
        Ok(true)
    }

    /// This process's worker id, when several workers share the ledger (`None`: this process
    /// holds the ledger alone).
    fn worker(&self) -> Option<String> {
        None
    }

    /// Whether worker `id` is still running (holding the ledger); a worker that is gone left
    /// its claims to be settled by the others.
    ///
    /// # Errors
    ///
    /// Storage failure.
    fn worker_alive(&self, _id: &str) -> Result<bool> {
        Ok(false)
    }

    /// The ids of the live workers sharing the ledger, this one among them, in order; empty
    /// for a ledger one process holds alone. A run reads its share of the source first by them.
    ///
    /// # Errors
    ///
    /// Storage failure.
    fn workers(&self) -> Result<Vec<String>> {
        Ok(Vec::new())
    }

    /// Lists records matching the filter, in key order.
    ///
    /// # Errors
    ///
    /// Storage or decoding failure.
    fn list(&self, filter: &RecordFilter) -> Result<Vec<Record>>;

    /// [`Ledger::list`] one record at a time, in the same order, none kept: for a pass over
    /// every record of a job whose memory must not grow with it.
    ///
    /// # Errors
    ///
    /// Storage or decoding failure, or the first error `each` returns (the pass stops there).
    fn visit(
        &self,
        filter: &RecordFilter,
        each: &mut dyn FnMut(Record) -> Result<()>,
    ) -> Result<()> {
        for r in self.list(filter)? {
            each(r)?;
        }
        Ok(())
    }

    /// Records whose document id or number is `doc`, across jobs and targets.
    ///
    /// # Errors
    ///
    /// Storage or decoding failure.
    fn find(&self, doc: &str) -> Result<Vec<Record>>;

    /// The records of `job` whose document id or number is `doc` (a credit note's invoice), in
    /// key order.
    ///
    /// # Errors
    ///
    /// Storage or decoding failure.
    fn find_in_job(&self, job: &str, doc: &str) -> Result<Vec<Record>> {
        Ok(self
            .find(doc)?
            .into_iter()
            .filter(|r| r.key.job == job)
            .collect())
    }

    /// Counts the records of a job and target per state (reads no JSON).
    ///
    /// # Errors
    ///
    /// Storage failure.
    fn count_states(&self, job: &str, target: &str) -> Result<BTreeMap<State, u64>>;

    /// Removes a record, keeping an audit event.
    ///
    /// # Errors
    ///
    /// No such record, or storage failure.
    fn forget(&self, key: &RecordKey, audit: AuditEvent) -> Result<Record>;

    /// Allocates the next batch id and records the open batch (flushed); its temp file is
    /// [`OpenBatch::tmp_name`] in `dir`.
    ///
    /// # Errors
    ///
    /// Storage failure.
    fn begin_batch(&self, job: &str, target: &str, dir: &std::path::Path) -> Result<OpenBatch>;

    /// Records claims (state `claimed`, batch id set) and other records (held) in one atomic
    /// batch, then flushes: the group commit done before any byte of the file is written.
    ///
    /// # Errors
    ///
    /// Storage failure.
    fn claim(&self, open: &OpenBatch, claimed: &[Record], others: &[Record]) -> Result<()>;

    /// [`Ledger::claim`] with `values` ([`Ledger::put_values`]: a page's number registrations)
    /// in the same atomic batch, under one flush: the numbers are never recorded without their
    /// claims, nor the claims without them.
    ///
    /// # Errors
    ///
    /// Storage failure.
    fn claim_with_values(
        &self,
        open: &OpenBatch,
        claimed: &[Record],
        others: &[Record],
        values: &[(String, serde_json::Value)],
    ) -> Result<()> {
        self.put_values(values)?;
        self.claim(open, claimed, others)
    }

    /// Stores the file and marks every claimed document of the batch delivered; the batch becomes
    /// active in one final atomic write, flushed. Until then a crash rolls the batch back.
    ///
    /// # Errors
    ///
    /// Storage failure.
    fn commit_batch(
        &self,
        open: &OpenBatch,
        commit: BatchCommit<'_>,
        file: &mut dyn std::io::Read,
    ) -> Result<()>;

    /// Gives up an open batch: its claimed documents are released, its marker removed.
    ///
    /// # Errors
    ///
    /// Storage failure.
    fn abort_batch(&self, open: &OpenBatch, note: &str) -> Result<u64>;

    /// Notes that a committed batch's file is in place.
    ///
    /// # Errors
    ///
    /// Storage failure.
    fn mark_published(&self, id: u64) -> Result<()>;

    /// Rolls back interrupted batches and lists committed ones whose file may be missing.
    ///
    /// # Errors
    ///
    /// Storage failure.
    fn recover(&self) -> Result<Recovery>;

    /// One batch.
    ///
    /// # Errors
    ///
    /// Storage or decoding failure.
    fn batch(&self, id: u64) -> Result<Option<Batch>>;

    /// All batches, oldest first.
    ///
    /// # Errors
    ///
    /// Storage or decoding failure.
    fn batches(&self) -> Result<Vec<Batch>>;

    /// The exact bytes of a batch's file.
    ///
    /// # Errors
    ///
    /// No such batch, or storage failure.
    fn batch_file(&self, id: u64) -> Result<Vec<u8>>;

    /// Keys of the documents of a batch.
    ///
    /// # Errors
    ///
    /// Storage failure.
    fn batch_documents(&self, id: u64) -> Result<Vec<RecordKey>>;

    /// Cancels a batch: kept in history as cancelled; its documents are released.
    ///
    /// # Errors
    ///
    /// No such batch, already cancelled, or storage failure.
    fn cancel_batch(&self, id: u64, audit: AuditEvent) -> Result<(Batch, u64)>;

    /// A numbering counter's next value (1 if never used).
    ///
    /// # Errors
    ///
    /// Storage failure.
    fn counter(&self, name: &str) -> Result<u64>;

    /// The job's source cursor.
    ///
    /// # Errors
    ///
    /// Storage or decoding failure.
    fn cursor(&self, job: &str) -> Result<Option<Cursor>>;

    /// Asks the next sync of `job` to read its source from the start (flushed): after a cancel,
    /// a retry or a forget, so that freed documents are seen again.
    ///
    /// # Errors
    ///
    /// Storage failure.
    fn request_rescan(&self, job: &str) -> Result<()> {
        let mut c = self.cursor(job)?.unwrap_or_default();
        c.rescan = true;
        self.set_cursor(job, &c)
    }

    /// Saves the job's source cursor (flushed).
    ///
    /// # Errors
    ///
    /// Storage failure.
    fn set_cursor(&self, job: &str, cursor: &Cursor) -> Result<()>;

    /// Keeps a run report (JSON), keyed by run id.
    ///
    /// # Errors
    ///
    /// Storage failure.
    fn save_report(&self, run_id: &str, report: &serde_json::Value) -> Result<()>;

    /// A kept run report.
    ///
    /// # Errors
    ///
    /// Storage or decoding failure.
    fn report(&self, run_id: &str) -> Result<Option<serde_json::Value>>;

    /// Ids of the kept run reports, oldest first.
    ///
    /// # Errors
    ///
    /// Storage failure.
    fn report_ids(&self) -> Result<Vec<String>>;

    /// Appends an audit event (flushed).
    ///
    /// # Errors
    ///
    /// Storage failure.
    fn audit(&self, event: AuditEvent) -> Result<()>;

    /// The audit trail, oldest first.
    ///
    /// # Errors
    ///
    /// Storage or decoding failure.
    fn audit_trail(&self) -> Result<Vec<AuditEvent>>;

    /// Stores a value a target keeps between runs (a cache such as a Chorus Pro buyer's
    /// structure settings), flushed to disk.
    ///
    /// # Errors
    ///
    /// Storage failure.
    fn put_value(&self, key: &str, value: &serde_json::Value) -> Result<()>;

    /// Stores several values with one flush (see [`Ledger::put_value`]).
    ///
    /// # Errors
    ///
    /// Storage failure.
    fn put_values(&self, values: &[(String, serde_json::Value)]) -> Result<()> {
        for (k, v) in values {
            self.put_value(k, v)?;
        }
        Ok(())
    }

    /// A value stored with [`Ledger::put_value`].
    ///
    /// # Errors
    ///
    /// Storage failure.
    fn value(&self, key: &str) -> Result<Option<serde_json::Value>>;

    /// Several values stored with [`Ledger::put_value`], in the order of `keys`, read at once.
    ///
    /// # Errors
    ///
    /// Storage failure.
    fn values(&self, keys: &[String]) -> Result<Vec<Option<serde_json::Value>>> {
        keys.iter().map(|k| self.value(k)).collect()
    }

    /// Stores (`Some`) or removes (`None`) entries of the space `space`, each named by its
    /// parts, in one atomic write with one flush: a set a feature lists by its first parts
    /// ([`Ledger::entries`]), such as the documents still waiting for a payment.
    ///
    /// # Errors
    ///
    /// Storage failure.
    fn put_entries(
        &self,
        space: &str,
        entries: &[(Vec<String>, Option<serde_json::Value>)],
    ) -> Result<()>;

    /// The entries of `space` whose parts begin with `first`, each with its remaining parts.
    ///
    /// # Errors
    ///
    /// Storage or decoding failure.
    fn entries(&self, space: &str, first: &[&str])
        -> Result<Vec<(Vec<String>, serde_json::Value)>>;
}
