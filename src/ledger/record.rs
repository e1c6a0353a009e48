//! A ledger record: what the ledger knows of one document for one target of one job, its
//! identity, its history of state changes, and a change seen in the source after delivery.

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use super::State;
use crate::problem::Problem;

/// Identity of a record.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct RecordKey {
    /// Job name.
    pub job: String,
    /// Target connector name.
    pub target: String,
    /// Source document id.
    pub doc_id: String,
}

impl std::fmt::Display for RecordKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let doc = crate::model::shown_id(&self.doc_id);
        write!(f, "{}/{}/{doc}", self.job, self.target)
    }
}

/// One state change, kept in the record's history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// When.
    pub at: DateTime<Utc>,
    /// The new state.
    pub state: State,
    /// Why (run id, batch id, admin action...).
    pub note: String,
}

/// A field whose value changed in the source after delivery.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FieldChange {
    /// Field path.
    pub field: String,
    /// Value as delivered.
    pub before: String,
    /// Value now in the source.
    pub after: String,
}

/// Report of a change made in the source after delivery: never re-sent, shown to a human.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChangeNote {
    /// When facto saw it.
    pub detected_at: DateTime<Utc>,
    /// Hash of the changed source document.
    pub source_hash: String,
    /// What changed.
    pub changes: Vec<FieldChange>,
}

/// What the ledger knows of one document for one target of one job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// Identity.
    pub key: RecordKey,
    /// Current state.
    pub state: State,
    /// Invoice number.
    pub number: String,
    /// `invoice` or `credit_note`.
    pub kind: String,
    /// Buyer's customer id.
    pub customer_id: String,
    /// Buyer's name.
    pub customer_name: String,
    /// Issue date.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issue_date: Option<NaiveDate>,
    /// Gross total.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gross: Option<Decimal>,
    /// Where the document was read (file or URL).
    pub origin: String,
    /// SHA-256 of the canonical source document.
    pub source_hash: String,
    /// SHA-256 of what was (or will be) delivered: the rendered entry or request body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload_hash: Option<String>,
    /// SHA-256 of the mapping file used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mapping_hash: Option<String>,
    /// Idempotency key sent with the payload (API targets).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
    /// Export batch holding the document (journal-file targets).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch_id: Option<u64>,
    /// Remote identifier (API targets).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_id: Option<String>,
    /// Last remote status (API targets).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_status: Option<String>,
    /// Delivery attempts.
    pub attempts: u32,
    /// Last error, never holding a secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// Why the document is held.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<Problem>,
    /// Key fields as delivered, to explain a later change.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub snapshot: BTreeMap<String, String>,
    /// The held document as last read, so that it is re-checked on the next run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub held_document: Option<serde_json::Value>,
    /// A change seen in the source after delivery.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub changed_after_delivery: Option<ChangeNote>,
    /// State and batch to return to if the batch now claiming the document is rolled back or
    /// cancelled (a re-export with `--include-exported` of a document still in an active batch).
    #[serde(default)]
    pub restore_to: Option<(State, Option<u64>)>,
    /// The worker whose claim this is, when several share the ledger ([`Ledger::worker`]):
    /// another worker settles the claim only once that worker is gone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claimed_by: Option<String>,
    /// First seen.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
    /// State changes, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<Event>,
}

impl Record {
    /// A record seen for the first time (state `released`: eligible until a run decides).
    pub fn new(key: RecordKey, now: DateTime<Utc>) -> Record {
        Record {
            key,
            state: State::Released,
            number: String::new(),
            kind: String::new(),
            customer_id: String::new(),
            customer_name: String::new(),
            issue_date: None,
            gross: None,
            origin: String::new(),
            source_hash: String::new(),
            payload_hash: None,
            mapping_hash: None,
            idempotency_key: None,
            batch_id: None,
            remote_id: None,
            remote_status: None,
            attempts: 0,
            last_error: None,
            problems: Vec::new(),
            snapshot: BTreeMap::new(),
            held_document: None,
            changed_after_delivery: None,
            restore_to: None,
            claimed_by: None,
            created_at: now,
            updated_at: now,
            history: Vec::new(),
        }
    }

    /// Holds the record back with its problems and the document as read (so that it is checked
    /// again from that copy). A record already held for the same problems gains no new event.
    pub fn hold(
        &mut self,
        problems: Vec<Problem>,
        held_doc: Option<serde_json::Value>,
        run_id: &str,
        now: DateTime<Utc>,
    ) {
        let codes: Vec<&str> = problems.iter().map(|p| p.code.as_str()).collect();
        let note = format!("run {run_id}: held ({})", codes.join(", "));
        if self.state != State::Held || self.problems != problems {
            self.transition(State::Held, note, now);
        }
        self.updated_at = now;
        self.problems = problems;
        self.held_document = held_doc;
    }

    /// The document a held record keeps (taken out of it), when it still reads as one.
    pub fn take_held_doc(&mut self) -> Option<crate::model::Document> {
        serde_json::from_value(self.held_document.take()?).ok()
    }

    /// Moves the record to `state`, stamping the time and noting why.
    pub fn transition(&mut self, state: State, note: impl Into<String>, now: DateTime<Utc>) {
        self.state = state;
        self.updated_at = now;
        self.history.push(Event {
            at: now,
            state,
            note: note.into(),
        });
    }
}
