//! The ledger's errors: what a caller is told when the ledger is in use, of another version,
//! damaged, unreachable, or asked for a change it refuses.

use std::path::PathBuf;

use super::transition::IllegalTransition;

/// Errors of the ledger.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    /// Another process holds the ledger.
    #[error("the ledger at {0} is in use by another facto process (a running `facto run` daemon or another sync, or, in a database, workers that share it while this one does not, or the reverse: see [ledger] shared); wait for it to finish or stop it")]
    Locked(PathBuf),
    /// The ledger was written by another version of facto.
    #[error("the ledger at {path} has schema version {found}, this facto reads version {expected}; use the facto version that wrote it")]
    Schema {
        /// Ledger folder.
        path: PathBuf,
        /// Version found.
        found: u32,
        /// Version expected.
        expected: u32,
    },
    /// The store failed (its own error, whatever the backend).
    #[error("ledger storage error: {0}")]
    Store(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// A file of the ledger (a stored batch) could not be written or read.
    #[error("ledger file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// A stored value could not be read.
    #[error("ledger entry {key} is unreadable: {detail}")]
    Corrupt {
        /// Key.
        key: String,
        /// Why.
        detail: String,
    },
    /// No such record or batch.
    #[error("{0}")]
    NotFound(String),
    /// The operation is not allowed in the current state.
    #[error("{0}")]
    Invalid(String),
    /// The ledger's database cannot be reached (PostgreSQL down, a dropped connection).
    #[error("{0}")]
    Unreachable(String),
    /// A record was asked to take an edge the delivery protocol never takes.
    #[error(transparent)]
    Transition(#[from] IllegalTransition),
}
